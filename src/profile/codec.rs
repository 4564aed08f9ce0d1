//! Records to and from the partner's documents through a profile's field mapping (JSON, or XML
//! read into the same shape by `body`); used by both the Connector (writing requests, reading
//! answers) and the mock partner (the reverse).

use super::path::{scalar_str, scalar_text, JsonPath};
use super::spec::{AbsentStyle, Mapping, ValueType};
use super::Profile;
use crate::model::{canonical_values, Field, Record, RecordKind};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A problem with one field of a record body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The partner's path of the field.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Which side of an exchange a document is: a request the Connector sends (fields at their
/// write paths, coded by `values`) or an answer the partner gives (read paths, `read-values`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// What the Connector writes.
    Request,
    /// What the partner answers.
    Answer,
}

/// Encodes and decodes one kind of record under a profile.
#[derive(Debug, Clone, Copy)]
pub struct RecordCodec<'p> {
    profile: &'p Profile,
    kind: RecordKind,
    mapping: &'p Mapping,
}

/// The first object on the way to `path` that is neither an object nor null, as a problem.
fn not_an_object_on_the_way(path: &JsonPath, document: &Value) -> Option<FieldProblem> {
    let keys = path.keys()?;
    let (_, parents) = keys.split_last()?;
    let mut at = document;
    for (depth, key) in parents.iter().enumerate() {
        match at.get(key) {
            None | Some(Value::Null) => return None,
            Some(inner) if inner.is_object() => at = inner,
            Some(other) => {
                return Some(FieldProblem {
                    path: parents[..=depth].join("."),
                    message: format!("expected a JSON object, found {}", json_kind(other)),
                })
            }
        }
    }
    None
}

impl<'p> RecordCodec<'p> {
    pub(super) fn new(profile: &'p Profile, kind: RecordKind) -> Self {
        RecordCodec {
            profile,
            kind,
            mapping: profile.mapping(kind),
        }
    }

    /// The partner path of `field` in requests, else in answers; `None` when not mapped.
    pub fn path(&self, field: Field) -> Option<&'p JsonPath> {
        let map = self.mapping.fields.get(&field)?;
        map.write.as_ref().or(map.read.as_ref())
    }

    /// The partner path of `field` in requests, if it is written.
    pub fn write_path(&self, field: Field) -> Option<&'p JsonPath> {
        self.mapping.fields.get(&field)?.write.as_ref()
    }

    /// The partner path of `field` in answers, if it is read.
    pub fn read_path(&self, field: Field) -> Option<&'p JsonPath> {
        self.mapping.fields.get(&field)?.read.as_ref()
    }

    /// The path of `field` on `side`.
    pub fn path_on(&self, side: Side, field: Field) -> Option<&'p JsonPath> {
        match side {
            Side::Request => self.write_path(field),
            Side::Answer => self.read_path(field),
        }
    }

    /// Whether `field` is mapped at all.
    pub fn maps(&self, field: Field) -> bool {
        self.mapping.fields.contains_key(&field)
    }

    /// The JSON type of `field`.
    pub fn value_type(&self, field: Field) -> ValueType {
        self.mapping
            .fields
            .get(&field)
            .map_or(ValueType::String, |map| map.value_type)
    }

    /// The mapped fields and their write paths (fields only read are left out).
    pub fn fields(&self) -> impl Iterator<Item = (Field, &'p JsonPath)> {
        self.fields_on(Side::Request)
    }

    /// The mapped fields and their paths on `side`.
    pub fn fields_on(&self, side: Side) -> impl Iterator<Item = (Field, &'p JsonPath)> {
        self.mapping.fields.iter().filter_map(move |(field, map)| {
            let path = match side {
                Side::Request => map.write.as_ref(),
                Side::Answer => map.read.as_ref(),
            }?;
            Some((*field, path))
        })
    }

    /// Whether requests and answers look alike and every value is a string (see
    /// `Mapping::is_plain`).
    pub fn is_plain(&self) -> bool {
        self.mapping.is_plain()
    }

    /// The fixed values with the text each must hold; `None` when one does not render.
    pub fn fixed_values(&self) -> Option<Vec<(&'p JsonPath, String)>> {
        self.mapping
            .fixed
            .iter()
            .map(|(path, fixed)| {
                let value = fixed
                    .template
                    .render(&self.profile.tenancy, str::to_owned)
                    .ok()?;
                Some((path, value))
            })
            .collect()
    }

    /// The canonical value of a field's partner value in a request, as `decode_request` reads it.
    pub fn canonical_value(&self, field: Field, partner: Cow<'_, str>) -> Result<String, String> {
        self.canonical_value_of(Side::Request, field, partner)
    }

    /// How an absent `field` is written; `None` for fields that are simply left out.
    fn absent_style(&self, field: Field) -> AbsentStyle {
        match (self.kind, field) {
            (RecordKind::Prospect, Field::Owner) => self.profile.absent.owner,
            (RecordKind::Prospect, Field::Source) => self.profile.absent.source,
            _ => AbsentStyle::Omit,
        }
    }

    /// Writes `record` as a request's JSON object: mapped fields at their write paths, typed,
    /// absent owner/source as the profile says, and fixed values.
    pub fn encode(&self, record: &Record) -> Value {
        self.encode_on(Side::Request, record)
    }

    /// Writes `record` as the partner answers it (the mock partner): read paths and read-side
    /// values.
    pub fn encode_answer(&self, record: &Record) -> Value {
        self.encode_on(Side::Answer, record)
    }

    fn encode_on(&self, side: Side, record: &Record) -> Value {
        let mut document = Value::Object(Default::default());
        for (field, map) in &self.mapping.fields {
            let path = match side {
                Side::Request => map.write.as_ref(),
                Side::Answer => map.read.as_ref(),
            };
            let Some(path) = path else { continue };
            let given = record.get(field).or(match side {
                Side::Request => map.default.as_ref(),
                Side::Answer => None,
            });
            let value = match given {
                Some(value) => {
                    let partner = self.partner_value_of(side, *field, value);
                    match (&map.write_pattern, side) {
                        (Some(pattern), Side::Request) => {
                            Value::String(render_id(pattern, &partner))
                        }
                        _ => typed_value(map.value_type, &partner),
                    }
                }
                None => match self.absent_style(*field) {
                    AbsentStyle::Omit => continue,
                    AbsentStyle::Null => Value::Null,
                    AbsentStyle::Empty => Value::String(String::new()),
                },
            };
            path.set(&mut document, value);
        }
        // Answers carry the fixed values too: a partner shows the club a record belongs to.
        for (path, fixed) in &self.mapping.fixed {
            if let Ok(value) = fixed.template.render(&self.profile.tenancy, str::to_owned) {
                path.set(&mut document, typed_value(fixed.value_type, &value));
            }
        }
        document
    }

    /// Reads a record from a partner's answer (read paths, any scalar accepted as text).
    /// Null, empty and missing values are absent; nested values where a scalar belongs and
    /// unknown coded values are problems.
    pub fn decode(&self, document: &Value) -> Result<Record, Vec<FieldProblem>> {
        self.decode_on(Side::Answer, document, false)
    }

    /// Reads a record from a request (the mock partner): write paths, and with `strict` a value
    /// of another JSON type than the profile declares is a problem, as a strict partner
    /// refuses `"42"` where an integer belongs.
    pub fn decode_request(
        &self,
        document: &Value,
        strict: bool,
    ) -> Result<Record, Vec<FieldProblem>> {
        self.decode_on(Side::Request, document, strict)
    }

    fn decode_on(
        &self,
        side: Side,
        document: &Value,
        strict: bool,
    ) -> Result<Record, Vec<FieldProblem>> {
        let mut record = Record::new();
        let mut problems = Vec::new();
        let plain_value = self.mapping.fields.len() == 1
            && self
                .mapping
                .fields
                .values()
                .all(|map| map.read.as_ref().is_some_and(JsonPath::is_root));
        if !document.is_object() && !plain_value {
            return Err(vec![FieldProblem {
                path: "(record)".into(),
                message: format!("expected a JSON object, found {}", json_kind(document)),
            }]);
        }
        for (field, map) in &self.mapping.fields {
            let path = match side {
                Side::Request => map.write.as_ref(),
                Side::Answer => map.read.as_ref(),
            };
            let Some(path) = path else { continue };
            let Some(value) = path.get(document) else {
                // A strict partner refuses a value where the field's enclosing object belongs
                // (`"address": 5`) rather than read it as no address.
                if let Some(problem) = strict
                    .then(|| not_an_object_on_the_way(path, document))
                    .flatten()
                {
                    if !problems
                        .iter()
                        .any(|p: &FieldProblem| p.path == problem.path)
                    {
                        problems.push(problem);
                    }
                }
                continue;
            };
            if value.is_null() {
                continue;
            }
            let Some(text) = scalar_str(value) else {
                problems.push(FieldProblem {
                    path: path.to_string(),
                    message: format!(
                        "expected {}, found {}",
                        type_phrase(map.value_type),
                        json_kind(value)
                    ),
                });
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let text = match (&map.write_pattern, side) {
                (Some(pattern), Side::Request) => match super::body::extract_slot(pattern, &text) {
                    Some(inner) => Cow::Owned(inner),
                    None => {
                        problems.push(FieldProblem {
                            path: path.to_string(),
                            message: format!("expected `{pattern}`, found `{text}`"),
                        });
                        continue;
                    }
                },
                _ => text,
            };
            if strict {
                if let Some(message) = type_mismatch(map.value_type, value) {
                    problems.push(FieldProblem {
                        path: path.to_string(),
                        message,
                    });
                    continue;
                }
            }
            match self.canonical_value_of(side, *field, text) {
                Ok(canonical) => {
                    record.insert(*field, canonical);
                }
                Err(message) => problems.push(FieldProblem {
                    path: path.to_string(),
                    message,
                }),
            }
        }
        if problems.is_empty() {
            Ok(record)
        } else {
            Err(problems)
        }
    }

    /// Checks that the fixed values (tenancy and the like) are present and right; with
    /// `strict`, of the declared JSON type too.
    pub fn check_fixed(&self, document: &Value) -> Vec<FieldProblem> {
        self.check_fixed_typed(document, false)
    }

    /// `check_fixed`, with the JSON types checked when `strict`.
    pub fn check_fixed_typed(&self, document: &Value, strict: bool) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        for (path, fixed) in &self.mapping.fixed {
            let Ok(expected) = fixed.template.render(&self.profile.tenancy, str::to_owned) else {
                continue;
            };
            let value = path.get(document);
            let found = value.and_then(scalar_text);
            let mistyped = if strict {
                value
                    .filter(|_| found.as_deref() == Some(expected.as_str()))
                    .and_then(|value| type_mismatch(fixed.value_type, value))
            } else {
                None
            };
            if let Some(message) = mistyped {
                problems.push(FieldProblem {
                    path: path.to_string(),
                    message,
                });
            } else if found.as_deref() != Some(expected.as_str()) {
                problems.push(FieldProblem {
                    path: path.to_string(),
                    message: match found {
                        Some(found) => format!("expected `{expected}`, found `{found}`"),
                        None => format!("missing; expected `{expected}`"),
                    },
                });
            }
        }
        problems
    }

    /// The table of partner values of `field` on `side`, if it is coded.
    fn values_table(&self, side: Side, field: Field) -> Option<&'p BTreeMap<String, String>> {
        if side == Side::Answer {
            if let Some(map) = self.mapping.fields.get(&field) {
                if !map.read_values.is_empty() {
                    return Some(&map.read_values);
                }
            }
        }
        self.mapping.values.get(&field)
    }

    fn partner_value_of(&self, side: Side, field: Field, canonical: &str) -> String {
        self.values_table(side, field)
            .and_then(|table| table.get(canonical))
            .cloned()
            .unwrap_or_else(|| canonical.to_owned())
    }

    fn canonical_value_of(
        &self,
        side: Side,
        field: Field,
        partner: Cow<'_, str>,
    ) -> Result<String, String> {
        let partner_text = partner.as_ref();
        if let Some(table) = self.values_table(side, field) {
            if let Some((canonical, _)) = table.iter().find(|(_, value)| *value == partner_text) {
                return Ok(canonical.clone());
            }
            // A table may list only some values: the others are written as the canonical value
            // (see `encode`), so they read back as themselves.
            let unlisted_canonical = canonical_values(field)
                .is_none_or(|allowed| allowed.contains(&partner_text))
                && !table.contains_key(partner_text);
            if unlisted_canonical {
                return Ok(partner.into_owned());
            }
            let known: Vec<&str> = table.values().map(String::as_str).collect();
            return Err(format!(
                "`{partner}` is not one of the profile's values for {field}: {}",
                known.join(", ")
            ));
        }
        match canonical_values(field) {
            Some(allowed) if !allowed.contains(&partner_text) => Err(format!(
                "`{partner}` is not a valid {field}; expected one of: {}",
                allowed.join(", ")
            )),
            _ => Ok(partner.into_owned()),
        }
    }
}

/// `pattern` with `id` where its `{id}` is.
pub fn render_id(pattern: &super::Template, id: &str) -> String {
    struct Id<'a>(&'a str);
    impl super::SlotValues for Id<'_> {
        fn value(&self, slot: super::Slot) -> Option<&str> {
            (slot == super::Slot::Id).then_some(self.0)
        }
    }
    pattern.render(&Id(id), str::to_owned).unwrap_or_default()
}

/// `text` as a JSON value of `value_type`; text that is not of the type stays a string (the
/// partner then says what it thinks of it).
pub fn typed_value(value_type: ValueType, text: &str) -> Value {
    match value_type {
        ValueType::String => Value::String(text.to_owned()),
        ValueType::Integer => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        ValueType::Number => {
            let trimmed = text.trim();
            trimmed
                .parse::<i64>()
                .map(Value::from)
                .ok()
                .or_else(|| {
                    trimmed
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                })
                .unwrap_or_else(|| Value::String(text.to_owned()))
        }
        ValueType::Boolean => match text.trim() {
            t if t.eq_ignore_ascii_case("true") => Value::Bool(true),
            t if t.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
    }
}

/// Why `value` is not of `value_type`, if it is not.
fn type_mismatch(value_type: ValueType, value: &Value) -> Option<String> {
    let fits = match value_type {
        ValueType::String => value.is_string(),
        ValueType::Integer => value.is_i64() || value.is_u64(),
        ValueType::Number => value.is_number(),
        ValueType::Boolean => value.is_boolean(),
    };
    (!fits).then(|| {
        format!(
            "expected {}, found {}",
            type_phrase(value_type),
            json_kind(value)
        )
    })
}

fn type_phrase(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::String => "a string",
        ValueType::Integer => "an integer",
        ValueType::Number => "a number",
        ValueType::Boolean => "a boolean",
    }
}

/// A JSON value's kind, for messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value the JSON writer puts at one path.
enum Leaf<'a> {
    Text(std::borrow::Cow<'a, str>),
    Null,
}

impl RecordCodec<'_> {
    /// The bytes of `encode(record)` wrapped at `at` (as `JsonPath::wrap` and `serde_json`
    /// would write them), written straight from the record: no JSON tree is built, which is
    /// most of the cost of encoding a record (load runs encode one per delivery).
    pub fn encode_json(&self, record: &Record, at: Option<&JsonPath>, side: Side) -> Vec<u8> {
        let layout = self
            .mapping
            .layout
            .get_or_init(|| JsonLayout::of(self.mapping));
        let wrap = match at {
            None => Some(&[][..]),
            Some(at) => at.keys(),
        };
        // A root path, one path inside another or two equal paths (all refused by validation)
        // would need the tree's overwriting rules, and array steps, types and read paths of
        // their own the tree's writer: the tree writes those.
        let Some(wrap) = wrap.filter(|_| layout.plain) else {
            let mut document = self.encode_on(side, record);
            if let Some(at) = at {
                document = at.wrap(document);
            }
            return serde_json::to_vec(&document).unwrap_or_default();
        };
        // The record's fields go to their items' places (a record holds a few of the many
        // mapped fields); then each item in order gives its leaf, or its absent style.
        let mut present: Vec<Option<&str>> = vec![None; layout.items.len()];
        for (field, value) in record {
            if let Some(index) = layout.item_of_field[*field as usize] {
                present[index] = Some(value);
            }
        }
        let mut leaves: Vec<(&LayoutItem, Leaf<'_>)> = Vec::with_capacity(layout.items.len());
        for (item, value) in layout.items.iter().zip(present) {
            let leaf = match (item.entry, value) {
                (LayoutEntry::Field(field), Some(value)) if item.coded => {
                    Leaf::Text(self.partner_value_borrowed(field, value))
                }
                (LayoutEntry::Field(_), Some(value)) => Leaf::Text(value.into()),
                (LayoutEntry::Field(field), None) => match self.absent_style(field) {
                    AbsentStyle::Omit => continue,
                    AbsentStyle::Null => Leaf::Null,
                    AbsentStyle::Empty => Leaf::Text("".into()),
                },
                (LayoutEntry::Fixed(index), _) => {
                    let (_, fixed) = &self.mapping.fixed[index];
                    match fixed.template.render(&self.profile.tenancy, str::to_owned) {
                        Ok(value) => Leaf::Text(value.into()),
                        Err(_) => continue,
                    }
                }
            };
            leaves.push((item, leaf));
        }
        let mut out = Vec::with_capacity(512);
        for key in wrap {
            out.push(b'{');
            write_json_str(&mut out, key);
            out.push(b':');
        }
        write_object(&mut out, &leaves, 0);
        out.extend(std::iter::repeat_n(b'}', wrap.len()));
        out
    }

    /// `partner_value_of` without a copy when the value is written as it is.
    fn partner_value_borrowed<'v>(
        &self,
        field: Field,
        canonical: &'v str,
    ) -> std::borrow::Cow<'v, str> {
        match self
            .mapping
            .values
            .get(&field)
            .and_then(|table| table.get(canonical))
        {
            Some(partner) => partner.clone().into(),
            None => canonical.into(),
        }
    }
}

/// A mapping's paths in the order the JSON writer puts them: sorted, as the tree's sorted
/// maps write their keys; each key written out once, ahead of the records.
#[derive(Debug, Clone)]
pub(crate) struct JsonLayout {
    items: Vec<LayoutItem>,
    /// By `Field as usize`: the field's item, if mapped.
    item_of_field: Vec<Option<usize>>,
    /// No path is the root, equal to another or inside another.
    plain: bool,
}

#[derive(Debug, Clone)]
struct LayoutItem {
    entry: LayoutEntry,
    /// Per segment of the path: the key as JSON followed by `:`.
    keys: Vec<Box<[u8]>>,
    /// Per segment: a number shared by exactly the items whose paths agree up to it, so the
    /// writer groups an object's members without comparing keys.
    groups: Vec<usize>,
    /// The field has a table of partner values.
    coded: bool,
}

#[derive(Debug, Clone, Copy)]
enum LayoutEntry {
    Field(Field),
    /// The mapping's fixed value of this index.
    Fixed(usize),
}

impl JsonLayout {
    fn of(mapping: &Mapping) -> JsonLayout {
        // Only plain mappings (keys only, strings only, requests and answers alike) are laid
        // out; the others are written by the tree.
        let mapping_plain = mapping.is_plain();
        let mut entries: Vec<(&[String], LayoutEntry)> = mapping
            .fields
            .iter()
            .filter_map(|(field, map)| {
                let keys = map.write.as_ref()?.keys()?;
                Some((keys, LayoutEntry::Field(*field)))
            })
            .chain(
                mapping
                    .fixed
                    .iter()
                    .enumerate()
                    .filter_map(|(index, (path, _))| {
                        Some((path.keys()?, LayoutEntry::Fixed(index)))
                    }),
            )
            .collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let plain = mapping_plain
            && entries.iter().all(|(segments, _)| !segments.is_empty())
            && entries
                .windows(2)
                .all(|pair| !pair[1].0.starts_with(pair[0].0));
        let mut items: Vec<LayoutItem> = Vec::with_capacity(entries.len());
        let mut next_group = 0;
        for (index, (segments, entry)) in entries.iter().enumerate() {
            let shared = index.checked_sub(1).map_or(0, |previous| {
                let before = entries[previous].0;
                segments
                    .iter()
                    .zip(before)
                    .take_while(|(a, b)| a == b)
                    .count()
            });
            let groups = (0..segments.len())
                .map(|depth| match items.last() {
                    Some(previous) if depth < shared => previous.groups[depth],
                    _ => {
                        next_group += 1;
                        next_group
                    }
                })
                .collect();
            let keys = segments
                .iter()
                .map(|key| {
                    let mut bytes = Vec::with_capacity(key.len() + 3);
                    write_json_str(&mut bytes, key);
                    bytes.push(b':');
                    bytes.into_boxed_slice()
                })
                .collect();
            let coded = match entry {
                LayoutEntry::Field(field) => mapping.values.contains_key(field),
                LayoutEntry::Fixed(_) => false,
            };
            items.push(LayoutItem {
                entry: *entry,
                keys,
                groups,
                coded,
            });
        }
        let mut item_of_field = vec![None; Field::ALL.len()];
        for (index, item) in items.iter().enumerate() {
            if let LayoutEntry::Field(field) = item.entry {
                item_of_field[field as usize] = Some(index);
            }
        }
        JsonLayout {
            items,
            item_of_field,
            plain,
        }
    }
}

/// Writes the object holding `leaves` (sorted, none inside another) below `depth` segments.
fn write_object(out: &mut Vec<u8>, leaves: &[(&LayoutItem, Leaf<'_>)], depth: usize) {
    out.push(b'{');
    let mut start = 0;
    while start < leaves.len() {
        let (item, leaf) = &leaves[start];
        let group = item.groups[depth];
        let end = start
            + leaves[start..]
                .iter()
                .take_while(|(other, _)| other.groups[depth] == group)
                .count();
        if start > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item.keys[depth]);
        if item.keys.len() == depth + 1 {
            match leaf {
                Leaf::Text(text) => write_json_str(out, text),
                Leaf::Null => out.extend_from_slice(b"null"),
            }
        } else {
            write_object(out, &leaves[start..end], depth + 1);
        }
        start = end;
    }
    out.push(b'}');
}

/// A JSON string, escaped as `serde_json` escapes it.
fn write_json_str(out: &mut Vec<u8>, text: &str) {
    // Most text needs no escape at all: copied as it is.
    if text
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

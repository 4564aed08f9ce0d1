//! Reading a profile file: syntax, section types and cross-checks, every problem with file,
//! line and key.

use super::codec::Side;
use super::path::{JsonPath, Step};
use super::spec::*;
use super::template::{path_segments, PathSegment, Slot, Template};
use super::Profile;
use crate::model::{canonical_values, Field, RecordKind};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use toml_edit::ImDocument;

/// One problem in a profile: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The profile's file name.
    pub file: String,
    /// 1-based line, where the key could be located.
    pub line: Option<usize>,
    /// The dotted key the problem is about.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}: {}", self.file, line, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read. The cause is in the message (said once), with a hint on
    /// where profiles come from when the file is missing.
    #[error("cannot read profile {path}: {error}{}", read_hint(.error))]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file was read but is not a valid profile.
    #[error("{}", render_problems(.problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

fn read_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            "; `spoke profile init > acme.toml` writes a commented profile to start from (`--from hubspot` and the other fixture profiles too)"
        }
        _ => "",
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    lines.join("\n")
}

const SECTIONS: [&str; 10] = [
    "partner",
    "tenancy",
    "auth",
    "capabilities",
    "references",
    "absent",
    "operations",
    "records",
    "sends",
    "tls",
];

/// Collects problems and locates their keys in the source.
struct Checker<'t> {
    file: String,
    text: &'t str,
    document: Option<ImDocument<&'t str>>,
    problems: Vec<Problem>,
}

impl<'t> Checker<'t> {
    fn report(&mut self, key: &[&str], message: impl Into<String>) {
        let line = self.line_of(key);
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            key: key.join("."),
            message: message.into(),
        });
    }

    /// The line of the deepest part of `key` present in the file.
    fn line_of(&self, key: &[&str]) -> Option<usize> {
        let document = self.document.as_ref()?;
        let mut table: &dyn toml_edit::TableLike = document.as_table();
        let mut offset = None;
        for segment in key {
            let Some((found_key, item)) = table.get_key_value(segment) else {
                break;
            };
            offset = found_key
                .span()
                .or_else(|| item.span())
                .map(|span| span.start)
                .or(offset);
            match item.as_table_like() {
                Some(inner) => table = inner,
                None => break,
            }
        }
        let offset = offset?;
        Some(self.text[..offset].matches('\n').count() + 1)
    }

    /// Deserializes one value, reporting a typed error at the exact key.
    fn section<T: DeserializeOwned>(&mut self, key: &[&str], value: &toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                let mut full: Vec<String> = key.iter().map(|s| s.to_string()).collect();
                for segment in error.path().iter() {
                    match segment {
                        serde_path_to_error::Segment::Map { key } => full.push(key.clone()),
                        serde_path_to_error::Segment::Seq { index } => full.push(index.to_string()),
                        _ => {}
                    }
                }
                let message = error.inner().to_string();
                // The deserializer appends "in `key`"; the key is already in the report.
                let message = message
                    .split("\nin `")
                    .next()
                    .unwrap_or_default()
                    .trim_end()
                    .to_owned();
                // An unknown key is located at itself, not at its table.
                if let Some(unknown) = message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next())
                {
                    if full.last().map(String::as_str) != Some(unknown) {
                        full.push(unknown.to_owned());
                    }
                }
                let message = if key.first() == Some(&"auth")
                    && message.starts_with("unknown field")
                {
                    format!("{message}; a profile never holds a secret, only the name of the environment variable that does")
                } else {
                    message
                };
                let full: Vec<&str> = full.iter().map(String::as_str).collect();
                self.report(&full, message);
                None
            }
        }
    }
}

/// Parses and validates profile text.
pub(super) fn parse(file_name: &str, text: &str) -> Result<Profile, ProfileError> {
    let mut checker = Checker {
        file: file_name.to_owned(),
        text,
        document: None,
        problems: Vec::new(),
    };
    let document = match ImDocument::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let line = error
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = error.message().trim_end().to_owned();
            return Err(ProfileError::Invalid {
                problems: vec![Problem {
                    file: file_name.to_owned(),
                    line,
                    key: "(syntax)".into(),
                    message,
                }],
            });
        }
    };
    checker.document = Some(document);
    let root: toml::Table = match toml::from_str(text) {
        Ok(root) => root,
        Err(error) => {
            checker.report(&["(syntax)"], error.message().trim_end());
            return Err(ProfileError::Invalid {
                problems: checker.problems,
            });
        }
    };
    let profile = check(&mut checker, file_name, text, &root);
    let mut problems = checker.problems;
    if problems.is_empty() {
        if let Some(profile) = profile {
            return Ok(profile);
        }
    }
    problems.sort_by_key(|problem| problem.line.unwrap_or(0));
    Err(ProfileError::Invalid { problems })
}

fn check(
    checker: &mut Checker<'_>,
    file_name: &str,
    text: &str,
    root: &toml::Table,
) -> Option<Profile> {
    for key in root.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            checker.report(
                &[key],
                format!("unknown section, expected one of: {}", SECTIONS.join(", ")),
            );
        }
    }
    let mut broken = false;
    let partner = match root.get("partner") {
        Some(value) => checker.section::<PartnerSection>(&["partner"], value),
        None => {
            checker.report(
                &["partner"],
                "missing section: name and base-url are required",
            );
            None
        }
    };
    broken |= partner.is_none();
    if !root.contains_key("capabilities") {
        checker.report(
            &["capabilities"],
            "missing section: declare which of prospects, members, staff-owner, lead-source the partner supports",
        );
        broken = true;
    }
    let tenancy: Tenancy = optional_section(checker, root, "tenancy", &mut broken);
    let auth: AuthSection = optional_section(checker, root, "auth", &mut broken);
    let broken_before = broken;
    let capabilities: Capabilities = optional_section(checker, root, "capabilities", &mut broken);
    let capabilities_known = broken == broken_before;
    let references: References = optional_section(checker, root, "references", &mut broken);
    let absent: Absent = optional_section(checker, root, "absent", &mut broken);

    let mut operations = BTreeMap::new();
    let mut declared_operations = BTreeSet::new();
    match root.get("operations") {
        Some(toml::Value::Table(table)) => {
            for (key, value) in table {
                let Some(kind) = OperationKind::from_key(key) else {
                    let known: Vec<&str> = OperationKind::ALL.iter().map(|k| k.key()).collect();
                    checker.report(
                        &["operations", key],
                        format!("unknown operation, expected one of: {}", known.join(", ")),
                    );
                    broken = true;
                    continue;
                };
                declared_operations.insert(kind);
                match checker.section::<Operation>(&["operations", key], value) {
                    Some(operation) => {
                        operations.insert(kind, operation);
                    }
                    None => broken = true,
                }
            }
        }
        Some(_) => {
            checker.report(&["operations"], "must be a table of operations");
            broken = true;
        }
        None => {}
    }

    let mut records = BTreeMap::new();
    let mut declared_records = BTreeSet::new();
    match root.get("records") {
        Some(toml::Value::Table(table)) => {
            for (key, value) in table {
                let Some(kind) = RecordKind::ALL.into_iter().find(|kind| kind.key() == key) else {
                    checker.report(
                        &["records", key],
                        "unknown record kind, expected one of: staff, source, prospect, member",
                    );
                    broken = true;
                    continue;
                };
                declared_records.insert(kind);
                let Some(raw) = checker.section::<RecordMapping>(&["records", key], value) else {
                    broken = true;
                    continue;
                };
                if let Some(mapping) = check_mapping(checker, kind, &raw) {
                    records.insert(kind, mapping);
                }
            }
        }
        Some(_) => {
            checker.report(&["records"], "must be a table of record mappings");
            broken = true;
        }
        None => {}
    }

    let sends = match root.get("sends") {
        Some(value) => {
            let sends = checker.section::<SendsSection>(&["sends"], value);
            match &sends {
                Some(sends) => check_sends(checker, sends),
                None => broken = true,
            }
            sends
        }
        None => None,
    };
    let tls = match root.get("tls") {
        Some(value) => {
            let tls = checker.section::<TlsSection>(&["tls"], value);
            broken |= tls.is_none();
            tls
        }
        None => None,
    };

    let partner = partner?;
    let profile = Profile {
        file_name: file_name.to_owned(),
        text: text.to_owned(),
        partner,
        tenancy,
        auth,
        capabilities,
        references,
        absent,
        operations,
        records,
        sends,
        tls,
    };
    check_profile(
        checker,
        &profile,
        &declared_operations,
        &declared_records,
        capabilities_known,
    );
    (!broken).then_some(profile)
}

/// `[sends]`: tenant ids the Connector can accept, and each step named once.
fn check_sends(checker: &mut Checker<'_>, sends: &SendsSection) {
    for (key, value) in [
        ("provider-id", &sends.provider_id),
        ("client-id", &sends.client_id),
        ("club-id", &sends.club_id),
    ] {
        if value.trim().is_empty() {
            checker.report(&["sends", key], "must not be empty");
        } else if value.trim() != value || value.chars().any(char::is_control) {
            checker.report(
                &["sends", key],
                "must have no leading or trailing spaces and no control characters",
            );
        }
    }
    if sends.steps.is_empty() {
        let known: Vec<&str> = SendStep::ALL.iter().map(|s| s.key()).collect();
        checker.report(
            &["sends", "steps"],
            format!(
                "name at least one step the partner can carry out: {}",
                known.join(", ")
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for step in &sends.steps {
        if !seen.insert(*step) {
            checker.report(
                &["sends", "steps"],
                format!("`{}` is named twice", step.key()),
            );
        }
    }
}

/// A section that may be left out (its defaults apply); a broken one marks the profile broken.
fn optional_section<T: DeserializeOwned + Default>(
    checker: &mut Checker<'_>,
    root: &toml::Table,
    name: &str,
    broken: &mut bool,
) -> T {
    let Some(value) = root.get(name) else {
        return T::default();
    };
    checker.section(&[name], value).unwrap_or_else(|| {
        *broken = true;
        T::default()
    })
}

fn check_mapping(
    checker: &mut Checker<'_>,
    kind: RecordKind,
    raw: &RecordMapping,
) -> Option<Mapping> {
    let section = kind.key();
    let mut mapping = Mapping::default();
    let mut ok = true;
    // Fields named, even where their mapping has a problem (reported on its own).
    let mut declared = BTreeSet::new();
    for (name, raw_field) in &raw.fields {
        let at = ["records", section, "fields", name.as_str()];
        let field = match name.parse::<Field>() {
            Ok(field) if kind.allowed_fields().contains(&field) => field,
            Ok(field) => {
                checker.report(&at, format!("`{field}` is not a field of a {kind} record"));
                ok = false;
                continue;
            }
            Err(message) => {
                let known: Vec<&str> = kind.allowed_fields().iter().map(|f| f.key()).collect();
                checker.report(
                    &at,
                    format!("{message}; a {kind} record has: {}", known.join(", ")),
                );
                ok = false;
                continue;
            }
        };
        declared.insert(field);
        match field_map(checker, &at, field, raw_field) {
            Some(map) => {
                mapping.fields.insert(field, map);
            }
            None => ok = false,
        }
    }
    for (path_text, fixed) in &raw.fixed {
        let at = ["records", section, "fixed", path_text.as_str()];
        match JsonPath::parse(path_text) {
            Ok(path) if path.is_root() => {
                checker.report(&at, "a fixed value needs a path inside the record");
                ok = false;
            }
            Ok(path) => {
                if fixed
                    .template
                    .slots()
                    .iter()
                    .any(|slot| matches!(slot, Slot::Id | Slot::Email))
                {
                    checker.report(&at, "fixed values may use only {client_id} and {club_id}");
                    ok = false;
                }
                mapping.fixed.push((path, fixed.clone()));
            }
            Err(message) => {
                checker.report(&at, message);
                ok = false;
            }
        }
    }
    for (name, table) in &raw.values {
        let field = match name.parse::<Field>() {
            Ok(field) if mapping.fields.contains_key(&field) => field,
            Ok(field) => {
                checker.report(
                    &["records", section, "values", name],
                    format!("values are given for `{field}`, which is not mapped in fields"),
                );
                ok = false;
                continue;
            }
            Err(message) => {
                checker.report(&["records", section, "values", name], message);
                ok = false;
                continue;
            }
        };
        ok &= check_value_table(checker, &["records", section, "values", name], field, table);
        mapping.values.insert(field, table.clone());
    }
    for (field, map) in &mapping.fields {
        if map.value_type == ValueType::String {
            continue;
        }
        let at = ["records", section, "fields", field.key(), "type"];
        ok &= check_value_type(checker, &at, *field, map, mapping.values.get(field));
    }
    for required in kind.required_fields() {
        let needed_side = required_side(kind, *required);
        let map = mapping.fields.get(required);
        if map.is_none() && declared.contains(required) {
            continue;
        }
        let missing = match (map, needed_side) {
            (None, _) => Some(format!("a {kind} record must map `{required}`")),
            (Some(map), Side::Answer) if map.read.is_none() => Some(format!(
                "`{required}` must be read: a {kind} record is read from the partner's answers"
            )),
            (Some(map), Side::Request) if map.write.is_none() => Some(format!(
                "`{required}` must be written: every {kind} the Connector saves carries it"
            )),
            _ => None,
        };
        // A source list of plain names has no ids: the name is the source (checked with the
        // references, which say whether sources go by name).
        let plain_source_list = kind == RecordKind::Source
            && *required == Field::Id
            && mapping
                .fields
                .get(&Field::Name)
                .and_then(|name| name.read.as_ref())
                .is_some();
        if let Some(message) = missing.filter(|_| !plain_source_list) {
            checker.report(&["records", section, "fields"], message);
            ok = false;
        }
    }
    // Overlaps by pair of paths, so one that is both written and read is named once.
    let mut overlaps: Vec<(String, Vec<Side>)> = Vec::new();
    for side in [Side::Request, Side::Answer] {
        let mut paths: Vec<(String, &JsonPath)> = mapping
            .fields
            .iter()
            .filter_map(|(field, map)| {
                let path = match side {
                    Side::Request => map.write.as_ref(),
                    Side::Answer => map.read.as_ref(),
                }?;
                Some((format!("fields.{field}"), path))
            })
            .collect();
        paths.extend(
            mapping
                .fixed
                .iter()
                .map(|(path, _)| (format!("fixed.{path}"), path)),
        );
        let alone = paths.len() == 1;
        for (index, (name_a, path_a)) in paths.iter().enumerate() {
            // Only a source's name may be the item itself: a list of plain names.
            let may_be_root = side == Side::Answer
                && kind == RecordKind::Source
                && name_a == "fields.name"
                && alone;
            if path_a.is_root() && !may_be_root {
                checker.report(
                    &[
                        "records",
                        section,
                        "fields",
                        name_a.trim_start_matches("fields."),
                    ],
                    if kind == RecordKind::Source && name_a == "fields.name" {
                        "a source's name can be the list item itself (`\".\"`) only as the one field read: a list of plain names"
                    } else {
                        "a field needs a path inside the record, not the record itself"
                    },
                );
                ok = false;
                continue;
            }
            for (name_b, path_b) in &paths[index + 1..] {
                if path_a.overlaps(path_b) {
                    let pair = format!("`{name_a}` ({path_a}) and `{name_b}` ({path_b})");
                    match overlaps.iter_mut().find(|(known, _)| *known == pair) {
                        Some((_, sides)) => sides.push(side),
                        None => overlaps.push((pair, vec![side])),
                    }
                    ok = false;
                }
            }
        }
    }
    for (pair, sides) in overlaps {
        let place = match sides.as_slice() {
            [Side::Request] => "requests",
            [Side::Answer] => "answers",
            _ => "JSON",
        };
        checker.report(
            &["records", section],
            format!("{pair} would overwrite each other in the partner's {place}"),
        );
    }
    ok.then_some(mapping)
}

/// Which side a required field must be mapped on: what the Connector reads (staff, source
/// ids) or what it writes (names of the records it saves).
fn required_side(kind: RecordKind, field: Field) -> Side {
    match (kind, field) {
        (RecordKind::Staff, _) | (RecordKind::Source, _) => Side::Answer,
        (_, Field::Id) => Side::Answer,
        _ => Side::Request,
    }
}

/// One field's mapping from its string or table form.
fn field_map(
    checker: &mut Checker<'_>,
    at: &[&str],
    field: Field,
    raw: &RawField,
) -> Option<FieldMap> {
    let table = match raw {
        RawField::Path(path) => return Some(FieldMap::at(path.clone())),
        RawField::Table(table) => table,
    };
    let (write, read) = match (&table.path, &table.write, &table.read) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            checker.report(
                at,
                "give `path` (written and read there), or `write` and/or `read`, not both",
            );
            return None;
        }
        (Some(path), None, None) => (Some(path.clone()), Some(path.clone())),
        (None, None, None) => {
            checker.report(at, "needs `path`, or `write` and/or `read`");
            return None;
        }
        (None, write, read) => (write.clone(), read.clone()),
    };
    let mut ok = true;
    if !table.read_values.is_empty() {
        if read.is_none() {
            checker.report(
                &[at, &["read-values"]].concat(),
                "read-values apply to what is read, but the field has no read path",
            );
            ok = false;
        }
        ok &= check_value_table(
            checker,
            &[at, &["read-values"]].concat(),
            field,
            &table.read_values,
        );
    }
    if let Some(pattern) = &table.write_pattern {
        let at = [at, &["write-pattern"]].concat();
        if !matches!(field, Field::Id | Field::Owner | Field::Source) {
            checker.report(
                &at,
                format!("only ids are written inside text (id, owner, source), not `{field}`"),
            );
            ok = false;
        } else if !one_id_slot(pattern) {
            checker.report(&at, "must hold {id} once, and no other placeholder");
            ok = false;
        } else if table.value_type.is_some_and(|t| t != ValueType::String) {
            checker.report(&at, "an id written inside text is a string");
            ok = false;
        } else if write.is_none() {
            checker.report(&at, "the field has no write path");
            ok = false;
        }
    }
    if let Some(default) = &table.default {
        let at = [at, &["default"]].concat();
        if matches!(
            field,
            Field::Id | Field::Owner | Field::Source | Field::ExternalId
        ) {
            checker.report(
                &at,
                format!("`{field}` cannot have a default: the Connector decides it"),
            );
            ok = false;
        } else if let Some(allowed) = canonical_values(field) {
            if !allowed.contains(&default.as_str()) {
                checker.report(
                    &at,
                    format!(
                        "`{default}` is not a value of `{field}`; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
                ok = false;
            }
        }
        if write.is_none() {
            checker.report(&at, "the field has no write path");
            ok = false;
        }
    }
    ok.then(|| FieldMap {
        write,
        read,
        value_type: table.value_type.unwrap_or_default(),
        read_values: table.read_values.clone(),
        write_pattern: table.write_pattern.clone(),
        default: table.default.clone(),
    })
}

/// Whether `template` holds `{id}` once and no other placeholder.
fn one_id_slot(template: &Template) -> bool {
    template.slots() == BTreeSet::from([Slot::Id])
        && template
            .pieces()
            .iter()
            .filter(|piece| matches!(piece, super::template::Piece::Slot(_)))
            .count()
            == 1
}

/// A table of coded values: canonical values of the field, partner values told apart.
fn check_value_table(
    checker: &mut Checker<'_>,
    at: &[&str],
    field: Field,
    table: &BTreeMap<String, String>,
) -> bool {
    let mut ok = true;
    if let Some(allowed) = canonical_values(field) {
        for canonical in table.keys() {
            if !allowed.contains(&canonical.as_str()) {
                checker.report(
                    &[at, &[canonical.as_str()]].concat(),
                    format!(
                        "`{canonical}` is not a value of `{field}`; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
                ok = false;
            }
        }
    }
    let mut seen = BTreeSet::new();
    for partner_value in table.values() {
        if !seen.insert(partner_value) {
            checker.report(
                at,
                format!("two values are written as `{partner_value}`; they could not be told apart on reading"),
            );
            ok = false;
        }
    }
    ok
}

/// A field typed other than string: every value the Connector can write must be of the type.
fn check_value_type(
    checker: &mut Checker<'_>,
    at: &[&str],
    field: Field,
    map: &FieldMap,
    values: Option<&BTreeMap<String, String>>,
) -> bool {
    let value_type = map.value_type;
    let name = value_type.key();
    // Ids, owners and sources hold the partner's own ids, whatever their type.
    if matches!(field, Field::Id | Field::Owner | Field::Source) {
        if value_type == ValueType::Boolean {
            checker.report(at, format!("`{field}` holds ids and cannot be a boolean"));
            return false;
        }
        return true;
    }
    let Some(allowed) = canonical_values(field) else {
        checker.report(
            at,
            format!(
                "`{field}` holds free text; only ids (id, owner, source) and coded fields (type, status, gender) can be {name}s"
            ),
        );
        return false;
    };
    let mut ok = true;
    for table in [
        values,
        (!map.read_values.is_empty()).then_some(&map.read_values),
    ]
    .into_iter()
    .flatten()
    {
        for canonical in allowed {
            let written = table.get(*canonical).map_or(*canonical, String::as_str);
            let fits = !super::codec::typed_value(value_type, written).is_string();
            if !fits {
                checker.report(
                    at,
                    format!(
                        "`{field}` is {name}, but `{canonical}` is written as `{written}`: give every value in [values] as a {name}"
                    ),
                );
                ok = false;
            }
        }
    }
    if values.is_none() {
        checker.report(
            at,
            format!(
                "`{field}` is {name}: give its values ({}) as {name}s in [records.*.values.{field}]",
                allowed.join(", ")
            ),
        );
        ok = false;
    }
    ok
}

fn check_profile(
    checker: &mut Checker<'_>,
    profile: &Profile,
    declared_operations: &BTreeSet<OperationKind>,
    declared_records: &BTreeSet<RecordKind>,
    capabilities_known: bool,
) {
    match reqwest::Url::parse(&profile.partner.base_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            if url.query().is_some() || url.fragment().is_some() {
                checker.report(
                    &["partner", "base-url"],
                    "must not carry a query or fragment; put query parameters on the operations",
                );
            }
        }
        Ok(url) => checker.report(
            &["partner", "base-url"],
            format!("scheme `{}` is not http or https", url.scheme()),
        ),
        Err(error) => checker.report(
            &["partner", "base-url"],
            format!("`{}` is not a URL: {error}", profile.partner.base_url),
        ),
    }
    check_auth(checker, &profile.auth);
    check_headers(checker, &["partner", "headers"], &profile.partner.headers);
    for (name, template) in &profile.partner.query {
        if template
            .slots()
            .iter()
            .any(|slot| matches!(slot, Slot::Id | Slot::Email))
        {
            checker.report(
                &["partner", "query", name],
                "query parameters of every request may use only {client_id} and {club_id}",
            );
        }
        for slot in template.slots() {
            let missing = match slot {
                Slot::ClientId => profile.tenancy.client_id.is_none(),
                Slot::ClubId => profile.tenancy.club_id.is_none(),
                _ => false,
            };
            if missing {
                checker.report(
                    &["partner", "query", name],
                    format!("uses {} but [tenancy] does not give it", slot.placeholder()),
                );
            }
        }
    }
    check_reference_types(checker, profile);
    check_token_url(checker, profile);
    check_tls(checker, profile);
    let mut routes: Vec<(Route, OperationKind)> = Vec::new();
    for (kind, operation) in &profile.operations {
        check_operation(checker, profile, *kind, operation, &mut routes);
        check_body_format(checker, profile, *kind, operation);
    }
    check_namespaces(checker, profile);
    if !capabilities_known {
        // What the capabilities require cannot be judged until they parse.
        return;
    }

    let caps = profile.capabilities;
    if !caps.prospects && !caps.members {
        checker.report(
            &["capabilities"],
            "the partner must receive prospects, members or both",
        );
    }
    if caps.staff_owner && !caps.prospects {
        checker.report(
            &["capabilities", "staff-owner"],
            "a staff owner belongs to prospects, but prospects is false",
        );
    }
    if caps.lead_source && !caps.prospects {
        checker.report(
            &["capabilities", "lead-source"],
            "a lead source belongs to prospects, but prospects is false",
        );
    }

    let has = |kind: OperationKind| declared_operations.contains(&kind);
    // The guide: "Your API MUST provide a call to get a list of staff."
    if caps.staff_owner && !has(OperationKind::StaffList) {
        checker.report(
            &["operations", "staff-list"],
            "owner support is declared but no staff-list operation is given (the guide: the API MUST provide a call to get a list of staff)",
        );
    }
    if caps.lead_source && !has(OperationKind::SourceList) && !has(OperationKind::SourceCreate) {
        checker.report(
            &["operations", "source-list"],
            "lead-source support is declared but neither source-list nor source-create is given",
        );
    }
    for (kind, carried) in [
        (RecordKind::Prospect, caps.prospects),
        (RecordKind::Member, caps.members),
    ] {
        check_writes(checker, kind, carried, &has);
    }
    for kind in declared_operations {
        let needed = match kind.record() {
            RecordKind::Staff => caps.staff_owner,
            RecordKind::Source => caps.lead_source,
            RecordKind::Prospect => caps.prospects,
            RecordKind::Member => caps.members,
        };
        if !needed {
            checker.report(
                &["operations", kind.key()],
                format!(
                    "is given but the capability it serves is not declared ({})",
                    capability_key(kind.record())
                ),
            );
        }
    }
    for kind in RecordKind::ALL {
        let needed = match kind {
            RecordKind::Staff => caps.staff_owner,
            RecordKind::Source => caps.lead_source,
            RecordKind::Prospect => caps.prospects,
            RecordKind::Member => caps.members,
        };
        if needed && !declared_records.contains(&kind) {
            checker.report(
                &["records", kind.key()],
                format!(
                    "{} is declared but [records.{}] is missing",
                    capability_key(kind),
                    kind.key()
                ),
            );
        } else if !needed && declared_records.contains(&kind) {
            checker.report(
                &["records", kind.key()],
                format!("is given but {} is not declared", capability_key(kind)),
            );
        }
    }
    if let Some(prospect) = profile.records.get(&RecordKind::Prospect) {
        for (field, wanted) in [
            (Field::Owner, caps.staff_owner),
            (Field::Source, caps.lead_source),
        ] {
            let mapped = prospect.fields.contains_key(&field);
            if wanted && !mapped {
                checker.report(
                    &["records", "prospect", "fields"],
                    format!(
                        "{} is declared but `{field}` is not mapped",
                        capability_key_for(field)
                    ),
                );
            } else if !wanted && mapped {
                checker.report(
                    &["records", "prospect", "fields", field.key()],
                    format!(
                        "is mapped but {} is not declared",
                        capability_key_for(field)
                    ),
                );
            }
        }
    }
}

/// Owners and sources referenced by id carry the partner's staff and source ids: typed alike
/// on both sides, and present where the Connector needs them.
fn check_reference_types(checker: &mut Checker<'_>, profile: &Profile) {
    let numeric = |kind: RecordKind, field: Field| {
        profile
            .records
            .get(&kind)
            .and_then(|mapping| mapping.fields.get(&field))
            .is_some_and(|map| matches!(map.value_type, ValueType::Integer | ValueType::Number))
    };
    let references = profile.references;
    // A mapping that did not load is reported on its own.
    let prospects_mapped = profile.records.contains_key(&RecordKind::Prospect);
    for (field, by_id, target, what) in [
        (
            Field::Owner,
            references.owner == OwnerReference::Id,
            RecordKind::Staff,
            "staff",
        ),
        (
            Field::Source,
            references.source == SourceReference::Id,
            RecordKind::Source,
            "source",
        ),
    ] {
        let typed = numeric(RecordKind::Prospect, field);
        let target_typed = numeric(target, Field::Id);
        if !prospects_mapped {
            continue;
        }
        if typed && !by_id {
            checker.report(
                &["records", "prospect", "fields", field.key(), "type"],
                format!(
                    "the {field} is referenced by {}, which is text, not a number",
                    if field == Field::Owner {
                        "email"
                    } else {
                        "name"
                    }
                ),
            );
        } else if typed != target_typed && by_id && profile.records.contains_key(&target) {
            checker.report(
                &["records", "prospect", "fields", field.key(), "type"],
                format!(
                    "the {field} holds the partner's {what} ids: type it as [records.{}.fields] id is typed ({})",
                    target.key(),
                    if target_typed { "a number" } else { "a string" }
                ),
            );
        }
    }
    let source_ids = profile
        .records
        .get(&RecordKind::Source)
        .map(|mapping| mapping.fields.contains_key(&Field::Id));
    if source_ids == Some(false) {
        if references.source != SourceReference::Name
            || references.source_as_read() != SourceReference::Name
        {
            checker.report(
                &["records", "source", "fields"],
                "sources without ids must be referenced by name: set references.source = \"name\" (and leave source-read unset)",
            );
        }
        let source_create = profile.operation(OperationKind::SourceCreate);
        if source_create
            .is_some_and(|op| op.id_at.is_some() || op.id_from == Some(IdFrom::Location))
        {
            checker.report(
                &["operations", "source-create"],
                "sources have no id in [records.source.fields]: the create cannot answer one",
            );
        }
    }
    let name_written = profile
        .records
        .get(&RecordKind::Source)
        .and_then(|mapping| mapping.fields.get(&Field::Name))
        .is_some_and(|map| map.write.is_some());
    if profile.operation(OperationKind::SourceCreate).is_some() && !name_written {
        checker.report(
            &["records", "source", "fields", "name"],
            "source-create sends the name: it needs a `write` path",
        );
    }
    if references.source_spelling.is_some() && references.source != SourceReference::Name {
        checker.report(
            &["references", "source-spelling"],
            "applies to sources referenced by name (source = \"name\")",
        );
    }
    if references.owner_read == Some(references.owner) {
        checker.report(
            &["references", "owner-read"],
            "says what owner already says; leave it out",
        );
    }
    if references.source_read == Some(references.source) {
        checker.report(
            &["references", "source-read"],
            "says what source already says; leave it out",
        );
    }
}

fn capability_key(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Staff => "capabilities.staff-owner",
        RecordKind::Source => "capabilities.lead-source",
        RecordKind::Prospect => "capabilities.prospects",
        RecordKind::Member => "capabilities.members",
    }
}

fn capability_key_for(field: Field) -> &'static str {
    if field == Field::Owner {
        "capabilities.staff-owner"
    } else {
        "capabilities.lead-source"
    }
}

fn check_writes(
    checker: &mut Checker<'_>,
    kind: RecordKind,
    carried: bool,
    has: &dyn Fn(OperationKind) -> bool,
) {
    let (save, create, update) = match kind {
        RecordKind::Prospect => (
            OperationKind::ProspectSave,
            OperationKind::ProspectCreate,
            OperationKind::ProspectUpdate,
        ),
        _ => (
            OperationKind::MemberSave,
            OperationKind::MemberCreate,
            OperationKind::MemberUpdate,
        ),
    };
    if !carried {
        return;
    }
    if has(save) && (has(create) || has(update)) {
        checker.report(
            &["operations", save.key()],
            format!(
                "give either {} or {} + {}, not both",
                save.key(),
                create.key(),
                update.key()
            ),
        );
    } else if !has(save) && !has(create) {
        checker.report(
            &["operations", save.key()],
            format!(
                "{} is declared but neither {} nor {} is given",
                capability_key(kind),
                save.key(),
                create.key()
            ),
        );
    } else if has(create) && !has(update) {
        checker.report(
            &["operations", update.key()],
            format!(
                "{} is given without {}: the Connector sends updates of saved records by the partner's id",
                create.key(),
                update.key()
            ),
        );
    } else if has(update) && !has(create) {
        checker.report(
            &["operations", create.key()],
            format!("{} is given without {}", update.key(), create.key()),
        );
    }
}

fn check_auth(checker: &mut Checker<'_>, auth: &AuthSection) {
    // More secret headers: real header names, each holding a variable's name, none clashing
    // with the scheme's own header.
    let scheme_header = match auth.scheme {
        AuthScheme::Bearer | AuthScheme::Basic | AuthScheme::OAuth2ClientCredentials => {
            Some("authorization".to_owned())
        }
        AuthScheme::ApiKey => auth.header.as_ref().map(|h| h.to_ascii_lowercase()),
        AuthScheme::None => None,
    };
    for (header, variable) in &auth.more_headers {
        let at = ["auth", "more-headers", header.as_str()];
        let valid = !header.is_empty()
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            checker.report(&at, format!("`{header}` is not an HTTP header name"));
        } else if scheme_header.as_deref() == Some(header.to_ascii_lowercase().as_str()) {
            checker.report(&at, "the scheme already sends this header");
        } else if matches!(
            header.to_ascii_lowercase().as_str(),
            "content-type" | "content-length" | "host" | "accept" | "soapaction"
        ) {
            checker.report(&at, format!("`{header}` is set by spoke itself"));
        }
        if !is_env_name(variable) {
            checker.report(
                &at,
                "must be the name of an environment variable (letters, digits, `_`), never the secret itself",
            );
        }
    }
    let given = [
        ("token-env", auth.token_env.is_some()),
        ("header", auth.header.is_some()),
        ("query", auth.query.is_some()),
        ("key-env", auth.key_env.is_some()),
        ("username-env", auth.username_env.is_some()),
        ("password-env", auth.password_env.is_some()),
        ("token-url", auth.token_url.is_some()),
        ("client-id-env", auth.client_id_env.is_some()),
        ("client-secret-env", auth.client_secret_env.is_some()),
        ("scope", auth.scope.is_some()),
        ("audience", auth.audience.is_some()),
        ("client-auth", auth.client_auth.is_some()),
    ];
    let scheme_name = auth.scheme.key();
    let wanted: &[&str] = match auth.scheme {
        AuthScheme::None => &[],
        AuthScheme::Bearer => &["token-env"],
        AuthScheme::ApiKey => &["key-env", "header", "query"],
        AuthScheme::Basic => &["username-env", "password-env"],
        AuthScheme::OAuth2ClientCredentials => &[
            "token-url",
            "client-id-env",
            "client-secret-env",
            "scope",
            "audience",
            "client-auth",
        ],
    };
    for (key, present) in given {
        if present && !wanted.contains(&key) {
            checker.report(
                &["auth", key],
                format!("does not belong to scheme `{scheme_name}`"),
            );
        }
    }
    let require = |checker: &mut Checker<'_>, key: &str, value: &Option<String>| {
        match value {
        None => checker.report(
            &["auth"],
            format!("scheme `{scheme_name}` needs `{key}` (the name of an environment variable)"),
        ),
        Some(name) if !is_env_name(name) => checker.report(
            &["auth", key],
            "must be the name of an environment variable (letters, digits, `_`), never the secret itself",
        ),
        Some(_) => {}
    }
    };
    match auth.scheme {
        AuthScheme::None => {}
        AuthScheme::Bearer => require(checker, "token-env", &auth.token_env),
        AuthScheme::Basic => {
            require(checker, "username-env", &auth.username_env);
            require(checker, "password-env", &auth.password_env);
        }
        AuthScheme::OAuth2ClientCredentials => {
            if auth.token_url.is_none() {
                checker.report(
                    &["auth"],
                    "scheme `oauth2-client-credentials` needs `token-url` (the token endpoint: an absolute URL, or a path under base-url)",
                );
            }
            require(checker, "client-id-env", &auth.client_id_env);
            require(checker, "client-secret-env", &auth.client_secret_env);
            if let Some(scope) = &auth.scope {
                if let Err(message) = crate::auth::scope_tokens(scope) {
                    checker.report(&["auth", "scope"], message);
                }
            }
            if let Some(audience) = &auth.audience {
                if audience.trim().is_empty() || audience.trim() != audience {
                    checker.report(
                        &["auth", "audience"],
                        "must not be empty or have leading or trailing spaces",
                    );
                }
            }
        }
        AuthScheme::ApiKey => {
            require(checker, "key-env", &auth.key_env);
            match (&auth.header, &auth.query) {
                (Some(_), Some(_)) => checker.report(
                    &["auth", "query"],
                    "give the key's header or its query parameter, not both",
                ),
                (None, None) => checker.report(
                    &["auth"],
                    "scheme `api-key` needs `header` or `query` to say where the key goes",
                ),
                (Some(name), None) | (None, Some(name)) if name.trim().is_empty() => {
                    checker.report(&["auth"], "the key's header or query parameter has no name")
                }
                _ => {}
            }
        }
    }
}

/// `[auth] token-url`: where it is, that the client secret travels to it only over TLS (or on
/// a loopback host), and that the mock partner can serve it beside the operations.
fn check_token_url(checker: &mut Checker<'_>, profile: &Profile) {
    let Some(token_url) = &profile.auth.token_url else {
        return;
    };
    if profile.auth.scheme != AuthScheme::OAuth2ClientCredentials {
        return;
    }
    let key = ["auth", "token-url"];
    let endpoint = match crate::auth::TokenEndpoint::locate(token_url, &profile.partner.base_url) {
        Ok(endpoint) => endpoint,
        Err(message) => return checker.report(&key, message),
    };
    // Where the profile's own base-url puts it (a bad base-url is reported on its own).
    if let Ok(base) = reqwest::Url::parse(&profile.partner.base_url) {
        if let Ok(url) = endpoint.url(&crate::auth::with_trailing_slash(base)) {
            if url.scheme() == "http" && !crate::auth::is_loopback(&url) {
                checker.report(
                    &key,
                    format!(
                        "the client secret is sent to the token endpoint, so it must be https (http only on a loopback host); it is {url}"
                    ),
                );
            }
        }
    }
    let path = endpoint.mock_path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (kind, operation) in &profile.operations {
        let Ok(pattern) = path_segments(&operation.path) else {
            continue;
        };
        let same = pattern.len() == segments.len()
            && pattern.iter().zip(&segments).all(|(part, actual)| {
                match (part, part.slot(), part.capture(actual)) {
                    (PathSegment::Literal(text), _, _) => text == actual,
                    (_, _, None) => false,
                    (_, Some(Slot::Id | Slot::Email), Some(_)) => true,
                    (_, Some(slot), Some(captured)) => {
                        super::SlotValues::value(&profile.tenancy, slot) == Some(captured)
                    }
                    (_, None, Some(_)) => false,
                }
            });
        if same {
            checker.report(
                &key,
                format!(
                    "the token endpoint's path {path} is also the path of operations.{}; they must differ",
                    kind.key()
                ),
            );
        }
    }
}

/// `[tls]`: variable names, a key with every certificate, and an https partner.
fn check_tls(checker: &mut Checker<'_>, profile: &Profile) {
    let Some(tls) = &profile.tls else {
        return;
    };
    let keys = [
        ("client-cert-env", &tls.client_cert_env),
        ("client-key-env", &tls.client_key_env),
        ("ca-cert-env", &tls.ca_cert_env),
    ];
    if keys.iter().all(|(_, value)| value.is_none()) {
        checker.report(
            &["tls"],
            "an empty [tls] section: give client-cert-env and client-key-env (a client certificate), ca-cert-env (CAs to trust), or both",
        );
        return;
    }
    for (key, value) in keys {
        if let Some(name) = value {
            if !is_env_name(name) {
                checker.report(
                    &["tls", key],
                    "must be the name of an environment variable (letters, digits, `_`) that holds the path of a PEM file",
                );
            }
        }
    }
    match (&tls.client_cert_env, &tls.client_key_env) {
        (Some(_), None) => checker.report(
            &["tls", "client-cert-env"],
            "a client certificate needs its private key: add `client-key-env`",
        ),
        (None, Some(_)) => checker.report(
            &["tls", "client-key-env"],
            "a private key needs its certificate: add `client-cert-env`",
        ),
        _ => {}
    }
    if let Ok(base) = reqwest::Url::parse(&profile.partner.base_url) {
        if base.scheme() == "http" {
            checker.report(
                &["tls"],
                format!(
                    "certificates are used only over https, but partner.base-url is {}",
                    profile.partner.base_url
                ),
            );
        }
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_operation(
    checker: &mut Checker<'_>,
    profile: &Profile,
    kind: OperationKind,
    operation: &Operation,
    routes: &mut Vec<(Route, OperationKind)>,
) {
    let key = kind.key();
    let role = kind.role();
    let mut allowed_slots = BTreeSet::from([Slot::ClientId, Slot::ClubId]);
    if kind.addresses_one_record() {
        allowed_slots.insert(Slot::Id);
    }
    if role == OperationRole::Lookup {
        allowed_slots.insert(Slot::Email);
    }
    let mut used_slots = BTreeSet::new();
    let mut check_slots = |checker: &mut Checker<'_>, at: &[&str], template: &Template| {
        for slot in template.slots() {
            if !allowed_slots.contains(&slot) {
                checker.report(
                    at,
                    format!("{} cannot be used in {key}", slot.placeholder()),
                );
            }
            let tenancy_missing = match slot {
                Slot::ClientId => profile.tenancy.client_id.is_none(),
                Slot::ClubId => profile.tenancy.club_id.is_none(),
                _ => false,
            };
            if tenancy_missing {
                checker.report(
                    at,
                    format!("uses {} but [tenancy] does not give it", slot.placeholder()),
                );
            }
            used_slots.insert(slot);
        }
    };
    check_slots(checker, &["operations", key, "path"], &operation.path);
    for (name, template) in &operation.query {
        check_slots(checker, &["operations", key, "query", name], template);
    }
    for (path, template) in &operation.params {
        let path_text = path.to_string();
        check_slots(
            checker,
            &["operations", key, "params", &path_text],
            template,
        );
    }
    for (name, template) in &operation.headers {
        check_slots(checker, &["operations", key, "headers", name], template);
    }
    for (mapping_kind, mapping) in &profile.records {
        if *mapping_kind == kind.record() {
            for (path, fixed) in &mapping.fixed {
                let path_text = path.to_string();
                check_slots(
                    checker,
                    &["records", mapping_kind.key(), "fixed", &path_text],
                    &fixed.template,
                );
            }
        }
    }
    match path_segments(&operation.path) {
        Ok(segments) => {
            let shape: Vec<Option<String>> = segments
                .into_iter()
                .map(|segment| match segment {
                    PathSegment::Literal(text) => Some(text),
                    PathSegment::Slot(_) => None,
                    PathSegment::Framed { prefix, suffix, .. } => {
                        Some(format!("{prefix}\u{0}{suffix}"))
                    }
                })
                .collect();
            let action = operation.soap_action.clone();
            let route = (operation.method, shape, action);
            // Operations on one route are told apart by their query: each one's requests must
            // fit it better than every other's (a lookup's `?email=` beside the list it filters).
            let told_apart = |other: OperationKind| {
                let Some(other_operation) = profile.operation(other) else {
                    return true;
                };
                if twins(kind, other) {
                    return twins_told_apart(profile, kind, other);
                }
                let best = |mine: &Operation, theirs: &Operation| {
                    let sample = profile.sample_query(mine);
                    profile.query_fit(mine, &sample) > profile.query_fit(theirs, &sample)
                };
                best(operation, other_operation) && best(other_operation, operation)
            };
            let clash = routes
                .iter()
                .find(|(known, other)| *known == route && !told_apart(*other))
                .map(|(_, other)| *other);
            routes.push((route, kind));
            if let Some(other) = clash {
                checker.report(
                    &["operations", key, "path"],
                    format!(
                        "{} {} is also the route of {}{}; the two could not be told apart",
                        operation.method.as_str(),
                        operation.path,
                        other.key(),
                        if operation.soap_action.is_some() {
                            " with the same soap-action"
                        } else {
                            ""
                        }
                    ) + if twins(kind, other) {
                        " (prospects and members may share it when [records.prospect.fixed] and [records.member.fixed], or the two operations' params, write different values at one path)"
                    } else {
                        ""
                    },
                );
            }
        }
        Err(message) => checker.report(&["operations", key, "path"], message),
    }
    // An update may name its record by the id the body carries (`updateclient` with
    // `Client.Id`): the record's id is then written.
    let id_in_body = matches!(
        kind,
        OperationKind::ProspectUpdate | OperationKind::MemberUpdate
    ) && profile
        .records
        .get(&kind.record())
        .and_then(|mapping| mapping.fields.get(&Field::Id))
        .is_some_and(|map| map.write.is_some());
    if kind.addresses_one_record() && !used_slots.contains(&Slot::Id) && !id_in_body {
        checker.report(
            &["operations", key, "path"],
            if profile.format_of(operation).is_soap() {
                format!("{key} addresses one record: its path, query or params must use {{id}}")
            } else {
                format!("{key} addresses one record: its path or query must use {{id}}, or (an update) the record's id must have a write path")
            },
        );
    }
    if role == OperationRole::Lookup && !used_slots.contains(&Slot::Email) {
        checker.report(
            &["operations", key, "query"],
            if profile.format_of(operation).is_soap() {
                "the lookup must send the email: use {email} in its path, query or params"
            } else {
                "the lookup must send the email: use {email} in its path or query"
            },
        );
    }
    let read_only = matches!(
        role,
        OperationRole::List | OperationRole::Lookup | OperationRole::Read
    );
    let soap = profile.format_of(operation).is_soap();
    if soap && operation.method != Method::Post {
        checker.report(
            &["operations", key, "method"],
            format!("{key} speaks SOAP, which is always POST"),
        );
    }
    if soap {
        // SOAP reads are POSTs too; the checks below are about REST methods.
    } else if read_only && operation.method != Method::Get {
        checker.report(
            &["operations", key, "method"],
            format!("{key} reads and must use GET"),
        );
    }
    if !read_only && operation.method == Method::Get {
        checker.report(
            &["operations", key, "method"],
            format!("{key} writes and cannot use GET"),
        );
    }
    let misplaced = |present: bool, name: &str, roles: &[OperationRole]| {
        (present && !roles.contains(&role)).then(|| name.to_owned())
    };
    let lookup_is_list = operation.answer == Some(AnswerShape::List);
    let creates = matches!(
        kind,
        OperationKind::SourceCreate
            | OperationKind::ProspectSave
            | OperationKind::ProspectCreate
            | OperationKind::MemberSave
            | OperationKind::MemberCreate
    );
    for name in [
        misplaced(
            operation.list.is_some() && !(role == OperationRole::Lookup && lookup_is_list),
            "list",
            &[OperationRole::List],
        ),
        misplaced(operation.paging.is_some(), "paging", &[OperationRole::List]),
        misplaced(
            operation.answer.is_some(),
            "answer",
            &[OperationRole::Lookup, OperationRole::Write],
        ),
        misplaced(!operation.none.is_empty(), "none", &[OperationRole::Lookup]),
        misplaced(
            operation.found_field.is_some(),
            "found-field",
            &[OperationRole::Lookup],
        ),
        misplaced(operation.body.is_some(), "body", &[OperationRole::Write]),
        misplaced(
            operation.record.is_some() && lookup_is_list,
            "record",
            &[OperationRole::Write, OperationRole::Read],
        ),
        misplaced(
            operation.record.is_some(),
            "record",
            &[
                OperationRole::Write,
                OperationRole::Read,
                OperationRole::Lookup,
            ],
        ),
        misplaced(
            operation.id_from.is_some(),
            "id-from",
            &[OperationRole::Write],
        ),
        misplaced(operation.id_at.is_some(), "id-at", &[OperationRole::Write]),
        misplaced(
            operation.id_header.is_some(),
            "id-header",
            &[OperationRole::Write],
        ),
        misplaced(
            operation.id_pattern.is_some(),
            "id-pattern",
            &[OperationRole::Write],
        ),
        (operation.conflict.is_some() && !creates).then(|| "conflict".to_owned()),
    ]
    .into_iter()
    .flatten()
    {
        checker.report(
            &["operations", key, &name],
            format!("does not apply to {key}"),
        );
    }
    match (role, operation.answer) {
        (OperationRole::Lookup, None) => checker.report(
            &["operations", key],
            "a lookup must say its answer: \"object\" (one record) or \"list\" (a list of matches)",
        ),
        (OperationRole::Lookup, Some(AnswerShape::Record | AnswerShape::Acknowledgement)) => {
            checker.report(
                &["operations", key, "answer"],
                "a lookup answers \"object\" or \"list\"",
            )
        }
        (OperationRole::Write, Some(AnswerShape::Object | AnswerShape::List)) => checker.report(
            &["operations", key, "answer"],
            "a write answers \"record\" (the saved record, at `record`) or \"acknowledgement\" (not a record)",
        ),
        _ => {}
    }
    if role == OperationRole::Lookup {
        check_none_answers(checker, key, operation);
    }
    if role == OperationRole::Write {
        check_write_answer(checker, profile, kind, operation);
    }
    check_headers(checker, &["operations", key, "headers"], &operation.headers);
    if let Some(paging) = &operation.paging {
        check_paging(checker, key, paging);
    }
}

/// A lookup's "none" answers fit its answer shape; a flag needs its field.
fn check_none_answers(checker: &mut Checker<'_>, key: &str, operation: &Operation) {
    let list = operation.answer == Some(AnswerShape::List);
    for none in &operation.none {
        let fits = match none {
            NoneAnswer::EmptyList | NoneAnswer::NullList => list,
            NoneAnswer::NullRecord => !list,
            _ => true,
        };
        if !fits {
            checker.report(
                &["operations", key, "none"],
                format!(
                    "`{}` does not fit answer = \"{}\"",
                    none.key(),
                    if list { "list" } else { "object" }
                ),
            );
        }
    }
    let flagged = operation.none.contains(&NoneAnswer::Flag);
    if flagged != operation.found_field.is_some() {
        checker.report(
            &["operations", key],
            "none = [\"flag\"] and found-field go together: the field is false when nobody has the email",
        );
    }
    let mut seen = BTreeSet::new();
    for none in &operation.none {
        if !seen.insert(none) {
            checker.report(
                &["operations", key, "none"],
                format!("`{}` is named twice", none.key()),
            );
        }
    }
}

/// Where a write's id comes back, and what a conflict answer says.
fn check_write_answer(
    checker: &mut Checker<'_>,
    profile: &Profile,
    kind: OperationKind,
    operation: &Operation,
) {
    let key = kind.key();
    let acknowledgement = operation.answer == Some(AnswerShape::Acknowledgement);
    let id_from = operation.id_from.unwrap_or_default();
    if acknowledgement && operation.record.is_some() {
        checker.report(
            &["operations", key, "record"],
            "an acknowledgement is not a record: `record` does not apply",
        );
    }
    if operation.id_at.is_some() && id_from != IdFrom::Body {
        checker.report(
            &["operations", key, "id-at"],
            "the id comes from a header (id-from): id-at does not apply",
        );
    }
    match (id_from, &operation.id_header) {
        (IdFrom::Header, None) => checker.report(
            &["operations", key],
            "id-from = \"header\" needs id-header, the header holding the id",
        ),
        (IdFrom::Header, Some(name))
            if name.trim().is_empty() || name.contains(char::is_whitespace) =>
        {
            checker.report(&["operations", key, "id-header"], "is not a header name")
        }
        (IdFrom::Header, Some(_)) => {}
        (_, Some(_)) => checker.report(
            &["operations", key, "id-header"],
            "applies with id-from = \"header\"",
        ),
        (_, None) => {}
    }
    if let Some(pattern) = &operation.id_pattern {
        if !one_id_slot(pattern) {
            checker.report(
                &["operations", key, "id-pattern"],
                "must hold {id} once, and no other placeholder",
            );
        }
        if id_from == IdFrom::Body && operation.id_at.is_none() {
            checker.report(
                &["operations", key, "id-pattern"],
                "applies to the text the id is found in: a header (id-from) or id-at",
            );
        }
    }
    let creates = !kind.addresses_one_record()
        && !matches!(
            kind,
            OperationKind::ProspectUpdate | OperationKind::MemberUpdate
        );
    let record = kind.record();
    let id_read = profile
        .records
        .get(&record)
        .and_then(|mapping| mapping.fields.get(&Field::Id))
        .is_some_and(|map| map.read.is_some());
    let by_name_source =
        record == RecordKind::Source && profile.references.source == SourceReference::Name;
    let id_found =
        id_from != IdFrom::Body || operation.id_at.is_some() || (!acknowledgement && id_read);
    // Without a mapping (reported on its own) nothing can be said about where ids are.
    let mapped = profile.records.contains_key(&record);
    if creates && mapped && !id_found && !by_name_source {
        checker.report(
            &["operations", key],
            if acknowledgement {
                "the answer is an acknowledgement: say where the new id is with id-at, or id-from = \"location\""
            } else {
                "the new record's id cannot be found: map a read path for `id`, or give id-at or id-from = \"location\""
            },
        );
    }
    let Some(conflict) = &operation.conflict else {
        return;
    };
    let at = ["operations", key, "conflict"];
    if !(200..600).contains(&conflict.status) {
        checker.report(
            &at,
            format!("status {} is not an HTTP status", conflict.status),
        );
    }
    if (200..300).contains(&conflict.status) && conflict.when.is_none() {
        checker.report(
            &at,
            "a conflict answered with a 2xx status needs `when` and `equals`, or every success would count as a conflict",
        );
    }
    if conflict.when.is_some() != conflict.equals.is_some() {
        checker.report(&at, "`when` and `equals` go together");
    }
    if conflict.id_from == IdFrom::Header {
        checker.report(&at, "a conflict's id comes from the body or the Location");
    }
    if conflict.id_from == IdFrom::Location
        && (conflict.id_at.is_some() || conflict.pattern.is_some())
    {
        checker.report(
            &at,
            "the id comes from the Location: id-at and pattern do not apply",
        );
    }
    if let Some(pattern) = &conflict.pattern {
        if !one_id_slot(pattern) {
            checker.report(
                &[&at[..], &["pattern"]].concat(),
                "must hold {id} once, and no other placeholder: the text around the existing id",
            );
        }
    }
    let conflict_id_found = conflict.id_from != IdFrom::Body || conflict.id_at.is_some() || id_read;
    if mapped && !conflict_id_found && !by_name_source {
        checker.report(
            &at,
            "the existing record's id cannot be found: give id-at, or id-from = \"location\"",
        );
    }
}

/// Headers a profile fixes: names a header can have, none that spoke sets itself.
fn check_headers(checker: &mut Checker<'_>, at: &[&str], headers: &BTreeMap<String, Template>) {
    for (name, template) in headers {
        let key = [at, &[name.as_str()]].concat();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            checker.report(&key, format!("`{name}` is not an HTTP header name"));
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "authorization"
                | "content-type"
                | "content-length"
                | "host"
                | "soapaction"
                | "transfer-encoding"
        ) {
            checker.report(
                &key,
                format!("`{name}` is set by spoke itself (from [auth] and the body format)"),
            );
        }
        if template
            .slots()
            .iter()
            .any(|slot| matches!(slot, Slot::Id | Slot::Email))
        {
            checker.report(&key, "header values may use only {client_id} and {club_id}");
        }
        if template.as_str().chars().any(char::is_control) {
            checker.report(&key, "a header value cannot hold control characters");
        }
    }
}

/// Whether `a` and `b` are the prospect and member operations of one role.
fn twins(a: OperationKind, b: OperationKind) -> bool {
    use OperationKind::*;
    let pairs = [
        (ProspectSave, MemberSave),
        (ProspectCreate, MemberCreate),
        (ProspectUpdate, MemberUpdate),
        (ProspectRead, MemberRead),
    ];
    pairs.iter().any(|pair| *pair == (a, b) || *pair == (b, a))
}

/// Whether the mock partner can tell a prospect from a member on a route both use: reads and
/// updates by the id (it knows which kind holds it), creates by a fixed value the two record
/// mappings write differently at one path (a type field).
fn twins_told_apart(profile: &Profile, a: OperationKind, b: OperationKind) -> bool {
    if matches!(a.role(), OperationRole::Read) || a.addresses_one_record() {
        return true;
    }
    let fixed = |kind: RecordKind| -> Vec<(String, String)> {
        profile
            .records
            .get(&kind)
            .map(|mapping| {
                mapping
                    .fixed
                    .iter()
                    .filter_map(|(path, value)| {
                        Some((
                            path.to_string(),
                            value
                                .template
                                .render(&profile.tenancy, str::to_owned)
                                .ok()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // Or by a constant of the operations' own params (a body's `lead_status`).
    let params = |kind: OperationKind| -> Vec<(String, String)> {
        profile
            .operation(kind)
            .map(|operation| {
                operation
                    .params
                    .iter()
                    .filter(|(_, template)| {
                        template
                            .slots()
                            .iter()
                            .all(|slot| !matches!(slot, Slot::Id | Slot::Email))
                    })
                    .filter_map(|(path, template)| {
                        Some((
                            path.to_string(),
                            template.render(&profile.tenancy, str::to_owned).ok()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let differ = |first: &[(String, String)], second: &[(String, String)]| {
        first.iter().any(|(path, value)| {
            second
                .iter()
                .any(|(other_path, other_value)| other_path == path && other_value != value)
        })
    };
    differ(&fixed(a.record()), &fixed(b.record())) || differ(&params(a), &params(b))
}

/// A route as the mock partner tells operations apart: method, path shape, SOAP action.
type Route = (Method, Vec<Option<String>>, Option<String>);

/// The keys that depend on an operation's body format: XML element paths, list items, SOAP
/// actions and params.
fn check_body_format(
    checker: &mut Checker<'_>,
    profile: &Profile,
    kind: OperationKind,
    operation: &Operation,
) {
    let key = kind.key();
    let format = profile.format_of(operation);
    let role = kind.role();
    let lists = role == OperationRole::List
        || (role == OperationRole::Lookup && operation.answer == Some(AnswerShape::List));
    let at = |name: &'static str| -> [&str; 3] { ["operations", key, name] };
    // REST writes may fix values of their own body too (`params`); other REST operations
    // send no body.
    let rest_params = role == OperationRole::Write && !format.is_soap();
    if !format.is_xml() {
        for (name, present) in [
            ("item", operation.item.is_some()),
            ("soap-action", operation.soap_action.is_some()),
            ("params", !operation.params.is_empty() && !rest_params),
        ] {
            if present {
                checker.report(
                    &at(name),
                    format!(
                        "belongs to XML/SOAP operations; {key} speaks {}",
                        format.key()
                    ),
                );
            }
        }
        return;
    }
    if format.is_soap() {
        match &operation.soap_action {
            None => checker.report(
                &["operations", key],
                "a SOAP operation needs `soap-action`: the action that selects it",
            ),
            Some(action) if action.trim().is_empty() || action.contains('"') => checker.report(
                &at("soap-action"),
                "must be a non-empty action without quotes",
            ),
            Some(_) => {}
        }
    } else {
        if operation.soap_action.is_some() {
            checker.report(
                &at("soap-action"),
                "belongs to SOAP operations (soap11, soap12)",
            );
        }
        if !operation.params.is_empty() && !rest_params {
            checker.report(
                &at("params"),
                "belongs to SOAP operations and REST writes; a REST read sends values in its path or query",
            );
        }
    }
    if lists {
        match &operation.list {
            Some(list) if !list.is_root() => {}
            _ => checker.report(
                &["operations", key],
                "an XML list needs `list`, the path of the list element (it cannot be the document itself)",
            ),
        }
        match &operation.item {
            None => checker.report(
                &["operations", key],
                "an XML list needs `item`, the name of each item element",
            ),
            Some(item) if !is_xml_name(item) || item.contains('.') => {
                checker.report(&at("item"), format!("`{item}` is not an element name"))
            }
            Some(_) => {}
        }
    } else if operation.item.is_some() {
        checker.report(&at("item"), format!("does not apply to {key}"));
    }
    let acknowledged = operation.answer == Some(AnswerShape::Acknowledgement);
    let needs_record = role == OperationRole::Read
        || (role == OperationRole::Write && !acknowledged)
        || (role == OperationRole::Lookup && !lists);
    if needs_record && operation.record.as_ref().is_none_or(JsonPath::is_root) {
        checker.report(
            &["operations", key],
            "an XML answer needs `record`, the path of the record's element (it cannot be the document itself)",
        );
    }
    if role == OperationRole::Write && operation.body.as_ref().is_none_or(JsonPath::is_root) {
        checker.report(
            &["operations", key],
            "an XML request needs `body`, the path of the record's element (it cannot be the document itself)",
        );
    }
    if format == BodyFormat::Xml {
        // A plain XML document has one root element: every path of an answer starts with it.
        let mut answer_paths: Vec<(&str, &JsonPath)> = Vec::new();
        if let Some(path) = &operation.list {
            answer_paths.push(("list", path));
        }
        if let Some(path) = &operation.record {
            answer_paths.push(("record", path));
        }
        if let Some(paging) = &operation.paging {
            for (name, path) in [
                ("next-field", &paging.next_field),
                ("total-field", &paging.total_field),
            ] {
                if let Some(path) = path {
                    answer_paths.push((name, path));
                }
            }
        }
        if let Some((_, first)) = answer_paths.first() {
            let root = first.steps().first().cloned();
            for (name, path) in &answer_paths[1..] {
                if path.steps().first() != root.as_ref() {
                    checker.report(
                        &["operations", key],
                        format!(
                            "`{name}` ({path}) must start at the answer's root element `{}`: an XML document has one root",
                            root.as_ref().map(ToString::to_string).unwrap_or_default()
                        ),
                    );
                }
            }
        }
    }
    let params: Vec<&JsonPath> = operation.params.keys().collect();
    for (index, path) in params.iter().enumerate() {
        let path_text = path.to_string();
        let at = ["operations", key, "params", path_text.as_str()];
        if path.is_root() {
            checker.report(&at, "cannot be the document itself");
        } else if let Some(body) = operation.body.as_ref().filter(|body| body.overlaps(path)) {
            checker.report(
                &at,
                format!(
                    "overlaps `body` ({body}): the param and the record would overwrite each other"
                ),
            );
        } else if let Some(other) = params[..index].iter().find(|other| other.overlaps(path)) {
            checker.report(
                &at,
                format!("overlaps the param `{other}`: one would overwrite the other"),
            );
        }
    }
}

/// Every element path of an XML-speaking profile uses declared prefixes and valid names.
fn check_namespaces(checker: &mut Checker<'_>, profile: &Profile) {
    for (prefix, uri) in &profile.partner.namespaces {
        if !is_xml_name(prefix)
            || prefix.contains(':')
            || prefix.to_ascii_lowercase().starts_with("xml")
        {
            checker.report(
                &["partner", "namespaces", prefix],
                format!("`{prefix}` cannot be a namespace prefix"),
            );
        }
        if uri.trim().is_empty() {
            checker.report(
                &["partner", "namespaces", prefix],
                "the namespace URI is empty",
            );
        }
    }
    let speaks_xml = profile
        .operations
        .values()
        .any(|operation| profile.format_of(operation).is_xml());
    if !speaks_xml {
        return;
    }
    // An item element name is a one-step path; a name with a dot is refused by `item` itself.
    let items: Vec<(Vec<String>, JsonPath)> = profile
        .operations
        .iter()
        .filter_map(|(kind, operation)| {
            let path = JsonPath::parse(operation.item.as_deref()?).ok()?;
            let key = ["operations", kind.key(), "item"]
                .map(str::to_owned)
                .to_vec();
            Some((key, path))
        })
        .collect();
    let mut paths: Vec<(Vec<String>, &JsonPath)> = items
        .iter()
        .map(|(key, path)| (key.clone(), path))
        .collect();
    for (kind, operation) in &profile.operations {
        let base = |name: &str| {
            vec![
                "operations".to_owned(),
                kind.key().to_owned(),
                name.to_owned(),
            ]
        };
        for (name, path) in [
            ("list", &operation.list),
            ("body", &operation.body),
            ("record", &operation.record),
        ] {
            if let Some(path) = path {
                paths.push((base(name), path));
            }
        }
        if let Some(paging) = &operation.paging {
            for path in [&paging.next_field, &paging.total_field]
                .into_iter()
                .flatten()
            {
                paths.push((base("paging"), path));
            }
        }
        for path in operation.params.keys() {
            paths.push((base("params"), path));
        }
    }
    for (kind, mapping) in &profile.records {
        for (field, map) in &mapping.fields {
            let key = vec![
                "records".to_owned(),
                kind.key().to_owned(),
                "fields".to_owned(),
                field.to_string(),
            ];
            for path in [&map.write, &map.read].into_iter().flatten() {
                paths.push((key.clone(), path));
            }
        }
        for (path, _) in &mapping.fixed {
            let key = vec![
                "records".to_owned(),
                kind.key().to_owned(),
                "fixed".to_owned(),
                path.to_string(),
            ];
            paths.push((key, path));
        }
    }
    for (key, path) in paths {
        // Element names: the keys, and the keys array steps compare or flag.
        let segments: Vec<(String, bool)> = path
            .steps()
            .iter()
            .filter_map(|step| match step {
                Step::Key(key) => Some((key.clone(), false)),
                Step::Match { key, .. } | Step::Flag(key) => Some((key.clone(), true)),
                Step::Index(_) => None,
            })
            .collect();
        for (index, (segment, in_selector)) in segments.iter().enumerate() {
            let (name, attribute) = match segment.strip_prefix('@') {
                Some(name) => (name, true),
                None => (segment.as_str(), false),
            };
            let problem = if attribute && index + 1 != segments.len() && !in_selector {
                Some(format!(
                    "`{segment}` is an attribute and must end the path `{path}`"
                ))
            } else if let Some((prefix, local)) = name.split_once(':') {
                if !profile.partner.namespaces.contains_key(prefix) {
                    Some(format!(
                        "the prefix `{prefix}` in `{path}` is not declared in [partner] namespaces"
                    ))
                } else if !is_xml_name(local) || local.contains(':') {
                    Some(format!("`{segment}` in `{path}` is not an XML name"))
                } else {
                    None
                }
            } else if !is_xml_name(name) {
                Some(format!("`{segment}` in `{path}` is not an XML name"))
            } else {
                None
            };
            if let Some(message) = problem {
                let key: Vec<&str> = key.iter().map(String::as_str).collect();
                checker.report(&key, message);
                break;
            }
        }
    }
}

/// Whether `name` can name an XML element or attribute (ASCII letters, digits, `_ - . :`,
/// starting with a letter or `_`; non-ASCII letters too).
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn check_paging(checker: &mut Checker<'_>, key: &str, paging: &Paging) {
    let given = [
        ("page-param", paging.page_param.is_some()),
        ("first-page", paging.first_page.is_some()),
        ("size-param", paging.size_param.is_some()),
        ("page-size", paging.page_size.is_some()),
        ("offset-param", paging.offset_param.is_some()),
        ("limit-param", paging.limit_param.is_some()),
        ("cursor-param", paging.cursor_param.is_some()),
        ("next-field", paging.next_field.is_some()),
        ("total-field", paging.total_field.is_some()),
        ("total-pages-field", paging.total_pages_field.is_some()),
        ("more-field", paging.more_field.is_some()),
        ("stop", paging.stop.is_some()),
        ("max-page-size", paging.max_page_size.is_some()),
    ];
    let (required, optional): (&[&str], &[&str]) = match paging.style {
        PagingStyle::None => (&[], &[]),
        PagingStyle::PageNumber => (
            &["page-param", "size-param", "page-size", "stop"],
            &[
                "first-page",
                "total-field",
                "total-pages-field",
                "more-field",
                "max-page-size",
            ],
        ),
        PagingStyle::Offset => (
            &["offset-param", "limit-param", "page-size", "stop"],
            &[
                "total-field",
                "total-pages-field",
                "more-field",
                "max-page-size",
            ],
        ),
        PagingStyle::Cursor => (
            &["cursor-param", "next-field"],
            &["size-param", "page-size", "total-field", "max-page-size"],
        ),
        PagingStyle::NextLink => (
            &["next-field"],
            &["size-param", "page-size", "total-field", "max-page-size"],
        ),
        PagingStyle::LinkHeader => (
            &[],
            &["size-param", "page-size", "total-field", "max-page-size"],
        ),
    };
    let style = paging.style.key();
    for (name, present) in given {
        if present && !required.contains(&name) && !optional.contains(&name) {
            checker.report(
                &["operations", key, "paging", name],
                format!("does not apply to paging style `{style}`"),
            );
        }
        if !present && required.contains(&name) {
            checker.report(
                &["operations", key, "paging"],
                format!("paging style `{style}` needs `{name}`"),
            );
        }
    }
    if paging.size_param.is_some() != paging.page_size.is_some()
        && matches!(
            paging.style,
            PagingStyle::Cursor | PagingStyle::NextLink | PagingStyle::LinkHeader
        )
    {
        checker.report(
            &["operations", key, "paging"],
            "give size-param and page-size together",
        );
    }
    for (name, size) in [
        ("page-size", paging.page_size),
        ("max-page-size", paging.max_page_size),
    ] {
        if let Some(size) = size {
            if !(1..=10_000).contains(&size) {
                checker.report(
                    &["operations", key, "paging", name],
                    "must be between 1 and 10000",
                );
            }
        }
    }
    if let Some(first) = paging.first_page {
        if first > 1 {
            checker.report(
                &["operations", key, "paging", "first-page"],
                "must be 0 or 1",
            );
        }
    }
    for (stop, field, name) in [
        (PageStop::Total, paging.total_field.is_some(), "total-field"),
        (
            PageStop::TotalPages,
            paging.total_pages_field.is_some(),
            "total-pages-field",
        ),
        (
            PageStop::MoreFlag,
            paging.more_field.is_some(),
            "more-field",
        ),
    ] {
        if paging.stop == Some(stop) && !field {
            checker.report(
                &["operations", key, "paging"],
                format!(
                    "stop = \"{}\" needs {name}",
                    match stop {
                        PageStop::Total => "total",
                        PageStop::TotalPages => "total-pages",
                        _ => "more-flag",
                    }
                ),
            );
        }
    }
    if paging.more_field.is_some() && paging.stop != Some(PageStop::MoreFlag) {
        checker.report(
            &["operations", key, "paging", "more-field"],
            "applies with stop = \"more-flag\"",
        );
    }
}

//! Records to and from the partner's documents through a profile's field mapping (JSON, or XML
//! read into the same shape by `body`); used by both the Connector (writing requests, reading
//! answers) and the mock partner (the reverse).

use super::path::{scalar_text, JsonPath};
use super::spec::{AbsentStyle, Mapping};
use super::Profile;
use crate::model::{canonical_values, Field, Record, RecordKind};
use serde_json::Value;
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

/// Encodes and decodes one kind of record under a profile.
#[derive(Debug, Clone, Copy)]
pub struct RecordCodec<'p> {
    profile: &'p Profile,
    kind: RecordKind,
    mapping: &'p Mapping,
}

impl<'p> RecordCodec<'p> {
    pub(super) fn new(profile: &'p Profile, kind: RecordKind) -> Self {
        RecordCodec {
            profile,
            kind,
            mapping: profile.mapping(kind),
        }
    }

    /// The partner path of `field`, if mapped.
    pub fn path(&self, field: Field) -> Option<&'p JsonPath> {
        self.mapping.fields.get(&field)
    }

    /// How an absent `field` is written; `None` for fields that are simply left out.
    fn absent_style(&self, field: Field) -> AbsentStyle {
        match (self.kind, field) {
            (RecordKind::Prospect, Field::Owner) => self.profile.absent.owner,
            (RecordKind::Prospect, Field::Source) => self.profile.absent.source,
            _ => AbsentStyle::Omit,
        }
    }

    /// Writes `record` as the partner's JSON object: mapped fields, absent owner/source as the
    /// profile says, and fixed values.
    pub fn encode(&self, record: &Record) -> Value {
        let mut document = Value::Object(Default::default());
        for (field, path) in &self.mapping.fields {
            let value = match record.get(field) {
                Some(value) => Value::String(self.partner_value_of(*field, value)),
                None => match self.absent_style(*field) {
                    AbsentStyle::Omit => continue,
                    AbsentStyle::Null => Value::Null,
                    AbsentStyle::Empty => Value::String(String::new()),
                },
            };
            path.set(&mut document, value);
        }
        for (path, template) in &self.mapping.fixed {
            if let Ok(value) = template.render(&self.profile.tenancy, str::to_owned) {
                path.set(&mut document, Value::String(value));
            }
        }
        document
    }

    /// Reads a record from the partner's JSON object. Null, empty and missing values are absent;
    /// nested values where a scalar belongs and unknown coded values are problems.
    pub fn decode(&self, document: &Value) -> Result<Record, Vec<FieldProblem>> {
        let mut record = Record::new();
        let mut problems = Vec::new();
        if !document.is_object() {
            return Err(vec![FieldProblem {
                path: "(record)".into(),
                message: format!("expected a JSON object, found {}", json_kind(document)),
            }]);
        }
        for (field, path) in &self.mapping.fields {
            let Some(value) = path.get(document) else {
                continue;
            };
            if value.is_null() {
                continue;
            }
            let Some(text) = scalar_text(value) else {
                problems.push(FieldProblem {
                    path: path.to_string(),
                    message: format!("expected a string, found {}", json_kind(value)),
                });
                continue;
            };
            if text.is_empty() {
                continue;
            }
            match self.canonical_value_of(*field, &text) {
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

    /// Checks that the fixed values (tenancy and the like) are present and right.
    pub fn check_fixed(&self, document: &Value) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        for (path, template) in &self.mapping.fixed {
            let Ok(expected) = template.render(&self.profile.tenancy, str::to_owned) else {
                continue;
            };
            let found = path.get(document).and_then(scalar_text);
            if found.as_deref() != Some(expected.as_str()) {
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

    fn partner_value_of(&self, field: Field, canonical: &str) -> String {
        self.mapping
            .values
            .get(&field)
            .and_then(|table| table.get(canonical))
            .cloned()
            .unwrap_or_else(|| canonical.to_owned())
    }

    fn canonical_value_of(&self, field: Field, partner: &str) -> Result<String, String> {
        if let Some(table) = self.mapping.values.get(&field) {
            if let Some((canonical, _)) = table.iter().find(|(_, value)| *value == partner) {
                return Ok(canonical.clone());
            }
            // A table may list only some values: the others are written as the canonical value
            // (see `encode`), so they read back as themselves.
            let unlisted_canonical = canonical_values(field)
                .is_none_or(|allowed| allowed.contains(&partner))
                && !table.contains_key(partner);
            if unlisted_canonical {
                return Ok(partner.to_owned());
            }
            let known: Vec<&str> = table.values().map(String::as_str).collect();
            return Err(format!(
                "`{partner}` is not one of the profile's values for {field}: {}",
                known.join(", ")
            ));
        }
        match canonical_values(field) {
            Some(allowed) if !allowed.contains(&partner) => Err(format!(
                "`{partner}` is not a valid {field}; expected one of: {}",
                allowed.join(", ")
            )),
            _ => Ok(partner.to_owned()),
        }
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

//! Field paths into the partner's documents (dotted `a.b.c` or JSON pointer `/a/b/c`; in XML the
//! steps are elements and a last `@name` an attribute), read and written.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A path to a value inside nested JSON objects. The empty path is the document itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct JsonPath {
    segments: Vec<String>,
    source: String,
}

impl JsonPath {
    /// Parses `a.b.c`, `/a/b/c` (JSON pointer, `~0`/`~1` escapes), or `""` / `"."` for the root.
    pub fn parse(text: &str) -> Result<Self, String> {
        let segments: Vec<String> = if text.is_empty() || text == "." {
            Vec::new()
        } else if let Some(pointer) = text.strip_prefix('/') {
            pointer
                .split('/')
                .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
                .collect()
        } else {
            text.split('.').map(str::to_owned).collect()
        };
        if segments.iter().any(String::is_empty) {
            return Err(format!("`{text}` has an empty segment"));
        }
        Ok(JsonPath {
            segments,
            source: text.to_owned(),
        })
    }

    /// Whether this is the document root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The path's segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether `self` is a strict prefix of `other` or equal to it (the two cannot coexist).
    pub fn overlaps(&self, other: &JsonPath) -> bool {
        let shorter = self.segments.len().min(other.segments.len());
        self.segments[..shorter] == other.segments[..shorter]
    }

    /// The value at this path, if every step exists.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(value, |current, segment| current.as_object()?.get(segment))
    }

    /// Sets the value at this path, creating intermediate objects. Returns false when a step on
    /// the way is not an object (the value is then left unchanged).
    pub fn set(&self, document: &mut Value, new_value: Value) -> bool {
        let Some((last, parents)) = self.segments.split_last() else {
            *document = new_value;
            return true;
        };
        let mut current = document;
        for segment in parents {
            if current.is_null() {
                *current = Value::Object(Map::new());
            }
            let Some(object) = current.as_object_mut() else {
                return false;
            };
            current = object
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if current.is_null() {
            *current = Value::Object(Map::new());
        }
        match current.as_object_mut() {
            Some(object) => {
                object.insert(last.clone(), new_value);
                true
            }
            None => false,
        }
    }

    /// Wraps `value` so that it sits at this path in a new document.
    pub fn wrap(&self, value: Value) -> Value {
        let mut document = Value::Null;
        self.set(&mut document, value);
        document
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source.is_empty() {
            f.write_str("(root)")
        } else {
            f.write_str(&self.source)
        }
    }
}

impl<'de> serde::Deserialize<'de> for JsonPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        JsonPath::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A scalar read from the partner's JSON as text: strings as they are, numbers and booleans in
/// their JSON spelling. `None` for null, absent, or a nested value.
pub fn scalar_text(value: &Value) -> Option<String> {
    scalar_str(value).map(Cow::into_owned)
}

/// `scalar_text` without a copy of a string.
pub fn scalar_str(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        Value::Bool(flag) => Some(Cow::Owned(flag.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_and_pointer_paths_reach_the_same_value() {
        let document = json!({"person": {"name": {"first": "Zoë"}}});
        let dotted = JsonPath::parse("person.name.first").unwrap();
        let pointer = JsonPath::parse("/person/name/first").unwrap();
        assert_eq!(dotted.get(&document), Some(&json!("Zoë")));
        assert_eq!(pointer.get(&document), Some(&json!("Zoë")));
    }

    #[test]
    fn set_creates_nested_objects() {
        let mut document = Value::Null;
        assert!(JsonPath::parse("a.b").unwrap().set(&mut document, json!(1)));
        assert_eq!(document, json!({"a": {"b": 1}}));
    }

    #[test]
    fn set_refuses_to_descend_into_a_scalar() {
        let mut document = json!({"a": 3});
        assert!(!JsonPath::parse("a.b").unwrap().set(&mut document, json!(1)));
        assert_eq!(document, json!({"a": 3}));
    }

    #[test]
    fn empty_segments_are_rejected() {
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse("/a//b").is_err());
    }
}

//! Field paths into the partner's documents, read and written: dotted `a.b.c` or JSON pointer
//! `/a/b/c`, with array steps in the dotted form (`emails[0].value`, `emails[type=work].value`,
//! `phones[?primary].number`); in XML the steps are elements and a last `@name` an attribute.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// The member of an object.
    Key(String),
    /// The element of an array at an index (`[0]`).
    Index(usize),
    /// The first element of an array whose `key` holds `value` (`[type=work]`); writing adds
    /// `{key: value}` when there is none.
    Match {
        /// The member compared.
        key: String,
        /// The value it must hold (compared as text).
        value: String,
    },
    /// The first element of an array whose `key` is true (`[?primary]`); writing adds
    /// `{key: true}` when there is none.
    Flag(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Key(key) => f.write_str(key),
            Step::Index(index) => write!(f, "[{index}]"),
            Step::Match { key, value } => write!(f, "[{key}={value}]"),
            Step::Flag(key) => write!(f, "[?{key}]"),
        }
    }
}

/// A path to a value inside nested JSON objects and arrays. The empty path is the document
/// itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct JsonPath {
    steps: Vec<Step>,
    /// The steps' keys, when every step is a key (most paths): for the readers and writers that
    /// work on keys alone.
    keys: Option<Vec<String>>,
    source: String,
}

impl JsonPath {
    /// Parses `a.b.c` (with `[N]`, `[key=value]` and `[?key]` after a key), `/a/b/c` (JSON
    /// pointer, `~0`/`~1` escapes, keys only), or `""` / `"."` for the root.
    pub fn parse(text: &str) -> Result<Self, String> {
        let steps: Vec<Step> = if text.is_empty() || text == "." {
            Vec::new()
        } else if let Some(pointer) = text.strip_prefix('/') {
            let keys: Vec<String> = pointer
                .split('/')
                .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
                .collect();
            if keys.iter().any(String::is_empty) {
                return Err(format!("`{text}` has an empty segment"));
            }
            keys.into_iter().map(Step::Key).collect()
        } else {
            parse_dotted(text)?
        };
        Ok(JsonPath::from_steps(steps, text.to_owned()))
    }

    fn from_steps(steps: Vec<Step>, source: String) -> JsonPath {
        let keys = steps
            .iter()
            .map(|step| match step {
                Step::Key(key) => Some(key.clone()),
                _ => None,
            })
            .collect();
        JsonPath {
            steps,
            keys,
            source,
        }
    }

    /// Whether this is the document root.
    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// The path's steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The path's keys, when every step is an object key (no array step).
    pub fn keys(&self) -> Option<&[String]> {
        self.keys.as_deref()
    }

    /// Whether every step is an object key.
    pub fn is_plain(&self) -> bool {
        self.keys.is_some()
    }

    /// Whether `self` and `other` could reach the same place (one is a prefix of the other, or
    /// they are equal): two such paths cannot both be written. Array steps that select
    /// different elements (`[type=work]`, `[type=home]`) keep two paths apart.
    pub fn overlaps(&self, other: &JsonPath) -> bool {
        for (a, b) in self.steps.iter().zip(&other.steps) {
            let same_place = match (a, b) {
                (Step::Key(a), Step::Key(b)) => a == b,
                (Step::Index(a), Step::Index(b)) => a == b,
                (Step::Match { key: ka, value: va }, Step::Match { key: kb, value: vb }) => {
                    ka != kb || va == vb
                }
                (Step::Flag(a), Step::Flag(b)) => a == b,
                // An object's member and an array's element in one place: a document holds
                // only one of the two, so one of the values would be lost.
                (Step::Key(_), _) | (_, Step::Key(_)) => return true,
                // An index and a selector may or may not meet: the writer keeps them apart.
                _ => false,
            };
            if !same_place {
                return false;
            }
        }
        true
    }

    /// The value at this path, if every step exists.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.steps
            .iter()
            .try_fold(value, |current, step| match step {
                Step::Key(key) => current.as_object()?.get(key),
                Step::Index(index) => current.as_array()?.get(*index),
                Step::Match { key, value } => current
                    .as_array()?
                    .iter()
                    .find(|element| holds(element, key, value)),
                Step::Flag(key) => current
                    .as_array()?
                    .iter()
                    .find(|element| element.get(key).is_some_and(is_true)),
            })
    }

    /// Sets the value at this path, creating intermediate objects and array elements. Returns
    /// false when a step on the way is of another kind (an object where an array belongs, a
    /// scalar where an object belongs); the document is then left as far as it got.
    pub fn set(&self, document: &mut Value, new_value: Value) -> bool {
        let Some((last, parents)) = self.steps.split_last() else {
            *document = new_value;
            return true;
        };
        let mut current = document;
        for step in parents {
            match step_into(current, step) {
                Some(next) => current = next,
                None => return false,
            }
        }
        match step_into(current, last) {
            Some(slot) => {
                *slot = new_value;
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

/// The place `step` names inside `current`, made if missing (a null becomes the object or
/// array the step needs).
fn step_into<'v>(current: &'v mut Value, step: &Step) -> Option<&'v mut Value> {
    match step {
        Step::Key(key) => {
            if current.is_null() {
                *current = Value::Object(Map::new());
            }
            Some(
                current
                    .as_object_mut()?
                    .entry(key.clone())
                    .or_insert(Value::Null),
            )
        }
        Step::Index(index) => {
            if current.is_null() {
                *current = Value::Array(Vec::new());
            }
            let array = current.as_array_mut()?;
            while array.len() <= *index {
                array.push(Value::Null);
            }
            array.get_mut(*index)
        }
        Step::Match { key, value } => {
            let marker = selector_value(value);
            select_or_push(current, |element| holds(element, key, value), key, marker)
        }
        Step::Flag(key) => select_or_push(
            current,
            |element| element.get(key).is_some_and(is_true),
            key,
            Value::Bool(true),
        ),
    }
}

fn select_or_push<'v>(
    current: &'v mut Value,
    selects: impl Fn(&Value) -> bool,
    key: &str,
    marker: Value,
) -> Option<&'v mut Value> {
    if current.is_null() {
        *current = Value::Array(Vec::new());
    }
    let array = current.as_array_mut()?;
    let position = match array.iter().position(&selects) {
        Some(position) => position,
        None => {
            let mut element = Map::new();
            element.insert(key.to_owned(), marker);
            array.push(Value::Object(element));
            array.len() - 1
        }
    };
    array.get_mut(position)
}

/// The value a selector writes into a new element: `true`/`false` as booleans, anything else as
/// text (partners spell `type` and `field` codes as strings).
fn selector_value(value: &str) -> Value {
    match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        other => Value::String(other.to_owned()),
    }
}

/// Whether `element` is an object whose `key` holds `value` (compared as text).
fn holds(element: &Value, key: &str, value: &str) -> bool {
    element
        .get(key)
        .and_then(scalar_str)
        .is_some_and(|found| found == value)
}

/// Whether a flag's value counts as true: `true`, `"true"`, a non-zero number.
fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::String(text) => text.eq_ignore_ascii_case("true"),
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        _ => false,
    }
}

/// Parses the dotted form: keys separated by `.`, each followed by any number of brackets.
fn parse_dotted(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for part in text.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if key.is_empty() {
            // Brackets without a key only start the path of a bare array (`[0].id`).
            if rest.is_empty() {
                return Err(format!("`{text}` has an empty segment"));
            }
            if !steps.is_empty() {
                return Err(format!(
                    "`{text}`: an array step follows the key it belongs to, without a dot"
                ));
            }
        } else {
            if key.contains(']') {
                return Err(format!("`{text}`: `]` without its `[`"));
            }
            steps.push(Step::Key(key.to_owned()));
        }
        while !rest.is_empty() {
            let Some(inner_end) = rest.find(']') else {
                return Err(format!("`{text}`: `[` without its `]`"));
            };
            let inner = &rest[1..inner_end];
            steps.push(parse_bracket(text, inner)?);
            rest = &rest[inner_end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!(
                    "`{text}`: after `]` comes `.`, `[` or the end, not `{rest}`"
                ));
            }
        }
    }
    Ok(steps)
}

fn parse_bracket(text: &str, inner: &str) -> Result<Step, String> {
    if inner.is_empty() {
        return Err(format!(
            "`{text}`: `[]` selects nothing; give an index `[0]`, `[key=value]` or `[?key]`"
        ));
    }
    if inner.contains('[') {
        return Err(format!("`{text}`: brackets do not nest"));
    }
    if let Some(key) = inner.strip_prefix('?') {
        if key.is_empty() || key.contains('=') {
            return Err(format!("`{text}`: `[?key]` needs a key and no `=`"));
        }
        return Ok(Step::Flag(key.to_owned()));
    }
    if let Some((key, value)) = inner.split_once('=') {
        if key.is_empty() || value.is_empty() {
            return Err(format!(
                "`{text}`: `[key=value]` needs both a key and a value"
            ));
        }
        return Ok(Step::Match {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    inner
        .parse::<usize>()
        .map(Step::Index)
        .map_err(|_| format!("`{text}`: `[{inner}]` is not an index, `[key=value]` or `[?key]`"))
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
        Value::Number(number) => Some(Cow::Owned(number_text(number))),
        Value::Bool(flag) => Some(Cow::Owned(flag.to_string())),
        _ => None,
    }
}

/// A number as the text it compares by: an integral value without a fraction (`42.0` is `42`),
/// so a partner that writes ids as floats reads back the same id.
pub fn number_text(number: &serde_json::Number) -> String {
    if number.is_i64() || number.is_u64() {
        return number.to_string();
    }
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && float.abs() < 9.0e15 => {
            format!("{}", float as i64)
        }
        _ => number.to_string(),
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
        assert!(dotted.is_plain());
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
        assert!(JsonPath::parse("a.").is_err());
    }

    #[test]
    fn array_steps_read_indexes_selectors_and_flags() {
        let document = json!({
            "emails": [{"type": "home", "value": "h@x"}, {"type": "work", "value": "w@x"}],
            "phones": [{"number": "1"}, {"primary": true, "number": "2"}],
            "data": [{"id": 7}]
        });
        let at = |text: &str| JsonPath::parse(text).unwrap().get(&document).cloned();
        assert_eq!(at("emails[0].value"), Some(json!("h@x")));
        assert_eq!(at("emails[type=work].value"), Some(json!("w@x")));
        assert_eq!(at("phones[?primary].number"), Some(json!("2")));
        assert_eq!(at("data[0].id"), Some(json!(7)));
        assert_eq!(at("emails[type=other].value"), None);
        assert_eq!(at("emails[5].value"), None);
        assert!(!JsonPath::parse("emails[0].value").unwrap().is_plain());
    }

    #[test]
    fn array_steps_write_the_elements_they_select() {
        let mut document = Value::Null;
        for (path, value) in [
            ("emails[type=work].value", "w@x"),
            ("emails[type=home].value", "h@x"),
            ("phones[?primary].number", "2"),
            ("data[0].name", "n"),
        ] {
            assert!(JsonPath::parse(path)
                .unwrap()
                .set(&mut document, json!(value)));
        }
        assert_eq!(
            document,
            json!({
                "emails": [{"type": "work", "value": "w@x"}, {"type": "home", "value": "h@x"}],
                "phones": [{"primary": true, "number": "2"}],
                "data": [{"name": "n"}]
            })
        );
        // Written again, the same elements are found, not added.
        assert!(JsonPath::parse("emails[type=work].value")
            .unwrap()
            .set(&mut document, json!("w2@x")));
        assert_eq!(document["emails"].as_array().unwrap().len(), 2);
        assert_eq!(document["emails"][0]["value"], json!("w2@x"));
    }

    #[test]
    fn a_bare_array_path_starts_with_a_bracket() {
        let document = json!([{"id": 1}, {"id": 2}]);
        let path = JsonPath::parse("[1].id").unwrap();
        assert_eq!(path.get(&document), Some(&json!(2)));
    }

    #[test]
    fn malformed_brackets_are_named() {
        for text in [
            "a[", "a]", "a[]", "a[x", "a[=v]", "a[k=]", "a[?]", "a[0]b", "a.[0]", "a[[0]]",
        ] {
            let error = JsonPath::parse(text).unwrap_err();
            assert!(error.contains(text), "{text}: {error}");
        }
    }

    #[test]
    fn selectors_on_different_values_do_not_overlap() {
        let work = JsonPath::parse("emails[type=work].value").unwrap();
        let home = JsonPath::parse("emails[type=home].value").unwrap();
        let whole = JsonPath::parse("emails").unwrap();
        assert!(!work.overlaps(&home));
        assert!(work.overlaps(&work.clone()));
        assert!(whole.overlaps(&work));
    }

    #[test]
    fn an_object_member_and_an_array_element_in_one_place_overlap() {
        let member = JsonPath::parse("contact.email").unwrap();
        let element = JsonPath::parse("contact[0].phone").unwrap();
        assert!(member.overlaps(&element) && element.overlaps(&member));
        let elsewhere = JsonPath::parse("other[0].phone").unwrap();
        assert!(!member.overlaps(&elsewhere));
    }

    #[test]
    fn integral_floats_read_as_integers() {
        assert_eq!(scalar_text(&json!(42.0)).unwrap(), "42");
        assert_eq!(scalar_text(&json!(42)).unwrap(), "42");
        assert_eq!(scalar_text(&json!(4.5)).unwrap(), "4.5");
    }
}

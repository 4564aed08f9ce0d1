//! Reads a record straight from a JSON body's bytes through a profile's mapping, without a JSON
//! tree: the mock partner's fast path for writes. It answers only the plain case (the record an
//! object where the operation says, fields strings or null, fixed values right, no key twice);
//! for anything else it answers `None` and the tree reader, which explains problems, takes over.

use super::codec::RecordCodec;
use super::path::JsonPath;
use crate::model::{Field, Record};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The mapping's paths as a tree of object keys, ready to follow while the body streams by.
#[derive(Debug, Clone)]
pub struct StreamReader {
    root: Vec<(String, Node)>,
    /// Where the record sits: the root itself, or an object under `root`.
    record_at_root: bool,
    /// The rendered value each fixed path must hold, by fixed index.
    fixed: Vec<String>,
}

#[derive(Debug, Clone)]
enum Node {
    Object(Vec<(String, Node)>),
    Field(Field),
    Fixed(usize),
    /// The object holding the record (when the operation wraps it).
    Record(Vec<(String, Node)>),
}

/// Most keys one object of the tree may have: seen keys are kept in a `u64`.
const MOST_KEYS: usize = 64;

impl StreamReader {
    /// The reader of `codec`'s records placed at `at` in the body; `None` when the mapping is
    /// beyond it (paths inside one another, more than 64 keys in one object or fixed values,
    /// a fixed value that does not render).
    pub fn new(codec: &RecordCodec<'_>, at: Option<&JsonPath>) -> Option<StreamReader> {
        // Typed values, array steps and fields read elsewhere than written are the tree's.
        if !codec.is_plain() {
            return None;
        }
        let mut record = Vec::new();
        for (field, path) in codec.fields() {
            insert(&mut record, path.keys()?, Node::Field(field))?;
        }
        let mut fixed = Vec::new();
        for (index, (path, value)) in codec.fixed_values()?.into_iter().enumerate() {
            insert(&mut record, path.keys()?, Node::Fixed(index))?;
            fixed.push(value);
        }
        if fixed.len() > MOST_KEYS || !fits(&record) {
            return None;
        }
        let segments = match at {
            Some(at) => at.keys()?,
            None => &[][..],
        };
        let Some((last, parents)) = segments.split_last() else {
            return Some(StreamReader {
                root: record,
                record_at_root: true,
                fixed,
            });
        };
        let mut node = Node::Record(record);
        node = Node::Object(vec![(last.clone(), node)]);
        for segment in parents.iter().rev() {
            node = Node::Object(vec![(segment.clone(), node)]);
        }
        let Node::Object(root) = node else {
            return None;
        };
        Some(StreamReader {
            root,
            record_at_root: false,
            fixed,
        })
    }

    /// The record in `body`, decoded as `codec.decode` would; `None` when the body is not the
    /// plain case.
    pub fn read(&self, codec: &RecordCodec<'_>, body: &[u8]) -> Option<Record> {
        let mut state = State {
            codec,
            fixed: &self.fixed,
            record: Record::new(),
            fixed_found: 0,
            record_found: false,
        };
        // Checked as UTF-8 once, whole: the slice reader would check each string again.
        let body = std::str::from_utf8(body).ok()?;
        let mut deserializer = serde_json::Deserializer::from_str(body);
        let root = ObjectSeed {
            keys: &self.root,
            state: &mut state,
        };
        match self.record_at_root {
            true => RecordSeed(root).deserialize(&mut deserializer),
            false => root.deserialize(&mut deserializer),
        }
        .ok()?;
        deserializer.end().ok()?;
        let all_fixed = if self.fixed.len() == MOST_KEYS {
            u64::MAX
        } else {
            (1u64 << self.fixed.len()) - 1
        };
        (state.record_found && state.fixed_found == all_fixed).then_some(state.record)
    }
}

/// Adds `node` at `segments` below `keys`; `None` when a path ends inside or on another.
fn insert(keys: &mut Vec<(String, Node)>, segments: &[String], node: Node) -> Option<()> {
    let (first, rest) = segments.split_first()?;
    let position = keys.iter().position(|(key, _)| key == first);
    match (position, rest.is_empty()) {
        (None, true) => keys.push((first.clone(), node)),
        (None, false) => {
            let mut inner = Vec::new();
            insert(&mut inner, rest, node)?;
            keys.push((first.clone(), Node::Object(inner)));
        }
        (Some(index), false) => match &mut keys[index].1 {
            Node::Object(inner) => insert(inner, rest, node)?,
            _ => return None,
        },
        (Some(_), true) => return None,
    }
    Some(())
}

fn fits(keys: &[(String, Node)]) -> bool {
    keys.len() <= MOST_KEYS
        && keys.iter().all(|(_, node)| match node {
            Node::Object(inner) | Node::Record(inner) => fits(inner),
            Node::Field(_) | Node::Fixed(_) => true,
        })
}

struct State<'c, 'p> {
    codec: &'c RecordCodec<'p>,
    fixed: &'c [String],
    record: Record,
    fixed_found: u64,
    record_found: bool,
}

/// Any refusal: the tree reader will say what it is.
#[derive(Debug)]
struct NotPlain;

impl fmt::Display for NotPlain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not the plain case")
    }
}

fn refuse<E: serde::de::Error>() -> E {
    E::custom(NotPlain)
}

struct ObjectSeed<'k, 's, 'c, 'p> {
    keys: &'k [(String, Node)],
    state: &'s mut State<'c, 'p>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    /// A nested object that is null holds none of its fields, as for the tree.
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0u64;
        while let Some(known) = map.next_key_seed(KeySeed(self.keys))? {
            let Some(index) = known else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            // A key twice: the tree keeps the last, which this reader does not follow.
            if seen & (1 << index) != 0 {
                return Err(refuse());
            }
            seen |= 1 << index;
            match &self.keys[index].1 {
                Node::Object(inner) => map.next_value_seed(ObjectSeed {
                    keys: inner,
                    state: self.state,
                })?,
                Node::Record(inner) => map.next_value_seed(RecordSeed(ObjectSeed {
                    keys: inner,
                    state: self.state,
                }))?,
                Node::Field(field) => {
                    let value = map.next_value_seed(ScalarSeed)?;
                    let Some(text) = value.filter(|text| !text.is_empty()) else {
                        continue;
                    };
                    let canonical = self
                        .state
                        .codec
                        .canonical_value(*field, text)
                        .map_err(|_| refuse::<A::Error>())?;
                    self.state.record.insert(*field, canonical);
                }
                Node::Fixed(position) => {
                    let value = map.next_value_seed(ScalarSeed)?;
                    if value.as_deref() != Some(self.state.fixed[*position].as_str()) {
                        return Err(refuse());
                    }
                    self.state.fixed_found |= 1 << position;
                }
            }
        }
        Ok(())
    }
}

/// The record's own object: never null.
struct RecordSeed<'k, 's, 'c, 'p>(ObjectSeed<'k, 's, 'c, 'p>);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the record's object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.state.record_found = true;
        self.0.visit_map(map)
    }
}

/// An object key: the index of the tree's key it names, if any.
struct KeySeed<'k>(&'k [(String, Node)]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(known, _)| known == key))
    }
}

/// A field's value: a string, or null; anything else is not the plain case.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text)))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RecordKind;
    use crate::profile::Profile;
    use proptest::prelude::*;

    /// What the tree reader makes of `body`: the record, if it accepts it as the mock partner
    /// does (the record an object at `at`, its fields readable, its fixed values right).
    fn by_tree(codec: &RecordCodec<'_>, at: Option<&JsonPath>, body: &[u8]) -> Option<Record> {
        let document: serde_json::Value = serde_json::from_slice(body).ok()?;
        let record = match at {
            Some(at) => at.get(&document)?,
            None => &document,
        };
        if !record.is_object() || !codec.check_fixed(record).is_empty() {
            return None;
        }
        codec.decode_request(record, true).ok()
    }

    #[test]
    fn a_plain_body_reads_as_the_tree_reads_it() {
        let profile = Profile::reference();
        let codec = profile.codec(RecordKind::Prospect);
        let body = br#"{"first_name":"Zo\u00eb","last_name":"N\u00fa\u00f1ez","club_id":"CLUB-7",
            "address":{"city":"K\u00f6ln","line1":""},"owner_id":null,"type":"prospect",
            "extra":{"ignored":[1,2,{"x":null}]},"status":"active"}"#;
        let reader = StreamReader::new(&codec, None).unwrap();
        let streamed = reader.read(&codec, body).unwrap();
        assert_eq!(Some(streamed.clone()), by_tree(&codec, None, body));
        assert_eq!(streamed[&Field::City], "Köln");
        assert!(!streamed.contains_key(&Field::AddressLine1));
        assert!(!streamed.contains_key(&Field::Owner));
    }

    #[test]
    fn anything_but_the_plain_case_is_left_to_the_tree() {
        let profile = Profile::reference();
        let codec = profile.codec(RecordKind::Prospect);
        let reader = StreamReader::new(&codec, None).unwrap();
        for body in [
            &br#"{"first_name":"A","club_id":"CLUB-8"}"#[..],
            br#"{"first_name":"A"}"#,
            br#"{"first_name":"A","first_name":"B","club_id":"CLUB-7"}"#,
            br#"{"first_name":7,"club_id":"CLUB-7"}"#,
            br#"{"type":"lead","club_id":"CLUB-7"}"#,
            br#"{"address":"Main St","club_id":"CLUB-7"}"#,
            br#"{"club_id":"CLUB-7"} trailing"#,
            br#"["club_id"]"#,
        ] {
            assert_eq!(
                reader.read(&codec, body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_wrapped_record_is_found_where_the_operation_puts_it() {
        let profile = Profile::reference();
        let codec = profile.codec(RecordKind::Prospect);
        let at = JsonPath::parse("payload.prospect").unwrap();
        let reader = StreamReader::new(&codec, Some(&at)).unwrap();
        let body = br#"{"meta":1,"payload":{"prospect":{"last_name":"Ng","club_id":"CLUB-7"}}}"#;
        assert_eq!(reader.read(&codec, body).unwrap()[&Field::LastName], "Ng");
        assert_eq!(reader.read(&codec, br#"{"payload":{}}"#), None);
    }

    /// A JSON text of an object with keys drawn from the mapping's and others, values of every
    /// kind, and now and then a key twice.
    fn body() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("first_name"),
            Just("last_name"),
            Just("club_id"),
            Just("type"),
            Just("owner_id"),
            Just("address"),
            Just("phones"),
            Just("other"),
        ];
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"CLUB-7\"".to_owned()),
            Just("\"prospect\"".to_owned()),
            Just("\"lead\"".to_owned()),
            Just("3".to_owned()),
            Just("true".to_owned()),
            "[a-zA-Zé\\\\\"]{0,6}".prop_map(|text| serde_json::to_string(&text).unwrap()),
        ];
        let value = leaf.prop_recursive(2, 8, 4, |inner| {
            proptest::collection::vec(
                (prop_oneof![Just("city"), Just("mobile"), Just("x")], inner),
                0..4,
            )
            .prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(key, value)| format!("\"{key}\":{value}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            })
        });
        proptest::collection::vec((key, value), 0..8).prop_map(|members| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(key, value)| format!("\"{key}\":{value}"))
                .collect();
            format!("{{{}}}", members.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the reader accepts, the tree reads the same; and it accepts every body of
        /// strings and nulls without a key twice that the tree accepts.
        #[test]
        fn the_reader_agrees_with_the_tree(body in body()) {
            let profile = Profile::reference();
            let codec = profile.codec(RecordKind::Prospect);
            let reader = StreamReader::new(&codec, None).unwrap();
            let streamed = reader.read(&codec, body.as_bytes());
            let tree = by_tree(&codec, None, body.as_bytes());
            if streamed.is_some() {
                prop_assert_eq!(&streamed, &tree);
            }
            if tree.is_some() && is_plain(&body) {
                prop_assert_eq!(&streamed, &tree, "{}", body);
            }
        }
    }

    /// Whether the tree's reading of `body` is one the reader follows: no key twice, the
    /// record's nested objects objects or null, its fields strings or null.
    fn is_plain(body: &str) -> bool {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        // A colon never appears inside the generated strings: each `":` ends one key.
        let no_key_twice = body.matches("\":").count() == count_members(&value);
        let fields_plain = value.as_object().is_some_and(|record| {
            record.iter().all(|(key, value)| match key.as_str() {
                "address" | "phones" => match value {
                    serde_json::Value::Object(inner) => {
                        inner.values().all(|v| v.is_string() || v.is_null())
                    }
                    serde_json::Value::Null => true,
                    _ => false,
                },
                "other" => true,
                _ => value.is_string() || value.is_null(),
            })
        });
        no_key_twice && fields_plain
    }

    fn count_members(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::Object(map) => {
                map.len() + map.values().map(count_members).sum::<usize>()
            }
            _ => 0,
        }
    }
}

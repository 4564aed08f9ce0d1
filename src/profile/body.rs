//! Request and response bodies in an operation's format (JSON, XML, SOAP 1.1/1.2), to and from
//! the format-neutral record document the codec and the paging work on (a `serde_json::Value`
//! tree: elements become keys, attributes `@name` keys, repeated elements arrays).

use super::path::{scalar_text, JsonPath};
use super::spec::{BodyFormat, Operation};
use super::template::{Slot, SlotValues, Template};
use super::Profile;
use crate::xml::{self, Builder, Element, SOAP11_NAMESPACE, SOAP12_NAMESPACE};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The XML Schema instance namespace, for `xsi:nil` (how an XML body writes a null).
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// What a body held.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A document (for SOAP, the content of the envelope's Body).
    Document(Value),
    /// A SOAP fault, as the neutral error document `{"error": {"code", "message", "field"}}`.
    Fault {
        /// The error document.
        error: Value,
        /// Whether the fault blames the sender (SOAP 1.1 `Client`, 1.2 `Sender`).
        sender: bool,
    },
}

impl Profile {
    /// The body format of `operation`: its own, or the partner's.
    pub fn format_of(&self, operation: &Operation) -> BodyFormat {
        operation.format.unwrap_or(self.partner.format)
    }
}

impl BodyFormat {
    /// The media type of a body in this format, without parameters.
    pub fn media_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Xml => "application/xml",
            BodyFormat::Soap11 => "text/xml",
            BodyFormat::Soap12 => "application/soap+xml",
        }
    }

    /// The `Content-Type` of a body sent in this format (with the SOAP 1.2 action).
    pub fn content_type(self, action: Option<&str>) -> String {
        let media = self.media_type();
        match (self, action) {
            (BodyFormat::Json, _) => media.into(),
            (BodyFormat::Soap12, Some(action)) => {
                format!("{media}; charset=utf-8; action=\"{action}\"")
            }
            _ => format!("{media}; charset=utf-8"),
        }
    }

    /// The `Accept` header asking for this format.
    pub fn accept(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Xml => "application/xml, text/xml",
            BodyFormat::Soap11 => "text/xml",
            BodyFormat::Soap12 => "application/soap+xml",
        }
    }

    /// Whether a received `Content-Type` (lower case) fits this format; empty is accepted.
    pub fn accepts_content_type(self, content_type: &str) -> bool {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.is_empty() {
            return true;
        }
        match self {
            BodyFormat::Json => {
                media == "application/json" || media == "text/json" || media.ends_with("+json")
            }
            BodyFormat::Xml => {
                media == "application/xml" || media == "text/xml" || media.ends_with("+xml")
            }
            BodyFormat::Soap11 => media == "text/xml" || media == "application/xml",
            BodyFormat::Soap12 => media == "application/soap+xml" || media == "application/xml",
        }
    }

    fn envelope_namespace(self) -> Option<&'static str> {
        match self {
            BodyFormat::Soap11 => Some(SOAP11_NAMESPACE),
            BodyFormat::Soap12 => Some(SOAP12_NAMESPACE),
            _ => None,
        }
    }
}

/// The SOAP action a request names: the `SOAPAction` header (quotes removed) or the `action`
/// parameter of the content type.
pub fn request_action(soap_action: Option<&str>, content_type: Option<&str>) -> Option<String> {
    if let Some(action) = soap_action {
        return Some(action.trim().trim_matches('"').to_owned());
    }
    content_type?.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("action"))
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Writes a document as a body of `format`. XML needs exactly one root key (SOAP any number:
/// they are the Body's children).
pub fn encode(profile: &Profile, format: BodyFormat, document: &Value) -> Result<String, String> {
    if format == BodyFormat::Json {
        return Ok(document.to_string());
    }
    let roots = match document {
        Value::Object(map) => map.iter().collect::<Vec<_>>(),
        Value::Null => Vec::new(),
        other => {
            return Err(format!(
                "an XML body is made of elements, not {}",
                super::codec::json_kind(other)
            ))
        }
    };
    let mut elements = Vec::new();
    for (name, value) in roots {
        build_elements(name, value, &mut elements);
    }
    for element in &mut elements {
        declare_namespaces(profile, element);
    }
    match format.envelope_namespace() {
        None => {
            let mut elements = elements.into_iter();
            match (elements.next(), elements.next()) {
                (Some(root), None) => Ok(root.to_document()),
                _ => Err("an XML document needs exactly one root element".into()),
            }
        }
        Some(namespace) => {
            let mut body = Builder::new("soap:Body");
            for element in elements {
                body.push(element);
            }
            Ok(Builder::new("soap:Envelope")
                .attribute("xmlns:soap", namespace)
                .child(body)
                .to_document())
        }
    }
}

fn declare_namespaces(profile: &Profile, element: &mut Builder) {
    // `Builder::attribute` takes the builder by value: move it out and back, no copy.
    let mut declared = std::mem::replace(element, Builder::new(""));
    for (prefix, uri) in &profile.partner.namespaces {
        declared = declared.attribute(format!("xmlns:{prefix}"), uri.clone());
    }
    *element = declared;
}

/// One element per value (an array gives one per item), named `name`.
fn build_elements(name: &str, value: &Value, out: &mut Vec<Builder>) {
    let (qualified, namespace) = match name.strip_prefix('{').and_then(|rest| rest.split_once('}'))
    {
        Some((namespace, local)) => (local.to_owned(), Some(namespace.to_owned())),
        None => (name.to_owned(), None),
    };
    let mut element = Builder::new(qualified);
    if let Some(namespace) = namespace {
        element = element.attribute("xmlns", namespace);
    }
    match value {
        Value::Array(items) => {
            for item in items {
                build_elements(name, item, out);
            }
            return;
        }
        Value::Null => {
            element = element
                .attribute("xmlns:xsi", XSI_NAMESPACE)
                .attribute("xsi:nil", "true");
        }
        Value::Object(map) => {
            for (key, inner) in map {
                if let Some(attribute) = key.strip_prefix('@') {
                    if let Some(text) = scalar_text(inner) {
                        element = element.attribute(attribute, text);
                    }
                } else if key == "#text" {
                    if let Some(text) = scalar_text(inner) {
                        element.push_text(text);
                    }
                } else {
                    let mut children = Vec::new();
                    build_elements(key, inner, &mut children);
                    for child in children {
                        element.push(child);
                    }
                }
            }
        }
        scalar => {
            element.push_text(scalar_text(scalar).unwrap_or_default());
        }
    }
    out.push(element);
}

/// Reads a body of `format` (already checked as text) into a document or a SOAP fault.
/// XML is parsed by [`crate::xml::parse`]: no DTD, no entity expansion, no external fetch.
pub fn decode(profile: &Profile, format: BodyFormat, text: &str) -> Result<Payload, String> {
    if format == BodyFormat::Json {
        return serde_json::from_str(text)
            .map(Payload::Document)
            .map_err(|error| format!("the body is not JSON: {error}"));
    }
    let root = xml::parse(text).map_err(|error| format!("the body is not valid XML: {error}"))?;
    let Some(namespace) = format.envelope_namespace() else {
        let mut document = Map::new();
        document.insert(key_of(profile, &root), element_value(profile, &root));
        return Ok(Payload::Document(Value::Object(document)));
    };
    let version = if format == BodyFormat::Soap11 {
        "1.1"
    } else {
        "1.2"
    };
    if root.name != "Envelope" || root.namespace.as_deref() != Some(namespace) {
        return Err(format!(
            "expected a SOAP {version} Envelope (namespace {namespace}), found <{}> in {}",
            root.name,
            root.namespace.as_deref().unwrap_or("no namespace")
        ));
    }
    let body = root
        .elements()
        .find(|e| e.name == "Body" && e.namespace.as_deref() == Some(namespace))
        .ok_or_else(|| "the SOAP envelope has no Body".to_owned())?;
    if let Some(fault) = body
        .elements()
        .find(|e| e.name == "Fault" && e.namespace.as_deref() == Some(namespace))
    {
        return Ok(read_fault(profile, format, fault));
    }
    let mut document = Map::new();
    for element in body.elements() {
        insert_child(
            &mut document,
            key_of(profile, element),
            element_value(profile, element),
        );
    }
    Ok(Payload::Document(Value::Object(document)))
}

/// A path's key for an element: `prefix:local` with the profile's prefix for its namespace,
/// `local` without a namespace, `{namespace}local` for a namespace the profile does not name
/// (so it matches no path of the profile).
fn key_of(profile: &Profile, element: &Element) -> String {
    qualified(profile, element.namespace.as_deref(), &element.name)
}

fn qualified(profile: &Profile, namespace: Option<&str>, local: &str) -> String {
    let Some(namespace) = namespace else {
        return local.to_owned();
    };
    match profile
        .partner
        .namespaces
        .iter()
        .find(|(_, uri)| uri.as_str() == namespace)
    {
        Some((prefix, _)) => format!("{prefix}:{local}"),
        None => format!("{{{namespace}}}{local}"),
    }
}

fn element_value(profile: &Profile, element: &Element) -> Value {
    let nil = element
        .attributes
        .iter()
        .any(|a| a.name == "nil" && a.namespace.as_deref() == Some(XSI_NAMESPACE));
    let attributes: Vec<_> = element
        .attributes
        .iter()
        .filter(|a| a.namespace.as_deref() != Some(XSI_NAMESPACE))
        .collect();
    let has_children = element.elements().next().is_some();
    if !has_children && attributes.is_empty() {
        return if nil {
            Value::Null
        } else {
            Value::String(element.text())
        };
    }
    let mut map = Map::new();
    for attribute in attributes {
        map.insert(
            format!(
                "@{}",
                qualified(profile, attribute.namespace.as_deref(), &attribute.name)
            ),
            Value::String(attribute.value.clone()),
        );
    }
    for child in element.elements() {
        insert_child(
            &mut map,
            key_of(profile, child),
            element_value(profile, child),
        );
    }
    let text = element.text();
    if !text.trim().is_empty() {
        map.insert("#text".into(), Value::String(text));
    }
    Value::Object(map)
}

/// A repeated element turns its key into an array.
fn insert_child(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

fn read_fault(profile: &Profile, format: BodyFormat, fault: &Element) -> Payload {
    let text_at = |path: &[&str]| fault.descendant(path).map(|e| e.text().trim().to_owned());
    let (code, message) = if format == BodyFormat::Soap11 {
        (text_at(&["faultcode"]), text_at(&["faultstring"]))
    } else {
        (text_at(&["Code", "Value"]), text_at(&["Reason", "Text"]))
    };
    let code = code.unwrap_or_default();
    let local_code = code.rsplit(':').next().unwrap_or_default();
    let sender = matches!(local_code, "Client" | "Sender");
    let detail = fault
        .child("detail")
        .or_else(|| fault.child("Detail"))
        .and_then(|detail| detail.child("error"));
    let mut error = Map::new();
    error.insert("code".into(), Value::String(code.clone()));
    error.insert("message".into(), Value::String(message.unwrap_or_default()));
    if let Some(detail) = detail {
        if let Value::Object(fields) = element_value(profile, detail) {
            for (key, value) in fields {
                error.insert(key, value);
            }
        }
    }
    Payload::Fault {
        error: serde_json::json!({ "error": Value::Object(error) }),
        sender,
    }
}

/// An error answer in `format`: `{"error": {...}}` in JSON, `<error>` in XML, a SOAP fault
/// (Client/Sender for a 4xx, Server/Receiver otherwise) with the same `<error>` as detail.
pub fn error_body(
    format: BodyFormat,
    status: u16,
    code: &str,
    message: &str,
    field: Option<&str>,
) -> String {
    let mut error = Builder::new("error")
        .child(Builder::new("code").text(code))
        .child(Builder::new("message").text(message));
    if let Some(field) = field {
        error = error.child(Builder::new("field").text(field));
    }
    let sender = (400..500).contains(&status);
    match format {
        BodyFormat::Json => {
            let mut inner = serde_json::json!({"code": code, "message": message});
            if let Some(field) = field {
                inner["field"] = Value::String(field.to_owned());
            }
            serde_json::json!({ "error": inner }).to_string()
        }
        BodyFormat::Xml => error.to_document(),
        BodyFormat::Soap11 => {
            let fault = Builder::new("soap:Fault")
                .child(Builder::new("faultcode").text(if sender {
                    "soap:Client"
                } else {
                    "soap:Server"
                }))
                .child(Builder::new("faultstring").text(message))
                .child(Builder::new("detail").child(error));
            Builder::new("soap:Envelope")
                .attribute("xmlns:soap", SOAP11_NAMESPACE)
                .child(Builder::new("soap:Body").child(fault))
                .to_document()
        }
        BodyFormat::Soap12 => {
            let fault = Builder::new("soap:Fault")
                .child(
                    Builder::new("soap:Code").child(Builder::new("soap:Value").text(if sender {
                        "soap:Sender"
                    } else {
                        "soap:Receiver"
                    })),
                )
                .child(
                    Builder::new("soap:Reason").child(
                        Builder::new("soap:Text")
                            .attribute("xml:lang", "en")
                            .text(message),
                    ),
                )
                .child(Builder::new("soap:Detail").child(error));
            Builder::new("soap:Envelope")
                .attribute("xmlns:soap", SOAP12_NAMESPACE)
                .child(Builder::new("soap:Body").child(fault))
                .to_document()
        }
    }
}

/// The items of a list answer: the array at `list` (JSON), or the `item` elements inside the
/// `list` element (XML, where one item is not an array and none may be an empty element).
pub fn list_items(operation: &Operation, document: &Value) -> Result<Vec<Value>, String> {
    let list_path = operation.list.clone().unwrap_or_default();
    let found = list_path.get(document);
    let Some(item) = &operation.item else {
        return match found {
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(other) => Err(format!(
                "expected an array at `{list_path}`, found {}",
                super::codec::json_kind(other)
            )),
            None => Err(format!("no array at `{list_path}`")),
        };
    };
    match found {
        Some(Value::Object(map)) => match map.get(item) {
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(one) => Ok(vec![one.clone()]),
            None => Ok(Vec::new()),
        },
        Some(Value::String(text)) if text.trim().is_empty() => Ok(Vec::new()),
        Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(_)) => Err(format!(
            "expected `{item}` elements in `{list_path}`, found text"
        )),
        Some(_) => Err(format!("expected `{item}` elements in `{list_path}`")),
        None => Err(format!("no list element at `{list_path}`")),
    }
}

/// A list answer's document holding `items` where `list_items` reads them.
pub fn list_document(operation: &Operation, items: Vec<Value>) -> Value {
    let array = Value::Array(items);
    let inner = match &operation.item {
        Some(item) => {
            let mut map = Map::new();
            map.insert(item.clone(), array);
            Value::Object(map)
        }
        None => array,
    };
    match &operation.list {
        Some(path) => path.wrap(inner),
        None => inner,
    }
}

/// Writes an operation's `params` into `document` with the slots filled.
pub fn apply_params(
    operation: &Operation,
    slots: &dyn SlotValues,
    document: &mut Value,
) -> Result<(), String> {
    for (path, template) in &operation.params {
        let value = template
            .render(slots, str::to_owned)
            .map_err(|slot| format!("no value for {}", slot.placeholder()))?;
        if !path.set(document, Value::String(value)) {
            return Err(format!("`{path}` cannot be set in the request body"));
        }
    }
    Ok(())
}

/// The params found in a request document: the `{id}`/`{email}` values captured, constants
/// checked. Errors name the param's path.
pub fn read_params(
    operation: &Operation,
    tenancy: &dyn SlotValues,
    document: &Value,
) -> Result<BTreeMap<Slot, String>, ParamProblem> {
    let mut captured = BTreeMap::new();
    for (path, template) in &operation.params {
        let given = path.get(document).and_then(scalar_text);
        let Some(given) = given.filter(|g| !g.is_empty()) else {
            return Err(ParamProblem::Missing(path.clone()));
        };
        let slots = template.slots();
        if let Some(slot) = slots
            .iter()
            .copied()
            .find(|s| matches!(s, Slot::Id | Slot::Email))
        {
            let value = extract_slot(template, &given)
                .ok_or_else(|| ParamProblem::Malformed(path.clone(), template.to_string()))?;
            captured.insert(slot, value);
            continue;
        }
        let expected = template.render(tenancy, str::to_owned).unwrap_or_default();
        if given != expected {
            return Err(ParamProblem::Other {
                path: path.clone(),
                given,
                expected,
            });
        }
    }
    Ok(captured)
}

/// What is wrong with a request's params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamProblem {
    /// Not given.
    Missing(JsonPath),
    /// Not of the template's shape.
    Malformed(JsonPath, String),
    /// A constant (tenancy) with another value.
    Other {
        /// Where.
        path: JsonPath,
        /// What was given.
        given: String,
        /// What this partner serves.
        expected: String,
    },
}

/// The value filling a template's one `{id}`/`{email}` slot in `given`, literals around it.
pub fn extract_slot(template: &Template, given: &str) -> Option<String> {
    use super::template::Piece;
    let mut prefix = String::new();
    let mut suffix = String::new();
    let mut seen_slot = false;
    for piece in template.pieces() {
        match piece {
            Piece::Text(text) if !seen_slot => prefix.push_str(text),
            Piece::Text(text) => suffix.push_str(text),
            Piece::Slot(Slot::Id | Slot::Email) => seen_slot = true,
            Piece::Slot(_) => return None,
        }
    }
    let value = given.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile() -> Profile {
        let text = include_str!("../../fixtures/profiles/xml-rest.toml");
        Profile::parse("xml-rest.toml", text).unwrap()
    }

    fn document(payload: Payload) -> Value {
        match payload {
            Payload::Document(document) => document,
            Payload::Fault { error, .. } => panic!("a fault: {error}"),
        }
    }

    #[test]
    fn xml_documents_round_trip_attributes_namespaces_nulls_and_repeats() {
        let profile = profile();
        let original = json!({"c:page": {
            "@total": "2",
            "c:item": [{"@id": "1", "c:name": "A & <B>"}, {"@id": "2", "c:name": ""}],
            "c:owner": null,
        }});
        let text = encode(&profile, BodyFormat::Xml, &original).unwrap();
        assert!(
            text.contains("xmlns:c=\"urn:example:clubdesk:v3\""),
            "{text}"
        );
        assert!(text.contains("xsi:nil=\"true\""), "{text}");
        let read = document(decode(&profile, BodyFormat::Xml, &text).unwrap());
        assert_eq!(read, original);
    }

    #[test]
    fn a_list_of_one_item_or_none_reads_as_a_list() {
        let profile = profile();
        let operation = profile
            .operation(super::super::OperationKind::SourceList)
            .unwrap();
        for (items, count) in [(vec![json!({"@id": "LS-1"})], 1), (vec![], 0)] {
            let list = list_document(operation, items);
            let text = encode(&profile, BodyFormat::Xml, &list).unwrap();
            let read = document(decode(&profile, BodyFormat::Xml, &text).unwrap());
            assert_eq!(list_items(operation, &read).unwrap().len(), count, "{text}");
        }
        let text = "<c:sources xmlns:c=\"urn:example:clubdesk:v3\">oops</c:sources>";
        let read = document(decode(&profile, BodyFormat::Xml, text).unwrap());
        assert!(list_items(operation, &read)
            .unwrap_err()
            .contains("found text"));
    }

    #[test]
    fn elements_of_an_undeclared_namespace_match_no_path() {
        let profile = profile();
        let read = document(
            decode(
                &profile,
                BodyFormat::Xml,
                "<x:source xmlns:x=\"urn:elsewhere\"><label/></x:source>",
            )
            .unwrap(),
        );
        assert!(read.get("c:source").is_none());
        assert!(read.get("{urn:elsewhere}source").is_some());
    }

    #[test]
    fn soap_envelopes_carry_the_body_and_faults_become_errors() {
        let profile = profile();
        let text = encode(
            &profile,
            BodyFormat::Soap12,
            &json!({"c:Get": {"c:Id": "7"}}),
        )
        .unwrap();
        assert!(text.contains(SOAP12_NAMESPACE));
        assert_eq!(
            document(decode(&profile, BodyFormat::Soap12, &text).unwrap()),
            json!({"c:Get": {"c:Id": "7"}})
        );
        let refused = decode(&profile, BodyFormat::Soap11, &text).unwrap_err();
        assert!(refused.contains("SOAP 1.1"), "{refused}");
        for format in [BodyFormat::Soap11, BodyFormat::Soap12] {
            let fault = error_body(format, 422, "invalid-field", "bad name", Some("c:Name"));
            match decode(&profile, format, &fault).unwrap() {
                Payload::Fault { error, sender } => {
                    assert!(sender);
                    assert_eq!(error["error"]["field"], "c:Name");
                    assert_eq!(error["error"]["message"], "bad name");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn actions_come_from_the_header_or_the_content_type() {
        assert_eq!(
            request_action(Some("\"urn:a/Get\""), None).as_deref(),
            Some("urn:a/Get")
        );
        assert_eq!(
            request_action(
                None,
                Some("application/soap+xml; charset=utf-8; action=\"urn:a/Get\"")
            )
            .as_deref(),
            Some("urn:a/Get")
        );
        assert_eq!(request_action(None, Some("text/xml")), None);
    }
}

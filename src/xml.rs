//! XML documents as small element trees, read safely (no DTDs, no entities beyond the five
//! predefined ones, bounded depth) and written with every value escaped.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::fmt::Write as _;

/// The deepest nesting accepted; real API documents are a handful of levels deep.
pub const MAX_DEPTH: usize = 64;

/// The SOAP 1.1 envelope namespace.
pub const SOAP11_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP 1.2 envelope namespace.
pub const SOAP12_NAMESPACE: &str = "http://www.w3.org/2003/05/soap-envelope";

/// Why a document was refused, and where (1-based line and column of the offending byte).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct XmlError {
    /// The line of the problem.
    pub line: usize,
    /// The column of the problem (in bytes).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// An element: its resolved name, attributes and children, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The namespace URI the element's prefix (or the default namespace) resolves to.
    pub namespace: Option<String>,
    /// The local name, without prefix.
    pub name: String,
    /// Attributes other than namespace declarations.
    pub attributes: Vec<Attribute>,
    /// Child elements and text.
    pub children: Vec<Node>,
}

/// An attribute with its resolved name and unescaped value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The namespace URI of a prefixed attribute; unprefixed attributes have none.
    pub namespace: Option<String>,
    /// The local name.
    pub name: String,
    /// The value, entities resolved.
    pub value: String,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (text and CDATA), entities resolved.
    Text(String),
}

/// Parses a whole document into its root element.
///
/// Refused: any DOCTYPE (so no entity declarations and no external fetches), references to
/// entities other than `&lt; &gt; &amp; &apos; &quot;` and character references, unknown
/// namespace prefixes, mismatched tags, more than one root, and nesting over [`MAX_DEPTH`].
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let error_at = |offset: u64, message: String| located(text, offset as usize, message);
    loop {
        let before = reader.buffer_position();
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(pair) => pair,
            Err(error) => return Err(error_at(reader.error_position(), error.to_string())),
        };
        let namespace = match resolved {
            ResolveResult::Bound(namespace) => Some(AsRef::<str>::as_ref(&namespace).to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(error_at(
                    before,
                    format!("the prefix `{}` is not bound to a namespace", prefix),
                ))
            }
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(error_at(before, "content after the root element".into()));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(error_at(
                        before,
                        format!("elements nest deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let element = element_of(&reader, &start, namespace)
                    .map_err(|message| error_at(before, message))?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = element_of(&reader, &start, namespace)
                    .map_err(|message| error_at(before, message))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| {
                    error_at(before, "a closing tag without an opening one".into())
                })?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::Text(text_event) => {
                let content = text_event.xml10_content();
                allowed_text(&stack, &content).map_err(|m| error_at(before, m))?;
                push_text(&mut stack, &root, &content).map_err(|m| error_at(before, m))?;
            }
            Event::CData(cdata) => {
                let content = cdata.xml10_content();
                allowed_text(&stack, &content).map_err(|m| error_at(before, m))?;
                push_text(&mut stack, &root, &content).map_err(|m| error_at(before, m))?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(character)) => character.to_string(),
                    Ok(None) => {
                        let name = reference.xml10_content();
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(value) => value.to_owned(),
                            None => {
                                return Err(error_at(
                                    before,
                                    format!(
                                        "the entity `&{name};` is not one of the five predefined \
                                         ones; entities are not expanded"
                                    ),
                                ))
                            }
                        }
                    }
                    Err(error) => {
                        let inside = stack.last().map_or("", |element| element.name.as_str());
                        return Err(error_at(before, format!("in `<{inside}>`: {error}")));
                    }
                };
                allowed_text(&stack, &resolved).map_err(|m| error_at(before, m))?;
                push_text(&mut stack, &root, &resolved).map_err(|m| error_at(before, m))?;
            }
            Event::DocType(_) => {
                return Err(error_at(
                    before,
                    "a DOCTYPE is not accepted: no DTDs, entity declarations or external \
                     entities are processed"
                        .into(),
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(error_at(
            text.len() as u64,
            format!("the element `{}` is never closed", open.name),
        ));
    }
    root.ok_or_else(|| error_at(0, "no root element".into()))
}

/// Whether XML 1.0 allows `c` in a document at all (the `Char` production, §2.2), written
/// plainly or as a character reference: no C0 controls but tab, line feed and carriage return,
/// no surrogates, no U+FFFE or U+FFFF.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` with each character XML cannot hold replaced by U+FFFD: what a writer puts out when
/// a value it must echo (an error naming a bad value) holds one.
pub fn xml_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if is_xml_char(c) {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect::<String>()
        .into()
}

/// Refuses text holding a character XML forbids, naming the element it is in.
fn allowed_text(stack: &[Element], text: &str) -> Result<(), String> {
    match text.chars().find(|c| !is_xml_char(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "the text of `<{}>` holds U+{:04X}, a character XML does not allow",
            stack.last().map_or("", |element| element.name.as_str()),
            u32::from(c)
        )),
    }
}

/// Text outside the root may only be whitespace.
fn push_text(stack: &mut [Element], root: &Option<Element>, text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => {
            match parent.children.last_mut() {
                Some(Node::Text(previous)) => previous.push_str(text),
                _ => parent.children.push(Node::Text(text.to_owned())),
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None if root.is_some() => Err("text after the root element".into()),
        None => Err("text before the root element".into()),
    }
}

fn element_of(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    namespace: Option<String>,
) -> Result<Element, String> {
    let name = AsRef::<str>::as_ref(&start.local_name()).to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| format!("in `<{name}>`: {error}"))?;
        let key = attribute.key;
        let raw_key: &str = key.as_ref();
        if raw_key == "xmlns" || raw_key.starts_with("xmlns:") {
            continue;
        }
        let (resolved, local) = reader.resolver().resolve_attribute(key);
        let attribute_namespace = match resolved {
            ResolveResult::Bound(namespace) => Some(AsRef::<str>::as_ref(&namespace).to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(format!(
                    "in `<{name}>`: the prefix `{}` is not bound to a namespace",
                    prefix
                ))
            }
        };
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|error| format!("in `<{name}>`: {error}"))?;
        if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
            return Err(format!(
                "the attribute `{raw_key}` of `<{name}>` holds U+{:04X}, a character XML does \
                 not allow",
                u32::from(c)
            ));
        }
        attributes.push(Attribute {
            namespace: attribute_namespace,
            name: AsRef::<str>::as_ref(&local).to_owned(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        namespace,
        name,
        attributes,
        children: Vec::new(),
    })
}

fn located(text: &str, offset: usize, message: String) -> XmlError {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    XmlError {
        line,
        column,
        message,
    }
}

impl Element {
    /// A new element with no namespace.
    pub fn new(name: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this local name (any namespace).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|element| element.name == name)
    }

    /// The child elements with this local name (any namespace).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |element| element.name == name)
    }

    /// The element at a path of local names below this one.
    pub fn descendant(&self, path: &[&str]) -> Option<&Element> {
        path.iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// The value of an attribute by local name (any namespace).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name == name)
            .map(|attribute| attribute.value.as_str())
    }

    /// All text directly inside the element, concatenated.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for node in &self.children {
            if let Node::Text(part) = node {
                text.push_str(part);
            }
        }
        text
    }

    /// The element's text, if it holds only text (or nothing) and no child elements.
    pub fn leaf_text(&self) -> Option<String> {
        (self.elements().next().is_none()).then(|| self.text())
    }
}

/// Builds a document by hand: qualified names are written as given, values are escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<BuiltNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BuiltNode {
    Element(Builder),
    Text(String),
}

impl Builder {
    /// An element named `name` (with its prefix, if any: `soap:Envelope`).
    pub fn new(name: impl Into<String>) -> Builder {
        Builder {
            name: name.into(),
            attributes: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Adds an attribute (namespace declarations included: `xmlns:soap`).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Builder {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// Appends a child element.
    pub fn child(mut self, child: Builder) -> Builder {
        self.children.push(BuiltNode::Element(child));
        self
    }

    /// Appends a child element in place.
    pub fn push(&mut self, child: Builder) -> &mut Builder {
        self.children.push(BuiltNode::Element(child));
        self
    }

    /// The last child element, to add to it in place.
    pub fn last_child_mut(&mut self) -> Option<&mut Builder> {
        self.children.iter_mut().rev().find_map(|node| match node {
            BuiltNode::Element(element) => Some(element),
            BuiltNode::Text(_) => None,
        })
    }

    /// The child element named `name`, made if missing.
    pub fn child_mut(&mut self, name: &str) -> &mut Builder {
        let position = self
            .children
            .iter()
            .position(|node| matches!(node, BuiltNode::Element(e) if e.name == name));
        let index = match position {
            Some(index) => index,
            None => {
                self.children.push(BuiltNode::Element(Builder::new(name)));
                self.children.len() - 1
            }
        };
        match &mut self.children[index] {
            BuiltNode::Element(element) => element,
            BuiltNode::Text(_) => unreachable!("the index points at an element"),
        }
    }

    /// Appends text.
    pub fn text(mut self, text: impl Into<String>) -> Builder {
        self.children.push(BuiltNode::Text(text.into()));
        self
    }

    /// Appends text in place.
    pub fn push_text(&mut self, text: impl Into<String>) -> &mut Builder {
        self.children.push(BuiltNode::Text(text.into()));
        self
    }

    /// The document, with an XML declaration.
    pub fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        self.write(&mut out);
        out
    }

    /// The element alone.
    pub fn to_fragment(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        let _ = write!(out, "<{}", self.name);
        for (name, value) in &self.attributes {
            let _ = write!(
                out,
                " {name}=\"{}\"",
                quick_xml::escape::escape(xml_safe(value))
            );
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                BuiltNode::Element(element) => element.write(out),
                BuiltNode::Text(text) => out.push_str(&quick_xml::escape::escape(xml_safe(text))),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespaces_attributes_and_escaped_text() {
        let root = parse(
            r#"<?xml version="1.0"?>
            <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:crm">
              <s:Body><Lead id="7" kind="a&amp;b"><Name>Zoë &lt;O&apos;Brien&gt; &#x263A;</Name>
              <Note><![CDATA[<raw> & kept]]></Note></Lead></s:Body>
            </s:Envelope>"#,
        )
        .unwrap();
        assert_eq!(root.namespace.as_deref(), Some(SOAP11_NAMESPACE));
        assert_eq!(root.name, "Envelope");
        let lead = root.descendant(&["Body", "Lead"]).unwrap();
        assert_eq!(lead.namespace.as_deref(), Some("urn:crm"));
        assert_eq!(lead.attribute("id"), Some("7"));
        assert_eq!(lead.attribute("kind"), Some("a&b"));
        assert_eq!(lead.child("Name").unwrap().text(), "Zoë <O'Brien> \u{263A}");
        assert_eq!(
            lead.child("Note").unwrap().leaf_text().unwrap(),
            "<raw> & kept"
        );
    }

    #[test]
    fn a_doctype_is_refused_so_no_entity_is_ever_expanded() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
        let error = parse(bomb).unwrap_err();
        assert_eq!(error.line, 2, "{error}");
        assert!(error.message.contains("DOCTYPE"), "{error}");
        let external = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#;
        assert!(parse(external).unwrap_err().message.contains("DOCTYPE"));
    }

    #[test]
    fn an_undeclared_entity_is_refused_not_expanded() {
        let error = parse("<a>&secret;</a>").unwrap_err();
        assert!(error.message.contains("&secret;"), "{error}");
    }

    #[test]
    fn broken_documents_say_what_and_where() {
        for (text, needle) in [
            ("<a><b></a>", ""),
            ("<a>", "never closed"),
            ("", "no root"),
            ("<a/><b/>", "after the root"),
            ("<p:a/>", "prefix `p`"),
            ("text<a/>", "before the root"),
            ("<a x='1' x='2'/>", ""),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.message.contains(needle), "{text}: {error}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn built_documents_escape_values_and_read_back() {
        let document = Builder::new("soap:Envelope")
            .attribute("xmlns:soap", SOAP12_NAMESPACE)
            .child(
                Builder::new("soap:Body").child(
                    Builder::new("lead")
                        .attribute("note", "\"quoted\" & <angled>")
                        .child(Builder::new("name").text("A & B <c>"))
                        .child(Builder::new("empty")),
                ),
            )
            .to_document();
        let root = parse(&document).unwrap();
        assert_eq!(root.namespace.as_deref(), Some(SOAP12_NAMESPACE));
        let lead = root.descendant(&["Body", "lead"]).unwrap();
        assert_eq!(lead.attribute("note"), Some("\"quoted\" & <angled>"));
        assert_eq!(lead.child("name").unwrap().text(), "A & B <c>");
        assert_eq!(
            lead.child("empty").unwrap().leaf_text().as_deref(),
            Some("")
        );
    }

    #[test]
    fn child_mut_builds_nested_paths_once() {
        let mut root = Builder::new("user");
        root.child_mut("userInfo")
            .push(Builder::new("firstname").text("Ana"));
        root.child_mut("userInfo")
            .push(Builder::new("lastname").text("Lu"));
        let parsed = parse(&root.to_fragment()).unwrap();
        assert_eq!(parsed.elements().count(), 1);
        assert_eq!(
            parsed.descendant(&["userInfo", "lastname"]).unwrap().text(),
            "Lu"
        );
    }
}

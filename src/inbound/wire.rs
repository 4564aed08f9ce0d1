//! The Connector API's wire format: the XML documents partners send (`<user>`, `<staff>`,
//! `<leadSource>`), their validation, and the `<response>` and `<error>` documents answered.

use crate::xml::{self, Builder, Element};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The versioned base path of the API.
pub const API_BASE: &str = "/connector/api/2011-11";

/// The longest value accepted in one field.
pub const MAX_FIELD_CHARS: usize = 255;

/// The fields of `<userInfo>` (users and staff), as the Connector documents them, plus
/// `leadSource`: the record id (or name) of a lead source the partner sent before.
pub const USER_FIELDS: [&str; 18] = [
    "firstname",
    "lastname",
    "userStatus",
    "userType",
    "birthdate",
    "gender",
    "address1",
    "address2",
    "city",
    "zipcode",
    "state",
    "country",
    "mobile",
    "email",
    "homePhone",
    "workPhone",
    "company",
    "leadSource",
];

/// The fields of `<leadInfo>`.
pub const LEAD_SOURCE_FIELDS: [&str; 2] = ["name", "active"];

/// The resources of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    /// Prospects and members.
    User,
    /// Club staff, in the same form as users.
    Staff,
    /// Lead sources.
    LeadSource,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 3] = [Resource::User, Resource::Staff, Resource::LeadSource];

    /// The path segment after the base path.
    pub fn segment(self) -> &'static str {
        match self {
            Resource::User => "user",
            Resource::Staff => "staff",
            Resource::LeadSource => "leadsource",
        }
    }

    /// The document's root element.
    pub fn root(self) -> &'static str {
        match self {
            Resource::User => "user",
            Resource::Staff => "staff",
            Resource::LeadSource => "leadSource",
        }
    }

    /// The element holding the record's fields.
    pub fn info(self) -> &'static str {
        match self {
            Resource::User | Resource::Staff => "userInfo",
            Resource::LeadSource => "leadInfo",
        }
    }

    /// The fields `info` may hold.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Resource::User | Resource::Staff => &USER_FIELDS,
            Resource::LeadSource => &LEAD_SOURCE_FIELDS,
        }
    }

    /// The resource at a path segment.
    pub fn from_segment(segment: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.segment() == segment)
    }
}

/// Why the Connector refused a call, as its `<reason>` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Reason {
    /// The request is malformed or a value is not allowed.
    Validation,
    /// The record could not be found or stored.
    Database,
    /// Anything else (no such resource, method not allowed).
    Unknown,
}

impl Reason {
    /// As written in `<reason>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Validation => "VALIDATION",
            Reason::Database => "DATABASE",
            Reason::Unknown => "UNKNOWN",
        }
    }
}

/// The provider info every call carries. Empty elements count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProviderInfo {
    /// The provider identifier issued to the partner (`identifier`).
    pub identifier: Option<String>,
    /// The client id (`clientID`).
    pub client_id: Option<String>,
    /// The club id (`clubID`).
    pub club_id: Option<String>,
    /// The partner's own id of the record (`recordID`).
    pub record_id: Option<String>,
}

impl ProviderInfo {
    /// The element (or query parameter) names, with the value of each.
    pub fn parts(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("identifier", self.identifier.as_deref()),
            ("clientID", self.client_id.as_deref()),
            ("clubID", self.club_id.as_deref()),
            ("recordID", self.record_id.as_deref()),
        ]
    }

    /// The first missing part's name.
    pub fn missing(&self) -> Option<&'static str> {
        self.parts()
            .into_iter()
            .find(|(_, value)| value.is_none())
            .map(|(name, _)| name)
    }

    /// Provider info from query pairs (GET reads): the documented names (`provider`,
    /// `client_id`, `club_id`, `recordID`), or the element names as an alias. Both spellings of
    /// one part with different values are refused: which one was meant cannot be told.
    pub fn from_query(pairs: &[(String, String)]) -> Result<ProviderInfo, Refusal> {
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let mut parts = READ_QUERY_NAMES.iter().map(|&(documented, element)| {
            match (value(documented), value(element)) {
                (Some(a), Some(b)) if a != b => Err(Refusal::invalid(
                    documented,
                    format!("`{documented}={a}` and `{element}={b}` name the same part differently: send one"),
                )),
                (a, b) => Ok(a.or(b)),
            }
        });
        let mut next = || parts.next().unwrap_or(Ok(None));
        Ok(ProviderInfo {
            identifier: next()?,
            client_id: next()?,
            club_id: next()?,
            record_id: next()?,
        })
    }
}

/// The query parameters of a read as the Connector documents them, each with the element name
/// of `<providerInfo>` also accepted in its place.
pub const READ_QUERY_NAMES: [(&str, &str); 4] = [
    ("provider", "identifier"),
    ("client_id", "clientID"),
    ("club_id", "clubID"),
    ("recordID", "recordID"),
];

/// The documented query name of a `<providerInfo>` element.
pub fn query_name(element: &str) -> &'static str {
    READ_QUERY_NAMES
        .iter()
        .find(|(_, name)| *name == element)
        .map_or("recordID", |(documented, _)| documented)
}

/// A refused document or value: the HTTP status, the reason and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// VALIDATION, DATABASE or UNKNOWN.
    pub reason: Reason,
    /// The field concerned, as a path of element names (`userInfo/gender`), if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    /// A 400 VALIDATION refusal about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            reason: Reason::Validation,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A refusal without a field.
    pub fn new(status: u16, reason: Reason, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            field: None,
            message: message.into(),
        }
    }
}

/// A document a partner sent to save a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// What it saves.
    pub resource: Resource,
    /// The provider info.
    pub provider: ProviderInfo,
    /// The fields of the info element, by element name; empty elements are left out.
    pub fields: BTreeMap<String, String>,
}

/// Reads a save document for `resource`. Refuses what does not parse or has an unexpected
/// shape; the values themselves are checked by [`validate`].
pub fn read_submission(resource: Resource, body: &str) -> Result<Submission, Refusal> {
    let root = xml::parse(body)
        .map_err(|error| Refusal::invalid("body", format!("the body is not XML: {error}")))?;
    if root.name != resource.root() {
        return Err(Refusal::invalid(
            root.name.clone(),
            format!(
                "the document's root is <{}>; a {} save sends <{}>",
                root.name,
                resource.segment(),
                resource.root()
            ),
        ));
    }
    let provider = match single_child(&root, "providerInfo")? {
        Some(element) => read_provider(element)?,
        None => ProviderInfo::default(),
    };
    let mut fields = BTreeMap::new();
    if let Some(info) = single_child(&root, resource.info())? {
        for element in info.elements() {
            let path = format!("{}/{}", resource.info(), element.name);
            if !resource.fields().contains(&element.name.as_str()) {
                return Err(Refusal::invalid(
                    path,
                    format!(
                        "<{}> is not a field of <{}> (fields: {})",
                        element.name,
                        resource.info(),
                        resource.fields().join(", ")
                    ),
                ));
            }
            let value = leaf(element, &path)?;
            if fields.contains_key(&element.name) {
                return Err(Refusal::invalid(path, "the field is given twice"));
            }
            if !value.is_empty() {
                fields.insert(element.name.clone(), value);
            }
        }
    }
    for element in root.elements() {
        if element.name != "providerInfo" && element.name != resource.info() {
            return Err(Refusal::invalid(
                format!("{}/{}", resource.root(), element.name),
                format!(
                    "<{}> holds only <providerInfo> and <{}>",
                    resource.root(),
                    resource.info()
                ),
            ));
        }
    }
    Ok(Submission {
        resource,
        provider,
        fields,
    })
}

fn single_child<'a>(parent: &'a Element, name: &'a str) -> Result<Option<&'a Element>, Refusal> {
    let mut found = parent.children_named(name);
    let first = found.next();
    if found.next().is_some() {
        return Err(Refusal::invalid(
            format!("{}/{name}", parent.name),
            "the element is given twice",
        ));
    }
    Ok(first)
}

fn leaf(element: &Element, path: &str) -> Result<String, Refusal> {
    let value = element
        .leaf_text()
        .ok_or_else(|| Refusal::invalid(path, "expected text, found child elements"))?;
    let value = value.trim().to_owned();
    if value.chars().count() > MAX_FIELD_CHARS {
        return Err(Refusal::invalid(
            path,
            format!("longer than {MAX_FIELD_CHARS} characters"),
        ));
    }
    Ok(value)
}

fn read_provider(element: &Element) -> Result<ProviderInfo, Refusal> {
    let mut provider = ProviderInfo::default();
    for child in element.elements() {
        let path = format!("providerInfo/{}", child.name);
        let slot = match child.name.as_str() {
            "identifier" => &mut provider.identifier,
            "clientID" => &mut provider.client_id,
            "clubID" => &mut provider.club_id,
            "recordID" => &mut provider.record_id,
            other => {
                return Err(Refusal::invalid(
                    path,
                    format!(
                        "<{other}> is not part of <providerInfo> (identifier, clientID, clubID, recordID)"
                    ),
                ))
            }
        };
        if slot.is_some() {
            return Err(Refusal::invalid(path, "the element is given twice"));
        }
        let value = leaf(child, &path)?;
        *slot = (!value.is_empty()).then_some(value);
    }
    Ok(provider)
}

/// Checks a submission's values: provider info complete, mandatory fields present, values in
/// their allowed sets. The first problem found is returned, naming its field.
pub fn validate(submission: &Submission) -> Result<(), Refusal> {
    if let Some(missing) = submission.provider.missing() {
        return Err(Refusal::invalid(
            format!("providerInfo/{missing}"),
            format!("<providerInfo> must carry <{missing}>"),
        ));
    }
    let info = submission.resource.info();
    let field = |name: &str| submission.fields.get(name).map(String::as_str);
    let require = |name: &str| {
        field(name).ok_or_else(|| {
            Refusal::invalid(
                format!("{info}/{name}"),
                format!("<{name}> is mandatory in <{info}>"),
            )
        })
    };
    let one_of = |name: &str, allowed: &[&str], mandatory: bool| -> Result<(), Refusal> {
        let value = if mandatory {
            Some(require(name)?)
        } else {
            field(name)
        };
        match value {
            Some(value) if !allowed.contains(&value) => Err(Refusal::invalid(
                format!("{info}/{name}"),
                format!("`{value}` is not allowed (one of: {})", allowed.join(", ")),
            )),
            _ => Ok(()),
        }
    };
    match submission.resource {
        Resource::User | Resource::Staff => {
            let is_user = submission.resource == Resource::User;
            require("firstname")?;
            require("lastname")?;
            one_of("userType", &["PROSPECT", "MEMBER"], is_user)?;
            one_of("userStatus", &["ACTIVE", "INACTIVE"], is_user)?;
            one_of("gender", &["M", "F"], false)?;
            if let Some(birthdate) = field("birthdate") {
                let valid = birthdate.len() == 10
                    && chrono::NaiveDate::parse_from_str(birthdate, "%Y-%m-%d").is_ok();
                if !valid {
                    return Err(Refusal::invalid(
                        format!("{info}/birthdate"),
                        format!("`{birthdate}` is not a date written yyyy-mm-dd"),
                    ));
                }
            }
            if let Some(email) = field("email") {
                let valid = email
                    .split_once('@')
                    .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
                if !valid || email.contains(char::is_whitespace) {
                    return Err(Refusal::invalid(
                        format!("{info}/email"),
                        format!("`{email}` is not an email address"),
                    ));
                }
            }
            if !is_user && field("leadSource").is_some() {
                return Err(Refusal::invalid(
                    format!("{info}/leadSource"),
                    "staff have no lead source",
                ));
            }
        }
        Resource::LeadSource => {
            require("name")?;
            one_of("active", &["true", "false"], false)?;
        }
    }
    Ok(())
}

/// The answer to a save: `<response><uuid>…</uuid></response>`.
pub fn saved_document(uuid: &str) -> String {
    Builder::new("response")
        .child(Builder::new("uuid").text(uuid))
        .to_document()
}

/// The answer to a refused call.
pub fn error_document(refusal: &Refusal, error_uuid: &str) -> String {
    Builder::new("error")
        .child(Builder::new("status").text(refusal.status.to_string()))
        .child(Builder::new("reason").text(refusal.reason.as_str()))
        .child(Builder::new("errorUUID").text(error_uuid))
        .child(Builder::new("message").text(refusal.message.clone()))
        .to_document()
}

/// The answer to a read: the record as the partner would send it, with the Connector's uuid.
pub fn record_document(
    resource: Resource,
    uuid: &str,
    provider: &ProviderInfo,
    fields: &BTreeMap<String, String>,
) -> String {
    let mut info = Builder::new("providerInfo");
    for (name, value) in provider.parts() {
        if let Some(value) = value {
            info.push(Builder::new(name).text(value));
        }
    }
    let mut body = Builder::new(resource.info());
    for name in resource.fields() {
        if let Some(value) = fields.get(*name) {
            body.push(Builder::new(*name).text(value.clone()));
        }
    }
    Builder::new(resource.root())
        .child(Builder::new("uuid").text(uuid))
        .child(info)
        .child(body)
        .to_document()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "<user><providerInfo><identifier>P</identifier><clientID>C</clientID>\
        <clubID>K</clubID><recordID>R-1</recordID></providerInfo><userInfo>\
        <firstname>Ana</firstname><lastname>Silva</lastname><userType>MEMBER</userType>\
        <userStatus>ACTIVE</userStatus><gender>F</gender><birthdate>1990-02-28</birthdate>\
        </userInfo></user>";

    #[test]
    fn reads_and_accepts_a_complete_user() {
        let submission = read_submission(Resource::User, USER).unwrap();
        assert_eq!(submission.provider.record_id.as_deref(), Some("R-1"));
        assert_eq!(submission.fields["firstname"], "Ana");
        validate(&submission).unwrap();
    }

    #[test]
    fn names_the_field_of_each_invalid_value() {
        let cases = [
            (
                "<gender>F</gender>",
                "<gender>X</gender>",
                "userInfo/gender",
            ),
            (
                "<birthdate>1990-02-28</birthdate>",
                "<birthdate>1990-02-30</birthdate>",
                "userInfo/birthdate",
            ),
            (
                "<userType>MEMBER</userType>",
                "<userType>member</userType>",
                "userInfo/userType",
            ),
            ("<firstname>Ana</firstname>", "", "userInfo/firstname"),
            ("<recordID>R-1</recordID>", "", "providerInfo/recordID"),
        ];
        for (from, to, field) in cases {
            let submission = read_submission(Resource::User, &USER.replace(from, to)).unwrap();
            let refusal = validate(&submission).unwrap_err();
            assert_eq!(refusal.field.as_deref(), Some(field), "{to}");
            assert_eq!(refusal.reason, Reason::Validation);
        }
    }

    #[test]
    fn refuses_unknown_and_repeated_elements() {
        let unknown = USER.replace("<gender>F</gender>", "<shoeSize>9</shoeSize>");
        assert_eq!(
            read_submission(Resource::User, &unknown)
                .unwrap_err()
                .field
                .as_deref(),
            Some("userInfo/shoeSize")
        );
        let twice = USER.replace("<gender>F</gender>", "<gender>F</gender><gender>M</gender>");
        assert!(read_submission(Resource::User, &twice).is_err());
        assert!(read_submission(Resource::Staff, USER).is_err());
    }

    #[test]
    fn answers_are_escaped_xml() {
        let refusal = Refusal::invalid("userInfo/x", "bad <value> & more");
        let text = error_document(&refusal, "u-1");
        let parsed = xml::parse(&text).unwrap();
        assert_eq!(
            parsed.child("message").unwrap().text(),
            "bad <value> & more"
        );
        assert_eq!(parsed.child("reason").unwrap().text(), "VALIDATION");
        assert_eq!(
            xml::parse(&saved_document("abc"))
                .unwrap()
                .child("uuid")
                .unwrap()
                .text(),
            "abc"
        );
    }
}

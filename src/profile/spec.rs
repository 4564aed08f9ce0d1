//! The profile's sections as serde types: what a profile file may say, key by key.

use super::path::JsonPath;
use super::template::Template;
use crate::model::{Field, RecordKind};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[partner]`: who the partner is and where its API lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PartnerSection {
    /// Display name in reports.
    pub name: String,
    /// The partner's API root; `--base-url` overrides it.
    pub base_url: String,
    /// Body format of requests and responses; an operation's own `format` overrides it.
    #[serde(default)]
    pub format: BodyFormat,
    /// XML: namespace prefix → namespace URI, for the prefixes used in element paths.
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
    /// Headers every request carries (API versions, `Accept` variants), as templates.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// Query parameters every request carries, as templates.
    #[serde(default)]
    pub query: BTreeMap<String, Template>,
}

/// The body format of a partner's API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// JSON bodies.
    #[default]
    Json,
    /// Plain XML documents.
    Xml,
    /// SOAP 1.1 envelopes (`text/xml`, `SOAPAction` header).
    Soap11,
    /// SOAP 1.2 envelopes (`application/soap+xml; action=...`).
    Soap12,
}

impl BodyFormat {
    /// The format's name in a profile.
    pub fn key(self) -> &'static str {
        match self {
            BodyFormat::Json => "json",
            BodyFormat::Xml => "xml",
            BodyFormat::Soap11 => "soap11",
            BodyFormat::Soap12 => "soap12",
        }
    }

    /// Whether bodies are XML (plain or SOAP).
    pub fn is_xml(self) -> bool {
        self != BodyFormat::Json
    }

    /// Whether bodies are SOAP envelopes.
    pub fn is_soap(self) -> bool {
        matches!(self, BodyFormat::Soap11 | BodyFormat::Soap12)
    }
}

/// `[tenancy]`: the partner's identifiers for the client and club.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tenancy {
    /// The partner's client (chain) id: `{client_id}`.
    pub client_id: Option<String>,
    /// The partner's club id: `{club_id}`.
    pub club_id: Option<String>,
}

/// `[auth]`: how requests prove who they are. Secrets come from environment variables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthSection {
    /// The scheme.
    pub scheme: AuthScheme,
    /// bearer: the variable holding the token.
    pub token_env: Option<String>,
    /// api-key: the header carrying the key.
    pub header: Option<String>,
    /// api-key: the query parameter carrying the key.
    pub query: Option<String>,
    /// api-key: the variable holding the key.
    pub key_env: Option<String>,
    /// basic: the variable holding the user name.
    pub username_env: Option<String>,
    /// basic: the variable holding the password.
    pub password_env: Option<String>,
    /// oauth2-client-credentials: the token endpoint, absolute or a path under `base-url`.
    pub token_url: Option<String>,
    /// oauth2-client-credentials: the variable holding the client id.
    pub client_id_env: Option<String>,
    /// oauth2-client-credentials: the variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// oauth2-client-credentials: the scope asked for (space-separated scope tokens).
    pub scope: Option<String>,
    /// oauth2-client-credentials: the `audience` parameter some token endpoints want.
    pub audience: Option<String>,
    /// oauth2-client-credentials: how the client authenticates at the token endpoint.
    pub client_auth: Option<ClientAuth>,
    /// Any scheme: more secret headers every request carries, header name → the variable
    /// holding its value (a second API token, a user token beside an API key).
    #[serde(default)]
    pub more_headers: BTreeMap<String, String>,
}

impl AuthSection {
    /// The environment variables holding this scheme's secrets, in the profile's order.
    pub fn secret_variables(&self) -> Vec<&str> {
        [
            &self.token_env,
            &self.key_env,
            &self.username_env,
            &self.password_env,
            &self.client_id_env,
            &self.client_secret_env,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(self.more_headers.values().map(String::as_str))
        .collect()
    }
}

/// How an OAuth client proves who it is at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// `Authorization: Basic` with the client id and secret (the RFC's default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

impl ClientAuth {
    /// The value's name in a profile.
    pub fn key(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::Body => "body",
        }
    }
}

/// `[tls]`: TLS material of the Connector's side, orthogonal to `[auth]`: the client certificate
/// it presents (mutual TLS) and the CAs it trusts for the partner's server certificate. Each key
/// names an environment variable holding the *path* of a PEM file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSection {
    /// The variable holding the path of the client certificate (PEM, leaf first).
    pub client_cert_env: Option<String>,
    /// The variable holding the path of the client certificate's private key (PEM).
    pub client_key_env: Option<String>,
    /// The variable holding the path of a PEM bundle of CAs to trust for the server.
    pub ca_cert_env: Option<String>,
}

impl TlsSection {
    /// Whether the Connector presents a client certificate (mutual TLS).
    pub fn mutual(&self) -> bool {
        self.client_cert_env.is_some()
    }
}

/// An authentication scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthScheme {
    /// No authentication.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A key in a named header or query parameter.
    ApiKey,
    /// HTTP basic authentication.
    Basic,
    /// OAuth 2.0 client credentials grant (RFC 6749 §4.4): a bearer token fetched from the
    /// token endpoint with the client id and secret, cached and refreshed.
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2ClientCredentials,
}

impl AuthScheme {
    /// The scheme's name in a profile.
    pub fn key(self) -> &'static str {
        match self {
            AuthScheme::None => "none",
            AuthScheme::Bearer => "bearer",
            AuthScheme::ApiKey => "api-key",
            AuthScheme::Basic => "basic",
            AuthScheme::OAuth2ClientCredentials => "oauth2-client-credentials",
        }
    }
}

/// `[capabilities]`: what the integration carries.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    /// The partner receives prospects (leads).
    #[serde(default)]
    pub prospects: bool,
    /// The partner receives members.
    #[serde(default)]
    pub members: bool,
    /// Prospects carry a staff owner.
    #[serde(default)]
    pub staff_owner: bool,
    /// Prospects carry a lead source.
    #[serde(default)]
    pub lead_source: bool,
}

/// `[references]`: how a prospect points at its owner and source.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct References {
    /// The owner by the partner's staff id or by email.
    #[serde(default)]
    pub owner: OwnerReference,
    /// The source by the partner's source id or by name.
    #[serde(default)]
    pub source: SourceReference,
    /// How a record read back names its owner, when not as it is written.
    pub owner_read: Option<OwnerReference>,
    /// How a record read back names its source, when not as it is written.
    pub source_read: Option<SourceReference>,
    /// Sources by name: whose spelling is sent, InTouch's (the partner resolves names
    /// itself, ignoring case) or the partner's own, as listed (a picklist taking exact values).
    pub source_spelling: Option<Spelling>,
}

/// Whose spelling of a matched name is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spelling {
    /// InTouch's: the partner resolves it.
    #[default]
    Intouch,
    /// The partner's own, as its list spells it.
    Partner,
}

impl References {
    /// How an owner reads back.
    pub fn owner_as_read(&self) -> OwnerReference {
        self.owner_read.unwrap_or(self.owner)
    }

    /// How a source reads back.
    pub fn source_as_read(&self) -> SourceReference {
        self.source_read.unwrap_or(self.source)
    }

    /// Whether the partner takes source names in any spelling and resolves them itself.
    pub fn resolves_source_names(&self) -> bool {
        self.source == SourceReference::Name
            && self.source_spelling.unwrap_or_default() == Spelling::Intouch
    }
}

/// How an owner is referenced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerReference {
    /// The partner's staff id.
    #[default]
    Id,
    /// The staff member's email; the partner resolves it.
    Email,
}

/// How a lead source is referenced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceReference {
    /// The partner's source id.
    #[default]
    Id,
    /// The source's name; the partner resolves it, case-insensitively.
    Name,
}

/// `[absent]`: how a missing owner or source is written.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Absent {
    /// A lead with no owner.
    #[serde(default)]
    pub owner: AbsentStyle,
    /// A lead with no source.
    #[serde(default)]
    pub source: AbsentStyle,
}

/// How an absent value is written in a body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbsentStyle {
    /// The field is left out.
    #[default]
    Omit,
    /// The field is `null`.
    Null,
    /// The field is `""`.
    Empty,
}

/// The operations a profile can declare, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperationKind {
    /// Fetch the whole staff list.
    StaffList,
    /// Look one staff member up by email.
    StaffLookup,
    /// Fetch the lead-source list.
    SourceList,
    /// Create a lead source.
    SourceCreate,
    /// Save a prospect: create without id, update with the partner's id.
    ProspectSave,
    /// Create a prospect.
    ProspectCreate,
    /// Update a prospect by the partner's id.
    ProspectUpdate,
    /// Read a prospect by the partner's id.
    ProspectRead,
    /// Save a member: create without id, update with the partner's id.
    MemberSave,
    /// Create a member.
    MemberCreate,
    /// Update a member by the partner's id.
    MemberUpdate,
    /// Read a member by the partner's id.
    MemberRead,
}

/// What an operation does, independent of the record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationRole {
    /// Answers a (possibly paged) list.
    List,
    /// Answers one staff member for an email, or none.
    Lookup,
    /// Creates or updates a record from a body.
    Write,
    /// Answers one record by id.
    Read,
}

impl OperationKind {
    /// Every kind.
    pub const ALL: [OperationKind; 12] = [
        OperationKind::StaffList,
        OperationKind::StaffLookup,
        OperationKind::SourceList,
        OperationKind::SourceCreate,
        OperationKind::ProspectSave,
        OperationKind::ProspectCreate,
        OperationKind::ProspectUpdate,
        OperationKind::ProspectRead,
        OperationKind::MemberSave,
        OperationKind::MemberCreate,
        OperationKind::MemberUpdate,
        OperationKind::MemberRead,
    ];

    /// The key under `[operations]`.
    pub fn key(self) -> &'static str {
        match self {
            OperationKind::StaffList => "staff-list",
            OperationKind::StaffLookup => "staff-lookup",
            OperationKind::SourceList => "source-list",
            OperationKind::SourceCreate => "source-create",
            OperationKind::ProspectSave => "prospect-save",
            OperationKind::ProspectCreate => "prospect-create",
            OperationKind::ProspectUpdate => "prospect-update",
            OperationKind::ProspectRead => "prospect-read",
            OperationKind::MemberSave => "member-save",
            OperationKind::MemberCreate => "member-create",
            OperationKind::MemberUpdate => "member-update",
            OperationKind::MemberRead => "member-read",
        }
    }

    /// Parses an `[operations]` key.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.key() == key)
    }

    /// The record kind the operation reads or writes.
    pub fn record(self) -> RecordKind {
        match self {
            OperationKind::StaffList | OperationKind::StaffLookup => RecordKind::Staff,
            OperationKind::SourceList | OperationKind::SourceCreate => RecordKind::Source,
            OperationKind::ProspectSave
            | OperationKind::ProspectCreate
            | OperationKind::ProspectUpdate
            | OperationKind::ProspectRead => RecordKind::Prospect,
            OperationKind::MemberSave
            | OperationKind::MemberCreate
            | OperationKind::MemberUpdate
            | OperationKind::MemberRead => RecordKind::Member,
        }
    }

    /// What the operation does.
    pub fn role(self) -> OperationRole {
        match self {
            OperationKind::StaffList | OperationKind::SourceList => OperationRole::List,
            OperationKind::StaffLookup => OperationRole::Lookup,
            OperationKind::ProspectRead | OperationKind::MemberRead => OperationRole::Read,
            _ => OperationRole::Write,
        }
    }

    /// Whether `{id}` belongs in this operation's path or query.
    pub fn addresses_one_record(self) -> bool {
        matches!(
            self,
            OperationKind::ProspectUpdate
                | OperationKind::ProspectRead
                | OperationKind::MemberUpdate
                | OperationKind::MemberRead
        )
    }
}

/// An HTTP method an operation may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// One `[operations.KIND]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Operation {
    /// HTTP method.
    pub method: Method,
    /// Path template under the base URL.
    pub path: Template,
    /// Constant and templated query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, Template>,
    /// Lists (and list-style lookups): where the array sits in the response.
    pub list: Option<JsonPath>,
    /// Lists: how pages are requested and when they end.
    pub paging: Option<Paging>,
    /// Headers this operation's requests carry besides `[partner] headers`, as templates.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// Lookups: one object or a list; writes: the record, or an acknowledgement that is not one.
    pub answer: Option<AnswerShape>,
    /// Lookups: the answers that mean "nobody has this email" (any of them).
    #[serde(default)]
    pub none: Vec<NoneAnswer>,
    /// Lookups with `none = ["flag"]`: a boolean that is false when nobody has the email.
    pub found_field: Option<JsonPath>,
    /// Writes that create: the answer meaning "already there, use this id".
    pub conflict: Option<Conflict>,
    /// Writes: where the id is in the answer, when not at the record's id field.
    pub id_at: Option<JsonPath>,
    /// Writes with `id-from = "header"`: the header holding the id.
    pub id_header: Option<String>,
    /// Writes: the text around the id where it is found (`"leads({id})"` in a header or
    /// Location, `"Created {id}"` at `id-at`).
    pub id_pattern: Option<Template>,
    /// Writes: where the record sits in the request body.
    pub body: Option<JsonPath>,
    /// Writes, reads and object lookups: where the record sits in the response body.
    pub record: Option<JsonPath>,
    /// Writes: where the new record's id comes back.
    pub id_from: Option<IdFrom>,
    /// The body format, when it differs from `[partner] format`.
    pub format: Option<BodyFormat>,
    /// XML lists: the name of each item element inside the `list` element.
    pub item: Option<String>,
    /// SOAP: the action (the `SOAPAction` header in 1.1, the `action` parameter in 1.2).
    pub soap_action: Option<String>,
    /// SOAP: values written into the request body (path → template; `{id}`, `{email}` too).
    #[serde(default)]
    pub params: BTreeMap<JsonPath, Template>,
}

/// What an operation's answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerShape {
    /// Lookups: one record at `record`.
    Object,
    /// Lookups: a list of matches at `list`.
    List,
    /// Writes: the record saved, at `record` (the default).
    Record,
    /// Writes: an acknowledgement that is not the record (`{"id": 5, "success": true}`, an
    /// empty 204): its id, if any, is at `id-at` or in the `Location`.
    Acknowledgement,
}

impl AnswerShape {
    /// The value's name in a profile.
    pub fn key(self) -> &'static str {
        match self {
            AnswerShape::Object => "object",
            AnswerShape::List => "list",
            AnswerShape::Record => "record",
            AnswerShape::Acknowledgement => "acknowledgement",
        }
    }
}

/// One way a lookup says "nobody has this email".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoneAnswer {
    /// HTTP 404.
    NotFound,
    /// HTTP 204, no body.
    NoContent,
    /// HTTP 200 with an empty body.
    EmptyBody,
    /// HTTP 200 with null (or nothing) where the record belongs (`answer = "object"`).
    NullRecord,
    /// HTTP 200 with an empty list (`answer = "list"`).
    EmptyList,
    /// HTTP 200 with null (or nothing) where the list belongs (`answer = "list"`).
    NullList,
    /// HTTP 200 with `found-field` false.
    Flag,
}

impl NoneAnswer {
    /// Every way, in the order the mock partner prefers them.
    pub const ALL: [NoneAnswer; 7] = [
        NoneAnswer::NotFound,
        NoneAnswer::NoContent,
        NoneAnswer::EmptyBody,
        NoneAnswer::NullRecord,
        NoneAnswer::EmptyList,
        NoneAnswer::NullList,
        NoneAnswer::Flag,
    ];

    /// The value's name in a profile.
    pub fn key(self) -> &'static str {
        match self {
            NoneAnswer::NotFound => "not-found",
            NoneAnswer::NoContent => "no-content",
            NoneAnswer::EmptyBody => "empty-body",
            NoneAnswer::NullRecord => "null-record",
            NoneAnswer::EmptyList => "empty-list",
            NoneAnswer::NullList => "null-list",
            NoneAnswer::Flag => "flag",
        }
    }
}

/// `conflict = { status = 409, ... }`: a create answered "already there" with the existing id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Conflict {
    /// The status of the conflict answer (409 usually; a 2xx with `when`).
    pub status: u16,
    /// Where the existing record's id is: the body (at `id-at`) or the `Location`.
    #[serde(default)]
    pub id_from: IdFrom,
    /// Body: where the id is (default: the record's id field at the operation's `record`).
    pub id_at: Option<JsonPath>,
    /// Body: the text around the id at `id-at`, e.g. `"Contact already exists. Existing ID: {id}"`.
    pub pattern: Option<Template>,
    /// An answer of `status` is a conflict only when the value at `when` equals `equals`.
    pub when: Option<JsonPath>,
    /// See `when`.
    pub equals: Option<String>,
}
/// Where a write returns the record's id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdFrom {
    /// The mapped `id` field of the record in the response body.
    #[default]
    Body,
    /// The last path segment of the `Location` header (or where `id-pattern` finds it).
    Location,
    /// The header named by `id-header` (`OData-EntityId`), where `id-pattern` finds it.
    Header,
}

/// `paging = { style = ..., ... }`: how a list is paged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Paging {
    /// The paging style.
    pub style: PagingStyle,
    /// page-number: the page parameter.
    pub page_param: Option<String>,
    /// page-number: the number of the first page (0 or 1).
    pub first_page: Option<u64>,
    /// page-number, cursor, next-link: the page-size parameter.
    pub size_param: Option<String>,
    /// Every style but none: records per page requested.
    pub page_size: Option<u64>,
    /// offset: the offset parameter.
    pub offset_param: Option<String>,
    /// offset: the limit parameter.
    pub limit_param: Option<String>,
    /// cursor: the parameter the next cursor is sent in.
    pub cursor_param: Option<String>,
    /// cursor: where the next cursor is; next-link: where the next page's URL is.
    pub next_field: Option<JsonPath>,
    /// Where the total number of records is: ends page-number and offset lists with
    /// `stop = "total"`; any style's walk is checked against it.
    pub total_field: Option<JsonPath>,
    /// page-number, offset: where the total number of pages is: ends the list with
    /// `stop = "total-pages"`; the walk is checked against it.
    pub total_pages_field: Option<JsonPath>,
    /// page-number, offset with `stop = "more-flag"`: a boolean, true while pages follow.
    pub more_field: Option<JsonPath>,
    /// page-number, offset: when the last page has been reached.
    pub stop: Option<PageStop>,
    /// The most records the partner puts on a page, whatever is asked (its documented cap);
    /// the mock partner serves at most this many.
    pub max_page_size: Option<u64>,
}

/// How a list is paged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PagingStyle {
    /// One response holds the whole list.
    #[default]
    None,
    /// `?page=N&size=M`.
    PageNumber,
    /// `?offset=N&limit=M`.
    Offset,
    /// An opaque cursor from the previous page.
    Cursor,
    /// A URL of the next page in the response.
    NextLink,
    /// A URL of the next page in the RFC 8288 `Link` header (`rel="next"`).
    LinkHeader,
}

impl PagingStyle {
    /// The style's name in a profile.
    pub fn key(self) -> &'static str {
        match self {
            PagingStyle::None => "none",
            PagingStyle::PageNumber => "page-number",
            PagingStyle::Offset => "offset",
            PagingStyle::Cursor => "cursor",
            PagingStyle::NextLink => "next-link",
            PagingStyle::LinkHeader => "link-header",
        }
    }
}

/// When a page-number or offset list ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageStop {
    /// A page with fewer records than asked for is the last.
    ShortPage,
    /// An empty page follows the last.
    EmptyPage,
    /// The response's `total-field` gives the number of records.
    Total,
    /// The response's `total-pages-field` gives the number of pages.
    TotalPages,
    /// The response's `more-field` is false on the last page.
    MoreFlag,
}

/// One `[records.KIND]` table: the mapping between canonical fields and the partner's JSON.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecordMapping {
    /// Canonical field → path in the partner's JSON, or a table with its write and read paths,
    /// its type and its read-side values.
    #[serde(default)]
    pub fields: BTreeMap<String, RawField>,
    /// Partner JSON path → a value always written there (a template that may use
    /// `{client_id}`, `{club_id}`; or a TOML integer or boolean, written as that JSON type).
    #[serde(default)]
    pub fixed: BTreeMap<String, FixedValue>,
    /// Canonical field → (canonical value → partner value), for coded fields such as type.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

/// How a field's value is written in the partner's JSON (XML carries every value as text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueType {
    /// A JSON string.
    #[default]
    String,
    /// A JSON integer (`"ownerId": 42`).
    Integer,
    /// A JSON number.
    Number,
    /// A JSON boolean (with `values`, e.g. status active = "true").
    Boolean,
}

impl ValueType {
    /// The type's name in a profile and in messages.
    pub fn key(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Number => "number",
            ValueType::Boolean => "boolean",
        }
    }
}

/// One field of `[records.KIND.fields]` as written: a path, or a table.
#[derive(Debug, Clone)]
pub enum RawField {
    /// `field = "path"`: written and read at the same path, as a string.
    Path(JsonPath),
    /// `field = { path = ..., write = ..., read = ..., type = ..., read-values = {...} }`.
    Table(Box<FieldTable>),
}

/// The table form of a field mapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FieldTable {
    /// Where the field is written and read (unless `write` or `read` says otherwise).
    pub path: Option<JsonPath>,
    /// Where the field is written in requests.
    pub write: Option<JsonPath>,
    /// Where the field is read in answers.
    pub read: Option<JsonPath>,
    /// The JSON type of the value.
    #[serde(rename = "type")]
    pub value_type: Option<ValueType>,
    /// Canonical value → partner value as read back, when it reads back otherwise than it is
    /// written (`values` applies to writes, and to reads without this table).
    #[serde(default)]
    pub read_values: BTreeMap<String, String>,
    /// Ids written inside text: `"/systemusers({id})"` (an OData binding).
    pub write_pattern: Option<Template>,
    /// A value written when InTouch has none (a field the partner requires).
    pub default: Option<String>,
}

impl<'de> Deserialize<'de> for RawField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawFieldVisitor;
        impl<'de> serde::de::Visitor<'de> for RawFieldVisitor {
            type Value = RawField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path, or a table with path, write, read, type, read-values")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawField, E> {
                JsonPath::parse(text).map(RawField::Path).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawField, A::Error> {
                FieldTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|table| RawField::Table(Box::new(table)))
            }
        }
        deserializer.deserialize_any(RawFieldVisitor)
    }
}

/// A fixed value: a template written as a string, or an integer or boolean constant.
#[derive(Debug, Clone)]
pub struct FixedValue {
    /// The text of the value.
    pub template: Template,
    /// How it is written.
    pub value_type: ValueType,
}

impl<'de> Deserialize<'de> for FixedValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FixedVisitor;
        impl serde::de::Visitor<'_> for FixedVisitor {
            type Value = FixedValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string (a template), an integer or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<FixedValue, E> {
                Ok(FixedValue {
                    template: Template::parse(text).map_err(E::custom)?,
                    value_type: ValueType::String,
                })
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<FixedValue, E> {
                Ok(FixedValue {
                    template: Template::parse(&number.to_string()).map_err(E::custom)?,
                    value_type: ValueType::Integer,
                })
            }
            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<FixedValue, E> {
                self.visit_i64(i64::try_from(number).map_err(E::custom)?)
            }
            fn visit_bool<E: serde::de::Error>(self, flag: bool) -> Result<FixedValue, E> {
                Ok(FixedValue {
                    template: Template::parse(&flag.to_string()).map_err(E::custom)?,
                    value_type: ValueType::Boolean,
                })
            }
        }
        deserializer.deserialize_any(FixedVisitor)
    }
}

/// One checked field mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    /// Where requests carry it; `None` for a field only read (an id the partner assigns).
    pub write: Option<JsonPath>,
    /// Where answers carry it; `None` for a field only written.
    pub read: Option<JsonPath>,
    /// Its JSON type.
    pub value_type: ValueType,
    /// Canonical value → partner value as read back (empty: as `values` says).
    pub read_values: BTreeMap<String, String>,
    /// The text an id is written inside, `{id}` where it goes.
    pub write_pattern: Option<Template>,
    /// The canonical value written when the record has none.
    pub default: Option<String>,
}

impl FieldMap {
    /// A field written and read at `path`, as a string.
    pub fn at(path: JsonPath) -> FieldMap {
        FieldMap {
            write: Some(path.clone()),
            read: Some(path),
            ..FieldMap::default()
        }
    }

    /// Whether it is written and read alike: one path, one table of values.
    pub fn symmetric(&self) -> bool {
        self.write == self.read
            && self.read_values.is_empty()
            && self.write_pattern.is_none()
            && self.default.is_none()
    }
}

/// A checked record mapping with typed keys.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Canonical field → its paths and type.
    pub fields: BTreeMap<Field, FieldMap>,
    /// Partner path → fixed value.
    pub fixed: Vec<(JsonPath, FixedValue)>,
    /// Canonical field → canonical value → partner value.
    pub values: BTreeMap<Field, BTreeMap<String, String>>,
    /// The order `RecordCodec::encode_json` writes paths in (plain mappings, whose requests and
    /// answers look alike), worked out on first use (a loaded profile's mapping does not change).
    pub(crate) layout: std::sync::OnceLock<super::codec::JsonLayout>,
}

impl Mapping {
    /// Whether every field is written and read alike and every value is a string: the shape
    /// the byte-level readers and writers handle.
    pub fn is_plain(&self) -> bool {
        self.fields.values().all(|field| {
            field.symmetric()
                && field.value_type == ValueType::String
                && field.write.as_ref().is_some_and(JsonPath::is_plain)
        }) && self
            .fixed
            .iter()
            .all(|(path, value)| value.value_type == ValueType::String && path.is_plain())
    }
}

/// `[sends]`: the partner also sends data to the Connector's own API (a two-way partner).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SendsSection {
    /// The provider identifier the partner sends in `<providerInfo><identifier>`.
    pub provider_id: String,
    /// The client id it sends in `<clientID>`.
    pub client_id: String,
    /// The club id it sends in `<clubID>`.
    pub club_id: String,
    /// The steps its system can carry out when asked, in the order a run asks for them.
    pub steps: Vec<SendStep>,
}

/// One thing a two-way partner does in its own system that reaches the Connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendStep {
    /// Convert a prospect the Connector delivered into a member.
    Convert,
    /// Make a prospect or member inactive.
    Inactivate,
    /// Create a prospect of its own, then update it.
    CreateUser,
    /// Create a lead source, then a prospect that came from it.
    LeadSource,
}

impl SendStep {
    /// Every step, in the order a run asks for them.
    pub const ALL: [SendStep; 4] = [
        SendStep::Convert,
        SendStep::Inactivate,
        SendStep::CreateUser,
        SendStep::LeadSource,
    ];

    /// The step's name in profiles, reports and `SPOKE_STEP`.
    pub fn key(self) -> &'static str {
        match self {
            SendStep::Convert => "convert",
            SendStep::Inactivate => "inactivate",
            SendStep::CreateUser => "create-user",
            SendStep::LeadSource => "lead-source",
        }
    }

    /// The step named `key`.
    pub fn from_key(key: &str) -> Option<SendStep> {
        SendStep::ALL.into_iter().find(|step| step.key() == key)
    }
}

//! Reading a profile file: syntax, section types and cross-checks, every problem with file,
//! line and key.

use super::path::JsonPath;
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
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid profile.
    #[error("{}", render_problems(.problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
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
    for (name, path) in &raw.fields {
        match name.parse::<Field>() {
            Ok(field) if kind.allowed_fields().contains(&field) => {
                mapping.fields.insert(field, path.clone());
            }
            Ok(field) => {
                checker.report(
                    &["records", section, "fields", name],
                    format!("`{field}` is not a field of a {kind} record"),
                );
                ok = false;
            }
            Err(message) => {
                let known: Vec<&str> = kind.allowed_fields().iter().map(|f| f.key()).collect();
                checker.report(
                    &["records", section, "fields", name],
                    format!("{message}; a {kind} record has: {}", known.join(", ")),
                );
                ok = false;
            }
        }
    }
    for (path_text, template) in &raw.fixed {
        match JsonPath::parse(path_text) {
            Ok(path) if path.is_root() => {
                checker.report(
                    &["records", section, "fixed", path_text],
                    "a fixed value needs a path inside the record",
                );
                ok = false;
            }
            Ok(path) => {
                if template
                    .slots()
                    .iter()
                    .any(|slot| matches!(slot, Slot::Id | Slot::Email))
                {
                    checker.report(
                        &["records", section, "fixed", path_text],
                        "fixed values may use only {client_id} and {club_id}",
                    );
                    ok = false;
                }
                mapping.fixed.push((path, template.clone()));
            }
            Err(message) => {
                checker.report(&["records", section, "fixed", path_text], message);
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
        if let Some(allowed) = canonical_values(field) {
            for canonical in table.keys() {
                if !allowed.contains(&canonical.as_str()) {
                    checker.report(
                        &["records", section, "values", name, canonical],
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
                    &["records", section, "values", name],
                    format!("two values are written as `{partner_value}`; they could not be told apart on reading"),
                );
                ok = false;
            }
        }
        mapping.values.insert(field, table.clone());
    }
    for required in kind.required_fields() {
        if !mapping.fields.contains_key(required) {
            checker.report(
                &["records", section, "fields"],
                format!("a {kind} record must map `{required}`"),
            );
            ok = false;
        }
    }
    let mut all_paths: Vec<(String, &JsonPath)> = mapping
        .fields
        .iter()
        .map(|(field, path)| (format!("fields.{field}"), path))
        .collect();
    all_paths.extend(
        mapping
            .fixed
            .iter()
            .map(|(path, _)| (format!("fixed.{path}"), path)),
    );
    for (index, (name_a, path_a)) in all_paths.iter().enumerate() {
        if path_a.is_root() {
            checker.report(
                &[
                    "records",
                    section,
                    "fields",
                    name_a.trim_start_matches("fields."),
                ],
                "a field needs a path inside the record, not the record itself",
            );
            ok = false;
            continue;
        }
        for (name_b, path_b) in &all_paths[index + 1..] {
            if path_a.overlaps(path_b) {
                checker.report(
                    &["records", section],
                    format!("`{name_a}` ({path_a}) and `{name_b}` ({path_b}) would overwrite each other in the partner's JSON"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(mapping)
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
    check_token_url(checker, profile);
    check_tls(checker, profile);
    let mut routes: BTreeMap<Route, OperationKind> = BTreeMap::new();
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
            && pattern
                .iter()
                .zip(&segments)
                .all(|(part, actual)| match part {
                    PathSegment::Literal(text) => text == actual,
                    PathSegment::Slot(Slot::Id | Slot::Email) => true,
                    PathSegment::Slot(slot) => {
                        super::SlotValues::value(&profile.tenancy, *slot) == Some(*actual)
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
    routes: &mut BTreeMap<Route, OperationKind>,
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
    for (mapping_kind, mapping) in &profile.records {
        if *mapping_kind == kind.record() {
            for (path, template) in &mapping.fixed {
                let path_text = path.to_string();
                check_slots(
                    checker,
                    &["records", mapping_kind.key(), "fixed", &path_text],
                    template,
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
                })
                .collect();
            let action = operation.soap_action.clone();
            if let Some(other) = routes.insert((operation.method, shape, action), kind) {
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
                    ),
                );
            }
        }
        Err(message) => checker.report(&["operations", key, "path"], message),
    }
    if kind.addresses_one_record() && !used_slots.contains(&Slot::Id) {
        checker.report(
            &["operations", key, "path"],
            if profile.format_of(operation).is_soap() {
                format!("{key} addresses one record: its path, query or params must use {{id}}")
            } else {
                format!("{key} addresses one record: its path or query must use {{id}}")
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
    let lookup_is_list = operation.answer == Some(LookupAnswer::List);
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
    ]
    .into_iter()
    .flatten()
    {
        checker.report(
            &["operations", key, &name],
            format!("does not apply to {key}"),
        );
    }
    if role == OperationRole::Lookup && operation.answer.is_none() {
        checker.report(
            &["operations", key],
            "a lookup must say its answer: \"object\" (404 when none) or \"list\" (empty when none)",
        );
    }
    if let Some(paging) = &operation.paging {
        check_paging(checker, key, paging);
    }
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
        || (role == OperationRole::Lookup && operation.answer == Some(LookupAnswer::List));
    let at = |name: &'static str| -> [&str; 3] { ["operations", key, name] };
    if !format.is_xml() {
        for (name, present) in [
            ("item", operation.item.is_some()),
            ("soap-action", operation.soap_action.is_some()),
            ("params", !operation.params.is_empty()),
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
        if !operation.params.is_empty() {
            checker.report(
                &at("params"),
                "belongs to SOAP operations; a REST operation sends values in its path or query",
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
    let needs_record = matches!(role, OperationRole::Write | OperationRole::Read)
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
            let root = first.segments().first().cloned();
            for (name, path) in &answer_paths[1..] {
                if path.segments().first() != root.as_ref() {
                    checker.report(
                        &["operations", key],
                        format!(
                            "`{name}` ({path}) must start at the answer's root element `{}`: an XML document has one root",
                            root.clone().unwrap_or_default()
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
        for (field, path) in &mapping.fields {
            let key = vec![
                "records".to_owned(),
                kind.key().to_owned(),
                "fields".to_owned(),
                field.to_string(),
            ];
            paths.push((key, path));
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
        let segments = path.segments();
        for (index, segment) in segments.iter().enumerate() {
            let (name, attribute) = match segment.strip_prefix('@') {
                Some(name) => (name, true),
                None => (segment.as_str(), false),
            };
            let problem = if attribute && index + 1 != segments.len() {
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
        ("stop", paging.stop.is_some()),
    ];
    let (style, required, optional): (&str, &[&str], &[&str]) = match paging.style {
        PagingStyle::None => ("none", &[], &[]),
        PagingStyle::PageNumber => (
            "page-number",
            &["page-param", "size-param", "page-size", "stop"],
            &["first-page", "total-field"],
        ),
        PagingStyle::Offset => (
            "offset",
            &["offset-param", "limit-param", "page-size", "stop"],
            &["total-field"],
        ),
        PagingStyle::Cursor => (
            "cursor",
            &["cursor-param", "next-field"],
            &["size-param", "page-size"],
        ),
        PagingStyle::NextLink => ("next-link", &["next-field"], &["size-param", "page-size"]),
    };
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
        && matches!(paging.style, PagingStyle::Cursor | PagingStyle::NextLink)
    {
        checker.report(
            &["operations", key, "paging"],
            "give size-param and page-size together",
        );
    }
    if let Some(size) = paging.page_size {
        if !(1..=10_000).contains(&size) {
            checker.report(
                &["operations", key, "paging", "page-size"],
                "must be between 1 and 10000",
            );
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
    if (paging.stop == Some(PageStop::Total)) != paging.total_field.is_some() {
        checker.report(
            &["operations", key, "paging"],
            "stop = \"total\" and total-field go together",
        );
    }
}

//! The simulated InTouch receiving what partners send: users (prospects and members), staff and
//! lead sources, with SmartMatch turning arriving members into the prospects they were.

use super::wire::{ProviderInfo, Resource};
use crate::model::same_ignoring_case;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};

/// The version of the state file's shape.
pub const STATE_FORMAT: u32 = 1;

/// The provider, client and club the server accepts calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tenant {
    /// The provider identifier issued to the partner.
    pub provider: String,
    /// The client id.
    pub client: String,
    /// The club id.
    pub club: String,
}

impl Tenant {
    /// The first part of `provider` that is not this tenant's, with the value expected.
    pub fn mismatch(&self, provider: &ProviderInfo) -> Option<(&'static str, String, String)> {
        let expected = [
            ("identifier", &self.provider, &provider.identifier),
            ("clientID", &self.client, &provider.client_id),
            ("clubID", &self.club, &provider.club_id),
        ];
        expected.into_iter().find_map(|(name, want, got)| {
            let got = got.clone().unwrap_or_default();
            (got != *want).then(|| (name, got, want.clone()))
        })
    }
}

/// Prospect or member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    /// A lead.
    Prospect,
    /// A member.
    Member,
}

impl UserType {
    /// From `<userType>`.
    pub fn from_wire(value: &str) -> Option<UserType> {
        match value {
            "PROSPECT" => Some(UserType::Prospect),
            "MEMBER" => Some(UserType::Member),
            _ => None,
        }
    }
}

/// Who created a record in InTouch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// It was in InTouch before (the seed).
    Intouch,
    /// The partner sent it.
    Partner,
}

/// A prospect or member in InTouch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct User {
    /// InTouch's (the Connector's) id.
    pub uuid: String,
    /// Prospect or member.
    pub user_type: UserType,
    /// Whether it is active.
    pub active: bool,
    /// The partner's id of the record, once known.
    pub record_id: Option<String>,
    /// Who created it.
    pub origin: Origin,
    /// How the last member save found it, when SmartMatch converted it.
    #[serde(default)]
    pub converted_by: Option<MatchRule>,
    /// The `<userInfo>` fields as last sent.
    pub fields: BTreeMap<String, String>,
}

/// A staff member or lead source in InTouch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Entry {
    /// InTouch's id.
    pub uuid: String,
    /// The partner's id.
    pub record_id: String,
    /// The fields as last sent.
    pub fields: BTreeMap<String, String>,
}

/// Everything InTouch holds for one tenant; also the state file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Intouch {
    /// The state file's shape version.
    pub format: u32,
    /// Whose records these are.
    pub tenant: Tenant,
    /// The next number folded into a new uuid.
    pub next_id: u64,
    /// Prospects and members.
    pub users: Vec<User>,
    /// Staff.
    pub staff: Vec<Entry>,
    /// Lead sources.
    pub lead_sources: Vec<Entry>,
    /// Where each record id is among `users`, so a save costs the same at any size.
    #[serde(skip)]
    index: RecordIndex,
}

/// Partner record ids to positions in `users`, kept by the save methods and rebuilt when
/// `users` was replaced. A hit is checked against the user it names, so a stale entry falls
/// back to a scan and never answers wrong.
#[derive(Debug, Clone, Default)]
struct RecordIndex {
    positions: HashMap<String, usize>,
    /// How many users it was built over.
    covered: usize,
}

// An index is derived data: two InTouch states are equal by their records alone.
impl PartialEq for RecordIndex {
    fn eq(&self, _: &RecordIndex) -> bool {
        true
    }
}

impl Eq for RecordIndex {}

impl RecordIndex {
    fn build(users: &[User]) -> RecordIndex {
        let mut positions = HashMap::with_capacity(users.len());
        for (at, user) in users.iter().enumerate() {
            if let Some(record_id) = &user.record_id {
                positions.entry(record_id.clone()).or_insert(at);
            }
        }
        RecordIndex {
            positions,
            covered: users.len(),
        }
    }

    /// The first user with `record_id`, when the index covers `users`.
    fn find(&self, users: &[User], record_id: &str) -> Option<Option<usize>> {
        if self.covered != users.len() {
            return None;
        }
        match self.positions.get(record_id) {
            None => Some(None),
            Some(&at) if users[at].record_id.as_deref() == Some(record_id) => Some(Some(at)),
            Some(_) => None,
        }
    }
}

/// Which SmartMatch step found a prospect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchRule {
    /// The partner's record id.
    RecordId,
    /// First and last name, email and mobile.
    NameEmailMobile,
    /// First and last name and email.
    NameEmail,
    /// First and last name and mobile.
    NameMobile,
}

impl MatchRule {
    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            MatchRule::RecordId => "the partner's record id",
            MatchRule::NameEmailMobile => "full name + email + mobile",
            MatchRule::NameEmail => "full name + email",
            MatchRule::NameMobile => "full name + mobile",
        }
    }
}

/// What SmartMatch decided for an arriving member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// Exactly one user found, by this step (index into `users`).
    One(usize, MatchRule),
    /// Several prospects fit the first step that found any: a new member is inserted.
    Several(MatchRule, usize),
    /// Nothing fits: a new member is inserted.
    None,
}

/// A mobile number's digits.
pub fn mobile_digits(mobile: &str) -> String {
    mobile.chars().filter(char::is_ascii_digit).collect()
}

/// SmartMatch: the user with the partner's `record_id` first; then, among prospects, full
/// name + email + mobile, name + email, name + mobile. Names and emails compare ignoring case
/// (Unicode folding), mobiles by digits. The first step that finds anyone decides.
pub fn smart_match(
    users: &[User],
    record_id: Option<&str>,
    fields: &BTreeMap<String, String>,
) -> Matched {
    if let Some(record_id) = record_id {
        if let Some(index) = users
            .iter()
            .position(|user| user.record_id.as_deref() == Some(record_id))
        {
            return Matched::One(index, MatchRule::RecordId);
        }
    }
    let get = |fields: &BTreeMap<String, String>, name: &str| {
        fields.get(name).filter(|v| !v.trim().is_empty()).cloned()
    };
    let (Some(first), Some(last)) = (get(fields, "firstname"), get(fields, "lastname")) else {
        return Matched::None;
    };
    let email = get(fields, "email");
    let mobile = get(fields, "mobile")
        .map(|m| mobile_digits(&m))
        .filter(|m| !m.is_empty());
    let steps = [
        (MatchRule::NameEmailMobile, true, true),
        (MatchRule::NameEmail, true, false),
        (MatchRule::NameMobile, false, true),
    ];
    for (rule, by_email, by_mobile) in steps {
        if (by_email && email.is_none()) || (by_mobile && mobile.is_none()) {
            continue;
        }
        let found: Vec<usize> = users
            .iter()
            .enumerate()
            .filter(|(_, user)| user.user_type == UserType::Prospect)
            .filter(|(_, user)| {
                let theirs = |name: &str| get(&user.fields, name);
                let same = |a: Option<String>, b: &Option<String>| match (a, b) {
                    (Some(a), Some(b)) => same_ignoring_case(&a, b),
                    _ => false,
                };
                same(theirs("firstname"), &Some(first.clone()))
                    && same(theirs("lastname"), &Some(last.clone()))
                    && (!by_email || same(theirs("email"), &email))
                    && (!by_mobile
                        || theirs("mobile").map(|m| mobile_digits(&m)).as_ref() == mobile.as_ref())
            })
            .map(|(index, _)| index)
            .collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Matched::One(*one, rule),
            several => return Matched::Several(rule, several.len()),
        }
    }
    Matched::None
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Saved {
    /// The record's uuid, answered to the partner.
    pub uuid: String,
    /// created, updated or converted.
    pub action: &'static str,
    /// The SmartMatch step that found the record, if one did.
    pub matched_by: Option<MatchRule>,
    /// Prospects that fitted equally (an ambiguous SmartMatch), if any.
    pub ambiguous: Option<usize>,
}

impl Intouch {
    /// An empty InTouch for `tenant`.
    pub fn new(tenant: Tenant) -> Intouch {
        Intouch {
            format: STATE_FORMAT,
            tenant,
            next_id: 1,
            users: Vec::new(),
            staff: Vec::new(),
            lead_sources: Vec::new(),
            index: RecordIndex::default(),
        }
    }

    /// The first user with the partner's `record_id`.
    fn user_by_record(&self, record_id: &str) -> Option<usize> {
        self.index.find(&self.users, record_id).unwrap_or_else(|| {
            self.users
                .iter()
                .position(|user| user.record_id.as_deref() == Some(record_id))
        })
    }

    /// A new uuid, distinct for each call within this InTouch.
    pub fn new_uuid(&mut self, what: &str) -> String {
        let number = self.next_id;
        self.next_id += 1;
        uuid_from(&format!(
            "{}/{}/{}/{what}/{number}",
            self.tenant.provider, self.tenant.client, self.tenant.club
        ))
    }

    /// Every uuid InTouch has given out for a record.
    pub fn uuids(&self) -> impl Iterator<Item = &str> {
        self.users
            .iter()
            .map(|u| u.uuid.as_str())
            .chain(self.staff.iter().map(|e| e.uuid.as_str()))
            .chain(self.lead_sources.iter().map(|e| e.uuid.as_str()))
    }

    /// Saves a user: by record id an update; a member SmartMatched to one prospect converts
    /// it; otherwise a new record. `fields` are valid (see `wire::validate`).
    pub fn save_user(&mut self, record_id: &str, fields: BTreeMap<String, String>) -> Saved {
        self.save_user_at(record_id, fields).0
    }

    /// [`Intouch::save_user`], also telling the position in `users` it changed.
    pub fn save_user_at(
        &mut self,
        record_id: &str,
        fields: BTreeMap<String, String>,
    ) -> (Saved, usize) {
        if self.index.covered != self.users.len() {
            self.index = RecordIndex::build(&self.users);
        }
        let user_type = fields
            .get("userType")
            .and_then(|t| UserType::from_wire(t))
            .unwrap_or(UserType::Prospect);
        let active = fields.get("userStatus").map(String::as_str) != Some("INACTIVE");
        // The same steps as `smart_match`, the record id found through the index.
        let matched = match (self.user_by_record(record_id), user_type) {
            (Some(at), _) => Matched::One(at, MatchRule::RecordId),
            (None, UserType::Member) => smart_match(&self.users, None, &fields),
            // Prospects arriving are found by the partner's id only.
            (None, UserType::Prospect) => Matched::None,
        };
        match matched {
            Matched::One(index, rule) => {
                self.index.positions.insert(record_id.to_owned(), index);
                let user = &mut self.users[index];
                let converted =
                    user.user_type == UserType::Prospect && user_type == UserType::Member;
                user.user_type = user_type;
                user.active = active;
                user.record_id = Some(record_id.to_owned());
                user.fields = fields;
                if converted {
                    user.converted_by = Some(rule);
                }
                let saved = Saved {
                    uuid: user.uuid.clone(),
                    action: if converted { "converted" } else { "updated" },
                    matched_by: Some(rule),
                    ambiguous: None,
                };
                (saved, index)
            }
            Matched::Several(_, _) | Matched::None => {
                let ambiguous = match matched {
                    Matched::Several(_, count) => Some(count),
                    _ => None,
                };
                let uuid = self.new_uuid("user");
                self.users.push(User {
                    uuid: uuid.clone(),
                    user_type,
                    active,
                    record_id: Some(record_id.to_owned()),
                    origin: Origin::Partner,
                    converted_by: None,
                    fields,
                });
                let at = self.users.len() - 1;
                self.index.positions.insert(record_id.to_owned(), at);
                self.index.covered = self.users.len();
                let saved = Saved {
                    uuid,
                    action: "created",
                    matched_by: None,
                    ambiguous,
                };
                (saved, at)
            }
        }
    }

    /// Saves a staff member or lead source by the partner's record id.
    pub fn save_entry(
        &mut self,
        resource: Resource,
        record_id: &str,
        fields: BTreeMap<String, String>,
    ) -> Saved {
        self.save_entry_at(resource, record_id, fields).0
    }

    /// [`Intouch::save_entry`], also telling the position in its list it changed.
    pub fn save_entry_at(
        &mut self,
        resource: Resource,
        record_id: &str,
        fields: BTreeMap<String, String>,
    ) -> (Saved, usize) {
        let existing = self
            .entries(resource)
            .iter()
            .position(|entry| entry.record_id == record_id);
        if let Some(index) = existing {
            let entry = &mut self.entries_mut(resource)[index];
            entry.fields = fields;
            let saved = Saved {
                uuid: entry.uuid.clone(),
                action: "updated",
                matched_by: Some(MatchRule::RecordId),
                ambiguous: None,
            };
            return (saved, index);
        }
        let uuid = self.new_uuid(resource.segment());
        let entries = self.entries_mut(resource);
        entries.push(Entry {
            uuid: uuid.clone(),
            record_id: record_id.to_owned(),
            fields,
        });
        let at = entries.len() - 1;
        let saved = Saved {
            uuid,
            action: "created",
            matched_by: None,
            ambiguous: None,
        };
        (saved, at)
    }

    /// Staff or lead sources (users are not entries).
    pub fn entries(&self, resource: Resource) -> &[Entry] {
        match resource {
            Resource::LeadSource => &self.lead_sources,
            _ => &self.staff,
        }
    }

    fn entries_mut(&mut self, resource: Resource) -> &mut Vec<Entry> {
        match resource {
            Resource::LeadSource => &mut self.lead_sources,
            _ => &mut self.staff,
        }
    }

    /// A record by the partner's id: its uuid and fields.
    pub fn find(
        &self,
        resource: Resource,
        record_id: &str,
    ) -> Option<(&str, &BTreeMap<String, String>)> {
        match resource {
            Resource::User => self
                .user_by_record(record_id)
                .map(|at| (self.users[at].uuid.as_str(), &self.users[at].fields)),
            _ => self
                .entries(resource)
                .iter()
                .find(|e| e.record_id == record_id)
                .map(|e| (e.uuid.as_str(), &e.fields)),
        }
    }
}

/// A uuid (version 4 layout) derived from `seed`: stable for the same seed, so a run replays.
pub fn uuid_from(seed: &str) -> String {
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::digest::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The InTouch seed file (`--sandbox`): prospects and members already in InTouch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Seed {
    /// Prospects.
    #[serde(default)]
    pub prospect: Vec<SeedUser>,
    /// Members.
    #[serde(default)]
    pub member: Vec<SeedUser>,
}

/// One seeded user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeedUser {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Mobile.
    #[serde(default)]
    pub mobile: Option<String>,
    /// The partner's id, when the Connector already delivered the record to the partner.
    #[serde(default)]
    pub record_id: Option<String>,
    /// Inactive.
    #[serde(default)]
    pub inactive: bool,
}

/// The built-in seed: a few InTouch prospects to convert.
pub const DEFAULT_SEED: &str = include_str!("../../fixtures/connector/intouch.toml");

/// Why a seed or state file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a valid seed.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        message: String,
    },
}

impl Seed {
    /// Parses a seed; errors name the file, line and key.
    pub fn parse(path: &str, text: &str) -> Result<Seed, SeedError> {
        toml::from_str(text).map_err(|error| SeedError::Invalid {
            path: path.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })
    }

    /// Reads a seed file.
    pub fn load(path: &std::path::Path) -> Result<Seed, SeedError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: name.clone(),
            source,
        })?;
        Seed::parse(&name, &text)
    }

    /// The built-in seed.
    pub fn builtin() -> Seed {
        Seed::parse("fixtures/connector/intouch.toml", DEFAULT_SEED)
            .expect("the built-in InTouch seed is valid (checked by tests)")
    }

    /// InTouch for `tenant`, holding the seeded users.
    pub fn into_intouch(self, tenant: Tenant) -> Intouch {
        let mut intouch = Intouch::new(tenant);
        let seeded = self
            .prospect
            .into_iter()
            .map(|user| (UserType::Prospect, user))
            .chain(self.member.into_iter().map(|user| (UserType::Member, user)));
        for (user_type, user) in seeded {
            let mut fields = BTreeMap::new();
            fields.insert("firstname".to_owned(), user.first_name);
            fields.insert("lastname".to_owned(), user.last_name);
            for (name, value) in [("email", user.email), ("mobile", user.mobile)] {
                if let Some(value) = value {
                    fields.insert(name.to_owned(), value);
                }
            }
            let uuid = intouch.new_uuid("seed");
            intouch.users.push(User {
                uuid,
                user_type,
                active: !user.inactive,
                record_id: user.record_id,
                origin: Origin::Intouch,
                converted_by: None,
                fields,
            });
        }
        intouch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prospect(first: &str, last: &str, email: &str, mobile: &str, record: &str) -> User {
        let mut fields = BTreeMap::new();
        for (name, value) in [
            ("firstname", first),
            ("lastname", last),
            ("email", email),
            ("mobile", mobile),
        ] {
            if !value.is_empty() {
                fields.insert(name.to_owned(), value.to_owned());
            }
        }
        User {
            uuid: format!("uuid-{first}-{last}-{record}"),
            user_type: UserType::Prospect,
            active: true,
            record_id: (!record.is_empty()).then(|| record.to_owned()),
            origin: Origin::Intouch,
            converted_by: None,
            fields,
        }
    }

    fn member(first: &str, last: &str, email: &str, mobile: &str) -> BTreeMap<String, String> {
        let mut fields = prospect(first, last, email, mobile, "").fields;
        fields.insert("userType".into(), "MEMBER".into());
        fields.insert("userStatus".into(), "ACTIVE".into());
        fields
    }

    /// The InTouch prospects every case starts from.
    fn world() -> Vec<User> {
        vec![
            prospect(
                "Ana",
                "Silva",
                "ana@example.com",
                "+1 (555) 010-0001",
                "P-1",
            ),
            prospect("Bruno", "Costa", "bruno@example.com", "555 0100 02", ""),
            prospect("Carla", "Dias", "carla@example.com", "", ""),
            prospect("Diego", "Reis", "", "555-0100-04", ""),
            // Two prospects alike by name and email, told apart only by mobile.
            prospect("Eva", "Lima", "eva@example.com", "555 0100 05", ""),
            prospect("Eva", "Lima", "eva@example.com", "555 0100 06", ""),
            // Two alike in every way: no step can tell them apart.
            prospect("Fábio", "Rocha", "fabio@example.com", "555 0100 07", ""),
            prospect("Fábio", "Rocha", "fabio@example.com", "555 0100 07", ""),
            prospect("Straße", "Groß", "gross@example.com", "", ""),
        ]
    }

    #[test]
    fn smart_match_decides_case_by_case() {
        use MatchRule::*;
        // (case, record id sent, member sent, expected: Some((prospect index, step)), or
        // None for a new member, with the ambiguity count when several fit)
        type Case = (
            &'static str,
            &'static str,
            BTreeMap<String, String>,
            Matched,
        );
        let cases: Vec<Case> = vec![
            (
                "the partner's record id wins over everything",
                "P-1",
                member("Someone", "Else", "x@example.com", ""),
                Matched::One(0, RecordId),
            ),
            (
                "name + email + mobile, mobile punctuation ignored",
                "M-2",
                member("BRUNO", "costa", "Bruno@Example.com", "(555) 0100-02"),
                Matched::One(1, NameEmailMobile),
            ),
            (
                "name + email when the member has no mobile",
                "M-3",
                member("carla", "DIAS", "CARLA@example.com", ""),
                Matched::One(2, NameEmail),
            ),
            (
                "name + email when the mobile differs",
                "M-3b",
                member("Carla", "Dias", "carla@example.com", "555 9999"),
                Matched::One(2, NameEmail),
            ),
            (
                "name + mobile when the prospect has no email",
                "M-4",
                member("Diego", "Reis", "diego@elsewhere.com", "5550100 04"),
                Matched::One(3, NameMobile),
            ),
            (
                "name + email + mobile tells two same-name-and-email prospects apart",
                "M-5",
                member("Eva", "Lima", "eva@example.com", "555 0100 06"),
                Matched::One(5, NameEmailMobile),
            ),
            (
                "several prospects fit name + email: a new member",
                "M-6",
                member("Eva", "Lima", "eva@example.com", ""),
                Matched::Several(NameEmail, 2),
            ),
            (
                "several prospects fit every step: a new member",
                "M-7",
                member("Fábio", "Rocha", "fabio@example.com", "555 0100 07"),
                Matched::Several(NameEmailMobile, 2),
            ),
            (
                "names fold by Unicode, not ASCII: STRASSE = Straße",
                "M-8",
                member("STRASSE", "GROSS", "GROSS@EXAMPLE.COM", ""),
                Matched::One(8, NameEmail),
            ),
            (
                "a different first name matches nobody",
                "M-9",
                member("Anna", "Silva", "ana@example.com", "+1 (555) 010-0001"),
                Matched::None,
            ),
            (
                "name alone is not enough",
                "M-10",
                member("Carla", "Dias", "", ""),
                Matched::None,
            ),
            (
                "an email with another name is not enough",
                "M-11",
                member("Carl", "Dias", "carla@example.com", ""),
                Matched::None,
            ),
        ];
        let users = world();
        for (case, record, fields, expected) in cases {
            assert_eq!(
                smart_match(&users, Some(record), &fields),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn every_spelling_the_connector_folds_still_matches_the_same_prospect() {
        use crate::model::same_name_variants;
        let users = world();
        // Prospects that one step tells apart: index, and the step that finds them.
        for (index, step) in [
            (1, MatchRule::NameEmailMobile),
            (2, MatchRule::NameEmail),
            (8, MatchRule::NameEmail),
        ] {
            let fields = &users[index].fields;
            for name in ["firstname", "lastname", "email"] {
                for (what, variant) in same_name_variants(&fields[name]) {
                    let mut sent = fields.clone();
                    sent.insert(name.to_owned(), variant.clone());
                    sent.insert("userType".into(), "MEMBER".into());
                    if let Some(mobile) = sent.get_mut("mobile") {
                        *mobile = format!("({})", mobile.replace(' ', "-"));
                    }
                    assert_eq!(
                        smart_match(&users, Some("new-id"), &sent),
                        Matched::One(index, step),
                        "{name} as `{variant}` ({what})"
                    );
                }
            }
        }
    }

    #[test]
    fn members_are_matched_only_to_prospects() {
        let mut users = world();
        users[2].user_type = UserType::Member;
        assert_eq!(
            smart_match(
                &users,
                Some("new"),
                &member("Carla", "Dias", "carla@example.com", "")
            ),
            Matched::None
        );
    }

    fn intouch() -> Intouch {
        let mut intouch = Intouch::new(Tenant {
            provider: "P".into(),
            client: "C".into(),
            club: "K".into(),
        });
        intouch.users = world();
        intouch
    }

    #[test]
    fn a_single_match_converts_and_keeps_the_prospects_uuid() {
        let mut intouch = intouch();
        let before = intouch.users.len();
        let uuid = intouch.users[2].uuid.clone();
        let saved = intouch.save_user("M-3", member("Carla", "Dias", "carla@example.com", ""));
        assert_eq!(saved.action, "converted");
        assert_eq!(saved.uuid, uuid);
        assert_eq!(intouch.users.len(), before);
        assert_eq!(intouch.users[2].user_type, UserType::Member);
        assert_eq!(intouch.users[2].record_id.as_deref(), Some("M-3"));
        assert_eq!(intouch.users[2].converted_by, Some(MatchRule::NameEmail));
    }

    #[test]
    fn a_record_id_is_never_found_at_a_stale_position() {
        let mut intouch = intouch();
        let ana = intouch.users[0].uuid.clone();
        // Converted by name under a new record id: the old one names nobody now.
        let saved = intouch.save_user(
            "M-1",
            member("Ana", "Silva", "ana@example.com", "+1 (555) 010-0001"),
        );
        assert_eq!(
            (saved.action, saved.uuid.as_str()),
            ("converted", ana.as_str())
        );
        assert!(intouch.find(Resource::User, "P-1").is_none());
        assert_eq!(intouch.find(Resource::User, "M-1").unwrap().0, ana);
        // Users moved behind the index's back are still found where they are.
        intouch.users.swap(0, 1);
        assert_eq!(intouch.find(Resource::User, "M-1").unwrap().0, ana);
        let again = intouch.save_user("M-1", member("Ana", "Silva", "ana@example.com", ""));
        assert_eq!(
            (again.action, again.uuid.as_str()),
            ("updated", ana.as_str())
        );
        assert_eq!(intouch.users[1].fields.get("mobile"), None);
    }

    #[test]
    fn an_ambiguous_match_inserts_a_new_member() {
        let mut intouch = intouch();
        let before = intouch.users.len();
        let saved = intouch.save_user("M-6", member("Eva", "Lima", "eva@example.com", ""));
        assert_eq!(saved.action, "created");
        assert_eq!(saved.ambiguous, Some(2));
        assert_eq!(intouch.users.len(), before + 1);
        assert!(intouch.users[4..6]
            .iter()
            .all(|u| u.user_type == UserType::Prospect));
    }

    #[test]
    fn inactivation_makes_the_record_inactive_and_prospects_are_not_smart_matched() {
        let mut intouch = intouch();
        let mut fields = member("Ana", "Silva", "ana@example.com", "");
        fields.insert("userType".into(), "PROSPECT".into());
        fields.insert("userStatus".into(), "INACTIVE".into());
        let saved = intouch.save_user("P-1", fields.clone());
        assert_eq!(saved.action, "updated");
        assert!(!intouch.users[0].active);
        // A prospect with a new record id is a new prospect even if a name matches.
        let mut fields = member("Bruno", "Costa", "bruno@example.com", "");
        fields.insert("userType".into(), "PROSPECT".into());
        assert_eq!(intouch.save_user("P-9", fields).action, "created");
    }

    #[test]
    fn the_builtin_seed_parses_and_uuids_differ() {
        let intouch = Seed::builtin().into_intouch(intouch().tenant);
        assert!(!intouch.users.is_empty());
        let mut uuids: Vec<&str> = intouch.uuids().collect();
        uuids.sort_unstable();
        uuids.dedup();
        assert_eq!(uuids.len(), intouch.users.len());
        assert!(Seed::parse("x.toml", "[[prospect]]\nfirst-name = 1\n")
            .unwrap_err()
            .to_string()
            .contains("x.toml"));
    }
}

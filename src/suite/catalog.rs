//! The rule catalog (`conformance/rules.toml`): ids, levels, guide clauses, applicability.

use crate::model::{Field, RecordKind};
use crate::profile::{OperationKind, Profile};
use serde::{Deserialize, Serialize};

/// The built-in catalog.
pub const RULES_TOML: &str = include_str!("../../conformance/rules.toml");

/// A rule's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// The guide requires it: a failure fails certification.
    #[serde(rename = "MUST")]
    Must,
    /// Good practice: a failure is a warning.
    #[serde(rename = "SHOULD")]
    Should,
}

impl Level {
    /// As written in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

/// What a rule needs of the profile to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    /// The partner receives prospects.
    Prospects,
    /// The partner receives members.
    Members,
    /// Prospects carry an owner.
    StaffOwner,
    /// Prospects carry a source.
    LeadSource,
    /// A staff lookup by email is declared.
    StaffLookup,
    /// A lead-source list is declared.
    SourceList,
    /// A lead-source create is declared.
    SourceCreate,
    /// Sources are create-only (no list).
    CreateOnlySources,
    /// Prospects can be read back.
    ProspectRead,
    /// The profile declares authentication.
    Authenticated,
    /// Records carry an external id.
    ExternalId,
    /// Prospects name their source, which the partner resolves.
    SourceByName,
    /// Prospects name their owner by email, which the partner resolves.
    OwnerByEmail,
    /// The partner sends data to the Connector: judged by `spoke connector` over the calls it
    /// receives, never by a certify run.
    Sends,
}

impl Applies {
    /// The key in the catalog.
    pub fn key(self) -> &'static str {
        match self {
            Applies::Prospects => "prospects",
            Applies::Members => "members",
            Applies::StaffOwner => "staff-owner",
            Applies::LeadSource => "lead-source",
            Applies::StaffLookup => "staff-lookup",
            Applies::SourceList => "source-list",
            Applies::SourceCreate => "source-create",
            Applies::CreateOnlySources => "create-only-sources",
            Applies::ProspectRead => "prospect-read",
            Applies::Authenticated => "authenticated",
            Applies::ExternalId => "external-id",
            Applies::SourceByName => "source-by-name",
            Applies::OwnerByEmail => "owner-by-email",
            Applies::Sends => "sends",
        }
    }

    /// Whether `profile` has it.
    pub fn holds(self, profile: &Profile) -> bool {
        let caps = profile.capabilities;
        let has = |kind| profile.operation(kind).is_some();
        match self {
            Applies::Prospects => caps.prospects,
            Applies::Members => caps.members,
            Applies::StaffOwner => caps.staff_owner,
            Applies::LeadSource => caps.lead_source,
            Applies::StaffLookup => has(OperationKind::StaffLookup),
            Applies::SourceList => has(OperationKind::SourceList),
            Applies::SourceCreate => has(OperationKind::SourceCreate),
            Applies::CreateOnlySources => {
                caps.lead_source
                    && has(OperationKind::SourceCreate)
                    && !has(OperationKind::SourceList)
            }
            Applies::ProspectRead => has(OperationKind::ProspectRead),
            Applies::SourceByName => profile.references.resolves_source_names(),
            Applies::OwnerByEmail => {
                profile.references.owner == crate::profile::OwnerReference::Email
            }
            Applies::Authenticated => profile.auth.scheme != crate::profile::AuthScheme::None,
            // Two-way profiles declare `[sends]`; certify then runs the sending steps too.
            Applies::Sends => profile.sends.is_some(),
            Applies::ExternalId => {
                [RecordKind::Prospect, RecordKind::Member]
                    .into_iter()
                    .any(|kind| {
                        profile.carries(kind)
                            && profile.codec(kind).path(Field::ExternalId).is_some()
                    })
            }
        }
    }

    /// Why a rule is skipped when this does not hold.
    pub fn skip_reason(self) -> &'static str {
        match self {
            Applies::Prospects => "The profile does not receive prospects.",
            Applies::Members => "The profile does not receive members.",
            Applies::StaffOwner => "The profile does not support a staff owner.",
            Applies::LeadSource => "The profile does not support a lead source.",
            Applies::StaffLookup => "The profile offers no staff lookup by email.",
            Applies::SourceList => "The profile has no lead-source list.",
            Applies::SourceCreate => "The profile has no lead-source create call.",
            Applies::CreateOnlySources => "The profile's lead sources are not create-only.",
            Applies::ProspectRead => "The profile has no prospect read operation.",
            Applies::Authenticated => "The profile declares no authentication.",
            Applies::ExternalId => "The profile maps no external id.",
            Applies::SourceByName => {
                "The profile references sources by id, or by the partner's own spelling."
            }
            Applies::OwnerByEmail => "The profile references owners by id.",
            Applies::Sends => {
                "The profile declares no [sends] section: the partner does not send data (`spoke connector` judges senders on their own)."
            }
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id.
    pub id: String,
    /// MUST or SHOULD.
    pub level: Level,
    /// What it requires.
    pub title: String,
    /// The guide clause or domain fact.
    pub clause: String,
    /// What it needs to apply.
    pub applies: Vec<Applies>,
    /// A hint for fixing a failure.
    pub fix: String,
}

/// The catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Catalog {
    /// Version of the catalog.
    pub catalog_version: String,
    /// The rules, in report order.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

impl Catalog {
    /// The built-in catalog (parsed once).
    pub fn builtin() -> Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG
            .get_or_init(|| {
                toml::from_str(RULES_TOML)
                    .expect("the built-in catalog is valid (checked by tests)")
            })
            .clone()
    }

    /// A rule by id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|rule| rule.id.eq_ignore_ascii_case(id))
    }
}

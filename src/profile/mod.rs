//! A partner's API described as data: loaded from TOML, validated, and shared by the simulated
//! Connector (client) and the mock partner (server).

pub mod body;
pub mod codec;
mod load;
pub mod path;
pub mod spec;
pub mod stream;
pub mod template;

pub use codec::{FieldProblem, RecordCodec, Side};
pub use load::{Problem, ProfileError};
pub use path::JsonPath;
pub use spec::*;
pub use template::{Slot, SlotValues, Template};

use crate::model::RecordKind;
use std::collections::BTreeMap;
use std::path::Path;

/// The reference profile, embedded so `spoke` works from any directory.
pub const REFERENCE_PROFILE: &str = include_str!("reference.toml");

/// The file name reported for the embedded reference profile.
pub const REFERENCE_PROFILE_NAME: &str = "reference.toml";

/// A validated partner profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The file name it was loaded from (for messages).
    pub file_name: String,
    /// The file's text as loaded.
    pub text: String,
    /// `[partner]`.
    pub partner: PartnerSection,
    /// `[tenancy]`.
    pub tenancy: Tenancy,
    /// `[auth]`.
    pub auth: AuthSection,
    /// `[capabilities]`.
    pub capabilities: Capabilities,
    /// `[references]`.
    pub references: References,
    /// `[absent]`.
    pub absent: Absent,
    /// `[operations.*]`, by kind.
    pub operations: BTreeMap<OperationKind, Operation>,
    /// `[records.*]`, by kind.
    pub records: BTreeMap<RecordKind, spec::Mapping>,
    /// `[sends]`, for partners that also send data to the Connector.
    pub sends: Option<spec::SendsSection>,
    /// `[tls]`: a client certificate to present, CAs to trust.
    pub tls: Option<spec::TlsSection>,
}

impl Profile {
    /// Loads and validates a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|error| ProfileError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let file_name = path.display().to_string();
        Profile::parse(&file_name, &text)
    }

    /// The embedded reference profile.
    pub fn reference() -> Profile {
        Profile::parse(REFERENCE_PROFILE_NAME, REFERENCE_PROFILE)
            .expect("the embedded reference profile is valid (checked by tests)")
    }

    /// Validates profile text; `file_name` is used in messages.
    pub fn parse(file_name: &str, text: &str) -> Result<Profile, ProfileError> {
        load::parse(file_name, text)
    }

    /// The operation of `kind`, if declared.
    pub fn operation(&self, kind: OperationKind) -> Option<&Operation> {
        self.operations.get(&kind)
    }

    /// The mapping for `kind`; empty when the profile does not carry that record.
    pub fn mapping(&self, kind: RecordKind) -> &spec::Mapping {
        static EMPTY: std::sync::OnceLock<spec::Mapping> = std::sync::OnceLock::new();
        self.records
            .get(&kind)
            .unwrap_or_else(|| EMPTY.get_or_init(spec::Mapping::default))
    }

    /// A codec for `kind` records under this profile.
    pub fn codec(&self, kind: RecordKind) -> RecordCodec<'_> {
        RecordCodec::new(self, kind)
    }

    /// The operation that creates a `kind` record (a save or a create).
    pub fn create_operation(&self, kind: RecordKind) -> Option<OperationKind> {
        let (save, create, _, _) = write_kinds(kind)?;
        [save, create]
            .into_iter()
            .find(|op| self.operations.contains_key(op))
    }

    /// The operation that updates a `kind` record by the partner's id.
    pub fn update_operation(&self, kind: RecordKind) -> Option<OperationKind> {
        let (save, _, update, _) = write_kinds(kind)?;
        [save, update]
            .into_iter()
            .find(|op| self.operations.contains_key(op))
    }

    /// The operation that reads a `kind` record back by the partner's id.
    pub fn read_operation(&self, kind: RecordKind) -> Option<OperationKind> {
        let (_, _, _, read) = write_kinds(kind)?;
        self.operations.contains_key(&read).then_some(read)
    }

    /// How well a request's query fits `operation`'s declared parameters: `None` when one is
    /// missing or holds another value, else the number it declares (more is more specific).
    /// Operations sharing a route are told apart by it.
    pub fn query_fit(
        &self,
        operation: &Operation,
        query: &BTreeMap<String, String>,
    ) -> Option<usize> {
        for (name, template) in &operation.query {
            let given = query.get(name)?;
            let slotted = template
                .slots()
                .iter()
                .any(|slot| matches!(slot, Slot::Id | Slot::Email));
            let fits = if slotted {
                body::extract_slot(template, given).is_some()
            } else {
                template
                    .render(&self.tenancy, str::to_owned)
                    .is_ok_and(|expected| expected == *given)
            };
            if !fits {
                return None;
            }
        }
        Some(operation.query.len())
    }

    /// The query a request of `operation` carries, with made-up values for `{id}` and
    /// `{email}`: what the route check tells operations apart by.
    pub fn sample_query(&self, operation: &Operation) -> BTreeMap<String, String> {
        struct Sample<'a>(&'a Tenancy);
        impl SlotValues for Sample<'_> {
            fn value(&self, slot: Slot) -> Option<&str> {
                match slot {
                    Slot::Id => Some("ID-1"),
                    Slot::Email => Some("someone@club.example"),
                    other => self.0.value(other),
                }
            }
        }
        operation
            .query
            .iter()
            .filter_map(|(name, template)| {
                Some((
                    name.clone(),
                    template
                        .render(&Sample(&self.tenancy), str::to_owned)
                        .ok()?,
                ))
            })
            .collect()
    }

    /// Whether the profile carries `kind` records at all.
    pub fn carries(&self, kind: RecordKind) -> bool {
        match kind {
            RecordKind::Staff => self.capabilities.staff_owner,
            RecordKind::Source => self.capabilities.lead_source,
            RecordKind::Prospect => self.capabilities.prospects,
            RecordKind::Member => self.capabilities.members,
        }
    }
}

/// (save, create, update, read) operation kinds for a record kind that is written.
fn write_kinds(
    kind: RecordKind,
) -> Option<(OperationKind, OperationKind, OperationKind, OperationKind)> {
    match kind {
        RecordKind::Prospect => Some((
            OperationKind::ProspectSave,
            OperationKind::ProspectCreate,
            OperationKind::ProspectUpdate,
            OperationKind::ProspectRead,
        )),
        RecordKind::Member => Some((
            OperationKind::MemberSave,
            OperationKind::MemberCreate,
            OperationKind::MemberUpdate,
            OperationKind::MemberRead,
        )),
        RecordKind::Staff | RecordKind::Source => None,
    }
}

impl SlotValues for Tenancy {
    fn value(&self, slot: Slot) -> Option<&str> {
        match slot {
            Slot::ClientId => self.client_id.as_deref(),
            Slot::ClubId => self.club_id.as_deref(),
            Slot::Id | Slot::Email => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_reference_profile_is_valid() {
        let profile = Profile::parse(REFERENCE_PROFILE_NAME, REFERENCE_PROFILE)
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(profile.capabilities.prospects && profile.capabilities.members);
        assert!(profile.capabilities.staff_owner && profile.capabilities.lead_source);
    }
}

//! Scenarios as data (`conformance/scenarios/*.toml`): which owner × source combinations and
//! which members a run delivers.

use serde::Deserialize;

/// The built-in core scenario.
pub const CORE_SCENARIO: &str = include_str!("../../conformance/scenarios/core.toml");

/// How a prospect's owner relates to the partner's staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerCase {
    /// An InTouch owner whose email the partner has, in other letter case.
    Matched,
    /// An InTouch owner the partner does not know.
    Unmatched,
    /// No owner.
    None,
}

impl OwnerCase {
    /// Every case, in grid order.
    pub const ALL: [OwnerCase; 3] = [OwnerCase::Matched, OwnerCase::Unmatched, OwnerCase::None];

    /// The scenario key.
    pub fn key(self) -> &'static str {
        match self {
            OwnerCase::Matched => "matched",
            OwnerCase::Unmatched => "unmatched",
            OwnerCase::None => "none",
        }
    }
}

/// How a prospect's source relates to the partner's sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceCase {
    /// A partner source in other letter case.
    ExistingOtherCase,
    /// A non-ASCII partner source in other letter case.
    ExistingNonAscii,
    /// A source the partner lacks.
    New,
    /// No source.
    None,
}

impl SourceCase {
    /// Every case, in grid order.
    pub const ALL: [SourceCase; 4] = [
        SourceCase::ExistingOtherCase,
        SourceCase::ExistingNonAscii,
        SourceCase::New,
        SourceCase::None,
    ];

    /// The scenario key.
    pub fn key(self) -> &'static str {
        match self {
            SourceCase::ExistingOtherCase => "existing-other-case",
            SourceCase::ExistingNonAscii => "existing-non-ascii",
            SourceCase::New => "new",
            SourceCase::None => "none",
        }
    }
}

/// One prospect cell.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectCell {
    /// The owner case.
    pub owner: OwnerCase,
    /// The source case.
    pub source: SourceCase,
}

/// A member's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberStatus {
    /// Active.
    Active,
    /// Inactive.
    Inactive,
}

impl MemberStatus {
    /// The canonical status value.
    pub fn key(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Inactive => "inactive",
        }
    }
}

/// One member cell.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberCell {
    /// The member's status.
    pub status: MemberStatus,
}

/// A scenario: the leads a run delivers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it covers.
    pub description: String,
    /// Prospect cells, in delivery order.
    #[serde(default, rename = "prospect")]
    pub prospects: Vec<ProspectCell>,
    /// Member cells, in delivery order.
    #[serde(default, rename = "member")]
    pub members: Vec<MemberCell>,
}

impl Scenario {
    /// The built-in core scenario.
    pub fn core() -> Scenario {
        toml::from_str(CORE_SCENARIO).expect("the core scenario is valid (checked by tests)")
    }
}

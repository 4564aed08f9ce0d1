//! Named misbehaviours of the mock partner, each caught by the rule(s) it names.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

macro_rules! faults {
    ($($variant:ident => $name:literal, [$($rule:literal),*], $what:literal;)*) => {
        /// One named misbehaviour.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Fault { $(#[doc = $what] $variant),* }

        impl Fault {
            /// Every fault, in catalog order.
            pub const ALL: &'static [Fault] = &[$(Fault::$variant),*];

            /// The fault's name, as given to `--fault`.
            pub fn name(self) -> &'static str {
                match self { $(Fault::$variant => $name),* }
            }

            /// What the partner does wrong.
            pub fn behaviour(self) -> &'static str {
                match self { $(Fault::$variant => $what),* }
            }

            /// The rules that must catch it.
            pub fn caught_by(self) -> &'static [&'static str] {
                match self { $(Fault::$variant => &[$($rule),*]),* }
            }
        }
    };
}

faults! {
    NoStaffList => "no-staff-list", ["STAFF-001"],
        "has no staff-list call: the route answers 404";
    StaffPaginationLoop => "staff-pagination-loop", ["STAFF-003"],
        "serves the first staff page again for every later page, so paging never ends";
    RejectUnowned => "reject-unowned", ["LEAD-002", "LEAD-003"],
        "rejects prospects that have no owner with 422";
    DropOwner => "drop-owner", ["STAFF-004"],
        "accepts prospects but stores no owner";
    RejectSourceless => "reject-sourceless", ["SRC-004"],
        "rejects prospects that have no lead source with 422";
    SourceCaseSensitive => "source-case-sensitive", ["SRC-002"],
        "resolves source names by exact case only, creating a new source for another spelling (partners that take sources by name)";
    SaveReturnsNoId => "save-returns-no-id", ["LEAD-001", "MEM-001"],
        "saves records but returns no id";
    UpdateCreatesDuplicate => "update-creates-duplicate", ["LEAD-004", "MEM-002"],
        "treats a save with the partner's id as a new record, creating a duplicate";
    RejectMember => "reject-member", ["MEM-001"],
        "rejects every member with 422";
    Slow => "slow", [],
        "answers every request only after the client's timeout";
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .iter()
            .copied()
            .find(|fault| fault.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault `{name}`; known faults: {}", known.join(", "))
            })
    }
}

/// A set of faults switched on together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    /// No fault: the reference behaviour.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Whether `fault` is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// The faults on, in catalog order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|f| f.name().to_owned()).collect()
    }
}

impl FromIterator<Fault> for Faults {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        Faults(iter.into_iter().collect())
    }
}

/// Parses `a,b,c` into faults.
pub fn parse_list(text: &str) -> Result<Faults, String> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(Fault::from_str)
        .collect()
}

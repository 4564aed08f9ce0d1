//! Named misbehaviours of the mock partner, each caught by the rule(s) it names.

use crate::model::{Field, RecordKind};
use crate::profile::{AbsentStyle, AuthScheme, OperationKind, PagingStyle, Profile};
use crate::suite::Catalog;
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
    NoStaffList => "no-staff-list", ["STAFF-001", "PROFILE-001"],
        "has no staff-list call: the declared route answers 404";
    StaffList500 => "staff-list-500", ["STAFF-001"],
        "answers the staff list with 500";
    StaffMissingEmail => "staff-missing-email", ["STAFF-002"],
        "keeps no staff emails: the list has none and the lookup finds nobody";
    StaffSomeWithoutEmail => "staff-some-without-email", ["STAFF-002"],
        "keeps no email for every tenth staff member (a warning: the others still match)";
    StaffPaginationTruncated => "staff-pagination-truncated", ["STAFF-003"],
        "the last staff page is unreachable (answers 500)";
    StaffPaginationLoop => "staff-pagination-loop", ["STAFF-003"],
        "serves the first staff page again for every later page, so paging never ends";
    StaffDuplicateAcrossPages => "staff-duplicate-across-pages", ["STAFF-003"],
        "repeats the last staff member of each page at the start of the next";
    StaffLookupCaseSensitive => "staff-lookup-case-sensitive", ["STAFF-005"],
        "the lookup by email matches the exact letter case only";
    StaffLookupUndeclaredNone => "staff-lookup-undeclared-none", ["STAFF-005"],
        "answers a lookup of an unknown email otherwise than the profile declares (500 instead of its \"none\" answer)";
    StaffPageCountShort => "staff-page-count-short", ["STAFF-003"],
        "states one page fewer than the staff list has (profiles with a total-pages-field)";
    StaffTotalOverstated => "staff-total-overstated", ["STAFF-003"],
        "states one staff member more than the list holds (profiles with a total-field)";
    ConflictNamesAnotherRecord => "conflict-names-another-record", ["RETRY-001"],
        "answers a create it already holds with the declared conflict, but naming another record's id (profiles with a conflict answer)";
    SlowStaffList => "slow-staff-list", ["ROB-002"],
        "answers the staff list more slowly than the latency budget (but within the timeout)";
    StaffListNoAnswer => "staff-list-no-answer", [],
        "never answers the staff list (the client's timeout ends the wait)";
    StaffListStalledBody => "staff-list-stalled-body", [],
        "sends the staff list's headers, then stalls in the body";
    StaffListHugeBody => "staff-list-huge-body", ["STAFF-001"],
        "streams an endless staff list";
    StaffListResetMidResponse => "staff-list-reset", [],
        "resets the connection in the middle of the staff list";
    StaffListInvalidJson => "staff-list-invalid-json", ["STAFF-001"],
        "answers the staff list with truncated JSON";
    StaffListWrongShape => "staff-list-wrong-shape", ["STAFF-001"],
        "answers the staff list with JSON of the wrong shape (an object where the list belongs)";
    StaffListHtml200 => "staff-list-html-200", ["STAFF-001"],
        "answers the staff list with an HTML error page and status 200";
    StaffListWrongContentType => "staff-list-wrong-content-type", ["STAFF-001"],
        "answers the staff list as text/plain";
    StaffListEmpty200 => "staff-list-empty-200", ["STAFF-001"],
        "answers the staff list with 200 and no body";
    StaffList204 => "staff-list-204", ["STAFF-001"],
        "answers the staff list with 204 No Content";
    StaffListRedirectLoop => "staff-list-redirect-loop", ["STAFF-001"],
        "redirects the staff list to itself, forever";
    StaffListRedirectOtherHost => "staff-list-redirect-other-host", ["STAFF-001"],
        "redirects the staff list to another host";
    StaffListGzipBomb => "staff-list-gzip-bomb", ["STAFF-001"],
        "answers the staff list with 32 MiB of zeros, gzip-compressed, unasked";
    StaffListLongHeaders => "staff-list-long-headers", [],
        "answers the staff list with a 1 MiB header";
    RejectUnowned => "reject-unowned", ["LEAD-002", "LEAD-003"],
        "rejects prospects that have no owner with 422";
    NullOwner500 => "null-owner-500", ["LEAD-002", "LEAD-003"],
        "fails with 500 on a prospect whose owner is written as null (profiles with absent.owner = null)";
    OwnerEmailCaseSensitive => "owner-email-case-sensitive", ["STAFF-006"],
        "resolves owner emails by exact spelling only (partners that take owners by email)";
    DropOwner => "drop-owner", ["STAFF-004"],
        "accepts prospects but stores no owner";
    DropOwnerNumericIds => "drop-owner-numeric-ids", ["STAFF-004"],
        "accepts prospects but stores no owner whose staff id is digits only (as if it took such ids for numbers it cannot find)";
    DiscardUnowned => "discard-unowned", ["LEAD-002", "LEAD-003", "LEAD-004", "LEAD-005"],
        "accepts prospects that have no owner and answers an id, but stores nothing (reading or updating them answers 404)";
    RejectSourceless => "reject-sourceless", ["SRC-004"],
        "rejects prospects that have no lead source with 422";
    DiscardSourceless => "discard-sourceless", ["SRC-004", "LEAD-004", "LEAD-005"],
        "accepts prospects that have no lead source and answers an id, but stores nothing (reading or updating them answers 404)";
    NoSourceList => "no-source-list", ["SRC-001", "PROFILE-001"],
        "has no lead-source list: the declared route answers 404";
    SourceCaseSensitive => "source-case-sensitive", ["SRC-002", "SRC-006"],
        "resolves source names by exact case only, creating a new source for another spelling (partners that take sources by name)";
    SourceAsciiOnlyFolding => "source-ascii-only-folding", ["SRC-002", "SRC-006"],
        "folds only A-Z when resolving source names, so STRASSE/Straße or CAFÉ/Café are different sources (partners that take sources by name)";
    SourceCreateNoId => "source-create-no-id", ["SRC-003", "SRC-005"],
        "creates lead sources but returns no id";
    SourceCreateNoPersist => "source-create-no-persist", ["SRC-003"],
        "answers a source create with an id but never stores the source";
    SourceCreateDuplicates => "source-create-duplicates", ["SRC-003"],
        "stores every created source twice";
    SourceCreateWrongId => "source-create-wrong-id", ["SRC-003"],
        "stores a created source but answers the id of another, existing source";
    RejectNewSource => "reject-new-source", ["SRC-003", "SRC-005"],
        "refuses to create lead sources (422)";
    SaveReturnsNoId => "save-returns-no-id", ["LEAD-001", "MEM-001"],
        "saves records but returns no id";
    UpdateCreatesDuplicate => "update-creates-duplicate", ["LEAD-004", "MEM-002"],
        "treats a save with the partner's id as a new record, creating a duplicate";
    RetryCreatesDuplicate => "retry-creates-duplicate", ["RETRY-001"],
        "creates a second record when a create is resent with the same external id";
    MangleUnicode => "mangles-unicode", ["LEAD-005"],
        "stores names with every non-ASCII letter replaced by `?`";
    UpperCaseNames => "upper-cases-names", ["LEAD-005"],
        "stores first and last names in capitals (a warning: SmartMatch compares names ignoring case)";
    RejectMember => "reject-member", ["MEM-001"],
        "rejects every member with 422";
    AuthNotEnforced => "auth-not-enforced", ["SEC-001"],
        "accepts requests without credentials or with wrong ones";
    SaveBeforeAuth => "save-before-auth", ["SEC-001"],
        "carries out a write sent without or with wrong credentials, then answers it 401/403";
    Malformed500 => "malformed-500", ["ROB-001"],
        "answers a malformed body with 500 instead of a 4xx";
    LostAnswers => "lost-answers", [],
        "saves a seeded share of creates but answers them 500, as if the answer was lost (for simulate: resends must not duplicate)";
    Flaky => "flaky", ["ROB-003"],
        "answers a seeded share of requests with 503 (never twice in a row); a retry succeeds";
    Slow => "slow", [],
        "answers every request only after the client's timeout: every rule ends in error";
    SendReadWithoutClub => "send-read-without-club", ["SEND-001"],
        "two-way: reads back the converted member without the clubID query parameter";
    SendUuidAsRecordId => "send-uuid-as-record-id", ["SEND-002", "SEND-003"],
        "two-way: updates its own new prospect under the uuid the Connector answered instead of its record id";
    SendNewRecordIdOnUpdate => "send-new-record-id-on-update", ["SEND-003"],
        "two-way: updates its own new prospect under a second record id";
    SendLowercaseGender => "send-lowercase-gender", ["SEND-004"],
        "two-way: first saves its own new prospect with gender `f` (refused), then `F`";
    SendConvertWithNewRecordId => "send-convert-with-new-record-id", ["SEND-005", "SEND-009"],
        "two-way: sends the converted member under a new record id (InTouch converts it by name, email and mobile)";
    SendConvertDuplicates => "send-convert-duplicates", ["SEND-009"],
        "two-way: sends the converted member under a new record id with a new email and mobile, so InTouch inserts a duplicate";
    SendDeleteToInactivate => "send-delete-to-inactivate", ["SEND-006"],
        "two-way: sends DELETE instead of saving the record with userStatus INACTIVE";
    SendSourceAfterLead => "send-source-after-lead", ["SEND-007"],
        "two-way: sends the prospect naming a new lead source before the lead source";
    SendPlainHttpPublicHost => "send-plain-http-public-host", ["SEND-008"],
        "two-way: addresses the Connector by a public host name over plain http";
}

impl Fault {
    /// Whether the fault can show on `profile`: its behaviour touches something the profile
    /// declares.
    pub fn applies_to(self, profile: &Profile) -> bool {
        let caps = profile.capabilities;
        let has = |kind| profile.operation(kind).is_some();
        let staff_paging = profile
            .operation(OperationKind::StaffList)
            .and_then(|op| op.paging.as_ref());
        // Paged so that the default sandbox's staff span pages: a later page is asked for.
        let paged_staff = staff_paging.is_some_and(|paging| {
            let size = paging
                .page_size
                .unwrap_or(50)
                .min(paging.max_page_size.unwrap_or(u64::MAX))
                .min(crate::partner::paging::MAX_PAGE_SIZE as u64);
            paging.style != PagingStyle::None && (size as usize) < default_staff_count()
        });
        let by_name = profile.references.resolves_source_names();
        let maps_external_id = [RecordKind::Prospect, RecordKind::Member]
            .into_iter()
            .any(|kind| {
                profile.carries(kind) && profile.codec(kind).path(Field::ExternalId).is_some()
            });
        match self {
            Fault::NoStaffList
            | Fault::StaffList500
            | Fault::StaffMissingEmail
            | Fault::StaffSomeWithoutEmail
            | Fault::SlowStaffList => caps.staff_owner,
            Fault::StaffListNoAnswer
            | Fault::StaffListStalledBody
            | Fault::StaffListHugeBody
            | Fault::StaffListResetMidResponse
            | Fault::StaffListInvalidJson
            | Fault::StaffListWrongShape
            | Fault::StaffListHtml200
            | Fault::StaffListWrongContentType
            | Fault::StaffListEmpty200
            | Fault::StaffList204
            | Fault::StaffListRedirectLoop
            | Fault::StaffListRedirectOtherHost
            | Fault::StaffListGzipBomb
            | Fault::StaffListLongHeaders => caps.staff_owner,
            Fault::StaffPaginationTruncated
            | Fault::StaffPaginationLoop
            | Fault::StaffDuplicateAcrossPages => caps.staff_owner && paged_staff,
            Fault::StaffLookupCaseSensitive | Fault::StaffLookupUndeclaredNone => {
                caps.staff_owner && has(OperationKind::StaffLookup)
            }
            Fault::StaffPageCountShort => {
                caps.staff_owner && staff_paging.is_some_and(|p| p.total_pages_field.is_some())
            }
            Fault::StaffTotalOverstated => {
                caps.staff_owner && staff_paging.is_some_and(|p| p.total_field.is_some())
            }
            Fault::ConflictNamesAnotherRecord => [RecordKind::Prospect, RecordKind::Member]
                .into_iter()
                .any(|kind| {
                    profile.carries(kind)
                        && profile.codec(kind).path(Field::ExternalId).is_some()
                        && profile
                            .create_operation(kind)
                            .and_then(|create| profile.operation(create))
                            .is_some_and(|op| op.conflict.is_some())
                }),
            Fault::RejectUnowned
            | Fault::DropOwner
            | Fault::DropOwnerNumericIds
            | Fault::DiscardUnowned => caps.staff_owner,
            Fault::OwnerEmailCaseSensitive => {
                caps.staff_owner
                    && profile.references.owner == crate::profile::OwnerReference::Email
            }
            Fault::NullOwner500 => caps.staff_owner && profile.absent.owner == AbsentStyle::Null,
            Fault::RejectSourceless | Fault::DiscardSourceless => caps.lead_source,
            Fault::NoSourceList => caps.lead_source && has(OperationKind::SourceList),
            Fault::SourceCaseSensitive | Fault::SourceAsciiOnlyFolding => {
                caps.lead_source && by_name && has(OperationKind::SourceList)
            }
            // Sources listed by name alone have no id a create could leave out.
            Fault::SourceCreateNoId => {
                caps.lead_source
                    && has(OperationKind::SourceCreate)
                    && profile.codec(RecordKind::Source).maps(Field::Id)
            }
            Fault::RejectNewSource => caps.lead_source && has(OperationKind::SourceCreate),
            // A source known by its name alone has no id to be wrong about.
            Fault::SourceCreateWrongId => {
                caps.lead_source
                    && has(OperationKind::SourceCreate)
                    && has(OperationKind::SourceList)
                    && profile.codec(RecordKind::Source).maps(Field::Id)
            }
            Fault::SourceCreateNoPersist | Fault::SourceCreateDuplicates => {
                caps.lead_source
                    && has(OperationKind::SourceCreate)
                    && has(OperationKind::SourceList)
            }
            Fault::SaveReturnsNoId | Fault::UpdateCreatesDuplicate => true,
            Fault::RetryCreatesDuplicate => maps_external_id,
            Fault::MangleUnicode | Fault::UpperCaseNames => {
                caps.prospects && has(OperationKind::ProspectRead)
            }
            Fault::RejectMember => caps.members,
            Fault::AuthNotEnforced => profile.auth.scheme != AuthScheme::None,
            // A write refused yet stored shows only when the record can be read back.
            Fault::SaveBeforeAuth => {
                profile.auth.scheme != AuthScheme::None
                    && [RecordKind::Prospect, RecordKind::Member]
                        .into_iter()
                        .any(|kind| profile.carries(kind) && profile.read_operation(kind).is_some())
            }
            Fault::Malformed500 | Fault::Flaky | Fault::Slow => true,
            // Load runs only: a certify run does not resend, so the rule a lost answer breaks
            // depends on which lead it hits.
            Fault::LostAnswers => false,
            Fault::SendPlainHttpPublicHost => profile.sends.is_some(),
            fault => fault.send_step().is_some_and(|step| {
                profile
                    .sends
                    .as_ref()
                    .is_some_and(|s| s.steps.contains(&step))
            }),
        }
    }

    /// Why the fault cannot show on `profile`, when [`Fault::applies_to`] says it cannot: the
    /// common causes by name, else what it spoils.
    fn why_not(self, profile: &Profile) -> String {
        let caps = profile.capabilities;
        let name = self.name();
        if self.simulate_only() {
            return "it is meant for `spoke simulate` only".to_owned();
        }
        if let Some(step) = self.send_step() {
            return match &profile.sends {
                None => "it spoils a call the partner sends, and the profile declares no [sends]"
                    .to_owned(),
                Some(_) => format!(
                    "it spoils the `{}` step, which the profile's [sends] does not list",
                    step.key()
                ),
            };
        }
        if name.contains("source") && !caps.lead_source {
            return "the profile's [capabilities] carry no lead-source".to_owned();
        }
        if (name.contains("owner") || name.starts_with("staff-")) && !caps.staff_owner {
            return "the profile's [capabilities] carry no staff-owner".to_owned();
        }
        if matches!(
            self,
            Fault::SourceCaseSensitive | Fault::SourceAsciiOnlyFolding
        ) && !profile.references.resolves_source_names()
        {
            return "it spoils sources found by name, and the profile references them by id"
                .to_owned();
        }
        format!(
            "the profile declares nothing it spoils (it {})",
            self.behaviour()
        )
    }

    /// The two-way step the fault spoils, for the sending side's faults (the first step for
    /// one that spoils every call).
    pub fn send_step(self) -> Option<crate::profile::SendStep> {
        use crate::profile::SendStep;
        Some(match self {
            Fault::SendReadWithoutClub
            | Fault::SendConvertWithNewRecordId
            | Fault::SendConvertDuplicates => SendStep::Convert,
            Fault::SendUuidAsRecordId
            | Fault::SendNewRecordIdOnUpdate
            | Fault::SendLowercaseGender => SendStep::CreateUser,
            Fault::SendDeleteToInactivate => SendStep::Inactivate,
            Fault::SendSourceAfterLead => SendStep::LeadSource,
            Fault::SendPlainHttpPublicHost => SendStep::Convert,
            _ => return None,
        })
    }

    /// Whether the fault is meant for `spoke simulate` only (see `applies_to`).
    pub fn simulate_only(self) -> bool {
        self == Fault::LostAnswers
    }

    /// Whether this is one of the hostile answers to the staff list (see `partner::hostile`).
    pub fn is_hostile(self) -> bool {
        self.name().starts_with("staff-list-") && !matches!(self, Fault::StaffList500)
    }

    /// Whether the fault shows only as missing answers: the rules it touches end in `error`
    /// (we could not check), not `fail`.
    pub fn shows_as_errors(self) -> bool {
        matches!(
            self,
            Fault::Slow
                | Fault::StaffListNoAnswer
                | Fault::StaffListStalledBody
                | Fault::StaffListResetMidResponse
                | Fault::StaffListLongHeaders
        )
    }

    /// The rules that must end in `error` when this fault alone is on.
    pub fn expected_errors(self, profile: &Profile) -> BTreeSet<String> {
        match self {
            fault
                if fault.is_hostile()
                    && fault.shows_as_errors()
                    && profile.capabilities.staff_owner =>
            {
                ["STAFF-001"].iter().map(|id| (*id).to_owned()).collect()
            }
            _ => BTreeSet::new(),
        }
    }

    /// The rules that must end in fail or warn when this fault alone is on, for `profile`: the
    /// rules it names that apply to the profile.
    pub fn expected(self, profile: &Profile) -> BTreeSet<String> {
        let catalog = Catalog::builtin();
        self.caught_by()
            .iter()
            .filter(|id| {
                catalog
                    .rule(id)
                    .is_some_and(|rule| rule.applies.iter().all(|a| a.holds(profile)))
            })
            .map(|id| (*id).to_owned())
            .collect()
    }
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
                let nearest = Fault::ALL
                    .iter()
                    .map(|fault| (edit_distance(name, fault.name()), fault.name()))
                    .min()
                    .filter(|(distance, _)| *distance <= name.len().max(3) / 3);
                match nearest {
                    Some((_, near)) => format!(
                        "unknown fault `{name}`; did you mean `{near}`? (`spoke partner --list-faults` lists them all)"
                    ),
                    None => {
                        let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                        format!("unknown fault `{name}`; known faults: {}", known.join(", "))
                    }
                }
            })
    }
}

/// Levenshtein distance: edits (insert, delete, replace one character) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// How many staff the default sandbox holds (what the selftest's mock serves).
fn default_staff_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| crate::partner::Sandbox::default_seed().staff.len())
}

/// A set of faults switched on together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    /// No fault: the reference behaviour.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Whether no fault is on.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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

impl Faults {
    /// Refuses a fault that cannot show on `profile` (by [`Fault::applies_to`], the selftest's
    /// own test): a run with it on would pass and say nothing. `load` admits the faults meant
    /// for `spoke simulate`.
    pub fn check_applies_to(&self, profile: &Profile, load: bool) -> Result<(), String> {
        let Some(fault) = self
            .0
            .iter()
            .find(|fault| !(fault.applies_to(profile) || (load && fault.simulate_only())))
        else {
            return Ok(());
        };
        let fixtures: Vec<String> = crate::fixtures::fixture_profiles()
            .iter()
            .filter(|fixture| fault.applies_to(fixture))
            .map(|fixture| fixture.file_name.clone())
            .collect();
        let shown_on = if fixtures.is_empty() {
            "no fixture profile".to_owned()
        } else {
            format!("the fixture profiles {}", fixtures.join(", "))
        };
        Err(format!(
            "`{fault}` does not apply to {}: {}; it applies to {shown_on}",
            profile.file_name,
            fault.why_not(profile)
        ))
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

//! Properties over generated profiles: every valid profile passes certification against its own
//! mock partner, and every fault that applies to a profile fails exactly the rules it names.
//!
//! Profiles are generated as TOML text from a stream of random choices (a `Vec<u8>`), read by a
//! plain Rust generator that knows the validation rules and keeps every profile valid by
//! construction. A choice of 0 always takes the simplest option, so shrinking the stream moves
//! toward simple profiles; a failure prints the (shrunk) profile text itself.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use rand::{RngCore, SeedableRng};
use spoke::certify::{certify, CertifyOptions};
use spoke::partner::{Fault, Faults};
use spoke::profile::{
    AuthScheme, IdFrom, Method, OperationKind, OperationRole, PagingStyle, Profile,
};
use spoke::report::model::RunReport;
use spoke::suite::Outcome;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

// ------------------------------------------------------------------------------------------------
// Regressions

/// A minimal profile the properties once found not certifying as it should, kept so the bug
/// stays fixed.
struct Regression {
    /// A short name.
    name: &'static str,
    /// The fault switched on, if any.
    fault: Option<Fault>,
    /// Without a fault: the rule that does not pass. With one: the rules that must catch it.
    rules: &'static [&'static str],
    /// The profile.
    profile: &'static str,
}

/// What the properties found, minimised by hand; each comment names where the bug was.
const REGRESSIONS: [Regression; 15] = [
    // src/partner/mod.rs, `Shared::match_route`: the first operation (in operation-kind order)
    // whose path fits a request gets it, so prospect-update's `{id}` catches `POST /crm/members`
    // and the member is decoded with the prospect mapping (422). The validator accepts the two
    // routes as distinct; the router should prefer the literal segment.
    Regression {
        name: "id-segment-shadows-a-literal",
        fault: None,
        rules: &["MEM-001"],
        profile: r#"
[partner]
name = "Route shadowing bug"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
members = true

[operations.prospect-create]
method = "POST"
path = "/crm/prospects"

[operations.prospect-update]
method = "POST"
path = "/crm/{id}"

[operations.member-save]
method = "POST"
path = "/crm/members"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"

[records.member.fields]
id = "id"
first-name = "given_name"
last-name = "family_name"
"#,
    },
    // src/partner/handlers.rs, `Shared::location_of`: a create with `id-from = "location"`
    // answers the read operation's path as Location even when `{id}` is not its last segment,
    // so the Connector takes `detail` for the new record's id (MEM-002 then updates `detail`).
    Regression {
        name: "location-is-not-the-id",
        fault: None,
        rules: &["MEM-002"],
        profile: r#"
[partner]
name = "Location bug"
base-url = "http://127.0.0.1:8080"

[capabilities]
members = true

[operations.member-create]
method = "POST"
path = "/members"
id-from = "location"

[operations.member-update]
method = "PUT"
path = "/members/{id}"

[operations.member-read]
method = "GET"
path = "/members/{id}/detail"

[records.member.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
"#,
    },
    // src/connector/session.rs, `probe`: the resend probe only tries the first carried kind
    // (prospects), while RETRY-001 applies when either kind maps an external id
    // (src/suite/catalog.rs, `Applies::ExternalId`), so RETRY-001 ends inconclusive.
    Regression {
        name: "member-external-id-only",
        fault: None,
        rules: &["RETRY-001"],
        profile: r#"
[partner]
name = "Resend probe bug"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
members = true

[operations.prospect-save]
method = "POST"
path = "/prospects"

[operations.member-save]
method = "POST"
path = "/members"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"

[records.member.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
external-id = "external_id"
"#,
    },
    // src/partner/faults.rs, `Fault::applies_to` / `expected`: `source-ascii-only-folding` is
    // said to fail SRC-002 wherever sources are listed and taken by name, but without
    // staff-owner no prospect with a non-ASCII source is delivered (the core scenario has that
    // cell only with owner = "matched", and src/intouch/mod.rs `build_world` drops cells with
    // an owner when owners are not supported), so only SRC-006 catches it.
    Regression {
        name: "ascii-folding-without-owners",
        fault: Some(Fault::SourceAsciiOnlyFolding),
        rules: &["SRC-002", "SRC-006"],
        profile: r#"
[partner]
name = "Non-ASCII source bug"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
lead-source = true

[references]
source = "name"

[operations.source-list]
method = "GET"
path = "/sources"

[operations.prospect-save]
method = "POST"
path = "/prospects"

[records.source.fields]
id = "id"
name = "name"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
source = "source"
"#,
    },
    // src/profile/load.rs, `check_mapping` / src/profile/codec.rs, `RecordCodec`: a `values`
    // table may leave canonical values out; encoding then writes the canonical value itself,
    // and decoding (the mock partner's, and the Connector's on reading back) refuses it as not
    // one of the table's values, so the inactive member is rejected with 422.
    Regression {
        name: "partial-values-table",
        fault: None,
        rules: &["MEM-001"],
        profile: r#"
[partner]
name = "Partial values bug"
base-url = "http://127.0.0.1:8080"

[capabilities]
members = true

[operations.member-save]
method = "POST"
path = "/members"

[records.member.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
status = "status"

[records.member.values]
status = { active = "A" }
"#,
    },
    // src/connector/session.rs, `probe`: the credential probes updated the first delivered
    // record, a prospect the profile cannot read back, so an update refused yet stored
    // (`save-before-auth`) went unseen although members can be read back.
    Regression {
        name: "probe-a-record-that-reads-back",
        fault: Some(Fault::SaveBeforeAuth),
        rules: &["SEC-001"],
        profile: r#"
[partner]
name = "Unreadable prospects"
base-url = "http://127.0.0.1:8080"

[auth]
scheme = "bearer"
token-env = "SPOKE_PROBE_TOKEN"

[capabilities]
prospects = true
members = true

[operations.prospect-create]
method = "POST"
path = "/contacts/create"

[operations.prospect-update]
method = "POST"
path = "/contacts"
query = { "ref" = "{id}" }

[operations.member-create]
method = "POST"
path = "/members"
id-from = "location"

[operations.member-update]
method = "POST"
path = "/members/{id}"

[operations.member-read]
method = "GET"
path = "/members/{id}"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"

[records.member.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
"#,
    },
    // src/profile/load.rs, `check_paging`: offset lists may stop at a page count (reference.toml
    // documents it; the client and the mock count pages of any style), yet `total-pages-field`,
    // which that stop needs, was refused as not applying to offset: such a profile could not load.
    Regression {
        name: "offset-counts-pages",
        fault: None,
        rules: &["STAFF-003"],
        profile: r#"
[partner]
name = "Offset page count"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
staff-owner = true

[operations.staff-list]
method = "GET"
path = "/staff"
list = "data"
paging = { style = "offset", offset-param = "offset", limit-param = "limit", page-size = 40, stop = "total-pages", total-pages-field = "meta.pages" }

[operations.prospect-save]
method = "POST"
path = "/prospects"

[records.staff.fields]
id = "id"
email = "email"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
owner = "owner_id"
"#,
    },
    // src/partner/handlers.rs, `save` / `Shared::saved_response`: a write answering the record
    // with `id-at` beside it (`meta.createdId`) got no id there from the mock, so the Connector
    // found none.
    Regression {
        name: "id-at-beside-the-record",
        fault: None,
        rules: &["MEM-001"],
        profile: r#"
[partner]
name = "Id beside the record"
base-url = "http://127.0.0.1:8080"

[capabilities]
members = true

[operations.member-save]
method = "POST"
path = "/members"
record = "data"
id-at = "meta.createdId"

[records.member.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
"#,
    },
    // src/partner/handlers.rs, `check_fixed_headers`: a fixed header rendered from a non-ASCII
    // tenancy id (`SiteId: Köln_Süd`) is sent as UTF-8, but the mock read header values as
    // visible ASCII only and answered 400, "the header `SiteId` is required".
    Regression {
        name: "non-ascii-header-value",
        fault: None,
        rules: &["MEM-001"],
        profile: r#"
[partner]
name = "Non-ASCII header"
base-url = "http://127.0.0.1:8080"
headers = { "SiteId" = "{club_id}" }

[tenancy]
club-id = "Köln_Süd"

[capabilities]
members = true

[operations.member-save]
method = "POST"
path = "/members"

[records.member.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
"#,
    },
    // src/suite/checks.rs, `resend_creates_no_duplicate`: only a 409 counted as refusing a
    // resend; the profile's declared conflict (a 400 saying DUPLICATES_DETECTED, with the
    // existing id), which the client recognises, was judged a failed resend.
    Regression {
        name: "declared-conflict-of-another-status",
        fault: None,
        rules: &["RETRY-001"],
        profile: r#"
[partner]
name = "Declared conflict"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true

[operations.prospect-save]
method = "POST"
path = "/prospects"
conflict = { status = 400, when = "errorCode", equals = "DUPLICATES_DETECTED", id-at = "duplicateId" }

[records.prospect.fields]
id = "id"
external-id = "external_id"
first-name = "first_name"
last-name = "last_name"
"#,
    },
    // src/suite/checks.rs, `prospect_round_trip`: a field only written (`{ write = ... }`, no
    // read path) was expected to read back, so LEAD-005 found it read back as nothing.
    Regression {
        name: "write-only-field",
        fault: None,
        rules: &["LEAD-005"],
        profile: r#"
[partner]
name = "Write-only field"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true

[operations.prospect-save]
method = "POST"
path = "/prospects"

[operations.prospect-read]
method = "GET"
path = "/prospects/{id}"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
company = { write = "company" }
"#,
    },
    // src/suite/checks.rs, `judge_write`, and src/connector/session.rs,
    // `SourceSyncEntry::partner_id`: a source create answered with the declared conflict (the
    // name is there: "Duplicate of LS-01") is accepted with the existing id, but only 2xx answers
    // were taken, so every create-only source sync failed.
    Regression {
        name: "source-create-conflict",
        fault: None,
        rules: &["SRC-005"],
        profile: r#"
[partner]
name = "Source conflict"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
lead-source = true

[operations.source-create]
method = "POST"
path = "/sources"
conflict = { status = 409, id-at = "message", pattern = "Duplicate of {id}" }

[operations.prospect-save]
method = "POST"
path = "/prospects"

[records.source.fields]
id = "id"
name = "name"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
source = "source_id"
"#,
    },
    // src/connector/client.rs, `lookup_staff`: with `none = ["null-list"]` and no `list` (the
    // answer is the array itself), the list was looked for at no path, found missing, and every
    // lookup answered "nobody".
    Regression {
        name: "bare-list-lookup-with-null-list",
        fault: None,
        rules: &["STAFF-005"],
        profile: r#"
[partner]
name = "Bare list lookup"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
staff-owner = true

[operations.staff-list]
method = "GET"
path = "/staff"

[operations.staff-lookup]
method = "GET"
path = "/staff/search"
query = { email = "{email}" }
answer = "list"
none = ["null-list"]

[operations.prospect-save]
method = "POST"
path = "/prospects"

[records.staff.fields]
id = "id"
email = "email"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
owner = "owner_id"
"#,
    },
    // src/connector/client.rs, `PageState::advance`: pages were judged full by page-size alone;
    // under the partner's declared cap (max-page-size 30 of 50 asked) every page looked short and
    // was confirmed by the next, and a repeated (or refused) page while confirming ends a list,
    // so a staff list looping back to its first page passed STAFF-003.
    Regression {
        name: "pages-capped-below-the-size-asked",
        fault: Some(Fault::StaffPaginationLoop),
        rules: &["STAFF-003"],
        profile: r#"
[partner]
name = "Capped pages"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
staff-owner = true

[operations.staff-list]
method = "GET"
path = "/staff"
paging = { style = "page-number", page-param = "page", size-param = "size", page-size = 50, max-page-size = 30, stop = "short-page" }

[operations.prospect-save]
method = "POST"
path = "/prospects"

[records.staff.fields]
id = "id"
email = "email"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
owner = "owner_id"
"#,
    },
    // src/partner/faults.rs, `Fault::applies_to`: source-create-no-id was said to apply to
    // sources listed by name alone, which have no id a create could leave out (the Connector
    // knows them by name), so no rule could catch it.
    Regression {
        name: "no-id-to-leave-out",
        fault: Some(Fault::SourceCreateNoId),
        rules: &[],
        profile: r#"
[partner]
name = "Plain source names"
base-url = "http://127.0.0.1:8080"

[capabilities]
prospects = true
lead-source = true

[references]
source = "name"

[operations.source-list]
method = "GET"
path = "/sources"

[operations.source-create]
method = "POST"
path = "/sources"

[operations.prospect-save]
method = "POST"
path = "/prospects"

[records.source.fields]
name = { write = "name", read = "." }

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
source = "source"
"#,
    },
];

// ------------------------------------------------------------------------------------------------
// The choice stream

/// Random choices, read in order; past the end every choice is 0 (the simplest option).
struct Choices<'s> {
    stream: &'s [u8],
    at: usize,
}

impl<'s> Choices<'s> {
    fn new(stream: &'s [u8]) -> Self {
        Choices { stream, at: 0 }
    }

    fn draw(&mut self) -> usize {
        let value = self.stream.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        usize::from(value)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        self.draw() % n
    }

    /// True about `percent` percent of the time; false for the choice 0.
    fn chance(&mut self, percent: usize) -> bool {
        self.draw() % 100 >= 100 - percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + (self.draw() as u64) % (high - low + 1)
    }
}

/// How long the choice stream is: more than any profile draws.
const STREAM_LEN: usize = 2048;

// ------------------------------------------------------------------------------------------------
// Names and text

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "ru", "ta", "ve", "zo", "pa", "si", "do", "gu", "bar", "fen", "lim",
    "dor", "qua", "wex", "yan", "hil", "tor", "sen", "mar", "lu",
];

/// A lowercase ASCII word.
fn word(c: &mut Choices<'_>) -> String {
    let syllables = 1 + c.below(3);
    (0..syllables).map(|_| c.pick(&SYLLABLES)).collect()
}

/// A lowercase path segment: a word, sometimes two joined by a dash.
fn slug(c: &mut Choices<'_>) -> String {
    if c.chance(25) {
        format!("{}-{}", word(c), word(c))
    } else {
        word(c)
    }
}

/// A literal segment: from `pool` mostly, sometimes a random slug.
fn literal(c: &mut Choices<'_>, pool: &[&str]) -> String {
    if c.chance(30) {
        slug(c)
    } else {
        c.pick(pool).to_owned()
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// How a partner spells its JSON keys.
#[derive(Debug, Clone, Copy)]
enum KeyCase {
    Snake,
    Camel,
    Pascal,
    Flat,
}

const KEY_CASES: [KeyCase; 4] = [
    KeyCase::Snake,
    KeyCase::Camel,
    KeyCase::Pascal,
    KeyCase::Flat,
];

/// A JSON key (an ASCII identifier) from words, in `case`.
fn compose(case: KeyCase, words: &[String]) -> String {
    let words: Vec<String> = words
        .iter()
        .map(|w| w.chars().filter(char::is_ascii_alphanumeric).collect())
        .collect();
    match case {
        KeyCase::Snake => words.join("_"),
        KeyCase::Flat => words.concat(),
        KeyCase::Pascal => words.iter().map(|w| capitalized(w)).collect(),
        KeyCase::Camel => {
            let mut out = words.first().cloned().unwrap_or_default();
            for w in &words[1..] {
                out.push_str(&capitalized(w));
            }
            out
        }
    }
}

/// A random JSON key of one or two words.
fn json_key(c: &mut Choices<'_>, case: KeyCase) -> String {
    let count = 1 + c.below(2);
    let words: Vec<String> = (0..count).map(|_| word(c)).collect();
    compose(case, &words)
}

/// A TOML basic string.
fn q(text: &str) -> String {
    let mut out = String::from('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// An inline TOML table of string values.
fn inline(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("{} = {}", q(key), q(value)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

/// Query-parameter names, unique across the profile (so paging, tenancy, auth and lookup
/// parameters never collide within one request).
struct ParamNames {
    taken: BTreeSet<String>,
}

impl ParamNames {
    fn new() -> Self {
        // The mock partner's own next links carry `page_token`.
        ParamNames {
            taken: BTreeSet::from(["page_token".to_owned()]),
        }
    }

    fn fresh(&mut self, c: &mut Choices<'_>, pool: &[&str]) -> String {
        let base = if c.chance(20) {
            word(c)
        } else {
            c.pick(pool).to_owned()
        };
        let mut name = base.clone();
        let mut n = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}{n}");
            n += 1;
        }
        name
    }
}

// ------------------------------------------------------------------------------------------------
// JSON paths

/// A path of keys; a key may end in one array step (`emails[0]`, `phones[type=home]`,
/// `phones[?primary]`), which only the dotted form can say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JPath {
    segments: Vec<String>,
    pointer: bool,
}

impl JPath {
    fn root() -> Self {
        JPath {
            segments: Vec::new(),
            pointer: false,
        }
    }

    fn render(&self) -> String {
        if self.segments.is_empty() {
            return String::new();
        }
        let stepped = self.segments.iter().any(|s| s.contains('['));
        if !stepped && (self.pointer || self.segments.iter().any(|s| s.contains('.'))) {
            self.segments
                .iter()
                .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
                .collect()
        } else {
            self.segments.join(".")
        }
    }

    /// Whether the two could reach one place (one is a prefix of the other, or they are equal),
    /// so that they cannot coexist in one document. Array steps keep two paths apart only when
    /// they can never select one element (two indexes, two values of one compared key); an
    /// array and an object at one key never coexist.
    fn overlaps(&self, other: &JPath) -> bool {
        for (a, b) in self.segments.iter().zip(&other.segments) {
            let (key_a, step_a) = split_step(a);
            let (key_b, step_b) = split_step(b);
            if key_a != key_b {
                return false;
            }
            match (step_a, step_b) {
                (None, None) => {}
                (Some(x), Some(y)) if x == y => {}
                (Some(x), Some(y)) => return !apart(x, y),
                _ => return true,
            }
        }
        true
    }
}

/// A segment's key and the inside of its array step, if it has one.
fn split_step(segment: &str) -> (&str, Option<&str>) {
    match segment.find('[') {
        Some(at) => (
            &segment[..at],
            Some(segment[at + 1..].trim_end_matches(']')),
        ),
        None => (segment, None),
    }
}

/// Whether two different array steps on one array never select the same element.
fn apart(a: &str, b: &str) -> bool {
    let index = |step: &str| step.parse::<usize>().is_ok();
    if index(a) && index(b) {
        return true;
    }
    match (a.split_once('='), b.split_once('=')) {
        (Some((key_a, _)), Some((key_b, _))) => key_a == key_b,
        _ => false,
    }
}

const ENVELOPES: [&str; 9] = [
    "data", "result", "items", "payload", "response", "body", "content", "entries", "record",
];
const META: [&str; 6] = ["meta", "paging", "pagination", "links", "info", "page"];

/// An envelope path of one or two keys.
fn envelope(c: &mut Choices<'_>, case: KeyCase, pool: &[&str]) -> JPath {
    let count = 1 + c.below(2);
    let segments = (0..count)
        .map(|_| {
            if c.chance(25) {
                json_key(c, case)
            } else {
                c.pick(pool).to_owned()
            }
        })
        .collect();
    JPath {
        segments,
        pointer: c.chance(20),
    }
}

/// `path` changed until it overlaps none of `taken`: the leaf gets a number, and a group that is
/// itself taken is given up for the top level.
fn make_free(path: &mut JPath, taken: &[JPath]) {
    let leaf = path.segments.last().cloned().unwrap_or_else(|| "x".into());
    let mut n = 1;
    while taken.iter().any(|t| t.overlaps(path)) {
        if n > 3 {
            path.segments = vec![leaf.clone()];
        }
        *path.segments.last_mut().expect("a path inside the record") = format!("{leaf}{n}");
        n += 1;
    }
}

/// A paging metadata path (a counter, a flag or the next cursor) beside the list, overlapping
/// neither it nor the other metadata (`taken`, the list first).
fn meta_path(c: &mut Choices<'_>, taken: &[JPath], leaf_pool: &[&str]) -> JPath {
    let mut path = if c.chance(40) {
        JPath {
            segments: vec![c.pick(leaf_pool).to_owned()],
            pointer: c.chance(20),
        }
    } else {
        JPath {
            segments: vec![c.pick(&META).to_owned(), c.pick(leaf_pool).to_owned()],
            pointer: c.chance(20),
        }
    };
    let list = &taken[0];
    let mut n = 2;
    let first = path.segments[0].clone();
    while path.overlaps(list) {
        path.segments[0] = format!("{first}{n}");
        n += 1;
    }
    let leaf = path.segments.last().cloned().unwrap_or_default();
    let mut n = 2;
    while taken.iter().any(|t| t.overlaps(&path)) {
        *path.segments.last_mut().expect("a leaf") = format!("{leaf}{n}");
        n += 1;
    }
    path
}

// ------------------------------------------------------------------------------------------------
// Records

const PROSPECT_FIELDS: [&str; 23] = [
    "id",
    "external-id",
    "first-name",
    "last-name",
    "type",
    "status",
    "birth-date",
    "gender",
    "address-line1",
    "address-line2",
    "city",
    "postal-code",
    "state",
    "country",
    "email",
    "mobile-phone",
    "home-phone",
    "work-phone",
    "company",
    "trial-start",
    "trial-end",
    "owner",
    "source",
];

/// The coded fields and their canonical values.
const CODED: [(&str, &[&str]); 3] = [
    ("type", &["prospect", "member", "ex-member"]),
    ("status", &["active", "inactive"]),
    ("gender", &["M", "F"]),
];

fn canonical_of(field: &str) -> Option<&'static [&'static str]> {
    CODED
        .iter()
        .find(|(coded, _)| *coded == field)
        .map(|(_, values)| *values)
}

/// Which tenancy values a profile uses.
#[derive(Debug, Default, Clone, Copy)]
struct TenancyUse {
    client: bool,
    club: bool,
}

impl TenancyUse {
    fn note(&mut self, template: &str) {
        self.client |= template.contains("{client_id}");
        self.club |= template.contains("{club_id}");
    }
}

/// How one canonical field is mapped: `field = "path"`, or a table.
#[derive(Debug, Clone)]
struct FieldSpec {
    write: Option<JPath>,
    read: Option<JPath>,
    value_type: Option<&'static str>,
    read_values: Vec<(String, String)>,
    write_pattern: Option<String>,
    default: Option<String>,
    /// Written as a table though the plain path would say the same.
    table: bool,
}

impl FieldSpec {
    fn at(path: JPath) -> Self {
        FieldSpec {
            write: Some(path.clone()),
            read: Some(path),
            value_type: None,
            read_values: Vec::new(),
            write_pattern: None,
            default: None,
            table: false,
        }
    }

    fn render(&self) -> String {
        let plain = self.write == self.read
            && self.value_type.is_none()
            && self.read_values.is_empty()
            && self.write_pattern.is_none()
            && self.default.is_none()
            && !self.table;
        let text = |path: &JPath| {
            if path.segments.is_empty() {
                // The item itself (a list of plain names).
                ".".to_owned()
            } else {
                path.render()
            }
        };
        match (&self.write, &self.read) {
            (Some(path), _) if plain => return q(&text(path)),
            _ => {}
        }
        let mut items = Vec::new();
        match (&self.write, &self.read) {
            (Some(write), Some(read)) if write == read => {
                items.push(format!("path = {}", q(&text(write))))
            }
            (write, read) => {
                if let Some(write) = write {
                    items.push(format!("write = {}", q(&text(write))));
                }
                if let Some(read) = read {
                    items.push(format!("read = {}", q(&text(read))));
                }
            }
        }
        if let Some(value_type) = self.value_type {
            items.push(format!("type = {}", q(value_type)));
        }
        if !self.read_values.is_empty() {
            items.push(format!("read-values = {}", inline(&self.read_values)));
        }
        if let Some(pattern) = &self.write_pattern {
            items.push(format!("write-pattern = {}", q(pattern)));
        }
        if let Some(default) = &self.default {
            items.push(format!("default = {}", q(default)));
        }
        format!("{{ {} }}", items.join(", "))
    }
}

/// One `[records.KIND]`: fields, fixed values and value tables.
struct Mapping {
    fields: Vec<(String, FieldSpec)>,
    fixed: Vec<(JPath, String)>,
    values: Vec<(String, Vec<(String, String)>)>,
}

/// What one record kind's mapping must respect, decided with the rest of the profile.
struct Rules<'a> {
    kind: &'static str,
    fields: &'a [&'a str],
    required: &'a [&'a str],
    /// JSON bodies: types, array steps and lists of plain names are JSON's alone.
    json: bool,
    /// Fields of a JSON type other than string, and that type (ids, and the references to them).
    types: &'a [(&'static str, &'static str)],
    /// The fields that may be written inside text (`write-pattern`).
    patterned: &'a [&'static str],
    /// Whether the record's id may be only read (its updates address it by path or query).
    id_read_only: bool,
    /// The fields read back otherwise than written (an owner written by email, read as an id):
    /// read elsewhere more often.
    read_apart: &'a [&'static str],
}

/// An array some of a record's fields sit in, its elements told apart by index, by the value
/// of a compared key, or one flagged element holding several fields.
struct ArrayGroup {
    key: String,
    step: ArrayStep,
    leaf: String,
    used: usize,
}

enum ArrayStep {
    Index,
    Match(String),
    Flag(String),
}

const SELECTED: [&str; 6] = ["home", "work", "mobile", "main", "other", "billing"];

impl ArrayGroup {
    fn new(c: &mut Choices<'_>, key: &str) -> Self {
        let step = match c.below(3) {
            0 => ArrayStep::Index,
            1 => ArrayStep::Match(c.pick(&["type", "kind", "label"]).to_owned()),
            _ => ArrayStep::Flag(c.pick(&["primary", "preferred", "isMain"]).to_owned()),
        };
        ArrayGroup {
            key: key.to_owned(),
            step,
            leaf: c.pick(&["value", "number", "address"]).to_owned(),
            used: 0,
        }
    }

    /// The path of the next field placed in the array.
    fn next_path(&mut self, case: KeyCase, field: &str) -> JPath {
        let n = self.used;
        self.used += 1;
        let (step, leaf) = match &self.step {
            ArrayStep::Index => (n.to_string(), self.leaf.clone()),
            ArrayStep::Match(key) => {
                let value = SELECTED[n % SELECTED.len()];
                let value = if n < SELECTED.len() {
                    value.to_owned()
                } else {
                    format!("{value}{n}")
                };
                (format!("{key}={value}"), self.leaf.clone())
            }
            ArrayStep::Flag(key) => {
                let words: Vec<String> = field.split('-').map(str::to_owned).collect();
                (format!("?{key}"), compose(case, &words))
            }
        };
        JPath {
            segments: vec![format!("{}[{step}]", self.key), leaf],
            pointer: false,
        }
    }
}

/// A path for `field`: its own name or a random key, sometimes inside a group, sometimes a key
/// holding a dot (reached by a JSON pointer only).
fn field_path(c: &mut Choices<'_>, case: KeyCase, groups: &[Vec<String>], field: &str) -> JPath {
    let leaf = if c.chance(50) {
        let words: Vec<String> = field.split('-').map(str::to_owned).collect();
        compose(case, &words)
    } else {
        json_key(c, case)
    };
    let leaf = if c.chance(5) {
        format!("{leaf}.{}", word(c))
    } else {
        leaf
    };
    let mut segments = if !groups.is_empty() && c.chance(40) {
        c.pick(groups)
    } else {
        Vec::new()
    };
    segments.push(leaf);
    JPath {
        segments,
        pointer: c.chance(15),
    }
}

/// A table of partner values for a coded field: upper case, numbers, the canonical values
/// rotated, or numbered words; now and then one value left out.
fn value_table(c: &mut Choices<'_>, canonical: &[&str]) -> Vec<(String, String)> {
    let n = canonical.len();
    let style = c.below(4);
    let partner: Vec<String> = match style {
        0 => canonical
            .iter()
            .map(|v| v.to_uppercase().replace('-', "_"))
            .collect(),
        1 => (1..=n).map(|i| i.to_string()).collect(),
        // The canonical values, rotated: each means another one on the partner's side.
        2 => (0..n).map(|i| canonical[(i + 1) % n].to_owned()).collect(),
        _ => {
            let stem = word(c).to_uppercase();
            (0..n).map(|i| format!("{stem}{i}")).collect()
        }
    };
    let mut table: Vec<(String, String)> = canonical
        .iter()
        .map(|v| (*v).to_owned())
        .zip(partner)
        .collect();
    // A partial table: unlisted values travel as their canonical spelling, so a rotated
    // table stays whole (an unlisted value would read back as the one it is rotated to).
    if c.chance(15) && style != 2 {
        table.remove(c.below(table.len()));
    }
    table
}

/// The whole table of a coded field typed `value_type`: every value of that type.
fn typed_table(c: &mut Choices<'_>, canonical: &[&str], value_type: &str) -> Vec<(String, String)> {
    let partner: Vec<String> = match value_type {
        "boolean" if c.chance(20) => vec!["false".into(), "true".into()],
        "boolean" => vec!["true".into(), "false".into()],
        _ => {
            let first = c.below(2);
            (first..first + canonical.len())
                .map(|i| i.to_string())
                .collect()
        }
    };
    canonical
        .iter()
        .map(|v| (*v).to_owned())
        .zip(partner)
        .collect()
}

const ARRAY_KEYS: [&str; 6] = [
    "emails",
    "phones",
    "contactPoints",
    "addresses",
    "identifiers",
    "attributes",
];

fn mapping(c: &mut Choices<'_>, rules: &Rules<'_>, tenancy: &mut TenancyUse) -> Mapping {
    let case = c.pick(&KEY_CASES);
    let groups: Vec<Vec<String>> = (0..c.below(4))
        .map(|_| {
            let depth = 1 + c.below(2);
            (0..depth).map(|_| json_key(c, case)).collect()
        })
        .collect();
    let mut arrays: Vec<ArrayGroup> = Vec::new();
    if rules.json && rules.kind != "source" && c.chance(35) {
        let mut keys = ARRAY_KEYS.to_vec();
        for _ in 0..1 + c.below(2) {
            let key = keys.remove(c.below(keys.len()));
            arrays.push(ArrayGroup::new(c, key));
        }
    }
    // Paths taken on either side: a path is kept apart from both, so that a field read where
    // another is written stays readable.
    let mut taken: Vec<JPath> = Vec::new();
    let mut mapped: Vec<(String, FieldSpec)> = Vec::new();
    for field in rules.fields {
        let required = rules.required.contains(field);
        if !required && !c.chance(60) {
            continue;
        }
        let mut path = if !arrays.is_empty() && c.chance(30) {
            let at = c.below(arrays.len());
            arrays[at].next_path(case, field)
        } else {
            field_path(c, case, &groups, field)
        };
        make_free(&mut path, &taken);
        let mut spec = FieldSpec::at(path);
        if let Some((_, value_type)) = rules.types.iter().find(|(f, _)| f == field) {
            spec.value_type = Some(*value_type);
        } else if rules.json && canonical_of(field).is_some() && c.chance(15) {
            spec.value_type = Some(match *field {
                "status" if c.chance(60) => "boolean",
                _ => "integer",
            });
        }
        let read_only_ok = match (rules.kind, *field) {
            // Staff are only read; of a source only the name is written.
            ("staff", _) | ("source", "id") => true,
            (_, "id") => rules.id_read_only,
            _ => false,
        };
        let write_only_ok = matches!(rules.kind, "prospect" | "member")
            && !required
            && !matches!(*field, "id" | "owner" | "source" | "external-id");
        if read_only_ok && c.chance(25) {
            spec.write = None;
        } else if write_only_ok && c.chance(6) {
            spec.read = None;
        } else if c.chance(if rules.read_apart.contains(field) {
            60
        } else {
            12
        }) {
            let mut read = field_path(c, case, &groups, field);
            make_free(&mut read, &taken);
            taken.push(read.clone());
            spec.read = Some(read);
        }
        if let Some(write) = &spec.write {
            taken.push(write.clone());
        }
        if spec.write == spec.read {
            // Taken once is enough.
        } else if let Some(read) = spec.read.as_ref().filter(|r| !taken.contains(r)) {
            taken.push(read.clone());
        }
        if spec.write.is_some()
            && spec.value_type.is_none()
            && rules.patterned.contains(field)
            && c.chance(15)
        {
            let patterns: &[&str] = match *field {
                "owner" => &["/systemusers({id})", "users/{id}", "urn:user:{id}"],
                "source" => &["/leadsources({id})", "src:{id}"],
                _ => &["/leads({id})", "ref-{id}"],
            };
            spec.write_pattern = Some(c.pick(patterns).to_owned());
        }
        if spec.write.is_some() && !required && c.chance(12) {
            spec.default = match *field {
                "company" => Some(c.pick(&["[not provided]", "n/a"]).to_owned()),
                "country" => Some("DE".to_owned()),
                "city" => Some("unknown".to_owned()),
                "status" => Some("active".to_owned()),
                "type" => Some("prospect".to_owned()),
                _ => None,
            };
        }
        if let Some(canonical) = canonical_of(field) {
            if spec.read.is_some() && spec.value_type.is_none() && c.chance(20) {
                spec.read_values = value_table(c, canonical);
            }
        }
        spec.table = c.chance(8);
        mapped.push(((*field).to_owned(), spec));
    }
    let mut fixed = Vec::new();
    if c.chance(25) {
        for _ in 0..1 + c.below(2) {
            let mut path = if c.chance(50) {
                JPath {
                    segments: vec![
                        c.pick(&["tenant", "origin", "context", "system"])
                            .to_owned(),
                        c.pick(&["club", "client", "channel", "id"]).to_owned(),
                    ],
                    pointer: c.chance(20),
                }
            } else {
                JPath {
                    segments: vec![json_key(c, case)],
                    pointer: false,
                }
            };
            make_free(&mut path, &taken);
            taken.push(path.clone());
            let template = match c.below(5) {
                0 => "{club_id}".to_owned(),
                1 => "{client_id}".to_owned(),
                2 => "club:{club_id}".to_owned(),
                3 => "{client_id}/{club_id}".to_owned(),
                _ => word(c).to_uppercase(),
            };
            tenancy.note(&template);
            fixed.push((path, template));
        }
    }
    let mut values = Vec::new();
    for (field, canonical) in CODED {
        let Some((_, spec)) = mapped.iter().find(|(f, _)| f == field) else {
            continue;
        };
        if let Some(value_type) = spec.value_type {
            values.push((field.to_owned(), typed_table(c, canonical, value_type)));
        } else if c.chance(30) {
            values.push((field.to_owned(), value_table(c, canonical)));
        }
    }
    Mapping {
        fields: mapped,
        fixed,
        values,
    }
}

/// A source list of plain names: the item is the name, written under `name`'s key.
fn plain_source_mapping(c: &mut Choices<'_>) -> Mapping {
    let case = c.pick(&KEY_CASES);
    let key = if c.chance(50) {
        compose(case, &["name".to_owned()])
    } else {
        json_key(c, case)
    };
    let spec = FieldSpec {
        write: Some(JPath {
            segments: vec![key],
            pointer: false,
        }),
        read: Some(JPath::root()),
        ..FieldSpec::at(JPath::root())
    };
    Mapping {
        fields: vec![("name".to_owned(), spec)],
        fixed: Vec::new(),
        values: Vec::new(),
    }
}

fn render_mapping(out: &mut String, kind: &str, mapping: &Mapping) {
    let _ = writeln!(out, "\n[records.{kind}.fields]");
    for (field, spec) in &mapping.fields {
        let _ = writeln!(out, "{field} = {}", spec.render());
    }
    if !mapping.fixed.is_empty() {
        let _ = writeln!(out, "\n[records.{kind}.fixed]");
        for (path, template) in &mapping.fixed {
            let _ = writeln!(out, "{} = {}", q(&path.render()), q(template));
        }
    }
    if !mapping.values.is_empty() {
        let _ = writeln!(out, "\n[records.{kind}.values]");
        for (field, table) in &mapping.values {
            let _ = writeln!(out, "{field} = {}", inline(table));
        }
    }
}
// ------------------------------------------------------------------------------------------------
// Operations

/// Where a tenancy value travels in one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Absent,
    Path,
    Query,
}

const PLACES: [Place; 3] = [Place::Absent, Place::Path, Place::Query];

/// One tenancy value's placement.
struct TenancySlot {
    placeholder: &'static str,
    place: Place,
    /// A literal segment before the placeholder in paths (`clients/{client_id}`).
    label: Option<String>,
    /// The label holds the placeholder in one segment (`clients({client_id})`).
    framed: bool,
    param: String,
    /// The query value template.
    template: String,
}

/// The path layout shared by a profile's operations.
struct Layout {
    prefix: Vec<String>,
    slots: Vec<TenancySlot>,
}

impl Layout {
    /// An operation's leading path segments and tenancy query parameters.
    fn base(
        &self,
        c: &mut Choices<'_>,
        tenancy: &mut TenancyUse,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let mut segments = self.prefix.clone();
        let mut query = Vec::new();
        for slot in &self.slots {
            // Now and then one operation places a tenancy value differently from the others.
            let place = if c.chance(15) {
                c.pick(&PLACES)
            } else {
                slot.place
            };
            match place {
                Place::Absent => {}
                Place::Path => {
                    match (&slot.label, slot.framed) {
                        (Some(label), true) => {
                            segments.push(format!("{label}({})", slot.placeholder))
                        }
                        (label, _) => {
                            segments.extend(label.clone());
                            segments.push(slot.placeholder.to_owned());
                        }
                    }
                    tenancy.note(slot.placeholder);
                }
                Place::Query => {
                    query.push((slot.param.clone(), slot.template.clone()));
                    tenancy.note(&slot.template);
                }
            }
        }
        (segments, query)
    }
}

/// One `[operations.KIND]`.
struct Op {
    kind: &'static str,
    method: &'static str,
    segments: Vec<String>,
    /// The first segment of the operation's own part of the path, renamed to resolve a clash.
    own_start: usize,
    query: Vec<(String, String)>,
    /// Further `key = value` lines, already rendered.
    keys: Vec<String>,
}

/// A path segment as the validator tells routes apart: a literal, a whole placeholder (`None`),
/// or the text around a placeholder.
fn segment_shape(segment: &str) -> Option<String> {
    match (segment.find('{'), segment.find('}')) {
        (Some(0), Some(end)) if end + 1 == segment.len() => None,
        (Some(open), Some(close)) => Some(format!(
            "{}\u{0}{}",
            &segment[..open],
            &segment[close + 1..]
        )),
        _ => Some(segment.to_owned()),
    }
}

impl Op {
    fn shape(&self) -> (&'static str, Vec<Option<String>>) {
        (
            self.method,
            self.segments.iter().map(|s| segment_shape(s)).collect(),
        )
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\n[operations.{}]", self.kind);
        let _ = writeln!(out, "method = {}", q(self.method));
        let _ = writeln!(
            out,
            "path = {}",
            q(&format!("/{}", self.segments.join("/")))
        );
        if !self.query.is_empty() {
            let _ = writeln!(out, "query = {}", inline(&self.query));
        }
        for key in &self.keys {
            let _ = writeln!(out, "{key}");
        }
    }
}

/// Gives every operation a distinct (method, path shape), as the validator requires: a clashing
/// operation's own first literal segment gets a number (or a literal is put in front of it).
fn separate_routes(ops: &mut [Op]) {
    for i in 0..ops.len() {
        let (placed, rest) = ops.split_at_mut(i);
        let op = &mut rest[0];
        let at = op.own_start;
        let mut stem = op.segments.get(at).cloned().unwrap_or_default();
        let mut n = 2;
        while placed.iter().any(|other| clashes(other, op)) {
            let literal_here = op.segments.get(at).is_some_and(|s| !s.contains('{'));
            if !literal_here || n % 8 == 0 {
                op.segments.insert(at, "r".into());
                stem = "r".into();
            }
            op.segments[at] = format!("{stem}-{n}");
            n += 1;
        }
    }
}

/// Whether two operations cannot both be routed: the same method and path shape.
fn clashes(a: &Op, b: &Op) -> bool {
    a.shape() == b.shape()
}

/// `key = "path"`, for an envelope that may be absent (`None`), the root (`""`) or a path.
fn envelope_key(key: &str, path: &Option<JPath>) -> Option<String> {
    path.as_ref()
        .map(|path| format!("{key} = {}", q(&path.render())))
}

/// An optional envelope: absent, the explicit root, or a path (in JSON sometimes the first
/// element of an array: `data[0]`).
fn maybe_envelope(c: &mut Choices<'_>, case: KeyCase, percent: usize, json: bool) -> Option<JPath> {
    if !c.chance(percent) {
        return None;
    }
    if c.chance(15) {
        Some(JPath::root())
    } else if json && c.chance(12) {
        Some(JPath {
            segments: vec![format!("{}[0]", c.pick(&ENVELOPES))],
            pointer: false,
        })
    } else {
        Some(envelope(c, case, &ENVELOPES))
    }
}

/// What a write operation is, for its keys.
#[derive(Clone, Copy)]
struct WriteKind {
    /// It creates records (a save, a create): its answer must say the new id, and it may
    /// declare a conflict.
    creates: bool,
    /// The records it writes have ids (not a list of plain source names).
    ids: bool,
    /// It may answer an acknowledgement. Not where no read operation shows the record stored
    /// (prospects and members): owners and updates would then pass unseen.
    acknowledge: bool,
}

/// The keys of a write: body and record envelopes, the answer's shape, where the id comes
/// back, and the answer meaning "already there".
fn write_keys(c: &mut Choices<'_>, case: KeyCase, json: bool, write: WriteKind) -> Vec<String> {
    let acknowledgement = json && write.acknowledge && c.chance(25);
    let body = maybe_envelope(c, case, 30, json);
    let record = if acknowledgement {
        None
    } else {
        maybe_envelope(c, case, 45, json)
    };
    let mut keys: Vec<String> = [envelope_key("body", &body), envelope_key("record", &record)]
        .into_iter()
        .flatten()
        .collect();
    if acknowledgement {
        keys.push("answer = \"acknowledgement\"".into());
    } else if c.chance(10) {
        keys.push("answer = \"record\"".into());
    }
    // An acknowledgement of a create must say where the new id is.
    let choice = if !write.ids {
        c.below(2)
    } else if acknowledgement && write.creates {
        2 + c.below(3)
    } else {
        c.below(5)
    };
    let pattern = |c: &mut Choices<'_>, patterns: &[&str]| {
        c.chance(40)
            .then(|| format!("id-pattern = {}", q(c.pick(patterns))))
    };
    match choice {
        0 => {}
        1 => keys.push("id-from = \"body\"".into()),
        2 if json
            && (acknowledgement || record.as_ref().is_some_and(|r| !r.segments.is_empty())) =>
        {
            // Beside the record, where the answer is one.
            let at = if acknowledgement {
                c.pick(&["id", "data.id", "result.recordId", "data[0].details.id"])
            } else {
                c.pick(&["meta.newId", "createdId", "created.id"])
            };
            keys.push(format!("id-at = {}", q(at)));
            keys.extend(pattern(c, &["Created {id}", "{id} saved", "record {id}."]));
        }
        2 | 3 => {
            keys.push("id-from = \"location\"".into());
            keys.extend(pattern(c, &["leads({id})", "/api/records/{id}"]));
        }
        _ => {
            keys.push("id-from = \"header\"".into());
            let header = c.pick(&["X-Record-Id", "OData-EntityId", "X-Created-Id"]);
            keys.push(format!("id-header = {}", q(header)));
            keys.extend(pattern(
                c,
                &["https://crm.example/api/leads({id})", "id={id}", "{id}"],
            ));
        }
    }
    // The mock answers no error with 409: a 409 needs no more to be told a conflict.
    if json && write.creates && c.chance(20) {
        let conflict = match c.below(5) {
            0 => "{ status = 409 }".to_owned(),
            1 => format!(
                "{{ status = 409, id-at = {}, pattern = {} }}",
                q(c.pick(&["message", "error.message", "detail"])),
                q(c.pick(&[
                    "Contact already exists. Existing ID: {id}",
                    "Duplicate of {id}",
                    "exists as {id}."
                ]))
            ),
            2 => format!(
                "{{ status = 409, id-at = {} }}",
                q(c.pick(&["existingId", "error.existing_id", "duplicate.id"]))
            ),
            // A 303 conflict is followed as a redirect by the client: not generated.
            3 => "{ status = 409, id-from = \"location\" }".to_owned(),
            // A status the partner also answers errors with (400, 422) is a conflict only when
            // it says so.
            _ => format!(
                "{{ status = {}, when = {}, equals = {}, id-at = {} }}",
                c.pick(&[400, 422, 409, 200]),
                q(c.pick(&["errorCode", "error.code", "errors[0].code"])),
                q(c.pick(&["DUPLICATES_DETECTED", "DUPLICATE"])),
                q(c.pick(&["duplicateId", "error.duplicate", "errors[0].duplicateId"]))
            ),
        };
        keys.push(format!("conflict = {conflict}"));
    }
    keys
}

/// A list's `list` and `paging` keys: every paging style, page sizes 1 to 60 (the 143 sandbox
/// staff span pages), the partner's own cap, counters that end the list or check it, and never
/// a field beside a bare array.
fn list_keys(c: &mut Choices<'_>, case: KeyCase, names: &mut ParamNames) -> Vec<String> {
    let list = match c.below(4) {
        0 => Some(envelope(c, case, &ENVELOPES)),
        1 => None,
        2 => Some(JPath::root()),
        _ => Some(envelope(c, case, &ENVELOPES)),
    };
    let bare = list.as_ref().is_none_or(|path| path.segments.is_empty());
    let mut taken = vec![list.clone().unwrap_or_else(JPath::root)];
    let mut keys: Vec<String> = envelope_key("list", &list).into_iter().collect();
    // A bare array carries no counter and no next field: only a header can lead on.
    let style = if bare {
        c.pick(&["none", "page-number", "offset", "link-header"])
    } else {
        c.pick(&[
            "none",
            "page-number",
            "offset",
            "cursor",
            "next-link",
            "link-header",
        ])
    };
    let mut paging: Vec<(String, String)> = vec![("style".into(), q(style))];
    let mut param =
        |c: &mut Choices<'_>, key: &str, pool: &[&str]| (key.to_owned(), q(&names.fresh(c, pool)));
    let page_size = |c: &mut Choices<'_>| ("page-size".to_owned(), c.between(1, 60).to_string());
    let mut meta = |c: &mut Choices<'_>, key: &str, pool: &[&str]| {
        let path = meta_path(c, &taken, pool);
        taken.push(path.clone());
        (key.to_owned(), q(&path.render()))
    };
    let total = ["total", "count", "totalCount"];
    match style {
        "none" => {
            if c.chance(20) {
                // `paging` left out means the same.
                return keys;
            }
        }
        "page-number" | "offset" => {
            if style == "page-number" {
                paging.push(param(
                    c,
                    "page-param",
                    &["page", "p", "pageIndex", "page_no"],
                ));
                paging.push(param(c, "size-param", &["size", "per_page", "pageSize"]));
                match c.below(3) {
                    0 => {}
                    1 => paging.push(("first-page".into(), "0".into())),
                    _ => paging.push(("first-page".into(), "1".into())),
                }
            } else {
                paging.push(param(c, "offset-param", &["offset", "skip", "start"]));
                paging.push(param(c, "limit-param", &["limit", "take", "count"]));
            }
            paging.push(page_size(c));
            let stops: &[&str] = if bare {
                &["short-page", "empty-page"]
            } else {
                &[
                    "short-page",
                    "empty-page",
                    "total",
                    "total-pages",
                    "more-flag",
                ]
            };
            let stop = c.pick(stops);
            paging.push(("stop".into(), q(stop)));
            // The stop's own counter, and now and then another one the walk is checked by.
            if stop == "total" || (!bare && c.chance(20)) {
                paging.push(meta(c, "total-field", &total));
            }
            if stop == "total-pages" || (!bare && c.chance(15)) {
                paging.push(meta(
                    c,
                    "total-pages-field",
                    &["pages", "totalPages", "page_count"],
                ));
            }
            if stop == "more-flag" {
                paging.push(meta(c, "more-field", &["more", "hasMore", "has_next"]));
            }
        }
        "cursor" | "next-link" => {
            if style == "cursor" {
                paging.push(param(c, "cursor-param", &["cursor", "after", "token"]));
            }
            paging.push(meta(c, "next-field", &["next", "nextCursor", "next_page"]));
            if c.chance(60) {
                paging.push(param(c, "size-param", &["size", "limit", "pageSize"]));
                paging.push(page_size(c));
            }
            if c.chance(20) {
                paging.push(meta(c, "total-field", &total));
            }
        }
        _ => {
            if c.chance(60) {
                paging.push(param(c, "size-param", &["size", "limit", "pageSize"]));
                paging.push(page_size(c));
            }
            if !bare && c.chance(25) {
                paging.push(meta(c, "total-field", &total));
            }
        }
    }
    if style != "none" && c.chance(25) {
        // The partner's own cap: below or above what is asked.
        paging.push(("max-page-size".into(), c.between(1, 80).to_string()));
    }
    let items: Vec<String> = paging.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    keys.push(format!("paging = {{ {} }}", items.join(", ")));
    keys
}

/// The resource segments of a record kind.
fn resource(c: &mut Choices<'_>, own: &[&str]) -> Vec<String> {
    let main = literal(c, own);
    match c.below(4) {
        0 | 1 => vec![main],
        2 => vec![
            c.pick(&["crm", "directory", "people", "records"])
                .to_owned(),
            main,
        ],
        _ => vec![main, slug(c)],
    }
}

/// The segments and query of an operation addressing one record by `{id}`.
fn item_route(
    c: &mut Choices<'_>,
    mut segments: Vec<String>,
    resource: &[String],
    names: &mut ParamNames,
    id_param: &mut Option<String>,
) -> (Vec<String>, usize, Vec<(String, String)>) {
    let own_start = segments.len();
    let mut query = Vec::new();
    match c.below(10) {
        0..=5 => {
            segments.extend(resource.iter().cloned());
            if c.chance(20) {
                // The id in the resource's segment, as OData addresses a record.
                let last = segments.pop().expect("a resource segment");
                segments.push(format!("{last}({{id}})"));
            } else {
                segments.push("{id}".into());
            }
        }
        6 => {
            segments.extend(resource.iter().cloned());
            segments.push("{id}".into());
            segments.push(c.pick(&["detail", "profile", "view"]).to_owned());
        }
        7 => {
            // No resource segment: the id alone addresses the record.
            segments.push("{id}".into());
        }
        _ => {
            segments.extend(resource.iter().cloned());
            let name = id_param
                .get_or_insert_with(|| names.fresh(c, &["id", "ref", "key"]))
                .clone();
            let template = if c.chance(30) { "ID-{id}" } else { "{id}" };
            query.push((name, template.to_owned()));
        }
    }
    (segments, own_start, query)
}

/// Everything the operations of a generated profile need to know.
struct OpContext<'a> {
    layout: &'a Layout,
    names: ParamNames,
    tenancy: TenancyUse,
    case: KeyCase,
    json: bool,
    /// Sources are plain names: created records have no id.
    plain_sources: bool,
    ops: Vec<Op>,
    /// Prospects and members saved with one operation (their ids travel in the body).
    prospect_save: bool,
    member_save: bool,
}

impl OpContext<'_> {
    fn push(
        &mut self,
        c: &mut Choices<'_>,
        kind: &'static str,
        method: &'static str,
        (segments, own_start, query): (Vec<String>, usize, Vec<(String, String)>),
        mut keys: Vec<String>,
    ) {
        if c.chance(10) {
            // A header of this operation alone.
            let (name, value) = c.pick(&[
                ("Prefer", "return=representation"),
                ("X-Request-Source", "connector"),
                ("X-Club", "{club_id}"),
            ]);
            self.tenancy.note(value);
            keys.push(format!(
                "headers = {}",
                inline(&[(name.into(), value.into())])
            ));
        }
        self.ops.push(Op {
            kind,
            method,
            segments,
            own_start,
            query,
            keys,
        });
    }

    fn base(&mut self, c: &mut Choices<'_>) -> (Vec<String>, Vec<(String, String)>) {
        self.layout.base(c, &mut self.tenancy)
    }

    /// A collection route: base + resource (+ a suffix now and then).
    fn collection(
        &mut self,
        c: &mut Choices<'_>,
        resource: &[String],
        suffixes: &[&str],
    ) -> (Vec<String>, usize, Vec<(String, String)>) {
        let (mut segments, mut query) = self.base(c);
        let own_start = segments.len();
        segments.extend(resource.iter().cloned());
        if c.chance(20) {
            segments.push(c.pick(suffixes).to_owned());
        }
        if c.chance(10) {
            // A constant parameter the partner insists on.
            let name = self.names.fresh(c, &["role", "v", "format", "kind"]);
            query.push((name, word(c)));
        }
        (segments, own_start, query)
    }

    fn item(
        &mut self,
        c: &mut Choices<'_>,
        resource: &[String],
        id_param: &mut Option<String>,
    ) -> (Vec<String>, usize, Vec<(String, String)>) {
        let (segments, mut query) = self.base(c);
        let (segments, own_start, own_query) =
            item_route(c, segments, resource, &mut self.names, id_param);
        query.extend(own_query);
        (segments, own_start, query)
    }

    /// Save, or create + update, and sometimes a read, for prospects or members.
    fn writes(&mut self, c: &mut Choices<'_>, record: &str, pool: &[&str]) {
        let resource = resource(c, pool);
        let mut id_param = None;
        let (save, create, update, read) = if record == "prospect" {
            (
                "prospect-save",
                "prospect-create",
                "prospect-update",
                "prospect-read",
            )
        } else {
            (
                "member-save",
                "member-create",
                "member-update",
                "member-read",
            )
        };
        let read_route = c.chance(60).then(|| self.item(c, &resource, &mut id_param));
        let creates = WriteKind {
            creates: true,
            ids: true,
            acknowledge: read_route.is_some(),
        };
        let saved = c.chance(40);
        if saved {
            let route = self.collection(c, &resource, &["save", "upsert", "sync"]);
            let keys = write_keys(c, self.case, self.json, creates);
            self.push(c, save, "POST", route, keys);
        } else {
            let route = self.collection(c, &resource, &["new", "create"]);
            let keys = write_keys(c, self.case, self.json, creates);
            self.push(c, create, "POST", route, keys);
            let method = c.pick(&["PUT", "PATCH", "POST"]);
            let route = self.item(c, &resource, &mut id_param);
            let updates = WriteKind {
                creates: false,
                ..creates
            };
            let keys = write_keys(c, self.case, self.json, updates);
            self.push(c, update, method, route, keys);
        }
        if record == "prospect" {
            self.prospect_save = saved;
        } else {
            self.member_save = saved;
        }
        if let Some(route) = read_route {
            let keys = envelope_key("record", &maybe_envelope(c, self.case, 50, self.json))
                .into_iter()
                .collect();
            self.push(c, read, "GET", route, keys);
        }
    }

    fn staff(&mut self, c: &mut Choices<'_>) {
        let resource = resource(c, &["staff", "users", "employees", "team", "people"]);
        let route = self.collection(c, &resource, &["all", "list"]);
        let keys = list_keys(c, self.case, &mut self.names);
        self.push(c, "staff-list", "GET", route, keys);
        if !c.chance(50) {
            return;
        }
        let (mut segments, mut query) = self.base(c);
        let own_start = segments.len();
        segments.extend(resource.iter().cloned());
        match c.below(4) {
            0 if c.chance(20) => segments.push("by-email({email})".into()),
            0 => segments.push("{email}".into()),
            1 => {
                segments.push(c.pick(&["by-email", "email", "find"]).to_owned());
                segments.push("{email}".into());
            }
            _ => {
                if c.chance(70) {
                    segments.push(c.pick(&["lookup", "search", "by-email"]).to_owned());
                }
                let name = self.names.fresh(c, &["email", "emailAddress", "mail", "q"]);
                let template = if c.chance(20) {
                    "email:{email}"
                } else {
                    "{email}"
                };
                query.push((name, template.to_owned()));
            }
        }
        let keys = if c.chance(50) {
            let record = maybe_envelope(c, self.case, 60, self.json);
            envelope_key("record", &record)
                .into_iter()
                .chain(["answer = \"object\"".to_owned()])
                .chain(none_keys(c, false, self.json, true))
                .collect()
        } else {
            let list = match c.below(3) {
                0 => None,
                1 => Some(JPath::root()),
                _ => Some(envelope(c, self.case, &ENVELOPES)),
            };
            let bare = list.as_ref().is_none_or(|path| path.segments.is_empty());
            ["answer = \"list\"".to_owned()]
                .into_iter()
                .chain(envelope_key("list", &list))
                .chain(none_keys(c, true, self.json, !bare))
                .collect()
        };
        self.push(c, "staff-lookup", "GET", (segments, own_start, query), keys);
    }

    fn sources(&mut self, c: &mut Choices<'_>) {
        let resource = resource(
            c,
            &["lead-sources", "sources", "channels", "origins", "people"],
        );
        let (list, create) = match c.below(3) {
            0 => (true, true),
            1 => (true, false),
            _ => (false, true),
        };
        // A list of plain names is a list.
        let (list, create) = (list || self.plain_sources, create);
        if list {
            let route = self.collection(c, &resource, &["all", "list"]);
            let keys = list_keys(c, self.case, &mut self.names);
            self.push(c, "source-list", "GET", route, keys);
        }
        if create {
            let route = self.collection(c, &resource, &["new", "create"]);
            let write = WriteKind {
                creates: true,
                ids: !self.plain_sources,
                acknowledge: true,
            };
            let keys = write_keys(c, self.case, self.json, write);
            self.push(c, "source-create", "POST", route, keys);
        }
    }
}

/// The `none` answers of a lookup (and the found flag they may need): any of those that fit its
/// answer shape, in any order (the mock answers the first); JSON alone says null or a flag.
fn none_keys(c: &mut Choices<'_>, list: bool, json: bool, flag_fits: bool) -> Vec<String> {
    if !c.chance(45) {
        return Vec::new();
    }
    let mut pool = vec!["not-found", "no-content", "empty-body"];
    if list {
        pool.push("empty-list");
    }
    if json {
        pool.push(if list { "null-list" } else { "null-record" });
        if flag_fits {
            pool.push("flag");
        }
    }
    let count = 1 + c.below(3);
    let mut chosen = Vec::new();
    for _ in 0..count {
        chosen.push(q(pool.remove(c.below(pool.len()))));
    }
    let mut keys = vec![format!("none = [{}]", chosen.join(", "))];
    if chosen.contains(&q("flag")) {
        let field = c.pick(&["found", "exists", "meta.found", "matched"]);
        keys.push(format!("found-field = {}", q(field)));
    }
    keys
}
// ------------------------------------------------------------------------------------------------
// The generator

/// A JSON type for ids: mostly strings, sometimes numbers (JSON only).
fn id_type(c: &mut Choices<'_>, json: bool) -> Option<&'static str> {
    if !json {
        return None;
    }
    match c.below(10) {
        0..=6 => None,
        7 | 8 => Some("integer"),
        _ => Some("number"),
    }
}

/// A valid profile, as TOML text, from a stream of choices. The first line is a comment holding
/// the seed of the certification run.
fn generate(stream: &[u8]) -> String {
    let c = &mut Choices::new(stream);
    let seed = (c.draw() as u64) << 8 | c.draw() as u64;
    // The body format comes first: what XML cannot carry (types, array steps, plain lists,
    // acknowledgements, conflicts, null and flagged lookups) is generated for JSON alone.
    let format = match c.below(8) {
        5 => "xml",
        6 => "soap11",
        7 => "soap12",
        _ => "json",
    };
    let json = format == "json";
    let (prospects, members) = match c.below(3) {
        0 => (true, false),
        1 => (false, true),
        _ => (true, true),
    };
    let staff_owner = prospects && c.chance(60);
    let lead_source = prospects && c.chance(60);

    // How prospects name their owner and source, as written and as read back.
    let owner_reference = c.pick(&["id", "email"]);
    let owner_read = (owner_reference == "email" && c.chance(30)).then_some("id");
    let source_reference = c.pick(&["id", "name"]);
    let plain_sources = lead_source && json && source_reference == "name" && c.chance(30);
    let source_read =
        (source_reference == "name" && !plain_sources && c.chance(30)).then_some("id");
    // The JSON types of ids; a reference by id is typed as what it refers to.
    let staff_id = id_type(c, json);
    let source_id = if plain_sources {
        None
    } else {
        id_type(c, json)
    };
    let prospect_id = id_type(c, json);
    let member_id = id_type(c, json);

    let client_id = c.pick(&["C-1001", "acme-fitness", "GYMCO", "north wind", "Zürich-1"]);
    let club_id = c.pick(&["CLUB-7", "4711", "BER-MITTE-02", "club 7", "Köln_Süd"]);
    let mut slots = vec![
        TenancySlot {
            placeholder: "{client_id}",
            place: c.pick(&PLACES),
            label: c
                .chance(60)
                .then(|| c.pick(&["clients", "tenants", "chains", "orgs"]).to_owned()),
            framed: c.chance(15),
            param: String::new(),
            template: if c.chance(20) {
                "org-{client_id}".into()
            } else {
                "{client_id}".into()
            },
        },
        TenancySlot {
            placeholder: "{club_id}",
            place: c.pick(&PLACES),
            label: c
                .chance(60)
                .then(|| c.pick(&["clubs", "sites", "locations", "gyms"]).to_owned()),
            framed: c.chance(15),
            param: String::new(),
            template: if c.chance(20) {
                "site:{club_id}".into()
            } else {
                "{club_id}".into()
            },
        },
    ];
    if c.chance(20) {
        slots.reverse();
    }
    let mut names = ParamNames::new();
    for slot in &mut slots {
        slot.param = if slot.placeholder == "{client_id}" {
            names.fresh(c, &["client", "tenant", "chain", "org"])
        } else {
            names.fresh(c, &["club", "site", "location", "branch"])
        };
    }
    let prefix: Vec<String> = (0..c.below(3))
        .map(|_| literal(c, &["api", "v1", "v2", "rest", "crm", "gym"]))
        .collect();
    let layout = Layout { prefix, slots };

    // [auth]
    let env = |c: &mut Choices<'_>, what: &str| format!("SPOKE_{}_{what}", word(c).to_uppercase());
    let mut auth = String::new();
    match c.below(5) {
        0 => {
            if c.chance(50) {
                auth.push_str("\n[auth]\nscheme = \"none\"\n");
            }
        }
        1 if c.chance(40) => {
            // OAuth client credentials: the token endpoint under the base URL or on another
            // host, the client in the Authorization header (said or by default) or the body.
            let token_url = if c.chance(50) {
                "/oauth2/token".to_owned()
            } else {
                format!("https://login.{}.example/oauth2/token", word(c))
            };
            let _ = write!(
                auth,
                "\n[auth]\nscheme = \"oauth2-client-credentials\"\ntoken-url = {}\nclient-id-env = {}\nclient-secret-env = {}\n",
                q(&token_url),
                q(&env(c, "CLIENT_ID")),
                q(&env(c, "CLIENT_SECRET"))
            );
            match c.below(3) {
                0 => auth.push_str("client-auth = \"body\"\n"),
                1 => auth.push_str("client-auth = \"basic\"\n"),
                _ => {}
            }
            if c.chance(50) {
                auth.push_str("scope = \"leads.write staff:read\"\n");
            }
            if c.chance(30) {
                let _ = writeln!(
                    auth,
                    "audience = {}",
                    q(&format!("https://api.{}.example", word(c)))
                );
            }
        }
        1 => {
            let _ = write!(
                auth,
                "\n[auth]\nscheme = \"bearer\"\ntoken-env = {}\n",
                q(&env(c, "TOKEN"))
            );
        }
        2 => {
            let header = format!("X-{}-Key", capitalized(&word(c)));
            let _ = write!(
                auth,
                "\n[auth]\nscheme = \"api-key\"\nheader = {}\nkey-env = {}\n",
                q(&header),
                q(&env(c, "KEY"))
            );
        }
        3 => {
            let param = names.fresh(c, &["api_key", "key", "apikey", "access_key"]);
            let _ = write!(
                auth,
                "\n[auth]\nscheme = \"api-key\"\nquery = {}\nkey-env = {}\n",
                q(&param),
                q(&env(c, "KEY"))
            );
        }
        _ => {
            let _ = write!(
                auth,
                "\n[auth]\nscheme = \"basic\"\nusername-env = {}\npassword-env = {}\n",
                q(&env(c, "USER")),
                q(&env(c, "PASSWORD"))
            );
        }
    }

    // [operations.*]
    let mut ops = OpContext {
        layout: &layout,
        names,
        tenancy: TenancyUse::default(),
        case: c.pick(&KEY_CASES),
        json,
        plain_sources,
        ops: Vec::new(),
        prospect_save: false,
        member_save: false,
    };
    if staff_owner {
        ops.staff(c);
    }
    if lead_source {
        ops.sources(c);
    }
    if prospects {
        ops.writes(c, "prospect", &["prospects", "leads", "contacts", "people"]);
    }
    if members {
        ops.writes(c, "member", &["members", "customers", "contacts", "people"]);
    }
    let (prospect_save, member_save) = (ops.prospect_save, ops.member_save);
    let mut names = ops.names;
    let mut tenancy = ops.tenancy;
    let mut ops = ops.ops;
    separate_routes(&mut ops);

    // [records.*]
    let mut records = Vec::new();
    let typed = |field: &'static str, value_type: Option<&'static str>| {
        value_type.map(|value_type| (field, value_type))
    };
    if staff_owner {
        let fields = ["id", "email", "first-name", "last-name"];
        let types: Vec<_> = typed("id", staff_id).into_iter().collect();
        let rules = Rules {
            kind: "staff",
            fields: &fields,
            required: &["id", "email"],
            json,
            types: &types,
            patterned: &[],
            id_read_only: true,
            read_apart: &[],
        };
        records.push(("staff", mapping(c, &rules, &mut tenancy)));
    }
    if lead_source {
        let mapping = if plain_sources {
            plain_source_mapping(c)
        } else {
            let types: Vec<_> = typed("id", source_id).into_iter().collect();
            let rules = Rules {
                kind: "source",
                fields: &["id", "name"],
                required: &["id", "name"],
                json,
                types: &types,
                patterned: &[],
                id_read_only: true,
                read_apart: &[],
            };
            mapping(c, &rules, &mut tenancy)
        };
        records.push(("source", mapping));
    }
    if prospects {
        let fields: Vec<&str> = PROSPECT_FIELDS
            .iter()
            .copied()
            .filter(|f| (*f != "owner" || staff_owner) && (*f != "source" || lead_source))
            .collect();
        let mut required = vec!["id", "first-name", "last-name"];
        if staff_owner {
            required.push("owner");
        }
        if lead_source {
            required.push("source");
        }
        let owner_type = staff_id.filter(|_| owner_reference == "id");
        let source_type = source_id.filter(|_| source_reference == "id");
        let types: Vec<_> = [
            typed("id", prospect_id),
            typed("owner", owner_type),
            typed("source", source_type),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut patterned = Vec::new();
        if prospect_id.is_none() {
            patterned.push("id");
        }
        if owner_type.is_none() {
            patterned.push("owner");
        }
        if source_type.is_none() {
            patterned.push("source");
        }
        let mut read_apart = Vec::new();
        if owner_read.is_some() {
            read_apart.push("owner");
        }
        if source_read.is_some() {
            read_apart.push("source");
        }
        let rules = Rules {
            kind: "prospect",
            fields: &fields,
            required: &required,
            json,
            types: &types,
            patterned: &patterned,
            id_read_only: !prospect_save,
            read_apart: &read_apart,
        };
        records.push(("prospect", mapping(c, &rules, &mut tenancy)));
    }
    if members {
        let fields: Vec<&str> = PROSPECT_FIELDS
            .iter()
            .copied()
            .filter(|f| !matches!(*f, "trial-start" | "trial-end" | "owner" | "source"))
            .collect();
        let types: Vec<_> = typed("id", member_id).into_iter().collect();
        let patterned: &[&str] = if member_id.is_none() { &["id"] } else { &[] };
        let rules = Rules {
            kind: "member",
            fields: &fields,
            required: &["id", "first-name", "last-name"],
            json,
            types: &types,
            patterned,
            id_read_only: !member_save,
            read_apart: &[],
        };
        records.push(("member", mapping(c, &rules, &mut tenancy)));
    }

    // Headers and query parameters every request carries.
    let mut headers: Vec<(String, String)> = Vec::new();
    if c.chance(25) {
        for _ in 0..1 + c.below(2) {
            let (name, value) = c.pick(&[
                ("Api-Version", "2024-06"),
                ("X-Api-Version", "3"),
                ("SiteId", "{club_id}"),
                ("X-Tenant", "{client_id}"),
                ("Accept", "application/vnd.partner+json"),
            ]);
            if (name == "Accept" && !json) || headers.iter().any(|(known, _)| known == name) {
                continue;
            }
            tenancy.note(value);
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let mut query: Vec<(String, String)> = Vec::new();
    if c.chance(20) {
        let name = names.fresh(c, &["locale", "lang", "api-version"]);
        let value = c.pick(&["en", "de-DE", "{club_id}"]);
        tenancy.note(value);
        query.push((name, value.to_owned()));
    }

    // The text, section by section.
    let mut out = format!("# generated profile; certify seed {seed}\n");
    let name = format!("Generated {}", capitalized(&word(c)));
    let base_url = c.pick(&[
        "http://127.0.0.1:8080",
        "https://sandbox.partner.example/api/v2",
        "http://localhost:9000/",
    ]);
    // An https partner may take a client certificate, or be trusted through a private CA.
    if base_url.starts_with("https") {
        match c.below(4) {
            0 => auth.push_str("\n[tls]\nclient-cert-env = \"SPOKE_CLIENT_CERT\"\nclient-key-env = \"SPOKE_CLIENT_KEY\"\n"),
            1 => auth.push_str("\n[tls]\nca-cert-env = \"SPOKE_CA_CERT\"\n"),
            _ => {}
        }
    }
    let _ = write!(
        out,
        "\n[partner]\nname = {}\nbase-url = {}\n",
        q(&name),
        q(base_url),
    );
    if json && c.chance(50) {
        out.push_str("format = \"json\"\n");
    }
    if !headers.is_empty() {
        let _ = writeln!(out, "headers = {}", inline(&headers));
    }
    if !query.is_empty() {
        let _ = writeln!(out, "query = {}", inline(&query));
    }
    let client_key = tenancy.client || c.chance(20);
    let club_key = tenancy.club || c.chance(20);
    if client_key || club_key {
        out.push_str("\n[tenancy]\n");
        if client_key {
            let _ = writeln!(out, "client-id = {}", q(client_id));
        }
        if club_key {
            let _ = writeln!(out, "club-id = {}", q(club_id));
        }
    }
    out.push_str(&auth);
    out.push_str("\n[capabilities]\n");
    let explicit_false = c.chance(50);
    for (key, on) in [
        ("prospects", prospects),
        ("members", members),
        ("staff-owner", staff_owner),
        ("lead-source", lead_source),
    ] {
        if on || explicit_false {
            let _ = writeln!(out, "{key} = {on}");
        }
    }
    if staff_owner || lead_source {
        out.push_str("\n[references]\n");
        if staff_owner {
            let _ = writeln!(out, "owner = {}", q(owner_reference));
            if let Some(read) = owner_read {
                let _ = writeln!(out, "owner-read = {}", q(read));
            }
        }
        if lead_source {
            let _ = writeln!(out, "source = {}", q(source_reference));
            if let Some(read) = source_read {
                let _ = writeln!(out, "source-read = {}", q(read));
            }
        }
        out.push_str("\n[absent]\n");
        if staff_owner {
            let _ = writeln!(out, "owner = {}", q(c.pick(&["omit", "null", "empty"])));
        }
        if lead_source {
            let _ = writeln!(out, "source = {}", q(c.pick(&["omit", "null", "empty"])));
        }
    }
    for op in &ops {
        op.render(&mut out);
    }
    for (kind, mapping) in &records {
        render_mapping(&mut out, kind, mapping);
    }
    if json {
        out
    } else {
        as_xml(&out, format)
    }
}

/// The same API speaking XML or SOAP: every document moves under one root element, lists name
/// their item element, and SOAP operations become POSTs told apart by their action.
fn as_xml(text: &str, format: &str) -> String {
    use toml_edit::{value, DocumentMut};
    let mut document: DocumentMut = text.parse().expect("the generated profile is TOML");
    document["partner"]["format"] = value(format);
    let soap = format.starts_with("soap");
    let Some(operations) = document
        .get_mut("operations")
        .and_then(|item| item.as_table_like_mut())
    else {
        return document.to_string();
    };
    for (key, operation) in operations.iter_mut() {
        let kind = OperationKind::from_key(key.get()).expect("generated operation keys");
        let operation = operation
            .as_table_like_mut()
            .expect("operations are tables");
        let path_of = |operation: &dyn toml_edit::TableLike, name: &str| {
            operation
                .get(name)
                .and_then(|item| item.as_str())
                .map(str::to_owned)
        };
        let lists = kind.role() == OperationRole::List
            || path_of(&*operation, "answer").as_deref() == Some("list");
        let mut paths = vec!["list", "record", "body"];
        match kind.role() {
            OperationRole::Write => paths.retain(|p| *p != "list"),
            OperationRole::Read => paths = vec!["record"],
            _ if lists => paths = vec!["list"],
            _ => paths = vec!["record"],
        }
        for name in paths {
            let path = path_of(&*operation, name).unwrap_or_default();
            operation.insert(name, value(under_root(&path)));
        }
        if lists {
            operation.insert("item", value("item"));
        }
        if let Some(paging) = operation
            .get_mut("paging")
            .and_then(|item| item.as_inline_table_mut())
        {
            for name in [
                "next-field",
                "total-field",
                "total-pages-field",
                "more-field",
            ] {
                if let Some(path) = paging.get(name).and_then(|v| v.as_str()).map(str::to_owned) {
                    paging.insert(name, under_root(&path).into());
                }
            }
        }
        if soap {
            operation.insert("method", value("POST"));
            operation.insert(
                "soap-action",
                value(format!("urn:generated/{}", kind.key())),
            );
        }
    }
    document.to_string()
}

/// A path moved under the root element `doc`.
fn under_root(path: &str) -> String {
    if path.is_empty() || path == "." {
        "doc".into()
    } else if path.starts_with('/') {
        format!("/doc{path}")
    } else {
        format!("doc.{path}")
    }
}

/// The certification seed a generated profile carries in its first line.
fn seed_of(text: &str) -> u64 {
    text.lines()
        .next()
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0)
}

/// Generated profile texts.
fn profile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), STREAM_LEN).prop_map(|stream| generate(&stream))
}

// ------------------------------------------------------------------------------------------------
// Running certify

fn options(profile: Profile, faults: Faults, seed: u64) -> CertifyOptions {
    let mut options = crate::helpers::mock_certify(profile, faults, seed);
    // Flaky answers are retried at once: the property is about verdicts, not waiting.
    options.limits.retry_backoff = Duration::from_millis(1);
    options
}

fn run(options: CertifyOptions) -> RunReport {
    try_run(options).expect("the run starts")
}

fn try_run(options: CertifyOptions) -> Result<RunReport, spoke::certify::CertifyError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(certify(options, &()))
}

fn parse(text: &str) -> Result<Profile, TestCaseError> {
    Profile::parse("generated.toml", text)
        .map_err(|error| TestCaseError::fail(format!("invalid profile: {error}\n{text}")))
}

/// The faults the fault property samples from for `profile`.
fn applicable_faults(profile: &Profile) -> Vec<Fault> {
    Fault::ALL
        .iter()
        .copied()
        // Faults that leave requests unanswered end in errors after timeouts: selftest and
        // certify.rs test them with short timeouts.
        .filter(|fault| !fault.shows_as_errors() && fault.applies_to(profile))
        .collect()
}

/// Every verdict that is neither a pass nor a skip, one per line.
fn not_passed(report: &RunReport) -> String {
    report
        .verdicts
        .iter()
        .filter(|v| !matches!(v.outcome, Outcome::Pass | Outcome::Skip))
        .map(|v| format!("  {} {:?}: {}", v.rule, v.outcome, v.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether every verdict is a pass or a skip and the run exits 0.
fn all_passed(report: &RunReport) -> bool {
    report.exit_code == 0
        && report
            .verdicts
            .iter()
            .all(|v| matches!(v.outcome, Outcome::Pass | Outcome::Skip))
}

/// The rules that ended in fail or warn.
fn caught(report: &RunReport) -> BTreeSet<String> {
    report
        .verdicts
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::Fail | Outcome::Warn))
        .map(|v| v.rule.clone())
        .collect()
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Each case is a whole certification: shrink within a bounded time.
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn every_generated_profile_passes_against_its_mock_partner(text in profile_text()) {
        let profile = parse(&text)?;
        let report = run(options(profile, Faults::none(), seed_of(&text)));
        prop_assert!(
            all_passed(&report),
            "exit {}; verdicts not passed:\n{}\n{text}",
            report.exit_code,
            not_passed(&report)
        );
    }

    #[test]
    fn each_applicable_fault_fails_exactly_its_rules(
        text in profile_text(),
        pick in any::<prop::sample::Index>(),
    ) {
        let profile = parse(&text)?;
        let applicable = applicable_faults(&profile);
        prop_assert!(!applicable.is_empty(), "no fault applies\n{text}");
        let fault = *pick.get(&applicable);
        let mut expected = fault.expected(&profile);
        let mut options = options(profile, [fault].into_iter().collect(), seed_of(&text));
        if fault == Fault::SlowStaffList {
            // The fault sleeps past the budget once; a small budget keeps the run short.
            options.latency_budget = Duration::from_millis(300);
        }
        let report = run(options);
        if fault == Fault::Flaky && report.exchanges.iter().all(|e| e.retry_of.is_none()) {
            // The seeded share of 503s happened to strike no request of this (short) run.
            expected.clear();
        }
        prop_assert_eq!(
            &caught(&report),
            &expected,
            "fault {}; verdicts not passed:\n{}\n{}",
            fault,
            not_passed(&report),
            text
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The generator itself: valid, and across the whole profile space

/// Choice streams from a fixed seed, for the deterministic generator tests.
fn streams(count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5b0e);
    (0..count).map(move |_| {
        let mut stream = vec![0u8; STREAM_LEN];
        rng.fill_bytes(&mut stream);
        stream
    })
}

#[test]
fn shapes_that_once_failed_now_certify() {
    let mut failures = Vec::new();
    for bug in REGRESSIONS {
        let profile = Profile::parse(&format!("{}.toml", bug.name), bug.profile)
            .unwrap_or_else(|error| panic!("{}: {error}", bug.name));
        let options = options(profile.clone(), bug.fault.into_iter().collect(), 1);
        if let Some(fault) = bug.fault.filter(|_| bug.rules.is_empty()) {
            // A fault no rule can catch on the profile does not apply to it, and a run with
            // it on is refused rather than passed.
            let refused = matches!(
                try_run(options),
                Err(spoke::certify::CertifyError::Invalid(_))
            );
            if fault.applies_to(&profile) || !refused {
                failures.push(format!("{}: {fault} is not refused", bug.name));
            }
            continue;
        }
        let report = run(options);
        let fine = match bug.fault {
            None => all_passed(&report),
            Some(fault) => {
                let rules: BTreeSet<String> = bug.rules.iter().map(|r| (*r).to_owned()).collect();
                // A fault that no rule can catch on the profile is not said to apply to it.
                caught(&report) == rules && fault.applies_to(&profile) != rules.is_empty()
            }
        };
        if !fine {
            failures.push(format!(
                "{} ({}):\n{}",
                bug.name,
                bug.rules.join(", "),
                not_passed(&report)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_simplest_generated_profile_is_valid() {
    let text = generate(&[]);
    Profile::parse("generated.toml", &text).unwrap_or_else(|error| panic!("{error}\n{text}"));
}

#[test]
fn the_generator_makes_valid_profiles_across_the_profile_space() {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for stream in streams(1500) {
        let text = generate(&stream);
        let profile =
            Profile::parse("generated.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let caps = profile.capabilities;
        let mut see = |feature: String| {
            seen.insert(feature);
        };
        see(format!(
            "caps {} {} {} {}",
            caps.prospects, caps.members, caps.staff_owner, caps.lead_source
        ));
        see(format!("auth {:?}", profile.auth.scheme));
        for op in profile.operations.values() {
            see(format!("format {:?}", profile.format_of(op)));
        }
        if profile.auth.scheme == AuthScheme::OAuth2ClientCredentials {
            let url = profile.auth.token_url.as_deref().unwrap_or_default();
            see(format!("oauth under base {}", url.starts_with('/')));
            see(format!("oauth client-auth {:?}", profile.auth.client_auth));
        }
        if let Some(tls) = &profile.tls {
            see(format!("tls mutual {}", tls.mutual()));
        }
        if profile.auth.scheme == AuthScheme::ApiKey {
            see(format!("api-key in query {}", profile.auth.query.is_some()));
        }
        for (kind, op) in &profile.operations {
            see(format!("op {}", kind.key()));
            see(format!("method {} {:?}", kind.key(), op.method));
            if let Some(paging) = &op.paging {
                let bare = op.list.as_ref().is_none_or(|l| l.steps().is_empty());
                see(format!(
                    "paging {} {:?} {:?} bare {bare}",
                    kind.key(),
                    paging.style,
                    paging.stop
                ));
                if let Some(first) = paging.first_page {
                    see(format!("first-page {first}"));
                }
                if matches!(paging.style, PagingStyle::Cursor | PagingStyle::NextLink) {
                    see(format!(
                        "{:?} sized {}",
                        paging.style,
                        paging.page_size.is_some()
                    ));
                }
                if paging.page_size == Some(1) {
                    see("page size 1".into());
                }
            }
            if let Some(answer) = op.answer {
                let in_path = op.path.as_str().contains("{email}");
                see(format!("lookup {answer:?} email in path {in_path}"));
            }
            if let Some(id_from) = op.id_from {
                see(format!("id-from {id_from:?}"));
            }
            for (what, path) in [
                ("body", &op.body),
                ("record", &op.record),
                ("list", &op.list),
            ] {
                match path {
                    None => see(format!("{what} absent")),
                    Some(p) if p.is_root() => see(format!("{what} root")),
                    Some(p) => see(format!("{what} depth {}", p.steps().len())),
                }
            }
            if kind.addresses_one_record() {
                let in_query = op.query.values().any(|t| t.as_str().contains("{id}"));
                see(format!("id in query {in_query}"));
            }
            for slot in ["{client_id}", "{club_id}"] {
                if op.path.as_str().contains(slot) {
                    see(format!("{slot} in path"));
                }
                if op.query.values().any(|t| t.as_str().contains(slot)) {
                    see(format!("{slot} in query"));
                }
            }
        }
        if caps.prospects {
            let save = profile.operation(OperationKind::ProspectSave).is_some();
            see(format!("prospect save {save}"));
        }
        if caps.lead_source {
            see(format!(
                "sources list {} create {}",
                profile.operation(OperationKind::SourceList).is_some(),
                profile.operation(OperationKind::SourceCreate).is_some()
            ));
        }
        if caps.staff_owner {
            see(format!(
                "owner {:?} absent {:?}",
                profile.references.owner, profile.absent.owner
            ));
        }
        if caps.lead_source {
            see(format!(
                "source {:?} absent {:?}",
                profile.references.source, profile.absent.source
            ));
        }
        for mapping in profile.records.values() {
            for path in mapping
                .fields
                .values()
                .flat_map(|map| [&map.write, &map.read])
                .flatten()
            {
                see(format!("field depth {}", path.steps().len()));
                if path.to_string().starts_with('/') {
                    see("pointer field".into());
                }
                if path
                    .keys()
                    .is_some_and(|keys| keys.iter().any(|s| s.contains('.')))
                {
                    see("dotted key".into());
                }
            }
            if !mapping.fixed.is_empty() {
                see("fixed".into());
            }
            for field in mapping.values.keys() {
                see(format!("values {field}"));
            }
        }
        if profile.tenancy.client_id.is_none() && profile.tenancy.club_id.is_none() {
            see("no tenancy".into());
        }
        for feature in new_shapes(&profile) {
            see(feature);
        }
    }
    let mut missing = Vec::new();
    let mut want = |feature: String| {
        if !seen.contains(&feature) {
            missing.push(feature);
        }
    };
    for caps in [
        "true false false false",
        "false true false false",
        "true true false false",
        "true false true true",
        "true true true true",
        "true false true false",
        "true false false true",
    ] {
        want(format!("caps {caps}"));
    }
    for scheme in [
        "None",
        "Bearer",
        "ApiKey",
        "Basic",
        "OAuth2ClientCredentials",
    ] {
        want(format!("auth {scheme}"));
    }
    for shape in [
        "oauth under base true",
        "oauth under base false",
        "oauth client-auth Some(Body)",
        "oauth client-auth None",
        "tls mutual true",
        "tls mutual false",
    ] {
        want(shape.to_owned());
    }
    for format in ["Json", "Xml", "Soap11", "Soap12"] {
        want(format!("format {format}"));
    }
    want("api-key in query true".into());
    want("api-key in query false".into());
    for list in ["staff-list", "source-list"] {
        want(format!("paging {list} None None bare true"));
        want(format!("paging {list} None None bare false"));
        for stop in ["ShortPage", "EmptyPage"] {
            for style in ["PageNumber", "Offset"] {
                want(format!("paging {list} {style} Some({stop}) bare true"));
                want(format!("paging {list} {style} Some({stop}) bare false"));
            }
        }
        for style in ["PageNumber", "Offset"] {
            want(format!("paging {list} {style} Some(Total) bare false"));
        }
        for style in ["Cursor", "NextLink"] {
            want(format!("paging {list} {style} None bare false"));
        }
    }
    for style in ["Cursor", "NextLink"] {
        want(format!("{style} sized true"));
        want(format!("{style} sized false"));
    }
    want("first-page 0".into());
    want("first-page 1".into());
    want("page size 1".into());
    for answer in ["Object", "List"] {
        for in_path in [true, false] {
            want(format!("lookup {answer} email in path {in_path}"));
        }
    }
    want(format!("id-from {:?}", IdFrom::Body));
    want(format!("id-from {:?}", IdFrom::Location));
    for what in ["body", "record", "list"] {
        want(format!("{what} absent"));
        want(format!("{what} root"));
        want(format!("{what} depth 1"));
        want(format!("{what} depth 2"));
    }
    for op in OperationKind::ALL {
        want(format!("op {}", op.key()));
    }
    for (op, method) in [
        ("prospect-update", Method::Put),
        ("prospect-update", Method::Patch),
        ("prospect-update", Method::Post),
        ("member-update", Method::Put),
        ("member-update", Method::Patch),
    ] {
        want(format!("method {op} {method:?}"));
    }
    want("id in query true".into());
    want("id in query false".into());
    for slot in ["{client_id}", "{club_id}"] {
        want(format!("{slot} in path"));
        want(format!("{slot} in query"));
    }
    want("no tenancy".into());
    want("prospect save true".into());
    want("prospect save false".into());
    for (list, create) in [(true, true), (true, false), (false, true)] {
        want(format!("sources list {list} create {create}"));
    }
    for reference in ["Id", "Email"] {
        for absent in ["Omit", "Null", "Empty"] {
            want(format!("owner {reference} absent {absent}"));
        }
    }
    for reference in ["Id", "Name"] {
        for absent in ["Omit", "Null", "Empty"] {
            want(format!("source {reference} absent {absent}"));
        }
    }
    for depth in 1..=3 {
        want(format!("field depth {depth}"));
    }
    want("pointer field".into());
    want("dotted key".into());
    want("fixed".into());
    for field in ["type", "status", "gender"] {
        want(format!("values {field}"));
    }
    for feature in NEW_SHAPES {
        want((*feature).to_owned());
    }
    for list in ["staff-list", "source-list"] {
        for bare in [true, false] {
            want(format!("paging {list} LinkHeader None bare {bare}"));
        }
        for style in ["PageNumber", "Offset"] {
            for stop in ["TotalPages", "MoreFlag"] {
                want(format!("paging {list} {style} Some({stop}) bare false"));
            }
        }
    }
    for (answer, nones) in [
        (
            "Object",
            &[
                "not-found",
                "no-content",
                "empty-body",
                "null-record",
                "flag",
            ][..],
        ),
        (
            "List",
            &[
                "not-found",
                "no-content",
                "empty-body",
                "empty-list",
                "null-list",
                "flag",
            ][..],
        ),
    ] {
        for none in nones {
            want(format!("none {answer} {none}"));
        }
    }
    assert!(missing.is_empty(), "the generator never made: {missing:#?}");
}

/// The shapes the profile format grew, each of which the fixed streams must make.
const NEW_SHAPES: &[&str] = &[
    // Fields.
    "field read apart",
    "field read only id",
    "field read only staff",
    "field write only",
    "type Integer id",
    "type Number id",
    "type Integer owner",
    "type Integer source",
    "type Boolean status",
    "type Integer type",
    "type Integer gender",
    "read-values",
    "write-pattern id",
    "write-pattern owner",
    "write-pattern source",
    "default company",
    "default status",
    "array index",
    "array match",
    "array flag",
    "plain source list",
    "owner-read id",
    "source-read id",
    // Lookups.
    "several none answers",
    "found-field",
    // Writes.
    "acknowledgement id-at",
    "acknowledgement Location",
    "acknowledgement Header",
    "acknowledgement without an id",
    "id-from Header",
    "id-pattern id-at",
    "id-pattern Location",
    "id-pattern Header",
    "id-at beside a record",
    "conflict record",
    "conflict id-at",
    "conflict id-at pattern",
    "conflict Location",
    "conflict when",
    "conflict when 2xx",
    "answer record",
    "body array step",
    "record array step",
    // Paging.
    "total check PageNumber",
    "total check Offset",
    "total check Cursor",
    "total check NextLink",
    "total check LinkHeader",
    "pages check",
    "max-page-size below page size",
    "max-page-size above page size",
    "LinkHeader sized true",
    "LinkHeader sized false",
    // Requests.
    "partner headers",
    "accept header",
    "partner query",
    "operation headers",
    "framed {id}",
    "framed {email}",
    "framed tenancy",
];

/// What a profile holds of the shapes in `NEW_SHAPES` (and the lookups' none answers). XML
/// profiles hold none of what XML cannot carry.
fn new_shapes(profile: &Profile) -> Vec<String> {
    use spoke::profile::path::Step;
    use spoke::profile::{AnswerShape, PageStop, ValueType};
    let mut seen = Vec::new();
    let json = profile
        .operations
        .values()
        .all(|op| !profile.format_of(op).is_xml());
    let references = profile.references;
    if references.owner_read.is_some() {
        seen.push("owner-read id".to_owned());
    }
    if references.source_read.is_some() {
        seen.push("source-read id".to_owned());
    }
    if !profile.partner.headers.is_empty() {
        seen.push("partner headers".to_owned());
    }
    if profile
        .partner
        .headers
        .keys()
        .any(|name| name.eq_ignore_ascii_case("accept"))
    {
        seen.push("accept header".to_owned());
    }
    if !profile.partner.query.is_empty() {
        seen.push("partner query".to_owned());
    }
    for (kind, mapping) in &profile.records {
        if *kind == spoke::model::RecordKind::Source
            && !mapping.fields.contains_key(&spoke::model::Field::Id)
        {
            seen.push("plain source list".to_owned());
        }
        for (field, map) in &mapping.fields {
            let field = field.key();
            match (&map.write, &map.read) {
                (Some(write), Some(read)) if write != read => {
                    seen.push("field read apart".to_owned())
                }
                (None, Some(_)) if field == "id" => seen.push("field read only id".to_owned()),
                (None, Some(_)) if *kind == spoke::model::RecordKind::Staff => {
                    seen.push("field read only staff".to_owned())
                }
                (Some(_), None) => seen.push("field write only".to_owned()),
                _ => {}
            }
            if map.value_type != ValueType::String {
                assert!(json, "a typed field in XML: {field}\n{}", profile.text);
                seen.push(format!("type {:?} {field}", map.value_type));
            }
            if !map.read_values.is_empty() {
                seen.push("read-values".to_owned());
            }
            if map.write_pattern.is_some() {
                seen.push(format!("write-pattern {field}"));
            }
            if map.default.is_some() {
                seen.push(format!("default {field}"));
            }
            for path in [&map.write, &map.read].into_iter().flatten() {
                for step in path.steps() {
                    let array = match step {
                        Step::Key(_) => continue,
                        Step::Index(_) => "array index",
                        Step::Match { .. } => "array match",
                        Step::Flag(_) => "array flag",
                    };
                    assert!(json, "an array step in XML: {path}\n{}", profile.text);
                    seen.push(array.to_owned());
                }
            }
        }
    }
    for (kind, op) in &profile.operations {
        if !op.headers.is_empty() {
            seen.push("operation headers".to_owned());
        }
        for segment in op.path.as_str().split('/') {
            let framed =
                segment.contains('{') && !(segment.starts_with('{') && segment.ends_with('}'));
            if framed {
                let slot = if segment.contains("{id}") {
                    "framed {id}"
                } else if segment.contains("{email}") {
                    "framed {email}"
                } else {
                    "framed tenancy"
                };
                seen.push(slot.to_owned());
            }
        }
        for (what, path) in [("body", &op.body), ("record", &op.record)] {
            if path.as_ref().is_some_and(|p| !p.is_plain()) {
                seen.push(format!("{what} array step"));
            }
        }
        if op.none.len() > 1 {
            seen.push("several none answers".to_owned());
        }
        if let Some(answer) = op.answer.filter(|_| kind.role() == OperationRole::Lookup) {
            for none in &op.none {
                seen.push(format!("none {answer:?} {}", none.key()));
            }
        }
        if op.found_field.is_some() {
            seen.push("found-field".to_owned());
        }
        let id_from = op.id_from.unwrap_or_default();
        match op.answer {
            Some(AnswerShape::Acknowledgement) => {
                assert!(json, "an acknowledgement in XML\n{}", profile.text);
                seen.push(match (id_from, &op.id_at) {
                    (IdFrom::Body, Some(_)) => "acknowledgement id-at".to_owned(),
                    (IdFrom::Body, None) => "acknowledgement without an id".to_owned(),
                    (other, _) => format!("acknowledgement {other:?}"),
                });
            }
            Some(AnswerShape::Record) => seen.push("answer record".to_owned()),
            _ if op.id_at.is_some() => seen.push("id-at beside a record".to_owned()),
            _ => {}
        }
        if op.id_pattern.is_some() {
            seen.push(match (id_from, &op.id_at) {
                (IdFrom::Body, _) => "id-pattern id-at".to_owned(),
                (other, _) => format!("id-pattern {other:?}"),
            });
        }
        if let Some(conflict) = &op.conflict {
            assert!(json, "a conflict in XML\n{}", profile.text);
            let shape = match conflict {
                c if c.when.is_some() && (200..300).contains(&c.status) => "conflict when 2xx",
                c if c.when.is_some() => "conflict when",
                c if c.id_from == IdFrom::Location => "conflict Location",
                c if c.pattern.is_some() => "conflict id-at pattern",
                c if c.id_at.is_some() => "conflict id-at",
                _ => "conflict record",
            };
            seen.push(shape.to_owned());
        }
        if let Some(paging) = &op.paging {
            if paging.total_field.is_some() && paging.stop != Some(PageStop::Total) {
                seen.push(format!("total check {:?}", paging.style));
            }
            if paging.total_pages_field.is_some() && paging.stop != Some(PageStop::TotalPages) {
                seen.push("pages check".to_owned());
            }
            if let Some(cap) = paging.max_page_size {
                let size = paging.page_size.unwrap_or(50);
                seen.push(
                    if cap < size {
                        "max-page-size below page size"
                    } else {
                        "max-page-size above page size"
                    }
                    .to_owned(),
                );
            }
            if paging.style == PagingStyle::LinkHeader {
                seen.push(format!("LinkHeader sized {}", paging.page_size.is_some()));
            }
        }
    }
    seen
}

/// The mock partner's and load runs' JSON writer gives the very bytes of the JSON tree for
/// generated mappings too: nested paths, shared prefixes, coded values, absent fields.
#[test]
fn records_written_straight_to_json_match_the_tree_for_generated_mappings() {
    use spoke::model::{canonical_values, Field, Record};
    for stream in streams(300) {
        let text = generate(&stream);
        let profile = parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        for (operation_kind, operation) in &profile.operations {
            let kind = operation_kind.record();
            let codec = profile.codec(kind);
            for round in 0..3 {
                let record: Record = Field::ALL
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| (index + round) % (round + 1) == 0)
                    .map(|(index, field)| {
                        let value = match canonical_values(*field) {
                            Some(allowed) => allowed[index % allowed.len()].to_owned(),
                            None => format!("v{index} \"ü\""),
                        };
                        (*field, value)
                    })
                    .collect();
                let at = operation.record.as_ref();
                let mut tree = codec.encode(&record);
                if let Some(at) = at {
                    tree = at.wrap(tree);
                }
                assert_eq!(
                    String::from_utf8(codec.encode_json(
                        &record,
                        at,
                        spoke::profile::Side::Request
                    ))
                    .unwrap(),
                    serde_json::to_string(&tree).unwrap(),
                    "{kind:?} round {round}\n{text}"
                );
            }
        }
    }
}

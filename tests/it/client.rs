//! The Connector client against wiremock partners: paging, loops, origins, lookups, timeouts,
//! redaction and writes, each with a small profile written inline.

use serde_json::{json, Value};
use spoke::auth::{Credentials, KeyPlace, Secret};
use spoke::connector::client::LookupError;
use spoke::connector::session::run_session;
use spoke::connector::{ClientLimits, ListFailure, ListOutcome, PartnerClient};
use spoke::intouch::Scenario;
use spoke::model::{Field, Record};
use spoke::profile::{OperationKind, Profile};
use spoke::suite::{self, Catalog, Outcome};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::{
    any, bearer_token, body_json, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A realistic bearer token: long enough to be searched for in free text.
const TOKEN: &str = "tok_live_9f8e7d6c5b4a";

/// A realistic API key with characters that change under URL encoding.
const API_KEY: &str = "key_live/9f8e+7d6c5b4a";

const NO_AUTH: &str = r#"scheme = "none""#;

const BEARER: &str = r#"scheme = "bearer"
token-env = "PARTNER_TOKEN""#;

/// A prospect-save (create and update on one route), so a profile carrying prospects is valid.
const PROSPECT_SAVE: &str = r#"
[operations.prospect-save]
method = "POST"
path = "/prospects"
record = "data"
"#;

/// An object lookup by email in the query.
const LOOKUP: &str = r#"
[operations.staff-lookup]
method = "GET"
path = "/staff/by-email"
query = { email = "{email}" }
answer = "object"
record = "data"
"#;

/// A profile carrying prospects with a staff owner, with `auth` and `operations` as given.
fn profile(auth: &str, operations: &str) -> Arc<Profile> {
    let text = format!(
        r#"
[partner]
name = "Wiremock Partner"
base-url = "http://127.0.0.1:9"

[auth]
{auth}

[capabilities]
prospects = true
staff-owner = true

{operations}

[records.staff.fields]
id = "id"
email = "email"
first-name = "first_name"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
email = "email"
owner = "owner_id"
"#
    );
    Arc::new(Profile::parse("wiremock.toml", &text).unwrap_or_else(|error| panic!("{error}")))
}

/// The staff-list operation at `/staff` with `list_and_paging`, plus a prospect-save.
fn staff_list(list_and_paging: &str) -> String {
    format!(
        "[operations.staff-list]\nmethod = \"GET\"\npath = \"/staff\"\n{list_and_paging}\n{PROSPECT_SAVE}"
    )
}

fn client_at(
    profile: Arc<Profile>,
    base_url: &str,
    credentials: Credentials,
    limits: ClientLimits,
) -> PartnerClient {
    PartnerClient::new(profile, base_url, credentials, limits).expect("a valid base URL")
}

fn client(profile: Arc<Profile>, server: &MockServer) -> PartnerClient {
    client_at(
        profile,
        &server.uri(),
        Credentials::None,
        ClientLimits::default(),
    )
}

/// Partner staff entries `S-n` with emails.
fn staff(numbers: &[u32]) -> Value {
    numbers
        .iter()
        .map(|n| json!({ "id": format!("S-{n}"), "email": format!("coach{n}@club.example") }))
        .collect()
}

fn ids(outcome: &ListOutcome) -> Vec<String> {
    outcome
        .records
        .iter()
        .map(|record| record[&Field::Id].clone())
        .collect()
}

fn expected_ids(numbers: &[u32]) -> Vec<String> {
    numbers.iter().map(|n| format!("S-{n}")).collect()
}

/// The staff sync's full list, as the Connector reads it.
async fn sync_staff(client: &PartnerClient) -> ListOutcome {
    client
        .list_all(OperationKind::StaffList, "staff sync")
        .await
}

fn ok_json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn requests_to(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .expect("request recording is on")
        .len()
}

// ---------------------------------------------------------------------------------------------
// Paging followed to the end
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn page_number_paging_is_followed_to_the_short_last_page() {
    let server = MockServer::start().await;
    // A short page may be the partner's own page size: the page after it (empty) ends the list.
    for (page, numbers) in [("1", &[1, 2][..]), ("2", &[3, 4]), ("3", &[5]), ("4", &[])] {
        Mock::given(method("GET"))
            .and(path("/staff"))
            .and(query_param("page", page))
            .and(query_param("per_page", "2"))
            .respond_with(ok_json(json!({ "data": staff(numbers) })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = "data"
paging = { style = "page-number", page-param = "page", size-param = "per_page", page-size = 2, stop = "short-page" }"#,
        ),
    );
    let outcome = sync_staff(&client(profile, &server)).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2, 3, 4, 5]));
    assert_eq!(
        outcome.records[4].get(&Field::Email).map(String::as_str),
        Some("coach5@club.example")
    );
    assert!(
        outcome.item_problems.is_empty(),
        "{:?}",
        outcome.item_problems
    );
    assert_eq!(outcome.exchanges.len(), 4);
}

#[tokio::test]
async fn page_number_paging_with_a_total_stops_once_the_total_is_read() {
    let server = MockServer::start().await;
    // First page 0; the total (4) is reached after two full pages; page 2 is asked once, to
    // be sure the total told the truth, and is empty.
    for (page, numbers, expected) in [("0", &[1, 2][..], 1u64), ("1", &[3, 4], 1), ("2", &[], 1)] {
        Mock::given(method("GET"))
            .and(path("/staff"))
            .and(query_param("page", page))
            .respond_with(ok_json(
                json!({ "data": staff(numbers), "meta": { "total": 4 } }),
            ))
            .expect(expected)
            .mount(&server)
            .await;
    }
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = "data"
paging = { style = "page-number", page-param = "page", size-param = "size", page-size = 2, first-page = 0, stop = "total", total-field = "meta.total" }"#,
        ),
    );
    let outcome = sync_staff(&client(profile, &server)).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2, 3, 4]));
    assert_eq!(outcome.exchanges.len(), 3);
}

#[tokio::test]
async fn offset_paging_with_an_empty_last_page_reads_every_page() {
    let server = MockServer::start().await;
    for (offset, numbers) in [("0", &[1, 2][..]), ("2", &[3, 4]), ("4", &[])] {
        Mock::given(method("GET"))
            .and(path("/staff"))
            .and(query_param("offset", offset))
            .and(query_param("limit", "2"))
            .respond_with(ok_json(staff(numbers)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = ""
paging = { style = "offset", offset-param = "offset", limit-param = "limit", page-size = 2, stop = "empty-page" }"#,
        ),
    );
    let outcome = sync_staff(&client(profile, &server)).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2, 3, 4]));
    assert_eq!(outcome.exchanges.len(), 3);
}

#[tokio::test]
async fn cursor_paging_follows_next_cursors_until_null() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param_is_missing("after"))
        .and(query_param("limit", "2"))
        .respond_with(ok_json(
            json!({ "data": staff(&[1, 2]), "meta": { "next": "c2" } }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("after", "c2"))
        .and(query_param("limit", "2"))
        .respond_with(ok_json(
            json!({ "data": staff(&[3, 4]), "meta": { "next": "c4" } }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("after", "c4"))
        .respond_with(ok_json(
            json!({ "data": staff(&[5]), "meta": { "next": null } }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = "data"
paging = { style = "cursor", cursor-param = "after", next-field = "meta.next", size-param = "limit", page-size = 2 }"#,
        ),
    );
    let outcome = sync_staff(&client(profile, &server)).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2, 3, 4, 5]));
    assert_eq!(outcome.exchanges.len(), 3);
}

#[tokio::test]
async fn next_link_paging_follows_relative_links_until_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/staff"))
        .and(query_param_is_missing("page_token"))
        .respond_with(ok_json(json!({
            "data": staff(&[1, 2]),
            // An absolute path.
            "links": { "next": "/api/v2/staff?page_token=b" }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/staff"))
        .and(query_param("page_token", "b"))
        .respond_with(ok_json(json!({
            "data": staff(&[3, 4]),
            // A relative path.
            "links": { "next": "staff?page_token=c" }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/staff"))
        .and(query_param("page_token", "c"))
        // No link at all: the end.
        .respond_with(ok_json(json!({ "data": staff(&[5]) })))
        .expect(1)
        .mount(&server)
        .await;
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = "data"
paging = { style = "next-link", next-field = "links.next" }"#,
        ),
    );
    let client = client_at(
        profile,
        &format!("{}/api/v2", server.uri()),
        Credentials::None,
        ClientLimits::default(),
    );
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2, 3, 4, 5]));
    assert_eq!(outcome.exchanges.len(), 3);
}

#[tokio::test]
async fn a_next_link_holding_only_a_query_resolves_against_the_page_it_came_from() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/staff"))
        .and(query_param_is_missing("page_token"))
        .respond_with(ok_json(json!({
            "data": staff(&[1, 2]),
            "links": { "next": "?page_token=b" }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/staff"))
        .and(query_param("page_token", "b"))
        .respond_with(ok_json(json!({ "data": staff(&[3]) })))
        .expect(1)
        .mount(&server)
        .await;
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = "data"
paging = { style = "next-link", next-field = "links.next" }"#,
        ),
    );
    let client = client_at(
        profile,
        &format!("{}/api/v2", server.uri()),
        Credentials::None,
        ClientLimits::default(),
    );
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2, 3]));
}

// ---------------------------------------------------------------------------------------------
// Paging that does not end
// ---------------------------------------------------------------------------------------------

const CURSOR_PAGING: &str = r#"list = "data"
paging = { style = "cursor", cursor-param = "after", next-field = "next" }"#;

#[tokio::test]
async fn a_repeated_cursor_is_reported_as_a_loop_after_a_bounded_number_of_requests() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param_is_missing("after"))
        .respond_with(ok_json(json!({ "data": staff(&[1, 2]), "next": "c1" })))
        .expect(1)
        .mount(&server)
        .await;
    // A new page, but it hands back the cursor already given.
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("after", "c1"))
        .respond_with(ok_json(json!({ "data": staff(&[3, 4]), "next": "c1" })))
        .expect(1)
        .mount(&server)
        .await;
    let outcome = sync_staff(&client(
        profile(NO_AUTH, &staff_list(CURSOR_PAGING)),
        &server,
    ))
    .await;
    match &outcome.failure {
        Some(ListFailure::Loop { page, message, .. }) => {
            assert_eq!(*page, 2);
            assert!(message.contains("`c1`"), "{message}");
        }
        other => panic!("expected a loop, got {other:?}"),
    }
    assert_eq!(requests_to(&server).await, 2);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2, 3, 4]));
}

#[tokio::test]
async fn a_second_page_repeating_the_first_is_reported_as_a_loop() {
    let server = MockServer::start().await;
    // The partner ignores the page parameter: every page is page 1.
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(ok_json(json!({ "data": staff(&[1, 2]) })))
        .expect(2)
        .mount(&server)
        .await;
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = "data"
paging = { style = "page-number", page-param = "page", size-param = "size", page-size = 2, stop = "short-page" }"#,
        ),
    );
    let outcome = sync_staff(&client(profile, &server)).await;
    match &outcome.failure {
        Some(failure @ ListFailure::Loop { page: 2, .. }) => {
            assert!(failure.describe().contains("repeats an earlier page"));
            assert_eq!(failure.exchange(), Some(2));
        }
        other => panic!("expected a loop at page 2, got {other:?}"),
    }
    // The repeated page adds nothing.
    assert_eq!(ids(&outcome), expected_ids(&[1, 2]));
}

#[tokio::test]
async fn a_next_link_back_to_a_page_already_read_is_reported_as_a_loop() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param_is_missing("page_token"))
        .respond_with(ok_json(
            json!({ "data": staff(&[1]), "next": "/staff?page_token=b" }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("page_token", "b"))
        .respond_with(ok_json(
            json!({ "data": staff(&[2]), "next": "/staff?page_token=b" }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let profile = profile(
        NO_AUTH,
        &staff_list(
            r#"list = "data"
paging = { style = "next-link", next-field = "next" }"#,
        ),
    );
    let outcome = sync_staff(&client(profile, &server)).await;
    assert!(
        matches!(outcome.failure, Some(ListFailure::Loop { page: 2, .. })),
        "{:?}",
        outcome.failure
    );
    assert_eq!(requests_to(&server).await, 2);
}

/// Answers every cursor `n` with staff `S-(n+1)` and the cursor `n+1`: a list without end.
struct EndlessCursors;

impl Respond for EndlessCursors {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let at: u32 = request
            .url
            .query_pairs()
            .find(|(name, _)| name == "after")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0);
        ok_json(json!({ "data": staff(&[at + 1]), "next": (at + 1).to_string() }))
    }
}

#[tokio::test]
async fn a_list_that_never_ends_stops_at_the_page_cap() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(EndlessCursors)
        .expect(5)
        .mount(&server)
        .await;
    let client = client_at(
        profile(NO_AUTH, &staff_list(CURSOR_PAGING)),
        &server.uri(),
        Credentials::None,
        ClientLimits {
            max_pages: 5,
            ..ClientLimits::default()
        },
    );
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, Some(ListFailure::TooManyPages { cap: 5 }));
    assert_eq!(outcome.records.len(), 5);
}

#[test]
fn the_documented_list_caps_are_the_defaults() {
    let limits = ClientLimits::default();
    assert_eq!(limits.max_pages, 2_000, "the README documents 2,000 pages");
    assert_eq!(limits.max_list_records, 200_000);
    assert_eq!(limits.max_list_bytes, 256 * 1024 * 1024);
}

#[tokio::test]
async fn a_list_stops_at_its_record_cap_and_at_its_byte_cap_and_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(EndlessCursors)
        .mount(&server)
        .await;
    let walk = |limits: ClientLimits| {
        let client = client_at(
            profile(NO_AUTH, &staff_list(CURSOR_PAGING)),
            &server.uri(),
            Credentials::None,
            limits,
        );
        async move { sync_staff(&client).await }
    };
    let by_records = walk(ClientLimits {
        max_list_records: 7,
        ..ClientLimits::default()
    })
    .await;
    assert_eq!(
        by_records.failure,
        Some(ListFailure::TooManyRecords { cap: 7 })
    );
    assert_eq!(by_records.records.len(), 7);
    assert_eq!(by_records.exchanges.len(), 8);
    let by_bytes = walk(ClientLimits {
        max_list_bytes: 1_000,
        ..ClientLimits::default()
    })
    .await;
    assert_eq!(
        by_bytes.failure,
        Some(ListFailure::TooManyBytes { cap: 1_000 })
    );
    assert!(by_bytes.exchanges.len() < 20, "{:?}", by_bytes.exchanges);
    let reason = by_records.failure.unwrap().describe();
    assert!(reason.contains("7 records"), "{reason}");
}

// ---------------------------------------------------------------------------------------------
// Origins
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_and_nothing_is_sent_there() {
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ok_json(json!({ "data": staff(&[9]) })))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let elsewhere_address = elsewhere.address().to_string();
    let links = [
        format!("{}/staff?page_token=b", elsewhere.uri()),
        // Scheme-relative: same scheme, another host and port.
        format!("//{elsewhere_address}/staff?page_token=b"),
    ];
    for link in links {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/staff"))
            .and(bearer_token(TOKEN))
            .respond_with(ok_json(json!({ "data": staff(&[1, 2]), "next": link })))
            .expect(1)
            .mount(&server)
            .await;
        let client = client_at(
            profile(
                BEARER,
                &staff_list(
                    r#"list = "data"
paging = { style = "next-link", next-field = "next" }"#,
                ),
            ),
            &server.uri(),
            Credentials::Bearer(Secret::new(TOKEN)),
            ClientLimits::default(),
        );
        let outcome = sync_staff(&client).await;
        match &outcome.failure {
            Some(ListFailure::BadPage { page, message, .. }) => {
                assert_eq!(*page, 1, "{link}");
                assert!(message.contains("another origin"), "{link}: {message}");
                assert!(message.contains(&elsewhere_address), "{link}: {message}");
            }
            other => panic!("{link}: expected a refused link, got {other:?}"),
        }
        // The first page still counts.
        assert_eq!(ids(&outcome), expected_ids(&[1, 2]), "{link}");
        assert_eq!(client.recorder().snapshot().len(), 1, "{link}");
    }
    assert_eq!(requests_to(&elsewhere).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Lookups by email
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_session_uses_the_lookup_by_email_in_another_letter_case_than_the_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(ok_json(json!({ "data": [
            { "id": "S-1", "email": "Ana.Lopez@club.example" },
            { "id": "S-2", "email": null },
        ] })))
        .expect(1)
        .mount(&server)
        .await;
    // InTouch spells the matched email in other letter case than the partner's list.
    Mock::given(method("GET"))
        .and(path("/staff/by-email"))
        .and(query_param("email", "ANA.LOPEZ@CLUB.EXAMPLE"))
        .respond_with(ok_json(
            json!({ "data": { "id": "S-1", "email": "Ana.Lopez@club.example" } }),
        ))
        .expect(1..)
        .mount(&server)
        .await;
    // Everyone else is unknown.
    Mock::given(method("GET"))
        .and(path("/staff/by-email"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "error": "not found" })))
        .with_priority(10)
        .expect(1..)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/prospects"))
        .respond_with(ok_json(json!({ "data": { "id": "P-1" } })))
        .mount(&server)
        .await;
    let profile = profile(
        NO_AUTH,
        &format!("{}\n{LOOKUP}", staff_list(r#"list = "data""#)),
    );
    let client = client(profile.clone(), &server);
    let observations = run_session(&client, 42, &Scenario::core(), &()).await;

    let sync = observations.staff.as_ref().expect("the staff sync ran");
    assert_eq!(sync.list.failure, None);
    let matched = sync
        .lookups
        .iter()
        .find(|lookup| lookup.email == "ANA.LOPEZ@CLUB.EXAMPLE")
        .expect("the matched owner was looked up");
    assert_eq!(matched.expected_id.as_deref(), Some("S-1"));
    assert_eq!(matched.result, Ok(Some("S-1".to_owned())));
    // The unmatched owner and the made-up unknown email answer none.
    assert!(sync.lookups.len() >= 3, "{:?}", sync.lookups);
    assert!(sync
        .lookups
        .iter()
        .filter(|lookup| lookup.email != matched.email)
        .all(|lookup| lookup.result == Ok(None)));

    let requests = server.received_requests().await.unwrap();
    let looked_up: Vec<String> = requests
        .iter()
        .filter(|request| request.url.path() == "/staff/by-email")
        .filter_map(|request| {
            request
                .url
                .query_pairs()
                .find(|(name, _)| name == "email")
                .map(|(_, value)| value.into_owned())
        })
        .collect();
    assert!(looked_up.contains(&"ANA.LOPEZ@CLUB.EXAMPLE".to_owned()));
    assert!(!looked_up.contains(&"Ana.Lopez@club.example".to_owned()));

    let exchanges = client.recorder().snapshot();
    let verdicts = suite::judge(
        &Catalog::builtin(),
        &profile,
        &observations,
        &exchanges,
        &suite::Settings::default(),
        &[],
    );
    let lookup_rule = verdicts.iter().find(|v| v.rule == "STAFF-005").unwrap();
    assert_eq!(lookup_rule.outcome, Outcome::Pass, "{}", lookup_rule.reason);
}

#[tokio::test]
async fn an_object_lookup_answering_404_means_no_such_staff() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff/by-email"))
        .and(query_param("email", "known@club.example"))
        .respond_with(ok_json(
            json!({ "data": { "id": "S-1", "email": "Known@Club.example" } }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff/by-email"))
        .and(query_param("email", "nobody@club.example"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff/by-email"))
        .and(query_param("email", "broken@club.example"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let profile = profile(
        NO_AUTH,
        &format!("{}\n{LOOKUP}", staff_list(r#"list = "data""#)),
    );
    let client = client(profile, &server);

    let (_, found) = client
        .lookup_staff("known@club.example", "lookup")
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(
        found.and_then(|record| record.get(&Field::Id).cloned()),
        Some("S-1".to_owned())
    );
    let (answer, none) = client
        .lookup_staff("nobody@club.example", "lookup")
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!((answer.status, none), (404, None));
    match client.lookup_staff("broken@club.example", "lookup").await {
        Err(LookupError::Status(answer)) => assert_eq!(answer.status, 500),
        other => panic!("expected an error status, got {other:?}"),
    }
}

#[tokio::test]
async fn a_list_lookup_answering_an_empty_list_means_no_such_staff() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff/search"))
        .and(query_param("email", "known@club.example"))
        .respond_with(ok_json(
            json!({ "results": [{ "id": "S-1", "email": "KNOWN@club.example" }] }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff/search"))
        .and(query_param("email", "nobody@club.example"))
        .respond_with(ok_json(json!({ "results": [] })))
        .expect(1)
        .mount(&server)
        .await;
    let lookup = r#"
[operations.staff-lookup]
method = "GET"
path = "/staff/search"
query = { email = "{email}" }
answer = "list"
list = "results"
"#;
    let profile = profile(
        NO_AUTH,
        &format!("{}\n{lookup}", staff_list(r#"list = "data""#)),
    );
    let client = client(profile, &server);
    let (_, found) = client
        .lookup_staff("known@club.example", "lookup")
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!(
        found.and_then(|record| record.get(&Field::Id).cloned()),
        Some("S-1".to_owned())
    );
    let (answer, none) = client
        .lookup_staff("nobody@club.example", "lookup")
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
    assert_eq!((answer.status, none), (200, None));
}

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

const SLOW: Duration = Duration::from_secs(5);

fn impatient() -> ClientLimits {
    ClientLimits {
        request_timeout: Duration::from_millis(150),
        ..ClientLimits::default()
    }
}

/// A partner that answers everything, but only after [`SLOW`]. Not pooled, so no delayed answer
/// outlives the test on a server another test reuses.
async fn slow_partner() -> MockServer {
    let server = MockServer::builder().start().await;
    Mock::given(any())
        .respond_with(ok_json(json!({ "data": staff(&[1]) })).set_delay(SLOW))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_call_that_times_out_is_an_error_not_a_hang() {
    let server = slow_partner().await;
    let client = client_at(
        profile(NO_AUTH, &staff_list(r#"list = "data""#)),
        &server.uri(),
        Credentials::None,
        impatient(),
    );
    let started = Instant::now();
    let error = client
        .call(OperationKind::StaffList, "probe", None, None, &[], None)
        .await
        .expect_err("no answer within the timeout");
    assert!(started.elapsed() < SLOW / 2, "{:?}", started.elapsed());
    assert!(error.timed_out, "{}", error.message);
    assert!(error.message.contains("150 ms"), "{}", error.message);
    let exchange = client.recorder().get(error.exchange).expect("recorded");
    assert_eq!(exchange.status, None);
    assert_eq!(exchange.error.as_deref(), Some(error.message.as_str()));

    let outcome = sync_staff(&client).await;
    match outcome.failure {
        Some(ListFailure::Unreachable {
            page: 1,
            timed_out: true,
            exchange,
            ..
        }) => assert!(exchange > 0),
        other => panic!("expected a timed-out first page, got {other:?}"),
    }
    assert!(started.elapsed() < SLOW / 2, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_slow_partner_makes_the_staff_rules_errors_not_failures() {
    let server = slow_partner().await;
    let profile = profile(
        NO_AUTH,
        &format!("{}\n{LOOKUP}", staff_list(r#"list = "data""#)),
    );
    let client = client_at(
        profile.clone(),
        &server.uri(),
        Credentials::None,
        impatient(),
    );
    let started = Instant::now();
    let verdicts = tokio::time::timeout(Duration::from_secs(4), async {
        let observations = run_session(&client, 7, &Scenario::core(), &()).await;
        let exchanges = client.recorder().snapshot();
        suite::judge(
            &Catalog::builtin(),
            &profile,
            &observations,
            &exchanges,
            &suite::Settings::default(),
            &[],
        )
    })
    .await
    .expect("the session ends well before the partner answers");
    let requests = client.recorder().snapshot().len();
    assert!(requests >= 2, "{requests} requests");
    assert!(
        started.elapsed() < SLOW,
        "{requests} requests took {:?}",
        started.elapsed()
    );
    for rule in [
        "STAFF-001",
        "STAFF-002",
        "STAFF-003",
        "STAFF-004",
        "STAFF-005",
    ] {
        let verdict = verdicts.iter().find(|v| v.rule == rule).unwrap();
        assert_eq!(
            verdict.outcome,
            Outcome::Error,
            "{rule}: {}",
            verdict.reason
        );
    }
    assert!(
        verdicts.iter().all(|v| v.outcome != Outcome::Fail),
        "{:?}",
        verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .map(|v| (&v.rule, &v.reason))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Every way `secret` could show in serialized evidence: as is and URL-encoded.
fn assert_absent(evidence: &str, secret: &str) {
    let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let escaped = serde_json::to_string(secret).unwrap();
    for form in [secret, encoded.as_str(), escaped.trim_matches('"')] {
        assert!(
            !evidence.contains(form),
            "`{form}` leaked into the evidence: {evidence}"
        );
    }
}

fn prospect() -> Record {
    Record::from([
        (Field::FirstName, "Zoë".to_owned()),
        (Field::LastName, "Ñúñez".to_owned()),
        (Field::Email, "zoe@example.org".to_owned()),
    ])
}

#[tokio::test]
async fn a_bearer_token_never_appears_in_recorded_exchanges() {
    let server = MockServer::start().await;
    // A careless partner echoes the credentials in headers and bodies.
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ok_json(json!({
                "data": staff(&[1]),
                "debug": { "authorization": format!("Bearer {TOKEN}") }
            }))
            .insert_header("x-echo-authorization", format!("Bearer {TOKEN}").as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff/by-email"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({ "error": format!("token {TOKEN} may not look staff up") })),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/prospects"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "data": { "id": "P-1" }, "token": TOKEN }))
                .insert_header("location", format!("/prospects/P-1?token={TOKEN}").as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client_at(
        profile(
            BEARER,
            &format!("{}\n{LOOKUP}", staff_list(r#"list = "data""#)),
        ),
        &server.uri(),
        Credentials::Bearer(Secret::new(TOKEN)),
        ClientLimits::default(),
    );
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, None);
    assert!(client
        .lookup_staff("coach1@club.example", "lookup")
        .await
        .is_err());
    let saved = client
        .write(OperationKind::ProspectSave, "deliver", &prospect(), None)
        .await
        .expect("an answer");
    assert_eq!(saved.id.as_deref(), Some("P-1"));

    let exchanges = client.recorder().snapshot();
    assert_eq!(exchanges.len(), 3);
    assert!(exchanges[0]
        .request_headers
        .iter()
        .any(|(name, value)| name == "authorization" && value == "***"));
    let evidence = serde_json::to_string(&exchanges).unwrap();
    assert_absent(&evidence, TOKEN);
}

#[tokio::test]
async fn an_api_key_in_the_query_never_appears_in_recorded_exchanges() {
    let server = MockServer::start().await;
    let encoded_key: String = form_urlencoded::byte_serialize(API_KEY.as_bytes()).collect();
    // The partner's next link carries the key on, as many do.
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("api_key", API_KEY))
        .and(query_param_is_missing("page_token"))
        .respond_with(ok_json(json!({
            "data": staff(&[1]),
            "next": format!("/staff?api_key={encoded_key}&page_token=b")
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("api_key", API_KEY))
        .and(query_param("page_token", "b"))
        .respond_with(ok_json(json!({ "data": staff(&[2]) })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/prospects"))
        .and(query_param("api_key", API_KEY))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({ "error": format!("key {API_KEY} is read-only"), "request": format!("/prospects?api_key={encoded_key}") }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_at(
        profile(
            r#"scheme = "api-key"
query = "api_key"
key-env = "PARTNER_KEY""#,
            &staff_list(
                r#"list = "data"
paging = { style = "next-link", next-field = "next" }"#,
            ),
        ),
        &server.uri(),
        Credentials::ApiKey {
            place: KeyPlace::Query("api_key".into()),
            key: Secret::new(API_KEY),
        },
        ClientLimits::default(),
    );
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2]));
    let saved = client
        .write(OperationKind::ProspectSave, "deliver", &prospect(), None)
        .await
        .expect("an answer");
    assert_eq!(saved.answer.status, 400);

    let exchanges = client.recorder().snapshot();
    assert_eq!(exchanges.len(), 3);
    assert!(
        exchanges.iter().all(|e| e.url.contains("api_key=***")),
        "{exchanges:?}"
    );
    assert_absent(&serde_json::to_string(&exchanges).unwrap(), API_KEY);
}

#[tokio::test]
async fn an_api_key_in_a_header_never_appears_in_recorded_exchanges() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(header("x-api-key", TOKEN))
        .respond_with(
            ok_json(json!({ "data": staff(&[1]), "key": TOKEN })).insert_header("x-api-key", TOKEN),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client_at(
        profile(
            r#"scheme = "api-key"
header = "X-Api-Key"
key-env = "PARTNER_KEY""#,
            &staff_list(r#"list = "data""#),
        ),
        &server.uri(),
        Credentials::ApiKey {
            place: KeyPlace::Header("X-Api-Key".into()),
            key: Secret::new(TOKEN),
        },
        ClientLimits::default(),
    );
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, None);
    assert_absent(
        &serde_json::to_string(&client.recorder().snapshot()).unwrap(),
        TOKEN,
    );
}

#[tokio::test]
async fn an_api_key_in_the_query_is_sent_on_next_link_pages_too() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("api_key", API_KEY))
        .and(query_param_is_missing("page_token"))
        .respond_with(ok_json(
            json!({ "data": staff(&[1]), "next": "/staff?page_token=b" }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("api_key", API_KEY))
        .and(query_param("page_token", "b"))
        .respond_with(ok_json(json!({ "data": staff(&[2]) })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param_is_missing("api_key"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let client = client_at(
        profile(
            r#"scheme = "api-key"
query = "api_key"
key-env = "PARTNER_KEY""#,
            &staff_list(
                r#"list = "data"
paging = { style = "next-link", next-field = "next" }"#,
            ),
        ),
        &server.uri(),
        Credentials::ApiKey {
            place: KeyPlace::Query("api_key".into()),
            key: Secret::new(API_KEY),
        },
        ClientLimits::default(),
    );
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1, 2]));
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

const CREATE_AT_BODY_PATH: &str = r#"
[operations.staff-list]
method = "GET"
path = "/staff"
list = "data"

[operations.prospect-create]
method = "POST"
path = "/prospects"
body = "prospect"
id-from = "location"

[operations.prospect-update]
method = "PUT"
path = "/prospects/{id}"
body = "prospect"
record = "prospect"
"#;

#[tokio::test]
async fn a_write_sends_the_record_at_the_body_path_and_takes_the_id_from_location() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prospects"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({ "prospect": {
            "first_name": "Zoë",
            "last_name": "Ñúñez",
            "email": "zoe@example.org",
        } })))
        .respond_with(ResponseTemplate::new(201).insert_header("location", "/prospects/P-42"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/prospects/P-42"))
        .and(body_json(json!({ "prospect": {
            "id": "P-42",
            "first_name": "Zoë",
            "last_name": "Ñúñez-Ü",
            "email": "zoe@example.org",
        } })))
        .respond_with(ok_json(json!({ "prospect": {
            "id": "P-42",
            "first_name": "Zoë",
            "last_name": "Ñúñez-Ü",
        } })))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(profile(NO_AUTH, CREATE_AT_BODY_PATH), &server);
    // An id in the record is not sent on a create.
    let mut record = prospect();
    record.insert(Field::Id, "stale".to_owned());
    let saved = client
        .write(OperationKind::ProspectCreate, "deliver", &record, None)
        .await
        .expect("an answer");
    assert_eq!(saved.answer.status, 201);
    assert_eq!(saved.id.as_deref(), Some("P-42"));
    assert!(saved.echoed.is_none());

    record.insert(Field::LastName, "Ñúñez-Ü".to_owned());
    let updated = client
        .write(
            OperationKind::ProspectUpdate,
            "update",
            &record,
            Some("P-42"),
        )
        .await
        .expect("an answer");
    assert_eq!(updated.answer.status, 200);
    let echoed = updated.echoed.expect("the update echoes the record");
    assert_eq!(echoed[&Field::LastName], "Ñúñez-Ü");
    assert_eq!(updated.id.as_deref(), Some("P-42"));
}

#[tokio::test]
async fn the_id_is_the_last_path_segment_of_any_location_form() {
    let cases = [
        ("/prospects/P-1", "P-1"),
        ("https://partner.example/v1/prospects/P-2", "P-2"),
        ("/prospects/P-3/", "P-3"),
        ("/prospects/P-4?expand=owner#top", "P-4"),
        ("/prospects/P%205", "P 5"),
    ];
    let server = MockServer::start().await;
    let client = client(profile(NO_AUTH, CREATE_AT_BODY_PATH), &server);
    for (location, id) in cases {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path("/prospects"))
            .respond_with(ResponseTemplate::new(201).insert_header("location", location))
            .expect(1)
            .mount(&server)
            .await;
        let saved = client
            .write(OperationKind::ProspectCreate, "deliver", &prospect(), None)
            .await
            .expect("an answer");
        assert_eq!(saved.id.as_deref(), Some(id), "{location}");
        server.verify().await;
    }
}

/// A responder that answers 503 with `Retry-After: 1` first, then the staff list.
struct BusyOnce(std::sync::atomic::AtomicUsize);

impl Respond for BusyOnce {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            ResponseTemplate::new(503).insert_header("retry-after", "1")
        } else {
            ok_json(json!({ "data": staff(&[1]) }))
        }
    }
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_after_the_wait_and_both_attempts_are_recorded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(BusyOnce(Default::default()))
        .expect(2)
        .mount(&server)
        .await;
    let profile = profile(NO_AUTH, &staff_list(r#"list = "data""#));
    let client = client(profile, &server);
    let started = Instant::now();
    let outcome = sync_staff(&client).await;
    assert_eq!(outcome.failure, None);
    assert_eq!(ids(&outcome), expected_ids(&[1]));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    let exchanges = client.recorder().snapshot();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(exchanges[0].status, Some(503));
    assert_eq!(exchanges[1].retry_of, Some(exchanges[0].id));
}

#[tokio::test]
async fn retry_waits_never_outlast_the_run_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "60"))
        .mount(&server)
        .await;
    let profile = profile(NO_AUTH, &staff_list(r#"list = "data""#));
    let limits = ClientLimits {
        deadline: Some(Duration::from_millis(400)),
        ..ClientLimits::default()
    };
    let client = client_at(profile, &server.uri(), Credentials::None, limits);
    let started = Instant::now();
    let outcome = sync_staff(&client).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(outcome.failure.is_some());
}

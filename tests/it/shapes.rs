//! The shapes of real partner APIs the profile format describes: typed values, reads shaped
//! otherwise than writes, array steps, lookups' "none" answers, conflict and acknowledgement
//! answers, paging counters and links, fixed headers. Each is checked on the client side
//! against wiremock, on the server side against the mock partner, and as a whole certify run.

use crate::helpers::{client_for, mock_certify, spawn_partner};
use serde_json::{json, Value};
use spoke::auth::Credentials;
use spoke::connector::client::LookupError;
use spoke::connector::{ClientLimits, ListFailure, PartnerClient};
use spoke::model::{Field, Record, RecordKind};
use spoke::partner::Faults;
use spoke::profile::{OperationKind, Profile};
use spoke::suite::Outcome;
use std::sync::Arc;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn parse(text: &str) -> Profile {
    Profile::parse("shape.toml", text).unwrap_or_else(|error| panic!("{error}"))
}

fn client(profile: &Profile, server: &MockServer) -> PartnerClient {
    PartnerClient::new(
        Arc::new(profile.clone()),
        &server.uri(),
        Credentials::None,
        ClientLimits::default(),
    )
    .expect("a valid base URL")
}

/// A partner in the style of CRMs with typed ids: integer ids everywhere, owners written as an
/// id and read back as an object, emails in an array, a lookup answering `data: null` for
/// nobody, an acknowledgement with the id inside it, a conflict with the id in its message,
/// counters on the staff pages, a fixed API-version header and locale parameter.
const TYPED_CRM: &str = r#"
[partner]
name = "Typed CRM"
base-url = "http://127.0.0.1:9"
headers = { "Api-Version" = "2024-06", "Accept" = "application/vnd.crm+json" }
query = { locale = "en" }

[capabilities]
prospects = true
staff-owner = true
lead-source = true

[references]
source = "name"

[operations.staff-list]
method = "GET"
path = "/users"
list = "data"
paging = { style = "page-number", page-param = "page", size-param = "per_page", page-size = 10, max-page-size = 4, stop = "more-flag", more-field = "info.more", total-field = "info.count", total-pages-field = "info.pages" }

[operations.staff-lookup]
method = "GET"
path = "/users/find"
query = { term = "{email}" }
answer = "list"
list = "data"
none = ["null-list", "empty-list"]

[operations.source-list]
method = "GET"
path = "/leadSources"
list = "data"

[operations.prospect-create]
method = "POST"
path = "/persons"
body = "data[0]"
answer = "acknowledgement"
id-at = "data[0].details.id"
conflict = { status = 409, id-at = "message", pattern = "Person already exists. Existing ID: {id}" }

[operations.prospect-update]
method = "PATCH"
path = "/persons/{id}"
body = "data[0]"
answer = "acknowledgement"

[operations.prospect-read]
method = "GET"
path = "/persons/{id}"
record = "data[0]"

[records.staff.fields]
id = { path = "id", type = "integer" }
email = "email"
first-name = "first_name"

[records.source.fields]
name = { write = "name", read = "." }

[records.prospect.fields]
id = { read = "id", type = "integer" }
external-id = "external_id"
first-name = "first_name"
last-name = "last_name"
status = { path = "active_flag", type = "boolean" }
email = "email[?primary].value"
mobile-phone = "phone[label=mobile].value"
home-phone = "phone[label=home].value"
owner = { write = "owner_id", read = "owner.id", type = "integer" }
source = "lead_source"

[records.prospect.values]
status = { active = "true", inactive = "false" }
"#;

#[tokio::test]
async fn typed_values_selectors_and_fixed_headers_reach_the_wire() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/persons"))
        .and(query_param("locale", "en"))
        .and(header("api-version", "2024-06"))
        .and(header("accept", "application/vnd.crm+json"))
        .and(body_partial_json(json!({"data": [{
            "owner_id": 42,
            "active_flag": true,
            "email": [{"primary": true, "value": "ana@example.org"}],
            "phone": [{"label": "mobile", "value": "+49 151"}],
        }]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "data": [{"code": "SUCCESS", "details": {"id": 1007}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let profile = parse(TYPED_CRM);
    let record = Record::from([
        (Field::FirstName, "Ana".to_owned()),
        (Field::LastName, "López".to_owned()),
        (Field::Status, "active".to_owned()),
        (Field::Email, "ana@example.org".to_owned()),
        (Field::MobilePhone, "+49 151".to_owned()),
        (Field::Owner, "42".to_owned()),
    ]);
    let saved = client(&profile, &server)
        .write(OperationKind::ProspectCreate, "deliver", &record, None)
        .await
        .unwrap();
    assert!(saved.accepted());
    assert_eq!(saved.id.as_deref(), Some("1007"));
    // An acknowledgement is not the record: nothing of it is judged as stored.
    assert_eq!(saved.echoed, None);
}

#[tokio::test]
async fn a_declared_conflict_is_accepted_with_the_id_found_in_its_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/persons"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "status": "error",
            "message": "Person already exists. Existing ID: 51",
            "category": "CONFLICT"
        })))
        .mount(&server)
        .await;
    let profile = parse(TYPED_CRM);
    let record = Record::from([
        (Field::FirstName, "Ana".to_owned()),
        (Field::LastName, "López".to_owned()),
    ]);
    let saved = client(&profile, &server)
        .write(OperationKind::ProspectCreate, "deliver", &record, None)
        .await
        .unwrap();
    assert!(saved.conflict && saved.accepted());
    assert_eq!(saved.id.as_deref(), Some("51"));
}

#[tokio::test]
async fn an_undeclared_409_stays_a_rejection() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"message": "nope"})))
        .mount(&server)
        .await;
    let text = TYPED_CRM.replace(
        "conflict = { status = 409, id-at = \"message\", pattern = \"Person already exists. Existing ID: {id}\" }",
        "",
    );
    let profile = parse(&text);
    let saved = client(&profile, &server)
        .write(
            OperationKind::ProspectCreate,
            "deliver",
            &Record::from([
                (Field::FirstName, "A".into()),
                (Field::LastName, "B".into()),
            ]),
            None,
        )
        .await
        .unwrap();
    assert!(!saved.conflict && !saved.accepted());
}

#[tokio::test]
async fn a_read_shaped_otherwise_than_the_write_reads_the_owner_back() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/persons/1007"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
            "id": 1007,
            "first_name": "Ana",
            "last_name": "López",
            "active_flag": false,
            "owner": {"id": 42, "name": "Coach", "email": "coach@club.example"},
            "email": [{"value": "old@example.org"}, {"value": "ana@example.org", "primary": true}],
        }]})))
        .mount(&server)
        .await;
    let profile = parse(TYPED_CRM);
    let (_, record) = client(&profile, &server)
        .read(RecordKind::Prospect, "1007", "read back")
        .await
        .unwrap();
    let record = record.expect("a readable record");
    assert_eq!(record[&Field::Owner], "42");
    assert_eq!(record[&Field::Id], "1007");
    assert_eq!(record[&Field::Status], "inactive");
    assert_eq!(record[&Field::Email], "ana@example.org");
}

async fn lookup_answering(
    profile: &Profile,
    answer: ResponseTemplate,
) -> Result<Option<Record>, LookupError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/find"))
        .respond_with(answer)
        .mount(&server)
        .await;
    client(profile, &server)
        .lookup_staff("nobody@club.example", "lookup")
        .await
        .map(|(_, record)| record)
}

#[tokio::test]
async fn every_declared_none_answer_means_nobody_and_an_undeclared_one_is_named() {
    let profile = parse(TYPED_CRM);
    for body in [json!({"data": null}), json!({"data": []}), json!({})] {
        let found = lookup_answering(
            &profile,
            ResponseTemplate::new(200).set_body_json(body.clone()),
        )
        .await;
        assert!(matches!(found, Ok(None)), "{body}: {found:?}");
    }
    let refused = lookup_answering(&profile, ResponseTemplate::new(404)).await;
    match refused {
        Err(LookupError::Shape(_, message)) => {
            assert!(
                message.contains("HTTP 404") && message.contains("null-list"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // The same partner declaring 204 and a found flag.
    let flagged = TYPED_CRM.replace(
        "none = [\"null-list\", \"empty-list\"]",
        "none = [\"no-content\", \"flag\"]\nfound-field = \"found\"",
    );
    let profile = parse(&flagged);
    assert!(matches!(
        lookup_answering(&profile, ResponseTemplate::new(204)).await,
        Ok(None)
    ));
    assert!(matches!(
        lookup_answering(
            &profile,
            ResponseTemplate::new(200).set_body_json(json!({"found": false, "data": []}))
        )
        .await,
        Ok(None)
    ));
    let found = lookup_answering(
        &profile,
        ResponseTemplate::new(200)
            .set_body_json(json!({"found": true, "data": [{"id": 3, "email": "a@b.example"}]})),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(found[&Field::Id], "3");
}

/// A staff list whose pages state counters: `pages` of `size` records, the last one short.
fn counted_page(page: u64, size: u64, total: u64, stated_pages: u64, stated_total: u64) -> Value {
    let first = (page - 1) * size;
    let items: Vec<Value> = (first..(first + size).min(total))
        .map(|n| json!({"id": n + 1, "email": format!("c{n}@club.example")}))
        .collect();
    json!({"data": items, "info": {"more": page * size < total, "count": stated_total, "pages": stated_pages}})
}

#[tokio::test]
async fn pages_shorter_than_asked_are_followed_and_checked_against_the_counters() {
    // The partner caps pages at 4 though 10 are asked: every page is short, none is the end.
    let server = MockServer::start().await;
    for page in 1..=3u64 {
        Mock::given(method("GET"))
            .and(path("/users"))
            .and(query_param("page", page.to_string()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(counted_page(page, 4, 10, 3, 10)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let profile = parse(TYPED_CRM);
    let outcome = client(&profile, &server)
        .list_all(OperationKind::StaffList, "staff sync")
        .await;
    assert_eq!(outcome.failure, None);
    assert_eq!(outcome.records.len(), 10);
}

#[tokio::test]
async fn a_total_the_pages_do_not_reach_fails_the_walk() {
    let server = MockServer::start().await;
    for page in 1..=3u64 {
        Mock::given(method("GET"))
            .and(path("/users"))
            .and(query_param("page", page.to_string()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(counted_page(page, 4, 10, 3, 11)),
            )
            .mount(&server)
            .await;
    }
    let profile = parse(TYPED_CRM);
    let outcome = client(&profile, &server)
        .list_all(OperationKind::StaffList, "staff sync")
        .await;
    match outcome.failure {
        Some(ListFailure::Incomplete { message, .. }) => {
            assert!(
                message.contains("states 11") && message.contains("held 10"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_page_count_one_short_is_caught_by_the_page_after_it() {
    let server = MockServer::start().await;
    for page in 1..=3u64 {
        Mock::given(method("GET"))
            .and(path("/staff"))
            .and(query_param("page", page.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(counted_page(page, 2, 5, 2, 5)))
            .mount(&server)
            .await;
    }
    let text = TYPED_CRM.replace(
        "path = \"/users\"\nlist = \"data\"\npaging = { style = \"page-number\", page-param = \"page\", size-param = \"per_page\", page-size = 10, max-page-size = 4, stop = \"more-flag\", more-field = \"info.more\", total-field = \"info.count\", total-pages-field = \"info.pages\" }",
        "path = \"/staff\"\nlist = \"data\"\npaging = { style = \"page-number\", page-param = \"page\", size-param = \"per_page\", page-size = 2, stop = \"total-pages\", total-pages-field = \"info.pages\" }",
    );
    let profile = parse(&text);
    let outcome = client(&profile, &server)
        .list_all(OperationKind::StaffList, "staff sync")
        .await;
    // Every record is still read, and the walk says the counter lied.
    assert_eq!(outcome.records.len(), 5);
    match outcome.failure {
        Some(ListFailure::Incomplete { message, .. }) => {
            assert!(message.contains("page count"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn link_headers_lead_from_page_to_page() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/staff"))
        .and(query_param("after", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"id": 3, "email": "c@x.example"}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!("<{base}/staff?after=0>; rel=\"prev\", <{base}/staff?after=2>; rel=\"next\"").as_str(),
                )
                .set_body_json(json!([{"id": 1, "email": "a@x.example"}, {"id": 2, "email": "b@x.example"}])),
        )
        .mount(&server)
        .await;
    let text = TYPED_CRM.replace(
        "path = \"/users\"\nlist = \"data\"\npaging = { style = \"page-number\", page-param = \"page\", size-param = \"per_page\", page-size = 10, max-page-size = 4, stop = \"more-flag\", more-field = \"info.more\", total-field = \"info.count\", total-pages-field = \"info.pages\" }",
        "path = \"/staff\"\npaging = { style = \"link-header\" }",
    );
    let profile = parse(&text);
    let outcome = client(&profile, &server)
        .list_all(OperationKind::StaffList, "staff sync")
        .await;
    assert_eq!(outcome.failure, None);
    let ids: Vec<&str> = outcome
        .records
        .iter()
        .map(|r| r[&Field::Id].as_str())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
}

#[test]
fn link_targets_follow_rfc_8288() {
    use spoke::connector::client::link_target;
    let header = r#"<https://a.example/x?page=1>; rel="prev first", <https://a.example/x?page=3>; title="a, b"; rel="next last""#;
    assert_eq!(
        link_target([header], "next").as_deref(),
        Some("https://a.example/x?page=3")
    );
    assert_eq!(link_target([header], "up"), None);
    assert_eq!(
        link_target(["<a>; rel=prev", "</b>;rel=next"], "NEXT").as_deref(),
        Some("/b")
    );
    assert_eq!(link_target(["garbage <"], "next"), None);
}

// ---------------------------------------------------------------------------------------------
// The mock partner serves the same shapes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_mock_refuses_a_string_where_an_integer_belongs_and_a_missing_fixed_header() {
    let profile = parse(TYPED_CRM);
    let (running, _) = spawn_partner(&profile).await;
    let http = reqwest::Client::new();
    let url = format!("{}/persons?locale=en", running.base_url());
    let body = json!({"data": [{"first_name": "A", "last_name": "B", "owner_id": "42"}]});
    let answer = http
        .post(&url)
        .header("api-version", "2024-06")
        .header("accept", "application/vnd.crm+json")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("owner_id") && text.contains("an integer"),
        "{text}"
    );
    let answer = http
        .post(&url)
        .header("accept", "application/vnd.crm+json")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let text = answer.text().await.unwrap();
    assert!(text.contains("Api-Version"), "{text}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn the_mock_numbers_its_records_and_answers_what_the_profile_declares() {
    let profile = parse(TYPED_CRM);
    let (running, credentials) = spawn_partner(&profile).await;
    let client = client_for(&profile, &running, &credentials);
    let staff = client
        .list_all(OperationKind::StaffList, "staff sync")
        .await;
    assert_eq!(staff.failure, None, "{:?}", staff.failure);
    assert!(staff
        .records
        .iter()
        .all(|r| r[&Field::Id].bytes().all(|b| b.is_ascii_digit())));
    let owner = staff.records[0][&Field::Id].clone();
    let record = Record::from([
        (Field::FirstName, "Ana".to_owned()),
        (Field::LastName, "López".to_owned()),
        (Field::ExternalId, "IT-1".to_owned()),
        (Field::Owner, owner.clone()),
    ]);
    let first = client
        .write(OperationKind::ProspectCreate, "deliver", &record, None)
        .await
        .unwrap();
    let id = first.id.clone().expect("an id in the acknowledgement");
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    // Sent again with the same external id: the declared conflict, naming the same record.
    let again = client
        .write(OperationKind::ProspectCreate, "resend", &record, None)
        .await
        .unwrap();
    assert!(again.conflict, "{:?}", again.answer);
    assert_eq!(again.id.as_deref(), Some(id.as_str()));
    let (_, read) = client
        .read(RecordKind::Prospect, &id, "read back")
        .await
        .unwrap();
    assert_eq!(read.unwrap()[&Field::Owner], owner);
    // Nobody answers as declared first: `data: null`.
    let (_, nobody) = client
        .lookup_staff("nobody@club.example", "lookup")
        .await
        .unwrap();
    assert_eq!(nobody, None);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_profile_of_every_new_shape_certifies_clean_against_its_mock() {
    let profile = parse(TYPED_CRM);
    for seed in [1, 2, 3] {
        let report =
            spoke::certify::certify(mock_certify(profile.clone(), Faults::none(), seed), &())
                .await
                .unwrap();
        let bad: Vec<String> = report
            .verdicts
            .iter()
            .filter(|v| {
                matches!(
                    v.outcome,
                    Outcome::Fail | Outcome::Warn | Outcome::Error | Outcome::Inconclusive
                )
            })
            .map(|v| format!("{} {:?}: {}", v.rule, v.outcome, v.reason))
            .collect();
        assert!(bad.is_empty(), "seed {seed}: {bad:#?}");
        assert_eq!(report.exit_code, 0);
    }
}

/// Owners written by email and read back as ids; sources written by name and read back as ids.
const READ_BY_ID: &str = r#"
[partner]
name = "Read By Id"
base-url = "http://127.0.0.1:9"

[capabilities]
prospects = true
staff-owner = true
lead-source = true

[references]
owner = "email"
owner-read = "id"
source = "name"
source-read = "id"

[operations.staff-list]
method = "GET"
path = "/staff"

[operations.source-list]
method = "GET"
path = "/sources"

[operations.prospect-save]
method = "POST"
path = "/leads"

[operations.prospect-read]
method = "GET"
path = "/leads/{id}"

[records.staff.fields]
id = "id"
email = "email"

[records.source.fields]
id = "id"
name = "label"

[records.prospect.fields]
id = "id"
first-name = "first"
last-name = "last"
owner = { write = "owner_email", read = "owner_id" }
source = { write = "source_name", read = "source_id" }
"#;

#[tokio::test]
async fn owners_and_sources_read_back_by_id_are_judged_by_id() {
    let profile = parse(READ_BY_ID);
    for seed in [4, 5] {
        let report =
            spoke::certify::certify(mock_certify(profile.clone(), Faults::none(), seed), &())
                .await
                .unwrap();
        let bad: Vec<String> = report
            .verdicts
            .iter()
            .filter(|v| matches!(v.outcome, Outcome::Fail | Outcome::Warn | Outcome::Error))
            .map(|v| format!("{} {:?}: {}", v.rule, v.outcome, v.reason))
            .collect();
        assert!(bad.is_empty(), "seed {seed}: {bad:#?}");
    }
    // And an owner dropped on the way is still caught.
    let faults: Faults = [spoke::partner::Fault::DropOwner].into_iter().collect();
    let report = spoke::certify::certify(mock_certify(profile, faults, 4), &())
        .await
        .unwrap();
    let failed: Vec<&str> = report
        .verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Fail)
        .map(|v| v.rule.as_str())
        .collect();
    assert!(failed.contains(&"STAFF-004"), "{failed:?}");
}

#[tokio::test]
async fn each_fault_of_a_new_shape_fails_exactly_its_rules() {
    use spoke::partner::Fault;
    let profile = parse(TYPED_CRM);
    for fault in [
        Fault::StaffLookupUndeclaredNone,
        Fault::StaffPageCountShort,
        Fault::StaffTotalOverstated,
        Fault::ConflictNamesAnotherRecord,
    ] {
        assert!(fault.applies_to(&profile), "{fault}");
        let report = spoke::certify::certify(
            mock_certify(profile.clone(), [fault].into_iter().collect(), 3),
            &(),
        )
        .await
        .unwrap();
        let caught: std::collections::BTreeSet<String> = report
            .verdicts
            .iter()
            .filter(|v| matches!(v.outcome, Outcome::Fail | Outcome::Warn))
            .map(|v| v.rule.clone())
            .collect();
        assert_eq!(caught, fault.expected(&profile), "{fault}");
    }
}

/// A staff lookup on the list's own route, told apart by its query: a filter parameter, and
/// (as query languages do) one parameter whose text differs.
fn lookup_on_the_list_route(list_query: &str, lookup_query: &str) -> String {
    format!(
        r#"
[partner]
name = "Filtered List"
base-url = "http://127.0.0.1:9"

[capabilities]
prospects = true
staff-owner = true

[operations.staff-list]
method = "GET"
path = "/users"
{list_query}
list = "items"

[operations.staff-lookup]
method = "GET"
path = "/users"
{lookup_query}
answer = "list"
list = "items"

[operations.prospect-save]
method = "POST"
path = "/leads"

[records.staff.fields]
id = "id"
email = "email"

[records.prospect.fields]
id = "id"
first-name = "first"
last-name = "last"
owner = "owner_id"
"#
    )
}

#[tokio::test]
async fn a_lookup_filtering_the_list_route_is_told_apart_by_its_query() {
    for (list, lookup) in [
        ("", "query = { email = \"{email}\" }"),
        (
            "query = { q = \"SELECT Id, Email FROM User WHERE IsActive = true\" }",
            "query = { q = \"SELECT Id, Email FROM User WHERE Email = '{email}'\" }",
        ),
    ] {
        let profile = parse(&lookup_on_the_list_route(list, lookup));
        let report = spoke::certify::certify(mock_certify(profile, Faults::none(), 2), &())
            .await
            .unwrap();
        let lookup_verdict = report
            .verdicts
            .iter()
            .find(|v| v.rule == "STAFF-005")
            .unwrap();
        assert_eq!(
            lookup_verdict.outcome,
            Outcome::Pass,
            "{}",
            lookup_verdict.reason
        );
        assert_eq!(report.exit_code, 0);
    }
    // A list whose query the lookup's would also take cannot be told apart from it.
    let same =
        lookup_on_the_list_route("query = { q = \"active\" }", "query = { q = \"{email}\" }");
    let error = Profile::parse("same.toml", &same).unwrap_err().to_string();
    assert!(error.contains("could not be told apart"), "{error}");
}

#[tokio::test]
async fn a_second_secret_header_is_sent_checked_and_never_shown() {
    let text = READ_BY_ID.replace(
        "[capabilities]",
        "[auth]\nscheme = \"api-key\"\nheader = \"x-api-key\"\nkey-env = \"SHAPE_KEY\"\nmore-headers = { \"x-api-token\" = \"SHAPE_TOKEN\" }\n\n[capabilities]",
    );
    let profile = parse(&text);
    let credentials = Credentials::generated(&profile.auth, 7);
    assert_eq!(credentials.headers().len(), 2);
    let report = spoke::certify::certify(mock_certify(profile.clone(), Faults::none(), 4), &())
        .await
        .unwrap();
    assert_eq!(report.exit_code, 0);
    let sec = report
        .verdicts
        .iter()
        .find(|v| v.rule == "SEC-001")
        .unwrap();
    assert_eq!(sec.outcome, Outcome::Pass, "{}", sec.reason);
    // One of the two right is still refused by the mock.
    let (running, credentials) = spawn_partner(&profile).await;
    let key = credentials.headers()[0].clone();
    let answer = reqwest::Client::new()
        .get(format!("{}/staff", running.base_url()))
        .header(key.0.as_str(), key.1.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    running.stop().await.unwrap();
    // Neither value ever shows in the evidence.
    let json = serde_json::to_string(&report.exchanges).unwrap();
    for (_, value) in Credentials::generated(&profile.auth, 4).headers() {
        assert!(!json.contains(&value), "{value} leaked");
    }
}

/// Prospects and members in one resource, told apart by a lifecycle field.
const ONE_RESOURCE: &str = r#"
[partner]
name = "One Resource"
base-url = "http://127.0.0.1:9"

[capabilities]
prospects = true
members = true

[operations.prospect-create]
method = "POST"
path = "/contacts"
record = "data"

[operations.prospect-update]
method = "PATCH"
path = "/contacts/{id}"
record = "data"

[operations.prospect-read]
method = "GET"
path = "/contacts/{id}"
record = "data"

[operations.member-create]
method = "POST"
path = "/contacts"
record = "data"

[operations.member-update]
method = "PATCH"
path = "/contacts/{id}"
record = "data"

[operations.member-read]
method = "GET"
path = "/contacts/{id}"
record = "data"

[records.prospect.fields]
id = "id"
external-id = "ref"
first-name = "first"
last-name = "last"
status = "status"

[records.prospect.fixed]
lifecycle = "lead"

[records.member.fields]
id = "id"
external-id = "ref"
first-name = "first"
last-name = "last"
status = "status"

[records.member.fixed]
lifecycle = "customer"
"#;

#[tokio::test]
async fn prospects_and_members_sharing_a_resource_are_told_apart_by_a_field() {
    let profile = parse(ONE_RESOURCE);
    let report = spoke::certify::certify(mock_certify(profile.clone(), Faults::none(), 6), &())
        .await
        .unwrap();
    let bad: Vec<String> = report
        .verdicts
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::Fail | Outcome::Warn | Outcome::Error))
        .map(|v| format!("{} {:?}: {}", v.rule, v.outcome, v.reason))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // Each kind lands in its own store.
    let (running, credentials) = spawn_partner(&profile).await;
    let client = client_for(&profile, &running, &credentials);
    let member = Record::from([
        (Field::FirstName, "Ana".to_owned()),
        (Field::LastName, "López".to_owned()),
    ]);
    let saved = client
        .write(OperationKind::MemberCreate, "member", &member, None)
        .await
        .unwrap();
    assert!(saved.accepted());
    assert_eq!(running.state.store().read().members.len(), 1);
    assert_eq!(running.state.store().read().prospects.len(), 0);
    running.stop().await.unwrap();
    // Without a field to tell them apart, the profile is refused and says what would.
    let text = ONE_RESOURCE.replace("lifecycle = \"customer\"", "lifecycle = \"lead\"");
    let error = Profile::parse("same.toml", &text).unwrap_err().to_string();
    assert!(error.contains("may share it"), "{error}");
}

#[tokio::test]
async fn a_partner_taking_its_own_spelling_gets_it_and_refuses_another() {
    let text = READ_BY_ID.replace(
        "source-read = \"id\"",
        "source-read = \"id\"\nsource-spelling = \"partner\"",
    );
    let profile = parse(&text);
    let report = spoke::certify::certify(mock_certify(profile.clone(), Faults::none(), 5), &())
        .await
        .unwrap();
    assert_eq!(report.exit_code, 0);
    let src006 = report
        .verdicts
        .iter()
        .find(|v| v.rule == "SRC-006")
        .unwrap();
    assert_eq!(src006.outcome, Outcome::Skip);
    let (running, credentials) = spawn_partner(&profile).await;
    let client = client_for(&profile, &running, &credentials);
    let lead = |source: &str| {
        Record::from([
            (Field::FirstName, "Ana".to_owned()),
            (Field::LastName, "López".to_owned()),
            (Field::Source, source.to_owned()),
        ])
    };
    let exact = client
        .write(
            OperationKind::ProspectSave,
            "exact",
            &lead("İstanbul Expo"),
            None,
        )
        .await
        .unwrap();
    assert!(exact.accepted(), "{:?}", exact.answer);
    let other = client
        .write(
            OperationKind::ProspectSave,
            "other",
            &lead("İSTANBUL EXPO"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(other.answer.status, 422);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn creates_on_a_shared_route_may_be_told_apart_by_their_own_params() {
    let text = ONE_RESOURCE
        .replace("\n[records.prospect.fixed]\nlifecycle = \"lead\"\n", "\n")
        .replace("\n[records.member.fixed]\nlifecycle = \"customer\"\n", "\n")
        .replacen(
            "[operations.prospect-create]\nmethod = \"POST\"\npath = \"/contacts\"\nrecord = \"data\"",
            "[operations.prospect-create]\nmethod = \"POST\"\npath = \"/contacts\"\nrecord = \"data\"\nparams = { lead_status = \"LEAD\" }",
            1,
        )
        .replacen(
            "[operations.member-create]\nmethod = \"POST\"\npath = \"/contacts\"\nrecord = \"data\"",
            "[operations.member-create]\nmethod = \"POST\"\npath = \"/contacts\"\nrecord = \"data\"\nparams = { lead_status = \"MEMBER\" }",
            1,
        );
    let profile = parse(&text);
    let report = spoke::certify::certify(mock_certify(profile.clone(), Faults::none(), 6), &())
        .await
        .unwrap();
    assert_eq!(report.exit_code, 0, "{:#?}", report.verdicts);
    let (running, credentials) = spawn_partner(&profile).await;
    let client = client_for(&profile, &running, &credentials);
    let member = Record::from([
        (Field::FirstName, "Ana".to_owned()),
        (Field::LastName, "López".to_owned()),
    ]);
    client
        .write(OperationKind::MemberCreate, "member", &member, None)
        .await
        .unwrap();
    assert_eq!(running.state.store().read().members.len(), 1);
    running.stop().await.unwrap();
}

#[test]
fn faults_about_source_ids_do_not_apply_to_sources_known_by_name_alone() {
    use spoke::partner::Fault;
    // TYPED_CRM lists its sources as plain names, with no create: add one.
    let text = TYPED_CRM.replace(
        "[operations.prospect-create]",
        "[operations.source-create]\nmethod = \"POST\"\npath = \"/leadSources\"\nanswer = \"acknowledgement\"\n\n[operations.prospect-create]",
    );
    let profile = parse(&text);
    assert!(Fault::SourceCreateNoPersist.applies_to(&profile));
    assert!(!Fault::SourceCreateWrongId.applies_to(&profile));
    assert!(!Fault::SourceCreateNoId.applies_to(&profile));
}

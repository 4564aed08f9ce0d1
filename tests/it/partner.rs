//! The mock partner, driven through each fixture profile's operations as a client sees them.

use crate::helpers::{client_for, fixture_profiles, spawn_partner};
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use spoke::auth::Credentials;
use spoke::model::{Field, Record, RecordKind};
use spoke::partner::{self, PartnerState, Sandbox};
use spoke::profile::{OperationKind, OwnerReference, Profile, SourceReference};
use std::collections::BTreeSet;
use tower::ServiceExt;

fn prospect(profile: &Profile, tag: &str) -> Record {
    let mut record = Record::from([
        (Field::FirstName, format!("Zoë-{tag}")),
        (Field::LastName, "Ñúñez".to_owned()),
        (Field::Email, format!("zoe.{tag}@example.org")),
    ]);
    for (field, value) in [
        (Field::Type, "prospect"),
        (Field::Status, "active"),
        (Field::Gender, "F"),
        (Field::BirthDate, "1990-04-01"),
        (Field::City, "Köln"),
        (Field::MobilePhone, "+49 170 1234567"),
        (Field::Company, "Straße & Söhne"),
        (Field::TrialStart, "2026-12-01"),
        (Field::TrialEnd, "2026-12-14"),
    ] {
        if profile.codec(RecordKind::Prospect).path(field).is_some()
            || profile.codec(RecordKind::Member).path(field).is_some()
        {
            record.insert(field, value.to_owned());
        }
    }
    record
}

fn kept_fields(profile: &Profile, kind: RecordKind, record: &Record) -> Record {
    record
        .iter()
        .filter(|(field, _)| profile.codec(kind).path(**field).is_some())
        .map(|(field, value)| (*field, value.clone()))
        .collect()
}

#[tokio::test]
async fn each_fixture_serves_its_whole_staff_list_across_pages() {
    let sandbox = Sandbox::default_seed();
    for (name, profile) in fixture_profiles() {
        if profile.operation(OperationKind::StaffList).is_none() {
            continue;
        }
        let (running, credentials) = spawn_partner(&profile).await;
        let client = client_for(&profile, &running, &credentials);
        let outcome = client.list_all(OperationKind::StaffList, "staff").await;
        assert_eq!(outcome.failure, None, "{name}");
        assert_eq!(outcome.records.len(), sandbox.staff.len(), "{name}");
        let paged = profile
            .operation(OperationKind::StaffList)
            .and_then(|operation| operation.paging.as_ref())
            .is_some_and(|paging| paging.style != spoke::profile::PagingStyle::None);
        // Pages smaller than the sandbox's staff take several requests.
        let page_size = profile
            .operation(OperationKind::StaffList)
            .and_then(|operation| operation.paging.as_ref())
            .and_then(|paging| {
                paging
                    .max_page_size
                    .min(paging.page_size)
                    .or(paging.page_size)
            })
            .unwrap_or(50) as usize;
        if paged && page_size < sandbox.staff.len() {
            assert!(
                outcome.exchanges.len() > 1,
                "{name}: expected several pages"
            );
        } else if paged {
            assert!(
                outcome.exchanges.len() <= 2,
                "{name}: one page, and the one after it"
            );
        } else {
            assert_eq!(outcome.exchanges.len(), 1, "{name}: one unpaged answer");
        }
        let ids: BTreeSet<_> = outcome
            .records
            .iter()
            .map(|r| r[&Field::Id].clone())
            .collect();
        assert_eq!(ids.len(), sandbox.staff.len(), "{name}: ids repeat");
        assert_eq!(
            outcome
                .records
                .iter()
                .filter(|r| !r.contains_key(&Field::Email))
                .count(),
            sandbox.staff.iter().filter(|s| s.email.is_none()).count(),
            "{name}"
        );
    }
}

/// The id the partner's staff list gives the staff member with `email`.
async fn partner_id_of(client: &spoke::connector::PartnerClient, email: &str) -> String {
    let list = client.list_all(OperationKind::StaffList, "staff").await;
    list.records
        .iter()
        .find(|r| r.get(&Field::Email).map(String::as_str) == Some(email))
        .map(|r| r[&Field::Id].clone())
        .expect("the sandbox has the staff member")
}

/// The id the partner's source list gives the source named `name`.
async fn partner_source_id(client: &spoke::connector::PartnerClient, name: &str) -> String {
    let list = client.list_all(OperationKind::SourceList, "sources").await;
    list.records
        .iter()
        .find(|r| r.get(&Field::Name).map(String::as_str) == Some(name))
        .map(|r| r[&Field::Id].clone())
        .expect("the sandbox has the source")
}

#[tokio::test]
async fn lookups_ignore_email_case_and_answer_none_for_unknown_emails() {
    for (name, profile) in fixture_profiles() {
        if profile.operation(OperationKind::StaffLookup).is_none() {
            continue;
        }
        let (running, credentials) = spawn_partner(&profile).await;
        let client = client_for(&profile, &running, &credentials);
        let (_, found) = client
            .lookup_staff("MARIA.SCHMIDT@partner-club.EXAMPLE", "lookup")
            .await
            .unwrap_or_else(|error| panic!("{name}: {error:?}"));
        // The id the partner's own list gives that staff member (numbered where its ids are).
        let listed = partner_id_of(&client, "Maria.Schmidt@Partner-Club.example").await;
        assert_eq!(found.unwrap()[&Field::Id], listed, "{name}");
        let (_, none) = client
            .lookup_staff("nobody@nowhere.example", "lookup")
            .await
            .unwrap_or_else(|error| panic!("{name}: {error:?}"));
        assert_eq!(none, None, "{name}");
    }
}

#[tokio::test]
async fn created_sources_appear_in_the_list_once() {
    for (name, profile) in fixture_profiles() {
        if profile.operation(OperationKind::SourceCreate).is_none() {
            continue;
        }
        let (running, credentials) = spawn_partner(&profile).await;
        let client = client_for(&profile, &running, &credentials);
        let source = Record::from([(Field::Name, "Zumba Straße Day".to_owned())]);
        let created = client
            .write(OperationKind::SourceCreate, "create source", &source, None)
            .await
            .unwrap();
        assert_eq!(created.answer.status, 201, "{name}");
        let id = created.id.unwrap_or_else(|| panic!("{name}: no id"));
        let variant = Record::from([(Field::Name, "ZUMBA STRASSE DAY".to_owned())]);
        let again = client
            .write(
                OperationKind::SourceCreate,
                "create source again",
                &variant,
                None,
            )
            .await
            .unwrap();
        assert_eq!(again.id.as_deref(), Some(id.as_str()), "{name}: duplicated");
        let sources = running.state.store().read().sources.clone();
        assert_eq!(sources.iter().filter(|s| s.id == id).count(), 1, "{name}");
        if profile.operation(OperationKind::SourceList).is_some() {
            let listed = client.list_all(OperationKind::SourceList, "sources").await;
            assert_eq!(listed.failure, None, "{name}");
            assert!(listed.records.iter().any(|r| r[&Field::Id] == id), "{name}");
        }
    }
}

#[tokio::test]
async fn records_are_created_updated_in_place_and_read_back() {
    for (name, profile) in fixture_profiles() {
        for kind in [RecordKind::Prospect, RecordKind::Member] {
            if !profile.carries(kind) {
                continue;
            }
            let (running, credentials) = spawn_partner(&profile).await;
            let client = client_for(&profile, &running, &credentials);
            let mut record = prospect(&profile, "rt");
            if kind == RecordKind::Member {
                record.insert(Field::Type, "member".into());
                record.remove(&Field::TrialStart);
                record.remove(&Field::TrialEnd);
            }
            let record = kept_fields(&profile, kind, &record);
            let create = profile.create_operation(kind).unwrap();
            let saved = client.write(create, "create", &record, None).await.unwrap();
            assert!(
                saved.answer.is_success(),
                "{name} {kind}: {:?}",
                saved.answer
            );
            let id = saved.id.unwrap_or_else(|| panic!("{name} {kind}: no id"));
            if let Some(location) = &saved.answer.location {
                // Ids such as `P-000001` need no encoding in a path segment.
                assert!(
                    location.ends_with(&format!("/{id}")),
                    "{name} {kind}: Location {location} does not end in the id `{id}` as it is"
                );
            }
            let mut changed = record.clone();
            changed.insert(Field::LastName, "Øster-Großmann".into());
            let update = profile.update_operation(kind).unwrap();
            let updated = client
                .write(update, "update", &changed, Some(&id))
                .await
                .unwrap();
            // The record, or an acknowledgement (204 with nothing in it) where the profile says.
            assert!(
                matches!(updated.answer.status, 200 | 204),
                "{name} {kind}: {}",
                updated.answer.status
            );
            let stored = running.state.store().read().records(kind).unwrap().len();
            assert_eq!(stored, 1, "{name} {kind}: the update created a duplicate");
            if profile.read_operation(kind).is_some() {
                let (answer, read) = client.read(kind, &id, "read").await.unwrap();
                assert_eq!(answer.status, 200);
                let mut read = read.unwrap();
                read.remove(&Field::Id);
                assert_eq!(read, changed, "{name} {kind}");
            }
        }
    }
}

#[tokio::test]
async fn prospects_without_owner_or_source_are_accepted() {
    for (name, profile) in fixture_profiles() {
        if !profile.carries(RecordKind::Prospect) {
            continue;
        }
        let (running, credentials) = spawn_partner(&profile).await;
        let client = client_for(&profile, &running, &credentials);
        let record = kept_fields(&profile, RecordKind::Prospect, &prospect(&profile, "bare"));
        let create = profile.create_operation(RecordKind::Prospect).unwrap();
        let saved = client
            .write(create, "unowned", &record, None)
            .await
            .unwrap();
        assert_eq!(saved.answer.status, 201, "{name}");
        let stored = running
            .state
            .store()
            .read()
            .prospects
            .values()
            .next()
            .map(|stored| stored.unpack())
            .unwrap();
        assert!(!stored.contains_key(&Field::Owner) && !stored.contains_key(&Field::Source));
    }
}

#[tokio::test]
async fn owners_and_sources_by_reference_resolve_ignoring_case() {
    for (name, profile) in fixture_profiles() {
        if !(profile.capabilities.staff_owner && profile.capabilities.lead_source) {
            continue;
        }
        if profile.operation(OperationKind::SourceList).is_none() {
            continue;
        }
        let (running, credentials) = spawn_partner(&profile).await;
        let client = client_for(&profile, &running, &credentials);
        let mut record = kept_fields(&profile, RecordKind::Prospect, &prospect(&profile, "ref"));
        let owner_id = partner_id_of(&client, "Maria.Schmidt@Partner-Club.example").await;
        let source_id = partner_source_id(&client, "İstanbul Expo").await;
        let owner = match profile.references.owner {
            OwnerReference::Id => owner_id.clone(),
            OwnerReference::Email => "maria.schmidt@PARTNER-CLUB.example".to_owned(),
        };
        let source = match profile.references.source {
            SourceReference::Id => source_id.clone(),
            SourceReference::Name if profile.references.resolves_source_names() => {
                "İSTANBUL EXPO".to_owned()
            }
            SourceReference::Name => "İstanbul Expo".to_owned(),
        };
        record.insert(Field::Owner, owner);
        record.insert(Field::Source, source);
        let create = profile.create_operation(RecordKind::Prospect).unwrap();
        let saved = client.write(create, "owned", &record, None).await.unwrap();
        assert!(saved.accepted(), "{name}: {:?}", saved.answer.json);
        let stored = running
            .state
            .store()
            .read()
            .prospects
            .values()
            .next()
            .map(|stored| stored.unpack())
            .unwrap();
        assert_eq!(stored[&Field::Owner], owner_id, "{name}");
        // Stored under the partner's own id, however it was named.
        let stored_source = running
            .state
            .store()
            .read()
            .sources
            .iter()
            .find(|s| s.name == "İstanbul Expo")
            .map(|s| s.id.clone());
        assert_eq!(
            Some(&stored[&Field::Source]),
            stored_source.as_ref(),
            "{name}"
        );
        let sources_before = Sandbox::default_seed().sources.len();
        assert_eq!(
            running.state.store().read().sources.len(),
            sources_before,
            "{name}"
        );
    }
}

#[tokio::test]
async fn requests_without_or_with_wrong_credentials_are_refused() {
    for (name, profile) in fixture_profiles() {
        if profile.auth.scheme == spoke::profile::AuthScheme::None {
            continue;
        }
        let (running, _) = spawn_partner(&profile).await;
        // OAuth credentials are presented as a token; one the mock did not issue gets 401.
        let wrong = Credentials::generated(&profile.auth, 999).as_presented();
        let wrong_status = match profile.auth.scheme {
            spoke::profile::AuthScheme::OAuth2ClientCredentials => 401,
            _ => 403,
        };
        for (credentials, expected) in [(Credentials::None, 401), (wrong, wrong_status)] {
            let client = client_for(&profile, &running, &credentials);
            let kind = *profile.operations.keys().next().unwrap();
            let record = kept_fields(&profile, kind.record(), &prospect(&profile, "auth"));
            let answer = match kind.role() {
                spoke::profile::OperationRole::Write => {
                    client
                        .write(kind, "no auth", &record, Some("x"))
                        .await
                        .unwrap()
                        .answer
                }
                _ => client
                    .call(kind, "no auth", Some("x"), Some("a@b.example"), &[], None)
                    .await
                    .unwrap(),
            };
            assert_eq!(answer.status, expected, "{name} {}", kind.key());
        }
        let store = running.state.store().read();
        assert!(
            store.prospects.is_empty() && store.members.is_empty(),
            "{name}"
        );
    }
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: Body) -> (u16, Value) {
    let profile = Profile::reference();
    let (name, value) = Credentials::generated(&profile.auth, 1).header().unwrap();
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(name, value)
        .body(body)
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

fn reference_app() -> (axum::Router, PartnerState) {
    let profile = Profile::reference();
    let state = PartnerState::new(
        profile.clone(),
        Sandbox::default_seed(),
        Credentials::generated(&profile.auth, 1),
    );
    (partner::router(state.clone()), state)
}

const PROSPECTS: &str = "/api/v1/clients/C-1001/clubs/CLUB-7/prospects";

#[tokio::test]
async fn malformed_bodies_get_a_4xx_naming_the_problem() {
    let (app, state) = reference_app();
    let cases: Vec<(&str, Body, u16, &str)> = vec![
        ("not json", Body::from("{\"first_name\": "), 400, "not valid JSON"),
        ("not utf-8", Body::from(vec![0xff, 0xfe, b'{']), 400, "not valid JSON"),
        ("an array", Body::from("[1,2]"), 400, "must be a JSON object"),
        (
            "a wrong type",
            Body::from(json!({"first_name": {"x": 1}, "last_name": "L", "club_id": "CLUB-7"}).to_string()),
            422,
            "first_name",
        ),
        (
            "a missing mandatory field",
            Body::from(json!({"first_name": "F", "club_id": "CLUB-7"}).to_string()),
            422,
            "last_name",
        ),
        (
            "an unknown owner",
            Body::from(json!({"first_name": "F", "last_name": "L", "club_id": "CLUB-7", "owner_id": "S-9999"}).to_string()),
            422,
            "owner_id",
        ),
        (
            "an unknown source",
            Body::from(json!({"first_name": "F", "last_name": "L", "club_id": "CLUB-7", "source_id": "LS-99"}).to_string()),
            422,
            "source_id",
        ),
        (
            "a wrong club in the body",
            Body::from(json!({"first_name": "F", "last_name": "L", "club_id": "CLUB-8"}).to_string()),
            422,
            "club_id",
        ),
        (
            "an invalid coded value",
            Body::from(json!({"first_name": "F", "last_name": "L", "club_id": "CLUB-7", "status": "sleeping"}).to_string()),
            422,
            "status",
        ),
        ("an oversized body", Body::from(vec![b' '; 300 * 1024]), 413, "limit"),
    ];
    for (what, body, status, mentions) in cases {
        let (got, json) = send(&app, "POST", PROSPECTS, body).await;
        assert_eq!(got, status, "{what}: {json}");
        let error = &json["error"];
        let text = format!("{} {}", error["message"], error["field"]);
        assert!(text.contains(mentions), "{what}: {json}");
    }
    assert!(state.store().read().prospects.is_empty());
    assert!(state.store().read().invariant_violations().is_empty());
}

#[tokio::test]
async fn unknown_routes_ids_and_clubs_get_404_and_bad_paging_400() {
    let (app, _) = reference_app();
    let (status, json) = send(&app, "GET", &format!("{PROSPECTS}/P-000404"), Body::empty()).await;
    assert_eq!(status, 404, "{json}");
    let (status, json) = send(
        &app,
        "GET",
        "/api/v1/clients/C-1001/clubs/OTHER/staff",
        Body::empty(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(json["error"]["message"].as_str().unwrap().contains("OTHER"));
    let (status, json) = send(&app, "GET", "/nothing/here", Body::empty()).await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (404, Some("no-such-route"))
    );
    let (status, _) = send(&app, "DELETE", PROSPECTS, Body::empty()).await;
    assert_eq!(status, 405);
    let (status, json) = send(
        &app,
        "GET",
        "/api/v1/clients/C-1001/clubs/CLUB-7/staff?page=zero",
        Body::empty(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json["error"]["field"], "page");
}

#[tokio::test]
async fn the_admin_surface_dumps_and_resets_the_store() {
    let (app, state) = reference_app();
    let body = json!({"first_name": "F", "last_name": "L", "club_id": "CLUB-7"}).to_string();
    let (status, _) = send(&app, "POST", PROSPECTS, Body::from(body)).await;
    assert_eq!(status, 201);
    let (_, dump) = send(&app, "GET", "/__spoke/store", Body::empty()).await;
    assert_eq!(dump["prospects"].as_array().unwrap().len(), 1);
    assert_eq!(dump["prospects"][0]["first-name"], "F");
    let (status, _) = send(&app, "POST", "/__spoke/reset", Body::empty()).await;
    assert_eq!(status, 200);
    assert!(state.store().read().prospects.is_empty());
}

#[test]
fn spoke_partner_prints_its_url_serves_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args([
            "partner",
            "--profile",
            "fixtures/profiles/create-only-sources.toml",
            "--port",
            "0",
        ])
        .current_dir(crate::helpers::root())
        .env("SPOKE_CREATE_ONLY_TOKEN", "tok_partner_process_test")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("spoke partner listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (health, staff) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let health = http
            .get(format!("{url}/__spoke/health"))
            .send()
            .await
            .unwrap()
            .status();
        let staff = http
            .get(format!(
                "{url}/rest/NW-0042/users?client=northwind-gyms&role=staff&limit=5"
            ))
            .bearer_auth("tok_partner_process_test")
            .send()
            .await
            .unwrap();
        (health, staff.status())
    });
    assert_eq!(health, 200);
    assert_eq!(staff, 200);
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|line| line == "spoke partner stopped"),
        "{rest:?}"
    );
    assert!(!rest.join("\n").contains("tok_partner_process_test"));
}

#[test]
fn spoke_partner_without_its_secret_serves_with_a_generated_one_and_prints_it() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["partner", "--port", "0"])
        .env_remove("SPOKE_REFERENCE_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let notice = next();
    assert!(
        notice
            .starts_with("SPOKE_REFERENCE_TOKEN not set: serving with a freshly generated secret"),
        "{notice}"
    );
    let export = next();
    let token = export
        .trim()
        .strip_prefix("export SPOKE_REFERENCE_TOKEN=")
        .unwrap_or_else(|| panic!("no export line: {export}"))
        .to_owned();
    let url = next()
        .strip_prefix("spoke partner listening on ")
        .expect("the URL line")
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let statuses = runtime.block_on(async {
        let http = reqwest::Client::new();
        let staff = format!("{url}/api/v1/clients/C-1001/clubs/CLUB-7/staff");
        let with = http.get(&staff).bearer_auth(&token).send().await.unwrap();
        let wrong = http.get(&staff).bearer_auth("guess").send().await.unwrap();
        (with.status().as_u16(), wrong.status().as_u16())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(statuses, (200, 403));
    assert!(token.len() > 20, "{token}");
}

#[tokio::test]
async fn a_base_url_path_prefix_is_served_and_a_404_names_the_routes_that_exist() {
    let text = Profile::reference().text.replace(
        "base-url = \"http://127.0.0.1:8080\"",
        "base-url = \"https://api.example.com/v3\"",
    );
    let profile = Profile::parse("v3.toml", &text).unwrap();
    let state = PartnerState::new(
        profile.clone(),
        Sandbox::default_seed(),
        Credentials::generated(&profile.auth, 1),
    );
    assert_eq!(state.path_prefix(), "/v3");
    let app = partner::router(state);
    let (status, json) = send(
        &app,
        "GET",
        "/v3/api/v1/clients/C-1001/clubs/CLUB-7/staff",
        Body::empty(),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let (status, json) = send(
        &app,
        "GET",
        "/v2/api/v1/clients/C-1001/clubs/CLUB-7/staff",
        Body::empty(),
    )
    .await;
    assert_eq!(status, 404, "{json}");
    let message = json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("at GET /v2/api/v1/clients/C-1001/clubs/CLUB-7/staff; it serves")
            && message.contains("GET /v3/api/v1/clients/{client_id}/clubs/{club_id}/staff"),
        "{message}"
    );
    assert!(!message.contains("no club"), "{message}");
    // A certify run against it goes through the prefix, as against the real API.
    let report = spoke::certify::certify(
        crate::helpers::mock_certify(profile, spoke::partner::Faults::none(), 1),
        &(),
    )
    .await
    .unwrap();
    assert_eq!(report.exit_code, 0);
    assert!(report
        .exchanges
        .iter()
        .all(|e| e.url.contains("/v3/api/v1/")));
}

/// The reference profile with its prospect update sent as `method`.
fn reference_app_updating_with(method: &str) -> axum::Router {
    let text = Profile::reference().text.replace(
        "[operations.prospect-update]\nmethod = \"PUT\"",
        &format!("[operations.prospect-update]\nmethod = \"{method}\""),
    );
    let profile = Profile::parse("reference.toml", &text).unwrap();
    let state = PartnerState::new(
        profile.clone(),
        Sandbox::default_seed(),
        Credentials::generated(&profile.auth, 1),
    );
    partner::router(state)
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_sent_and_a_put_replaces_the_record() {
    for (method, city_after) in [("PATCH", json!("Köln")), ("PUT", Value::Null)] {
        let app = reference_app_updating_with(method);
        let created = json!({"first_name": "Zoë", "last_name": "Ñúñez", "club_id": "CLUB-7", "address": {"city": "Köln"}});
        let (status, json) = send(&app, "POST", PROSPECTS, Body::from(created.to_string())).await;
        assert_eq!(status, 201, "{json}");
        let id = json["data"]["id"]
            .as_str()
            .or(json["id"].as_str())
            .unwrap()
            .to_owned();
        let update = json!({"first_name": "Zoe", "last_name": "Nunez", "club_id": "CLUB-7"});
        let at = format!("{PROSPECTS}/{id}");
        let (status, json) = send(&app, method, &at, Body::from(update.to_string())).await;
        assert_eq!(status, 200, "{method}: {json}");
        let (_, read) = send(&app, "GET", &at, Body::empty()).await;
        let record = if read["data"].is_object() {
            &read["data"]
        } else {
            &read
        };
        assert_eq!(record["first_name"], "Zoe", "{method}: {read}");
        assert_eq!(record["address"]["city"], city_after, "{method}: {read}");
    }
}

#[tokio::test]
async fn dates_not_written_yyyy_mm_dd_are_refused_naming_the_field() {
    let (app, _) = reference_app();
    for (date, status) in [
        ("1990-04-01", 201),
        ("01.04.1990", 422),
        ("1990-02-30", 422),
        ("1990-4-1", 422),
    ] {
        let body =
            json!({"first_name": "F", "last_name": "L", "club_id": "CLUB-7", "birth_date": date});
        let (got, json) = send(&app, "POST", PROSPECTS, Body::from(body.to_string())).await;
        assert_eq!(got, status, "{date}: {json}");
        if status == 422 {
            assert_eq!(json["error"]["field"], "birth_date", "{date}: {json}");
            assert!(
                json["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("yyyy-mm-dd"),
                "{json}"
            );
        }
    }
}

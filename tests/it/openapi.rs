//! The reference contract: `fixtures/openapi/reference.json` and the mock partner's routes agree.

use crate::helpers::root;
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use spoke::auth::Credentials;
use spoke::partner::{self, PartnerState, Sandbox};
use spoke::profile::{Profile, SlotValues};
use tower::ServiceExt;

fn contract() -> Value {
    let text = std::fs::read_to_string(root().join("fixtures/openapi/reference.json")).unwrap();
    serde_json::from_str(&text).expect("the contract is JSON")
}

/// (method, path template, operationId) of every operation in the contract.
fn contract_operations(contract: &Value) -> Vec<(String, String, String)> {
    let mut operations = Vec::new();
    for (path, item) in contract["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                operations.push((method.to_uppercase(), path.clone(), id.to_owned()));
            }
        }
    }
    operations.sort();
    operations
}

#[test]
fn the_contract_lists_exactly_the_reference_profile_operations() {
    let contract = contract();
    assert!(contract["openapi"].as_str().unwrap().starts_with("3."));
    let profile = Profile::reference();
    let mut expected: Vec<(String, String, String)> = profile
        .operations
        .iter()
        .map(|(kind, operation)| {
            (
                operation.method.as_str().to_owned(),
                operation.path.to_string(),
                kind.key().to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(contract_operations(&contract), expected);
}

#[tokio::test]
async fn every_contract_route_is_served_by_the_mock_partner() {
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 1);
    let (auth_name, auth_value) = credentials.header().unwrap();
    let app = partner::router(PartnerState::new(
        profile.clone(),
        Sandbox::default_seed(),
        credentials,
    ));
    for (method, path, id) in contract_operations(&contract()) {
        let concrete = path
            .replace(
                "{client_id}",
                profile
                    .tenancy
                    .value(spoke::profile::Slot::ClientId)
                    .unwrap(),
            )
            .replace(
                "{club_id}",
                profile.tenancy.value(spoke::profile::Slot::ClubId).unwrap(),
            )
            .replace("{id}", "P-404");
        let request = Request::builder()
            .method(method.as_str())
            .uri(format!("{concrete}?email=nobody@example.org"))
            .header(&auth_name, &auth_value)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            status != 405 && !text.contains("no-such-route"),
            "{id}: {method} {concrete} is not served: {status} {text}"
        );
    }
}

/// The reference mock as a router, its credentials' header, and the document it serves.
fn reference_app() -> (axum::Router, (String, String), Value) {
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 1);
    let header = credentials.header().unwrap();
    let document = partner::openapi::document(&profile, &Sandbox::default_seed());
    let app = partner::router(PartnerState::new(
        profile,
        Sandbox::default_seed(),
        credentials,
    ));
    (app, header, document)
}

const CLUB: &str = "/api/v1/clients/C-1001/clubs/CLUB-7";

/// Sends a request; returns the status, the headers and the body as JSON (null when none).
async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    auth: Option<(&str, &str)>,
    body: Option<Value>,
) -> (u16, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

/// The documented answer of `status` for `method path`, its `$ref`s to components inlined.
fn documented(document: &Value, path: &str, method: &str, status: u16) -> Value {
    let operation = &document["paths"][path][method];
    let mut answer = operation["responses"][status.to_string()].clone();
    assert!(
        answer.is_object(),
        "{method} {path} does not document {status}: {}",
        operation["responses"]
    );
    inline_refs(document, &mut answer);
    answer
}

fn inline_refs(document: &Value, value: &mut Value) {
    if let Some(target) = value.get("$ref").and_then(Value::as_str) {
        *value = document
            .pointer(target.trim_start_matches('#'))
            .cloned()
            .unwrap_or_else(|| panic!("{target} resolves"));
    }
    match value {
        Value::Object(map) => map.values_mut().for_each(|v| inline_refs(document, v)),
        Value::Array(list) => list.iter_mut().for_each(|v| inline_refs(document, v)),
        _ => {}
    }
}

/// Checks `body` against the JSON schema of the documented answer, formats included.
fn assert_fits(answer: &Value, body: &Value, what: &str) {
    let schema = &answer["content"]["application/json"]["schema"];
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|error| panic!("{what}: the schema compiles: {error}"));
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(problems.is_empty(), "{what}: {problems:?} in {body}");
}

#[tokio::test]
async fn the_mock_answers_what_its_generated_document_says() {
    let (app, (name, value), document) = reference_app();
    let auth = Some((name.as_str(), value.as_str()));
    let prospects = "/api/v1/clients/{client_id}/clubs/{club_id}/prospects";
    let prospect = json!({
        "first_name": "Ana", "last_name": "Lopez", "club_id": "CLUB-7", "external_id": "X-1",
        "email": "ana@example.org", "birth_date": "1990-02-28", "owner_id": "S-0001",
    });
    let (status, _, created) = call(
        &app,
        "POST",
        &format!("{CLUB}/prospects"),
        auth,
        Some(prospect.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let answer = documented(&document, prospects, "post", 201);
    assert_fits(&answer, &created, "a create");
    // The link from the create to the read names where the id is.
    let link = &answer["links"]["prospect-read"];
    assert_eq!(link["operationId"], "prospect-read");
    let pointer = link["parameters"]["id"]
        .as_str()
        .unwrap()
        .strip_prefix("$response.body#")
        .unwrap();
    let id = created.pointer(pointer).and_then(Value::as_str).unwrap();
    let (status, _, read) = call(&app, "GET", &format!("{CLUB}/prospects/{id}"), auth, None).await;
    assert_eq!(status, 200);
    assert_fits(
        &documented(&document, &format!("{prospects}/{{id}}"), "get", 200),
        &read,
        "a read",
    );
    // The same create again is the record already there: 200, documented.
    let (status, _, again) = call(
        &app,
        "POST",
        &format!("{CLUB}/prospects"),
        auth,
        Some(prospect),
    )
    .await;
    assert_eq!(status, 200);
    assert_fits(
        &documented(&document, prospects, "post", 200),
        &again,
        "a resent create",
    );
    let (status, _, page) =
        call(&app, "GET", &format!("{CLUB}/staff?per_page=3"), auth, None).await;
    assert_eq!(status, 200);
    let staff = "/api/v1/clients/{client_id}/clubs/{club_id}/staff";
    assert_fits(
        &documented(&document, staff, "get", 200),
        &page,
        "a staff page",
    );
    // Above the documented maximum of a page size: refused, naming the parameter.
    let per_page = document["paths"][staff]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "per_page")
        .unwrap()["schema"]["maximum"]
        .as_u64()
        .unwrap();
    let (status, _, refused) = call(
        &app,
        "GET",
        &format!("{CLUB}/staff?per_page={}", per_page + 1),
        auth,
        None,
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["field"], "per_page");
    assert_fits(&documented(&document, staff, "get", 400), &refused, "a 400");
    // Values the document's formats and types refuse are refused, naming the field.
    for (field, value, named) in [
        ("birth_date", json!("1990-02-30"), "birth_date"),
        ("birth_date", json!("19900228"), "birth_date"),
        ("email", json!("ana.example.org"), "email"),
        ("address", json!(5), "address"),
    ] {
        let mut body = json!({"first_name": "A", "last_name": "B", "club_id": "CLUB-7"});
        body[field] = value.clone();
        let (status, _, refused) =
            call(&app, "POST", &format!("{CLUB}/prospects"), auth, Some(body)).await;
        assert_eq!(status, 422, "{field} = {value}: {refused}");
        assert_eq!(refused["error"]["field"], named, "{refused}");
        assert_fits(
            &documented(&document, prospects, "post", 422),
            &refused,
            "a 422",
        );
    }
    // A source of a name already there: 200 with that source, documented beside 201.
    let sources = "/api/v1/clients/{client_id}/clubs/{club_id}/lead-sources";
    let (_, _, listed) = call(&app, "GET", &format!("{CLUB}/lead-sources"), auth, None).await;
    let existing = listed["data"][0]["name"].clone();
    let (status, _, source) = call(
        &app,
        "POST",
        &format!("{CLUB}/lead-sources"),
        auth,
        Some(json!({ "name": existing })),
    )
    .await;
    assert_eq!(status, 200, "{source}");
    assert_fits(
        &documented(&document, sources, "post", 200),
        &source,
        "an existing source",
    );
    // Credentials: none is 401 with a challenge, wrong ones 403; both documented.
    let (status, headers, _) = call(&app, "GET", &format!("{CLUB}/staff"), None, None).await;
    assert_eq!(status, 401);
    let unauthorized = documented(&document, staff, "get", 401);
    assert_eq!(
        unauthorized["headers"]["WWW-Authenticate"]["required"],
        true
    );
    assert_eq!(
        headers.get("www-authenticate").unwrap(),
        "Bearer realm=\"Reference Partner\""
    );
    let (status, _, wrong) = call(
        &app,
        "GET",
        &format!("{CLUB}/staff"),
        Some(("authorization", "Bearer not-the-token")),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_fits(&documented(&document, staff, "get", 403), &wrong, "a 403");
}

#[tokio::test]
async fn a_method_a_route_does_not_answer_gets_405_listing_those_it_does() {
    let (app, (name, value), _) = reference_app();
    let auth = Some((name.as_str(), value.as_str()));
    for (method, path, allowed) in [
        ("DELETE", format!("{CLUB}/prospects"), "POST"),
        ("DELETE", format!("{CLUB}/prospects/P-1"), "GET, PUT"),
        ("PATCH", format!("{CLUB}/lead-sources"), "GET, POST"),
    ] {
        let (status, headers, body) = call(&app, method, &path, auth, None).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(headers.get("allow").unwrap(), allowed, "{method} {path}");
    }
}

#[tokio::test]
async fn every_401_names_the_profiles_scheme_in_www_authenticate() {
    for (fixture, challenge) in [
        ("reference", "Bearer realm="),
        ("nested-envelope", "Basic realm="),
        ("members-only", "ApiKey realm="),
        ("hubspot", "Bearer realm="),
    ] {
        let profile =
            Profile::load(&root().join(format!("fixtures/profiles/{fixture}.toml"))).unwrap();
        let operation = profile.operations.values().next().unwrap();
        let path = operation
            .path
            .render(&profile.tenancy, str::to_owned)
            .unwrap()
            .replace("{id}", "1")
            .replace("{email}", "a@b.c");
        let app = partner::router(PartnerState::new(
            profile.clone(),
            Sandbox::default_seed(),
            Credentials::generated(&profile.auth, 1),
        ));
        let request = Request::builder()
            .method(operation.method.as_str())
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 401, "{fixture}");
        let given = response
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(given.starts_with(challenge), "{fixture}: {given}");
    }
}

#[test]
fn every_fixture_profile_gets_a_document_of_all_its_operations() {
    for (name, profile) in crate::helpers::fixture_profiles() {
        let document = partner::openapi::document(&profile, &Sandbox::default_seed());
        assert_eq!(document["openapi"], "3.0.3", "{name}");
        let mut routes = std::collections::BTreeSet::new();
        for (kind, operation) in &profile.operations {
            let method = operation.method.as_str().to_lowercase();
            let path = operation.path.to_string();
            let documented = &document["paths"][&path][&method];
            assert!(documented.is_object(), "{name}: {} {path}", kind.key());
            // Operations sharing a route are one OpenAPI operation, the first's.
            if routes.insert((path.clone(), method.clone())) {
                assert_eq!(documented["operationId"], kind.key(), "{name}: {path}");
            }
            for (status, answer) in documented["responses"].as_object().unwrap() {
                if status == "401" {
                    assert_eq!(
                        answer["headers"]["WWW-Authenticate"]["required"], true,
                        "{name}"
                    );
                }
            }
        }
        let secured = !document["security"].as_array().unwrap().is_empty();
        assert_eq!(
            secured,
            profile.auth.scheme != spoke::profile::AuthScheme::None
                || !profile.auth.more_headers.is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn spoke_partner_openapi_prints_the_document_the_mock_serves() {
    let dir = std::env::temp_dir();
    let output = crate::helpers::run_cli(&["partner", "--openapi"], &dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let (app, _, document) = reference_app();
    assert_eq!(printed, document);
    let (status, _, served) = call(&app, "GET", "/__spoke/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(served, document);
}

#[tokio::test]
async fn a_concrete_path_is_not_read_as_an_id_of_a_templated_one() {
    let profile = Profile::load(&root().join("fixtures/profiles/nested-envelope.toml")).unwrap();
    let credentials = Credentials::generated(&profile.auth, 1);
    let (name, value) = credentials.header().unwrap();
    let app = partner::router(PartnerState::new(
        profile,
        Sandbox::default_seed(),
        credentials,
    ));
    // `/prospects/save` is the save's path (POST); `/prospects/{id}` (GET) does not cover it.
    for method in ["GET", "OPTIONS"] {
        let (status, headers, body) = call(
            &app,
            method,
            "/crm/v2/tenants/acme-fitness/prospects/save?site=BER-MITTE-02",
            Some((name.as_str(), value.as_str())),
            None,
        )
        .await;
        assert_eq!(status, 405, "{method}: {body}");
        assert_eq!(headers.get("allow").unwrap(), "POST", "{method}");
    }
}

#[tokio::test]
async fn a_declared_accept_is_met_by_wildcards_and_refused_otherwise() {
    let profile = Profile::load(&root().join("fixtures/profiles/zendesk-sell.toml")).unwrap();
    let credentials = Credentials::generated(&profile.auth, 1);
    let (name, value) = credentials.header().unwrap();
    let list = profile
        .operation(spoke::profile::OperationKind::StaffList)
        .unwrap();
    let path = list.path.render(&profile.tenancy, str::to_owned).unwrap();
    let app = partner::router(PartnerState::new(
        profile,
        Sandbox::default_seed(),
        credentials,
    ));
    for (accept, status) in [
        ("application/json", 200),
        ("*/*", 200),
        ("application/*", 200),
        ("text/html, */*;q=0.8", 200),
        ("text/html", 406),
        ("text/*", 406),
    ] {
        let request = Request::get(path.as_str())
            .header(&name, &value)
            .header("accept", accept)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "Accept: {accept}");
    }
}

#[test]
fn an_owner_written_as_null_when_absent_is_documented_nullable_where_it_reads_back() {
    let profile =
        Profile::load(&root().join("fixtures/profiles/create-only-sources.toml")).unwrap();
    let document = partner::openapi::document(&profile, &Sandbox::default_seed());
    let read = documented(&document, "/rest/{club_id}/leads/{id}", "get", 200);
    let owner = &read["content"]["application/json"]["schema"]["properties"]["assigned_user_id"];
    assert_eq!(owner["nullable"], true, "{owner}");
    assert!(owner["enum"].is_null() || owner["enum"].as_array().unwrap().contains(&Value::Null));
}

#[test]
fn records_inside_arrays_and_text_around_an_email_are_documented() {
    let profile = Profile::load(&root().join("fixtures/profiles/zoho.toml")).unwrap();
    let document = partner::openapi::document(&profile, &Sandbox::default_seed());
    let create = &document["paths"]["/crm/v6/Leads"]["post"];
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["properties"]["data"]["type"], "array", "{body}");
    assert_eq!(body["properties"]["data"]["minItems"], 1, "{body}");
    assert!(
        body["properties"]["data"]["items"]["properties"].is_object(),
        "{body}"
    );
    let lookup = &document["paths"]["/crm/v6/users/search"]["get"]["parameters"];
    let criteria = lookup
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "criteria")
        .unwrap();
    assert_eq!(criteria["schema"]["pattern"], "^\\(email:equals:.+\\)$");
}

#[test]
fn owners_by_email_and_sources_by_name_are_documented_as_the_sandbox_spells_them() {
    let profile = Profile::load(&root().join("fixtures/profiles/nested-envelope.toml")).unwrap();
    let sandbox = Sandbox::default_seed();
    let document = partner::openapi::document(&profile, &sandbox);
    let text = document["paths"]["/crm/v2/tenants/{client_id}/prospects/save"]["post"]
        ["requestBody"]
        .to_string();
    let email = sandbox.staff.iter().find_map(|s| s.email.clone()).unwrap();
    assert!(text.contains(&format!("\"{email}\"")), "{text}");
    assert!(
        text.contains(&format!("\"{}\"", sandbox.sources[0].name)),
        "{text}"
    );
}

//! The reference contract: `fixtures/openapi/reference.json` and the mock partner's routes agree.

use crate::helpers::root;
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
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

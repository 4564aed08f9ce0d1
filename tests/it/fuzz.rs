//! Generated requests and inputs thrown at the mock partner's router and at the loaders: no 5xx,
//! no panic, the store's invariants hold, and the partner keeps serving.

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use spoke::auth::Credentials;
use spoke::partner::{self, PartnerState, Sandbox};
use spoke::profile::{Profile, Slot, SlotValues};
use tower::ServiceExt;

/// One generated request.
#[derive(Debug, Clone)]
struct Fuzzed {
    profile: usize,
    method: String,
    path: String,
    query: String,
    auth: u8,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn profiles() -> &'static [Profile] {
    static PROFILES: std::sync::OnceLock<Vec<Profile>> = std::sync::OnceLock::new();
    PROFILES.get_or_init(spoke::selftest::fixture_profiles)
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{0,12}",
        Just("..".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%00".to_owned()),
        "[a-z]{200,300}",
        Just("P-000001".to_owned()),
        Just("%E2%82%AC%20x".to_owned()),
    ]
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_.]{1,12}", inner, 0..8)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A body shaped like the profile's records, with wrong types sprinkled in.
fn record_like() -> impl Strategy<Value = Vec<u8>> {
    let keys = [
        "first_name",
        "last_name",
        "club_id",
        "owner_id",
        "source_id",
        "status",
        "type",
        "id",
        "name",
        "email",
        "external_id",
        "prospect",
        "Member",
        "person",
        "contact",
        "tenant",
    ];
    prop::collection::btree_map(prop::sample::select(keys.to_vec()), json_value(), 0..10).prop_map(
        |map| {
            let object: serde_json::Map<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            serde_json::Value::Object(object).to_string().into_bytes()
        },
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        record_like(),
        (100usize..400).prop_map(|depth| nested(depth).into_bytes()),
        Just(vec![b'{'; 300 * 1024]),
        Just(b"{\"first_name\": \"\xff\xfe\", \"last_name\": \"x\"}".to_vec()),
    ]
}

fn request() -> impl Strategy<Value = Fuzzed> {
    let method = prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("PUT".to_owned()),
        Just("PATCH".to_owned()),
        Just("DELETE".to_owned()),
        Just("HEAD".to_owned()),
        Just("OPTIONS".to_owned()),
        "[A-Z]{1,10}",
    ];
    (
        0usize..4,
        method,
        any::<prop::sample::Index>(),
        any::<bool>(),
        prop::collection::vec(segment(), 0..5),
        prop::collection::vec(("[a-z_]{1,10}", "\\PC{0,12}"), 0..4),
        0u8..4,
        prop::option::of(prop_oneof![
            Just("application/json".to_owned()),
            Just("text/plain".to_owned()),
            "[a-z/;= -]{0,30}",
        ]),
        body(),
    )
        .prop_map(
            |(profile, method, route, use_route, segments, query, auth, content_type, body)| {
                let profiles = profiles();
                let chosen = &profiles[profile];
                let path = if use_route && !chosen.operations.is_empty() {
                    let operations: Vec<_> = chosen.operations.values().collect();
                    let template = operations[route.index(operations.len())].path.to_string();
                    let tenancy = &chosen.tenancy;
                    let mut path = template
                        .replace("{client_id}", tenancy.value(Slot::ClientId).unwrap_or("x"))
                        .replace("{club_id}", tenancy.value(Slot::ClubId).unwrap_or("x"));
                    let filler = segments.first().cloned().unwrap_or_default();
                    path = path.replace("{id}", &filler).replace("{email}", &filler);
                    path
                } else {
                    format!("/{}", segments.join("/"))
                };
                let query = query
                    .iter()
                    .map(|(k, v)| {
                        let v: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
                        format!("{k}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join("&");
                Fuzzed {
                    profile,
                    method,
                    path,
                    query,
                    auth,
                    content_type,
                    body,
                }
            },
        )
}

fn states() -> Vec<PartnerState> {
    profiles()
        .iter()
        .map(|profile| {
            let credentials = Credentials::generated(&profile.auth, 3);
            PartnerState::new(profile.clone(), Sandbox::default_seed(), credentials)
        })
        .collect()
}

async fn send(state: &PartnerState, fuzzed: &Fuzzed) -> Option<(u16, Vec<u8>)> {
    let uri = if fuzzed.query.is_empty() {
        fuzzed.path.clone()
    } else {
        format!("{}?{}", fuzzed.path, fuzzed.query)
    };
    let mut builder = Request::builder().method(fuzzed.method.as_str()).uri(uri);
    let credentials = Credentials::generated(&state.profile().auth, 3);
    match (fuzzed.auth, credentials.header()) {
        (0, Some((name, value))) => builder = builder.header(name, value),
        (1, Some((name, _))) => builder = builder.header(name, "Bearer nonsense"),
        _ => {}
    }
    if let Some(content_type) = &fuzzed.content_type {
        builder = builder.header("content-type", content_type.as_str());
    }
    // A request the HTTP layer itself would refuse (bad method or URI) never reaches the
    // router; nothing to check then.
    let request = builder.body(Body::from(fuzzed.body.clone())).ok()?;
    let response = partner::router(state.clone()).oneshot(request).await.ok()?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .expect("the mock's answers are bounded");
    Some((status, bytes.to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_never_get_a_5xx_and_leave_the_store_consistent(
        requests in prop::collection::vec(request(), 1..8)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let states = states();
        runtime.block_on(async {
            for fuzzed in &requests {
                let state = &states[fuzzed.profile];
                let Some((status, body)) = send(state, fuzzed).await else { continue };
                prop_assert!(status < 500, "{fuzzed:?} got {status}: {}", String::from_utf8_lossy(&body));
                if status >= 400 && fuzzed.method != "HEAD" {
                    let json: serde_json::Value = serde_json::from_slice(&body)
                        .map_err(|e| TestCaseError::fail(format!("{fuzzed:?}: error body is not JSON: {e}")))?;
                    prop_assert!(json["error"]["message"].is_string(), "{fuzzed:?}: {json}");
                }
                let broken = state.store().read().invariant_violations();
                prop_assert!(broken.is_empty(), "{fuzzed:?}: {broken:?}");
            }
            // Still serving.
            let health = Fuzzed {
                profile: 0,
                method: "GET".into(),
                path: "/__spoke/health".into(),
                query: String::new(),
                auth: 2,
                content_type: None,
                body: Vec::new(),
            };
            for state in &states {
                let (status, _) = send(state, &health).await.unwrap();
                prop_assert_eq!(status, 200);
            }
            Ok(())
        })?;
    }

    #[test]
    fn the_sandbox_loader_never_panics(text in "[\\PC\n]{0,600}") {
        let _ = Sandbox::parse("fuzzed.toml", &text);
    }

    #[test]
    fn the_sandbox_loader_never_panics_on_near_valid_input(
        entries in prop::collection::vec(("\\PC{0,8}", prop::option::of("\\PC{0,12}"), "\\PC{0,8}"), 0..12)
    ) {
        let mut text = String::new();
        for (id, email, name) in entries {
            text.push_str(&format!("[[staff]]\nid = {id:?}\n"));
            if let Some(email) = email {
                text.push_str(&format!("email = {email:?}\n"));
            }
            text.push_str(&format!("[[sources]]\nid = {id:?}\nname = {name:?}\n"));
        }
        let _ = Sandbox::parse("fuzzed.toml", &text);
    }
}

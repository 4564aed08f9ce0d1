//! OAuth 2.0 client credentials on both sides: the client fetching, caching and renewing
//! tokens, the mock partner's token endpoint, certify against it, and no token, secret or token
//! answer in any output.

use crate::helpers::{mock_certify, root};
use serde_json::Value;
use spoke::auth::Credentials;
use spoke::connector::{ClientLimits, Exchange, PartnerClient};
use spoke::partner::{self, Faults, PartnerOptions, PartnerState, RunningPartner, Sandbox};
use spoke::profile::{OperationKind, Profile, REFERENCE_PROFILE};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The reference profile with its `[auth]` section's keys replaced by `auth`.
pub fn reference_with_auth(auth: &str) -> String {
    let start = REFERENCE_PROFILE.find("[auth]\n").unwrap() + "[auth]\n".len();
    let end = REFERENCE_PROFILE.find("\n[capabilities]").unwrap();
    format!(
        "{}{auth}\n{}",
        &REFERENCE_PROFILE[..start],
        &REFERENCE_PROFILE[end..]
    )
}

/// OAuth under the base URL, the client authenticating in the Authorization header.
pub const OAUTH_BASIC: &str = r#"scheme = "oauth2-client-credentials"
token-url = "/oauth/token"
client-id-env = "ACME_CLIENT_ID"
client-secret-env = "ACME_CLIENT_SECRET"
scope = "leads.write staff.read"
"#;

/// OAuth on another host, the client authenticating in the body, with an audience.
const OAUTH_FOREIGN_BODY: &str = r#"scheme = "oauth2-client-credentials"
token-url = "https://login.acme.example/oauth2/token"
client-id-env = "ACME_CLIENT_ID"
client-secret-env = "ACME_CLIENT_SECRET"
client-auth = "body"
audience = "https://api.acme.example"
"#;

fn oauth_profile(auth: &str) -> Profile {
    Profile::parse("oauth.toml", &reference_with_auth(auth)).unwrap_or_else(|e| panic!("{e}"))
}

/// A mock partner for `profile` with tokens living `lifetime`, and the credentials it accepts.
async fn spawn_oauth_partner(
    profile: &Profile,
    lifetime: Duration,
    faults: Faults,
) -> (RunningPartner, Credentials) {
    let credentials = Credentials::generated(&profile.auth, 11);
    let state = PartnerState::with_options(
        profile.clone(),
        Sandbox::default_seed(),
        credentials.clone(),
        PartnerOptions {
            token_lifetime: lifetime,
            sluggish_delay: Duration::from_millis(1_300),
            faults,
            ..PartnerOptions::default()
        },
    );
    let running = partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (running, credentials)
}

fn client(profile: &Profile, base_url: &str, credentials: Credentials) -> PartnerClient {
    PartnerClient::new(
        Arc::new(profile.clone()),
        base_url,
        credentials,
        ClientLimits::default(),
    )
    .unwrap()
}

fn token_requests(exchanges: &[Exchange]) -> Vec<&Exchange> {
    exchanges
        .iter()
        .filter(|e| {
            e.purpose
                .starts_with(spoke::connector::client::TOKEN_PURPOSE)
        })
        .collect()
}

async fn list_sources(client: &PartnerClient) -> u16 {
    client
        .call(OperationKind::SourceList, "sources", None, None, &[], None)
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn certify_against_the_mock_passes_with_oauth_in_every_shape() {
    for auth in [OAUTH_BASIC, OAUTH_FOREIGN_BODY] {
        let report =
            spoke::certify::certify(mock_certify(oauth_profile(auth), Faults::none(), 5), &())
                .await
                .unwrap();
        let failing: Vec<_> = report
            .verdicts
            .iter()
            .filter(|v| !matches!(v.outcome.as_str(), "pass" | "skip"))
            .map(|v| format!("{} {} {}", v.rule, v.outcome.as_str(), v.reason))
            .collect();
        assert_eq!(report.exit_code, 0, "{auth}\n{failing:#?}");
        let sec = report
            .verdicts
            .iter()
            .find(|v| v.rule == "SEC-001")
            .unwrap();
        assert_eq!(sec.outcome.as_str(), "pass", "{}", sec.reason);
        let tokens = token_requests(&report.exchanges);
        assert_eq!(tokens.len(), 1, "one token serves a short run");
        assert_eq!(tokens[0].status, Some(200));
        assert_eq!(tokens[0].response_body.as_deref(), Some("***"));
        assert_eq!(
            report.exchanges[0].id, tokens[0].id,
            "fetched before the run"
        );
    }
}

#[tokio::test]
async fn a_token_expiring_between_calls_is_renewed_before_it_runs_out() {
    let profile = oauth_profile(OAUTH_BASIC);
    let (running, credentials) =
        spawn_oauth_partner(&profile, Duration::from_secs(1), Faults::none()).await;
    let client = client(&profile, &running.base_url(), credentials);
    assert_eq!(list_sources(&client).await, 200);
    assert_eq!(list_sources(&client).await, 200);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(list_sources(&client).await, 200);
    let exchanges = client.recorder().snapshot();
    let tokens = token_requests(&exchanges);
    // Two, unless a slow machine took most of a second over the first two calls.
    assert!((2..=3).contains(&tokens.len()), "{exchanges:#?}");
    for renewal in &tokens[1..] {
        assert!(
            renewal.purpose.contains("about to expire"),
            "{}",
            renewal.purpose
        );
    }
    assert!(exchanges.iter().all(|e| e.status == Some(200)));
}

#[tokio::test]
async fn a_token_expiring_mid_run_is_renewed_and_the_run_goes_on() {
    // The first staff page takes 1.3 s, longer than a token lives.
    let profile = oauth_profile(OAUTH_BASIC);
    let faults = spoke::partner::faults::parse_list("slow-staff-list").unwrap();
    let (running, credentials) =
        spawn_oauth_partner(&profile, Duration::from_secs(1), faults).await;
    let client = client(&profile, &running.base_url(), credentials);
    let observations =
        spoke::connector::session::run_session(&client, 3, &spoke::intouch::Scenario::core(), &())
            .await;
    let exchanges = client.recorder().snapshot();
    assert!(token_requests(&exchanges).len() >= 2, "{exchanges:#?}");
    let refused: Vec<_> = exchanges
        .iter()
        .filter(|e| e.status == Some(401) && !e.purpose.starts_with("probe"))
        .map(|e| &e.purpose)
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(observations.deliveries.iter().all(|d| d.id().is_some()));
}

#[tokio::test]
async fn a_revoked_token_gets_one_renewal_and_the_request_is_sent_again() {
    let profile = oauth_profile(OAUTH_BASIC);
    let (running, credentials) =
        spawn_oauth_partner(&profile, Duration::from_secs(300), Faults::none()).await;
    let client = client(&profile, &running.base_url(), credentials);
    assert_eq!(list_sources(&client).await, 200);
    assert_eq!(running.state.revoke_tokens(), 1);
    assert_eq!(list_sources(&client).await, 200);
    let exchanges = client.recorder().snapshot();
    let statuses: Vec<(Option<u16>, bool)> = exchanges
        .iter()
        .map(|e| {
            (
                e.status,
                e.purpose
                    .starts_with(spoke::connector::client::TOKEN_PURPOSE),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (Some(200), true),
            (Some(200), false),
            (Some(401), false),
            (Some(200), true),
            (Some(200), false)
        ]
    );
    assert!(exchanges[3].purpose.contains("answered 401"));
    assert_eq!(
        exchanges[4].retry_of, None,
        "a renewal is no transient error"
    );
}

#[tokio::test]
async fn a_partner_refusing_every_token_gets_exactly_one_renewal() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at_refused_every_time_1234", "token_type": "bearer", "expires_in": 3600
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/clients/C-1001/clubs/CLUB-7/lead-sources"))
        .and(header("authorization", "Bearer at_refused_every_time_1234"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    let profile = oauth_profile(OAUTH_BASIC);
    let client = client(
        &profile,
        &server.uri(),
        Credentials::generated(&profile.auth, 1),
    );
    assert_eq!(list_sources(&client).await, 401);
    let exchanges = client.recorder().snapshot();
    assert_eq!(exchanges.len(), 4);
    let text = serde_json::to_string(&exchanges).unwrap();
    assert!(!text.contains("at_refused_every_time_1234"), "{text}");
}

#[tokio::test]
async fn a_failing_token_endpoint_is_a_clear_error_naming_it_and_its_status() {
    let answers = [
        (
            ResponseTemplate::new(500).set_body_string("boom"),
            "answered HTTP 500",
        ),
        (
            ResponseTemplate::new(200).set_body_string("<html>login</html>"),
            "answered HTTP 200 with a body that is not a JSON object",
        ),
        (
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"token_type": "bearer"})),
            "answered HTTP 200 without an access_token",
        ),
        (
            ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "invalid_scope"})),
            "answered HTTP 400 (invalid_scope): the scope `leads.write staff.read` was refused",
        ),
        (
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "unsupported_grant_type"})),
            "answered HTTP 400 (unsupported_grant_type): it does not offer the client credentials grant",
        ),
    ];
    let profile = oauth_profile(OAUTH_BASIC);
    for (answer, expected) in answers {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let client = client(
            &profile,
            &server.uri(),
            Credentials::generated(&profile.auth, 1),
        );
        let error = client.authenticate().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("the token endpoint {}/oauth/token {expected}", server.uri())
        );
        // A call needing the token fails the same way, recorded, with no panic.
        let call = client
            .call(OperationKind::StaffList, "staff", None, None, &[], None)
            .await
            .unwrap_err();
        assert!(call.message.contains(expected), "{}", call.message);
        assert!(call.exchange > 0);
    }
    // Nobody listening.
    let client = client(
        &profile,
        "http://127.0.0.1:9",
        Credentials::generated(&profile.auth, 1),
    );
    let error = client.authenticate().await.unwrap_err().to_string();
    assert!(
        error.starts_with("the token endpoint http://127.0.0.1:9/oauth/token could not be reached: cannot connect"),
        "{error}"
    );
}

#[tokio::test]
async fn the_token_request_is_form_encoded_with_the_client_where_the_profile_says() {
    let server = MockServer::start().await;
    let token = serde_json::json!({"access_token": "at_body_client_5678", "expires_in": 60});
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(
            "audience=https%3A%2F%2Fapi.acme.example",
        ))
        .and(body_string_contains("client_secret=the+secret%26more"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token))
        .expect(1)
        .mount(&server)
        .await;
    let profile = oauth_profile(OAUTH_FOREIGN_BODY);
    let credentials = Credentials::resolve(&profile.auth, |name| {
        Some(match name {
            "ACME_CLIENT_ID" => "client-4711".to_owned(),
            _ => "the secret&more".to_owned(),
        })
    })
    .unwrap()
    .with_token_endpoint_at(
        &profile.partner.base_url,
        &reqwest::Url::parse(&server.uri()).unwrap(),
    );
    let client = client(&profile, &server.uri(), credentials);
    client.authenticate().await.unwrap();
    let exchanges = client.recorder().snapshot();
    assert_eq!(
        exchanges[0].request_body.as_deref(),
        Some("grant_type=client_credentials&audience=https%3A%2F%2Fapi.acme.example&client_id=***&client_secret=***")
    );
    assert!(!exchanges[0]
        .request_headers
        .iter()
        .any(|(name, _)| name == "authorization"));
}

/// Sends a token request to the mock partner at `base` and returns status, the `error` code
/// and the `WWW-Authenticate` header.
async fn ask_for_token(
    base: &str,
    authorization: Option<String>,
    form: &str,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    (status, response.json().await.unwrap(), challenge)
}

fn basic(id: &str, secret: &str) -> Option<String> {
    use base64::Engine;
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    ))
}

#[tokio::test]
async fn the_mock_token_endpoint_checks_the_client_scope_and_grant_as_rfc_6749_says() {
    let profile = oauth_profile(OAUTH_BASIC);
    let (running, credentials) =
        spawn_oauth_partner(&profile, Duration::from_secs(300), Faults::none()).await;
    let base = running.base_url();
    let client = credentials.oauth2().unwrap();
    let (id, secret) = (client.client_id.expose(), client.client_secret.expose());
    let grant = "grant_type=client_credentials&scope=leads.write";
    let cases = [
        (basic(id, "wrong"), grant, 401, "invalid_client"),
        (None, grant, 401, "invalid_client"),
        (
            None,
            &*format!("{grant}&client_id={id}&client_secret={secret}"),
            401,
            "invalid_client",
        ),
        (
            basic(id, secret),
            "grant_type=password&scope=leads.write",
            400,
            "unsupported_grant_type",
        ),
        (
            basic(id, secret),
            "scope=leads.write",
            400,
            "invalid_request",
        ),
        (
            basic(id, secret),
            "grant_type=client_credentials&scope=admin",
            400,
            "invalid_scope",
        ),
        (
            basic(id, secret),
            "grant_type=client_credentials",
            400,
            "invalid_scope",
        ),
    ];
    for (authorization, form, status, code) in cases {
        let (got, body, challenge) = ask_for_token(&base, authorization, form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{form}: {body}"
        );
        if status == 401 {
            assert_eq!(challenge.as_deref(), Some("Basic realm=\"token\""));
        }
    }
    let (status, body, _) = ask_for_token(&base, basic(id, secret), grant).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "leads.write");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let sources = "/api/v1/clients/C-1001/clubs/CLUB-7/lead-sources";
    let http = reqwest::Client::new();
    let with = |token: &str| {
        http.get(format!("{base}{sources}"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(with(&token).await.unwrap().status(), 200);
    let made_up = with("mock-at-0000000000").await.unwrap();
    assert_eq!(made_up.status(), 401);
    assert_eq!(
        made_up.headers().get("www-authenticate").unwrap(),
        "Bearer error=\"invalid_token\""
    );
    // Revoked through the admin route.
    let revoked = http
        .post(format!("{base}/__spoke/oauth/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.json::<Value>().await.unwrap()["revoked"], 1);
    assert_eq!(with(&token).await.unwrap().status(), 401);
    let get = http
        .get(format!("{base}/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn the_mock_token_endpoint_takes_the_client_in_the_body_and_checks_the_audience() {
    let profile = oauth_profile(OAUTH_FOREIGN_BODY);
    let (running, credentials) =
        spawn_oauth_partner(&profile, Duration::from_millis(300), Faults::none()).await;
    let base = running.base_url();
    let client = credentials.oauth2().unwrap();
    let (id, secret) = (client.client_id.expose(), client.client_secret.expose());
    let ask = |form: String, authorization: Option<String>| {
        let base = base.clone();
        async move {
            let mut request = reqwest::Client::new()
                .post(format!("{base}/oauth2/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let creds = format!("client_id={id}&client_secret={secret}");
    let audience = "audience=https%3A%2F%2Fapi.acme.example";
    let (status, body) = ask(format!("grant_type=client_credentials&{creds}"), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = ask(
        format!("grant_type=client_credentials&{creds}&audience=https%3A%2F%2Fother"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let (status, body) = ask(
        format!("grant_type=client_credentials&{audience}"),
        basic(id, secret),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = ask(
        format!("grant_type=client_credentials&{creds}&{audience}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Lives 300 ms, announced as the whole second it rounds up to.
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/clients/C-1001/clubs/CLUB-7/lead-sources"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401, "an expired token is refused");
}

fn oauth_profile_file(dir: &std::path::Path, auth: &str) -> std::path::PathBuf {
    let path = dir.join("oauth.toml");
    std::fs::write(&path, reference_with_auth(auth)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_stops_certify_with_a_clear_message() {
    let profile = oauth_profile(OAUTH_BASIC);
    let (running, credentials) =
        spawn_oauth_partner(&profile, Duration::from_secs(300), Faults::none()).await;
    let id = credentials.oauth2().unwrap().client_id.expose().to_owned();
    let dir = tempdir("wrong-secret");
    let file = oauth_profile_file(&dir, OAUTH_BASIC);
    let base = running.base_url();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
            .args([
                "certify",
                "--profile",
                file.to_str().unwrap(),
                "--base-url",
                &base,
            ])
            .env("ACME_CLIENT_ID", id)
            .env("ACME_CLIENT_SECRET", "wrong-secret-1234567")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "oauth.toml: auth: the token endpoint {}/oauth/token answered HTTP 401 (invalid_client): the client id and secret (from ACME_CLIENT_ID and ACME_CLIENT_SECRET) were refused",
            running.base_url()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret-1234567"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_token_endpoint_stops_certify_as_a_run_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let dir = tempdir("broken-endpoint");
    let file = oauth_profile_file(&dir, OAUTH_BASIC);
    let base = server.uri();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
            .args([
                "certify",
                "--profile",
                file.to_str().unwrap(),
                "--base-url",
                &base,
            ])
            .env("ACME_CLIENT_ID", "id")
            .env("ACME_CLIENT_SECRET", "secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/oauth/token answered HTTP 502"),
        "{stderr}"
    );
}

/// A fresh folder under the system's temporary folder.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "spoke-it-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn no_report_format_shows_the_token_the_secret_or_the_token_answer() {
    let dir = tempdir("reports");
    let file = oauth_profile_file(&dir, OAUTH_BASIC);
    let report = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args([
            "certify",
            "--profile",
            file.to_str().unwrap(),
            "--mock",
            "--seed",
            "9",
        ])
        .args(["--report", &format!("json:{}", report("r.json"))])
        .args(["--report", &format!("har:{}", report("r.har"))])
        .args(["--report", &format!("html:{}", report("r.html"))])
        .args(["--report", &format!("junit:{}", report("r.xml"))])
        .args(["--bundle", &report("bundle")])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let generated = Credentials::generated(&oauth_profile(OAUTH_BASIC).auth, 9);
    let client = generated.oauth2().unwrap();
    let mut texts = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".to_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
    ];
    for name in ["r.json", "r.har", "r.html", "r.xml"] {
        texts.push((
            name.to_owned(),
            std::fs::read_to_string(dir.join(name)).unwrap(),
        ));
    }
    for entry in std::fs::read_dir(dir.join("bundle")).unwrap() {
        let path = entry.unwrap().path();
        texts.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    let json: Value = serde_json::from_str(&texts[2].1).unwrap();
    let token_exchange = &json["exchanges"][0];
    assert!(token_exchange["purpose"]
        .as_str()
        .unwrap()
        .starts_with("oauth token request"));
    for (name, text) in &texts {
        // Every token the mock issues starts so; the answer's other fields would show too.
        for leak in [
            "mock-at-",
            "\"token_type\"",
            client.client_secret.expose(),
            client.client_id.expose(),
        ] {
            assert!(!text.contains(leak), "{name} shows {leak}");
        }
    }
    // The bundle replays, token request and all.
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["replay", &report("bundle")])
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(0), "{replay:?}");
}

#[tokio::test]
async fn simulate_delivers_through_oauth_tokens() {
    let options = spoke::simulate::SimulateOptions {
        profile: oauth_profile(OAUTH_BASIC),
        base_url: None,
        mock: true,
        sandbox: Sandbox::default_seed(),
        faults: Faults::none(),
        seed: 3,
        leads: 20,
        members: 5,
        concurrency: 4,
        rate: None,
        duration: None,
        limits: ClientLimits::default(),
        retries: 2,
        shard: None,
    };
    let report = spoke::simulate::simulate(options, &()).await.unwrap();
    assert_eq!(report.delivered, 25, "{}", report.render());
    assert!(report.clean(), "{}", report.render());
}

#[test]
fn the_commented_oauth_and_tls_examples_of_the_reference_profile_are_valid() {
    let start = REFERENCE_PROFILE.find("[auth]\n").unwrap();
    let end = REFERENCE_PROFILE.find("[capabilities]").unwrap();
    let mut section = Vec::new();
    for line in REFERENCE_PROFILE[start..end].lines() {
        let line = if let Some(example) = line.strip_prefix("#   ") {
            if example.starts_with('#') {
                continue;
            }
            example
        } else if line == "# [tls]" {
            "[tls]"
        } else if let Some(key) = line
            .strip_prefix("# ")
            .filter(|l| l.contains("-env = ") && !l.contains('`'))
        {
            key
        } else {
            line
        };
        if line.starts_with("scheme = \"bearer\"") || line.starts_with("token-env") {
            continue;
        }
        section.push(line);
    }
    let text = format!(
        "{}{}\n{}",
        &REFERENCE_PROFILE[..start],
        section.join("\n"),
        &REFERENCE_PROFILE[end..]
    )
    .replace("http://127.0.0.1:8080", "https://127.0.0.1:8080");
    let profile =
        Profile::parse("uncommented.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        profile.auth.scheme,
        spoke::profile::AuthScheme::OAuth2ClientCredentials
    );
    assert!(profile.tls.as_ref().is_some_and(|tls| tls.mutual()));
}

#[tokio::test]
async fn every_fault_is_caught_by_exactly_its_rules_with_oauth_too() {
    let profile = oauth_profile(OAUTH_BASIC);
    let matrix = spoke::selftest::run_matrix(std::slice::from_ref(&profile), 2, &[])
        .await
        .unwrap();
    assert!(matrix.passed(), "{}", matrix.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_echoing_its_token_leaks_it_into_no_verdict() {
    let server = MockServer::start().await;
    let token = "at_echoed_by_partner_987654";
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 600}),
        ))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(422).set_body_json(serde_json::json!({
            "error": {"code": "nope", "message": format!("the token {token} may not do this")}
        })))
        .mount(&server)
        .await;
    let dir = tempdir("echo");
    let file = oauth_profile_file(&dir, OAUTH_BASIC);
    let json = dir.join("r.json");
    let base = server.uri();
    let args = [
        "certify".to_owned(),
        "--profile".to_owned(),
        file.display().to_string(),
        "--base-url".to_owned(),
        base,
        "--report".to_owned(),
        format!("json:{}", json.display()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
            .args(args)
            .env("ACME_CLIENT_ID", "id")
            .env("ACME_CLIENT_SECRET", "secret")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("may not do this"), "{stdout}");
    assert!(!stdout.contains(token), "{stdout}");
    let report = std::fs::read_to_string(json).unwrap();
    assert!(!report.contains(token));
}

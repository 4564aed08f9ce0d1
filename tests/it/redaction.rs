//! No secret and no personal value leaves spoke, whatever the partner does with them: a proxy in
//! front of the mock partner escapes what it answers (`\u00e9` and `\/` in JSON, `&#xE9;` and
//! `&#233;` in XML), echoes the credentials it was sent in its errors, its bodies and a header,
//! and words its errors like a Go JSON decoder. `spoke certify` runs against it for every auth
//! scheme, and every file it writes, its stdout and its stderr are searched for every form of
//! every secret and every personal value.

use crate::helpers::{pass_on, root, scratch, Passed};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use serde_json::Value;
use spoke::auth::{Credentials, Secret};
use spoke::partner::{self, Fault, PartnerOptions, PartnerState, Sandbox};
use spoke::profile::Profile;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How the proxy changes what the partner answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// JSON: non-ASCII as `\uXXXX` (surrogate pairs beyond the BMP), `/` as `\/`, `&<>'` as
    /// `\u0026`... (what many JSON libraries do by default).
    Json,
    /// XML: non-ASCII as character references, hexadecimal and decimal in turn.
    Xml,
}

struct Proxy {
    upstream: String,
    escape: Escape,
    /// Echo the credentials presented: in error messages, bodies and a header.
    echo: bool,
    /// Word errors like a Go decoder, with words that contain short sent values.
    go_errors: bool,
    client: reqwest::Client,
    /// Every request body forwarded: what InTouch sent.
    sent: Mutex<Vec<String>>,
}

fn escape_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '/' => out.push_str("\\/"),
            '&' | '<' | '>' | '\'' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, c) in text.chars().enumerate() {
        match c {
            c if c.is_ascii() => out.push(c),
            c if index % 2 == 0 => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push_str(&format!("&#{};", c as u32)),
        }
    }
    out
}

/// The credentials a request presents: the whole header value, the credential in it, an
/// API key in the query.
fn presented(request: &axum::http::request::Parts) -> Vec<String> {
    let mut found = Vec::new();
    for name in ["authorization", "x-api-key"] {
        if let Some(value) = request.headers.get(name).and_then(|v| v.to_str().ok()) {
            found.push(value.to_owned());
            if let Some((_, credential)) = value.split_once(' ') {
                found.push(credential.to_owned());
            }
        }
    }
    if let Some(query) = request.uri.query() {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name == "api_key" {
                found.push(value.into_owned());
            }
        }
    }
    found
}

/// The first string under `key` anywhere in `json`.
fn find_key<'a>(json: &'a Value, key: &str) -> Option<&'a str> {
    match json {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(|v| find_key(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let sent = String::from_utf8_lossy(&body).into_owned();
    proxy.sent.lock().unwrap().push(sent.clone());
    let Passed {
        status,
        headers,
        text,
    } = pass_on(&proxy.client, &proxy.upstream, &parts, &body).await;
    let credentials = presented(&parts);
    let text = match proxy.escape {
        Escape::Xml => escape_xml(&text),
        Escape::Json => match serde_json::from_str::<Value>(&text) {
            Err(_) => text,
            Ok(mut json) => {
                if let Some(Value::String(message)) = json.pointer_mut("/error/message") {
                    if proxy.go_errors {
                        let first_name = serde_json::from_str::<Value>(&sent)
                            .ok()
                            .and_then(|sent| find_key(&sent, "first_name").map(str::to_owned))
                            .unwrap_or_default();
                        *message = format!(
                            "{first_name}: {message}; Go struct field Lead.ownerId of type \
                             string; Analyst Banana Inesita Anas"
                        );
                    }
                    if proxy.echo {
                        for credential in &credentials {
                            message.push_str(&format!(" (token {credential})"));
                        }
                    }
                }
                if let (true, Value::Object(map)) = (proxy.echo, &mut json) {
                    let echoed: Vec<Value> = credentials
                        .iter()
                        .map(|credential| {
                            serde_json::json!({
                                "you sent": credential,
                                "urlencoded": form_urlencoded::byte_serialize(credential.as_bytes())
                                    .collect::<String>(),
                                "base64": base64::engine::general_purpose::STANDARD
                                    .encode(credential),
                            })
                        })
                        .collect();
                    map.insert("echo".into(), echoed.into());
                }
                escape_json(&serde_json::to_string(&json).unwrap())
            }
        },
    };
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if ["content-type", "location", "retry-after"].contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    if proxy.echo {
        for credential in &credentials {
            response = response.header("x-echo", credential);
        }
    }
    response.body(Body::from(text)).unwrap()
}

/// A mock partner for `profile` with `credentials` and `faults`, behind a proxy; the proxy's
/// base URL and the proxy (for what was sent).
async fn spawn_behind_proxy(
    profile: &Profile,
    credentials: Credentials,
    faults: &[Fault],
    escape: Escape,
    echo: bool,
    go_errors: bool,
) -> (String, Arc<Proxy>, partner::RunningPartner) {
    let state = PartnerState::with_options(
        profile.clone(),
        Sandbox::default_seed(),
        credentials,
        PartnerOptions {
            faults: faults.iter().copied().collect(),
            ..PartnerOptions::default()
        },
    );
    let upstream = partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let proxy = Arc::new(Proxy {
        upstream: upstream.base_url(),
        escape,
        echo,
        go_errors,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        sent: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), proxy, upstream)
}

/// The reference profile with another `[auth]` section.
fn reference_with_auth(auth: &str) -> String {
    let text = std::fs::read_to_string(root().join("fixtures/profiles/reference.toml")).unwrap();
    let start = text.find("\n[auth]\n").unwrap();
    let end = text.find("\n[capabilities]\n").unwrap();
    format!("{}\n[auth]\n{auth}\n{}", &text[..start], &text[end..])
}

/// Runs `spoke certify` against `base_url` with every report and a bundle, in `dir`; returns
/// every artifact as (name, text): stdout, stderr, the report files and the bundle's files.
async fn certify_artifacts(
    dir: &Path,
    profile_text: &str,
    base_url: &str,
    env: &[(&str, &str)],
    bundle: &str,
) -> Vec<(String, String)> {
    let profile = dir.join("profile.toml");
    std::fs::write(&profile, profile_text).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"));
    command
        .current_dir(dir)
        .args([
            "certify",
            "--profile",
            "profile.toml",
            "--base-url",
            base_url,
        ])
        .args(["--seed", "5", "--bundle", bundle])
        .args([
            "--report",
            "json:report.json",
            "--report",
            "junit:report.xml",
        ])
        .args(["--report", "html:report.html", "--report", "har:report.har"])
        .env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut artifacts = vec![
        ("stdout".to_owned(), stdout),
        (
            "stderr".to_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
    ];
    for name in ["report.json", "report.xml", "report.html", "report.har"] {
        artifacts.push((
            name.to_owned(),
            std::fs::read_to_string(dir.join(name)).unwrap(),
        ));
    }
    let bundle = spoke::bundle::read(&dir.join(bundle)).expect("a readable bundle");
    artifacts.push((
        format!("{} manifest.json", bundle.path.display()),
        serde_json::to_string(&bundle.manifest).unwrap(),
    ));
    for (name, bytes) in bundle.files {
        artifacts.push((
            format!("bundle {name}"),
            String::from_utf8(bytes).expect("bundle files are text"),
        ));
    }
    artifacts
}

/// Every spelling of `secret` that could carry it out: as it is, base64, URL-encoded, JSON-,
/// HTML- and XML-escaped, shell-quoted.
fn secret_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let percent = |set| percent_encoding::utf8_percent_encode(secret, set).to_string();
    let upper = percent(percent_encoding::NON_ALPHANUMERIC);
    let json = serde_json::to_string(secret).unwrap();
    let json = json[1..json.len() - 1].to_owned();
    let every_char_as = |format: &dyn Fn(char) -> String| secret.chars().map(format).collect();
    let html = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    vec![
        secret.to_owned(),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        upper.to_lowercase(),
        upper.clone(),
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        json.clone(),
        json.replace('/', "\\/"),
        escape_json(secret),
        every_char_as(&|c| format!("\\u{:04x}", c as u32)),
        html.replace('\'', "&#39;"),
        html.replace('\'', "&apos;"),
        every_char_as(&|c| format!("&#x{:X};", c as u32)),
        every_char_as(&|c| format!("&#{};", c as u32)),
        secret.replace('\'', r"'\''"),
        serde_json::to_string(&html.replace('\'', "&#39;")).unwrap(),
    ]
}

/// Whether `value` stands in `text` as a word of its own (not inside a longer word).
fn has_word(text: &str, value: &str) -> bool {
    let continues = |a: Option<char>, b: Option<char>| match (a, b) {
        (Some(a), Some(b)) => {
            (a.is_alphabetic() && b.is_alphabetic()) || (a.is_numeric() && b.is_numeric())
        }
        _ => false,
    };
    text.match_indices(value).any(|(at, found)| {
        let end = at + found.len();
        !continues(text[..at].chars().next_back(), value.chars().next())
            && !continues(value.chars().next_back(), text[end..].chars().next())
    })
}

/// Every spelling of a personal value: as it is, JSON `\u`-escaped (either case), percent-
/// encoded, as XML character references.
fn personal_forms(value: &str) -> Vec<String> {
    let escaped = |upper: bool, xml: Option<bool>| -> String {
        value
            .chars()
            .enumerate()
            .map(|(index, c)| match (c.is_ascii(), xml) {
                (true, _) => c.to_string(),
                (false, Some(_)) if index % 2 == 0 => format!("&#x{:X};", c as u32),
                (false, Some(_)) => format!("&#{};", c as u32),
                (false, None) => {
                    let mut units = [0u16; 2];
                    c.encode_utf16(&mut units)
                        .iter()
                        .map(|unit| {
                            if upper {
                                format!("\\u{unit:04X}")
                            } else {
                                format!("\\u{unit:04x}")
                            }
                        })
                        .collect()
                }
            })
            .collect()
    };
    let mut forms = vec![
        value.to_owned(),
        escaped(false, None),
        escaped(true, None),
        escaped(false, Some(true)),
        percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        form_urlencoded::byte_serialize(value.as_bytes()).collect(),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// The personal values of the run: what InTouch sent (the proxy saw it) and the partner's staff.
fn personal_values(proxy: &Proxy) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for body in proxy.sent.lock().unwrap().iter() {
        let Ok(json) = serde_json::from_str::<Value>(body) else {
            continue;
        };
        for key in [
            "first_name",
            "last_name",
            "email",
            "birth_date",
            "line1",
            "line2",
            "mobile",
            "home",
            "work",
        ] {
            if let Some(value) = find_key(&json, key) {
                values.push(value.to_owned());
            }
        }
    }
    for staff in Sandbox::default_seed().staff {
        values.extend(staff.email);
        values.push(staff.first_name);
        values.push(staff.last_name);
    }
    values.retain(|value| value.chars().count() >= 3);
    values.sort();
    values.dedup();
    values
}

fn assert_no_personal_value(artifacts: &[(String, String)], values: &[String]) {
    for (name, text) in artifacts {
        for value in values {
            for form in personal_forms(value) {
                assert!(
                    !has_word(text, &form),
                    "{name}: personal value `{value}` leaked as `{form}`"
                );
            }
        }
    }
}

/// An auth scheme to try: its name, its `[auth]` section, the credentials the partner expects,
/// the environment holding them, and every secret that must not come out.
type Scheme<'a> = (
    &'a str,
    String,
    Credentials,
    Vec<(&'a str, &'a str)>,
    Vec<String>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_any_secret_leaves_spoke_whatever_the_partner_echoes() {
    let token = "tok/Sec+ret=42&x'y";
    let key = "key/Sec+ret=42&k'y";
    let (user, password) = ("echo-user", "p@ss/w0rd+&'z");
    let pair = format!("{user}:{password}");
    let basic_b64 = base64::engine::general_purpose::STANDARD.encode(&pair);
    let schemes: Vec<Scheme> = vec![
        (
            "bearer",
            "scheme = \"bearer\"\ntoken-env = \"ECHO_TOKEN\"".into(),
            Credentials::Bearer(Secret::new(token)),
            vec![("ECHO_TOKEN", token)],
            vec![token.to_owned(), format!("Bearer {token}")],
        ),
        (
            "api-key-header",
            "scheme = \"api-key\"\nheader = \"X-Api-Key\"\nkey-env = \"ECHO_KEY\"".into(),
            Credentials::ApiKey {
                place: spoke::auth::KeyPlace::Header("X-Api-Key".into()),
                key: Secret::new(key),
            },
            vec![("ECHO_KEY", key)],
            vec![key.to_owned()],
        ),
        (
            "api-key-query",
            "scheme = \"api-key\"\nquery = \"api_key\"\nkey-env = \"ECHO_KEY\"".into(),
            Credentials::ApiKey {
                place: spoke::auth::KeyPlace::Query("api_key".into()),
                key: Secret::new(key),
            },
            vec![("ECHO_KEY", key)],
            vec![key.to_owned()],
        ),
        (
            "basic",
            "scheme = \"basic\"\nusername-env = \"ECHO_USER\"\npassword-env = \"ECHO_PASSWORD\""
                .into(),
            Credentials::Basic {
                username: Secret::new(user),
                password: Secret::new(password),
            },
            vec![("ECHO_USER", user), ("ECHO_PASSWORD", password)],
            vec![
                user.to_owned(),
                password.to_owned(),
                pair.clone(),
                basic_b64.clone(),
                format!("Basic {basic_b64}"),
            ],
        ),
    ];
    for (name, auth, credentials, env, secrets) in schemes {
        let dir = scratch("redaction", name);
        let profile_text = reference_with_auth(&auth);
        let profile = Profile::parse("profile.toml", &profile_text).unwrap();
        let (base_url, proxy, _upstream) = spawn_behind_proxy(
            &profile,
            credentials,
            &[Fault::RejectUnowned],
            Escape::Json,
            true,
            false,
        )
        .await;
        let bundle = if name == "basic" {
            "bundle.zip"
        } else {
            "bundle"
        };
        let artifacts = certify_artifacts(&dir, &profile_text, &base_url, &env, bundle).await;
        // The partner did echo them: the check is not vacuous.
        let json = &artifacts
            .iter()
            .find(|(n, _)| n == "report.json")
            .unwrap()
            .1;
        assert!(
            json.contains("(token ***"),
            "{name}: no echo reached the report"
        );
        assert!(json.contains("you sent"), "{name}: no echo in the bodies");
        for (artifact, text) in &artifacts {
            for secret in &secrets {
                for form in secret_forms(secret) {
                    assert!(
                        !text.contains(&form),
                        "{name}: {artifact} holds `{form}`, a form of a secret"
                    );
                }
            }
        }
        assert_no_personal_value(&artifacts, &personal_values(&proxy));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_values_a_partner_escapes_are_masked_in_every_artifact() {
    for (name, fixture, escape) in [
        ("json-escaped", "reference.toml", Escape::Json),
        ("xml-references", "xml-rest.toml", Escape::Xml),
    ] {
        let dir = scratch("redaction", name);
        let profile_text =
            std::fs::read_to_string(root().join("fixtures/profiles").join(fixture)).unwrap();
        let profile = Profile::parse("profile.toml", &profile_text).unwrap();
        let credentials = Credentials::generated(&profile.auth, 3);
        let env: Vec<(String, String)> = match &credentials {
            Credentials::Bearer(token) => {
                vec![("SPOKE_REFERENCE_TOKEN".into(), token.expose().into())]
            }
            Credentials::ApiKey { key, .. } => {
                vec![("SPOKE_XMLREST_KEY".into(), key.expose().into())]
            }
            other => panic!("{other:?}"),
        };
        let (base_url, proxy, upstream) =
            spawn_behind_proxy(&profile, credentials, &[], escape, false, false).await;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let artifacts = certify_artifacts(&dir, &profile_text, &base_url, &env, "bundle").await;
        // The partner did escape non-ASCII names: the check is not vacuous.
        let har = &artifacts.iter().find(|(n, _)| n == "report.har").unwrap().1;
        let marker = if escape == Escape::Json {
            "\\\\u00"
        } else {
            "&#"
        };
        assert!(har.contains(marker), "{name}: nothing escaped");
        let mut values = personal_values(&proxy);
        // The XML run's values: as the partner stored them.
        let store: Value = reqwest::get(format!(
            "{}{}/store",
            upstream.base_url(),
            partner::ADMIN_PREFIX
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        for record in store["prospects"]
            .as_array()
            .unwrap()
            .iter()
            .chain(store["members"].as_array().unwrap())
        {
            for key in ["first-name", "last-name", "email", "address-line1"] {
                values.extend(record[key].as_str().map(str::to_owned));
            }
        }
        assert!(
            values.iter().filter(|value| !value.is_ascii()).count() >= 5,
            "{name}: {values:?}"
        );
        assert_no_personal_value(&artifacts, &values);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_own_words_survive_masking_and_the_sent_values_in_them_do_not() {
    let dir = scratch("redaction", "go-errors");
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 4);
    let Credentials::Bearer(token) = &credentials else {
        unreachable!()
    };
    let token = token.expose().to_owned();
    let (base_url, proxy, _upstream) = spawn_behind_proxy(
        &profile,
        credentials.clone(),
        &[Fault::RejectUnowned],
        Escape::Json,
        false,
        true,
    )
    .await;
    let artifacts = certify_artifacts(
        &dir,
        &profile.text,
        &base_url,
        &[("SPOKE_REFERENCE_TOKEN", &token)],
        "bundle",
    )
    .await;
    let report: Value = serde_json::from_str(
        &artifacts
            .iter()
            .find(|(n, _)| n == "report.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let lead = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "LEAD-002")
        .unwrap();
    let reason = lead["reason"].as_str().unwrap();
    // `Ana` (a staff member's first name) and `Ines` are run values; the partner's words that
    // hold them are not.
    assert!(reason.contains("Go struct field Lead.ownerId"), "{reason}");
    for words in [
        "Go struct field Lead.ownerId of type string",
        "Analyst Banana Inesita Anas",
    ] {
        let bodies = report["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["response_body"].as_str())
            .filter(|body| body.contains("Go struct field"))
            .collect::<Vec<_>>();
        assert!(!bodies.is_empty());
        assert!(bodies.iter().all(|body| body.contains(words)), "{bodies:?}");
    }
    // The first name the partner quotes back is masked, in the reason and in the evidence.
    let values = personal_values(&proxy);
    assert!(values.iter().any(|value| value == "Ana"), "{values:?}");
    let quoted = reason
        .split("HTTP 422 (")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap();
    assert!(!quoted.is_empty(), "{reason}");
    assert!(
        quoted
            .chars()
            .all(|c| "xXöÖ9~".contains(c) || c.is_ascii_digit()),
        "the quoted first name `{quoted}` is not masked: {reason}"
    );
    assert_no_personal_value(&artifacts, &values);
}

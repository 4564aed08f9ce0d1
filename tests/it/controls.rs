//! Control characters a partner sends (`ESC[2J`, BEL, NUL, `U+0085`, a bidi override) never
//! reach a terminal or a report raw: `spoke certify` runs against a proxy that puts them into
//! the mock partner's error messages and names, and `spoke connector` is sent them in a
//! clubID; every artifact is searched for a raw one and for the escaped form shown instead.

use crate::formats::{validate_har, validate_junit};
use crate::helpers::{pass_on, root, scratch, Passed};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;
use spoke::auth::{Credentials, Secret};
use spoke::controls::is_control;
use spoke::partner::{self, PartnerOptions, PartnerState, Sandbox};
use spoke::profile::Profile;
use std::sync::Arc;

/// What the hostile partner adds to its texts.
/// A newline inside: the terminal shows it escaped too, where it would forge a row.
const HOSTILE: &str = "\x1b[2J\x07\0\n\u{85}\u{202e}\x7f";

/// The characters of `text` that are controls other than layout (`\n`, `\t`).
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| is_control(*c) && !matches!(c, '\n' | '\t'))
        .collect()
}

/// Appends [`HOSTILE`] to every error message and every name in `json`.
fn poison(json: &mut Value) {
    match json {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text)
                        if ["message", "name", "first_name", "last_name"]
                            .contains(&key.as_str()) =>
                    {
                        text.push_str(HOSTILE)
                    }
                    other => poison(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(poison),
        _ => {}
    }
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let Passed {
        status,
        headers,
        text,
    } = pass_on(&proxy.client, &proxy.upstream, &parts, &body).await;
    // serde_json escapes the C0 controls and leaves DEL, U+0085 and U+202E raw in the body.
    let text = match serde_json::from_str::<Value>(&text) {
        Ok(mut json) => {
            poison(&mut json);
            serde_json::to_string(&json).unwrap()
        }
        Err(_) => text,
    };
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if ["content-type", "location", "retry-after"].contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(text)).unwrap()
}

#[tokio::test]
async fn a_partners_control_characters_show_escaped_in_the_terminal_and_every_report() {
    let token = "tok-controls-123456";
    let profile = Profile::reference();
    let state = PartnerState::with_options(
        profile.clone(),
        Sandbox::default_seed(),
        Credentials::Bearer(Secret::new(token)),
        PartnerOptions::default(),
    );
    let upstream = partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let proxy = Arc::new(Proxy {
        upstream: upstream.base_url(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = scratch("controls", "certify");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"));
    command
        .current_dir(&dir)
        .args(["certify", "--profile"])
        .arg(root().join("fixtures/profiles/reference.toml"))
        .args(["--base-url", &base_url, "--seed", "5"])
        .args([
            "--report",
            "json:report.json",
            "--report",
            "junit:report.xml",
        ])
        .args(["--report", "html:report.html", "--report", "har:report.har"])
        .env("SPOKE_REFERENCE_TOKEN", token)
        .env("NO_COLOR", "1");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{stdout}\n{stderr}"
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let (json, xml, html, har) = (
        read("report.json"),
        read("report.xml"),
        read("report.html"),
        read("report.har"),
    );
    for (name, text) in [
        ("stdout", &stdout),
        ("stderr", &stderr),
        ("report.json", &json),
        ("report.xml", &xml),
        ("report.html", &html),
        ("report.har", &har),
    ] {
        assert_eq!(raw_controls(text), Vec::<char>::new(), "{name}:\n{text}");
    }
    // Shown escaped where a person reads them, and the same text kept in the machine formats.
    let shown = r"\u{1b}[2J\u{7}\u{0}\u{a}\u{85}\u{202e}\u{7f}";
    assert!(stdout.contains(shown), "{stdout}");
    // HTML keeps the newline: it is a body's layout in <pre>, a space elsewhere.
    let shown_in_html = shown.replace(r"\u{a}", "\n");
    assert!(
        html.contains(&shown_in_html),
        "the HTML report shows them escaped"
    );
    // The failing reasons here quote names the way Rust debug-quotes them (`\0` for NUL).
    assert!(
        xml.contains(r"\u{1b}[2J"),
        "the JUnit report shows them escaped"
    );
    validate_junit(&xml, "controls").unwrap();
    let report: Value = serde_json::from_str(&json).unwrap();
    let reasons: Vec<&str> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|reason| reason.contains(HOSTILE)),
        "the JSON report keeps the partner's text as it was: {reasons:?}"
    );
    assert!(json.contains(r"\u001b[2J\u0007\u0000\n\u0085\u202e\u007f"));
    let har: Value = serde_json::from_str(&har).unwrap();
    validate_har(&har).unwrap();
    assert!(
        har.to_string().contains('\u{202e}'),
        "the HAR keeps the bodies as received"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_club_id_with_control_characters_shows_escaped_in_spoke_connectors_output() {
    let dir = scratch("controls", "connector");
    let json = dir.join("send.json");
    let junit = dir.join("send.xml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["connector", "--port", "0", "--provider", "ACME"])
        .args(["--client", "C-7", "--club", "K-3", "--until", "1-calls"])
        .args(["--duration", "60s"])
        .arg("--report")
        .arg(format!("json:{}", json.display()))
        .arg("--report")
        .arg(format!("junit:{}", junit.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spoke runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let api = crate::helpers::connector_url(&mut stdout);
    let club = format!("K{HOSTILE}");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("identifier", "ACME"),
            ("clientID", "C-7"),
            ("clubID", club.as_str()),
            ("recordID", "P-1"),
        ])
        .finish();
    reqwest::get(format!("{api}/user?{query}")).await.unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert_eq!(raw_controls(&rest), Vec::<char>::new(), "{rest}");
    assert!(
        rest.contains(r"clubID `K\u{1b}[2J\u{7}\u{0}\u{a}\u{85}\u{202e}\u{7f}`"),
        "the reason quotes the clubID escaped, on its own line: {rest}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(raw_controls(&xml), Vec::<char>::new(), "{xml}");
    validate_junit(&xml, "connector-controls").unwrap();
    let text = std::fs::read_to_string(&json).unwrap();
    assert_eq!(raw_controls(&text), Vec::<char>::new(), "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    let kept = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["reason"].as_str().is_some_and(|r| r.contains(&club)));
    assert!(kept, "the JSON report keeps the clubID as sent: {text}");
    std::fs::remove_dir_all(&dir).ok();
}

//! Shared test helpers: fixture profiles, a mock partner on 127.0.0.1:0, a client for it, the CLI.

use spoke::auth::Credentials;
use spoke::connector::{ClientLimits, PartnerClient};
use spoke::partner::{self, PartnerState, RunningPartner, Sandbox};
use spoke::profile::Profile;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

/// The crate's root folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every profile in `fixtures/profiles`, by file stem, in name order.
pub fn fixture_profiles() -> Vec<(String, Profile)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/profiles"))
        .expect("fixtures/profiles exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let profile = Profile::load(&path).unwrap_or_else(|error| panic!("{error}"));
            (name, profile)
        })
        .collect()
}

/// A mock partner for `profile` on an ephemeral port, with generated credentials.
pub async fn spawn_partner(profile: &Profile) -> (RunningPartner, Credentials) {
    let credentials = Credentials::generated(&profile.auth, 7);
    let state = PartnerState::new(
        profile.clone(),
        Sandbox::default_seed(),
        credentials.clone(),
    );
    let running = partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the mock partner binds 127.0.0.1:0");
    // A token endpoint on another host is served by the mock at its own path.
    let origin = reqwest::Url::parse(&running.base_url()).expect("the mock's URL");
    let credentials = credentials.with_token_endpoint_at(&profile.partner.base_url, &origin);
    (running, credentials)
}

/// A client for a running mock partner.
pub fn client_for(
    profile: &Profile,
    running: &RunningPartner,
    credentials: &Credentials,
) -> PartnerClient {
    PartnerClient::new(
        Arc::new(profile.clone()),
        &running.base_url(),
        credentials.clone(),
        ClientLimits::default(),
    )
    .expect("a valid base URL")
}

/// Options that certify `profile` against its in-process mock partner with `faults` and `seed`,
/// with defaults every test shares; tests change what they are about.
pub fn mock_certify(
    profile: Profile,
    faults: spoke::partner::Faults,
    seed: u64,
) -> spoke::certify::CertifyOptions {
    let profile_arg = (profile.file_name != spoke::profile::REFERENCE_PROFILE_NAME)
        .then(|| profile.file_name.clone());
    spoke::certify::CertifyOptions {
        profile,
        profile_arg,
        base_url: None,
        mock: true,
        sandbox: Sandbox::default_seed(),
        faults,
        seed,
        only: Vec::new(),
        limits: ClientLimits::default(),
        latency_budget: std::time::Duration::from_secs(2),
        disabled_checks: Vec::new(),
        show_personal_data: false,
        two_way: Default::default(),
        redactor: Default::default(),
    }
}

/// Runs the `spoke` binary with `args` in `dir`.
pub fn run_cli(args: &[&str], dir: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the spoke binary runs")
}

/// What a test proxy got back from the partner behind it.
pub struct Passed {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

/// Sends a request a test proxy received on to `upstream` as it came (but for `Host` and
/// `Content-Length`, which the client sets), and reads the answer.
pub async fn pass_on(
    client: &reqwest::Client,
    upstream: &str,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Passed {
    let target = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forwarded = client
        .request(parts.method.clone(), target)
        .body(body.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = forwarded.send().await.expect("the mock partner answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let text = answer.text().await.unwrap_or_default();
    Passed {
        status,
        headers,
        text,
    }
}

/// The API URL a `spoke connector` process announces on its first line of output.
pub fn connector_url(stdout: &mut impl std::io::BufRead) -> String {
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    first
        .trim()
        .strip_prefix("spoke connector listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned()
}

/// A fresh, empty folder of one test under `target/test-scratch/AREA`.
pub fn scratch(area: &str, name: &str) -> PathBuf {
    let dir = root()
        .join("target/test-scratch")
        .join(area)
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

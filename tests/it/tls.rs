//! Mutual TLS on both sides: the client presenting a certificate from the files its variables
//! name, the mock partner serving https and requiring one signed by its CA, and every problem
//! with those files a clear error naming the variable and the file.

use crate::helpers::mock_certify;
use crate::oauth::{reference_with_auth, tempdir, OAUTH_BASIC};
use spoke::auth::Credentials;
use spoke::connector::{ClientLimits, PartnerClient};
use spoke::partner::{self, Faults, Sandbox};
use spoke::profile::{OperationKind, Profile};
use spoke::tls::{ClientTls, MockPki};
use std::path::Path;
use std::sync::Arc;

const TLS_SECTION: &str = "[tls]
client-cert-env = \"ACME_CLIENT_CERT\"
client-key-env = \"ACME_CLIENT_KEY\"
ca-cert-env = \"ACME_CA_CERT\"
";

/// The reference profile at an https base URL with `auth` and `tls` as given.
fn tls_profile_text(auth: &str, tls: &str) -> String {
    reference_with_auth(auth)
        .replace("http://127.0.0.1:8080", "https://127.0.0.1:8443")
        .replacen("\n[capabilities]", &format!("\n{tls}\n[capabilities]"), 1)
}

const BEARER: &str = "scheme = \"bearer\"\ntoken-env = \"ACME_TOKEN\"\n";

fn tls_profile(auth: &str, tls: &str) -> Profile {
    Profile::parse("mtls.toml", &tls_profile_text(auth, tls)).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn certify_against_the_mock_passes_over_mutual_tls_with_any_scheme() {
    let ca_only = "[tls]\nca-cert-env = \"ACME_CA_CERT\"\n";
    for (auth, tls) in [
        (BEARER, TLS_SECTION),
        (OAUTH_BASIC, TLS_SECTION),
        (BEARER, ca_only),
    ] {
        let report =
            spoke::certify::certify(mock_certify(tls_profile(auth, tls), Faults::none(), 4), &())
                .await
                .unwrap();
        let failing: Vec<_> = report
            .verdicts
            .iter()
            .filter(|v| !matches!(v.outcome.as_str(), "pass" | "skip"))
            .map(|v| format!("{} {} {}", v.rule, v.outcome.as_str(), v.reason))
            .collect();
        assert_eq!(report.exit_code, 0, "{auth}{tls}\n{failing:#?}");
        assert!(report.partner.base_url.starts_with("https://127.0.0.1:"));
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains("PRIVATE KEY"));
    }
}

#[tokio::test]
async fn the_mock_partner_requires_a_client_certificate_signed_by_its_ca() {
    let profile = tls_profile(BEARER, TLS_SECTION);
    let credentials = Credentials::generated(&profile.auth, 1);
    let pki = MockPki::generate().unwrap();
    let state = partner::PartnerState::new(
        profile.clone(),
        Sandbox::default_seed(),
        credentials.clone(),
    );
    let running = partner::spawn_tls(
        state,
        "127.0.0.1:0".parse().unwrap(),
        &pki.server_tls(true).unwrap(),
        pki.client_tls(true),
    )
    .await
    .unwrap();
    let base = running.base_url();
    assert!(base.starts_with("https://"), "{base}");
    let call = |tls: ClientTls| {
        let client = PartnerClient::with_tls(
            Arc::new(profile.clone()),
            &base,
            credentials.clone(),
            ClientLimits::default(),
            &tls,
        )
        .unwrap();
        async move {
            client
                .call(OperationKind::SourceList, "sources", None, None, &[], None)
                .await
        }
    };
    let answer = call(running.client_tls()).await.unwrap();
    assert_eq!(answer.status, 200);
    // The CA trusted, but no client certificate.
    let without = ClientTls::from_pem(None, Some(&pki.ca_pem)).unwrap();
    let refused = call(without).await.unwrap_err();
    assert!(!refused.timed_out, "{}", refused.message);
    // A client certificate from another CA.
    let other = MockPki::generate().unwrap();
    let foreign = ClientTls::from_pem(
        Some((&other.client_cert_pem, &key_of(&other))),
        Some(&pki.ca_pem),
    )
    .unwrap();
    assert!(call(foreign).await.is_err());
    // The right client certificate, but a server certificate the client does not trust.
    let untrusted = ClientTls::from_pem(Some((&pki.client_cert_pem, &key_of(&pki))), None).unwrap();
    assert!(call(untrusted).await.is_err());
    // The server goes on serving after refused handshakes.
    assert_eq!(call(running.client_tls()).await.unwrap().status, 200);
}

fn key_of(pki: &MockPki) -> String {
    let dir = tempdir("key-of");
    let files = pki.write_to(&dir).unwrap();
    std::fs::read_to_string(files.client_key).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs `spoke certify` on the mTLS profile at `dir` with `env`, against nothing listening
/// (the files are checked before any request).
fn certify_with(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let profile = write(dir, "mtls.toml", &tls_profile_text(BEARER, TLS_SECTION));
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"));
    command
        .args([
            "certify",
            "--profile",
            &profile,
            "--base-url",
            "https://127.0.0.1:9",
        ])
        .env("ACME_TOKEN", "tok_tls_test_123456")
        .env_remove("ACME_CLIENT_CERT")
        .env_remove("ACME_CLIENT_KEY")
        .env_remove("ACME_CA_CERT");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_unreadable_or_malformed_pem_is_a_clear_error_naming_variable_and_file() {
    let dir = tempdir("bad-pem");
    let pki = MockPki::generate().unwrap();
    let other = MockPki::generate().unwrap();
    let files = pki.write_to(&dir.join("good")).unwrap();
    let other_files = other.write_to(&dir.join("other")).unwrap();
    let (cert, key, ca) = (
        files.client_cert.display().to_string(),
        files.client_key.display().to_string(),
        files.ca.display().to_string(),
    );
    let key_text = std::fs::read_to_string(&files.client_key).unwrap();
    let garbage = write(&dir, "garbage.pem", "not a certificate at all\n");
    let broken = write(
        &dir,
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
    );
    let encrypted = write(
        &dir,
        "encrypted.pem",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let missing = dir.join("missing.pem").display().to_string();
    let other_key = other_files.client_key.display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
        (
            vec![("ACME_CLIENT_KEY", &key), ("ACME_CA_CERT", &ca)],
            "tls.client-cert-env: environment variable ACME_CLIENT_CERT is not set (it must hold the path of the client certificate, a PEM file)".into(),
        ),
        (
            vec![("ACME_CLIENT_CERT", &missing), ("ACME_CLIENT_KEY", &key), ("ACME_CA_CERT", &ca)],
            format!("tls.client-cert-env: ACME_CLIENT_CERT names {missing}, which cannot be read: No such file or directory"),
        ),
        (
            vec![("ACME_CLIENT_CERT", &garbage), ("ACME_CLIENT_KEY", &key), ("ACME_CA_CERT", &ca)],
            format!("tls.client-cert-env: ACME_CLIENT_CERT names {garbage}, which holds no PEM certificate"),
        ),
        (
            vec![("ACME_CLIENT_CERT", &broken), ("ACME_CLIENT_KEY", &key), ("ACME_CA_CERT", &ca)],
            format!("tls.client-cert-env: ACME_CLIENT_CERT names {broken}, which is not valid PEM"),
        ),
        (
            vec![("ACME_CLIENT_CERT", &cert), ("ACME_CLIENT_KEY", &cert), ("ACME_CA_CERT", &ca)],
            format!("tls.client-key-env: ACME_CLIENT_KEY names {cert}, which holds no PEM private key"),
        ),
        (
            vec![("ACME_CLIENT_CERT", &cert), ("ACME_CLIENT_KEY", &encrypted), ("ACME_CA_CERT", &ca)],
            format!("tls.client-key-env: ACME_CLIENT_KEY names {encrypted}, which holds an encrypted private key"),
        ),
        (
            vec![("ACME_CLIENT_CERT", &cert), ("ACME_CLIENT_KEY", &other_key), ("ACME_CA_CERT", &ca)],
            format!("tls.client-key-env: ACME_CLIENT_KEY names {other_key}, which holds a private key that does not belong to the certificate in {cert} (ACME_CLIENT_CERT)"),
        ),
        (
            vec![("ACME_CLIENT_CERT", &cert), ("ACME_CLIENT_KEY", &key), ("ACME_CA_CERT", &garbage)],
            format!("tls.ca-cert-env: ACME_CA_CERT names {garbage}, which holds no PEM certificate"),
        ),
    ];
    for (env, expected) in cases {
        let (code, stderr) = certify_with(&dir, &env);
        assert_eq!(code, Some(2), "{env:?}: {stderr}");
        assert!(
            stderr.contains(&expected),
            "{env:?}:\n{stderr}\nexpected: {expected}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !stderr.contains(key_text.lines().nth(1).unwrap()),
            "{stderr}"
        );
    }
}

#[test]
fn spoke_partner_serves_mutual_tls_and_prints_what_to_export() {
    use std::io::{BufRead, BufReader};
    let dir = tempdir("partner-tls");
    let profile = write(
        &dir,
        "both.toml",
        &tls_profile_text(OAUTH_BASIC, TLS_SECTION),
    );
    let pki_dir = dir.join("pki");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args([
            "partner",
            "--profile",
            &profile,
            "--port",
            "0",
            "--token-lifetime",
            "60",
        ])
        .arg("--tls-dir")
        .arg(&pki_dir)
        .env("ACME_CLIENT_ID", "acme-client")
        .env("ACME_CLIENT_SECRET", "acme-secret-4711")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("admin:");
        seen.push(line);
        if done {
            break;
        }
    }
    let url = seen[0]
        .strip_prefix("spoke partner listening on ")
        .unwrap()
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{seen:#?}");
    let text = seen.join("\n");
    assert!(
        text.contains(
            "  token            POST   /oauth/token  (OAuth client credentials; tokens live 60 s"
        ),
        "{text}"
    );
    assert!(
        text.contains("  export ACME_CLIENT_ID ACME_CLIENT_SECRET"),
        "{text}"
    );
    let export = seen
        .iter()
        .find(|line| line.starts_with("  export ACME_CLIENT_CERT="))
        .unwrap_or_else(|| panic!("{text}"));
    let assignments: Vec<(String, String)> = export
        .trim_start()
        .trim_start_matches("export ")
        .split(' ')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    assert_eq!(
        assignments
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["ACME_CLIENT_CERT", "ACME_CLIENT_KEY", "ACME_CA_CERT"]
    );
    assert!(!text.contains("acme-secret-4711") && !text.contains("PRIVATE KEY"));
    let certify = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args([
            "certify",
            "--profile",
            &profile,
            "--base-url",
            &url,
            "--seed",
            "3",
        ])
        .env("ACME_CLIENT_ID", "acme-client")
        .env("ACME_CLIENT_SECRET", "acme-secret-4711")
        .envs(assignments.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .output()
        .unwrap();
    let unexported = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args([
            "certify",
            "--profile",
            &profile,
            "--base-url",
            &url,
            "--seed",
            "3",
        ])
        .env("ACME_CLIENT_ID", "acme-client")
        .env("ACME_CLIENT_SECRET", "acme-secret-4711")
        .env("ACME_CLIENT_CERT", &assignments[0].1)
        .env("ACME_CLIENT_KEY", &assignments[1].1)
        .env("ACME_CA_CERT", "/no/such/ca.pem")
        .output()
        .unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(certify.status.code(), Some(0), "{certify:?}");
    assert_eq!(unexported.status.code(), Some(2), "{unexported:?}");
}

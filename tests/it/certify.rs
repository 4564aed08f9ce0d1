//! certify end to end against the mock partner: verdicts per fixture shape, faults caught by the
//! right rules, reports, determinism and exit codes.

use crate::helpers::{fixture_profiles, root, run_cli};
use spoke::certify::{certify, CertifyOptions};
use spoke::partner::{Fault, Faults};
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use spoke::report::terminal::{self, Style};
use spoke::suite::Outcome;
use std::collections::BTreeSet;
use std::time::Duration;

/// A fixture profile, named by its path relative to the crate as a user would give it.
fn fixture(name: &str) -> Profile {
    let relative = format!("fixtures/profiles/{name}.toml");
    let text = std::fs::read_to_string(root().join(&relative)).unwrap();
    Profile::parse(&relative, &text).unwrap()
}

fn options(profile: Profile, faults: Faults, seed: u64) -> CertifyOptions {
    crate::helpers::mock_certify(profile, faults, seed)
}

async fn run(options: CertifyOptions) -> RunReport {
    certify(options, &()).await.expect("the run starts")
}

fn rules_with(report: &RunReport, outcome: Outcome) -> BTreeSet<String> {
    report
        .verdicts
        .iter()
        .filter(|v| v.outcome == outcome)
        .map(|v| v.rule.clone())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn every_fixture_profile_passes_against_its_mock_partner() {
    let expected_skips = [
        (
            "create-only-sources",
            set(&["SRC-001", "SRC-002", "SRC-003", "SRC-006", "STAFF-006"]),
        ),
        (
            "dynamics",
            set(&["RETRY-001", "SRC-005", "SRC-006", "STAFF-006"]),
        ),
        (
            "glofox",
            set(&[
                "LEAD-002",
                "LEAD-003",
                "MEM-001",
                "MEM-002",
                "RETRY-001",
                "SRC-003",
                "SRC-005",
                "SRC-006",
                "STAFF-001",
                "STAFF-002",
                "STAFF-003",
                "STAFF-004",
                "STAFF-005",
                "STAFF-006",
            ]),
        ),
        (
            "hubspot",
            set(&["SRC-003", "SRC-005", "SRC-006", "STAFF-006"]),
        ),
        (
            "keap",
            set(&[
                "MEM-001",
                "MEM-002",
                "RETRY-001",
                "SRC-005",
                "SRC-006",
                "STAFF-006",
            ]),
        ),
        ("members-only", {
            let mut skips = set(&[
                "STAFF-001",
                "STAFF-002",
                "STAFF-003",
                "STAFF-004",
                "STAFF-005",
            ]);
            skips.extend(set(&[
                "LEAD-001", "LEAD-002", "LEAD-003", "LEAD-004", "LEAD-005",
            ]));
            skips.extend(set(&[
                "SRC-001",
                "SRC-002",
                "SRC-003",
                "SRC-004",
                "SRC-005",
                "SRC-006",
                "STAFF-006",
            ]));
            skips
        }),
        (
            "mindbody",
            set(&[
                "RETRY-001",
                "SRC-003",
                "SRC-005",
                "SRC-006",
                "STAFF-005",
                "STAFF-006",
            ]),
        ),
        ("nested-envelope", set(&["SRC-005", "MEM-001", "MEM-002"])),
        (
            "pipedrive",
            set(&[
                "MEM-001",
                "MEM-002",
                "RETRY-001",
                "SRC-003",
                "SRC-005",
                "SRC-006",
                "STAFF-006",
            ]),
        ),
        ("reference", set(&["SRC-005", "SRC-006", "STAFF-006"])),
        (
            "salesforce",
            set(&["SRC-003", "SRC-005", "SRC-006", "STAFF-006"]),
        ),
        ("soap", set(&["SRC-005"])),
        ("two-way", set(&["SRC-005", "SRC-006", "STAFF-006"])),
        ("xml-rest", set(&["SRC-005", "SRC-006", "STAFF-006"])),
        (
            "zendesk-sell",
            set(&[
                "MEM-001",
                "MEM-002",
                "RETRY-001",
                "SRC-005",
                "SRC-006",
                "STAFF-006",
            ]),
        ),
        ("zoho", set(&["SRC-003", "SRC-005", "SRC-006", "STAFF-006"])),
    ];
    let profiles = fixture_profiles();
    assert_eq!(profiles.len(), expected_skips.len());
    for ((name, profile), (expected_name, skips)) in profiles.into_iter().zip(expected_skips) {
        assert_eq!(name, expected_name);
        let report = run(options(profile, Faults::none(), 42)).await;
        let not_passed: Vec<_> = report
            .verdicts
            .iter()
            .filter(|v| !matches!(v.outcome, Outcome::Pass | Outcome::Skip))
            .map(|v| format!("{} {:?}: {}", v.rule, v.outcome, v.reason))
            .collect();
        assert!(not_passed.is_empty(), "{name}: {not_passed:#?}");
        assert_eq!(rules_with(&report, Outcome::Skip), skips, "{name}");
        assert_eq!(report.exit_code, 0, "{name}");
    }
}

#[tokio::test]
async fn selftest_catches_every_fault_with_exactly_its_rules_on_every_fixture() {
    let matrix = spoke::selftest::run_matrix(&spoke::selftest::fixture_profiles(), 1, &[])
        .await
        .unwrap();
    assert!(matrix.passed(), "{}", matrix.render());
    let faults_run: BTreeSet<_> = matrix.rows.iter().filter_map(|row| row.fault).collect();
    assert!(
        faults_run.len() >= 20,
        "only {} faults ran",
        faults_run.len()
    );
    let for_certify = Fault::ALL.iter().filter(|f| !f.simulate_only()).count();
    assert_eq!(
        faults_run.len(),
        for_certify,
        "every fault but the load-run ones applies to some fixture"
    );
    let mut malformed = Vec::new();
    for row in &matrix.rows {
        for (rule, reason) in &row.reasons {
            if let Err(problem) = one_sentence(reason) {
                let fault = row.fault.map(|f| f.name()).unwrap_or("(none)");
                malformed.push(format!(
                    "{} {fault} {rule}: {problem}: {reason}",
                    row.profile
                ));
            }
        }
    }
    malformed.sort();
    malformed.dedup();
    assert!(malformed.is_empty(), "{malformed:#?}");
}

/// Whether `reason` reads as one sentence: a capital (or a digit or a quoted value) first, a
/// full stop last, and no second sentence outside quotes and parentheses.
fn one_sentence(reason: &str) -> Result<(), &'static str> {
    let first = reason.chars().next().ok_or("empty")?;
    if !(first.is_uppercase() || first.is_ascii_digit() || first == '`') {
        return Err("does not start with a capital");
    }
    if !reason.ends_with('.') || reason.ends_with("..") {
        return Err("does not end in one full stop");
    }
    if reason.contains('\n') {
        return Err("has a line break");
    }
    // What the partner said, and quoted values, may hold anything.
    let mut plain = String::new();
    let (mut quoted, mut nested) = (false, 0usize);
    // Each quoted or parenthesised stretch stands as one word, `X`.
    for c in reason.chars() {
        match c {
            '`' | '"' if nested == 0 => {
                if !quoted {
                    plain.push('X');
                }
                quoted = !quoted;
            }
            '(' if !quoted => {
                if nested == 0 {
                    plain.push('X');
                }
                nested += 1;
            }
            ')' if !quoted => nested = nested.saturating_sub(1),
            _ if !quoted && nested == 0 => plain.push(c),
            _ => {}
        }
    }
    let body = plain.strip_suffix('.').unwrap_or(&plain);
    let second = body
        .match_indices(". ")
        .any(|(at, _)| body[at + 2..].starts_with(char::is_uppercase));
    if second || body.ends_with(':') || body.contains(";;") {
        return Err("reads as more than one sentence");
    }
    if plain.contains("  ") || plain.contains(" .") || plain.contains(" ,") {
        return Err("has a double space or a space before a stop or a comma");
    }
    Ok(())
}

#[test]
fn a_reason_is_judged_as_one_sentence() {
    assert_eq!(
        one_sentence("The lookup of `x` answered HTTP 200 with nothing usable: no record."),
        Ok(())
    );
    assert_eq!(one_sentence("4 prospect(s) were accepted."), Ok(()));
    assert!(one_sentence("the lookup of `x` the answer holds no staff record").is_err());
    assert!(one_sentence("Saved. Then lost.").is_err());
    assert!(one_sentence("Saved (as `a. B`).").is_ok());
}

#[tokio::test]
async fn switching_off_any_single_check_makes_the_selftest_fail() {
    let profiles = spoke::selftest::fixture_profiles();
    // The SEND- rules too: the two-way fixture's sending faults must notice their checks' absence.
    for rule in spoke::suite::Catalog::builtin().rules {
        // Only the rows whose fault this rule must catch can notice its absence; one profile
        // per fault is enough to notice it (the full matrix runs in the test above).
        let seen = std::cell::RefCell::new(BTreeSet::new());
        let matrix = spoke::selftest::run_matrix_where(
            &profiles,
            1,
            std::slice::from_ref(&rule.id),
            |p, f| {
                f.is_some_and(|fault| {
                    fault.expected(p).contains(&rule.id) && seen.borrow_mut().insert(fault)
                })
            },
        )
        .await
        .unwrap();
        assert!(!matrix.rows.is_empty(), "no fault is caught by {}", rule.id);
        assert!(
            !matrix.passed(),
            "{} switched off, yet the selftest passed:\n{}",
            rule.id,
            matrix.render()
        );
    }
}

#[tokio::test]
async fn a_failing_run_cites_evidence_and_a_replay_command() {
    let report = run(options(
        fixture("nested-envelope"),
        [Fault::SourceCaseSensitive].into_iter().collect(),
        5,
    ))
    .await;
    let failed: Vec<_> = report
        .verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Fail)
        .collect();
    assert_eq!(failed.len(), 1);
    let verdict = failed[0];
    assert_eq!(verdict.rule, "SRC-002");
    assert!(!verdict.evidence.is_empty());
    assert!(!verdict.curl.is_empty());
    assert_eq!(
        verdict.reproduce,
        "spoke certify --profile fixtures/profiles/nested-envelope.toml --mock --fault source-case-sensitive --seed 5 --only SRC-002"
    );
}

#[tokio::test]
async fn a_partner_slower_than_the_timeout_gets_error_verdicts_not_a_hang() {
    let profile = fixture("members-only");
    let mut options = options(profile, [Fault::Slow].into_iter().collect(), 1);
    options.limits.request_timeout = Duration::from_millis(200);
    let report = tokio::time::timeout(Duration::from_secs(20), run(options))
        .await
        .expect("the run ends");
    assert_eq!(rules_with(&report, Outcome::Fail), BTreeSet::new());
    // Every rule that applies needs an answer: all end in error, none passes unchecked.
    let applicable: BTreeSet<String> = report
        .verdicts
        .iter()
        .filter(|v| v.outcome != Outcome::Skip)
        .map(|v| v.rule.clone())
        .collect();
    assert_eq!(rules_with(&report, Outcome::Error), applicable);
    assert!(applicable.is_superset(&set(&["MEM-001", "MEM-002", "SEC-001", "ROB-001"])));
    assert_eq!(report.exit_code, 3);
    assert!(report.unreachable.is_some());
}

#[tokio::test]
async fn the_same_seed_replays_the_same_requests() {
    let bodies = |report: &RunReport| -> Vec<Option<String>> {
        report
            .exchanges
            .iter()
            .map(|e| e.request_body.clone())
            .collect()
    };
    let first = run(options(Profile::reference(), Faults::none(), 99)).await;
    let second = run(options(Profile::reference(), Faults::none(), 99)).await;
    let third = run(options(Profile::reference(), Faults::none(), 100)).await;
    assert_eq!(bodies(&first), bodies(&second));
    assert_ne!(bodies(&first), bodies(&third));
}

#[tokio::test]
async fn only_reports_the_named_rules() {
    let mut options = options(Profile::reference(), Faults::none(), 3);
    options.only = vec!["lead-002".into(), "SRC-002".into()];
    let report = run(options).await;
    let rules: Vec<&str> = report.verdicts.iter().map(|v| v.rule.as_str()).collect();
    assert_eq!(rules, ["LEAD-002", "SRC-002"]);
}

/// Ports and timings change from run to run; everything else must not.
pub(crate) fn redact(mut report: RunReport) -> RunReport {
    let base = report.partner.base_url.clone();
    report.partner.base_url = "http://127.0.0.1:[port]".into();
    report.duration_ms = 0;
    report.started_at = "[time]".into();
    for exchange in &mut report.exchanges {
        exchange.url = exchange.url.replace(&base, "http://127.0.0.1:[port]");
        exchange.started_ms = 0;
        exchange.duration_ms = 0;
        exchange.duration_us = 0;
        for (name, value) in &mut exchange.response_headers {
            if name == "date" {
                *value = "[date]".into();
            }
        }
    }
    for verdict in &mut report.verdicts {
        for curl in &mut verdict.curl {
            *curl = curl.replace(&base, "http://127.0.0.1:[port]");
        }
    }
    report
}

#[tokio::test]
async fn the_json_report_is_stable() {
    let profile = fixture("members-only");
    let report = redact(run(options(profile, Faults::none(), 42)).await);
    insta::assert_snapshot!(spoke::report::json::render(&report));
}

#[tokio::test]
async fn the_terminal_report_shows_evidence_for_a_failure() {
    let report = redact(
        run(options(
            Profile::reference(),
            [Fault::RejectUnowned].into_iter().collect(),
            42,
        ))
        .await,
    );
    insta::assert_snapshot!(terminal::render(&report, Style { color: false }));
}

#[test]
fn the_rules_command_prints_the_catalog() {
    let output = run_cli(&["rules"], &root());
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
    let json = run_cli(&["rules", "--format", "json"], &root());
    let catalog: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rules = catalog["rule"].as_array().unwrap();
    assert_eq!(rules.len(), 34);
    let sending = rules
        .iter()
        .filter(|rule| rule["applies"] == serde_json::json!(["sends"]))
        .count();
    assert_eq!(
        sending, 9,
        "the SEND- rules apply to the sending direction only"
    );
}

#[test]
fn certify_with_no_arguments_certifies_the_built_in_partner_and_writes_reports() {
    let dir = std::env::temp_dir().join(format!("spoke-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let junit = dir.join("report.xml");
    let output = run_cli(
        &[
            "certify",
            "--seed",
            "42",
            "--report",
            &format!("json:{}", json.display()),
            "--report",
            &format!("junit:{}", junit.display()),
        ],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("result: CONFORMANT (exit 0)"), "{stdout}");
    assert!(!stdout.contains("\u{1b}["), "no colour outside a terminal");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["verdicts"].as_array().unwrap().len(), 25);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), 25);
    assert_eq!(xml.matches("<skipped").count(), 3);
    assert!(!xml.contains("<failure"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failing_partner_exits_1_with_failures_in_junit() {
    let dir = std::env::temp_dir().join(format!("spoke-cli-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("report.xml");
    let output = run_cli(
        &[
            "certify",
            "--seed",
            "1",
            "--fault",
            "reject-unowned",
            "--report",
            &format!("junit:{}", junit.display()),
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_har_report_holds_every_exchange_and_names_the_rules_it_evidences() {
    let report = run(options(
        Profile::reference(),
        [Fault::RejectUnowned].into_iter().collect(),
        8,
    ))
    .await;
    let har: serde_json::Value =
        serde_json::from_str(&spoke::report::har::render(&report)).unwrap();
    let log = &har["log"];
    assert_eq!(log["version"], "1.2");
    assert_eq!(log["creator"]["name"], "spoke");
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), report.exchanges.len());
    for entry in entries {
        for key in [
            "startedDateTime",
            "time",
            "request",
            "response",
            "cache",
            "timings",
        ] {
            assert!(!entry[key].is_null(), "{key} missing in {entry}");
        }
        assert!(
            chrono::DateTime::parse_from_rfc3339(entry["startedDateTime"].as_str().unwrap())
                .is_ok()
        );
        assert!(entry["request"]["headers"].is_array());
        assert!(entry["response"]["status"].is_u64());
        assert!(entry["response"]["content"]["mimeType"].is_string());
    }
    let failing = report
        .verdicts
        .iter()
        .find(|v| v.rule == "LEAD-002")
        .unwrap();
    let evidence = entries
        .iter()
        .find(|e| e["_id"] == failing.evidence[0])
        .unwrap();
    assert!(evidence["_rules"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("LEAD-002")));
    assert_eq!(evidence["response"]["status"], 422);
    let text = har.to_string();
    assert!(
        !text.contains("spoke-SPOKE_REFERENCE_TOKEN"),
        "a secret leaked into the HAR"
    );
    assert!(text.contains("***"));
}

/// Every report format of `report`, rendered.
fn every_artifact(report: &RunReport) -> Vec<(&'static str, String)> {
    vec![
        ("terminal", terminal::render(report, Style { color: false })),
        ("json", spoke::report::json::render(report)),
        ("junit", spoke::report::junit::render(report)),
        ("har", spoke::report::har::render(report)),
        // Unescaped, so a value with a quote or an ampersand is still found.
        (
            "html",
            spoke::report::html::render(report)
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        ),
    ]
}

#[tokio::test]
async fn no_secret_or_personal_value_appears_in_any_artifact() {
    let profile = fixture("nested-envelope");
    let secret_values: Vec<String> = {
        let credentials = spoke::auth::Credentials::generated(&profile.auth, 9);
        credentials
            .secrets()
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let mut options = options(profile, [Fault::RejectUnowned].into_iter().collect(), 9);
    let masked = run(options.clone()).await;
    options.show_personal_data = true;
    let shown = run(options).await;
    // The planted values: what the run sent and the partner's staff it saw.
    let mut personal: Vec<String> = Vec::new();
    for exchange in &shown.exchanges {
        let Some(body) = &exchange.request_body else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        for pointer in [
            "/prospect/person/name/given",
            "/prospect/person/name/family",
            "/prospect/contact/emailAddress",
            "/prospect/contact/mobile",
            "/prospect/person/birthDate",
        ] {
            if let Some(value) = json.pointer(pointer).and_then(|v| v.as_str()) {
                personal.push(value.to_owned());
            }
        }
    }
    personal.sort();
    personal.dedup();
    assert!(personal.len() >= 10, "{personal:?}");
    let profile = fixture("nested-envelope");
    let context = spoke::bundle::RunContext {
        profile_text: profile.text.clone(),
        profile_digest: spoke::digest::sha256(profile.text.as_bytes()),
        latency_budget: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        finished_at: masked.started_at.clone(),
    };
    let bundle_files =
        spoke::bundle::contents(&spoke::output::Output::default(), &masked, &context)
            .into_iter()
            .map(|(name, text)| (name, text.into_string()));
    let artifacts = every_artifact(&masked)
        .into_iter()
        .map(|(name, text)| (name.to_owned(), text))
        .chain(bundle_files);
    for (name, text) in artifacts {
        for secret in &secret_values {
            assert!(!text.contains(secret.as_str()), "{name}: secret leaked");
        }
        for value in &personal {
            assert!(!text.contains(value.as_str()), "{name}: `{value}` leaked");
        }
    }
    let shown_json = spoke::report::json::render(&shown);
    assert!(personal
        .iter()
        .any(|value| shown_json.contains(value.as_str())));
    // The HTML check sees values too, once they are shown.
    let (_, shown_html) = every_artifact(&shown).pop().unwrap();
    assert!(personal
        .iter()
        .any(|value| shown_html.contains(value.as_str())));
    for secret in &secret_values {
        assert!(
            !shown_json.contains(secret.as_str()),
            "secrets stay hidden either way"
        );
    }
}

#[test]
fn bad_invocations_exit_2_and_say_what_is_wrong() {
    let cases: [(&[&str], &str); 4] = [
        (&["certify", "--only", "NOPE-1"], "no rule `NOPE-1`"),
        (&["certify", "--fault", "melt"], "unknown fault `melt`"),
        (
            &[
                "certify",
                "--profile",
                "tests/data/broken-profiles/missing-staff-list.toml",
            ],
            "missing-staff-list.toml:10: operations.staff-list",
        ),
        (
            &["certify", "--profile", "fixtures/profiles/reference.toml"],
            "SPOKE_REFERENCE_TOKEN is not set",
        ),
    ];
    for (args, message) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
            .args(args)
            .current_dir(root())
            .env_remove("SPOKE_REFERENCE_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unreachable_partner_exits_3() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args([
            "certify",
            "--profile",
            "fixtures/profiles/members-only.toml",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--seed",
            "1",
        ])
        .current_dir(root())
        .env(
            "SPOKE_MEMBERS_ONLY_API_KEY",
            "key-for-an-unreachable-partner",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("could not be reached"), "{stdout}");
    assert!(!stdout.contains("key-for-an-unreachable-partner"));
}

#[test]
fn a_base_url_without_a_profile_certifies_that_url_with_the_reference_profile() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["certify", "--base-url", &url, "--seed", "1"])
        .current_dir(root())
        .env("SPOKE_REFERENCE_TOKEN", "token-for-a-closed-port")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("reference profile"), "{stderr}");
    assert!(stdout.contains("could not be reached"), "{stdout}");
    let unset = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["certify", "--base-url", &url])
        .current_dir(root())
        .env_remove("SPOKE_REFERENCE_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&unset.stderr);
    assert_eq!(unset.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("SPOKE_REFERENCE_TOKEN is not set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn refused_credentials_are_a_setup_error_and_no_rule_passes() {
    let profile = Profile::reference();
    let (running, _) = crate::helpers::spawn_partner(&profile).await;
    let mut options = options(profile, Faults::none(), 1);
    options.mock = false;
    options.base_url = Some(running.base_url());
    let wrong = |name: &str| (name == "SPOKE_REFERENCE_TOKEN").then(|| "not-the-token".to_owned());
    let report = spoke::certify::certify_with_env(options, &(), &wrong)
        .await
        .expect("the run starts");
    let _ = running.stop().await;
    assert_eq!(report.exit_code, 3);
    let refused = report.credentials_refused.as_deref().unwrap_or_default();
    assert!(
        refused.contains("refused the credentials in SPOKE_REFERENCE_TOKEN"),
        "{refused}"
    );
    assert_eq!(rules_with(&report, Outcome::Pass), BTreeSet::new());
    assert_eq!(rules_with(&report, Outcome::Fail), BTreeSet::new());
    let text = terminal::render(&report, Style { color: false });
    assert!(
        text.contains("result: NOT CHECKED (the partner refused the credentials) (exit 3)"),
        "{text}"
    );
}

#[test]
fn a_report_path_that_cannot_be_written_is_refused_before_the_run() {
    let output = run_cli(
        &[
            "certify",
            "--seed",
            "1",
            "--report",
            "html:/no/such/dir/x.html",
        ],
        &root(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("/no/such/dir/x.html: the folder /no/such/dir does not exist"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("result:"),
        "the run did not start: {stdout}"
    );
}

#[test]
fn a_fault_that_does_not_apply_to_the_profile_is_refused_with_where_it_applies() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["certify", "--fault", "source-case-sensitive"],
            "`source-case-sensitive` does not apply to reference.toml: it spoils sources found by name, and the profile references them by id; it applies to the fixture profiles fixtures/profiles/nested-envelope.toml",
        ),
        (
            &["certify", "--fault", "send-lowercase-gender"],
            "the profile declares no [sends]; it applies to the fixture profiles fixtures/profiles/two-way.toml",
        ),
        (
            &[
                "partner",
                "--port",
                "0",
                "--fault",
                "send-lowercase-gender",
            ],
            "does not apply to reference.toml",
        ),
    ];
    for (args, message) in cases {
        let output = run_cli(args, &root());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stdout.contains("CONFORMANT"), "{args:?}: {stdout}");
    }
}

#[tokio::test]
async fn a_fault_on_something_the_profile_does_not_declare_is_refused() {
    let faults: Faults = [Fault::RejectSourceless].into_iter().collect();
    let outcome = certify(options(fixture("members-only"), faults, 1), &()).await;
    match outcome {
        Err(spoke::certify::CertifyError::Invalid(message)) => assert!(
            message.contains(
                "`reject-sourceless` does not apply to fixtures/profiles/members-only.toml: the profile's [capabilities] carry no lead-source"
            ),
            "{message}"
        ),
        Err(other) => panic!("refused as a run failure: {other}"),
        Ok(report) => panic!("ran with exit {}", report.exit_code),
    }
}

#[test]
fn durations_take_one_syntax_everywhere_and_the_ms_forms_stay() {
    let ok: [&[&str]; 3] = [
        &[
            "certify",
            "--seed",
            "1",
            "--timeout",
            "10s",
            "--deadline",
            "2m",
            "--latency-budget",
            "2s",
            "--only",
            "STAFF-001",
        ],
        &[
            "certify",
            "--seed",
            "1",
            "--timeout-ms",
            "10000",
            "--deadline-ms",
            "120000",
            "--latency-budget-ms",
            "2000",
            "--only",
            "STAFF-001",
        ],
        &[
            "simulate",
            "--leads",
            "3",
            "--timeout",
            "5s",
            "--duration",
            "30s",
        ],
    ];
    for args in ok {
        let output = run_cli(args, &root());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    }
    let refused: [(&[&str], &str); 3] = [
        (
            &["certify", "--timeout", "0s"],
            "--timeout must be more than zero",
        ),
        (&["certify", "--deadline", "2 weeks"], "is not a unit"),
        (
            &["certify", "--timeout", "1s", "--timeout-ms", "1000"],
            "cannot be used with",
        ),
    ];
    for (args, message) in refused {
        let output = run_cli(args, &root());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn the_selftest_tells_each_run_as_it_finishes() {
    let output = run_cli(
        &[
            "selftest",
            "--profile",
            "fixtures/profiles/members-only.toml",
        ],
        &root(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let runs: usize = stdout
        .lines()
        .find_map(|line| {
            line.strip_suffix(" s")?
                .split(" runs in ")
                .next()?
                .parse()
                .ok()
        })
        .expect("the summary counts the runs");
    let told: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("selftest: ["))
        .collect();
    assert_eq!(told.len(), runs, "{stderr}");
    assert!(
        told.iter()
            .any(|line| line.starts_with(&format!("selftest: [{runs}/{runs}] "))),
        "{stderr}"
    );
    assert!(
        stderr.contains("fixtures/profiles/members-only.toml (none): ok"),
        "{stderr}"
    );
}

#[test]
fn a_certify_waiting_on_a_slow_partner_says_so_in_a_log() {
    // The first staff page answers after 6.1 s: past the 5 s after which a log is told.
    let output = run_cli(
        &[
            "certify",
            "--fault",
            "slow-staff-list",
            "--latency-budget",
            "6s",
            "--timeout",
            "20s",
            "--seed",
            "1",
            "--only",
            "STAFF-001",
        ],
        &root(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[spoke] still waiting after 5 s: staff sync: fetching the staff list"),
        "{stderr}"
    );
}

//! Two-way runs: certify with a `[sends]` profile starts the mock Connector API, asks for each
//! step, and judges the partner's calls; the mock partner as a sender, its faults, step hooks
//! and step timeouts.

use crate::helpers::{mock_certify, root, run_cli};
use spoke::certify::certify;
use spoke::partner::{Fault, Faults};
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use spoke::suite::Outcome;
use std::collections::BTreeSet;

fn two_way() -> Profile {
    Profile::load(&root().join("fixtures/profiles/two-way.toml")).unwrap()
}

fn sending(report: &RunReport) -> Vec<(String, Outcome, String)> {
    report
        .verdicts
        .iter()
        .filter(|v| v.rule.starts_with("SEND-"))
        .map(|v| (v.rule.clone(), v.outcome, v.reason.clone()))
        .collect()
}

#[tokio::test]
async fn a_two_way_run_against_the_mock_partner_passes_every_send_rule() {
    let report = certify(mock_certify(two_way(), Faults::none(), 11), &())
        .await
        .unwrap();
    assert_eq!(report.exit_code, 0);
    let verdicts = sending(&report);
    assert_eq!(verdicts.len(), 9, "{verdicts:?}");
    for (rule, outcome, reason) in &verdicts {
        assert_eq!(*outcome, Outcome::Pass, "{rule}: {reason}");
    }
    // The connector's calls join the report's evidence, numbered after certify's own.
    let ids: BTreeSet<usize> = report.exchanges.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), report.exchanges.len(), "exchange ids collide");
    let round_trip = report
        .verdicts
        .iter()
        .find(|v| v.rule == "SEND-009")
        .unwrap();
    assert!(!round_trip.evidence.is_empty());
    for id in &round_trip.evidence {
        let exchange = report.exchanges.iter().find(|e| e.id == *id).unwrap();
        assert!(
            exchange.url.contains("/connector/api/2011-11/user"),
            "{}",
            exchange.url
        );
        assert_eq!(exchange.method, "POST");
    }
    // Personal data the partner sent back is masked like the rest of the evidence.
    let member_body = |report: &RunReport| {
        let id = report
            .verdicts
            .iter()
            .find(|v| v.rule == "SEND-009")
            .unwrap()
            .evidence[0];
        let exchange = report.exchanges.iter().find(|e| e.id == id).unwrap();
        exchange.request_body.clone().unwrap_or_default()
    };
    let masked = member_body(&report);
    let mut readable = mock_certify(two_way(), Faults::none(), 11);
    readable.show_personal_data = true;
    let plain = member_body(&certify(readable, &()).await.unwrap());
    let first_name = spoke::xml::parse(&plain)
        .unwrap()
        .descendant(&["userInfo", "firstname"])
        .and_then(|e| e.leaf_text())
        .unwrap();
    assert!(plain.contains(&first_name));
    assert!(masked.contains("<userType>MEMBER</userType>"), "{masked}");
    assert!(!masked.contains(&first_name), "{masked}");
}

#[tokio::test]
async fn a_one_way_profile_runs_no_sending_step() {
    let reference = Profile::reference();
    let report = certify(mock_certify(reference.clone(), Faults::none(), 11), &())
        .await
        .unwrap();
    assert!(sending(&report).is_empty());
    assert!(report
        .exchanges
        .iter()
        .all(|e| !e.url.contains("/connector/api/")));
    let mut only = mock_certify(reference, Faults::none(), 11);
    only.only = vec!["SEND-005".into()];
    let refused = certify(only, &()).await.unwrap_err().to_string();
    assert!(refused.contains("declares no [sends] section"), "{refused}");
}

#[tokio::test]
async fn each_sending_fault_fails_exactly_its_rules() {
    let profile = two_way();
    let matrix =
        spoke::selftest::run_matrix_where(std::slice::from_ref(&profile), 5, &[], |_, fault| {
            fault.is_some_and(|f| f.send_step().is_some())
        })
        .await
        .unwrap();
    let sending_faults = Fault::ALL
        .iter()
        .filter(|f| f.send_step().is_some())
        .count();
    assert_eq!(matrix.rows.len(), sending_faults);
    assert_eq!(sending_faults, 9);
    for row in &matrix.rows {
        assert!(row.ok, "{}", matrix.render());
        assert!(
            row.observed.iter().all(|rule| rule.starts_with("SEND-")),
            "{row:?}"
        );
    }
    let caught: BTreeSet<&str> = matrix
        .rows
        .iter()
        .flat_map(|row| row.observed.iter().map(String::as_str))
        .collect();
    let every: BTreeSet<&str> = (1..=9)
        .map(|n| format!("SEND-00{n}"))
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(caught, every, "every SEND rule fails on some fault");
}

#[tokio::test]
async fn a_switched_off_send_check_passes_its_fault_unnoticed() {
    let mut options = mock_certify(
        two_way(),
        [Fault::SendDeleteToInactivate].into_iter().collect(),
        5,
    );
    let report = certify(options.clone(), &()).await.unwrap();
    let outcome = |report: &RunReport| {
        report
            .verdicts
            .iter()
            .find(|v| v.rule == "SEND-006")
            .map(|v| v.outcome)
    };
    assert_eq!(outcome(&report), Some(Outcome::Fail));
    options.disabled_checks = vec!["SEND-006".into()];
    let report = certify(options, &()).await.unwrap();
    assert_eq!(outcome(&report), Some(Outcome::Pass));
}

fn spoke_binary() -> &'static str {
    env!("CARGO_BIN_EXE_spoke")
}

#[test]
fn the_step_hook_acts_for_the_partner_and_every_format_carries_the_verdicts() {
    let dir = std::env::temp_dir().join(format!("spoke-two-way-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let reports: Vec<String> = ["json", "junit", "har", "html"]
        .iter()
        .map(|format| {
            format!(
                "{format}:{}",
                dir.join(format!("report.{format}")).display()
            )
        })
        .collect();
    let hook = format!("{} act", spoke_binary());
    let mut args = vec![
        "certify",
        "--profile",
        "fixtures/profiles/two-way.toml",
        "--mock",
        "--seed",
        "3",
        "--non-interactive",
        "--step-hook",
        &hook,
    ];
    for report in &reports {
        args.extend(["--report", report.as_str()]);
    }
    let output = run_cli(&args, &root());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("step convert: convert lead ")
            && stderr.contains("into a member in your system now")
            && stderr.contains("Connector API at http://127.0.0.1:")
            && stderr.contains("(provider PRV-100, client C-1001, club CLUB-7)"),
        "{stderr}"
    );
    assert!(stdout.contains("SEND-009     MUST    pass"), "{stdout}");
    for format in ["json", "junit", "har", "html"] {
        let text = std::fs::read_to_string(dir.join(format!("report.{format}"))).unwrap();
        let needle = if format == "har" {
            "/connector/api/2011-11/user"
        } else {
            "SEND-009"
        };
        assert!(text.contains(needle), "{format} lacks {needle}");
    }
    // The hook acting out a sending fault fails that fault's rule.
    let faulty = format!("{} act --fault send-delete-to-inactivate", spoke_binary());
    let output = run_cli(
        &[
            "certify",
            "--profile",
            "fixtures/profiles/two-way.toml",
            "--mock",
            "--seed",
            "3",
            "--non-interactive",
            "--step-hook",
            &faulty,
        ],
        &root(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("SEND-006     MUST    fail"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

fn with_hook(hook: &str, timeout: &str) -> (i32, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!(
        "spoke-two-way-hook-{}-{}",
        std::process::id(),
        hook.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let target = format!("json:{}", json.display());
    let output = run_cli(
        &[
            "certify",
            "--profile",
            "fixtures/profiles/two-way.toml",
            "--mock",
            "--seed",
            "3",
            "--non-interactive",
            "--step-hook",
            hook,
            "--step-timeout",
            timeout,
            "--report",
            &target,
        ],
        &root(),
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (output.status.code().unwrap_or(-1), report)
}

fn send_verdicts(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["rule"].as_str().unwrap().starts_with("SEND-"))
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_owned(),
                v["outcome"].as_str().unwrap().to_owned(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_failing_hook_makes_the_steps_rules_error_with_its_reason() {
    let (code, report) = with_hook("echo 'no sandbox today' >&2; exit 4", "5s");
    assert_eq!(code, 3);
    let verdicts = send_verdicts(&report);
    assert_eq!(verdicts.len(), 9);
    for (rule, outcome, reason) in verdicts {
        assert_eq!(outcome, "error", "{rule}");
        assert!(
            reason.contains("exit status 4: no sandbox today"),
            "{rule}: {reason}"
        );
    }
}

#[test]
fn steps_whose_call_never_comes_end_in_errors_after_the_step_timeout() {
    // The hook succeeds but makes no call: every step waits out its short timeout.
    let (code, report) = with_hook("true", "200ms");
    assert_eq!(code, 3);
    for (rule, outcome, reason) in send_verdicts(&report) {
        assert_eq!(outcome, "error", "{rule}");
        assert!(
            reason.contains("did not arrive within 0.2 s"),
            "{rule}: {reason}"
        );
    }
    // A hook that hangs is stopped at the timeout, never waited for.
    let (code, report) = with_hook("sleep 30", "200ms");
    assert_eq!(code, 3);
    let (_, _, reason) = send_verdicts(&report)
        .into_iter()
        .find(|(rule, _, _)| rule == "SEND-005")
        .unwrap();
    assert!(
        reason.contains("Step convert: the step hook did not finish within 0.2 s"),
        "{reason}"
    );
}

#[test]
fn the_cli_refuses_two_way_options_that_cannot_work() {
    let output = run_cli(
        &[
            "certify",
            "--profile",
            "fixtures/profiles/two-way.toml",
            "--non-interactive",
        ],
        &root(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--step-hook"));
    let output = run_cli(&["certify", "--step-hook", "true"], &root());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no [sends] section"));
    let output = run_cli(&["act"], &root());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SPOKE_STEP"));
}

const LIVE_TOKEN: &str = "tok_two_way_live_test";

/// `spoke partner` serving the two-way fixture with only `steps`, in its own process; answers
/// the process, its URL, a scratch folder and the profile written there.
fn live_partner(
    name: &str,
    steps: &str,
) -> (
    std::process::Child,
    String,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("spoke-two-way-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(root().join("fixtures/profiles/two-way.toml"))
        .unwrap()
        .replace(
            r#"steps = ["convert", "inactivate", "create-user", "lead-source"]"#,
            &format!("steps = {steps}"),
        );
    let profile = dir.join(format!("{name}.toml"));
    std::fs::write(&profile, text).unwrap();
    let mut partner = std::process::Command::new(spoke_binary())
        .args([
            "partner",
            "--profile",
            profile.to_str().unwrap(),
            "--port",
            "0",
        ])
        .env("SPOKE_TWO_WAY_TOKEN", LIVE_TOKEN)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(partner.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    // The partner keeps printing; its pipe must stay open and drained.
    std::thread::spawn(move || lines.for_each(drop));
    let url = first
        .strip_prefix("spoke partner listening on ")
        .unwrap()
        .to_owned();
    (partner, url, dir, profile)
}

#[test]
fn a_hook_echoing_a_secret_never_puts_it_in_the_report() {
    let (mut partner, url, dir, profile) = live_partner("secret", r#"["convert"]"#);
    let json = dir.join("report.json");
    let output = std::process::Command::new(spoke_binary())
        .args([
            "certify",
            "--profile",
            profile.to_str().unwrap(),
            "--base-url",
            &url,
            "--seed",
            "3",
            "--non-interactive",
            "--step-hook",
            "echo \"cannot log in with $SPOKE_TWO_WAY_TOKEN\" >&2; exit 1",
            "--report",
            &format!("json:{}", json.display()),
        ])
        .env("SPOKE_TWO_WAY_TOKEN", LIVE_TOKEN)
        .output()
        .unwrap();
    partner.kill().ok();
    partner.wait().ok();
    assert_eq!(output.status.code(), Some(3));
    let report = std::fs::read_to_string(&json).unwrap();
    let shown = format!(
        "{}{}{report}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!shown.contains(LIVE_TOKEN), "{shown}");
    assert!(
        report.contains("exit status 1: cannot log in with ***"),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_interactive_run_waits_for_the_partners_own_call() {
    use std::io::{BufRead, BufReader};
    // Two steps only: the test carries out the first and lets the second time out.
    let (mut partner, url, dir, profile) = live_partner("live", r#"["convert", "inactivate"]"#);
    let token = LIVE_TOKEN;
    let json = dir.join("report.json");
    let mut certify = std::process::Command::new(spoke_binary())
        .args([
            "certify",
            "--profile",
            profile.to_str().unwrap(),
            "--base-url",
            &url,
            "--seed",
            "3",
            "--step-timeout",
            "3s",
            "--report",
            &format!("json:{}", json.display()),
        ])
        .env("SPOKE_TWO_WAY_TOKEN", token)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(certify.stderr.take().unwrap()).lines();
    let mut instruction = String::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        instruction.push_str(&line);
        instruction.push('\n');
        if line.contains("Connector API at ") {
            break;
        }
    }
    // As the partner's system would: convert the lead it was told about.
    let record_id = instruction
        .split("convert lead ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no convert instruction in {instruction}"))
        .to_owned();
    let connector_url = instruction
        .split("Connector API at ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    let request = spoke::twoway::StepRequest {
        step: spoke::profile::SendStep::Convert,
        connector_url,
        provider_id: "PRV-100".into(),
        client_id: "C-1001".into(),
        club_id: "CLUB-7".into(),
        record_id,
        user_type: "PROSPECT".into(),
        first_name: "Live".into(),
        last_name: "Member".into(),
        email: String::new(),
        mobile: String::new(),
        lead_source: String::new(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(spoke::partner::sender::act(&request, &Faults::none()))
        .unwrap();
    let rest: Vec<String> = stderr.map_while(Result::ok).collect();
    let status = certify.wait().unwrap();
    partner.kill().ok();
    partner.wait().ok();
    assert_eq!(status.code(), Some(3), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("step inactivate: make member")),
        "{rest:?}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let verdicts = send_verdicts(&report);
    let outcome = |rule: &str| {
        verdicts
            .iter()
            .find(|(r, _, _)| r == rule)
            .map(|(_, outcome, reason)| (outcome.clone(), reason.clone()))
            .unwrap()
    };
    assert_eq!(outcome("SEND-005").0, "pass", "{verdicts:?}");
    assert_eq!(outcome("SEND-009").0, "pass", "{verdicts:?}");
    let (inactivate, reason) = outcome("SEND-006");
    assert_eq!(inactivate, "error");
    assert!(reason.contains("did not arrive within 3.0 s"), "{reason}");
    assert_eq!(outcome("SEND-003").0, "skip");
    std::fs::remove_dir_all(&dir).ok();
}

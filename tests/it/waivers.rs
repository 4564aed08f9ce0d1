//! Waivers: a waived failure passes the run and shows as waived in every format; an expired
//! waiver or one whose rule passes fails the run until it is removed.

use crate::helpers::{mock_certify, root, run_cli};
use chrono::NaiveDate;
use spoke::certify::certify;
use spoke::partner::{Fault, Faults};
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use spoke::report::terminal::{self, Style};
use spoke::report::waivers::{apply, WaiverStatus, Waivers};
use spoke::suite::Catalog;

const BOTH_OWNER_RULES: &str = r#"
[[waiver]]
rule = "LEAD-002"
reason = "owner assignment ships in release 4.2"
owner = "jane@partner.example"
expires = 2027-03-31

[[waiver]]
rule = "LEAD-003"
reason = "same fix as LEAD-002"
owner = "jane@partner.example"
expires = 2027-03-31
"#;

fn waivers(text: &str) -> Waivers {
    Waivers::parse("waivers.toml", text, &Catalog::builtin()).unwrap()
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

async fn run(faults: Faults) -> RunReport {
    certify(mock_certify(Profile::reference(), faults, 4), &())
        .await
        .expect("the run starts")
}

async fn unowned_rejected() -> RunReport {
    run([Fault::RejectUnowned].into_iter().collect()).await
}

#[tokio::test]
async fn waived_failures_pass_the_run_and_every_format_says_waived() {
    let mut report = unowned_rejected().await;
    assert_eq!(report.exit_code, 1);
    apply(&mut report, &waivers(BOTH_OWNER_RULES), day("2026-11-28"));
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.totals.fail, 2, "the verdicts stay what they are");
    assert!(report
        .waivers
        .iter()
        .all(|w| w.status == WaiverStatus::Applied));

    let text = terminal::render(&report, Style { color: false });
    assert!(text.contains("fail waived"), "{text}");
    assert!(
        text.contains("waived until 2027-03-31 (jane@partner.example): owner assignment ships"),
        "{text}"
    );
    assert!(text.contains("result: CONFORMANT (exit 0)"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&spoke::report::json::render(&report)).unwrap();
    let lead_002 = json["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "LEAD-002")
        .unwrap();
    assert_eq!(lead_002["outcome"], "fail");
    assert_eq!(lead_002["waiver"]["expires"], "2027-03-31");
    assert_eq!(lead_002["waiver"]["owner"], "jane@partner.example");
    assert_eq!(json["waivers"][0]["status"], "applied");

    let xml = spoke::report::junit::render(&report);
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(xml.contains(r#"<skipped message="waived fail:"#), "{xml}");
    assert!(xml.contains("owner assignment ships in release 4.2"));

    let html = spoke::report::html::render(&report);
    assert!(html.contains(r#"<span class="badge waived">waived</span>"#));
    assert!(html.contains(r#"<table id="waivers">"#));
    assert!(html.contains("CONFORMANT (exit 0)"));
}

#[tokio::test]
async fn a_failure_without_a_waiver_still_fails_the_run() {
    let mut report = unowned_rejected().await;
    let only_one = BOTH_OWNER_RULES.split("\n\n").next().unwrap();
    apply(&mut report, &waivers(only_one), day("2026-11-28"));
    assert_eq!(report.exit_code, 1);
}

#[tokio::test]
async fn an_expired_waiver_fails_the_run_and_says_to_remove_it() {
    let mut report = unowned_rejected().await;
    // The last day of a waiver still holds; the day after does not.
    apply(&mut report, &waivers(BOTH_OWNER_RULES), day("2027-03-31"));
    assert_eq!(report.exit_code, 0);
    let mut report = unowned_rejected().await;
    apply(&mut report, &waivers(BOTH_OWNER_RULES), day("2027-04-01"));
    assert_eq!(report.exit_code, 1);
    assert!(report.verdicts.iter().all(|v| v.waiver.is_none()));
    assert_eq!(report.waivers[0].status, WaiverStatus::Expired);
    let text = terminal::render(&report, Style { color: false });
    assert!(
        text.contains("the waiver of LEAD-002 expired on 2027-03-31: remove it from waivers.toml"),
        "{text}"
    );
    let xml = spoke::report::junit::render(&report);
    assert!(
        xml.contains(r#"<testcase name="waiver LEAD-002 expired""#),
        "{xml}"
    );
    let html = spoke::report::html::render(&report);
    assert!(html.contains(r#"<p class="note bad">the waiver of LEAD-002 expired"#));
}

#[tokio::test]
async fn a_waiver_whose_rule_passes_fails_the_run_until_removed() {
    let mut report = run(Faults::none()).await;
    assert_eq!(report.exit_code, 0);
    apply(&mut report, &waivers(BOTH_OWNER_RULES), day("2026-11-28"));
    assert_eq!(report.exit_code, 1);
    assert_eq!(report.waivers[0].status, WaiverStatus::Stale);
    let text = terminal::render(&report, Style { color: false });
    assert!(
        text.contains("LEAD-002 passes now: remove its waiver from waivers.toml"),
        "{text}"
    );
}

#[tokio::test]
async fn a_waiver_of_a_rule_left_out_by_only_is_not_used_and_fails_nothing() {
    let mut options = mock_certify(Profile::reference(), Faults::none(), 4);
    options.only = vec!["SRC-002".into()];
    let mut report = certify(options, &()).await.unwrap();
    apply(&mut report, &waivers(BOTH_OWNER_RULES), day("2026-11-28"));
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.waivers[0].status, WaiverStatus::NotRun);
}

#[test]
fn certify_takes_a_waivers_file_and_refuses_a_broken_one_with_its_line() {
    let dir = std::env::temp_dir().join(format!("spoke-waivers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("waivers.toml");
    std::fs::write(&good, BOTH_OWNER_RULES).unwrap();
    let waived = run_cli(
        &[
            "certify",
            "--seed",
            "1",
            "--fault",
            "reject-unowned",
            "--waivers",
            good.to_str().unwrap(),
        ],
        &root(),
    );
    let stdout = String::from_utf8_lossy(&waived.stdout);
    assert_eq!(waived.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("applied"), "{stdout}");
    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\nticket = \"X-1\"\n",
    )
    .unwrap();
    let refused = run_cli(&["certify", "--waivers", broken.to_str().unwrap()], &root());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml:6: waiver: unknown field `ticket`"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

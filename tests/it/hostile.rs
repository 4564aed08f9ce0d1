//! A partner that misbehaves on the wire: each behaviour gets a clear verdict on the staff list,
//! and the run goes on with the other rules.

use crate::helpers::mock_certify;
use spoke::certify::certify;
use spoke::partner::Fault;
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use spoke::suite::Outcome;
use std::time::{Duration, Instant};

async fn run_with(fault: Fault) -> (RunReport, Duration) {
    let mut options = mock_certify(Profile::reference(), [fault].into_iter().collect(), 11);
    options.limits.request_timeout = Duration::from_millis(300);
    options.limits.max_body = 1024 * 1024;
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(20), certify(options, &()))
        .await
        .expect("the run ends")
        .expect("the run starts");
    (report, started.elapsed())
}

async fn assert_verdict(fault: Fault, outcome: Outcome, reason: &str) {
    let (report, took) = run_with(fault).await;
    let staff = report
        .verdicts
        .iter()
        .find(|v| v.rule == "STAFF-001")
        .unwrap();
    assert_eq!(staff.outcome, outcome, "{fault}: {}", staff.reason);
    assert!(
        staff.reason.contains(reason),
        "{fault}: `{}` does not say `{reason}`",
        staff.reason
    );
    assert!(!staff.evidence.is_empty(), "{fault}: no evidence");
    // The run goes on: rules that do not need the staff list are still judged.
    for rule in ["LEAD-002", "SRC-001", "MEM-001"] {
        let verdict = report.verdicts.iter().find(|v| v.rule == rule).unwrap();
        assert_eq!(
            verdict.outcome,
            Outcome::Pass,
            "{fault}: {rule}: {}",
            verdict.reason
        );
    }
    let expected_exit = if outcome == Outcome::Fail { 1 } else { 3 };
    assert_eq!(report.exit_code, expected_exit, "{fault}");
    assert!(took < Duration::from_secs(10), "{fault}: took {took:?}");
}

macro_rules! hostile {
    ($($name:ident: $fault:ident => $outcome:ident, $reason:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                assert_verdict(Fault::$fault, Outcome::$outcome, $reason).await;
            }
        )*
    };
}

hostile! {
    no_answer_at_all_is_an_error_at_the_timeout: StaffListNoAnswer => Error, "no answer within 300 ms";
    headers_then_a_stalled_body_is_an_error_at_the_timeout: StaffListStalledBody => Error, "no answer within 300 ms";
    a_body_larger_than_the_cap_fails: StaffListHugeBody => Fail, "over the 1048576-byte limit";
    a_reset_mid_response_is_an_error: StaffListResetMidResponse => Error, "got no answer";
    invalid_json_fails: StaffListInvalidJson => Fail, "not JSON";
    json_of_the_wrong_shape_fails: StaffListWrongShape => Fail, "expected an array at `data`, found an object";
    an_html_error_page_with_200_fails: StaffListHtml200 => Fail, "HTML page";
    a_wrong_content_type_fails: StaffListWrongContentType => Fail, "content-type is `text/plain`";
    an_empty_200_fails: StaffListEmpty200 => Fail, "no body";
    a_204_where_a_body_is_needed_fails: StaffList204 => Fail, "no body";
    a_redirect_loop_fails: StaffListRedirectLoop => Fail, "redirects did not end within 5 hops";
    a_redirect_to_another_host_fails_and_is_not_followed: StaffListRedirectOtherHost => Fail, "leaves the partner's origin";
    a_gzip_bomb_is_not_unpacked: StaffListGzipBomb => Fail, "compressed (content-encoding gzip)";
    extremely_long_headers_are_an_error: StaffListLongHeaders => Error, "message head is too large";
}

#[tokio::test]
async fn a_partner_that_never_answers_ends_at_the_deadline_with_exit_3() {
    let mut options = mock_certify(Profile::reference(), [Fault::Slow].into_iter().collect(), 1);
    options.limits.deadline = Some(Duration::from_millis(700));
    let started = Instant::now();
    let report = certify(options, &()).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(report.exit_code, 3);
    assert!(report.unreachable.is_some());
    assert!(report.verdicts.iter().all(|v| matches!(
        v.outcome,
        Outcome::Error | Outcome::Skip | Outcome::Inconclusive
    )));
    let last = report.exchanges.last().unwrap();
    assert!(
        last.error
            .as_deref()
            .unwrap_or_default()
            .contains("deadline"),
        "{last:?}"
    );
}

#[test]
fn a_short_deadline_ends_a_run_over_a_large_staff_list_promptly_with_error_verdicts() {
    // 50,000 staff are 2,000 pages: their walk, its masking and the reports would take their
    // time; the deadline ends the run with what it has. The outer timeout only catches a run
    // that does not end: this is not a measure of speed.
    let dir = crate::helpers::root()
        .join("target/test-scratch/deadline")
        .join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let stdout = std::fs::File::create(dir.join("stdout.txt")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["certify", "--synthetic", "50000,10", "--seed", "3"])
        .args(["--deadline-ms", "1000", "--report"])
        .arg(format!("json:{}", json.display()))
        .env("NO_COLOR", "1")
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the run did not end within 120 s of a 1 s deadline");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let terminal = std::fs::read_to_string(dir.join("stdout.txt")).unwrap();
    assert_eq!(status.code(), Some(3), "{terminal}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let errors: Vec<&serde_json::Value> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["outcome"] == "error")
        .collect();
    let naming_the_deadline = errors
        .iter()
        .filter(|v| v["reason"].as_str().unwrap().contains("deadline"))
        .count();
    assert!(naming_the_deadline >= 5, "{terminal}");
    let staff_list = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "STAFF-003")
        .unwrap();
    assert_eq!(staff_list["outcome"], "error", "{terminal}");
    assert!(
        staff_list["reason"].as_str().unwrap().contains("deadline"),
        "{terminal}"
    );
    assert!(terminal.contains("deadline of 1000 ms"), "{terminal}");
}

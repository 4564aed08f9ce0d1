//! `spoke diff` on two real runs: a regression exits 1 with the changed verdicts and evidence,
//! an improvement or no change exits 0, bad input exits 2 and says what is wrong.

use crate::helpers::{root, run_cli};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A clean run and a run with a fault, same seed, as JSON reports (written once).
fn reports() -> &'static (PathBuf, PathBuf) {
    static REPORTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    REPORTS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spoke-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let clean = dir.join("clean.json");
        let faulty = dir.join("faulty.json");
        for (path, fault) in [(&clean, None), (&faulty, Some("reject-unowned"))] {
            let report = format!("json:{}", path.display());
            let mut args = vec!["certify", "--seed", "7", "--report", &report];
            if let Some(fault) = fault {
                args.extend(["--fault", fault]);
            }
            let output = run_cli(&args, &root());
            assert!(path.exists(), "{}", String::from_utf8_lossy(&output.stderr));
        }
        (clean, faulty)
    })
}

fn diff(old: &Path, new: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["diff", old.to_str().unwrap(), new.to_str().unwrap()];
    args.extend(extra);
    let output = run_cli(&args, &root());
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_rule_that_got_worse_exits_1_with_both_verdicts_and_the_changed_answers() {
    let (clean, faulty) = reports();
    let (code, stdout, _) = diff(clean, faulty, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("changed verdicts (2):"), "{stdout}");
    assert!(
        stdout.contains("LEAD-002   MUST   pass → fail (worse)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("LEAD-003   MUST   pass → fail (worse)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("was: 3 prospect(s) with no owner were accepted"),
        "{stdout}"
    );
    assert!(stdout.contains("now: Prospect 7 (owner none"), "{stdout}");
    // The same request, answered 201 before and 422 now, with the new body.
    assert!(
        stdout.contains("POST /api/v1/clients/C-1001/clubs/CLUB-7/prospects (deliver prospect 7"),
        "{stdout}"
    );
    assert!(stdout.contains("HTTP 201 → #"), "{stdout}");
    assert!(stdout.contains("new body: {\"error\""), "{stdout}");
    assert!(!stdout.contains("127.0.0.1"), "ports stay out of a diff");
    assert!(
        stdout.contains("result: 2 rule(s) worse, 0 better, 23 unchanged (regressed, exit 1)"),
        "{stdout}"
    );
}

#[test]
fn an_improvement_exits_0_and_json_output_carries_the_same_facts() {
    let (clean, faulty) = reports();
    let (code, stdout, _) = diff(faulty, clean, &["--format", "json"]);
    assert_eq!(code, Some(0), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["regressions"], 0);
    assert_eq!(json["unchanged"], 23);
    let changed = json["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[0]["rule"], "LEAD-002");
    assert_eq!(changed[0]["old_outcome"], "fail");
    assert_eq!(changed[0]["new_outcome"], "pass");
    assert_eq!(changed[0]["direction"], "better");
    let evidence = &changed[0]["evidence"][0];
    assert_eq!(evidence["old"]["status"], 422);
    assert_eq!(evidence["new"]["status"], 201);
}

#[test]
fn the_same_report_twice_has_no_change() {
    let (clean, _) = reports();
    let (code, stdout, _) = diff(clean, clean, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("no verdict changed"), "{stdout}");
}

#[test]
fn rules_only_in_one_report_are_listed_and_a_new_failing_rule_is_a_regression() {
    let (clean, faulty) = reports();
    let dir = clean.parent().unwrap();
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clean).unwrap()).unwrap();
    // The old run knew neither owner rule; it had one the new run no longer has.
    let verdicts = old["verdicts"].as_array_mut().unwrap();
    verdicts.retain(|v| v["rule"] != "LEAD-002" && v["rule"] != "LEAD-003");
    verdicts[0]["rule"] = "OLD-001".into();
    let old_path = dir.join("fewer-rules.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    let (code, stdout, _) = diff(&old_path, faulty, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("rules only in the new report (3):"),
        "{stdout}"
    );
    assert!(stdout.contains("LEAD-002   fail"), "{stdout}");
    assert!(
        stdout.contains("rules only in the old report (1):"),
        "{stdout}"
    );
    assert!(stdout.contains("OLD-001"), "{stdout}");
}

#[test]
fn bad_input_exits_2_and_names_the_file_and_the_problem() {
    let (clean, _) = reports();
    let dir = clean.parent().unwrap();
    let har = dir.join("not-a-report.json");
    std::fs::write(&har, r#"{"log": {"version": "1.2"}}"#).unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "verdicts: all good").unwrap();
    let mut future: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clean).unwrap()).unwrap();
    future["format_version"] = 99.into();
    let newer = dir.join("newer.json");
    std::fs::write(&newer, future.to_string()).unwrap();
    let mut broken: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clean).unwrap()).unwrap();
    broken["verdicts"][3]["outcome"] = 5.into();
    let mangled = dir.join("mangled.json");
    std::fs::write(&mangled, broken.to_string()).unwrap();
    let cases = [
        (dir.join("missing.json"), "cannot read"),
        (har, "not-a-report.json: not a spoke report"),
        (garbage, "garbage.json: not JSON"),
        (
            newer,
            "newer.json: report format 99, but this spoke reads format 1",
        ),
        (
            mangled,
            "mangled.json: a spoke report with a bad `verdicts[3].outcome`",
        ),
    ];
    for (bad, message) in cases {
        let (code, _, stderr) = diff(clean, &bad, &[]);
        assert_eq!(code, Some(2), "{}: {stderr}", bad.display());
        assert!(stderr.contains(message), "{message}\n got: {stderr}");
    }
}

#[test]
fn a_partners_control_characters_in_a_reason_show_escaped_in_the_diff() {
    let (clean, faulty) = reports();
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(faulty).unwrap()).unwrap();
    for verdict in report["verdicts"].as_array_mut().unwrap() {
        if verdict["rule"] == "LEAD-002" {
            verdict["reason"] = "the partner said \x1b[2J\x07\n\u{202e}".into();
        }
    }
    let hostile =
        std::env::temp_dir().join(format!("spoke-diff-hostile-{}.json", std::process::id()));
    std::fs::write(&hostile, serde_json::to_string(&report).unwrap()).unwrap();
    let diff = spoke::report::diff::diff_files(clean, &hostile).unwrap();
    let text = spoke::report::diff::render_text(&diff);
    std::fs::remove_file(&hostile).ok();
    assert!(
        text.contains(r"now: the partner said \u{1b}[2J\u{7}\u{a}\u{202e}"),
        "{text}"
    );
    let raw = text
        .chars()
        .filter(|c| spoke::controls::is_control(*c) && *c != '\n')
        .count();
    assert_eq!(raw, 0, "{text}");
}

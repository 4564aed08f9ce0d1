//! The certification bundle: written as a folder and as a zip, verified intact, every kind of
//! alteration named; and replay of a bundle reproducing the recorded verdicts.

use crate::helpers::{mock_certify, root, run_cli, scratch};
use spoke::bundle::{self, FileProblem, RunContext};
use spoke::partner::{Fault, Faults};
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use spoke::suite::Outcome;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A mock run of `profile` with `faults`, and what its bundle records beyond the report.
async fn mock_run(profile: Profile, faults: Faults, seed: u64) -> (RunReport, RunContext) {
    let options = mock_certify(profile.clone(), faults, seed);
    let context = RunContext {
        profile_text: profile.text.clone(),
        profile_digest: spoke::digest::sha256(profile.text.as_bytes()),
        latency_budget: options.latency_budget,
        request_timeout: options.limits.request_timeout,
        finished_at: "2026-01-01T00:00:00.000Z".into(),
    };
    let report = spoke::certify::certify(options, &())
        .await
        .expect("the run starts");
    (report, context)
}

async fn written_bundle(name: &str, faults: Faults) -> (PathBuf, RunReport) {
    let (report, context) = mock_run(Profile::reference(), faults, 11).await;
    let path = scratch("bundle", name).join("bundle");
    bundle::write(&spoke::output::Output::default(), &path, &report, &context)
        .expect("the bundle is written");
    (path, report)
}

async fn verify(path: &Path) -> bundle::Verification {
    let bundle = bundle::read(path).expect("the bundle reads");
    bundle::verify(&bundle).await
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

#[test]
fn certify_writes_a_bundle_as_a_folder_and_as_a_zip_and_both_verify_intact() {
    let dir = scratch("bundle", "cli");
    for target in ["run-bundle", "run-bundle.zip"] {
        let run = run_cli(
            &["certify", "--seed", "4", "--bundle", target],
            dir.as_path(),
        );
        assert_eq!(run.status.code(), Some(0), "{run:?}");
        let bundle = bundle::read(&dir.join(target)).expect("a readable bundle");
        let mut names: Vec<&str> = bundle.files.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "evidence.har",
                "profile.toml",
                "report.html",
                "report.json",
                "report.junit.xml",
                "report.txt"
            ]
        );
        assert_eq!(bundle.manifest.seed, 4);
        assert!(bundle.manifest.mock);
        assert_eq!(bundle.manifest.exit_code, 0);
        assert_eq!(bundle.manifest.files.len(), 6);
        let verify = run_cli(&["bundle", "verify", target], dir.as_path());
        let stdout = String::from_utf8_lossy(&verify.stdout);
        assert_eq!(verify.status.code(), Some(0), "{stdout}");
        assert!(stdout.contains("all intact"), "{stdout}");
        assert!(stdout.contains("25 re-derived"), "{stdout}");
        assert!(stdout.ends_with("result: intact\n"), "{stdout}");
    }
    // Nothing is left under a temporary name, and a folder is never overwritten.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let again = run_cli(
        &["certify", "--seed", "4", "--bundle", "run-bundle"],
        dir.as_path(),
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[tokio::test]
async fn verify_names_a_flipped_verdict_in_the_json_report() {
    let (path, _) = written_bundle("flipped", Faults::none()).await;
    edit_json(&path.join("report.json"), |report| {
        let verdict = report["verdicts"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|v| v["rule"] == "LEAD-002")
            .unwrap();
        verdict["outcome"] = "fail".into();
    });
    let verification = verify(&path).await;
    assert!(!verification.intact());
    assert!(matches!(
        verification.files.as_slice(),
        [FileProblem::Altered { path, .. }] if path == "report.json"
    ));
    assert_eq!(
        verification.verdicts.len(),
        1,
        "{:?}",
        verification.verdicts
    );
    let difference = &verification.verdicts[0];
    assert_eq!(difference.rule, "LEAD-002");
    assert_eq!(difference.recorded, Some(Outcome::Fail));
    assert_eq!(difference.replayed, Some(Outcome::Pass));
    let bundle = bundle::read(&path).unwrap();
    let text = verification.render(&bundle);
    assert!(
        text.contains("LEAD-002: recorded fail, re-derived pass"),
        "{text}"
    );
}

#[tokio::test]
async fn verify_names_a_verdict_that_no_longer_follows_from_edited_evidence() {
    // The digests rewritten too: only re-deriving the verdicts can tell.
    let (path, _) = written_bundle("evidence", Faults::none()).await;
    edit_json(&path.join("report.json"), |report| {
        for exchange in report["exchanges"].as_array_mut().unwrap() {
            if exchange["purpose"]
                .as_str()
                .is_some_and(|p| p.contains("with no credentials"))
            {
                exchange["status"] = 200.into();
            }
        }
    });
    let mut manifest: bundle::Manifest =
        serde_json::from_slice(&std::fs::read(path.join("manifest.json")).unwrap()).unwrap();
    let json = std::fs::read(path.join("report.json")).unwrap();
    let entry = manifest
        .files
        .iter_mut()
        .find(|f| f.path == "report.json")
        .unwrap();
    entry.sha256 = spoke::digest::sha256(&json);
    entry.size = json.len() as u64;
    std::fs::write(
        path.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let verification = verify(&path).await;
    assert!(verification.files.is_empty(), "{:?}", verification.files);
    let rules: Vec<&str> = verification
        .verdicts
        .iter()
        .map(|d| d.rule.as_str())
        .collect();
    assert_eq!(rules, ["SEC-001"], "{:?}", verification.verdicts);
    assert_eq!(verification.verdicts[0].recorded, Some(Outcome::Pass));
    // SEC-001 is a SHOULD: broken, it warns.
    assert_eq!(verification.verdicts[0].replayed, Some(Outcome::Warn));
    // The HAR still holds the exchange as it was.
    assert!(verification
        .inconsistencies
        .iter()
        .any(|line| line.contains("evidence.har entry") && line.contains("status")));
}

#[tokio::test]
async fn verify_names_an_edited_har_entry() {
    let (path, _) = written_bundle("har", Faults::none()).await;
    edit_json(&path.join("evidence.har"), |har| {
        har["log"]["entries"][2]["response"]["content"]["text"] = "{\"data\":[]}".into();
    });
    let verification = verify(&path).await;
    assert!(matches!(
        verification.files.as_slice(),
        [FileProblem::Altered { path, .. }] if path == "evidence.har"
    ));
    assert!(
        verification
            .inconsistencies
            .iter()
            .any(|line| line.starts_with("evidence.har entry 3 ") && line.contains("response body")),
        "{:?}",
        verification.inconsistencies
    );
    assert!(verification.verdicts.is_empty());
}

#[tokio::test]
async fn verify_names_a_removed_and_an_added_file() {
    let (path, _) = written_bundle("files", Faults::none()).await;
    std::fs::remove_file(path.join("report.junit.xml")).unwrap();
    std::fs::write(path.join("extra.txt"), "not from spoke").unwrap();
    let verification = verify(&path).await;
    assert_eq!(
        verification.files,
        [
            FileProblem::Removed("report.junit.xml".into()),
            FileProblem::Added("extra.txt".into())
        ]
    );
    assert!(!verification.intact());
    let bundle = bundle::read(&path).unwrap();
    let text = verification.render(&bundle);
    assert!(text.contains("removed: report.junit.xml"), "{text}");
    assert!(text.contains("added: extra.txt"), "{text}");
    assert!(text.ends_with("result: ALTERED\n"), "{text}");
}

#[test]
fn a_bundle_of_a_waived_run_verifies_and_a_dropped_waiver_is_named() {
    let dir = scratch("bundle", "waived");
    std::fs::write(
        dir.join("waivers.toml"),
        "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"owners are assigned on import\"\n\
         owner = \"crm-team\"\nexpires = 2999-12-31\n\n[[waiver]]\nrule = \"LEAD-003\"\n\
         reason = \"same\"\nowner = \"crm-team\"\nexpires = 2999-12-31\n",
    )
    .unwrap();
    let run = run_cli(
        &[
            "certify",
            "--fault",
            "reject-unowned",
            "--seed",
            "5",
            "--waivers",
            "waivers.toml",
            "--bundle",
            "waived",
        ],
        dir.as_path(),
    );
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let verified = run_cli(&["bundle", "verify", "waived"], dir.as_path());
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    // Without its waivers the same verdicts exit 1, so verify names the exit code.
    let path = dir.join("waived");
    edit_json(&path.join("report.json"), |report| {
        report["waivers"] = serde_json::json!([]);
    });
    let bundle = bundle::read(&path).expect("the bundle reads");
    let manifest_json = std::fs::read_to_string(path.join("manifest.json")).unwrap();
    let digest = spoke::digest::sha256(&std::fs::read(path.join("report.json")).unwrap());
    let recorded = bundle
        .manifest
        .files
        .iter()
        .find(|f| f.path == "report.json")
        .unwrap();
    std::fs::write(
        path.join("manifest.json"),
        manifest_json.replace(&recorded.sha256, &digest).replace(
            &format!("\"size\": {}", recorded.size),
            &format!(
                "\"size\": {}",
                std::fs::metadata(path.join("report.json")).unwrap().len()
            ),
        ),
    )
    .unwrap();
    let altered = run_cli(&["bundle", "verify", "waived"], dir.as_path());
    let output = String::from_utf8_lossy(&altered.stdout);
    assert_eq!(altered.status.code(), Some(1), "{output}");
    assert!(output.contains("exit code"), "{output}");
}

#[test]
fn verify_exits_1_when_altered_and_2_on_what_is_not_a_bundle() {
    let dir = scratch("bundle", "exits");
    let run = run_cli(&["certify", "--seed", "2", "--bundle", "b.zip"], &dir);
    assert_eq!(run.status.code(), Some(0));
    // One byte changed inside the zip's report: rewrite the zip with it.
    let bundle = bundle::read(&dir.join("b.zip")).unwrap();
    let file = std::fs::File::create(dir.join("altered.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let mut files = bundle.files.clone();
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&bundle.manifest).unwrap(),
    );
    let txt = files.get_mut("report.txt").unwrap();
    txt.push(b' ');
    for (name, bytes) in &files {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, bytes).unwrap();
    }
    zip.finish().unwrap();
    let altered = run_cli(&["bundle", "verify", "altered.zip"], &dir);
    assert_eq!(altered.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&altered.stdout).contains("altered: report.txt"));

    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::write(dir.join("garbage.zip"), b"PK\x03\x04 not really").unwrap();
    for (target, says) in [
        ("missing", "no such bundle"),
        ("empty", "no manifest.json"),
        ("garbage.zip", "not a readable zip"),
    ] {
        let run = run_cli(&["bundle", "verify", target], &dir);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains(says), "{target}: {stderr}");
    }
}

#[tokio::test]
async fn replay_of_a_clean_run_reproduces_its_verdicts() {
    let (path, report) = written_bundle("replay-clean", Faults::none()).await;
    let recording = bundle::recording(&bundle::read(&path).unwrap()).unwrap();
    let outcome = spoke::replay::replay(&recording, &[]).await.unwrap();
    assert!(outcome.reproduced(), "{:?}", outcome.differences);
    assert!(outcome.unmatched.is_empty(), "{:?}", outcome.unmatched);
    assert!(outcome.unused.is_empty(), "{:?}", outcome.unused);
    assert!(outcome.diverged.is_empty(), "{:?}", outcome.diverged);
    assert_eq!(outcome.verdicts.len(), report.verdicts.len());
}

#[tokio::test]
async fn replay_says_where_the_session_sent_another_body_than_recorded() {
    let (path, _) = written_bundle("diverged", Faults::none()).await;
    let mut recording = bundle::recording(&bundle::read(&path).unwrap()).unwrap();
    let create = recording
        .exchanges
        .iter_mut()
        .find(|e| {
            e.request_body
                .as_deref()
                .is_some_and(|body| body.contains("\"status\":\"active\""))
        })
        .unwrap();
    let id = create.id;
    let body = create.request_body.as_mut().unwrap();
    *body = body.replace("\"status\":\"active\"", "\"status\":\"inactive\"");
    let outcome = spoke::replay::replay(&recording, &[]).await.unwrap();
    assert_eq!(outcome.diverged, [id]);
    let text = spoke::replay::render(&recording, &outcome);
    assert!(
        text.contains(&format!("another body than recorded (exchanges {id})")),
        "{text}"
    );
}

#[tokio::test]
async fn replay_of_a_faulty_run_reproduces_its_failures() {
    for (profile, fault) in [
        (Profile::reference(), Fault::RejectUnowned),
        (
            crate::helpers::fixture_profiles()
                .into_iter()
                .find(|(name, _)| name == "nested-envelope")
                .unwrap()
                .1,
            Fault::SourceCaseSensitive,
        ),
    ] {
        let (report, context) = mock_run(profile.clone(), [fault].into_iter().collect(), 21).await;
        let failed: Vec<&str> = report
            .verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .map(|v| v.rule.as_str())
            .collect();
        assert!(!failed.is_empty(), "{fault:?} fails some rule");
        let path = scratch("bundle", &format!("replay-{}", fault.name())).join("b.zip");
        bundle::write(&spoke::output::Output::default(), &path, &report, &context).unwrap();
        let recording = bundle::recording(&bundle::read(&path).unwrap()).unwrap();
        let outcome = spoke::replay::replay(&recording, &[]).await.unwrap();
        assert!(outcome.reproduced(), "{fault:?}: {:?}", outcome.differences);
        let replay_failed: Vec<&str> = outcome
            .verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .map(|v| v.rule.as_str())
            .collect();
        assert_eq!(replay_failed, failed);
    }
}

#[test]
fn the_replay_command_prints_each_verdict_beside_the_recorded_one() {
    let dir = scratch("bundle", "replay-cli");
    let run = run_cli(
        &[
            "certify",
            "--seed",
            "8",
            "--fault",
            "reject-unowned",
            "--bundle",
            "b",
        ],
        &dir,
    );
    assert_eq!(run.status.code(), Some(1));
    let replay = run_cli(&["replay", "b", "--only", "LEAD-002,SRC-001"], &dir);
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("LEAD-002     fail          recorded fail          same"),
        "{stdout}"
    );
    assert!(stdout.contains("SRC-001      pass"), "{stdout}");
    assert!(!stdout.contains("LEAD-001"), "{stdout}");
    assert!(
        stdout.ends_with("reproduced: all 2 verdicts match the recording\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_request_the_recording_does_not_hold_ends_in_an_error_verdict_not_a_wrong_one() {
    let (path, _) = written_bundle("unmatched", Faults::none()).await;
    let mut recording = bundle::recording(&bundle::read(&path).unwrap()).unwrap();
    // Drop the first page of the staff list from the recording.
    recording.exchanges.remove(0);
    let outcome = spoke::replay::replay(&recording, &[]).await.unwrap();
    assert!(
        outcome
            .unmatched
            .iter()
            .any(|r| r.starts_with("GET ") && r.contains("/staff?page=1")),
        "{:?}",
        outcome.unmatched
    );
    let staff_list = outcome
        .verdicts
        .iter()
        .find(|v| v.rule == "STAFF-001")
        .unwrap();
    assert_eq!(staff_list.outcome, Outcome::Error, "{}", staff_list.reason);
    assert!(!outcome.reproduced());
}

#[tokio::test]
async fn replay_takes_the_recorded_latency_not_its_own() {
    let (report, context) = mock_run(Profile::reference(), Faults::none(), 5).await;
    let path = scratch("bundle", "latency").join("b");
    let mut slow = report.clone();
    // As if one call had taken longer than the budget: ROB-002 warns in the recording.
    slow.exchanges[0].duration_ms = 60_000;
    bundle::write(&spoke::output::Output::default(), &path, &slow, &context).unwrap();
    let recording = bundle::recording(&bundle::read(&path).unwrap()).unwrap();
    let outcome = spoke::replay::replay(&recording, &["ROB-002".into()])
        .await
        .unwrap();
    assert_eq!(outcome.verdicts[0].outcome, Outcome::Warn);
    assert_eq!(
        context.latency_budget,
        Duration::from_secs(2),
        "the budget recorded is the run's"
    );
}

#[tokio::test]
async fn replay_of_a_run_that_timed_out_reproduces_its_error_verdicts() {
    let profile = crate::helpers::fixture_profiles()
        .into_iter()
        .find(|(name, _)| name == "members-only")
        .unwrap()
        .1;
    let mut options = mock_certify(profile.clone(), [Fault::Slow].into_iter().collect(), 1);
    options.limits.request_timeout = Duration::from_millis(200);
    let context = RunContext {
        profile_text: profile.text.clone(),
        profile_digest: spoke::digest::sha256(profile.text.as_bytes()),
        latency_budget: options.latency_budget,
        request_timeout: options.limits.request_timeout,
        finished_at: "2026-01-01T00:00:00.000Z".into(),
    };
    let report = spoke::certify::certify(options, &()).await.unwrap();
    assert!(report.verdicts.iter().any(|v| v.outcome == Outcome::Error));
    let path = scratch("bundle", "timeouts").join("b");
    bundle::write(&spoke::output::Output::default(), &path, &report, &context).unwrap();
    let verification = verify(&path).await;
    assert!(verification.intact(), "{:?}", verification.verdicts);
    assert_eq!(verification.verdicts_checked, report.verdicts.len());
}

#[test]
fn a_two_way_bundle_verifies_with_its_send_verdicts_taken_as_recorded() {
    let dir = scratch("bundle", "two-way");
    let profile = root().join("fixtures/profiles/two-way.toml");
    let profile = profile.to_str().unwrap();
    for (name, fault, exit) in [
        ("clean", None, 0),
        ("faulty", Some("send-convert-duplicates"), 1),
    ] {
        let mut args = vec!["certify", "--profile", profile, "--mock", "--seed", "3"];
        if let Some(fault) = fault {
            args.extend(["--fault", fault]);
        }
        args.extend(["--bundle", name]);
        let run = run_cli(&args, dir.as_path());
        assert_eq!(run.status.code(), Some(exit), "{run:?}");
        let verified = run_cli(&["bundle", "verify", name], dir.as_path());
        let output = String::from_utf8_lossy(&verified.stdout);
        assert_eq!(verified.status.code(), Some(0), "{output}");
        assert!(output.contains("taken as recorded"), "{output}");
        assert!(output.contains("SEND-009"), "{output}");
        let replayed = run_cli(&["replay", name], dir.as_path());
        let output = String::from_utf8_lossy(&replayed.stdout);
        assert_eq!(replayed.status.code(), Some(0), "{output}");
        assert!(!output.contains("never asked for"), "{output}");
    }
}

//! The rules as the guide words them, each shown passing against a conformant partner and
//! failing (or not judged) against a faulty one.

use crate::helpers::mock_certify;
use serde_json::json;
use spoke::auth::Credentials;
use spoke::certify::certify;
use spoke::connector::session::run_session;
use spoke::connector::{ClientLimits, PartnerClient};
use spoke::intouch::Scenario;
use spoke::partner::{self, Fault, Faults, PartnerOptions, Sandbox};
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use spoke::suite::{self, Catalog, Outcome, Verdict};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

async fn run(profile: Profile, faults: &[Fault], seed: u64) -> RunReport {
    let faults: Faults = faults.iter().copied().collect();
    certify(mock_certify(profile, faults, seed), &())
        .await
        .expect("the run starts")
}

/// The outcome and reason of `rule` in `report`.
fn verdict<'a>(report: &'a RunReport, rule: &str) -> (Outcome, &'a str) {
    let entry = report
        .verdicts
        .iter()
        .find(|v| v.rule == rule)
        .unwrap_or_else(|| panic!("{rule} was not judged"));
    (entry.outcome, entry.reason.as_str())
}

#[tokio::test]
async fn a_lookup_is_not_judged_against_a_staff_list_that_could_not_be_read() {
    for fault in [Fault::NoStaffList, Fault::StaffList500] {
        let report = run(Profile::reference(), &[fault], 3).await;
        let (outcome, reason) = verdict(&report, "STAFF-005");
        assert_eq!(outcome, Outcome::Error, "{fault}: {reason}");
        assert!(
            reason.contains("staff list could not be read"),
            "{fault}: {reason}"
        );
    }
}

/// The reference profile without its prospect read: the Connector then sees only what its
/// writes are answered.
fn reference_without_prospect_read() -> Profile {
    let text = spoke::profile::REFERENCE_PROFILE.replace(
        "[operations.prospect-read]\nmethod = \"GET\"\npath = \"/api/v1/clients/{client_id}/clubs/{club_id}/prospects/{id}\"\nrecord = \"data\"\n",
        "",
    );
    assert_ne!(
        text,
        spoke::profile::REFERENCE_PROFILE,
        "the read was removed"
    );
    Profile::parse("no-prospect-read.toml", &text).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs a session against the mock partner started with `options`, and judges it.
async fn judged_against(profile: &Profile, options: PartnerOptions) -> Vec<Verdict> {
    let (running, credentials) =
        partner::spawn_local(profile.clone(), Sandbox::default_seed(), 5, options)
            .await
            .expect("the mock partner starts");
    let client = crate::helpers::client_for(profile, &running, &credentials);
    let observations = run_session(&client, 5, &Scenario::core(), &()).await;
    let exchanges = client.recorder().snapshot();
    suite::judge(
        &Catalog::builtin(),
        profile,
        &observations,
        &exchanges,
        &suite::Settings::default(),
        &[],
    )
}

fn find<'a>(verdicts: &'a [Verdict], rule: &str) -> &'a Verdict {
    verdicts
        .iter()
        .find(|v| v.rule == rule)
        .unwrap_or_else(|| panic!("{rule} was not judged"))
}

#[tokio::test]
async fn a_partner_assigning_unowned_leads_to_a_queue_passes_the_unowned_rules() {
    // `QUEUE-WEB` is no staff member: the guide leaves the assignment to the partner.
    for profile in [Profile::reference(), reference_without_prospect_read()] {
        let options = PartnerOptions {
            default_owner: Some("QUEUE-WEB".into()),
            ..PartnerOptions::default()
        };
        let verdicts = judged_against(&profile, options).await;
        for rule in ["LEAD-002", "LEAD-003", "SRC-004", "STAFF-004"] {
            let verdict = find(&verdicts, rule);
            assert_eq!(
                verdict.outcome,
                Outcome::Pass,
                "{} {rule}: {}",
                profile.file_name,
                verdict.reason
            );
        }
        let failing: Vec<_> = verdicts
            .iter()
            .filter(|v| matches!(v.outcome, Outcome::Fail | Outcome::Warn))
            .map(|v| format!("{}: {}", v.rule, v.reason))
            .collect();
        assert!(failing.is_empty(), "{}: {failing:#?}", profile.file_name);
    }
}

#[tokio::test]
async fn unowned_leads_accepted_then_lost_fail_the_rule_of_their_case() {
    let report = run(Profile::reference(), &[Fault::DiscardUnowned], 8).await;
    for rule in ["LEAD-002", "LEAD-003"] {
        let (outcome, reason) = verdict(&report, rule);
        assert_eq!(outcome, Outcome::Fail, "{rule}: {reason}");
        assert!(
            reason.contains("was accepted, then lost: reading it back answered HTTP 404"),
            "{rule}: {reason}"
        );
    }
    // The lead with neither owner nor source is LEAD-002's: owned leads without a source stay.
    let (outcome, reason) = verdict(&report, "SRC-004");
    assert_eq!(outcome, Outcome::Pass, "{reason}");

    // Without a read operation, the update by the partner's id shows the loss.
    let report = run(
        reference_without_prospect_read(),
        &[Fault::DiscardUnowned],
        8,
    )
    .await;
    for rule in ["LEAD-002", "LEAD-003"] {
        let (outcome, reason) = verdict(&report, rule);
        assert_eq!(outcome, Outcome::Fail, "{rule}: {reason}");
        assert!(
            reason.contains("then lost: its update by that id answered HTTP 404"),
            "{rule}: {reason}"
        );
    }
    let (outcome, reason) = verdict(&report, "PROFILE-001");
    assert_eq!(
        outcome,
        Outcome::Pass,
        "an update of a lost lead is no missing route: {reason}"
    );
}

/// A partner without read operations whose writes answer acknowledgements, not records: a
/// create answers `{"id": n, "success": true}`, an update `{"ok": true}`.
async fn acknowledging_partner() -> MockServer {
    struct Created(AtomicUsize);
    impl Respond for Created {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
            ResponseTemplate::new(201).set_body_json(json!({ "id": n, "success": true }))
        }
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/staff"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [
            { "id": "S-1", "email": "Ana.Lopez@club.example" },
            { "id": "S-2", "email": "Ben.Okafor@club.example" },
        ] })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/prospects"))
        .respond_with(Created(AtomicUsize::new(0)))
        .expect(1..)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/prospects/[0-9]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .expect(1..)
        .mount(&server)
        .await;
    server
}

const ACKNOWLEDGING_PROFILE: &str = r#"
[partner]
name = "Acknowledging Partner"
base-url = "http://127.0.0.1:9"

[auth]
scheme = "none"

[capabilities]
prospects = true
staff-owner = true

[operations.staff-list]
method = "GET"
path = "/staff"
list = "data"

[operations.prospect-create]
method = "POST"
path = "/prospects"
id-from = "body"

[operations.prospect-update]
method = "PUT"
path = "/prospects/{id}"

[records.staff.fields]
id = "id"
email = "email"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
email = "email"
owner = "owner_id"
"#;

#[tokio::test]
async fn an_acknowledgement_is_not_judged_as_the_stored_record() {
    let server = acknowledging_partner().await;
    let profile = Arc::new(Profile::parse("acknowledging.toml", ACKNOWLEDGING_PROFILE).unwrap());
    let client = PartnerClient::new(
        profile.clone(),
        &server.uri(),
        Credentials::None,
        ClientLimits::default(),
    )
    .unwrap();
    let observations = run_session(&client, 2, &Scenario::core(), &()).await;
    let exchanges = client.recorder().snapshot();
    let verdicts = suite::judge(
        &Catalog::builtin(),
        &profile,
        &observations,
        &exchanges,
        &suite::Settings::default(),
        &[],
    );
    let owner = find(&verdicts, "STAFF-004");
    assert_eq!(owner.outcome, Outcome::Pass, "{}", owner.reason);
    assert!(
        owner.reason.contains("not checked: no read operation"),
        "{}",
        owner.reason
    );
    for rule in ["LEAD-001", "LEAD-002", "LEAD-003", "LEAD-004"] {
        let verdict = find(&verdicts, rule);
        assert_eq!(verdict.outcome, Outcome::Pass, "{rule}: {}", verdict.reason);
    }
}

#[tokio::test]
async fn names_read_back_in_other_letter_case_warn_and_mangled_names_fail() {
    let report = run(Profile::reference(), &[Fault::UpperCaseNames], 4).await;
    let (outcome, reason) = verdict(&report, "LEAD-005");
    assert_eq!(outcome, Outcome::Warn, "{reason}");
    assert!(
        reason.contains("differs only in letter case (SmartMatch compares names ignoring it)"),
        "{reason}"
    );
    assert_eq!(
        report.exit_code, 0,
        "a warning alone keeps the run conformant"
    );
    let others: Vec<&str> = report
        .verdicts
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::Fail | Outcome::Warn) && v.rule != "LEAD-005")
        .map(|v| v.rule.as_str())
        .collect();
    assert!(others.is_empty(), "{others:?}");

    let report = run(Profile::reference(), &[Fault::MangleUnicode], 4).await;
    let (outcome, reason) = verdict(&report, "LEAD-005");
    assert_eq!(outcome, Outcome::Fail, "{reason}");
    assert!(!reason.contains("differs only"), "{reason}");
}

#[tokio::test]
async fn staff_without_an_email_are_a_warning_naming_them_and_a_list_without_any_fails() {
    let report = run(Profile::reference(), &[Fault::StaffSomeWithoutEmail], 6).await;
    let (outcome, reason) = verdict(&report, "STAFF-002");
    assert_eq!(outcome, Outcome::Warn, "{reason}");
    assert!(
        reason.starts_with("14 of 143 staff entries have no email")
            && reason.contains("S-0010, S-0020"),
        "{reason}"
    );
    assert_eq!(report.exit_code, 0);

    let report = run(Profile::reference(), &[Fault::StaffMissingEmail], 6).await;
    let (outcome, reason) = verdict(&report, "STAFF-002");
    assert_eq!(outcome, Outcome::Fail, "{reason}");
    assert!(reason.contains("no owner can ever be matched"), "{reason}");

    let report = run(Profile::reference(), &[], 6).await;
    let (outcome, reason) = verdict(&report, "STAFF-002");
    assert_eq!(outcome, Outcome::Pass, "{reason}");
    assert_eq!(reason, "All 143 staff entries have an id and an email.");
}

#[tokio::test]
async fn owners_of_every_staff_id_shape_are_checked_on_every_seed() {
    for seed in [1, 2, 3, 17, 99] {
        let report = run(Profile::reference(), &[Fault::DropOwnerNumericIds], seed).await;
        let (outcome, reason) = verdict(&report, "STAFF-004");
        assert_eq!(outcome, Outcome::Fail, "seed {seed}: {reason}");
        assert!(
            reason.contains("was sent with owner `40025` but reads back with no owner"),
            "seed {seed}: {reason}"
        );
    }
}

#[tokio::test]
async fn a_source_list_that_shows_new_sources_after_a_moment_still_passes() {
    let lagging = |lag_ms| PartnerOptions {
        source_list_lag: std::time::Duration::from_millis(lag_ms),
        ..PartnerOptions::default()
    };
    let verdicts = judged_against(&Profile::reference(), lagging(250)).await;
    let created = find(&verdicts, "SRC-003");
    assert_eq!(created.outcome, Outcome::Pass, "{}", created.reason);
    assert!(
        created.reason.contains(" ms, each listed once"),
        "{}",
        created.reason
    );

    // The re-reads are bounded: a list that never catches up in time fails.
    let started = std::time::Instant::now();
    let verdicts = judged_against(&Profile::reference(), lagging(10_000)).await;
    let created = find(&verdicts, "SRC-003");
    assert_eq!(created.outcome, Outcome::Fail, "{}", created.reason);
    assert!(
        created
            .reason
            .contains("is not in the list afterwards (it was read 5 times over"),
        "{}",
        created.reason
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_created_source_must_carry_the_id_the_create_answered() {
    let report = run(Profile::reference(), &[Fault::SourceCreateWrongId], 12).await;
    let (outcome, reason) = verdict(&report, "SRC-003");
    assert_eq!(outcome, Outcome::Fail, "{reason}");
    assert!(
        reason.contains("which is the existing source `walk-in`"),
        "{reason}"
    );
}

/// A partner that lists a created source under its name with the accents dropped, and whose
/// create answers the same id for a name it has (`idempotent`) or a new one each time.
struct RenamingSources {
    idempotent: bool,
    created: std::sync::Mutex<Vec<(String, String)>>,
}

impl Respond for RenamingSources {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut created = self.created.lock().unwrap();
        if request.method.as_str() == "GET" {
            let mut data = vec![
                json!({ "id": "LS-1", "name": "Walk-In" }),
                json!({ "id": "LS-2", "name": "Café Walk-In" }),
            ];
            for (id, name) in created.iter() {
                let plain: String = name
                    .chars()
                    .map(|c| match c {
                        'ü' => 'u',
                        'é' => 'e',
                        other => other,
                    })
                    .collect();
                data.push(json!({ "id": id, "name": plain }));
            }
            return ResponseTemplate::new(200).set_body_json(json!({ "data": data }));
        }
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        let known = created
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.clone());
        let id = match known {
            Some(id) if self.idempotent => id,
            _ => {
                let id = format!("LS-{}", 100 + created.len());
                created.push((id.clone(), name.clone()));
                id
            }
        };
        ResponseTemplate::new(201).set_body_json(json!({ "data": { "id": id, "name": name } }))
    }
}

const RENAMING_PROFILE: &str = r#"
[partner]
name = "Renaming Partner"
base-url = "http://127.0.0.1:9"

[auth]
scheme = "none"

[capabilities]
prospects = true
lead-source = true

[operations.source-list]
method = "GET"
path = "/sources"
list = "data"

[operations.source-create]
method = "POST"
path = "/sources"
record = "data"
id-from = "body"

[operations.prospect-create]
method = "POST"
path = "/prospects"
id-from = "body"

[operations.prospect-update]
method = "PUT"
path = "/prospects/{id}"

[records.source.fields]
id = "id"
name = "name"

[records.prospect.fields]
id = "id"
first-name = "first_name"
last-name = "last_name"
source = "source_id"
"#;

async fn judged_with_renaming_sources(idempotent: bool) -> Verdict {
    let server = MockServer::start().await;
    Mock::given(path("/sources"))
        .respond_with(RenamingSources {
            idempotent,
            created: Default::default(),
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/prospects"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "P-1" })))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/prospects/P-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .mount(&server)
        .await;
    let profile = Arc::new(Profile::parse("renaming.toml", RENAMING_PROFILE).unwrap());
    let client = PartnerClient::new(
        profile.clone(),
        &server.uri(),
        Credentials::None,
        ClientLimits::default(),
    )
    .unwrap();
    let observations = run_session(&client, 3, &Scenario::core(), &()).await;
    let exchanges = client.recorder().snapshot();
    let verdicts = suite::judge(
        &Catalog::builtin(),
        &profile,
        &observations,
        &exchanges,
        &suite::Settings::default(),
        &["SRC-003".to_owned()],
    );
    verdicts.into_iter().next().expect("SRC-003 was judged")
}

#[tokio::test]
async fn a_source_listed_under_another_name_passes_only_when_its_create_is_idempotent() {
    let verdict = judged_with_renaming_sources(true).await;
    assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.reason);
    assert!(
        verdict
            .reason
            .contains("were answered the same id when created again"),
        "{}",
        verdict.reason
    );
    let verdict = judged_with_renaming_sources(false).await;
    assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.reason);
    assert!(
        verdict.reason.contains("so a second sync would create"),
        "{}",
        verdict.reason
    );
}

#[tokio::test]
async fn a_refused_write_that_was_stored_anyway_breaks_sec_001() {
    let clean = run(Profile::reference(), &[], 9).await;
    let (outcome, reason) = verdict(&clean, "SEC-001");
    assert_eq!(outcome, Outcome::Pass, "{reason}");
    assert!(reason.contains("read back unchanged"), "{reason}");

    for profile in [
        Profile::reference(),
        crate::helpers::fixture_profiles().remove(1).1,
    ] {
        let report = run(profile.clone(), &[Fault::SaveBeforeAuth], 9).await;
        let (outcome, reason) = verdict(&report, "SEC-001");
        assert!(
            matches!(outcome, Outcome::Fail | Outcome::Warn),
            "{}: {reason}",
            profile.file_name
        );
        assert!(
            reason.contains("was stored although it was refused"),
            "{}: {reason}",
            profile.file_name
        );
    }
}

#[tokio::test]
async fn sourceless_leads_accepted_then_lost_fail_src_004_alone_among_the_case_rules() {
    let report = run(Profile::reference(), &[Fault::DiscardSourceless], 8).await;
    let (outcome, reason) = verdict(&report, "SRC-004");
    assert_eq!(outcome, Outcome::Fail, "{reason}");
    assert!(reason.contains("was accepted, then lost"), "{reason}");
    // The lost leads with no owner, or a matched one, are SRC-004's: their owner explains nothing.
    for rule in ["LEAD-002", "LEAD-003", "STAFF-004"] {
        let (outcome, reason) = verdict(&report, rule);
        assert_eq!(outcome, Outcome::Pass, "{rule}: {reason}");
    }
}

#[test]
fn no_command_panics_on_a_closed_standard_output() {
    let cases: [(&[&str], i32); 5] = [
        (&["rules"], 0),
        (&["rules", "--format", "json"], 0),
        (&["partner", "--list-faults"], 0),
        (&["certify", "--seed", "1"], 0),
        (&["--help"], 0),
    ];
    for (args, code) in cases {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
            .args(args)
            .current_dir(crate::helpers::root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command writes a byte, as `| head -0` would.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    }
}

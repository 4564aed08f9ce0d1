//! `spoke simulate`: deliveries at concurrency with resends, and an exactly-once audit that
//! catches what the partner loses, duplicates or gets wrong.

use crate::helpers::{root, run_cli};
use spoke::connector::ClientLimits;
use spoke::partner::{Fault, Faults, Sandbox};
use spoke::profile::Profile;
use spoke::simulate::{simulate, ExactlyOnce, SimulateOptions, SimulateReport};
use std::time::{Duration, Instant};

fn options(faults: &[Fault], leads: usize, members: usize) -> SimulateOptions {
    SimulateOptions {
        profile: Profile::reference(),
        base_url: None,
        mock: true,
        sandbox: Sandbox::default_seed(),
        faults: faults.iter().copied().collect::<Faults>(),
        seed: 3,
        leads,
        members,
        concurrency: 16,
        rate: None,
        duration: None,
        limits: ClientLimits {
            retry_backoff: Duration::from_millis(2),
            ..ClientLimits::default()
        },
        retries: 5,
    }
}

async fn run(options: SimulateOptions) -> SimulateReport {
    simulate(options, &()).await.expect("the simulation runs")
}

#[tokio::test]
async fn a_flaky_partner_with_lost_answers_still_gets_every_lead_exactly_once() {
    let report = run(options(&[Fault::Flaky, Fault::LostAnswers], 1500, 200)).await;
    assert_eq!(report.planned, 1700);
    assert_eq!(report.delivered, 1700, "{}", report.render());
    assert!(report.retried > 0, "the faults should have forced resends");
    let audit = report.audit.as_ref().unwrap();
    assert_eq!(audit.checked, 1700);
    assert_eq!((audit.lost, audit.duplicated, audit.wrong), (0, Some(0), 0));
    assert!(report.clean());
    assert!(report.latency.p99_ms >= report.latency.p50_ms);
}

#[tokio::test]
async fn resends_to_a_partner_that_ignores_external_ids_show_as_duplicates() {
    let report = run(options(
        &[Fault::LostAnswers, Fault::RetryCreatesDuplicate],
        400,
        0,
    ))
    .await;
    let audit = report.audit.as_ref().unwrap();
    assert!(audit.duplicated.unwrap() > 0, "{}", report.render());
    assert!(audit.problems.iter().any(|p| p.contains("held 2 times")));
    assert!(!report.clean());
    assert_eq!(report.exactly_once, ExactlyOnce::Broken);
}

/// The reference profile without credentials, written to a folder of its own for the CLI.
fn open_reference() -> (Profile, std::path::PathBuf) {
    let text = std::fs::read_to_string(root().join("fixtures/profiles/reference.toml")).unwrap();
    let text = text
        .replace("scheme = \"bearer\"", "scheme = \"none\"")
        .replace("token-env = \"SPOKE_REFERENCE_TOKEN\"", "");
    let dir = std::env::temp_dir().join(format!(
        "spoke-simulate-open-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("reference-open.toml");
    std::fs::write(&path, &text).unwrap();
    (Profile::parse("reference-open.toml", &text).unwrap(), path)
}

/// A mock partner of `profile` with `faults`, reached over the network as a real partner is.
async fn partner_elsewhere(profile: &Profile, faults: &[Fault]) -> spoke::partner::RunningPartner {
    let state = spoke::partner::PartnerState::with_options(
        profile.clone(),
        Sandbox::default_seed(),
        spoke::auth::Credentials::generated(&profile.auth, 7),
        spoke::partner::PartnerOptions {
            faults: faults.iter().copied().collect(),
            seed: 3,
            ..Default::default()
        },
    );
    spoke::partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_whose_duplicates_cannot_be_counted_is_not_verified_with_exit_4() {
    // The partner really holds duplicates, but the profile offers no way to find them.
    let (profile, path) = open_reference();
    let running = partner_elsewhere(
        &profile,
        &[Fault::LostAnswers, Fault::RetryCreatesDuplicate],
    )
    .await;
    let mut run_options = options(&[], 200, 0);
    run_options.profile = profile.clone();
    run_options.mock = false;
    run_options.base_url = Some(running.base_url());
    let report = run(run_options).await;
    let held_twice = {
        let data = running.state.store().read();
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for record in data
            .records(spoke::model::RecordKind::Prospect)
            .into_iter()
            .flat_map(|records| records.values())
        {
            if let Some(external) = record.get(spoke::model::Field::ExternalId) {
                *seen.entry(external.to_owned()).or_default() += 1;
            }
        }
        seen.values().filter(|count| **count > 1).count()
    };
    assert!(held_twice > 0, "the fault made no duplicates");
    assert_eq!(
        report.exactly_once,
        ExactlyOnce::NotVerified,
        "{}",
        report.render()
    );
    assert!(!report.clean());
    let rendered = report.render();
    assert!(
        rendered.contains("duplicates: not counted")
            && rendered.contains("exactly once: not verified (exit 4)"),
        "{rendered}"
    );

    let base_url = running.base_url();
    let folder = path.parent().unwrap().to_owned();
    let dir = folder.clone();
    let output = tokio::task::spawn_blocking(move || {
        run_cli(
            &[
                "simulate",
                "--profile",
                path.to_str().unwrap(),
                "--base-url",
                &base_url,
                "--leads",
                "50",
                "--seed",
                "3",
            ],
            &dir,
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(spoke::exit_codes::NOT_VERIFIED),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(folder).ok();
}

#[test]
fn duplicates_counted_in_the_mock_partner_and_found_exit_1() {
    let output = run_cli(
        &[
            "simulate",
            "--mock",
            "--fault",
            "lost-answers,retry-creates-duplicate",
            "--leads",
            "200",
            "--seed",
            "3",
        ],
        &root(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(spoke::exit_codes::NOT_CONFORMANT),
        "{stdout}"
    );
    assert!(
        stdout.contains("duplicates: counted in the mock partner's store")
            && stdout.contains("exactly once: no"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_partner_that_drops_owners_shows_as_wrong() {
    let report = run(options(&[Fault::DropOwner], 90, 0)).await;
    let audit = report.audit.as_ref().unwrap();
    assert!(audit.wrong > 0, "{}", report.render());
    assert_eq!(audit.lost, 0);
    assert!(!report.clean());
}

#[tokio::test]
async fn a_partner_that_rejects_members_shows_as_failed_deliveries() {
    let report = run(options(&[Fault::RejectMember], 10, 20)).await;
    assert_eq!(report.failed.get("rejected"), Some(&20));
    assert_eq!(report.delivered, 10);
    assert!(!report.clean());
}

#[tokio::test]
async fn the_rate_limits_how_fast_deliveries_start() {
    let mut options = options(&[], 60, 0);
    options.rate = Some(200.0);
    let started = Instant::now();
    let report = run(options).await;
    assert_eq!(report.delivered, 60);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_duration_stops_new_deliveries() {
    let mut options = options(&[], 100_000, 0);
    options.rate = Some(100.0);
    options.duration = Some(Duration::from_millis(300));
    let report = run(options).await;
    assert!(report.started < 100, "started {}", report.started);
    assert_eq!(report.delivered, report.started);
}

#[test]
fn the_command_prints_the_summary_and_writes_the_json_report() {
    let dir = std::env::temp_dir().join(format!("spoke-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("simulate.json");
    let output = run_cli(
        &[
            "simulate",
            "--leads",
            "300",
            "--members",
            "30",
            "--concurrency",
            "8",
            "--report",
            &format!("json:{}", json.display()),
        ],
        &root(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("lost = 0, duplicated = 0, wrong = 0")
            && stdout.contains("exactly once: verified"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["delivered"], 330);
    assert!(report["latency"]["p99_ms"].is_number());
    std::fs::remove_dir_all(&dir).ok();
}

/// The reference profile without credentials, at a wiremock partner that answers every
/// prospect create with `status` (and everything else with 404).
async fn always_answering(status: u16, retries: u32) -> SimulateReport {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/prospects$"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    run(open_reference_at(&server, retries)).await
}

/// Options for the reference profile without credentials at `server`, delivering 3 leads.
fn open_reference_at(server: &wiremock::MockServer, retries: u32) -> SimulateOptions {
    let text = std::fs::read_to_string(root().join("fixtures/profiles/reference.toml")).unwrap();
    let text = text
        .replace("scheme = \"bearer\"", "scheme = \"none\"")
        .replace("token-env = \"SPOKE_REFERENCE_TOKEN\"", "");
    let mut options = options(&[], 3, 0);
    options.profile = Profile::parse("reference-open.toml", &text).unwrap();
    options.mock = false;
    options.base_url = Some(server.uri());
    options.retries = retries;
    options
}

#[tokio::test]
async fn a_create_answered_with_a_redirect_is_followed_within_the_partner() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/api/.*/prospects$"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/moved/prospects"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/moved/prospects$"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"data": {"id": "P-9"}})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let report = run(open_reference_at(&server, 0)).await;
    assert_eq!(report.delivered, 3, "{}", report.render());
    assert_eq!(report.resends, 0);
}

#[tokio::test]
async fn a_partner_answering_503_gets_every_resend_counted_until_the_budget_is_spent() {
    // Each of the 2 delivery attempts is retried twice on 503 (the client limit): 6 requests.
    let report = always_answering(503, 1).await;
    assert_eq!(
        report.failed.get("server error"),
        Some(&3),
        "{}",
        report.render()
    );
    assert_eq!(report.resends, 3 * 5);
    assert_eq!(report.retried, 3);
    assert!(!report.clean());
}

#[tokio::test]
async fn a_partner_answering_500_is_resent_only_as_retries_allow() {
    let report = always_answering(500, 2).await;
    assert_eq!(
        report.failed.get("server error"),
        Some(&3),
        "{}",
        report.render()
    );
    assert_eq!(report.resends, 3 * 2);
}

/// The JSON writer of load runs gives the very bytes of the JSON tree, for every fixture
/// profile and kind, with every field or only some, and values that need escaping.
#[test]
fn records_written_straight_to_json_match_the_tree_byte_for_byte() {
    use spoke::model::{Field, Record, RecordKind};
    let values = [
        "plain",
        "Zoë \"quoted\" \\ back/slash\ttab\u{1}",
        "",
        "active",
        "prospect",
    ];
    for (name, profile) in crate::helpers::fixture_profiles() {
        for kind in [RecordKind::Prospect, RecordKind::Member, RecordKind::Staff] {
            let codec = profile.codec(kind);
            for (round, value) in values.iter().enumerate() {
                let record: Record = Field::ALL
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| (index + round) % (round + 1) == 0)
                    .map(|(_, field)| (*field, value.to_string()))
                    .collect();
                let wraps = [None, spoke::profile::JsonPath::parse("data.record").ok()];
                for at in &wraps {
                    let mut tree = codec.encode(&record);
                    if let Some(at) = at {
                        tree = at.wrap(tree);
                    }
                    assert_eq!(
                        String::from_utf8(codec.encode_json(
                            &record,
                            at.as_ref(),
                            spoke::profile::Side::Request
                        ))
                        .unwrap(),
                        serde_json::to_string(&tree).unwrap(),
                        "{name} {kind:?} round {round}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn every_fixture_profile_gets_every_lead_exactly_once_through_a_flaky_partner() {
    // XML and SOAP partners included: their bodies go through the general client's codec.
    use spoke::model::{Field, RecordKind};
    for (name, profile) in crate::helpers::fixture_profiles() {
        let carries_members = profile.carries(RecordKind::Member);
        let carries_prospects = profile.carries(RecordKind::Prospect);
        let report = run(SimulateOptions {
            profile: profile.clone(),
            leads: if carries_prospects { 120 } else { 0 },
            members: if carries_members { 40 } else { 0 },
            ..options(&[Fault::Flaky, Fault::LostAnswers], 0, 0)
        })
        .await;
        assert_eq!(
            report.delivered,
            report.planned,
            "{name}: {}",
            report.render()
        );
        let audit = report.audit.as_ref().unwrap();
        let duplicated = audit.duplicated.unwrap_or(0);
        assert_eq!(
            (audit.lost, duplicated, audit.wrong),
            (0, 0, 0),
            "{name}: {}",
            report.render()
        );
        // A delivery without an external id cannot be found in the store: not verified.
        let all_keyed = [RecordKind::Prospect, RecordKind::Member]
            .into_iter()
            .filter(|kind| profile.carries(*kind))
            .all(|kind| profile.codec(kind).maps(Field::ExternalId));
        let expected = if all_keyed {
            ExactlyOnce::Verified
        } else {
            ExactlyOnce::NotVerified
        };
        assert_eq!(report.exactly_once, expected, "{name}: {}", report.render());
    }
}

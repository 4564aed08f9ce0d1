//! `spoke simulate`: deliveries at concurrency with resends, and an exactly-once audit that
//! catches what the partner loses, duplicates or gets wrong.

use crate::helpers::{root, run_cli};
use spoke::connector::ClientLimits;
use spoke::partner::{Fault, Faults, Sandbox};
use spoke::profile::Profile;
use spoke::simulate::{simulate, SimulateOptions, SimulateReport};
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
        shard: None,
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
        stdout.contains("lost = 0, duplicated = 0, wrong = 0"),
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
    for (name, profile) in crate::helpers::fixture_profiles() {
        let carries_members = profile.carries(spoke::model::RecordKind::Member);
        let carries_prospects = profile.carries(spoke::model::RecordKind::Prospect);
        let report = run(SimulateOptions {
            profile,
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
        assert!(report.clean(), "{name}: {}", report.render());
    }
}

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

/// The token of the reference profile in the shard tests (a test value, not a secret).
const SHARD_TEST_TOKEN: &str = "tok_shard_test";

/// A `spoke partner` process serving the reference profile on 127.0.0.1:0, stopped when
/// dropped, so that several `spoke simulate` processes reach one store.
struct PartnerProcess {
    child: std::process::Child,
    url: String,
}

impl PartnerProcess {
    fn start() -> PartnerProcess {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
            .args([
                "partner",
                "--profile",
                "fixtures/profiles/reference.toml",
                "--port",
                "0",
            ])
            .current_dir(root())
            .env("SPOKE_REFERENCE_TOKEN", SHARD_TEST_TOKEN)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the spoke binary runs");
        let first = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        let url = first
            .strip_prefix("spoke partner listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        PartnerProcess { child, url }
    }

    /// The external ids of every prospect and member in the partner's store, sorted.
    fn external_ids(&self) -> Vec<String> {
        let url = format!("{}/__spoke/store", self.url);
        let store: serde_json::Value = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() });
        let key = spoke::model::Field::ExternalId.key();
        let mut ids: Vec<String> = ["prospects", "members"]
            .iter()
            .flat_map(|kind| store[kind].as_array().cloned().unwrap_or_default())
            .filter_map(|record| Some(record[key].as_str()?.to_owned()))
            .collect();
        ids.sort();
        ids
    }

    /// `spoke simulate` against this partner, writing its JSON report to `report`.
    fn simulate(&self, extra: &[&str], report: &std::path::Path) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"));
        command
            .args([
                "simulate",
                "--profile",
                "fixtures/profiles/reference.toml",
                "--base-url",
                &self.url,
                "--leads",
                "300",
                "--members",
                "40",
                "--concurrency",
                "4",
                "--seed",
                "5",
                "--report",
                &format!("json:{}", report.display()),
            ])
            .args(extra)
            .current_dir(root())
            .env("SPOKE_REFERENCE_TOKEN", SHARD_TEST_TOKEN)
            .env("NO_COLOR", "1");
        command
    }
}

impl Drop for PartnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_report(path: &std::path::Path) -> SimulateReport {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn four_shards_against_one_partner_merge_into_the_figures_and_audit_of_a_single_run() {
    let dir = std::env::temp_dir().join(format!("spoke-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let partner = PartnerProcess::start();
    let shard_files: Vec<std::path::PathBuf> = (0..4)
        .map(|index| dir.join(format!("shard-{index}.json")))
        .collect();
    // The four shards run at once, as four pods or CI jobs would.
    let shards: Vec<_> = shard_files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            partner
                .simulate(&["--shard", &format!("{index}/4")], file)
                .output_in_background()
        })
        .collect();
    for (index, shard) in shards.into_iter().enumerate() {
        let output = shard.join().unwrap();
        // A partner in its own process is audited by reading back, which cannot count
        // duplicates: exit 4, not verified (the store check below counts them).
        assert_eq!(
            output.status.code(),
            Some(spoke::exit_codes::NOT_VERIFIED),
            "shard {index}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let shard_reports: Vec<SimulateReport> = shard_files.iter().map(|f| read_report(f)).collect();
    assert!(shard_reports
        .iter()
        .all(|r| r.planned == 85 && r.run_planned == 340));

    let merged_file = dir.join("merged.json");
    let mut args = vec!["simulate".to_owned(), "merge".to_owned()];
    args.extend(shard_files.iter().map(|f| f.display().to_string()));
    args.push(format!("--report=json:{}", merged_file.display()));
    let output = run_cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &root(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(spoke::exit_codes::NOT_VERIFIED),
        "{stdout}"
    );
    assert!(stdout.contains("merged 4 shards"), "{stdout}");
    let merged = read_report(&merged_file);

    let single_partner = PartnerProcess::start();
    let single_file = dir.join("single.json");
    let output = single_partner.simulate(&[], &single_file).output().unwrap();
    assert_eq!(output.status.code(), Some(spoke::exit_codes::NOT_VERIFIED));
    let single = read_report(&single_file);
    assert_eq!(merged.exactly_once, single.exactly_once);

    assert_eq!(
        (
            merged.run_planned,
            merged.planned,
            merged.started,
            merged.delivered
        ),
        (
            single.run_planned,
            single.planned,
            single.started,
            single.delivered
        )
    );
    assert_eq!(merged.delivered, 340);
    let counts = |report: &SimulateReport| {
        let audit = report
            .audit
            .as_ref()
            .expect("the reference profile reads back");
        (audit.checked, audit.lost, audit.duplicated, audit.wrong)
    };
    assert_eq!(counts(&merged), counts(&single));
    assert_eq!(counts(&merged), (340, 0, None, 0));
    let requests: u64 = shard_reports
        .iter()
        .map(|r| r.histogram().unwrap().len())
        .sum();
    assert_eq!(merged.histogram().unwrap().len(), requests);
    assert!(requests >= 340);
    // What the read-back audit cannot count, the partner's store shows: the shards together
    // left exactly the single run's leads, each once.
    let sharded_ids = partner.external_ids();
    let mut unique = sharded_ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), sharded_ids.len(), "a lead is held twice");
    assert_eq!(sharded_ids, single_partner.external_ids());

    // Three of the four shards are not the run.
    let mut args = vec!["simulate".to_owned(), "merge".to_owned()];
    args.extend(shard_files[..3].iter().map(|f| f.display().to_string()));
    let output = run_cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &root(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no report of shard 3 (of 4"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_shard_that_names_no_slice_is_refused_naming_the_flag() {
    for value in ["4/4", "1/0", "one/4", "2"] {
        let output = run_cli(&["simulate", "--shard", value], &root());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        assert!(stderr.contains("--shard"), "{value}: {stderr}");
    }
}

/// Runs a command to its end on a thread of its own.
trait OutputInBackground {
    fn output_in_background(self) -> std::thread::JoinHandle<std::process::Output>;
}

impl OutputInBackground for std::process::Command {
    fn output_in_background(mut self) -> std::thread::JoinHandle<std::process::Output> {
        std::thread::spawn(move || self.output().expect("the spoke binary runs"))
    }
}

//! The command line: clap definitions and each command's wiring to the library; errors become
//! exit codes here.

use crate::auth::Credentials;
use crate::certify::{certify, CertifyError, CertifyOptions};
use crate::connector::ClientLimits;
use crate::exit_codes;
use crate::output::Output;
use crate::partner::{self, Fault, Faults, PartnerState, Sandbox};
use crate::profile::{Profile, ProfileError};
use crate::report::terminal::{self, Style};
use crate::suite::Catalog;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Conformance suite and mock partner for integrations with the Connector.
#[derive(Debug, Parser)]
#[command(name = "spoke", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Certify a partner: play InTouch and the Connector against its API and judge every rule.
    Certify(CertifyArgs),
    /// Print the rule catalog.
    Rules(RulesArgs),
    /// Stream leads through the Connector into a partner at a given concurrency and rate, with
    /// retries, a latency histogram and an exactly-once audit.
    Simulate(SimulateArgs),
    /// Prove the suite's detection power: certify every fixture profile against the mock
    /// partner, clean and with each applicable fault, and compare with the catalog.
    Selftest(SelftestArgs),
    /// Serve a profile's API shape as a mock partner, from an in-memory sandbox.
    Partner(PartnerArgs),
    /// Serve a mock of the Connector's own API for partners that send data; judge what they send
    /// (SEND- rules) when it stops.
    Connector(ConnectorArgs),
    /// Work with profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Work with certification bundles (`spoke certify --bundle`).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Serve a bundle's recorded partner answers as a mock partner and re-run the suite
    /// against it: the same seed, the same verdicts, without the partner's sandbox.
    Replay(ReplayArgs),
    /// Compare two JSON reports: verdicts that changed, rules added or removed, changed evidence.
    /// Exits 1 when a rule got worse.
    Diff(DiffArgs),
    /// Carry out one two-way step as the built-in mock partner would, from the SPOKE_*
    /// variables a certify `--step-hook` gets (try the hook mode with `--step-hook 'spoke act'`).
    Act(ActArgs),
    /// Serve the web application: partners, profiles, runs with live progress, history,
    /// diffs, waivers and reports, and a JSON API for CI.
    Serve(ServeArgs),
}

/// `spoke serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The database: a file path or sqlite://PATH (SQLite, created when missing), or
    /// postgres://USER@HOST/DB (several instances share its queue).
    #[arg(long, default_value = "spoke-serve.db")]
    pub db: String,
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// The address to bind.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// Runs this instance carries out at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Variables of the server's environment that sandbox runs may read as secrets
    /// (comma-separated or repeated); every other secret is given with the run.
    #[arg(long = "secret-env", value_delimiter = ',', value_name = "VAR")]
    pub secret_env: Vec<String>,
}

/// `spoke act`.
#[derive(Debug, clap::Args)]
pub struct ActArgs {
    /// Sending faults to act out (`send-…`, comma-separated or repeated).
    #[arg(long = "fault", value_delimiter = ',')]
    pub faults: Vec<String>,
}

/// `spoke diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier run's JSON report (`--report json:PATH`).
    pub old: PathBuf,
    /// The later run's JSON report.
    pub new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

/// `spoke certify`.
#[derive(Debug, clap::Args)]
pub struct CertifyArgs {
    /// The partner, or the mock partner standing in for it.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Seed of the run's data; the same seed replays the same data (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these rules, comma-separated (e.g. LEAD-002,SRC-002).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write a report: json:PATH, junit:PATH, har:PATH or html:PATH; repeatable.
    #[arg(long = "report", value_name = "FORMAT:PATH")]
    pub reports: Vec<crate::report::ReportTarget>,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// The latency budget of one call in milliseconds (ROB-002).
    #[arg(long, default_value_t = 2_000)]
    pub latency_budget_ms: u64,
    /// The whole run's deadline in milliseconds; requests after it are not sent.
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Accept invalid TLS certificates (self-signed sandboxes); every report says so.
    #[arg(long)]
    pub insecure: bool,
    /// Show names, emails, phones, birth dates and addresses in the evidence (local debugging);
    /// by default they are masked to their shape.
    #[arg(long)]
    pub show_personal_data: bool,
    /// A waivers file (TOML): agreed exceptions that do not fail the run until they expire.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Two-way profiles: the mock Connector API's port on 127.0.0.1 (default: any free port).
    #[arg(long, default_value_t = 0)]
    pub connector_port: u16,
    /// Two-way profiles: how long each step waits for the partner's call (e.g. 90s, 2m).
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub step_timeout: Duration,
    /// Two-way profiles: a shell command run for each step, the step described by SPOKE_*
    /// environment variables; its failure or timeout makes the step's rules error.
    #[arg(long, value_name = "CMD")]
    pub step_hook: Option<String>,
    /// Never wait for a person (CI): a two-way profile's steps need --step-hook (or --mock).
    #[arg(long)]
    pub non_interactive: bool,
    /// Write a certification bundle: a folder, or a file ending in .zip (manifest with
    /// digests, every report, the HAR, the profile).
    #[arg(long, value_name = "DIR|FILE.zip")]
    pub bundle: Option<PathBuf>,
}

/// `spoke bundle ...`.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Check a bundle offline: every file's digest, the file list, and that the recorded
    /// verdicts follow from the recorded evidence and the catalog.
    Verify {
        /// The bundle: a folder or a .zip.
        path: PathBuf,
    },
}

/// `spoke replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The bundle: a folder or a .zip.
    pub bundle: PathBuf,
    /// Only these rules, comma-separated (default: the recorded run's).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// `spoke simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The partner, or the mock partner standing in for it.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Prospects to deliver.
    #[arg(long, default_value_t = 1000)]
    pub leads: usize,
    /// Members to deliver.
    #[arg(long, default_value_t = 0)]
    pub members: usize,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Deliveries started per second at most.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop starting deliveries after this long (e.g. 30s, 2m, 500ms).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of the leads.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Resends of one delivery after a 5xx, a timeout or a broken connection.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Write the figures as JSON: json:PATH.
    #[arg(long = "report", value_name = "json:PATH")]
    pub report: Option<String>,
}

/// Which partner a run talks to: a profile's sandbox, or the built-in mock partner serving it.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The partner's profile (default: the built-in reference profile, served by the built-in
    /// mock partner).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The partner's API root (default: the profile's base-url).
    #[arg(long, conflicts_with = "mock")]
    pub base_url: Option<String>,
    /// Use the built-in mock partner serving the profile (a dry run of the profile itself).
    #[arg(long)]
    pub mock: bool,
    /// Mock faults to switch on (with --mock or no --profile), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub fault: Vec<String>,
    /// The mock partner's sandbox seed file (with --mock).
    #[arg(long)]
    pub sandbox: Option<PathBuf>,
    /// The mock partner's sandbox generated instead: `STAFF,SOURCES` (e.g. 100000,10000).
    #[arg(long, value_name = "STAFF,SOURCES", value_parser = parse_synthetic, conflicts_with = "sandbox")]
    pub synthetic: Option<(usize, usize)>,
}

/// A resolved [`TargetArgs`].
struct Target {
    profile: Profile,
    mock: bool,
    faults: Faults,
    sandbox: Sandbox,
}

impl TargetArgs {
    /// Loads the profile and the mock's sandbox, and refuses mock options without the mock.
    fn resolve(&self) -> Result<Target, Failure> {
        let profile = load_profile(self.profile.as_ref())?;
        let mock = self.mock || self.profile.is_none();
        let faults = parse_faults(&self.fault)?;
        let shapes_mock = !faults.is_empty() || self.sandbox.is_some() || self.synthetic.is_some();
        if !mock && shapes_mock {
            return Err(Failure::invalid(anyhow::anyhow!(
                "--fault, --sandbox and --synthetic shape the mock partner: add --mock"
            )));
        }
        let sandbox = load_sandbox(self.sandbox.as_ref(), self.synthetic)?;
        Ok(Target {
            profile,
            mock,
            faults,
            sandbox,
        })
    }
}

fn parse_synthetic(text: &str) -> Result<(usize, usize), String> {
    let (staff, sources) = text
        .split_once(',')
        .ok_or_else(|| format!("`{text}`: expected STAFF,SOURCES, e.g. 100000,10000"))?;
    let number = |part: &str| {
        part.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 10_000_000)
            .ok_or_else(|| format!("`{part}` is not a count up to 10000000"))
    };
    Ok((number(staff)?, number(sources)?))
}

/// The mock partner's sandbox: a file, a generated one, or the built-in default.
fn load_sandbox(
    path: Option<&PathBuf>,
    synthetic: Option<(usize, usize)>,
) -> Result<Sandbox, Failure> {
    match (path, synthetic) {
        (Some(path), _) => Sandbox::load(path).map_err(Failure::invalid),
        (None, Some((staff, sources))) => Ok(Sandbox::synthetic(staff, sources)),
        (None, None) => Ok(Sandbox::default_seed()),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 2m, 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("`{other}` is not a unit (ms, s, m, h)")),
    };
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// `spoke selftest`.
#[derive(Debug, clap::Args)]
pub struct SelftestArgs {
    /// Profiles to test (default: the built-in fixture profiles).
    #[arg(long = "profile")]
    pub profiles: Vec<PathBuf>,
    /// Seed of the runs' data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Switch a rule's check off, to see the matrix catch its absence (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub disable_check: Vec<String>,
}

/// `spoke rules`.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

/// Formats of `spoke rules` and `spoke diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// A table.
    Text,
    /// The catalog as JSON.
    Json,
}

/// `spoke partner`.
#[derive(Debug, clap::Args)]
pub struct PartnerArgs {
    /// The profile to serve (default: the built-in reference profile).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The sandbox seed: staff and lead sources (default: the built-in sandbox).
    #[arg(long)]
    pub sandbox: Option<PathBuf>,
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The address to bind.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// Misbehaviours to switch on, comma-separated (see `spoke partner --list-faults`).
    #[arg(long, value_delimiter = ',')]
    pub fault: Vec<String>,
    /// List the faults and the rules that catch them, then exit.
    #[arg(long)]
    pub list_faults: bool,
    /// A generated sandbox instead: `STAFF,SOURCES` (e.g. 100000,10000), for scale runs.
    #[arg(long, value_name = "STAFF,SOURCES", value_parser = parse_synthetic, conflicts_with = "sandbox")]
    pub synthetic: Option<(usize, usize)>,
    /// OAuth profiles: how long an issued token lives, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub token_lifetime: u64,
    /// Profiles with [tls]: the folder to write the throwaway CA and the client certificate
    /// and key into (default: a new folder in the system's temporary folder).
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
}

/// `spoke connector`.
#[derive(Debug, clap::Args)]
pub struct ConnectorArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// The address to bind.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// The provider identifier issued to the partner; calls naming another are refused.
    #[arg(long = "provider", value_name = "ID", default_value = "SPOKE-PROVIDER")]
    pub provider: String,
    /// The client id accepted.
    #[arg(long = "client", value_name = "ID", default_value = "CLIENT-1")]
    pub client: String,
    /// The club id accepted.
    #[arg(long = "club", value_name = "ID", default_value = "CLUB-1")]
    pub club: String,
    /// InTouch's prospects and members to start from (default: a small built-in set).
    #[arg(long, value_name = "FILE")]
    pub sandbox: Option<PathBuf>,
    /// Keep InTouch in this file across restarts (written atomically after every save).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Print InTouch's state as JSON and exit.
    #[arg(long)]
    pub dump: bool,
    /// Write the SEND- verdicts when the server stops: json:PATH, junit:PATH or har:PATH.
    #[arg(long = "report", value_name = "FORMAT:PATH")]
    pub reports: Vec<crate::report::ReportTarget>,
    /// Stop after this many calls (e.g. 20-calls or 20).
    #[arg(long, value_name = "N-calls", value_parser = parse_calls)]
    pub until: Option<usize>,
    /// Stop after this long (e.g. 30s, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// The largest request body read, in bytes; larger ones get 413.
    #[arg(long, default_value_t = crate::inbound::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Show names, emails, phones, birth dates and addresses in the report's evidence; by
    /// default they are masked to their shape.
    #[arg(long)]
    pub show_personal_data: bool,
}

fn parse_calls(text: &str) -> Result<usize, String> {
    text.strip_suffix("-calls")
        .unwrap_or(text)
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}`: expected a number of calls, e.g. 20-calls"))
}

/// `spoke profile ...`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Validate a profile; print every problem with file, line and key.
    Check {
        /// The profile file.
        file: PathBuf,
    },
}

/// A command's failure, carrying the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: i32,
    /// The error to print.
    pub error: anyhow::Error,
}

impl Failure {
    fn invalid(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: exit_codes::INVALID_INPUT,
            error: error.into(),
        }
    }

    fn run(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: exit_codes::RUN_FAILED,
            error: error.into(),
        }
    }
}

/// Runs a parsed command line; returns the exit code. Everything the command writes goes
/// through one [`Output`], whose redactor learns the command's secrets as soon as they are
/// known; a failure's message has been through it too.
pub fn run(cli: Cli) -> Result<i32, Failure> {
    let output = Output::default();
    let out = &output;
    let result = match cli.command {
        Command::Certify(args) => run_certify(args, out),
        Command::Rules(args) => print_rules(args, out),
        Command::Simulate(args) => run_simulate(args, out),
        Command::Selftest(args) => run_selftest(args, out),
        Command::Partner(args) => run_partner(args, out),
        Command::Connector(args) => run_connector(args, out),
        Command::Profile(ProfileCommand::Check { file }) => check_profile(&file, out),
        Command::Diff(args) => run_diff(args, out),
        Command::Act(args) => run_act(args),
        Command::Bundle(BundleCommand::Verify { path }) => verify_bundle(&path, out),
        Command::Replay(args) => run_replay(args, out),
        Command::Serve(args) => crate::service::cli::run(args, out),
    };
    result.map_err(|failure| Failure {
        code: failure.code,
        error: anyhow::anyhow!(output.for_terminal(&format!("{:#}", failure.error))),
    })
}

fn run_act(args: ActArgs) -> Result<i32, Failure> {
    let faults = parse_faults(&args.faults)?;
    if let Some(fault) = crate::partner::Fault::ALL
        .iter()
        .find(|f| faults.has(**f) && f.send_step().is_none())
    {
        return Err(Failure::invalid(anyhow::anyhow!(
            "--fault: `{fault}` is not a sending fault (send-…)"
        )));
    }
    let request = crate::twoway::StepRequest::from_env(|name| std::env::var(name).ok())
        .map_err(|message| Failure::invalid(anyhow::anyhow!(message)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    runtime
        .block_on(crate::partner::sender::act(&request, &faults))
        .map_err(|message| Failure::run(anyhow::anyhow!(message)))?;
    Ok(exit_codes::CONFORMANT)
}

fn run_diff(args: DiffArgs, out: &Output) -> Result<i32, Failure> {
    let diff = crate::report::diff::diff_files(&args.old, &args.new).map_err(Failure::invalid)?;
    let text = match args.format {
        RulesFormat::Text => crate::report::diff::render_text(&diff),
        RulesFormat::Json => crate::report::diff::render_json(&diff) + "\n",
    };
    out.print(&text);
    Ok(if diff.regressed() {
        exit_codes::NOT_CONFORMANT
    } else {
        exit_codes::CONFORMANT
    })
}

/// Loads `--profile`, or the reference profile when none is given.
pub fn load_profile(path: Option<&PathBuf>) -> Result<Profile, Failure> {
    match path {
        Some(path) => Profile::load(path).map_err(Failure::invalid),
        None => Ok(Profile::reference()),
    }
}

fn check_profile(file: &std::path::Path, out: &Output) -> Result<i32, Failure> {
    match Profile::load(file) {
        Ok(profile) => {
            out.print(&format!(
                "{}: valid profile for {} ({} operations)\n",
                file.display(),
                profile.partner.name,
                profile.operations.len()
            ));
            Ok(exit_codes::CONFORMANT)
        }
        Err(error @ ProfileError::Invalid { .. }) => {
            let ProfileError::Invalid { problems } = &error else {
                unreachable!()
            };
            for problem in problems {
                out.print(&format!("{problem}\n"));
            }
            out.eprint(&format!(
                "{}: {} problem{}\n",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ));
            Ok(exit_codes::INVALID_INPUT)
        }
        Err(error) => Err(Failure::invalid(error)),
    }
}

fn parse_faults(names: &[String]) -> Result<Faults, Failure> {
    partner::faults::parse_list(&names.join(","))
        .map_err(|e| Failure::invalid(anyhow::anyhow!("--fault: {e}")))
}

fn run_partner(args: PartnerArgs, out: &Output) -> Result<i32, Failure> {
    if args.list_faults {
        for fault in Fault::ALL {
            let caught = match fault.caught_by() {
                [] => "caught as: error verdicts, exit 3".to_owned(),
                rules => format!("caught by: {}", rules.join(", ")),
            };
            out.print(&format!(
                "{:<29} {} [{caught}]\n",
                fault.name(),
                fault.behaviour()
            ));
        }
        return Ok(exit_codes::CONFORMANT);
    }
    let faults = parse_faults(&args.fault)?;
    let profile = load_profile(args.profile.as_ref())?;
    let sandbox = load_sandbox(args.sandbox.as_ref(), args.synthetic)?;
    let credentials = Credentials::resolve(&profile.auth, |name| std::env::var(name).ok())
        .map_err(|error| {
            Failure::invalid(anyhow::anyhow!(
                "{}: {error}; the mock partner accepts only requests carrying it",
                profile.file_name
            ))
        })?;
    out.redactor().learn_credentials(&credentials);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
            .await
            .map_err(|error| {
                Failure::run(anyhow::anyhow!(
                    "cannot listen on {}:{}: {error}",
                    args.host,
                    args.port
                ))
            })?;
        let addr = listener.local_addr().map_err(Failure::run)?;
        let summary = describe(&profile, &sandbox);
        // A profile with [tls]: https with a throwaway CA, whose client files are written out.
        let pki = match &profile.tls {
            Some(tls) => {
                let pki = crate::tls::MockPki::generate()
                    .map_err(|message| Failure::run(anyhow::anyhow!(message)))?;
                let dir = args.tls_dir.clone().unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("spoke-partner-tls-{}", std::process::id()))
                });
                let files = pki.write_to(&dir).map_err(|error| {
                    Failure::run(anyhow::anyhow!("cannot write into {}: {error}", dir.display()))
                })?;
                let server = pki
                    .server_tls(tls.mutual())
                    .map_err(|message| Failure::run(anyhow::anyhow!(message)))?;
                Some((tls.clone(), files, server))
            }
            None => None,
        };
        let scheme = if pki.is_some() { "https" } else { "http" };
        let exports = exports(&profile, pki.as_ref().map(|(tls, files, _)| (tls, files)));
        let state = PartnerState::with_options(
            profile,
            sandbox,
            credentials,
            partner::PartnerOptions {
                faults: faults.clone(),
                token_lifetime: Duration::from_secs(args.token_lifetime),
                ..partner::PartnerOptions::default()
            },
        );
        out.print(&format!("spoke partner listening on {scheme}://{addr}\n"));
        if !faults.names().is_empty() {
            out.print(&format!("faults on: {}\n", faults.names().join(", ")));
        }
        out.print(&format!("{summary}\n"));
        if let Some((path, lifetime)) = state.token_endpoint() {
            out.print(&format!(
                "  {:<16} {:<6} {path}  (OAuth client credentials; tokens live {} s; POST {}/oauth/revoke revokes them)\n",
                "token",
                "POST",
                lifetime.as_secs(),
                partner::ADMIN_PREFIX
            ));
        }
        if let Some((_, files, server)) = &pki {
            out.print(&format!(
                "tls: a server certificate for localhost and 127.0.0.1 from the throwaway CA {}{}\n",
                files.ca.display(),
                if server.mutual() {
                    "; every client must present a certificate it signed"
                } else {
                    ""
                }
            ));
        }
        for line in exports {
            out.print(&format!("{line}\n"));
        }
        out.print(&format!(
            "admin: GET {scheme}://{addr}{}/store, POST {scheme}://{addr}{}/reset; Ctrl-C stops\n",
            partner::ADMIN_PREFIX,
            partner::ADMIN_PREFIX
        ));
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match pki {
            Some((_, _, server)) => {
                let listener = crate::tls::TlsListener::new(listener, &server)
                    .map_err(Failure::run)?;
                axum::serve(listener, partner::router(state))
                    .with_graceful_shutdown(stop)
                    .await
                    .map_err(Failure::run)?;
            }
            None => axum::serve(listener, partner::router(state))
                .with_graceful_shutdown(stop)
                .await
                .map_err(Failure::run)?,
        }
        out.print("spoke partner stopped\n");
        Ok(exit_codes::CONFORMANT)
    })
}

fn run_connector(args: ConnectorArgs, out: &Output) -> Result<i32, Failure> {
    use crate::inbound::{self, store, ConnectorOptions, ConnectorState};
    let options = ConnectorOptions {
        tenant: store::Tenant {
            provider: args.provider.clone(),
            client: args.client.clone(),
            club: args.club.clone(),
        },
        state_file: args.state.clone(),
        body_limit: args.body_limit,
    };
    let seed = match &args.sandbox {
        Some(path) => store::Seed::load(path).map_err(Failure::invalid)?,
        None => store::Seed::builtin(),
    };
    let intouch = inbound::starting_intouch(&options, seed).map_err(Failure::invalid)?;
    if args.dump {
        let text = serde_json::to_string_pretty(&intouch).map_err(Failure::run)?;
        out.print(&format!("{text}\n"));
        return Ok(exit_codes::CONFORMANT);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let report = runtime.block_on(async {
        let (prospects, members) = intouch
            .users
            .iter()
            .fold((0, 0), |(p, m), user| match user.user_type {
                store::UserType::Prospect => (p + 1, m),
                store::UserType::Member => (p, m + 1),
            });
        let state = ConnectorState::new(intouch, options);
        let running = inbound::spawn(state.clone(), SocketAddr::new(args.host, args.port))
            .await
            .map_err(|error| {
                Failure::run(anyhow::anyhow!(
                    "cannot listen on {}:{}: {error}",
                    args.host,
                    args.port
                ))
            })?;
        out.print(&format!("spoke connector listening on {}\n", running.api_url()));
        out.print(&format!(
            "provider `{}`, client `{}`, club `{}`; InTouch holds {prospects} prospects and {members} members{}\n",
            args.provider,
            args.client,
            args.club,
            args.state
                .as_ref()
                .map(|p| format!(", kept in {}", p.display()))
                .unwrap_or_default()
        ));
        if !args.host.is_loopback() {
            out.print(
                "listening beyond loopback: calls from other machines must come through TLS (SEND-008)\n",
            );
        }
        let mut stops = vec!["Ctrl-C".to_owned()];
        if let Some(calls) = args.until {
            stops.push(format!("{calls} calls"));
        }
        if let Some(duration) = args.duration {
            stops.push(format!("{} s", duration.as_secs_f64()));
        }
        out.print(&format!(
            "admin: GET {}{}/intouch; stops after {}\n",
            running.base_url(),
            inbound::ADMIN_PREFIX,
            stops.join(" or ")
        ));
        let mut count = state.call_count();
        let enough_calls = async {
            match args.until {
                Some(limit) => {
                    let _ = count.wait_for(|seen| *seen >= limit).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let timer = async {
            match args.duration {
                Some(duration) => tokio::time::sleep(duration).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = enough_calls => {}
            _ = timer => {}
        }
        let base_url = running.api_url();
        running.stop().await.map_err(Failure::run)?;
        Ok::<_, Failure>(inbound::checks::report(
            &state,
            &base_url,
            started_at,
            args.show_personal_data,
        ))
    })?;
    out.print(&inbound::checks::render_summary(&report));
    for target in &args.reports {
        target.write(out, &report).map_err(|error| {
            Failure::run(anyhow::anyhow!(
                "cannot write {}: {error}",
                target.path().display()
            ))
        })?;
    }
    Ok(report.exit_code)
}

/// What a client of `spoke partner` must export to reach it: the OAuth client's variables (as
/// set for the partner) and the paths of the TLS files written for it.
fn exports(
    profile: &Profile,
    tls: Option<(&crate::profile::TlsSection, &crate::tls::PkiFiles)>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let auth = &profile.auth;
    if let (Some(id), Some(secret)) = (&auth.client_id_env, &auth.client_secret_env) {
        lines.push(format!(
            "  export {id} {secret}    # as set here: the token endpoint accepts only this client"
        ));
    }
    if let Some((section, files)) = tls {
        let mut assignments = Vec::new();
        if let (Some(cert), Some(key)) = (&section.client_cert_env, &section.client_key_env) {
            assignments.push(format!("{cert}={}", files.client_cert.display()));
            assignments.push(format!("{key}={}", files.client_key.display()));
        }
        match &section.ca_cert_env {
            Some(ca) => assignments.push(format!("{ca}={}", files.ca.display())),
            None => lines.push(format!(
                "  # the profile names no ca-cert-env: trust {} another way, or certify with --insecure",
                files.ca.display()
            )),
        }
        if !assignments.is_empty() {
            lines.push(format!("  export {}", assignments.join(" ")));
        }
    }
    if !lines.is_empty() {
        lines.insert(0, "to reach it from another shell:".to_owned());
    }
    lines
}

fn describe(profile: &Profile, sandbox: &Sandbox) -> String {
    let mut lines = vec![format!(
        "serving {} ({}) with {} staff and {} lead sources",
        profile.partner.name,
        profile.file_name,
        sandbox.staff.len(),
        sandbox.sources.len()
    )];
    for (kind, operation) in &profile.operations {
        let mut line = format!(
            "  {:<16} {:<6} {}",
            kind.key(),
            operation.method.as_str(),
            operation.path
        );
        if let Some(action) = &operation.soap_action {
            let format = profile.format_of(operation).key();
            line.push_str(&format!("  ({format} action {action})"));
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn print_rules(args: RulesArgs, out: &Output) -> Result<i32, Failure> {
    let catalog = Catalog::builtin();
    let mut text = String::new();
    match args.format {
        RulesFormat::Json => {
            text = serde_json::to_string_pretty(&catalog).map_err(Failure::run)?;
            text.push('\n');
        }
        RulesFormat::Text => {
            use std::fmt::Write;
            let _ = writeln!(text, "rule catalog {}", catalog.catalog_version);
            for rule in &catalog.rules {
                let applies: Vec<&str> = rule.applies.iter().map(|a| a.key()).collect();
                let _ = writeln!(
                    text,
                    "{:<10} {:<6} {}",
                    rule.id,
                    rule.level.as_str(),
                    rule.title
                );
                let _ = writeln!(text, "{:<17} applies to: {}", "", applies.join(", "));
                let _ = writeln!(text, "{:<17} {}", "", rule.clause);
            }
        }
    }
    out.print(&text);
    Ok(exit_codes::CONFORMANT)
}

/// A progress line on a terminal's stderr; nothing elsewhere.
struct TerminalProgress {
    active: bool,
    out: Output,
}

impl crate::connector::session::Progress for TerminalProgress {
    fn step(&self, message: &str) {
        if self.active {
            let shown: String = message.chars().take(100).collect();
            self.out.eprint(&format!("\r\x1b[2K[spoke] {shown}"));
        }
    }
}

impl TerminalProgress {
    fn finish(&self) {
        if self.active {
            self.out.eprint("\r\x1b[2K");
        }
    }
}

/// Whether a live progress display belongs on stderr: a terminal, and not in CI.
fn progress_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

fn colour_wanted() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var_os("CI").is_none()
}

fn run_certify(args: CertifyArgs, out: &Output) -> Result<i32, Failure> {
    let Target {
        profile,
        mock,
        faults,
        sandbox,
    } = args.target.resolve()?;
    if args.timeout_ms == 0 {
        return Err(Failure::invalid(anyhow::anyhow!(
            "--timeout-ms must be at least 1"
        )));
    }
    let waivers = args
        .waivers
        .as_ref()
        .map(|path| crate::report::waivers::Waivers::load(path, &Catalog::builtin()))
        .transpose()
        .map_err(Failure::invalid)?;
    if let Some(path) = &args.bundle {
        // Refused before the run, not after it.
        crate::bundle::check_target(path).map_err(Failure::invalid)?;
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    // Known before the run, so that nothing written during it can carry them; certify teaches
    // the same redactor whatever its client learns on the way.
    let credentials = if mock {
        Some(Credentials::generated(&profile.auth, seed))
    } else {
        Credentials::resolve(&profile.auth, |name| std::env::var(name).ok()).ok()
    };
    if let Some(credentials) = &credentials {
        out.redactor().learn_credentials(credentials);
    }
    let profile_text = profile.text.clone();
    let options = CertifyOptions {
        profile,
        profile_arg: args
            .target
            .profile
            .as_ref()
            .map(|p| p.display().to_string()),
        base_url: args.target.base_url.clone(),
        mock,
        sandbox,
        faults,
        seed,
        only: args.only.clone(),
        limits: ClientLimits {
            request_timeout: Duration::from_millis(args.timeout_ms),
            deadline: args.deadline_ms.map(Duration::from_millis),
            insecure: args.insecure,
            jitter_seed: seed,
            ..ClientLimits::default()
        },
        latency_budget: Duration::from_millis(args.latency_budget_ms),
        disabled_checks: Vec::new(),
        show_personal_data: args.show_personal_data,
        two_way: crate::twoway::TwoWayOptions {
            step_timeout: args.step_timeout,
            step_hook: args.step_hook.clone(),
            non_interactive: args.non_interactive,
            connector_port: args.connector_port,
        },
        redactor: out.redactor().clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    let progress = TerminalProgress {
        active: progress_wanted(),
        out: out.clone(),
    };
    let outcome = runtime.block_on(certify(options, &progress));
    progress.finish();
    let mut report = outcome.map_err(|error| match error {
        CertifyError::Invalid(message) => Failure::invalid(anyhow::anyhow!(message)),
        CertifyError::Run(message) => Failure::run(anyhow::anyhow!(message)),
    })?;
    if let Some(waivers) = &waivers {
        crate::report::waivers::apply(&mut report, waivers, chrono::Utc::now().date_naive());
    }
    out.print(&terminal::render(
        &report,
        Style {
            color: colour_wanted(),
        },
    ));
    for target in &args.reports {
        target.write(out, &report).map_err(|error| {
            Failure::run(anyhow::anyhow!(
                "cannot write {}: {error}",
                target.path().display()
            ))
        })?;
    }
    if let Some(path) = &args.bundle {
        let context = crate::bundle::RunContext {
            profile_text: profile_text.clone(),
            profile_digest: report.partner.profile_digest.clone(),
            latency_budget: Duration::from_millis(args.latency_budget_ms),
            request_timeout: Duration::from_millis(args.timeout_ms),
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        crate::bundle::write(out, path, &report, &context).map_err(Failure::run)?;
    }
    Ok(report.exit_code)
}

fn verify_bundle(path: &std::path::Path, out: &Output) -> Result<i32, Failure> {
    let bundle = crate::bundle::read(path).map_err(Failure::invalid)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    let verification = runtime.block_on(crate::bundle::verify(&bundle));
    out.print(&verification.render(&bundle));
    Ok(if verification.intact() {
        exit_codes::CONFORMANT
    } else {
        exit_codes::NOT_CONFORMANT
    })
}

fn run_replay(args: ReplayArgs, out: &Output) -> Result<i32, Failure> {
    let bundle = crate::bundle::read(&args.bundle).map_err(Failure::invalid)?;
    let recording = crate::bundle::recording(&bundle)
        .map_err(|why| Failure::invalid(anyhow::anyhow!("{}: {why}", args.bundle.display())))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    let outcome = runtime
        .block_on(crate::replay::replay(&recording, &args.only))
        .map_err(|why| Failure::invalid(anyhow::anyhow!(why)))?;
    out.print(&crate::replay::render(&recording, &outcome));
    Ok(if outcome.reproduced() {
        exit_codes::CONFORMANT
    } else {
        exit_codes::NOT_CONFORMANT
    })
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() % 1_000_000
}

fn run_selftest(args: SelftestArgs, out: &Output) -> Result<i32, Failure> {
    let profiles = if args.profiles.is_empty() {
        crate::selftest::fixture_profiles()
    } else {
        args.profiles
            .iter()
            .map(|path| Profile::load(path).map_err(Failure::invalid))
            .collect::<Result<Vec<_>, _>>()?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    let matrix = runtime
        .block_on(crate::selftest::run_matrix(
            &profiles,
            args.seed,
            &args.disable_check,
        ))
        .map_err(|error| Failure::run(anyhow::anyhow!("{error}")))?;
    out.print(&matrix.render());
    Ok(if matrix.passed() {
        exit_codes::CONFORMANT
    } else {
        exit_codes::NOT_CONFORMANT
    })
}

/// A progress bar on a terminal (counts only); a plain line every two seconds elsewhere.
struct LoadProgressDisplay {
    out: Output,
    bar: Option<indicatif::ProgressBar>,
    last_line: std::sync::Mutex<std::time::Instant>,
    total: std::sync::atomic::AtomicUsize,
}

impl crate::simulate::LoadProgress for LoadProgressDisplay {
    fn start(&self, total: usize) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn update(&self, done: usize, retried: usize, failed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!("{retried} retried, {failed} failed"));
            return;
        }
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        if last.elapsed() >= Duration::from_secs(2) {
            *last = std::time::Instant::now();
            self.out.eprint(&format!(
                "simulate: {done}/{} delivered or failed, {retried} retried, {failed} failed\n",
                self.total.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn run_simulate(args: SimulateArgs, out: &Output) -> Result<i32, Failure> {
    let Target {
        profile,
        mock,
        faults,
        sandbox,
    } = args.target.resolve()?;
    if args.concurrency == 0 || args.timeout_ms == 0 {
        return Err(Failure::invalid(anyhow::anyhow!(
            "--concurrency and --timeout-ms must be at least 1"
        )));
    }
    let report_path = match &args.report {
        None => None,
        Some(target) => Some(
            target
                .strip_prefix("json:")
                .filter(|path| !path.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Failure::invalid(anyhow::anyhow!("--report `{target}`: expected json:PATH"))
                })?,
        ),
    };
    let credentials = if mock {
        Some(Credentials::generated(&profile.auth, args.seed))
    } else {
        Credentials::resolve(&profile.auth, |name| std::env::var(name).ok()).ok()
    };
    if let Some(credentials) = &credentials {
        out.redactor().learn_credentials(credentials);
    }
    let options = crate::simulate::SimulateOptions {
        profile,
        base_url: args.target.base_url.clone(),
        mock,
        sandbox,
        faults,
        seed: args.seed,
        leads: args.leads,
        members: args.members,
        concurrency: args.concurrency,
        rate: args.rate,
        duration: args.duration,
        limits: ClientLimits {
            request_timeout: Duration::from_millis(args.timeout_ms),
            // A load run syncs staff lists of scale (100,000 staff are 4,000 pages of 25); the
            // record and byte caps still bound a list that never ends.
            max_pages: 10_000,
            ..ClientLimits::default()
        },
        retries: args.retries,
    };
    let on_terminal = progress_wanted();
    let progress = LoadProgressDisplay {
        out: out.clone(),
        bar: on_terminal.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {msg}")
            {
                bar.set_style(style);
            }
            bar
        }),
        last_line: std::sync::Mutex::new(std::time::Instant::now()),
        total: Default::default(),
    };
    // Against a partner of its own process, one thread: the client's work is light beside the
    // network's, and one thread saves handing each answer between workers (the partner has
    // the other cores). With the in-process mock, both sides need their threads.
    let runtime = if mock {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(Failure::run)?;
    let report = runtime
        .block_on(crate::simulate::simulate(options, &progress))
        .map_err(|message| Failure::run(anyhow::anyhow!(message)))?;
    out.print(&report.render());
    if let Some(path) = report_path {
        let json = serde_json::to_string_pretty(&report).map_err(Failure::run)?;
        out.write(&path, &json).map_err(|error| {
            Failure::run(anyhow::anyhow!("cannot write {}: {error}", path.display()))
        })?;
    }
    Ok(if report.clean() {
        exit_codes::CONFORMANT
    } else {
        exit_codes::NOT_CONFORMANT
    })
}

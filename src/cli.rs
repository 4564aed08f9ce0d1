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
    /// Per-request timeout (e.g. 10s, 500ms; default 10s).
    #[command(flatten)]
    pub timeout: TimeoutArgs,
    /// The latency budget of one call (ROB-002), e.g. 2s or 800ms.
    #[arg(long, value_parser = parse_duration, default_value = "2s", conflicts_with = "latency_budget_ms")]
    pub latency_budget: Duration,
    /// --latency-budget in milliseconds.
    #[arg(long, hide_short_help = true)]
    pub latency_budget_ms: Option<u64>,
    /// The whole run's deadline (e.g. 2m, 90s); requests after it are not sent.
    #[arg(long, value_parser = parse_duration, conflicts_with = "deadline_ms")]
    pub deadline: Option<Duration>,
    /// --deadline in milliseconds.
    #[arg(long, hide_short_help = true)]
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
#[command(args_conflicts_with_subcommands = true)]
pub struct SimulateArgs {
    /// `merge`, or none for a run.
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
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
    /// Per-request timeout (e.g. 10s, 500ms; default 10s).
    #[command(flatten)]
    pub timeout: TimeoutArgs,
    /// Write the figures as JSON: json:PATH.
    #[arg(long = "report", value_name = "json:PATH")]
    pub report: Option<String>,
    /// Deliver only the I-th (from 0) of N disjoint slices of the run's deliveries: the same
    /// leads and external ids as the whole run, each in exactly one shard; combine the shards'
    /// JSON reports with `spoke simulate merge`.
    #[arg(long, value_name = "I/N", value_parser = crate::simulate::Shard::parse)]
    pub shard: Option<crate::simulate::Shard>,
}

/// `spoke simulate`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Merge the JSON reports of every shard of one run (`--shard I/N`) into the run's report:
    /// totals, one latency histogram, one exactly-once audit. Exits 0 when the run delivered
    /// everything exactly once, 1 otherwise, 2 when the reports are not every shard of one run.
    Merge(MergeArgs),
}

/// `spoke simulate merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shards' JSON reports, one for each shard of the run.
    #[arg(required = true, value_name = "REPORT.json")]
    pub files: Vec<PathBuf>,
    /// Write the merged figures as JSON: json:PATH.
    #[arg(long = "report", value_name = "json:PATH")]
    pub report: Option<String>,
}

/// `--timeout D`, or `--timeout-ms MS` as before.
#[derive(Debug, clap::Args)]
pub struct TimeoutArgs {
    /// Per-request timeout (e.g. 10s, 500ms; default 10s).
    #[arg(long = "timeout", value_parser = parse_duration, conflicts_with = "timeout_ms")]
    pub timeout: Option<Duration>,
    /// --timeout in milliseconds.
    #[arg(long, hide_short_help = true)]
    pub timeout_ms: Option<u64>,
}

impl TimeoutArgs {
    /// The timeout given, 10 s by default; zero is refused.
    fn resolve(&self) -> Result<Duration, Failure> {
        let timeout = self
            .timeout
            .or(self.timeout_ms.map(Duration::from_millis))
            .unwrap_or(Duration::from_secs(10));
        if timeout.is_zero() {
            return Err(Failure::invalid(anyhow::anyhow!(
                "--timeout must be more than zero"
            )));
        }
        Ok(timeout)
    }
}

/// Which partner a run talks to: a profile's sandbox, or the built-in mock partner serving it.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The partner's profile (default: the built-in reference profile, served by the built-in
    /// mock partner, or the partner at --base-url).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The partner's API root (default: the profile's base-url); without --profile, the
    /// partner there is certified against the reference profile.
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

impl TargetArgs {
    /// What the run assumes when a base URL comes without a profile, to say before it starts.
    fn assumed_profile_note(&self) -> Option<String> {
        let url = self.base_url.as_ref().filter(|_| self.profile.is_none())?;
        Some(format!(
            "no --profile: certifying {url} against the built-in reference profile (its secret in {})\n",
            Profile::reference().auth.secret_variables().join(", ")
        ))
    }
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
        // A base URL names a partner to call: it is never swapped for the built-in mock.
        let mock = self.mock || (self.profile.is_none() && self.base_url.is_none());
        let faults = parse_faults(&self.fault)?;
        let shapes_mock = !faults.is_empty() || self.sandbox.is_some() || self.synthetic.is_some();
        if !mock && shapes_mock {
            let fix = if self.base_url.is_some() {
                "they do not apply to the partner at --base-url"
            } else {
                "add --mock"
            };
            return Err(Failure::invalid(anyhow::anyhow!(
                "--fault, --sandbox and --synthetic shape the mock partner: {fix}"
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
    /// Print the OpenAPI 3 document of the API served for the profile (JSON), then exit.
    #[arg(long)]
    pub openapi: bool,
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
    /// How long a client may take to send a request's headers before it is disconnected
    /// (e.g. 10s, 500ms).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body; past it the answer is 408 and
    /// the connection is closed.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub body_timeout: Duration,
    /// The most prospects and members held; a create past it is answered 507 (updates of
    /// held records still work).
    #[arg(long, value_name = "N")]
    pub max_records: Option<usize>,
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
    /// Keep InTouch in this SQLite file across restarts (each save answered once committed;
    /// a JSON state file of earlier versions is moved into it once, the JSON kept as FILE.bak).
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
    /// Print a commented profile to start from (`spoke profile init > acme.toml`).
    Init {
        /// `reference` (every key, commented), or a fixture profile by name (`hubspot`,
        /// `soap`, ...) or path (`fixtures/profiles/hubspot.toml`).
        #[arg(long, default_value = "reference")]
        from: String,
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
        Command::Profile(ProfileCommand::Init { from }) => init_profile(&from, out),
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

fn init_profile(from: &str, out: &Output) -> Result<i32, Failure> {
    let stem = |path: &str| {
        std::path::Path::new(path)
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let text = if from == "reference" {
        crate::profile::REFERENCE_PROFILE
    } else {
        crate::fixtures::FIXTURE_PROFILES
            .iter()
            .find(|(path, _)| *path == from || stem(path) == from)
            .map(|(_, text)| *text)
            .ok_or_else(|| {
                let names: Vec<String> = crate::fixtures::FIXTURE_PROFILES
                    .iter()
                    .map(|(path, _)| stem(path))
                    .collect();
                Failure::invalid(anyhow::anyhow!(
                    "--from: no profile `{from}`; there are reference and the fixture profiles {}",
                    names.join(", ")
                ))
            })?
    };
    out.print(text);
    Ok(exit_codes::CONFORMANT)
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
    // A load run may aim `spoke simulate` at this partner: its faults are admitted.
    faults
        .check_applies_to(&profile, true)
        .map_err(|why| Failure::invalid(anyhow::anyhow!("--fault: {why}")))?;
    let sandbox = load_sandbox(args.sandbox.as_ref(), args.synthetic)?;
    if args.openapi {
        let document = partner::openapi::document(&profile, &sandbox);
        let text = serde_json::to_string_pretty(&document).map_err(Failure::run)?;
        out.print(&format!("{text}\n"));
        return Ok(exit_codes::CONFORMANT);
    }
    // An unset secret is made up for this mock: said once, with the line that sets it, and
    // taught to the redactor only after, so nothing later repeats it.
    let generated = std::cell::RefCell::new(Vec::new());
    let credentials = Credentials::resolve(&profile.auth, |name| {
        std::env::var(name).ok().or_else(|| {
            let value = format!("spoke-{}", random_secret());
            generated.borrow_mut().push(format!("{name}={value}"));
            Some(value)
        })
    })
    .map_err(|error| Failure::invalid(anyhow::anyhow!("{}: {error}", profile.file_name)))?;
    let generated = generated.into_inner();
    if !generated.is_empty() {
        let names: Vec<&str> = generated
            .iter()
            .filter_map(|assignment| assignment.split_once('=').map(|(name, _)| name))
            .collect();
        out.print(&format!(
            "{} not set: serving with a freshly generated secret; certify from another shell with\n  export {}\n",
            names.join(", "),
            generated.join(" ")
        ));
    }
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
                header_timeout: args.header_timeout,
                body_timeout: args.body_timeout,
                max_records: args.max_records,
                ..partner::PartnerOptions::default()
            },
        );
        out.print(&format!(
            "spoke partner listening on {scheme}://{addr}{}\n",
            state.path_prefix()
        ));
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
            "admin: GET {scheme}://{addr}{}/store (a page: ?kind=prospects&limit=1000), POST {scheme}://{addr}{}/reset; Ctrl-C stops\n",
            partner::ADMIN_PREFIX,
            partner::ADMIN_PREFIX
        ));
        if let Some(cap) = args.max_records {
            out.print(&format!("holds at most {cap} prospects and members (507 past it)\n"));
        }
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let app = partner::router(state);
        match pki {
            Some((_, _, server)) => {
                let listener = crate::tls::TlsListener::new(listener, &server)
                    .map_err(Failure::run)?;
                partner::listen::serve(listener, app, args.header_timeout, stop).await
            }
            None => partner::listen::serve(listener, app, args.header_timeout, stop).await,
        }
        .map_err(Failure::run)?;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::run)?;
    if args.dump {
        // Read only: a JSON state file is shown as it is, not moved.
        let stored = match &options.state_file {
            Some(path) => runtime
                .block_on(inbound::state::read(path, &options.tenant))
                .map_err(Failure::invalid)?,
            None => None,
        };
        let intouch = stored.unwrap_or_else(|| seed.into_intouch(options.tenant.clone()));
        let text = serde_json::to_string_pretty(&intouch).map_err(Failure::run)?;
        out.print(&format!("{text}\n"));
        return Ok(exit_codes::CONFORMANT);
    }
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let report = runtime.block_on(async {
        let (state, migrated) = ConnectorState::open(options, seed)
            .await
            .map_err(Failure::invalid)?;
        let (prospects, members) = state
            .initial()
            .users
            .iter()
            .fold((0, 0), |(p, m), user| match user.user_type {
                store::UserType::Prospect => (p + 1, m),
                store::UserType::Member => (p, m + 1),
            });
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
        if let (Some(migrated), Some(path)) = (migrated, &args.state) {
            out.print(&format!("{}: {migrated}\n", path.display()));
        }
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
    let prefix = partner::base_path(&profile.partner.base_url);
    for (kind, operation) in &profile.operations {
        let mut line = format!(
            "  {:<16} {:<6} {prefix}{}",
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

/// A certify run's progress: a live line on a terminal's stderr; elsewhere (CI logs) a line
/// every few seconds while one step keeps waiting on the partner, naming it.
struct TerminalProgress {
    active: bool,
    out: Output,
    /// The step under way and when it started.
    current: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

/// How long a step waits before a log says so, and then how often.
const WAIT_NOTICE_EVERY: Duration = Duration::from_secs(5);

impl crate::connector::session::Progress for TerminalProgress {
    fn step(&self, message: &str) {
        if let Ok(mut current) = self.current.lock() {
            *current = Some((message.to_owned(), std::time::Instant::now()));
        }
        if self.active {
            let shown: String = message.chars().take(100).collect();
            self.out.eprint(&format!("\r\x1b[2K[spoke] {shown}"));
        }
    }
}

impl TerminalProgress {
    fn new(out: &Output) -> Self {
        TerminalProgress {
            active: progress_wanted(),
            out: out.clone(),
            current: Default::default(),
        }
    }

    /// Off a terminal: says every [`WAIT_NOTICE_EVERY`] which step is still waiting, until
    /// `done` hangs up (at once: the run's end does not wait for the next look).
    fn notice_waits(&self, done: &std::sync::mpsc::Receiver<()>) {
        if self.active {
            return;
        }
        let mut told: Option<(String, u64)> = None;
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            done.recv_timeout(Duration::from_millis(200))
        {
            let Some((step, since)) = self.current.lock().ok().and_then(|c| c.clone()) else {
                continue;
            };
            let waited = since.elapsed().as_secs();
            let due = waited / WAIT_NOTICE_EVERY.as_secs();
            let already = told
                .as_ref()
                .is_some_and(|(told_step, told_due)| *told_step == step && *told_due == due);
            if due > 0 && !already {
                self.out
                    .eprint(&format!("[spoke] still waiting after {waited} s: {step}\n"));
                told = Some((step, due));
            }
        }
    }

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
    if let Some(note) = args.target.assumed_profile_note() {
        out.eprint(&note);
    }
    let request_timeout = args.timeout.resolve()?;
    let latency_budget = args
        .latency_budget_ms
        .map_or(args.latency_budget, Duration::from_millis);
    let deadline = args
        .deadline
        .or(args.deadline_ms.map(Duration::from_millis));
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
    for target in &args.reports {
        target
            .check_writable()
            .map_err(|message| Failure::invalid(anyhow::anyhow!("--report {message}")))?;
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
            request_timeout,
            deadline,
            insecure: args.insecure,
            jitter_seed: seed,
            ..ClientLimits::default()
        },
        latency_budget,
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
    let progress = TerminalProgress::new(out);
    let (run_ended, done) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|scope| {
        let watcher = &progress;
        scope.spawn(move || watcher.notice_waits(&done));
        let outcome = runtime.block_on(certify(options, &progress));
        drop(run_ended);
        outcome
    });
    progress.finish();
    let mut report = outcome.map_err(|error| match error {
        CertifyError::Invalid(message) => Failure::invalid(anyhow::anyhow!(message)),
        CertifyError::Run(message) => Failure::run(anyhow::anyhow!(message)),
    })?;
    if let Some(waivers) = &waivers {
        crate::report::waivers::apply(&mut report, waivers, chrono::Utc::now().date_naive());
    }
    // The files first, so that the result line printed last is the exit code's own.
    let written = args
        .reports
        .iter()
        .try_for_each(|target| {
            target
                .write(out, &report)
                .map_err(|error| format!("cannot write {}: {error}", target.path().display()))
        })
        .and_then(|()| match &args.bundle {
            Some(path) => {
                let context = crate::bundle::RunContext {
                    profile_text: profile_text.clone(),
                    profile_digest: report.partner.profile_digest.clone(),
                    latency_budget,
                    request_timeout,
                    finished_at: chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                };
                crate::bundle::write(out, path, &report, &context).map_err(|e| e.to_string())
            }
            None => Ok(()),
        });
    let style = Style {
        color: colour_wanted(),
    };
    out.print(&terminal::render_ending(
        &report,
        style,
        written.as_ref().err().map(String::as_str),
    ));
    written.map_err(|message| Failure::run(anyhow::anyhow!(message)))?;
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

/// 64 random bits, from the standard library's random hash keys (each `RandomState` hashes
/// differently from the last) and the clock.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

/// 128 random bits in hex.
fn random_secret() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

fn random_seed() -> u64 {
    random_u64() % 1_000_000
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
    let progress = SelftestProgress {
        out: out.clone(),
        bar: terminal_bar("{bar:40} {pos}/{len} {msg}"),
        total: Default::default(),
    };
    let matrix = runtime
        .block_on(crate::selftest::run_matrix_reporting(
            &profiles,
            args.seed,
            &args.disable_check,
            &progress,
        ))
        .map_err(|error| Failure::run(anyhow::anyhow!("{error}")));
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    let matrix = matrix?;
    out.print(&matrix.render());
    Ok(if matrix.passed() {
        exit_codes::CONFORMANT
    } else {
        exit_codes::NOT_CONFORMANT
    })
}

/// The selftest's runs as they finish: a bar on a terminal, a line each elsewhere (stderr).
struct SelftestProgress {
    out: Output,
    bar: Option<indicatif::ProgressBar>,
    total: std::sync::atomic::AtomicUsize,
}

impl crate::selftest::MatrixProgress for SelftestProgress {
    fn start(&self, total: usize) {
        self.total
            .store(total, std::sync::atomic::Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn finished(&self, done: usize, row: &crate::selftest::MatrixRow) {
        let fault = row.fault.map_or("(none)", |fault| fault.name());
        let result = if row.ok { "ok" } else { "MISMATCH" };
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(format!("{} {fault} {result}", row.profile));
            }
            None => self.out.eprint(&format!(
                "selftest: [{done}/{}] {} {fault}: {result}\n",
                self.total.load(std::sync::atomic::Ordering::Relaxed),
                row.profile
            )),
        }
    }
}

/// A progress bar drawn with `template`, where live progress belongs (a terminal, not CI).
fn terminal_bar(template: &str) -> Option<indicatif::ProgressBar> {
    progress_wanted().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar
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

/// The path of a `--report json:PATH`.
fn json_report_path(report: Option<&String>) -> Result<Option<PathBuf>, Failure> {
    match report {
        None => Ok(None),
        Some(target) => target
            .strip_prefix("json:")
            .filter(|path| !path.is_empty())
            .map(|path| Some(PathBuf::from(path)))
            .ok_or_else(|| {
                Failure::invalid(anyhow::anyhow!("--report `{target}`: expected json:PATH"))
            }),
    }
}

/// Prints a simulate report, writes its JSON where asked, and gives its exit code.
fn finish_simulate(
    report: &crate::simulate::SimulateReport,
    json_path: Option<PathBuf>,
    out: &Output,
) -> Result<i32, Failure> {
    out.print(&report.render());
    if let Some(path) = json_path {
        let json = serde_json::to_string_pretty(report).map_err(Failure::run)?;
        out.write(&path, &json).map_err(|error| {
            Failure::run(anyhow::anyhow!("cannot write {}: {error}", path.display()))
        })?;
    }
    Ok(report.exactly_once.exit_code())
}

fn run_simulate_merge(args: MergeArgs, out: &Output) -> Result<i32, Failure> {
    let json_path = json_report_path(args.report.as_ref())?;
    let reports = args
        .files
        .iter()
        .map(|path| {
            crate::simulate::read_shard_report(path)
                .map(|report| (path.display().to_string(), report))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::invalid)?;
    let merged = crate::simulate::merge(reports).map_err(Failure::invalid)?;
    finish_simulate(&merged, json_path, out)
}

fn run_simulate(args: SimulateArgs, out: &Output) -> Result<i32, Failure> {
    if let Some(SimulateCommand::Merge(merge)) = args.command {
        return run_simulate_merge(merge, out);
    }
    let Target {
        profile,
        mock,
        faults,
        sandbox,
    } = args.target.resolve()?;
    if let Some(note) = args.target.assumed_profile_note() {
        out.eprint(&note);
    }
    faults
        .check_applies_to(&profile, true)
        .map_err(|why| Failure::invalid(anyhow::anyhow!("--fault: {why}")))?;
    let request_timeout = args.timeout.resolve()?;
    if args.concurrency == 0 {
        return Err(Failure::invalid(anyhow::anyhow!(
            "--concurrency must be at least 1"
        )));
    }
    let report_path = json_report_path(args.report.as_ref())?;
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
            request_timeout,
            // A load run syncs staff lists of scale (100,000 staff are 4,000 pages of 25); the
            // record and byte caps still bound a list that never ends.
            max_pages: 10_000,
            ..ClientLimits::default()
        },
        retries: args.retries,
        shard: args.shard,
    };
    let progress = LoadProgressDisplay {
        out: out.clone(),
        bar: terminal_bar("{bar:40} {pos}/{len} {per_sec} {msg}"),
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
    finish_simulate(&report, report_path, out)
}

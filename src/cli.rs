//! The command line: clap definitions and each command's wiring to the library; errors become
//! exit codes here.

use crate::auth::Credentials;
use crate::exit_codes;
use crate::partner::{self, PartnerState, Sandbox};
use crate::profile::{Profile, ProfileError};
use clap::{Parser, Subcommand};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

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
    /// Serve a profile's API shape as a mock partner, from an in-memory sandbox.
    Partner(PartnerArgs),
    /// Work with profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
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

/// Runs a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Partner(args) => run_partner(args),
        Command::Profile(ProfileCommand::Check { file }) => check_profile(&file),
    }
}

/// Loads `--profile`, or the reference profile when none is given.
pub fn load_profile(path: Option<&PathBuf>) -> Result<Profile, Failure> {
    match path {
        Some(path) => Profile::load(path).map_err(Failure::invalid),
        None => Ok(Profile::reference()),
    }
}

fn check_profile(file: &std::path::Path) -> Result<i32, Failure> {
    match Profile::load(file) {
        Ok(profile) => {
            println!(
                "{}: valid profile for {} ({} operations)",
                file.display(),
                profile.partner.name,
                profile.operations.len()
            );
            Ok(exit_codes::CONFORMANT)
        }
        Err(error @ ProfileError::Invalid { .. }) => {
            let ProfileError::Invalid { problems } = &error else {
                unreachable!()
            };
            for problem in problems {
                println!("{problem}");
            }
            eprintln!(
                "{}: {} problem{}",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            Ok(exit_codes::INVALID_INPUT)
        }
        Err(error) => Err(Failure::invalid(error)),
    }
}

fn run_partner(args: PartnerArgs) -> Result<i32, Failure> {
    let profile = load_profile(args.profile.as_ref())?;
    let sandbox = match &args.sandbox {
        Some(path) => Sandbox::load(path).map_err(Failure::invalid)?,
        None => Sandbox::default_seed(),
    };
    let credentials = Credentials::resolve(&profile.auth, |name| std::env::var(name).ok())
        .map_err(|error| {
            Failure::invalid(anyhow::anyhow!(
                "{}: {error}; the mock partner accepts only requests carrying it",
                profile.file_name
            ))
        })?;
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
        let state = PartnerState::new(profile, sandbox, credentials);
        println!("spoke partner listening on http://{addr}");
        println!("{summary}");
        println!(
            "admin: GET http://{addr}{}/store, POST http://{addr}{}/reset; Ctrl-C stops",
            partner::ADMIN_PREFIX,
            partner::ADMIN_PREFIX
        );
        axum::serve(listener, partner::router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(Failure::run)?;
        println!("spoke partner stopped");
        Ok(exit_codes::CONFORMANT)
    })
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
        lines.push(format!(
            "  {:<16} {:<6} {}",
            kind.key(),
            operation.method.as_str(),
            operation.path
        ));
    }
    lines.join("\n")
}

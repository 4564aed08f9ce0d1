//! One run of the service, from request to stored reports: a start request (page form or API)
//! is checked and queued; a worker later carries it out with the library's `certify`, applies the
//! partner's waivers, and stores every report as the renderers produce it (JSON, JUnit, HAR,
//! HTML, and the certification bundle as a zip).
//!
//! A sandbox's secrets are given with the run and kept in this instance's memory until the run
//! ends, or read from the server's environment where the operator allowed the variable
//! (`--secret-env`); the database records only the variables' names.

use super::auth::Viewer;
use super::error::ServiceError;
use super::storage::{state, NewRun, Reports, StoredWaiver};
use super::AppState;
use crate::certify::{certify_with_env, CertifyError, CertifyOptions};
use crate::connector::{ClientLimits, Redactor};
use crate::output::Output;
use crate::partner::{faults, Faults, Sandbox};
use crate::profile::{AuthSection, Profile};
use crate::report::waivers::Waivers;
use crate::report::{har, html, json, junit, RunReport};
use crate::suite::Catalog;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest a run may take before its deadline ends it.
pub const RUN_DEADLINE: Duration = Duration::from_secs(600);

/// The largest secret value accepted.
const MAX_SECRET: usize = 8 * 1024;

/// What to run against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The built-in mock partner serving the profile (with faults, if any).
    #[default]
    Mock,
    /// The partner's sandbox at `base_url` (or the profile's).
    Sandbox,
}

/// A request to start a run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The partner's slug.
    pub partner: String,
    /// The profile's id (default: the partner's latest).
    #[serde(default)]
    pub profile: Option<i64>,
    /// mock or sandbox.
    #[serde(default)]
    pub target: Target,
    /// Mock faults to switch on.
    #[serde(default)]
    pub faults: Vec<String>,
    /// The sandbox's API root (default: the profile's base-url).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The seed (default: random).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Only these rules.
    #[serde(default)]
    pub only: Vec<String>,
    /// The sandbox's secrets by the variable the profile names; kept in memory for this run
    /// only.
    #[serde(default)]
    pub secrets: RunSecrets,
}

/// Secrets given with a run: variable name → value. Its `Debug` shows names only.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct RunSecrets(pub BTreeMap<String, String>);

impl std::fmt::Debug for RunSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// The variables of a profile's `[auth]` that hold secrets.
pub fn secret_variables(auth: &AuthSection) -> Vec<String> {
    let mut names: Vec<String> = [
        &auth.token_env,
        &auth.key_env,
        &auth.username_env,
        &auth.password_env,
        &auth.client_id_env,
        &auth.client_secret_env,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .chain(auth.more_headers.values().cloned())
    .collect();
    names.sort();
    names.dedup();
    names
}

/// The faults the run form offers for a profile.
pub fn offered_faults(profile: &Profile) -> Vec<crate::partner::Fault> {
    crate::partner::Fault::ALL
        .iter()
        .copied()
        .filter(|f| f.applies_to(profile) && !f.simulate_only())
        .collect()
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    u64::from_le_bytes(bytes) % 1_000_000
}

/// The lookup of a run's variables: the secrets given, then the variables the operator
/// allowed from the server's environment.
fn lookup<'a>(
    secrets: &'a BTreeMap<String, String>,
    allowed_env: &'a [String],
) -> impl Fn(&str) -> Option<String> + Sync + 'a {
    move |name: &str| {
        secrets.get(name).cloned().or_else(|| {
            allowed_env
                .iter()
                .any(|allowed| allowed == name)
                .then(|| std::env::var(name).ok())
                .flatten()
        })
    }
}

/// Checks a start request and queues the run; returns its id.
pub async fn start(
    app: &AppState,
    viewer: &Viewer,
    request: RunRequest,
) -> Result<i64, ServiceError> {
    let storage = &app.storage;
    let partner = viewer.partner(storage, request.partner.trim()).await?;
    let stored = match request.profile {
        Some(id) => storage
            .profile(id)
            .await?
            .filter(|p| p.partner_id == partner.id)
            .ok_or_else(|| {
                ServiceError::Invalid(format!("profile: {} has no profile {id}", partner.slug))
            })?,
        None => storage
            .profiles(partner.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "profile: {} has no profile yet; upload one first",
                    partner.slug
                ))
            })?,
    };
    let profile = Profile::parse(&stored.name, &stored.text)
        .map_err(|error| ServiceError::Invalid(format!("profile {}: {error}", stored.id)))?;
    let catalog = Catalog::builtin();
    let mut only = Vec::new();
    for rule in request
        .only
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
    {
        let known = catalog
            .rules
            .iter()
            .find(|known| known.id.eq_ignore_ascii_case(rule))
            .ok_or_else(|| ServiceError::Invalid(format!("only: no rule `{rule}`")))?;
        only.push(known.id.clone());
    }
    let faults: Vec<String> = request
        .faults
        .iter()
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    let parsed_faults = faults::parse_list(&faults.join(","))
        .map_err(|error| ServiceError::Invalid(format!("faults: {error}")))?;
    let seed = match request.seed {
        Some(seed) if seed > i64::MAX as u64 => {
            return Err(ServiceError::Invalid(format!(
                "seed: {seed} is over {}",
                i64::MAX
            )))
        }
        Some(seed) => seed,
        None => random_seed(),
    };
    let variables = secret_variables(&profile.auth);
    let mut secrets = request.secrets.0;
    secrets.retain(|_, value| !value.is_empty());
    for (name, value) in &secrets {
        if !variables.contains(name) {
            return Err(ServiceError::Invalid(format!(
                "secrets: {} names no variable `{name}` (it names: {})",
                stored.name,
                if variables.is_empty() {
                    "none".to_owned()
                } else {
                    variables.join(", ")
                }
            )));
        }
        if value.len() > MAX_SECRET {
            return Err(ServiceError::TooLarge(format!(
                "secrets: `{name}` is over {MAX_SECRET} bytes"
            )));
        }
    }
    let (mock, base_url) = match request.target {
        Target::Mock => {
            if request
                .base_url
                .as_deref()
                .is_some_and(|u| !u.trim().is_empty())
            {
                return Err(ServiceError::Invalid(
                    "base_url: a mock run serves its own partner; choose the sandbox target".into(),
                ));
            }
            if !secrets.is_empty() {
                return Err(ServiceError::Invalid(
                    "secrets: a mock run makes up its own; give secrets to sandbox runs".into(),
                ));
            }
            (true, None)
        }
        Target::Sandbox => {
            if !parsed_faults.is_empty() {
                return Err(ServiceError::Invalid(
                    "faults: faults shape the mock partner; choose the mock target".into(),
                ));
            }
            if profile.sends.is_some() {
                return Err(ServiceError::Invalid(format!(
                    "{} declares [sends]: its two-way steps need the partner to act, which a hosted run cannot wait for; certify it with `spoke certify --step-hook`",
                    stored.name
                )));
            }
            let url = request
                .base_url
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .unwrap_or(&profile.partner.base_url)
                .to_owned();
            match reqwest::Url::parse(&url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => {
                    return Err(ServiceError::Invalid(format!(
                        "base_url: `{url}` is not an http(s) URL"
                    )))
                }
            }
            crate::auth::Credentials::resolve(
                &profile.auth,
                lookup(&secrets, &app.config.secret_env),
            )
            .map_err(|error| {
                ServiceError::Invalid(format!(
                    "secrets: {error}; give it with the run{}",
                    if app.config.secret_env.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (the server's environment offers only {})",
                            app.config.secret_env.join(", ")
                        )
                    }
                ))
            })?;
            (false, Some(url))
        }
    };
    let new = NewRun {
        partner_id: partner.id,
        profile_id: stored.id,
        mock,
        faults: parsed_faults.names().join(","),
        base_url,
        seed: seed as i64,
        only: only.join(","),
        secret_names: secrets.keys().cloned().collect::<Vec<_>>().join(","),
        held_by: (!secrets.is_empty()).then(|| app.instance.to_string()),
        created_by: viewer.account.id,
    };
    // The secrets are in place before any worker can take the run.
    let mut held = app.secrets.lock().await;
    let id = storage.enqueue(&new).await?;
    if !secrets.is_empty() {
        held.insert(id, RunSecrets(secrets));
    }
    drop(held);
    app.wake.notify_waiters();
    Ok(id)
}

/// The step a run is at, as the session reports it; written to the database by the worker.
#[derive(Debug, Default)]
pub struct StepCell(Mutex<Option<String>>);

impl StepCell {
    /// The step last reported, taken.
    pub fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut step| step.take())
    }
}

impl crate::connector::session::Progress for StepCell {
    fn step(&self, message: &str) {
        if let Ok(mut step) = self.0.lock() {
            *step = Some(message.chars().take(200).collect());
        }
    }
}

/// A partner's waivers as a [`Waivers`] checked by the waivers file's own rules.
pub fn waivers_of(slug: &str, stored: &[StoredWaiver]) -> Result<Waivers, ServiceError> {
    let mut text = String::new();
    for waiver in stored {
        let quoted = |value: &str| toml::Value::String(value.to_owned()).to_string();
        text.push_str(&format!(
            "[[waiver]]\nrule = {}\nreason = {}\nowner = {}\nexpires = {}\n\n",
            quoted(&waiver.rule),
            quoted(&waiver.reason),
            quoted(&waiver.owner),
            quoted(&waiver.expires)
        ));
    }
    Waivers::parse(&format!("waivers of {slug}"), &text, &Catalog::builtin()).map_err(|error| {
        match error {
            crate::report::waivers::WaiverError::Invalid { problems } => ServiceError::Invalid(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => ServiceError::Invalid(other.to_string()),
        }
    })
}

/// What a run came to.
enum Ending {
    /// It ran: its report and the redactor its output goes through.
    Report(Box<RunReport>, Output, String),
    /// It could not be carried out.
    Failed(String),
}

/// Carries out the run `id`, which this instance has claimed, and stores what came of it.
pub async fn execute(app: &AppState, id: i64) {
    let ending = match prepare_and_run(app, id).await {
        Ok(ending) => ending,
        Err(error) => Ending::Failed(error.message()),
    };
    app.secrets.lock().await.remove(&id);
    let storage = &app.storage;
    let result = match ending {
        Ending::Failed(message) => {
            storage
                .end_without_reports(id, state::FAILED, &message)
                .await
        }
        Ending::Report(report, output, profile_text) => {
            let reports = render(&report, &output, &profile_text);
            let totals = serde_json::to_string(&report.totals).unwrap_or_default();
            match reports {
                Ok(reports) => storage
                    .finish(id, i64::from(report.exit_code), &totals, &reports)
                    .await
                    .map(|_| ()),
                Err(message) => {
                    storage
                        .end_without_reports(id, state::FAILED, &message)
                        .await
                }
            }
        }
    };
    if let Err(error) = result {
        eprintln!("spoke serve: run {id}: cannot store its outcome: {error}");
    }
}

async fn prepare_and_run(app: &AppState, id: i64) -> Result<Ending, ServiceError> {
    let storage = &app.storage;
    let run = storage
        .run(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no run {id}")))?;
    let stored = storage
        .profile(run.profile_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no profile {}", run.profile_id)))?;
    let profile = Profile::parse(&stored.name, &stored.text)
        .map_err(|error| ServiceError::Invalid(error.to_string()))?;
    let waivers = waivers_of(&run.partner, &storage.waivers(run.partner_id).await?)?;
    let secrets = app
        .secrets
        .lock()
        .await
        .get(&id)
        .map(|s| s.0.clone())
        .unwrap_or_default();
    if !run.secret_names.is_empty() && secrets.is_empty() {
        return Ok(Ending::Failed(
            "the secrets given with this run are gone (the instance holding them restarted); start it again".into(),
        ));
    }
    let faults = faults::parse_list(&run.faults).map_err(ServiceError::Invalid)?;
    let redactor = Redactor::new();
    let allowed_env = app.config.secret_env.clone();
    let credentials = if run.mock {
        Some(crate::auth::Credentials::generated(
            &profile.auth,
            run.seed as u64,
        ))
    } else {
        crate::auth::Credentials::resolve(&profile.auth, lookup(&secrets, &allowed_env)).ok()
    };
    if let Some(credentials) = &credentials {
        redactor.learn_credentials(credentials);
    }
    for value in secrets.values() {
        redactor.learn(value);
    }
    let output = Output::new(redactor.clone());
    let builtin = stored.text == crate::profile::REFERENCE_PROFILE;
    let options = CertifyOptions {
        profile,
        profile_arg: (!builtin).then(|| stored.name.clone()),
        base_url: run.base_url.clone(),
        mock: run.mock,
        sandbox: Sandbox::default_seed(),
        faults: if run.mock { faults } else { Faults::none() },
        seed: run.seed as u64,
        only: if run.only.is_empty() {
            Vec::new()
        } else {
            run.only.split(',').map(str::to_owned).collect()
        },
        limits: ClientLimits {
            deadline: Some(RUN_DEADLINE),
            jitter_seed: run.seed as u64,
            ..ClientLimits::default()
        },
        latency_budget: Duration::from_secs(2),
        disabled_checks: Vec::new(),
        show_personal_data: false,
        two_way: crate::twoway::TwoWayOptions {
            non_interactive: true,
            ..Default::default()
        },
        redactor: redactor.clone(),
    };
    let step = Arc::new(StepCell::default());
    let progress = step.clone();
    // The session runs on a thread of its own with its own runtime (the mock partner too), so
    // a run neither slows the pages nor shares a scheduler with other runs.
    let mut session = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| CertifyError::Run(format!("cannot start a runtime: {error}")))?;
        let env = lookup(&secrets, &allowed_env);
        runtime.block_on(certify_with_env(options, progress.as_ref(), &env))
    });
    let outcome = loop {
        tokio::select! {
            outcome = &mut session => break outcome,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if let Some(text) = step.take() {
                    let _ = storage.set_step(id, &output.redact(&text).into_string()).await;
                }
            }
        }
    };
    Ok(match outcome {
        Ok(Ok(mut report)) => {
            if !waivers.waivers.is_empty() {
                crate::report::waivers::apply(
                    &mut report,
                    &waivers,
                    chrono::Utc::now().date_naive(),
                );
            }
            Ending::Report(Box::new(report), output, stored.text)
        }
        Ok(Err(CertifyError::Invalid(message) | CertifyError::Run(message))) => {
            Ending::Failed(output.redact(&message).into_string())
        }
        Err(_) => Ending::Failed("the run stopped on an internal error".into()),
    })
}

/// Every report of a run, through the run's redactor, and its bundle as a zip.
fn render(report: &RunReport, output: &Output, profile_text: &str) -> Result<Reports, String> {
    let mut files: Vec<(&'static str, Vec<u8>)> = [
        ("json", json::render(report)),
        ("junit", junit::render(report)),
        ("har", har::render(report)),
        ("html", html::render(report)),
    ]
    .into_iter()
    .map(|(format, text)| (format, output.redact(&text).into_string().into_bytes()))
    .collect();
    let context = crate::bundle::RunContext {
        profile_text: profile_text.to_owned(),
        profile_digest: report.partner.profile_digest.clone(),
        latency_budget: Duration::from_secs(2),
        request_timeout: ClientLimits::default().request_timeout,
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let dir = std::env::temp_dir().join(format!(
        "spoke-serve-bundle-{}-{}",
        std::process::id(),
        super::auth::random_token()
    ));
    std::fs::create_dir_all(&dir).map_err(|error| format!("cannot write the bundle: {error}"))?;
    let path = dir.join("bundle.zip");
    let written = crate::bundle::write(output, &path, report, &context)
        .map_err(|error| format!("cannot write the bundle: {error}"))
        .and_then(|()| {
            std::fs::read(&path).map_err(|error| format!("cannot read the bundle: {error}"))
        });
    let _ = std::fs::remove_dir_all(&dir);
    files.push(("bundle", written?));
    Ok(Reports { files })
}

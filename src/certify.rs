//! `certify`: one run end to end — start the mock partner if asked, run a Connector session,
//! judge every rule, and build the report.

use crate::auth::Credentials;
use crate::connector::session::{run_session, Progress};
use crate::connector::{ClientLimits, PartnerClient, Redactor};
use crate::intouch::Scenario;
use crate::partner::{self, Faults, PartnerOptions, Sandbox};
use crate::profile::Profile;
use crate::report::curl::curl_command;
use crate::report::mask::Masker;
use crate::report::model::{self, PartnerInfo, RunReport, Totals};
use crate::suite::{self, Catalog, Deadline};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to certify and how.
#[derive(Debug, Clone)]
pub struct CertifyOptions {
    /// The profile.
    pub profile: Profile,
    /// How to call it on the command line (for the reproduce command); `None` for the built-in.
    pub profile_arg: Option<String>,
    /// The partner's base URL; the profile's when `None`.
    pub base_url: Option<String>,
    /// Certify the in-process mock partner instead of a real sandbox.
    pub mock: bool,
    /// The mock's sandbox.
    pub sandbox: Sandbox,
    /// The mock's faults.
    pub faults: Faults,
    /// The seed of the run's data.
    pub seed: u64,
    /// Only these rules (all when empty).
    pub only: Vec<String>,
    /// Client limits (timeouts, caps).
    pub limits: ClientLimits,
    /// ROB-002's budget for one call.
    pub latency_budget: Duration,
    /// Rules whose check is switched off (selftest's proof that each check is needed).
    pub disabled_checks: Vec<String>,
    /// Keep names, emails, phones, birth dates and addresses readable in the evidence.
    pub show_personal_data: bool,
    /// How a two-way profile's sending steps run (profiles with `[sends]` only).
    pub two_way: crate::twoway::TwoWayOptions,
    /// The run's redactor, shared with whatever writes the run's output: the client teaches it
    /// the run's credentials and anything it learns on the way (tokens obtained at run time).
    pub redactor: Redactor,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    /// The input is invalid (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The run could not be carried out (exit 3).
    #[error("{0}")]
    Run(String),
}

/// Runs one certification and returns its report; a sandbox's secrets come from the process
/// environment.
pub async fn certify(
    options: CertifyOptions,
    progress: &dyn Progress,
) -> Result<RunReport, CertifyError> {
    certify_with_env(options, progress, &|name| std::env::var(name).ok()).await
}

/// [`certify`] with the profile's variables (secrets, TLS files) looked up in `env` instead of
/// the process environment: a service gives each run its own secrets.
pub async fn certify_with_env(
    options: CertifyOptions,
    progress: &dyn Progress,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<RunReport, CertifyError> {
    let catalog = Catalog::builtin();
    for id in &options.only {
        if catalog.rule(id).is_none() {
            let known: Vec<&str> = catalog.rules.iter().map(|r| r.id.as_str()).collect();
            return Err(CertifyError::Invalid(format!(
                "--only: no rule `{id}`; rules: {}",
                known.join(", ")
            )));
        }
        if options.profile.sends.is_none()
            && catalog
                .rule(id)
                .is_some_and(|rule| rule.applies.contains(&crate::suite::Applies::Sends))
        {
            return Err(CertifyError::Invalid(format!(
                "--only: `{id}` judges the calls a partner sends, and {} declares no [sends] section; add one for a two-way run, or use `spoke connector`",
                options.profile.file_name
            )));
        }
    }
    if options.mock {
        options
            .faults
            .check_applies_to(&options.profile, false)
            .map_err(|why| CertifyError::Invalid(format!("--fault: {why}")))?;
    }
    let two_way_actor = match (&options.profile.sends, &options.two_way.step_hook) {
        (None, Some(_)) => {
            return Err(CertifyError::Invalid(format!(
                "--step-hook: {} declares no [sends] section, so there is no step to run",
                options.profile.file_name
            )))
        }
        (None, None) => None,
        (Some(_), Some(hook)) => Some(crate::twoway::Actor::Hook(hook.clone())),
        (Some(_), None) if options.mock => {
            Some(crate::twoway::Actor::Mock(options.faults.clone()))
        }
        (Some(_), None) if options.two_way.non_interactive => {
            return Err(CertifyError::Invalid(format!(
                "--non-interactive: {} declares [sends], so each step needs the partner to act: give --step-hook CMD",
                options.profile.file_name
            )))
        }
        (Some(_), None) => Some(crate::twoway::Actor::Interactive),
    };
    // Only sending rules asked for: the two-way phase still needs the deliveries it builds on.
    let sending_in_scope = options.only.is_empty()
        || options.only.iter().any(|id| {
            catalog
                .rule(id)
                .is_some_and(|rule| rule.applies.contains(&crate::suite::Applies::Sends))
        });
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // The deadline bounds the whole run: requests after it are not sent; past it, what the
    // run has is judged and masked for a moment more, then rules end in `error` and bodies
    // are withheld.
    let deadline = options
        .limits
        .deadline
        .map(|after| Deadline { started, after });
    let (credentials, running, tls) = if options.mock {
        let partner_options = PartnerOptions {
            faults: options.faults.clone(),
            slow_delay: options.limits.request_timeout + Duration::from_secs(1),
            sluggish_delay: (options.latency_budget + Duration::from_millis(100))
                .min(options.limits.request_timeout / 2),
            seed: options.seed,
            ..PartnerOptions::default()
        };
        let (running, credentials) = partner::spawn_local(
            options.profile.clone(),
            options.sandbox.clone(),
            options.seed,
            partner_options,
        )
        .await
        .map_err(|error| CertifyError::Run(format!("cannot start the mock partner: {error}")))?;
        let tls = running.client_tls();
        (credentials, Some(running), tls)
    } else {
        let credentials = Credentials::resolve(&options.profile.auth, env).map_err(|error| {
            CertifyError::Invalid(format!("{}: {error}", options.profile.file_name))
        })?;
        let tls =
            crate::tls::ClientTls::resolve(options.profile.tls.as_ref(), env).map_err(|error| {
                CertifyError::Invalid(format!("{}: {error}", options.profile.file_name))
            })?;
        (credentials, None, tls)
    };
    let base_url = match (&running, &options.base_url) {
        (Some(running), _) => running.base_url(),
        (None, Some(url)) => url.clone(),
        (None, None) => options.profile.partner.base_url.clone(),
    };
    let profile = Arc::new(options.profile.clone());
    let limits = ClientLimits {
        jitter_seed: options.seed,
        ..options.limits.clone()
    };
    let client = PartnerClient::with_tls(profile.clone(), &base_url, credentials, limits, &tls)
        .map_err(CertifyError::Invalid)?
        .counting_from(started)
        .with_redactor(options.redactor.clone());
    // OAuth: the client id and secret are checked before the run, so a refusal is told as
    // what it is rather than as every rule's error.
    if let Err(error) = client.authenticate().await {
        if let Some(running) = running {
            let _ = running.stop().await;
        }
        let message = format!("{}: auth: {error}", options.profile.file_name);
        return Err(if error.is_refusal() {
            CertifyError::Invalid(message)
        } else {
            CertifyError::Run(message)
        });
    }
    let scenario = Scenario::core();
    let observations = run_session(&client, options.seed, &scenario, progress).await;
    if let Some(running) = running {
        let _ = running.stop().await;
    }
    let mut exchanges = client.recorder().snapshot();
    let refused = refused_credentials(&exchanges, &profile.auth);
    let two_way = match (&options.profile.sends, two_way_actor) {
        // A partner that answered nothing, or only refusals, cannot have been delivered
        // anything to act on.
        (Some(sends), Some(actor))
            if sending_in_scope
                && refused.is_none()
                && exchanges.iter().any(|e| e.status.is_some()) =>
        {
            progress.step("two-way steps: waiting for the partner's calls");
            let quiet = matches!(actor, crate::twoway::Actor::Mock(_));
            let output = crate::output::Output::new(client.redactor().clone());
            let announce = move |text: &str| {
                // A blank line first: a progress line may still stand on stderr.
                if !quiet {
                    output.eprint(&format!("\n{text}\n"));
                }
            };
            let mut two_way_options = options.two_way.clone();
            if let Some(deadline) = deadline {
                two_way_options.step_timeout =
                    two_way_options.step_timeout.min(deadline.remaining());
            }
            let run = crate::twoway::TwoWayRun {
                sends,
                options: &two_way_options,
                actor,
                seed: options.seed,
                only: &options.only,
                disabled_checks: &options.disabled_checks,
                exchanges_before: exchanges.iter().map(|e| e.id).max().unwrap_or(0),
                run_started: started,
                announce: &announce,
            };
            let phase = crate::twoway::run(run, &observations);
            let finished = match deadline {
                _ if deadline.is_some_and(|deadline| deadline.passed()) => None,
                Some(deadline) => tokio::time::timeout_at(deadline.at().into(), phase)
                    .await
                    .ok(),
                None => Some(phase.await),
            };
            match finished {
                Some(outcome) => Some(TwoWay::Ran(outcome.map_err(CertifyError::Run)?)),
                None => Some(TwoWay::Cut),
            }
        }
        _ => None,
    };
    progress.step("judging the rules");
    let settings = suite::Settings {
        latency_budget: options.latency_budget,
        disabled_checks: options.disabled_checks.clone(),
    };
    let verdicts = suite::judge_until(
        &catalog,
        &profile,
        &observations,
        &exchanges,
        &settings,
        &options.only,
        deadline,
    );
    let unreachable =
        (!exchanges.is_empty() && exchanges.iter().all(|e| e.status.is_none())).then(|| {
            format!(
                "no request got an answer; the first: {}",
                exchanges[0].error.clone().unwrap_or_default()
            )
        });
    let mut verdicts = verdicts;
    if let Some(refused) = &refused {
        // Answers that were only refusals show nothing of the partner past its login.
        for verdict in verdicts
            .iter_mut()
            .filter(|v| v.outcome != crate::suite::Outcome::Skip)
        {
            verdict.outcome = crate::suite::Outcome::Error;
            verdict.reason = format!("Not checked: {refused}.");
        }
    }
    // Reasons quote the partner's answers: one echoing a credential (an OAuth token too,
    // learnt when it arrived) must not carry it into the report.
    for verdict in &mut verdicts {
        verdict.reason = client.redactor().text(&verdict.reason);
    }
    let mut personal_values = Vec::new();
    if let (Some(TwoWay::Cut), Some(deadline)) = (&two_way, deadline) {
        let reason = deadline.reason("the sending steps did not finish");
        verdicts.extend(
            catalog
                .rules
                .iter()
                .filter(|rule| rule.applies.contains(&crate::suite::Applies::Sends))
                .filter(|rule| {
                    options.only.is_empty()
                        || options
                            .only
                            .iter()
                            .any(|id| id.eq_ignore_ascii_case(&rule.id))
                })
                .map(|rule| {
                    crate::suite::Verdict::from_finding(
                        rule,
                        crate::suite::Finding::Error {
                            reason: reason.clone(),
                            evidence: Vec::new(),
                        },
                    )
                }),
        );
    }
    if let Some(TwoWay::Ran(two_way)) = two_way {
        verdicts.extend(two_way.verdicts);
        for call in &two_way.calls {
            personal_values.extend(
                crate::inbound::checks::PERSONAL_FIELDS
                    .iter()
                    .filter_map(|name| call.fields.get(*name).cloned()),
            );
        }
        exchanges.extend(two_way.calls.into_iter().map(|call| call.exchange));
    }
    // What the sandbox lacks is only known when its lists could be read.
    let lists_read = observations
        .staff
        .iter()
        .map(|s| &s.list)
        .chain(observations.sources.iter().filter_map(|s| s.list.as_ref()))
        .all(|list| list.failure.is_none());
    let missing_in_sandbox = if lists_read {
        observations.world.missing.clone()
    } else {
        Vec::new()
    };
    let reproduce = |rule: &str| reproduce_command(&options, rule);
    // A partner's message or a hook's error output quoted in a reason may echo a credential.
    verdicts
        .iter_mut()
        .for_each(|v| v.reason = client.redactor().text(&v.reason));
    // Personal data is masked after judging: the verdicts are drawn from the real values.
    if !options.show_personal_data {
        let masker = Masker::for_run_and(&observations, personal_values);
        for exchange in &mut exchanges {
            if let Some(deadline) =
                deadline.filter(|deadline| deadline.passed_by(Deadline::MASKING_GRACE))
            {
                // No time left to mask the bodies: they are not shown rather than shown unmasked.
                let note = format!("[{}]", deadline.reason("withheld, not masked in time"));
                for body in [&mut exchange.request_body, &mut exchange.response_body] {
                    if body.is_some() {
                        *body = Some(note.clone());
                    }
                }
            }
            masker.exchange(exchange);
        }
        verdicts.iter_mut().for_each(|v| masker.verdict(v));
    }
    let curl_of = |id: usize| exchanges.iter().find(|e| e.id == id).map(curl_command);
    let entries = model::entries(&catalog, &verdicts, curl_of, reproduce);
    Ok(RunReport {
        format_version: model::REPORT_FORMAT_VERSION,
        tool: concat!("spoke ", env!("CARGO_PKG_VERSION")).to_owned(),
        catalog_version: catalog.catalog_version.clone(),
        catalog_digest: crate::digest::sha256(crate::suite::catalog::RULES_TOML.as_bytes()),
        partner: PartnerInfo {
            name: profile.partner.name.clone(),
            profile: profile.file_name.clone(),
            profile_digest: crate::digest::sha256(profile.text.as_bytes()),
            base_url: client.redactor().text(&base_url),
            mock: options.mock,
            faults: options.faults.names(),
            insecure: options.limits.insecure,
        },
        seed: options.seed,
        scenario: scenario.name.clone(),
        only: options.only.clone(),
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        coverage: model::coverage(&observations),
        missing_in_sandbox,
        totals: Totals::of(&verdicts),
        exit_code: if unreachable.is_some() || refused.is_some() {
            crate::exit_codes::RUN_FAILED
        } else {
            model::exit_code(&verdicts)
        },
        unreachable,
        credentials_refused: refused,
        verdicts: entries,
        exchanges,
        waivers: Vec::new(),
    })
}

/// Set when the partner answered, but never other than 401 or 403: it refused the run's
/// credentials, a setup error rather than a verdict on the partner.
fn refused_credentials(
    exchanges: &[crate::connector::Exchange],
    auth: &crate::profile::AuthSection,
) -> Option<String> {
    let mut answers = exchanges.iter().filter_map(|e| e.status).peekable();
    answers.peek()?;
    if !answers.all(|status| status == 401 || status == 403) {
        return None;
    }
    let variables = auth.secret_variables();
    Some(if variables.is_empty() {
        "the partner refused every call with 401 or 403, and the profile's [auth] sends no credentials".to_owned()
    } else {
        format!(
            "the partner refused the credentials in {}: every call was answered 401 or 403",
            variables.join(", ")
        )
    })
}

/// How the two-way phase went.
enum TwoWay {
    /// It ran to its end.
    Ran(crate::twoway::TwoWayOutcome),
    /// The run's deadline passed before it ended.
    Cut,
}

/// The command that replays `rule` with the same data.
fn reproduce_command(options: &CertifyOptions, rule: &str) -> String {
    let mut parts = vec!["spoke certify".to_owned()];
    if let Some(profile) = &options.profile_arg {
        parts.push(format!("--profile {profile}"));
    }
    if options.mock {
        if options.profile_arg.is_some() {
            parts.push("--mock".into());
        }
        if !options.faults.names().is_empty() {
            parts.push(format!("--fault {}", options.faults.names().join(",")));
        }
    } else if let Some(url) = &options.base_url {
        parts.push(format!("--base-url {url}"));
    }
    parts.push(format!("--seed {}", options.seed));
    parts.push(format!("--only {rule}"));
    parts.join(" ")
}

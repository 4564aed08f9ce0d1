//! Two-way runs: after the one-way deliveries, `certify` starts the mock Connector API, asks the
//! partner to act in its own system (convert, inactivate, create, send a lead source), waits for
//! each resulting call, and judges what arrived with the `SEND-` rules.

use crate::connector::session::Observations;
use crate::inbound::checks::{check_for, SendContext};
use crate::inbound::store::{Seed, SeedUser, Tenant};
use crate::inbound::{self, Call, CallKind, ConnectorOptions, ConnectorState};
use crate::model::{Field, RecordKind};
use crate::partner::Faults;
use crate::profile::{SendStep, SendsSection};
use crate::suite::checks::in_sentences;
use crate::suite::{Applies, Catalog, Finding, Verdict};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How the sending steps of a two-way run are carried out.
#[derive(Debug, Clone)]
pub struct TwoWayOptions {
    /// How long a step waits for the partner's call.
    pub step_timeout: Duration,
    /// A command run for each step (the partner's actions in CI), described by `SPOKE_*`
    /// environment variables.
    pub step_hook: Option<String>,
    /// Never wait for a person: steps come from the hook (or the mock partner).
    pub non_interactive: bool,
    /// The mock Connector API's port (0: any free port).
    pub connector_port: u16,
}

impl Default for TwoWayOptions {
    fn default() -> Self {
        TwoWayOptions {
            step_timeout: Duration::from_secs(120),
            step_hook: None,
            non_interactive: false,
            connector_port: 0,
        }
    }
}

/// Who carries out the steps.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The in-process mock partner, with its faults.
    Mock(Faults),
    /// A command run for each step.
    Hook(String),
    /// A person, told what to do on stderr.
    Interactive,
}

/// One step as the partner is asked to carry it out; also the hook's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRequest {
    /// The step.
    pub step: SendStep,
    /// The Connector API's base URL (`…/connector/api/2011-11`).
    pub connector_url: String,
    /// The provider identifier the Connector accepts.
    pub provider_id: String,
    /// The client id it accepts.
    pub client_id: String,
    /// The club id it accepts.
    pub club_id: String,
    /// convert and inactivate: the partner's id of the record; create-user and lead-source: a
    /// suggested id for the partner's own new record.
    pub record_id: String,
    /// The user type the record has in the partner's system when it acts (PROSPECT or MEMBER).
    pub user_type: String,
    /// The person's first name.
    pub first_name: String,
    /// The person's last name.
    pub last_name: String,
    /// The person's email.
    pub email: String,
    /// The person's mobile phone.
    pub mobile: String,
    /// lead-source: the name of the source to create (empty otherwise).
    pub lead_source: String,
}

/// The environment variables a step hook gets, in the order the README lists them.
pub const STEP_VARIABLES: [&str; 12] = [
    "SPOKE_STEP",
    "SPOKE_CONNECTOR_URL",
    "SPOKE_PROVIDER_ID",
    "SPOKE_CLIENT_ID",
    "SPOKE_CLUB_ID",
    "SPOKE_RECORD_ID",
    "SPOKE_USER_TYPE",
    "SPOKE_FIRST_NAME",
    "SPOKE_LAST_NAME",
    "SPOKE_EMAIL",
    "SPOKE_MOBILE",
    "SPOKE_LEAD_SOURCE",
];

impl StepRequest {
    /// The step as environment variables (see [`STEP_VARIABLES`]).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let values = [
            self.step.key().to_owned(),
            self.connector_url.clone(),
            self.provider_id.clone(),
            self.client_id.clone(),
            self.club_id.clone(),
            self.record_id.clone(),
            self.user_type.clone(),
            self.first_name.clone(),
            self.last_name.clone(),
            self.email.clone(),
            self.mobile.clone(),
            self.lead_source.clone(),
        ];
        STEP_VARIABLES.into_iter().zip(values).collect()
    }

    /// Reads a step back from environment variables (`spoke act`); names what is missing.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<StepRequest, String> {
        let get = |name: &str| lookup(name).unwrap_or_default();
        let step_name = get("SPOKE_STEP");
        let step = SendStep::from_key(&step_name).ok_or_else(|| {
            let known: Vec<&str> = SendStep::ALL.iter().map(|s| s.key()).collect();
            format!(
                "SPOKE_STEP is `{step_name}`, not one of: {} (spoke act runs as a certify --step-hook)",
                known.join(", ")
            )
        })?;
        for name in ["SPOKE_CONNECTOR_URL", "SPOKE_RECORD_ID"] {
            if get(name).is_empty() {
                return Err(format!("{name} is not set"));
            }
        }
        Ok(StepRequest {
            step,
            connector_url: get("SPOKE_CONNECTOR_URL"),
            provider_id: get("SPOKE_PROVIDER_ID"),
            client_id: get("SPOKE_CLIENT_ID"),
            club_id: get("SPOKE_CLUB_ID"),
            record_id: get("SPOKE_RECORD_ID"),
            user_type: get("SPOKE_USER_TYPE"),
            first_name: get("SPOKE_FIRST_NAME"),
            last_name: get("SPOKE_LAST_NAME"),
            email: get("SPOKE_EMAIL"),
            mobile: get("SPOKE_MOBILE"),
            lead_source: get("SPOKE_LEAD_SOURCE"),
        })
    }

    /// What the partner is asked to do, for a person at the partner's system.
    pub fn instruction(&self) -> String {
        let person = format!("{} {}", self.first_name, self.last_name);
        let action = match self.step {
            SendStep::Convert => format!(
                "convert lead {} ({person}) into a member in your system now",
                self.record_id
            ),
            SendStep::Inactivate => format!(
                "make {} {} ({person}) inactive in your system now",
                self.user_type.to_ascii_lowercase(),
                self.record_id
            ),
            SendStep::CreateUser => format!(
                "create a new prospect of your own in your system now ({person}, {}), then change its mobile phone",
                self.email
            ),
            SendStep::LeadSource => format!(
                "create lead source `{}` in your system now, then a new prospect ({person}) that came from it",
                self.lead_source
            ),
        };
        format!(
            "step {}: {action}.\n  Your system sends it to the Connector API at {} (provider {}, client {}, club {}).",
            self.step.key(),
            self.connector_url,
            self.provider_id,
            self.client_id,
            self.club_id
        )
    }
}

/// What a two-way phase produced: verdicts for the `SEND-` rules and the calls they cite.
#[derive(Debug, Clone)]
pub struct TwoWayOutcome {
    /// One verdict per `SEND-` rule in scope, in catalog order.
    pub verdicts: Vec<Verdict>,
    /// The calls the partner made, numbered after the run's own exchanges.
    pub calls: Vec<Call>,
    /// The API base URL the partner was told.
    pub connector_url: String,
}

/// Everything a two-way phase needs besides the one-way run's observations.
pub struct TwoWayRun<'a> {
    /// The profile's `[sends]`.
    pub sends: &'a SendsSection,
    /// Options.
    pub options: &'a TwoWayOptions,
    /// Who acts.
    pub actor: Actor,
    /// The run's seed (names the partner's own new records).
    pub seed: u64,
    /// Only these rules (all when empty).
    pub only: &'a [String],
    /// Rules whose check is switched off.
    pub disabled_checks: &'a [String],
    /// The highest exchange id the run already used.
    pub exchanges_before: usize,
    /// When the run started: the calls' times count from it, like the run's own exchanges.
    pub run_started: std::time::Instant,
    /// Where instructions go (stderr for a person, nowhere for the mock).
    pub announce: &'a (dyn Fn(&str) + Send + Sync),
}

/// The rule a step's outcome decides; the others judge every call.
pub fn step_of_rule(rule: &str) -> Option<SendStep> {
    match rule {
        "SEND-003" => Some(SendStep::CreateUser),
        "SEND-005" | "SEND-009" => Some(SendStep::Convert),
        "SEND-006" => Some(SendStep::Inactivate),
        "SEND-007" => Some(SendStep::LeadSource),
        _ => None,
    }
}

/// The prospect the Connector delivered that the partner is asked to convert.
struct Delivered {
    record_id: String,
    first_name: String,
    last_name: String,
    email: String,
    mobile: String,
}

fn delivered_prospect(observations: &Observations) -> Option<Delivered> {
    observations
        .deliveries
        .iter()
        .filter(|d| d.kind == RecordKind::Prospect)
        .find_map(|delivery| {
            let id = delivery.id()?.to_owned();
            let record = delivery.latest_sent();
            let get = |field| record.get(&field).cloned().unwrap_or_default();
            Some(Delivered {
                record_id: id,
                first_name: get(Field::FirstName),
                last_name: get(Field::LastName),
                email: get(Field::Email),
                mobile: get(Field::MobilePhone),
            })
        })
}

/// Whether the calls since a step began hold what the step should produce.
fn step_done(step: SendStep, calls: &[Call]) -> bool {
    let user_saves = || {
        calls.iter().filter(|c| {
            c.kind == CallKind::Save && c.resource == Some(inbound::wire::Resource::User)
        })
    };
    let field = |call: &Call, name: &str| call.fields.get(name).cloned().unwrap_or_default();
    match step {
        SendStep::Convert => user_saves().any(|c| field(c, "userType") == "MEMBER"),
        SendStep::Inactivate => {
            user_saves().any(|c| field(c, "userStatus") == "INACTIVE")
                || calls
                    .iter()
                    .any(|c| c.exchange.method.eq_ignore_ascii_case("DELETE"))
        }
        SendStep::CreateUser => {
            user_saves()
                .filter(|c| field(c, "userType") == "PROSPECT")
                .count()
                >= 2
        }
        SendStep::LeadSource => {
            calls.iter().any(|c| {
                c.kind == CallKind::Save && c.resource == Some(inbound::wire::Resource::LeadSource)
            }) && user_saves().any(|c| !field(c, "leadSource").is_empty())
        }
    }
}

/// Runs a step hook with the step in its environment; errors say why it did not succeed.
async fn run_hook(command: &str, request: &StepRequest, timeout: Duration) -> Result<(), String> {
    let mut process = tokio::process::Command::new("sh");
    process
        .arg("-c")
        .arg(command)
        .envs(request.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = process
        .spawn()
        .map_err(|error| format!("the step hook could not start: {error}"))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            return Err(format!(
                "the step hook did not finish within {} (stopped)",
                seconds(timeout)
            ))
        }
        Ok(Err(error)) => return Err(format!("the step hook could not be waited for: {error}")),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .trim()
        .chars()
        .rev()
        .take(300)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let status = match output.status.code() {
        Some(code) => format!("exit status {code}"),
        None => "a signal".to_owned(),
    };
    Err(if tail.is_empty() {
        format!("the step hook failed with {status}")
    } else {
        format!("the step hook failed with {status}: {tail}")
    })
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// Waits until the calls since `from` complete `step`, or `deadline` passes.
async fn wait_for(
    state: &ConnectorState,
    step: SendStep,
    from: usize,
    deadline: tokio::time::Instant,
) -> bool {
    let mut count = state.call_count();
    loop {
        let calls = state.calls();
        if step_done(step, calls.get(from..).unwrap_or_default()) {
            return true;
        }
        match tokio::time::timeout_at(deadline, count.changed()).await {
            Ok(Ok(())) => {}
            // The server's state lives as long as `state`; a closed channel cannot happen, but
            // it must not spin.
            Ok(Err(_)) | Err(_) => {
                let calls = state.calls();
                return step_done(step, calls.get(from..).unwrap_or_default());
            }
        }
    }
}

/// A check's finding as a two-way run tells it: an inconclusive reason keeps what was missing
/// and drops the advice meant for `spoke connector` users (the run itself asked for the step).
fn in_two_way_terms(finding: Finding) -> Finding {
    match finding {
        Finding::Inconclusive { reason } => {
            let missing = reason
                .split_once(": ")
                .map_or(reason.as_str(), |(what, _)| what);
            Finding::Inconclusive {
                reason: format!("{missing} in the two-way steps"),
            }
        }
        other => other,
    }
}

/// Starts the mock Connector API, runs the profile's steps, and judges the `SEND-` rules.
pub async fn run(run: TwoWayRun<'_>, observations: &Observations) -> Result<TwoWayOutcome, String> {
    let sends = run.sends;
    let tenant = Tenant {
        provider: sends.provider_id.clone(),
        client: sends.client_id.clone(),
        club: sends.club_id.clone(),
    };
    let delivered = delivered_prospect(observations);
    let seed = Seed {
        prospect: delivered
            .iter()
            .map(|d| SeedUser {
                first_name: d.first_name.clone(),
                last_name: d.last_name.clone(),
                email: (!d.email.is_empty()).then(|| d.email.clone()),
                mobile: (!d.mobile.is_empty()).then(|| d.mobile.clone()),
                record_id: Some(d.record_id.clone()),
                inactive: false,
            })
            .collect(),
        member: Vec::new(),
    };
    let options = ConnectorOptions {
        tenant: tenant.clone(),
        state_file: None,
        body_limit: inbound::DEFAULT_BODY_LIMIT,
    };
    let started_ms = run.run_started.elapsed().as_millis() as u64;
    let state = ConnectorState::new(seed.into_intouch(tenant.clone()), options);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, run.options.connector_port));
    let server = inbound::spawn(state.clone(), addr)
        .await
        .map_err(|error| format!("cannot start the mock Connector API on {addr}: {error}"))?;
    let connector_url = server.api_url();
    let converts = sends.steps.contains(&SendStep::Convert);
    let mut failures: BTreeMap<SendStep, String> = BTreeMap::new();
    // Which step each call arrived in, from its first call's index.
    let mut step_starts: Vec<(usize, SendStep)> = Vec::new();
    for step in SendStep::ALL
        .into_iter()
        .filter(|s| sends.steps.contains(s))
    {
        let own = |first: &str, last: &str, n: u64| {
            (
                format!("spoke-{}-{}", step.key(), run.seed % 1_000_000 + n),
                first.to_owned(),
                last.to_owned(),
                format!(
                    "{}.{}.{}@example.com",
                    first.to_ascii_lowercase(),
                    last.to_ascii_lowercase(),
                    run.seed % 10_000
                ),
                format!("+1555{:07}", (run.seed + n) % 10_000_000),
            )
        };
        let (record_id, first_name, last_name, email, mobile) = match step {
            SendStep::Convert | SendStep::Inactivate => match &delivered {
                Some(d) => (
                    d.record_id.clone(),
                    d.first_name.clone(),
                    d.last_name.clone(),
                    d.email.clone(),
                    d.mobile.clone(),
                ),
                None => {
                    failures.insert(
                        step,
                        "the one-way run delivered no prospect that the partner saved with an id, so there is none to ask about".into(),
                    );
                    continue;
                }
            },
            SendStep::CreateUser => own("Nadia", "Twoway", 1),
            SendStep::LeadSource => own("Omar", "Sourceful", 2),
        };
        let request = StepRequest {
            step,
            connector_url: connector_url.clone(),
            provider_id: tenant.provider.clone(),
            client_id: tenant.client.clone(),
            club_id: tenant.club.clone(),
            record_id,
            user_type: if step == SendStep::Inactivate && converts {
                "MEMBER".into()
            } else {
                "PROSPECT".into()
            },
            first_name,
            last_name,
            email,
            mobile,
            lead_source: if step == SendStep::LeadSource {
                format!("Spoke two-way {}", run.seed % 10_000)
            } else {
                String::new()
            },
        };
        let from = state.calls().len();
        step_starts.push((from, step));
        let deadline = tokio::time::Instant::now() + run.options.step_timeout;
        let acted = match &run.actor {
            Actor::Mock(faults) => crate::partner::sender::act(&request, faults)
                .await
                .map_err(|error| format!("the mock partner could not act: {error}")),
            Actor::Hook(command) => {
                (run.announce)(&format!(
                    "{}\n  running the step hook",
                    request.instruction()
                ));
                run_hook(command, &request, run.options.step_timeout).await
            }
            Actor::Interactive => {
                (run.announce)(&format!(
                    "{}\n  waiting up to {} for the call…",
                    request.instruction(),
                    seconds(run.options.step_timeout)
                ));
                Ok(())
            }
        };
        if let Err(reason) = acted {
            failures.insert(step, reason);
            continue;
        }
        if !wait_for(&state, step, from, deadline).await {
            let arrived = state.calls().len() - from;
            let others = if arrived == 0 {
                String::new()
            } else {
                format!(" ({arrived} call(s) came, none of them the step's)")
            };
            failures.insert(
                step,
                format!(
                    "the partner's call did not arrive within {}{others}",
                    seconds(run.options.step_timeout)
                ),
            );
        }
    }
    let _ = server.stop().await;
    let mut calls = state.calls();
    for (index, call) in calls.iter_mut().enumerate() {
        call.exchange.id += run.exchanges_before;
        call.exchange.started_ms += started_ms;
        if let Some((_, step)) = step_starts.iter().rev().find(|(from, _)| *from <= index) {
            call.exchange.purpose = format!("step {}: a call from the partner", step.key());
        }
    }
    let context = SendContext {
        tenant: &tenant,
        initial: state.initial(),
        calls: &calls,
    };
    let asked = sends.steps.len();
    let catalog = Catalog::builtin();
    let verdicts = catalog
        .rules
        .iter()
        .filter(|rule| rule.applies.contains(&Applies::Sends))
        .filter(|rule| {
            run.only.is_empty() || run.only.iter().any(|id| id.eq_ignore_ascii_case(&rule.id))
        })
        .map(|rule| {
            if run
                .disabled_checks
                .iter()
                .any(|id| id.eq_ignore_ascii_case(&rule.id))
            {
                let unchecked = Finding::Pass {
                    reason: "The check is disabled.".into(),
                    evidence: Vec::new(),
                };
                return Verdict::from_finding(rule, unchecked);
            }
            let evidence: Vec<usize> = calls.iter().map(|c| c.exchange.id).collect();
            match step_of_rule(&rule.id) {
                Some(step) if !sends.steps.contains(&step) => {
                    return Verdict::skipped(
                        rule,
                        &format!("The profile's [sends] steps leave out `{}`.", step.key()),
                    );
                }
                Some(step) => {
                    if let Some(reason) = failures.get(&step) {
                        return Verdict::from_finding(
                            rule,
                            in_sentences(Finding::Error {
                                reason: format!("step {}: {reason}", step.key()),
                                evidence,
                            }),
                        );
                    }
                }
                None if failures.len() == asked => {
                    let reasons: Vec<String> = failures
                        .iter()
                        .map(|(step, reason)| format!("{}: {reason}", step.key()))
                        .collect();
                    return Verdict::from_finding(
                        rule,
                        in_sentences(Finding::Error {
                            reason: format!("no step completed ({})", reasons.join("; ")),
                            evidence,
                        }),
                    );
                }
                None => {}
            }
            match check_for(&rule.id) {
                Some(check) => {
                    Verdict::from_finding(rule, in_sentences(in_two_way_terms(check(&context))))
                }
                None => Verdict::without_check(rule),
            }
        })
        .collect();
    Ok(TwoWayOutcome {
        verdicts,
        calls,
        connector_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(step: SendStep) -> StepRequest {
        StepRequest {
            step,
            connector_url: "http://127.0.0.1:9/connector/api/2011-11".into(),
            provider_id: "PRV-1".into(),
            client_id: "C-1".into(),
            club_id: "K-1".into(),
            record_id: "L-123".into(),
            user_type: "MEMBER".into(),
            first_name: "Ana".into(),
            last_name: "Silva".into(),
            email: "ana@example.com".into(),
            mobile: "+15550100".into(),
            lead_source: String::new(),
        }
    }

    #[test]
    fn a_step_survives_the_hook_environment() {
        for step in SendStep::ALL {
            let sent = request(step);
            let env: BTreeMap<&str, String> = sent.env().into_iter().collect();
            assert_eq!(env.len(), STEP_VARIABLES.len());
            let read = StepRequest::from_env(|name| env.get(name).cloned()).unwrap();
            assert_eq!(read, sent);
        }
        let missing = StepRequest::from_env(|_| None).unwrap_err();
        assert!(missing.contains("SPOKE_STEP"), "{missing}");
        let no_url = StepRequest::from_env(|name| (name == "SPOKE_STEP").then(|| "convert".into()))
            .unwrap_err();
        assert!(no_url.contains("SPOKE_CONNECTOR_URL"), "{no_url}");
    }

    #[test]
    fn the_instruction_names_the_record_the_api_and_the_tenant() {
        let text = request(SendStep::Convert).instruction();
        assert!(
            text.contains("convert lead L-123 (Ana Silva) into a member"),
            "{text}"
        );
        assert!(
            text.contains(
                "http://127.0.0.1:9/connector/api/2011-11 (provider PRV-1, client C-1, club K-1)"
            ),
            "{text}"
        );
        let text = request(SendStep::Inactivate).instruction();
        assert!(
            text.contains("make member L-123 (Ana Silva) inactive"),
            "{text}"
        );
    }

    #[test]
    fn every_send_rule_but_the_general_ones_belongs_to_a_step() {
        let general = ["SEND-001", "SEND-002", "SEND-004", "SEND-008"];
        for rule in Catalog::builtin()
            .rules
            .iter()
            .filter(|r| r.applies.contains(&Applies::Sends))
        {
            assert_eq!(
                step_of_rule(&rule.id).is_none(),
                general.contains(&rule.id.as_str()),
                "{}",
                rule.id
            );
        }
    }
}

//! `simulate`: a continuous InTouch → Connector → partner stream at a given concurrency and
//! rate, with retries as the Connector makes them, a latency histogram and an exactly-once audit;
//! one shard of such a run, and shard reports merged.

mod merge;
mod report;
mod shard;
mod transport;

pub use merge::{merge, read_shard_report, MergeError};
pub use report::{Audit, ExactlyOnce, Latency, SimulateReport, SyncFigures};
pub use shard::Shard;

use crate::auth::Credentials;
use crate::connector::session::{self, prepare, Prepared};
use crate::connector::{ClientLimits, PartnerClient};
use crate::intouch::{self, Scenario};
use crate::model::{same_ignoring_case, Field, RecordKind};
use crate::partner::{self, Faults, PartnerOptions, RunningPartner, Sandbox};
use crate::profile::Profile;
use crate::profile::{IdFrom, Operation, OperationKind, Side};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// The profile.
    pub profile: Profile,
    /// The partner's base URL; the profile's when `None`.
    pub base_url: Option<String>,
    /// Run against the in-process mock partner.
    pub mock: bool,
    /// The mock's sandbox.
    pub sandbox: Sandbox,
    /// The mock's faults.
    pub faults: Faults,
    /// Seed of the leads.
    pub seed: u64,
    /// Prospects to deliver.
    pub leads: usize,
    /// Members to deliver.
    pub members: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries started per second at most.
    pub rate: Option<f64>,
    /// Stop starting deliveries after this long.
    pub duration: Option<Duration>,
    /// Client limits.
    pub limits: ClientLimits,
    /// Resends of one delivery after a 5xx, a timeout or a broken connection.
    pub retries: u32,
    /// Deliver only this slice of the run's deliveries; all of them when `None`.
    pub shard: Option<Shard>,
}

/// The deliveries of a run: `options.leads` prospects and `options.members` members (those the
/// profile carries), prepared as the Connector prepares them after the sync; only the shard's
/// slice when `options.shard` says so. Also the number of the whole run's deliveries.
fn plan_deliveries(
    profile: &Profile,
    synced: &session::Synced,
    options: &SimulateOptions,
) -> (Vec<Plan>, usize) {
    let mut plans = Vec::new();
    let mut position = 0;
    for (kind, key, count) in [
        (RecordKind::Prospect, "prospect", options.leads),
        (RecordKind::Member, "member", options.members),
    ] {
        if !profile.carries(kind) {
            continue;
        }
        for number in 0..count {
            // Every shard numbers the whole run alike, so a lead has the same external id in
            // whichever shard delivers it, and only in that one.
            let here = options.shard.is_none_or(|shard| shard.holds(position));
            position += 1;
            if !here {
                continue;
            }
            let lead = intouch::generated_lead(&synced.world, key, number);
            let prepared = prepare(
                profile,
                &synced.world,
                &lead,
                kind,
                synced.staff.as_ref(),
                synced.sources.as_ref(),
            );
            plans.push(Plan {
                kind,
                position: position - 1,
                label: lead.label,
                prepared,
            });
        }
    }
    (plans, position)
}

/// The bodies of the creates a run of `options` sends, in order, each with the external id it
/// carries: for a load generator to send the same requests. The sync runs first, as in a run.
pub async fn delivery_bodies(
    options: SimulateOptions,
) -> Result<Vec<(Option<String>, bytes::Bytes)>, String> {
    let setup = Setup::start(&options).await?;
    let synced = session::sync(&setup.client, options.seed, &Scenario::core(), &()).await;
    let (plans, _) = plan_deliveries(&setup.profile, &synced, &options);
    let creates = CreateSpec::all(&setup.profile);
    let bodies = plans
        .iter()
        .filter_map(|plan| {
            let spec = creates.iter().find(|spec| spec.kind == plan.kind)?;
            let body = create_body(
                &setup.profile,
                spec.operation,
                plan.kind,
                &plan.prepared.sent,
            );
            Some((plan.prepared.sent.get(&Field::ExternalId).cloned(), body))
        })
        .collect();
    setup.stop().await;
    Ok(bodies)
}

/// One delivery's plan.
struct Plan {
    kind: RecordKind,
    /// Its place in the whole run's plan (all shards).
    position: usize,
    label: String,
    prepared: Prepared,
}

/// What became of one delivery.
enum Delivered {
    Saved { id: String, resends: usize },
    Failed { class: &'static str, resends: usize },
}

/// Counts for a progress display.
#[derive(Default)]
struct Counters {
    done: AtomicUsize,
    retried: AtomicUsize,
    failed: AtomicUsize,
}

/// The partner reached (the in-process mock, started here, or the one at the base URL) and the
/// clients that reach it.
struct Setup {
    running: Option<(RunningPartner, Credentials)>,
    profile: Arc<Profile>,
    /// The lean transport of deliveries, for plain-http partners.
    target: Option<transport::Target>,
    client: PartnerClient,
    base_url: String,
}

impl Setup {
    async fn start(options: &SimulateOptions) -> Result<Setup, String> {
        let running = if options.mock {
            let partner_options = PartnerOptions {
                faults: options.faults.clone(),
                seed: options.seed,
                ..PartnerOptions::default()
            };
            let spawned = partner::spawn_local(
                options.profile.clone(),
                options.sandbox.clone(),
                options.seed,
                partner_options,
            )
            .await
            .map_err(|e| format!("cannot start the mock partner: {e}"))?;
            Some(spawned)
        } else {
            None
        };
        let (base_url, credentials, tls) = match &running {
            Some((running, credentials)) => (
                running.base_url(),
                credentials.clone(),
                running.client_tls(),
            ),
            None => (
                options
                    .base_url
                    .clone()
                    .unwrap_or_else(|| options.profile.partner.base_url.clone()),
                Credentials::resolve(&options.profile.auth, |name| std::env::var(name).ok())
                    .map_err(|e| format!("{}: {e}", options.profile.file_name))?,
                crate::tls::ClientTls::resolve(options.profile.tls.as_ref(), |name| {
                    std::env::var(name).ok()
                })
                .map_err(|e| format!("{}: {e}", options.profile.file_name))?,
            ),
        };
        let profile = Arc::new(options.profile.clone());
        let limits = ClientLimits {
            jitter_seed: options.seed,
            ..options.limits.clone()
        };
        // Plain-http partners get the lean transport for deliveries; anything else goes through
        // the general client, as do answers only it handles (redirects).
        let target = transport::Target::new(&profile, &base_url, &credentials, &limits).await;
        let client =
            PartnerClient::with_tls(profile.clone(), &base_url, credentials, limits, &tls)?
                .without_recording();
        client
            .authenticate()
            .await
            .map_err(|e| format!("{}: auth: {e}", options.profile.file_name))?;

        Ok(Setup {
            running,
            profile,
            target,
            client,
            base_url,
        })
    }

    async fn stop(self) {
        if let Some((running, _)) = self.running {
            let _ = running.stop().await;
        }
    }
}

/// Runs a simulation.
pub async fn simulate(
    options: SimulateOptions,
    progress: &dyn LoadProgress,
) -> Result<SimulateReport, String> {
    let Setup {
        running,
        profile,
        target,
        client,
        base_url,
    } = Setup::start(&options).await?;
    let sync_started = Instant::now();
    let synced = session::sync(&client, options.seed, &Scenario::core(), &()).await;
    let sync = SyncFigures {
        staff: synced.staff.as_ref().map_or(0, |s| s.list.records.len()),
        sources: synced
            .sources
            .as_ref()
            .and_then(|s| s.list.as_ref())
            .map_or(0, |l| l.records.len()),
        duration_ms: sync_started.elapsed().as_millis() as u64,
    };

    let (plans, run_planned) = plan_deliveries(&profile, &synced, &options);
    let planned = plans.len();
    progress.start(planned);

    let histogram = Mutex::new(report::latency_histogram());
    let counters = Counters::default();
    let pacer = options.rate.filter(|r| *r > 0.0).map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::sync::Mutex::new(interval)
    });
    let cpu_before = process_cpu();
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let run = Run {
        client: &client,
        creates: CreateSpec::all(&profile),
        plans: &plans,
        options: &options,
        histogram: &histogram,
        counters: &counters,
        pacer: pacer.as_ref(),
        progress,
        next: AtomicUsize::new(0),
        started_count: AtomicUsize::new(0),
        started,
    };
    let workers: futures_util::stream::FuturesUnordered<_> = (0..options.concurrency.max(1))
        .map(|_| run.worker(target.as_ref().map(transport::Lane::new)))
        .collect();
    let results: Vec<(usize, Delivered)> =
        workers.flat_map(futures_util::stream::iter).collect().await;
    let elapsed = started.elapsed();
    let started_count = run.started_count.load(Ordering::Relaxed);
    drop(run);
    // The process's CPU is the client's only when the partner runs elsewhere.
    let client_cpu = match (&running, cpu_before, process_cpu()) {
        (None, Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    progress.finish();

    let mut delivered = 0;
    let mut retried = 0;
    let mut resends_total = 0;
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    let mut saved_ids: Vec<(usize, String)> = Vec::new();
    for (index, outcome) in &results {
        match outcome {
            Delivered::Saved { id, resends } => {
                delivered += 1;
                resends_total += resends;
                if *resends > 0 {
                    retried += 1;
                }
                saved_ids.push((*index, id.clone()));
            }
            Delivered::Failed { class, resends } => {
                resends_total += resends;
                if *resends > 0 {
                    retried += 1;
                }
                *failed.entry((*class).to_owned()).or_default() += 1;
            }
        }
    }
    let histogram = histogram.into_inner().unwrap_or_else(|p| p.into_inner());
    let latency = Latency::of(&histogram);
    let latency_histogram = report::encode_histogram(&histogram);
    let audit = match &running {
        Some((running, _)) => Some(audit_store(running, &plans, &results)),
        None => audit_by_reading(&client, &plans, &saved_ids, options.concurrency).await,
    };
    if let Some((running, _)) = running {
        let _ = running.stop().await;
    }
    let latency_histogram = latency_histogram?;
    let exactly_once = ExactlyOnce::judge(&failed, delivered, audit.as_ref());
    Ok(SimulateReport {
        tool: concat!("spoke ", env!("CARGO_PKG_VERSION")).to_owned(),
        partner: profile.partner.name.clone(),
        base_url: client.redactor().text(&base_url),
        mock: options.mock,
        faults: options.faults.names(),
        seed: options.seed,
        shard: options.shard,
        merged_shards: None,
        sync,
        run_planned,
        planned,
        started: started_count,
        delivered,
        retried,
        resends: resends_total,
        failed,
        started_at,
        duration_ms: elapsed.as_millis() as u64,
        throughput_per_s: delivered as f64 / elapsed.as_secs_f64().max(1e-9),
        latency,
        latency_histogram,
        client_cpu_ms: client_cpu.map(|cpu| cpu.as_millis() as u64),
        client_cpu_us_per_delivery: client_cpu
            .filter(|_| !results.is_empty())
            .map(|cpu| cpu.as_secs_f64() * 1e6 / results.len() as f64),
        audit,
        exactly_once,
    })
}

/// What a delivery of one kind needs of the profile, looked up once.
struct CreateSpec<'a> {
    kind: RecordKind,
    create: OperationKind,
    operation: &'a Operation,
    /// Where the id sits in a body answer: the record's place, then the id's within it.
    id_segments: Option<Vec<String>>,
}

impl<'a> CreateSpec<'a> {
    fn all(profile: &'a Profile) -> Vec<CreateSpec<'a>> {
        [RecordKind::Prospect, RecordKind::Member]
            .into_iter()
            .filter_map(|kind| {
                let create = profile.create_operation(kind)?;
                let operation = profile.operation(create)?;
                // Only plain paths are read by the lean transport (see `transport::Target`).
                let id_segments = profile.codec(kind).read_path(Field::Id).and_then(|id_at| {
                    let mut segments = match &operation.record {
                        Some(at) => at.keys()?.to_vec(),
                        None => Vec::new(),
                    };
                    segments.extend_from_slice(id_at.keys()?);
                    Some(segments)
                });
                Some(CreateSpec {
                    kind,
                    create,
                    operation,
                    id_segments,
                })
            })
            .collect()
    }
}

/// The shared state of the delivery phase.
struct Run<'a> {
    client: &'a PartnerClient,
    creates: Vec<CreateSpec<'a>>,
    plans: &'a [Plan],
    options: &'a SimulateOptions,
    histogram: &'a Mutex<hdrhistogram::Histogram<u64>>,
    counters: &'a Counters,
    pacer: Option<&'a tokio::sync::Mutex<tokio::time::Interval>>,
    progress: &'a dyn LoadProgress,
    /// The next plan to deliver.
    next: AtomicUsize,
    started_count: AtomicUsize,
    started: Instant,
}

/// How often the progress display hears of the counts.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl Run<'_> {
    fn within_duration(&self) -> bool {
        self.options
            .duration
            .is_none_or(|limit| self.started.elapsed() < limit)
    }

    /// One of `concurrency` workers: takes the next plan and delivers it until none is left
    /// (or the duration is up), on its own connection when it has a lane.
    async fn worker(&self, mut lane: Option<transport::Lane<'_>>) -> Vec<(usize, Delivered)> {
        let mut outcomes = Vec::new();
        let mut last_progress = Instant::now();
        loop {
            // Once the duration is up no further delivery starts (nor waits for the pacer).
            if !self.within_duration() {
                break;
            }
            if let Some(pacer) = self.pacer {
                pacer.lock().await.tick().await;
                if !self.within_duration() {
                    break;
                }
            }
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(plan) = self.plans.get(index) else {
                break;
            };
            self.started_count.fetch_add(1, Ordering::Relaxed);
            let outcome = self.deliver(lane.as_mut(), plan).await;
            let counters = self.counters;
            let done = counters.done.fetch_add(1, Ordering::Relaxed) + 1;
            match &outcome {
                Delivered::Saved { resends, .. } if *resends > 0 => {
                    counters.retried.fetch_add(1, Ordering::Relaxed);
                }
                Delivered::Failed { .. } => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            if done == self.plans.len() || last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                self.progress.update(
                    done,
                    counters.retried.load(Ordering::Relaxed),
                    counters.failed.load(Ordering::Relaxed),
                );
            }
            outcomes.push((index, outcome));
        }
        outcomes
    }

    /// Delivers one record, resending it (same record, same external id) after a 5xx, a 429,
    /// a timeout or a broken connection, with exponential backoff (a 503 or 429 as
    /// `Retry-After` says).
    async fn deliver(&self, mut lane: Option<&mut transport::Lane<'_>>, plan: &Plan) -> Delivered {
        let profile = self.client.profile();
        let spec = self
            .creates
            .iter()
            .find(|spec| spec.kind == plan.kind)
            .expect("validated profiles can create what they carry");
        // Encoded once: every resend carries the same bytes.
        let body = lane
            .is_some()
            .then(|| create_body(profile, spec.operation, plan.kind, &plan.prepared.sent));
        let limits = &self.options.limits;
        let mut resends = 0;
        let mut redeliveries = 0;
        let mut transient_retries = 0;
        loop {
            let sent_at = Instant::now();
            let lean = match (lane.as_deref_mut(), &body) {
                (Some(lane), Some(body)) => Some(lane.create(plan.kind, body.clone()).await),
                _ => None,
            };
            let attempt = match lean {
                Some(Ok(answer)) if !(300..400).contains(&answer.status) => {
                    judge_answer(spec, &answer)
                }
                Some(Err(no_answer)) => Attempt::Retry {
                    class: if no_answer.timed_out {
                        "timeout"
                    } else {
                        "connection"
                    },
                    wait: None,
                    transient: false,
                },
                // Redirects, and every partner the lean transport cannot serve.
                _ => {
                    let result = self
                        .client
                        .write(spec.create, &plan.label, &plan.prepared.sent, None)
                        .await;
                    judge_write(result)
                }
            };
            let micros = sent_at.elapsed().as_micros() as u64;
            if let Ok(mut histogram) = self.histogram.lock() {
                let _ = histogram.record(micros.max(1));
            }
            let (class, wait, transient) = match attempt {
                Attempt::Saved(id) => return Delivered::Saved { id, resends },
                Attempt::Final(class) => return Delivered::Failed { class, resends },
                Attempt::Retry {
                    class,
                    wait,
                    transient,
                } => (class, wait, transient),
            };
            // A 503 or 429 is first retried as the general client retries it (within one
            // delivery attempt, waiting as `Retry-After` says); past that, and for any other
            // failure, the delivery is resent while `--retries` allows. Every resend counts.
            if transient && transient_retries < limits.retries {
                transient_retries += 1;
                resends += 1;
                let backoff = limits.retry_backoff * 2u32.pow((transient_retries - 1).min(8));
                let pause = wait.unwrap_or_else(|| {
                    backoff + jitter(self.options.seed, plan.position, resends, backoff)
                });
                tokio::time::sleep(pause.min(limits.max_retry_wait)).await;
                continue;
            }
            if redeliveries >= self.options.retries {
                return Delivered::Failed { class, resends };
            }
            redeliveries += 1;
            transient_retries = 0;
            resends += 1;
            let backoff = limits.retry_backoff * 2u32.pow((redeliveries - 1).min(8));
            tokio::time::sleep(backoff.min(limits.max_retry_wait)).await;
        }
    }
}

/// Up to half of `backoff` more, chosen by the seed, the delivery and the resend: resends of
/// many workers spread out, and the same run waits the same way.
fn jitter(seed: u64, index: usize, resend: usize, backoff: Duration) -> Duration {
    use rand::{Rng, SeedableRng};
    let stream = ((index as u64) << 16) ^ resend as u64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ stream);
    backoff.mul_f64(rng.random_range(0.0..0.5))
}

/// What one attempt of a delivery came to.
enum Attempt {
    Saved(String),
    /// Not worth resending.
    Final(&'static str),
    /// Worth resending, after `wait` if the partner said how long; `transient` for a 503 or
    /// a 429, which the partner expects to be retried soon.
    Retry {
        class: &'static str,
        wait: Option<Duration>,
        transient: bool,
    },
}

/// Judges an answer of the lean transport as the general client's `write` would.
fn judge_answer(spec: &CreateSpec<'_>, answer: &transport::RawAnswer) -> Attempt {
    match answer.status {
        200..=299 => match saved_id(spec, answer) {
            Some(id) => Attempt::Saved(id),
            None => Attempt::Final("saved without id"),
        },
        429 => Attempt::Retry {
            class: "rate limited",
            wait: answer.retry_after,
            transient: true,
        },
        500.. => Attempt::Retry {
            class: "server error",
            wait: answer.retry_after,
            transient: answer.status == 503,
        },
        _ => Attempt::Final("rejected"),
    }
}

/// Judges a write of the general client (which has already retried 503 and 429 itself).
fn judge_write(
    result: Result<crate::connector::client::Saved, crate::connector::client::CallError>,
) -> Attempt {
    match result {
        Ok(saved) if saved.accepted() => match saved.id {
            Some(id) => Attempt::Saved(id),
            None => Attempt::Final("saved without id"),
        },
        Ok(saved) if saved.answer.status >= 500 => Attempt::Retry {
            class: "server error",
            wait: None,
            transient: false,
        },
        Ok(_) => Attempt::Final("rejected"),
        Err(error) if error.timed_out => Attempt::Retry {
            class: "timeout",
            wait: None,
            transient: false,
        },
        Err(_) => Attempt::Retry {
            class: "connection",
            wait: None,
            transient: false,
        },
    }
}

/// The body of a create, as the general client's `write` encodes it: the record through the
/// profile's codec (without an id), wrapped where the operation says.
fn create_body(
    profile: &Profile,
    operation: &Operation,
    kind: RecordKind,
    record: &crate::model::Record,
) -> bytes::Bytes {
    let codec = profile.codec(kind);
    let body = if record.contains_key(&Field::Id) {
        let mut without_id = record.clone();
        without_id.remove(&Field::Id);
        codec.encode_json(&without_id, operation.body.as_ref(), Side::Request)
    } else {
        codec.encode_json(record, operation.body.as_ref(), Side::Request)
    };
    bytes::Bytes::from(body)
}

/// The partner's id of a saved record: the last segment of `Location`, or the mapped id in
/// the answer's record, as the operation says.
fn saved_id(spec: &CreateSpec<'_>, answer: &transport::RawAnswer) -> Option<String> {
    let id = match spec.operation.id_from.unwrap_or_default() {
        // Not served by the lean transport (see `transport::Target`).
        IdFrom::Header => None,
        IdFrom::Location => answer
            .location
            .as_deref()
            .and_then(crate::connector::client::last_segment),
        IdFrom::Body if answer.cut_off => None,
        IdFrom::Body => transport::scalar_at(&answer.body, spec.id_segments.as_deref()?),
    };
    id.filter(|id| !id.is_empty())
}

/// The CPU time this process has used (user and system, all threads), where the platform
/// tells it (Linux `/proc`, in clock ticks of 10 ms).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |at: usize| fields.get(at)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let total = ticks(11)? + ticks(12)?;
    Some(Duration::from_millis(total * 10))
}

/// Counts every planned lead in the in-process mock's store by its external id.
fn audit_store(running: &RunningPartner, plans: &[Plan], results: &[(usize, Delivered)]) -> Audit {
    let data = running.state.store().read();
    let mut audit = Audit {
        method: "the mock partner's store, by external id".into(),
        duplicated: Some(0),
        duplicates: "counted in the mock partner's store, by external id".into(),
        ..Audit::default()
    };
    let mut by_external: BTreeMap<(RecordKind, &str), Vec<&crate::partner::StoredRecord>> =
        BTreeMap::new();
    for kind in [RecordKind::Prospect, RecordKind::Member] {
        for record in data.records(kind).into_iter().flat_map(|r| r.values()) {
            if let Some(external) = record.get(Field::ExternalId) {
                by_external
                    .entry((kind, external))
                    .or_default()
                    .push(record);
            }
        }
    }
    let delivered: std::collections::BTreeSet<usize> = results
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Delivered::Saved { .. }))
        .map(|(index, _)| *index)
        .collect();
    let mut without_external = 0;
    for (index, plan) in plans.iter().enumerate() {
        if !delivered.contains(&index) {
            continue;
        }
        let Some(external) = plan.prepared.sent.get(&Field::ExternalId) else {
            without_external += 1;
            continue;
        };
        audit.checked += 1;
        let held = by_external
            .get(&(plan.kind, external.as_str()))
            .cloned()
            .unwrap_or_default();
        let mut problem = None;
        match held.len() {
            0 => {
                audit.lost += 1;
                problem = Some(format!("{} ({external}) is not held", plan.label));
            }
            1 => {
                let stored = held[0];
                let wrong_owner =
                    stored.get(Field::Owner) != plan.prepared.expected_owner.as_deref();
                let wrong_source = stored.get(Field::Source)
                    != plan
                        .prepared
                        .expected_source
                        .as_ref()
                        .map(|(id, _)| id.as_str());
                if wrong_owner || wrong_source {
                    audit.wrong += 1;
                    problem = Some(format!(
                        "{} ({external}) is held with owner {:?} and source {:?}",
                        plan.label,
                        stored.get(Field::Owner),
                        stored.get(Field::Source)
                    ));
                }
            }
            n => {
                *audit.duplicated.get_or_insert(0) += 1;
                problem = Some(format!("{} ({external}) is held {n} times", plan.label));
            }
        }
        if let Some(problem) = problem {
            if audit.problems.len() < report::MAX_PROBLEMS {
                audit.problems.push(problem);
            }
        }
    }
    if without_external > 0 {
        audit.duplicates = format!(
            "{}, except for {without_external} deliveries that carry none (the profile maps no \
             external id), which could not be checked",
            audit.duplicates
        );
    }
    audit
}

/// Reads every delivered lead back by its id, where the profile can; duplicates cannot be
/// counted this way.
async fn audit_by_reading(
    client: &PartnerClient,
    plans: &[Plan],
    saved: &[(usize, String)],
    concurrency: usize,
) -> Option<Audit> {
    let kinds_readable = [RecordKind::Prospect, RecordKind::Member]
        .into_iter()
        .any(|kind| client.profile().read_operation(kind).is_some());
    if !kinds_readable {
        return None;
    }
    let checks: Vec<Option<String>> = futures_util::stream::iter(saved)
        .map(|(index, id)| async move {
            let plan = &plans[*index];
            client.profile().read_operation(plan.kind)?;
            let problem = match client.read(plan.kind, id, "audit").await {
                Ok((_, Some(record))) => {
                    let same =
                        |field: Field| match (record.get(&field), plan.prepared.sent.get(&field)) {
                            (Some(a), Some(b)) => same_ignoring_case(a, b),
                            (None, None) => true,
                            _ => false,
                        };
                    (!(same(Field::Owner) && same(Field::Source))).then(|| {
                        format!(
                            "wrong: {} (id {id}) has another owner or source",
                            plan.label
                        )
                    })
                }
                Ok((answer, None)) => Some(format!(
                    "lost: {} (id {id}) reads back as HTTP {}",
                    plan.label, answer.status
                )),
                Err(error) => Some(format!("lost: {} (id {id}): {}", plan.label, error.message)),
            };
            Some(problem.unwrap_or_default())
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut audit = Audit {
        method: "read back by the partner's id".into(),
        duplicates: "not counted: a lead saved twice is held under two ids, and the profile \
                     declares no list of prospects or members, nor a lookup by external id, to \
                     find the second"
            .into(),
        ..Audit::default()
    };
    for problem in checks.into_iter().flatten() {
        audit.checked += 1;
        if problem.starts_with("lost") {
            audit.lost += 1;
        } else if problem.starts_with("wrong") {
            audit.wrong += 1;
        } else {
            continue;
        }
        if audit.problems.len() < report::MAX_PROBLEMS {
            audit.problems.push(problem);
        }
    }
    Some(audit)
}

/// Progress of a load run.
pub trait LoadProgress: Send + Sync {
    /// The run starts with `total` deliveries planned.
    fn start(&self, total: usize);
    /// Counts so far.
    fn update(&self, done: usize, retried: usize, failed: usize);
    /// The run ended.
    fn finish(&self);
}

impl LoadProgress for () {
    fn start(&self, _: usize) {}
    fn update(&self, _: usize, _: usize, _: usize) {}
    fn finish(&self) {}
}

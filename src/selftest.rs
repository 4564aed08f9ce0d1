//! `selftest`: the suite's proof of its own detection power. Every fixture profile is certified
//! against the mock partner clean and with each applicable fault alone; each clean run must pass
//! and each fault must be caught by exactly the rules the catalog names.

use crate::certify::{certify, CertifyError, CertifyOptions};
use crate::connector::ClientLimits;
use crate::partner::{Fault, Faults, Sandbox};
use crate::profile::Profile;
use crate::suite::Outcome;
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub use crate::fixtures::{fixture_profiles, FIXTURE_PROFILES};

/// One cell of the matrix: a profile with one fault (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixRow {
    /// The profile's file name.
    pub profile: String,
    /// The fault, `None` for the clean run.
    pub fault: Option<Fault>,
    /// Rules that must end in fail or warn.
    pub expected: BTreeSet<String>,
    /// Rules that did.
    pub observed: BTreeSet<String>,
    /// Whether the run met its expectation.
    pub ok: bool,
    /// The run's exit code.
    pub exit_code: i32,
    /// The reason of every verdict not skipped: (rule, reason).
    pub reasons: Vec<(String, String)>,
}

/// The whole matrix.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// One row per run.
    pub rows: Vec<MatrixRow>,
    /// Wall time.
    pub duration: Duration,
}

impl Matrix {
    /// Whether every row met its expectation.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|row| row.ok)
    }

    /// The matrix as a table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let width = self.rows.iter().map(|r| r.profile.len()).max().unwrap_or(8);
        out.push_str(&format!(
            "{:<width$}  {:<28}  {:<34}  {:<34}  RESULT\n",
            "PROFILE", "FAULT", "EXPECTED (fail/warn)", "OBSERVED (fail/warn)"
        ));
        let join = |set: &BTreeSet<String>| {
            if set.is_empty() {
                "-".to_owned()
            } else {
                set.iter().cloned().collect::<Vec<_>>().join(",")
            }
        };
        for row in &self.rows {
            let fault = row.fault.map(|f| f.name()).unwrap_or("(none)");
            let expected = match row.fault {
                Some(Fault::Slow) => "errors, exit 3".to_owned(),
                Some(f) if f.shows_as_errors() => "STAFF-001 error, exit 3".to_owned(),
                _ => join(&row.expected),
            };
            out.push_str(&format!(
                "{:<width$}  {:<28}  {:<34}  {:<34}  {}\n",
                row.profile,
                fault,
                expected,
                join(&row.observed),
                if row.ok { "ok" } else { "MISMATCH" }
            ));
        }
        let failed = self.rows.iter().filter(|r| !r.ok).count();
        out.push_str(&format!(
            "\n{} runs in {:.2} s\nselftest: {} passed, {} failed\n",
            self.rows.len(),
            self.duration.as_secs_f64(),
            self.rows.len() - failed,
            failed
        ));
        out
    }
}

/// Settings that keep the matrix fast while exercising the timing rules.
fn options(
    profile: &Profile,
    fault: Option<Fault>,
    seed: u64,
    disabled_checks: &[String],
) -> CertifyOptions {
    let slow = fault == Some(Fault::Slow);
    let unanswered = fault.is_some_and(Fault::shows_as_errors);
    CertifyOptions {
        profile: profile.clone(),
        profile_arg: Some(profile.file_name.clone()),
        base_url: None,
        mock: true,
        sandbox: Sandbox::default_seed(),
        faults: fault.into_iter().collect::<Faults>(),
        seed,
        only: Vec::new(),
        limits: ClientLimits {
            request_timeout: if unanswered {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(5)
            },
            deadline: slow.then_some(Duration::from_millis(400)),
            retry_backoff: Duration::from_millis(5),
            ..ClientLimits::default()
        },
        // Tight only where the budget is what is tested; elsewhere a busy machine must not
        // turn a slow answer into a ROB-002 warning the fault did not cause.
        latency_budget: if fault == Some(Fault::SlowStaffList) {
            Duration::from_millis(1_000)
        } else {
            Duration::from_millis(5_000)
        },
        disabled_checks: disabled_checks.to_vec(),
        // The matrix reads verdicts only; masking evidence nobody sees would cost time.
        show_personal_data: true,
        two_way: Default::default(),
        redactor: Default::default(),
    }
}

/// Runs the matrix over `profiles`, with the checks of `disabled_checks` switched off.
pub async fn run_matrix(
    profiles: &[Profile],
    seed: u64,
    disabled_checks: &[String],
) -> Result<Matrix, CertifyError> {
    run_matrix_where(profiles, seed, disabled_checks, |_, _| true).await
}

/// Told of each run of the matrix as it finishes (the matrix takes minutes).
pub trait MatrixProgress: Sync {
    /// How many runs there are, before the first starts.
    fn start(&self, total: usize);
    /// One run finished; `done` of them so far.
    fn finished(&self, done: usize, row: &MatrixRow);
}

impl MatrixProgress for () {
    fn start(&self, _: usize) {}
    fn finished(&self, _: usize, _: &MatrixRow) {}
}

/// [`run_matrix`], telling `progress` of each run as it finishes.
pub async fn run_matrix_reporting(
    profiles: &[Profile],
    seed: u64,
    disabled_checks: &[String],
    progress: &dyn MatrixProgress,
) -> Result<Matrix, CertifyError> {
    run_matrix_with(profiles, seed, disabled_checks, |_, _| true, progress).await
}

/// Certifies `profile` against the mock with `fault` alone and judges the row.
async fn run_row(
    profile: &Profile,
    fault: Option<Fault>,
    seed: u64,
    disabled_checks: &[String],
) -> Result<MatrixRow, CertifyError> {
    let report = certify(options(profile, fault, seed, disabled_checks), &()).await?;
    let observed: BTreeSet<String> = report
        .verdicts
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::Fail | Outcome::Warn))
        .map(|v| v.rule.clone())
        .collect();
    let expected = fault.map(|f| f.expected(profile)).unwrap_or_default();
    let expected_errors = fault
        .map(|f| f.expected_errors(profile))
        .unwrap_or_default();
    let errors: BTreeSet<String> = report
        .verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Error)
        .map(|v| v.rule.clone())
        .collect();
    let ok = match fault {
        None => observed.is_empty() && report.exit_code == crate::exit_codes::CONFORMANT,
        // Faults that leave requests unanswered must end in error verdicts, no failures, and
        // exit 3: we could not check, the partner did not fail.
        Some(f) if f.shows_as_errors() => {
            observed.is_empty()
                && expected_errors.is_subset(&errors)
                && report.exit_code == crate::exit_codes::RUN_FAILED
        }
        Some(_) => !expected.is_empty() && observed == expected,
    };
    let reasons = report
        .verdicts
        .iter()
        .filter(|v| v.outcome != Outcome::Skip)
        .map(|v| (v.rule.clone(), v.reason.clone()))
        .collect();
    Ok(MatrixRow {
        profile: profile.file_name.clone(),
        fault,
        expected,
        observed,
        ok,
        exit_code: report.exit_code,
        reasons,
    })
}

/// Runs the rows of the matrix that `keep(profile, fault)` selects.
pub async fn run_matrix_where(
    profiles: &[Profile],
    seed: u64,
    disabled_checks: &[String],
    keep: impl Fn(&Profile, Option<Fault>) -> bool,
) -> Result<Matrix, CertifyError> {
    run_matrix_with(profiles, seed, disabled_checks, keep, &()).await
}

async fn run_matrix_with(
    profiles: &[Profile],
    seed: u64,
    disabled_checks: &[String],
    keep: impl Fn(&Profile, Option<Fault>) -> bool,
    progress: &dyn MatrixProgress,
) -> Result<Matrix, CertifyError> {
    let started = Instant::now();
    let cells: Vec<(&Profile, Option<Fault>)> = profiles
        .iter()
        .flat_map(|profile| {
            std::iter::once(None)
                .chain(
                    Fault::ALL
                        .iter()
                        .copied()
                        .filter(|fault| fault.applies_to(profile))
                        .map(Some),
                )
                .map(move |fault| (profile, fault))
        })
        .filter(|(profile, fault)| keep(profile, *fault))
        .collect();
    // A few runs at a time (each against its own mock partner), rows kept in matrix order.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    progress.start(cells.len());
    let mut done = 0;
    // Told as each finishes, whatever its place; put back in matrix order after.
    let mut rows: Vec<(usize, Result<MatrixRow, CertifyError>)> =
        futures_util::stream::iter(cells.into_iter().enumerate())
            .map(|(at, (profile, fault))| async move {
                (at, run_row(profile, fault, seed, disabled_checks).await)
            })
            .buffer_unordered(parallel)
            .inspect(|(_, row)| {
                done += 1;
                if let Ok(row) = row {
                    progress.finished(done, row);
                }
            })
            .collect()
            .await;
    rows.sort_by_key(|(at, _)| *at);
    let rows = rows
        .into_iter()
        .map(|(_, row)| row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Matrix {
        rows,
        duration: started.elapsed(),
    })
}

//! The report model: one run, everything every renderer needs, built once from the verdicts and
//! observations.

use crate::connector::session::Observations;
use crate::connector::Exchange;
use crate::exit_codes;
use crate::intouch::{OwnerCase, SourceCase};
use crate::model::RecordKind;
use crate::suite::{Catalog, Level, Outcome, Verdict};
use serde::Serialize;

/// The version of the JSON report's shape; bumped when a field changes meaning or goes away.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// One certify run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The report shape's version.
    pub format_version: u32,
    /// `spoke <version>`.
    pub tool: String,
    /// The rule catalog's version.
    pub catalog_version: String,
    /// SHA-256 of the rule catalog (`conformance/rules.toml`) the verdicts were judged by.
    pub catalog_digest: String,
    /// Who was certified.
    pub partner: PartnerInfo,
    /// The seed; `--seed` with it replays the same data.
    pub seed: u64,
    /// The scenario run.
    pub scenario: String,
    /// `--only` rules, if given.
    pub only: Vec<String>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// Verdicts, in catalog order.
    pub verdicts: Vec<VerdictEntry>,
    /// The lead combinations exercised.
    pub coverage: Vec<CoverageCell>,
    /// What the sandbox lacks for some cases.
    pub missing_in_sandbox: Vec<String>,
    /// Set when no request got any answer: the partner could not be reached.
    pub unreachable: Option<String>,
    /// Set when every answer was a 401 or 403: the partner refused the run's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_refused: Option<String>,
    /// Counts per outcome.
    pub totals: Totals,
    /// The exit code this run maps to.
    pub exit_code: i32,
    /// Every exchange of the run, secrets redacted.
    pub exchanges: Vec<Exchange>,
    /// The waivers given (`--waivers`) and what became of each; absent without a waivers file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<super::waivers::WaiverOutcome>,
}

impl RunReport {
    /// The coverage cells of one record kind (`prospect` or `member`), in order.
    pub fn coverage_of(&self, kind: &str) -> Vec<&CoverageCell> {
        self.coverage
            .iter()
            .filter(|cell| cell.kind == kind)
            .collect()
    }
}

/// The partner certified.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerInfo {
    /// `[partner] name`.
    pub name: String,
    /// The profile file.
    pub profile: String,
    /// SHA-256 of the profile's text (profiles hold no secrets, only variable names).
    pub profile_digest: String,
    /// The base URL called.
    pub base_url: String,
    /// Whether this was the in-process mock partner.
    pub mock: bool,
    /// Mock faults switched on.
    pub faults: Vec<String>,
    /// TLS certificates were not verified (`--insecure`).
    pub insecure: bool,
}

/// A verdict with the rule's catalog entry and ways to reproduce it.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictEntry {
    /// Rule id.
    pub rule: String,
    /// MUST or SHOULD.
    pub level: Level,
    /// Rule title.
    pub title: String,
    /// pass, fail, warn, skip, inconclusive, error.
    pub outcome: Outcome,
    /// Why, in one line.
    pub reason: String,
    /// The guide clause.
    pub clause: String,
    /// How to fix a failure.
    pub fix: String,
    /// Exchange ids that show it.
    pub evidence: Vec<usize>,
    /// A curl command per evidence exchange (secrets redacted), for fail/warn/error.
    pub curl: Vec<String>,
    /// The spoke command that replays this case.
    pub reproduce: String,
    /// The waiver covering this fail/warn/inconclusive verdict, if any: it no longer fails the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<super::waivers::Waiver>,
}

/// One cell of the coverage grid.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CoverageCell {
    /// prospect or member.
    pub kind: String,
    /// The owner case (prospects).
    pub owner: Option<String>,
    /// The source case (prospects).
    pub source: Option<String>,
    /// The lead's label.
    pub label: String,
    /// saved, rejected, no-answer.
    pub result: String,
}

/// Counts per outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Warned.
    pub warn: usize,
    /// Skipped.
    pub skip: usize,
    /// Inconclusive.
    pub inconclusive: usize,
    /// Could not be checked.
    pub error: usize,
}

impl Totals {
    /// Counts the outcomes of `verdicts`.
    pub fn of(verdicts: &[Verdict]) -> Totals {
        let mut totals = Totals::default();
        for verdict in verdicts {
            *match verdict.outcome {
                Outcome::Pass => &mut totals.pass,
                Outcome::Fail => &mut totals.fail,
                Outcome::Warn => &mut totals.warn,
                Outcome::Skip => &mut totals.skip,
                Outcome::Inconclusive => &mut totals.inconclusive,
                Outcome::Error => &mut totals.error,
            } += 1;
        }
        totals
    }
}

/// The run's exit code, decided from the verdicts alone.
pub fn exit_code(verdicts: &[Verdict]) -> i32 {
    let must_broken = verdicts.iter().any(|v| {
        v.outcome == Outcome::Fail || (v.outcome == Outcome::Inconclusive && v.level == Level::Must)
    });
    if must_broken {
        exit_codes::NOT_CONFORMANT
    } else if verdicts.iter().any(|v| v.outcome == Outcome::Error) {
        exit_codes::RUN_FAILED
    } else {
        exit_codes::CONFORMANT
    }
}

/// The coverage grid of a session.
pub fn coverage(observations: &Observations) -> Vec<CoverageCell> {
    observations
        .deliveries
        .iter()
        .map(|delivery| {
            let result = match &delivery.create {
                Ok(saved) if saved.answer.is_success() => "saved",
                Ok(_) => "rejected",
                Err(_) => "no-answer",
            };
            CoverageCell {
                kind: match delivery.kind {
                    RecordKind::Member => "member".into(),
                    _ => "prospect".into(),
                },
                owner: delivery.case.map(|(owner, _)| owner.key().to_owned()),
                source: delivery.case.map(|(_, source)| source.key().to_owned()),
                label: delivery.label.clone(),
                result: result.to_owned(),
            }
        })
        .collect()
}

/// Grid axes, for renderers.
pub fn grid_axes() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        OwnerCase::ALL.iter().map(|c| c.key()).collect(),
        SourceCase::ALL.iter().map(|c| c.key()).collect(),
    )
}

/// Joins verdicts with their catalog entries.
pub fn entries(
    catalog: &Catalog,
    verdicts: &[Verdict],
    curl_of: impl Fn(usize) -> Option<String>,
    reproduce_of: impl Fn(&str) -> String,
) -> Vec<VerdictEntry> {
    verdicts
        .iter()
        .map(|verdict| {
            let rule = catalog.rule(&verdict.rule);
            let shows_evidence = matches!(
                verdict.outcome,
                Outcome::Fail | Outcome::Warn | Outcome::Error
            );
            VerdictEntry {
                rule: verdict.rule.clone(),
                level: verdict.level,
                title: verdict.title.clone(),
                outcome: verdict.outcome,
                reason: verdict.reason.clone(),
                clause: rule.map(|r| r.clause.clone()).unwrap_or_default(),
                fix: rule.map(|r| r.fix.clone()).unwrap_or_default(),
                evidence: verdict.evidence.clone(),
                curl: if shows_evidence {
                    verdict
                        .evidence
                        .iter()
                        .filter_map(|id| curl_of(*id))
                        .collect()
                } else {
                    Vec::new()
                },
                reproduce: reproduce_of(&verdict.rule),
                waiver: None,
            }
        })
        .collect()
}

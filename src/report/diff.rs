//! `spoke diff`: two JSON reports compared rule by rule — verdicts that changed, rules added or
//! removed, and for each change the cited exchanges whose answers differ.

use super::model::REPORT_FORMAT_VERSION;
use crate::controls::one_line;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Characters of a body shown in a diff.
const BODY_SHOWN: usize = 300;

/// Why two reports could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a spoke JSON report of the format this version reads.
    #[error("{path}: {message}")]
    NotAReport {
        /// The path given.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The part of a JSON report a diff reads.
#[derive(Debug, Clone, Deserialize)]
struct ReportDoc {
    tool: String,
    catalog_version: String,
    partner: PartnerDoc,
    seed: u64,
    started_at: String,
    exit_code: i32,
    verdicts: Vec<VerdictDoc>,
    exchanges: Vec<ExchangeDoc>,
}

#[derive(Debug, Clone, Deserialize)]
struct PartnerDoc {
    name: String,
    profile: String,
    profile_digest: String,
}

#[derive(Debug, Clone, Deserialize)]
struct VerdictDoc {
    rule: String,
    level: String,
    title: String,
    outcome: String,
    reason: String,
    evidence: Vec<usize>,
    #[serde(default)]
    waiver: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct ExchangeDoc {
    id: usize,
    purpose: String,
    method: String,
    url: String,
    status: Option<u16>,
    response_body: Option<String>,
    error: Option<String>,
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RunSide {
    /// The report file.
    pub file: String,
    /// `spoke <version>` that wrote it.
    pub tool: String,
    /// The partner's name and profile file.
    pub partner: String,
    /// The profile's digest.
    pub profile_digest: String,
    /// The rule catalog's version.
    pub catalog_version: String,
    /// The run's seed.
    pub seed: u64,
    /// When the run started.
    pub started_at: String,
    /// The run's exit code.
    pub exit_code: i32,
}

/// How a rule's verdict moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards failure (e.g. pass → fail, warn → fail, pass → warn).
    Worse,
    /// Towards passing.
    Better,
    /// Another outcome of the same weight (e.g. pass ↔ skip).
    Sideways,
}

/// One cited exchange in either run, as a diff shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExchangeSide {
    /// The exchange id in its report.
    pub id: usize,
    /// HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Why no answer came, if so.
    pub error: Option<String>,
    /// The start of the response body.
    pub body: Option<String>,
}

/// A request made in either run whose answer differs.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceChange {
    /// Why the Connector made the call.
    pub purpose: String,
    /// Method and path (host and port left out: they change between runs).
    pub request: String,
    /// In the old run, if cited there.
    pub old: Option<ExchangeSide>,
    /// In the new run, if cited there.
    pub new: Option<ExchangeSide>,
}

/// A rule whose verdict changed.
#[derive(Debug, Clone, Serialize)]
pub struct RuleChange {
    /// Rule id.
    pub rule: String,
    /// MUST or SHOULD.
    pub level: String,
    /// Rule title.
    pub title: String,
    /// The old outcome (with ` (waived)` when a waiver covered it).
    pub old_outcome: String,
    /// The new outcome.
    pub new_outcome: String,
    /// The old reason.
    pub old_reason: String,
    /// The new reason.
    pub new_reason: String,
    /// Worse, better or sideways.
    pub direction: Direction,
    /// The cited exchanges whose answers differ.
    pub evidence: Vec<EvidenceChange>,
}

/// A rule present in one report only.
#[derive(Debug, Clone, Serialize)]
pub struct RuleOnly {
    /// Rule id.
    pub rule: String,
    /// Rule title.
    pub title: String,
    /// Its outcome there.
    pub outcome: String,
}

/// Two runs compared.
#[derive(Debug, Clone, Serialize)]
pub struct ReportDiff {
    /// The earlier run.
    pub old: RunSide,
    /// The later run.
    pub new: RunSide,
    /// Rules whose verdict changed, in the new report's order.
    pub changed: Vec<RuleChange>,
    /// Rules only in the new report.
    pub added: Vec<RuleOnly>,
    /// Rules only in the old report.
    pub removed: Vec<RuleOnly>,
    /// Rules with the same verdict in both.
    pub unchanged: usize,
    /// Changed rules that got worse, and added rules that do not pass.
    pub regressions: usize,
}

impl ReportDiff {
    /// Whether some rule got worse: `spoke diff` then exits 1.
    pub fn regressed(&self) -> bool {
        self.regressions > 0
    }
}

/// The weight of an outcome: the higher, the further from passing.
fn weight(outcome: &str) -> u8 {
    match outcome {
        "pass" | "skip" => 0,
        "warn" => 1,
        "inconclusive" | "error" => 2,
        _ => 3,
    }
}

fn shown_outcome(verdict: &VerdictDoc) -> String {
    match verdict.waiver {
        Some(_) => format!("{} (waived)", verdict.outcome),
        None => verdict.outcome.clone(),
    }
}

fn load(path: &Path) -> Result<ReportDoc, DiffError> {
    let file = path.display().to_string();
    let not_a_report = |message: String| DiffError::NotAReport {
        path: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| DiffError::Read {
        path: file.clone(),
        source,
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| not_a_report(format!("not JSON ({error})")))?;
    let looks_like_a_report =
        json.get("format_version").is_some() && json.get("verdicts").is_some_and(|v| v.is_array());
    if !looks_like_a_report {
        return Err(not_a_report(
            "not a spoke report (write one with `spoke certify --report json:PATH`)".into(),
        ));
    }
    let version = json["format_version"].as_u64().unwrap_or_default();
    if version != u64::from(REPORT_FORMAT_VERSION) {
        return Err(not_a_report(format!(
            "report format {version}, but this spoke reads format {REPORT_FORMAT_VERSION}: compare reports written by the same spoke version"
        )));
    }
    serde_path_to_error::deserialize(json).map_err(|error| {
        not_a_report(format!(
            "a spoke report with a bad `{}`: {}",
            error.path(),
            error.inner()
        ))
    })
}

fn side(file: &Path, report: &ReportDoc) -> RunSide {
    RunSide {
        file: file.display().to_string(),
        tool: report.tool.clone(),
        partner: format!("{} ({})", report.partner.name, report.partner.profile),
        profile_digest: report.partner.profile_digest.clone(),
        catalog_version: report.catalog_version.clone(),
        seed: report.seed,
        started_at: report.started_at.clone(),
        exit_code: report.exit_code,
    }
}

/// The method and path of a URL, without scheme, host and port.
fn request_line(exchange: &ExchangeDoc) -> String {
    let path = reqwest::Url::parse(&exchange.url)
        .map(|url| match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
        .unwrap_or_else(|_| exchange.url.clone());
    format!("{} {path}", exchange.method)
}

fn exchange_side(exchange: &ExchangeDoc) -> ExchangeSide {
    ExchangeSide {
        id: exchange.id,
        status: exchange.status,
        error: exchange.error.clone(),
        body: exchange.response_body.as_ref().map(|body| {
            let cut: String = body.chars().take(BODY_SHOWN).collect();
            if cut.len() < body.len() {
                format!("{cut}…")
            } else {
                cut
            }
        }),
    }
}

/// The cited exchanges of one rule in both runs, paired by purpose and request, keeping the
/// pairs whose answers differ.
fn evidence_changes(
    old: &ReportDoc,
    old_verdict: &VerdictDoc,
    new: &ReportDoc,
    new_verdict: &VerdictDoc,
) -> Vec<EvidenceChange> {
    type Key = (String, String);
    let cited = |report: &ReportDoc, verdict: &VerdictDoc| -> Vec<(Key, ExchangeSide)> {
        verdict
            .evidence
            .iter()
            .filter_map(|id| report.exchanges.iter().find(|e| e.id == *id))
            .map(|e| ((e.purpose.clone(), request_line(e)), exchange_side(e)))
            .collect()
    };
    let mut pairs: BTreeMap<Key, (Option<ExchangeSide>, Option<ExchangeSide>)> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    for (key, exchange) in cited(old, old_verdict) {
        if !pairs.contains_key(&key) {
            order.push(key.clone());
        }
        pairs.entry(key).or_default().0.get_or_insert(exchange);
    }
    for (key, exchange) in cited(new, new_verdict) {
        if !pairs.contains_key(&key) {
            order.push(key.clone());
        }
        pairs.entry(key).or_default().1.get_or_insert(exchange);
    }
    order
        .into_iter()
        .filter_map(|key| {
            let (old, new) = pairs.remove(&key)?;
            let same = match (&old, &new) {
                (Some(a), Some(b)) => {
                    a.status == b.status && a.error == b.error && a.body == b.body
                }
                _ => false,
            };
            (!same).then_some(EvidenceChange {
                purpose: key.0,
                request: key.1,
                old,
                new,
            })
        })
        .collect()
}

/// Compares two JSON reports read from files.
pub fn diff_files(old_path: &Path, new_path: &Path) -> Result<ReportDiff, DiffError> {
    let old = load(old_path)?;
    let new = load(new_path)?;
    let mut changed = Vec::new();
    let mut added = Vec::new();
    let mut unchanged = 0;
    let mut regressions = 0;
    for new_verdict in &new.verdicts {
        let Some(old_verdict) = old.verdicts.iter().find(|v| v.rule == new_verdict.rule) else {
            if weight(&new_verdict.outcome) > 0 {
                regressions += 1;
            }
            added.push(RuleOnly {
                rule: new_verdict.rule.clone(),
                title: new_verdict.title.clone(),
                outcome: shown_outcome(new_verdict),
            });
            continue;
        };
        let (old_outcome, new_outcome) = (shown_outcome(old_verdict), shown_outcome(new_verdict));
        if old_outcome == new_outcome {
            unchanged += 1;
            continue;
        }
        let direction = match weight(&new_verdict.outcome).cmp(&weight(&old_verdict.outcome)) {
            std::cmp::Ordering::Greater => Direction::Worse,
            std::cmp::Ordering::Less => Direction::Better,
            std::cmp::Ordering::Equal => Direction::Sideways,
        };
        if direction == Direction::Worse {
            regressions += 1;
        }
        changed.push(RuleChange {
            rule: new_verdict.rule.clone(),
            level: new_verdict.level.clone(),
            title: new_verdict.title.clone(),
            old_outcome,
            new_outcome,
            old_reason: old_verdict.reason.clone(),
            new_reason: new_verdict.reason.clone(),
            direction,
            evidence: evidence_changes(&old, old_verdict, &new, new_verdict),
        });
    }
    let removed = old
        .verdicts
        .iter()
        .filter(|v| !new.verdicts.iter().any(|n| n.rule == v.rule))
        .map(|v| RuleOnly {
            rule: v.rule.clone(),
            title: v.title.clone(),
            outcome: shown_outcome(v),
        })
        .collect();
    Ok(ReportDiff {
        old: side(old_path, &old),
        new: side(new_path, &new),
        changed,
        added,
        removed,
        unchanged,
        regressions,
    })
}

fn describe(side: &Option<ExchangeSide>) -> String {
    match side {
        None => "not cited".into(),
        Some(ExchangeSide {
            id,
            status: Some(status),
            ..
        }) => format!("#{id} HTTP {status}"),
        Some(ExchangeSide {
            id,
            error: Some(error),
            ..
        }) => format!("#{id} no answer: {}", one_line(error)),
        Some(ExchangeSide { id, .. }) => format!("#{id} no answer"),
    }
}

/// Characters of a body shown in the terminal.
const BODY_SHOWN_TEXT: usize = 120;

fn short(body: Option<&str>) -> String {
    match body {
        None => "(none)".into(),
        Some(body) if body.chars().count() > BODY_SHOWN_TEXT => {
            let cut: String = body.chars().take(BODY_SHOWN_TEXT).collect();
            format!("{}…", one_line(&cut))
        }
        Some(body) => one_line(body).into_owned(),
    }
}

/// Renders a diff for a terminal or a log, each fact on its line: text from the runs (reasons,
/// bodies, what the partner answered) has its control characters shown escaped.
pub fn render_text(diff: &ReportDiff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "spoke diff: {} → {}", diff.old.file, diff.new.file);
    for (name, side) in [("old", &diff.old), ("new", &diff.new)] {
        let _ = writeln!(
            out,
            "  {name}: {}, seed {}, catalog {}, {}, started {}, exit {}",
            one_line(&side.partner),
            side.seed,
            side.catalog_version,
            side.tool,
            side.started_at,
            side.exit_code
        );
    }
    if diff.old.profile_digest != diff.new.profile_digest {
        let _ = writeln!(
            out,
            "  note: the profiles differ ({} → {})",
            diff.old.profile_digest, diff.new.profile_digest
        );
    }
    if diff.old.catalog_version != diff.new.catalog_version {
        let _ = writeln!(
            out,
            "  note: the rule catalogs differ ({} → {})",
            diff.old.catalog_version, diff.new.catalog_version
        );
    }
    if diff.old.seed != diff.new.seed {
        let _ = writeln!(
            out,
            "  note: the seeds differ, so the data sent differs too; pass --seed {} to compare like with like",
            diff.old.seed
        );
    }
    if diff.changed.is_empty() {
        let _ = writeln!(out, "\nno verdict changed");
    } else {
        let _ = writeln!(out, "\nchanged verdicts ({}):", diff.changed.len());
    }
    for change in &diff.changed {
        let _ = writeln!(
            out,
            "  {:<10} {:<6} {} → {} ({})  {}",
            change.rule,
            change.level,
            change.old_outcome,
            change.new_outcome,
            match change.direction {
                Direction::Worse => "worse",
                Direction::Better => "better",
                Direction::Sideways => "sideways",
            },
            one_line(&change.title)
        );
        let _ = writeln!(out, "      was: {}", one_line(&change.old_reason));
        let _ = writeln!(out, "      now: {}", one_line(&change.new_reason));
        for evidence in &change.evidence {
            let _ = writeln!(
                out,
                "      {} ({}): {} → {}",
                one_line(&evidence.request),
                one_line(&evidence.purpose),
                describe(&evidence.old),
                describe(&evidence.new)
            );
            // Bodies only where both runs made the request and the answers differ.
            if let (Some(old), Some(new)) = (&evidence.old, &evidence.new) {
                if old.body != new.body {
                    let _ = writeln!(out, "        old body: {}", short(old.body.as_deref()));
                    let _ = writeln!(out, "        new body: {}", short(new.body.as_deref()));
                }
            }
        }
    }
    for (heading, rules) in [
        ("only in the new report", &diff.added),
        ("only in the old report", &diff.removed),
    ] {
        if !rules.is_empty() {
            let _ = writeln!(out, "\nrules {heading} ({}):", rules.len());
            for rule in rules {
                let _ = writeln!(
                    out,
                    "  {:<10} {:<12} {}",
                    rule.rule,
                    rule.outcome,
                    one_line(&rule.title)
                );
            }
        }
    }
    let better = diff
        .changed
        .iter()
        .filter(|c| c.direction == Direction::Better)
        .count();
    let _ = writeln!(
        out,
        "\nresult: {} rule(s) worse, {better} better, {} unchanged ({})",
        diff.regressions,
        diff.unchanged,
        if diff.regressed() {
            "regressed, exit 1"
        } else {
            "no regression, exit 0"
        }
    );
    out
}

/// Renders a diff as JSON.
pub fn render_json(diff: &ReportDiff) -> String {
    super::json::to_string_pretty(diff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_weigh_from_pass_to_fail() {
        assert!(weight("pass") == weight("skip"));
        assert!(weight("warn") > weight("pass"));
        assert!(weight("inconclusive") > weight("warn"));
        assert!(weight("fail") > weight("error"));
    }
}

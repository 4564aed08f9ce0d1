//! Waivers: a file of agreed exceptions (rule, reason, owner, expiry). A waived failure no longer
//! fails the run but stays visible in every report; an expired waiver, or one whose rule no
//! longer fails, fails the run until it is removed, so waivers cannot outlive their reason.

use super::model::RunReport;
use crate::exit_codes;
use crate::profile::Problem;
use crate::suite::{Catalog, Level, Outcome};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// One agreed exception, as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    /// The rule id.
    pub rule: String,
    /// Why the failure is accepted for now.
    pub reason: String,
    /// Who answers for it.
    pub owner: String,
    /// The last day it holds (inclusive).
    pub expires: NaiveDate,
}

/// What became of a waiver in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaiverStatus {
    /// The rule failed (or warned, or was inconclusive) and the waiver covers it.
    Applied,
    /// The waiver's date has passed: it fails the run.
    Expired,
    /// The rule no longer fails (pass or skip): the waiver fails the run until removed.
    Stale,
    /// The rule was not run (`--only`): the waiver was not used.
    NotRun,
    /// The rule could not be checked (error): the waiver was not used.
    NotChecked,
}

impl WaiverStatus {
    /// The status's name as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaiverStatus::Applied => "applied",
            WaiverStatus::Expired => "expired",
            WaiverStatus::Stale => "stale",
            WaiverStatus::NotRun => "not-run",
            WaiverStatus::NotChecked => "not-checked",
        }
    }

    /// Whether this waiver fails the run until someone removes or renews it.
    pub fn fails_the_run(self) -> bool {
        matches!(self, WaiverStatus::Expired | WaiverStatus::Stale)
    }
}

/// A waiver and what became of it, as every report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverOutcome {
    /// The waiver.
    #[serde(flatten)]
    pub waiver: Waiver,
    /// What became of it.
    pub status: WaiverStatus,
    /// One line for the reader: what it covered or what to do.
    pub message: String,
}

/// A loaded waivers file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waivers {
    /// The file, as given.
    pub file: String,
    /// The waivers, in file order.
    pub waivers: Vec<Waiver>,
}

/// Why a waivers file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WaiverError {
    /// The file could not be read.
    #[error("cannot read waivers file {path}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid waivers file.
    #[error("{}", .problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    waiver: Vec<Spanned<WaiverShape>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverShape {
    rule: Spanned<String>,
    reason: Spanned<String>,
    owner: Spanned<String>,
    expires: Spanned<toml::Value>,
}

impl Waivers {
    /// Reads and checks a waivers file against the rule catalog.
    pub fn load(path: &std::path::Path, catalog: &Catalog) -> Result<Waivers, WaiverError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| WaiverError::Read {
            path: file.clone(),
            source,
        })?;
        Waivers::parse(&file, &text, catalog)
    }

    /// Parses and checks waivers text; `file` names it in problems.
    pub fn parse(file: &str, text: &str, catalog: &Catalog) -> Result<Waivers, WaiverError> {
        let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let problem = |offset: Option<usize>, key: &str, message: String| Problem {
            file: file.to_owned(),
            line: offset.map(line_at),
            key: key.to_owned(),
            message,
        };
        let shape: FileShape = toml::from_str(text).map_err(|error| {
            let message = error.message().trim_end().replace('\n', " ");
            let key =
                if message.starts_with("unknown field") || message.starts_with("missing field") {
                    "waiver"
                } else {
                    "(file)"
                };
            let message = if message.starts_with("missing field") {
                format!("{message}; a waiver has rule, reason, owner and expires")
            } else {
                message
            };
            WaiverError::Invalid {
                problems: vec![problem(error.span().map(|span| span.start), key, message)],
            }
        })?;
        let mut problems = Vec::new();
        let mut waivers = Vec::new();
        let mut first_line_of: BTreeMap<String, usize> = BTreeMap::new();
        for (index, entry) in shape.waiver.iter().enumerate() {
            let key = |name: &str| format!("waiver[{index}].{name}");
            let entry = entry.get_ref();
            let rule_id = entry.rule.get_ref().trim();
            let rule_at = entry.rule.span().start;
            let rule = match catalog.rule(rule_id) {
                Some(rule) => Some(rule.id.clone()),
                None => {
                    let known: Vec<&str> = catalog.rules.iter().map(|r| r.id.as_str()).collect();
                    problems.push(problem(
                        Some(rule_at),
                        &key("rule"),
                        format!("no rule `{rule_id}`; rules: {}", known.join(", ")),
                    ));
                    None
                }
            };
            if let Some(rule) = &rule {
                if let Some(first) = first_line_of.get(rule) {
                    problems.push(problem(
                        Some(rule_at),
                        &key("rule"),
                        format!(
                            "a second waiver for {rule} (the first is on line {first}); keep one"
                        ),
                    ));
                } else {
                    first_line_of.insert(rule.clone(), line_at(rule_at));
                }
            }
            for (name, value) in [("reason", &entry.reason), ("owner", &entry.owner)] {
                if value.get_ref().trim().is_empty() {
                    problems.push(problem(
                        Some(value.span().start),
                        &key(name),
                        format!(
                            "is empty; say {}",
                            if name == "owner" {
                                "who answers for this waiver"
                            } else {
                                "why the failure is accepted"
                            }
                        ),
                    ));
                }
            }
            let expires = match parse_date(entry.expires.get_ref()) {
                Some(date) => Some(date),
                None => {
                    problems.push(problem(
                        Some(entry.expires.span().start),
                        &key("expires"),
                        format!(
                            "`{}` is not a date; write it as 2027-03-31",
                            entry.expires.get_ref()
                        ),
                    ));
                    None
                }
            };
            if let (Some(rule), Some(expires)) = (rule, expires) {
                waivers.push(Waiver {
                    rule,
                    reason: entry.reason.get_ref().trim().to_owned(),
                    owner: entry.owner.get_ref().trim().to_owned(),
                    expires,
                });
            }
        }
        if problems.is_empty() {
            Ok(Waivers {
                file: file.to_owned(),
                waivers,
            })
        } else {
            problems.sort_by_key(|p| p.line.unwrap_or(0));
            Err(WaiverError::Invalid { problems })
        }
    }
}

/// A TOML local date (`2027-03-31`) or a string holding one.
fn parse_date(value: &toml::Value) -> Option<NaiveDate> {
    match value {
        toml::Value::Datetime(datetime) if datetime.time.is_none() && datetime.offset.is_none() => {
            let date = datetime.date?;
            NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())
        }
        toml::Value::String(text) => NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok(),
        _ => None,
    }
}

/// Applies `waivers` to a finished run as of `today`: marks the waived verdicts, records what
/// became of every waiver, and decides the exit code again.
pub fn apply(report: &mut RunReport, waivers: &Waivers, today: NaiveDate) {
    let mut outcomes = Vec::new();
    for waiver in &waivers.waivers {
        let verdict = report.verdicts.iter_mut().find(|v| v.rule == waiver.rule);
        let outcome = verdict.as_ref().map(|verdict| verdict.outcome);
        let (status, message) = judge(waiver, outcome, &waivers.file, today);
        if status == WaiverStatus::Applied {
            if let Some(verdict) = verdict {
                verdict.waiver = Some(waiver.clone());
            }
        }
        outcomes.push(WaiverOutcome {
            waiver: waiver.clone(),
            status,
            message,
        });
    }
    report.waivers = outcomes;
    let verdicts: Vec<_> = report
        .verdicts
        .iter()
        .map(|v| (v.level, v.outcome, v.waiver.is_some()))
        .collect();
    report.exit_code = exit_code(
        report.unreachable.is_some() || report.credentials_refused.is_some(),
        &verdicts,
        &report.waivers,
    );
}

/// The exit code that `verdicts` give with `waivers` judged as of `day`: how `spoke bundle
/// verify` re-derives a waived run's exit code from re-derived verdicts.
pub fn rederived_exit_code(
    verdicts: &[crate::suite::Verdict],
    waivers: &[Waiver],
    day: NaiveDate,
) -> i32 {
    let outcomes: Vec<WaiverOutcome> = waivers
        .iter()
        .map(|waiver| {
            let outcome = verdicts
                .iter()
                .find(|v| v.rule == waiver.rule)
                .map(|v| v.outcome);
            let (status, message) = judge(waiver, outcome, "the waivers file", day);
            WaiverOutcome {
                waiver: waiver.clone(),
                status,
                message,
            }
        })
        .collect();
    let waived = |rule: &str| {
        outcomes
            .iter()
            .any(|o| o.status == WaiverStatus::Applied && o.waiver.rule == rule)
    };
    let verdicts: Vec<_> = verdicts
        .iter()
        .map(|v| (v.level, v.outcome, waived(&v.rule)))
        .collect();
    exit_code(false, &verdicts, &outcomes)
}

/// What becomes of `waiver` when its rule ended in `outcome` (`None`: not run) on `today`.
fn judge(
    waiver: &Waiver,
    outcome: Option<Outcome>,
    file: &str,
    today: NaiveDate,
) -> (WaiverStatus, String) {
    match outcome {
        _ if waiver.expires < today => (
            WaiverStatus::Expired,
            format!(
                "the waiver of {} expired on {}: remove it from {} (fix the rule, or agree a new waiver)",
                waiver.rule, waiver.expires, file
            ),
        ),
        None => (
            WaiverStatus::NotRun,
            format!("{} was not run; the waiver was not used", waiver.rule),
        ),
        Some(outcome @ (Outcome::Fail | Outcome::Warn | Outcome::Inconclusive)) => (
            WaiverStatus::Applied,
            format!(
                "{} {} is waived until {} ({}): {}",
                waiver.rule,
                outcome.as_str(),
                waiver.expires,
                waiver.owner,
                waiver.reason
            ),
        ),
        Some(outcome @ (Outcome::Pass | Outcome::Skip)) => (
            WaiverStatus::Stale,
            format!(
                "{} {} now: remove its waiver from {}",
                waiver.rule,
                if outcome == Outcome::Pass {
                    "passes"
                } else {
                    "does not apply"
                },
                file
            ),
        ),
        Some(Outcome::Error) => (
            WaiverStatus::NotChecked,
            format!(
                "{} could not be checked; the waiver was not used",
                waiver.rule
            ),
        ),
    }
}

/// The exit code of a run from its verdicts (level, outcome, waived) and its waivers.
fn exit_code(
    unreachable: bool,
    verdicts: &[(Level, Outcome, bool)],
    waivers: &[WaiverOutcome],
) -> i32 {
    if unreachable {
        return exit_codes::RUN_FAILED;
    }
    let unwaived_must_broken = verdicts.iter().any(|&(level, outcome, waived)| {
        !waived
            && (outcome == Outcome::Fail
                || (outcome == Outcome::Inconclusive && level == Level::Must))
    });
    let waiver_to_remove = waivers.iter().any(|w| w.status.fails_the_run());
    if unwaived_must_broken || waiver_to_remove {
        exit_codes::NOT_CONFORMANT
    } else if verdicts
        .iter()
        .any(|&(_, outcome, _)| outcome == Outcome::Error)
    {
        exit_codes::RUN_FAILED
    } else {
        exit_codes::CONFORMANT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Waivers, String> {
        Waivers::parse("waivers.toml", text, &Catalog::builtin()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_file_loads_with_toml_dates_and_quoted_dates() {
        let waivers = parse(
            r#"
[[waiver]]
rule = "LEAD-002"
reason = "owner assignment ships in 4.2"
owner = "jane@partner.example"
expires = 2027-03-31

[[waiver]]
rule = "rob-002"
reason = "sandbox is slow"
owner = "ops"
expires = "2027-01-15"
"#,
        )
        .unwrap();
        assert_eq!(waivers.waivers.len(), 2);
        assert_eq!(waivers.waivers[0].expires.to_string(), "2027-03-31");
        assert_eq!(waivers.waivers[1].rule, "ROB-002", "ids are the catalog's");
    }

    #[test]
    fn an_empty_file_has_no_waivers() {
        assert!(parse("").unwrap().waivers.is_empty());
    }

    #[test]
    fn each_kind_of_mistake_is_named_with_its_line() {
        let cases = [
            (
                "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\nticket = 4\n",
                "waivers.toml:6: waiver: unknown field `ticket`",
            ),
            (
                "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"r\"\nexpires = 2027-01-01\n",
                "waivers.toml:1: waiver: missing field `owner`",
            ),
            (
                "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"31/03/2027\"\n",
                "waivers.toml:5: waiver[0].expires: `\"31/03/2027\"` is not a date",
            ),
            (
                "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-02-30\n",
                "waivers.toml:5: (file): invalid date-time",
            ),
            (
                "[[waiver]]\nrule = \"LEAD-999\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n",
                "waivers.toml:2: waiver[0].rule: no rule `LEAD-999`",
            ),
            (
                "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n\n[[waiver]]\nrule = \"lead-002\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n",
                "waivers.toml:8: waiver[1].rule: a second waiver for LEAD-002 (the first is on line 2)",
            ),
            (
                "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"  \"\nowner = \"o\"\nexpires = 2027-01-01\n",
                "waivers.toml:3: waiver[0].reason: is empty",
            ),
            ("[[waiver]\n", "waivers.toml:1: (file):"),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{expected}\n got: {error}");
        }
    }
}

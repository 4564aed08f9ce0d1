//! Verdicts: what each rule concluded, why, and the exchanges that show it.

use super::catalog::Level;
use serde::Serialize;

/// The outcome of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The partner meets the rule.
    Pass,
    /// A MUST rule is broken.
    Fail,
    /// A SHOULD rule (or the SHOULD part of a rule) is broken.
    Warn,
    /// The rule does not apply to the declared capabilities.
    Skip,
    /// A precondition is missing in the sandbox.
    Inconclusive,
    /// The rule could not be checked (no answer, timeout).
    Error,
}

impl Outcome {
    /// The word shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Skip => "skip",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Error => "error",
        }
    }
}

/// What a rule's check found, before its level is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Met, with a one-line summary.
    Pass {
        /// What was seen.
        reason: String,
        /// Exchanges examined.
        evidence: Vec<usize>,
    },
    /// Broken.
    Violated {
        /// Why.
        reason: String,
        /// Exchanges that show it.
        evidence: Vec<usize>,
        /// Only the rule's SHOULD part is broken.
        soft: bool,
    },
    /// A precondition is missing in the sandbox.
    Inconclusive {
        /// What to add.
        reason: String,
    },
    /// Could not be checked.
    Error {
        /// Why.
        reason: String,
        /// Exchanges of the attempt.
        evidence: Vec<usize>,
    },
}

/// The verdict on one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Rule id.
    pub rule: String,
    /// Rule level.
    pub level: Level,
    /// Rule title.
    pub title: String,
    /// The outcome.
    pub outcome: Outcome,
    /// One line saying why.
    pub reason: String,
    /// The exchanges that show it, by id.
    pub evidence: Vec<usize>,
}

impl Verdict {
    /// The error verdict of a catalog rule this build has no check for.
    pub fn without_check(rule: &super::catalog::Rule) -> Verdict {
        Verdict::from_finding(
            rule,
            Finding::Error {
                reason: format!("This build of spoke has no check for {}.", rule.id),
                evidence: Vec::new(),
            },
        )
    }

    /// Builds a verdict from a finding at `level`.
    pub fn from_finding(rule: &super::catalog::Rule, finding: Finding) -> Verdict {
        let (outcome, reason, evidence) = match finding {
            Finding::Pass { reason, evidence } => (Outcome::Pass, reason, evidence),
            Finding::Violated {
                reason,
                evidence,
                soft,
            } => {
                let outcome = if soft || rule.level == Level::Should {
                    Outcome::Warn
                } else {
                    Outcome::Fail
                };
                (outcome, reason, evidence)
            }
            Finding::Inconclusive { reason } => (Outcome::Inconclusive, reason, Vec::new()),
            Finding::Error { reason, evidence } => (Outcome::Error, reason, evidence),
        };
        let mut evidence = evidence;
        evidence.retain(|id| *id > 0);
        evidence.sort_unstable();
        evidence.dedup();
        Verdict {
            rule: rule.id.clone(),
            level: rule.level,
            title: rule.title.clone(),
            outcome,
            reason,
            evidence,
        }
    }

    /// A skipped rule.
    pub fn skipped(rule: &super::catalog::Rule, reason: &str) -> Verdict {
        Verdict {
            rule: rule.id.clone(),
            level: rule.level,
            title: rule.title.clone(),
            outcome: Outcome::Skip,
            reason: reason.to_owned(),
            evidence: Vec::new(),
        }
    }
}

//! The conformance engine: loads the rule catalog, runs a Connector session, and turns what it
//! observed into one verdict per rule.

pub mod catalog;
pub mod checks;
pub mod verdict;

pub use catalog::{Applies, Catalog, Level, Rule};
pub use checks::Settings;
pub use verdict::{Finding, Outcome, Verdict};

use crate::connector::session::Observations;
use crate::profile::Profile;
use std::time::{Duration, Instant};

/// When a whole run must end (`--deadline`), counted from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The run's start.
    pub started: Instant,
    /// How long the run may take.
    pub after: Duration,
}

impl Deadline {
    /// How long past the deadline a run still judges what it has: rules whose turn comes later
    /// are not judged.
    pub const JUDGING_GRACE: Duration = Duration::from_millis(250);

    /// How long past the deadline a run still masks the evidence it has: bodies whose turn comes
    /// later are withheld rather than shown unmasked.
    pub const MASKING_GRACE: Duration = Duration::from_millis(500);

    /// The instant it passes.
    pub fn at(&self) -> Instant {
        self.started + self.after
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        self.passed_by(Duration::ZERO)
    }

    /// Whether it has passed by `grace` or more.
    pub fn passed_by(&self, grace: Duration) -> bool {
        self.started.elapsed() >= self.after + grace
    }

    /// The time left.
    pub fn remaining(&self) -> Duration {
        self.after.saturating_sub(self.started.elapsed())
    }

    /// `what` happened because the deadline had passed, as a reason names it.
    pub fn reason(&self, what: &str) -> String {
        format!(
            "{what}: the run's deadline of {} ms had passed",
            self.after.as_millis()
        )
    }
}

/// Judges every rule of `catalog` (or only `only`, when given) on the observations.
pub fn judge(
    catalog: &Catalog,
    profile: &Profile,
    observations: &Observations,
    exchanges: &[crate::connector::Exchange],
    settings: &Settings,
    only: &[String],
) -> Vec<Verdict> {
    judge_until(
        catalog,
        profile,
        observations,
        exchanges,
        settings,
        only,
        None,
    )
}

/// [`judge`], but a rule whose turn comes later than [`Deadline::JUDGING_GRACE`] past
/// `deadline` is not judged: it ends in `error`, the reason naming the deadline.
pub fn judge_until(
    catalog: &Catalog,
    profile: &Profile,
    observations: &Observations,
    exchanges: &[crate::connector::Exchange],
    settings: &Settings,
    only: &[String],
    deadline: Option<Deadline>,
) -> Vec<Verdict> {
    let context = checks::Context {
        profile,
        observations,
        exchanges,
        settings,
    };
    catalog
        .rules
        .iter()
        // The sending direction is judged by `spoke connector`, over calls a certify run
        // never sees.
        .filter(|rule| !rule.applies.contains(&Applies::Sends))
        .filter(|rule| only.is_empty() || only.iter().any(|id| id.eq_ignore_ascii_case(&rule.id)))
        .map(|rule| {
            if let Some(missing) = rule.applies.iter().find(|a| !a.holds(profile)) {
                return Verdict::skipped(rule, missing.skip_reason());
            }
            let disabled = settings
                .disabled_checks
                .iter()
                .any(|id| id.eq_ignore_ascii_case(&rule.id));
            if disabled {
                let unchecked = Finding::Pass {
                    reason: "The check is disabled.".into(),
                    evidence: Vec::new(),
                };
                return Verdict::from_finding(rule, unchecked);
            }
            if let Some(deadline) =
                deadline.filter(|deadline| deadline.passed_by(Deadline::JUDGING_GRACE))
            {
                let unjudged = Finding::Error {
                    reason: deadline.reason("not judged"),
                    evidence: Vec::new(),
                };
                return Verdict::from_finding(rule, unjudged);
            }
            match checks::check_for(&rule.id) {
                Some(check) => Verdict::from_finding(rule, checks::in_sentences(check(&context))),
                None => Verdict::without_check(rule),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_rule_has_a_check_and_applies_is_nonempty() {
        let catalog = Catalog::builtin();
        for rule in &catalog.rules {
            let sends = rule.applies.contains(&Applies::Sends);
            let checked = if sends {
                crate::inbound::checks::check_for(&rule.id).is_some()
            } else {
                checks::check_for(&rule.id).is_some()
            };
            assert!(
                checked && sends == rule.id.starts_with("SEND-"),
                "{} has no check",
                rule.id
            );
            assert!(
                !rule.clause.is_empty() && !rule.fix.is_empty(),
                "{}",
                rule.id
            );
        }
        let mut ids: Vec<&str> = catalog.rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), catalog.rules.len(), "rule ids repeat");
    }
}

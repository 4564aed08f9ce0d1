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

/// Judges every rule of `catalog` (or only `only`, when given) on the observations.
pub fn judge(
    catalog: &Catalog,
    profile: &Profile,
    observations: &Observations,
    exchanges: &[crate::connector::Exchange],
    settings: &Settings,
    only: &[String],
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

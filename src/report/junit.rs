//! The JUnit XML report: one testcase per rule; fail → failure, error and inconclusive → error,
//! skip → skipped.
//!
//! A warn stays a passing case (it does not fail the run) but is named `[warn] RULE title` and
//! carries its reason in `<system-err>`: GitLab, dorny/test-reporter and the mikepenz action
//! list a passing case by its name alone and show output only for failures, while Jenkins shows
//! `system-err` as the case's "Standard Error". Each case's `time` is the sum of its evidence
//! exchanges' durations. Partner text has its control characters shown escaped: XML 1.0 cannot
//! hold most of them, and quick-junit would drop them silently.

use super::model::{RunReport, VerdictEntry};
use crate::controls::one_line;
use crate::suite::Outcome;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// Renders the JUnit report.
pub fn render(report: &RunReport) -> String {
    let mut junit = Report::new("spoke certify");
    let mut suite = TestSuite::new(one_line(&format!(
        "{} ({})",
        report.partner.name, report.partner.profile
    )));
    suite.set_time(Duration::from_millis(report.duration_ms));
    if report.partner.insecure {
        suite.add_property(quick_junit::Property::new(
            "tls-verified",
            "false (--insecure)",
        ));
    }
    for entry in &report.verdicts {
        let mut status = match entry.outcome {
            // A waived verdict reads as skipped, the way expected failures usually do.
            _ if entry.waiver.is_some() => TestCaseStatus::skipped(),
            Outcome::Pass | Outcome::Warn => TestCaseStatus::success(),
            Outcome::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Outcome::Error | Outcome::Inconclusive => {
                TestCaseStatus::non_success(NonSuccessKind::Error)
            }
            Outcome::Skip => TestCaseStatus::skipped(),
        };
        if let Some(waiver) = &entry.waiver {
            status.set_message(one_line(&format!(
                "waived {}: {} (waiver until {}, {}: {})",
                entry.outcome.as_str(),
                entry.reason,
                waiver.expires,
                waiver.owner,
                waiver.reason
            )));
        } else if entry.outcome != Outcome::Pass {
            status.set_message(one_line(&format!(
                "{}: {}",
                entry.outcome.as_str(),
                entry.reason
            )));
        }
        if entry.waiver.is_none()
            && matches!(
                entry.outcome,
                Outcome::Fail | Outcome::Error | Outcome::Inconclusive
            )
        {
            status.set_description(details(entry));
        }
        let warned = entry.outcome == Outcome::Warn && entry.waiver.is_none();
        let name = format!("{} {}", entry.rule, entry.title);
        let mut case = TestCase::new(
            one_line(&if warned {
                format!("[warn] {name}")
            } else {
                name
            }),
            status,
        );
        case.set_classname(format!("spoke.{}", entry.level.as_str()));
        case.set_time(time_of(report, entry));
        if warned {
            case.set_system_err(format!("warning: {}", details(entry)));
        }
        suite.add_test_case(case);
    }
    // A waiver to remove fails the run: it shows as a failing case of its own.
    for waiver in report.waivers.iter().filter(|w| w.status.fails_the_run()) {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message(one_line(&waiver.message));
        status.set_description(one_line(&format!(
            "waiver: {} until {} ({}): {}",
            waiver.waiver.rule, waiver.waiver.expires, waiver.waiver.owner, waiver.waiver.reason
        )));
        let mut case = TestCase::new(
            one_line(&format!(
                "waiver {} {}",
                waiver.waiver.rule,
                waiver.status.as_str()
            )),
            status,
        );
        case.set_time(Duration::ZERO);
        case.set_classname("spoke.waivers");
        suite.add_test_case(case);
    }
    junit.add_test_suite(suite);
    let xml = junit
        .to_string()
        .expect("the JUnit model always serialises");
    without_root_skipped(xml)
}

/// What a failing or warning case says: the reason, the clause, the fix, how to reproduce it
/// and the curl commands, one per line, each line's partner text neutralised.
fn details(entry: &VerdictEntry) -> String {
    let mut lines = vec![
        one_line(&entry.reason).into_owned(),
        format!("clause: {}", one_line(&entry.clause)),
        format!("fix: {}", one_line(&entry.fix)),
        format!("reproduce: {}", one_line(&entry.reproduce)),
    ];
    lines.extend(entry.curl.iter().map(|curl| one_line(curl).into_owned()));
    lines.join("\n")
}

/// The time a rule's case took: its evidence exchanges' durations, to the microsecond where
/// recorded.
fn time_of(report: &RunReport, entry: &VerdictEntry) -> Duration {
    report
        .exchanges
        .iter()
        .filter(|exchange| entry.evidence.contains(&exchange.id))
        .map(|exchange| exchange.duration())
        .sum()
}

/// Drops the `skipped` count from the `<testsuites>` root: the Jenkins xUnit schema
/// (`tests/data/junit/junit-10.xsd`) does not allow it there; each `<testsuite>` keeps its own.
fn without_root_skipped(xml: String) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml;
    };
    let end = xml[start..].find('>').map_or(xml.len(), |at| start + at);
    let root = &xml[start..end];
    let Some(at) = root.find(" skipped=\"") else {
        return xml;
    };
    let value_end = root[at + 10..]
        .find('"')
        .map_or(root.len(), |q| at + 10 + q + 1);
    format!(
        "{}{}{}",
        &xml[..start + at],
        &root[value_end..],
        &xml[end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_loses_its_skipped_count_and_the_suites_keep_theirs() {
        let xml = r#"<?xml version="1.0"?>
<testsuites name="spoke certify" tests="2" skipped="1" failures="0" errors="0">
<testsuite name="p" tests="2" skipped="1" errors="0" failures="0"></testsuite></testsuites>"#;
        assert_eq!(
            without_root_skipped(xml.to_owned()),
            r#"<?xml version="1.0"?>
<testsuites name="spoke certify" tests="2" failures="0" errors="0">
<testsuite name="p" tests="2" skipped="1" errors="0" failures="0"></testsuite></testsuites>"#
        );
    }
}

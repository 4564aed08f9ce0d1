//! The JUnit XML report: one testcase per rule; fail → failure, error and inconclusive → error,
//! skip → skipped.

use super::model::RunReport;
use crate::suite::Outcome;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// Renders the JUnit report.
pub fn render(report: &RunReport) -> String {
    let mut junit = Report::new("spoke certify");
    let mut suite = TestSuite::new(format!(
        "{} ({})",
        report.partner.name, report.partner.profile
    ));
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
            status.set_message(format!(
                "waived {}: {} (waiver until {}, {}: {})",
                entry.outcome.as_str(),
                entry.reason,
                waiver.expires,
                waiver.owner,
                waiver.reason
            ));
        } else if entry.outcome != Outcome::Pass {
            status.set_message(format!("{}: {}", entry.outcome.as_str(), entry.reason));
        }
        if entry.waiver.is_none()
            && matches!(
                entry.outcome,
                Outcome::Fail | Outcome::Error | Outcome::Inconclusive
            )
        {
            let mut description = format!(
                "{}\nclause: {}\nfix: {}\nreproduce: {}",
                entry.reason, entry.clause, entry.fix, entry.reproduce
            );
            for curl in &entry.curl {
                description.push_str(&format!("\n{curl}"));
            }
            status.set_description(description);
        }
        let mut case = TestCase::new(format!("{} {}", entry.rule, entry.title), status);
        case.set_classname(format!("spoke.{}", entry.level.as_str()));
        if entry.outcome == Outcome::Warn {
            case.set_system_out(format!("warning: {}", entry.reason));
        }
        suite.add_test_case(case);
    }
    // A waiver to remove fails the run: it shows as a failing case of its own.
    for waiver in report.waivers.iter().filter(|w| w.status.fails_the_run()) {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message(waiver.message.clone());
        status.set_description(format!(
            "waiver: {} until {} ({}): {}",
            waiver.waiver.rule, waiver.waiver.expires, waiver.waiver.owner, waiver.waiver.reason
        ));
        let mut case = TestCase::new(
            format!("waiver {} {}", waiver.waiver.rule, waiver.status.as_str()),
            status,
        );
        case.set_classname("spoke.waivers");
        suite.add_test_case(case);
    }
    junit.add_test_suite(suite);
    let xml = junit
        .to_string()
        .expect("the JUnit model always serialises");
    without_root_skipped(xml)
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

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
            Outcome::Pass | Outcome::Warn => TestCaseStatus::success(),
            Outcome::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Outcome::Error | Outcome::Inconclusive => {
                TestCaseStatus::non_success(NonSuccessKind::Error)
            }
            Outcome::Skip => TestCaseStatus::skipped(),
        };
        if entry.outcome != Outcome::Pass {
            status.set_message(format!("{}: {}", entry.outcome.as_str(), entry.reason));
        }
        if matches!(
            entry.outcome,
            Outcome::Fail | Outcome::Error | Outcome::Inconclusive
        ) {
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
    junit.add_test_suite(suite);
    junit
        .to_string()
        .expect("the JUnit model always serialises")
}

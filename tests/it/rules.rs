//! The rules as the guide words them, each shown passing against a conformant partner and
//! failing (or not judged) against a faulty one.

use crate::helpers::mock_certify;
use spoke::certify::certify;
use spoke::partner::{Fault, Faults};
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use spoke::suite::Outcome;

async fn run(profile: Profile, faults: &[Fault], seed: u64) -> RunReport {
    let faults: Faults = faults.iter().copied().collect();
    certify(mock_certify(profile, faults, seed), &())
        .await
        .expect("the run starts")
}

/// The outcome and reason of `rule` in `report`.
fn verdict<'a>(report: &'a RunReport, rule: &str) -> (Outcome, &'a str) {
    let entry = report
        .verdicts
        .iter()
        .find(|v| v.rule == rule)
        .unwrap_or_else(|| panic!("{rule} was not judged"));
    (entry.outcome, entry.reason.as_str())
}

#[tokio::test]
async fn a_lookup_is_not_judged_against_a_staff_list_that_could_not_be_read() {
    for fault in [Fault::NoStaffList, Fault::StaffList500] {
        let report = run(Profile::reference(), &[fault], 3).await;
        let (outcome, reason) = verdict(&report, "STAFF-005");
        assert_eq!(outcome, Outcome::Error, "{fault}: {reason}");
        assert!(
            reason.contains("staff list could not be read"),
            "{fault}: {reason}"
        );
    }
}

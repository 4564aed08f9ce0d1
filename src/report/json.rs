//! The JSON report: the report model as is, field names stable and documented in the README.

use super::model::RunReport;

/// Renders the JSON report.
pub fn render(report: &RunReport) -> String {
    serde_json::to_string_pretty(report).expect("the report model always serialises")
}

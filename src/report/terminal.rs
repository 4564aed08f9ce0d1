//! The terminal report: one row per rule, evidence under failures, the coverage grid, totals.
//!
//! Every text that may come from the partner (or a file the user was given) goes through
//! [`controls::one_line`] before it is placed, and before any colour is added: a row is one
//! line, so a partner's `\n` would forge rows and its `ESC` would drive the terminal.

use super::model::{grid_axes, RunReport};
use crate::controls::one_line;
use crate::exit_codes;
use crate::suite::Outcome;
use std::fmt::Write;

/// Whether to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours on.
    pub color: bool,
}

impl Style {
    fn paint(self, outcome: Outcome, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match outcome {
            Outcome::Pass => "32",
            Outcome::Fail | Outcome::Error => "31",
            Outcome::Warn | Outcome::Inconclusive => "33",
            Outcome::Skip => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// Formats a duration in seconds with two decimals.
pub fn format_duration(ms: u64) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

/// Renders the report for a terminal or a log.
pub fn render(report: &RunReport, style: Style) -> String {
    render_ending(report, style, None)
}

/// [`render`], its result line replaced by `failure` when the run's files could not be written
/// (exit 3): the printed exit code is always the one the process ends with.
pub fn render_ending(report: &RunReport, style: Style, failure: Option<&str>) -> String {
    let mut out = String::new();
    let partner = &report.partner;
    let _ = writeln!(
        out,
        "spoke certify: {} ({}) at {}{}",
        one_line(&partner.name),
        one_line(&partner.profile),
        one_line(&partner.base_url),
        if partner.mock {
            " [built-in mock partner]"
        } else {
            ""
        }
    );
    if partner.insecure {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                Outcome::Warn,
                "TLS certificates were NOT verified (--insecure): the verdicts say nothing about the partner's TLS"
            )
        );
    }
    if !partner.faults.is_empty() {
        let _ = writeln!(out, "mock faults: {}", one_line(&partner.faults.join(", ")));
    }
    let _ = writeln!(
        out,
        "seed {} · scenario {} · catalog {} · {}",
        report.seed, report.scenario, report.catalog_version, report.tool
    );
    if let Some(refused) = &report.credentials_refused {
        let _ = writeln!(out, "{}", style.paint(Outcome::Error, refused));
    }
    if let Some(unreachable) = &report.unreachable {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                Outcome::Error,
                &format!(
                    "the partner could not be reached: {}",
                    one_line(unreachable)
                )
            )
        );
    }
    let _ = writeln!(out);
    let id_width = report
        .verdicts
        .iter()
        .map(|v| v.rule.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(out, "{:<id_width$}  LEVEL   VERDICT       REASON", "RULE");
    for entry in &report.verdicts {
        let verdict = match &entry.waiver {
            Some(_) => format!("{:<12}", format!("{} waived", entry.outcome.as_str())),
            None => format!("{:<12}", entry.outcome.as_str()),
        };
        let _ = writeln!(
            out,
            "{:<id_width$}  {:<6}  {}  {}",
            entry.rule,
            entry.level.as_str(),
            style.paint(entry.outcome, &verdict),
            one_line(&entry.reason)
        );
        if let Some(waiver) = &entry.waiver {
            let _ = writeln!(
                out,
                "{}waived until {} ({}): {}",
                " ".repeat(id_width + 2),
                waiver.expires,
                one_line(&waiver.owner),
                one_line(&waiver.reason)
            );
        }
        if matches!(
            entry.outcome,
            Outcome::Fail | Outcome::Warn | Outcome::Error | Outcome::Inconclusive
        ) {
            let indent = " ".repeat(id_width + 2);
            if !entry.fix.is_empty() && entry.outcome != Outcome::Error {
                let _ = writeln!(out, "{indent}fix: {}", entry.fix);
            }
            for id in entry.evidence.iter().take(3) {
                if let Some(exchange) = report.exchanges.iter().find(|e| e.id == *id) {
                    let answer = match (exchange.status, &exchange.error) {
                        (Some(status), _) => format!("HTTP {status}"),
                        (None, Some(error)) => one_line(error).into_owned(),
                        (None, None) => "no answer".into(),
                    };
                    let _ = writeln!(
                        out,
                        "{indent}evidence #{id}: {} {} → {answer}",
                        one_line(&exchange.method),
                        one_line(&exchange.url)
                    );
                }
            }
            if let Some(curl) = entry.curl.first() {
                let _ = writeln!(out, "{indent}curl: {}", one_line(curl));
            }
            let _ = writeln!(out, "{indent}reproduce: {}", one_line(&entry.reproduce));
        }
    }
    render_coverage(&mut out, report);
    for missing in &report.missing_in_sandbox {
        let _ = writeln!(out, "sandbox: {}", one_line(missing));
    }
    if !report.waivers.is_empty() {
        let _ = writeln!(out, "\nwaivers:");
        for waiver in &report.waivers {
            let line = format!(
                "  {:<11} {}",
                waiver.status.as_str(),
                one_line(&waiver.message)
            );
            let line = if waiver.status.fails_the_run() {
                style.paint(Outcome::Fail, &line)
            } else {
                line
            };
            let _ = writeln!(out, "{line}");
        }
    }
    let totals = &report.totals;
    let _ = writeln!(
        out,
        "\ntotals: {} pass, {} fail, {} warn, {} skip, {} inconclusive, {} error · {} exchanges in {}",
        totals.pass,
        totals.fail,
        totals.warn,
        totals.skip,
        totals.inconclusive,
        totals.error,
        report.exchanges.len(),
        format_duration(report.duration_ms)
    );
    let verdict = match report.exit_code {
        exit_codes::CONFORMANT => style.paint(Outcome::Pass, "CONFORMANT"),
        exit_codes::NOT_CONFORMANT => style.paint(Outcome::Fail, "NOT CONFORMANT"),
        _ if report.credentials_refused.is_some() => style.paint(
            Outcome::Error,
            "NOT CHECKED (the partner refused the credentials)",
        ),
        _ if report.unreachable.is_some() => style.paint(
            Outcome::Error,
            "NOT CHECKED (the partner could not be reached)",
        ),
        _ => style.paint(
            Outcome::Error,
            &format!(
                "INCOMPLETE ({} rule(s) could not be checked)",
                report.totals.error
            ),
        ),
    };
    match failure {
        Some(failure) => {
            let _ = writeln!(
                out,
                "result: {} (exit {})",
                style.paint(Outcome::Error, &format!("NOT RECORDED ({failure})")),
                exit_codes::RUN_FAILED
            );
        }
        None => {
            let _ = writeln!(out, "result: {verdict} (exit {})", report.exit_code);
        }
    }
    out
}

fn render_coverage(out: &mut String, report: &RunReport) {
    let prospects = report.coverage_of("prospect");
    let members = report.coverage_of("member");
    if !prospects.is_empty() {
        let (owners, sources) = grid_axes();
        let used_sources: Vec<&str> = sources
            .into_iter()
            .filter(|s| prospects.iter().any(|c| c.source.as_deref() == Some(*s)))
            .collect();
        let width = used_sources
            .iter()
            .map(|s| s.len())
            .max()
            .unwrap_or(8)
            .max(9);
        let _ = writeln!(out, "\ncoverage: prospects, owner × source");
        let mut header = format!("  {:<10}", "owner");
        for source in &used_sources {
            let _ = write!(header, "  {source:<width$}");
        }
        let _ = writeln!(out, "{}", header.trim_end());
        for owner in owners {
            if !prospects.iter().any(|c| c.owner.as_deref() == Some(owner)) {
                continue;
            }
            let mut row = format!("  {owner:<10}");
            for source in &used_sources {
                let cell = prospects
                    .iter()
                    .find(|c| {
                        c.owner.as_deref() == Some(owner) && c.source.as_deref() == Some(*source)
                    })
                    .map(|c| c.result.as_str())
                    .unwrap_or("-");
                let _ = write!(row, "  {cell:<width$}");
            }
            let _ = writeln!(out, "{}", row.trim_end());
        }
    }
    if !members.is_empty() {
        let cells: Vec<String> = members
            .iter()
            .map(|c| format!("{}: {}", one_line(&c.label), c.result))
            .collect();
        let _ = writeln!(out, "coverage: members: {}", cells.join(", "));
    }
}

//! The HTML report: one self-contained page (inline CSS, no script, no external asset) with the
//! run summary, the partner's and the tool's identity, the verdict table, the coverage grid and,
//! per rule, its evidence in `<details>` elements. Every text that comes from the run is escaped.

use super::model::{grid_axes, RunReport, VerdictEntry};
use super::terminal::format_duration;
use crate::connector::Exchange;
use crate::exit_codes;
use crate::suite::Outcome;
use std::fmt::Write;

/// Characters of one body shown; the HAR report holds the rest.
pub const BODY_LIMIT: usize = 8 * 1024;

/// Exchanges shown per rule; the HAR report holds the rest.
pub const EXCHANGES_PER_RULE: usize = 10;

const STYLE: &str = r#"
:root { --pass:#1a7f37; --fail:#cf222e; --warn:#9a6700; --skip:#6e7781; --inconclusive:#8250df;
  --error:#a40e26; --line:#d0d7de; --soft:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1f2328;
  margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0; display: inline; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
#verdicts td:nth-child(-n+2), #verdicts td:nth-child(4) { white-space: nowrap; }
#waivers td:nth-child(-n+2), #waivers td:nth-child(4) { white-space: nowrap; }
table.facts th { width: 180px; }
code, pre { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
code { background: var(--soft); padding: 1px 4px; border-radius: 4px; word-break: break-all; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px;
  margin: 4px 0 8px; white-space: pre-wrap; word-break: break-all; max-height: 420px; overflow: auto; }
.result { display: inline-block; font-size: 16px; font-weight: 700; color: #fff; padding: 6px 14px;
  border-radius: 6px; margin-bottom: 12px; }
.badge { display: inline-block; min-width: 84px; text-align: center; font-weight: 600; color: #fff;
  border-radius: 10px; padding: 0 8px; font-size: 12px; }
.pass { background: var(--pass); } .fail { background: var(--fail); } .warn { background: var(--warn); }
.skip { background: var(--skip); } .inconclusive { background: var(--inconclusive); }
.error { background: var(--error); } .waived { background: #57606a; }
.note { border-left: 4px solid var(--warn); background: #fff8c5; padding: 6px 10px; margin: 8px 0; }
.note.bad { border-color: var(--error); background: #ffebe9; }
tr.row-fail td:first-child { border-left: 4px solid var(--fail); }
tr.row-warn td:first-child, tr.row-inconclusive td:first-child { border-left: 4px solid var(--warn); }
tr.row-error td:first-child { border-left: 4px solid var(--error); }
tr.row-waived td:first-child { border-left: 4px solid #57606a; }
em.waiver { color: #57606a; }
td.cell-saved { background: #dafbe1; } td.cell-rejected { background: #ffebe9; }
td.cell-no-answer { background: #fff8c5; } td.cell-none { color: var(--skip); }
.rule { border: 1px solid var(--line); border-radius: 6px; margin: 10px 0; }
.rule > summary { padding: 8px 10px; cursor: pointer; background: var(--soft); }
.rule > .body { padding: 4px 12px 10px; }
.exchange { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; }
.exchange > summary { padding: 6px 10px; cursor: pointer; font-family: ui-monospace, Menlo, monospace;
  font-size: 12px; word-break: break-all; }
.exchange > .body { padding: 0 10px 8px; }
.exchange table th { width: 220px; }
.muted { color: var(--skip); }
.truncated { color: var(--warn); font-style: italic; }
"#;

/// Escapes text for HTML element content and attribute values. Control characters are shown
/// escaped (`\u{1b}`), as HTML has no way to show them and parsers reject most; `\n` and `\t`
/// stay, being a body's layout inside `<pre>` and plain spaces elsewhere.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if crate::controls::is_control(c) => out.push_str(&crate::controls::escaped(c)),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The CSS class and label of the run's result.
fn result(report: &RunReport) -> (&'static str, String) {
    match report.exit_code {
        exit_codes::CONFORMANT => ("pass", "CONFORMANT".into()),
        exit_codes::NOT_CONFORMANT => ("fail", "NOT CONFORMANT".into()),
        _ if report.credentials_refused.is_some() => (
            "error",
            "NOT CHECKED (the partner refused the credentials)".into(),
        ),
        _ if report.unreachable.is_some() => (
            "error",
            "NOT CHECKED (the partner could not be reached)".into(),
        ),
        _ => (
            "error",
            format!(
                "INCOMPLETE ({} rule(s) could not be checked)",
                report.totals.error
            ),
        ),
    }
}

fn badge(outcome: Outcome) -> String {
    format!(r#"<span class="badge {0}">{0}</span>"#, outcome.as_str())
}

/// A body as shown: pretty-printed when it is JSON, cut at [`BODY_LIMIT`] characters.
fn shown_body(body: &str) -> String {
    let pretty = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        .unwrap_or_else(|| body.to_owned());
    let total = pretty.chars().count();
    if total <= BODY_LIMIT {
        return format!("<pre>{}</pre>", escape(&pretty));
    }
    let cut: String = pretty.chars().take(BODY_LIMIT).collect();
    format!(
        r#"<pre>{}</pre><p class="truncated">truncated: {BODY_LIMIT} of {total} characters shown; the HAR report holds the body as recorded</p>"#,
        escape(&cut)
    )
}

fn headers_table(out: &mut String, headers: &[(String, String)]) {
    if headers.is_empty() {
        out.push_str(r#"<p class="muted">no headers</p>"#);
        return;
    }
    out.push_str("<table><tbody>");
    for (name, value) in headers {
        let _ = write!(
            out,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</tbody></table>");
}

fn answer(exchange: &Exchange) -> String {
    match (exchange.status, &exchange.error) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(error)) => format!("no answer: {error}"),
        (None, None) => "no answer".into(),
    }
}

fn render_exchange(out: &mut String, exchange: &Exchange, open: bool) {
    let _ = write!(
        out,
        r#"<details class="exchange" id="x-{id}"{open}><summary>#{id} {method} {url} → {answer} · {ms} ms</summary><div class="body">"#,
        id = exchange.id,
        open = if open { " open" } else { "" },
        method = escape(&exchange.method),
        url = escape(&exchange.url),
        answer = escape(&answer(exchange)),
        ms = exchange.duration_ms,
    );
    let _ = write!(out, "<p>{}", escape(&exchange.purpose));
    if let Some(operation) = &exchange.operation {
        let _ = write!(out, " · operation <code>{}</code>", escape(operation));
    }
    if let Some(retried) = exchange.retry_of {
        let _ = write!(out, " · retry of #{retried}");
    }
    let _ = write!(
        out,
        " · sent at +{} ms, took {} ms</p>",
        exchange.started_ms, exchange.duration_ms
    );
    let _ = write!(
        out,
        "<h4>Request</h4><p><code>{} {}</code></p>",
        escape(&exchange.method),
        escape(&exchange.url)
    );
    headers_table(out, &exchange.request_headers);
    if let Some(body) = &exchange.request_body {
        out.push_str(&shown_body(body));
    }
    let _ = write!(
        out,
        "<h4>Response</h4><p><code>{}</code></p>",
        escape(&answer(exchange))
    );
    if exchange.status.is_some() {
        headers_table(out, &exchange.response_headers);
        match &exchange.response_body {
            Some(body) if !body.is_empty() => out.push_str(&shown_body(body)),
            _ => out.push_str(r#"<p class="muted">empty body</p>"#),
        }
    }
    let curl = super::curl::curl_command(exchange);
    let _ = write!(
        out,
        "<h4>Reproduce the request</h4><pre>{}</pre></div></details>",
        escape(&curl)
    );
}

fn render_summary(out: &mut String, report: &RunReport) {
    let (class, label) = result(report);
    let _ = write!(
        out,
        r#"<div class="result {class}" id="result">{} (exit {})</div>"#,
        escape(&label),
        report.exit_code
    );
    if let Some(refused) = &report.credentials_refused {
        let _ = write!(out, r#"<p class="note bad">{}</p>"#, escape(refused));
    }
    if let Some(unreachable) = &report.unreachable {
        let _ = write!(
            out,
            r#"<p class="note bad">The partner could not be reached: {}</p>"#,
            escape(unreachable)
        );
    }
    for waiver in report.waivers.iter().filter(|w| w.status.fails_the_run()) {
        let _ = write!(
            out,
            r#"<p class="note bad">{}</p>"#,
            escape(&waiver.message)
        );
    }
    if report.partner.insecure {
        out.push_str(r#"<p class="note">TLS certificates were NOT verified (<code>--insecure</code>): the verdicts say nothing about the partner's TLS.</p>"#);
    }
    let totals = &report.totals;
    let _ = write!(
        out,
        r#"<table class="facts" id="summary"><tbody>
<tr><th>Totals</th><td>{} pass · {} fail · {} warn · {} skip · {} inconclusive · {} error</td></tr>
<tr><th>Exchanges</th><td>{}</td></tr>
<tr><th>Started at</th><td>{}</td></tr>
<tr><th>Duration</th><td>{}</td></tr>
<tr><th>Seed</th><td><code>{}</code></td></tr>
<tr><th>Scenario</th><td>{}</td></tr>"#,
        totals.pass,
        totals.fail,
        totals.warn,
        totals.skip,
        totals.inconclusive,
        totals.error,
        report.exchanges.len(),
        escape(&report.started_at),
        escape(&format_duration(report.duration_ms)),
        report.seed,
        escape(&report.scenario),
    );
    if !report.only.is_empty() {
        let _ = write!(
            out,
            "<tr><th>Only</th><td>{}</td></tr>",
            escape(&report.only.join(", "))
        );
    }
    out.push_str("</tbody></table>");
}

fn render_identity(out: &mut String, report: &RunReport) {
    let partner = &report.partner;
    let target = if partner.mock {
        "the built-in mock partner"
    } else {
        "the partner's sandbox"
    };
    let _ = write!(
        out,
        r#"<h2>Partner and tool</h2><table class="facts" id="identity"><tbody>
<tr><th>Partner</th><td>{}</td></tr>
<tr><th>Profile</th><td><code>{}</code></td></tr>
<tr><th>Profile digest</th><td><code>{}</code></td></tr>
<tr><th>Base URL</th><td><code>{}</code> ({target})</td></tr>"#,
        escape(&partner.name),
        escape(&partner.profile),
        escape(&partner.profile_digest),
        escape(&partner.base_url),
    );
    if partner.mock {
        let faults = if partner.faults.is_empty() {
            "none".to_owned()
        } else {
            partner.faults.join(", ")
        };
        let _ = write!(
            out,
            "<tr><th>Mock faults</th><td>{}</td></tr>",
            escape(&faults)
        );
    }
    let _ = write!(
        out,
        r#"<tr><th>Tool</th><td>{}</td></tr>
<tr><th>Rule catalog</th><td>{}</td></tr>
<tr><th>Catalog digest</th><td><code>{}</code></td></tr>
<tr><th>Report format</th><td>{}</td></tr></tbody></table>"#,
        escape(&report.tool),
        escape(&report.catalog_version),
        escape(&report.catalog_digest),
        report.format_version,
    );
}

fn shows_fix(entry: &VerdictEntry) -> bool {
    matches!(
        entry.outcome,
        Outcome::Fail | Outcome::Warn | Outcome::Inconclusive
    )
}

fn render_verdicts(out: &mut String, report: &RunReport) {
    out.push_str(
        r#"<h2>Verdicts</h2><table id="verdicts"><thead><tr><th>Rule</th><th>Level</th><th>Title</th><th>Verdict</th><th>Reason</th><th>Guide clause</th><th>Fix</th></tr></thead><tbody>"#,
    );
    for entry in &report.verdicts {
        let rule = escape(&entry.rule);
        let rule_cell = if has_section(entry) {
            format!(r##"<a href="#rule-{rule}">{rule}</a>"##)
        } else {
            rule.clone()
        };
        let (waived_badge, waived_note) = match &entry.waiver {
            Some(waiver) => (
                r#" <span class="badge waived">waived</span>"#.to_owned(),
                format!(
                    r#"<br><em class="waiver">waived until {} ({}): {}</em>"#,
                    waiver.expires,
                    escape(&waiver.owner),
                    escape(&waiver.reason)
                ),
            ),
            None => (String::new(), String::new()),
        };
        let _ = write!(
            out,
            r#"<tr class="row-{}" id="verdict-{rule}"><td>{rule_cell}</td><td>{}</td><td>{}</td><td>{}{waived_badge}</td><td>{}{waived_note}</td><td>{}</td><td>{}</td></tr>"#,
            if entry.waiver.is_some() {
                "waived"
            } else {
                entry.outcome.as_str()
            },
            entry.level.as_str(),
            escape(&entry.title),
            badge(entry.outcome),
            escape(&entry.reason),
            escape(&entry.clause),
            if shows_fix(entry) {
                escape(&entry.fix)
            } else {
                String::new()
            },
        );
    }
    out.push_str("</tbody></table>");
}

fn render_waivers(out: &mut String, report: &RunReport) {
    if report.waivers.is_empty() {
        return;
    }
    out.push_str(
        r#"<h2>Waivers</h2><table id="waivers"><thead><tr><th>Rule</th><th>Status</th><th>Owner</th><th>Expires</th><th>Reason</th><th>What it means</th></tr></thead><tbody>"#,
    );
    for waiver in &report.waivers {
        let class = if waiver.status.fails_the_run() {
            "fail"
        } else if waiver.status == super::waivers::WaiverStatus::Applied {
            "waived"
        } else {
            "skip"
        };
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td><span class="badge {class}">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&waiver.waiver.rule),
            waiver.status.as_str(),
            escape(&waiver.waiver.owner),
            waiver.waiver.expires,
            escape(&waiver.waiver.reason),
            escape(&waiver.message),
        );
    }
    out.push_str("</tbody></table>");
}

fn render_coverage(out: &mut String, report: &RunReport) {
    let prospects = report.coverage_of("prospect");
    let members = report.coverage_of("member");
    if prospects.is_empty() && members.is_empty() {
        return;
    }
    out.push_str(r#"<h2>Coverage</h2><div id="coverage">"#);
    if !prospects.is_empty() {
        let (owners, sources) = grid_axes();
        let used_sources: Vec<&str> = sources
            .into_iter()
            .filter(|s| prospects.iter().any(|c| c.source.as_deref() == Some(*s)))
            .collect();
        out.push_str("<p>Prospects delivered, lead owner × lead source:</p><table><thead><tr><th>owner \\ source</th>");
        for source in &used_sources {
            let _ = write!(out, "<th>{}</th>", escape(source));
        }
        out.push_str("</tr></thead><tbody>");
        for owner in owners {
            if !prospects.iter().any(|c| c.owner.as_deref() == Some(owner)) {
                continue;
            }
            let _ = write!(out, "<tr><th>{}</th>", escape(owner));
            for source in &used_sources {
                let cell = prospects.iter().find(|c| {
                    c.owner.as_deref() == Some(owner) && c.source.as_deref() == Some(*source)
                });
                match cell {
                    Some(cell) => {
                        let _ = write!(
                            out,
                            r#"<td class="cell-{}" title="{}">{}</td>"#,
                            escape(&cell.result),
                            escape(&cell.label),
                            escape(&cell.result)
                        );
                    }
                    None => out.push_str(r#"<td class="cell-none">–</td>"#),
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    if !members.is_empty() {
        out.push_str("<p>Members delivered:</p><table><tbody>");
        for member in members {
            let _ = write!(
                out,
                r#"<tr><th>{}</th><td class="cell-{}">{}</td></tr>"#,
                escape(&member.label),
                escape(&member.result),
                escape(&member.result)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</div>");
}

fn has_section(entry: &VerdictEntry) -> bool {
    !entry.evidence.is_empty() || !matches!(entry.outcome, Outcome::Pass | Outcome::Skip)
}

fn render_evidence(out: &mut String, report: &RunReport) {
    out.push_str(r#"<h2>Evidence per rule</h2><div id="evidence">"#);
    for entry in report.verdicts.iter().filter(|e| has_section(e)) {
        let failing = matches!(
            entry.outcome,
            Outcome::Fail | Outcome::Warn | Outcome::Error
        );
        let rule = escape(&entry.rule);
        let _ = write!(
            out,
            r#"<details class="rule" id="rule-{rule}"{}><summary>{} <h3>{rule} {}</h3> · {} exchange(s)</summary><div class="body"><p>{}</p>"#,
            if failing { " open" } else { "" },
            badge(entry.outcome)
                + if entry.waiver.is_some() {
                    r#" <span class="badge waived">waived</span>"#
                } else {
                    ""
                },
            escape(&entry.title),
            entry.evidence.len(),
            escape(&entry.reason),
        );
        if shows_fix(entry) && !entry.fix.is_empty() {
            let _ = write!(out, "<p><strong>Fix:</strong> {}</p>", escape(&entry.fix));
        }
        let _ = write!(
            out,
            "<p><strong>Reproduce this case:</strong></p><pre>{}</pre>",
            escape(&entry.reproduce)
        );
        // A passing rule's evidence is listed; the bodies are in the HAR report.
        let detailed = entry.outcome != Outcome::Pass;
        if !detailed {
            out.push_str(r#"<ul class="cited">"#);
        }
        for (shown, id) in entry.evidence.iter().enumerate() {
            if shown == EXCHANGES_PER_RULE {
                let tag = if detailed { "p" } else { "li" };
                let _ = write!(
                    out,
                    r#"<{tag} class="truncated">{} more exchange(s) in the HAR report: {}</{tag}>"#,
                    entry.evidence.len() - EXCHANGES_PER_RULE,
                    entry.evidence[EXCHANGES_PER_RULE..]
                        .iter()
                        .map(|id| format!("#{id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                break;
            }
            match report.exchanges.iter().find(|e| e.id == *id) {
                Some(exchange) if detailed => render_exchange(out, exchange, failing && shown == 0),
                Some(exchange) => {
                    let _ = write!(
                        out,
                        r#"<li><code>#{} {} {} → {}</code> · {} ms</li>"#,
                        exchange.id,
                        escape(&exchange.method),
                        escape(&exchange.url),
                        escape(&answer(exchange)),
                        exchange.duration_ms
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        r#"<p class="muted">exchange #{id} is not in this report</p>"#
                    );
                }
            }
        }
        if !detailed {
            out.push_str("</ul>");
        }
        out.push_str("</div></details>");
    }
    out.push_str("</div>");
}

/// Renders the HTML report.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let (_, label) = result(report);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{}">
<title>spoke certify: {} — {}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>spoke certify: {}</h1>
"#,
        escape(&report.tool),
        escape(&report.partner.name),
        escape(&label),
        escape(&report.partner.name),
    );
    render_summary(&mut out, report);
    render_identity(&mut out, report);
    render_verdicts(&mut out, report);
    render_waivers(&mut out, report);
    render_coverage(&mut out, report);
    if !report.missing_in_sandbox.is_empty() {
        out.push_str(r#"<h2>Missing in the sandbox</h2><ul id="missing">"#);
        for missing in &report.missing_in_sandbox {
            let _ = write!(out, "<li>{}</li>", escape(missing));
        }
        out.push_str("</ul>");
    }
    render_evidence(&mut out, report);
    out.push_str("\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_attribute_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn a_long_body_is_cut_with_a_note() {
        let body = "é".repeat(BODY_LIMIT + 10);
        let shown = shown_body(&body);
        assert!(shown.contains("truncated"));
        assert!(shown.contains(&format!("of {}", BODY_LIMIT + 10)));
        assert_eq!(shown.matches('é').count(), BODY_LIMIT);
    }
}

//! The HAR 1.2 report: every exchange of the run, for browser dev tools and HAR viewers, each
//! entry naming the rules it is evidence for. Secrets were redacted when the exchange was
//! recorded. Body sizes are the bytes sent and received (the text shown may be redacted or cut),
//! and times are in fractional milliseconds, as HAR counts them.

use super::model::RunReport;
use crate::connector::Exchange;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn pairs(headers: &[(String, String)]) -> Vec<Value> {
    headers
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

fn query_string(url: &str) -> Vec<Value> {
    reqwest::Url::parse(url)
        .map(|url| {
            url.query_pairs()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect()
        })
        .unwrap_or_default()
}

fn mime_type(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// Milliseconds the exchange took, with the fraction where it was recorded.
fn millis(exchange: &Exchange) -> f64 {
    exchange.duration().as_secs_f64() * 1000.0
}

/// A body's size: the bytes that travelled where known, else (an older recording) the text's
/// length; -1 (HAR's "unknown") without a body.
fn body_size(travelled: Option<usize>, text: Option<&String>) -> i64 {
    match (travelled, text) {
        (Some(bytes), _) => bytes as i64,
        (None, Some(text)) => text.len() as i64,
        (None, None) => -1,
    }
}

/// Renders the HAR report.
pub fn render(report: &RunReport) -> String {
    let started = chrono::DateTime::parse_from_rfc3339(&report.started_at)
        .map(|at| at.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    let mut rules_of: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for verdict in &report.verdicts {
        for id in &verdict.evidence {
            rules_of.entry(*id).or_default().push(&verdict.rule);
        }
    }
    let entries: Vec<Value> = report
        .exchanges
        .iter()
        .map(|exchange| {
            let at = started + chrono::Duration::milliseconds(exchange.started_ms as i64);
            let request_body = exchange.request_body.as_ref().map(
                |text| json!({"mimeType": mime_type(&exchange.request_headers), "text": text}),
            );
            let response_text = exchange.response_body.clone().unwrap_or_default();
            let rules = rules_of.get(&exchange.id).cloned().unwrap_or_default();
            let mut comment = format!("#{} {}", exchange.id, exchange.purpose);
            if let Some(error) = &exchange.error {
                comment.push_str(&format!(" — no answer: {error}"));
            }
            let mut request = json!({
                "method": exchange.method,
                "url": exchange.url,
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": pairs(&exchange.request_headers),
                "queryString": query_string(&exchange.url),
                "headersSize": -1,
                "bodySize": body_size(exchange.request_body_bytes, exchange.request_body.as_ref()).max(0),
            });
            if let Some(body) = request_body {
                request["postData"] = body;
            }
            json!({
                "startedDateTime": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "time": millis(exchange),
                "request": request,
                "response": {
                    // HAR has no place for "no answer": status 0, as browsers record it.
                    "status": exchange.status.unwrap_or(0),
                    "statusText": exchange
                        .status
                        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or(""),
                    "httpVersion": "HTTP/1.1",
                    "cookies": [],
                    "headers": pairs(&exchange.response_headers),
                    "content": {
                        "size": body_size(exchange.response_body_bytes, exchange.response_body.as_ref()).max(0),
                        "mimeType": mime_type(&exchange.response_headers),
                        "text": response_text,
                    },
                    "redirectURL": exchange
                        .response_headers
                        .iter()
                        .find(|(name, _)| name == "location")
                        .map(|(_, value)| value.clone())
                        .unwrap_or_default(),
                    "headersSize": -1,
                    "bodySize": body_size(exchange.response_body_bytes, exchange.response_body.as_ref()),
                },
                "cache": {},
                "timings": {"send": 0, "wait": millis(exchange), "receive": 0},
                "comment": comment,
                "_id": exchange.id,
                "_operation": exchange.operation,
                "_rules": rules,
            })
        })
        .collect();
    let har = json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "spoke", "version": env!("CARGO_PKG_VERSION")},
            "pages": [],
            "entries": entries,
            "comment": format!(
                "spoke certify of {} ({}), seed {}",
                report.partner.name, report.partner.profile, report.seed
            ),
        }
    });
    super::json::to_string_pretty(&har)
}

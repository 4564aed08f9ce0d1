//! A curl command that reproduces one recorded exchange (already redacted at capture).

use crate::connector::Exchange;

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The curl command for `exchange`. Credentials show as `***`: put yours back to replay.
pub fn curl_command(exchange: &Exchange) -> String {
    let mut parts = vec!["curl".to_owned(), "-X".to_owned(), exchange.method.clone()];
    parts.push(quote(&exchange.url));
    for (name, value) in &exchange.request_headers {
        parts.push("-H".into());
        parts.push(quote(&format!("{name}: {value}")));
    }
    if let Some(body) = &exchange.request_body {
        parts.push("--data-binary".into());
        parts.push(quote(body));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_single_quotes_in_bodies() {
        let exchange = Exchange {
            id: 1,
            operation: None,
            purpose: String::new(),
            method: "POST".into(),
            url: "http://127.0.0.1:1/p".into(),
            request_headers: vec![("authorization".into(), "***".into())],
            request_body: Some(r#"{"last_name":"O'Brien"}"#.into()),
            status: None,
            response_headers: Vec::new(),
            response_body: None,
            error: None,
            started_ms: 0,
            duration_ms: 0,
            duration_us: 0,
            request_body_bytes: None,
            response_body_bytes: None,
            retry_of: None,
        };
        assert_eq!(
            curl_command(&exchange),
            r#"curl -X POST 'http://127.0.0.1:1/p' -H 'authorization: ***' --data-binary '{"last_name":"O'\''Brien"}'"#
        );
    }
}

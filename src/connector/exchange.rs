//! The record of every exchange with the partner: request, response, timing; secrets redacted
//! at capture, so nothing downstream can leak them.

use crate::auth::Credentials;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// The most of a body kept as evidence.
pub const EVIDENCE_BODY_LIMIT: usize = 64 * 1024;

/// One request to the partner and what came back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exchange {
    /// Position in the run, from 1.
    pub id: usize,
    /// The profile operation called, when the request is one.
    pub operation: Option<String>,
    /// Why the Connector made the call (e.g. "staff sync, page 2").
    pub purpose: String,
    /// HTTP method.
    pub method: String,
    /// Full URL, secrets redacted.
    pub url: String,
    /// Request headers sent, secrets redacted.
    pub request_headers: Vec<(String, String)>,
    /// Request body, if any (truncated to the evidence limit).
    pub request_body: Option<String>,
    /// Response status, if a response came.
    pub status: Option<u16>,
    /// Response headers.
    pub response_headers: Vec<(String, String)>,
    /// Response body (truncated to the evidence limit).
    pub response_body: Option<String>,
    /// Why no usable response came, if so.
    pub error: Option<String>,
    /// Milliseconds from the run's start to the request.
    pub started_ms: u64,
    /// Milliseconds the exchange took.
    pub duration_ms: u64,
    /// The exchange this one retries (after a 503 or 429), if it is a retry.
    pub retry_of: Option<usize>,
}

/// Replaces secrets in captured text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    secret_headers: Vec<String>,
    secret_query: Vec<String>,
    learnt: Learnt,
}

/// Secrets learnt during a run (an OAuth access token), shared by every clone of a redactor:
/// a token fetched by one client is redacted by all.
#[derive(Clone, Default)]
struct Learnt(Arc<std::sync::RwLock<Vec<String>>>);

impl std::fmt::Debug for Learnt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.read().map_or(0, |secrets| secrets.len());
        write!(f, "Learnt({count} secret(s))")
    }
}

/// Secrets shorter than this are masked where they travel (headers, the key's query parameter)
/// but not searched for in free text, where they would mangle unrelated evidence.
pub const MIN_FREE_TEXT_SECRET: usize = 6;

/// What stands in for a redacted secret.
pub const REDACTED: &str = "***";

impl Redactor {
    /// A redactor for the run's credentials.
    pub fn for_credentials(credentials: &Credentials) -> Self {
        let mut secret_headers = vec!["authorization".to_owned(), "proxy-authorization".to_owned()];
        let mut secrets: Vec<String> = credentials
            .secrets()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if let Some((name, value)) = credentials.header() {
            secret_headers.push(name);
            secrets.push(value);
        }
        let secret_query = credentials
            .query()
            .map(|(name, _)| vec![name.to_owned()])
            .unwrap_or_default();
        Redactor {
            secrets: clean(secrets),
            secret_headers,
            secret_query,
            learnt: Learnt::default(),
        }
    }

    /// Learns a secret obtained at run time (an OAuth access token): from now on it is
    /// redacted by this redactor and every clone of it.
    pub fn learn(&self, secret: &str) {
        let mut learnt = self
            .learnt
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !learnt.iter().any(|known| known == secret) {
            learnt.push(secret.to_owned());
            *learnt = clean(std::mem::take(&mut *learnt));
        }
    }

    /// Also redacts `credentials` (e.g. deliberately wrong ones sent in a probe).
    pub fn add(&mut self, credentials: &Credentials) {
        let other = Redactor::for_credentials(credentials);
        self.secrets.extend(other.secrets);
        self.secrets = clean(std::mem::take(&mut self.secrets));
        for header in other.secret_headers {
            if !self.secret_headers.contains(&header) {
                self.secret_headers.push(header);
            }
        }
        for name in other.secret_query {
            if !self.secret_query.contains(&name) {
                self.secret_query.push(name);
            }
        }
    }

    /// Redacts a URL: the key's query parameter by name, then secrets in the rest.
    pub fn url(&self, url: &reqwest::Url) -> String {
        if self.secret_query.is_empty() || url.query().is_none() {
            return self.text(url.as_str());
        }
        let mut masked = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if self.secret_query.iter().any(|secret| *secret == name) {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        masked.query_pairs_mut().clear().extend_pairs(pairs);
        self.text(masked.as_str()).replace("%2A%2A%2A", REDACTED)
    }

    /// Redacts every secret in `text`.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let learnt = self
            .learnt
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for secret in learnt.iter().chain(&self.secrets) {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
            for encoded in encodings(secret) {
                if encoded != *secret && out.contains(&encoded) {
                    out = out.replace(&encoded, REDACTED);
                }
            }
        }
        out
    }

    /// Redacts a header value, wholly for credential headers.
    pub fn header(&self, name: &str, value: &str) -> String {
        if self
            .secret_headers
            .iter()
            .any(|secret| secret.eq_ignore_ascii_case(name))
        {
            REDACTED.to_owned()
        } else {
            self.text(value)
        }
    }
}

/// The escaped spellings a secret may take in a URL or body: form encoding, and percent
/// encoding with upper- and lower-case hex digits.
fn encodings(secret: &str) -> [String; 3] {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let mut lower = String::with_capacity(percent.len());
    let mut hex_left = 0;
    for c in percent.chars() {
        if c == '%' {
            hex_left = 2;
            lower.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            lower.push(c.to_ascii_lowercase());
        } else {
            lower.push(c);
        }
    }
    [form, percent, lower]
}

fn clean(mut secrets: Vec<String>) -> Vec<String> {
    secrets.retain(|secret| secret.chars().count() >= MIN_FREE_TEXT_SECRET);
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.dedup();
    secrets
}

/// Truncates evidence text to the limit, on a character boundary.
pub fn truncate_evidence(text: &str) -> String {
    if text.len() <= EVIDENCE_BODY_LIMIT {
        return text.to_owned();
    }
    let mut end = EVIDENCE_BODY_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes in all]", &text[..end], text.len())
}

/// The run's exchange log, shared by every call.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    /// Count only: a load run numbers its exchanges but keeps none.
    counting_only: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Recorder {
    /// A recorder that numbers exchanges but keeps none (bounded memory under load).
    pub fn counting_only() -> Self {
        Recorder {
            exchanges: Arc::default(),
            counting_only: Some(Arc::default()),
        }
    }

    /// Whether exchanges are kept (not only counted).
    pub fn keeps(&self) -> bool {
        self.counting_only.is_none()
    }

    /// Appends an exchange, giving it the next id.
    pub fn push(&self, mut exchange: Exchange) -> usize {
        if let Some(count) = &self.counting_only {
            return count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        }
        let mut exchanges = self
            .exchanges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        exchange.id = exchanges.len() + 1;
        let id = exchange.id;
        exchanges.push(exchange);
        id
    }

    /// A copy of every exchange so far.
    pub fn snapshot(&self) -> Vec<Exchange> {
        self.exchanges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// One exchange by id.
    pub fn get(&self, id: usize) -> Option<Exchange> {
        self.exchanges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id.checked_sub(1)?)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyPlace, Secret};

    #[test]
    fn credential_headers_and_query_keys_are_redacted() {
        let credentials = Credentials::ApiKey {
            place: KeyPlace::Query("api_key".into()),
            key: Secret::new("k/e y"),
        };
        let _ = Credentials::ApiKey {
            place: KeyPlace::Query("api_key".into()),
            key: Secret::new("unused"),
        };
        let redactor = Redactor::for_credentials(&credentials);
        let url = reqwest::Url::parse("http://x/?api_key=k%2Fe+y&a=1").unwrap();
        assert_eq!(redactor.url(&url), "http://x/?api_key=***&a=1");
        assert_eq!(redactor.header("Authorization", "Bearer zzz"), REDACTED);
    }
}

#[cfg(test)]
mod free_text_tests {
    use super::*;
    use crate::auth::Secret;

    #[test]
    fn a_secret_learnt_at_run_time_is_redacted_by_every_clone() {
        let redactor = Redactor::for_credentials(&Credentials::None);
        let clone = redactor.clone();
        assert_eq!(clone.text("token tok_run_98765"), "token tok_run_98765");
        redactor.learn("tok_run_98765");
        assert_eq!(clone.text("token tok_run_98765"), "token ***");
        assert_eq!(clone.text("t=tok%5Frun%5F98765"), "t=***");
        assert!(!format!("{clone:?}").contains("tok_run"));
    }

    #[test]
    fn long_secrets_are_redacted_anywhere_short_ones_only_where_they_travel() {
        let long = Redactor::for_credentials(&Credentials::Bearer(Secret::new("tok_live_123456")));
        assert_eq!(long.text("echo tok_live_123456 back"), "echo *** back");
        let slashed =
            Redactor::for_credentials(&Credentials::Bearer(Secret::new("key/live/123456")));
        assert_eq!(slashed.text("a=key%2flive%2f123456"), "a=***");
        assert_eq!(slashed.text("a=key%2Flive%2F123456"), "a=***");
        let short = Redactor::for_credentials(&Credentials::Bearer(Secret::new("x")));
        assert_eq!(short.text("example"), "example");
        assert_eq!(short.header("authorization", "Bearer x"), REDACTED);
    }
}

//! The record of every exchange with the partner: request, response, timing; secrets redacted
//! at capture, so nothing downstream can leak them.

use crate::auth::Credentials;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};

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
    /// Milliseconds the exchange took, whole (what latency rules judge).
    pub duration_ms: u64,
    /// Microseconds the exchange took, for reports that show fractions of a millisecond
    /// (HAR, JUnit). 0 in recordings made before it was kept: [`Exchange::duration`] then
    /// falls back on `duration_ms`.
    #[serde(default)]
    pub duration_us: u64,
    /// Bytes of the request body sent, before redaction and truncation; `None` without a body
    /// (and in recordings made before it was kept).
    #[serde(default)]
    pub request_body_bytes: Option<usize>,
    /// Bytes of the response body received, before redaction and truncation; `None` without an
    /// answer (and in recordings made before it was kept).
    #[serde(default)]
    pub response_body_bytes: Option<usize>,
    /// The exchange this one retries (after a 503 or 429), if it is a retry.
    pub retry_of: Option<usize>,
}

impl Exchange {
    /// Records how long the exchange took, in whole milliseconds and in microseconds.
    pub fn set_duration(&mut self, took: std::time::Duration) {
        self.duration_ms = took.as_millis() as u64;
        self.duration_us = took.as_micros() as u64;
    }

    /// How long the exchange took, to the microsecond where that was recorded.
    pub fn duration(&self) -> std::time::Duration {
        if self.duration_us > 0 {
            std::time::Duration::from_micros(self.duration_us)
        } else {
            std::time::Duration::from_millis(self.duration_ms)
        }
    }
}

/// Replaces secrets, in every form they take, in captured evidence and in everything spoke
/// writes. A cloneable handle: every clone shares one set of secrets, so a secret learned at
/// run time through any clone (an OAuth 2.0 access token from a token endpoint, deliberately
/// wrong credentials of a probe) is redacted from then on by all of them, the run's output
/// included (see [`crate::output`]).
///
/// Each secret is searched as it is, in the forms derived from it (the base64 of a basic
/// pair, `+` for spaces as form encoding writes them, the shell quoting of curl lines), and
/// through every layer of escapes the text holds: JSON `\u` escapes and `\/`, XML and HTML
/// character references and entities, percent-encoding with either case of hex digits, and
/// the reports' own escaping of what a partner sent.
#[derive(Clone, Default)]
pub struct Redactor {
    shared: Arc<RwLock<Secrets>>,
}

/// What a [`Redactor`] knows.
#[derive(Default)]
struct Secrets {
    /// Every form searched in free text, longest first.
    forms: Vec<String>,
    /// `forms` compiled; rebuilt when one is learned.
    automaton: Option<Arc<aho_corasick::AhoCorasick>>,
    /// Headers whose values are credentials, lower case.
    secret_headers: Vec<String>,
    /// Query parameters whose values are credentials.
    secret_query: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secrets = self.read();
        f.debug_struct("Redactor")
            .field("forms", &secrets.forms.len())
            .field("secret_headers", &secrets.secret_headers)
            .field("secret_query", &secrets.secret_query)
            .finish()
    }
}

/// Secrets shorter than this are masked where they travel (headers, the key's query parameter)
/// but not searched for in free text, where they would mangle unrelated evidence.
pub const MIN_FREE_TEXT_SECRET: usize = 6;

/// What stands in for a redacted secret.
pub const REDACTED: &str = "***";

/// Layers of escapes read when searching free text: a partner's escaping, inside a format's
/// (the JSON report's string escaping, the HTML page's entities), and one more.
const ESCAPE_DEPTH: usize = 3;

impl Redactor {
    /// A redactor that knows no secret yet.
    pub fn new() -> Self {
        Redactor::default()
    }

    /// A redactor for the run's credentials.
    pub fn for_credentials(credentials: &Credentials) -> Self {
        let redactor = Redactor::new();
        redactor.learn_credentials(credentials);
        redactor
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Secrets> {
        self.shared
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Secrets> {
        self.shared
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Learns a secret known only at run time, e.g. an OAuth 2.0 access token the client just
    /// obtained: call it as soon as the secret is known, before it is sent or can be echoed.
    /// From then on every clone of this handle (the client's, the run's output) redacts it in
    /// every form: as it is, base64-encoded, URL-encoded, JSON-, HTML- or XML-escaped, in
    /// evidence, reasons, reports, bundles, the terminal and error messages. Text already
    /// captured before the call is redacted again when it is written out. Secrets shorter than
    /// [`MIN_FREE_TEXT_SECRET`] characters are not searched in free text (they would mangle
    /// unrelated evidence); send them only in a header or query parameter named by
    /// [`Redactor::learn_credentials`] (or [`Redactor::learn_header`]). Learning a secret twice
    /// is harmless.
    pub fn learn(&self, secret: &str) {
        self.learn_all(&[secret.to_owned()]);
    }

    /// Learns a header whose whole value is a credential (e.g. a token endpoint's own
    /// `authorization`): captured headers of that name show [`REDACTED`].
    pub fn learn_header(&self, name: &str) {
        let name = name.to_ascii_lowercase();
        let mut secrets = self.write();
        if !secrets.secret_headers.contains(&name) {
            secrets.secret_headers.push(name);
        }
    }

    /// Learns every secret of `credentials`, the headers and query parameter that carry them,
    /// and the forms they travel in (the base64 of a basic pair).
    pub fn learn_credentials(&self, credentials: &Credentials) {
        let mut secrets: Vec<String> = credentials
            .secrets()
            .into_iter()
            .map(str::to_owned)
            .collect();
        for header in ["authorization", "proxy-authorization"] {
            self.learn_header(header);
        }
        for (name, value) in credentials.headers() {
            self.learn_header(&name);
            // The credential without its scheme: what a partner echoing it shows.
            if let Some((_, credential)) = value.split_once(' ') {
                secrets.push(credential.to_owned());
            }
            secrets.push(value);
        }
        if let Credentials::Basic { username, password } = credentials {
            secrets.push(format!("{}:{}", username.expose(), password.expose()));
        }
        if let Some((name, _)) = credentials.query() {
            let mut known = self.write();
            if !known.secret_query.iter().any(|known| known == name) {
                known.secret_query.push(name.to_owned());
            }
        }
        self.learn_all(&secrets);
    }

    /// Also redacts `credentials` (e.g. deliberately wrong ones sent in a probe); the same as
    /// [`Redactor::learn_credentials`].
    pub fn add(&self, credentials: &Credentials) {
        self.learn_credentials(credentials);
    }

    fn learn_all(&self, secrets: &[String]) {
        let mut known = self.write();
        let before = known.forms.len();
        for secret in secrets {
            for form in forms(secret) {
                if form.chars().count() >= MIN_FREE_TEXT_SECRET && !known.forms.contains(&form) {
                    known.forms.push(form);
                }
            }
        }
        if known.forms.len() == before {
            return;
        }
        // Longest first, so a secret containing another is replaced whole.
        known
            .forms
            .sort_by_key(|form| (std::cmp::Reverse(form.len()), form.clone()));
        known.automaton = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(&known.forms)
            .ok()
            .map(Arc::new);
    }

    /// Whether no secret is searched in free text.
    pub fn is_empty(&self) -> bool {
        self.read().forms.is_empty()
    }

    /// Redacts a URL: the key's query parameter by name, then secrets in the rest.
    pub fn url(&self, url: &reqwest::Url) -> String {
        let secret_query = self.read().secret_query.clone();
        if secret_query.is_empty() || url.query().is_none() {
            return self.text(url.as_str());
        }
        let mut masked = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret_query.iter().any(|secret| *secret == name) {
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

    /// Redacts every secret in `text`, in every form and through every layer of escapes.
    pub fn text(&self, text: &str) -> String {
        let automaton = self.read().automaton.clone();
        match automaton {
            Some(automaton) => redact(&automaton, text),
            None => text.to_owned(),
        }
    }

    /// Redacts a header value, wholly for credential headers.
    pub fn header(&self, name: &str, value: &str) -> String {
        let credential = self
            .read()
            .secret_headers
            .iter()
            .any(|secret| secret.eq_ignore_ascii_case(name));
        if credential {
            REDACTED.to_owned()
        } else {
            self.text(value)
        }
    }
}

/// The forms a secret is searched in, besides escapes (which the search reads itself): as it
/// is, base64 (standard and URL-safe alphabets, padded or not), with `+` for spaces (form
/// encoding), and shell-quoted as a curl line quotes it.
fn forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let mut forms = vec![secret.to_owned()];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    if secret.contains(' ') {
        forms.push(secret.replace(' ', "+"));
    }
    if secret.contains('\'') {
        forms.push(secret.replace('\'', r"'\''"));
    }
    forms.dedup();
    forms
}

/// `text` with every match of `automaton`, in the text as it is and in each layer of escapes
/// read, replaced by [`REDACTED`]; line by line, so memory stays that of the longest line.
fn redact(automaton: &aho_corasick::AhoCorasick, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if !crate::encoded::may_hold_escapes(line) && !automaton.is_match(line) {
            out.push_str(line);
            continue;
        }
        let scan = crate::encoded::Scan::new(line, ESCAPE_DEPTH);
        let mut spans: Vec<(usize, usize)> = scan
            .all_hits(automaton, 0..=scan.depth(), |_, _, _, _| true)
            .into_iter()
            .map(|hit| (hit.start, hit.end))
            .collect();
        spans.sort_unstable();
        // Overlapping matches (one secret found in two layers) are redacted as their union.
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut at = 0;
        for (start, end) in merged {
            out.push_str(&line[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&line[at..]);
    }
    out
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
mod recording_tests {
    use super::*;

    #[test]
    fn an_exchange_recorded_before_microseconds_and_sizes_were_kept_still_reads() {
        let old = r#"{"id":1,"operation":null,"purpose":"p","method":"GET","url":"http://x/",
            "request_headers":[],"request_body":null,"status":200,"response_headers":[],
            "response_body":"{}","error":null,"started_ms":3,"duration_ms":12,"retry_of":null}"#;
        let exchange: Exchange = serde_json::from_str(old).unwrap();
        assert_eq!(exchange.duration_us, 0);
        assert_eq!(exchange.response_body_bytes, None);
        assert_eq!(exchange.duration(), std::time::Duration::from_millis(12));
    }

    #[test]
    fn a_duration_is_kept_to_the_microsecond() {
        let mut exchange: Exchange = serde_json::from_str(
            r#"{"id":1,"operation":null,"purpose":"p","method":"GET","url":"http://x/",
            "request_headers":[],"request_body":null,"status":null,"response_headers":[],
            "response_body":null,"error":null,"started_ms":0,"duration_ms":0,"retry_of":null}"#,
        )
        .unwrap();
        exchange.set_duration(std::time::Duration::from_micros(12_345));
        assert_eq!((exchange.duration_ms, exchange.duration_us), (12, 12_345));
        assert_eq!(
            exchange.duration(),
            std::time::Duration::from_micros(12_345)
        );
    }
}

#[cfg(test)]
mod form_tests {
    use super::*;
    use crate::auth::{KeyPlace, Secret};
    use base64::Engine;

    #[test]
    fn every_form_of_a_secret_is_redacted() {
        let token = "tok/en+AB&c'd";
        let redactor = Redactor::for_credentials(&Credentials::Bearer(Secret::new(token)));
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        let texts = [
            format!("echo {token}"),
            format!("echo {b64}"),
            "json tok\\/en+AB&c'd".to_owned(),
            "json \\u0074ok\\u002fen\\u002BAB\\u0026c\\u0027d".to_owned(),
            "html tok/en+AB&amp;c&#39;d".to_owned(),
            "xml tok&#x2F;en&#43;AB&amp;c&apos;d".to_owned(),
            "url tok%2Fen%2BAB%26c%27d and tok%2fen%2bAB%26c%27d".to_owned(),
            "curl 'tok/en+AB&c'\\''d'".to_owned(),
            // A partner's escape inside the JSON report's own string escaping.
            r#"{"body":"{\"m\":\"tok\\\/en\\u002bAB\\u0026c'd\"}"}"#.to_owned(),
            // ... and inside the HTML page's entities.
            "<pre>tok/en+AB&amp;amp;c&amp;#39;d</pre>".to_owned(),
        ];
        for text in texts {
            let redacted = redactor.text(&text);
            assert!(redacted.contains(REDACTED), "{text} → {redacted}");
            for piece in ["tok", "en+AB", "c'd", "AB&amp;c"] {
                assert!(!redacted.contains(piece), "{text} → {redacted}");
            }
        }
        assert_eq!(redactor.text("json \\u0074ok\\/en+AB&c'd!"), "json ***!");
    }

    #[test]
    fn the_base64_of_a_basic_pair_is_redacted() {
        let credentials = Credentials::Basic {
            username: Secret::new("user"),
            password: Secret::new("pa55"),
        };
        let redactor = Redactor::for_credentials(&credentials);
        let pair = base64::engine::general_purpose::STANDARD.encode("user:pa55");
        assert_eq!(redactor.text(&format!("you sent {pair}")), "you sent ***");
        assert_eq!(
            redactor.text(&format!("you sent Basic {pair}")),
            "you sent ***"
        );
        assert_eq!(redactor.text("who is user:pa55?"), "who is ***?");
        // Each part is shorter than a free-text secret: ordinary words stay.
        assert_eq!(redactor.text("user pa55"), "user pa55");
    }

    #[test]
    fn a_secret_learnt_through_one_clone_is_redacted_by_every_clone() {
        let redactor = Redactor::new();
        let output = redactor.clone();
        assert_eq!(output.text("token access-123456"), "token access-123456");
        redactor.learn("access-123456");
        assert_eq!(output.text("token access-123456"), "token ***");
        redactor.learn_credentials(&Credentials::ApiKey {
            place: KeyPlace::Query("key".into()),
            key: Secret::new("k"),
        });
        let url = reqwest::Url::parse("http://x/?key=k&a=access-123456").unwrap();
        assert_eq!(output.url(&url), "http://x/?key=***&a=***");
        assert!(!format!("{output:?}").contains("access"));
    }
}

#[cfg(test)]
mod free_text_tests {
    use super::*;
    use crate::auth::Secret;

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

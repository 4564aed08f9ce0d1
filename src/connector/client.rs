//! The partner client: turns profile operations into HTTP calls (reqwest), follows paging,
//! decodes answers through the profile, and records every exchange.

mod oauth;

pub use oauth::{TokenError, TOKEN_PURPOSE};

use super::exchange::{truncate_evidence, Exchange, Recorder, Redactor, REDACTED};
use crate::auth::{Credentials, Secret};
use crate::model::{Field, Record, RecordKind};
use crate::profile::body::{self, Payload};
use crate::profile::path::scalar_text;
use crate::profile::{
    AnswerShape, BodyFormat, Conflict, IdFrom, JsonPath, NoneAnswer, Operation, OperationKind,
    PageStop, Paging, PagingStyle, Profile, Slot, SlotValues,
};
use reqwest::Url;
use serde_json::Value;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits on what the client waits for and reads.
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Per-request total timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// The most bytes of a response body read.
    pub max_body: usize,
    /// The most pages followed in one list.
    pub max_pages: usize,
    /// The most records read from one list, across its pages.
    pub max_list_records: usize,
    /// The most body bytes read for one list, across its pages.
    pub max_list_bytes: usize,
    /// Retries of a request answered 503 or 429.
    pub retries: u32,
    /// The first wait before a retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// The longest wait before a retry, whatever `Retry-After` says.
    pub max_retry_wait: Duration,
    /// The whole run's deadline, from the client's creation: requests after it are not sent.
    pub deadline: Option<Duration>,
    /// Redirects followed within the partner's origin.
    pub max_redirects: usize,
    /// Accept invalid TLS certificates (self-signed sandboxes); every report says so.
    pub insecure: bool,
    /// Seeds the jitter of retry waits, so a run replays the same way.
    pub jitter_seed: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_body: 8 * 1024 * 1024,
            max_pages: 2_000,
            max_list_records: 200_000,
            max_list_bytes: 256 * 1024 * 1024,
            retries: 2,
            retry_backoff: Duration::from_millis(50),
            max_retry_wait: Duration::from_secs(5),
            deadline: None,
            max_redirects: 5,
            insecure: false,
            jitter_seed: 0,
        }
    }
}

/// A partner answer that arrived.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The exchange recording it.
    pub exchange: usize,
    /// HTTP status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `Retry-After` header in seconds, if any.
    pub retry_after: Option<Duration>,
    /// Bytes of the body read.
    pub body_bytes: usize,
    /// The body as a document: JSON as it is, XML and SOAP read into the same shape (a SOAP
    /// fault as `{"error": {"code", "message", ...}}`).
    pub json: Option<Value>,
    /// Why the body cannot be read in the operation's format, if so (and not empty).
    pub body_problem: Option<String>,
    /// The `Link` header's `rel="next"` target (RFC 8288), if any.
    pub link_next: Option<String>,
    /// The header the operation's `id-header` names, if the answer has it.
    pub id_header: Option<String>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The next page's URL the `Link` header gives.
    pub fn next_link(&self) -> Option<String> {
        self.link_next.clone()
    }
}

/// The target of the link with relation `rel` in `Link` header values (RFC 8288): links are
/// `<uri>; param=value; ...`, comma-separated; `rel` may list several relations.
pub fn link_target<'h>(values: impl IntoIterator<Item = &'h str>, rel: &str) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            let tail = &after[close + 1..];
            // The parameters run to the next link (a `,` outside quotes) or the end.
            let mut end = tail.len();
            let mut quoted = false;
            for (index, c) in tail.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => {
                        end = index;
                        break;
                    }
                    _ => {}
                }
            }
            let params = &tail[..end];
            let names_rel = params.split(';').any(|param| {
                let Some((name, value)) = param.split_once('=') else {
                    return false;
                };
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|relation| relation.eq_ignore_ascii_case(rel))
            });
            if names_rel {
                return Some(target.trim().to_owned());
            }
            rest = &tail[end..];
        }
    }
    None
}

/// A call that got no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    /// The exchange recording the attempt.
    pub exchange: usize,
    /// What happened.
    pub message: String,
    /// Whether it was a timeout.
    pub timed_out: bool,
}

impl CallError {
    /// A call that was never sent (its URL or body could not be made): no exchange records it.
    fn unsent(message: impl Into<String>) -> CallError {
        CallError {
            exchange: 0,
            message: message.into(),
            timed_out: false,
        }
    }
}

/// What one attempt at a request carries besides the request itself.
struct Attempt<'a> {
    /// The exchange it retries after a 503 or 429, if it does.
    retry_of: Option<usize>,
    /// The OAuth token to send, for OAuth credentials.
    token: Option<&'a Secret>,
}

/// Values for an operation's `{id}` and `{email}` slots, with the tenancy.
struct Slots<'a> {
    profile: &'a Profile,
    id: Option<&'a str>,
    email: Option<&'a str>,
}

impl SlotValues for Slots<'_> {
    fn value(&self, slot: Slot) -> Option<&str> {
        match slot {
            Slot::Id => self.id,
            Slot::Email => self.email,
            other => self.profile.tenancy.value(other),
        }
    }
}

/// The result of fetching a whole list.
#[derive(Debug, Clone, Default)]
pub struct ListOutcome {
    /// Records decoded, in order, across every page read.
    pub records: Vec<Record>,
    /// The exchanges of every page.
    pub exchanges: Vec<usize>,
    /// Items that could not be decoded: (exchange, message).
    pub item_problems: Vec<(usize, String)>,
    /// Why the list could not be read to its end, if so.
    pub failure: Option<ListFailure>,
}

/// Why a list could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFailure {
    /// The operation is not in the profile.
    NotDeclared,
    /// A page request got no answer.
    Unreachable {
        /// Page number (from 1).
        page: usize,
        /// The exchange.
        exchange: usize,
        /// What happened.
        message: String,
        /// Whether it timed out.
        timed_out: bool,
    },
    /// A page answered with an error status or an unreadable body.
    BadPage {
        /// Page number (from 1).
        page: usize,
        /// The exchange.
        exchange: usize,
        /// What is wrong.
        message: String,
    },
    /// Paging does not end: a cursor, link or page repeats.
    Loop {
        /// Page number (from 1) where the repeat showed.
        page: usize,
        /// The exchange.
        exchange: usize,
        /// What repeated.
        message: String,
    },
    /// More pages than the client follows.
    TooManyPages {
        /// The cap.
        cap: usize,
    },
    /// The pages disagree with what the partner states about the list (its total, its number
    /// of pages).
    Incomplete {
        /// The exchange holding the partner's statement, if one.
        exchange: Option<usize>,
        /// What disagrees.
        message: String,
    },
    /// More records than the client reads from one list.
    TooManyRecords {
        /// The cap.
        cap: usize,
    },
    /// More bytes than the client reads for one list.
    TooManyBytes {
        /// The cap.
        cap: usize,
    },
}

impl ListFailure {
    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            ListFailure::NotDeclared => "the profile declares no such operation".into(),
            ListFailure::Unreachable { page, message, .. } => {
                format!("page {page} could not be fetched: {message}")
            }
            ListFailure::BadPage { page, message, .. } => format!("page {page}: {message}"),
            ListFailure::Loop { page, message, .. } => {
                format!("paging does not end: at page {page}, {message}")
            }
            ListFailure::TooManyPages { cap } => {
                format!("the list did not end within {cap} pages, the most spoke follows (paging may not end)")
            }
            ListFailure::Incomplete { message, .. } => message.clone(),
            ListFailure::TooManyRecords { cap } => {
                format!(
                    "the list did not end within {cap} records, the most spoke reads from one list"
                )
            }
            ListFailure::TooManyBytes { cap } => format!(
                "the list did not end within {} MiB of pages, the most spoke reads for one list",
                cap / (1024 * 1024)
            ),
        }
    }

    /// The exchange showing the failure, if one.
    pub fn exchange(&self) -> Option<usize> {
        match self {
            ListFailure::Unreachable { exchange, .. }
            | ListFailure::BadPage { exchange, .. }
            | ListFailure::Loop { exchange, .. } => Some(*exchange),
            ListFailure::Incomplete { exchange, .. } => *exchange,
            _ => None,
        }
    }
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The answer.
    pub answer: Answer,
    /// The partner's id of the record, if it came back (for a conflict: the existing one's).
    pub id: Option<String>,
    /// The record as the partner echoed it, if it did (never an acknowledgement).
    pub echoed: Option<Record>,
    /// The answer is the profile's declared conflict answer: "already there, use this id".
    pub conflict: bool,
}

impl Saved {
    /// Whether the partner took the write: a 2xx answer, or its declared conflict answer
    /// naming the record it already holds.
    pub fn accepted(&self) -> bool {
        self.conflict || self.answer.is_success()
    }
}

/// A client of one partner's API, driven only by its profile.
#[derive(Debug, Clone)]
pub struct PartnerClient {
    http: reqwest::Client,
    /// The same client opening a new connection for every request: for the one retry of an
    /// idempotent request whose kept-alive connection was closed before an answer.
    fresh: reqwest::Client,
    profile: Arc<Profile>,
    base_url: Url,
    credentials: Credentials,
    redactor: Redactor,
    recorder: Recorder,
    limits: ClientLimits,
    started: Instant,
    /// The OAuth token, shared by clones.
    tokens: Arc<oauth::TokenCache>,
}

impl PartnerClient {
    /// A client for `profile` at `base_url`.
    pub fn new(
        profile: Arc<Profile>,
        base_url: &str,
        credentials: Credentials,
        limits: ClientLimits,
    ) -> Result<Self, String> {
        Self::with_tls(
            profile,
            base_url,
            credentials,
            limits,
            &crate::tls::ClientTls::none(),
        )
    }

    /// A client for `profile` at `base_url` that also presents `tls`'s client certificate
    /// and trusts its CAs.
    pub fn with_tls(
        profile: Arc<Profile>,
        base_url: &str,
        credentials: Credentials,
        limits: ClientLimits,
        tls: &crate::tls::ClientTls,
    ) -> Result<Self, String> {
        let mut base_url =
            Url::parse(base_url).map_err(|error| match base_url.contains("://") {
                false => format!(
                    "base URL `{base_url}` has no scheme: add it, e.g. `http://{base_url}` or `https://{base_url}`"
                ),
                true => format!("base URL `{base_url}`: {error}"),
            })?;
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let origin = base_url.origin();
        let max_redirects = limits.max_redirects;
        // Redirects are followed only within the partner's origin (so credentials never go
        // elsewhere, and https is never downgraded), and only so far; a redirect not followed
        // comes back as the 3xx answer it is, for the rules to judge.
        let redirects = || {
            let origin = origin.clone();
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max_redirects || attempt.url().origin() != origin {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            })
        };
        // hyper's pool keeps `retry_canceled_requests` on (reqwest never turns it off): a
        // request that a reused connection closed before it was written is sent again on
        // another. What it does not cover, a request written and then met by a close before
        // any answer, is handled in `receive` with `fresh`.
        let build = |pooled: bool| -> Result<reqwest::Client, String> {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(limits.connect_timeout)
                .timeout(limits.request_timeout)
                .redirect(redirects())
                .danger_accept_invalid_certs(limits.insecure)
                .user_agent(concat!("spoke/", env!("CARGO_PKG_VERSION")));
            if !pooled {
                builder = builder.pool_max_idle_per_host(0);
            }
            tls.configure(builder)?
                .build()
                .map_err(|error| format!("cannot build the HTTP client: {error}"))
        };
        let http = build(true)?;
        let fresh = build(false)?;
        Ok(PartnerClient {
            http,
            fresh,
            redactor: Redactor::for_credentials(&credentials),
            profile,
            base_url,
            credentials,
            recorder: Recorder::default(),
            limits,
            started: Instant::now(),
            tokens: Arc::default(),
        })
    }

    /// The profile driving this client.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The limits it keeps to.
    pub fn limits(&self) -> &ClientLimits {
        &self.limits
    }

    /// The exchange log.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The redactor for this partner's secrets.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn operation(&self, kind: OperationKind) -> Option<&Operation> {
        self.profile.operation(kind)
    }

    /// The operation, or the error of calling one the profile does not declare.
    fn declared(&self, kind: OperationKind) -> Result<&Operation, CallError> {
        self.operation(kind)
            .ok_or_else(|| CallError::unsent(format!("the profile declares no {}", kind.key())))
    }

    /// The URL of an operation with its slots filled, plus extra query parameters.
    fn url_for(
        &self,
        operation: &Operation,
        id: Option<&str>,
        email: Option<&str>,
        extra_query: &[(String, String)],
    ) -> Result<Url, String> {
        let slots = Slots {
            profile: &self.profile,
            id,
            email,
        };
        let path = operation
            .path
            .render(&slots, |value| {
                percent_encoding::utf8_percent_encode(value, PATH_SEGMENT).to_string()
            })
            .map_err(|slot| format!("no value for {}", slot.placeholder()))?;
        let mut url = self
            .base_url
            .join(path.trim_start_matches('/'))
            .map_err(|error| format!("cannot build the URL for {path}: {error}"))?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, template) in self.profile.partner.query.iter().chain(&operation.query) {
                let value = template
                    .render(&slots, str::to_owned)
                    .map_err(|slot| format!("no value for {}", slot.placeholder()))?;
                pairs.append_pair(name, &value);
            }
            for (name, value) in extra_query {
                pairs.append_pair(name, value);
            }
            if let Some((name, key)) = self.credentials.query() {
                pairs.append_pair(name, key);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    /// Time left before the run's deadline, if it has one.
    fn time_left(&self) -> Option<Duration> {
        self.limits
            .deadline
            .map(|deadline| deadline.saturating_sub(self.started.elapsed()))
    }

    /// Why a redirect came back unfollowed.
    fn unfollowed_redirect(&self, location: Option<&str>) -> String {
        let Some(location) = location else {
            return "a redirect without a Location header".into();
        };
        match self.base_url.join(location) {
            Ok(target) if target.origin() != self.base_url.origin() => {
                let downgrade = self.base_url.scheme() == "https" && target.scheme() == "http";
                format!(
                    "a redirect to {} was not followed: {}",
                    target.origin().ascii_serialization(),
                    if downgrade {
                        "it downgrades https to http"
                    } else {
                        "it leaves the partner's origin, and credentials are not sent elsewhere"
                    }
                )
            }
            Ok(target) => format!(
                "redirects did not end within {} hops (last to {})",
                self.limits.max_redirects,
                target.path()
            ),
            Err(error) => format!("a redirect to `{location}`, which is not a URL: {error}"),
        }
    }

    /// `url` with the API key added where the key travels in the query and the link lacks it.
    fn with_query_credentials(&self, mut url: Url) -> Url {
        if let Some((name, key)) = self.credentials.query() {
            if !url.query_pairs().any(|(present, _)| present == name) {
                url.query_pairs_mut().append_pair(name, key);
            }
        }
        url
    }

    /// Sends one request and records it; a 503 or 429 is retried (each attempt recorded) up to
    /// the retry limit, waiting as `Retry-After` says (capped) or backing off.
    pub async fn send(
        &self,
        operation: Option<OperationKind>,
        purpose: &str,
        method: &str,
        url: Url,
        body: Option<&str>,
    ) -> Result<Answer, CallError> {
        let mut retry_of = None;
        let mut attempt = 0u32;
        // OAuth: a token answered 401 is replaced once, and the request sent again.
        let mut refused: Option<Secret> = None;
        let mut renewed = false;
        loop {
            let token = match self.credentials.oauth2() {
                Some(client) => Some(self.token(client, refused.take().as_ref()).await?),
                None => None,
            };
            let answer = self
                .send_once(
                    operation,
                    purpose,
                    method,
                    url.clone(),
                    body,
                    Attempt {
                        retry_of,
                        token: token.as_ref(),
                    },
                )
                .await?;
            if answer.status == 401 && token.is_some() && !renewed {
                renewed = true;
                refused = token;
                continue;
            }
            let transient = matches!(answer.status, 429 | 503);
            if !transient || attempt >= self.limits.retries {
                return Ok(answer);
            }
            attempt += 1;
            let backoff = self.limits.retry_backoff * 2u32.pow(attempt - 1);
            let wait = answer
                .retry_after
                .unwrap_or_else(|| {
                    backoff + jitter(self.limits.jitter_seed, answer.exchange, backoff)
                })
                .min(self.limits.max_retry_wait)
                .min(self.time_left().unwrap_or(Duration::MAX));
            tokio::time::sleep(wait).await;
            retry_of = Some(answer.exchange);
        }
    }

    async fn send_once(
        &self,
        operation: Option<OperationKind>,
        purpose: &str,
        method: &str,
        url: Url,
        body: Option<&str>,
        attempt: Attempt<'_>,
    ) -> Result<Answer, CallError> {
        let Attempt { retry_of, token } = attempt;
        let method_value =
            reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = self.http.request(method_value, url.clone());
        let remaining = self.time_left();
        if let Some(remaining) = remaining {
            request = request.timeout(remaining.min(self.limits.request_timeout));
        }
        let declared = operation.and_then(|kind| self.profile.operation(kind));
        let format = declared.map_or(self.profile.partner.format, |op| self.profile.format_of(op));
        let action = declared
            .and_then(|op| op.soap_action.as_deref())
            .filter(|_| format.is_soap());
        // The profile's fixed headers, the partner's and then the operation's; an `Accept`
        // among them replaces the format's own.
        let fixed: Vec<(String, String)> = self
            .profile
            .partner
            .headers
            .iter()
            .chain(declared.map(|op| &op.headers).into_iter().flatten())
            .filter_map(|(name, template)| {
                let value = template.render(&self.profile.tenancy, str::to_owned).ok()?;
                Some((name.to_ascii_lowercase(), value))
            })
            .collect();
        let accept = fixed
            .iter()
            .rev()
            .find(|(name, _)| name == "accept")
            .map_or(format.accept(), |(_, value)| value.as_str())
            .to_owned();
        let mut request_headers = vec![("accept".to_owned(), accept.clone())];
        request = request.header("accept", accept);
        for (name, value) in fixed.iter().filter(|(name, _)| name != "accept") {
            request_headers.push((name.clone(), value.clone()));
            request = request.header(name.as_str(), value.as_str());
        }
        if let (BodyFormat::Soap11, Some(action)) = (format, action) {
            let quoted = format!("\"{action}\"");
            request_headers.push(("soapaction".to_owned(), quoted.clone()));
            request = request.header("soapaction", quoted);
        }
        let credential_headers = self.credentials.headers();
        if let (None, Some(token)) = (self.credentials.header(), token) {
            request_headers.push(("authorization".to_owned(), REDACTED.to_owned()));
            request = request.header("authorization", format!("Bearer {}", token.expose()));
        }
        for (name, value) in credential_headers {
            request_headers.push((name.clone(), self.redactor.header(&name, &value)));
            request = request.header(name, value);
        }
        let body_text = body.map(str::to_owned);
        if let Some(text) = &body_text {
            let content_type = format.content_type(action);
            request_headers.push(("content-type".to_owned(), content_type.clone()));
            request = request
                .header("content-type", content_type)
                .body(text.clone());
        }
        let started = Instant::now();
        let mut exchange = Exchange {
            id: 0,
            operation: operation.map(|kind| kind.key().to_owned()),
            purpose: purpose.to_owned(),
            method: method.to_owned(),
            // A load run keeps no evidence: skip the redaction work for it.
            url: if self.recorder.keeps() {
                self.redactor.url(&url)
            } else {
                String::new()
            },
            request_headers,
            request_body: body_text
                .filter(|_| self.recorder.keeps())
                .map(|text| truncate_evidence(&self.redactor.text(&text))),
            status: None,
            response_headers: Vec::new(),
            response_body: None,
            error: None,
            started_ms: started.duration_since(self.started).as_millis() as u64,
            duration_ms: 0,
            duration_us: 0,
            request_body_bytes: body.map(str::len),
            response_body_bytes: None,
            retry_of,
        };
        let outcome = match remaining {
            Some(remaining) if remaining.is_zero() => Err((
                format!(
                    "not sent: the run's deadline of {} ms had passed",
                    self.limits.deadline.unwrap_or_default().as_millis()
                ),
                true,
            )),
            _ => {
                let waited = remaining.map_or(self.limits.request_timeout, |remaining| {
                    remaining.min(self.limits.request_timeout)
                });
                self.receive(request, waited).await
            }
        };
        exchange.set_duration(started.elapsed());
        match outcome {
            Ok((status, headers, bytes, cut_off)) => {
                exchange.status = Some(status);
                exchange.response_body_bytes = Some(bytes.len());
                if self.recorder.keeps() {
                    exchange.response_headers = headers
                        .iter()
                        .map(|(name, value)| (name.clone(), self.redactor.header(name, value)))
                        .collect();
                    let text = String::from_utf8_lossy(&bytes);
                    exchange.response_body =
                        (!bytes.is_empty()).then(|| truncate_evidence(&self.redactor.text(&text)));
                }
                let header = |wanted: &str| {
                    headers
                        .iter()
                        .find(|(name, _)| name == wanted)
                        .map(|(_, value)| value.clone())
                };
                let location = header("location");
                let id_header = declared
                    .and_then(|op| op.id_header.as_deref())
                    .and_then(|name| header(&name.to_ascii_lowercase()));
                let link_next = link_target(
                    headers
                        .iter()
                        .filter(|(name, _)| name == "link")
                        .map(|(_, value)| value.as_str()),
                    "next",
                );
                let retry_after = header("retry-after")
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let mut status = status;
                let (json, body_problem) = if cut_off {
                    (
                        None,
                        Some(format!(
                            "the body is over the {}-byte limit",
                            self.limits.max_body
                        )),
                    )
                } else if (300..400).contains(&status) {
                    (None, Some(self.unfollowed_redirect(location.as_deref())))
                } else if bytes.iter().all(u8::is_ascii_whitespace) {
                    (None, None)
                } else if let Some(problem) = body_format_problem(&header, &bytes, format) {
                    (None, Some(problem))
                } else {
                    match std::str::from_utf8(&bytes) {
                        Err(error) => (None, Some(format!("the body is not UTF-8: {error}"))),
                        Ok(text) => match body::decode(&self.profile, format, text) {
                            Ok(Payload::Document(document)) => (Some(document), None),
                            // A fault is an error answer whatever its status says; SOAP 1.1
                            // answers every fault 500, so its fault code tells the class.
                            Ok(Payload::Fault { error, sender }) => {
                                let soap11_client_fault =
                                    format == BodyFormat::Soap11 && sender && status == 500;
                                if (200..300).contains(&status) || soap11_client_fault {
                                    status = if sender { 400 } else { 500 };
                                }
                                (Some(error), None)
                            }
                            Err(problem) => (None, Some(problem)),
                        },
                    }
                };
                let id = self.recorder.push(exchange);
                Ok(Answer {
                    exchange: id,
                    body_bytes: bytes.len(),
                    status,
                    location,
                    retry_after,
                    json,
                    body_problem,
                    link_next,
                    id_header,
                })
            }
            Err((message, timed_out)) => {
                exchange.error = Some(message.clone());
                let id = self.recorder.push(exchange);
                Err(CallError {
                    exchange: id,
                    message,
                    timed_out,
                })
            }
        }
    }

    /// Sends the request and reads the body up to the cap. An idempotent request whose
    /// connection was closed before any answer (a partner closing kept-alive connections
    /// without `Connection: close`) is sent once more on a fresh connection, within the time
    /// left of `waited`; any other request is not sent again, since the partner may have
    /// acted on it.
    async fn receive(
        &self,
        request: reqwest::RequestBuilder,
        waited: Duration,
    ) -> Result<(u16, Vec<(String, String)>, Vec<u8>, bool), (String, bool)> {
        let describe = |error: reqwest::Error, waited: Duration| {
            let timed_out = error.is_timeout();
            let message = if timed_out && waited < self.limits.request_timeout {
                format!(
                    "no answer within {} ms, when the run's deadline passed",
                    waited.as_millis()
                )
            } else if timed_out {
                format!("no answer within {} ms", waited.as_millis())
            } else if error.is_connect() {
                format!("cannot connect: {}", innermost(&error))
            } else {
                error_chain(&error)
            };
            (message, timed_out)
        };
        let redacted =
            |(message, timed_out): (String, bool)| (self.redactor.text(&message), timed_out);
        let request = request
            .build()
            .map_err(|error| redacted(describe(error, waited)))?;
        let again = is_idempotent(request.method())
            .then(|| request.try_clone())
            .flatten();
        let sent = Instant::now();
        let mut response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) if closed_before_answer(&error) => {
                let closed = innermost(&error);
                let Some(mut again) = again else {
                    return Err(redacted((
                        format!(
                            "the connection was closed before an answer ({closed}), and the \
                             request is not sent again since the partner may have acted on it"
                        ),
                        false,
                    )));
                };
                let left = waited.saturating_sub(sent.elapsed());
                *again.timeout_mut() = Some(left);
                self.fresh.execute(again).await.map_err(|error| {
                    // A timeout here spent what was left of the request's own time.
                    let (failed, timed_out) = describe(error, waited);
                    redacted((
                        format!(
                            "the connection was closed before an answer ({closed}), and a \
                             fresh connection failed too: {failed}"
                        ),
                        timed_out,
                    ))
                })?
            }
            Err(error) => return Err(redacted(describe(error, waited))),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut bytes = Vec::new();
        let mut cut_off = false;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| redacted(describe(error, waited)))?
        {
            if bytes.len() + chunk.len() > self.limits.max_body {
                cut_off = true;
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, headers, bytes, cut_off))
    }

    /// Calls a declared operation.
    pub async fn call(
        &self,
        kind: OperationKind,
        purpose: &str,
        id: Option<&str>,
        email: Option<&str>,
        extra_query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let operation = self.declared(kind)?;
        let url = self
            .url_for(operation, id, email, extra_query)
            .map_err(CallError::unsent)?;
        let body = self
            .request_body(operation, id, email, body)
            .map_err(CallError::unsent)?;
        self.send(
            Some(kind),
            purpose,
            operation.method.as_str(),
            url,
            body.as_deref(),
        )
        .await
    }

    /// The body of a request in the operation's format: the document given, with the SOAP
    /// params written in; SOAP always sends an envelope, REST only a given document.
    fn request_body(
        &self,
        operation: &Operation,
        id: Option<&str>,
        email: Option<&str>,
        document: Option<&Value>,
    ) -> Result<Option<String>, String> {
        let format = self.profile.format_of(operation);
        if document.is_none() && !format.is_soap() {
            return Ok(None);
        }
        let mut document = document.cloned().unwrap_or(Value::Null);
        let slots = Slots {
            profile: &self.profile,
            id,
            email,
        };
        body::apply_params(operation, &slots, &mut document)?;
        body::encode(&self.profile, format, &document).map(Some)
    }

    /// Calls a declared operation with a raw body as given (to probe how bad input is answered).
    pub async fn call_raw(
        &self,
        kind: OperationKind,
        purpose: &str,
        body: &str,
    ) -> Result<Answer, CallError> {
        let operation = self.declared(kind)?;
        let url = self
            .url_for(operation, None, None, &[])
            .map_err(CallError::unsent)?;
        self.send(
            Some(kind),
            purpose,
            operation.method.as_str(),
            url,
            Some(body),
        )
        .await
    }

    /// The same client keeping no exchanges (numbering them only), for load runs.
    pub fn without_recording(&self) -> PartnerClient {
        PartnerClient {
            recorder: Recorder::counting_only(),
            ..self.clone()
        }
    }

    /// The same client presenting other credentials; exchanges go to the same log, and the
    /// real secrets stay redacted (the others are learnt by the shared redactor too). OAuth
    /// client credentials are presented as a token made up from them (see
    /// [`Credentials::as_presented`]): a probe with wrong credentials fetches no token.
    pub fn with_credentials(&self, credentials: Credentials) -> PartnerClient {
        let credentials = credentials.as_presented();
        self.redactor.learn_credentials(&credentials);
        PartnerClient {
            credentials,
            tokens: Arc::default(),
            ..self.clone()
        }
    }

    /// The same client counting the run's deadline (and its exchanges' start times) from
    /// `started`, the start of the whole run, rather than from its own creation.
    pub fn counting_from(self, started: Instant) -> PartnerClient {
        PartnerClient { started, ..self }
    }

    /// The same client redacting through `redactor`, a handle shared with the run's output, so
    /// that what the client learns (its credentials, tokens obtained at run time) is redacted
    /// in everything the run writes.
    pub fn with_redactor(self, redactor: Redactor) -> PartnerClient {
        redactor.learn_credentials(&self.credentials);
        PartnerClient { redactor, ..self }
    }

    /// Fetches a whole list, following its paging to the end.
    pub async fn list_all(&self, kind: OperationKind, purpose: &str) -> ListOutcome {
        let mut outcome = ListOutcome::default();
        let Some(operation) = self.operation(kind) else {
            outcome.failure = Some(ListFailure::NotDeclared);
            return outcome;
        };
        let paging = operation.paging.clone().unwrap_or_default();
        let codec = self.profile.codec(kind.record());
        let mut state = PageState::new(&paging);
        let mut seen_pages: BTreeSet<u64> = BTreeSet::new();
        let mut next_url: Option<Url> = None;
        // Set while a short page is being confirmed: the next page either holds more (the
        // partner pages by a smaller size than asked) or ends the list.
        let mut confirming = false;
        let mut list_bytes = 0usize;
        for page in 1.. {
            if page > self.limits.max_pages {
                outcome.failure = Some(ListFailure::TooManyPages {
                    cap: self.limits.max_pages,
                });
                break;
            }
            let page_purpose = if confirming {
                format!("{purpose}, page {page} (after a short page: is there more?)")
            } else {
                format!("{purpose}, page {page}")
            };
            let prepared = match &next_url {
                Some(link) => Ok(self.with_query_credentials(link.clone())),
                None => self.url_for(operation, None, None, &state.query(&paging)),
            }
            .and_then(|url| Ok((url, self.request_body(operation, None, None, None)?)));
            let (url, request_body) = match prepared {
                Ok(prepared) => prepared,
                Err(message) => {
                    outcome.failure = Some(ListFailure::BadPage {
                        page,
                        exchange: 0,
                        message,
                    });
                    break;
                }
            };
            let result = self
                .send(
                    Some(kind),
                    &page_purpose,
                    operation.method.as_str(),
                    url.clone(),
                    request_body.as_deref(),
                )
                .await;
            let answer = match result {
                Ok(answer) => answer,
                Err(error) => {
                    if error.exchange > 0 {
                        outcome.exchanges.push(error.exchange);
                    }
                    outcome.failure = Some(ListFailure::Unreachable {
                        page,
                        exchange: error.exchange,
                        message: error.message,
                        timed_out: error.timed_out,
                    });
                    break;
                }
            };
            outcome.exchanges.push(answer.exchange);
            list_bytes = list_bytes.saturating_add(answer.body_bytes);
            if list_bytes > self.limits.max_list_bytes {
                outcome.failure = Some(ListFailure::TooManyBytes {
                    cap: self.limits.max_list_bytes,
                });
                break;
            }
            let bad = |message: String| ListFailure::BadPage {
                page,
                exchange: answer.exchange,
                message,
            };
            // A page past the end may be refused or empty: after a short page that is the end.
            if confirming && (!answer.is_success() || answer.json.is_none()) {
                break;
            }
            if !answer.is_success() {
                let detail = answer
                    .body_problem
                    .as_ref()
                    .filter(|_| (300..400).contains(&answer.status))
                    .map(|problem| format!(": {problem}"))
                    .unwrap_or_default();
                outcome.failure = Some(bad(format!("answered HTTP {}{detail}", answer.status)));
                break;
            }
            let Some(document) = &answer.json else {
                outcome.failure = Some(bad(answer
                    .body_problem
                    .clone()
                    .unwrap_or_else(|| "the answer has no body".into())));
                break;
            };
            let items = match body::list_items(operation, document) {
                Ok(items) => items,
                Err(_) if confirming => break,
                Err(message) => {
                    outcome.failure = Some(bad(message));
                    break;
                }
            };
            let items = &items;
            // A page is known by a hash of its records, so memory stays one number per page.
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            let first_new = outcome.records.len();
            let problems_before = outcome.item_problems.len();
            // Sources listed by name alone are known by their name.
            let named_only = kind.record() == RecordKind::Source && !codec.maps(Field::Id);
            for item in items {
                match codec.decode(item) {
                    Ok(mut record) => {
                        if named_only {
                            if let Some(name) = record.get(&Field::Name).cloned() {
                                record.insert(Field::Id, name);
                            }
                        }
                        outcome.records.push(record)
                    }
                    Err(problems) => {
                        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                        outcome
                            .item_problems
                            .push((answer.exchange, text.join("; ")));
                    }
                }
            }
            outcome.records[first_new..].hash(&mut hasher);
            if !items.is_empty() && !seen_pages.insert(hasher.finish()) {
                outcome.records.truncate(first_new);
                outcome.item_problems.truncate(problems_before);
                // A partner that answers any page past the end with its last page ends there.
                if confirming {
                    break;
                }
                outcome.failure = Some(ListFailure::Loop {
                    page,
                    exchange: answer.exchange,
                    message: "this page repeats an earlier page".into(),
                });
                break;
            }
            if outcome.records.len() > self.limits.max_list_records {
                outcome.records.truncate(self.limits.max_list_records);
                outcome.failure = Some(ListFailure::TooManyRecords {
                    cap: self.limits.max_list_records,
                });
                break;
            }
            if confirming && items.is_empty() {
                break;
            }
            state.note_counters(&paging, document, answer.exchange);
            let link_header = answer.next_link();
            match state.advance(&paging, document, items.len(), link_header.as_deref()) {
                Step::Done => break,
                Step::Next => next_url = None,
                Step::Confirm => {
                    next_url = None;
                    confirming = true;
                    continue;
                }
                Step::Cursor(cursor) => {
                    if !state.seen_tokens.insert(cursor.clone()) {
                        outcome.failure = Some(ListFailure::Loop {
                            page,
                            exchange: answer.exchange,
                            message: format!("the cursor `{cursor}` was already given"),
                        });
                        break;
                    }
                    state.cursor = Some(cursor);
                }
                Step::Link(link) => {
                    // A link is relative to the page it came from, as in any document.
                    let resolved = match url.join(&link) {
                        Ok(url) => url,
                        Err(error) => {
                            outcome.failure =
                                Some(bad(format!("the next link `{link}` is not a URL: {error}")));
                            break;
                        }
                    };
                    if resolved.origin() != self.base_url.origin() {
                        outcome.failure = Some(bad(format!(
                            "the next link points to another origin ({}); credentials are not sent there",
                            resolved.origin().ascii_serialization()
                        )));
                        break;
                    }
                    if !state.seen_tokens.insert(resolved.to_string()) {
                        outcome.failure = Some(ListFailure::Loop {
                            page,
                            exchange: answer.exchange,
                            message: "the next link points to a page already read".into(),
                        });
                        break;
                    }
                    next_url = Some(resolved);
                }
                Step::Invalid(message) => {
                    outcome.failure = Some(bad(message));
                    break;
                }
            }
            confirming = false;
        }
        if outcome.failure.is_none() {
            outcome.failure = state.check_counters(
                outcome.records.len() + outcome.item_problems.len(),
                outcome.exchanges.len(),
            );
        }
        outcome
    }

    /// Looks a staff member up by email: `Ok(None)` when the partner answers one of the
    /// profile's "none" answers.
    pub async fn lookup_staff(
        &self,
        email: &str,
        purpose: &str,
    ) -> Result<(Answer, Option<Record>), LookupError> {
        let kind = OperationKind::StaffLookup;
        let operation = self.operation(kind).ok_or(LookupError::NotDeclared)?;
        let answer = self
            .call(kind, purpose, None, Some(email), &[], None)
            .await
            .map_err(LookupError::Call)?;
        let codec = self.profile.codec(RecordKind::Staff);
        let list = operation.answer == Some(AnswerShape::List);
        let nones = lookup_nones(operation);
        let declared = |none: NoneAnswer| nones.contains(&none);
        let undeclared = |answer: Answer, what: &str| {
            let names: Vec<&str> = nones.iter().map(|none| none.key()).collect();
            LookupError::Shape(
                answer,
                format!(
                    "answered {what}, which the profile does not declare as a \"none\" answer (none = [{}])",
                    names.join(", ")
                ),
            )
        };
        if answer.status == 404 {
            return match declared(NoneAnswer::NotFound) {
                true => Ok((answer, None)),
                false => Err(undeclared(answer, "HTTP 404")),
            };
        }
        if !answer.is_success() {
            return Err(LookupError::Status(answer));
        }
        let Some(document) = answer.json.clone() else {
            if let Some(problem) = answer.body_problem.clone() {
                return Err(LookupError::Shape(answer, problem));
            }
            let (none, what) = if answer.status == 204 {
                (NoneAnswer::NoContent, "HTTP 204 without a body")
            } else {
                (NoneAnswer::EmptyBody, "an empty body")
            };
            let empty_declared = declared(none)
                || (none == NoneAnswer::NoContent && declared(NoneAnswer::EmptyBody));
            return match empty_declared {
                true => Ok((answer, None)),
                false => Err(undeclared(answer, what)),
            };
        };
        if let Some(flag) = &operation.found_field {
            match flag.get(&document).and_then(Value::as_bool) {
                Some(false) => return Ok((answer, None)),
                Some(true) => {}
                None => {
                    return Err(LookupError::Shape(
                        answer,
                        format!("answered without true or false at `{flag}`"),
                    ))
                }
            }
        }
        if list {
            // Without `list`, the list is the document itself.
            let at = match &operation.list {
                Some(at) => at.get(&document),
                None => Some(&document),
            };
            let items = match at {
                None | Some(Value::Null) if declared(NoneAnswer::NullList) => {
                    return Ok((answer, None))
                }
                _ => body::list_items(operation, &document),
            };
            let items = match items {
                Ok(items) => items,
                Err(message) => return Err(LookupError::Shape(answer, message)),
            };
            if items.is_empty() {
                return match declared(NoneAnswer::EmptyList) {
                    true => Ok((answer, None)),
                    false => Err(undeclared(answer, "an empty list")),
                };
            }
            let record = items.first().and_then(|item| codec.decode(item).ok());
            return match record {
                Some(record) => Ok((answer, Some(record))),
                None => Err(LookupError::Shape(
                    answer,
                    "answered a first match that is not a readable staff record".into(),
                )),
            };
        }
        let at = match &operation.record {
            Some(path) => path.get(&document),
            None => Some(&document),
        };
        match at {
            None | Some(Value::Null) => match declared(NoneAnswer::NullRecord) {
                true => Ok((answer, None)),
                false => {
                    let place = operation
                        .record
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "(root)".into());
                    Err(undeclared(
                        answer,
                        &format!("without a record at `{place}`"),
                    ))
                }
            },
            Some(value) => match codec.decode(value) {
                Ok(record) => Ok((answer, Some(record))),
                Err(problems) => {
                    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    Err(LookupError::Shape(
                        answer,
                        format!(
                            "answered a staff record that cannot be read: {}",
                            text.join("; ")
                        ),
                    ))
                }
            },
        }
    }

    /// Writes a record with a declared write operation; `id` addresses an update.
    pub async fn write(
        &self,
        kind: OperationKind,
        purpose: &str,
        record: &Record,
        id: Option<&str>,
    ) -> Result<Saved, CallError> {
        let operation = self.declared(kind)?;
        let codec = self.profile.codec(kind.record());
        let mut to_send = record.clone();
        match id {
            Some(id) => to_send.insert(crate::model::Field::Id, id.to_owned()),
            None => to_send.remove(&crate::model::Field::Id),
        };
        let mut body = codec.encode(&to_send);
        if let Some(at) = &operation.body {
            body = at.wrap(body);
        }
        let path_id = kind.addresses_one_record().then_some(id).flatten();
        let answer = self
            .call(kind, purpose, path_id, None, &[], Some(&body))
            .await?;
        let mut saved = self.saved(operation, kind.record(), answer);
        // A source known by its name alone, once taken, is known by the name it was sent with.
        if kind.record() == RecordKind::Source && !codec.maps(Field::Id) && saved.accepted() {
            saved.id = saved.id.or_else(|| record.get(&Field::Name).cloned());
        }
        Ok(saved)
    }

    /// A write's answer judged as the profile describes it: its id, its record, a conflict.
    pub fn saved(&self, operation: &Operation, kind: RecordKind, answer: Answer) -> Saved {
        let codec = self.profile.codec(kind);
        let id_field = crate::model::Field::Id;
        if let Some(conflict) = &operation.conflict {
            if is_conflict(conflict, &answer) {
                let id = match conflict.id_from {
                    IdFrom::Location | IdFrom::Header => {
                        answer.location.as_deref().and_then(last_segment)
                    }
                    IdFrom::Body => {
                        let text = match &conflict.id_at {
                            Some(at) => answer.json.as_ref().and_then(|json| at.get(json)),
                            None => record_at(&answer, &operation.record)
                                .and_then(|record| codec.read_path(id_field)?.get(record)),
                        }
                        .and_then(scalar_text);
                        match (&conflict.pattern, text) {
                            (Some(pattern), Some(text)) => find_slot(pattern, &text),
                            (None, text) => text,
                            (Some(_), None) => None,
                        }
                    }
                }
                .filter(|id| !id.is_empty());
                return Saved {
                    answer,
                    id,
                    echoed: None,
                    conflict: true,
                };
            }
        }
        let acknowledgement = operation.answer == Some(AnswerShape::Acknowledgement);
        let echoed = (!acknowledgement)
            .then(|| record_at(&answer, &operation.record))
            .flatten()
            .filter(|_| answer.is_success())
            .and_then(|value| codec.decode(value).ok());
        // Found inside text where the profile gives the text around it.
        let within = |text: Option<String>| match (&operation.id_pattern, text) {
            (Some(pattern), Some(text)) => find_slot(pattern, &text),
            (None, text) => text,
            (Some(_), None) => None,
        };
        let id = match operation.id_from.unwrap_or_default() {
            IdFrom::Location if operation.id_pattern.is_some() => within(answer.location.clone()),
            IdFrom::Location => answer.location.as_deref().and_then(last_segment),
            IdFrom::Header => within(answer.id_header.clone()),
            IdFrom::Body => match &operation.id_at {
                Some(at) => within(
                    answer
                        .json
                        .as_ref()
                        .and_then(|json| at.get(json))
                        .and_then(scalar_text),
                ),
                None if acknowledgement => None,
                None => echoed
                    .as_ref()
                    .and_then(|record| record.get(&id_field).cloned())
                    .or_else(|| {
                        let path = codec.read_path(id_field)?;
                        record_at(&answer, &operation.record)
                            .and_then(|value| path.get(value))
                            .and_then(scalar_text)
                    }),
            },
        }
        .filter(|id| !id.is_empty());
        Saved {
            answer,
            id,
            echoed,
            conflict: false,
        }
    }

    /// Reads a record back by the partner's id.
    pub async fn read(
        &self,
        kind: RecordKind,
        id: &str,
        purpose: &str,
    ) -> Result<(Answer, Option<Record>), CallError> {
        let Some(read) = self.profile.read_operation(kind) else {
            return Err(CallError::unsent(format!(
                "the profile declares no read operation for {kind}"
            )));
        };
        let operation = self.operation(read).expect("read operation exists");
        let answer = self.call(read, purpose, Some(id), None, &[], None).await?;
        let record = if answer.is_success() {
            record_at(&answer, &operation.record)
                .and_then(|value| self.profile.codec(kind).decode(value).ok())
        } else {
            None
        };
        Ok((answer, record))
    }
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone)]
pub enum LookupError {
    /// The profile has no lookup.
    NotDeclared,
    /// No answer came.
    Call(CallError),
    /// An error status other than the "none" answer.
    Status(Answer),
    /// An answer of the wrong shape.
    Shape(Answer, String),
}

/// The "none" answers of a lookup: as declared, or the usual one of its shape.
pub fn lookup_nones(operation: &Operation) -> Vec<NoneAnswer> {
    if !operation.none.is_empty() {
        return operation.none.clone();
    }
    match operation.answer {
        Some(AnswerShape::List) => vec![NoneAnswer::EmptyList],
        _ => vec![NoneAnswer::NotFound],
    }
}

/// Whether `answer` is the declared conflict answer.
pub fn is_conflict(conflict: &Conflict, answer: &Answer) -> bool {
    if answer.status != conflict.status {
        return false;
    }
    match (&conflict.when, &conflict.equals) {
        (Some(when), Some(equals)) => answer
            .json
            .as_ref()
            .and_then(|json| when.get(json))
            .and_then(scalar_text)
            .is_some_and(|found| found == *equals),
        _ => true,
    }
}

/// The value in `text` where a pattern's `{id}` is, the pattern's text found around it; the
/// text may say more before and after (`"Contact already exists. Existing ID: 51"`).
pub fn find_slot(pattern: &crate::profile::Template, text: &str) -> Option<String> {
    use crate::profile::template::Piece;
    let mut prefix = String::new();
    let mut suffix = String::new();
    let mut seen = false;
    for piece in pattern.pieces() {
        match piece {
            Piece::Text(part) if !seen => prefix.push_str(part),
            Piece::Text(part) => suffix.push_str(part),
            Piece::Slot(_) => seen = true,
        }
    }
    let start = text.find(&prefix)? + prefix.len();
    let rest = &text[start..];
    let value = if suffix.is_empty() {
        // Without text after it, the id runs to the first space or punctuation closing it.
        rest.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')' | '"'))
            .next()
            .unwrap_or_default()
            .trim_end_matches('.')
    } else {
        &rest[..rest.find(&suffix)?]
    };
    (!value.is_empty()).then(|| value.to_owned())
}

fn record_at<'a>(answer: &'a Answer, at: &Option<JsonPath>) -> Option<&'a Value> {
    let json = answer.json.as_ref()?;
    match at {
        Some(path) => path.get(json),
        None => Some(json),
    }
}

/// The last path segment of a `Location`, percent-decoded: where a save answers its id.
pub(crate) fn last_segment(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?;
    let segment = path.trim_end_matches('/').rsplit('/').next()?;
    Some(
        percent_encoding::percent_decode_str(segment)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Up to half of `backoff` more, chosen by the seed and the exchange: retries of many clients
/// spread out, and the same run waits the same way.
fn jitter(seed: u64, exchange: usize, backoff: Duration) -> Duration {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ exchange as u64);
    backoff.mul_f64(rng.random_range(0.0..0.5))
}

/// Why a body that arrived cannot be read as JSON, before parsing it: it is compressed though
/// no compression was asked for, an HTML page, or declared as another format.
fn body_format_problem(
    header: &dyn Fn(&str) -> Option<String>,
    bytes: &[u8],
    format: BodyFormat,
) -> Option<String> {
    if let Some(encoding) = header("content-encoding").filter(|e| e != "identity") {
        return Some(format!(
            "the body is compressed (content-encoding {encoding}) though no compression was asked for; it was not unpacked"
        ));
    }
    let content_type = header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if format.is_xml() {
        if content_type.starts_with("text/html") {
            return Some(format!(
                "the answer is an HTML page (content-type `{content_type}`), not XML"
            ));
        }
        return (!format.accepts_content_type(&content_type)).then(|| {
            format!(
                "the answer's content-type is `{content_type}`, not {}",
                format.content_type(None)
            )
        });
    }
    let start = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if content_type.starts_with("text/html") || start == Some(b'<') {
        return Some(format!(
            "the answer is an HTML page (content-type `{content_type}`), not JSON"
        ));
    }
    let json_type = content_type.is_empty()
        || content_type.starts_with("application/json")
        || content_type.starts_with("text/json")
        || content_type
            .split(';')
            .next()
            .is_some_and(|media| media.trim().ends_with("+json"));
    (!json_type).then(|| format!("the answer's content-type is `{content_type}`, not JSON"))
}

/// Whether a request may be sent twice with the effect of once (RFC 9110, 9.2.2).
fn is_idempotent(method: &reqwest::Method) -> bool {
    use reqwest::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// Whether the request failed because its connection was closed (reset, or ended) before any
/// answer came: not a timeout, not a connection that could not be made.
fn closed_before_answer(error: &reqwest::Error) -> bool {
    if error.is_timeout() || error.is_connect() || !error.is_request() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            if matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() || hyper.is_closed() {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

/// The innermost cause, which says what actually went wrong (e.g. "Connection refused").
fn innermost(error: &dyn std::error::Error) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

/// Characters escaped in a path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// Where a paged list is, and what its pages said about the whole.
struct PageState {
    page: u64,
    offset: u64,
    fetched: u64,
    cursor: Option<String>,
    seen_tokens: BTreeSet<String>,
    /// The number of records the partner states, and the exchange that said it.
    stated_total: Option<(u64, usize)>,
    /// The number of pages the partner states, and the exchange that said it.
    stated_pages: Option<(u64, usize)>,
    /// Pages that held at least one record.
    pages_with_items: u64,
    /// The partner's counter said "done" after a full page, and the next page held more.
    counter_overrun: Option<String>,
    /// Asking past a counter's end: the next page must be empty.
    checking_counter: bool,
}

enum Step {
    Done,
    Next,
    /// A short page, or a full last page by a counter: the next page tells whether more follow.
    Confirm,
    Cursor(String),
    Link(String),
    Invalid(String),
}

/// A counter read from a page: a number, or text holding one (XML carries every number as
/// text).
fn counter(document: &Value, path: &Option<JsonPath>) -> Option<u64> {
    path.as_ref()?.get(document).and_then(|value| {
        value
            .as_u64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })
            .or_else(|| value.as_str()?.trim().parse().ok())
    })
}

impl PageState {
    fn new(paging: &Paging) -> Self {
        PageState {
            page: paging.first_page.unwrap_or(1),
            offset: 0,
            fetched: 0,
            cursor: None,
            seen_tokens: BTreeSet::new(),
            stated_total: None,
            stated_pages: None,
            pages_with_items: 0,
            counter_overrun: None,
            checking_counter: false,
        }
    }

    fn size(paging: &Paging) -> u64 {
        paging.page_size.unwrap_or(50)
    }

    /// The records of a full page: the size asked, or the partner's declared cap below it.
    fn full_page(paging: &Paging) -> u64 {
        let size = Self::size(paging);
        paging.max_page_size.map_or(size, |cap| size.min(cap))
    }

    /// The paging parameters of the next request.
    fn query(&self, paging: &Paging) -> Vec<(String, String)> {
        let mut query = Vec::new();
        let mut push = |name: &Option<String>, value: String| {
            if let Some(name) = name {
                query.push((name.clone(), value));
            }
        };
        match paging.style {
            PagingStyle::None => {}
            PagingStyle::PageNumber => {
                push(&paging.page_param, self.page.to_string());
                push(&paging.size_param, Self::size(paging).to_string());
            }
            PagingStyle::Offset => {
                push(&paging.offset_param, self.offset.to_string());
                push(&paging.limit_param, Self::size(paging).to_string());
            }
            PagingStyle::Cursor | PagingStyle::NextLink | PagingStyle::LinkHeader => {
                if paging.page_size.is_some() {
                    push(&paging.size_param, Self::size(paging).to_string());
                }
                if let Some(cursor) = &self.cursor {
                    push(&paging.cursor_param, cursor.clone());
                }
            }
        }
        query
    }

    /// Keeps the totals a page states (the latest page's word counts).
    fn note_counters(&mut self, paging: &Paging, document: &Value, exchange: usize) {
        if let Some(total) = counter(document, &paging.total_field) {
            self.stated_total = Some((total, exchange));
        }
        if let Some(pages) = counter(document, &paging.total_pages_field) {
            self.stated_pages = Some((pages, exchange));
        }
    }

    /// Decides, from a page just read, whether and how to go on.
    fn advance(
        &mut self,
        paging: &Paging,
        document: &Value,
        items: usize,
        link_header: Option<&str>,
    ) -> Step {
        let size = Self::full_page(paging);
        let items = items as u64;
        self.fetched += items;
        if items > 0 {
            self.pages_with_items += 1;
        }
        if self.checking_counter {
            // The counter said the list had ended, yet this page holds records.
            self.checking_counter = false;
            if items > 0 && self.counter_overrun.is_none() {
                self.counter_overrun = Some(format!(
                    "the partner's {} said the list had ended, but the next page holds {items} more record(s)",
                    match paging.stop {
                        Some(PageStop::TotalPages) => "page count",
                        _ => "total",
                    }
                ));
            }
        }
        match paging.style {
            PagingStyle::None => Step::Done,
            PagingStyle::PageNumber | PagingStyle::Offset => {
                // The counters are not trusted once one was caught short: the walk goes on
                // until a short page, as without them.
                let stop = match (
                    paging.stop.unwrap_or(PageStop::ShortPage),
                    &self.counter_overrun,
                ) {
                    (PageStop::Total | PageStop::TotalPages, Some(_)) => PageStop::ShortPage,
                    (stop, _) => stop,
                };
                let step = match stop {
                    PageStop::ShortPage if items == 0 => Step::Done,
                    // A short page may be the partner's own page size: the next page tells.
                    PageStop::ShortPage if items < size => Step::Confirm,
                    PageStop::ShortPage => Step::Next,
                    PageStop::EmptyPage if items == 0 => Step::Done,
                    PageStop::EmptyPage => Step::Next,
                    PageStop::Total => match counter(document, &paging.total_field) {
                        None => return self.missing_counter(&paging.total_field),
                        Some(_) if items == 0 => Step::Done,
                        Some(total) if self.fetched >= total => self.past_counter(items, size),
                        Some(_) => Step::Next,
                    },
                    PageStop::TotalPages => match counter(document, &paging.total_pages_field) {
                        None => return self.missing_counter(&paging.total_pages_field),
                        Some(_) if items == 0 => Step::Done,
                        Some(pages) if self.pages_with_items >= pages => {
                            self.past_counter(items, size)
                        }
                        Some(_) => Step::Next,
                    },
                    PageStop::MoreFlag => {
                        let more = paging
                            .more_field
                            .as_ref()
                            .and_then(|path| path.get(document))
                            .and_then(|value| {
                                value.as_bool().or_else(|| match value.as_str()?.trim() {
                                    "true" => Some(true),
                                    "false" => Some(false),
                                    _ => None,
                                })
                            });
                        match more {
                            None => return self.missing_counter(&paging.more_field),
                            Some(true) if items == 0 => {
                                return Step::Invalid("an empty page says more pages follow".into())
                            }
                            Some(true) => Step::Next,
                            Some(false) => Step::Done,
                        }
                    }
                };
                if matches!(step, Step::Next | Step::Confirm) {
                    self.page += 1;
                    // By what came, not what was asked: a partner may page by less.
                    self.offset += items;
                }
                step
            }
            PagingStyle::Cursor | PagingStyle::NextLink | PagingStyle::LinkHeader => {
                let next = match paging.style {
                    PagingStyle::LinkHeader => link_header.map(str::to_owned),
                    _ => paging
                        .next_field
                        .as_ref()
                        .and_then(|path| path.get(document))
                        .and_then(scalar_text),
                }
                .filter(|text| !text.is_empty());
                match (next, paging.style) {
                    (None, _) => Step::Done,
                    (Some(cursor), PagingStyle::Cursor) => Step::Cursor(cursor),
                    (Some(link), _) => Step::Link(link),
                }
            }
        }
    }

    /// The end a counter gives: after a full page, the next page is asked to be sure.
    fn past_counter(&mut self, items: u64, size: u64) -> Step {
        if items >= size && self.counter_overrun.is_none() {
            self.checking_counter = true;
            Step::Confirm
        } else {
            Step::Done
        }
    }

    fn missing_counter(&self, path: &Option<JsonPath>) -> Step {
        Step::Invalid(format!(
            "no number at `{}`",
            path.as_ref().map(ToString::to_string).unwrap_or_default()
        ))
    }

    /// Whether the walk agrees with what the partner stated: its total of records, its number
    /// of pages, counters that ended too early.
    fn check_counters(&self, walked: usize, _exchanges: usize) -> Option<ListFailure> {
        let walked = walked as u64;
        if let Some(message) = &self.counter_overrun {
            return Some(ListFailure::Incomplete {
                exchange: self.stated_pages.or(self.stated_total).map(|(_, e)| e),
                message: message.clone(),
            });
        }
        if let Some((total, exchange)) = self.stated_total {
            if total != walked {
                return Some(ListFailure::Incomplete {
                    exchange: Some(exchange),
                    message: format!(
                        "the partner states {total} record(s) in all, but its pages held {walked}"
                    ),
                });
            }
        }
        if let Some((pages, exchange)) = self.stated_pages {
            let walked_pages = self.pages_with_items;
            let empty_list = walked == 0 && pages <= 1;
            if pages != walked_pages && !empty_list {
                return Some(ListFailure::Incomplete {
                    exchange: Some(exchange),
                    message: format!(
                        "the partner states {pages} page(s), but {walked_pages} page(s) held records"
                    ),
                });
            }
        }
        None
    }
}

//! Replay: serves a recorded run's partner answers as a mock partner on 127.0.0.1 and re-runs
//! the Connector session and the suite against it, so the recorded verdicts can be reproduced
//! (and debugged) without the partner's sandbox.
//!
//! Requests are matched to the recording in order: each request takes the first recorded
//! exchange not yet served with the same method and a compatible path and query (equal, or equal
//! but for personal values masked to their shape and secrets redacted to `***`). The recording
//! masks personal data; values the replay itself sends are learnt from its requests and put back
//! into the recorded answers, so read-backs echo what was sent, as they did in the run.

use crate::auth::Credentials;
use crate::connector::session::run_session;
use crate::connector::{ClientLimits, Exchange, PartnerClient};
use crate::intouch::Scenario;
use crate::profile::Profile;
use crate::report::mask::{shape, Masker};
use crate::suite::{self, Applies, Catalog, Outcome, Verdict};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use unicode_normalization::UnicodeNormalization;

/// The per-request timeout of a replay: recorded timeouts are replayed as a server that does
/// not answer within it.
pub const REPLAY_TIMEOUT: Duration = Duration::from_millis(1_000);

/// What a replay needs from a recorded run.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The profile the run used.
    pub profile: Profile,
    /// The base URL called (secrets redacted); only its path is used.
    pub base_url: String,
    /// The run's seed.
    pub seed: u64,
    /// The run's `--only` rules.
    pub only: Vec<String>,
    /// ROB-002's budget in the run.
    pub latency_budget: Duration,
    /// Every exchange of the run, in order.
    pub exchanges: Vec<Exchange>,
    /// The recorded verdicts: rule and outcome.
    pub verdicts: Vec<(String, Outcome)>,
}

/// A rule whose replayed outcome is not the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The rule.
    pub rule: String,
    /// Its recorded outcome, if it was recorded.
    pub recorded: Option<Outcome>,
    /// Its replayed outcome, if it was judged.
    pub replayed: Option<Outcome>,
}

/// What a replay found.
#[derive(Debug, Clone)]
pub struct ReplayOutcome {
    /// The verdicts judged from the replay, personal data masked in their reasons.
    pub verdicts: Vec<Verdict>,
    /// Requests the recording holds no answer for, as `METHOD path?query`.
    pub unmatched: Vec<String>,
    /// Recorded exchanges the replay never asked for.
    pub unused: Vec<usize>,
    /// Recorded exchanges whose request the replay sent with another body (masks and redacted
    /// secrets aside): the session did not run as recorded there, e.g. another spoke version.
    pub diverged: Vec<usize>,
    /// Rules whose replayed outcome differs from the recorded one.
    pub differences: Vec<Difference>,
    /// SEND- rules of a two-way run, kept as recorded: they judge the partner's own calls to
    /// the mock Connector API, which a replay cannot make again.
    pub carried: Vec<(String, Outcome)>,
}

impl ReplayOutcome {
    /// Whether the replay reproduced every recorded verdict.
    pub fn reproduced(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Replays `recording` with only `only` judged (the recording's own `--only` when empty).
pub async fn replay(recording: &Recording, only: &[String]) -> Result<ReplayOutcome, String> {
    let catalog = Catalog::builtin();
    let only: Vec<String> = if only.is_empty() {
        recording.only.clone()
    } else {
        only.to_vec()
    };
    for id in &only {
        if catalog.rule(id).is_none() {
            return Err(format!("--only: no rule `{id}`"));
        }
    }
    // A two-way run's last exchanges are the partner's own calls to the mock Connector API:
    // evidence of the SEND- rules, not answers to serve.
    let answers: Vec<Exchange> = recording
        .exchanges
        .iter()
        .filter(|exchange| !is_call_to_the_connector(exchange))
        .cloned()
        .collect();
    let player = Arc::new(Mutex::new(Player::new(&answers)));
    let app = axum::Router::new()
        .fallback(serve_recorded)
        .with_state(player.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1 for the replay: {error}"))?;
    let addr = listener
        .local_addr()
        .map_err(|error| format!("cannot listen on 127.0.0.1 for the replay: {error}"))?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let base_path = reqwest::Url::parse(&recording.base_url)
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let profile = Arc::new(recording.profile.clone());
    // The recording holds no secrets; the replayed partner checks none. A token endpoint on
    // another host is replayed here too.
    let origin = reqwest::Url::parse(&format!("http://{addr}/")).map_err(|e| e.to_string())?;
    let credentials = Credentials::generated(&profile.auth, recording.seed)
        .with_token_endpoint_at(&profile.partner.base_url, &origin);
    let limits = ClientLimits {
        request_timeout: REPLAY_TIMEOUT,
        retry_backoff: Duration::from_millis(1),
        max_retry_wait: Duration::from_millis(5),
        jitter_seed: recording.seed,
        ..ClientLimits::default()
    };
    let client = PartnerClient::new(
        profile.clone(),
        &format!("http://{addr}{base_path}"),
        credentials,
        limits,
    );
    let client = match client {
        Ok(client) => client,
        Err(error) => {
            server.abort();
            return Err(error);
        }
    };
    let observations = run_session(&client, recording.seed, &Scenario::core(), &()).await;
    server.abort();
    let mut exchanges = client.recorder().snapshot();
    let (served, unmatched, unused, diverged) = {
        let player = player
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (
            player.served.clone(),
            player.unmatched.clone(),
            player.unused(),
            player.diverged.clone(),
        )
    };
    // Timing is the recording's: the replay answers at once, the partner did not.
    if served.len() == exchanges.len() {
        for (exchange, recorded) in exchanges.iter_mut().zip(&served) {
            if let Some(recorded) = recorded.and_then(|id| recording.exchanges.get(id)) {
                exchange.duration_ms = recorded.duration_ms;
                exchange.duration_us = recorded.duration_us;
                // So is the answer's size: the replay serves the recorded, redacted text.
                exchange.response_body_bytes = recorded.response_body_bytes;
            }
        }
    }
    let settings = suite::Settings {
        latency_budget: recording.latency_budget,
        disabled_checks: Vec::new(),
    };
    let mut verdicts = suite::judge(
        &catalog,
        &profile,
        &observations,
        &exchanges,
        &settings,
        &only,
    );
    let masker = Masker::for_run(&observations);
    verdicts.iter_mut().for_each(|v| masker.verdict(v));
    let sends = |rule: &str| {
        catalog
            .rule(rule)
            .is_some_and(|rule| rule.applies.contains(&Applies::Sends))
    };
    let (carried, replayable): (Vec<_>, Vec<_>) = recording
        .verdicts
        .iter()
        .cloned()
        .partition(|(rule, _)| sends(rule));
    let differences = compare(&replayable, &verdicts, &only);
    Ok(ReplayOutcome {
        verdicts,
        unmatched,
        unused,
        diverged,
        differences,
        carried,
    })
}

/// Whether `exchange` is a call the partner made to the mock Connector API (two-way runs).
fn is_call_to_the_connector(exchange: &Exchange) -> bool {
    reqwest::Url::parse(&exchange.url)
        .is_ok_and(|url| url.path().starts_with(crate::inbound::wire::API_BASE))
}

/// A replay as text: each verdict beside the recorded one, then whether all match.
pub fn render(recording: &Recording, outcome: &ReplayOutcome) -> String {
    let mut lines = vec![format!(
        "replay of {} with seed {}: {} recorded exchanges served on 127.0.0.1",
        recording.profile.file_name,
        recording.seed,
        recording
            .exchanges
            .iter()
            .filter(|exchange| !is_call_to_the_connector(exchange))
            .count()
            - outcome.unused.len()
    )];
    for verdict in &outcome.verdicts {
        let recorded = recording
            .verdicts
            .iter()
            .find(|(rule, _)| *rule == verdict.rule)
            .map(|(_, outcome)| *outcome);
        let mark = if recorded == Some(verdict.outcome) {
            "same"
        } else {
            "DIFFERS"
        };
        lines.push(format!(
            "{:<12} {:<13} recorded {:<13} {mark:<8} {}",
            verdict.rule,
            verdict.outcome.as_str(),
            recorded.map_or("(none)", Outcome::as_str),
            crate::controls::one_line(&verdict.reason)
        ));
    }
    for (rule, recorded) in &outcome.carried {
        lines.push(format!(
            "{rule:<12} {:<13} recorded {:<13} {:<8} kept as recorded: it judges the partner's own calls to the Connector API, which a replay cannot make",
            "-",
            recorded.as_str(),
            "-"
        ));
    }
    for request in &outcome.unmatched {
        lines.push(format!(
            "no recorded answer for {}: the replay answered it with a broken response",
            crate::controls::one_line(request)
        ));
    }
    if !outcome.diverged.is_empty() {
        lines.push(format!(
            "{} request(s) sent with another body than recorded (exchanges {}): the session did not run as recorded there",
            outcome.diverged.len(),
            outcome
                .diverged
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !outcome.unused.is_empty() {
        lines.push(format!(
            "{} recorded exchange(s) never asked for: {}",
            outcome.unused.len(),
            outcome
                .unused
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.push(if outcome.reproduced() {
        format!(
            "reproduced: all {} verdicts match the recording",
            outcome.verdicts.len()
        )
    } else {
        format!(
            "NOT reproduced: {} verdict(s) differ from the recording",
            outcome.differences.len()
        )
    });
    lines.join("\n") + "\n"
}

/// The rules whose outcomes differ, among those `only` names (all when empty).
pub fn compare(
    recorded: &[(String, Outcome)],
    replayed: &[Verdict],
    only: &[String],
) -> Vec<Difference> {
    let wanted = |rule: &str| only.is_empty() || only.iter().any(|id| id == rule);
    let mut differences = Vec::new();
    for (rule, outcome) in recorded.iter().filter(|(rule, _)| wanted(rule)) {
        let again = replayed.iter().find(|v| &v.rule == rule).map(|v| v.outcome);
        if again != Some(*outcome) {
            differences.push(Difference {
                rule: rule.clone(),
                recorded: Some(*outcome),
                replayed: again,
            });
        }
    }
    for verdict in replayed {
        if !recorded.iter().any(|(rule, _)| *rule == verdict.rule) {
            differences.push(Difference {
                rule: verdict.rule.clone(),
                recorded: None,
                replayed: Some(verdict.outcome),
            });
        }
    }
    differences
}

/// The replaying partner's state: which recorded exchanges were served, and the personal
/// values learnt from the replay's own requests.
#[derive(Debug)]
struct Player {
    recorded: Vec<RecordedCall>,
    /// Per request received, in order: the recorded exchange served (index), if any.
    served: Vec<Option<usize>>,
    unmatched: Vec<String>,
    /// Recorded exchanges (ids) answered to a request with another body.
    diverged: Vec<usize>,
    /// Masked spelling → each value the replay sent for it, with the recorded exchange whose
    /// request carried it. Several values share a shape (phone numbers do), so an answer takes
    /// the value its own request or a request about the same record sent.
    learnt: HashMap<String, Vec<Learnt>>,
    /// Per recorded exchange, the path segments and answer segments that name it.
    tokens: Vec<HashSet<String>>,
    /// Path segments that name few exchanges (a record's id, not `api` or the club).
    specific: HashSet<String>,
}

#[derive(Debug)]
struct RecordedCall {
    method: String,
    path_and_query: String,
    request_body: Option<String>,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    timed_out: bool,
    used: bool,
    /// An OAuth token answer, recorded without its body: the replay makes one up.
    token_answer: bool,
}

impl Player {
    fn new(exchanges: &[Exchange]) -> Self {
        let recorded: Vec<RecordedCall> = exchanges
            .iter()
            .map(|exchange| RecordedCall {
                method: exchange.method.clone(),
                path_and_query: path_and_query(&exchange.url),
                request_body: exchange.request_body.clone(),
                status: exchange.status,
                headers: exchange.response_headers.clone(),
                body: exchange.response_body.clone(),
                timed_out: exchange.error.as_deref().is_some_and(|error| {
                    error.starts_with("no answer within") || error.starts_with("not sent")
                }),
                used: false,
                token_answer: exchange
                    .purpose
                    .starts_with(crate::connector::client::TOKEN_PURPOSE)
                    && exchange
                        .status
                        .is_some_and(|status| (200..300).contains(&status)),
            })
            .collect();
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for call in &recorded {
            let distinct: HashSet<&str> = segments(&call.path_and_query).into_iter().collect();
            for segment in distinct {
                *uses.entry(segment).or_default() += 1;
            }
        }
        let specific = uses
            .into_iter()
            .filter(|(segment, count)| segment.len() >= 2 && *count <= SPECIFIC_USES)
            .map(|(segment, _)| segment.to_owned())
            .collect();
        let tokens = recorded
            .iter()
            .map(|call| {
                segments(&call.path_and_query)
                    .into_iter()
                    .chain(call.body.as_deref().map(segments).unwrap_or_default())
                    .filter(|segment| segment.len() >= 2)
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        Player {
            recorded,
            served: Vec::new(),
            unmatched: Vec::new(),
            diverged: Vec::new(),
            learnt: HashMap::new(),
            tokens,
            specific,
        }
    }

    /// The last exchange served, if it was a redirect.
    fn last_redirect(&self) -> Option<usize> {
        let last = (*self.served.last()?)?;
        self.recorded[last]
            .status
            .is_some_and(|status| (300..400).contains(&status))
            .then_some(last)
    }

    fn unused(&self) -> Vec<usize> {
        self.recorded
            .iter()
            .enumerate()
            .filter(|(_, call)| !call.used)
            .map(|(index, _)| index + 1)
            .collect()
    }

    /// The first unused recorded exchange this request matches.
    fn take(&mut self, method: &str, path_and_query: &str) -> Option<usize> {
        let index = self.recorded.iter().position(|call| {
            !call.used
                && call.method.eq_ignore_ascii_case(method)
                && compatible(&call.path_and_query, path_and_query)
        })?;
        self.recorded[index].used = true;
        Some(index)
    }

    /// Learns the real spelling of each masked value in `recorded` from `sent`, the request
    /// matched to recorded exchange `index`: leaf by leaf where both are JSON, so a value is
    /// known with the field it was sent in, else segment by segment.
    fn learn(&mut self, index: usize, recorded: &str, sent: &str) {
        if let (Ok(recorded), Ok(sent)) = (
            serde_json::from_str::<Value>(recorded),
            serde_json::from_str::<Value>(sent),
        ) {
            let mut pairs = Vec::new();
            leaf_pairs(&recorded, &sent, "", &mut pairs);
            for (key, masked, real) in pairs {
                self.remember(index, key, masked, real);
            }
            return;
        }
        let recorded = segments(recorded);
        let sent = segments(sent);
        if recorded.len() != sent.len() {
            return;
        }
        for (masked, real) in recorded.into_iter().zip(sent) {
            self.remember(index, String::new(), masked.to_owned(), real.to_owned());
        }
    }

    fn remember(&mut self, index: usize, key: String, masked: String, real: String) {
        if masked != real && is_mask_of(&masked, &real) {
            self.learnt.entry(masked).or_default().push(Learnt {
                real,
                from: index,
                key,
            });
        }
    }

    /// Whether recorded exchange `other` is about the same record as `index`: a segment naming
    /// few exchanges in one's path appears in the other's path or answer.
    fn related(&self, index: usize, other: usize) -> bool {
        let names = |a: usize, b: usize| {
            segments(&self.recorded[a].path_and_query)
                .into_iter()
                .any(|segment| self.specific.contains(segment) && self.tokens[b].contains(segment))
        };
        names(index, other) || names(other, index)
    }

    /// The value sent for `masked`, found in the answer of exchange `index` under `key`: the
    /// latest sent in the same field by the exchange's own request, else by one about the same
    /// record, else by any; then the same without the field.
    fn resolve(&self, index: usize, key: &str, masked: &str) -> Option<&str> {
        let candidates = self.learnt.get(masked)?;
        let same_key = |learnt: &Learnt| !key.is_empty() && learnt.key == key;
        let tiers: [&dyn Fn(&Learnt) -> bool; 6] = [
            &|l| same_key(l) && l.from == index,
            &|l| same_key(l) && self.related(index, l.from),
            &|l| same_key(l),
            &|l| l.from == index,
            &|l| self.related(index, l.from),
            &|_| true,
        ];
        tiers.iter().find_map(|keep| {
            candidates
                .iter()
                .rev()
                .find(|learnt| keep(learnt))
                .map(|learnt| learnt.real.as_str())
        })
    }

    /// `text`, the answer of recorded exchange `index`, with each learnt masked value put back.
    fn restore(&self, index: usize, text: &str) -> String {
        if let Ok(mut json) = serde_json::from_str::<Value>(text) {
            self.restore_json(index, &mut json, "");
            return json.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest.find(is_delimiter).unwrap_or(rest.len());
            let (segment, tail) = rest.split_at(end);
            out.push_str(&self.restore_text(index, "", segment));
            let mut chars = tail.chars();
            if let Some(delimiter) = chars.next() {
                out.push(delimiter);
            }
            rest = chars.as_str();
        }
        out
    }

    fn restore_json(&self, index: usize, value: &mut Value, path: &str) {
        match value {
            Value::String(text) => *text = self.restore_text(index, &leaf_key(path), text),
            Value::Array(items) => {
                for item in items {
                    self.restore_json(index, item, path);
                }
            }
            Value::Object(map) => {
                for (name, item) in map.iter_mut() {
                    self.restore_json(index, item, &format!("{path}/{name}"));
                }
            }
            _ => {}
        }
    }

    /// A text with the learnt value put back whole, or word by word (a full name made of a
    /// first and a last name sent apart).
    fn restore_text(&self, index: usize, key: &str, text: &str) -> String {
        if let Some(real) = self.resolve(index, key, text) {
            return real.to_owned();
        }
        if !text.contains(' ') {
            return text.to_owned();
        }
        text.split(' ')
            .map(|word| self.resolve(index, "", word).unwrap_or(word))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A value the replay sent, where a masked one stands in the recording.
#[derive(Debug)]
struct Learnt {
    real: String,
    /// The recorded exchange whose request carried it.
    from: usize,
    /// The field it was sent in (see [`leaf_key`]); empty outside JSON.
    key: String,
}

/// The last two names of a JSON path (`phones/home`): the same field in a request and in an
/// answer that wraps the record in an envelope.
fn leaf_key(path: &str) -> String {
    let names: Vec<&str> = path.rsplit('/').take(2).collect();
    names.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// The string leaves where two JSON documents of one structure differ, with their keys.
fn leaf_pairs(recorded: &Value, sent: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    match (recorded, sent) {
        (Value::String(masked), Value::String(real)) if masked != real => {
            out.push((leaf_key(path), masked.clone(), real.clone()));
        }
        (Value::Array(a), Value::Array(b)) => {
            for (a, b) in a.iter().zip(b) {
                leaf_pairs(a, b, path, out);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (name, a) in a {
                if let Some(b) = b.get(name) {
                    leaf_pairs(a, b, &format!("{path}/{name}"), out);
                }
            }
        }
        _ => {}
    }
}

/// A path segment in at most this many recorded requests names a record, not a collection.
const SPECIFIC_USES: usize = 6;

/// The response headers not carried over: the server sets its own framing.
const FRAMING_HEADERS: [&str; 5] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "keep-alive",
];

async fn serve_recorded(
    State(player): State<Arc<Mutex<Player>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    let sent_body = String::from_utf8_lossy(&body).into_owned();
    let answer = {
        let mut player = player
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let taken = player.take(method.as_str(), &path_and_query);
        // A redirect the client follows by itself: its hops were one recorded exchange, the
        // unfollowed redirect at the end, which answers every hop again.
        let hop = taken.is_none().then(|| player.last_redirect()).flatten();
        let Some(index) = taken.or(hop) else {
            player.served.push(None);
            player
                .unmatched
                .push(format!("{} {path_and_query}", method.as_str()));
            return no_answer();
        };
        if hop.is_none() {
            player.served.push(Some(index));
        }
        let recorded_target = player.recorded[index].path_and_query.clone();
        player.learn(index, &recorded_target, &path_and_query);
        let recorded_body = player.recorded[index].request_body.clone();
        if let Some(recorded_body) = &recorded_body {
            player.learn(index, recorded_body, &sent_body);
        }
        let same_body = match &recorded_body {
            Some(recorded) => same_but_for_masks(recorded, &sent_body),
            None => sent_body.is_empty(),
        };
        if !same_body && hop.is_none() {
            player.diverged.push(index + 1);
        }
        let call = &player.recorded[index];
        call.status
            .map(|status| {
                let body = if call.token_answer {
                    Some(REPLAY_TOKEN_ANSWER.to_owned())
                } else {
                    call.body.as_deref().map(|body| player.restore(index, body))
                };
                (status, call.headers.clone(), body)
            })
            .ok_or(player.recorded[index].timed_out)
    };
    match answer {
        Ok((status, headers, body)) => {
            let mut response = Response::new(Body::from(body.unwrap_or_default()));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in headers {
                if FRAMING_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    continue;
                }
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
        Err(true) => {
            // A recorded timeout: answer after the replay's client has given up.
            tokio::time::sleep(REPLAY_TIMEOUT * 5).await;
            no_answer()
        }
        Err(false) => no_answer(),
    }
}

/// What a replay answers to a token request the run got a token for (the recording never
/// holds the token): one that lives for the whole replay.
const REPLAY_TOKEN_ANSWER: &str =
    r#"{"access_token":"spoke-replay-token","token_type":"Bearer","expires_in":86400}"#;

/// A response whose body breaks off: the client sees no usable answer, as a dropped
/// connection, which judges the rule `error` rather than passing or failing it.
fn no_answer() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other(
            "the recording holds no answer for this request",
        ))
    });
    (StatusCode::OK, Body::from_stream(broken)).into_response()
}

/// The path and query of a recorded URL.
fn path_and_query(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

fn is_delimiter(c: char) -> bool {
    matches!(c, '"' | '/' | '?' | '&' | '=')
}

fn segments(text: &str) -> Vec<&str> {
    text.split(is_delimiter).collect()
}

/// Whether a recorded path and query stands for the one received: equal, or equal but for
/// masked personal values and redacted secrets.
fn compatible(recorded: &str, received: &str) -> bool {
    if recorded == received {
        return true;
    }
    let recorded = segments(recorded);
    let received = segments(received);
    recorded.len() == received.len()
        && recorded
            .iter()
            .zip(&received)
            .all(|(r, s)| r == s || *r == crate::connector::exchange::REDACTED || is_mask_of(r, s))
}

/// Whether two request bodies are the same but where either holds a mask of the other's text,
/// character by character: the recording masks what the run sent, and the replay sends masks
/// where it got them from the recording (a personal value inside a partner's source name).
fn same_but_for_masks(recorded: &str, sent: &str) -> bool {
    if recorded == sent {
        return true;
    }
    let recorded = segments(recorded);
    let sent = segments(sent);
    recorded.len() == sent.len()
        && recorded.iter().zip(&sent).all(|(r, s)| {
            // Composed, so that a decomposed accent compares as one letter.
            let nfc = |text: &str| without_number(text).nfc().collect::<String>();
            let (r, s) = (nfc(r), nfc(s));
            r == s
                || r == crate::connector::exchange::REDACTED
                || (r.chars().count() == s.chars().count()
                    && r.chars()
                        .zip(s.chars())
                        .all(|(a, b)| a == b || shape_of_char(a) == b || shape_of_char(b) == a))
        })
}

/// What [`shape`] makes of one character.
fn shape_of_char(c: char) -> char {
    let mut buffer = [0u8; 4];
    shape(c.encode_utf8(&mut buffer))
        .chars()
        .next()
        .unwrap_or(c)
}

/// `masked` without the `~N` that tells apart values of one shape (before an email's `@`).
fn without_number(masked: &str) -> String {
    let (head, tail) = match masked.rfind('@') {
        Some(at) => masked.split_at(at),
        None => (masked, ""),
    };
    match head.rfind('~') {
        Some(tilde)
            if tilde + 1 < head.len() && head[tilde + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{}{tail}", &head[..tilde])
        }
        _ => masked.to_owned(),
    }
}

/// Whether `masked` is the shape `real` is masked to, as is or URL-encoded.
fn is_mask_of(masked: &str, real: &str) -> bool {
    if masked.chars().count() < 3 {
        return false;
    }
    let masked = &without_number(masked);
    if shape(real) == *masked {
        return true;
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let (masked, real) = (without_number(&decode(masked)), decode(real));
    masked != real && shape(&real) == masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_and_a_request_with_control_characters_are_shown_escaped() {
        let recording = Recording {
            profile: Profile::reference(),
            base_url: "http://127.0.0.1:1".into(),
            seed: 1,
            only: Vec::new(),
            latency_budget: Duration::from_secs(2),
            exchanges: Vec::new(),
            verdicts: vec![("LEAD-001".into(), Outcome::Fail)],
        };
        let outcome = ReplayOutcome {
            verdicts: vec![Verdict {
                rule: "LEAD-001".into(),
                level: crate::suite::Level::Must,
                title: "t".into(),
                outcome: Outcome::Fail,
                reason: "partner said \x1b[2J\n\u{202e}".into(),
                evidence: Vec::new(),
            }],
            unmatched: vec!["GET /x?\x07".into()],
            unused: Vec::new(),
            diverged: Vec::new(),
            differences: Vec::new(),
            carried: Vec::new(),
        };
        let text = render(&recording, &outcome);
        assert!(
            text.contains(r"partner said \u{1b}[2J\u{a}\u{202e}"),
            "{text}"
        );
        assert!(text.contains(r"GET /x?\u{7}"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
    }

    #[test]
    fn masked_query_values_and_redacted_keys_are_compatible() {
        assert!(compatible(
            "/staff?email=xxx.xxxxx%40club.example&key=***",
            "/staff?email=ana.lopez%40club.example&key=spoke-KEY-1"
        ));
        assert!(!compatible("/staff?email=xxx", "/staff?email=anna"));
        assert!(!compatible("/staff/1", "/staff/2"));
    }

    #[test]
    fn bodies_differing_only_by_masks_are_the_same_request() {
        // The recording masked the sent name; the replay sent a mask it got from the recording.
        assert!(same_but_for_masks(
            "{\"name\":\"Xxx~2\",\"source\":\"Zoe\u{308}'s Bootcamp\"}",
            "{\"name\":\"Bob\",\"source\":\"Xxo\u{308}'s Bootcamp\"}"
        ));
        assert!(!same_but_for_masks(
            r#"{"name":"Xxx","status":"active"}"#,
            r#"{"name":"Bob","status":"inactive"}"#
        ));
        assert!(!same_but_for_masks(
            r#"{"name":"Xxx"}"#,
            r#"{"name":"Bo9"}"#
        ));
    }

    #[test]
    fn learnt_values_are_put_back_whole_or_word_by_word() {
        let mut player = Player::new(&[]);
        player.learn(
            0,
            r#"{"first":"Xxx","last":"Xxxxx-999xxx","note":"x"}"#,
            r#"{"first":"Ana","last":"Lopez-012abc","note":"y"}"#,
        );
        assert_eq!(
            player.restore(
                0,
                r#"{"name":"Xxx Xxxxx-999xxx","first":"Xxx","id":"Xxxx"}"#
            ),
            r#"{"first":"Ana","id":"Xxxx","name":"Ana Lopez-012abc"}"#
        );
    }
}

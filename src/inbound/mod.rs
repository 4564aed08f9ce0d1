//! The other direction: a mock of the Connector's own API (`spoke connector`) for partners that
//! send data. Calls land in a simulated InTouch (with SmartMatch), are recorded, and are judged
//! by the catalog's `SEND-` rules.

pub mod checks;
pub mod state;
pub mod store;
pub mod wire;

use crate::connector::exchange::{truncate_evidence, Exchange, REDACTED};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use store::{Intouch, Saved, Tenant};
use wire::{ProviderInfo, Reason, Refusal, Resource};

/// The largest request body read; larger ones get 413.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Calls past this many keep no bodies in their evidence (their verdict facts are kept), so a
/// long-running server's memory stays bounded by what a report can usefully show.
pub const BODIES_KEPT: usize = 10_000;

/// The prefix of the admin routes; never part of the Connector's API.
pub const ADMIN_PREFIX: &str = "/__spoke";

/// How the mock Connector API is set up.
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    /// The provider, client and club accepted.
    pub tenant: Tenant,
    /// Where InTouch is kept across restarts, if anywhere (used by [`ConnectorState::open`]).
    pub state_file: Option<PathBuf>,
    /// The largest request body read.
    pub body_limit: usize,
}

/// Whether a save or a read, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// POST: save a record.
    Save,
    /// GET: read a record.
    Read,
    /// Any other method.
    Other,
}

/// How a call reached the server: what SEND-008 (TLS off loopback) judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// The peer's address is a loopback address (unknown counts as loopback).
    pub peer_loopback: bool,
    /// The `Host` the partner addressed (its base URL's host).
    pub host: String,
    /// That host names this machine (localhost, 127.0.0.0/8, ::1).
    pub host_loopback: bool,
    /// A TLS-terminating proxy in front says the partner used https (`X-Forwarded-Proto` or
    /// `Forwarded: proto=https`).
    pub forwarded_https: bool,
}

impl Transport {
    fn observe(headers: &HeaderMap, peer: Option<SocketAddr>) -> Transport {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let host = text("host");
        let forwarded_https = text("x-forwarded-proto")
            .split(',')
            .next()
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
            || text("forwarded")
                .to_ascii_lowercase()
                .split([';', ','])
                .any(|part| part.trim() == "proto=https");
        Transport {
            peer_loopback: peer.is_none_or(|addr| addr.ip().is_loopback()),
            host_loopback: host_is_loopback(&host),
            host,
            forwarded_https,
        }
    }
}

/// Whether a `Host` header value names this machine.
pub fn host_is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One call a partner made, with what the server understood of it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The recorded request and answer (credentials redacted).
    pub exchange: Exchange,
    /// The resource addressed, if the path names one.
    pub resource: Option<Resource>,
    /// Save, read or other.
    pub kind: CallKind,
    /// The provider info carried, when the document (or query) could be read.
    pub provider: Option<ProviderInfo>,
    /// The fields sent (saves).
    pub fields: BTreeMap<String, String>,
    /// Why the call was refused, if it was.
    pub refusal: Option<Refusal>,
    /// What a save did, if it succeeded.
    pub saved: Option<Saved>,
    /// How it arrived.
    pub transport: Transport,
}

/// Saves in one transaction at most: enough for every sender waiting at once.
const GROUP_LIMIT: usize = 256;

/// A save waiting for the state file's commit.
#[derive(Debug)]
struct Pending {
    resource: Resource,
    record_id: String,
    fields: BTreeMap<String, String>,
    done: tokio::sync::oneshot::Sender<Result<Saved, String>>,
}

/// What the state file's writer is asked.
#[derive(Debug)]
enum ToWriter {
    /// Store a save, then answer it.
    Save(Pending),
    /// Store what came before, close the file (releasing it for another server), then answer.
    Close(tokio::sync::oneshot::Sender<()>),
}

#[derive(Debug)]
struct Shared {
    options: ConnectorOptions,
    intouch: Arc<tokio::sync::Mutex<Intouch>>,
    // Set when InTouch is kept in a state file: saves go through its one writer.
    writer: Option<tokio::sync::mpsc::Sender<ToWriter>>,
    initial: Intouch,
    calls: std::sync::Mutex<Vec<Call>>,
    started: std::time::Instant,
    error_count: AtomicU64,
    call_count: tokio::sync::watch::Sender<usize>,
}

/// The mock Connector's state: InTouch and the calls recorded.
#[derive(Debug, Clone)]
pub struct ConnectorState {
    shared: Arc<Shared>,
}

impl ConnectorState {
    /// A Connector serving `intouch` in memory (`options.state_file` is not used).
    pub fn new(intouch: Intouch, options: ConnectorOptions) -> ConnectorState {
        ConnectorState::with_writer(intouch, options, None)
    }

    /// A Connector serving the seed, or with `options.state_file` what that file holds (created
    /// from the seed if new, moved from JSON if of an earlier version); saves are then answered
    /// only once committed to it. Must be called within a Tokio runtime.
    pub async fn open(
        options: ConnectorOptions,
        seed: store::Seed,
    ) -> Result<(ConnectorState, Option<state::Migrated>), state::StateError> {
        let Some(path) = options.state_file.clone() else {
            let intouch = seed.into_intouch(options.tenant.clone());
            return Ok((ConnectorState::new(intouch, options), None));
        };
        let tenant = options.tenant.clone();
        let opened = state::open(&path, &tenant, || seed.into_intouch(tenant.clone())).await?;
        let (writer, pending) = tokio::sync::mpsc::channel(GROUP_LIMIT);
        let state = ConnectorState::with_writer(opened.intouch, options, Some(writer));
        tokio::spawn(write_saves(
            opened.db,
            state.shared.intouch.clone(),
            pending,
        ));
        Ok((state, opened.migrated))
    }

    fn with_writer(
        intouch: Intouch,
        options: ConnectorOptions,
        writer: Option<tokio::sync::mpsc::Sender<ToWriter>>,
    ) -> ConnectorState {
        ConnectorState {
            shared: Arc::new(Shared {
                options,
                initial: intouch.clone(),
                intouch: Arc::new(tokio::sync::Mutex::new(intouch)),
                writer,
                calls: Default::default(),
                started: std::time::Instant::now(),
                error_count: AtomicU64::new(0),
                call_count: tokio::sync::watch::channel(0).0,
            }),
        }
    }

    /// The tenant served.
    pub fn tenant(&self) -> &Tenant {
        &self.shared.options.tenant
    }

    /// InTouch as it is now.
    pub async fn intouch(&self) -> Intouch {
        self.shared.intouch.lock().await.clone()
    }

    /// InTouch as it was when the server started.
    pub fn initial(&self) -> &Intouch {
        &self.shared.initial
    }

    /// Every call recorded, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared
            .calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }

    /// Closes the state file once the saves already sent are stored; later saves are refused.
    /// Nothing to do in memory.
    pub async fn close(&self) {
        if let Some(writer) = &self.shared.writer {
            let (done, closed) = tokio::sync::oneshot::channel();
            if writer.send(ToWriter::Close(done)).await.is_ok() {
                let _ = closed.await;
            }
        }
    }

    /// Watches the number of calls recorded.
    pub fn call_count(&self) -> tokio::sync::watch::Receiver<usize> {
        self.shared.call_count.subscribe()
    }

    fn error_uuid(&self) -> String {
        let number = self.shared.error_count.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        store::uuid_from(&format!("error/{number}/{nanos}"))
    }

    fn record(&self, mut call: Call) {
        let Ok(mut calls) = self.shared.calls.lock() else {
            return;
        };
        call.exchange.id = calls.len() + 1;
        if calls.len() >= BODIES_KEPT {
            call.exchange.request_body = None;
            call.exchange.response_body = None;
        }
        calls.push(call);
        let count = calls.len();
        drop(calls);
        self.shared.call_count.send_replace(count);
    }
}

/// The router: the API under [`wire::API_BASE`] plus the admin routes.
pub fn router(state: ConnectorState) -> Router {
    Router::new()
        .route(&format!("{ADMIN_PREFIX}/intouch"), get(admin_intouch))
        .route(&format!("{ADMIN_PREFIX}/health"), get(|| async { "ok" }))
        .fallback(api)
        .with_state(state)
}

async fn admin_intouch(State(state): State<ConnectorState>) -> Json<Intouch> {
    Json(state.intouch().await)
}

/// What the server answers, and what it understood.
struct Answer {
    status: u16,
    body: String,
    resource: Option<Resource>,
    kind: CallKind,
    provider: Option<ProviderInfo>,
    fields: BTreeMap<String, String>,
    refusal: Option<Refusal>,
    saved: Option<Saved>,
}

impl Answer {
    fn new(resource: Option<Resource>, kind: CallKind) -> Answer {
        Answer {
            status: 200,
            body: String::new(),
            resource,
            kind,
            provider: None,
            fields: BTreeMap::new(),
            refusal: None,
            saved: None,
        }
    }

    fn refuse(mut self, state: &ConnectorState, refusal: Refusal) -> Answer {
        self.status = refusal.status;
        self.body = wire::error_document(&refusal, &state.error_uuid());
        self.refusal = Some(refusal);
        self
    }
}

async fn api(State(state): State<ConnectorState>, request: Request) -> Response {
    let started_ms = state.shared.started.elapsed().as_millis() as u64;
    let clock = std::time::Instant::now();
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let (parts, body) = request.into_parts();
    let transport = Transport::observe(&parts.headers, peer);
    let limit = state.shared.options.body_limit;
    let declared_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = if declared_length.is_some_and(|length| length > limit) {
        None
    } else {
        axum::body::to_bytes(body, limit).await.ok()
    };
    let answer = match &bytes {
        Some(bytes) => answer(&state, &parts.method, &parts.uri, bytes).await,
        None => Answer::new(None, CallKind::Other).refuse(
            &state,
            Refusal::new(
                413,
                Reason::Validation,
                format!("the body exceeds {limit} bytes or could not be read whole"),
            ),
        ),
    };
    let request_body = bytes
        .as_ref()
        .filter(|b| !b.is_empty())
        .map(|b| truncate_evidence(&String::from_utf8_lossy(b)));
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer.body.clone(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if answer.kind == CallKind::Other && answer.status == 405 {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    }
    let mut exchange = Exchange {
        id: 0,
        operation: answer.resource.map(|r| {
            let verb = match answer.kind {
                CallKind::Save => "save",
                CallKind::Read => "read",
                CallKind::Other => "other",
            };
            format!("{}-{verb}", r.segment())
        }),
        purpose: "a call from the partner".to_owned(),
        method: parts.method.to_string(),
        url: format!(
            "http://{}{}",
            if transport.host.is_empty() {
                "connector"
            } else {
                &transport.host
            },
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        ),
        request_headers: redacted_headers(&parts.headers),
        request_body,
        status: Some(answer.status),
        response_headers: redacted_headers(response.headers()),
        response_body: Some(truncate_evidence(&answer.body)),
        error: None,
        started_ms,
        duration_ms: 0,
        duration_us: 0,
        request_body_bytes: bytes.as_ref().map(|b| b.len()).filter(|&n| n > 0),
        response_body_bytes: Some(answer.body.len()),
        retry_of: None,
    };
    exchange.set_duration(clock.elapsed());
    state.record(Call {
        exchange,
        resource: answer.resource,
        kind: answer.kind,
        provider: answer.provider,
        fields: answer.fields,
        refusal: answer.refusal,
        saved: answer.saved,
        transport,
    });
    response
}

/// Headers as evidence, with anything that may carry a credential masked.
fn redacted_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_owned();
            let secret = [
                "authorization",
                "cookie",
                "token",
                "secret",
                "key",
                "password",
            ]
            .iter()
            .any(|word| name.contains(word));
            let value = if secret {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect()
}

async fn answer(
    state: &ConnectorState,
    method: &Method,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Answer {
    let path = uri.path();
    let resource = path
        .strip_prefix(wire::API_BASE)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(Resource::from_segment);
    let Some(resource) = resource else {
        return Answer::new(None, CallKind::Other).refuse(
            state,
            Refusal::new(
                404,
                Reason::Unknown,
                format!(
                    "no resource at {path}; the API serves {0}/user, {0}/staff and {0}/leadsource",
                    wire::API_BASE
                ),
            ),
        );
    };
    match *method {
        Method::POST => save(state, resource, body).await,
        Method::GET => read(state, resource, uri.query().unwrap_or_default()).await,
        _ => {
            let hint = if *method == Method::DELETE {
                "; records are never deleted: make one inactive by saving it with <userStatus>INACTIVE</userStatus>"
            } else {
                ""
            };
            Answer::new(Some(resource), CallKind::Other).refuse(
                state,
                Refusal::new(
                    405,
                    Reason::Unknown,
                    format!("{method} is not part of the API: POST saves, GET reads{hint}"),
                ),
            )
        }
    }
}

fn tenant_refusal(tenant: &Tenant, provider: &ProviderInfo) -> Option<Refusal> {
    let (name, got, want) = tenant.mismatch(provider)?;
    let what = match name {
        "identifier" => "provider identifier",
        "clientID" => "client id",
        _ => "club id",
    };
    Some(Refusal {
        status: 403,
        reason: Reason::Validation,
        field: Some(format!("providerInfo/{name}")),
        message: format!("unknown {what} `{got}`: this Connector serves `{want}`"),
    })
}

async fn save(state: &ConnectorState, resource: Resource, body: &[u8]) -> Answer {
    let answer = Answer::new(Some(resource), CallKind::Save);
    let Ok(text) = std::str::from_utf8(body) else {
        return answer.refuse(
            state,
            Refusal::invalid("body", "the body is not UTF-8 text"),
        );
    };
    let submission = match wire::read_submission(resource, text) {
        Ok(submission) => submission,
        Err(refusal) => return answer.refuse(state, refusal),
    };
    let mut answer = answer;
    answer.provider = Some(submission.provider.clone());
    answer.fields = submission.fields.clone();
    if let Some(missing) = submission.provider.missing() {
        return answer.refuse(
            state,
            Refusal::invalid(
                format!("providerInfo/{missing}"),
                format!("<providerInfo> must carry <{missing}>"),
            ),
        );
    }
    if let Some(refusal) = tenant_refusal(state.tenant(), &submission.provider) {
        return answer.refuse(state, refusal);
    }
    if let Err(refusal) = wire::validate(&submission) {
        return answer.refuse(state, refusal);
    }
    let record_id = submission.provider.record_id.clone().unwrap_or_default();
    let Some(writer) = &state.shared.writer else {
        let (saved, _) = save_into(
            &mut *state.shared.intouch.lock().await,
            resource,
            &record_id,
            submission.fields,
        );
        answer.body = wire::saved_document(&saved.uuid);
        answer.saved = Some(saved);
        return answer;
    };
    let (done, committed) = tokio::sync::oneshot::channel();
    let pending = Pending {
        resource,
        record_id,
        fields: submission.fields,
        done,
    };
    let outcome = match writer.send(ToWriter::Save(pending)).await {
        Ok(()) => committed
            .await
            .unwrap_or_else(|_| Err("the state file was closed".to_owned())),
        Err(_) => Err("the state file was closed".to_owned()),
    };
    match outcome {
        Ok(saved) => {
            answer.body = wire::saved_document(&saved.uuid);
            answer.saved = Some(saved);
            answer
        }
        Err(failure) => answer.refuse(
            state,
            Refusal::new(
                500,
                Reason::Database,
                format!("the record could not be stored: {failure}"),
            ),
        ),
    }
}

/// One save into InTouch: what it did, and the row it changed.
fn save_into(
    intouch: &mut Intouch,
    resource: Resource,
    record_id: &str,
    fields: BTreeMap<String, String>,
) -> (Saved, state::Touched) {
    match resource {
        Resource::User => {
            let (saved, at) = intouch.save_user_at(record_id, fields);
            (saved, (state::List::Users, at))
        }
        Resource::Staff => {
            let (saved, at) = intouch.save_entry_at(resource, record_id, fields);
            (saved, (state::List::Staff, at))
        }
        Resource::LeadSource => {
            let (saved, at) = intouch.save_entry_at(resource, record_id, fields);
            (saved, (state::List::LeadSources, at))
        }
    }
}

/// The state file's one writer: takes every save waiting, applies them in arrival order,
/// commits them in one transaction and only then answers each (group commit). Reads wait for
/// the commit, so nothing unacknowledged is ever shown.
async fn write_saves(
    mut db: state::StateDb,
    intouch: Arc<tokio::sync::Mutex<Intouch>>,
    mut receiver: tokio::sync::mpsc::Receiver<ToWriter>,
) {
    let mut messages = Vec::with_capacity(GROUP_LIMIT);
    // Set when InTouch in memory may differ from the file: every later save is refused.
    let mut broken: Option<String> = None;
    let mut closed = None;
    while closed.is_none() && receiver.recv_many(&mut messages, GROUP_LIMIT).await > 0 {
        let mut group = Vec::with_capacity(messages.len());
        for message in messages.drain(..) {
            match (message, &closed) {
                (ToWriter::Save(pending), None) => group.push(pending),
                (ToWriter::Save(pending), Some(_)) => {
                    let _ = pending
                        .done
                        .send(Err("the state file was closed".to_owned()));
                }
                (ToWriter::Close(done), _) => closed = Some(done),
            }
        }
        if let Some(reason) = &broken {
            for pending in group {
                let _ = pending.done.send(Err(reason.clone()));
            }
            continue;
        }
        if !group.is_empty() {
            broken = commit_group(&mut db, &intouch, group).await;
        }
    }
    db.close().await;
    if let Some(done) = closed {
        let _ = done.send(());
    }
}

/// Applies and commits one group of saves, answering each; tells why the file can no longer
/// be trusted if a failed commit could not be undone.
async fn commit_group(
    db: &mut state::StateDb,
    intouch: &tokio::sync::Mutex<Intouch>,
    group: Vec<Pending>,
) -> Option<String> {
    let mut intouch = intouch.lock().await;
    let mut touched = Vec::with_capacity(group.len());
    let mut answers = Vec::with_capacity(group.len());
    for pending in group {
        let (saved, row) = save_into(
            &mut intouch,
            pending.resource,
            &pending.record_id,
            pending.fields,
        );
        touched.push(row);
        answers.push((pending.done, saved));
    }
    touched.sort_unstable();
    touched.dedup();
    let error = match db.commit(&intouch, &touched).await {
        Ok(()) => {
            drop(intouch);
            for (done, saved) in answers {
                let _ = done.send(Ok(saved));
            }
            return None;
        }
        Err(error) => error.to_string(),
    };
    // Not acknowledged, so not kept: InTouch goes back to what the file holds.
    let broken = match db.load().await {
        Ok(Some(stored)) => {
            *intouch = stored;
            None
        }
        Ok(None) => Some(format!("{error}; the state file is empty")),
        Err(reload) => Some(format!("{error}; then it could not be read: {reload}")),
    };
    drop(intouch);
    for (done, _) in answers {
        let _ = done.send(Err(error.clone()));
    }
    broken
}

async fn read(state: &ConnectorState, resource: Resource, query: &str) -> Answer {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut answer = Answer::new(Some(resource), CallKind::Read);
    let provider = match ProviderInfo::from_query(&pairs) {
        Ok(provider) => provider,
        Err(refusal) => return answer.refuse(state, refusal),
    };
    answer.provider = Some(provider.clone());
    if let Some(missing) = provider.missing() {
        let documented = wire::query_name(missing);
        let alias = if documented == missing {
            String::new()
        } else {
            format!(" (or `{missing}`)")
        };
        return answer.refuse(
            state,
            Refusal::invalid(
                documented,
                format!(
                    "a read names the record by the query parameters provider, client_id, club_id and recordID; `{documented}`{alias} is missing"
                ),
            ),
        );
    }
    if let Some(refusal) = tenant_refusal(state.tenant(), &provider) {
        return answer.refuse(state, refusal);
    }
    let record_id = provider.record_id.clone().unwrap_or_default();
    let intouch = state.shared.intouch.lock().await;
    match intouch.find(resource, &record_id) {
        Some((uuid, fields)) => {
            answer.body = wire::record_document(resource, uuid, &provider, fields);
            answer
        }
        None => {
            drop(intouch);
            answer.refuse(
                state,
                Refusal::new(
                    404,
                    Reason::Database,
                    format!("no {} with recordID `{record_id}`", resource.segment()),
                ),
            )
        }
    }
}

/// A mock Connector listening on a socket, stopped when dropped or on [`RunningConnector::stop`].
#[derive(Debug)]
pub struct RunningConnector {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its state, to inspect from tests.
    pub state: ConnectorState,
    server: crate::serve::StopHandle,
}

impl RunningConnector {
    /// The API's base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}{}", self.addr, wire::API_BASE)
    }

    /// The server's root URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving, waits for the server to finish and closes the state file.
    pub async fn stop(self) -> std::io::Result<()> {
        let stopped = self.server.stop().await;
        self.state.close().await;
        stopped
    }
}

/// Starts the mock Connector on `addr` (port 0 for any free port) in the current runtime.
pub async fn spawn(state: ConnectorState, addr: SocketAddr) -> std::io::Result<RunningConnector> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = crate::serve::StopHandle::spawn(|stopped| async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningConnector {
        addr,
        state,
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:8090",
            "127.0.0.1:80",
            "[::1]:8090",
            "127.3.2.1",
        ] {
            assert!(host_is_loopback(host), "{host}");
        }
        for host in [
            "connector.example.com",
            "10.0.0.5:8090",
            "[2001:db8::1]:443",
            "",
        ] {
            assert!(!host_is_loopback(host), "{host}");
        }
    }
}

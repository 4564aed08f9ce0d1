//! The mock partner: an axum server that serves any profile's API shape from an in-memory store,
//! with reference behaviour by default.

mod dump;
mod error;
pub mod faults;
mod handlers;
mod hostile;
pub mod listen;
mod oauth;
pub mod openapi;
pub mod paging;
pub mod sandbox;
pub mod sender;
pub mod store;

pub use dump::{DEFAULT_PAGE, MAX_PAGE};
pub use error::ApiError;
pub use faults::{Fault, Faults};
pub use sandbox::{Sandbox, SandboxError};
pub use store::{NumericIds, Store, StoreData, StoredRecord};

use crate::auth::Credentials;
use crate::profile::template::{path_segments, PathSegment};
use crate::profile::{OperationKind, Profile, Slot};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;

/// The largest request body the mock partner reads by default.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// The prefix of the admin routes; never part of a partner's API.
pub const ADMIN_PREFIX: &str = "/__spoke";

/// One operation's route, ready for matching.
#[derive(Debug, Clone)]
struct Route {
    kind: OperationKind,
    method: axum::http::Method,
    segments: Vec<PathSegment>,
    /// SOAP: the action that selects this operation among those sharing the path.
    action: Option<String>,
    /// Which segments are literal, first segment highest: of two routes of one length that
    /// both fit, the greater value is the more specific (literals win from the left).
    literals: u128,
}

impl Route {
    fn new(kind: OperationKind, operation: &crate::profile::Operation) -> Option<Route> {
        let segments = path_segments(&operation.path).ok()?;
        let literals = segments.iter().fold(0u128, |bits, segment| {
            // A slot framed by text is more specific than a bare one.
            (bits << 1) | u128::from(!matches!(segment, PathSegment::Slot(_)))
        });
        Some(Route {
            kind,
            method: operation.method.as_str().parse().ok()?,
            segments,
            action: operation.soap_action.clone(),
            literals,
        })
    }
}

#[derive(Debug)]
struct Shared {
    profile: Profile,
    /// The path of the profile's base-url (`/v3`, or empty): the routes are served under it,
    /// as the real API serves them.
    prefix: String,
    store: Store,
    routes: Vec<Route>,
    options: PartnerOptions,
    flaky_counter: std::sync::atomic::AtomicU64,
    flaky_last: std::sync::atomic::AtomicBool,
    pages: PageCache,
    /// `credentials` as each request is checked against them.
    expected: crate::auth::ExpectedCredentials,
    /// The routes of paths without an `{id}` or `{email}`, by their whole unescaped path.
    fixed_paths: std::collections::HashMap<String, Vec<usize>>,
    /// Some route is told apart by its SOAP action.
    routes_by_action: bool,
    /// Prospect and member operations that share one route, each to the other.
    twins: std::collections::HashMap<OperationKind, OperationKind>,
    /// Readers of plain JSON write bodies, by operation (see `profile::stream`).
    stream_readers: std::collections::HashMap<OperationKind, crate::profile::stream::StreamReader>,
    /// OAuth profiles: the token endpoint, and the tokens it issued (the only ones accepted).
    issuer: Option<oauth::TokenIssuer>,
    /// When each source created here was created, by id (kept only with a source-list lag).
    sources_created: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// Rendered list pages by request, valid for one store generation.
#[derive(Debug, Default)]
struct PageCache {
    pages: std::sync::RwLock<std::collections::HashMap<String, (u64, axum::body::Bytes)>>,
}

impl PageCache {
    /// The most pages kept; the cache starts over past it.
    const LIMIT: usize = 4096;

    fn read(&self, key: &str, generation: u64) -> Option<axum::body::Bytes> {
        let pages = self.pages.read().ok()?;
        let (at, bytes) = pages.get(key)?;
        (*at == generation).then(|| bytes.clone())
    }

    fn write(&self, key: String, generation: u64, bytes: axum::body::Bytes) {
        if let Ok(mut pages) = self.pages.write() {
            if pages.len() >= Self::LIMIT {
                pages.clear();
            }
            pages.insert(key, (generation, bytes));
        }
    }
}

/// How the mock partner behaves beyond its profile.
#[derive(Debug, Clone)]
pub struct PartnerOptions {
    /// The largest request body read; larger ones get 413.
    pub body_limit: usize,
    /// Misbehaviours switched on.
    pub faults: Faults,
    /// How long the `slow` fault waits before answering.
    pub slow_delay: std::time::Duration,
    /// How long the `slow-staff-list` fault waits before answering.
    pub sluggish_delay: std::time::Duration,
    /// Seeds the `flaky` fault's choice of requests.
    pub seed: u64,
    /// How long an OAuth token issued by the mock lives (short, so a run sees a refresh).
    pub token_lifetime: std::time::Duration,
    /// The owner id given to prospects that arrive without one (a queue, a default owner):
    /// conformant, since the guide leaves it to the partner to "assign them correctly as you
    /// desire". `None` keeps them unowned.
    pub default_owner: Option<String>,
    /// How long a created lead source stays out of the source list (an eventually consistent
    /// list): conformant as long as the Connector's re-reads see it. Zero shows it at once.
    pub source_list_lag: std::time::Duration,
    /// How long a client may take to send a request's headers before it is disconnected.
    pub header_timeout: std::time::Duration,
    /// How long a client may take to send a request's body once its headers are read; past
    /// it the request is answered 408 and the connection closed.
    pub body_timeout: std::time::Duration,
    /// The most prospects and members held; a create past it is answered 507. `None`: no cap.
    pub max_records: Option<usize>,
}

/// How long the mock partner waits for a request's headers unless told otherwise.
pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the mock partner waits for a request's body unless told otherwise.
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long the mock partner's OAuth tokens live unless told otherwise.
pub const DEFAULT_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);

impl Default for PartnerOptions {
    fn default() -> Self {
        PartnerOptions {
            body_limit: DEFAULT_BODY_LIMIT,
            faults: Faults::none(),
            slow_delay: std::time::Duration::from_secs(30),
            sluggish_delay: std::time::Duration::from_millis(2_500),
            seed: 0,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            default_owner: None,
            source_list_lag: std::time::Duration::ZERO,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_records: None,
        }
    }
}

/// The whole unescaped paths of routes made of literals and tenancy values only, each with
/// every route that fits it: most requests find their route with one lookup.
fn fixed_paths(
    routes: &[Route],
    tenancy: &crate::profile::Tenancy,
) -> std::collections::HashMap<String, Vec<usize>> {
    fn fixed_text<'a>(
        segment: &'a PathSegment,
        tenancy: &'a crate::profile::Tenancy,
    ) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match segment {
            PathSegment::Literal(text) => Some(Cow::Borrowed(text.as_str())),
            PathSegment::Slot(Slot::Id | Slot::Email)
            | PathSegment::Framed {
                slot: Slot::Id | Slot::Email,
                ..
            } => None,
            PathSegment::Slot(slot) => {
                crate::profile::SlotValues::value(tenancy, *slot).map(Cow::Borrowed)
            }
            PathSegment::Framed {
                prefix,
                slot,
                suffix,
            } => crate::profile::SlotValues::value(tenancy, *slot)
                .map(|value| Cow::Owned(format!("{prefix}{value}{suffix}"))),
        }
    }
    let record_slot = |segment: &PathSegment, text: &str| {
        matches!(segment.slot(), Some(Slot::Id | Slot::Email)) && segment.capture(text).is_some()
    };
    let mut paths: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for route in routes {
        let texts: Option<Vec<std::borrow::Cow<'_, str>>> = route
            .segments
            .iter()
            .map(|s| fixed_text(s, tenancy))
            .collect();
        // A `/` or `%` would not come back as one segment of the request's path.
        let Some(texts) = texts.filter(|texts| !texts.iter().any(|t| t.contains(['/', '%'])))
        else {
            continue;
        };
        let fitting = routes
            .iter()
            .enumerate()
            .filter(|(_, other)| {
                other.segments.len() == texts.len()
                    && other.segments.iter().zip(&texts).all(|(segment, text)| {
                        record_slot(segment, text)
                            || fixed_text(segment, tenancy).as_ref() == Some(text)
                    })
            })
            .map(|(index, _)| index)
            .collect();
        paths.insert(format!("/{}", texts.join("/")), fitting);
    }
    paths
}

/// Prospect and member operations of one role on the same route (method, path, action and
/// query), each mapped to the other: partners that keep both in one resource, told apart by a
/// field.
fn twin_operations(profile: &Profile) -> std::collections::HashMap<OperationKind, OperationKind> {
    use OperationKind::*;
    let mut twins = std::collections::HashMap::new();
    for (prospect, member) in [
        (ProspectSave, MemberSave),
        (ProspectCreate, MemberCreate),
        (ProspectUpdate, MemberUpdate),
        (ProspectRead, MemberRead),
    ] {
        let (Some(a), Some(b)) = (profile.operation(prospect), profile.operation(member)) else {
            continue;
        };
        let same = a.method == b.method
            && a.path.as_str() == b.path.as_str()
            && a.soap_action == b.soap_action
            && a.query.keys().eq(b.query.keys())
            && a.query
                .values()
                .map(|t| t.as_str())
                .eq(b.query.values().map(|t| t.as_str()));
        if same {
            twins.insert(prospect, member);
            twins.insert(member, prospect);
        }
    }
    twins
}

/// The mock partner's state: the profile it serves, the credentials it accepts and its store.
#[derive(Debug, Clone)]
pub struct PartnerState {
    shared: Arc<Shared>,
}

impl PartnerState {
    /// A partner serving `profile` from `sandbox`, accepting `credentials`.
    pub fn new(profile: Profile, sandbox: Sandbox, credentials: Credentials) -> Self {
        Self::with_options(profile, sandbox, credentials, PartnerOptions::default())
    }

    /// A partner with non-default options.
    pub fn with_options(
        profile: Profile,
        sandbox: Sandbox,
        credentials: Credentials,
        options: PartnerOptions,
    ) -> Self {
        if options.faults.has(Fault::StaffListGzipBomb) {
            hostile::gzip_bomb();
        }
        let routes: Vec<Route> = profile
            .operations
            .iter()
            // Validated profiles always have matchable paths.
            .filter_map(|(kind, operation)| Route::new(*kind, operation))
            .collect();
        let stream_readers = profile
            .operations
            .iter()
            .filter(|(kind, operation)| {
                kind.role() == crate::profile::OperationRole::Write
                    && profile.format_of(operation) == crate::profile::BodyFormat::Json
                    && operation.params.is_empty()
            })
            .filter_map(|(kind, operation)| {
                let codec = profile.codec(kind.record());
                let reader =
                    crate::profile::stream::StreamReader::new(&codec, operation.body.as_ref())?;
                Some((*kind, reader))
            })
            .collect();
        let fixed_paths = fixed_paths(&routes, &profile.tenancy);
        let numeric = |kind| {
            matches!(
                profile.codec(kind).value_type(crate::model::Field::Id),
                crate::profile::ValueType::Integer | crate::profile::ValueType::Number
            )
        };
        let numeric = NumericIds {
            staff: numeric(crate::model::RecordKind::Staff),
            sources: numeric(crate::model::RecordKind::Source),
            prospects: numeric(crate::model::RecordKind::Prospect),
            members: numeric(crate::model::RecordKind::Member),
        };
        let routes_by_action = routes.iter().any(|route| route.action.is_some());
        let twins = twin_operations(&profile);
        let issuer = credentials.oauth2().and_then(|client| {
            oauth::TokenIssuer::new(&profile, client, options.token_lifetime, options.seed)
        });
        let prefix = base_path(&profile.partner.base_url);
        PartnerState {
            shared: Arc::new(Shared {
                prefix,
                issuer,
                expected: credentials.expected(),
                fixed_paths,
                routes_by_action,
                twins,
                profile,
                store: Store::numbered(sandbox, numeric),
                routes,
                options,
                flaky_counter: Default::default(),
                flaky_last: Default::default(),
                pages: PageCache::default(),
                stream_readers,
                sources_created: Default::default(),
            }),
        }
    }

    /// The profile served.
    pub fn profile(&self) -> &Profile {
        &self.shared.profile
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The path of the profile's base-url the routes are served under (`/v3`, or empty).
    pub fn path_prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// Revokes every OAuth token issued so far: the next request with one is answered 401.
    /// Returns how many were live.
    pub fn revoke_tokens(&self) -> usize {
        self.shared
            .issuer
            .as_ref()
            .map_or(0, |issuer| issuer.revoke_all())
    }

    /// The path the OAuth token endpoint is served at, and how long its tokens live; `None`
    /// when the profile's scheme is not OAuth.
    pub fn token_endpoint(&self) -> Option<(&str, std::time::Duration)> {
        self.shared
            .issuer
            .as_ref()
            .map(|issuer| (issuer.path(), issuer.lifetime()))
    }
}

/// The path of a base URL without its trailing `/` (empty for the host's root).
pub fn base_path(base_url: &str) -> String {
    reqwest::Url::parse(base_url)
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The mock partner's router: the profile's operations plus the admin routes.
pub fn router(state: PartnerState) -> Router {
    Router::new()
        .route(&format!("{ADMIN_PREFIX}/store"), get(dump::admin_dump))
        .route(&format!("{ADMIN_PREFIX}/reset"), post(admin_reset))
        .route(&format!("{ADMIN_PREFIX}/health"), get(|| async { "ok" }))
        .route(&format!("{ADMIN_PREFIX}/oauth/revoke"), post(admin_revoke))
        .route(
            &format!("{ADMIN_PREFIX}{}", openapi::DOCUMENT_PATH),
            get(admin_openapi),
        )
        .fallback(dispatch)
        .with_state(state)
}

async fn admin_reset(State(state): State<PartnerState>) -> Json<serde_json::Value> {
    state.store().reset();
    Json(serde_json::json!({"reset": true}))
}

/// The API document, over the staff and sources held now.
async fn admin_openapi(State(state): State<PartnerState>) -> Json<serde_json::Value> {
    let sandbox = {
        let data = state.store().read();
        Sandbox {
            staff: data.staff.clone(),
            sources: data.sources.clone(),
        }
    };
    Json(openapi::document(state.profile(), &sandbox))
}

async fn admin_revoke(State(state): State<PartnerState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"revoked": state.revoke_tokens()}))
}

async fn dispatch(State(state): State<PartnerState>, request: Request) -> Response {
    if let Some(issuer) = &state.shared.issuer {
        let path = request.uri().path();
        if path == issuer.path() || state.shared.unprefixed(path) == issuer.path() {
            // The token endpoint does nothing slow but read the body.
            let timeout = state.shared.options.body_timeout;
            return tokio::time::timeout(timeout, issuer.serve(request))
                .await
                .unwrap_or_else(|_| ApiError::body_timeout(timeout).into_response());
        }
    }
    // Errors are answered in the format of the operation addressed, once it is known.
    let mut format = state.profile().partner.format;
    match handlers::handle(&state, request, &mut format).await {
        Ok(response) => response,
        Err(error) => error.into_response_as(format),
    }
}

/// What a matched request addresses.
#[derive(Debug)]
struct Matched {
    kind: OperationKind,
    path_id: Option<String>,
    path_email: Option<String>,
}

impl Shared {
    fn fault(&self, fault: Fault) -> bool {
        self.options.faults.has(fault)
    }

    /// A request's path without the base-url's prefix; a path outside the prefix as it is,
    /// so a client given the bare host still reaches the routes.
    fn unprefixed<'p>(&self, path: &'p str) -> &'p str {
        match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) if !self.prefix.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
                rest
            }
            _ => path,
        }
    }

    /// The routes served, one `METHOD /path` each, for a 404's message.
    fn route_list(&self) -> String {
        let mut routes: Vec<String> = self
            .profile
            .operations
            .values()
            .map(|operation| {
                format!(
                    "{} {}{}",
                    operation.method.as_str(),
                    self.prefix,
                    operation.path
                )
            })
            .collect();
        routes.sort();
        routes.dedup();
        routes.join(", ")
    }

    fn match_route(
        &self,
        method: &axum::http::Method,
        path: &str,
        action: Option<&str>,
        query: &std::collections::BTreeMap<String, String>,
    ) -> Result<Matched, ApiError> {
        let asked = path;
        let path = self.unprefixed(path);
        // A known path served by one route of this method (and no SOAP action to tell it from
        // others) needs no matching.
        if let Some(fitting) = self.fixed_paths.get(path) {
            let mut of_method = fitting
                .iter()
                .map(|index| &self.routes[*index])
                .filter(|route| route.method == *method);
            if let (Some(route), None) = (of_method.next(), of_method.next()) {
                let slotted = route
                    .segments
                    .iter()
                    .any(|segment| matches!(segment.slot(), Some(Slot::Id | Slot::Email)));
                if !slotted && route.action.is_none() {
                    return Ok(Matched {
                        kind: route.kind,
                        path_id: None,
                        path_email: None,
                    });
                }
            }
        }
        // Borrowed where nothing was escaped: most requests decode without copying.
        let escaped = path.contains('%');
        let segments: Vec<std::borrow::Cow<'_, str>> = path
            .strip_prefix('/')
            .unwrap_or(path)
            .split('/')
            .map(|segment| match escaped {
                true => percent_encoding::percent_decode_str(segment).decode_utf8_lossy(),
                false => std::borrow::Cow::Borrowed(segment),
            })
            .collect();
        let mut allowed = Vec::new();
        let mut tenancy_mismatch = None;
        let mut unknown_action = false;
        // The most specific route wins: a literal segment beats an `{id}` or `{email}` slot.
        let mut best: Option<(&Route, (u128, bool, usize))> = None;
        let mut fitting = Vec::new();
        for route in &self.routes {
            if route.segments.len() != segments.len() {
                continue;
            }
            let mut fits = true;
            let mut tenancy_ok = true;
            let mut mismatch = None;
            for (pattern, actual) in route.segments.iter().zip(&segments) {
                match pattern {
                    PathSegment::Literal(text) => fits &= text == actual,
                    slotted => match (slotted.slot(), slotted.capture(actual)) {
                        (_, None) => fits = false,
                        (Some(Slot::Id | Slot::Email), Some(_)) => {}
                        (Some(slot), Some(captured)) => {
                            let expected =
                                crate::profile::SlotValues::value(&self.profile.tenancy, slot);
                            if expected != Some(captured) {
                                tenancy_ok = false;
                                mismatch = Some((slot, captured.to_owned()));
                            }
                        }
                        (None, Some(_)) => {}
                    },
                }
            }
            // A club or client is only the wrong one on a route the rest of the path fits.
            if fits {
                fitting.push((route, tenancy_ok, mismatch));
            }
        }
        // Only the paths of the most literal routes count, as OpenAPI matches a concrete path
        // before a templated one: `/prospects/save` is not `/prospects/{id}`, whatever method
        // it is asked with, and `Allow` lists the methods of that path alone.
        let most_literal = fitting.iter().map(|(route, _, _)| route.literals).max();
        for (route, tenancy_ok, mismatch) in fitting {
            if Some(route.literals) != most_literal {
                continue;
            }
            if mismatch.is_some() {
                tenancy_mismatch = mismatch;
            }
            if route.method != *method {
                allowed.push(route.method.as_str());
                continue;
            }
            if !tenancy_ok {
                continue;
            }
            if route.action.is_some() && route.action.as_deref() != action {
                unknown_action = true;
                continue;
            }
            // Then the one whose declared query the request fits best (a lookup filtering
            // the list's route by `?email=`).
            let fit = self
                .profile
                .operation(route.kind)
                .and_then(|operation| self.profile.query_fit(operation, query));
            let rank = (route.literals, fit.is_some(), fit.unwrap_or(0));
            if best.is_none_or(|(_, top)| rank > top) {
                best = Some((route, rank));
            }
        }
        if let Some((route, _)) = best {
            let mut matched = Matched {
                kind: route.kind,
                path_id: None,
                path_email: None,
            };
            for (pattern, actual) in route.segments.iter().zip(&segments) {
                match (pattern.slot(), pattern.capture(actual)) {
                    (Some(Slot::Id), Some(value)) => matched.path_id = Some(value.to_owned()),
                    (Some(Slot::Email), Some(value)) => matched.path_email = Some(value.to_owned()),
                    _ => {}
                }
            }
            return Ok(matched);
        }
        if let Some((slot, actual)) = tenancy_mismatch {
            let (what, expected) = match slot {
                Slot::ClientId => ("client", self.profile.tenancy.client_id.as_deref()),
                _ => ("club", self.profile.tenancy.club_id.as_deref()),
            };
            return Err(ApiError::not_found(format!(
                "no {what} `{actual}` here (this partner serves {what} `{}`)",
                expected.unwrap_or_default()
            )));
        }
        if unknown_action {
            return Err(ApiError::bad_request(match action {
                Some(action) => format!("no operation of this partner has the SOAP action `{action}`"),
                None => "the request names no SOAP action (SOAPAction header, or action parameter of the content type)".to_owned(),
            })
            .with_field("SOAPAction"));
        }
        if !allowed.is_empty() {
            allowed.sort_unstable();
            allowed.dedup();
            return Err(ApiError::method_not_allowed(&allowed.join(", ")));
        }
        Err(ApiError::no_route(format!(
            "no operation of this partner at {method} {asked}; it serves {}",
            self.route_list()
        )))
    }
}

/// A mock partner listening on a socket, stopped when dropped or on [`RunningPartner::stop`].
#[derive(Debug)]
pub struct RunningPartner {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its state (store included), to inspect from tests.
    pub state: PartnerState,
    server: crate::serve::StopHandle,
    /// When it serves https: what a client needs to reach it (its CA, and the client
    /// certificate when it asks for one).
    tls: Option<crate::tls::ClientTls>,
}

impl RunningPartner {
    /// The base URL to reach it.
    pub fn base_url(&self) -> String {
        let scheme = match self.tls {
            Some(_) => "https",
            None => "http",
        };
        format!("{scheme}://{}{}", self.addr, self.state.shared.prefix)
    }

    /// What a client needs to reach it over TLS; nothing for plain http.
    pub fn client_tls(&self) -> crate::tls::ClientTls {
        self.tls.clone().unwrap_or_default()
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(self) -> std::io::Result<()> {
        self.server.stop().await
    }
}

/// Starts an in-process mock partner for `profile` on a free port of 127.0.0.1, accepting
/// credentials made up from `seed` (returned, for the client; never printed).
pub async fn spawn_local(
    profile: Profile,
    sandbox: Sandbox,
    seed: u64,
    options: PartnerOptions,
) -> std::io::Result<(RunningPartner, Credentials)> {
    let credentials = Credentials::generated(&profile.auth, seed);
    let profile_base = profile.partner.base_url.clone();
    // A profile with [tls] is served over https with certificates made for this run, asking
    // for a client certificate when the profile presents one.
    let pki = match &profile.tls {
        Some(tls) => Some((
            crate::tls::MockPki::generate().map_err(std::io::Error::other)?,
            tls.mutual(),
        )),
        None => None,
    };
    let state = PartnerState::with_options(profile, sandbox, credentials.clone(), options);
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let running = match &pki {
        Some((pki, mutual)) => {
            let server = pki.server_tls(*mutual).map_err(std::io::Error::other)?;
            spawn_tls(state, addr, &server, pki.client_tls(*mutual)).await?
        }
        None => spawn(state, addr).await?,
    };
    // A token endpoint on another host is served here too, at its own path.
    let origin = reqwest::Url::parse(&running.base_url()).map_err(std::io::Error::other)?;
    let credentials = credentials.with_token_endpoint_at(&profile_base, &origin);
    Ok((running, credentials))
}

/// Starts the mock partner on `addr` (port 0 for any free port) in the current runtime.
pub async fn spawn(state: PartnerState, addr: SocketAddr) -> std::io::Result<RunningPartner> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(state.clone());
    let header_timeout = state.shared.options.header_timeout;
    let server = crate::serve::StopHandle::spawn(|stopped| async move {
        listen::serve(listener, app, header_timeout, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(RunningPartner {
        addr,
        state,
        server,
        tls: None,
    })
}

/// Starts the mock partner on `addr` serving https as `server` says; `client` is what a client
/// needs to reach it (see [`RunningPartner::client_tls`]).
pub async fn spawn_tls(
    state: PartnerState,
    addr: SocketAddr,
    server: &crate::tls::ServerTls,
    client: crate::tls::ClientTls,
) -> std::io::Result<RunningPartner> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let listener = crate::tls::TlsListener::new(listener, server)?;
    let app = router(state.clone());
    let header_timeout = state.shared.options.header_timeout;
    let server = crate::serve::StopHandle::spawn(|stopped| async move {
        listen::serve(listener, app, header_timeout, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(RunningPartner {
        addr,
        state,
        server,
        tls: Some(client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lookup of known paths finds what matching every route finds, for every fixture
    /// profile, operation and method.
    #[test]
    fn known_paths_find_the_route_matching_finds() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/profiles");
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let profile = Profile::load(&entry.unwrap().path()).unwrap();
            let state = |profile: &Profile| {
                PartnerState::new(profile.clone(), Sandbox::default_seed(), Credentials::None)
            };
            let with_lookup = state(&profile);
            let mut without_lookup = state(&profile);
            Arc::get_mut(&mut without_lookup.shared)
                .unwrap()
                .fixed_paths
                .clear();
            assert!(
                !with_lookup.shared.fixed_paths.is_empty(),
                "{}",
                profile.file_name
            );
            struct Values<'a>(&'a crate::profile::Tenancy);
            impl crate::profile::SlotValues for Values<'_> {
                fn value(&self, slot: Slot) -> Option<&str> {
                    match slot {
                        Slot::Id => Some("by-email"),
                        Slot::Email => Some("a@b.example"),
                        other => self.0.value(other),
                    }
                }
            }
            for operation in profile.operations.values() {
                let path = operation
                    .path
                    .render(&Values(&profile.tenancy), str::to_owned)
                    .unwrap();
                for method in ["GET", "POST", "PUT", "DELETE"] {
                    let method: axum::http::Method = method.parse().unwrap();
                    for action in [None, operation.soap_action.as_deref()] {
                        let matched = |state: &PartnerState| {
                            format!(
                                "{:?}",
                                state.shared.match_route(
                                    &method,
                                    &path,
                                    action,
                                    &Default::default()
                                )
                            )
                        };
                        assert_eq!(
                            matched(&with_lookup),
                            matched(&without_lookup),
                            "{} {method} {path}",
                            profile.file_name
                        );
                    }
                }
            }
        }
    }
}

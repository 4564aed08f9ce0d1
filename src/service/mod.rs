//! `spoke serve`: the hosted service. Partners and their profiles, runs started from a page or
//! the API and carried out by a queue of workers with the library's `certify`, each run's
//! reports and bundle kept in a database, history, diffs and waivers per partner.
//!
//! | file | role |
//! |---|---|
//! | `storage.rs` | the schema and every query (SQLite file or PostgreSQL) |
//! | `queue.rs` | taking queued runs (`SKIP LOCKED`), heartbeats, marking interrupted runs |
//! | `runs.rs` | a run from start request to stored reports |
//! | `auth.rs` | tokens, sessions, CSRF, who may see what |
//! | `pages.rs` | the server-rendered pages |
//! | `api.rs` | the JSON API for CI |
//! | `events.rs` | a run's live status as server-sent events |
//! | `openapi.rs` | the API's OpenAPI document |
//! | `error.rs` | errors as JSON or as a page |

pub mod api;
pub mod auth;
pub mod cli;
pub mod error;
pub mod events;
pub mod openapi;
pub mod pages;
pub mod queue;
pub mod runs;
pub mod storage;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::Router;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use storage::Storage;
use tokio::sync::{watch, Mutex, Notify};

/// The largest request body read (a profile upload with its form); larger ones get 413.
pub const MAX_BODY: usize = 512 * 1024;

/// The largest profile accepted.
pub const MAX_PROFILE: usize = 256 * 1024;

/// The variable that sets the admin's API token (else one is made on the first start).
pub const ADMIN_TOKEN_ENV: &str = "SPOKE_ADMIN_TOKEN";

/// How `spoke serve` was started.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `--db`: a file path or `sqlite://…` (SQLite), or `postgres://…`.
    pub db: String,
    /// The address to bind.
    pub host: IpAddr,
    /// The port (0: any free one).
    pub port: u16,
    /// Runs carried out at once by this instance.
    pub workers: usize,
    /// Variables of the server's environment that runs may read as secrets.
    pub secret_env: Vec<String>,
    /// The admin's token, if set from the environment.
    pub admin_token: Option<String>,
}

/// Settings every request sees.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Variables of the server's environment that runs may read as secrets.
    pub secret_env: Vec<String>,
}

/// What every handler and worker shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub storage: Storage,
    /// This instance's id (random per start).
    pub instance: Arc<str>,
    /// Secrets given with queued or running runs, by run id: memory only.
    pub secrets: Arc<Mutex<HashMap<i64, runs::RunSecrets>>>,
    /// Wakes this instance's workers when a run is queued here.
    pub wake: Arc<Notify>,
    /// Settings.
    pub config: Arc<Config>,
}

impl AppState {
    /// The state of an instance on `storage`.
    pub fn new(storage: Storage, config: Config) -> AppState {
        AppState {
            storage,
            instance: Arc::from(format!("spoke-{}", &auth::random_token()[..16])),
            secrets: Arc::default(),
            wake: Arc::default(),
            config: Arc::new(config),
        }
    }
}

/// The whole application: pages, API, static script; size limit and security headers.
pub fn router(state: AppState) -> Router {
    pages::routes()
        .merge(api::routes().router)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    // Partner text is escaped everywhere; the policy is the second wall: no inline script,
    // nothing loaded from elsewhere.
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; \
         style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    response
}

/// Makes sure the database has an admin and the built-in partner. Returns the admin token
/// when one was made now (the first start without `SPOKE_ADMIN_TOKEN`), to be shown once.
pub async fn bootstrap(
    storage: &Storage,
    admin_token: Option<&str>,
) -> Result<Option<String>, storage::StorageError> {
    let mut made = None;
    let admin = match storage.account_by_name("admin").await? {
        Some(admin) => {
            if let Some(token) = admin_token {
                storage
                    .set_token(admin.id, &auth::token_hash(token))
                    .await?;
            }
            admin.id
        }
        None => {
            let token = match admin_token {
                Some(token) => token.to_owned(),
                None => auth::random_token(),
            };
            match storage
                .create_account("admin", auth::ADMIN, &auth::token_hash(&token))
                .await
            {
                Ok(id) => {
                    if admin_token.is_none() {
                        made = Some(token);
                    }
                    id
                }
                // Another instance made it at the same moment.
                Err(storage::StorageError::Conflict(_)) => storage
                    .account_by_name("admin")
                    .await?
                    .map(|a| a.id)
                    .unwrap_or_default(),
                Err(error) => return Err(error),
            }
        }
    };
    if storage.partners().await?.is_empty() {
        match storage
            .create_partner(pages::REFERENCE_SLUG, "Reference Partner (built-in mock)")
            .await
        {
            Ok(partner) => {
                let text = crate::profile::REFERENCE_PROFILE;
                storage
                    .add_profile(
                        partner,
                        crate::profile::REFERENCE_PROFILE_NAME,
                        text,
                        &crate::digest::sha256(text.as_bytes()),
                        admin,
                    )
                    .await?;
            }
            Err(storage::StorageError::Conflict(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(made)
}

/// A started instance: serving, and taking runs.
pub struct RunningService {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The admin token made on this start, if any (shown once).
    pub new_admin_token: Option<String>,
    /// Runs this start marked interrupted.
    pub interrupted: Vec<i64>,
    /// The backend.
    pub backend: storage::Backend,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    workers: tokio::task::JoinHandle<()>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the database, registers the instance, starts the workers and the server.
pub async fn start(options: ServeOptions) -> Result<RunningService, ServeError> {
    let storage = Storage::open(&options.db).await?;
    let new_admin_token = bootstrap(&storage, options.admin_token.as_deref()).await?;
    let backend = storage.backend();
    let state = AppState::new(
        storage,
        Config {
            secret_env: options.secret_env.clone(),
        },
    );
    let interrupted = queue::start_instance(&state).await?;
    let addr = SocketAddr::new(options.host, options.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { addr, source })?;
    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(queue::run(state.clone(), options.workers, stopped.clone()));
    let app = router(state);
    let mut shutdown = stopped;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(RunningService {
        addr,
        new_admin_token,
        interrupted,
        backend,
        stop,
        server,
        workers,
    })
}

impl RunningService {
    /// Stops taking runs, marks this instance's unfinished runs interrupted, stops serving.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.workers.await;
        // Open event streams end with the server's connections.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await;
    }
}

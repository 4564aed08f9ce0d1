//! Storage of `spoke serve`: one schema in SQLite (a file, the default) or PostgreSQL (shared by
//! several instances), reached through sqlx's run-time `Any` driver. Every query of the service
//! is here; the rest of the service sees rows as plain structs.
//!
//! Times are milliseconds since the Unix epoch (`BIGINT`), so both databases compare them alike.
//! Secrets never reach this module: a run records the *names* of the variables it was given.

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::Duration;

/// The schema version this spoke writes; a database of a later version is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file: one instance.
    Sqlite,
    /// PostgreSQL: any number of instances sharing the queue.
    Postgres,
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names no database this spoke speaks.
    #[error("--db `{0}`: expected a file path, sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    /// The database answered with an error, or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database holds a schema this spoke does not know.
    #[error("the database's schema is version {found}; this spoke knows version {SCHEMA_VERSION}: use a newer spoke")]
    Schema {
        /// The version found.
        found: i64,
    },
    /// A value could not be stored (a unique name taken).
    #[error("{0}")]
    Conflict(String),
}

/// What a storage call returns.
pub type Result<T> = std::result::Result<T, StorageError>;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The service's database.
#[derive(Debug, Clone)]
pub struct Storage {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: the lock on `<file>.lock` that keeps a second instance off the file; the
    /// operating system lets it go when the process ends, however it ends.
    _lock: Option<std::sync::Arc<std::fs::File>>,
}

/// An account: a person or a CI job, with one role.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `admin` or `partner`.
    pub role: String,
}

/// A partner: whose profiles and runs an account may see.
#[derive(Debug, Clone, Serialize)]
pub struct Partner {
    /// Id.
    pub id: i64,
    /// The name in URLs (`acme`).
    pub slug: String,
    /// The name shown.
    pub name: String,
}

/// A profile uploaded for a partner.
#[derive(Debug, Clone, Serialize)]
pub struct StoredProfile {
    /// Id.
    pub id: i64,
    /// The partner's id.
    pub partner_id: i64,
    /// The file name given.
    pub name: String,
    /// The TOML text.
    #[serde(skip)]
    pub text: String,
    /// `sha256:…` of the text.
    pub digest: String,
    /// When (ms since the epoch).
    pub uploaded_at: i64,
}

/// A run's state.
pub mod state {
    /// Waiting for a worker.
    pub const QUEUED: &str = "queued";
    /// A worker is running it.
    pub const RUNNING: &str = "running";
    /// It ran to the end: it has reports and an exit code.
    pub const FINISHED: &str = "finished";
    /// It could not be carried out (invalid input, no partner); `error` says why.
    pub const FAILED: &str = "failed";
    /// The instance running it (or holding its secrets) stopped before it ended.
    pub const INTERRUPTED: &str = "interrupted";

    /// Whether a run in `state` will change no more.
    pub fn is_final(state: &str) -> bool {
        matches!(state, FINISHED | FAILED | INTERRUPTED)
    }
}

/// A run as stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Id.
    pub id: i64,
    /// The partner's id.
    pub partner_id: i64,
    /// The partner's slug.
    pub partner: String,
    /// The profile's id.
    pub profile_id: i64,
    /// The profile's file name.
    pub profile: String,
    /// queued, running, finished, failed or interrupted.
    pub state: String,
    /// Against the in-process mock partner.
    pub mock: bool,
    /// Mock faults, comma-separated.
    pub faults: String,
    /// The sandbox's base URL (sandbox runs).
    pub base_url: Option<String>,
    /// The seed.
    pub seed: i64,
    /// Only these rules, comma-separated.
    pub only: String,
    /// The names of the variables given with the run (never their values).
    pub secret_names: String,
    /// Who started it.
    pub created_by: String,
    /// When it was queued.
    pub created_at: i64,
    /// When a worker took it.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// The step it is at (running) or was at (interrupted).
    pub step: Option<String>,
    /// The run's exit code (finished).
    pub exit_code: Option<i64>,
    /// Counts per outcome, JSON (finished).
    pub totals: Option<String>,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
    /// The instance that ran it.
    pub worker: Option<String>,
}

/// A run to queue.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The partner.
    pub partner_id: i64,
    /// The profile.
    pub profile_id: i64,
    /// Against the mock partner.
    pub mock: bool,
    /// Mock faults, comma-separated.
    pub faults: String,
    /// The sandbox's base URL.
    pub base_url: Option<String>,
    /// The seed.
    pub seed: i64,
    /// Only these rules, comma-separated.
    pub only: String,
    /// Names of the variables given with the run.
    pub secret_names: String,
    /// The instance holding the run's secrets in memory: only it may run it.
    pub held_by: Option<String>,
    /// The account starting it.
    pub created_by: i64,
}

/// A waiver as stored: the waivers file's fields, per partner.
#[derive(Debug, Clone, Serialize)]
pub struct StoredWaiver {
    /// Id.
    pub id: i64,
    /// The rule.
    pub rule: String,
    /// Why.
    pub reason: String,
    /// Who answers for it.
    pub owner: String,
    /// The last day it holds, `YYYY-MM-DD`.
    pub expires: String,
}

/// A finished run's reports, as the renderers produced them.
#[derive(Debug, Clone)]
pub struct Reports {
    /// `(format, bytes)`: json, junit, har, html, bundle.
    pub files: Vec<(&'static str, Vec<u8>)>,
}

const RUN_COLUMNS: &str = "r.id, r.partner_id, p.slug, r.profile_id, f.name, r.state, r.mock, \
     r.faults, r.base_url, r.seed, r.only_rules, r.secret_names, a.name, r.created_at, \
     r.started_at, r.finished_at, r.step, r.exit_code, r.totals, r.error, r.worker";

const RUN_FROM: &str = "FROM runs r JOIN partners p ON p.id = r.partner_id \
     JOIN profiles f ON f.id = r.profile_id JOIN accounts a ON a.id = r.created_by";

fn run_row(row: &AnyRow) -> std::result::Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        id: row.try_get(0)?,
        partner_id: row.try_get(1)?,
        partner: row.try_get(2)?,
        profile_id: row.try_get(3)?,
        profile: row.try_get(4)?,
        state: row.try_get(5)?,
        mock: row.try_get::<i64, _>(6)? != 0,
        faults: row.try_get(7)?,
        base_url: row.try_get(8)?,
        seed: row.try_get(9)?,
        only: row.try_get(10)?,
        secret_names: row.try_get(11)?,
        created_by: row.try_get(12)?,
        created_at: row.try_get(13)?,
        started_at: row.try_get(14)?,
        finished_at: row.try_get(15)?,
        step: row.try_get(16)?,
        exit_code: row.try_get(17)?,
        totals: row.try_get(18)?,
        error: row.try_get(19)?,
        worker: row.try_get(20)?,
    })
}

/// The schema; `{id}` and `{blob}` become each database's spelling.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS accounts (id {id}, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, \
     token_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS partners (id {id}, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL, \
     created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS memberships (account_id BIGINT NOT NULL REFERENCES accounts(id), \
     partner_id BIGINT NOT NULL REFERENCES partners(id), PRIMARY KEY (account_id, partner_id))",
    "CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, account_id BIGINT NOT NULL \
     REFERENCES accounts(id), csrf TEXT NOT NULL, expires_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS profiles (id {id}, partner_id BIGINT NOT NULL REFERENCES partners(id), \
     name TEXT NOT NULL, text TEXT NOT NULL, digest TEXT NOT NULL, uploaded_by BIGINT NOT NULL \
     REFERENCES accounts(id), uploaded_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, \
     heartbeat_at BIGINT NOT NULL, stopped_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS runs (id {id}, partner_id BIGINT NOT NULL REFERENCES partners(id), \
     profile_id BIGINT NOT NULL REFERENCES profiles(id), state TEXT NOT NULL, mock BIGINT NOT NULL, \
     faults TEXT NOT NULL, base_url TEXT, seed BIGINT NOT NULL, only_rules TEXT NOT NULL, \
     secret_names TEXT NOT NULL, held_by TEXT, created_by BIGINT NOT NULL REFERENCES accounts(id), \
     created_at BIGINT NOT NULL, worker TEXT, started_at BIGINT, heartbeat_at BIGINT, \
     finished_at BIGINT, step TEXT, exit_code BIGINT, totals TEXT, error TEXT)",
    "CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state, id)",
    "CREATE INDEX IF NOT EXISTS runs_by_partner ON runs (partner_id, id)",
    "CREATE TABLE IF NOT EXISTS reports (run_id BIGINT NOT NULL REFERENCES runs(id), \
     format TEXT NOT NULL, body {blob} NOT NULL, PRIMARY KEY (run_id, format))",
    "CREATE TABLE IF NOT EXISTS waivers (id {id}, partner_id BIGINT NOT NULL REFERENCES partners(id), \
     rule TEXT NOT NULL, reason TEXT NOT NULL, owner TEXT NOT NULL, expires TEXT NOT NULL, \
     created_by BIGINT NOT NULL REFERENCES accounts(id), created_at BIGINT NOT NULL, \
     UNIQUE (partner_id, rule))",
];

/// Turns `--db` into a URL sqlx understands: a bare path is an SQLite file.
pub fn database_url(db: &str) -> Result<(String, Backend)> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        return Ok((db.to_owned(), Backend::Postgres));
    }
    let path = db
        .strip_prefix("sqlite://")
        .or_else(|| db.strip_prefix("sqlite:"))
        .unwrap_or(db);
    if path.is_empty() || db.contains("://") && !db.starts_with("sqlite:") {
        return Err(StorageError::Url(db.to_owned()));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut url = format!("sqlite://{path}");
    url.push_str(if query.is_empty() { "?mode=rwc" } else { "?" });
    url.push_str(query);
    Ok((url, Backend::Sqlite))
}

impl Storage {
    /// Opens (and creates, or brings up to date) the database `db` names.
    pub async fn open(db: &str) -> Result<Storage> {
        sqlx::any::install_default_drivers();
        let (url, backend) = database_url(db)?;
        let lock = match backend {
            Backend::Sqlite => Some(std::sync::Arc::new(lock_file(&url)?)),
            Backend::Postgres => None,
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            // One writer at a time in SQLite; WAL lets pages read while a run is stored.
            Backend::Sqlite => {
                options
                    .max_connections(8)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            connection.execute("PRAGMA busy_timeout = 30000").await?;
                            connection.execute("PRAGMA foreign_keys = ON").await?;
                            connection.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => options.max_connections(16).connect(&url).await?,
        };
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let storage = Storage {
            pool,
            backend,
            _lock: lock,
        };
        storage.migrate().await?;
        Ok(storage)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        let (id, blob) = match self.backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
            Backend::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
        };
        let mut connection = self.pool.acquire().await?;
        // Two instances starting together must not both create the tables.
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock(70110)")
                .execute(&mut *connection)
                .await?;
        }
        let result = async {
            for statement in SCHEMA {
                let statement = statement.replace("{id}", id).replace("{blob}", blob);
                sqlx::query(trusted(statement))
                    .execute(&mut *connection)
                    .await?;
            }
            let found: Option<i64> = sqlx::query("SELECT MAX(version) FROM schema_version")
                .fetch_one(&mut *connection)
                .await?
                .try_get(0)?;
            match found {
                None => {
                    sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                        .bind(SCHEMA_VERSION)
                        .execute(&mut *connection)
                        .await?;
                    Ok(())
                }
                Some(found) if found > SCHEMA_VERSION => Err(StorageError::Schema { found }),
                Some(_) => Ok(()),
            }
        }
        .await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(70110)")
                .execute(&mut *connection)
                .await?;
        }
        result
    }

    // ---- accounts and sessions ----

    /// Creates an account; its token is stored as a digest only.
    pub async fn create_account(&self, name: &str, role: &str, token_hash: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO accounts (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(token_hash)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| conflict(error, format!("an account named `{name}` exists")))?;
        Ok(row.try_get(0)?)
    }

    /// Sets an account's token (the admin's, from the environment).
    pub async fn set_token(&self, account: i64, token_hash: &str) -> Result<()> {
        sqlx::query("UPDATE accounts SET token_hash = $1 WHERE id = $2")
            .bind(token_hash)
            .bind(account)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The account of a token digest.
    pub async fn account_by_token(&self, token_hash: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT id, name, role FROM accounts WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| account(&row)).transpose().map_err(Into::into)
    }

    /// The account of a name.
    pub async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT id, name, role FROM accounts WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| account(&row)).transpose().map_err(Into::into)
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT id, name, role FROM accounts ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(account)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Lets `account` see `partner`.
    pub async fn grant(&self, account: i64, partner: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO memberships (account_id, partner_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(account)
        .bind(partner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The partners `account` may see (a partner account's own).
    pub async fn memberships(&self, account: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT partner_id FROM memberships WHERE account_id = $1")
            .bind(account)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Opens a page session.
    pub async fn create_session(
        &self,
        id_hash: &str,
        account: i64,
        csrf: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, csrf, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(account)
        .bind(csrf)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account and CSRF token of a live session.
    pub async fn session(&self, id_hash: &str) -> Result<Option<(Account, String)>> {
        let row = sqlx::query(
            "SELECT a.id, a.name, a.role, s.csrf FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((account(&row)?, row.try_get(3)?))),
            None => Ok(None),
        }
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- partners and profiles ----

    /// Creates a partner.
    pub async fn create_partner(&self, slug: &str, name: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO partners (slug, name, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(slug)
        .bind(name)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| conflict(error, format!("a partner `{slug}` exists")))?;
        Ok(row.try_get(0)?)
    }

    /// A partner by slug.
    pub async fn partner(&self, slug: &str) -> Result<Option<Partner>> {
        let row = sqlx::query("SELECT id, slug, name FROM partners WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| partner(&row)).transpose().map_err(Into::into)
    }

    /// Every partner, by slug.
    pub async fn partners(&self) -> Result<Vec<Partner>> {
        let rows = sqlx::query("SELECT id, slug, name FROM partners ORDER BY slug")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(partner)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Stores a profile (already validated).
    pub async fn add_profile(
        &self,
        partner: i64,
        name: &str,
        text: &str,
        digest: &str,
        by: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO profiles (partner_id, name, text, digest, uploaded_by, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(partner)
        .bind(name)
        .bind(text)
        .bind(digest)
        .bind(by)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// A partner's profiles, newest first.
    pub async fn profiles(&self, partner: i64) -> Result<Vec<StoredProfile>> {
        let rows = sqlx::query(
            "SELECT id, partner_id, name, text, digest, uploaded_at FROM profiles \
             WHERE partner_id = $1 ORDER BY id DESC",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(profile)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// A profile by id.
    pub async fn profile(&self, id: i64) -> Result<Option<StoredProfile>> {
        let row = sqlx::query(
            "SELECT id, partner_id, name, text, digest, uploaded_at FROM profiles WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| profile(&row)).transpose().map_err(Into::into)
    }

    // ---- runs: the queue ----

    /// Queues a run.
    pub async fn enqueue(&self, run: &NewRun) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO runs (partner_id, profile_id, state, mock, faults, base_url, seed, only_rules, \
             secret_names, held_by, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(run.partner_id)
        .bind(run.profile_id)
        .bind(state::QUEUED)
        .bind(i64::from(run.mock))
        .bind(&run.faults)
        .bind(&run.base_url)
        .bind(run.seed)
        .bind(&run.only)
        .bind(&run.secret_names)
        .bind(&run.held_by)
        .bind(run.created_by)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Takes the oldest queued run this instance may run, marking it running. In PostgreSQL
    /// the row is locked with `SKIP LOCKED`, so instances taking runs at once never take the
    /// same one and never wait on each other; in SQLite the update is one write.
    pub async fn claim(&self, instance: &str) -> Result<Option<i64>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let now = now_ms();
        let row = sqlx::query(trusted(format!(
            "UPDATE runs SET state = $1, worker = $2, started_at = $3, heartbeat_at = $3, \
             step = 'starting' \
             WHERE state = $4 AND id = (SELECT id FROM runs WHERE state = $4 \
             AND (held_by IS NULL OR held_by = $2) ORDER BY id LIMIT 1{lock}) RETURNING id"
        )))
        .bind(state::RUNNING)
        .bind(instance)
        .bind(now)
        .bind(state::QUEUED)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.try_get(0))
            .transpose()
            .map_err(Into::into)
    }

    /// A run by id.
    pub async fn run(&self, id: i64) -> Result<Option<RunRow>> {
        let row = sqlx::query(trusted(format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM} WHERE r.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| run_row(&row)).transpose().map_err(Into::into)
    }

    /// Runs, newest first: of the partners given (all when `None`), below id `before`.
    pub async fn runs(
        &self,
        partners: Option<&[i64]>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        let mut sql = format!("SELECT {RUN_COLUMNS} {RUN_FROM} WHERE r.id < $1");
        if let Some(partners) = partners {
            if partners.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<String> = partners.iter().map(i64::to_string).collect();
            sql.push_str(&format!(" AND r.partner_id IN ({})", ids.join(",")));
        }
        sql.push_str(" ORDER BY r.id DESC LIMIT $2");
        let rows = sqlx::query(trusted(sql))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(run_row)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// The latest run of a partner that ended with a verdict.
    pub async fn latest_finished(&self, partner: i64) -> Result<Option<RunRow>> {
        let row = sqlx::query(trusted(format!(
            "SELECT {RUN_COLUMNS} {RUN_FROM} WHERE r.partner_id = $1 AND r.state = $2 \
             ORDER BY r.id DESC LIMIT 1"
        )))
        .bind(partner)
        .bind(state::FINISHED)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| run_row(&row)).transpose().map_err(Into::into)
    }

    /// Records the step a running run is at.
    pub async fn set_step(&self, run: i64, step: &str) -> Result<()> {
        sqlx::query("UPDATE runs SET step = $1, heartbeat_at = $2 WHERE id = $3 AND state = $4")
            .bind(step)
            .bind(now_ms())
            .bind(run)
            .bind(state::RUNNING)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a finished run's reports and verdict in one transaction.
    pub async fn finish(
        &self,
        run: i64,
        exit_code: i64,
        totals: &str,
        reports: &Reports,
    ) -> Result<bool> {
        let mut transaction = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE runs SET state = $1, exit_code = $2, totals = $3, finished_at = $4, step = NULL \
             WHERE id = $5 AND state = $6",
        )
        .bind(state::FINISHED)
        .bind(exit_code)
        .bind(totals)
        .bind(now_ms())
        .bind(run)
        .bind(state::RUNNING)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated == 0 {
            // Marked interrupted meanwhile (this instance was thought gone): keep that.
            transaction.rollback().await?;
            return Ok(false);
        }
        for (format, body) in &reports.files {
            sqlx::query("INSERT INTO reports (run_id, format, body) VALUES ($1, $2, $3)")
                .bind(run)
                .bind(*format)
                .bind(body.as_slice())
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Ends a run as failed or interrupted, with the reason.
    pub async fn end_without_reports(&self, run: i64, state: &str, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE runs SET state = $1, error = $2, finished_at = $3 WHERE id = $4 AND state IN ($5, $6)",
        )
        .bind(state)
        .bind(error)
        .bind(now_ms())
        .bind(run)
        .bind(state::RUNNING)
        .bind(state::QUEUED)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One stored report of a run.
    pub async fn report(&self, run: i64, format: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT body FROM reports WHERE run_id = $1 AND format = $2")
            .bind(run)
            .bind(format)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| row.try_get(0))
            .transpose()
            .map_err(Into::into)
    }

    // ---- instances: who is alive, and what their stop left behind ----

    /// Records a starting instance.
    pub async fn register_instance(&self, id: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2)")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// This instance is alive, and so are the runs it is running.
    pub async fn heartbeat(&self, instance: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query("UPDATE instances SET heartbeat_at = $1 WHERE id = $2")
            .bind(now)
            .bind(instance)
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE runs SET heartbeat_at = $1 WHERE worker = $2 AND state = $3")
            .bind(now)
            .bind(instance)
            .bind(state::RUNNING)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks interrupted what instances that stopped left behind: runs running with no
    /// heartbeat since `stale_before` (or every run running when `all_running`), and queued
    /// runs whose secrets only a stopped instance held. Returns the runs marked.
    pub async fn sweep(&self, me: &str, stale_before: i64, all_running: bool) -> Result<Vec<i64>> {
        let now = now_ms();
        let running = sqlx::query(
            "UPDATE runs SET state = $1, finished_at = $2, \
             error = 'interrupted: the spoke serve instance running it stopped before it ended' \
             WHERE state = $3 AND worker <> $4 AND ($5 = 1 OR heartbeat_at < $6) RETURNING id",
        )
        .bind(state::INTERRUPTED)
        .bind(now)
        .bind(state::RUNNING)
        .bind(me)
        .bind(i64::from(all_running))
        .bind(stale_before)
        .fetch_all(&self.pool)
        .await?;
        let orphaned = sqlx::query(
            "UPDATE runs SET state = $1, finished_at = $2, \
             error = 'interrupted: the secrets given with it were held in memory by a spoke serve instance that stopped; start it again' \
             WHERE state = $3 AND held_by IS NOT NULL AND held_by <> $4 AND held_by NOT IN \
             (SELECT id FROM instances WHERE stopped_at IS NULL AND heartbeat_at >= $5) RETURNING id",
        )
        .bind(state::INTERRUPTED)
        .bind(now)
        .bind(state::QUEUED)
        .bind(me)
        .bind(if all_running { i64::MAX } else { stale_before })
        .fetch_all(&self.pool)
        .await?;
        running
            .iter()
            .chain(&orphaned)
            .map(|row| row.try_get(0).map_err(Into::into))
            .collect()
    }

    /// This instance stops: its running runs and the queued runs whose secrets it holds are
    /// interrupted, and it is marked stopped.
    pub async fn stop_instance(&self, me: &str) -> Result<Vec<i64>> {
        let now = now_ms();
        let rows = sqlx::query(
            "UPDATE runs SET state = $1, finished_at = $2, \
             error = 'interrupted: spoke serve was stopped while it ran' \
             WHERE (state = $3 AND worker = $4) OR (state = $5 AND held_by = $4) RETURNING id",
        )
        .bind(state::INTERRUPTED)
        .bind(now)
        .bind(state::RUNNING)
        .bind(me)
        .bind(state::QUEUED)
        .fetch_all(&self.pool)
        .await?;
        sqlx::query("UPDATE instances SET stopped_at = $1 WHERE id = $2")
            .bind(now)
            .bind(me)
            .execute(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(Into::into))
            .collect()
    }

    /// How many runs are in each state (for the dashboard and the benchmark).
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM runs GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    // ---- waivers ----

    /// A partner's waivers, by rule.
    pub async fn waivers(&self, partner: i64) -> Result<Vec<StoredWaiver>> {
        let rows = sqlx::query(
            "SELECT id, rule, reason, owner, expires FROM waivers WHERE partner_id = $1 ORDER BY rule",
        )
        .bind(partner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredWaiver {
                    id: row.try_get(0)?,
                    rule: row.try_get(1)?,
                    reason: row.try_get(2)?,
                    owner: row.try_get(3)?,
                    expires: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Adds a waiver (already checked).
    pub async fn add_waiver(&self, partner: i64, waiver: &StoredWaiver, by: i64) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO waivers (partner_id, rule, reason, owner, expires, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(partner)
        .bind(&waiver.rule)
        .bind(&waiver.reason)
        .bind(&waiver.owner)
        .bind(&waiver.expires)
        .bind(by)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| {
            conflict(
                error,
                format!("{} has a waiver already: remove it first", waiver.rule),
            )
        })?;
        Ok(row.try_get(0)?)
    }

    /// Removes a waiver of a partner; whether there was one.
    pub async fn delete_waiver(&self, partner: i64, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM waivers WHERE id = $1 AND partner_id = $2")
            .bind(id)
            .bind(partner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes the lock of an SQLite database (`<file>.lock` beside it).
fn lock_file(url: &str) -> Result<std::fs::File> {
    let path = url.trim_start_matches("sqlite://");
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let lock_path = format!("{path}.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| StorageError::Conflict(format!("cannot open {lock_path}: {error}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(StorageError::Conflict(format!(
            "another spoke serve is using {path}; give each instance its own file, or share a PostgreSQL database (--db postgres://…)"
        ))),
    }
}

/// SQL this module composed from its own constants and integer ids, never from input.
fn trusted(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

fn conflict(error: sqlx::Error, message: String) -> StorageError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(message),
        _ => StorageError::Database(error),
    }
}

fn account(row: &AnyRow) -> std::result::Result<Account, sqlx::Error> {
    Ok(Account {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        role: row.try_get(2)?,
    })
}

fn partner(row: &AnyRow) -> std::result::Result<Partner, sqlx::Error> {
    Ok(Partner {
        id: row.try_get(0)?,
        slug: row.try_get(1)?,
        name: row.try_get(2)?,
    })
}

fn profile(row: &AnyRow) -> std::result::Result<StoredProfile, sqlx::Error> {
    Ok(StoredProfile {
        id: row.try_get(0)?,
        partner_id: row.try_get(1)?,
        name: row.try_get(2)?,
        text: row.try_get(3)?,
        digest: row.try_get(4)?,
        uploaded_at: row.try_get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_path_is_an_sqlite_file_and_postgres_urls_pass_through() {
        assert_eq!(
            database_url("spoke.db").unwrap(),
            ("sqlite://spoke.db?mode=rwc".to_owned(), Backend::Sqlite)
        );
        assert_eq!(
            database_url("sqlite:///tmp/x.db").unwrap().0,
            "sqlite:///tmp/x.db?mode=rwc"
        );
        assert_eq!(
            database_url("postgres://spoke@localhost/spoke").unwrap().1,
            Backend::Postgres
        );
        assert!(database_url("mysql://x").is_err());
        assert!(database_url("").is_err());
    }
}

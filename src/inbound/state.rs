//! The `--state` file: InTouch kept in SQLite (WAL, `synchronous=FULL`), one transaction per
//! group of saves, each save answered only after its commit; a JSON state file of earlier
//! versions is moved into SQLite once.

use super::store::{Entry, Intouch, Tenant, User, STATE_FORMAT};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection as _, Row as _, SqliteConnection};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How long a statement waits for a lock another process holds before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// It could not be read.
    #[error("cannot read the state file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a state file of this version.
    #[error("{path}: not a spoke connector state file: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The database refused.
    #[error("the state file {path}: {source}")]
    Database {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Another server keeps its state there.
    #[error(
        "another spoke connector is using the state file {path}; give each its own --state file"
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// It belongs to another tenant.
    #[error(
        "{path} holds provider `{}`, client `{}`, club `{}`; this server was started for provider `{}`, client `{}`, club `{}` (use another --state file)",
        found.provider, found.client, found.club, wanted.provider, wanted.client, wanted.club
    )]
    OtherTenant {
        /// The file.
        path: PathBuf,
        /// The file's tenant.
        found: Box<Tenant>,
        /// The server's tenant.
        wanted: Box<Tenant>,
    },
}

/// What a state file holds, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// No file, or an empty one.
    Nothing,
    /// An SQLite database.
    Sqlite,
    /// A JSON state file of an earlier version.
    Json,
}

fn content(path: &Path) -> Result<Content, StateError> {
    use std::io::Read as _;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Content::Nothing),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut head = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut head)
        .map_err(|source| StateError::Read {
            path: path.to_owned(),
            source,
        })?;
    if head.is_empty() {
        Ok(Content::Nothing)
    } else if head == SQLITE_HEADER {
        Ok(Content::Sqlite)
    } else if head.trim_ascii_start().starts_with(b"{") {
        Ok(Content::Json)
    } else {
        Err(StateError::Invalid {
            path: path.to_owned(),
            message: "it is neither an SQLite database nor a JSON state file".into(),
        })
    }
}

/// One of InTouch's lists, as a table row's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum List {
    /// Prospects and members.
    Users,
    /// Staff.
    Staff,
    /// Lead sources.
    LeadSources,
}

impl List {
    fn kind(self) -> &'static str {
        match self {
            List::Users => "user",
            List::Staff => "staff",
            List::LeadSources => "leadsource",
        }
    }
}

/// A row of InTouch that a save changed: which list, and the position in it.
pub type Touched = (List, usize);

/// The open state database.
#[derive(Debug)]
pub struct StateDb {
    path: PathBuf,
    connection: SqliteConnection,
    // Held while the server runs, so two servers never write one file.
    _lock: Option<std::fs::File>,
}

/// An earlier JSON state file moved into SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Where the JSON was kept.
    pub backup: PathBuf,
    /// Users moved.
    pub users: usize,
}

impl std::fmt::Display for Migrated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "moved the JSON state ({} users) into SQLite; the JSON is kept as {}",
            self.users,
            self.backup.display()
        )
    }
}

/// What [`open`] found.
#[derive(Debug)]
pub struct Opened {
    /// The database, to commit saves to.
    pub db: StateDb,
    /// InTouch as stored (or `start` when the file was new).
    pub intouch: Intouch,
    /// Set when a JSON state file was moved into SQLite.
    pub migrated: Option<Migrated>,
}

/// Opens the state file for a server: creates it holding `start` when it does not exist, moves
/// a JSON state file into SQLite once, and refuses a foreign file or another tenant's.
pub async fn open(
    path: &Path,
    tenant: &Tenant,
    start: impl FnOnce() -> Intouch,
) -> Result<Opened, StateError> {
    let lock = lock(path)?;
    let mut migrated = None;
    let content = content(path)?;
    if content == Content::Json {
        migrated = Some(migrate(path, tenant).await?);
    }
    let mut db = StateDb::connect(path, Some(lock)).await?;
    let intouch = match db.load().await? {
        Some(intouch) => check_tenant(path, intouch, tenant)?,
        None => {
            let intouch = start();
            db.write_all(&intouch).await?;
            intouch
        }
    };
    Ok(Opened {
        db,
        intouch,
        migrated,
    })
}

/// Reads the state file without changing it; `Ok(None)` when it does not exist yet.
pub async fn read(path: &Path, tenant: &Tenant) -> Result<Option<Intouch>, StateError> {
    let intouch = match content(path)? {
        Content::Nothing => return Ok(None),
        Content::Json => read_json(path)?,
        Content::Sqlite => {
            let mut db = StateDb::connect(path, None).await?;
            let intouch = db.load().await?;
            db.close().await;
            match intouch {
                Some(intouch) => intouch,
                None => return Ok(None),
            }
        }
    };
    check_tenant(path, intouch, tenant).map(Some)
}

fn check_tenant(path: &Path, intouch: Intouch, tenant: &Tenant) -> Result<Intouch, StateError> {
    if intouch.tenant != *tenant {
        return Err(StateError::OtherTenant {
            path: path.to_owned(),
            found: Box::new(intouch.tenant),
            wanted: Box::new(tenant.clone()),
        });
    }
    Ok(intouch)
}

fn lock(path: &Path) -> Result<std::fs::File, StateError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StateError::Read {
            path: lock_path.clone(),
            source,
        })?;
    file.try_lock().map_err(|_| StateError::InUse {
        path: path.to_owned(),
    })?;
    Ok(file)
}

/// A JSON state file of an earlier version.
fn read_json(path: &Path) -> Result<Intouch, StateError> {
    let text = std::fs::read_to_string(path).map_err(|source| StateError::Read {
        path: path.to_owned(),
        source,
    })?;
    let intouch: Intouch = serde_json::from_str(&text).map_err(|error| StateError::Invalid {
        path: path.to_owned(),
        message: error.to_string(),
    })?;
    check_format(path, intouch.format)?;
    Ok(intouch)
}

fn check_format(path: &Path, format: u32) -> Result<(), StateError> {
    if format != STATE_FORMAT {
        return Err(StateError::Invalid {
            path: path.to_owned(),
            message: format!("format {format} (this spoke reads format {STATE_FORMAT})"),
        });
    }
    Ok(())
}

/// Moves a JSON state file into SQLite: the database is built beside it and renamed over it
/// only once complete, after the JSON was copied to `FILE.bak` (`FILE.json.bak` unless it
/// ends in `.json`); a crash at any point
/// leaves either the JSON (migrated again next time) or the whole database.
async fn migrate(path: &Path, tenant: &Tenant) -> Result<Migrated, StateError> {
    let intouch = check_tenant(path, read_json(path)?, tenant)?;
    let sibling = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let building = sibling(".migrating");
    let backup = if path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
    {
        sibling(".bak")
    } else {
        sibling(".json.bak")
    };
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Read { path, source }
    };
    for leftover in ["", "-wal", "-shm"] {
        let mut name = building.as_os_str().to_owned();
        name.push(leftover);
        match std::fs::remove_file(&name) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error(&building)(error))
            }
            _ => {}
        }
    }
    let mut db = StateDb::connect(&building, None).await?;
    db.write_all(&intouch).await?;
    db.close().await;
    std::fs::copy(path, &backup).map_err(io_error(&backup))?;
    std::fs::File::open(&backup)
        .and_then(|file| file.sync_all())
        .map_err(io_error(&backup))?;
    std::fs::rename(&building, path).map_err(io_error(path))?;
    sync_folder(path).map_err(io_error(path))?;
    Ok(Migrated {
        backup,
        users: intouch.users.len(),
    })
}

/// Syncing a folder is how POSIX makes a rename durable; elsewhere opening it may fail.
fn sync_folder(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::File::open(folder)?.sync_all()?;
    }
    let _ = path;
    Ok(())
}

impl StateDb {
    async fn connect(path: &Path, lock: Option<std::fs::File>) -> Result<StateDb, StateError> {
        // FULL: with WAL each commit syncs the log, so an acknowledged save survives a power
        // loss too (NORMAL would survive a killed process but not a power loss). A sync costs
        // a fraction of a millisecond here, and group commit shares it among the senders.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let database = |source| StateError::Database {
            path: path.to_owned(),
            source,
        };
        let mut connection = SqliteConnection::connect_with(&options)
            .await
            .map_err(|error| {
                // A file with SQLite's header but broken pages is refused by the first statement.
                match &error {
                    sqlx::Error::Database(db) if db.message().contains("not a database") => {
                        StateError::Invalid {
                            path: path.to_owned(),
                            message: db.message().to_owned(),
                        }
                    }
                    _ => database(error),
                }
            })?;
        let foreign = |message: String| StateError::Invalid {
            path: path.to_owned(),
            message,
        };
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
                .fetch_all(&mut connection)
                .await
                .map_err(|error| foreign(error.to_string()))?;
        let ours = ["records", "spoke_state"];
        if tables.is_empty() {
            for statement in [
                "CREATE TABLE spoke_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
                "CREATE TABLE records (kind TEXT NOT NULL, position INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, position)) WITHOUT ROWID",
            ] {
                sqlx::query(statement)
                    .execute(&mut connection)
                    .await
                    .map_err(database)?;
            }
        } else if tables != ours {
            return Err(foreign(format!(
                "an SQLite database with the tables {}, not spoke's ({})",
                tables.join(", "),
                ours.join(", ")
            )));
        }
        Ok(StateDb {
            path: path.to_owned(),
            connection,
            _lock: lock,
        })
    }

    fn database(&self) -> impl Fn(sqlx::Error) -> StateError + '_ {
        |source| StateError::Database {
            path: self.path.clone(),
            source,
        }
    }

    fn invalid(&self, message: String) -> StateError {
        StateError::Invalid {
            path: self.path.clone(),
            message,
        }
    }

    /// InTouch as committed; `None` when nothing was ever stored.
    pub async fn load(&mut self) -> Result<Option<Intouch>, StateError> {
        let meta: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM spoke_state")
            .fetch_all(&mut self.connection)
            .await
            .map_err(self.database())?;
        if meta.is_empty() {
            return Ok(None);
        }
        let value = |key: &str| {
            meta.iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
                .ok_or_else(|| self.invalid(format!("no `{key}` in spoke_state")))
        };
        let number = |key: &str| {
            value(key)?
                .parse::<u64>()
                .map_err(|error| self.invalid(format!("`{key}` in spoke_state: {error}")))
        };
        let format = number("format")?;
        check_format(&self.path, u32::try_from(format).unwrap_or(u32::MAX))?;
        let tenant: Tenant = serde_json::from_str(value("tenant")?)
            .map_err(|error| self.invalid(format!("`tenant` in spoke_state: {error}")))?;
        let mut intouch = Intouch::new(tenant);
        intouch.next_id = number("next-id")?;
        let rows = sqlx::query("SELECT kind, position, body FROM records ORDER BY kind, position")
            .fetch_all(&mut self.connection)
            .await
            .map_err(self.database())?;
        for row in rows {
            let kind: String = row.try_get(0).map_err(self.database())?;
            let position: i64 = row.try_get(1).map_err(self.database())?;
            let body: String = row.try_get(2).map_err(self.database())?;
            let at = || format!("the {kind} record at position {position}");
            let expected = match kind.as_str() {
                "user" => intouch.users.len(),
                "staff" => intouch.staff.len(),
                "leadsource" => intouch.lead_sources.len(),
                _ => return Err(self.invalid(format!("{}: unknown kind", at()))),
            };
            if usize::try_from(position).ok() != Some(expected) {
                return Err(self.invalid(format!("{}: expected position {expected}", at())));
            }
            let bad = |error: serde_json::Error| self.invalid(format!("{}: {error}", at()));
            match kind.as_str() {
                "user" => intouch
                    .users
                    .push(serde_json::from_str::<User>(&body).map_err(bad)?),
                "staff" => intouch
                    .staff
                    .push(serde_json::from_str::<Entry>(&body).map_err(bad)?),
                _ => intouch
                    .lead_sources
                    .push(serde_json::from_str::<Entry>(&body).map_err(bad)?),
            }
        }
        Ok(Some(intouch))
    }

    /// Stores all of `intouch` in one transaction (a new file, or a migration).
    async fn write_all(&mut self, intouch: &Intouch) -> Result<(), StateError> {
        let touched: Vec<Touched> = (0..intouch.users.len())
            .map(|at| (List::Users, at))
            .chain((0..intouch.staff.len()).map(|at| (List::Staff, at)))
            .chain((0..intouch.lead_sources.len()).map(|at| (List::LeadSources, at)))
            .collect();
        self.store(intouch, &touched, true)
            .await
            .map_err(self.database())
    }

    /// Writes the `touched` rows of `intouch` and its uuid counter in one transaction; returns
    /// once it is committed (and, with `synchronous=FULL`, on disk).
    pub async fn commit(&mut self, intouch: &Intouch, touched: &[Touched]) -> sqlx::Result<()> {
        self.store(intouch, touched, false).await
    }

    /// The transaction behind [`StateDb::commit`]; the format and tenant are written only
    /// with the whole state, since a save never changes them.
    async fn store(
        &mut self,
        intouch: &Intouch,
        touched: &[Touched],
        whole: bool,
    ) -> sqlx::Result<()> {
        let mut transaction = self.connection.begin().await?;
        let mut meta = vec![("next-id", intouch.next_id.to_string())];
        if whole {
            meta.push(("format", intouch.format.to_string()));
            meta.push((
                "tenant",
                serde_json::to_string(&intouch.tenant).unwrap_or_default(),
            ));
        }
        for (key, value) in meta {
            sqlx::query("INSERT OR REPLACE INTO spoke_state (key, value) VALUES (?1, ?2)")
                .bind(key)
                .bind(value)
                .execute(&mut *transaction)
                .await?;
        }
        for &(list, at) in touched {
            let body = match list {
                List::Users => intouch.users.get(at).map(serde_json::to_string),
                List::Staff => intouch.staff.get(at).map(serde_json::to_string),
                List::LeadSources => intouch.lead_sources.get(at).map(serde_json::to_string),
            };
            let Some(Ok(body)) = body else {
                return Err(sqlx::Error::Protocol(format!(
                    "no {} record at position {at} to store",
                    list.kind()
                )));
            };
            sqlx::query(
                "INSERT OR REPLACE INTO records (kind, position, body) VALUES (?1, ?2, ?3)",
            )
            .bind(list.kind())
            .bind(at as i64)
            .bind(body)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await
    }

    /// Closes the database, folding the log into the file.
    pub async fn close(self) {
        let _ = self.connection.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            provider: "P".into(),
            client: "C".into(),
            club: "K".into(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spoke-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn round_trips_and_refuses_another_tenant() {
        let dir = temp_dir("round-trip");
        let path = dir.join("intouch.db");
        assert!(read(&path, &tenant()).await.unwrap().is_none());
        let mut opened = open(&path, &tenant(), || Intouch::new(tenant()))
            .await
            .unwrap();
        let intouch = &mut opened.intouch;
        let (_, at) =
            intouch.save_user_at("R-1", [("firstname".to_owned(), "Ana".to_owned())].into());
        opened
            .db
            .commit(intouch, &[(List::Users, at)])
            .await
            .unwrap();
        let expected = opened.intouch.clone();
        drop(opened);
        assert_eq!(read(&path, &tenant()).await.unwrap(), Some(expected));
        let other = Tenant {
            club: "other".into(),
            ..tenant()
        };
        let error = read(&path, &other).await.unwrap_err().to_string();
        assert!(
            error.contains("club `K`") && error.contains("club `other`"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_second_server_on_the_same_file_is_refused() {
        let dir = temp_dir("in-use");
        let path = dir.join("intouch.db");
        let first = open(&path, &tenant(), || Intouch::new(tenant()))
            .await
            .unwrap();
        let error = open(&path, &tenant(), || Intouch::new(tenant()))
            .await
            .unwrap_err();
        assert!(matches!(error, StateError::InUse { .. }), "{error}");
        drop(first);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn foreign_and_damaged_files_are_refused_with_their_path() {
        let dir = temp_dir("foreign");
        let cases: [(&str, &[u8], &str); 4] = [
            (
                "text.db",
                b"hello, world\n",
                "neither an SQLite database nor",
            ),
            ("broken.json", b"{ not json", "key must be a string"),
            (
                "torn.db",
                b"SQLite format 3\0\x10\x00garbage",
                "not a database",
            ),
            ("old.json", b"{\"format\": 99}", "missing field"),
        ];
        for (name, bytes, mentions) in cases {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let error = open(&path, &tenant(), || Intouch::new(tenant()))
                .await
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(name) && error.contains(mentions),
                "{name}: {error}"
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{name} is left as it was"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn another_programs_database_is_refused() {
        let dir = temp_dir("other-db");
        let path = dir.join("other.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE invoices (id INTEGER)")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        let error = open(&path, &tenant(), || Intouch::new(tenant()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("other.db") && error.contains("invoices"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

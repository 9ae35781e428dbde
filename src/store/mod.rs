//! The metadata store: organizations, projects, clusters, access roles, snapshots, export
//! buckets, export jobs and backup schedules, in SQLite (the embedded default) or PostgreSQL
//! (several nodes), chosen by URL.
//!
//! One [`Store`] serves both engines through sqlx's `Any` driver, and every query is the same
//! text on both: parameters are `$1, $2, …` (sqlx's SQLite driver binds `$N` to argument N),
//! timestamps are `BIGINT` milliseconds since the epoch and flags are `BIGINT` 0/1. The
//! alternative — one typed pool per engine and every query written twice — was rejected: it
//! doubles the code the shared test suite (`tests/jobs/store_suite.rs`) has to keep honest.
//!
//! Migrations are versioned per engine (`migrations/sqlite`, `migrations/postgres`) and embedded
//! in the binary; `0001_core.sql` holds the domain's tables, `0002_auth.sql` the credentials
//! that `credentials.rs` reads and writes for `src/auth` (its comment still says it is owned
//! by `src/auth`: sqlx checksums migrations, so an applied file is never edited).
//!
//! SQLite runs in WAL mode with a busy timeout, so the administrative CLI can write while
//! `snapex serve` runs on the same file.

mod buckets;
mod catalog;
mod clusters;
mod credentials;
mod dashboard;
mod jobs;
mod kinds;
mod orgs;
mod roles;
mod schedules;
mod snapshots;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use buckets::{ExportBucket, NewExportBucket};
pub use catalog::CatalogBackup;
pub use clusters::{Cluster, ClusterType, Label, NewCluster};
pub use credentials::{
    HashedClientSecret, NewApiKeyRow, NewServiceAccountRow, SealedApiKey, StoredApiKey,
    StoredGrant, StoredServiceAccount, TokenOwner,
};
pub use dashboard::{AccountIdentity, JobFilter, NodeLease};
pub use jobs::{
    ClaimedJob, ExportJob, InterruptedJob, JobNamespaces, JobPart, JobState, NewExportJob,
    PartState, RecoveredJob, RecoveredPart, Recovery, StateReason, interrupted_reason,
};
pub use kinds::{CloudProvider, FrequencyType, RetentionUnit, SnapshotStatus, SnapshotType};
pub use orgs::{Org, Project};
pub use roles::{AccessRole, NewAccessRole};
pub use schedules::BackupSchedule;
pub use snapshots::{ExpiredSnapshot, MongodVersions, NewSnapshot, Snapshot, SnapshotPart};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite connection waits for another writer (another process included) before
/// giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

/// Which engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("unsupported database url {url}: expected sqlite://… or postgres://…")]
    UnsupportedUrl { url: String },
    #[error("cannot open database {url}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create or restrict the database file {path} to owner-only")]
    DatabaseFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create data directory {path}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot migrate database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique constraint refused the write (a duplicate name, a second active export).
    #[error("{what} already exists")]
    Duplicate { what: String },
    /// Another export job of the bucket already has this prefix.
    #[error("export prefix {prefix} is already used in this bucket")]
    PrefixTaken { prefix: String },
    /// A row the operation needs does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// A stored value that cannot be read back (bad JSON in a column, an unknown state).
    #[error("corrupt stored value in {column}: {message}")]
    Corrupt { column: String, message: String },
    #[error("database error")]
    Db(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e)
    }
}

/// Turns a unique violation into [`StoreError::Duplicate`], anything else into `Db`.
fn map_unique(e: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Duplicate {
            what: what.to_string(),
        };
    }
    StoreError::Db(e)
}

/// The metadata store; cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    kind: DbKind,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind).finish()
    }
}

/// The SQLite URL of the embedded default database in `data_dir`.
pub fn default_sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("snapex.db").display())
}

/// The file of a SQLite URL (`sqlite://PATH?…`, `sqlite:PATH`), `None` for an in-memory one.
fn sqlite_file_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Creates an empty database file with mode 0600 when it does not exist yet, so that SQLite
/// (which keeps the mode of an existing file, and gives it to `-wal` and `-shm`) never
/// creates it readable by others.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(crate::owner_only::FILE_MODE);
    }
    match options.open(path) {
        Ok(_) => crate::owner_only::restrict_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // A missing directory: let SQLite report it with the URL.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets the database file and its `-wal`/`-shm` companions (those that exist) to 0600. A file
/// of another user (an administrator's shared database) cannot be changed: that is logged,
/// not refused.
fn restrict_sqlite_files(path: &Path) -> std::io::Result<()> {
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        files.push(PathBuf::from(companion));
    }
    for file in files {
        match crate::owner_only::restrict_file(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => tracing::warn!(
                path = %file.display(),
                "cannot make the database file owner-only: it belongs to another user"
            ),
            other => other?,
        }
    }
    Ok(())
}

/// The engine a database URL names, or `None` when it names neither.
pub fn kind_of_url(url: &str) -> Option<DbKind> {
    if url.starts_with("sqlite:") {
        Some(DbKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(DbKind::Postgres)
    } else {
        None
    }
}

/// The pool settings of both engines: connections, acquire timeout and, for SQLite, the
/// per-connection pragmas.
fn pool_options(kind: DbKind, max_connections: u32) -> AnyPoolOptions {
    let mut options = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30));
    if kind == DbKind::Sqlite {
        // An embedded file cannot drop a connection: the liveness ping sqlx makes before
        // lending one is a wasted round trip to its worker thread on every query
        // (measured by examples/api_sqlite_roundtrip: 4968 → 5738 lookups/s).
        options = options.test_before_acquire(false);
        options = options.after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run while a writer writes (serve + admin CLI), and the
                // busy timeout makes a second writer wait instead of failing at once.
                conn.execute(
                    format!(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                    )
                    .as_str(),
                )
                .await?;
                Ok(())
            })
        });
    }
    options
}

impl Store {
    /// Opens (creating a SQLite file when missing) and migrates the database at `database_url`.
    pub async fn open(database_url: &str) -> Result<Store, StoreError> {
        let kind = kind_of_url(database_url).ok_or_else(|| StoreError::UnsupportedUrl {
            url: redact_url(database_url),
        })?;
        install_default_drivers();
        let url = match kind {
            // A plain `sqlite://file` would fail on a missing file; create it like the default does.
            DbKind::Sqlite
                if !database_url.contains("mode=") && !database_url.contains(":memory:") =>
            {
                if database_url.contains('?') {
                    format!("{database_url}&mode=rwc")
                } else {
                    format!("{database_url}?mode=rwc")
                }
            }
            _ => database_url.to_string(),
        };
        let options = pool_options(
            kind,
            match kind {
                DbKind::Sqlite => 8,
                DbKind::Postgres => 16,
            },
        );
        let sqlite_file = match kind {
            DbKind::Sqlite => sqlite_file_path(&url),
            DbKind::Postgres => None,
        };
        if let Some(file) = sqlite_file.as_ref().filter(|_| url.contains("mode=rwc")) {
            create_private_file(file).map_err(|source| StoreError::DatabaseFile {
                path: file.display().to_string(),
                source,
            })?;
        }
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(database_url),
                source,
            })?;
        if let Some(file) = &sqlite_file {
            // SQLite creates `-wal` and `-shm` with the database file's mode; narrow all three
            // anyway, which also covers a database created by an older version.
            restrict_sqlite_files(file).map_err(|source| StoreError::DatabaseFile {
                path: file.display().to_string(),
                source,
            })?;
        }
        let migrator = match kind {
            DbKind::Sqlite => &SQLITE_MIGRATOR,
            DbKind::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&pool).await?;
        Ok(Store { pool, kind })
    }

    /// A second pool of at most `max_connections` on the same database (already migrated),
    /// whose connections belong to the runtime this is called on: for a task that runs on a
    /// runtime of its own and must not depend on the first pool's runtime to make progress
    /// (the job heartbeat, `crate::jobs`).
    pub async fn connect_again(&self, max_connections: u32) -> Result<Store, StoreError> {
        let connect = (*self.pool.connect_options()).clone();
        let pool = pool_options(self.kind, max_connections)
            .connect_with(connect)
            .await
            .map_err(|source| StoreError::Connect {
                url: "the metadata store (second pool)".into(),
                source,
            })?;
        Ok(Store {
            pool,
            kind: self.kind,
        })
    }

    /// Opens the embedded default: SQLite at `<data_dir>/snapex.db`, creating the directory.
    pub async fn open_in_data_dir(data_dir: &Path) -> Result<Store, StoreError> {
        crate::owner_only::create_private_dir(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        Store::open(&default_sqlite_url(data_dir)).await
    }

    /// Opens `database_url` when given, the embedded default in `data_dir` otherwise — the rule
    /// of `--data-dir`/`--database` for `serve` and the administrative commands.
    pub async fn open_configured(
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> Result<Store, StoreError> {
        match database_url {
            Some(url) => Store::open(url).await,
            None => Store::open_in_data_dir(data_dir).await,
        }
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The raw pool, for tests that inspect what is stored (that secrets are sealed, say).
    /// Queries must be written for both engines (see the module docs).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A URL for messages: the password of `postgres://user:secret@host` replaced.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// A new 24-hex ObjectId, as Atlas ids are.
pub fn new_id() -> String {
    bson::oid::ObjectId::new().to_hex()
}

/// Whether `s` is a 24-hex id.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Milliseconds since the epoch, the stored form of every timestamp.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The current time, truncated to whole milliseconds so a value reads back exactly as written.
pub fn now() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}

fn bool_to_i64(b: bool) -> i64 {
    i64::from(b)
}

fn parse_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        column: column.to_string(),
        message: e.to_string(),
    })
}

/// A text column holding one of a closed set of values (see [`kinds`]).
fn parse_kind<T>(
    column: &str,
    row: &sqlx::any::AnyRow,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    use sqlx::Row;
    let name = column.rsplit('.').next().unwrap_or(column);
    let text: String = row.try_get(name)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt {
        column: column.to_string(),
        message: format!("unknown value {text}"),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain structs and vectors of strings cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// A page request: 1-based page number and page size, as the API's `pageNum`/`itemsPerPage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page_num: u32,
    pub items_per_page: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            page_num: 1,
            items_per_page: 100,
        }
    }
}

impl Page {
    fn limit(&self) -> i64 {
        i64::from(self.items_per_page)
    }
    fn offset(&self) -> i64 {
        i64::from(self.page_num.saturating_sub(1)) * i64::from(self.items_per_page)
    }

    /// This page's slice of `items` (for lists assembled outside the database).
    pub fn slice<T>(&self, items: Vec<T>) -> Vec<T> {
        let skip = usize::try_from(self.offset()).unwrap_or(usize::MAX);
        let take = usize::try_from(self.limit()).unwrap_or(0);
        items.into_iter().skip(skip).take(take).collect()
    }
}

//! The deployment's configuration: what the rules and the job engine of every node read. The
//! front ends resolve it (flags, environment, TOML file; `cli::serve`) and hand it over; each
//! default is written here once.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;

use crate::export::ExportOptions;
use crate::storage::StorageOptions;

/// Replica sets exporting at once across the deployment (PRODUCT.md §3).
pub const DEFAULT_MAX_CONCURRENT_REPLICA_SETS: u64 = 5;
/// How long a job lease lasts without a heartbeat.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How often a running job heartbeats (and sees cancel requests).
pub const DEFAULT_HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How often the queue is polled when nothing wakes the runner.
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(1);
/// How often expired snapshot records are deleted.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// Nice value of a server's export threads, so API requests win the CPU (see `export::workers`).
pub const SERVER_EXPORT_NICE: i32 = 10;

/// A set of projects the operator grants something to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProjectSet {
    /// No project (the default for every grant of the server's own authority).
    #[default]
    None,
    /// Every project: for single-tenant deployments.
    All,
    /// These project ids.
    Only(Vec<String>),
}

impl ProjectSet {
    /// Parses the flag form: `all`, `none`, or project ids separated by commas.
    pub fn parse(text: &str) -> ProjectSet {
        match text.trim() {
            "" | "none" => ProjectSet::None,
            "all" => ProjectSet::All,
            ids => ProjectSet::Only(
                ids.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
        }
    }

    pub fn contains(&self, group_id: &str) -> bool {
        match self {
            ProjectSet::None => false,
            ProjectSet::All => true,
            ProjectSet::Only(ids) => ids.iter().any(|id| id == group_id),
        }
    }
}

impl std::fmt::Display for ProjectSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectSet::None => f.write_str("none"),
            ProjectSet::All => f.write_str("all"),
            ProjectSet::Only(ids) => f.write_str(&ids.join(",")),
        }
    }
}

/// Settings shared by the rules (`service`), the API and the job runner of one node.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// Root directory of `FILESYSTEM` export buckets.
    pub bucket_root: PathBuf,
    /// Options for opening storage URLs (snapshot parts, buckets) before a role's credentials;
    /// its retry budget (`store_retry_seconds`, default `storage::DEFAULT_RETRY_BUDGET`) holds
    /// for every bucket.
    pub storage: StorageOptions,
    /// This node's name in leases and "interrupted" reasons; stable across restarts.
    pub node_id: String,
    /// Replica sets exporting at once across the deployment.
    pub max_concurrent_replica_sets: u64,
    /// How long a job lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often a running job heartbeats.
    pub heartbeat_every: Duration,
    /// How often the queue is polled when nothing wakes the runner.
    pub poll_every: Duration,
    /// How often expired snapshot records are deleted (`jobs::retention`).
    pub retention_interval: Duration,
    /// How export files are written.
    pub export: ExportOptions,
    /// The date used to decide whether an API version's sunset has passed (tests set it).
    pub today_override: Option<NaiveDate>,
    /// Projects that may create `fromEnvironment` access roles (the host's own identity).
    pub environment_credentials: ProjectSet,
    /// Accept `http://` endpoints in access roles (emulators); `https://` only otherwise.
    pub allow_insecure_endpoints: bool,
    /// Every project may import from `<root>/<groupId>/` of each of these.
    pub source_roots: Vec<PathBuf>,
    /// Local directories and storage URL prefixes granted to some projects.
    pub source_grants: Vec<super::sources::SourceGrant>,
    /// Directories no source root reaches into (the data directory); the bucket root is
    /// always one.
    pub protected_dirs: Vec<PathBuf>,
    /// Backup locations the catalog watches (`service::catalog`).
    pub backup_locations: Vec<super::catalog::BackupLocation>,
    /// How often the catalog lists each location.
    pub catalog_interval: Duration,
}

impl DeploymentConfig {
    /// The defaults, with `FILESYSTEM` buckets under `bucket_root`.
    pub fn new(bucket_root: PathBuf) -> Self {
        DeploymentConfig {
            bucket_root,
            storage: StorageOptions::default(),
            node_id: default_node_id(),
            max_concurrent_replica_sets: DEFAULT_MAX_CONCURRENT_REPLICA_SETS,
            lease: DEFAULT_LEASE,
            heartbeat_every: DEFAULT_HEARTBEAT_EVERY,
            poll_every: DEFAULT_POLL_EVERY,
            retention_interval: DEFAULT_RETENTION_INTERVAL,
            export: ExportOptions {
                worker_nice: SERVER_EXPORT_NICE,
                ..Default::default()
            },
            today_override: None,
            environment_credentials: ProjectSet::None,
            allow_insecure_endpoints: false,
            source_roots: Vec::new(),
            source_grants: Vec::new(),
            protected_dirs: Vec::new(),
            backup_locations: Vec::new(),
            catalog_interval: super::catalog::DEFAULT_INTERVAL,
        }
    }
}

/// A default node id: the host name, so a restarted node recognises its own leftovers.
pub fn default_node_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "snapex".to_string())
}

//! `snapex serve`: the Atlas-compatible API server and this node's export job runner.
//!
//! Configuration comes from flags, then the environment (`SNAPEX_*`, through clap), then a TOML
//! file (`--config`), then defaults; the resolved value of every setting is printed at start.
//! [`start`] runs a server in-process (for `snapex demo` and tests) and returns its bound
//! address and a shutdown handle; [`run`] is the command, which also installs logging and waits
//! for SIGINT/SIGTERM. Connections are served by [`super::http`] (HTTP/1.1 with header-read and
//! idle timeouts); the HTTP settings and their defaults are `api::edge`'s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::http::Timeouts;
use crate::api::edge::{DEFAULT_RATE_LIMIT_BURST, Edge, EdgeConfig, RateLimit, parse_public_url};
use crate::api::{self, AppState};
use crate::auth::{AuthService, SecretBox};
use crate::cli::StoreArgs;
use crate::jobs::Runner;
use crate::service::{Deployment, DeploymentConfig};
use crate::store::Store;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SNAPEX_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Root directory of FILESYSTEM export buckets [default: <data dir>/buckets].
    #[arg(long, env = "SNAPEX_BUCKET_ROOT")]
    pub bucket_root: Option<PathBuf>,
    /// TOML configuration file (keys: listen, public_url, bucket_root, database, node_id,
    /// max_concurrent_replica_sets, lease_seconds, store_retry_seconds,
    /// retention_interval_seconds, log_format, max_body_bytes, rate_limit_per_second,
    /// rate_limit_burst, header_read_timeout_seconds, idle_timeout_seconds,
    /// allow_environment_credentials, allow_insecure_endpoints, source_roots, source_grants,
    /// catalog_interval_seconds, and `[[backup_locations]]` tables of name, project, cluster,
    /// url, role).
    #[arg(long, env = "SNAPEX_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's name in job leases [default: the host name]. Must be unique per node and
    /// stable across restarts.
    #[arg(long, env = "SNAPEX_NODE_ID")]
    pub node_id: Option<String>,
    /// Replica sets exporting at once across the deployment [default: 5].
    #[arg(long, env = "SNAPEX_MAX_CONCURRENT_REPLICA_SETS")]
    pub max_concurrent_replica_sets: Option<u64>,
    /// Seconds a job lease lasts without a heartbeat [default: 30].
    #[arg(long, env = "SNAPEX_LEASE_SECONDS")]
    pub lease_seconds: Option<u64>,
    /// Seconds one object-store request keeps being retried through transient errors
    /// (connection refused or reset, 5xx, throttling) before the export fails [default: 120].
    #[arg(long, env = "SNAPEX_STORE_RETRY_SECONDS")]
    pub store_retry_seconds: Option<u64>,
    /// Seconds between sweeps that delete expired snapshot records [default: 60].
    #[arg(long, env = "SNAPEX_RETENTION_INTERVAL_SECONDS")]
    pub retention_interval_seconds: Option<u64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SNAPEX_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Projects that may create `fromEnvironment` access roles, which use this server's own
    /// cloud identity: `all`, `none` or comma-separated project ids [default: none].
    #[arg(long, env = "SNAPEX_ALLOW_ENVIRONMENT_CREDENTIALS")]
    pub allow_environment_credentials: Option<String>,
    /// Accept plain `http://` endpoints in access roles (object-store emulators) [default: false].
    #[arg(long, env = "SNAPEX_ALLOW_INSECURE_ENDPOINTS")]
    pub allow_insecure_endpoints: bool,
    /// A directory under which every project may import snapshots from `DIR/<groupId>/`
    /// (repeatable) [default: none: local imports are refused].
    #[arg(long = "source-root", value_name = "DIR")]
    pub source_roots: Vec<PathBuf>,
    /// Grant a project (`*`: every project) a local directory or a storage URL prefix to
    /// import from, read with this server's credentials: `PROJECT=PATH_OR_URL` (repeatable).
    #[arg(long = "source-grant", value_name = "PROJECT=PATH_OR_URL")]
    pub source_grants: Vec<String>,
    /// A backup location the catalog watches, bound to one cluster of one project and read
    /// with that project's access role `role` (remote URLs) or inside its roots and grants:
    /// `name=N,project=ID,cluster=NAME,url=URL[,role=ID]` (repeatable; replaces the file's).
    #[arg(
        long = "backup-location",
        value_name = "name=N,project=ID,cluster=C,url=URL[,role=ID]"
    )]
    pub backup_locations: Vec<String>,
    /// Seconds between two listings of each backup location [default: 60].
    #[arg(long, env = "SNAPEX_CATALOG_INTERVAL_SECONDS")]
    pub catalog_interval_seconds: Option<u64>,
    /// Base URL of the `links` in responses, as clients reach this server (behind a proxy:
    /// the proxy's URL, with its path prefix) [default: http://<listen address>]. The
    /// request's Host header is never used.
    #[arg(long, env = "SNAPEX_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest request body in bytes; larger ones get 413 [default: 1048576].
    #[arg(long, env = "SNAPEX_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Requests per second each API key or service account may make once its burst is
    /// spent, counted per node; 0 turns rate limiting off [default: 100].
    #[arg(long, env = "SNAPEX_RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<u32>,
    /// Requests each API key or service account may make at once [default: 1000].
    #[arg(long, env = "SNAPEX_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Seconds a client has to send a request line and its headers; also how long an idle
    /// keep-alive connection stays open [default: 10].
    #[arg(long, env = "SNAPEX_HEADER_READ_TIMEOUT_SECONDS")]
    pub header_read_timeout_seconds: Option<u64>,
    /// Seconds without a byte while a request body is received (then 408) or a response is
    /// sent (then the connection closes) [default: 30].
    #[arg(long, env = "SNAPEX_IDLE_TIMEOUT_SECONDS")]
    pub idle_timeout_seconds: Option<u64>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    bucket_root: Option<PathBuf>,
    database: Option<String>,
    node_id: Option<String>,
    max_concurrent_replica_sets: Option<u64>,
    lease_seconds: Option<u64>,
    store_retry_seconds: Option<u64>,
    retention_interval_seconds: Option<u64>,
    log_format: Option<String>,
    allow_environment_credentials: Option<String>,
    allow_insecure_endpoints: Option<bool>,
    #[serde(default)]
    source_roots: Vec<PathBuf>,
    #[serde(default)]
    source_grants: Vec<String>,
    #[serde(default)]
    backup_locations: Vec<crate::service::catalog::BackupLocation>,
    catalog_interval_seconds: Option<u64>,
    public_url: Option<String>,
    max_body_bytes: Option<usize>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    header_read_timeout_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
}

/// Everything a server needs, resolved: where its data is, where it listens, and the
/// deployment settings the rules and the job runner read.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// `None`: SQLite in `data_dir`.
    pub database: Option<String>,
    pub listen: SocketAddr,
    pub log_format: String,
    /// The HTTP side: public URL, body and rate limits, connection timeouts.
    pub edge: EdgeConfig,
    pub deployment: DeploymentConfig,
}

impl ServerConfig {
    /// Defaults for a data directory: loopback, SQLite, `<data dir>/buckets`.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        ServerConfig {
            data_dir: data_dir.to_path_buf(),
            database: None,
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            log_format: "text".into(),
            edge: EdgeConfig::default(),
            deployment: DeploymentConfig::new(data_dir.join("buckets")),
        }
    }

    /// Flags/env over the file over defaults.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut c = ServerConfig::for_data_dir(&args.store.data_dir);
        c.database = args.store.database.clone().or(file.database);
        if let Some(v) = args.listen.or(file.listen) {
            c.listen = v;
        }
        let d = &mut c.deployment;
        if let Some(v) = args.bucket_root.clone().or(file.bucket_root) {
            d.bucket_root = v;
        }
        if let Some(v) = args.node_id.clone().or(file.node_id) {
            d.node_id = v;
        }
        if let Some(v) = args
            .max_concurrent_replica_sets
            .or(file.max_concurrent_replica_sets)
        {
            anyhow::ensure!(v >= 1, "max_concurrent_replica_sets must be at least 1");
            d.max_concurrent_replica_sets = v;
        }
        if let Some(v) = args.lease_seconds.or(file.lease_seconds) {
            anyhow::ensure!(v >= 2, "lease_seconds must be at least 2");
            d.lease = Duration::from_secs(v);
        }
        if let Some(v) = args.store_retry_seconds.or(file.store_retry_seconds) {
            anyhow::ensure!(v >= 1, "store_retry_seconds must be at least 1");
            d.storage.retry_timeout = Some(Duration::from_secs(v));
        }
        if let Some(v) = args
            .retention_interval_seconds
            .or(file.retention_interval_seconds)
        {
            anyhow::ensure!(v >= 1, "retention_interval_seconds must be at least 1");
            d.retention_interval = Duration::from_secs(v);
        }
        if let Some(v) = args
            .allow_environment_credentials
            .clone()
            .or(file.allow_environment_credentials)
        {
            d.environment_credentials = crate::service::ProjectSet::parse(&v);
        }
        d.allow_insecure_endpoints =
            args.allow_insecure_endpoints || file.allow_insecure_endpoints.unwrap_or(false);
        d.source_roots = if args.source_roots.is_empty() {
            file.source_roots
        } else {
            args.source_roots.clone()
        };
        let grants = if args.source_grants.is_empty() {
            file.source_grants
        } else {
            args.source_grants.clone()
        };
        for grant in grants {
            let parsed =
                crate::service::sources::SourceGrant::parse(&grant).with_context(|| {
                    format!("invalid source grant {grant:?}: expected PROJECT=PATH_OR_URL")
                })?;
            d.source_grants.push(parsed);
        }
        d.backup_locations = if args.backup_locations.is_empty() {
            for location in &file.backup_locations {
                location.check().map_err(|problem| {
                    anyhow::anyhow!("invalid backup location {}: {problem}", location.name)
                })?;
            }
            file.backup_locations
        } else {
            args.backup_locations
                .iter()
                .map(|text| crate::service::catalog::BackupLocation::parse(text))
                .collect::<Result<_, _>>()?
        };
        for (i, location) in d.backup_locations.iter().enumerate() {
            anyhow::ensure!(
                !d.backup_locations[..i]
                    .iter()
                    .any(|l| l.name == location.name),
                "two backup locations are named {}",
                location.name
            );
        }
        if let Some(v) = args
            .catalog_interval_seconds
            .or(file.catalog_interval_seconds)
        {
            anyhow::ensure!(v >= 1, "catalog_interval_seconds must be at least 1");
            d.catalog_interval = Duration::from_secs(v);
        }
        if let Some(v) = args.log_format.clone().or(file.log_format) {
            anyhow::ensure!(
                v == "text" || v == "json",
                "log_format must be text or json"
            );
            c.log_format = v;
        }
        let e = &mut c.edge;
        if let Some(v) = args.public_url.clone().or(file.public_url) {
            e.public_url = Some(
                parse_public_url(&v).map_err(|why| anyhow::anyhow!("invalid public_url {why}"))?,
            );
        }
        if let Some(v) = args.max_body_bytes.or(file.max_body_bytes) {
            anyhow::ensure!(v >= 1024, "max_body_bytes must be at least 1024");
            e.max_body_bytes = v;
        }
        let current = e.rate_limit.unwrap_or(RateLimit {
            per_second: 0,
            burst: DEFAULT_RATE_LIMIT_BURST,
        });
        let per_second = args
            .rate_limit_per_second
            .or(file.rate_limit_per_second)
            .unwrap_or(current.per_second);
        let burst = args
            .rate_limit_burst
            .or(file.rate_limit_burst)
            .unwrap_or(current.burst);
        anyhow::ensure!(burst >= 1, "rate_limit_burst must be at least 1");
        // 0 requests per second: no limit.
        e.rate_limit = (per_second > 0).then_some(RateLimit { per_second, burst });
        if let Some(v) = args
            .header_read_timeout_seconds
            .or(file.header_read_timeout_seconds)
        {
            anyhow::ensure!(v >= 1, "header_read_timeout_seconds must be at least 1");
            e.header_read_timeout = Duration::from_secs(v);
        }
        if let Some(v) = args.idle_timeout_seconds.or(file.idle_timeout_seconds) {
            anyhow::ensure!(v >= 1, "idle_timeout_seconds must be at least 1");
            e.idle_timeout = Duration::from_secs(v);
        }
        Ok(c)
    }

    /// The base of `links` before binding: the public URL, or `http://<listen address>`.
    pub fn public_url(&self) -> String {
        api::edge::base_url(&self.edge, Some(self.listen))
    }

    /// One line per setting, for the start banner.
    pub fn describe(&self) -> Vec<(String, String)> {
        let d = &self.deployment;
        vec![
            ("data_dir".into(), self.data_dir.display().to_string()),
            (
                "database".into(),
                match &self.database {
                    Some(url) => crate::store::redact_url(url),
                    None => crate::store::default_sqlite_url(&self.data_dir),
                },
            ),
            ("listen".into(), self.listen.to_string()),
            ("bucket_root".into(), d.bucket_root.display().to_string()),
            ("node_id".into(), d.node_id.clone()),
            (
                "max_concurrent_replica_sets".into(),
                d.max_concurrent_replica_sets.to_string(),
            ),
            ("lease_seconds".into(), d.lease.as_secs().to_string()),
            (
                "store_retry_seconds".into(),
                d.storage.retry_budget().as_secs().to_string(),
            ),
            (
                "retention_interval_seconds".into(),
                d.retention_interval.as_secs().to_string(),
            ),
            ("log_format".into(), self.log_format.clone()),
            (
                "allow_environment_credentials".into(),
                d.environment_credentials.to_string(),
            ),
            (
                "allow_insecure_endpoints".into(),
                d.allow_insecure_endpoints.to_string(),
            ),
            (
                "source_roots".into(),
                d.source_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "source_grants".into(),
                d.source_grants
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "backup_locations".into(),
                d.backup_locations
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            (
                "catalog_interval_seconds".into(),
                d.catalog_interval.as_secs().to_string(),
            ),
            ("public_url".into(), self.public_url()),
            (
                "max_body_bytes".into(),
                self.edge.max_body_bytes.to_string(),
            ),
            (
                "rate_limit_per_second".into(),
                self.edge
                    .rate_limit
                    .map_or("0 (off)".into(), |l| l.per_second.to_string()),
            ),
            (
                "rate_limit_burst".into(),
                self.edge
                    .rate_limit
                    .map_or("-".into(), |l| l.burst.to_string()),
            ),
            (
                "header_read_timeout_seconds".into(),
                self.edge.header_read_timeout.as_secs().to_string(),
            ),
            (
                "idle_timeout_seconds".into(),
                self.edge.idle_timeout.as_secs().to_string(),
            ),
        ]
    }
}

/// A server running in this process.
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    pub store: Store,
    pub auth: AuthService,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    runner: JoinHandle<()>,
    retention: JoinHandle<()>,
    catalog: JoinHandle<()>,
}

impl RunningServer {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, finishes in-flight requests, stops the runner (running jobs end as
    /// interrupted) and waits for both.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the server stops (after [`RunningServer::shutdown_token`] fires).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.await.context("server task panicked")?;
        self.runner.await.context("job runner panicked")?;
        self.retention
            .await
            .context("snapshot retention task panicked")?;
        self.catalog.await.context("backup catalog task panicked")?;
        self.store.close().await;
        Ok(())
    }
}

/// Opens the store, binds the listener, and starts serving and running jobs.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    // Owner-only before anything lands in it (the bucket root below, with PostgreSQL and
    // SNAPEX_SECRET_KEY, would otherwise create it with the umask's mode).
    crate::owner_only::create_private_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = Store::open_configured(&config.data_dir, config.database.as_deref())
        .await
        .context("cannot open the metadata store")?;
    let secrets =
        SecretBox::from_env_or_data_dir(&config.data_dir).context("cannot load the secret key")?;
    let auth = AuthService::new(store.clone(), secrets.clone());
    auth.verify_deployment_key()
        .await
        .context("the secret key is not this deployment's")?;
    let mut deployment_config = config.deployment.clone();
    // Imports never reach into the server's own files, whatever root an operator grants.
    deployment_config
        .protected_dirs
        .push(config.data_dir.clone());
    std::fs::create_dir_all(&deployment_config.bucket_root).with_context(|| {
        format!(
            "cannot create bucket root {}",
            deployment_config.bucket_root.display()
        )
    })?;
    if let Ok(root) = deployment_config.bucket_root.canonicalize() {
        deployment_config.bucket_root = root;
    }
    let node_id = deployment_config.node_id.clone();
    let retention_interval = deployment_config.retention_interval;
    let deployment = Deployment::new(store.clone(), secrets, deployment_config);
    crate::service::buckets::migrate_filesystem_layout(&deployment)
        .await
        .context("cannot move FILESYSTEM buckets to their projects' directories")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let state = AppState::for_deployment(deployment.clone(), auth.clone())
        .with_edge(Edge::new(&config.edge, Some(addr)));
    let shutdown = CancellationToken::new();

    let catalog = tokio::spawn(crate::service::catalog::run(
        deployment.clone(),
        deployment.config.catalog_interval,
        shutdown.clone(),
    ));
    let runner = tokio::spawn(Runner { deployment }.run(shutdown.clone()));
    let retention = tokio::spawn(crate::jobs::retention::run(
        store.clone(),
        retention_interval,
        shutdown.clone(),
    ));

    // Spans name the method and the path only: a query string or a header (Authorization,
    // cookies) may carry a secret, and debug logs end up in places secrets must not.
    let trace = tower_http::trace::TraceLayer::new_for_http().make_span_with(
        |req: &axum::http::Request<axum::body::Body>| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        },
    );
    let router = crate::api::app(state).layer(trace);
    let timeouts = Timeouts {
        header_read: config.edge.header_read_timeout,
        idle: config.edge.idle_timeout,
    };
    let server = tokio::spawn(super::http::serve(
        listener,
        router,
        timeouts,
        shutdown.clone(),
    ));
    tracing::info!(%addr, node_id = %node_id, "snapex serving");
    Ok(RunningServer {
        addr,
        store,
        auth,
        shutdown,
        server,
        runner,
        retention,
        catalog,
    })
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // try_init: a second call (tests, demo) keeps the first subscriber.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = ServerConfig::resolve(&args)?;
    init_logging(&config.log_format);
    for (key, value) in config.describe() {
        eprintln!("snapex serve: {key} = {value}");
    }
    if config.edge.public_url.is_none() && config.listen.ip().is_unspecified() {
        eprintln!(
            "snapex serve: warning: listening on {} without --public-url: links will name {}, \
             which clients cannot reach; set --public-url",
            config.listen,
            config.public_url()
        );
    }
    let server = start(config).await?;
    eprintln!("snapex serve: listening on {}", server.url());
    let token = server.shutdown_token();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    server.wait().await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(data_dir: &Path, config: Option<PathBuf>) -> ServeArgs {
        ServeArgs {
            store: StoreArgs {
                data_dir: data_dir.to_path_buf(),
                database: None,
            },
            listen: None,
            bucket_root: None,
            config,
            node_id: None,
            max_concurrent_replica_sets: None,
            lease_seconds: None,
            store_retry_seconds: None,
            retention_interval_seconds: None,
            log_format: None,
            allow_environment_credentials: None,
            allow_insecure_endpoints: false,
            source_roots: Vec::new(),
            source_grants: Vec::new(),
            backup_locations: Vec::new(),
            catalog_interval_seconds: None,
            public_url: None,
            max_body_bytes: None,
            rate_limit_per_second: None,
            rate_limit_burst: None,
            header_read_timeout_seconds: None,
            idle_timeout_seconds: None,
        }
    }

    #[test]
    fn defaults_follow_the_data_dir() {
        let c = ServerConfig::resolve(&args(Path::new("/d"), None)).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.deployment.bucket_root, PathBuf::from("/d/buckets"));
        assert_eq!(c.deployment.max_concurrent_replica_sets, 5);
        assert_eq!(c.deployment.retention_interval, Duration::from_secs(60));
        assert_eq!(
            c.deployment.storage.retry_budget(),
            crate::storage::DEFAULT_RETRY_BUDGET
        );
        assert!(c.database.is_none());
        assert_eq!(c.edge, EdgeConfig::default());
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert_eq!(c.edge.max_body_bytes, 1024 * 1024);
        assert_eq!(
            c.edge.rate_limit,
            Some(RateLimit {
                per_second: 100,
                burst: 1000
            })
        );
        assert_eq!(c.edge.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.edge.idle_timeout, Duration::from_secs(30));
        let described = c.describe();
        assert!(
            described
                .iter()
                .any(|(k, v)| k == "public_url" && v == "http://127.0.0.1:8080")
        );
        assert!(
            described
                .iter()
                .any(|(k, v)| k == "database" && v.contains("/d/snapex.db"))
        );
    }

    #[test]
    fn backup_locations_come_from_the_file_or_the_flags_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snapex.toml");
        std::fs::write(
            &file,
            "catalog_interval_seconds = 30\n[[backup_locations]]\nname = \"nightly\"\n\
             project = \"0123456789abcdef01234567\"\ncluster = \"prod\"\nurl = \"s3://b/pbm\"\n\
             role = \"89abcdef0123456789abcdef\"\n",
        )
        .unwrap();
        let c = ServerConfig::resolve(&args(dir.path(), Some(file.clone()))).unwrap();
        assert_eq!(c.deployment.catalog_interval, Duration::from_secs(30));
        assert_eq!(c.deployment.backup_locations.len(), 1);
        assert_eq!(c.deployment.backup_locations[0].url, "s3://b/pbm");
        assert!(c.describe().iter().any(|(k, v)| k == "backup_locations"
            && v.contains("name=nightly")
            && v.contains("role=89abcdef0123456789abcdef")));
        // Flags replace the file's.
        let mut a = args(dir.path(), Some(file.clone()));
        a.backup_locations =
            vec!["name=local,project=0123456789abcdef01234567,cluster=c1,url=/srv/dumps".into()];
        let c = ServerConfig::resolve(&a).unwrap();
        assert_eq!(c.deployment.backup_locations[0].name, "local");
        assert_eq!(c.deployment.backup_locations.len(), 1);
        // Two of one name, or one without a project, are refused.
        a.backup_locations.push(a.backup_locations[0].clone());
        let e = ServerConfig::resolve(&a).unwrap_err();
        assert!(e.to_string().contains("two backup locations"), "{e}");
        a.backup_locations = vec!["name=x,cluster=c1,url=/srv".into()];
        let e = ServerConfig::resolve(&a).unwrap_err();
        assert!(format!("{e:#}").contains("project is missing"), "{e:#}");
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snapex.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nmax_concurrent_replica_sets = 3\nnode_id = \"from-file\"\nretention_interval_seconds = 5\nstore_retry_seconds = 7\n",
        )
        .unwrap();
        let mut a = args(dir.path(), Some(file.clone()));
        a.node_id = Some("from-flag".into());
        let c = ServerConfig::resolve(&a).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(c.deployment.max_concurrent_replica_sets, 3);
        assert_eq!(c.deployment.node_id, "from-flag");
        assert_eq!(c.deployment.retention_interval, Duration::from_secs(5));
        assert_eq!(c.deployment.storage.retry_budget(), Duration::from_secs(7));
        assert!(
            c.describe()
                .iter()
                .any(|(k, v)| k == "retention_interval_seconds" && v == "5")
        );
        std::fs::write(
            &file,
            "public_url = \"https://snapex.example.com/backup/\"\nrate_limit_per_second = 5\n\
             max_body_bytes = 4096\nheader_read_timeout_seconds = 3\nidle_timeout_seconds = 7\n",
        )
        .unwrap();
        let mut a = args(dir.path(), Some(file.clone()));
        a.rate_limit_burst = Some(9);
        let c = ServerConfig::resolve(&a).unwrap();
        assert_eq!(c.public_url(), "https://snapex.example.com/backup");
        assert_eq!(
            c.edge.rate_limit,
            Some(RateLimit {
                per_second: 5,
                burst: 9
            })
        );
        assert_eq!(c.edge.max_body_bytes, 4096);
        assert_eq!(c.edge.header_read_timeout, Duration::from_secs(3));
        assert_eq!(c.edge.idle_timeout, Duration::from_secs(7));
        a.rate_limit_per_second = Some(0);
        let c = ServerConfig::resolve(&a).unwrap();
        assert_eq!(c.edge.rate_limit, None);
        assert!(
            c.describe()
                .iter()
                .any(|(k, v)| k == "rate_limit_per_second" && v.starts_with('0'))
        );
        std::fs::write(&file, "public_url = \"ftp://x\"\n").unwrap();
        let e = ServerConfig::resolve(&args(dir.path(), Some(file.clone()))).unwrap_err();
        assert!(e.to_string().contains("public_url"), "{e}");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nunknown_key = 1\n").unwrap();
        assert!(ServerConfig::resolve(&args(dir.path(), Some(file))).is_err());
    }
}

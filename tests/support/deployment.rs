//! The one test deployment every test binary sets up: a data directory of its own (kept when
//! the test fails, for its database and node logs), the metadata store (SQLite in the data
//! directory, or a PostgreSQL database for several nodes), and an organization, a project and a
//! Project Owner service account, made through the library before any node starts — as an
//! operator's admin commands would.
//!
//! Nodes on it run either in-process ([`TestDeployment::start_server`], the common case: the
//! test can reach the node's store and auth service) or as the real `snapex serve` binary in a
//! process of its own ([`TestDeployment::start_node`]), so that SIGKILL is a real crash. Either
//! way a test talks to a node through an [`AtlasClient`] with the service account's token.
//! [`TestApp`] bundles the usual case: one in-process node and its client.

use std::io::{BufRead, BufReader, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use snapex::cli::serve::{RunningServer, ServerConfig, start};
use snapex::store::Store;

use super::atlas::AtlasClient;
use super::{AuthService, Role, SecretBox};

/// A service account's OAuth client credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

/// What [`TestDeployment::builder`] makes.
pub struct DeploymentBuilder {
    org: String,
    project: String,
    database: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl DeploymentBuilder {
    /// The organization's name (default "Acme Corp").
    pub fn org(mut self, name: &str) -> Self {
        self.org = name.to_string();
        self
    }

    /// The project's name (default "Data Platform").
    pub fn project(mut self, name: &str) -> Self {
        self.project = name.to_string();
        self
    }

    /// A PostgreSQL database URL (see [`super::postgres_database`]); `None` keeps SQLite in
    /// the data directory.
    pub fn database(mut self, url: Option<String>) -> Self {
        self.database = url;
        self
    }

    /// A data directory the test has already filled (a store written before any node ran):
    /// an organization and a project of the configured names in it are used, not duplicated.
    pub fn data_dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    pub async fn create(self) -> TestDeployment {
        let dir = self.dir.unwrap_or_else(|| {
            tempfile::Builder::new()
                .prefix("snapex-deployment-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("create a deployment directory")
        });
        let data = dir.path();
        let store = Store::open_configured(data, self.database.as_deref())
            .await
            .unwrap_or_else(|e| panic!("open the metadata store of {}: {e}", data.display()));
        // As `snapex serve` loads it, so that the nodes accept the credentials made here.
        let secrets = SecretBox::from_env_or_data_dir(data).unwrap();
        let auth = AuthService::new(store.clone(), secrets);
        auth.verify_deployment_key().await.unwrap();
        let existing = store.list_orgs().await.unwrap();
        let org = match existing.into_iter().find(|o| o.name == self.org) {
            Some(org) => org,
            None => store.create_org(&self.org).await.unwrap(),
        };
        let project = match store.get_project_by_name(&self.project).await.unwrap() {
            Some(p) => p,
            None => store.create_project(&org.id, &self.project).await.unwrap(),
        };
        let sa = auth
            .create_service_account(&org.id, Some(&project.id), &[Role::GroupOwner], "tests")
            .await
            .unwrap();
        store.close().await;
        TestDeployment {
            dir: Some(dir),
            database: self.database,
            org_id: org.id,
            group_id: project.id,
            owner: Credentials {
                client_id: sa.client_id,
                client_secret: sa.client_secret,
            },
        }
    }
}

/// A deployment's data directory, metadata store and project. See the module docs.
pub struct TestDeployment {
    /// Kept (not deleted) when the test fails, for its store, node logs and buckets.
    dir: Option<tempfile::TempDir>,
    /// The PostgreSQL URL, or `None` for SQLite in the data directory.
    pub database: Option<String>,
    pub org_id: String,
    pub group_id: String,
    /// The project's Project Owner service account.
    pub owner: Credentials,
}

impl TestDeployment {
    /// Org "Acme Corp", project "Data Platform", SQLite, a fresh directory.
    pub fn builder() -> DeploymentBuilder {
        DeploymentBuilder {
            org: "Acme Corp".into(),
            project: "Data Platform".into(),
            database: None,
            dir: None,
        }
    }

    /// The data directory (secret key, SQLite database); also holds the process nodes' bucket
    /// roots and logs, and whatever else a test puts there (dumps).
    pub fn data_dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// The configuration of an in-process node on this deployment: port 0 on loopback, the
    /// deployment's store, a node id of its own, buckets under `<data dir>/buckets`.
    pub fn server_config(&self) -> ServerConfig {
        let mut config = ServerConfig::for_data_dir(self.data_dir());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database = self.database.clone();
        config.deployment.node_id = format!("test-{}", snapex::store::new_id());
        // The object stores of the tests are emulators on loopback.
        config.deployment.allow_insecure_endpoints = true;
        config.deployment.source_grants = self
            .source_grants()
            .iter()
            .filter_map(|g| snapex::service::sources::SourceGrant::parse(g))
            .collect();
        config
    }

    /// What the test deployments grant every project to import from: the shared fixtures, the
    /// temporary directories tests write dumps to, and the deployment's own directory.
    pub fn source_grants(&self) -> Vec<String> {
        [
            super::shared_data(),
            std::env::temp_dir(),
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            self.data_dir().to_path_buf(),
        ]
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .map(|p| format!("*={}", p.display()))
        .collect()
    }

    /// Starts an in-process node with [`TestDeployment::server_config`] as `configure` leaves
    /// it.
    pub async fn start_server(&self, configure: impl FnOnce(&mut ServerConfig)) -> RunningServer {
        let mut config = self.server_config();
        configure(&mut config);
        start(config).await.unwrap()
    }

    /// The bucket root of process node `node_id` (each node gets its own, so that the files a
    /// node wrote can be told apart from another's).
    pub fn bucket_root(&self, node_id: &str) -> PathBuf {
        self.data_dir().join(format!("buckets-{node_id}"))
    }

    /// Starts `snapex serve` as `node_id` in a process of its own, with extra flags.
    pub fn start_node(&self, node_id: &str, extra: &[&str]) -> Node {
        self.start_node_with_env(node_id, extra, &[])
    }

    /// [`TestDeployment::start_node`] with extra environment variables (e.g. the test-only
    /// `SNAPEX_TEST_PAUSE_AT`).
    pub fn start_node_with_env(&self, node_id: &str, extra: &[&str], env: &[(&str, &str)]) -> Node {
        self.start_node_on(node_id, &self.bucket_root(node_id), extra, env)
    }

    /// The bucket root several process nodes share, as a real deployment's `FILESYSTEM`
    /// buckets must (a shared mount): what recovery by another node reads.
    pub fn shared_bucket_root(&self) -> PathBuf {
        self.data_dir().join("buckets-shared")
    }

    /// [`TestDeployment::start_node_with_env`] with `root` as the node's bucket root.
    pub fn start_node_on(
        &self,
        node_id: &str,
        root: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Node {
        let root = root.to_path_buf();
        std::fs::create_dir_all(&root).unwrap();
        let log_path = self.data_dir().join(format!("{node_id}.log"));
        let mut cmd = Command::new(super::bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen", "127.0.0.1:0", "--node-id", node_id])
            // The object stores of the tests are emulators on loopback.
            .arg("--allow-insecure-endpoints")
            .args(
                self.source_grants()
                    .iter()
                    .flat_map(|g| ["--source-grant".to_string(), g.clone()]),
            )
            .arg("--bucket-root")
            .arg(&root)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(db) = &self.database {
            cmd.arg("--database").arg(db);
        }
        let mut child = cmd.spawn().expect("start snapex serve");
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let out_file = log_path.with_extension("out");
        // The logs (tracing writes to stdout) go to their own file.
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out_file)
                .unwrap();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let log_file = log_path.clone();
        // Keeps draining stderr into the log file for the node's whole life.
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_file)
                .unwrap();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some(url) = line.strip_prefix("snapex serve: listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "node {node_id} did not start: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )
            });
        Node {
            child,
            url,
            node_id: node_id.to_string(),
            bucket_root: root.canonicalize().unwrap(),
            log_path,
        }
    }

    /// A client of the node at `base` with a fresh bearer token of the project owner; every
    /// request times out after 30 s (a node that stopped answering fails the test, not the run).
    pub async fn client(&self, base: &str) -> AtlasClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        self.client_with(http, base).await
    }

    /// [`TestDeployment::client`] over `http`.
    pub async fn client_with(&self, http: reqwest::Client, base: &str) -> AtlasClient {
        AtlasClient::with_service_account(
            http,
            base,
            &self.owner.client_id,
            &self.owner.client_secret,
            &self.group_id,
        )
        .await
    }
}

impl Drop for TestDeployment {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("note: kept {} for inspection", dir.keep().display());
        }
    }
}

/// A `snapex serve` process (see [`TestDeployment::start_node`]); killed when dropped.
pub struct Node {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub node_id: String,
    pub bucket_root: PathBuf,
    pub log_path: PathBuf,
}

impl Node {
    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the node printed: its banner (stderr) and its logs (stdout), for every start
    /// of this node id in the deployment.
    pub fn log(&self) -> String {
        let err = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let out = std::fs::read_to_string(self.log_path.with_extension("out")).unwrap_or_default();
        format!("{err}{out}")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A deployment with one in-process node and the project owner's client of it: what most API
/// tests need. It derefs to that client, so a test reads `app.ok(…)`, `app.group_id`.
pub struct TestApp {
    pub server: RunningServer,
    pub api: AtlasClient,
    pub org_id: String,
    pub group_id: String,
    /// The node's FILESYSTEM bucket root, canonical.
    pub bucket_root: PathBuf,
    /// Last, so that the node goes before its directory does.
    pub deployment: TestDeployment,
}

impl TestApp {
    /// A new default deployment ([`TestDeployment::builder`]) and its node.
    pub async fn start() -> TestApp {
        TestApp::start_with(TestDeployment::builder().create().await, |_| {}).await
    }

    /// An in-process node on `deployment`, configured by `configure`, and a client of it (no
    /// request timeout, as a plain `reqwest::Client`).
    pub async fn start_with(
        deployment: TestDeployment,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestApp {
        let mut config = deployment.server_config();
        configure(&mut config);
        let bucket_root = config.deployment.bucket_root.clone();
        let server = start(config).await.unwrap();
        let api = deployment
            .client_with(reqwest::Client::new(), &server.url())
            .await;
        TestApp {
            api,
            org_id: deployment.org_id.clone(),
            group_id: deployment.group_id.clone(),
            bucket_root: bucket_root.canonicalize().unwrap(),
            server,
            deployment,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.deployment.data_dir()
    }
}

impl Deref for TestApp {
    type Target = AtlasClient;

    fn deref(&self) -> &AtlasClient {
        &self.api
    }
}

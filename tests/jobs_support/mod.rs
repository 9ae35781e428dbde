//! Helpers for the export-job tests that run the real `snapex` binary as separate processes
//! (so that SIGKILL is a real crash): deployments set up with the admin commands, nodes
//! started with `snapex serve`, an HTTP client with a bearer token, and a sampler of the jobs
//! list.
//!
//! Use from a test file with `mod jobs_support;` (after `mod support;`).
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

pub const V2023: &str = "application/vnd.atlas.2023-01-01+json";
pub const V2024_05: &str = "application/vnd.atlas.2024-05-30+json";
pub const FINAL: [&str; 3] = ["Successful", "Failed", "Cancelled"];

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_snapex")
}

/// Runs an admin command and parses its `--json` output.
fn admin(args: &[&str], data_dir: &Path, database: Option<&str>) -> Value {
    let mut cmd = Command::new(bin());
    cmd.args(args).arg("--json").arg("--data-dir").arg(data_dir);
    if let Some(db) = database {
        cmd.arg("--database").arg(db);
    }
    let out = cmd.output().expect("run snapex admin command");
    assert!(
        out.status.success(),
        "snapex {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "snapex {args:?}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Writes a deterministic sample dump of about `size` (e.g. "20MiB") into `dir`.
pub fn sample_dump(dir: &Path, size: &str, seed: u64) -> String {
    let out = Command::new(bin())
        .arg("sample")
        .arg(dir)
        .args(["--size", size, "--seed", &seed.to_string()])
        .output()
        .expect("run snapex sample");
    assert!(
        out.status.success(),
        "snapex sample: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.canonicalize().unwrap().display().to_string()
}

/// The data directory (secret key, SQLite unless `database`), an org, a project and the
/// service account's credentials, made with the admin commands before any node starts.
pub struct Deployment {
    /// Kept (not deleted) when the test fails, for its node logs and buckets.
    dir: Option<tempfile::TempDir>,
    pub database: Option<String>,
    pub org_id: String,
    pub group_id: String,
    client_id: String,
    client_secret: String,
}

impl Deployment {
    pub fn new(database: Option<String>) -> Deployment {
        let dir = tempfile::Builder::new()
            .prefix("snapex-jobs-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let data = dir.path().join("data");
        let db = database.as_deref();
        let org = admin(&["orgs", "create", "Acme Corp"], &data, db);
        let org_id = org["id"].as_str().unwrap().to_string();
        let project = admin(
            &["projects", "create", "--org", &org_id, "Data Platform"],
            &data,
            db,
        );
        let group_id = project["id"].as_str().unwrap().to_string();
        let sa = admin(
            &[
                "service-accounts",
                "create",
                "--org",
                &org_id,
                "--project",
                &group_id,
                "--role",
                "GROUP_OWNER",
            ],
            &data,
            db,
        );
        Deployment {
            database,
            org_id,
            group_id,
            client_id: sa["clientId"].as_str().unwrap().to_string(),
            client_secret: sa["clientSecret"].as_str().unwrap().to_string(),
            dir: Some(dir),
        }
    }

    /// The deployment's directory: data dir, bucket roots, node logs.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// The bucket root of node `node_id` (each node gets its own, so that the files a node
    /// wrote can be told apart from another's).
    pub fn bucket_root(&self, node_id: &str) -> PathBuf {
        self.path().join(format!("buckets-{node_id}"))
    }

    /// Starts `snapex serve` as `node_id` with extra flags.
    pub fn start_node(&self, node_id: &str, extra: &[&str]) -> Node {
        let root = self.bucket_root(node_id);
        std::fs::create_dir_all(&root).unwrap();
        let log_path = self.path().join(format!("{node_id}.log"));
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen", "127.0.0.1:0", "--node-id", node_id])
            // The object stores of the tests are emulators on loopback.
            .arg("--allow-insecure-endpoints")
            .arg("--bucket-root")
            .arg(&root)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
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

    /// A client of `node` with a fresh bearer token.
    pub async fn client(&self, node: &Node) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let resp = http
            .post(format!("{}/api/oauth/token", node.url))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        Api {
            http,
            base: Arc::new(Mutex::new(node.url.clone())),
            token: body["access_token"].as_str().unwrap().to_string(),
            group_id: self.group_id.clone(),
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("note: kept {} for inspection", dir.keep().display());
        }
    }
}

/// A `snapex serve` process.
pub struct Node {
    child: Child,
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

/// An HTTP client of the API as the project's service account.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Arc<Mutex<String>>,
    token: String,
    pub group_id: String,
}

impl Api {
    /// Points this client (and its clones) at another node.
    pub fn use_node(&self, node: &Node) {
        *self.base.lock().unwrap() = node.url.clone();
    }

    /// A clone that talks to `node`, independently of this one.
    pub fn for_node(&self, node: &Node) -> Api {
        Api {
            base: Arc::new(Mutex::new(node.url.clone())),
            ..self.clone()
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let base = self.base.lock().unwrap().clone();
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .bearer_auth(&self.token)
            .header("accept", accept);
        if let Some(b) = body {
            req = req.header("content-type", accept).body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        (status, value)
    }

    pub async fn ok(&self, method: &str, path: &str, accept: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, accept, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {value}");
        value
    }

    pub async fn register_cluster(&self, name: &str, rs: &[&str]) -> Value {
        let kind = if rs.len() > 1 {
            "SHARDED"
        } else {
            "REPLICASET"
        };
        self.ok(
            "POST",
            &format!("/api/snapex/v1/groups/{}/clusters", self.group_id),
            "application/json",
            Some(json!({"name": name, "clusterType": kind, "replicaSets": rs})),
        )
        .await
    }

    /// Imports a snapshot whose every replica set reads `dump`.
    pub async fn import_snapshot(
        &self,
        cluster: &str,
        rs: &[&str],
        dump: &str,
        frequency: Option<&str>,
    ) -> Value {
        let parts: Vec<Value> = rs
            .iter()
            .map(|r| json!({"replicaSetName": r, "url": dump}))
            .collect();
        let mut body = json!({"parts": parts, "description": "jobs test"});
        if let Some(f) = frequency {
            body["frequencyType"] = f.into();
            body["snapshotType"] = "scheduled".into();
        }
        self.ok(
            "POST",
            &format!(
                "/api/snapex/v1/groups/{}/clusters/{cluster}/snapshots",
                self.group_id
            ),
            "application/json",
            Some(body),
        )
        .await
    }

    pub async fn filesystem_bucket(&self, name: &str) -> String {
        let b = self
            .ok(
                "POST",
                &format!(
                    "/api/atlas/v2/groups/{}/backup/exportBuckets",
                    self.group_id
                ),
                V2024_05,
                Some(json!({"cloudProvider": "FILESYSTEM", "bucketName": name})),
            )
            .await;
        b["_id"].as_str().unwrap().to_string()
    }

    pub async fn create_export(&self, cluster: &str, snapshot_id: &str, bucket_id: &str) -> Value {
        self.ok(
            "POST",
            &format!(
                "/api/atlas/v2/groups/{}/clusters/{cluster}/backup/exports",
                self.group_id
            ),
            V2023,
            Some(json!({"snapshotId": snapshot_id, "exportBucketId": bucket_id})),
        )
        .await
    }

    pub async fn job(&self, cluster: &str, id: &str) -> Value {
        self.ok(
            "GET",
            &format!(
                "/api/atlas/v2/groups/{}/clusters/{cluster}/backup/exports/{id}",
                self.group_id
            ),
            V2023,
            None,
        )
        .await
    }

    pub async fn job_v1(&self, cluster: &str, id: &str) -> Value {
        self.ok(
            "GET",
            &format!(
                "/api/atlas/v1.0/groups/{}/clusters/{cluster}/backup/exports/{id}",
                self.group_id
            ),
            "application/json",
            None,
        )
        .await
    }

    /// Every job of `cluster`, in one request (one consistent read of the store).
    pub async fn jobs(&self, cluster: &str) -> Vec<Value> {
        let page = self
            .ok(
                "GET",
                &format!(
                    "/api/atlas/v2/groups/{}/clusters/{cluster}/backup/exports?itemsPerPage=500",
                    self.group_id
                ),
                V2023,
                None,
            )
            .await;
        // Only `results`: `totalCount` is a second query, which a job created in between
        // makes differ from the page.
        page["results"].as_array().unwrap().clone()
    }

    pub async fn cancel(&self, cluster: &str, id: &str) -> Value {
        self.ok(
            "POST",
            &format!(
                "/api/snapex/v1/groups/{}/clusters/{cluster}/backup/exports/{id}/cancel",
                self.group_id
            ),
            "application/json",
            None,
        )
        .await
    }

    /// Polls the job until it is final (at most `limit`).
    pub async fn wait_final(&self, cluster: &str, id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(cluster, id).await;
            if FINAL.contains(&job["state"].as_str().unwrap()) {
                return job;
            }
            assert!(
                start.elapsed() < limit,
                "export job {id} did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Replica sets a jobs list shows exporting: one per `InProgress` replica-set job, one per
/// component of an `InProgress` sharded job.
pub fn exporting_replica_sets(jobs: &[Value]) -> usize {
    jobs.iter()
        .filter(|j| j["state"] == "InProgress")
        .map(|j| j["components"].as_array().map_or(1, Vec::len))
        .sum()
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Waits until `cond` holds, polling every 50 ms, for at most `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Helpers shared by every integration test binary (`tests/{api,cli,export,jobs}/main.rs`):
//!
//! - [`atlas`]: the one client of the Atlas API the tests use;
//! - [`deployment`]: the one test deployment (data directory, store, project, service
//!   account) and its nodes, in-process or as `snapex serve` processes;
//! - [`probe`]: the authentication layer alone in front of tiny protected routes;
//! - [`digest`]: an independent client-side HTTP Digest;
//! - [`spec_schema`]: the spec extract's schemas, to check answers against;
//! - [`openapi`]: every API response checked against snapex's own OpenAPI document;
//! - [`gcs`]: our GCS XML-API server (GCS writes), started in-process on first use;
//! - here: the storage backends to run a suite against, the Python interpreter with the
//!   readers' packages, the PostgreSQL server, the shared test data and the built binary.
//!
//! `scripts/test` starts the servers and exports their addresses (see its header). Without
//! them a backend is skipped with a note on stderr, so `cargo test` works on a bare laptop —
//! unless `SNAPEX_TEST_REQUIRE_SERVICES=1`, which `scripts/test` sets: then a missing server is
//! a failure, because a suite that silently skipped S3 would prove nothing about S3.
//!
//! The library items whose paths `src/` reorganisations move (the auth module) are imported
//! here and re-exported, so that such a move is fixed in this file.
//!
//! Use from a binary's `main.rs` with `#[path = "../support/mod.rs"] mod support;`.
#![allow(dead_code)] // each test binary uses a different subset

pub mod atlas;
pub mod deployment;
pub mod digest;
pub mod gcs;
pub mod openapi;
pub mod probe;
pub mod spec_schema;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use snapex::auth::{AuthService, Principal, Role, SecretBox};
use snapex::storage::{self, Location, StorageOptions};

/// Environment variables `scripts/test` exports.
pub const ENV_REQUIRE: &str = "SNAPEX_TEST_REQUIRE_SERVICES";
/// moto: the general S3 backend (`s3`).
pub const ENV_S3_ENDPOINT: &str = "SNAPEX_TEST_S3_ENDPOINT";
/// s3s-fs (`s3_sigv4`): checks SigV4 signatures for real, but cannot store multipart uploads
/// of keys longer than ~120 characters, so it is not in [`test_locations`].
pub const ENV_S3_SIGV4_ENDPOINT: &str = "SNAPEX_TEST_S3_SIGV4_ENDPOINT";
pub const ENV_S3_BUCKET: &str = "SNAPEX_TEST_S3_BUCKET";
pub const ENV_S3_ACCESS_KEY: &str = "SNAPEX_TEST_S3_ACCESS_KEY";
pub const ENV_S3_SECRET_KEY: &str = "SNAPEX_TEST_S3_SECRET_KEY";
/// Read by object_store itself in Azure emulator mode; it cannot be passed as an option.
pub const ENV_AZURITE_URL: &str = "AZURITE_BLOB_STORAGE_URL";
pub const ENV_AZURE_CONTAINER: &str = "SNAPEX_TEST_AZURE_CONTAINER";
/// fake-gcs-server's base URL and bucket: GCS read path only (see [`gcs_location`]).
pub const ENV_GCS_URL: &str = "SNAPEX_TEST_GCS_URL";
pub const ENV_GCS_BUCKET: &str = "SNAPEX_TEST_GCS_BUCKET";
pub const ENV_POSTGRES_URL: &str = "SNAPEX_TEST_POSTGRES_URL";
pub const ENV_PYTHON: &str = "SNAPEX_TEST_PYTHON";

/// Every backend name [`location`] knows, in the order [`test_locations`] returns them.
/// `gcs` is [`gcs::server`], in-process: always there.
pub const BACKENDS: [&str; 5] = ["memory", "local", "s3", "azure", "gcs"];

pub fn services_required() -> bool {
    std::env::var(ENV_REQUIRE).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The values of `vars`, or `None` after reporting (or panicking, when services are required)
/// what is missing for `what`.
fn require_env(what: &str, vars: &[&str]) -> Option<Vec<String>> {
    let values: Vec<Option<String>> = vars
        .iter()
        .map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .collect();
    if values.iter().all(Option::is_some) {
        return Some(values.into_iter().flatten().collect());
    }
    let missing: Vec<&str> = vars
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if services_required() {
        panic!(
            "{what} is required ({ENV_REQUIRE}=1) but {} is not set; run the tests through scripts/test",
            missing.join(", ")
        );
    }
    eprintln!(
        "note: skipping {what}: {} not set (scripts/test sets it)",
        missing.join(", ")
    );
    None
}

/// A name no other test, test process or earlier run uses: prefixes in the shared emulator
/// bucket and memory-store names.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{nanos}-{}-{n}", std::process::id())
}

/// Options that reach the emulators: explicit endpoint and keys for S3, emulator mode for Azure,
/// and few retries so a broken emulator fails a test in seconds, not minutes.
pub fn storage_options() -> StorageOptions {
    StorageOptions {
        s3_endpoint: std::env::var(ENV_S3_ENDPOINT).ok(),
        s3_region: Some("us-east-1".into()),
        s3_access_key_id: std::env::var(ENV_S3_ACCESS_KEY).ok(),
        s3_secret_access_key: std::env::var(ENV_S3_SECRET_KEY).ok(),
        azure_use_emulator: true,
        allow_http: true,
        max_retries: Some(2),
        retry_timeout: Some(Duration::from_secs(20)),
        ..StorageOptions::default()
    }
}

/// [`storage_options`] for one backend: `s3_sigv4` points the S3 endpoint at s3s-fs, `gcs`
/// gives the test service-account key and [`gcs::server`]'s URL (starting it).
pub fn storage_options_for(backend: &str) -> StorageOptions {
    let mut options = storage_options();
    if backend == "s3_sigv4" {
        options.s3_endpoint = std::env::var(ENV_S3_SIGV4_ENDPOINT).ok();
    }
    if backend == "gcs" {
        let server = gcs::server();
        options.gcs_service_account_key = Some(server.key_json().to_string());
        options.gcs_base_url = Some(server.url.clone());
        options.ignore_environment = true;
    }
    options
}

/// The multipart uploads still open under `loc`'s prefix, for the backends whose server state
/// a test can see (`gcs`); `None` for the others.
pub fn open_uploads(backend: &str, loc: &Location) -> Option<Vec<String>> {
    (backend == "gcs").then(|| gcs::server().open_uploads(&format!("{}/", loc.prefix)))
}

/// A fresh, empty location on `backend` (one of [`BACKENDS`]), or `None` when that backend's
/// server is not configured and services are not required.
///
/// - `memory`: a new process-wide `memory://` store;
/// - `local`: a new directory under cargo's per-target temp dir (kept after the test, so a
///   failure can be inspected; `cargo clean` removes it);
/// - `s3` (moto), `s3_sigv4` (s3s-fs), `azure`: a unique prefix in the emulator's
///   bucket/container;
/// - `gcs`: a unique prefix in [`gcs::server`]'s bucket.
pub fn location(backend: &str) -> Option<Location> {
    let url = match backend {
        "memory" => format!("memory://{}/data", unique_name("mem")),
        "local" => {
            let dir = tempfile::Builder::new()
                .prefix("snapex-local-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("create a temp dir")
                .keep();
            dir.to_str().expect("utf-8 temp dir").to_string()
        }
        "s3" | "s3_sigv4" => {
            let endpoint = if backend == "s3" {
                ENV_S3_ENDPOINT
            } else {
                ENV_S3_SIGV4_ENDPOINT
            };
            let vars = [
                endpoint,
                ENV_S3_BUCKET,
                ENV_S3_ACCESS_KEY,
                ENV_S3_SECRET_KEY,
            ];
            let v = require_env(&format!("the {backend} emulator"), &vars)?;
            let url = format!("s3://{}/{}", v[1], unique_name("t"));
            return Some(
                storage::open(&url, &storage_options_for(backend))
                    .unwrap_or_else(|e| panic!("open {url}: {e}")),
            );
        }
        "azure" => {
            let v = require_env("azurite", &[ENV_AZURITE_URL, ENV_AZURE_CONTAINER])?;
            format!("az://{}/{}", v[1], unique_name("t"))
        }
        "gcs" => {
            let url = format!("gs://{}/{}", gcs::BUCKET, unique_name("t"));
            return Some(
                storage::open(&url, &storage_options_for(backend))
                    .unwrap_or_else(|e| panic!("open {url}: {e}")),
            );
        }
        other => panic!("unknown test backend {other}"),
    };
    let loc = storage::open(&url, &storage_options()).unwrap_or_else(|e| panic!("open {url}: {e}"));
    Some(loc)
}

/// One fresh location per available backend: memory, local, s3, azure, gcs.
pub fn test_locations() -> Vec<(&'static str, Location)> {
    BACKENDS
        .iter()
        .filter_map(|b| location(b).map(|loc| (*b, loc)))
        .collect()
}

/// Environment for a child process (the `snapex` binary) so that `from_env` reaches the same
/// emulator as [`location`] does for `backend`. `AZURITE_BLOB_STORAGE_URL` is inherited.
pub fn child_env(backend: &str) -> Vec<(String, String)> {
    let get = |k: &str| std::env::var(k).unwrap_or_default();
    let pairs: Vec<(&str, String)> = match backend {
        "s3" => vec![
            ("AWS_ENDPOINT", get(ENV_S3_ENDPOINT)),
            ("AWS_ACCESS_KEY_ID", get(ENV_S3_ACCESS_KEY)),
            ("AWS_SECRET_ACCESS_KEY", get(ENV_S3_SECRET_KEY)),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ],
        "azure" => vec![("AZURE_STORAGE_USE_EMULATOR", "true".into())],
        // The operator's way to a GCS endpoint: object_store reads every `GOOGLE_*` key.
        "gcs" => {
            let server = gcs::server();
            vec![
                ("GOOGLE_SERVICE_ACCOUNT_KEY", server.key_json().to_string()),
                ("GOOGLE_BASE_URL", server.url.clone()),
                ("GOOGLE_ALLOW_HTTP", "true".into()),
            ]
        }
        _ => vec![],
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A GCS location with a unique prefix in fake-gcs-server's bucket, and a handle to put
/// objects in. fake-gcs-server implements GCS's JSON API but not the XML-API writes that
/// object_store sends, so writes go through [`GcsSeeder::put`] and only object_store's read
/// path (head, get, ranges, list) is tested on GCS.
pub fn gcs_location() -> Option<(Location, GcsSeeder)> {
    let v = require_env("fake-gcs-server", &[ENV_GCS_URL, ENV_GCS_BUCKET])?;
    let (base, bucket) = (v[0].clone(), v[1].clone());
    let key = serde_json::json!({
        "gcs_base_url": base,
        "disable_oauth": true,
        "client_email": "",
        "private_key": "",
        "private_key_id": "",
    });
    let options = StorageOptions {
        gcs_service_account_key: Some(key.to_string()),
        ..storage_options()
    };
    let url = format!("gs://{bucket}/{}", unique_name("t"));
    let loc = storage::open(&url, &options).unwrap_or_else(|e| panic!("open {url}: {e}"));
    Some((loc, GcsSeeder { base, bucket }))
}

/// Puts objects into fake-gcs-server through its JSON upload API.
pub struct GcsSeeder {
    base: String,
    bucket: String,
}

impl GcsSeeder {
    /// Stores `body` under the full object key `key`.
    pub async fn put(&self, key: &str, body: Vec<u8>) {
        let url = format!("{}/upload/storage/v1/b/{}/o", self.base, self.bucket);
        let resp = reqwest::Client::new()
            .post(&url)
            .query(&[("uploadType", "media"), ("name", key)])
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {key} to fake-gcs-server: {e}"));
        assert!(
            resp.status().is_success(),
            "upload {key} to fake-gcs-server: {}",
            resp.status()
        );
    }
}

/// The venv interpreter with pymongo, duckdb and requests (`SNAPEX_TEST_PYTHON`).
pub fn python() -> Option<PathBuf> {
    require_env("the test python (pymongo, duckdb, requests)", &[ENV_PYTHON])
        .map(|v| PathBuf::from(&v[0]))
}

/// `postgres://…` of the test server's `snapex` database (`SNAPEX_TEST_POSTGRES_URL`). Tests
/// that create tables should use [`postgres_database`] instead, to get a database of their own.
pub fn postgres_url() -> Option<String> {
    require_env("postgresql", &[ENV_POSTGRES_URL]).map(|mut v| v.remove(0))
}

/// A new, empty database on the test server (its user may create databases), so that tests
/// running at the same time never see each other's tables. Returns its URL.
pub async fn postgres_database() -> Option<String> {
    use sqlx::Connection;
    let url = postgres_url()?;
    let name = unique_name("snapex_t").replace('-', "_");
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {ENV_POSTGRES_URL}: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
    Some(format!("{base}/{name}"))
}

/// `tests/readers/<name>`.
pub fn reader(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/readers")
        .join(name)
}

/// The shared test data (`mongodump/`, `bson-corpus/`, `atlas-api/`): `SNAPEX_SHARED_DATA`, else
/// `../shared/data` beside the checkout, else the workplace's `/work/shared/data` (a CI clone may
/// live anywhere).
pub fn shared_data() -> PathBuf {
    if let Some(dir) = std::env::var_os("SNAPEX_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    // Canonical: imports refuse paths with `..` segments.
    if let Ok(beside) = beside.canonicalize() {
        return beside;
    }
    PathBuf::from("/work/shared/data")
}

/// `mongo-tools`' own fixtures in the shared data (`mongodump/mongo-tools`).
pub fn mongo_tools() -> PathBuf {
    shared_data().join("mongodump/mongo-tools")
}

/// The built `snapex` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_snapex")
}

/// Writes a deterministic sample dump of about `size` (e.g. "20MiB") into `dir` with `snapex
/// sample`; returns its canonical path.
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

/// Every file under `dir`, recursively, sorted (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
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

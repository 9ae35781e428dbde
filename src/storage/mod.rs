//! Storage URLs → `object_store`: `file:///path` (or a plain local path), `s3://bucket/prefix`,
//! `az://container/prefix`, `gs://bucket/prefix`, and `memory://name/prefix` for tests.
//!
//! [`open`] turns a URL into a [`Location`]: a store, a key prefix inside it, and a printable
//! URL. The store is always the whole bucket (container, directory) and the prefix is kept
//! apart rather than baked into a `PrefixStore`, so the keys that appear in logs, manifests and
//! errors are the real keys a user sees in the bucket.
//!
//! Rules that hold for every scheme:
//! - credentials never come from the URL (a `user:secret@` part is rejected), so
//!   [`Location::url`] is always safe to print;
//! - `.` and `..` segments are rejected in URLs; plain local paths may use them, as a shell would;
//! - [`open`] has no side effects: it never creates a directory or a bucket. A local path that
//!   does not exist yet opens fine (like an empty S3 prefix) and is created by the first write;
//!   [`open_for_write`] creates the local directory up front, so an unwritable destination
//!   fails before any work is done.
//!
//! Every cloud store retries transient errors (connection refused or reset, 5xx, throttling)
//! with exponential backoff and jitter for up to a *budget* of time per request — an object's
//! put, or each part of a multipart upload — and then fails with the store's error, the time
//! spent and the budget (object_store's `RetryError` message); a permanent error (403, 404)
//! fails at once. See [`StorageOptions::retry_config`] for why the budget, not a count, decides.
//!
//! [`faulty::FaultyStore`] wraps a store to inject write failures in tests.

pub mod faulty;
pub mod uploads;

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::{Path, PathPart};
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use percent_encoding::percent_decode_str;

/// How long one request keeps being retried through transient errors when
/// [`StorageOptions::retry_timeout`] is not set: long enough to ride out a store restart or a
/// failover, short enough that a dead endpoint fails the export within minutes.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(120);
/// Where GCS requests go when nothing says otherwise.
pub const GCS_DEFAULT_BASE_URL: &str = "https://storage.googleapis.com";
/// The first wait between retries; later waits grow exponentially, with jitter.
pub const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two retries: a store that is back is found within this.
pub const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where a storage URL points: a store, a prefix inside it, and the URL for messages.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The key prefix inside `store` (empty for the root).
    pub prefix: Path,
    /// The URL as the user gave it (trailing `/` removed), safe to print (never contains secrets).
    pub url: String,
    /// For `file://` locations: the local directory `prefix` maps to, so readers can use
    /// plain file I/O instead of going through the object-store stream.
    pub local_root: Option<PathBuf>,
    /// For stores that can list the multipart uploads in progress (S3): the way to find and
    /// abort those an unfinished export left ([`uploads`]).
    pub pending_uploads: Option<Arc<dyn uploads::PendingUploads>>,
}

impl fmt::Debug for Location {
    // Written by hand so that a store whose Debug output includes its credentials can never
    // leak them through `{:?}` of a Location.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Location")
            .field("url", &self.url)
            .field("store", &format_args!("{}", self.store))
            .field("prefix", &self.prefix.as_ref())
            .field("local_root", &self.local_root)
            .finish()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl Location {
    /// The key of `rel` under this location's prefix. `rel` is split on `/`; empty segments
    /// are ignored. A segment that is not a valid key part (`.`, `..`, control characters) is
    /// percent-encoded rather than interpreted, so `rel` can never escape the prefix; any
    /// other segment is kept exactly as written.
    pub fn path(&self, rel: &str) -> Path {
        Path::from_iter(self.prefix.parts().chain(rel_parts(rel)))
    }

    /// The location of the sub-prefix `rel` (same store), with `url` and `local_root`
    /// extended to match. Segments are treated as in [`Location::path`].
    pub fn child(&self, rel: &str) -> Location {
        let mut url = self.url.trim_end_matches('/').to_string();
        let mut local_root = self.local_root.clone();
        for part in rel_parts(rel) {
            url.push('/');
            url.push_str(part.as_ref());
            if let Some(root) = local_root.as_mut() {
                // LocalFileSystem stores a key part under a file of exactly that name.
                root.push(part.as_ref());
            }
        }
        Location {
            store: self.store.clone(),
            prefix: self.path(rel),
            url,
            local_root,
            pending_uploads: self.pending_uploads.clone(),
        }
    }

    /// The key relative to this location's prefix, or `None` when `path` is not under it.
    /// Handy to print listed objects the way a user thinks of them.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let parts = path.prefix_match(&self.prefix)?;
        let rel: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
        Some(rel.join("/"))
    }

    /// The same prefix and URL over another store, e.g. a [`faulty::FaultyStore`] wrapping
    /// this location's store.
    pub fn with_store(&self, store: Arc<dyn ObjectStore>) -> Location {
        Location {
            store,
            prefix: self.prefix.clone(),
            url: self.url.clone(),
            local_root: self.local_root.clone(),
            pending_uploads: self.pending_uploads.clone(),
        }
    }
}

/// The key parts of a relative path: valid parts as written (`PathPart::from` would
/// percent-encode legal key characters such as `*`, and the key in the bucket would then not
/// be the one the layout names), invalid ones encoded.
fn rel_parts(rel: &str) -> impl Iterator<Item = PathPart<'_>> {
    rel.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| PathPart::parse(s).unwrap_or_else(|_| PathPart::from(s)))
}

/// Connection options for storage URLs; anything not set here comes from the environment
/// (`AWS_*`, `AZURE_*`, `GOOGLE_*`), as `object_store`'s `from_env` builders read it.
#[derive(Clone, Default)]
pub struct StorageOptions {
    /// S3-compatible endpoint (`http://127.0.0.1:9000`); path-style requests are used with it.
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_session_token: Option<String>,
    pub azure_account: Option<String>,
    pub azure_access_key: Option<String>,
    /// Talk to Azurite (`AZURITE_BLOB_STORAGE_URL`, default `http://127.0.0.1:10000`) with its
    /// well-known account unless `azure_account`/`azure_access_key` are given. Also switched on
    /// by `AZURE_STORAGE_USE_EMULATOR=true`.
    pub azure_use_emulator: bool,
    /// A service-account key: the JSON itself, or the path of a JSON file.
    pub gcs_service_account_key: Option<String>,
    /// The GCS endpoint requests go to instead of [`GCS_DEFAULT_BASE_URL`] (`http://127.0.0.1:P`
    /// for a test server). When set it wins over a `gcs_base_url` inside the key; when unset the
    /// key's field (or `GOOGLE_BASE_URL` from the environment) applies, as object_store reads
    /// them — so whoever supplies the key decides the endpoint unless this is set.
    pub gcs_base_url: Option<String>,
    /// Allow plain-HTTP endpoints (emulators on loopback).
    pub allow_http: bool,
    /// A cap on the number of retries of one request; by default none: the budget
    /// ([`StorageOptions::retry_timeout`]) alone decides.
    pub max_retries: Option<usize>,
    /// The retry budget: how long one request keeps being retried through transient errors
    /// (default [`DEFAULT_RETRY_BUDGET`]).
    pub retry_timeout: Option<Duration>,
    /// Take nothing from the process environment: no `AWS_*`, `AZURE_*`, `GOOGLE_*` variable
    /// and no instance credentials are merged in. Set for a tenant's static-key access role,
    /// so that it reaches the store with exactly its own key, secret and token.
    pub ignore_environment: bool,
}

impl fmt::Debug for StorageOptions {
    // By hand, so that secrets never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn redact(v: &Option<String>) -> &'static str {
            if v.is_some() { "<redacted>" } else { "<unset>" }
        }
        f.debug_struct("StorageOptions")
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("s3_secret_access_key", &redact(&self.s3_secret_access_key))
            .field("s3_session_token", &redact(&self.s3_session_token))
            .field("azure_account", &self.azure_account)
            .field("azure_access_key", &redact(&self.azure_access_key))
            .field("azure_use_emulator", &self.azure_use_emulator)
            .field(
                "gcs_service_account_key",
                &redact(&self.gcs_service_account_key),
            )
            .field("gcs_base_url", &self.gcs_base_url)
            .field("allow_http", &self.allow_http)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("ignore_environment", &self.ignore_environment)
            .finish()
    }
}

impl StorageOptions {
    /// The retry budget in force.
    pub fn retry_budget(&self) -> Duration {
        self.retry_timeout.unwrap_or(DEFAULT_RETRY_BUDGET)
    }

    /// object_store gives up at whichever comes first of `max_retries` and `retry_timeout`.
    /// With a count of 5 (what this was) and backoff starting at 100 ms, the five retries were
    /// spent in about a second: a store refusing connections for a little over a second failed
    /// the export although the timeout said two minutes. So unless a cap is asked for, the
    /// count is set past anything the budget can hold (every wait is at least the initial
    /// backoff) and the budget alone decides; waits are capped at [`RETRY_MAX_BACKOFF`] so
    /// that a store that comes back is used within seconds.
    pub(crate) fn retry_config(&self) -> RetryConfig {
        let budget = self.retry_budget();
        let fit = budget.as_millis() / RETRY_INITIAL_BACKOFF.as_millis().max(1) + 1;
        RetryConfig {
            max_retries: self
                .max_retries
                .unwrap_or_else(|| usize::try_from(fit).unwrap_or(usize::MAX)),
            retry_timeout: budget,
            backoff: BackoffConfig {
                init_backoff: RETRY_INITIAL_BACKOFF,
                max_backoff: RETRY_MAX_BACKOFF,
                base: 2.0,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage url {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot open storage url {url}")]
    Open {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot create local directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The kinds of storage a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Local,
    Memory,
    S3,
    Azure,
    Gcs,
}

/// Opens a storage URL or local path for reading or writing, without side effects.
///
/// Accepted forms: a plain path (`dump`, `../x`, `/abs`), `file:///abs/path`,
/// `memory://name/prefix` (process-wide named in-memory stores, so tests and an in-process CLI
/// share them), `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`.
pub fn open(url: &str, options: &StorageOptions) -> Result<Location, StorageError> {
    let parsed = parse(url)?;
    match parsed.scheme {
        Scheme::Local => open_local(url, &parsed.local_path(), false),
        Scheme::Memory => Ok(Location {
            store: memory_store(&parsed.authority),
            prefix: parsed.prefix,
            url: parsed.display,
            local_root: None,
            pending_uploads: None,
        }),
        Scheme::S3 => open_s3(parsed, options),
        Scheme::Azure => open_azure(parsed, options),
        Scheme::Gcs => open_gcs(parsed, options),
    }
}

/// Like [`open`], but for a destination: a local directory is created (with its parents) first,
/// so that a path that cannot be written fails here rather than after the first document.
pub fn open_for_write(url: &str, options: &StorageOptions) -> Result<Location, StorageError> {
    let parsed = parse(url)?;
    if parsed.scheme == Scheme::Local {
        return open_local(url, &parsed.local_path(), true);
    }
    open(url, options)
}

/// The scheme a URL names, after the same validation [`open`] does.
pub fn scheme_of(url: &str) -> Result<Scheme, StorageError> {
    parse(url).map(|p| p.scheme)
}

static MEMORY_STORES: LazyLock<Mutex<HashMap<String, Arc<InMemory>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    // A poisoned lock only means another thread panicked while inserting; the map is still valid.
    let mut stores = MEMORY_STORES.lock().unwrap_or_else(|e| e.into_inner());
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// Drops the process-wide `memory://name` store (its data goes once no Location holds it).
/// Returns whether it existed.
pub fn forget_memory_store(name: &str) -> bool {
    let mut stores = MEMORY_STORES.lock().unwrap_or_else(|e| e.into_inner());
    stores.remove(name).is_some()
}

struct ParsedUrl {
    scheme: Scheme,
    /// Bucket, container or memory-store name; the path for local URLs.
    authority: String,
    prefix: Path,
    /// What [`Location::url`] shows.
    display: String,
}

impl ParsedUrl {
    fn local_path(&self) -> PathBuf {
        PathBuf::from(&self.authority)
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> StorageError {
    StorageError::InvalidUrl {
        url: redact_url(url),
        reason: reason.into(),
    }
}

/// A URL as it may be printed in an error: any `user:password@` part is cut out, because an
/// error message about a URL with embedded credentials must not repeat them.
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://<redacted>@{}", &rest[at + 1..]);
        }
    }
    url.to_string()
}

fn parse(url: &str) -> Result<ParsedUrl, StorageError> {
    if url.trim().is_empty() {
        return Err(invalid(url, "empty url"));
    }
    let Some((scheme, rest)) = split_scheme(url) else {
        // A plain local path. `..` is allowed here: it means what it means in a shell.
        return Ok(ParsedUrl {
            scheme: Scheme::Local,
            authority: url.to_string(),
            prefix: Path::default(),
            display: trim_trailing_slash(url),
        });
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "file" => Scheme::Local,
        "memory" => Scheme::Memory,
        "s3" => Scheme::S3,
        "az" => Scheme::Azure,
        "gs" => Scheme::Gcs,
        other => {
            return Err(invalid(
                url,
                format!(
                    "unknown scheme {other:?} (expected a local path, file://, s3://, az://, gs:// or memory://)"
                ),
            ));
        }
    };
    if rest.contains('?') || rest.contains('#') {
        return Err(invalid(
            url,
            "query strings and fragments are not supported; pass options separately",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(invalid(
            url,
            "credentials must not be part of the url; use options or the environment",
        ));
    }
    let segments = decode_segments(url, path)?;

    if scheme == Scheme::Local {
        if !(authority.is_empty() || authority.eq_ignore_ascii_case("localhost")) {
            return Err(invalid(
                url,
                "a file url must be absolute (file:///abs/path); a host is not allowed",
            ));
        }
        let mut local = PathBuf::from("/");
        local.extend(&segments);
        return Ok(ParsedUrl {
            scheme,
            authority: local.to_string_lossy().into_owned(),
            prefix: Path::default(),
            display: trim_trailing_slash(url),
        });
    }

    validate_authority(url, scheme, authority)?;
    let mut prefix = Path::default();
    for s in &segments {
        let part =
            PathPart::parse(s).map_err(|e| invalid(url, format!("invalid key part: {e}")))?;
        prefix = prefix.join(part);
    }
    let display = if prefix.as_ref().is_empty() {
        format!("{}://{authority}", scheme_name(scheme))
    } else {
        format!("{}://{authority}/{}", scheme_name(scheme), prefix.as_ref())
    };
    Ok(ParsedUrl {
        scheme,
        authority: authority.to_string(),
        prefix,
        display,
    })
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Local => "file",
        Scheme::Memory => "memory",
        Scheme::S3 => "s3",
        Scheme::Azure => "az",
        Scheme::Gcs => "gs",
    }
}

/// `scheme://rest` when `url` starts with an RFC 3986 scheme followed by `://`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some((scheme, rest))
}

fn trim_trailing_slash(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.is_empty() || trimmed.ends_with(':') {
        // "/" or "file:///": keep the root visible.
        url.to_string()
    } else {
        trimmed.to_string()
    }
}

/// Splits a URL path on `/`, percent-decodes each segment, drops empty ones, and rejects
/// `.`/`..` so that no URL can climb out of the bucket or directory it names.
fn decode_segments(url: &str, path: &str) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| invalid(url, format!("segment {raw:?} is not valid utf-8")))?;
        if seg == "." || seg == ".." {
            return Err(invalid(url, "'.' and '..' segments are not allowed"));
        }
        if seg.contains('/') || seg.chars().any(|c| c.is_control()) {
            return Err(invalid(
                url,
                format!("segment {raw:?} decodes to a '/' or a control character"),
            ));
        }
        out.push(seg.into_owned());
    }
    Ok(out)
}

fn validate_authority(url: &str, scheme: Scheme, authority: &str) -> Result<(), StorageError> {
    let what = match scheme {
        Scheme::Azure => "container",
        Scheme::Memory => "store name",
        _ => "bucket",
    };
    if authority.is_empty() {
        return Err(invalid(
            url,
            format!(
                "missing {what} (expected {}://{what}/prefix)",
                scheme_name(scheme)
            ),
        ));
    }
    let ok_chars = authority
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !ok_chars {
        return Err(invalid(
            url,
            format!("{what} {authority:?} may only contain letters, digits, '-', '.' and '_'"),
        ));
    }
    if scheme == Scheme::Azure && !(3..=63).contains(&authority.len()) {
        return Err(invalid(
            url,
            "an azure container name has 3 to 63 characters",
        ));
    }
    Ok(())
}

fn open_local(url: &str, path: &std::path::Path, create: bool) -> Result<Location, StorageError> {
    if create {
        std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let absolute = std::path::absolute(path).map_err(|e| invalid(url, e.to_string()))?;
    // Root the store at the deepest directory on the path that exists: the directory itself
    // when it exists, the parent of a file (a mongodump archive), the nearest existing
    // ancestor of a destination not created yet. The rest becomes the key prefix, so the
    // first write creates the missing directories and reads of a missing path report "not
    // found". While the path exists the kernel resolves `..` (symlinks included); past that,
    // `..` can only be resolved by name.
    let mut root = PathBuf::new();
    let mut rest: Vec<String> = Vec::new();
    for component in absolute.components() {
        if rest.is_empty() {
            let candidate = root.join(component);
            if candidate.is_dir() {
                root = candidate;
                continue;
            }
        }
        match component {
            Component::ParentDir => {
                if rest.pop().is_none() {
                    return Err(invalid(url, "'..' climbs out of an existing directory"));
                }
            }
            Component::CurDir => {}
            Component::Normal(name) => rest.push(name.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => root.push(component),
        }
    }
    let store = LocalFileSystem::new_with_prefix(&root).map_err(|source| StorageError::Open {
        url: url.to_string(),
        source,
    })?;
    let mut local_root = std::fs::canonicalize(&root).unwrap_or(root);
    let mut prefix = Path::default();
    for seg in &rest {
        let part = PathPart::parse(seg).map_err(|e| invalid(url, e.to_string()))?;
        local_root.push(seg);
        prefix = prefix.join(part);
    }
    Ok(Location {
        store: Arc::new(store),
        prefix,
        url: trim_trailing_slash(url),
        local_root: Some(local_root),
        pending_uploads: None,
    })
}

fn open_s3(parsed: ParsedUrl, options: &StorageOptions) -> Result<Location, StorageError> {
    let base = if options.ignore_environment {
        AmazonS3Builder::new()
    } else {
        AmazonS3Builder::from_env()
    };
    let mut builder = base
        .with_bucket_name(&parsed.authority)
        .with_retry(options.retry_config());
    if let Some(endpoint) = &options.s3_endpoint {
        // S3-compatible servers (and emulators on loopback) are addressed path-style: a
        // virtual-hosted bucket would need DNS for `bucket.127.0.0.1`.
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = &options.s3_region {
        builder = builder.with_region(region);
    }
    match (&options.s3_access_key_id, &options.s3_secret_access_key) {
        (Some(key), Some(secret)) => {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        (None, None) => {}
        _ => {
            return Err(invalid(
                &parsed.display,
                "an s3 access key id and secret access key must be given together",
            ));
        }
    }
    if let Some(token) = &options.s3_session_token {
        builder = builder.with_token(token);
    }
    if options.allow_http {
        builder = builder.with_allow_http(true);
    }
    let region = builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    let store = Arc::new(builder.build().map_err(|source| StorageError::Open {
        url: parsed.display.clone(),
        source,
    })?);
    // Where ListMultipartUploads goes: path style, as the store's own requests (a bucket name
    // with dots would not match the TLS certificate of a virtual host).
    let bucket_url = match endpoint {
        Some(endpoint) => format!("{}/{}", endpoint.trim_end_matches('/'), parsed.authority),
        None => format!("https://s3.{region}.amazonaws.com/{}", parsed.authority),
    };
    let pending = uploads::S3Uploads {
        store: store.clone(),
        bucket_url,
        region,
        http: UPLOADS_HTTP.clone(),
    };
    Ok(Location {
        store,
        prefix: parsed.prefix,
        url: parsed.display,
        local_root: None,
        pending_uploads: Some(Arc::new(pending)),
    })
}

/// The HTTP client of [`uploads::S3Uploads`], shared: building one per opened bucket would set
/// up TLS each time.
static UPLOADS_HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
});

fn open_azure(parsed: ParsedUrl, options: &StorageOptions) -> Result<Location, StorageError> {
    let base = if options.ignore_environment {
        MicrosoftAzureBuilder::new()
    } else {
        MicrosoftAzureBuilder::from_env()
    };
    let mut builder = base
        .with_container_name(&parsed.authority)
        .with_retry(options.retry_config());
    if options.azure_use_emulator {
        // In emulator mode the endpoint comes only from AZURITE_BLOB_STORAGE_URL.
        builder = builder.with_use_emulator(true);
    }
    if let Some(account) = &options.azure_account {
        builder = builder.with_account(account);
    }
    if let Some(key) = &options.azure_access_key {
        builder = builder.with_access_key(key);
    }
    if options.allow_http {
        builder = builder.with_allow_http(true);
    }
    let store = builder.build().map_err(|source| StorageError::Open {
        url: parsed.display.clone(),
        source,
    })?;
    Ok(Location {
        store: Arc::new(store),
        prefix: parsed.prefix,
        url: parsed.display,
        local_root: None,
        pending_uploads: None,
    })
}

fn open_gcs(parsed: ParsedUrl, options: &StorageOptions) -> Result<Location, StorageError> {
    let base = if options.ignore_environment {
        GoogleCloudStorageBuilder::new()
    } else {
        GoogleCloudStorageBuilder::from_env()
    };
    let mut builder = base
        .with_bucket_name(&parsed.authority)
        .with_retry(options.retry_config());
    if let Some(key) = &options.gcs_service_account_key {
        builder = if key.trim_start().starts_with('{') {
            builder.with_service_account_key(key)
        } else {
            builder.with_service_account_path(key)
        };
    }
    // One endpoint for the store and for listing its open uploads: the option, else the
    // environment's `GOOGLE_BASE_URL`, else the inline key's own field, else Google's.
    let base_url = options
        .gcs_base_url
        .clone()
        .or_else(|| builder.get_config_value(&GoogleConfigKey::BaseUrl))
        .or_else(|| {
            let key = options.gcs_service_account_key.as_deref()?;
            let key: serde_json::Value = serde_json::from_str(key).ok()?;
            key.get("gcs_base_url")?.as_str().map(str::to_string)
        })
        .unwrap_or_else(|| GCS_DEFAULT_BASE_URL.to_string());
    let base_url = base_url.trim_end_matches('/').to_string();
    builder = builder.with_base_url(&base_url);
    if options.allow_http {
        // Through the config key, not `with_client_options`, which would replace whatever
        // client settings `from_env` picked up.
        builder = builder.with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), "true");
    }
    let store = Arc::new(builder.build().map_err(|source| StorageError::Open {
        url: parsed.display.clone(),
        source,
    })?);
    // The store percent-encodes the bucket in its own paths; a bucket name is letters, digits,
    // '-', '.' and '_' (checked above), which mean the same either way.
    let pending = uploads::GcsUploads {
        store: store.clone(),
        bucket_url: format!("{base_url}/{}", parsed.authority),
        http: UPLOADS_HTTP.clone(),
    };
    Ok(Location {
        store,
        prefix: parsed.prefix,
        url: parsed.display,
        local_root: None,
        pending_uploads: Some(Arc::new(pending)),
    })
}

#[cfg(test)]
mod tests;

//! Storage URLs → `object_store`: `file:///path` (or a plain local path), `s3://bucket/prefix`,
//! `az://container/prefix`, `gs://bucket/prefix`, and `memory://` for tests.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

/// Where a storage URL points: a store, a prefix inside it, and the URL for messages.
#[derive(Clone, Debug)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The key prefix inside `store` (empty for the root).
    pub prefix: Path,
    /// The URL as the user gave it, safe to print (never contains secrets).
    pub url: String,
    /// For `file://` locations: the local directory `prefix` maps to, so readers can use
    /// plain file I/O instead of going through the object-store stream.
    pub local_root: Option<PathBuf>,
}

/// Connection options for storage URLs; anything not set here comes from the environment
/// (`AWS_*`, `AZURE_*`, `GOOGLE_*`), as `object_store`'s `from_env` builders read it.
#[derive(Clone, Debug, Default)]
pub struct StorageOptions {
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_session_token: Option<String>,
    pub azure_account: Option<String>,
    pub azure_access_key: Option<String>,
    pub azure_use_emulator: bool,
    pub gcs_service_account_key: Option<String>,
    /// Allow plain-HTTP endpoints (emulators on loopback).
    pub allow_http: bool,
    /// Bounded retries for transient store errors.
    pub max_retries: Option<usize>,
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
}

/// Opens a storage URL or local path.
pub fn open(url: &str, options: &StorageOptions) -> Result<Location, StorageError> {
    let _ = options;
    let path = url.strip_prefix("file://").unwrap_or(url);
    if url.contains("://") && !url.starts_with("file://") {
        return Err(StorageError::InvalidUrl {
            url: url.to_string(),
            reason: "scheme not supported yet".into(),
        });
    }
    let root = PathBuf::from(path);
    std::fs::create_dir_all(&root).map_err(|e| StorageError::InvalidUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(&root).map_err(|source| {
        StorageError::Open {
            url: url.to_string(),
            source,
        }
    })?;
    Ok(Location {
        store: Arc::new(store),
        prefix: Path::default(),
        url: url.to_string(),
        local_root: Some(root),
    })
}

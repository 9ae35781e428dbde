//! The export pipeline: one snapshot → Atlas's bucket layout (PRODUCT.md §2).
//!
//! A snapshot exports replica set by replica set ([`export_replica_set`], all replica sets of a
//! sharded snapshot at once); [`finish_export`] then writes `.manifest.json` and, last,
//! `.complete`. The split lets a job engine run the shards of one job on different nodes and
//! finish once every shard has reported its [`ReplicaSetSummary`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::extjson::Format;
use crate::snapshot::SnapshotSource;
use crate::storage::Location;

mod complete;
pub mod gzip;
pub mod leftovers;
pub mod namespaces;
pub mod parquet;
mod replica_set;
pub mod schema;
mod upload;
pub mod verify;
mod workers;

pub use complete::{COMPLETE_FILE, MANIFEST_FILE, PERMISSION_CHECK_FILE, write_permission_check};
pub use namespaces::{NamespaceFilter, Pattern, PatternError};

/// What the data files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Atlas's layout: gzipped Extended JSON lines (`<rs>.<n>.json.gz`).
    #[default]
    Json,
    /// Parquet with an inferred schema (`<rs>.<n>.parquet`), a snapex extension.
    Parquet,
}

impl DataFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Json => "json",
            DataFormat::Parquet => "parquet",
        }
    }
}

impl std::str::FromStr for DataFormat {
    type Err = UnknownDataFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(DataFormat::Json),
            "parquet" => Ok(DataFormat::Parquet),
            _ => Err(UnknownDataFormat(s.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("unknown export format {0:?}, expected \"json\" or \"parquet\"")]
pub struct UnknownDataFormat(pub String);

/// How files are written.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Extended JSON flavour of JSON data files (JSON columns of Parquet files are always
    /// canonical).
    pub format: Format,
    /// JSON lines or Parquet.
    pub data_format: DataFormat,
    /// Row groups and compression of Parquet files.
    pub parquet: parquet::ParquetOptions,
    /// A new data file starts when the current one would exceed this many bytes of JSON
    /// (Parquet: once the file reaches this many bytes).
    pub chunk_size: u64,
    /// gzip level 0–9.
    pub compression_level: u32,
    /// Skip (and count) invalid documents, and invalid time-series buckets, instead of failing
    /// the export.
    pub skip_invalid: bool,
    /// Nice value of the export's worker threads: 0 for a one-shot export, higher in a server
    /// so API requests win the CPU (see [`workers`]).
    pub worker_nice: i32,
    /// Which collections are exported (`--ns-include`/`--ns-exclude`); everything by default.
    pub namespaces: NamespaceFilter,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: Format::Canonical,
            data_format: DataFormat::Json,
            parquet: parquet::ParquetOptions::default(),
            chunk_size: 128 * 1024 * 1024,
            compression_level: 6,
            skip_invalid: false,
            worker_nice: 0,
            namespaces: NamespaceFilter::default(),
        }
    }
}

/// Where an export goes: the bucket and the export prefix inside it
/// (`exported_snapshots/<org>/<project>/<cluster>/<snapDate>/<ts>`, no leading slash).
#[derive(Debug, Clone)]
pub struct ExportTarget {
    pub bucket: Location,
    pub prefix: String,
}

/// The fields of `.complete`.
#[derive(Debug, Clone, Default)]
pub struct CompleteInfo {
    pub org_id: String,
    pub org_name: String,
    pub group_id: String,
    pub group_name: String,
    pub cluster_unique_id: String,
    pub cluster_name: String,
    pub snapshot_initiation_date: DateTime<Utc>,
    pub labels: Vec<(String, String)>,
    pub custom_data: Vec<(String, String)>,
}

/// Receives progress; called from worker threads, so keep it cheap.
pub trait Progress: Send + Sync {
    /// The number of collections the replica set will export, known once its source is listed.
    fn collections_planned(&self, _replica_set: &str, _total: usize) {}
    fn collection_started(&self, _replica_set: &str, _namespace: &str, _bson_bytes: Option<u64>) {}
    /// Bytes of source BSON and documents consumed since the last call.
    fn advanced(&self, _replica_set: &str, _bson_bytes: u64, _documents: u64) {}
    fn collection_finished(&self, _replica_set: &str, _namespace: &str) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// One object of an export, as listed in `.manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestObject {
    /// Key relative to the export prefix.
    pub key: String,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub documents: u64,
    /// Time-series data files: the buckets whose first measurement is in this file (its
    /// `documents` are measurements). Absent for other objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u64>,
    pub replica_set: String,
    /// `db.collection`.
    pub collection: String,
    pub sha256: String,
}

/// What one replica set's export produced; serializable so a job engine can persist it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetSummary {
    pub replica_set: String,
    pub objects: Vec<ManifestObject>,
    pub exported_collections: u64,
    /// Documents written; for time-series collections, measurements.
    pub documents: u64,
    pub bson_bytes: u64,
    pub skipped_invalid_documents: u64,
    /// Time-series buckets unpacked into measurements.
    #[serde(default)]
    pub buckets: u64,
    /// Invalid time-series buckets skipped (`skip_invalid`).
    #[serde(default)]
    pub skipped_invalid_buckets: u64,
    /// Namespaces not exported with a reason (time-series buckets without their collection's
    /// metadata, …), for the manifest and warnings.
    pub skipped_collections: Vec<SkippedCollection>,
    /// Namespaces the export's namespace filter left out (`db.coll`), for the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_collections: Vec<String>,
    /// The inferred schema of each exported collection, for `.schema.json`.
    #[serde(default)]
    pub schemas: Vec<CollectionSchema>,
    /// The data format, for `.schema.json`.
    #[serde(default)]
    pub data_format: DataFormat,
    /// The oplog the part holds and that was not applied (PBM backups), for the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oplog: Option<crate::snapshot::OplogNote>,
}

/// One collection's schema statistics from one replica set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionSchema {
    pub db: String,
    pub name: String,
    pub stats: schema::Stats,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SkippedCollection {
    pub replica_set: String,
    pub collection: String,
    pub reason: String,
}

/// The result of a whole export.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSummary {
    pub prefix: String,
    pub replica_sets: Vec<ReplicaSetSummary>,
    pub total_files: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export cancelled")]
    Cancelled,
    #[error("replica set {replica_set}: {message}")]
    Failed {
        replica_set: String,
        message: String,
    },
    /// The bucket refused `exported_snapshots/.permissioncheck`: nothing was exported.
    #[error("permission check failed: cannot write {PERMISSION_CHECK_FILE}")]
    PermissionCheck(#[source] object_store::Error),
    /// Writing `.manifest.json` or `.complete` failed: the data is there, the export is not
    /// complete.
    #[error("cannot write {object}")]
    Finish {
        object: String,
        #[source]
        source: object_store::Error,
    },
    /// The export's owner declined to complete it (a job whose lease was lost).
    #[error("not completed")]
    NotCompleted(#[source] GateError),
}

/// Asked once every replica set has finished, before `.manifest.json` and `.complete` are
/// written: a job engine checks that it still owns the job, so that a node whose job was
/// already failed elsewhere never marks it complete.
#[async_trait::async_trait]
pub trait CompletionGate: Send + Sync {
    /// An error stops the export before anything export-wide is written.
    async fn may_complete(&self) -> Result<(), GateError>;
}

/// Why a [`CompletionGate`] refused: whatever its owner says.
pub type GateError = Box<dyn std::error::Error + Send + Sync>;

/// The gate of a one-shot export: nobody else can own it.
pub struct AlwaysComplete;

#[async_trait::async_trait]
impl CompletionGate for AlwaysComplete {
    async fn may_complete(&self) -> Result<(), GateError> {
        Ok(())
    }
}

/// Writes `exported_snapshots/.permissioncheck` (empty) at the bucket root, as Atlas does when
/// an export starts: a bucket that cannot take it fails the export before any data moves.
pub async fn begin_export(target: &ExportTarget) -> Result<(), ExportError> {
    complete::write_permission_check(&target.bucket)
        .await
        .map_err(ExportError::PermissionCheck)
}

/// Exports one replica set's part into `target`. Writes data files and `metadata.json`
/// files only; nothing is written for the export as a whole.
pub async fn export_replica_set(
    replica_set: &str,
    source: Arc<SnapshotSource>,
    target: &ExportTarget,
    options: &ExportOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ReplicaSetSummary, ExportError> {
    let oplog = source.info.oplog.clone();
    let source = options.namespaces.apply(source);
    let mut summary = match options.data_format {
        DataFormat::Json => {
            replica_set::run(replica_set, source, target, options, progress, cancel).await?
        }
        DataFormat::Parquet => {
            parquet::run(replica_set, source, target, options, progress, cancel).await?
        }
    };
    summary.oplog = oplog;
    summary.data_format = options.data_format;
    Ok(summary)
}

/// Writes `.manifest.json` and then, last, `.complete` for an export whose replica sets all
/// finished. The manifest records `namespaces`, the filter the replica sets were exported
/// with; `.complete` keeps exactly Atlas's fields.
pub async fn finish_export(
    target: &ExportTarget,
    complete: &CompleteInfo,
    namespaces: &NamespaceFilter,
    summaries: &[ReplicaSetSummary],
) -> Result<ExportSummary, ExportError> {
    complete::finish(target, complete, namespaces, summaries).await
}

/// A whole export in one process: the permission check, every replica set at once (the shards
/// of a sharded snapshot export together), then the manifest and `.complete`.
pub async fn run_export(
    parts: Vec<(String, Arc<SnapshotSource>)>,
    target: &ExportTarget,
    complete: &CompleteInfo,
    options: &ExportOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ExportSummary, ExportError> {
    run_export_gated(
        parts,
        target,
        complete,
        options,
        progress,
        cancel,
        &AlwaysComplete,
    )
    .await
}

/// [`run_export`] with a [`CompletionGate`] asked before the export-wide objects are written:
/// the one orchestration of an export, for `snapex export` and for the job engine alike.
pub async fn run_export_gated(
    parts: Vec<(String, Arc<SnapshotSource>)>,
    target: &ExportTarget,
    complete: &CompleteInfo,
    options: &ExportOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
    gate: &dyn CompletionGate,
) -> Result<ExportSummary, ExportError> {
    begin_export(target).await?;
    // One failing replica set stops the others: the export is failed either way.
    let stop = cancel.child_token();
    let runs = parts.into_iter().map(|(name, source)| {
        let progress = progress.clone();
        let stop = stop.clone();
        async move {
            let result =
                export_replica_set(&name, source, target, options, progress, stop.clone()).await;
            if result.is_err() {
                stop.cancel();
            }
            result
        }
    });
    let results = futures::future::join_all(runs).await;
    if cancel.is_cancelled() {
        return Err(ExportError::Cancelled);
    }
    let mut summaries = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok(summary) => summaries.push(summary),
            // A replica set stopped because another failed reports `Cancelled`; keep the cause.
            Err(ExportError::Cancelled) => {}
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    // Every object is finished: an upload still open under the prefix is one nobody uses (a
    // retried CreateMultipartUpload whose first attempt succeeded late).
    leftovers::clean(&target.bucket.child(&target.prefix)).await;
    crate::pause::at(crate::pause::Phase::AfterData).await;
    gate.may_complete()
        .await
        .map_err(ExportError::NotCompleted)?;
    finish_export(target, complete, &options.namespaces, &summaries).await
}

/// The export prefix of PRODUCT.md §2: `exported_snapshots/<org>/<project>/<cluster>/<yyyy-MM-ddTHHmm>/<unix seconds>`.
pub fn export_prefix(
    org: &str,
    project: &str,
    cluster: &str,
    snapshot_time: DateTime<Utc>,
    job_created_at: DateTime<Utc>,
) -> String {
    format!(
        "exported_snapshots/{org}/{project}/{cluster}/{}/{}",
        snapshot_time.format("%Y-%m-%dT%H%M"),
        job_created_at.timestamp()
    )
}

//! Export jobs: creating one (the refusals of PRODUCT.md §3 and §5, the export prefix, one
//! active job per snapshot), cancelling one, and the auto-export decision. A created job is
//! `Queued`; the job engine (`crate::jobs`) runs it.

use super::schedules::{self, Schedule};
use super::{Deployment, check_id};
use crate::export::NamespaceFilter;
use crate::export::parquet::{ParquetCompression, ParquetOptions};
use crate::export::{DataFormat, ExportOptions};
use crate::store::{
    Cluster, ExportJob, JobNamespaces, Label, NewExportJob, Project, Snapshot, SnapshotStatus,
    SnapshotType, StoreError,
};

/// How many later seconds a job's prefix timestamp may move to avoid another job's prefix.
const PREFIX_RETRIES: u32 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ExportJobError {
    #[error(transparent)]
    Invalid(#[from] super::Invalid),
    #[error("no snapshot with ID {snapshot_id} exists in cluster {cluster_name}")]
    SnapshotNotFound {
        snapshot_id: String,
        cluster_name: String,
    },
    #[error("no export bucket with ID {bucket_id} exists")]
    BucketNotFound { bucket_id: String },
    #[error("snapshot {snapshot_id} is a fallback snapshot and cannot be exported")]
    FallbackSnapshot { snapshot_id: String },
    #[error("snapshot {snapshot_id} is {status}, not completed")]
    IncompleteSnapshot {
        snapshot_id: String,
        status: SnapshotStatus,
    },
    #[error("snapshot {snapshot_id} already has an export job that is queued or in progress")]
    AlreadyActive { snapshot_id: String },
    #[error("no export job with ID {job_id} exists")]
    JobNotFound { job_id: String },
    #[error(transparent)]
    Schedule(#[from] super::schedules::ScheduleError),
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// What to export: a snapshot of the cluster, to a bucket of its project.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub snapshot_id: String,
    pub export_bucket_id: String,
    pub custom_data: Vec<Label>,
    /// Which collections to export (the `/api/snapex/v1` extension; empty: everything).
    pub namespaces: JobNamespaces,
    /// The snapex extension's format fields; the Atlas endpoints always ask for JSON.
    pub format: FormatRequest,
}

/// The rule for a job's namespace filter: every pattern parses (mongorestore's wildcard
/// syntax, see [`crate::export::namespaces`]); the first bad one is refused naming its list,
/// its position and the pattern itself.
pub fn namespace_filter(namespaces: &JobNamespaces) -> Result<NamespaceFilter, super::Invalid> {
    for (list, patterns) in [
        ("include", &namespaces.include),
        ("exclude", &namespaces.exclude),
    ] {
        if patterns.len() > crate::export::namespaces::MAX_PATTERNS {
            return Err(super::Invalid::attribute(
                format!("namespaces.{list}"),
                format!(
                    "at most {} patterns",
                    crate::export::namespaces::MAX_PATTERNS
                ),
            ));
        }
        for (index, pattern) in patterns.iter().enumerate() {
            crate::export::Pattern::parse(pattern).map_err(|e| {
                super::Invalid::attribute(format!("namespaces.{list}[{index}]"), e.to_string())
            })?;
        }
    }
    NamespaceFilter::parse(&namespaces.include, &namespaces.exclude)
        .map_err(|e| super::Invalid::attribute("namespaces", e.to_string()))
}

/// The format fields of `POST /api/snapex/v1/.../backup/exports`, as the client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatRequest {
    /// `json` (the default) or `parquet`.
    pub format: Option<String>,
    /// Parquet only: rows per row group, 1 to [`MAX_ROW_GROUP_ROWS`].
    pub row_group_rows: Option<u64>,
    /// Parquet only: `zstd` (the default) or `snappy`.
    pub compression: Option<String>,
}

/// The largest row group a job may ask for (a row group is also cut at 64 MiB buffered).
pub const MAX_ROW_GROUP_ROWS: u64 = 10_000_000;

/// A job's stored format: what `export_jobs.export_format` holds for a Parquet job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredFormat {
    pub format: DataFormat,
    pub row_group_rows: u64,
    pub compression: String,
}

impl FormatRequest {
    /// The checked format: `None` for JSON (stored as NULL, Atlas's layout).
    fn check(&self) -> Result<Option<StoredFormat>, super::Invalid> {
        let format = match self.format.as_deref() {
            None => DataFormat::Json,
            Some(name) => name
                .parse::<DataFormat>()
                .map_err(|_| super::Invalid::enumeration("format", name, &["json", "parquet"]))?,
        };
        if format == DataFormat::Json {
            for (field, given) in [
                ("parquet.rowGroupRows", self.row_group_rows.is_some()),
                ("parquet.compression", self.compression.is_some()),
            ] {
                if given {
                    return Err(super::Invalid::attribute(
                        field,
                        "applies only to \"format\": \"parquet\"",
                    ));
                }
            }
            return Ok(None);
        }
        let defaults = ParquetOptions::default();
        let row_group_rows = self
            .row_group_rows
            .unwrap_or(defaults.row_group_rows as u64);
        if !(1..=MAX_ROW_GROUP_ROWS).contains(&row_group_rows) {
            return Err(super::Invalid::attribute(
                "parquet.rowGroupRows",
                format!("must be between 1 and {MAX_ROW_GROUP_ROWS}"),
            ));
        }
        let compression = match self.compression.as_deref() {
            None => defaults.compression,
            Some(name) => name.parse::<ParquetCompression>().map_err(|_| {
                super::Invalid::enumeration("parquet.compression", name, &["zstd", "snappy"])
            })?,
        };
        Ok(Some(StoredFormat {
            format,
            row_group_rows,
            compression: compression.as_str().to_string(),
        }))
    }
}

/// Sets the data format of `options` from a job's stored format (NULL: JSON). A stored value
/// that no longer parses is the store's corruption, reported as such.
pub fn apply_format(job: &ExportJob, options: &mut ExportOptions) -> Result<(), StoreError> {
    let Some(text) = &job.export_format else {
        options.data_format = DataFormat::Json;
        return Ok(());
    };
    let corrupt = |message: String| StoreError::Corrupt {
        column: "export_jobs.export_format".into(),
        message,
    };
    let stored: StoredFormat = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    options.data_format = stored.format;
    options.parquet = ParquetOptions {
        row_group_rows: usize::try_from(stored.row_group_rows).unwrap_or(usize::MAX),
        compression: stored
            .compression
            .parse()
            .map_err(|e: crate::export::parquet::UnknownCompression| corrupt(e.to_string()))?,
    };
    Ok(())
}

/// Creates a `Queued` export job of a snapshot of `cluster` to a bucket of `project`. The
/// caller has been authorized (or is the auto-export policy, which has no caller).
pub async fn create(
    deployment: &Deployment,
    project: &Project,
    cluster: &Cluster,
    request: JobRequest,
) -> Result<ExportJob, ExportJobError> {
    check_id("snapshotId", &request.snapshot_id)?;
    check_id("exportBucketId", &request.export_bucket_id)?;
    namespace_filter(&request.namespaces)?;
    let export_format = request
        .format
        .check()?
        .map(|f| serde_json::to_string(&f).unwrap_or_default());
    let store = &deployment.store;
    let snapshot = store
        .get_snapshot(&cluster.id, &request.snapshot_id)
        .await?
        .ok_or_else(|| ExportJobError::SnapshotNotFound {
            snapshot_id: request.snapshot_id.clone(),
            cluster_name: cluster.name.clone(),
        })?;
    store
        .get_export_bucket(&project.id, &request.export_bucket_id)
        .await?
        .ok_or_else(|| ExportJobError::BucketNotFound {
            bucket_id: request.export_bucket_id.clone(),
        })?;
    check_exportable(&snapshot)?;
    let schedule = schedules::current(deployment, cluster).await?;
    let (org_part, project_part) = prefix_owner(deployment, project, &schedule).await?;
    let mut created_at = crate::store::now();
    let mut attempts = 0;
    let job = loop {
        let prefix = crate::export::export_prefix(
            &org_part,
            &project_part,
            &cluster.name,
            snapshot.created_at,
            created_at,
        );
        let result = store
            .create_export_job(NewExportJob {
                group_id: project.id.clone(),
                cluster_id: cluster.id.clone(),
                cluster_name: cluster.name.clone(),
                snapshot_id: snapshot.id.clone(),
                export_bucket_id: request.export_bucket_id.clone(),
                created_at,
                custom_data: request.custom_data.clone(),
                prefix,
                replica_sets: snapshot
                    .parts
                    .iter()
                    .map(|p| p.replica_set_name.clone())
                    .collect(),
                namespaces: request.namespaces.clone(),
                export_format: export_format.clone(),
            })
            .await;
        match result {
            Ok(job) => break job,
            // Same snapshot minute and same second as another job of this bucket: the
            // layout's timestamp moves on a second so no two jobs share a prefix.
            Err(StoreError::PrefixTaken { .. }) if attempts < PREFIX_RETRIES => {
                attempts += 1;
                created_at += chrono::Duration::seconds(1);
            }
            Err(StoreError::Duplicate { .. }) => {
                return Err(ExportJobError::AlreadyActive {
                    snapshot_id: snapshot.id.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    };
    deployment
        .metrics
        .jobs_created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    deployment.wakeup.notify_one();
    Ok(job)
}

/// Fallback snapshots and snapshots that are not `completed` cannot be exported.
fn check_exportable(snapshot: &Snapshot) -> Result<(), ExportJobError> {
    if snapshot.snapshot_type == SnapshotType::Fallback {
        return Err(ExportJobError::FallbackSnapshot {
            snapshot_id: snapshot.id.clone(),
        });
    }
    if snapshot.status != SnapshotStatus::Completed {
        return Err(ExportJobError::IncompleteSnapshot {
            snapshot_id: snapshot.id.clone(),
            status: snapshot.status,
        });
    }
    Ok(())
}

/// The `<org>/<project>` segments of the prefix: ids, or names when the cluster's schedule
/// sets `useOrgAndGroupNamesInExportPrefix` (PRODUCT.md §2).
async fn prefix_owner(
    deployment: &Deployment,
    project: &Project,
    schedule: &Schedule,
) -> Result<(String, String), StoreError> {
    if !schedule.use_org_and_group_names_in_export_prefix {
        return Ok((project.org_id.clone(), project.id.clone()));
    }
    let org = deployment.store.get_org(&project.org_id).await?;
    Ok((
        schedules::prefix_segment(
            org.as_ref()
                .map(|o| o.name.as_str())
                .unwrap_or(&project.org_id),
            &project.org_id,
        ),
        schedules::prefix_segment(&project.name, &project.id),
    ))
}

/// The job `job_id` of the cluster.
pub async fn get(
    deployment: &Deployment,
    group_id: &str,
    cluster_name: &str,
    job_id: &str,
) -> Result<ExportJob, ExportJobError> {
    check_id("exportId", job_id)?;
    deployment
        .store
        .get_export_job(group_id, cluster_name, job_id)
        .await?
        .ok_or_else(|| ExportJobError::JobNotFound {
            job_id: job_id.to_string(),
        })
}

/// Asks the job's runner to stop it (seen at its next heartbeat; a queued job ends at once).
/// A finished job is returned as it is.
pub async fn cancel(deployment: &Deployment, job: ExportJob) -> Result<ExportJob, ExportJobError> {
    if job.state.is_final() {
        return Ok(job);
    }
    let cancelled = deployment
        .store
        .request_cancel(&job.id)
        .await?
        .ok_or(ExportJobError::JobNotFound { job_id: job.id })?;
    // Recorded for every node's heartbeat; a job running here stops now.
    deployment.local_jobs.cancel(&cancelled.id);
    Ok(cancelled)
}

/// PRODUCT.md §3 auto-export: a completed snapshot whose frequency matches the schedule's
/// `export.frequencyType` gets an export job to the policy's bucket when `autoExportEnabled`.
/// `None` when the policy does not apply; the job, or why it was refused, otherwise.
pub async fn auto_export(
    deployment: &Deployment,
    project: &Project,
    cluster: &Cluster,
    snapshot: &Snapshot,
) -> Option<Result<ExportJob, ExportJobError>> {
    let schedule = match schedules::current(deployment, cluster).await {
        Ok(s) => s,
        Err(e) => return Some(Err(e.into())),
    };
    let bucket = schedule.auto_export_bucket_for(snapshot)?;
    Some(
        create(
            deployment,
            project,
            cluster,
            JobRequest {
                snapshot_id: snapshot.id.clone(),
                export_bucket_id: bucket.to_string(),
                custom_data: Vec::new(),
                namespaces: JobNamespaces::default(),
                format: FormatRequest::default(),
            },
        )
        .await,
    )
}

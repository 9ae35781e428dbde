//! Snapshots: importing one (one readable part per replica set of the cluster; its size, mongod
//! version and time read from the parts), its retention, and the guards on deleting one.
//! Deleting a snapshot record never deletes files snapex did not write.

use chrono::{DateTime, Utc};

use super::export_jobs::{self, ExportJobError};
use super::schedules::{self, ScheduleError, add_retention};
use super::{Deployment, Invalid};
use crate::snapshot::SourceError;
use crate::storage::StorageError;
use crate::store::{
    Cluster, FrequencyType, NewSnapshot, Project, RetentionUnit, Snapshot, SnapshotPart,
    SnapshotStatus, SnapshotType, StoreError,
};

/// Longest `retentionInDays` accepted (100 years).
pub const MAX_RETENTION_DAYS: i64 = 36_500;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A part the project may not read; deliberately without detail (see `service::sources`).
    #[error("the snapshot source of {field} is not allowed for this project")]
    SourceNotAllowed { field: String },
    /// A part's access role cannot be used.
    #[error("the access role of {field} cannot be used")]
    PartRole {
        field: String,
        #[source]
        source: super::access_roles::AccessRoleError,
    },
    /// A part's URL names no store snapex can open.
    #[error("invalid attribute {field}")]
    PartUrl {
        field: String,
        #[source]
        source: StorageError,
    },
    /// A part's store opened but its contents are not a snapshot snapex can read.
    #[error("cannot read the snapshot part of replica set {replica_set}")]
    SourceUnreadable {
        replica_set: String,
        url: String,
        field: String,
        #[source]
        source: SourceError,
    },
    #[error("no snapshot with ID {snapshot_id} exists in cluster {cluster_name}")]
    NotFound {
        snapshot_id: String,
        cluster_name: String,
    },
    #[error("snapshot {snapshot_id} is protected by doNotDelete")]
    DoNotDelete { snapshot_id: String },
    #[error("reading a snapshot part was interrupted")]
    Task(#[source] tokio::task::JoinError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// One part of an import: a replica set and where its dump is.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = SnapshotImportPart)]
pub struct PartRequest {
    /// The replica set (shard or config server) the dump is of: one of the cluster's.
    pub replica_set_name: String,
    /// Where the dump is: a path, `file:///…`, `s3://…`, `az://…` or `gs://…`.
    pub url: String,
    /// The project's access role to read a remote part with.
    pub role_id: Option<String>,
}

/// An import as a front end asks for it (the body of the import extension).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = SnapshotImport)]
pub struct ImportRequest {
    /// One part per replica set of the cluster.
    pub parts: Vec<PartRequest>,
    /// When the snapshot was taken (default: the dump's own time, else now).
    pub created_at: Option<DateTime<Utc>>,
    /// `onDemand` (default), `scheduled` or `fallback`.
    pub snapshot_type: Option<String>,
    /// `ondemand` (default), `hourly`, `daily`, `weekly`, `monthly` or `yearly`.
    pub frequency_type: Option<String>,
    pub description: Option<String>,
    /// Expiry in days from now (1 to 36500); without it a scheduled snapshot follows the
    /// policy item of its frequency and any other never expires.
    pub retention_in_days: Option<u32>,
}

/// What an import did: the snapshot, and the auto-export job it triggered (or why not).
#[derive(Debug)]
pub struct Imported {
    pub snapshot: Snapshot,
    pub auto_export: Option<Result<crate::store::ExportJob, ExportJobError>>,
}

/// `retentionInDays` counted from now.
fn retention_in_days(field: &str, days: i64) -> Result<DateTime<Utc>, Invalid> {
    let invalid = || Invalid::attribute(field, "expected 1 to 36500 days");
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(invalid());
    }
    add_retention(crate::store::now(), RetentionUnit::Days, days).ok_or_else(invalid)
}

/// Records a completed snapshot of `cluster` from one readable part per replica set, then
/// applies the auto-export policy (a refusal there never fails the import).
pub async fn import(
    deployment: &Deployment,
    project: &Project,
    cluster: &Cluster,
    request: ImportRequest,
) -> Result<Imported, SnapshotError> {
    check_parts(cluster, &request.parts)?;
    let snapshot_type = match request.snapshot_type.as_deref() {
        None => SnapshotType::OnDemand,
        Some(t) => SnapshotType::parse(t).ok_or_else(|| {
            Invalid::attribute("snapshotType", "expected onDemand, scheduled or fallback")
        })?,
    };
    let frequency_type = match request.frequency_type.as_deref() {
        None => FrequencyType::OnDemand,
        Some(f) => FrequencyType::parse(f).ok_or_else(|| {
            Invalid::attribute(
                "frequencyType",
                "expected ondemand, hourly, daily, weekly, monthly or yearly",
            )
        })?,
    };
    let explicit_expiry = request
        .retention_in_days
        .map(|d| retention_in_days("retentionInDays", i64::from(d)))
        .transpose()?;
    let (parts, taken_at) = read_parts(deployment, &cluster.group_id, request.parts).await?;
    let created_at = request
        .created_at
        .or(taken_at)
        .unwrap_or_else(crate::store::now);
    let mongod_version = parts.iter().find_map(|p| p.mongod_version.clone());
    // Retention: `retentionInDays` from now; otherwise a scheduled snapshot follows the policy
    // item of its frequency, from its createdAt (Atlas's rule); otherwise it never expires.
    let (expires_at, policy_item_id) = match explicit_expiry {
        Some(at) => (Some(at), None),
        None if snapshot_type == SnapshotType::Scheduled => {
            let schedule = schedules::current(deployment, cluster).await?;
            match schedule.retention_for(frequency_type) {
                Some(item) => (
                    add_retention(created_at, item.retention_unit, item.retention_value),
                    Some(item.id.clone()),
                ),
                None => (None, None),
            }
        }
        None => (None, None),
    };
    let new = NewSnapshot {
        status: SnapshotStatus::Completed,
        snapshot_type,
        frequency_type,
        description: request.description,
        created_at,
        expires_at,
        mongod_version,
        parts,
        policy_item_id,
        owns_files: false,
    };
    let snapshot = deployment.store.create_snapshot(cluster, new).await?;
    let auto_export = export_jobs::auto_export(deployment, project, cluster, &snapshot).await;
    match &auto_export {
        Some(Ok(job)) => {
            tracing::info!(job_id = %job.id, snapshot_id = %snapshot.id, "auto-export job created")
        }
        Some(Err(e)) => {
            tracing::warn!(snapshot_id = %snapshot.id, error = %e, "auto-export refused")
        }
        None => {}
    }
    Ok(Imported {
        snapshot,
        auto_export,
    })
}

/// One part per replica set of the cluster, no more, no less.
fn check_parts(cluster: &Cluster, parts: &[PartRequest]) -> Result<(), Invalid> {
    for (i, part) in parts.iter().enumerate() {
        if !cluster.replica_sets.contains(&part.replica_set_name) {
            return Err(Invalid::attribute(
                format!("parts[{i}].replicaSetName"),
                format!(
                    "cluster {} has no replica set {}",
                    cluster.name, part.replica_set_name
                ),
            ));
        }
        if parts[..i]
            .iter()
            .any(|p| p.replica_set_name == part.replica_set_name)
        {
            return Err(Invalid::attribute(
                format!("parts[{i}].replicaSetName"),
                "duplicate replica set",
            ));
        }
    }
    if let Some(missing) = cluster
        .replica_sets
        .iter()
        .find(|rs| !parts.iter().any(|p| &p.replica_set_name == *rs))
    {
        return Err(Invalid::attribute(
            "parts",
            format!("missing a part for replica set {missing}"),
        ));
    }
    Ok(())
}

/// Opens every part to check it is readable and to read its size, mongod version and time.
async fn read_parts(
    deployment: &Deployment,
    group_id: &str,
    requested: Vec<PartRequest>,
) -> Result<(Vec<SnapshotPart>, Option<DateTime<Utc>>), SnapshotError> {
    let mut parts = Vec::new();
    let mut taken_at = None;
    for (i, part) in requested.into_iter().enumerate() {
        let PartRequest {
            replica_set_name,
            url,
            role_id,
        } = part;
        let field = format!("parts[{i}].url");
        let location = super::sources::open_part(deployment, group_id, &url, role_id.as_deref())
            .await
            .map_err(|e| part_error(&field, e))?;
        // Opening a source reads and parses its metadata: CPU and blocking I/O, so it runs on
        // a blocking thread of its own.
        let handle = tokio::runtime::Handle::current();
        let opened = tokio::task::spawn_blocking(move || {
            handle
                .block_on(crate::snapshot::SnapshotSource::open(location))
                .map(|s| s.info)
        })
        .await
        .map_err(SnapshotError::Task)?;
        let info = opened.map_err(|source| SnapshotError::SourceUnreadable {
            replica_set: replica_set_name.clone(),
            url: url.clone(),
            field: field.clone(),
            source,
        })?;
        taken_at = taken_at.max(info.taken_at);
        parts.push(SnapshotPart {
            replica_set_name,
            url,
            role_id,
            storage_size_bytes: info.total_bytes,
            mongod_version: info.mongod_version,
        });
    }
    Ok((parts, taken_at))
}

fn part_error(field: &str, e: super::sources::PartError) -> SnapshotError {
    use super::sources::PartError;
    let field = field.to_string();
    match e {
        PartError::Refused(_) => SnapshotError::SourceNotAllowed { field },
        PartError::Storage(source) => SnapshotError::PartUrl { field, source },
        PartError::Role(source) => SnapshotError::PartRole { field, source },
        PartError::Store(e) => SnapshotError::Store(e),
    }
}

/// The snapshot `snapshot_id` of the cluster.
pub async fn get(
    deployment: &Deployment,
    cluster: &Cluster,
    snapshot_id: &str,
) -> Result<Snapshot, SnapshotError> {
    super::check_id("snapshotId", snapshot_id)?;
    deployment
        .store
        .get_snapshot(&cluster.id, snapshot_id)
        .await?
        .ok_or_else(|| SnapshotError::NotFound {
            snapshot_id: snapshot_id.to_string(),
            cluster_name: cluster.name.clone(),
        })
}

/// The member `member_id` of one of the cluster's sharded snapshots (a shard's or the config
/// server's snapshot, as Atlas lists them in `snapshotIds`): the snapshot and the part's index.
pub async fn get_member(
    deployment: &Deployment,
    cluster: &Cluster,
    member_id: &str,
) -> Result<(Snapshot, usize), SnapshotError> {
    super::check_id("snapshotId", member_id)?;
    deployment
        .store
        .find_snapshot_member(&cluster.id, member_id)
        .await?
        .ok_or_else(|| SnapshotError::NotFound {
            snapshot_id: member_id.to_string(),
            cluster_name: cluster.name.clone(),
        })
}

/// A retention change: at most one way of setting the expiry per request (Atlas's
/// `retentionUnit`/`retentionValue` from the snapshot's `createdAt`, our `retentionInDays`
/// from now, or `expiresAt`), and `doNotDelete`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = BackupSnapshotRetention)]
pub struct RetentionChange {
    /// `DAYS`, `WEEKS`, `MONTHS` or `YEARS` (any case), with `retentionValue`: counted from
    /// the snapshot's `createdAt`.
    pub retention_unit: Option<String>,
    pub retention_value: Option<i64>,
    /// snapex: days from now (1 to 36500).
    pub retention_in_days: Option<i64>,
    /// The new expiry (in the future).
    pub expires_at: Option<DateTime<Utc>>,
    pub do_not_delete: Option<bool>,
    /// Read-only, sent back by clients that echo a GET: accepted and ignored.
    #[serde(default, rename = "links")]
    pub _links: Option<Vec<serde_json::Value>>,
}

/// Changes a snapshot's retention. A retention set by hand detaches the snapshot from its
/// policy item, so a later `updateSnapshots` of the schedule does not undo it.
pub async fn change_retention(
    deployment: &Deployment,
    cluster: &Cluster,
    snapshot: &Snapshot,
    change: RetentionChange,
) -> Result<Snapshot, SnapshotError> {
    let ways = [
        change.expires_at.is_some(),
        change.retention_in_days.is_some(),
        change.retention_unit.is_some() || change.retention_value.is_some(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        return Err(Invalid::attribute(
            "retentionValue",
            "give one of expiresAt, retentionInDays or retentionUnit with retentionValue",
        )
        .into());
    }
    let expires_at = match (
        change.retention_unit.as_deref(),
        change.retention_value,
        change.retention_in_days,
        change.expires_at,
    ) {
        (_, _, _, Some(at)) => {
            if at <= crate::store::now() {
                return Err(Invalid::attribute("expiresAt", "must be in the future").into());
            }
            Some(at)
        }
        (_, _, Some(days), None) => Some(retention_in_days("retentionInDays", days)?),
        (Some(unit_text), Some(value), None, None) => {
            let unit = RetentionUnit::parse_any_case(unit_text).ok_or_else(|| Invalid::Enum {
                field: "retentionUnit".into(),
                value: unit_text.to_string(),
                allowed: "DAYS, WEEKS, MONTHS, YEARS".into(),
            })?;
            if !(1..=MAX_RETENTION_DAYS).contains(&value) {
                return Err(Invalid::attribute(
                    "retentionValue",
                    "must be a positive number of units",
                )
                .into());
            }
            Some(
                add_retention(snapshot.created_at, unit, value).ok_or_else(|| {
                    Invalid::attribute("retentionValue", "the expiry date is out of range")
                })?,
            )
        }
        (None, None, None, None) => None,
        (Some(_), None, ..) => {
            return Err(Invalid::attribute("retentionValue", "required with retentionUnit").into());
        }
        _ => {
            return Err(Invalid::attribute("retentionUnit", "required with retentionValue").into());
        }
    };
    let store = &deployment.store;
    if let Some(at) = expires_at {
        store
            .set_snapshot_expiry(&cluster.id, &snapshot.id, Some(at), None)
            .await?;
    }
    store
        .update_snapshot_retention(&cluster.id, &snapshot.id, None, change.do_not_delete)
        .await?
        .ok_or_else(|| SnapshotError::NotFound {
            snapshot_id: snapshot.id.clone(),
            cluster_name: cluster.name.clone(),
        })
}

/// Deletes a snapshot's record, refused for one marked `doNotDelete`. Only the record goes:
/// imported parts are the user's files.
pub async fn delete(
    deployment: &Deployment,
    cluster: &Cluster,
    snapshot: &Snapshot,
) -> Result<(), SnapshotError> {
    if snapshot.do_not_delete {
        return Err(SnapshotError::DoNotDelete {
            snapshot_id: snapshot.id.clone(),
        });
    }
    deployment
        .store
        .delete_snapshot(&cluster.id, &snapshot.id)
        .await?;
    Ok(())
}

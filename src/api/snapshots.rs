//! Snapshots: imported through `POST /api/snapex/v1/groups/{groupId}/clusters/{clusterName}/snapshots`
//! (each part opened to check it is readable and to read its size and mongod version), read,
//! patched and deleted through Atlas's paths, with the sharded variants and the legacy v1.0
//! GET. Deleting a snapshot record never deletes files snapex did not write.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::{ONLY_2023, Served};
use super::{ApiError, AppState, Ctx, check_id, iso};
use crate::auth::{Principal, Role};
use crate::store::{Cluster, ClusterType, NewSnapshot, Snapshot, SnapshotPart};

pub fn routes() -> Router<AppState> {
    let base = "/api/atlas/v2/groups/{group_id}/clusters/{cluster_name}/backup/snapshots";
    Router::new()
        .route(
            "/api/snapex/v1/groups/{group_id}/clusters/{cluster_name}/snapshots",
            axum::routing::post(import),
        )
        .route(base, get(list).post(take_on_demand))
        .route(&format!("{base}/shardedClusters"), get(list_sharded))
        .route(
            &format!("{base}/shardedCluster/{{snapshot_id}}"),
            get(get_sharded).delete(delete_sharded),
        )
        .route(
            &format!("{base}/{{snapshot_id}}"),
            get(get_one).patch(patch_one).delete(delete_one),
        )
        .route(
            "/api/atlas/v1.0/groups/{group_id}/clusters/{cluster_name}/snapshots/{snapshot_id}",
            get(get_legacy),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImportPart {
    replica_set_name: String,
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImportSnapshot {
    parts: Vec<ImportPart>,
    created_at: Option<DateTime<Utc>>,
    snapshot_type: Option<String>,
    frequency_type: Option<String>,
    description: Option<String>,
    retention_in_days: Option<u32>,
}

/// `BackupSnapshotRetention` (`retentionUnit` DAYS/WEEKS/MONTHS/YEARS, any case, counted from
/// the snapshot's `createdAt` as in Atlas) plus our `retentionInDays` (counted from now, as on
/// import), `expiresAt` and `doNotDelete`. At most one way of setting the expiry per request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchSnapshot {
    retention_unit: Option<String>,
    retention_value: Option<i64>,
    retention_in_days: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    do_not_delete: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    links: Option<Vec<Value>>,
}

/// Longest `retentionInDays` accepted (100 years).
const MAX_RETENTION_DAYS: i64 = 36_500;

fn retention_in_days(field: &str, days: i64) -> Result<DateTime<Utc>, ApiError> {
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(invalid(field, "expected 1 to 36500 days"));
    }
    super::schedule::add_retention(crate::store::now(), "days", days)
        .ok_or_else(|| invalid(field, "expected 1 to 36500 days"))
}

fn invalid(field: &str, description: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_ATTRIBUTE",
        format!("Invalid attribute {field} specified: {description}."),
    )
    .with_parameters([field.to_string()])
    .with_field(field, description)
}

fn snapshot_not_found(id: &str, cluster: &str) -> ApiError {
    ApiError::not_found(
        "SNAPSHOT_NOT_FOUND",
        format!("No snapshot with ID {id} exists in cluster {cluster}."),
    )
    .with_parameters([id.to_string(), cluster.to_string()])
}

fn links(ctx: &Ctx, s: &Snapshot, sharded: bool) -> Value {
    let kind = if sharded { "shardedCluster/" } else { "" };
    json!([
        {"href": ctx.url(&format!("/api/atlas/v2/groups/{}/clusters/{}/backup/snapshots/{kind}{}", s.group_id, s.cluster_name, s.id)), "rel": "self"},
        {"href": ctx.url(&format!("/api/atlas/v2/groups/{}/clusters/{}", s.group_id, s.cluster_name)), "rel": "https://cloud.mongodb.com/cluster"},
    ])
}

fn common(ctx: &Ctx, s: &Snapshot, sharded: bool) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("createdAt".into(), iso(s.created_at).into());
    if let Some(d) = &s.description {
        m.insert("description".into(), d.clone().into());
    }
    if let Some(e) = s.expires_at {
        m.insert("expiresAt".into(), iso(e).into());
    }
    m.insert("frequencyType".into(), s.frequency_type.clone().into());
    m.insert("id".into(), s.id.clone().into());
    m.insert("links".into(), links(ctx, s, sharded));
    if let Some(v) = &s.mongod_version {
        m.insert("mongodVersion".into(), v.clone().into());
    }
    m.insert(
        "policyItems".into(),
        json!(s.policy_item_id.iter().collect::<Vec<_>>()),
    );
    m.insert("snapshotType".into(), s.snapshot_type.clone().into());
    m.insert("status".into(), s.status.clone().into());
    m.insert("storageSizeBytes".into(), s.storage_size_bytes.into());
    m
}

/// A replica-set snapshot in Atlas's shape (`DiskBackupReplicaSet`).
pub fn replica_set_json(ctx: &Ctx, s: &Snapshot) -> Value {
    let mut m = common(ctx, s, false);
    m.insert("copyRegions".into(), json!([]));
    let rs = s
        .parts
        .first()
        .map(|p| p.replica_set_name.clone())
        .unwrap_or_default();
    m.insert("replicaSetName".into(), rs.into());
    m.insert("type".into(), "replicaSet".into());
    Value::Object(m)
}

/// The spec's member `cloudProvider` (required, AWS/AZURE/GCP) from where the part lives. A
/// local part has no cloud; AWS is reported for it because the enum has no better value.
fn provider_of(url: &str) -> &'static str {
    match crate::storage::scheme_of(url) {
        Ok(crate::storage::Scheme::Azure) => "AZURE",
        Ok(crate::storage::Scheme::Gcs) => "GCP",
        _ => "AWS",
    }
}

/// A sharded-cluster snapshot in Atlas's shape (`DiskBackupShardedClusterSnapshot`).
pub fn sharded_json(ctx: &Ctx, s: &Snapshot) -> Value {
    let mut m = common(ctx, s, true);
    m.insert(
        "members".into(),
        s.parts
            .iter()
            .map(|p| {
                json!({"cloudProvider": provider_of(&p.url), "id": s.id, "replicaSetName": p.replica_set_name})
            })
            .collect::<Vec<_>>()
            .into(),
    );
    m.insert("snapshotIds".into(), json!([s.id]));
    m.insert("type".into(), "shardedCluster".into());
    Value::Object(m)
}

fn snapshot_json(ctx: &Ctx, cluster: &Cluster, s: &Snapshot) -> Value {
    match cluster.cluster_type {
        ClusterType::Replicaset => replica_set_json(ctx, s),
        ClusterType::Sharded => sharded_json(ctx, s),
    }
}

async fn import(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<ImportSnapshot>,
) -> Result<Reply, ApiError> {
    let (project, cluster) = super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupBackupCreator,
    )
    .await?;
    // One part per replica set of the cluster, no more, no less.
    for (i, part) in body.parts.iter().enumerate() {
        if !cluster.replica_sets.contains(&part.replica_set_name) {
            return Err(invalid(
                &format!("parts[{i}].replicaSetName"),
                &format!(
                    "cluster {} has no replica set {}",
                    cluster.name, part.replica_set_name
                ),
            ));
        }
        if body.parts[..i]
            .iter()
            .any(|p| p.replica_set_name == part.replica_set_name)
        {
            return Err(invalid(
                &format!("parts[{i}].replicaSetName"),
                "duplicate replica set",
            ));
        }
    }
    if let Some(missing) = cluster
        .replica_sets
        .iter()
        .find(|rs| !body.parts.iter().any(|p| &p.replica_set_name == *rs))
    {
        return Err(invalid(
            "parts",
            &format!("missing a part for replica set {missing}"),
        ));
    }
    let snapshot_type = body.snapshot_type.unwrap_or_else(|| "onDemand".into());
    if !["onDemand", "scheduled", "fallback"].contains(&snapshot_type.as_str()) {
        return Err(invalid(
            "snapshotType",
            "expected onDemand, scheduled or fallback",
        ));
    }
    let frequency_type = body.frequency_type.unwrap_or_else(|| "ondemand".into());
    if !["ondemand", "hourly", "daily", "weekly", "monthly", "yearly"]
        .contains(&frequency_type.as_str())
    {
        return Err(invalid(
            "frequencyType",
            "expected ondemand, hourly, daily, weekly, monthly or yearly",
        ));
    }
    let explicit_expiry = body
        .retention_in_days
        .map(|d| retention_in_days("retentionInDays", i64::from(d)))
        .transpose()?;
    let requested: Vec<(String, String)> = body
        .parts
        .iter()
        .map(|p| (p.replica_set_name.clone(), p.url.clone()))
        .collect();
    let (parts, taken_at) = read_parts(requested, state.config.storage.clone()).await?;
    let created_at = body
        .created_at
        .or(taken_at)
        .unwrap_or_else(crate::store::now);
    let mongod_version = parts.iter().find_map(|p| p.mongod_version.clone());
    // Retention: `retentionInDays` from now; otherwise a scheduled snapshot follows the policy
    // item of its frequency, from its createdAt (Atlas's rule); otherwise it never expires.
    let (expires_at, policy_item_id) = match explicit_expiry {
        Some(at) => (Some(at), None),
        None if snapshot_type == "scheduled" => {
            let schedule = state.store.get_backup_schedule(&cluster.id).await?;
            match schedule
                .as_ref()
                .and_then(|s| super::schedule::policy_retention(&s.document, &frequency_type))
            {
                Some((item_id, unit, value)) => (
                    super::schedule::add_retention(created_at, &unit, value),
                    Some(item_id),
                ),
                None => (None, None),
            }
        }
        None => (None, None),
    };
    let new = NewSnapshot {
        status: "completed".into(),
        snapshot_type,
        frequency_type,
        description: body.description,
        created_at,
        expires_at,
        mongod_version,
        parts,
        policy_item_id,
        owns_files: false,
    };
    let snapshot = state.store.create_snapshot(&cluster, new).await?;
    auto_export(&state, &project, &cluster, &snapshot).await;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        snapshot_json(&ctx, &cluster, &snapshot),
    ))
}

/// PRODUCT.md §3 auto-export: a completed snapshot whose frequency matches the schedule's
/// `export.frequencyType` gets an export job to the policy's bucket when `autoExportEnabled`.
/// A refusal is logged, never a failure of the import.
async fn auto_export(
    state: &AppState,
    project: &crate::store::Project,
    cluster: &Cluster,
    snapshot: &Snapshot,
) {
    let schedule = match state.store.get_backup_schedule(&cluster.id).await {
        Ok(Some(s)) => s.document,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(cluster = %cluster.name, error = %e, "cannot read the backup schedule");
            return;
        }
    };
    let enabled = schedule
        .get("autoExportEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let frequency = schedule
        .pointer("/export/frequencyType")
        .and_then(Value::as_str);
    let bucket = schedule
        .pointer("/export/exportBucketId")
        .and_then(Value::as_str);
    let (true, Some(frequency), Some(bucket)) = (enabled, frequency, bucket) else {
        return;
    };
    if snapshot.status != "completed" || frequency != snapshot.frequency_type {
        return;
    }
    match super::export_jobs::create_for(state, project, cluster, &snapshot.id, bucket, Vec::new())
        .await
    {
        Ok(job) => {
            tracing::info!(job_id = %job.id, snapshot_id = %snapshot.id, "auto-export job created")
        }
        Err(e) => tracing::warn!(snapshot_id = %snapshot.id, error = %e, "auto-export refused"),
    }
}

/// Opens every part to check
/// it is readable and to read its size, mongod version and time.
async fn read_parts(
    requested: Vec<(String, String)>,
    options: crate::storage::StorageOptions,
) -> Result<(Vec<SnapshotPart>, Option<DateTime<Utc>>), ApiError> {
    let mut parts = Vec::new();
    let mut taken_at = None;
    for (i, (replica_set_name, url)) in requested.into_iter().enumerate() {
        let field = format!("parts[{i}].url");
        let location =
            crate::storage::open(&url, &options).map_err(|e| invalid(&field, &e.to_string()))?;
        // SnapshotSource::open's future is not Send, so it runs on a blocking thread of its own.
        let handle = tokio::runtime::Handle::current();
        let opened = tokio::task::spawn_blocking(move || {
            handle
                .block_on(crate::snapshot::SnapshotSource::open(location))
                .map(|s| s.info)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(ApiError::internal)?;
        let info = opened.map_err(|e| {
            ApiError::bad_request(
                "SNAPSHOT_SOURCE_UNREADABLE",
                format!("Cannot read the snapshot part of replica set {replica_set_name}: {e}."),
            )
            .with_parameters([replica_set_name.clone(), url.clone()])
            .with_field(field.clone(), e)
        })?;
        taken_at = taken_at.max(info.taken_at);
        parts.push(SnapshotPart {
            replica_set_name,
            url,
            storage_size_bytes: info.total_bytes,
            mongod_version: info.mongod_version,
        });
    }
    Ok((parts, taken_at))
}

async fn take_on_demand(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    ctx.version(ONLY_2023)?;
    super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupBackupCreator,
    )
    .await?;
    Err(ApiError::bad_request(
        "ON_DEMAND_SNAPSHOT_NOT_SUPPORTED",
        format!(
            "Cluster {cluster_name} has no live source; import snapshots through /api/snapex/v1/groups/{group_id}/clusters/{cluster_name}/snapshots."
        ),
    )
    .with_parameters([cluster_name]))
}

async fn list_of(
    state: &AppState,
    ctx: &Ctx,
    cluster: &Cluster,
    sharded: bool,
) -> Result<Value, ApiError> {
    let wanted = if sharded {
        ClusterType::Sharded
    } else {
        ClusterType::Replicaset
    };
    let (snapshots, total) = if cluster.cluster_type == wanted {
        state
            .store
            .list_snapshots(&cluster.id, ctx.query.page)
            .await?
    } else {
        (Vec::new(), 0)
    };
    let results = snapshots
        .iter()
        .map(|s| {
            if sharded {
                sharded_json(ctx, s)
            } else {
                replica_set_json(ctx, s)
            }
        })
        .collect();
    Ok(super::pagination::page_body(
        &ctx.self_url(),
        &ctx.query,
        results,
        total,
    ))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    list_reply(&state, &principal, ctx, &group_id, &cluster_name, false).await
}

async fn list_sharded(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    list_reply(&state, &principal, ctx, &group_id, &cluster_name, true).await
}

/// The replica-set and sharded lists differ only in the shape of their items.
async fn list_reply(
    state: &AppState,
    principal: &Principal,
    ctx: Ctx,
    group_id: &str,
    cluster_name: &str,
    sharded: bool,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (_, cluster) = super::cluster_for(
        state,
        principal,
        group_id,
        cluster_name,
        Role::GroupReadOnly,
    )
    .await?;
    let body = list_of(state, &ctx, &cluster, sharded).await?;
    Ok(Reply::ok(served, ctx.query.format, body))
}

async fn find(
    state: &AppState,
    principal: &Principal,
    group_id: &str,
    cluster_name: &str,
    snapshot_id: &str,
    role: Role,
) -> Result<(Cluster, Snapshot), ApiError> {
    let (_, cluster) = super::cluster_for(state, principal, group_id, cluster_name, role).await?;
    check_id("snapshotId", snapshot_id)?;
    let snapshot = state
        .store
        .get_snapshot(&cluster.id, snapshot_id)
        .await?
        .ok_or_else(|| snapshot_not_found(snapshot_id, cluster_name))?;
    Ok((cluster, snapshot))
}

async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, snapshot_id)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (cluster, s) = find(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        &snapshot_id,
        Role::GroupReadOnly,
    )
    .await?;
    if cluster.cluster_type == ClusterType::Sharded {
        return Err(snapshot_not_found(&snapshot_id, &cluster_name));
    }
    Ok(Reply::ok(
        served,
        ctx.query.format,
        replica_set_json(&ctx, &s),
    ))
}

async fn get_sharded(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, snapshot_id)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (cluster, s) = find(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        &snapshot_id,
        Role::GroupReadOnly,
    )
    .await?;
    if cluster.cluster_type != ClusterType::Sharded {
        return Err(snapshot_not_found(&snapshot_id, &cluster_name));
    }
    Ok(Reply::ok(served, ctx.query.format, sharded_json(&ctx, &s)))
}

async fn patch_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, snapshot_id)): Path<(String, String, String)>,
    Body(body): Body<PatchSnapshot>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (cluster, s) = find(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        &snapshot_id,
        Role::GroupBackupManager,
    )
    .await?;
    let ways = [
        body.expires_at.is_some(),
        body.retention_in_days.is_some(),
        body.retention_unit.is_some() || body.retention_value.is_some(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        return Err(invalid(
            "retentionValue",
            "give one of expiresAt, retentionInDays or retentionUnit with retentionValue",
        ));
    }
    let expires_at = match (
        body.retention_unit.as_deref(),
        body.retention_value,
        body.retention_in_days,
        body.expires_at,
    ) {
        (_, _, _, Some(at)) => {
            if at <= crate::store::now() {
                return Err(invalid("expiresAt", "must be in the future"));
            }
            Some(at)
        }
        (_, _, Some(days), None) => Some(retention_in_days("retentionInDays", days)?),
        (Some(unit), Some(value), None, None) => {
            if !["days", "weeks", "months", "years"].contains(&unit.to_ascii_lowercase().as_str()) {
                return Err(ApiError::bad_request(
                    "INVALID_ENUM_VALUE",
                    format!("An invalid enumeration value {unit} was specified for retentionUnit: expected one of DAYS, WEEKS, MONTHS, YEARS."),
                )
                .with_parameters([unit.to_string(), "retentionUnit".to_string()])
                .with_field("retentionUnit", "expected one of DAYS, WEEKS, MONTHS, YEARS"));
            }
            if !(1..=MAX_RETENTION_DAYS).contains(&value) {
                return Err(invalid(
                    "retentionValue",
                    "must be a positive number of units",
                ));
            }
            Some(
                super::schedule::add_retention(s.created_at, unit, value)
                    .ok_or_else(|| invalid("retentionValue", "the expiry date is out of range"))?,
            )
        }
        (None, None, None, None) => None,
        (Some(_), None, ..) => {
            return Err(invalid("retentionValue", "required with retentionUnit"));
        }
        _ => {
            return Err(invalid("retentionUnit", "required with retentionValue"));
        }
    };
    // A retention set by hand detaches the snapshot from its policy item, so a later
    // `updateSnapshots` of the schedule does not undo it.
    if let Some(at) = expires_at {
        state
            .store
            .set_snapshot_expiry(&cluster.id, &snapshot_id, Some(at), None)
            .await?;
    }
    let updated = state
        .store
        .update_snapshot_retention(&cluster.id, &snapshot_id, None, body.do_not_delete)
        .await?
        .ok_or_else(|| snapshot_not_found(&snapshot_id, &cluster_name))?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        snapshot_json(&ctx, &cluster, &updated),
    ))
}

async fn delete_any(
    state: &AppState,
    principal: &Principal,
    ctx: &Ctx,
    (group_id, cluster_name, snapshot_id): (String, String, String),
    sharded: bool,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (cluster, s) = find(
        state,
        principal,
        &group_id,
        &cluster_name,
        &snapshot_id,
        Role::GroupBackupManager,
    )
    .await?;
    if (cluster.cluster_type == ClusterType::Sharded) != sharded {
        return Err(snapshot_not_found(&snapshot_id, &cluster_name));
    }
    if s.do_not_delete {
        return Err(ApiError::bad_request(
            "SNAPSHOT_DO_NOT_DELETE",
            format!("Snapshot {snapshot_id} is protected by doNotDelete."),
        )
        .with_parameters([snapshot_id]));
    }
    // Only the record goes: imported parts are the user's files (owns_files is false for them).
    state
        .store
        .delete_snapshot(&cluster.id, &snapshot_id)
        .await?;
    Ok(Reply::no_content(served))
}

async fn delete_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(path): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    delete_any(&state, &principal, &ctx, path, false).await
}

async fn delete_sharded(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(path): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    delete_any(&state, &principal, &ctx, path, true).await
}

/// The legacy v1.0 snapshot of the seed document (`complete`, `created.date`, `parts[]`).
async fn get_legacy(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, snapshot_id)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let (cluster, s) = find(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        &snapshot_id,
        Role::GroupReadOnly,
    )
    .await?;
    let type_name = match cluster.cluster_type {
        ClusterType::Replicaset => "REPLICA_SET",
        ClusterType::Sharded => "SHARDED_REPLICA_SET",
    };
    let body = json!({
        "clusterId": cluster.id,
        "complete": s.status == "completed",
        "created": {"date": iso(s.created_at), "increment": 1},
        "doNotDelete": s.do_not_delete,
        "expires": s.expires_at.map(iso),
        "groupId": s.group_id,
        "id": s.id,
        "lastOplogAppliedTimestamp": {"date": iso(s.created_at), "increment": 1},
        "links": [{"href": ctx.self_url(), "rel": "self"}],
        "parts": s.parts.iter().map(|p| json!({
            "clusterId": cluster.id,
            "compressionSetting": "GZIP",
            "dataSizeBytes": p.storage_size_bytes,
            "encryptionEnabled": false,
            "fileSizeBytes": p.storage_size_bytes,
            "mongodVersion": p.mongod_version,
            "replicaSetName": p.replica_set_name,
            "storageSizeBytes": p.storage_size_bytes,
            "typeName": type_name,
        })).collect::<Vec<_>>(),
    });
    let _ = StatusCode::OK;
    Ok(Reply::ok(Served::Json, ctx.query.format, body))
}

//! Snapshots: imported through `POST /api/snapex/v1/groups/{groupId}/clusters/{clusterName}/snapshots`,
//! read, patched and deleted through Atlas's paths, with the sharded variants and the legacy
//! v1.0 GET; the rules (parts, retention, deletion guards) are `service::snapshots`'.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::{ONLY_2023, Served};
use super::{ApiError, AppState, Ctx, iso};
use crate::auth::{Principal, Role};
use crate::service::snapshots::{self, ImportRequest, RetentionChange, SnapshotError};
use crate::store::{Cluster, ClusterType, Snapshot, SnapshotStatus};

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

/// A snapshot of the other cluster type is not found through this path.
fn not_found(id: &str, cluster: &str) -> ApiError {
    SnapshotError::NotFound {
        snapshot_id: id.to_string(),
        cluster_name: cluster.to_string(),
    }
    .into()
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
    m.insert("frequencyType".into(), s.frequency_type.as_str().into());
    m.insert("id".into(), s.id.clone().into());
    m.insert("links".into(), links(ctx, s, sharded));
    if let Some(v) = &s.mongod_version {
        m.insert("mongodVersion".into(), v.clone().into());
    }
    m.insert(
        "policyItems".into(),
        json!(s.policy_item_id.iter().collect::<Vec<_>>()),
    );
    m.insert("snapshotType".into(), s.snapshot_type.as_str().into());
    m.insert("status".into(), s.status.as_str().into());
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

/// One member of a sharded snapshot, fetched by its id through the replica-set path as Atlas
/// serves a shard's snapshot: a `DiskBackupReplicaSet` of that shard, with the sharded
/// snapshot's times, type and retention, and the part's size and version.
fn member_json(ctx: &Ctx, s: &Snapshot, index: usize) -> Value {
    let mut m = common(ctx, s, false);
    let (member_id, part) = match (s.member_ids().into_iter().nth(index), s.parts.get(index)) {
        (Some(id), Some(part)) => (id, part),
        _ => return replica_set_json(ctx, s),
    };
    m.insert("copyRegions".into(), json!([]));
    m.insert("id".into(), member_id.clone().into());
    m.insert(
        "links".into(),
        json!([
            {"href": ctx.url(&format!("/api/atlas/v2/groups/{}/clusters/{}/backup/snapshots/{member_id}", s.group_id, s.cluster_name)), "rel": "self"},
            {"href": ctx.url(&format!("/api/atlas/v2/groups/{}/clusters/{}/backup/snapshots/shardedCluster/{}", s.group_id, s.cluster_name, s.id)), "rel": "https://cloud.mongodb.com/snapshot"},
        ]),
    );
    if let Some(v) = part.mongod_version.as_ref().or(s.mongod_version.as_ref()) {
        m.insert("mongodVersion".into(), v.clone().into());
    }
    m.insert(
        "replicaSetName".into(),
        part.replica_set_name.clone().into(),
    );
    m.insert("storageSizeBytes".into(), part.storage_size_bytes.into());
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
    let member_ids = s.member_ids();
    m.insert(
        "members".into(),
        s.parts
            .iter()
            .zip(&member_ids)
            .map(|(p, id)| {
                json!({"cloudProvider": provider_of(&p.url), "id": id, "replicaSetName": p.replica_set_name})
            })
            .collect::<Vec<_>>()
            .into(),
    );
    m.insert("snapshotIds".into(), json!(member_ids));
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
    Body(body): Body<ImportRequest>,
) -> Result<Reply, ApiError> {
    let (project, cluster) = super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupBackupCreator,
    )
    .await?;
    let imported = snapshots::import(&state, &project, &cluster, body).await?;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        snapshot_json(&ctx, &cluster, &imported.snapshot),
    ))
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
    let snapshot = snapshots::get(state, &cluster, snapshot_id).await?;
    Ok((cluster, snapshot))
}

async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, snapshot_id)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (_, cluster) = super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupReadOnly,
    )
    .await?;
    // On a sharded cluster this path serves the members (Atlas's per-shard snapshots), not
    // the sharded snapshot itself, which has its own path.
    let body = match cluster.cluster_type {
        ClusterType::Replicaset => {
            replica_set_json(&ctx, &snapshots::get(&state, &cluster, &snapshot_id).await?)
        }
        ClusterType::Sharded => {
            let (s, index) = snapshots::get_member(&state, &cluster, &snapshot_id).await?;
            member_json(&ctx, &s, index)
        }
    };
    Ok(Reply::ok(served, ctx.query.format, body))
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
        return Err(not_found(&snapshot_id, &cluster_name));
    }
    Ok(Reply::ok(served, ctx.query.format, sharded_json(&ctx, &s)))
}

async fn patch_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, snapshot_id)): Path<(String, String, String)>,
    Body(body): Body<RetentionChange>,
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
    let updated = snapshots::change_retention(&state, &cluster, &s, body).await?;
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
        return Err(not_found(&snapshot_id, &cluster_name));
    }
    snapshots::delete(state, &cluster, &s).await?;
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
        "complete": s.status == SnapshotStatus::Completed,
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
    Ok(Reply::ok(Served::Json, ctx.query.format, body))
}

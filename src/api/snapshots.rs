//! Snapshots: imported through `POST /api/snapex/v1/groups/{groupId}/clusters/{clusterName}/snapshots`,
//! read, patched and deleted through Atlas's paths, with the sharded variants and the legacy
//! v1.0 GET; the rules (parts, retention, deletion guards) are `service::snapshots`'.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{Body, Reply};
use super::openapi::{BodyErrors, ClusterPath, Errors, FormatQuery, ListQuery};
use super::pagination::{Link, Paginated};
use super::versioning::{ONLY_2023, Served};
use super::{ApiError, AppState, Ctx, iso};
use crate::auth::{Principal, Role};
use crate::service::snapshots::{self, ImportRequest, RetentionChange, SnapshotError};
use crate::store::{Cluster, ClusterType, FrequencyType, Snapshot, SnapshotStatus, SnapshotType};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(list, take_on_demand))
        .routes(routes!(list_sharded))
        .routes(routes!(get_sharded, delete_sharded))
        .routes(routes!(get_one, patch_one, delete_one))
        .routes(routes!(get_legacy))
}

/// `{snapshotId}` (after [`ClusterPath`]).
#[derive(utoipa::IntoParams)]
#[into_params(names("snapshotId"), parameter_in = Path)]
#[allow(dead_code)] // documentation only: the handlers take the path as a tuple
struct SnapshotId(
    /// The snapshot's unique 24-hexadecimal-digit id (on a sharded cluster's replica-set
    /// path: a member's id, from `snapshotIds`).
    #[param(pattern = "^([a-f0-9]{24})$", min_length = 24, max_length = 24)]
    String,
);

/// `type` of a replica-set snapshot (always `replicaSet`).
#[derive(Serialize, ToSchema)]
enum ReplicaSetType {
    #[serde(rename = "replicaSet")]
    ReplicaSet,
}

/// `type` of a sharded-cluster snapshot (always `shardedCluster`).
#[derive(Serialize, ToSchema)]
enum ShardedClusterType {
    #[serde(rename = "shardedCluster")]
    ShardedCluster,
}

/// A replica-set snapshot, or one member (shard or config server) of a sharded snapshot
/// fetched by its id, as Atlas shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DiskBackupReplicaSet)]
struct ReplicaSetView {
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    description: Option<String>,
    /// Absent while the snapshot never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<String>, format = DateTime)]
    expires_at: Option<String>,
    frequency_type: FrequencyType,
    /// The snapshot's unique 24-hexadecimal-digit id.
    id: String,
    /// `self`, and the cluster (a member: the sharded snapshot it belongs to).
    links: Vec<Link>,
    /// The MongoDB version of the dump, where its metadata recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    mongod_version: Option<String>,
    /// The policy item whose retention the snapshot follows (none or one).
    policy_items: Vec<String>,
    snapshot_type: SnapshotType,
    status: SnapshotStatus,
    #[schema(minimum = 0)]
    storage_size_bytes: u64,
    /// Always empty: snapex copies no snapshots between regions.
    copy_regions: Vec<String>,
    replica_set_name: String,
    #[serde(rename = "type")]
    #[schema(inline)]
    kind: ReplicaSetType,
}

/// `members[].cloudProvider`: where the member's dump lives (a local dump is reported as
/// AWS, since Atlas's enum has no better value).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
enum MemberProvider {
    Aws,
    Azure,
    Gcp,
}

/// One member (shard or config server) of a sharded snapshot.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DiskBackupShardedClusterSnapshotMember)]
struct MemberView {
    #[schema(inline)]
    cloud_provider: MemberProvider,
    /// The member's snapshot id (readable through the replica-set path).
    id: String,
    replica_set_name: String,
}

/// A sharded-cluster snapshot as Atlas shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DiskBackupShardedClusterSnapshot)]
struct ShardedView {
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    description: Option<String>,
    /// Absent while the snapshot never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<String>, format = DateTime)]
    expires_at: Option<String>,
    frequency_type: FrequencyType,
    /// The snapshot's unique 24-hexadecimal-digit id.
    id: String,
    /// `self` and the cluster.
    links: Vec<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    mongod_version: Option<String>,
    policy_items: Vec<String>,
    snapshot_type: SnapshotType,
    status: SnapshotStatus,
    #[schema(minimum = 0)]
    storage_size_bytes: u64,
    members: Vec<MemberView>,
    /// The members' ids, in the order of `members`.
    snapshot_ids: Vec<String>,
    #[serde(rename = "type")]
    #[schema(inline)]
    kind: ShardedClusterType,
}

/// A snapshot of either cluster type, told apart by `type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(
    as = DiskBackupSnapshot,
    discriminator(property_name = "type", mapping(
        ("replicaSet" = "#/components/schemas/DiskBackupReplicaSet"),
        ("shardedCluster" = "#/components/schemas/DiskBackupShardedClusterSnapshot"),
    ))
)]
enum SnapshotView {
    ReplicaSet(ReplicaSetView),
    Sharded(ShardedView),
}

/// `{date, increment}` of the legacy document (the increment is always 1).
#[derive(Serialize, ToSchema)]
#[schema(as = BSONTimestamp)]
struct LegacyTimestamp {
    #[schema(value_type = String, format = DateTime)]
    date: String,
    increment: u32,
}

/// One part (replica set) of a legacy v1.0 snapshot.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LegacySnapshotPart)]
struct LegacyPart {
    cluster_id: String,
    /// Always `GZIP`.
    #[schema(example = "GZIP")]
    compression_setting: &'static str,
    #[schema(minimum = 0)]
    data_size_bytes: u64,
    /// Always false.
    encryption_enabled: bool,
    #[schema(minimum = 0)]
    file_size_bytes: u64,
    /// Null when the dump's metadata recorded no version.
    #[schema(required = true)]
    mongod_version: Option<String>,
    replica_set_name: String,
    #[schema(minimum = 0)]
    storage_size_bytes: u64,
    #[schema(inline)]
    type_name: LegacyTypeName,
}

/// `parts[].typeName` of the legacy document.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum LegacyTypeName {
    ReplicaSet,
    ShardedReplicaSet,
}

/// The legacy v1.0 snapshot of the seed document (`complete`, `created.date`, `parts[]`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LegacySnapshot)]
struct LegacyView {
    cluster_id: String,
    /// Whether the snapshot is `completed`.
    complete: bool,
    created: LegacyTimestamp,
    do_not_delete: bool,
    /// Null while the snapshot never expires.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    expires: Option<String>,
    group_id: String,
    id: String,
    /// The snapshot's time (snapex keeps no oplog position).
    last_oplog_applied_timestamp: LegacyTimestamp,
    links: Vec<Link>,
    parts: Vec<LegacyPart>,
}

/// A snapshot of the other cluster type is not found through this path.
fn not_found(id: &str, cluster: &str) -> ApiError {
    SnapshotError::NotFound {
        snapshot_id: id.to_string(),
        cluster_name: cluster.to_string(),
    }
    .into()
}

fn link(href: String, rel: &str) -> Link {
    Link {
        href,
        rel: rel.to_string(),
    }
}

fn links(ctx: &Ctx, s: &Snapshot, sharded: bool) -> Vec<Link> {
    let kind = if sharded { "shardedCluster/" } else { "" };
    let cluster = format!(
        "/api/atlas/v2/groups/{}/clusters/{}",
        s.group_id, s.cluster_name
    );
    vec![
        link(
            ctx.url(&format!("{cluster}/backup/snapshots/{kind}{}", s.id)),
            "self",
        ),
        link(ctx.url(&cluster), "https://cloud.mongodb.com/cluster"),
    ]
}

/// A replica-set snapshot in Atlas's shape (`DiskBackupReplicaSet`).
fn replica_set_view(ctx: &Ctx, s: &Snapshot) -> ReplicaSetView {
    ReplicaSetView {
        created_at: iso(s.created_at),
        description: s.description.clone(),
        expires_at: s.expires_at.map(iso),
        frequency_type: s.frequency_type,
        id: s.id.clone(),
        links: links(ctx, s, false),
        mongod_version: s.mongod_version.clone(),
        policy_items: s.policy_item_id.iter().cloned().collect(),
        snapshot_type: s.snapshot_type,
        status: s.status,
        storage_size_bytes: s.storage_size_bytes,
        copy_regions: Vec::new(),
        replica_set_name: s
            .parts
            .first()
            .map(|p| p.replica_set_name.clone())
            .unwrap_or_default(),
        kind: ReplicaSetType::ReplicaSet,
    }
}

/// One member of a sharded snapshot, fetched by its id through the replica-set path as Atlas
/// serves a shard's snapshot: a `DiskBackupReplicaSet` of that shard, with the sharded
/// snapshot's times, type and retention, and the part's size and version.
fn member_view(ctx: &Ctx, s: &Snapshot, index: usize) -> ReplicaSetView {
    let (member_id, part) = match (s.member_ids().into_iter().nth(index), s.parts.get(index)) {
        (Some(id), Some(part)) => (id, part),
        _ => return replica_set_view(ctx, s),
    };
    let cluster = format!(
        "/api/atlas/v2/groups/{}/clusters/{}",
        s.group_id, s.cluster_name
    );
    ReplicaSetView {
        links: vec![
            link(
                ctx.url(&format!("{cluster}/backup/snapshots/{member_id}")),
                "self",
            ),
            link(
                ctx.url(&format!(
                    "{cluster}/backup/snapshots/shardedCluster/{}",
                    s.id
                )),
                "https://cloud.mongodb.com/snapshot",
            ),
        ],
        id: member_id,
        mongod_version: part
            .mongod_version
            .clone()
            .or_else(|| s.mongod_version.clone()),
        storage_size_bytes: part.storage_size_bytes,
        replica_set_name: part.replica_set_name.clone(),
        ..replica_set_view(ctx, s)
    }
}

/// The spec's member `cloudProvider` (required, AWS/AZURE/GCP) from where the part lives. A
/// local part has no cloud; AWS is reported for it because the enum has no better value.
fn provider_of(url: &str) -> MemberProvider {
    match crate::storage::scheme_of(url) {
        Ok(crate::storage::Scheme::Azure) => MemberProvider::Azure,
        Ok(crate::storage::Scheme::Gcs) => MemberProvider::Gcp,
        _ => MemberProvider::Aws,
    }
}

/// A sharded-cluster snapshot in Atlas's shape (`DiskBackupShardedClusterSnapshot`).
fn sharded_view(ctx: &Ctx, s: &Snapshot) -> ShardedView {
    let member_ids = s.member_ids();
    ShardedView {
        created_at: iso(s.created_at),
        description: s.description.clone(),
        expires_at: s.expires_at.map(iso),
        frequency_type: s.frequency_type,
        id: s.id.clone(),
        links: links(ctx, s, true),
        mongod_version: s.mongod_version.clone(),
        policy_items: s.policy_item_id.iter().cloned().collect(),
        snapshot_type: s.snapshot_type,
        status: s.status,
        storage_size_bytes: s.storage_size_bytes,
        members: s
            .parts
            .iter()
            .zip(&member_ids)
            .map(|(p, id)| MemberView {
                cloud_provider: provider_of(&p.url),
                id: id.clone(),
                replica_set_name: p.replica_set_name.clone(),
            })
            .collect(),
        snapshot_ids: member_ids,
        kind: ShardedClusterType::ShardedCluster,
    }
}

fn snapshot_view(ctx: &Ctx, cluster: &Cluster, s: &Snapshot) -> SnapshotView {
    match cluster.cluster_type {
        ClusterType::Replicaset => SnapshotView::ReplicaSet(replica_set_view(ctx, s)),
        ClusterType::Sharded => SnapshotView::Sharded(sharded_view(ctx, s)),
    }
}

/// Import a snapshot from storage: one dump per replica set of the cluster, read where it
/// is. The auto-export policy then applies to the new snapshot.
#[utoipa::path(
    post,
    path = "/api/snapex/v1/groups/{groupId}/clusters/{clusterName}/snapshots",
    operation_id = "snapexImportSnapshot",
    tag = "snapex",
    params(ClusterPath, FormatQuery),
    request_body(content((ImportRequest = "application/json"))),
    responses(
        (status = 200, description = "The snapshot (its shape follows the cluster's type)",
            content((SnapshotView = "application/json"))),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Creator"]))),
)]
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
    let view = snapshot_view(&ctx, &cluster, &imported.snapshot);
    Reply::json(Served::Json, ctx.query.format, &view)
}

/// Take an on-demand snapshot: not possible, snapex has no live cluster to take one of;
/// always 400 `ON_DEMAND_SNAPSHOT_NOT_SUPPORTED` (after the usual checks). Snapshots are
/// imported instead (`snapexImportSnapshot`). Any request body is ignored.
#[utoipa::path(
    post,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots",
    operation_id = "takeGroupClusterBackupSnapshots",
    tag = "Cloud Backups",
    params(ClusterPath, FormatQuery),
    responses(
        Errors,
        (status = 400, description = "Always, for an existing cluster the caller may snapshot: \
            `ON_DEMAND_SNAPSHOT_NOT_SUPPORTED` (or an invalid parameter)", body = super::error::ErrorBody),
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Creator"]))),
)]
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

/// One page of the cluster's snapshots of the wanted type, each shown by `view` (a list of
/// the other type is empty).
async fn list_reply<T: Serialize + ToSchema>(
    state: &AppState,
    principal: &Principal,
    ctx: Ctx,
    (group_id, cluster_name): (String, String),
    wanted: ClusterType,
    view: fn(&Ctx, &Snapshot) -> T,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (_, cluster) = super::cluster_for(
        state,
        principal,
        &group_id,
        &cluster_name,
        Role::GroupReadOnly,
    )
    .await?;
    let (snapshots, total) = if cluster.cluster_type == wanted {
        state
            .store
            .list_snapshots(&cluster.id, ctx.query.page)
            .await?
    } else {
        (Vec::new(), 0)
    };
    let results = snapshots.iter().map(|s| view(&ctx, s)).collect();
    let page = super::pagination::page(&ctx.self_url(), &ctx.query, results, total);
    Reply::json(served, ctx.query.format, &page)
}

/// Return all snapshots of a replica-set cluster (a sharded cluster's list is empty: its
/// snapshots are at `shardedClusters`).
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots",
    operation_id = "listGroupClusterBackupSnapshots",
    tag = "Cloud Backups",
    params(ClusterPath, ListQuery),
    responses(
        (status = 200, description = "One page of snapshots", content(
            (Paginated<ReplicaSetView> = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(path): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    list_reply(
        &state,
        &principal,
        ctx,
        path,
        ClusterType::Replicaset,
        replica_set_view,
    )
    .await
}

/// Return all snapshots of a sharded cluster (a replica-set cluster's list is empty).
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedClusters",
    operation_id = "listGroupClusterBackupSnapshotShardedClusters",
    tag = "Cloud Backups",
    params(ClusterPath, ListQuery),
    responses(
        (status = 200, description = "One page of sharded-cluster snapshots", content(
            (Paginated<ShardedView> = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
async fn list_sharded(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(path): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    list_reply(
        &state,
        &principal,
        ctx,
        path,
        ClusterType::Sharded,
        sharded_view,
    )
    .await
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

/// Return one replica-set snapshot. On a sharded cluster the id is a member's (from
/// `snapshotIds`) and the answer is that shard's or config server's snapshot.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
    operation_id = "getGroupClusterBackupSnapshot",
    tag = "Cloud Backups",
    params(ClusterPath, SnapshotId, FormatQuery),
    responses(
        (status = 200, description = "The snapshot", content(
            (ReplicaSetView = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
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
    let view = match cluster.cluster_type {
        ClusterType::Replicaset => {
            replica_set_view(&ctx, &snapshots::get(&state, &cluster, &snapshot_id).await?)
        }
        ClusterType::Sharded => {
            let (s, index) = snapshots::get_member(&state, &cluster, &snapshot_id).await?;
            member_view(&ctx, &s, index)
        }
    };
    Reply::json(served, ctx.query.format, &view)
}

/// Return one sharded-cluster snapshot.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedCluster/{snapshotId}",
    operation_id = "getGroupClusterBackupSnapshotShardedCluster",
    tag = "Cloud Backups",
    params(ClusterPath, SnapshotId, FormatQuery),
    responses(
        (status = 200, description = "The snapshot", content(
            (ShardedView = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
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
    Reply::json(served, ctx.query.format, &sharded_view(&ctx, &s))
}

/// Change a snapshot's retention (`expiresAt`, `retentionUnit` with `retentionValue`, or
/// snapex's `retentionInDays`) or `doNotDelete`. A retention set by hand detaches the
/// snapshot from its policy item. On a sharded cluster the id is the sharded snapshot's and
/// the answer is a sharded-cluster snapshot.
#[utoipa::path(
    patch,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
    operation_id = "updateGroupClusterBackupSnapshot",
    tag = "Cloud Backups",
    params(ClusterPath, SnapshotId, FormatQuery),
    request_body(content((RetentionChange = "application/vnd.atlas.2023-01-01+json"))),
    responses(
        (status = 200, description = "The snapshot (its shape follows the cluster's type)", content(
            (SnapshotView = "application/vnd.atlas.2023-01-01+json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
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
    let view = snapshot_view(&ctx, &cluster, &updated);
    Reply::json(served, ctx.query.format, &view)
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

/// Delete a replica-set snapshot's record (an imported snapshot's dump stays); 400
/// `SNAPSHOT_DO_NOT_DELETE` while `doNotDelete` protects it.
#[utoipa::path(
    delete,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
    operation_id = "deleteGroupClusterBackupSnapshot",
    tag = "Cloud Backups",
    params(ClusterPath, SnapshotId, FormatQuery),
    responses(
        (status = 204, description = "Deleted", content(
            ("application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
async fn delete_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(path): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    delete_any(&state, &principal, &ctx, path, false).await
}

/// Delete a sharded-cluster snapshot's record (an imported snapshot's dumps stay); 400
/// `SNAPSHOT_DO_NOT_DELETE` while `doNotDelete` protects it.
#[utoipa::path(
    delete,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedCluster/{snapshotId}",
    operation_id = "deleteGroupClusterBackupSnapshotShardedCluster",
    tag = "Cloud Backups",
    params(ClusterPath, SnapshotId, FormatQuery),
    responses(
        (status = 204, description = "Deleted", content(
            ("application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
async fn delete_sharded(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(path): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    delete_any(&state, &principal, &ctx, path, true).await
}

/// The legacy v1.0 snapshot of the seed document (`complete`, `created.date`, `parts[]`).
#[utoipa::path(
    get,
    path = "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/snapshots/{snapshotId}",
    operation_id = "getLegacySnapshot",
    tag = "Cloud Backups",
    params(ClusterPath, SnapshotId, FormatQuery),
    responses(
        (status = 200, description = "The snapshot", content((LegacyView = "application/json"))),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
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
    let type_name = || match cluster.cluster_type {
        ClusterType::Replicaset => LegacyTypeName::ReplicaSet,
        ClusterType::Sharded => LegacyTypeName::ShardedReplicaSet,
    };
    let at = || LegacyTimestamp {
        date: iso(s.created_at),
        increment: 1,
    };
    let view = LegacyView {
        cluster_id: cluster.id.clone(),
        complete: s.status == SnapshotStatus::Completed,
        created: at(),
        do_not_delete: s.do_not_delete,
        expires: s.expires_at.map(iso),
        group_id: s.group_id.clone(),
        id: s.id.clone(),
        last_oplog_applied_timestamp: at(),
        links: vec![link(ctx.self_url(), "self")],
        parts: s
            .parts
            .iter()
            .map(|p| LegacyPart {
                cluster_id: cluster.id.clone(),
                compression_setting: "GZIP",
                data_size_bytes: p.storage_size_bytes,
                encryption_enabled: false,
                file_size_bytes: p.storage_size_bytes,
                mongod_version: p.mongod_version.clone(),
                replica_set_name: p.replica_set_name.clone(),
                storage_size_bytes: p.storage_size_bytes,
                type_name: type_name(),
            })
            .collect(),
    };
    Reply::json(Served::Json, ctx.query.format, &view)
}

//! Clusters: registered through `POST /api/snapex/v1/groups/{groupId}/clusters` (PRODUCT.md
//! §4) and read through Atlas's `GET /groups/{groupId}/clusters[/{clusterName}]`, always
//! `stateName: IDLE` (snapex holds snapshots of clusters; it does not run them).

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{Body, Reply};
use super::openapi::{BodyErrors, ClusterPath, Errors, FormatQuery, GroupPath, ListQuery};
use super::pagination::{Link, Paginated};
use super::versioning::{CLUSTERS, Served};
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::store::{Cluster, ClusterType, Label, NewCluster, StoreError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(list))
        .routes(routes!(get_one))
}

/// A cluster to register: its name, type and replica sets (a sharded cluster's shards and
/// config server).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ClusterRegistration)]
struct RegisterCluster {
    /// `^[a-zA-Z0-9][a-zA-Z0-9-]*$`, at most 64 characters, unique in the project.
    name: String,
    /// `REPLICASET` or `SHARDED`.
    cluster_type: String,
    /// The replica sets' names (exactly one for a `REPLICASET`): letters, digits, `_`, `-`
    /// and `.`, not starting with `.`; they name the export's files.
    replica_sets: Vec<String>,
    #[serde(default)]
    labels: Vec<Label>,
}

/// `stateName`: always `IDLE` (snapex holds snapshots of clusters; it does not run them).
#[derive(Serialize, ToSchema)]
enum StateName {
    #[serde(rename = "IDLE")]
    Idle,
}

/// A registered cluster (the snapex extension's answer).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SnapexCluster)]
struct ExtensionView {
    /// The cluster's unique 24-hexadecimal-digit id.
    id: String,
    name: String,
    cluster_type: ClusterType,
    replica_sets: Vec<String>,
    labels: Vec<Label>,
    #[schema(inline)]
    state_name: StateName,
}

/// One replication spec: snapex knows only its replica set, given as the zone's name.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ClusterReplicationSpec)]
struct ReplicationSpecView {
    /// The replica set's name.
    zone_name: String,
}

/// A cluster as Atlas shows it, with the fields clients read; the same in every version
/// served (the later versions differ from the first in replication specs' hardware, which
/// snapex has none of).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ClusterDescription)]
struct AtlasView {
    /// Always true: snapshots are what a snapex cluster has.
    backup_enabled: bool,
    cluster_type: ClusterType,
    #[schema(value_type = String, format = DateTime)]
    create_date: String,
    group_id: String,
    /// The cluster's unique 24-hexadecimal-digit id.
    id: String,
    labels: Vec<Label>,
    links: Vec<Link>,
    name: String,
    /// Always false.
    paused: bool,
    /// One per replica set.
    replication_specs: Vec<ReplicationSpecView>,
    #[schema(inline)]
    state_name: StateName,
    /// The newest snapshot's MongoDB version, where its metadata recorded one.
    #[serde(rename = "mongoDBVersion", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    mongo_db_version: Option<String>,
    /// `mongoDBVersion`'s major and minor (`7.0`).
    #[serde(
        rename = "mongoDBMajorVersion",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    mongo_db_major_version: Option<String>,
}

/// Atlas's cluster-name rule: `^[a-zA-Z0-9][a-zA-Z0-9-]*$`, at most 64 characters.
pub fn valid_cluster_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Replica-set names become file names (`<rsName>.<n>.json.gz`): letters, digits, `_`, `-`, `.`,
/// not starting with `.`.
pub fn valid_replica_set_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn invalid(field: &str, description: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_ATTRIBUTE",
        format!("Invalid attribute {field} specified: {description}."),
    )
    .with_parameters([field.to_string()])
    .with_field(field, description)
}

/// The snapex view of a cluster (extension answer).
fn extension_view(c: Cluster) -> ExtensionView {
    ExtensionView {
        id: c.id,
        name: c.name,
        cluster_type: c.cluster_type,
        replica_sets: c.replica_sets,
        labels: c.labels,
        state_name: StateName::Idle,
    }
}

/// The Atlas view of a cluster. `mongoDBVersion` is the newest snapshot's, where its
/// metadata recorded one.
fn atlas_view(ctx: &Ctx, c: &Cluster, mongodb_version: Option<&str>) -> AtlasView {
    AtlasView {
        backup_enabled: true,
        cluster_type: c.cluster_type,
        create_date: super::iso(c.created_at),
        group_id: c.group_id.clone(),
        id: c.id.clone(),
        labels: c.labels.clone(),
        links: vec![Link {
            href: ctx.url(&format!(
                "/api/atlas/v2/groups/{}/clusters/{}",
                c.group_id, c.name
            )),
            rel: "self".to_string(),
        }],
        name: c.name.clone(),
        paused: false,
        replication_specs: c
            .replica_sets
            .iter()
            .map(|rs| ReplicationSpecView {
                zone_name: rs.clone(),
            })
            .collect(),
        state_name: StateName::Idle,
        mongo_db_version: mongodb_version.map(str::to_string),
        mongo_db_major_version: mongodb_version
            .map(|v| v.split('.').take(2).collect::<Vec<_>>().join(".")),
    }
}

/// Register a cluster whose snapshots snapex will hold (409 `DUPLICATE_CLUSTER_NAME` if the
/// project has one of that name).
#[utoipa::path(
    post,
    path = "/api/snapex/v1/groups/{groupId}/clusters",
    operation_id = "snapexRegisterCluster",
    tag = "snapex",
    params(GroupPath, FormatQuery),
    request_body(content((RegisterCluster = "application/json"))),
    responses(
        (status = 200, description = "The cluster", content((ExtensionView = "application/json"))),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Owner"]))),
)]
async fn register(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
    Body(body): Body<RegisterCluster>,
) -> Result<Reply, ApiError> {
    super::project_for(&state, &principal, &group_id, Role::GroupOwner).await?;
    if !valid_cluster_name(&body.name) {
        return Err(invalid(
            "name",
            "must match ^[a-zA-Z0-9][a-zA-Z0-9-]*$ and be at most 64 characters",
        ));
    }
    let cluster_type = ClusterType::parse(&body.cluster_type)
        .ok_or_else(|| invalid("clusterType", "expected REPLICASET or SHARDED"))?;
    if body.replica_sets.is_empty() {
        return Err(invalid(
            "replicaSets",
            "at least one replica set is required",
        ));
    }
    if cluster_type == ClusterType::Replicaset && body.replica_sets.len() != 1 {
        return Err(invalid(
            "replicaSets",
            "a REPLICASET cluster has exactly one replica set",
        ));
    }
    for (i, rs) in body.replica_sets.iter().enumerate() {
        if !valid_replica_set_name(rs) {
            return Err(invalid(
                &format!("replicaSets[{i}]"),
                "letters, digits, _, - and . only, not starting with .",
            ));
        }
        if body.replica_sets[..i].contains(rs) {
            return Err(invalid(
                &format!("replicaSets[{i}]"),
                "duplicate replica set name",
            ));
        }
    }
    let new = NewCluster {
        name: body.name.clone(),
        cluster_type,
        replica_sets: body.replica_sets,
        labels: body.labels,
    };
    let cluster = match state.store.create_cluster(&group_id, new).await {
        Ok(c) => c,
        Err(StoreError::Duplicate { .. }) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "DUPLICATE_CLUSTER_NAME",
                format!(
                    "A cluster named {} is already present in group {group_id}.",
                    body.name
                ),
            )
            .with_parameters([body.name, group_id]));
        }
        Err(e) => return Err(e.into()),
    };
    Reply::json(Served::Json, ctx.query.format, &extension_view(cluster))
}

/// Return all clusters of the project (`stateName` always `IDLE`).
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters",
    operation_id = "listClusters",
    tag = "Clusters",
    params(GroupPath, ListQuery),
    responses(
        (status = 200, description = "One page of clusters", content(
            (Paginated<AtlasView> = "application/vnd.atlas.2023-01-01+json"),
            (Paginated<AtlasView> = "application/vnd.atlas.2023-02-01+json"),
            (Paginated<AtlasView> = "application/vnd.atlas.2024-08-05+json"),
            (Paginated<AtlasView> = "application/vnd.atlas.2024-10-23+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(CLUSTERS)?;
    super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let (clusters, total) = state.store.list_clusters(&group_id, ctx.query.page).await?;
    let versions = state.store.mongod_versions(&group_id).await?;
    let results = clusters
        .iter()
        .map(|c| atlas_view(&ctx, c, versions.get(&c.id).map(String::as_str)))
        .collect();
    let page = super::pagination::page(&ctx.self_url(), &ctx.query, results, total);
    Reply::json(served, ctx.query.format, &page)
}

/// Return one cluster (`stateName` always `IDLE`).
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}",
    operation_id = "getCluster",
    tag = "Clusters",
    params(ClusterPath, FormatQuery),
    responses(
        (status = 200, description = "The cluster", content(
            (AtlasView = "application/vnd.atlas.2023-01-01+json"),
            (AtlasView = "application/vnd.atlas.2023-02-01+json"),
            (AtlasView = "application/vnd.atlas.2024-08-05+json"),
            (AtlasView = "application/vnd.atlas.2024-10-23+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(CLUSTERS)?;
    let (_, cluster) = super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupReadOnly,
    )
    .await?;
    let versions = state.store.mongod_versions(&group_id).await?;
    let view = atlas_view(
        &ctx,
        &cluster,
        versions.get(&cluster.id).map(String::as_str),
    );
    Reply::json(served, ctx.query.format, &view)
}

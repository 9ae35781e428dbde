//! Clusters: registered through `POST /api/snapex/v1/groups/{groupId}/clusters` (PRODUCT.md
//! §4) and read through Atlas's `GET /groups/{groupId}/clusters[/{clusterName}]`, always
//! `stateName: IDLE` (snapex holds snapshots of clusters; it does not run them).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::{CLUSTERS, Served};
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::store::{Cluster, ClusterType, Label, NewCluster, StoreError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/snapex/v1/groups/{group_id}/clusters", post(register))
        .route("/api/atlas/v2/groups/{group_id}/clusters", get(list))
        .route(
            "/api/atlas/v2/groups/{group_id}/clusters/{cluster_name}",
            get(get_one),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegisterCluster {
    name: String,
    cluster_type: String,
    replica_sets: Vec<String>,
    #[serde(default)]
    labels: Vec<Label>,
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
fn extension_json(c: &Cluster) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "clusterType": c.cluster_type.as_str(),
        "replicaSets": c.replica_sets,
        "labels": c.labels,
        "stateName": "IDLE",
    })
}

/// The Atlas view of a cluster: the fields clients read. `mongoDBVersion` is the newest
/// snapshot's, where its metadata recorded one; `backupEnabled` is true because snapshots are
/// what a snapex cluster has.
fn atlas_json(ctx: &Ctx, c: &Cluster, mongodb_version: Option<&str>) -> Value {
    let mut v = json!({
        "backupEnabled": true,
        "clusterType": c.cluster_type.as_str(),
        "createDate": super::iso(c.created_at),
        "groupId": c.group_id,
        "id": c.id,
        "labels": c.labels,
        "links": [{"href": ctx.url(&format!("/api/atlas/v2/groups/{}/clusters/{}", c.group_id, c.name)), "rel": "self"}],
        "name": c.name,
        "paused": false,
        "replicationSpecs": c.replica_sets.iter().map(|rs| json!({"zoneName": rs})).collect::<Vec<_>>(),
        "stateName": "IDLE",
    });
    if let (Some(version), Some(m)) = (mongodb_version, v.as_object_mut()) {
        m.insert("mongoDBVersion".into(), version.into());
        let major: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        m.insert("mongoDBMajorVersion".into(), major.into());
    }
    v
}

/// The mongod version of the cluster's newest snapshot that recorded one.
async fn mongodb_version(state: &AppState, c: &Cluster) -> Result<Option<String>, ApiError> {
    let (snapshots, _) = state
        .store
        .list_snapshots(
            &c.id,
            crate::store::Page {
                page_num: 1,
                items_per_page: 1,
            },
        )
        .await?;
    Ok(snapshots.into_iter().find_map(|s| s.mongod_version))
}

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
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        extension_json(&cluster),
    ))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(CLUSTERS)?;
    super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let (clusters, total) = state.store.list_clusters(&group_id, ctx.query.page).await?;
    let mut results = Vec::new();
    for c in &clusters {
        let version = mongodb_version(&state, c).await?;
        results.push(atlas_json(&ctx, c, version.as_deref()));
    }
    let body = super::pagination::page_body(&ctx.self_url(), &ctx.query, results, total);
    Ok(Reply::ok(served, ctx.query.format, body))
}

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
    Ok(Reply::ok(
        served,
        ctx.query.format,
        atlas_json(
            &ctx,
            &cluster,
            mongodb_version(&state, &cluster).await?.as_deref(),
        ),
    ))
}

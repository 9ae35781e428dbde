//! Export jobs: create, list, get (v2 2023-01-01 with `stateReason`; v1.0 with `errMsg`) and the
//! extensions under `/api/snapex/v1` (create with a namespace filter, cancel), over
//! `service::export_jobs` (the rules); this file is the HTTP shapes.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::{ONLY_2023, Served};
use super::{ApiError, AppState, Ctx, iso};
use crate::auth::{Principal, Role};
use crate::service::export_jobs::{self, FormatRequest, JobRequest};
use crate::store::{ClusterType, ExportJob, JobNamespaces, Label};

pub fn routes() -> Router<AppState> {
    let v2 = "/api/atlas/v2/groups/{group_id}/clusters/{cluster_name}/backup/exports";
    let v1 = "/api/atlas/v1.0/groups/{group_id}/clusters/{cluster_name}/backup/exports";
    Router::new()
        .route(v2, get(list_v2).post(create_v2))
        .route(&format!("{v2}/"), get(list_v2).post(create_v2))
        .route(&format!("{v2}/{{export_id}}"), get(get_v2))
        .route(v1, get(list_v1).post(create_v1))
        .route(&format!("{v1}/"), get(list_v1).post(create_v1))
        .route(&format!("{v1}/{{export_id}}"), get(get_v1))
        .route(
            "/api/snapex/v1/groups/{group_id}/clusters/{cluster_name}/backup/exports",
            post(create_extension),
        )
        .route(
            "/api/snapex/v1/groups/{group_id}/clusters/{cluster_name}/backup/exports/{export_id}/cancel",
            post(cancel),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateJob {
    snapshot_id: String,
    export_bucket_id: String,
    #[serde(default)]
    custom_data: Vec<Label>,
    #[serde(default)]
    #[allow(dead_code)]
    links: Option<Vec<Value>>,
}

/// The extension's body: Atlas's create-export body plus `namespaces` and the format (`format`,
/// `parquet`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateJobExtension {
    snapshot_id: String,
    export_bucket_id: String,
    #[serde(default)]
    custom_data: Vec<Label>,
    #[serde(default)]
    #[allow(dead_code)]
    links: Option<Vec<Value>>,
    #[serde(default)]
    namespaces: Namespaces,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    parquet: Option<ParquetFields>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ParquetFields {
    #[serde(default)]
    row_group_rows: Option<u64>,
    #[serde(default)]
    compression: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Namespaces {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V1,
}

/// The job in Atlas's shape: v2 has `stateReason`, v1.0 has `errMsg`. `components` only for
/// sharded clusters (one per shard); `finishedAt` only once finished.
fn job_json(ctx: &Ctx, job: &ExportJob, sharded: bool, flavor: Flavor) -> Value {
    let mut m = serde_json::Map::new();
    if sharded {
        m.insert(
            "components".into(),
            job.parts
                .iter()
                .map(|p| json!({"exportId": p.export_id, "replicaSetName": p.replica_set_name}))
                .collect::<Vec<_>>()
                .into(),
        );
    }
    m.insert("createdAt".into(), iso(job.created_at).into());
    m.insert("customData".into(), json!(job.custom_data));
    m.insert("exportBucketId".into(), job.export_bucket_id.clone().into());
    m.insert(
        "exportStatus".into(),
        json!({"exportedCollections": job.exported_collections(), "totalCollections": job.total_collections()}),
    );
    if let Some(f) = job.finished_at {
        m.insert("finishedAt".into(), iso(f).into());
    }
    m.insert("id".into(), job.id.clone().into());
    if flavor == Flavor::V1 {
        m.insert(
            "links".into(),
            json!([{"href": ctx.url(&format!("/api/atlas/v1.0/groups/{}/clusters/{}/backup/exports/{}", job.group_id, job.cluster_name, job.id)), "rel": "self"}]),
        );
    }
    m.insert("prefix".into(), job.prefix.clone().into());
    m.insert("snapshotId".into(), job.snapshot_id.clone().into());
    m.insert("state".into(), job.state.as_str().into());
    // Only jobs created with a filter carry it, so Atlas's shapes stay as they are.
    if !job.namespaces.is_empty() {
        m.insert("namespaces".into(), json!(job.namespaces));
    }
    if let Some(reason) = &job.state_reason {
        match flavor {
            Flavor::V2 => {
                m.insert("stateReason".into(), json!(reason));
            }
            Flavor::V1 => {
                m.insert("errMsg".into(), reason.message.clone().into());
            }
        }
    }
    Value::Object(m)
}

async fn create(
    state: &AppState,
    principal: &Principal,
    group_id: &str,
    cluster_name: &str,
    request: JobRequest,
) -> Result<(ExportJob, bool), ApiError> {
    let (project, cluster) = super::cluster_for(
        state,
        principal,
        group_id,
        cluster_name,
        Role::GroupBackupExportOperator,
    )
    .await?;
    let job = export_jobs::create(state, &project, &cluster, request).await?;
    Ok((job, cluster.cluster_type == ClusterType::Sharded))
}

impl From<CreateJob> for JobRequest {
    fn from(body: CreateJob) -> Self {
        JobRequest {
            snapshot_id: body.snapshot_id,
            export_bucket_id: body.export_bucket_id,
            custom_data: body.custom_data,
            namespaces: JobNamespaces::default(),
            format: FormatRequest::default(),
        }
    }
}

/// `POST /api/snapex/v1/…/backup/exports`: Atlas's create plus a namespace filter and the
/// format (`format`: `json` | `parquet`, `parquet: {rowGroupRows, compression}`); answers with
/// the v2 job shape, its `namespaces`, and `format` (and `parquet`).
async fn create_extension(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<CreateJobExtension>,
) -> Result<Reply, ApiError> {
    let parquet = body.parquet.unwrap_or_default();
    let request = JobRequest {
        snapshot_id: body.snapshot_id,
        export_bucket_id: body.export_bucket_id,
        custom_data: body.custom_data,
        namespaces: JobNamespaces {
            include: body.namespaces.include,
            exclude: body.namespaces.exclude,
        },
        format: FormatRequest {
            format: body.format,
            row_group_rows: parquet.row_group_rows,
            compression: parquet.compression,
        },
    };
    let (job, sharded) = create(&state, &principal, &group_id, &cluster_name, request).await?;
    let mut reply = job_json(&ctx, &job, sharded, Flavor::V2);
    let format: Value = job
        .export_format
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_else(|| json!({"format": "json"}));
    reply["format"] = format["format"].clone();
    if reply["format"] == "parquet" {
        reply["parquet"] = json!({
            "rowGroupRows": format["rowGroupRows"],
            "compression": format["compression"],
        });
    }
    Ok(Reply::ok(Served::Json, ctx.query.format, reply))
}

async fn create_v2(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<CreateJob>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (job, sharded) = create(&state, &principal, &group_id, &cluster_name, body.into()).await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        job_json(&ctx, &job, sharded, Flavor::V2),
    ))
}

async fn create_v1(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<CreateJob>,
) -> Result<Reply, ApiError> {
    let (job, sharded) = create(&state, &principal, &group_id, &cluster_name, body.into()).await?;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        job_json(&ctx, &job, sharded, Flavor::V1),
    ))
}

async fn list(
    state: &AppState,
    principal: &Principal,
    ctx: &Ctx,
    group_id: &str,
    cluster_name: &str,
    flavor: Flavor,
) -> Result<Value, ApiError> {
    let (_, cluster) = super::cluster_for(
        state,
        principal,
        group_id,
        cluster_name,
        Role::GroupBackupManager,
    )
    .await?;
    let sharded = cluster.cluster_type == ClusterType::Sharded;
    let (jobs, total) = state
        .store
        .list_export_jobs(group_id, cluster_name, ctx.query.page)
        .await?;
    let results = jobs
        .iter()
        .map(|j| job_json(ctx, j, sharded, flavor))
        .collect();
    Ok(super::pagination::page_body(
        &ctx.self_url(),
        &ctx.query,
        results,
        total,
    ))
}

async fn list_v2(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let body = list(
        &state,
        &principal,
        &ctx,
        &group_id,
        &cluster_name,
        Flavor::V2,
    )
    .await?;
    Ok(Reply::ok(served, ctx.query.format, body))
}

async fn list_v1(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let body = list(
        &state,
        &principal,
        &ctx,
        &group_id,
        &cluster_name,
        Flavor::V1,
    )
    .await?;
    Ok(Reply::ok(Served::Json, ctx.query.format, body))
}

async fn find(
    state: &AppState,
    principal: &Principal,
    group_id: &str,
    cluster_name: &str,
    export_id: &str,
    role: Role,
) -> Result<(ExportJob, bool), ApiError> {
    let (_, cluster) = super::cluster_for(state, principal, group_id, cluster_name, role).await?;
    let job = export_jobs::get(state, group_id, cluster_name, export_id).await?;
    Ok((job, cluster.cluster_type == ClusterType::Sharded))
}

async fn get_v2(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, export_id)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (job, sharded) = find(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        &export_id,
        Role::GroupBackupManager,
    )
    .await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        job_json(&ctx, &job, sharded, Flavor::V2),
    ))
}

async fn get_v1(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, export_id)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let (job, sharded) = find(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        &export_id,
        Role::GroupBackupManager,
    )
    .await?;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        job_json(&ctx, &job, sharded, Flavor::V1),
    ))
}

async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name, export_id)): Path<(String, String, String)>,
) -> Result<Reply, ApiError> {
    let (job, sharded) = find(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        &export_id,
        Role::GroupBackupExportOperator,
    )
    .await?;
    let job = export_jobs::cancel(&state, job).await?;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        job_json(&ctx, &job, sharded, Flavor::V2),
    ))
}

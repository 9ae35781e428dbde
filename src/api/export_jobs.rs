//! Export jobs: create, list, get (v2 2023-01-01 with `stateReason`; v1.0 with `errMsg`) and the
//! cancel extension. A created job is `Queued`; the job runner (`crate::jobs`) runs it.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::{ONLY_2023, Served};
use super::{ApiError, AppState, Ctx, check_id, iso};
use crate::auth::{Principal, Role};
use crate::store::{ExportJob, JobState, Label, NewExportJob, StoreError};

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

fn job_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "EXPORT_JOB_NOT_FOUND",
        format!("No export job with ID {id} exists."),
    )
    .with_parameters([id.to_string()])
}

async fn create(
    state: &AppState,
    principal: &Principal,
    ctx: &Ctx,
    group_id: &str,
    cluster_name: &str,
    body: CreateJob,
) -> Result<(ExportJob, bool), ApiError> {
    let (project, cluster) = super::cluster_for(
        state,
        principal,
        group_id,
        cluster_name,
        Role::GroupBackupExportOperator,
    )
    .await?;
    let _ = ctx;
    check_id("snapshotId", &body.snapshot_id)?;
    check_id("exportBucketId", &body.export_bucket_id)?;
    let job = create_for(
        state,
        &project,
        &cluster,
        &body.snapshot_id,
        &body.export_bucket_id,
        body.custom_data,
    )
    .await?;
    Ok((
        job,
        cluster.cluster_type == crate::store::ClusterType::Sharded,
    ))
}

/// Creates a `Queued` export job of a snapshot of `cluster` to a bucket of its project, with
/// the refusals of PRODUCT.md §5 (also used by auto-export, which has no caller to authorize).
pub async fn create_for(
    state: &AppState,
    project: &crate::store::Project,
    cluster: &crate::store::Cluster,
    snapshot_id: &str,
    export_bucket_id: &str,
    custom_data: Vec<Label>,
) -> Result<ExportJob, ApiError> {
    let group_id = project.id.as_str();
    let cluster_name = cluster.name.as_str();
    let body = CreateJob {
        snapshot_id: snapshot_id.to_string(),
        export_bucket_id: export_bucket_id.to_string(),
        custom_data,
        links: None,
    };
    let snapshot = state
        .store
        .get_snapshot(&cluster.id, &body.snapshot_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "SNAPSHOT_NOT_FOUND",
                format!(
                    "No snapshot with ID {} exists in cluster {cluster_name}.",
                    body.snapshot_id
                ),
            )
            .with_parameters([body.snapshot_id.clone(), cluster_name.to_string()])
        })?;
    state
        .store
        .get_export_bucket(group_id, &body.export_bucket_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "EXPORT_BUCKET_NOT_FOUND",
                format!("No export bucket with ID {} exists.", body.export_bucket_id),
            )
            .with_parameters([body.export_bucket_id.clone()])
        })?;
    if snapshot.snapshot_type == "fallback" {
        return Err(ApiError::bad_request(
            "CANNOT_EXPORT_FALLBACK_SNAPSHOT",
            format!(
                "Snapshot {} is a fallback snapshot and cannot be exported.",
                snapshot.id
            ),
        )
        .with_parameters([snapshot.id.clone()]));
    }
    if snapshot.status != "completed" {
        return Err(ApiError::bad_request(
            "CANNOT_EXPORT_INCOMPLETE_SNAPSHOT",
            format!(
                "Snapshot {} is {}, not completed.",
                snapshot.id, snapshot.status
            ),
        )
        .with_parameters([snapshot.id.clone()]));
    }
    let org = state.store.get_org(&project.org_id).await?;
    let use_names = state
        .store
        .get_backup_schedule(&cluster.id)
        .await?
        .and_then(|s| {
            s.document
                .get("useOrgAndGroupNamesInExportPrefix")
                .and_then(|v| v.as_bool())
        })
        .unwrap_or(false);
    let (org_part, project_part) = if use_names {
        (
            super::schedule::prefix_segment(
                org.as_ref()
                    .map(|o| o.name.as_str())
                    .unwrap_or(&project.org_id),
                &project.org_id,
            ),
            super::schedule::prefix_segment(&project.name, &project.id),
        )
    } else {
        (project.org_id.clone(), project.id.clone())
    };
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
        let result = state
            .store
            .create_export_job(NewExportJob {
                group_id: group_id.to_string(),
                cluster_id: cluster.id.clone(),
                cluster_name: cluster.name.clone(),
                snapshot_id: snapshot.id.clone(),
                export_bucket_id: body.export_bucket_id.clone(),
                created_at,
                custom_data: body.custom_data.clone(),
                prefix,
                replica_sets: snapshot
                    .parts
                    .iter()
                    .map(|p| p.replica_set_name.clone())
                    .collect(),
            })
            .await;
        match result {
            Ok(job) => break job,
            // Same snapshot minute and same second as another job of this bucket: the
            // layout's timestamp moves on a second so no two jobs share a prefix.
            Err(StoreError::PrefixTaken { .. }) if attempts < 60 => {
                attempts += 1;
                created_at += chrono::Duration::seconds(1);
            }
            Err(StoreError::Duplicate { .. }) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "SNAPSHOT_EXPORT_ALREADY_ACTIVE",
                    format!(
                        "Snapshot {} already has an export job that is queued or in progress.",
                        snapshot.id
                    ),
                )
                .with_parameters([snapshot.id.clone()]));
            }
            Err(e) => return Err(e.into()),
        }
    };
    state
        .metrics
        .jobs_created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state.wakeup.notify_one();
    Ok(job)
}

async fn create_v2(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<CreateJob>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (job, sharded) = create(&state, &principal, &ctx, &group_id, &cluster_name, body).await?;
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
    let (job, sharded) = create(&state, &principal, &ctx, &group_id, &cluster_name, body).await?;
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
    let sharded = cluster.cluster_type == crate::store::ClusterType::Sharded;
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
    check_id("exportId", export_id)?;
    let job = state
        .store
        .get_export_job(group_id, cluster_name, export_id)
        .await?
        .ok_or_else(|| job_not_found(export_id))?;
    Ok((
        job,
        cluster.cluster_type == crate::store::ClusterType::Sharded,
    ))
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
    if job.state.is_final() {
        return Ok(Reply::ok(
            Served::Json,
            ctx.query.format,
            job_json(&ctx, &job, sharded, Flavor::V2),
        ));
    }
    let job = state
        .store
        .request_cancel(&job.id)
        .await?
        .ok_or_else(|| job_not_found(&export_id))?;
    let _ = JobState::Cancelled;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        job_json(&ctx, &job, sharded, Flavor::V2),
    ))
}

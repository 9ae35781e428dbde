//! Export jobs: create, list, get (v2 2023-01-01 with `stateReason`; v1.0 with `errMsg`) and the
//! extensions under `/api/snapex/v1` (create with a namespace filter and a format, cancel), over
//! `service::export_jobs` (the rules); this file is the HTTP shapes.

use axum::extract::{Path, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{Body, Reply};
use super::openapi::{BodyErrors, ClusterPath, Errors, FormatQuery, ListQuery};
use super::pagination::{Link, Paginated};
use super::versioning::{ONLY_2023, Served};
use super::{ApiError, AppState, Ctx, iso};
use crate::auth::{Principal, Role};
use crate::export::DataFormat;
use crate::service::export_jobs::{self, FormatRequest, JobRequest, StoredFormat};
use crate::store::{ClusterType, ExportJob, JobNamespaces, JobState, Label, StateReason};

pub fn routes() -> OpenApiRouter<AppState> {
    // The lists also answer with a trailing `/` (as Atlas does), undocumented.
    let v2 = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/exports/";
    let v1 = "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/backup/exports/";
    OpenApiRouter::new()
        .routes(routes!(list_v2, create_v2))
        .route(v2, get(list_v2).post(create_v2))
        .routes(routes!(get_v2))
        .routes(routes!(list_v1, create_v1))
        .route(v1, get(list_v1).post(create_v1))
        .routes(routes!(get_v1))
        .routes(routes!(create_extension))
        .routes(routes!(cancel))
}

/// `{exportId}` (after [`ClusterPath`]).
#[derive(utoipa::IntoParams)]
#[into_params(names("exportId"), parameter_in = Path)]
#[allow(dead_code)] // documentation only: the handlers take the path as a tuple
struct ExportId(
    /// The export job's unique 24-hexadecimal-digit id.
    #[param(pattern = "^([a-f0-9]{24})$", min_length = 24, max_length = 24)]
    String,
);

/// Atlas's create-export body (`DiskBackupExportJobRequest`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ExportJobRequest)]
struct CreateJob {
    /// The snapshot to export (24-hex id); it must be completed and not a fallback snapshot.
    snapshot_id: String,
    /// The export bucket (24-hex id) of the project to write to.
    export_bucket_id: String,
    /// Pairs written into the job's `.complete` metadata file.
    #[serde(default)]
    custom_data: Vec<Label>,
    /// Read-only in Atlas: accepted (a client may send back what it read) and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(value_type = Option<Vec<Link>>)]
    links: Option<Vec<Value>>,
}

/// The extension's body: Atlas's create-export body plus `namespaces` and the format (`format`,
/// `parquet`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ExportJobExtensionRequest)]
struct CreateJobExtension {
    /// The snapshot to export (24-hex id); it must be completed and not a fallback snapshot.
    snapshot_id: String,
    /// The export bucket (24-hex id) of the project to write to.
    export_bucket_id: String,
    /// Pairs written into the job's `.complete` metadata file.
    #[serde(default)]
    custom_data: Vec<Label>,
    /// Accepted and ignored, as in Atlas's body.
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(value_type = Option<Vec<Link>>)]
    links: Option<Vec<Value>>,
    /// Which collections to export (default: all).
    #[serde(default)]
    namespaces: Namespaces,
    /// The data files' format (default `json`, Atlas's layout).
    #[serde(default)]
    #[schema(value_type = Option<FormatName>)]
    format: Option<String>,
    /// Parquet options (only with `"format": "parquet"`).
    #[serde(default)]
    parquet: Option<ParquetFields>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ExportParquetRequest)]
struct ParquetFields {
    /// Rows per row group, 1 to 10,000,000 (a row group is also cut at 64 MiB buffered).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000_000)]
    row_group_rows: Option<u64>,
    /// The column compression (default `zstd`).
    #[serde(default)]
    #[schema(value_type = Option<CompressionName>)]
    compression: Option<String>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExportNamespacesRequest)]
struct Namespaces {
    /// `<database>.<collection>` patterns (mongorestore's `--nsInclude` wildcards) of the
    /// collections to export; none: every collection.
    #[serde(default)]
    include: Vec<String>,
    /// Patterns of collections left out, even when included.
    #[serde(default)]
    exclude: Vec<String>,
}

/// The data format of an export's files.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ExportFormat)]
enum FormatName {
    /// Atlas's layout: gzipped Extended JSON lines.
    Json,
    /// Parquet with an inferred schema (a snapex extension).
    Parquet,
}

/// A Parquet column compression.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ExportParquetCompression)]
#[allow(dead_code)] // documentation only: the service parses the name
enum CompressionName {
    Zstd,
    Snappy,
}

/// One shard's part of a sharded cluster's job (`DiskBackupExportMember`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExportJobComponent)]
struct ComponentView {
    /// The part's own 24-hex id.
    export_id: String,
    replica_set_name: String,
}

/// How far a job got (`ExportStatus`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExportStatus)]
struct ExportStatusView {
    #[schema(minimum = 0)]
    exported_collections: u64,
    #[schema(minimum = 0)]
    total_collections: u64,
}

/// An export job in Atlas's v2 shape (`DiskBackupExportJob`): `components` only for sharded
/// clusters (one per shard), `finishedAt` only once finished, `stateReason` only when the job
/// failed or was cancelled, `namespaces` only for jobs created with a filter (the extension).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExportJob)]
struct JobView {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    components: Option<Vec<ComponentView>>,
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
    custom_data: Vec<Label>,
    export_bucket_id: String,
    export_status: ExportStatusView,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, nullable = false)]
    finished_at: Option<String>,
    /// The job's unique 24-hexadecimal-digit id.
    id: String,
    /// Where the job writes: `exported_snapshots/<org>/<project>/<cluster>/<date>/<time>`.
    prefix: String,
    snapshot_id: String,
    state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    namespaces: Option<JobNamespaces>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    state_reason: Option<StateReason>,
}

/// An export job in the v1.0 shape: the v2 fields with `links` (its own URL) and, instead of
/// `stateReason`, `errMsg` (its message).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExportJobV1)]
struct JobV1View {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    components: Option<Vec<ComponentView>>,
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
    custom_data: Vec<Label>,
    export_bucket_id: String,
    export_status: ExportStatusView,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, nullable = false)]
    finished_at: Option<String>,
    id: String,
    /// `self`: the job's v1.0 URL.
    links: Vec<Link>,
    prefix: String,
    snapshot_id: String,
    state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    namespaces: Option<JobNamespaces>,
    /// Why the job failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    err_msg: Option<String>,
}

/// The extension's answer to a create: the v2 job with the format it writes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExportJobExtension)]
struct JobExtensionView {
    #[serde(flatten)]
    job: JobView,
    format: FormatName,
    /// Parquet jobs only: the options in effect (defaults filled in).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    parquet: Option<ParquetView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExportParquet)]
struct ParquetView {
    row_group_rows: u64,
    #[schema(value_type = CompressionName)]
    compression: String,
}

fn job_view(job: &ExportJob, sharded: bool) -> JobView {
    JobView {
        components: sharded.then(|| {
            job.parts
                .iter()
                .map(|p| ComponentView {
                    export_id: p.export_id.clone(),
                    replica_set_name: p.replica_set_name.clone(),
                })
                .collect()
        }),
        created_at: iso(job.created_at),
        custom_data: job.custom_data.clone(),
        export_bucket_id: job.export_bucket_id.clone(),
        export_status: ExportStatusView {
            exported_collections: job.exported_collections(),
            total_collections: job.total_collections(),
        },
        finished_at: job.finished_at.map(iso),
        id: job.id.clone(),
        prefix: job.prefix.clone(),
        snapshot_id: job.snapshot_id.clone(),
        state: job.state,
        // Only jobs created with a filter carry it, so Atlas's shapes stay as they are.
        namespaces: (!job.namespaces.is_empty()).then(|| job.namespaces.clone()),
        state_reason: job.state_reason.clone(),
    }
}

fn job_v1_view(ctx: &Ctx, job: &ExportJob, sharded: bool) -> JobV1View {
    let v2 = job_view(job, sharded);
    JobV1View {
        components: v2.components,
        created_at: v2.created_at,
        custom_data: v2.custom_data,
        export_bucket_id: v2.export_bucket_id,
        export_status: v2.export_status,
        finished_at: v2.finished_at,
        links: vec![Link {
            href: ctx.url(&format!(
                "/api/atlas/v1.0/groups/{}/clusters/{}/backup/exports/{}",
                job.group_id, job.cluster_name, job.id
            )),
            rel: "self".to_string(),
        }],
        id: v2.id,
        prefix: v2.prefix,
        snapshot_id: v2.snapshot_id,
        state: v2.state,
        namespaces: v2.namespaces,
        err_msg: v2.state_reason.map(|reason| reason.message),
    }
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

/// Create one export job with a namespace filter (`namespaces: {include, exclude}`) and a
/// format (`format`: `json` | `parquet`, `parquet: {rowGroupRows, compression}`): Atlas's body
/// plus these; answers with the v2 job, its `namespaces`, `format` (and `parquet`). Refusals
/// as Atlas's create, and 400 for an invalid pattern or format option.
#[utoipa::path(
    post,
    path = "/api/snapex/v1/groups/{groupId}/clusters/{clusterName}/backup/exports",
    operation_id = "snapexCreateExportJob",
    tag = "snapex",
    params(ClusterPath, FormatQuery),
    request_body(content((CreateJobExtension = "application/json"))),
    responses(
        (status = 200, description = "The job (queued)", content(
            (JobExtensionView = "application/json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Export Operator"]))),
)]
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
    // The service stores no format for Atlas's JSON layout; a Parquet job's is `StoredFormat`.
    let stored = job
        .export_format
        .as_deref()
        .and_then(|text| serde_json::from_str::<StoredFormat>(text).ok());
    let (format, parquet) = match stored {
        Some(stored) if stored.format == DataFormat::Parquet => (
            FormatName::Parquet,
            Some(ParquetView {
                row_group_rows: stored.row_group_rows,
                compression: stored.compression,
            }),
        ),
        _ => (FormatName::Json, None),
    };
    let view = JobExtensionView {
        job: job_view(&job, sharded),
        format,
        parquet,
    };
    Reply::json(Served::Json, ctx.query.format, &view)
}

/// Create one export job of a completed snapshot to an export bucket of the project. Refusals:
/// 409 `SNAPSHOT_EXPORT_ALREADY_ACTIVE` (the snapshot already has a queued or running job), 400
/// `CANNOT_EXPORT_FALLBACK_SNAPSHOT`, 400 `CANNOT_EXPORT_INCOMPLETE_SNAPSHOT`, 404
/// `SNAPSHOT_NOT_FOUND` / `EXPORT_BUCKET_NOT_FOUND`.
#[utoipa::path(
    post,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/exports",
    operation_id = "createGroupClusterBackupExport",
    tag = "Cloud Backups",
    params(ClusterPath, FormatQuery),
    request_body(content((CreateJob = "application/vnd.atlas.2023-01-01+json"))),
    responses(
        (status = 200, description = "The job (queued)", content(
            (JobView = "application/vnd.atlas.2023-01-01+json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Export Operator"]))),
)]
async fn create_v2(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<CreateJob>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (job, sharded) = create(&state, &principal, &group_id, &cluster_name, body.into()).await?;
    Reply::json(served, ctx.query.format, &job_view(&job, sharded))
}

/// Create one export job (v1.0: the job with `links` and `errMsg`); refusals as in v2.
#[utoipa::path(
    post,
    path = "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/backup/exports",
    operation_id = "createExportJobV1",
    tag = "Cloud Backups",
    params(ClusterPath, FormatQuery),
    request_body(content((CreateJob = "application/json"))),
    responses(
        (status = 200, description = "The job (queued)", content(
            (JobV1View = "application/json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Export Operator"]))),
)]
async fn create_v1(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<CreateJob>,
) -> Result<Reply, ApiError> {
    let (job, sharded) = create(&state, &principal, &group_id, &cluster_name, body.into()).await?;
    Reply::json(
        Served::Json,
        ctx.query.format,
        &job_v1_view(&ctx, &job, sharded),
    )
}

/// One page of the cluster's jobs, and whether the cluster is sharded.
async fn list(
    state: &AppState,
    principal: &Principal,
    ctx: &Ctx,
    group_id: &str,
    cluster_name: &str,
) -> Result<(Vec<ExportJob>, u64, bool), ApiError> {
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
    Ok((jobs, total, sharded))
}

/// Return all export jobs of the cluster, newest first.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/exports",
    operation_id = "listGroupClusterBackupExports",
    tag = "Cloud Backups",
    params(ClusterPath, ListQuery),
    responses(
        (status = 200, description = "One page of jobs", content(
            (Paginated<JobView> = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
async fn list_v2(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let (jobs, total, sharded) = list(&state, &principal, &ctx, &group_id, &cluster_name).await?;
    let results = jobs.iter().map(|j| job_view(j, sharded)).collect();
    let page = super::pagination::page(&ctx.self_url(), &ctx.query, results, total);
    Reply::json(served, ctx.query.format, &page)
}

/// Return all export jobs of the cluster (v1.0: each with `links` and `errMsg`).
#[utoipa::path(
    get,
    path = "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/backup/exports",
    operation_id = "listExportJobsV1",
    tag = "Cloud Backups",
    params(ClusterPath, ListQuery),
    responses(
        (status = 200, description = "One page of jobs", content(
            (Paginated<JobV1View> = "application/json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
async fn list_v1(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let (jobs, total, sharded) = list(&state, &principal, &ctx, &group_id, &cluster_name).await?;
    let results = jobs.iter().map(|j| job_v1_view(&ctx, j, sharded)).collect();
    let page = super::pagination::page(&ctx.self_url(), &ctx.query, results, total);
    Reply::json(Served::Json, ctx.query.format, &page)
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

/// Return one export job.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/exports/{exportId}",
    operation_id = "getGroupClusterBackupExport",
    tag = "Cloud Backups",
    params(ClusterPath, ExportId, FormatQuery),
    responses(
        (status = 200, description = "The job", content(
            (JobView = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
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
    Reply::json(served, ctx.query.format, &job_view(&job, sharded))
}

/// Return one export job (v1.0: with `links` and `errMsg`).
#[utoipa::path(
    get,
    path = "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/backup/exports/{exportId}",
    operation_id = "getExportJobV1",
    tag = "Cloud Backups",
    params(ClusterPath, ExportId, FormatQuery),
    responses(
        (status = 200, description = "The job", content(
            (JobV1View = "application/json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
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
    Reply::json(
        Served::Json,
        ctx.query.format,
        &job_v1_view(&ctx, &job, sharded),
    )
}

/// Cancel an export job: a queued or running job ends `Cancelled` (its prefix gets no
/// `.complete`); a finished one is returned unchanged.
#[utoipa::path(
    post,
    path = "/api/snapex/v1/groups/{groupId}/clusters/{clusterName}/backup/exports/{exportId}/cancel",
    operation_id = "snapexCancelExport",
    tag = "snapex",
    params(ClusterPath, ExportId, FormatQuery),
    responses(
        (status = 200, description = "The job (v2 shape)", content(
            (JobView = "application/json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Export Operator"]))),
)]
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
    Reply::json(Served::Json, ctx.query.format, &job_view(&job, sharded))
}

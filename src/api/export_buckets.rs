//! Export buckets: list, create, get, patch, delete (media types 2023-01-01 and 2024-05-30),
//! over `service::buckets` (the rules: the permission check, the `FILESYSTEM` name rule, the
//! delete guard); this file is the HTTP shapes.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{Body, Reply};
use super::openapi::{BodyErrors, Errors, FormatQuery, GroupPath, ListQuery};
use super::pagination::Paginated;
use super::versioning::{BUCKETS, Served, V2024_05};
use super::{ApiError, AppState, Ctx, check_id};
use crate::auth::{Principal, Role};
use crate::service::buckets::{self, BucketError, BucketRequest};
use crate::store::{CloudProvider, ExportBucket};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, patch_one, delete_one))
}

/// `{exportBucketId}` (after [`GroupPath`]).
#[derive(utoipa::IntoParams)]
#[into_params(names("exportBucketId"), parameter_in = Path)]
#[allow(dead_code)] // documentation only: the handlers take the path as a tuple
struct BucketId(
    /// The export bucket's unique 24-hexadecimal-digit id.
    #[param(pattern = "^([a-f0-9]{24})$", min_length = 24, max_length = 24)]
    String,
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ExportBucketPatch)]
struct PatchBucket {
    /// Whether exports to this bucket must use a private network path.
    require_private_networking: bool,
}

/// An export bucket as Atlas shows it: which fields are present depends on the provider
/// (`iamRoleId` and `region` for AWS, `roleId` for Azure and GCP, `serviceUrl` for Azure).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ExportBucket)]
struct BucketView {
    /// The bucket's unique 24-hexadecimal-digit id.
    #[serde(rename = "_id")]
    id: String,
    bucket_name: String,
    cloud_provider: CloudProvider,
    /// AWS: the access role snapex writes with.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    iam_role_id: Option<String>,
    /// AWS: the bucket's region (single-bucket reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    region: Option<String>,
    /// Azure, GCP: the access role snapex writes with.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    role_id: Option<String>,
    /// Azure: the storage account's blob endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    service_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    require_private_networking: Option<bool>,
}

fn bucket_view(b: &ExportBucket, served: &Served, with_region: bool) -> BucketView {
    let mut view = BucketView {
        id: b.id.clone(),
        bucket_name: b.bucket_name.clone(),
        cloud_provider: b.cloud_provider,
        iam_role_id: None,
        region: None,
        role_id: None,
        service_url: None,
        require_private_networking: None,
    };
    match b.cloud_provider {
        CloudProvider::Aws => {
            view.iam_role_id = b.role_id.clone();
            if with_region {
                view.region = b.region.clone();
            }
            view.require_private_networking = Some(b.require_private_networking);
        }
        CloudProvider::Azure => {
            view.role_id = b.role_id.clone();
            view.service_url = b.service_url.clone();
            if served.date() == Some(V2024_05.date) {
                view.require_private_networking = Some(b.require_private_networking);
            }
        }
        CloudProvider::Gcp => view.role_id = b.role_id.clone(),
        CloudProvider::Filesystem => {}
    }
    view
}

/// Create one export bucket: snapex writes `exported_snapshots/.permissioncheck` with the
/// bucket's role first and refuses the bucket (400 `EXPORT_BUCKET_PERMISSION_CHECK_FAILED`)
/// if it cannot.
#[utoipa::path(
    post,
    path = "/api/atlas/v2/groups/{groupId}/backup/exportBuckets",
    operation_id = "createGroupBackupExportBucket",
    tag = "Cloud Backups",
    params(GroupPath, FormatQuery),
    request_body(content(
        (BucketRequest = "application/vnd.atlas.2023-01-01+json"),
        (BucketRequest = "application/vnd.atlas.2024-05-30+json"),
    )),
    responses(
        (status = 200, description = "The bucket", content(
            (BucketView = "application/vnd.atlas.2023-01-01+json"),
            (BucketView = "application/vnd.atlas.2024-05-30+json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
    Body(mut request): Body<BucketRequest>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(BUCKETS)?;
    super::project_for(&state, &principal, &group_id, Role::GroupBackupManager).await?;
    request.all_providers = served.date() == Some(V2024_05.date);
    let bucket = buckets::create(&state, &group_id, request).await?;
    let view = bucket_view(&bucket, &served, false);
    Reply::json(served, ctx.query.format, &view)
}

/// Return all export buckets of the project.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/backup/exportBuckets",
    operation_id = "listGroupBackupExportBuckets",
    tag = "Cloud Backups",
    params(GroupPath, ListQuery),
    responses(
        (status = 200, description = "One page of buckets", content(
            (Paginated<BucketView> = "application/vnd.atlas.2023-01-01+json"),
            (Paginated<BucketView> = "application/vnd.atlas.2024-05-30+json"),
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
    let served = ctx.version(BUCKETS)?;
    super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let (buckets, total) = state
        .store
        .list_export_buckets(&group_id, ctx.query.page)
        .await?;
    let results = buckets
        .iter()
        .map(|b| bucket_view(b, &served, false))
        .collect();
    let page = super::pagination::page(&ctx.self_url(), &ctx.query, results, total);
    Reply::json(served, ctx.query.format, &page)
}

async fn find(state: &AppState, group_id: &str, bucket_id: &str) -> Result<ExportBucket, ApiError> {
    check_id("exportBucketId", bucket_id)?;
    Ok(buckets::get(state, group_id, bucket_id).await?)
}

/// Return one export bucket.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/backup/exportBuckets/{exportBucketId}",
    operation_id = "getGroupBackupExportBucket",
    tag = "Cloud Backups",
    params(GroupPath, BucketId, FormatQuery),
    responses(
        (status = 200, description = "The bucket", content(
            (BucketView = "application/vnd.atlas.2023-01-01+json"),
            (BucketView = "application/vnd.atlas.2024-05-30+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, bucket_id)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(BUCKETS)?;
    super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let bucket = find(&state, &group_id, &bucket_id).await?;
    let view = bucket_view(&bucket, &served, true);
    Reply::json(served, ctx.query.format, &view)
}

/// Change whether exports to the bucket must use a private network path (2024-05-30).
#[utoipa::path(
    patch,
    path = "/api/atlas/v2/groups/{groupId}/backup/exportBuckets/{exportBucketId}",
    operation_id = "updateGroupBackupExportBucket",
    tag = "Cloud Backups",
    params(GroupPath, BucketId, FormatQuery),
    request_body(content((PatchBucket = "application/vnd.atlas.2024-05-30+json"))),
    responses(
        (status = 200, description = "The bucket", content(
            (BucketView = "application/vnd.atlas.2024-05-30+json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
async fn patch_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, bucket_id)): Path<(String, String)>,
    Body(body): Body<PatchBucket>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(&[V2024_05])?;
    super::project_for(&state, &principal, &group_id, Role::GroupBackupManager).await?;
    find(&state, &group_id, &bucket_id).await?;
    let bucket = state
        .store
        .update_export_bucket(&group_id, &bucket_id, body.require_private_networking)
        .await?
        .ok_or_else(|| {
            ApiError::from(BucketError::NotFound {
                bucket_id: bucket_id.clone(),
            })
        })?;
    let view = bucket_view(&bucket, &served, true);
    Reply::json(served, ctx.query.format, &view)
}

/// Delete one export bucket (400 `EXPORT_BUCKET_DELETE_FAILED` while an export or the
/// auto-export policy uses it). The files already exported stay.
#[utoipa::path(
    delete,
    path = "/api/atlas/v2/groups/{groupId}/backup/exportBuckets/{exportBucketId}",
    operation_id = "deleteGroupBackupExportBucket",
    tag = "Cloud Backups",
    params(GroupPath, BucketId, FormatQuery),
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
    Path((group_id, bucket_id)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(&[super::versioning::V2023])?;
    super::project_for(&state, &principal, &group_id, Role::GroupBackupManager).await?;
    check_id("exportBucketId", &bucket_id)?;
    buckets::delete(&state, &group_id, &bucket_id).await?;
    Ok(Reply::no_content(served))
}

//! Export buckets: list, create, get, patch, delete (media types 2023-01-01 and 2024-05-30),
//! over `service::buckets` (the rules: the permission check, the `FILESYSTEM` name rule, the
//! delete guard); this file is the HTTP shapes.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

use super::json::{Body, Reply};
use super::versioning::{BUCKETS, Served, V2024_05};
use super::{ApiError, AppState, Ctx, check_id};
use crate::auth::{Principal, Role};
use crate::service::buckets::{self, BucketError, BucketRequest};
use crate::store::{CloudProvider, ExportBucket};

pub fn routes() -> Router<AppState> {
    let base = "/api/atlas/v2/groups/{group_id}/backup/exportBuckets";
    Router::new().route(base, get(list).post(create)).route(
        &format!("{base}/{{bucket_id}}"),
        get(get_one).patch(patch_one).delete(delete_one),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBucket {
    require_private_networking: bool,
}

fn bucket_json(b: &ExportBucket, served: &Served, with_region: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("_id".into(), b.id.clone().into());
    m.insert("bucketName".into(), b.bucket_name.clone().into());
    m.insert("cloudProvider".into(), b.cloud_provider.as_str().into());
    match b.cloud_provider {
        CloudProvider::Aws => {
            m.insert("iamRoleId".into(), b.role_id.clone().into());
            if with_region && let Some(r) = &b.region {
                m.insert("region".into(), r.clone().into());
            }
            m.insert(
                "requirePrivateNetworking".into(),
                b.require_private_networking.into(),
            );
        }
        CloudProvider::Azure => {
            m.insert("roleId".into(), b.role_id.clone().into());
            m.insert("serviceUrl".into(), b.service_url.clone().into());
            if served.date() == Some(V2024_05.date) {
                m.insert(
                    "requirePrivateNetworking".into(),
                    b.require_private_networking.into(),
                );
            }
        }
        CloudProvider::Gcp => {
            m.insert("roleId".into(), b.role_id.clone().into());
        }
        CloudProvider::Filesystem => {}
    }
    Value::Object(m)
}

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
    Ok(Reply::ok(
        served.clone(),
        ctx.query.format,
        bucket_json(&bucket, &served, false),
    ))
}

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
        .map(|b| bucket_json(b, &served, false))
        .collect();
    let body = super::pagination::page_body(&ctx.self_url(), &ctx.query, results, total);
    Ok(Reply::ok(served, ctx.query.format, body))
}

async fn find(state: &AppState, group_id: &str, bucket_id: &str) -> Result<ExportBucket, ApiError> {
    check_id("exportBucketId", bucket_id)?;
    Ok(buckets::get(state, group_id, bucket_id).await?)
}

async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, bucket_id)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(BUCKETS)?;
    super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let bucket = find(&state, &group_id, &bucket_id).await?;
    Ok(Reply::ok(
        served.clone(),
        ctx.query.format,
        bucket_json(&bucket, &served, true),
    ))
}

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
    Ok(Reply::ok(
        served.clone(),
        ctx.query.format,
        bucket_json(&bucket, &served, true),
    ))
}

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

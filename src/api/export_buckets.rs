//! Export buckets: list, create, get, patch, delete (media types 2023-01-01 and 2024-05-30).
//! Creating one writes `exported_snapshots/.permissioncheck` (PRODUCT.md §2); a failure is 400
//! `EXPORT_BUCKET_PERMISSION_CHECK_FAILED`. The `FILESYSTEM` extension is a directory under the
//! server's bucket root; a name that would leave the root is refused.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use object_store::ObjectStoreExt;
use serde::Deserialize;
use serde_json::Value;

use super::json::{Body, Reply};
use super::versioning::{BUCKETS, Served, V2024_05};
use super::{ApiConfig, ApiError, AppState, Ctx, check_id};
use crate::auth::{Principal, Role, SecretBox};
use crate::storage::Location;
use crate::store::{ExportBucket, NewExportBucket, Store};

/// The key written to prove the bucket is writable.
pub const PERMISSION_CHECK_KEY: &str = "exported_snapshots/.permissioncheck";

pub fn routes() -> Router<AppState> {
    let base = "/api/atlas/v2/groups/{group_id}/backup/exportBuckets";
    Router::new().route(base, get(list).post(create)).route(
        &format!("{base}/{{bucket_id}}"),
        get(get_one).patch(patch_one).delete(delete_one),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBucket {
    cloud_provider: String,
    bucket_name: String,
    iam_role_id: Option<String>,
    role_id: Option<String>,
    service_url: Option<String>,
    region: Option<String>,
    require_private_networking: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    links: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBucket {
    require_private_networking: bool,
}

fn invalid(field: &str, description: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_ATTRIBUTE",
        format!("Invalid attribute {field} specified: {description}."),
    )
    .with_parameters([field.to_string()])
    .with_field(field, description)
}

fn bucket_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "EXPORT_BUCKET_NOT_FOUND",
        format!("No export bucket with ID {id} exists."),
    )
    .with_parameters([id.to_string()])
}

/// A `FILESYSTEM` bucket name: one path segment of safe characters, so it cannot leave the root.
pub fn valid_filesystem_bucket_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Where a bucket's objects go, with its role's credentials.
pub async fn bucket_location(
    store: &Store,
    secrets: &SecretBox,
    config: &ApiConfig,
    bucket: &ExportBucket,
) -> Result<Location, String> {
    if bucket.cloud_provider == "FILESYSTEM" {
        if !valid_filesystem_bucket_name(&bucket.bucket_name) {
            return Err(format!(
                "invalid FILESYSTEM bucket name {}",
                bucket.bucket_name
            ));
        }
        let dir = config.bucket_root.join(&bucket.bucket_name);
        return crate::storage::open_for_write(&dir.display().to_string(), &config.storage)
            .map_err(|e| e.to_string());
    }
    let role_id = bucket
        .role_id
        .as_deref()
        .ok_or("the bucket has no access role")?;
    let role = store
        .get_access_role(&bucket.group_id, role_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("access role {role_id} not found"))?;
    let options = super::access_roles::storage_options_for(&config.storage, secrets, &role)?;
    let url = match bucket.cloud_provider.as_str() {
        "AWS" => format!("s3://{}", bucket.bucket_name),
        "AZURE" => format!("az://{}", bucket.bucket_name),
        "GCP" => format!("gs://{}", bucket.bucket_name),
        other => return Err(format!("unknown cloud provider {other}")),
    };
    crate::storage::open(&url, &options).map_err(|e| e.to_string())
}

/// Writes the empty `.permissioncheck` object.
pub async fn permission_check(location: &Location) -> Result<(), String> {
    location
        .store
        .put(
            &location.path(PERMISSION_CHECK_KEY),
            object_store::PutPayload::new(),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn bucket_json(b: &ExportBucket, served: &Served, with_region: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("_id".into(), b.id.clone().into());
    m.insert("bucketName".into(), b.bucket_name.clone().into());
    m.insert("cloudProvider".into(), b.cloud_provider.clone().into());
    match b.cloud_provider.as_str() {
        "AWS" => {
            m.insert("iamRoleId".into(), b.role_id.clone().into());
            if with_region && let Some(r) = &b.region {
                m.insert("region".into(), r.clone().into());
            }
            m.insert(
                "requirePrivateNetworking".into(),
                b.require_private_networking.into(),
            );
        }
        "AZURE" => {
            m.insert("roleId".into(), b.role_id.clone().into());
            m.insert("serviceUrl".into(), b.service_url.clone().into());
            if served.date() == Some(V2024_05.date) {
                m.insert(
                    "requirePrivateNetworking".into(),
                    b.require_private_networking.into(),
                );
            }
        }
        "GCP" => {
            m.insert("roleId".into(), b.role_id.clone().into());
        }
        _ => {}
    }
    Value::Object(m)
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
    Body(body): Body<CreateBucket>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(BUCKETS)?;
    super::project_for(&state, &principal, &group_id, Role::GroupBackupManager).await?;
    let provider = body.cloud_provider.as_str();
    if served.date() != Some(V2024_05.date) && !matches!(provider, "AWS" | "FILESYSTEM") {
        return Err(invalid(
            "cloudProvider",
            "version 2023-01-01 accepts AWS only; request 2024-05-30",
        ));
    }
    let role_id = match provider {
        "AWS" => Some(
            body.iam_role_id
                .clone()
                .ok_or_else(|| invalid("iamRoleId", "required for AWS"))?,
        ),
        "AZURE" => {
            if body.service_url.is_none() {
                return Err(invalid("serviceUrl", "required for AZURE"));
            }
            Some(
                body.role_id
                    .clone()
                    .ok_or_else(|| invalid("roleId", "required for AZURE"))?,
            )
        }
        "GCP" => Some(
            body.role_id
                .clone()
                .ok_or_else(|| invalid("roleId", "required for GCP"))?,
        ),
        "FILESYSTEM" => {
            if !valid_filesystem_bucket_name(&body.bucket_name) {
                return Err(invalid(
                    "bucketName",
                    "a FILESYSTEM bucket is one directory name under the bucket root (letters, digits, _, -, .)",
                ));
            }
            None
        }
        _ => {
            return Err(invalid(
                "cloudProvider",
                "expected AWS, AZURE, GCP or FILESYSTEM",
            ));
        }
    };
    if provider != "FILESYSTEM" && !(3..=63).contains(&body.bucket_name.len()) {
        return Err(invalid("bucketName", "3 to 63 characters"));
    }
    if let Some(role_id) = &role_id {
        let field = if provider == "AWS" {
            "iamRoleId"
        } else {
            "roleId"
        };
        check_id(field, role_id)?;
        let role = state
            .store
            .get_access_role(&group_id, role_id)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(
                    "CLOUD_PROVIDER_ACCESS_ROLE_NOT_FOUND",
                    format!("No access role with ID {role_id} exists in group {group_id}."),
                )
                .with_parameters([role_id.clone(), group_id.clone()])
            })?;
        if role.provider != provider {
            return Err(invalid(
                field,
                &format!("access role {role_id} is for {}", role.provider),
            ));
        }
    }
    let new = NewExportBucket {
        cloud_provider: provider.to_string(),
        bucket_name: body.bucket_name.clone(),
        role_id,
        service_url: body.service_url.clone(),
        region: body
            .region
            .clone()
            .or_else(|| (provider == "AWS").then(|| "us-east-1".to_string())),
        require_private_networking: body.require_private_networking.unwrap_or(false),
    };
    // The permission check runs before the bucket is recorded: a bucket that cannot be written
    // is never added.
    let candidate = ExportBucket {
        id: String::new(),
        group_id: group_id.clone(),
        cloud_provider: new.cloud_provider.clone(),
        bucket_name: new.bucket_name.clone(),
        role_id: new.role_id.clone(),
        service_url: new.service_url.clone(),
        region: new.region.clone(),
        require_private_networking: new.require_private_networking,
        created_at: crate::store::now(),
    };
    let check = match bucket_location(
        &state.store,
        state.auth.secrets(),
        &state.config,
        &candidate,
    )
    .await
    {
        Ok(location) => permission_check(&location).await,
        Err(e) => Err(e),
    };
    if let Err(reason) = check {
        return Err(ApiError::bad_request(
            "EXPORT_BUCKET_PERMISSION_CHECK_FAILED",
            format!(
                "Cannot write {PERMISSION_CHECK_KEY} to bucket {}: {reason}.",
                body.bucket_name
            ),
        )
        .with_parameters([body.bucket_name.clone()]));
    }
    let bucket = state.store.create_export_bucket(&group_id, new).await?;
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
    state
        .store
        .get_export_bucket(group_id, bucket_id)
        .await?
        .ok_or_else(|| bucket_not_found(bucket_id))
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
        .ok_or_else(|| bucket_not_found(&bucket_id))?;
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
    find(&state, &group_id, &bucket_id).await?;
    if state.store.export_bucket_in_use(&bucket_id).await?
        || state
            .store
            .export_bucket_used_by_policy(&group_id, &bucket_id)
            .await?
    {
        return Err(ApiError::bad_request(
            "EXPORT_BUCKET_DELETE_FAILED",
            format!("Export bucket {bucket_id} is used by an active export job or an auto-export policy."),
        )
        .with_parameters([bucket_id]));
    }
    state
        .store
        .delete_export_bucket(&group_id, &bucket_id)
        .await?;
    Ok(Reply::no_content(served))
}

//! Export buckets: where a bucket's objects go and with which credentials, the `FILESYSTEM`
//! name rule, the permission check (PRODUCT.md §2), and the rules for adding and deleting one.

use super::access_roles::{AccessRoleError, storage_options_for};
use super::{Deployment, Invalid, check_id};
use crate::export::PERMISSION_CHECK_FILE;
use crate::storage::{Location, StorageError};
use crate::store::{CloudProvider, ExportBucket, NewExportBucket, StoreError};

/// A bucket as a front end asks for it (the body of Atlas's create operation).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = ExportBucketRequest)]
pub struct BucketRequest {
    /// `AWS`, `AZURE`, `GCP` (2024-05-30) or `FILESYSTEM` (snapex: a directory under the
    /// operator's bucket root).
    #[schema(value_type = CloudProvider)]
    pub cloud_provider: String,
    /// The bucket (AWS, GCP), container (Azure) or directory name (FILESYSTEM).
    #[schema(min_length = 1)]
    pub bucket_name: String,
    /// AWS: the access role (24-hex id) snapex writes with.
    pub iam_role_id: Option<String>,
    /// Azure, GCP: the access role (24-hex id) snapex writes with.
    pub role_id: Option<String>,
    /// Azure: the storage account's blob endpoint, `https://<account>.blob.core.windows.net`.
    pub service_url: Option<String>,
    /// AWS: the bucket's region.
    pub region: Option<String>,
    pub require_private_networking: Option<bool>,
    /// Read-only, sent back by clients that echo a GET: accepted and ignored.
    #[serde(default, rename = "links")]
    #[schema(read_only, value_type = Option<Vec<Object>>)]
    pub _links: Option<Vec<serde_json::Value>>,
    /// Whether the caller's API version accepts providers other than AWS (2024-05-30); set by
    /// the front end, never read from a body.
    #[serde(skip)]
    pub all_providers: bool,
}

/// Why a bucket cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("invalid FILESYSTEM bucket name {name}")]
    InvalidFilesystemName { name: String },
    #[error("the bucket has no access role")]
    NoRole,
    #[error("access role {role_id} not found")]
    RoleNotFound { role_id: String },
    #[error(transparent)]
    Role(#[from] AccessRoleError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// Why the permission check failed.
#[derive(Debug, thiserror::Error)]
pub enum PermissionCheckError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("writing {key}")]
    Write {
        key: String,
        #[source]
        source: object_store::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no access role with ID {role_id} exists in group {group_id}")]
    RoleNotFound { role_id: String, group_id: String },
    #[error("no export bucket with ID {bucket_id} exists")]
    NotFound { bucket_id: String },
    #[error("cannot write {PERMISSION_CHECK_FILE} to bucket {bucket_name}")]
    PermissionCheckFailed {
        bucket_name: String,
        #[source]
        source: PermissionCheckError,
    },
    #[error("export bucket {bucket_id} is used by an active export job or an auto-export policy")]
    InUse { bucket_id: String },
    #[error("metadata store")]
    Store(#[from] StoreError),
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

/// The retry budget of the permission check when a bucket is added: the caller is waiting for
/// the answer, so a store that does not answer is reported within seconds, not after the
/// export's budget (`store_retry_seconds`).
pub const CHECK_RETRY_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// The directory of a `FILESYSTEM` bucket: `<bucket root>/<groupId>/<bucketName>`, so no two
/// projects can share one, whatever names they choose.
pub fn filesystem_dir(bucket_root: &std::path::Path, bucket: &ExportBucket) -> std::path::PathBuf {
    bucket_root.join(&bucket.group_id).join(&bucket.bucket_name)
}

/// Moves the `FILESYSTEM` buckets of the layout before issue 9 (`<bucket root>/<bucketName>`,
/// shared by every project that chose the name) to `<bucket root>/<groupId>/<bucketName>`.
/// A directory that several projects' buckets named goes to the oldest bucket; the others
/// start empty, and a warning says so (their earlier exports stay with the oldest bucket's
/// project, which is where they were visible already). Runs at every start; a bucket already
/// in its place is left alone. Returns how many directories moved.
pub async fn migrate_filesystem_layout(deployment: &Deployment) -> Result<usize, BucketError> {
    let root = &deployment.config.bucket_root;
    let mut moved = 0;
    let mut claimed: std::collections::HashSet<String> = std::collections::HashSet::new();
    for bucket in deployment.store.list_filesystem_buckets().await? {
        let old = root.join(&bucket.bucket_name);
        let new = filesystem_dir(root, &bucket);
        let first_claim = claimed.insert(bucket.bucket_name.clone());
        // An old bucket named like a project id cannot be told from a project's directory of
        // the new layout: it is left where it is.
        if new.exists() || !old.is_dir() || crate::store::is_object_id(&bucket.bucket_name) {
            continue;
        }
        if !first_claim {
            tracing::warn!(bucket_id = %bucket.id, group_id = %bucket.group_id, name = %bucket.bucket_name, "FILESYSTEM bucket shared its directory with an older bucket of another project; it starts empty in its own directory");
            continue;
        }
        if let Some(parent) = new.parent()
            && let Err(e) = std::fs::create_dir_all(parent)
        {
            tracing::warn!(error = %e, dir = %parent.display(), "cannot create a project's bucket directory");
            continue;
        }
        match std::fs::rename(&old, &new) {
            Ok(()) => {
                moved += 1;
                tracing::info!(bucket_id = %bucket.id, from = %old.display(), to = %new.display(), "FILESYSTEM bucket moved to its project's directory");
            }
            Err(e) => {
                tracing::warn!(error = %e, from = %old.display(), "cannot move a FILESYSTEM bucket to its project's directory")
            }
        }
    }
    Ok(moved)
}

/// Where a bucket's objects go, with its role's credentials.
pub async fn location(
    deployment: &Deployment,
    bucket: &ExportBucket,
) -> Result<Location, LocationError> {
    location_with_budget(deployment, bucket, None).await
}

/// [`location`] with a retry budget other than the deployment's.
async fn location_with_budget(
    deployment: &Deployment,
    bucket: &ExportBucket,
    budget: Option<std::time::Duration>,
) -> Result<Location, LocationError> {
    let config = &deployment.config;
    let scheme = match bucket.cloud_provider {
        CloudProvider::Filesystem => {
            if !valid_filesystem_bucket_name(&bucket.bucket_name) {
                return Err(LocationError::InvalidFilesystemName {
                    name: bucket.bucket_name.clone(),
                });
            }
            let dir = filesystem_dir(&config.bucket_root, bucket);
            return Ok(crate::storage::open_for_write(
                &dir.display().to_string(),
                &config.storage,
            )?);
        }
        CloudProvider::Aws => "s3",
        CloudProvider::Azure => "az",
        CloudProvider::Gcp => "gs",
    };
    let role_id = bucket.role_id.as_deref().ok_or(LocationError::NoRole)?;
    let role = deployment
        .store
        .get_access_role(&bucket.group_id, role_id)
        .await?
        .ok_or_else(|| LocationError::RoleNotFound {
            role_id: role_id.to_string(),
        })?;
    let mut options = storage_options_for(deployment, &role)?;
    if let Some(budget) = budget {
        options.retry_timeout = Some(budget.min(options.retry_budget()));
    }
    Ok(crate::storage::open(
        &format!("{scheme}://{}", bucket.bucket_name),
        &options,
    )?)
}

/// Writes the empty `exported_snapshots/.permissioncheck` object, as Atlas does when a bucket
/// is added and when an export starts.
pub async fn permission_check(location: &Location) -> Result<(), PermissionCheckError> {
    crate::export::write_permission_check(location)
        .await
        .map_err(|source| PermissionCheckError::Write {
            key: PERMISSION_CHECK_FILE.to_string(),
            source,
        })
}

/// Adds a bucket of `group_id`: the request's fields checked, its role found and of the right
/// provider, and the permission check passed before anything is recorded, so a bucket that
/// cannot be written is never added.
pub async fn create(
    deployment: &Deployment,
    group_id: &str,
    request: BucketRequest,
) -> Result<ExportBucket, BucketError> {
    let provider = CloudProvider::parse(&request.cloud_provider);
    let provider = match provider {
        _ if !request.all_providers
            && !matches!(
                provider,
                Some(CloudProvider::Aws | CloudProvider::Filesystem)
            ) =>
        {
            return Err(Invalid::attribute(
                "cloudProvider",
                "version 2023-01-01 accepts AWS only; request 2024-05-30",
            )
            .into());
        }
        Some(p) => p,
        None => {
            return Err(Invalid::attribute(
                "cloudProvider",
                "expected AWS, AZURE, GCP or FILESYSTEM",
            )
            .into());
        }
    };
    let required = |value: &Option<String>, field: &str, why: &str| {
        value.clone().ok_or_else(|| Invalid::attribute(field, why))
    };
    let role_id = match provider {
        CloudProvider::Aws => Some(required(
            &request.iam_role_id,
            "iamRoleId",
            "required for AWS",
        )?),
        CloudProvider::Azure => {
            required(&request.service_url, "serviceUrl", "required for AZURE")?;
            Some(required(&request.role_id, "roleId", "required for AZURE")?)
        }
        CloudProvider::Gcp => Some(required(&request.role_id, "roleId", "required for GCP")?),
        CloudProvider::Filesystem => {
            if !valid_filesystem_bucket_name(&request.bucket_name) {
                return Err(Invalid::attribute(
                    "bucketName",
                    "a FILESYSTEM bucket is one directory name under the bucket root (letters, digits, _, -, .)",
                )
                .into());
            }
            None
        }
    };
    if provider != CloudProvider::Filesystem && !(3..=63).contains(&request.bucket_name.len()) {
        return Err(Invalid::attribute("bucketName", "3 to 63 characters").into());
    }
    if let Some(role_id) = &role_id {
        let field = if provider == CloudProvider::Aws {
            "iamRoleId"
        } else {
            "roleId"
        };
        check_id(field, role_id)?;
        let role = deployment
            .store
            .get_access_role(group_id, role_id)
            .await?
            .ok_or_else(|| BucketError::RoleNotFound {
                role_id: role_id.clone(),
                group_id: group_id.to_string(),
            })?;
        if role.provider != provider {
            return Err(Invalid::attribute(
                field,
                format!("access role {role_id} is for {}", role.provider),
            )
            .into());
        }
    }
    let new = NewExportBucket {
        cloud_provider: provider,
        bucket_name: request.bucket_name.clone(),
        role_id,
        service_url: request.service_url.clone(),
        region: request
            .region
            .clone()
            .or_else(|| (provider == CloudProvider::Aws).then(|| "us-east-1".to_string())),
        require_private_networking: request.require_private_networking.unwrap_or(false),
    };
    let candidate = ExportBucket {
        id: String::new(),
        group_id: group_id.to_string(),
        cloud_provider: new.cloud_provider,
        bucket_name: new.bucket_name.clone(),
        role_id: new.role_id.clone(),
        service_url: new.service_url.clone(),
        region: new.region.clone(),
        require_private_networking: new.require_private_networking,
        created_at: crate::store::now(),
    };
    let checked = match location_with_budget(deployment, &candidate, Some(CHECK_RETRY_BUDGET)).await
    {
        Ok(location) => permission_check(&location).await,
        Err(e) => Err(e.into()),
    };
    checked.map_err(|source| BucketError::PermissionCheckFailed {
        bucket_name: request.bucket_name.clone(),
        source,
    })?;
    Ok(deployment.store.create_export_bucket(group_id, new).await?)
}

/// The bucket `bucket_id` of `group_id`.
pub async fn get(
    deployment: &Deployment,
    group_id: &str,
    bucket_id: &str,
) -> Result<ExportBucket, BucketError> {
    deployment
        .store
        .get_export_bucket(group_id, bucket_id)
        .await?
        .ok_or_else(|| BucketError::NotFound {
            bucket_id: bucket_id.to_string(),
        })
}

/// Deletes a bucket record, refused while an active job or an auto-export policy uses it.
/// The bucket's objects stay: they are the user's.
pub async fn delete(
    deployment: &Deployment,
    group_id: &str,
    bucket_id: &str,
) -> Result<(), BucketError> {
    get(deployment, group_id, bucket_id).await?;
    let store = &deployment.store;
    if store.export_bucket_in_use(bucket_id).await?
        || store
            .export_bucket_used_by_policy(group_id, bucket_id)
            .await?
    {
        return Err(BucketError::InUse {
            bucket_id: bucket_id.to_string(),
        });
    }
    store.delete_export_bucket(group_id, bucket_id).await?;
    Ok(())
}

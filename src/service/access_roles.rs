//! Access roles: object-store credentials kept server-side, the secret part sealed with the
//! deployment key (`auth::secrets`) and opened only here, to reach a bucket. Buckets reference
//! them as `iamRoleId` (AWS) or `roleId` (Azure, GCP).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Deployment, Invalid};
use crate::auth::{SecretBox, SecretError};
use crate::storage::StorageOptions;
use crate::store::{AccessRole, CloudProvider, NewAccessRole, StoreError};

/// A role as a front end asks for it (the body of `POST …/accessRoles`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleRequest {
    pub provider: String,
    /// Use the server's environment / instance credentials instead of keys.
    #[serde(default)]
    pub from_environment: bool,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub account_name: Option<String>,
    pub account_key: Option<String>,
    /// GCP: the service-account key JSON.
    pub service_account_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessRoleError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("cannot unseal access role {role_id}")]
    Unseal {
        role_id: String,
        #[source]
        source: SecretError,
    },
    #[error("corrupt access role {role_id}")]
    Corrupt {
        role_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// The sealed part of a role.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Secrets {
    secret_access_key: Option<String>,
    session_token: Option<String>,
    account_key: Option<String>,
    service_account_key: Option<String>,
}

/// Checks and records a role; its secrets are sealed before they reach the store.
pub async fn create(
    deployment: &Deployment,
    group_id: &str,
    request: RoleRequest,
) -> Result<AccessRole, AccessRoleError> {
    let provider = match CloudProvider::parse(&request.provider) {
        Some(p @ (CloudProvider::Aws | CloudProvider::Azure | CloudProvider::Gcp)) => p,
        _ => {
            return Err(Invalid::attribute("provider", "expected AWS, AZURE or GCP").into());
        }
    };
    if !request.from_environment {
        match provider {
            CloudProvider::Aws
                if request.access_key_id.is_none() || request.secret_access_key.is_none() =>
            {
                return Err(Invalid::attribute(
                    "accessKeyId",
                    "AWS needs accessKeyId and secretAccessKey, or fromEnvironment: true",
                )
                .into());
            }
            CloudProvider::Azure
                if request.account_name.is_none() || request.account_key.is_none() =>
            {
                return Err(Invalid::attribute(
                    "accountName",
                    "AZURE needs accountName and accountKey, or fromEnvironment: true",
                )
                .into());
            }
            CloudProvider::Gcp if request.service_account_key.is_none() => {
                return Err(Invalid::attribute(
                    "serviceAccountKey",
                    "GCP needs serviceAccountKey, or fromEnvironment: true",
                )
                .into());
            }
            _ => {}
        }
    }
    let secrets = Secrets {
        secret_access_key: request.secret_access_key,
        session_token: request.session_token,
        account_key: request.account_key,
        service_account_key: request.service_account_key,
    };
    // Serializing a struct of optional strings cannot fail.
    let sealed = serde_json::to_vec(&secrets).unwrap_or_default();
    Ok(deployment
        .store
        .create_access_role(
            group_id,
            NewAccessRole {
                provider,
                settings: json!({
                    "fromEnvironment": request.from_environment,
                    "endpoint": request.endpoint,
                    "region": request.region,
                    "accessKeyId": request.access_key_id,
                    "accountName": request.account_name,
                }),
                sealed_secret: Some(deployment.secrets.seal(&sealed)),
            },
        )
        .await?)
}

/// Storage options for a store reached through `role` (credentials unsealed here only).
pub fn storage_options_for(
    base: &StorageOptions,
    secrets: &SecretBox,
    role: &AccessRole,
) -> Result<StorageOptions, AccessRoleError> {
    let mut options = base.clone();
    let s = |k: &str| {
        role.settings
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let sealed: Secrets = match &role.sealed_secret {
        Some(text) => {
            let bytes = secrets
                .open(text)
                .map_err(|source| AccessRoleError::Unseal {
                    role_id: role.id.clone(),
                    source,
                })?;
            serde_json::from_slice(&bytes).map_err(|source| AccessRoleError::Corrupt {
                role_id: role.id.clone(),
                source,
            })?
        }
        None => Secrets::default(),
    };
    let from_env = role
        .settings
        .get("fromEnvironment")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if let Some(endpoint) = s("endpoint") {
        options.allow_http |= endpoint.starts_with("http://");
        match role.provider {
            CloudProvider::Aws => options.s3_endpoint = Some(endpoint),
            CloudProvider::Azure => options.azure_use_emulator = true,
            _ => {}
        }
    }
    if let Some(region) = s("region") {
        options.s3_region = Some(region);
    }
    if !from_env {
        match role.provider {
            CloudProvider::Aws => {
                options.s3_access_key_id = s("accessKeyId");
                options.s3_secret_access_key = sealed.secret_access_key;
                options.s3_session_token = sealed.session_token;
            }
            CloudProvider::Azure => {
                options.azure_account = s("accountName");
                options.azure_access_key = sealed.account_key;
            }
            CloudProvider::Gcp => options.gcs_service_account_key = sealed.service_account_key,
            CloudProvider::Filesystem => {}
        }
    }
    Ok(options)
}

//! Access roles: object-store credentials kept server-side, the secret part sealed with the
//! deployment key (`auth::secrets`) and opened only here, to reach a bucket. Buckets reference
//! them as `iamRoleId` (AWS) or `roleId` (Azure, GCP).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Deployment, Invalid};
use crate::auth::{SecretBox, SecretError};
use crate::storage::StorageOptions;
use crate::store::{AccessRole, CloudProvider, NewAccessRole, StoreError};

/// A role as a front end asks for it (the body of `POST …/accessRoles`). The secret fields
/// are write-only: sealed on arrival and never returned.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = AccessRoleRequest)]
pub struct RoleRequest {
    /// `AWS`, `AZURE` or `GCP`.
    #[schema(pattern = "^(AWS|AZURE|GCP)$")]
    pub provider: String,
    /// Use the server's environment / instance credentials instead of keys (only in projects
    /// the operator allowed to).
    #[serde(default)]
    pub from_environment: bool,
    /// The object store's endpoint (`https://`; `http://` only when the operator allows
    /// insecure endpoints).
    pub endpoint: Option<String>,
    /// AWS: the region.
    pub region: Option<String>,
    /// AWS: the access key id (with `secretAccessKey`, unless `fromEnvironment`).
    pub access_key_id: Option<String>,
    /// AWS: the secret access key.
    #[schema(write_only)]
    pub secret_access_key: Option<String>,
    /// AWS: a session token for temporary credentials.
    #[schema(write_only)]
    pub session_token: Option<String>,
    /// Azure: the storage account (with `accountKey`, unless `fromEnvironment`).
    pub account_name: Option<String>,
    /// Azure: the storage account key.
    #[schema(write_only)]
    pub account_key: Option<String>,
    /// GCP: the service-account key JSON.
    #[schema(write_only)]
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
    /// A `fromEnvironment` role of a project the operator did not allow to use the server's
    /// own identity.
    #[error(
        "access role {role_id} uses the server's environment credentials, which this project may not use"
    )]
    EnvironmentNotAllowed { role_id: String },
    #[error("access role {role_id} has an endpoint the server does not allow")]
    EndpointNotAllowed { role_id: String },
    /// A GCP role whose service-account key is not a key's JSON object (a file path would make
    /// the server read its own files).
    #[error("access role {role_id} has a service-account key the server does not accept: {why}")]
    KeyNotAllowed { role_id: String, why: &'static str },
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// Why an endpoint is refused, or `None` when it is allowed: `https://` (or `http://` when the
/// operator allows insecure endpoints, for emulators), and never a link-local or cloud
/// metadata address — a tenant must not point the server's HTTP client at the host's own
/// credential service.
pub fn endpoint_refusal(endpoint: &str, allow_insecure: bool) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(endpoint) else {
        return Some("not a URL");
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => {
            return Some(
                "must be https:// (http:// only when the operator allows insecure endpoints)",
            );
        }
        _ => return Some("must be an https:// URL"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not carry credentials");
    }
    let metadata = "link-local and metadata addresses are not allowed";
    match url.host() {
        None => Some("has no host"),
        Some(url::Host::Ipv4(ip)) if ip.is_link_local() || ip.is_unspecified() => Some(metadata),
        Some(url::Host::Ipv6(ip)) => {
            let s = ip.segments();
            let link_local = (s[0] & 0xffc0) == 0xfe80;
            let aws_metadata = ip == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
            let mapped_link_local = ip.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local());
            (link_local || aws_metadata || mapped_link_local || ip.is_unspecified())
                .then_some(metadata)
        }
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            (d == "metadata.google.internal" || d == "metadata" || d == "instance-data")
                .then_some(metadata)
        }
        Some(url::Host::Ipv4(_)) => None,
    }
}

/// Fields of a service-account key file that object_store obeys but that are not Google's:
/// they would let a key choose the endpoint (past the endpoint rule) or turn authentication off.
const GCS_KEY_OVERRIDES: [&str; 2] = ["gcs_base_url", "disable_oauth"];

/// Why a tenant's GCP service-account key is refused, or `None`: it must be the key's JSON
/// object itself, without [`GCS_KEY_OVERRIDES`] (the endpoint goes in the role's `endpoint`).
pub fn service_account_key_refusal(key: &str) -> Option<&'static str> {
    match serde_json::from_str::<serde_json::Value>(key) {
        Ok(serde_json::Value::Object(fields)) => GCS_KEY_OVERRIDES
            .iter()
            .any(|f| fields.contains_key(*f))
            .then_some("gcs_base_url and disable_oauth are not accepted; give the endpoint as the role's endpoint"),
        _ => Some("must be the service-account key's JSON object"),
    }
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
    if request.from_environment && !deployment.config.environment_credentials.contains(group_id) {
        return Err(Invalid::attribute(
            "fromEnvironment",
            "this project may not use the server's environment credentials",
        )
        .into());
    }
    if let Some(endpoint) = &request.endpoint
        && let Some(why) = endpoint_refusal(endpoint, deployment.config.allow_insecure_endpoints)
    {
        return Err(Invalid::attribute("endpoint", why).into());
    }
    if let (CloudProvider::Gcp, Some(key)) = (provider, &request.service_account_key)
        && let Some(why) = service_account_key_refusal(key)
    {
        return Err(Invalid::attribute("serviceAccountKey", why).into());
    }
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
///
/// A static-key role gets exactly its own key, secret and token: nothing from the server's
/// options or environment is merged in (only the retry settings are kept). A `fromEnvironment`
/// role gets the server's options and environment, and only in a project the operator allowed;
/// the endpoint rule is checked again at use, so a setting the operator tightened later holds.
/// A role's `endpoint` is where its store is: an S3-compatible endpoint, Azurite, or a GCS
/// XML-API endpoint (`storage.googleapis.com` when unset).
pub fn storage_options_for(
    deployment: &Deployment,
    role: &AccessRole,
) -> Result<StorageOptions, AccessRoleError> {
    let base = &deployment.config.storage;
    let secrets: &SecretBox = &deployment.secrets;
    let from_env_setting = role
        .settings
        .get("fromEnvironment")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut options = if from_env_setting {
        if !deployment
            .config
            .environment_credentials
            .contains(&role.group_id)
        {
            return Err(AccessRoleError::EnvironmentNotAllowed {
                role_id: role.id.clone(),
            });
        }
        base.clone()
    } else {
        StorageOptions {
            max_retries: base.max_retries,
            retry_timeout: base.retry_timeout,
            ignore_environment: true,
            ..StorageOptions::default()
        }
    };
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
    let from_env = from_env_setting;
    if let Some(endpoint) = s("endpoint") {
        if endpoint_refusal(&endpoint, deployment.config.allow_insecure_endpoints).is_some() {
            return Err(AccessRoleError::EndpointNotAllowed {
                role_id: role.id.clone(),
            });
        }
        options.allow_http |= endpoint.starts_with("http://");
        match role.provider {
            CloudProvider::Aws => options.s3_endpoint = Some(endpoint),
            CloudProvider::Azure => options.azure_use_emulator = true,
            CloudProvider::Gcp => options.gcs_base_url = Some(endpoint),
            CloudProvider::Filesystem => {}
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
            CloudProvider::Gcp => {
                // Checked again at use: a role recorded before the check existed, or a key
                // that is a path, never reaches object_store. The endpoint is always set, so
                // nothing in the key can choose it.
                if let Some(key) = &sealed.service_account_key
                    && let Some(why) = service_account_key_refusal(key)
                {
                    return Err(AccessRoleError::KeyNotAllowed {
                        role_id: role.id.clone(),
                        why,
                    });
                }
                options.gcs_service_account_key = sealed.service_account_key;
                options
                    .gcs_base_url
                    .get_or_insert_with(|| crate::storage::GCS_DEFAULT_BASE_URL.to_string());
            }
            CloudProvider::Filesystem => {}
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::{endpoint_refusal, service_account_key_refusal};

    #[test]
    fn a_gcp_key_must_be_the_json_itself_and_cannot_choose_its_endpoint() {
        let key = r#"{"type":"service_account","private_key":"k","private_key_id":"1","client_email":"a@b"}"#;
        assert_eq!(service_account_key_refusal(key), None);
        for refused in [
            "/etc/snapex/operator-key.json",
            "[1]",
            r#"{"private_key":"k","gcs_base_url":"https://internal.example"}"#,
            r#"{"private_key":"k","disable_oauth":true}"#,
        ] {
            assert!(
                service_account_key_refusal(refused).is_some(),
                "{refused} must be refused"
            );
        }
    }

    #[test]
    fn endpoints_must_be_https_and_never_metadata_addresses() {
        assert_eq!(endpoint_refusal("https://s3.example.com", false), None);
        assert_eq!(endpoint_refusal("https://10.0.0.5:9000", false), None);
        assert!(endpoint_refusal("http://127.0.0.1:9000", false).is_some());
        assert_eq!(endpoint_refusal("http://127.0.0.1:9000", true), None);
        for hostile in [
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.170.2",
            "https://[fd00:ec2::254]",
            "https://[fe80::1]",
            "https://[::ffff:169.254.169.254]",
            "https://metadata.google.internal",
            "https://METADATA.google.internal.",
            "ftp://example.com",
            "file:///etc/passwd",
            "https://user:secret@example.com",
            "not a url",
            "https://0.0.0.0",
        ] {
            assert!(
                endpoint_refusal(hostile, true).is_some(),
                "{hostile} must be refused"
            );
        }
    }
}

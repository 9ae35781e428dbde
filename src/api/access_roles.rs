//! Access roles through `POST /api/snapex/v1/groups/{groupId}/accessRoles`: object-store
//! credentials kept server-side, the secret part sealed with the deployment key
//! (`auth::secrets`) and never returned. Buckets reference them as `iamRoleId`/`roleId`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::json::{Body, Reply};
use super::versioning::Served;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role, SecretBox};
use crate::storage::StorageOptions;
use crate::store::{AccessRole, NewAccessRole};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/snapex/v1/groups/{group_id}/accessRoles", post(create))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateRole {
    provider: String,
    #[serde(default)]
    from_environment: bool,
    endpoint: Option<String>,
    region: Option<String>,
    // AWS
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    // Azure
    account_name: Option<String>,
    account_key: Option<String>,
    // GCP: the service-account key JSON
    service_account_key: Option<String>,
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

fn invalid(field: &str, description: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_ATTRIBUTE",
        format!("Invalid attribute {field} specified: {description}."),
    )
    .with_parameters([field.to_string()])
    .with_field(field, description)
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
    Body(body): Body<CreateRole>,
) -> Result<Reply, ApiError> {
    super::project_for(&state, &principal, &group_id, Role::GroupOwner).await?;
    let provider = body.provider.as_str();
    match provider {
        "AWS"
            if !body.from_environment
                && (body.access_key_id.is_none() || body.secret_access_key.is_none()) =>
        {
            return Err(invalid(
                "accessKeyId",
                "AWS needs accessKeyId and secretAccessKey, or fromEnvironment: true",
            ));
        }
        "AZURE"
            if !body.from_environment
                && (body.account_name.is_none() || body.account_key.is_none()) =>
        {
            return Err(invalid(
                "accountName",
                "AZURE needs accountName and accountKey, or fromEnvironment: true",
            ));
        }
        "GCP" if !body.from_environment && body.service_account_key.is_none() => {
            return Err(invalid(
                "serviceAccountKey",
                "GCP needs serviceAccountKey, or fromEnvironment: true",
            ));
        }
        "AWS" | "AZURE" | "GCP" => {}
        _ => return Err(invalid("provider", "expected AWS, AZURE or GCP")),
    }
    let secrets = Secrets {
        secret_access_key: body.secret_access_key,
        session_token: body.session_token,
        account_key: body.account_key,
        service_account_key: body.service_account_key,
    };
    let sealed = serde_json::to_vec(&secrets).map_err(ApiError::internal)?;
    let role = state
        .store
        .create_access_role(
            &group_id,
            NewAccessRole {
                provider: provider.to_string(),
                settings: json!({
                    "fromEnvironment": body.from_environment,
                    "endpoint": body.endpoint,
                    "region": body.region,
                    "accessKeyId": body.access_key_id,
                    "accountName": body.account_name,
                }),
                sealed_secret: Some(state.auth.secrets().seal(&sealed)),
            },
        )
        .await?;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        json!({"roleId": role.id, "provider": role.provider}),
    ))
}

/// Storage options for a bucket reached through `role` (credentials unsealed here only).
pub fn storage_options_for(
    base: &StorageOptions,
    secrets: &SecretBox,
    role: &AccessRole,
) -> Result<StorageOptions, String> {
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
                .map_err(|e| format!("cannot unseal access role {}: {e}", role.id))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("corrupt access role {}: {e}", role.id))?
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
        match role.provider.as_str() {
            "AWS" => options.s3_endpoint = Some(endpoint),
            "AZURE" => options.azure_use_emulator = true,
            _ => {}
        }
    }
    if let Some(region) = s("region") {
        options.s3_region = Some(region);
    }
    if !from_env {
        match role.provider.as_str() {
            "AWS" => {
                options.s3_access_key_id = s("accessKeyId");
                options.s3_secret_access_key = sealed.secret_access_key;
                options.s3_session_token = sealed.session_token;
            }
            "AZURE" => {
                options.azure_account = s("accountName");
                options.azure_access_key = sealed.account_key;
            }
            "GCP" => options.gcs_service_account_key = sealed.service_account_key,
            _ => {}
        }
    }
    Ok(options)
}

//! A server with only the authentication layer in front of tiny protected routes, for the
//! tests of keys, tokens and roles on their own (no API handlers, no job runner): the Atlas
//! Digest and OAuth endpoints of `snapex::auth` and three probes built from its `Principal`.
//!
//! - `GET /api/atlas/v2/groups/{groupId}/probe`: Project Read Only; answers the group and the
//!   principal's id;
//! - `POST` on the same path: Project Backup Manager; echoes the JSON body;
//! - `GET /api/atlas/v2/orgs/{orgId}/probe`: Organization Member.

use std::path::Path;

use axum::extract::Path as UrlPath;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use snapex::api::error::ApiError;
use snapex::store::Store;

use super::{AuthService, Principal, Role, SecretBox};

async fn read_probe(
    principal: Principal,
    UrlPath(group_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require_group(&group_id, Role::GroupReadOnly)?;
    Ok(Json(
        json!({"groupId": group_id, "principal": principal.id}),
    ))
}

async fn write_probe(
    principal: Principal,
    UrlPath(group_id): UrlPath<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    principal.require_group(&group_id, Role::GroupBackupManager)?;
    Ok(Json(json!({"groupId": group_id, "echo": body})))
}

async fn org_probe(
    principal: Principal,
    UrlPath(org_id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org(&org_id, Role::OrgMember)?;
    Ok(Json(json!({"orgId": org_id})))
}

fn app(auth: AuthService) -> Router {
    Router::new()
        .route(
            "/api/atlas/v2/groups/{groupId}/probe",
            get(read_probe).post(write_probe),
        )
        .route("/api/atlas/v2/orgs/{orgId}/probe", get(org_probe))
        .merge(snapex::api::oauth::routes())
        .with_state(auth)
}

/// Serves the probes with `auth` on a free loopback port; returns `http://host:port`.
pub async fn serve(auth: AuthService) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app(auth)).await.unwrap();
    });
    format!("http://{addr}")
}

/// [`serve`] on the data directory `data_dir` (SQLite there, its secret key), as `snapex
/// serve` would open it.
pub async fn serve_data_dir(data_dir: &Path) -> String {
    let store = Store::open_in_data_dir(data_dir).await.unwrap();
    let auth = AuthService::new(store, SecretBox::from_env_or_data_dir(data_dir).unwrap());
    auth.verify_deployment_key().await.unwrap();
    serve(auth).await
}

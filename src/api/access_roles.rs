//! Access roles through `POST /api/snapex/v1/groups/{groupId}/accessRoles`, over
//! `service::access_roles`: object-store credentials kept server-side, the secret part sealed
//! with the deployment key and never returned.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use serde_json::json;

use super::json::{Body, Reply};
use super::versioning::Served;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::service::access_roles::{self, RoleRequest};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/snapex/v1/groups/{group_id}/accessRoles", post(create))
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
    Body(request): Body<RoleRequest>,
) -> Result<Reply, ApiError> {
    super::project_for(&state, &principal, &group_id, Role::GroupOwner).await?;
    let role = access_roles::create(&state, &group_id, request).await?;
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        json!({"roleId": role.id, "provider": role.provider.as_str()}),
    ))
}

//! Backup locations through `GET /api/snapex/v1/groups/{groupId}/backupLocations`, over
//! `service::catalog`: the locations the operator declared for the project (no credential,
//! the access role by id) and the backups each registered as snapshots.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::json;

use super::json::Reply;
use super::versioning::Served;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::service::catalog;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/snapex/v1/groups/{group_id}/backupLocations",
        get(list),
    )
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
) -> Result<Reply, ApiError> {
    super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let locations = catalog::project_locations(&state, &group_id).await?;
    let total = locations.len();
    Ok(Reply::ok(
        Served::Json,
        ctx.query.format,
        json!({"results": locations, "totalCount": total}),
    ))
}

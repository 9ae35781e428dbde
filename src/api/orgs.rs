//! Organizations: `GET /api/atlas/v2/orgs/{orgId}`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::json;

use super::json::Reply;
use super::versioning::ONLY_2023;
use super::{ApiError, AppState, Ctx, check_id};
use crate::auth::{Principal, Role};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/atlas/v2/orgs/{org_id}", get(get_org))
}

async fn get_org(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(org_id): Path<String>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    check_id("orgId", &org_id)?;
    principal.require_org(&org_id, Role::OrgMember)?;
    let org = state
        .store
        .get_org(&org_id)
        .await?
        .ok_or_else(|| super::auth::org_not_found(&org_id))?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        json!({
            "id": org.id,
            "isDeleted": false,
            "links": [{"href": ctx.url(&format!("/api/atlas/v2/orgs/{}", org.id)), "rel": "self"}],
            "name": org.name,
        }),
    ))
}

//! Organizations: `GET /api/atlas/v2/orgs` and `GET /api/atlas/v2/orgs/{orgId}`. Reading an
//! organization takes Organization Member, which every key of the organization holds, project
//! keys included (in Atlas a project's key belongs to its organization too).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::json;

use super::json::Reply;
use super::versioning::ONLY_2023;
use super::{ApiError, AppState, Ctx, check_id};
use crate::auth::Principal;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/atlas/v2/orgs", get(list_orgs))
        .route("/api/atlas/v2/orgs/{org_id}", get(get_org))
}

async fn get_org(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(org_id): Path<String>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    check_id("orgId", &org_id)?;
    principal.require_org_member(&org_id)?;
    let org = state
        .store
        .get_org(&org_id)
        .await?
        .ok_or_else(|| super::auth::org_not_found(&org_id))?;
    Ok(Reply::ok(served, ctx.query.format, org_json(&ctx, &org)))
}

/// `AtlasOrganization`.
fn org_json(ctx: &Ctx, org: &crate::store::Org) -> serde_json::Value {
    json!({
        "id": org.id,
        "isDeleted": false,
        "links": [{"href": ctx.url(&format!("/api/atlas/v2/orgs/{}", org.id)), "rel": "self"}],
        "name": org.name,
    })
}

/// The organizations the caller belongs to: a key belongs to exactly one.
async fn list_orgs(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let mut orgs = Vec::new();
    if principal.require_org_member(&principal.org_id).is_ok()
        && let Some(org) = state.store.get_org(&principal.org_id).await?
    {
        orgs.push(org_json(&ctx, &org));
    }
    let total = orgs.len() as u64;
    let results = ctx.query.page.slice(orgs);
    let body = super::pagination::page_body(&ctx.self_url(), &ctx.query, results, total);
    Ok(Reply::ok(served, ctx.query.format, body))
}

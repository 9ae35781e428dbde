//! Projects (Atlas "groups"): `GET`/`POST /api/atlas/v2/groups`, `GET /groups/{groupId}`,
//! `GET /groups/byName/{groupName}`. The list holds exactly the projects the caller has a role
//! in (all of its organization's for an organization-level key), as Atlas's `listProjects`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::ONLY_2023;
use super::{ApiError, AppState, Ctx, check_id};
use crate::auth::{Denied, Principal, Role};
use crate::store::{Project, StoreError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/atlas/v2/groups", get(list).post(create))
        .route("/api/atlas/v2/groups/{group_id}", get(get_by_id))
        .route("/api/atlas/v2/groups/byName/{group_name}", get(get_by_name))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateGroup {
    name: String,
    org_id: String,
    // Accepted for client compatibility (the Atlas CLI and Terraform send them); no effect here.
    #[serde(default)]
    #[allow(dead_code)]
    with_default_alerts_settings: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    region_usage_restrictions: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    tags: Option<Vec<Value>>,
    #[serde(default)]
    #[allow(dead_code)]
    project_owner_id: Option<String>,
    // Read-only fields of Atlas's `Group` model: generated SDK models send the whole object
    // (the Go SDK's `Group` sends these), so they are accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    cluster_count: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    created: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    links: Option<Value>,
}

/// The group as Atlas shows it.
pub async fn group_json(state: &AppState, ctx: &Ctx, p: &Project) -> Result<Value, ApiError> {
    let (_, clusters) = state
        .store
        .list_clusters(
            &p.id,
            crate::store::Page {
                page_num: 1,
                items_per_page: 1,
            },
        )
        .await?;
    Ok(json!({
        "clusterCount": clusters,
        "created": super::iso(p.created_at),
        "id": p.id,
        "links": [{"href": ctx.url(&format!("/api/atlas/v2/groups/{}", p.id)), "rel": "self"}],
        "name": p.name,
        "orgId": p.org_id,
    }))
}

fn valid_project_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(|c| c.is_control())
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Body(body): Body<CreateGroup>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    check_id("orgId", &body.org_id)?;
    principal.require_org(&body.org_id, Role::OrgGroupCreator)?;
    if !valid_project_name(&body.name) {
        return Err(ApiError::bad_request(
            "INVALID_ATTRIBUTE",
            "Invalid attribute name specified.",
        )
        .with_parameters(["name"])
        .with_field("name", "1 to 64 characters, no control characters"));
    }
    let project = match state.store.create_project(&body.org_id, &body.name).await {
        Ok(p) => p,
        Err(StoreError::Duplicate { .. }) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "GROUP_ALREADY_EXISTS",
                format!("A group with name \"{}\" already exists.", body.name),
            )
            .with_parameters([body.name.clone()]));
        }
        Err(StoreError::NotFound { .. }) => return Err(super::auth::org_not_found(&body.org_id)),
        Err(e) => return Err(e.into()),
    };
    Ok(Reply::ok(
        served,
        ctx.query.format,
        group_json(&state, &ctx, &project).await?,
    ))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let ids = principal.visible_group_ids();
    let total = ids.len() as u64;
    let mut results = Vec::new();
    for id in &ctx.query.page.slice(ids) {
        if let Some(project) = state.store.get_project(id).await? {
            results.push(group_json(&state, &ctx, &project).await?);
        }
    }
    let body = super::pagination::page_body(&ctx.self_url(), &ctx.query, results, total);
    Ok(Reply::ok(served, ctx.query.format, body))
}

async fn get_by_id(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let project = super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        group_json(&state, &ctx, &project).await?,
    ))
}

async fn get_by_name(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let not_found = || {
        ApiError::not_found(
            "GROUP_NAME_NOT_FOUND",
            format!("No group with name \"{name}\" exists."),
        )
        .with_parameters([name.clone()])
    };
    let project = state
        .store
        .get_project_by_name(&name)
        .await?
        .ok_or_else(not_found)?;
    // A project the caller cannot see is answered exactly like one that does not exist.
    principal
        .require_group(&project.id, Role::GroupReadOnly)
        .map_err(|e| match e {
            Denied::GroupNotFound { .. } => not_found(),
            other => ApiError::from(other),
        })?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        group_json(&state, &ctx, &project).await?,
    ))
}

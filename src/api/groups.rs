//! Projects (Atlas "groups"): `GET`/`POST /api/atlas/v2/groups`, `GET /groups/{groupId}`,
//! `GET /groups/byName/{groupName}`. The list holds exactly the projects the caller has a role
//! in (all of its organization's for an organization-level key), as Atlas's `listProjects`.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{Body, Reply};
use super::openapi::{BodyErrors, Errors, FormatQuery, GroupPath, ListQuery};
use super::pagination::{Link, Paginated};
use super::versioning::ONLY_2023;
use super::{ApiError, AppState, Ctx, check_id};
use crate::auth::{Denied, Principal, Role};
use crate::store::{Project, StoreError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_by_id))
        .routes(routes!(get_by_name))
}

/// `{groupName}`.
#[derive(utoipa::IntoParams)]
#[into_params(names("groupName"), parameter_in = Path)]
#[allow(dead_code)] // documentation only: the handler takes the path as a string
struct GroupNamePath(
    /// The project's name.
    #[param(min_length = 1, max_length = 64)]
    String,
);

/// The body of `createProject`. Unknown fields are refused (400 with `badRequestDetail`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = GroupCreate)]
struct CreateGroup {
    /// The project's name: 1 to 64 characters, no control characters, unique.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// The organization's unique 24-hexadecimal-digit id.
    #[schema(pattern = "^([a-f0-9]{24})$")]
    org_id: String,
    // Accepted for client compatibility (the Atlas CLI and Terraform send them); no effect here.
    /// Accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    with_default_alerts_settings: Option<bool>,
    /// Accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    region_usage_restrictions: Option<String>,
    /// Accepted and ignored (Atlas's `[{key, value}]`).
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(value_type = Option<Vec<Object>>)]
    tags: Option<Vec<Value>>,
    /// Accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    project_owner_id: Option<String>,
    // Read-only fields of Atlas's `Group` model: generated SDK models send the whole object
    // (the Go SDK's `Group` sends these), so they are accepted (any value) and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(schema_with = ignored_read_only)]
    cluster_count: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(schema_with = ignored_read_only)]
    created: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(schema_with = ignored_read_only)]
    id: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    #[schema(schema_with = ignored_read_only)]
    links: Option<Value>,
}

/// The schema of a read-only field of Atlas's `Group` in a create body: any value, marked
/// `readOnly` (a derived schema cannot mark an array or a free-form value read-only).
fn ignored_read_only() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .read_only(true)
        .description(Some(
            "Read-only in Atlas's `Group`: accepted (generated SDK models send the whole \
             object) and ignored.",
        ))
        .build()
}

/// A project as Atlas shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Group)]
struct GroupView {
    /// The number of clusters in the project.
    #[schema(minimum = 0)]
    cluster_count: u64,
    /// When the project was created (UTC, seconds).
    #[schema(value_type = String, format = DateTime)]
    created: String,
    /// The project's unique 24-hexadecimal-digit id.
    id: String,
    /// `self`.
    links: Vec<Link>,
    name: String,
    /// The organization's unique 24-hexadecimal-digit id.
    org_id: String,
}

/// The group as Atlas shows it.
async fn group_view(state: &AppState, ctx: &Ctx, p: &Project) -> Result<GroupView, ApiError> {
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
    Ok(GroupView {
        cluster_count: clusters,
        created: super::iso(p.created_at),
        id: p.id.clone(),
        links: vec![Link {
            href: ctx.url(&format!("/api/atlas/v2/groups/{}", p.id)),
            rel: "self".to_string(),
        }],
        name: p.name.clone(),
        org_id: p.org_id.clone(),
    })
}

fn valid_project_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(|c| c.is_control())
}

/// Create one project in an organization.
#[utoipa::path(
    post,
    path = "/api/atlas/v2/groups",
    operation_id = "createProject",
    tag = "Projects",
    params(FormatQuery),
    request_body(content((CreateGroup = "application/vnd.atlas.2023-01-01+json"))),
    responses(
        (status = 200, description = "The project", content(
            (GroupView = "application/vnd.atlas.2023-01-01+json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Organization Project Creator"]))),
)]
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
    let view = group_view(&state, &ctx, &project).await?;
    Reply::json(served, ctx.query.format, &view)
}

/// Return the projects the caller has a role in (all of its organization's for an
/// organization-level key).
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups",
    operation_id = "listProjects",
    tag = "Projects",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of projects", content(
            (Paginated<GroupView> = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
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
            results.push(group_view(&state, &ctx, &project).await?);
        }
    }
    let page = super::pagination::page(&ctx.self_url(), &ctx.query, results, total);
    Reply::json(served, ctx.query.format, &page)
}

/// Return one project.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}",
    operation_id = "getProject",
    tag = "Projects",
    params(GroupPath, FormatQuery),
    responses(
        (status = 200, description = "The project", content(
            (GroupView = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
async fn get_by_id(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(ONLY_2023)?;
    let project = super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let view = group_view(&state, &ctx, &project).await?;
    Reply::json(served, ctx.query.format, &view)
}

/// Return one project by name (404 `GROUP_NAME_NOT_FOUND` also for a project the caller
/// cannot see).
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/byName/{groupName}",
    operation_id = "getProjectByName",
    tag = "Projects",
    params(GroupNamePath, FormatQuery),
    responses(
        (status = 200, description = "The project", content(
            (GroupView = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
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
    let view = group_view(&state, &ctx, &project).await?;
    Reply::json(served, ctx.query.format, &view)
}

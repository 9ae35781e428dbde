//! Access roles through `POST /api/snapex/v1/groups/{groupId}/accessRoles`, over
//! `service::access_roles`: object-store credentials kept server-side, the secret part sealed
//! with the deployment key and never returned.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{Body, Reply};
use super::openapi::{BodyErrors, FormatQuery, GroupPath};
use super::versioning::Served;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::service::access_roles::{self, RoleRequest};
use crate::store::CloudProvider;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// A stored access role: its id (what buckets name as `iamRoleId` or `roleId`) and provider;
/// the credentials are never returned.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AccessRole)]
struct RoleView {
    /// The role's unique 24-hexadecimal-digit id.
    role_id: String,
    /// `AWS`, `AZURE` or `GCP`.
    #[schema(value_type = String, pattern = "^(AWS|AZURE|GCP)$")]
    provider: CloudProvider,
}

/// Store object-store credentials for the project's export buckets (sealed, never returned).
#[utoipa::path(
    post,
    path = "/api/snapex/v1/groups/{groupId}/accessRoles",
    operation_id = "snapexCreateAccessRole",
    tag = "snapex",
    params(GroupPath, FormatQuery),
    request_body(content((RoleRequest = "application/json"))),
    responses(
        (status = 200, description = "The role (without its credentials)", content(
            (RoleView = "application/json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Owner"]))),
)]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
    Body(request): Body<RoleRequest>,
) -> Result<Reply, ApiError> {
    super::project_for(&state, &principal, &group_id, Role::GroupOwner).await?;
    let role = access_roles::create(&state, &group_id, request).await?;
    let view = RoleView {
        role_id: role.id,
        provider: role.provider,
    };
    Reply::json(Served::Json, ctx.query.format, &view)
}

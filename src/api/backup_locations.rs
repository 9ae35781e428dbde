//! Backup locations through `GET /api/snapex/v1/groups/{groupId}/backupLocations`, over
//! `service::catalog`: the locations the operator declared for the project (no credential,
//! the access role by id) and the backups each registered as snapshots.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::Reply;
use super::openapi::{Errors, FormatQuery, GroupPath};
use super::versioning::Served;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::service::catalog::{self, LocationStatus};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Every backup location of the project (not paginated: the operator declares a handful).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BackupLocations)]
struct LocationsView {
    results: Vec<LocationStatus>,
    #[schema(minimum = 0)]
    total_count: usize,
}

/// The backup locations the operator declared for the project, with the backups each
/// registered.
#[utoipa::path(
    get,
    path = "/api/snapex/v1/groups/{groupId}/backupLocations",
    operation_id = "snapexListBackupLocations",
    tag = "snapex",
    params(GroupPath, FormatQuery),
    responses(
        (status = 200, description = "The project's backup locations", content(
            (LocationsView = "application/json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path(group_id): Path<String>,
) -> Result<Reply, ApiError> {
    super::project_for(&state, &principal, &group_id, Role::GroupReadOnly).await?;
    let results = catalog::project_locations(&state, &group_id).await?;
    let view = LocationsView {
        total_count: results.len(),
        results,
    };
    Reply::json(Served::Json, ctx.query.format, &view)
}

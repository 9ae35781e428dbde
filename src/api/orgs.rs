//! Organizations: `GET /api/atlas/v2/orgs` and `GET /api/atlas/v2/orgs/{orgId}`. Reading an
//! organization takes Organization Member, which every key of the organization holds, project
//! keys included (in Atlas a project's key belongs to its organization too).

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::Reply;
use super::openapi::{Errors, FormatQuery, ListQuery};
use super::pagination::{Link, Paginated};
use super::versioning::ONLY_2023;
use super::{ApiError, AppState, Ctx, check_id};
use crate::auth::Principal;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs))
        .routes(routes!(get_org))
}

/// `{orgId}`.
#[derive(utoipa::IntoParams)]
#[into_params(names("orgId"), parameter_in = Path)]
#[allow(dead_code)] // documentation only: the handler takes the path as a string
struct OrgPath(
    /// The organization's unique 24-hexadecimal-digit id.
    #[param(pattern = "^([a-f0-9]{24})$", min_length = 24, max_length = 24)]
    String,
);

/// An organization as Atlas shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AtlasOrganization)]
struct OrgView {
    /// The organization's unique 24-hexadecimal-digit id.
    id: String,
    /// Always false: deleted organizations are not served.
    is_deleted: bool,
    /// `self`.
    links: Vec<Link>,
    name: String,
}

/// Return one organization.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/orgs/{orgId}",
    operation_id = "getOrganization",
    tag = "Projects",
    params(OrgPath, FormatQuery),
    responses(
        (status = 200, description = "The organization", content(
            (OrgView = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Organization Member"]))),
)]
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
    Reply::json(served, ctx.query.format, &org_view(&ctx, &org))
}

/// `AtlasOrganization`.
fn org_view(ctx: &Ctx, org: &crate::store::Org) -> OrgView {
    OrgView {
        id: org.id.clone(),
        is_deleted: false,
        links: vec![Link {
            href: ctx.url(&format!("/api/atlas/v2/orgs/{}", org.id)),
            rel: "self".to_string(),
        }],
        name: org.name.clone(),
    }
}

/// The organizations the caller belongs to: a key belongs to exactly one.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/orgs",
    operation_id = "listOrganizations",
    tag = "Projects",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of organizations (the caller's one)", content(
            (Paginated<OrgView> = "application/vnd.atlas.2023-01-01+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Organization Member"]))),
)]
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
        orgs.push(org_view(&ctx, &org));
    }
    let total = orgs.len() as u64;
    let results = ctx.query.page.slice(orgs);
    let page = super::pagination::page(&ctx.self_url(), &ctx.query, results, total);
    Reply::json(served, ctx.query.format, &page)
}

//! The Atlas-compatible Admin API (`/api/atlas/v2`, `/api/atlas/v1.0`) and the snapex
//! extensions (`/api/snapex/v1`), one file per resource; conventions in [`versioning`],
//! [`pagination`] and [`json`], the error body in [`error`]. The HTTP side of authentication
//! is here too: [`auth`] (the [`Principal`] extractor, and the one mapping of `crate::auth`'s
//! refusals to 401/403/404) and [`oauth`] (the OAuth token endpoints); the rules themselves
//! are `crate::auth`'s.
//!
//! [`edge`] is what every request meets around its handler: framing and body limits, the 405
//! answer, the per-principal rate limit, the public URL of `links`.
//!
//! [`app`] builds the router from an [`AppState`]; serving (sockets, shutdown, the job runner)
//! is `cli::serve`'s, so tests can drive the router directly or over a real socket.
//!
//! Every handler takes the [`Principal`] first (401 before anything else), then [`Ctx`] (the
//! negotiated version and the common query parameters), then the body.

// ApiError (status, code, detail, field list, headers) is what every handler returns on its
// error path; boxing it would add an allocation to every error for no measurable gain next to
// the request's I/O, so the lint is silenced for the API layer as a whole.
#![allow(clippy::result_large_err)]

pub mod access_roles;
pub mod auth;
pub mod backup_locations;
pub mod clusters;
pub mod edge;
pub mod error;
pub mod export_buckets;
pub mod export_jobs;
pub mod groups;
pub mod health;
pub mod json;
pub mod oauth;
pub mod openapi;
pub mod orgs;
pub mod pagination;
pub mod schedule;
pub mod snapshots;
pub mod versioning;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use chrono::NaiveDate;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

use crate::auth::{AuthService, Principal, Role};
use crate::service::{Deployment, DeploymentConfig};
use crate::store::{Cluster, Project, Store};
use versioning::{Served, Version};

/// Everything a request handler needs: the deployment (store, configuration, the rules'
/// context), authentication and the HTTP edge (public URL, limits). Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub deployment: Deployment,
    pub auth: AuthService,
    pub edge: Arc<edge::Edge>,
}

impl AppState {
    /// A state with the default edge (links under [`edge::ROUTER_BASE_URL`]).
    pub fn new(store: Store, auth: AuthService, config: DeploymentConfig) -> Self {
        let deployment = Deployment::new(store, auth.secrets().clone(), config);
        Self::for_deployment(deployment, auth)
    }

    /// The state of a server whose runner shares `deployment` (its counters and wake-up).
    pub fn for_deployment(deployment: Deployment, auth: AuthService) -> Self {
        AppState {
            deployment,
            auth,
            edge: Arc::new(edge::Edge::default()),
        }
    }

    /// The same state behind `edge` (a server's public URL, body limit and rate limit).
    pub fn with_edge(mut self, edge: edge::Edge) -> Self {
        self.edge = Arc::new(edge);
        self
    }
}

/// Handlers read the deployment's parts (`state.store`, `state.config`) directly: the state is
/// the deployment plus authentication, nothing more.
impl std::ops::Deref for AppState {
    type Target = Deployment;
    fn deref(&self) -> &Deployment {
        &self.deployment
    }
}

impl FromRef<AppState> for AuthService {
    fn from_ref(state: &AppState) -> AuthService {
        state.auth.clone()
    }
}

/// Every documented operation, each resource's router with its documentation; the OpenAPI
/// document is what this router describes ([`openapi::build`]), so the two cannot drift.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(groups::routes())
        .merge(orgs::routes())
        .merge(clusters::routes())
        .merge(access_roles::routes())
        .merge(backup_locations::routes())
        .merge(snapshots::routes())
        .merge(export_buckets::routes())
        .merge(export_jobs::routes())
        .merge(schedule::routes())
        .merge(health::routes())
        .merge(openapi::routes())
        .merge(oauth::routes::<AppState>())
}

/// The whole API: Atlas paths, extensions, OAuth, health and the OpenAPI document, behind the
/// edge ([`edge::guard`]: framing limits before routing, rate-limit headers) and the request
/// counters.
pub fn app(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let edge = state.edge.clone();
    let (documented, _) = api_routes().split_for_parts();
    let routes = documented
        // The dashboard's HTML pages are for browsers, not API clients: not in the document.
        .merge(crate::dashboard::routes(
            &state,
            crate::dashboard::Options::default(),
        ))
        .fallback(not_found)
        // After every route is in: it is set on each path's method router.
        .method_not_allowed_fallback(edge::method_not_allowed)
        .with_state(state);
    // The layers wrap the whole router (an outer router with it as its only fallback), so
    // they see every request before routing and every answer, `Allow` included.
    Router::new()
        .fallback_service(routes)
        .layer(axum::extract::DefaultBodyLimit::max(edge.max_body_bytes))
        .layer(axum::middleware::from_fn(move |req, next| {
            edge::guard(edge.clone(), req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            health::track(metrics.clone(), req, next)
        }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("RESOURCE_NOT_FOUND", "Cannot find resource.")
}

/// The request context: common query parameters, the absolute base URL for links (the
/// configured public URL, never the request's `Host`), and the headers for version
/// negotiation.
pub struct Ctx {
    pub query: pagination::Query,
    pub base_url: String,
    pub path: String,
    headers: HeaderMap,
    today: NaiveDate,
}

impl Ctx {
    /// Negotiates the version among `versions` (Atlas v2 operations).
    pub fn version(&self, versions: &[Version]) -> Result<Served, ApiError> {
        versioning::negotiate(&self.headers, versions, self.today)
    }

    /// The absolute URL of this request's path (no query), for `links`.
    pub fn self_url(&self) -> String {
        format!("{}{}", self.base_url, self.path)
    }

    /// An absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params: HashMap<String, String> = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let query = pagination::Query::parse(&params)?;
        Ok(Ctx {
            query,
            base_url: state.edge.base_url.clone(),
            path: parts.uri.path().to_string(),
            headers: parts.headers.clone(),
            today: state
                .config
                .today_override
                .unwrap_or_else(versioning::today),
        })
    }
}

/// Checks a path id is 24 hex digits.
pub fn check_id(name: &str, value: &str) -> Result<(), ApiError> {
    Ok(crate::service::check_id(name, value)?)
}

/// The project `group_id`, when the caller holds `role` in it (otherwise, or when it does not
/// exist: 404 `GROUP_NOT_FOUND`, the same answer either way).
pub async fn project_for(
    state: &AppState,
    principal: &Principal,
    group_id: &str,
    role: Role,
) -> Result<Project, ApiError> {
    check_id("groupId", group_id)?;
    principal.require_group(group_id, role)?;
    state
        .store
        .get_project(group_id)
        .await?
        .ok_or_else(|| self::auth::group_not_found(group_id))
}

/// The cluster `name` of the project, 404 `CLUSTER_NOT_FOUND` otherwise.
pub async fn cluster_for(
    state: &AppState,
    principal: &Principal,
    group_id: &str,
    name: &str,
    role: Role,
) -> Result<(Project, Cluster), ApiError> {
    let project = project_for(state, principal, group_id, role).await?;
    let cluster = state
        .store
        .get_cluster(group_id, name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "CLUSTER_NOT_FOUND",
                format!("No cluster named {name} exists in group {group_id}."),
            )
            .with_parameters([name.to_string(), group_id.to_string()])
        })?;
    Ok((project, cluster))
}

/// ISO-8601 UTC with seconds, as Atlas prints dates (`2026-08-10T03:28:25Z`).
pub fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

//! `/healthz` (the process answers), `/readyz` (the database answers) and `/metrics`
//! (Prometheus text format, rendered by [`crate::metrics`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{ApiError, AppState};

use crate::metrics::Metrics;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Counts requests and responses by class.
pub async fn track(metrics: Arc<Metrics>, req: Request, next: Next) -> Response {
    metrics.requests.fetch_add(1, Ordering::Relaxed);
    let response = next.run(req).await;
    metrics.count_response(response.status().as_u16());
    response
}

/// The one value of `/healthz`'s `status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = LivenessStatus)]
enum Live {
    Ok,
}

/// `/healthz`'s body: `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Liveness)]
struct LiveView {
    status: Live,
}

/// The one value of `/readyz`'s `status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ReadinessStatus)]
enum Ready {
    Ready,
}

/// `/readyz`'s body when ready: `{"status": "ready"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Readiness)]
struct ReadyView {
    status: Ready,
}

/// Liveness: the process answers (no dependency is checked).
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "Operations",
    security(()),
    responses(
        (status = 200, description = "The process is up", content((LiveView = "application/json"))),
    ),
)]
async fn healthz() -> Json<LiveView> {
    Json(LiveView { status: Live::Ok })
}

/// Readiness: the metadata database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "Operations",
    security(()),
    responses(
        (status = 200, description = "Ready to serve", content((ReadyView = "application/json"))),
        (status = 503, description = "The database does not answer (`NOT_READY`)", content(
            (ErrorBody = "application/json"),
        )),
    ),
)]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(ReadyView {
            status: Ready::Ready,
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "database not ready");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "NOT_READY",
                "The database does not answer.",
            )
            .into_response()
        }
    }
}

/// The Prometheus exposition (text format 0.0.4): request and response counters, export jobs
/// by state, the replica sets exporting and their limit.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "Operations",
    security(()),
    responses(
        (status = 200, description = "Prometheus metrics", content(
            (String = "text/plain; version=0.0.4"),
        )),
        (status = 500, description = "Unexpected server error (details are logged, never sent)", content(
            (ErrorBody = "application/json"),
        )),
        (status = 503, description = "The metadata store is unavailable", content(
            (ErrorBody = "application/json"),
        )),
    ),
)]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let gauges = crate::metrics::DeploymentGauges {
        jobs_by_state: state.store.count_jobs_by_state().await?,
        exporting_replica_sets: state.store.running_replica_sets().await?,
        replica_set_limit: state.config.max_concurrent_replica_sets,
    };
    let out = state.metrics.render(&gauges);
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

//! `/healthz` (the process answers), `/readyz` (the database answers) and `/metrics`
//! (Prometheus text format, rendered by [`crate::metrics`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};

use crate::metrics::Metrics;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Counts requests and responses by class.
pub async fn track(metrics: Arc<Metrics>, req: Request, next: Next) -> Response {
    metrics.requests.fetch_add(1, Ordering::Relaxed);
    let response = next.run(req).await;
    metrics.count_response(response.status().as_u16());
    response
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
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

//! `/healthz` (the process answers), `/readyz` (the database answers) and `/metrics`
//! (Prometheus text format, hand-rolled: a few counters do not justify a metrics stack).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub jobs_created: AtomicU64,
    pub jobs_finished: AtomicU64,
}

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
    let counter = match response.status().as_u16() {
        200..=299 => &metrics.responses_2xx,
        400..=499 => &metrics.responses_4xx,
        500..=599 => &metrics.responses_5xx,
        _ => return response,
    };
    counter.fetch_add(1, Ordering::Relaxed);
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
    let m = &state.metrics;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    };
    counter(
        "snapex_http_requests_total",
        "HTTP requests received.",
        m.requests.load(Ordering::Relaxed),
    );
    counter(
        "snapex_http_responses_2xx_total",
        "HTTP 2xx responses.",
        m.responses_2xx.load(Ordering::Relaxed),
    );
    counter(
        "snapex_http_responses_4xx_total",
        "HTTP 4xx responses.",
        m.responses_4xx.load(Ordering::Relaxed),
    );
    counter(
        "snapex_http_responses_5xx_total",
        "HTTP 5xx responses.",
        m.responses_5xx.load(Ordering::Relaxed),
    );
    counter(
        "snapex_export_jobs_created_total",
        "Export jobs created on this node.",
        m.jobs_created.load(Ordering::Relaxed),
    );
    counter(
        "snapex_export_jobs_finished_total",
        "Export jobs finished on this node.",
        m.jobs_finished.load(Ordering::Relaxed),
    );
    out.push_str("# HELP snapex_export_jobs Export jobs by state (whole deployment).\n# TYPE snapex_export_jobs gauge\n");
    for (job_state, n) in state.store.count_jobs_by_state().await? {
        out.push_str(&format!(
            "snapex_export_jobs{{state=\"{job_state}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP snapex_exporting_replica_sets Replica sets exporting now (whole deployment).\n# TYPE snapex_exporting_replica_sets gauge\nsnapex_exporting_replica_sets {}\n",
        state.store.running_replica_sets().await?
    ));
    out.push_str(&format!(
        "# HELP snapex_exporting_replica_sets_limit The admission limit.\n# TYPE snapex_exporting_replica_sets_limit gauge\nsnapex_exporting_replica_sets_limit {}\n",
        state.config.max_concurrent_replica_sets
    ));
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

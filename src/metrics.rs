//! Process metrics: a few counters kept by the API (requests by class) and the job engine (jobs
//! created and finished on this node), rendered in the Prometheus text format. Hand-rolled: a
//! handful of counters does not justify a metrics stack. `api::health` serves them at
//! `/metrics`, adding the deployment-wide gauges it reads from the store.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub jobs_created: AtomicU64,
    pub jobs_finished: AtomicU64,
    /// Backup locations listed to the end by this node's catalog watcher.
    pub catalog_listings: AtomicU64,
}

/// Gauges of the whole deployment, read from the metadata store at scrape time.
#[derive(Debug, Default)]
pub struct DeploymentGauges {
    pub jobs_by_state: Vec<(String, u64)>,
    pub exporting_replica_sets: u64,
    pub replica_set_limit: u64,
}

impl Metrics {
    /// Counts one response by its status class.
    pub fn count_response(&self, status: u16) {
        let counter = match status {
            200..=299 => &self.responses_2xx,
            400..=499 => &self.responses_4xx,
            500..=599 => &self.responses_5xx,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters and `gauges`.
    pub fn render(&self, gauges: &DeploymentGauges) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: &AtomicU64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            );
        };
        counter(
            "snapex_http_requests_total",
            "HTTP requests received.",
            &self.requests,
        );
        counter(
            "snapex_http_responses_2xx_total",
            "HTTP 2xx responses.",
            &self.responses_2xx,
        );
        counter(
            "snapex_http_responses_4xx_total",
            "HTTP 4xx responses.",
            &self.responses_4xx,
        );
        counter(
            "snapex_http_responses_5xx_total",
            "HTTP 5xx responses.",
            &self.responses_5xx,
        );
        counter(
            "snapex_export_jobs_created_total",
            "Export jobs created on this node.",
            &self.jobs_created,
        );
        counter(
            "snapex_export_jobs_finished_total",
            "Export jobs finished on this node.",
            &self.jobs_finished,
        );
        counter(
            "snapex_catalog_listings_total",
            "Backup location listings completed on this node.",
            &self.catalog_listings,
        );
        out.push_str("# HELP snapex_export_jobs Export jobs by state (whole deployment).\n# TYPE snapex_export_jobs gauge\n");
        for (job_state, n) in &gauges.jobs_by_state {
            let _ = writeln!(out, "snapex_export_jobs{{state=\"{job_state}\"}} {n}");
        }
        let _ = write!(
            out,
            "# HELP snapex_exporting_replica_sets Replica sets exporting now (whole deployment).\n# TYPE snapex_exporting_replica_sets gauge\nsnapex_exporting_replica_sets {}\n",
            gauges.exporting_replica_sets
        );
        let _ = write!(
            out,
            "# HELP snapex_exporting_replica_sets_limit The admission limit.\n# TYPE snapex_exporting_replica_sets_limit gauge\nsnapex_exporting_replica_sets_limit {}\n",
            gauges.replica_set_limit
        );
        out
    }
}

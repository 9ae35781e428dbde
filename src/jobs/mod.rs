//! The export job engine of a node: admits queued jobs from the store, runs them through the
//! export engine (`crate::export`) and records the outcome.
//!
//! Shape (PRODUCT.md §3, issues 4 and 5):
//! - admission: [`Store::admit_next_job`] admits the oldest queued job while fewer than
//!   `max_concurrent_replica_sets` replica sets export across the deployment, leasing all its
//!   parts to this node (a sharded job's shards start together);
//! - leases: while a job runs, a heartbeat extends its lease and publishes progress; a node
//!   that stops heartbeating has its jobs failed as interrupted by whichever node notices first
//!   ([`Store::fail_interrupted_jobs`] runs on every poll), and a node that restarts under the
//!   same id fails its own leftovers at once;
//! - cancellation: a per-job [`CancellationToken`], fired by a cancel request (seen at the next
//!   heartbeat), by a lost lease, or by shutdown (the job then ends `Failed` as interrupted);
//! - no retry: a failed job stays failed and its partial files stay.
//!
//! [`retention`] is the node's other background task: it deletes expired snapshot records.
//!
//! Each job runs on a blocking thread of its own driving its replica sets with `block_on`:
//! the snapshot sources' futures are not `Send`, and a job is long-lived CPU-and-I/O work that
//! should not share the request runtime's worker threads with the API anyway.

pub mod retention;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::ApiConfig;
use crate::api::health::Metrics;
use crate::auth::SecretBox;
use crate::export::{
    CompleteInfo, ExportError, ExportOptions, ExportTarget, Progress, ReplicaSetSummary,
};
use crate::snapshot::SnapshotSource;
use crate::store::{ClaimedJob, ExportJob, JobState, StateReason, Store};

/// Settings of a node's runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This node's name in leases and "interrupted" reasons; stable across restarts.
    pub node_id: String,
    /// Replica sets exporting at once across the deployment (PRODUCT.md §3: 5).
    pub max_concurrent_replica_sets: u64,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often a running job heartbeats (and sees cancel requests).
    pub heartbeat_every: Duration,
    /// How often the queue is polled when nothing wakes the runner.
    pub poll_every: Duration,
    pub export: ExportOptions,
}

impl RunnerConfig {
    pub fn new(node_id: String) -> Self {
        RunnerConfig {
            node_id,
            max_concurrent_replica_sets: 5,
            lease: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(1),
            poll_every: Duration::from_secs(1),
            export: ExportOptions::default(),
        }
    }
}

/// What a runner needs from the server.
#[derive(Clone)]
pub struct Runner {
    pub store: Store,
    pub secrets: SecretBox,
    pub api: Arc<ApiConfig>,
    pub config: RunnerConfig,
    pub wakeup: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

fn lease_of(d: Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::seconds(30))
}

impl Runner {
    /// Runs until `shutdown` fires; running jobs are then stopped and failed as interrupted.
    pub async fn run(self, shutdown: CancellationToken) {
        match self
            .store
            .fail_interrupted_jobs(crate::store::now(), Some(&self.config.node_id))
            .await
        {
            Ok(jobs) => {
                for job in jobs {
                    tracing::warn!(job_id = %job.id, node = ?job.lease_owner, "export job was interrupted; marked failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot recover interrupted jobs"),
        }
        let mut running = tokio::task::JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if let Err(e) = self
                .store
                .fail_interrupted_jobs(crate::store::now(), None)
                .await
            {
                tracing::warn!(error = %e, "lease check failed");
            }
            loop {
                match self
                    .store
                    .admit_next_job(
                        &self.config.node_id,
                        self.config.max_concurrent_replica_sets,
                        lease_of(self.config.lease),
                    )
                    .await
                {
                    Ok(Some(claimed)) => {
                        tracing::info!(job_id = %claimed.job.id, replica_sets = claimed.job.parts.len(), "export job started");
                        let runner = self.clone();
                        let cancel = shutdown.child_token();
                        running.spawn(async move { runner.run_job(claimed, cancel).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot admit export jobs");
                        break;
                    }
                }
            }
            while running.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(self.config.poll_every) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        // Jobs see the cancelled parent token and end as interrupted.
        while running.join_next().await.is_some() {}
    }

    async fn run_job(&self, claimed: ClaimedJob, cancel: CancellationToken) {
        let job = claimed.job;
        let progress = Arc::new(JobProgress::default());
        let stop_heartbeat = CancellationToken::new();
        let cancel_requested = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat_loop(
            self.clone(),
            job.id.clone(),
            progress.clone(),
            cancel.clone(),
            cancel_requested.clone(),
            stop_heartbeat.clone(),
        ));
        let outcome = match self.export(&job, progress.clone(), cancel.clone()).await {
            // A setup step cut short by cancellation is the cancellation, not a failure.
            Err(JobFailure::Setup(_)) if cancel.is_cancelled() => Err(JobFailure::Cancelled),
            other => other,
        };
        stop_heartbeat.cancel();
        let _ = heartbeat.await;
        flush_progress(&self.store, &job.id, &progress).await;
        let mut summaries = Vec::new();
        let (state, reason) = match outcome {
            Ok(done) => {
                summaries = done;
                (JobState::Successful, None)
            }
            Err(JobFailure::Export(ExportError::Cancelled)) | Err(JobFailure::Cancelled)
                if cancel_requested.load(Ordering::Relaxed) =>
            {
                (
                    JobState::Cancelled,
                    Some(StateReason {
                        error_code: "CANCELLED".into(),
                        message: "export cancelled".into(),
                    }),
                )
            }
            Err(JobFailure::Export(ExportError::Cancelled)) | Err(JobFailure::Cancelled) => (
                JobState::Failed,
                Some(StateReason {
                    error_code: "EXPORT_INTERRUPTED".into(),
                    message: format!(
                        "export interrupted: node {} stopped while the export was in progress",
                        self.config.node_id
                    ),
                }),
            ),
            Err(e) => (
                JobState::Failed,
                Some(StateReason {
                    error_code: "EXPORT_FAILED".into(),
                    message: e.to_string(),
                }),
            ),
        };
        let recorded = if state == JobState::Successful {
            self.store.complete_job(&job.id, &summaries).await
        } else {
            self.store.finish_job(&job.id, state, reason.as_ref()).await
        };
        match recorded {
            Ok(true) => {
                self.metrics.jobs_finished.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job_id = %job.id, state = state.as_str(), reason = ?reason.as_ref().map(|r| &r.message), "export job finished");
            }
            Ok(false) => {
                tracing::warn!(job_id = %job.id, "export job was already decided elsewhere (lease lost)")
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "cannot record the end of an export job")
            }
        }
        self.wakeup.notify_one();
    }

    /// Runs every replica set of the job at once, then writes the manifest and `.complete`;
    /// returns each replica set's summary as JSON, for the job's record.
    async fn export(
        &self,
        job: &ExportJob,
        progress: Arc<JobProgress>,
        cancel: CancellationToken,
    ) -> Result<Vec<(String, String)>, JobFailure> {
        let store = &self.store;
        let missing = |what: &str| JobFailure::Setup(format!("{what} no longer exists"));
        let project = store
            .get_project(&job.group_id)
            .await?
            .ok_or_else(|| missing("the project"))?;
        let org = store
            .get_org(&project.org_id)
            .await?
            .ok_or_else(|| missing("the organization"))?;
        let cluster = store
            .get_cluster_by_id(&job.cluster_id)
            .await?
            .ok_or_else(|| missing("the cluster"))?;
        let snapshot = store
            .get_snapshot(&job.cluster_id, &job.snapshot_id)
            .await?
            .ok_or_else(|| missing(&format!("snapshot {}", job.snapshot_id)))?;
        let bucket = store
            .get_export_bucket(&job.group_id, &job.export_bucket_id)
            .await?
            .ok_or_else(|| missing(&format!("export bucket {}", job.export_bucket_id)))?;
        let location =
            crate::api::export_buckets::bucket_location(store, &self.secrets, &self.api, &bucket)
                .await
                .map_err(JobFailure::Setup)?;
        crate::api::export_buckets::permission_check(&location)
            .await
            .map_err(|e| JobFailure::Setup(format!("permission check failed: {e}")))?;
        let target = ExportTarget {
            bucket: location,
            prefix: job.prefix.clone(),
        };
        let complete = CompleteInfo {
            org_id: org.id.clone(),
            org_name: org.name.clone(),
            group_id: project.id.clone(),
            group_name: project.name.clone(),
            cluster_unique_id: cluster.id.clone(),
            cluster_name: cluster.name.clone(),
            snapshot_initiation_date: snapshot.created_at,
            labels: cluster
                .labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect(),
            custom_data: job
                .custom_data
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect(),
        };
        let parts: Vec<(String, String)> = snapshot
            .parts
            .iter()
            .map(|p| (p.replica_set_name.clone(), p.url.clone()))
            .collect();
        let storage = self.api.storage.clone();
        let options = self.config.export.clone();
        let handle = tokio::runtime::Handle::current();
        let lease_store = self.store.clone();
        let lease_job = job.id.clone();
        let lease_node = self.config.node_id.clone();
        let lease_len = self.config.lease;
        let progress_dyn: Arc<dyn Progress> = progress.clone();
        // See the module docs: the job's replica sets run on a blocking thread of their own.
        let summaries = tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                let exports = parts.into_iter().map(|(rs, url)| {
                    let target = &target;
                    let options = &options;
                    let storage = &storage;
                    let progress = progress_dyn.clone();
                    let cancel = cancel.clone();
                    async move {
                        let location = crate::storage::open(&url, storage).map_err(|e| {
                            JobFailure::Setup(format!("replica set {rs}: snapshot part {url}: {e}"))
                        })?;
                        let source = SnapshotSource::open(location).await.map_err(|e| {
                            JobFailure::Setup(format!(
                                "replica set {rs}: cannot read snapshot part: {e}"
                            ))
                        })?;
                        let summary = crate::export::export_replica_set(
                            &rs,
                            Arc::new(source),
                            target,
                            options,
                            progress,
                            cancel.clone(),
                        )
                        .await
                        .map_err(JobFailure::Export);
                        if summary.is_err() {
                            // One replica set failing stops the others: the job has failed.
                            cancel.cancel();
                        }
                        summary
                    }
                });
                let results = futures::future::join_all(exports).await;
                let summaries: Result<Vec<ReplicaSetSummary>, JobFailure> =
                    pick_first_real_error(results);
                let summaries = summaries?;
                // `.complete` is written only while this node still holds the job: a node whose
                // lease was taken (the job already failed as interrupted) must not mark it done.
                if !lease_store
                    .heartbeat(&lease_job, &lease_node, lease_of(lease_len))
                    .await?
                {
                    return Err(JobFailure::Setup("the job's lease was lost".into()));
                }
                crate::export::finish_export(&target, &complete, &summaries)
                    .await
                    .map_err(JobFailure::Export)?;
                Ok::<_, JobFailure>(summaries)
            })
        })
        .await
        .map_err(|e| JobFailure::Setup(format!("export task failed: {e}")))??;
        // Recorded with the job's end, in one transaction (Store::complete_job).
        Ok(summaries
            .iter()
            .map(|s| {
                (
                    s.replica_set.clone(),
                    serde_json::to_string(s).unwrap_or_default(),
                )
            })
            .collect())
    }
}

/// The outcome of every replica set: the summaries, or the error that caused the failure
/// (a real failure, rather than the `Cancelled` its siblings report after being stopped).
fn pick_first_real_error(
    results: Vec<Result<ReplicaSetSummary, JobFailure>>,
) -> Result<Vec<ReplicaSetSummary>, JobFailure> {
    let mut cancelled = None;
    let mut summaries = Vec::new();
    for r in results {
        match r {
            Ok(s) => summaries.push(s),
            Err(JobFailure::Export(ExportError::Cancelled)) => {
                cancelled = Some(JobFailure::Export(ExportError::Cancelled))
            }
            Err(e) => return Err(e),
        }
    }
    match cancelled {
        Some(e) => Err(e),
        None => Ok(summaries),
    }
}

#[derive(Debug, thiserror::Error)]
enum JobFailure {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Export(ExportError),
    #[error("export cancelled")]
    Cancelled,
    #[error("metadata store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Collection counts per replica set, updated from export worker threads and flushed to the
/// store by the heartbeat.
#[derive(Default)]
struct JobProgress {
    counts: Mutex<HashMap<String, (u64, u64)>>,
}

impl Progress for JobProgress {
    fn collections_planned(&self, replica_set: &str, total: usize) {
        if let Ok(mut c) = self.counts.lock() {
            c.entry(replica_set.to_string()).or_default().1 = total as u64;
        }
    }
    fn collection_finished(&self, replica_set: &str, _namespace: &str) {
        if let Ok(mut c) = self.counts.lock() {
            c.entry(replica_set.to_string()).or_default().0 += 1;
        }
    }
}

async fn flush_progress(store: &Store, job_id: &str, progress: &JobProgress) {
    let counts: Vec<(String, (u64, u64))> = match progress.counts.lock() {
        Ok(c) => c.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        Err(_) => return,
    };
    for (rs, (done, total)) in counts {
        if let Err(e) = store.update_part_progress(job_id, &rs, done, total).await {
            tracing::warn!(job_id, error = %e, "cannot record export progress");
        }
    }
}

async fn heartbeat_loop(
    runner: Runner,
    job_id: String,
    progress: Arc<JobProgress>,
    cancel: CancellationToken,
    cancel_requested: Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(runner.config.heartbeat_every) => {}
        }
        flush_progress(&runner.store, &job_id, &progress).await;
        match runner
            .store
            .heartbeat(
                &job_id,
                &runner.config.node_id,
                lease_of(runner.config.lease),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job_id, "lease lost; stopping the export");
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(job_id, error = %e, "heartbeat failed"),
        }
        if let Ok(true) = runner.store.cancel_requested(&job_id).await {
            tracing::info!(job_id, "cancel requested; stopping the export");
            cancel_requested.store(true, Ordering::Relaxed);
            cancel.cancel();
        }
    }
}

/// A default node id: the host name, so a restarted node recognises its own leftovers.
pub fn default_node_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "snapex".to_string())
}

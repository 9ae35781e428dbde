//! The export job engine of a node: admits queued jobs from the store, runs them through the
//! export engine (`crate::export`) and records the outcome.
//!
//! Shape (PRODUCT.md §3, issues 4 and 5):
//! - admission: [`Store::admit_next_job`] admits the oldest queued job while fewer than
//!   `max_concurrent_replica_sets` replica sets export across the deployment, leasing all its
//!   parts to this node (a sharded job's shards start together);
//! - leases: while a job runs, a heartbeat extends its lease and publishes progress; a node
//!   that stops heartbeating has its jobs recovered by whichever node notices first (a sweep
//!   runs on every poll), and a node that restarts under the same id recovers its own
//!   leftovers at once;
//! - recovery ([`recovery`]), one rule: an interrupted job whose prefix holds a `.complete`
//!   over a manifest that verifies ends `Successful`, any other ends `Failed` as interrupted
//!   — never `Failed` beside a valid `.complete`, never `Successful` without one (the why, and
//!   each crash point, are in that module's docs);
//! - cancellation: a per-job [`CancellationToken`], fired by a cancel request (seen at the next
//!   heartbeat), by a lost lease, or by shutdown (the job then ends `Failed` as interrupted);
//! - no retry: a failed job stays failed and its partial files stay.
//!
//! [`retention`] is the node's other background task: it deletes expired snapshot records.
//!
//! Each job runs on a blocking thread of its own driving its replica sets with `block_on`:
//! the snapshot sources' futures are not `Send`, and a job is long-lived CPU-and-I/O work that
//! should not share the request runtime's worker threads with the API anyway.

// `JobFailure` carries its causes inline (a storage or source error with its context); it is
// built at most once per job, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod heartbeat;
mod recovery;
pub mod retention;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use tokio_util::sync::CancellationToken;

use crate::export::{CompleteInfo, CompletionGate, ExportError, ExportTarget, Progress};
use crate::service::Deployment;
use crate::service::buckets::{self, LocationError};
use crate::snapshot::{SnapshotSource, SourceError};
use crate::store::{ClaimedJob, ExportJob, JobState, StateReason, Store, StoreError};

/// A node's job runner: the deployment it works for (store, configuration, counters).
#[derive(Clone)]
pub struct Runner {
    pub deployment: Deployment,
}

fn lease_of(d: Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::seconds(30))
}

impl Runner {
    fn store(&self) -> &Store {
        &self.deployment.store
    }

    fn node_id(&self) -> &str {
        &self.deployment.config.node_id
    }

    fn lease(&self) -> ChronoDuration {
        lease_of(self.deployment.config.lease)
    }

    /// Runs until `shutdown` fires; running jobs are then stopped and failed as interrupted.
    pub async fn run(self, shutdown: CancellationToken) {
        // This node's own leftovers first: a node restarting under its id holds nothing.
        if let Err(e) = recovery::sweep(&self, Some(self.node_id())).await {
            tracing::error!(error = %e, "cannot recover interrupted jobs");
        }
        // One sweep of other nodes' expired jobs at a time: a sweep that finds a `.complete`
        // verifies the export, which may take a while, and must not hold up admission.
        let sweeping = Arc::new(AtomicBool::new(false));
        let heartbeats = Arc::new(heartbeat::Heartbeats::start(self.store()).await);
        let mut running = tokio::task::JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if !sweeping.swap(true, Ordering::AcqRel) {
                let runner = self.clone();
                let sweeping = sweeping.clone();
                tokio::spawn(async move {
                    if let Err(e) = recovery::sweep(&runner, None).await {
                        tracing::warn!(error = %e, "lease check failed");
                    }
                    sweeping.store(false, Ordering::Release);
                });
            }
            loop {
                match self
                    .store()
                    .admit_next_job(
                        self.node_id(),
                        self.deployment.config.max_concurrent_replica_sets,
                        self.lease(),
                    )
                    .await
                {
                    Ok(Some(claimed)) => {
                        tracing::info!(job_id = %claimed.job.id, replica_sets = claimed.job.parts.len(), "export job started");
                        let runner = self.clone();
                        let cancel = shutdown.child_token();
                        let heartbeats = heartbeats.clone();
                        running.spawn(
                            async move { runner.run_job(claimed, cancel, &heartbeats).await },
                        );
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
                _ = self.deployment.wakeup.notified() => {}
                _ = tokio::time::sleep(self.deployment.config.poll_every) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        // Jobs see the cancelled parent token and end as interrupted.
        while running.join_next().await.is_some() {}
    }

    /// How often a running job renews its lease: the configured heartbeat interval (which is
    /// also how soon a cancel request is seen), and at least three times per lease, so that
    /// one or two late renewals never let it expire.
    fn renew_every(&self) -> Duration {
        self.deployment
            .config
            .heartbeat_every
            .min(self.deployment.config.lease / 3)
    }

    async fn run_job(
        &self,
        claimed: ClaimedJob,
        cancel: CancellationToken,
        heartbeats: &heartbeat::Heartbeats,
    ) {
        let job = claimed.job;
        let progress = Arc::new(JobProgress::default());
        let stop_heartbeat = CancellationToken::new();
        let cancel_requested = Arc::new(AtomicBool::new(false));
        self.deployment.local_jobs.started(
            &job.id,
            crate::service::local_jobs::LocalJob {
                cancel: cancel.clone(),
                cancel_requested: cancel_requested.clone(),
            },
        );
        let heartbeat = heartbeats.spawn(heartbeat_loop(
            Lease {
                store: heartbeats.store().clone(),
                job_id: job.id.clone(),
                node_id: self.node_id().to_string(),
                lease: self.lease(),
                every: self.renew_every(),
            },
            progress.clone(),
            cancel.clone(),
            cancel_requested.clone(),
            stop_heartbeat.clone(),
        ));
        let outcome = match self.export(&job, progress.clone(), cancel.clone()).await {
            // A setup step cut short by cancellation is the cancellation, not a failure.
            Err(e) if e.is_setup() && cancel.is_cancelled() => Err(JobFailure::Cancelled),
            other => other,
        };
        self.deployment.local_jobs.finished(&job.id);
        stop_heartbeat.cancel();
        let _ = heartbeat.await;
        flush_progress(self.store(), &job.id, &progress).await;
        if outcome.is_err() {
            // Before the end is recorded, so that a job shown failed or cancelled has nothing
            // open in its bucket; bounded, so that a dead store cannot hold the verdict back.
            let cleaning = async {
                if let Ok(prefix) = recovery::job_prefix(&self.deployment, &job).await {
                    crate::export::leftovers::clean(&prefix).await;
                }
            };
            if tokio::time::timeout(recovery::CLEAN_TIMEOUT, cleaning)
                .await
                .is_err()
            {
                tracing::warn!(job_id = %job.id, "gave up cleaning the unfinished uploads of a stopped export");
            }
        }
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
                Some(crate::store::interrupted_reason(Some(self.node_id()))),
            ),
            Err(e) => (
                JobState::Failed,
                Some(StateReason {
                    error_code: "EXPORT_FAILED".into(),
                    message: crate::errors::chain(&e),
                }),
            ),
        };
        let recorded = if state == JobState::Successful {
            self.store().complete_job(&job.id, &summaries).await
        } else {
            self.store()
                .finish_job(&job.id, state, reason.as_ref())
                .await
        };
        match recorded {
            Ok(true) => {
                self.deployment
                    .metrics
                    .jobs_finished
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(job_id = %job.id, state = state.as_str(), reason = ?reason.as_ref().map(|r| &r.message), "export job finished");
            }
            Ok(false) => {
                tracing::warn!(job_id = %job.id, "export job was already decided elsewhere (lease lost)");
                if state == JobState::Successful {
                    // This node wrote `.complete` after another decided the job (recovery).
                    recovery::withdraw_complete(self, &job).await;
                }
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "cannot record the end of an export job")
            }
        }
        self.deployment.wakeup.notify_one();
    }

    /// Opens the job's bucket and snapshot parts and runs the export — the same orchestration
    /// as `snapex export` ([`crate::export::run_export_gated`]), with a gate that checks the
    /// lease before `.complete`; returns each replica set's summary as JSON, for the job's record.
    async fn export(
        &self,
        job: &ExportJob,
        progress: Arc<JobProgress>,
        cancel: CancellationToken,
    ) -> Result<Vec<(String, String)>, JobFailure> {
        let store = self.store();
        let missing = |what: String| JobFailure::Missing { what };
        let project = store
            .get_project(&job.group_id)
            .await?
            .ok_or_else(|| missing("the project".into()))?;
        let org = store
            .get_org(&project.org_id)
            .await?
            .ok_or_else(|| missing("the organization".into()))?;
        let cluster = store
            .get_cluster_by_id(&job.cluster_id)
            .await?
            .ok_or_else(|| missing("the cluster".into()))?;
        let snapshot = store
            .get_snapshot(&job.cluster_id, &job.snapshot_id)
            .await?
            .ok_or_else(|| missing(format!("snapshot {}", job.snapshot_id)))?;
        // A backup the catalog registered and then no longer found: say so, rather than
        // whatever opening its missing files would say.
        if let Some(backup) = store.catalog_backup_of_snapshot(&snapshot.id).await?
            && let Some(gone_at) = backup.gone_at
        {
            return Err(JobFailure::BackupGone {
                url: backup.backup_url,
                location: backup.location,
                gone_at,
            });
        }
        let bucket = store
            .get_export_bucket(&job.group_id, &job.export_bucket_id)
            .await?
            .ok_or_else(|| missing(format!("export bucket {}", job.export_bucket_id)))?;
        let location = buckets::location(&self.deployment, &bucket)
            .await
            .map_err(JobFailure::Bucket)?;
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
        let parts = snapshot.parts.clone();
        let deployment = self.deployment.clone();
        let group_id = job.group_id.clone();
        let mut options = self.deployment.config.export.clone();
        // Validated when the job was created; a stored filter that no longer parses (edited
        // by hand) fails the job rather than exporting more than was asked.
        options.namespaces = crate::service::export_jobs::namespace_filter(&job.namespaces)
            .map_err(JobFailure::Namespaces)?;
        crate::service::export_jobs::apply_format(job, &mut options)?;
        let handle = tokio::runtime::Handle::current();
        let gate = LeaseGate {
            store: store.clone(),
            job_id: job.id.clone(),
            node_id: self.node_id().to_string(),
            lease: self.lease(),
        };
        let progress_dyn: Arc<dyn Progress> = progress.clone();
        // See the module docs: the job's replica sets run on a blocking thread of their own.
        let summary = tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                let opened = futures::future::join_all(
                    parts
                        .into_iter()
                        .map(|part| open_part(&deployment, &group_id, part)),
                )
                .await;
                let sources = opened.into_iter().collect::<Result<Vec<_>, _>>()?;
                crate::export::run_export_gated(
                    sources,
                    &target,
                    &complete,
                    &options,
                    progress_dyn,
                    cancel,
                    &gate,
                )
                .await
                .map_err(|e| match e {
                    ExportError::NotCompleted(_) => JobFailure::LeaseLost,
                    other => JobFailure::Export(other),
                })
            })
        })
        .await
        .map_err(JobFailure::Task)??;
        // Recorded with the job's end, in one transaction (Store::complete_job).
        Ok(summary
            .replica_sets
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

/// Opens one snapshot part for reading, through the same confinement as its import (a grant
/// the operator withdrew since holds).
async fn open_part(
    deployment: &Deployment,
    group_id: &str,
    part: crate::store::SnapshotPart,
) -> Result<(String, Arc<SnapshotSource>), JobFailure> {
    let replica_set = part.replica_set_name;
    let url = part.url;
    let location =
        crate::service::sources::open_part(deployment, group_id, &url, part.role_id.as_deref())
            .await
            .map_err(|source| JobFailure::PartUrl {
                replica_set: replica_set.clone(),
                url: url.clone(),
                source,
            })?;
    let source =
        SnapshotSource::open(location)
            .await
            .map_err(|source| JobFailure::PartUnreadable {
                replica_set: replica_set.clone(),
                source,
            })?;
    Ok((replica_set, Arc::new(source)))
}

/// `.complete` is written only while this node still holds the job: a node whose lease was
/// taken (the job already failed as interrupted) must not mark it done.
struct LeaseGate {
    store: Store,
    job_id: String,
    node_id: String,
    lease: ChronoDuration,
}

#[async_trait::async_trait]
impl CompletionGate for LeaseGate {
    async fn may_complete(&self) -> Result<(), crate::export::GateError> {
        if self
            .store
            .heartbeat(&self.job_id, &self.node_id, self.lease)
            .await?
        {
            Ok(())
        } else {
            Err(Box::new(JobFailure::LeaseLost))
        }
    }
}

/// Why a job did not succeed, with its causes (the job's `stateReason` shows the chain).
#[derive(Debug, thiserror::Error)]
enum JobFailure {
    #[error("{what} no longer exists")]
    Missing { what: String },
    #[error(
        "the snapshot's backup {url} was deleted from backup location {location} (found gone {gone_at})"
    )]
    BackupGone {
        url: String,
        location: String,
        gone_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("the job's namespace filter")]
    Namespaces(#[source] crate::service::Invalid),
    #[error("cannot reach the export bucket")]
    Bucket(#[source] LocationError),
    #[error("replica set {replica_set}: snapshot part {url}")]
    PartUrl {
        replica_set: String,
        url: String,
        #[source]
        source: crate::service::sources::PartError,
    },
    #[error("replica set {replica_set}: cannot read snapshot part")]
    PartUnreadable {
        replica_set: String,
        #[source]
        source: SourceError,
    },
    #[error(transparent)]
    Export(ExportError),
    #[error("export cancelled")]
    Cancelled,
    #[error("the job's lease was lost")]
    LeaseLost,
    #[error("export task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("metadata store")]
    Store(#[from] StoreError),
}

impl JobFailure {
    /// A failure of a setup step (before data moves), which a cancellation explains instead.
    fn is_setup(&self) -> bool {
        !matches!(self, JobFailure::Export(_) | JobFailure::Cancelled)
    }
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

/// What a heartbeat renews, and how often.
struct Lease {
    store: Store,
    job_id: String,
    node_id: String,
    lease: ChronoDuration,
    every: Duration,
}

/// Renews the job's lease every `lease.every` (see `heartbeat`), publishing progress and
/// watching for a cancel request; a lost lease stops the export at once.
async fn heartbeat_loop(
    lease: Lease,
    progress: Arc<JobProgress>,
    cancel: CancellationToken,
    cancel_requested: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let Lease {
        store,
        job_id,
        node_id,
        lease,
        every,
    } = lease;
    // Renewals are due on a fixed schedule, not `every` after the previous one ended: a slow
    // renewal does not push the next one back.
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store.heartbeat(&job_id, &node_id, lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job_id, "lease lost; stopping the export");
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(job_id, error = %e, "heartbeat failed"),
        }
        flush_progress(&store, &job_id, &progress).await;
        if let Ok(true) = store.cancel_requested(&job_id).await {
            tracing::info!(job_id, "cancel requested; stopping the export");
            cancel_requested.store(true, Ordering::Relaxed);
            cancel.cancel();
        }
    }
}

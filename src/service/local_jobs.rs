//! The export jobs this process is running, by id, so that a cancel request received here
//! stops its job at once rather than at the job's next heartbeat.
//!
//! A cancel is recorded in the metadata store first (that is what every node's heartbeat
//! reads, so a job running on another node stops within one heartbeat). Without this table
//! the node that took the request would also wait for its own heartbeat, and on a loaded
//! machine a heartbeat plus the unwinding of the export took more than the 2 s Atlas users
//! expect of a cancel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// How a running job is stopped for a cancel request: the flag first, so that the runner reads
/// the stop as a cancellation (not a failure or a shutdown), then the token.
#[derive(Clone)]
pub struct LocalJob {
    pub cancel: CancellationToken,
    pub cancel_requested: Arc<AtomicBool>,
}

impl LocalJob {
    fn cancel(&self) {
        self.cancel_requested.store(true, Ordering::Relaxed);
        self.cancel.cancel();
    }
}

#[derive(Default)]
pub struct LocalJobs {
    running: Mutex<HashMap<String, LocalJob>>,
}

impl LocalJobs {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, LocalJob>> {
        // A panic while holding the lock cannot leave the map half-updated: every update is
        // one insert or remove.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a job this process started; [`LocalJobs::finished`] removes it.
    pub fn started(&self, job_id: &str, job: LocalJob) {
        self.map().insert(job_id.to_string(), job);
    }

    pub fn finished(&self, job_id: &str) {
        self.map().remove(job_id);
    }

    /// Stops the job if this process runs it; whether it did.
    pub fn cancel(&self, job_id: &str) -> bool {
        let job = self.map().get(job_id).cloned();
        match job {
            Some(job) => {
                job.cancel();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_reaches_only_a_job_this_process_runs() {
        let jobs = LocalJobs::default();
        let job = LocalJob {
            cancel: CancellationToken::new(),
            cancel_requested: Arc::new(AtomicBool::new(false)),
        };
        jobs.started("a", job.clone());
        assert!(!jobs.cancel("b"));
        assert!(!job.cancel.is_cancelled());
        assert!(jobs.cancel("a"));
        assert!(job.cancel.is_cancelled() && job.cancel_requested.load(Ordering::Relaxed));
        jobs.finished("a");
        assert!(!jobs.cancel("a"));
    }
}

//! Snapshot retention: every node sweeps the store at an interval and deletes the records of
//! expired snapshots ([`Store::delete_expired_snapshots`]): never one marked `doNotDelete`,
//! never one with a queued or running export job, and never any file — imported snapshot parts
//! belong to the user, and snapex deletes no snapshot files at all.
//!
//! Several nodes sharing PostgreSQL may sweep at the same moment: the sweep is one conditional
//! `DELETE`, so each record is deleted once and the others find nothing left to do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::store::{ExpiredSnapshot, Store, StoreError};

/// Deletes the snapshot records expired at `now` and logs each one.
pub async fn sweep(store: &Store, now: DateTime<Utc>) -> Result<Vec<ExpiredSnapshot>, StoreError> {
    let deleted = store.delete_expired_snapshots(now).await?;
    for s in &deleted {
        tracing::info!(
            snapshot_id = %s.id,
            group_id = %s.group_id,
            cluster = %s.cluster_name,
            "expired snapshot record deleted"
        );
    }
    Ok(deleted)
}

/// Sweeps every `interval` (the first sweep at once) until `shutdown` fires. A failed sweep
/// is logged and retried at the next interval.
pub async fn run(store: Store, interval: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&store, crate::store::now()).await {
            tracing::warn!(error = %e, "snapshot retention sweep failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

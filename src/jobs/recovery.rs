//! Recovery of interrupted jobs: what a job whose node stopped (crash, SIGKILL, a lease that ran
//! out) ends as, decided by whichever node notices first — the node itself when it restarts
//! under the same id, or any node on its poll once the lease has expired.
//!
//! The rule: **a job whose prefix holds a `.complete` over a `.manifest.json` that verifies
//! ends `Successful`; every other interrupted job ends `Failed` as interrupted.** Never `Failed`
//! with a valid `.complete`, never `Successful` without one.
//!
//! Why this rule and not "remove `.complete`, then fail": `.complete` is the contract with the
//! readers of the bucket (PRODUCT.md §2) — whoever watches for it may already have imported the
//! data by the time a node recovers, so taking it back cannot undo anything, while a verified
//! `.complete` proves every file is there. The bucket is written in the order data files →
//! manifest → `.complete` → job record, so each crash point resolves to one outcome:
//!
//! | killed                                   | in the bucket                 | recovered as |
//! | ---------------------------------------- | ----------------------------- | ------------ |
//! | while writing data files                 | some data, no manifest        | `Failed`     |
//! | after the last data file, before manifest| all data, no manifest         | `Failed`     |
//! | after the manifest, before `.complete`   | manifest, no `.complete`      | `Failed`     |
//! | after `.complete`, before the record     | `.complete` + manifest        | `Successful` |
//! | while recording the final state          | `.complete` + manifest        | `Successful` |
//!
//! Two edges keep the rule true when a node is not dead but late:
//! - the decision re-checks the lease in the transaction that records it
//!   ([`Store::recover_job`]), so a heartbeat that came in between wins;
//! - a node that wrote `.complete` and then finds the job decided elsewhere (its lease was
//!   taken before `.complete` appeared, so the job was failed) removes its `.complete`
//!   ([`withdraw_complete`]).
//!
//! Recovery also removes what the dead node left unfinished: multipart uploads still open under
//! the prefix and `file://` staging files (`crate::export::leftovers`); finished objects stay.
//!
//! A `.complete` that does not verify (a file missing or altered since) is removed, and the job
//! fails: a `.complete` is a promise that everything is there. When the bucket cannot be read at
//! all (the store is down), the decision waits for a later poll — failing would break the rule
//! if a `.complete` is there — but not forever: after [`CHECK_GIVE_UP`] the job fails saying
//! its bucket could not be checked, so no job stays `InProgress`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration as ChronoDuration;
use object_store::ObjectStoreExt;
use object_store::path::PathPart;
use serde::Deserialize;

use super::Runner;
use crate::export::{
    COMPLETE_FILE, MANIFEST_FILE, ManifestObject, ReplicaSetSummary, SkippedCollection,
};
use crate::service::Deployment;
use crate::service::buckets::{self, LocationError};
use crate::storage::Location;
use crate::store::{
    ExportJob, InterruptedJob, RecoveredPart, Recovery, StateReason, StoreError, interrupted_reason,
};

/// How long after its lease ran out a job whose bucket cannot be read is still left
/// `InProgress`, waiting for the store to come back before it is failed unchecked.
pub const CHECK_GIVE_UP: ChronoDuration = ChronoDuration::minutes(10);

/// How long the end of a failed or cancelled job waits for its leftovers to be cleaned
/// (`export::leftovers`) before recording it anyway.
pub const CLEAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a job's prefix says about it.
#[derive(Debug)]
pub(super) enum Inspection {
    /// `.complete` over a manifest that verifies: the parts as the manifest lists them.
    Complete(Vec<RecoveredPart>),
    /// No `.complete`.
    Incomplete,
    /// A `.complete` whose manifest does not verify (the first problem).
    Invalid(String),
}

/// Why a job's prefix could not be inspected.
#[derive(Debug, thiserror::Error)]
pub(super) enum InspectError {
    #[error("export bucket {bucket_id} no longer exists")]
    NoBucket { bucket_id: String },
    #[error("cannot reach the export bucket")]
    Location(#[source] LocationError),
    #[error("cannot read {key}")]
    Read {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// The job's export prefix in its bucket.
pub(super) async fn job_prefix(
    deployment: &Deployment,
    job: &ExportJob,
) -> Result<Location, InspectError> {
    let bucket = deployment
        .store
        .get_export_bucket(&job.group_id, &job.export_bucket_id)
        .await?
        .ok_or_else(|| InspectError::NoBucket {
            bucket_id: job.export_bucket_id.clone(),
        })?;
    let location = buckets::location(deployment, &bucket)
        .await
        .map_err(InspectError::Location)?;
    Ok(location.child(&job.prefix))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    objects: Vec<ManifestObject>,
    #[serde(default)]
    skipped_collections: Vec<SkippedCollection>,
    #[serde(default)]
    skipped_invalid_documents: u64,
}

/// Reads the prefix: `.complete`, then (only when it is there) the whole export against its
/// manifest with [`crate::export::verify::verify`].
pub(super) async fn inspect(
    prefix: &Location,
    replica_sets: &[String],
) -> Result<Inspection, InspectError> {
    let complete = prefix.prefix.clone().join(PathPart::from(COMPLETE_FILE));
    match prefix.store.head(&complete).await {
        Ok(_) => {}
        Err(object_store::Error::NotFound { .. }) => return Ok(Inspection::Incomplete),
        Err(source) => {
            return Err(InspectError::Read {
                key: complete.to_string(),
                source,
            });
        }
    }
    let report = crate::export::verify::verify(prefix).await;
    if let Some(problem) = report.problems.first() {
        return Ok(Inspection::Invalid(problem.clone()));
    }
    let manifest_path = prefix.prefix.clone().join(PathPart::from(MANIFEST_FILE));
    let read = |source| InspectError::Read {
        key: manifest_path.to_string(),
        source,
    };
    let bytes = prefix
        .store
        .get(&manifest_path)
        .await
        .map_err(read)?
        .bytes()
        .await
        .map_err(read)?;
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        // verify read the same manifest; a change in between is a problem like any other.
        Err(e) => return Ok(Inspection::Invalid(format!("{MANIFEST_FILE}: {e}"))),
    };
    Ok(Inspection::Complete(parts_of(&manifest, replica_sets)))
}

/// Each replica set's summary, rebuilt from the manifest (what a recovered job records).
fn parts_of(manifest: &Manifest, replica_sets: &[String]) -> Vec<RecoveredPart> {
    let mut by_set: BTreeMap<&str, ReplicaSetSummary> = BTreeMap::new();
    for (i, rs) in replica_sets.iter().enumerate() {
        by_set.insert(
            rs,
            ReplicaSetSummary {
                replica_set: rs.clone(),
                // The manifest keeps one total; the first replica set carries it.
                skipped_invalid_documents: if i == 0 {
                    manifest.skipped_invalid_documents
                } else {
                    0
                },
                skipped_collections: manifest
                    .skipped_collections
                    .iter()
                    .filter(|s| &s.replica_set == rs)
                    .cloned()
                    .collect(),
                ..Default::default()
            },
        );
    }
    for object in &manifest.objects {
        if let Some(summary) = by_set.get_mut(object.replica_set.as_str()) {
            summary.documents += object.documents;
            summary.objects.push(object.clone());
        }
    }
    by_set
        .into_values()
        .map(|mut summary| {
            let collections: BTreeSet<&str> = summary
                .objects
                .iter()
                .map(|o| o.collection.as_str())
                .collect();
            summary.exported_collections = collections.len() as u64;
            RecoveredPart {
                replica_set: summary.replica_set.clone(),
                collections: summary.exported_collections,
                // A summary always serializes.
                summary: serde_json::to_string(&summary).unwrap_or_default(),
            }
        })
        .collect()
}

/// Removes `.complete` from a prefix (logging what happened): for a `.complete` that must not
/// stand because the job did not succeed.
pub(super) async fn remove_complete(prefix: &Location, job_id: &str) {
    let path = prefix.prefix.clone().join(PathPart::from(COMPLETE_FILE));
    match prefix.store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {
            tracing::warn!(job_id, key = %path, "removed a .complete the job's outcome does not back")
        }
        Err(error) => {
            tracing::error!(job_id, key = %path, error = %crate::errors::chain(&error), "cannot remove .complete")
        }
    }
}

/// After this node wrote `.complete` and then could not record the job `Successful` because
/// another node had already decided it: unless that decision was `Successful` (it saw this
/// `.complete`), the `.complete` goes.
pub(super) async fn withdraw_complete(runner: &Runner, job: &ExportJob) {
    let decided = match runner.store().get_export_job_by_id(&job.id).await {
        Ok(Some(decided)) => decided,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(job_id = %job.id, error = %error, "cannot read the job's outcome; its .complete stays");
            return;
        }
    };
    if decided.state == crate::store::JobState::Successful {
        return;
    }
    match job_prefix(&runner.deployment, job).await {
        Ok(prefix) => remove_complete(&prefix, &job.id).await,
        Err(error) => {
            tracing::error!(job_id = %job.id, error = %crate::errors::chain(&error), "cannot reach the bucket to remove .complete")
        }
    }
}

/// Decides every interrupted job (`owner`: also this node's own, whatever their lease) by the
/// rule of the module docs.
pub(super) async fn sweep(runner: &Runner, owner: Option<&str>) -> Result<(), StoreError> {
    let store = runner.store();
    for interrupted in store.interrupted_jobs(crate::store::now(), owner).await? {
        let Some(job) = store.get_export_job_by_id(&interrupted.id).await? else {
            continue;
        };
        let Some((outcome, prefix)) = decide(runner, &interrupted, &job).await else {
            continue;
        };
        if store.recover_job(&job.id, owner, &outcome).await? {
            // Only once the decision is ours: a node whose heartbeat came late keeps its job
            // (the lease re-check above), and its uploads in progress must stay too. The
            // owner is gone or stops at its next heartbeat; what it left unfinished (an open
            // multipart upload, a staging file) goes, whichever way the job ended.
            if let Some(prefix) = &prefix {
                crate::export::leftovers::clean(prefix).await;
            }
            match &outcome {
                Recovery::Completed { .. } => {
                    tracing::warn!(job_id = %job.id, node = ?interrupted.lease_owner, "export job was interrupted after its .complete; marked successful")
                }
                Recovery::Interrupted { reason } => {
                    tracing::warn!(job_id = %job.id, node = ?interrupted.lease_owner, reason = %reason.message, "export job was interrupted; marked failed")
                }
            }
        }
    }
    Ok(())
}

/// The outcome of one interrupted job and its prefix (when it could be reached), or `None` to
/// decide at a later poll.
async fn decide(
    runner: &Runner,
    interrupted: &InterruptedJob,
    job: &ExportJob,
) -> Option<(Recovery, Option<Location>)> {
    let base = interrupted_reason(interrupted.lease_owner.as_deref());
    let replica_sets: Vec<String> = job
        .parts
        .iter()
        .map(|p| p.replica_set_name.clone())
        .collect();
    let inspected = match job_prefix(&runner.deployment, job).await {
        Ok(prefix) => inspect(&prefix, &replica_sets)
            .await
            .map(|inspection| (prefix, inspection)),
        Err(e) => Err(e),
    };
    match inspected {
        Ok((prefix, Inspection::Complete(parts))) => {
            Some((Recovery::Completed { parts }, Some(prefix)))
        }
        Ok((prefix, Inspection::Incomplete)) => {
            Some((Recovery::Interrupted { reason: base }, Some(prefix)))
        }
        Ok((prefix, Inspection::Invalid(problem))) => {
            // Removed before the job is failed: never `Failed` beside a `.complete`.
            remove_complete(&prefix, &job.id).await;
            let reason = StateReason {
                message: format!(
                    "{}; the {COMPLETE_FILE} it left does not match its manifest ({problem}) and was removed",
                    base.message
                ),
                ..base
            };
            Some((Recovery::Interrupted { reason }, Some(prefix)))
        }
        Err(error) => {
            let error = crate::errors::chain(&error);
            let expired = interrupted
                .lease_expired_at
                .unwrap_or_else(crate::store::now);
            if crate::store::now() - expired < CHECK_GIVE_UP {
                tracing::warn!(job_id = %job.id, %error, "cannot check an interrupted job's bucket for .complete; deciding later");
                return None;
            }
            let reason = StateReason {
                message: format!(
                    "{}; its bucket could not be checked for {COMPLETE_FILE}: {error}",
                    base.message
                ),
                ..base
            };
            Some((Recovery::Interrupted { reason }, None))
        }
    }
}

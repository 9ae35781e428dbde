//! Export jobs and their per-replica-set parts, with the claiming protocol the job engine uses.
//!
//! Why this shape: SQLite has no row locks and several nodes may share one PostgreSQL, so a
//! job is owned through a *lease* (owner, expiry, heartbeat) on its part rows rather than a
//! held lock. Admission ([`Store::admit_next_job`]) runs in one transaction that first writes
//! the single `job_claim_lock` row: on PostgreSQL that row lock serializes admission across
//! nodes (so the replica-set limit holds for the whole deployment), on SQLite it takes the
//! write lock up front. Every state change is a conditional `UPDATE … WHERE state = …`, so a
//! node whose lease was taken away can never overwrite the verdict of another.
//!
//! Part states: `Running` (leased by a node), `Done`, `Failed`, `Cancelled`; a queued job's
//! parts are `Queued`. The job row holds what the API shows.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Label, Page, Store, StoreError, from_millis, map_unique, new_id, now, parse_json, to_json,
    to_millis,
};

/// A job's `state`, spelled as the variant names (Atlas's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum JobState {
    Queued,
    InProgress,
    Successful,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Queued => "Queued",
            JobState::InProgress => "InProgress",
            JobState::Successful => "Successful",
            JobState::Failed => "Failed",
            JobState::Cancelled => "Cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "Queued" => JobState::Queued,
            "InProgress" => JobState::InProgress,
            "Successful" => JobState::Successful,
            "Failed" => JobState::Failed,
            "Cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Successful | JobState::Failed | JobState::Cancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl PartState {
    pub fn as_str(&self) -> &'static str {
        match self {
            PartState::Queued => "Queued",
            PartState::Running => "Running",
            PartState::Done => "Done",
            PartState::Failed => "Failed",
            PartState::Cancelled => "Cancelled",
        }
    }
    fn parse(s: &str) -> PartState {
        match s {
            "Running" => PartState::Running,
            "Done" => PartState::Done,
            "Failed" => PartState::Failed,
            "Cancelled" => PartState::Cancelled,
            _ => PartState::Queued,
        }
    }
}

/// Why a job ended as it did (`stateReason` in v2, `errMsg` in v1.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateReason {
    pub error_code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPart {
    pub replica_set_name: String,
    pub export_id: String,
    pub state: PartState,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub exported_collections: u64,
    pub total_collections: u64,
    /// The JSON `ReplicaSetSummary` once the part is done.
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportJob {
    pub id: String,
    pub group_id: String,
    pub cluster_id: String,
    pub cluster_name: String,
    pub snapshot_id: String,
    pub export_bucket_id: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub custom_data: Vec<Label>,
    pub prefix: String,
    pub state: JobState,
    pub state_reason: Option<StateReason>,
    pub cancel_requested: bool,
    /// The namespace filter the job was created with (the `/api/snapex/v1` extension); empty
    /// lists export everything.
    pub namespaces: JobNamespaces,
    pub parts: Vec<JobPart>,
    /// The export format as the service stored it (JSON text), `None` for Atlas's JSON layout.
    pub export_format: Option<String>,
}

/// A job's namespace patterns as the caller wrote them (validated by `service::export_jobs`);
/// stored as JSON, NULL when both lists are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ExportNamespaces)]
pub struct JobNamespaces {
    /// `<database>.<collection>` patterns (mongorestore's `--nsInclude` wildcards) of the
    /// collections to export; none: every collection.
    #[serde(default)]
    pub include: Vec<String>,
    /// Patterns of collections left out, even when included.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl JobNamespaces {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

impl ExportJob {
    pub fn exported_collections(&self) -> u64 {
        self.parts.iter().map(|p| p.exported_collections).sum()
    }
    pub fn total_collections(&self) -> u64 {
        self.parts.iter().map(|p| p.total_collections).sum()
    }
}

#[derive(Debug, Clone)]
pub struct NewExportJob {
    pub group_id: String,
    pub cluster_id: String,
    pub cluster_name: String,
    pub snapshot_id: String,
    pub export_bucket_id: String,
    pub created_at: DateTime<Utc>,
    pub custom_data: Vec<Label>,
    pub prefix: String,
    /// One part per replica set, in the snapshot's order.
    pub replica_sets: Vec<String>,
    pub namespaces: JobNamespaces,
    /// See [`ExportJob::export_format`].
    pub export_format: Option<String>,
}

/// A job admitted to run on this node, with all its parts leased to it.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job: ExportJob,
    pub lease_owner: String,
}

/// A job whose node stopped holding it while it ran, found by [`Store::interrupted_jobs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedJob {
    pub id: String,
    pub lease_owner: Option<String>,
    /// When its lease ran out (the earliest of its running parts).
    pub lease_expired_at: Option<DateTime<Utc>>,
}

/// How [`Store::recover_job`] ends an interrupted job.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// The job's prefix holds a `.complete` over a manifest that verifies: `Successful`.
    Completed { parts: Vec<RecoveredPart> },
    /// Anything else: `Failed` with this reason.
    Interrupted { reason: StateReason },
}

/// A replica set of a job recovered as completed, rebuilt from its manifest.
#[derive(Debug, Clone)]
pub struct RecoveredPart {
    pub replica_set: String,
    /// The `ReplicaSetSummary` JSON.
    pub summary: String,
    /// Collections the manifest lists for it.
    pub collections: u64,
}

/// A job failed by [`Store::fail_interrupted_jobs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredJob {
    pub id: String,
    pub lease_owner: Option<String>,
}

pub(super) const JOB_COLUMNS: &str = "id, group_id, cluster_id, cluster_name, snapshot_id, export_bucket_id, \
    created_at, started_at, finished_at, custom_data, prefix, state, state_reason_code, \
    state_reason_message, cancel_requested, namespaces, export_format";

pub(super) fn job_from_row(row: &AnyRow) -> Result<ExportJob, StoreError> {
    let state: String = row.try_get("state")?;
    let code: Option<String> = row.try_get("state_reason_code")?;
    let message: Option<String> = row.try_get("state_reason_message")?;
    Ok(ExportJob {
        id: row.try_get("id")?,
        group_id: row.try_get("group_id")?,
        cluster_id: row.try_get("cluster_id")?,
        cluster_name: row.try_get("cluster_name")?,
        snapshot_id: row.try_get("snapshot_id")?,
        export_bucket_id: row.try_get("export_bucket_id")?,
        created_at: from_millis(row.try_get("created_at")?),
        started_at: row
            .try_get::<Option<i64>, _>("started_at")?
            .map(from_millis),
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at")?
            .map(from_millis),
        custom_data: parse_json(
            "export_jobs.custom_data",
            &row.try_get::<String, _>("custom_data")?,
        )?,
        prefix: row.try_get("prefix")?,
        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            column: "export_jobs.state".into(),
            message: state.clone(),
        })?,
        state_reason: match (code, message) {
            (Some(error_code), Some(message)) => Some(StateReason {
                error_code,
                message,
            }),
            _ => None,
        },
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        namespaces: match row.try_get::<Option<String>, _>("namespaces")? {
            Some(json) => parse_json("export_jobs.namespaces", &json)?,
            None => JobNamespaces::default(),
        },
        parts: Vec::new(),
        export_format: row.try_get("export_format")?,
    })
}

fn part_from_row(row: &AnyRow) -> Result<(String, JobPart), StoreError> {
    let state: String = row.try_get("state")?;
    Ok((
        row.try_get("job_id")?,
        JobPart {
            replica_set_name: row.try_get("replica_set_name")?,
            export_id: row.try_get("export_id")?,
            state: PartState::parse(&state),
            lease_owner: row.try_get("lease_owner")?,
            lease_expires_at: row
                .try_get::<Option<i64>, _>("lease_expires_at")?
                .map(from_millis),
            exported_collections: u64::try_from(row.try_get::<i64, _>("exported_collections")?)
                .unwrap_or(0),
            total_collections: u64::try_from(row.try_get::<i64, _>("total_collections")?)
                .unwrap_or(0),
            summary: row.try_get("summary")?,
        },
    ))
}

const PART_COLUMNS: &str = "job_id, replica_set_name, export_id, state, lease_owner, lease_expires_at, \
    exported_collections, total_collections, summary";

impl Store {
    /// Creates a `Queued` job and its parts. [`StoreError::Duplicate`] when the snapshot already
    /// has an active export (enforced by a unique index, so concurrent creates cannot both win).
    pub async fn create_export_job(&self, new: NewExportJob) -> Result<ExportJob, StoreError> {
        let id = new_id();
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO export_jobs ({JOB_COLUMNS}, replica_set_count, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $9, 'Queued', NULL, NULL, 0, $10, $11, $12, $13)"
        ))
        .bind(&id)
        .bind(&new.group_id)
        .bind(&new.cluster_id)
        .bind(&new.cluster_name)
        .bind(&new.snapshot_id)
        .bind(&new.export_bucket_id)
        .bind(to_millis(new.created_at))
        .bind(to_json(&new.custom_data))
        .bind(&new.prefix)
        .bind((!new.namespaces.is_empty()).then(|| to_json(&new.namespaces)))
        .bind(&new.export_format)
        .bind(i64::try_from(new.replica_sets.len()).unwrap_or(i64::MAX))
        .bind(to_millis(now()))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            // Which unique index refused: the prefix one names `prefix` in its message
            // (SQLite: `export_jobs.prefix`; PostgreSQL: `export_jobs_bucket_prefix`).
            if let sqlx::Error::Database(db) = &e
                && db.is_unique_violation()
                && (db.message().contains("prefix")
                    || db.constraint().is_some_and(|c| c.contains("prefix")))
            {
                return StoreError::PrefixTaken {
                    prefix: new.prefix.clone(),
                };
            }
            map_unique(
                e,
                &format!("an active export of snapshot {}", new.snapshot_id),
            )
        })?;
        for (position, rs) in new.replica_sets.iter().enumerate() {
            sqlx::query(
                "INSERT INTO export_job_parts (job_id, replica_set_name, export_id, position, state) \
                 VALUES ($1, $2, $3, $4, 'Queued')",
            )
            .bind(&id)
            .bind(rs)
            .bind(new_id())
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.get_export_job_by_id(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("export job {id}"),
            })
    }

    pub(super) async fn load_parts(&self, jobs: &mut [ExportJob]) -> Result<(), StoreError> {
        for job in jobs.iter_mut() {
            let rows = sqlx::query(&format!(
                "SELECT {PART_COLUMNS} FROM export_job_parts WHERE job_id = $1 ORDER BY position"
            ))
            .bind(&job.id)
            .fetch_all(&self.pool)
            .await?;
            job.parts = rows
                .iter()
                .map(|r| part_from_row(r).map(|(_, p)| p))
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    pub async fn get_export_job_by_id(&self, id: &str) -> Result<Option<ExportJob>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut jobs = [job_from_row(&row)?];
        self.load_parts(&mut jobs).await?;
        let [job] = jobs;
        Ok(Some(job))
    }

    /// The job `id` of cluster `cluster_name` in project `group_id` (any other is not found).
    pub async fn get_export_job(
        &self,
        group_id: &str,
        cluster_name: &str,
        id: &str,
    ) -> Result<Option<ExportJob>, StoreError> {
        Ok(self
            .get_export_job_by_id(id)
            .await?
            .filter(|j| j.group_id == group_id && j.cluster_name == cluster_name))
    }

    /// One page of a cluster's export jobs, newest first, and the total count.
    pub async fn list_export_jobs(
        &self,
        group_id: &str,
        cluster_name: &str,
        page: Page,
    ) -> Result<(Vec<ExportJob>, u64), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM export_jobs WHERE group_id = $1 AND cluster_name = $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(group_id)
        .bind(cluster_name)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM export_jobs WHERE group_id = $1 AND cluster_name = $2",
        )
        .bind(group_id)
        .bind(cluster_name)
        .fetch_one(&self.pool)
        .await?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.load_parts(&mut jobs).await?;
        Ok((jobs, u64::try_from(total).unwrap_or(0)))
    }

    /// Replica sets currently exporting across every node (parts `Running`).
    pub async fn running_replica_sets(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM export_job_parts WHERE state = 'Running'")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Jobs per state, for `/metrics`.
    pub async fn count_jobs_by_state(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM export_jobs GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("state")?,
                    u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Admits the oldest queued job when fewer than `limit` replica sets are exporting across
    /// the deployment, leasing all its parts to `node` until `now + lease`. All parts start
    /// together, even past the limit (a sharded job's shards start at once, PRODUCT.md §3).
    pub async fn admit_next_job(
        &self,
        node: &str,
        limit: u64,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // First statement is a write: see the module docs.
        sqlx::query("UPDATE job_claim_lock SET claims = claims + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let running: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM export_job_parts WHERE state = 'Running'")
                .fetch_one(&mut *tx)
                .await?;
        if u64::try_from(running).unwrap_or(0) >= limit {
            tx.rollback().await?;
            return Ok(None);
        }
        let candidate: Option<String> = sqlx::query_scalar(
            "SELECT id FROM export_jobs WHERE state = 'Queued' ORDER BY created_at, id LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = candidate else {
            tx.rollback().await?;
            return Ok(None);
        };
        let t = now();
        let expires = to_millis(t + lease);
        let done = sqlx::query(
            "UPDATE export_jobs SET state = 'InProgress', started_at = $1, updated_at = $1 \
             WHERE id = $2 AND state = 'Queued'",
        )
        .bind(to_millis(t))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE export_job_parts SET state = 'Running', lease_owner = $1, lease_expires_at = $2, \
             heartbeat_at = $3 WHERE job_id = $4 AND state = 'Queued'",
        )
        .bind(node)
        .bind(expires)
        .bind(to_millis(t))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let job = self
            .get_export_job_by_id(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("export job {id}"),
            })?;
        Ok(Some(ClaimedJob {
            job,
            lease_owner: node.to_string(),
        }))
    }

    /// Extends the lease of `node`'s running parts of a job. Returns `Ok(false)` when the node no
    /// longer holds any (the job was failed as interrupted by another node): stop working on it.
    pub async fn heartbeat(
        &self,
        job_id: &str,
        node: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let t = now();
        let done = sqlx::query(
            "UPDATE export_job_parts SET lease_expires_at = $1, heartbeat_at = $2 \
             WHERE job_id = $3 AND lease_owner = $4 AND state = 'Running'",
        )
        .bind(to_millis(t + lease))
        .bind(to_millis(t))
        .bind(job_id)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether a cancel was requested for the job.
    pub async fn cancel_requested(&self, job_id: &str) -> Result<bool, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT cancel_requested FROM export_jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.unwrap_or(0) != 0)
    }

    /// Records a part's collection counts.
    pub async fn update_part_progress(
        &self,
        job_id: &str,
        replica_set: &str,
        exported_collections: u64,
        total_collections: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE export_job_parts SET exported_collections = $1, total_collections = $2 \
             WHERE job_id = $3 AND replica_set_name = $4",
        )
        .bind(i64::try_from(exported_collections).unwrap_or(i64::MAX))
        .bind(i64::try_from(total_collections).unwrap_or(i64::MAX))
        .bind(job_id)
        .bind(replica_set)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks `node`'s part done with its summary; false when the node lost the lease.
    pub async fn finish_part(
        &self,
        job_id: &str,
        replica_set: &str,
        node: &str,
        summary_json: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE export_job_parts SET state = 'Done', summary = $1 \
             WHERE job_id = $2 AND replica_set_name = $3 AND lease_owner = $4 AND state = 'Running'",
        )
        .bind(summary_json)
        .bind(job_id)
        .bind(replica_set)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends an in-progress job `Successful` and records its replica sets' summaries (JSON) in
    /// one transaction. Done parts no longer count as exporting, so if they were marked done
    /// before the job ended, another node could admit a job in between and a reader would see
    /// six jobs `InProgress`. Returns false when another node already decided the job.
    pub async fn complete_job(
        &self,
        job_id: &str,
        summaries: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let t = to_millis(now());
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE export_jobs SET state = 'Successful', finished_at = $1, updated_at = $1, \
             state_reason_code = NULL, state_reason_message = NULL WHERE id = $2 AND state = 'InProgress'",
        )
        .bind(t)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for (replica_set, summary) in summaries {
            sqlx::query(
                "UPDATE export_job_parts SET state = 'Done', summary = $1, lease_owner = NULL \
                 WHERE job_id = $2 AND replica_set_name = $3",
            )
            .bind(summary)
            .bind(job_id)
            .bind(replica_set)
            .execute(&mut *tx)
            .await?;
        }
        crate::pause::at(crate::pause::Phase::Recording).await;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends an in-progress job (`Successful`, `Failed` or `Cancelled`); parts not done take the
    /// matching end state. Conditional on the job still being `InProgress`: returns false when
    /// another node already decided (e.g. failed it as interrupted).
    pub async fn finish_job(
        &self,
        job_id: &str,
        state: JobState,
        reason: Option<&StateReason>,
    ) -> Result<bool, StoreError> {
        let t = to_millis(now());
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE export_jobs SET state = $1, finished_at = $2, updated_at = $2, \
             state_reason_code = $3, state_reason_message = $4 WHERE id = $5 AND state = 'InProgress'",
        )
        .bind(state.as_str())
        .bind(t)
        .bind(reason.map(|r| r.error_code.clone()))
        .bind(reason.map(|r| r.message.clone()))
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let part_state = match state {
            JobState::Cancelled => PartState::Cancelled,
            _ => PartState::Failed,
        };
        sqlx::query(
            "UPDATE export_job_parts SET state = $1, lease_owner = NULL \
             WHERE job_id = $2 AND state IN ('Queued', 'Running')",
        )
        .bind(part_state.as_str())
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Requests cancellation. A queued job is cancelled at once (it never started); an
    /// in-progress one is flagged for its node to stop. Returns the job after the change, or
    /// `None` when it does not exist.
    pub async fn request_cancel(&self, job_id: &str) -> Result<Option<ExportJob>, StoreError> {
        let t = to_millis(now());
        let queued = sqlx::query(
            "UPDATE export_jobs SET state = 'Cancelled', finished_at = $1, updated_at = $1, \
             state_reason_code = 'CANCELLED', state_reason_message = 'export cancelled before it started', \
             cancel_requested = 1 WHERE id = $2 AND state = 'Queued'",
        )
        .bind(t)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        if queued.rows_affected() == 1 {
            sqlx::query("UPDATE export_job_parts SET state = 'Cancelled' WHERE job_id = $1")
                .bind(job_id)
                .execute(&self.pool)
                .await?;
        } else {
            sqlx::query(
                "UPDATE export_jobs SET cancel_requested = 1, updated_at = $1 \
                 WHERE id = $2 AND state = 'InProgress'",
            )
            .bind(t)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        }
        self.get_export_job_by_id(job_id).await
    }

    /// In-progress jobs with a running part whose lease expired before `at` (their node died or
    /// stopped heartbeating), and with `owner = Some(node)` also that node's jobs whatever their
    /// lease (a node restarting under the same name knows it holds nothing). Nothing is
    /// changed: the caller inspects each job's bucket and decides with [`Store::recover_job`].
    pub async fn interrupted_jobs(
        &self,
        at: DateTime<Utc>,
        owner: Option<&str>,
    ) -> Result<Vec<InterruptedJob>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.job_id, p.lease_owner, MIN(p.lease_expires_at) AS expired_at \
             FROM export_job_parts p JOIN export_jobs j ON j.id = p.job_id \
             WHERE j.state = 'InProgress' AND p.state = 'Running' \
             AND (p.lease_expires_at < $1 OR p.lease_owner = $2) \
             GROUP BY p.job_id, p.lease_owner",
        )
        .bind(to_millis(at))
        .bind(owner.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut jobs: Vec<InterruptedJob> = Vec::new();
        for row in rows {
            let id: String = row.try_get("job_id")?;
            if jobs.iter().any(|j| j.id == id) {
                continue;
            }
            jobs.push(InterruptedJob {
                id,
                lease_owner: row.try_get("lease_owner")?,
                lease_expired_at: row
                    .try_get::<Option<i64>, _>("expired_at")?
                    .map(from_millis),
            });
        }
        Ok(jobs)
    }

    /// Decides an interrupted job (see [`Store::interrupted_jobs`]) as `outcome`, if it is still
    /// interrupted: in one transaction whose first statement takes its running parts only while
    /// their lease has expired *now* (or is `owner`'s). That conditional `UPDATE` is the lease
    /// check of the decision itself: a heartbeat that renewed the lease after the caller looked
    /// wins (on PostgreSQL the two updates of the part rows serialize on their row locks and
    /// the loser re-evaluates its `WHERE`; SQLite has one writer), so a live node's job is never
    /// decided by another. Returns false when the job was not decided here.
    pub async fn recover_job(
        &self,
        job_id: &str,
        owner: Option<&str>,
        outcome: &Recovery,
    ) -> Result<bool, StoreError> {
        let t = to_millis(now());
        let part_state = match outcome {
            Recovery::Completed { .. } => PartState::Done,
            Recovery::Interrupted { .. } => PartState::Failed,
        };
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query(
            "UPDATE export_job_parts SET state = $1, lease_owner = NULL \
             WHERE job_id = $2 AND state = 'Running' AND (lease_expires_at < $3 OR lease_owner = $4)",
        )
        .bind(part_state.as_str())
        .bind(job_id)
        .bind(t)
        .bind(owner.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let (state, reason) = match outcome {
            Recovery::Completed { .. } => (JobState::Successful, None),
            Recovery::Interrupted { reason } => (JobState::Failed, Some(reason)),
        };
        let done = sqlx::query(
            "UPDATE export_jobs SET state = $1, finished_at = $2, updated_at = $2, \
             state_reason_code = $3, state_reason_message = $4 WHERE id = $5 AND state = 'InProgress'",
        )
        .bind(state.as_str())
        .bind(t)
        .bind(reason.map(|r| r.error_code.clone()))
        .bind(reason.map(|r| r.message.clone()))
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Parts another lease held (none in practice: a job's parts are leased together).
        sqlx::query(
            "UPDATE export_job_parts SET state = $1, lease_owner = NULL \
             WHERE job_id = $2 AND state IN ('Queued', 'Running')",
        )
        .bind(part_state.as_str())
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        if let Recovery::Completed { parts } = outcome {
            for part in parts {
                // A successful export exported every planned collection; the planned count is
                // the one the node last recorded, else the manifest's.
                let n = i64::try_from(part.collections).unwrap_or(i64::MAX);
                sqlx::query(
                    "UPDATE export_job_parts SET summary = $1, \
                     total_collections = CASE WHEN total_collections > 0 THEN total_collections ELSE $2 END, \
                     exported_collections = CASE WHEN total_collections > 0 THEN total_collections ELSE $2 END \
                     WHERE job_id = $3 AND replica_set_name = $4",
                )
                .bind(&part.summary)
                .bind(n)
                .bind(job_id)
                .bind(&part.replica_set)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Fails every interrupted job (see [`Store::interrupted_jobs`]) with a reason naming its
    /// node, without looking at its bucket. The job engine decides through
    /// [`Store::recover_job`] instead, after checking for `.complete` (see `crate::jobs`).
    pub async fn fail_interrupted_jobs(
        &self,
        at: DateTime<Utc>,
        owner: Option<&str>,
    ) -> Result<Vec<RecoveredJob>, StoreError> {
        let mut recovered = Vec::new();
        for job in self.interrupted_jobs(at, owner).await? {
            let reason = interrupted_reason(job.lease_owner.as_deref());
            if self
                .recover_job(&job.id, owner, &Recovery::Interrupted { reason })
                .await?
            {
                recovered.push(RecoveredJob {
                    id: job.id,
                    lease_owner: job.lease_owner,
                });
            }
        }
        Ok(recovered)
    }
}

/// The reason of a job whose node stopped while it ran.
pub fn interrupted_reason(node: Option<&str>) -> StateReason {
    StateReason {
        error_code: "EXPORT_INTERRUPTED".into(),
        message: format!(
            "export interrupted: node {} stopped while the export was in progress",
            node.unwrap_or("unknown")
        ),
    }
}

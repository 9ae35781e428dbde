//! Snapshots: one part per replica set, each a mongodump directory or archive at a storage URL.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::kinds::{FrequencyType, SnapshotStatus, SnapshotType};
use super::{
    Page, Store, StoreError, bool_to_i64, from_millis, new_id, now, parse_json, parse_kind,
    to_json, to_millis,
};

/// One replica set's part of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPart {
    pub replica_set_name: String,
    pub url: String,
    /// The project's access role the part is read with (remote parts); `None`: the grant or
    /// root that allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    pub storage_size_bytes: u64,
    pub mongod_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub group_id: String,
    pub cluster_id: String,
    pub cluster_name: String,
    pub status: SnapshotStatus,
    pub snapshot_type: SnapshotType,
    pub frequency_type: FrequencyType,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub storage_size_bytes: u64,
    pub mongod_version: Option<String>,
    pub parts: Vec<SnapshotPart>,
    pub do_not_delete: bool,
    pub policy_item_id: Option<String>,
    /// Whether snapex wrote the snapshot's files (and may delete them); imported ones: false.
    pub owns_files: bool,
}

/// The MongoDB version each cluster's snapshots record, by cluster id.
pub type MongodVersions = std::collections::HashMap<String, String>;

impl Snapshot {
    /// The snapshot id of each part of a sharded snapshot (Atlas's `members[].id` and
    /// `snapshotIds`), in part order. Atlas gives every shard and the config server a snapshot
    /// of its own; snapex keeps one record per sharded snapshot, so a member's id is derived
    /// from the snapshot's id and the part's replica set name: stable across nodes and
    /// restarts without a column of its own, ObjectId-shaped (24 hex digits) as clients expect,
    /// and distinct from every other id with the odds of a 96-bit hash.
    pub fn member_ids(&self) -> Vec<String> {
        self.parts
            .iter()
            .map(|p| member_id(&self.id, &p.replica_set_name))
            .collect()
    }
}

fn member_id(snapshot_id: &str, replica_set_name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"snapex member snapshot\0")
        .chain_update(snapshot_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(replica_set_name.as_bytes())
        .finalize();
    hex::encode(&digest[..12])
}

/// A snapshot record that the retention sweep deleted (for its log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredSnapshot {
    pub id: String,
    pub group_id: String,
    pub cluster_id: String,
    pub cluster_name: String,
}

#[derive(Debug, Clone)]
pub struct NewSnapshot {
    pub status: SnapshotStatus,
    pub snapshot_type: SnapshotType,
    pub frequency_type: FrequencyType,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub mongod_version: Option<String>,
    pub parts: Vec<SnapshotPart>,
    pub policy_item_id: Option<String>,
    pub owns_files: bool,
}

const COLUMNS: &str = "id, group_id, cluster_id, cluster_name, status, snapshot_type, frequency_type, \
    description, created_at, expires_at, storage_size_bytes, mongod_version, parts, do_not_delete, \
    policy_item_id, owns_files";

fn snapshot_from_row(row: &AnyRow) -> Result<Snapshot, StoreError> {
    Ok(Snapshot {
        id: row.try_get("id")?,
        group_id: row.try_get("group_id")?,
        cluster_id: row.try_get("cluster_id")?,
        cluster_name: row.try_get("cluster_name")?,
        status: parse_kind("snapshots.status", row, SnapshotStatus::parse)?,
        snapshot_type: parse_kind("snapshots.snapshot_type", row, SnapshotType::parse)?,
        frequency_type: parse_kind("snapshots.frequency_type", row, FrequencyType::parse)?,
        description: row.try_get("description")?,
        created_at: from_millis(row.try_get("created_at")?),
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")?
            .map(from_millis),
        storage_size_bytes: u64::try_from(row.try_get::<i64, _>("storage_size_bytes")?)
            .unwrap_or(0),
        mongod_version: row.try_get("mongod_version")?,
        parts: parse_json("snapshots.parts", &row.try_get::<String, _>("parts")?)?,
        do_not_delete: row.try_get::<i64, _>("do_not_delete")? != 0,
        policy_item_id: row.try_get("policy_item_id")?,
        owns_files: row.try_get::<i64, _>("owns_files")? != 0,
    })
}

impl Store {
    pub async fn create_snapshot(
        &self,
        cluster: &super::Cluster,
        new: NewSnapshot,
    ) -> Result<Snapshot, StoreError> {
        let size: u64 = new.parts.iter().map(|p| p.storage_size_bytes).sum();
        let snapshot = Snapshot {
            id: new_id(),
            group_id: cluster.group_id.clone(),
            cluster_id: cluster.id.clone(),
            cluster_name: cluster.name.clone(),
            status: new.status,
            snapshot_type: new.snapshot_type,
            frequency_type: new.frequency_type,
            description: new.description,
            created_at: new.created_at,
            expires_at: new.expires_at,
            storage_size_bytes: size,
            mongod_version: new.mongod_version,
            parts: new.parts,
            do_not_delete: false,
            policy_item_id: new.policy_item_id,
            owns_files: new.owns_files,
        };
        sqlx::query(&format!(
            "INSERT INTO snapshots ({COLUMNS}, imported_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&snapshot.id)
        .bind(&snapshot.group_id)
        .bind(&snapshot.cluster_id)
        .bind(&snapshot.cluster_name)
        .bind(snapshot.status.as_str())
        .bind(snapshot.snapshot_type.as_str())
        .bind(snapshot.frequency_type.as_str())
        .bind(snapshot.description.clone())
        .bind(to_millis(snapshot.created_at))
        .bind(snapshot.expires_at.map(to_millis))
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(snapshot.mongod_version.clone())
        .bind(to_json(&snapshot.parts))
        .bind(bool_to_i64(snapshot.do_not_delete))
        .bind(snapshot.policy_item_id.clone())
        .bind(bool_to_i64(snapshot.owns_files))
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await?;
        Ok(snapshot)
    }

    /// The snapshot `id` of cluster `cluster_id` (another cluster's is not found).
    pub async fn get_snapshot(
        &self,
        cluster_id: &str,
        id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE cluster_id = $1 AND id = $2"
        ))
        .bind(cluster_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    /// One page of a cluster's snapshots, newest first, and the total count.
    pub async fn list_snapshots(
        &self,
        cluster_id: &str,
        page: Page,
    ) -> Result<(Vec<Snapshot>, u64), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE cluster_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(cluster_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM snapshots WHERE cluster_id = $1")
            .bind(cluster_id)
            .fetch_one(&self.pool)
            .await?;
        let snapshots = rows
            .iter()
            .map(snapshot_from_row)
            .collect::<Result<_, _>>()?;
        Ok((snapshots, u64::try_from(total).unwrap_or(0)))
    }

    /// The snapshot of cluster `cluster_id` one of whose members (see [`Snapshot::member_ids`])
    /// is `member_id`, and the member's part index. Member ids are derived, not stored, so this
    /// reads the cluster's snapshots: a cluster holds what its retention keeps (hundreds), and
    /// clients fetch members rarely.
    pub async fn find_snapshot_member(
        &self,
        cluster_id: &str,
        member_id: &str,
    ) -> Result<Option<(Snapshot, usize)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE cluster_id = $1"
        ))
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let snapshot = snapshot_from_row(row)?;
            if let Some(index) = snapshot.member_ids().iter().position(|m| m == member_id) {
                return Ok(Some((snapshot, index)));
            }
        }
        Ok(None)
    }

    /// The mongod version of each cluster of `group_id` whose snapshots recorded one: that of
    /// its newest such snapshot. One statement for a whole page of clusters (the cluster list
    /// shows it), so a list of hundreds of clusters stays one query.
    pub async fn mongod_versions(&self, group_id: &str) -> Result<MongodVersions, StoreError> {
        let rows = sqlx::query(
            "SELECT s.cluster_id, s.mongod_version FROM snapshots s \
             WHERE s.group_id = $1 AND s.mongod_version IS NOT NULL \
             AND s.created_at = (SELECT MAX(t.created_at) FROM snapshots t \
                 WHERE t.cluster_id = s.cluster_id AND t.mongod_version IS NOT NULL)",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        let mut versions = std::collections::HashMap::new();
        for row in rows {
            versions.insert(row.try_get("cluster_id")?, row.try_get("mongod_version")?);
        }
        Ok(versions)
    }

    /// Changes retention; `None` leaves a field as it is. Returns the updated snapshot.
    pub async fn update_snapshot_retention(
        &self,
        cluster_id: &str,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
        do_not_delete: Option<bool>,
    ) -> Result<Option<Snapshot>, StoreError> {
        if let Some(expires_at) = expires_at {
            sqlx::query("UPDATE snapshots SET expires_at = $1 WHERE cluster_id = $2 AND id = $3")
                .bind(to_millis(expires_at))
                .bind(cluster_id)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        if let Some(flag) = do_not_delete {
            sqlx::query(
                "UPDATE snapshots SET do_not_delete = $1 WHERE cluster_id = $2 AND id = $3",
            )
            .bind(bool_to_i64(flag))
            .bind(cluster_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        self.get_snapshot(cluster_id, id).await
    }

    /// Deletes the snapshot record (never the files); false when there was none.
    pub async fn delete_snapshot(&self, cluster_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM snapshots WHERE cluster_id = $1 AND id = $2")
            .bind(cluster_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A cluster's `scheduled` snapshots (whose retention follows the schedule's policy items).
    pub async fn list_scheduled_snapshots(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<Snapshot>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE cluster_id = $1 AND snapshot_type = 'scheduled' \
             ORDER BY created_at, id"
        ))
        .bind(cluster_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(snapshot_from_row).collect()
    }

    /// Sets a snapshot's expiry and the policy item it follows (`None` clears either).
    pub async fn set_snapshot_expiry(
        &self,
        cluster_id: &str,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
        policy_item_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE snapshots SET expires_at = $1, policy_item_id = $2 \
             WHERE cluster_id = $3 AND id = $4",
        )
        .bind(expires_at.map(to_millis))
        .bind(policy_item_id.map(str::to_string))
        .bind(cluster_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the records of snapshots expired at `now`, except those marked `doNotDelete` and
    /// those with a queued or running export job, and returns what it deleted. Only records:
    /// snapshot files are never touched (imported parts belong to the user).
    ///
    /// One conditional statement, so several nodes sweeping one PostgreSQL at once delete each
    /// record exactly once, and a `doNotDelete` set or an export queued before the statement
    /// runs is always honoured. `now` is a parameter so tests can sweep "in the future".
    pub async fn delete_expired_snapshots(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ExpiredSnapshot>, StoreError> {
        let rows = sqlx::query(
            "DELETE FROM snapshots WHERE expires_at IS NOT NULL AND expires_at <= $1 \
             AND do_not_delete = 0 \
             AND NOT EXISTS (SELECT 1 FROM export_jobs WHERE export_jobs.snapshot_id = snapshots.id \
                             AND export_jobs.state IN ('Queued', 'InProgress')) \
             RETURNING id, group_id, cluster_id, cluster_name",
        )
        .bind(to_millis(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ExpiredSnapshot {
                    id: row.try_get("id")?,
                    group_id: row.try_get("group_id")?,
                    cluster_id: row.try_get("cluster_id")?,
                    cluster_name: row.try_get("cluster_name")?,
                })
            })
            .collect()
    }
}

//! The backup catalog's rows: which backup of a watched location became which snapshot, and
//! whether it is gone. The primary key `(cluster_id, backup_url)` is what makes registration
//! exactly-once across nodes: a node claims a backup by inserting its row, and only the node
//! whose insert succeeded imports it.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, from_millis, now, to_millis};

/// One registered (or being registered) backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogBackup {
    pub cluster_id: String,
    pub backup_url: String,
    pub location: String,
    pub snapshot_id: Option<String>,
    pub claimed_by: String,
    pub claimed_at: DateTime<Utc>,
    pub gone_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "cluster_id, backup_url, location, snapshot_id, claimed_by, claimed_at, gone_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<CatalogBackup, StoreError> {
    Ok(CatalogBackup {
        cluster_id: row.try_get("cluster_id")?,
        backup_url: row.try_get("backup_url")?,
        location: row.try_get("location")?,
        snapshot_id: row.try_get("snapshot_id")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_at: from_millis(row.try_get("claimed_at")?),
        gone_at: row.try_get::<Option<i64>, _>("gone_at")?.map(from_millis),
    })
}

impl Store {
    /// Claims `backup_url` of the cluster for `node`: `true` when this call inserted the row
    /// (the caller registers it), `false` when any node (this one included) already had it.
    pub async fn claim_catalog_backup(
        &self,
        group_id: &str,
        cluster_id: &str,
        location: &str,
        backup_url: &str,
        node: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO catalog_backups (cluster_id, backup_url, group_id, location, snapshot_id, \
             claimed_by, claimed_at, gone_at) VALUES ($1, $2, $3, $4, NULL, $5, $6, NULL)",
        )
        .bind(cluster_id)
        .bind(backup_url)
        .bind(group_id)
        .bind(location)
        .bind(node)
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes over a claim that never became a snapshot (its node died between claiming and
    /// recording; the caller judged it stale from `seen_claimed_at`): `true` when this call took
    /// it. A compare-and-swap on the claim time the caller saw, so of several nodes taking over
    /// at once exactly one wins.
    pub async fn take_over_catalog_claim(
        &self,
        cluster_id: &str,
        backup_url: &str,
        node: &str,
        seen_claimed_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE catalog_backups SET claimed_by = $1, claimed_at = $2 \
             WHERE cluster_id = $3 AND backup_url = $4 AND snapshot_id IS NULL \
             AND claimed_at = $5",
        )
        .bind(node)
        // Strictly later than the time compared, so the swap can happen once per seen value
        // even within one millisecond.
        .bind(to_millis(now()).max(to_millis(seen_claimed_at) + 1))
        .bind(cluster_id)
        .bind(backup_url)
        .bind(to_millis(seen_claimed_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the snapshot a claimed backup became.
    pub async fn set_catalog_snapshot(
        &self,
        cluster_id: &str,
        backup_url: &str,
        snapshot_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE catalog_backups SET snapshot_id = $1 WHERE cluster_id = $2 AND backup_url = $3",
        )
        .bind(snapshot_id)
        .bind(cluster_id)
        .bind(backup_url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up a claim whose import failed, so that a later listing tries again.
    pub async fn release_catalog_claim(
        &self,
        cluster_id: &str,
        backup_url: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM catalog_backups WHERE cluster_id = $1 AND backup_url = $2 \
             AND snapshot_id IS NULL",
        )
        .bind(cluster_id)
        .bind(backup_url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every catalog row of the cluster from `location`.
    pub async fn list_catalog_backups(
        &self,
        cluster_id: &str,
        location: &str,
    ) -> Result<Vec<CatalogBackup>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM catalog_backups WHERE cluster_id = $1 AND location = $2 \
             ORDER BY backup_url"
        ))
        .bind(cluster_id)
        .bind(location)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Marks a registered backup gone (once: the first listing that missed it sets the time).
    pub async fn mark_catalog_gone(
        &self,
        cluster_id: &str,
        backup_url: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE catalog_backups SET gone_at = $1 WHERE cluster_id = $2 AND backup_url = $3 \
             AND gone_at IS NULL",
        )
        .bind(to_millis(now()))
        .bind(cluster_id)
        .bind(backup_url)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The catalog row of a snapshot, if the catalog registered it.
    pub async fn catalog_backup_of_snapshot(
        &self,
        snapshot_id: &str,
    ) -> Result<Option<CatalogBackup>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM catalog_backups WHERE snapshot_id = $1"
        ))
        .bind(snapshot_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }
}

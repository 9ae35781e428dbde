//! Backup schedules, stored as the JSON document the API shows (policies, export settings,
//! flags), one per cluster. Validation lives in the API; the store keeps the document.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, from_millis, now, parse_json, to_json, to_millis};

#[derive(Debug, Clone, PartialEq)]
pub struct BackupSchedule {
    pub cluster_id: String,
    pub group_id: String,
    pub document: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    pub async fn get_backup_schedule(
        &self,
        cluster_id: &str,
    ) -> Result<Option<BackupSchedule>, StoreError> {
        let row = sqlx::query(
            "SELECT cluster_id, group_id, document, updated_at FROM backup_schedules WHERE cluster_id = $1",
        )
        .bind(cluster_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(BackupSchedule {
            cluster_id: row.try_get("cluster_id")?,
            group_id: row.try_get("group_id")?,
            document: parse_json(
                "backup_schedules.document",
                &row.try_get::<String, _>("document")?,
            )?,
            updated_at: from_millis(row.try_get("updated_at")?),
        }))
    }

    /// Inserts or replaces a cluster's schedule document.
    pub async fn put_backup_schedule(
        &self,
        group_id: &str,
        cluster_id: &str,
        document: &serde_json::Value,
    ) -> Result<(), StoreError> {
        // Portable upsert: both engines accept ON CONFLICT … DO UPDATE with `excluded`.
        sqlx::query(
            "INSERT INTO backup_schedules (cluster_id, group_id, document, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (cluster_id) DO UPDATE SET \
             document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(cluster_id)
        .bind(group_id)
        .bind(to_json(document))
        .bind(to_millis(now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether any schedule of the project auto-exports to the bucket.
    pub async fn export_bucket_used_by_policy(
        &self,
        group_id: &str,
        bucket_id: &str,
    ) -> Result<bool, StoreError> {
        let rows = sqlx::query("SELECT document FROM backup_schedules WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let doc: serde_json::Value = parse_json(
                "backup_schedules.document",
                &row.try_get::<String, _>("document")?,
            )?;
            let auto = doc
                .get("autoExportEnabled")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let bucket = doc
                .pointer("/export/exportBucketId")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            if auto && bucket == bucket_id {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

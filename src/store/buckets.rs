//! Export buckets: where exports go.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::kinds::CloudProvider;
use super::{
    Page, Store, StoreError, bool_to_i64, from_millis, new_id, now, parse_kind, to_millis,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBucket {
    pub id: String,
    pub group_id: String,
    pub cloud_provider: CloudProvider,
    pub bucket_name: String,
    /// `iamRoleId` (AWS) or `roleId` (Azure, GCP).
    pub role_id: Option<String>,
    pub service_url: Option<String>,
    pub region: Option<String>,
    pub require_private_networking: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewExportBucket {
    pub cloud_provider: CloudProvider,
    pub bucket_name: String,
    pub role_id: Option<String>,
    pub service_url: Option<String>,
    pub region: Option<String>,
    pub require_private_networking: bool,
}

const COLUMNS: &str = "id, group_id, cloud_provider, bucket_name, role_id, service_url, region, \
    require_private_networking, created_at";

fn bucket_from_row(row: &AnyRow) -> Result<ExportBucket, StoreError> {
    Ok(ExportBucket {
        id: row.try_get("id")?,
        group_id: row.try_get("group_id")?,
        cloud_provider: parse_kind("export_buckets.cloud_provider", row, CloudProvider::parse)?,
        bucket_name: row.try_get("bucket_name")?,
        role_id: row.try_get("role_id")?,
        service_url: row.try_get("service_url")?,
        region: row.try_get("region")?,
        require_private_networking: row.try_get::<i64, _>("require_private_networking")? != 0,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

impl Store {
    pub async fn create_export_bucket(
        &self,
        group_id: &str,
        new: NewExportBucket,
    ) -> Result<ExportBucket, StoreError> {
        let bucket = ExportBucket {
            id: new_id(),
            group_id: group_id.to_string(),
            cloud_provider: new.cloud_provider,
            bucket_name: new.bucket_name,
            role_id: new.role_id,
            service_url: new.service_url,
            region: new.region,
            require_private_networking: new.require_private_networking,
            created_at: now(),
        };
        sqlx::query(&format!(
            "INSERT INTO export_buckets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&bucket.id)
        .bind(&bucket.group_id)
        .bind(bucket.cloud_provider.as_str())
        .bind(&bucket.bucket_name)
        .bind(bucket.role_id.clone())
        .bind(bucket.service_url.clone())
        .bind(bucket.region.clone())
        .bind(bool_to_i64(bucket.require_private_networking))
        .bind(to_millis(bucket.created_at))
        .execute(&self.pool)
        .await?;
        Ok(bucket)
    }

    pub async fn get_export_bucket(
        &self,
        group_id: &str,
        id: &str,
    ) -> Result<Option<ExportBucket>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM export_buckets WHERE group_id = $1 AND id = $2"
        ))
        .bind(group_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(bucket_from_row).transpose()
    }

    pub async fn list_export_buckets(
        &self,
        group_id: &str,
        page: Page,
    ) -> Result<(Vec<ExportBucket>, u64), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM export_buckets WHERE group_id = $1 \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(group_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM export_buckets WHERE group_id = $1")
                .bind(group_id)
                .fetch_one(&self.pool)
                .await?;
        let buckets = rows.iter().map(bucket_from_row).collect::<Result<_, _>>()?;
        Ok((buckets, u64::try_from(total).unwrap_or(0)))
    }

    /// Every `FILESYSTEM` bucket of the deployment, oldest first (for the layout migration).
    pub async fn list_filesystem_buckets(&self) -> Result<Vec<ExportBucket>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM export_buckets WHERE cloud_provider = 'FILESYSTEM' \
             ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(bucket_from_row).collect()
    }

    /// Replaces the mutable settings (`requirePrivateNetworking`).
    pub async fn update_export_bucket(
        &self,
        group_id: &str,
        id: &str,
        require_private_networking: bool,
    ) -> Result<Option<ExportBucket>, StoreError> {
        sqlx::query(
            "UPDATE export_buckets SET require_private_networking = $1 WHERE group_id = $2 AND id = $3",
        )
        .bind(bool_to_i64(require_private_networking))
        .bind(group_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.get_export_bucket(group_id, id).await
    }

    /// Whether an active (Queued or InProgress) export job targets the bucket.
    pub async fn export_bucket_in_use(&self, id: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM export_jobs WHERE export_bucket_id = $1 \
             AND state IN ('Queued', 'InProgress')",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    pub async fn delete_export_bucket(&self, group_id: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM export_buckets WHERE group_id = $1 AND id = $2")
            .bind(group_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

//! Access roles: server-side object-store credentials referenced by export buckets. The secret
//! part is stored sealed (encrypted by `auth::secrets` before it reaches this module); this
//! module never sees or returns plain-text secrets.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::kinds::CloudProvider;
use super::{
    Store, StoreError, from_millis, new_id, now, parse_json, parse_kind, to_json, to_millis,
};

#[derive(Debug, Clone, PartialEq)]
pub struct AccessRole {
    pub id: String,
    pub group_id: String,
    /// `AWS`, `AZURE` or `GCP` (never `FILESYSTEM`).
    pub provider: CloudProvider,
    /// Non-secret settings (endpoint, region, fromEnvironment, account name …).
    pub settings: serde_json::Value,
    /// The sealed secret settings, opaque here.
    pub sealed_secret: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewAccessRole {
    pub provider: CloudProvider,
    pub settings: serde_json::Value,
    pub sealed_secret: Option<String>,
}

fn role_from_row(row: &AnyRow) -> Result<AccessRole, StoreError> {
    Ok(AccessRole {
        id: row.try_get("id")?,
        group_id: row.try_get("group_id")?,
        provider: parse_kind("access_roles.provider", row, CloudProvider::parse)?,
        settings: parse_json(
            "access_roles.settings",
            &row.try_get::<String, _>("settings")?,
        )?,
        sealed_secret: row.try_get("sealed_secret")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

impl Store {
    pub async fn create_access_role(
        &self,
        group_id: &str,
        new: NewAccessRole,
    ) -> Result<AccessRole, StoreError> {
        let role = AccessRole {
            id: new_id(),
            group_id: group_id.to_string(),
            provider: new.provider,
            settings: new.settings,
            sealed_secret: new.sealed_secret,
            created_at: now(),
        };
        sqlx::query(
            "INSERT INTO access_roles (id, group_id, provider, settings, sealed_secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&role.id)
        .bind(&role.group_id)
        .bind(role.provider.as_str())
        .bind(to_json(&role.settings))
        .bind(role.sealed_secret.clone())
        .bind(to_millis(role.created_at))
        .execute(&self.pool)
        .await?;
        Ok(role)
    }

    /// The role `id` of project `group_id` (a role of another project is not found).
    pub async fn get_access_role(
        &self,
        group_id: &str,
        id: &str,
    ) -> Result<Option<AccessRole>, StoreError> {
        let row = sqlx::query(
            "SELECT id, group_id, provider, settings, sealed_secret, created_at \
             FROM access_roles WHERE group_id = $1 AND id = $2",
        )
        .bind(group_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(role_from_row).transpose()
    }
}

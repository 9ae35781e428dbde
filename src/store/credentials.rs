//! Credentials of the Admin API, in the tables of `0002_auth.sql`: API keys, service accounts,
//! their role grants, OAuth bearer tokens, the Digest nonce counts already used, and the row
//! that checks the deployment key.
//!
//! Only sealed or hashed secrets reach this module: `auth` seals the Digest HA1 with the
//! deployment key and hashes client secrets and tokens (SHA-256) before calling it, and checks
//! them after reading. Roles are stored and returned as their Atlas names (`GROUP_READ_ONLY`);
//! `auth` parses them, so that the store does not depend on the layer above it.

use std::time::Duration;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now, to_millis};

/// A role held by a key or service account, as stored: on its organization (`group_id: None`,
/// stored as `''` so that the column can take part in the primary key on both engines) or on
/// one project. `role` is the Atlas role name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrant {
    pub group_id: Option<String>,
    pub role: String,
}

/// A new API key row; `sealed_ha1` is the Digest HA1 sealed with the deployment key.
#[derive(Debug, Clone)]
pub struct NewApiKeyRow {
    pub id: String,
    pub org_id: String,
    pub public_key: String,
    pub sealed_ha1: String,
    pub description: String,
}

/// A new service account row; `secret_sha256` is the hex SHA-256 of the client secret.
#[derive(Debug, Clone)]
pub struct NewServiceAccountRow {
    pub id: String,
    pub org_id: String,
    pub client_id: String,
    pub secret_sha256: String,
    pub name: String,
}

/// A stored API key with its grants, without anything secret (for listings).
#[derive(Debug, Clone)]
pub struct StoredApiKey {
    pub id: String,
    pub public_key: String,
    pub org_id: String,
    pub description: String,
    pub grants: Vec<StoredGrant>,
}

/// A stored service account with its grants, without anything secret (for listings).
#[derive(Debug, Clone)]
pub struct StoredServiceAccount {
    pub id: String,
    pub client_id: String,
    pub org_id: String,
    pub name: String,
    pub grants: Vec<StoredGrant>,
}

/// What checking a Digest response needs of an API key.
#[derive(Debug, Clone)]
pub struct SealedApiKey {
    pub id: String,
    pub org_id: String,
    pub sealed_ha1: String,
}

/// What checking client credentials needs of a service account.
#[derive(Debug, Clone)]
pub struct HashedClientSecret {
    /// The service account id.
    pub id: String,
    pub secret_sha256: String,
}

/// The service account a valid bearer token belongs to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The service account id.
    pub id: String,
    pub client_id: String,
    pub org_id: String,
}

fn grant_from_row(row: &AnyRow) -> Result<StoredGrant, StoreError> {
    let group_id: String = row.try_get("group_id")?;
    Ok(StoredGrant {
        group_id: (!group_id.is_empty()).then_some(group_id),
        role: row.try_get("role")?,
    })
}

async fn insert_grants(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    principal_id: &str,
    org_id: &str,
    grants: &[StoredGrant],
) -> Result<(), StoreError> {
    for g in grants {
        sqlx::query(
            "INSERT INTO auth_grants (principal_id, org_id, group_id, role) VALUES ($1, $2, $3, $4)",
        )
        .bind(principal_id)
        .bind(org_id)
        .bind(g.group_id.as_deref().unwrap_or(""))
        .bind(&g.role)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A count or an instant for a `BIGINT` column; values past `i64::MAX` (never met in
/// practice) are stored as the maximum rather than refused.
fn saturating_i64(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

impl Store {
    /// The sealed value that checks the deployment key: the first caller stores
    /// `sealed_if_first`, every later caller gets back what the first one stored (and must be
    /// able to open it with its key).
    pub async fn deployment_key_check(&self, sealed_if_first: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO auth_key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(sealed_if_first)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT sealed FROM auth_key_check WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("sealed")?)
    }

    /// Inserts an API key and its grants in one transaction. Returns `Ok(false)`, writing
    /// nothing, when the public key is already taken (the caller draws another one).
    pub async fn insert_api_key(
        &self,
        key: &NewApiKeyRow,
        grants: &[StoredGrant],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, org_id, public_key, sealed_ha1, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (public_key) DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.org_id)
        .bind(&key.public_key)
        .bind(&key.sealed_ha1)
        .bind(&key.description)
        .bind(to_millis(now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_grants(&mut tx, &key.id, &key.org_id, grants).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Inserts a service account and its grants in one transaction.
    pub async fn insert_service_account(
        &self,
        account: &NewServiceAccountRow,
        grants: &[StoredGrant],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO service_accounts (id, org_id, client_id, secret_sha256, name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&account.id)
        .bind(&account.org_id)
        .bind(&account.client_id)
        .bind(&account.secret_sha256)
        .bind(&account.name)
        .bind(to_millis(now()))
        .execute(&mut *tx)
        .await?;
        insert_grants(&mut tx, &account.id, &account.org_id, grants).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The grants of an API key or service account, organization roles first.
    pub async fn list_grants(&self, principal_id: &str) -> Result<Vec<StoredGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_id, role FROM auth_grants WHERE principal_id = $1 ORDER BY group_id, role",
        )
        .bind(principal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// The API keys of an organization, oldest first.
    pub async fn list_api_keys(&self, org_id: &str) -> Result<Vec<StoredApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, public_key, org_id, description FROM api_keys WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            out.push(StoredApiKey {
                grants: self.list_grants(&id).await?,
                id,
                public_key: row.try_get("public_key")?,
                org_id: row.try_get("org_id")?,
                description: row.try_get("description")?,
            });
        }
        Ok(out)
    }

    /// The service accounts of an organization, oldest first.
    pub async fn list_service_accounts(
        &self,
        org_id: &str,
    ) -> Result<Vec<StoredServiceAccount>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, client_id, org_id, name FROM service_accounts WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            out.push(StoredServiceAccount {
                grants: self.list_grants(&id).await?,
                id,
                client_id: row.try_get("client_id")?,
                org_id: row.try_get("org_id")?,
                name: row.try_get("name")?,
            });
        }
        Ok(out)
    }

    /// Deletes an API key of `org_id`, named by id or public key, with its grants. Returns the
    /// id of the deleted key, `None` when the organization has no such key.
    pub async fn delete_api_key(
        &self,
        org_id: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT id FROM api_keys WHERE org_id = $1 AND (id = $2 OR public_key = $2)",
        )
        .bind(org_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        sqlx::query("DELETE FROM auth_grants WHERE principal_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Deletes a service account of `org_id`, named by id or client id, with its grants and
    /// tokens. Returns the id of the deleted account, `None` when there is no such account.
    pub async fn delete_service_account(
        &self,
        org_id: &str,
        account: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT id FROM service_accounts WHERE org_id = $1 AND (id = $2 OR client_id = $2)",
        )
        .bind(org_id)
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        for sql in [
            "DELETE FROM oauth_tokens WHERE service_account_id = $1",
            "DELETE FROM auth_grants WHERE principal_id = $1",
            "DELETE FROM service_accounts WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The API key with this public key (the Digest `username`).
    pub async fn api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> Result<Option<SealedApiKey>, StoreError> {
        let row = sqlx::query("SELECT id, org_id, sealed_ha1 FROM api_keys WHERE public_key = $1")
            .bind(public_key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(SealedApiKey {
                id: row.try_get("id")?,
                org_id: row.try_get("org_id")?,
                sealed_ha1: row.try_get("sealed_ha1")?,
            })
        })
        .transpose()
    }

    /// The service account with this OAuth client id.
    pub async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<HashedClientSecret>, StoreError> {
        let row =
            sqlx::query("SELECT id, secret_sha256 FROM service_accounts WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(HashedClientSecret {
                id: row.try_get("id")?,
                secret_sha256: row.try_get("secret_sha256")?,
            })
        })
        .transpose()
    }

    /// Stores a bearer token (by its SHA-256) of a service account, valid for `ttl` from now.
    pub async fn insert_oauth_token(
        &self,
        token_sha256: &str,
        service_account_id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let t = to_millis(now());
        sqlx::query(
            "INSERT INTO oauth_tokens (token_sha256, service_account_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_sha256)
        .bind(service_account_id)
        .bind(t.saturating_add(saturating_i64(ttl.as_millis())))
        .bind(t)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a bearer token if it belongs to the service account; returns how many rows went
    /// (0 for a token that is unknown, expired and purged, or another account's).
    pub async fn delete_oauth_token(
        &self,
        token_sha256: &str,
        service_account_id: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM oauth_tokens WHERE token_sha256 = $1 AND service_account_id = $2",
        )
        .bind(token_sha256)
        .bind(service_account_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The service account of a bearer token (by its SHA-256) that has not expired.
    pub async fn oauth_token_owner(
        &self,
        token_sha256: &str,
    ) -> Result<Option<TokenOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id, s.client_id, s.org_id FROM oauth_tokens t \
             JOIN service_accounts s ON s.id = t.service_account_id \
             WHERE t.token_sha256 = $1 AND t.expires_at > $2",
        )
        .bind(token_sha256)
        .bind(to_millis(now()))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TokenOwner {
                id: row.try_get("id")?,
                client_id: row.try_get("client_id")?,
                org_id: row.try_get("org_id")?,
            })
        })
        .transpose()
    }

    /// Records the use of Digest nonce count `nc` of `nonce`, kept until the nonce expires
    /// (`expires_at`, unix seconds). Returns `false` when the pair was already used — a replay.
    ///
    /// One shared table rather than a per-node memory window, so that a captured request
    /// cannot be replayed once against each other node of a multi-node deployment.
    pub async fn record_nonce_use(
        &self,
        nonce: &str,
        nc: u64,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO digest_nonce_uses (nonce, nc, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (nonce, nc) DO NOTHING",
        )
        .bind(nonce)
        .bind(saturating_i64(nc))
        .bind(saturating_i64(expires_at.saturating_mul(1000)))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes expired nonce uses and bearer tokens.
    pub async fn purge_expired_credentials(&self) -> Result<(), StoreError> {
        let t = to_millis(now());
        sqlx::query("DELETE FROM digest_nonce_uses WHERE expires_at < $1")
            .bind(t)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM oauth_tokens WHERE expires_at < $1")
            .bind(t)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

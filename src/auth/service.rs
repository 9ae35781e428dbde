//! [`AuthService`]: credentials in the metadata store, request authentication, and the
//! [`Principal`] extractor that handlers take as their first argument.
//!
//! Replay protection for Digest: every `(nonce, nc)` accepted is inserted into the shared
//! `digest_nonce_uses` table, and a second use of the same pair is refused. Doing it in the
//! database costs one small write per Digest request but holds across every node of a
//! multi-node deployment (a per-node memory window would let a captured request be replayed
//! once against each other node while the nonce is fresh). A pair is refused only when seen
//! before, not when `nc` is lower than the highest seen: clients that share one nonce between
//! concurrent requests (the Go digest transport does) may deliver counts out of order.
//! Bearer requests need no write.

// `ApiError` is the one error type of every handler (src/api/error.rs) and is returned as is,
// like the handlers do; its size is that type's design, not this module's.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngCore};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::digest::{self, DigestCredentials, NonceSigner, NonceState, REALM};
use super::roles::Role;
use super::secrets::{SecretBox, SecretError};
use crate::api::error::ApiError;
use crate::store::{
    NewApiKeyRow, NewServiceAccountRow, Store, StoreError, StoredGrant, TokenOwner,
};

/// Default lifetime of a Digest nonce; past it a correct response earns `stale=true`.
pub const DEFAULT_NONCE_TTL: Duration = Duration::from_secs(300);
/// Lifetime of an OAuth access token (Atlas: one hour).
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Expired nonce uses and tokens are purged every this many writes (per node).
const PURGE_EVERY: u64 = 512;
const KEY_CHECK_PLAINTEXT: &[u8] = b"snapex deployment key check v1";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("organization {0} not found")]
    OrgNotFound(String),
    #[error("project {0} not found")]
    ProjectNotFound(String),
    #[error("project {project} belongs to organization {actual}, not {org}")]
    ProjectNotInOrg {
        project: String,
        org: String,
        actual: String,
    },
    #[error("role {role} is a {level} role; {hint}")]
    RoleLevel {
        role: Role,
        level: &'static str,
        hint: &'static str,
    },
    #[error("at least one role is required")]
    NoRole,
    #[error("invalid client credentials")]
    InvalidClient,
    #[error(
        "the secret key of this node differs from the one this database was written with \
         (every node must share SNAPEX_SECRET_KEY or the same secret.key)"
    )]
    KeyMismatch,
}

/// A role held by a key or service account: on its organization (`group_id: None`) or on one
/// project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub role: Role,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    ApiKey { public_key: String },
    ServiceAccount { client_id: String },
}

/// An authenticated caller and what it may do. Handlers take it as an extractor (first, before
/// any body extractor, so that an unauthenticated request gets 401 and not a body error).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The id of the API key or service account.
    pub id: String,
    pub kind: PrincipalKind,
    /// The organization the key or service account belongs to.
    pub org_id: String,
    pub grants: Vec<Grant>,
    /// Projects of `org_id`, loaded only when an organization role reaches into projects.
    org_projects: Vec<String>,
}

/// Answer for a project the caller has no role in, the same whether it exists or not, so that
/// a key of one project learns nothing about another.
pub fn group_not_found(group_id: &str) -> ApiError {
    ApiError::not_found(
        "GROUP_NOT_FOUND",
        format!("No group with ID {group_id} exists."),
    )
    .with_parameters([group_id.to_string()])
}

/// Answer for an organization the caller does not belong to.
pub fn org_not_found(org_id: &str) -> ApiError {
    ApiError::not_found(
        "ORG_NOT_FOUND",
        format!("No organization with ID {org_id} exists."),
    )
    .with_parameters([org_id.to_string()])
}

fn insufficient(role: Role) -> ApiError {
    ApiError::forbidden(format!(
        "Current user is not authorized to perform this action: the {} role is required.",
        role.display_name()
    ))
}

impl Principal {
    /// The project roles the caller holds on `group_id`, org roles that reach it included.
    pub fn group_roles(&self, group_id: &str) -> Vec<Role> {
        let mut roles: Vec<Role> = self
            .grants
            .iter()
            .filter(|g| g.group_id.as_deref() == Some(group_id))
            .map(|g| g.role)
            .collect();
        if self.org_projects.iter().any(|p| p == group_id) {
            roles.extend(
                self.grants
                    .iter()
                    .filter(|g| g.group_id.is_none())
                    .filter_map(|g| g.role.project_role_in_org()),
            );
        }
        roles
    }

    /// Whether the caller holds `role` (or a role that implies it) on `group_id`.
    pub fn has_group_role(&self, group_id: &str, role: Role) -> bool {
        self.group_roles(group_id).iter().any(|r| r.implies(role))
    }

    /// Ok when the caller holds `role` on the project. No role at all there (another
    /// project, or one that does not exist) → 404 `GROUP_NOT_FOUND`; a weaker role → 403
    /// `USER_UNAUTHORIZED`.
    pub fn require_group(&self, group_id: &str, role: Role) -> Result<(), ApiError> {
        let roles = self.group_roles(group_id);
        if roles.is_empty() {
            return Err(group_not_found(group_id));
        }
        if roles.iter().any(|r| r.implies(role)) {
            Ok(())
        } else {
            Err(insufficient(role))
        }
    }

    /// Ok when the caller holds the organization role `role` on `org_id`. Another
    /// organization → 404 `ORG_NOT_FOUND`; its own organization without the role (a project
    /// key, for instance) → 403.
    pub fn require_org(&self, org_id: &str, role: Role) -> Result<(), ApiError> {
        if org_id != self.org_id {
            return Err(org_not_found(org_id));
        }
        let ok = self
            .grants
            .iter()
            .filter(|g| g.group_id.is_none())
            .any(|g| g.role.implies(role));
        if ok { Ok(()) } else { Err(insufficient(role)) }
    }

    /// The projects the caller can see at all (for listings such as `GET /groups`).
    pub fn visible_group_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .grants
            .iter()
            .filter_map(|g| g.group_id.clone())
            .collect();
        if self
            .grants
            .iter()
            .any(|g| g.group_id.is_none() && g.role.project_role_in_org().is_some())
        {
            ids.extend(self.org_projects.iter().cloned());
        }
        ids.sort();
        ids.dedup();
        ids
    }
}

/// A new API key; `private_key` exists only here and is never stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    pub id: String,
    pub public_key: String,
    pub private_key: String,
    pub org_id: String,
    pub grants: Vec<Grant>,
}

/// A new service account; `client_secret` exists only here (a SHA-256 is stored).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewServiceAccount {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
    pub org_id: String,
    pub grants: Vec<Grant>,
}

/// A stored API key, without anything secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub id: String,
    pub public_key: String,
    pub org_id: String,
    pub description: String,
    pub grants: Vec<Grant>,
}

/// A stored service account, without anything secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountInfo {
    pub id: String,
    pub client_id: String,
    pub org_id: String,
    pub name: String,
    pub grants: Vec<Grant>,
}

/// An issued bearer token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
}

struct Inner {
    store: Store,
    secrets: SecretBox,
    nonces: NonceSigner,
    writes: AtomicU64,
}

/// Authentication state shared by every request of a node: the store, the deployment key and
/// the nonce signer. Cheap to clone.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("nonces", &self.inner.nonces)
            .finish_non_exhaustive()
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Atlas public keys are 8 lowercase letters.
fn new_public_key() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}

/// Atlas private keys are UUIDs (v4 layout).
fn new_private_key() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A grant read back from the store; a role name this version does not know is a corrupt row.
fn grant_from_stored(stored: StoredGrant) -> Result<Grant, AuthError> {
    let role = stored
        .role
        .parse::<Role>()
        .map_err(|e| StoreError::Corrupt {
            column: "auth_grants.role".into(),
            message: e.to_string(),
        })?;
    Ok(Grant {
        group_id: stored.group_id,
        role,
    })
}

fn grants_from_stored(stored: Vec<StoredGrant>) -> Result<Vec<Grant>, AuthError> {
    stored.into_iter().map(grant_from_stored).collect()
}

fn stored_grants(grants: &[Grant]) -> Vec<StoredGrant> {
    grants
        .iter()
        .map(|g| StoredGrant {
            group_id: g.group_id.clone(),
            role: g.role.as_str().to_string(),
        })
        .collect()
}

impl AuthService {
    pub fn new(store: Store, secrets: SecretBox) -> Self {
        Self::with_nonce_ttl(store, secrets, DEFAULT_NONCE_TTL)
    }

    pub fn with_nonce_ttl(store: Store, secrets: SecretBox, nonce_ttl: Duration) -> Self {
        let nonces = NonceSigner::new(&secrets, nonce_ttl);
        AuthService {
            inner: Arc::new(Inner {
                store,
                secrets,
                nonces,
                writes: AtomicU64::new(0),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    pub fn nonces(&self) -> &NonceSigner {
        &self.inner.nonces
    }

    /// Checks that this node's key is the deployment's: the first caller seals a known value,
    /// later callers must be able to open it. Call at start (`serve`, admin commands).
    pub async fn verify_deployment_key(&self) -> Result<(), AuthError> {
        let sealed = self.inner.secrets.seal(KEY_CHECK_PLAINTEXT);
        let stored = self.inner.store.deployment_key_check(&sealed).await?;
        match self.inner.secrets.open(&stored) {
            Ok(v) if v == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(AuthError::KeyMismatch),
        }
    }

    /// Checks the organization, the project and that the roles fit the level (project roles
    /// with a project, organization roles without).
    async fn check_grants(
        &self,
        org_id: &str,
        group_id: Option<&str>,
        roles: &[Role],
    ) -> Result<Vec<Grant>, AuthError> {
        if roles.is_empty() {
            return Err(AuthError::NoRole);
        }
        let store = &self.inner.store;
        if store.get_org(org_id).await?.is_none() {
            return Err(AuthError::OrgNotFound(org_id.to_string()));
        }
        if let Some(group_id) = group_id {
            let project = store
                .get_project(group_id)
                .await?
                .ok_or_else(|| AuthError::ProjectNotFound(group_id.to_string()))?;
            if project.org_id != org_id {
                return Err(AuthError::ProjectNotInOrg {
                    project: group_id.to_string(),
                    org: org_id.to_string(),
                    actual: project.org_id,
                });
            }
        }
        let mut grants = Vec::new();
        for &role in roles {
            match (group_id, role.is_org_role()) {
                (Some(_), true) => {
                    return Err(AuthError::RoleLevel {
                        role,
                        level: "organization",
                        hint: "omit --project to grant it",
                    });
                }
                (None, false) => {
                    return Err(AuthError::RoleLevel {
                        role,
                        level: "project",
                        hint: "give --project to grant it",
                    });
                }
                _ => {}
            }
            let grant = Grant {
                group_id: group_id.map(str::to_string),
                role,
            };
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        Ok(grants)
    }

    /// Creates a programmatic API key with `roles` on the organization (`group_id: None`) or
    /// on one project of it. Only the sealed HA1 is stored.
    pub async fn create_api_key(
        &self,
        org_id: &str,
        group_id: Option<&str>,
        roles: &[Role],
        description: &str,
    ) -> Result<NewApiKey, AuthError> {
        let grants = self.check_grants(org_id, group_id, roles).await?;
        let stored = stored_grants(&grants);
        // A public key is 8 letters (26^8); retry the rare collision on the unique column.
        for _ in 0..5 {
            let id = crate::store::new_id();
            let public_key = new_public_key();
            let private_key = new_private_key();
            let ha1 = digest::ha1(&public_key, REALM, &private_key);
            let sealed = self.inner.secrets.seal(ha1.as_bytes());
            let row = NewApiKeyRow {
                id,
                org_id: org_id.to_string(),
                public_key,
                sealed_ha1: sealed,
                description: description.to_string(),
            };
            if !self.inner.store.insert_api_key(&row, &stored).await? {
                continue;
            }
            let NewApiKeyRow { id, public_key, .. } = row;
            tracing::info!(key_id = %id, public_key = %public_key, org_id, "api key created");
            return Ok(NewApiKey {
                id,
                public_key,
                private_key,
                org_id: org_id.to_string(),
                grants,
            });
        }
        Err(AuthError::Store(StoreError::Duplicate {
            what: "api key public key".into(),
        }))
    }

    /// Creates a service account; only a SHA-256 of the client secret is stored.
    pub async fn create_service_account(
        &self,
        org_id: &str,
        group_id: Option<&str>,
        roles: &[Role],
        name: &str,
    ) -> Result<NewServiceAccount, AuthError> {
        let grants = self.check_grants(org_id, group_id, roles).await?;
        let id = crate::store::new_id();
        // Atlas's formats: mdb_sa_id_<24 hex> and mdb_sa_sk_<secret>.
        let client_id = format!("mdb_sa_id_{}", crate::store::new_id());
        let client_secret = format!("mdb_sa_sk_{}", random_token(30));
        let row = NewServiceAccountRow {
            id,
            org_id: org_id.to_string(),
            client_id,
            secret_sha256: sha256_hex(client_secret.as_bytes()),
            name: name.to_string(),
        };
        self.inner
            .store
            .insert_service_account(&row, &stored_grants(&grants))
            .await?;
        let NewServiceAccountRow { id, client_id, .. } = row;
        tracing::info!(service_account_id = %id, client_id = %client_id, org_id, "service account created");
        Ok(NewServiceAccount {
            id,
            client_id,
            client_secret,
            org_id: org_id.to_string(),
            grants,
        })
    }

    async fn grants_of(&self, principal_id: &str) -> Result<Vec<Grant>, AuthError> {
        grants_from_stored(self.inner.store.list_grants(principal_id).await?)
    }

    pub async fn list_api_keys(&self, org_id: &str) -> Result<Vec<ApiKeyInfo>, AuthError> {
        let keys = self.inner.store.list_api_keys(org_id).await?;
        keys.into_iter()
            .map(|k| {
                Ok(ApiKeyInfo {
                    id: k.id,
                    public_key: k.public_key,
                    org_id: k.org_id,
                    description: k.description,
                    grants: grants_from_stored(k.grants)?,
                })
            })
            .collect()
    }

    pub async fn list_service_accounts(
        &self,
        org_id: &str,
    ) -> Result<Vec<ServiceAccountInfo>, AuthError> {
        let accounts = self.inner.store.list_service_accounts(org_id).await?;
        accounts
            .into_iter()
            .map(|a| {
                Ok(ServiceAccountInfo {
                    id: a.id,
                    client_id: a.client_id,
                    org_id: a.org_id,
                    name: a.name,
                    grants: grants_from_stored(a.grants)?,
                })
            })
            .collect()
    }

    /// Deletes an API key of `org_id`, named by id or public key; it stops working at once.
    /// Returns whether a key was deleted.
    pub async fn delete_api_key(&self, org_id: &str, key: &str) -> Result<bool, AuthError> {
        let Some(id) = self.inner.store.delete_api_key(org_id, key).await? else {
            return Ok(false);
        };
        tracing::info!(key_id = %id, org_id, "api key deleted");
        Ok(true)
    }

    /// Deletes a service account of `org_id` (by id or client id) and its tokens.
    pub async fn delete_service_account(
        &self,
        org_id: &str,
        account: &str,
    ) -> Result<bool, AuthError> {
        let Some(id) = self
            .inner
            .store
            .delete_service_account(org_id, account)
            .await?
        else {
            return Ok(false);
        };
        tracing::info!(service_account_id = %id, org_id, "service account deleted");
        Ok(true)
    }

    /// The service account id for a client id and secret, or [`AuthError::InvalidClient`].
    async fn check_client(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<String, AuthError> {
        let account = self
            .inner
            .store
            .service_account_by_client_id(client_id)
            .await?;
        // Hash before looking at the row, so that an unknown client id costs the same.
        let given = sha256_hex(client_secret.as_bytes());
        let Some(account) = account else {
            return Err(AuthError::InvalidClient);
        };
        if bool::from(account.secret_sha256.as_bytes().ct_eq(given.as_bytes())) {
            Ok(account.id)
        } else {
            Err(AuthError::InvalidClient)
        }
    }

    /// OAuth 2.0 client credentials grant: a new one-hour bearer token (only its SHA-256 is
    /// stored).
    pub async fn issue_token(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<IssuedToken, AuthError> {
        let account_id = self.check_client(client_id, client_secret).await?;
        let token = random_token(32);
        self.inner
            .store
            .insert_oauth_token(&sha256_hex(token.as_bytes()), &account_id, TOKEN_TTL)
            .await?;
        self.maybe_purge();
        tracing::info!(client_id, "oauth token issued");
        Ok(IssuedToken {
            access_token: token,
            expires_in: TOKEN_TTL.as_secs(),
        })
    }

    /// RFC 7009 revocation: removes `token` if it belongs to the authenticated client;
    /// unknown tokens are not an error.
    pub async fn revoke_token(
        &self,
        client_id: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<(), AuthError> {
        let account_id = self.check_client(client_id, client_secret).await?;
        let done = self
            .inner
            .store
            .delete_oauth_token(&sha256_hex(token.as_bytes()), &account_id)
            .await?;
        tracing::info!(client_id, revoked = done, "oauth token revocation");
        Ok(())
    }

    /// Every few hundred writes, delete expired nonce uses and tokens in the background.
    fn maybe_purge(&self) {
        let n = self.inner.writes.fetch_add(1, Ordering::Relaxed);
        if n % PURGE_EVERY != PURGE_EVERY - 1 {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.purge_expired().await {
                tracing::warn!(error = %error, "cannot purge expired credentials");
            }
        });
    }

    /// Deletes expired nonce uses and bearer tokens.
    pub async fn purge_expired(&self) -> Result<(), AuthError> {
        Ok(self.inner.store.purge_expired_credentials().await?)
    }

    /// A 401 with a fresh Digest challenge.
    pub fn challenge(&self, detail: &str, stale: bool) -> ApiError {
        let value = self.inner.nonces.challenge(stale);
        let mut error = ApiError::unauthorized(detail.to_string());
        if let Ok(v) = HeaderValue::from_str(&value) {
            error = error.with_header(header::WWW_AUTHENTICATE, v);
        }
        error
    }

    async fn principal(
        &self,
        id: String,
        kind: PrincipalKind,
        org_id: String,
    ) -> Result<Principal, AuthError> {
        let grants = self.grants_of(&id).await?;
        let org_projects = if grants
            .iter()
            .any(|g| g.group_id.is_none() && g.role.project_role_in_org().is_some())
        {
            self.inner
                .store
                .list_projects(&org_id)
                .await?
                .into_iter()
                .map(|p| p.id)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Principal {
            id,
            kind,
            org_id,
            grants,
            org_projects,
        })
    }

    /// Authenticates a request from its `Authorization` header (Digest or Bearer).
    pub async fn authenticate(&self, parts: &Parts) -> Result<Principal, ApiError> {
        const NOT_AUTHENTICATED: &str = "You are not authorized for this resource.";
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(self.challenge(NOT_AUTHENTICATED, false));
        };
        let Ok(value) = value.to_str() else {
            return Err(self.challenge(NOT_AUTHENTICATED, false));
        };
        let trimmed = value.trim_start();
        if trimmed.len() > 7 && trimmed[..7].eq_ignore_ascii_case("bearer ") {
            return self.authenticate_bearer(trimmed[7..].trim()).await;
        }
        let creds = match DigestCredentials::parse(value) {
            Ok(c) => c,
            Err(error) => {
                tracing::debug!(error = %error, "refused authorization header");
                return Err(self.challenge(NOT_AUTHENTICATED, false));
            }
        };
        self.authenticate_digest(parts, &creds).await
    }

    async fn authenticate_bearer(&self, token: &str) -> Result<Principal, ApiError> {
        let owner = self
            .inner
            .store
            .oauth_token_owner(&sha256_hex(token.as_bytes()))
            .await
            .map_err(ApiError::from)?;
        let Some(TokenOwner {
            id,
            client_id,
            org_id,
        }) = owner
        else {
            tracing::debug!("refused unknown or expired bearer token");
            return Err(self.challenge("Invalid or expired access token.", false));
        };
        self.principal(id, PrincipalKind::ServiceAccount { client_id }, org_id)
            .await
            .map_err(ApiError::internal)
    }

    async fn authenticate_digest(
        &self,
        parts: &Parts,
        creds: &DigestCredentials,
    ) -> Result<Principal, ApiError> {
        let refuse = |reason: &str| {
            tracing::debug!(public_key = %creds.username, reason, "refused digest credentials");
            self.challenge("You are not authorized for this resource.", false)
        };
        if creds.realm != REALM {
            return Err(refuse("wrong realm"));
        }
        if let Some(opaque) = &creds.opaque
            && opaque != self.inner.nonces.opaque()
        {
            return Err(refuse("wrong opaque"));
        }
        if !uri_matches(&creds.uri, parts) {
            return Err(refuse("uri does not match the request"));
        }
        let nonce_state = self.inner.nonces.check(&creds.nonce);
        if nonce_state == NonceState::Invalid {
            return Err(refuse("nonce not issued by this deployment"));
        }
        let key = self
            .inner
            .store
            .api_key_by_public_key(&creds.username)
            .await
            .map_err(ApiError::from)?;
        let Some(key) = key else {
            // Do the same hashing as for a known key, so that timing does not tell which
            // public keys exist.
            let dummy = digest::ha1(&creds.username, REALM, "");
            let _ = creds.expected_response(&dummy, parts.method.as_str());
            return Err(refuse("unknown public key"));
        };
        let ha1 = self
            .inner
            .secrets
            .open(&key.sealed_ha1)
            .map_err(ApiError::internal)?;
        let ha1 = String::from_utf8(ha1).map_err(ApiError::internal)?;
        let Some(expected) = creds.expected_response(&ha1, parts.method.as_str()) else {
            return Err(refuse("unsupported qop or algorithm"));
        };
        if !digest::digests_equal(&expected, &creds.response) {
            return Err(refuse("wrong response"));
        }
        let expires_at = match nonce_state {
            NonceState::Fresh { expires_at } => expires_at,
            // The credentials are right but the nonce is old: tell the client to retry with
            // the new nonce without asking for the password again.
            _ => {
                tracing::debug!(public_key = %creds.username, "stale digest nonce");
                return Err(self.challenge("The digest nonce has expired.", true));
            }
        };
        let nc = match creds.nonce_count() {
            Some(nc) if nc >= 1 => nc,
            _ => return Err(refuse("bad nonce count")),
        };
        let fresh = self
            .inner
            .store
            .record_nonce_use(&creds.nonce, nc, expires_at)
            .await
            .map_err(ApiError::from)?;
        self.maybe_purge();
        if !fresh {
            tracing::warn!(public_key = %creds.username, nc, "replayed digest nonce count refused");
            return Err(self.challenge("The digest nonce count was already used.", false));
        }
        self.principal(
            key.id,
            PrincipalKind::ApiKey {
                public_key: creds.username.clone(),
            },
            key.org_id,
        )
        .await
        .map_err(ApiError::internal)
    }
}

/// The digest `uri` must name the request target (path and query), either as sent or as an
/// absolute URL.
fn uri_matches(digest_uri: &str, parts: &Parts) -> bool {
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    if digest_uri == target {
        return true;
    }
    match url::Url::parse(digest_uri) {
        Ok(u) => {
            let mut pq = u.path().to_string();
            if let Some(q) = u.query() {
                pq.push('?');
                pq.push_str(q);
            }
            pq == target
        }
        Err(_) => false,
    }
}

impl<S> FromRequestParts<S> for Principal
where
    AuthService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Authenticate once per request: a second Digest check would see its own nonce count
        // as a replay.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let auth = AuthService::from_ref(state);
        let principal = auth.authenticate(parts).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// Maps administrative failures to API errors (for handlers that create keys).
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::OrgNotFound(id) => org_not_found(&id),
            AuthError::ProjectNotFound(id) => group_not_found(&id),
            AuthError::InvalidClient => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Invalid client credentials.",
            ),
            e @ (AuthError::ProjectNotInOrg { .. }
            | AuthError::RoleLevel { .. }
            | AuthError::NoRole) => ApiError::bad_request("INVALID_ROLE", e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(grants: Vec<Grant>, org_projects: &[&str]) -> Principal {
        Principal {
            id: "k".into(),
            kind: PrincipalKind::ApiKey {
                public_key: "abcdefgh".into(),
            },
            org_id: "org".into(),
            grants,
            org_projects: org_projects.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn org_grant(role: Role) -> Grant {
        Grant {
            group_id: None,
            role,
        }
    }

    #[test]
    fn org_read_only_reads_every_project_of_its_org_and_writes_none() {
        let p = principal(vec![org_grant(Role::OrgReadOnly)], &["p1", "p2"]);
        assert!(p.require_group("p1", Role::GroupReadOnly).is_ok());
        assert!(p.require_group("p2", Role::GroupReadOnly).is_ok());
        let e = p.require_group("p1", Role::GroupBackupManager).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = p.require_group("p3", Role::GroupReadOnly).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.error_code, "GROUP_NOT_FOUND");
        assert_eq!(p.visible_group_ids(), ["p1", "p2"]);
        assert!(p.require_org("org", Role::OrgMember).is_ok());
        assert_eq!(
            p.require_org("org", Role::OrgOwner).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            p.require_org("other", Role::OrgMember)
                .unwrap_err()
                .error_code,
            "ORG_NOT_FOUND"
        );
    }

    #[test]
    fn org_member_sees_no_project_and_project_roles_stay_in_their_project() {
        let member = principal(vec![org_grant(Role::OrgMember)], &["p1"]);
        assert_eq!(
            member
                .require_group("p1", Role::GroupReadOnly)
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        assert!(member.visible_group_ids().is_empty());
        let operator = principal(
            vec![Grant {
                group_id: Some("p1".into()),
                role: Role::GroupBackupExportOperator,
            }],
            &[],
        );
        assert!(
            operator
                .require_group("p1", Role::GroupBackupExportOperator)
                .is_ok()
        );
        assert!(operator.require_group("p1", Role::GroupReadOnly).is_ok());
        assert_eq!(
            operator
                .require_group("p1", Role::GroupBackupManager)
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            operator
                .require_group("p2", Role::GroupReadOnly)
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        // A project key has no organization role.
        assert_eq!(
            operator
                .require_org("org", Role::OrgMember)
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(operator.visible_group_ids(), ["p1"]);
    }

    #[test]
    fn atlas_style_key_formats() {
        let public = new_public_key();
        assert_eq!(public.len(), 8);
        assert!(public.bytes().all(|b| b.is_ascii_lowercase()));
        let private = new_private_key();
        assert_eq!(private.len(), 36);
        assert_eq!(&private[14..15], "4");
        assert_ne!(new_private_key(), private);
    }
}

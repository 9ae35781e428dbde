//! [`AuthService`]: credentials (kept in the store, `store::credentials`) and request
//! authentication, with no HTTP types: [`AuthService::authenticate`] takes the method, the
//! request target and the `Authorization` value, and answers a [`Principal`] or a typed
//! refusal ([`Denied`]) that `api::auth` turns into Atlas's 401.
//!
//! Replay protection for Digest: every `(nonce, nc)` accepted is inserted into the shared
//! `digest_nonce_uses` table, and a second use of the same pair is refused. Doing it in the
//! database costs one small write per Digest request but holds across every node of a
//! multi-node deployment (a per-node memory window would let a captured request be replayed
//! once against each other node while the nonce is fresh). A pair is refused only when seen
//! before, not when `nc` is lower than the highest seen: clients that share one nonce between
//! concurrent requests (the Go digest transport does) may deliver counts out of order.
//! Bearer requests need no write.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngCore};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::digest::{self, DigestCredentials, NonceSigner, NonceState, REALM};
use super::principal::{Denied, Grant, Principal, PrincipalKind, Refused};
use super::roles::Role;
use super::secrets::{SecretBox, SecretError};
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
    /// The request is not authenticated, or the caller may not do what it asks.
    #[error(transparent)]
    Denied(#[from] Denied),
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
    #[error("sealed digest ha1 of api key {key_id} is not text")]
    CorruptHa1 {
        key_id: String,
        #[source]
        source: std::string::FromUtf8Error,
    },
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

    /// A refusal with a fresh Digest challenge, whatever scheme the client tried: Atlas
    /// answers every unauthenticated request with a Digest challenge.
    fn refuse(&self, reason: Refused) -> AuthError {
        AuthError::Denied(Denied::Unauthenticated {
            reason,
            challenge: self.inner.nonces.challenge(reason.is_stale()),
        })
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
        Ok(Principal::new(id, kind, org_id, grants, org_projects))
    }

    /// Authenticates a request from its `Authorization` header value (Digest or Bearer;
    /// `None` when there is none). A Digest response is checked against `method` and
    /// `target`, the request target as sent in the request line (path and query).
    ///
    /// Credentials that do not check out give [`AuthError::Denied`] with
    /// [`Denied::Unauthenticated`] and a fresh challenge; any other error is a failure of the
    /// store or of a sealed value.
    pub async fn authenticate(
        &self,
        method: &str,
        target: &str,
        authorization: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let Some(value) = authorization else {
            return Err(self.refuse(Refused::Credentials));
        };
        if let Some(token) = bearer_token(value) {
            return self.authenticate_bearer(token).await;
        }
        let creds = match DigestCredentials::parse(value) {
            Ok(c) => c,
            Err(error) => {
                tracing::debug!(error = %error, "refused authorization header");
                return Err(self.refuse(Refused::Credentials));
            }
        };
        self.authenticate_digest(method, target, &creds).await
    }

    async fn authenticate_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        let owner = self
            .inner
            .store
            .oauth_token_owner(&sha256_hex(token.as_bytes()))
            .await?;
        let Some(TokenOwner {
            id,
            client_id,
            org_id,
        }) = owner
        else {
            tracing::debug!("refused unknown or expired bearer token");
            return Err(self.refuse(Refused::Token));
        };
        self.principal(id, PrincipalKind::ServiceAccount { client_id }, org_id)
            .await
    }

    async fn authenticate_digest(
        &self,
        method: &str,
        target: &str,
        creds: &DigestCredentials,
    ) -> Result<Principal, AuthError> {
        let refuse = |reason: &str| {
            tracing::debug!(public_key = %creds.username, reason, "refused digest credentials");
            self.refuse(Refused::Credentials)
        };
        if creds.realm != REALM {
            return Err(refuse("wrong realm"));
        }
        if let Some(opaque) = &creds.opaque
            && opaque != self.inner.nonces.opaque()
        {
            return Err(refuse("wrong opaque"));
        }
        if !uri_matches(&creds.uri, target) {
            return Err(refuse("uri does not match the request"));
        }
        let nonce_state = self.inner.nonces.check(&creds.nonce);
        if nonce_state == NonceState::Invalid {
            return Err(refuse("nonce not issued by this deployment"));
        }
        let Some(key) = self
            .inner
            .store
            .api_key_by_public_key(&creds.username)
            .await?
        else {
            // Do the same hashing as for a known key, so that timing does not tell which
            // public keys exist.
            let dummy = digest::ha1(&creds.username, REALM, "");
            let _ = creds.expected_response(&dummy, method);
            return Err(refuse("unknown public key"));
        };
        let ha1 = self.inner.secrets.open(&key.sealed_ha1)?;
        let ha1 = String::from_utf8(ha1).map_err(|source| AuthError::CorruptHa1 {
            key_id: key.id.clone(),
            source,
        })?;
        let Some(expected) = creds.expected_response(&ha1, method) else {
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
                return Err(self.refuse(Refused::StaleNonce));
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
            .await?;
        self.maybe_purge();
        if !fresh {
            tracing::warn!(public_key = %creds.username, nc, "replayed digest nonce count refused");
            return Err(self.refuse(Refused::ReplayedNonce));
        }
        self.principal(
            key.id,
            PrincipalKind::ApiKey {
                public_key: creds.username.clone(),
            },
            key.org_id,
        )
        .await
    }
}

/// Checking credentials without an HTTP exchange: the dashboard's login form takes a key pair or
/// a service account's client credentials once, and its session keeps only who signed in
/// ([`PrincipalKind`]), never a secret, so every later request reloads the caller with
/// [`AuthService::principal_of`] (a deleted key or account stops working at once).
impl AuthService {
    /// The caller for an API key pair, checked the way Digest checks it: `MD5(public:realm:
    /// private)` against the key's stored HA1 (sealed at rest; the private key itself is never
    /// stored), in constant time. A wrong or unknown pair gets the same refusal as wrong Digest
    /// credentials, after the same hashing, so timing does not tell which public keys exist.
    pub async fn verify_api_key_pair(
        &self,
        public_key: &str,
        private_key: &str,
    ) -> Result<Principal, AuthError> {
        let given = digest::ha1(public_key, REALM, private_key);
        let Some(key) = self.inner.store.api_key_by_public_key(public_key).await? else {
            let _ = digest::digests_equal(&given, &digest::ha1(public_key, REALM, ""));
            tracing::debug!(public_key, "refused key pair: unknown public key");
            return Err(self.refuse(Refused::Credentials));
        };
        let ha1 = self.inner.secrets.open(&key.sealed_ha1)?;
        let ha1 = String::from_utf8(ha1).map_err(|source| AuthError::CorruptHa1 {
            key_id: key.id.clone(),
            source,
        })?;
        if !digest::digests_equal(&ha1, &given) {
            tracing::debug!(public_key, "refused key pair: wrong private key");
            return Err(self.refuse(Refused::Credentials));
        }
        self.principal(
            key.id,
            PrincipalKind::ApiKey {
                public_key: public_key.to_string(),
            },
            key.org_id,
        )
        .await
    }

    /// The caller for a service account's client id and secret (the same check as the OAuth
    /// token endpoint); wrong credentials get [`AuthError::InvalidClient`].
    pub async fn verify_client_credentials(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Principal, AuthError> {
        self.check_client(client_id, client_secret).await?;
        self.principal_of(&PrincipalKind::ServiceAccount {
            client_id: client_id.to_string(),
        })
        .await?
        .ok_or(AuthError::InvalidClient)
    }

    /// The caller a signed-in session names, with its grants as they are now; `None` when the
    /// key or the service account has been deleted since.
    pub async fn principal_of(&self, kind: &PrincipalKind) -> Result<Option<Principal>, AuthError> {
        let (id, org_id) = match kind {
            PrincipalKind::ApiKey { public_key } => {
                match self.inner.store.api_key_by_public_key(public_key).await? {
                    Some(key) => (key.id, key.org_id),
                    None => return Ok(None),
                }
            }
            PrincipalKind::ServiceAccount { client_id } => {
                match self.inner.store.service_account_owner(client_id).await? {
                    Some(owner) => (owner.id, owner.org_id),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(self.principal(id, kind.clone(), org_id).await?))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive), `None` for
/// any other scheme. A value that is only `Bearer ` is left to the Digest parser, which
/// refuses it.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    // `get` rather than slicing: the value may hold non-ASCII text, and a slice inside a
    // character would panic.
    let (scheme, rest) = (value.get(..7)?, value.get(7..)?);
    (!rest.is_empty() && scheme.eq_ignore_ascii_case("bearer ")).then(|| rest.trim())
}

/// The digest `uri` must name the request target (path and query), either as sent or as an
/// absolute URL.
fn uri_matches(digest_uri: &str, target: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("  bEaReR  abc "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Digest username=\"x\""), None);
        // Non-ASCII text must not panic (a byte slice at 7 would cut a character).
        assert_eq!(bearer_token("Beaé rer x"), None);
        assert_eq!(bearer_token("éééééé"), None);
    }

    #[test]
    fn digest_uri_names_the_request_target_as_sent_or_absolute() {
        let target = "/api/atlas/v2/groups/g1/probe?pretty=true";
        assert!(uri_matches(target, target));
        assert!(uri_matches(
            "http://localhost:8080/api/atlas/v2/groups/g1/probe?pretty=true",
            target
        ));
        assert!(!uri_matches("/api/atlas/v2/groups/g2/probe", target));
        assert!(!uri_matches("/api/atlas/v2/groups/g1/probe", target));
    }
}

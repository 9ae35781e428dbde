//! Authentication and authorization for the Admin API, and secrets at rest.
//!
//! - [`secrets`]: AES-256-GCM secrets at rest under the deployment key ([`SecretBox`]);
//! - [`digest`]: HTTP Digest (RFC 7616) as Atlas speaks it, with stateless signed nonces that
//!   any node sharing the key can check;
//! - [`roles`]: Atlas roles and their implications;
//! - [`service`]: [`AuthService`] (credentials in the store, request authentication) and the
//!   [`Principal`] extractor with `require_group` / `require_org`;
//! - [`oauth`]: `POST /api/oauth/token` and `POST /api/oauth/revoke` ([`routes`]).
//!
//! Answers: no or wrong credentials → 401 with a Digest challenge (`stale=true` when only the
//! nonce is too old); a role too weak → 403 `USER_UNAUTHORIZED`; a project (or organization)
//! the caller has no role in → 404 `GROUP_NOT_FOUND` (`ORG_NOT_FOUND`), the same answer as for
//! one that does not exist, so a key of one project learns nothing about another.
//!
//! Multi-node: every node must share the deployment key (`SNAPEX_SECRET_KEY` or the same
//! `secret.key`); [`AuthService::verify_deployment_key`] refuses to start with another key.

pub mod digest;
pub mod oauth;
pub mod roles;
pub mod secrets;
pub mod service;

pub use oauth::routes;
pub use roles::Role;
pub use secrets::{SecretBox, SecretError};
pub use service::{
    ApiKeyInfo, AuthError, AuthService, Grant, IssuedToken, NewApiKey, NewServiceAccount,
    Principal, PrincipalKind, ServiceAccountInfo, group_not_found, org_not_found,
};

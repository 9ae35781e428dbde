//! Authentication and authorization for the Admin API, and secrets at rest: the rules, with no
//! HTTP in them. The front ends call in with plain values and get typed answers back.
//!
//! - [`secrets`]: AES-256-GCM secrets at rest under the deployment key ([`SecretBox`]);
//! - [`digest`]: HTTP Digest (RFC 7616) as Atlas speaks it, with stateless signed nonces that
//!   any node sharing the key can check;
//! - [`roles`]: Atlas roles and their implications;
//! - [`principal`]: the authenticated caller ([`Principal`], its [`Grant`]s) with
//!   `require_group` / `require_org`, and [`Denied`], the typed refusal;
//! - [`service`]: [`AuthService`]: creating and listing API keys and service accounts,
//!   authenticating a request (Digest or Bearer), issuing and revoking OAuth tokens, checking
//!   the deployment key.
//!
//! Who does what around it: the credentials' SQL is `store::credentials`'s (this module seals
//! and hashes before, and checks after); the HTTP side is `api`'s: `api::auth` has the
//! [`Principal`] extractor and renders [`Denied`] and [`AuthError`], `api::oauth` has
//! `POST /api/oauth/token` and `POST /api/oauth/revoke`; `cli::admin` creates keys.
//!
//! Answers (rendered by `api::auth`): no or wrong credentials → 401 with a Digest challenge
//! (`stale=true` when only the nonce is too old); a role too weak → 403 `USER_UNAUTHORIZED`; a
//! project (or organization) the caller has no role in → 404 `GROUP_NOT_FOUND`
//! (`ORG_NOT_FOUND`), the same answer as for one that does not exist, so a key of one project
//! learns nothing about another.
//!
//! Multi-node: every node must share the deployment key (`SNAPEX_SECRET_KEY` or the same
//! `secret.key`); [`AuthService::verify_deployment_key`] refuses to start with another key.

pub mod digest;
pub mod principal;
pub mod roles;
pub mod secrets;
pub mod service;

pub use principal::{Denied, Grant, Principal, PrincipalKind, Refused};
pub use roles::Role;
pub use secrets::{SecretBox, SecretError};
pub use service::{
    ApiKeyInfo, AuthError, AuthService, IssuedToken, NewApiKey, NewServiceAccount,
    ServiceAccountInfo,
};

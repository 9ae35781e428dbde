//! The web dashboard: server-rendered pages under `/ui/`, served by `snapex serve` beside the
//! API on the same listener (merged by [`crate::api::app`]), for the people who watch exports
//! rather than script them.
//!
//! Pages, one file each: [`login`] (sign-in with an API key pair or a service account's client
//! credentials, sign-out, the project list), [`jobs`] (a project's export jobs with filters and
//! the deployment's replica-set slots, a job's page with its per-replica-set progress,
//! `stateReason`, files and the **Verify** and **Cancel** actions), [`snapshots`] (each
//! cluster's snapshots with **Export…** and the import form), [`buckets`] (permission checks and
//! what uses each bucket) and [`nodes`] (the nodes holding job leases).
//!
//! How it is built:
//! - templates are Rust ([`maud`]): compiled into the binary and HTML-escaped by default, so a
//!   name or a `stateReason` can never become markup; the only script is
//!   `assets/dashboard.js` (a few lines, no build step), served from `/ui/static/`;
//! - live progress: each live page names a fragment URL that answers Server-Sent Events
//!   ([`live`]); the server re-renders the fragment every second and sends it only when it
//!   changed, and the script swaps it in, so nothing reloads (a stream lasts 20 s and the
//!   browser reconnects, so a server shutting down never waits long for open pages);
//! - sessions ([`session`]): in memory on the node that signed the user in (a deployment of
//!   several nodes behind a load balancer needs sticky sessions for the dashboard; the API is
//!   unaffected). A session holds who signed in (a public key or a client id) and its CSRF
//!   token — never a credential — and the caller's roles are reloaded on every request, so a
//!   deleted key stops working at once. The cookie is `HttpOnly`, `SameSite=Strict`, `Secure`
//!   when the request came over https (or the configured public URL is https); every POST
//!   carries the session's CSRF token and is refused (403) without it;
//! - authorization: every page and action requires exactly the role the API requires for the
//!   same data ([`need`]), through the same [`Principal::require_group`]; buttons appear only
//!   for actions the caller's role allows, and a forged POST gets the same 403;
//! - rules: every action calls the service layer (`service::export_jobs::create`, `cancel`,
//!   `service::snapshots::import`, `service::buckets::delete`, `permission_check`), and every
//!   refusal is worded by `api::error`'s one mapping of the service errors, so the dashboard
//!   and the API say the same thing;
//! - **Verify** runs `export::verify` in a background task of the node (one at a time; its
//!   decompression and hashing run on the blocking pool), and the job's live fragment shows
//!   the result.
//!
//! Layering: the dashboard is a front end beside `api`; it shares the API's state
//! ([`AppState`]) and error mapping, and reaches the engine only through `service`, `store`
//! queries and `export::verify`.

// `ApiError` is the error of the service-error mapping this front end shares with the API.
#![allow(clippy::result_large_err)]

pub mod buckets;
pub mod error;
pub mod jobs;
pub mod layout;
pub mod live;
pub mod login;
pub mod nodes;
pub mod session;
pub mod snapshots;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use error::UiError;
pub use session::{Sessions, Viewer};

use crate::api::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::store::{Cluster, Project};

/// The role each page and action needs: the API's for the same data.
pub mod need {
    use crate::auth::Role;

    /// A project's clusters, snapshots, buckets and schedules (`GET /groups/{id}/…`).
    pub const READ_PROJECT: Role = Role::GroupReadOnly;
    /// Export jobs (`GET …/backup/exports[/{id}]`); also Verify (it reads the job's export)
    /// and the nodes page (the jobs they hold).
    pub const READ_JOBS: Role = Role::GroupBackupManager;
    /// Creating and cancelling export jobs (`POST …/backup/exports`, `…/cancel`).
    pub const EXPORT: Role = Role::GroupBackupExportOperator;
    /// Importing a snapshot (`POST /api/snapex/v1/…/snapshots`).
    pub const IMPORT: Role = Role::GroupBackupCreator;
    /// Adding, checking and deleting export buckets (`POST`/`DELETE …/exportBuckets`).
    pub const MANAGE_BUCKETS: Role = Role::GroupBackupManager;
}

/// Settings of the dashboard.
#[derive(Debug, Clone)]
pub struct Options {
    /// The URL clients reach the server at; `https://…` makes the session cookie `Secure`
    /// whatever a request says.
    pub public_url: Option<String>,
    /// A session unused this long ends (an open live page keeps it in use).
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_max: Duration,
    /// How often live fragments are re-rendered.
    pub live_every: Duration,
    /// How long one event stream lasts before the server closes it (the browser reconnects at
    /// once, with its session checked again): an open page never holds a connection for
    /// longer, so a graceful shutdown waits at most this long for live pages.
    pub live_lifetime: Duration,
    /// Ends every event stream at once when cancelled (the server's shutdown).
    pub shutdown: Option<tokio_util::sync::CancellationToken>,
}

/// Idle timeout of a session.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// Absolute lifetime of a session.
pub const DEFAULT_SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// Period of the live fragments.
pub const DEFAULT_LIVE_EVERY: Duration = Duration::from_secs(1);
/// Lifetime of one event stream.
pub const DEFAULT_LIVE_LIFETIME: Duration = Duration::from_secs(20);

impl Default for Options {
    fn default() -> Self {
        Options {
            public_url: None,
            session_idle: DEFAULT_SESSION_IDLE,
            session_max: DEFAULT_SESSION_MAX,
            live_every: DEFAULT_LIVE_EVERY,
            live_lifetime: DEFAULT_LIVE_LIFETIME,
            shutdown: None,
        }
    }
}

impl Options {
    /// Whether cookies must be `Secure` whatever the request (an https public URL).
    fn public_url_is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .and_then(|u| u.get(..8))
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }
}

/// The dashboard's state: the API's, the sessions, and what this node remembers of bucket
/// checks, verifications and manifests. Cheap to clone.
#[derive(Clone)]
pub struct Dashboard {
    pub app: AppState,
    pub sessions: Arc<Sessions>,
    pub options: Arc<Options>,
    pub verifications: Arc<jobs::Verifications>,
    pub manifests: Arc<jobs::ManifestCache>,
    pub checks: Arc<buckets::Checks>,
}

impl std::ops::Deref for Dashboard {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.app
    }
}

impl Dashboard {
    pub fn new(app: AppState, options: Options) -> Self {
        Dashboard {
            app,
            sessions: Arc::new(Sessions::new(options.session_idle, options.session_max)),
            options: Arc::new(options),
            verifications: Arc::new(jobs::Verifications::default()),
            manifests: Arc::new(jobs::ManifestCache::default()),
            checks: Arc::new(buckets::Checks::default()),
        }
    }
}

/// Every dashboard route, ready to merge into the API's router.
pub fn routes(state: &AppState, options: Options) -> Router<AppState> {
    router(Dashboard::new(state.clone(), options))
}

/// The dashboard's routes on `dashboard` (tests build one with their own [`Options`]).
pub fn router<S: Clone + Send + Sync + 'static>(dashboard: Dashboard) -> Router<S> {
    let g = "/ui/groups/{group_id}";
    let job = "/ui/groups/{group_id}/clusters/{cluster_name}/jobs/{job_id}";
    let snapshot = "/ui/groups/{group_id}/clusters/{cluster_name}/snapshots";
    let bucket = "/ui/groups/{group_id}/buckets/{bucket_id}";
    Router::new()
        .route("/ui", get(login::to_home))
        .route("/ui/", get(login::home))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/static/dashboard.js", get(layout::script))
        .route("/ui/static/dashboard.css", get(layout::stylesheet))
        .route(&format!("{g}/jobs"), get(jobs::list))
        .route(&format!("{g}/jobs/live"), get(jobs::list_live))
        .route(job, get(jobs::page))
        .route(&format!("{job}/live"), get(jobs::page_live))
        .route(&format!("{job}/cancel"), post(jobs::cancel))
        .route(&format!("{job}/verify"), post(jobs::verify))
        .route(&format!("{g}/snapshots"), get(snapshots::list))
        .route(&format!("{snapshot}/import"), post(snapshots::import))
        .route(
            &format!("{snapshot}/{{snapshot_id}}/export"),
            post(snapshots::export),
        )
        .route(&format!("{g}/buckets"), get(buckets::list))
        .route(&format!("{bucket}/check"), post(buckets::check))
        .route(&format!("{bucket}/delete"), post(buckets::delete))
        .route(&format!("{g}/nodes"), get(nodes::list))
        .route(&format!("{g}/nodes/live"), get(nodes::list_live))
        .route("/ui/{*rest}", get(error::not_found))
        .layer(axum::middleware::from_fn(layout::security_headers))
        .with_state(dashboard)
}

/// The project `group_id` when the caller holds `role` in it: the same check, and the same
/// refusals (404 for a project it has no role in, 403 for a weaker role), as the API's
/// `project_for`.
pub async fn project_for(
    dashboard: &Dashboard,
    principal: &Principal,
    group_id: &str,
    role: Role,
) -> Result<Project, UiError> {
    crate::api::project_for(&dashboard.app, principal, group_id, role)
        .await
        .map_err(UiError::Api)
}

/// The cluster `name` of the project, as the API's `cluster_for`.
pub async fn cluster_for(
    dashboard: &Dashboard,
    principal: &Principal,
    group_id: &str,
    name: &str,
    role: Role,
) -> Result<(Project, Cluster), UiError> {
    crate::api::cluster_for(&dashboard.app, principal, group_id, name, role)
        .await
        .map_err(UiError::Api)
}

/// What a failure says to the user: the API's detail for the same error (5xx details are
/// logged there and never shown).
pub fn refusal(error: impl Into<ApiError>) -> String {
    error.into().detail
}

/// A failure as a page shows it: worded for the reader, with the server's own paths (the
/// bucket root) replaced. Pages keep failures they show later (a bucket's last permission
/// check, a job's files, a verification) as this, never as an error's raw text, which can
/// name a server path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PageText(String);

impl PageText {
    /// `text` with the bucket root replaced by `<bucket root>`.
    pub fn scrubbed(dashboard: &Dashboard, text: &str) -> PageText {
        let root = dashboard.config.bucket_root.display().to_string();
        if root.is_empty() {
            PageText(text.to_string())
        } else {
            PageText(text.replace(&root, "<bucket root>"))
        }
    }

    /// A message made from nothing of the server's (the API's refusal, a fixed sentence).
    pub fn plain(text: impl Into<String>) -> PageText {
        PageText(text.into())
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_public_url_makes_cookies_secure() {
        let with = |url: Option<&str>| Options {
            public_url: url.map(str::to_string),
            ..Options::default()
        };
        assert!(with(Some("https://snapex.example.com/")).public_url_is_https());
        assert!(with(Some("HTTPS://snapex.example.com")).public_url_is_https());
        assert!(!with(Some("http://127.0.0.1:8080")).public_url_is_https());
        assert!(!with(Some("é")).public_url_is_https());
        assert!(!with(None).public_url_is_https());
    }
}

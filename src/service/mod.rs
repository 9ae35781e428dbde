//! The product's rules, once, for every front end: the HTTP API (`api`), the CLI (`cli`) and
//! the job engine (`jobs`) call these typed functions; none of them knows HTTP.
//!
//! - [`config`]: [`DeploymentConfig`], every setting of a node with its default;
//! - [`buckets`]: an export bucket → its storage [`Location`](crate::storage::Location) with its
//!   role's credentials, the `FILESYSTEM` name rule, the permission check, create and delete
//!   guards;
//! - [`access_roles`]: object-store credentials sealed at rest, opened only to reach a bucket;
//! - [`export_jobs`]: create (validation, the prefix with `useOrgAndGroupNamesInExportPrefix`,
//!   one active job per snapshot, the prefix-taken retry), cancel, the auto-export decision;
//! - [`snapshots`]: import (one readable part per replica set), retention, deletion guards;
//! - [`catalog`]: backup locations, the completeness and frequency rules, the watcher that
//!   registers new backups as snapshots;
//! - [`sources`]: where a project's snapshots may come from (roots, grants, its own roles);
//! - [`schedules`]: the typed backup schedule, its validation and what it drives (retention of
//!   scheduled snapshots, auto-export, names in the export prefix).
//!
//! Each service has its own error enum (thiserror, causes kept as `source`); `api::error` maps
//! them to Atlas statuses and error codes in one place. Failures that are the caller's fault
//! share [`Invalid`], so every front end names the offending field the same way.
//!
//! Layering: `service` sits on the engine (`store`, `storage`, `snapshot`, `export`, `auth`'s
//! secrets) and below the front ends; it never names an HTTP type or a front-end module.

pub mod access_roles;
pub mod buckets;
pub mod catalog;
pub mod config;
pub mod export_jobs;
pub mod local_jobs;
pub mod schedules;
pub mod snapshots;
pub mod sources;

use std::sync::Arc;

use tokio::sync::Notify;

pub use config::{DeploymentConfig, ProjectSet};

use crate::auth::SecretBox;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every rule needs: the store, the deployment key, the configuration, this process's
/// counters and the runner's wake-up. Cheap to clone.
#[derive(Clone)]
pub struct Deployment {
    pub store: Store,
    pub secrets: SecretBox,
    pub config: Arc<DeploymentConfig>,
    pub metrics: Arc<Metrics>,
    /// Woken when a job is created, so the runner admits it without waiting for its poll.
    pub wakeup: Arc<Notify>,
    /// The jobs this process runs, for cancel requests taken here.
    pub local_jobs: Arc<local_jobs::LocalJobs>,
}

impl Deployment {
    pub fn new(store: Store, secrets: SecretBox, config: DeploymentConfig) -> Self {
        Deployment {
            store,
            secrets,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            wakeup: Arc::new(Notify::new()),
            local_jobs: Arc::default(),
        }
    }
}

/// A request the rules refuse because of one field: what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// A value that breaks a rule (`description` says which).
    #[error("invalid attribute {field}: {description}")]
    Attribute { field: String, description: String },
    /// A value outside a closed set; `allowed` lists the set as the message shows it.
    #[error("invalid value {value} for {field}: expected one of {allowed}")]
    Enum {
        field: String,
        value: String,
        allowed: String,
    },
    /// An id (in the path, or a reference to another resource) that is not 24 hex digits.
    #[error("invalid {field} {value}: expected a 24-hexadecimal character string")]
    Id { field: String, value: String },
    /// A field required in this situation (`why` says which).
    #[error("missing attribute {field}: required {why}")]
    Missing { field: String, why: String },
}

impl Invalid {
    pub fn attribute(field: impl Into<String>, description: impl Into<String>) -> Self {
        Invalid::Attribute {
            field: field.into(),
            description: description.into(),
        }
    }

    pub fn enumeration(
        field: impl Into<String>,
        value: impl Into<String>,
        allowed: &[&str],
    ) -> Self {
        Invalid::Enum {
            field: field.into(),
            value: value.into(),
            allowed: allowed.join(", "),
        }
    }

    pub fn missing(field: impl Into<String>, why: impl Into<String>) -> Self {
        Invalid::Missing {
            field: field.into(),
            why: why.into(),
        }
    }
}

/// Checks that the id `value` (of a path parameter, or a reference) is 24 hex digits.
pub fn check_id(field: &str, value: &str) -> Result<(), Invalid> {
    if crate::store::is_object_id(value) {
        Ok(())
    } else {
        Err(Invalid::Id {
            field: field.to_string(),
            value: value.to_string(),
        })
    }
}

/// Checks that `value` is a 24-hex id, as every id inside a schedule body must be.
pub fn check_body_id(field: &str, value: &str) -> Result<(), Invalid> {
    if crate::store::is_object_id(value) {
        Ok(())
    } else {
        Err(Invalid::attribute(
            field,
            "expected a 24-hexadecimal character string",
        ))
    }
}

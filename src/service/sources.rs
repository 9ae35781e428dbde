//! Where a project's snapshots may come from (issue 9, "snapshot sources are confined"). The
//! operator decides; a project reaches nothing else with the server's authority:
//! - `--source-root DIR` gives every project the directory `DIR/<groupId>/` (and nothing
//!   above or beside it);
//! - `--source-grant PROJECT=PATH_OR_URL` gives one project (or `*`, every project) a local
//!   directory or a storage URL prefix, read with the server's own options and credentials;
//! - a remote part (`s3://`, `az://`, `gs://`) with a `roleId` is read with that access role of
//!   the project, exactly as an export bucket is written;
//! - a remote part without a role, outside every grant, is read with the server's environment
//!   credentials only in a project allowed `--allow-environment-credentials`.
//!
//! Everything else — a relative path, `.`/`..` segments, a path outside the project's roots,
//! a symlink that leaves them, the server's data directory, another project's directory,
//! `memory://` — gets one answer, [`SourceRefused`], the same whether the target exists or not,
//! so a refusal tells a tenant nothing about the host.
//!
//! The check runs on import and again every time a job opens the part, so a grant the operator
//! withdraws holds for snapshots imported before. What it cannot close: a file inside an
//! allowed directory replaced by a symlink after the check (the read follows it); the operator
//! keeps roots writable only by the backup tool, as a backup directory should be.

use std::path::{Path, PathBuf};

use super::Deployment;
use super::access_roles::storage_options_for;
use crate::storage::{Location, Scheme};
use crate::store::CloudProvider;

/// Entries walked under a local part looking for symlinks that leave its root; a dump has a
/// few files per collection, so this bounds the check, not real snapshots.
const MAX_WALK_ENTRIES: usize = 200_000;

/// A local directory or storage URL prefix granted to some projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGrant {
    pub projects: super::ProjectSet,
    /// An absolute local directory, or a URL prefix such as `s3://backups/nightly`.
    pub prefix: String,
}

impl SourceGrant {
    /// The flag form `PROJECT=PATH_OR_URL`, `PROJECT` a project id or `*` for every project.
    pub fn parse(text: &str) -> Option<SourceGrant> {
        let (project, prefix) = text.split_once('=')?;
        let (project, prefix) = (project.trim(), prefix.trim());
        if project.is_empty() || prefix.is_empty() {
            return None;
        }
        let projects = if project == "*" {
            super::ProjectSet::All
        } else {
            super::ProjectSet::Only(vec![project.to_string()])
        };
        Some(SourceGrant {
            projects,
            prefix: prefix.to_string(),
        })
    }
}

impl std::fmt::Display for SourceGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match &self.projects {
            super::ProjectSet::All => "*".to_string(),
            other => other.to_string(),
        };
        write!(f, "{who}={}", self.prefix)
    }
}

/// The one answer to a source the project may not read. It carries no detail on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the snapshot source is not allowed for this project")]
pub struct SourceRefused;

/// Why a part cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error(transparent)]
    Refused(#[from] SourceRefused),
    /// A URL that does not parse, or a store that cannot be set up (the project's own input).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Role(#[from] super::access_roles::AccessRoleError),
    #[error("metadata store")]
    Store(#[from] crate::store::StoreError),
}

/// Opens the snapshot part `url` of project `group_id` for reading, if the project may read it.
pub async fn open_part(
    deployment: &Deployment,
    group_id: &str,
    url: &str,
    role_id: Option<&str>,
) -> Result<Location, PartError> {
    let config = &deployment.config;
    match crate::storage::scheme_of(url)? {
        Scheme::Local => {
            if role_id.is_some() {
                return Err(SourceRefused.into());
            }
            let path = local_path(url).ok_or(SourceRefused)?;
            let roots = local_roots(deployment, group_id);
            let protected = protected_dirs(deployment);
            let path_for_check = path.clone();
            let allowed = tokio::task::spawn_blocking(move || {
                local_allowed(&path_for_check, &roots, &protected)
            })
            .await
            .unwrap_or(false);
            if !allowed {
                return Err(SourceRefused.into());
            }
            let location = crate::storage::open(url, &config.storage)?;
            // A PBM backup named inside an allowed directory still reads its storage root
            // (the folder of `<name>.pbm.json`): that root must be allowed as well.
            if let Some(root) = crate::snapshot::pbm::storage_root(&location).await {
                let root_path = root.local_root.ok_or(SourceRefused)?;
                let roots = local_roots(deployment, group_id);
                let protected = protected_dirs(deployment);
                let allowed = tokio::task::spawn_blocking(move || {
                    local_allowed(&root_path, &roots, &protected)
                })
                .await
                .unwrap_or(false);
                if !allowed {
                    return Err(SourceRefused.into());
                }
            }
            Ok(location)
        }
        Scheme::Memory => {
            if !remote_granted(deployment, group_id, url) {
                return Err(SourceRefused.into());
            }
            let location = crate::storage::open(url, &config.storage)?;
            pbm_root_granted(deployment, group_id, &location).await?;
            Ok(location)
        }
        scheme @ (Scheme::S3 | Scheme::Azure | Scheme::Gcs) => {
            // Read under a grant (not the project's own role or environment credentials):
            // a PBM backup's storage root must lie under the grant too.
            let granted_only =
                role_id.is_none() && !config.environment_credentials.contains(group_id);
            let options = match role_id {
                Some(role_id) => {
                    let role = deployment
                        .store
                        .get_access_role(group_id, role_id)
                        .await?
                        .ok_or(SourceRefused)?;
                    let wanted = match scheme {
                        Scheme::S3 => CloudProvider::Aws,
                        Scheme::Azure => CloudProvider::Azure,
                        _ => CloudProvider::Gcp,
                    };
                    if role.provider != wanted {
                        return Err(SourceRefused.into());
                    }
                    storage_options_for(deployment, &role)?
                }
                None if remote_granted(deployment, group_id, url)
                    || config.environment_credentials.contains(group_id) =>
                {
                    config.storage.clone()
                }
                None => return Err(SourceRefused.into()),
            };
            let location = crate::storage::open(url, &options)?;
            if granted_only {
                pbm_root_granted(deployment, group_id, &location).await?;
            }
            Ok(location)
        }
    }
}

/// For a part read under a grant: the storage root of the PBM backup it names, if any, lies
/// under a grant of the project too.
async fn pbm_root_granted(
    deployment: &Deployment,
    group_id: &str,
    location: &Location,
) -> Result<(), SourceRefused> {
    match crate::snapshot::pbm::storage_root(location).await {
        Some(root) if !remote_granted(deployment, group_id, &root.url) => Err(SourceRefused),
        _ => Ok(()),
    }
}

/// The absolute local path a `file://` URL or plain path names; `None` for a relative path
/// or one with `.`/`..` segments (refused without looking at the disk).
fn local_path(url: &str) -> Option<PathBuf> {
    let raw = match url.strip_prefix("file://") {
        Some(rest) => percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .ok()?
            .into_owned(),
        None => url.to_string(),
    };
    // Segments are checked on the text: `Path::components` drops interior `.` segments.
    if raw
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return None;
    }
    let path = PathBuf::from(raw);
    path.is_absolute().then_some(path)
}

/// The project's local roots: `<source root>/<groupId>` for every source root, and the local
/// grants that name it.
fn local_roots(deployment: &Deployment, group_id: &str) -> Vec<PathBuf> {
    let config = &deployment.config;
    let mut roots: Vec<PathBuf> = config
        .source_roots
        .iter()
        .map(|r| r.join(group_id))
        .collect();
    for grant in &config.source_grants {
        if grant.projects.contains(group_id)
            && crate::storage::scheme_of(&grant.prefix).ok() == Some(Scheme::Local)
            && let Some(p) = local_path(&grant.prefix)
        {
            roots.push(p);
        }
    }
    roots
}

/// Directories no wider root may reach into (a root granted inside one may): the data
/// directory (the database, `secret.key`) and the bucket root (other projects' exports).
fn protected_dirs(deployment: &Deployment) -> Vec<PathBuf> {
    let config = &deployment.config;
    let mut dirs = config.protected_dirs.clone();
    dirs.push(config.bucket_root.clone());
    dirs
}

fn canonical(p: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(p).ok()
}

/// Whether `path` lies inside one of `roots` (symlinks resolved), outside every protected
/// directory that contains that root, and — for a directory — whether nothing under it
/// links out of that root.
fn local_allowed(path: &Path, roots: &[PathBuf], protected: &[PathBuf]) -> bool {
    let protected: Vec<PathBuf> = protected.iter().filter_map(|p| canonical(p)).collect();
    let resolved = canonical(path);
    for root in roots {
        let Some(root) = canonical(root) else {
            continue;
        };
        let inside = match &resolved {
            Some(p) => p.starts_with(&root),
            // A path that does not exist (yet) is judged by its name: opening it will then
            // report it missing, which is the project's own business inside its root.
            None => path.starts_with(&root),
        };
        if !inside {
            continue;
        }
        let target = resolved.as_deref().unwrap_or(path);
        // A root granted inside (or as) a protected directory is the operator's explicit
        // choice; a wider root never reaches into one.
        let guarded = protected
            .iter()
            .any(|p| p.starts_with(&root) && *p != root && target.starts_with(p));
        if guarded {
            continue;
        }
        if resolved.is_some() && !links_stay_inside(target, &root) {
            return false;
        }
        return true;
    }
    false
}

/// No entry under `dir` resolves outside `root` (a file is checked by itself).
fn links_stay_inside(dir: &Path, root: &Path) -> bool {
    let mut pending = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            // A file (an archive) or an unreadable directory: nothing more to walk here.
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return false;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                return false;
            };
            if kind.is_symlink() {
                match canonical(&path) {
                    Some(target) if target.starts_with(root) => {}
                    _ => return false,
                }
            } else if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    true
}

/// Whether `url` lies under a storage URL prefix granted to the project (segment-wise: a
/// grant of `s3://b/nightly` does not cover `s3://b/nightly-other`).
fn remote_granted(deployment: &Deployment, group_id: &str, url: &str) -> bool {
    let url = url.trim_end_matches('/');
    deployment.config.source_grants.iter().any(|g| {
        let prefix = g.prefix.trim_end_matches('/');
        g.projects.contains(group_id)
            && crate::storage::scheme_of(prefix).is_ok_and(|s| s != Scheme::Local)
            && (url == prefix || url.starts_with(&format!("{prefix}/")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_paths_without_dot_segments_are_considered() {
        assert!(local_path("/srv/backups/p/x").is_some());
        assert!(local_path("file:///srv/backups/p/x").is_some());
        assert!(local_path("relative/dump").is_none());
        assert!(local_path("/srv/backups/p/../q").is_none());
        assert!(local_path("/srv/./backups").is_none());
        assert!(local_path("file:///srv/%2e%2e/etc").is_none());
    }

    #[test]
    fn a_path_is_allowed_only_inside_a_root_and_outside_what_is_protected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("roots/g1");
        let other = dir.path().join("roots/g2");
        let data = dir.path().join("data");
        for d in [&root, &other, &data] {
            std::fs::create_dir_all(d.join("dump")).unwrap();
        }
        let roots = vec![root.clone()];
        let protected = vec![data.clone()];
        assert!(local_allowed(&root.join("dump"), &roots, &protected));
        assert!(local_allowed(&root.join("missing"), &roots, &protected));
        assert!(!local_allowed(&other.join("dump"), &roots, &protected));
        assert!(!local_allowed(&data, &roots, &protected));
        // a symlink out of the root, as the part or inside it
        std::os::unix::fs::symlink(&other, root.join("escape")).unwrap();
        assert!(!local_allowed(&root.join("escape"), &roots, &protected));
        std::os::unix::fs::symlink(&data, root.join("dump/inner")).unwrap();
        assert!(!local_allowed(&root.join("dump"), &roots, &protected));
        // a root that contains the data directory still does not reach into it
        let wide = vec![dir.path().to_path_buf()];
        assert!(!local_allowed(&data.join("dump"), &wide, &protected));
        assert!(local_allowed(&other.join("dump"), &wide, &protected));
    }

    #[test]
    fn grants_parse_from_the_flag_form() {
        let g = SourceGrant::parse("*=s3://b/nightly").unwrap();
        assert_eq!(g.projects, super::super::ProjectSet::All);
        assert_eq!(g.to_string(), "*=s3://b/nightly");
        assert!(SourceGrant::parse("nothing").is_none());
        assert!(SourceGrant::parse("=x").is_none());
    }
}

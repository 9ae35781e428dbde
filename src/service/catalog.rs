//! The backup catalog (issue 13): backup locations the operator declares, each bound to one
//! cluster of one project, and the rules that turn what a location holds into snapshots.
//!
//! - A location is read exactly as a snapshot part of its project is
//!   ([`super::sources::open_part`]): a local path must lie inside the project's roots or
//!   grants; a remote URL is read with the location's `role` (an access role of the project),
//!   and without one only inside a grant or in a project allowed environment credentials — the
//!   server's own credentials only where the operator said so.
//! - **Complete** ([`judge`]): a PBM backup when its `.pbm.json` says `done` (and it is
//!   logical); a mongodump directory when every `.bson` has its `.metadata.json` and two
//!   consecutive listings saw the same objects with the same sizes and modification times; an
//!   archive when two consecutive listings saw the same size and modification time.
//! - **Frequency** ([`frequency_for`]): among every backup the location lists, by the time it
//!   was taken (UTC), the first of a calendar year is `yearly` (only if the policy has a yearly
//!   item), the first of a month `monthly`, the first of an ISO week (from Monday) `weekly`, the
//!   first of a day `daily`, anything else `hourly`; with policy items, the first of those
//!   levels the policy has an item for, else the policy's most frequent item. `expiresAt` then
//!   follows the item of that frequency (as for every scheduled snapshot).
//! - **Exactly once**: a node registers a backup only after inserting its catalog row
//!   (`(cluster, backup URL)` is the table's key); every other node's insert fails and it moves
//!   on. The row outlives the snapshot record, so an expired backup is never registered again.
//! - **Gone**: a registered backup a later (successful) listing no longer finds is marked gone;
//!   an export of its snapshot then fails saying so. Nothing here deletes a backup file.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Deployment;
use super::schedules::{self, Schedule};
use super::snapshots::{self, ImportRequest, PartRequest};
use crate::snapshot::SourceError;
use crate::snapshot::catalog::{self as listing, BackupKind, ListedBackup};
use crate::storage::Location;
use crate::store::{Cluster, FrequencyType, StoreError};

/// Default seconds between two listings of a location.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// A backup location as the operator declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupLocation {
    /// Unique among the locations; shown in the API and in snapshot descriptions.
    pub name: String,
    /// The project (group id) the location belongs to.
    pub project: String,
    /// The cluster (by name) of that project its backups are snapshots of.
    pub cluster: String,
    /// A PBM storage root, or a prefix with one mongodump directory or archive per backup.
    pub url: String,
    /// The project's access role to read a remote location with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Why a declared location is refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid backup location {text:?}: {problem}")]
pub struct LocationSyntax {
    pub text: String,
    pub problem: String,
}

impl BackupLocation {
    /// The flag form `name=N,project=ID,cluster=C,url=URL[,role=ID]` (`url` last when it holds
    /// a comma: everything after `url=` is the URL).
    pub fn parse(text: &str) -> Result<BackupLocation, LocationSyntax> {
        let error = |problem: &str| LocationSyntax {
            text: text.to_string(),
            problem: problem.to_string(),
        };
        let mut fields: HashMap<&str, String> = HashMap::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (key, value_and_rest) = rest
                .split_once('=')
                .ok_or_else(|| error("expected key=value pairs"))?;
            let key = key.trim();
            let (value, next) = if key == "url" {
                match value_and_rest.find(",role=") {
                    Some(at) => (&value_and_rest[..at], &value_and_rest[at + 1..]),
                    None => (value_and_rest, ""),
                }
            } else {
                value_and_rest
                    .split_once(',')
                    .unwrap_or((value_and_rest, ""))
            };
            if !["name", "project", "cluster", "url", "role"].contains(&key) {
                return Err(error(&format!(
                    "unknown key {key:?} (name, project, cluster, url, role)"
                )));
            }
            if fields.insert(key, value.trim().to_string()).is_some() {
                return Err(error(&format!("{key} given twice")));
            }
            rest = next.trim();
        }
        let location = BackupLocation {
            name: fields.remove("name").unwrap_or_default(),
            project: fields.remove("project").unwrap_or_default(),
            cluster: fields.remove("cluster").unwrap_or_default(),
            url: fields.remove("url").unwrap_or_default(),
            role: fields.remove("role").filter(|r| !r.is_empty()),
        };
        location.check().map_err(|p| error(&p.to_string()))?;
        Ok(location)
    }

    /// Every field present, ids that are ids.
    pub fn check(&self) -> Result<(), LocationProblem> {
        for (key, value) in [
            ("name", &self.name),
            ("project", &self.project),
            ("cluster", &self.cluster),
            ("url", &self.url),
        ] {
            if value.is_empty() {
                return Err(LocationProblem::Missing(key));
            }
        }
        if !crate::store::is_object_id(&self.project) {
            return Err(LocationProblem::ProjectId);
        }
        if let Some(role) = &self.role
            && !crate::store::is_object_id(role)
        {
            return Err(LocationProblem::RoleId);
        }
        crate::storage::scheme_of(&self.url).map_err(LocationProblem::Url)?;
        Ok(())
    }
}

/// What is wrong with a declared backup location (the caller names the location).
#[derive(Debug, thiserror::Error)]
pub enum LocationProblem {
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("project must be a 24-hexadecimal project id")]
    ProjectId,
    #[error("role must be a 24-hexadecimal access role id")]
    RoleId,
    #[error("{0}")]
    Url(#[source] crate::storage::StorageError),
}

impl std::fmt::Display for BackupLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "name={},project={},cluster={},url={}",
            self.name, self.project, self.cluster, self.url
        )?;
        if let Some(role) = &self.role {
            write!(f, ",role={role}")?;
        }
        Ok(())
    }
}

/// What the rule says of one listed backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "camelCase")]
pub enum Verdict {
    /// Complete: it becomes a snapshot.
    Complete,
    /// Not complete yet, and why.
    Incomplete(String),
    /// Its objects changed since the previous listing (or there was none yet to compare).
    Changing,
    /// Complete by the rule, but it does not open as a snapshot (`snapex catalog scan`; the
    /// server logs the same error and tries again at the next listing).
    Unreadable(String),
}

/// One backup with the rule's verdict.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judged {
    pub name: String,
    pub kind: BackupKind,
    pub url: String,
    pub taken_at: Option<DateTime<Utc>>,
    pub bytes: u64,
    /// By the frequency rule without a policy (`snapex catalog scan` knows no cluster).
    pub frequency_type: Option<FrequencyType>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The completeness rule (module docs) for `backup`, given the fingerprint the previous
/// listing saw for it (`None`: the first listing that sees it).
pub fn judge(backup: &ListedBackup, previous: Option<&str>) -> Verdict {
    if let Some(reason) = &backup.incomplete {
        return Verdict::Incomplete(reason.clone());
    }
    // PBM marks its own end (`done`, written last); the others have no marker, so they must
    // hold still for a whole interval.
    if backup.kind == BackupKind::Pbm || previous == Some(backup.fingerprint.as_str()) {
        Verdict::Complete
    } else {
        Verdict::Changing
    }
}

/// Judges two listings of one location taken a while apart (`snapex catalog scan`).
pub fn judge_listings(first: &[ListedBackup], second: &[ListedBackup]) -> Vec<Judged> {
    let times: Vec<DateTime<Utc>> = second.iter().filter_map(|b| b.taken_at).collect();
    second
        .iter()
        .map(|b| {
            let previous = first
                .iter()
                .find(|p| p.name == b.name)
                .map(|p| p.fingerprint.as_str());
            Judged {
                name: b.name.clone(),
                kind: b.kind,
                url: b.url.clone(),
                taken_at: b.taken_at,
                bytes: b.bytes,
                frequency_type: b.taken_at.map(|t| frequency_for(t, &times, &[])),
                verdict: judge(b, previous),
            }
        })
        .collect()
}

/// The levels a backup can be the first of, from the widest.
const LEVELS: [FrequencyType; 5] = [
    FrequencyType::Yearly,
    FrequencyType::Monthly,
    FrequencyType::Weekly,
    FrequencyType::Daily,
    FrequencyType::Hourly,
];

/// Whether `a` and `b` fall in the same period of `level` (UTC; weeks are ISO weeks).
fn same_period(level: FrequencyType, a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    match level {
        FrequencyType::Yearly => a.year() == b.year(),
        FrequencyType::Monthly => (a.year(), a.month()) == (b.year(), b.month()),
        FrequencyType::Weekly => a.iso_week() == b.iso_week(),
        FrequencyType::Daily => a.date_naive() == b.date_naive(),
        FrequencyType::Hourly => a.date_naive() == b.date_naive() && a.hour() == b.hour(),
        FrequencyType::OnDemand => false,
    }
}

/// The frequency of a backup taken at `at`, among backups of the location taken at `times`
/// (module docs). Ties (two backups at the same instant) go to the one listed first by name.
/// `items` are the frequencies of the cluster's policy items ([`policy_frequencies`]).
pub fn frequency_for(
    at: DateTime<Utc>,
    times: &[DateTime<Utc>],
    items: &[FrequencyType],
) -> FrequencyType {
    let first_of =
        |level: FrequencyType| !times.iter().any(|&t| t < at && same_period(level, t, at));
    if items.is_empty() {
        // No policy: the rule alone, yearly folded into monthly (no item asks for it).
        return LEVELS[1..]
            .iter()
            .copied()
            .find(|&level| level == FrequencyType::Hourly || first_of(level))
            .unwrap_or(FrequencyType::Hourly);
    }
    if let Some(level) = LEVELS
        .iter()
        .copied()
        .find(|&level| items.contains(&level) && first_of(level))
    {
        return level;
    }
    // Not the first of any period the policy keeps: the policy's most frequent item.
    LEVELS
        .iter()
        .rev()
        .copied()
        .find(|level| items.contains(level))
        .unwrap_or(FrequencyType::Daily)
}

/// The frequencies of the items of the schedule's (first and only) policy.
pub fn policy_frequencies(schedule: &Schedule) -> Vec<FrequencyType> {
    schedule
        .policies
        .first()
        .map(|p| p.policy_items.iter().map(|i| i.frequency_type).collect())
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("project {project} has no cluster {cluster}")]
    NoCluster { project: String, cluster: String },
    #[error("project {0} does not exist")]
    NoProject(String),
    #[error("cannot open backup location {location}")]
    Open {
        location: String,
        #[source]
        source: super::sources::PartError,
    },
    #[error("cannot list backup location {location}")]
    List {
        location: String,
        #[source]
        source: SourceError,
    },
    #[error(transparent)]
    Schedule(#[from] super::schedules::ScheduleError),
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// The locations of project `group_id`, as declared.
pub fn locations_of<'a>(
    deployment: &'a Deployment,
    group_id: &'a str,
) -> impl Iterator<Item = &'a BackupLocation> + 'a {
    deployment
        .config
        .backup_locations
        .iter()
        .filter(move |l| l.project == group_id)
}

/// A location of a project as the API shows it: its declaration (never a credential: the
/// role by id) and the backups it registered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BackupLocation)]
pub struct LocationStatus {
    /// Unique among the locations; shown in snapshot descriptions.
    pub name: String,
    /// The cluster (by name) its backups are snapshots of.
    pub cluster_name: String,
    /// A PBM storage root, or a prefix with one mongodump directory or archive per backup.
    pub url: String,
    /// The project's access role a remote location is read with (by id, never a credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub role_id: Option<String>,
    /// Seconds between two listings.
    #[schema(minimum = 0)]
    pub interval_seconds: u64,
    pub backups: Vec<RegisteredBackup>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredBackup {
    /// The backup's URL under the location.
    pub url: String,
    /// `None` (`null`) while a node is registering it.
    #[schema(required = true)]
    pub snapshot_id: Option<String>,
    /// When a listing found it deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub gone_at: Option<DateTime<Utc>>,
}

/// The locations of project `group_id` with what each registered.
pub async fn project_locations(
    deployment: &Deployment,
    group_id: &str,
) -> Result<Vec<LocationStatus>, CatalogError> {
    let mut out = Vec::new();
    for location in locations_of(deployment, group_id) {
        let backups = match deployment
            .store
            .get_cluster(group_id, &location.cluster)
            .await?
        {
            Some(cluster) => deployment
                .store
                .list_catalog_backups(&cluster.id, &location.name)
                .await?
                .into_iter()
                .map(|row| RegisteredBackup {
                    url: row.backup_url,
                    snapshot_id: row.snapshot_id,
                    gone_at: row.gone_at,
                })
                .collect(),
            None => Vec::new(),
        };
        out.push(LocationStatus {
            name: location.name.clone(),
            cluster_name: location.cluster.clone(),
            url: location.url.clone(),
            role_id: location.role.clone(),
            interval_seconds: deployment.config.catalog_interval.as_secs(),
            backups,
        });
    }
    Ok(out)
}

/// Opens `location` with its project's confinement and credentials.
pub async fn open_location(
    deployment: &Deployment,
    location: &BackupLocation,
) -> Result<Location, CatalogError> {
    super::sources::open_part(
        deployment,
        &location.project,
        &location.url,
        location.role.as_deref(),
    )
    .await
    .map_err(|source| CatalogError::Open {
        location: location.name.clone(),
        source,
    })
}

/// How old a claim without a snapshot must be before another node takes it over: ten
/// intervals, and at least ten minutes, far past any import (which reads a few metadata files).
pub fn stale_claim_age(interval: Duration) -> chrono::Duration {
    let age = (interval * 10).max(Duration::from_secs(600));
    chrono::Duration::from_std(age).unwrap_or(chrono::Duration::hours(1))
}

/// What one watched location's previous listing saw: backup name → fingerprint.
pub type Seen = HashMap<String, String>;

/// One listing of `location` by the watcher: registers what became complete, marks gone what
/// disappeared, and returns the fingerprints for the next listing.
pub async fn watch_once(
    deployment: &Deployment,
    location: &BackupLocation,
    previous: &Seen,
) -> Result<Seen, CatalogError> {
    let store = &deployment.store;
    let project = store
        .get_project(&location.project)
        .await?
        .ok_or_else(|| CatalogError::NoProject(location.project.clone()))?;
    let cluster = store
        .get_cluster(&location.project, &location.cluster)
        .await?
        .ok_or_else(|| CatalogError::NoCluster {
            project: location.project.clone(),
            cluster: location.cluster.clone(),
        })?;
    let opened = open_location(deployment, location).await?;
    let listed = listing::list(&opened)
        .await
        .map_err(|source| CatalogError::List {
            location: location.name.clone(),
            source,
        })?;
    let known = store
        .list_catalog_backups(&cluster.id, &location.name)
        .await?;
    // Gone: registered before, not listed now (this listing succeeded, so absence is real).
    for row in &known {
        if row.gone_at.is_none()
            && row.snapshot_id.is_some()
            && !listed.iter().any(|b| b.url == row.backup_url)
            && store
                .mark_catalog_gone(&cluster.id, &row.backup_url)
                .await?
        {
            tracing::warn!(location = %location.name, backup = %row.backup_url, snapshot_id = ?row.snapshot_id, "backup deleted from its location: snapshot marked gone");
        }
    }
    let items = policy_frequencies(&schedules::current(deployment, &cluster).await?);
    let times: Vec<DateTime<Utc>> = listed.iter().filter_map(|b| b.taken_at).collect();
    let mut seen = Seen::new();
    let stale_before = crate::store::now() - stale_claim_age(deployment.config.catalog_interval);
    for backup in &listed {
        seen.insert(backup.name.clone(), backup.fingerprint.clone());
        let row = known.iter().find(|row| row.backup_url == backup.url);
        // A claim that never became a snapshot and is long past any import's time: its node
        // died in between. Taken over (one node wins) and registered like a new backup.
        let abandoned =
            row.filter(|row| row.snapshot_id.is_none() && row.claimed_at < stale_before);
        if row.is_some() && abandoned.is_none() {
            continue;
        }
        match judge(backup, previous.get(&backup.name).map(String::as_str)) {
            Verdict::Complete => {}
            Verdict::Incomplete(reason) => {
                tracing::debug!(location = %location.name, backup = %backup.name, %reason, "backup not complete yet");
                continue;
            }
            Verdict::Changing | Verdict::Unreadable(_) => continue,
        }
        let node = &deployment.config.node_id;
        let claimed = match abandoned {
            Some(row) => {
                let taken = store
                    .take_over_catalog_claim(&cluster.id, &backup.url, node, row.claimed_at)
                    .await?;
                if taken {
                    tracing::warn!(location = %location.name, backup = %backup.name, node = %row.claimed_by, "took over an abandoned catalog claim");
                }
                taken
            }
            None => {
                store
                    .claim_catalog_backup(
                        &project.id,
                        &cluster.id,
                        &location.name,
                        &backup.url,
                        node,
                    )
                    .await?
            }
        };
        if !claimed {
            continue; // another node has it
        }
        let taken_at = backup.taken_at.unwrap_or_else(crate::store::now);
        let frequency = frequency_for(taken_at, &times, &items);
        let request = ImportRequest {
            parts: parts_for(&cluster, location, backup),
            created_at: Some(taken_at),
            snapshot_type: Some("scheduled".into()),
            frequency_type: Some(frequency.as_str().into()),
            description: Some(format!("{}: {}", location.name, backup.name)),
            retention_in_days: None,
        };
        match snapshots::import(deployment, &project, &cluster, request).await {
            Ok(imported) => {
                store
                    .set_catalog_snapshot(&cluster.id, &backup.url, &imported.snapshot.id)
                    .await?;
                tracing::info!(location = %location.name, backup = %backup.name, snapshot_id = %imported.snapshot.id, frequency = %frequency, "backup registered as a snapshot");
            }
            Err(e) => {
                // Given back, so the next listing tries again (a part not readable yet).
                store
                    .release_catalog_claim(&cluster.id, &backup.url)
                    .await?;
                tracing::warn!(location = %location.name, backup = %backup.name, error = %crate::errors::chain(&e), "backup not registered");
            }
        }
    }
    Ok(seen)
}

/// The parts of a listed backup: a mongodump backup is the cluster's one replica set; a PBM
/// backup gives each of the cluster's replica sets its `<name>/<rs>` (or, with one replica set
/// in both, the whole backup).
fn parts_for(
    cluster: &Cluster,
    location: &BackupLocation,
    backup: &ListedBackup,
) -> Vec<PartRequest> {
    let part = |replica_set: &str, url: String| PartRequest {
        replica_set_name: replica_set.to_string(),
        url,
        role_id: location.role.clone(),
    };
    if backup.kind == BackupKind::Pbm && backup.replica_sets.len() > 1 {
        return cluster
            .replica_sets
            .iter()
            .map(|rs| part(rs, format!("{}/{rs}", backup.url)))
            .collect();
    }
    cluster
        .replica_sets
        .iter()
        .map(|rs| part(rs, backup.url.clone()))
        .collect()
}

/// The watcher of `snapex serve`: every `interval`, one listing of each declared location,
/// until `shutdown`. A location that cannot be listed is logged and tried again next time.
pub async fn run(deployment: Deployment, interval: Duration, shutdown: CancellationToken) {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    if deployment.config.backup_locations.is_empty() {
        return;
    }
    loop {
        for location in &deployment.config.backup_locations {
            let previous = seen.get(&location.name).cloned().unwrap_or_default();
            match watch_once(&deployment, location, &previous).await {
                Ok(now) => {
                    seen.insert(location.name.clone(), now);
                    deployment
                        .metrics
                        .catalog_listings
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(location = %location.name, error = %crate::errors::chain(&e), "backup location not listed")
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_location_parses_from_the_flag_form() {
        let l = BackupLocation::parse(
            "name=nightly,project=0123456789abcdef01234567,cluster=prod,url=s3://b/x,role=89abcdef0123456789abcdef",
        )
        .unwrap();
        assert_eq!(l.url, "s3://b/x");
        assert_eq!(l.role.as_deref(), Some("89abcdef0123456789abcdef"));
        assert_eq!(BackupLocation::parse(&l.to_string()).unwrap(), l);
        let e = BackupLocation::parse("name=x,cluster=c,url=/srv").unwrap_err();
        assert!(e.problem.contains("project"), "{e}");
        assert!(BackupLocation::parse("name=x,colour=red").is_err());
    }

    fn day(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    #[test]
    fn without_policy_items_the_first_of_a_month_week_and_day_rule() {
        // November 2026: the 1st is a Sunday, the 2nd a Monday.
        let times: Vec<_> = (1..=30).map(|d| day(d, 3)).chain([day(2, 15)]).collect();
        let f = |t| frequency_for(t, &times, &[]);
        assert_eq!(f(day(1, 3)), FrequencyType::Monthly);
        assert_eq!(f(day(2, 3)), FrequencyType::Weekly);
        assert_eq!(f(day(3, 3)), FrequencyType::Daily);
        assert_eq!(f(day(9, 3)), FrequencyType::Weekly);
        assert_eq!(f(day(2, 15)), FrequencyType::Hourly);
        // With daily and monthly items only: the first of a week is daily, a second of a day
        // is still daily (the most frequent item).
        let items = [FrequencyType::Daily, FrequencyType::Monthly];
        let f = |t| frequency_for(t, &times, &items);
        assert_eq!(f(day(1, 3)), FrequencyType::Monthly);
        assert_eq!(f(day(2, 3)), FrequencyType::Daily);
        assert_eq!(f(day(2, 15)), FrequencyType::Daily);
    }
}

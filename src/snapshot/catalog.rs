//! Listing a backup location: what backups a storage prefix holds, each with what a listing can
//! tell about its completeness (issue 13). The rules that turn a listing into snapshots live in
//! `service::catalog`; this is the engine half, one listing of one location.
//!
//! What a location may hold, directly under its prefix:
//! - a PBM storage root: `<name>.pbm.json` per backup, its files beside it (`<name>_<rs>.*` of
//!   the 1.x layout, `<name>/` of the 2.x ones), `.pbm.init`, `pbmPitr/`;
//! - mongodump directories, one per sub-prefix (`2026-11-23/` with `db/coll.bson` inside, or a
//!   single database's directory);
//! - mongodump archives, one object each (`2026-11-23.archive.gz`).
//!
//! Each [`ListedBackup`] has a [`ListedBackup::fingerprint`] over every object it is made of
//! (key, size, modification time): two listings with the same fingerprint saw the same bytes
//! in the same places, which is how a caller tells a backup still being written from a finished
//! one where the format has no "done" marker.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use futures::TryStreamExt;
use object_store::ObjectMeta;
use object_store::path::Path;
use sha2::{Digest, Sha256};

use super::SourceError;
use super::pbm::METADATA_SUFFIX;
use super::pbm::meta::{BackupMeta, METADATA_LIMIT};
use crate::storage::Location;

/// Objects listed under one mongodump directory at most: a dump has a few per collection.
const MAX_DIRECTORY_OBJECTS: usize = 1_000_000;

/// What kind of backup a listing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BackupKind {
    Pbm,
    Directory,
    Archive,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Pbm => "pbm",
            BackupKind::Directory => "mongodump directory",
            BackupKind::Archive => "mongodump archive",
        }
    }
}

/// One backup found under a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBackup {
    /// Its name under the location: the PBM backup name, the directory's or the archive's name.
    pub name: String,
    pub kind: BackupKind,
    /// The URL a snapshot part reads it from: `<root>/<name>` (PBM: the whole backup; a
    /// replica set is `<root>/<name>/<rs>`), the directory or the archive.
    pub url: String,
    /// SHA-256 over the sorted (key, size, modification time) of its objects.
    pub fingerprint: String,
    /// What the objects alone say against completeness (`None`: nothing); the caller adds the
    /// two-listing rule.
    pub incomplete: Option<String>,
    /// When the backup was taken, as it says itself: PBM's consistent point, else a date in
    /// its name, else its newest object's modification time.
    pub taken_at: Option<DateTime<Utc>>,
    /// PBM: the backup's replica sets.
    pub replica_sets: Vec<String>,
    /// Total bytes of its objects.
    pub bytes: u64,
}

/// Lists the backups directly under `location`, sorted by name.
pub async fn list(location: &Location) -> Result<Vec<ListedBackup>, SourceError> {
    let store_error = |source| SourceError::Store {
        object: location.url.clone(),
        source,
    };
    let prefix = (!location.prefix.as_ref().is_empty()).then_some(&location.prefix);
    let top = location
        .store
        .list_with_delimiter(prefix)
        .await
        .map_err(store_error)?;
    let name_of = |path: &Path| path.filename().map(str::to_string);
    // PBM backups first: their names claim the objects and folders beside them.
    let mut pbm_names = Vec::new();
    for object in &top.objects {
        if let Some(name) = name_of(&object.location)
            .as_deref()
            .and_then(|n| n.strip_suffix(METADATA_SUFFIX))
        {
            pbm_names.push((name.to_string(), object.clone()));
        }
    }
    let is_pbm_file = |name: &str| {
        name.starts_with('.')
            || name == "pbmPitr"
            || pbm_names.iter().any(|(b, _)| {
                name == b
                    || name.starts_with(&format!("{b}_"))
                    || name.starts_with(&format!("{b}."))
            })
    };
    let mut found = Vec::new();
    for (name, object) in &pbm_names {
        found.push(pbm_backup(location, name, object).await?);
    }
    for object in &top.objects {
        let Some(name) = name_of(&object.location) else {
            continue;
        };
        if is_pbm_file(&name) {
            continue;
        }
        found.push(ListedBackup {
            url: location.child(&name).url,
            fingerprint: fingerprint(location, std::slice::from_ref(object)),
            incomplete: (object.size == 0).then(|| "the archive is empty".to_string()),
            taken_at: time_in_name(&name).or(Some(object.last_modified)),
            replica_sets: Vec::new(),
            bytes: object.size,
            kind: BackupKind::Archive,
            name,
        });
    }
    for dir in &top.common_prefixes {
        let Some(name) = name_of(dir) else { continue };
        if is_pbm_file(&name) {
            continue;
        }
        found.push(directory_backup(location, &name, dir).await?);
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

async fn pbm_backup(
    location: &Location,
    name: &str,
    object: &ObjectMeta,
) -> Result<ListedBackup, SourceError> {
    let rel = format!("{name}{METADATA_SUFFIX}");
    let text = super::objects::read_small(location, &rel, METADATA_LIMIT).await?;
    let (incomplete, taken_at, replica_sets) = match serde_json::from_slice::<BackupMeta>(&text) {
        Err(e) => (Some(format!("{rel} does not parse: {e}")), None, Vec::new()),
        Ok(meta) => {
            let unfinished = meta.replsets.iter().find(|r| r.status != "done");
            let incomplete = if meta.status != "done" {
                Some(format!("PBM status is {:?}, not \"done\"", meta.status))
            } else if let Some(rs) = unfinished {
                Some(format!(
                    "replica set {} has PBM status {:?}, not \"done\"",
                    rs.name, rs.status
                ))
            } else if !meta.kind.is_empty() && meta.kind != "logical" {
                Some(format!(
                    "a {} backup (only logical ones are exported)",
                    meta.kind
                ))
            } else {
                None
            };
            let taken_at = meta
                .last_write_ts
                .filter(|t| !t.is_zero())
                .and_then(|t| Utc.timestamp_opt(i64::from(t.t), 0).single());
            let names = meta.replsets.iter().map(|r| r.name.clone()).collect();
            (incomplete, taken_at, names)
        }
    };
    Ok(ListedBackup {
        name: name.to_string(),
        kind: BackupKind::Pbm,
        url: location.child(name).url,
        // PBM rewrites its metadata file as the backup progresses, `done` last.
        fingerprint: fingerprint(location, std::slice::from_ref(object)),
        incomplete,
        taken_at: taken_at.or_else(|| time_in_name(name)),
        replica_sets,
        bytes: object.size,
    })
}

async fn directory_backup(
    location: &Location,
    name: &str,
    dir: &Path,
) -> Result<ListedBackup, SourceError> {
    let mut stream = location.store.list(Some(dir));
    let mut objects = Vec::new();
    while let Some(object) = stream
        .try_next()
        .await
        .map_err(|source| SourceError::Store {
            object: location.child(name).url,
            source,
        })?
    {
        objects.push(object);
        if objects.len() > MAX_DIRECTORY_OBJECTS {
            return Err(SourceError::Invalid {
                object: location.child(name).url,
                message: format!("more than {MAX_DIRECTORY_OBJECTS} objects"),
            });
        }
    }
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    let keys: Vec<String> = objects.iter().map(|o| o.location.to_string()).collect();
    Ok(ListedBackup {
        name: name.to_string(),
        kind: BackupKind::Directory,
        url: location.child(name).url,
        fingerprint: fingerprint(location, &objects),
        incomplete: directory_gap(&keys),
        taken_at: time_in_name(name).or_else(|| objects.iter().map(|o| o.last_modified).max()),
        replica_sets: Vec::new(),
        bytes: objects.iter().map(|o| o.size).sum(),
    })
}

/// What a mongodump directory's keys say against completeness: no `.bson` at all, or a
/// collection's `.bson` without its `.metadata.json` (mongodump writes one per collection;
/// `oplog.bson` has none).
fn directory_gap(keys: &[String]) -> Option<String> {
    // Sorted, so each collection's metadata file is found by one range lookup (a dump may
    // hold many thousands of collections).
    let sorted: std::collections::BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut any = false;
    for key in keys {
        let Some((stem, rest)) = key.rsplit_once(".bson") else {
            continue;
        };
        // `.bson` or `.bson.<codec>`; not `.bson` in the middle of another name.
        if !(rest.is_empty() || rest.starts_with('.') && !rest[1..].contains('.')) {
            continue;
        }
        any = true;
        if stem.rsplit('/').next().is_some_and(|f| f == "oplog") {
            continue;
        }
        let metadata = format!("{stem}.metadata.json");
        let has_metadata = sorted
            .range(metadata.as_str()..)
            .next()
            .is_some_and(|k| k.starts_with(&metadata));
        if !has_metadata {
            let file = key.rsplit('/').next().unwrap_or(key);
            return Some(format!("{file} has no metadata file yet"));
        }
    }
    (!any).then(|| "no .bson file yet".to_string())
}

fn fingerprint(location: &Location, objects: &[ObjectMeta]) -> String {
    let mut hash = Sha256::new();
    for o in objects {
        let key = location.relative(&o.location).unwrap_or_default();
        hash.update(key.as_bytes());
        hash.update([0]);
        hash.update(o.size.to_le_bytes());
        hash.update(o.last_modified.timestamp_micros().to_le_bytes());
    }
    hex::encode(hash.finalize())
}

/// A date-time at the start of a backup's name, UTC: RFC 3339 (`2026-11-23T03:00:00Z`, as PBM
/// names backups), `2026-11-23T0300Z`/`2026-11-23T0300`, `2026-11-23T03:00`, or a date
/// (`2026-11-23`, midnight). Anything after it (`.archive.gz`, `-nightly`) is ignored.
pub fn time_in_name(name: &str) -> Option<DateTime<Utc>> {
    let candidates = [20usize, 19, 17, 16, 15];
    for len in candidates {
        let Some(head) = name.get(..len) else {
            continue;
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(head) {
            return Some(t.with_timezone(&Utc));
        }
        for format in [
            "%Y-%m-%dT%H%MZ",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H%M",
        ] {
            if let Ok(t) = NaiveDateTime::parse_from_str(head, format) {
                return Some(Utc.from_utc_datetime(&t));
            }
        }
    }
    let date = NaiveDate::parse_from_str(name.get(..10)?, "%Y-%m-%d").ok()?;
    Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_name_gives_its_time_in_every_documented_form() {
        let t = |s: &str| time_in_name(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2026-11-23T03:00:00Z").as_deref(),
            Some("2026-11-23T03:00:00+00:00")
        );
        assert_eq!(
            t("2026-11-23T0300Z.archive.gz").as_deref(),
            Some("2026-11-23T03:00:00+00:00")
        );
        assert_eq!(
            t("2026-11-23T03:00-x").as_deref(),
            Some("2026-11-23T03:00:00+00:00")
        );
        assert_eq!(
            t("2026-11-23").as_deref(),
            Some("2026-11-23T00:00:00+00:00")
        );
        assert_eq!(
            t("2026-11-23.archive").as_deref(),
            Some("2026-11-23T00:00:00+00:00")
        );
        assert_eq!(t("nightly"), None);
    }

    #[test]
    fn a_directory_needs_a_metadata_file_for_every_collection() {
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            directory_gap(&keys(&[
                "d/db/c.bson",
                "d/db/c.metadata.json",
                "d/oplog.bson"
            ])),
            None
        );
        assert_eq!(
            directory_gap(&keys(&["d/db/c.bson.gz", "d/db/c.metadata.json.gz"])),
            None
        );
        assert_eq!(
            directory_gap(&keys(&[
                "d/db/c.bson",
                "d/db/c.metadata.json",
                "d/db/e.bson"
            ]))
            .as_deref(),
            Some("e.bson has no metadata file yet")
        );
        assert_eq!(
            directory_gap(&keys(&["d/prelude.json"])).as_deref(),
            Some("no .bson file yet")
        );
    }
}

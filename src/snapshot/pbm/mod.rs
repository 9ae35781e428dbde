//! Percona Backup for MongoDB (PBM) logical backups, one replica set of a backup per snapshot
//! part. The format is described, with references to PBM's source, in
//! `shared/data/pbm/FORMAT.md`; [`meta`] parses the metadata files.
//!
//! **Which URL names a backup.** PBM keeps every backup of a storage in one folder, its
//! *storage root*, as `<name>.pbm.json` plus the data (`<name>/…` in 2.x, `<name>_<rs>.*` in
//! 1.x). A source location names a backup in one of three ways, with no query string (storage
//! URLs have none) and the same form for local paths and `s3://`, `az://`, `gs://`:
//! - `<root>/<name>.pbm.json`: the metadata file itself;
//! - `<root>/<name>`: the storage root and the backup name, as `pbm list` prints it;
//! - `<root>/<name>/<rs>`: one replica set of the backup, needed when it holds several
//!   (a sharded cluster's shards and config server) — the other forms then say which exist.
//!
//! A location is taken as PBM when the file these forms point at exists; a PBM storage root
//! given without a backup name is an error listing its backups. Everything a backup's
//! metadata names must be a relative path inside the storage root (no `..`, no absolute
//! path): a metadata file cannot send the reader elsewhere.
//!
//! **Layouts**, chosen by the replica set's `backup_name` (and checked against `pbm_version`):
//! - 1.x: `<name>_<rs>.dump<ext>` is one mongodump archive compressed as a whole; it is read
//!   by the archive reader, which checks every namespace's CRC at its end;
//! - 2.x: `<name>/<rs>/metadata.json` lists the namespaces, each with the CRC-64 and size of
//!   its file `<name>/<rs>/<db>.<coll><ext>` (time-series buckets under the collection's own
//!   name); from 2.8 `meta.pbm` records them too, and the two must agree. Every file's size and
//!   CRC are checked as it is read, also for collections that are not exported; a file the
//!   metadata lists but the storage lacks fails when the part is opened. A file PBM split into
//!   `.pbmpart.N` pieces (2.11+, files above `maxObjSizeGB`) is read as their concatenation.
//!
//! **Refusals.** A backup whose `status` is not `done` (running, error, canceled: PBM itself
//! cannot restore it), and physical, incremental or external backups (database files, not
//! documents) are refused with a message saying so.
//!
//! **Time and oplog.** The part's time is the backup's consistent point (`last_write_ts`), its
//! `mongodVersion` the one the metadata records. The oplog the backup holds is *not* applied:
//! the collections are exported as dumped, and [`super::OplogNote`] (written to
//! `.manifest.json`) records the oplog range and files so a reader knows how far the documents
//! may be from the consistent point.

pub(crate) mod meta;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use std::io::Read;

use tokio::runtime::Handle;

use self::meta::{BackupMeta, Namespace, ReplsetMeta, Ts};
use super::codec::{self, Codec, Expect};
use super::frames::{Frame, FrameReader};
use super::metadata::{kind_of, known_version};
use super::objects::{self, Listed, Target, object_name};
use super::{
    CollectionInfo, CollectionKind, DumpInfo, OplogNote, OplogTimestamp, SnapshotSource,
    SourceError, SourceFormat, Visitor, archive,
};
use crate::storage::{Location, StorageOptions};

/// The suffix of a backup's metadata file in the storage root.
pub const METADATA_SUFFIX: &str = ".pbm.json";
/// The file that marks a PBM storage root.
const INIT_FILE: &str = ".pbm.init";
/// How many backup names an error about a bare storage root lists.
const LISTED_NAMES: usize = 10;

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// A backup a location names: its storage root, its name, and the replica set if named.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub root: Location,
    pub name: String,
    pub replica_set: Option<String>,
}

/// What reading a PBM part needs beyond [`SnapshotSource`]'s fields.
#[derive(Debug)]
pub struct PbmPart {
    /// The backup's name and the PBM replica set this part is.
    pub backup: String,
    pub replica_set: String,
    layout: Layout,
}

#[derive(Debug)]
enum Layout {
    /// 1.x: one compressed mongodump archive (relative to the storage root).
    Archive { rel: String, codec: Codec },
    /// 2.x: one file per namespace, `files[i]` for `collections[i]` (`None`: no documents).
    Files {
        codec: Codec,
        files: Vec<Option<DataFile>>,
    },
}

#[derive(Debug, Clone)]
struct DataFile {
    rel: String,
    /// `<rel>.pbmpart.1`, `.2`, …: PBM 2.11+ splits a stored file larger than its storage's
    /// `maxObjSizeGB` into pieces of the compressed stream, read back to back.
    parts: Vec<String>,
    crc: u64,
    size: u64,
}

/// The location one segment up, and that segment; `None` at a bucket or filesystem root.
fn parent(location: &Location) -> Option<(Location, String)> {
    let url = location.url.trim_end_matches('/');
    if let Some(path) = &location.local_root {
        let last = path.file_name()?.to_str()?.to_string();
        let up = path.parent()?;
        let mut parent = crate::storage::open(up.to_str()?, &StorageOptions::default()).ok()?;
        if let Some((parent_url, _)) = url.rsplit_once('/')
            && !parent_url.is_empty()
            && !parent_url.ends_with(':')
        {
            parent.url = parent_url.to_string();
        }
        return Some((parent, last));
    }
    let parts: Vec<_> = location.prefix.parts().collect();
    let (last, rest) = parts.split_last()?;
    let (parent_url, _) = url.rsplit_once('/')?;
    Some((
        Location {
            store: location.store.clone(),
            prefix: object_store::path::Path::from_iter(rest.iter().cloned()),
            url: parent_url.to_string(),
            local_root: None,
            pending_uploads: location.pending_uploads.clone(),
        },
        last.as_ref().to_string(),
    ))
}

/// The object at `location` itself, if it is one.
async fn object_at(location: &Location) -> Result<Option<Listed>, SourceError> {
    match objects::target(location).await {
        Ok(Target::Object(listed)) => Ok(Some(listed)),
        Ok(Target::Prefix) => Ok(None),
        Err(SourceError::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Whether the object exists, for detection. The probes look beside and above the location
/// the user named, where the credentials may not reach (an S3 policy limited to the dump's
/// prefix answers 403): a probe that fails means "not a PBM backup here", so that reading a
/// plain dump never depends on permissions outside it.
async fn probe(location: &Location) -> bool {
    match object_at(location).await {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::debug!(object = %location.url, error = %e, "PBM probe failed, taken as absent");
            false
        }
    }
}

/// Whether `location` names a PBM backup (see the module docs for the forms). A bare PBM
/// storage root is an error listing its backups.
pub(crate) async fn locate(location: &Location) -> Result<Option<Found>, SourceError> {
    let url = location.url.trim_end_matches('/');
    if let Some(name) = url
        .rsplit('/')
        .next()
        .and_then(|last| last.strip_suffix(METADATA_SUFFIX))
        .filter(|name| !name.is_empty())
        && let Some((root, _)) = parent(location)
    {
        return Ok(Some(Found {
            root,
            name: name.to_string(),
            replica_set: None,
        }));
    }
    let Some((up, last)) = parent(location) else {
        return Ok(None);
    };
    if probe(&up.child(&format!("{last}{METADATA_SUFFIX}"))).await {
        return Ok(Some(Found {
            root: up,
            name: last,
            replica_set: None,
        }));
    }
    if let Some((root, name)) = parent(&up)
        && probe(&root.child(&format!("{name}{METADATA_SUFFIX}"))).await
    {
        return Ok(Some(Found {
            root,
            name,
            replica_set: Some(last),
        }));
    }
    if probe(&location.child(INIT_FILE)).await {
        let (listed, _) = objects::list(location, 1).await?;
        let mut names: Vec<&str> = listed
            .iter()
            .filter_map(|l| l.rel.strip_suffix(METADATA_SUFFIX))
            .collect();
        names.sort();
        let shown: Vec<String> = names
            .iter()
            .rev()
            .take(LISTED_NAMES)
            .map(|n| format!("{url}/{n}"))
            .collect();
        return Err(SourceError::Invalid {
            object: url.to_string(),
            message: if names.is_empty() {
                "a PBM storage root without backups: name a backup as <root>/<name>".into()
            } else {
                format!(
                    "a PBM storage root with {} backups: name one, e.g. {}",
                    names.len(),
                    shown.join(", ")
                )
            },
        });
    }
    Ok(None)
}

/// The storage root of the PBM backup `location` names, if it names one: a PBM part reads
/// files beside the location it is named by, so whoever confines sources must allow this
/// root too (`service::sources` does). A location that cannot be probed is not PBM here; its
/// open reports the problem.
pub async fn storage_root(location: &Location) -> Option<Location> {
    locate(location)
        .await
        .ok()
        .flatten()
        .map(|found| found.root)
}

/// The replica sets of the PBM backup `location` names, when it names a whole backup (not one
/// replica set) of more than one: a front end can then make one part of each, named
/// `<root>/<name>/<rs>`. `None` for anything else.
pub async fn replica_set_parts(
    location: &Location,
) -> Result<Option<Vec<(String, String)>>, SourceError> {
    let Some(found) = locate(location).await? else {
        return Ok(None);
    };
    if found.replica_set.is_some() {
        return Ok(None);
    }
    let rel = format!("{}{METADATA_SUFFIX}", found.name);
    let text = objects::read_small(&found.root, &rel, meta::METADATA_LIMIT).await?;
    let Ok(backup) = serde_json::from_slice::<BackupMeta>(&text) else {
        return Ok(None); // open reports it
    };
    if backup.replsets.len() < 2 {
        return Ok(None);
    }
    let base = found.root.url.trim_end_matches('/');
    Ok(Some(
        backup
            .replsets
            .iter()
            .map(|r| (r.name.clone(), format!("{base}/{}/{}", found.name, r.name)))
            .collect(),
    ))
}

/// `rel` as a key relative to the storage root, if it stays inside it.
fn inside_root(rel: &str) -> Option<&str> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.chars().any(char::is_control));
    ok.then_some(rel)
}

fn ts(t: Option<Ts>) -> Option<OplogTimestamp> {
    t.filter(|t| !t.is_zero())
        .map(|t| OplogTimestamp { t: t.t, i: t.i })
}

/// Opens one replica set of the backup `found` names. See the module docs.
pub(crate) async fn open(found: Found) -> Result<SnapshotSource, SourceError> {
    let Found {
        root,
        name,
        replica_set,
    } = found;
    let meta_rel = format!("{name}{METADATA_SUFFIX}");
    let meta_object = object_name(&root, &meta_rel);
    let invalid = |message: String| SourceError::Invalid {
        object: meta_object.clone(),
        message,
    };
    let text = objects::read_small(&root, &meta_rel, meta::METADATA_LIMIT).await?;
    let backup: BackupMeta = off_runtime(move || serde_json::from_slice::<BackupMeta>(&text))
        .await?
        .map_err(|e| invalid(format!("not a PBM backup metadata file: {e}")))?;

    match backup.kind.as_str() {
        // PBM before 1.7 wrote no type: every backup was logical.
        "logical" | "" => {}
        other => {
            let article = if other.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Err(invalid(format!(
                "PBM backup {name} is {article} {other} backup: snapex reads logical backups \
                 only ({article} {other} backup holds database files, not documents)"
            )));
        }
    }
    if backup.status != "done" {
        let why = backup
            .error
            .as_deref()
            .filter(|e| !e.is_empty())
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(invalid(format!(
            "PBM backup {name} has status {:?}{why}: only a backup whose status is \"done\" is \
             complete, so it cannot be exported",
            backup.status
        )));
    }
    let codec = Codec::from_pbm(&backup.compression).ok_or_else(|| {
        invalid(format!(
            "PBM backup {name} uses compression {:?}, which snapex does not know",
            backup.compression
        ))
    })?;
    let replset = pick_replset(&backup, &name, replica_set.as_deref(), &root, &invalid)?;
    if !replset.status.is_empty() && replset.status != "done" {
        return Err(invalid(format!(
            "replica set {} of PBM backup {name} has status {:?}: it is not complete",
            replset.name, replset.status
        )));
    }
    let dump_rel = inside_root(&replset.dump_name)
        .ok_or_else(|| {
            invalid(format!(
                "replica set {} names its dump {:?}, which is not a path inside the storage root",
                replset.name, replset.dump_name
            ))
        })?
        .to_string();
    let version = replset
        .pbm_version
        .as_deref()
        .or(backup.pbm_version.as_deref())
        .and_then(meta::major_minor);
    let multi_file = dump_rel.ends_with("/metadata.json") || dump_rel == "metadata.json";
    if let Some(v) = version
        && (v >= (2, 0)) != multi_file
    {
        return Err(invalid(format!(
            "PBM {}.{} backup whose replica set {} names its dump {dump_rel:?}, which is not \
                 that version's layout",
            v.0, v.1, replset.name
        )));
    }
    let consistent_at = ts(backup.last_write_ts).or(ts(replset.last_write_ts));
    let taken_at = consistent_at.and_then(|t| DateTime::<Utc>::from_timestamp(i64::from(t.t), 0));
    let mongod_version = replset
        .mongo_version
        .as_deref()
        .or(backup.mongodb_version.as_deref())
        .and_then(known_version);
    let oplog_chunks = version.map_or(!replset.oplog_name.contains('.'), |v| v >= (2, 4));
    let oplog = oplog_note(&root, &backup, &replset, oplog_chunks, consistent_at).await?;
    // The part's size: the metadata's own count when it has one for this part.
    let recorded_size = replset
        .size
        .filter(|s| *s > 0)
        .or(backup.size.filter(|s| *s > 0 && backup.replsets.len() == 1))
        .map(|s| s as u64);

    let handle = Handle::current();
    let (collections, layout, total_bytes, format_version) = if multi_file {
        let listing = open_files(&root, &replset, &dump_rel, codec, version).await?;
        (
            listing.collections,
            Layout::Files {
                codec,
                files: listing.files,
            },
            listing.stored_bytes,
            listing.server_version,
        )
    } else {
        let stored =
            object_at(&root.child(&dump_rel))
                .await?
                .ok_or_else(|| SourceError::Invalid {
                    object: object_name(&root, &dump_rel),
                    message: format!(
                        "replica set {} of PBM backup {name}: the archive is missing",
                        replset.name
                    ),
                })?;
        let (root_for_task, rel) = (root.clone(), dump_rel.clone());
        let prelude = tokio::task::spawn_blocking(move || {
            let (_, stream) =
                codec::open_object(&root_for_task, &rel, Expect::Known(codec), &handle)?;
            let object = object_name(&root_for_task, &rel);
            let mut frames = FrameReader::archive(stream, object.clone());
            archive::read_prelude(&mut frames, &object)
        })
        .await
        .map_err(|e| SourceError::Stopped(format!("archive open task failed: {e}")))?
        .map_err(|e| in_part(e, &replset.name, None))?;
        (
            prelude.collections,
            Layout::Archive {
                rel: dump_rel,
                codec,
            },
            stored.size,
            prelude.server_version,
        )
    };
    Ok(SnapshotSource {
        location: root,
        format: SourceFormat::Pbm,
        collections,
        info: DumpInfo {
            mongod_version: mongod_version.or(format_version),
            taken_at,
            total_bytes: recorded_size.unwrap_or(total_bytes),
            oplog: Some(oplog),
        },
        pbm: Some(Arc::new(PbmPart {
            backup: name,
            replica_set: replset.name,
            layout,
        })),
    })
}

/// The replica set the location names, or the only one.
fn pick_replset(
    backup: &BackupMeta,
    name: &str,
    wanted: Option<&str>,
    root: &Location,
    invalid: &dyn Fn(String) -> SourceError,
) -> Result<ReplsetMeta, SourceError> {
    let names: Vec<&str> = backup.replsets.iter().map(|r| r.name.as_str()).collect();
    match wanted {
        Some(wanted) => backup
            .replsets
            .iter()
            .find(|r| r.name == wanted)
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "PBM backup {name} has no replica set {wanted} (it has {})",
                    names.join(", ")
                ))
            }),
        None => match backup.replsets.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(invalid(format!("PBM backup {name} lists no replica sets"))),
            _ => {
                let base = root.url.trim_end_matches('/');
                let urls: Vec<String> = names
                    .iter()
                    .map(|rs| format!("{base}/{name}/{rs}"))
                    .collect();
                Err(invalid(format!(
                    "PBM backup {name} holds {} replica sets: name one per snapshot part, as {}",
                    names.len(),
                    urls.join(", ")
                )))
            }
        },
    }
}

/// The oplog range and files of the replica set (listed, not read).
async fn oplog_note(
    root: &Location,
    backup: &BackupMeta,
    replset: &ReplsetMeta,
    chunks: bool,
    consistent_at: Option<OplogTimestamp>,
) -> Result<OplogNote, SourceError> {
    let mut files = Vec::new();
    if let Some(rel) = inside_root(&replset.oplog_name) {
        let location = root.child(rel);
        if chunks {
            if let Ok((listed, _)) = objects::list(&location, 1).await {
                let mut chunks: Vec<(Option<(Ts, Ts)>, String)> = listed
                    .iter()
                    .map(|l| (chunk_range(&l.rel), object_name(&location, &l.rel)))
                    .collect();
                chunks.sort();
                files = chunks.into_iter().map(|(_, name)| name).collect();
            }
        } else if object_at(&location).await?.is_some() {
            files.push(object_name(root, rel));
        }
    }
    if files.is_empty() {
        tracing::warn!(backup = %backup.name, replica_set = %replset.name, oplog = %replset.oplog_name, "the backup's oplog is missing");
    }
    Ok(OplogNote {
        source: format!("PBM backup {}", backup.name),
        applied: false,
        first: ts(replset.first_write_ts),
        last: ts(replset.last_write_ts),
        consistent_at,
        files,
    })
}

/// The range an oplog chunk's name gives: `<T1>-<i1>.<T2>-<i2><ext>`, `T` as
/// `YYYYMMDDhhmmss` (PBM's `FormatChunkName`); chunks sort by it, not by name (`i` is not
/// zero-padded).
fn chunk_range(file: &str) -> Option<(Ts, Ts)> {
    let (start, rest) = file.split_once('.')?;
    let end = rest.split('.').next()?;
    let parse = |part: &str| -> Option<Ts> {
        let (time, inc) = part.split_once('-')?;
        let time = chrono::NaiveDateTime::parse_from_str(time, "%Y%m%d%H%M%S").ok()?;
        Some(Ts {
            t: u32::try_from(time.and_utc().timestamp()).ok()?,
            i: inc.parse().ok()?,
        })
    };
    Some((parse(start)?, parse(end)?))
}

/// A 2.x replica set's dump as its metadata lists it.
struct FilesListing {
    collections: Vec<CollectionInfo>,
    /// `files[i]` for `collections[i]`.
    files: Vec<Option<DataFile>>,
    /// Stored bytes of the data files.
    stored_bytes: u64,
    server_version: Option<String>,
}

/// Lists a 2.x replica set: `metadata.json` (and `meta.pbm`), the files they name, checked
/// to exist.
async fn open_files(
    root: &Location,
    replset: &ReplsetMeta,
    dump_rel: &str,
    codec: Codec,
    version: Option<(u32, u32)>,
) -> Result<FilesListing, SourceError> {
    let dir = dump_rel
        .rsplit_once('/')
        .map(|(dir, _)| dir.to_string())
        .unwrap_or_default();
    let metadata_object = object_name(root, dump_rel);
    let text = objects::read_small(root, dump_rel, meta::METADATA_LIMIT).await?;
    let (server_version, namespaces) = off_runtime(move || meta::parse_metadata_json(&text))
        .await?
        .map_err(|e| SourceError::Invalid {
            object: metadata_object.clone(),
            message: e.to_string(),
        })?;
    let dir_location = root.child(&dir);
    // Deep enough for collection names with a `/` (PBM's `path.Join` makes folders of them).
    let (listed, _) = objects::list(&dir_location, 4).await?;
    let stored: std::collections::HashMap<&str, u64> =
        listed.iter().map(|l| (l.rel.as_str(), l.size)).collect();
    let join = |file: &str| {
        if dir.is_empty() {
            file.to_string()
        } else {
            format!("{dir}/{file}")
        }
    };

    // meta.pbm (2.8+) records the same CRCs and sizes: they must agree.
    let meta_pbm = "meta.pbm";
    let recorded = if stored.contains_key(meta_pbm) {
        let rel = join(meta_pbm);
        let bytes = objects::read_small(root, &rel, meta::METADATA_LIMIT).await?;
        let specs = off_runtime(move || meta::parse_meta_pbm(&bytes))
            .await?
            .map_err(|e| SourceError::Invalid {
                object: object_name(root, &rel),
                message: e.to_string(),
            })?;
        Some((rel, specs))
    } else {
        if version.is_some_and(|v| v >= (2, 8)) {
            tracing::warn!(object = %object_name(root, &dir), "PBM 2.8+ backup without meta.pbm: checking against metadata.json alone");
        }
        None
    };

    let mut entries: Vec<(CollectionInfo, Option<DataFile>)> = Vec::with_capacity(namespaces.len());
    let mut total = 0u64;
    for ns in &namespaces {
        let Namespace {
            db,
            collection,
            kind,
            metadata,
            crc,
            size,
        } = ns;
        let namespace = format!("{db}.{collection}");
        let bad = |message: String| SourceError::Invalid {
            object: metadata_object.clone(),
            message: format!(
                "replica set {}, namespace {namespace}: {message}",
                replset.name
            ),
        };
        if *size < 0 {
            return Err(bad(format!("negative size {size}")));
        }
        if let Some((rel, specs)) = &recorded {
            let file_collection = meta::file_collection(collection);
            let theirs = specs
                .iter()
                .find(|r| r.db == *db && r.file_collection == file_collection)
                .map(|r| (r.crc, r.size));
            if *size > 0 && theirs != Some((*crc, *size)) {
                return Err(bad(format!(
                    "metadata.json records crc {crc} and size {size}, {rel} records {}",
                    theirs.map_or("nothing".to_string(), |(c, s)| format!(
                        "crc {c} and size {s}"
                    ))
                )));
            }
        }
        let file = if *size > 0 {
            let file_name = format!(
                "{db}.{}{}",
                meta::file_collection(collection),
                codec.suffix()
            );
            let rel = inside_root(&join(&file_name))
                .ok_or_else(|| {
                    bad(format!(
                        "its file {file_name:?} is not a path inside the storage root"
                    ))
                })?
                .to_string();
            let rel_in_dir = rel.strip_prefix(&format!("{dir}/")).unwrap_or(&rel);
            let mut parts = Vec::new();
            while let Some(bytes) =
                stored.get(format!("{rel_in_dir}.pbmpart.{}", parts.len() + 1).as_str())
            {
                total += bytes;
                parts.push(format!("{rel}.pbmpart.{}", parts.len() + 1));
            }
            match stored.get(rel_in_dir) {
                Some(bytes) => total += bytes,
                None => {
                    return Err(SourceError::Invalid {
                        object: object_name(root, &rel),
                        message: format!(
                            "replica set {}, namespace {namespace}: the file is missing \
                             (metadata.json records {size} bytes)",
                            replset.name
                        ),
                    });
                }
            }
            Some(DataFile {
                rel,
                parts,
                crc: *crc as u64,
                size: *size as u64,
            })
        } else {
            None
        };
        let source_object = match &file {
            Some(f) => object_name(root, &f.rel),
            None => metadata_object.clone(),
        };
        entries.push((
            CollectionInfo {
                db: db.clone(),
                name: collection.clone(),
                kind: kind_of(db, collection, metadata.as_ref(), Some(kind)),
                metadata: metadata.clone(),
                source_object,
                bson_bytes: Some(*size as u64),
            },
            file,
        ));
    }
    entries.sort_by(|a, b| (&a.0.db, &a.0.name).cmp(&(&b.0.db, &b.0.name)));
    if let Some(pair) = entries
        .windows(2)
        .find(|w| w[0].0.db == w[1].0.db && w[0].0.name == w[1].0.name)
    {
        return Err(SourceError::Invalid {
            object: metadata_object,
            message: format!("namespace {} is listed twice", pair[0].0.namespace()),
        });
    }
    let (collections, files) = entries.into_iter().unzip();
    Ok(FilesListing {
        collections,
        files,
        stored_bytes: total,
        server_version: server_version.as_deref().and_then(known_version),
    })
}

/// Runs `parse` on a blocking thread: a backup of many collections has metadata of several
/// MiB, whose parsing would hold a runtime worker for too long.
async fn off_runtime<T: Send + 'static>(
    parse: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(parse)
        .await
        .map_err(|e| SourceError::Stopped(format!("metadata parsing task failed: {e}")))
}

/// Adds the replica set (and namespace) to an error that does not say them yet.
fn in_part(e: SourceError, replica_set: &str, namespace: Option<&str>) -> SourceError {
    let context = match namespace {
        Some(ns) => format!("PBM replica set {replica_set}, namespace {ns}"),
        None => format!("PBM replica set {replica_set}"),
    };
    match e {
        SourceError::Corrupt {
            object,
            offset,
            message,
        } => SourceError::Corrupt {
            object,
            offset,
            message: format!("{context}: {message}"),
        },
        SourceError::Invalid { object, message } => SourceError::Invalid {
            object,
            message: format!("{context}: {message}"),
        },
        other => other,
    }
}

/// Reads a PBM part. See [`SnapshotSource::read`].
pub(crate) fn read(
    source: &SnapshotSource,
    handle: &Handle,
    visitor: &mut dyn Visitor,
) -> Result<(), SourceError> {
    let Some(part) = source.pbm.as_deref() else {
        return Err(SourceError::Invalid {
            object: source.location.url.clone(),
            message: "not a PBM source".into(),
        });
    };
    let rs = part.replica_set.as_str();
    match &part.layout {
        Layout::Archive { rel, codec } => {
            let (_, stream) =
                codec::open_object(&source.location, rel, Expect::Known(*codec), handle)?;
            let object = object_name(&source.location, rel);
            let mut frames = FrameReader::archive(stream, object.clone());
            archive::read_prelude(&mut frames, &object).map_err(|e| in_part(e, rs, None))?;
            archive::read_blocks(&source.collections, &mut frames, visitor)
                .map_err(|e| in_part(e, rs, None))
        }
        Layout::Files { codec, files } => {
            for (index, collection) in source.collections.iter().enumerate() {
                // A namespace the export's filter left out is not read at all (its CRC is
                // checked when it is exported).
                if collection.kind == CollectionKind::Excluded {
                    continue;
                }
                let exported = collection.kind.is_exported();
                let namespace = collection.namespace();
                if exported {
                    visitor.begin(index)?;
                }
                if let Some(file) = files.get(index).and_then(Option::as_ref) {
                    read_file(
                        source,
                        handle,
                        *codec,
                        file,
                        exported.then_some(index),
                        visitor,
                    )
                    .map_err(|e| in_part(e, rs, Some(&namespace)))?;
                }
                if exported {
                    visitor.end(index)?;
                }
            }
            Ok(())
        }
    }
}

/// Reads one namespace file, checking its size and CRC against the metadata at its end;
/// documents go to the visitor when `index` is given.
fn read_file(
    source: &SnapshotSource,
    handle: &Handle,
    codec: Codec,
    file: &DataFile,
    index: Option<usize>,
    visitor: &mut dyn Visitor,
) -> Result<(), SourceError> {
    let object = object_name(&source.location, &file.rel);
    let mut raw = objects::open_blocking(&source.location, &file.rel, false, handle)?;
    for part in &file.parts {
        let next = objects::open_blocking(&source.location, part, false, handle)?;
        raw = Box::new(raw.chain(next));
    }
    let (_, stream) = codec::open_stream(raw, Expect::Known(codec), &object)?;
    let mut frames = FrameReader::documents(stream, object.clone());
    let mut crc = CRC64.digest();
    let end = loop {
        match frames.next_frame()? {
            Frame::Document { bytes, offset } => {
                if offset + bytes.len() as u64 > file.size {
                    return Err(SourceError::Corrupt {
                        object,
                        offset,
                        message: format!(
                            "the data is longer than the {} bytes the metadata records",
                            file.size
                        ),
                    });
                }
                crc.update(bytes);
                if let Some(i) = index {
                    visitor.document(i, bytes, offset)?;
                }
            }
            Frame::End { offset } => break offset,
            Frame::Terminator { offset } => {
                return Err(SourceError::Corrupt {
                    object,
                    offset,
                    message: "unexpected archive terminator".into(),
                });
            }
        }
    };
    if end != file.size {
        return Err(SourceError::Corrupt {
            object,
            offset: end,
            message: format!(
                "the data ends after {end} bytes, the metadata records {}",
                file.size
            ),
        });
    }
    let actual = crc.finalize();
    if actual != file.crc {
        return Err(SourceError::Corrupt {
            object,
            offset: end,
            message: format!(
                "checksum mismatch: the metadata records CRC-64 {:#018x}, the data gives {actual:#018x}",
                file.crc
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names_give_their_range() {
        let (a, b) = chunk_range("20210614225907-72.20210614225913-29.s2").unwrap();
        assert_eq!(
            a,
            Ts {
                t: 1623711547,
                i: 72
            }
        );
        assert_eq!(
            b,
            Ts {
                t: 1623711553,
                i: 29
            }
        );
        assert!(chunk_range("20210614225907-8.20210614225907-9").unwrap().0 < a);
        assert_eq!(chunk_range("notes.txt"), None);
    }

    #[test]
    fn metadata_paths_stay_inside_the_root() {
        assert!(inside_root("2024-05-20T10:15:30Z/rs0/metadata.json").is_some());
        assert!(inside_root("x_rs0.dump.s2").is_some());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "a\\b",
            "./a",
            "a/\n",
        ] {
            assert!(inside_root(bad).is_none(), "{bad:?}");
        }
    }
}

//! mongodump directory dumps: `<db>/<coll>.bson` + `<coll>.metadata.json`, optional
//! `prelude.json`, and the `--gzip` variant (`.bson.gz`, `.metadata.json.gz`, `prelude.json.gz`).
//! Files compressed afterwards with zstd, lz4, snappy or s2 (`.bson.zst`, `.metadata.json.lz4`,
//! …, see [`super::codec`] for the suffixes) are read the same way; a plain-named `.bson`
//! holding zstd, lz4, snappy or s2 data is recognised by its magic number.
//!
//! Layout decisions:
//! - **Root or database directory.** When subdirectories hold `.bson`/`.metadata.json` files
//!   the location is a dump root, one database per subdirectory; otherwise it is a single database
//!   directory named after its last path segment (`mongodump -d db` output, or a dump root's
//!   `<db>/`). When both the top level and subdirectories hold such files (a stray file at a
//!   root, like mongo-tools' `longcollectionname/`; a stray subdirectory in a database
//!   directory, like `testdirs/db1/baddir/`), the reading with more files wins and the others
//!   are ignored with a warning, as mongorestore ignores what it does not expect. At a root,
//!   `oplog.bson` is the `--oplog` pseudo-namespace (listed as [`CollectionKind::System`] with
//!   an empty database, never read); directories nested deeper are ignored with a warning.
//! - **Names.** File names are unescaped (`caf%C3%A9s.bson` → `cafés`); mongodump's shortened
//!   names (cut and marked with `%24` + hash) take the real name from the metadata's
//!   `collectionName`.
//! - **Metadata.** A `.bson` without metadata is a collection with `metadata: None`; metadata
//!   without `.bson` (views always, empty collections sometimes) is listed from the metadata
//!   alone and, if it is a collection, read as empty. Invalid metadata is
//!   [`SourceError::Invalid`] naming the file. A *0-byte* (or blank) metadata file, such as
//!   mongo-tools' `testdirs/db1/c3.metadata.json`, states nothing that could be wrong: it is
//!   treated as missing metadata with a warning, so the collection's documents (which are
//!   checked on their own) still export and its `metadata.json` gets an empty index list.
//!   Failing the whole export over a file that carries no information helps no one; a
//!   non-empty file that does not parse, on the other hand, may hide views or options we must
//!   not get wrong, so it fails.
//! - **Time-series.** mongodump writes a time-series collection as its metadata
//!   (`<coll>.metadata.json`, `"type": "timeseries"`) and its buckets as
//!   `system.buckets.<coll>.bson`; the collection is listed once, as
//!   [`CollectionKind::Timeseries`] reading that file (see `metadata::link_buckets`). A dump that
//!   has raw buckets in `<coll>.bson` instead works the same way: which file holds them is seen
//!   in the listing, not guessed from a version.
//! - **Order.** Collections are sorted by (database, collection), bytewise, and read one after
//!   another in that order.

use std::collections::BTreeMap;

use futures::StreamExt;
use tokio::runtime::Handle;

use super::codec::{self, Codec, Expect};
use super::frames::{Frame, FrameReader};
use super::metadata::{
    collection_name, kind_of, link_buckets, parse_extjson, prelude_server_version, unescape_name,
};
use super::objects::{self, Listed, object_name, relative_key};
use super::{
    CollectionInfo, CollectionKind, DumpInfo, SnapshotSource, SourceError, SourceFormat, Visitor,
};
use crate::storage::Location;

/// Metadata and prelude files larger than this are refused (real ones are a few KiB).
const METADATA_LIMIT: u64 = 16 * 1024 * 1024;
/// How many metadata files are fetched at once from an object store.
const METADATA_FETCHES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Data,
    Metadata,
    Prelude,
}

/// What a file name is, its base name (collection part) and the codec its suffix names.
fn classify(file: &str) -> Option<(Role, &str, Codec)> {
    let (name, codec) = Codec::strip_suffix(file);
    if name == "prelude.json" {
        return Some((Role::Prelude, name, codec));
    }
    if let Some(base) = name.strip_suffix(".metadata.json") {
        return (!base.is_empty()).then_some((Role::Metadata, base, codec));
    }
    if let Some(base) = name.strip_suffix(".bson") {
        return (!base.is_empty()).then_some((Role::Data, base, codec));
    }
    None
}

#[derive(Default)]
struct Entry {
    data: Option<(Listed, Codec)>,
    metadata: Option<(Listed, Codec)>,
}

/// Lists a directory dump. `Ok(None)` when the location holds no dump files at all.
pub(crate) async fn open(location: Location) -> Result<Option<SnapshotSource>, SourceError> {
    let (listed, deeper) = objects::list(&location, 2).await?;
    let split = |l: &Listed| -> (Option<String>, String) {
        match l.rel.split_once('/') {
            Some((dir, file)) => (Some(dir.to_string()), file.to_string()),
            None => (None, l.rel.clone()),
        }
    };
    // Count collection files at the top and one level down. The oplog of a root and the
    // prelude say nothing about which layout this is.
    let (mut top, mut nested) = (0usize, 0usize);
    for l in &listed {
        let (dir, file) = split(l);
        if let Some((Role::Data | Role::Metadata, base, _)) = classify(&file) {
            match dir {
                Some(_) => nested += 1,
                None if base != "oplog" => top += 1,
                None => {}
            }
        }
    }
    let is_root = nested > 0 && nested >= top;
    let single_db = if is_root {
        None
    } else {
        Some(unescape_name(&database_dir_name(&location)?))
    };
    for dir in &deeper {
        tracing::warn!(object = %object_name(&location, dir), "ignoring a nested directory of the dump");
    }

    // (database dir, file base) → files, raw names; BTreeMap for a deterministic walk.
    let mut entries: BTreeMap<(String, String), Entry> = BTreeMap::new();
    let mut preludes: Vec<Listed> = Vec::new();
    let mut oplog: Option<(Listed, Codec)> = None;
    let mut any_gzip = false;
    let mut any_other_codec = false;
    for item in &listed {
        let (dir, file) = split(item);
        let Some((role, base, codec)) = classify(&file) else {
            continue;
        };
        let db_dir = match (&dir, is_root) {
            (Some(d), true) => d.clone(),
            (None, false) => String::new(),
            (None, true) => {
                match role {
                    Role::Prelude => preludes.insert(0, item.clone()),
                    Role::Data if base == "oplog" => oplog = Some((item.clone(), codec)),
                    _ => tracing::warn!(
                        object = %object_name(&location, &item.rel),
                        "ignoring a file at the dump root that belongs to no database"
                    ),
                }
                continue;
            }
            (Some(_), false) => {
                if role != Role::Prelude {
                    tracing::warn!(object = %object_name(&location, &item.rel), "ignoring a file in a subdirectory of the database directory");
                }
                continue;
            }
        };
        if role == Role::Prelude {
            // A root's prelude comes first; a database directory's own is a fallback.
            if dir.is_none() {
                preludes.insert(0, item.clone());
            } else {
                preludes.push(item.clone());
            }
            continue;
        }
        any_gzip |= codec == Codec::Gzip;
        any_other_codec |= !matches!(codec, Codec::None | Codec::Gzip);
        let entry = entries.entry((db_dir, base.to_string())).or_default();
        let slot = match role {
            Role::Data => &mut entry.data,
            _ => &mut entry.metadata,
        };
        if let Some((existing, _)) = slot {
            return Err(SourceError::Invalid {
                object: object_name(&location, &item.rel),
                message: format!(
                    "{} holds the same collection",
                    object_name(&location, &existing.rel)
                ),
            });
        }
        *slot = Some((item.clone(), codec));
    }
    if entries.is_empty() && oplog.is_none() {
        return Ok(None);
    }

    let mut info = DumpInfo::default();
    let mut account = |l: &Listed| {
        info.total_bytes += l.size;
        if let Some(m) = l.modified {
            info.taken_at = Some(info.taken_at.map_or(m, |t| t.max(m)));
        }
    };
    if let Some(prelude) = preludes.first() {
        account(prelude);
    }
    for entry in entries.values() {
        for (l, _) in entry.data.iter().chain(entry.metadata.iter()) {
            account(l);
        }
    }
    info.mongod_version = read_prelude(&location, preludes.first()).await?;

    // Metadata, fetched a few at a time (object stores) in a stable order.
    let keys: Vec<(String, String)> = entries.keys().cloned().collect();
    // Owned inputs: a closure over borrowed items would make `open`'s future not `Send`.
    let metas: Vec<_> = keys
        .iter()
        .map(|key| entries[key].metadata.clone())
        .collect();
    let location_ref = &location;
    let fetches = metas.into_iter().map(move |meta| async move {
        match meta {
            Some((listed, codec)) => read_metadata(location_ref, &listed, codec).await,
            None => Ok(None),
        }
    });
    let metadata: Vec<Result<Option<bson::Document>, SourceError>> = futures::stream::iter(fetches)
        .buffered(METADATA_FETCHES)
        .collect()
        .await;

    let mut collections = Vec::with_capacity(keys.len() + 1);
    if let Some((listed, _)) = &oplog {
        collections.push(CollectionInfo {
            db: String::new(),
            name: "oplog".into(),
            kind: CollectionKind::System,
            metadata: None,
            source_object: object_name(&location, &listed.rel),
            bson_bytes: Some(listed.size),
        });
    }
    for (key, metadata) in keys.iter().zip(metadata) {
        let metadata = metadata?;
        let entry = &entries[key];
        let db = match &single_db {
            Some(name) => name.clone(),
            None => unescape_name(&key.0),
        };
        let name = collection_name(&key.1, metadata.as_ref());
        let kind = kind_of(&db, &name, metadata.as_ref(), None);
        let (source, bson_bytes) = match (&entry.data, &entry.metadata) {
            (Some((data, codec)), _) => (&data.rel, (*codec == Codec::None).then_some(data.size)),
            (None, Some((meta, _))) => (&meta.rel, Some(0)),
            (None, None) => continue,
        };
        collections.push(CollectionInfo {
            db,
            name,
            kind,
            metadata,
            source_object: object_name(&location, source),
            bson_bytes,
        });
    }
    collections.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    if let Some(pair) = collections
        .windows(2)
        .find(|w| w[0].db == w[1].db && w[0].name == w[1].name)
    {
        return Err(SourceError::Invalid {
            object: pair[1].source_object.clone(),
            message: format!(
                "collection {} also comes from {}",
                pair[1].namespace(),
                pair[0].source_object
            ),
        });
    }
    link_buckets(&mut collections)?;
    Ok(Some(SnapshotSource {
        location,
        format: if any_other_codec {
            SourceFormat::DirectoryCompressed
        } else if any_gzip {
            SourceFormat::DirectoryGzip
        } else {
            SourceFormat::Directory
        },
        collections,
        info,
        pbm: None,
    }))
}

/// The last path segment of a location that is a database directory.
fn database_dir_name(location: &Location) -> Result<String, SourceError> {
    let from_root = location
        .local_root
        .as_ref()
        .and_then(|r| r.file_name())
        .and_then(|n| n.to_str())
        .map(str::to_string);
    let from_prefix = location
        .prefix
        .as_ref()
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    from_root
        .or(from_prefix)
        .ok_or_else(|| SourceError::Invalid {
            object: object_name(location, ""),
            message: "the dump has no database directories and its location has no name to use as \
                  the database name"
                .into(),
        })
}

async fn read_metadata(
    location: &Location,
    listed: &Listed,
    codec: Codec,
) -> Result<Option<bson::Document>, SourceError> {
    let object = object_name(location, &listed.rel);
    let bytes = read_text(location, listed, codec).await?;
    match parse_extjson(&bytes) {
        Ok(Some(doc)) => Ok(Some(doc)),
        Ok(None) => {
            tracing::warn!(object = %object, "metadata file is empty, treating the collection as having no metadata");
            Ok(None)
        }
        Err(e) => Err(SourceError::Invalid {
            object,
            message: e.to_string(),
        }),
    }
}

async fn read_prelude(
    location: &Location,
    prelude: Option<&Listed>,
) -> Result<Option<String>, SourceError> {
    let Some(listed) = prelude else {
        return Ok(None);
    };
    let (_, codec) = Codec::strip_suffix(&listed.rel);
    let bytes = read_text(location, listed, codec).await?;
    // The prelude only feeds `mongod_version`: an unreadable one is not worth failing for.
    match prelude_server_version(&bytes) {
        Ok(v) => Ok(v),
        Err(e) => {
            tracing::warn!(object = %object_name(location, &listed.rel), error = %e, "ignoring an unreadable prelude");
            Ok(None)
        }
    }
}

async fn read_text(
    location: &Location,
    listed: &Listed,
    codec: Codec,
) -> Result<Vec<u8>, SourceError> {
    let raw = objects::read_small(location, &listed.rel, METADATA_LIMIT).await?;
    if codec == Codec::None {
        return Ok(raw);
    }
    let object = object_name(location, &listed.rel);
    // Decompression is CPU work: off the runtime's worker threads.
    tokio::task::spawn_blocking(move || codec::decode_small(&object, raw, codec, METADATA_LIMIT))
        .await
        .map_err(|e| SourceError::Stopped(format!("decompression task failed: {e}")))?
}

/// Reads every exported collection, one after another. See [`SnapshotSource::read`].
pub(crate) fn read(
    source: &SnapshotSource,
    handle: &Handle,
    visitor: &mut dyn Visitor,
) -> Result<(), SourceError> {
    for (index, collection) in source.exported() {
        visitor.begin(index)?;
        let object = &collection.source_object;
        let (base, named) = Codec::strip_suffix(object);
        if base.ends_with(".bson") {
            let rel = relative_key(&source.location, object);
            // The suffix names the codec; a plain `.bson` may still hold a decisive magic.
            let expect = match named {
                Codec::None => Expect::Sniff { gzip: false },
                other => Expect::Known(other),
            };
            let (_, stream) = codec::open_object(&source.location, rel, expect, handle)?;
            let mut frames = FrameReader::documents(stream, object.clone());
            loop {
                match frames.next_frame()? {
                    Frame::Document { bytes, offset } => visitor.document(index, bytes, offset)?,
                    Frame::End { .. } => break,
                    // Terminators are not recognized in plain document streams.
                    Frame::Terminator { offset } => {
                        return Err(SourceError::Corrupt {
                            object: object.clone(),
                            offset,
                            message: "unexpected archive terminator".into(),
                        });
                    }
                }
            }
        }
        visitor.end(index)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_classified() {
        assert_eq!(classify("c.bson"), Some((Role::Data, "c", Codec::None)));
        assert_eq!(classify("c.bson.gz"), Some((Role::Data, "c", Codec::Gzip)));
        assert_eq!(classify("c.bson.zst"), Some((Role::Data, "c", Codec::Zstd)));
        assert_eq!(
            classify("c.metadata.json"),
            Some((Role::Metadata, "c", Codec::None))
        );
        assert_eq!(
            classify("a.b.metadata.json.gz"),
            Some((Role::Metadata, "a.b", Codec::Gzip))
        );
        assert_eq!(
            classify("a.b.metadata.json.s2"),
            Some((Role::Metadata, "a.b", Codec::S2))
        );
        assert_eq!(
            classify("prelude.json.gz"),
            Some((Role::Prelude, "prelude.json", Codec::Gzip))
        );
        assert_eq!(classify(".bson"), None);
        assert_eq!(classify("notes.txt"), None);
        assert_eq!(classify("x.json"), None);
    }
}

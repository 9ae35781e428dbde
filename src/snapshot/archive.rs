//! mongodump `--archive` files, plain or compressed as a whole (gzip, zstd, lz4, snappy, s2;
//! detected by magic number, see [`super::codec`]).
//!
//! The format (mongo-tools `common/archive/spec.md`): the magic number `0x8199e26d`
//! (little-endian), a header document (`version`, `server_version`, `tool_version`,
//! `concurrent_collections`), one prelude document per namespace (`db`, `collection`,
//! `metadata` as a canonical Extended JSON *string*, `size`, and on newer tools `type`), and a
//! `0xFFFFFFFF` terminator. Then blocks, each a namespace header document
//! `{db, collection, EOF, CRC}`, zero or more documents of that namespace, and a terminator.
//! Namespaces interleave; a namespace ends with an `EOF: true` header whose `CRC` is the
//! CRC-64 (ECMA-182 polynomial, reflected, all-ones init and xor-out, i.e. CRC-64/XZ, which is
//! what Go's `crc64.ECMA` table computes) of the concatenated bytes of all its documents.
//!
//! Decisions:
//! - Every namespace's CRC is verified at its EOF header, also for namespaces we do not
//!   export; a mismatch is [`SourceError::Corrupt`] naming the namespace and the EOF header's
//!   offset. The documents were already handed to the visitor by then: the export fails, which
//!   is the point.
//! - The oplog pseudo-namespace (empty database, `.oplog`) is listed as
//!   [`CollectionKind::System`] and never visited. A time-series collection is in the prelude
//!   (`"type": "timeseries"`) but its buckets come in blocks of `<db>.system.buckets.<coll>`,
//!   which the prelude does not list — or, from newer mongodump, in blocks of the collection's
//!   own namespace: both are read as the collection's documents, whichever the archive has.
//!   Since either may come, a time-series collection ends only when the archive does. Other
//!   `system.*` namespaces without a prelude entry are skipped. Any other namespace that has
//!   documents but no prelude entry is an error: exporting it would mean inventing its
//!   metadata, skipping it would lose data silently.
//! - The stream must end at a block boundary with every namespace closed, and every exported
//!   namespace of the prelude must have been closed (mongorestore makes the same check): an
//!   archive cut short is corrupt even when it is cut exactly between two blocks. A time-series
//!   collection is the exception: its view namespace never has blocks, and its buckets
//!   namespace is not in the prelude, so one without blocks is exported empty.
//! - Collections are listed sorted by (database, collection), like directory dumps; `read`
//!   visits them interleaved exactly as the archive stores them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Read;

use bson::RawDocument;
use tokio::runtime::Handle;

use super::codec::{self, Codec, Expect};
use super::frames::{Frame, FrameReader, corrupt};
use super::metadata::{
    BUCKETS_PREFIX, ORPHAN_BUCKETS_REASON, kind_of, known_version, link_buckets, parse_extjson,
};
use super::objects::object_name;
use super::{
    CollectionInfo, CollectionKind, DumpInfo, SnapshotSource, SourceError, SourceFormat, Visitor,
};
use crate::storage::Location;

/// The archive magic number as it appears on disk (0x8199e26d, little-endian).
pub const MAGIC: [u8; 4] = [0x6d, 0xe2, 0x99, 0x81];
/// The gzip magic number.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// What the archive prelude says.
pub(crate) struct Prelude {
    pub server_version: Option<String>,
    pub collections: Vec<CollectionInfo>,
}

/// Reads the magic number, header and prelude of an archive from `frames`, leaving the reader
/// at the first namespace block.
pub(crate) fn read_prelude<R: Read>(
    frames: &mut FrameReader<R>,
    source_object: &str,
) -> Result<Prelude, SourceError> {
    match frames.read_array::<4>()? {
        Some(magic) if magic == MAGIC => {}
        Some(magic) => {
            return Err(SourceError::Invalid {
                object: source_object.to_string(),
                message: format!(
                    "not a mongodump archive: magic number 0x{:08x}, expected 0x8199e26d",
                    u32::from_le_bytes(magic)
                ),
            });
        }
        None => {
            return Err(SourceError::Invalid {
                object: source_object.to_string(),
                message: "not a mongodump archive: shorter than its magic number".into(),
            });
        }
    }
    let server_version = match frames.next_frame()? {
        Frame::Document { bytes, offset } => {
            let header = raw(source_object, bytes, offset, "archive header")?;
            header
                .get_str("server_version")
                .ok()
                .and_then(known_version)
        }
        Frame::Terminator { offset } | Frame::End { offset } => {
            return Err(frames.corrupt(offset, "archive has no header document"));
        }
    };
    let mut collections: Vec<CollectionInfo> = Vec::new();
    loop {
        let (bytes, offset) = match frames.next_frame()? {
            Frame::Document { bytes, offset } => (bytes, offset),
            Frame::Terminator { .. } => break,
            Frame::End { offset } => {
                return Err(frames.corrupt(offset, "archive ends inside its prelude"));
            }
        };
        let doc = raw(source_object, bytes, offset, "collection metadata")?;
        let field = |key: &str| -> Result<String, SourceError> {
            doc.get_str(key).map(str::to_string).map_err(|_| {
                corrupt(
                    source_object,
                    offset,
                    format!("collection metadata has no string `{key}`"),
                )
            })
        };
        let db = field("db")?;
        let name = field("collection")?;
        let metadata_text = doc.get_str("metadata").unwrap_or("");
        let type_hint = doc.get_str("type").ok();
        let size = match doc.get("size") {
            Ok(Some(bson::RawBsonRef::Int32(n))) => n as u64,
            Ok(Some(bson::RawBsonRef::Int64(n))) => n.max(0) as u64,
            _ => 0,
        };
        let namespace = format!("{db}.{name}");
        let metadata = if db.is_empty() {
            // The oplog's prelude entry has an empty metadata string.
            None
        } else {
            parse_extjson(metadata_text.as_bytes()).map_err(|message| SourceError::Invalid {
                object: source_object.to_string(),
                message: format!(
                    "invalid metadata of {namespace} in the archive prelude: {message}"
                ),
            })?
        };
        let kind = kind_of(&db, &name, metadata.as_ref(), type_hint);
        if collections.iter().any(|c| c.db == db && c.name == name) {
            return Err(corrupt(
                source_object,
                offset,
                format!("{namespace} appears twice in the prelude"),
            ));
        }
        collections.push(CollectionInfo {
            db,
            name,
            kind,
            metadata,
            source_object: source_object.to_string(),
            // mongodump writes 0 when it does not know the size up front.
            bson_bytes: (size > 0).then_some(size),
        });
    }
    collections.sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    link_buckets(&mut collections)?;
    Ok(Prelude {
        server_version,
        collections,
    })
}

fn raw<'a>(
    object: &str,
    bytes: &'a [u8],
    offset: u64,
    what: &str,
) -> Result<&'a RawDocument, SourceError> {
    RawDocument::from_bytes(bytes)
        .map_err(|e| corrupt(object, offset, format!("invalid {what} document: {e}")))
}

/// Opens the archive object, detecting its compression by its magic number (`None`) or
/// expecting the one given. Returns the frame reader positioned at the archive magic and the
/// codec.
fn open_frames(
    location: &Location,
    handle: &Handle,
    codec: Option<Codec>,
) -> Result<(FrameReader<Box<dyn Read + Send>>, Codec), SourceError> {
    let name = object_name(location, "");
    // An archive starts with its own magic number, so gzip's is decisive here too.
    let expect = codec.map_or(Expect::Sniff { gzip: true }, Expect::Known);
    let (codec, stream) = codec::open_object(location, "", expect, handle)?;
    Ok((FrameReader::archive(stream, name), codec))
}

/// Opens a single-object archive source (blocking; `open` runs it on the blocking pool).
pub(crate) fn open_blocking(
    location: Location,
    handle: &Handle,
    info: DumpInfo,
) -> Result<SnapshotSource, SourceError> {
    let (mut frames, codec) = open_frames(&location, handle, None)?;
    let name = object_name(&location, "");
    let prelude = read_prelude(&mut frames, &name).map_err(|e| match (codec, e) {
        (Codec::None, e) => e,
        (codec, SourceError::Invalid { object, message })
            if message.starts_with("not a mongodump") =>
        {
            SourceError::Invalid {
                object,
                message: format!("{codec} object: {message}"),
            }
        }
        (_, e) => e,
    })?;
    Ok(SnapshotSource {
        location,
        format: match codec {
            Codec::None => SourceFormat::Archive,
            Codec::Gzip => SourceFormat::ArchiveGzip,
            other => SourceFormat::ArchiveCompressed(other),
        },
        collections: prelude.collections,
        info: DumpInfo {
            mongod_version: prelude.server_version,
            ..info
        },
        pbm: None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
}

struct Namespace {
    /// Index in `collections` when the namespace is exported.
    export: Option<usize>,
    state: State,
    crc: crc::Digest<'static, u64>,
}

/// Reads the archive, visiting exported namespaces as they interleave. See
/// [`SnapshotSource::read`].
pub(crate) fn read(
    source: &SnapshotSource,
    handle: &Handle,
    visitor: &mut dyn Visitor,
) -> Result<(), SourceError> {
    let codec = match source.format {
        SourceFormat::ArchiveGzip => Codec::Gzip,
        SourceFormat::ArchiveCompressed(codec) => codec,
        _ => Codec::None,
    };
    let (mut frames, _) = open_frames(&source.location, handle, Some(codec))?;
    let name = frames.object().to_string();
    read_prelude(&mut frames, &name)?;
    read_blocks(&source.collections, &mut frames, visitor)
}

/// Reads an archive's namespace blocks from `frames` (positioned after the prelude), visiting
/// the exported ones among `collections` (the prelude's, as [`read_prelude`] lists them).
/// Also the reader of PBM 1.x backups, whose snapshot is a compressed archive.
pub(crate) fn read_blocks<R: Read>(
    collections: &[CollectionInfo],
    frames: &mut FrameReader<R>,
    visitor: &mut dyn Visitor,
) -> Result<(), SourceError> {
    let name = frames.object().to_string();
    let mut known: HashMap<String, usize> = HashMap::new();
    for (index, c) in collections.iter().enumerate() {
        known.insert(archive_namespace(&c.db, &c.name), index);
        if c.kind == CollectionKind::Timeseries {
            let buckets = format!("{BUCKETS_PREFIX}{}", c.name);
            known.insert(archive_namespace(&c.db, &buckets), index);
        }
    }
    let mut namespaces: HashMap<String, Namespace> = HashMap::new();
    // Which collections have begun: a time-series collection may get blocks from two namespaces.
    let mut begun = vec![false; collections.len()];
    loop {
        // A block: header, documents, terminator.
        let (header, header_offset) = match frames.next_frame()? {
            Frame::Document { bytes, offset } => {
                (NamespaceHeader::parse(&name, bytes, offset)?, offset)
            }
            Frame::End { offset } => {
                return finish(
                    collections,
                    frames,
                    &namespaces,
                    &mut begun,
                    visitor,
                    offset,
                );
            }
            Frame::Terminator { offset } => {
                return Err(
                    frames.corrupt(offset, "terminator where a namespace header was expected")
                );
            }
        };
        let ns_name = header.namespace();
        let ns = match namespaces.entry(ns_name.clone()) {
            Entry::Occupied(entry) => {
                let ns = entry.into_mut();
                if ns.state == State::Closed {
                    return Err(corrupt(
                        &name,
                        header_offset,
                        format!("namespace {ns_name} continues after its end"),
                    ));
                }
                ns
            }
            Entry::Vacant(entry) => {
                let export = match known.get(&ns_name) {
                    Some(&i) => collections[i].kind.is_exported().then_some(i),
                    None if header.collection.starts_with(BUCKETS_PREFIX) => {
                        tracing::warn!(
                            object = %name,
                            namespace = %ns_name,
                            "time-series buckets skipped: the archive has no metadata for their collection"
                        );
                        visitor.skipped(&ns_name, ORPHAN_BUCKETS_REASON)?;
                        None
                    }
                    None if is_skipped_unlisted(&header.db, &header.collection) => None,
                    None => {
                        return Err(SourceError::Invalid {
                            object: name,
                            message: format!(
                                "namespace {ns_name} has documents at byte {header_offset} but is \
                                 not in the archive prelude"
                            ),
                        });
                    }
                };
                if let Some(i) = export
                    && !std::mem::replace(&mut begun[i], true)
                {
                    visitor.begin(i)?;
                }
                entry.insert(Namespace {
                    export,
                    state: State::Open,
                    crc: CRC64.digest(),
                })
            }
        };
        if header.eof {
            let actual = std::mem::replace(&mut ns.crc, CRC64.digest()).finalize();
            if actual != header.crc as u64 {
                return Err(SourceError::Corrupt {
                    object: name,
                    offset: header_offset,
                    message: format!(
                        "checksum mismatch for namespace {ns_name}: the archive says \
                         {:#018x}, its documents give {actual:#018x}",
                        header.crc as u64
                    ),
                });
            }
            ns.state = State::Closed;
            if let Some(i) = ns.export {
                // A time-series collection ends with the archive (see `finish`).
                if collections[i].kind != CollectionKind::Timeseries {
                    visitor.end(i)?;
                }
            }
        }
        loop {
            // Damage inside a block is reported with the namespace it hit.
            let frame = frames.next_frame().map_err(|e| in_namespace(e, &ns_name))?;
            match frame {
                Frame::Terminator { .. } => break,
                Frame::Document { bytes, offset } => {
                    if header.eof {
                        return Err(SourceError::Corrupt {
                            object: name,
                            offset,
                            message: format!("document after the end of namespace {ns_name}"),
                        });
                    }
                    ns.crc.update(bytes);
                    if let Some(i) = ns.export {
                        visitor.document(i, bytes, offset)?;
                    }
                }
                Frame::End { offset } => {
                    return Err(SourceError::Corrupt {
                        object: name,
                        offset,
                        message: format!("archive ends inside a block of namespace {ns_name}"),
                    });
                }
            }
        }
    }
}

/// Namespaces that may have data without a prelude entry and that we never export.
fn is_skipped_unlisted(db: &str, collection: &str) -> bool {
    db.is_empty() || collection.starts_with("system.")
}

/// How a collection's namespace appears in block headers (the oplog: empty db, `oplog`).
fn archive_namespace(db: &str, name: &str) -> String {
    format!("{db}.{name}")
}

/// Adds the namespace to a corruption message that does not name it yet.
fn in_namespace(e: SourceError, namespace: &str) -> SourceError {
    match e {
        SourceError::Corrupt {
            object,
            offset,
            message,
        } if !message.contains(namespace) => SourceError::Corrupt {
            object,
            offset,
            message: format!("namespace {namespace}: {message}"),
        },
        other => other,
    }
}

fn finish<R: Read>(
    collections: &[CollectionInfo],
    frames: &FrameReader<R>,
    namespaces: &HashMap<String, Namespace>,
    begun: &mut [bool],
    visitor: &mut dyn Visitor,
    offset: u64,
) -> Result<(), SourceError> {
    let mut open: Vec<&String> = namespaces
        .iter()
        .filter(|(_, ns)| ns.state == State::Open)
        .map(|(n, _)| n)
        .collect();
    open.sort();
    if let Some(first) = open.first() {
        return Err(frames.corrupt(
            offset,
            format!("archive ends before namespace {first} is complete"),
        ));
    }
    for (i, c) in collections
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind.is_exported())
    {
        if c.kind == CollectionKind::Timeseries {
            if !std::mem::replace(&mut begun[i], true) {
                visitor.begin(i)?;
            }
            visitor.end(i)?;
            continue;
        }
        let ns = archive_namespace(&c.db, &c.name);
        if !namespaces.contains_key(&ns) {
            return Err(frames.corrupt(
                offset,
                format!("archive ends before namespace {ns} of its prelude appears"),
            ));
        }
    }
    Ok(())
}

struct NamespaceHeader {
    db: String,
    collection: String,
    eof: bool,
    crc: i64,
}

impl NamespaceHeader {
    fn parse(object: &str, bytes: &[u8], offset: u64) -> Result<Self, SourceError> {
        let doc = raw(object, bytes, offset, "namespace header")?;
        let collection = doc.get_str("collection").unwrap_or("");
        if collection.is_empty() {
            return Err(corrupt(
                object,
                offset,
                "namespace header has no collection",
            ));
        }
        Ok(NamespaceHeader {
            db: doc.get_str("db").unwrap_or("").to_string(),
            collection: collection.to_string(),
            eof: doc.get_bool("EOF").unwrap_or(false),
            crc: match doc.get("CRC") {
                Ok(Some(bson::RawBsonRef::Int64(n))) => n,
                Ok(Some(bson::RawBsonRef::Int32(n))) => n as i64,
                _ => 0,
            },
        })
    }

    fn namespace(&self) -> String {
        archive_namespace(&self.db, &self.collection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_gos_ecma_table() {
        // Go: crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ECMA)) = 0x995dc9bbdf1939fa
        assert_eq!(CRC64.checksum(b"123456789"), 0x995d_c9bb_df19_39fa);
    }
}

//! Snapshot sources: one replica set's mongodump directory (plain, `--gzip`, or compressed
//! file by file with zstd, lz4, snappy or s2), mongodump `--archive` (plain or compressed
//! with any of these), or one replica set of a PBM logical backup, read as a stream of raw
//! BSON documents per collection.
//!
//! INTERFACE CONTRACT (the export pipeline depends on these names; keep them stable):
//! - [`SnapshotSource::open`] detects the format and lists the collections (cheap: listing,
//!   metadata files, the archive prelude);
//! - [`SnapshotSource::read`] is blocking (call it inside `spawn_blocking`) and feeds every
//!   document of every exportable collection to a [`Visitor`], `begin`/`end` around each
//!   collection. Directory sources give collections one after another in a stable order;
//!   archive sources may interleave collections exactly as the archive does.

//!
//! Layout of this module: [`detect`] decides what a location holds and builds the source;
//! [`directory`] and [`archive`] list and read the two mongodump formats, [`pbm`] PBM's
//! backups; [`codec`] detects and decodes compressed streams; `frames` splits a byte stream
//! into length-checked BSON documents; `objects` reads source objects from the local disk or
//! any object store; `metadata` parses `.metadata.json`/`prelude.json` and decides each
//! collection's [`CollectionKind`]; [`generate`] writes deterministic sample dumps for tests
//! and benchmarks.
//!
//! Limits and decisions that apply to every format:
//! - A document's length prefix must be within [`MIN_DOCUMENT_BYTES`]..=[`MAX_DOCUMENT_BYTES`]
//!   and its last byte must be 0; anything else, and a stream that ends inside a document, is
//!   [`SourceError::Corrupt`] naming the object and the byte offset. Document *content* is not
//!   validated here: the encoder walks every element anyway and reports what it finds.
//! - Memory does not grow with the input: reads go through one buffer of [`READ_BUFFER_BYTES`]
//!   that only grows for a document larger than itself (never past the document limit).

use chrono::{DateTime, Utc};

use crate::storage::Location;

pub mod archive;
pub mod catalog;
pub mod codec;
pub mod detect;
pub mod directory;
mod frames;
pub mod generate;
mod metadata;

pub use metadata::ORPHAN_BUCKETS_REASON;
mod objects;
pub mod pbm;

/// The largest document accepted: 16 MiB (the server's `BSONObjMaxUserSize`) plus the 16 KiB
/// the server allows internally (`BSONObjMaxInternalSize`), because oplog entries and documents
/// written by internal operations can reach it and mongodump copies them verbatim. mongo-tools'
/// archive parser stops at exactly 16 MiB; we accept the slack so that a dump the server produced
/// can always be exported.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024 + 16 * 1024;
/// The smallest valid document: a 4-byte length and the terminating 0.
pub const MIN_DOCUMENT_BYTES: usize = 5;
/// Size of the read buffer of every source stream (and of each object-store read).
pub const READ_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// What kind of namespace a collection is, which decides whether it is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionKind {
    /// A regular collection (also `system.js`): exported.
    Collection,
    /// A view: skipped.
    View,
    /// A time-series collection: exported as measurements. Its documents are buckets, read from
    /// its `system.buckets.<name>` namespace (dumps of servers before 8.x) or from its own file or
    /// namespace (raw buckets, as newer mongodump writes them), whichever the dump has.
    Timeseries,
    /// `system.*` other than `system.js`, and the archive's oplog pseudo-namespace: skipped.
    System,
    /// `system.buckets.<name>` without its time-series collection's metadata: skipped with a
    /// warning and a manifest entry, as without `timeField` its buckets cannot be unpacked.
    /// (With the metadata it is not listed: the time-series collection reads it.)
    OrphanBuckets,
    /// Left out by the export's namespace filter (`crate::export::NamespaceFilter`): never
    /// visited, and its file never opened where the format allows.
    Excluded,
}

impl CollectionKind {
    /// Whether collections of this kind are read and exported.
    pub fn is_exported(self) -> bool {
        matches!(
            self,
            CollectionKind::Collection | CollectionKind::Timeseries
        )
    }
}

/// One collection of a snapshot part.
#[derive(Debug, Clone)]
pub struct CollectionInfo {
    pub db: String,
    pub name: String,
    pub kind: CollectionKind,
    /// The collection's metadata (`options`, `indexes`, `uuid`, `collectionName`, `type`) as
    /// read from `<coll>.metadata.json` or the archive prelude, Extended JSON parsed to BSON.
    /// `None` when the dump has no metadata for it.
    pub metadata: Option<bson::Document>,
    /// The source object the documents come from (for error messages): the `.bson`/`.bson.gz`
    /// key (for a time-series collection, its buckets' file), or the archive's key.
    pub source_object: String,
    /// Size in bytes of the collection's BSON when known up front (directory dumps), for
    /// progress and ETA.
    pub bson_bytes: Option<u64>,
}

/// Facts about the dump, used for defaults and the snapshot record.
#[derive(Debug, Clone, Default)]
pub struct DumpInfo {
    /// `server_version` from prelude.json / the archive prelude.
    pub mongod_version: Option<String>,
    /// Best evidence of when the dump was taken (newest source object's modification time).
    pub taken_at: Option<DateTime<Utc>>,
    /// Total bytes of the source objects.
    pub total_bytes: u64,
    /// The oplog the source holds and that the export does not apply (PBM backups).
    pub oplog: Option<OplogNote>,
}

/// An oplog range a snapshot part holds but that is not applied to the exported documents:
/// the documents are as dumped, anywhere between `first` and `last`, while the snapshot's
/// consistent point is `consistent_at`. Written to `.manifest.json` per replica set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OplogNote {
    /// What holds the oplog (`PBM backup <name>`).
    pub source: String,
    /// Always `false` for now: applying the oplog is the later "consistent cut".
    pub applied: bool,
    /// The replica set's first and last oplog entries the backup holds.
    pub first: Option<OplogTimestamp>,
    pub last: Option<OplogTimestamp>,
    /// The backup's consistent point (its `last_write_ts`).
    pub consistent_at: Option<OplogTimestamp>,
    /// The oplog objects, in replay order.
    pub files: Vec<String>,
}

/// A BSON timestamp: seconds and increment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct OplogTimestamp {
    pub t: u32,
    pub i: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Directory,
    DirectoryGzip,
    Archive,
    ArchiveGzip,
    /// A directory dump with files compressed by zstd, lz4, snappy or s2 (by their names;
    /// gzip'ed and plain files may sit beside them).
    DirectoryCompressed,
    /// An archive compressed as a whole by zstd, lz4, snappy or s2.
    ArchiveCompressed(codec::Codec),
    /// One replica set of a PBM logical backup (any layout and compression; see [`pbm`]).
    Pbm,
}

/// Receives documents from [`SnapshotSource::read`]. `index` is the collection's position in
/// [`SnapshotSource::collections`]. Returning an error stops the read and is passed back.
pub trait Visitor {
    fn begin(&mut self, index: usize) -> Result<(), SourceError>;
    /// One whole, length-checked BSON document (its own bytes, length prefix included), and
    /// its byte offset in the source object (in the decompressed stream for gzip sources).
    fn document(&mut self, index: usize, doc: &[u8], offset: u64) -> Result<(), SourceError>;
    fn end(&mut self, index: usize) -> Result<(), SourceError>;
    /// A namespace found while reading that is not exported, with the reason, for the export's
    /// report (time-series buckets in an archive whose prelude lacks their collection).
    fn skipped(&mut self, _namespace: &str, _reason: &str) -> Result<(), SourceError> {
        Ok(())
    }
}

/// A failure reading a snapshot, naming the object and byte offset where it applies.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{object}: {message}")]
    Invalid { object: String, message: String },
    #[error("{object} at byte {offset}: {message}")]
    Corrupt {
        object: String,
        offset: u64,
        message: String,
    },
    #[error("cannot read {object}")]
    Io {
        object: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {object}")]
    Store {
        object: String,
        #[source]
        source: object_store::Error,
    },
    /// Raised by a [`Visitor`] to stop reading (the export failed or was cancelled elsewhere).
    #[error("{0}")]
    Stopped(String),
}

/// One replica set's part of a snapshot.
pub struct SnapshotSource {
    pub location: Location,
    pub format: SourceFormat,
    pub collections: Vec<CollectionInfo>,
    pub info: DumpInfo,
    /// What reading a PBM part needs (its layout and files); `None` for mongodump sources.
    pub pbm: Option<std::sync::Arc<pbm::PbmPart>>,
}

impl CollectionInfo {
    /// `db.collection`, the way MongoDB names a namespace.
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }
}

impl SnapshotSource {
    /// Detects the format at `location` (a mongodump directory: a root with one directory per
    /// database, or a single database directory; plain or `--gzip`; or, when the location is a
    /// single object, a mongodump `--archive`, plain or gzip), lists the collections with their
    /// kinds and metadata and reads `prelude.json` / the archive header. See [`detect`].
    pub async fn open(location: Location) -> Result<SnapshotSource, SourceError> {
        detect::open(location).await
    }

    /// Streams every document of every exported collection ([`CollectionKind::is_exported`]) to
    /// `visitor` — for a time-series collection, its buckets; empty collections get
    /// `begin`/`end` with no documents; other kinds are not visited. Blocking: call it inside `spawn_blocking` (it uses `handle` to drive
    /// object-store requests, and would panic on a runtime worker thread).
    pub fn read(
        &self,
        handle: &tokio::runtime::Handle,
        visitor: &mut dyn Visitor,
    ) -> Result<(), SourceError> {
        match self.format {
            SourceFormat::Directory | SourceFormat::DirectoryGzip => {
                directory::read(self, handle, visitor)
            }
            SourceFormat::DirectoryCompressed => directory::read(self, handle, visitor),
            SourceFormat::Archive
            | SourceFormat::ArchiveGzip
            | SourceFormat::ArchiveCompressed(_) => archive::read(self, handle, visitor),
            SourceFormat::Pbm => pbm::read(self, handle, visitor),
        }
    }

    /// The collections [`read`](Self::read) visits, with their indexes.
    pub fn exported(&self) -> impl Iterator<Item = (usize, &CollectionInfo)> {
        self.collections
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind.is_exported())
    }
}

/// Compile-time check: opening a source can run on any tokio worker (`tokio::spawn`), so the
/// job runner need not pin it to a thread of its own.
#[cfg(test)]
mod send_check {
    #[allow(dead_code)]
    fn open_is_send(location: crate::storage::Location) {
        fn assert_send<T: Send>(_: T) {}
        assert_send(super::SnapshotSource::open(location));
    }
}

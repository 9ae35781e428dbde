//! Exporting one replica set's part: the pipeline behind [`super::export_replica_set`].
//!
//! ```text
//!  reader thread                    rayon pool (every core)          writer thread
//!  source.read → Encoder ──Item──▶  compress_block(block, dict) ──▶  Upload: header, blocks in
//!  BSON → Extended JSON lines,      one oneshot per block            order, trailer, sha256,
//!  cut into blocks and files        (bounded channel = backpressure) metadata.json per collection
//! ```
//!
//! The reader encodes on its own thread because encoding costs about a tenth of compression;
//! the blocks are compressed in parallel and the writer puts them back in order, so every file
//! is one ordinary gzip member. A time-series collection's buckets are unpacked on the reader
//! thread too, each measurement encoded as it comes out of the [`Unpacker`]: decoding a bucket
//! costs a fraction of encoding its measurements (`benches/bsoncolumn.rs`), and it stays off
//! the async runtime. Memory is bounded by the channel (a few blocks) plus the
//! upload parts in flight, whatever the snapshot size.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::path::{Path, PathPart};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::gzip::{self, CompressedBlock, GzipError};
use super::schema::Stats;
use super::upload::{Upload, block_on_or_stop};
use super::workers;
use super::{
    CollectionSchema, ExportError, ExportOptions, ExportTarget, ManifestObject, Progress,
    ReplicaSetSummary, SkippedCollection,
};
use crate::extjson::{self, Format};
use crate::snapshot::{
    CollectionInfo, CollectionKind, ORPHAN_BUCKETS_REASON, SnapshotSource, SourceError, Visitor,
};
use crate::timeseries::{self, TimeseriesOptions, UnpackError, Unpacker};

/// JSON bytes per compression block: large enough that per-block overhead (dictionary
/// priming, a sync flush, a channel hop) is noise, small enough to spread over the cores.
const BLOCK_SIZE: usize = 1024 * 1024;

enum Item {
    FileStart {
        file: u64,
        collection: usize,
        key: String,
    },
    Block {
        file: u64,
        block: oneshot::Receiver<Result<CompressedBlock, GzipError>>,
    },
    FileEnd {
        file: u64,
        documents: u64,
        /// Time-series buckets whose first measurement is in this file (`None`: not time-series).
        buckets: Option<u64>,
    },
    CollectionEnd {
        collection: usize,
        metadata: Vec<u8>,
    },
    Done,
}

/// A replica set's summary before any document is read, for every data format: the
/// collections the namespace filter left out and the orphan buckets skipped (both for the
/// manifest), and the number of collections to export announced to `progress`.
pub(super) fn start_summary(
    replica_set: &str,
    source: &SnapshotSource,
    progress: &dyn Progress,
) -> ReplicaSetSummary {
    let mut summary = ReplicaSetSummary {
        replica_set: replica_set.to_string(),
        ..Default::default()
    };
    for info in &source.collections {
        if info.kind == CollectionKind::Excluded {
            summary.excluded_collections.push(info.namespace());
        }
        if info.kind == CollectionKind::OrphanBuckets {
            let namespace = info.namespace();
            tracing::warn!(
                replica_set,
                collection = %namespace,
                "time-series buckets skipped: the dump has no metadata for their collection"
            );
            summary.skipped_collections.push(SkippedCollection {
                replica_set: replica_set.to_string(),
                collection: namespace,
                reason: ORPHAN_BUCKETS_REASON.into(),
            });
        }
    }
    let planned = source
        .collections
        .iter()
        .filter(|c| c.kind.is_exported())
        .count();
    progress.collections_planned(replica_set, planned);
    summary
}

pub(super) async fn run(
    replica_set: &str,
    source: Arc<SnapshotSource>,
    target: &ExportTarget,
    options: &ExportOptions,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<ReplicaSetSummary, ExportError> {
    let failed = |message: String| ExportError::Failed {
        replica_set: replica_set.to_string(),
        message,
    };
    let mut summary = start_summary(replica_set, &source, progress.as_ref());

    let handle = Handle::current();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = mpsc::channel(2 * cores + 2);
    // A failure on either side must stop the other promptly.
    let stop = cancel.child_token();

    let reader = {
        let source = source.clone();
        let options = options.clone();
        let progress = progress.clone();
        let stop = stop.clone();
        let replica_set = replica_set.to_string();
        let handle = handle.clone();
        workers::spawn_worker(
            &format!("snapex-read-{replica_set}"),
            options.worker_nice,
            move || {
                let mut encoder = Encoder {
                    replica_set: &replica_set,
                    collections: &source.collections,
                    options: &options,
                    tx,
                    stop: &stop,
                    progress: progress.as_ref(),
                    open: HashMap::new(),
                    next_file: 0,
                    totals: ReadTotals::default(),
                    scratch: Vec::new(),
                };
                let result = source.read(&handle, &mut encoder);
                if result.is_ok() {
                    // The writer only commits what it got if the reader says it finished.
                    let _ = encoder.tx.blocking_send(Item::Done);
                } else {
                    stop.cancel();
                }
                (result, encoder.totals)
            },
        )
    };
    let writer = {
        let bucket = target.bucket.clone();
        let prefix = target.prefix.clone();
        let source = source.clone();
        let progress = progress.clone();
        let stop = stop.clone();
        let replica_set = replica_set.to_string();
        let nice = options.worker_nice;
        workers::spawn_worker(&format!("snapex-write-{replica_set}"), nice, move || {
            let result = write_objects(
                rx,
                &handle,
                &bucket.store,
                &base_path(&bucket.prefix, &prefix),
                &replica_set,
                &source.collections,
                progress.as_ref(),
                &stop,
            );
            if result.is_err() {
                stop.cancel();
            }
            result
        })
    };
    let thread_error =
        |what: &str, e: std::io::Error| failed(format!("cannot start the {what} thread: {e}"));
    let reader = reader.map_err(|e| thread_error("reader", e))?;
    let writer = writer.map_err(|e| thread_error("writer", e))?;
    let (reader, writer) = tokio::join!(reader, writer);
    let lost = |what: &str| failed(format!("the {what} thread stopped unexpectedly (a bug)"));
    let (read_result, totals) = reader
        .map_err(|_| lost("reader"))?
        .map_err(|_| lost("reader"))?;
    let written = writer
        .map_err(|_| lost("writer"))?
        .map_err(|_| lost("writer"))?;

    if cancel.is_cancelled() {
        return Err(ExportError::Cancelled);
    }
    // The writer's error is the root cause when the reader merely stopped because of it.
    match (read_result, written) {
        (Ok(()), Ok((objects, exported))) => {
            summary.objects = objects;
            summary.exported_collections = exported;
            summary.skipped_invalid_documents = totals.skipped_invalid;
            summary.documents = totals.documents;
            summary.bson_bytes = totals.bson_bytes;
            summary.buckets = totals.buckets;
            summary.skipped_invalid_buckets = totals.skipped_invalid_buckets;
            let mut schemas: Vec<_> = totals.schemas.into_iter().collect();
            schemas.sort_by_key(|(i, _)| *i);
            summary.schemas = schemas
                .into_iter()
                .filter_map(|(index, stats)| {
                    let info = source.collections.get(index)?;
                    Some(CollectionSchema {
                        db: info.db.clone(),
                        name: info.name.clone(),
                        stats,
                    })
                })
                .collect();
            summary
                .skipped_collections
                .extend(
                    totals
                        .skipped
                        .into_iter()
                        .map(|(collection, reason)| SkippedCollection {
                            replica_set: replica_set.to_string(),
                            collection,
                            reason,
                        }),
                );
            Ok(summary)
        }
        (Err(SourceError::Stopped(_)), Err(write_error)) => {
            Err(failed(crate::errors::chain(&write_error)))
        }
        (Err(read_error), _) => Err(failed(read_error.to_string())),
        (Ok(()), Err(write_error)) => Err(failed(crate::errors::chain(&write_error))),
    }
}

/// The object-store path of the export prefix inside the bucket location.
pub(super) fn base_path(bucket_prefix: &Path, export_prefix: &str) -> Path {
    let mut path = bucket_prefix.clone();
    for part in export_prefix.split('/').filter(|p| !p.is_empty()) {
        path = path.join(segment(part));
    }
    path
}

/// One key segment for a database, collection or prefix name: the name itself, as Atlas writes
/// it (UTF-8 included: `cafés` stays `cafés`), and percent-encoded only when the name could not
/// be a single segment at all (a `/`, a control character, `.` or `..`).
pub(super) fn segment(name: &str) -> PathPart<'_> {
    PathPart::parse(name).unwrap_or_else(|_| PathPart::from(name))
}

/// A key relative to the export prefix, each name one encoded path segment, so a collection
/// name can never introduce extra levels or `..`.
pub(super) fn relative_key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| segment(p).as_ref().to_string())
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn join(base: &Path, relative: &str) -> Path {
    let mut path = base.clone();
    for part in relative.split('/') {
        // Segments are already encoded by `relative_key`.
        path = path.join(PathPart::parse(part).unwrap_or_else(|_| PathPart::from(part)));
    }
    path
}

struct OpenFile {
    id: u64,
    json_bytes: u64,
    documents: u64,
    buckets: u64,
}

struct CollectionWriter {
    file: Option<OpenFile>,
    next_file_number: u64,
    block: Vec<u8>,
    block_bson: u64,
    block_documents: u64,
    /// The previous block of the current file: the next block's dictionary.
    previous: Option<Arc<Vec<u8>>>,
    /// For a time-series collection: turns its buckets into the measurements written.
    unpacker: Option<Unpacker>,
}

/// What the reader counted, for the summary.
#[derive(Default)]
struct ReadTotals {
    skipped_invalid: u64,
    /// Documents written: measurements, for time-series collections.
    documents: u64,
    bson_bytes: u64,
    /// Time-series buckets unpacked, and the invalid ones skipped (`--skip-invalid`).
    buckets: u64,
    skipped_invalid_buckets: u64,
    /// Namespaces the source skipped while reading, with the reason.
    skipped: Vec<(String, String)>,
    /// Each collection's schema statistics, inferred from the documents written.
    schemas: HashMap<usize, Stats>,
}

/// What happened to one document written as a line.
enum Line {
    Written,
    Invalid(extjson::EncodeError),
}

/// Why writing a bucket's measurements stopped.
enum BucketStop {
    Source(SourceError),
    Measurement(extjson::EncodeError),
}

struct Encoder<'a> {
    replica_set: &'a str,
    collections: &'a [CollectionInfo],
    options: &'a ExportOptions,
    tx: mpsc::Sender<Item>,
    stop: &'a CancellationToken,
    progress: &'a dyn Progress,
    /// Collections being read; several at once only for archives that interleave them.
    open: HashMap<usize, CollectionWriter>,
    next_file: u64,
    totals: ReadTotals,
    /// Scratch output for checking a bucket's measurements before writing them.
    scratch: Vec<u8>,
}

impl Encoder<'_> {
    fn send(&self, item: Item) -> Result<(), SourceError> {
        self.tx
            .blocking_send(item)
            .map_err(|_| SourceError::Stopped("the writer stopped".into()))
    }

    fn info(&self, index: usize) -> Result<&CollectionInfo, SourceError> {
        self.collections
            .get(index)
            .ok_or_else(|| SourceError::Stopped(format!("unknown collection index {index}")))
    }

    /// Hands the collection's current block to the compressor pool.
    fn dispatch(&mut self, index: usize) -> Result<(), SourceError> {
        let level = self.options.compression_level;
        let Some(writer) = self.open.get_mut(&index) else {
            return Ok(());
        };
        let Some(file) = writer.file.as_ref() else {
            return Ok(());
        };
        if writer.block.is_empty() {
            return Ok(());
        }
        let file_id = file.id;
        let data = Arc::new(std::mem::replace(
            &mut writer.block,
            Vec::with_capacity(BLOCK_SIZE + BLOCK_SIZE / 8),
        ));
        let dictionary = writer.previous.replace(data.clone());
        let (bson, documents) = (writer.block_bson, writer.block_documents);
        writer.block_bson = 0;
        writer.block_documents = 0;
        let (done, block) = oneshot::channel();
        workers::spawn_compression(self.options.worker_nice, move || {
            let dictionary = dictionary.as_deref().map(Vec::as_slice).unwrap_or(&[]);
            let _ = done.send(gzip::compress_block(&data, dictionary, level));
        });
        self.send(Item::Block {
            file: file_id,
            block,
        })?;
        self.progress.advanced(self.replica_set, bson, documents);
        Ok(())
    }

    fn end_file(&mut self, index: usize) -> Result<(), SourceError> {
        self.dispatch(index)?;
        let Some(writer) = self.open.get_mut(&index) else {
            return Ok(());
        };
        writer.previous = None;
        let time_series = writer.unpacker.is_some();
        if let Some(file) = writer.file.take() {
            self.send(Item::FileEnd {
                file: file.id,
                documents: file.documents,
                buckets: time_series.then_some(file.buckets),
            })?;
        }
        Ok(())
    }

    fn start_file(&mut self, index: usize) -> Result<(), SourceError> {
        let info = self.info(index)?;
        let (db, name) = (info.db.clone(), info.name.clone());
        let id = self.next_file;
        self.next_file += 1;
        let Some(writer) = self.open.get_mut(&index) else {
            return Ok(());
        };
        let number = writer.next_file_number;
        writer.next_file_number += 1;
        writer.file = Some(OpenFile {
            id,
            json_bytes: 0,
            documents: 0,
            buckets: 0,
        });
        let file_name = format!("{}.{number}.json.gz", self.replica_set);
        let key = relative_key(&[&db, &name, &file_name]);
        self.send(Item::FileStart {
            file: id,
            collection: index,
            key,
        })
    }
}

impl Encoder<'_> {
    /// Appends `doc` as one line of the collection's current file (starting a file when needed,
    /// a new one when the line would overflow it). `bson` is the source bytes it stands for
    /// (for progress); `first_of_bucket` counts a bucket in the file its first measurement
    /// lands in. An invalid document writes nothing.
    fn write_line(
        &mut self,
        index: usize,
        doc: &[u8],
        bson: u64,
        first_of_bucket: bool,
    ) -> Result<Line, SourceError> {
        let (format, chunk_size) = (self.options.format, self.options.chunk_size);
        let Some(writer) = self.open.get_mut(&index) else {
            return Err(SourceError::Stopped(format!(
                "document for collection {index} outside begin/end"
            )));
        };
        let start = writer.block.len();
        if let Err(error) = extjson::write_document(doc, format, &mut writer.block) {
            return Ok(Line::Invalid(error));
        }
        // The encoder validated the document: the walk cannot fail on it.
        if let Err(error) = self.totals.schemas.entry(index).or_default().observe(doc) {
            writer.block.truncate(start);
            return Ok(Line::Invalid(extjson::EncodeError {
                offset: error.0,
                message: error.to_string(),
            }));
        }
        writer.block.push(b'\n');
        let line = (writer.block.len() - start) as u64;
        let in_file = writer.file.as_ref().map(|f| f.json_bytes).unwrap_or(0) + start as u64;
        if writer.file.is_some() && in_file > 0 && in_file + line > chunk_size {
            // This line would overflow the file: what came before it closes the file, the
            // line opens the next one. A document never spans two files.
            let line_bytes = writer.block.split_off(start);
            self.end_file(index)?;
            if let Some(writer) = self.open.get_mut(&index) {
                writer.block = line_bytes;
            }
        }
        if self.open.get(&index).is_some_and(|w| w.file.is_none()) {
            self.start_file(index)?;
        }
        self.totals.documents += 1;
        self.totals.bson_bytes += bson;
        let Some(writer) = self.open.get_mut(&index) else {
            return Ok(Line::Written);
        };
        writer.block_bson += bson;
        writer.block_documents += 1;
        if let Some(file) = writer.file.as_mut() {
            file.json_bytes += line;
            file.documents += 1;
            file.buckets += u64::from(first_of_bucket);
        }
        if writer.block.len() >= BLOCK_SIZE {
            self.dispatch(index)?;
        }
        Ok(Line::Written)
    }

    /// Writes the measurements of one time-series bucket. An invalid bucket fails the export,
    /// naming the collection, the bucket's `_id` and the field; with `--skip-invalid` it is
    /// checked whole first (structure and every measurement's encoding), so that it is skipped
    /// whole and counted, never written in part.
    fn bucket(
        &mut self,
        index: usize,
        unpacker: &mut Unpacker,
        doc: &[u8],
        offset: u64,
    ) -> Result<(), SourceError> {
        let format = self.options.format;
        if self.options.skip_invalid {
            let mut scratch = std::mem::take(&mut self.scratch);
            let checked = unpacker.unpack(doc, |m| {
                scratch.clear();
                extjson::write_document(m, format, &mut scratch)
            });
            self.scratch = scratch;
            if let Err(error) = checked {
                self.totals.skipped_invalid_buckets += 1;
                let info = self.info(index)?;
                let message = match error {
                    UnpackError::Bucket(e) => e.to_string(),
                    UnpackError::Emit(e) => invalid_measurement(doc, &e),
                };
                tracing::warn!(
                    replica_set = self.replica_set,
                    collection = %info.namespace(),
                    object = %info.source_object,
                    offset,
                    error = %message,
                    "invalid bucket skipped"
                );
                return Ok(());
            }
        }
        let mut first = true;
        let mut bson = doc.len() as u64;
        let written = unpacker.unpack(doc, |measurement| {
            // The bucket's bytes count once, with its first measurement.
            let line = self
                .write_line(index, measurement, std::mem::take(&mut bson), first)
                .map_err(BucketStop::Source)?;
            first = false;
            match line {
                Line::Written => Ok(()),
                Line::Invalid(e) => Err(BucketStop::Measurement(e)),
            }
        });
        let message = match written {
            Ok(_) => {
                self.totals.buckets += 1;
                self.totals.bson_bytes += bson;
                return Ok(());
            }
            Err(UnpackError::Emit(BucketStop::Source(e))) => return Err(e),
            Err(UnpackError::Bucket(e)) => e.to_string(),
            Err(UnpackError::Emit(BucketStop::Measurement(e))) => invalid_measurement(doc, &e),
        };
        let info = self.info(index)?;
        Err(SourceError::Corrupt {
            object: info.source_object.clone(),
            offset,
            message: format!(
                "invalid bucket in time-series collection {}: {message}",
                info.namespace()
            ),
        })
    }
}

/// A measurement whose value does not encode: its bucket is invalid.
fn invalid_measurement(bucket: &[u8], error: &extjson::EncodeError) -> String {
    format!(
        "bucket {}: a measurement does not encode: {}",
        timeseries::bucket::bucket_id(bucket),
        error.message
    )
}

/// The unpacker of a time-series collection, from its metadata's `options.timeseries`.
pub(super) fn unpacker_for(info: &CollectionInfo) -> Result<Unpacker, SourceError> {
    let options = info
        .metadata
        .as_ref()
        .ok_or(timeseries::OptionsError::NoMetadata)
        .and_then(TimeseriesOptions::from_metadata)
        .map_err(|e| SourceError::Invalid {
            object: info.source_object.clone(),
            message: format!(
                "time-series collection {} cannot be unpacked: {e}",
                info.namespace()
            ),
        })?;
    Ok(Unpacker::new(options))
}

impl Visitor for Encoder<'_> {
    fn begin(&mut self, index: usize) -> Result<(), SourceError> {
        // An empty collection has a schema too (no fields).
        self.totals.schemas.entry(index).or_default();
        let info = self.info(index)?;
        self.progress.collection_started(
            self.replica_set,
            &format!("{}.{}", info.db, info.name),
            info.bson_bytes,
        );
        let unpacker = match info.kind {
            CollectionKind::Timeseries => Some(unpacker_for(info)?),
            _ => None,
        };
        self.open.insert(
            index,
            CollectionWriter {
                file: None,
                next_file_number: 0,
                block: Vec::with_capacity(BLOCK_SIZE + BLOCK_SIZE / 8),
                block_bson: 0,
                block_documents: 0,
                previous: None,
                unpacker,
            },
        );
        Ok(())
    }

    fn document(&mut self, index: usize, doc: &[u8], offset: u64) -> Result<(), SourceError> {
        if self.stop.is_cancelled() {
            return Err(SourceError::Stopped("stopped".into()));
        }
        let Some(writer) = self.open.get_mut(&index) else {
            return Err(SourceError::Stopped(format!(
                "document for collection {index} outside begin/end"
            )));
        };
        if let Some(unpacker) = writer.unpacker.take() {
            // Out of the writer while its measurements are written through `self`.
            let mut unpacker = unpacker;
            let result = self.bucket(index, &mut unpacker, doc, offset);
            if let Some(writer) = self.open.get_mut(&index) {
                writer.unpacker = Some(unpacker);
            }
            return result;
        }
        match self.write_line(index, doc, doc.len() as u64, false)? {
            Line::Written => Ok(()),
            Line::Invalid(error) => {
                let info = self.info(index)?.clone();
                if self.options.skip_invalid {
                    self.totals.skipped_invalid += 1;
                    tracing::warn!(
                        replica_set = self.replica_set,
                        collection = %info.namespace(),
                        object = %info.source_object,
                        offset = offset + error.offset as u64,
                        error = %error.message,
                        "invalid document skipped"
                    );
                    return Ok(());
                }
                Err(SourceError::Corrupt {
                    object: info.source_object.clone(),
                    offset: offset + error.offset as u64,
                    message: format!(
                        "invalid document in collection {}: {}",
                        info.namespace(),
                        error.message
                    ),
                })
            }
        }
    }

    fn skipped(&mut self, namespace: &str, reason: &str) -> Result<(), SourceError> {
        self.totals
            .skipped
            .push((namespace.to_string(), reason.to_string()));
        Ok(())
    }

    fn end(&mut self, index: usize) -> Result<(), SourceError> {
        self.end_file(index)?;
        self.open.remove(&index);
        let info = self.info(index)?;
        let metadata = metadata_json(info).map_err(|e| SourceError::Invalid {
            object: info.source_object.clone(),
            message: format!(
                "cannot write the metadata of {}.{}: {e}",
                info.db, info.name
            ),
        })?;
        self.send(Item::CollectionEnd {
            collection: index,
            metadata,
        })
    }
}

/// Where a replica set's `metadata.json` files go (what [`put_metadata`] needs).
pub(super) struct MetadataTarget<'a> {
    pub handle: &'a Handle,
    pub stop: &'a CancellationToken,
    pub store: &'a Arc<dyn object_store::ObjectStore>,
    pub base: &'a Path,
    pub replica_set: &'a str,
}

/// Writes a collection's `metadata.json` and returns its manifest entry. Both pipelines (JSON
/// and Parquet) write it the same way; a failure names the object's path.
pub(super) fn put_metadata(
    target: &MetadataTarget<'_>,
    info: &CollectionInfo,
    collection: String,
    metadata: Vec<u8>,
) -> Result<ManifestObject, (String, object_store::Error)> {
    let key = relative_key(&[&info.db, &info.name, "metadata.json"]);
    let path = join(target.base, &key);
    let sha256 = hex::encode(Sha256::digest(&metadata));
    let bytes = metadata.len() as u64;
    block_on_or_stop(
        target.handle,
        target.stop,
        object_store::ObjectStoreExt::put(target.store.as_ref(), &path, metadata.into()),
    )
    .map_err(|source| (path.to_string(), source))?;
    Ok(ManifestObject {
        key,
        bytes,
        uncompressed_bytes: bytes,
        documents: 0,
        buckets: None,
        replica_set: target.replica_set.to_string(),
        collection,
        sha256,
    })
}

/// `metadata.json`: mongodump's shape in canonical Extended JSON (PRODUCT.md §2).
pub(super) fn metadata_json(info: &CollectionInfo) -> Result<Vec<u8>, extjson::EncodeError> {
    let source = info.metadata.as_ref();
    let field = |name: &str| source.and_then(|m| m.get(name)).cloned();
    let mut doc = bson::Document::new();
    if let Some(options) = field("options") {
        doc.insert("options", options);
    }
    doc.insert(
        "indexes",
        field("indexes").unwrap_or_else(|| bson::Bson::Array(Vec::new())),
    );
    if let Some(uuid) = field("uuid") {
        doc.insert("uuid", uuid);
    }
    doc.insert("collectionName", info.name.clone());
    if let Some(kind) = field("type") {
        doc.insert("type", kind);
    }
    let mut out = Vec::new();
    extjson::write_bson_document(&doc, Format::Canonical, &mut out)?;
    Ok(out)
}

struct FileState {
    key: String,
    collection: usize,
    upload: Upload,
    sha: Sha256,
    crc: crc32fast::Hasher,
    uncompressed: u64,
    bytes: u64,
}

/// Why the writer thread stopped.
#[derive(Debug, thiserror::Error)]
pub(super) enum WriteError {
    #[error("stopped")]
    Stopped,
    #[error("the reader stopped before the end of the snapshot")]
    ReaderGone,
    #[error("a compression task was lost")]
    CompressionLost,
    #[error(transparent)]
    Compression(#[from] GzipError),
    #[error("writing {path}")]
    Object {
        path: String,
        #[source]
        source: object_store::Error,
    },
    /// A message out of order between the reader and the writer: a bug, reported not panicked.
    #[error("{0} (a bug)")]
    Invariant(String),
}

impl WriteError {
    fn object(path: &Path) -> impl FnOnce(object_store::Error) -> WriteError + '_ {
        move |source| WriteError::Object {
            path: path.to_string(),
            source,
        }
    }
}

impl FileState {
    fn write(&mut self, handle: &Handle, data: &[u8]) -> Result<(), WriteError> {
        self.sha.update(data);
        self.bytes += data.len() as u64;
        let path = self.upload.path().clone();
        self.upload
            .write(handle, data)
            .map_err(WriteError::object(&path))
    }
}

/// Writes every object in order; returns the manifest entries and the count of exported
/// collections. On any error, in-flight multipart uploads are aborted.
#[allow(clippy::too_many_arguments)]
fn write_objects(
    mut rx: mpsc::Receiver<Item>,
    handle: &Handle,
    store: &Arc<dyn object_store::ObjectStore>,
    base: &Path,
    replica_set: &str,
    collections: &[CollectionInfo],
    progress: &dyn Progress,
    stop: &CancellationToken,
) -> Result<(Vec<ManifestObject>, u64), WriteError> {
    // WriteMultipart spawns part uploads onto the runtime from this thread.
    let _runtime = handle.enter();
    let mut files: HashMap<u64, FileState> = HashMap::new();
    let mut objects = Vec::new();
    let mut exported = 0u64;
    let namespace = |index: usize| {
        collections
            .get(index)
            .map(|c| format!("{}.{}", c.db, c.name))
            .unwrap_or_default()
    };
    let result: Result<(), WriteError> = (|| {
        loop {
            let item = handle.block_on(async {
                tokio::select! {
                    item = rx.recv() => Ok(item),
                    _ = stop.cancelled() => Err(WriteError::Stopped),
                }
            })?;
            let Some(item) = item else {
                return Err(WriteError::ReaderGone);
            };
            match item {
                Item::FileStart {
                    file,
                    collection,
                    key,
                } => {
                    let path = join(base, &key);
                    let mut state = FileState {
                        key,
                        collection,
                        upload: Upload::new(store.clone(), path, stop.clone()),
                        sha: Sha256::new(),
                        crc: crc32fast::Hasher::new(),
                        uncompressed: 0,
                        bytes: 0,
                    };
                    state.write(handle, &gzip::HEADER)?;
                    files.insert(file, state);
                }
                Item::Block { file, block } => {
                    let block = block
                        .blocking_recv()
                        .map_err(|_| WriteError::CompressionLost)??;
                    let state = files.get_mut(&file).ok_or_else(|| {
                        WriteError::Invariant(format!("block for unknown file {file}"))
                    })?;
                    state.crc.combine(&block.crc);
                    state.uncompressed += block.uncompressed_len;
                    state.write(handle, &block.data)?;
                }
                Item::FileEnd {
                    file,
                    documents,
                    buckets,
                } => {
                    let mut state = files.remove(&file).ok_or_else(|| {
                        WriteError::Invariant(format!("end of unknown file {file}"))
                    })?;
                    let trailer = gzip::trailer(&state.crc, state.uncompressed);
                    if let Err(e) = state.write(handle, &trailer) {
                        state.upload.abort(handle);
                        return Err(e);
                    }
                    let path = state.upload.path().clone();
                    state
                        .upload
                        .finish(handle)
                        .map_err(WriteError::object(&path))?;
                    objects.push(ManifestObject {
                        key: state.key,
                        bytes: state.bytes,
                        uncompressed_bytes: state.uncompressed,
                        documents,
                        buckets,
                        replica_set: replica_set.to_string(),
                        collection: namespace(state.collection),
                        sha256: hex::encode(state.sha.finalize()),
                    });
                }
                Item::CollectionEnd {
                    collection,
                    metadata,
                } => {
                    let info = collections.get(collection).ok_or_else(|| {
                        WriteError::Invariant(format!("unknown collection {collection}"))
                    })?;
                    let target = MetadataTarget {
                        handle,
                        stop,
                        store,
                        base,
                        replica_set,
                    };
                    let object = put_metadata(&target, info, namespace(collection), metadata)
                        .map_err(|(path, source)| WriteError::Object { path, source })?;
                    objects.push(object);
                    exported += 1;
                    progress.collection_finished(replica_set, &namespace(collection));
                }
                Item::Done => return Ok(()),
            }
        }
    })();
    if let Err(error) = result {
        for (_, state) in files.drain() {
            state.upload.abort(handle);
        }
        return Err(error);
    }
    Ok((objects, exported))
}

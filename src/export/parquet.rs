//! `--format parquet`: one replica set's part as Parquet files with an inferred schema.
//!
//! ```text
//!  pass 1 (reader thread)                 pass 2 (reader thread)              writer thread
//!  source.read → validate, Stats per  ──▶ source.read → Rows (Arrow builders) ──▶ ArrowWriter per file
//!  collection (schema.rs)                 cut into batches ──RecordBatch──▶     → Upload (multipart)
//! ```
//!
//! The schema of a collection is known only after its last document (see [`super::schema`]),
//! and a Parquet file's schema is written before its rows can be read back, so the source is
//! read twice: once to infer, once to write. Memory stays bounded: a batch holds at most
//! [`BATCH_ROWS`] rows or [`BATCH_BSON_BYTES`] of source BSON (an eighth of the chunk size when
//! that is smaller, so that files are cut close to it), the channel a few batches, and
//! the Parquet writer one row group, flushed early when its buffered size passes
//! [`ROW_GROUP_BYTES`]. Files are cut like the JSON chunks: a new file starts once the current
//! one reaches the chunk size (checked after each batch, so a file ends up to one batch
//! over). Invalid documents found in pass 1 are remembered by offset and skipped in pass 2
//! (`--skip-invalid`); without it pass 1 fails the export before anything is written.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::WriterProperties;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, TimeUnit};
use object_store::path::Path;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::replica_set::{
    MetadataTarget, base_path, join, metadata_json, put_metadata, relative_key, unpacker_for,
};
use super::schema::{self, Column, Kind, Nulls, Stats};
use super::upload::Upload;
use super::workers;
use super::{
    CollectionSchema, ExportError, ExportOptions, ExportTarget, ManifestObject, Progress,
    ReplicaSetSummary, SkippedCollection,
};
use crate::extjson::{self, Format};
use crate::snapshot::{CollectionInfo, CollectionKind, SnapshotSource, SourceError, Visitor};
use crate::timeseries::{UnpackError, Unpacker};

/// Rows per batch handed to the writer.
pub const BATCH_ROWS: usize = 16 * 1024;
/// Source BSON bytes per batch: bounds a batch of large documents.
pub const BATCH_BSON_BYTES: u64 = 8 * 1024 * 1024;
/// A row group is flushed once the writer buffers this much, whatever its row count.
pub const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Column compression of Parquet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetCompression {
    #[default]
    Zstd,
    Snappy,
}

impl std::str::FromStr for ParquetCompression {
    type Err = UnknownCompression;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "zstd" => Ok(ParquetCompression::Zstd),
            "snappy" => Ok(ParquetCompression::Snappy),
            _ => Err(UnknownCompression(s.to_string())),
        }
    }
}

impl ParquetCompression {
    pub fn as_str(self) -> &'static str {
        match self {
            ParquetCompression::Zstd => "zstd",
            ParquetCompression::Snappy => "snappy",
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("unknown parquet compression {0:?}, expected \"zstd\" or \"snappy\"")]
pub struct UnknownCompression(pub String);

/// Parquet settings of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetOptions {
    /// Rows per row group at most.
    pub row_group_rows: usize,
    pub compression: ParquetCompression,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            row_group_rows: 128 * 1024,
            compression: ParquetCompression::Zstd,
        }
    }
}

/// Why a row could not be built: a document that does not fit the schema its own collection's
/// pass 1 inferred, which is a bug (or a source that changed between the two reads).
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("field {0:?} is not in the inferred schema")]
    UnknownField(String),
    #[error("field {field:?}: BSON {found} where the schema has {expected:?}")]
    Mismatch {
        field: String,
        found: &'static str,
        expected: String,
    },
    #[error("field {0:?} twice in one document")]
    Twice(String),
    #[error(transparent)]
    Malformed(#[from] schema::Malformed),
    #[error("invalid bucket: {0}")]
    Bucket(String),
    #[error(transparent)]
    Encode(#[from] extjson::EncodeError),
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// The Arrow field of a column, with the BSON mapping in its metadata (`snapex.bson`,
/// `snapex.nullMeans`), which Parquet keeps in the embedded Arrow schema.
fn arrow_field(column: &Column) -> Field {
    let data_type = match &column.kind {
        Kind::Bool => DataType::Boolean,
        Kind::Int32 => DataType::Int32,
        Kind::Int64 => DataType::Int64,
        Kind::Double => DataType::Float64,
        Kind::String | Kind::ObjectIdHex | Kind::DecimalString | Kind::Json => DataType::Utf8,
        Kind::Date => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        Kind::Binary { .. } => DataType::Binary,
        Kind::Decimal { scale } => DataType::Decimal128(38, *scale),
        Kind::Struct(children) => {
            DataType::Struct(children.iter().map(arrow_field).collect::<Fields>())
        }
        Kind::List(element) => DataType::List(Arc::new(arrow_field(element))),
    };
    let bson = match &column.kind {
        Kind::Bool => "bool".to_string(),
        Kind::Int32 => "int".into(),
        Kind::Int64 => "long".into(),
        Kind::Double => "double".into(),
        Kind::String => "string".into(),
        Kind::ObjectIdHex => "objectId (hex)".into(),
        Kind::Date => "date".into(),
        Kind::Binary { subtype } => format!("binData (subtype {subtype})"),
        Kind::Decimal { .. } => "decimal".into(),
        Kind::DecimalString => "decimal (text)".into(),
        Kind::Struct(_) => "object".into(),
        Kind::List(_) => "array".into(),
        Kind::Json => "any (canonical extended json)".into(),
    };
    let nulls = match column.nulls {
        Nulls::Never => "never null",
        Nulls::Missing => "missing",
        Nulls::Null => "null",
    };
    Field::new(&column.name, data_type, true).with_metadata(HashMap::from([
        ("snapex.bson".to_string(), bson),
        ("snapex.nullMeans".to_string(), nulls.to_string()),
    ]))
}

/// The Arrow schema of a collection's rows.
pub fn arrow_schema(columns: &[Column]) -> Schema {
    Schema::new(columns.iter().map(arrow_field).collect::<Fields>())
}

/// Builds one column's values.
enum Builder {
    Bool(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Double(Float64Builder),
    /// Utf8 columns: strings, ObjectId hex, decimal text, JSON.
    Text(StringBuilder, TextKind),
    Date(TimestampMillisecondBuilder),
    Binary(BinaryBuilder),
    Decimal(Decimal128Builder, u8),
    Struct(Box<StructBuilder>),
    List(Box<ListBuilder>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TextKind {
    String,
    ObjectId,
    Decimal,
    Json,
}

struct StructBuilder {
    fields: Fields,
    names: Vec<String>,
    children: Vec<Builder>,
    index: HashMap<Box<[u8]>, usize>,
    set: Vec<bool>,
    nulls: NullBufferBuilder,
}

struct ListBuilder {
    field: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    element: Builder,
}

impl StructBuilder {
    fn new(columns: &[Column]) -> Result<Self, RowError> {
        let children = columns
            .iter()
            .map(Builder::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StructBuilder {
            fields: columns.iter().map(arrow_field).collect(),
            names: columns.iter().map(|c| c.name.clone()).collect(),
            index: columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.as_bytes().to_vec().into_boxed_slice(), i))
                .collect(),
            set: vec![false; columns.len()],
            children,
            nulls: NullBufferBuilder::new(0),
        })
    }

    /// Appends a document's fields; fields it lacks are null (missing).
    fn append_document(&mut self, doc: &[u8], scratch: &mut Vec<u8>) -> Result<(), RowError> {
        self.set.iter_mut().for_each(|s| *s = false);
        for element in schema::elements(doc) {
            let element = element?;
            let Some(&i) = self.index.get(element.key) else {
                return Err(RowError::UnknownField(
                    String::from_utf8_lossy(element.key).into_owned(),
                ));
            };
            if self.set[i] {
                return Err(RowError::Twice(self.names[i].clone()));
            }
            self.set[i] = true;
            self.children[i].append(&self.names[i], element.tag, element.value, scratch)?;
        }
        for (i, child) in self.children.iter_mut().enumerate() {
            if !self.set[i] {
                child.append_null();
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    fn append_null(&mut self) {
        for child in &mut self.children {
            child.append_null();
        }
        self.nulls.append_null();
    }

    fn finish(&mut self) -> Result<StructArray, RowError> {
        let arrays = self
            .children
            .iter_mut()
            .map(Builder::finish)
            .collect::<Result<Vec<_>, _>>()?;
        let len = self.nulls.len();
        let nulls = self.nulls.finish();
        if self.fields.is_empty() {
            return Ok(StructArray::new_empty_fields(len, nulls));
        }
        Ok(StructArray::try_new(self.fields.clone(), arrays, nulls)?)
    }
}

impl Builder {
    fn new(column: &Column) -> Result<Self, RowError> {
        Ok(match &column.kind {
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::Int32 => Builder::Int32(Int32Builder::new()),
            Kind::Int64 => Builder::Int64(Int64Builder::new()),
            Kind::Double => Builder::Double(Float64Builder::new()),
            Kind::String => Builder::Text(StringBuilder::new(), TextKind::String),
            Kind::ObjectIdHex => Builder::Text(StringBuilder::new(), TextKind::ObjectId),
            Kind::DecimalString => Builder::Text(StringBuilder::new(), TextKind::Decimal),
            Kind::Json => Builder::Text(StringBuilder::new(), TextKind::Json),
            Kind::Date => Builder::Date(TimestampMillisecondBuilder::new().with_timezone("UTC")),
            Kind::Binary { .. } => Builder::Binary(BinaryBuilder::new()),
            Kind::Decimal { scale } => Builder::Decimal(
                Decimal128Builder::new().with_precision_and_scale(38, *scale)?,
                // Scale is 0..=38 by construction.
                (*scale).max(0) as u8,
            ),
            Kind::Struct(children) => Builder::Struct(Box::new(StructBuilder::new(children)?)),
            Kind::List(element) => Builder::List(Box::new(ListBuilder {
                field: Arc::new(arrow_field(element)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                element: Builder::new(element)?,
            })),
        })
    }

    fn expected(&self) -> &'static str {
        match self {
            Builder::Bool(_) => "bool",
            Builder::Int32(_) => "int",
            Builder::Int64(_) => "long",
            Builder::Double(_) => "double",
            Builder::Text(_, TextKind::String) => "string",
            Builder::Text(_, TextKind::ObjectId) => "objectId",
            Builder::Text(_, TextKind::Decimal) | Builder::Decimal(..) => "decimal",
            Builder::Text(_, TextKind::Json) => "any",
            Builder::Date(_) => "date",
            Builder::Binary(_) => "binData",
            Builder::Struct(_) => "object",
            Builder::List(_) => "array",
        }
    }

    fn append(
        &mut self,
        name: &str,
        tag: u8,
        value: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), RowError> {
        let mismatch = |b: &Builder| RowError::Mismatch {
            field: name.to_string(),
            found: schema::type_name(tag),
            expected: b.expected().to_string(),
        };
        if tag == 0x0A && !matches!(self, Builder::Text(_, TextKind::Json)) {
            // BSON null in a column whose nulls mean null (the schema says so).
            self.append_null();
            return Ok(());
        }
        let le8 = |v: &[u8]| -> [u8; 8] {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v[..8]);
            b
        };
        match (&mut *self, tag) {
            (Builder::Bool(b), 0x08) => b.append_value(value.first() == Some(&1)),
            (Builder::Int32(b), 0x10) if value.len() == 4 => {
                b.append_value(i32::from_le_bytes([value[0], value[1], value[2], value[3]]))
            }
            (Builder::Int64(b), 0x12) if value.len() == 8 => {
                b.append_value(i64::from_le_bytes(le8(value)))
            }
            (Builder::Double(b), 0x01) if value.len() == 8 => {
                b.append_value(f64::from_le_bytes(le8(value)))
            }
            (Builder::Date(b), 0x09) if value.len() == 8 => {
                b.append_value(i64::from_le_bytes(le8(value)))
            }
            (Builder::Text(b, TextKind::String), 0x02) => {
                // A BSON string: i32 length, bytes, NUL; validated as UTF-8 by pass 1.
                let text = value.get(4..value.len().saturating_sub(1)).unwrap_or(&[]);
                let text = std::str::from_utf8(text)
                    .map_err(|_| mismatch(&Builder::Bool(BooleanBuilder::new())))?;
                b.append_value(text);
            }
            (Builder::Text(b, TextKind::ObjectId), 0x07) => {
                let mut hex = [0u8; 24];
                hex::encode_to_slice(value, &mut hex).map_err(|_| schema::Malformed(0))?;
                // Hex digits are ASCII.
                b.append_value(std::str::from_utf8(&hex).unwrap_or_default());
            }
            (Builder::Text(b, TextKind::Decimal), 0x13) => {
                let bytes: &[u8; 16] = value.try_into().map_err(|_| schema::Malformed(0))?;
                scratch.clear();
                extjson::write_decimal128_text(bytes, scratch);
                b.append_value(std::str::from_utf8(scratch).unwrap_or_default());
            }
            (Builder::Text(b, TextKind::Json), _) => {
                scratch.clear();
                extjson::write_value(tag, value, Format::Canonical, scratch)?;
                b.append_value(std::str::from_utf8(scratch).unwrap_or_default());
            }
            (Builder::Binary(b), 0x05) => {
                // i32 length, subtype, bytes.
                b.append_value(value.get(5..).unwrap_or(&[]));
            }
            (Builder::Decimal(b, scale), 0x13) => {
                let bytes: &[u8; 16] = value.try_into().map_err(|_| schema::Malformed(0))?;
                match schema::decimal_parts(bytes) {
                    Some((negative, coefficient, exponent)) if -exponent == i32::from(*scale) => {
                        // At most 10^34 - 1: fits an i128.
                        let v = coefficient as i128;
                        b.append_value(if negative { -v } else { v });
                    }
                    _ => return Err(mismatch(self)),
                }
            }
            (Builder::Struct(s), 0x03) => s.append_document(value, scratch)?,
            (Builder::List(l), 0x04) => {
                for element in schema::elements(value) {
                    let element = element?;
                    l.element
                        .append(name, element.tag, element.value, scratch)?;
                }
                let len = l.element.len();
                l.offsets.push(
                    i32::try_from(len).map_err(|_| {
                        arrow_schema::ArrowError::ComputeError("list too long".into())
                    })?,
                );
                l.nulls.append_non_null();
            }
            _ => return Err(mismatch(self)),
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Double(b) => b.append_null(),
            Builder::Text(b, _) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
            Builder::Decimal(b, _) => b.append_null(),
            Builder::Struct(s) => s.append_null(),
            Builder::List(l) => {
                let last = l.offsets.last().copied().unwrap_or(0);
                l.offsets.push(last);
                l.nulls.append_null();
            }
        }
    }

    fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match self {
            Builder::Bool(b) => b.len(),
            Builder::Int32(b) => b.len(),
            Builder::Int64(b) => b.len(),
            Builder::Double(b) => b.len(),
            Builder::Text(b, _) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Binary(b) => b.len(),
            Builder::Decimal(b, _) => b.len(),
            Builder::Struct(s) => s.nulls.len(),
            Builder::List(l) => l.nulls.len(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, RowError> {
        Ok(match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Double(b) => Arc::new(b.finish()),
            Builder::Text(b, _) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Binary(b) => Arc::new(b.finish()),
            Builder::Decimal(b, _) => Arc::new(b.finish()),
            Builder::Struct(s) => Arc::new(s.finish()?),
            Builder::List(l) => {
                let values = l.element.finish()?;
                let offsets = std::mem::replace(&mut l.offsets, vec![0]);
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(ListArray::try_new(
                    l.field.clone(),
                    offsets,
                    values,
                    l.nulls.finish(),
                )?)
            }
        })
    }
}

/// A collection's rows being built into batches.
pub struct Rows {
    schema: Arc<Schema>,
    /// `None` for a collection whose top level is one JSON column.
    root: Option<StructBuilder>,
    document: StringBuilder,
    rows: usize,
    bson: u64,
    scratch: Vec<u8>,
}

impl Rows {
    pub fn new(columns: &[Column]) -> Result<Self, RowError> {
        let whole =
            matches!(columns, [c] if c.name == schema::DOCUMENT_COLUMN && c.kind == Kind::Json);
        Ok(Rows {
            schema: Arc::new(arrow_schema(columns)),
            root: if whole {
                None
            } else {
                Some(StructBuilder::new(columns)?)
            },
            document: StringBuilder::new(),
            rows: 0,
            bson: 0,
            scratch: Vec::new(),
        })
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Appends one document as a row.
    pub fn append(&mut self, doc: &[u8]) -> Result<(), RowError> {
        match &mut self.root {
            Some(root) => root.append_document(doc, &mut self.scratch)?,
            None => {
                self.scratch.clear();
                extjson::write_document(doc, Format::Canonical, &mut self.scratch)?;
                self.document
                    .append_value(std::str::from_utf8(&self.scratch).unwrap_or_default());
            }
        }
        self.rows += 1;
        self.bson += doc.len() as u64;
        Ok(())
    }

    /// Whether the batch is full: [`BATCH_ROWS`] rows, or `bson_limit` bytes of source BSON.
    pub fn full(&self, bson_limit: u64) -> bool {
        self.rows >= BATCH_ROWS || self.bson >= bson_limit
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The rows so far as one batch; the builder starts over.
    pub fn finish(&mut self) -> Result<RecordBatch, RowError> {
        let rows = std::mem::take(&mut self.rows);
        self.bson = 0;
        let columns: Vec<ArrayRef> = match &mut self.root {
            Some(root) => {
                let array = root.finish()?;
                let (_, columns, _) = array.into_parts();
                columns
            }
            None => vec![Arc::new(self.document.finish())],
        };
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?)
    }
}

/// The writer properties of an export's files.
fn properties(options: &ParquetOptions) -> WriterProperties {
    let compression = match options.compression {
        ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
        ParquetCompression::Snappy => Compression::SNAPPY,
    };
    WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_created_by(format!("snapex {}", env!("CARGO_PKG_VERSION")))
        .build()
}

// ---------------------------------------------------------------------------------------------
// Pass 1: inference.

/// What pass 1 learned of a replica set.
#[derive(Default)]
struct Inferred {
    stats: HashMap<usize, Stats>,
    /// Invalid documents (and time-series buckets) by collection and offset, skipped in pass 2.
    invalid: HashSet<(usize, u64)>,
    skipped_invalid: u64,
    skipped_invalid_buckets: u64,
}

struct Infer<'a> {
    collections: &'a [CollectionInfo],
    skip_invalid: bool,
    stop: &'a CancellationToken,
    replica_set: &'a str,
    unpackers: HashMap<usize, Unpacker>,
    out: Inferred,
    scratch: Vec<u8>,
}

impl Infer<'_> {
    fn info(&self, index: usize) -> Result<&CollectionInfo, SourceError> {
        self.collections
            .get(index)
            .ok_or_else(|| SourceError::Stopped(format!("unknown collection index {index}")))
    }

    fn invalid(
        &mut self,
        index: usize,
        offset: u64,
        message: String,
        bucket: bool,
    ) -> Result<(), SourceError> {
        let info = self.info(index)?.clone();
        if self.skip_invalid {
            if bucket {
                self.out.skipped_invalid_buckets += 1;
            } else {
                self.out.skipped_invalid += 1;
            }
            self.out.invalid.insert((index, offset));
            tracing::warn!(
                replica_set = self.replica_set,
                collection = %info.namespace(),
                object = %info.source_object,
                offset,
                error = %message,
                "invalid document skipped"
            );
            return Ok(());
        }
        Err(SourceError::Corrupt {
            object: info.source_object.clone(),
            offset,
            message: format!(
                "invalid document in collection {}: {message}",
                info.namespace()
            ),
        })
    }
}

impl Visitor for Infer<'_> {
    fn begin(&mut self, index: usize) -> Result<(), SourceError> {
        let info = self.info(index)?;
        if info.kind == CollectionKind::Timeseries {
            let unpacker = unpacker_for(info)?;
            self.unpackers.insert(index, unpacker);
        }
        self.out.stats.entry(index).or_default();
        Ok(())
    }

    fn document(&mut self, index: usize, doc: &[u8], offset: u64) -> Result<(), SourceError> {
        if self.stop.is_cancelled() {
            return Err(SourceError::Stopped("stopped".into()));
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let stats = self.out.stats.entry(index).or_default();
        let result = if let Some(unpacker) = self.unpackers.get_mut(&index) {
            // Pass 1 checks a bucket whole, so that pass 2 writes all of it or none.
            let mut local = Stats::new();
            let checked = unpacker.unpack(doc, |m| {
                scratch.clear();
                extjson::write_document(m, Format::Canonical, &mut scratch)
                    .map_err(|e| e.to_string())?;
                local.observe(m).map_err(|e| e.to_string())
            });
            match checked {
                Ok(_) => {
                    stats.merge(&local);
                    Ok(())
                }
                Err(UnpackError::Bucket(e)) => Err((e.to_string(), true)),
                Err(UnpackError::Emit(e)) => Err((e, true)),
            }
        } else {
            scratch.clear();
            match extjson::write_document(doc, Format::Canonical, &mut scratch) {
                Ok(()) => stats.observe(doc).map_err(|e| (e.to_string(), false)),
                Err(e) => Err((e.message, false)),
            }
        };
        self.scratch = scratch;
        match result {
            Ok(()) => Ok(()),
            Err((message, bucket)) => self.invalid(index, offset, message, bucket),
        }
    }

    fn end(&mut self, _index: usize) -> Result<(), SourceError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Pass 2: rows.

enum Item {
    Batch {
        collection: usize,
        batch: RecordBatch,
        schema: Arc<Schema>,
        /// Time-series: the buckets unpacked into this batch (`None`: not time-series). A
        /// batch ends between buckets, and a file between batches, so a bucket's measurements
        /// are all in one file, as in the JSON files' count.
        buckets: Option<u64>,
    },
    CollectionEnd {
        collection: usize,
        metadata: Vec<u8>,
    },
    Done,
}

struct Encode<'a> {
    replica_set: &'a str,
    collections: &'a [CollectionInfo],
    inferred: &'a Inferred,
    tx: mpsc::Sender<Item>,
    stop: &'a CancellationToken,
    progress: &'a dyn Progress,
    open: HashMap<usize, Rows>,
    unpackers: HashMap<usize, Unpacker>,
    /// Time-series: buckets with a measurement in the rows not yet sent, by collection.
    batch_buckets: HashMap<usize, u64>,
    documents: u64,
    bson_bytes: u64,
    buckets: u64,
    skipped: Vec<(String, String)>,
    chunk_size: u64,
}

impl Encode<'_> {
    fn info(&self, index: usize) -> Result<&CollectionInfo, SourceError> {
        self.collections
            .get(index)
            .ok_or_else(|| SourceError::Stopped(format!("unknown collection index {index}")))
    }

    fn send(&self, item: Item) -> Result<(), SourceError> {
        self.tx
            .blocking_send(item)
            .map_err(|_| SourceError::Stopped("the writer stopped".into()))
    }

    fn row_error(&self, index: usize, offset: u64, error: RowError) -> SourceError {
        let (object, namespace) = self
            .info(index)
            .map(|i| (i.source_object.clone(), i.namespace()))
            .unwrap_or_default();
        SourceError::Corrupt {
            object,
            offset,
            message: format!(
                "document of {namespace} does not fit the schema inferred from it (the source changed between the two reads?): {error}"
            ),
        }
    }

    fn flush(&mut self, index: usize) -> Result<(), SourceError> {
        let Some(rows) = self.open.get_mut(&index) else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        let (count, bson) = (rows.len() as u64, rows.bson);
        let schema = rows.schema().clone();
        let batch = rows.finish().map_err(|e| self.row_error(index, 0, e))?;
        let buckets = self
            .unpackers
            .contains_key(&index)
            .then(|| self.batch_buckets.remove(&index).unwrap_or(0));
        self.send(Item::Batch {
            collection: index,
            batch,
            schema,
            buckets,
        })?;
        self.progress.advanced(self.replica_set, bson, count);
        Ok(())
    }
}

impl Visitor for Encode<'_> {
    fn begin(&mut self, index: usize) -> Result<(), SourceError> {
        let info = self.info(index)?;
        self.progress
            .collection_started(self.replica_set, &info.namespace(), info.bson_bytes);
        if info.kind == CollectionKind::Timeseries {
            let unpacker = unpacker_for(info)?;
            self.unpackers.insert(index, unpacker);
        }
        let columns = self
            .inferred
            .stats
            .get(&index)
            .map(Stats::columns)
            .unwrap_or_default();
        let rows = Rows::new(&columns).map_err(|e| self.row_error(index, 0, e))?;
        self.open.insert(index, rows);
        Ok(())
    }

    fn document(&mut self, index: usize, doc: &[u8], offset: u64) -> Result<(), SourceError> {
        if self.stop.is_cancelled() {
            return Err(SourceError::Stopped("stopped".into()));
        }
        if self.inferred.invalid.contains(&(index, offset)) {
            return Ok(());
        }
        let Some(rows) = self.open.get_mut(&index) else {
            return Err(SourceError::Stopped(format!(
                "document for collection {index} outside begin/end"
            )));
        };
        let appended = if let Some(unpacker) = self.unpackers.get_mut(&index) {
            let mut n = 0u64;
            let result = unpacker.unpack(doc, |m| {
                n += 1;
                rows.append(m)
            });
            self.documents += n;
            self.buckets += 1;
            if n > 0 {
                *self.batch_buckets.entry(index).or_default() += 1;
            }
            match result {
                Ok(_) => Ok(()),
                Err(UnpackError::Emit(e)) => Err(e),
                // Pass 1 unpacked this bucket: it changed between the two reads.
                Err(UnpackError::Bucket(e)) => Err(RowError::Bucket(e.to_string())),
            }
        } else {
            self.documents += 1;
            rows.append(doc)
        };
        self.bson_bytes += doc.len() as u64;
        appended.map_err(|e| self.row_error(index, offset, e))?;
        // Files are cut between batches: small chunk sizes get small batches.
        let limit = (self.chunk_size / 8).clamp(64 * 1024, BATCH_BSON_BYTES);
        if self.open.get(&index).is_some_and(|rows| rows.full(limit)) {
            self.flush(index)?;
        }
        Ok(())
    }

    fn skipped(&mut self, namespace: &str, reason: &str) -> Result<(), SourceError> {
        self.skipped
            .push((namespace.to_string(), reason.to_string()));
        Ok(())
    }

    fn end(&mut self, index: usize) -> Result<(), SourceError> {
        self.flush(index)?;
        self.open.remove(&index);
        self.unpackers.remove(&index);
        self.batch_buckets.remove(&index);
        let info = self.info(index)?;
        let metadata = metadata_json(info).map_err(|e| SourceError::Invalid {
            object: info.source_object.clone(),
            message: format!("cannot write the metadata of {}: {e}", info.namespace()),
        })?;
        self.send(Item::CollectionEnd {
            collection: index,
            metadata,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The writer.

/// The bytes of a Parquet file on their way to the store, hashed and counted.
struct Sink<'a> {
    /// Taken out when the file is complete, to finish it; a sink dropped still holding it
    /// aborts it (see `Drop`).
    upload: Option<Upload>,
    handle: &'a Handle,
    sha: Sha256,
    bytes: u64,
}

/// A failing `ArrowWriter::into_inner` (the last row group and the footer go through the
/// upload) or `try_new` consumes the writer and drops its sink, and with it the only handle
/// on the file's multipart upload: aborting here is what makes every way out of an unfinished
/// file, those included, end in an abort. The sink lives on the writer thread (never inside
/// the runtime), where `Upload::abort` may block.
impl Drop for Sink<'_> {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            upload.abort(self.handle);
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let upload = self
            .upload
            .as_mut()
            .ok_or_else(|| std::io::Error::other("file abandoned"))?;
        upload
            .write(self.handle, data)
            .map_err(std::io::Error::other)?;
        self.sha.update(data);
        self.bytes += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct OpenFile<'a> {
    key: String,
    writer: ArrowWriter<Sink<'a>>,
    rows: u64,
    /// Time-series: the buckets whose measurements are in this file.
    buckets: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("stopped")]
    Stopped,
    #[error("the reader stopped before the end of the snapshot")]
    ReaderGone,
    #[error("writing {path}")]
    Parquet {
        path: String,
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    #[error("writing {path}")]
    Object {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{0} (a bug)")]
    Invariant(String),
}

struct Writer<'a> {
    handle: &'a Handle,
    store: &'a Arc<dyn object_store::ObjectStore>,
    base: &'a Path,
    replica_set: &'a str,
    collections: &'a [CollectionInfo],
    stop: &'a CancellationToken,
    properties: WriterProperties,
    chunk_size: u64,
    files: HashMap<usize, OpenFile<'a>>,
    numbers: HashMap<usize, u64>,
    objects: Vec<ManifestObject>,
}

impl<'a> Writer<'a> {
    fn namespace(&self, index: usize) -> String {
        self.collections
            .get(index)
            .map(|c| c.namespace())
            .unwrap_or_default()
    }

    fn open(&mut self, collection: usize, schema: Arc<Schema>) -> Result<(), WriteError> {
        let info = self
            .collections
            .get(collection)
            .ok_or_else(|| WriteError::Invariant(format!("unknown collection {collection}")))?;
        let number = self.numbers.entry(collection).or_insert(0);
        let file_name = format!("{}.{}.parquet", self.replica_set, *number);
        *number += 1;
        let key = relative_key(&[&info.db, &info.name, &file_name]);
        let path = join(self.base, &key);
        let sink = Sink {
            upload: Some(Upload::new(
                self.store.clone(),
                path.clone(),
                self.stop.clone(),
            )),
            handle: self.handle,
            sha: Sha256::new(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new(sink, schema, Some(self.properties.clone())).map_err(
            |source| WriteError::Parquet {
                path: path.to_string(),
                source,
            },
        )?;
        self.files.insert(
            collection,
            OpenFile {
                key,
                writer,
                rows: 0,
                buckets: None,
            },
        );
        Ok(())
    }

    fn close(&mut self, collection: usize) -> Result<(), WriteError> {
        let Some(file) = self.files.remove(&collection) else {
            return Ok(());
        };
        let path = file.key.clone();
        let parquet = |source| WriteError::Parquet {
            path: path.clone(),
            source,
        };
        // On failure the writer, and its sink, are dropped here: the sink aborts the upload.
        let mut sink = file.writer.into_inner().map_err(parquet)?;
        let sha = std::mem::take(&mut sink.sha);
        let bytes = sink.bytes;
        let upload = sink
            .upload
            .take()
            .ok_or_else(|| WriteError::Invariant("file abandoned".into()))?;
        drop(sink);
        let upload_path = upload.path().clone();
        upload
            .finish(self.handle)
            .map_err(|source| WriteError::Object {
                path: upload_path.to_string(),
                source,
            })?;
        self.objects.push(ManifestObject {
            key: file.key,
            bytes,
            uncompressed_bytes: bytes,
            documents: file.rows,
            buckets: file.buckets,
            replica_set: self.replica_set.to_string(),
            collection: self.namespace(collection),
            sha256: hex::encode(sha.finalize()),
        });
        Ok(())
    }

    fn batch(
        &mut self,
        collection: usize,
        batch: RecordBatch,
        schema: Arc<Schema>,
        buckets: Option<u64>,
    ) -> Result<(), WriteError> {
        if !self.files.contains_key(&collection) {
            self.open(collection, schema)?;
        }
        let Some(file) = self.files.get_mut(&collection) else {
            return Err(WriteError::Invariant("file not open".into()));
        };
        let path = file.key.clone();
        let parquet = |source| WriteError::Parquet {
            path: path.clone(),
            source,
        };
        file.rows += batch.num_rows() as u64;
        if let Some(buckets) = buckets {
            *file.buckets.get_or_insert(0) += buckets;
        }
        file.writer.write(&batch).map_err(parquet)?;
        if file.writer.in_progress_size() >= ROW_GROUP_BYTES {
            file.writer.flush().map_err(parquet)?;
        }
        let size = file.writer.bytes_written() as u64 + file.writer.in_progress_size() as u64;
        if size >= self.chunk_size {
            self.close(collection)?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        for (_, mut file) in self.files.drain() {
            // The footer is never written: the upload goes first (dropping the writer would
            // flush its buffered bytes into the upload before the sink aborts it).
            if let Some(upload) = file.writer.inner_mut().upload.take() {
                upload.abort(self.handle);
            }
        }
    }
}

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
    options: &ExportOptions,
) -> Result<(Vec<ManifestObject>, u64), WriteError> {
    let _runtime = handle.enter();
    let mut writer = Writer {
        handle,
        store,
        base,
        replica_set,
        collections,
        stop,
        properties: properties(&options.parquet),
        chunk_size: options.chunk_size,
        files: HashMap::new(),
        numbers: HashMap::new(),
        objects: Vec::new(),
    };
    let mut exported = 0u64;
    let result: Result<(), WriteError> = (|| {
        loop {
            let item = handle.block_on(async {
                tokio::select! {
                    item = rx.recv() => Ok(item),
                    _ = stop.cancelled() => Err(WriteError::Stopped),
                }
            })?;
            match item.ok_or(WriteError::ReaderGone)? {
                Item::Batch {
                    collection,
                    batch,
                    schema,
                    buckets,
                } => writer.batch(collection, batch, schema, buckets)?,
                Item::CollectionEnd {
                    collection,
                    metadata,
                } => {
                    writer.close(collection)?;
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
                    let object =
                        put_metadata(&target, info, writer.namespace(collection), metadata)
                            .map_err(|(path, source)| WriteError::Object { path, source })?;
                    writer.objects.push(object);
                    exported += 1;
                    progress.collection_finished(replica_set, &writer.namespace(collection));
                }
                Item::Done => return Ok(()),
            }
        }
    })();
    if let Err(error) = result {
        writer.abort();
        return Err(error);
    }
    Ok((writer.objects, exported))
}

/// Exports one replica set's part as Parquet (the entry [`super::replica_set::run`] takes for
/// [`super::DataFormat::Parquet`]).
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
    // The same start as the JSON pipeline's (excluded collections, orphan buckets, the plan).
    let mut summary = super::replica_set::start_summary(replica_set, &source, progress.as_ref());
    let handle = Handle::current();
    let stop = cancel.child_token();
    let lost = |what: &str| failed(format!("the {what} thread stopped unexpectedly (a bug)"));

    // Pass 1.
    let inferred = {
        let source = source.clone();
        let stop = stop.clone();
        let handle = handle.clone();
        let name = replica_set.to_string();
        let skip_invalid = options.skip_invalid;
        workers::spawn_worker(
            &format!("snapex-infer-{name}"),
            options.worker_nice,
            move || {
                let mut infer = Infer {
                    collections: &source.collections,
                    skip_invalid,
                    stop: &stop,
                    replica_set: &name,
                    unpackers: HashMap::new(),
                    out: Inferred::default(),
                    scratch: Vec::new(),
                };
                let result = source.read(&handle, &mut infer);
                result.map(|()| infer.out)
            },
        )
        .map_err(|e| failed(format!("cannot start the inference thread: {e}")))?
    };
    let inferred = inferred
        .await
        .map_err(|_| lost("inference"))?
        .map_err(|_| lost("inference"))?;
    if cancel.is_cancelled() {
        return Err(ExportError::Cancelled);
    }
    let inferred = Arc::new(inferred.map_err(|e| failed(e.to_string()))?);

    // Pass 2.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = mpsc::channel(cores.max(2));
    let reader = {
        let source = source.clone();
        let progress = progress.clone();
        let stop = stop.clone();
        let handle = handle.clone();
        let name = replica_set.to_string();
        let inferred = inferred.clone();
        let chunk_size = options.chunk_size;
        workers::spawn_worker(
            &format!("snapex-read-{name}"),
            options.worker_nice,
            move || {
                let mut encode = Encode {
                    replica_set: &name,
                    collections: &source.collections,
                    inferred: &inferred,
                    tx,
                    stop: &stop,
                    progress: progress.as_ref(),
                    open: HashMap::new(),
                    unpackers: HashMap::new(),
                    batch_buckets: HashMap::new(),
                    documents: 0,
                    bson_bytes: 0,
                    buckets: 0,
                    skipped: Vec::new(),
                    chunk_size,
                };
                let result = source.read(&handle, &mut encode);
                if result.is_ok() {
                    let _ = encode.tx.blocking_send(Item::Done);
                } else {
                    stop.cancel();
                }
                (
                    result,
                    encode.documents,
                    encode.bson_bytes,
                    encode.buckets,
                    encode.skipped,
                )
            },
        )
    };
    let writer = {
        let bucket = target.bucket.clone();
        let prefix = target.prefix.clone();
        let source = source.clone();
        let progress = progress.clone();
        let stop = stop.clone();
        let name = replica_set.to_string();
        let options = options.clone();
        workers::spawn_worker(
            &format!("snapex-write-{name}"),
            options.worker_nice,
            move || {
                let result = write_objects(
                    rx,
                    &handle,
                    &bucket.store,
                    &base_path(&bucket.prefix, &prefix),
                    &name,
                    &source.collections,
                    progress.as_ref(),
                    &stop,
                    &options,
                );
                if result.is_err() {
                    stop.cancel();
                }
                result
            },
        )
    };
    let reader = reader.map_err(|e| failed(format!("cannot start the reader thread: {e}")))?;
    let writer = writer.map_err(|e| failed(format!("cannot start the writer thread: {e}")))?;
    let (reader, writer) = tokio::join!(reader, writer);
    let (read_result, documents, bson_bytes, buckets, skipped) = reader
        .map_err(|_| lost("reader"))?
        .map_err(|_| lost("reader"))?;
    let written = writer
        .map_err(|_| lost("writer"))?
        .map_err(|_| lost("writer"))?;
    if cancel.is_cancelled() {
        return Err(ExportError::Cancelled);
    }
    let (objects, exported) = match (read_result, written) {
        (Ok(()), Ok(done)) => done,
        (Err(SourceError::Stopped(_)), Err(e)) | (Ok(()), Err(e)) => {
            return Err(failed(crate::errors::chain(&e)));
        }
        (Err(e), _) => return Err(failed(e.to_string())),
    };
    summary.objects = objects;
    summary.exported_collections = exported;
    summary.documents = documents;
    summary.bson_bytes = bson_bytes;
    summary.buckets = buckets;
    summary.skipped_invalid_documents = inferred.skipped_invalid;
    summary.skipped_invalid_buckets = inferred.skipped_invalid_buckets;
    summary
        .skipped_collections
        .extend(
            skipped
                .into_iter()
                .map(|(collection, reason)| SkippedCollection {
                    replica_set: replica_set.to_string(),
                    collection,
                    reason,
                }),
        );
    let mut schemas: Vec<_> = inferred
        .stats
        .iter()
        .filter_map(|(index, stats)| {
            let info = source.collections.get(*index)?;
            Some((
                *index,
                CollectionSchema {
                    db: info.db.clone(),
                    name: info.name.clone(),
                    stats: stats.clone(),
                },
            ))
        })
        .collect();
    schemas.sort_by_key(|(i, _)| *i);
    summary.schemas = schemas.into_iter().map(|(_, s)| s).collect();
    Ok(summary)
}

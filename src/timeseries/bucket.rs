//! A time-series bucket back to its measurements.
//!
//! A bucket is a document `{_id, control: {version, min, max, count?, …}, meta?, data: {…}}`.
//! `data` has one entry per field of the measurements, the time field included:
//!
//! - **version 1**: each entry is an object whose keys are the measurement indexes (`"0"`,
//!   `"1"`, …). The time field has every index; another field only the indexes of the
//!   measurements that have it, in the same order.
//! - **versions 2 and 3** (3: not sorted by time): each entry is a BSONColumn
//!   ([`super::column`]) with one element per measurement, skips where a measurement lacks the
//!   field. `control.count`, when present, is the number of measurements.
//!
//! ## Field order of a measurement
//!
//! Time field first, then the meta field (the bucket's `meta`, under the collection's
//! `metaField` name, when the bucket has one), then the other data fields in the order of the
//! bucket's `data` object. That is the order in which the server's own unpacking stage builds
//! a measurement, so it is what `find` on the time-series collection returns — and what
//! `mongoexport` and an Atlas export of the collection show. The alternatives were rejected:
//! the bucket's `data` order alone would put the time field wherever the first measurement
//! had it and lose the meta field's place; the original insert order is not stored anywhere.
//!
//! ## Validation
//!
//! A bucket whose structure is wrong — a missing or mistyped `control`, `data` or time field, a
//! column that does not decode, columns or `control.count` that disagree on the number of
//! measurements, a missing or non-date time value, a value whose index matches no time value —
//! is a [`BucketError`] naming the bucket's `_id` and the field. The measurements' values are
//! not validated here: the Extended JSON encoder checks each one as it writes it.
//!
//! Memory does not grow with a bucket's measurement count: measurements are built one at a time
//! into one buffer and handed to the caller. Their number is capped
//! ([`MAX_MEASUREMENTS_PER_BUCKET`]) and so are their bytes ([`MAX_MEASUREMENT_BYTES_PER_BUCKET`]),
//! so that a hostile bucket of run-length blocks cannot make an export write without end.

use std::fmt;

use super::TimeseriesOptions;
use super::column::{Column, ColumnError, Element};
use super::raw::{self, DocWriter, Elements, RawElement};

/// The most measurements one bucket may hold. The server closes buckets at 1,000 measurements by
/// default (`timeseriesBucketMaxCount`); a v1 bucket of 16 MB holds about a million at most.
pub const MAX_MEASUREMENTS_PER_BUCKET: u64 = 10_000_000;
/// The most bytes of measurements (BSON) one bucket may unpack to: 64 × the largest bucket.
pub const MAX_MEASUREMENT_BYTES_PER_BUCKET: u64 = 1 << 30;

/// An invalid bucket: its `_id` (as the shell would print it), the field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BucketError {
    pub id: String,
    /// The field's path in the bucket (`control.version`, `data.temperature`), when one is to blame.
    pub field: Option<String>,
    #[source]
    pub kind: BucketErrorKind,
}

impl fmt::Display for BucketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bucket {}", self.id)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// What is wrong with a bucket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BucketErrorKind {
    #[error("malformed bson: {0}")]
    Malformed(&'static str),
    #[error("missing")]
    Missing,
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("unsupported bucket version {0}")]
    UnsupportedVersion(i64),
    #[error("column does not decode: {0}")]
    Column(ColumnError),
    #[error("control.count says {declared} measurements, the time field has {found}")]
    CountMismatch { declared: i64, found: u64 },
    #[error("no time value for measurement {index}")]
    MissingTime { index: u64 },
    #[error("the time value of measurement {index} is a {found}, not a date")]
    TimeNotDate { index: u64, found: &'static str },
    #[error("{values} values where the time field has {measurements}")]
    LengthMismatch { values: u64, measurements: u64 },
    #[error("the value under key {key:?} matches no time value (or is out of order)")]
    UnmatchedKey { key: String },
    #[error("the bucket has a meta value but the collection has no metaField")]
    MetaWithoutMetaField,
    #[error("the field has the name of the collection's metaField")]
    MetaFieldInData,
    #[error("more than {0} measurements")]
    TooManyMeasurements(u64),
    #[error("its measurements exceed {0} bytes")]
    TooLarge(u64),
}

/// [`Unpacker::unpack`]'s error: the bucket's, or the one `emit` returned.
#[derive(Debug)]
pub enum UnpackError<E> {
    Bucket(BucketError),
    Emit(E),
}

impl<E> From<BucketError> for UnpackError<E> {
    fn from(e: BucketError) -> Self {
        UnpackError::Bucket(e)
    }
}

/// A bucket's `_id` as messages show it (`ObjectId("…")`, a quoted string, a number, or its
/// type), whatever else is wrong with the bucket.
pub fn bucket_id(bucket: &[u8]) -> String {
    let id = match raw::document_len(bucket) {
        Ok(len) if len == bucket.len() => Elements::new(bucket)
            .map_while(Result::ok)
            .find(|e| e.key == b"_id"),
        _ => None,
    };
    render_id(id)
}

/// How `_id` reads in a message: `ObjectId("…")`, a quoted string, a number, or its type.
fn render_id(id: Option<RawElement<'_>>) -> String {
    let Some(id) = id else {
        return "without _id".to_string();
    };
    match id.ty {
        0x07 => format!("ObjectId(\"{}\")", hex::encode(id.value)),
        0x02 => {
            let text = id
                .value
                .get(4..id.value.len().saturating_sub(1))
                .unwrap_or(&[]);
            format!("{:?}", String::from_utf8_lossy(text))
        }
        0x10 => raw::read_i32(id.value, 0).map_or_else(String::new, |v| v.to_string()),
        0x12 => id
            .value
            .first_chunk::<8>()
            .map_or_else(String::new, |b| i64::from_le_bytes(*b).to_string()),
        ty => format!("<{}>", raw::type_name(ty)),
    }
}

/// An integer-valued number (`control.version`, `control.count`): int32, int64, or a whole double
/// (buckets written by hand in the shell have doubles).
fn as_integer(element: &RawElement<'_>) -> Option<i64> {
    match element.ty {
        0x10 => raw::read_i32(element.value, 0).map(i64::from),
        0x12 => element
            .value
            .first_chunk::<8>()
            .map(|b| i64::from_le_bytes(*b)),
        0x01 => {
            let v = f64::from_le_bytes(*element.value.first_chunk::<8>()?);
            (v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
        }
        _ => None,
    }
}

/// The parts of a bucket the unpacker needs.
struct Parts<'a> {
    id: String,
    version: i64,
    count: Option<i64>,
    meta: Option<RawElement<'a>>,
    data: Vec<RawElement<'a>>,
    time: usize,
}

/// Turns buckets of one collection into measurements. Reuse it for every bucket: it keeps its
/// buffer.
#[derive(Debug, Clone)]
pub struct Unpacker {
    options: TimeseriesOptions,
    measurement: Vec<u8>,
}

impl Unpacker {
    pub fn new(options: TimeseriesOptions) -> Self {
        Unpacker {
            options,
            measurement: Vec::new(),
        }
    }

    pub fn options(&self) -> &TimeseriesOptions {
        &self.options
    }

    /// Checks a whole bucket without emitting anything; returns its number of measurements.
    /// [`Unpacker::unpack`] may emit measurements before it finds a problem; call this first to
    /// skip an invalid bucket as a whole.
    pub fn check(&mut self, bucket: &[u8]) -> Result<u64, BucketError> {
        self.unpack(bucket, |_| Ok::<(), std::convert::Infallible>(()))
            .map_err(|e| match e {
                UnpackError::Bucket(e) => e,
                UnpackError::Emit(never) => match never {},
            })
    }

    /// Unpacks `bucket` (a whole BSON document), calling `emit` with each measurement (a whole
    /// BSON document) in bucket order; returns the number of measurements.
    pub fn unpack<E>(
        &mut self,
        bucket: &[u8],
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, UnpackError<E>> {
        let parts = self.parts(bucket)?;
        let fail = |field: Option<String>, kind| BucketError {
            id: parts.id.clone(),
            field,
            kind,
        };
        let data_field = |element: &RawElement<'_>| {
            Some(format!("data.{}", String::from_utf8_lossy(element.key)))
        };
        let mut sink = Sink {
            options: &self.options,
            doc: &mut self.measurement,
            meta: parts.meta,
            bytes: 0,
            emit: &mut emit,
        };
        let measurements = match parts.version {
            1 => {
                for element in &parts.data {
                    if element.ty != 0x03 {
                        return Err(fail(
                            data_field(element),
                            BucketErrorKind::WrongType {
                                expected: "object",
                                found: raw::type_name(element.ty),
                            },
                        )
                        .into());
                    }
                }
                unpack_v1(&parts, &mut sink, &fail)?
            }
            2 | 3 => {
                let mut columns = Vec::with_capacity(parts.data.len());
                for element in &parts.data {
                    let column = column_of(element)
                        .map_err(|kind| fail(data_field(element), kind))?
                        .with_limit(MAX_MEASUREMENTS_PER_BUCKET);
                    columns.push(column);
                }
                unpack_v2(&parts, &mut columns, &mut sink, &fail)?
            }
            v => {
                return Err(fail(
                    Some("control.version".into()),
                    BucketErrorKind::UnsupportedVersion(v),
                )
                .into());
            }
        };
        if let Some(declared) = parts.count
            && declared != measurements as i64
        {
            return Err(fail(
                Some("control.count".into()),
                BucketErrorKind::CountMismatch {
                    declared,
                    found: measurements,
                },
            )
            .into());
        }
        Ok(measurements)
    }

    fn parts<'a>(&self, bucket: &'a [u8]) -> Result<Parts<'a>, BucketError> {
        let malformed = |id: String, field: Option<&str>, message| BucketError {
            id,
            field: field.map(str::to_string),
            kind: BucketErrorKind::Malformed(message),
        };
        match raw::document_len(bucket) {
            Ok(len) if len == bucket.len() => {}
            Ok(_) => return Err(malformed(render_id(None), None, "length prefix disagrees")),
            Err(e) => return Err(malformed(render_id(None), None, e.0)),
        }
        let (mut id, mut control, mut meta, mut data) = (None, None, None, None);
        let mut structure = Ok(());
        for element in Elements::new(bucket) {
            match element {
                Ok(e) => match e.key {
                    b"_id" => id = Some(e),
                    b"control" => control = Some(e),
                    b"meta" => meta = Some(e),
                    b"data" => data = Some(e),
                    _ => {}
                },
                Err(e) => structure = Err(e),
            }
        }
        let id = render_id(id);
        if let Err(e) = structure {
            return Err(malformed(id, None, e.0));
        }
        let fail = |field: &str, kind| BucketError {
            id: id.clone(),
            field: Some(field.to_string()),
            kind,
        };
        let object = |element: Option<RawElement<'a>>, field: &str| match element {
            None => Err(fail(field, BucketErrorKind::Missing)),
            Some(e) if e.ty != 0x03 => Err(fail(
                field,
                BucketErrorKind::WrongType {
                    expected: "object",
                    found: raw::type_name(e.ty),
                },
            )),
            Some(e) => Ok(e.value),
        };
        let control = object(control, "control")?;
        let data = object(data, "data")?;
        let (mut version, mut count) = (None, None);
        for element in Elements::new(control) {
            let element = element.map_err(|e| malformed(id.clone(), Some("control"), e.0))?;
            match element.key {
                b"version" => version = Some(element),
                b"count" => count = Some(element),
                _ => {}
            }
        }
        let number = |element: RawElement<'_>, field: &str| {
            as_integer(&element).ok_or_else(|| {
                fail(
                    field,
                    BucketErrorKind::WrongType {
                        expected: "an integer",
                        found: raw::type_name(element.ty),
                    },
                )
            })
        };
        let version = number(
            version.ok_or_else(|| fail("control.version", BucketErrorKind::Missing))?,
            "control.version",
        )?;
        let count = count.map(|c| number(c, "control.count")).transpose()?;

        let mut fields = Vec::new();
        let mut time = None;
        let time_field = self.options.time_field.as_bytes();
        let meta_field = self.options.meta_field.as_deref().map(str::as_bytes);
        for element in Elements::new(data) {
            let element = element.map_err(|e| malformed(id.clone(), Some("data"), e.0))?;
            if element.key == time_field {
                time = Some(fields.len());
            } else if Some(element.key) == meta_field {
                let field = format!("data.{}", String::from_utf8_lossy(element.key));
                return Err(fail(&field, BucketErrorKind::MetaFieldInData));
            }
            fields.push(element);
        }
        let time_path = format!("data.{}", self.options.time_field);
        let time = time.ok_or_else(|| fail(&time_path, BucketErrorKind::Missing))?;
        if meta.is_some() && meta_field.is_none() {
            return Err(fail("meta", BucketErrorKind::MetaWithoutMetaField));
        }
        Ok(Parts {
            id,
            version,
            count,
            meta,
            data: fields,
            time,
        })
    }
}

/// A BSONColumn from a `data` entry: binary of subtype 7.
fn column_of<'a>(element: &RawElement<'a>) -> Result<Column<'a>, BucketErrorKind> {
    if element.ty != 0x05 {
        return Err(BucketErrorKind::WrongType {
            expected: "a binary column (subtype 7)",
            found: raw::type_name(element.ty),
        });
    }
    match element.value.get(4) {
        Some(7) => {}
        _ => {
            return Err(BucketErrorKind::WrongType {
                expected: "a binary column (subtype 7)",
                found: "binary of another subtype",
            });
        }
    }
    Column::new(element.value.get(5..).unwrap_or(&[])).map_err(BucketErrorKind::Column)
}

/// Builds measurements and hands them out, counting what they cost.
struct Sink<'s, 'a, F> {
    options: &'s TimeseriesOptions,
    doc: &'s mut Vec<u8>,
    meta: Option<RawElement<'a>>,
    bytes: u64,
    emit: &'s mut F,
}

impl<F> Sink<'_, '_, F> {
    /// Starts a measurement with its time value and the meta value.
    fn start(&mut self, time: &[u8]) -> DocWriter {
        self.doc.clear();
        let writer = DocWriter::start(self.doc);
        DocWriter::element(self.doc, 0x09, self.options.time_field.as_bytes(), time);
        if let (Some(meta), Some(name)) = (self.meta, &self.options.meta_field) {
            DocWriter::element(self.doc, meta.ty, name.as_bytes(), meta.value);
        }
        writer
    }

    fn field(&mut self, ty: u8, key: &[u8], value: &[u8]) {
        DocWriter::element(self.doc, ty, key, value);
    }

    fn finish<E>(&mut self, writer: DocWriter) -> Result<(), UnpackError<E>>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
    {
        writer.finish(self.doc);
        self.bytes += self.doc.len() as u64;
        (self.emit)(self.doc).map_err(UnpackError::Emit)
    }
}

fn over_limits(index: u64, bytes: u64) -> Option<BucketErrorKind> {
    if index >= MAX_MEASUREMENTS_PER_BUCKET {
        Some(BucketErrorKind::TooManyMeasurements(
            MAX_MEASUREMENTS_PER_BUCKET,
        ))
    } else if bytes > MAX_MEASUREMENT_BYTES_PER_BUCKET {
        Some(BucketErrorKind::TooLarge(MAX_MEASUREMENT_BYTES_PER_BUCKET))
    } else {
        None
    }
}

fn unpack_v1<E, F>(
    parts: &Parts<'_>,
    sink: &mut Sink<'_, '_, F>,
    fail: &impl Fn(Option<String>, BucketErrorKind) -> BucketError,
) -> Result<u64, UnpackError<E>>
where
    F: FnMut(&[u8]) -> Result<(), E>,
{
    let path =
        |element: &RawElement<'_>| Some(format!("data.{}", String::from_utf8_lossy(element.key)));
    let time = &parts.data[parts.time];
    // The other fields, each with its next element not yet matched to a time value.
    let mut others: Vec<(RawElement<'_>, Elements<'_>, Option<RawElement<'_>>)> = parts
        .data
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != parts.time)
        .map(|(_, e)| (*e, Elements::new(e.value), None))
        .collect();
    let mut index = 0u64;
    for value in Elements::new(time.value) {
        let value = value.map_err(|e| fail(path(time), BucketErrorKind::Malformed(e.0)))?;
        if value.ty != 0x09 {
            let found = raw::type_name(value.ty);
            return Err(fail(path(time), BucketErrorKind::TimeNotDate { index, found }).into());
        }
        if let Some(kind) = over_limits(index, sink.bytes) {
            return Err(fail(None, kind).into());
        }
        let writer = sink.start(value.value);
        for (field, elements, pending) in &mut others {
            if pending.is_none() {
                *pending = elements
                    .next()
                    .transpose()
                    .map_err(|e| fail(path(field), BucketErrorKind::Malformed(e.0)))?;
            }
            if let Some(candidate) = pending.filter(|p| p.key == value.key) {
                sink.field(candidate.ty, field.key, candidate.value);
                *pending = None;
            }
        }
        sink.finish(writer)?;
        index += 1;
    }
    for (field, elements, pending) in &mut others {
        let left = match pending.take() {
            Some(p) => Some(p),
            None => elements
                .next()
                .transpose()
                .map_err(|e| fail(path(field), BucketErrorKind::Malformed(e.0)))?,
        };
        if let Some(left) = left {
            let key = String::from_utf8_lossy(left.key).into_owned();
            return Err(fail(path(field), BucketErrorKind::UnmatchedKey { key }).into());
        }
    }
    Ok(index)
}

fn unpack_v2<E, F>(
    parts: &Parts<'_>,
    columns: &mut [Column<'_>],
    sink: &mut Sink<'_, '_, F>,
    fail: &impl Fn(Option<String>, BucketErrorKind) -> BucketError,
) -> Result<u64, UnpackError<E>>
where
    F: FnMut(&[u8]) -> Result<(), E>,
{
    let path = |i: usize| {
        Some(format!(
            "data.{}",
            String::from_utf8_lossy(parts.data[i].key)
        ))
    };
    let column_error = |i: usize, e: ColumnError| fail(path(i), BucketErrorKind::Column(e));
    let (before, rest) = columns.split_at_mut(parts.time);
    let Some((time, after)) = rest.split_first_mut() else {
        return Ok(0);
    };
    let mut index = 0u64;
    loop {
        let time_value = match time
            .next_element()
            .map_err(|e| column_error(parts.time, e))?
        {
            None => break,
            Some(Element::Missing) => {
                return Err(fail(path(parts.time), BucketErrorKind::MissingTime { index }).into());
            }
            Some(Element::Value { ty: 0x09, value }) => value,
            Some(Element::Value { ty, .. }) => {
                let found = raw::type_name(ty);
                return Err(fail(
                    path(parts.time),
                    BucketErrorKind::TimeNotDate { index, found },
                )
                .into());
            }
        };
        if let Some(kind) = over_limits(index, sink.bytes) {
            return Err(fail(None, kind).into());
        }
        let writer = sink.start(time_value);
        let others = before.iter_mut().enumerate().chain(
            after
                .iter_mut()
                .enumerate()
                .map(|(i, c)| (i + parts.time + 1, c)),
        );
        for (i, column) in others {
            match column.next_element().map_err(|e| column_error(i, e))? {
                None => {
                    let kind = BucketErrorKind::LengthMismatch {
                        values: index,
                        measurements: index + 1,
                    };
                    return Err(fail(path(i), kind).into());
                }
                Some(Element::Missing) => {}
                Some(Element::Value { ty, value }) => sink.field(ty, parts.data[i].key, value),
            }
        }
        sink.finish(writer)?;
        index += 1;
    }
    let others = before.iter_mut().enumerate().chain(
        after
            .iter_mut()
            .enumerate()
            .map(|(i, c)| (i + parts.time + 1, c)),
    );
    for (i, column) in others {
        if column
            .next_element()
            .map_err(|e| column_error(i, e))?
            .is_some()
        {
            // Count the rest for the message (bounded by the column's limit).
            let mut values = index + 1;
            while column
                .next_element()
                .map_err(|e| column_error(i, e))?
                .is_some()
            {
                values += 1;
            }
            let kind = BucketErrorKind::LengthMismatch {
                values,
                measurements: index,
            };
            return Err(fail(path(i), kind).into());
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{Binary, Bson, DateTime, doc, oid::ObjectId, spec::BinarySubtype};

    fn column(bytes: Vec<u8>) -> Bson {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Column,
            bytes,
        })
    }

    /// A date column 1000, 2000, 3000: a literal, then one block of two 30-bit slots holding
    /// the deltas of deltas +1000 and 0.
    fn dates() -> Vec<u8> {
        let mut c = vec![0x09, 0];
        c.extend_from_slice(&1000i64.to_le_bytes());
        c.push(0x80);
        c.extend_from_slice(&(13u64 | (2000 << 4)).to_le_bytes());
        c.push(0);
        c
    }

    /// An int32 column 7, missing, 9.
    fn ints() -> Vec<u8> {
        let mut c = vec![0x10, 0];
        c.extend_from_slice(&7i32.to_le_bytes());
        c.push(0x80);
        let skip = (1u64 << 30) - 1;
        c.extend_from_slice(&(13u64 | (skip << 4) | (4 << 34)).to_le_bytes());
        c.push(0);
        c
    }

    fn unpack(
        options: TimeseriesOptions,
        bucket: &bson::Document,
    ) -> Result<Vec<bson::Document>, BucketError> {
        let bytes = bucket.to_vec().unwrap();
        let mut out = Vec::new();
        let mut unpacker = Unpacker::new(options);
        let n = unpacker
            .unpack(&bytes, |m| {
                out.push(bson::Document::from_reader(m).unwrap());
                Ok::<(), ()>(())
            })
            .map_err(|e| match e {
                UnpackError::Bucket(e) => e,
                UnpackError::Emit(()) => unreachable!(),
            })?;
        assert_eq!(n as usize, out.len());
        assert_eq!(unpacker.check(&bytes), Ok(n));
        Ok(out)
    }

    fn keys(doc: &bson::Document) -> Vec<&str> {
        doc.keys().map(String::as_str).collect()
    }

    #[test]
    fn version_1_buckets_match_fields_to_times_by_key() {
        let (a, b) = (ObjectId::from_bytes([1; 12]), ObjectId::from_bytes([2; 12]));
        let bucket = doc! {
            "_id": ObjectId::from_bytes([9; 12]),
            "control": {"version": 1, "min": {}, "max": {}},
            "meta": {"device": 1},
            "data": {
                "ts": {"0": DateTime::from_millis(10), "1": DateTime::from_millis(20)},
                "x": {"1": 5},
                "_id": {"0": a, "1": b},
            },
        };
        let got = unpack(TimeseriesOptions::new("ts", Some("m".into())), &bucket).unwrap();
        assert_eq!(
            got,
            vec![
                doc! {"ts": DateTime::from_millis(10), "m": {"device": 1}, "_id": a},
                doc! {"ts": DateTime::from_millis(20), "m": {"device": 1}, "x": 5, "_id": b},
            ]
        );
        assert_eq!(keys(&got[1]), ["ts", "m", "x", "_id"]);
    }

    #[test]
    fn version_2_buckets_decode_their_columns() {
        let bucket = doc! {
            "_id": 1,
            "control": {"version": 2, "count": 3},
            "data": {"x": column(ints()), "t": column(dates())},
        };
        let got = unpack(TimeseriesOptions::new("t", None), &bucket).unwrap();
        assert_eq!(
            got,
            vec![
                doc! {"t": DateTime::from_millis(1000), "x": 7},
                doc! {"t": DateTime::from_millis(2000)},
                doc! {"t": DateTime::from_millis(3000), "x": 9},
            ]
        );
    }

    #[test]
    fn invalid_buckets_name_the_bucket_and_the_field() {
        let options = TimeseriesOptions::new("t", None);
        let wrong_count = doc! {
            "_id": ObjectId::from_bytes([0xAB; 12]),
            "control": {"version": 2, "count": 4},
            "data": {"t": column(dates())},
        };
        let e = unpack(options.clone(), &wrong_count).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("control.count"));
        assert!(
            e.to_string()
                .starts_with("bucket ObjectId(\"abababababababababababab\")"),
            "{e}"
        );

        let short = doc! {"_id": 2, "control": {"version": 2}, "data": {"t": column(dates()), "x": column(vec![0x10, 0, 1, 0, 0, 0, 0])}};
        let e = unpack(options.clone(), &short).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("data.x"));
        assert!(
            matches!(e.kind, BucketErrorKind::LengthMismatch { values: 1, .. }),
            "{e}"
        );

        let not_a_bucket = doc! {"_id": 3, "x": 1451};
        let e = unpack(options.clone(), &not_a_bucket).unwrap_err();
        assert_eq!(
            (e.field.as_deref(), &e.kind),
            (Some("control"), &BucketErrorKind::Missing)
        );
        assert_eq!(e.to_string(), "bucket 3, field control: missing");

        let no_time = doc! {"_id": 4, "control": {"version": 1}, "data": {"x": {"0": 1}}};
        let e = unpack(options.clone(), &no_time).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("data.t"));

        let stray = doc! {"_id": 5, "control": {"version": 1}, "data": {"t": {"0": DateTime::from_millis(1)}, "x": {"7": 1}}};
        let e = unpack(options.clone(), &stray).unwrap_err();
        assert_eq!(e.kind, BucketErrorKind::UnmatchedKey { key: "7".into() });

        let bad_column =
            doc! {"_id": 6, "control": {"version": 2}, "data": {"t": column(vec![0x09, 0])}};
        let e = unpack(options.clone(), &bad_column).unwrap_err();
        assert!(matches!(e.kind, BucketErrorKind::Column(_)), "{e}");

        let not_dates = doc! {"_id": 7, "control": {"version": 1}, "data": {"t": {"0": 1}}};
        let e = unpack(options.clone(), &not_dates).unwrap_err();
        assert!(
            matches!(e.kind, BucketErrorKind::TimeNotDate { index: 0, .. }),
            "{e}"
        );

        let version = doc! {"_id": 8, "control": {"version": 9}, "data": {"t": {}}};
        let e = unpack(options, &version).unwrap_err();
        assert_eq!(e.kind, BucketErrorKind::UnsupportedVersion(9));
    }

    #[test]
    fn a_missing_time_value_is_an_error() {
        // One time value, then a skip.
        let mut c = vec![0x09, 0];
        c.extend_from_slice(&5i64.to_le_bytes());
        c.push(0x80);
        c.extend_from_slice(&(14u64 | (((1u64 << 60) - 1) << 4)).to_le_bytes());
        c.push(0);
        let bucket = doc! {"_id": 1, "control": {"version": 2}, "data": {"t": column(c)}};
        let e = unpack(TimeseriesOptions::new("t", None), &bucket).unwrap_err();
        assert_eq!(e.kind, BucketErrorKind::MissingTime { index: 1 });
    }
}

//! BSONColumn decoding and bucket unpacking throughput.
//!
//! Columns are what a server writes for a typical 1,000-measurement bucket of sensor data
//! (`timeseriesBucketMaxCount`'s default): dates one second apart with jitter (delta of delta),
//! temperatures with one decimal (doubles at scale 10), an increasing int32 counter, sequential
//! ObjectIds, and a sparse int64 field (a third of the values missing). They are packed here by
//! a small greedy Simple-8b packer (base selectors only), so the bench needs no server; the
//! decoder is checked to give back every value before anything is timed. The server's own
//! encodings are timed too: the 253 columns of `shared/data/timeseries/bsoncolumn-unit.json`.
//!
//! Every column is reported twice: in elements (measurements) per second and in bytes of column
//! data per second. The bucket benches unpack a whole bucket of those five fields into
//! measurement documents — version 2 (the columns) against version 1 (the same values as
//! `data.<field>` objects). The export benches run a whole export of 100 such buckets (as v1,
//! as v2) next to a regular collection of the same 100,000 measurement documents.
//!
//! Run: `cargo bench --bench bsoncolumn -- --quick`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use bson::{Binary, Bson, DateTime, Document, doc, oid::ObjectId, spec::BinarySubtype};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use snapex::timeseries::{Column, Element, TimeseriesOptions, Unpacker};

const MEASUREMENTS: usize = 1000;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Slots and bits of Simple-8b selectors 1–14.
const SLOTS: [usize; 15] = [0, 60, 30, 20, 15, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1];
const BITS: [u32; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 60];

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

/// Packs zigzag-encoded slots (`None`: missing) into blocks, most slots per block first.
fn pack(slots: &[Option<u64>]) -> Vec<u64> {
    let mut words = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        let left = slots.len() - i;
        let selector = (1..=14)
            .find(|&s| {
                let mask = (1u64 << BITS[s]) - 1;
                SLOTS[s] <= left
                    && slots[i..i + SLOTS[s]]
                        .iter()
                        .all(|v| v.is_none_or(|v| v < mask))
            })
            .expect("a 60-bit slot fits every delta");
        let offset = if selector == 7 || selector == 8 { 8 } else { 4 };
        let mask = (1u64 << BITS[selector]) - 1;
        let mut word = selector as u64;
        for (k, v) in slots[i..i + SLOTS[selector]].iter().enumerate() {
            word |= v.unwrap_or(mask) << (offset + k as u32 * BITS[selector]);
        }
        words.push(word);
        i += SLOTS[selector];
    }
    words
}

/// A column: the literal `(ty, value)`, then `slots` behind control bytes of `control` (0x80
/// for integers, 0xA0 for doubles × 10), at most 16 blocks each.
fn column(ty: u8, value: &[u8], control: u8, slots: &[Option<u64>]) -> Vec<u8> {
    let mut out = vec![ty, 0];
    out.extend_from_slice(value);
    for chunk in pack(slots).chunks(16) {
        out.push(control | (chunk.len() as u8 - 1));
        for word in chunk {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
    out.push(0);
    out
}

/// Deltas of deltas of `values` (after the first), zigzag-encoded.
fn delta_of_delta(values: &[i64]) -> Vec<Option<u64>> {
    let mut previous_delta = 0i64;
    values
        .windows(2)
        .map(|w| {
            let delta = w[1] - w[0];
            let dod = delta - previous_delta;
            previous_delta = delta;
            Some(zigzag(dod))
        })
        .collect()
}

fn deltas(values: &[i64]) -> Vec<Option<u64>> {
    values
        .windows(2)
        .map(|w| Some(zigzag(w[1] - w[0])))
        .collect()
}

/// ObjectId → the integer BSONColumn deltas: timestamp and counter bytes interleaved.
fn oid_integer(oid: &[u8; 12]) -> i64 {
    i64::from_le_bytes([oid[11], oid[3], oid[10], oid[2], oid[9], oid[1], oid[0], 0])
}

struct Series {
    name: &'static str,
    column: Vec<u8>,
    values: Vec<Bson>,
}

fn series(seed: u64) -> Vec<Series> {
    let mut rng = Rng(0x5EED_1234_ABCD_0001 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let start = 1_780_000_000_000i64 + seed as i64 * 3_600_000;
    let dates: Vec<i64> = (0..MEASUREMENTS as i64)
        .map(|i| start + i * 1000 + rng.below(40) as i64 - 20)
        .collect();
    let mut tenths = 205i64;
    let temperatures: Vec<i64> = (0..MEASUREMENTS)
        .map(|_| {
            tenths += rng.below(5) as i64 - 2;
            tenths
        })
        .collect();
    let mut count = 0i64;
    let counters: Vec<i64> = (0..MEASUREMENTS)
        .map(|_| {
            count += rng.below(4) as i64;
            count
        })
        .collect();
    let oids: Vec<[u8; 12]> = (0..MEASUREMENTS as u32)
        .map(|i| {
            let mut oid = [0u8; 12];
            oid[..4].copy_from_slice(&(1_780_000_000 + i).to_be_bytes());
            oid[4..9].copy_from_slice(&[0x5A, 0x17, 0x33, 0x90, 0x01]);
            oid[9..].copy_from_slice(&(0x10_0000 + i).to_be_bytes()[1..]);
            oid
        })
        .collect();
    let sparse: Vec<Option<i64>> = (0..MEASUREMENTS)
        .map(|i| (i % 3 != 0).then_some(1_000_000 + i as i64 * 7))
        .collect();
    // The sparse column: a skip (a run before any literal), the literal, then deltas and skips.
    let sparse_values: Vec<i64> = sparse.iter().flatten().copied().collect();
    let mut sparse_slots = Vec::new();
    let mut last = sparse_values[0];
    for v in sparse.iter().skip(2) {
        match v {
            Some(v) => {
                sparse_slots.push(Some(zigzag(v - last)));
                last = *v;
            }
            None => sparse_slots.push(None),
        }
    }

    let oid_ints: Vec<i64> = oids.iter().map(oid_integer).collect();
    vec![
        Series {
            name: "date (delta of delta)",
            column: column(0x09, &dates[0].to_le_bytes(), 0x80, &delta_of_delta(&dates)),
            values: dates
                .iter()
                .map(|d| Bson::DateTime(DateTime::from_millis(*d)))
                .collect(),
        },
        Series {
            name: "double (scale 10)",
            column: column(
                0x01,
                &(temperatures[0] as f64 / 10.0).to_le_bytes(),
                0xA0,
                &deltas(&temperatures),
            ),
            values: temperatures
                .iter()
                .map(|t| Bson::Double(*t as f64 / 10.0))
                .collect(),
        },
        Series {
            name: "int32 (delta)",
            column: column(
                0x10,
                &(counters[0] as i32).to_le_bytes(),
                0x80,
                &deltas(&counters),
            ),
            values: counters.iter().map(|c| Bson::Int32(*c as i32)).collect(),
        },
        Series {
            name: "objectId (delta of delta)",
            column: column(0x07, &oids[0], 0x80, &delta_of_delta(&oid_ints)),
            values: oids
                .iter()
                .map(|o| Bson::ObjectId(ObjectId::from_bytes(*o)))
                .collect(),
        },
        Series {
            name: "int64 sparse (skips)",
            column: {
                let mut c = vec![0x80];
                c.extend_from_slice(&pack(&[None])[0].to_le_bytes());
                let rest = column(0x12, &sparse_values[0].to_le_bytes(), 0x80, &sparse_slots);
                c.extend_from_slice(&rest);
                c
            },
            values: sparse
                .iter()
                .map(|v| v.map_or(Bson::Null, Bson::Int64))
                .collect(),
        },
    ]
}

/// Checks that `column` decodes to `values` (`Null` standing for missing) and returns how many.
fn verify(name: &str, column: &[u8], values: &[Bson]) {
    let mut decoder = Column::new(column).expect("non-empty");
    let mut i = 0;
    while let Some(element) = decoder.next_element().expect("generated columns decode") {
        let doc_bytes = match element {
            Element::Missing => None,
            Element::Value { ty, value } => {
                let mut d = ((value.len() + 8) as i32).to_le_bytes().to_vec();
                d.push(ty);
                d.extend_from_slice(b"v\0");
                d.extend_from_slice(value);
                d.push(0);
                Some(d)
            }
        };
        let got = doc_bytes.map_or(Bson::Null, |d| {
            Document::from_reader(d.as_slice()).expect("bson")["v"].clone()
        });
        assert_eq!(got, values[i], "{name}[{i}]");
        i += 1;
    }
    assert_eq!(i, values.len(), "{name}");
}

fn decode_all(column: &[u8]) -> u64 {
    let mut decoder = Column::new(column).expect("non-empty");
    let mut n = 0u64;
    while let Some(element) = decoder.next_element().expect("decodes") {
        black_box(element);
        n += 1;
    }
    n
}

fn vector_columns() -> Vec<Vec<u8>> {
    let base = std::env::var_os("SNAPEX_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
            if beside.exists() {
                beside
            } else {
                PathBuf::from("/work/shared/data")
            }
        });
    let path = base.join("timeseries/bsoncolumn-unit.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("{} not found: skipping the vector corpus", path.display());
        return Vec::new();
    };
    // Only the hex fields are needed; the file has strings serde_json refuses (see the test).
    text.split("\"bson_column_hex\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter_map(|h| hex::decode(h).ok())
        .filter(|bytes| Column::new(bytes).and_then(|c| c.count()).is_ok())
        .collect()
}

fn buckets(series: &[Series], seed: u64) -> (Vec<u8>, Vec<u8>) {
    let names = ["t", "temp", "count", "_id", "extra"];
    let mut v2 = Document::new();
    let mut v1 = Document::new();
    for (name, s) in names.iter().zip(series) {
        v2.insert(
            *name,
            Bson::Binary(Binary {
                subtype: BinarySubtype::Column,
                bytes: s.column.clone(),
            }),
        );
        let mut keyed = Document::new();
        for (i, v) in s.values.iter().enumerate() {
            if *v != Bson::Null {
                keyed.insert(i.to_string(), v.clone());
            }
        }
        v1.insert(*name, keyed);
    }
    let mut id = [7u8; 12];
    id[..8].copy_from_slice(&seed.to_be_bytes());
    let id = ObjectId::from_bytes(id);
    let meta = doc! {"sensor": "boiler-7", "site": "lyon"};
    let v2 = doc! {
        "_id": id, "control": {"version": 2, "count": MEASUREMENTS as i32},
        "meta": meta.clone(), "data": v2,
    };
    let v1 = doc! {"_id": id, "control": {"version": 1}, "meta": meta, "data": v1};
    (v2.to_vec().unwrap(), v1.to_vec().unwrap())
}

fn bench(c: &mut Criterion) {
    let series = series(0);
    for s in &series {
        verify(s.name, &s.column, &s.values);
    }
    let mut by_elements = c.benchmark_group("bsoncolumn decode (measurements)");
    by_elements.sample_size(20);
    by_elements.warm_up_time(Duration::from_millis(500));
    by_elements.measurement_time(Duration::from_secs(2));
    let mut by_bytes_inputs = Vec::new();
    for s in &series {
        by_elements.throughput(Throughput::Elements(s.values.len() as u64));
        by_elements.bench_with_input(BenchmarkId::from_parameter(s.name), &s.column, |b, col| {
            b.iter(|| decode_all(col))
        });
        by_bytes_inputs.push((s.name, s.column.clone()));
    }
    let vectors = vector_columns();
    let vector_elements: u64 = vectors.iter().map(|v| decode_all(v)).sum();
    let vector_bytes: u64 = vectors.iter().map(|v| v.len() as u64).sum();
    if !vectors.is_empty() {
        by_elements.throughput(Throughput::Elements(vector_elements));
        by_elements.bench_function("server unit vectors", |b| {
            b.iter(|| vectors.iter().map(|v| decode_all(v)).sum::<u64>())
        });
    }
    by_elements.finish();

    let mut by_bytes = c.benchmark_group("bsoncolumn decode (column bytes)");
    by_bytes.sample_size(20);
    by_bytes.warm_up_time(Duration::from_millis(500));
    by_bytes.measurement_time(Duration::from_secs(2));
    for (name, col) in &by_bytes_inputs {
        by_bytes.throughput(Throughput::Bytes(col.len() as u64));
        by_bytes.bench_with_input(BenchmarkId::from_parameter(name), col, |b, col| {
            b.iter(|| decode_all(col))
        });
    }
    if !vectors.is_empty() {
        by_bytes.throughput(Throughput::Bytes(vector_bytes));
        by_bytes.bench_function("server unit vectors", |b| {
            b.iter(|| vectors.iter().map(|v| decode_all(v)).sum::<u64>())
        });
    }
    by_bytes.finish();

    let (v2, v1) = buckets(&series, 0);
    let mut unpacker = Unpacker::new(TimeseriesOptions::new("t", Some("meta".into())));
    let count = |bucket: &[u8], unpacker: &mut Unpacker| {
        let mut bytes = 0usize;
        let n = unpacker
            .unpack(bucket, |m| {
                bytes += black_box(m).len();
                Ok::<(), ()>(())
            })
            .expect("bench bucket unpacks");
        (n, bytes)
    };
    assert_eq!(count(&v2, &mut unpacker).0, MEASUREMENTS as u64);
    assert_eq!(count(&v1, &mut unpacker), count(&v2, &mut unpacker));
    eprintln!(
        "bucket of {MEASUREMENTS} measurements: v2 {} bytes, v1 {} bytes",
        v2.len(),
        v1.len()
    );
    let mut group = c.benchmark_group("bucket unpack (measurements)");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(MEASUREMENTS as u64));
    group.bench_function("v2 columns", |b| b.iter(|| count(&v2, &mut unpacker)));
    group.bench_function("v1 objects", |b| b.iter(|| count(&v1, &mut unpacker)));
    group.finish();
}

/// Buckets in an export: this many buckets of [`MEASUREMENTS`] each.
const EXPORT_BUCKETS: u64 = 100;
/// When the test runner runs each benchmark once as a test (no `--bench`), in a process of its
/// own, every process builds this setup: a small one keeps that run short (it ran 50–110 s per
/// benchmark on a loaded machine), and the side-by-side timing loop is left out.
const TEST_EXPORT_BUCKETS: u64 = 2;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A whole export, end to end (read, unpack, Extended JSON, gzip level 6 on every core, upload
/// to an in-memory store), of the same measurements three ways: as a time-series collection of
/// version-1 buckets, of version-2 buckets, and as a regular collection of the measurement
/// documents themselves. Throughput in measurements per second.
fn bench_export(c: &mut Criterion) {
    use snapex::export::{self, CompleteInfo, ExportOptions, ExportTarget, NoProgress};
    use snapex::snapshot::SnapshotSource;
    use snapex::storage::{self, StorageOptions};
    use std::sync::Arc;

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let metadata = |name: &str, ts: bool| {
        let options = if ts {
            r#""options":{"timeseries":{"timeField":"t","metaField":"meta","granularity":"seconds"}},"type":"timeseries","#
        } else {
            r#""type":"collection","#
        };
        format!(r#"{{{options}"indexes":[],"collectionName":"{name}"}}"#)
    };
    let export_buckets = if bench_mode() {
        EXPORT_BUCKETS
    } else {
        TEST_EXPORT_BUCKETS
    };
    let (mut v1, mut v2, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    let mut unpacker = Unpacker::new(TimeseriesOptions::new("t", Some("meta".into())));
    for seed in 0..export_buckets {
        let (b2, b1) = buckets(&series(seed), seed);
        unpacker
            .unpack(&b1, |m| {
                plain.extend_from_slice(m);
                Ok::<(), ()>(())
            })
            .expect("bench bucket unpacks");
        v1.extend_from_slice(&b1);
        v2.extend_from_slice(&b2);
    }
    let mut sources = Vec::new();
    for (label, bytes, ts) in [
        ("time-series, v1 buckets", &v1, true),
        ("time-series, v2 buckets", &v2, true),
        ("regular collection of the measurements", &plain, false),
    ] {
        let root = scratch.path().join(label.replace([' ', ','], "_"));
        let db = root.join("db");
        std::fs::create_dir_all(&db).unwrap();
        let file = if ts {
            "system.buckets.c.bson"
        } else {
            "c.bson"
        };
        std::fs::write(db.join(file), bytes).unwrap();
        std::fs::write(db.join("c.metadata.json"), metadata("c", ts)).unwrap();
        let location = storage::open(root.to_str().unwrap(), &StorageOptions::default()).unwrap();
        let source = Arc::new(runtime.block_on(SnapshotSource::open(location)).unwrap());
        eprintln!("{label}: {} bytes of BSON", bytes.len());
        sources.push((label, source));
    }
    let export_once = |source: &Arc<SnapshotSource>| {
        let bucket =
            storage::open("memory://bsoncolumn-bench", &StorageOptions::default()).unwrap();
        let target = ExportTarget {
            bucket,
            prefix: "bench".into(),
        };
        let summary = runtime
            .block_on(export::run_export(
                vec![("rs0".into(), source.clone())],
                &target,
                &CompleteInfo::default(),
                &ExportOptions::default(),
                Arc::new(NoProgress),
                tokio_util::sync::CancellationToken::new(),
            ))
            .expect("the bench export succeeds");
        summary.replica_sets[0].documents
    };
    for (label, source) in &sources {
        assert_eq!(
            export_once(source),
            export_buckets * MEASUREMENTS as u64,
            "{label}"
        );
    }
    // Interleaved rounds, so that the three see the same machine (ours is shared and noisy):
    // the median of each, and its ratio to the regular collection's.
    if bench_mode() {
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); sources.len()];
        for _ in 0..7 {
            for (i, (_, source)) in sources.iter().enumerate() {
                let started = std::time::Instant::now();
                black_box(export_once(source));
                times[i].push(started.elapsed().as_secs_f64());
            }
        }
        let medians: Vec<f64> = times
            .iter_mut()
            .map(|t| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            })
            .collect();
        let regular = medians[sources.len() - 1];
        for ((label, _), median) in sources.iter().zip(&medians) {
            eprintln!(
                "side by side, median of 7: {label}: {:.0} ms, {:.0} measurements/s, {:.2} x the regular collection's time",
                median * 1e3,
                (export_buckets * MEASUREMENTS as u64) as f64 / median,
                median / regular
            );
        }
    }
    let mut group = c.benchmark_group("export (measurements)");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    group.throughput(Throughput::Elements(export_buckets * MEASUREMENTS as u64));
    for (label, source) in &sources {
        group.bench_function(*label, |b| b.iter(|| export_once(source)));
    }
    group.finish();
}

criterion_group!(benches, bench, bench_export);
criterion_main!(benches);

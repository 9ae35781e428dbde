//! BSON → Extended JSON throughput: our byte-walking encoder against the library path.
//!
//! The library path is what a straightforward implementation would do with the `bson` crate:
//! `RawDocument` → `Document` (a tree with a heap allocation per key and value) → `Bson` →
//! `serde_json::Value` (`into_canonical_extjson` / `into_relaxed_extjson`, a second tree) →
//! `serde_json::to_writer`. Both sides encode the same generated documents into a reused buffer,
//! and throughput is reported in bytes of BSON in.
//!
//! The documents are deterministic (fixed-seed generator) and varied like application data: an
//! ObjectId, short and long strings (some non-ASCII, some needing escapes), int32/int64/double,
//! booleans, dates, a nested address, arrays of numbers and of sub-documents, and occasional UUIDs,
//! nulls, timestamps and decimals.
//!
//! Run: `cargo bench --bench extjson -- --quick` (or without `--quick` for tighter intervals).

use std::hint::black_box;
use std::time::Duration;

use bson::{Bson, Document, RawDocument, doc, oid::ObjectId, spec::BinarySubtype};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snapex::extjson::{Format, write_document};

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

    fn word(&mut self) -> String {
        const WORDS: &[&str] = &[
            "alpha",
            "bravo",
            "charlie",
            "delta",
            "echo",
            "foxtrot",
            "golf",
            "hotel",
            "india",
            "juliett",
            "kilo",
            "lima",
            "mike",
            "november",
            "oscar",
            "papa",
            "québec",
            "romeo",
            "sierra",
            "tango",
            "uniform",
            "victor",
            "whiskey",
            "x-ray",
            "yankee",
            "zulu",
            "naïve",
            "東京",
            "straße",
            "\"quoted\"",
            "tab\tseparated",
            "line\nbreak",
        ];
        WORDS[self.below(WORDS.len() as u64) as usize].to_owned()
    }

    fn sentence(&mut self, words: u64) -> String {
        let n = 1 + self.below(words);
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

fn generate_document(rng: &mut Rng, i: u64) -> Document {
    let mut d = doc! {
        "_id": ObjectId::from_bytes((i as u128 * 7919).to_be_bytes()[4..].try_into().unwrap()),
        "name": rng.sentence(3),
        "email": format!("user{}@example.com", rng.below(1_000_000)),
        "age": rng.below(100) as i32,
        "score": rng.below(1_000_000) as f64 / 100.0,
        "ratio": (rng.next() as f64) / (u64::MAX as f64),
        "visits": rng.next() as i64 >> 20,
        "active": rng.below(2) == 0,
        "created": bson::DateTime::from_millis(1_500_000_000_000 + (rng.below(300_000_000_000) as i64)),
        "address": {
            "street": rng.sentence(3),
            "city": rng.word(),
            "zip": format!("{:05}", rng.below(100_000)),
            "location": { "type": "Point", "coordinates": [
                (rng.below(36_000) as f64) / 100.0 - 180.0,
                (rng.below(18_000) as f64) / 100.0 - 90.0,
            ] },
        },
        "tags": (0..rng.below(6)).map(|_| Bson::String(rng.word())).collect::<Vec<_>>(),
        "counts": (0..rng.below(12)).map(|_| Bson::Int32(rng.below(1000) as i32)).collect::<Vec<_>>(),
        "description": rng.sentence(40),
    };
    let items: Vec<Bson> = (0..rng.below(4))
        .map(|_| {
            Bson::Document(doc! {
                "sku": format!("SKU-{}", rng.below(100_000)),
                "qty": rng.below(10) as i32,
                "price": (rng.below(100_000) as f64) / 100.0,
            })
        })
        .collect();
    d.insert("items", items);
    if rng.below(4) == 0 {
        let bytes: Vec<u8> = (0..16).map(|_| rng.next() as u8).collect();
        d.insert(
            "uuid",
            bson::Binary {
                subtype: BinarySubtype::Uuid,
                bytes,
            },
        );
    }
    if rng.below(5) == 0 {
        d.insert("deleted", Bson::Null);
    }
    if rng.below(10) == 0 {
        d.insert(
            "ts",
            bson::Timestamp {
                time: rng.next() as u32,
                increment: 1,
            },
        );
    }
    if rng.below(10) == 0 {
        let price: bson::Decimal128 = format!("{}.{:02}", rng.below(10_000), rng.below(100))
            .parse()
            .unwrap();
        d.insert("price", price);
    }
    d
}

fn corpus() -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..20_000)
        .map(|i| generate_document(&mut rng, i).to_vec().unwrap())
        .collect()
}

fn ours(docs: &[Vec<u8>], format: Format, out: &mut Vec<u8>) {
    out.clear();
    for d in docs {
        write_document(d, format, out).unwrap();
        out.push(b'\n');
    }
}

fn library(docs: &[Vec<u8>], format: Format, out: &mut Vec<u8>) {
    out.clear();
    for d in docs {
        let raw = RawDocument::from_bytes(d).unwrap();
        let tree = Bson::Document(Document::try_from(raw).unwrap());
        let value = match format {
            Format::Canonical => tree.into_canonical_extjson(),
            Format::Relaxed => tree.into_relaxed_extjson(),
        };
        serde_json::to_writer(&mut *out, &value).unwrap();
        out.push(b'\n');
    }
}

fn bench(c: &mut Criterion) {
    let docs = corpus();
    let bson_bytes: usize = docs.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(bson_bytes * 2);
    for format in [Format::Canonical, Format::Relaxed] {
        ours(&docs, format, &mut out);
        let json_ours = out.len();
        library(&docs, format, &mut out);
        let json_library = out.len();
        eprintln!(
            "extjson bench: {} documents, {bson_bytes} bytes of BSON; {format} JSON: ours {json_ours} bytes ({:.2} × BSON), library {json_library} bytes",
            docs.len(),
            json_ours as f64 / bson_bytes as f64,
        );
    }

    let mut group = c.benchmark_group("bson_to_extjson");
    group.throughput(Throughput::Bytes(bson_bytes as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for format in [Format::Canonical, Format::Relaxed] {
        group.bench_function(format!("ours/{format}"), |b| {
            b.iter(|| ours(black_box(&docs), format, &mut out))
        });
        group.bench_function(format!("library/{format}"), |b| {
            b.iter(|| library(black_box(&docs), format, &mut out))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

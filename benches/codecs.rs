//! Decode throughput of each snapshot compression codec, through the same entry point the
//! snapshot readers use (`snapex::snapshot::codec::open`: magic-number check, error tagging,
//! the codec's streaming decoder), reported in bytes of *decompressed* BSON out.
//!
//! The input is a deterministic sample dump (`snapex::snapshot::generate`, the documents the
//! other benchmarks export), concatenated and compressed once per codec with the encoders the
//! tools people use write with (`flate2`, `zstd` level 3 with checksums, `lz4_flex` frames,
//! `snap` framing, and for S2 `minlz`, which writes Go's bytes). One thread, like one
//! collection's read in an export.
//!
//! Run: `cargo bench --bench codecs -- --quick`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snapex::snapshot::codec::{self, Codec, Expect};
use snapex::snapshot::generate::{SampleSpec, write_sample_dump};

const SAMPLE_BYTES: u64 = 32 * 1024 * 1024;
/// When the test runner lists and runs benchmarks once as tests (no `--bench`), a small
/// sample keeps that run short; the numbers come from `cargo bench`.
const TEST_SAMPLE_BYTES: u64 = 1024 * 1024;

fn sample() -> Vec<u8> {
    let target_bytes = if std::env::args().any(|a| a == "--bench") {
        SAMPLE_BYTES
    } else {
        TEST_SAMPLE_BYTES
    };
    let dir = std::env::temp_dir().join(format!("snapex-bench-codecs-{}", std::process::id()));
    write_sample_dump(
        &dir,
        &SampleSpec {
            target_bytes,
            seed: 7,
        },
    )
    .expect("write the sample dump");
    let mut files = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("read the sample dump") {
            let path = entry.expect("list the sample dump").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "bson") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        out.extend(std::fs::read(f).expect("read a sample file"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
    match codec {
        Codec::None => data.to_vec(),
        Codec::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            w.write_all(data).expect("gzip");
            w.finish().expect("gzip")
        }
        Codec::Zstd => {
            let mut w = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd");
            w.include_checksum(true).expect("zstd");
            w.write_all(data).expect("zstd");
            w.finish().expect("zstd")
        }
        Codec::Lz4 => {
            let mut w = lz4_flex::frame::FrameEncoder::new(Vec::new());
            w.write_all(data).expect("lz4");
            w.finish().expect("lz4")
        }
        Codec::Snappy => {
            let mut w = snap::write::FrameEncoder::new(Vec::new());
            w.write_all(data).expect("snappy");
            w.into_inner().expect("snappy")
        }
        Codec::S2 => {
            let mut out = Vec::new();
            {
                let mut w = minlz::Writer::new(&mut out);
                w.write_all(data).expect("s2");
                w.flush().expect("s2");
            }
            out
        }
    }
}

fn decode(packed: &[u8], codec: Codec, scratch: &mut [u8]) -> u64 {
    let (_, mut reader) = codec::open(
        Box::new(std::io::Cursor::new(packed.to_vec())),
        Expect::Known(codec),
    )
    .expect("open");
    let mut total = 0u64;
    loop {
        let n = reader.read(scratch).expect("decode");
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn codecs(c: &mut Criterion) {
    let data = sample();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.measurement_time(Duration::from_secs(6));
    group.sample_size(10);
    let mut scratch = vec![0u8; 4 * 1024 * 1024];
    for codec in Codec::ALL {
        let packed = compress(codec, &data);
        eprintln!(
            "{codec}: {} bytes → {} bytes ({:.1}%)",
            data.len(),
            packed.len(),
            packed.len() as f64 * 100.0 / data.len() as f64
        );
        group.bench_function(codec.name(), |b| {
            b.iter(|| black_box(decode(&packed, codec, &mut scratch)))
        });
    }
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);

//! mongodump directories and archives compressed with each codec (gzip, zstd, lz4, snappy,
//! s2) export exactly like the uncompressed dump: the same objects, the same document counts
//! and the same decompressed JSON, by SHA-256. Fixtures: mongo-tools' own dumps, compressed
//! here with each codec's reference-compatible encoder (`flate2`, `zstd`, `lz4_flex`, `snap`,
//! and `minlz` for S2, whose output is byte-for-byte Go's).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};
use snapex::export::{self, CompleteInfo, ExportOptions, ExportTarget, NoProgress};
use snapex::snapshot::codec::Codec;
use snapex::snapshot::{SnapshotSource, SourceError, SourceFormat};
use snapex::storage::{self, StorageOptions};
use tokio_util::sync::CancellationToken;

use crate::support;

/// `data` compressed with `codec`, the way the tools people use write it.
pub fn compress(codec: Codec, data: &[u8]) -> Vec<u8> {
    match codec {
        Codec::None => data.to_vec(),
        Codec::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Codec::Zstd => {
            let mut w = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            w.include_checksum(true).unwrap();
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Codec::Lz4 => {
            let mut w = lz4_flex::frame::FrameEncoder::new(Vec::new());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        Codec::Snappy => {
            let mut w = snap::write::FrameEncoder::new(Vec::new());
            w.write_all(data).unwrap();
            w.into_inner().unwrap()
        }
        Codec::S2 => {
            let mut out = Vec::new();
            {
                let mut w = minlz::Writer::new(&mut out);
                w.write_all(data).unwrap();
                w.flush().unwrap();
            }
            out
        }
    }
}

const COMPRESSED: [Codec; 5] = [
    Codec::Gzip,
    Codec::Zstd,
    Codec::Lz4,
    Codec::Snappy,
    Codec::S2,
];

fn restore_data(rel: &str) -> PathBuf {
    support::mongo_tools()
        .join("mongorestore/testdata")
        .join(rel)
}

/// Copies the dump tree `from` to `to`, compressing every dump file with `codec`. With
/// `rename`, the codec's suffix is appended (`c1.bson.zst`); without, only `.bson` files are
/// compressed and keep their names, so that only the magic number says what they hold.
fn compressed_copy(from: &Path, to: &Path, codec: Codec, rename: bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if path.is_dir() {
            compressed_copy(&path, &to.join(&name), codec, rename);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let dump_file = name.ends_with(".bson") || name.ends_with(".json");
        if rename && dump_file {
            let out = to.join(format!("{name}{}", codec.suffix()));
            std::fs::write(out, compress(codec, &bytes)).unwrap();
        } else if !rename && name.ends_with(".bson") {
            std::fs::write(to.join(&name), compress(codec, &bytes)).unwrap();
        } else {
            std::fs::write(to.join(&name), bytes).unwrap();
        }
    }
}

/// What an export wrote, by key relative to the export prefix: SHA-256 of the decompressed
/// content and its line count (the documents of a data file).
type Exported = BTreeMap<String, (String, usize)>;

async fn export(source: SnapshotSource, bucket: &Path) -> Result<Exported, String> {
    let location = storage::open(bucket.to_str().unwrap(), &StorageOptions::default()).unwrap();
    let prefix = export::export_prefix(
        "a0123456789abcdef012345a",
        "b0123456789abcdef012345b",
        "c",
        Utc::now(),
        Utc::now(),
    );
    let target = ExportTarget {
        bucket: location,
        prefix: prefix.clone(),
    };
    export::run_export(
        vec![("rs0".into(), Arc::new(source))],
        &target,
        &CompleteInfo::default(),
        &ExportOptions::default(),
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    Ok(read_export(&bucket.join(prefix)))
}

pub fn read_export(root: &Path) -> Exported {
    let mut out = BTreeMap::new();
    for path in support::files_under(root) {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with('.') {
            continue; // .manifest.json and .complete hold times and keys of this export
        }
        let raw = std::fs::read(&path).unwrap();
        let text = if rel.ends_with(".gz") {
            let mut text = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut text)
                .unwrap();
            text
        } else if rel.ends_with("/.schema.json") {
            // The same data gives the same schema; only its Athena DDL differs between two
            // exports, as it names the export's own location.
            let mut schema: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            let ddl = schema.get_mut("athenaDdl").map(serde_json::Value::take);
            assert!(ddl.is_some_and(|d| d.is_string()), "{rel}: no athenaDdl");
            serde_json::to_vec(&schema).unwrap()
        } else {
            raw
        };
        let lines = text.iter().filter(|b| **b == b'\n').count();
        out.insert(rel, (hex::encode(Sha256::digest(&text)), lines));
    }
    out
}

async fn open(path: &Path) -> Result<SnapshotSource, SourceError> {
    let location = storage::open(path.to_str().unwrap(), &StorageOptions::default()).unwrap();
    SnapshotSource::open(location).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_directory_dumps_export_like_the_plain_ones() {
    let scratch = tempfile::tempdir().unwrap();
    for dump in ["testdirs", "specialcharacter", "collMod_ttl_index"] {
        let plain = export(
            open(&restore_data(dump)).await.unwrap(),
            &scratch.path().join(format!("plain-{dump}")),
        )
        .await
        .unwrap();
        let documents: usize = plain.values().map(|(_, n)| n).sum();
        assert!(documents > 0, "{dump}: nothing exported");
        for codec in COMPRESSED {
            for rename in [true, false] {
                if !rename && codec == Codec::Gzip {
                    // gzip is recognised by name in directory dumps (see snapshot::codec).
                    continue;
                }
                let tag = format!(
                    "{dump}-{codec}-{}",
                    if rename { "named" } else { "sniffed" }
                );
                let copy = scratch.path().join(&tag);
                compressed_copy(&restore_data(dump), &copy, codec, rename);
                let source = open(&copy).await.unwrap();
                let expected_format = match (codec, rename) {
                    (Codec::Gzip, _) => SourceFormat::DirectoryGzip,
                    (_, true) => SourceFormat::DirectoryCompressed,
                    (_, false) => SourceFormat::Directory,
                };
                assert_eq!(source.format, expected_format, "{tag}");
                let got = export(source, &scratch.path().join(format!("bucket-{tag}")))
                    .await
                    .unwrap_or_else(|e| panic!("{tag}: {e}"));
                assert_eq!(
                    got, plain,
                    "{tag}: the export differs from the plain dump's"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_archives_export_like_the_plain_ones() {
    let scratch = tempfile::tempdir().unwrap();
    for archive in ["test.bar.archive", "dump-w-oplog.archive"] {
        let path = restore_data(archive);
        let plain = export(
            open(&path).await.unwrap(),
            &scratch.path().join(format!("plain-{archive}")),
        )
        .await
        .unwrap();
        assert!(
            plain.values().map(|(_, n)| n).sum::<usize>() > 0,
            "{archive}"
        );
        let bytes = std::fs::read(&path).unwrap();
        for codec in COMPRESSED {
            // No suffix: an archive's compression is always taken from its bytes.
            let copy = scratch.path().join(format!("{archive}-{codec}"));
            std::fs::write(&copy, compress(codec, &bytes)).unwrap();
            let source = open(&copy).await.unwrap();
            let expected_format = match codec {
                Codec::Gzip => SourceFormat::ArchiveGzip,
                other => SourceFormat::ArchiveCompressed(other),
            };
            assert_eq!(source.format, expected_format, "{archive} {codec}");
            let got = export(
                source,
                &scratch.path().join(format!("bucket-{archive}-{codec}")),
            )
            .await
            .unwrap_or_else(|e| panic!("{archive} {codec}: {e}"));
            assert_eq!(got, plain, "{archive} {codec}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_compressed_file_fails_with_the_file_and_an_offset() {
    let scratch = tempfile::tempdir().unwrap();
    for codec in COMPRESSED {
        let copy = scratch.path().join(format!("dump-{codec}"));
        compressed_copy(&restore_data("testdirs"), &copy, codec, true);
        let file = copy.join(format!("db1/c1.bson{}", codec.suffix()));
        let mut bytes = std::fs::read(&file).unwrap();
        // Cut the stream in the middle: every codec notices, or the BSON framing does.
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&file, &bytes).unwrap();
        let bucket = scratch.path().join(format!("bucket-{codec}"));
        let error = export(open(&copy).await.unwrap(), &bucket)
            .await
            .expect_err("a truncated file must fail the export");
        assert!(error.contains("c1.bson"), "{codec}: {error}");
        assert!(error.contains("byte"), "{codec}: {error}");
        assert!(
            !support::files_under(&bucket)
                .iter()
                .any(|p| p.ends_with(".complete")),
            "{codec}: .complete written over a failed export"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_suffix_lies_is_refused_naming_both() {
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("dump");
    compressed_copy(&restore_data("specialcharacter"), &copy, Codec::Zstd, true);
    // An s2 stream under a .zst name.
    let file = support::files_under(&copy)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".bson.zst"))
        .unwrap();
    let plain = std::fs::read(restore_data("specialcharacter/db1/caf%C3%A9s.bson")).unwrap();
    std::fs::write(&file, compress(Codec::S2, &plain)).unwrap();
    let error = export(open(&copy).await.unwrap(), &scratch.path().join("bucket"))
        .await
        .unwrap_err();
    assert!(error.contains("zstd data expected"), "{error}");
    assert!(error.contains("s2"), "{error}");
}

//! Exports read back by tools we did not write: every usable mongo-tools fixture exported and
//! read by Python (`gzip` + `bson.json_util`), compared collection by collection, as BSON
//! bytes, with the source; the real time-series dumps exported to measurements that agree with
//! their buckets; the malformed fixtures fail with a clear error; and a generated export read
//! by `gzip -d`, Java's `GZIPInputStream` and DuckDB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::Utc;
use sha2::{Digest, Sha256};
use snapex::export::{self, CompleteInfo, ExportOptions, ExportTarget, NoProgress};
use snapex::snapshot::{SnapshotSource, SourceError, Visitor};
use snapex::storage::{self, StorageOptions};
use tokio_util::sync::CancellationToken;

use crate::support;

fn fixtures() -> PathBuf {
    support::mongo_tools()
}

/// Per-namespace SHA-256 of the source documents, in order, as the snapshot reader yields them.
struct Collect {
    names: Vec<String>,
    /// Time-series namespaces: the reader yields their buckets, the export their measurements
    /// (checked against each other by `real_time_series_dumps_export_measurements_within_their_buckets`).
    time_series: Vec<String>,
    hashes: BTreeMap<String, (u64, Sha256)>,
    /// The documents themselves (fixtures are small), for the semantic fallback.
    docs: BTreeMap<String, Vec<u8>>,
}

impl Visitor for Collect {
    fn begin(&mut self, index: usize) -> Result<(), SourceError> {
        self.hashes
            .entry(self.names[index].clone())
            .or_insert_with(|| (0, Sha256::new()));
        Ok(())
    }
    fn document(&mut self, index: usize, doc: &[u8], _offset: u64) -> Result<(), SourceError> {
        let entry = self.hashes.get_mut(&self.names[index]).unwrap();
        entry.0 += 1;
        entry.1.update(doc);
        self.docs
            .entry(self.names[index].clone())
            .or_default()
            .extend_from_slice(doc);
        Ok(())
    }
    fn end(&mut self, _index: usize) -> Result<(), SourceError> {
        Ok(())
    }
}

/// Python: are the documents of a `.bson` file and of the data files the same values?
const SAME_VALUES: &str = r#"
import gzip, sys, bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.json_util import loads, JSONOptions, JSONMode
opts = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO)
src = bson.decode_all(open(sys.argv[1], "rb").read(), opts)
jopts = JSONOptions(json_mode=JSONMode.CANONICAL, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
out = []
for f in sys.argv[2:]:
    with gzip.open(f, "rt", encoding="utf-8") as fh:
        out.extend(loads(line, json_options=jopts) for line in fh)
print("same" if src == out else "differ")
"#;

async fn export_dir(source: Arc<SnapshotSource>, bucket: &Path) -> Result<PathBuf, String> {
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
        vec![("rs0".into(), source)],
        &target,
        &CompleteInfo::default(),
        &ExportOptions::default(),
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(bucket.join(prefix))
}

/// The fixture sources: every top-level directory of mongorestore's testdata, every archive,
/// and bsondump's `.bson` files each placed in a one-collection dump.
fn candidate_sources(scratch: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let restore = fixtures().join("mongorestore/testdata");
    let mut entries: Vec<_> = std::fs::read_dir(&restore)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() || name.ends_with(".archive") {
            out.push((format!("mongorestore/{name}"), path));
        }
    }
    let ts = restore.join("timeseries_tests/dump.archive");
    out.push(("mongorestore/timeseries_tests/dump.archive".into(), ts));
    out.push((
        "mongorestore/prelude_test/prelude_gzip".into(),
        restore.join("prelude_test/prelude_gzip"),
    ));
    for name in [
        "all_in_one_doc",
        "all_types",
        "sample",
        "broken_array",
        "deep_nested",
    ] {
        let dir = scratch.join(format!("bsondump-{name}/db"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            fixtures().join(format!("bsondump/testdata/{name}.bson")),
            dir.join(format!("{name}.bson")),
        )
        .unwrap();
        out.push((
            format!("bsondump/{name}"),
            dir.parent().unwrap().to_path_buf(),
        ));
    }
    out.push(("mongodump/importCollection".into(), {
        let dir = scratch.join("importCollection/db");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            fixtures().join("mongodump/testdata/importCollection.bson"),
            dir.join("importCollection.bson"),
        )
        .unwrap();
        dir.parent().unwrap().to_path_buf()
    }));
    out
}

#[tokio::test]
async fn every_usable_fixture_round_trips_through_python_bson() {
    let Some(python) = support::python() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let mut exported = 0;
    let mut refused = Vec::new();
    for (name, path) in candidate_sources(scratch.path()) {
        let location = storage::open(path.to_str().unwrap(), &StorageOptions::default()).unwrap();
        let source = match SnapshotSource::open(location).await {
            Ok(source) => Arc::new(source),
            Err(e) => {
                // A fixture we refuse must say why, naming what is wrong.
                let message = e.to_string();
                assert!(message.len() > 10, "{name}: unclear error {message:?}");
                refused.push(format!("{name}: {message}"));
                continue;
            }
        };
        let mut expected = Collect {
            names: source
                .collections
                .iter()
                .map(|c| format!("{}.{}", c.db, c.name))
                .collect(),
            time_series: source
                .collections
                .iter()
                .filter(|c| c.kind == snapex::snapshot::CollectionKind::Timeseries)
                .map(|c| c.namespace())
                .collect(),
            hashes: BTreeMap::new(),
            docs: BTreeMap::new(),
        };
        let read = {
            let source = source.clone();
            tokio::task::spawn_blocking(move || {
                let handle = tokio::runtime::Handle::current();
                let result = source.read(&handle, &mut expected);
                (result, expected)
            })
        };
        let (read_result, expected) = read.await.unwrap();
        let bucket = scratch
            .path()
            .join(format!("bucket-{}", name.replace('/', "_")));
        let export = export_dir(source.clone(), &bucket).await;
        match (read_result, export) {
            (Ok(()), Ok(prefix_dir)) => {
                let out = Command::new(&python)
                    .arg(support::reader("read_export.py"))
                    .arg(&prefix_dir)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name}: python reader failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                for (ns, (count, sha)) in expected.hashes {
                    if expected.time_series.contains(&ns) {
                        continue;
                    }
                    if count == 0 {
                        assert!(
                            read["collections"].get(&ns).is_none(),
                            "{name}: empty {ns} has data files"
                        );
                        let meta = prefix_dir
                            .join(ns.split_once('.').unwrap().0)
                            .join(ns.split_once('.').unwrap().1)
                            .join("metadata.json");
                        assert!(meta.exists(), "{name}: {} missing", meta.display());
                        continue;
                    }
                    let got = &read["collections"][&ns];
                    assert_eq!(got["documents"], count, "{name}: {ns} document count");
                    if got["sha256"].as_str().unwrap_or("") != hex::encode(sha.finalize()) {
                        // pymongo maps the deprecated types (symbol, undefined, DBPointer) to
                        // others when it decodes, so its re-encoded bytes cannot match: compare
                        // the values pymongo sees on both sides instead.
                        let files: Vec<PathBuf> = read["files"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|f| f["namespace"] == ns.as_str())
                            .map(|f| prefix_dir.join(f["path"].as_str().unwrap()))
                            .collect();
                        let source_file = scratch.path().join("source.bson");
                        std::fs::write(&source_file, &expected.docs[&ns]).unwrap();
                        let out = Command::new(&python)
                            .arg("-c")
                            .arg(SAME_VALUES)
                            .arg(&source_file)
                            .args(&files)
                            .output()
                            .unwrap();
                        assert_eq!(
                            String::from_utf8_lossy(&out.stdout).trim(),
                            "same",
                            "{name}: {ns}: documents differ from the source: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
                exported += 1;
            }
            (Err(read_error), Err(export_error)) => {
                // Both fail on a corrupt source; the export's error names the object.
                assert!(
                    export_error.contains("rs0"),
                    "{name}: {export_error} (source: {read_error})"
                );
                refused.push(format!("{name}: {export_error}"));
            }
            (Ok(()), Err(e)) => {
                // Readable source, failed export: only invalid BSON content or invalid
                // time-series buckets may do this.
                assert!(
                    e.contains("invalid document") || e.contains("invalid bucket"),
                    "{name}: {e}"
                );
                refused.push(format!("{name}: {e}"));
            }
            (Err(e), Ok(_)) => panic!("{name}: export succeeded over an unreadable source: {e}"),
        }
    }
    eprintln!(
        "exported {exported} fixtures; refused:\n  {}",
        refused.join("\n  ")
    );
    assert!(exported >= 25, "only {exported} fixtures exported");
    assert!(
        refused.iter().any(|r| r.contains("bad-format.archive")),
        "bad-format.archive must be refused: {refused:?}"
    );
}

/// Python: every measurement of the given data files, in order: its keys, its time in
/// milliseconds and its meta value (as canonical Extended JSON).
const MEASUREMENTS: &str = r#"
import gzip, json, sys
from bson.json_util import loads, dumps, JSONOptions, JSONMode, DatetimeConversion
opts = JSONOptions(json_mode=JSONMode.CANONICAL, datetime_conversion=DatetimeConversion.DATETIME_MS)
out = []
for f in sys.argv[2:]:
    with gzip.open(f, "rt", encoding="utf-8") as fh:
        for line in fh:
            doc = loads(line, json_options=opts)
            out.append({"keys": list(doc.keys()), "time": int(doc[sys.argv[1]]),
                        "meta": dumps(doc.get("meta"), json_options=opts)})
print(json.dumps(out))
"#;

/// The buckets of the time-series collection `namespace`, as the snapshot reader yields them.
async fn source_buckets(source: Arc<SnapshotSource>, namespace: &str) -> Vec<bson::Document> {
    struct Buckets(usize, Vec<bson::Document>);
    impl Visitor for Buckets {
        fn begin(&mut self, _index: usize) -> Result<(), SourceError> {
            Ok(())
        }
        fn document(&mut self, index: usize, doc: &[u8], _offset: u64) -> Result<(), SourceError> {
            if index == self.0 {
                self.1.push(bson::Document::from_reader(doc).unwrap());
            }
            Ok(())
        }
        fn end(&mut self, _index: usize) -> Result<(), SourceError> {
            Ok(())
        }
    }
    let index = source
        .collections
        .iter()
        .position(|c| c.namespace() == namespace)
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let mut buckets = Buckets(index, Vec::new());
        source
            .read(&tokio::runtime::Handle::current(), &mut buckets)
            .unwrap();
        buckets.1
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn real_time_series_dumps_export_measurements_within_their_buckets() {
    let Some(python) = support::python() else {
        return;
    };
    let ns = "timeseries_test.foo_ts";
    for fixture in ["ts_dump", "ts_dump_with_oplog", "dump.archive"] {
        let path = fixtures()
            .join("mongorestore/testdata/timeseries_tests")
            .join(fixture);
        let location = storage::open(path.to_str().unwrap(), &StorageOptions::default()).unwrap();
        let source = Arc::new(SnapshotSource::open(location).await.unwrap());
        let buckets = source_buckets(source.clone(), ns).await;
        assert_eq!(buckets.len(), 10, "{fixture}");
        let scratch = tempfile::tempdir().unwrap();
        let prefix_dir = export_dir(source, scratch.path()).await.unwrap();

        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(prefix_dir.join(".manifest.json")).unwrap())
                .unwrap();
        let mut files: Vec<(u64, String)> = manifest["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["collection"] == ns && o["key"].as_str().unwrap().ends_with(".json.gz"))
            .map(|o| {
                let key = o["key"].as_str().unwrap().to_string();
                let n = key.rsplit('.').nth(2).unwrap().parse().unwrap();
                (n, key)
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{fixture}: no data file");
        let out = Command::new(&python)
            .arg("-c")
            .arg(MEASUREMENTS)
            .arg("ts")
            .args(files.iter().map(|(_, key)| prefix_dir.join(key)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{fixture}: python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let measurements: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();

        // As many measurements as the buckets hold (version 1: the time field's entries), each
        // bucket's in turn, every time within its bucket's control.min and control.max.
        let counts: Vec<usize> = buckets
            .iter()
            .map(|b| match b.get_document("control").unwrap().get("count") {
                Some(count) => count.as_i32().unwrap() as usize,
                None => b
                    .get_document("data")
                    .unwrap()
                    .get_document("ts")
                    .unwrap()
                    .len(),
            })
            .collect();
        let total: usize = counts.iter().sum();
        assert_eq!(measurements.len(), total, "{fixture}");
        assert_eq!(
            manifest["documents"].as_u64(),
            Some(total as u64),
            "{fixture}"
        );
        assert_eq!(manifest["buckets"], 10, "{fixture}");
        let mut next = measurements.iter();
        for (b, count) in buckets.iter().zip(counts) {
            let control = b.get_document("control").unwrap();
            let min = control
                .get_document("min")
                .unwrap()
                .get_datetime("ts")
                .unwrap();
            let max = control
                .get_document("max")
                .unwrap()
                .get_datetime("ts")
                .unwrap();
            let meta = bson::Bson::Document(b.get_document("meta").unwrap().clone())
                .into_canonical_extjson();
            for _ in 0..count {
                let m = next.next().unwrap();
                let time = m["time"].as_i64().unwrap();
                assert!(
                    (min.timestamp_millis()..=max.timestamp_millis()).contains(&time),
                    "{fixture}: {time} outside bucket {}",
                    b.get_object_id("_id").unwrap()
                );
                let keys: Vec<&str> = m["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap())
                    .collect();
                assert_eq!(&keys[..2], ["ts", "meta"], "{fixture}");
                assert!(
                    keys.contains(&"_id") && keys.contains(&"measurement"),
                    "{keys:?}"
                );
                let got: serde_json::Value =
                    serde_json::from_str(m["meta"].as_str().unwrap()).unwrap();
                assert_eq!(got, meta, "{fixture}: meta");
            }
        }
        let metadata: serde_json::Value = serde_json::from_slice(
            &std::fs::read(prefix_dir.join("timeseries_test/foo_ts/metadata.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(metadata["type"], "timeseries", "{fixture}");
        assert_eq!(
            metadata["options"]["timeseries"]["timeField"], "ts",
            "{fixture}"
        );
    }
}

#[tokio::test]
async fn malformed_bsondump_fixtures_fail_with_object_and_offset() {
    for name in [
        "bad_cstring",
        "bad_type",
        "partial_file",
        "random_bytes",
        "invalid_field_name",
    ] {
        let scratch = tempfile::tempdir().unwrap();
        let db = scratch.path().join("dump/db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::copy(
            fixtures().join(format!("bsondump/testdata/{name}.bson")),
            db.join("coll.bson"),
        )
        .unwrap();
        let location = storage::open(
            scratch.path().join("dump").to_str().unwrap(),
            &StorageOptions::default(),
        )
        .unwrap();
        let source = Arc::new(SnapshotSource::open(location).await.unwrap());
        let bucket = scratch.path().join("bucket");
        let error = export_dir(source, &bucket)
            .await
            .expect_err("malformed input must fail the export");
        assert!(error.contains("coll.bson"), "{name}: {error}");
        assert!(error.contains("byte"), "{name}: {error}");
        assert!(error.contains("rs0"), "{name}: {error}");
        let completes: Vec<_> = support::files_under(&bucket)
            .into_iter()
            .filter(|p| p.ends_with(".complete"))
            .collect();
        assert!(completes.is_empty(), "{name}: .complete written");
    }
}

#[tokio::test]
async fn gzip_java_and_duckdb_read_every_data_file() {
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("dump");
    snapex::snapshot::generate::write_sample_dump(
        &dump,
        &snapex::snapshot::generate::SampleSpec {
            target_bytes: 3_000_000,
            seed: 2,
        },
    )
    .unwrap();
    let location = storage::open(dump.to_str().unwrap(), &StorageOptions::default()).unwrap();
    let source = Arc::new(SnapshotSource::open(location).await.unwrap());
    let prefix = export_dir(source, &scratch.path().join("bucket"))
        .await
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(prefix.join(".manifest.json")).unwrap()).unwrap();
    let expected: BTreeMap<String, u64> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["key"].as_str().unwrap().ends_with(".json.gz"))
        .map(|o| {
            (
                prefix
                    .join(o["key"].as_str().unwrap())
                    .display()
                    .to_string(),
                o["documents"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(expected.len() >= 5);

    // gzip -d
    for (file, docs) in &expected {
        let out = Command::new("gzip").args(["-dc", file]).output().unwrap();
        assert!(out.status.success(), "gzip -d {file}");
        let lines = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(lines, *docs, "gzip -d {file}");
    }

    // Java GZIPInputStream
    let out = Command::new("java")
        .arg(support::reader("GzipRead.java"))
        .args(expected.keys())
        .output()
        .expect("java is on the machine");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let java: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in java["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        assert_eq!(
            f["lines"].as_u64(),
            expected.get(path).copied(),
            "java {path}"
        );
        assert_eq!(f["endsWithNewline"], true);
    }

    // DuckDB, as a data team would query the files.
    if let Some(python) = support::python() {
        let out = Command::new(python)
            .arg(support::reader("duckdb_read.py"))
            .args(expected.keys())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let duck: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for f in duck["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            assert_eq!(
                f["rows"].as_u64(),
                expected.get(path).copied(),
                "duckdb {path}"
            );
        }
    }
}

//! Parquet exports read by tools we did not write: pyarrow, DuckDB and polars read every file,
//! and `tests/readers/parquet_read.py` rebuilds each row into a document under the mapping the
//! collection's `.schema.json` states, comparing it — types and field order included — with the
//! source document, one by one. Sources: mongo-tools fixtures, every valid case of the BSON
//! corpus, generated samples, and hand-made collections for the hard shapes (mixed types, deep
//! nesting, empty collections, huge strings). `snapex verify` checks the same exports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bson::{Bson, doc};
use chrono::Utc;
use serde_json::Value;
use snapex::export::{self, CompleteInfo, DataFormat, ExportOptions, ExportTarget, NoProgress};
use snapex::snapshot::SnapshotSource;
use snapex::storage::{self, StorageOptions};
use tokio_util::sync::CancellationToken;

use crate::support;

fn reader_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/readers/parquet_read.py")
}

fn parquet_options() -> ExportOptions {
    ExportOptions {
        data_format: DataFormat::Parquet,
        ..Default::default()
    }
}

/// Exports the dump at `dump` into a `file://` bucket at `bucket`; the export prefix's folder.
async fn export_dump(dump: &Path, bucket: &Path, options: &ExportOptions) -> PathBuf {
    let location = storage::open(dump.to_str().unwrap(), &StorageOptions::default()).unwrap();
    let source = Arc::new(SnapshotSource::open(location).await.unwrap());
    std::fs::create_dir_all(bucket).unwrap();
    let target_location =
        storage::open(bucket.to_str().unwrap(), &StorageOptions::default()).unwrap();
    let prefix = export::export_prefix(
        "a0123456789abcdef012345a",
        "b0123456789abcdef012345b",
        "c",
        Utc::now(),
        Utc::now(),
    );
    let target = ExportTarget {
        bucket: target_location,
        prefix: prefix.clone(),
    };
    export::run_export(
        vec![("rs0".into(), source)],
        &target,
        &CompleteInfo::default(),
        options,
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("export of {}: {}", dump.display(), e));
    bucket.join(prefix)
}

/// Runs the three readers on one collection and checks every row against `source_bson`.
fn check_collection(python: &Path, prefix: &Path, db: &str, coll: &str, source_bson: &Path) {
    let output = Command::new(python)
        .arg(reader_script())
        .args([prefix.to_str().unwrap(), db, coll])
        .arg(source_bson)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{db}.{coll}: reader failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{db}.{coll}: reader output {e}: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let documents = report["documents"].as_u64().unwrap();
    for reader in ["pyarrow", "duckdb", "polars"] {
        let r = &report["readers"][reader];
        assert_eq!(
            (r["rows"].as_u64(), r["same"].as_u64()),
            (Some(documents), Some(documents)),
            "{db}.{coll} read by {reader}: first difference {}",
            r["first_difference"]
        );
    }
    if report["files"].as_u64() != Some(0) {
        assert_eq!(
            report["duckdb_count"].as_u64(),
            Some(documents),
            "{db}.{coll}: DuckDB count(*)"
        );
    }
}

fn write_dump(dir: &Path, db: &str, coll: &str, docs: &[bson::Document]) -> PathBuf {
    let folder = dir.join(db);
    std::fs::create_dir_all(&folder).unwrap();
    let mut bytes = Vec::new();
    for d in docs {
        bytes.extend_from_slice(&d.to_vec().unwrap());
    }
    let path = folder.join(format!("{coll}.bson"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn schema_of(prefix: &Path, db: &str, coll: &str) -> Value {
    let text = std::fs::read(prefix.join(db).join(coll).join(".schema.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

fn field<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {schema}"))
}

#[tokio::test]
async fn mongo_tools_fixtures_export_to_parquet_whose_rows_are_their_documents() {
    let Some(python) = support::python() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let fixtures = support::mongo_tools();
    let mut sources = Vec::new();
    for name in ["all_in_one_doc", "all_types", "sample", "deep_nested"] {
        sources.push((
            name,
            fixtures.join(format!("bsondump/testdata/{name}.bson")),
        ));
    }
    sources.push((
        "importCollection",
        fixtures.join("mongodump/testdata/importCollection.bson"),
    ));
    for (name, bson_file) in sources {
        let dump = scratch.path().join(format!("dump-{name}"));
        std::fs::create_dir_all(dump.join("db")).unwrap();
        let copy = dump.join("db").join(format!("{name}.bson"));
        std::fs::copy(&bson_file, &copy).unwrap();
        let prefix = export_dump(
            &dump,
            &scratch.path().join(format!("bucket-{name}")),
            &parquet_options(),
        )
        .await;
        check_collection(&python, &prefix, "db", name, &copy);
    }
}

#[tokio::test]
async fn every_valid_bson_corpus_case_round_trips_through_parquet_readers() {
    let Some(python) = support::python() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("dump");
    let corpus = support::shared_data().join("bson-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut collections = Vec::new();
    for file in files {
        let spec: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let Some(valid) = spec["valid"].as_array() else {
            continue;
        };
        let mut bytes = Vec::new();
        for case in valid {
            let hex = case["canonical_bson"].as_str().unwrap();
            bytes.extend_from_slice(&hex::decode(hex).unwrap());
        }
        if bytes.is_empty() {
            continue;
        }
        let name = file
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        std::fs::create_dir_all(dump.join("corpus")).unwrap();
        let path = dump.join("corpus").join(format!("{name}.bson"));
        std::fs::write(&path, bytes).unwrap();
        collections.push((name, path));
    }
    assert!(collections.len() > 15, "the corpus has its type files");
    let prefix = export_dump(&dump, &scratch.path().join("bucket"), &parquet_options()).await;
    for (name, path) in &collections {
        check_collection(&python, &prefix, "corpus", name, path);
    }
    // The types that have an Arrow type got it (the corpus files hold one type each, under "d"
    // or "a"): not everything fell back to JSON.
    let kind = |coll: &str, name: &str| {
        field(&schema_of(&prefix, "corpus", coll), name)["arrow"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(kind("int32", "i"), "Int32");
    assert_eq!(kind("int64", "a"), "Int64");
    assert_eq!(kind("boolean", "b"), "Boolean");
    assert_eq!(kind("oid", "a"), "Utf8");
}

#[tokio::test]
async fn mixed_types_deep_nesting_empty_collections_and_huge_strings_read_back_exactly() {
    let Some(python) = support::python() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("dump");
    let mixed = write_dump(
        &dump,
        "shapes",
        "mixed",
        &[
            doc! {"_id": 1, "v": 1, "n": 1, "opt": "a", "sub": {"x": 1, "y": [1, 2]}},
            doc! {"_id": 2, "v": "one", "n": 2i64, "sub": {"x": 2, "y": []}},
            doc! {"_id": 3, "v": {"w": 1}, "n": Bson::Null, "opt": Bson::Null, "sub": {"y": [3]}},
            doc! {"_id": 4, "v": [1, "a", {"b": 2}], "n": 1.5, "sub": {"x": 4, "y": [Bson::Null]}},
        ],
    );
    let mut deep = doc! {"leaf": "bottom"};
    for i in 0..60 {
        deep = doc! {"level": i, "next": deep};
    }
    let deep_path = write_dump(
        &dump,
        "shapes",
        "deep",
        &[
            doc! {"_id": 1, "d": deep.clone()},
            doc! {"_id": 2, "d": deep},
        ],
    );
    let empty = write_dump(&dump, "shapes", "empty", &[]);
    let huge = "x".repeat(15 * 1024 * 1024);
    let huge_path = write_dump(
        &dump,
        "shapes",
        "huge",
        &[
            doc! {"_id": 1, "s": huge.clone()},
            doc! {"_id": 2, "s": "small"},
        ],
    );
    let prefix = export_dump(&dump, &scratch.path().join("bucket"), &parquet_options()).await;
    for (coll, path) in [
        ("mixed", &mixed),
        ("deep", &deep_path),
        ("empty", &empty),
        ("huge", &huge_path),
    ] {
        check_collection(&python, &prefix, "shapes", coll, path);
    }
    let mixed_schema = schema_of(&prefix, "shapes", "mixed");
    assert_eq!(
        field(&mixed_schema, "v")["encoding"],
        "canonical extended json"
    );
    assert_eq!(
        field(&mixed_schema, "n")["encoding"],
        "canonical extended json"
    );
    assert_eq!(field(&mixed_schema, "_id")["arrow"], "Int32");
    assert_eq!(field(&mixed_schema, "opt")["nullMeans"], "missing");
    assert_eq!(field(&mixed_schema, "v")["stats"]["types"]["string"], 1);
    assert_eq!(field(&mixed_schema, "sub")["arrow"], "Struct");
    let empty_schema = schema_of(&prefix, "shapes", "empty");
    assert_eq!(empty_schema["documents"], 0);
    assert!(
        !prefix.join("shapes/empty/rs0.0.parquet").exists(),
        "an empty collection has no data file, as in JSON"
    );
    assert!(prefix.join("shapes/empty/metadata.json").exists());
}

#[tokio::test]
async fn a_generated_sample_exports_to_parquet_that_verify_accepts_and_readers_read() {
    let Some(python) = support::python() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("dump");
    let stats = snapex::snapshot::generate::write_sample_dump(
        &dump,
        &snapex::snapshot::generate::SampleSpec {
            target_bytes: 3 * 1024 * 1024,
            seed: 7,
        },
    )
    .unwrap();
    // Small files and row groups, so that collections span several of each.
    let options = ExportOptions {
        chunk_size: 64 * 1024,
        parquet: export::parquet::ParquetOptions {
            row_group_rows: 500,
            compression: export::parquet::ParquetCompression::Snappy,
        },
        ..parquet_options()
    };
    let prefix = export_dump(&dump, &scratch.path().join("bucket"), &options).await;
    for c in &stats.collections {
        let path = dump.join(&c.db).join(format!("{}.bson", c.name));
        let folder = prefix.join(&c.db).join(&c.name);
        if !folder.exists() || !path.exists() || c.name.starts_with("system.buckets") {
            continue;
        }
        let schema = schema_of(&prefix, &c.db, &c.name);
        if schema["documents"].as_u64() != Some(c.documents) {
            // A time-series collection: its rows are measurements, not the file's buckets.
            continue;
        }
        check_collection(&python, &prefix, &c.db, &c.name, &path);
    }
    let orders = std::fs::read_dir(prefix.join("shop/orders"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".parquet")
        })
        .count();
    assert!(orders > 1, "orders span several files ({orders})");

    let location = storage::open(prefix.to_str().unwrap(), &StorageOptions::default()).unwrap();
    let report = export::verify::verify(&location).await;
    assert!(report.is_ok(), "{:?}", report.problems);
    let complete: Value =
        serde_json::from_slice(&std::fs::read(prefix.join(".complete")).unwrap()).unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(prefix.join(".manifest.json")).unwrap()).unwrap();
    let objects = manifest["objects"].as_array().unwrap();
    assert_eq!(complete["totalFiles"].as_u64(), Some(objects.len() as u64));
    assert!(
        objects
            .iter()
            .any(|o| o["key"] == "shop/orders/.schema.json"),
        ".schema.json is a manifest object"
    );

    // A Parquet file whose footer lost rows is caught (its hash too, but the row count says why).
    let first = prefix.join("shop/orders/rs0.0.parquet");
    let mut bytes = std::fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 1] = b'X';
    std::fs::write(&first, bytes).unwrap();
    let report = export::verify::verify(&location).await;
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("rs0.0.parquet") && p.contains("not a valid Parquet file")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_json_export_writes_schema_json_with_statistics_and_athena_ddl() {
    let scratch = tempfile::tempdir().unwrap();
    let dump = scratch.path().join("dump");
    write_dump(
        &dump,
        "shop",
        "orders",
        &[
            doc! {"_id": bson::oid::ObjectId::new(), "total": 1.5, "items": [{"sku": "a"}]},
            doc! {"_id": bson::oid::ObjectId::new(), "total": 2.5, "items": []},
        ],
    );
    let prefix = export_dump(
        &dump,
        &scratch.path().join("bucket"),
        &ExportOptions::default(),
    )
    .await;
    let schema = schema_of(&prefix, "shop", "orders");
    assert_eq!(schema["exportFormat"], "json");
    assert_eq!(schema["documents"], 2);
    assert_eq!(field(&schema, "_id")["bson"], "objectId");
    assert_eq!(field(&schema, "total")["stats"]["types"]["double"], 2);
    let ddl = schema["athenaDdl"].as_str().unwrap();
    assert!(ddl.starts_with("CREATE EXTERNAL TABLE"), "{ddl}");
    assert!(ddl.contains("`items` array<struct<sku:string>>"), "{ddl}");
    // Atlas's own objects are as before, and verify accepts the export with the new object.
    assert!(prefix.join("shop/orders/rs0.0.json.gz").exists());
    let location = storage::open(prefix.to_str().unwrap(), &StorageOptions::default()).unwrap();
    let report = export::verify::verify(&location).await;
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// The manifest objects of `db.coll`'s data files (ending in `suffix`) in the export at `prefix`.
fn data_objects(prefix: &Path, db: &str, coll: &str, suffix: &str) -> Vec<Value> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(prefix.join(".manifest.json")).unwrap()).unwrap();
    let folder = format!("{db}/{coll}/");
    manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            let key = o["key"].as_str().unwrap();
            key.starts_with(&folder) && key.ends_with(suffix)
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn time_series_fixtures_export_to_parquet_rows_that_are_the_measurements_of_the_json_export()
{
    let Some(python) = support::python() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let fixtures = support::mongo_tools().join("mongorestore/testdata/timeseries_tests");
    for (name, expected) in [("ts_dump", 1000), ("ts_dump_with_oplog", 1294)] {
        let dump = fixtures.join(name);
        // Buckets of the 5.0 dumps: version 1, one measurement per key of the time field's
        // object, 10 buckets.
        let bson_file = dump.join("timeseries_test/system.buckets.foo_ts.bson");
        let bytes = std::fs::read(&bson_file).unwrap();
        let mut buckets = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let len = i32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            buckets.push(bson::Document::from_reader(&rest[..len]).unwrap());
            rest = &rest[len..];
        }
        let measurements: usize = buckets
            .iter()
            .map(|b| {
                b.get_document("data")
                    .unwrap()
                    .get_document("ts")
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!((buckets.len(), measurements), (10, expected), "{name}");

        let json = export_dump(
            &dump,
            &scratch.path().join(format!("{name}-json")),
            &ExportOptions::default(),
        )
        .await;
        let parquet = export_dump(
            &dump,
            &scratch.path().join(format!("{name}-parquet")),
            &parquet_options(),
        )
        .await;
        let json_files = data_objects(&json, "timeseries_test", "foo_ts", ".json.gz");
        let parquet_files = data_objects(&parquet, "timeseries_test", "foo_ts", ".parquet");
        assert_eq!(json_files.len(), 1, "{name}: {json_files:?}");
        assert_eq!(parquet_files.len(), 1, "{name}: {parquet_files:?}");
        // The manifest counts the same measurements, and the buckets they came from.
        for field in ["documents", "buckets"] {
            assert_eq!(
                parquet_files[0][field], json_files[0][field],
                "{name}: {field} of {} and of {}",
                parquet_files[0], json_files[0]
            );
        }
        assert_eq!(parquet_files[0]["documents"], measurements as u64, "{name}");
        assert_eq!(parquet_files[0]["buckets"], buckets.len() as u64, "{name}");
        assert!(
            !parquet
                .join("timeseries_test/system.buckets.foo_ts")
                .exists(),
            "{name}: nothing under the buckets' name"
        );
        // Row by row, read by pyarrow, DuckDB and polars and rebuilt under the mapping of the
        // `.schema.json`, the measurements the JSON export holds, in its order.
        let json_data = json.join(json_files[0]["key"].as_str().unwrap());
        check_collection(&python, &parquet, "timeseries_test", "foo_ts", &json_data);
    }
}

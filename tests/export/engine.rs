//! The export engine end to end: real mongodump fixtures and generated snapshots exported to
//! every object store (memory, local, S3 on moto, Azure on Azurite, GCS on our XML-API server),
//! read back and compared
//! document by document with the source BSON; failures injected in the middle of uploads;
//! `verify` against good and damaged exports.

use std::io::Read;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use snapex::export::{
    self, CompleteInfo, ExportError, ExportOptions, ExportSummary, ExportTarget, NoProgress,
};
use snapex::snapshot::SnapshotSource;
use snapex::storage::faulty::FaultyStore;
use snapex::storage::{self, Location, StorageOptions};
use tokio_util::sync::CancellationToken;

use crate::support;

fn fixtures() -> PathBuf {
    support::mongo_tools()
}

fn complete_info() -> CompleteInfo {
    CompleteInfo {
        org_id: "a0123456789abcdef012345a".into(),
        org_name: "Org One".into(),
        group_id: "b0123456789abcdef012345b".into(),
        group_name: "Project One".into(),
        cluster_unique_id: "c0123456789abcdef012345c".into(),
        cluster_name: "cluster0".into(),
        snapshot_initiation_date: Utc.with_ymd_and_hms(2026, 8, 10, 3, 27, 0).unwrap(),
        labels: vec![("env".into(), "test".into())],
        custom_data: vec![("team".into(), "data".into())],
    }
}

fn prefix() -> String {
    export::export_prefix(
        "a0123456789abcdef012345a",
        "b0123456789abcdef012345b",
        "cluster0",
        Utc.with_ymd_and_hms(2026, 8, 10, 3, 27, 0).unwrap(),
        Utc.timestamp_opt(1_786_332_505, 0).unwrap(),
    )
}

async fn open_source(path: &FsPath) -> Arc<SnapshotSource> {
    let location = storage::open(path.to_str().unwrap(), &StorageOptions::default()).unwrap();
    Arc::new(SnapshotSource::open(location).await.unwrap())
}

/// A generated sample dump of about `bytes` of BSON, and its source.
async fn generated(bytes: u64, seed: u64) -> (tempfile::TempDir, Arc<SnapshotSource>) {
    let dump = tempfile::tempdir().unwrap();
    snapex::snapshot::generate::write_sample_dump(
        dump.path(),
        &snapex::snapshot::generate::SampleSpec {
            target_bytes: bytes,
            seed,
        },
    )
    .unwrap();
    let source = open_source(dump.path()).await;
    (dump, source)
}

async fn export_to(
    bucket: &Location,
    parts: Vec<(String, Arc<SnapshotSource>)>,
    options: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    let target = ExportTarget {
        bucket: bucket.clone(),
        prefix: prefix(),
    };
    export::run_export(
        parts,
        &target,
        &complete_info(),
        options,
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
}

async fn get(store: &Arc<dyn ObjectStore>, path: &Path) -> Option<Vec<u8>> {
    match store.get(path).await {
        Ok(r) => Some(r.bytes().await.unwrap().to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("get {path}: {e}"),
    }
}

/// The documents of a `.bson` file (mongodump's format: concatenated documents), as bytes.
fn bson_docs(file: &FsPath) -> Vec<Vec<u8>> {
    let mut data = Vec::new();
    let mut f = std::fs::File::open(file).unwrap();
    f.read_to_end(&mut data).unwrap();
    if file.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .unwrap();
        data = out;
    }
    let mut docs = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let len = i32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        docs.push(data[at..at + len].to_vec());
        at += len;
    }
    docs
}

/// Every document of one collection in an export, decoded from canonical Extended JSON back to
/// BSON bytes by the `bson` crate (independent of our encoder), in file order.
async fn exported_docs(bucket: &Location, db: &str, coll: &str, rs: &str) -> Vec<Vec<u8>> {
    let mut docs = Vec::new();
    for n in 0.. {
        let path = bucket.path(&format!("{}/{db}/{coll}/{rs}.{n}.json.gz", prefix()));
        let Some(gz) = get(&bucket.store, &path).await else {
            break;
        };
        // GzDecoder reads exactly one gzip member: each file must be one complete stream.
        let mut json = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut json)
            .unwrap();
        assert!(json.ends_with('\n'), "{path}: last line has no newline");
        for line in json.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let doc =
                bson::Document::try_from(value.as_object().expect("a document per line").clone())
                    .unwrap_or_else(|e| panic!("{path}: {e}: {line}"));
            docs.push(doc.to_vec().unwrap());
        }
    }
    docs
}

#[tokio::test]
async fn one_export_suite_passes_on_every_object_store() {
    let dump = fixtures().join("mongorestore/testdata/testdirs");
    let source = open_source(&dump).await;
    for (backend, bucket) in support::test_locations() {
        let summary = export_to(
            &bucket,
            vec![("rs0".into(), source.clone())],
            &ExportOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
        assert!(summary.total_files > 0, "{backend}");

        // Layout: permission check, .complete with exactly the documented fields.
        let check = bucket.path("exported_snapshots/.permissioncheck");
        assert_eq!(
            get(&bucket.store, &check).await.as_deref(),
            Some(&[][..]),
            "{backend}"
        );
        let complete = get(
            &bucket.store,
            &bucket.path(&format!("{}/.complete", prefix())),
        )
        .await
        .expect(".complete");
        let complete: serde_json::Value = serde_json::from_slice(&complete).unwrap();
        let keys: Vec<_> = complete.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "orgId",
                "orgName",
                "groupId",
                "groupName",
                "clusterUniqueId",
                "clusterName",
                "snapshotInitiationDate",
                "totalFiles",
                "labels",
                "customData"
            ]
        );
        assert_eq!(
            complete["snapshotInitiationDate"],
            "2026-08-10T03:27:00.000Z"
        );
        assert_eq!(complete["totalFiles"], summary.total_files);
        assert_eq!(complete["customData"][0]["key"], "team");

        // Every collection's documents round-trip, in order, as BSON bytes.
        for info in source
            .collections
            .iter()
            .filter(|c| c.kind == snapex::snapshot::CollectionKind::Collection)
        {
            let expected = bson_docs(&dump.join(&info.db).join(format!("{}.bson", info.name)));
            let got = exported_docs(&bucket, &info.db, &info.name, "rs0").await;
            assert_eq!(
                got.len(),
                expected.len(),
                "{backend} {}.{}",
                info.db,
                info.name
            );
            assert!(
                got == expected,
                "{backend} {}.{}: documents differ",
                info.db,
                info.name
            );
            let meta = bucket.path(&format!(
                "{}/{}/{}/metadata.json",
                prefix(),
                info.db,
                info.name
            ));
            assert!(
                get(&bucket.store, &meta).await.is_some(),
                "{backend}: {meta}"
            );
        }

        let report = export::verify::verify(&bucket.child(&prefix())).await;
        assert!(report.is_ok(), "{backend}: {:?}", report.problems);
    }
}

#[tokio::test]
async fn small_chunk_size_starts_new_files_and_never_splits_a_document() {
    let (dump, source) = generated(3_000_000, 7).await;
    let bucket = support::location("local").unwrap();
    let chunk = 200_000;
    let options = ExportOptions {
        chunk_size: chunk,
        ..Default::default()
    };
    let summary = export_to(&bucket, vec![("shard0".into(), source.clone())], &options)
        .await
        .unwrap();
    let data: Vec<_> = summary.replica_sets[0]
        .objects
        .iter()
        .filter(|o| o.key.ends_with(".json.gz"))
        .collect();
    assert!(data.len() > 10, "expected many files, got {}", data.len());
    for object in &data {
        assert!(
            object.uncompressed_bytes <= chunk || object.documents == 1,
            "{} has {} bytes",
            object.key,
            object.uncompressed_bytes
        );
    }
    // File numbers are consecutive from 0 per collection, and the documents match the source.
    for info in source
        .collections
        .iter()
        .filter(|c| c.kind == snapex::snapshot::CollectionKind::Collection)
    {
        let expected = bson_docs(
            &dump
                .path()
                .join(&info.db)
                .join(format!("{}.bson", info.name)),
        );
        let got = exported_docs(&bucket, &info.db, &info.name, "shard0").await;
        assert!(got == expected, "{}.{}", info.db, info.name);
        let files = data
            .iter()
            .filter(|o| o.collection == format!("{}.{}", info.db, info.name))
            .count();
        if !expected.is_empty() {
            assert!(files >= 1);
        }
    }
}

#[tokio::test]
async fn sharded_snapshot_writes_every_shard_and_one_complete() {
    let dump = fixtures().join("mongorestore/testdata/testdirs");
    let a = open_source(&dump).await;
    let b = open_source(&dump).await;
    let bucket = support::location("memory").unwrap();
    let summary = export_to(
        &bucket,
        vec![("shard0".into(), a), ("shard1".into(), b)],
        &ExportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(summary.replica_sets.len(), 2);
    let keys: Vec<String> = summary
        .replica_sets
        .iter()
        .flat_map(|r| r.objects.iter().map(|o| o.key.clone()))
        .collect();
    assert!(keys.iter().any(|k| k.contains("/shard0.0.json.gz")));
    assert!(keys.iter().any(|k| k.contains("/shard1.0.json.gz")));
    let report = export::verify::verify(&bucket.child(&prefix())).await;
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn store_failing_mid_upload_names_the_object_and_leaves_no_complete() {
    let (_dump, source) = generated(30_000_000, 3).await;
    for (backend, bucket) in support::test_locations() {
        let faulty = Arc::new(FaultyStore::new(bucket.store.clone()).fail_after_bytes(12_000_000));
        let failing = bucket.with_store(faulty.clone());
        // Level 0 makes the output as large as the JSON, so files need multipart uploads.
        let options = ExportOptions {
            compression_level: 0,
            ..Default::default()
        };
        let error = export_to(&failing, vec![("rs0".into(), source.clone())], &options)
            .await
            .expect_err("the store fails: the export must fail");
        let message = error.to_string();
        assert!(message.contains("rs0"), "{backend}: {message}");
        assert!(
            message.contains(".json.gz") || message.contains("metadata.json"),
            "{backend}: {message}"
        );
        assert!(message.contains("injected fault"), "{backend}: {message}");
        assert!(
            get(
                &bucket.store,
                &bucket.path(&format!("{}/.complete", prefix()))
            )
            .await
            .is_none(),
            "{backend}: .complete after a failure"
        );
        let stats = faulty.stats();
        for started in &stats.uploads_started {
            assert!(
                stats.uploads_completed.contains(started)
                    || stats.uploads_aborted.contains(started),
                "{backend}: multipart upload {started} left open"
            );
        }
        assert!(
            !stats.uploads_aborted.is_empty(),
            "{backend}: nothing was aborted"
        );
    }
}

/// A dump of one collection whose documents carry random bytes: zstd cannot shrink them, so
/// its single Parquet file is about `documents` × 128 KiB, all of it written when the file is
/// closed (one row group, under the row-group and chunk limits).
fn incompressible_dump(documents: usize) -> tempfile::TempDir {
    use rand::{RngCore, SeedableRng};
    let dump = tempfile::tempdir().unwrap();
    let folder = dump.path().join("blobs");
    std::fs::create_dir_all(&folder).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut bytes = Vec::new();
    for i in 0..documents {
        let mut blob = vec![0u8; 128 * 1024];
        rng.fill_bytes(&mut blob);
        let doc = bson::doc! {
            "_id": i as i64,
            "blob": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: blob },
        };
        bytes.extend_from_slice(&doc.to_vec().unwrap());
    }
    std::fs::write(folder.join("files.bson"), bytes).unwrap();
    dump
}

#[tokio::test]
async fn a_parquet_export_to_a_store_failing_while_a_file_is_closed_aborts_its_upload() {
    // 400 documents: a Parquet file of about 50 MiB, six 8 MiB parts or more, every one sent
    // while the footer is written; the store refuses everything after 12 MB, so the second
    // part fails and the failure surfaces while later parts are still being written.
    let dump = incompressible_dump(400);
    let source = open_source(dump.path()).await;
    let options = ExportOptions {
        data_format: export::DataFormat::Parquet,
        ..Default::default()
    };
    for (backend, bucket) in support::test_locations() {
        let faulty = Arc::new(FaultyStore::new(bucket.store.clone()).fail_after_bytes(12_000_000));
        let failing = bucket.with_store(faulty.clone());
        let error = export_to(&failing, vec![("rs0".into(), source.clone())], &options)
            .await
            .expect_err("the store fails: the export must fail");
        let message = error.to_string();
        assert!(
            message.contains("blobs/files/rs0.0.parquet"),
            "{backend}: {message}"
        );
        assert!(message.contains("injected fault"), "{backend}: {message}");
        assert!(
            get(
                &bucket.store,
                &bucket.path(&format!("{}/.complete", prefix()))
            )
            .await
            .is_none(),
            "{backend}: .complete after a failure"
        );
        let stats = faulty.stats();
        assert!(
            !stats.uploads_started.is_empty(),
            "{backend}: the file never needed a multipart upload"
        );
        for started in &stats.uploads_started {
            assert!(
                stats.uploads_aborted.contains(started),
                "{backend}: multipart upload {started} left open"
            );
        }
        if let Some(open) = support::open_uploads(backend, &bucket) {
            assert_eq!(open, Vec::<String>::new(), "{backend}: open uploads");
        }
    }
}

/// Level 0 makes the data files as large as their JSON: a 30 MB sample gives files of two
/// 8 MiB parts or more.
fn uncompressed() -> ExportOptions {
    ExportOptions {
        compression_level: 0,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gs_export_uploads_files_in_several_parts_and_verifies() {
    let (_dump, source) = generated(30_000_000, 11).await;
    let bucket = support::location("gcs").unwrap();
    let summary = export_to(&bucket, vec![("rs0".into(), source)], &uncompressed())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let server = support::gcs::server();
    let under = format!("{}/", bucket.prefix);
    let completed = server.completed_uploads(&under);
    let largest = completed.iter().map(|c| c.parts).max().unwrap_or(0);
    assert!(largest >= 2, "a data file of several parts: {completed:?}");
    assert_eq!(server.open_uploads(&under), Vec::<String>::new());
    assert_eq!(server.aborted_uploads(&under), Vec::<String>::new());
    assert!(
        get(
            &bucket.store,
            &bucket.path(&format!("{}/.complete", prefix()))
        )
        .await
        .is_some()
    );
    // Every data file reads back whole: its bytes, and as many lines as documents written.
    let files: Vec<_> = summary
        .replica_sets
        .iter()
        .flat_map(|r| &r.objects)
        .filter(|o| o.key.ends_with(".json.gz"))
        .collect();
    assert!(!files.is_empty());
    for o in files {
        let path = bucket.path(&format!("{}/{}", prefix(), o.key));
        let gz = get(&bucket.store, &path).await.expect("a data file");
        assert_eq!(gz.len() as u64, o.bytes, "{path}");
        let mut json = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut json)
            .unwrap();
        assert_eq!(json.lines().count() as u64, o.documents, "{path}");
    }
    let report = export::verify::verify(&bucket.child(&prefix())).await;
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_left_open_under_a_gs_export_is_aborted_once_every_object_is_written() {
    // As a CreateMultipartUpload retried after its first attempt succeeded late leaves one.
    let bucket = support::location("gcs").unwrap();
    let orphan = bucket.path(&format!("{}/db/coll/rs0.0.json.gz", prefix()));
    drop(bucket.store.put_multipart(&orphan).await.unwrap());
    let server = support::gcs::server();
    let under = format!("{}/", bucket.prefix);
    assert_eq!(server.open_uploads(&under), [orphan.to_string()]);
    let source = open_source(&fixtures().join("mongorestore/testdata/testdirs")).await;
    export_to(
        &bucket,
        vec![("rs0".into(), source)],
        &ExportOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.open_uploads(&under), Vec::<String>::new());
    assert_eq!(server.aborted_uploads(&under), [orphan.to_string()]);
    let report = export::verify::verify(&bucket.child(&prefix())).await;
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_gcs_refuses_fails_the_export_and_its_upload_is_aborted() {
    let (_dump, source) = generated(30_000_000, 12).await;
    let bucket = support::location("gcs").unwrap();
    let server = support::gcs::server();
    let under = format!("{}/", bucket.prefix);
    // Every second part under this export is refused: the first file large enough fails.
    server.refuse_part(&under, 2);
    let error = export_to(&bucket, vec![("rs0".into(), source)], &uncompressed())
        .await
        .expect_err("a refused part must fail the export");
    let message = error.to_string();
    assert!(message.contains("rs0"), "{message}");
    assert!(message.contains(".json.gz"), "{message}");
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(
        get(
            &bucket.store,
            &bucket.path(&format!("{}/.complete", prefix()))
        )
        .await
        .is_none(),
        ".complete after a failure"
    );
    assert_eq!(
        server.open_uploads(&under),
        Vec::<String>::new(),
        "uploads left open on the server"
    );
    let aborted = server.aborted_uploads(&under);
    assert!(
        aborted.iter().any(|k| k.ends_with(".json.gz")),
        "the data file's upload was aborted: {aborted:?}"
    );
    assert!(
        server
            .completed_uploads(&under)
            .iter()
            .all(|c| c.parts == 1),
        "no upload of two parts or more completed"
    );
}

#[tokio::test]
async fn invalid_bson_fails_with_object_and_offset_unless_skipping() {
    let dump = tempfile::tempdir().unwrap();
    let db = dump.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    // bsondump's bad_type fixture: 4 documents, the second with an unknown element type.
    std::fs::copy(
        fixtures().join("bsondump/testdata/bad_type.bson"),
        db.join("things.bson"),
    )
    .unwrap();
    let source = open_source(dump.path()).await;
    let bucket = support::location("memory").unwrap();
    let error = export_to(
        &bucket,
        vec![("rs0".into(), source.clone())],
        &ExportOptions::default(),
    )
    .await
    .expect_err("invalid BSON fails the export by default");
    let message = error.to_string();
    assert!(message.contains("rs0"), "{message}");
    assert!(message.contains("db.things"), "{message}");
    assert!(message.contains("things.bson"), "{message}");
    assert!(message.contains("at byte"), "{message}");
    assert!(
        get(
            &bucket.store,
            &bucket.path(&format!("{}/.complete", prefix()))
        )
        .await
        .is_none()
    );

    let bucket = support::location("memory").unwrap();
    let options = ExportOptions {
        skip_invalid: true,
        ..Default::default()
    };
    let summary = export_to(&bucket, vec![("rs0".into(), source)], &options)
        .await
        .unwrap();
    assert_eq!(summary.replica_sets[0].skipped_invalid_documents, 1);
    assert_eq!(summary.replica_sets[0].documents, 3);
    let manifest = get(
        &bucket.store,
        &bucket.path(&format!("{}/.manifest.json", prefix())),
    )
    .await
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["skippedInvalidDocuments"], 1);
}

#[tokio::test]
async fn cancelling_stops_the_export_without_complete() {
    let (_dump, source) = generated(20_000_000, 5).await;
    let bucket = support::location("local").unwrap();
    let faulty = Arc::new(
        FaultyStore::new(bucket.store.clone())
            .fail_after_bytes(4_000_000)
            .stall(),
    );
    let stalled = bucket.with_store(faulty.clone());
    let cancel = CancellationToken::new();
    let target = ExportTarget {
        bucket: stalled,
        prefix: prefix(),
    };
    let options = ExportOptions {
        compression_level: 0,
        ..Default::default()
    };
    let run = {
        let cancel = cancel.clone();
        async move {
            export::run_export(
                vec![("rs0".into(), source)],
                &target,
                &complete_info(),
                &options,
                Arc::new(NoProgress),
                cancel,
            )
            .await
        }
    };
    let handle = tokio::spawn(run);
    // Wait until the store has stalled the export, then cancel: it must return promptly.
    while !faulty.tripped() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cancel.cancel();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), handle)
        .await
        .expect("cancel must stop a stalled export")
        .unwrap();
    assert!(matches!(result, Err(ExportError::Cancelled)), "{result:?}");
    assert!(
        get(
            &bucket.store,
            &bucket.path(&format!("{}/.complete", prefix()))
        )
        .await
        .is_none()
    );
}

#[tokio::test]
async fn verify_catches_a_changed_a_truncated_and_a_missing_object() {
    let (_dump, source) = generated(300_000, 11).await;
    let bucket = support::location("local").unwrap();
    let summary = export_to(
        &bucket,
        vec![("rs0".into(), source)],
        &ExportOptions::default(),
    )
    .await
    .unwrap();
    let export = bucket.child(&prefix());
    assert!(export::verify::verify(&export).await.is_ok());

    let data: Vec<_> = summary.replica_sets[0]
        .objects
        .iter()
        .filter(|o| o.key.ends_with(".json.gz"))
        .map(|o| o.key.clone())
        .collect();
    assert!(
        data.len() >= 3,
        "need three data files, have {}",
        data.len()
    );
    let store = &bucket.store;
    // Changed: same size, one byte different in the compressed body.
    let changed = export.path(&data[0]);
    let mut bytes = get(store, &changed).await.unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    store.put(&changed, bytes.into()).await.unwrap();
    // Truncated.
    let truncated = export.path(&data[1]);
    let bytes = get(store, &truncated).await.unwrap();
    store
        .put(&truncated, bytes[..bytes.len() - 5].to_vec().into())
        .await
        .unwrap();
    // Missing.
    let missing = export.path(&data[2]);
    store.delete(&missing).await.unwrap();

    let report = export::verify::verify(&export).await;
    let problems = report.problems.join("\n");
    assert!(
        problems.contains(&format!("{}: sha256", data[0])),
        "{problems}"
    );
    assert!(problems.contains(&data[1]), "{problems}");
    assert!(
        problems.contains(&format!("{}: missing", data[2])),
        "{problems}"
    );
}

async fn manifest(bucket: &Location) -> serde_json::Value {
    let bytes = get(
        &bucket.store,
        &bucket.path(&format!("{}/.manifest.json", prefix())),
    )
    .await
    .expect("the export has a manifest");
    serde_json::from_slice(&bytes).unwrap()
}

/// The time-series buckets of a dump, as the source reads them.
fn buckets_of(dir: &FsPath) -> Vec<bson::Document> {
    bson_docs(&dir.join("timeseries_test/system.buckets.foo_ts.bson"))
        .iter()
        .map(|d| bson::Document::from_reader(d.as_slice()).unwrap())
        .collect()
}

#[tokio::test]
async fn time_series_collections_export_their_measurements_under_their_own_name() {
    let dir = fixtures().join("mongorestore/testdata/timeseries_tests/ts_dump");
    let buckets = buckets_of(&dir);
    // Version-1 buckets: one measurement per key of the time field's object.
    let expected: usize = buckets
        .iter()
        .map(|b| {
            b.get_document("data")
                .unwrap()
                .get_document("ts")
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(expected, 1000);
    let source = open_source(&dir).await;
    let bucket = support::location("memory").unwrap();
    let summary = export_to(
        &bucket,
        vec![("rs0".into(), source)],
        &ExportOptions::default(),
    )
    .await
    .unwrap();
    let rs = &summary.replica_sets[0];
    assert!(
        rs.skipped_collections.is_empty(),
        "{:?}",
        rs.skipped_collections
    );
    assert_eq!((rs.buckets, rs.documents), (10, 1000));

    let measurements = exported_docs(&bucket, "timeseries_test", "foo_ts", "rs0").await;
    assert_eq!(measurements.len(), expected);
    // Bucket order, and in each measurement: time field, meta field, then the data fields.
    let mut next = measurements.iter();
    for b in &buckets {
        let data = b.get_document("data").unwrap();
        for (key, time) in data.get_document("ts").unwrap() {
            let m = bson::Document::from_reader(next.next().unwrap().as_slice()).unwrap();
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            assert_eq!(&keys[..2], ["ts", "meta"]);
            assert_eq!(m.get("ts"), Some(time));
            assert_eq!(m.get("meta"), b.get("meta"));
            for field in ["_id", "measurement"] {
                assert_eq!(
                    m.get(field),
                    data.get_document(field).unwrap().get(key),
                    "{field}"
                );
            }
        }
    }

    let manifest = manifest(&bucket).await;
    assert_eq!(manifest["buckets"], 10);
    assert_eq!(manifest["documents"], 1000);
    assert_eq!(manifest["skippedCollections"], serde_json::json!([]));
    let objects = manifest["objects"].as_array().unwrap();
    let data_file = objects
        .iter()
        .find(|o| o["key"] == "timeseries_test/foo_ts/rs0.0.json.gz")
        .expect("measurements under the collection's own name");
    assert_eq!(
        (
            data_file["documents"].as_u64(),
            data_file["buckets"].as_u64()
        ),
        (Some(1000), Some(10))
    );
    assert!(
        objects
            .iter()
            .all(|o| !o["key"].as_str().unwrap().contains("system.buckets")),
        "nothing is written under the buckets' name"
    );
    // metadata.json keeps the type and the time-series options.
    let meta = get(
        &bucket.store,
        &bucket.path(&format!(
            "{}/timeseries_test/foo_ts/metadata.json",
            prefix()
        )),
    )
    .await
    .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["type"], "timeseries");
    assert_eq!(meta["collectionName"], "foo_ts");
    assert_eq!(
        meta["options"]["timeseries"],
        serde_json::json!({"timeField": "ts", "metaField": "meta", "granularity": "seconds",
            "bucketMaxSpanSeconds": {"$numberInt": "3600"}})
    );
    let report = export::verify::verify(&bucket.child(&prefix())).await;
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn invalid_buckets_fail_the_export_naming_the_bucket_and_field_or_are_skipped_and_counted() {
    let dir = fixtures().join("mongorestore/testdata/timeseries_tests/ts_dump_invalid_buckets");
    let source = open_source(&dir).await;
    let bucket = support::location("memory").unwrap();
    let error = export_to(
        &bucket,
        vec![("rs0".into(), source.clone())],
        &ExportOptions::default(),
    )
    .await
    .expect_err("invalid buckets fail the export by default");
    let message = error.to_string();
    for part in [
        "replica set rs0",
        "timeseries_test.foo_ts",
        "system.buckets.foo_ts.bson",
        r#"bucket ObjectId("5a1101e6a8feb0cc944981a2")"#,
        "field control: missing",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    assert!(
        get(
            &bucket.store,
            &bucket.path(&format!("{}/.complete", prefix()))
        )
        .await
        .is_none()
    );

    let bucket = support::location("memory").unwrap();
    let options = ExportOptions {
        skip_invalid: true,
        ..Default::default()
    };
    let summary = export_to(&bucket, vec![("rs0".into(), source)], &options)
        .await
        .unwrap();
    let rs = &summary.replica_sets[0];
    assert_eq!(
        (rs.skipped_invalid_buckets, rs.buckets, rs.documents),
        (5, 0, 0)
    );
    let manifest = manifest(&bucket).await;
    assert_eq!(manifest["skippedInvalidBuckets"], 5);
    // The collection is still there, empty: its metadata.json, its (empty) schema and no data
    // file.
    let keys: Vec<&str> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .filter(|k| k.starts_with("timeseries_test/"))
        .collect();
    assert_eq!(
        keys,
        [
            "timeseries_test/foo_ts/.schema.json",
            "timeseries_test/foo_ts/metadata.json"
        ]
    );
}

#[tokio::test]
async fn time_series_buckets_without_their_metadata_are_skipped_with_a_manifest_entry() {
    let dir = fixtures().join("mongorestore/testdata/timeseries_tests/ts_single_buckets_file");
    let source = open_source(&dir).await;
    let bucket = support::location("memory").unwrap();
    let summary = export_to(
        &bucket,
        vec![("rs0".into(), source)],
        &ExportOptions::default(),
    )
    .await
    .unwrap();
    let skipped = &summary.replica_sets[0].skipped_collections;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(
        skipped[0].collection,
        "ts_single_buckets_file.system.buckets.foo_ts"
    );
    let manifest = manifest(&bucket).await;
    let listed = manifest["skippedCollections"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    let reason = listed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("time-series") && reason.contains("timeField"),
        "{reason}"
    );
    // Nothing of it was written.
    assert!(
        manifest["objects"].as_array().unwrap().is_empty(),
        "{}",
        manifest["objects"]
    );
}

#[tokio::test]
async fn the_sample_time_series_collection_exports_every_measurement() {
    let dump = tempfile::tempdir().unwrap();
    let stats = snapex::snapshot::generate::write_sample_dump(
        dump.path(),
        &snapex::snapshot::generate::SampleSpec {
            target_bytes: 2_000_000,
            seed: 11,
        },
    )
    .unwrap();
    assert!(stats.measurements > 0);
    let source = open_source(dump.path()).await;
    let bucket = support::location("memory").unwrap();
    let summary = export_to(
        &bucket,
        vec![("rs0".into(), source)],
        &ExportOptions::default(),
    )
    .await
    .unwrap();
    let measurements = exported_docs(&bucket, "telemetry", "sensor_readings", "rs0").await;
    assert_eq!(measurements.len() as u64, stats.measurements);
    let ts = stats
        .collections
        .iter()
        .find(|c| c.name == "sensor_readings")
        .unwrap();
    assert_eq!(summary.replica_sets[0].buckets, ts.documents);
    for m in &measurements {
        let m = bson::Document::from_reader(m.as_slice()).unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        // Time, meta, then the data fields in bucket order; humidity only where measured.
        assert!(
            keys == ["ts", "sensor", "_id", "temperature", "humidity"]
                || keys == ["ts", "sensor", "_id", "temperature"],
            "{keys:?}"
        );
        // The ObjectId of a measurement carries its time (seconds).
        let ts = m.get_datetime("ts").unwrap().timestamp_millis();
        let id = m.get_object_id("_id").unwrap();
        assert_eq!(id.timestamp().timestamp_millis(), ts / 1000 * 1000);
        assert!(m.get_document("sensor").unwrap().get_str("id").is_ok());
    }
}

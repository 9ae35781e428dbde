//! Namespace filters (`--ns-include`/`--ns-exclude`, issue 13) on the mongo-tools fixtures: what
//! lands in the bucket, what the manifest records, and that a left-out collection is not read.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use object_store::ObjectStoreExt;
use snapex::export::{
    self, CompleteInfo, ExportOptions, ExportSummary, ExportTarget, NamespaceFilter, NoProgress,
};
use snapex::snapshot::SnapshotSource;
use snapex::storage::{self, Location, StorageOptions};
use tokio_util::sync::CancellationToken;

use crate::support;

const PREFIX: &str = "exported_snapshots/o/p/c/2026-08-10T0327/1786332505";

fn testdirs() -> PathBuf {
    support::mongo_tools().join("mongorestore/testdata/testdirs")
}

fn filter(include: &[&str], exclude: &[&str]) -> NamespaceFilter {
    let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    NamespaceFilter::parse(&owned(include), &owned(exclude)).unwrap()
}

async fn open(path: &FsPath) -> Arc<SnapshotSource> {
    let location = storage::open(path.to_str().unwrap(), &StorageOptions::default()).unwrap();
    Arc::new(SnapshotSource::open(location).await.unwrap())
}

async fn export_filtered(
    source: Arc<SnapshotSource>,
    namespaces: NamespaceFilter,
) -> (
    tempfile::TempDir,
    Location,
    Result<ExportSummary, export::ExportError>,
) {
    let dir = tempfile::tempdir().unwrap();
    let bucket = storage::open_for_write(
        &format!("file://{}", dir.path().display()),
        &StorageOptions::default(),
    )
    .unwrap();
    let target = ExportTarget {
        bucket: bucket.clone(),
        prefix: PREFIX.into(),
    };
    let complete = CompleteInfo {
        snapshot_initiation_date: Utc.with_ymd_and_hms(2026, 8, 10, 3, 27, 0).unwrap(),
        ..Default::default()
    };
    let options = ExportOptions {
        namespaces,
        ..Default::default()
    };
    let result = export::run_export(
        vec![("rs0".into(), source)],
        &target,
        &complete,
        &options,
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await;
    (dir, bucket, result)
}

/// The `db.coll` namespaces that have files (data or `metadata.json`) in the export, sorted.
fn exported_namespaces(root: &FsPath) -> Vec<String> {
    let base = root.join(PREFIX);
    let mut found: Vec<String> = support::files_under(&base)
        .iter()
        .filter_map(|p| {
            let relative = p.strip_prefix(&base).ok()?;
            let parts: Vec<_> = relative.iter().map(|s| s.to_string_lossy()).collect();
            (parts.len() == 3).then(|| format!("{}.{}", parts[0], parts[1]))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

async fn json_object(bucket: &Location, name: &str) -> serde_json::Value {
    let bytes = bucket
        .store
        .get(&bucket.path(&format!("{PREFIX}/{name}")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn include_then_exclude_exports_only_the_selected_collections_and_the_manifest_says_so() {
    let source = open(&testdirs()).await;
    let (dir, bucket, result) =
        export_filtered(source, filter(&["db1.c*"], &["db1.c2", "*.c4"])).await;
    let summary = result.unwrap();
    assert_eq!(exported_namespaces(dir.path()), ["db1.c1", "db1.c3"]);
    assert_eq!(summary.replica_sets[0].exported_collections, 2);
    assert!(!dir.path().join(PREFIX).join("db1/c2").exists());
    assert!(!dir.path().join(PREFIX).join("db1/c4").exists());

    let manifest = json_object(&bucket, ".manifest.json").await;
    assert_eq!(
        manifest["namespaces"]["include"],
        serde_json::json!(["db1.c*"])
    );
    assert_eq!(
        manifest["namespaces"]["exclude"],
        serde_json::json!(["db1.c2", "*.c4"])
    );
    let mut excluded: Vec<_> = manifest["namespaces"]["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["collection"].as_str().unwrap().to_string())
        .collect();
    excluded.sort();
    assert_eq!(excluded, ["db1.c2", "db1.c4"]);
    let collections: std::collections::BTreeSet<_> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["collection"].as_str().unwrap())
        .collect();
    assert_eq!(
        collections.into_iter().collect::<Vec<_>>(),
        ["db1.c1", "db1.c3"]
    );

    // `.complete` keeps Atlas's fields only: the filter lives in the manifest.
    let complete = json_object(&bucket, ".complete").await;
    assert!(complete.get("namespaces").is_none(), "{complete}");
    assert_eq!(complete["totalFiles"], summary.total_files);
    let report = export::verify::verify(&bucket.child(PREFIX)).await;
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[tokio::test]
async fn an_export_without_a_filter_records_none_in_the_manifest() {
    let source = open(&testdirs()).await;
    let (dir, bucket, result) = export_filtered(source, NamespaceFilter::default()).await;
    result.unwrap();
    assert_eq!(
        exported_namespaces(dir.path()),
        ["db1.c1", "db1.c2", "db1.c3", "db1.c4"]
    );
    let manifest = json_object(&bucket, ".manifest.json").await;
    assert!(manifest.get("namespaces").is_none(), "{manifest}");
}

/// A collection left out is never read: its file is garbage, and the export succeeds anyway
/// (while the same dump unfiltered fails on it).
#[tokio::test]
async fn an_excluded_collection_is_not_read() {
    let dump = tempfile::tempdir().unwrap();
    let db = dump.path().join("db1");
    std::fs::create_dir_all(&db).unwrap();
    for file in ["c1.bson", "c1.metadata.json", "c3.bson", "c3.metadata.json"] {
        std::fs::copy(testdirs().join("db1").join(file), db.join(file)).unwrap();
    }
    std::fs::copy(
        testdirs().join("db1/c3.metadata.json"),
        db.join("broken.metadata.json"),
    )
    .unwrap();
    std::fs::write(db.join("broken.bson"), b"\xff\xff\xff\x7fnot bson at all").unwrap();

    let (_, _, unfiltered) =
        export_filtered(open(dump.path()).await, NamespaceFilter::default()).await;
    let error = unfiltered.expect_err("the broken collection fails an unfiltered export");
    assert!(error.to_string().contains("broken"), "{error}");

    let (dir, _, filtered) =
        export_filtered(open(dump.path()).await, filter(&[], &["db1.broken"])).await;
    filtered.unwrap();
    assert_eq!(exported_namespaces(dir.path()), ["db1.c1", "db1.c3"]);
}

/// An archive is one stream: the left-out namespace's blocks are passed over, and the export
/// (here of nothing but the archive's other content) completes.
#[tokio::test]
async fn an_archive_passes_over_the_excluded_namespaces() {
    let archive = support::mongo_tools().join("mongorestore/testdata/dump-w-oplog.archive");
    let source = open(&archive).await;
    let all: Vec<String> = source.exported().map(|(_, c)| c.namespace()).collect();
    assert_eq!(all, ["test.foo"]);
    let (dir, bucket, result) = export_filtered(source, filter(&[], &["test.*"])).await;
    let summary = result.unwrap();
    assert!(exported_namespaces(dir.path()).is_empty());
    assert_eq!(summary.replica_sets[0].exported_collections, 0);
    let manifest = json_object(&bucket, ".manifest.json").await;
    assert_eq!(
        manifest["namespaces"]["excluded"][0]["collection"], "test.foo",
        "{manifest}"
    );
    assert!(
        bucket
            .store
            .head(&bucket.path(&format!("{PREFIX}/.complete")))
            .await
            .is_ok()
    );
}

/// A PBM backup in the per-collection layout: only the included namespace's file is exported.
#[tokio::test]
async fn a_pbm_backup_exports_only_the_included_namespaces() {
    let url = support::shared_data().join("pbm/zstd/2026-02-23T14:46:22Z.pbm.json");
    let source = open(&url).await;
    let (dir, _, result) = export_filtered(source, filter(&["db1.*"], &[])).await;
    result.unwrap();
    assert_eq!(exported_namespaces(dir.path()), ["db1.cafés"]);
}

//! Snapshot sources against mongo-tools' own mongodump fixtures
//! (`shared/data/mongodump/mongo-tools`, counts from its README), damaged copies of them, the
//! object-store path (an in-memory store, no local fast path) and the sample generator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use snapex::snapshot::generate::{SampleSpec, write_sample_dump};
use snapex::snapshot::{CollectionKind, SnapshotSource, SourceError, SourceFormat, Visitor};
use snapex::storage::{Location, StorageOptions};

use crate::support;

fn fixtures() -> PathBuf {
    support::mongo_tools()
        .canonicalize()
        .expect("mongo-tools fixtures are in shared/data")
}

fn restore_data(rel: &str) -> PathBuf {
    fixtures().join("mongorestore/testdata").join(rel)
}

fn local(path: &Path) -> Location {
    snapex::storage::open(path.to_str().unwrap(), &StorageOptions::default()).unwrap()
}

async fn open(path: &Path) -> Result<SnapshotSource, SourceError> {
    SnapshotSource::open(local(path)).await
}

/// Everything a read produced, in order.
#[derive(Default, Debug)]
struct Collected {
    events: Vec<String>,
    /// Documents per collection index, with their offsets.
    docs: BTreeMap<usize, Vec<(u64, Vec<u8>)>>,
    open: Option<usize>,
}

impl Visitor for Collected {
    fn begin(&mut self, index: usize) -> Result<(), SourceError> {
        self.events.push(format!("begin {index}"));
        self.docs.entry(index).or_default();
        self.open = Some(index);
        Ok(())
    }
    fn document(&mut self, index: usize, doc: &[u8], offset: u64) -> Result<(), SourceError> {
        self.docs
            .get_mut(&index)
            .expect("document before begin")
            .push((offset, doc.to_vec()));
        Ok(())
    }
    fn end(&mut self, index: usize) -> Result<(), SourceError> {
        self.events.push(format!("end {index}"));
        Ok(())
    }
}

async fn read(source: SnapshotSource) -> (SnapshotSource, Collected, Result<(), SourceError>) {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut visitor = Collected::default();
        let result = source.read(&handle, &mut visitor);
        (source, visitor, result)
    })
    .await
    .unwrap()
}

/// `(namespace, kind, documents read)` for every listed collection (0 for unvisited ones).
async fn read_counts(path: &Path) -> Vec<(String, CollectionKind, usize)> {
    let source = open(path).await.unwrap();
    let (source, got, result) = read(source).await;
    result.unwrap();
    source
        .collections
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                c.namespace(),
                c.kind,
                got.docs.get(&i).map_or(0, |d| d.len()),
            )
        })
        .collect()
}

fn ns(list: &[(&str, CollectionKind, usize)]) -> Vec<(String, CollectionKind, usize)> {
    list.iter()
        .map(|(n, k, c)| (n.to_string(), *k, *c))
        .collect()
}

use CollectionKind::{Collection, OrphanBuckets, System, Timeseries};

/// `(namespace, kind, documents read)` expected for each listed collection.
type Expected = Vec<(&'static str, CollectionKind, usize)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_fixtures_list_the_expected_collections_and_counts() {
    let cases: Vec<(&str, Expected)> = vec![
        (
            "testdirs",
            vec![
                (".oplog", System, 0),
                ("db1.c1", Collection, 100),
                ("db1.c2", Collection, 0),
                ("db1.c3", Collection, 0),
                ("db1.c4", Collection, 10),
            ],
        ),
        ("specialcharacter", vec![("db1.cafés", Collection, 1)]),
        (
            "longcollectionname",
            vec![(
                "db1.aVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryVeryLongCollectionNameConsistingOfExactlyTwoHundredAndFortySevenCharacters",
                Collection,
                1,
            )],
        ),
        (
            "collMod_ttl_index",
            vec![
                (".oplog", System, 0),
                ("admin.system.version", System, 0),
                ("mongodump_test_db.coll1", Collection, 10),
            ],
        ),
        (
            "oplogdump",
            vec![
                (".oplog", System, 0),
                ("admin.system.version", System, 0),
                ("db1.c1", Collection, 5),
            ],
        ),
        (
            "usersdump",
            vec![
                ("admin.system.roles", System, 0),
                ("admin.system.users", System, 0),
                ("admin.system.version", System, 0),
            ],
        ),
        (
            "indextestdump",
            vec![("indextest.test_collection", Collection, 100)],
        ),
        (
            "dump_local_oplog",
            vec![("local.oplog.rs", Collection, 100)],
        ),
        (
            "duplicate_index_key",
            vec![("indextest.duplicate_index_key", Collection, 0)],
        ),
        // A time-series collection reads its buckets from `system.buckets.<name>`, which is
        // listed no more on its own.
        (
            "timeseries_tests/ts_dump",
            vec![
                ("admin.system.version", System, 0),
                ("admin.system.views", System, 0),
                ("timeseries_test.foo_ts", Timeseries, 10),
            ],
        ),
        (
            "timeseries_tests/ts_dump_invalid_buckets",
            vec![
                ("admin.system.version", System, 0),
                ("admin.system.views", System, 0),
                ("timeseries_test.foo_ts", Timeseries, 5),
            ],
        ),
        // Buckets without their collection's metadata: listed, not read.
        (
            "timeseries_tests/ts_single_buckets_file",
            vec![(
                "ts_single_buckets_file.system.buckets.foo_ts",
                OrphanBuckets,
                0,
            )],
        ),
        (
            "timeseries_tests/ts_dump_with_oplog",
            vec![
                (".oplog", System, 0),
                ("admin.system.version", System, 0),
                ("admin.system.views", System, 0),
                ("config.external_validation_keys", Collection, 0),
                ("config.tenantMigrationDonors", Collection, 0),
                ("config.tenantMigrationRecipients", Collection, 0),
                ("timeseries_test.foo_ts", Timeseries, 10),
            ],
        ),
        (
            "prelude_test/prelude_top_level",
            vec![("test.foo", Collection, 1)],
        ),
        // A database directory on its own: the database is named after it.
        (
            "prelude_test/prelude_db_target/test",
            vec![("test.foo", Collection, 1)],
        ),
        (
            "testdirs/db1",
            vec![
                ("db1.c1", Collection, 100),
                ("db1.c2", Collection, 0),
                ("db1.c3", Collection, 0),
                ("db1.c4", Collection, 10),
            ],
        ),
    ];
    for (dir, expected) in cases {
        let got = read_counts(&restore_data(dir)).await;
        assert_eq!(got, ns(&expected), "{dir}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_sources_carry_metadata_versions_and_sizes() {
    let source = open(&restore_data("testdirs")).await.unwrap();
    assert_eq!(source.format, SourceFormat::Directory);
    let c1 = &source.collections[1];
    assert_eq!(c1.bson_bytes, Some(3300));
    assert!(
        c1.source_object.ends_with("testdirs/db1/c1.bson"),
        "{}",
        c1.source_object
    );
    let indexes = c1.metadata.as_ref().unwrap().get_array("indexes").unwrap();
    assert_eq!(indexes.len(), 1);
    // The 0-byte c3.metadata.json is "no metadata", not an error (see directory.rs).
    assert!(source.collections[3].metadata.is_none());
    assert!(source.info.taken_at.is_some());
    // c1.bson + c1.metadata.json + c4.bson + c4.metadata.json; c2/c3 files are empty.
    assert_eq!(source.info.total_bytes, 3300 + 78 + 330 + 149);
    assert_eq!(source.info.mongod_version, None);

    let top = open(&restore_data("prelude_test/prelude_top_level"))
        .await
        .unwrap();
    assert_eq!(top.info.mongod_version.as_deref(), Some("7.0.16"));
    let db_target = open(&restore_data("prelude_test/prelude_db_target/test"))
        .await
        .unwrap();
    assert_eq!(db_target.info.mongod_version.as_deref(), Some("7.0.16"));
    let unknown = open(&restore_data("prelude_test/server_version_unknown"))
        .await
        .unwrap();
    assert_eq!(unknown.info.mongod_version, None);

    let special = open(&restore_data("specialcharacter")).await.unwrap();
    assert!(
        special.collections[0]
            .source_object
            .ends_with("db1/caf%C3%A9s.bson")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_directory_dump_reads_like_a_plain_one() {
    let source = open(&restore_data("prelude_test/prelude_gzip"))
        .await
        .unwrap();
    assert_eq!(source.format, SourceFormat::DirectoryGzip);
    assert_eq!(source.info.mongod_version.as_deref(), Some("7.0.16"));
    assert_eq!(source.collections.len(), 1);
    assert_eq!(source.collections[0].namespace(), "test.foo");
    assert!(source.collections[0].metadata.is_some());
    let (_, gz, result) = read(source).await;
    result.unwrap();
    let (_, plain, result) = read(
        open(&restore_data("prelude_test/prelude_top_level"))
            .await
            .unwrap(),
    )
    .await;
    result.unwrap();
    assert_eq!(gz.docs, plain.docs);
    assert_eq!(gz.events, vec!["begin 0", "end 0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_list_their_prelude_and_yield_their_documents() {
    let cases: Vec<(&str, &str, Expected)> = vec![
        (
            "dump-w-oplog.archive",
            "4.0.2",
            vec![
                (".oplog", System, 0),
                ("admin.system.version", System, 0),
                ("test.foo", Collection, 25),
            ],
        ),
        (
            "test.bar.archive",
            "3.4.3",
            vec![
                ("admin.system.version", System, 0),
                ("test.bar", Collection, 1),
            ],
        ),
        (
            "timeseries_tests/dump.archive",
            "5.0.0-rc0",
            vec![
                ("admin.system.version", System, 0),
                ("admin.system.views", System, 0),
                // Its buckets come in `timeseries_test.system.buckets.foo_ts` blocks.
                ("timeseries_test.foo_ts", Timeseries, 10),
            ],
        ),
    ];
    for (file, version, expected) in cases {
        let path = restore_data(file);
        let source = open(&path).await.unwrap();
        assert_eq!(source.format, SourceFormat::Archive, "{file}");
        assert_eq!(
            source.info.mongod_version.as_deref(),
            Some(version),
            "{file}"
        );
        assert_eq!(
            source.info.total_bytes,
            std::fs::metadata(&path).unwrap().len()
        );
        assert_eq!(read_counts(&path).await, ns(&expected), "{file}");
    }
    // The time-series metadata survives into the listing.
    let ts = open(&restore_data("timeseries_tests/dump.archive"))
        .await
        .unwrap();
    let meta = ts.collections[2].metadata.as_ref().unwrap();
    assert!(
        meta.get_document("options")
            .unwrap()
            .contains_key("timeseries")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_documents_match_the_directory_bytes() {
    // test.bar.archive's test.bar document, checked against its known bytes: offsets point at
    // the document inside the archive.
    let path = restore_data("test.bar.archive");
    let (source, got, result) = read(open(&path).await.unwrap()).await;
    result.unwrap();
    let raw = std::fs::read(&path).unwrap();
    let index = source
        .collections
        .iter()
        .position(|c| c.name == "bar")
        .unwrap();
    let docs = &got.docs[&index];
    assert_eq!(docs.len(), 1);
    let (offset, bytes) = &docs[0];
    assert_eq!(
        &raw[*offset as usize..*offset as usize + bytes.len()],
        bytes.as_slice()
    );
    let doc = bson::RawDocument::from_bytes(bytes).unwrap();
    assert_eq!(doc.get_str("foo").unwrap(), "bar");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_format_archive_fails_with_a_clear_error() {
    let err = open(&restore_data("bad-format.archive"))
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err:?}");
    assert!(text.contains("bad-format.archive"), "{text}");
    assert!(text.contains("test.ixtest"), "{text}");
}

fn temp_copy(file: &str, dir: &tempfile::TempDir, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(restore_data(file)).unwrap();
    edit(&mut bytes);
    let name = Path::new(file).file_name().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn read_error(path: &Path) -> SourceError {
    let source = open(path).await.unwrap();
    let (_, _, result) = read(source).await;
    result.expect_err("the read fails")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_crc_mismatch_is_corrupt_and_names_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    // 0x350 is inside the ObjectId of test.foo's first document (which starts at 0x346).
    let path = temp_copy("dump-w-oplog.archive", &dir, |b| b[0x350] ^= 0x01);
    match read_error(&path).await {
        SourceError::Corrupt {
            object,
            offset,
            message,
        } => {
            assert!(object.ends_with("dump-w-oplog.archive"), "{object}");
            assert!(message.contains("test.foo"), "{message}");
            assert!(message.contains("checksum"), "{message}");
            assert!(offset > 0x350, "{offset}");
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    // Namespaces that are not exported are verified too: damage the oplog's first document
    // (its block starts at 0x65d; the document at 0x692).
    let path = temp_copy("dump-w-oplog.archive", &dir, |b| b[0x6a0] ^= 0x01);
    match read_error(&path).await {
        SourceError::Corrupt { message, .. } => assert!(message.contains(".oplog"), "{message}"),
        other => panic!("expected corrupt, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_archives_are_corrupt_with_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    // Inside test.foo's first document (0x346..0x363).
    let path = temp_copy("dump-w-oplog.archive", &dir, |b| b.truncate(0x350));
    match read_error(&path).await {
        SourceError::Corrupt {
            offset, message, ..
        } => {
            assert_eq!(offset, 0x346);
            assert!(message.contains("truncated"), "{message}");
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    // Exactly at a block boundary, before the last EOF header: still incomplete.
    let path = temp_copy("dump-w-oplog.archive", &dir, |b| {
        let len = b.len();
        b.truncate(len - (0x37 + 4));
    });
    match read_error(&path).await {
        SourceError::Corrupt { message, .. } => {
            assert!(message.contains("before namespace .oplog"), "{message}")
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_archives_are_detected_and_read() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(restore_data("dump-w-oplog.archive")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let path = dir.path().join("dump.archive.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let source = open(&path).await.unwrap();
    assert_eq!(source.format, SourceFormat::ArchiveGzip);
    let (_, from_gzip, result) = read(source).await;
    result.unwrap();
    let (_, from_plain, result) =
        read(open(&restore_data("dump-w-oplog.archive")).await.unwrap()).await;
    result.unwrap();
    assert_eq!(from_gzip.docs, from_plain.docs);
    assert_eq!(from_gzip.events, from_plain.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_object_that_is_not_an_archive_is_invalid() {
    let err = open(&fixtures().join("bsondump/testdata/sample.bson"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("not a mongodump archive"), "{err}");
}

/// A dump directory made of one collection file copied from the fixtures (possibly damaged).
fn dump_with(
    file: &Path,
    name: &str,
    dir: &tempfile::TempDir,
    edit: impl FnOnce(&mut Vec<u8>),
) -> PathBuf {
    let mut bytes = std::fs::read(file).unwrap();
    edit(&mut bytes);
    let root = dir.path().join("dump");
    std::fs::create_dir_all(root.join("db")).unwrap();
    std::fs::write(root.join("db").join(name), bytes).unwrap();
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_garbage_bson_files_are_corrupt_with_offsets() {
    let bsondump = fixtures().join("bsondump/testdata");
    let cases: Vec<(PathBuf, &str, u64)> = vec![
        // The README: "bad document length 48 at offset 164".
        (bsondump.join("partial_file.bson"), "truncated", 164),
        // "bad document length 1625369376 at offset 0".
        (
            bsondump.join("random_bytes.bson"),
            "invalid document length",
            0,
        ),
        // One trailing byte after the last document.
        (
            bsondump.join("invalid_field_name.bson"),
            "stream ends inside a document length",
            283,
        ),
    ];
    for (file, expected, expected_offset) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dump_with(&file, "c.bson", &dir, |_| {});
        match read_error(&root).await {
            SourceError::Corrupt {
                object,
                offset,
                message,
            } => {
                assert!(object.ends_with("db/c.bson"), "{object}");
                assert_eq!(offset, expected_offset, "{}", file.display());
                assert!(message.contains(expected), "{message}");
            }
            other => panic!("{}: expected corrupt, got {other:?}", file.display()),
        }
    }
    // A truncated copy of a real collection: the offset is the cut document's (33 bytes each).
    let dir = tempfile::tempdir().unwrap();
    let root = dump_with(&restore_data("testdirs/db1/c1.bson"), "c.bson", &dir, |b| {
        b.truncate(33 * 40 + 10)
    });
    match read_error(&root).await {
        SourceError::Corrupt { offset, .. } => assert_eq!(offset, 33 * 40),
        other => panic!("expected corrupt, got {other:?}"),
    }
    // A truncated gzip file.
    let dir = tempfile::tempdir().unwrap();
    let root = dump_with(
        &restore_data("prelude_test/prelude_gzip/test/foo.bson.gz"),
        "c.bson.gz",
        &dir,
        |b| b.truncate(30),
    );
    assert!(matches!(
        read_error(&root).await,
        SourceError::Corrupt { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_metadata_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dump_with(
        &restore_data("testdirs/db1/c1.bson"),
        "c.bson",
        &dir,
        |_| {},
    );
    std::fs::write(root.join("db/c.metadata.json"), b"{\"indexes\": [").unwrap();
    match open(&root).await.err().unwrap() {
        SourceError::Invalid { object, .. } => {
            assert!(object.ends_with("db/c.metadata.json"), "{object}")
        }
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_location_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let err = open(dir.path()).await.err().unwrap();
    assert!(err.to_string().contains("no mongodump dump found"), "{err}");
}

/// Copies every file under `dir` into an in-memory store under `prefix`, keys kept raw.
async fn to_memory(dir: &Path, prefix: &str) -> Arc<InMemory> {
    let store = Arc::new(InMemory::new());
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            let key = StorePath::parse(format!("{prefix}/{rel}")).unwrap();
            store
                .put(&key, std::fs::read(&path).unwrap().into())
                .await
                .unwrap();
        }
    }
    store
}

fn memory_location(store: Arc<InMemory>, prefix: &str) -> Location {
    Location {
        store,
        prefix: StorePath::parse(prefix).unwrap(),
        url: format!("memory://test/{prefix}"),
        local_root: None,
        pending_uploads: None,
    }
}

async fn collect(
    location: Location,
) -> (Vec<(String, CollectionKind, Option<u64>, bool)>, Collected) {
    let source = SnapshotSource::open(location).await.unwrap();
    let (source, got, result) = read(source).await;
    result.unwrap();
    let listing = source
        .collections
        .iter()
        .map(|c| (c.namespace(), c.kind, c.bson_bytes, c.metadata.is_some()))
        .collect();
    (listing, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_reads_match_the_local_fast_path() {
    for dir in [
        "testdirs",
        "specialcharacter",
        "prelude_test/prelude_gzip",
        "timeseries_tests/ts_dump_with_oplog",
    ] {
        let path = restore_data(dir);
        let memory = to_memory(&path, "backups/rs0").await;
        let (remote_list, remote) = collect(memory_location(memory, "backups/rs0")).await;
        let (local_list, local) = collect(local(&path)).await;
        assert_eq!(remote_list, local_list, "{dir}");
        assert_eq!(remote.docs, local.docs, "{dir}");
        assert_eq!(remote.events, local.events, "{dir}");
    }
    // A single archive object: the location's prefix is the object's key.
    for file in ["dump-w-oplog.archive", "timeseries_tests/dump.archive"] {
        let path = restore_data(file);
        let store = Arc::new(InMemory::new());
        store
            .put(
                &StorePath::parse("snap/rs0.archive").unwrap(),
                std::fs::read(&path).unwrap().into(),
            )
            .await
            .unwrap();
        let (remote_list, remote) = collect(memory_location(store, "snap/rs0.archive")).await;
        let (local_list, local) = collect(local(&path)).await;
        assert_eq!(remote_list, local_list, "{file}");
        assert_eq!(remote.docs, local.docs, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_error_stops_the_read() {
    struct Stop;
    impl Visitor for Stop {
        fn begin(&mut self, _: usize) -> Result<(), SourceError> {
            Ok(())
        }
        fn document(&mut self, _: usize, _: &[u8], _: u64) -> Result<(), SourceError> {
            Err(SourceError::Stopped("cancelled".into()))
        }
        fn end(&mut self, _: usize) -> Result<(), SourceError> {
            Ok(())
        }
    }
    let source = open(&restore_data("testdirs")).await.unwrap();
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || source.read(&handle, &mut Stop))
        .await
        .unwrap();
    assert!(matches!(result, Err(SourceError::Stopped(m)) if m == "cancelled"));
}

// ---------------------------------------------------------------------------------------------
// The sample generator

fn tree_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_sample_generator_is_deterministic_per_seed() {
    let spec = SampleSpec {
        target_bytes: 300_000,
        seed: 42,
    };
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let stats_a = write_sample_dump(a.path(), &spec).unwrap();
    let stats_b = write_sample_dump(b.path(), &spec).unwrap();
    write_sample_dump(c.path(), &SampleSpec { seed: 43, ..spec }).unwrap();
    assert_eq!(stats_a, stats_b);
    assert_eq!(tree_bytes(a.path()), tree_bytes(b.path()));
    assert_ne!(tree_bytes(a.path()), tree_bytes(c.path()));
    // Roughly the requested size, ~1-2 KB per document on average.
    assert!(
        stats_a.bson_bytes >= 300_000 && stats_a.bson_bytes < 330_000,
        "{}",
        stats_a.bson_bytes
    );
    let average = stats_a.bson_bytes / stats_a.documents;
    assert!(
        (700..=2500).contains(&average),
        "average document {average} bytes"
    );
}

fn element_types(doc: &bson::RawDocument, seen: &mut BTreeSet<u8>, subtypes: &mut BTreeSet<u8>) {
    for element in doc {
        let (_, value) = element.unwrap();
        value_types(value, seen, subtypes);
    }
}

fn value_types(value: bson::RawBsonRef<'_>, seen: &mut BTreeSet<u8>, subtypes: &mut BTreeSet<u8>) {
    seen.insert(value.element_type() as u8);
    match value {
        bson::RawBsonRef::Document(d) => element_types(d, seen, subtypes),
        bson::RawBsonRef::Array(a) => {
            for item in a {
                value_types(item.unwrap(), seen, subtypes);
            }
        }
        bson::RawBsonRef::JavaScriptCodeWithScope(c) => element_types(c.scope, seen, subtypes),
        bson::RawBsonRef::Binary(b) => {
            subtypes.insert(u8::from(b.subtype));
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_dump_opens_and_covers_every_bson_type() {
    let dir = tempfile::tempdir().unwrap();
    let stats = write_sample_dump(
        dir.path(),
        &SampleSpec {
            target_bytes: 200_000,
            seed: 7,
        },
    )
    .unwrap();
    let source = open(dir.path()).await.unwrap();
    assert_eq!(source.info.mongod_version.as_deref(), Some("7.0.16"));
    let listing: Vec<(String, CollectionKind)> = source
        .collections
        .iter()
        .map(|c| (c.namespace(), c.kind))
        .collect();
    assert_eq!(
        listing,
        vec![
            ("admin.system.version".to_string(), System),
            ("analytics.events".into(), Collection),
            ("analytics.legacy".into(), Collection),
            ("shop.archived_orders".into(), Collection),
            ("shop.big_orders".into(), CollectionKind::View),
            ("shop.customers".into(), Collection),
            ("shop.orders".into(), Collection),
            ("shop.products".into(), Collection),
            ("shop.system.js".into(), Collection),
            ("telemetry.sensor_readings".into(), Timeseries),
        ]
    );
    for c in &source.collections {
        let meta = c.metadata.as_ref().unwrap();
        assert!(!meta.get_array("indexes").unwrap().is_empty() || c.kind == CollectionKind::View);
        // Views and time-series collections (views over their buckets) have no uuid.
        if c.kind == CollectionKind::Collection {
            assert_eq!(meta.get_str("uuid").unwrap().len(), 32);
        }
    }
    let (source, got, result) = read(source).await;
    result.unwrap();
    let mut total = 0;
    let mut seen = BTreeSet::new();
    let mut subtypes = BTreeSet::new();
    for (index, docs) in &got.docs {
        let c = &source.collections[*index];
        let expected = stats
            .collections
            .iter()
            .find(|s| s.db == c.db && s.name == c.name)
            .unwrap();
        assert_eq!(docs.len() as u64, expected.documents, "{}", c.namespace());
        total += docs.len() as u64;
        for (_, bytes) in docs {
            element_types(
                bson::RawDocument::from_bytes(bytes).unwrap(),
                &mut seen,
                &mut subtypes,
            );
        }
    }
    // Everything but admin.system.version is read.
    assert_eq!(total + 1, stats.documents);
    let all: BTreeSet<u8> = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 0x7F, 0xFF,
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, all);
    let want: BTreeSet<u8> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x80].into_iter().collect();
    assert_eq!(subtypes, want);
}

/// The documents a read gave the collection `namespace`, without offsets.
async fn documents_of(location: Location, namespace: &str) -> Vec<Vec<u8>> {
    let source = SnapshotSource::open(location).await.unwrap();
    let index = source
        .collections
        .iter()
        .position(|c| c.namespace() == namespace)
        .unwrap_or_else(|| panic!("{namespace} not listed"));
    assert_eq!(source.collections[index].kind, CollectionKind::Timeseries);
    let (_, got, result) = read(source).await;
    result.unwrap();
    got.docs[&index].iter().map(|(_, d)| d.clone()).collect()
}

/// `dump.archive` with the collection of every block header renamed by `rename` (the documents
/// and their CRCs are untouched): an archive as a mongodump that writes raw buckets under the
/// time-series collection's own namespace would make it.
fn rename_archive_blocks(bytes: &[u8], rename: impl Fn(&str) -> Option<String>) -> Vec<u8> {
    let len = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut out = bytes[..4].to_vec();
    let mut at = 4;
    let mut in_prelude = true;
    let mut expect_header = false;
    while at < bytes.len() {
        if len(at) == 0xFFFF_FFFF {
            out.extend_from_slice(&bytes[at..at + 4]);
            at += 4;
            if in_prelude {
                in_prelude = false;
            }
            expect_header = true;
            continue;
        }
        let doc = &bytes[at..at + len(at)];
        at += doc.len();
        if !in_prelude && expect_header {
            expect_header = false;
            let mut header = bson::Document::from_reader(doc).unwrap();
            if let Some(renamed) = rename(header.get_str("collection").unwrap()) {
                header.insert("collection", renamed);
            }
            out.extend_from_slice(&header.to_vec().unwrap());
        } else {
            out.extend_from_slice(doc);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_series_buckets_are_read_from_the_buckets_file_or_the_collections_own() {
    let expected = documents_of(
        local(&restore_data("timeseries_tests/ts_dump")),
        "timeseries_test.foo_ts",
    )
    .await;
    assert_eq!(expected.len(), 10);

    // Raw buckets in `<coll>.bson`, as newer mongodump writes them.
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("dump/timeseries_test");
    std::fs::create_dir_all(&db).unwrap();
    let fixture = restore_data("timeseries_tests/ts_dump/timeseries_test");
    std::fs::copy(
        fixture.join("foo_ts.metadata.json"),
        db.join("foo_ts.metadata.json"),
    )
    .unwrap();
    std::fs::copy(
        fixture.join("system.buckets.foo_ts.bson"),
        db.join("foo_ts.bson"),
    )
    .unwrap();
    let own = documents_of(
        local(&scratch.path().join("dump")),
        "timeseries_test.foo_ts",
    )
    .await;
    assert!(own == expected, "own file: buckets differ");

    // Both files with documents: which ones are the buckets cannot be told, so it is refused.
    std::fs::copy(
        fixture.join("system.buckets.foo_ts.bson"),
        db.join("system.buckets.foo_ts.bson"),
    )
    .unwrap();
    let error = open(&scratch.path().join("dump"))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("foo_ts"), "{error}");
    // An empty own file is no conflict.
    std::fs::write(db.join("foo_ts.bson"), b"").unwrap();
    let both = documents_of(
        local(&scratch.path().join("dump")),
        "timeseries_test.foo_ts",
    )
    .await;
    assert!(both == expected, "empty own file: buckets differ");

    // An archive whose buckets come under the collection's own namespace.
    let archive = std::fs::read(restore_data("timeseries_tests/dump.archive")).unwrap();
    let renamed = rename_archive_blocks(&archive, |c| {
        c.strip_prefix("system.buckets.").map(str::to_string)
    });
    assert_ne!(renamed, archive, "the archive has buckets blocks to rename");
    let path = scratch.path().join("own.archive");
    std::fs::write(&path, &renamed).unwrap();
    let from_archive = documents_of(local(&path), "timeseries_test.foo_ts").await;
    // (The archive is a dump of its own, so it is compared with itself, not the directory.)
    let original = documents_of(
        local(&restore_data("timeseries_tests/dump.archive")),
        "timeseries_test.foo_ts",
    )
    .await;
    assert_eq!(original.len(), 10);
    assert!(from_archive == original, "own namespace: buckets differ");
}

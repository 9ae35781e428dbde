//! PBM logical backups against the real fixtures (`shared/data/pbm`: 7 storage roots, one per
//! compression, each with the same 7 backups in the 1.x, 2.0–2.3 and current layouts, written
//! by PBM's own code; counts from its README): every backup in every compression exports the
//! documents of the mongodump dump it was made from (read back by Python), every data and
//! oplog file decodes to what the metadata says, the URL forms, damaged copies (flipped byte,
//! truncated file), a changed metadata CRC, unfinished and physical backups, and the same
//! backup read through an object store instead of the local fast path.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use snapex::export::{self, CompleteInfo, ExportOptions, ExportTarget, NoProgress};
use snapex::snapshot::codec::{self, Codec, Expect};
use snapex::snapshot::{CollectionKind, SnapshotSource, SourceError, SourceFormat, Visitor};
use snapex::storage::{self, StorageOptions};
use tokio_util::sync::CancellationToken;

use crate::compressed_dumps::read_export;
use crate::support;

const ROOTS: [&str; 7] = ["none", "gzip", "pgzip", "snappy", "lz4", "s2", "zstd"];

/// A backup of the fixtures and what it holds.
struct Backup {
    name: &'static str,
    pbm: &'static str,
    /// The source dumps (under mongorestore/testdata) of the exported namespaces, as
    /// `(namespace, .bson file)`.
    exported: &'static [(&'static str, &'static str)],
    /// Namespaces listed with another kind than a plain collection: system ones are not
    /// exported, time-series ones are exported as measurements.
    skipped: &'static [(&'static str, CollectionKind)],
    /// Oplog documents per file, in replay order.
    oplog: &'static [usize],
    /// The consistent point (`last_write_ts`), seconds.
    consistent_at: i64,
    mongod_version: &'static str,
}

const OPLOGDUMP: &[(&str, &str)] = &[("db1.c1", "oplogdump/db1/c1.bson")];
const MERGED: &[(&str, &str)] = &[
    ("db1.cafés", "specialcharacter/db1/caf%C3%A9s.bson"),
    (
        "mongodump_test_db.coll1",
        "collMod_ttl_index/mongodump_test_db/coll1.bson",
    ),
];

const BACKUPS: [Backup; 7] = [
    Backup {
        name: "2017-11-19T04:00:30Z",
        pbm: "1.8.1",
        exported: OPLOGDUMP,
        skipped: &[("admin.system.version", CollectionKind::System)],
        oplog: &[3],
        consistent_at: 1511064038,
        mongod_version: "3.6.0",
    },
    Backup {
        name: "2017-11-19T04:00:31Z",
        pbm: "2.3.1",
        exported: OPLOGDUMP,
        skipped: &[("admin.system.version", CollectionKind::System)],
        oplog: &[3],
        consistent_at: 1511064038,
        mongod_version: "3.6.0",
    },
    Backup {
        name: "2017-11-19T04:00:33Z",
        pbm: "2.15.0",
        exported: OPLOGDUMP,
        skipped: &[("admin.system.version", CollectionKind::System)],
        oplog: &[3],
        consistent_at: 1511064038,
        mongod_version: "3.6.0",
    },
    Backup {
        name: "2021-06-14T22:58:59Z",
        pbm: "1.8.1",
        exported: &[],
        skipped: &[
            ("admin.system.version", CollectionKind::System),
            ("timeseries_test.foo_ts", CollectionKind::Timeseries),
        ],
        oplog: &[872],
        consistent_at: 1623711558,
        mongod_version: "5.0.0-rc0",
    },
    Backup {
        name: "2021-06-14T22:59:02Z",
        pbm: "2.15.0",
        exported: &[],
        skipped: &[
            ("admin.system.version", CollectionKind::System),
            ("timeseries_test.foo_ts", CollectionKind::Timeseries),
        ],
        oplog: &[436, 437],
        consistent_at: 1623711558,
        mongod_version: "5.0.0-rc0",
    },
    Backup {
        name: "2026-02-23T14:46:20Z",
        pbm: "2.3.1",
        exported: MERGED,
        skipped: &[("admin.system.version", CollectionKind::System)],
        oplog: &[2],
        consistent_at: 1771857987,
        mongod_version: "8.0.0",
    },
    Backup {
        name: "2026-02-23T14:46:22Z",
        pbm: "2.15.0",
        exported: MERGED,
        skipped: &[("admin.system.version", CollectionKind::System)],
        oplog: &[2],
        consistent_at: 1771857987,
        mongod_version: "8.0.0",
    },
];

fn pbm_root(compression: &str) -> PathBuf {
    support::shared_data().join("pbm").join(compression)
}

fn restore_data(rel: &str) -> PathBuf {
    support::mongo_tools()
        .join("mongorestore/testdata")
        .join(rel)
}

async fn open_url(url: &str) -> Result<SnapshotSource, SourceError> {
    let location = storage::open(url, &StorageOptions::default()).unwrap();
    SnapshotSource::open(location).await
}

fn metadata_url(compression: &str, backup: &str) -> String {
    format!(
        "{}/{backup}.pbm.json",
        pbm_root(compression).to_str().unwrap()
    )
}

/// Exports `source` as replica set rs0 into `bucket`; the export prefix directory.
async fn export_to(source: SnapshotSource, bucket: &Path) -> Result<PathBuf, String> {
    let location = storage::open(bucket.to_str().unwrap(), &StorageOptions::default()).unwrap();
    let snapshot_time = source.info.taken_at.unwrap_or_else(Utc::now);
    let prefix = export::export_prefix(
        "a0123456789abcdef012345a",
        "b0123456789abcdef012345b",
        "c",
        snapshot_time,
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
    Ok(bucket.join(prefix))
}

/// Reads a source to the end (checking every CRC and size), counting documents per namespace.
async fn read_counts(source: SnapshotSource) -> Result<BTreeMap<String, usize>, SourceError> {
    struct Count {
        names: Vec<String>,
        counts: BTreeMap<String, usize>,
    }
    impl Visitor for Count {
        fn begin(&mut self, index: usize) -> Result<(), SourceError> {
            self.counts.entry(self.names[index].clone()).or_default();
            Ok(())
        }
        fn document(&mut self, index: usize, _: &[u8], _: u64) -> Result<(), SourceError> {
            *self.counts.entry(self.names[index].clone()).or_default() += 1;
            Ok(())
        }
        fn end(&mut self, _: usize) -> Result<(), SourceError> {
            Ok(())
        }
    }
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut count = Count {
            names: source.collections.iter().map(|c| c.namespace()).collect(),
            counts: BTreeMap::new(),
        };
        source.read(&handle, &mut count).map(|()| count.counts)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backup_in_every_compression_exports_the_documents_of_its_dump() {
    let python = support::python();
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for backup in &BACKUPS {
        let mut uncompressed = None;
        for compression in ROOTS {
            let tag = format!("{compression}/{} (PBM {})", backup.name, backup.pbm);
            let source = open_url(&metadata_url(compression, backup.name))
                .await
                .unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert_eq!(source.format, SourceFormat::Pbm, "{tag}");
            assert_eq!(
                source.info.taken_at,
                DateTime::<Utc>::from_timestamp(backup.consistent_at, 0),
                "{tag}: the part's time is the consistent point"
            );
            assert_eq!(
                source.info.mongod_version.as_deref(),
                Some(backup.mongod_version),
                "{tag}"
            );
            assert!(source.info.total_bytes > 0, "{tag}");
            let oplog = source
                .info
                .oplog
                .clone()
                .expect("a PBM part has an oplog note");
            assert!(!oplog.applied, "{tag}");
            assert_eq!(oplog.files.len(), backup.oplog.len(), "{tag}: {oplog:?}");
            let kinds: BTreeMap<String, CollectionKind> = source
                .collections
                .iter()
                .map(|c| (c.namespace(), c.kind))
                .collect();
            for (ns, kind) in backup.skipped {
                assert_eq!(kinds.get(*ns), Some(kind), "{tag}: {ns} in {kinds:?}");
            }
            for (ns, _) in backup.exported {
                assert_eq!(
                    kinds.get(*ns),
                    Some(&CollectionKind::Collection),
                    "{tag}: {ns}"
                );
            }

            let bucket = scratch
                .path()
                .join(format!("{compression}-{}", backup.name.replace(':', "")));
            let prefix = export_to(source, &bucket)
                .await
                .unwrap_or_else(|e| panic!("{tag}: {e}"));
            assert!(prefix.join(".complete").exists(), "{tag}");
            assert!(
                prefix.to_string_lossy().contains(
                    &DateTime::<Utc>::from_timestamp(backup.consistent_at, 0)
                        .unwrap()
                        .format("/%Y-%m-%dT%H%M/")
                        .to_string()
                ),
                "{tag}: {}",
                prefix.display()
            );
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(prefix.join(".manifest.json")).unwrap())
                    .unwrap();
            let note = &manifest["oplog"][0];
            assert_eq!(note["replicaSet"], "rs0", "{tag}: {manifest}");
            assert_eq!(note["applied"], false, "{tag}");
            assert_eq!(note["consistentAt"]["t"], backup.consistent_at, "{tag}");

            // The same objects and the same JSON as the uncompressed backup.
            let exported = read_export(&prefix);
            match &uncompressed {
                None => uncompressed = Some(exported),
                Some(plain) => assert_eq!(&exported, plain, "{tag}: differs from none/"),
            }

            // Read back by Python: the documents of the mongodump dump it was made from.
            if let Some(python) = &python {
                let out = Command::new(python)
                    .arg(support::reader("read_export.py"))
                    .arg(&prefix)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{tag}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let collections = read["collections"].as_object().unwrap();
                // Time-series collections are listed with their own kind and exported as
                // measurements (issue 11): the 5.0 dump's `foo_ts` holds 1294 of them, as its
                // mongodump directory exports too, from the 1.x archive and from the raw buckets
                // in the 2.x per-collection file alike.
                let timeseries: Vec<&str> = backup
                    .skipped
                    .iter()
                    .filter(|(_, kind)| *kind == CollectionKind::Timeseries)
                    .map(|(ns, _)| *ns)
                    .collect();
                assert_eq!(
                    collections.len(),
                    backup.exported.len() + timeseries.len(),
                    "{tag}: {read}"
                );
                for ns in &timeseries {
                    assert_eq!(collections[*ns]["documents"], 1294, "{tag}: {ns}: {read}");
                }
                for (ns, bson_file) in backup.exported {
                    let source = std::fs::read(restore_data(bson_file)).unwrap();
                    assert_eq!(
                        collections[*ns]["sha256"],
                        hex::encode(Sha256::digest(&source)),
                        "{tag}: {ns} differs from {bson_file}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 49);
}

/// Splits decoded bytes into BSON documents and counts them (panics on a bad length).
fn count_documents(bytes: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while at < bytes.len() {
        let len = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += len;
        n += 1;
    }
    assert_eq!(at, bytes.len());
    n
}

fn decode(path: &Path, compression: &str) -> Vec<u8> {
    let codec = Codec::from_pbm(compression).unwrap();
    let raw = std::fs::File::open(path).unwrap();
    let (_, mut reader) = codec::open(Box::new(raw), Expect::Known(codec))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

#[test]
fn every_data_and_oplog_file_decodes_to_what_the_fixtures_say() {
    for compression in ROOTS {
        let root = pbm_root(compression);
        let ext = Codec::from_pbm(compression).unwrap().suffix();
        for backup in &BACKUPS {
            let tag = format!("{compression}/{}", backup.name);
            let meta: serde_json::Value = serde_json::from_slice(
                &std::fs::read(root.join(format!("{}.pbm.json", backup.name))).unwrap(),
            )
            .unwrap();
            let oplog_name = meta["replsets"][0]["oplog_name"].as_str().unwrap();
            let oplog_path = root.join(oplog_name);
            let files: Vec<PathBuf> = if oplog_path.is_dir() {
                let mut chunks = support::files_under(&oplog_path);
                chunks.sort();
                chunks
            } else {
                vec![oplog_path]
            };
            let counts: Vec<usize> = files
                .iter()
                .map(|f| count_documents(&decode(f, compression)))
                .collect();
            assert_eq!(counts, backup.oplog, "{tag}: oplog documents per file");
        }
        // The time-series buckets file of the current layout is the dump's buckets, byte for
        // byte (49,486 bytes), in every compression.
        let buckets = decode(
            &root.join(format!(
                "2021-06-14T22:59:02Z/rs0/timeseries_test.foo_ts{ext}"
            )),
            compression,
        );
        let expected = std::fs::read(restore_data(
            "timeseries_tests/ts_dump_with_oplog/timeseries_test/system.buckets.foo_ts.bson",
        ))
        .unwrap();
        assert_eq!(buckets.len(), 49_486, "{compression}");
        assert!(
            buckets == expected,
            "{compression}: buckets differ from the dump's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_named_by_its_metadata_file_by_root_and_name_or_by_replica_set() {
    for (compression, backup) in [
        ("s2", "2017-11-19T04:00:30Z"),
        ("zstd", "2026-02-23T14:46:22Z"),
    ] {
        let root = pbm_root(compression);
        let root = root.to_str().unwrap();
        let mut listings = Vec::new();
        for url in [
            format!("{root}/{backup}.pbm.json"),
            format!("{root}/{backup}"),
            format!("{root}/{backup}/rs0"),
            format!("file://{root}/{backup}.pbm.json"),
        ] {
            let source = open_url(&url)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(source.format, SourceFormat::Pbm, "{url}");
            let names: Vec<String> = source.collections.iter().map(|c| c.namespace()).collect();
            listings.push(names);
        }
        assert!(listings.windows(2).all(|w| w[0] == w[1]), "{listings:?}");
        // A replica set the backup does not have, and the bare storage root.
        let error = open_url(&format!("{root}/{backup}/rs9"))
            .await
            .err()
            .unwrap();
        assert!(error.to_string().contains("no replica set rs9"), "{error}");
        let error = open_url(root).await.err().unwrap().to_string();
        assert!(
            error.contains("a PBM storage root with 7 backups"),
            "{error}"
        );
        assert!(
            error.contains(&format!("{root}/2026-02-23T14:46:22Z")),
            "{error}"
        );
    }
}

/// Copies one backup of a root (metadata, data, oplog) into `to`, keeping the layout.
fn copy_backup(compression: &str, backup: &str, to: &Path) {
    let root = pbm_root(compression);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with(backup) && name != ".pbm.init" {
            continue;
        }
        if path.is_dir() {
            for file in support::files_under(&path) {
                let rel = file.strip_prefix(&root).unwrap();
                std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
                std::fs::copy(&file, to.join(rel)).unwrap();
            }
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
        make_writable(to);
    }
}

/// The shared data is read-only; copies of it are edited.
fn make_writable(dir: &Path) {
    for file in support::files_under(dir) {
        let mut perms = std::fs::metadata(&file).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&file, perms).unwrap();
    }
}

fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    change(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_namespace_file_fails_naming_replica_set_namespace_file_and_offset() {
    let scratch = tempfile::tempdir().unwrap();
    for compression in ROOTS {
        let ext = Codec::from_pbm(compression).unwrap().suffix();
        for backup in ["2026-02-23T14:46:20Z", "2026-02-23T14:46:22Z"] {
            for damage in ["flip", "truncate"] {
                let tag = format!("{compression}/{backup} {damage}");
                let dir = scratch.path().join(format!(
                    "{compression}-{}-{damage}",
                    backup.replace(':', "")
                ));
                copy_backup(compression, backup, &dir);
                let file_name = format!("mongodump_test_db.coll1{ext}");
                let file = dir.join(backup).join("rs0").join(&file_name);
                edit(&file, |bytes| match damage {
                    "flip" => {
                        let at = bytes.len() * 2 / 3;
                        bytes[at] ^= 0x20;
                    }
                    _ => bytes.truncate(bytes.len() / 2),
                });
                let url = format!("{}/{backup}.pbm.json", dir.to_str().unwrap());
                let source = open_url(&url)
                    .await
                    .unwrap_or_else(|e| panic!("{tag}: {e}"));
                let bucket = dir.join("bucket");
                let error = export_to(source, &bucket).await.expect_err(&tag);
                for needle in ["rs0", "mongodump_test_db.coll1", &file_name, "byte"] {
                    assert!(error.contains(needle), "{tag}: {needle:?} not in {error}");
                }
                assert!(
                    !support::files_under(&bucket)
                        .iter()
                        .any(|p| p.ends_with(".complete")),
                    "{tag}: .complete written"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_1x_archive_fails_naming_replica_set_file_and_offset() {
    let scratch = tempfile::tempdir().unwrap();
    let backup = "2021-06-14T22:58:59Z";
    for compression in ROOTS {
        let ext = Codec::from_pbm(compression).unwrap().suffix();
        for damage in ["flip", "truncate"] {
            let tag = format!("{compression}/{backup} {damage}");
            let dir = scratch.path().join(format!("{compression}-{damage}"));
            copy_backup(compression, backup, &dir);
            let file_name = format!("{backup}_rs0.dump{ext}");
            edit(&dir.join(&file_name), |bytes| match damage {
                "flip" => {
                    let at = bytes.len() * 2 / 3;
                    bytes[at] ^= 0x20;
                }
                _ => bytes.truncate(bytes.len() * 2 / 3),
            });
            let url = format!("{}/{backup}.pbm.json", dir.to_str().unwrap());
            let error = match open_url(&url).await {
                Ok(source) => read_counts(source).await.expect_err(&tag).to_string(),
                Err(e) => e.to_string(),
            };
            for needle in ["rs0", &file_name, "byte"] {
                assert!(error.contains(needle), "{tag}: {needle:?} not in {error}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crc_or_size_the_data_does_not_match_fails_naming_the_namespace() {
    let scratch = tempfile::tempdir().unwrap();
    let backup = "2026-02-23T14:46:20Z"; // 2.3.1: metadata.json alone records them
    for (field, expect) in [
        ("crc", "checksum mismatch"),
        ("size", "the metadata records 60"),
    ] {
        let dir = scratch.path().join(field);
        copy_backup("s2", backup, &dir);
        let metadata = dir.join(backup).join("rs0/metadata.json");
        let text = std::fs::read_to_string(&metadata).unwrap();
        // admin.system.version is the first namespace: add 1 to its first `field`.
        let at = text.find(&format!("\"{field}\"")).unwrap();
        let marker = "\"$numberLong\": \"";
        let start = at + text[at..].find(marker).unwrap() + marker.len();
        let end = start + text[start..].find('"').unwrap();
        let value: i64 = text[start..end].parse().unwrap();
        let edited = format!(
            "{}{}{}",
            &text[..start],
            value.wrapping_add(1),
            &text[end..]
        );
        std::fs::write(&metadata, edited).unwrap();
        let source = open_url(&format!("{}/{backup}.pbm.json", dir.to_str().unwrap()))
            .await
            .unwrap();
        let error = read_counts(source).await.unwrap_err().to_string();
        assert!(error.contains(expect), "{field}: {error}");
        assert!(error.contains("admin.system.version"), "{field}: {error}");
        assert!(
            error.contains("admin.system.version.s2"),
            "{field}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_pbm_and_metadata_json_must_agree() {
    let scratch = tempfile::tempdir().unwrap();
    let backup = "2026-02-23T14:46:22Z";
    copy_backup("none", backup, &scratch.path().join("root"));
    let metadata = scratch
        .path()
        .join("root")
        .join(backup)
        .join("rs0/metadata.json");
    let text = std::fs::read_to_string(&metadata).unwrap();
    let edited = text.replacen("\"$numberLong\": \"59\"", "\"$numberLong\": \"58\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&metadata, edited).unwrap();
    let url = format!(
        "{}/{backup}.pbm.json",
        scratch.path().join("root").to_str().unwrap()
    );
    let error = open_url(&url).await.err().unwrap().to_string();
    assert!(error.contains("meta.pbm records"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_physical_and_incremental_backups_are_refused_saying_why() {
    let scratch = tempfile::tempdir().unwrap();
    let backup = "2026-02-23T14:46:22Z";
    let cases = [
        (
            "\"status\": \"done\",\n\t\"conditions\"",
            "\"status\": \"error\",\n\t\"error\": \"oplog slicer stopped\",\n\t\"conditions\"",
            "has status \"error\" (oplog slicer stopped)",
        ),
        (
            "\"status\": \"done\",\n\t\"conditions\"",
            "\"status\": \"running\",\n\t\"conditions\"",
            "has status \"running\"",
        ),
        (
            "\"type\": \"logical\"",
            "\"type\": \"physical\"",
            "is a physical backup",
        ),
        (
            "\"type\": \"logical\"",
            "\"type\": \"incremental\"",
            "is an incremental backup",
        ),
    ];
    for (i, (from, to, expect)) in cases.into_iter().enumerate() {
        let dir = scratch.path().join(format!("case{i}"));
        copy_backup("s2", backup, &dir);
        let meta = dir.join(format!("{backup}.pbm.json"));
        let text = std::fs::read_to_string(&meta).unwrap();
        // The backup-level field is the last occurrence (replica sets come first).
        let at = text
            .rfind(from)
            .unwrap_or_else(|| panic!("{from:?} not in {text}"));
        let edited = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
        std::fs::write(&meta, edited).unwrap();
        let error = open_url(meta.to_str().unwrap())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains(expect), "{expect:?} not in {error}");
        assert!(error.contains(backup), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_path_outside_the_storage_root_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let backup = "2017-11-19T04:00:31Z";
    copy_backup("none", backup, &scratch.path().join("root"));
    let meta = scratch
        .path()
        .join("root")
        .join(format!("{backup}.pbm.json"));
    let text = std::fs::read_to_string(&meta).unwrap();
    let edited = text.replace(
        &format!("\"{backup}/rs0/metadata.json\""),
        "\"../elsewhere/rs0/metadata.json\"",
    );
    std::fs::write(&meta, edited).unwrap();
    let error = open_url(meta.to_str().unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("not a path inside the storage root"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_in_an_object_store_reads_like_the_local_one() {
    for (compression, backup) in [
        ("s2", "2021-06-14T22:59:02Z"),
        ("lz4", "2026-02-23T14:46:20Z"),
        ("zstd", "2017-11-19T04:00:30Z"),
    ] {
        let store_name = support::unique_name("pbm");
        let location = storage::open(
            &format!("memory://{store_name}"),
            &StorageOptions::default(),
        )
        .unwrap();
        let root = pbm_root(compression);
        for file in support::files_under(&root) {
            let rel = file
                .strip_prefix(&root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            location
                .store
                .put(
                    &location.path(&format!("backups/{rel}")),
                    std::fs::read(&file).unwrap().into(),
                )
                .await
                .unwrap();
        }
        let remote = open_url(&format!("memory://{store_name}/backups/{backup}"))
            .await
            .unwrap();
        let local = open_url(&metadata_url(compression, backup)).await.unwrap();
        assert_eq!(remote.info.taken_at, local.info.taken_at);
        assert_eq!(remote.info.total_bytes, local.info.total_bytes);
        assert_eq!(
            remote.info.oplog.as_ref().map(|o| o.files.len()),
            local.info.oplog.as_ref().map(|o| o.files.len())
        );
        let remote_counts = read_counts(remote).await.unwrap();
        let local_counts = read_counts(local).await.unwrap();
        assert_eq!(remote_counts, local_counts, "{compression}/{backup}");
        storage::forget_memory_store(&store_name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_split_into_pbmpart_pieces_reads_as_one() {
    // PBM 2.11+ stores a file larger than `maxObjSizeGB` as the file plus `.pbmpart.N` pieces
    // of its compressed stream.
    let scratch = tempfile::tempdir().unwrap();
    let backup = "2021-06-14T22:59:02Z";
    let root = scratch.path().join("root");
    copy_backup("s2", backup, &root);
    let file = root.join(backup).join("rs0/timeseries_test.foo_ts.s2");
    let bytes = std::fs::read(&file).unwrap();
    let (a, rest) = bytes.split_at(bytes.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    std::fs::write(&file, a).unwrap();
    std::fs::write(file.with_extension("s2.pbmpart.1"), b).unwrap();
    std::fs::write(file.with_extension("s2.pbmpart.2"), c).unwrap();
    let url = format!("{}/{backup}.pbm.json", root.to_str().unwrap());
    let source = open_url(&url).await.unwrap();
    // The time-series file is not exported but is read for its CRC and size.
    read_counts(source).await.unwrap();
    // Without its last piece the data is short, and that is an error.
    std::fs::remove_file(file.with_extension("s2.pbmpart.2")).unwrap();
    let source = open_url(&url).await.unwrap();
    let error = read_counts(source).await.unwrap_err().to_string();
    assert!(error.contains("timeseries_test.foo_ts"), "{error}");
}

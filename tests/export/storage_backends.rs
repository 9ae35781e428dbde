//! One storage suite, run through `storage::open` URLs against every backend: memory, local
//! directory, S3 (moto, and s3s-fs which checks SigV4), Azure (Azurite) and GCS (our XML-API
//! server, `support::gcs`, which checks the service account's signed JWT). `scripts/test`
//! starts the emulators; without them the S3 and Azure cases are skipped (or fail, with
//! `SNAPEX_TEST_REQUIRE_SERVICES=1`). The GCS server runs in the test process: always there.
//!
//! Then the failure paths: `FaultyStore` cutting an upload off in the middle, on every backend,
//! and what the user would check afterwards (no object, the upload aborted).

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use snapex::storage::faulty::FaultyStore;
use snapex::storage::{self, Location, StorageOptions};

use crate::support;

const MIB: usize = 1024 * 1024;
/// S3 rejects multipart parts under 5 MiB (except the last), and s3s-fs checks it too.
const PART: usize = 5 * MIB;

/// Deterministic bytes that differ at every offset of a part, so a reordered, dropped or
/// duplicated part changes the content.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

async fn read_all(loc: &Location, path: &Path) -> Vec<u8> {
    loc.store
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("{}: get {path}: {e}", loc.url))
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{}: read {path}: {e}", loc.url))
        .to_vec()
}

/// Every key under the location, relative to it, sorted.
async fn list_rel(loc: &Location) -> Vec<String> {
    let mut keys: Vec<String> = loc
        .store
        .list(Some(&loc.prefix))
        .map_ok(|m| loc.relative(&m.location).expect("listed key under prefix"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{}: list: {e}", loc.url));
    keys.sort();
    keys
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

mod checks {
    use super::*;

    pub async fn put_get_head_round_trip(name: &str, loc: Location) {
        let path = loc.path("db/coll/rs0.0.json.gz");
        let body = pattern(100_000, 1);
        loc.store
            .put(&path, PutPayload::from(body.clone()))
            .await
            .unwrap();
        assert_eq!(read_all(&loc, &path).await, body, "{name}");
        let meta = loc.store.head(&path).await.unwrap();
        assert_eq!(meta.size, body.len() as u64, "{name}");
        assert_eq!(meta.location, path, "{name}");
        let range = loc.store.get_range(&path, 10..20).await.unwrap();
        assert_eq!(&range[..], &body[10..20], "{name}");
    }

    pub async fn empty_object_round_trips(name: &str, loc: Location) {
        // `.permissioncheck` is an empty object.
        let path = loc.path(".permissioncheck");
        loc.store.put(&path, PutPayload::default()).await.unwrap();
        assert_eq!(read_all(&loc, &path).await, Vec::<u8>::new(), "{name}");
        assert_eq!(loc.store.head(&path).await.unwrap().size, 0, "{name}");
    }

    pub async fn missing_object_is_not_found(name: &str, loc: Location) {
        let err = loc.store.get(&loc.path("nope")).await.unwrap_err();
        assert!(is_not_found(&err), "{name}: {err:?}");
        let err = loc.store.head(&loc.path("nope")).await.unwrap_err();
        assert!(is_not_found(&err), "{name}: {err:?}");
    }

    pub async fn list_sees_exactly_what_was_written(name: &str, loc: Location) {
        assert_eq!(
            list_rel(&loc).await,
            Vec::<String>::new(),
            "{name}: fresh prefix"
        );
        for key in ["a/1.json.gz", "a/2.json.gz", "b/metadata.json", ".complete"] {
            loc.store
                .put(&loc.path(key), Bytes::from(key.to_string()).into())
                .await
                .unwrap();
        }
        assert_eq!(
            list_rel(&loc).await,
            [".complete", "a/1.json.gz", "a/2.json.gz", "b/metadata.json"],
            "{name}"
        );
        let listing = loc
            .store
            .list_with_delimiter(Some(&loc.prefix))
            .await
            .unwrap();
        let mut dirs: Vec<String> = listing
            .common_prefixes
            .iter()
            .map(|p| loc.relative(p).unwrap())
            .collect();
        dirs.sort();
        assert_eq!(dirs, ["a", "b"], "{name}");
        let files: Vec<String> = listing
            .objects
            .iter()
            .map(|m| loc.relative(&m.location).unwrap())
            .collect();
        assert_eq!(files, [".complete"], "{name}");
    }

    pub async fn a_sibling_prefix_is_not_listed(name: &str, loc: Location) {
        // Prefixes are matched per segment: `exp` must not list `exp2/...`.
        let exp = loc.child("exp");
        let exp2 = loc.child("exp2");
        exp.store.put(&exp.path("x"), "1".into()).await.unwrap();
        exp2.store.put(&exp2.path("y"), "2".into()).await.unwrap();
        assert_eq!(list_rel(&exp).await, ["x"], "{name}");
        assert_eq!(list_rel(&loc).await, ["exp/x", "exp2/y"], "{name}");
    }

    pub async fn child_locations_write_under_the_parent(name: &str, loc: Location) {
        let child = loc.child("exported_snapshots/org/proj");
        assert!(
            child.url.ends_with("/exported_snapshots/org/proj"),
            "{name}: {}",
            child.url
        );
        child
            .store
            .put(&child.path("c/2026-08-10T0327/1/.complete"), "{}".into())
            .await
            .unwrap();
        assert_eq!(
            list_rel(&loc).await,
            ["exported_snapshots/org/proj/c/2026-08-10T0327/1/.complete"],
            "{name}"
        );
        if let Some(root) = &child.local_root {
            let file = root.join("c/2026-08-10T0327/1/.complete");
            assert_eq!(
                std::fs::read(&file).unwrap(),
                b"{}",
                "{name}: {}",
                file.display()
            );
        }
    }

    pub async fn reopening_the_url_sees_the_same_objects(name: &str, loc: Location) {
        loc.store.put(&loc.path("k"), "v".into()).await.unwrap();
        let again = storage::open(&loc.url, &support::storage_options_for(name)).unwrap();
        assert_eq!(again.prefix, loc.prefix, "{name}");
        assert_eq!(read_all(&again, &again.path("k")).await, b"v", "{name}");
    }

    pub async fn multipart_upload_round_trips(name: &str, loc: Location) {
        let path = loc.path("big/rs0.0.json.gz");
        let body = pattern(2 * PART + MIB, 7);
        let upload = loc.store.put_multipart(&path).await.unwrap();
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        // Uneven writes, so parts are cut across write boundaries.
        for chunk in body.chunks(3 * MIB / 2 + 17) {
            writer.wait_for_capacity(2).await.unwrap();
            writer.write(chunk);
        }
        writer.finish().await.unwrap();
        let got = read_all(&loc, &path).await;
        assert_eq!(got.len(), body.len(), "{name}");
        assert!(got == body, "{name}: content differs");
        // A range across the first part boundary.
        let r = loc
            .store
            .get_range(&path, (PART - 10) as u64..(PART + 10) as u64)
            .await
            .unwrap();
        assert_eq!(&r[..], &body[PART - 10..PART + 10], "{name}");
        if name == "gcs" {
            let server = support::gcs::server();
            assert_eq!(
                server.completed_uploads(path.as_ref()),
                [support::gcs::CompletedUpload {
                    key: path.to_string(),
                    parts: 3
                }],
                "{name}: one upload of three parts"
            );
        }
    }

    pub async fn aborted_multipart_leaves_no_object(name: &str, loc: Location) {
        let path = loc.path("aborted.json.gz");
        let mut upload = loc.store.put_multipart(&path).await.unwrap();
        upload.put_part(pattern(PART, 3).into()).await.unwrap();
        upload.abort().await.unwrap();
        let err = loc.store.head(&path).await.unwrap_err();
        assert!(is_not_found(&err), "{name}: {err:?}");
        assert_eq!(list_rel(&loc).await, Vec::<String>::new(), "{name}");
        if let Some(open) = support::open_uploads(name, &loc) {
            assert_eq!(
                open,
                Vec::<String>::new(),
                "{name}: the upload is still open"
            );
        }
    }

    pub async fn create_mode_refuses_to_overwrite(name: &str, loc: Location) {
        let path = loc.path(".complete");
        let create = || PutOptions::from(PutMode::Create);
        loc.store
            .put_opts(&path, "first".into(), create())
            .await
            .unwrap();
        let err = loc
            .store
            .put_opts(&path, "second".into(), create())
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::AlreadyExists { .. }),
            "{name}: {err:?}"
        );
        assert_eq!(read_all(&loc, &path).await, b"first", "{name}");
    }

    pub async fn delete_removes_the_object(name: &str, loc: Location) {
        let keep = loc.path("keep");
        let gone = loc.path("gone");
        loc.store.put(&keep, "1".into()).await.unwrap();
        loc.store.put(&gone, "2".into()).await.unwrap();
        loc.store.delete(&gone).await.unwrap();
        let err = loc.store.get(&gone).await.unwrap_err();
        assert!(is_not_found(&err), "{name}: {err:?}");
        assert_eq!(list_rel(&loc).await, ["keep"], "{name}");
    }

    /// The failure this helper exists for: the store dies in the middle of a multipart upload.
    /// The writer must surface the injected error, the caller aborts, and nothing is left
    /// under the key.
    pub async fn upload_cut_off_midway_leaves_nothing(name: &str, loc: Location) {
        let faulty = FaultyStore::new(loc.store.clone()).fail_after_bytes((PART + MIB) as u64);
        let floc = loc.with_store(Arc::new(faulty.clone()));
        let path = floc.path("cut/rs0.0.json.gz");
        let upload = floc.store.put_multipart(&path).await.unwrap();
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let body = pattern(3 * PART, 9);
        let mut failure = None;
        for chunk in body.chunks(MIB) {
            if let Err(e) = writer.wait_for_capacity(1).await {
                failure = Some(e);
                break;
            }
            writer.write(chunk);
        }
        // The writer reports a failed part either while waiting for capacity (then the caller
        // aborts, as the export pipeline does) or from `finish`.
        let (err, aborted_here) = match failure {
            Some(e) => {
                writer.abort().await.unwrap();
                (e, true)
            }
            None => (writer.finish().await.unwrap_err(), false),
        };
        assert!(err.to_string().contains("injected fault"), "{name}: {err}");
        assert!(faulty.tripped(), "{name}");
        let stats = faulty.stats();
        assert_eq!(
            stats.bytes_accepted, PART as u64,
            "{name}: only the first part got through"
        );
        assert!(stats.writes_failed >= 1, "{name}");
        assert_eq!(stats.uploads_completed, Vec::<Path>::new(), "{name}");
        if aborted_here {
            assert_eq!(stats.uploads_aborted, std::slice::from_ref(&path), "{name}");
        }
        // Reads pass through the tripped store; the real store has nothing under the key.
        let e = floc.store.head(&path).await.unwrap_err();
        assert!(is_not_found(&e), "{name}: {e:?}");
        assert_eq!(list_rel(&loc).await, Vec::<String>::new(), "{name}");
        if aborted_here && let Some(open) = support::open_uploads(name, &loc) {
            assert_eq!(
                open,
                Vec::<String>::new(),
                "{name}: the upload is still open"
            );
        }
    }

    pub async fn failed_put_writes_nothing_and_heal_recovers(name: &str, loc: Location) {
        let faulty = FaultyStore::new(loc.store.clone()).fail_after_calls(1);
        let floc = loc.with_store(Arc::new(faulty.clone()));
        floc.store.put(&floc.path("one"), "1".into()).await.unwrap();
        let err = floc
            .store
            .put(&floc.path("two"), "2".into())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("write call limit of 1"),
            "{name}: {err}"
        );
        // Sticky: an outage does not heal between retries.
        assert!(
            floc.store
                .put(&floc.path("three"), "3".into())
                .await
                .is_err(),
            "{name}"
        );
        assert!(
            floc.store.put_multipart(&floc.path("four")).await.is_err(),
            "{name}"
        );
        assert_eq!(list_rel(&loc).await, ["one"], "{name}");
        faulty.heal();
        floc.store
            .put(&floc.path("five"), "5".into())
            .await
            .unwrap();
        assert_eq!(list_rel(&loc).await, ["five", "one"], "{name}");
        assert_eq!(faulty.stats().writes_failed, 3, "{name}");
    }
}

/// Generates one `#[tokio::test]` per check for a backend, so a failure names both
/// (`s3::multipart_upload_round_trips`).
macro_rules! backend_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;
            backend_suite!(@tests $backend;
                put_get_head_round_trip,
                empty_object_round_trips,
                missing_object_is_not_found,
                list_sees_exactly_what_was_written,
                a_sibling_prefix_is_not_listed,
                child_locations_write_under_the_parent,
                reopening_the_url_sees_the_same_objects,
                multipart_upload_round_trips,
                aborted_multipart_leaves_no_object,
                create_mode_refuses_to_overwrite,
                delete_removes_the_object,
                upload_cut_off_midway_leaves_nothing,
                failed_put_writes_nothing_and_heal_recovers,
            );
        }
    };
    (@tests $backend:ident; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let name = stringify!($backend);
                if let Some(loc) = support::location(name) {
                    checks::$check(name, loc).await;
                }
            }
        )*
    };
}

backend_suite!(memory);
backend_suite!(local);
backend_suite!(s3);
backend_suite!(azure);
backend_suite!(s3_sigv4);
backend_suite!(gcs);

#[test]
fn test_locations_cover_every_backend_when_services_are_required() {
    let names: Vec<&str> = support::test_locations().iter().map(|(n, _)| *n).collect();
    if support::services_required() {
        assert_eq!(names, support::BACKENDS);
    } else {
        assert!(names.starts_with(&["memory", "local"]), "{names:?}");
    }
}

#[tokio::test]
async fn s3_with_a_wrong_secret_is_refused() {
    // s3s-fs checks SigV4 for real: this proves the keys are used, not ignored.
    let Some(loc) = support::location("s3_sigv4") else {
        return;
    };
    let options = StorageOptions {
        s3_secret_access_key: Some("not-the-secret".into()),
        ..support::storage_options_for("s3_sigv4")
    };
    let bad = storage::open(&loc.url, &options).unwrap();
    let err = bad.store.put(&bad.path("x"), "1".into()).await.unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("403") || text.contains("SignatureDoesNotMatch"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-secret"),
        "the secret leaked into the error: {text}"
    );
}

#[tokio::test]
async fn gcs_with_a_key_the_server_does_not_know_is_refused() {
    // The GCS server checks the JWT's signature: a key of the same id and e-mail but another
    // private key is refused, so the suite's passing says the right key signed every request.
    let server = support::gcs::server();
    let loc = support::location("gcs").unwrap();
    let options = StorageOptions {
        gcs_service_account_key: Some(server.stranger_key_json().to_string()),
        ..support::storage_options_for("gcs")
    };
    let stranger = storage::open(&loc.url, &options).unwrap();
    let before = server.unauthenticated_requests();
    let err = stranger
        .store
        .put(&stranger.path("x"), "1".into())
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("401"), "{err:?}");
    assert!(server.unauthenticated_requests() > before);
    let err = loc.store.head(&loc.path("x")).await.unwrap_err();
    assert!(is_not_found(&err), "nothing was written: {err:?}");
}

#[tokio::test]
async fn gcs_lists_page_by_page_past_a_thousand_keys() {
    // GCS pages at 1000 keys; object_store follows NextContinuationToken.
    let loc = support::location("gcs").unwrap();
    let keys: Vec<String> = (0..1005).map(|i| format!("k/{i:05}")).collect();
    let paths: Vec<Path> = keys.iter().map(|k| loc.path(k)).collect();
    futures::stream::iter(&paths)
        .map(|p| loc.store.put(p, PutPayload::from_static(b"1")))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(list_rel(&loc).await, keys);
}

#[tokio::test]
async fn gcs_read_path_head_get_range_and_list() {
    // Only reads: see support::gcs_location for why writes are not tested on GCS.
    let Some((loc, seeder)) = support::gcs_location() else {
        return;
    };
    let body = pattern(300_000, 5);
    let data = loc.path("dump/db/coll.bson");
    seeder.put(data.as_ref(), body.clone()).await;
    seeder
        .put(
            loc.path("dump/db/coll.metadata.json").as_ref(),
            b"{}".to_vec(),
        )
        .await;
    seeder
        .put(loc.path("dump/prelude.json").as_ref(), b"{}".to_vec())
        .await;
    assert_eq!(read_all(&loc, &data).await, body);
    assert_eq!(loc.store.head(&data).await.unwrap().size, body.len() as u64);
    let r = loc.store.get_range(&data, 1000..2000).await.unwrap();
    assert_eq!(&r[..], &body[1000..2000]);
    assert_eq!(
        list_rel(&loc).await,
        [
            "dump/db/coll.bson",
            "dump/db/coll.metadata.json",
            "dump/prelude.json"
        ]
    );
    let dump = loc.child("dump");
    let listing = dump
        .store
        .list_with_delimiter(Some(&dump.prefix))
        .await
        .unwrap();
    let dirs: Vec<String> = listing
        .common_prefixes
        .iter()
        .map(|p| dump.relative(p).unwrap())
        .collect();
    assert_eq!(dirs, ["db"]);
    let err = loc.store.get(&loc.path("missing")).await.unwrap_err();
    assert!(is_not_found(&err), "{err:?}");
}

#[tokio::test]
async fn a_stalled_store_never_finishes_the_write() {
    let loc = support::location("memory").unwrap();
    let faulty = FaultyStore::new(loc.store.clone())
        .fail_after_calls(0)
        .stall();
    let path = loc.path("x");
    let put = faulty.put(&path, "1".into());
    let res = tokio::time::timeout(std::time::Duration::from_millis(200), put).await;
    assert!(res.is_err(), "a stalled put must not complete");
    assert_eq!(faulty.stats().writes_failed, 1);
    assert!(loc.store.head(&loc.path("x")).await.is_err());
}

#[tokio::test]
async fn parts_are_refused_in_the_order_they_are_handed_over() {
    let loc = support::location("memory").unwrap();
    let faulty = FaultyStore::new(loc.store.clone()).fail_after_bytes(10);
    let mut upload = faulty.put_multipart(&loc.path("m")).await.unwrap();
    let first = upload.put_part(Bytes::from_static(b"0123456789").into());
    let second = upload.put_part(Bytes::from_static(b"x").into());
    assert!(second.await.is_err());
    first.await.unwrap();
    upload.abort().await.unwrap();
    assert_eq!(faulty.aborted_uploads(), [loc.path("m")]);
    assert_eq!(faulty.stats().bytes_accepted, 10);
}

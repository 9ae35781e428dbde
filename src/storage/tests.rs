//! Unit tests of URL parsing and `Location` helpers. The shared store suite that talks to
//! every backend is `tests/export/storage_backends.rs`.

use super::*;
use object_store::ObjectStoreExt;

fn opts() -> StorageOptions {
    StorageOptions::default()
}

fn err_reason(url: &str) -> String {
    match open(url, &opts()) {
        Err(StorageError::InvalidUrl { reason, .. }) => reason,
        Err(other) => panic!("{url}: expected InvalidUrl, got {other}"),
        Ok(loc) => panic!("{url}: expected an error, got {loc:?}"),
    }
}

#[test]
fn unknown_scheme_is_named_in_the_error() {
    let reason = err_reason("ftp://host/x");
    assert!(reason.contains("unknown scheme \"ftp\""), "{reason}");
}

#[test]
fn missing_bucket_is_rejected_for_every_cloud_scheme() {
    assert!(err_reason("s3://").contains("missing bucket"));
    assert!(err_reason("s3:///prefix").contains("missing bucket"));
    assert!(err_reason("gs://").contains("missing bucket"));
    assert!(err_reason("az:///x").contains("missing container"));
    assert!(err_reason("memory://").contains("missing store name"));
}

#[test]
fn dot_segments_are_rejected_in_urls() {
    for url in [
        "s3://b/a/../b",
        "s3://b/./a",
        "gs://b/%2E%2E/x",
        "file:///tmp/../etc",
        "memory://m/..",
    ] {
        let reason = err_reason(url);
        assert!(reason.contains("'..'"), "{url}: {reason}");
    }
}

#[test]
fn credentials_in_the_url_are_rejected_and_not_echoed() {
    let err = open("s3://AKIA:supersecret@bucket/x", &opts()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("credentials must not be part of the url"),
        "{text}"
    );
    assert!(!text.contains("supersecret"), "{text}");
}

#[test]
fn queries_and_fragments_are_rejected() {
    assert!(err_reason("s3://b/x?versionId=1").contains("query"));
    assert!(err_reason("s3://b/x#frag").contains("query"));
}

#[test]
fn bad_bucket_names_are_rejected() {
    assert!(err_reason("s3://bu cket/x").contains("may only contain"));
    assert!(err_reason("s3://bucket:9000/x").contains("may only contain"));
    assert!(err_reason("az://ab/x").contains("3 to 63"));
}

#[test]
fn file_urls_with_a_host_are_rejected() {
    assert!(err_reason("file://relative/path").contains("absolute"));
}

#[test]
fn s3_url_splits_bucket_and_prefix_and_prints_no_secret() {
    let options = StorageOptions {
        s3_endpoint: Some("http://127.0.0.1:1".into()),
        s3_access_key_id: Some("AKIDEXAMPLE".into()),
        s3_secret_access_key: Some("topsecretvalue".into()),
        allow_http: true,
        ..opts()
    };
    let loc = open("s3://my-bucket/exports/a%20b/", &options).unwrap();
    assert_eq!(loc.url, "s3://my-bucket/exports/a b");
    assert_eq!(loc.prefix.as_ref(), "exports/a b");
    assert!(loc.local_root.is_none());
    assert_eq!(loc.store.to_string(), "AmazonS3(my-bucket)");
    let debug = format!("{loc:?} {options:?}");
    assert!(!debug.contains("topsecretvalue"), "{debug}");
}

#[test]
fn half_a_key_pair_is_an_error() {
    let options = StorageOptions {
        s3_access_key_id: Some("AKIDEXAMPLE".into()),
        ..opts()
    };
    let err = open("s3://b/x", &options).unwrap_err();
    assert!(err.to_string().contains("together"), "{err}");
}

#[test]
fn azure_emulator_and_gcs_urls_open() {
    let options = StorageOptions {
        azure_use_emulator: true,
        gcs_service_account_key: Some(
            r#"{"gcs_base_url":"http://127.0.0.1:1","disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}"#
                .into(),
        ),
        ..opts()
    };
    let az = open("az://container/p/q", &options).unwrap();
    assert_eq!(az.prefix.as_ref(), "p/q");
    assert_eq!(az.url, "az://container/p/q");
    let gs = open("gs://bucket", &options).unwrap();
    assert_eq!(gs.prefix.as_ref(), "");
    assert_eq!(gs.url, "gs://bucket");
}

#[test]
fn scheme_is_case_insensitive_and_reported() {
    assert_eq!(scheme_of("S3://b/x").unwrap(), Scheme::S3);
    assert_eq!(scheme_of("relative/dir").unwrap(), Scheme::Local);
    assert_eq!(scheme_of("file:///x").unwrap(), Scheme::Local);
}

#[test]
fn path_and_child_stay_under_the_prefix() {
    let loc = open("memory://unit-path/base", &opts()).unwrap();
    assert_eq!(loc.path("a/b.json.gz").as_ref(), "base/a/b.json.gz");
    assert_eq!(loc.path("/a//b/").as_ref(), "base/a/b");
    // `..` is encoded, never interpreted.
    assert_eq!(loc.path("../x").as_ref(), "base/%2E%2E/x");
    // Characters that are legal in keys are kept as written.
    assert_eq!(loc.path("db/c*ll#1").as_ref(), "base/db/c*ll#1");
    let child = loc.child("exported_snapshots/org");
    assert_eq!(child.url, "memory://unit-path/base/exported_snapshots/org");
    assert_eq!(child.prefix.as_ref(), "base/exported_snapshots/org");
    assert_eq!(child.path("x").as_ref(), "base/exported_snapshots/org/x");
    assert_eq!(
        loc.relative(&child.path("x")).as_deref(),
        Some("exported_snapshots/org/x")
    );
    assert_eq!(loc.relative(&Path::from("other/x")), None);
}

#[tokio::test]
async fn memory_stores_are_shared_by_name_within_the_process() {
    let a = open("memory://unit-shared/p", &opts()).unwrap();
    let b = open("memory://unit-shared", &opts()).unwrap();
    let other = open("memory://unit-other", &opts()).unwrap();
    a.store.put(&a.path("k"), "v".into()).await.unwrap();
    let got = b
        .store
        .get(&b.path("p/k"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], b"v");
    assert!(other.store.head(&other.path("p/k")).await.is_err());
    assert!(forget_memory_store("unit-shared"));
    let fresh = open("memory://unit-shared", &opts()).unwrap();
    assert!(fresh.store.head(&fresh.path("p/k")).await.is_err());
}

#[tokio::test]
async fn local_open_has_no_side_effects_and_first_write_creates_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("new/deeper");
    let loc = open(target.to_str().unwrap(), &opts()).unwrap();
    assert!(!target.exists(), "open must not create the directory");
    assert_eq!(
        loc.local_root.as_deref(),
        Some(target.canonicalize_lossy().as_path())
    );
    loc.store
        .put(&loc.path("x/y.txt"), "hi".into())
        .await
        .unwrap();
    assert_eq!(std::fs::read(target.join("x/y.txt")).unwrap(), b"hi");
}

#[tokio::test]
async fn open_for_write_creates_the_directory_and_file_urls_work() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("dest");
    let url = format!("file://{}/", target.display());
    let loc = open_for_write(&url, &opts()).unwrap();
    assert!(target.is_dir());
    assert_eq!(loc.prefix.as_ref(), "");
    assert_eq!(loc.url, url.trim_end_matches('/'));
    let child = loc.child("a b/c");
    child.store.put(&child.path("f"), "1".into()).await.unwrap();
    assert_eq!(
        child.local_root.as_ref().unwrap(),
        &target.canonicalize().unwrap().join("a b/c")
    );
    assert!(child.local_root.unwrap().join("f").is_file());
}

#[tokio::test]
async fn a_local_file_opens_as_its_parent_with_the_name_as_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.archive");
    std::fs::write(&file, b"archive").unwrap();
    let loc = open(file.to_str().unwrap(), &opts()).unwrap();
    assert_eq!(loc.prefix.as_ref(), "dump.archive");
    let bytes = loc
        .store
        .get(&loc.prefix)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"archive");
    assert_eq!(loc.local_root.unwrap(), file.canonicalize().unwrap());
}

#[test]
fn relative_local_paths_with_dotdot_resolve_like_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    let url = format!("{}/a/../missing/../b", dir.path().display());
    let loc = open(&url, &opts()).unwrap();
    assert_eq!(
        loc.local_root.unwrap(),
        dir.path().canonicalize().unwrap().join("b")
    );
    assert_eq!(loc.prefix.as_ref(), "b");
}

/// The budget decides, not a count (issue 10: five retries were spent in about a second): even
/// at the initial backoff on every wait, the default count outlasts the budget.
#[test]
fn the_retry_budget_not_a_count_decides_by_default() {
    let retry = opts().retry_config();
    assert_eq!(retry.retry_timeout, DEFAULT_RETRY_BUDGET);
    assert!(DEFAULT_RETRY_BUDGET >= Duration::from_secs(60));
    assert!(
        RETRY_INITIAL_BACKOFF * u32::try_from(retry.max_retries).unwrap() >= DEFAULT_RETRY_BUDGET,
        "{retry:?}"
    );
    assert!(retry.backoff.max_backoff <= Duration::from_secs(5));
    let custom = StorageOptions {
        max_retries: Some(1),
        retry_timeout: Some(Duration::from_secs(3)),
        ..opts()
    }
    .retry_config();
    assert_eq!(
        (custom.max_retries, custom.retry_timeout),
        (1, Duration::from_secs(3))
    );
}

trait CanonicalizeLossy {
    fn canonicalize_lossy(&self) -> PathBuf;
}

impl CanonicalizeLossy for std::path::Path {
    /// Canonical form of the deepest existing ancestor, joined with the rest.
    fn canonicalize_lossy(&self) -> PathBuf {
        let mut existing = self.to_path_buf();
        let mut rest = Vec::new();
        while !existing.exists() {
            rest.push(existing.file_name().unwrap().to_owned());
            existing.pop();
        }
        let mut out = existing.canonicalize().unwrap();
        out.extend(rest.iter().rev());
        out
    }
}

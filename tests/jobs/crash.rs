//! Crash consistency (issue 10): `snapex serve` SIGKILLed at each phase of an export, through the
//! test-only pause hook (`SNAPEX_TEST_PAUSE_AT`, see `snapex::pause`), then restarted on the
//! same data directory. Whatever the phase, the job's state agrees with its bucket by the rule
//! of `snapex::jobs` recovery: `Successful` exactly when the prefix holds a `.complete` over a
//! manifest that verifies (and `snapex verify` says so), `Failed` as interrupted otherwise, with
//! no `.complete`; and nothing unfinished is left behind (no staging file on `file://`, no
//! multipart upload open on the S3 emulator or on our GCS server).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::import_fields;
use crate::lifecycle::Moto;
use crate::support::atlas::{AtlasClient, V2023};
use crate::support::deployment::{Node, TestDeployment};
use crate::support::{self, files_under, sample_dump};

const LIMIT: Duration = Duration::from_secs(180);

/// Waits until the node's log says it paused at `phase`.
async fn wait_for_pause(node: &Node, phase: &str) {
    let start = Instant::now();
    let line = format!("snapex: paused at {phase}");
    while !node.log().contains(&line) {
        assert!(
            start.elapsed() < LIMIT,
            "the node never paused at {phase}: {}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `snapex verify` of a local prefix: whether it passed, and what it printed.
fn verify(prefix: &Path) -> (bool, String) {
    let out = Command::new(support::bin())
        .arg("verify")
        .arg(format!("file://{}", prefix.display()))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Files of unfinished objects that LocalFileSystem stages as `<name>#<n>`.
fn staging_files(prefix: &Path) -> Vec<String> {
    files_under(prefix)
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|name| name.rsplit_once('#'))
                .is_some_and(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// One export to a FILESYSTEM bucket, killed at `phase`, the node restarted: returns the job
/// as the restarted node reports it once final, and the job's prefix directory.
async fn killed_at(phase: &str, dump_size: &str) -> (Value, std::path::PathBuf, TestDeployment) {
    let d = TestDeployment::builder().create().await;
    let dump = sample_dump(&d.data_dir().join("dump"), dump_size, 10);
    let flags = ["--lease-seconds", "5"];
    let mut node = d.start_node_with_env("node-a", &flags, &[("SNAPEX_TEST_PAUSE_AT", phase)]);
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("crash").await;
    let snap = api
        .import_snapshot("c1", &["rs0"], &dump, import_fields(None))
        .await;
    let job = api
        .create_export("c1", snap["id"].as_str().unwrap(), &bucket)
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let prefix = node
        .bucket_root
        .join(&d.group_id)
        .join("crash")
        .join(job["prefix"].as_str().unwrap());
    wait_for_pause(&node, phase).await;
    assert_eq!(api.job("c1", &id).await["state"], "InProgress");
    node.kill();
    let node = d.start_node("node-a", &flags);
    api.use_node(&node.url);
    let done = api.wait_final("c1", &id, LIMIT).await;
    drop(node);
    (done, prefix, d)
}

/// The rule, checked against what a user sees: the API's state, `.complete`, `snapex verify`,
/// and no staging file left.
fn assert_agrees(phase: &str, job: &Value, prefix: &Path) {
    let complete = prefix.join(".complete").is_file();
    let (verified, report) = verify(prefix);
    match job["state"].as_str().unwrap() {
        "Successful" => {
            assert!(complete, "{phase}: Successful without .complete: {job}");
            assert!(verified, "{phase}: Successful but verify fails: {report}");
            let status = &job["exportStatus"];
            assert!(
                status["totalCollections"].as_u64().unwrap() > 0
                    && status["exportedCollections"] == status["totalCollections"],
                "{phase}: every collection counted: {job}"
            );
        }
        "Failed" => {
            assert!(!complete, "{phase}: Failed beside a .complete: {job}");
            assert!(
                !verified,
                "{phase}: verify passes a failed export: {report}"
            );
            let reason = job["stateReason"]["message"].as_str().unwrap();
            assert!(reason.contains("interrupted"), "{phase}: {job}");
            assert!(reason.contains("node-a"), "{phase}: {job}");
        }
        other => panic!("{phase}: job ended {other}: {job}"),
    }
    let staged = staging_files(prefix);
    assert!(staged.is_empty(), "{phase}: staging files left: {staged:?}");
}

/// Killed right after `.complete` was written, before the job's end was recorded: the job
/// comes back `Successful` with its collections counted (it was `Failed` before issue 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_complete_the_job_ends_successful() {
    let (job, prefix, _d) = killed_at("after-complete", "2MiB").await;
    assert_eq!(job["state"], "Successful", "{job}");
    assert_agrees("after-complete", &job, &prefix);
}

/// Killed inside the transaction that records `Successful`: rolled back, then recovered as
/// `Successful` from the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_recording_the_end_the_job_ends_successful() {
    let (job, prefix, _d) = killed_at("recording", "2MiB").await;
    assert_eq!(job["state"], "Successful", "{job}");
    assert_agrees("recording", &job, &prefix);
}

/// Killed between the manifest and `.complete`: `Failed`, and no `.complete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_manifest_and_complete_the_job_fails() {
    let (job, prefix, _d) = killed_at("after-manifest", "2MiB").await;
    assert_eq!(job["state"], "Failed", "{job}");
    assert!(prefix.join(".manifest.json").is_file());
    assert_agrees("after-manifest", &job, &prefix);
}

/// Killed between the last data file and the manifest: `Failed`, no manifest, no `.complete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_data_before_the_manifest_the_job_fails() {
    let (job, prefix, _d) = killed_at("after-data", "2MiB").await;
    assert_eq!(job["state"], "Failed", "{job}");
    assert!(!prefix.join(".manifest.json").exists());
    assert!(
        files_under(&prefix)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".json.gz"))
    );
    assert_agrees("after-data", &job, &prefix);
}

/// Killed while a data file is half written (its first 8 MiB part on disk, in LocalFileSystem's
/// staging file): `Failed`, and the restarted node removed the staging file; finished files stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_writing_a_data_file_the_job_fails_and_no_staging_file_stays() {
    let (job, prefix, d) = killed_at("writing-data", "120MiB").await;
    assert_eq!(job["state"], "Failed", "{job}");
    assert_agrees("writing-data", &job, &prefix);
    // There was one to remove: the test would prove nothing otherwise.
    let log = std::fs::read_to_string(d.data_dir().join("node-a.out")).unwrap();
    assert!(
        log.contains("removed the staging file of an unfinished object"),
        "{log}"
    );
}

/// An S3 bucket (moto) of the node's project.
async fn s3_bucket(api: &AtlasClient, moto: &Moto) -> String {
    let g = api.group_id.clone();
    let role = api
        .ok(
            "POST",
            &format!("/api/snapex/v1/groups/{g}/accessRoles"),
            "application/json",
            Some(json!({
                "provider": "AWS",
                "accessKeyId": std::env::var(support::ENV_S3_ACCESS_KEY).unwrap(),
                "secretAccessKey": std::env::var(support::ENV_S3_SECRET_KEY).unwrap(),
                "endpoint": moto.endpoint,
                "region": "us-east-1",
            })),
        )
        .await;
    let bucket = api
        .ok(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            V2023,
            Some(json!({"cloudProvider": "AWS", "bucketName": moto.bucket, "iamRoleId": role["roleId"]})),
        )
        .await;
    bucket["_id"].as_str().unwrap().to_string()
}

/// Killed mid-upload to S3, at each phase: after the restart the job agrees with the bucket by
/// the rule, and no multipart upload of the job is left open on the emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_export_to_s3_no_multipart_upload_stays_open() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let d = TestDeployment::builder().create().await;
    let big = sample_dump(&d.data_dir().join("big"), "120MiB", 3);
    let small = sample_dump(&d.data_dir().join("small"), "2MiB", 4);
    let flags = ["--lease-seconds", "5"];
    let mut bucket: Option<String> = None;
    for (phase, dump, expected) in [
        ("writing-data", &big, "Failed"),
        ("after-manifest", &small, "Failed"),
        ("after-complete", &small, "Successful"),
    ] {
        let mut node = d.start_node_with_env("node-a", &flags, &[("SNAPEX_TEST_PAUSE_AT", phase)]);
        let api = d.client(&node.url).await;
        let cluster = format!("c-{phase}");
        api.register_cluster(&cluster, &["rs0"]).await;
        let bucket = match &bucket {
            Some(b) => b.clone(),
            None => bucket.insert(s3_bucket(&api, &moto).await).clone(),
        };
        let snap = api
            .import_snapshot(&cluster, &["rs0"], dump, import_fields(None))
            .await;
        let job = api
            .create_export(&cluster, snap["id"].as_str().unwrap(), &bucket)
            .await;
        let id = job["id"].as_str().unwrap().to_string();
        let prefix = job["prefix"].as_str().unwrap().to_string();
        wait_for_pause(&node, phase).await;
        let open_at_kill = moto
            .open_uploads()
            .await
            .iter()
            .any(|k| k.starts_with(&prefix));
        assert_eq!(open_at_kill, phase == "writing-data", "{phase}");
        node.kill();
        let node = d.start_node("node-a", &flags);
        api.use_node(&node.url);
        let done = api.wait_final(&cluster, &id, LIMIT).await;
        assert_eq!(done["state"], expected, "{phase}: {done}");
        let keys = moto.keys(&prefix).await;
        let complete = keys.iter().any(|k| k.ends_with("/.complete"));
        assert_eq!(complete, expected == "Successful", "{phase}: {keys:?}");
        let url = format!("s3://{}/{prefix}", moto.bucket);
        let verified = Command::new(support::bin())
            .arg("verify")
            .arg(&url)
            .envs(support::child_env("s3"))
            .output()
            .unwrap()
            .status
            .success();
        assert_eq!(verified, expected == "Successful", "{phase}: verify {url}");
        let open: Vec<String> = moto
            .open_uploads()
            .await
            .into_iter()
            .filter(|k| k.starts_with(&prefix))
            .collect();
        assert!(
            open.is_empty(),
            "{phase}: multipart uploads left open: {open:?}"
        );
    }
}

/// Killed mid-upload to GCS (our XML-API server, `support::gcs`), with a multipart upload of the
/// job open there: after the restart the job is `Failed` as interrupted, there is no
/// `.complete`, and recovery aborted the upload (listed through the XML API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_export_to_gcs_no_multipart_upload_stays_open() {
    let d = TestDeployment::builder().create().await;
    let big = sample_dump(&d.data_dir().join("big"), "120MiB", 7);
    let flags = ["--lease-seconds", "5"];
    let phase = "writing-data";
    let mut node = d.start_node_with_env("node-a", &flags, &[("SNAPEX_TEST_PAUSE_AT", phase)]);
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = crate::lifecycle::gcs_bucket(&api).await;
    let snap = api
        .import_snapshot("c1", &["rs0"], &big, import_fields(None))
        .await;
    let job = api
        .create_export("c1", snap["id"].as_str().unwrap(), &bucket)
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let prefix = format!("{}/", job["prefix"].as_str().unwrap());
    wait_for_pause(&node, phase).await;
    let server = support::gcs::server();
    assert!(
        !server.open_uploads(&prefix).is_empty(),
        "an upload is open when the node is killed"
    );
    node.kill();
    let node = d.start_node("node-a", &flags);
    api.use_node(&node.url);
    let done = api.wait_final("c1", &id, LIMIT).await;
    assert_eq!(done["state"], "Failed", "{done}");
    assert!(!server.has_object(&format!("{prefix}.complete")));
    assert_eq!(
        server.open_uploads(&prefix),
        Vec::<String>::new(),
        "multipart uploads left open"
    );
    assert!(!server.aborted_uploads(&prefix).is_empty());
}

/// An upload created under the prefix and never used — what a retried CreateMultipartUpload
/// whose first attempt succeeded late leaves — is aborted once the export's objects are all
/// written; the export still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_multipart_upload_under_the_prefix_is_aborted() {
    use object_store::ObjectStoreExt;
    let Some(moto) = Moto::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dump = sample_dump(&dir.path().join("dump"), "1MiB", 5);
    let bucket = snapex::storage::open(
        &format!("s3://{}", moto.bucket),
        &support::storage_options(),
    )
    .unwrap();
    let prefix = "exported_snapshots/o/p/c/2024-01-01T0000/1700000000";
    let orphan = bucket.path(&format!("{prefix}/db/coll/rs0.0.json.gz"));
    let mut late = bucket.store.put_multipart(&orphan).await.unwrap();
    late.put_part(vec![0u8; 16].into()).await.unwrap();
    assert!(
        moto.open_uploads()
            .await
            .iter()
            .any(|k| k.starts_with(prefix))
    );
    let source = snapex::snapshot::SnapshotSource::open(
        snapex::storage::open(&dump, &support::storage_options()).unwrap(),
    )
    .await
    .unwrap();
    let target = snapex::export::ExportTarget {
        bucket: bucket.clone(),
        prefix: prefix.to_string(),
    };
    snapex::export::run_export(
        vec![("rs0".to_string(), std::sync::Arc::new(source))],
        &target,
        &snapex::export::CompleteInfo::default(),
        &snapex::export::ExportOptions::default(),
        std::sync::Arc::new(snapex::export::NoProgress),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    let open: Vec<String> = moto
        .open_uploads()
        .await
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect();
    assert!(open.is_empty(), "left open: {open:?}");
    let report = snapex::export::verify::verify(&bucket.child(prefix)).await;
    assert!(report.is_ok(), "{:?}", report.problems);
}

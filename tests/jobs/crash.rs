//! Crash consistency (issue 10): `snapex serve` SIGKILLed at each phase of an export, through the
//! test-only pause hook (`SNAPEX_TEST_PAUSE_AT`, see `snapex::pause`), then restarted on the
//! same data directory. Whatever the phase, the job's state agrees with its bucket by the rule
//! of `snapex::jobs` recovery: `Successful` exactly when the prefix holds a `.complete` over a
//! manifest that verifies (and `snapex verify` says so), `Failed` as interrupted otherwise, with
//! no `.complete`; and nothing unfinished is left behind (no staging file on `file://`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::import_fields;
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
        .map(|p| p.display().to_string())
        .filter(|p| {
            p.rsplit('/')
                .next()
                .and_then(|name| name.rsplit_once('#'))
                .is_some_and(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
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

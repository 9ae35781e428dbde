//! Export jobs through their life (PRODUCT.md §3, issue 4), on the real `snapex serve` binary
//! run as a separate process so that a crash is a real SIGKILL: the admission limit, a crash
//! mid-export, cancellation, an object store that fails mid-export, and auto-export.

mod jobs_support;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jobs_support::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);

/// Samples the jobs list of `cluster` every ~100 ms until `expected` jobs are all final.
/// Returns the highest number of exporting replica sets seen, whether a sample showed five
/// exporting with jobs still queued, and the samples' final states per job (checking on the
/// way that a final state never changes).
async fn sample_until_final(api: &Api, cluster: &str, expected: usize) -> (usize, bool) {
    let start = Instant::now();
    let mut max = 0;
    let mut full_with_queue = false;
    let mut finals: HashMap<String, Value> = HashMap::new();
    loop {
        let jobs = api.jobs(cluster).await;
        let exporting = exporting_replica_sets(&jobs);
        assert!(
            exporting <= 5,
            "{exporting} replica sets exporting at once: {jobs:#?}"
        );
        max = max.max(exporting);
        let queued = jobs.iter().filter(|j| j["state"] == "Queued").count();
        full_with_queue |= exporting == 5 && queued > 0;
        for j in &jobs {
            let id = j["id"].as_str().unwrap().to_string();
            if let Some(seen) = finals.get(&id) {
                assert_eq!(
                    (&seen["state"], &seen["finishedAt"]),
                    (&j["state"], &j["finishedAt"]),
                    "a final job changed: {j}"
                );
            } else if FINAL.contains(&j["state"].as_str().unwrap()) {
                finals.insert(id, j.clone());
            }
        }
        if jobs.len() == expected && finals.len() == expected {
            return (max, full_with_queue);
        }
        assert!(start.elapsed() < LIMIT, "jobs did not finish: {jobs:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seven jobs at once over slow-enough snapshots: never more than five replica sets exporting,
/// the queue is used, and all seven end `Successful` with a `.complete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_jobs_never_export_more_than_five_replica_sets_at_once() {
    let d = Deployment::new(None);
    let dump = sample_dump(&d.dir.path().join("dump"), "16MiB", 7);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket("seven").await;
    let mut snapshots = Vec::new();
    for _ in 0..7 {
        let s = api.import_snapshot("c1", &["rs0"], &dump, None).await;
        snapshots.push(s["id"].as_str().unwrap().to_string());
    }
    let sampler = {
        let api = api.clone();
        tokio::spawn(async move { sample_until_final(&api, "c1", 7).await })
    };
    let mut jobs = Vec::new();
    for s in &snapshots {
        let job = api.create_export("c1", s, &bucket).await;
        jobs.push(job);
    }
    let (max, full_with_queue) = sampler.await.unwrap();
    assert_eq!(max, 5, "the limit was never reached");
    assert!(
        full_with_queue,
        "no sample showed a job waiting behind five"
    );
    for job in &jobs {
        let done = api.job("c1", job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "Successful", "{done}");
        let prefix = node
            .bucket_root
            .join("seven")
            .join(done["prefix"].as_str().unwrap());
        assert!(prefix.join(".complete").is_file(), "{}", prefix.display());
    }
}

/// SIGKILL mid-export, then the same node again on the same data directory: the running job
/// ends `Failed` as interrupted (v2 `stateReason`, v1.0 `errMsg`), no `.complete` in its prefix,
/// and the jobs that were queued run to `Successful`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_the_running_job_as_interrupted_and_runs_the_queue() {
    let d = Deployment::new(None);
    let dump = sample_dump(&d.dir.path().join("dump"), "40MiB", 2);
    // One replica set at a time: the first job runs, the other two wait.
    let flags = ["--max-concurrent-replica-sets", "1", "--lease-seconds", "3"];
    let mut node = d.start_node("node-a", &flags);
    let api = d.client(&node).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket("crash").await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let s = api.import_snapshot("c1", &["rs0"], &dump, None).await;
        let job = api
            .create_export("c1", s["id"].as_str().unwrap(), &bucket)
            .await;
        jobs.push(job["id"].as_str().unwrap().to_string());
    }
    let first = api.job("c1", &jobs[0]).await;
    let prefix = node
        .bucket_root
        .join("crash")
        .join(first["prefix"].as_str().unwrap());
    // Mid-export: the job is running and has written a collection's file.
    wait_until("the first job to write files", LIMIT, || {
        let api = api.clone();
        let prefix = prefix.clone();
        let id = jobs[0].clone();
        async move {
            api.job("c1", &id).await["state"] == "InProgress"
                && walk(&prefix)
                    .iter()
                    .any(|p| p.to_string_lossy().ends_with(".json.gz"))
        }
    })
    .await;
    for id in &jobs[1..] {
        assert_eq!(api.job("c1", id).await["state"], "Queued");
    }
    node.kill();
    let node = d.start_node("node-a", &flags);
    api.use_node(&node);
    let failed = api.wait_final("c1", &jobs[0], LIMIT).await;
    assert_eq!(failed["state"], "Failed", "{failed}");
    let reason = failed["stateReason"]["message"].as_str().unwrap();
    assert!(reason.contains("interrupted"), "{failed}");
    assert!(reason.contains("node-a"), "{failed}");
    let v1 = api.job_v1("c1", &jobs[0]).await;
    assert!(
        v1["errMsg"].as_str().unwrap().contains("interrupted"),
        "{v1}"
    );
    assert!(!prefix.join(".complete").exists());
    assert!(
        !walk(&prefix).is_empty(),
        "the partial files of a failed job stay"
    );
    for id in &jobs[1..] {
        let done = api.wait_final("c1", id, LIMIT).await;
        assert_eq!(done["state"], "Successful", "{done}");
        let p = node
            .bucket_root
            .join("crash")
            .join(done["prefix"].as_str().unwrap());
        assert!(p.join(".complete").is_file());
    }
    // the interrupted job was not run again
    let again = api.job("c1", &jobs[0]).await;
    assert_eq!(again["state"], "Failed");
    assert_eq!(again["finishedAt"], failed["finishedAt"]);
    assert!(!prefix.join(".complete").exists());
}

/// Auto-export: with a monthly export policy, importing a monthly snapshot creates an export
/// job that runs to `Successful`; importing a daily one creates none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monthly_policy_auto_exports_a_monthly_snapshot_and_not_a_daily_one() {
    let d = Deployment::new(None);
    let dump = sample_dump(&d.dir.path().join("dump"), "1MiB", 5);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node).await;
    let g = api.group_id.clone();
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket("auto").await;
    let schedule = api
        .ok(
            "PATCH",
            &format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/schedule"),
            "application/vnd.atlas.2024-08-05+json",
            Some(json!({"autoExportEnabled": true, "export": {"exportBucketId": bucket, "frequencyType": "monthly"}})),
        )
        .await;
    assert_eq!(schedule["autoExportEnabled"], true, "{schedule}");
    assert_eq!(schedule["export"]["frequencyType"], "monthly", "{schedule}");

    let daily = api
        .import_snapshot("c1", &["rs0"], &dump, Some("daily"))
        .await;
    assert_eq!(daily["frequencyType"], "daily", "{daily}");
    assert!(api.jobs("c1").await.is_empty());

    let monthly = api
        .import_snapshot("c1", &["rs0"], &dump, Some("monthly"))
        .await;
    let jobs = api.jobs("c1").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0]["snapshotId"], monthly["id"]);
    assert_eq!(jobs[0]["exportBucketId"], bucket.as_str());
    let done = api
        .wait_final("c1", jobs[0]["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
    assert!(
        node.bucket_root
            .join("auto")
            .join(done["prefix"].as_str().unwrap())
            .join(".complete")
            .is_file()
    );
    // and still only that one: the daily snapshot never got a job
    let jobs = api.jobs("c1").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
}

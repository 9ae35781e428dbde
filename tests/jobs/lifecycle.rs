//! Export jobs through their life (PRODUCT.md §3, issue 4), on the real `snapex serve` binary
//! run as a separate process so that a crash is a real SIGKILL: the admission limit, a crash
//! mid-export, cancellation, an object store that fails mid-export, auto-export, and jobs to a
//! `gs://` bucket on our GCS XML-API server (several-part uploads; a refused part aborting them).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::atlas::{AtlasClient, FINAL, V2023};
use crate::support::deployment::TestDeployment;
use crate::support::{self, files_under, sample_dump, wait_until};
use crate::{exporting_replica_sets, import_fields};

const LIMIT: Duration = Duration::from_secs(120);

/// Samples the jobs list of `cluster` every ~100 ms until `expected` jobs are all final.
/// Returns the highest number of exporting replica sets seen, whether a sample showed five
/// exporting with jobs still queued, and the samples' final states per job (checking on the
/// way that a final state never changes).
async fn sample_until_final(api: &AtlasClient, cluster: &str, expected: usize) -> (usize, bool) {
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
    let d = TestDeployment::builder().create().await;
    let dump = sample_dump(&d.data_dir().join("dump"), "16MiB", 7);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("seven").await;
    let mut snapshots = Vec::new();
    for _ in 0..7 {
        let s = api
            .import_snapshot("c1", &["rs0"], &dump, import_fields(None))
            .await;
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
            .join(&d.group_id)
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
    let d = TestDeployment::builder().create().await;
    let dump = sample_dump(&d.data_dir().join("dump"), "40MiB", 2);
    // One replica set at a time: the first job runs, the other two wait.
    let flags = ["--max-concurrent-replica-sets", "1", "--lease-seconds", "3"];
    let mut node = d.start_node("node-a", &flags);
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("crash").await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let s = api
            .import_snapshot("c1", &["rs0"], &dump, import_fields(None))
            .await;
        let job = api
            .create_export("c1", s["id"].as_str().unwrap(), &bucket)
            .await;
        jobs.push(job["id"].as_str().unwrap().to_string());
    }
    let first = api.job("c1", &jobs[0]).await;
    let prefix = node
        .bucket_root
        .join(&d.group_id)
        .join("crash")
        .join(first["prefix"].as_str().unwrap());
    // Mid-export: the job is running and has written a collection's file.
    wait_until("the first job to write files", LIMIT, || {
        let api = api.clone();
        let prefix = prefix.clone();
        let id = jobs[0].clone();
        async move {
            api.job("c1", &id).await["state"] == "InProgress"
                && files_under(&prefix)
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
    api.use_node(&node.url);
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
        !files_under(&prefix).is_empty(),
        "the partial files of a failed job stay"
    );
    for id in &jobs[1..] {
        let done = api.wait_final("c1", id, LIMIT).await;
        assert_eq!(done["state"], "Successful", "{done}");
        let p = node
            .bucket_root
            .join(&d.group_id)
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
    let d = TestDeployment::builder().create().await;
    let dump = sample_dump(&d.data_dir().join("dump"), "1MiB", 5);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    let g = api.group_id.clone();
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("auto").await;
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
        .import_snapshot("c1", &["rs0"], &dump, import_fields(Some("daily")))
        .await;
    assert_eq!(daily["frequencyType"], "daily", "{daily}");
    assert!(api.jobs("c1").await.is_empty());

    let monthly = api
        .import_snapshot("c1", &["rs0"], &dump, import_fields(Some("monthly")))
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
            .join(&d.group_id)
            .join("auto")
            .join(done["prefix"].as_str().unwrap())
            .join(".complete")
            .is_file()
    );
    // and still only that one: the daily snapshot never got a job
    let jobs = api.jobs("c1").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
}

/// moto (`SNAPEX_TEST_S3_ENDPOINT`) accepts unsigned requests: the test reads the emulator's
/// state with plain HTTP, independently of snapex's S3 client.
pub(crate) struct Moto {
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    http: reqwest::Client,
}

impl Moto {
    /// A fresh bucket of its own on moto, or `None` when moto is not configured.
    pub(crate) async fn new() -> Option<Moto> {
        support::location("s3")?;
        let endpoint = std::env::var(support::ENV_S3_ENDPOINT).unwrap();
        let bucket = support::unique_name("jobs").to_lowercase();
        let http = reqwest::Client::new();
        let resp = http
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "create moto bucket: {resp:?}");
        Some(Moto {
            endpoint,
            bucket,
            http,
        })
    }

    async fn get(&self, query: &str) -> String {
        let resp = self
            .http
            .get(format!("{}/{}?{query}", self.endpoint, self.bucket))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{query}: {resp:?}");
        resp.text().await.unwrap()
    }

    /// Writes one object (moto takes unsigned PUTs).
    pub(crate) async fn put(&self, key: &str, body: Vec<u8>) {
        let resp = self
            .http
            .put(format!("{}/{}/{key}", self.endpoint, self.bucket))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "put {key}: {resp:?}");
    }

    /// Keys of the multipart uploads in progress (ListMultipartUploads).
    pub(crate) async fn open_uploads(&self) -> Vec<String> {
        xml_values(&self.get("uploads").await, "Key")
    }

    /// Keys of the objects under `prefix` (ListObjectsV2; fewer than 1000 here).
    pub(crate) async fn keys(&self, prefix: &str) -> Vec<String> {
        let body = self
            .get(&format!("list-type=2&max-keys=1000&prefix={prefix}/"))
            .await;
        assert!(!body.contains("<IsTruncated>true"), "{body}");
        xml_values(&body, "Key")
    }
}

/// The text of every `<tag>` element (enough for S3's list answers).
fn xml_values(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    body.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

/// Cancel mid-export to an S3 bucket (moto), once a multipart upload of the job is open:
/// `Cancelled` (its latency printed), finished files kept, no `.complete`. That no multipart
/// upload is left open is checked by [`cancel_mid_export_leaves_no_multipart_upload_open`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_export_ends_cancelled_and_writes_no_complete() {
    cancel_mid_export(false).await;
}

/// The same cancellation, also asserting that the job's multipart uploads were aborted (an
/// upload whose creation or completion the cancel interrupted included: `export::upload` holds
/// the upload until it is completed or aborted, and the job sweeps its prefix before it records
/// the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_export_leaves_no_multipart_upload_open() {
    cancel_mid_export(true).await;
}

async fn cancel_mid_export(check_uploads: bool) {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let d = TestDeployment::builder().create().await;
    // Big enough that a collection's file passes one 8 MiB part and goes multipart.
    let dump = sample_dump(&d.data_dir().join("dump"), "120MiB", 3);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    let g = api.group_id.clone();
    api.register_cluster("c1", &["rs0"]).await;
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
    let snap = api
        .import_snapshot("c1", &["rs0"], &dump, import_fields(None))
        .await;
    let job = api
        .create_export(
            "c1",
            snap["id"].as_str().unwrap(),
            bucket["_id"].as_str().unwrap(),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let prefix = job["prefix"].as_str().unwrap().to_string();
    // Mid-export: a multipart upload of this job is open on the emulator.
    wait_until("a multipart upload in progress", LIMIT, || {
        let moto = &moto;
        let prefix = prefix.clone();
        async move {
            moto.open_uploads()
                .await
                .iter()
                .any(|k| k.starts_with(&prefix))
        }
    })
    .await;
    assert_eq!(api.job("c1", &id).await["state"], "InProgress");
    let asked = Instant::now();
    let answer = api.cancel("c1", &id).await;
    assert!(
        ["InProgress", "Cancelled"].contains(&answer["state"].as_str().unwrap()),
        "{answer}"
    );
    let done = api.wait_final("c1", &id, LIMIT).await;
    let took = asked.elapsed();
    // `Cancelled`, not `Successful`: the export stopped before its end. How soon is a figure,
    // not an assertion (a loaded machine must not fail the test): the 2 s target of a cancel
    // taken by the node running the job is reported from here.
    assert_eq!(done["state"], "Cancelled", "{done}");
    eprintln!(
        "cancel latency: {} ms from the request to Cancelled",
        took.as_millis()
    );
    if check_uploads {
        let open = moto.open_uploads().await;
        assert!(open.is_empty(), "multipart uploads left open: {open:?}");
    }
    let keys = moto.keys(&prefix).await;
    assert!(!keys.iter().any(|k| k.ends_with("/.complete")), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.ends_with("metadata.json")),
        "finished files stay: {keys:?}"
    );
}

/// An object store that starts failing mid-export: the prefix directory of a FILESYSTEM bucket
/// is replaced by a regular file once the first collection is written, so every later write
/// under it fails with ENOTDIR. The job ends `Failed` naming the object and the store's error,
/// and it is not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failing_mid_export_fails_the_job_once_with_the_object_and_the_error() {
    let d = TestDeployment::builder().create().await;
    let dump = sample_dump(&d.data_dir().join("dump"), "40MiB", 4);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("failing").await;
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
        .join("failing")
        .join(job["prefix"].as_str().unwrap());
    wait_until("the first collection file", LIMIT, || {
        let prefix = prefix.clone();
        async move {
            files_under(&prefix)
                .iter()
                .any(|p| p.to_string_lossy().ends_with(".json.gz"))
        }
    })
    .await;
    let moved = prefix.with_extension("moved-away");
    std::fs::rename(&prefix, &moved).unwrap();
    std::fs::write(&prefix, b"not a directory").unwrap();
    let failed = api.wait_final("c1", &id, LIMIT).await;
    assert_eq!(failed["state"], "Failed", "{failed}");
    let reason = failed["stateReason"]["message"].as_str().unwrap();
    assert!(reason.contains("Not a directory"), "{failed}");
    // the object: a key under the job's prefix, with the replica set named
    let key_prefix = format!("writing {}/", job["prefix"].as_str().unwrap());
    assert!(reason.contains(&key_prefix), "{failed}");
    assert!(reason.contains("replica set rs0"), "{failed}");
    let v1 = api.job_v1("c1", &id).await;
    assert_eq!(v1["errMsg"].as_str().unwrap(), reason);
    assert!(!moved.join(".complete").exists());
    // No retry: after several polls of the queue the job is still the same failure, and the
    // node started it once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = api.job("c1", &id).await;
    assert_eq!(later["state"], "Failed");
    assert_eq!(later["finishedAt"], failed["finishedAt"]);
    assert_eq!(later["stateReason"], failed["stateReason"]);
    let starts = node
        .log()
        .lines()
        .filter(|l| l.contains("export job started") && l.contains(&id))
        .count();
    assert_eq!(starts, 1, "{}", node.log());
    assert_eq!(api.jobs("c1").await.len(), 1);
}

/// A project's GCP bucket on our GCS XML-API server (`support::gcs`): the access role with the
/// test service-account key and the server as its endpoint, and the export bucket.
pub(crate) async fn gcs_bucket(api: &AtlasClient) -> String {
    let server = support::gcs::server();
    let g = api.group_id.clone();
    let role = api
        .ok(
            "POST",
            &format!("/api/snapex/v1/groups/{g}/accessRoles"),
            "application/json",
            Some(json!({"provider": "GCP", "serviceAccountKey": server.key_json(), "endpoint": server.url})),
        )
        .await;
    let bucket = api
        .ok(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            "application/vnd.atlas.2024-05-30+json",
            Some(json!({"cloudProvider": "GCP", "bucketName": support::gcs::BUCKET, "roleId": role["roleId"]})),
        )
        .await;
    bucket["_id"].as_str().unwrap().to_string()
}

/// An export job to a `gs://` bucket, run by `snapex serve`: `Successful`, its data files sent
/// as multipart uploads of several parts, none left open, and `.complete` written last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gs_export_job_succeeds_with_files_of_several_parts() {
    let d = TestDeployment::builder().create().await;
    // Big enough that a collection's gzipped file passes one 8 MiB part.
    let dump = sample_dump(&d.data_dir().join("dump"), "120MiB", 5);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = gcs_bucket(&api).await;
    let snap = api
        .import_snapshot("c1", &["rs0"], &dump, import_fields(None))
        .await;
    let job = api
        .create_export("c1", snap["id"].as_str().unwrap(), &bucket)
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let prefix = format!("{}/", job["prefix"].as_str().unwrap());
    let done = api.wait_final("c1", &id, LIMIT).await;
    assert_eq!(done["state"], "Successful", "{done}");
    let server = support::gcs::server();
    let completed = server.completed_uploads(&prefix);
    assert!(
        completed.iter().any(|c| c.parts >= 2),
        "a data file of several parts: {completed:?}"
    );
    assert_eq!(server.open_uploads(&prefix), Vec::<String>::new());
    assert!(server.has_object(&format!("{prefix}.complete")));
    assert!(server.has_object(&format!("{prefix}.manifest.json")));
}

/// The GCS server refuses part 2 of every upload of the project's exports (403
/// `AccessDenied`): the job ends `Failed` naming the object and the refusal, its multipart
/// uploads are aborted on the server (none left open), and there is no `.complete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_gcs_refuses_fails_the_job_and_its_uploads_are_aborted() {
    let d = TestDeployment::builder().create().await;
    let dump = sample_dump(&d.data_dir().join("dump"), "120MiB", 6);
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = gcs_bucket(&api).await;
    let server = support::gcs::server();
    // Set before the job exists: the prefix of every export of this project's cluster.
    let cluster_prefix = format!("exported_snapshots/{}/{}/c1/", d.org_id, d.group_id);
    server.refuse_part(&cluster_prefix, 2);
    let snap = api
        .import_snapshot("c1", &["rs0"], &dump, import_fields(None))
        .await;
    let job = api
        .create_export("c1", snap["id"].as_str().unwrap(), &bucket)
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let prefix = format!("{}/", job["prefix"].as_str().unwrap());
    assert!(prefix.starts_with(&cluster_prefix), "{prefix}");
    let failed = api.wait_final("c1", &id, LIMIT).await;
    assert_eq!(failed["state"], "Failed", "{failed}");
    let reason = failed["stateReason"]["message"].as_str().unwrap();
    assert!(reason.contains("AccessDenied"), "{failed}");
    assert!(reason.contains(".json.gz"), "{failed}");
    assert_eq!(
        server.open_uploads(&prefix),
        Vec::<String>::new(),
        "uploads left open"
    );
    assert!(
        !server.aborted_uploads(&prefix).is_empty(),
        "nothing was aborted"
    );
    assert!(!server.has_object(&format!("{prefix}.complete")));
}

/// The `/api/snapex/v1` create extension takes Atlas's body plus `namespaces`: the job ends
/// `Successful` with only the included collections in the bucket, counts only those in
/// `exportStatus`, and shows its filter; a bad pattern is a 400 naming it, and the Atlas
/// endpoint refuses the extension field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_created_with_a_namespace_filter_exports_only_the_included_collections() {
    let d = TestDeployment::builder().create().await;
    let dump = support::mongo_tools().join("mongorestore/testdata/testdirs");
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    let g = api.group_id.clone();
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("filtered").await;
    let snapshot = api
        .import_snapshot("c1", &["rs0"], dump.to_str().unwrap(), import_fields(None))
        .await;
    let snapshot_id = snapshot["id"].as_str().unwrap();
    let path = format!("/api/snapex/v1/groups/{g}/clusters/c1/backup/exports");

    let (status, _, error) = api
        .call(
            "POST",
            &path,
            "application/json",
            Some(json!({"snapshotId": snapshot_id, "exportBucketId": bucket,
                "namespaces": {"include": ["db1.*", "nodot"]}})),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    let detail = error["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("\"nodot\""), "{error}");
    assert!(detail.contains("namespaces.include[1]"), "{error}");
    let (status, _, error) = api
        .call(
            "POST",
            &api.group_path("/clusters/c1/backup/exports"),
            V2023,
            Some(json!({"snapshotId": snapshot_id, "exportBucketId": bucket,
                "namespaces": {"include": ["db1.*"]}})),
        )
        .await;
    assert_eq!(
        status, 400,
        "the Atlas endpoint stays as Atlas has it: {error}"
    );
    assert!(api.jobs("c1").await.is_empty());

    let job = api
        .ok(
            "POST",
            &path,
            "application/json",
            Some(json!({"snapshotId": snapshot_id, "exportBucketId": bucket,
                "customData": [{"key": "team", "value": "data"}],
                "namespaces": {"include": ["db1.*"], "exclude": ["db1.c2"]}})),
        )
        .await;
    assert_eq!(job["state"], "Queued", "{job}");
    assert_eq!(job["namespaces"]["exclude"], json!(["db1.c2"]), "{job}");
    let done = api
        .wait_final("c1", job["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
    assert_eq!(done["exportStatus"]["totalCollections"], 3, "{done}");
    assert_eq!(done["exportStatus"]["exportedCollections"], 3, "{done}");
    assert_eq!(done["namespaces"]["include"], json!(["db1.*"]), "{done}");

    let root = node
        .bucket_root
        .join(&d.group_id)
        .join("filtered")
        .join(done["prefix"].as_str().unwrap());
    assert!(root.join(".complete").is_file());
    let mut collections: Vec<String> = std::fs::read_dir(root.join("db1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    collections.sort();
    assert_eq!(collections, ["c1", "c3", "c4"]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(root.join(".manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["namespaces"]["exclude"],
        json!(["db1.c2"]),
        "{manifest}"
    );
}

//! The API server over a real loopback socket (and, for the sunset test, the router called
//! directly): the flow a user runs, every success body checked against the schema of its
//! media type in the spec extract, and the error paths.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::atlas::{V2023, V2024_05, error_of, rels};
use crate::support::deployment::{TestApp, TestDeployment};
use crate::support::openapi::{self, SendChecked};
use crate::support::spec_schema::{schema, validate};
use crate::support::{self, AuthService, Role, SecretBox};
use reqwest::StatusCode;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The app under test: `TestApp` (support::deployment), a project and its owner's client.

fn fixture_dump() -> String {
    let p = support::mongo_tools()
        .join("mongorestore/testdata/indexmetadata")
        .canonicalize()
        .expect("mongo-tools fixtures are in shared/data");
    p.display().to_string()
}

/// Registers a cluster labelled `team: data`.
async fn register_cluster(app: &TestApp, name: &str, rs: &[&str]) -> Value {
    app.register_cluster_with(
        name,
        rs,
        json!({"labels": [{"key": "team", "value": "data"}]}),
    )
    .await
}

/// Imports the mongo-tools fixture dump as a snapshot of `cluster`, every replica set of `rs`.
async fn import_snapshot(app: &TestApp, cluster: &str, rs: &[&str]) -> Value {
    app.api
        .import_snapshot(
            cluster,
            rs,
            &fixture_dump(),
            json!({"description": "nightly"}),
        )
        .await
}

/// Polls the job until it is final, checking every answer against the spec's schema.
async fn wait_final(app: &TestApp, cluster: &str, job_id: &str) -> Value {
    app.wait_final_checking(cluster, job_id, Duration::from_secs(120), |job| {
        validate(job, "DiskBackupExportJob", "job")
    })
    .await
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_exports_a_snapshot_to_a_filesystem_bucket() {
    whole_flow(TestApp::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_also_runs_on_postgresql() {
    let Some(url) = support::postgres_database().await else {
        return;
    };
    let deployment = TestDeployment::builder().database(Some(url)).create().await;
    whole_flow(TestApp::start_with(deployment, |_| {}).await).await;
}

async fn whole_flow(app: TestApp) {
    let g = app.group_id.clone();
    let cluster = register_cluster(&app, "cluster-1", &["rs0"]).await;
    assert_eq!(cluster["stateName"], "IDLE");

    let c = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/cluster-1"),
            V2023,
            None,
        )
        .await;
    assert_eq!(c["stateName"], "IDLE");
    let group = app
        .ok("GET", &format!("/api/atlas/v2/groups/{g}"), V2023, None)
        .await;
    assert_eq!(group["name"], "Data Platform");
    let by_name = app
        .ok(
            "GET",
            "/api/atlas/v2/groups/byName/Data%20Platform",
            V2023,
            None,
        )
        .await;
    assert_eq!(by_name["id"], g.as_str());

    let snap = import_snapshot(&app, "cluster-1", &["rs0"]).await;
    validate(&snap, "DiskBackupReplicaSet", "import");
    assert_eq!(snap["status"], "completed");
    assert!(snap["storageSizeBytes"].as_u64().unwrap() > 0, "{snap}");
    let snap_id = snap["id"].as_str().unwrap().to_string();

    let list = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/cluster-1/backup/snapshots"),
            V2023,
            None,
        )
        .await;
    validate(&list, "PaginatedCloudBackupReplicaSetView", "snapshots");
    assert_eq!(list["totalCount"], 1);
    let one = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/cluster-1/backup/snapshots/{snap_id}"),
            V2023,
            None,
        )
        .await;
    validate(&one, "DiskBackupReplicaSet", "snapshot");
    let legacy = app
        .ok(
            "GET",
            &format!("/api/atlas/v1.0/groups/{g}/clusters/cluster-1/snapshots/{snap_id}"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(legacy["complete"], true);
    assert_eq!(legacy["parts"][0]["replicaSetName"], "rs0");

    let bucket = app.filesystem_bucket("exports").await;
    validate(&bucket, "DiskBackupSnapshotExportBucketResponse", "bucket");
    assert!(
        app.bucket_root
            .join(&app.group_id)
            .join("exports/exported_snapshots/.permissioncheck")
            .is_file()
    );
    let bucket_id = bucket["_id"].as_str().unwrap().to_string();
    let buckets = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            V2024_05,
            None,
        )
        .await;
    validate(
        &buckets,
        "PaginatedBackupSnapshotExportBucketsView",
        "buckets",
    );

    let job = app
        .ok(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/clusters/cluster-1/backup/exports"),
            V2023,
            Some(json!({"snapshotId": snap_id, "exportBucketId": bucket_id, "customData": [{"key": "exported by", "value": "tests"}]})),
        )
        .await;
    validate(&job, "DiskBackupExportJob", "job");
    assert_eq!(job["state"], "Queued");
    let prefix = job["prefix"].as_str().unwrap().to_string();
    assert!(
        prefix.starts_with(&format!("exported_snapshots/{}/{g}/cluster-1/", app.org_id)),
        "{prefix}"
    );
    let job_id = job["id"].as_str().unwrap().to_string();

    let mut last = Value::Null;
    for _ in 0..600 {
        last = app
            .ok(
                "GET",
                &format!("/api/atlas/v2/groups/{g}/clusters/cluster-1/backup/exports/{job_id}"),
                V2023,
                None,
            )
            .await;
        validate(&last, "DiskBackupExportJob", "job");
        if ["Successful", "Failed", "Cancelled"].contains(&last["state"].as_str().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["state"], "Successful", "{last}");
    assert!(last["finishedAt"].is_string());
    let status = &last["exportStatus"];
    assert!(status["totalCollections"].as_u64().unwrap() > 0, "{last}");
    assert_eq!(
        status["exportedCollections"], status["totalCollections"],
        "{last}"
    );
    assert!(
        app.bucket_root
            .join(&app.group_id)
            .join("exports")
            .join(&prefix)
            .join(".complete")
            .is_file()
    );
    let jobs = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/cluster-1/backup/exports"),
            V2023,
            None,
        )
        .await;
    validate(&jobs, "PaginatedApiAtlasDiskBackupExportJobView", "jobs");
    let v1 = app
        .ok(
            "GET",
            &format!("/api/atlas/v1.0/groups/{g}/clusters/cluster-1/backup/exports/{job_id}"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(v1["state"], "Successful");

    // the bucket can go once no job uses it; 204 still names the served version
    let (status, headers, _) = app
        .call(
            "DELETE",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets/{bucket_id}"),
            V2023,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    app.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_negotiated_and_deprecated_ones_say_so() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    let path = format!("/api/atlas/v2/groups/{g}/backup/exportBuckets");
    // newest version on or before the requested date
    let (status, headers, _) = app
        .call("GET", &path, "application/vnd.atlas.2025-03-01+json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/vnd.atlas.2024-05-30+json;charset=utf-8"
    );
    assert!(headers.get("deprecation").is_none());
    let (status, headers, _) = app
        .call("GET", &path, "application/vnd.atlas.2024-01-01+json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    assert_eq!(
        headers.get("deprecation").unwrap(),
        "Thu, 30 May 2024 00:00:00 GMT"
    );
    assert_eq!(
        headers.get("sunset").unwrap(),
        "Thu, 1 Jul 2027 00:00:00 GMT"
    );
    for accept in [
        "application/json",
        "application/vnd.atlas.2022-01-01+json",
        "application/vnd.atlas.nonsense+json",
    ] {
        let (status, headers, body) = app.call("GET", &path, accept, None).await;
        error_of(
            status,
            &headers,
            &body,
            "INVALID_VERSION_DATE",
            StatusCode::NOT_ACCEPTABLE,
        );
    }
    app.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_are_404_with_their_codes() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "c1", &["rs0"]).await;
    let other = snapex::store::new_id();
    let cases = [
        (format!("/api/atlas/v2/groups/{other}"), "GROUP_NOT_FOUND"),
        (
            format!("/api/atlas/v2/groups/{g}/clusters/nope"),
            "CLUSTER_NOT_FOUND",
        ),
        (
            format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/snapshots/{other}"),
            "SNAPSHOT_NOT_FOUND",
        ),
        (
            format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports/{other}"),
            "EXPORT_JOB_NOT_FOUND",
        ),
        (
            format!("/api/atlas/v2/groups/{g}/backup/exportBuckets/{other}"),
            "EXPORT_BUCKET_NOT_FOUND",
        ),
        (
            "/api/atlas/v2/groups/byName/nobody".to_string(),
            "GROUP_NAME_NOT_FOUND",
        ),
    ];
    for (path, code) in cases {
        let (status, headers, body) = app.call("GET", &path, V2023, None).await;
        error_of(status, &headers, &body, code, StatusCode::NOT_FOUND);
    }
    app.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_name_the_offending_field() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "c1", &["rs0"]).await;
    let cases = [
        (
            format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            V2024_05,
            json!({"cloudProvider": "FILESYSTEM", "bucketName": "b", "color": "red"}),
            "color",
        ),
        (
            format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports"),
            V2023,
            json!({"snapshotId": snapex::store::new_id(), "exportBucketId": snapex::store::new_id(), "customData": [{"key": "k", "value": "v", "extra": 1}]}),
            "customData[0].extra",
        ),
        (
            format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports"),
            V2023,
            json!({"exportBucketId": snapex::store::new_id()}),
            "snapshotId",
        ),
        (
            format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            V2024_05,
            json!({"cloudProvider": "FILESYSTEM", "bucketName": "../escape"}),
            "bucketName",
        ),
        (
            format!("/api/snapex/v1/groups/{g}/clusters"),
            "application/json",
            json!({"name": "-bad", "clusterType": "REPLICASET", "replicaSets": ["rs0"]}),
            "name",
        ),
    ];
    for (path, accept, body, field) in cases {
        let (status, headers, value) = app.call("POST", &path, accept, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {value}");
        assert_eq!(
            headers.get("x-error-code").unwrap().to_str().unwrap(),
            value["errorCode"].as_str().unwrap()
        );
        let fields: Vec<&str> = value["badRequestDetail"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&field),
            "{path}: expected {field} in {value}"
        );
    }
    // nothing escaped the bucket root
    assert!(!app.bucket_root.parent().unwrap().join("escape").exists());
    app.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_with_links_counts_envelope_and_pretty() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    for i in 0..3 {
        app.filesystem_bucket(&format!("b{i}")).await;
    }
    let path = format!("/api/atlas/v2/groups/{g}/backup/exportBuckets");
    let page = app
        .ok(
            "GET",
            &format!("{path}?itemsPerPage=2&pageNum=1"),
            V2024_05,
            None,
        )
        .await;
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert_eq!(page["totalCount"], 3);
    assert_eq!(rels(&page), ["self", "next"]);
    let page2 = app
        .ok(
            "GET",
            &format!("{path}?itemsPerPage=2&pageNum=2&includeCount=false"),
            V2024_05,
            None,
        )
        .await;
    assert_eq!(page2["results"].as_array().unwrap().len(), 1);
    assert!(page2.get("totalCount").is_none());
    assert_eq!(rels(&page2), ["self", "previous"]);
    let env = app
        .ok("GET", &format!("{path}?envelope=true"), V2024_05, None)
        .await;
    assert_eq!(env["status"], 200);
    let resp = app
        .client
        .get(app.url(&format!("{path}?pretty=true")))
        .bearer_auth(&app.token)
        .header("accept", V2024_05)
        .send_checked()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("\n  "));
    for bad in [
        "itemsPerPage=0",
        "itemsPerPage=501",
        "pageNum=0",
        "includeCount=maybe",
    ] {
        let (status, headers, body) = app
            .call("GET", &format!("{path}?{bad}"), V2024_05, None)
            .await;
        error_of(
            status,
            &headers,
            &body,
            "INVALID_QUERY_PARAMETER",
            StatusCode::BAD_REQUEST,
        );
    }
    app.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refusals_follow_the_product_codes() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "c1", &["rs0"]).await;
    let bucket = app.filesystem_bucket("b").await;
    let bucket_id = bucket["_id"].as_str().unwrap();
    let fallback = app
        .ok(
            "POST",
            &format!("/api/snapex/v1/groups/{g}/clusters/c1/snapshots"),
            "application/json",
            Some(json!({"parts": [{"replicaSetName": "rs0", "url": fixture_dump()}], "snapshotType": "fallback"})),
        )
        .await;
    let (status, headers, body) = app
        .call(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports"),
            V2023,
            Some(json!({"snapshotId": fallback["id"], "exportBucketId": bucket_id})),
        )
        .await;
    error_of(
        status,
        &headers,
        &body,
        "CANNOT_EXPORT_FALLBACK_SNAPSHOT",
        StatusCode::BAD_REQUEST,
    );
    // an unreadable part is refused at import, naming the part
    let (status, _, body) = app
        .call(
            "POST",
            &format!("/api/snapex/v1/groups/{g}/clusters/c1/snapshots"),
            "application/json",
            Some(json!({"parts": [{"replicaSetName": "rs0", "url": "/nonexistent/dump"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["badRequestDetail"]["fields"][0]["field"],
        "parts[0].url"
    );
    app.server.shutdown().await.unwrap();
}

/// The router called directly (no socket), with the clock moved past the 2023-01-01 sunset.
#[tokio::test]
async fn a_version_past_its_sunset_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = snapex::store::Store::open_in_data_dir(dir.path())
        .await
        .unwrap();
    let secrets = SecretBox::from_key([7; 32]);
    let auth = AuthService::new(store.clone(), secrets);
    let org = store.create_org("o").await.unwrap();
    let p = store.create_project(&org.id, "p").await.unwrap();
    let sa = auth
        .create_service_account(&org.id, Some(&p.id), &[Role::GroupReadOnly], "t")
        .await
        .unwrap();
    let token = auth
        .issue_token(&sa.client_id, &sa.client_secret)
        .await
        .unwrap();
    let mut config = snapex::service::DeploymentConfig::new(dir.path().join("buckets"));
    config.today_override = chrono::NaiveDate::from_ymd_opt(2027, 7, 1);
    let app = snapex::api::app(snapex::api::AppState::new(store, auth, config));
    let req = |accept: &str| {
        axum::http::Request::get(format!(
            "/api/atlas/v2/groups/{}/backup/exportBuckets",
            p.id
        ))
        .header("authorization", format!("Bearer {}", token.access_token))
        .header("accept", accept)
        .body(axum::body::Body::empty())
        .unwrap()
    };
    let (parts, _) = openapi::oneshot(app.clone(), req(V2023)).await;
    assert_eq!(parts.status, axum::http::StatusCode::GONE);
    assert_eq!(parts.headers.get("x-error-code").unwrap(), "VERSION_GONE");
    let (parts, _) = openapi::oneshot(app, req(V2024_05)).await;
    assert_eq!(parts.status, axum::http::StatusCode::OK);
}

/// The schema checks above must be able to fail: an invented field, a missing required field
/// and a wrong type are all caught.
#[test]
fn the_schema_reader_catches_invented_missing_and_mistyped_fields() {
    let job = schema("DiskBackupExportJob");
    assert!(job.props.contains_key("exportStatus") && job.props.contains_key("stateReason"));
    assert_eq!(job.required, ["exportBucketId"]);
    let good = json!({"exportBucketId": "a", "state": "Queued", "exportStatus": {"exportedCollections": 1, "totalCollections": 2}});
    validate(&good, "DiskBackupExportJob", "ok");
    for bad in [
        json!({"exportBucketId": "a", "invented": 1}),
        json!({"state": "Queued"}),
        json!({"exportBucketId": 5}),
        json!({"exportBucketId": "a", "exportStatus": {"exportedCollections": "x"}}),
    ] {
        let r = std::panic::catch_unwind(|| validate(&bad, "DiskBackupExportJob", "bad"));
        assert!(r.is_err(), "accepted {bad}");
    }
}

/// A job left `InProgress` by a node that died is failed as interrupted when the node starts
/// again under the same id, and the job queued behind it then runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_fails_its_interrupted_job_and_runs_the_queue() {
    use snapex::store::*;
    let dir = tempfile::tempdir().unwrap();
    let (interrupted, queued, prefix) = {
        let store = Store::open_in_data_dir(dir.path()).await.unwrap();
        let org = store.create_org("Acme Corp").await.unwrap();
        let p = store
            .create_project(&org.id, "Data Platform")
            .await
            .unwrap();
        let c = store
            .create_cluster(
                &p.id,
                NewCluster {
                    name: "c1".into(),
                    cluster_type: ClusterType::Replicaset,
                    replica_sets: vec!["rs0".into()],
                    labels: vec![],
                },
            )
            .await
            .unwrap();
        std::fs::create_dir_all(dir.path().join("buckets").join(&p.id).join("b")).unwrap();
        let bucket = store
            .create_export_bucket(
                &p.id,
                NewExportBucket {
                    cloud_provider: snapex::store::CloudProvider::Filesystem,
                    bucket_name: "b".into(),
                    role_id: None,
                    service_url: None,
                    region: None,
                    require_private_networking: false,
                },
            )
            .await
            .unwrap();
        let mut jobs = Vec::new();
        for _ in 0..2 {
            let s = store
                .create_snapshot(
                    &c,
                    NewSnapshot {
                        status: snapex::store::SnapshotStatus::Completed,
                        snapshot_type: snapex::store::SnapshotType::OnDemand,
                        frequency_type: snapex::store::FrequencyType::OnDemand,
                        description: None,
                        created_at: now(),
                        expires_at: None,
                        mongod_version: None,
                        parts: vec![SnapshotPart {
                            replica_set_name: "rs0".into(),
                            url: fixture_dump(),
                            role_id: None,
                            storage_size_bytes: 1,
                            mongod_version: None,
                        }],
                        policy_item_id: None,
                        owns_files: false,
                    },
                )
                .await
                .unwrap();
            // one second apart: jobs of one bucket never share a prefix
            let created_at = now() + chrono::Duration::seconds(jobs.len() as i64);
            let prefix =
                snapex::export::export_prefix(&org.id, &p.id, "c1", s.created_at, created_at);
            jobs.push(
                store
                    .create_export_job(NewExportJob {
                        group_id: p.id.clone(),
                        cluster_id: c.id.clone(),
                        cluster_name: "c1".into(),
                        snapshot_id: s.id.clone(),
                        export_bucket_id: bucket.id.clone(),
                        created_at,
                        custom_data: vec![],
                        prefix,
                        replica_sets: vec!["rs0".into()],
                        namespaces: Default::default(),
                        export_format: None,
                    })
                    .await
                    .unwrap(),
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // node-a "was running" the first job when it died
        let claimed = store
            .admit_next_job("node-a", 5, chrono::Duration::seconds(300))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.job.id, jobs[0].id);
        store.close().await;
        (
            jobs[0].id.clone(),
            jobs[1].id.clone(),
            jobs[0].prefix.clone(),
        )
    };
    let deployment = TestDeployment::builder().data_dir(dir).create().await;
    let app = TestApp::start_with(deployment, |config| {
        config.deployment.node_id = "node-a".into()
    })
    .await;
    let failed = wait_final(&app, "c1", &interrupted).await;
    assert_eq!(failed["state"], "Failed", "{failed}");
    assert!(
        failed["stateReason"]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{failed}"
    );
    assert!(
        !app.bucket_root
            .join(&app.group_id)
            .join("b")
            .join(&prefix)
            .join(".complete")
            .exists()
    );
    let v1 = app
        .ok(
            "GET",
            &format!(
                "/api/atlas/v1.0/groups/{}/clusters/c1/backup/exports/{interrupted}",
                app.group_id
            ),
            "application/json",
            None,
        )
        .await;
    assert!(v1["errMsg"].as_str().unwrap().contains("node-a"), "{v1}");
    let ran = wait_final(&app, "c1", &queued).await;
    assert_eq!(ran["state"], "Successful", "{ran}");
    app.server.shutdown().await.unwrap();
}

/// `curl --digest` exactly as the seed documents use it, against a real API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_digest_reads_and_creates_like_the_seed_documents() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "c1", &["rs0"]).await;
    let key = app
        .server
        .auth
        .create_api_key(&app.org_id, Some(&g), &[Role::GroupOwner], "curl")
        .await
        .unwrap();
    let user = format!("{}:{}", key.public_key, key.private_key);
    let bucket = app.filesystem_bucket("b").await;
    let snap = import_snapshot(&app, "c1", &["rs0"]).await;
    let body = json!({"snapshotId": snap["id"], "exportBucketId": bucket["_id"], "customData": [{"key": "exported by", "value": "myName"}]}).to_string();
    let out = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--user",
            &user,
            "--digest",
            "--header",
            "Accept: application/json",
            "--header",
            "Content-Type: application/json",
            "--request",
            "POST",
        ])
        .arg(app.url(&format!(
            "/api/atlas/v1.0/groups/{g}/clusters/c1/backup/exports/"
        )))
        .args(["--data", &body])
        .output()
        .await
        .expect("curl is installed");
    let job: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(job["state"], "Queued", "{job}");
    assert_eq!(job["customData"][0]["value"], "myName");
    let out = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--user",
            &user,
            "--digest",
            "--header",
            "Accept: application/vnd.atlas.2023-01-01+json",
        ])
        .arg(app.url(&format!(
            "/api/atlas/v2/groups/{g}/clusters/c1/backup/exports?pretty=true"
        )))
        .output()
        .await
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    validate(
        &list,
        "PaginatedApiAtlasDiskBackupExportJobView",
        "curl list",
    );
    assert_eq!(list["totalCount"], 1);
    // a wrong private key is refused
    let out = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
            "--user",
            &format!("{}:wrong", key.public_key),
            "--digest",
            "--header",
            "Accept: application/vnd.atlas.2023-01-01+json",
        ])
        .arg(app.url(&format!("/api/atlas/v2/groups/{g}")))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    app.server.shutdown().await.unwrap();
}

/// Many clients creating and listing at once on the embedded SQLite: every create answers 200,
/// and the list afterwards holds each created bucket exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_lose_and_duplicate_nothing() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let created = app.filesystem_bucket(&format!("bucket-{i}")).await;
            let g = &app.group_id;
            app.ok(
                "GET",
                &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets?itemsPerPage=5"),
                V2024_05,
                None,
            )
            .await;
            created["_id"].as_str().unwrap().to_string()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let g = &app.group_id;
    let mut listed = Vec::new();
    for page in 1..=2 {
        let body = app
            .ok(
                "GET",
                &format!(
                    "/api/atlas/v2/groups/{g}/backup/exportBuckets?itemsPerPage=150&pageNum={page}"
                ),
                V2024_05,
                None,
            )
            .await;
        assert_eq!(body["totalCount"], 200);
        listed.extend(
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["_id"].as_str().unwrap().to_string()),
        );
    }
    ids.sort();
    listed.sort();
    assert_eq!(ids, listed);
}

/// The properties a schema of the served document declares, following `$ref`s and `allOf`.
fn declared_properties(doc: &Value, schema: &Value) -> Vec<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return declared_properties(doc, &doc["components"]["schemas"][name]);
    }
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        names.extend(declared_properties(doc, part));
    }
    names
}

/// Health, readiness, metrics and the OpenAPI document; every documented operation is routed
/// (answers something other than the fallback's RESOURCE_NOT_FOUND or 405), and every success
/// body the document says follows an Atlas schema declares only properties Atlas's schema has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_the_openapi_document_describe_what_is_served() {
    let app = TestApp::start().await;
    let c = &app.client;
    assert_eq!(
        c.get(app.url("/healthz"))
            .send_checked()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        c.get(app.url("/readyz"))
            .send_checked()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let metrics = c
        .get(app.url("/metrics"))
        .send_checked()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("snapex_http_requests_total ")
            && metrics.contains("snapex_exporting_replica_sets_limit 5"),
        "{metrics}"
    );
    let doc: Value = c
        .get(app.url("/api/openapi.json"))
        .send_checked()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        snapex::api::openapi::build(),
        "the served document is the generated one"
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    // Every Atlas schema the document names exists in the spec extract, and our body declares
    // none of its own fields beyond Atlas's for that operation (in any of its versions: one
    // view serves all of them, e.g. a 2023-01-01 list may show an Azure bucket created with
    // 2024-05-30).
    let mut named = 0;
    let mut operation_ids = std::collections::HashSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(operation_ids.insert(id.to_string()), "{id} twice");
            let mut atlas_props = std::collections::HashSet::new();
            let mut ours = Vec::new();
            let mut composed = false;
            for (status, response) in op["responses"].as_object().unwrap() {
                if !status.starts_with('2') {
                    continue;
                }
                for media in response["content"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    let Some(name) = media["x-atlas-schema"].as_str() else {
                        continue;
                    };
                    let atlas = schema(name);
                    named += 1;
                    if atlas.props.is_empty() || !atlas.mapping.is_empty() {
                        // A composed Atlas schema (a variant per provider, built with
                        // allOf): its parts are not read here, so the operation's fields
                        // cannot be compared.
                        composed = true;
                        continue;
                    }
                    atlas_props.extend(atlas.props.keys().cloned());
                    ours.extend(declared_properties(&doc, &media["schema"]));
                }
            }
            // snapex's documented additions to Atlas bodies: the namespace filter a job was
            // created with (README, "Namespace filters").
            const EXTENSIONS: &[&str] = &["namespaces"];
            for prop in ours
                .into_iter()
                .filter(|p| !composed && !EXTENSIONS.contains(&p.as_str()))
            {
                assert!(
                    atlas_props.contains(&prop),
                    "{id} declares {prop}, which none of Atlas's schemas for it has"
                );
            }
        }
    }
    assert!(named >= 15, "{named}");
    let id = snapex::store::new_id();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete: String = path
                .split('/')
                .map(|seg| match seg {
                    "{groupId}" => app.group_id.clone(),
                    "{orgId}" => app.org_id.clone(),
                    "{groupName}" => "nobody".to_string(),
                    "{clusterName}" => "nocluster".to_string(),
                    s if s.starts_with('{') => id.clone(),
                    s => s.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let resp = c
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .bearer_auth(&app.token)
                .header("accept", V2023)
                .header("content-type", "application/json")
                .body("{}")
                .send_checked()
                .await
                .unwrap();
            let code = resp
                .headers()
                .get("x-error-code")
                .map(|v| v.to_str().unwrap().to_string());
            assert_ne!(
                code.as_deref(),
                Some("RESOURCE_NOT_FOUND"),
                "{method} {concrete} is not routed"
            );
            assert_ne!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {concrete}"
            );
        }
    }
}

/// The cancel extension: a finished job is returned unchanged; an unknown one is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_answers_with_the_job() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "c1", &["rs0"]).await;
    let bucket = app.filesystem_bucket("b").await;
    let snap = import_snapshot(&app, "c1", &["rs0"]).await;
    let job = app
        .ok(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports"),
            V2023,
            Some(json!({"snapshotId": snap["id"], "exportBucketId": bucket["_id"]})),
        )
        .await;
    let id = job["id"].as_str().unwrap();
    let done = wait_final(&app, "c1", id).await;
    let after = app
        .ok(
            "POST",
            &format!("/api/snapex/v1/groups/{g}/clusters/c1/backup/exports/{id}/cancel"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(after["state"], done["state"]);
    let (status, headers, body) = app
        .call(
            "POST",
            &format!(
                "/api/snapex/v1/groups/{g}/clusters/c1/backup/exports/{}/cancel",
                snapex::store::new_id()
            ),
            "application/json",
            None,
        )
        .await;
    error_of(
        status,
        &headers,
        &body,
        "EXPORT_JOB_NOT_FOUND",
        StatusCode::NOT_FOUND,
    );
}

/// Auto-export: with a monthly export policy, importing a monthly snapshot creates (and runs)
/// an export job and a daily one does not; the policy's bucket cannot be deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monthly_policy_auto_exports_monthly_snapshots_only() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "c1", &["rs0"]).await;
    let bucket = app.filesystem_bucket("auto").await;
    let bucket_id = bucket["_id"].as_str().unwrap().to_string();
    let path = format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/schedule");
    let (status, headers, schedule) = app
        .call("PATCH", &path, V2023, Some(json!({"autoExportEnabled": true, "export": {"exportBucketId": bucket_id, "frequencyType": "monthly"}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    assert_eq!(
        headers.get("deprecation").unwrap(),
        "Mon, 5 Aug 2024 00:00:00 GMT"
    );
    assert_eq!(schedule["autoExportEnabled"], true);
    let (status, _, bad) = app
        .call(
            "PATCH",
            &path,
            "application/vnd.atlas.2024-08-05+json",
            Some(json!({"export": {"frequencyType": "hourly"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad["badRequestDetail"]["fields"][0]["field"],
        "export.frequencyType"
    );

    let import = |freq: &'static str| {
        let app = &app;
        let g = g.clone();
        async move {
            app.ok(
                "POST",
                &format!("/api/snapex/v1/groups/{g}/clusters/c1/snapshots"),
                "application/json",
                Some(json!({"parts": [{"replicaSetName": "rs0", "url": fixture_dump()}], "frequencyType": freq, "snapshotType": "scheduled"})),
            )
            .await
        }
    };
    import("daily").await;
    let jobs = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports"),
            V2023,
            None,
        )
        .await;
    assert_eq!(jobs["totalCount"], 0, "{jobs}");
    let monthly = import("monthly").await;
    let jobs = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports"),
            V2023,
            None,
        )
        .await;
    assert_eq!(jobs["totalCount"], 1, "{jobs}");
    assert_eq!(jobs["results"][0]["snapshotId"], monthly["id"]);
    let done = wait_final(&app, "c1", jobs["results"][0]["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "Successful", "{done}");
    let (status, headers, body) = app
        .call(
            "DELETE",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets/{bucket_id}"),
            V2023,
            None,
        )
        .await;
    error_of(
        status,
        &headers,
        &body,
        "EXPORT_BUCKET_DELETE_FAILED",
        StatusCode::BAD_REQUEST,
    );
}

/// A sharded cluster: one part per shard, the sharded snapshot paths, `components` per shard,
/// one `.complete` for the whole export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_cluster_exports_every_shard_under_one_prefix() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "sharded", &["shard0", "shard1"]).await;
    let snap = import_snapshot(&app, "sharded", &["shard0", "shard1"]).await;
    validate(&snap, "DiskBackupShardedClusterSnapshot", "import");
    let id = snap["id"].as_str().unwrap().to_string();
    let list = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/sharded/backup/snapshots/shardedClusters"),
            V2023,
            None,
        )
        .await;
    validate(
        &list,
        "PaginatedCloudBackupShardedClusterSnapshotView",
        "sharded list",
    );
    assert_eq!(list["totalCount"], 1);
    let one = app
        .ok(
            "GET",
            &format!(
                "/api/atlas/v2/groups/{g}/clusters/sharded/backup/snapshots/shardedCluster/{id}"
            ),
            V2023,
            None,
        )
        .await;
    validate(&one, "DiskBackupShardedClusterSnapshot", "sharded get");
    assert_eq!(one["members"].as_array().unwrap().len(), 2);
    // Every member has a snapshot id of its own, listed in `snapshotIds`, and the replica-set
    // path serves it as that shard's snapshot (as Atlas serves a shard's snapshot).
    let member_ids: Vec<String> = one["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(one["snapshotIds"], json!(member_ids));
    assert_ne!(member_ids[0], member_ids[1]);
    assert!(!member_ids.contains(&id), "{member_ids:?}");
    for (member_id, shard) in member_ids.iter().zip(["shard0", "shard1"]) {
        assert!(
            member_id.len() == 24 && member_id.chars().all(|c| c.is_ascii_hexdigit()),
            "{member_id}"
        );
        let member = app
            .ok(
                "GET",
                &format!("/api/atlas/v2/groups/{g}/clusters/sharded/backup/snapshots/{member_id}"),
                V2023,
                None,
            )
            .await;
        validate(&member, "DiskBackupReplicaSet", "sharded member get");
        assert_eq!(member["id"], json!(member_id));
        assert_eq!(member["replicaSetName"], shard);
        assert_eq!(member["type"], "replicaSet");
        assert_eq!(member["createdAt"], one["createdAt"]);
    }
    // the replica-set path does not show the sharded snapshot itself
    let (status, headers, body) = app
        .call(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/clusters/sharded/backup/snapshots/{id}"),
            V2023,
            None,
        )
        .await;
    error_of(
        status,
        &headers,
        &body,
        "SNAPSHOT_NOT_FOUND",
        StatusCode::NOT_FOUND,
    );

    let bucket = app.filesystem_bucket("sharded").await;
    let job = app
        .ok(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/clusters/sharded/backup/exports"),
            V2023,
            Some(json!({"snapshotId": id, "exportBucketId": bucket["_id"]})),
        )
        .await;
    let shards: Vec<&str> = job["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["replicaSetName"].as_str().unwrap())
        .collect();
    assert_eq!(shards, ["shard0", "shard1"]);
    let done = wait_final(&app, "sharded", job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "Successful", "{done}");
    let prefix = app
        .bucket_root
        .join(&app.group_id)
        .join("sharded")
        .join(done["prefix"].as_str().unwrap());
    assert!(prefix.join(".complete").is_file());
    let names: Vec<String> = support::files_under(&prefix)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("shard0."))
            && names.iter().any(|n| n.starts_with("shard1.")),
        "{names:?}"
    );
    let (status, _, _) = app
        .call(
            "DELETE",
            &format!(
                "/api/atlas/v2/groups/{g}/clusters/sharded/backup/snapshots/shardedCluster/{id}"
            ),
            V2023,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // the user's dump is untouched by the delete
    assert!(PathBuf::from(fixture_dump()).is_dir());
}

/// A read-only key cannot create, and a key of one project sees nothing of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_projects_are_enforced() {
    let app = TestApp::start().await;
    let other = app
        .server
        .store
        .create_project(&app.org_id, "Other")
        .await
        .unwrap();
    let sa = app
        .server
        .auth
        .create_service_account(&app.org_id, Some(&other.id), &[Role::GroupReadOnly], "ro")
        .await
        .unwrap();
    let token = app
        .server
        .auth
        .issue_token(&sa.client_id, &sa.client_secret)
        .await
        .unwrap()
        .access_token;
    let send = |method: &str, path: String, body: Option<Value>| {
        let mut req = app
            .client
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&token)
            .header("accept", V2024_05);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        req.send_checked()
    };
    let resp = send(
        "GET",
        format!("/api/atlas/v2/groups/{}/backup/exportBuckets", other.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = send(
        "POST",
        format!("/api/atlas/v2/groups/{}/backup/exportBuckets", other.id),
        Some(json!({"cloudProvider": "FILESYSTEM", "bucketName": "x"})),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = send(
        "GET",
        format!("/api/atlas/v2/groups/{}/backup/exportBuckets", app.group_id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.headers().get("x-error-code").unwrap(),
        "GROUP_NOT_FOUND"
    );
    let resp = send(
        "GET",
        "/api/atlas/v2/groups/byName/Data%20Platform".to_string(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .client
        .get(app.url(&format!("/api/atlas/v2/groups/{}", app.group_id)))
        .header("accept", V2023)
        .send_checked()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// Access-role secrets are sealed at rest and never returned; a bucket whose permission check
/// cannot be written is refused with EXPORT_BUCKET_PERMISSION_CHECK_FAILED and not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_role_secrets_stay_sealed_and_unwritable_buckets_are_refused() {
    use sqlx::Row;
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    let secret = "wJalrXUtnFEMI-very-secret-K7MDENG";
    let role = app
        .ok(
            "POST",
            &format!("/api/snapex/v1/groups/{g}/accessRoles"),
            "application/json",
            Some(json!({"provider": "AWS", "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": secret, "endpoint": "http://127.0.0.1:1", "region": "us-east-1"})),
        )
        .await;
    assert_eq!(role["provider"], "AWS");
    assert!(!role.to_string().contains(secret));
    let rows = sqlx::query("SELECT settings, sealed_secret FROM access_roles")
        .fetch_all(app.server.store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let settings: String = rows[0].try_get("settings").unwrap();
    let sealed: String = rows[0].try_get("sealed_secret").unwrap();
    assert!(!settings.contains(secret) && !sealed.contains(secret));

    let (status, headers, body) = app
        .call(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            V2023,
            Some(json!({"cloudProvider": "AWS", "bucketName": "unreachable", "iamRoleId": role["roleId"]})),
        )
        .await;
    error_of(
        status,
        &headers,
        &body,
        "EXPORT_BUCKET_PERMISSION_CHECK_FAILED",
        StatusCode::BAD_REQUEST,
    );
    let list = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            V2024_05,
            None,
        )
        .await;
    assert_eq!(list["totalCount"], 0);
    // a role of the wrong provider, and an unknown role
    let (status, _, body) = app
        .call("POST", &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"), V2024_05, Some(json!({"cloudProvider": "GCP", "bucketName": "gcs-bucket", "roleId": role["roleId"]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = app
        .call("POST", &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"), V2023, Some(json!({"cloudProvider": "AWS", "bucketName": "x-bucket", "iamRoleId": snapex::store::new_id()})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapex_endpoint_exports_parquet_and_atlas_endpoints_keep_json() {
    let app = TestApp::start().await;
    let g = app.group_id.clone();
    register_cluster(&app, "c1", &["rs0"]).await;
    let snap = import_snapshot(&app, "c1", &["rs0"]).await;
    let snap_id = snap["id"].as_str().unwrap().to_string();
    let bucket = app.filesystem_bucket("lake").await;
    let bucket_id = bucket["_id"].as_str().unwrap().to_string();
    let path = format!("/api/snapex/v1/groups/{g}/clusters/c1/backup/exports");

    // Refusals name the field; the Atlas endpoint knows no format field at all.
    for (body, field) in [
        (
            json!({"snapshotId": snap_id, "exportBucketId": bucket_id, "format": "avro"}),
            "format",
        ),
        (
            json!({"snapshotId": snap_id, "exportBucketId": bucket_id, "format": "parquet", "parquet": {"compression": "lz4"}}),
            "parquet.compression",
        ),
        (
            json!({"snapshotId": snap_id, "exportBucketId": bucket_id, "parquet": {"rowGroupRows": 10}}),
            "parquet.rowGroupRows",
        ),
    ] {
        let (status, _, value) = app
            .call("POST", &path, "application/json", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
        assert!(value.to_string().contains(field), "{field}: {value}");
    }
    let (status, _, value) = app
        .call(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/clusters/c1/backup/exports"),
            V2023,
            Some(json!({"snapshotId": snap_id, "exportBucketId": bucket_id, "format": "parquet"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");

    let job = app
        .ok(
            "POST",
            &path,
            "application/json",
            Some(
                json!({"snapshotId": snap_id, "exportBucketId": bucket_id, "format": "parquet",
                "parquet": {"rowGroupRows": 1000, "compression": "snappy"}}),
            ),
        )
        .await;
    assert_eq!(job["format"], "parquet", "{job}");
    assert_eq!(job["parquet"]["compression"], "snappy", "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    let done = wait_final(&app, "c1", &job_id).await;
    assert_eq!(done["state"], "Successful", "{done}");
    let root = app
        .bucket_root
        .join(&app.group_id)
        .join("lake")
        .join(job["prefix"].as_str().unwrap());
    let mut parquet = 0;
    let mut json_gz = 0;
    let mut schemas = 0;
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") {
                parquet += 1;
            } else if name.ends_with(".json.gz") {
                json_gz += 1;
            } else if name == ".schema.json" {
                schemas += 1;
            }
        }
    }
    assert!(
        parquet > 0 && schemas > 0,
        "{parquet} parquet, {schemas} schemas"
    );
    assert_eq!(json_gz, 0, "a Parquet job writes no JSON data files");
    assert!(root.join(".complete").is_file());
    app.server.shutdown().await.unwrap();
}

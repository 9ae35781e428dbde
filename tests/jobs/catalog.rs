//! The backup catalog (issue 13) on real `snapex serve` processes: backups written into a
//! watched location (a local directory, an S3 bucket on moto) become scheduled snapshots with no
//! API call, and the export policy exports them; three nodes register a backup once; a
//! half-written backup waits; frequencies follow the rule over a month; a deleted backup is
//! marked gone and its export fails saying so. Every wait is on a condition.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Value, json};

use crate::lifecycle::Moto;
use crate::support::atlas::{AtlasClient, V2023, V2024_08};
use crate::support::deployment::{Node, TestDeployment};
use crate::support::openapi;
use crate::support::{self, wait_until};

const LIMIT: Duration = Duration::from_secs(120);

fn fixture(rel: &str) -> PathBuf {
    support::mongo_tools()
        .join("mongorestore/testdata")
        .join(rel)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A local location directory inside the deployment (which the test nodes are granted).
fn local_location(d: &TestDeployment) -> PathBuf {
    let dir = d.data_dir().join("backups");
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

fn watch_flags(d: &TestDeployment, url: &str, role: Option<&str>) -> Vec<String> {
    let mut location = format!("name=nightly,project={},cluster=c1,url={url}", d.group_id);
    if let Some(role) = role {
        location.push_str(&format!(",role={role}"));
    }
    vec![
        "--catalog-interval-seconds".into(),
        "1".into(),
        "--backup-location".into(),
        location,
    ]
}

fn start(d: &TestDeployment, node_id: &str, flags: &[String]) -> Node {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    d.start_node_on(node_id, &d.shared_bucket_root(), &flags, &[])
}

async fn snapshots(api: &AtlasClient) -> Vec<Value> {
    let page = api
        .ok(
            "GET",
            &api.group_path("/clusters/c1/backup/snapshots?itemsPerPage=500"),
            V2023,
            None,
        )
        .await;
    page["results"].as_array().unwrap().clone()
}

/// Listings this node's watcher completed (`/metrics`).
async fn listings(node: &Node) -> u64 {
    let text = openapi::get(format!("{}/metrics", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("snapex_catalog_listings_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `node` has completed `more` listings after now.
async fn wait_listings(node: &Node, more: u64) {
    let from = listings(node).await;
    wait_until("the watcher's next listings", LIMIT, || async {
        listings(node).await >= from + more
    })
    .await;
}

async fn monthly_auto_export(api: &AtlasClient, bucket: &str) {
    api.ok(
        "PATCH",
        &api.group_path("/clusters/c1/backup/schedule"),
        V2024_08,
        Some(json!({"autoExportEnabled": true, "export": {"exportBucketId": bucket, "frequencyType": "monthly"}})),
    )
    .await;
}

async fn wait_snapshots(api: &AtlasClient, n: usize) -> Vec<Value> {
    wait_until(&format!("{n} snapshots"), LIMIT, || async {
        snapshots(api).await.len() >= n
    })
    .await;
    snapshots(api).await
}

async fn locations(api: &AtlasClient) -> Value {
    api.ok(
        "GET",
        &format!("/api/snapex/v1/groups/{}/backupLocations", api.group_id),
        "application/json",
        None,
    )
    .await
}

/// A mongodump directory written into a watched local directory while the server runs becomes
/// a scheduled snapshot taken at the time its name says, the monthly policy exports it to
/// `Successful` with no API call; deleted, it is marked gone and an export of it fails saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_written_to_a_local_location_is_registered_exported_and_then_gone() {
    let d = TestDeployment::builder().create().await;
    let dir = local_location(&d);
    let node = start(&d, "node-a", &watch_flags(&d, dir.to_str().unwrap(), None));
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("lake").await;
    monthly_auto_export(&api, &bucket).await;
    let listed = locations(&api).await;
    assert_eq!(listed["results"][0]["name"], "nightly", "{listed}");
    assert_eq!(listed["results"][0]["clusterName"], "c1", "{listed}");
    wait_listings(&node, 1).await;
    assert!(snapshots(&api).await.is_empty());

    copy_dir(&fixture("oplogdump"), &dir.join("2026-11-01T0300Z"));
    let found = wait_snapshots(&api, 1).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let snapshot = &found[0];
    assert_eq!(snapshot["snapshotType"], "scheduled", "{snapshot}");
    assert_eq!(snapshot["frequencyType"], "monthly", "{snapshot}");
    assert_eq!(snapshot["createdAt"], "2026-11-01T03:00:00Z", "{snapshot}");
    assert_eq!(snapshot["status"], "completed", "{snapshot}");

    wait_until("the auto-export job", LIMIT, || async {
        !api.jobs("c1").await.is_empty()
    })
    .await;
    let jobs = api.jobs("c1").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let done = api
        .wait_final("c1", jobs[0]["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
    let prefix = d
        .shared_bucket_root()
        .join(&d.group_id)
        .join("lake")
        .join(done["prefix"].as_str().unwrap());
    assert!(prefix.join(".complete").is_file());
    assert!(prefix.join("db1/c1/rs0.0.json.gz").is_file());

    // Deleted from the location: gone, and a new export fails saying so.
    std::fs::remove_dir_all(dir.join("2026-11-01T0300Z")).unwrap();
    wait_until("the backup marked gone", LIMIT, || async {
        locations(&api).await["results"][0]["backups"][0]
            .get("goneAt")
            .is_some()
    })
    .await;
    let job = api
        .create_export("c1", snapshot["id"].as_str().unwrap(), &bucket)
        .await;
    let failed = api
        .wait_final("c1", job["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(failed["state"], "Failed", "{failed}");
    let reason = failed["stateReason"]["message"].as_str().unwrap();
    assert!(
        reason.contains("was deleted from backup location nightly"),
        "{reason}"
    );
    // Retention never deletes backup files; nor does marking one gone touch the others.
    assert!(dir.is_dir());
}

/// On S3 (moto), read with the project's access role: an archive uploaded while the server runs
/// becomes a snapshot and is exported with no API call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_uploaded_to_an_s3_location_is_registered_and_exported() {
    let Some(moto) = Moto::new().await else {
        assert!(!support::services_required(), "moto is required");
        return;
    };
    let d = TestDeployment::builder().create().await;
    // The role must exist before the watching node starts: a first node creates it.
    let role = {
        let setup = start(&d, "setup", &[]);
        let api = d.client(&setup.url).await;
        api.register_cluster("c1", &["rs0"]).await;
        let bucket = api.filesystem_bucket_id("lake").await;
        monthly_auto_export(&api, &bucket).await;
        let role = api
            .ok(
                "POST",
                &format!("/api/snapex/v1/groups/{}/accessRoles", api.group_id),
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
        role["roleId"].as_str().unwrap().to_string()
    };
    let url = format!("s3://{}/nightly", moto.bucket);
    let node = start(&d, "node-a", &watch_flags(&d, &url, Some(&role)));
    let api = d.client(&node.url).await;
    wait_listings(&node, 1).await;
    assert!(snapshots(&api).await.is_empty());

    let archive = std::fs::read(fixture("dump-w-oplog.archive")).unwrap();
    moto.put("nightly/2026-11-02T0300Z.archive", archive).await;
    let found = wait_snapshots(&api, 1).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0]["createdAt"], "2026-11-02T03:00:00Z",
        "{}",
        found[0]
    );
    assert_eq!(found[0]["frequencyType"], "monthly", "{}", found[0]);
    wait_until("the auto-export job", LIMIT, || async {
        !api.jobs("c1").await.is_empty()
    })
    .await;
    let job = api.jobs("c1").await.remove(0);
    let done = api
        .wait_final("c1", job["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
}

/// Three nodes on one PostgreSQL watch one location: the backup becomes one snapshot and one
/// export job, however many listings each node makes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_watching_one_location_register_a_backup_once() {
    let Some(database) = support::postgres_database().await else {
        assert!(!support::services_required(), "PostgreSQL is required");
        return;
    };
    let d = TestDeployment::builder()
        .database(Some(database))
        .create()
        .await;
    let dir = local_location(&d);
    let flags = watch_flags(&d, dir.to_str().unwrap(), None);
    let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|id| start(&d, id, &flags))
        .collect();
    let api = d.client(&nodes[0].url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let bucket = api.filesystem_bucket_id("lake").await;
    monthly_auto_export(&api, &bucket).await;
    for node in &nodes {
        wait_listings(node, 1).await;
    }
    copy_dir(&fixture("oplogdump"), &dir.join("2026-11-01T0300Z"));
    wait_snapshots(&api, 1).await;
    // Every node lists the complete backup twice more: still one snapshot, one job.
    for node in &nodes {
        wait_listings(node, 2).await;
    }
    let found = snapshots(&api).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let jobs = api.jobs("c1").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let registered: usize = nodes
        .iter()
        .map(|n| n.log().matches("backup registered as a snapshot").count())
        .sum();
    assert_eq!(registered, 1, "exactly one node registered it");
    let done = api
        .wait_final("c1", jobs[0]["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
}

/// A mongodump directory whose collection has no metadata file yet is not registered, however
/// many listings pass; once the file is there it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_backup_is_registered_only_once_complete() {
    let d = TestDeployment::builder().create().await;
    let dir = local_location(&d);
    let node = start(&d, "node-a", &watch_flags(&d, dir.to_str().unwrap(), None));
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    let backup = dir.join("2026-11-03T0300Z/db1");
    std::fs::create_dir_all(&backup).unwrap();
    std::fs::copy(fixture("oplogdump/db1/c1.bson"), backup.join("c1.bson")).unwrap();
    wait_listings(&node, 3).await;
    assert!(snapshots(&api).await.is_empty());
    assert_eq!(
        locations(&api).await["results"][0]["backups"],
        json!([]),
        "nothing registered"
    );
    std::fs::copy(
        fixture("oplogdump/db1/c1.metadata.json"),
        backup.join("c1.metadata.json"),
    )
    .unwrap();
    let found = wait_snapshots(&api, 1).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["createdAt"], "2026-11-03T03:00:00Z");
}

fn parse(t: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// A month of nightly backups (November 2026, the 1st a Sunday) under a policy with daily,
/// weekly and monthly items: the 1st is monthly, each Monday weekly, every other night daily,
/// each expiring as its item says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frequency_types_follow_the_rule_across_a_month_of_backups() {
    let d = TestDeployment::builder().create().await;
    let dir = local_location(&d);
    for day in 1..=30 {
        copy_dir(
            &fixture("oplogdump"),
            &dir.join(format!("2026-11-{day:02}T0300Z")),
        );
    }
    // The cluster and its policy exist before the watcher's first listing.
    {
        let setup = start(&d, "setup", &[]);
        let api = d.client(&setup.url).await;
        api.register_cluster("c1", &["rs0"]).await;
        let schedule = api
            .ok(
                "GET",
                &api.group_path("/clusters/c1/backup/schedule"),
                V2024_08,
                None,
            )
            .await;
        let item = |f: &str, unit: &str, value: i64| json!({"frequencyInterval": 1, "frequencyType": f, "retentionUnit": unit, "retentionValue": value});
        let mut weekly = item("weekly", "weeks", 4);
        weekly["frequencyInterval"] = 1.into();
        let mut monthly = item("monthly", "months", 12);
        monthly["frequencyInterval"] = 1.into();
        api.ok(
            "PATCH",
            &api.group_path("/clusters/c1/backup/schedule"),
            V2024_08,
            Some(
                json!({"policies": [{"id": schedule["policies"][0]["id"], "policyItems": [
                    item("daily", "days", 7), weekly, monthly,
                ]}]}),
            ),
        )
        .await;
    }
    let node = start(&d, "node-a", &watch_flags(&d, dir.to_str().unwrap(), None));
    let api = d.client(&node.url).await;
    let found = wait_snapshots(&api, 30).await;
    assert_eq!(found.len(), 30);
    for s in &found {
        let at = parse(&s["createdAt"]);
        let expires = parse(&s["expiresAt"]);
        let (frequency, expected_expiry) = if at.day() == 1 {
            (
                "monthly",
                at.checked_add_months(chrono::Months::new(12)).unwrap(),
            )
        } else if at.weekday() == chrono::Weekday::Mon {
            ("weekly", at + chrono::Duration::weeks(4))
        } else {
            ("daily", at + chrono::Duration::days(7))
        };
        assert_eq!(s["frequencyType"], frequency, "{s}");
        assert_eq!(expires, expected_expiry, "{s}");
    }
}

/// A PBM backup whose metadata says `running` is not registered; once PBM writes `done` it is,
/// at the backup's consistent point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbm_backup_is_registered_once_its_status_is_done() {
    let d = TestDeployment::builder().create().await;
    let dir = local_location(&d);
    let pbm = support::shared_data().join("pbm/zstd");
    let name = "2026-02-23T14:46:22Z";
    copy_dir(&pbm.join(name), &dir.join(name));
    let meta = std::fs::read(pbm.join(format!("{name}.pbm.json"))).unwrap();
    let mut running: Value = serde_json::from_slice(&meta).unwrap();
    running["status"] = "running".into();
    for rs in running["replsets"].as_array_mut().unwrap() {
        rs["status"] = "running".into();
    }
    let meta_path = dir.join(format!("{name}.pbm.json"));
    std::fs::write(&meta_path, running.to_string()).unwrap();

    let node = start(&d, "node-a", &watch_flags(&d, dir.to_str().unwrap(), None));
    let api = d.client(&node.url).await;
    api.register_cluster("c1", &["rs0"]).await;
    wait_listings(&node, 3).await;
    assert!(snapshots(&api).await.is_empty());

    std::fs::write(&meta_path, &meta).unwrap();
    let found = wait_snapshots(&api, 1).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0]["createdAt"], "2026-02-23T14:46:27Z",
        "{}",
        found[0]
    );
    assert_eq!(found[0]["mongodVersion"], "8.0.0", "{}", found[0]);
}

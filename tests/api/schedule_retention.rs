//! Backup schedule and snapshot retention over a real loopback server (issue 4, items 6 and 7):
//! schedule GET/PATCH/DELETE in both media types checked against the spec extract's schemas,
//! every validation code with its field path, org and project names in the export prefix, and
//! the retention sweep (expired records deleted, files kept, `doNotDelete` and active exports
//! honoured), on SQLite and, when available, PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::atlas::{AtlasClient, V2023, V2024_08, error_of};
use crate::support::deployment::{TestApp, TestDeployment};
use crate::support::spec_schema::validate;
use crate::support::{self, files_under};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long a test waits for an export job to end.
const LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// The app under test: `TestApp` (support::deployment) as `Setup` configures it.

/// Options of a test server.
struct Setup {
    org: &'static str,
    project: &'static str,
    database: Option<String>,
    /// 0 keeps every export job `Queued` (nothing is ever admitted).
    max_concurrent_replica_sets: u64,
    retention_interval: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            org: "Acme Corp",
            project: "Data Platform",
            database: None,
            max_concurrent_replica_sets: 5,
            // Long enough that the background sweep never runs during a test that sweeps itself.
            retention_interval: Duration::from_secs(3600),
        }
    }
}

async fn start(setup: Setup) -> TestApp {
    let deployment = TestDeployment::builder()
        .org(setup.org)
        .project(setup.project)
        .database(setup.database)
        .create()
        .await;
    TestApp::start_with(deployment, |config| {
        config.deployment.max_concurrent_replica_sets = setup.max_concurrent_replica_sets;
        config.deployment.retention_interval = setup.retention_interval;
    })
    .await
}

/// A copy of the mongo-tools dump fixture in `dir`, so a test can see that its files survive.
fn copy_dump(dir: &Path) -> PathBuf {
    let src = support::mongo_tools().join("mongorestore/testdata/indexmetadata");
    let dst = dir.join("dump");
    copy_tree(&src, &dst);
    dst.canonicalize().unwrap()
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The schedule and snapshot requests of these tests.
impl AtlasClient {
    fn schedule_path(&self, cluster: &str) -> String {
        self.group_path(&format!("/clusters/{cluster}/backup/schedule"))
    }

    fn snapshot_path(&self, cluster: &str, id: &str) -> String {
        self.group_path(&format!("/clusters/{cluster}/backup/snapshots/{id}"))
    }

    /// Imports the dump at `dump` as a snapshot of `cluster` (replica set `rs0`), with extra
    /// body fields.
    async fn import(&self, cluster: &str, dump: &Path, extra: Value) -> Value {
        self.import_snapshot(cluster, &["rs0"], &dump.display().to_string(), extra)
            .await
    }

    /// Whether the snapshot record is still there (200) or gone (404 SNAPSHOT_NOT_FOUND).
    async fn snapshot_exists(&self, cluster: &str, id: &str) -> bool {
        let (status, headers, body) = self
            .call("GET", &self.snapshot_path(cluster, id), V2023, None)
            .await;
        if status == StatusCode::OK {
            return true;
        }
        error_of(
            status,
            &headers,
            &body,
            "SNAPSHOT_NOT_FOUND",
            StatusCode::NOT_FOUND,
        );
        false
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        .parse()
        .unwrap()
}

/// Enumerations the schema reader does not check, from the spec's `DiskBackupApiPolicyItem`.
fn check_policy_item_enums(schedule: &Value) {
    for item in schedule["policies"][0]["policyItems"].as_array().unwrap() {
        assert!(
            ["daily", "hourly", "weekly", "monthly", "yearly", "ondemand"]
                .contains(&item["frequencyType"].as_str().unwrap()),
            "{item}"
        );
        assert!(
            ["days", "weeks", "months", "years"].contains(&item["retentionUnit"].as_str().unwrap()),
            "{item}"
        );
        let interval = item["frequencyInterval"].as_i64().unwrap();
        assert!((1..=28).contains(&interval) || interval == 40, "{item}");
        assert_eq!(item["id"].as_str().unwrap().len(), 24, "{item}");
    }
}

// ---------------------------------------------------------------------------------------------
// Backup schedule.

fn item(frequency: &str, interval: i64, unit: &str, value: i64) -> Value {
    json!({"frequencyInterval": interval, "frequencyType": frequency, "retentionUnit": unit, "retentionValue": value})
}

/// GET, PATCH and DELETE in 2023-01-01 (deprecated, with its headers) and 2024-08-05, every
/// answer checked against the schema of its media type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_reads_patches_and_deletes_in_both_versions() {
    let app = start(Setup::default()).await;
    app.register_cluster("c1", &["rs0"]).await;
    let path = app.schedule_path("c1");

    let (status, headers, old) = app.call("GET", &path, V2023, None).await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/vnd.atlas.2023-01-01+json;charset=utf-8"
    );
    assert_eq!(
        headers.get("deprecation").unwrap(),
        "Mon, 5 Aug 2024 00:00:00 GMT"
    );
    assert_eq!(
        headers.get("sunset").unwrap(),
        "Thu, 1 Jul 2027 00:00:00 GMT"
    );
    validate(&old, "DiskBackupSnapshotSchedule", "get2023");
    let (status, headers, new) = app.call("GET", &path, V2024_08, None).await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert!(headers.get("deprecation").is_none() && headers.get("sunset").is_none());
    validate(&new, "DiskBackupSnapshotSchedule20240805", "get2024");
    assert_eq!(old, new);
    // the default: one policy without items, nothing exported, ids in the prefix
    assert_eq!(old["clusterName"], "c1");
    assert_eq!(old["autoExportEnabled"], false);
    assert_eq!(old["useOrgAndGroupNamesInExportPrefix"], false);
    assert_eq!(old["copyPolicyItemsEnabled"], false);
    assert_eq!(old["policies"][0]["policyItems"], json!([]));
    assert!(old.get("export").is_none() && old.get("nextSnapshot").is_none());
    assert_eq!(old["links"][0]["rel"], "self");
    assert!(old["links"][0]["href"].as_str().unwrap().ends_with(&path));
    // a later date gets the newest version; no vendor type at all is 406
    let (status, headers, later) = app
        .call("GET", &path, "application/vnd.atlas.2025-01-01+json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/vnd.atlas.2024-08-05+json;charset=utf-8"
    );
    assert_eq!(later, new);
    let (status, headers, body) = app.call("GET", &path, "application/json", None).await;
    error_of(
        status,
        &headers,
        &body,
        "INVALID_VERSION_DATE",
        StatusCode::NOT_ACCEPTABLE,
    );

    // the recorded policy items, sent out of order
    let policy_id = old["policies"][0]["id"].clone();
    let body = json!({
        "policies": [{"id": policy_id, "policyItems": [
            item("yearly", 12, "years", 1),
            item("hourly", 6, "days", 7),
            item("monthly", 40, "months", 12),
            item("daily", 1, "days", 7),
            item("weekly", 6, "weeks", 4),
        ]}],
        "referenceHourOfDay": 3,
        "referenceMinuteOfHour": 16,
        "restoreWindowDays": 5,
        "useOrgAndGroupNamesInExportPrefix": true,
        "autoCopySettingsEnabled": false,
        "copyPolicyItemsEnabled": false,
        "copySettings": [],
    });
    let patched = app.ok("PATCH", &path, V2024_08, Some(body)).await;
    validate(&patched, "DiskBackupSnapshotSchedule20240805", "patch2024");
    check_policy_item_enums(&patched);
    let items = patched["policies"][0]["policyItems"].as_array().unwrap();
    let order: Vec<&str> = items
        .iter()
        .map(|i| i["frequencyType"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["hourly", "daily", "weekly", "monthly", "yearly"]);
    let mut ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert_eq!(patched["policies"][0]["id"], policy_id);
    assert_eq!(patched["referenceHourOfDay"], 3);
    assert_eq!(patched["referenceMinuteOfHour"], 16);
    assert_eq!(patched["restoreWindowDays"], 5);
    assert_eq!(patched["useOrgAndGroupNamesInExportPrefix"], true);
    let read = app.ok("GET", &path, V2023, None).await;
    validate(&read, "DiskBackupSnapshotSchedule", "get2023");
    assert_eq!(read, patched);
    // a document read with GET and sent back as a PATCH changes nothing (item ids are kept)
    let again = app.ok("PATCH", &path, V2023, Some(read.clone())).await;
    assert_eq!(again, read);
    // autoCopySettingsEnabled exists in 2024-08-05 only
    let (status, headers, body) = app
        .call(
            "PATCH",
            &path,
            V2023,
            Some(json!({"autoCopySettingsEnabled": false})),
        )
        .await;
    error_of(
        status,
        &headers,
        &body,
        "INVALID_ATTRIBUTE",
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        body["badRequestDetail"]["fields"][0]["field"],
        "autoCopySettingsEnabled"
    );

    // DELETE empties the policy and keeps the other settings, in both versions
    let (status, headers, deleted) = app.call("DELETE", &path, V2023, None).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert!(headers.get("deprecation").is_some());
    validate(&deleted, "DiskBackupSnapshotSchedule", "delete2023");
    assert_eq!(deleted["policies"][0]["policyItems"], json!([]));
    assert_eq!(deleted["policies"][0]["id"], policy_id);
    assert_eq!(deleted["autoExportEnabled"], false);
    assert_eq!(deleted["useOrgAndGroupNamesInExportPrefix"], true);
    assert_eq!(deleted["referenceHourOfDay"], 3);
    let deleted = app.ok("DELETE", &path, V2024_08, None).await;
    validate(&deleted, "DiskBackupSnapshotSchedule20240805", "delete2024");
    assert_eq!(deleted["policies"][0]["policyItems"], json!([]));
    assert_eq!(app.ok("GET", &path, V2024_08, None).await, deleted);
    app.server.shutdown().await.unwrap();
}

/// Every refused PATCH answers with its code and the JSON path of the field, and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_schedules_are_refused_with_their_codes_and_field_paths() {
    let app = start(Setup::default()).await;
    app.register_cluster("c1", &["rs0"]).await;
    let bucket = app.filesystem_bucket_id("b").await;
    let path = app.schedule_path("c1");
    let other_id = snapex::store::new_id();
    let bad_request = StatusCode::BAD_REQUEST;
    let one = |i: Value| json!({"policies": [{"policyItems": [i]}]});
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            one(item("hourly", 5, "days", 2)),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].frequencyInterval",
        ),
        (
            one(item("daily", 2, "days", 2)),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].frequencyInterval",
        ),
        (
            one(item("weekly", 0, "days", 2)),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].frequencyInterval",
        ),
        (
            one(item("monthly", 29, "days", 2)),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].frequencyInterval",
        ),
        (
            one(item("yearly", 13, "years", 2)),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].frequencyInterval",
        ),
        (
            one(item("ondemand", 1, "days", 2)),
            bad_request,
            "INVALID_ENUM_VALUE",
            "policies[0].policyItems[0].frequencyType",
        ),
        (
            one(item("minutely", 1, "days", 2)),
            bad_request,
            "INVALID_ENUM_VALUE",
            "policies[0].policyItems[0].frequencyType",
        ),
        (
            one(item("daily", 1, "hours", 2)),
            bad_request,
            "INVALID_ENUM_VALUE",
            "policies[0].policyItems[0].retentionUnit",
        ),
        (
            one(item("daily", 1, "days", 0)),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].retentionValue",
        ),
        (
            json!({"policies": [{"policyItems": [item("daily", 1, "days", 7), item("weekly", 1, "days", 1)]}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[1].retentionValue",
        ),
        (
            json!({"policies": [{"policyItems": [item("monthly", 1, "months", 1), item("daily", 1, "weeks", 5)]}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].retentionValue",
        ),
        (
            json!({"policies": [{"policyItems": []}, {"policyItems": []}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies",
        ),
        (
            json!({"policies": [{"id": other_id, "policyItems": []}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].id",
        ),
        (
            json!({"policies": [{"policyItems": [{"frequencyInterval": 1, "frequencyType": "daily", "retentionUnit": "days"}]}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].retentionValue",
        ),
        (
            json!({"policies": [{"policyItems": [{"frequencyInterval": 1, "frequencyType": "daily", "retentionUnit": "days", "retentionValue": 1, "id": "xyz"}]}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "policies[0].policyItems[0].id",
        ),
        (
            json!({"referenceHourOfDay": 24}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "referenceHourOfDay",
        ),
        (
            json!({"referenceHourOfDay": "3"}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "referenceHourOfDay",
        ),
        (
            json!({"referenceMinuteOfHour": -1}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "referenceMinuteOfHour",
        ),
        (
            json!({"restoreWindowDays": 0}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "restoreWindowDays",
        ),
        (
            json!({"export": {"frequencyType": "hourly"}}),
            bad_request,
            "INVALID_ENUM_VALUE",
            "export.frequencyType",
        ),
        (
            json!({"export": {"exportBucketId": "nope"}}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "export.exportBucketId",
        ),
        (
            json!({"export": {"exportBucketId": other_id, "frequencyType": "monthly"}}),
            StatusCode::NOT_FOUND,
            "EXPORT_BUCKET_NOT_FOUND",
            "export.exportBucketId",
        ),
        (
            json!({"autoExportEnabled": true}),
            bad_request,
            "MISSING_ATTRIBUTE",
            "export.exportBucketId",
        ),
        (
            json!({"autoExportEnabled": true, "export": {"exportBucketId": bucket}}),
            bad_request,
            "MISSING_ATTRIBUTE",
            "export.frequencyType",
        ),
        (
            json!({"copySettings": [{"cloudProvider": "AWS", "regionName": "US_EAST_1", "replicationSpecId": other_id, "frequencies": ["DAILY"]}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "copySettings",
        ),
        (
            json!({"copyPolicyItemsEnabled": true}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "copyPolicyItemsEnabled",
        ),
        (
            json!({"extraRetentionSettings": [{"frequencyType": "DAILY", "retentionDays": 3}]}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "extraRetentionSettings",
        ),
        (
            json!({"deleteSnapshots": true}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "deleteSnapshots",
        ),
        (
            json!({"bogus": 1}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "bogus",
        ),
        (
            json!({"export": {"exportBucketId": bucket, "bogus": 1}}),
            bad_request,
            "INVALID_ATTRIBUTE",
            "export.bogus",
        ),
    ];
    let before = app.ok("GET", &path, V2024_08, None).await;
    for (body, status_wanted, code, field) in cases {
        for accept in [V2023, V2024_08] {
            let (status, headers, answer) =
                app.call("PATCH", &path, accept, Some(body.clone())).await;
            error_of(status, &headers, &answer, code, status_wanted);
            assert_eq!(
                answer["badRequestDetail"]["fields"][0]["field"], field,
                "{body} -> {answer}"
            );
        }
    }
    assert_eq!(app.ok("GET", &path, V2024_08, None).await, before);

    // accepted: every export frequency of issue 4, and a partial export keeps the bucket
    for frequency in ["daily", "weekly", "monthly", "yearly"] {
        let s = app
            .ok(
                "PATCH",
                &path,
                V2024_08,
                Some(json!({"autoExportEnabled": true, "export": {"exportBucketId": bucket, "frequencyType": frequency}})),
            )
            .await;
        assert_eq!(
            s["export"],
            json!({"exportBucketId": bucket, "frequencyType": frequency})
        );
        assert_eq!(s["autoExportEnabled"], true);
    }
    let s = app
        .ok(
            "PATCH",
            &path,
            V2023,
            Some(json!({"export": {"frequencyType": "monthly"}})),
        )
        .await;
    validate(&s, "DiskBackupSnapshotSchedule", "partial");
    assert_eq!(
        s["export"],
        json!({"exportBucketId": bucket, "frequencyType": "monthly"})
    );

    // the bucket of an auto-export policy cannot be deleted until the schedule is deleted
    let bucket_path = format!(
        "/api/atlas/v2/groups/{}/backup/exportBuckets/{bucket}",
        app.group_id
    );
    let (status, headers, body) = app.call("DELETE", &bucket_path, V2023, None).await;
    error_of(
        status,
        &headers,
        &body,
        "EXPORT_BUCKET_DELETE_FAILED",
        bad_request,
    );
    let emptied = app.ok("DELETE", &path, V2024_08, None).await;
    assert!(emptied.get("export").is_none(), "{emptied}");
    let (status, _, body) = app.call("DELETE", &bucket_path, V2023, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // an unknown cluster has no schedule
    let (status, headers, body) = app
        .call("GET", &app.schedule_path("nope"), V2024_08, None)
        .await;
    error_of(
        status,
        &headers,
        &body,
        "CLUSTER_NOT_FOUND",
        StatusCode::NOT_FOUND,
    );
    app.server.shutdown().await.unwrap();
}

/// `useOrgAndGroupNamesInExportPrefix`: names instead of ids in the prefix (spaces become `_`,
/// unsafe characters are dropped), for export jobs created through the API and by auto-export;
/// the files land under that prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_replace_ids_in_the_export_prefix_when_the_schedule_says_so() {
    let app = start(Setup {
        org: "Acme Corp/EU #1",
        project: "Data Platform? (prod)",
        ..Setup::default()
    })
    .await;
    let dump = copy_dump(app.data_dir());
    app.register_cluster("c1", &["rs0"]).await;
    let bucket = app.filesystem_bucket_id("names").await;
    let path = app.schedule_path("c1");

    let first = app.import("c1", &dump, json!({})).await;
    let job = app
        .create_export("c1", first["id"].as_str().unwrap(), &bucket)
        .await;
    let ids = format!("exported_snapshots/{}/{}/c1/", app.org_id, app.group_id);
    assert!(job["prefix"].as_str().unwrap().starts_with(&ids), "{job}");
    app.wait_final("c1", job["id"].as_str().unwrap(), LIMIT)
        .await;

    app.ok(
        "PATCH",
        &path,
        V2024_08,
        Some(json!({"useOrgAndGroupNamesInExportPrefix": true})),
    )
    .await;
    let names = "exported_snapshots/Acme_CorpEU_1/Data_Platform_(prod)/c1/";
    let second = app.import("c1", &dump, json!({})).await;
    let job = app
        .create_export("c1", second["id"].as_str().unwrap(), &bucket)
        .await;
    let prefix = job["prefix"].as_str().unwrap().to_string();
    assert!(prefix.starts_with(names), "{job}");
    let done = app
        .wait_final("c1", job["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
    assert!(
        app.bucket_root
            .join(&app.group_id)
            .join("names")
            .join(&prefix)
            .join(".complete")
            .is_file()
    );

    // auto-export jobs take the same prefix
    app.ok(
        "PATCH",
        &path,
        V2023,
        Some(json!({"autoExportEnabled": true, "export": {"exportBucketId": bucket, "frequencyType": "monthly"}})),
    )
    .await;
    let monthly = app
        .import(
            "c1",
            &dump,
            json!({"snapshotType": "scheduled", "frequencyType": "monthly"}),
        )
        .await;
    let auto = app
        .jobs("c1")
        .await
        .into_iter()
        .find(|j| j["snapshotId"] == monthly["id"])
        .expect("an auto-export job");
    let prefix = auto["prefix"].as_str().unwrap().to_string();
    assert!(prefix.starts_with(names), "{auto}");
    let done = app
        .wait_final("c1", auto["id"].as_str().unwrap(), LIMIT)
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
    assert!(
        app.bucket_root
            .join(&app.group_id)
            .join("names")
            .join(&prefix)
            .join(".complete")
            .is_file()
    );
    app.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Retention.

/// `retentionInDays` sets `expiresAt`; a sweep "four days later" deletes the record but not
/// the dump; `doNotDelete` and a queued export keep a snapshot; a second sweep (another node)
/// finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_snapshot_records_go_and_their_files_stay() {
    // No replica set is ever admitted: export jobs stay Queued.
    let app = start(Setup {
        max_concurrent_replica_sets: 0,
        ..Setup::default()
    })
    .await;
    let dump = copy_dump(app.data_dir());
    let files = files_under(&dump);
    assert!(!files.is_empty());
    app.register_cluster("c1", &["rs0"]).await;
    let bucket = app.filesystem_bucket_id("b").await;
    let store = &app.server.store;

    let t0 = Utc::now();
    let expiring = app.import("c1", &dump, json!({"retentionInDays": 3})).await;
    let t1 = Utc::now();
    let expires = time(&expiring["expiresAt"]);
    let three = chrono::Duration::days(3);
    assert!(
        expires >= t0 + three - chrono::Duration::seconds(1) && expires <= t1 + three,
        "{expiring}"
    );
    validate(&expiring, "DiskBackupReplicaSet", "imported");
    let kept = app.import("c1", &dump, json!({"retentionInDays": 3})).await;
    let kept_id = kept["id"].as_str().unwrap();
    app.ok(
        "PATCH",
        &app.snapshot_path("c1", kept_id),
        V2023,
        Some(json!({"doNotDelete": true})),
    )
    .await;
    let exporting = app.import("c1", &dump, json!({"retentionInDays": 3})).await;
    let exporting_id = exporting["id"].as_str().unwrap();
    let job = app.create_export("c1", exporting_id, &bucket).await;
    assert_eq!(job["state"], "Queued");
    let forever = app.import("c1", &dump, json!({})).await;
    assert!(forever.get("expiresAt").is_none(), "{forever}");

    // nothing has expired yet
    let swept = snapex::jobs::retention::sweep(store, snapex::store::now())
        .await
        .unwrap();
    assert!(swept.is_empty(), "{swept:?}");
    // four days later: only the unprotected one goes
    let later = snapex::store::now() + chrono::Duration::days(4);
    let swept = snapex::jobs::retention::sweep(store, later).await.unwrap();
    let swept: Vec<&str> = swept.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(swept, [expiring["id"].as_str().unwrap()]);
    assert!(
        !app.snapshot_exists("c1", expiring["id"].as_str().unwrap())
            .await
    );
    assert!(app.snapshot_exists("c1", kept_id).await);
    assert!(app.snapshot_exists("c1", exporting_id).await);
    assert_eq!(
        files_under(&dump),
        files,
        "snapshot files must never be deleted"
    );

    // once the export is no longer active, its snapshot may go
    let cancelled = app
        .ok(
            "POST",
            &format!(
                "/api/snapex/v1/groups/{}/clusters/c1/backup/exports/{}/cancel",
                app.group_id,
                job["id"].as_str().unwrap()
            ),
            "application/json",
            None,
        )
        .await;
    assert_eq!(cancelled["state"], "Cancelled");
    let swept = snapex::jobs::retention::sweep(store, later).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].id, exporting_id);
    // and once doNotDelete is lifted, so may the protected one
    app.ok(
        "PATCH",
        &app.snapshot_path("c1", kept_id),
        V2023,
        Some(json!({"doNotDelete": false})),
    )
    .await;
    let swept = snapex::jobs::retention::sweep(store, later).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].id, kept_id);
    assert!(
        snapex::jobs::retention::sweep(store, later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.snapshot_exists("c1", forever["id"].as_str().unwrap())
            .await
    );
    assert_eq!(files_under(&dump), files);
    app.server.shutdown().await.unwrap();
}

/// A scheduled snapshot expires after the retention of its frequency's policy item, from its
/// `createdAt`; `updateSnapshots` re-applies a changed retention; the snapshot PATCH sets
/// retention in Atlas's units or in days and detaches the snapshot from the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_snapshots_follow_their_policy_item() {
    let app = start(Setup::default()).await;
    let dump = copy_dump(app.data_dir());
    app.register_cluster("c1", &["rs0"]).await;
    let path = app.schedule_path("c1");
    let schedule = app
        .ok(
            "PATCH",
            &path,
            V2024_08,
            Some(json!({"policies": [{"policyItems": [
                item("daily", 1, "days", 7),
                item("weekly", 6, "weeks", 4),
                item("monthly", 40, "months", 12),
            ]}]})),
        )
        .await;
    let item_id = |frequency: &str| {
        schedule["policies"][0]["policyItems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["frequencyType"] == frequency)
            .unwrap()["id"]
            .clone()
    };
    let taken = "2026-01-31T03:27:00Z";
    let scheduled = |frequency: &'static str| json!({"snapshotType": "scheduled", "frequencyType": frequency, "createdAt": taken});
    let daily = app.import("c1", &dump, scheduled("daily")).await;
    assert_eq!(daily["expiresAt"], "2026-02-07T03:27:00Z", "{daily}");
    assert_eq!(daily["policyItems"], json!([item_id("daily")]));
    let monthly = app.import("c1", &dump, scheduled("monthly")).await;
    assert_eq!(monthly["expiresAt"], "2027-01-31T03:27:00Z", "{monthly}");
    let hourly = app.import("c1", &dump, scheduled("hourly")).await;
    assert!(
        hourly.get("expiresAt").is_none(),
        "no hourly item: {hourly}"
    );
    let on_demand = app
        .import(
            "c1",
            &dump,
            json!({"frequencyType": "daily", "createdAt": taken}),
        )
        .await;
    assert!(on_demand.get("expiresAt").is_none(), "{on_demand}");
    let t0 = Utc::now();
    let explicit = app
        .import(
            "c1",
            &dump,
            json!({"snapshotType": "scheduled", "frequencyType": "daily", "createdAt": taken, "retentionInDays": 2}),
        )
        .await;
    assert!(
        time(&explicit["expiresAt"])
            >= t0 + chrono::Duration::days(2) - chrono::Duration::seconds(1)
    );
    assert_eq!(explicit["policyItems"], json!([]));

    // daily retention doubled, applied to the daily snapshots that follow the policy
    let mut items = schedule["policies"][0]["policyItems"].clone();
    for i in items.as_array_mut().unwrap() {
        if i["frequencyType"] == "daily" {
            i["retentionValue"] = json!(14);
        }
    }
    app.ok(
        "PATCH",
        &path,
        V2023,
        Some(json!({"policies": [{"policyItems": items}], "updateSnapshots": true})),
    )
    .await;
    let get = |id: Value| {
        let app = &app;
        async move {
            app.ok(
                "GET",
                &app.snapshot_path("c1", id.as_str().unwrap()),
                V2023,
                None,
            )
            .await
        }
    };
    assert_eq!(
        get(daily["id"].clone()).await["expiresAt"],
        "2026-02-14T03:27:00Z"
    );
    assert_eq!(
        get(monthly["id"].clone()).await["expiresAt"],
        "2027-01-31T03:27:00Z"
    );
    assert_eq!(
        get(explicit["id"].clone()).await["expiresAt"],
        explicit["expiresAt"]
    );

    // the snapshot PATCH: Atlas's units from createdAt, or days from now; one way at a time
    let monthly_path = app.snapshot_path("c1", monthly["id"].as_str().unwrap());
    let patched = app
        .ok(
            "PATCH",
            &monthly_path,
            V2023,
            Some(json!({"retentionUnit": "DAYS", "retentionValue": 2})),
        )
        .await;
    assert_eq!(patched["expiresAt"], "2026-02-02T03:27:00Z");
    assert_eq!(patched["policyItems"], json!([]));
    let patched = app
        .ok(
            "PATCH",
            &monthly_path,
            V2023,
            Some(json!({"retentionUnit": "months", "retentionValue": 1})),
        )
        .await;
    assert_eq!(patched["expiresAt"], "2026-02-28T03:27:00Z");
    let t0 = Utc::now();
    let patched = app
        .ok(
            "PATCH",
            &monthly_path,
            V2023,
            Some(json!({"retentionInDays": 5})),
        )
        .await;
    assert!(
        time(&patched["expiresAt"])
            >= t0 + chrono::Duration::days(5) - chrono::Duration::seconds(1)
    );
    for (body, code, field) in [
        (
            json!({"retentionUnit": "DAYS", "retentionValue": 2, "retentionInDays": 5}),
            "INVALID_ATTRIBUTE",
            "retentionValue",
        ),
        (
            json!({"retentionUnit": "FORTNIGHTS", "retentionValue": 2}),
            "INVALID_ENUM_VALUE",
            "retentionUnit",
        ),
        (
            json!({"retentionUnit": "DAYS", "retentionValue": 0}),
            "INVALID_ATTRIBUTE",
            "retentionValue",
        ),
        (
            json!({"retentionUnit": "DAYS"}),
            "INVALID_ATTRIBUTE",
            "retentionValue",
        ),
        (
            json!({"retentionInDays": 0}),
            "INVALID_ATTRIBUTE",
            "retentionInDays",
        ),
        (
            json!({"expiresAt": "2020-01-01T00:00:00Z"}),
            "INVALID_ATTRIBUTE",
            "expiresAt",
        ),
    ] {
        let (status, headers, answer) = app
            .call("PATCH", &monthly_path, V2023, Some(body.clone()))
            .await;
        error_of(status, &headers, &answer, code, StatusCode::BAD_REQUEST);
        assert_eq!(
            answer["badRequestDetail"]["fields"][0]["field"], field,
            "{body} -> {answer}"
        );
    }
    let (status, headers, answer) = app
        .call(
            "POST",
            &format!("/api/snapex/v1/groups/{}/clusters/c1/snapshots", app.group_id),
            "application/json",
            Some(json!({"parts": [{"replicaSetName": "rs0", "url": dump.display().to_string()}], "retentionInDays": 0})),
        )
        .await;
    error_of(
        status,
        &headers,
        &answer,
        "INVALID_ATTRIBUTE",
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        answer["badRequestDetail"]["fields"][0]["field"],
        "retentionInDays"
    );
    app.server.shutdown().await.unwrap();
}

/// `snapex serve`'s own retention task, at a one-second interval, deletes a scheduled snapshot
/// whose policy retention has already run out; the dump stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sweeps_expired_snapshots_at_its_interval() {
    let app = start(Setup {
        retention_interval: Duration::from_secs(1),
        ..Setup::default()
    })
    .await;
    let dump = copy_dump(app.data_dir());
    let files = files_under(&dump);
    app.register_cluster("c1", &["rs0"]).await;
    app.ok(
        "PATCH",
        &app.schedule_path("c1"),
        V2024_08,
        Some(json!({"policies": [{"policyItems": [item("daily", 1, "days", 1)]}]})),
    )
    .await;
    let old = app
        .import(
            "c1",
            &dump,
            json!({"snapshotType": "scheduled", "frequencyType": "daily", "createdAt": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(old["expiresAt"], "2020-01-02T00:00:00Z");
    let fresh = app.import("c1", &dump, json!({"retentionInDays": 1})).await;
    let id = old["id"].as_str().unwrap();
    let mut gone = false;
    for _ in 0..300 {
        if !app.snapshot_exists("c1", id).await {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "the retention task did not delete the expired snapshot"
    );
    assert!(
        app.snapshot_exists("c1", fresh["id"].as_str().unwrap())
            .await
    );
    assert_eq!(files_under(&dump), files);
    app.server.shutdown().await.unwrap();
}

/// Two nodes sweeping one database at the same moment delete every expired record exactly once.
async fn concurrent_sweeps_delete_each_record_once(database: Option<String>) {
    let app = start(Setup {
        database: database.clone(),
        ..Setup::default()
    })
    .await;
    let dump = copy_dump(app.data_dir());
    app.register_cluster("c1", &["rs0"]).await;
    app.ok(
        "PATCH",
        &app.schedule_path("c1"),
        V2024_08,
        Some(json!({"policies": [{"policyItems": [item("daily", 1, "days", 1)]}]})),
    )
    .await;
    let mut expected = Vec::new();
    for _ in 0..12 {
        let s = app
            .import(
                "c1",
                &dump,
                json!({"snapshotType": "scheduled", "frequencyType": "daily", "createdAt": "2020-01-01T00:00:00Z"}),
            )
            .await;
        expected.push(s["id"].as_str().unwrap().to_string());
    }
    let url = database.unwrap_or_else(|| snapex::store::default_sqlite_url(app.data_dir()));
    let other = snapex::store::Store::open(&url).await.unwrap();
    let now = snapex::store::now();
    let (a, b) = tokio::join!(
        snapex::jobs::retention::sweep(&app.server.store, now),
        snapex::jobs::retention::sweep(&other, now)
    );
    let mut deleted: Vec<String> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|s| s.id)
        .collect();
    deleted.sort();
    expected.sort();
    assert_eq!(deleted, expected);
    other.close().await;
    app.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sweeps_on_sqlite_delete_each_record_once() {
    concurrent_sweeps_delete_each_record_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sweeps_on_postgresql_delete_each_record_once() {
    let Some(url) = support::postgres_database().await else {
        return;
    };
    concurrent_sweeps_delete_each_record_once(Some(url)).await;
}

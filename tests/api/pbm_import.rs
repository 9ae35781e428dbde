//! PBM logical backups imported through the API (issue 12): the snapshot takes the backup's
//! consistent point, `mongodVersion` and size from its metadata, exports through a job like
//! any snapshot, and records the unapplied oplog in `.manifest.json`; a backup that is not
//! done is refused saying so; and a backup may only be read where the project may read its
//! whole storage root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::deployment::{TestApp, TestDeployment};
use crate::support::{self, shared_data};

fn pbm_root(compression: &str) -> PathBuf {
    shared_data().join("pbm").join(compression)
}

async fn import(app: &TestApp, url: &str) -> (StatusCode, Value) {
    let (status, _, body) = app
        .call(
            "POST",
            &format!(
                "/api/snapex/v1/groups/{}/clusters/c1/snapshots",
                app.group_id
            ),
            "application/json",
            Some(json!({"parts": [{"replicaSetName": "rs0", "url": url}]})),
        )
        .await;
    (status, body)
}

/// Copies a storage root's backup `name` (and `.pbm.init`) into `to`, writable.
fn copy_backup(compression: &str, name: &str, to: &Path) {
    let root = pbm_root(compression);
    for file in support::files_under(&root) {
        let rel = file.strip_prefix(&root).unwrap();
        let first = rel.iter().next().unwrap().to_string_lossy();
        if !first.starts_with(name) && first != ".pbm.init" {
            continue;
        }
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::write(to.join(rel), std::fs::read(&file).unwrap()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbm_backup_imports_with_its_consistent_point_and_exports_through_a_job() {
    let app = TestApp::start().await;
    app.register_cluster("c1", &["rs0"]).await;
    let backup = "2026-02-23T14:46:22Z";
    let url = format!("{}/{backup}.pbm.json", pbm_root("s2").display());
    let snapshot = app.import_snapshot("c1", &["rs0"], &url, json!({})).await;
    // last_write_ts {T: 1771857987}: the consistent point, not the file times.
    assert_eq!(snapshot["createdAt"], "2026-02-23T14:46:27Z", "{snapshot}");
    assert_eq!(snapshot["mongodVersion"], "8.0.0", "{snapshot}");
    // The backup's `size` (stored dump bytes plus oplog bytes) from its metadata.
    assert_eq!(snapshot["storageSizeBytes"], 1644, "{snapshot}");
    assert_eq!(snapshot["replicaSetName"], "rs0", "{snapshot}");

    let bucket = app.filesystem_bucket_id("lake").await;
    let job = app
        .create_export("c1", snapshot["id"].as_str().unwrap(), &bucket)
        .await;
    let done = app
        .wait_final("c1", job["id"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
    let prefix = app
        .bucket_root
        .join(&app.group_id)
        .join("lake")
        .join(done["prefix"].as_str().unwrap());
    assert!(
        prefix.to_string_lossy().contains("/2026-02-23T1446/"),
        "{}",
        prefix.display()
    );
    assert!(prefix.join(".complete").is_file());
    for data in [
        "db1/cafés/rs0.0.json.gz",
        "mongodump_test_db/coll1/rs0.0.json.gz",
    ] {
        assert!(prefix.join(data).is_file(), "{data} missing");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(prefix.join(".manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["documents"], 11, "{manifest}");
    let oplog = &manifest["oplog"][0];
    assert_eq!(oplog["applied"], false, "{manifest}");
    assert_eq!(oplog["replicaSet"], "rs0");
    assert_eq!(oplog["consistentAt"], json!({"t": 1771857987, "i": 13}));
    assert_eq!(oplog["files"].as_array().map(Vec::len), Some(1), "{oplog}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbm_backup_that_is_not_done_is_refused_saying_so() {
    let app = TestApp::start().await;
    app.register_cluster("c1", &["rs0"]).await;
    // The test deployments grant the temp directory to every project.
    let dir = tempfile::tempdir().unwrap();
    let backup = "2017-11-19T04:00:33Z";
    copy_backup("lz4", backup, dir.path());
    let meta = dir.path().join(format!("{backup}.pbm.json"));
    let text = std::fs::read_to_string(&meta).unwrap();
    // The backup's own status (the last one followed by its conditions; replica sets and
    // conditions have theirs too).
    let field = "\"status\": \"done\",\n\t\"conditions\"";
    let at = text.rfind(field).unwrap();
    let edited = format!(
        "{}\"status\": \"canceled\",\n\t\"conditions\"{}",
        &text[..at],
        &text[at + field.len()..]
    );
    std::fs::write(&meta, edited).unwrap();
    let (status, body) = import(&app, &format!("{}/{backup}", dir.path().display())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errorCode"], "SNAPSHOT_SOURCE_UNREADABLE", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("has status \"canceled\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbm_backup_is_read_only_where_its_whole_storage_root_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let root_for_config = root.clone();
    let app = TestApp::start_with(TestDeployment::builder().create().await, move |config| {
        config.deployment.source_grants.clear();
        config.deployment.source_roots = vec![root_for_config];
    })
    .await;
    app.register_cluster("c1", &["rs0"]).await;
    let own = root.join(&app.group_id);
    let other = root.join("0123456789abcdef01234567");
    let backup = "2017-11-19T04:00:31Z";

    // A storage root inside the project's directory imports, in every URL form.
    copy_backup("zstd", backup, &own.join("pbm"));
    for url in [
        format!("{}/pbm/{backup}.pbm.json", own.display()),
        format!("{}/pbm/{backup}", own.display()),
        format!("{}/pbm/{backup}/rs0", own.display()),
    ] {
        let (status, body) = import(&app, &url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
    }

    // The project's directory named as `<storage root>/<name>`: the storage root would be the
    // directory of every project, and the metadata beside it sends the reader into another's.
    copy_backup("zstd", backup, &other);
    let planted = std::fs::read_to_string(other.join(format!("{backup}.pbm.json")))
        .unwrap()
        .replace(
            &format!("\"{backup}/"),
            "\"0123456789abcdef01234567/2017-11-19T04:00:31Z/",
        );
    std::fs::write(root.join(format!("{}.pbm.json", app.group_id)), planted).unwrap();
    // A storage root inside the project's directory whose backup folder links to another's.
    let linked = own.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::copy(
        other.join(format!("{backup}.pbm.json")),
        linked.join(format!("{backup}.pbm.json")),
    )
    .unwrap();
    std::os::unix::fs::symlink(other.join(backup), linked.join(backup)).unwrap();
    for url in [
        own.display().to_string(),
        format!("{}/{backup}.pbm.json", linked.display()),
        format!("{}/{backup}", linked.display()),
    ] {
        let (status, body) = import(&app, &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(
            body["errorCode"], "SNAPSHOT_SOURCE_NOT_ALLOWED",
            "{url}: {body}"
        );
    }
}

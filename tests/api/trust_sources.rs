//! Issue 9, "snapshot sources are confined" and "buckets are isolated per project", tried as a
//! hostile project owner would: every import outside the project's own root gets the same
//! answer whether its target exists or not, and one project's FILESYSTEM bucket never lands in
//! another's directory.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};
use snapex::auth::Role;

use crate::support::atlas::AtlasClient;
use crate::support::deployment::{TestApp, TestDeployment};
use crate::support::sample_dump;

/// A node whose only source root is `root` (every project gets `root/<groupId>/`), with no
/// grants at all.
async fn confined(root: &Path) -> TestApp {
    let root = root.to_path_buf();
    TestApp::start_with(TestDeployment::builder().create().await, move |config| {
        config.deployment.source_grants.clear();
        config.deployment.source_roots = vec![root];
    })
    .await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_outside_the_projects_root_are_refused_alike() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups").canonicalize_or_create();
    let app = confined(&root).await;
    app.register_cluster("c1", &["rs0"]).await;
    let own = root.join(&app.group_id);
    let dump = sample_dump(&own.join("nightly"), "1MiB", 3);
    let other = root.join("0123456789abcdef01234567");
    let other_dump = sample_dump(&other.join("nightly"), "1MiB", 4);

    // The project's own backup imports.
    let (status, body) = import(&app, &dump).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = import(&app, &format!("file://{dump}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    std::os::unix::fs::symlink(&other_dump, own.join("link-to-other")).unwrap();
    let hostile = [
        other_dump.clone(),
        other.join("missing").display().to_string(),
        "/etc".to_string(),
        "/nonexistent/dump".to_string(),
        format!("{}/../0123456789abcdef01234567/nightly", own.display()),
        "nightly".to_string(),
        own.join("link-to-other").display().to_string(),
        app.data_dir().display().to_string(),
        app.bucket_root.display().to_string(),
        "memory://anything/dump".to_string(),
        "s3://some-bucket/dump".to_string(),
    ];
    let mut bodies = Vec::new();
    for url in &hostile {
        let (status, body) = import(&app, url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(
            body["errorCode"], "SNAPSHOT_SOURCE_NOT_ALLOWED",
            "{url}: {body}"
        );
        let text = body.to_string();
        assert!(!text.contains(url.as_str()), "{url} echoed: {text}");
        bodies.push(body);
    }
    // An existing and a missing target, a file and a directory: one answer.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_source_root_local_imports_are_refused() {
    let app = TestApp::start_with(TestDeployment::builder().create().await, |config| {
        config.deployment.source_grants.clear();
    })
    .await;
    app.register_cluster("c1", &["rs0"]).await;
    let dump = sample_dump(&app.data_dir().join("..").join("free-dump"), "1MiB", 5);
    let (status, body) = import(&app, &dump).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errorCode"], "SNAPSHOT_SOURCE_NOT_ALLOWED");
}

/// Two projects choose the same FILESYSTEM bucket name: each writes only under its own
/// project's directory, and an export of one never touches the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_buckets_of_two_projects_never_share_a_directory() {
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
        .create_service_account(&app.org_id, Some(&other.id), &[Role::GroupOwner], "b")
        .await
        .unwrap();
    let b = AtlasClient::with_service_account(
        reqwest::Client::new(),
        &app.server.url(),
        &sa.client_id,
        &sa.client_secret,
        &other.id,
    )
    .await;
    let a_bucket = app.filesystem_bucket_id("lake").await;
    let b_bucket = b.filesystem_bucket_id("lake").await;
    assert_ne!(a_bucket, b_bucket);
    let a_dir = app.bucket_root.join(&app.group_id).join("lake");
    let b_dir = app.bucket_root.join(&other.id).join("lake");
    let check = "exported_snapshots/.permissioncheck";
    assert!(a_dir.join(check).is_file() && b_dir.join(check).is_file());
    assert!(!app.bucket_root.join("lake").exists());

    app.register_cluster("c1", &["rs0"]).await;
    let dump = sample_dump(&app.data_dir().join("dump"), "1MiB", 6);
    let snapshot = app.import_snapshot("c1", &["rs0"], &dump, json!({})).await;
    let job = app
        .create_export("c1", snapshot["id"].as_str().unwrap(), &a_bucket)
        .await;
    let done = app
        .wait_final(
            "c1",
            job["id"].as_str().unwrap(),
            std::time::Duration::from_secs(120),
        )
        .await;
    assert_eq!(done["state"], "Successful", "{done}");
    assert!(
        a_dir
            .join(done["prefix"].as_str().unwrap())
            .join(".complete")
            .is_file()
    );
    let b_files = files(&b_dir);
    assert_eq!(
        b_files,
        vec![b_dir.join(check)],
        "B's directory: {b_files:?}"
    );
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                pending.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

trait CanonicalOrCreate {
    fn canonicalize_or_create(&self) -> PathBuf;
}

impl CanonicalOrCreate for PathBuf {
    fn canonicalize_or_create(&self) -> PathBuf {
        std::fs::create_dir_all(self).unwrap();
        self.canonicalize().unwrap()
    }
}

/// Buckets of the layout before per-project directories (`<root>/<bucketName>`) move to
/// `<root>/<groupId>/<bucketName>` at start, with their files; a directory two projects' buckets
/// shared goes to the older bucket only, and the move is not repeated.
#[tokio::test]
async fn filesystem_buckets_of_the_old_layout_move_to_their_projects() {
    use snapex::store::{CloudProvider, NewExportBucket};
    let dir = tempfile::tempdir().unwrap();
    let store = snapex::store::Store::open_in_data_dir(dir.path())
        .await
        .unwrap();
    let org = store.create_org("o").await.unwrap();
    let a = store.create_project(&org.id, "a").await.unwrap();
    let b = store.create_project(&org.id, "b").await.unwrap();
    let bucket = |name: &str| NewExportBucket {
        cloud_provider: CloudProvider::Filesystem,
        bucket_name: name.into(),
        role_id: None,
        service_url: None,
        region: None,
        require_private_networking: false,
    };
    store
        .create_export_bucket(&a.id, bucket("lake"))
        .await
        .unwrap();
    store
        .create_export_bucket(&b.id, bucket("lake"))
        .await
        .unwrap();
    store
        .create_export_bucket(&b.id, bucket("own"))
        .await
        .unwrap();
    let root = dir.path().join("buckets");
    for (name, file) in [
        ("lake", "exported_snapshots/x/.complete"),
        ("own", "y.json.gz"),
    ] {
        let path = root.join(name).join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, name).unwrap();
    }
    let deployment = snapex::service::Deployment::new(
        store,
        snapex::auth::SecretBox::from_key([3; 32]),
        snapex::service::DeploymentConfig::new(root.clone()),
    );
    let moved = snapex::service::buckets::migrate_filesystem_layout(&deployment)
        .await
        .unwrap();
    assert_eq!(moved, 2);
    assert!(
        root.join(&a.id)
            .join("lake/exported_snapshots/x/.complete")
            .is_file()
    );
    assert!(!root.join(&b.id).join("lake").exists());
    assert!(root.join(&b.id).join("own/y.json.gz").is_file());
    assert!(!root.join("lake").exists() && !root.join("own").exists());
    let again = snapex::service::buckets::migrate_filesystem_layout(&deployment)
        .await
        .unwrap();
    assert_eq!(again, 0);
}

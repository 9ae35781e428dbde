//! `GET /api/snapex/v1/groups/{groupId}/backupLocations` (issue 13): a project sees the backup
//! locations the operator bound to it, and only those; another project's are a 404, as every
//! other project's resource is.

use reqwest::StatusCode;
use snapex::service::catalog::BackupLocation;

use crate::support::deployment::{TestApp, TestDeployment};

const OTHER_PROJECT: &str = "0123456789abcdef01234567";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_lists_its_own_backup_locations_only() {
    let deployment = TestDeployment::builder().create().await;
    let group_id = deployment.group_id.clone();
    let app = TestApp::start_with(deployment, move |config| {
        config.deployment.backup_locations = vec![
            BackupLocation::parse(&format!(
                "name=nightly,project={group_id},cluster=c1,url=s3://backups/nightly,role=89abcdef0123456789abcdef"
            ))
            .unwrap(),
            BackupLocation::parse(&format!(
                "name=theirs,project={OTHER_PROJECT},cluster=c9,url=s3://backups/theirs"
            ))
            .unwrap(),
        ];
    })
    .await;
    let path = format!("/api/snapex/v1/groups/{}/backupLocations", app.group_id);
    let body = app.ok("GET", &path, "application/json", None).await;
    assert_eq!(body["totalCount"], 1, "{body}");
    let location = &body["results"][0];
    assert_eq!(location["name"], "nightly");
    assert_eq!(location["clusterName"], "c1");
    assert_eq!(location["url"], "s3://backups/nightly");
    assert_eq!(location["roleId"], "89abcdef0123456789abcdef");
    assert_eq!(location["intervalSeconds"], 60);
    assert_eq!(location["backups"], serde_json::json!([]));

    let (status, _, body) = app
        .call(
            "GET",
            &format!("/api/snapex/v1/groups/{OTHER_PROJECT}/backupLocations"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!body.to_string().contains("theirs"), "{body}");
}

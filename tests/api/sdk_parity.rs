//! Issue 14, "requests and responses as Atlas clients send and read them": whole SDK models
//! with their read-only fields, the project and organization lists, clusters at the versions
//! clients ask for, booleans in query strings in any case.

use reqwest::StatusCode;
use serde_json::{Value, json};
use snapex::auth::Role;

use crate::support::atlas::{AtlasClient, V2023, V2024_08};
use crate::support::deployment::TestApp;
use crate::support::sample_dump;

/// A client of an organization-level key with `role`.
async fn org_client(app: &TestApp, role: Role) -> AtlasClient {
    let sa = app
        .server
        .auth
        .create_service_account(&app.org_id, None, &[role], "org")
        .await
        .unwrap();
    AtlasClient::with_service_account(
        reqwest::Client::new(),
        &app.server.url(),
        &sa.client_id,
        &sa.client_secret,
        &app.group_id,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_group_model_is_accepted_and_unknown_fields_are_not() {
    let app = TestApp::start().await;
    let creator = org_client(&app, Role::OrgOwner).await;
    // As the Go SDK's `Group` model serializes itself: read-only fields included.
    let (status, _, body) = creator
        .call(
            "POST",
            "/api/atlas/v2/groups",
            V2023,
            Some(json!({"clusterCount": 0, "created": "2026-01-01T00:00:00Z", "id": "000000000000000000000000",
                        "links": [], "name": "From the SDK", "orgId": app.org_id, "withDefaultAlertsSettings": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "From the SDK");
    assert_ne!(
        body["id"], "000000000000000000000000",
        "a sent id is ignored"
    );
    let (status, _, body) = creator
        .call(
            "POST",
            "/api/atlas/v2/groups",
            V2023,
            Some(json!({"name": "Unknown", "orgId": app.org_id, "bogus": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["badRequestDetail"]["fields"].is_array(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_and_organizations_list_what_the_key_may_see() {
    let app = TestApp::start().await;
    let other = app
        .server
        .store
        .create_project(&app.org_id, "Other")
        .await
        .unwrap();
    // The project's own key sees its project only, and its organization.
    let groups = app.ok("GET", "/api/atlas/v2/groups", V2023, None).await;
    assert_eq!(groups["totalCount"], 1, "{groups}");
    assert_eq!(groups["results"][0]["id"], app.group_id.as_str());
    let orgs = app.ok("GET", "/api/atlas/v2/orgs", V2023, None).await;
    assert_eq!(orgs["totalCount"], 1, "{orgs}");
    assert_eq!(orgs["results"][0]["id"], app.org_id.as_str());
    let org = app
        .ok(
            "GET",
            &format!("/api/atlas/v2/orgs/{}", app.org_id),
            V2023,
            None,
        )
        .await;
    assert_eq!(org["name"], "Acme Corp");
    // An organization reader sees every project of the organization.
    let reader = org_client(&app, Role::OrgReadOnly).await;
    let groups = reader
        .ok(
            "GET",
            "/api/atlas/v2/groups?itemsPerPage=1&pageNum=2",
            V2023,
            None,
        )
        .await;
    assert_eq!(groups["totalCount"], 2, "{groups}");
    let ids: Vec<&Value> = vec![&groups["results"][0]["id"]];
    assert_eq!(groups["results"].as_array().unwrap().len(), 1);
    assert!(
        ids[0] == app.group_id.as_str() || ids[0] == other.id.as_str(),
        "{groups}"
    );
    // Another organization's id: the same answer as a missing one.
    let (status, _, body) = app
        .call(
            "GET",
            "/api/atlas/v2/orgs/0123456789abcdef01234567",
            V2023,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_answer_the_sdk_version_with_the_fields_it_reads() {
    let app = TestApp::start().await;
    app.register_cluster("c1", &["rs0"]).await;
    let dump = sample_dump(&app.data_dir().join("dump"), "1MiB", 2);
    let snapshot = app.import_snapshot("c1", &["rs0"], &dump, json!({})).await;
    let path = format!("/api/atlas/v2/groups/{}/clusters/c1", app.group_id);
    let (status, headers, cluster) = app.call("GET", &path, V2024_08, None).await;
    assert_eq!(status, StatusCode::OK, "{cluster}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .contains("2024-08-05"),
        "{headers:?}"
    );
    assert_eq!(cluster["backupEnabled"], true);
    assert_eq!(cluster["name"], "c1");
    assert_eq!(cluster["stateName"], "IDLE");
    // The sample dump's prelude records its server version.
    assert!(snapshot["mongodVersion"].is_string(), "{snapshot}");
    assert_eq!(
        cluster["mongoDBVersion"], snapshot["mongodVersion"],
        "{cluster} vs {snapshot}"
    );
    let list = app
        .ok(
            "GET",
            &format!(
                "/api/atlas/v2/groups/{}/clusters?includeCount=TRUE&pretty=False",
                app.group_id
            ),
            V2024_08,
            None,
        )
        .await;
    assert_eq!(list["totalCount"], 1, "{list}");
    let (status, _, body) = app
        .call(
            "GET",
            &format!(
                "/api/atlas/v2/groups/{}/clusters?includeCount=yes",
                app.group_id
            ),
            V2024_08,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

//! Issue 9, "credentials never mix": a tenant's static-key access role reaches its store with
//! exactly its own key and token — never the operator's environment credentials — and the
//! server's own identity (`fromEnvironment`) and hostile endpoints are refused.
//!
//! These tests call the router directly (no socket) with a service-account bearer token; each
//! answer is checked against the OpenAPI document.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use snapex::auth::{AuthService, Role, SecretBox};
use snapex::service::{DeploymentConfig, ProjectSet};
use snapex::store::Store;

use crate::support::openapi;

struct App {
    router: axum::Router,
    token: String,
    group_id: String,
    _dir: tempfile::TempDir,
}

async fn app(configure: impl FnOnce(&mut DeploymentConfig)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_data_dir(dir.path()).await.unwrap();
    let auth = AuthService::new(store.clone(), SecretBox::from_key([9; 32]));
    let org = store.create_org("o").await.unwrap();
    let project = store.create_project(&org.id, "p").await.unwrap();
    let sa = auth
        .create_service_account(&org.id, Some(&project.id), &[Role::GroupOwner], "t")
        .await
        .unwrap();
    let token = auth
        .issue_token(&sa.client_id, &sa.client_secret)
        .await
        .unwrap()
        .access_token;
    let mut config = DeploymentConfig::new(dir.path().join("buckets"));
    configure(&mut config);
    let router = snapex::api::app(snapex::api::AppState::new(store, auth, config));
    App {
        router,
        token,
        group_id: project.id,
        _dir: dir,
    }
}

impl App {
    async fn post(&self, path: &str, accept: &str, body: Value) -> (u16, Value) {
        let request = axum::http::Request::post(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", accept)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let (parts, bytes) = openapi::oneshot(self.router.clone(), request).await;
        let status = parts.status.as_u16();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn create_role(&self, body: Value) -> (u16, Value) {
        let path = format!("/api/snapex/v1/groups/{}/accessRoles", self.group_id);
        self.post(&path, "application/json", body).await
    }
}

/// A loopback listener that answers every request `200 OK` and keeps each request's head.
fn recording_listener() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&head).to_string();
            // The permission check is an empty PUT: nothing more to read.
            record.lock().unwrap().push(text);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: \"e\"\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

/// The operator's environment holds credentials of its own; a tenant's static-key role must
/// sign with its key alone and send no session token. Under nextest every test is a process
/// of its own, so setting the environment here reaches no other test.
#[test]
fn a_static_key_role_sends_no_operator_credentials() {
    // SAFETY: set before any other thread of this process exists (the runtime is built below).
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAOPERATOR0000000");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "operator-secret");
        std::env::set_var("AWS_SESSION_TOKEN", "OPERATOR-SESSION-TOKEN");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (endpoint, seen) = recording_listener();
        let app = app(|c| c.allow_insecure_endpoints = true).await;
        let (status, role) = app
            .create_role(json!({"provider": "AWS", "accessKeyId": "AKIATENANT000000000", "secretAccessKey": "tenant-secret", "endpoint": endpoint, "region": "us-east-1"}))
            .await;
        assert_eq!(status, 200, "{role}");
        let path = format!("/api/atlas/v2/groups/{}/backup/exportBuckets", app.group_id);
        let (status, bucket) = app
            .post(
                &path,
                "application/vnd.atlas.2023-01-01+json",
                json!({"cloudProvider": "AWS", "bucketName": "tenant-bucket", "iamRoleId": role["roleId"]}),
            )
            .await;
        assert_eq!(status, 200, "{bucket}");
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty(), "the permission check reached the listener");
        for head in seen.iter() {
            let lower = head.to_ascii_lowercase();
            assert!(head.contains("Credential=AKIATENANT000000000/"), "{head}");
            assert!(!head.contains("OPERATOR"), "operator credential sent: {head}");
            assert!(!lower.contains("x-amz-security-token"), "{head}");
        }
    });
}

#[tokio::test]
async fn the_servers_own_identity_is_only_for_projects_the_operator_allows() {
    let refused = app(|_| {}).await;
    let (status, body) = refused
        .create_role(json!({"provider": "AWS", "fromEnvironment": true}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorCode"], "INVALID_ATTRIBUTE");
    assert_eq!(
        body["badRequestDetail"]["fields"][0]["field"],
        "fromEnvironment"
    );

    let allowed = app(|c| c.environment_credentials = ProjectSet::All).await;
    let (status, body) = allowed
        .create_role(json!({"provider": "AWS", "fromEnvironment": true}))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn hostile_endpoints_are_refused() {
    let app = app(|_| {}).await;
    for endpoint in [
        "http://127.0.0.1:9000",
        "https://169.254.169.254",
        "https://[fd00:ec2::254]",
        "ftp://example.com",
    ] {
        let (status, body) = app
            .create_role(json!({"provider": "AWS", "accessKeyId": "AKIA1", "secretAccessKey": "s", "endpoint": endpoint}))
            .await;
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert_eq!(body["errorCode"], "INVALID_ATTRIBUTE", "{endpoint}");
        assert_eq!(body["badRequestDetail"]["fields"][0]["field"], "endpoint");
    }
    let (status, body) = app
        .create_role(json!({"provider": "AWS", "accessKeyId": "AKIA1", "secretAccessKey": "s", "endpoint": "https://s3.example.com"}))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// A GCP role reaches GCS at its `endpoint` (here our XML-API server, `support::gcs`) with its
/// own service-account key: the permission check of a new bucket is written there, signed by
/// that key (the server verifies every request's JWT).
#[tokio::test]
async fn a_gcp_role_writes_at_its_endpoint_with_its_own_key() {
    let server = crate::support::gcs::server();
    let app = app(|c| c.allow_insecure_endpoints = true).await;
    let (status, role) = app
        .create_role(json!({"provider": "GCP", "serviceAccountKey": server.key_json(), "endpoint": server.url}))
        .await;
    assert_eq!(status, 200, "{role}");
    let refused_before = server.unauthenticated_requests();
    let path = format!("/api/atlas/v2/groups/{}/backup/exportBuckets", app.group_id);
    let (status, bucket) = app
        .post(
            &path,
            "application/vnd.atlas.2024-05-30+json",
            json!({"cloudProvider": "GCP", "bucketName": crate::support::gcs::BUCKET, "roleId": role["roleId"]}),
        )
        .await;
    assert_eq!(status, 200, "{bucket}");
    assert_eq!(server.unauthenticated_requests(), refused_before);
    assert!(server.has_object("exported_snapshots/.permissioncheck"));
}

/// A key is the key's JSON: a path would make the server read its own files (the operator's
/// key among them), and `gcs_base_url` / `disable_oauth` inside it would choose an endpoint
/// past the endpoint rule or drop authentication. Each gets 400 on `serviceAccountKey`.
#[tokio::test]
async fn a_gcp_key_that_is_a_path_or_names_its_own_endpoint_is_refused() {
    let app = app(|c| c.allow_insecure_endpoints = true).await;
    for key in [
        json!("/etc/snapex/gcs-operator-key.json"),
        json!(
            r#"{"type":"service_account","private_key":"k","private_key_id":"1","client_email":"a@b","gcs_base_url":"http://10.0.0.1"}"#
        ),
        json!(
            r#"{"type":"service_account","private_key":"k","private_key_id":"1","client_email":"a@b","disable_oauth":true}"#
        ),
    ] {
        let (status, body) = app
            .create_role(json!({"provider": "GCP", "serviceAccountKey": key}))
            .await;
        assert_eq!(status, 400, "{key}: {body}");
        assert_eq!(body["errorCode"], "INVALID_ATTRIBUTE", "{key}");
        assert_eq!(
            body["badRequestDetail"]["fields"][0]["field"],
            "serviceAccountKey"
        );
    }
    // The endpoint rule applies to GCP endpoints as to any other.
    let (status, body) = app
        .create_role(json!({"provider": "GCP", "serviceAccountKey": r#"{"private_key":"k"}"#, "endpoint": "http://169.254.169.254"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["badRequestDetail"]["fields"][0]["field"], "endpoint");
}

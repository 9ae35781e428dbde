//! The one client of the Atlas Administration API (and of snapex's own `/api/snapex/v1`
//! extensions) that every test binary uses: requests with a service account's bearer token and
//! a media type, the checks every successful answer must pass (200 and, for a versioned media
//! type, that version's `Content-Type`), the export resources the tests create and poll, and
//! the error and pagination shapes. Every answer it receives is checked against the OpenAPI
//! document ([`super::openapi`]).
//!
//! It authenticates with OAuth bearer tokens only. The Digest handshake is exercised by clients
//! we did not write (`curl --digest`, Python `requests`) and by the hand-built headers of the
//! auth tests (see [`super::digest`]); a Rust Digest client here would be one more
//! implementation with no test of its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::openapi;
use super::spec_schema::validate;

pub const V2023: &str = "application/vnd.atlas.2023-01-01+json";
pub const V2024_05: &str = "application/vnd.atlas.2024-05-30+json";
pub const V2024_08: &str = "application/vnd.atlas.2024-08-05+json";
/// The states an export job never leaves.
pub const FINAL: [&str; 3] = ["Successful", "Failed", "Cancelled"];

/// A client of one node as one project's service account. Clones share the node they talk to
/// (see [`AtlasClient::use_node`]).
#[derive(Clone)]
pub struct AtlasClient {
    /// The HTTP client, for requests the helpers below do not make.
    pub client: reqwest::Client,
    /// The bearer token every request carries.
    pub token: String,
    /// The project (group) the resource helpers act on.
    pub group_id: String,
    base: Arc<Mutex<String>>,
}

impl AtlasClient {
    /// A client of `base` (`http://host:port`) sending `token`.
    pub fn new(client: reqwest::Client, base: &str, token: String, group_id: &str) -> AtlasClient {
        AtlasClient {
            client,
            token,
            group_id: group_id.to_string(),
            base: Arc::new(Mutex::new(base.to_string())),
        }
    }

    /// A client with a fresh token from `POST /api/oauth/token` (client credentials in HTTP
    /// Basic), as a user's script gets one.
    pub async fn with_service_account(
        client: reqwest::Client,
        base: &str,
        client_id: &str,
        client_secret: &str,
        group_id: &str,
    ) -> AtlasClient {
        let resp = client
            .post(format!("{base}/api/oauth/token"))
            .basic_auth(client_id, Some(client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap_or_else(|e| panic!("token request to {base}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        openapi::check_response(
            "POST",
            "/api/oauth/token",
            status.as_u16(),
            content_type(&headers),
            &text,
        );
        assert_eq!(status, StatusCode::OK, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        let token = body["access_token"].as_str().unwrap().to_string();
        AtlasClient::new(client, base, token, group_id)
    }

    /// `http://host:port` of the node this client talks to.
    pub fn base(&self) -> String {
        self.base.lock().unwrap().clone()
    }

    /// The absolute URL of `path` on this client's node.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Points this client (and its clones) at another node of the deployment.
    pub fn use_node(&self, base: &str) {
        *self.base.lock().unwrap() = base.to_string();
    }

    /// A clone that talks to `base`, independently of this one.
    pub fn for_node(&self, base: &str) -> AtlasClient {
        AtlasClient {
            base: Arc::new(Mutex::new(base.to_string())),
            ..self.clone()
        }
    }

    /// Sends `body` (as `accept`, the media type the Atlas API expects a body in) and returns
    /// the status, the headers and the JSON answer (`Null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(&self.token)
            .header("accept", accept);
        if let Some(b) = body {
            req = req.header("content-type", accept).body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        openapi::check_response(method, path, status.as_u16(), content_type(&headers), &text);
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        (status, headers, value)
    }

    /// [`AtlasClient::call`] that must answer 200, in the requested version's media type when
    /// that is a versioned one.
    pub async fn ok(&self, method: &str, path: &str, accept: &str, body: Option<Value>) -> Value {
        let (status, headers, value) = self.call(method, path, accept, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {value}");
        if accept.starts_with("application/vnd.atlas.") {
            let ct = headers.get("content-type").unwrap().to_str().unwrap();
            assert_eq!(ct, format!("{accept};charset=utf-8"), "{method} {path}");
        }
        value
    }

    /// `/api/atlas/v2/groups/{group}{rest}`.
    pub fn group_path(&self, rest: &str) -> String {
        format!("/api/atlas/v2/groups/{}{rest}", self.group_id)
    }

    /// Registers a cluster (`POST /api/snapex/v1/groups/{group}/clusters`): sharded when it has
    /// more than one replica set.
    pub async fn register_cluster(&self, name: &str, rs: &[&str]) -> Value {
        self.register_cluster_with(name, rs, json!({})).await
    }

    /// [`AtlasClient::register_cluster`] with more body fields (`labels`).
    pub async fn register_cluster_with(&self, name: &str, rs: &[&str], extra: Value) -> Value {
        let kind = if rs.len() > 1 {
            "SHARDED"
        } else {
            "REPLICASET"
        };
        let mut body = json!({"name": name, "clusterType": kind, "replicaSets": rs});
        merge(&mut body, extra);
        self.ok(
            "POST",
            &format!("/api/snapex/v1/groups/{}/clusters", self.group_id),
            "application/json",
            Some(body),
        )
        .await
    }

    /// Imports a snapshot of `cluster` whose every replica set in `rs` reads `dump`, with more
    /// body fields (`description`, `frequencyType`, `snapshotType`, `createdAt`…).
    pub async fn import_snapshot(
        &self,
        cluster: &str,
        rs: &[&str],
        dump: &str,
        extra: Value,
    ) -> Value {
        let parts: Vec<Value> = rs
            .iter()
            .map(|r| json!({"replicaSetName": r, "url": dump}))
            .collect();
        let mut body = json!({"parts": parts});
        merge(&mut body, extra);
        self.ok(
            "POST",
            &format!(
                "/api/snapex/v1/groups/{}/clusters/{cluster}/snapshots",
                self.group_id
            ),
            "application/json",
            Some(body),
        )
        .await
    }

    /// Creates a FILESYSTEM export bucket (a directory under the node's bucket root).
    pub async fn filesystem_bucket(&self, name: &str) -> Value {
        self.ok(
            "POST",
            &self.group_path("/backup/exportBuckets"),
            V2024_05,
            Some(json!({"cloudProvider": "FILESYSTEM", "bucketName": name})),
        )
        .await
    }

    /// The `_id` of a new FILESYSTEM export bucket.
    pub async fn filesystem_bucket_id(&self, name: &str) -> String {
        let b = self.filesystem_bucket(name).await;
        b["_id"].as_str().unwrap().to_string()
    }

    pub async fn create_export(&self, cluster: &str, snapshot_id: &str, bucket_id: &str) -> Value {
        self.ok(
            "POST",
            &self.group_path(&format!("/clusters/{cluster}/backup/exports")),
            V2023,
            Some(json!({"snapshotId": snapshot_id, "exportBucketId": bucket_id})),
        )
        .await
    }

    /// An export job in the v2 API.
    pub async fn job(&self, cluster: &str, id: &str) -> Value {
        self.ok(
            "GET",
            &self.group_path(&format!("/clusters/{cluster}/backup/exports/{id}")),
            V2023,
            None,
        )
        .await
    }

    /// An export job in the v1.0 API (`errMsg` instead of `stateReason`).
    pub async fn job_v1(&self, cluster: &str, id: &str) -> Value {
        self.ok(
            "GET",
            &format!(
                "/api/atlas/v1.0/groups/{}/clusters/{cluster}/backup/exports/{id}",
                self.group_id
            ),
            "application/json",
            None,
        )
        .await
    }

    /// Every job of `cluster`, in one request (one consistent read of the store).
    pub async fn jobs(&self, cluster: &str) -> Vec<Value> {
        let page = self
            .ok(
                "GET",
                &self.group_path(&format!(
                    "/clusters/{cluster}/backup/exports?itemsPerPage=500"
                )),
                V2023,
                None,
            )
            .await;
        // Only `results`: `totalCount` is a second query, which a job created in between
        // makes differ from the page.
        page["results"].as_array().unwrap().clone()
    }

    /// The snapex cancel extension.
    pub async fn cancel(&self, cluster: &str, id: &str) -> Value {
        self.ok(
            "POST",
            &format!(
                "/api/snapex/v1/groups/{}/clusters/{cluster}/backup/exports/{id}/cancel",
                self.group_id
            ),
            "application/json",
            None,
        )
        .await
    }

    /// Polls the job every 100 ms until it is final (at most `limit`).
    pub async fn wait_final(&self, cluster: &str, id: &str, limit: Duration) -> Value {
        self.wait_final_checking(cluster, id, limit, |_| {}).await
    }

    /// [`AtlasClient::wait_final`] passing every answer, the final one included, to `check`.
    pub async fn wait_final_checking(
        &self,
        cluster: &str,
        id: &str,
        limit: Duration,
        check: impl Fn(&Value),
    ) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(cluster, id).await;
            check(&job);
            if FINAL.contains(&job["state"].as_str().unwrap()) {
                return job;
            }
            assert!(
                start.elapsed() < limit,
                "export job {id} did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The `Content-Type` of a response, when it has a readable one.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get("content-type").and_then(|v| v.to_str().ok())
}

/// Adds the fields of the object `extra` to the object `body`.
fn merge(body: &mut Value, extra: Value) {
    let Value::Object(extra) = extra else {
        panic!("extra body fields must be an object: {extra}");
    };
    for (k, v) in extra {
        body[k] = v;
    }
}

/// Asserts an Atlas error answer: `want` with `errorCode` `code` in the body and the
/// `X-Error-Code` header, as `application/json`, in the spec's `ApiError` shape.
pub fn error_of(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    code: &str,
    want: StatusCode,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["error"], want.as_u16(), "{body}");
    assert_eq!(headers.get("x-error-code").unwrap().to_str().unwrap(), code);
    assert_eq!(
        headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    validate(body, "ApiError", "error");
}

/// The `rel`s of a list page's `links`, in order.
pub fn rels(page: &Value) -> Vec<&str> {
    page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect()
}

/// The `href` of the link `rel` of a list page, if it has one.
pub fn link(page: &Value, rel: &str) -> Option<String> {
    page["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == rel)
        .and_then(|l| l["href"].as_str())
        .map(str::to_string)
}

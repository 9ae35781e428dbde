//! Authentication and authorization over real HTTP: an axum server on loopback with tiny
//! protected routes built from `snapex::auth::Principal` (`support::probe`), driven by `curl
//! --digest` exactly as the Atlas documentation does, by Python `requests` with
//! `HTTPDigestAuth` and a bearer token, and by hand-made Digest headers (`support::digest`, not
//! the server's own code) for the expired-nonce and replay cases.
//!
//! The OAuth endpoints' answers are checked against the OpenAPI document; the probes' are not
//! (they are this suite's own routes, not the API), nor are those curl and Python read (other
//! clients, whose answers the tests assert on themselves).

use std::process::Stdio;

use serde_json::{Value, json};
use snapex::store::Store;

use crate::support::digest::{self, REALM, param};
use crate::support::openapi::SendChecked;
use crate::support::probe::serve;
use crate::support::{self, AuthService, Role, SecretBox};

struct Key {
    public: String,
    private: String,
}

struct World {
    _dir: tempfile::TempDir,
    auth: AuthService,
    base: String,
    org: String,
    p1: String,
    p2: String,
    /// GROUP_OWNER on p1.
    owner1: Key,
    /// GROUP_READ_ONLY on p1.
    reader1: Key,
    /// ORG_OWNER of the org (both projects).
    org_owner: Key,
    /// ORG_OWNER of another org.
    stranger: Key,
}

async fn key(auth: &AuthService, org: &str, project: Option<&str>, role: Role) -> Key {
    let k = auth
        .create_api_key(org, project, &[role], "test")
        .await
        .unwrap();
    Key {
        public: k.public_key,
        private: k.private_key,
    }
}

async fn world_on(store: Store, dir: tempfile::TempDir) -> World {
    let auth = AuthService::new(
        store.clone(),
        SecretBox::load_or_create(dir.path()).unwrap(),
    );
    auth.verify_deployment_key().await.unwrap();
    let org = store.create_org("acme").await.unwrap().id;
    let other_org = store.create_org("globex").await.unwrap().id;
    let p1 = store
        .create_project(&org, &support::unique_name("p1"))
        .await
        .unwrap()
        .id;
    let p2 = store
        .create_project(&org, &support::unique_name("p2"))
        .await
        .unwrap()
        .id;
    let owner1 = key(&auth, &org, Some(&p1), Role::GroupOwner).await;
    let reader1 = key(&auth, &org, Some(&p1), Role::GroupReadOnly).await;
    let org_owner = key(&auth, &org, None, Role::OrgOwner).await;
    let stranger = key(&auth, &other_org, None, Role::OrgOwner).await;
    let base = serve(auth.clone()).await;
    World {
        _dir: dir,
        auth,
        base,
        org,
        p1,
        p2,
        owner1,
        reader1,
        org_owner,
        stranger,
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_data_dir(dir.path()).await.unwrap();
    world_on(store, dir).await
}

/// `curl --user PUB:PRIV --digest --include …` as the seed documents write it; returns the
/// final status and the output (headers of every response, then the body).
async fn curl_digest(user: &str, method: &str, url: &str, data: Option<&str>) -> (u16, String) {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args([
        "--silent",
        "--show-error",
        "--user",
        user,
        "--digest",
        "--include",
    ])
    .args(["--header", "Accept: application/json"])
    .args(["--write-out", "\n%{http_code}"])
    .args(["-X", method, url]);
    if let Some(data) = data {
        cmd.args(["--header", "Content-Type: application/json", "--data", data]);
    }
    let out = cmd
        .stdout(Stdio::piped())
        .output()
        .await
        .expect("curl runs");
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (rest, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), rest.to_string())
}

fn last_body(output: &str) -> Value {
    let start = output.rfind("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    serde_json::from_str(&output[start..]).unwrap_or(Value::Null)
}

#[tokio::test]
async fn curl_digest_as_the_seed_documents_do() {
    let w = world().await;
    let url = format!("{}/api/atlas/v2/groups/{}/probe?pretty=true", w.base, w.p1);
    let user = format!("{}:{}", w.owner1.public, w.owner1.private);
    let (code, out) = curl_digest(&user, "GET", &url, None).await;
    assert_eq!(code, 200, "{out}");
    // curl first got the challenge, then answered it.
    assert!(
        out.to_ascii_lowercase()
            .contains("www-authenticate: digest realm=\"mms public api\""),
        "{out}"
    );
    assert_eq!(last_body(&out)["groupId"], w.p1.as_str());

    // A POST with a body, as the export-job seed does (curl sends the body after the challenge).
    let post = format!("{}/api/atlas/v2/groups/{}/probe", w.base, w.p1);
    let (code, out) = curl_digest(&user, "POST", &post, Some(r#"{"snapshotId":"x"}"#)).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(last_body(&out)["echo"]["snapshotId"], "x");

    // Wrong private key: 401 with the Atlas error body and a new challenge.
    let bad = format!("{}:00000000-0000-4000-8000-000000000000", w.owner1.public);
    let (code, out) = curl_digest(&bad, "GET", &url, None).await;
    assert_eq!(code, 401, "{out}");
    let body = last_body(&out);
    assert_eq!(body["error"], 401);
    assert_eq!(body["reason"], "Unauthorized");
    // Unknown public key.
    let (code, _) = curl_digest("nobodyxx:secret", "GET", &url, None).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn no_credentials_get_a_digest_challenge_and_atlas_error_body() {
    let w = world().await;
    let resp = reqwest::get(format!("{}/api/atlas/v2/groups/{}/probe", w.base, w.p1))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Digest realm=\"MMS Public API\""),
        "{challenge}"
    );
    assert!(challenge.contains("qop=\"auth\""));
    assert!(challenge.contains("algorithm=MD5"));
    assert!(challenge.contains("opaque=\""));
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], 401);
    assert_eq!(body["errorCode"], "UNAUTHORIZED");
    // A Basic credential is not accepted for the Admin API.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/atlas/v2/groups/{}/probe", w.base, w.p1))
        .basic_auth(&w.owner1.public, Some(&w.owner1.private))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

fn digest_header(key: &Key, method: &str, uri: &str, nonce: &str, opaque: &str, nc: u32) -> String {
    let ha1 = digest::ha1(&key.public, REALM, &key.private);
    let ha2 = digest::ha2(method, uri);
    let nc = format!("{nc:08x}");
    let cnonce = "0a4f113b";
    let response = digest::response(&ha1, nonce, &nc, cnonce, "auth", &ha2);
    format!(
        "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\", opaque=\"{opaque}\"",
        key.public
    )
}

async fn send(base: &str, uri: &str, authorization: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}{uri}"))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn expired_nonce_is_stale_and_replayed_nonce_count_is_refused() {
    let w = world().await;
    let uri = format!("/api/atlas/v2/groups/{}/probe", w.p1);
    let opaque = w.auth.nonces().opaque().to_string();

    // A nonce this deployment signed an hour ago, answered correctly: 401 stale=true.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = w.auth.nonces().issue_at(now - 3600);
    let resp = send(
        &w.base,
        &uri,
        &digest_header(&w.owner1, "GET", &uri, &old, &opaque, 1),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("stale=true"), "{challenge}");
    // The same old nonce with a wrong password is not stale: the password is wrong.
    let wrong = Key {
        public: w.owner1.public.clone(),
        private: "wrong".into(),
    };
    let resp = send(
        &w.base,
        &uri,
        &digest_header(&wrong, "GET", &uri, &old, &opaque, 1),
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert!(
        !resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("stale=true")
    );

    // The fresh nonce of the stale challenge works; the same nonce count twice does not.
    let nonce = param(&challenge, "nonce").to_string();
    let first = digest_header(&w.owner1, "GET", &uri, &nonce, &opaque, 1);
    assert_eq!(send(&w.base, &uri, &first).await.status(), 200);
    let replay = send(&w.base, &uri, &first).await;
    assert_eq!(replay.status(), 401);
    assert!(
        !replay.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("stale=true")
    );
    // The next count is accepted, and counts may arrive out of order but never twice.
    let third = digest_header(&w.owner1, "GET", &uri, &nonce, &opaque, 3);
    assert_eq!(send(&w.base, &uri, &third).await.status(), 200);
    let second = digest_header(&w.owner1, "GET", &uri, &nonce, &opaque, 2);
    assert_eq!(send(&w.base, &uri, &second).await.status(), 200);
    assert_eq!(send(&w.base, &uri, &second).await.status(), 401);

    // A nonce this deployment never issued, and a digest for another URI, are refused.
    let forged = digest_header(&w.owner1, "GET", &uri, "bm90LW91cnM", &opaque, 1);
    assert_eq!(send(&w.base, &uri, &forged).await.status(), 401);
    let other_uri = format!("/api/atlas/v2/groups/{}/probe", w.p2);
    let moved = digest_header(&w.owner1, "GET", &other_uri, &nonce, &opaque, 9);
    assert_eq!(send(&w.base, &uri, &moved).await.status(), 401);
}

#[tokio::test]
async fn roles_and_project_isolation() {
    let w = world().await;
    let read = |p: &str| format!("{}/api/atlas/v2/groups/{p}/probe", w.base);
    let user = |k: &Key| format!("{}:{}", k.public, k.private);

    // Read only: may read, may not write (403 USER_UNAUTHORIZED).
    assert_eq!(
        curl_digest(&user(&w.reader1), "GET", &read(&w.p1), None)
            .await
            .0,
        200
    );
    let (code, out) = curl_digest(&user(&w.reader1), "POST", &read(&w.p1), Some("{}")).await;
    assert_eq!(code, 403, "{out}");
    assert_eq!(last_body(&out)["errorCode"], "USER_UNAUTHORIZED");
    // Project owner implies backup manager.
    assert_eq!(
        curl_digest(&user(&w.owner1), "POST", &read(&w.p1), Some("{}"))
            .await
            .0,
        200
    );

    // A key of p1 sees nothing of p2: the same 404 as for a project that does not exist.
    let (code, out) = curl_digest(&user(&w.owner1), "GET", &read(&w.p2), None).await;
    assert_eq!(code, 404, "{out}");
    let foreign = last_body(&out);
    assert_eq!(foreign["errorCode"], "GROUP_NOT_FOUND");
    let missing_id = "0123456789abcdef01234567";
    let (code, out) = curl_digest(&user(&w.owner1), "GET", &read(missing_id), None).await;
    assert_eq!(code, 404);
    let missing = last_body(&out);
    assert_eq!(
        foreign["detail"].as_str().unwrap().replace(&w.p2, "ID"),
        missing["detail"]
            .as_str()
            .unwrap()
            .replace(missing_id, "ID")
    );

    // The org owner reaches every project of its org, writes included; not another org's.
    for p in [&w.p1, &w.p2] {
        assert_eq!(
            curl_digest(&user(&w.org_owner), "POST", &read(p), Some("{}"))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        curl_digest(&user(&w.stranger), "GET", &read(&w.p1), None)
            .await
            .0,
        404
    );
    // Organization routes: the org's own keys with an org role, nobody else.
    let org_url = format!("{}/api/atlas/v2/orgs/{}/probe", w.base, w.org);
    assert_eq!(
        curl_digest(&user(&w.org_owner), "GET", &org_url, None)
            .await
            .0,
        200
    );
    assert_eq!(
        curl_digest(&user(&w.stranger), "GET", &org_url, None)
            .await
            .0,
        404
    );
    assert_eq!(
        curl_digest(&user(&w.owner1), "GET", &org_url, None).await.0,
        403
    );
}

#[tokio::test]
async fn oauth_client_credentials_then_bearer_then_revoke() {
    let w = world().await;
    let sa = w
        .auth
        .create_service_account(&w.org, Some(&w.p1), &[Role::GroupReadOnly], "ci")
        .await
        .unwrap();
    assert!(sa.client_id.starts_with("mdb_sa_id_"));
    let client = reqwest::Client::new();
    let token_url = format!("{}/api/oauth/token", w.base);
    let resp = client
        .post(&token_url)
        .basic_auth(&sa.client_id, Some(&sa.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send_checked()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap().to_string();

    let read = format!("{}/api/atlas/v2/groups/{}/probe", w.base, w.p1);
    let resp = client.get(&read).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["principal"], sa.id.as_str());
    // The service account's role applies: read only may not write, and p2 is not its project.
    let resp = client
        .post(&read)
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let p2 = format!("{}/api/atlas/v2/groups/{}/probe", w.base, w.p2);
    assert_eq!(
        client
            .get(&p2)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Secret in the form instead of Basic works too; a wrong secret and a wrong grant do not.
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        sa.client_id, sa.client_secret
    );
    let resp = client
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send_checked()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .post(&token_url)
        .basic_auth(&sa.client_id, Some("mdb_sa_sk_wrong"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send_checked()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let resp = client
        .post(&token_url)
        .basic_auth(&sa.client_id, Some(&sa.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password")
        .send_checked()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    // Revocation: the token stops working at once.
    let resp = client
        .post(format!("{}/api/oauth/revoke", w.base))
        .basic_auth(&sa.client_id, Some(&sa.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send_checked()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client.get(&read).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Digest ")
    );
    // An expired token is refused: issue one, then age it in the database.
    let resp = client
        .post(&token_url)
        .basic_auth(&sa.client_id, Some(&sa.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send_checked()
        .await
        .unwrap();
    let aged = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        client
            .get(&read)
            .bearer_auth(&aged)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    sqlx::query("UPDATE oauth_tokens SET expires_at = 0")
        .execute(w.auth.store().pool())
        .await
        .unwrap();
    assert_eq!(
        client
            .get(&read)
            .bearer_auth(&aged)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // A made-up token is refused the same way.
    let resp = client
        .get(&read)
        .bearer_auth("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

const PYTHON_CLIENT: &str = r#"
import json, sys
import requests
from requests.auth import HTTPDigestAuth

base, group, pub, priv, client_id, client_secret = sys.argv[1:7]
url = f"{base}/api/atlas/v2/groups/{group}/probe"
out = {}
s = requests.Session()
s.auth = HTTPDigestAuth(pub, priv)
# One session reuses the nonce with increasing nonce counts.
out["digest_gets"] = [s.get(url, headers={"Accept": "application/json"}).status_code for _ in range(3)]
r = s.post(url, json={"exportBucketId": "b"})
out["digest_post"] = r.status_code
out["digest_post_echo"] = r.json().get("echo")
out["wrong_password"] = requests.get(url, auth=HTTPDigestAuth(pub, "wrong")).status_code
t = requests.post(f"{base}/api/oauth/token", auth=(client_id, client_secret),
                  data={"grant_type": "client_credentials"})
out["token_status"] = t.status_code
tok = t.json()
out["token_type"] = tok.get("token_type")
out["expires_in"] = tok.get("expires_in")
r = requests.get(url, headers={"Authorization": "Bearer " + tok["access_token"]})
out["bearer_get"] = r.status_code
print(json.dumps(out))
"#;

#[tokio::test]
async fn python_requests_digest_and_bearer() {
    let Some(python) = support::python() else {
        return;
    };
    let w = world().await;
    let sa = w
        .auth
        .create_service_account(&w.org, Some(&w.p1), &[Role::GroupOwner], "py")
        .await
        .unwrap();
    let out = tokio::process::Command::new(python)
        .args(["-c", PYTHON_CLIENT, &w.base, &w.p1])
        .args([
            &w.owner1.public,
            &w.owner1.private,
            &sa.client_id,
            &sa.client_secret,
        ])
        .output()
        .await
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["digest_gets"], json!([200, 200, 200]), "{r}");
    assert_eq!(r["digest_post"], 200, "{r}");
    assert_eq!(r["digest_post_echo"], json!({"exportBucketId": "b"}));
    assert_eq!(r["wrong_password"], 401);
    assert_eq!(r["token_status"], 200);
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(r["expires_in"], 3600);
    assert_eq!(r["bearer_get"], 200);
}

/// Two nodes on one PostgreSQL database with the same key: a nonce issued by one is accepted
/// by the other, and a request accepted by one cannot be replayed against the other.
#[tokio::test]
async fn two_nodes_share_nonces_and_replay_protection_on_postgres() {
    let Some(url) = support::postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url).await.unwrap();
    let w = world_on(store, dir).await;
    let store_b = Store::open(&url).await.unwrap();
    let auth_b = AuthService::new(store_b, w.auth.secrets().clone());
    auth_b.verify_deployment_key().await.unwrap();
    let base_b = serve(auth_b).await;

    let uri = format!("/api/atlas/v2/groups/{}/probe", w.p1);
    let challenge_a = reqwest::get(format!("{}{uri}", w.base)).await.unwrap();
    let challenge_a = challenge_a.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = param(&challenge_a, "nonce");
    let opaque = param(&challenge_a, "opaque");
    let h1 = digest_header(&w.owner1, "GET", &uri, nonce, opaque, 1);
    assert_eq!(
        send(&base_b, &uri, &h1).await.status(),
        200,
        "node B accepts node A's nonce"
    );
    assert_eq!(
        send(&w.base, &uri, &h1).await.status(),
        401,
        "replay on node A refused"
    );
    let h2 = digest_header(&w.owner1, "GET", &uri, nonce, opaque, 2);
    assert_eq!(send(&w.base, &uri, &h2).await.status(), 200);

    // curl against node B with a key created through node A's service.
    let user = format!("{}:{}", w.reader1.public, w.reader1.private);
    assert_eq!(
        curl_digest(&user, "GET", &format!("{base_b}{uri}"), None)
            .await
            .0,
        200
    );

    // A node with another key refuses to start on this database.
    let store_c = Store::open(&url).await.unwrap();
    let auth_c = AuthService::new(store_c, SecretBox::from_key([42u8; 32]));
    assert!(auth_c.verify_deployment_key().await.is_err());
}

/// The same captured request sent many times at once is accepted exactly once.
#[tokio::test]
async fn concurrent_replays_of_one_request_succeed_exactly_once() {
    let w = world().await;
    let uri = format!("/api/atlas/v2/groups/{}/probe", w.p1);
    let challenge = reqwest::get(format!("{}{uri}", w.base)).await.unwrap();
    let challenge = challenge.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let header = digest_header(
        &w.owner1,
        "GET",
        &uri,
        param(&challenge, "nonce"),
        param(&challenge, "opaque"),
        1,
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (base, uri, header) = (w.base.clone(), uri.clone(), header.clone());
        tasks.push(tokio::spawn(async move {
            send(&base, &uri, &header).await.status().as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, [200, 401, 401, 401, 401, 401, 401, 401]);
}

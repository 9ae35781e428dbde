//! The HTTP edge and the files at rest (issue 9, parts 4 and 5), on a real server over
//! loopback and on the built binary: a slowloris client is cut off, framing and body limits
//! answer with the Atlas error body, a wrong method gets 405 after authentication, a burst
//! over the rate limit gets 429 with `RateLimit-*` and `Retry-After`, `links` ignore a hostile
//! `Host`, debug logs hold no query string or header, and the data directory, database files
//! and `secret.key` are owner-only (and a readable key is refused).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::openapi::{self, SendChecked};
use crate::support::spec_schema::validate;
use serde_json::{Value, json};
use snapex::auth::Role;
use snapex::cli::serve::{RunningServer, ServerConfig, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const V2023: &str = "application/vnd.atlas.2023-01-01+json";

// ---------------------------------------------------------------------------------------------
// A server in this process.

struct App {
    _dir: tempfile::TempDir,
    server: RunningServer,
    token: String,
    org_id: String,
    group_id: String,
}

impl App {
    async fn start(edit: impl FnOnce(&mut ServerConfig)) -> App {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::for_data_dir(dir.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.deployment.node_id = format!("edge-{}", snapex::store::new_id());
        edit(&mut config);
        let server = start(config).await.unwrap();
        let org = server.store.create_org("Acme").await.unwrap();
        let project = server.store.create_project(&org.id, "Edge").await.unwrap();
        let token = token_for(&server, &org.id, &project.id).await;
        App {
            _dir: dir,
            server,
            token,
            org_id: org.id,
            group_id: project.id,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn project_path(&self) -> String {
        format!("/api/atlas/v2/groups/{}", self.group_id)
    }

    fn buckets_path(&self) -> String {
        format!(
            "/api/atlas/v2/groups/{}/backup/exportBuckets",
            self.group_id
        )
    }
}

/// A Project Owner bearer token of a new service account.
async fn token_for(server: &RunningServer, org_id: &str, group_id: &str) -> String {
    let sa = server
        .auth
        .create_service_account(org_id, Some(group_id), &[Role::GroupOwner], "edge")
        .await
        .unwrap();
    server
        .auth
        .issue_token(&sa.client_id, &sa.client_secret)
        .await
        .unwrap()
        .access_token
}

/// The Atlas error body: every field, the status in it, the code in `X-Error-Code`, and the
/// spec's `ApiError` schema.
fn assert_atlas_error(
    status: u16,
    headers: &[(String, String)],
    body: &Value,
    want: u16,
    code: &str,
) {
    assert_eq!(status, want, "{body}");
    for field in ["error", "errorCode", "detail", "reason", "parameters"] {
        assert!(body.get(field).is_some(), "no {field} in {body}");
    }
    assert_eq!(body["error"], want, "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    assert!(body["parameters"].is_array(), "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    assert!(!body["reason"].as_str().unwrap().is_empty(), "{body}");
    assert_eq!(header(headers, "x-error-code"), Some(code));
    assert_eq!(header(headers, "content-type"), Some("application/json"));
    validate(body, "ApiError", code);
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

/// Sends `req`; the answer is checked against the OpenAPI document.
async fn send(req: reqwest::RequestBuilder) -> (u16, Vec<(String, String)>, Value) {
    let resp = req.send_checked().await.unwrap();
    let status = resp.status().as_u16();
    let headers = pairs(resp.headers());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// [`send`] for a request the OpenAPI document cannot describe: a method the path does not
/// have (405) or a path that is not the API's (404). Its answer is still checked by
/// [`assert_atlas_error`] against the spec's `ApiError`.
async fn send_unchecked(req: reqwest::RequestBuilder) -> (u16, Vec<(String, String)>, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = pairs(resp.headers());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// One request written as raw bytes (with `Connection: close`), the answer read to its end.
/// Not checked against the OpenAPI document: these requests are what no HTTP client sends
/// (chunked bodies over the limit, header floods, request heads cut short), answered at the
/// edge; the tests check those answers against the spec's `ApiError` themselves.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Vec<(String, String)>, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out))
        .await
        .expect("the server answers within 30 s")
        .unwrap();
    parse_response(&out)
}

/// Checks an answer [`raw`] read against the OpenAPI document, for the raw requests that are
/// well-formed ones a client could send (a hostile `Host`, a prompt request beside a slow one).
fn check_raw(method: &str, path: &str, status: u16, headers: &[(String, String)], body: &Value) {
    openapi::check_response(method, path, status, header(headers, "content-type"), body);
}

fn parse_response(bytes: &[u8]) -> (u16, Vec<(String, String)>, Value) {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, headers, body)
}

// ---------------------------------------------------------------------------------------------
// Timeouts.

/// A client that sends a request head one byte at a time, never finishing it, is disconnected
/// by the default header-read timeout (10 s), while a prompt client on the same server is
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_disconnected_by_the_header_read_timeout() {
    let app = App::start(|_| {}).await;
    let mut stream = tokio::net::TcpStream::connect(app.server.addr)
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: snapex\r\nX-Slow: ")
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    let dripper = tokio::spawn(async move {
        // A byte every 300 ms, forever: far below any rate that completes the header.
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if write.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let cut = tokio::time::timeout(Duration::from_secs(40), async {
        let mut buf = [0u8; 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // A 408 or similar before the close is fine; keep reading to the end.
                Ok(_) => continue,
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    dripper.abort();
    assert!(
        cut.is_ok(),
        "a slowloris connection was still open after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(40),
        "cut off only after {elapsed:?}"
    );
    // A prompt client still gets its answer.
    let (status, headers, body) = raw(
        app.server.addr,
        b"GET /healthz HTTP/1.1\r\nHost: snapex\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    check_raw("GET", "/healthz", status, &headers, &body);
    app.server.shutdown().await.unwrap();
}

/// A request body that stops arriving fails with 408 and the Atlas body once the idle timeout
/// has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_gets_408() {
    let app = App::start(|c| c.edge.idle_timeout = Duration::from_secs(1)).await;
    let mut stream = tokio::net::TcpStream::connect(app.server.addr)
        .await
        .unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: snapex\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"cloud",
        app.buckets_path(),
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out))
        .await
        .expect("the server answers a stalled body")
        .unwrap();
    let (status, headers, body) = parse_response(&out);
    assert_atlas_error(status, &headers, &body, 408, "REQUEST_TIMEOUT");
    app.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Limits and statuses with the Atlas body.

/// Over the body limit: 413 with the Atlas body, whether the length is declared (answered at
/// the edge, before authentication) or the body is chunked (answered when read, after
/// authentication). At the limit the request goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_413_with_the_atlas_body() {
    let app = App::start(|c| c.edge.max_body_bytes = 4096).await;
    let client = reqwest::Client::new();
    let padded = |size: usize| {
        let mut body = json!({"cloudProvider": "FILESYSTEM", "bucketName": "b"}).to_string();
        body.insert_str(1, &" ".repeat(size - body.len()));
        body
    };
    let post = |body: String| {
        client
            .post(app.url(&app.buckets_path()))
            .header("accept", "application/vnd.atlas.2024-05-30+json")
            .header("content-type", "application/json")
            .body(body)
    };
    let (status, headers, body) = send(post(padded(4097)).bearer_auth(&app.token)).await;
    assert_atlas_error(status, &headers, &body, 413, "REQUEST_BODY_TOO_LARGE");
    assert_eq!(body["parameters"], json!([4096]));
    // Declared too large: refused before authentication.
    let (status, headers, body) = send(post(padded(4097))).await;
    assert_atlas_error(status, &headers, &body, 413, "REQUEST_BODY_TOO_LARGE");
    // At the limit: created.
    let (status, _, body) = send(post(padded(4096)).bearer_auth(&app.token)).await;
    assert_eq!(status, 200, "{body}");

    // Chunked, no declared length: refused while read.
    let chunk = padded(6000);
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: snapex\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n0\r\n\r\n",
        app.buckets_path(),
        app.token,
        chunk.len()
    );
    let (status, headers, body) = raw(app.server.addr, request.as_bytes()).await;
    assert_atlas_error(status, &headers, &body, 413, "REQUEST_BODY_TOO_LARGE");
    // The same without credentials: 401 first.
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: snapex\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        app.buckets_path(),
        chunk.len()
    );
    let (status, _, body) = raw(app.server.addr, request.as_bytes()).await;
    assert_eq!(status, 401, "{body}");
    app.server.shutdown().await.unwrap();
}

/// A wrong method on an existing path: 405 with the Atlas body and `Allow` once authenticated;
/// 401 (and no `Allow`) before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_gets_405_with_the_atlas_body_after_authentication() {
    let app = App::start(|_| {}).await;
    let client = reqwest::Client::new();
    let put = || {
        client
            .put(app.url(&app.buckets_path()))
            .header("accept", V2023)
    };
    let (status, headers, body) = send_unchecked(put().bearer_auth(&app.token)).await;
    assert_atlas_error(status, &headers, &body, 405, "METHOD_NOT_ALLOWED");
    let allow = header(&headers, "allow").expect("an Allow header");
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow}"
    );
    let (status, headers, body) = send_unchecked(put()).await;
    assert_atlas_error(status, &headers, &body, 401, "UNAUTHORIZED");
    assert_eq!(header(&headers, "allow"), None);
    // An unknown path is still a 404.
    let (status, headers, body) =
        send_unchecked(client.put(app.url("/api/atlas/v2/nothing"))).await;
    assert_atlas_error(status, &headers, &body, 404, "RESOURCE_NOT_FOUND");
    app.server.shutdown().await.unwrap();
}

/// A request target or a header section over the limits: 414 and 431 with the Atlas body,
/// before authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_target_gets_414_and_large_headers_get_431() {
    let app = App::start(|_| {}).await;
    let client = reqwest::Client::new();
    let long = format!("{}?pageNum=1&x={}", app.buckets_path(), "a".repeat(9000));
    let (status, headers, body) = send(client.get(app.url(&long)).header("accept", V2023)).await;
    assert_atlas_error(status, &headers, &body, 414, "REQUEST_URI_TOO_LONG");
    let (status, headers, body) = send(
        client
            .get(app.url(&app.buckets_path()))
            .bearer_auth(&app.token)
            .header("accept", V2023)
            .header("x-big", "b".repeat(40 * 1024)),
    )
    .await;
    assert_atlas_error(status, &headers, &body, 431, "REQUEST_HEADERS_TOO_LARGE");
    app.server.shutdown().await.unwrap();
}

/// A path whose percent-escapes decode to bytes that are not UTF-8 (found by the probes around
/// scripts/schemathesis): 400 with the Atlas body, as JSON like every other error — not the
/// router's plain-text rejection — whichever route it would have reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_is_not_utf8_once_decoded_gets_400_with_the_atlas_body() {
    let app = App::start(|_| {}).await;
    let client = reqwest::Client::new();
    for path in [
        "/api/atlas/v2/groups/%FF%FE".to_string(),
        format!("{}/clusters/c%C3", app.project_path()),
        format!("{}/%E9t%E9", app.buckets_path()),
    ] {
        let (status, headers, body) = send(
            client
                .get(app.url(&path))
                .bearer_auth(&app.token)
                .header("accept", V2023),
        )
        .await;
        assert_atlas_error(status, &headers, &body, 400, "INVALID_PATH");
    }
    // Escapes of UTF-8 are decoded and routed as before.
    let (status, _, body) = send(
        client
            .get(app.url(&format!("{}/clusters/caf%C3%A9", app.project_path())))
            .bearer_auth(&app.token)
            .header("accept", V2023),
    )
    .await;
    assert_ne!(status, 400, "{body}");
    app.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Rate limiting.

/// With a burst of 3 at 1 request per second, a quick burst runs out: 429 with the Atlas body,
/// `Retry-After` and `RateLimit-*`; the answers before it count down `RateLimit-Remaining`.
/// Another service account has its own bucket; unauthenticated requests take nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_rate_limit_gets_429_with_rate_limit_headers() {
    let app = App::start(|c| {
        c.edge.rate_limit = Some(snapex::api::edge::RateLimit {
            per_second: 1,
            burst: 3,
        })
    })
    .await;
    let client = reqwest::Client::new();
    let get = |token: Option<&str>| {
        let req = client
            .get(app.url(&app.project_path()))
            .header("accept", V2023);
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    };
    // Unauthenticated: 401, no quota taken, no quota shown.
    for _ in 0..5 {
        let (status, headers, _) = send(get(None)).await;
        assert_eq!(status, 401);
        assert_eq!(header(&headers, "ratelimit-limit"), None);
    }
    let mut answers = Vec::new();
    for _ in 0..20 {
        let answer = send(get(Some(&app.token))).await;
        let refused = answer.0 == 429;
        answers.push(answer);
        if refused {
            break;
        }
    }
    let (status, headers, body) = &answers[0];
    assert_eq!(*status, 200, "{body}");
    assert_eq!(header(headers, "ratelimit-limit"), Some("3"));
    assert_eq!(header(headers, "ratelimit-remaining"), Some("2"));
    assert!(header(headers, "ratelimit-reset").is_some());
    let (status, headers, body) = answers.last().unwrap();
    assert_atlas_error(*status, headers, body, 429, "RATE_LIMITED");
    let retry: u64 = header(headers, "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    assert_eq!(header(headers, "ratelimit-limit"), Some("3"));
    assert_eq!(header(headers, "ratelimit-remaining"), Some("0"));
    let reset: u64 = header(headers, "ratelimit-reset").unwrap().parse().unwrap();
    assert!((1..=3).contains(&reset), "RateLimit-Reset: {reset}");
    assert!(answers.len() >= 4, "refused before the burst was spent");

    let other = token_for(&app.server, &app.org_id, &app.group_id).await;
    let (status, headers, body) = send(get(Some(&other))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "ratelimit-remaining"), Some("2"));
    app.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Links.

/// `links` are built from the configured public URL (with its path prefix), and without one
/// from the bound address: never from a hostile `Host` header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_ignore_a_hostile_host_header() {
    for public in [Some("https://snapex.example.com/backup"), None] {
        let app = App::start(|c| {
            c.edge.public_url = public.map(str::to_string);
        })
        .await;
        let base = public.map_or_else(|| app.server.url(), str::to_string);
        for path in [app.project_path(), app.buckets_path()] {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\n\
                 Authorization: Bearer {}\r\nAccept: {V2023}\r\nConnection: close\r\n\r\n",
                app.token
            );
            let (status, headers, body) = raw(app.server.addr, request.as_bytes()).await;
            assert_eq!(status, 200, "{body}");
            check_raw("GET", &path, status, &headers, &body);
            let links = body["links"].as_array().expect("links");
            assert!(!links.is_empty());
            for link in links {
                let href = link["href"].as_str().unwrap();
                assert!(
                    href.starts_with(&format!("{base}/api/atlas/v2/groups/")),
                    "{href} does not start with {base}"
                );
                assert!(!href.contains("evil"), "{href}");
            }
        }
        app.server.shutdown().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The binary: logs and files at rest.

/// Kills the server it holds when dropped, whatever the test's outcome.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `snapex ARGS --data-dir DIR` under umask 000, so that only the modes snapex sets itself
/// can make its files private.
fn snapex_cmd(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_snapex"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SNAPEX_SECRET_KEY")
        .env_remove("SNAPEX_DATABASE")
        .env_remove("SNAPEX_CONFIG")
        .env_remove("RUST_LOG");
    cmd
}

async fn wait_healthy(base: &str, server: &mut Serve) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send_checked().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("snapex serve exited with {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("snapex serve did not become healthy");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory 0700; the database, its `-wal`/`-shm` (those present) and
/// `secret.key` 0600.
fn assert_owner_only(data_dir: &Path, expect_wal: bool) {
    assert_eq!(mode(data_dir), 0o700, "{}", data_dir.display());
    for name in ["snapex.db", "secret.key"] {
        assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
    }
    for name in ["snapex.db-wal", "snapex.db-shm"] {
        let path = data_dir.join(name);
        if expect_wal {
            assert!(path.exists(), "{name} exists while the server runs");
        }
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
}

/// `snapex serve` on a new data directory, under umask 000: the directory and every file in it
/// that holds a secret are owner-only while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_its_files_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Serve(
        snapex_cmd(&data_dir, &["serve", "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(&format!("http://{listen}"), &mut server).await;
    assert_owner_only(&data_dir, true);
}

/// `snapex keys create` (and the commands before it) on a new data directory, under umask 000:
/// the same modes.
#[test]
fn keys_create_creates_its_files_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let json = |args: &[&str]| -> Value {
        let out = snapex_cmd(&data_dir, args).output().unwrap();
        assert!(
            out.status.success(),
            "snapex {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let org = json(&["orgs", "create", "acme", "--json"]);
    let org = org["id"].as_str().unwrap();
    let project = json(&["projects", "create", "--org", org, "one", "--json"]);
    let project = project["id"].as_str().unwrap();
    let key = json(&[
        "keys",
        "create",
        "--org",
        org,
        "--project",
        project,
        "--role",
        "GROUP_READ_ONLY",
        "--json",
    ]);
    assert!(key["privateKey"].is_string());
    assert_owner_only(&data_dir, false);
}

/// A `secret.key` that group may read: `serve` and `keys create` refuse to start, naming the
/// file; once it is 0600 the server starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_readable_secret_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let key = data_dir.join("secret.key");
    std::fs::write(&key, "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = snapex_cmd(&data_dir, &["serve", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("snapex serve started with a group-readable secret.key");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains(&key.display().to_string()) && stderr.contains("group or others"),
        "{stderr}"
    );

    let out = snapex_cmd(
        &data_dir,
        &[
            "keys",
            "create",
            "--org",
            "0123456789abcdef01234567",
            "--role",
            "ORG_OWNER",
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&key.display().to_string()), "{stderr}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut server = Serve(
        snapex_cmd(&data_dir, &["serve", "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(&format!("http://{listen}"), &mut server).await;
}

/// With every log on (`RUST_LOG=trace`), a request's query string and headers (its
/// `Authorization`, a cookie) appear nowhere in the server's output, while its path does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_name_the_path_but_no_query_or_header() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let log = tmp.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut server = Serve(
        snapex_cmd(&data_dir, &["serve", "--listen", &listen])
            .env("RUST_LOG", "trace")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{listen}");
    wait_healthy(&base, &mut server).await;
    let client = reqwest::Client::new();
    let (status, _, _) = send(
        client
            .get(format!(
                "{base}/api/atlas/v2/groups/0123456789abcdef01234567?pageNum=1&probe=QUERYSECRET42"
            ))
            .bearer_auth("TOKENSECRET42")
            .header("cookie", "session=COOKIESECRET42")
            .header("accept", V2023),
    )
    .await;
    assert_eq!(status, 401);
    // The response is logged when it is sent; give the writer a moment, then stop the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(server);
    let text = strip_ansi(&std::fs::read_to_string(&log).unwrap());
    assert!(
        text.contains("path=/api/atlas/v2/groups/0123456789abcdef01234567"),
        "the request span is not in the debug log:\n{text}"
    );
    for secret in [
        "QUERYSECRET42",
        "TOKENSECRET42",
        "COOKIESECRET42",
        "pageNum",
    ] {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
    }
}

/// `text` without ANSI escape sequences (the text log colours field names).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

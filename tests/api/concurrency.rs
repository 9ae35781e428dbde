//! 200 concurrent clients against a real `snapex serve` on loopback, on the embedded SQLite
//! store (the hard case: one writer at a time, and no request may fail with "database is
//! locked"). Each client is its own HTTP connection pool with its own OAuth bearer token,
//! obtained through `POST /api/oauth/token` by all clients at once. For
//! `SNAPEX_TEST_LOAD_SECONDS` (default 60) every client loops over: create a FILESYSTEM export
//! bucket and read it back, register a cluster and read it back, and list buckets and clusters
//! with varying `pageNum`/`itemsPerPage`.
//!
//! What must hold: every response is the expected 200 (a transport error counts as a failure
//! too); a client sees its own writes (the read-back, and `totalCount` at least its own
//! creates); and afterwards, walking every page of both lists through their `next` links, every
//! created id is listed exactly once, nothing else is listed, and `totalCount` agrees.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::atlas::{V2023, V2024_05, link};
use crate::support::deployment::TestDeployment;
use crate::support::openapi::{self, SendChecked};

const CLIENTS: usize = 200;
/// Failure messages kept per client; every failure is still counted.
const KEPT_PER_CLIENT: usize = 3;

fn load_duration() -> Duration {
    let secs = std::env::var("SNAPEX_TEST_LOAD_SECONDS")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("SNAPEX_TEST_LOAD_SECONDS={s}: expected whole seconds"))
        })
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// What the clients share: the server's URL, the project, and the end of the run.
struct Target {
    base: String,
    group_id: String,
    deadline: Instant,
}

impl Target {
    fn buckets(&self) -> String {
        format!(
            "{}/api/atlas/v2/groups/{}/backup/exportBuckets",
            self.base, self.group_id
        )
    }
    fn clusters(&self) -> String {
        format!(
            "{}/api/atlas/v2/groups/{}/clusters",
            self.base, self.group_id
        )
    }
    fn register_cluster(&self) -> String {
        format!(
            "{}/api/snapex/v1/groups/{}/clusters",
            self.base, self.group_id
        )
    }
}

/// One client's record of the run.
#[derive(Default)]
struct Outcome {
    /// id → name of every bucket / cluster this client created (answered 200).
    buckets: Vec<(String, String)>,
    clusters: Vec<(String, String)>,
    requests: u64,
    failures: u64,
    /// `METHOD route STATUS errorCode` → count, for the report.
    failure_kinds: BTreeMap<String, u64>,
    kept: Vec<String>,
}

impl Outcome {
    fn fail(&mut self, kind: String, message: String) {
        self.failures += 1;
        *self.failure_kinds.entry(kind).or_default() += 1;
        if self.kept.len() < KEPT_PER_CLIENT {
            self.kept.push(message);
        }
    }
}

/// One HTTP client with its bearer token. Not `support::atlas::AtlasClient`, which panics on
/// the first unexpected answer: under load every failure is counted and classified instead, so
/// that the report shows all of them.
struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    /// Sends a request and returns the body when the status is 200; otherwise records the
    /// failure under `route` (the path without ids) and returns `None`.
    async fn ok(
        &self,
        out: &mut Outcome,
        method: reqwest::Method,
        route: &str,
        url: &str,
        accept: &str,
        body: Option<&Value>,
    ) -> Option<Value> {
        out.requests += 1;
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.token)
            .header("accept", accept);
        if let Some(b) = body {
            req = req.header("content-type", accept).body(b.to_string());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                out.fail(
                    format!("{method} {route} transport"),
                    format!("{method} {url}: transport error: {e:?}"),
                );
                return None;
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                out.fail(
                    format!("{method} {route} {status} body"),
                    format!("{method} {url}: {status}, body unreadable: {e:?}"),
                );
                return None;
            }
        };
        // A violation of the OpenAPI document is one more classified failure, not a panic.
        let path = openapi::path_and_query(&reqwest::Url::parse(url).expect("a request URL"));
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        if let Err(v) = openapi::try_check_response(
            method.as_str(),
            &path,
            status.as_u16(),
            content_type,
            &text,
        ) {
            out.fail(format!("{method} {route} openapi"), v.to_string());
            return None;
        }
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status != reqwest::StatusCode::OK {
            let code = value
                .as_ref()
                .and_then(|v| v["errorCode"].as_str())
                .unwrap_or("-")
                .to_string();
            out.fail(
                format!("{method} {route} {} {code}", status.as_u16()),
                format!("{method} {url}: {status}: {text}"),
            );
            return None;
        }
        match value {
            Some(v) => Some(v),
            None => {
                out.fail(
                    format!("{method} {route} 200 not-json"),
                    format!("{method} {url}: 200 with a body that is not JSON: {text}"),
                );
                None
            }
        }
    }
}

/// Checks one list page seen during the run: 200, at most `items_per_page` results, no id
/// twice, a count no smaller than this client's own creates (read your writes).
fn check_page(
    out: &mut Outcome,
    what: &str,
    id_field: &str,
    page: &Value,
    items_per_page: usize,
    own_creates: usize,
) {
    let Some(results) = page["results"].as_array() else {
        out.fail(
            format!("list {what} shape"),
            format!("{what}: no results: {page}"),
        );
        return;
    };
    let ids: HashSet<&str> = results
        .iter()
        .filter_map(|r| r[id_field].as_str())
        .collect();
    if results.len() > items_per_page || ids.len() != results.len() {
        out.fail(
            format!("list {what} page"),
            format!(
                "{what}: {} results ({} distinct ids) for itemsPerPage={items_per_page}",
                results.len(),
                ids.len()
            ),
        );
    }
    match page["totalCount"].as_u64() {
        Some(total) if total as usize >= own_creates => {}
        other => out.fail(
            format!("list {what} totalCount"),
            format!("{what}: totalCount {other:?} but this client alone created {own_creates}"),
        ),
    }
}

/// One client's loop until the deadline.
async fn run_client(n: usize, target: Arc<Target>, client: Client) -> Outcome {
    let mut out = Outcome::default();
    let mut step = 0usize;
    const PAGE_SIZES: [usize; 5] = [1, 7, 50, 100, 500];
    while Instant::now() < target.deadline {
        step += 1;
        match (n + step) % 4 {
            0 => {
                let name = format!("load-b{n}-{step}");
                let body = json!({"cloudProvider": "FILESYSTEM", "bucketName": name});
                let url = target.buckets();
                let Some(created) = client
                    .ok(
                        &mut out,
                        reqwest::Method::POST,
                        "exportBuckets",
                        &url,
                        V2024_05,
                        Some(&body),
                    )
                    .await
                else {
                    continue;
                };
                let (Some(id), Some(got_name)) =
                    (created["_id"].as_str(), created["bucketName"].as_str())
                else {
                    out.fail(
                        "POST exportBuckets shape".into(),
                        format!("create answered {created}"),
                    );
                    continue;
                };
                if got_name != name || created["cloudProvider"] != "FILESYSTEM" {
                    out.fail(
                        "POST exportBuckets echo".into(),
                        format!("created {name}, answered {created}"),
                    );
                }
                let id = id.to_string();
                out.buckets.push((id.clone(), name.clone()));
                let one = format!("{url}/{id}");
                if let Some(read) = client
                    .ok(
                        &mut out,
                        reqwest::Method::GET,
                        "exportBuckets/{id}",
                        &one,
                        V2024_05,
                        None,
                    )
                    .await
                    && (read["_id"] != id.as_str() || read["bucketName"] != name.as_str())
                {
                    out.fail(
                        "GET exportBuckets/{id} mismatch".into(),
                        format!("{one}: expected {name}, got {read}"),
                    );
                }
            }
            1 => {
                let name = format!("load-c{n}-{step}");
                let body = json!({
                    "name": name,
                    "clusterType": "REPLICASET",
                    "replicaSets": ["rs0"],
                    "labels": [{"key": "client", "value": n.to_string()}],
                });
                let Some(created) = client
                    .ok(
                        &mut out,
                        reqwest::Method::POST,
                        "snapex clusters",
                        &target.register_cluster(),
                        "application/json",
                        Some(&body),
                    )
                    .await
                else {
                    continue;
                };
                let Some(id) = created["id"].as_str() else {
                    out.fail(
                        "POST snapex clusters shape".into(),
                        format!("register answered {created}"),
                    );
                    continue;
                };
                if created["name"] != name.as_str() {
                    out.fail(
                        "POST snapex clusters echo".into(),
                        format!("registered {name}, answered {created}"),
                    );
                }
                let id = id.to_string();
                out.clusters.push((id.clone(), name.clone()));
                let one = format!("{}/{name}", target.clusters());
                if let Some(read) = client
                    .ok(
                        &mut out,
                        reqwest::Method::GET,
                        "clusters/{name}",
                        &one,
                        V2023,
                        None,
                    )
                    .await
                    && (read["id"] != id.as_str() || read["name"] != name.as_str())
                {
                    out.fail(
                        "GET clusters/{name} mismatch".into(),
                        format!("{one}: expected {id}, got {read}"),
                    );
                }
            }
            2 => {
                let per = PAGE_SIZES[step % PAGE_SIZES.len()];
                // Pages 1–3: the first page races new rows in, later ones shift under inserts.
                let page_num = 1 + step % 3;
                let url = format!("{}?pageNum={page_num}&itemsPerPage={per}", target.buckets());
                if let Some(page) = client
                    .ok(
                        &mut out,
                        reqwest::Method::GET,
                        "exportBuckets list",
                        &url,
                        V2024_05,
                        None,
                    )
                    .await
                {
                    let own = out.buckets.len();
                    check_page(&mut out, "exportBuckets", "_id", &page, per, own);
                }
            }
            _ => {
                let per = PAGE_SIZES[(step + 2) % PAGE_SIZES.len()];
                let page_num = 1 + step % 3;
                let url = format!(
                    "{}?pageNum={page_num}&itemsPerPage={per}",
                    target.clusters()
                );
                if let Some(page) = client
                    .ok(
                        &mut out,
                        reqwest::Method::GET,
                        "clusters list",
                        &url,
                        V2023,
                        None,
                    )
                    .await
                {
                    let own = out.clusters.len();
                    check_page(&mut out, "clusters", "id", &page, per, own);
                }
            }
        }
    }
    out
}

/// A bearer token through the OAuth endpoint, client credentials in HTTP Basic.
async fn fetch_token(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    secret: &str,
) -> Result<String, String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let resp = http
        .post(format!("{base}/api/oauth/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send_checked()
        .await
        .map_err(|e| format!("token request: {e:?}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("token body: {e:?}"))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("token: {status}: {text}"));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("token json: {e}: {text}"))?;
    v["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("token: no access_token in {text}"))
}

/// Walks a list from page 1 through its `next` links; returns id → name of every result.
/// Checks each page's `self` link names the page expected, `totalCount` is the same on every
/// page and equals the number of results, and the last page has no `next`.
async fn walk(
    http: &reqwest::Client,
    token: &str,
    first: &str,
    accept: &str,
    id_field: &str,
    items_per_page: usize,
) -> Vec<(String, String)> {
    let mut url = format!("{first}?itemsPerPage={items_per_page}&includeCount=true");
    let mut all = Vec::new();
    let mut total = None;
    let mut page_num = 1u64;
    loop {
        let resp = http
            .get(&url)
            .bearer_auth(token)
            .header("accept", accept)
            .send_checked()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::OK, "GET {url}: {text}");
        let page: Value = serde_json::from_str(&text).unwrap();
        let page_total = page["totalCount"].as_u64().expect("totalCount");
        assert_eq!(*total.get_or_insert(page_total), page_total, "{url}");
        let self_link = link(&page, "self").expect("a self link");
        assert!(
            self_link.contains(&format!("pageNum={page_num}&")),
            "page {page_num} of {first}: self link {self_link}"
        );
        let results = page["results"].as_array().expect("results");
        assert!(results.len() <= items_per_page, "{url}: {}", results.len());
        for r in results {
            all.push((
                r[id_field].as_str().expect("id").to_string(),
                r["name"]
                    .as_str()
                    .or_else(|| r["bucketName"].as_str())
                    .expect("name")
                    .to_string(),
            ));
        }
        match link(&page, "next") {
            Some(next) => {
                assert_eq!(
                    results.len(),
                    items_per_page,
                    "{url}: a page before the last is full"
                );
                page_num += 1;
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(
        Some(all.len() as u64),
        total,
        "{first}: pages walked hold totalCount results"
    );
    all
}

/// Every created (id, name) listed exactly once, and nothing else listed.
fn check_final(what: &str, created: &[(String, String)], listed: &[(String, String)]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (id, _) in listed {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let listed_names: HashMap<&str, &str> = listed
        .iter()
        .map(|(i, n)| (i.as_str(), n.as_str()))
        .collect();
    let created_ids: HashSet<&str> = created.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        created_ids.len(),
        created.len(),
        "{what}: one id answered to two creates"
    );
    let lost: Vec<_> = created
        .iter()
        .filter(|(id, _)| !seen.contains_key(id.as_str()))
        .collect();
    let renamed: Vec<_> = created
        .iter()
        .filter(|(id, name)| listed_names.get(id.as_str()).is_some_and(|n| n != name))
        .collect();
    let unknown: Vec<_> = listed
        .iter()
        .filter(|(id, _)| !created_ids.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty() && duplicated.is_empty() && renamed.is_empty() && unknown.is_empty(),
        "{what}: {} created, {} listed; lost {}: {:?}; duplicated {}: {:?}; wrong name {}: {:?}; \
         listed but never answered 200 {}: {:?}",
        created.len(),
        listed.len(),
        lost.len(),
        lost.iter().take(10).collect::<Vec<_>>(),
        duplicated.len(),
        duplicated.iter().take(10).collect::<Vec<_>>(),
        renamed.len(),
        renamed.iter().take(10).collect::<Vec<_>>(),
        unknown.len(),
        unknown.iter().take(10).collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_create_and_list_without_errors_or_lost_writes() {
    let deployment = TestDeployment::builder()
        .org("Load Org")
        .project("Load Project")
        .create()
        .await;
    let server = deployment
        .start_server(|config| {
            config.deployment.node_id = format!("load-{}", snapex::store::new_id());
            // 200 clients of one service account, as fast as the server goes: no per-key
            // rate limit.
            config.edge.rate_limit = None;
            // The default: SQLite in the data directory.
            assert!(config.database.is_none());
        })
        .await;
    let sa = &deployment.owner;
    let base = server.url();

    // Every client fetches its own token, all at once: concurrent writes to the token table.
    let mut token_tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (base, id, secret) = (base.clone(), sa.client_id.clone(), sa.client_secret.clone());
        token_tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            let token = fetch_token(&http, &base, &id, &secret).await;
            (http, token)
        }));
    }
    let mut clients = Vec::new();
    let mut token_errors = Vec::new();
    for t in token_tasks {
        let (http, token) = t.await.unwrap();
        match token {
            Ok(token) => clients.push(Client { http, token }),
            Err(e) => token_errors.push(e),
        }
    }
    assert!(
        token_errors.is_empty(),
        "{} of {CLIENTS} token requests failed, first: {:?}",
        token_errors.len(),
        token_errors.first()
    );
    let distinct: HashSet<&str> = clients.iter().map(|c| c.token.as_str()).collect();
    assert_eq!(
        distinct.len(),
        CLIENTS,
        "every token request gets its own token"
    );

    let load = load_duration();
    let target = Arc::new(Target {
        base: base.clone(),
        group_id: deployment.group_id.clone(),
        deadline: Instant::now() + load,
    });
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, client)| tokio::spawn(run_client(n, target.clone(), client)))
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let elapsed = started.elapsed();

    let requests: u64 = outcomes.iter().map(|o| o.requests).sum();
    let failures: u64 = outcomes.iter().map(|o| o.failures).sum();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for o in &outcomes {
        for (k, n) in &o.failure_kinds {
            *kinds.entry(k.clone()).or_default() += n;
        }
    }
    let created_buckets: Vec<(String, String)> =
        outcomes.iter().flat_map(|o| o.buckets.clone()).collect();
    let created_clusters: Vec<(String, String)> =
        outcomes.iter().flat_map(|o| o.clusters.clone()).collect();
    eprintln!(
        "load: {CLIENTS} clients for {:.1} s: {requests} requests ({:.0}/s), {} buckets and {} \
         clusters created, {failures} failures",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        created_buckets.len(),
        created_clusters.len(),
    );
    let examples: Vec<&String> = outcomes
        .iter()
        .flat_map(|o| o.kept.iter())
        .take(10)
        .collect();
    assert!(
        failures == 0,
        "{failures} of {requests} requests failed; by kind: {kinds:#?}; first: {examples:#?}"
    );
    assert!(
        !created_buckets.is_empty() && !created_clusters.is_empty(),
        "the run created buckets and clusters"
    );

    // Every page of both lists, through the links, with a page size that does not divide the
    // counts and with the largest one.
    let http = reqwest::Client::new();
    let token = fetch_token(&http, &base, &sa.client_id, &sa.client_secret)
        .await
        .unwrap();
    for per in [37, 500] {
        let listed = walk(&http, &token, &target.buckets(), V2024_05, "_id", per).await;
        check_final("export buckets", &created_buckets, &listed);
        let listed = walk(&http, &token, &target.clusters(), V2023, "id", per).await;
        check_final("clusters", &created_clusters, &listed);
    }
    server.shutdown().await.unwrap();
}

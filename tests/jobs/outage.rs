//! Short object-store outages (issue 10): an S3 store (moto) behind a TCP proxy that stops
//! listening mid-export — new connections are refused, open ones are cut — and later listens
//! again on the same port. The export rides out an outage shorter than the retry budget and
//! ends `Successful`; one that outlasts the budget fails the job with the store's error, the
//! time spent and the budget.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::import_fields;
use crate::lifecycle::Moto;
use crate::support::atlas::{AtlasClient, V2023};
use crate::support::deployment::TestDeployment;
use crate::support::{self, sample_dump, wait_until};

const LIMIT: Duration = Duration::from_secs(240);

/// A TCP proxy to `upstream` that can be taken down (its port refuses connections, and the
/// connections it carried are closed) and brought back on the same port.
struct Proxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    stop: CancellationToken,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, mut is_up) = watch::channel(true);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            while !stopped.is_cancelled() {
                if !*is_up.borrow_and_update() {
                    tokio::select! {
                        _ = is_up.changed() => continue,
                        _ = stopped.cancelled() => return,
                    }
                }
                let current = match listener.take() {
                    Some(l) => l,
                    // Back up: the same port again (the kernel allows it at once for a
                    // listener; retried in case it is briefly held).
                    None => match TcpListener::bind(addr).await {
                        Ok(l) => l,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let epoch = CancellationToken::new();
                loop {
                    tokio::select! {
                        accepted = current.accept() => {
                            if let Ok((client, _)) = accepted {
                                tokio::spawn(forward(client, upstream, epoch.clone()));
                            }
                        }
                        _ = is_up.changed() => {
                            if !*is_up.borrow() {
                                break;
                            }
                        }
                        _ = stopped.cancelled() => break,
                    }
                }
                // Down: the listener goes (connections are refused) and so do the open ones.
                drop(current);
                epoch.cancel();
            }
        });
        Proxy { addr, up, stop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn down(&self) {
        let _ = self.up.send(false);
    }

    fn up(&self) {
        let _ = self.up.send(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, epoch: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = epoch.cancelled() => {}
    }
}

/// A deployment whose one node exports to moto through `proxy`, and a job of a `dump_size`
/// snapshot started; returns the job's id and prefix.
async fn export_through(
    d: &TestDeployment,
    api: &AtlasClient,
    moto: &Moto,
    proxy: &Proxy,
    dump_size: &str,
) -> (String, String) {
    let dump = sample_dump(&d.data_dir().join("dump"), dump_size, 12);
    let g = api.group_id.clone();
    api.register_cluster("c1", &["rs0"]).await;
    let role = api
        .ok(
            "POST",
            &format!("/api/snapex/v1/groups/{g}/accessRoles"),
            "application/json",
            Some(json!({
                "provider": "AWS",
                "accessKeyId": std::env::var(support::ENV_S3_ACCESS_KEY).unwrap(),
                "secretAccessKey": std::env::var(support::ENV_S3_SECRET_KEY).unwrap(),
                "endpoint": proxy.url(),
                "region": "us-east-1",
            })),
        )
        .await;
    let bucket = api
        .ok(
            "POST",
            &format!("/api/atlas/v2/groups/{g}/backup/exportBuckets"),
            V2023,
            Some(json!({"cloudProvider": "AWS", "bucketName": moto.bucket, "iamRoleId": role["roleId"]})),
        )
        .await;
    let snap = api
        .import_snapshot("c1", &["rs0"], &dump, import_fields(None))
        .await;
    let job = api
        .create_export(
            "c1",
            snap["id"].as_str().unwrap(),
            bucket["_id"].as_str().unwrap(),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    let prefix = job["prefix"].as_str().unwrap().to_string();
    // Mid-export: a data file of the job is in the bucket.
    wait_until("the first data file", LIMIT, || {
        let prefix = prefix.clone();
        async move {
            moto.keys(&prefix)
                .await
                .iter()
                .any(|k| k.ends_with(".json.gz"))
        }
    })
    .await;
    (id, prefix)
}

fn moto_addr(moto: &Moto) -> SocketAddr {
    let url = url::Url::parse(&moto.endpoint).unwrap();
    let host = url.host_str().unwrap();
    format!("{host}:{}", url.port().unwrap()).parse().unwrap()
}

/// The store refuses connections for 10 s in the middle of an export (far longer than the one
/// second the old retry count lasted): the job waits it out and ends `Successful`, and the
/// export verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_rides_out_a_store_refusing_connections_for_ten_seconds() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let proxy = Proxy::start(moto_addr(&moto)).await;
    let d = TestDeployment::builder().create().await;
    let node = d.start_node("node-a", &[]);
    let api = d.client(&node.url).await;
    let (id, prefix) = export_through(&d, &api, &moto, &proxy, "40MiB").await;
    proxy.down();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = api.job("c1", &id).await;
    assert_eq!(during["state"], "InProgress", "{during}");
    proxy.up();
    let done = api.wait_final("c1", &id, LIMIT).await;
    assert_eq!(done["state"], "Successful", "{done}\n{}", node.log());
    let keys = moto.keys(&prefix).await;
    assert!(keys.iter().any(|k| k.ends_with("/.complete")), "{keys:?}");
    let url = format!("s3://{}/{prefix}", moto.bucket);
    let out = std::process::Command::new(support::bin())
        .arg("verify")
        .arg(&url)
        .envs(support::child_env("s3"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify {url}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The store goes down for good with a 3 s budget: the job fails — not before the budget, with
/// the store's error (a refused connection), the time spent and the budget in its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stays_down_fails_the_job_after_the_budget_with_the_error() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let proxy = Proxy::start(moto_addr(&moto)).await;
    let d = TestDeployment::builder().create().await;
    let node = d.start_node("node-a", &["--store-retry-seconds", "3"]);
    assert!(
        node.log().contains("store_retry_seconds = 3"),
        "{}",
        node.log()
    );
    let api = d.client(&node.url).await;
    let (id, prefix) = export_through(&d, &api, &moto, &proxy, "40MiB").await;
    proxy.down();
    let down_at = Instant::now();
    let failed: Value = api.wait_final("c1", &id, LIMIT).await;
    let took = down_at.elapsed();
    assert_eq!(failed["state"], "Failed", "{failed}");
    let reason = failed["stateReason"]["message"].as_str().unwrap();
    assert!(reason.contains("retry_timeout: 3s"), "the budget: {reason}");
    assert!(
        reason.contains("Connection refused") || reason.contains("connect"),
        "the store's error: {reason}"
    );
    assert!(reason.contains(" in "), "the time spent: {reason}");
    assert!(
        took >= Duration::from_secs(3),
        "failed {took:?} after the store went down, before its 3 s budget: {reason}"
    );
    proxy.up();
    let keys = moto.keys(&prefix).await;
    assert!(!keys.iter().any(|k| k.ends_with("/.complete")), "{keys:?}");
}

/// A permanent error is not retried: a refused signature (403, s3s-fs checks SigV4) and a
/// bucket that does not exist (404, moto) fail the first request, with a budget of a minute.
/// object_store names the retries in its message once it made any; these have none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_store_errors_fail_at_once() {
    use object_store::ObjectStoreExt;
    let (Some(_), Some(_)) = (support::location("s3_sigv4"), support::location("s3")) else {
        return;
    };
    let budget = Some(Duration::from_secs(60));
    let bucket = std::env::var(support::ENV_S3_BUCKET).unwrap();
    let forbidden = snapex::storage::StorageOptions {
        s3_secret_access_key: Some("not-the-secret".into()),
        max_retries: None,
        retry_timeout: budget,
        ..support::storage_options_for("s3_sigv4")
    };
    let missing = snapex::storage::StorageOptions {
        max_retries: None,
        retry_timeout: budget,
        ..support::storage_options_for("s3")
    };
    for (what, url, options) in [
        ("403", format!("s3://{bucket}/permanent"), forbidden),
        (
            "404 bucket",
            "s3://no-such-bucket-snapex/permanent".to_string(),
            missing,
        ),
    ] {
        let location = snapex::storage::open(&url, &options).unwrap();
        let error = location
            .store
            .put(&location.path("x"), vec![1u8].into())
            .await
            .expect_err(what);
        let text = snapex::errors::chain(&error);
        assert!(!text.contains("retries"), "{what} was retried: {text}");
        assert!(
            text.contains("403") || text.contains("404") || text.contains("NoSuchBucket"),
            "{what}: {text}"
        );
    }
}

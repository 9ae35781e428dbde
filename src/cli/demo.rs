//! `snapex demo`: the whole flow on the embedded default, in one command. It generates a
//! deterministic sample snapshot, starts the server in this process (SQLite in the data
//! directory, a FILESYSTEM bucket root, loopback), creates an organization, a project and an
//! API key, then drives everything through the HTTP API with Digest authentication exactly as
//! an Atlas client would: registers a cluster, imports the snapshot, creates an export bucket
//! and an export job, and follows the job to the end. It then verifies the export and prints
//! the bucket tree, a sample line and ready-to-paste curl commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::{Digest as _, Md5};
use serde_json::{Value, json};

use super::StoreArgs;
use super::serve::{ServerConfig, start};
use crate::auth::Role;
use crate::snapshot::generate::{SampleSpec, write_sample_dump};

const ACCEPT: &str = "application/vnd.atlas.2023-01-01+json";
const ACCEPT_BUCKETS: &str = "application/vnd.atlas.2024-05-30+json";

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Size of the generated sample snapshot's BSON (suffixes: KiB, MiB, GiB).
    #[arg(long, default_value = "256MiB", value_parser = super::export::parse_size)]
    pub size: u64,
    /// Exit 0 once the export is finished and verified instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit_when_done: bool,
    /// Print one JSON object for scripts once the export has finished (PRODUCT.md §4a).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.store.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };

    // 1. The sample snapshot (reused when it is already there for this size).
    let snapshot_dir = data_dir
        .join("demo-snapshot")
        .join(format!("{}", args.size));
    if !snapshot_dir.join("prelude.json").exists() {
        say(format!(
            "generating a {} MiB sample snapshot in {}",
            args.size >> 20,
            snapshot_dir.display()
        ));
        let spec = SampleSpec {
            target_bytes: args.size,
            seed: 1,
        };
        let dir = snapshot_dir.clone();
        let stats = tokio::task::spawn_blocking(move || write_sample_dump(&dir, &spec))
            .await
            .context("the sample generator failed")?
            .context("writing the sample snapshot")?;
        say(format!(
            "  {} documents in {} collections",
            stats.documents,
            stats.collections.len()
        ));
    }

    // Imports name absolute paths (a relative one is refused: it would mean nothing to a server).
    let snapshot_abs = std::path::absolute(&snapshot_dir).unwrap_or_else(|_| snapshot_dir.clone());

    // 2. The server, on the embedded default.
    let mut config = ServerConfig::for_data_dir(&data_dir);
    config.database = args.store.database.clone();
    config.listen = args.listen;
    // The demo is single-tenant: its one project may import the sample it generated.
    config
        .deployment
        .source_grants
        .push(crate::service::sources::SourceGrant {
            projects: crate::service::ProjectSet::All,
            prefix: snapshot_abs.display().to_string(),
        });
    let server = start(config)
        .await
        .with_context(|| format!("starting the server on {}", args.listen))?;
    let url = server.url();
    say(format!(
        "server listening on {url} (data in {})",
        data_dir.display()
    ));

    // 3. Organization, project and an API key, as `snapex orgs/projects/keys create` do.
    let org = server.store.create_org("Demo Org").await?;
    let project = server.store.create_project(&org.id, "Demo Project").await?;
    let key = server
        .auth
        .create_api_key(
            &org.id,
            Some(&project.id),
            &[Role::GroupOwner],
            "snapex demo",
        )
        .await?;
    say(format!(
        "created org {} and project {}; API key {} (Project Owner)",
        org.id, project.id, key.public_key
    ));

    // 4. Everything else through the HTTP API with Digest authentication.
    let client = DigestClient::new(&url, &key.public_key, &key.private_key);
    let group = project.id.clone();
    let cluster_name = "DemoCluster";
    client
        .call(
            "POST",
            &format!("/api/snapex/v1/groups/{group}/clusters"),
            "application/json",
            Some(
                json!({"name": cluster_name, "clusterType": "REPLICASET", "replicaSets": ["rs0"],
                        "labels": [{"key": "origin", "value": "snapex demo"}]}),
            ),
        )
        .await?;
    let snapshot = client
        .call(
            "POST",
            &format!("/api/snapex/v1/groups/{group}/clusters/{cluster_name}/snapshots"),
            "application/json",
            Some(json!({"parts": [{"replicaSetName": "rs0", "url": format!("file://{}", snapshot_abs.display())}],
                        "description": "snapex demo snapshot"})),
        )
        .await?;
    let snapshot_id = string(&snapshot, "id")?;
    let bucket_name = format!("demo-{}", &project.id[18..]);
    let bucket = client
        .call(
            "POST",
            &format!("/api/atlas/v2/groups/{group}/backup/exportBuckets"),
            ACCEPT_BUCKETS,
            Some(json!({"cloudProvider": "FILESYSTEM", "bucketName": bucket_name})),
        )
        .await?;
    let bucket_id = string(&bucket, "_id")?;
    let job = client
        .call(
            "POST",
            &format!("/api/atlas/v2/groups/{group}/clusters/{cluster_name}/backup/exports"),
            ACCEPT,
            Some(
                json!({"snapshotId": snapshot_id, "exportBucketId": bucket_id,
                        "customData": [{"key": "exportedBy", "value": "snapex demo"}]}),
            ),
        )
        .await?;
    let job_id = string(&job, "id")?;
    let prefix = string(&job, "prefix")?;
    say(format!(
        "export job {job_id} created; following it through GET …/backup/exports/{job_id}"
    ));

    // 5. Follow the job like a client would, with a progress bar on a terminal.
    let bar = ProgressBar::with_draw_target(
        Some(0),
        if args.json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} collections {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let job_path =
        format!("/api/atlas/v2/groups/{group}/clusters/{cluster_name}/backup/exports/{job_id}");
    let finished = loop {
        let job = client.call("GET", &job_path, ACCEPT, None).await?;
        let state = job["state"].as_str().unwrap_or("").to_string();
        bar.set_length(
            job["exportStatus"]["totalCollections"]
                .as_u64()
                .unwrap_or(0),
        );
        bar.set_position(
            job["exportStatus"]["exportedCollections"]
                .as_u64()
                .unwrap_or(0),
        );
        bar.set_message(state.clone());
        if matches!(state.as_str(), "Successful" | "Failed" | "Cancelled") {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bar.finish_and_clear();
    if finished["state"] != "Successful" {
        bail!(
            "the demo export ended {}: {}",
            finished["state"],
            finished["stateReason"]
        );
    }

    // 6. Check the export the way `snapex verify` does.
    let bucket_dir = server_bucket_dir(&data_dir, &project.id, &bucket_name);
    let location = crate::storage::open(
        &format!("file://{}", bucket_dir.join(&prefix).display()),
        &Default::default(),
    )?;
    let report = crate::export::verify::verify(&location).await;
    if !report.is_ok() {
        bail!(
            "the demo export did not verify: {}",
            report.problems.join("; ")
        );
    }

    if args.json {
        println!(
            "{}",
            json!({
                "url": url, "publicKey": key.public_key, "privateKey": key.private_key,
                "orgId": org.id, "groupId": group, "clusterName": cluster_name,
                "snapshotId": snapshot_id, "exportBucketId": bucket_id,
                "bucketUrl": format!("file://{}", bucket_dir.display()),
                "exportJobId": job_id, "prefix": prefix,
            })
        );
    } else {
        print_tour(&TourFacts {
            url: &url,
            public_key: &key.public_key,
            private_key: &key.private_key,
            group: &group,
            cluster: cluster_name,
            job_id: &job_id,
            bucket_dir: &bucket_dir,
            prefix: &prefix,
            documents: report.documents,
            objects: report.objects_checked,
        })?;
    }

    if args.exit_when_done {
        server.shutdown().await?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        println!("\nserving on {url} until Ctrl-C");
    }
    let token = server.shutdown_token();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        token.cancel();
    });
    server.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// A FILESYSTEM bucket's directory: `<bucket root>/<groupId>/<bucketName>`.
fn server_bucket_dir(data_dir: &Path, group_id: &str, bucket_name: &str) -> PathBuf {
    data_dir.join("buckets").join(group_id).join(bucket_name)
}

fn string(value: &Value, field: &str) -> anyhow::Result<String> {
    value[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the server's answer has no {field}: {value}"))
}

struct TourFacts<'a> {
    url: &'a str,
    public_key: &'a str,
    private_key: &'a str,
    group: &'a str,
    cluster: &'a str,
    job_id: &'a str,
    bucket_dir: &'a Path,
    prefix: &'a str,
    documents: u64,
    objects: usize,
}

fn print_tour(f: &TourFacts<'_>) -> anyhow::Result<()> {
    let export_dir = f.bucket_dir.join(f.prefix);
    println!(
        "\nexport finished and verified: {} objects, {} documents",
        f.objects, f.documents
    );
    println!("bucket {}:", f.bucket_dir.display());
    let mut files = Vec::new();
    collect_files(f.bucket_dir, &mut files)?;
    files.sort();
    for file in files.iter().take(40) {
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let relative = file.strip_prefix(f.bucket_dir).unwrap_or(file);
        println!("  {:>12}  {}", size, relative.display());
    }
    if files.len() > 40 {
        println!("  … and {} more", files.len() - 40);
    }
    if let Some(first) = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".json.gz"))
    {
        let file = std::fs::File::open(first)?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(flate2::read::GzDecoder::new(file)),
            &mut line,
        )?;
        let shown: String = line.trim_end().chars().take(400).collect();
        println!(
            "\nfirst line of {}:\n  {shown}",
            first.strip_prefix(&export_dir).unwrap_or(first).display()
        );
    }
    let auth = format!("--digest -u '{}:{}'", f.public_key, f.private_key);
    println!("\ntry it (Atlas Admin API, HTTP Digest):");
    println!(
        "  curl {auth} -H 'Accept: {ACCEPT}' '{}/api/atlas/v2/groups/{}/clusters/{}/backup/exports/{}?pretty=true'",
        f.url, f.group, f.cluster, f.job_id
    );
    println!(
        "  curl {auth} -H 'Accept: {ACCEPT}' '{}/api/atlas/v2/groups/{}/clusters/{}/backup/snapshots?pretty=true'",
        f.url, f.group, f.cluster
    );
    println!(
        "  curl {auth} -H 'Accept: {ACCEPT_BUCKETS}' '{}/api/atlas/v2/groups/{}/backup/exportBuckets?pretty=true'",
        f.url, f.group
    );
    println!("  snapex verify file://{}", export_dir.display());
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// A minimal HTTP Digest client (RFC 7616, MD5, qop=auth), the way curl --digest talks to
/// Atlas: an unauthenticated request earns a challenge, later requests reuse its nonce with an
/// increasing nonce count, and a `stale=true` challenge is answered with the new nonce.
struct DigestClient {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
    challenge: tokio::sync::Mutex<Option<(Challenge, u32)>>,
}

#[derive(Clone)]
struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
}

impl DigestClient {
    fn new(base: &str, user: &str, password: &str) -> Self {
        DigestClient {
            http: reqwest::Client::new(),
            base: base.to_string(),
            user: user.to_string(),
            password: password.to_string(),
            challenge: Default::default(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        for _ in 0..3 {
            let authorization = {
                let mut slot = self.challenge.lock().await;
                match slot.as_mut() {
                    Some((challenge, nc)) => {
                        *nc += 1;
                        Some(self.authorization(challenge, *nc, method, path))
                    }
                    None => None,
                }
            };
            let mut request = self
                .http
                .request(method.parse()?, format!("{}{path}", self.base))
                .header("accept", accept);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            if let Some(body) = &body {
                let content_type = if accept.starts_with("application/vnd") {
                    accept
                } else {
                    "application/json"
                };
                request = request
                    .header("content-type", content_type)
                    .body(body.to_string());
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("{method} {path}"))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                && let Some(header) = response.headers().get("www-authenticate")
            {
                let challenge = parse_challenge(header.to_str().unwrap_or(""))
                    .with_context(|| format!("{method} {path}: unusable Digest challenge"))?;
                *self.challenge.lock().await = Some((challenge, 0));
                continue;
            }
            let text = response.text().await?;
            if !status.is_success() {
                bail!("{method} {path}: {status}: {text}");
            }
            return if text.is_empty() {
                Ok(Value::Null)
            } else {
                serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))
            };
        }
        bail!("{method} {path}: the server kept refusing the API key")
    }

    fn authorization(&self, c: &Challenge, nc: u32, method: &str, uri: &str) -> String {
        let md5 = |s: String| hex::encode(Md5::digest(s.as_bytes()));
        let cnonce = hex::encode(rand::random::<[u8; 8]>());
        let nc = format!("{nc:08x}");
        let ha1 = md5(format!("{}:{}:{}", self.user, c.realm, self.password));
        let ha2 = md5(format!("{method}:{uri}"));
        let response = md5(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce));
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\"",
            self.user, c.realm, c.nonce
        );
        if let Some(opaque) = &c.opaque {
            header.push_str(&format!(", opaque=\"{opaque}\""));
        }
        header
    }
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim().strip_prefix("Digest")?;
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "realm" => realm = Some(v),
            "nonce" => nonce = Some(v),
            "opaque" => opaque = Some(v),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
    })
}

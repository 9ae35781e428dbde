//! The administrative commands run as the built binary: the JSON of PRODUCT.md §4a, errors,
//! keys that a server on the same data directory accepts (while it runs), and no secret in
//! plain text anywhere in the data directory.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::openapi::SendChecked;
use crate::support::probe::serve_data_dir as serve;
use crate::support::{self, digest};

fn snapex(data_dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_snapex"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SNAPEX_SECRET_KEY")
        .env_remove("SNAPEX_DATABASE")
        .output()
        .expect("snapex runs")
}

fn json_ok(data_dir: &Path, args: &[&str]) -> Value {
    let out = snapex(data_dir, args);
    assert!(
        out.status.success(),
        "snapex {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "snapex {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn is_hex24(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn curl_status(user: &str, url: &str) -> u16 {
    let out = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
        ])
        .args(["--user", user, "--digest", url])
        .output()
        .await
        .unwrap();
    String::from_utf8(out.stdout).unwrap().parse().unwrap()
}

fn run<T>(f: impl FnOnce(&Path) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    f(dir.path())
}

#[test]
fn orgs_and_projects_print_the_documented_json() {
    run(|d| {
        let org = json_ok(d, &["orgs", "create", "Acme Corp", "--json"]);
        assert_eq!(keys_of(&org), ["id", "name"]);
        assert_eq!(org["name"], "Acme Corp");
        let org_id = org["id"].as_str().unwrap();
        assert!(is_hex24(org_id));

        let project = json_ok(
            d,
            &["projects", "create", "--org", org_id, "analytics", "--json"],
        );
        assert_eq!(keys_of(&project), ["id", "name", "orgId"]);
        assert_eq!(project["name"], "analytics");
        assert_eq!(project["orgId"], org_id);
        assert!(is_hex24(project["id"].as_str().unwrap()));

        let listed = json_ok(d, &["projects", "list", "--org", org_id, "--json"]);
        assert_eq!(listed[0]["id"], project["id"]);
        let orgs = json_ok(d, &["orgs", "list", "--json"]);
        assert_eq!(orgs[0]["id"], org_id);

        // Human-readable output without --json.
        let out = snapex(d, &["orgs", "create", "Globex"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("created organization Globex"));

        // A project in an unknown organization and a duplicate name fail with a message.
        let out = snapex(
            d,
            &[
                "projects",
                "create",
                "--org",
                "0123456789abcdef01234567",
                "x",
                "--json",
            ],
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
        let out = snapex(d, &["projects", "create", "--org", org_id, "analytics"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    });
}

#[tokio::test]
async fn keys_and_service_accounts_work_against_a_running_server_and_no_secret_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let org = json_ok(&d, &["orgs", "create", "acme", "--json"]);
    let org_id = org["id"].as_str().unwrap().to_string();
    let p1 = json_ok(
        &d,
        &["projects", "create", "--org", &org_id, "p1", "--json"],
    );
    let p1 = p1["id"].as_str().unwrap().to_string();
    let p2 = json_ok(
        &d,
        &["projects", "create", "--org", &org_id, "p2", "--json"],
    );
    let p2 = p2["id"].as_str().unwrap().to_string();

    // The server runs on the same SQLite file while the CLI writes to it.
    let base = serve(&d).await;

    let d2 = d.clone();
    let (org2, p1c) = (org_id.clone(), p1.clone());
    let key = tokio::task::spawn_blocking(move || {
        json_ok(
            &d2,
            &[
                "keys",
                "create",
                "--org",
                &org2,
                "--project",
                &p1c,
                "--role",
                "GROUP_READ_ONLY",
                "--json",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(keys_of(&key), ["id", "publicKey", "privateKey"]);
    let public = key["publicKey"].as_str().unwrap().to_string();
    let private = key["privateKey"].as_str().unwrap().to_string();
    assert_eq!(public.len(), 8);
    assert!(public.bytes().all(|b| b.is_ascii_lowercase()));
    assert_eq!(private.len(), 36);
    assert_eq!(private.matches('-').count(), 4);

    let d2 = d.clone();
    let org2 = org_id.clone();
    let sa = tokio::task::spawn_blocking(move || {
        json_ok(
            &d2,
            &[
                "service-accounts",
                "create",
                "--org",
                &org2,
                "--role",
                "ORG_OWNER",
                "--json",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(keys_of(&sa), ["id", "clientId", "clientSecret"]);
    let client_id = sa["clientId"].as_str().unwrap().to_string();
    let client_secret = sa["clientSecret"].as_str().unwrap().to_string();

    // The running server accepts the key the CLI just created, within its project only.
    let user = format!("{public}:{private}");
    let url = |p: &str| format!("{base}/api/atlas/v2/groups/{p}/probe");
    assert_eq!(curl_status(&user, &url(&p1)).await, 200);
    assert_eq!(curl_status(&user, &url(&p2)).await, 404);
    assert_eq!(
        curl_status(&format!("{public}:wrong"), &url(&p1)).await,
        401
    );

    // And the service account: token, then bearer on both projects of its org.
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/api/oauth/token"))
        .basic_auth(&client_id, Some(&client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send_checked()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    for p in [&p1, &p2] {
        let status = client
            .get(url(p))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }

    // Listing shows the public key but never the private key.
    let d2 = d.clone();
    let org2 = org_id.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let out = snapex(&d2, &["keys", "list", "--org", &org2, "--json"]);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap();
    assert!(listed.contains(&public));
    assert!(!listed.contains(&private));

    // Deleting the key and the service account takes effect at once on the running server.
    let d2 = d.clone();
    let (org2, public2, client2) = (org_id.clone(), public.clone(), client_id.clone());
    tokio::task::spawn_blocking(move || {
        let del = json_ok(&d2, &["keys", "delete", "--org", &org2, &public2, "--json"]);
        assert_eq!(del["deleted"], true);
        json_ok(
            &d2,
            &[
                "service-accounts",
                "delete",
                "--org",
                &org2,
                &client2,
                "--json",
            ],
        );
        // Deleting again is an error.
        assert!(
            !snapex(&d2, &["keys", "delete", "--org", &org2, &public2])
                .status
                .success()
        );
    })
    .await
    .unwrap();
    assert_eq!(curl_status(&user, &url(&p1)).await, 401);
    let status = client
        .get(url(&p1))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);

    // No secret in plain text in any file of the data directory (database, WAL, key file…):
    // not the private key, not its digest HA1 (which is password-equivalent for Digest), not
    // the client secret, not the bearer token.
    let ha1 = digest::ha1(&public, digest::REALM, &private);
    let mut scanned = 0;
    for entry in std::fs::read_dir(&d).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        for secret in [&private, &ha1, &client_secret, &token] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} contains a secret in plain text",
                path.display()
            );
        }
    }
    // The scan saw the database: the public key is stored (it is not secret).
    let db = std::fs::read(d.join("snapex.db")).unwrap();
    let wal = std::fs::read(d.join("snapex.db-wal")).unwrap_or_default();
    let found = |b: &[u8]| b.windows(public.len()).any(|w| w == public.as_bytes());
    assert!(
        found(&db) || found(&wal),
        "the public key is stored somewhere"
    );
    assert!(scanned > 0);
}

#[test]
fn bad_roles_and_levels_are_refused_with_a_message() {
    run(|d| {
        let org = json_ok(d, &["orgs", "create", "acme", "--json"]);
        let org_id = org["id"].as_str().unwrap();
        let p = json_ok(d, &["projects", "create", "--org", org_id, "p", "--json"]);
        let p = p["id"].as_str().unwrap();
        let cases: [(&[&str], &str); 4] = [
            (
                &["keys", "create", "--org", org_id, "--role", "GROUP_ADMIN"],
                "unknown role",
            ),
            (
                &["keys", "create", "--org", org_id, "--role", "GROUP_OWNER"],
                "--project",
            ),
            (
                &[
                    "keys",
                    "create",
                    "--org",
                    org_id,
                    "--project",
                    p,
                    "--role",
                    "ORG_OWNER",
                ],
                "organization role",
            ),
            (
                &[
                    "service-accounts",
                    "create",
                    "--org",
                    "0123456789abcdef01234567",
                    "--role",
                    "ORG_OWNER",
                ],
                "not found",
            ),
        ];
        for (args, message) in cases {
            let out = snapex(d, args);
            assert!(!out.status.success(), "{args:?} succeeded");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(message), "{args:?}: {stderr}");
        }
        // Human-readable key creation shows both halves once.
        let out = snapex(
            d,
            &["keys", "create", "--org", org_id, "--role", "ORG_READ_ONLY"],
        );
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("public key:") && text.contains("private key:"),
            "{text}"
        );
        // A different deployment key is refused rather than creating unusable keys.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_snapex"))
            .args([
                "keys",
                "create",
                "--org",
                org_id,
                "--role",
                "ORG_OWNER",
                "--data-dir",
            ])
            .arg(d)
            .env(
                "SNAPEX_SECRET_KEY",
                "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
            )
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("secret key"));
    });
}

/// Kills the server it holds when dropped, whatever the test's outcome.
struct ServeProcess(std::process::Child);

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real `snapex serve` on the data directory, while the CLI writes to the same SQLite
/// file; keys the CLI creates are accepted by the server at once.
#[tokio::test]
async fn admin_commands_work_while_snapex_serve_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_snapex"))
        .args(["serve", "--listen", &listen, "--data-dir"])
        .arg(&d)
        .env_remove("SNAPEX_SECRET_KEY")
        .env_remove("SNAPEX_DATABASE")
        .env_remove("SNAPEX_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("snapex serve starts");
    let _server = ServeProcess(child);
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send_checked().await
            && r.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "snapex serve did not become healthy");

    let d2 = d.clone();
    let (key, p1, p2) = tokio::task::spawn_blocking(move || {
        let org = json_ok(&d2, &["orgs", "create", "acme", "--json"]);
        let org = org["id"].as_str().unwrap().to_string();
        let p1 = json_ok(&d2, &["projects", "create", "--org", &org, "one", "--json"]);
        let p2 = json_ok(&d2, &["projects", "create", "--org", &org, "two", "--json"]);
        let p1 = p1["id"].as_str().unwrap().to_string();
        let key = json_ok(
            &d2,
            &[
                "keys",
                "create",
                "--org",
                &org,
                "--project",
                &p1,
                "--role",
                "GROUP_READ_ONLY",
                "--json",
            ],
        );
        (key, p1, p2["id"].as_str().unwrap().to_string())
    })
    .await
    .unwrap();
    let user = format!(
        "{}:{}",
        key["publicKey"].as_str().unwrap(),
        key["privateKey"].as_str().unwrap()
    );
    let get = |group: &str| {
        let user = user.clone();
        let url = format!("{base}/api/atlas/v2/groups/{group}");
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["--silent", "--user", &user, "--digest"])
                .args(["--header", "Accept: application/vnd.atlas.2023-01-01+json"])
                .args(["--write-out", "\n%{http_code}", &url])
                .output()
                .await
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let (body, code) = text.rsplit_once('\n').unwrap();
            (code.parse::<u16>().unwrap(), body.to_string())
        }
    };
    let (code, body) = get(&p1).await;
    assert_eq!(code, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["name"], "one");
    let (code, _) = get(&p2).await;
    assert_eq!(code, 404, "a key of one project sees nothing of another");
}

/// The same commands on PostgreSQL (`--database`), the multi-node setup.
#[test]
fn admin_commands_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(support::postgres_database()) else {
        return;
    };
    run(|d| {
        let with_db = |args: &[&str]| {
            let mut v: Vec<&str> = args.to_vec();
            v.extend(["--database", &url]);
            json_ok(d, &v)
        };
        let org = with_db(&["orgs", "create", "acme", "--json"]);
        let org_id = org["id"].as_str().unwrap();
        let p = with_db(&["projects", "create", "--org", org_id, "p", "--json"]);
        assert_eq!(p["orgId"], org_id);
        let key = with_db(&[
            "keys",
            "create",
            "--org",
            org_id,
            "--role",
            "ORG_OWNER",
            "--json",
        ]);
        assert_eq!(keys_of(&key), ["id", "publicKey", "privateKey"]);
        let sa = with_db(&[
            "service-accounts",
            "create",
            "--org",
            org_id,
            "--project",
            p["id"].as_str().unwrap(),
            "--role",
            "GROUP_BACKUP_MANAGER",
            "--json",
        ]);
        assert_eq!(keys_of(&sa), ["id", "clientId", "clientSecret"]);
        let listed = with_db(&["service-accounts", "list", "--org", org_id, "--json"]);
        assert_eq!(listed[0]["clientId"], sa["clientId"]);
        assert_eq!(listed[0]["grants"][0]["role"], "GROUP_BACKUP_MANAGER");
        assert!(
            !listed
                .to_string()
                .contains(sa["clientSecret"].as_str().unwrap())
        );
    });
}

/// `snapex openapi` prints the very document the server serves, without a server or a data
/// directory.
#[test]
fn openapi_prints_the_served_document() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snapex"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, snapex::api::openapi::build());
    assert!(
        printed["paths"]["/api/atlas/v2/groups/{groupId}/backup/exportBuckets"]["post"]["operationId"]
            == "createGroupBackupExportBucket",
        "{}",
        printed["paths"]
    );
}

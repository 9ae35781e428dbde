//! The web dashboard (issue 15): sign-in with a key pair or a service account, the session
//! cookie, CSRF on every form, session expiry and sign-out, the API's roles on every page and
//! action, and nothing secret in any page — over HTTP with a plain client; then the whole flow
//! in a real headless Chromium (`tests/ui/e2e.mjs`): export, live progress, Verify, Cancel,
//! and a Project Read Only key that can change nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::deployment::{TestApp, TestDeployment};
use crate::support::{self, Role};

/// How long a test waits for an export job to end.
const LIMIT: Duration = Duration::from_secs(120);

/// A browser without a browser: one cookie jar of two cookies, redirects not followed.
struct Ui {
    http: reqwest::Client,
    base: String,
    session: Option<String>,
    csrf: Option<String>,
}

/// One answer: status, headers, body.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(body[at..].split('"').next()?.to_string())
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

impl Ui {
    fn new(base: &str) -> Ui {
        Ui {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: base.to_string(),
            session: None,
            csrf: None,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.session {
            Some(s) => request.header("Cookie", format!("snapex_session={s}")),
            None => request,
        };
        let response = request.send().await.unwrap();
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// A form POST with the session's CSRF token unless the fields name one.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !fields.iter().any(|(k, _)| *k == "csrf")
            && let Some(token) = &self.csrf
        {
            form.push(("csrf".into(), token.clone()));
        }
        self.send(self.http.post(format!("{}{path}", self.base)).form(&form))
            .await
    }

    /// The login form's answer: its token cookie and hidden field.
    async fn login_form(&self) -> (String, String) {
        let page = self.get("/ui/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let cookie = page.cookie("snapex_login").expect("a login cookie");
        (cookie_value(&cookie), csrf_of(&page.body).unwrap())
    }

    /// Submits the login form with `fields`, as a browser would (cookie and token).
    async fn submit_login(&self, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let (cookie, token) = self.login_form().await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &token));
        let mut request = self
            .http
            .post(format!("{}/ui/login", self.base))
            .header("Cookie", format!("snapex_login={cookie}"))
            .form(&form);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request).await
    }

    /// Signs in with a key pair; keeps the session and the CSRF token of the next page.
    async fn sign_in_key(&mut self, public: &str, private: &str) -> Page {
        let page = self
            .submit_login(&[("public_key", public), ("private_key", private)], &[])
            .await;
        self.keep_session(&page).await;
        page
    }

    async fn keep_session(&mut self, page: &Page) {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        self.session = Some(cookie_value(&page.cookie("snapex_session").unwrap()));
        let home = self.get("/ui/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        self.csrf = csrf_of(&home.body);
    }
}

/// A key of the app's project with `role`: (public, private).
async fn key(app: &TestApp, role: Role) -> (String, String) {
    let k = app
        .server
        .auth
        .create_api_key(&app.org_id, Some(&app.group_id), &[role], "dashboard test")
        .await
        .unwrap();
    (k.public_key, k.private_key)
}

/// A cluster `prod` with one snapshot of the mongo-tools fixture and a FILESYSTEM bucket:
/// (snapshot id, bucket id).
async fn project_with_a_snapshot(app: &TestApp) -> (String, String) {
    app.register_cluster("prod", &["rs0"]).await;
    let dump = support::mongo_tools().join("mongorestore/testdata/testdirs");
    let dump = dump.canonicalize().unwrap().display().to_string();
    let snap = app
        .import_snapshot("prod", &["rs0"], &dump, json!({}))
        .await;
    let bucket = app.filesystem_bucket_id("lake").await;
    (snap["id"].as_str().unwrap().to_string(), bucket)
}

/// A node that admits nothing: every export job stays `Queued` until cancelled.
async fn queueing_app() -> TestApp {
    TestApp::start_with(TestDeployment::builder().create().await, |config| {
        config.deployment.max_concurrent_replica_sets = 0
    })
    .await
}

async fn jobs_of(app: &TestApp) -> Vec<Value> {
    app.jobs("prod").await
}

// ---------------------------------------------------------------------------------------------
// Sessions, cookies and CSRF.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_without_a_session_goes_to_the_login_and_an_action_is_refused() {
    let app = TestApp::start().await;
    let ui = Ui::new(&app.server.url());
    let g = &app.group_id;
    let page = ui.get(&format!("/ui/groups/{g}/jobs?state=Queued")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        format!("/ui/login?next=%2Fui%2Fgroups%2F{g}%2Fjobs%3Fstate%3DQueued")
    );
    let action = ui.post("/ui/logout", &[("csrf", "x")]).await;
    assert_eq!(action.status, StatusCode::FORBIDDEN);
    // A made-up session is no session.
    let mut forged = Ui::new(&app.server.url());
    forged.session = Some("bm90LWEtc2Vzc2lvbg".into());
    assert_eq!(
        forged
            .get(&format!("/ui/groups/{g}/snapshots"))
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_with_a_key_pair_gives_a_strict_http_only_session_cookie() {
    let app = TestApp::start().await;
    let (public, private) = key(&app, Role::GroupBackupManager).await;
    let mut ui = Ui::new(&app.server.url());

    let wrong = ui
        .submit_login(
            &[
                ("public_key", public.as_str()),
                ("private_key", "00000000-0000-4000-8000-000000000000"),
            ],
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.cookie("snapex_session").is_none());
    assert!(wrong.body.contains("These credentials are not valid."));
    let unknown = ui
        .submit_login(
            &[("public_key", "zzzzzzzz"), ("private_key", &private)],
            &[],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("These credentials are not valid."));

    // The login form's own token: a login posted from elsewhere has neither it nor the cookie.
    let no_token = ui
        .post(
            "/ui/login",
            &[
                ("public_key", &public),
                ("private_key", &private),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);

    let page = ui.sign_in_key(&public, &private).await;
    assert_eq!(page.location(), "/ui/");
    let cookie = page.cookie("snapex_session").unwrap();
    for attribute in ["Path=/ui", "HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let home = ui.get("/ui/").await;
    assert!(home.body.contains("Data Platform"), "{}", home.body);
    assert!(home.body.contains("Project Backup Manager"));

    // Behind an https proxy the cookie is Secure; `next` brings the user back, and only
    // to a dashboard page.
    let behind_tls = ui
        .submit_login(
            &[
                ("public_key", &public),
                ("private_key", &private),
                ("next", "/ui/groups/x/jobs"),
            ],
            &[("X-Forwarded-Proto", "https")],
        )
        .await;
    assert!(
        behind_tls
            .cookie("snapex_session")
            .unwrap()
            .contains("; Secure")
    );
    assert_eq!(behind_tls.location(), "/ui/groups/x/jobs");
    let elsewhere = ui
        .submit_login(
            &[
                ("public_key", &public),
                ("private_key", &private),
                ("next", "//evil.example/"),
            ],
            &[],
        )
        .await;
    assert_eq!(elsewhere.location(), "/ui/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_signs_in_with_its_client_credentials() {
    let app = TestApp::start().await;
    let mut ui = Ui::new(&app.server.url());
    let owner = app.deployment.owner.clone();
    let wrong = ui
        .submit_login(
            &[
                ("client_id", owner.client_id.as_str()),
                ("client_secret", "mdb_sa_sk_wrong"),
            ],
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let page = ui
        .submit_login(
            &[
                ("client_id", owner.client_id.as_str()),
                ("client_secret", owner.client_secret.as_str()),
            ],
            &[],
        )
        .await;
    ui.keep_session(&page).await;
    let jobs = ui.get(&format!("/ui/groups/{}/jobs", app.group_id)).await;
    assert_eq!(jobs.status, StatusCode::OK);
    assert!(
        jobs.body
            .contains(&format!("service account {}", owner.client_id))
    );
    assert!(jobs.body.contains("Project Owner"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_needs_the_sessions_csrf_token() {
    let app = queueing_app().await;
    let (snapshot, bucket) = project_with_a_snapshot(&app).await;
    let (public, private) = key(&app, Role::GroupOwner).await;
    let mut ui = Ui::new(&app.server.url());
    ui.sign_in_key(&public, &private).await;
    let g = &app.group_id;
    let export = format!("/ui/groups/{g}/clusters/prod/snapshots/{snapshot}/export");

    // Another session's token does not do either.
    let mut other = Ui::new(&app.server.url());
    other.sign_in_key(&public, &private).await;
    assert_ne!(other.csrf, ui.csrf);
    for token in ["", "forged", other.csrf.as_deref().unwrap()] {
        let page = ui
            .post(&export, &[("bucket", bucket.as_str()), ("csrf", token)])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "token {token:?}");
        assert!(page.body.contains("Form expired"));
    }
    // A browser's cross-site request is refused even with the token.
    let cross = ui
        .send(
            ui.http
                .post(format!("{}{export}", ui.base))
                .header("Sec-Fetch-Site", "cross-site")
                .form(&[
                    ("bucket", bucket.as_str()),
                    ("csrf", ui.csrf.as_deref().unwrap()),
                ]),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(jobs_of(&app).await.is_empty(), "no refused form made a job");

    let page = ui.post(&export, &[("bucket", &bucket)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let jobs = jobs_of(&app).await;
    assert_eq!(jobs.len(), 1);
    let job_id = jobs[0]["id"].as_str().unwrap();
    assert!(page.location().ends_with(&format!("/jobs/{job_id}")));
    let job_page = ui.get(page.location()).await;
    assert!(
        job_page
            .body
            .contains(&format!("Export job {job_id} created."))
    );

    // The same snapshot again: the service's refusal, worded as the API words it.
    let again = ui.post(&export, &[("bucket", &bucket)]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let back = ui.get(again.location()).await;
    assert!(
        back.body.contains(&format!(
            "Snapshot {snapshot} already has an export job that is queued or in progress."
        )),
        "{}",
        back.body
    );
    assert_eq!(jobs_of(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_or_deleting_the_key_ends_the_session() {
    let app = TestApp::start().await;
    let (public, private) = key(&app, Role::GroupReadOnly).await;
    let g = &app.group_id;
    let mut ui = Ui::new(&app.server.url());
    ui.sign_in_key(&public, &private).await;
    assert_eq!(
        ui.get(&format!("/ui/groups/{g}/snapshots")).await.status,
        StatusCode::OK
    );
    let out = ui.post("/ui/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.cookie("snapex_session").unwrap().contains("Max-Age=0"));
    assert_eq!(
        ui.get(&format!("/ui/groups/{g}/snapshots")).await.status,
        StatusCode::SEE_OTHER,
        "the old cookie opens nothing"
    );

    ui.sign_in_key(&public, &private).await;
    assert!(
        app.server
            .auth
            .delete_api_key(&app.org_id, &public)
            .await
            .unwrap()
    );
    let page = ui.get(&format!("/ui/groups/{g}/snapshots")).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "a deleted key's session ends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_expires() {
    let app = TestApp::start().await;
    let (public, private) = key(&app, Role::GroupReadOnly).await;
    // A dashboard of its own on the same deployment, with a one-second idle timeout.
    let config = app.deployment.server_config().deployment;
    let state =
        snapex::api::AppState::new(app.server.store.clone(), app.server.auth.clone(), config);
    let options = snapex::dashboard::Options {
        session_idle: Duration::from_secs(1),
        ..Default::default()
    };
    let router: axum::Router =
        snapex::dashboard::router(snapex::dashboard::Dashboard::new(state, options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut ui = Ui::new(&format!("http://{addr}"));
    ui.sign_in_key(&public, &private).await;
    let page = format!("/ui/groups/{}/buckets", app.group_id);
    assert_eq!(ui.get(&page).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ui.get(&page).await.status, StatusCode::SEE_OTHER);
}

/// Reads an event stream to its end (at most `limit`); its text.
async fn read_to_end(mut response: reqwest::Response, limit: Duration) -> String {
    tokio::time::timeout(limit, async move {
        let mut text = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    })
    .await
    .expect("the stream ended in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_ends_by_itself_and_at_shutdown() {
    let app = TestApp::start().await;
    let (public, private) = key(&app, Role::GroupBackupManager).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let state = snapex::api::AppState::new(
        app.server.store.clone(),
        app.server.auth.clone(),
        app.deployment.server_config().deployment,
    );
    let options = snapex::dashboard::Options {
        live_lifetime: Duration::from_secs(2),
        shutdown: Some(shutdown.clone()),
        ..Default::default()
    };
    let router: axum::Router =
        snapex::dashboard::router(snapex::dashboard::Dashboard::new(state, options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut ui = Ui::new(&format!("http://{addr}"));
    ui.sign_in_key(&public, &private).await;
    let open = || async {
        let response = ui
            .http
            .get(format!("{}/ui/groups/{}/nodes/live", ui.base, app.group_id))
            .header(
                "Cookie",
                format!("snapex_session={}", ui.session.as_ref().unwrap()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response
    };
    // By itself, after its lifetime; the first event tells the browser to come back quickly.
    let started = std::time::Instant::now();
    let text = read_to_end(open().await, Duration::from_secs(10)).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "{text}");
    assert!(
        text.contains("event: fragment") && text.contains("retry: 500"),
        "{text}"
    );
    // At once when the server shuts down.
    let response = open().await;
    let started = std::time::Instant::now();
    shutdown.cancel();
    read_to_end(response, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------------
// Roles: the API's, on every page and action.

/// The `data-action` controls of a page.
fn actions(body: &str) -> Vec<String> {
    body.match_indices("data-action=\"")
        .map(|(i, m)| {
            body[i + m.len()..]
                .split('"')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_the_actions_the_api_lets_it_do_and_no_other() {
    let app = TestApp::start().await;
    let (snapshot, bucket) = project_with_a_snapshot(&app).await;
    let g = app.group_id.clone();
    let snapshots = format!("/ui/groups/{g}/snapshots");
    let buckets = format!("/ui/groups/{g}/buckets");
    let jobs = format!("/ui/groups/{g}/jobs");
    let nodes = format!("/ui/groups/{g}/nodes");

    // role → actions on the snapshots page, on the buckets page, and whether jobs are readable
    let cases = [
        (Role::GroupReadOnly, vec![], vec![], false),
        (
            Role::GroupBackupExportOperator,
            vec!["export", "start-export"],
            vec![],
            false,
        ),
        (
            Role::GroupBackupCreator,
            vec!["import", "start-import"],
            vec![],
            false,
        ),
        (
            Role::GroupBackupManager,
            vec!["import", "start-import", "export", "start-export"],
            vec!["check", "delete"],
            true,
        ),
    ];
    for (role, on_snapshots, on_buckets, reads_jobs) in cases {
        let (public, private) = key(&app, role).await;
        let mut ui = Ui::new(&app.server.url());
        ui.sign_in_key(&public, &private).await;
        let page = ui.get(&snapshots).await;
        assert_eq!(page.status, StatusCode::OK, "{role}");
        assert!(page.body.contains(&snapshot));
        let mut seen = actions(&page.body);
        seen.sort();
        let mut expected: Vec<String> = on_snapshots.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(seen, expected, "{role} on the snapshots page");
        let page = ui.get(&buckets).await;
        assert_eq!(page.status, StatusCode::OK, "{role}");
        assert_eq!(
            actions(&page.body),
            on_buckets,
            "{role} on the buckets page"
        );
        for path in [&jobs, &nodes] {
            let page = ui.get(path).await;
            let expected = if reads_jobs {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(page.status, expected, "{role} {path}");
            if !reads_jobs {
                assert!(
                    page.body.contains("Project Backup Manager"),
                    "{}",
                    page.body
                );
            }
        }
    }

    // A forged POST with a valid session and token, by roles that may not: 403, nothing done.
    for role in [Role::GroupReadOnly, Role::GroupBackupCreator] {
        let (public, private) = key(&app, role).await;
        let mut ui = Ui::new(&app.server.url());
        ui.sign_in_key(&public, &private).await;
        let export = ui
            .post(
                &format!("/ui/groups/{g}/clusters/prod/snapshots/{snapshot}/export"),
                &[("bucket", &bucket)],
            )
            .await;
        assert_eq!(
            export.status,
            StatusCode::FORBIDDEN,
            "{role}: {}",
            export.body
        );
        for action in ["check", "delete"] {
            let page = ui
                .post(&format!("/ui/groups/{g}/buckets/{bucket}/{action}"), &[])
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{role} {action}");
        }
    }
    let (public, private) = key(&app, Role::GroupReadOnly).await;
    let mut ro = Ui::new(&app.server.url());
    ro.sign_in_key(&public, &private).await;
    let import = ro
        .post(
            &format!("/ui/groups/{g}/clusters/prod/snapshots/import"),
            &[("part_rs", "rs0"), ("part_url", "/tmp")],
        )
        .await;
    assert_eq!(import.status, StatusCode::FORBIDDEN);
    assert!(jobs_of(&app).await.is_empty(), "nothing was exported");
    let (list, _) = app
        .server
        .store
        .list_export_buckets(&g, snapex::store::Page::default())
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "the bucket is still there");

    // Another project's pages: not found, as in the API.
    let other = app
        .server
        .store
        .create_project(&app.org_id, "Elsewhere")
        .await
        .unwrap();
    let page = ro.get(&format!("/ui/groups/{}/snapshots", other.id)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body
            .contains(&format!("No group with ID {} exists.", other.id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_cancelled_verified_and_its_bucket_guarded_through_the_service() {
    let app = queueing_app().await;
    let (snapshot, bucket) = project_with_a_snapshot(&app).await;
    let (public, private) = key(&app, Role::GroupBackupManager).await;
    let mut ui = Ui::new(&app.server.url());
    ui.sign_in_key(&public, &private).await;
    let g = &app.group_id;
    let created = ui
        .post(
            &format!("/ui/groups/{g}/clusters/prod/snapshots/{snapshot}/export"),
            &[
                ("bucket", &bucket),
                ("key", "team"),
                ("value", "data"),
                ("key", ""),
                ("value", ""),
            ],
        )
        .await;
    let job_url = created.location().to_string();
    let job_id = job_url.rsplit('/').next().unwrap().to_string();
    let job = app.job("prod", &job_id).await;
    assert_eq!(job["customData"], json!([{"key": "team", "value": "data"}]));

    let page = ui.get(&job_url).await;
    assert!(page.body.contains("data-state=\"Queued\""));
    assert!(
        page.body.contains("data-queue-position=\"1\""),
        "{}",
        page.body
    );
    assert!(actions(&page.body).contains(&"cancel".to_string()));
    assert!(!actions(&page.body).contains(&"verify".to_string()));
    let list = ui
        .get(&format!("/ui/groups/{g}/jobs?state=Queued&cluster=prod"))
        .await;
    assert!(list.body.contains(&format!("data-job-id=\"{job_id}\"")));
    assert!(
        list.body.contains("data-running=\"0\" data-limit=\"0\""),
        "{}",
        list.body
    );
    let none = ui.get(&format!("/ui/groups/{g}/jobs?state=Failed")).await;
    assert!(!none.body.contains(&format!("data-job-id=\"{job_id}\"")));
    assert_eq!(
        ui.get(&format!("/ui/groups/{g}/jobs?state=Sleeping"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // The bucket is in use: the delete is refused by the service and the page says why.
    let refused = ui
        .post(&format!("/ui/groups/{g}/buckets/{bucket}/delete"), &[])
        .await;
    let buckets = ui.get(refused.location()).await;
    assert!(
        buckets
            .body
            .contains("is used by an active export job or an auto-export policy"),
        "{}",
        buckets.body
    );
    assert!(buckets.body.contains(&job_id), "the active job is named");

    let cancelled = ui.post(&format!("{job_url}/cancel"), &[]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    assert_eq!(app.job("prod", &job_id).await["state"], "Cancelled");
    let page = ui.get(&job_url).await;
    assert!(page.body.contains("data-state=\"Cancelled\""));
    assert!(
        page.body
            .contains(&format!("Export job {job_id} cancelled."))
    );
    assert!(!actions(&page.body).contains(&"cancel".to_string()));

    // Verify of an export that never ran: the problem is reported, not hidden.
    ui.post(&format!("{job_url}/verify"), &[]).await;
    let mut verdict = String::new();
    for _ in 0..100 {
        let page = ui.get(&job_url).await;
        if page.body.contains("data-verify=\"failed\"") {
            verdict = page.body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(verdict.contains(".manifest.json missing"), "{verdict}");
    assert!(
        !verdict.contains(&app.bucket_root.display().to_string()),
        "no server path on a page"
    );

    let deleted = ui
        .post(&format!("/ui/groups/{g}/buckets/{bucket}/delete"), &[])
        .await;
    let page = ui.get(deleted.location()).await;
    assert!(
        page.body
            .contains(&format!("Export bucket {bucket} deleted"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fragments_stream_as_server_sent_events() {
    let app = TestApp::start().await;
    project_with_a_snapshot(&app).await;
    let (public, private) = key(&app, Role::GroupBackupManager).await;
    let mut ui = Ui::new(&app.server.url());
    ui.sign_in_key(&public, &private).await;
    let response = ui
        .http
        .get(format!("{}/ui/groups/{}/nodes/live", ui.base, app.group_id))
        .header(
            "Cookie",
            format!("snapex_session={}", ui.session.as_ref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut response = response;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a first event")
            .unwrap()
            .expect("more of the stream");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: fragment\ndata: "), "{text}");
    assert!(text.contains("(this node)"), "{text}");

    // Signed out, the stream says so and ends.
    ui.post("/ui/logout", &[]).await;
    let mut text = String::new();
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    })
    .await
    .expect("the stream ends after sign-out");
    assert!(rest.contains("event: expired"), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_shows_a_secret_and_every_page_sets_the_security_headers() {
    let app = TestApp::start().await;
    let (snapshot, bucket) = project_with_a_snapshot(&app).await;
    let job = app.create_export("prod", &snapshot, &bucket).await;
    let job_id = job["id"].as_str().unwrap();
    app.wait_final("prod", job_id, LIMIT).await;
    let (public, private) = key(&app, Role::GroupOwner).await;
    let mut ui = Ui::new(&app.server.url());
    ui.sign_in_key(&public, &private).await;
    let session = ui.session.clone().unwrap();
    let g = &app.group_id;
    let owner_secret = app.deployment.owner.client_secret.clone();
    for path in [
        "/ui/".to_string(),
        format!("/ui/groups/{g}/jobs"),
        format!("/ui/groups/{g}/clusters/prod/jobs/{job_id}"),
        format!("/ui/groups/{g}/snapshots"),
        format!("/ui/groups/{g}/buckets"),
        format!("/ui/groups/{g}/nodes"),
    ] {
        let page = ui.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for secret in [&private, &session, &owner_secret] {
            assert!(
                !page.body.contains(secret.as_str()),
                "{path} shows a secret"
            );
        }
        assert!(
            !page.body.contains(&app.bucket_root.display().to_string()),
            "{path} shows the bucket root"
        );
        let header = |name: &str| page.headers[name].to_str().unwrap().to_string();
        assert!(header("content-security-policy").contains("script-src 'self'"));
        assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
        assert_eq!(header("cache-control"), "no-store");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    let job_page = ui
        .get(&format!("/ui/groups/{g}/clusters/prod/jobs/{job_id}"))
        .await;
    assert!(job_page.body.contains("data-state=\"Successful\""));
    assert!(
        job_page.body.contains("metadata.json"),
        "files from the manifest"
    );
}

// ---------------------------------------------------------------------------------------------
// The browser.

/// The directory holding `playwright-core` (`scripts/test` installs it and exports
/// `SNAPEX_TEST_PLAYWRIGHT`), and the browser.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("SNAPEX_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let playwright = std::env::var_os("SNAPEX_TEST_PLAYWRIGHT").map(PathBuf::from);
    let missing = match &playwright {
        _ if !chromium.exists() => Some(format!("no browser at {}", chromium.display())),
        None => Some("SNAPEX_TEST_PLAYWRIGHT is not set".to_string()),
        Some(p) if !p.join("playwright-core").is_dir() => {
            Some(format!("no playwright-core in {}", p.display()))
        }
        Some(_) => None,
    };
    match (missing, playwright) {
        (None, Some(p)) => Some((p, chromium)),
        (Some(why), _) => {
            assert!(
                !support::services_required(),
                "the browser test needs Chromium and playwright-core ({why}): scripts/test installs them"
            );
            eprintln!(
                "note: skipping the browser test ({why}); scripts/test installs what it needs"
            );
            None
        }
        (None, None) => None,
    }
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_exports_watches_verifies_and_cancels() {
    let Some((playwright, chromium)) = browser() else {
        return;
    };
    // One replica-set slot, so that the second export waits behind the first; progress
    // published five times a second, so that the browser sees it move.
    let app = TestApp::start_with(TestDeployment::builder().create().await, |config| {
        config.deployment.max_concurrent_replica_sets = 1;
        config.deployment.heartbeat_every = Duration::from_millis(200);
    })
    .await;
    let dumps = tempfile::tempdir().unwrap();
    let dump = support::sample_dump(&dumps.path().join("sample"), "48MiB", 15);
    app.register_cluster("prod", &["rs0"]).await;
    let a = app
        .import_snapshot("prod", &["rs0"], &dump, json!({"description": "nightly"}))
        .await;
    let b = app
        .import_snapshot("prod", &["rs0"], &dump, json!({"description": "weekly"}))
        .await;
    let bucket = app.filesystem_bucket_id("lake").await;
    let operator = key(&app, Role::GroupBackupManager).await;
    let read_only = key(&app, Role::GroupReadOnly).await;
    let shots = tempfile::Builder::new()
        .prefix("snapex-dashboard-shots-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let output = tokio::task::spawn_blocking({
        let env: Vec<(&str, String)> = vec![
            ("SNAPEX_URL", app.server.url()),
            ("SNAPEX_GROUP", app.group_id.clone()),
            ("SNAPEX_CLUSTER", "prod".into()),
            ("SNAPEX_SNAPSHOT_A", a["id"].as_str().unwrap().into()),
            ("SNAPEX_SNAPSHOT_B", b["id"].as_str().unwrap().into()),
            ("SNAPEX_BUCKET", bucket.clone()),
            ("SNAPEX_OPERATOR", format!("{}:{}", operator.0, operator.1)),
            (
                "SNAPEX_READ_ONLY",
                format!("{}:{}", read_only.0, read_only.1),
            ),
            ("SNAPEX_SHOTS", shots.path().display().to_string()),
            ("SNAPEX_PLAYWRIGHT", playwright.display().to_string()),
            ("SNAPEX_CHROMIUM", chromium.display().to_string()),
        ];
        move || {
            Command::new("node")
                .arg(repo_file("tests/ui/e2e.mjs"))
                .envs(env)
                .output()
                .expect("run node")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );

    // What the browser did, as the API sees it.
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the result line");
    assert_eq!(result["result"], "passed");
    let job_a = app.job("prod", result["jobA"].as_str().unwrap()).await;
    assert_eq!(job_a["state"], "Successful");
    assert_eq!(
        job_a["customData"],
        json!([{"key": "team", "value": "data"}])
    );
    let job_b = app.job("prod", result["jobB"].as_str().unwrap()).await;
    assert_eq!(job_b["state"], "Cancelled");
    assert_eq!(
        jobs_of(&app).await.len(),
        2,
        "the read-only key's forged POST made nothing"
    );
    for page in [
        "projects",
        "snapshots",
        "job-queued",
        "jobs",
        "job-cancelled",
        "job",
        "buckets",
        "nodes",
        "login",
        "snapshots-read-only-phone",
    ] {
        let file = shots.path().join(format!("{page}.png"));
        let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {} saved", file.display());
    }
    // `SNAPEX_DASHBOARD_SCREENSHOT=docs/dashboard.png` refreshes the README's picture.
    if let Some(target) = std::env::var_os("SNAPEX_DASHBOARD_SCREENSHOT") {
        std::fs::copy(
            shots.path().join("job.png"),
            repo_file(&target.to_string_lossy()),
        )
        .unwrap();
    }
    eprintln!("screenshots in {}", shots.keep().display());
}

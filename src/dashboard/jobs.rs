//! Export jobs: a project's jobs (every cluster, filtered by state and cluster) with the
//! deployment's replica-set slots and each queued job's place in the queue, and one job's
//! page: its per-replica-set progress, `stateReason`, files (from `.manifest.json`), and the
//! **Verify** and **Cancel** actions. Both pages are live ([`super::live`]).
//!
//! Reading jobs needs Project Backup Manager (as `GET …/backup/exports`); cancelling needs
//! Project Backup Export Operator (as `…/cancel`), through `service::export_jobs::cancel`.
//! Verify reads the export, so it needs what reading the job needs; it runs
//! `export::verify::verify` in a background task of this node, one verification at a time,
//! and the job's live fragment shows the outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use object_store::ObjectStoreExt;
use serde::Deserialize;

use super::layout::{self, Tab, count, csrf_field, maybe_time, state_badge, time};
use super::live;
use super::session::{Flash, Post};
use super::{Dashboard, PageText, UiError, Viewer, cluster_for, need, project_for, refusal};
use crate::export::verify::VerifyReport;
use crate::export::{MANIFEST_FILE, ManifestObject, ReplicaSetSummary};
use crate::service::export_jobs;
use crate::store::{ExportJob, JobFilter, JobState, Page};

/// Jobs shown on the list (the newest first).
const LIST_LIMIT: u32 = 100;
/// Files shown on a job's page.
const FILES_SHOWN: usize = 500;
/// Manifests kept in memory (finished exports do not change).
const MANIFESTS_KEPT: usize = 256;

// ---------------------------------------------------------------------------------------------
// What the pages share: the deployment's slots and queue, a job's totals.

/// The deployment's admission state: replica sets exporting, the limit, the queue in order.
struct Slots {
    running: u64,
    limit: u64,
    queue: Vec<String>,
}

impl Slots {
    async fn load(dashboard: &Dashboard) -> Result<Slots, UiError> {
        Ok(Slots {
            running: dashboard.store.running_replica_sets().await?,
            limit: dashboard.config.max_concurrent_replica_sets,
            queue: dashboard.store.queue_order().await?,
        })
    }

    /// A queued job's 1-based place in the deployment's queue.
    fn position(&self, job_id: &str) -> Option<usize> {
        self.queue.iter().position(|id| id == job_id).map(|i| i + 1)
    }

    fn summary(&self) -> Markup {
        html! {
            p.slots data-running=(self.running) data-limit=(self.limit) {
                "Replica sets exporting across the deployment: "
                strong { (self.running) " of " (self.limit) }
                " · queued jobs: " strong { (self.queue.len()) }
            }
        }
    }
}

/// A replica set's summary, recorded when its export finished.
fn summary_of(summary: Option<&str>) -> Option<ReplicaSetSummary> {
    serde_json::from_str(summary?).ok()
}

/// Documents and bytes written, where known (from the finished replica sets' summaries).
fn written(job: &ExportJob) -> (Option<u64>, Option<u64>) {
    let summaries: Vec<ReplicaSetSummary> = job
        .parts
        .iter()
        .filter_map(|p| summary_of(p.summary.as_deref()))
        .collect();
    if summaries.is_empty() {
        return (None, None);
    }
    let documents = summaries.iter().map(|s| s.documents).sum();
    let bytes = summaries
        .iter()
        .flat_map(|s| s.objects.iter())
        .map(|o| o.bytes)
        .sum();
    (Some(documents), Some(bytes))
}

fn known(value: Option<u64>, format: fn(u64) -> String) -> Markup {
    match value {
        Some(v) => html! { (format(v)) },
        None => html! { span.none { "—" } },
    }
}

fn job_url(job: &ExportJob) -> String {
    format!(
        "/ui/groups/{}/clusters/{}/jobs/{}",
        job.group_id, job.cluster_name, job.id
    )
}

/// The end of a prefix (`…/<snapshot date>/<timestamp>`): the rest is the same for every job
/// of a cluster and is on the job's page.
fn short_prefix(prefix: &str) -> String {
    let parts: Vec<&str> = prefix.rsplitn(3, '/').collect();
    match parts.as_slice() {
        [ts, date, _rest] => format!("…/{date}/{ts}"),
        _ => prefix.to_string(),
    }
}

fn cancel_form(viewer: &Viewer, job: &ExportJob) -> Markup {
    html! {
        form.inline method="post" action={ (job_url(job)) "/cancel" }
            data-confirm={ "Cancel export job " (job.id) "?" } {
            (csrf_field(viewer))
            button.danger type="submit" data-action="cancel" { "Cancel" }
        }
    }
}

/// Bucket names by bucket id.
type BucketNames = HashMap<String, String>;

/// Bucket names by id, for the tables.
async fn bucket_names(dashboard: &Dashboard, group_id: &str) -> Result<BucketNames, UiError> {
    let (buckets, _) = dashboard
        .store
        .list_export_buckets(group_id, Page::default())
        .await?;
    Ok(buckets.into_iter().map(|b| (b.id, b.bucket_name)).collect())
}

// ---------------------------------------------------------------------------------------------
// The list.

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    cluster: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> Result<JobFilter, UiError> {
        let state = match self.state.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                JobState::parse(s)
                    .ok_or_else(|| UiError::bad_request(format!("unknown job state {s}")))?,
            ),
        };
        Ok(JobFilter {
            state,
            cluster_name: self.cluster.clone().filter(|c| !c.is_empty()),
            ..JobFilter::default()
        })
    }

    fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = self.state.as_deref().filter(|s| !s.is_empty()) {
            q.append_pair("state", s);
        }
        if let Some(c) = self.cluster.as_deref().filter(|c| !c.is_empty()) {
            q.append_pair("cluster", c);
        }
        q.finish()
    }
}

async fn list_fragment(
    dashboard: &Dashboard,
    viewer: &Viewer,
    group_id: &str,
    filter: &JobFilter,
) -> Result<Markup, UiError> {
    let (jobs, total) = dashboard
        .store
        .list_project_export_jobs(group_id, filter, LIST_LIMIT)
        .await?;
    let slots = Slots::load(dashboard).await?;
    let names = bucket_names(dashboard, group_id).await?;
    let can_cancel = viewer.can(group_id, need::EXPORT);
    Ok(html! {
        (slots.summary())
        @if jobs.is_empty() {
            p.empty { "No export jobs match." }
        } @else {
            div.scroll {
                table.jobs {
                    thead { tr {
                        th { "State" } th { "Cluster" } th { "Snapshot" } th { "Bucket" } th { "Prefix" }
                        th { "Created" } th { "Finished" } th { "Collections" } th { "Documents" }
                        th { "Bytes" } th { "Queue" }
                        @if can_cancel { th {} }
                    } }
                    tbody {
                        @for job in &jobs {
                            @let (documents, bytes) = written(job);
                            tr data-job-id=(job.id) data-state=(job.state.as_str()) {
                                td { a href=(job_url(job)) { (state_badge(job.state)) } }
                                td { (job.cluster_name) }
                                td.id { (job.snapshot_id) }
                                td { (names.get(&job.export_bucket_id).map(String::as_str).unwrap_or(&job.export_bucket_id)) }
                                td.prefix title=(job.prefix) { a href=(job_url(job)) { (short_prefix(&job.prefix)) } }
                                td { (time(job.created_at)) }
                                td { (maybe_time(job.finished_at)) }
                                td.num data-collections { (job.exported_collections()) "/" (job.total_collections()) }
                                td.num { (known(documents, count)) }
                                td.num { (known(bytes, layout::bytes)) }
                                td.num { @if let Some(p) = slots.position(&job.id) { "#" (p) } }
                                @if can_cancel {
                                    td { @if !job.state.is_final() { (cancel_form(viewer, job)) } }
                                }
                            }
                        }
                    }
                }
            }
            @if total > jobs.len() as u64 {
                p.hint { "Showing the newest " (jobs.len()) " of " (total) " jobs." }
            }
        }
    })
}

/// `GET /ui/groups/{groupId}/jobs?state=&cluster=`.
pub async fn list(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(group_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Markup, UiError> {
    let project = project_for(&dashboard, &viewer.principal, &group_id, need::READ_JOBS).await?;
    let filter = query.filter()?;
    let (clusters, _) = dashboard
        .store
        .list_clusters(&group_id, Page::default())
        .await?;
    let fragment = list_fragment(&dashboard, &viewer, &group_id, &filter).await?;
    let live_url = format!("/ui/groups/{group_id}/jobs/live?{}", query.query_string());
    let flash = viewer.take_flash(&dashboard);
    Ok(layout::project_page(
        "Export jobs",
        &viewer,
        &project,
        Tab::Jobs,
        flash,
        html! {
            h1 { "Export jobs" }
            form.filters method="get" {
                label { "State "
                    select name="state" {
                        option value="" { "any" }
                        @for s in [JobState::Queued, JobState::InProgress, JobState::Successful, JobState::Failed, JobState::Cancelled] {
                            option value=(s.as_str()) selected[filter.state == Some(s)] { (s.as_str()) }
                        }
                    }
                }
                label { "Cluster "
                    select name="cluster" {
                        option value="" { "any" }
                        @for c in &clusters {
                            option value=(c.name) selected[filter.cluster_name.as_deref() == Some(c.name.as_str())] { (c.name) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            div #jobs data-live=(live_url) { (fragment) }
        },
    ))
}

/// `GET /ui/groups/{groupId}/jobs/live`: the list's fragment as Server-Sent Events.
pub async fn list_live(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(group_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, UiError> {
    project_for(&dashboard, &viewer.principal, &group_id, need::READ_JOBS).await?;
    let filter = query.filter()?;
    let render = live::render(move |d: Dashboard, v: Viewer| {
        let group_id = group_id.clone();
        let filter = filter.clone();
        async move {
            project_for(&d, &v.principal, &group_id, need::READ_JOBS).await?;
            list_fragment(&d, &v, &group_id, &filter).await
        }
    });
    Ok(live::stream(dashboard, viewer, render).into_response())
}

// ---------------------------------------------------------------------------------------------
// One job.

/// A verification of a job's export, as this node remembers it.
#[derive(Debug, Clone)]
pub enum VerifyRun {
    Running {
        started: DateTime<Utc>,
    },
    Done {
        finished: DateTime<Utc>,
        report: VerifyReport,
    },
    /// The export could not be reached at all.
    Failed {
        finished: DateTime<Utc>,
        message: PageText,
    },
}

/// This node's verifications, by job id; one runs at a time.
pub struct Verifications {
    runs: Mutex<HashMap<String, VerifyRun>>,
    gate: tokio::sync::Semaphore,
}

impl Default for Verifications {
    fn default() -> Self {
        Verifications {
            runs: Mutex::new(HashMap::new()),
            gate: tokio::sync::Semaphore::new(1),
        }
    }
}

impl Verifications {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, VerifyRun>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, job_id: &str) -> Option<VerifyRun> {
        self.runs().get(job_id).cloned()
    }

    /// Marks the job's verification running; false when one already is.
    fn begin(&self, job_id: &str) -> bool {
        let mut runs = self.runs();
        if matches!(runs.get(job_id), Some(VerifyRun::Running { .. })) {
            return false;
        }
        runs.insert(
            job_id.to_string(),
            VerifyRun::Running {
                started: crate::store::now(),
            },
        );
        true
    }

    fn finish(&self, job_id: &str, run: VerifyRun) {
        self.runs().insert(job_id.to_string(), run);
    }
}

/// A job's files as its manifest lists them, or why they cannot be shown.
type Files = Result<Arc<Vec<ManifestObject>>, PageText>;

/// Manifests of finished jobs, by job id.
#[derive(Default)]
pub struct ManifestCache {
    files: Mutex<HashMap<String, Files>>,
}

impl ManifestCache {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Files>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct Manifest {
    objects: Vec<ManifestObject>,
}

/// Opens the export of `job` (its bucket, with the bucket's role, at its prefix).
async fn export_location(
    dashboard: &Dashboard,
    job: &ExportJob,
) -> Result<crate::storage::Location, PageText> {
    let bucket = dashboard
        .store
        .get_export_bucket(&job.group_id, &job.export_bucket_id)
        .await
        .map_err(|e| PageText::plain(refusal(e)))?
        .ok_or_else(|| {
            PageText::plain(format!(
                "export bucket {} no longer exists",
                job.export_bucket_id
            ))
        })?;
    let location = crate::service::buckets::location(dashboard, &bucket)
        .await
        .map_err(|e| {
            PageText::scrubbed(
                dashboard,
                &format!(
                    "cannot open the export bucket: {}",
                    crate::errors::chain(&e)
                ),
            )
        })?;
    Ok(location.child(&job.prefix))
}

/// The job's files, and whether the answer is for good (the manifest, or its absence from a
/// finished export) rather than a failure to reach the bucket that may pass.
async fn read_manifest(dashboard: &Dashboard, job: &ExportJob) -> (Files, bool) {
    match manifest_of(dashboard, job).await {
        Ok(files) => (Ok(files), true),
        Err((why, lasting)) => (Err(why), lasting),
    }
}

async fn manifest_of(
    dashboard: &Dashboard,
    job: &ExportJob,
) -> Result<Arc<Vec<ManifestObject>>, (PageText, bool)> {
    let location = export_location(dashboard, job)
        .await
        .map_err(|why| (why, false))?;
    let path = location.path(MANIFEST_FILE);
    let bytes = match location.store.get(&path).await {
        Ok(result) => result.bytes().await,
        Err(e) => Err(e),
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => {
            return Err((
                PageText::plain(format!(
                    "no {MANIFEST_FILE}: the export did not finish (files it wrote stay in the bucket)"
                )),
                true,
            ));
        }
        Err(e) => {
            return Err((
                PageText::scrubbed(dashboard, &format!("cannot read {MANIFEST_FILE}: {e}")),
                false,
            ));
        }
    };
    serde_json::from_slice::<Manifest>(&bytes)
        .map(|m| Arc::new(m.objects))
        .map_err(|e| {
            (
                PageText::plain(format!("{MANIFEST_FILE} is not a valid manifest: {e}")),
                true,
            )
        })
}

/// The files of a finished job (read once, then from memory; a bucket that could not be
/// reached is tried again next time).
async fn files_of(dashboard: &Dashboard, job: &ExportJob) -> Files {
    if let Some(files) = dashboard.manifests.map().get(&job.id) {
        return files.clone();
    }
    let (files, lasting) = read_manifest(dashboard, job).await;
    if lasting {
        let mut map = dashboard.manifests.map();
        if map.len() >= MANIFESTS_KEPT {
            map.clear();
        }
        map.insert(job.id.clone(), files.clone());
    }
    files
}

fn files_section(files: &Files) -> Markup {
    html! {
        section.files {
            h2 { "Files" }
            @match files {
                Err(why) => p.hint data-files="none" { (why) },
                Ok(files) => {
                    p.hint data-files=(files.len()) {
                        (files.len()) " objects in " code { (MANIFEST_FILE) } ", "
                        (count(files.iter().map(|f| f.documents).sum())) " documents, "
                        (layout::bytes(files.iter().map(|f| f.bytes).sum())) "."
                        @if files.len() > FILES_SHOWN { " The first " (FILES_SHOWN) " are listed." }
                    }
                    div.scroll {
                        table.files {
                            thead { tr { th { "Key" } th { "Replica set" } th { "Collection" } th { "Documents" } th { "Bytes" } th { "SHA-256" } } }
                            tbody {
                                @for f in files.iter().take(FILES_SHOWN) {
                                    tr {
                                        td.prefix { (f.key) }
                                        td { (f.replica_set) }
                                        td { (f.collection) }
                                        td.num { (count(f.documents)) }
                                        td.num { (layout::bytes(f.bytes)) }
                                        td.id title=(f.sha256) { (f.sha256.get(..12).unwrap_or(&f.sha256)) "…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn verify_section(viewer: &Viewer, job: &ExportJob, run: Option<&VerifyRun>) -> Markup {
    let can = viewer.can(&job.group_id, need::READ_JOBS) && job.state.is_final();
    let running = matches!(run, Some(VerifyRun::Running { .. }));
    html! {
        section #verify data-verify=(match run {
            None => "none",
            Some(VerifyRun::Running { .. }) => "running",
            Some(VerifyRun::Done { report, .. }) if report.is_ok() => "passed",
            Some(_) => "failed",
        }) {
            h2 { "Verify" }
            @match run {
                None => p.hint { "Re-reads every object of the export and checks it against " code { (MANIFEST_FILE) } " (size, SHA-256, gzip, line count) and " code { ".complete" } "." },
                Some(VerifyRun::Running { started }) => p { "Verifying… (started " (time(*started)) ")" },
                Some(VerifyRun::Done { finished, report }) => {
                    @if report.is_ok() {
                        p.verify-ok { "Verified: " (report.objects_checked) " objects, " (count(report.documents)) " documents, " (layout::bytes(report.bytes)) " — no problem (" (time(*finished)) ")." }
                    } @else {
                        p.verify-bad { (report.problems.len()) " problems in " (report.objects_checked) " objects (" (time(*finished)) "):" }
                        ul.problems { @for p in report.problems.iter().take(100) { li { (p) } } }
                    }
                },
                Some(VerifyRun::Failed { finished, message }) => p.verify-bad { "Cannot verify: " (message) " (" (time(*finished)) ")" },
            }
            @if can && !running {
                form.inline method="post" action={ (job_url(job)) "/verify" } {
                    (csrf_field(viewer))
                    button type="submit" data-action="verify" { "Verify" }
                }
            }
        }
    }
}

async fn job_fragment(
    dashboard: &Dashboard,
    viewer: &Viewer,
    job: &ExportJob,
) -> Result<Markup, UiError> {
    let slots = Slots::load(dashboard).await?;
    let (documents, bytes) = written(job);
    let now = crate::store::now();
    let files = if job.state.is_final() && job.state != JobState::Cancelled {
        Some(files_of(dashboard, job).await)
    } else {
        None
    };
    let run = dashboard.verifications.get(&job.id);
    Ok(html! {
        div.status {
            span #job-state data-state=(job.state.as_str()) { (state_badge(job.state)) }
            @if let Some(p) = slots.position(&job.id) {
                span.queue data-queue-position=(p) {
                    " #" (p) " in the deployment's queue: it starts when fewer than "
                    (slots.limit) " replica sets are exporting (now " (slots.running) ")."
                }
            }
            @if job.cancel_requested && !job.state.is_final() {
                span.hint { " Cancel requested: the export stops at its next heartbeat." }
            }
            @if !job.state.is_final() && viewer.can(&job.group_id, need::EXPORT) {
                " " (cancel_form(viewer, job))
            }
        }
        dl.facts {
            dt { "Started" } dd { (maybe_time(job.started_at)) }
            dt { "Finished" } dd { (maybe_time(job.finished_at)) }
            @if let (Some(s), Some(f)) = (job.started_at, job.finished_at) {
                dt { "Took" } dd { (layout::duration(f - s)) }
                @if let (Some(docs), Some(b), Some(ms)) = (documents, bytes, u64::try_from((f - s).num_milliseconds()).ok().filter(|ms| *ms > 0)) {
                    dt { "Rate" } dd { (count(docs * 1000 / ms)) " documents/s, " (layout::bytes(b * 1000 / ms)) "/s written" }
                }
            }
            dt { "Collections" } dd data-collections { (job.exported_collections()) "/" (job.total_collections()) }
            dt { "Documents" } dd { (known(documents, count)) }
            dt { "Bytes written" } dd { (known(bytes, layout::bytes)) }
        }
        @if let Some(reason) = &job.state_reason {
            div.reason data-error-code=(reason.error_code) {
                strong { (reason.error_code) } ": " (reason.message)
            }
        }
        h2 { "Replica sets" }
        div.scroll {
            table.parts {
                thead { tr { th { "Replica set" } th { "State" } th { "Collections" } th { "Node" } th { "Lease" } th { "Documents" } th { "Bytes" } } }
                tbody {
                    @for part in &job.parts {
                        @let summary = summary_of(part.summary.as_deref());
                        tr data-replica-set=(part.replica_set_name) {
                            td { (part.replica_set_name) }
                            td { (part.state.as_str()) }
                            td.num {
                                progress max=(part.total_collections.max(1)) value=(part.exported_collections) {}
                                " " span data-progress { (part.exported_collections) "/" (part.total_collections) }
                            }
                            td { (part.lease_owner.as_deref().unwrap_or("—")) }
                            td {
                                @if let (Some(exp), Some(_)) = (part.lease_expires_at, part.lease_owner.as_ref()) {
                                    @if exp > now { "expires in " (layout::duration(exp - now)) } @else { "expired" }
                                } @else { "—" }
                            }
                            td.num { (known(summary.as_ref().map(|s| s.documents), count)) }
                            td.num { (known(summary.as_ref().map(|s| s.objects.iter().map(|o| o.bytes).sum()), layout::bytes)) }
                        }
                    }
                }
            }
        }
        (verify_section(viewer, job, run.as_ref()))
        @if let Some(files) = &files { (files_section(files)) }
    })
}

/// `GET /ui/groups/{groupId}/clusters/{clusterName}/jobs/{jobId}`.
pub async fn page(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path((group_id, cluster_name, job_id)): Path<(String, String, String)>,
) -> Result<Markup, UiError> {
    let (project, _) = cluster_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        &cluster_name,
        need::READ_JOBS,
    )
    .await?;
    let job = export_jobs::get(&dashboard, &group_id, &cluster_name, &job_id).await?;
    let names = bucket_names(&dashboard, &group_id).await?;
    let fragment = job_fragment(&dashboard, &viewer, &job).await?;
    let flash = viewer.take_flash(&dashboard);
    Ok(layout::project_page(
        &format!("Export job {}", job.id),
        &viewer,
        &project,
        Tab::Jobs,
        flash,
        html! {
            p.crumbs { a href={ "/ui/groups/" (group_id) "/jobs" } { "Export jobs" } " / " (job.id) }
            h1 { "Export job " span.id { (job.id) } }
            dl.facts {
                dt { "Cluster" } dd { (job.cluster_name) }
                dt { "Snapshot" } dd.id { (job.snapshot_id) }
                dt { "Bucket" } dd { (names.get(&job.export_bucket_id).map(String::as_str).unwrap_or(&job.export_bucket_id)) }
                dt { "Prefix" } dd.prefix { (job.prefix) }
                dt { "Created" } dd { (time(job.created_at)) }
                @if !job.custom_data.is_empty() {
                    dt { "Custom data" }
                    dd { @for (i, l) in job.custom_data.iter().enumerate() { @if i > 0 { ", " } code { (l.key) "=" (l.value) } } }
                }
            }
            div #job data-live={ (job_url(&job)) "/live" } { (fragment) }
        },
    ))
}

/// `GET …/jobs/{jobId}/live`.
pub async fn page_live(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path((group_id, cluster_name, job_id)): Path<(String, String, String)>,
) -> Result<Response, UiError> {
    cluster_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        &cluster_name,
        need::READ_JOBS,
    )
    .await?;
    export_jobs::get(&dashboard, &group_id, &cluster_name, &job_id).await?;
    let render = live::render(move |d: Dashboard, v: Viewer| {
        let (group_id, cluster_name, job_id) =
            (group_id.clone(), cluster_name.clone(), job_id.clone());
        async move {
            cluster_for(&d, &v.principal, &group_id, &cluster_name, need::READ_JOBS).await?;
            let job = export_jobs::get(&d, &group_id, &cluster_name, &job_id).await?;
            job_fragment(&d, &v, &job).await
        }
    });
    Ok(live::stream(dashboard, viewer, render).into_response())
}

/// `POST …/jobs/{jobId}/cancel`, through `service::export_jobs::cancel`.
pub async fn cancel(
    State(dashboard): State<Dashboard>,
    Path((group_id, cluster_name, job_id)): Path<(String, String, String)>,
    post: Post,
) -> Result<Response, UiError> {
    let viewer = post.viewer;
    cluster_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        &cluster_name,
        need::EXPORT,
    )
    .await?;
    let job = export_jobs::get(&dashboard, &group_id, &cluster_name, &job_id).await?;
    let target = job_url(&job);
    let flash = match export_jobs::cancel(&dashboard, job).await {
        Ok(job) if job.state == JobState::Cancelled => {
            Flash::ok(format!("Export job {} cancelled.", job.id))
        }
        Ok(job) if job.state.is_final() => Flash::error(format!(
            "Export job {} had already ended {}.",
            job.id,
            job.state.as_str()
        )),
        Ok(job) => Flash::ok(format!(
            "Cancel requested: export job {} stops within seconds.",
            job.id
        )),
        Err(e) => Flash::error(refusal(e)),
    };
    viewer.flash(&dashboard, flash);
    Ok(Redirect::to(&target).into_response())
}

/// `POST …/jobs/{jobId}/verify`: starts a verification of the job's export in the background.
pub async fn verify(
    State(dashboard): State<Dashboard>,
    Path((group_id, cluster_name, job_id)): Path<(String, String, String)>,
    post: Post,
) -> Result<Response, UiError> {
    let viewer = post.viewer;
    cluster_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        &cluster_name,
        need::READ_JOBS,
    )
    .await?;
    let job = export_jobs::get(&dashboard, &group_id, &cluster_name, &job_id).await?;
    let target = job_url(&job);
    let flash = if !job.state.is_final() {
        Flash::error("An export can be verified once it has ended.")
    } else if dashboard.verifications.begin(&job.id) {
        tracing::info!(job_id = %job.id, "dashboard verification started");
        tokio::spawn(run_verification(dashboard.clone(), job));
        Flash::ok("Verification started.")
    } else {
        Flash::error("A verification of this export is already running.")
    };
    viewer.flash(&dashboard, flash);
    Ok(Redirect::to(&target).into_response())
}

/// Verifies the job's export and records the outcome. `export::verify` decompresses and
/// hashes on the blocking pool; the gate keeps one verification at a time per node.
async fn run_verification(dashboard: Dashboard, job: ExportJob) {
    let outcome = match dashboard.verifications.gate.acquire().await {
        Ok(_permit) => match export_location(&dashboard, &job).await {
            Ok(location) => {
                let mut report = crate::export::verify::verify(&location).await;
                for problem in &mut report.problems {
                    *problem =
                        PageText::scrubbed(&dashboard, &problem.replace(&location.url, "<prefix>"))
                            .into_string();
                }
                VerifyRun::Done {
                    finished: crate::store::now(),
                    report,
                }
            }
            Err(message) => VerifyRun::Failed {
                finished: crate::store::now(),
                message,
            },
        },
        Err(_) => VerifyRun::Failed {
            finished: crate::store::now(),
            message: PageText::plain("the node is shutting down"),
        },
    };
    if let VerifyRun::Done { report, .. } = &outcome {
        tracing::info!(job_id = %job.id, objects = report.objects_checked, problems = report.problems.len(), "dashboard verification finished");
    }
    dashboard.verifications.finish(&job.id, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_shortened_to_its_date_and_timestamp() {
        assert_eq!(
            short_prefix("exported_snapshots/o/p/c/2026-08-10T0327/1786334845"),
            "…/2026-08-10T0327/1786334845"
        );
        assert_eq!(short_prefix("a/b"), "a/b");
    }
}

//! Export buckets: each with its permission check, the auto-export policies and active jobs
//! that use it (which is why a delete is refused), and the **Check permissions** and
//! **Delete** actions.
//!
//! Reading needs Project Read Only (as `GET …/exportBuckets` and the schedule); the active
//! jobs are listed for roles that may read jobs (Project Backup Manager). Checking and
//! deleting need Project Backup Manager (as `POST`/`DELETE …/exportBuckets`); the check is
//! `service::buckets::permission_check` (the same write of `.permissioncheck` as when a bucket
//! is added), the delete is `service::buckets::delete` with its guards.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::layout::{self, Tab, csrf_field, state_badge, time};
use super::session::{Flash, Post};
use super::{Dashboard, PageText, UiError, Viewer, need, project_for, refusal};
use crate::service::{buckets, schedules};
use crate::store::{ExportBucket, FrequencyType, JobFilter, Page};

/// Active jobs listed per bucket.
const ACTIVE_SHOWN: u32 = 20;

/// The last permission check this node ran for a bucket.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub at: DateTime<Utc>,
    pub outcome: Result<(), PageText>,
}

/// Permission checks run from the dashboard, by bucket id (this node's memory).
#[derive(Default)]
pub struct Checks {
    results: Mutex<HashMap<String, CheckResult>>,
}

impl Checks {
    fn results(&self) -> std::sync::MutexGuard<'_, HashMap<String, CheckResult>> {
        self.results.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An auto-export policy naming a bucket.
struct PolicyUse {
    cluster: String,
    enabled: bool,
    frequency: Option<FrequencyType>,
}

fn buckets_url(group_id: &str) -> String {
    format!("/ui/groups/{group_id}/buckets")
}

fn bucket_row(
    viewer: &Viewer,
    bucket: &ExportBucket,
    check: Option<&CheckResult>,
    policies: &[PolicyUse],
    active: Option<&[crate::store::ExportJob]>,
) -> Markup {
    let manage = viewer.can(&bucket.group_id, need::MANAGE_BUCKETS);
    let action = |what: &str| {
        format!(
            "/ui/groups/{}/buckets/{}/{what}",
            bucket.group_id, bucket.id
        )
    };
    html! {
        section.bucket data-bucket-id=(bucket.id) {
            h2 { (bucket.bucket_name) " " span.kind { (bucket.cloud_provider.as_str()) } }
            dl.facts {
                dt { "Id" } dd.id { (bucket.id) }
                @if let Some(region) = &bucket.region { dt { "Region" } dd { (region) } }
                @if let Some(url) = &bucket.service_url { dt { "Service URL" } dd { (url) } }
                @if let Some(role) = &bucket.role_id { dt { "Access role" } dd.id { (role) } }
                dt { "Added" } dd { (time(bucket.created_at)) }
                dt { "Permission check" }
                dd data-check=(match check { None => "at-creation", Some(c) if c.outcome.is_ok() => "passed", Some(_) => "failed" }) {
                    @match check {
                        None => { "passed when the bucket was added (" (time(bucket.created_at)) "): a bucket that cannot be written is never added" },
                        Some(CheckResult { at, outcome: Ok(()) }) => { "passed " (time(*at)) },
                        Some(CheckResult { at, outcome: Err(why) }) => span.bad { "failed " (time(*at)) ": " (why) },
                    }
                }
                dt { "Auto-export policies" }
                dd {
                    @if policies.is_empty() { "none" }
                    @for (i, p) in policies.iter().enumerate() {
                        @if i > 0 { "; " }
                        "cluster " strong { (p.cluster) } ": "
                        (p.frequency.map(|f| f.as_str()).unwrap_or("no frequency"))
                        ", auto-export " (if p.enabled { "enabled" } else { "disabled" })
                    }
                }
                dt { "Active export jobs" }
                dd {
                    @match active {
                        None => span.hint { "shown to roles that may read export jobs" },
                        Some([]) => "none",
                        Some(jobs) => {
                            @for (i, j) in jobs.iter().enumerate() {
                                @if i > 0 { ", " }
                                a href={ "/ui/groups/" (j.group_id) "/clusters/" (j.cluster_name) "/jobs/" (j.id) } { (j.id) }
                                " " (state_badge(j.state))
                            }
                        }
                    }
                }
            }
            @if policies.iter().any(|p| p.enabled) || active.is_some_and(|a| !a.is_empty()) {
                p.hint { "A bucket that an auto-export policy or an active export job uses cannot be deleted." }
            }
            @if manage {
                div.actions {
                    form.inline method="post" action=(action("check")) {
                        (csrf_field(viewer))
                        button type="submit" data-action="check" { "Check permissions" }
                    }
                    form.inline method="post" action=(action("delete"))
                        data-confirm={ "Delete export bucket " (bucket.bucket_name) "? Its files stay." } {
                        (csrf_field(viewer))
                        button.danger type="submit" data-action="delete" { "Delete" }
                    }
                }
            }
        }
    }
}

/// `GET /ui/groups/{groupId}/buckets`.
pub async fn list(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(group_id): Path<String>,
) -> Result<Markup, UiError> {
    let project = project_for(&dashboard, &viewer.principal, &group_id, need::READ_PROJECT).await?;
    let store = &dashboard.store;
    let (bucket_list, _) = store
        .list_export_buckets(&group_id, Page::default())
        .await?;
    let (clusters, _) = store.list_clusters(&group_id, Page::default()).await?;
    let mut policies: HashMap<String, Vec<PolicyUse>> = HashMap::new();
    for cluster in &clusters {
        let schedule = schedules::current(&dashboard, cluster).await?;
        if let Some(bucket_id) = schedule
            .export
            .as_ref()
            .and_then(|e| e.export_bucket_id.clone())
        {
            policies.entry(bucket_id).or_default().push(PolicyUse {
                cluster: cluster.name.clone(),
                enabled: schedule.auto_export_enabled,
                frequency: schedule.export.as_ref().and_then(|e| e.frequency_type),
            });
        }
    }
    let read_jobs = viewer.can(&group_id, need::READ_JOBS);
    let mut sections = Vec::new();
    for bucket in &bucket_list {
        let active = if read_jobs {
            let filter = JobFilter {
                export_bucket_id: Some(bucket.id.clone()),
                active_only: true,
                ..JobFilter::default()
            };
            Some(
                store
                    .list_project_export_jobs(&group_id, &filter, ACTIVE_SHOWN)
                    .await?
                    .0,
            )
        } else {
            None
        };
        let check = dashboard.checks.results().get(&bucket.id).cloned();
        sections.push(bucket_row(
            &viewer,
            bucket,
            check.as_ref(),
            policies.get(&bucket.id).map(Vec::as_slice).unwrap_or(&[]),
            active.as_deref(),
        ));
    }
    let flash = viewer.take_flash(&dashboard);
    Ok(layout::project_page(
        "Buckets",
        &viewer,
        &project,
        Tab::Buckets,
        flash,
        html! {
            h1 { "Export buckets" }
            @if bucket_list.is_empty() {
                p.empty { "No export buckets. Add one through the API (" code { "POST …/backup/exportBuckets" } ")." }
            }
            @for s in sections { (s) }
        },
    ))
}

/// `POST …/buckets/{bucketId}/check`: writes the permission check object again.
pub async fn check(
    State(dashboard): State<Dashboard>,
    Path((group_id, bucket_id)): Path<(String, String)>,
    post: Post,
) -> Result<Response, UiError> {
    let viewer = post.viewer;
    project_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        need::MANAGE_BUCKETS,
    )
    .await?;
    crate::service::check_id("bucketId", &bucket_id)?;
    let bucket = buckets::get(&dashboard, &group_id, &bucket_id).await?;
    let outcome = match buckets::location(&dashboard, &bucket).await {
        Ok(location) => buckets::permission_check(&location)
            .await
            .map_err(|e| crate::errors::chain(&e)),
        Err(e) => Err(crate::errors::chain(&e)),
    };
    let outcome = outcome.map_err(|why| PageText::scrubbed(&dashboard, &why));
    let flash = match &outcome {
        Ok(()) => Flash::ok(format!(
            "Permission check of {} passed.",
            bucket.bucket_name
        )),
        Err(why) => Flash::error(format!(
            "Permission check of {} failed: {why}",
            bucket.bucket_name
        )),
    };
    dashboard.checks.results().insert(
        bucket.id.clone(),
        CheckResult {
            at: crate::store::now(),
            outcome,
        },
    );
    viewer.flash(&dashboard, flash);
    Ok(Redirect::to(&buckets_url(&group_id)).into_response())
}

/// `POST …/buckets/{bucketId}/delete`, through `service::buckets::delete` (refused while a
/// policy or an active job uses the bucket).
pub async fn delete(
    State(dashboard): State<Dashboard>,
    Path((group_id, bucket_id)): Path<(String, String)>,
    post: Post,
) -> Result<Response, UiError> {
    let viewer = post.viewer;
    project_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        need::MANAGE_BUCKETS,
    )
    .await?;
    crate::service::check_id("bucketId", &bucket_id)?;
    let flash = match buckets::delete(&dashboard, &group_id, &bucket_id).await {
        Ok(()) => {
            dashboard.checks.results().remove(&bucket_id);
            Flash::ok(format!(
                "Export bucket {bucket_id} deleted (its files stay)."
            ))
        }
        Err(e) => Flash::error(refusal(e)),
    };
    viewer.flash(&dashboard, flash);
    Ok(Redirect::to(&buckets_url(&group_id)).into_response())
}

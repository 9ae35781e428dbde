//! Snapshots of each cluster (parts, size, type, frequency, expiry) with **Export…** (pick a
//! bucket, custom data) and the import form.
//!
//! Reading needs Project Read Only (as `GET …/backup/snapshots`); exporting needs Project
//! Backup Export Operator (as `POST …/backup/exports`) and goes through
//! `service::export_jobs::create`; importing needs Project Backup Creator (as the import
//! extension) and goes through `service::snapshots::import`, with the project's snapshot
//! sources confined exactly as for the API.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Tab, csrf_field, maybe_time, time};
use super::session::{Flash, FormData, Post};
use super::{Dashboard, UiError, Viewer, cluster_for, need, project_for, refusal};
use crate::service::export_jobs::{self, JobRequest};
use crate::service::snapshots::{self, ImportRequest, PartRequest};
use crate::store::{Cluster, ExportBucket, FrequencyType, Label, Page, Snapshot, SnapshotType};

/// Custom data rows offered by the Export… form.
const CUSTOM_DATA_ROWS: usize = 3;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cluster: Option<String>,
}

fn snapshots_url(group_id: &str, cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!(
            "/ui/groups/{group_id}/snapshots?cluster={}",
            url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
        ),
        None => format!("/ui/groups/{group_id}/snapshots"),
    }
}

fn export_form(
    viewer: &Viewer,
    cluster: &Cluster,
    snapshot: &Snapshot,
    buckets: &[ExportBucket],
) -> Markup {
    html! {
        details.export {
            summary data-action="export" { "Export…" }
            @if buckets.is_empty() {
                p.hint { "No export bucket in this project: add one (Buckets) first." }
            } @else {
                form method="post" action={ "/ui/groups/" (cluster.group_id) "/clusters/" (cluster.name) "/snapshots/" (snapshot.id) "/export" } {
                    (csrf_field(viewer))
                    label { "Bucket "
                        select name="bucket" {
                            @for b in buckets {
                                option value=(b.id) { (b.bucket_name) " (" (b.cloud_provider.as_str()) ")" }
                            }
                        }
                    }
                    fieldset.custom {
                        legend { "Custom data (optional, written to " code { ".complete" } ")" }
                        @for _ in 0..CUSTOM_DATA_ROWS {
                            div.pair {
                                input name="key" placeholder="key";
                                input name="value" placeholder="value";
                            }
                        }
                    }
                    button type="submit" data-action="start-export" { "Start export" }
                }
            }
        }
    }
}

fn import_form(viewer: &Viewer, cluster: &Cluster) -> Markup {
    html! {
        details.import {
            summary data-action="import" { "Import a snapshot…" }
            form method="post" action={ "/ui/groups/" (cluster.group_id) "/clusters/" (cluster.name) "/snapshots/import" } {
                (csrf_field(viewer))
                p.hint { "One mongodump directory or archive per replica set: a path or a storage URL inside this project's snapshot sources. A remote part may name the project's access role to read it with." }
                @for rs in &cluster.replica_sets {
                    fieldset.part {
                        legend { "Replica set " (rs) }
                        input type="hidden" name="part_rs" value=(rs);
                        label { "URL " input name="part_url" required placeholder="/backups/2026-11-23/rs0 or s3://bucket/rs0.archive.gz"; }
                        label { "Access role id (optional) " input name="part_role"; }
                    }
                }
                label { "Type "
                    select name="snapshot_type" {
                        @for t in SnapshotType::ALL { option value=(t.as_str()) { (t.as_str()) } }
                    }
                }
                label { "Frequency "
                    select name="frequency_type" {
                        @for f in FrequencyType::ALL { option value=(f.as_str()) { (f.as_str()) } }
                    }
                }
                label { "Description " input name="description"; }
                label { "Retention (days, optional) " input name="retention_in_days" inputmode="numeric"; }
                button type="submit" data-action="start-import" { "Import" }
            }
        }
    }
}

fn cluster_section(
    viewer: &Viewer,
    cluster: &Cluster,
    snapshots: &[Snapshot],
    total: u64,
    buckets: &[ExportBucket],
) -> Markup {
    let can_export = viewer.can(&cluster.group_id, need::EXPORT);
    let can_import = viewer.can(&cluster.group_id, need::IMPORT);
    html! {
        section.cluster data-cluster=(cluster.name) {
            h2 { (cluster.name) " " span.kind { (cluster.cluster_type.as_str()) " · " (cluster.replica_sets.join(", ")) } }
            @if can_import { (import_form(viewer, cluster)) }
            @if snapshots.is_empty() {
                p.empty { "No snapshots." }
            } @else {
                div.scroll {
                    table.snapshots {
                        thead { tr {
                            th { "Created" } th { "Status" } th { "Type" } th { "Frequency" } th { "Size" }
                            th { "Parts" } th { "Expires" } th { "Description" } th { "Id" }
                            @if can_export { th {} }
                        } }
                        tbody {
                            @for s in snapshots {
                                tr data-snapshot-id=(s.id) {
                                    td { (time(s.created_at)) }
                                    td { (s.status.as_str()) }
                                    td { (s.snapshot_type.as_str()) }
                                    td { (s.frequency_type.as_str()) }
                                    td.num { (layout::bytes(s.storage_size_bytes)) }
                                    td { (s.parts.iter().map(|p| p.replica_set_name.as_str()).collect::<Vec<_>>().join(", ")) }
                                    td { (maybe_time(s.expires_at)) }
                                    td { (s.description.as_deref().unwrap_or("")) }
                                    td.id { (s.id) }
                                    @if can_export { td { (export_form(viewer, cluster, s, buckets)) } }
                                }
                            }
                        }
                    }
                }
                @if total > snapshots.len() as u64 {
                    p.hint { "Showing the newest " (snapshots.len()) " of " (total) " snapshots." }
                }
            }
        }
    }
}

/// `GET /ui/groups/{groupId}/snapshots?cluster=`.
pub async fn list(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(group_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Markup, UiError> {
    let project = project_for(&dashboard, &viewer.principal, &group_id, need::READ_PROJECT).await?;
    let store = &dashboard.store;
    let (clusters, _) = store.list_clusters(&group_id, Page::default()).await?;
    let selected = query.cluster.as_deref().filter(|c| !c.is_empty());
    let (buckets, _) = store
        .list_export_buckets(&group_id, Page::default())
        .await?;
    let mut sections = Vec::new();
    for cluster in clusters
        .iter()
        .filter(|c| selected.is_none_or(|s| s == c.name))
    {
        let (snapshots, total) = store.list_snapshots(&cluster.id, Page::default()).await?;
        sections.push(cluster_section(
            &viewer, cluster, &snapshots, total, &buckets,
        ));
    }
    let flash = viewer.take_flash(&dashboard);
    Ok(layout::project_page(
        "Snapshots",
        &viewer,
        &project,
        Tab::Snapshots,
        flash,
        html! {
            h1 { "Snapshots" }
            @if clusters.len() > 1 {
                nav.clusters {
                    a.active[selected.is_none()] href=(snapshots_url(&group_id, None)) { "All clusters" }
                    @for c in &clusters {
                        a.active[selected == Some(c.name.as_str())] href=(snapshots_url(&group_id, Some(&c.name))) { (c.name) }
                    }
                }
            }
            @if clusters.is_empty() {
                p.empty { "No clusters in this project." }
            }
            @for s in sections { (s) }
        },
    ))
}

/// The custom data pairs of the Export… form (rows without a key are left out).
fn custom_data(form: &FormData) -> Vec<Label> {
    form.all("key")
        .into_iter()
        .zip(form.all("value"))
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| Label {
            key: k.trim().to_string(),
            value: v.trim().to_string(),
        })
        .collect()
}

/// `POST …/clusters/{clusterName}/snapshots/{snapshotId}/export`, through
/// `service::export_jobs::create`; on success the job's page (or, for a role that cannot read
/// jobs, back to the snapshots with a message).
pub async fn export(
    State(dashboard): State<Dashboard>,
    Path((group_id, cluster_name, snapshot_id)): Path<(String, String, String)>,
    post: Post,
) -> Result<Response, UiError> {
    let Post { viewer, form } = post;
    let (project, cluster) = cluster_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        &cluster_name,
        need::EXPORT,
    )
    .await?;
    let back = snapshots_url(&group_id, Some(&cluster_name));
    let request = JobRequest {
        snapshot_id,
        export_bucket_id: form.get("bucket").unwrap_or_default().to_string(),
        custom_data: custom_data(&form),
        namespaces: Default::default(),
        format: Default::default(),
    };
    match export_jobs::create(&dashboard, &project, &cluster, request).await {
        Ok(job) => {
            tracing::info!(job_id = %job.id, principal_id = %viewer.principal.id, "export job created from the dashboard");
            viewer.flash(
                &dashboard,
                Flash::ok(format!("Export job {} created.", job.id)),
            );
            if viewer.can(&group_id, need::READ_JOBS) {
                let url = format!(
                    "/ui/groups/{group_id}/clusters/{cluster_name}/jobs/{}",
                    job.id
                );
                return Ok(Redirect::to(&url).into_response());
            }
        }
        Err(e) => viewer.flash(&dashboard, Flash::error(refusal(e))),
    }
    Ok(Redirect::to(&back).into_response())
}

/// A field of the import form the service never sees because it does not parse.
#[derive(Debug, thiserror::Error)]
enum FormError {
    #[error("Retention must be a number of days, not {0}.")]
    RetentionDays(String),
}

/// The import form as the service's request.
fn import_request(form: &FormData) -> Result<ImportRequest, FormError> {
    let names = form.all("part_rs");
    let urls = form.all("part_url");
    let roles = form.all("part_role");
    let parts = names
        .iter()
        .enumerate()
        .map(|(i, rs)| PartRequest {
            replica_set_name: rs.to_string(),
            url: urls
                .get(i)
                .map(|u| u.trim().to_string())
                .unwrap_or_default(),
            role_id: roles
                .get(i)
                .map(|r| r.trim())
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        })
        .collect();
    let retention_in_days = match form.get("retention_in_days") {
        None => None,
        Some(days) => Some(
            days.parse::<u32>()
                .map_err(|_| FormError::RetentionDays(days.to_string()))?,
        ),
    };
    Ok(ImportRequest {
        parts,
        created_at: None,
        snapshot_type: form.get("snapshot_type").map(str::to_string),
        frequency_type: form.get("frequency_type").map(str::to_string),
        description: form.get("description").map(str::to_string),
        retention_in_days,
    })
}

/// `POST …/clusters/{clusterName}/snapshots/import`, through `service::snapshots::import`.
pub async fn import(
    State(dashboard): State<Dashboard>,
    Path((group_id, cluster_name)): Path<(String, String)>,
    post: Post,
) -> Result<Response, UiError> {
    let Post { viewer, form } = post;
    let (project, cluster) = cluster_for(
        &dashboard,
        &viewer.principal,
        &group_id,
        &cluster_name,
        need::IMPORT,
    )
    .await?;
    let flash = match import_request(&form) {
        Err(why) => Flash::error(why.to_string()),
        Ok(request) => match snapshots::import(&dashboard, &project, &cluster, request).await {
            Ok(imported) => {
                let mut text = format!("Snapshot {} imported.", imported.snapshot.id);
                match &imported.auto_export {
                    Some(Ok(job)) => text.push_str(&format!(
                        " The auto-export policy created export job {}.",
                        job.id
                    )),
                    Some(Err(e)) => text.push_str(&format!(
                        " The auto-export policy did not create a job: {e}."
                    )),
                    None => {}
                }
                Flash::ok(text)
            }
            Err(e) => Flash::error(refusal(e)),
        },
    };
    viewer.flash(&dashboard, flash);
    Ok(Redirect::to(&snapshots_url(&group_id, Some(&cluster_name))).into_response())
}

//! The nodes of the deployment, as their job leases show them: node id, the age of its last
//! heartbeat, when its lease runs out, and the jobs it holds (counted across the deployment;
//! named only for this project's jobs). Live, so heartbeat ages move.
//!
//! snapex has no node registry: a node appears here while it runs a job, and the node that
//! serves the page is always listed. Reading needs Project Backup Manager, as reading jobs.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{self, Tab};
use super::live;
use super::{Dashboard, UiError, Viewer, need, project_for};
use crate::store::NodeLease;

async fn fragment(dashboard: &Dashboard, group_id: &str) -> Result<Markup, UiError> {
    let store = &dashboard.store;
    let mut leases = store.node_leases().await?;
    let this_node = dashboard.config.node_id.clone();
    if !leases.iter().any(|l| l.node_id == this_node) {
        leases.push(NodeLease {
            node_id: this_node.clone(),
            last_heartbeat: None,
            lease_expires_at: None,
            jobs: 0,
            replica_sets: 0,
        });
        leases.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    }
    let mut held: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (node, job, cluster) in store.project_jobs_held(group_id).await? {
        held.entry(node).or_default().push((job, cluster));
    }
    let running = store.running_replica_sets().await?;
    let limit = dashboard.config.max_concurrent_replica_sets;
    let lease =
        chrono::Duration::from_std(dashboard.config.lease).unwrap_or(chrono::Duration::seconds(30));
    let now = crate::store::now();
    Ok(html! {
        p.slots data-running=(running) data-limit=(limit) {
            "Replica sets exporting across the deployment: " strong { (running) " of " (limit) }
        }
        div.scroll {
            table.nodes {
                thead { tr { th { "Node" } th { "Last heartbeat" } th { "Lease" } th { "Jobs held" } th { "Replica sets" } th { "This project's jobs" } } }
                tbody {
                    @for n in &leases {
                        @let age = n.last_heartbeat.map(|t| now - t);
                        tr data-node=(n.node_id) {
                            td { (n.node_id) @if n.node_id == this_node { " " span.hint { "(this node)" } } }
                            td.stale[age.is_some_and(|a| a > lease)] {
                                @match age {
                                    Some(a) => { (layout::duration(a)) " ago" },
                                    None => span.none { "idle: holds no lease" },
                                }
                            }
                            td {
                                @match n.lease_expires_at {
                                    Some(e) if e > now => { "expires in " (layout::duration(e - now)) },
                                    Some(_) => span.bad { "expired: its jobs fail as interrupted" },
                                    None => "—",
                                }
                            }
                            td.num { (n.jobs) }
                            td.num { (n.replica_sets) }
                            td {
                                @for (i, (job, cluster)) in held.get(&n.node_id).map(Vec::as_slice).unwrap_or(&[]).iter().enumerate() {
                                    @if i > 0 { ", " }
                                    a href={ "/ui/groups/" (group_id) "/clusters/" (cluster) "/jobs/" (job) } { (job) }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// `GET /ui/groups/{groupId}/nodes`.
pub async fn list(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(group_id): Path<String>,
) -> Result<Markup, UiError> {
    let project = project_for(&dashboard, &viewer.principal, &group_id, need::READ_JOBS).await?;
    let body = fragment(&dashboard, &group_id).await?;
    let flash = viewer.take_flash(&dashboard);
    Ok(layout::project_page(
        "Nodes",
        &viewer,
        &project,
        Tab::Nodes,
        flash,
        html! {
            h1 { "Nodes" }
            p.hint { "A node is listed while it holds a job lease (and the node serving this page always is). A node whose lease runs out has its jobs failed as interrupted by the others." }
            div #nodes data-live={ "/ui/groups/" (group_id) "/nodes/live" } { (body) }
        },
    ))
}

/// `GET /ui/groups/{groupId}/nodes/live`.
pub async fn list_live(
    State(dashboard): State<Dashboard>,
    viewer: Viewer,
    Path(group_id): Path<String>,
) -> Result<Response, UiError> {
    project_for(&dashboard, &viewer.principal, &group_id, need::READ_JOBS).await?;
    let render = live::render(move |d: Dashboard, v: Viewer| {
        let group_id = group_id.clone();
        async move {
            project_for(&d, &v.principal, &group_id, need::READ_JOBS).await?;
            fragment(&d, &group_id).await
        }
    });
    Ok(live::stream(dashboard, viewer, render).into_response())
}

//! Backup schedule: `GET`/`PATCH`/`DELETE .../clusters/{clusterName}/backup/schedule` in media
//! types 2023-01-01 (retiring: `Deprecation`/`Sunset`) and 2024-08-05, over
//! `service::schedules` (the typed schedule, its validation and what it drives).
//!
//! Errors of a PATCH carry the JSON path in `badRequestDetail.fields[].field`
//! (`policies[0].policyItems[2].frequencyInterval`). Atlas's generic codes are used because the
//! spec publishes no per-condition codes for this operation:
//! - 400 `INVALID_ENUM_VALUE`: policy item `frequencyType` (hourly, daily, weekly, monthly,
//!   yearly; `ondemand` items belong to compliance policies), `retentionUnit`,
//!   `export.frequencyType`;
//! - 400 `INVALID_ATTRIBUTE`: `frequencyInterval` not allowed for the item's frequency (hourly
//!   1/2/4/6/8/12, daily 1, weekly 1–7, monthly 1–28 or 40, yearly 1–12), `retentionValue` < 1
//!   or shorter than that of a more frequent item, more than one policy, a policy `id` that is
//!   not the schedule's, malformed ids, `referenceHourOfDay` outside 0–23,
//!   `referenceMinuteOfHour` outside 0–59, `restoreWindowDays` < 1, and the copy and extra
//!   retention settings snapex does not implement (non-empty `copySettings`,
//!   `deleteCopiedBackups`, `extraRetentionSettings`; `copyPolicyItemsEnabled`,
//!   `autoCopySettingsEnabled`, `deleteCopySnapshots`, `updateCopySnapshots`,
//!   `deleteSnapshots` set to true) — refused rather than stored without effect;
//! - 400 `MISSING_ATTRIBUTE`: `autoExportEnabled: true` without `export.exportBucketId` or
//!   `export.frequencyType` (in the body or already in the schedule);
//! - 404 `EXPORT_BUCKET_NOT_FOUND`: `export.exportBucketId` is no bucket of the project;
//! - unknown fields, wrong JSON types and missing required policy item fields: 400
//!   `INVALID_ATTRIBUTE` from the body extractor; `autoCopySettingsEnabled` exists only in
//!   2024-08-05 and is an unknown field in 2023-01-01.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::SCHEDULE;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::service::schedules::{self, Schedule, ScheduleUpdate, ScheduleVersion};
use crate::store::Cluster;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/atlas/v2/groups/{group_id}/clusters/{cluster_name}/backup/schedule",
        get(get_schedule)
            .patch(patch_schedule)
            .delete(delete_schedule),
    )
}

/// The schedule in Atlas's shape. Both media types render the same fields: the 2024-08-05
/// additions (`autoCopySettingsEnabled`, `zoneId` in copy settings) concern copies, which snapex
/// does not keep, and the recorded 2024-08-05 response omits them too.
fn render(ctx: &Ctx, cluster: &Cluster, schedule: &Schedule) -> Value {
    let mut m = match serde_json::to_value(schedule) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    m.insert("clusterId".into(), cluster.id.clone().into());
    m.insert("clusterName".into(), cluster.name.clone().into());
    m.insert("copyPolicyItemsEnabled".into(), false.into());
    m.insert(
        "links".into(),
        json!([
            {"href": ctx.self_url(), "rel": "self"},
            {"href": ctx.url(&format!("/api/atlas/v2/groups/{}", cluster.group_id)), "rel": "https://cloud.mongodb.com/group"},
        ]),
    );
    Value::Object(m)
}

async fn get_schedule(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(SCHEDULE)?;
    let (_, cluster) = super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupReadOnly,
    )
    .await?;
    let schedule = schedules::current(&state, &cluster).await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        render(&ctx, &cluster, &schedule),
    ))
}

async fn patch_schedule(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<ScheduleUpdate>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(SCHEDULE)?;
    let (_, cluster) = super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupBackupManager,
    )
    .await?;
    let version = if served.date() == Some("2024-08-05") {
        ScheduleVersion::V2024
    } else {
        ScheduleVersion::V2023
    };
    let schedule = schedules::update(&state, &cluster, body, version).await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        render(&ctx, &cluster, &schedule),
    ))
}

/// Removes every policy item and the auto-export policy (Atlas answers 200 with the emptied
/// schedule; the other settings stay, as the recorded response shows).
async fn delete_schedule(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let served = ctx.version(SCHEDULE)?;
    let (_, cluster) = super::cluster_for(
        &state,
        &principal,
        &group_id,
        &cluster_name,
        Role::GroupBackupManager,
    )
    .await?;
    let schedule = schedules::clear(&state, &cluster).await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        render(&ctx, &cluster, &schedule),
    ))
}

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

use std::borrow::Cow;

use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{Body, Reply};
use super::openapi::{BodyErrors, ClusterPath, Errors, FormatQuery};
use super::pagination::Link;
use super::versioning::SCHEDULE;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::service::schedules::{
    self, ExportPolicy, Policy, Schedule, ScheduleUpdate, ScheduleVersion,
};
use crate::store::Cluster;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_schedule, patch_schedule, delete_schedule))
}

/// The schedule in Atlas's shape (`DiskBackupSnapshotSchedule`,
/// `DiskBackupSnapshotSchedule20240805`). Both media types render the same fields: the
/// 2024-08-05 additions (`autoCopySettingsEnabled`, `zoneId` in copy settings) concern copies,
/// which snapex does not keep, and the recorded 2024-08-05 response omits them too.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BackupSchedule)]
struct ScheduleView {
    auto_export_enabled: bool,
    /// Always empty: snapex keeps no copies in other regions.
    #[schema(value_type = Vec<Object>)]
    copy_settings: Vec<Value>,
    /// The auto-export policy, once one was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    export: Option<ExportPolicy>,
    /// The one policy (its id is the cluster's until a policy is stored).
    policies: Vec<Policy>,
    reference_hour_of_day: i64,
    reference_minute_of_hour: i64,
    restore_window_days: i64,
    /// Whether the export prefix names the organization and project rather than their ids.
    use_org_and_group_names_in_export_prefix: bool,
    /// The cluster's unique 24-hexadecimal-digit id.
    cluster_id: String,
    cluster_name: String,
    /// Always false (no copies).
    copy_policy_items_enabled: bool,
    /// `self` (this URL) and `https://cloud.mongodb.com/group` (the project).
    links: Vec<Link>,
}

fn render(ctx: &Ctx, cluster: &Cluster, schedule: Schedule) -> ScheduleView {
    // Destructured, so a field added to the schedule cannot be left out of the view unseen.
    let Schedule {
        auto_export_enabled,
        copy_settings,
        export,
        policies,
        reference_hour_of_day,
        reference_minute_of_hour,
        restore_window_days,
        use_org_and_group_names_in_export_prefix,
    } = schedule;
    ScheduleView {
        auto_export_enabled,
        copy_settings,
        export,
        policies,
        reference_hour_of_day,
        reference_minute_of_hour,
        restore_window_days,
        use_org_and_group_names_in_export_prefix,
        cluster_id: cluster.id.clone(),
        cluster_name: cluster.name.clone(),
        copy_policy_items_enabled: false,
        links: vec![
            Link {
                href: ctx.self_url(),
                rel: "self".to_string(),
            },
            Link {
                href: ctx.url(&format!("/api/atlas/v2/groups/{}", cluster.group_id)),
                rel: "https://cloud.mongodb.com/group".to_string(),
            },
        ],
    }
}

/// The 2023-01-01 PATCH body: [`ScheduleUpdate`] (2024-08-05) without
/// `autoCopySettingsEnabled`, which 2023-01-01 refuses as an unknown field. Derived from the
/// 2024-08-05 schema rather than written out, so the two cannot drift apart.
struct ScheduleUpdate2023;

const V2024_ONLY_FIELD: &str = "autoCopySettingsEnabled";

impl PartialSchema for ScheduleUpdate2023 {
    fn schema() -> RefOr<Schema> {
        let mut schema = <ScheduleUpdate as PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.properties.shift_remove(V2024_ONLY_FIELD);
            object.required.retain(|name| name != V2024_ONLY_FIELD);
            object.description = Some(
                "An update of the schedule in 2023-01-01 (`DiskBackupSnapshotSchedule`): the \
                 fields of 2024-08-05 but `autoCopySettingsEnabled`. Fields left out keep their \
                 value; the copy and extra retention settings are accepted only empty or false."
                    .to_string(),
            );
        }
        schema
    }
}

impl ToSchema for ScheduleUpdate2023 {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BackupScheduleUpdate")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <ScheduleUpdate as ToSchema>::schemas(schemas);
    }
}

/// Return the cluster's backup schedule (its default, one empty policy, until one is set).
/// 2023-01-01 is retiring: its answers carry `Deprecation` and `Sunset`.
#[utoipa::path(
    get,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
    operation_id = "getGroupClusterBackupSchedule",
    tag = "Cloud Backups",
    params(ClusterPath, FormatQuery),
    responses(
        (status = 200, description = "The schedule", content(
            (ScheduleView = "application/vnd.atlas.2023-01-01+json"),
            (ScheduleView = "application/vnd.atlas.2024-08-05+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Read Only"]))),
)]
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
    Reply::json(served, ctx.query.format, &render(&ctx, &cluster, schedule))
}

/// Update the backup schedule: fields given replace, fields left out keep theirs; errors name
/// the JSON path of the offending field (see the module's list of codes).
#[utoipa::path(
    patch,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
    operation_id = "updateGroupClusterBackupSchedule",
    tag = "Cloud Backups",
    params(ClusterPath, FormatQuery),
    request_body(content(
        (ScheduleUpdate2023 = "application/vnd.atlas.2023-01-01+json"),
        (ScheduleUpdate = "application/vnd.atlas.2024-08-05+json"),
    )),
    responses(
        (status = 200, description = "The updated schedule", content(
            (ScheduleView = "application/vnd.atlas.2023-01-01+json"),
            (ScheduleView = "application/vnd.atlas.2024-08-05+json"),
        )),
        BodyErrors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
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
    Reply::json(served, ctx.query.format, &render(&ctx, &cluster, schedule))
}

/// Remove every policy item and the auto-export policy (Atlas answers 200 with the emptied
/// schedule; the other settings stay, as the recorded response shows).
#[utoipa::path(
    delete,
    path = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
    operation_id = "deleteGroupClusterBackupSchedule",
    tag = "Cloud Backups",
    params(ClusterPath, FormatQuery),
    responses(
        (status = 200, description = "The emptied schedule", content(
            (ScheduleView = "application/vnd.atlas.2023-01-01+json"),
            (ScheduleView = "application/vnd.atlas.2024-08-05+json"),
        )),
        Errors,
    ),
    extensions(("x-xgen-roles" = json!(["Project Backup Manager"]))),
)]
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
    Reply::json(served, ctx.query.format, &render(&ctx, &cluster, schedule))
}

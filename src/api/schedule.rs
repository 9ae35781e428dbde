//! Backup schedule: `GET`/`PATCH`/`DELETE .../clusters/{clusterName}/backup/schedule`
//! (2023-01-01, retiring, and 2024-08-05). The document is kept as JSON per cluster; a cluster
//! without one has the default (no policy items, no auto-export).
//!
//! TODO(issue 4): full validation of policy items with Atlas's error codes, and auto-export on
//! snapshot import. For now PATCH accepts the settable top-level fields and validates `export`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::SCHEDULE;
use super::{ApiError, AppState, Ctx};
use crate::auth::{Principal, Role};
use crate::store::Cluster;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/atlas/v2/groups/{group_id}/clusters/{cluster_name}/backup/schedule",
        get(get_schedule)
            .patch(patch_schedule)
            .delete(delete_schedule),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExportSettings {
    export_bucket_id: Option<String>,
    frequency_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchSchedule {
    auto_export_enabled: Option<bool>,
    export: Option<ExportSettings>,
    use_org_and_group_names_in_export_prefix: Option<bool>,
    reference_hour_of_day: Option<u32>,
    reference_minute_of_hour: Option<u32>,
    restore_window_days: Option<u32>,
    policies: Option<Vec<Value>>,
    update_snapshots: Option<bool>,
    copy_settings: Option<Vec<Value>>,
    delete_copied_backups: Option<Vec<Value>>,
    extra_retention_settings: Option<Vec<Value>>,
    #[serde(default)]
    #[allow(dead_code)]
    links: Option<Vec<Value>>,
    #[serde(default)]
    #[allow(dead_code)]
    cluster_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    cluster_name: Option<String>,
}

fn default_document() -> Value {
    json!({
        "autoExportEnabled": false,
        "copySettings": [],
        "policies": [{"id": crate::store::new_id(), "policyItems": []}],
        "referenceHourOfDay": 0,
        "referenceMinuteOfHour": 0,
        "restoreWindowDays": 7,
        "useOrgAndGroupNamesInExportPrefix": false,
    })
}

fn render(ctx: &Ctx, cluster: &Cluster, doc: &Value) -> Value {
    let mut m = doc.as_object().cloned().unwrap_or_default();
    m.insert("clusterId".into(), cluster.id.clone().into());
    m.insert("clusterName".into(), cluster.name.clone().into());
    m.insert(
        "links".into(),
        json!([{"href": ctx.self_url(), "rel": "self"}]),
    );
    Value::Object(m)
}

async fn current(state: &AppState, cluster: &Cluster) -> Result<Value, ApiError> {
    Ok(state
        .store
        .get_backup_schedule(&cluster.id)
        .await?
        .map(|s| s.document)
        .unwrap_or_else(default_document))
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
    let doc = current(&state, &cluster).await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        render(&ctx, &cluster, &doc),
    ))
}

fn invalid(field: &str, description: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_ATTRIBUTE",
        format!("Invalid attribute {field} specified: {description}."),
    )
    .with_parameters([field.to_string()])
    .with_field(field, description)
}

async fn patch_schedule(
    State(state): State<AppState>,
    principal: Principal,
    ctx: Ctx,
    Path((group_id, cluster_name)): Path<(String, String)>,
    Body(body): Body<PatchSchedule>,
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
    let mut doc = current(&state, &cluster).await?;
    let Some(m) = doc.as_object_mut() else {
        return Err(ApiError::internal("schedule document is not an object"));
    };
    if let Some(export) = &body.export {
        if let Some(f) = &export.frequency_type
            && !["daily", "weekly", "monthly", "yearly"].contains(&f.as_str())
        {
            return Err(invalid(
                "export.frequencyType",
                "expected daily, weekly, monthly or yearly",
            ));
        }
        if let Some(id) = &export.export_bucket_id {
            super::check_id("export.exportBucketId", id)?;
            if state
                .store
                .get_export_bucket(&group_id, id)
                .await?
                .is_none()
            {
                return Err(ApiError::not_found(
                    "EXPORT_BUCKET_NOT_FOUND",
                    format!("No export bucket with ID {id} exists."),
                )
                .with_parameters([id.clone()]));
            }
        }
        m.insert("export".into(), json!({"exportBucketId": export.export_bucket_id, "frequencyType": export.frequency_type}));
    }
    if let Some(v) = body.auto_export_enabled {
        if v && m
            .get("export")
            .and_then(|e| e.get("exportBucketId"))
            .is_none_or(Value::is_null)
        {
            return Err(invalid(
                "export.exportBucketId",
                "required when autoExportEnabled is true",
            ));
        }
        m.insert("autoExportEnabled".into(), v.into());
    }
    if let Some(v) = body.use_org_and_group_names_in_export_prefix {
        m.insert("useOrgAndGroupNamesInExportPrefix".into(), v.into());
    }
    if let Some(v) = body.reference_hour_of_day {
        if v > 23 {
            return Err(invalid("referenceHourOfDay", "0 to 23"));
        }
        m.insert("referenceHourOfDay".into(), v.into());
    }
    if let Some(v) = body.reference_minute_of_hour {
        if v > 59 {
            return Err(invalid("referenceMinuteOfHour", "0 to 59"));
        }
        m.insert("referenceMinuteOfHour".into(), v.into());
    }
    if let Some(v) = body.restore_window_days {
        m.insert("restoreWindowDays".into(), v.into());
    }
    if let Some(v) = body.policies {
        m.insert("policies".into(), v.into());
    }
    if let Some(v) = body.copy_settings {
        m.insert("copySettings".into(), v.into());
    }
    let _ = (
        body.update_snapshots,
        body.delete_copied_backups,
        body.extra_retention_settings,
    );
    state
        .store
        .put_backup_schedule(&group_id, &cluster.id, &doc)
        .await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        render(&ctx, &cluster, &doc),
    ))
}

/// Deletes every policy item (Atlas answers 200 with the emptied schedule).
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
    let mut doc = current(&state, &cluster).await?;
    if let Some(policies) = doc.get_mut("policies").and_then(Value::as_array_mut) {
        for p in policies.iter_mut() {
            if let Some(obj) = p.as_object_mut() {
                obj.insert("policyItems".into(), json!([]));
            }
        }
    }
    if let Some(m) = doc.as_object_mut() {
        m.insert("autoExportEnabled".into(), false.into());
    }
    state
        .store
        .put_backup_schedule(&group_id, &cluster.id, &doc)
        .await?;
    Ok(Reply::ok(
        served,
        ctx.query.format,
        render(&ctx, &cluster, &doc),
    ))
}

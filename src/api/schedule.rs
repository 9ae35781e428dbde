//! Backup schedule: `GET`/`PATCH`/`DELETE .../clusters/{clusterName}/backup/schedule` in media
//! types 2023-01-01 (retiring: `Deprecation`/`Sunset`) and 2024-08-05. The document is kept as
//! JSON per cluster (`crate::store::BackupSchedule`); a cluster without one has the default
//! (one policy without items, no auto-export, names not used in the export prefix).
//!
//! What the schedule drives in snapex (snapex takes no scheduled snapshots itself: snapshots are
//! imported, so there is no `nextSnapshot`):
//! - auto-export (PRODUCT.md §3): `autoExportEnabled` with `export {exportBucketId,
//!   frequencyType}`; `frequencyType` accepts daily, weekly, monthly and yearly (the spec lists
//!   monthly and yearly only; the wider set is our decision, issue 4);
//! - retention: an imported `scheduled` snapshot expires after the retention of the policy item
//!   of its `frequencyType` ([`policy_retention`]), counted from its `createdAt` as in Atlas;
//!   `updateSnapshots: true` re-applies changed retention to the cluster's scheduled snapshots;
//! - `useOrgAndGroupNamesInExportPrefix`: the export prefix uses names ([`prefix_segment`]).
//!
//! Validation (PATCH), each with the JSON path in `badRequestDetail.fields[].field`
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
use chrono::{DateTime, Duration, Months, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{Body, Reply};
use super::versioning::{SCHEDULE, Served};
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

/// Policy item frequencies, most frequent first (the order of the retention rule and of the
/// rendered items).
const FREQUENCIES: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];
const RETENTION_UNITS: [&str; 4] = ["days", "weeks", "months", "years"];
/// `export.frequencyType` values accepted (issue 4: daily, weekly, monthly, yearly).
const EXPORT_FREQUENCIES: [&str; 4] = ["daily", "weekly", "monthly", "yearly"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExportSettings {
    export_bucket_id: Option<String>,
    frequency_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyItemIn {
    frequency_interval: i64,
    frequency_type: String,
    retention_unit: String,
    retention_value: i64,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyIn {
    id: Option<String>,
    policy_items: Vec<PolicyItemIn>,
}

/// The PATCH body: every field of `DiskBackupSnapshotSchedule` (2023-01-01) and
/// `DiskBackupSnapshotSchedule20240805`; what is version-specific is checked after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchSchedule {
    auto_export_enabled: Option<bool>,
    export: Option<ExportSettings>,
    use_org_and_group_names_in_export_prefix: Option<bool>,
    reference_hour_of_day: Option<i64>,
    reference_minute_of_hour: Option<i64>,
    restore_window_days: Option<i64>,
    policies: Option<Vec<PolicyIn>>,
    update_snapshots: Option<bool>,
    delete_snapshots: Option<bool>,
    copy_policy_items_enabled: Option<bool>,
    copy_settings: Option<Vec<Value>>,
    delete_copied_backups: Option<Vec<Value>>,
    delete_copy_snapshots: Option<bool>,
    update_copy_snapshots: Option<bool>,
    extra_retention_settings: Option<Vec<Value>>,
    /// 2024-08-05 only.
    auto_copy_settings_enabled: Option<bool>,
    // Read-only fields a client may send back from a GET: accepted and ignored.
    #[allow(dead_code)]
    links: Option<Vec<Value>>,
    #[allow(dead_code)]
    cluster_id: Option<String>,
    #[allow(dead_code)]
    cluster_name: Option<String>,
    #[allow(dead_code)]
    next_snapshot: Option<String>,
}

/// The schedule of a cluster that never had one. Its policy id is the cluster's id, so that it
/// reads the same on every GET before anything is stored (and is unique, as ids must be).
fn default_document(cluster: &Cluster) -> Value {
    json!({
        "autoExportEnabled": false,
        "copySettings": [],
        "policies": [{"id": cluster.id, "policyItems": []}],
        "referenceHourOfDay": 0,
        "referenceMinuteOfHour": 0,
        "restoreWindowDays": 7,
        "useOrgAndGroupNamesInExportPrefix": false,
    })
}

/// The schedule in Atlas's shape. Both media types render the same fields: the 2024-08-05
/// additions (`autoCopySettingsEnabled`, `zoneId` in copy settings) concern copies, which snapex
/// does not keep, and the recorded 2024-08-05 response omits them too.
fn render(ctx: &Ctx, cluster: &Cluster, doc: &Value) -> Value {
    let mut m = doc.as_object().cloned().unwrap_or_default();
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

async fn current(state: &AppState, cluster: &Cluster) -> Result<Value, ApiError> {
    Ok(state
        .store
        .get_backup_schedule(&cluster.id)
        .await?
        .map(|s| s.document)
        .unwrap_or_else(|| default_document(cluster)))
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

fn invalid_enum(field: &str, value: &str, allowed: &[&str]) -> ApiError {
    let description = format!("expected one of {}", allowed.join(", "));
    ApiError::bad_request(
        "INVALID_ENUM_VALUE",
        format!("An invalid enumeration value {value} was specified for {field}: {description}."),
    )
    .with_parameters([value.to_string(), field.to_string()])
    .with_field(field, description)
}

fn missing(field: &str, why: &str) -> ApiError {
    ApiError::bad_request(
        "MISSING_ATTRIBUTE",
        format!("The required attribute {field} was not specified: {why}."),
    )
    .with_parameters([field.to_string()])
    .with_field(field, format!("required {why}"))
}

fn check_body_id(field: &str, value: &str) -> Result<(), ApiError> {
    if crate::store::is_object_id(value) {
        Ok(())
    } else {
        Err(invalid(field, "expected a 24-hexadecimal character string"))
    }
}

/// The `frequencyInterval` values allowed for a policy item frequency.
fn interval_allowed(frequency: &str, interval: i64) -> bool {
    match frequency {
        "hourly" => [1, 2, 4, 6, 8, 12].contains(&interval),
        "daily" => interval == 1,
        "weekly" => (1..=7).contains(&interval),
        "monthly" => (1..=28).contains(&interval) || interval == 40,
        "yearly" => (1..=12).contains(&interval),
        _ => false,
    }
}

fn interval_rule(frequency: &str) -> &'static str {
    match frequency {
        "hourly" => "hourly items allow 1, 2, 4, 6, 8 or 12",
        "daily" => "daily items allow 1",
        "weekly" => "weekly items allow 1 (Monday) to 7 (Sunday)",
        "monthly" => "monthly items allow 1 to 28, or 40 for the last day of the month",
        _ => "yearly items allow 1 (January) to 12 (December)",
    }
}

/// A retention's length in hours, for comparing items (a month counts as 30.44 days).
fn retention_hours(unit: &str, value: i64) -> f64 {
    let per = match unit.to_ascii_lowercase().as_str() {
        "days" => 24.0,
        "weeks" => 168.0,
        "months" => 730.5,
        _ => 8766.0,
    };
    per * value as f64
}

/// `t` plus a retention (`days`/`weeks`/`months`/`years`, any case), in calendar terms for
/// months and years; `None` for an unknown unit, a value < 1 or a date out of range.
pub fn add_retention(t: DateTime<Utc>, unit: &str, value: i64) -> Option<DateTime<Utc>> {
    if value < 1 {
        return None;
    }
    match unit.to_ascii_lowercase().as_str() {
        "days" => t.checked_add_signed(Duration::try_days(value)?),
        "weeks" => t.checked_add_signed(Duration::try_weeks(value)?),
        "months" => t.checked_add_months(Months::new(u32::try_from(value).ok()?)),
        "years" => t.checked_add_months(Months::new(u32::try_from(value).ok()?.checked_mul(12)?)),
        _ => None,
    }
}

/// The policy item that governs the retention of a scheduled snapshot of `frequency_type`:
/// `(item id, retentionUnit, retentionValue)`. With several items of that frequency, the
/// longest retention wins, so a snapshot is never deleted earlier than one of them says.
pub fn policy_retention(document: &Value, frequency_type: &str) -> Option<(String, String, i64)> {
    let items = document
        .pointer("/policies/0/policyItems")
        .and_then(Value::as_array)?;
    items
        .iter()
        .filter(|item| item.get("frequencyType").and_then(Value::as_str) == Some(frequency_type))
        .filter_map(|item| {
            Some((
                item.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                item.get("retentionUnit")?.as_str()?.to_string(),
                item.get("retentionValue")?.as_i64()?,
            ))
        })
        .max_by(|a, b| retention_hours(&a.1, a.2).total_cmp(&retention_hours(&b.1, b.2)))
}

/// One object-key-safe segment of the export prefix from an organization or project name
/// (PRODUCT.md §2): spaces become `_`; only ASCII letters and digits and `! - _ . ' ( )` stay
/// (the characters every store treats as safe: S3 lists `+` among those needing special
/// handling, GCS advises against `*`). A result that would be empty, `.` or `..` falls back to
/// `fallback` (the id), so a name can never produce an empty or a relative path segment.
pub fn prefix_segment(name: &str, fallback: &str) -> String {
    let segment: String = name
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('_'),
            // Letters and digits of any script are safe in keys (UTF-8); punctuation beyond
            // AWS's "safe characters" list is dropped.
            c if c.is_alphanumeric() || matches!(c, '!' | '-' | '_' | '.' | '\'' | '(' | ')') => {
                Some(c)
            }
            _ => None,
        })
        .collect();
    if segment.is_empty() || segment.chars().all(|c| c == '.') {
        fallback.to_string()
    } else {
        segment
    }
}

/// Checks the policies of a PATCH and returns them as stored (item ids kept or assigned,
/// items ordered hourly → yearly).
fn validate_policies(policies: Vec<PolicyIn>, current: &Value) -> Result<Value, ApiError> {
    if policies.len() > 1 {
        return Err(invalid("policies", "a schedule has at most one policy"));
    }
    let current_id = current
        .pointer("/policies/0/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut out = Vec::new();
    for (p, policy) in policies.into_iter().enumerate() {
        let base = format!("policies[{p}]");
        let policy_id = match policy.id {
            Some(id) => {
                check_body_id(&format!("{base}.id"), &id)?;
                if current_id.as_deref().is_some_and(|c| c != id) {
                    return Err(invalid(
                        &format!("{base}.id"),
                        "not the id of this cluster's backup policy",
                    ));
                }
                id
            }
            None => current_id.clone().unwrap_or_else(crate::store::new_id),
        };
        let mut items: Vec<(usize, Value)> = Vec::new();
        let mut checked: Vec<(usize, usize, f64)> = Vec::new(); // (index, rank, hours)
        for (i, item) in policy.policy_items.into_iter().enumerate() {
            let at = format!("{base}.policyItems[{i}]");
            let Some(rank) = FREQUENCIES.iter().position(|f| *f == item.frequency_type) else {
                return Err(invalid_enum(
                    &format!("{at}.frequencyType"),
                    &item.frequency_type,
                    &FREQUENCIES,
                ));
            };
            if !interval_allowed(&item.frequency_type, item.frequency_interval) {
                return Err(invalid(
                    &format!("{at}.frequencyInterval"),
                    interval_rule(&item.frequency_type),
                ));
            }
            if !RETENTION_UNITS.contains(&item.retention_unit.as_str()) {
                return Err(invalid_enum(
                    &format!("{at}.retentionUnit"),
                    &item.retention_unit,
                    &RETENTION_UNITS,
                ));
            }
            if item.retention_value < 1
                || add_retention(Utc::now(), &item.retention_unit, item.retention_value).is_none()
            {
                return Err(invalid(
                    &format!("{at}.retentionValue"),
                    "must be a positive number of retention units",
                ));
            }
            let id = match item.id {
                Some(id) => {
                    check_body_id(&format!("{at}.id"), &id)?;
                    id
                }
                None => crate::store::new_id(),
            };
            checked.push((
                i,
                rank,
                retention_hours(&item.retention_unit, item.retention_value),
            ));
            items.push((
                rank,
                json!({
                    "frequencyInterval": item.frequency_interval,
                    "frequencyType": item.frequency_type,
                    "id": id,
                    "retentionUnit": item.retention_unit,
                    "retentionValue": item.retention_value,
                }),
            ));
        }
        // Atlas: a less frequent item keeps its snapshots at least as long as a more frequent one.
        for &(i, rank, hours) in &checked {
            if let Some(&(_, other_rank, _)) =
                checked.iter().find(|&&(_, r, h)| r < rank && h > hours)
            {
                return Err(invalid(
                    &format!("{base}.policyItems[{i}].retentionValue"),
                    &format!(
                        "a {} item must keep snapshots at least as long as the {} item",
                        FREQUENCIES[rank], FREQUENCIES[other_rank]
                    ),
                ));
            }
        }
        items.sort_by_key(|(rank, _)| *rank);
        out.push(json!({
            "id": policy_id,
            "policyItems": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        }));
    }
    Ok(Value::Array(out))
}

/// Refuses the copy and extra-retention settings snapex does not implement.
fn refuse_unsupported(body: &PatchSchedule, served: &Served) -> Result<(), ApiError> {
    const NO_COPIES: &str = "snapex keeps no snapshot copies in other regions";
    if body.auto_copy_settings_enabled.is_some() && served.date() != Some("2024-08-05") {
        return Err(invalid("autoCopySettingsEnabled", "unknown field"));
    }
    for (field, set) in [
        ("copyPolicyItemsEnabled", body.copy_policy_items_enabled),
        ("autoCopySettingsEnabled", body.auto_copy_settings_enabled),
        ("deleteCopySnapshots", body.delete_copy_snapshots),
        ("updateCopySnapshots", body.update_copy_snapshots),
    ] {
        if set == Some(true) {
            return Err(invalid(field, NO_COPIES));
        }
    }
    for (field, list) in [
        ("copySettings", &body.copy_settings),
        ("deleteCopiedBackups", &body.delete_copied_backups),
    ] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(invalid(field, NO_COPIES));
        }
    }
    if body
        .extra_retention_settings
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        return Err(invalid(
            "extraRetentionSettings",
            "extra retention settings are not supported",
        ));
    }
    if body.delete_snapshots == Some(true) {
        return Err(invalid(
            "deleteSnapshots",
            "snapex does not delete snapshots with their policy; delete them or let them expire",
        ));
    }
    Ok(())
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
    refuse_unsupported(&body, &served)?;
    let mut doc = current(&state, &cluster).await?;
    let policies = match body.policies {
        Some(p) => Some(validate_policies(p, &doc)?),
        None => None,
    };
    let Some(m) = doc.as_object_mut() else {
        return Err(ApiError::internal("schedule document is not an object"));
    };
    if let Some(v) = body.reference_hour_of_day {
        if !(0..=23).contains(&v) {
            return Err(invalid("referenceHourOfDay", "expected 0 to 23"));
        }
        m.insert("referenceHourOfDay".into(), v.into());
    }
    if let Some(v) = body.reference_minute_of_hour {
        if !(0..=59).contains(&v) {
            return Err(invalid("referenceMinuteOfHour", "expected 0 to 59"));
        }
        m.insert("referenceMinuteOfHour".into(), v.into());
    }
    if let Some(v) = body.restore_window_days {
        if v < 1 {
            return Err(invalid(
                "restoreWindowDays",
                "expected a positive number of days",
            ));
        }
        m.insert("restoreWindowDays".into(), v.into());
    }
    if let Some(export) = &body.export {
        // Fields given replace, fields left out keep their value.
        let mut merged = m
            .get("export")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(f) = &export.frequency_type {
            if !EXPORT_FREQUENCIES.contains(&f.as_str()) {
                return Err(invalid_enum("export.frequencyType", f, &EXPORT_FREQUENCIES));
            }
            merged.insert("frequencyType".into(), f.clone().into());
        }
        if let Some(id) = &export.export_bucket_id {
            check_body_id("export.exportBucketId", id)?;
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
                .with_parameters([id.clone()])
                .with_field(
                    "export.exportBucketId",
                    "no export bucket with this id in the project",
                ));
            }
            merged.insert("exportBucketId".into(), id.clone().into());
        }
        m.insert("export".into(), Value::Object(merged));
    }
    if let Some(v) = body.auto_export_enabled {
        m.insert("autoExportEnabled".into(), v.into());
    }
    if m.get("autoExportEnabled").and_then(Value::as_bool) == Some(true) {
        for key in ["exportBucketId", "frequencyType"] {
            if m.get("export")
                .and_then(|e| e.get(key))
                .is_none_or(Value::is_null)
            {
                return Err(missing(
                    &format!("export.{key}"),
                    "when autoExportEnabled is true",
                ));
            }
        }
    }
    if let Some(v) = body.use_org_and_group_names_in_export_prefix {
        m.insert("useOrgAndGroupNamesInExportPrefix".into(), v.into());
    }
    if let Some(p) = policies {
        m.insert("policies".into(), p);
    }
    state
        .store
        .put_backup_schedule(&group_id, &cluster.id, &doc)
        .await?;
    if body.update_snapshots == Some(true) {
        reapply_retention(&state, &cluster, &doc).await?;
    }
    Ok(Reply::ok(
        served,
        ctx.query.format,
        render(&ctx, &cluster, &doc),
    ))
}

/// `updateSnapshots: true`: the cluster's scheduled snapshots that follow the policy (those with
/// a policy item, and those that never had an expiry) take the retention of the item of their
/// frequency again, from their `createdAt`. A snapshot whose retention was set by hand
/// (`retentionInDays`, the snapshot PATCH) keeps it, and one whose frequency has no item any
/// more keeps its expiry.
async fn reapply_retention(
    state: &AppState,
    cluster: &Cluster,
    doc: &Value,
) -> Result<(), ApiError> {
    for s in state.store.list_scheduled_snapshots(&cluster.id).await? {
        if s.policy_item_id.is_none() && s.expires_at.is_some() {
            continue;
        }
        if let Some((item_id, unit, value)) = policy_retention(doc, &s.frequency_type)
            && let Some(expires_at) = add_retention(s.created_at, &unit, value)
        {
            state
                .store
                .set_snapshot_expiry(&cluster.id, &s.id, Some(expires_at), Some(&item_id))
                .await?;
        }
    }
    Ok(())
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
        m.remove("export");
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_become_safe_prefix_segments() {
        assert_eq!(prefix_segment("Acme Corp", "id"), "Acme_Corp");
        assert_eq!(prefix_segment("KS Sandbox/../x?#%", "id"), "KS_Sandbox..x");
        assert_eq!(prefix_segment("a+b*c(d)!'e'-f.g", "id"), "abc(d)!'e'-f.g");
        assert_eq!(prefix_segment("Équipe Données", "id"), "Équipe_Données");
        assert_eq!(prefix_segment("..", "0123"), "0123");
        assert_eq!(prefix_segment("/#?", "0123"), "0123");
        assert_eq!(prefix_segment("", "0123"), "0123");
    }

    #[test]
    fn retention_is_calendar_arithmetic() {
        let t = Utc.with_ymd_and_hms(2026, 1, 31, 3, 27, 0).unwrap();
        assert_eq!(
            add_retention(t, "months", 1),
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 3, 27, 0).unwrap())
        );
        assert_eq!(
            add_retention(t, "YEARS", 2),
            Some(Utc.with_ymd_and_hms(2028, 1, 31, 3, 27, 0).unwrap())
        );
        assert_eq!(
            add_retention(t, "weeks", 2),
            Some(Utc.with_ymd_and_hms(2026, 2, 14, 3, 27, 0).unwrap())
        );
        assert_eq!(add_retention(t, "days", 0), None);
        assert_eq!(add_retention(t, "fortnights", 1), None);
        assert_eq!(add_retention(t, "years", i64::MAX), None);
    }

    #[test]
    fn the_longest_item_of_a_frequency_governs() {
        let doc = json!({"policies": [{"id": "p", "policyItems": [
            {"frequencyType": "daily", "id": "a", "retentionUnit": "days", "retentionValue": 7},
            {"frequencyType": "daily", "id": "b", "retentionUnit": "weeks", "retentionValue": 2},
            {"frequencyType": "monthly", "id": "c", "retentionUnit": "months", "retentionValue": 12},
        ]}]});
        assert_eq!(
            policy_retention(&doc, "daily"),
            Some(("b".into(), "weeks".into(), 2))
        );
        assert_eq!(policy_retention(&doc, "hourly"), None);
    }

    #[test]
    fn intervals_follow_the_frequency() {
        assert!(interval_allowed("hourly", 6) && !interval_allowed("hourly", 5));
        assert!(interval_allowed("daily", 1) && !interval_allowed("daily", 2));
        assert!(interval_allowed("weekly", 7) && !interval_allowed("weekly", 8));
        assert!(interval_allowed("monthly", 40) && !interval_allowed("monthly", 29));
        assert!(interval_allowed("yearly", 12) && !interval_allowed("yearly", 13));
    }
}

//! The backup schedule of a cluster, typed: its policy items (hourly … yearly), the auto-export
//! policy and `useOrgAndGroupNamesInExportPrefix`, with the validation of an update and what
//! the schedule drives (snapex takes no scheduled snapshots itself: snapshots are imported, so
//! there is no `nextSnapshot`):
//! - auto-export (PRODUCT.md §3): `autoExportEnabled` with `export {exportBucketId,
//!   frequencyType}`; `frequencyType` accepts daily, weekly, monthly and yearly (the spec lists
//!   monthly and yearly only; the wider set is our decision, issue 4);
//! - retention: an imported `scheduled` snapshot expires after the retention of the policy item
//!   of its `frequencyType` ([`Schedule::retention_for`]), counted from its `createdAt` as in
//!   Atlas; `updateSnapshots: true` re-applies changed retention to the cluster's scheduled
//!   snapshots;
//! - `useOrgAndGroupNamesInExportPrefix`: the export prefix uses names ([`prefix_segment`]).
//!
//! The store keeps the schedule as the JSON document of [`Schedule`]'s serde shape, which is
//! also the shape the API shows; a cluster without one has [`Schedule::default_for`].

use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Deployment, Invalid, check_body_id};
use crate::store::{Cluster, FrequencyType, RetentionUnit, Snapshot, StoreError};

/// Policy item frequencies, most frequent first (`ondemand` items belong to compliance
/// policies, which snapex does not keep).
const ITEM_FREQUENCIES: [FrequencyType; 5] = [
    FrequencyType::Hourly,
    FrequencyType::Daily,
    FrequencyType::Weekly,
    FrequencyType::Monthly,
    FrequencyType::Yearly,
];
/// `export.frequencyType` values accepted (issue 4: daily, weekly, monthly, yearly).
const EXPORT_FREQUENCIES: [FrequencyType; 4] = [
    FrequencyType::Daily,
    FrequencyType::Weekly,
    FrequencyType::Monthly,
    FrequencyType::Yearly,
];

/// A cluster's backup schedule, as stored and shown (`DiskBackupSnapshotSchedule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    #[serde(default)]
    pub auto_export_enabled: bool,
    /// Always empty: snapex keeps no copies in other regions.
    #[serde(default)]
    pub copy_settings: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportPolicy>,
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub reference_hour_of_day: i64,
    #[serde(default)]
    pub reference_minute_of_hour: i64,
    #[serde(default = "default_restore_window_days")]
    pub restore_window_days: i64,
    #[serde(default)]
    pub use_org_and_group_names_in_export_prefix: bool,
}

fn default_restore_window_days() -> i64 {
    7
}

/// The auto-export policy: where and which snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AutoExportPolicy)]
pub struct ExportPolicy {
    /// The export bucket (24-hex id) auto-exports go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub export_bucket_id: Option<String>,
    /// The snapshots exported: those of this frequency (daily, weekly, monthly, yearly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub frequency_type: Option<FrequencyType>,
}

/// The schedule's one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BackupPolicy)]
pub struct Policy {
    pub id: String,
    #[serde(default)]
    pub policy_items: Vec<PolicyItem>,
}

/// One policy item: how often and how long snapshots of a frequency are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BackupPolicyItem)]
pub struct PolicyItem {
    pub frequency_interval: i64,
    pub frequency_type: FrequencyType,
    pub id: String,
    pub retention_unit: RetentionUnit,
    pub retention_value: i64,
}

impl Schedule {
    /// The schedule of a cluster that never had one. Its policy id is the cluster's id, so that
    /// it reads the same on every GET before anything is stored (and is unique, as ids must be).
    pub fn default_for(cluster: &Cluster) -> Self {
        Schedule {
            auto_export_enabled: false,
            copy_settings: Vec::new(),
            export: None,
            policies: vec![Policy {
                id: cluster.id.clone(),
                policy_items: Vec::new(),
            }],
            reference_hour_of_day: 0,
            reference_minute_of_hour: 0,
            restore_window_days: default_restore_window_days(),
            use_org_and_group_names_in_export_prefix: false,
        }
    }

    /// The policy item that governs the retention of a scheduled snapshot of `frequency`.
    /// With several items of that frequency, the longest retention wins, so a snapshot is never
    /// deleted earlier than one of them says.
    pub fn retention_for(&self, frequency: FrequencyType) -> Option<&PolicyItem> {
        self.policies
            .first()?
            .policy_items
            .iter()
            .filter(|item| item.frequency_type == frequency)
            .max_by(|a, b| {
                retention_hours(a.retention_unit, a.retention_value)
                    .total_cmp(&retention_hours(b.retention_unit, b.retention_value))
            })
    }

    /// The bucket an auto-export of `snapshot` goes to, when the policy applies to it.
    pub fn auto_export_bucket_for(&self, snapshot: &Snapshot) -> Option<&str> {
        let export = self.export.as_ref()?;
        let (true, Some(frequency), Some(bucket)) = (
            self.auto_export_enabled,
            export.frequency_type,
            export.export_bucket_id.as_deref(),
        ) else {
            return None;
        };
        (snapshot.status == crate::store::SnapshotStatus::Completed
            && frequency == snapshot.frequency_type)
            .then_some(bucket)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no export bucket with ID {bucket_id} exists")]
    BucketNotFound { bucket_id: String, field: String },
    #[error("the stored backup schedule of cluster {cluster_id} cannot be read")]
    Corrupt {
        cluster_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("metadata store")]
    Store(#[from] StoreError),
}

/// The schedule of `cluster` (its default when none was stored).
pub async fn current(
    deployment: &Deployment,
    cluster: &Cluster,
) -> Result<Schedule, ScheduleError> {
    match deployment.store.get_backup_schedule(&cluster.id).await? {
        Some(stored) => {
            serde_json::from_value(stored.document).map_err(|source| ScheduleError::Corrupt {
                cluster_id: cluster.id.clone(),
                source,
            })
        }
        None => Ok(Schedule::default_for(cluster)),
    }
}

async fn save(
    deployment: &Deployment,
    cluster: &Cluster,
    schedule: &Schedule,
) -> Result<(), ScheduleError> {
    let document = serde_json::to_value(schedule).map_err(|source| ScheduleError::Corrupt {
        cluster_id: cluster.id.clone(),
        source,
    })?;
    deployment
        .store
        .put_backup_schedule(&cluster.group_id, &cluster.id, &document)
        .await?;
    Ok(())
}

/// The auto-export settings of an update; fields given replace, fields left out keep theirs.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = AutoExportPolicyUpdate)]
pub struct ExportUpdate {
    /// The export bucket (24-hex id) of the project.
    pub export_bucket_id: Option<String>,
    /// Daily, weekly, monthly or yearly.
    #[schema(value_type = Option<FrequencyType>)]
    pub frequency_type: Option<String>,
}

/// A policy item of an update. Enumerations stay text here so a wrong value is reported with
/// its JSON path (`policies[0].policyItems[2].frequencyType`) rather than as a parse error.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = BackupPolicyItemUpdate)]
pub struct PolicyItemUpdate {
    /// Hourly 1, 2, 4, 6, 8 or 12; daily 1; weekly 1–7 (Monday–Sunday); monthly 1–28 or 40
    /// (the last day); yearly 1–12 (the month).
    pub frequency_interval: i64,
    /// Hourly, daily, weekly, monthly or yearly (`ondemand` belongs to compliance policies).
    #[schema(value_type = FrequencyType)]
    pub frequency_type: String,
    #[schema(value_type = RetentionUnit)]
    pub retention_unit: String,
    /// At least 1, and no shorter than the retention of a more frequent item.
    pub retention_value: i64,
    /// The item's id (24 hex), kept as given; none: a new one.
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = BackupPolicyUpdate)]
pub struct PolicyUpdate {
    /// The schedule's policy id (24 hex): the only policy there is.
    pub id: Option<String>,
    pub policy_items: Vec<PolicyItemUpdate>,
}

/// An update of the schedule: every field of `DiskBackupSnapshotSchedule` (2023-01-01) and
/// `DiskBackupSnapshotSchedule20240805`; what is version-specific is checked when it is
/// applied (`update`). Fields left out keep their value. The copy and extra retention
/// settings are accepted only empty or false (snapex keeps no copies); `links`,
/// `clusterId`, `clusterName` and `nextSnapshot` (read-only) are accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = BackupScheduleUpdate20240805)]
pub struct ScheduleUpdate {
    pub auto_export_enabled: Option<bool>,
    pub export: Option<ExportUpdate>,
    pub use_org_and_group_names_in_export_prefix: Option<bool>,
    pub reference_hour_of_day: Option<i64>,
    pub reference_minute_of_hour: Option<i64>,
    pub restore_window_days: Option<i64>,
    pub policies: Option<Vec<PolicyUpdate>>,
    pub update_snapshots: Option<bool>,
    pub delete_snapshots: Option<bool>,
    pub copy_policy_items_enabled: Option<bool>,
    pub copy_settings: Option<Vec<Value>>,
    pub delete_copied_backups: Option<Vec<Value>>,
    pub delete_copy_snapshots: Option<bool>,
    pub update_copy_snapshots: Option<bool>,
    pub extra_retention_settings: Option<Vec<Value>>,
    /// 2024-08-05 only.
    pub auto_copy_settings_enabled: Option<bool>,
    // Read-only fields a client may send back from a GET: accepted and ignored.
    #[serde(default, rename = "links")]
    pub _links: Option<Vec<Value>>,
    #[serde(default, rename = "clusterId")]
    pub _cluster_id: Option<String>,
    #[serde(default, rename = "clusterName")]
    pub _cluster_name: Option<String>,
    #[serde(default, rename = "nextSnapshot")]
    pub _next_snapshot: Option<String>,
}

/// Which media type an update came in (fields differ between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleVersion {
    V2023,
    V2024,
}

/// Validates and applies `change` to the cluster's schedule, stores it, and with
/// `updateSnapshots: true` re-applies retention to the cluster's scheduled snapshots.
pub async fn update(
    deployment: &Deployment,
    cluster: &Cluster,
    change: ScheduleUpdate,
    version: ScheduleVersion,
) -> Result<Schedule, ScheduleError> {
    refuse_unsupported(&change, version)?;
    let mut schedule = current(deployment, cluster).await?;
    let policies = match change.policies {
        Some(p) => Some(validate_policies(p, &schedule)?),
        None => None,
    };
    if let Some(v) = change.reference_hour_of_day {
        if !(0..=23).contains(&v) {
            return Err(Invalid::attribute("referenceHourOfDay", "expected 0 to 23").into());
        }
        schedule.reference_hour_of_day = v;
    }
    if let Some(v) = change.reference_minute_of_hour {
        if !(0..=59).contains(&v) {
            return Err(Invalid::attribute("referenceMinuteOfHour", "expected 0 to 59").into());
        }
        schedule.reference_minute_of_hour = v;
    }
    if let Some(v) = change.restore_window_days {
        if v < 1 {
            return Err(Invalid::attribute(
                "restoreWindowDays",
                "expected a positive number of days",
            )
            .into());
        }
        schedule.restore_window_days = v;
    }
    if let Some(export) = &change.export {
        let merged = schedule.export.get_or_insert_with(ExportPolicy::default);
        if let Some(f) = &export.frequency_type {
            let allowed: Vec<&str> = EXPORT_FREQUENCIES.iter().map(|f| f.as_str()).collect();
            merged.frequency_type = Some(
                FrequencyType::parse(f)
                    .filter(|f| EXPORT_FREQUENCIES.contains(f))
                    .ok_or_else(|| Invalid::enumeration("export.frequencyType", f, &allowed))?,
            );
        }
        if let Some(id) = &export.export_bucket_id {
            check_body_id("export.exportBucketId", id)?;
            if deployment
                .store
                .get_export_bucket(&cluster.group_id, id)
                .await?
                .is_none()
            {
                return Err(ScheduleError::BucketNotFound {
                    bucket_id: id.clone(),
                    field: "export.exportBucketId".into(),
                });
            }
            merged.export_bucket_id = Some(id.clone());
        }
    }
    if let Some(v) = change.auto_export_enabled {
        schedule.auto_export_enabled = v;
    }
    if schedule.auto_export_enabled {
        let export = schedule.export.clone().unwrap_or_default();
        if export.export_bucket_id.is_none() {
            return Err(Invalid::missing(
                "export.exportBucketId",
                "when autoExportEnabled is true",
            )
            .into());
        }
        if export.frequency_type.is_none() {
            return Err(
                Invalid::missing("export.frequencyType", "when autoExportEnabled is true").into(),
            );
        }
    }
    if let Some(v) = change.use_org_and_group_names_in_export_prefix {
        schedule.use_org_and_group_names_in_export_prefix = v;
    }
    if let Some(p) = policies {
        schedule.policies = p;
    }
    save(deployment, cluster, &schedule).await?;
    if change.update_snapshots == Some(true) {
        reapply_retention(deployment, cluster, &schedule).await?;
    }
    Ok(schedule)
}

/// Removes every policy item and the auto-export policy (Atlas answers with the emptied
/// schedule; the other settings stay, as the recorded response shows).
pub async fn clear(deployment: &Deployment, cluster: &Cluster) -> Result<Schedule, ScheduleError> {
    let mut schedule = current(deployment, cluster).await?;
    for p in &mut schedule.policies {
        p.policy_items.clear();
    }
    schedule.auto_export_enabled = false;
    schedule.export = None;
    save(deployment, cluster, &schedule).await?;
    Ok(schedule)
}

/// `updateSnapshots: true`: the cluster's scheduled snapshots that follow the policy (those with
/// a policy item, and those that never had an expiry) take the retention of the item of their
/// frequency again, from their `createdAt`. A snapshot whose retention was set by hand
/// (`retentionInDays`, the snapshot PATCH) keeps it, and one whose frequency has no item any
/// more keeps its expiry.
async fn reapply_retention(
    deployment: &Deployment,
    cluster: &Cluster,
    schedule: &Schedule,
) -> Result<(), ScheduleError> {
    let store = &deployment.store;
    for s in store.list_scheduled_snapshots(&cluster.id).await? {
        if s.policy_item_id.is_none() && s.expires_at.is_some() {
            continue;
        }
        if let Some(item) = schedule.retention_for(s.frequency_type)
            && let Some(expires_at) =
                add_retention(s.created_at, item.retention_unit, item.retention_value)
        {
            store
                .set_snapshot_expiry(&cluster.id, &s.id, Some(expires_at), Some(&item.id))
                .await?;
        }
    }
    Ok(())
}

/// The `frequencyInterval` values allowed for a policy item frequency.
fn interval_allowed(frequency: FrequencyType, interval: i64) -> bool {
    match frequency {
        FrequencyType::Hourly => [1, 2, 4, 6, 8, 12].contains(&interval),
        FrequencyType::Daily => interval == 1,
        FrequencyType::Weekly => (1..=7).contains(&interval),
        FrequencyType::Monthly => (1..=28).contains(&interval) || interval == 40,
        FrequencyType::Yearly => (1..=12).contains(&interval),
        FrequencyType::OnDemand => false,
    }
}

fn interval_rule(frequency: FrequencyType) -> &'static str {
    match frequency {
        FrequencyType::Hourly => "hourly items allow 1, 2, 4, 6, 8 or 12",
        FrequencyType::Daily => "daily items allow 1",
        FrequencyType::Weekly => "weekly items allow 1 (Monday) to 7 (Sunday)",
        FrequencyType::Monthly => {
            "monthly items allow 1 to 28, or 40 for the last day of the month"
        }
        _ => "yearly items allow 1 (January) to 12 (December)",
    }
}

/// A retention's length in hours, for comparing items (a month counts as 30.44 days).
fn retention_hours(unit: RetentionUnit, value: i64) -> f64 {
    let per = match unit {
        RetentionUnit::Days => 24.0,
        RetentionUnit::Weeks => 168.0,
        RetentionUnit::Months => 730.5,
        RetentionUnit::Years => 8766.0,
    };
    per * value as f64
}

/// `t` plus a retention, in calendar terms for months and years; `None` for a value < 1 or a
/// date out of range.
pub fn add_retention(t: DateTime<Utc>, unit: RetentionUnit, value: i64) -> Option<DateTime<Utc>> {
    if value < 1 {
        return None;
    }
    match unit {
        RetentionUnit::Days => t.checked_add_signed(Duration::try_days(value)?),
        RetentionUnit::Weeks => t.checked_add_signed(Duration::try_weeks(value)?),
        RetentionUnit::Months => t.checked_add_months(Months::new(u32::try_from(value).ok()?)),
        RetentionUnit::Years => {
            t.checked_add_months(Months::new(u32::try_from(value).ok()?.checked_mul(12)?))
        }
    }
}

/// One object-key-safe segment of the export prefix from an organization or project name
/// (PRODUCT.md §2): spaces become `_`; only letters and digits (of any script: keys are
/// UTF-8) and `! - _ . ' ( )` stay (the characters every store treats as safe: S3 lists `+`
/// among those needing special handling, GCS advises against `*`). A result that would be
/// empty, `.` or `..` falls back to `fallback` (the id), so a name can never produce an empty
/// or a relative path segment.
pub fn prefix_segment(name: &str, fallback: &str) -> String {
    let segment: String = name
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('_'),
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

/// Checks the policies of an update and returns them as stored (item ids kept or assigned,
/// items ordered hourly → yearly).
fn validate_policies(
    policies: Vec<PolicyUpdate>,
    current: &Schedule,
) -> Result<Vec<Policy>, Invalid> {
    if policies.len() > 1 {
        return Err(Invalid::attribute(
            "policies",
            "a schedule has at most one policy",
        ));
    }
    let current_id = current.policies.first().map(|p| p.id.clone());
    let frequencies: Vec<&str> = ITEM_FREQUENCIES.iter().map(|f| f.as_str()).collect();
    let units = RetentionUnit::spellings();
    let mut out = Vec::new();
    for (p, policy) in policies.into_iter().enumerate() {
        let base = format!("policies[{p}]");
        let policy_id = match policy.id {
            Some(id) => {
                check_body_id(&format!("{base}.id"), &id)?;
                if current_id.as_deref().is_some_and(|c| c != id) {
                    return Err(Invalid::attribute(
                        format!("{base}.id"),
                        "not the id of this cluster's backup policy",
                    ));
                }
                id
            }
            None => current_id.clone().unwrap_or_else(crate::store::new_id),
        };
        let mut items: Vec<(usize, PolicyItem)> = Vec::new();
        for (i, item) in policy.policy_items.into_iter().enumerate() {
            let at = format!("{base}.policyItems[{i}]");
            let Some((rank, frequency)) = ITEM_FREQUENCIES
                .iter()
                .enumerate()
                .find(|(_, f)| f.as_str() == item.frequency_type)
            else {
                return Err(Invalid::enumeration(
                    format!("{at}.frequencyType"),
                    &item.frequency_type,
                    &frequencies,
                ));
            };
            if !interval_allowed(*frequency, item.frequency_interval) {
                return Err(Invalid::attribute(
                    format!("{at}.frequencyInterval"),
                    interval_rule(*frequency),
                ));
            }
            let Some(unit) = RetentionUnit::parse(&item.retention_unit) else {
                return Err(Invalid::enumeration(
                    format!("{at}.retentionUnit"),
                    &item.retention_unit,
                    &units,
                ));
            };
            if item.retention_value < 1
                || add_retention(Utc::now(), unit, item.retention_value).is_none()
            {
                return Err(Invalid::attribute(
                    format!("{at}.retentionValue"),
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
            items.push((
                rank,
                PolicyItem {
                    frequency_interval: item.frequency_interval,
                    frequency_type: *frequency,
                    id,
                    retention_unit: unit,
                    retention_value: item.retention_value,
                },
            ));
        }
        // Atlas: a less frequent item keeps its snapshots at least as long as a more frequent one.
        for (i, (rank, item)) in items.iter().enumerate() {
            let hours = retention_hours(item.retention_unit, item.retention_value);
            if let Some((other_rank, _)) = items.iter().find(|(r, other)| {
                r < rank && retention_hours(other.retention_unit, other.retention_value) > hours
            }) {
                return Err(Invalid::attribute(
                    format!("{base}.policyItems[{i}].retentionValue"),
                    format!(
                        "a {} item must keep snapshots at least as long as the {} item",
                        ITEM_FREQUENCIES[*rank], ITEM_FREQUENCIES[*other_rank]
                    ),
                ));
            }
        }
        items.sort_by_key(|(rank, _)| *rank);
        out.push(Policy {
            id: policy_id,
            policy_items: items.into_iter().map(|(_, item)| item).collect(),
        });
    }
    Ok(out)
}

/// Refuses the copy and extra-retention settings snapex does not implement, rather than
/// storing them without effect.
fn refuse_unsupported(change: &ScheduleUpdate, version: ScheduleVersion) -> Result<(), Invalid> {
    const NO_COPIES: &str = "snapex keeps no snapshot copies in other regions";
    if change.auto_copy_settings_enabled.is_some() && version != ScheduleVersion::V2024 {
        return Err(Invalid::attribute(
            "autoCopySettingsEnabled",
            "unknown field",
        ));
    }
    for (field, set) in [
        ("copyPolicyItemsEnabled", change.copy_policy_items_enabled),
        ("autoCopySettingsEnabled", change.auto_copy_settings_enabled),
        ("deleteCopySnapshots", change.delete_copy_snapshots),
        ("updateCopySnapshots", change.update_copy_snapshots),
    ] {
        if set == Some(true) {
            return Err(Invalid::attribute(field, NO_COPIES));
        }
    }
    for (field, list) in [
        ("copySettings", &change.copy_settings),
        ("deleteCopiedBackups", &change.delete_copied_backups),
    ] {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(Invalid::attribute(field, NO_COPIES));
        }
    }
    if change
        .extra_retention_settings
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        return Err(Invalid::attribute(
            "extraRetentionSettings",
            "extra retention settings are not supported",
        ));
    }
    if change.delete_snapshots == Some(true) {
        return Err(Invalid::attribute(
            "deleteSnapshots",
            "snapex does not delete snapshots with their policy; delete them or let them expire",
        ));
    }
    Ok(())
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
            add_retention(t, RetentionUnit::Months, 1),
            Some(Utc.with_ymd_and_hms(2026, 2, 28, 3, 27, 0).unwrap())
        );
        assert_eq!(
            add_retention(t, RetentionUnit::Years, 2),
            Some(Utc.with_ymd_and_hms(2028, 1, 31, 3, 27, 0).unwrap())
        );
        assert_eq!(
            add_retention(t, RetentionUnit::Weeks, 2),
            Some(Utc.with_ymd_and_hms(2026, 2, 14, 3, 27, 0).unwrap())
        );
        assert_eq!(add_retention(t, RetentionUnit::Days, 0), None);
        assert_eq!(add_retention(t, RetentionUnit::Years, i64::MAX), None);
    }

    #[test]
    fn the_longest_item_of_a_frequency_governs() {
        let schedule: Schedule = serde_json::from_value(serde_json::json!({"policies": [{"id": "p", "policyItems": [
            {"frequencyInterval": 1, "frequencyType": "daily", "id": "a", "retentionUnit": "days", "retentionValue": 7},
            {"frequencyInterval": 1, "frequencyType": "daily", "id": "b", "retentionUnit": "weeks", "retentionValue": 2},
            {"frequencyInterval": 1, "frequencyType": "monthly", "id": "c", "retentionUnit": "months", "retentionValue": 12},
        ]}]}))
        .unwrap();
        let item = schedule.retention_for(FrequencyType::Daily).unwrap();
        assert_eq!(
            (item.id.as_str(), item.retention_unit, item.retention_value),
            ("b", RetentionUnit::Weeks, 2)
        );
        assert!(schedule.retention_for(FrequencyType::Hourly).is_none());
    }

    #[test]
    fn intervals_follow_the_frequency() {
        use FrequencyType::*;
        assert!(interval_allowed(Hourly, 6) && !interval_allowed(Hourly, 5));
        assert!(interval_allowed(Daily, 1) && !interval_allowed(Daily, 2));
        assert!(interval_allowed(Weekly, 7) && !interval_allowed(Weekly, 8));
        assert!(interval_allowed(Monthly, 40) && !interval_allowed(Monthly, 29));
        assert!(interval_allowed(Yearly, 12) && !interval_allowed(Yearly, 13));
    }
}

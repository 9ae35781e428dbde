//! The export-wide objects of PRODUCT.md §2: `exported_snapshots/.permissioncheck` at the start,
//! then `.manifest.json` and, written last so that its presence means "everything is there",
//! `.complete`.

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;
use object_store::path::{Path, PathPart};
use serde_json::json;

use sha2::{Digest, Sha256};

use super::replica_set::{base_path, join, relative_key};
use super::schema::{SCHEMA_FILE, Stats, schema_document};
use super::{
    CompleteInfo, DataFormat, ExportError, ExportSummary, ExportTarget, ManifestObject,
    NamespaceFilter, ReplicaSetSummary,
};
use crate::storage::Location;

pub const PERMISSION_CHECK_FILE: &str = "exported_snapshots/.permissioncheck";
pub const MANIFEST_FILE: &str = ".manifest.json";
pub const COMPLETE_FILE: &str = ".complete";

/// Version of the `.manifest.json` format, for readers of older exports.
const MANIFEST_FORMAT: u32 = 1;

/// Writes the empty `exported_snapshots/.permissioncheck` at the bucket's root: the one
/// permission check, when a bucket is added and when an export starts.
pub async fn write_permission_check(bucket: &Location) -> Result<(), object_store::Error> {
    let path = base_path(&bucket.prefix, PERMISSION_CHECK_FILE);
    bucket
        .store
        .put(&path, Vec::<u8>::new().into())
        .await
        .map(|_| ())
}

pub(super) async fn finish(
    target: &ExportTarget,
    info: &CompleteInfo,
    namespaces: &NamespaceFilter,
    summaries: &[ReplicaSetSummary],
) -> Result<ExportSummary, ExportError> {
    let base = base_path(&target.bucket.prefix, &target.prefix);
    let schema_objects = write_schemas(target, &base, summaries).await?;
    // The shards of a sharded collection each write the same `metadata.json`: one entry per key.
    let mut objects: BTreeMap<&str, &ManifestObject> = BTreeMap::new();
    for summary in summaries {
        for object in &summary.objects {
            objects.entry(object.key.as_str()).or_insert(object);
        }
    }
    for object in &schema_objects {
        objects.entry(object.key.as_str()).or_insert(object);
    }
    let total_files = objects.len() as u64;
    let documents: u64 = summaries.iter().map(|s| s.documents).sum();
    let skipped_invalid: u64 = summaries.iter().map(|s| s.skipped_invalid_documents).sum();
    let buckets: u64 = summaries.iter().map(|s| s.buckets).sum();
    let skipped_buckets: u64 = summaries.iter().map(|s| s.skipped_invalid_buckets).sum();
    let skipped: Vec<_> = summaries
        .iter()
        .flat_map(|s| s.skipped_collections.iter())
        .collect();
    let mut manifest = json!({
        "formatVersion": MANIFEST_FORMAT,
        "prefix": target.prefix,
        "totalFiles": total_files,
        "documents": documents,
        "skippedInvalidDocuments": skipped_invalid,
        "buckets": buckets,
        "skippedInvalidBuckets": skipped_buckets,
        "skippedCollections": skipped,
        "objects": objects.values().collect::<Vec<_>>(),
    });
    // Parts that hold an oplog the export did not apply (PBM backups) say so, with its range:
    // their documents are as dumped, not as of the snapshot's consistent point.
    let oplog: Vec<_> = summaries
        .iter()
        .filter_map(|s| {
            let note = s.oplog.as_ref()?;
            let mut entry = serde_json::to_value(note).ok()?;
            if let Some(map) = entry.as_object_mut() {
                map.insert("replicaSet".into(), json!(s.replica_set));
            }
            Some(entry)
        })
        .collect();
    if !oplog.is_empty() {
        manifest["oplog"] = json!(oplog);
    }
    // A filtered export says so, with what it left out: a reader of the manifest can tell a
    // collection that was not selected from one that was lost. `.complete` stays exactly
    // Atlas's shape (see README, "Namespace filters").
    if !namespaces.is_everything() {
        let excluded: Vec<_> = summaries
            .iter()
            .flat_map(|s| {
                s.excluded_collections
                    .iter()
                    .map(|c| json!({"replicaSet": s.replica_set, "collection": c}))
            })
            .collect();
        manifest["namespaces"] = json!({
            "include": namespaces.include,
            "exclude": namespaces.exclude,
            "excluded": excluded,
        });
    }
    put_json(target, &base, MANIFEST_FILE, &manifest).await?;
    crate::pause::at(crate::pause::Phase::AfterManifest).await;

    let pairs = |items: &[(String, String)]| {
        items
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect::<Vec<_>>()
    };
    let complete = json!({
        "orgId": info.org_id,
        "orgName": info.org_name,
        "groupId": info.group_id,
        "groupName": info.group_name,
        "clusterUniqueId": info.cluster_unique_id,
        "clusterName": info.cluster_name,
        "snapshotInitiationDate": info
            .snapshot_initiation_date
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        "totalFiles": total_files,
        "labels": pairs(&info.labels),
        "customData": pairs(&info.custom_data),
    });
    put_json(target, &base, COMPLETE_FILE, &complete).await?;
    crate::pause::at(crate::pause::Phase::AfterComplete).await;
    Ok(ExportSummary {
        prefix: target.prefix.clone(),
        replica_sets: summaries.to_vec(),
        total_files,
    })
}

/// Writes `<db>/<coll>/.schema.json` for every exported collection, its statistics merged over
/// the replica sets that hold it, and returns their manifest entries. They are manifest objects
/// like `metadata.json` (so `totalFiles` counts them and `verify` checks them); the leading dot
/// keeps them out of readers that list a folder's data files (Spark, Hive, Athena skip hidden
/// files), and Atlas's own objects are untouched.
async fn write_schemas(
    target: &ExportTarget,
    base: &Path,
    summaries: &[ReplicaSetSummary],
) -> Result<Vec<ManifestObject>, ExportError> {
    let mut merged: BTreeMap<(&str, &str), (Stats, &str, DataFormat)> = BTreeMap::new();
    for summary in summaries {
        for schema in &summary.schemas {
            merged
                .entry((schema.db.as_str(), schema.name.as_str()))
                .and_modify(|(stats, _, _)| stats.merge(&schema.stats))
                .or_insert_with(|| {
                    (
                        schema.stats.clone(),
                        summary.replica_set.as_str(),
                        summary.data_format,
                    )
                });
        }
    }
    let mut objects = Vec::new();
    for ((db, name), (stats, replica_set, format)) in merged {
        let key = relative_key(&[db, name, SCHEMA_FILE]);
        let location = format!(
            "{}/{}/{}/",
            target.bucket.url.trim_end_matches('/'),
            target.prefix.trim_matches('/'),
            key.rsplit_once('/').map_or("", |(folder, _)| folder)
        );
        let document = schema_document(db, name, &stats, format.as_str(), &location);
        // A JSON value always serializes.
        let body = serde_json::to_vec_pretty(&document).unwrap_or_default();
        let path = join(base, &key);
        let sha256 = hex::encode(Sha256::digest(&body));
        let bytes = body.len() as u64;
        target
            .bucket
            .store
            .put(&path, body.into())
            .await
            .map_err(|source| ExportError::Finish {
                object: path.to_string(),
                source,
            })?;
        objects.push(ManifestObject {
            key,
            bytes,
            uncompressed_bytes: bytes,
            documents: 0,
            buckets: None,
            replica_set: replica_set.to_string(),
            collection: format!("{db}.{name}"),
            sha256,
        });
    }
    Ok(objects)
}

async fn put_json(
    target: &ExportTarget,
    base: &Path,
    name: &str,
    value: &serde_json::Value,
) -> Result<(), ExportError> {
    let path = base.clone().join(PathPart::from(name));
    // A JSON value always serializes.
    let body = serde_json::to_vec(value).unwrap_or_default();
    target
        .bucket
        .store
        .put(&path, body.into())
        .await
        .map(|_| ())
        .map_err(|source| ExportError::Finish {
            object: path.to_string(),
            source,
        })
}

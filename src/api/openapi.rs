//! The OpenAPI document of everything served, at `GET /api/openapi.json` (no authentication).
//!
//! It is generated from [`OPERATIONS`], a table kept next to the routers: every operation with
//! its media-type versions, required role and summary. Bodies of Atlas operations follow the
//! schemas of Atlas's published spec, named per media type in `x-atlas-schema` (the schemas
//! themselves are not copied here); we chose a route table over serving
//! an adapted copy of Atlas's document because the table also documents our extensions, error
//! codes and the `FILESYSTEM` provider, and a test checks it against the router.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::AppState;

/// The Atlas schema an operation's success body follows (by version where they differ), as
/// named in Atlas's spec; `None` for our own operations.
fn atlas_schema(operation_id: &str, version: &str) -> Option<&'static str> {
    Some(match (operation_id, version) {
        ("listGroupBackupExportBuckets", "2023-01-01") => "PaginatedBackupSnapshotExportBucketView",
        ("listGroupBackupExportBuckets", _) => "PaginatedBackupSnapshotExportBucketsView",
        ("createGroupBackupExportBucket" | "getGroupBackupExportBucket", "2023-01-01") => {
            "DiskBackupSnapshotAWSExportBucketResponse"
        }
        (
            "createGroupBackupExportBucket"
            | "getGroupBackupExportBucket"
            | "updateGroupBackupExportBucket",
            _,
        ) => "DiskBackupSnapshotExportBucketResponse",
        ("listGroupClusterBackupExports", _) => "PaginatedApiAtlasDiskBackupExportJobView",
        ("createGroupClusterBackupExport" | "getGroupClusterBackupExport", _) => {
            "DiskBackupExportJob"
        }
        (
            "getGroupClusterBackupSchedule"
            | "updateGroupClusterBackupSchedule"
            | "deleteGroupClusterBackupSchedule",
            "2023-01-01",
        ) => "DiskBackupSnapshotSchedule",
        (
            "getGroupClusterBackupSchedule"
            | "updateGroupClusterBackupSchedule"
            | "deleteGroupClusterBackupSchedule",
            _,
        ) => "DiskBackupSnapshotSchedule20240805",
        ("listGroupClusterBackupSnapshots", _) => "PaginatedCloudBackupReplicaSetView",
        ("getGroupClusterBackupSnapshot" | "updateGroupClusterBackupSnapshot", _) => {
            "DiskBackupReplicaSet"
        }
        ("listGroupClusterBackupSnapshotShardedClusters", _) => {
            "PaginatedCloudBackupShardedClusterSnapshotView"
        }
        ("getGroupClusterBackupSnapshotShardedCluster", _) => "DiskBackupShardedClusterSnapshot",
        _ => return None,
    })
}

/// One served operation.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    /// Response media-type versions; empty: `application/json`.
    pub versions: &'static [&'static str],
    pub role: &'static str,
    pub summary: &'static str,
}

const G: &str = "/api/atlas/v2/groups/{groupId}";
macro_rules! op {
    ($m:literal, $p:expr, $id:literal, [$($v:literal),*], $role:literal, $s:literal) => {
        Operation { method: $m, path: $p, operation_id: $id, versions: &[$($v),*], role: $role, summary: $s }
    };
}

pub const OPERATIONS: &[Operation] = &[
    op!(
        "post",
        "/api/atlas/v2/groups",
        "createProject",
        ["2023-01-01"],
        "Organization Project Creator",
        "Create one project"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups",
        "listProjects",
        ["2023-01-01"],
        "Project Read Only",
        "Return the projects the caller has a role in"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}",
        "getProject",
        ["2023-01-01"],
        "Project Read Only",
        "Return one project"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/byName/{groupName}",
        "getProjectByName",
        ["2023-01-01"],
        "Project Read Only",
        "Return one project by name"
    ),
    op!(
        "get",
        "/api/atlas/v2/orgs",
        "listOrganizations",
        ["2023-01-01"],
        "Organization Member",
        "Return the caller's organization"
    ),
    op!(
        "get",
        "/api/atlas/v2/orgs/{orgId}",
        "getOrganization",
        ["2023-01-01"],
        "Organization Member",
        "Return one organization"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters",
        "listClusters",
        ["2023-01-01", "2023-02-01", "2024-08-05", "2024-10-23"],
        "Project Read Only",
        "Return all clusters (stateName IDLE)"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}",
        "getCluster",
        ["2023-01-01", "2023-02-01", "2024-08-05", "2024-10-23"],
        "Project Read Only",
        "Return one cluster"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/backup/exportBuckets",
        "listGroupBackupExportBuckets",
        ["2023-01-01", "2024-05-30"],
        "Project Read Only",
        "Return all export buckets"
    ),
    op!(
        "post",
        "/api/atlas/v2/groups/{groupId}/backup/exportBuckets",
        "createGroupBackupExportBucket",
        ["2023-01-01", "2024-05-30"],
        "Project Backup Manager",
        "Create one export bucket (writes exported_snapshots/.permissioncheck; 400 EXPORT_BUCKET_PERMISSION_CHECK_FAILED)"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/backup/exportBuckets/{exportBucketId}",
        "getGroupBackupExportBucket",
        ["2023-01-01", "2024-05-30"],
        "Project Read Only",
        "Return one export bucket"
    ),
    op!(
        "patch",
        "/api/atlas/v2/groups/{groupId}/backup/exportBuckets/{exportBucketId}",
        "updateGroupBackupExportBucket",
        ["2024-05-30"],
        "Project Backup Manager",
        "Update requirePrivateNetworking"
    ),
    op!(
        "delete",
        "/api/atlas/v2/groups/{groupId}/backup/exportBuckets/{exportBucketId}",
        "deleteGroupBackupExportBucket",
        ["2023-01-01"],
        "Project Backup Manager",
        "Delete one export bucket (400 EXPORT_BUCKET_DELETE_FAILED when in use)"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/exports",
        "listGroupClusterBackupExports",
        ["2023-01-01"],
        "Project Backup Manager",
        "Return all export jobs"
    ),
    op!(
        "post",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/exports",
        "createGroupClusterBackupExport",
        ["2023-01-01"],
        "Project Backup Export Operator",
        "Create one export job (409 SNAPSHOT_EXPORT_ALREADY_ACTIVE, 400 CANNOT_EXPORT_FALLBACK_SNAPSHOT, 400 CANNOT_EXPORT_INCOMPLETE_SNAPSHOT)"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/exports/{exportId}",
        "getGroupClusterBackupExport",
        ["2023-01-01"],
        "Project Backup Manager",
        "Return one export job"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
        "getGroupClusterBackupSchedule",
        ["2023-01-01", "2024-08-05"],
        "Project Read Only",
        "Return the backup schedule"
    ),
    op!(
        "patch",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
        "updateGroupClusterBackupSchedule",
        ["2023-01-01", "2024-08-05"],
        "Project Backup Manager",
        "Update the backup schedule"
    ),
    op!(
        "delete",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/schedule",
        "deleteGroupClusterBackupSchedule",
        ["2023-01-01", "2024-08-05"],
        "Project Backup Manager",
        "Remove all policy items"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots",
        "listGroupClusterBackupSnapshots",
        ["2023-01-01"],
        "Project Read Only",
        "Return all replica-set snapshots"
    ),
    op!(
        "post",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots",
        "takeGroupClusterBackupSnapshots",
        ["2023-01-01"],
        "Project Backup Creator",
        "Take an on-demand snapshot (not yet: 400 ON_DEMAND_SNAPSHOT_NOT_SUPPORTED)"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
        "getGroupClusterBackupSnapshot",
        ["2023-01-01"],
        "Project Read Only",
        "Return one replica-set snapshot"
    ),
    op!(
        "patch",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
        "updateGroupClusterBackupSnapshot",
        ["2023-01-01"],
        "Project Backup Manager",
        "Change retention"
    ),
    op!(
        "delete",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}",
        "deleteGroupClusterBackupSnapshot",
        ["2023-01-01"],
        "Project Backup Manager",
        "Delete the snapshot record (never the user's files)"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedClusters",
        "listGroupClusterBackupSnapshotShardedClusters",
        ["2023-01-01"],
        "Project Read Only",
        "Return all sharded-cluster snapshots"
    ),
    op!(
        "get",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedCluster/{snapshotId}",
        "getGroupClusterBackupSnapshotShardedCluster",
        ["2023-01-01"],
        "Project Read Only",
        "Return one sharded-cluster snapshot"
    ),
    op!(
        "delete",
        "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedCluster/{snapshotId}",
        "deleteGroupClusterBackupSnapshotShardedCluster",
        ["2023-01-01"],
        "Project Backup Manager",
        "Delete one sharded-cluster snapshot record"
    ),
    op!(
        "get",
        "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/snapshots/{snapshotId}",
        "getLegacySnapshot",
        [],
        "Project Read Only",
        "Legacy v1.0 snapshot"
    ),
    op!(
        "get",
        "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/backup/exports",
        "listExportJobsV1",
        [],
        "Project Backup Manager",
        "Return all export jobs (v1.0, errMsg)"
    ),
    op!(
        "post",
        "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/backup/exports",
        "createExportJobV1",
        [],
        "Project Backup Export Operator",
        "Create one export job (v1.0)"
    ),
    op!(
        "get",
        "/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}/backup/exports/{exportId}",
        "getExportJobV1",
        [],
        "Project Backup Manager",
        "Return one export job (v1.0, errMsg)"
    ),
    op!(
        "post",
        "/api/snapex/v1/groups/{groupId}/clusters",
        "snapexRegisterCluster",
        [],
        "Project Owner",
        "Register a cluster {name, clusterType, replicaSets, labels}"
    ),
    op!(
        "post",
        "/api/snapex/v1/groups/{groupId}/clusters/{clusterName}/snapshots",
        "snapexImportSnapshot",
        [],
        "Project Backup Creator",
        "Import a snapshot from storage URLs {parts:[{replicaSetName,url}]}"
    ),
    op!(
        "get",
        "/api/snapex/v1/groups/{groupId}/backupLocations",
        "snapexListBackupLocations",
        [],
        "Project Read Only",
        "The backup locations the operator declared for the project, with the backups each registered"
    ),
    op!(
        "post",
        "/api/snapex/v1/groups/{groupId}/accessRoles",
        "snapexCreateAccessRole",
        [],
        "Project Owner",
        "Store object-store credentials (sealed, never returned)"
    ),
    op!(
        "post",
        "/api/snapex/v1/groups/{groupId}/clusters/{clusterName}/backup/exports",
        "snapexCreateExportJob",
        [],
        "Project Backup Export Operator",
        "Create one export job: Atlas's body plus namespaces {include, exclude}"
    ),
    op!(
        "post",
        "/api/snapex/v1/groups/{groupId}/clusters/{clusterName}/backup/exports/{exportId}/cancel",
        "snapexCancelExport",
        [],
        "Project Backup Export Operator",
        "Cancel an export job"
    ),
    op!(
        "post",
        "/api/oauth/token",
        "oauthToken",
        [],
        "",
        "OAuth 2.0 client credentials: a one-hour bearer token"
    ),
    op!(
        "post",
        "/api/oauth/revoke",
        "oauthRevoke",
        [],
        "",
        "Revoke a bearer token"
    ),
    op!("get", "/healthz", "healthz", [], "", "Liveness"),
    op!(
        "get",
        "/readyz",
        "readyz",
        [],
        "",
        "Readiness (the database answers)"
    ),
    op!("get", "/metrics", "metrics", [], "", "Prometheus metrics"),
    op!(
        "get",
        "/api/openapi.json",
        "openapi",
        [],
        "",
        "This document"
    ),
];

const _: &str = G;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(document))
}

/// The document as JSON.
pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in OPERATIONS {
        let content: Map<String, Value> = if op.versions.is_empty() {
            [(
                "application/json".to_string(),
                json!({"schema": {"type": "object"}}),
            )]
            .into_iter()
            .collect()
        } else {
            op.versions
                .iter()
                .map(|v| {
                    let mut media = json!({"schema": {"type": "object"}, "x-xgen-version": v});
                    if let Some(name) = atlas_schema(op.operation_id, v)
                        && let Some(m) = media.as_object_mut()
                    {
                        m.insert("x-atlas-schema".into(), name.into());
                    }
                    (format!("application/vnd.atlas.{v}+json"), media)
                })
                .collect()
        };
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"in": "path", "name": name, "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut operation = json!({
            "operationId": op.operation_id,
            "summary": op.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": content},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}},
            },
        });
        if !op.role.is_empty()
            && let Some(m) = operation.as_object_mut()
        {
            m.insert("x-rolesRequirements".into(), json!([op.role]));
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        if let Some(m) = entry.as_object_mut() {
            m.insert(op.method.to_string(), operation);
        }
    }
    json!({
        "openapi": "3.0.1",
        "info": {"title": "snapex Admin API (Atlas-compatible Cloud Backup Snapshot Export)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": {
                "ApiError": {
                    "type": "object",
                    "required": ["error", "errorCode", "detail", "reason"],
                    "properties": {
                        "detail": {"type": "string"}, "error": {"type": "integer"}, "errorCode": {"type": "string"},
                        "parameters": {"type": "array"}, "reason": {"type": "string"},
                        "badRequestDetail": {"type": "object", "properties": {"fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}}}},
                    },
                },
            },
            "securitySchemes": {
                "DigestAuth": {"type": "http", "scheme": "digest"},
                "ServiceAccounts": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/api/oauth/token", "scopes": {}}}},
            },
        },
        "security": [{"DigestAuth": []}, {"ServiceAccounts": []}],
    })
}

async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        build().to_string(),
    )
}

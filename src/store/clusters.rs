//! Clusters registered through `/api/snapex/v1`: a name, a type and one replica set per shard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Store, StoreError, from_millis, map_unique, new_id, now, parse_json, to_json, to_millis,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterType {
    Replicaset,
    Sharded,
}

impl ClusterType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ClusterType::Replicaset => "REPLICASET",
            ClusterType::Sharded => "SHARDED",
        }
    }
    pub fn parse(s: &str) -> Option<ClusterType> {
        match s {
            "REPLICASET" => Some(ClusterType::Replicaset),
            "SHARDED" => Some(ClusterType::Sharded),
            _ => None,
        }
    }
}

/// A `{key, value}` pair (cluster labels, export `customData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: String,
    pub group_id: String,
    pub name: String,
    pub cluster_type: ClusterType,
    pub replica_sets: Vec<String>,
    pub labels: Vec<Label>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewCluster {
    pub name: String,
    pub cluster_type: ClusterType,
    pub replica_sets: Vec<String>,
    pub labels: Vec<Label>,
}

const COLUMNS: &str = "id, group_id, name, cluster_type, replica_sets, labels, created_at";

fn cluster_from_row(row: &AnyRow) -> Result<Cluster, StoreError> {
    let cluster_type: String = row.try_get("cluster_type")?;
    Ok(Cluster {
        id: row.try_get("id")?,
        group_id: row.try_get("group_id")?,
        name: row.try_get("name")?,
        cluster_type: ClusterType::parse(&cluster_type).ok_or_else(|| StoreError::Corrupt {
            column: "clusters.cluster_type".into(),
            message: cluster_type.clone(),
        })?,
        replica_sets: parse_json(
            "clusters.replica_sets",
            &row.try_get::<String, _>("replica_sets")?,
        )?,
        labels: parse_json("clusters.labels", &row.try_get::<String, _>("labels")?)?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

impl Store {
    /// Registers a cluster; [`StoreError::Duplicate`] when the project already has one of that name.
    pub async fn create_cluster(
        &self,
        group_id: &str,
        new: NewCluster,
    ) -> Result<Cluster, StoreError> {
        let cluster = Cluster {
            id: new_id(),
            group_id: group_id.to_string(),
            name: new.name,
            cluster_type: new.cluster_type,
            replica_sets: new.replica_sets,
            labels: new.labels,
            created_at: now(),
        };
        sqlx::query(
            "INSERT INTO clusters (id, group_id, name, cluster_type, replica_sets, labels, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&cluster.id)
        .bind(&cluster.group_id)
        .bind(&cluster.name)
        .bind(cluster.cluster_type.as_str())
        .bind(to_json(&cluster.replica_sets))
        .bind(to_json(&cluster.labels))
        .bind(to_millis(cluster.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| map_unique(e, &format!("cluster named {}", cluster.name)))?;
        Ok(cluster)
    }

    pub async fn get_cluster(
        &self,
        group_id: &str,
        name: &str,
    ) -> Result<Option<Cluster>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clusters WHERE group_id = $1 AND name = $2"
        ))
        .bind(group_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(cluster_from_row).transpose()
    }

    pub async fn get_cluster_by_id(&self, id: &str) -> Result<Option<Cluster>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clusters WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cluster_from_row).transpose()
    }

    /// One page of a project's clusters, oldest first, and the total count.
    pub async fn list_clusters(
        &self,
        group_id: &str,
        page: super::Page,
    ) -> Result<(Vec<Cluster>, u64), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clusters WHERE group_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(group_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clusters WHERE group_id = $1")
            .bind(group_id)
            .fetch_one(&self.pool)
            .await?;
        let clusters = rows
            .iter()
            .map(cluster_from_row)
            .collect::<Result<_, _>>()?;
        Ok((clusters, u64::try_from(total).unwrap_or(0)))
    }
}

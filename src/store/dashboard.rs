//! Queries of the web dashboard (`crate::dashboard`) that the API has no use for: a project's
//! export jobs across its clusters with filters, the admission queue in its order, the nodes
//! that hold job leases, and a service account's identity for a signed-in session.
//!
//! snapex keeps no registry of nodes: a node is known by the leases it holds (the
//! `lease_owner` and `heartbeat_at` of its running parts), which is also what decides whether
//! its jobs are alive, so that is what [`Store::node_leases`] reports.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::jobs::{JOB_COLUMNS, job_from_row};
use super::{ExportJob, JobState, Store, StoreError, from_millis};

/// Who a service account is, for reloading a signed-in session (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIdentity {
    /// The service account id.
    pub id: String,
    pub org_id: String,
}

/// Which of a project's export jobs to list; every field left empty matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub cluster_name: Option<String>,
    pub export_bucket_id: Option<String>,
    /// Only `Queued` and `InProgress` jobs.
    pub active_only: bool,
}

/// A node as its leases show it: the parts it is running right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLease {
    pub node_id: String,
    /// The newest heartbeat of any of its running parts.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// The earliest lease expiry among them: past it, another node fails the job.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Jobs it holds (across every project) and replica sets it is exporting.
    pub jobs: u64,
    pub replica_sets: u64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// The service account with this OAuth client id, without its secret.
    pub async fn service_account_owner(
        &self,
        client_id: &str,
    ) -> Result<Option<AccountIdentity>, StoreError> {
        let row = sqlx::query("SELECT id, org_id FROM service_accounts WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(AccountIdentity {
                id: row.try_get("id")?,
                org_id: row.try_get("org_id")?,
            })
        })
        .transpose()
    }

    /// The newest `limit` export jobs of a project (every cluster) that match `filter`, with
    /// their parts, and how many match in all.
    pub async fn list_project_export_jobs(
        &self,
        group_id: &str,
        filter: &JobFilter,
        limit: u32,
    ) -> Result<(Vec<ExportJob>, u64), StoreError> {
        let mut conditions = vec!["group_id = $1".to_string()];
        let mut binds: Vec<String> = vec![group_id.to_string()];
        let mut bind = |column: &str, value: &str, binds: &mut Vec<String>| {
            binds.push(value.to_string());
            conditions.push(format!("{column} = ${}", binds.len()));
        };
        if let Some(state) = filter.state {
            bind("state", state.as_str(), &mut binds);
        }
        if let Some(cluster) = &filter.cluster_name {
            bind("cluster_name", cluster, &mut binds);
        }
        if let Some(bucket) = &filter.export_bucket_id {
            bind("export_bucket_id", bucket, &mut binds);
        }
        if filter.active_only {
            conditions.push("state IN ('Queued', 'InProgress')".to_string());
        }
        let condition = conditions.join(" AND ");
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM export_jobs WHERE {condition} \
             ORDER BY created_at DESC, id DESC LIMIT ${}",
            binds.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        let count_sql = format!("SELECT COUNT(*) FROM export_jobs WHERE {condition}");
        let mut total = sqlx::query_scalar::<_, i64>(&count_sql);
        for value in &binds {
            total = total.bind(value);
        }
        let total = total.fetch_one(&self.pool).await?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.load_parts(&mut jobs).await?;
        Ok((jobs, count(total)))
    }

    /// The ids of every queued job of the deployment, in the order admission takes them
    /// (oldest first, as [`Store::admit_next_job`] does).
    pub async fn queue_order(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM export_jobs WHERE state = 'Queued' ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every node holding a lease on a running part, by node id.
    pub async fn node_leases(&self) -> Result<Vec<NodeLease>, StoreError> {
        let rows = sqlx::query(
            "SELECT lease_owner, MAX(heartbeat_at) AS heartbeat, MIN(lease_expires_at) AS expires, \
             COUNT(DISTINCT job_id) AS jobs, COUNT(*) AS parts FROM export_job_parts \
             WHERE state = 'Running' AND lease_owner IS NOT NULL \
             GROUP BY lease_owner ORDER BY lease_owner",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeLease {
                    node_id: row.try_get("lease_owner")?,
                    last_heartbeat: row.try_get::<Option<i64>, _>("heartbeat")?.map(from_millis),
                    lease_expires_at: row.try_get::<Option<i64>, _>("expires")?.map(from_millis),
                    jobs: count(row.try_get("jobs")?),
                    replica_sets: count(row.try_get("parts")?),
                })
            })
            .collect()
    }

    /// `(node id, job id, cluster name)` of each running job of the project, by the nodes that
    /// hold it.
    pub async fn project_jobs_held(
        &self,
        group_id: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT p.lease_owner AS node, j.id AS job_id, j.cluster_name AS cluster_name \
             FROM export_job_parts p JOIN export_jobs j ON j.id = p.job_id \
             WHERE p.state = 'Running' AND p.lease_owner IS NOT NULL AND j.group_id = $1 \
             ORDER BY node, job_id",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("node")?,
                    row.try_get("job_id")?,
                    row.try_get("cluster_name")?,
                ))
            })
            .collect()
    }
}

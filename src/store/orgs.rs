//! Organizations and projects (Atlas "groups").

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, from_millis, map_unique, new_id, now, to_millis};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub org_id: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

fn org_from_row(row: &AnyRow) -> Result<Org, StoreError> {
    Ok(Org {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

fn project_from_row(row: &AnyRow) -> Result<Project, StoreError> {
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        org_id: row.try_get("org_id")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

impl Store {
    pub async fn create_org(&self, name: &str) -> Result<Org, StoreError> {
        let org = Org {
            id: new_id(),
            name: name.to_string(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&org.id)
            .bind(&org.name)
            .bind(to_millis(org.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| map_unique(e, "organization"))?;
        Ok(org)
    }

    pub async fn get_org(&self, id: &str) -> Result<Option<Org>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    pub async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM orgs ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(org_from_row).collect()
    }

    /// Creates a project; names are unique across the deployment (`GET /groups/byName/{name}`).
    /// Fails with [`StoreError::NotFound`] when the organization does not exist and
    /// [`StoreError::Duplicate`] when the name is taken.
    pub async fn create_project(&self, org_id: &str, name: &str) -> Result<Project, StoreError> {
        if self.get_org(org_id).await?.is_none() {
            return Err(StoreError::NotFound {
                what: format!("organization {org_id}"),
            });
        }
        let project = Project {
            id: new_id(),
            name: name.to_string(),
            org_id: org_id.to_string(),
            created_at: now(),
        };
        sqlx::query("INSERT INTO projects (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&project.id)
            .bind(&project.org_id)
            .bind(&project.name)
            .bind(to_millis(project.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| map_unique(e, &format!("project named {name}")))?;
        Ok(project)
    }

    pub async fn get_project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        let row = sqlx::query("SELECT id, org_id, name, created_at FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    pub async fn get_project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        let row = sqlx::query("SELECT id, org_id, name, created_at FROM projects WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    pub async fn list_projects(&self, org_id: &str) -> Result<Vec<Project>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, created_at FROM projects WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(project_from_row).collect()
    }
}

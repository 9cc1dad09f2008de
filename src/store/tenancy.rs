//! Workspaces and environments (one table each, the same columns) and their memberships:
//! environments, designs, teams and views of a workspace (`workspace_members`), connections
//! of an environment (`environment_connections`). Rows belong to an organization of a
//! provider; who may see them is the caller's business (`handlers::tenancy`).

use sqlx::Row;

use super::{Store, StoreError, like};

/// Which of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenant {
    Workspace,
    Environment,
}

impl Tenant {
    fn table(self) -> &'static str {
        match self {
            Tenant::Workspace => "workspaces",
            Tenant::Environment => "environments",
        }
    }
}

/// One workspace or environment.
#[derive(Debug, Clone, Default)]
pub struct TenantRow {
    pub id: String,
    /// The provider whose organization it is in (`Local` or a remote's name).
    pub provider: String,
    pub org_id: String,
    /// The storage owner key of the user who made it (`Session::owner`).
    pub owner: String,
    /// That user's id, as the API shows it.
    pub owner_id: String,
    pub name: String,
    pub description: String,
    /// A JSON object.
    pub metadata: String,
    pub created_at: String,
    pub updated_at: String,
}

impl TenantRow {
    fn of(r: &sqlx::any::AnyRow) -> Result<TenantRow, StoreError> {
        Ok(TenantRow {
            id: r.try_get("id")?,
            provider: r.try_get("provider")?,
            org_id: r.try_get("org_id")?,
            owner: r.try_get("owner")?,
            owner_id: r.try_get("owner_id")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            metadata: r.try_get("metadata")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

const COLUMNS: &str = "t.id, t.provider, t.org_id, t.owner, t.owner_id, t.name, t.description, t.metadata, t.created_at, t.updated_at";

/// A membership: of a workspace (`kind` environment, design, team or view) or of an
/// environment (a connection, `kind` connection, `owner` the connection's owner).
#[derive(Debug, Clone, Default)]
pub struct MemberRow {
    pub id: String,
    pub parent_id: String,
    pub kind: String,
    pub member_id: String,
    pub owner: String,
    pub created_at: String,
}

/// A listing of workspaces or environments.
#[derive(Debug, Clone)]
pub struct TenantQuery<'a> {
    pub provider: &'a str,
    pub org_id: &'a str,
    pub search: Option<&'a str>,
    /// Also match the description.
    pub search_description: bool,
    /// (`name`, `created_at` or `updated_at`, descending).
    pub order: (&'static str, bool),
    pub page: i64,
    pub page_size: Option<i64>,
    /// Only the members of this workspace (`true`) or only the others (`false`).
    pub workspace: Option<(&'a str, bool)>,
}

fn limits(page: i64, page_size: Option<i64>) -> (i64, i64) {
    match page_size {
        Some(size) => (size, page.saturating_mul(size)),
        None => (i64::MAX, 0),
    }
}

fn order_sql(order: (&'static str, bool)) -> (&'static str, &'static str) {
    let column = match order.0 {
        "name" => "name",
        "created_at" => "created_at",
        _ => "updated_at",
    };
    (column, if order.1 { "DESC" } else { "ASC" })
}

impl Store {
    pub async fn insert_tenant(&self, kind: Tenant, t: &TenantRow) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (id, provider, org_id, owner, owner_id, name, description, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            kind.table()
        )))
        .bind(&t.id)
        .bind(&t.provider)
        .bind(&t.org_id)
        .bind(&t.owner)
        .bind(&t.owner_id)
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.metadata)
        .bind(&t.created_at)
        .bind(&t.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Changes name, description, metadata and time of `t.id`; false when it is gone.
    pub async fn update_tenant(&self, kind: Tenant, t: &TenantRow) -> Result<bool, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET name = $2, description = $3, metadata = $4, updated_at = $5 WHERE id = $1",
            kind.table()
        )))
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.description)
        .bind(&t.metadata)
        .bind(&t.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn tenant(&self, kind: Tenant, id: &str) -> Result<Option<TenantRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM {} t WHERE t.id = $1",
            kind.table()
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(TenantRow::of).transpose()
    }

    /// Deletes a workspace or environment and every membership it has or is (one
    /// transaction); false when it was gone.
    pub async fn delete_tenant(&self, kind: Tenant, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        match kind {
            Tenant::Workspace => {
                sqlx::query("DELETE FROM workspace_members WHERE workspace_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            Tenant::Environment => {
                sqlx::query("DELETE FROM environment_connections WHERE environment_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "DELETE FROM workspace_members WHERE kind = 'environment' AND member_id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE id = $1",
            kind.table()
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// A page of an organization's workspaces or environments, and the total.
    pub async fn tenants(
        &self,
        kind: Tenant,
        q: &TenantQuery<'_>,
    ) -> Result<(Vec<TenantRow>, i64), StoreError> {
        let like_op = self.sql("LIKE", "ILIKE");
        let description = if q.search_description {
            format!(" OR t.description {like_op} $3 ESCAPE '\\'")
        } else {
            String::new()
        };
        // Every statement names $4, so both engines take the same binds.
        let membership = match q.workspace {
            None => " AND $4 = ''",
            Some((_, true)) => {
                " AND t.id IN (SELECT member_id FROM workspace_members WHERE workspace_id = $4 AND kind = 'environment')"
            }
            Some((_, false)) => {
                " AND t.id NOT IN (SELECT member_id FROM workspace_members WHERE workspace_id = $4 AND kind = 'environment')"
            }
        };
        let filter = format!(
            "t.provider = $1 AND t.org_id = $2 AND ($3 IS NULL OR t.name {like_op} $3 ESCAPE '\\'{description}){membership}"
        );
        let search = q.search.filter(|s| !s.is_empty()).map(like);
        let workspace = q.workspace.map(|(w, _)| w).unwrap_or_default();
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {} t WHERE {filter}",
            kind.table()
        )))
        .bind(q.provider)
        .bind(q.org_id)
        .bind(&search)
        .bind(workspace)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let (column, direction) = order_sql(q.order);
        let (limit, offset) = limits(q.page, q.page_size);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM {} t WHERE {filter}
             ORDER BY t.{column} {direction}, t.id {direction} LIMIT $5 OFFSET $6",
            kind.table()
        )))
        .bind(q.provider)
        .bind(q.org_id)
        .bind(&search)
        .bind(workspace)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows.iter().map(TenantRow::of).collect::<Result<_, _>>()?;
        Ok((rows, total))
    }

    /// Adds a membership unless there is one; the one kept (the first), or none when the
    /// parent is gone.
    pub async fn add_member(&self, m: &MemberRow) -> Result<Option<MemberRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        // Only while the parent is there (a delete may have run since it was read).
        if m.kind == "connection" {
            sqlx::query(
                "INSERT INTO environment_connections (environment_id, connection_id, owner, id, created_at)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM environments WHERE id = $1)
                 ON CONFLICT (environment_id, owner, connection_id) DO NOTHING",
            )
            .bind(&m.parent_id)
            .bind(&m.member_id)
            .bind(&m.owner)
            .bind(&m.id)
            .bind(&m.created_at)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO workspace_members (workspace_id, kind, member_id, owner, id, created_at)
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $1)
                 ON CONFLICT (workspace_id, kind, member_id) DO NOTHING",
            )
            .bind(&m.parent_id)
            .bind(&m.kind)
            .bind(&m.member_id)
            .bind(&m.owner)
            .bind(&m.id)
            .bind(&m.created_at)
            .execute(&mut *tx)
            .await?;
        }
        let kept = member_in(&mut tx, &m.parent_id, &m.kind, &m.member_id, &m.owner).await?;
        tx.commit().await?;
        Ok(kept)
    }

    /// Removes a membership; the one removed, if there was one.
    pub async fn remove_member(
        &self,
        parent_id: &str,
        kind: &str,
        member_id: &str,
    ) -> Result<Option<MemberRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let found = member_in(&mut tx, parent_id, kind, member_id, "").await?;
        if found.is_some() {
            if kind == "connection" {
                sqlx::query(
                    "DELETE FROM environment_connections WHERE environment_id = $1 AND connection_id = $2",
                )
                .bind(parent_id)
                .bind(member_id)
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "DELETE FROM workspace_members WHERE workspace_id = $1 AND kind = $2 AND member_id = $3",
                )
                .bind(parent_id)
                .bind(kind)
                .bind(member_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(found)
    }

    /// Ends every environment membership of `owner`'s connection (it is gone).
    pub async fn forget_connection(
        &self,
        owner: &str,
        connection_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM environment_connections WHERE owner = $1 AND connection_id = $2")
            .bind(owner)
            .bind(connection_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every membership of `kind` in a workspace, oldest first.
    pub async fn workspace_members(
        &self,
        workspace_id: &str,
        kind: &str,
    ) -> Result<Vec<MemberRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, workspace_id AS parent_id, kind, member_id, owner, created_at
             FROM workspace_members WHERE workspace_id = $1 AND kind = $2 ORDER BY created_at, member_id",
        )
        .bind(workspace_id)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_of).collect()
    }

    /// Every connection membership of an environment, oldest first.
    pub async fn environment_connections(
        &self,
        environment_id: &str,
    ) -> Result<Vec<MemberRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, environment_id AS parent_id, 'connection' AS kind, connection_id AS member_id, owner, created_at
             FROM environment_connections WHERE environment_id = $1 ORDER BY created_at, connection_id",
        )
        .bind(environment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_of).collect()
    }

    /// A page of the designs shared with a workspace (`owner` None), or of `owner`'s
    /// designs not in it; their documents and the total.
    pub async fn workspace_patterns(
        &self,
        workspace_id: &str,
        owner: Option<&str>,
        search: Option<&str>,
        order: (&'static str, bool),
        page: i64,
        page_size: Option<i64>,
    ) -> Result<(Vec<String>, i64), StoreError> {
        let like_op = self.sql("LIKE", "ILIKE");
        let members =
            "SELECT member_id FROM workspace_members WHERE workspace_id = $1 AND kind = 'design'";
        // A shared design stays readable to the workspace while it is its adder's own, or
        // public or published (made private by another owner, it drops out).
        let shared = "SELECT m.member_id FROM workspace_members m WHERE m.workspace_id = $1
             AND m.kind = 'design' AND (m.owner = p.owner OR p.visibility <> 'private')";
        let filter = match owner {
            None => format!("p.id IN ({shared}) AND $2 = ''"),
            Some(_) => format!("p.owner = $2 AND p.id NOT IN ({members})"),
        };
        let filter = format!("{filter} AND ($3 IS NULL OR p.name {like_op} $3 ESCAPE '\\')");
        let search = search.filter(|s| !s.is_empty()).map(like);
        let owner = owner.unwrap_or_default();
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM patterns p WHERE {filter}"
        )))
        .bind(workspace_id)
        .bind(owner)
        .bind(&search)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let (column, direction) = order_sql(order);
        let (limit, offset) = limits(page, page_size);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT p.doc FROM patterns p WHERE {filter}
             ORDER BY p.{column} {direction}, p.id {direction} LIMIT $4 OFFSET $5"
        )))
        .bind(workspace_id)
        .bind(owner)
        .bind(&search)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let docs = rows
            .iter()
            .map(|r| r.try_get("doc"))
            .collect::<Result<Vec<String>, _>>()?;
        Ok((docs, total))
    }
}

impl Store {
    /// The environments `owner`'s connections among these are in: (connection id,
    /// environment), by environment name; only those of organization `org` when given.
    pub async fn environments_of_connections(
        &self,
        owner: &str,
        connection_ids: &[String],
        org: Option<&str>,
    ) -> Result<Vec<(String, TenantRow)>, StoreError> {
        if connection_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(connection_ids)
            .map_err(|e| StoreError::Corrupt(format!("connection ids: {e}")))?;
        let within = self.sql(
            "ec.connection_id IN (SELECT value FROM json_each($1))",
            "ec.connection_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT ec.connection_id, {COLUMNS} FROM environment_connections ec
             JOIN environments t ON t.id = ec.environment_id
             WHERE {within} AND ec.owner = $2 AND ($3 = '' OR t.org_id = $3)
             ORDER BY t.name, t.id"
        )))
        .bind(ids)
        .bind(owner)
        .bind(org.unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("connection_id")?, TenantRow::of(r)?)))
            .collect()
    }
}

fn member_of(r: &sqlx::any::AnyRow) -> Result<MemberRow, StoreError> {
    Ok(MemberRow {
        id: r.try_get("id")?,
        parent_id: r.try_get("parent_id")?,
        kind: r.try_get("kind")?,
        member_id: r.try_get("member_id")?,
        owner: r.try_get("owner")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A membership; for a connection, `owner`'s (any owner's when empty: connection ids
/// are each owner's own).
async fn member_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    parent_id: &str,
    kind: &str,
    member_id: &str,
    owner: &str,
) -> Result<Option<MemberRow>, StoreError> {
    let row = if kind == "connection" {
        sqlx::query(
            "SELECT id, environment_id AS parent_id, 'connection' AS kind, connection_id AS member_id, owner, created_at
             FROM environment_connections WHERE environment_id = $1 AND connection_id = $2
               AND ($3 = '' OR owner = $3)
             ORDER BY created_at LIMIT 1",
        )
        .bind(parent_id)
        .bind(member_id)
        .bind(owner)
        .fetch_optional(&mut **tx)
        .await?
    } else {
        sqlx::query(
            "SELECT id, workspace_id AS parent_id, kind, member_id, owner, created_at
             FROM workspace_members WHERE workspace_id = $1 AND kind = $2 AND member_id = $3",
        )
        .bind(parent_id)
        .bind(kind)
        .bind(member_id)
        .fetch_optional(&mut **tx)
        .await?
    };
    row.as_ref().map(member_of).transpose()
}

//! Users' credentials (sealed) and their connections of kinds other than Kubernetes
//! ("integrations": Prometheus, Grafana, ...; Kubernetes contexts live in `k8s_contexts`).

use sqlx::Row;

use super::{Store, StoreError, like};

/// One stored credential; `secret` is sealed.
#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub owner: String,
    pub id: String,
    pub name: String,
    pub r#type: String,
    pub secret: Vec<u8>,
    pub created_at: String,
    pub updated_at: String,
}

impl CredentialRow {
    fn of(r: &sqlx::any::AnyRow) -> Result<CredentialRow, StoreError> {
        Ok(CredentialRow {
            owner: r.try_get("owner")?,
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            r#type: r.try_get("type")?,
            secret: r.try_get("secret")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

const CREDENTIAL_COLUMNS: &str = "owner, id, name, type, secret, created_at, updated_at";

/// One connection of a kind other than Kubernetes; `doc` is its metadata (JSON).
#[derive(Debug, Clone, Default)]
pub struct IntegrationRow {
    pub owner: String,
    pub id: String,
    pub kind: String,
    pub r#type: String,
    pub sub_type: String,
    pub name: String,
    pub status: String,
    pub doc: String,
    pub credential_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl IntegrationRow {
    fn of(r: &sqlx::any::AnyRow) -> Result<IntegrationRow, StoreError> {
        Ok(IntegrationRow {
            owner: r.try_get("owner")?,
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            r#type: r.try_get("type")?,
            sub_type: r.try_get("sub_type")?,
            name: r.try_get("name")?,
            status: r.try_get("status")?,
            doc: r.try_get("doc")?,
            credential_id: r.try_get("credential_id")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

const INTEGRATION_COLUMNS: &str =
    "owner, id, kind, type, sub_type, name, status, doc, credential_id, created_at, updated_at";

/// Which of an owner's integrations to list: each filter is "any of" (none: all).
#[derive(Debug, Clone, Default)]
pub struct IntegrationQuery<'a> {
    pub statuses: &'a [String],
    pub kinds: &'a [String],
    pub types: &'a [String],
    pub sub_types: &'a [String],
    pub search: Option<&'a str>,
    /// (`name`, `status` or `created_at`, descending).
    pub order: (&'static str, bool),
    /// At most this many rows from the start (the caller merges them with contexts).
    pub limit: i64,
}

impl Store {
    /// A page of an owner's credentials whose name or type contains `search`.
    pub async fn credentials(
        &self,
        owner: &str,
        search: Option<&str>,
        order: (&'static str, bool),
        page: i64,
        page_size: Option<i64>,
    ) -> Result<(Vec<CredentialRow>, i64), StoreError> {
        let like_op = self.sql("LIKE", "ILIKE");
        let filter = format!(
            "owner = $1 AND ($2 IS NULL OR name {like_op} $2 ESCAPE '\\' OR type {like_op} $2 ESCAPE '\\')"
        );
        let search = search.filter(|s| !s.is_empty()).map(like);
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM credentials WHERE {filter}"
        )))
        .bind(owner)
        .bind(&search)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let column = match order.0 {
            "name" => "name",
            "type" => "type",
            "updated_at" => "updated_at",
            _ => "created_at",
        };
        let direction = if order.1 { "DESC" } else { "ASC" };
        let (limit, offset) = match page_size {
            Some(size) => (size, page.saturating_mul(size)),
            None => (i64::MAX, 0),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE {filter}
             ORDER BY {column} {direction}, id {direction} LIMIT $3 OFFSET $4"
        )))
        .bind(owner)
        .bind(&search)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(CredentialRow::of)
            .collect::<Result<_, _>>()?;
        Ok((rows, total))
    }

    pub async fn credential(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<CredentialRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE owner = $1 AND id = $2"
        )))
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(CredentialRow::of).transpose()
    }

    /// Adds a credential unless the owner has one with its id; whether it was added.
    pub async fn insert_credential(&self, c: &CredentialRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO credentials (owner, id, name, type, secret, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (owner, id) DO NOTHING",
        )
        .bind(&c.owner)
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.r#type)
        .bind(&c.secret)
        .bind(&c.created_at)
        .bind(&c.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces an owner's credential's name, type and secret; whether it was there.
    pub async fn update_credential(&self, c: &CredentialRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE credentials SET name = $3, type = $4, secret = $5, updated_at = $6
             WHERE owner = $1 AND id = $2",
        )
        .bind(&c.owner)
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.r#type)
        .bind(&c.secret)
        .bind(&c.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes an owner's credential unless a connection uses it. `Ok(Err(names))`: the
    /// connections that do; `Ok(Ok(false))`: there was none.
    pub async fn delete_credential(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Result<bool, Vec<String>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let users = sqlx::query(
            "SELECT name FROM integrations WHERE owner = $1 AND credential_id = $2 ORDER BY name",
        )
        .bind(owner)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("name"))
        .collect::<Result<Vec<String>, _>>()?;
        if !users.is_empty() {
            return Ok(Err(users));
        }
        let done = sqlx::query("DELETE FROM credentials WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() > 0))
    }

    /// Deletes an owner's credential, used or not.
    pub async fn force_delete_credential(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM credentials WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds an integration, or replaces the owner's one with its id (keeping when it was
    /// made).
    pub async fn put_integration(&self, c: &IntegrationRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO integrations (owner, id, kind, type, sub_type, name, status, doc, credential_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (owner, id) DO UPDATE SET kind = excluded.kind, type = excluded.type,
                 sub_type = excluded.sub_type, name = excluded.name, status = excluded.status,
                 doc = excluded.doc, credential_id = excluded.credential_id,
                 updated_at = excluded.updated_at",
        )
        .bind(&c.owner)
        .bind(&c.id)
        .bind(&c.kind)
        .bind(&c.r#type)
        .bind(&c.sub_type)
        .bind(&c.name)
        .bind(&c.status)
        .bind(&c.doc)
        .bind(&c.credential_id)
        .bind(&c.created_at)
        .bind(&c.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn integration(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<IntegrationRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE owner = $1 AND id = $2"
        )))
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(IntegrationRow::of).transpose()
    }

    /// Those of an owner's integrations with these ids (one query, any order).
    pub async fn integrations_by_id(
        &self,
        owner: &str,
        ids: &[String],
    ) -> Result<Vec<IntegrationRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids =
            serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(format!("ids: {e}")))?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE owner = $1 AND id IN ({})",
            self.json_list(2)
        )))
        .bind(owner)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(IntegrationRow::of).collect()
    }

    /// The first `q.limit` of an owner's integrations that match, and how many match.
    pub async fn integrations(
        &self,
        owner: &str,
        q: &IntegrationQuery<'_>,
    ) -> Result<(Vec<IntegrationRow>, i64), StoreError> {
        let like_op = self.sql("LIKE", "ILIKE");
        let json = |v: &[String]| {
            serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("filter: {e}")))
        };
        let (statuses, kinds, types) = (json(q.statuses)?, json(q.kinds)?, json(q.types)?);
        let sub_types = json(q.sub_types)?;
        let filter = format!(
            "owner = $1 AND ($2 = '[]' OR status IN ({})) AND ($3 = '[]' OR kind IN ({}))
             AND ($4 = '[]' OR type IN ({})) AND ($5 = '[]' OR sub_type IN ({}))
             AND ($6 IS NULL OR name {like_op} $6 ESCAPE '\\')",
            self.json_list(2),
            self.json_list(3),
            self.json_list(4),
            self.json_list(5),
        );
        let search = q.search.filter(|s| !s.is_empty()).map(like);
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM integrations WHERE {filter}"
        )))
        .bind(owner)
        .bind(&statuses)
        .bind(&kinds)
        .bind(&types)
        .bind(&sub_types)
        .bind(&search)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let column = match q.order.0 {
            "name" => "name",
            "status" => "status",
            _ => "created_at",
        };
        let direction = if q.order.1 { "DESC" } else { "ASC" };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE {filter}
             ORDER BY {column} {direction}, id {direction} LIMIT $7"
        )))
        .bind(owner)
        .bind(&statuses)
        .bind(&kinds)
        .bind(&types)
        .bind(&sub_types)
        .bind(&search)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(IntegrationRow::of)
            .collect::<Result<_, _>>()?;
        Ok((rows, total))
    }

    /// How many of an owner's integrations are in each status.
    pub async fn integration_counts(&self, owner: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM integrations WHERE owner = $1 GROUP BY status ORDER BY status",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    pub async fn delete_integration(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM integrations WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

//! Connections (the state of each Kubernetes context), leases on who watches a context,
//! and the cluster inventory.

use sqlx::Row;

use super::{Store, StoreError, like};

/// One context as a connection.
#[derive(Debug, Clone)]
pub struct ConnectionRow {
    pub owner: String,
    /// The context's id.
    pub id: String,
    /// The context (`K8sContext` JSON).
    pub doc: String,
    pub status: String,
    pub status_reason: String,
    /// When the status last changed (empty: never since the upload).
    pub status_at: String,
    /// The cluster's version when last connected (empty: never).
    pub server_version: String,
}

impl ConnectionRow {
    fn of(r: &sqlx::any::AnyRow) -> Result<ConnectionRow, StoreError> {
        Ok(ConnectionRow {
            owner: r.try_get("owner")?,
            id: r.try_get("id")?,
            doc: r.try_get("doc")?,
            status: r.try_get("status")?,
            status_reason: r.try_get("status_reason")?,
            status_at: r.try_get("status_at")?,
            server_version: r.try_get("server_version")?,
        })
    }
}

const CONNECTION_COLUMNS: &str = "owner, id, doc, status, status_reason, status_at, server_version";

/// One stored object of a cluster.
#[derive(Debug, Clone)]
pub struct ResourceRow {
    pub id: String,
    pub owner: String,
    pub context_id: String,
    pub api_version: String,
    pub kind: String,
    pub model: String,
    pub namespace: String,
    pub name: String,
    /// The object's creationTimestamp.
    pub created: String,
    /// The resource as the API answers it (JSON).
    pub doc: String,
    pub labels: Vec<(String, String)>,
    /// The list that saw it last (see `InventoryOp::Sweep`).
    pub sweep: i64,
}

/// One change to the inventory; a batch of them is one transaction.
#[derive(Debug, Clone)]
pub enum InventoryOp {
    Upsert(ResourceRow),
    Delete {
        id: String,
    },
    /// A list of (`api_version`, `kind`) in a context ended: what it did not see goes.
    Sweep {
        owner: String,
        context_id: String,
        api_version: String,
        kind: String,
        before: i64,
    },
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
}

/// What to list of an owner's inventory. Empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct ResourceQuery {
    pub owner: String,
    /// `None`: every context of the owner.
    pub contexts: Option<Vec<String>>,
    pub kinds: Vec<String>,
    /// Objects in these namespaces, and the Namespace objects of these names.
    pub namespaces: Vec<String>,
    pub api_version: Option<String>,
    /// Part of the name, any case.
    pub search: Option<String>,
    /// Any of these `key=value` labels (Meshery's `label`).
    pub labels_any: Vec<(String, String)>,
    /// All of these (a Kubernetes label selector).
    pub selector: Vec<LabelReq>,
    /// (column, descending): `name`, `kind`, `namespace`, `api_version`, `created`.
    pub order: (&'static str, bool),
    pub page: i64,
    /// `None`: all.
    pub page_size: Option<i64>,
}

/// Counts of an owner's inventory.
#[derive(Debug, Clone, Default)]
pub struct ResourceSummary {
    /// (kind, model, count), by kind.
    pub kinds: Vec<(String, String, i64)>,
    pub namespaces: Vec<String>,
    /// Distinct labels, by key then value (at most 1,000).
    pub labels: Vec<(String, String)>,
}

/// Text or number parameters of a statement built at run time.
enum Bind {
    Text(String),
    Int(i64),
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        query = match b {
            Bind::Text(t) => query.bind(t.as_str()),
            Bind::Int(i) => query.bind(*i),
        };
    }
    query
}

impl Store {
    /// A JSON array parameter as rows of text, for `IN (...)`.
    pub(super) fn json_list(&self, n: usize) -> String {
        match self.engine {
            super::Engine::Sqlite => format!("SELECT value FROM json_each(${n})"),
            super::Engine::Postgres => format!("SELECT jsonb_array_elements_text(${n}::jsonb)"),
        }
    }

    /// A page of an owner's connections with these statuses (all when empty).
    pub async fn connection_rows(
        &self,
        owner: &str,
        statuses: &[String],
        search: Option<&str>,
        order: (&'static str, bool),
        page: i64,
        page_size: Option<i64>,
    ) -> Result<(Vec<ConnectionRow>, i64), StoreError> {
        let like_op = self.sql("LIKE", "ILIKE");
        let statuses_json = serde_json::to_string(statuses)
            .map_err(|e| StoreError::Corrupt(format!("statuses: {e}")))?;
        let filter = format!(
            "owner = $1 AND ($2 = '[]' OR status IN ({})) AND ($3 IS NULL OR name {like_op} $3 ESCAPE '\\')",
            self.json_list(2)
        );
        let search = search.filter(|s| !s.is_empty()).map(like);
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM k8s_contexts WHERE {filter}"
        )))
        .bind(owner)
        .bind(&statuses_json)
        .bind(&search)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let column = match order.0 {
            "name" => "name",
            "status" => "status",
            _ => "created_at",
        };
        let direction = if order.1 { "DESC" } else { "ASC" };
        let (limit, offset) = match page_size {
            Some(size) => (size, page.saturating_mul(size)),
            None => (i64::MAX, 0),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM k8s_contexts WHERE {filter}
             ORDER BY {column} {direction}, id {direction} LIMIT $4 OFFSET $5"
        )))
        .bind(owner)
        .bind(&statuses_json)
        .bind(&search)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(ConnectionRow::of)
            .collect::<Result<_, _>>()?;
        Ok((rows, total))
    }

    /// One of an owner's connections.
    pub async fn connection_row(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<ConnectionRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM k8s_contexts WHERE owner = $1 AND id = $2"
        )))
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ConnectionRow::of).transpose()
    }

    /// Those of an owner's contexts with these ids (one query, any order).
    pub async fn connection_rows_by_id(
        &self,
        owner: &str,
        ids: &[String],
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids =
            serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(format!("ids: {e}")))?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONNECTION_COLUMNS} FROM k8s_contexts WHERE owner = $1 AND id IN ({})",
            self.json_list(2)
        )))
        .bind(owner)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ConnectionRow::of).collect()
    }

    /// How many of an owner's connections are in each status.
    pub async fn connection_counts(&self, owner: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM k8s_contexts WHERE owner = $1 GROUP BY status ORDER BY status",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    /// Sets a connection's status unless it is one of `unless` (a user's choice the
    /// inventory must not overwrite); `version` is kept when `None`. Whether it changed.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_connection_status(
        &self,
        owner: &str,
        id: &str,
        status: &str,
        reason: &str,
        at: &str,
        version: Option<&str>,
        unless: &[&str],
    ) -> Result<bool, StoreError> {
        let unless = serde_json::to_string(unless)
            .map_err(|e| StoreError::Corrupt(format!("statuses: {e}")))?;
        let sql = format!(
            "UPDATE k8s_contexts SET status = $3, status_reason = $4, status_at = $5,
                 server_version = COALESCE($6, server_version)
             WHERE owner = $1 AND id = $2 AND status NOT IN ({})",
            self.json_list(7)
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(id)
            .bind(status)
            .bind(reason)
            .bind(at)
            .bind(version)
            .bind(unless)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every context (of every owner) whose status is not one of `stopped`, as
    /// (owner, id).
    pub async fn contexts_to_watch(
        &self,
        stopped: &[&str],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let stopped = serde_json::to_string(stopped)
            .map_err(|e| StoreError::Corrupt(format!("statuses: {e}")))?;
        let sql = format!(
            "SELECT owner, id FROM k8s_contexts WHERE status NOT IN ({}) ORDER BY owner, id",
            self.json_list(1)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stopped)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("owner")?, r.try_get("id")?)))
            .collect()
    }

    /// Takes or renews the lease on `key` for `replica` until `now_ms + ttl_ms`; false
    /// when another replica holds an unexpired one.
    pub async fn take_lease(
        &self,
        key: &str,
        replica: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO cluster_leases (key, replica, expires) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET replica = excluded.replica, expires = excluded.expires
             WHERE cluster_leases.replica = excluded.replica OR cluster_leases.expires < $4",
        )
        .bind(key)
        .bind(replica)
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives a lease up (another replica may take it at once).
    pub async fn drop_lease(&self, key: &str, replica: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cluster_leases WHERE key = $1 AND replica = $2")
            .bind(key)
            .bind(replica)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Applies a batch of changes to a context's inventory in one transaction; false
    /// (and nothing written) when the context is gone. The context's row is read with a
    /// share lock, so a delete waits for the batch and then removes it too.
    pub async fn apply_inventory(
        &self,
        owner: &str,
        context_id: &str,
        ops: &[InventoryOp],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM k8s_contexts WHERE owner = $1 AND id = $2{}",
            self.sql("", " FOR SHARE")
        )))
        .bind(owner)
        .bind(context_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !exists {
            return Ok(false);
        }
        for op in ops {
            match op {
                InventoryOp::Upsert(r) => {
                    sqlx::query(
                        "INSERT INTO k8s_resources (id, owner, context_id, api_version, kind, model, namespace, name, created, doc, sweep)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                         ON CONFLICT (id) DO UPDATE SET api_version = excluded.api_version, kind = excluded.kind,
                             model = excluded.model, namespace = excluded.namespace, name = excluded.name,
                             created = excluded.created, doc = excluded.doc, sweep = excluded.sweep",
                    )
                    .bind(&r.id)
                    .bind(&r.owner)
                    .bind(&r.context_id)
                    .bind(&r.api_version)
                    .bind(&r.kind)
                    .bind(&r.model)
                    .bind(&r.namespace)
                    .bind(&r.name)
                    .bind(&r.created)
                    .bind(&r.doc)
                    .bind(r.sweep)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM k8s_resource_labels WHERE resource_id = $1")
                        .bind(&r.id)
                        .execute(&mut *tx)
                        .await?;
                    for (key, value) in &r.labels {
                        sqlx::query(
                            "INSERT INTO k8s_resource_labels (resource_id, key, value) VALUES ($1, $2, $3)",
                        )
                        .bind(&r.id)
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                InventoryOp::Delete { id } => {
                    sqlx::query("DELETE FROM k8s_resource_labels WHERE resource_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM k8s_resources WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                InventoryOp::Sweep {
                    owner,
                    context_id,
                    api_version,
                    kind,
                    before,
                } => {
                    let which = "owner = $1 AND context_id = $2 AND api_version = $3 AND kind = $4 AND sweep < $5";
                    for sql in [
                        format!(
                            "DELETE FROM k8s_resource_labels WHERE resource_id IN (SELECT id FROM k8s_resources WHERE {which})"
                        ),
                        format!("DELETE FROM k8s_resources WHERE {which}"),
                    ] {
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(owner)
                            .bind(context_id)
                            .bind(api_version)
                            .bind(kind)
                            .bind(*before)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a context's inventory: all of it, or the kinds not in `keep`
    /// ((api_version, kind) pairs). How many objects went.
    pub async fn drop_inventory(
        &self,
        owner: &str,
        context_id: &str,
        keep: Option<&[(String, String)]>,
    ) -> Result<u64, StoreError> {
        let keep: Vec<String> = keep
            .unwrap_or_default()
            .iter()
            .map(|(a, k)| format!("{a}\n{k}"))
            .collect();
        let keep =
            serde_json::to_string(&keep).map_err(|e| StoreError::Corrupt(format!("kinds: {e}")))?;
        let which = format!(
            "owner = $1 AND context_id = $2 AND (api_version || '\n' || kind) NOT IN ({})",
            self.json_list(3)
        );
        let mut tx = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM k8s_resource_labels WHERE resource_id IN (SELECT id FROM k8s_resources WHERE {which})"
        )))
        .bind(owner)
        .bind(context_id)
        .bind(&keep)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM k8s_resources WHERE {which}"
        )))
        .bind(owner)
        .bind(context_id)
        .bind(&keep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The filter of a query over `k8s_resources r`, with its parameters.
    fn resource_filter(
        &self,
        owner: &str,
        contexts: Option<&[String]>,
        namespaces: &[String],
        binds: &mut Vec<Bind>,
    ) -> Result<String, StoreError> {
        let json = |v: &[String]| {
            serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("filter: {e}")))
        };
        binds.push(Bind::Text(owner.to_string()));
        let mut sql = format!("r.owner = ${}", binds.len());
        if let Some(contexts) = contexts {
            binds.push(Bind::Text(json(contexts)?));
            sql += &format!(" AND r.context_id IN ({})", self.json_list(binds.len()));
        }
        if !namespaces.is_empty() {
            binds.push(Bind::Text(json(namespaces)?));
            let list = self.json_list(binds.len());
            sql += &format!(
                " AND (r.namespace IN ({list}) OR (r.kind = 'Namespace' AND r.name IN ({list})))"
            );
        }
        Ok(sql)
    }

    /// A page of an owner's inventory (resource documents) and how many match.
    pub async fn resources(&self, q: &ResourceQuery) -> Result<(Vec<String>, i64), StoreError> {
        let mut binds = Vec::new();
        let mut filter =
            self.resource_filter(&q.owner, q.contexts.as_deref(), &q.namespaces, &mut binds)?;
        if !q.kinds.is_empty() {
            binds.push(Bind::Text(
                serde_json::to_string(&q.kinds)
                    .map_err(|e| StoreError::Corrupt(format!("kinds: {e}")))?,
            ));
            filter += &format!(" AND r.kind IN ({})", self.json_list(binds.len()));
        }
        if let Some(v) = &q.api_version {
            binds.push(Bind::Text(v.clone()));
            filter += &format!(" AND r.api_version = ${}", binds.len());
        }
        if let Some(s) = q.search.as_deref().filter(|s| !s.is_empty()) {
            binds.push(Bind::Text(like(s)));
            filter += &format!(
                " AND r.name {} ${} ESCAPE '\\'",
                self.sql("LIKE", "ILIKE"),
                binds.len()
            );
        }
        let has = |binds: &mut Vec<Bind>, key: &str, value: Option<&str>| {
            binds.push(Bind::Text(key.to_string()));
            let mut s = format!(
                "EXISTS (SELECT 1 FROM k8s_resource_labels l WHERE l.resource_id = r.id AND l.key = ${}",
                binds.len()
            );
            if let Some(v) = value {
                binds.push(Bind::Text(v.to_string()));
                s += &format!(" AND l.value = ${}", binds.len());
            }
            s + ")"
        };
        if !q.labels_any.is_empty() {
            let any: Vec<String> = q
                .labels_any
                .iter()
                .map(|(k, v)| has(&mut binds, k, Some(v)))
                .collect();
            filter += &format!(" AND ({})", any.join(" OR "));
        }
        for req in &q.selector {
            let term = match req {
                LabelReq::Eq(k, v) => has(&mut binds, k, Some(v)),
                LabelReq::NotEq(k, v) => format!("NOT {}", has(&mut binds, k, Some(v))),
                LabelReq::Exists(k) => has(&mut binds, k, None),
                LabelReq::NotExists(k) => format!("NOT {}", has(&mut binds, k, None)),
            };
            filter += &format!(" AND {term}");
        }
        let total: i64 = bind_all(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM k8s_resources r WHERE {filter}"
            ))),
            &binds,
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let column = match q.order.0 {
            "kind" => "r.kind",
            "namespace" => "r.namespace",
            "api_version" => "r.api_version",
            "created" => "r.created",
            _ => "r.name",
        };
        let direction = if q.order.1 { "DESC" } else { "ASC" };
        let (limit, offset) = match q.page_size {
            Some(size) => (size, q.page.saturating_mul(size)),
            None => (i64::MAX, 0),
        };
        binds.push(Bind::Int(limit));
        binds.push(Bind::Int(offset));
        let sql = format!(
            "SELECT r.doc AS doc FROM k8s_resources r WHERE {filter}
             ORDER BY {column} {direction}, r.name, r.namespace, r.kind, r.id LIMIT ${} OFFSET ${}",
            binds.len() - 1,
            binds.len()
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &binds)
            .fetch_all(&self.pool)
            .await?;
        let docs = rows
            .iter()
            .map(|r| r.try_get("doc"))
            .collect::<Result<Vec<String>, _>>()?;
        Ok((docs, total))
    }

    /// One of an owner's objects.
    /// Which of `ids` an owner's inventory holds now.
    pub async fn resource_ids_held(
        &self,
        owner: &str,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.resources_where_ids(owner, ids, "id")
            .await?
            .iter()
            .map(|r| Ok(r.try_get("id")?))
            .collect()
    }

    /// An owner's objects among `ids`, as (id, doc).
    pub async fn resources_by_id(
        &self,
        owner: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.resources_where_ids(owner, ids, "id, doc")
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("doc")?)))
            .collect()
    }

    /// `columns` of an owner's objects among `ids`, in one query.
    async fn resources_where_ids(
        &self,
        owner: &str,
        ids: &[String],
        columns: &'static str,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(ids)
            .map_err(|e| StoreError::Corrupt(format!("resource ids: {e}")))?;
        let sql = format!(
            "SELECT {columns} FROM k8s_resources WHERE owner = $1 AND id IN ({})",
            self.json_list(2)
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(list)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn resource(&self, owner: &str, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT doc FROM k8s_resources WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("doc")?),
            None => None,
        })
    }

    /// Counts per kind, namespaces and labels of an owner's inventory.
    pub async fn resource_summary(
        &self,
        owner: &str,
        contexts: Option<&[String]>,
        namespaces: &[String],
    ) -> Result<ResourceSummary, StoreError> {
        let mut binds = Vec::new();
        let filter = self.resource_filter(owner, contexts, namespaces, &mut binds)?;
        let kinds = bind_all(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT r.kind AS kind, r.model AS model, COUNT(*) AS n FROM k8s_resources r
                 WHERE {filter} GROUP BY r.kind, r.model ORDER BY r.kind, r.model"
            ))),
            &binds,
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("kind")?, r.try_get("model")?, r.try_get("n")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        let namespaces = bind_all(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT ns FROM (
                     SELECT r.namespace AS ns FROM k8s_resources r WHERE {filter} AND r.namespace <> ''
                     UNION SELECT r.name AS ns FROM k8s_resources r WHERE {filter} AND r.kind = 'Namespace'
                 ) n ORDER BY ns"
            ))),
            &binds,
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get("ns"))
        .collect::<Result<Vec<String>, _>>()?;
        let labels = bind_all(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT l.key AS key, l.value AS value FROM k8s_resource_labels l
                 JOIN k8s_resources r ON r.id = l.resource_id
                 WHERE {filter} ORDER BY l.key, l.value LIMIT 1000"
            ))),
            &binds,
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(ResourceSummary {
            kinds,
            namespaces,
            labels,
        })
    }
}

//! Meshery's connections: every stored Kubernetes context is one (kind `kubernetes`).
//! Its state is the inventory's to set (`registered`, `connected`, `disconnected`), or
//! the user's (`ignored`, `maintenance`, which stop the inventory, and `deleted`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fault::{Internal, OrInternal};
use crate::inventory::{Inventory, STOPPED};
use crate::kubernetes::{Kubernetes, connection_id, context_of_connection};
use crate::models::{
    Connection, ConnectionMetadata, ConnectionStatus, ConnectionUpdate, K8sContext,
};
use crate::session::Session;
use crate::store::{ConnectionRow, Store};

pub const KIND: &str = "kubernetes";
const TYPE: &str = "platform";
const SUB_TYPE: &str = "orchestration";
const SCHEMA_VERSION: &str = "connections.meshery.io/v1beta1";

/// Why a connection operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("no connection {0:?} of yours")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// A listing of connections.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub statuses: Vec<ConnectionStatus>,
    pub kinds: Vec<String>,
    /// Meshery's connection types (`platform` here).
    pub types: Vec<String>,
    pub search: Option<String>,
    /// (column, descending): `name`, `status` or `created_at`.
    pub order: (&'static str, bool),
    pub page: i64,
    pub page_size: Option<i64>,
}

pub struct Connections {
    store: Store,
    kubernetes: Arc<Kubernetes>,
    inventory: Inventory,
}

fn status_of(text: &str) -> ConnectionStatus {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .unwrap_or(ConnectionStatus::Registered)
}

fn text_of(status: ConnectionStatus) -> String {
    status.to_string()
}

/// A connection as the API shows it.
pub fn view(row: &ConnectionRow) -> Result<Connection, Internal> {
    let context: K8sContext =
        crate::kubernetes::decode(&row.doc).or_internal("decoding a context")?;
    let updated = chrono::DateTime::parse_from_rfc3339(&row.status_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or(context.updated_at);
    let auth = serde_json::to_value(context.auth)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Ok(Connection {
        id: connection_id(&row.owner, &row.id),
        description: Some(format!(
            "Kubernetes context {} ({})",
            context.name, context.server
        )),
        url: Some(context.server.clone()),
        name: context.name.clone(),
        type_: TYPE.into(),
        sub_type: SUB_TYPE.into(),
        kind: KIND.into(),
        status: status_of(&row.status),
        metadata: ConnectionMetadata {
            id: context.id.clone(),
            name: context.name,
            server: context.server,
            cluster: context.cluster,
            user: context.user,
            namespace: context.namespace,
            auth,
            kubernetes_server_id: context.id,
            version: Some(row.server_version.clone()).filter(|v| !v.is_empty()),
            reason: Some(row.status_reason.clone()).filter(|r| !r.is_empty()),
        },
        user_id: row.owner.clone(),
        created_at: context.created_at,
        updated_at: updated,
        environments: Vec::new(),
        credential_id: None,
        deleted_at: None,
        schema_version: SCHEMA_VERSION.into(),
    })
}

impl Connections {
    pub fn new(store: Store, kubernetes: Arc<Kubernetes>, inventory: Inventory) -> Connections {
        Connections {
            store,
            kubernetes,
            inventory,
        }
    }

    /// A page of the user's connections, the total, and counts per state.
    pub async fn list(
        &self,
        session: &Session,
        filter: &Filter,
    ) -> Result<(Vec<Connection>, i64, BTreeMap<String, i64>), ConnectionError> {
        let owner = session.owner();
        let counts: BTreeMap<String, i64> = self
            .store
            .connection_counts(&owner)
            .await
            .or_internal("counting connections")?
            .into_iter()
            .collect();
        if (!filter.kinds.is_empty() && !filter.kinds.iter().any(|k| k == KIND))
            || (!filter.types.is_empty() && !filter.types.iter().any(|t| t == TYPE))
        {
            return Ok((Vec::new(), 0, counts));
        }
        let statuses: Vec<String> = filter.statuses.iter().copied().map(text_of).collect();
        let (rows, total) = self
            .store
            .connection_rows(
                &owner,
                &statuses,
                filter.search.as_deref(),
                filter.order,
                filter.page,
                filter.page_size,
            )
            .await
            .or_internal("listing connections")?;
        let connections = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
        Ok((connections, total, counts))
    }

    /// The user's connections of these contexts (all when `None`), by name.
    pub async fn of_contexts(
        &self,
        owner: &str,
        contexts: Option<&[String]>,
    ) -> Result<Vec<Connection>, ConnectionError> {
        let (rows, _) = self
            .store
            .connection_rows(owner, &[], None, ("name", false), 0, None)
            .await
            .or_internal("listing connections")?;
        rows.iter()
            .filter(|r| contexts.is_none_or(|c| c.contains(&r.id)))
            .map(|r| view(r).map_err(ConnectionError::from))
            .collect()
    }

    async fn row(&self, session: &Session, id: &str) -> Result<ConnectionRow, ConnectionError> {
        let owner = session.owner();
        let context = context_of_connection(&owner, id)
            .ok_or_else(|| ConnectionError::NotFound(id.to_string()))?;
        self.store
            .connection_row(&owner, &context)
            .await
            .or_internal("reading a connection")?
            .ok_or_else(|| ConnectionError::NotFound(id.to_string()))
    }

    pub async fn get(&self, session: &Session, id: &str) -> Result<Connection, ConnectionError> {
        Ok(view(&self.row(session, id).await?)?)
    }

    /// Sets the state a user may choose (see the module's comment).
    pub async fn update(
        &self,
        session: &Session,
        id: &str,
        update: &ConnectionUpdate,
    ) -> Result<Connection, ConnectionError> {
        let row = self.row(session, id).await?;
        let current = view(&row)?;
        if update.credential_id.is_some() || !update.credential_secret.is_empty() {
            return Err(ConnectionError::Invalid(
                "a Kubernetes connection's credentials come from its kubeconfig: upload it again (POST /api/system/kubernetes) instead of giving credentialId or credentialSecret".into(),
            ));
        }
        for (field, given, own) in [
            ("id", &update.id, current.id.as_str()),
            ("name", &update.name, current.name.as_str()),
            ("kind", &update.kind, KIND),
            ("type", &update.type_, TYPE),
            ("subType", &update.sub_type, SUB_TYPE),
        ] {
            if let Some(given) = given
                && given != own
            {
                return Err(ConnectionError::Invalid(format!(
                    "{field} {given:?} cannot be changed (the connection's is {own:?}); only status can"
                )));
            }
        }
        let Some(wanted) = update.status else {
            // Nothing a user sets changed.
            return Ok(current);
        };
        let owner = session.owner();
        let at = crate::store::stamp(chrono::Utc::now());
        let status = match wanted {
            ConnectionStatus::Deleted => {
                self.remove(session, &row.id).await?;
                let mut last = current;
                last.status = ConnectionStatus::Deleted;
                return Ok(last);
            }
            ConnectionStatus::Ignored => ConnectionStatus::Ignored,
            ConnectionStatus::Maintenance => ConnectionStatus::Maintenance,
            // Used again: registered until the inventory reaches the cluster.
            ConnectionStatus::Connected => ConnectionStatus::Registered,
            // A state only the server sets (the whole connection sent back, perhaps from
            // before the server changed it) changes nothing.
            _ => return Ok(current),
        };
        if wanted == ConnectionStatus::Connected && !STOPPED.contains(&row.status.as_str()) {
            // Already in use: its live state stays.
            return Ok(current);
        }
        self.store
            .set_connection_status(&owner, &row.id, &text_of(status), "", &at, None, &[])
            .await
            .or_internal("setting a connection's state")?;
        self.inventory.context_changed(&owner, &row.id).await;
        self.get(session, id).await
    }

    /// Deletes a connection: its context, credentials and inventory.
    pub async fn delete(&self, session: &Session, id: &str) -> Result<(), ConnectionError> {
        let row = self.row(session, id).await?;
        self.remove(session, &row.id).await
    }

    /// Deletes a context and everything the inventory holds of it.
    pub async fn remove(&self, session: &Session, context_id: &str) -> Result<(), ConnectionError> {
        self.kubernetes
            .delete(session, context_id)
            .await
            .map_err(|e| match e {
                crate::kubernetes::KubeError::NotFound(id) => ConnectionError::NotFound(id),
                other => ConnectionError::Internal(Internal::new("deleting a context", other)),
            })?;
        self.inventory.forget(&session.owner(), context_id).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_id_names_its_context_for_its_owner_only() {
        for ctx in ["0123456789abcdef", "ffffffffffffffff", "0000000000000000"] {
            let id = connection_id("alice", ctx);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
            assert_eq!(context_of_connection("alice", &id).as_deref(), Some(ctx));
            assert_eq!(context_of_connection("bob", &id), None);
        }
        assert_eq!(context_of_connection("alice", "not-a-uuid"), None);
        assert_ne!(
            connection_id("alice", "0123456789abcdef"),
            connection_id("bob", "0123456789abcdef")
        );
    }
}

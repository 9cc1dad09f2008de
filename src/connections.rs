//! Meshery's connections: every stored Kubernetes context is one (kind `kubernetes`).
//! Its state is the inventory's to set (`registered`, `connected`, `disconnected`), or
//! the user's (`ignored`, `maintenance`, which stop the inventory, and `deleted`).
//! Connections of other kinds (Prometheus, Grafana, ...: "integrations") are stored as
//! registered, with their metadata and a credential of the user's; their state is the
//! user's. Listings merge both, in one order.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::credentials::{Credentials, NewCredential};
use crate::fault::{Internal, OrInternal};
use crate::inventory::{Inventory, STOPPED};
use crate::kubernetes::{Kubernetes, connection_id, context_of_connection};
use crate::models::{Connection, ConnectionStatus, ConnectionUpdate, Credential, K8sContext};
use crate::session::Session;
use crate::store::{ConnectionRow, IntegrationQuery, IntegrationRow, Store};
use serde_json::{Map, Value};

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
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Credential(#[from] crate::credentials::CredentialError),
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
    /// Meshery's connection sub-types (`orchestrator` for Kubernetes).
    pub sub_types: Vec<String>,
    pub search: Option<String>,
    /// (column, descending): `name`, `status` or `created_at`.
    pub order: (&'static str, bool),
    pub page: i64,
    pub page_size: Option<i64>,
}

impl Filter {
    /// Narrows the listing by Meshery's `filter` (`<key> <value>`, as its connection
    /// persister reads it): `deleted_at Deleted` keeps only deleted connections, any other
    /// `deleted_at` value leaves them out; `type <t>` and `sub_type <t>` keep that one.
    /// Answers whether anything can still match; another key is refused, so a misspelt
    /// filter is not silently ignored as Meshery does.
    pub fn narrow_by(&mut self, filter: &str) -> Result<bool, ConnectionError> {
        fn keep<T: PartialEq>(list: &mut Vec<T>, value: T) -> bool {
            if list.is_empty() {
                list.push(value);
            } else {
                list.retain(|v| *v == value);
            }
            !list.is_empty()
        }
        // The blanks the spec's pattern (ECMAScript `\s`) allows around it.
        let filter = filter.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if filter.is_empty() {
            return Ok(true);
        }
        let (key, value) = filter.split_once(' ').unwrap_or((filter, ""));
        let value = value.trim();
        match key {
            "deleted_at" if value == "Deleted" => {
                Ok(keep(&mut self.statuses, ConnectionStatus::Deleted))
            }
            "deleted_at" => {
                if self.statuses.is_empty() {
                    self.statuses = ALL_STATUSES.to_vec();
                }
                self.statuses.retain(|s| *s != ConnectionStatus::Deleted);
                Ok(!self.statuses.is_empty())
            }
            "type" => Ok(keep(&mut self.types, value.to_string())),
            "sub_type" => Ok(keep(&mut self.sub_types, value.to_string())),
            other => Err(ConnectionError::Invalid(format!(
                "filter: no key {other:?}; Meshery's are deleted_at, type and sub_type (`<key> <value>`)"
            ))),
        }
    }
}

const ALL_STATUSES: [ConnectionStatus; 8] = [
    ConnectionStatus::Discovered,
    ConnectionStatus::Registered,
    ConnectionStatus::Connected,
    ConnectionStatus::Ignored,
    ConnectionStatus::Maintenance,
    ConnectionStatus::Disconnected,
    ConnectionStatus::Deleted,
    ConnectionStatus::NotFound,
];

pub struct Connections {
    store: Store,
    kubernetes: Arc<Kubernetes>,
    inventory: Inventory,
    credentials: Arc<Credentials>,
}

fn status_of(text: &str) -> ConnectionStatus {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .unwrap_or(ConnectionStatus::Registered)
}

fn text_of(status: ConnectionStatus) -> String {
    status.to_string()
}

/// A Kubernetes connection's metadata: its context, without credentials.
fn k8s_metadata(
    context: &K8sContext,
    auth: String,
    version: &str,
    reason: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("id", &context.id),
        ("name", &context.name),
        ("server", &context.server),
        ("cluster", &context.cluster),
        ("user", &context.user),
        ("namespace", &context.namespace),
        ("auth", &auth),
        ("kubernetes_server_id", &context.id),
        ("version", &version.to_string()),
        ("reason", &reason.to_string()),
    ] {
        if !(v.is_empty() && matches!(k, "version" | "reason")) {
            m.insert(k.into(), Value::String(v.clone()));
        }
    }
    m
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
        metadata: k8s_metadata(&context, auth, &row.server_version, &row.status_reason),
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
    pub fn new(
        store: Store,
        kubernetes: Arc<Kubernetes>,
        inventory: Inventory,
        credentials: Arc<Credentials>,
    ) -> Connections {
        Connections {
            store,
            kubernetes,
            inventory,
            credentials,
        }
    }

    /// A page of the user's connections (contexts and integrations merged in the
    /// filter's order), the total, and counts per state.
    pub async fn list(
        &self,
        session: &Session,
        filter: &Filter,
    ) -> Result<(Vec<Connection>, i64, BTreeMap<String, i64>), ConnectionError> {
        let owner = session.owner();
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for (status, n) in self
            .store
            .connection_counts(&owner)
            .await
            .or_internal("counting connections")?
            .into_iter()
            .chain(
                self.store
                    .integration_counts(&owner)
                    .await
                    .or_internal("counting connections")?,
            )
        {
            *counts.entry(status).or_default() += n;
        }
        let kinds: Vec<String> = filter
            .kinds
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let statuses: Vec<String> = filter.statuses.iter().copied().map(text_of).collect();
        // The first `upto` of each source hold the first `upto` of the merge.
        let upto = filter
            .page_size
            .map(|size| filter.page.saturating_add(1).saturating_mul(size));
        let mut merged = Vec::new();
        let mut total = 0;
        if (kinds.is_empty() || kinds.iter().any(|k| k == KIND))
            && (filter.types.is_empty() || filter.types.iter().any(|t| t == TYPE))
            && (filter.sub_types.is_empty() || filter.sub_types.iter().any(|t| t == SUB_TYPE))
        {
            let (rows, n) = self
                .store
                .connection_rows(
                    &owner,
                    &statuses,
                    filter.search.as_deref(),
                    filter.order,
                    0,
                    upto,
                )
                .await
                .or_internal("listing connections")?;
            total += n;
            for r in &rows {
                merged.push(view(r)?);
            }
        }
        let query = IntegrationQuery {
            statuses: &statuses,
            kinds: &kinds,
            types: &filter.types,
            sub_types: &filter.sub_types,
            search: filter.search.as_deref(),
            order: filter.order,
            limit: upto.unwrap_or(i64::MAX),
        };
        let (rows, n) = self
            .store
            .integrations(&owner, &query)
            .await
            .or_internal("listing connections")?;
        total += n;
        for r in &rows {
            merged.push(integration_view(r)?);
        }
        let (column, descending) = filter.order;
        merged.sort_by(|a, b| {
            let order = match column {
                "name" => a.name.cmp(&b.name),
                "status" => text_of(a.status).cmp(&text_of(b.status)),
                _ => a.created_at.cmp(&b.created_at),
            };
            if descending { order.reverse() } else { order }
        });
        let page = match filter.page_size {
            Some(size) => merged
                .into_iter()
                .skip(usize::try_from(filter.page.saturating_mul(size)).unwrap_or(usize::MAX))
                .take(usize::try_from(size).unwrap_or(usize::MAX))
                .collect(),
            None => merged,
        };
        let mut page = page;
        self.with_environments(&owner, &mut page, None).await?;
        Ok((page, total, counts))
    }

    /// Fills each of `owner`'s connections' `environments` (Meshery's connection shape),
    /// only those of organization `org` when given.
    pub async fn with_environments(
        &self,
        owner: &str,
        connections: &mut [Connection],
        org: Option<&str>,
    ) -> Result<(), Internal> {
        let ids: Vec<String> = connections.iter().map(|c| c.id.clone()).collect();
        let found = self
            .store
            .environments_of_connections(owner, &ids, org)
            .await
            .or_internal("reading connections' environments")?;
        for (id, row) in &found {
            if let Some(c) = connections.iter_mut().find(|c| &c.id == id) {
                c.environments
                    .push(crate::tenancy::connection_environment(row)?);
            }
        }
        Ok(())
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
        self.get_of(&session.owner(), id).await
    }

    /// A connection of `owner` (an environment shows its members' connections to every
    /// member of its organization: never their credentials, which no view carries).
    pub async fn get_of(&self, owner: &str, id: &str) -> Result<Connection, ConnectionError> {
        let mut one = [self.bare(owner, id).await?];
        self.with_environments(owner, &mut one, None).await?;
        let [c] = one;
        Ok(c)
    }

    /// A connection of `owner` without its environments.
    pub async fn bare(&self, owner: &str, id: &str) -> Result<Connection, ConnectionError> {
        let Some(context) = context_of_connection(owner, id) else {
            let key = registration_id(id).map_err(|_| ConnectionError::NotFound(id.to_string()))?;
            let row = self
                .store
                .integration(owner, &key)
                .await
                .or_internal("reading a connection")?
                .ok_or_else(|| ConnectionError::NotFound(id.to_string()))?;
            return Ok(integration_view(&row)?);
        };
        let row = self
            .store
            .connection_row(owner, &context)
            .await
            .or_internal("reading a connection")?
            .ok_or_else(|| ConnectionError::NotFound(id.to_string()))?;
        Ok(view(&row)?)
    }

    /// Those of `owner`'s connections with these ids, with their environments of
    /// organization `org` (two or three queries, however many): ids of none drop out.
    pub async fn bare_many(
        &self,
        owner: &str,
        ids: &[String],
        org: &str,
    ) -> Result<Vec<Connection>, ConnectionError> {
        let (mut contexts, mut integrations) = (Vec::new(), Vec::new());
        for id in ids {
            match context_of_connection(owner, id) {
                Some(context) => contexts.push(context),
                None => {
                    if let Ok(key) = registration_id(id) {
                        integrations.push(key);
                    }
                }
            }
        }
        let mut found = Vec::new();
        for row in self
            .store
            .connection_rows_by_id(owner, &contexts)
            .await
            .or_internal("reading connections")?
        {
            found.push(view(&row)?);
        }
        for row in self
            .store
            .integrations_by_id(owner, &integrations)
            .await
            .or_internal("reading connections")?
        {
            found.push(integration_view(&row)?);
        }
        self.with_environments(owner, &mut found, Some(org)).await?;
        Ok(found)
    }

    /// Sets the state a user may choose (see the module's comment).
    pub async fn update(
        &self,
        session: &Session,
        id: &str,
        update: &ConnectionUpdate,
    ) -> Result<Connection, ConnectionError> {
        if context_of_connection(&session.owner(), id).is_none() {
            return self.update_integration(session, id, update).await;
        }
        self.update_context(session, id, update).await
    }

    /// PUT on a Kubernetes connection: the state a user sets.
    async fn update_context(
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
        if context_of_connection(&session.owner(), id).is_none() {
            let row = self.integration(session, id).await?;
            self.store
                .delete_integration(&row.owner, &row.id)
                .await
                .or_internal("deleting a connection")?;
            self.store
                .forget_connection(&row.owner, id)
                .await
                .or_internal("ending a connection's environment memberships")?;
            return Ok(());
        }
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
        // A context uploaded again gets the same connection id: it starts in no environment.
        let owner = session.owner();
        self.store
            .forget_connection(&owner, &connection_id(&owner, context_id))
            .await
            .or_internal("ending a connection's environment memberships")?;
        Ok(())
    }
}

/// A connection of another kind than Kubernetes as the API shows it.
pub fn integration_view(row: &IntegrationRow) -> Result<Connection, Internal> {
    let metadata: Map<String, Value> =
        serde_json::from_str(&row.doc).or_internal("decoding a connection's metadata")?;
    let url = metadata
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_string);
    let time = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default()
    };
    Ok(Connection {
        id: row.id.clone(),
        description: None,
        url,
        name: row.name.clone(),
        type_: row.r#type.clone(),
        sub_type: row.sub_type.clone(),
        kind: row.kind.clone(),
        status: status_of(&row.status),
        metadata,
        user_id: row.owner.clone(),
        created_at: time(&row.created_at),
        updated_at: time(&row.updated_at),
        environments: Vec::new(),
        credential_id: row.credential_id.clone(),
        deleted_at: None,
        schema_version: SCHEMA_VERSION.into(),
    })
}

/// A step of Meshery's registration flow (past `initialize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Register,
    Connect,
    Ignore,
    Disconnect,
    Delete,
}

/// What a registration step or a new connection carries.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// The registration id, also the connection's (a UUID).
    pub id: String,
    pub kind: String,
    pub name: Option<String>,
    pub r#type: Option<String>,
    pub sub_type: Option<String>,
    pub metadata: Map<String, Value>,
    /// A new credential: `name` names it, the rest is the secret.
    pub credential_secret: Map<String, Value>,
    pub credential_id: Option<String>,
}

/// A registration step checked and ready to store: what to reach and with which
/// secret, if it must be checked first.
#[derive(Debug)]
pub struct Prepared {
    row: IntegrationRow,
    /// The registration's own credential to store (its id is the connection's).
    own_credential: Option<NewCredential>,
    /// Delete instead of storing.
    delete: bool,
    /// Whether the connection should be reached before it is stored.
    pub check: bool,
    pub kind: String,
    pub metadata: Map<String, Value>,
    /// The secret the connection would use.
    pub secret: Map<String, Value>,
    /// A Kubernetes connection's new state instead (it is changed as PUT does).
    kubernetes: Option<ConnectionStatus>,
}

/// A registration id: a UUID, in its canonical form.
pub fn registration_id(id: &str) -> Result<String, ConnectionError> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| ConnectionError::Invalid(format!("registration id {id:?} is not a UUID")))
}

impl Connections {
    async fn integration(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<IntegrationRow, ConnectionError> {
        let key = registration_id(id).map_err(|_| ConnectionError::NotFound(id.to_string()))?;
        self.store
            .integration(&session.owner(), &key)
            .await
            .or_internal("reading a connection")?
            .ok_or_else(|| ConnectionError::NotFound(id.to_string()))
    }

    /// The secret of a credential of `owner` that a connection names.
    async fn credential_secret(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Map<String, Value>, ConnectionError> {
        self.credentials
            .secret(owner, id)
            .await
            .map_err(|e| match e {
                crate::credentials::CredentialError::NotFound(id) => {
                    ConnectionError::Invalid(format!("credentialId {id:?}: no credential of yours"))
                }
                other => other.into(),
            })
    }

    /// Checks a registration step (or a new connection, `step: None` with its state) and
    /// works out what storing it means; nothing is stored yet.
    pub async fn prepare(
        &self,
        session: &Session,
        step: Option<Step>,
        status: ConnectionStatus,
        r: Registration,
    ) -> Result<Prepared, ConnectionError> {
        let owner = session.owner();
        let id = registration_id(&r.id)?;
        if context_of_connection(&owner, &id).is_some() {
            let wanted = match step {
                Some(Step::Connect) => Some(ConnectionStatus::Connected),
                Some(Step::Ignore) => Some(ConnectionStatus::Ignored),
                Some(Step::Delete) => Some(ConnectionStatus::Deleted),
                Some(Step::Register) => None,
                Some(Step::Disconnect) | None => {
                    return Err(ConnectionError::Invalid(
                        "a Kubernetes connection is disconnected by its cluster: set it `ignored` or `maintenance` instead".into(),
                    ));
                }
            };
            return Ok(Prepared {
                row: IntegrationRow {
                    id,
                    ..IntegrationRow::default()
                },
                own_credential: None,
                delete: false,
                check: false,
                kind: KIND.into(),
                metadata: Map::new(),
                secret: Map::new(),
                kubernetes: Some(wanted.unwrap_or(ConnectionStatus::Registered)),
            });
        }
        let existing = self
            .store
            .integration(&owner, &id)
            .await
            .or_internal("reading a connection")?;
        let kind = match (r.kind.trim(), &existing) {
            ("", Some(e)) => e.kind.clone(),
            ("", None) => {
                return Err(ConnectionError::Invalid(
                    "`kind` is required (prometheus, grafana, ...)".into(),
                ));
            }
            (k, _) => k.to_ascii_lowercase(),
        };
        if kind == KIND {
            return Err(ConnectionError::Invalid(
                "Kubernetes connections come from kubeconfigs: upload one (POST /api/system/kubernetes, or `mesheryctl system config`)".into(),
            ));
        }
        if let Some(e) = &existing
            && e.kind != kind
        {
            return Err(ConnectionError::Invalid(format!(
                "connection {id} is of kind {:?}, not {kind:?}",
                e.kind
            )));
        }
        let needs_existing = |what: &str| {
            ConnectionError::NotFound(format!("{id} (nothing to {what}: register it first)"))
        };
        let (status, check, delete) = match step {
            None => {
                if matches!(
                    status,
                    ConnectionStatus::Deleted | ConnectionStatus::NotFound
                ) {
                    return Err(ConnectionError::Invalid(format!(
                        "a new connection cannot be `{status}`"
                    )));
                }
                (status, false, false)
            }
            Some(Step::Register) => {
                if existing
                    .as_ref()
                    .is_some_and(|e| e.status == text_of(ConnectionStatus::Connected))
                {
                    return Err(ConnectionError::Conflict(format!(
                        "connection {id} is already connected"
                    )));
                }
                (ConnectionStatus::Registered, true, false)
            }
            Some(Step::Connect) => (ConnectionStatus::Connected, existing.is_none(), false),
            Some(Step::Ignore) => {
                existing.as_ref().ok_or_else(|| needs_existing("ignore"))?;
                (ConnectionStatus::Ignored, false, false)
            }
            Some(Step::Disconnect) => {
                existing
                    .as_ref()
                    .ok_or_else(|| needs_existing("disconnect"))?;
                (ConnectionStatus::Disconnected, false, false)
            }
            Some(Step::Delete) => {
                existing.as_ref().ok_or_else(|| needs_existing("delete"))?;
                (ConnectionStatus::Deleted, false, true)
            }
        };
        let mut secret_fields = r.credential_secret.clone();
        let credential_name = secret_fields
            .remove("name")
            .and_then(|v| v.as_str().map(str::to_string));
        let metadata = if r.metadata.is_empty() {
            existing
                .as_ref()
                .map(|e| serde_json::from_str(&e.doc))
                .transpose()
                .or_internal("decoding a connection's metadata")?
                .unwrap_or_default()
        } else {
            r.metadata.clone()
        };
        let name = r
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| {
                metadata
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| existing.as_ref().map(|e| e.name.clone()))
            .unwrap_or_else(|| kind.clone());
        let (credential_id, own_credential, secret) =
            if let Some(cid) = r.credential_id.as_deref().filter(|c| !c.trim().is_empty()) {
                let cid = crate::credentials::parse_id(cid)?;
                let secret = self.credential_secret(&owner, &cid).await?;
                (Some(cid), None, secret)
            } else if !secret_fields.is_empty() {
                let own = NewCredential {
                    id: Some(id.clone()),
                    name: credential_name.unwrap_or_else(|| name.clone()),
                    r#type: kind.clone(),
                    secret: secret_fields.clone(),
                };
                (Some(id.clone()), Some(own), secret_fields)
            } else {
                let linked = existing.as_ref().and_then(|e| e.credential_id.clone());
                let secret = match &linked {
                    Some(cid) => self.credential_secret(&owner, cid).await?,
                    None => Map::new(),
                };
                (linked, None, secret)
            };
        let now = crate::store::stamp(chrono::Utc::now());
        let text = |v: &Option<String>, old: Option<&String>| {
            v.clone()
                .filter(|t| !t.is_empty())
                .or_else(|| old.cloned())
                .unwrap_or_default()
        };
        let row = IntegrationRow {
            owner: owner.clone(),
            id: id.clone(),
            kind: kind.clone(),
            r#type: text(&r.r#type, existing.as_ref().map(|e| &e.r#type)),
            sub_type: text(&r.sub_type, existing.as_ref().map(|e| &e.sub_type)),
            name,
            status: text_of(status),
            doc: serde_json::to_string(&metadata)
                .or_internal("encoding a connection's metadata")?,
            credential_id,
            created_at: existing
                .as_ref()
                .map_or_else(|| now.clone(), |e| e.created_at.clone()),
            updated_at: now,
        };
        Ok(Prepared {
            row,
            own_credential,
            delete,
            check,
            kind,
            metadata,
            secret,
            kubernetes: None,
        })
    }

    /// Stores what [`Connections::prepare`] worked out: the connection and its
    /// credential (secret masked).
    pub async fn commit(
        &self,
        session: &Session,
        p: Prepared,
    ) -> Result<(Connection, Option<Credential>), ConnectionError> {
        if let Some(status) = p.kubernetes {
            let update = ConnectionUpdate {
                status: (status != ConnectionStatus::Registered).then_some(status),
                ..ConnectionUpdate::default()
            };
            return Ok((
                self.update_context(session, &p.row.id, &update).await?,
                None,
            ));
        }
        if p.delete {
            let mut last = integration_view(&p.row)?;
            last.status = ConnectionStatus::Deleted;
            self.store
                .delete_integration(&p.row.owner, &p.row.id)
                .await
                .or_internal("deleting a connection")?;
            return Ok((last, None));
        }
        let credential = match p.own_credential {
            Some(own) => Some(self.put_own_credential(session, own).await?),
            None => None,
        };
        self.store
            .put_integration(&p.row)
            .await
            .or_internal("storing a connection")?;
        let credential = match (credential, &p.row.credential_id) {
            (Some(c), _) => Some(c),
            (None, Some(cid)) => {
                let mut c = self.credentials.get(session, cid).await?;
                c.secret = c
                    .secret
                    .keys()
                    .map(|k| (k.clone(), Value::String(crate::credentials::MASK.into())))
                    .collect();
                Some(c)
            }
            (None, None) => None,
        };
        Ok((integration_view(&p.row)?, credential))
    }

    /// Stores a registration's own credential, or changes it when a step repeats.
    async fn put_own_credential(
        &self,
        session: &Session,
        own: NewCredential,
    ) -> Result<Credential, ConnectionError> {
        let id = own.id.clone().unwrap_or_default();
        match self.credentials.create(session, own.clone()).await {
            Err(crate::credentials::CredentialError::Exists(_)) => Ok(self
                .credentials
                .update(session, &id, &own.name, &own.r#type, &own.secret)
                .await?),
            other => Ok(other?),
        }
    }

    /// Cancels a registration: a connection it left `registered` is removed with the
    /// credential it made. Whether anything was.
    pub async fn cancel(&self, session: &Session, id: &str) -> Result<bool, ConnectionError> {
        let owner = session.owner();
        let Ok(key) = registration_id(id) else {
            return Ok(false);
        };
        if context_of_connection(&owner, &key).is_some() {
            return Ok(false);
        }
        let Some(row) = self
            .store
            .integration(&owner, &key)
            .await
            .or_internal("reading a connection")?
        else {
            return Ok(false);
        };
        if row.status != text_of(ConnectionStatus::Registered) {
            return Ok(false);
        }
        self.store
            .delete_integration(&owner, &key)
            .await
            .or_internal("deleting a connection")?;
        if row.credential_id.as_deref() == Some(key.as_str()) {
            self.credentials.forget(&owner, &key).await?;
        }
        Ok(true)
    }

    /// PUT on a connection of another kind: its state, name, metadata, credential.
    async fn update_integration(
        &self,
        session: &Session,
        id: &str,
        update: &ConnectionUpdate,
    ) -> Result<Connection, ConnectionError> {
        let row = self.integration(session, id).await?;
        for (field, given, own) in [
            ("id", &update.id, row.id.as_str()),
            ("type", &update.type_, row.r#type.as_str()),
            ("subType", &update.sub_type, row.sub_type.as_str()),
        ] {
            if let Some(given) = given
                && given != own
            {
                return Err(ConnectionError::Invalid(format!(
                    "{field} {given:?} cannot be changed (the connection's is {own:?})"
                )));
            }
        }
        if let Some(kind) = &update.kind
            && !kind.eq_ignore_ascii_case(&row.kind)
        {
            return Err(ConnectionError::Invalid(format!(
                "kind {kind:?} cannot be changed (the connection's is {:?})",
                row.kind
            )));
        }
        let status = match update.status {
            Some(ConnectionStatus::NotFound) => {
                return Err(ConnectionError::Invalid(
                    "`not found` is not a state to set".into(),
                ));
            }
            Some(s) => s,
            None => status_of(&row.status),
        };
        let step = (status == ConnectionStatus::Deleted).then_some(Step::Delete);
        let registration = Registration {
            id: row.id.clone(),
            kind: row.kind.clone(),
            name: update.name.clone(),
            r#type: None,
            sub_type: None,
            metadata: update.metadata.clone(),
            credential_secret: update.credential_secret.clone(),
            credential_id: update.credential_id.clone(),
        };
        let prepared = self.prepare(session, step, status, registration).await?;
        Ok(self.commit(session, prepared).await?.0)
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

    #[test]
    fn meshery_s_filter_narrows_what_is_asked_and_refuses_other_keys() {
        let narrowed = |statuses: Vec<ConnectionStatus>, text: &str| {
            let mut f = Filter {
                statuses,
                ..Default::default()
            };
            f.narrow_by(text).map(|any| (any, f))
        };
        let (any, f) = narrowed(vec![], "deleted_at Deleted").unwrap();
        assert!(any);
        assert_eq!(f.statuses, [ConnectionStatus::Deleted]);
        let (any, _) = narrowed(vec![ConnectionStatus::Connected], "deleted_at Deleted").unwrap();
        assert!(!any, "connected and deleted at once: nothing");
        let (_, f) = narrowed(vec![], "deleted_at Active").unwrap();
        assert_eq!(f.statuses.len(), ALL_STATUSES.len() - 1);
        assert!(!f.statuses.contains(&ConnectionStatus::Deleted));
        let (_, f) = narrowed(vec![], " sub_type  metrics ").unwrap();
        assert_eq!(f.sub_types, ["metrics"]);
        // Blanks as the spec's pattern reads them (ECMAScript `\s` includes U+FEFF).
        let (_, f) = narrowed(vec![], "\u{feff}type platform").unwrap();
        assert_eq!(f.types, ["platform"]);
        let (any, f) = narrowed(vec![], "").unwrap();
        assert!(any && f.statuses.is_empty() && f.types.is_empty());
        let mut typed = Filter {
            types: vec!["platform".into()],
            ..Default::default()
        };
        assert!(!typed.narrow_by("type telemetry").unwrap());
        assert!(matches!(
            narrowed(vec![], "owner me"),
            Err(ConnectionError::Invalid(m)) if m.contains("deleted_at, type and sub_type")
        ));
    }
}

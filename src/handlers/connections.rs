use std::time::Duration;

use serde_json::{Map, Value};

use crate::connections::{Filter, Registration, Step};
use crate::error::{ApiError, codes};
use crate::generated::rest::*;
use crate::server::Api;
use crate::session::Session;

/// `order` of connections: `<field> [asc|desc]`; newest first by default.
fn order(text: Option<&str>) -> Result<(&'static str, bool), ApiError> {
    crate::store::parse_order(
        text,
        &[
            ("created_at", "created_at"),
            ("updated_at", "created_at"),
            ("name", "name"),
            ("status", "status"),
        ],
        "created_at",
        |column| column == "created_at",
    )
    .map_err(ApiError::bad_request)
}

impl crate::app::App {
    /// Updates a connection and records it as an event: REST's update, and the operator
    /// switch of both APIs (`gql_clusters::change_operator`).
    pub(crate) async fn update_connection_noted(
        &self,
        session: &Session,
        id: &str,
        update: &crate::models::ConnectionUpdate,
    ) -> Result<crate::models::Connection, ApiError> {
        let connection = self.connections.update(session, id, update).await?;
        let event = crate::events::NewEvent::new(
            "connection",
            "update",
            crate::models::EventSeverity::Informational,
            format!(
                "Connection {} is now {}",
                connection.name, connection.status
            ),
        )
        .acted_upon(connection.id.clone());
        self.events.note(session, event).await;
        Ok(connection)
    }
}

impl ConnectionsApi for Api {
    async fn list_connections(
        &self,
        r: ListConnectionsRequest<Session>,
    ) -> Result<ListConnectionsResponse, ApiError> {
        let listing = crate::store::listing(
            r.page,
            r.pagesize.as_deref().or(r.page_size.as_deref()),
            None,
            None,
            None,
            None,
        )?;
        let mut filter = Filter {
            statuses: r.status.clone(),
            kinds: r.kind.clone(),
            types: r.r#type.clone(),
            sub_types: Vec::new(),
            search: r.search.clone().or(r.name.clone()),
            order: order(r.order.as_deref())?,
            page: listing.page,
            page_size: listing.page_size,
        };
        let any = filter.narrow_by(r.filter.as_deref().unwrap_or_default())?;
        // Connections are their owner's, whatever organization the UI is in; it must
        // be one of the user's all the same.
        if let Some(org) = r.org_id.as_deref() {
            self.in_organization(&r.session, org).await?;
        }
        let (connections, total, counts) = if any {
            self.connections.list(&r.session, &filter).await?
        } else {
            (Vec::new(), 0, Default::default())
        };
        let mut page: crate::models::ConnectionPage = listing.page_of(connections, total);
        page.status_summary = counts;
        Ok(ListConnectionsResponse::Ok(page))
    }

    async fn get_connection(
        &self,
        r: GetConnectionRequest<Session>,
    ) -> Result<GetConnectionResponse, ApiError> {
        Ok(GetConnectionResponse::Ok(
            self.connections.get(&r.session, &r.connection_id).await?,
        ))
    }

    async fn update_connection(
        &self,
        r: UpdateConnectionRequest<Session>,
    ) -> Result<UpdateConnectionResponse, ApiError> {
        Ok(UpdateConnectionResponse::Ok(
            self.update_connection_noted(&r.session, &r.connection_id, &r.body)
                .await?,
        ))
    }

    async fn delete_connection(
        &self,
        r: DeleteConnectionRequest<Session>,
    ) -> Result<DeleteConnectionResponse, ApiError> {
        let connection = self.connections.get(&r.session, &r.connection_id).await?;
        self.connections
            .delete(&r.session, &r.connection_id)
            .await?;
        let event = crate::events::NewEvent::new(
            "connection",
            "delete",
            crate::models::EventSeverity::Informational,
            format!("Connection {} deleted", connection.name),
        )
        .acted_upon(connection.id);
        self.events.note(&r.session, event).await;
        Ok(DeleteConnectionResponse::NoContent)
    }

    async fn create_connection(
        &self,
        r: CreateConnectionRequest<Session>,
    ) -> Result<CreateConnectionResponse, ApiError> {
        let b = r.body;
        let registration = Registration {
            id: text(b.id.as_deref()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            kind: b.kind.to_string(),
            name: Some(b.name.to_string()),
            r#type: Some(b.type_.to_string()),
            sub_type: Some(b.sub_type.to_string()),
            metadata: b.metadata,
            credential_secret: b.credential_secret,
            credential_id: text(b.credential_id.as_deref()),
        };
        let prepared = self
            .connections
            .prepare(&r.session, None, b.status, registration)
            .await?;
        let (connection, _) = self.connections.commit(&r.session, prepared).await?;
        self.note_connection(&r.session, &connection, "create")
            .await;
        Ok(CreateConnectionResponse::Created(connection))
    }

    async fn process_connection_registration(
        &self,
        r: ProcessConnectionRegistrationRequest<Session>,
    ) -> Result<ProcessConnectionRegistrationResponse, ApiError> {
        use crate::models::ConnectionRegistrationStatus as S;
        let b = r.body;
        let kind = text(b.kind.as_deref()).unwrap_or_default();
        let step = match b.status {
            S::Initialize => {
                return Ok(ProcessConnectionRegistrationResponse::Ok(
                    self.initialize_registration(kind.trim())?,
                ));
            }
            S::Register => Step::Register,
            S::Connect => Step::Connect,
            S::Ignore => Step::Ignore,
            S::Disconnect => Step::Disconnect,
            S::Delete => Step::Delete,
        };
        let registration = Registration {
            id: text(b.id.as_deref()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            kind,
            name: text(b.name.as_deref()),
            r#type: text(b.type_.as_deref()),
            sub_type: text(b.sub_type.as_deref()),
            metadata: b.metadata,
            credential_secret: b.credential_secret,
            credential_id: text(b.credential_id.as_deref()),
        };
        let prepared = self
            .connections
            .prepare(
                &r.session,
                Some(step),
                crate::models::ConnectionStatus::Registered,
                registration,
            )
            .await?;
        if prepared.check && !b.skip_credential_verification.unwrap_or(false) {
            self.probe(&prepared.kind, &prepared.metadata, &prepared.secret)
                .await?;
        }
        let (connection, credential) = self.connections.commit(&r.session, prepared).await?;
        self.note_connection(&r.session, &connection, "update")
            .await;
        Ok(ProcessConnectionRegistrationResponse::Ok(
            crate::models::ConnectionRegistrationResult {
                id: connection.id.clone(),
                status: connection.status.to_string(),
                connection: object_of(&connection),
                credential: credential.as_ref().map(object_of).unwrap_or_default(),
            },
        ))
    }

    async fn cancel_connection_registration(
        &self,
        r: CancelConnectionRegistrationRequest<Session>,
    ) -> Result<CancelConnectionRegistrationResponse, ApiError> {
        let id = r.body.id.to_string();
        let cancelled = self.connections.cancel(&r.session, &id).await?;
        Ok(CancelConnectionRegistrationResponse::Ok(
            crate::models::RegistrationCancelled { id, cancelled },
        ))
    }

    async fn cancel_connection_registration_by_id(
        &self,
        r: CancelConnectionRegistrationByIdRequest<Session>,
    ) -> Result<CancelConnectionRegistrationByIdResponse, ApiError> {
        let cancelled = self
            .connections
            .cancel(&r.session, &r.registration_id)
            .await?;
        Ok(CancelConnectionRegistrationByIdResponse::Ok(
            crate::models::RegistrationCancelled {
                id: r.registration_id,
                cancelled,
            },
        ))
    }
}

/// A text field that is given and not blank.
fn text<S: AsRef<str>>(value: Option<S>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.as_ref().trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A value as a JSON object (empty when it is not one).
fn object_of<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Where a connection of `kind` at `base` answers a health check.
fn probe_url(kind: &str, base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    match kind {
        "prometheus" => format!("{base}/api/v1/status/buildinfo"),
        "grafana" => format!("{base}/api/health"),
        _ => base.to_string(),
    }
}

/// Authenticates a check with a credential's secret: `username` and `password` as basic
/// authentication, else the first token-like value as a bearer token.
fn authorize(
    request: reqwest::RequestBuilder,
    secret: &Map<String, Value>,
) -> reqwest::RequestBuilder {
    let text = |k: &str| {
        secret
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let (Some(user), Some(password)) = (text("username"), text("password")) {
        return request.basic_auth(user, Some(password));
    }
    for key in [
        "secret", "token", "apiKey", "api_key", "apikey", "bearer", "auth",
    ] {
        if let Some(token) = text(key) {
            return request.bearer_auth(token);
        }
    }
    request
}

impl Api {
    /// Meshery's `initialize` step: the registry's definitions of the kind and a new
    /// registration id.
    fn initialize_registration(
        &self,
        kind: &str,
    ) -> Result<crate::models::ConnectionRegistrationResult, ApiError> {
        if kind.is_empty() {
            return Err(ApiError::bad_request(
                "`kind` is required (prometheus, grafana, ...)",
            ));
        }
        let components = self.registry.components();
        let find = |suffix: &str| {
            let name = format!("{kind}{suffix}");
            components
                .iter()
                .find(|c| c.kind.eq_ignore_ascii_case(&name))
                .map(object_of)
        };
        let connection = find("Connection").ok_or_else(|| {
            ApiError::bad_request(format!(
                "the registry has no {kind}Connection definition, so {kind:?} is not a known connection kind"
            ))
            .remedy("Import the model that defines it (POST /api/meshmodels/register), or register the connection directly.")
        })?;
        Ok(crate::models::ConnectionRegistrationResult {
            id: uuid::Uuid::new_v4().to_string(),
            status: "initialized".into(),
            connection,
            credential: find("Credential").unwrap_or_default(),
        })
    }

    /// Checks that a connection answers: a GET of its URL (the kind's health endpoint
    /// below it) with its credential, under the outbound policy, in 10 s.
    async fn probe(
        &self,
        kind: &str,
        metadata: &Map<String, Value>,
        secret: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        let Some(base) = metadata
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| !u.trim().is_empty())
        else {
            // Nothing to reach: the connection is taken as given.
            return Ok(());
        };
        let url = probe_url(kind, base);
        let target = self.config.targets.resolve(&url).await?;
        let gateway = |why: String| {
            ApiError::new(
                502,
                codes::BAD_GATEWAY,
                format!("checking the {kind} connection at {url}: {why}"),
            )
            .remedy("Check the URL and the credential, or send skipCredentialVerification: true to register it unchecked.")
        };
        let client = crate::remote::http_client_builder(&self.outbound_tls)
            .dns_resolver(std::sync::Arc::new(crate::policy::Pinned(target)))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ApiError::internal("building an HTTP client", e))?;
        let response = authorize(client.get(&url), secret)
            .send()
            .await
            .map_err(|e| gateway(crate::fault::chain(&e.without_url())))?;
        if !response.status().is_success() {
            return Err(gateway(format!("it answered {}", response.status())));
        }
        Ok(())
    }

    async fn note_connection(
        &self,
        session: &Session,
        connection: &crate::models::Connection,
        action: &str,
    ) {
        let event = crate::events::NewEvent::new(
            "connection",
            action,
            crate::models::EventSeverity::Informational,
            format!(
                "Connection {} ({}) is now {}",
                connection.name, connection.kind, connection.status
            ),
        )
        .acted_upon(connection.id.clone());
        self.events.note(session, event).await;
    }
}

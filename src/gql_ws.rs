//! GraphQL over WebSocket: `graphql-transport-ws` and the legacy `graphql-ws`
//! (subscriptions-transport-ws), one task per connection, and shared executions.
//!
//! Subscribers of the same subscription share one execution: `subscription {
//! subscribeEvents { ... } }` opened by 1,000 sockets of one user runs once, its answer
//! is serialized once per event, and each socket only wraps those bytes in its own `next`
//! message. Only root fields whose stream depends on nothing but the owner and the
//! arguments, and has no first item of its own, are shared ([`SHARED`]); others run per
//! subscriber, as do queries and mutations sent over the socket.
//!
//! Wire behaviour is async-graphql's, which this replaces: a bad message closes with 1002,
//! a second `connection_init` with 4429 (legacy: `connection_error`), a refused
//! `connection_init` with 1002 (legacy: `connection_error`), errors of an operation arrive
//! as a `next` (legacy: `data`) followed by `complete`; additionally, per the
//! graphql-transport-ws spec, `subscribe` before the ack closes with 4401 and a duplicate
//! id with 4409. The session accepted at `connection_init` is watched: when its token
//! expires or is logged out or revoked, the connection closes with 4403 and the reason
//! (legacy: a `connection_error` first).

use std::sync::Arc;

use async_graphql::http::{ClientMessage, WebSocketProtocols as Protocols};
use async_graphql::parser::types::{OperationType, Selection};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tokio_stream::StreamMap;

use crate::auth;
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::gql::{GRAPHQL_PATHS, Graphql};
use crate::gql_groups::{GroupKey, serialize};
use crate::liveness::{Ended, SessionEnd};
use crate::session::Session;

/// The close code when the session ends under an open connection (token expiry, logout,
/// revocation): graphql-transport-ws's "Forbidden".
pub const SESSION_ENDED: u16 = 4403;

/// Root subscription fields whose stream is the same for every subscriber with the same
/// owner, query and variables, and has no first item of its own (a late subscriber misses
/// nothing it would have had alone): their executions are shared.
pub const SHARED: &[&str] = &["subscribeEvents", "subscribeMeshSyncEvents"];

/// One subscription's answers (serialized `Response`s), then `None` when it ends.
type Answers = BoxStream<'static, Option<Arc<str>>>;

/// Why the server ends a connection.
enum Close {
    /// A close frame with this code and reason.
    Frame(u16, String),
    /// Legacy protocol: this message (`connection_error`), then a plain close.
    After(String),
    /// The client said goodbye.
    Quietly,
}

/// Serves one upgraded connection until the client leaves or breaks the protocol.
pub async fn serve(
    mut socket: WebSocket,
    graphql: Graphql,
    protocol: Protocols,
    early: Option<Session>,
    named: Option<String>,
) {
    let mut conn = Conn {
        graphql,
        protocol,
        early,
        named: Some(named),
        session: None,
        subs: StreamMap::new(),
    };
    let limits = conn.graphql.app().config.graphql;
    // One ping timer per connection; the first tick comes one interval in.
    let mut pings = tokio::time::interval_at(
        tokio::time::Instant::now() + limits.ws_keepalive,
        limits.ws_keepalive,
    );
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let init_deadline = tokio::time::sleep(limits.ws_init_timeout);
    tokio::pin!(init_deadline);
    // Whether anything arrived since the last ping; a ping unanswered for a whole
    // interval ends the connection.
    let mut heard = true;
    // The end of the session accepted at `connection_init` (token expiry, logout,
    // revocation): the connection closes then, whatever it carries.
    let mut session_end: Option<SessionEnd> = None;
    let mut watching = false;
    loop {
        if !watching && let Some(session) = &conn.session {
            watching = true;
            session_end = conn.graphql.app().providers.session_end(session);
        }
        tokio::select! {
            biased;
            why = async { session_end.as_mut()?.await.into() }, if session_end.is_some() => {
                let Some(why): Option<Ended> = why else { continue };
                let reason = why.message().to_string();
                if conn.protocol == Protocols::SubscriptionsTransportWS {
                    let error = serde_json::json!({"type": "connection_error", "payload": {"message": reason}});
                    let _ = socket.send(Message::Text(error.to_string().into())).await;
                }
                let _ = socket.send(close_frame(SESSION_ENDED, reason)).await;
                return;
            }
            message = socket.recv() => {
                heard = true;
                let text = match message {
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                };
                match conn.handle(&text).await {
                    Ok(replies) => {
                        for reply in replies {
                            if socket.send(Message::Text(reply.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(Close::Frame(code, reason)) => {
                        let _ = socket.send(close_frame(code, reason)).await;
                        return;
                    }
                    Err(Close::After(text)) => {
                        if socket.send(Message::Text(text.into())).await.is_ok() {
                            let _ = socket.send(Message::Close(None)).await;
                        }
                        return;
                    }
                    Err(Close::Quietly) => return,
                }
            }
            Some((id, answer)) = conn.subs.next(), if !conn.subs.is_empty() => {
                let reply = match answer {
                    Some(payload) => conn.data_message(&id, &payload),
                    None => {
                        conn.subs.remove(&id);
                        complete_message(&id)
                    }
                };
                if socket.send(Message::Text(reply.into())).await.is_err() {
                    return;
                }
            }
            _ = &mut init_deadline, if conn.session.is_none() => {
                let reason = "Connection initialisation timeout".to_string();
                let _ = socket.send(close_frame(4408, reason)).await;
                return;
            }
            _ = pings.tick() => {
                if !std::mem::take(&mut heard) {
                    let _ = socket.send(close_frame(1001, "no answer to pings".into())).await;
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A close frame; its reason cut to what a control frame can carry (125 bytes, 2 of them
/// the code), at a character boundary.
fn close_frame(code: u16, mut reason: String) -> Message {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

struct Conn {
    graphql: Graphql,
    protocol: Protocols,
    /// The session from the upgrade request's credentials, if it carried any.
    early: Option<Session>,
    /// The provider the upgrade request named, for the guard at `connection_init`; taken
    /// by the first one.
    named: Option<Option<String>>,
    /// Set once `connection_init` was accepted.
    session: Option<Session>,
    subs: StreamMap<String, Answers>,
}

impl Conn {
    /// Handles one client message: the messages to send back, or why to close.
    async fn handle(&mut self, text: &[u8]) -> Result<Vec<String>, Close> {
        let message =
            ClientMessage::from_bytes(text).map_err(|e| Close::Frame(1002, e.to_string()))?;
        match message {
            ClientMessage::ConnectionInit { payload } => {
                let Some(named) = self.named.take() else {
                    return self.refuse(4429, "Too many initialisation requests.");
                };
                let session = match self.early.take() {
                    Some(session) => Ok(session),
                    None => {
                        let token = payload.as_ref().and_then(payload_token);
                        auth::verify(&self.graphql.app().providers, named.as_deref(), token)
                            .await
                            .map_err(|e| e.to_string())
                    }
                };
                match session {
                    Ok(session) => {
                        self.session = Some(session);
                        Ok(vec![r#"{"type":"connection_ack"}"#.to_string()])
                    }
                    Err(message) => self.refuse(1002, &message),
                }
            }
            ClientMessage::Start { id, payload } => self.start(id, payload),
            ClientMessage::Stop { id } => {
                // Dropping the stream ends the subscription (and a shared execution once
                // its last subscriber is gone).
                Ok(match self.subs.remove(&id) {
                    Some(_) => vec![complete_message(&id)],
                    None => Vec::new(),
                })
            }
            ClientMessage::ConnectionTerminate => Err(Close::Quietly),
            ClientMessage::Ping { .. } => Ok(vec![r#"{"type":"pong"}"#.to_string()]),
            ClientMessage::Pong { .. } => Ok(Vec::new()),
        }
    }

    /// Ends the connection with `code` (legacy protocol: a `connection_error` first).
    fn refuse(&self, code: u16, message: &str) -> Result<Vec<String>, Close> {
        match self.protocol {
            Protocols::GraphQLWS => Err(Close::Frame(code, message.to_string())),
            Protocols::SubscriptionsTransportWS => {
                let error = serde_json::json!({"type": "connection_error", "payload": {"message": message}});
                Err(Close::After(error.to_string()))
            }
        }
    }

    fn start(
        &mut self,
        id: String,
        mut request: async_graphql::Request,
    ) -> Result<Vec<String>, Close> {
        let Some(session) = self.session.clone() else {
            return match self.protocol {
                Protocols::GraphQLWS => Err(Close::Frame(4401, "Unauthorized".into())),
                Protocols::SubscriptionsTransportWS => {
                    Err(Close::Frame(1011, "The handshake is not completed.".into()))
                }
            };
        };
        if self.subs.contains_key(&id) {
            match self.protocol {
                Protocols::GraphQLWS => {
                    return Err(Close::Frame(
                        4409,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                // The legacy protocol never said; a new `start` replaces the old one.
                Protocols::SubscriptionsTransportWS => {
                    self.subs.remove(&id);
                }
            }
        }
        let parsed = self.graphql.parse_cached(&mut request);
        if let Some(refused) = self.graphql.refuse(parsed.as_deref()) {
            return Ok(self.refusal(&id, &refused));
        }
        let owner = session.owner();
        let (kind, shared) = kind_of(&mut request);
        // Only subscriptions hold a place; a query or mutation over the socket answers once.
        let held = match kind {
            Some(OperationType::Subscription) => match self.graphql.subscriptions.admit(&owner) {
                Ok(held) => Some(held),
                Err(refusal) => {
                    let error = async_graphql::Response::from_errors(vec![
                        async_graphql::ServerError::new(refusal, None),
                    ]);
                    return Ok(self.refusal(&id, &error));
                }
            },
            _ => None,
        };
        let answers = if shared {
            let key = GroupKey {
                owner,
                query: request.query.clone(),
                operation: request.operation_name.clone(),
                variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            };
            let graphql = self.graphql.clone();
            self.graphql.groups.join(key, move || {
                graphql
                    .schema()
                    .execute_stream(request.data(session))
                    .boxed()
            })
        } else {
            self.graphql
                .schema()
                .execute_stream(request.data(session))
                .map(|r| serialize(&r))
                .boxed()
        };
        let answers = answers
            .map(Some)
            .chain(stream::once(async { None }))
            .map(move |a| {
                // The subscription counts against the limit until its stream is dropped.
                let _ = &held;
                a
            })
            .boxed();
        self.subs.insert(id, answers);
        Ok(Vec::new())
    }

    /// The messages that answer a refused operation at once: its errors, then `complete`.
    fn refusal(&self, id: &str, error: &async_graphql::Response) -> Vec<String> {
        vec![
            self.data_message(id, &serialize(error)),
            complete_message(id),
        ]
    }

    /// `next` (legacy: `data`) with an answer already serialized.
    fn data_message(&self, id: &str, payload: &str) -> String {
        let kind = match self.protocol {
            Protocols::GraphQLWS => "next",
            Protocols::SubscriptionsTransportWS => "data",
        };
        let id = Value::from(id).to_string();
        let mut out = String::with_capacity(payload.len() + id.len() + 36);
        out.push_str(r#"{"type":""#);
        out.push_str(kind);
        out.push_str(r#"","id":"#);
        out.push_str(&id);
        out.push_str(r#","payload":"#);
        out.push_str(payload);
        out.push('}');
        out
    }
}

/// A token from a `connection_init` payload: `{"Authorization": "Bearer ..."}`,
/// `{"headers": {"Authorization": ...}}` or `{"token": ...}`.
fn payload_token(payload: &Value) -> Option<String> {
    let auth = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))
        .or_else(|| {
            payload
                .get("headers")
                .and_then(|h| h.get("Authorization").or_else(|| h.get("authorization")))
        })
        .and_then(Value::as_str);
    if let Some(value) = auth {
        let value = value.trim();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => value,
        };
        return (!token.is_empty()).then(|| token.to_string());
    }
    payload
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn complete_message(id: &str) -> String {
    serde_json::json!({"type": "complete", "id": id}).to_string()
}

/// What `request` runs (a subscription, a query...), and whether it is a subscription whose
/// every root field is in [`SHARED`].
fn kind_of(request: &mut async_graphql::Request) -> (Option<OperationType>, bool) {
    let Some(op) = crate::gql::operation(request) else {
        return (None, false);
    };
    let shared = op.node.ty == OperationType::Subscription
        && op
            .node
            .selection_set
            .node
            .items
            .iter()
            .all(|s| match &s.node {
                Selection::Field(f) => SHARED.contains(&f.node.name.node.as_str()),
                _ => false,
            });
    (Some(op.node.ty), shared)
}

/// Write buffer of a GraphQL WebSocket connection.
const WS_BUFFER: usize = 4 * 1024;
/// Read buffer (longer messages take several reads): tungstenite zero-fills this much of
/// its read buffer on every read attempt, and a subscription's socket is polled for
/// reading on every event it sends.
const WS_READ_BUFFER: usize = 1024;

/// Takes WebSocket upgrades on the GraphQL paths before the REST router: their
/// credentials may arrive only in `connection_init`, which the same guard then checks.
/// A plain service rather than `middleware::from_fn`: every other request passes straight
/// through, with no state cloned and no future boxed.
#[derive(Clone)]
pub struct Upgrades<S> {
    inner: S,
    graphql: Graphql,
}

/// Wraps each route in [`Upgrades`].
#[derive(Clone)]
pub struct UpgradesLayer(pub Graphql);

impl<S> tower::Layer<S> for UpgradesLayer {
    type Service = Upgrades<S>;
    fn layer(&self, inner: S) -> Upgrades<S> {
        Upgrades {
            inner,
            graphql: self.0.clone(),
        }
    }
}

fn is_graphql_upgrade(request: &Request) -> bool {
    request.method() == Method::GET
        && GRAPHQL_PATHS.contains(&request.uri().path())
        && request
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

impl<S> tower::Service<Request> for Upgrades<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        S::Future,
        futures_util::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !is_graphql_upgrade(&request) {
            return futures_util::future::Either::Left(self.inner.call(request));
        }
        let graphql = self.graphql.clone();
        futures_util::future::Either::Right(Box::pin(async move {
            let (mut parts, _) = request.into_parts();
            Ok(websocket(&graphql, &mut parts).await)
        }))
    }
}

/// The first subprotocol the client offers that we speak.
fn protocol_of(headers: &HeaderMap) -> Option<Protocols> {
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())?
        .split(',')
        .find_map(|p| p.trim().parse().ok())
}

async fn websocket(graphql: &Graphql, parts: &mut axum::http::request::Parts) -> Response {
    let app = graphql.app();
    let upgrade = match WebSocketUpgrade::from_request_parts(parts, &()).await {
        Ok(u) => u,
        Err(e) => {
            return ApiError::bad_request(format!("bad WebSocket upgrade: {e}")).into_response();
        }
    };
    let Some(protocol) = protocol_of(&parts.headers) else {
        return ApiError::bad_request("unknown WebSocket subprotocol")
            .remedy("Use graphql-transport-ws or graphql-ws.")
            .into_response();
    };
    let named = auth::named_provider(parts);
    let token = auth::token(&parts.headers);
    // Credentials on the upgrade request (cookie or header) are checked now; without
    // them the guard runs on the connection_init payload.
    let early = match token {
        Some(_) => Some(auth::verify(&app.providers, named.as_deref(), token).await),
        None => match auth::verify(&app.providers, named.as_deref(), None).await {
            Ok(session) => Some(Ok(session)),
            Err(_) => None,
        },
    };
    let early = match early {
        Some(Err(e)) => return ApiError::from(e).into_response(),
        Some(Ok(session)) => Some(session),
        None => None,
    };
    let limit = app.config.body_limit;
    let graphql = graphql.clone();
    // tungstenite's default buffers are 128 KiB each way, allocated per connection; GraphQL
    // messages are small, and an idle subscription should cost a few KiB (larger messages
    // still arrive whole: the buffers grow up to the message limit).
    upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        // The subprotocol we speak, not the first of ours the client offers.
        .protocols([protocol.sec_websocket_protocol()])
        .on_upgrade(move |socket| crate::gql_ws::serve(socket, graphql, protocol, early, named))
}

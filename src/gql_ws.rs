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
//! id with 4409.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use async_graphql::http::{ClientMessage, WebSocketProtocols as Protocols};
use async_graphql::parser::types::{OperationType, Selection};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{self, BoxStream, StreamExt};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_stream::StreamMap;

use crate::auth;
use crate::gql::Graphql;
use crate::session::Session;

/// Root subscription fields whose stream is the same for every subscriber with the same
/// owner, query and variables, and has no first item of its own (a late subscriber misses
/// nothing it would have had alone): their executions are shared.
pub const SHARED: &[&str] = &["subscribeEvents"];

/// Answers a shared execution keeps for a subscriber that is slower than the others;
/// past that it skips the oldest, as the event broadcast behind it does.
const GROUP_BACKLOG: usize = 256;

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
    loop {
        tokio::select! {
            biased;
            message = socket.recv() => {
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
                        let frame = CloseFrame { code, reason: reason.into() };
                        let _ = socket.send(Message::Close(Some(frame))).await;
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
        }
    }
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
        let owner = session.owner();
        let held = match self.graphql.subscriptions.admit(&owner) {
            Ok(held) => held,
            Err(refusal) => {
                let error =
                    async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
                        refusal, None,
                    )]);
                let answer = serialize(&error);
                self.subs
                    .insert(id, stream::iter([Some(answer), None]).boxed());
                return Ok(Vec::new());
            }
        };
        let parsed = self.graphql.parse_cached(&mut request);
        if let Some(refused) = self.graphql.refuse(parsed.as_deref()) {
            self.subs
                .insert(id, stream::iter([Some(serialize(&refused)), None]).boxed());
            return Ok(Vec::new());
        }
        let answers = if shareable(&mut request) {
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

fn serialize(response: &async_graphql::Response) -> Arc<str> {
    match serde_json::to_string(response) {
        Ok(text) => text.into(),
        // A response is plain JSON values; should it ever fail, the subscriber gets an
        // error it can read rather than silence.
        Err(e) => {
            tracing::error!(error = %e, "serializing a GraphQL response");
            Arc::from(r#"{"data":null,"errors":[{"message":"internal error"}]}"#)
        }
    }
}

/// Whether `request` is a subscription whose every root field is in [`SHARED`].
fn shareable(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(doc) = request.parsed_query() else {
        return false;
    };
    let op = match (&doc.operations, name.as_deref()) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => op,
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => {
            match ops.get(name) {
                Some(op) => op,
                None => return false,
            }
        }
        _ => return false,
    };
    op.node.ty == OperationType::Subscription
        && op
            .node
            .selection_set
            .node
            .items
            .iter()
            .all(|s| match &s.node {
                Selection::Field(f) => SHARED.contains(&f.node.name.node.as_str()),
                _ => false,
            })
}

/// What makes two subscriptions the same execution.
#[derive(Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    owner: String,
    query: String,
    operation: Option<String>,
    variables: String,
}

/// The shared executions running now, by what they execute.
#[derive(Default)]
pub struct Groups(Arc<Mutex<HashMap<GroupKey, Weak<Group>>>>);

/// One shared execution: a task runs it and sends each serialized answer to every
/// subscriber. It ends when its last subscriber is dropped.
struct Group {
    key: GroupKey,
    home: Weak<Mutex<HashMap<GroupKey, Weak<Group>>>>,
    /// `None` once the execution has ended: a new subscriber then starts a new one.
    tx: Mutex<Option<broadcast::Sender<Arc<str>>>>,
    /// The answer of an execution that failed at once (one answer, with errors, then the
    /// end): a subscriber that joined after it was sent still gets it.
    failed: OnceLock<Arc<str>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        if let Some(home) = self.home.upgrade() {
            let mut map = home.lock();
            // Only this group's entry: a new one may have replaced it.
            if map
                .get(&self.key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self as *const Group))
            {
                map.remove(&self.key);
            }
        }
    }
}

impl Groups {
    /// Joins the execution of `key`, starting it with `execute` when none runs.
    fn join(
        &self,
        key: GroupKey,
        execute: impl FnOnce() -> BoxStream<'static, async_graphql::Response>,
    ) -> BoxStream<'static, Arc<str>> {
        let mut ended = None;
        let (group, rx) = {
            let mut map = self.0.lock();
            let live = map.get(&key).and_then(Weak::upgrade);
            let joined = live
                .as_ref()
                .and_then(|g| g.tx.lock().as_ref().map(broadcast::Sender::subscribe));
            match (live, joined) {
                (Some(group), Some(rx)) => (group, rx),
                (live, _) => {
                    // A group whose execution ended is dropped after the lock is released
                    // (its drop takes the lock).
                    ended = live;
                    let (tx, rx) = broadcast::channel(GROUP_BACKLOG);
                    let group = Arc::new(Group {
                        key: key.clone(),
                        home: Arc::downgrade(&self.0),
                        tx: Mutex::new(Some(tx.clone())),
                        failed: OnceLock::new(),
                        task: Mutex::new(None),
                    });
                    map.insert(key, Arc::downgrade(&group));
                    let task = tokio::spawn(produce(execute(), tx, Arc::downgrade(&group)));
                    *group.task.lock() = Some(task.abort_handle());
                    (group, rx)
                }
            }
        };
        drop(ended);
        member(group, rx)
    }

    /// Shared executions running now (tests).
    pub fn running(&self) -> usize {
        self.0
            .lock()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

/// Runs a shared execution: each answer serialized once, sent to every subscriber.
async fn produce(
    mut answers: BoxStream<'static, async_graphql::Response>,
    tx: broadcast::Sender<Arc<str>>,
    group: Weak<Group>,
) {
    let mut sent = 0usize;
    let mut first_failed = None;
    while let Some(answer) = answers.next().await {
        let text = serialize(&answer);
        if sent == 0 && answer.is_err() {
            first_failed = Some(text.clone());
        }
        sent += 1;
        // No receiver right now is fine: subscribers come and go.
        let _ = tx.send(text);
    }
    if let Some(group) = group.upgrade() {
        if let (1, Some(text)) = (sent, first_failed) {
            let _ = group.failed.set(text);
        }
        group.tx.lock().take();
    }
}

/// One subscriber's view of a shared execution.
fn member(group: Arc<Group>, rx: broadcast::Receiver<Arc<str>>) -> BoxStream<'static, Arc<str>> {
    stream::unfold((group, rx, false), |(group, mut rx, got)| async move {
        loop {
            match rx.recv().await {
                Ok(text) => return Some((text, (group, rx, true))),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    let failed = if got {
                        None
                    } else {
                        group.failed.get().cloned()
                    };
                    return failed.map(|text| (text, (group, rx, true)));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::{GroupKey, Groups};
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn key(owner: &str) -> GroupKey {
        GroupKey {
            owner: owner.into(),
            query: "subscription { subscribeEvents { id } }".into(),
            operation: None,
            variables: "{}".into(),
        }
    }

    #[tokio::test]
    async fn subscribers_of_one_key_share_one_execution_that_ends_with_the_last() {
        let groups = Groups::default();
        let started = AtomicUsize::new(0);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<async_graphql::Response>();
        let execute = |rx| {
            started.fetch_add(1, Ordering::SeqCst);
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx).boxed()
        };
        let mut a = groups.join(key("alice"), || execute(rx));
        let mut b = groups.join(key("alice"), || panic!("a second execution for one key"));
        let (other_tx, other_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut c = groups.join(key("bob"), || execute(other_rx));
        assert_eq!(started.load(Ordering::SeqCst), 2);
        assert_eq!(groups.running(), 2);

        // The execution only starts sending once its task has run; sent until received.
        let answer = async_graphql::Response::new(async_graphql::Value::from(7));
        tx.send(answer).unwrap();
        let got_a = tokio::time::timeout(Duration::from_secs(5), a.next())
            .await
            .unwrap();
        let got_b = tokio::time::timeout(Duration::from_secs(5), b.next())
            .await
            .unwrap();
        assert_eq!(got_a.as_deref(), Some(r#"{"data":7}"#));
        assert_eq!(got_a, got_b, "both subscribers get the same bytes");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), c.next())
                .await
                .is_err(),
            "another owner's subscriber gets nothing of alice's"
        );

        drop(a);
        assert_eq!(groups.running(), 2, "one subscriber left keeps it running");
        drop(b);
        assert_eq!(groups.running(), 1, "the last one leaving ends it");
        // Its task was stopped: the execution's stream is dropped.
        tokio::time::timeout(Duration::from_secs(5), tx.closed())
            .await
            .unwrap();
        drop(c);
        tokio::time::timeout(Duration::from_secs(5), other_tx.closed())
            .await
            .unwrap();
        assert_eq!(groups.running(), 0);
    }

    #[tokio::test]
    async fn an_ended_execution_is_not_joined_and_its_subscribers_see_the_end() {
        let groups = Groups::default();
        let error = async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
            "bad field",
            None,
        )]);
        let mut a = groups.join(key("alice"), || futures_util::stream::iter([error]).boxed());
        let first = tokio::time::timeout(Duration::from_secs(5), a.next())
            .await
            .unwrap();
        assert!(first.unwrap().contains("bad field"));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), a.next())
                .await
                .unwrap(),
            None
        );
        // A new subscriber with the same key starts its own execution.
        let started = AtomicUsize::new(0);
        let _b = groups.join(key("alice"), || {
            started.fetch_add(1, Ordering::SeqCst);
            futures_util::stream::pending().boxed()
        });
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }
}

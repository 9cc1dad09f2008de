//! Events: what happened in the server, recorded per user, listed, marked read and
//! streamed live (SSE and the GraphQL subscription share one broadcast).

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::fault::{Internal, OrInternal};
use crate::models::{Event, EventInput, EventSeverity, EventStatus};
use crate::session::Session;
use crate::store::{EventFilter, EventRow, Listing, Store, stamp};

/// The largest `metadata` a client may attach to an event, as JSON.
const MAX_METADATA: usize = 64 * 1024;

/// An event the server records (its own, or a client's after checks).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub category: String,
    pub action: String,
    pub severity: EventSeverity,
    pub description: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub acted_upon: String,
}

impl NewEvent {
    pub fn new(
        category: &str,
        action: &str,
        severity: EventSeverity,
        description: impl Into<String>,
    ) -> Self {
        NewEvent {
            category: category.to_string(),
            action: action.to_string(),
            severity,
            description: description.into(),
            metadata: Default::default(),
            acted_upon: String::new(),
        }
    }

    pub fn acted_upon(mut self, id: impl Into<String>) -> Self {
        self.acted_upon = id.into();
        self
    }

    pub fn meta(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.to_string(), value.into());
        self
    }
}

/// A recorded event as the live streams share it: one allocation for all subscribers (a
/// broadcast clones its value per receiver, so the value is an `Arc`), with the JSON that
/// was stored, so a stream that sends JSON does not encode it again per subscriber.
pub struct Published {
    owner: String,
    pub event: Event,
    /// `event` as compact JSON.
    pub json: String,
    /// Values derived from the event, one per kind of stream (the SSE frame, the GraphQL
    /// object), each made by the first subscriber that needs it and shared by the others.
    derived: [std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>; 2],
}

impl Published {
    /// `make(self)`, computed once per event for every subscriber asking for a `T`.
    pub fn shared<T: Clone + Send + Sync + 'static>(&self, make: impl Fn(&Self) -> T) -> T {
        for slot in &self.derived {
            let derived = slot.get_or_init(|| Box::new(make(self)));
            if let Some(value) = derived.downcast_ref::<T>() {
                return value.clone();
            }
        }
        // More kinds than slots: this one computes its own.
        make(self)
    }
}

struct Inner {
    store: Store,
    system_id: String,
    /// Every recorded event with its owner; subscribers keep their owner's. Taken at
    /// shutdown: the streams then end, so open subscriptions do not hold it up (cheaper
    /// than a cancellation future polled by every stream on every event).
    tx: parking_lot::RwLock<Option<broadcast::Sender<Arc<Published>>>>,
}

/// The event service; cheap to clone.
/// Why an event operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A reported event breaks the schema's rules.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

#[derive(Clone)]
pub struct Events(Arc<Inner>);

fn as_str<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl Events {
    pub fn new(store: Store, system_id: String) -> Self {
        Events(Arc::new(Inner {
            store,
            system_id,
            tx: parking_lot::RwLock::new(Some(broadcast::channel(256).0)),
        }))
    }

    /// Records an event for the session's user.
    pub async fn record(&self, session: &Session, event: NewEvent) -> Result<Event, EventError> {
        self.record_for(&session.owner(), &session.user.id, event)
            .await
    }

    /// Records a server event; a failure is logged, never passed to the caller, because
    /// the change the event reports has already happened.
    pub async fn note(&self, session: &Session, event: NewEvent) {
        self.note_for(&session.owner(), &session.user.id, event)
            .await
    }

    pub async fn note_for(&self, owner: &str, user_id: &str, event: NewEvent) {
        let what = format!("{}/{}", event.category, event.action);
        if let Err(e) = self.record_for(owner, user_id, event).await {
            tracing::warn!(event = %what, error = %e, "could not record an event");
        }
    }

    pub async fn record_for(
        &self,
        owner: &str,
        user_id: &str,
        event: NewEvent,
    ) -> Result<Event, EventError> {
        let now = chrono::Utc::now();
        let event = Event {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            system_id: self.0.system_id.clone(),
            category: event.category,
            action: event.action,
            severity: event.severity,
            description: event.description,
            metadata: event.metadata,
            acted_upon: event.acted_upon,
            status: EventStatus::Unread,
            created_at: now,
            updated_at: now,
        };
        let doc = serde_json::to_string(&event).or_internal("encoding an event")?;
        let created = stamp(now);
        self.0
            .store
            .insert_event(&EventRow {
                id: &event.id,
                owner,
                description: &event.description,
                category: &event.category,
                action: &event.action,
                severity: &as_str(&event.severity),
                status: &as_str(&event.status),
                doc: &doc,
                created_at: &created,
            })
            .await
            .or_internal("storing an event")?;
        if let Some(tx) = &*self.0.tx.read()
            && tx.receiver_count() > 0
        {
            let _ = tx.send(Arc::new(Published {
                owner: owner.to_string(),
                event: event.clone(),
                json: doc,
                derived: Default::default(),
            }));
        }
        Ok(event)
    }

    /// Checks and records an event a client reports.
    pub async fn ingest(&self, session: &Session, input: EventInput) -> Result<Event, EventError> {
        let name = |what: &str, s: &str| -> Result<String, EventError> {
            // Exactly the schema's pattern: those characters, not only spaces.
            if s.chars().all(|c| c == ' ')
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:/ ".contains(c))
            {
                return Err(EventError::Invalid(format!(
                    "{what} {s:?} must be letters, digits, spaces or - _ . : /"
                )));
            }
            Ok(s.to_string())
        };
        let metadata = input.metadata;
        let size = serde_json::to_vec(&metadata).map(|v| v.len()).unwrap_or(0);
        if size > MAX_METADATA {
            return Err(EventError::Invalid(format!(
                "metadata is {size} bytes of JSON; at most {MAX_METADATA}"
            )));
        }
        let event = NewEvent {
            category: name("category", input.category.as_str())?,
            action: name("action", input.action.as_str())?,
            severity: input.severity,
            description: input.description.to_string(),
            metadata,
            acted_upon: input.acted_upon.map(|a| a.to_string()).unwrap_or_default(),
        };
        self.record(session, event).await
    }

    pub async fn list(
        &self,
        session: &Session,
        filter: &EventFilter,
        listing: &Listing,
    ) -> Result<(Vec<Event>, i64), EventError> {
        let (docs, total) = self
            .0
            .store
            .events(&session.owner(), filter, listing)
            .await
            .or_internal("listing events")?;
        Ok((decode(&docs)?, total))
    }

    /// How many of the user's events are unread, by severity.
    pub async fn unread_by_severity(
        &self,
        session: &Session,
    ) -> Result<std::collections::BTreeMap<String, i64>, EventError> {
        let counts = self
            .0
            .store
            .unread_by_severity(&session.owner())
            .await
            .or_internal("counting events")?;
        Ok(counts.into_iter().collect())
    }

    /// Sets the status of the user's events among `ids`; the changed events.
    pub async fn set_status(
        &self,
        session: &Session,
        ids: &[String],
        status: EventStatus,
    ) -> Result<Vec<Event>, EventError> {
        let docs = self
            .0
            .store
            .set_events_status(
                &session.owner(),
                ids,
                &as_str(&status),
                &stamp(chrono::Utc::now()),
            )
            .await
            .or_internal("updating events")?;
        Ok(decode(&docs)?)
    }

    /// Deletes the user's events among `ids`; how many there were.
    pub async fn delete(&self, session: &Session, ids: &[String]) -> Result<u64, EventError> {
        self.0
            .store
            .delete_events(&session.owner(), ids)
            .await
            .or_internal("deleting events")
            .map_err(Into::into)
    }

    /// The user's events from now on. A subscriber that falls behind skips what it
    /// missed rather than stalling the server; the listing still has everything.
    pub fn subscribe(&self, session: &Session) -> BoxStream<'static, Arc<Published>> {
        let owner = session.owner();
        let Some(rx) = self.0.tx.read().as_ref().map(broadcast::Sender::subscribe) else {
            return futures_util::stream::empty().boxed();
        };
        BroadcastStream::new(rx)
            .filter_map(move |item| {
                std::future::ready(match item {
                    Ok(p) if p.owner == owner => Some(p),
                    _ => None,
                })
            })
            .boxed()
    }

    /// Ends the live streams (at shutdown).
    pub fn close(&self) {
        self.0.tx.write().take();
    }
}

fn decode(docs: &[String]) -> Result<Vec<Event>, Internal> {
    docs.iter()
        .map(|d| serde_json::from_str(d))
        .collect::<Result<Vec<Event>, _>>()
        .or_internal("decoding an event")
}

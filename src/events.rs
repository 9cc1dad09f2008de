//! Events: what happened in the server, recorded per user, listed, marked read and
//! streamed live (SSE and the GraphQL subscription share one broadcast).

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::broadcast;

use crate::bus::{Bus, Topic};
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
    /// The event's place in the order of commits (SSE `id:`, `Last-Event-ID`).
    pub seq: i64,
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
    bus: Bus,
    system_id: String,
    /// Every committed event with its owner, in commit order (sent by the reader task
    /// only); subscribers keep their owner's. Taken at shutdown: the streams then end, so
    /// open subscriptions do not hold it up (cheaper than a cancellation future polled by
    /// every stream on every event).
    tx: parking_lot::RwLock<Option<broadcast::Sender<Arc<Published>>>>,
    /// The newest sequence number the reader has sent.
    cursor: AtomicI64,
    /// Wakes the reader after a local insert.
    poke: tokio::sync::Notify,
    /// Events this server committed, by sequence number, with owner and stored document:
    /// the reader sends the ones that come right after its cursor without reading them
    /// back (a database round trip per event on the way to every subscriber). Anything
    /// else (a gap: another replica's event, or a local commit handed over late) is read
    /// from the table as before. At most [`BATCH`] are held; past that the table serves.
    committed: parking_lot::Mutex<std::collections::BTreeMap<i64, (String, String)>>,
    stop: tokio_util::sync::CancellationToken,
}

/// Rows per read, by the reader and by a stream catching up.
const BATCH: i64 = 256;

/// How often the reader looks for events on PostgreSQL without being told: a safety net
/// under the notices (which only a lost connection loses, and that triggers a read too).
const POLL: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// The service, and its reader: the one task that sends committed events to this
    /// server's subscribers, in commit order, whichever replica committed them. It starts
    /// after the newest stored event.
    pub async fn new(store: Store, system_id: String, bus: Bus) -> Result<Self, Internal> {
        let cursor = store
            .last_event_seq()
            .await
            .or_internal("reading the newest event")?;
        let events = Events(Arc::new(Inner {
            store,
            bus,
            system_id,
            tx: parking_lot::RwLock::new(Some(broadcast::channel(256).0)),
            cursor: AtomicI64::new(cursor),
            poke: tokio::sync::Notify::new(),
            committed: parking_lot::Mutex::default(),
            stop: tokio_util::sync::CancellationToken::new(),
        }));
        tokio::spawn(events.clone().read_loop());
        Ok(events)
    }

    async fn read_loop(self) {
        let mut notices = self.0.bus.notices(Topic::Events);
        let postgres = self.0.store.engine() == crate::store::Engine::Postgres;
        loop {
            tokio::select! {
                _ = self.0.stop.cancelled() => return,
                _ = self.0.poke.notified() => {}
                // A notice, a resync or a lag all mean the same: read what is new.
                _ = notices.recv() => {}
                _ = tokio::time::sleep(POLL), if postgres => {}
            }
            loop {
                let cursor = self.0.cursor.load(Ordering::Acquire);
                let handed = self.take_committed(cursor);
                if !handed.is_empty() {
                    // Nothing lies between the cursor and these: every later event is
                    // handed over too, or comes with a poke, notice or poll of its own.
                    self.send(handed);
                    break;
                }
                let rows = match self.0.store.events_after(cursor, None, BATCH).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        // The database is away; the next notice, poke or poll retries.
                        tracing::warn!(error = %e, "reading new events");
                        break;
                    }
                };
                let full = rows.len() as i64 == BATCH;
                self.send(rows);
                if !full {
                    break;
                }
            }
        }
    }

    /// The handed-over events that follow `cursor` without a gap, in order; forgets the
    /// ones at or before it (already sent from the table).
    fn take_committed(&self, cursor: i64) -> Vec<(i64, String, String)> {
        let mut committed = self.0.committed.lock();
        let newer = committed.split_off(&(cursor + 1));
        *committed = newer;
        let mut out = Vec::new();
        let mut next = cursor + 1;
        while let Some((owner, doc)) = committed.remove(&next) {
            out.push((next, owner, doc));
            next += 1;
        }
        out
    }

    /// Sends committed events, in sequence order, to this server's subscribers.
    fn send(&self, rows: Vec<(i64, String, String)>) {
        let tx = self.0.tx.read().clone();
        for (seq, owner, doc) in rows {
            match published(seq, owner, doc) {
                Ok(p) => {
                    if let Some(tx) = &tx
                        && tx.receiver_count() > 0
                    {
                        let _ = tx.send(Arc::new(p));
                    }
                }
                Err(e) => tracing::warn!(seq, error = %e, "skipping a stored event"),
            }
            self.0.cursor.store(seq, Ordering::Release);
        }
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
        let notice = self.0.bus.payload(Topic::Events, "");
        let seq = self
            .0
            .store
            .insert_event(
                &EventRow {
                    id: &event.id,
                    owner,
                    description: &event.description,
                    category: &event.category,
                    action: &event.action,
                    severity: &as_str(&event.severity),
                    status: &as_str(&event.status),
                    doc: &doc,
                    created_at: &created,
                },
                crate::bus::CHANNEL,
                &notice,
            )
            .await
            .or_internal("storing an event")?;
        // This server's subscribers hear it from the reader, in commit order.
        {
            let mut committed = self.0.committed.lock();
            if (committed.len() as i64) < BATCH {
                committed.insert(seq, (owner.to_string(), doc));
            }
        }
        self.0.poke.notify_one();
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
    ) -> Result<Vec<(String, i64)>, EventError> {
        let mut counts = self
            .0
            .store
            .unread_by_severity(&session.owner())
            .await
            .or_internal("counting events")?;
        counts.sort();
        Ok(counts)
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

    /// The categories and actions among the user's events.
    pub async fn types(&self, session: &Session) -> Result<(Vec<String>, Vec<String>), EventError> {
        Ok(self
            .0
            .store
            .event_types(&session.owner())
            .await
            .or_internal("listing event types")?)
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

    /// The user's events committed after `after` (a sequence number a client resumes
    /// from), else from now on; each exactly once, in commit order. Missed events come
    /// from the table, then live ones; a subscriber that falls behind the live broadcast
    /// reads what it missed from the table too, so nothing is skipped and the server
    /// never waits for a slow subscriber.
    pub fn subscribe(
        &self,
        session: &Session,
        after: Option<i64>,
    ) -> BoxStream<'static, Arc<Published>> {
        let Some(rx) = self.0.tx.read().as_ref().map(broadcast::Sender::subscribe) else {
            return futures_util::stream::empty().boxed();
        };
        // After subscribing: whatever the reader sends from here on arrives, so every
        // event after `last` is either already in the table or still to come.
        let now = self.0.cursor.load(Ordering::Acquire);
        let follow = Follow {
            store: self.0.store.clone(),
            owner: session.owner(),
            rx,
            last: after.unwrap_or(now),
            catch_up: after.is_some_and(|a| a < now),
            backlog: std::collections::VecDeque::new(),
        };
        futures_util::stream::unfold(follow, Follow::next).boxed()
    }

    /// Where a `Last-Event-ID` resumes. An id after the newest event (from another
    /// deployment, or a database restored from a backup) resumes from now: nothing this
    /// database holds was missed, and live events must not wait for the number to be
    /// reached.
    pub async fn resume_point(&self, id: &str) -> Result<i64, EventError> {
        let seq = id
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                EventError::Invalid(format!(
                    "Last-Event-ID {id:?} is not an event sequence number"
                ))
            })?;
        let newest = self
            .0
            .store
            .last_event_seq()
            .await
            .or_internal("reading the newest event")?;
        Ok(seq.min(newest))
    }

    /// Ends the live streams (at shutdown).
    pub fn close(&self) {
        self.0.tx.write().take();
        self.0.stop.cancel();
    }
}

/// One subscriber's position: the last event it was given, and what it still has to
/// read from the table before it can follow the live broadcast.
struct Follow {
    store: Store,
    owner: String,
    rx: broadcast::Receiver<Arc<Published>>,
    last: i64,
    catch_up: bool,
    backlog: std::collections::VecDeque<Arc<Published>>,
}

impl Follow {
    async fn next(mut self) -> Option<(Arc<Published>, Follow)> {
        loop {
            if let Some(p) = self.backlog.pop_front() {
                self.last = p.seq;
                return Some((p, self));
            }
            if self.catch_up {
                let rows = match self
                    .store
                    .events_after(self.last, Some(&self.owner), BATCH)
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        // Ending the stream tells the client to resume (from `last`).
                        tracing::warn!(error = %e, "reading missed events; ending the stream");
                        return None;
                    }
                };
                self.catch_up = rows.len() as i64 == BATCH;
                for (seq, owner, doc) in rows {
                    match published(seq, owner, doc) {
                        Ok(p) => self.backlog.push_back(Arc::new(p)),
                        Err(e) => tracing::warn!(seq, error = %e, "skipping a stored event"),
                    }
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(p) if p.owner == self.owner && p.seq > self.last => {
                    self.last = p.seq;
                    return Some((p, self));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// A stored event as the streams share it.
fn published(seq: i64, owner: String, doc: String) -> Result<Published, serde_json::Error> {
    Ok(Published {
        owner,
        seq,
        event: serde_json::from_str(&doc)?,
        json: doc,
        derived: Default::default(),
    })
}

fn decode(docs: &[String]) -> Result<Vec<Event>, Internal> {
    docs.iter()
        .map(|d| serde_json::from_str(d))
        .collect::<Result<Vec<Event>, _>>()
        .or_internal("decoding an event")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event service on a new SQLite database in `home`, and the Local user's session.
    async fn service(home: &std::path::Path) -> (Store, Events, Session) {
        let store = Store::open(&crate::store::default_url(home), None)
            .await
            .unwrap();
        let bus = Bus::start(store.clone()).await.unwrap();
        let events = Events::new(store.clone(), "system".into(), bus)
            .await
            .unwrap();
        let user = crate::providers::local_user("system");
        (
            store,
            events,
            Session::new("None".into(), user, None, false),
        )
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_sent_every_event_in_order() {
        let home = tempfile::tempdir().unwrap();
        let (store, events, session) = service(home.path()).await;
        let stream = events.subscribe(&session, None);
        for n in 0..600 {
            let event = NewEvent::new("test", "count", EventSeverity::Debug, n.to_string());
            events.record(&session, event).await.unwrap();
        }
        // Every event has been broadcast before the stream is first polled: more than the
        // broadcast holds, so the subscriber has lagged and must read the rest.
        let newest = store.last_event_seq().await.unwrap();
        while events.0.cursor.load(Ordering::Acquire) < newest {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let got: Vec<String> = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream
                .take(600)
                .map(|p| p.event.description.clone())
                .collect(),
        )
        .await
        .unwrap();
        let want: Vec<String> = (0..600).map(|n| n.to_string()).collect();
        assert_eq!(got, want);
        events.close();
        store.close().await;
    }

    #[tokio::test]
    async fn an_event_committed_elsewhere_is_not_skipped_by_a_handed_over_one() {
        let home = tempfile::tempdir().unwrap();
        let (store, events, session) = service(home.path()).await;
        let mut stream = events.subscribe(&session, None);
        let local = |d: &str| NewEvent::new("test", "local", EventSeverity::Debug, d);
        events.record(&session, local("first")).await.unwrap();
        // Committed without this server's reader hearing of it (another replica whose
        // notice is late): the next local event is handed over right after it.
        let now = chrono::Utc::now();
        let elsewhere = serde_json::to_string(&Event {
            id: "elsewhere".into(),
            user_id: session.user.id.clone(),
            system_id: "system".into(),
            category: "test".into(),
            action: "elsewhere".into(),
            severity: EventSeverity::Debug,
            description: "elsewhere".into(),
            metadata: Default::default(),
            acted_upon: String::new(),
            status: EventStatus::Unread,
            created_at: now,
            updated_at: now,
        })
        .unwrap();
        let owner = session.owner();
        let row = EventRow {
            id: "elsewhere",
            owner: &owner,
            description: "elsewhere",
            category: "test",
            action: "elsewhere",
            severity: "debug",
            status: "unread",
            doc: &elsewhere,
            created_at: &stamp(now),
        };
        store.insert_event(&row, "meshery", "").await.unwrap();
        events.record(&session, local("second")).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let p = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
                .await
                .unwrap()
                .unwrap();
            got.push((p.seq, p.event.description.clone()));
        }
        assert_eq!(
            got.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
            ["first", "elsewhere", "second"]
        );
        assert!(got.windows(2).all(|w| w[0].0 + 1 == w[1].0), "{got:?}");
        events.close();
        store.close().await;
    }
}

//! Change notices between the replicas that share one database.
//!
//! On PostgreSQL a committed change is announced with `pg_notify` on one channel; the
//! notice carries what changed and ids only (a few hundred bytes, far under PostgreSQL's
//! 8,000-byte limit), and each replica reads the rows itself before telling its own
//! subscribers. One listener connection per replica (`PgListener`); when it is lost,
//! every topic gets `Notice::Resync` after it is back, because notices sent meanwhile
//! are gone: subscribers then reread what they show from the tables. On SQLite there is
//! one server: publishing does nothing and no notice ever arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::store::Store;

/// The one channel every replica listens on.
pub const CHANNEL: &str = "meshery";

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// New events were committed (the key is empty: readers go by sequence number).
    Events,
    /// A design changed; the key is its owner.
    Designs,
    /// A user's preferences changed; the key is the owner.
    Prefs,
    /// A model was registered; the key is its id.
    Registry,
    /// A token was revoked (logout); the key is its SHA-256, hex.
    Revoked,
    /// A load test run changed: progress, end or a cancel request; the key is its id.
    Perf,
    /// A cluster connection or its inventory changed; the key is `owner\ncontext id`.
    Clusters,
    /// An administrator set the server's log level; the key is the level.
    LogLevel,
    /// Objects of a cluster changed; the key is `inventory::ObjectNotice` JSON (ids, and
    /// what a deleted object was).
    MeshSync,
}

/// Every topic, in declaration order (`topic as usize` is its place).
const TOPICS: [Topic; 9] = [
    Topic::Events,
    Topic::Designs,
    Topic::Prefs,
    Topic::Registry,
    Topic::Revoked,
    Topic::Perf,
    Topic::Clusters,
    Topic::LogLevel,
    Topic::MeshSync,
];

/// A notice as it travels (compact JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Wire {
    /// topic
    t: Topic,
    /// the replica that made the change
    r: String,
    /// key, by topic
    #[serde(default)]
    k: String,
}

/// What a subscriber of a topic hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Another replica changed what `key` names.
    Changed { key: String },
    /// Notices may have been lost (the listener reconnected): reread everything.
    Resync,
}

struct Inner {
    store: Store,
    replica: String,
    /// One channel per topic, at `topic as usize`.
    topics: [broadcast::Sender<Notice>; TOPICS.len()],
    /// The listener is connected (always true on SQLite: nothing to listen to).
    listening: AtomicBool,
    stop: tokio_util::sync::CancellationToken,
}

/// The notice bus; cheap to clone.
#[derive(Clone)]
pub struct Bus(Arc<Inner>);

impl Bus {
    /// The bus over `store`; on PostgreSQL it starts listening (and returns once the
    /// first LISTEN is in place, so nothing committed after start is missed).
    pub async fn start(store: Store) -> Result<Bus, crate::store::StoreError> {
        let postgres = store.engine() == crate::store::Engine::Postgres;
        let bus = Bus(Arc::new(Inner {
            store,
            replica: uuid::Uuid::new_v4().to_string(),
            topics: TOPICS.map(|_| broadcast::channel(1024).0),
            listening: AtomicBool::new(!postgres),
            stop: tokio_util::sync::CancellationToken::new(),
        }));
        if postgres {
            let listener = bus.0.store.listener(CHANNEL).await?;
            bus.0.listening.store(true, Ordering::Relaxed);
            tokio::spawn(bus.clone().listen(listener));
        }
        Ok(bus)
    }

    /// This replica's id (in every notice it sends).
    pub fn replica(&self) -> &str {
        &self.0.replica
    }

    /// Whether notices from other replicas are arriving (false while reconnecting).
    pub fn listening(&self) -> bool {
        self.0.listening.load(Ordering::Relaxed)
    }

    /// Notices of `topic` from other replicas.
    pub fn notices(&self, topic: Topic) -> broadcast::Receiver<Notice> {
        self.sender(topic).subscribe()
    }

    fn sender(&self, topic: Topic) -> &broadcast::Sender<Notice> {
        &self.0.topics[topic as usize]
    }

    /// Runs `handle` for every notice of `topic` from another replica, one at a time, on
    /// a task of its own, until the bus is closed. Notices this replica missed because it
    /// fell behind arrive as one `Resync`.
    pub fn on<F, Fut>(&self, topic: Topic, handle: F)
    where
        F: Fn(Notice) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let mut notices = self.notices(topic);
        let stop = self.0.stop.clone();
        tokio::spawn(async move {
            loop {
                let notice = tokio::select! {
                    _ = stop.cancelled() => return,
                    notice = notices.recv() => notice,
                };
                match notice {
                    Ok(notice) => handle(notice).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => handle(Notice::Resync).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// The notice's text for `topic` and `key`, from this replica.
    pub fn payload(&self, topic: Topic, key: &str) -> String {
        let wire = Wire {
            t: topic,
            r: self.0.replica.clone(),
            k: key.to_string(),
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Tells the other replicas that `key` of `topic` changed (after the change is
    /// committed). A failure is logged: the change itself has happened, and the other
    /// replicas' readers catch up when their listener resyncs.
    pub async fn publish(&self, topic: Topic, key: &str) {
        if self.0.store.engine() != crate::store::Engine::Postgres {
            return;
        }
        if let Err(e) = self
            .0
            .store
            .notify(CHANNEL, &self.payload(topic, key))
            .await
        {
            tracing::warn!(?topic, error = %e, "could not notify the other replicas");
        }
    }

    /// Stops listening (at shutdown).
    pub fn close(&self) {
        self.0.stop.cancel();
    }

    fn deliver(&self, payload: &str) {
        let Ok(wire) = serde_json::from_str::<Wire>(payload) else {
            tracing::debug!(payload, "ignoring a notice this version does not know");
            return;
        };
        if wire.r == self.0.replica {
            return; // our own: our subscribers heard it when we made the change
        }
        let _ = self.sender(wire.t).send(Notice::Changed { key: wire.k });
    }

    fn resync(&self) {
        for tx in &self.0.topics {
            let _ = tx.send(Notice::Resync);
        }
    }

    async fn listen(self, mut listener: sqlx::postgres::PgListener) {
        loop {
            let next = tokio::select! {
                _ = self.0.stop.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(notice)) => self.deliver(notice.payload()),
                // The connection was lost (a database restart): listen again on a new
                // one, then everyone rereads what they may have missed.
                Ok(None) | Err(_) => {
                    self.0.listening.store(false, Ordering::Relaxed);
                    tracing::warn!("lost the database notice connection; reconnecting");
                    let mut delay = Duration::from_millis(100);
                    listener = loop {
                        tokio::select! {
                            _ = self.0.stop.cancelled() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        match self.0.store.listener(CHANNEL).await {
                            Ok(l) => break l,
                            Err(e) => {
                                tracing::debug!(error = %e, "database notices: still reconnecting");
                                delay = (delay * 2).min(Duration::from_secs(2));
                            }
                        }
                    };
                    self.0.listening.store(true, Ordering::Relaxed);
                    tracing::info!("database notices: listening again");
                    self.resync();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_is_at_its_own_place() {
        for (i, t) in TOPICS.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}");
        }
    }

    #[test]
    fn a_notice_is_small_and_names_topic_replica_and_key() {
        let wire = Wire {
            t: Topic::Designs,
            r: uuid::Uuid::new_v4().to_string(),
            k: "a".repeat(200),
        };
        let text = serde_json::to_string(&wire).unwrap();
        assert!(text.len() < 8000 / 2, "{}", text.len());
        let back: Wire = serde_json::from_str(&text).unwrap();
        assert_eq!((back.t, back.k.len()), (Topic::Designs, 200));
        assert!(text.starts_with(r#"{"t":"designs","r":""#), "{text}");
    }
}

//! User preferences: stored per user, merged on update, changes broadcast to subscribers.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;

use crate::bus::{Bus, Notice, Topic};
use crate::events::{Events, NewEvent};
use crate::models::{EventSeverity, UserPrefs, UserPrefsUpdate};
use crate::session::Session;
use crate::store::{Store, StoredDoc};

/// Why preferences could not be read or saved (a 500 at the boundary; the cause is logged).
#[derive(Debug, thiserror::Error)]
pub enum PrefsError {
    #[error("reading preferences: {0}")]
    Read(crate::store::StoreError),
    #[error("decoding stored preferences: {0}")]
    Decode(serde_json::Error),
    #[error("encoding preferences: {0}")]
    Encode(serde_json::Error),
    #[error("saving preferences: {0}")]
    Save(crate::store::StoreError),
}

pub struct Prefs {
    store: Store,
    bus: Bus,
    changes: broadcast::Sender<Change>,
    events: Events,
}

/// A change subscribers hear.
#[derive(Clone, Debug)]
pub enum Change {
    /// The preferences an owner ([`Session::owner`]) saved, on this or another replica.
    Saved(String, UserPrefs),
    /// Changes may have been missed (another replica's notices were lost): reread.
    Resync,
}

pub fn defaults() -> UserPrefs {
    UserPrefs {
        anonymous_usage_stats: true,
        anonymous_perf_results: true,
        users_extension_preferences: Default::default(),
        dashboard_preferences: Default::default(),
        updated_at: None,
    }
}

fn decode(stored: Option<StoredDoc>) -> Result<UserPrefs, PrefsError> {
    match stored {
        None => Ok(defaults()),
        Some(StoredDoc { doc, updated_at }) => {
            let mut prefs: UserPrefs = serde_json::from_str(&doc).map_err(PrefsError::Decode)?;
            prefs.updated_at = chrono::DateTime::parse_from_rfc3339(&updated_at)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc));
            Ok(prefs)
        }
    }
}

/// Applies an update to preferences (`null` in extension preferences removes a key).
fn merge(mut prefs: UserPrefs, update: UserPrefsUpdate) -> UserPrefs {
    if let Some(v) = update.anonymous_usage_stats {
        prefs.anonymous_usage_stats = v;
    }
    if let Some(v) = update.anonymous_perf_results {
        prefs.anonymous_perf_results = v;
    }
    if let Some(ext) = update.users_extension_preferences {
        for (key, value) in ext {
            if value.is_null() {
                prefs.users_extension_preferences.remove(&key);
            } else {
                prefs.users_extension_preferences.insert(key, value);
            }
        }
    }
    if let Some(dashboard) = update.dashboard_preferences {
        prefs.dashboard_preferences = dashboard;
    }
    prefs
}

impl Prefs {
    pub fn new(store: Store, events: Events, bus: Bus) -> Self {
        let changes = broadcast::channel(64).0;
        // Another replica saved an owner's preferences: read them, tell our subscribers.
        let (forward, reader) = (changes.clone(), store.clone());
        bus.on(Topic::Prefs, move |notice| {
            let (forward, reader) = (forward.clone(), reader.clone());
            async move {
                let change = match notice {
                    Notice::Resync => Change::Resync,
                    Notice::Changed { key } => match reader.user_prefs(&key).await {
                        Ok(stored) => match decode(stored) {
                            Ok(prefs) => Change::Saved(key, prefs),
                            Err(e) => {
                                tracing::warn!(error = %e, "another replica's preferences");
                                return;
                            }
                        },
                        Err(_) => Change::Resync,
                    },
                };
                let _ = forward.send(change);
            }
        });
        Prefs {
            store,
            bus,
            events,
            changes,
        }
    }

    /// The preferences of the session's user (owner: provider and user id).
    pub async fn get(&self, session: &Session) -> Result<UserPrefs, PrefsError> {
        let stored = self
            .store
            .user_prefs(&session.owner())
            .await
            .map_err(PrefsError::Read)?;
        decode(stored)
    }

    /// Merges `update` into the stored preferences and returns the result. The read,
    /// merge and write are one transaction, so concurrent updates (on any replica) do not
    /// lose each other's fields.
    pub async fn update(
        &self,
        session: &Session,
        update: UserPrefsUpdate,
    ) -> Result<UserPrefs, PrefsError> {
        let owner = session.owner();
        let now = chrono::Utc::now();
        let mut saved = None;
        self.store
            .modify_user_prefs(&owner, |current| {
                let mut prefs = merge(decode(current)?, update);
                prefs.updated_at = Some(now);
                let doc = serde_json::to_string(&prefs).map_err(PrefsError::Encode)?;
                saved = Some(prefs);
                Ok::<_, PrefsError>(StoredDoc {
                    doc,
                    updated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                })
            })
            .await
            .map_err(PrefsError::Save)??;
        let prefs = saved.unwrap_or_else(defaults);
        self.bus.publish(Topic::Prefs, &owner).await;
        // No subscriber is not an error.
        let _ = self.changes.send(Change::Saved(owner, prefs.clone()));
        let event = NewEvent::new(
            "user",
            "update_preferences",
            EventSeverity::Informational,
            "Preferences updated",
        );
        self.events.note(session, event).await;
        Ok(prefs)
    }

    /// The user's preferences now, then after each change (on any replica). A subscriber
    /// that missed changes is sent the current state, which is all a change carries.
    pub fn follow(&self, session: &Session) -> BoxStream<'static, Result<UserPrefs, PrefsError>> {
        // Subscribe before reading, so no change between the two is missed.
        let changes = self.changes.subscribe();
        let (store, owner) = (self.store.clone(), session.owner());
        let current = |store: Store, owner: String| async move {
            decode(store.user_prefs(&owner).await.map_err(PrefsError::Read)?)
        };
        let first = current(store.clone(), owner.clone());
        let rest = futures_util::stream::unfold(
            (changes, store, owner),
            move |(mut changes, store, owner)| async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    let item = match changes.recv().await {
                        Ok(Change::Saved(o, prefs)) if o == owner => Ok(prefs),
                        Ok(Change::Saved(..)) => continue,
                        Ok(Change::Resync) | Err(RecvError::Lagged(_)) => {
                            current(store.clone(), owner.clone()).await
                        }
                        Err(RecvError::Closed) => return None,
                    };
                    return Some((item, (changes, store, owner)));
                }
            },
        );
        futures_util::stream::once(first).chain(rest).boxed()
    }
}

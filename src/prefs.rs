//! User preferences: stored per user, merged on update, changes broadcast to subscribers.

use tokio::sync::{Mutex, broadcast};

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
    /// Serialises read-merge-write so concurrent updates do not lose fields.
    write: Mutex<()>,
    changes: broadcast::Sender<(String, UserPrefs)>,
    events: Events,
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

impl Prefs {
    pub fn new(store: Store, events: Events) -> Self {
        Prefs {
            store,
            events,
            write: Mutex::new(()),
            changes: broadcast::channel(64).0,
        }
    }

    /// The preferences of the session's user (owner: provider and user id).
    pub async fn get(&self, session: &Session) -> Result<UserPrefs, PrefsError> {
        self.get_owned(&session.owner()).await
    }

    async fn get_owned(&self, owner: &str) -> Result<UserPrefs, PrefsError> {
        let stored = self
            .store
            .user_prefs(owner)
            .await
            .map_err(PrefsError::Read)?;
        match stored {
            None => Ok(defaults()),
            Some(StoredDoc { doc, updated_at }) => {
                let mut prefs: UserPrefs =
                    serde_json::from_str(&doc).map_err(PrefsError::Decode)?;
                prefs.updated_at = chrono::DateTime::parse_from_rfc3339(&updated_at)
                    .ok()
                    .map(|t| t.with_timezone(&chrono::Utc));
                Ok(prefs)
            }
        }
    }

    /// Merges `update` into the stored preferences and returns the result.
    pub async fn update(
        &self,
        session: &Session,
        update: UserPrefsUpdate,
    ) -> Result<UserPrefs, PrefsError> {
        let owner = session.owner();
        let _guard = self.write.lock().await;
        let mut prefs = self.get_owned(&owner).await?;
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
        let now = chrono::Utc::now();
        prefs.updated_at = Some(now);
        let doc = serde_json::to_string(&prefs).map_err(PrefsError::Encode)?;
        self.store
            .put_user_prefs(
                &owner,
                &StoredDoc {
                    doc,
                    updated_at: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                },
            )
            .await
            .map_err(PrefsError::Save)?;
        // No subscriber is not an error.
        let _ = self.changes.send((owner, prefs.clone()));
        let event = NewEvent::new(
            "user",
            "update_preferences",
            EventSeverity::Informational,
            "Preferences updated",
        );
        self.events.note(session, event).await;
        Ok(prefs)
    }

    /// Every saved change with its owner ([`Session::owner`]); subscribers filter by it.
    pub fn changes(&self) -> broadcast::Receiver<(String, UserPrefs)> {
        self.changes.subscribe()
    }
}

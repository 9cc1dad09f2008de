//! User preferences: stored per user, merged on update, changes broadcast to subscribers.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;

use crate::bus::{Bus, Notice, Topic};
use crate::events::{Events, NewEvent};
use crate::models::{EventSeverity, LoadTestPrefs, LoadTestPrefsGen, UserPrefs, UserPrefsUpdate};
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
    /// (Shared: every subscriber of the broadcast gets the same copy.)
    Saved(String, std::sync::Arc<UserPrefs>),
    /// Changes may have been missed (another replica's notices were lost): reread.
    Resync,
}

pub fn defaults() -> UserPrefs {
    UserPrefs {
        anonymous_usage_stats: true,
        anonymous_perf_results: true,
        users_extension_preferences: Default::default(),
        dashboard_preferences: Default::default(),
        load_test_prefs: LoadTestPrefs {
            c: std::num::NonZeroU64::MIN,
            qps: 0,
            t: "30s".parse().expect("a duration"),
            gen_: LoadTestPrefsGen::Fortio,
        },
        mesh_adapters: Vec::new(),
        selected_organization_id: None,
        selected_workspace_for_organizations: Default::default(),
        remote_provider_preferences: Default::default(),
        updated_at: None,
    }
}

/// Stored preferences over the defaults, so that fields added since they were saved get
/// their default.
fn decode(stored: Option<StoredDoc>) -> Result<UserPrefs, PrefsError> {
    match stored {
        None => Ok(defaults()),
        Some(StoredDoc { doc, updated_at }) => {
            let saved: serde_json::Value =
                serde_json::from_str(&doc).map_err(PrefsError::Decode)?;
            let mut merged = serde_json::to_value(defaults()).map_err(PrefsError::Encode)?;
            if let (Some(merged), serde_json::Value::Object(saved)) =
                (merged.as_object_mut(), saved)
            {
                merged.extend(saved);
            }
            let mut prefs: UserPrefs =
                serde_json::from_value(merged).map_err(PrefsError::Decode)?;
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
    if let Some(load) = update.load_test_prefs {
        if let Some(c) = load.c {
            prefs.load_test_prefs.c = c;
        }
        if let Some(qps) = load.qps {
            prefs.load_test_prefs.qps = qps;
        }
        if let Some(t) = load.t.and_then(|t| t.parse().ok()) {
            prefs.load_test_prefs.t = t;
        }
        if let Some(generator) = load.gen_.and_then(|g| g.to_string().parse().ok()) {
            prefs.load_test_prefs.gen_ = generator;
        }
    }
    if let Some(org) = update.selected_organization_id {
        prefs.selected_organization_id = Some(org.to_string()).filter(|o| !o.is_empty());
    }
    if let Some(workspaces) = update.selected_workspace_for_organizations {
        for (org, workspace) in workspaces {
            match workspace {
                Some(w) => {
                    prefs
                        .selected_workspace_for_organizations
                        .insert(org, w.to_string());
                }
                None => {
                    prefs.selected_workspace_for_organizations.remove(&org);
                }
            }
        }
    }
    if let Some(remote) = update.remote_provider_preferences {
        for (key, value) in remote {
            if value.is_null() {
                prefs.remote_provider_preferences.remove(&key);
            } else {
                prefs.remote_provider_preferences.insert(key, value);
            }
        }
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
                            Ok(prefs) => Change::Saved(key, std::sync::Arc::new(prefs)),
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
        let _ = self
            .changes
            .send(Change::Saved(owner, std::sync::Arc::new(prefs.clone())));
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
                        Ok(Change::Saved(o, prefs)) if o == owner => {
                            Ok(std::sync::Arc::unwrap_or_clone(prefs))
                        }
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

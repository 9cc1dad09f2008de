//! How long stored events and load-test results are kept: by age, and by count per user
//! (the newest are kept). A background task applies the limits at start and then every
//! interval; on several replicas each one does, and the deletes are idempotent. Load-test
//! run frames have their own short life (`perf`), and designs, profiles and preferences
//! are the user's to delete.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::store::{Store, StoreError, stamp};

/// The limits; `None` keeps without that limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub events_max_age: Option<Duration>,
    pub events_max_per_user: Option<u64>,
    pub results_max_age: Option<Duration>,
    pub results_max_per_user: Option<u64>,
    /// How often the limits are applied.
    pub interval: Duration,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for Limits {
    /// A small server's database stays bounded: 30 days and 10,000 events per user,
    /// a year and 1,000 load-test results per user, checked hourly.
    fn default() -> Self {
        Limits {
            events_max_age: Some(30 * DAY),
            events_max_per_user: Some(10_000),
            results_max_age: Some(365 * DAY),
            results_max_per_user: Some(1_000),
            interval: Duration::from_secs(3600),
        }
    }
}

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub results: u64,
}

pub struct Retention {
    store: Store,
    limits: Limits,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Retention {
    /// Starts applying `limits` in the background (first pass now).
    pub fn start(store: Store, limits: Limits) -> Arc<Retention> {
        let retention = Arc::new(Retention {
            store,
            limits,
            task: Default::default(),
        });
        let weak = Arc::downgrade(&retention);
        let task = tokio::spawn(run(weak, retention.limits.interval));
        *retention.task.lock() = Some(task);
        retention
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// One pass as of `now`: what is older than the age limits, and what is past each
    /// user's count limits, goes.
    pub async fn apply(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Pruned, StoreError> {
        let before = |age: Option<Duration>| {
            age.and_then(|a| chrono::Duration::from_std(a).ok())
                .and_then(|a| now.checked_sub_signed(a))
                .map(stamp)
        };
        let keep = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let l = &self.limits;
        Ok(Pruned {
            events: self
                .store
                .prune_events(
                    before(l.events_max_age).as_deref(),
                    keep(l.events_max_per_user),
                )
                .await?,
            results: self
                .store
                .prune_perf_results(
                    before(l.results_max_age).as_deref(),
                    keep(l.results_max_per_user),
                )
                .await?,
        })
    }

    /// Stops the background task (shutdown).
    pub fn stop(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The background passes; holds the service weakly, so dropping it ends them.
async fn run(retention: Weak<Retention>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(retention) = retention.upgrade() else {
            return;
        };
        match retention.apply(chrono::Utc::now()).await {
            Ok(p) if p == Pruned::default() => {}
            Ok(p) => tracing::info!(
                events = p.events,
                results = p.results,
                "retention removed old data"
            ),
            Err(e) => tracing::warn!(error = %e, "retention pass failed; next pass retries"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventRow;

    async fn event(store: &Store, owner: &str, n: usize, at: &str) {
        let id = format!("{owner}-{n}");
        let row = EventRow {
            id: &id,
            owner,
            description: &id,
            category: "test",
            action: "test",
            severity: "info",
            status: "unread",
            doc: "{}",
            created_at: at,
        };
        store.insert_event(&row, "meshery", "").await.unwrap();
    }

    #[tokio::test]
    async fn passes_delete_in_batches_per_user_and_by_age() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(&crate::store::default_url(home.path()), None)
            .await
            .unwrap();
        let old = stamp(chrono::Utc::now() - chrono::Duration::days(2));
        let new = stamp(chrono::Utc::now());
        // More than two batches past the limit for one user; another user within it.
        for n in 0..2_110 {
            event(&store, "many", n, &new).await;
        }
        for n in 0..3 {
            event(&store, "few", n, &old).await;
        }
        let limits = Limits {
            events_max_age: None,
            events_max_per_user: Some(10),
            results_max_age: None,
            results_max_per_user: None,
            interval: Duration::from_secs(3600),
        };
        let retention = Retention {
            store: store.clone(),
            limits: limits.clone(),
            task: Default::default(),
        };
        let now = chrono::Utc::now();
        assert_eq!(retention.apply(now).await.unwrap().events, 2_100);
        assert_eq!(retention.apply(now).await.unwrap().events, 0);
        // What is left: 10 of one user and the other's 3, older as they are.
        assert_eq!(store.prune_events(None, Some(0)).await.unwrap(), 13);
        // By age alone: only what is older goes.
        for n in 0..3 {
            event(&store, "few", n + 10, &old).await;
            event(&store, "many", n + 10_000, &new).await;
        }
        let by_age = Retention {
            store: store.clone(),
            limits: Limits {
                events_max_age: Some(Duration::from_secs(24 * 3600)),
                events_max_per_user: None,
                ..limits
            },
            task: Default::default(),
        };
        assert_eq!(by_age.apply(now).await.unwrap().events, 3);
        assert_eq!(store.prune_events(None, Some(0)).await.unwrap(), 3);
        store.close().await;
    }
}

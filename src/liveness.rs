//! When a remote session ends, for the streams that outlive the request that opened them
//! (SSE, GraphQL over WebSocket): at the token's `exp`, at a logout or revocation here or
//! on another replica, or when the provider no longer confirms the token.
//!
//! One watcher task per token, shared by every stream opened with it: it sleeps until the
//! token's expiry or until its cached confirmation goes stale (the interval a request
//! would be trusted without asking the provider), then confirms again, as a request would.
//! Streams wait on a `watch` channel; the task ends when the last of them is gone. The
//! Local provider's sessions have neither expiry nor revocation: they watch nothing.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::remote::{Remote, TokenRejected, token_key};
use crate::session::Session;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The token's `exp` passed.
    Expired,
    /// Logged out or revoked (here, on another replica, or at the provider).
    Revoked,
    /// The provider could not be asked whether the token is still active.
    Unconfirmed,
}

impl Ended {
    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Ended::Expired => "the session ended: the token expired",
            Ended::Revoked => "the session ended: the token was logged out or revoked",
            Ended::Unconfirmed => "the session ended: the provider could not confirm the token",
        }
    }
}

/// A stream's wait for its session's end.
pub type SessionEnd = BoxFuture<'static, Ended>;

type Slot = watch::Sender<Option<Ended>>;
type Slots = Mutex<HashMap<[u8; 32], Slot>>;

/// The watchers of the tokens streams are open with.
pub struct Watchers {
    slots: Arc<Slots>,
    /// Bumped when revocations may have been missed (the notice connection came back):
    /// every watcher confirms its token again at once.
    recheck: watch::Sender<u64>,
}

impl Default for Watchers {
    fn default() -> Self {
        Watchers {
            slots: Arc::default(),
            recheck: watch::channel(0).0,
        }
    }
}

impl Watchers {
    /// The end of a remote session, shared with every other stream of the same token.
    pub fn watch(&self, remote: &Arc<Remote>, session: &Session) -> Option<SessionEnd> {
        let (Some(token), Some(expires_at)) = (session.token.as_ref(), session.expires_at) else {
            return None;
        };
        let key = token_key(token);
        let mut ends = {
            let mut slots = self.slots.lock();
            // A slot with a verdict is a watcher on its way out: its verdict was about
            // the token as it was then, so a new stream gets a watcher of its own.
            match slots.get(&key).filter(|slot| slot.borrow().is_none()) {
                Some(slot) => slot.subscribe(),
                None => {
                    let (slot, ends) = watch::channel(None);
                    let watcher = Watcher {
                        remote: remote.clone(),
                        token: token.clone(),
                        key,
                        expires_at,
                        slot: slot.clone(),
                        slots: Arc::downgrade(&self.slots),
                        recheck: self.recheck.subscribe(),
                    };
                    slots.insert(key, slot);
                    tokio::spawn(watcher.run());
                    ends
                }
            }
        };
        Some(Box::pin(async move {
            loop {
                if let Some(why) = *ends.borrow_and_update() {
                    return why;
                }
                if ends.changed().await.is_err() {
                    // The watcher is gone without a verdict (shutdown): the stream goes on
                    // until the server stops it.
                    return std::future::pending().await;
                }
            }
        }))
    }

    /// Ends every stream of the token with this key (logged out here or elsewhere).
    pub fn end(&self, key: &[u8; 32], why: Ended) {
        if let Some(slot) = self.slots.lock().remove(key) {
            slot.send_replace(Some(why));
        }
    }

    /// Has every watcher confirm its token now (revocation notices may have been missed).
    pub fn recheck_all(&self) {
        self.recheck.send_modify(|n| *n += 1);
    }

    /// Tokens watched now.
    pub fn watched(&self) -> usize {
        self.slots.lock().len()
    }
}

struct Watcher {
    remote: Arc<Remote>,
    token: String,
    key: [u8; 32],
    expires_at: i64,
    slot: Slot,
    slots: Weak<Slots>,
    recheck: watch::Receiver<u64>,
}

impl Watcher {
    async fn run(mut self) {
        let expiry = deadline_of(self.expires_at);
        let mut next = self.next_check(self.remote.cached_until(&self.token));
        let why = loop {
            tokio::select! {
                _ = self.slot.closed() => {
                    if self.forget_if_unwatched() {
                        return;
                    }
                    // A stream joined as the last one left: watch on. `closed` resolves
                    // again only once it is gone too.
                    continue;
                }
                _ = tokio::time::sleep_until(expiry) => break Ended::Expired,
                _ = tokio::time::sleep_until(next) => {}
                Ok(()) = self.recheck.changed() => {}
            }
            match self.remote.confirmed_until(&self.token).await {
                Ok(until) => next = self.next_check(Some(until)),
                Err(TokenRejected::Unconfirmed) => break Ended::Unconfirmed,
                Err(TokenRejected::Invalid { .. } | TokenRejected::Inactive) => {
                    break if Instant::now() >= expiry {
                        Ended::Expired
                    } else {
                        Ended::Revoked
                    };
                }
            }
        };
        self.slot.send_replace(Some(why));
        if let Some(slots) = self.slots.upgrade() {
            let mut slots = slots.lock();
            if slots
                .get(&self.key)
                .is_some_and(|s| s.same_channel(&self.slot))
            {
                slots.remove(&self.key);
            }
        }
    }

    /// Removes this watcher's slot if no stream waits on it any more.
    fn forget_if_unwatched(&self) -> bool {
        let Some(slots) = self.slots.upgrade() else {
            return true;
        };
        let mut slots = slots.lock();
        // Under the lock no stream can subscribe in between.
        if self.slot.receiver_count() > 0 {
            return false;
        }
        if slots
            .get(&self.key)
            .is_some_and(|s| s.same_channel(&self.slot))
        {
            slots.remove(&self.key);
        }
        true
    }

    /// When to confirm the token again: once its confirmation goes stale, and never
    /// sooner than a second from now (a provider answering with no time to trust).
    fn next_check(&self, until: Option<std::time::Instant>) -> Instant {
        let soonest = Instant::now() + Duration::from_secs(1);
        match until {
            Some(until) => Instant::from_std(until).max(soonest),
            None => soonest,
        }
    }
}

/// The instant a Unix time `exp` (seconds) falls at on this machine's clock.
fn deadline_of(exp: i64) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let left = exp.saturating_mul(1000).saturating_sub(now_ms).max(0);
    Instant::now() + Duration::from_millis(left as u64)
}

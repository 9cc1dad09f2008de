//! Shared subscription executions: subscribers of the same subscription (same owner,
//! query, operation and variables) share one execution; its answers are serialized once
//! and sent to every subscriber, and it stops when its last subscriber leaves. Used by
//! `gql_ws` for the root fields in `gql_ws::SHARED`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use futures_util::stream::{self, BoxStream, StreamExt};
use parking_lot::Mutex;
use tokio::sync::broadcast;

/// Answers a shared execution keeps for a subscriber that is slower than the others;
/// past that it skips the oldest, as the event broadcast behind it does.
const GROUP_BACKLOG: usize = 256;

/// What makes two subscriptions the same execution.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub owner: String,
    pub query: String,
    pub operation: Option<String>,
    pub variables: String,
}

/// The shared executions running now, by what they execute.
#[derive(Default)]
pub struct Groups(Arc<Mutex<HashMap<GroupKey, Weak<Group>>>>);

/// One shared execution: a task runs it and sends each serialized answer to every
/// subscriber. It ends when its last subscriber is dropped.
struct Group {
    key: GroupKey,
    home: Weak<Mutex<HashMap<GroupKey, Weak<Group>>>>,
    /// Only the execution's task holds the sender: when it ends (or panics) the channel
    /// closes, its subscribers see the end, and a new subscriber starts a new execution.
    tx: broadcast::WeakSender<Arc<str>>,
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
    pub fn join(
        &self,
        key: GroupKey,
        execute: impl FnOnce() -> BoxStream<'static, async_graphql::Response>,
    ) -> BoxStream<'static, Arc<str>> {
        // Groups are dropped and executions started only after the lock is released: a
        // group's drop takes the lock, and nothing that can fail runs under it.
        let mut ended = None;
        let (group, rx, start) = {
            let mut map = self.0.lock();
            let live = map.get(&key).and_then(Weak::upgrade);
            let joined = live
                .as_ref()
                .and_then(|g| g.tx.upgrade())
                .map(|tx| tx.subscribe());
            match (live, joined) {
                (Some(group), Some(rx)) => (group, rx, None),
                (live, _) => {
                    ended = live;
                    let (tx, rx) = broadcast::channel(GROUP_BACKLOG);
                    let group = Arc::new(Group {
                        key: key.clone(),
                        home: Arc::downgrade(&self.0),
                        tx: tx.downgrade(),
                        failed: OnceLock::new(),
                        task: Mutex::new(None),
                    });
                    map.insert(key, Arc::downgrade(&group));
                    (group, rx, Some(tx))
                }
            }
        };
        drop(ended);
        if let Some(tx) = start {
            let task = tokio::spawn(produce(execute(), tx, Arc::downgrade(&group)));
            *group.task.lock() = Some(task.abort_handle());
        }
        member(group, rx)
    }

    /// Shared executions running now.
    #[cfg(test)]
    fn running(&self) -> usize {
        self.0
            .lock()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

/// An answer as JSON text, as it goes into a `next` message.
pub fn serialize(response: &async_graphql::Response) -> Arc<str> {
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
    // Set before the sender is dropped, so a subscriber that sees the end sees it.
    if let (1, Some(text), Some(group)) = (sent, first_failed, group.upgrade()) {
        let _ = group.failed.set(text);
    }
    drop(tx);
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

    #[tokio::test]
    async fn a_panicking_execution_ends_its_subscribers_and_is_not_joined_again() {
        let groups = Groups::default();
        let mut a = groups.join(key("alice"), || {
            futures_util::stream::poll_fn(|_| -> std::task::Poll<Option<async_graphql::Response>> {
                panic!("a resolver bug")
            })
            .boxed()
        });
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), a.next())
                .await
                .unwrap(),
            None,
            "the subscriber sees the end instead of waiting forever"
        );
        let started = AtomicUsize::new(0);
        let _b = groups.join(key("alice"), || {
            started.fetch_add(1, Ordering::SeqCst);
            futures_util::stream::pending().boxed()
        });
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "a new execution, not the dead one"
        );
    }
}

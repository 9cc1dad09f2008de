//! Limits on GraphQL work a client can ask for: depth and complexity (async-graphql's),
//! aliases per document and open subscriptions per user, both checked by the transports
//! (`gql` over HTTP, `gql_ws`).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    /// Each selected field counts 1.
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_subscriptions_per_user: usize,
    /// Time a WebSocket has to send `connection_init` (then closed with 4408).
    pub ws_init_timeout: std::time::Duration,
    /// A WebSocket is pinged at this interval, and closed when nothing at all (a pong, a
    /// message) arrived for two of them: a peer that vanished without closing would
    /// otherwise hold its task and its subscription slots forever.
    pub ws_keepalive: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_complexity: 1000,
            max_aliases: 30,
            max_subscriptions_per_user: 64,
            ws_init_timeout: std::time::Duration::from_secs(10),
            ws_keepalive: std::time::Duration::from_secs(30),
        }
    }
}

fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node)
            }
            Selection::InlineFragment(i) => aliases(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| aliases(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| aliases(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

/// Refuses documents with more aliased fields than `max`: aliases let one small query ask
/// for the same expensive field many times over. Checked by the transports on the parsed
/// document (counted once per cached document), not as an async-graphql extension: with
/// any extension installed, async-graphql runs every field through the extension chain.
pub fn check_aliases(aliases: usize, max: usize) -> Result<(), String> {
    if aliases > max {
        return Err(format!(
            "the document has {aliases} aliases; the limit is {max}"
        ));
    }
    Ok(())
}

/// Counts each user's open subscriptions (over all their WebSockets, shared executions
/// counted once per subscriber) and refuses one past the limit; the others keep running.
pub struct SubscriptionLimit {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open subscription; dropped with it.
#[derive(Debug)]
pub struct Held {
    owner: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut m = self.open.lock();
        if let Some(n) = m.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.owner);
            }
        }
    }
}

impl SubscriptionLimit {
    pub fn new(max: usize) -> Self {
        SubscriptionLimit {
            max,
            open: Arc::default(),
        }
    }

    /// Admits one more subscription of `owner`, or says why not (the GraphQL error text).
    pub fn admit(&self, owner: &str) -> Result<Held, String> {
        let mut m = self.open.lock();
        let n = m.get(owner).copied().unwrap_or(0);
        if n >= self.max {
            return Err(format!(
                "you have {} subscriptions open, the limit; end one first",
                self.max
            ));
        }
        m.insert(owner.to_string(), n + 1);
        Ok(Held {
            owner: owner.to_string(),
            open: self.open.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{SubscriptionLimit, count_aliases};

    #[test]
    fn subscriptions_are_admitted_per_owner_up_to_the_limit_and_freed_on_drop() {
        let limit = SubscriptionLimit::new(2);
        let a1 = limit.admit("a").unwrap();
        let _a2 = limit.admit("a").unwrap();
        assert!(limit.admit("a").unwrap_err().contains("2 subscriptions"));
        let _b = limit.admit("b").expect("another owner has its own count");
        drop(a1);
        assert!(
            limit.admit("a").is_ok(),
            "a closed subscription frees its place"
        );
    }

    #[test]
    fn aliases_are_counted_in_operations_fragments_and_nested_fields() {
        let doc = async_graphql::parser::parse_query(
            "query { a: version { b: build } version { build } ...F } \
             fragment F on Query { c: user { id } d: user { e: id } }",
        )
        .unwrap();
        assert_eq!(count_aliases(&doc), 5);
    }
}

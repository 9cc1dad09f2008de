//! Limits on GraphQL work a client can ask for: depth and complexity (async-graphql's),
//! aliases per document, and open subscriptions per user (both as extensions).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextSubscribe,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, Variables};
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::session::Session;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    /// Each selected field counts 1.
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_subscriptions_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_complexity: 1000,
            max_aliases: 30,
            max_subscriptions_per_user: 64,
        }
    }
}

/// Refuses documents with more aliased fields than the limit: aliases let one small
/// query ask for the same expensive field many times over.
pub struct AliasLimit(pub usize);

struct AliasCheck(usize);

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasCheck(self.0))
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

fn count_aliases(doc: &ExecutableDocument) -> usize {
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

#[async_graphql::async_trait::async_trait]
impl Extension for AliasCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let n = count_aliases(&doc);
        if n > self.0 {
            return Err(ServerError::new(
                format!("the document has {n} aliases; the limit is {}", self.0),
                None,
            ));
        }
        Ok(doc)
    }
}

/// Counts each user's open subscriptions (over all their WebSockets) and refuses one past
/// the limit with a GraphQL error; the others keep running.
#[derive(Clone)]
pub struct SubscriptionLimit {
    max: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl SubscriptionLimit {
    pub fn new(max: usize) -> Self {
        SubscriptionLimit {
            max,
            open: Arc::default(),
        }
    }

    /// Subscriptions `owner` holds open now.
    pub fn open(&self, owner: &str) -> usize {
        self.open.lock().get(owner).copied().unwrap_or(0)
    }
}

/// One open subscription; dropped with its stream.
struct Held {
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

impl ExtensionFactory for SubscriptionLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for SubscriptionLimit {
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let Some(owner) = ctx.data_opt::<Session>().map(Session::owner) else {
            // Unauthenticated subscriptions fail in their resolver.
            return next.run(ctx, stream);
        };
        let admitted = {
            let mut m = self.open.lock();
            let n = m.entry(owner.clone()).or_insert(0);
            if *n >= self.max {
                false
            } else {
                *n += 1;
                true
            }
        };
        if !admitted {
            let error = ServerError::new(
                format!(
                    "you have {} subscriptions open, the limit; end one first",
                    self.max
                ),
                None,
            );
            return stream::once(async move { Response::from_errors(vec![error]) }).boxed();
        }
        let held = Held {
            owner,
            open: self.open.clone(),
        };
        next.run(ctx, stream)
            .map(move |response| {
                let _ = &held;
                response
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::count_aliases;

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

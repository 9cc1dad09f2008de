//! Implementations of the generated REST traits, one module per tag.

/// The listing parameters every list operation takes.
macro_rules! listing_of {
    ($r:expr) => {
        crate::store::listing(
            $r.page,
            $r.pagesize.as_deref().or($r.page_size.as_deref()),
            $r.search.clone(),
            $r.order.as_deref(),
            $r.from,
            $r.to,
        )
    };
}

/// A path segment or RFC 5987 value: unreserved bytes as they are, others `%XX`.
pub(crate) fn percent_encode(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

mod connections;
mod credentials;
mod events;
mod extensions;
mod identity;
mod kubernetes;
mod meshsync;
mod pattern;
mod perf;
mod provider;
mod registry;
pub(crate) mod system;
mod tenancy;
pub(crate) mod user;

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};

use crate::generated::rest::rt;
use crate::liveness::{Ended, SessionEnd};

/// The SSE event type of the last frame of a stream whose session ended; its data is the
/// MeshKit error saying why.
pub const SESSION_ENDED: &str = "session-ended";

/// `frames` until the session that opened them ends (token expiry, logout, revocation):
/// then one `session-ended` event saying why, and the stream closes. A session that
/// never ends by itself (Local) passes the frames through untouched.
pub(crate) fn until_session_ends(
    app: &crate::app::App,
    session: &crate::session::Session,
    frames: rt::EventStream,
) -> rt::EventStream {
    match app.providers.session_end(session) {
        None => frames,
        Some(end) => UntilEnded {
            frames,
            end: Some(end),
        }
        .boxed(),
    }
}

struct UntilEnded {
    frames: rt::EventStream,
    /// `None` once the last frame was sent.
    end: Option<SessionEnd>,
}

impl Stream for UntilEnded {
    type Item = rt::SseFrame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<rt::SseFrame>> {
        let Some(end) = self.end.as_mut() else {
            return Poll::Ready(None);
        };
        // The end first: a busy stream must not outlive its session.
        if let Poll::Ready(why) = end.as_mut().poll(cx) {
            self.end = None;
            return Poll::Ready(Some(ended_frame(why)));
        }
        self.frames.poll_next_unpin(cx)
    }
}

/// The last frame of a stream whose session ended.
fn ended_frame(why: Ended) -> rt::SseFrame {
    let error = crate::error::ApiError::unauthorized(why.message()).remedy(
        "Reconnect with a fresh token; an event stream resumes after the Last-Event-ID it was sent.",
    );
    let json = serde_json::to_string(&error.body()).unwrap_or_else(|_| "{}".into());
    rt::SseFrame::named(SESSION_ENDED, &json)
}

/// The SSE frames of a value followed by `gql_clusters::follow` (errors after the first
/// are logged and skipped: the stream goes on with the next change).
pub(crate) fn frames_of(
    values: futures_util::stream::BoxStream<
        'static,
        Result<std::sync::Arc<String>, crate::error::ApiError>,
    >,
) -> rt::EventStream {
    use futures_util::StreamExt;
    values
        .filter_map(|f| {
            std::future::ready(match f {
                Ok(text) => Some(rt::SseFrame::from_json(&text)),
                Err(e) => {
                    tracing::warn!(error = ?e, "live frame: could not read the state");
                    None
                }
            })
        })
        .boxed()
}

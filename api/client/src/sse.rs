//! Server-sent events from a response body (`text/event-stream`), for every client of the
//! workspace (the CLI's progress view, the tests): `eventsource-stream` parses the format
//! (CR, LF or CRLF line ends, comments, multi-line data, UTF-8 split across chunks).

pub use eventsource_stream::EventStreamError;
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt, stream};
use serde::de::DeserializeOwned;

/// Why an event stream could not be read as JSON frames.
#[derive(Debug, thiserror::Error)]
pub enum SseError<E: std::error::Error> {
    #[error("event stream: {0}")]
    Stream(#[from] EventStreamError<E>),
    #[error("event data is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The data of each event (its `data:` lines joined with `\n`); events without data, such
/// as keepalive comments, are skipped. A last event whose blank line never came still
/// counts: a stream that ends is done, and its last frame is often the result.
pub fn data_frames<S, B, E>(body: S) -> impl Stream<Item = Result<String, EventStreamError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    frames(body).map(|frame| frame.map(|f| f.data))
}

/// One event with data: its `id:` (the last one the stream gave, as the format says, or
/// none), its type (`event:`; none for the default, `message`) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// The type of the last event of a stream whose session ended (token expiry, logout,
/// revocation); its data is the MeshKit error saying why.
pub const SESSION_ENDED: &str = "session-ended";

/// Each event with data and its id (for clients that resume with `Last-Event-ID`); events
/// without data, such as keepalive comments, are skipped, and a last event whose blank
/// line never came still counts.
pub fn frames<S, B, E>(body: S) -> impl Stream<Item = Result<Frame, EventStreamError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    body.map(|chunk| chunk.map(|b| b.as_ref().to_vec()))
        .chain(stream::once(async { Ok(b"\n\n".to_vec()) }))
        .eventsource()
        .filter_map(|event| {
            std::future::ready(match event {
                Ok(e) if e.data.is_empty() => None,
                Ok(e) => Some(Ok(Frame {
                    id: (!e.id.is_empty()).then_some(e.id),
                    event: (!e.event.is_empty() && e.event != "message").then_some(e.event),
                    data: e.data,
                })),
                Err(e) => Some(Err(e)),
            })
        })
}

/// Each event's data decoded as JSON `T`.
pub fn json_frames<T, S, B, E>(body: S) -> impl Stream<Item = Result<T, SseError<E>>>
where
    T: DeserializeOwned,
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::error::Error,
{
    data_frames(body).map(|data| Ok(serde_json::from_str(&data?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> {
        stream::iter(parts.iter().map(|p| Ok(p.to_vec())).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn frames_survive_split_characters_crlf_comments_and_a_missing_last_blank_line() {
        // "é" is two bytes, split across chunks; a keepalive comment; CRLF line ends;
        // a two-line event; the last event has no blank line after it.
        let body = chunks(&[
            b": keepalive\n\ndata: caf\xc3",
            b"\xa9\r\n\r\ndata: one\ndata: two\n\n",
            b"data: last",
        ]);
        let frames: Vec<String> = data_frames(body)
            .map(|f| f.expect("a frame"))
            .collect()
            .await;
        assert_eq!(frames, ["café", "one\ntwo", "last"]);
    }

    #[tokio::test]
    async fn frames_carry_the_last_id_given() {
        let body = chunks(&[b"id: 7\ndata: a\n\ndata: b\n\nid: 9\ndata: c\n\n"]);
        let frames: Vec<Frame> = frames(body).map(|f| f.expect("a frame")).collect().await;
        let got: Vec<(Option<&str>, &str)> = frames
            .iter()
            .map(|f| (f.id.as_deref(), f.data.as_str()))
            .collect();
        // An event without `id:` keeps the stream's last id (the format's rule).
        assert_eq!(got, [(Some("7"), "a"), (Some("7"), "b"), (Some("9"), "c")]);
    }

    #[tokio::test]
    async fn frames_carry_their_type() {
        let body = chunks(&[b"data: a

event: message
data: b

event: session-ended
data: {}

"]);
        let frames: Vec<Frame> = frames(body).map(|f| f.expect("a frame")).collect().await;
        let types: Vec<Option<&str>> = frames.iter().map(|f| f.event.as_deref()).collect();
        assert_eq!(types, [None, None, Some(SESSION_ENDED)]);
    }

    #[tokio::test]
    async fn json_frames_decode_and_report_bad_data() {
        let body = chunks(&[b"data: {\"n\": 1}\n\ndata: nope\n\n"]);
        let frames: Vec<Result<serde_json::Value, _>> = json_frames(body).collect().await;
        assert_eq!(
            frames[0].as_ref().expect("json"),
            &serde_json::json!({"n": 1})
        );
        assert!(matches!(frames[1], Err(SseError::Json(_))));
    }
}

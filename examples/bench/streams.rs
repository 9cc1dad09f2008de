//! Live streams: memory per idle subscriber and event fan-out, over SSE and the GraphQL
//! WebSocket. Subscribers are raw sockets in this process (SSE) or tokio-tungstenite
//! (WebSocket); they look for a sequence number in each frame and note when it arrived.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Which stream a subscriber uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// `GET /api/system/events/subscribe`.
    Sse,
    /// `subscription { subscribeEvents { description } }` over graphql-transport-ws.
    Ws,
    /// The bare axum baseline's idle `/sse`.
    BareSse,
    /// The bare axum baseline's idle `/ws`.
    BareWs,
}

/// What the subscribers saw: how many have seen any event (event 0 is the barrier that
/// proves a subscription is live), and (sequence number, arrival) of every later one.
#[derive(Default)]
pub struct Arrivals {
    ready: AtomicUsize,
    seen: Mutex<Vec<(u32, Instant)>>,
    /// The waiter is woken when `seen` reaches this many (or on any change while it is 0),
    /// not on every arrival: the client's core is part of what is measured.
    wake_at: AtomicUsize,
    notify: Notify,
}

impl Arrivals {
    fn note(&self, seq: u32, first: &mut bool) {
        let mut wake = false;
        if seq > 0 {
            let mut seen = self.seen.lock();
            seen.push((seq, Instant::now()));
            wake = seen.len() >= self.wake_at.load(Ordering::Relaxed);
        }
        if std::mem::take(first) {
            self.ready.fetch_add(1, Ordering::Relaxed);
            wake = true;
        }
        if wake {
            self.notify.notify_one();
        }
    }

    /// Waits until `n` events have arrived in all; false after `limit`.
    pub async fn until_count(&self, n: usize, limit: Duration) -> bool {
        self.wake_at.store(n, Ordering::Relaxed);
        self.until(limit, |a| a.count() >= n).await
    }

    pub fn count(&self) -> usize {
        self.seen.lock().len()
    }

    pub fn ready(&self) -> usize {
        self.ready.load(Ordering::Relaxed)
    }

    /// Waits until `done()` holds; false after `limit`.
    pub async fn until(&self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(self);
            }
        }
    }

    pub fn take(&self) -> Vec<(u32, Instant)> {
        std::mem::take(&mut *self.seen.lock())
    }
}

/// The marker an event's description carries: `bseq<n>.`.
fn scan(buf: &[u8], mut found: impl FnMut(u32)) -> usize {
    const MARK: &[u8] = b"bseq";
    let mut i = 0;
    let mut consumed = 0;
    while let Some(at) = buf[i..].windows(MARK.len()).position(|w| w == MARK) {
        let start = i + at + MARK.len();
        let digits = buf[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if start + digits >= buf.len() {
            // The number may go on in the next read.
            return i + at;
        }
        if let Ok(n) = std::str::from_utf8(&buf[start..start + digits])
            .unwrap_or("")
            .parse::<u32>()
        {
            found(n);
        }
        i = start + digits;
        consumed = i;
    }
    // Keep a tail that could be the start of a marker.
    consumed.max(buf.len().saturating_sub(MARK.len() - 1))
}

/// An open subscriber; dropping it closes its connection.
pub struct Subscriber(tokio::task::JoinHandle<()>);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens one subscriber of `kind` on `addr`; returns once the server has answered (SSE:
/// the response head; WebSocket: `connection_ack`, then the subscription is sent).
pub async fn open(kind: Kind, addr: SocketAddr, arrivals: Arc<Arrivals>) -> Subscriber {
    match kind {
        Kind::Sse | Kind::BareSse => {
            let path = if kind == Kind::Sse {
                "/api/system/events/subscribe"
            } else {
                "/sse"
            };
            let mut s = TcpStream::connect(addr).await.expect("connecting");
            s.set_nodelay(true).expect("nodelay");
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
            s.write_all(req.as_bytes()).await.expect("sending");
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 2048];
            let head_end = loop {
                let n = s.read(&mut chunk).await.expect("reading");
                assert!(n > 0, "{path}: closed before the head");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
            };
            assert!(
                buf.starts_with(b"HTTP/1.1 200"),
                "{path}: {}",
                String::from_utf8_lossy(&buf[..head_end])
            );
            buf.drain(..head_end);
            Subscriber(tokio::spawn(async move {
                let mut first = true;
                loop {
                    let used = scan(&buf, |n| arrivals.note(n, &mut first));
                    buf.drain(..used);
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            }))
        }
        Kind::Ws | Kind::BareWs => {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let path = if kind == Kind::Ws {
                "/api/system/graphql/query"
            } else {
                "/ws"
            };
            let mut req = format!("ws://{addr}{path}")
                .into_client_request()
                .expect("a request");
            if kind == Kind::Ws {
                req.headers_mut().insert(
                    "sec-websocket-protocol",
                    "graphql-transport-ws".parse().expect("a header"),
                );
            }
            let tcp = TcpStream::connect(addr).await.expect("connecting");
            tcp.set_nodelay(true).expect("nodelay");
            // tungstenite zero-fills the free part of its read buffer (128 KiB by default)
            // on every read, which would make this client, not the server, the slow side.
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(4096);
            let (mut ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(config))
                .await
                .expect("a WebSocket");
            if kind == Kind::Ws {
                ws.send(Message::text(r#"{"type":"connection_init","payload":{}}"#))
                    .await
                    .expect("init");
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t.contains("connection_ack") => break,
                        Some(Ok(Message::Text(t))) => panic!("before the ack: {t}"),
                        Some(Ok(_)) => continue,
                        other => panic!("no connection_ack: {other:?}"),
                    }
                }
                ws.send(Message::text(
                    r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { subscribeEvents { description } }"}}"#,
                ))
                .await
                .expect("subscribe");
            }
            Subscriber(tokio::spawn(async move {
                let mut first = true;
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m {
                        assert!(!t.contains(r#""type":"error""#), "subscription failed: {t}");
                        scan(t.as_bytes(), |n| arrivals.note(n, &mut first));
                    }
                }
            }))
        }
    }
}

/// Opens `n` subscribers, at most 64 connecting at once.
pub async fn open_many(
    kind: Kind,
    addr: SocketAddr,
    n: usize,
    arrivals: &Arc<Arrivals>,
) -> Vec<Subscriber> {
    futures_util::stream::iter(0..n)
        .map(|_| open(kind, addr, arrivals.clone()))
        .buffer_unordered(64)
        .collect()
        .await
}

/// Posts event 0 until every one of `n` subscribers has seen one: a WebSocket
/// subscription is live only once the server has read its `subscribe` message.
pub async fn barrier(client: &reqwest::Client, addr: SocketAddr, n: usize, arrivals: &Arrivals) {
    for _ in 0..150 {
        post(client, addr, 0).await;
        if arrivals
            .until(Duration::from_millis(200), |a| a.ready() >= n)
            .await
        {
            return;
        }
    }
    panic!("{} of {n} subscribers live after 30 s", arrivals.ready());
}

/// Records an event whose description carries `seq`.
pub async fn post(client: &reqwest::Client, addr: SocketAddr, seq: u32) {
    let r = client
        .post(format!("http://{addr}/api/system/events"))
        .json(&serde_json::json!({
            "category": "bench",
            "action": "fanout",
            "severity": "informational",
            "description": format!("bseq{seq}."),
        }))
        .send()
        .await
        .expect("posting an event");
    assert_eq!(r.status(), 201, "posting an event: {:?}", r.text().await);
}

#[cfg(test)]
mod tests {
    #[test]
    fn scan_finds_markers_and_keeps_a_split_one() {
        let mut got = Vec::new();
        let buf = b"data: {\"description\":\"bseq12.\"}\n\ndata: bseq7";
        let used = super::scan(buf, |n| got.push(n));
        assert_eq!(got, vec![12]);
        assert_eq!(&buf[used..], b"bseq7");
        let mut got = Vec::new();
        let used = super::scan(b"xxxxbse", |n| got.push(n));
        assert!(got.is_empty());
        assert_eq!(used, 4);
    }
}

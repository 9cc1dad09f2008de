//! The built-in HTTP load generator: N connections (HTTP/1.1 on its own small client, `h1`,
//! or h2c on hyper), fixed rate or max throughput, latencies in an HdrHistogram.
//!
//! Fixed rate (`qps > 0`) is an open loop: request k of connection i is *intended* at
//! `start + (k + i/N) * N/qps`, and its latency is measured from that intended time, not
//! from when it was sent. A stalled server therefore shows in the percentiles for as long
//! as it delays the schedule (coordinated omission corrected, as wrk2 and fortio do).
//! Max throughput (`qps = 0`) is a closed loop. The service time (from the actual send)
//! is kept too, to show what a naive measure would report.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::http::{HeaderName, HeaderValue, Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Latencies are recorded in microseconds, up to an hour, 3 significant digits.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where to connect (already checked against the target policy).
    pub addrs: Vec<SocketAddr>,
    /// Request URI (path and query) and `Host` header value.
    pub uri: Uri,
    pub host: String,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub duration: Duration,
    pub connections: usize,
    /// Requests per second in all; 0 = as fast as possible.
    pub qps: f64,
    /// Per request, from send to the end of the answer.
    pub timeout: Duration,
    pub http2: bool,
    /// For https targets: the TLS settings (ALPN chosen by `http2`) and the server name.
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// Progress of a running test, once a second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub requests: u64,
    pub errors: u64,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub start: chrono::DateTime<chrono::Utc>,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// Latency from the intended send time (µs): what users of the service saw.
    pub latency: Histogram<u64>,
    /// Time from the actual send (µs): what a closed-loop tool would report.
    pub service: Histogram<u64>,
    pub ret_codes: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    pub requests: u64,
    pub sockets: u64,
    /// Fixed rate: requests whose intended time came before the end but that could not
    /// be sent, because every connection was still waiting for the target.
    pub unsent: u64,
    /// Fixed rate: requests sent after their intended time (the target held them up).
    pub late: u64,
    pub cancelled: bool,
}

/// How long requests still in flight at the end of a test may take to finish; after
/// that the test ends without them, however long the per-request timeout.
pub const END_GRACE: Duration = Duration::from_millis(500);

/// The error kind of requests the target had not answered when the test ended.
pub const UNANSWERED: &str = "no answer by the end of the test";

impl Outcome {
    pub fn actual_qps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Constant bounds that HdrHistogram accepts: no request can make this fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
}

struct WorkerResult {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    ret_codes: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    requests: u64,
    sockets: u64,
    unsent: u64,
    late: u64,
    last: Instant,
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

enum Conn {
    H1(super::h1::H1Conn<tokio::net::TcpStream>),
    H1Tls(Box<super::h1::H1Conn<TlsStream>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    /// The server asked to close it after the last answer.
    fn closed(&self) -> bool {
        match self {
            Conn::H1(h) => h.closed,
            Conn::H1Tls(h) => h.closed,
            Conn::H2(_) => false,
        }
    }
}

fn h1_kind(e: super::h1::H1Error) -> String {
    match e {
        super::h1::H1Error::Io(io) => kind(&io),
        super::h1::H1Error::BadResponse => "bad response".into(),
        super::h1::H1Error::Closed => "connection closed".into(),
    }
}

/// One HTTP/2 request, its body drained frame by frame.
async fn h2_exchange(
    send: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<u16, hyper::Error> {
    send.ready().await?;
    let response = send.send_request(req).await?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(status)
}

/// What went wrong, as a stable short name for the error counts.
fn kind(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused",
            std::io::ErrorKind::ConnectionReset => "connection reset",
            std::io::ErrorKind::TimedOut => "timeout",
            _ => "io error",
        }
        .into();
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
            return "connection closed".into();
        }
        if h.is_parse() {
            return "bad response".into();
        }
        if let Some(source) = std::error::Error::source(h) {
            return kind(source);
        }
        return "http error".into();
    }
    "error".into()
}

/// Why a worker could not connect or build its request. Its text is the error's kind in
/// the result, so it stays short and free of addresses.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("connect timeout")]
    ConnectTimeout,
    #[error("tls handshake timeout")]
    TlsTimeout,
    #[error("tls: {0}")]
    Tls(String),
    #[error("the server did not agree to HTTP/2 (ALPN)")]
    NoHttp2,
    /// An I/O or protocol failure, by its kind (see [`kind`]).
    #[error("{0}")]
    Kind(String),
    #[error("{0}")]
    Request(#[from] hyper::http::Error),
    #[error("{UNANSWERED}")]
    Unanswered,
}

/// An HTTP/2 connection over `io`, its driver spawned.
async fn h2<I>(io: I) -> Result<Conn, ConnectError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| ConnectError::Kind(kind(&e)))?;
    tokio::spawn(conn);
    Ok(Conn::H2(send))
}

async fn connect(spec: &LoadSpec, worker: usize) -> Result<Conn, ConnectError> {
    let addr = spec.addrs[worker % spec.addrs.len()];
    let stream = tokio::time::timeout(spec.timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::ConnectTimeout)?
        .map_err(|e| ConnectError::Kind(kind(&e)))?;
    let _ = stream.set_nodelay(true);
    match &spec.tls {
        None if spec.http2 => h2(stream).await,
        None => Ok(Conn::H1(super::h1::H1Conn::new(stream, spec))),
        Some((config, name)) => {
            let tls = tokio::time::timeout(
                spec.timeout,
                tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), stream),
            )
            .await
            .map_err(|_| ConnectError::TlsTimeout)?
            .map_err(|e| {
                ConnectError::Tls(
                    e.get_ref()
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| e.kind().to_string()),
                )
            })?;
            let alpn_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            if spec.http2 && alpn_h2 {
                h2(tls).await
            } else if spec.http2 {
                Err(ConnectError::NoHttp2)
            } else {
                Ok(Conn::H1Tls(Box::new(super::h1::H1Conn::new(tls, spec))))
            }
        }
    }
}

/// An HTTP/2 request (HTTP/2 carries the authority in the URI).
fn request(spec: &LoadSpec) -> Result<Request<Full<Bytes>>, ConnectError> {
    let scheme = if spec.tls.is_some() { "https" } else { "http" };
    let uri = format!(
        "{scheme}://{}{}",
        spec.host,
        spec.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut builder = Request::builder().method(spec.method.clone()).uri(uri);
    for (k, v) in &spec.headers {
        builder = builder.header(k, v);
    }
    Ok(builder.body(Full::new(spec.body.clone()))?)
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_LATENCY_US)
}

async fn worker(
    index: usize,
    spec: Arc<LoadSpec>,
    start: Instant,
    end: Instant,
    cancel: CancellationToken,
    counters: Arc<Counters>,
    rendered: Arc<Vec<u8>>,
) -> WorkerResult {
    let mut out = WorkerResult {
        latency: histogram(),
        service: histogram(),
        ret_codes: BTreeMap::new(),
        errors: BTreeMap::new(),
        requests: 0,
        sockets: 0,
        unsent: 0,
        late: 0,
        last: start,
    };
    // Nothing runs past this, however slow the target: the test ends at its duration.
    let hard_end = end + END_GRACE;
    let n = spec.connections.max(1) as f64;
    let interval = (spec.qps > 0.0).then(|| n / spec.qps);
    let mut conn: Option<Conn> = None;
    let mut k: u64 = 0;
    // One registration for the whole run, not one per request.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    // Progress counts are published in batches: a shared counter per request costs.
    let mut unpublished = 0u64;
    // The per-request timeout: one timer for the connection, moved forward per request.
    // Moving a registered timer later is an atomic update in tokio (the wheel is touched
    // only when it fires), where a `timeout_at` per request registers and removes one.
    let timer = tokio::time::sleep_until(hard_end);
    tokio::pin!(timer);
    loop {
        let now = Instant::now();
        let intended = match interval {
            Some(iv) => start + Duration::from_secs_f64(iv * (k as f64 + index as f64 / n)),
            None => now,
        };
        // Free before its time, the connection only waits for the timer: its latency
        // starts when the request is sent (timer slack is the generator's, not the
        // server's). Free late, it was held up by the server: its latency starts at the
        // intended time, so the wait counts (coordinated omission).
        let on_time = now <= intended;
        if intended >= end || now >= end || cancel.is_cancelled() {
            break;
        }
        if !on_time && interval.is_some() {
            out.late += 1;
        }
        let waited = intended > now;
        if waited {
            tokio::select! {
                _ = tokio::time::sleep_until(intended) => {}
                _ = &mut cancelled => break,
            }
        }
        k += 1;
        let fail = |out: &mut WorkerResult, what: String| {
            *out.errors.entry(what).or_default() += 1;
            counters.errors.fetch_add(1, Ordering::Relaxed);
        };
        let connecting = conn.is_none();
        if connecting {
            let connected = tokio::select! {
                c = connect(&spec, index) => c,
                _ = tokio::time::sleep_until(hard_end) => Err(ConnectError::Unanswered),
                _ = &mut cancelled => break,
            };
            match connected {
                Ok(c) => {
                    out.sockets += 1;
                    conn = Some(c);
                }
                Err(e) => {
                    fail(&mut out, e.to_string());
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    out.requests += 1;
                    if interval.is_none() {
                        // A closed loop against a dead target would spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        // With no wait for the schedule or a connection, the clock read above serves.
        let sent = if waited || connecting {
            Instant::now()
        } else {
            now
        };
        // A request still unanswered at the hard end is counted as such and the
        // connection dropped; the per-request timeout applies within the test.
        let deadline = (sent + spec.timeout).min(hard_end);
        timer.as_mut().reset(deadline);
        let result: Option<Result<Result<u16, String>, ()>> = match c {
            Conn::H1(h1) => tokio::select! {
                biased;
                r = h1.exchange(&rendered) => Some(Ok(r.map_err(h1_kind))),
                _ = &mut timer => Some(Err(())),
                _ = &mut cancelled => None,
            },
            Conn::H1Tls(h1) => tokio::select! {
                biased;
                r = h1.exchange(&rendered) => Some(Ok(r.map_err(h1_kind))),
                _ = &mut timer => Some(Err(())),
                _ = &mut cancelled => None,
            },
            Conn::H2(h2) => {
                let req = match request(&spec) {
                    Ok(r) => r,
                    Err(e) => {
                        fail(&mut out, e.to_string());
                        break;
                    }
                };
                tokio::select! {
                    biased;
                    r = h2_exchange(h2, req) => Some(Ok(r.map_err(|e| kind(&e)))),
                    _ = &mut timer => Some(Err(())),
                    _ = &mut cancelled => None,
                }
            }
        };
        let done = Instant::now();
        match result {
            None => break,
            Some(Ok(Ok(status))) => {
                if conn.as_ref().is_some_and(Conn::closed) {
                    conn = None;
                }
                *out.ret_codes.entry(status).or_default() += 1;
                let from = if on_time { sent } else { intended };
                let _ = out.latency.record(us(done - from));
                let _ = out.service.record(us(done - sent));
            }
            Some(Ok(Err(what))) => {
                fail(&mut out, what);
                conn = None;
            }
            Some(Err(_)) => {
                let what = if done >= hard_end {
                    UNANSWERED
                } else {
                    "timeout"
                };
                fail(&mut out, what.into());
                conn = None;
            }
        }
        out.requests += 1;
        out.last = out.last.max(done);
        unpublished += 1;
        if unpublished >= 64 || interval.is_some() {
            counters.requests.fetch_add(unpublished, Ordering::Relaxed);
            unpublished = 0;
        }
    }
    counters.requests.fetch_add(unpublished, Ordering::Relaxed);
    if let Some(iv) = interval
        && !cancel.is_cancelled()
    {
        // This connection's slots before the end, less those it used.
        let slots = (spec.duration.as_secs_f64() / iv - index as f64 / n).ceil();
        out.unsent = (slots.max(0.0) as u64).saturating_sub(k);
    }
    out
}

/// Runs a test to its end (or cancellation), calling `progress` once a second.
pub async fn run(
    spec: LoadSpec,
    cancel: CancellationToken,
    progress: impl Fn(Snapshot) + Send + 'static,
) -> Outcome {
    let spec = Arc::new(spec);
    let started_at = chrono::Utc::now();
    let start = Instant::now() + Duration::from_millis(5);
    let end = start + spec.duration;
    let counters = Arc::new(Counters::default());
    let ticker = {
        let counters = counters.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = cancel.cancelled() => break,
                }
                progress(Snapshot {
                    elapsed: start.elapsed(),
                    requests: counters.requests.load(Ordering::Relaxed),
                    errors: counters.errors.load(Ordering::Relaxed),
                });
            }
        })
    };
    // HTTP/1.1 requests are rendered once and written as they are.
    let rendered = Arc::new(super::h1::render(&spec));
    let workers: Vec<_> = (0..spec.connections.max(1))
        .map(|i| {
            tokio::spawn(worker(
                i,
                spec.clone(),
                start,
                end,
                cancel.clone(),
                counters.clone(),
                rendered.clone(),
            ))
        })
        .collect();
    let mut outcome = Outcome {
        start: started_at,
        elapsed: Duration::ZERO,
        latency: histogram(),
        service: histogram(),
        ret_codes: BTreeMap::new(),
        errors: BTreeMap::new(),
        requests: 0,
        sockets: 0,
        unsent: 0,
        late: 0,
        cancelled: false,
    };
    let mut last = start;
    for w in workers {
        let Ok(r) = w.await else {
            *outcome.errors.entry("worker failed".into()).or_default() += 1;
            continue;
        };
        let _ = outcome.latency.add(&r.latency);
        let _ = outcome.service.add(&r.service);
        for (code, n) in r.ret_codes {
            *outcome.ret_codes.entry(code).or_default() += n;
        }
        for (e, n) in r.errors {
            *outcome.errors.entry(e).or_default() += n;
        }
        outcome.requests += r.requests;
        outcome.sockets += r.sockets;
        outcome.unsent += r.unsent;
        outcome.late += r.late;
        last = last.max(r.last);
    }
    outcome.cancelled = cancel.is_cancelled();
    // Stop the ticker without marking the run cancelled.
    ticker.abort();
    outcome.elapsed = last.saturating_duration_since(start);
    outcome
}

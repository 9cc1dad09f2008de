//! Serving a router over TCP (and TLS) with limits on connections: the one accept loop of
//! `meshery-server`, the reference provider and the tests.
//!
//! - At most `max_connections` sockets are open at once (WebSocket ones included, until
//!   they close); past that, new connections wait in the kernel's backlog.
//! - A request's head must arrive within `header_timeout` of the connection being ready
//!   for it (new, or after the previous answer): slow-header clients (slowloris) and
//!   idle HTTP/1 keep-alive connections are closed then.
//! - A connection with no request in flight and no bytes moving for `idle_timeout` is
//!   closed gracefully (HTTP/2 included); upgraded (WebSocket) connections are exempt,
//!   their protocol has its own keep-alive.
//! - TLS handshakes run on the connection's own task, bounded by `handshake_timeout`, so
//!   a client that stalls its handshake holds up nobody else.
//! - The service is built once; each connection clones the router (cheap: shared).
//! - One supervisor task per server enforces both timeouts, gives the memory of closed
//!   connections back to the system, and tells every connection to close at shutdown: a late head drops the connection (nothing is in flight), an idle
//!   one is closed gracefully. A connection's own task polls only its connection and one
//!   flag, and notes activity with no clock read: a request or a streamed frame costs no
//!   timer or lock (hyper's own head timer was armed and dropped per request). A request
//!   is in flight until its response body is sent, so a long stream is never "idle".

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Limits on inbound connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub handshake_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The supervisor's clock: ticks since the server started (a tick is `Supervisor::tick`).
type Ticks = Arc<AtomicU64>;

/// What a connection did last, shared by its I/O, its requests and the supervisor.
struct Activity {
    clock: Ticks,
    /// The tick in which a byte last moved (a load and a store; no clock is read).
    last: AtomicU64,
    /// The tick since which the connection waits for a request's head: when it opened,
    /// then when each answer was given. Bytes of a head do not move it (slowloris).
    ready_since: AtomicU64,
    /// HTTP/2 (seen in a request): its streams have no head timeout of this kind.
    h2: AtomicBool,
    in_flight: AtomicUsize,
    upgraded: AtomicBool,
    /// Set by the supervisor when the connection should close gracefully.
    close: AtomicBool,
    /// Set by the supervisor when the connection should close now (a head came too late).
    abort: AtomicBool,
    waker: AtomicWaker,
}

impl Activity {
    fn new(clock: Ticks) -> Activity {
        let now = clock.load(Ordering::Relaxed);
        Activity {
            clock,
            last: AtomicU64::new(now),
            ready_since: AtomicU64::new(now),
            h2: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
            close: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn touch(&self) {
        self.last
            .store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// An answer was given: the next request's head is due within the header timeout.
    fn answered(&self) {
        let now = self.clock.load(Ordering::Relaxed);
        self.last.store(now, Ordering::Relaxed);
        self.ready_since.store(now, Ordering::Relaxed);
    }

    fn request_close(&self) {
        self.close.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn request_abort(&self) {
        self.abort.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// How the supervisor asks a connection to close.
enum Close {
    /// Finish what is in flight first (HTTP/2 sends GOAWAY).
    Graceful,
    /// Drop it: nothing is in flight, and hyper would wait for a head that is late.
    Now,
}

/// A request being answered; its end (the body sent or dropped) makes the connection
/// ready for the next request's head.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.answered();
    }
}

/// A response body that keeps its request in flight.
struct Counted {
    body: axum::body::Body,
    _flight: InFlight,
}

impl hyper::body::Body for Counted {
    type Data = <axum::body::Body as hyper::body::Body>::Data;
    type Error = <axum::body::Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Resolves once the supervisor asks the connection to close (a graceful request only
/// once: `graceful_done` says it was seen).
struct CloseRequested<'a> {
    activity: &'a Activity,
    graceful_done: bool,
}

impl CloseRequested<'_> {
    fn check(&self) -> Option<Close> {
        if self.activity.abort.load(Ordering::Acquire) {
            Some(Close::Now)
        } else if !self.graceful_done && self.activity.close.load(Ordering::Acquire) {
            Some(Close::Graceful)
        } else {
            None
        }
    }
}

impl Future for CloseRequested<'_> {
    type Output = Close;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Close> {
        if let Some(c) = self.check() {
            return Poll::Ready(c);
        }
        self.activity.waker.register(cx.waker());
        match self.check() {
            Some(c) => Poll::Ready(c),
            None => Poll::Pending,
        }
    }
}

/// Connections closed before freed memory is given back to the system. glibc keeps what
/// thousands of closed connections freed (RSS stays at the peak); `malloc_trim` returns
/// its free pages. It walks the heap, so the supervisor runs it at most once a tick, off
/// the runtime. Measured with 2,000 idle subscribers: ARCHITECTURE.md, "The request path".
const TRIM_AFTER_CLOSED: usize = 256;

fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only releases free memory; it has no preconditions.
        unsafe { libc::malloc_trim(0) };
    });
}

/// Every open connection of a server, for its supervisor.
struct Supervisor {
    clock: Ticks,
    tick: Duration,
    /// Whole ticks with no activity after which a connection is idle: at least
    /// `idle_timeout` has passed since its last byte, at most two ticks more.
    idle_ticks: u64,
    /// Whole ticks an HTTP/1 connection may wait for a request's head (same rounding).
    header_ticks: u64,
    connections: Mutex<Vec<Weak<Activity>>>,
}

impl Supervisor {
    fn new(idle_timeout: Duration, header_timeout: Duration) -> Supervisor {
        let tick = (idle_timeout.min(header_timeout) / 8).max(Duration::from_millis(25));
        let ticks = |d: Duration| d.as_nanos().div_ceil(tick.as_nanos().max(1)) as u64 + 1;
        Supervisor {
            clock: Arc::new(AtomicU64::new(0)),
            tick,
            idle_ticks: ticks(idle_timeout),
            header_ticks: ticks(header_timeout),
            connections: Mutex::new(Vec::new()),
        }
    }

    fn watch(&self, activity: &Arc<Activity>) {
        if let Ok(mut list) = self.connections.lock() {
            list.push(Arc::downgrade(activity));
        }
    }

    /// Ticks the clock, closes late and idle connections and gives back the memory of
    /// closed ones until `stop`, then asks every open connection to close.
    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closed = 0;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.cancelled() => break,
            }
            let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
            let Ok(mut list) = self.connections.lock() else {
                return;
            };
            let before = list.len();
            list.retain(|weak| {
                let Some(a) = weak.upgrade() else {
                    return false;
                };
                let waiting =
                    !a.upgraded.load(Ordering::Relaxed) && a.in_flight.load(Ordering::Relaxed) == 0;
                let idle = now.saturating_sub(a.last.load(Ordering::Relaxed)) >= self.idle_ticks;
                // A late head: slowloris, or an HTTP/1 keep-alive connection left idle.
                let late = !a.h2.load(Ordering::Relaxed)
                    && now.saturating_sub(a.ready_since.load(Ordering::Relaxed))
                        >= self.header_ticks;
                if waiting && late {
                    a.request_abort();
                } else if waiting && idle {
                    a.request_close();
                }
                true
            });
            closed += before - list.len();
            drop(list);
            if closed >= TRIM_AFTER_CLOSED {
                closed = 0;
                give_back_memory();
            }
        }
        if let Ok(list) = self.connections.lock() {
            for a in list.iter().filter_map(Weak::upgrade) {
                a.request_close();
            }
        }
    }
}

/// The socket of one connection: notes activity, and holds the connection's permit
/// until the socket is dropped (after a WebSocket upgrade, when the WebSocket ends).
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A server [`spawn`]ed in the background.
pub struct Served {
    /// Where it listens (the real port when it was bound to port 0).
    pub addr: std::net::SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    permits: Arc<Semaphore>,
    max_connections: usize,
}

impl Served {
    /// How many connections are open now (accepted and not yet closed).
    pub fn open_connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.permits.available_permits())
    }

    /// Stops accepting and waits until every open connection has finished its requests.
    pub async fn stop(self) -> Result<(), tokio::task::JoinError> {
        let _ = self.shutdown.send(());
        self.task.await
    }
}

/// Serves `router` on `listener` in a task of its own (with TLS when `tls` is given)
/// until [`Served::stop`]. The one way the server, the reference provider and the tests
/// start serving.
pub fn spawn(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<meshery_tls::TlsAcceptor>,
) -> std::io::Result<Served> {
    let addr = listener.local_addr()?;
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let max_connections = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max_connections));
    let task = tokio::spawn(serve(
        listener,
        router,
        limits,
        tls,
        permits.clone(),
        async move {
            let _ = signal.await;
        },
    ));
    Ok(Served {
        addr,
        shutdown,
        task,
        permits,
        max_connections,
    })
}

/// Serves `router` until `shutdown` resolves, then stops accepting, lets every open
/// connection finish its requests, and returns. An open connection holds one of `permits`.
async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<meshery_tls::TlsAcceptor>,
    permits: Arc<Semaphore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // A `Router<()>` keeps its handlers boxed until it is given its state, and would turn
    // the matched one into a service again on every request; given it once here, every
    // route is built once per server.
    let router = router.with_state(());
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No hyper timer for HTTP/1: the head timeout is the supervisor's (`ready_since`), not
    // a timer armed and dropped per request.
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let supervisor = Arc::new(Supervisor::new(limits.idle_timeout, limits.header_timeout));
    let supervising = tokio::spawn(supervisor.clone().run(stop.clone()));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (router, builder, tls) = (router.clone(), builder.clone(), tls.clone());
        let activity = Arc::new(Activity::new(supervisor.clock.clone()));
        supervisor.watch(&activity);
        tracker.spawn(async move {
            match tls {
                None => {
                    let io = Watched {
                        io: tcp,
                        activity: activity.clone(),
                        _permit: permit,
                    };
                    connection(io, activity, router, &builder).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
                    let Ok(Ok(stream)) = handshake.await else {
                        return;
                    };
                    let io = Watched {
                        io: stream,
                        activity: activity.clone(),
                        _permit: permit,
                    };
                    connection(io, activity, router, &builder).await;
                }
            }
        });
    }
    stop.cancel();
    let _ = supervising.await;
    tracker.close();
    tracker.wait().await;
}

async fn connection<I>(
    io: Watched<I>,
    activity: Arc<Activity>,
    router: Router,
    builder: &auto::Builder<TokioExecutor>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let activity = requests.clone();
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        if request.version() == hyper::Version::HTTP_2 {
            activity.h2.store(true, Ordering::Relaxed);
        }
        let answer = router.clone().oneshot(request.map(axum::body::Body::new));
        async move {
            let response = answer.await;
            if let Ok(r) = &response
                && r.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS
            {
                activity.upgraded.store(true, Ordering::Relaxed);
            }
            // In flight until its body is sent (a stream can last hours).
            response.map(|r| {
                r.map(|body| Counted {
                    body,
                    _flight: InFlight(activity),
                })
            })
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut graceful_done = false;
    loop {
        let close = CloseRequested {
            activity: &activity,
            graceful_done,
        };
        tokio::select! {
            biased;
            _ = conn.as_mut() => return,
            close = close => match close {
                Close::Now => return,
                Close::Graceful => {
                    graceful_done = true;
                    conn.as_mut().graceful_shutdown();
                }
            },
        }
    }
}

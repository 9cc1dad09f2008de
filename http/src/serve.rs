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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

/// What a connection did last, shared by its I/O and its requests.
struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last byte read or written.
    last: AtomicU64,
    in_flight: AtomicUsize,
    upgraded: AtomicBool,
}

impl Activity {
    fn touch(&self) {
        self.last
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
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
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
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
        let (router, builder, stop, tls) =
            (router.clone(), builder.clone(), stop.clone(), tls.clone());
        tracker.spawn(async move {
            let activity = Arc::new(Activity {
                started: Instant::now(),
                last: AtomicU64::new(0),
                in_flight: AtomicUsize::new(0),
                upgraded: AtomicBool::new(false),
            });
            match tls {
                None => {
                    let io = Watched {
                        io: tcp,
                        activity: activity.clone(),
                        _permit: permit,
                    };
                    connection(io, activity, router, &builder, limits, stop).await;
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
                    connection(io, activity, router, &builder, limits, stop).await;
                }
            }
        });
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

async fn connection<I>(
    io: Watched<I>,
    activity: Arc<Activity>,
    router: Router,
    builder: &auto::Builder<TokioExecutor>,
    limits: ConnLimits,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let activity = requests.clone();
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let answer = router.clone().oneshot(request.map(axum::body::Body::new));
        async move {
            let response = answer.await;
            activity.in_flight.fetch_sub(1, Ordering::Relaxed);
            activity.touch();
            if let Ok(r) = &response
                && r.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS
            {
                activity.upgraded.store(true, Ordering::Relaxed);
            }
            response
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let tick = (limits.idle_timeout / 4).max(Duration::from_millis(50));
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick), if !closing => {
                if !activity.upgraded.load(Ordering::Relaxed)
                    && activity.in_flight.load(Ordering::Relaxed) == 0
                    && activity.idle_for() >= limits.idle_timeout
                {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

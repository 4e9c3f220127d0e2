//! Serving the health routes with bounds, so that no client can take the
//! server down with it: `axum::serve` keeps every connection as long as its
//! client likes, and a liveness probe that cannot connect gets a healthy pod
//! killed.
//!
//! - a request's headers must arrive within [`Limits::header_read`] (from
//!   when the server starts waiting for them, on a new connection or
//!   between two requests of a kept-alive one: a slowloris client and an
//!   idle one are closed alike);
//! - a connection with no bytes either way for [`Limits::idle`] is closed
//!   (a client that stops reading its response, or sending its body);
//! - at most [`Limits::connections`] connections are open: one more closes
//!   the oldest, so the newest (a probe) is answered, and a line is logged
//!   (at most once a minute). The cap is kept below the process's file
//!   descriptor limit, which would otherwise stop `accept` first.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::ratelimit::{LogLimiter, Verdict};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The bounds of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a request's headers may take to arrive. Default 10 s.
    pub header_read: Duration,
    /// How long a connection may pass no bytes. Default 10 s.
    pub idle: Duration,
    /// How many connections may be open at once. Default 512, and never
    /// more than the file descriptor limit less 64.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            connections: 512,
        }
    }
}

/// Descriptors left for everything but the served connections (the
/// database's, the monitor's, files).
const RESERVED_DESCRIPTORS: u64 = 64;

impl Limits {
    /// The connection cap this process can keep: [`Limits::connections`],
    /// lowered to fit the file descriptor limit.
    fn cap(&self) -> usize {
        let descriptors =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_or(u64::MAX, |(soft, _)| soft);
        let fits = descriptors.saturating_sub(RESERVED_DESCRIPTORS).max(1);
        self.connections
            .min(usize::try_from(fits).unwrap_or(usize::MAX))
            .max(1)
    }
}

/// Serves `app` on `listener` within `limits` until `stop` is cancelled;
/// then lets the requests in flight finish (the caller bounds how long).
///
/// # Errors
///
/// Never for a client's doing: a failed `accept` is logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let cap = limits.cap();
    let open = Open::default();
    let cap_log = LogLimiter::new(Duration::from_secs(60));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of descriptors: free one, so that the next probe can be
            // answered, and do not spin.
            Err(e) if e.raw_os_error().is_some_and(is_out_of_descriptors) => {
                if open.close_oldest() {
                    log_cap(&cap_log, "out of file descriptors", cap);
                } else {
                    tracing::warn!(error = %e, "health server: out of file descriptors");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            // A client gone before it was accepted, and the like.
            Err(e) => {
                tracing::debug!(error = %e, "health server: accept failed");
                continue;
            }
        };
        if open.len() >= cap {
            open.close_oldest();
            log_cap(&cap_log, "connection cap reached", cap);
        }
        let closed = open.add();
        let app = app.clone();
        let stop = stop.clone();
        // `closed` drops when the task ends: the connection leaves `open`.
        tokio::spawn(async move { connection(stream, app, limits, &closed, &stop).await });
    }
    open.wait_empty().await;
    Ok(())
}

/// EMFILE (this process) or ENFILE (the system).
fn is_out_of_descriptors(errno: i32) -> bool {
    errno == nix::errno::Errno::EMFILE as i32 || errno == nix::errno::Errno::ENFILE as i32
}

fn log_cap(limiter: &LogLimiter, why: &str, cap: usize) {
    let message = format!(
        "health server: {why}: {cap} connections open; closing the oldest so new ones (probes) \
         are answered"
    );
    match limiter.check(why, Instant::now()) {
        Verdict::Log => tracing::warn!("{message}"),
        Verdict::LogWithSummary { repeated, over } => tracing::warn!(
            "{message} (repeated {repeated} times in the last {} s)",
            over.as_secs()
        ),
        Verdict::Suppress => {}
    }
}

/// One connection, until it ends, idles too long, is closed to make room,
/// or (between requests) the server stops.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    closed: &Closed,
    stop: &CancellationToken,
) {
    let activity = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
        started,
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let mut idle = tokio::time::interval((limits.idle / 4).max(Duration::from_millis(10)));
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            () = closed.token.cancelled() => return,
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle.tick() => {
                let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) >= limits.idle {
                    return;
                }
            }
        }
    }
}

/// A stream that notes when bytes last moved, in ms since `started`.
struct Watched {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
    started: Instant,
}

impl Watched {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An open connection, as [`Open`] tracks it: its id and how to close it.
/// Dropped when the connection ends, it leaves the list.
struct Closed {
    id: u64,
    token: CancellationToken,
    open: Open,
}

impl Drop for Closed {
    fn drop(&mut self) {
        self.open.remove(self.id);
    }
}

/// The open connections, oldest first.
#[derive(Clone, Default)]
struct Open(Arc<Mutex<OpenInner>>);

#[derive(Default)]
struct OpenInner {
    next: u64,
    connections: VecDeque<(u64, CancellationToken)>,
    emptied: Option<Arc<tokio::sync::Notify>>,
}

impl Open {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenInner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().connections.len()
    }

    fn add(&self) -> Closed {
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        let token = CancellationToken::new();
        inner.connections.push_back((id, token.clone()));
        Closed {
            id,
            token,
            open: self.clone(),
        }
    }

    fn remove(&self, id: u64) {
        let mut inner = self.lock();
        inner.connections.retain(|(i, _)| *i != id);
        if inner.connections.is_empty() {
            if let Some(emptied) = &inner.emptied {
                emptied.notify_waiters();
            }
        }
    }

    /// Closes the oldest connection; whether there was one.
    fn close_oldest(&self) -> bool {
        let oldest = self.lock().connections.pop_front();
        oldest.map(|(_, token)| token.cancel()).is_some()
    }

    /// Waits until every connection has ended.
    async fn wait_empty(&self) {
        let emptied = {
            let mut inner = self.lock();
            if inner.connections.is_empty() {
                return;
            }
            inner.emptied.get_or_insert_with(Default::default).clone()
        };
        loop {
            let notified = emptied.notified();
            if self.len() == 0 {
                return;
            }
            notified.await;
        }
    }
}

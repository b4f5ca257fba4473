//! Listeners that hold up under floods of connections.
//!
//! Every accepted socket is wrapped in a [`Guarded`] stream that takes one
//! slot of a process-wide connection budget and records when it last carried
//! traffic. A sweeper closes connections that never sent a byte within the
//! header-read timeout and those quiet past the idle timeout; at the cap, the
//! connection quiet longest makes room for the new one (nginx's answer to a
//! full worker); accept errors such as `EMFILE` back off instead of spinning.
//! Tracking costs one relaxed store per read or write: no lock on the request path.

use futures_util::task::AtomicWaker;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;

/// File descriptors kept back from the connection budget: the metrics
/// listener, Redis, JWKS fetches, log and config files.
const RESERVED_FDS: u64 = 256;
/// A connection must be this quiet to be closed for a newcomer.
const MIN_QUIET_TO_EVICT: Duration = Duration::from_secs(1);
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Connection limits of one budget, from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read: Duration,
    pub idle: Option<Duration>,
    pub max_connections: usize,
}

impl Limits {
    /// The main listeners' limits; an unset cap comes from the open-files limit
    /// (raised to its hard limit first, as Go and nginx do).
    pub fn from_config(server: &ServerConfig) -> Limits {
        let max_connections = match server.max_connections {
            0 => default_cap(),
            n => n,
        };
        Limits {
            header_read: Duration::from_secs(server.header_read_timeout_seconds),
            idle: (server.idle_timeout_seconds > 0)
                .then(|| Duration::from_secs(server.idle_timeout_seconds)),
            max_connections,
        }
    }

    /// A small budget of its own for the metrics listener, so probes answer
    /// while the main listeners are full.
    pub fn probes(&self) -> Limits {
        Limits {
            max_connections: 64,
            ..self.clone()
        }
    }
}

fn default_cap() -> usize {
    let soft = rlimit::increase_nofile_limit(1 << 20).unwrap_or(1024);
    soft.saturating_sub(RESERVED_FDS).max(64) as usize
}

/// What the sweeper knows about one connection.
struct Activity {
    accepted_ms: u64,
    last_ms: AtomicU64,
    said_anything: AtomicBool,
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl Activity {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// One connection budget, shared by the listeners that draw on it.
pub struct Connections {
    limits: Limits,
    slots: Arc<Semaphore>,
    live: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    started: Instant,
    /// Milliseconds since `started`, advanced by the sweeper: a coarse clock
    /// that reads and writes copy without a system call.
    now_ms: AtomicU64,
}

impl Connections {
    /// A budget and its sweeper, which runs until `shutdown`.
    pub fn new(limits: Limits, shutdown: CancellationToken) -> Arc<Connections> {
        let connections = Arc::new(Connections {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            started: Instant::now(),
            now_ms: AtomicU64::new(0),
        });
        tokio::spawn(connections.clone().sweep(shutdown));
        connections
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Open connections right now.
    pub fn open(&self) -> usize {
        self.limits.max_connections - self.slots.available_permits()
    }

    /// The next connection, or `None` at shutdown. At the cap it closes the
    /// connection quiet longest (checking again every sweep while none is
    /// quiet enough); accept errors back off from 10 ms to 1 s.
    pub async fn accept(
        self: &Arc<Self>,
        listener: &TcpListener,
        shutdown: &CancellationToken,
    ) -> Option<(Guarded<TcpStream>, SocketAddr)> {
        let mut backoff = Duration::from_millis(10);
        let (tcp, peer) = loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.cancelled() => return None,
            };
            match accepted {
                Ok(conn) => break conn,
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    // Out of descriptors or buffers: free one if we can, then wait.
                    if backoff == Duration::from_millis(10) {
                        tracing::warn!(error = %e, open = self.open(), "accept failed; backing off");
                    }
                    self.evict_quietest();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        };
        let _ = tcp.set_nodelay(true);
        let slot = loop {
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                break slot;
            }
            self.evict_quietest();
            tokio::select! {
                slot = self.slots.clone().acquire_owned() => break slot.ok()?,
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.cancelled() => return None,
            }
        };
        Some((self.register(tcp, slot), peer))
    }

    fn register<IO>(self: &Arc<Self>, io: IO, slot: OwnedSemaphorePermit) -> Guarded<IO> {
        let now = self.now_ms.load(Ordering::Relaxed);
        let activity = Arc::new(Activity {
            accepted_ms: now,
            last_ms: AtomicU64::new(now),
            said_anything: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, activity.clone());
        Guarded {
            io,
            activity,
            id,
            owner: self.clone(),
            _slot: slot,
        }
    }

    /// Closes the connection quiet longest (at least [`MIN_QUIET_TO_EVICT`]).
    fn evict_quietest(&self) -> bool {
        let now = self.now_ms.load(Ordering::Relaxed);
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let quietest = live
            .values()
            .filter(|a| !a.closed.load(Ordering::Acquire))
            .min_by_key(|a| a.last_ms.load(Ordering::Relaxed));
        match quietest {
            Some(a) if now - a.last_ms.load(Ordering::Relaxed) >= millis(MIN_QUIET_TO_EVICT) => {
                a.close();
                true
            }
            _ => false,
        }
    }

    async fn sweep(self: Arc<Self>, shutdown: CancellationToken) {
        let header_read = millis(self.limits.header_read);
        let idle = self.limits.idle.map(millis);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
            let now = millis(self.started.elapsed());
            self.now_ms.store(now, Ordering::Relaxed);
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            for a in live.values() {
                let silent =
                    !a.said_anything.load(Ordering::Relaxed) && now - a.accepted_ms >= header_read;
                let quiet =
                    idle.is_some_and(|idle| now - a.last_ms.load(Ordering::Relaxed) >= idle);
                if (silent || quiet) && !a.closed.load(Ordering::Acquire) {
                    a.close();
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Errors that concern only the connection being accepted.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// A stream counted against a budget; once the sweeper closes it, reads and
/// writes fail and the server drops the connection.
pub struct Guarded<IO> {
    io: IO,
    activity: Arc<Activity>,
    id: u64,
    owner: Arc<Connections>,
    _slot: OwnedSemaphorePermit,
}

impl<IO> Guarded<IO> {
    fn touch(&self) {
        let now = self.owner.now_ms.load(Ordering::Relaxed);
        self.activity.last_ms.store(now, Ordering::Relaxed);
    }

    fn check_open(&self, cx: &Context<'_>) -> io::Result<()> {
        self.activity.waker.register(cx.waker());
        if self.activity.closed.load(Ordering::Acquire) {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection closed: silent, idle or evicted",
            ))
        } else {
            Ok(())
        }
    }
}

impl<IO> Drop for Guarded<IO> {
    fn drop(&mut self) {
        self.owner
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_open(cx)?;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.said_anything.store(true, Ordering::Relaxed);
            this.touch();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_open(cx)?;
        let polled = Pin::new(&mut this.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_open(cx)?;
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

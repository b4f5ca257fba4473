//! Builds the shared state from a validated config, starts the listeners and
//! background tasks, and shuts everything down gracefully.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::http;
use crate::api::probes;
use crate::clock::Clock;
use crate::config::{Backend, Config, OnStale};
use crate::listen::{Connections, Limits};
use crate::metrics;
use crate::reload::{self, FirstKeys, Reloader};
use crate::revocation::redis::RedisStore;
use crate::revocation::{LocalCopy, Revocations};
use crate::runtime::{Built, Runtime};
use crate::serve::{self, Http2};
use crate::state::{AppState, Shared};
use crate::tls::ReloadingTls;
use arc_swap::ArcSwap;

/// A running tokend.
pub struct App {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    grace: Duration,
}

/// Starts tokend: binds every listener (port 0 picks a free one), starts one key
/// refresher per issuer, and returns once it accepts connections. Readiness
/// (`/readyz`) turns green when every issuer has its first key set.
pub async fn start(config: Config, clock: Clock) -> anyhow::Result<App> {
    start_with(config, clock, axum::Router::new()).await
}

/// Like [`start`], with extra HTTP routes merged in (dev mode's issuer endpoints).
pub async fn start_with(
    config: Config,
    clock: Clock,
    extra_routes: axum::Router,
) -> anyhow::Result<App> {
    let prometheus = metrics::install();
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let r = &config.revocation;
    let revocations = Arc::new(match r.backend {
        Backend::Redis => {
            let copy = Arc::new(LocalCopy::default());
            let store = Arc::new(RedisStore::new(r, copy.clone())?);
            tasks.spawn(store.clone().run_feed(shutdown.child_token()));
            let fail_closed =
                (r.on_stale == OnStale::FailClosed).then_some(r.max_staleness_seconds);
            Revocations::new(store, copy, fail_closed, r.bulk_entry_ttl_seconds)
        }
        Backend::Memory => Revocations::memory(r.bulk_entry_ttl_seconds),
    });
    let server = config.server.clone();
    let max_token_bytes = server.max_token_bytes;
    let max_batch = server.max_batch;
    let max_concurrent_batches = match server.max_concurrent_batches {
        0 => 2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let Built { runtime, fresh } = Runtime::build(config, None, &revocations)?;
    let state: AppState = Arc::new(Shared {
        metrics: runtime.metrics.clone(),
        runtime: ArcSwap::from_pointee(runtime),
        revocations: revocations.clone(),
        prometheus,
        clock,
        max_body: max_token_bytes * 3 + 4096,
        max_token_bytes,
        max_batch,
        max_concurrent_batches,
    });

    // Keys in config or on disk are there before the first request (a token
    // minted the moment dev mode prints its walkthrough must not find its
    // issuer still without keys); fetched ones come with readiness.
    reload::start_background(&fresh, &state, &shutdown, FirstKeys::Local).await;
    reload::loaded_now();
    tasks.spawn(revocations.run_upkeep(
        state.clock.clone(),
        Duration::from_secs(30),
        shutdown.child_token(),
    ));

    crate::tls::install_crypto_provider();
    let tls = match &server.tls {
        Some(t) => {
            let http_tls = ReloadingTls::new(t, &[b"h2", b"http/1.1"]).context("server.tls")?;
            let grpc_tls = ReloadingTls::new(t, &[b"h2"]).context("server.tls")?;
            let poll = Duration::from_secs(t.reload_poll_seconds.max(1));
            tasks.spawn(crate::tls::watch(
                vec![http_tls.clone(), grpc_tls.clone()],
                poll,
                shutdown.child_token(),
            ));
            Some((http_tls, grpc_tls))
        }
        None => None,
    };

    let http_listener = TcpListener::bind(&server.http_addr)
        .await
        .with_context(|| format!("cannot listen on server.http_addr {}", server.http_addr))?;
    let http_addr = http_listener.local_addr()?;
    let limits = Limits::from_config(&server);
    let http2 = Http2::from_config(&server);
    // One budget for the HTTP and gRPC listeners: they share the open-files limit.
    let connections = Connections::new(limits.clone(), shutdown.child_token());
    let router = http::router(state.clone()).merge(extra_routes);
    tasks.spawn(serve::http(
        http_listener,
        connections.clone(),
        crate::api::entry::Entry::new(state.clone(), router),
        tls.as_ref().map(|(http_tls, _)| http_tls.clone()),
        http2,
        shutdown.clone(),
    ));

    let grpc_listener = TcpListener::bind(&server.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on server.grpc_addr {}", server.grpc_addr))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let (grpc_state, stop) = (state.clone(), shutdown.clone());
    match &tls {
        Some((_, grpc_tls)) => {
            let grpc_tls = grpc_tls.clone();
            let handshake = move |tcp, peer| {
                let tls = grpc_tls.clone();
                async move { crate::tls::handshake(&tls, tcp, peer).await }
            };
            let incoming =
                serve::grpc_incoming(grpc_listener, connections, handshake, stop.child_token());
            tasks.spawn(async move {
                if let Err(e) = crate::api::grpc::serve(grpc_state, incoming, http2, stop).await {
                    tracing::error!(error = %e, "gRPC listener failed");
                }
            });
        }
        None => {
            let handshake = |tcp, _| async move { Some((tcp, crate::tls::PeerNames::default())) };
            let incoming =
                serve::grpc_incoming(grpc_listener, connections, handshake, stop.child_token());
            tasks.spawn(async move {
                if let Err(e) = crate::api::grpc::serve(grpc_state, incoming, http2, stop).await {
                    tracing::error!(error = %e, "gRPC listener failed");
                }
            });
        }
    }

    let metrics_addr = if server.metrics_addr.is_empty() {
        None
    } else {
        let listener = TcpListener::bind(&server.metrics_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on server.metrics_addr {}",
                    server.metrics_addr
                )
            })?;
        let addr = listener.local_addr()?;
        let probes = Connections::new(limits.probes(), shutdown.child_token());
        tasks.spawn(serve::http(
            listener,
            probes,
            probes::probe_router(state.clone()),
            None,
            http2,
            shutdown.clone(),
        ));
        Some(addr)
    };

    tracing::info!(%http_addr, %grpc_addr, ?metrics_addr, issuers = state.runtime().issuers.len(), "tokend listening");
    Ok(App {
        http_addr,
        grpc_addr,
        metrics_addr,
        state,
        shutdown,
        tasks,
        grace: Duration::from_secs(server.shutdown_grace_seconds),
    })
}

impl App {
    /// Reloads `path` into this tokend on SIGHUP and, with `watch_file`,
    /// when its content changes (`serve --watch-config`).
    pub fn watch_config(&mut self, path: std::path::PathBuf, watch_file: bool) {
        self.tasks.spawn(reload::watch(
            Arc::new(self.reloader(path)),
            watch_file,
            self.shutdown.child_token(),
        ));
    }

    /// A reloader of `path` into this tokend (what SIGHUP runs).
    pub fn reloader(&self, path: std::path::PathBuf) -> Reloader {
        Reloader::new(path, self.state.clone(), self.shutdown.clone())
    }

    /// Stops accepting, lets in-flight requests finish within the grace period,
    /// stops background tasks. Returns whether everything drained in time.
    pub async fn shutdown(mut self) -> bool {
        self.shutdown.cancel();
        let drained = tokio::time::timeout(self.grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tracing::warn!(grace = ?self.grace, "shutdown grace period over; dropping remaining connections");
            self.tasks.abort_all();
        }
        drained
    }

    /// Runs until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> bool {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

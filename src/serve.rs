//! Serving connections from a guarded listener: HTTP (axum on hyper, plain or
//! TLS) and the connection stream handed to tonic for gRPC. Both apply the
//! header-read timeout, HTTP/2 keepalive and stream limits of `[server]`.

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::listen::{Connections, Guarded};
use crate::tls::{PeerNames, ReloadingTls};

/// HTTP/2 settings shared by the HTTP and gRPC listeners.
#[derive(Debug, Clone, Copy)]
pub struct Http2 {
    pub keepalive_interval: Option<Duration>,
    pub keepalive_timeout: Duration,
    pub max_concurrent_streams: u32,
}

impl Http2 {
    pub fn from_config(server: &ServerConfig) -> Http2 {
        Http2 {
            keepalive_interval: (server.http2_keepalive_interval_seconds > 0)
                .then(|| Duration::from_secs(server.http2_keepalive_interval_seconds)),
            keepalive_timeout: Duration::from_secs(server.http2_keepalive_timeout_seconds),
            max_concurrent_streams: server.max_concurrent_streams,
        }
    }
}

/// Answers the HTTP requests of a connection (cloned per request); `peer`
/// says who is on it.
pub trait HttpService: Clone + Send + Sync + 'static {
    fn call(
        self,
        request: hyper::Request<Incoming>,
        peer: Peer,
    ) -> impl Future<Output = hyper::Response<axum::body::Body>> + Send + 'static;
}

impl HttpService for axum::Router {
    fn call(
        self,
        request: hyper::Request<Incoming>,
        peer: Peer,
    ) -> impl Future<Output = hyper::Response<axum::body::Body>> + Send + 'static {
        route(self, request, peer)
    }
}

/// Routes a request through `router`, carrying the peer's address
/// (`ConnectInfo`) and, over TLS, its client certificate's names ([`PeerNames`]).
pub fn route<B>(
    router: axum::Router,
    mut request: hyper::Request<B>,
    peer: Peer,
) -> impl Future<Output = hyper::Response<axum::body::Body>> + Send + 'static
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let extensions = request.extensions_mut();
    extensions.insert(axum::extract::ConnectInfo(peer.addr));
    if let Some(names) = peer.names {
        extensions.insert(names);
    }
    let answer = tower::ServiceExt::oneshot(router, request);
    async move {
        match answer.await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Who is on a connection: the peer's address and, over TLS, its client
/// certificate's names.
#[derive(Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub names: Option<PeerNames>,
}

/// Serves `service` on `listener` until `shutdown`, then lets open
/// connections finish their requests.
pub async fn http(
    listener: TcpListener,
    connections: Arc<Connections>,
    service: impl HttpService,
    tls: Option<Arc<ReloadingTls>>,
    http2: Http2,
    shutdown: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(connections.limits().header_read);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(http2.keepalive_interval)
        .keep_alive_timeout(http2.keepalive_timeout)
        .max_concurrent_streams(http2.max_concurrent_streams);
    while let Some((tcp, addr)) = connections.accept(&listener, &shutdown).await {
        let (service, builder, watcher, tls) = (
            service.clone(),
            builder.clone(),
            graceful.watcher(),
            tls.clone(),
        );
        tokio::spawn(async move {
            let peer = |names| Peer { addr, names };
            match tls {
                None => serve_connection(tcp, peer(None), service, &builder, watcher).await,
                Some(tls) => {
                    if let Some((stream, names)) = crate::tls::handshake(&tls, tcp, addr).await {
                        serve_connection(stream, peer(Some(names)), service, &builder, watcher)
                            .await
                    }
                }
            }
        });
    }
    graceful.shutdown().await;
}

async fn serve_connection<IO>(
    io: IO,
    peer: Peer,
    service: impl HttpService,
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        // Boxed: hyper moves a request's future into place, and unboxed the
        // answer's state is kilobytes.
        let answer = Box::pin(service.clone().call(request, peer.clone()));
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    let _ = watcher.watch(connection).await;
}

/// Guarded connections for tonic's `serve_with_incoming`, after `handshake`
/// (identity for plain TCP, TLS otherwise), each in its own task so a slow
/// client never holds up the accept loop.
pub fn grpc_incoming<IO, H, F>(
    listener: TcpListener,
    connections: Arc<Connections>,
    handshake: H,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<Result<GrpcConnection<IO>, std::io::Error>>
where
    IO: Send + 'static,
    H: Fn(Guarded<TcpStream>, SocketAddr) -> F + Send + 'static,
    F: Future<Output = Option<(IO, PeerNames)>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(128);
    tokio::spawn(async move {
        while let Some((tcp, addr)) = connections.accept(&listener, &shutdown).await {
            let (handshaking, tx) = (handshake(tcp, addr), tx.clone());
            tokio::spawn(async move {
                if let Some((io, names)) = handshaking.await {
                    let peer = GrpcPeer { addr, names };
                    let _ = tx.send(Ok(GrpcConnection { io, peer })).await;
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Who is on the other end of a gRPC connection, learnt once: its address
/// when accepted, its client certificate's names after the handshake. tonic
/// puts a clone in the extensions of every call on the connection, so no
/// call parses the certificate again.
#[derive(Clone, Debug)]
pub struct GrpcPeer {
    pub addr: SocketAddr,
    pub names: PeerNames,
}

/// A gRPC connection with its [`GrpcPeer`].
pub struct GrpcConnection<IO> {
    io: IO,
    peer: GrpcPeer,
}

impl<IO: Send + Sync + Unpin + 'static> tonic::transport::server::Connected for GrpcConnection<IO> {
    type ConnectInfo = GrpcPeer;
    fn connect_info(&self) -> GrpcPeer {
        self.peer.clone()
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for GrpcConnection<IO> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for GrpcConnection<IO> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

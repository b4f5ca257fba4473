//! Where every HTTP request enters: its request id (the caller's
//! `x-request-id`, else a new one, echoed in the response), its span, and a
//! guard that turns a panic into a 500. The two verdict routes, forward-auth
//! and introspection, go straight to their handlers; every other request goes
//! through the axum router.
//!
//! This replaces tower-http's request-id, trace and catch-panic layers: those
//! wrap every route of the router, and on a cached `/auth` the per-request
//! service clones, boxed futures and body wrappers cost as much as the
//! verdict itself (see `docs/PERFORMANCE.md`); the router's own dispatch cost
//! `/introspect` another 6 % of its CPU.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use std::fmt::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Instant;
use tracing::{Level, Span};

use crate::serve::{HttpService, Peer};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The HTTP front door: one per listener, cloned per connection.
#[derive(Clone)]
pub struct Entry(Arc<Inner>);

struct Inner {
    state: AppState,
    router: Router,
    ids: SequentialIds,
}

impl Entry {
    pub fn new(state: AppState, router: Router) -> Entry {
        Entry(Arc::new(Inner {
            state,
            router,
            ids: SequentialIds::default(),
        }))
    }

    /// One request, as a connection would hand it over (benches call this
    /// with bodies of their own).
    pub async fn answer<B>(&self, request: Request<B>, peer: Peer) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        Inner::answer(self.0.clone(), request, peer).await
    }
}

impl HttpService for Entry {
    // The answer's own future, not one that awaits it: each level of
    // `async` nesting copies the whole state below it once more.
    fn call(
        self,
        request: Request<Incoming>,
        peer: Peer,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        Inner::answer(self.0, request, peer)
    }
}

impl Inner {
    // `async` blocks rather than `async fn`s, here and in `route`: an
    // `async fn` keeps its arguments twice in its state (the request is
    // 264 bytes), and every byte of that state is copied when it is awaited.
    #[allow(clippy::manual_async_fn)]
    fn answer<B>(
        self: Arc<Inner>,
        request: Request<B>,
        peer: Peer,
    ) -> impl Future<Output = Response<Body>> + Send + 'static
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        async move {
            let id = self.ids.for_request(&request);
            let span = span(&request, &id);
            let started = (!span.is_disabled()).then(Instant::now);
            // The span is entered and a panic caught around each poll of the
            // route's future where it lies: wrapping it (`instrument`,
            // `catch_unwind`) would copy its whole state (kilobytes) per wrapper.
            let mut routed = std::pin::pin!(self.route(request, peer));
            let polled = std::future::poll_fn(|cx| {
                let _entered = span.enter();
                match std::panic::catch_unwind(AssertUnwindSafe(|| routed.as_mut().poll(cx))) {
                    Ok(Poll::Ready(response)) => Poll::Ready(Ok(response)),
                    Ok(Poll::Pending) => Poll::Pending,
                    Err(panic) => Poll::Ready(Err(panic)),
                }
            });
            let mut response = match polled.await {
                Ok(response) => response,
                Err(_) => {
                    tracing::error!(parent: &span, "request handler panicked");
                    panicked()
                }
            };
            if let Some(started) = started {
                tracing::debug!(
                    parent: &span,
                    status = response.status().as_u16(),
                    latency_us = started.elapsed().as_micros() as u64,
                    "finished processing request"
                );
            }
            response.headers_mut().insert(REQUEST_ID, id);
            response
        }
    }

    #[allow(clippy::manual_async_fn)]
    fn route<B>(
        &self,
        request: Request<B>,
        peer: Peer,
    ) -> impl Future<Output = Response<Body>> + Send + '_
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        async move {
            match (request.uri().path(), request.method()) {
                ("/auth", _) => super::http::forward_auth(&self.state, request.headers()).await,
                // Boxed, as is the router's future: a request's future is as
                // large as its largest route's and is copied whole at each
                // level of the path; unboxed, these two would add about
                // 1.1 KB to every `/auth`'s future.
                ("/introspect", &Method::POST) => {
                    let mut request = request.map(Body::new);
                    if let Some(names) = peer.names {
                        request.extensions_mut().insert(names);
                    }
                    Box::pin(super::http::introspect(&self.state, request)).await
                }
                ("/introspect", _) => {
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                    let allow = HeaderValue::from_static("POST");
                    response.headers_mut().insert(header::ALLOW, allow);
                    response
                }
                _ => Box::pin(crate::serve::route(self.router.clone(), request, peer)).await,
            }
        }
    }
}

/// A span per request with its id, method, path and result. The verdict
/// routes (`/auth`, `/introspect`), which log nothing at INFO, get a DEBUG
/// span, so that at the default level they pay nothing for it; every other
/// route's span is at INFO, so that its INFO lines (the revocation audit)
/// carry the request id.
fn span<B>(request: &Request<B>, id: &HeaderValue) -> Span {
    let id = id.to_str().unwrap_or("");
    let path = request.uri().path();
    macro_rules! span {
        ($level:expr) => {
            tracing::span!(
                $level,
                "request",
                request_id = %id,
                method = %request.method(),
                path = %path,
                result = tracing::field::Empty,
            )
        };
    }
    if matches!(path, "/auth" | "/introspect") {
        span!(Level::DEBUG)
    } else {
        span!(Level::INFO)
    }
}

/// What a panicking handler answers: a 500 with an RFC 6749 style body.
fn panicked() -> Response<Body> {
    let mut response = Response::new(Body::from(
        r#"{"error":"server_error","error_description":"internal error"}"#,
    ));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Request ids: the caller's `x-request-id`, else `<pid>-<counter>` in hex.
struct SequentialIds {
    pid: String,
    next: AtomicU64,
}

impl Default for SequentialIds {
    fn default() -> SequentialIds {
        SequentialIds {
            pid: format!("{:x}-", std::process::id()),
            next: AtomicU64::new(0),
        }
    }
}

impl SequentialIds {
    fn for_request<B>(&self, request: &Request<B>) -> HeaderValue {
        if let Some(given) = request.headers().get(REQUEST_ID) {
            return given.clone();
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.pid.len() + 16);
        id.push_str(&self.pid);
        let _ = write!(id, "{n:x}");
        HeaderValue::from_maybe_shared(Bytes::from(id)).unwrap_or(HeaderValue::from_static(""))
    }
}

//! The gate in front of `tokend.v1.TokenService`: the caller is authenticated
//! from the call's headers (and client certificate) before tonic reads a byte
//! of the message, each method gets a body limit of its own, and batches take
//! a permit so decoded bodies in flight stay bounded. A refused call is
//! answered trailers-only; the handler finds the [`Caller`] in the extensions.

use axum::http::{Request, Response};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::server::NamedService;

use crate::callers::{Caller, Credentials};
use crate::config::Permission;
use crate::errors::ApiError;
use crate::metrics::Api;
use crate::serve::GrpcPeer;
use crate::state::AppState;

/// What the gate knows about each method: the permission and the body limit.
struct Method {
    permission: Permission,
    name: &'static str,
    batch: bool,
}

fn method(path: &str) -> Option<Method> {
    let (permission, name, batch) = match path.strip_prefix("/tokend.v1.TokenService/")? {
        "Introspect" => (Permission::Introspect, "introspect", false),
        "IntrospectBatch" => (Permission::Introspect, "introspect", true),
        "Revoke" => (Permission::Revoke, "revoke", false),
        _ => return None,
    };
    Some(Method {
        permission,
        name,
        batch,
    })
}

/// Wraps the generated service.
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    state: AppState,
    /// Limit of a single-token call: one token plus room for the other fields.
    small: usize,
    /// Limit of a batch: `max_batch` tokens of `max_token_bytes`.
    large: usize,
    batches: Arc<Semaphore>,
}

impl<S> Gate<S> {
    pub fn new(inner: S, state: AppState, concurrent_batches: usize) -> Gate<S> {
        let small = state.max_token_bytes + 1024;
        let large = state.max_batch.max(1) * (state.max_token_bytes + 64) + 64 * 1024;
        Gate {
            inner,
            state,
            small,
            large,
            batches: Arc::new(Semaphore::new(concurrent_batches.max(1))),
        }
    }

    /// The caller of this call, from `authorization` or the client
    /// certificate (its names read once per connection, [`GrpcPeer`]).
    fn admit<B>(&self, request: &Request<B>, method: &Method) -> Result<Caller, ApiError> {
        let cert_names = request
            .extensions()
            .get::<GrpcPeer>()
            .map(|peer| peer.names.0.as_slice())
            .unwrap_or_default();
        let credentials = Credentials::new(request.headers(), cert_names);
        let admitted =
            self.state
                .runtime()
                .clients
                .admit(&credentials, method.permission, method.name);
        Ok(admitted?)
    }
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<Request<tonic::body::Body>> for Gate<S>
where
    S: tower::Service<
            Request<tonic::body::Body>,
            Response = Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<tonic::body::Body>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(method) = method(request.uri().path()) else {
            return Box::pin(inner.call(request)); // tonic answers UNIMPLEMENTED
        };
        let started = Instant::now();
        let caller = match self.admit(&request, &method) {
            Ok(caller) => caller,
            Err(refused) => {
                self.state
                    .metrics
                    .request(Api::Grpc, refused.outcome(), started.elapsed());
                let status = refused.to_status();
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        request.extensions_mut().insert(caller);
        let limit = if method.batch { self.large } else { self.small };
        let request = request.map(|body| tonic::body::Body::new(Capped::new(body, limit)));
        if !method.batch {
            return Box::pin(inner.call(request));
        }
        let batches = self.batches.clone();
        Box::pin(async move {
            let _permit = batches.acquire_owned().await;
            inner.call(request).await
        })
    }
}

impl<S: NamedService> NamedService for Gate<S> {
    const NAME: &'static str = S::NAME;
}

/// A request body that fails with `RESOURCE_EXHAUSTED` past `left` bytes,
/// before tonic buffers more of it.
struct Capped {
    inner: tonic::body::Body,
    left: usize,
    limit: usize,
}

impl Capped {
    fn new(inner: tonic::body::Body, limit: usize) -> Capped {
        Capped {
            inner,
            left: limit,
            limit,
        }
    }
}

impl Body for Capped {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            if data.len() > self.left {
                let limit = self.limit;
                self.left = 0;
                return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                    "message larger than {limit} bytes for this method"
                )))));
            }
            self.left -= data.len();
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

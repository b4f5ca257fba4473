//! A span per HTTP request with its request id, echoed in the response.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// Request ids: the caller's `x-request-id`, else `<pid>-<counter>` in hex.
#[derive(Clone)]
struct SequentialIds {
    pid: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for SequentialIds {
    fn default() -> SequentialIds {
        SequentialIds {
            pid: format!("{:x}-", std::process::id()).into(),
            next: Default::default(),
        }
    }
}

impl tower_http::request_id::MakeRequestId for SequentialIds {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        use std::fmt::Write;
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut id = String::with_capacity(self.pid.len() + 16);
        id.push_str(&self.pid);
        let _ = write!(id, "{n:x}");
        HeaderValue::from_maybe_shared(Bytes::from(id))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// A span per request with its id (echoed in the response), method, path,
/// result and latency. Requests are logged at DEBUG: an inactive token is an
/// answer, not an error. The verdict routes (`/auth`, `/introspect`), which
/// log nothing at INFO, get a DEBUG span, so that at the default level they
/// pay nothing for it; every other route's span is at INFO, so that its INFO
/// lines (the revocation audit) carry the request id.
pub fn with_request_spans(router: Router) -> Router {
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let header = HeaderName::from_static("x-request-id");
    router
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<Body>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
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
                        span!(tracing::Level::DEBUG)
                    } else {
                        span!(tracing::Level::INFO)
                    }
                })
                .on_request(())
                // A 4xx/5xx answer (a 503 from /readyz, a 401) is not a server error to log loudly.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG))
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::DEBUG)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        .layer(SetRequestIdLayer::new(header, SequentialIds::default()))
}

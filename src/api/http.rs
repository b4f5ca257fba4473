//! The HTTP front (axum): RFC 7662 introspection, forward-auth, probes,
//! metrics and the issuer admin API.

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::auth::{Caller, Credentials};
use super::errors::ApiError;
use super::front::{self, Measured};
use super::revoke::{self, AdminRevocation};
use crate::clock::Clock;
use crate::config::Permission;
use crate::metrics::{Api, Metrics, Outcome};
use crate::revocation::Revocations;
use crate::runtime::Runtime;
use crate::token::{Presented, TokenSource, Verdict, Verified, fingerprint};

/// What every handler shares: the configuration snapshot (loaded once per
/// request), and the state that outlives snapshots.
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub revocations: Arc<Revocations>,
    pub metrics: Arc<Metrics>,
    pub prometheus: PrometheusHandle,
    pub clock: Clock,
    /// Largest accepted request body.
    pub max_body: usize,
    pub max_token_bytes: usize,
    /// Most tokens in one gRPC batch.
    pub max_batch: usize,
    /// `IntrospectBatch` calls decoded at once.
    pub max_concurrent_batches: usize,
}

pub type AppState = Arc<Shared>;

impl Shared {
    /// The current configuration snapshot: a lock-free load.
    pub fn runtime(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.runtime.load()
    }
}

/// The main listener's routes.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body;
    let router = Router::new()
        .route("/introspect", post(introspect))
        .route("/auth", any(forward_auth))
        .route("/revoke", post(revoke_token))
        .merge(admin_routes(&state))
        .merge(probe_routes())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::new());
    with_request_spans(router.with_state(state))
}

/// `/admin/*`, each request counted under `api="admin"` by its answer's status.
fn admin_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/admin/revocations",
            post(admin_revoke).get(list_revocations),
        )
        .route(
            "/admin/revocations/{id}",
            axum::routing::delete(lift_revocation),
        )
        .route("/admin/issuers", get(list_issuers))
        .route("/admin/issuers/{name}/refresh", post(refresh_issuer))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            measure_admin,
        ))
}

async fn measure_admin(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let measured = Measured::start(&state.metrics, Api::Admin);
    let response = next.run(request).await;
    measured.finish(Outcome::from_status(response.status()));
    response
}

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
fn with_request_spans(router: Router) -> Router {
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

/// Probes and metrics, also served alone on `server.metrics_addr`.
pub fn probe_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The metrics listener's routes.
pub fn probe_router(state: AppState) -> Router {
    probe_routes()
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}

fn authenticate(
    state: &Shared,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    permission: Permission,
    name: &'static str,
) -> Result<Caller, ApiError> {
    let credentials = Credentials::from_http(headers, extensions);
    state
        .runtime()
        .clients
        .admit(&credentials, permission, name)
}

/// `authenticate` for a handler holding the whole request.
fn admit(
    state: &Shared,
    request: &Request,
    permission: Permission,
    name: &'static str,
) -> Result<Caller, ApiError> {
    authenticate(
        state,
        request.headers(),
        request.extensions(),
        permission,
        name,
    )
}

/// Reads an `application/x-www-form-urlencoded` body (RFC 7662 §2.1) and returns
/// its `token`; a repeated parameter is invalid (RFC 6749 §3.2).
async fn read_token_form(request: Request, limit: usize) -> Result<String, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ApiError::InvalidRequest(
            "content type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::InvalidRequest(format!("body larger than {limit} bytes")))?;
    let mut token = None;
    let mut hint = 0;
    for (name, value) in form_pairs(&body) {
        match name.as_ref() {
            "token" if token.is_some() => {
                return Err(ApiError::InvalidRequest(
                    "token given more than once".into(),
                ));
            }
            "token" => token = Some(value.into_owned()),
            "token_type_hint" => hint += 1,
            _ => {}
        }
    }
    if hint > 1 {
        return Err(ApiError::InvalidRequest(
            "token_type_hint given more than once".into(),
        ));
    }
    match token {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(ApiError::InvalidRequest("missing token parameter".into())),
    }
}

/// The pairs of an `application/x-www-form-urlencoded` body. A body with
/// nothing to decode (no `%`, no `+`: a JWT never needs either) is split in
/// place; only the others go through the general decoder, which showed up in
/// a profile of `/introspect` at 6 % of tokend's CPU.
fn form_pairs(body: &[u8]) -> Box<dyn Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_> {
    // `contains` on bytes is a memchr: two of those beat one byte-by-byte scan.
    let plain = !body.contains(&b'%') && !body.contains(&b'+');
    match std::str::from_utf8(body) {
        Ok(text) if plain => Box::new(text.split('&').filter(|p| !p.is_empty()).map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (Cow::Borrowed(name), Cow::Borrowed(value))
        })),
        _ => Box::new(url::form_urlencoded::parse(body)),
    }
}

async fn introspect(State(state): State<AppState>, request: Request) -> Response {
    let measured = Measured::start(&state.metrics, Api::Http);
    let result = async {
        let caller = admit(&state, &request, Permission::Introspect, "introspect")?;
        let token = read_token_form(request, state.max_body).await?;
        let presented = Presented::new(&token, TokenSource::FormBody);
        let verdict = state.runtime().verifier.check(&presented, (state.clock)()).await;
        tracing::debug!(caller = %caller.id, token = %fingerprint(&token), reason = ?verdict.reason(), "introspect");
        Ok::<_, ApiError>(verdict)
    }
    .await;
    let (outcome, response) = match result {
        Ok(Verdict::Active(verified)) => (
            Outcome::Active,
            json_response(introspection_json(&verified)),
        ),
        Ok(Verdict::Inactive(_)) => (
            Outcome::Inactive,
            json_response(Bytes::from_static(br#"{"active":false}"#)),
        ),
        Err(e) => (e.outcome(), e.into_response()),
    };
    tracing::Span::current().record("result", outcome.label());
    measured.finish(outcome);
    response
}

fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The RFC 7662 answer for a verified token.
pub fn introspection_json(verified: &Verified) -> Bytes {
    verified.claims.introspection_json().into()
}

/// Forward-auth for nginx `auth_request`, Traefik ForwardAuth and Caddy
/// `forward_auth`: the end user's bearer token in, a verdict and identity headers out.
async fn forward_auth(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let measured = Measured::start(&state.metrics, Api::ForwardAuth);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(front::bearer);
    let verdict = match token {
        Some(token) => {
            let presented = Presented::new(token, TokenSource::Header("authorization"))
                .for_request(front::forwarded_request(&headers));
            Some(
                state
                    .runtime()
                    .verifier
                    .check(&presented, (state.clock)())
                    .await,
            )
        }
        None => None,
    };
    let (outcome, response) = match verdict {
        Some(Verdict::Active(verified)) => match front::identity_headers(&verified) {
            Ok(identity) => (Outcome::Active, identity.into_response()),
            Err(_) => (Outcome::UnsafeClaim, invalid_token()),
        },
        _ => (Outcome::Inactive, invalid_token()),
    };
    measured.finish(outcome);
    response
}

/// The challenge `/auth` answers when it refuses a token.
fn invalid_token() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(front::INVALID_TOKEN_CHALLENGE),
        )],
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let report = readiness(&state);
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report.body)).into_response()
}

/// Readiness of the whole service, shared by `/readyz` and gRPC health. The
/// body holds states, never error text: `/readyz` answers anyone (and the
/// metrics port), and an error may quote a key URL. `/admin/issuers` has it.
pub struct Readiness {
    pub ready: bool,
    pub body: Value,
}

pub fn readiness(state: &Shared) -> Readiness {
    let mut ready = true;
    let mut degraded = false;
    let mut issuers = Map::new();
    for issuer in &state.runtime().issuers {
        let status = issuer.status();
        let loaded = issuer.is_loaded();
        let failing = status.last_error.is_some();
        ready &= loaded;
        degraded |= loaded && failing;
        issuers.insert(
            issuer.name().to_owned(),
            json!({
                "ready": loaded,
                "keys": issuer.keys().keys().len(),
                "degraded": loaded && failing,
                "failing": failing,
            }),
        );
    }
    let revocations = &state.revocations;
    let store = revocations.health();
    let tripped = revocations.tripped();
    ready &= store.loaded && !tripped;
    degraded |= !store.up || store.stale_seconds > 0;
    let label = if !ready {
        "not_ready"
    } else if degraded {
        "degraded"
    } else {
        "ready"
    };
    Readiness {
        ready,
        body: json!({
            "status": label,
            "issuers": issuers,
            "revocation": {
                "up": store.up,
                "loaded": store.loaded,
                "stale_seconds": store.stale_seconds,
                "fail_closed": tripped,
                "entries": revocations.local_copy().len(),
                "resyncs": store.resyncs,
            },
        }),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.prometheus.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        Body::from(Bytes::from(text)),
    )
        .into_response()
}

fn unix(t: Option<SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Null, |d| json!(d.as_secs()))
}

async fn list_issuers(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    authenticate(
        &state,
        &parts.headers,
        &parts.extensions,
        Permission::Admin,
        "admin",
    )?;
    let now = SystemTime::now();
    let issuers: Vec<Value> = state
        .runtime()
        .issuers
        .iter()
        .map(|issuer| {
            let status = issuer.status();
            let keys = issuer.keys();
            let key_list: Vec<Value> = keys
                .keys()
                .iter()
                .map(|k| json!({"kid": k.kid, "kty": k.kty(), "alg": k.alg.map(|a| a.name()), "bits": k.bits()}))
                .collect();
            let rejected: Vec<Value> =
                keys.rejected.iter().map(|(kid, why)| json!({"kid": kid, "reason": why.to_string()})).collect();
            let age = status.last_success.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs());
            json!({
                "name": issuer.name(),
                "issuer": issuer.config.issuer,
                "algorithms": issuer.config.allowed.iter().map(|a| a.name()).collect::<Vec<_>>(),
                "keys": key_list,
                "rejected_keys": rejected,
                "ready": issuer.is_loaded(),
                "last_refresh": unix(status.last_success),
                "last_attempt": unix(status.last_attempt),
                "last_error": status.last_error,
                "consecutive_failures": status.consecutive_failures,
                "staleness_seconds": age,
                "next_refresh_seconds": status.next_refresh.map(|d| d.as_secs()),
                "stale": status.last_error.is_some(),
            })
        })
        .collect();
    let store = state.revocations.health();
    let body = json!({
        "issuers": issuers,
        "revocation_store": {"up": store.up, "last_error": store.detail},
    });
    Ok(axum::Json(body).into_response())
}

async fn refresh_issuer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    let caller = authenticate(
        &state,
        &parts.headers,
        &parts.extensions,
        Permission::Admin,
        "admin",
    )?;
    let issuer = state
        .runtime()
        .issuer_by_name(&name)
        .ok_or(ApiError::NotFound)?;
    tracing::info!(caller = %caller.id, issuer = %name, "admin asked for a key refresh");
    match issuer.request_refresh().await {
        Ok(()) => Ok(axum::Json(
            json!({"issuer": name, "refreshed": true, "keys": issuer.keys().keys().len()}),
        )
        .into_response()),
        Err(e) => Err(ApiError::Unavailable(format!(
            "refresh of {name} failed: {e}"
        ))),
    }
}

/// The caller's address, for audit lines.
fn peer(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string())
}

/// RFC 7009 revocation: 200 for every well-formed request, 503 if the store
/// cannot take the write.
async fn revoke_token(State(state): State<AppState>, request: Request) -> Response {
    let measured = Measured::start(&state.metrics, Api::Http);
    let from = peer(&request);
    let result = async {
        let caller = admit(&state, &request, Permission::Revoke, "revoke")?;
        let token = read_token_form(request, state.max_body).await?;
        let presented = Presented::new(&token, TokenSource::FormBody);
        revoke::revoke_token(&state, &presented, &caller, &from).await
    }
    .await;
    let (outcome, response) = match result {
        Ok(_) => (Outcome::Ok, StatusCode::OK.into_response()),
        Err(e) => (e.outcome(), e.into_response()),
    };
    measured.finish(outcome);
    response
}

async fn admin_revoke(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let from = peer(&request);
    let caller = admit(&state, &request, Permission::Admin, "admin")?;
    let body = axum::body::to_bytes(request.into_body(), state.max_body)
        .await
        .map_err(|_| {
            ApiError::InvalidRequest(format!("body larger than {} bytes", state.max_body))
        })?;
    let req: AdminRevocation = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("not a revocation request: {e}")))?;
    let entry = revoke::admin_revoke(&state, req, &caller, &from).await?;
    Ok((StatusCode::CREATED, axum::Json(entry)).into_response())
}

#[derive(serde::Deserialize)]
struct Paging {
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list_revocations(
    State(state): State<AppState>,
    paging: Result<Query<Paging>, axum::extract::rejection::QueryRejection>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    authenticate(
        &state,
        &parts.headers,
        &parts.extensions,
        Permission::Admin,
        "admin",
    )?;
    let Query(paging) = paging.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let limit = paging.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .revocations
        .list(paging.cursor, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let next = if entries.len() == limit {
        entries.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(axum::Json(json!({"entries": entries, "next_cursor": next})).into_response())
}

async fn lift_revocation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let from = peer(&request);
    let caller = admit(&state, &request, Permission::Admin, "admin")?;
    revoke::lift(&state, id, &caller, &from).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_pairs_split_in_place_and_decode_the_same() {
        for body in [
            "token=a.b-c_d&token_type_hint=access_token",
            "&&token=x==&=y&z",
            "token=a%2Eb+c&x=%ZZ",
            "token=\u{e9}t\u{e9}",
        ] {
            let fast: Vec<(String, String)> = super::form_pairs(body.as_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            let general: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(fast, general, "{body}");
        }
        assert!(
            super::form_pairs(b"token=\xff").all(|(_, v)| v == "\u{fffd}"),
            "invalid UTF-8 is decoded as the general decoder does"
        );
    }
}

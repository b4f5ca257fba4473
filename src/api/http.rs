//! The HTTP front (axum): the routes, RFC 7662 introspection, RFC 7009
//! revocation and forward-auth; admin and probes live beside it, request ids
//! and spans in [`super::entry`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::edge::{self, Answer};
use super::front::{self, Measured};
use super::introspection;
use super::revoke;
use crate::callers::{Caller, Credentials};
use crate::config::Permission;
use crate::errors::ApiError;
use crate::metrics::{Api, Outcome};
use crate::request::{Presented, ProofTarget, TokenSource, form_pairs};
use crate::state::{AppState, Shared};
use crate::token::fingerprint;
use crate::verify::Verdict;

/// The main listener's routes.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body;
    let router = Router::new()
        .route("/revoke", post(revoke_token))
        .route(
            "/backchannel-logout",
            post(super::events::backchannel_logout),
        )
        .route("/ssf/events", post(super::events::ssf_push))
        .route("/.well-known/jwks.json", get(assertion_jwks))
        .merge(super::admin::admin_routes(&state))
        .merge(super::probes::probe_routes())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(max_body));
    router.with_state(state)
}

pub(super) fn authenticate(
    state: &Shared,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    permission: Permission,
    name: &'static str,
) -> Result<Caller, ApiError> {
    let credentials = Credentials::from_http(headers, extensions);
    let admitted = state
        .runtime()
        .clients
        .admit(&credentials, permission, name);
    Ok(admitted?)
}

/// `authenticate` for a handler holding the whole request.
pub(super) fn admit(
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
    read_form_parameter(request, limit, "token").await
}

/// Reads an `application/x-www-form-urlencoded` body and returns its
/// parameter `wanted`, which must be there once and not empty.
pub(super) async fn read_form_parameter(
    request: Request,
    limit: usize,
    wanted: &'static str,
) -> Result<String, ApiError> {
    let [value] = read_form(request, limit, [wanted]).await?;
    value.ok_or_else(|| ApiError::InvalidRequest(format!("missing {wanted} parameter")))
}

/// Reads an `application/x-www-form-urlencoded` body: the first of `wanted`
/// must be there and not empty, the others may be; none may be repeated
/// (nor `token_type_hint`).
async fn read_form<const N: usize>(
    request: Request,
    limit: usize,
    wanted: [&'static str; N],
) -> Result<[Option<String>; N], ApiError> {
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
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut hint = 0;
    for (name, value) in form_pairs(&body) {
        if let Some(i) = wanted.iter().position(|w| name == *w) {
            if found[i].is_some() {
                return Err(ApiError::InvalidRequest(format!(
                    "{} given more than once",
                    wanted[i]
                )));
            }
            found[i] = Some(value.into_owned());
        } else if name == "token_type_hint" {
            hint += 1;
        }
    }
    if hint > 1 {
        return Err(ApiError::InvalidRequest(
            "token_type_hint given more than once".into(),
        ));
    }
    if found[0].as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::InvalidRequest(format!(
            "missing {} parameter",
            wanted[0]
        )));
    }
    Ok(found)
}

/// RFC 7662 introspection (`POST /introspect`); [`super::entry`] calls it
/// without the router. A caller that accepts
/// `application/token-introspection+jwt` gets the answer signed (RFC 9701).
pub(super) async fn introspect(state: &Shared, request: Request) -> Response {
    let measured = Measured::start(&state.metrics, Api::Http);
    let signed = wants_signed_answer(request.headers());
    let result = async {
        let caller = admit(state, &request, Permission::Introspect, "introspect")?;
        let [token, proof, method, uri] = read_form(
            request,
            state.max_body,
            ["token", "dpop_proof", "http_method", "http_uri"],
        )
        .await?;
        let token = token.unwrap_or_default();
        // A DPoP-bound token is checked against the request the resource
        // server says it got (RFC 9449 §4.3 with `htm` = http_method, `htu` = http_uri).
        let target = ProofTarget::Stated {
            method: method.as_deref().unwrap_or(""),
            uri: uri.as_deref().unwrap_or(""),
        };
        let presented =
            Presented::new(&token, TokenSource::FormBody).with_proof(proof.as_deref(), target);
        let now = (state.clock)();
        let runtime = state.runtime();
        let verdict = runtime.verifier.check(&presented, now).await;
        tracing::debug!(caller = %caller.id, token = %fingerprint(&token), reason = ?verdict.reason(), "introspect");
        let outcome = match verdict {
            Verdict::Active(_) => Outcome::Active,
            Verdict::Inactive(_) => Outcome::Inactive,
        };
        let answer = match &verdict {
            Verdict::Active(verified) => introspection::introspection_json(verified),
            Verdict::Inactive(_) => Bytes::from_static(introspection::INACTIVE),
        };
        if !signed {
            return Ok((outcome, json_response(answer)));
        }
        let jwt = runtime
            .assertions
            .introspection_jwt(&caller.id, &answer, now)
            .ok_or(ApiError::NotAcceptable(
                "a signed introspection answer (RFC 9701) needs [assertion] enabled",
            ))?;
        let response = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(introspection::JWT_CONTENT_TYPE),
            )],
            jwt,
        )
            .into_response();
        Ok::<_, ApiError>((outcome, response))
    }
    .await;
    let (outcome, response) = result.unwrap_or_else(|e| (e.outcome(), e.into_response()));
    tracing::Span::current().record("result", outcome.label());
    measured.finish(outcome);
    response
}

/// Whether `Accept` names the RFC 9701 media type (the JSON answer stays the
/// default, whatever else `Accept` says).
fn wants_signed_answer(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',').any(|range| {
                range.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case(introspection::JWT_CONTENT_TYPE)
                })
            })
        })
    })
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

/// Forward-auth (`/auth`, any method) for nginx `auth_request`, Traefik
/// ForwardAuth and Caddy `forward_auth`: the end user's request in, a verdict
/// and identity headers out. [`super::entry`] calls it without the router.
pub(super) async fn forward_auth(state: &Shared, headers: &HeaderMap) -> Response {
    let measured = Measured::start(&state.metrics, Api::ForwardAuth);
    let (outcome, answer) =
        edge::authorize(state, headers, front::forwarded_request(headers), None).await;
    let response = match answer {
        Answer::Allow(identity) => {
            let mut response = Response::new(axum::body::Body::empty());
            *response.headers_mut() = identity;
            response
        }
        Answer::Unauthenticated(value) => {
            challenge(StatusCode::UNAUTHORIZED, HeaderValue::from_static(value))
        }
        Answer::Forbidden(value) => challenge(StatusCode::FORBIDDEN, value),
        Answer::BadRequest(bad) => ApiError::InvalidRequest(bad.to_string()).into_response(),
    };
    measured.finish(outcome);
    response
}

/// A refusal with its RFC 6750 challenge.
fn challenge(status: StatusCode, value: HeaderValue) -> Response {
    (status, [(header::WWW_AUTHENTICATE, value)]).into_response()
}

/// The public key of the identity assertion, for upstream services (404
/// while `[assertion]` is off).
async fn assertion_jwks(State(state): State<AppState>) -> Response {
    match state.runtime().assertions.jwks() {
        Some(jwks) => (
            [(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            )],
            axum::Json(jwks),
        )
            .into_response(),
        None => ApiError::NotFound.into_response(),
    }
}

/// The caller's address, for audit lines.
pub(super) fn peer(request: &Request) -> String {
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

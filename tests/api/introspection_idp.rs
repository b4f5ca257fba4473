//! A real HTTP server playing an IdP that issues opaque tokens: RFC 7662
//! introspection (§2.1 request: form `token`, `token_type_hint`, client
//! authentication; §2.2 answer), RFC 7009 revocation (§2.1), and an OpenID
//! discovery document naming both endpoints. Answers are shaped as Ory
//! Hydra's `introspectOAuth2Token` documents them
//! (https://www.ory.sh/docs/reference/api#tag/oAuth2/operation/introspectOAuth2Token:
//! `active`, `sub`, `scope`, `client_id`, `exp`, `iat`, `nbf`, `iss`, `aud`
//! as an array, `token_type`, `token_use`, `ext`). It counts calls and can be
//! told to be slow, to fail, or to answer garbage.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CLIENT_ID: &str = "tokend";
pub const CLIENT_SECRET: &str = "s3cret:with&odd=chars";

/// How the introspection endpoint misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// 503 to every call.
    Down,
    /// A 200 whose body is not JSON.
    Garbage,
    /// `"active": "true"`: a string, not a boolean.
    ActiveNotBoolean,
}

#[derive(Default)]
pub struct IdpState {
    /// token → its claims (the answer's members besides `active`).
    pub tokens: Mutex<HashMap<String, Value>>,
    pub mode: Mutex<Option<Mode>>,
    pub delay_ms: AtomicU64,
    pub introspections: AtomicUsize,
    /// Calls refused for wrong or missing client credentials.
    pub unauthenticated: AtomicUsize,
    /// Tokens whose revocation reached the revocation endpoint.
    pub revoked: Mutex<Vec<String>>,
    /// How the client authenticated: "basic" or "post".
    pub auth_seen: Mutex<Vec<&'static str>>,
    pub base: Mutex<String>,
    /// The `issuer` the discovery document names.
    pub issuer: Mutex<String>,
}

pub struct IntrospectionIdp {
    pub state: Arc<IdpState>,
}

impl IntrospectionIdp {
    pub async fn start() -> IntrospectionIdp {
        let state = Arc::new(IdpState::default());
        let key = tokend::mint::Signer::generate(tokend::token::Algorithm::ES256, "hydra-1");
        let jwks = tokend::mint::jwks(&[&key]);
        let router = Router::new()
            .route("/oauth2/introspect", post(introspect))
            .route("/oauth2/revoke", post(revoke))
            .route("/.well-known/openid-configuration", get(discovery))
            // Hydra signs its JWT access tokens and ID tokens with this set.
            .route("/jwks", get(move || async move { axum::Json(jwks) }))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://127.0.0.1:{}", addr.port());
        *state.base.lock().unwrap() = base.clone();
        *state.issuer.lock().unwrap() = base;
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        IntrospectionIdp { state }
    }

    /// The issuer URL (discovery lives below it).
    pub fn url(&self) -> String {
        self.state.base.lock().unwrap().clone()
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("{}/oauth2/introspect", self.url())
    }

    pub fn revocation_endpoint(&self) -> String {
        format!("{}/oauth2/revoke", self.url())
    }

    /// Issues an opaque token (Hydra's `ory_at_…` shape: one dot) with these claims.
    pub fn issue(&self, claims: Value) -> String {
        let token = format!(
            "ory_at_{:016x}{:016x}.{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        self.state
            .tokens
            .lock()
            .unwrap()
            .insert(token.clone(), claims);
        token
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = Some(mode);
    }

    pub fn set_delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn calls(&self) -> usize {
        self.state.introspections.load(Ordering::SeqCst)
    }
}

/// Hydra-shaped claims for a token of `iss`, valid five minutes from `now`.
pub fn opaque_claims(iss: &str, now: u64) -> Value {
    json!({
        "sub": "alice",
        "scope": "orders:read profile",
        "client_id": "web-app",
        "iss": iss,
        "aud": ["orders"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "token_type": "Bearer",
        "token_use": "access_token",
        "ext": {"tenant": "acme"}
    })
}

/// RFC 6749 §2.3.1: the credentials in Basic, each form-encoded first, or
/// in the body. Anything else is refused with 401 (RFC 7662 §2.1).
fn authenticated(state: &IdpState, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let pair = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        let (id, secret) = pair.split_once(':').unwrap_or(("", ""));
        state.auth_seen.lock().unwrap().push("basic");
        return decode(id) == CLIENT_ID && decode(secret) == CLIENT_SECRET;
    }
    state.auth_seen.lock().unwrap().push("post");
    form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
}

fn read_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

async fn introspect(
    State(state): State<Arc<IdpState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    state.introspections.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let form = read_form(&body);
    if !authenticated(&state, &headers, &form) {
        state.unauthenticated.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mode = state.mode.lock().unwrap().unwrap_or(Mode::Normal);
    match mode {
        Mode::Down => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::Garbage => return (StatusCode::OK, "<html>oops</html>").into_response(),
        Mode::ActiveNotBoolean => return axum::Json(json!({"active": "true"})).into_response(),
        Mode::Normal => {}
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let answer = match state.tokens.lock().unwrap().get(&token) {
        Some(claims) => {
            let mut answer = claims.clone();
            answer["active"] = json!(true);
            answer
        }
        None => json!({"active": false}),
    };
    axum::Json(answer).into_response()
}

async fn revoke(
    State(state): State<Arc<IdpState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = read_form(&body);
    if !authenticated(&state, &headers, &form) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    // Kept active here on purpose: tokend must refuse the token on its own.
    if let Some(token) = form.get("token") {
        state.revoked.lock().unwrap().push(token.clone());
    }
    StatusCode::OK.into_response()
}

async fn discovery(State(state): State<Arc<IdpState>>) -> Response {
    let base = state.base.lock().unwrap().clone();
    axum::Json(json!({
        "issuer": *state.issuer.lock().unwrap(),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "jwks_uri": format!("{base}/jwks"),
    }))
    .into_response()
}

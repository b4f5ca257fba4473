//! The development issuer's opaque tokens: `POST /dev/token` with
//! `"opaque": true` hands one out, and the issuer answers for it at its own
//! RFC 7662 introspection endpoint (and forgets it at its RFC 7009 revocation
//! endpoint), which tokend calls over HTTP like any IdP's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{DevIssuer, random_hex};

/// The client id tokend uses at the dev issuer's endpoints.
pub const CLIENT_ID: &str = "tokend-dev";

/// At most this many opaque tokens are remembered (dev mode is not a store).
const MAX_TOKENS: usize = 10_000;

/// Opaque tokens handed out, with their claims, and the endpoints' secret.
pub struct OpaqueTokens {
    tokens: Mutex<HashMap<String, Map<String, Value>>>,
    pub secret: String,
}

impl OpaqueTokens {
    pub fn new() -> OpaqueTokens {
        OpaqueTokens {
            tokens: Mutex::new(HashMap::new()),
            secret: random_hex(24),
        }
    }

    /// A fresh opaque token standing for `claims`.
    pub fn issue(&self, claims: Map<String, Value>) -> String {
        let token = format!("dev_at_{}", random_hex(24));
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
            tokens.insert(token.clone(), claims);
        }
        token
    }

    fn claims(&self, token: &str) -> Option<Map<String, Value>> {
        self.tokens.lock().ok()?.get(token).cloned()
    }

    fn forget(&self, token: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(token);
        }
    }

    /// RFC 6749 §2.3.1 Basic credentials of tokend's client.
    fn authenticated(&self, headers: &HeaderMap) -> bool {
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{}", self.secret));
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .is_some_and(|given| given == expected)
    }
}

fn token_of(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

/// `POST /dev/introspect`: RFC 7662, for tokend's own client only.
pub async fn introspect(
    State(issuer): State<Arc<DevIssuer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !issuer.opaque.authenticated(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let now = (issuer.clock)() as f64;
    let claims = token_of(&body)
        .and_then(|t| issuer.opaque.claims(&t))
        .filter(|c| {
            c.get("exp")
                .and_then(Value::as_f64)
                .is_some_and(|exp| exp > now)
        });
    let answer = match claims {
        Some(mut claims) => {
            claims.insert("active".into(), json!(true));
            Value::Object(claims)
        }
        None => json!({"active": false}),
    };
    axum::Json(answer).into_response()
}

/// `POST /dev/revoke`: RFC 7009, for tokend's own client only.
pub async fn revoke(
    State(issuer): State<Arc<DevIssuer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !issuer.opaque.authenticated(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some(token) = token_of(&body) {
        issuer.opaque.forget(&token);
    }
    StatusCode::OK.into_response()
}

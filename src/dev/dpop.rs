//! The development client's DPoP key (RFC 9449): `POST /dev/token` with
//! `"dpop": true` binds a token to it (`cnf.jkt`), and `POST /dev/dpop-proof`
//! signs a fresh proof for one request, as a client's DPoP library would, so
//! the walkthrough can show a bound token passing once and its proof replayed
//! being refused without any tool beyond curl.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

use super::{DevIssuer, random_hex};
use crate::errors::ApiError;
use crate::mint::{Signer, b64, thumbprint};
use crate::token::{Algorithm, sha256};

/// The key a development client holds for its DPoP proofs.
pub struct DpopClient {
    signer: Signer,
    /// The public JWK as a proof carries it: no `kid`, no `use`.
    jwk: Value,
}

impl DpopClient {
    pub fn generate() -> DpopClient {
        let signer = Signer::generate(Algorithm::ES256, "dev-dpop-client");
        let mut jwk = signer.public_jwk();
        if let Some(members) = jwk.as_object_mut() {
            members.remove("kid");
            members.remove("use");
        }
        DpopClient { signer, jwk }
    }

    /// `cnf.jkt` of a token bound to this key: its RFC 7638 thumbprint.
    pub fn jkt(&self) -> String {
        thumbprint(&self.jwk)
    }

    /// A proof for one request to `htm` `htu`, with `ath` when it goes with a token.
    fn proof(&self, htm: &str, htu: &str, token: Option<&str>, now: u64) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({"jti": random_hex(16), "htm": htm, "htu": htu, "iat": now});
        if let Some(token) = token {
            claims["ath"] = json!(b64(sha256(token.as_bytes())));
        }
        self.signer
            .sign_with_header(Algorithm::ES256, &header, &claims)
    }
}

/// `POST /dev/dpop-proof` with `{"htm": …, "htu": …, "token": …}` (`token`
/// optional): a proof signed by the development client's key.
pub async fn mint_proof(State(issuer): State<Arc<DevIssuer>>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => return usage().into_response(),
    };
    let text = |name: &str| request.get(name).and_then(Value::as_str);
    let (Some(htm), Some(htu)) = (text("htm"), text("htu")) else {
        return usage().into_response();
    };
    if request.get("token").is_some_and(|t| !t.is_string()) {
        return usage().into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        issuer.dpop.proof(htm, htu, text("token"), (issuer.clock)()),
    )
        .into_response()
}

fn usage() -> ApiError {
    ApiError::InvalidRequest(
        "body must be a JSON object with string \"htm\" and \"htu\" (and \"token\" for ath)".into(),
    )
}

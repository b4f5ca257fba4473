//! Dev mode's stand-in for an AWS Application Load Balancer: a second issuer
//! with `provider = "alb"`, its ES256 key served as ALB serves keys (one PEM
//! public key per `kid`, at `/dev/alb-keys/{kid}`), and `POST
//! /dev/alb-token` minting the `x-amzn-oidc-data` header a backend behind
//! ALB receives: `signer` and `client` in the protected header, base64url
//! padded with `=`, the signature over the padded text.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::{Value, json};
use std::sync::Arc;

use super::DevIssuer;
use crate::errors::ApiError;
use crate::mint::Signer;
use crate::token::Algorithm;

/// The dev load balancer's ARN (`signer`) and OIDC client (`client`).
pub const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/dev/0123456789abcdef";
pub const CLIENT: &str = "dev-alb-client";

pub struct DevAlb {
    /// The `iss` ALB passes on: the IdP's behind it.
    pub issuer: String,
    signer: Signer,
}

impl DevAlb {
    pub fn new(issuer: String) -> DevAlb {
        let kid = super::random_hex(16);
        let kid = format!(
            "{}-{}-{}-{}-{}",
            &kid[..8],
            &kid[8..12],
            &kid[12..16],
            &kid[16..20],
            &kid[20..]
        );
        DevAlb {
            issuer,
            signer: Signer::generate(Algorithm::ES256, kid),
        }
    }

    /// The `[[issuers]]` entry, its keys fetched from this server.
    pub fn issuer_toml(&self, http_base: &str) -> String {
        format!(
            "name = \"dev-alb\"\nprovider = \"alb\"\nissuer = \"{}\"\n\
             header_claim_values = {{ signer = [\"{ARN}\"], client = [\"{CLIENT}\"] }}\n\
             keys_url_template = \"{http_base}/dev/alb-keys/{{kid}}\"\nallow_insecure_http = true\n",
            self.issuer
        )
    }

    /// A token as ALB sends it, for `sub`, valid two minutes (ALB's own).
    fn token(&self, sub: &str, now: u64) -> String {
        let header = json!({
            "typ": "JWT", "kid": self.signer.kid, "alg": "ES256", "iss": self.issuer,
            "client": CLIENT, "signer": ARN, "exp": now + 120
        });
        let claims = json!({
            "sub": sub, "email": format!("{sub}@example.com"), "email_verified": "true",
            "exp": now + 120, "iss": self.issuer
        });
        let input = format!(
            "{}.{}",
            URL_SAFE.encode(header.to_string()),
            URL_SAFE.encode(claims.to_string())
        );
        let signature = self.signer.sign_bytes(Algorithm::ES256, input.as_bytes());
        format!("{input}.{}", URL_SAFE.encode(signature))
    }

    /// The P-256 public key as `-----BEGIN PUBLIC KEY-----` (SPKI).
    fn public_pem(&self) -> String {
        // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 04‖x‖y }
        const PREFIX: [u8; 26] = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let jwk = self.signer.public_jwk();
        let coordinate = |name: &str| {
            jwk[name]
                .as_str()
                .and_then(|c| crate::token::parse::b64_decode(c).ok())
                .unwrap_or_default()
        };
        let mut der = PREFIX.to_vec();
        der.push(4);
        der.extend(coordinate("x"));
        der.extend(coordinate("y"));
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }
}

/// `GET /dev/alb-keys/{kid}`: the key of the dev load balancer's `kid`.
pub async fn key(State(issuer): State<Arc<DevIssuer>>, Path(kid): Path<String>) -> Response {
    if kid != issuer.alb.signer.kid {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain")],
        issuer.alb.public_pem(),
    )
        .into_response()
}

/// `POST /dev/alb-token` with `{"sub": …}`: the `x-amzn-oidc-data` value.
pub async fn mint(State(issuer): State<Arc<DevIssuer>>, body: Bytes) -> Response {
    let sub = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => match map.get("sub") {
            Some(Value::String(sub)) => sub.clone(),
            _ => "dev-user".to_owned(),
        },
        _ => {
            return ApiError::InvalidRequest(
                "body must be a JSON object, e.g. {\"sub\":\"dave\"}".into(),
            )
            .into_response();
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        issuer.alb.token(&sub, (issuer.clock)()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pem_is_the_signer_s_public_key() {
        let alb = DevAlb::new("http://127.0.0.1:1/dev/alb".into());
        let pem = alb.public_pem();
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        assert_eq!(parsed.label, "PUBLIC KEY");
        // The point in the SPKI is the signer's x ‖ y.
        let jwk = alb.signer.public_jwk();
        let mut point = vec![4u8];
        for c in ["x", "y"] {
            point.extend(crate::token::parse::b64_decode(jwk[c].as_str().unwrap()).unwrap());
        }
        assert!(parsed.contents.ends_with(&point));
        assert!(alb.token("dave", 1).contains("=."));
    }
}

//! What upstream services are told about an allowed request: the identity
//! headers, and (with `[assertion]`) a JWT signed by tokend that any JWT
//! library verifies against `GET /.well-known/jwks.json`.
//!
//! The assertion is signed once per verified token and kept beside it (the
//! verified-token cache holds both), reused until half its lifetime has
//! passed: a cached token costs no signature.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;

use crate::config::AssertionConfig;
use crate::mint::{Signer, b64};
use crate::token::{Algorithm, Stamp, Verified, sha256};

/// The identity headers tokend sets upstream and strips from clients.
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-auth-subject",
    "x-auth-issuer",
    "x-auth-scope",
    "x-auth-client-id",
    "x-auth-expires",
];

/// The assertion signing key, with its public JWK (kid = RFC 7638 thumbprint).
pub struct AssertionKey {
    signer: Signer,
    alg: Algorithm,
    jwk: Value,
    /// Made at start: every replica has its own, so only one replica can use it.
    pub generated: bool,
}

impl AssertionKey {
    /// Reads a PKCS#8 PEM file holding an EC P-256 or Ed25519 private key.
    pub fn load(path: &Path) -> Result<AssertionKey, String> {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let der = match rustls_pemfile::private_key(&mut pem.as_slice()) {
            Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(der))) => der,
            Ok(Some(_)) => {
                return Err(format!(
                    "{}: not PKCS#8 (want \"BEGIN PRIVATE KEY\"; convert with openssl pkcs8 -topk8 -nocrypt)",
                    path.display()
                ));
            }
            _ => return Err(format!("{}: no private key in PEM", path.display())),
        };
        let (signer, alg) = Signer::from_pkcs8(der.secret_pkcs8_der(), "")
            .ok_or_else(|| format!("{}: neither an EC P-256 nor an Ed25519 key", path.display()))?;
        Ok(AssertionKey::from_signer(signer, alg, false))
    }

    /// A fresh ES256 key.
    pub fn generate() -> AssertionKey {
        AssertionKey::from_signer(
            Signer::generate(Algorithm::ES256, ""),
            Algorithm::ES256,
            true,
        )
    }

    fn from_signer(mut signer: Signer, alg: Algorithm, generated: bool) -> AssertionKey {
        let public = signer.public_jwk();
        let kid = thumbprint(&public);
        signer.kid = kid.clone();
        let mut jwk = public;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.name());
        AssertionKey {
            signer,
            alg,
            jwk,
            generated,
        }
    }

    pub fn kid(&self) -> &str {
        &self.signer.kid
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Value) -> String {
    let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => {
            json!({"crv": member("crv"), "kty": "EC", "x": member("x"), "y": member("y")})
        }
        Some("OKP") => json!({"crv": member("crv"), "kty": "OKP", "x": member("x")}),
        _ => json!({"e": member("e"), "kty": member("kty"), "n": member("n")}),
    };
    // serde_json's map is ordered by key: the members come out sorted.
    b64(sha256(canonical.to_string().as_bytes()))
}

/// The header every allowed answer sets, and the signer behind it.
pub struct Assertions {
    pub header: HeaderName,
    signing: Option<Signing>,
}

struct Signing {
    key: Arc<AssertionKey>,
    config: AssertionConfig,
    header_b64: String,
    /// Names this signer in the stamps it leaves on verified tokens, so that
    /// a reload with another key or claims never hands out an old assertion.
    id: u64,
}

impl Assertions {
    /// Built from config, keeping the running signer when nothing about it
    /// changed (a generated key must survive a reload).
    pub fn new(
        config: &AssertionConfig,
        previous: Option<&Assertions>,
    ) -> Result<Assertions, String> {
        let header = HeaderName::from_bytes(config.header.as_bytes())
            .map_err(|_| format!("assertion.header: {:?} is not a header name", config.header))?;
        if !config.enabled {
            return Ok(Assertions {
                header,
                signing: None,
            });
        }
        if let Some(running) = previous.and_then(|p| p.signing.as_ref())
            && running.config == *config
        {
            return Ok(Assertions {
                header,
                signing: Some(Signing {
                    key: running.key.clone(),
                    config: config.clone(),
                    header_b64: running.header_b64.clone(),
                    id: running.id,
                }),
            });
        }
        let key = match &config.key_file {
            Some(path) => {
                AssertionKey::load(path).map_err(|e| format!("assertion.key_file: {e}"))?
            }
            None => AssertionKey::generate(),
        };
        if key.generated {
            tracing::warn!(
                kid = key.kid(),
                "assertion key generated at start: each replica signs with its own, so run one replica or set assertion.key_file"
            );
        }
        let header_b64 =
            b64(json!({"alg": key.alg.name(), "kid": key.kid(), "typ": "JWT"}).to_string());
        Ok(Assertions {
            header,
            signing: Some(Signing {
                key: Arc::new(key),
                config: config.clone(),
                header_b64,
                id: random_u64(),
            }),
        })
    }

    /// The published key set, when assertions are on.
    pub fn jwks(&self) -> Option<Value> {
        let signing = self.signing.as_ref()?;
        Some(json!({"keys": [signing.key.jwk.clone()]}))
    }

    /// The assertion for `verified` at `now`: the one kept with the token
    /// while fresh, else a new one (kept for the next request).
    pub fn for_token(&self, verified: &Verified, now: u64) -> Option<HeaderValue> {
        let signing = self.signing.as_ref()?;
        if let Some(stamp) = &*verified.stamp.load()
            && stamp.signer == signing.id
            && now < stamp.renew_at
        {
            return Some(stamp.value.clone());
        }
        let stamp = signing.sign(verified, now);
        let value = stamp.value.clone();
        verified.stamp.store(Some(Arc::new(stamp)));
        Some(value)
    }
}

impl Signing {
    fn sign(&self, verified: &Verified, now: u64) -> Stamp {
        let config = &self.config;
        let claims = &verified.claims;
        let token_exp = claims.exp().map_or(u64::MAX, |e| e.max(0.0) as u64);
        let exp = now.saturating_add(config.ttl_seconds).min(token_exp);
        let mut payload = Map::new();
        for name in &config.claims {
            let value = match name.as_str() {
                // The forms the identity headers use: `scp` and `azp` stand in.
                "scope" => claims.scope().map(|s| json!(s)),
                "client_id" => claims.client_id().map(|s| json!(s)),
                other => verified.claim_tree().get(other).cloned(),
            };
            if let Some(value) = value {
                payload.insert(name.clone(), value);
            }
        }
        payload.insert("iss".into(), json!(config.issuer));
        payload.insert("aud".into(), json!(config.audience));
        payload.insert("iat".into(), json!(now));
        payload.insert("exp".into(), json!(exp));
        payload.insert(
            "jti".into(),
            json!(format!("{:016x}{:016x}", random_u64(), random_u64())),
        );
        payload.insert("orig_iss".into(), json!(claims.iss().unwrap_or_default()));
        let input = format!(
            "{}.{}",
            self.header_b64,
            b64(Value::Object(payload).to_string())
        );
        let signature = self.key.signer.sign_bytes(self.key.alg, input.as_bytes());
        let jwt = format!("{input}.{}", b64(signature));
        Stamp {
            signer: self.id,
            renew_at: now.saturating_add((config.ttl_seconds / 2).max(1)).min(exp),
            // base64url and dots: always a valid header value.
            value: HeaderValue::from_maybe_shared(bytes::Bytes::from(jwt))
                .unwrap_or(HeaderValue::from_static("")),
        }
    }
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = SystemRandom::new().fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn thumbprint_follows_rfc7638() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}

//! What upstream services are told about an allowed request: the identity
//! headers, and (with `[assertion]`) a JWT signed by tokend that any JWT
//! library verifies against `GET /.well-known/jwks.json`.
//!
//! Both are built once per verified token and kept beside it (the
//! verified-token cache holds both), reused until half the assertion's
//! lifetime has passed: a cached token costs no signature and no header
//! building.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::sync::Arc;

use crate::config::AssertionConfig;
use crate::headers::IDENTITY_HEADERS;
use crate::mint::{AssertionKey, b64};
use crate::verify::{Stamp, UnsafeClaim, Verified};

/// What allowed answers carry upstream, for one configuration snapshot.
pub struct Assertions {
    pub header: HeaderName,
    config: AssertionConfig,
    signing: Option<Signing>,
    /// Names this snapshot in the stamps it leaves on verified tokens, so
    /// that a reload with another key, claims or header never hands out an
    /// old stamp.
    id: u64,
}

struct Signing {
    key: Arc<AssertionKey>,
    header_b64: String,
}

impl Assertions {
    /// Built from config, keeping the running one (its key and its stamps)
    /// when nothing about it changed: a generated key must survive a reload.
    pub fn new(
        config: &AssertionConfig,
        previous: Option<&Assertions>,
    ) -> Result<Assertions, String> {
        let header = HeaderName::from_bytes(config.header.as_bytes())
            .map_err(|_| format!("assertion.header: {:?} is not a header name", config.header))?;
        if let Some(running) = previous
            && running.config == *config
        {
            return Ok(Assertions {
                header,
                config: config.clone(),
                signing: running.signing.as_ref().map(|s| Signing {
                    key: s.key.clone(),
                    header_b64: s.header_b64.clone(),
                }),
                id: running.id,
            });
        }
        let signing = match config.enabled {
            true => Some(Signing::new(config)?),
            false => None,
        };
        Ok(Assertions {
            header,
            config: config.clone(),
            signing,
            id: random_u64(),
        })
    }

    /// The public key set (`None` while `[assertion]` is off).
    pub fn jwks(&self) -> Option<Value> {
        let signing = self.signing.as_ref()?;
        Some(json!({"keys": [signing.key.jwk().clone()]}))
    }

    /// The headers an allowed request with this token carries upstream: the
    /// identity headers and the assertion header (empty while `[assertion]`
    /// is off, so that a client's copy never passes). Built once per verified
    /// token and reused until the assertion is due for renewal.
    pub fn upstream(&self, verified: &Arc<Verified>, now: u64) -> Result<HeaderMap, UnsafeClaim> {
        if let Some(stamp) = &*verified.stamp.load()
            && stamp.signer == self.id
            && now < stamp.renew_at
        {
            return stamp.headers.clone();
        }
        let stamp = self.stamp(verified, now);
        // A verdict no one else holds (no cache, or a token the cache does
        // not keep) ends with this request: nothing to keep the stamp for.
        if Arc::strong_count(verified) == 1 {
            return stamp.headers;
        }
        let headers = stamp.headers.clone();
        verified.stamp.store(Some(Arc::new(stamp)));
        headers
    }

    fn stamp(&self, verified: &Verified, now: u64) -> Stamp {
        let (assertion, renew_at) = match &self.signing {
            Some(signing) => signing.sign(&self.config, verified, now),
            None => (HeaderValue::from_static(""), u64::MAX),
        };
        let headers = identity_headers(verified).map(|mut headers| {
            headers.insert(self.header.clone(), assertion);
            headers
        });
        Stamp {
            signer: self.id,
            renew_at,
            headers,
        }
    }
}

impl Assertions {
    /// An RFC 9701 answer: the RFC 7662 object `answer` as the
    /// `token_introspection` claim of a JWT (`typ: token-introspection+jwt`)
    /// signed with the assertion key, for the caller `audience`. `None` while
    /// `[assertion]` is off.
    pub fn introspection_jwt(&self, audience: &str, answer: &[u8], now: u64) -> Option<String> {
        let signing = self.signing.as_ref()?;
        let key = &signing.key;
        let header =
            json!({"alg": key.alg().name(), "kid": key.kid(), "typ": "token-introspection+jwt"});
        // `answer` is already a JSON object: spliced in, not parsed again.
        let answer = std::str::from_utf8(answer).ok()?;
        let payload = format!(
            r#"{{"iss":{},"aud":{},"iat":{now},"token_introspection":{answer}}}"#,
            json!(self.config.issuer),
            json!(audience),
        );
        let input = format!("{}.{}", b64(header.to_string()), b64(payload));
        let signature = key.sign(input.as_bytes());
        Some(format!("{input}.{}", b64(signature)))
    }
}

/// Every upstream header empty: a public route's request carries no identity,
/// and none the client made up.
pub fn nobody(header: &HeaderName) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(IDENTITY_HEADERS.len() + 1);
    for name in IDENTITY_HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(""));
    }
    headers.insert(header.clone(), HeaderValue::from_static(""));
    headers
}

/// The identity headers for a verified token. All five are always present,
/// empty when the token lacks the claim, so that gateways copying them
/// (Caddy's `copy_headers`, Traefik's `authResponseHeaders`) overwrite any
/// client-sent copy instead of passing it on.
///
/// A claim that a header cannot carry byte for byte refuses the request:
/// emptied it would read as "no subject", trimmed by a proxy `" admin"` would
/// become `admin`. Header-safe means printable ASCII (0x20–0x7E) with no
/// leading or trailing space.
fn identity_headers(verified: &Verified) -> Result<HeaderMap, UnsafeClaim> {
    let claims = &verified.claims;
    let [subject, issuer, scope, client_id, expires] = IDENTITY_HEADERS;
    // Room for the assertion and the response's request id: a full map
    // would grow (reallocate and rehash) on every answer.
    let mut headers = HeaderMap::with_capacity(IDENTITY_HEADERS.len() + 3);
    for (name, value) in [
        (subject, claims.sub()),
        (issuer, claims.iss()),
        (scope, claims.scope()),
        (client_id, claims.client_id()),
    ] {
        let value = match value {
            None => HeaderValue::from_static(""),
            Some(v) if header_safe(v) => HeaderValue::from_str(v).map_err(|_| UnsafeClaim(name))?,
            Some(_) => return Err(UnsafeClaim(name)),
        };
        headers.insert(HeaderName::from_static(name), value);
    }
    let exp = claims.exp().map(|e| HeaderValue::from(e as i64));
    headers.insert(
        HeaderName::from_static(expires),
        exp.unwrap_or(HeaderValue::from_static("")),
    );
    Ok(headers)
}

fn header_safe(value: &str) -> bool {
    value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
}

impl Signing {
    fn new(config: &AssertionConfig) -> Result<Signing, String> {
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
            b64(json!({"alg": key.alg().name(), "kid": key.kid(), "typ": "JWT"}).to_string());
        Ok(Signing {
            key: Arc::new(key),
            header_b64,
        })
    }

    /// The assertion for this token, and when to sign it again.
    fn sign(&self, config: &AssertionConfig, verified: &Verified, now: u64) -> (HeaderValue, u64) {
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
        let signature = self.key.sign(input.as_bytes());
        let jwt = format!("{input}.{}", b64(signature));
        // base64url and dots: always a valid header value.
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(jwt))
            .unwrap_or(HeaderValue::from_static(""));
        let renew_at = now.saturating_add((config.ttl_seconds / 2).max(1)).min(exp);
        (value, renew_at)
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
    use crate::token::{Algorithm, Claims};

    fn verified(claims: &str) -> Verified {
        let claims = Claims::parse(claims.as_bytes()).unwrap();
        Verified::new(
            (crate::keys::IssuerId(0), ""),
            Algorithm::ES256,
            1,
            claims,
            b"",
        )
    }

    fn assertion(headers: &HeaderMap) -> &str {
        headers["x-tokend-assertion"].to_str().unwrap()
    }

    #[test]
    fn upstream_headers_are_built_once_per_snapshot_and_token() {
        let token = Arc::new(verified(r#"{"sub":"alice","scope":"read","exp":5000}"#));
        let _cached = token.clone();
        let on = AssertionConfig {
            enabled: true,
            ..Default::default()
        };
        let first = Assertions::new(&on, None).unwrap();
        let headers = first.upstream(&token, 1000).unwrap();
        assert_eq!(headers["x-auth-subject"], "alice");
        assert_eq!(headers["x-auth-expires"], "5000");
        let signed = assertion(&headers).to_owned();
        assert_eq!(signed.split('.').count(), 3);
        assert_eq!(assertion(&first.upstream(&token, 1001).unwrap()), signed);
        // A reload with the same [assertion] keeps the key and the stamp ...
        let same = Assertions::new(&on, Some(&first)).unwrap();
        assert_eq!(assertion(&same.upstream(&token, 1002).unwrap()), signed);
        // ... one that changes it (here: the claims) never hands out the old one,
        let changed = AssertionConfig {
            claims: vec!["sub".into()],
            ..on.clone()
        };
        let other = Assertions::new(&changed, Some(&same)).unwrap();
        assert_ne!(assertion(&other.upstream(&token, 1003).unwrap()), signed);
        // ... and turned off, the header is there and empty.
        let off = Assertions::new(&AssertionConfig::default(), Some(&other)).unwrap();
        let headers = off.upstream(&token, 1004).unwrap();
        assert_eq!(assertion(&headers), "");
        assert_eq!(headers["x-auth-scope"], "read");
        assert!(off.jwks().is_none());
    }

    #[test]
    fn a_verdict_no_one_else_holds_keeps_no_stamp() {
        let token = Arc::new(verified(r#"{"sub":"alice","exp":5000}"#));
        let on = AssertionConfig {
            enabled: true,
            ..Default::default()
        };
        let assertions = Assertions::new(&on, None).unwrap();
        let headers = assertions.upstream(&token, 1000).unwrap();
        assert_eq!(headers["x-auth-subject"], "alice");
        assert_eq!(assertion(&headers).split('.').count(), 3);
        assert!(token.stamp.load().is_none());
        let cached = token.clone();
        assertions.upstream(&token, 1000).unwrap();
        assert!(cached.stamp.load().is_some());
    }

    #[test]
    fn a_claim_no_header_can_carry_refuses_every_time() {
        let assertions = Assertions::new(&AssertionConfig::default(), None).unwrap();
        for sub in [r#"" admin""#, r#""a\nb""#, r#""caf\u00e9""#] {
            let token = Arc::new(verified(&format!(r#"{{"sub":{sub},"exp":5000}}"#)));
            let _cached = token.clone();
            for now in [1000, 1001] {
                assert_eq!(
                    assertions.upstream(&token, now).unwrap_err(),
                    UnsafeClaim("x-auth-subject"),
                    "{sub}"
                );
            }
        }
    }
}

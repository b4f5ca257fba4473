//! What every front shares: reading the bearer token and the forwarded
//! request, the identity headers (their names, one list, and when a claim can
//! travel in one), the RFC 6750 challenge, and the measured-request guard.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Instant;

use crate::metrics::{Api, InFlight, Metrics, Outcome};
use crate::token::{RequestFacts, Verified};

pub use crate::assertion::IDENTITY_HEADERS;

/// The `WWW-Authenticate` challenge of a missing or inactive token.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="tokend", error="invalid_token""#;

/// The request a forward-auth call is about: Traefik and Caddy send
/// `X-Forwarded-Method/-Host/-Uri`, nginx `X-Original-Method`, `X-Original-URI`
/// and `Host`.
pub fn forwarded_request(headers: &HeaderMap) -> RequestFacts<'_> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    RequestFacts {
        method: get("x-forwarded-method")
            .or_else(|| get("x-original-method"))
            .unwrap_or(""),
        host: get("x-forwarded-host")
            .or_else(|| get("host"))
            .unwrap_or(""),
        path: get("x-forwarded-uri")
            .or_else(|| get("x-original-uri"))
            .unwrap_or(""),
    }
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
pub fn identity_headers(verified: &Verified) -> Result<HeaderMap, UnsafeClaim> {
    let claims = &verified.claims;
    let [subject, issuer, scope, client_id, expires] = IDENTITY_HEADERS;
    let mut headers = HeaderMap::with_capacity(IDENTITY_HEADERS.len());
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

/// The identity header whose claim a header cannot carry losslessly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsafeClaim(pub &'static str);

fn header_safe(value: &str) -> bool {
    value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
}

/// One request on `tokend_requests_total`, `tokend_request_duration_seconds`
/// and the in-flight gauge: started when built, recorded by `finish`.
pub struct Measured<'a> {
    metrics: &'a Metrics,
    api: Api,
    started: Instant,
    _in_flight: InFlight,
}

impl<'a> Measured<'a> {
    pub fn start(metrics: &'a Metrics, api: Api) -> Measured<'a> {
        Measured {
            metrics,
            api,
            started: Instant::now(),
            _in_flight: metrics.in_flight(api),
        }
    }

    /// Records how the request ended.
    pub fn finish(self, outcome: Outcome) {
        self.metrics
            .request(self.api, outcome, self.started.elapsed());
    }
}

//! What every front shares: the forwarded request, the RFC 6750 challenge,
//! and the measured-request guard.

use axum::http::{HeaderMap, HeaderName, header};
use quanta::Instant;

use crate::metrics::{Api, InFlight, Metrics, Outcome};
use crate::request::RequestFacts;

/// The `WWW-Authenticate` challenge of a missing or inactive token.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="tokend", error="invalid_token""#;

/// The challenge of a DPoP-bound token whose proof failed (RFC 9449 §7.1);
/// which rule failed is never said.
pub const INVALID_DPOP_PROOF_CHALLENGE: &str = r#"DPoP realm="tokend", error="invalid_dpop_proof", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA""#;

/// The request a forward-auth call is about: Traefik and Caddy send
/// `X-Forwarded-Method/-Host/-Uri`, nginx `X-Original-Method`, `X-Original-URI`
/// and `Host`.
pub fn forwarded_request(headers: &HeaderMap) -> RequestFacts<'_> {
    let get = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    RequestFacts {
        method: get(&X_FORWARDED_METHOD)
            .or_else(|| get(&X_ORIGINAL_METHOD))
            .unwrap_or(""),
        scheme: get(&X_FORWARDED_PROTO).unwrap_or(""),
        host: get(&X_FORWARDED_HOST)
            .or_else(|| get(&header::HOST))
            .unwrap_or(""),
        path: get(&X_FORWARDED_URI)
            .or_else(|| get(&X_ORIGINAL_URI))
            .unwrap_or(""),
    }
}

// Names built once: a lookup by `&str` parses the name on every request
// (`parse_hdr` and `as_header_name::find` were 1.9 % of a cached `/auth`).
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");

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

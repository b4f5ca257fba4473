//! What every front shares: the forwarded request, the RFC 6750 challenge,
//! and the measured-request guard.

use axum::http::HeaderMap;
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
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    RequestFacts {
        method: get("x-forwarded-method")
            .or_else(|| get("x-original-method"))
            .unwrap_or(""),
        scheme: get("x-forwarded-proto").unwrap_or(""),
        host: get("x-forwarded-host")
            .or_else(|| get("host"))
            .unwrap_or(""),
        path: get("x-forwarded-uri")
            .or_else(|| get("x-original-uri"))
            .unwrap_or(""),
    }
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

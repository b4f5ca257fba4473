//! Edge authorization as the gateways ask for it: forward-auth (`/auth`) and
//! Envoy `Check` both come here with the request's headers and what the
//! gateway said about the request, and get one [`Answer`]. Each front only
//! turns the answer into its wire format.

use axum::http::{HeaderMap, HeaderValue};

use super::front;
use crate::assertion;
use crate::authz::{Decision, Found, RequestHeaders};
use crate::binding::cert;
use crate::metrics::Outcome;
use crate::request::BadRequest;
use crate::request::{Presented, ProofTarget, RequestFacts};
use crate::state::Shared;
use crate::verify::Verdict;

/// What a gateway is told.
#[derive(Debug)]
pub enum Answer {
    /// 200: these headers go upstream, every one of them (an empty value
    /// means "remove the client's copy").
    Allow(HeaderMap),
    /// 401 with this challenge: `Bearer error="invalid_token"` (no token, an
    /// inactive one, or one whose claims cannot travel in a header), or
    /// `DPoP error="invalid_dpop_proof"` (a DPoP-bound token's proof failed).
    Unauthenticated(&'static str),
    /// 403 with this `WWW-Authenticate` challenge.
    Forbidden(HeaderValue),
    /// 400: the gateway's description of the request cannot be read.
    BadRequest(BadRequest),
}

/// Decides one forwarded request: its route, its token (from the configured
/// sources, unless the route is public) with its DPoP proof and client
/// certificate (`peer_cert`: what the gateway reported, e.g. Envoy's
/// `attributes.source.certificate`; else `authorization.client_cert_header`),
/// the verdict, the route's rules.
pub async fn authorize(
    state: &Shared,
    headers: &impl RequestHeaders,
    facts: RequestFacts<'_>,
    peer_cert: Option<[u8; 32]>,
) -> (Outcome, Answer) {
    let runtime = state.runtime();
    let policy = &runtime.policy;
    let matched = match policy.route(&facts) {
        Ok(matched) => matched,
        Err(bad) => {
            policy.count_refused();
            return (Outcome::BadRequest, Answer::BadRequest(bad));
        }
    };
    if matched.anonymous() {
        matched.count(&Decision::Allow);
        return (
            Outcome::Ok,
            Answer::Allow(assertion::nobody(&runtime.assertions.header)),
        );
    }
    let now = (state.clock)();
    let verdict = match policy.sources.find(headers, facts.path) {
        Found::Token(token, source) => {
            let cert = peer_cert.or_else(|| {
                let name = runtime.config.authorization.client_cert_header.as_deref()?;
                headers
                    .values(name)
                    .next()
                    .and_then(cert::from_header_value)
            });
            let presented = Presented::new(&token, source)
                .for_request(facts)
                .with_proof(dpop_header(headers), ProofTarget::Forwarded(facts))
                .with_client_cert(cert);
            Some(runtime.verifier.check(&presented, now).await)
        }
        Found::Missing | Found::Ambiguous(_) => None,
    };
    let decision = matched.decide(verdict.as_ref());
    let answer = match (decision, &verdict) {
        (Decision::Allow, Some(Verdict::Active(verified))) => {
            match runtime.assertions.upstream(verified, now) {
                Ok(headers) => (Outcome::Active, Answer::Allow(headers)),
                Err(_) => {
                    matched.count(&Decision::Unauthenticated);
                    return (
                        Outcome::UnsafeClaim,
                        Answer::Unauthenticated(front::INVALID_TOKEN_CHALLENGE),
                    );
                }
            }
        }
        (Decision::Forbidden { challenge, .. }, _) => {
            (Outcome::Forbidden, Answer::Forbidden(challenge.clone()))
        }
        (_, Some(Verdict::Inactive(reason))) if reason.is_dpop_proof() => (
            Outcome::Inactive,
            Answer::Unauthenticated(front::INVALID_DPOP_PROOF_CHALLENGE),
        ),
        _ => (
            Outcome::Inactive,
            Answer::Unauthenticated(front::INVALID_TOKEN_CHALLENGE),
        ),
    };
    matched.count(&decision);
    answer
}

/// The `DPoP` header (RFC 9449 §4.1). More than one is not a proof: it is
/// passed on empty, which no check accepts (§4.3 point 1).
fn dpop_header(headers: &impl RequestHeaders) -> Option<&str> {
    let mut values = headers.values("dpop");
    match (values.next(), values.next()) {
        (Some(proof), None) => Some(proof.trim()),
        (Some(_), Some(_)) => Some(""),
        (None, _) => None,
    }
}

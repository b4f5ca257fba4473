//! Edge authorization as the gateways ask for it: forward-auth (`/auth`) and
//! Envoy `Check` both come here with the request's headers and what the
//! gateway said about the request, and get one [`Answer`]. Each front only
//! turns the answer into its wire format.

use axum::http::{HeaderMap, HeaderValue};

use super::state::Shared;
use crate::assertion;
use crate::authz::{Decision, Found, RequestHeaders};
use crate::metrics::Outcome;
use crate::request::BadRequest;
use crate::request::{Presented, RequestFacts};
use crate::verify::Verdict;

/// What a gateway is told.
#[derive(Debug)]
pub enum Answer {
    /// 200: these headers go upstream, every one of them (an empty value
    /// means "remove the client's copy").
    Allow(HeaderMap),
    /// 401 `invalid_token`: no token, an inactive one, or one whose claims
    /// cannot travel in a header.
    Unauthenticated,
    /// 403 with this `WWW-Authenticate` challenge.
    Forbidden(HeaderValue),
    /// 400: the gateway's description of the request cannot be read.
    BadRequest(BadRequest),
}

/// Decides one forwarded request: its route, its token (from the configured
/// sources, unless the route is public), the verdict, the route's rules.
pub async fn authorize(
    state: &Shared,
    headers: &impl RequestHeaders,
    facts: RequestFacts<'_>,
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
            let presented = Presented::new(&token, source).for_request(facts);
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
                    return (Outcome::UnsafeClaim, Answer::Unauthenticated);
                }
            }
        }
        (Decision::Forbidden { challenge, .. }, _) => {
            (Outcome::Forbidden, Answer::Forbidden(challenge.clone()))
        }
        _ => (Outcome::Inactive, Answer::Unauthenticated),
    };
    matched.count(&decision);
    answer
}

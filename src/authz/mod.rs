//! Edge authorization, the stage after the verdict: which route a request
//! falls under (first match in file order), and whether its verdict may pass
//! that route. `/auth` and Envoy `Check` ask the same [`Policy`], and so
//! does `/admin/explain`.

mod routes;
mod sources;

pub use routes::{Route, Unmet, insufficient_scope};
pub use sources::{Found, RequestHeaders, TokenSources};

use axum::http::HeaderValue;
use metrics::Counter;

use crate::config::{Config, DefaultDecision};
use crate::keys::IssuerId;
use crate::metrics::AUTHZ_DECISIONS;
use crate::request::{BadRequest, RequestFacts, Target};
use crate::verify::Verdict;

/// The label of requests that match no route.
pub const DEFAULT_ROUTE: &str = "default";

/// The routes, the default, the token sources, and a decision counter per route.
pub struct Policy {
    routes: Vec<Route>,
    default: DefaultDecision,
    pub sources: TokenSources,
    /// Per route, then the default: allow, deny_unauthenticated, deny_policy.
    decisions: Vec<[Counter; 3]>,
    deny_challenge: HeaderValue,
}

/// The route a request falls under (`None`: the default).
#[derive(Clone, Copy)]
pub struct Matched<'p> {
    pub route: Option<&'p Route>,
    index: usize,
    policy: &'p Policy,
}

/// What a verdict gets on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'p> {
    Allow,
    /// No token, or an inactive one: 401 `invalid_token`.
    Unauthenticated,
    /// Active, refused by the route (`unmet`) or by `default = "deny"`
    /// (`unmet: None`): 403 with this challenge.
    Forbidden {
        challenge: &'p HeaderValue,
        unmet: Option<Unmet<'p>>,
    },
}

impl Decision<'_> {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Unauthenticated => "deny_unauthenticated",
            Decision::Forbidden { .. } => "deny_policy",
        }
    }
}

impl Policy {
    pub fn new(config: &Config, issuer_id: impl Fn(&str) -> Option<IssuerId>) -> Policy {
        let routes: Vec<Route> = config
            .routes
            .iter()
            .map(|r| Route::compile(r, &issuer_id))
            .collect();
        let names = routes
            .iter()
            .map(|r| r.name.clone())
            .chain([DEFAULT_ROUTE.to_owned()]);
        let decisions = names
            .map(|route| {
                ["allow", "deny_unauthenticated", "deny_policy"].map(|decision| {
                    metrics::counter!(AUTHZ_DECISIONS, "route" => route.clone(), "decision" => decision)
                })
            })
            .collect();
        Policy {
            routes,
            default: config.authorization.default,
            sources: TokenSources::new(&config.authorization.sources),
            decisions,
            deny_challenge: insufficient_scope(None),
        }
    }

    /// The route `facts` fall under. Without routes nothing is matched (and
    /// nothing about the request needs to be known); with routes, a request
    /// that cannot be read unambiguously is refused.
    pub fn route<'p>(&'p self, facts: &RequestFacts<'_>) -> Result<Matched<'p>, BadRequest> {
        let default = Matched {
            route: None,
            index: self.routes.len(),
            policy: self,
        };
        if self.routes.is_empty() {
            return Ok(default);
        }
        let target = Target::of(facts)?;
        Ok(self
            .routes
            .iter()
            .position(|r| r.matches(&target))
            .map_or(default, |index| Matched {
                route: Some(&self.routes[index]),
                index,
                policy: self,
            }))
    }

    /// Counts a request refused before any route was matched (a bad request).
    pub fn count_refused(&self) {
        self.decisions[self.routes.len()][2].increment(1);
    }
}

impl<'p> Matched<'p> {
    /// A public route: no token is read, any sent is ignored.
    pub fn anonymous(&self) -> bool {
        self.route.is_some_and(|r| r.anonymous)
    }

    pub fn name(&self) -> &'p str {
        self.route.map_or(DEFAULT_ROUTE, |r| r.name.as_str())
    }

    /// Counts a decision under this route (once per request).
    pub fn count(&self, decision: &Decision<'_>) {
        let slot = match decision {
            Decision::Allow => 0,
            Decision::Unauthenticated => 1,
            Decision::Forbidden { .. } => 2,
        };
        self.policy.decisions[self.index][slot].increment(1);
    }

    /// The decision for a verdict (`None`: no token was found).
    pub fn decide(&self, verdict: Option<&Verdict>) -> Decision<'p> {
        if self.anonymous() {
            return Decision::Allow;
        }
        let Some(Verdict::Active(verified)) = verdict else {
            return Decision::Unauthenticated;
        };
        match self.route {
            Some(route) => match route.unmet(verified) {
                None => Decision::Allow,
                Some(unmet) => Decision::Forbidden {
                    challenge: &route.challenge,
                    unmet: Some(unmet),
                },
            },
            None if self.policy.default == DefaultDecision::Deny => Decision::Forbidden {
                challenge: &self.policy.deny_challenge,
                unmet: None,
            },
            None => Decision::Allow,
        }
    }
}

/// A decision in words, for `/admin/explain`.
pub struct Explained {
    pub decision: &'static str,
    pub why: String,
    pub missing_scopes: Vec<String>,
}

impl Matched<'_> {
    /// Decides as `/auth` would (uncounted) and says why.
    pub fn explain(&self, verdict: &Verdict) -> Explained {
        let decision = self.decide(Some(verdict));
        let verified = match verdict {
            Verdict::Active(v) => Some(v),
            Verdict::Inactive(_) => None,
        };
        let route = self.route.map(|r| r.name.as_str());
        let (why, missing_scopes) = match (decision, self.route, verified) {
            (Decision::Allow, Some(r), _) if r.anonymous => (
                format!("route {:?} is public: no token needed", r.name),
                Vec::new(),
            ),
            (Decision::Allow, Some(r), _) => (
                format!("the token meets every requirement of route {:?}", r.name),
                Vec::new(),
            ),
            (Decision::Allow, None, _) => (
                "no route matched; default = \"allow_active\" lets any active token pass".into(),
                Vec::new(),
            ),
            (Decision::Unauthenticated, _, _) => (
                format!(
                    "the token is not active, so route {:?} refuses it (401)",
                    route.unwrap_or(DEFAULT_ROUTE)
                ),
                Vec::new(),
            ),
            (Decision::Forbidden { unmet: None, .. }, _, _) => (
                "no route matched and default = \"deny\" (403)".into(),
                Vec::new(),
            ),
            (
                Decision::Forbidden {
                    unmet: Some(unmet), ..
                },
                Some(r),
                Some(v),
            ) => {
                let why = match unmet {
                    Unmet::Issuer => format!(
                        "issuers: the token's issuer is not one of route {:?}'s",
                        r.name
                    ),
                    Unmet::Audience => format!(
                        "audiences: aud holds none of route {:?}'s audiences",
                        r.name
                    ),
                    Unmet::ScopesAll => "scopes_all: not every scope is granted".into(),
                    Unmet::ScopesAny => "scopes_any: none of the scopes is granted".into(),
                    Unmet::Claim(path) => {
                        format!("claims: {path} does not hold the required value")
                    }
                };
                (why, r.missing_scopes(v))
            }
            (Decision::Forbidden { .. }, _, _) => ("refused".into(), Vec::new()),
        };
        Explained {
            decision: if decision == Decision::Allow {
                "allow"
            } else {
                "deny"
            },
            why,
            missing_scopes,
        }
    }
}

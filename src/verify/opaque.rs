//! Stage 0 for a token that is not a compact JWS: ask the issuers that have
//! an introspection endpoint ([`crate::upstream`]), in file order; the first
//! `active: true` answer for that issuer's own tokens wins, and its members
//! pass the same claim rules as a JWT's claims. Concurrent requests for one
//! token make one upstream call (single flight); answers are kept in a
//! bounded cache keyed by the token's SHA-256 — an active one at most
//! `introspection_cache_seconds` and never past its `exp`, an inactive one
//! `introspection_negative_cache_seconds`. A failed call is never cached and
//! never an allow.

use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::OnceCell;

use super::Verified;
use super::rules::check_answer_claims;
use crate::cache::{CacheMetrics, TokenCache};
use crate::keys::IssuerKeys;
use crate::keys::fetch::FetchError;
use crate::token::{Claims, Reason, TokenDigest, WholeToken};
use crate::upstream::{Introspector, Said, UpstreamError, is_b64token};

/// The verdict on one opaque token, as cached and shared by concurrent askers.
pub type Answer = Result<Arc<Verified>, Reason>;

pub struct Opaque {
    introspectors: Vec<Introspector>,
    cache: TokenCache<Answer>,
    /// Calls under way, by token: later askers wait for the first one's answer.
    in_flight: DashMap<TokenDigest, Arc<OnceCell<Answer>>>,
}

impl Opaque {
    /// The stage for the issuers that introspect (`None`: none does).
    pub fn new(
        issuers: &[Arc<IssuerKeys>],
        max_entries: usize,
    ) -> Result<Option<Opaque>, FetchError> {
        let mut introspectors = Vec::new();
        for issuer in issuers {
            if let Some(client) = Introspector::new(issuer)? {
                introspectors.push(client);
            }
        }
        if introspectors.is_empty() {
            return Ok(None);
        }
        Ok(Some(Opaque {
            introspectors,
            cache: TokenCache::new(max_entries.max(1), CacheMetrics::introspected_tokens()),
            in_flight: DashMap::new(),
        }))
    }

    /// Takes over `previous`'s active answers that `keep` accepts (a reload;
    /// negative answers are not carried: they name no issuer).
    pub fn carry_over(&self, previous: &Opaque, now: u64, keep: impl Fn(&Verified) -> bool) {
        self.cache.carry_over(&previous.cache, now, |answer| {
            answer.as_ref().is_ok_and(|v| keep(v))
        });
    }

    pub fn introspectors(&self) -> &[Introspector] {
        &self.introspectors
    }

    /// Upstream calls under way (tokens being asked about now).
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The verdict on an opaque token at `now`: cached, joined, or asked.
    pub async fn check(&self, token: &WholeToken<'_>, now: u64) -> Answer {
        if !is_b64token(token.text) {
            return Err(Reason::Malformed);
        }
        if let Some(answer) = self.cache.get(token.text, now) {
            return answer;
        }
        let digest = *token.digest();
        let call = self.in_flight.entry(digest).or_default().clone();
        // Leaves `in_flight` however this ends, an abandoned request included:
        // a call left behind would hand its answer out past the cache's bounds.
        let _leave = Leave {
            in_flight: &self.in_flight,
            digest,
            call: &call,
        };
        // Boxed: the upstream call's state would otherwise weigh on every
        // verdict's future, cached ones included.
        call.get_or_init(|| Box::pin(self.ask(token.text, digest, now)))
            .await
            .clone()
    }

    /// Asks each introspecting issuer in turn and caches what was learnt
    /// (before the call leaves `in_flight`, so no later asker calls again).
    async fn ask(&self, token: &str, digest: TokenDigest, now: u64) -> Answer {
        let mut failed = None;
        for introspector in &self.introspectors {
            let members = match introspector.introspect(token).await {
                Ok(Said::Active(members)) => members,
                Ok(Said::Inactive | Said::OtherIssuer) => continue,
                Err(e) => {
                    failed = Some(match e {
                        UpstreamError::BadAnswer(_) => Reason::UpstreamBadAnswer,
                        _ => Reason::UpstreamUnavailable,
                    });
                    continue;
                }
            };
            let answer = self.judge(introspector, members, &digest, now);
            let config = introspector.config();
            let expires_at = match &answer {
                Ok(verified) => {
                    let until = (now + config.cache.as_secs()) as f64;
                    let leeway = introspector.issuer.config.leeway_seconds as f64;
                    verified
                        .claims
                        .exp()
                        .map_or(until, |exp| until.min(exp + leeway))
                }
                Err(_) => (now + config.negative_cache.as_secs()) as f64,
            };
            self.remember(token, answer.clone(), expires_at, now);
            return answer;
        }
        if let Some(reason) = failed {
            // Doubt: not cached, so the next request asks again.
            return Err(reason);
        }
        let negative = self
            .introspectors
            .iter()
            .map(|i| i.config().negative_cache.as_secs())
            .min()
            .unwrap_or(0);
        let answer = Err(Reason::UpstreamInactive);
        self.remember(token, answer.clone(), (now + negative) as f64, now);
        answer
    }

    /// An active answer's members through the issuer's claim rules. `active`
    /// and `token_type` are tokend's to say in its own answer: left out of
    /// the claims, so that an answer is spliced from them as a JWT's is.
    fn judge(
        &self,
        introspector: &Introspector,
        mut members: serde_json::Map<String, serde_json::Value>,
        digest: &TokenDigest,
        now: u64,
    ) -> Answer {
        members.remove("active");
        members.remove("token_type");
        let json = serde_json::to_vec(&members).map_err(|_| Reason::UpstreamBadAnswer)?;
        let claims = Claims::parse(&json).map_err(|_| Reason::UpstreamBadAnswer)?;
        let issuer = &introspector.issuer;
        check_answer_claims(&claims, &issuer.config, now)?;
        Ok(Arc::new(Verified::introspected(
            (issuer.id, &issuer.config.issuer),
            claims,
            digest,
        )))
    }

    fn remember(&self, token: &str, answer: Answer, expires_at: f64, now: u64) {
        if expires_at > now as f64 {
            self.cache.insert(token, answer, expires_at, now);
        }
    }
}

/// Takes a finished (or abandoned) call out of `in_flight`, unless a newer
/// call for the same token took its place.
struct Leave<'a> {
    in_flight: &'a DashMap<TokenDigest, Arc<OnceCell<Answer>>>,
    digest: TokenDigest,
    call: &'a Arc<OnceCell<Answer>>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.in_flight
            .remove_if(&self.digest, |_, running| Arc::ptr_eq(running, self.call));
    }
}

/// Whether a token is shaped as a compact JWS (two dots); anything else is
/// opaque. (Hydra's `ory_at_…` tokens have one dot, most others none.)
pub fn is_compact_jws(token: &str) -> bool {
    crate::token::dots(token) == 2
}

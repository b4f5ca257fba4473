//! The one entry point every API calls: `Verifier::check(token, now) -> Verdict`.

use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::WholeToken;
use super::alg::Algorithm;
use super::claims::{Claims, typ_accepted};
use super::parse::Jws;
use super::presented::Presented;
use super::reason::Reason;
use crate::cache::TokenCache;
use crate::keys::set::KeySet;
use crate::keys::{IssuerId, IssuerKeys};
use crate::metrics::Metrics;
use crate::revocation::{Entry, Revocations, TokenId, expiry_after};

/// The answer for one token.
#[derive(Debug)]
pub enum Verdict {
    Active(Arc<Verified>),
    Inactive(Reason),
}

impl Verdict {
    pub fn is_active(&self) -> bool {
        matches!(self, Verdict::Active(_))
    }
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Verdict::Active(_) => None,
            Verdict::Inactive(r) => Some(*r),
        }
    }
}

/// A token whose signature and claims passed every rule. Cached whole, so
/// what is derived from it once (the claim tree for route matchers, the
/// signed identity assertion) is kept here too.
#[derive(Debug)]
pub struct Verified {
    pub issuer: IssuerId,
    pub alg: Algorithm,
    /// Fingerprint of the key that verified the signature.
    pub key: u64,
    pub claims: Claims,
    /// For a token without `jti`: the SHA-256 of its signing input, which
    /// revokes it whatever its signature's encoding.
    /// Boxed: most tokens have a `jti`, and every byte here is paid per
    /// cached token.
    pub signing_input_sha256: Option<Box<[u8; 32]>>,
    /// Every claim, parsed on first use (by a route's `claims` matcher).
    /// Boxed, as few routes match on claims.
    tree: OnceLock<Box<serde_json::Value>>,
    /// The upstream headers last built for this token.
    pub stamp: ArcSwapOption<Stamp>,
}

/// What an allowed request with one verified token carries upstream (its
/// identity headers and assertion, [`crate::assertion`]), reused until
/// `renew_at` by the snapshot it names.
#[derive(Debug)]
pub struct Stamp {
    pub signer: u64,
    pub renew_at: u64,
    pub headers: Result<axum::http::HeaderMap, UnsafeClaim>,
}

/// The identity header whose claim a header cannot carry losslessly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsafeClaim(pub &'static str);

impl Verified {
    /// `signing_input`: the JWS's `header.payload` (hashed only when the token has no `jti`).
    pub fn new(
        issuer: IssuerId,
        alg: Algorithm,
        key: u64,
        claims: Claims,
        signing_input: &[u8],
    ) -> Verified {
        let signing_input_sha256 = claims
            .jti()
            .is_none()
            .then(|| Box::new(super::sha256(signing_input)));
        Verified {
            issuer,
            alg,
            key,
            claims,
            signing_input_sha256,
            tree: OnceLock::new(),
            stamp: ArcSwapOption::empty(),
        }
    }

    /// Every claim as JSON, parsed once per verified token.
    pub fn claim_tree(&self) -> &serde_json::Value {
        self.tree
            .get_or_init(|| Box::new(serde_json::Value::Object(self.claims.to_map())))
    }

    /// The entry that revokes this token (by `jti`, else by the SHA-256 of its
    /// signing input), living as long as the token can be active: its `exp`
    /// plus the issuer's `leeway`.
    pub fn revocation_entry(&self, leeway: u64, now: u64, by: &str) -> Entry {
        let iss = self.claims.iss().unwrap_or_default();
        let entry = match &self.signing_input_sha256 {
            Some(signing_input) => Entry::signing_input(iss, signing_input),
            None => Entry::jti(iss, self.claims.jti().unwrap_or_default()),
        };
        let expires = expiry_after(self.claims.exp().unwrap_or(0.0), leeway);
        entry.with_times(expires, now, by)
    }

    /// What names this one token for revocation: its `jti`, else the SHA-256
    /// of its signing input (computed by `new` exactly when there is no `jti`).
    pub fn token_id<'a>(&'a self, token: &'a WholeToken<'a>) -> TokenId<'a> {
        match &self.signing_input_sha256 {
            Some(signing_input) => TokenId::SigningInput {
                signing_input,
                token,
            },
            None => TokenId::Jti(self.claims.jti().unwrap_or_default()),
        }
    }
}

/// Verifies tokens against the configured issuers.
pub struct Verifier {
    issuers: Vec<Arc<IssuerKeys>>,
    by_iss: HashMap<String, IssuerId>,
    max_token_bytes: usize,
    metrics: Arc<Metrics>,
    revocations: Arc<Revocations>,
    cache: Option<TokenCache>,
}

/// What was learnt about a token before it failed, for metric labels.
#[derive(Default)]
struct Seen {
    issuer: Option<IssuerId>,
    alg: Option<Algorithm>,
}

impl Verifier {
    pub fn new(
        issuers: Vec<Arc<IssuerKeys>>,
        max_token_bytes: usize,
        metrics: Arc<Metrics>,
        revocations: Arc<Revocations>,
    ) -> Verifier {
        let by_iss = issuers
            .iter()
            .map(|i| (i.config.issuer.clone(), i.id))
            .collect();
        Verifier {
            issuers,
            by_iss,
            max_token_bytes,
            metrics,
            revocations,
            cache: None,
        }
    }

    /// Adds the verified-token cache (`[cache]`).
    pub fn with_cache(mut self, max_entries: usize) -> Verifier {
        self.cache = Some(TokenCache::new(max_entries));
        self
    }

    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// The issuer whose `issuer` is exactly `iss`.
    pub fn issuer_by_iss(&self, iss: &str) -> Option<&Arc<IssuerKeys>> {
        self.by_iss.get(iss).map(|id| self.issuer(*id))
    }

    /// The issuer an id names (ids come from this verifier's own table).
    fn issuer(&self, id: IssuerId) -> &Arc<IssuerKeys> {
        &self.issuers[id.0]
    }

    /// Checks one presented token at `now` (Unix seconds). Never fails: every
    /// problem is an inactive verdict with its reason. Awaits only when the
    /// token names an unknown `kid` and triggers the (bounded) key refresh.
    pub async fn check(&self, presented: &Presented<'_>, now: u64) -> Verdict {
        let started = Instant::now();
        let mut seen = Seen::default();
        let result = self.check_rules(presented, now, &mut seen).await;
        let reason = result.as_ref().err().copied();
        self.metrics.verified(
            seen.issuer.map(|id| id.0),
            seen.alg,
            reason,
            started.elapsed(),
        );
        match result {
            Ok(verified) => Verdict::Active(verified),
            Err(reason) => Verdict::Inactive(reason),
        }
    }

    /// The stages, in the README's order. The cache stands in for steps 2–6
    /// only; every stage after it runs on hits and misses alike, so a cache
    /// can never skip a check the uncached path makes.
    async fn check_rules(
        &self,
        presented: &Presented<'_>,
        now: u64,
        seen: &mut Seen,
    ) -> Result<Arc<Verified>, Reason> {
        let token = presented.token;
        // 1. size cap, before anything else touches the token
        if token.len() > self.max_token_bytes {
            return Err(Reason::TooLarge);
        }
        let whole = WholeToken::new(token);
        // 2–6. parse, issuer, allowlist, key, signature, claims (or a cache hit)
        let verified = match self.cached(&whole, now, seen) {
            Some(verified) => verified,
            None => self.verify_and_remember(&whole, now, seen).await?,
        };
        // 7. revocation
        self.check_revocation(&verified, &whole, now)?;
        Ok(verified)
    }

    /// A cached verdict still valid at `now` whose key is still in the set.
    fn cached(&self, whole: &WholeToken<'_>, now: u64, seen: &mut Seen) -> Option<Arc<Verified>> {
        let cache = self.cache.as_ref()?;
        let verified = cache.get(whole.digest(), now)?;
        seen.issuer = Some(verified.issuer);
        seen.alg = Some(verified.alg);
        if self.issuer(verified.issuer).keys().has_key(verified.key) {
            return Some(verified);
        }
        // Its key left the set: forget it and judge the token afresh.
        cache.remove(whole.digest());
        None
    }

    /// Steps 2–6 in full; a token that passes is cached until its `exp` + leeway.
    async fn verify_and_remember(
        &self,
        whole: &WholeToken<'_>,
        now: u64,
        seen: &mut Seen,
    ) -> Result<Arc<Verified>, Reason> {
        let verified = Arc::new(self.verify_in_full(whole.text, now, seen).await?);
        if let Some(cache) = &self.cache {
            let policy = &self.issuer(verified.issuer).config;
            let expires_at = verified.claims.exp().unwrap_or(0.0) + policy.leeway_seconds as f64;
            cache.insert(*whole.digest(), verified.clone(), expires_at, now);
        }
        Ok(verified)
    }

    /// Revocation by `jti`, or by the SHA-256 of the signing input when it has
    /// none; subject; issuer.
    fn check_revocation(
        &self,
        verified: &Verified,
        token: &WholeToken<'_>,
        now: u64,
    ) -> Result<(), Reason> {
        let claims = &verified.claims;
        let iss = claims.iss().unwrap_or_default();
        let policy = &self.issuer(verified.issuer).config;
        let id = verified.token_id(token);
        self.revocations
            .check(iss, id, claims.sub(), issued_at(claims, policy), now)
    }

    /// Every rule but revocation: parse, issuer, allowlist, `typ`, key, signature, claims.
    async fn verify_in_full(
        &self,
        token: &str,
        now: u64,
        seen: &mut Seen,
    ) -> Result<Verified, Reason> {
        let jws = Jws::parse(token, self.max_token_bytes)?;
        let alg = jws.header.alg;
        seen.alg = Some(alg);
        let claims = Claims::parse(&jws.payload)?;
        let iss = claims.iss().ok_or(Reason::MissingIssuer)?;
        let index = *self.by_iss.get(iss).ok_or(Reason::UnknownIssuer)?;
        seen.issuer = Some(index);
        let issuer = self.issuer(index);
        let policy = &issuer.config;
        if !policy.allowed.contains(&alg) {
            return Err(Reason::AlgNotAllowed);
        }
        if !typ_accepted(jws.header.typ.as_deref(), &policy.token_types) {
            return Err(Reason::TypNotAccepted);
        }
        let key = verify_signature(issuer, &jws).await?;
        claims.check(policy, now)?;
        Ok(Verified::new(index, alg, key, claims, jws.signing_input))
    }
}

/// The issue time a subject or issuer revocation compares with `before`: `iat`,
/// or, for a token without one whose issuer caps lifetimes, `exp` minus the
/// cap: the first moment tokend accepts it (the lifetime rule is `exp − now`),
/// so an entry living `before` + cap + leeway outlives every token it covers.
/// `None` (uncapped issuer, no `iat`): covered while the entry lives.
fn issued_at(claims: &Claims, policy: &crate::config::IssuerConfig) -> Option<f64> {
    claims.iat().or_else(|| {
        let cap = policy.max_lifetime_seconds;
        (cap > 0).then(|| claims.exp().unwrap_or(0.0) - cap as f64)
    })
}

/// Finds the issuer's key for the token and checks the signature; an unknown
/// `kid` may trigger one refresh and one more look.
async fn verify_signature(issuer: &IssuerKeys, jws: &Jws<'_>) -> Result<u64, Reason> {
    if !issuer.is_loaded() {
        return Err(Reason::NoKeys);
    }
    let first = verify_with(&issuer.keys(), jws);
    match first {
        Err(Reason::UnknownKid) if issuer.refresh_for_unknown_kid().await => {
            verify_with(&issuer.keys(), jws)
        }
        other => other,
    }
}

/// Checks a JWS against a key set: the signature layer alone, without claims.
/// Returns the fingerprint of the key that verified it.
pub fn verify_with(keys: &KeySet, jws: &Jws<'_>) -> Result<u64, Reason> {
    let alg = jws.header.alg;
    let key = keys.select(jws.header.kid.as_deref(), alg)?;
    if key.verify(alg, jws.signing_input, &jws.signature) {
        Ok(key.fingerprint)
    } else {
        Err(Reason::BadSignature)
    }
}

//! The one entry point every API calls: `Verifier::check(&Presented, now) ->
//! Verdict`, the token's path as stages in the README's order. The cache
//! short-circuits the middle stages in one place; every stage after it runs
//! on hits and misses alike.

mod explain;
mod opaque;
mod rules;
mod verified;

pub use explain::Explanation;
pub use opaque::{Opaque, is_compact_jws};
pub use rules::{check_answer_claims, check_claims, issued_at};
pub use verified::{Proof, Stamp, UnsafeClaim, Verdict, Verified};

use quanta::Instant;
use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::{CacheMetrics, TokenCache};
use crate::config::providers::TENANT;
use crate::jwe::{Decryptor, is_compact_jwe};
use crate::keys::fetch::FetchError;
use crate::keys::set::KeySet;
use crate::keys::{IssuerId, IssuerKeys};
use crate::metrics::Metrics;
use crate::request::Presented;
use crate::revocation::{Holder, Revocations};
use crate::token::parse::{Jws, typ_accepted};
use crate::token::{Algorithm, Claims, Reason, WholeToken};

/// Verifies tokens against the configured issuers.
pub struct Verifier {
    issuers: Vec<Arc<IssuerKeys>>,
    by_iss: HashMap<String, IssuerId>,
    /// Spellings with `{tenantid}`, as the text before and after it.
    by_template: Vec<(String, String, IssuerId)>,
    /// Whether some issuer's tokens come base64-padded (ALB).
    any_padded: bool,
    max_token_bytes: usize,
    metrics: Arc<Metrics>,
    revocations: Arc<Revocations>,
    cache: Option<TokenCache<Arc<Verified>>>,
    /// Stage 0 for opaque tokens (`None`: no issuer introspects).
    opaque: Option<Opaque>,
    /// Stage 0 for encrypted tokens (`None`: no issuer has decryption keys).
    decryptor: Option<Decryptor<IssuerId>>,
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
        // Every spelling of an issuer's `iss` (config validation keeps them
        // apart); those with `{tenantid}` are matched around it.
        let mut by_iss = HashMap::new();
        let mut by_template = Vec::new();
        for issuer in &issuers {
            let config = &issuer.config;
            for iss in std::iter::once(&config.issuer).chain(&config.issuer_aliases) {
                match iss.split_once(TENANT) {
                    Some((before, after)) => {
                        by_template.push((before.to_owned(), after.to_owned(), issuer.id))
                    }
                    None => {
                        by_iss.insert(iss.clone(), issuer.id);
                    }
                }
            }
        }
        Verifier {
            any_padded: issuers.iter().any(|i| i.config.padded_base64),
            issuers,
            by_iss,
            by_template,
            max_token_bytes,
            metrics,
            revocations,
            cache: None,
            opaque: None,
            decryptor: None,
        }
    }

    /// Adds the verified-token cache (`[cache]`).
    pub fn with_cache(mut self, max_entries: usize) -> Verifier {
        self.cache = Some(TokenCache::new(
            max_entries,
            CacheMetrics::verified_tokens(),
        ));
        self
    }

    /// Adds stage 0 for opaque tokens, for the issuers that introspect;
    /// `max_entries` bounds its cache.
    pub fn with_introspection(mut self, max_entries: usize) -> Result<Verifier, FetchError> {
        self.opaque = Opaque::new(&self.issuers, max_entries)?;
        Ok(self)
    }

    /// Adds stage 0 for encrypted tokens: the issuers' `decryption_keys_file`s.
    pub fn with_decryption(mut self) -> Result<Verifier, String> {
        let mut keys = Vec::new();
        for issuer in &self.issuers {
            let Some(path) = &issuer.config.decryption_keys_file else {
                continue;
            };
            let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let loaded = crate::jwe::keys::load_jwks(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            keys.extend(loaded.into_iter().map(|key| (issuer.id, key)));
        }
        self.decryptor = (!keys.is_empty()).then(|| Decryptor::new(keys));
        Ok(self)
    }

    /// Takes over `previous`'s cached verdicts (verified tokens and
    /// introspection answers) for the issuers both share unchanged — the same
    /// [`IssuerKeys`] at the same place; any other verdict was judged under
    /// a configuration that is gone. Not an issuer's that opens encrypted
    /// tokens: a reload reads its `decryption_keys_file` afresh, and a
    /// verdict on a JWE opened with a key since removed must not outlive it.
    pub fn carry_over(&self, previous: &Verifier, now: u64) {
        let unchanged = |id: IssuerId| match (self.issuers.get(id.0), previous.issuers.get(id.0)) {
            (Some(new), Some(old)) => {
                Arc::ptr_eq(new, old) && new.config.decryption_keys_file.is_none()
            }
            _ => false,
        };
        if let (Some(cache), Some(older)) = (&self.cache, &previous.cache) {
            cache.carry_over(older, now, |verified| unchanged(verified.issuer));
        }
        if let (Some(opaque), Some(older)) = (&self.opaque, &previous.opaque) {
            opaque.carry_over(older, now, |verified| unchanged(verified.issuer));
        }
    }

    /// The opaque-token stage, if any issuer introspects.
    pub fn opaque(&self) -> Option<&Opaque> {
        self.opaque.as_ref()
    }

    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    pub fn cache(&self) -> Option<&TokenCache<Arc<Verified>>> {
        self.cache.as_ref()
    }

    /// The issuer `iss` names: exactly one of its spellings, or one with
    /// `{tenantid}` and a tenant it lets in.
    pub fn issuer_by_iss(&self, iss: &str) -> Option<&Arc<IssuerKeys>> {
        self.resolve(iss).ok().map(|(id, _)| self.issuer(id))
    }

    /// The issuer of `iss`, and the tenant it names when it was matched
    /// around `{tenantid}`.
    fn resolve<'i>(&self, iss: &'i str) -> Result<(IssuerId, Option<&'i str>), Reason> {
        if let Some(id) = self.by_iss.get(iss) {
            return Ok((*id, None));
        }
        for (before, after, id) in &self.by_template {
            let Some(tenant) = iss
                .strip_prefix(before.as_str())
                .and_then(|rest| rest.strip_suffix(after.as_str()))
                .filter(|t| is_tenant_id(t))
            else {
                continue;
            };
            let tenants = &self.issuer(*id).config.tenants;
            if !tenants.iter().any(|t| t == "*" || t == tenant) {
                return Err(Reason::TenantNotAllowed);
            }
            return Ok((*id, Some(tenant)));
        }
        Err(Reason::UnknownIssuer)
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
        let verified = match &self.opaque {
            // 0. an opaque token: its issuer's introspection endpoint (or its cache)
            Some(opaque) if !matches!(crate::token::dots(token), 2 | 4) => {
                let verified = opaque.check(&whole, now).await?;
                seen.issuer = Some(verified.issuer);
                verified
            }
            // 2–6. parse, issuer, allowlist, key, signature, claims (or a cache hit)
            _ => match self.cached(&whole, now, seen) {
                Some(verified) => verified,
                // Boxed: a cached verdict's future would otherwise carry this
                // path's state too, and is moved whole per request.
                None => Box::pin(self.verify_and_remember(&whole, now, seen)).await?,
            },
        };
        // 7. revocation
        self.check_revocation(&verified, &whole, now)?;
        // 8. binding: the DPoP proof or client certificate a bound token needs
        let policy = &self.issuer(verified.issuer).config;
        crate::binding::check(
            verified.confirmation(),
            presented,
            policy,
            &self.revocations,
            now,
        )
        .await?;
        Ok(verified)
    }

    /// A cached verdict still valid at `now` whose key is still in the set.
    fn cached(&self, whole: &WholeToken<'_>, now: u64, seen: &mut Seen) -> Option<Arc<Verified>> {
        let cache = self.cache.as_ref()?;
        let verified = cache.get(whole.text, now)?;
        seen.issuer = Some(verified.issuer);
        seen.alg = verified.alg();
        if let Proof::Signature { key, .. } = verified.proof
            && self.issuer(verified.issuer).keys().has_key(key)
        {
            return Some(verified);
        }
        // Its key left the set: forget it and judge the token afresh.
        cache.remove(whole.text);
        None
    }

    /// Steps 2–6 in full (a JWE decrypted first); a token that passes is
    /// cached, under the token as received, until its `exp` + leeway.
    async fn verify_and_remember(
        &self,
        whole: &WholeToken<'_>,
        now: u64,
        seen: &mut Seen,
    ) -> Result<Arc<Verified>, Reason> {
        let verified = match &self.decryptor {
            // 0. an encrypted token: the nested JWS, from the issuer whose key opened it
            Some(decryptor) if is_compact_jwe(whole.text) => {
                let (owner, inner) = decryptor.decrypt(whole.text)?;
                let verified = self.verify_in_full(&inner, now, seen).await?;
                if verified.issuer != owner {
                    return Err(Reason::JweIssuerMismatch);
                }
                verified
            }
            _ => self.verify_in_full(whole.text, now, seen).await?,
        };
        let verified = Arc::new(verified);
        if let Some(cache) = &self.cache {
            let policy = &self.issuer(verified.issuer).config;
            let expires_at = verified.claims.exp().unwrap_or(0.0) + policy.leeway_seconds as f64;
            cache.insert(whole.text, verified.clone(), expires_at, now);
        }
        Ok(verified)
    }

    /// Revocation by `jti`, or by the hash that names the token when it has
    /// none; subject; session; issuer.
    fn check_revocation(
        &self,
        verified: &Verified,
        token: &WholeToken<'_>,
        now: u64,
    ) -> Result<(), Reason> {
        let claims = &verified.claims;
        let policy = &self.issuer(verified.issuer).config;
        // Entries are kept under the configured `issuer`, whichever
        // spelling (alias) the token used.
        let holder = Holder {
            iss: &policy.issuer,
            sub: claims.sub(),
            sid: claims.sid(),
            iat: issued_at(claims, policy),
        };
        self.revocations
            .check(&holder, verified.token_id(token), now)
    }

    /// Every rule but revocation: parse, issuer, allowlist, `typ`, key, signature, claims.
    async fn verify_in_full(
        &self,
        token: &str,
        now: u64,
        seen: &mut Seen,
    ) -> Result<Verified, Reason> {
        let (jws, padded) = match Jws::parse(token, self.max_token_bytes) {
            Err(Reason::BadBase64) if self.any_padded => {
                (Jws::parse_padded(token, self.max_token_bytes)?, true)
            }
            parsed => (parsed?, false),
        };
        let alg = jws.header.alg;
        seen.alg = Some(alg);
        let claims = Claims::parse(&jws.payload)?;
        let iss = claims.iss().ok_or(Reason::MissingIssuer)?;
        let (index, tenant) = self.resolve(iss)?;
        seen.issuer = Some(index);
        // A tenant's issuer is only good for that tenant's tokens.
        if tenant.is_some() && tenant != rules::string_claim(&claims, "tid").as_deref() {
            return Err(Reason::IssuerTenantMismatch);
        }
        let issuer = self.issuer(index);
        let policy = &issuer.config;
        // Padding is one cloud's quirk: every other issuer's tokens stay strict.
        if padded && !policy.padded_base64 {
            return Err(Reason::BadBase64);
        }
        if !policy.allowed.contains(&alg) {
            return Err(Reason::AlgNotAllowed);
        }
        if !typ_accepted(jws.header.typ.as_deref(), &policy.token_types) {
            return Err(Reason::TypNotAccepted);
        }
        // Before the key is looked up: a token that names another load
        // balancer never makes a key be fetched.
        rules::check_header(&jws, policy)?;
        let key = verify_signature(issuer, &jws).await?;
        check_claims(&claims, policy, now)?;
        Ok(Verified::new(
            (index, &policy.issuer),
            alg,
            key,
            claims,
            jws.signing_input,
        ))
    }
}

/// A tenant id as it may stand in an issuer URL: letters, digits and `-`
/// (Entra ID's are GUIDs), so no `/`, `.` or `%` can move the match.
fn is_tenant_id(t: &str) -> bool {
    !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Finds the issuer's key for the token and checks the signature; an unknown
/// `kid` may trigger one refresh and one more look.
pub async fn verify_signature(issuer: &IssuerKeys, jws: &Jws<'_>) -> Result<u64, Reason> {
    if !issuer.is_loaded() {
        return Err(Reason::NoKeys);
    }
    let first = verify_with(&issuer.keys(), jws);
    match first {
        Err(Reason::UnknownKid)
            if issuer
                .refresh_for_unknown_kid(jws.header.kid.as_deref())
                .await =>
        {
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

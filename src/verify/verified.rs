//! What the verifier answers: a [`Verdict`], and for an active token the
//! [`Verified`] token the cache keeps, with what is derived from it once.

use arc_swap::ArcSwapOption;
use std::sync::{Arc, OnceLock};

use crate::keys::IssuerId;
use crate::revocation::{Entry, TokenId, expiry_after};
use crate::token::{Algorithm, Claims, Reason, WholeToken, sha256};

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
            .then(|| Box::new(sha256(signing_input)));
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

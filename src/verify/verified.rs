//! What the verifier answers: a [`Verdict`], and for an active token the
//! [`Verified`] token the cache keeps, with what is derived from it once.

use crate::config::IssuerConfig;
use arc_swap::ArcSwapOption;
use std::sync::{Arc, OnceLock};

use crate::binding::Confirmation;
use crate::keys::IssuerId;
use crate::revocation::{Entry, TokenId, expiry_after};
use crate::token::{Algorithm, Claims, Reason, TokenDigest, WholeToken, sha256};

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

/// A token that passed every rule: a JWS whose signature and claims hold,
/// or an opaque token its issuer's introspection endpoint called active and
/// whose answer passed the same claim rules. Cached whole, so what is derived
/// from it once (the claim tree for route matchers, the signed identity
/// assertion) is kept here too.
#[derive(Debug)]
pub struct Verified {
    pub issuer: IssuerId,
    pub proof: Proof,
    /// The JWS's claims, or the members of the introspection answer.
    pub claims: Claims,
    /// What revokes this one token when its `jti` cannot: for a JWS without
    /// `jti`, the SHA-256 of its signing input (which every encoding of its
    /// signature shares); for an opaque token, the SHA-256 of the token.
    /// Boxed: most JWTs have a `jti`, and every byte here is paid per cached token.
    revocation_hash: Option<Box<[u8; 32]>>,
    /// The key of this token's entry in the revocation list's local copy
    /// ([`TokenId::fingerprint`] under the issuer's configured `issuer`),
    /// worked out once here rather than on every cached verdict.
    revocation_key: u128,
    /// Every claim, parsed on first use (by a route's `claims` matcher).
    /// Boxed, as few routes match on claims.
    tree: OnceLock<Box<serde_json::Value>>,
    /// The upstream headers last built for this token.
    pub stamp: ArcSwapOption<Stamp>,
}

/// How a token was found good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A JWS signature made with `alg`, verified by the key with this fingerprint.
    Signature { alg: Algorithm, key: u64 },
    /// An opaque token, active by its issuer's introspection endpoint.
    Introspection,
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
    /// A JWS: `signing_input` is its `header.payload` (hashed only when the
    /// token has no `jti`); `iss` its issuer's configured `issuer`.
    pub fn new(
        (issuer, iss): (IssuerId, &str),
        alg: Algorithm,
        key: u64,
        claims: Claims,
        signing_input: &[u8],
    ) -> Verified {
        let revocation_hash = claims
            .jti()
            .is_none()
            .then(|| Box::new(sha256(signing_input)));
        Verified::with(
            (issuer, iss),
            Proof::Signature { alg, key },
            claims,
            revocation_hash,
        )
    }

    /// An opaque token, by the SHA-256 of the whole token.
    pub fn introspected(
        (issuer, iss): (IssuerId, &str),
        claims: Claims,
        token: &TokenDigest,
    ) -> Verified {
        Verified::with(
            (issuer, iss),
            Proof::Introspection,
            claims,
            Some(Box::new(token.0)),
        )
    }

    fn with(
        (issuer, iss): (IssuerId, &str),
        proof: Proof,
        claims: Claims,
        revocation_hash: Option<Box<[u8; 32]>>,
    ) -> Verified {
        let id = match (&revocation_hash, proof) {
            (Some(hash), Proof::Introspection) => TokenId::Whole(hash),
            (Some(signing_input), Proof::Signature { .. }) => TokenId::SigningInput(signing_input),
            (None, _) => TokenId::Jti(claims.jti().unwrap_or_default()),
        };
        let revocation_key = id.fingerprint(iss);
        Verified {
            issuer,
            proof,
            claims,
            revocation_hash,
            revocation_key,
            tree: OnceLock::new(),
            stamp: ArcSwapOption::empty(),
        }
    }

    /// The signing algorithm (`None`: an opaque token).
    pub fn alg(&self) -> Option<Algorithm> {
        match self.proof {
            Proof::Signature { alg, .. } => Some(alg),
            Proof::Introspection => None,
        }
    }

    /// What the token is bound to (RFC 7800 `cnf`): a DPoP key thumbprint
    /// (`jkt`, RFC 9449) and/or a certificate thumbprint (`x5t#S256`, RFC
    /// 8705). Read from the claims once, and only for a token with `cnf`.
    pub fn confirmation(&self) -> Confirmation<'_> {
        if !self.claims.has_cnf() {
            return Confirmation::default();
        }
        let cnf = &self.claim_tree()["cnf"];
        let member = |name: &str| match cnf.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Some(s.as_str())),
            Some(_) => Err(()),
        };
        match (cnf.is_object(), member("jkt"), member("x5t#S256")) {
            (true, Ok(jkt), Ok(x5t_s256)) => Confirmation {
                jkt,
                x5t_s256,
                malformed: false,
            },
            _ => Confirmation {
                malformed: true,
                ..Confirmation::default()
            },
        }
    }

    /// Every claim as JSON, parsed once per verified token.
    pub fn claim_tree(&self) -> &serde_json::Value {
        self.tree
            .get_or_init(|| Box::new(serde_json::Value::Object(self.claims.to_map())))
    }

    /// The entry that revokes this token (by `jti`, else by the hash that
    /// names it) under its issuer's configured `issuer` (whatever alias the
    /// token spelled), living as long as the token can be active: its `exp`
    /// plus the issuer's `leeway`, or `open_ended` (an opaque token whose
    /// answer had no `exp`).
    pub fn revocation_entry(
        &self,
        policy: &IssuerConfig,
        open_ended: u64,
        now: u64,
        by: &str,
    ) -> Entry {
        let (iss, leeway) = (policy.issuer.as_str(), policy.leeway_seconds);
        let entry = match (&self.revocation_hash, self.proof) {
            (Some(hash), Proof::Introspection) => Entry::token_hash(iss, hash),
            (Some(signing_input), Proof::Signature { .. }) => {
                Entry::signing_input(iss, signing_input)
            }
            (None, _) => Entry::jti(iss, self.claims.jti().unwrap_or_default()),
        };
        let expires = match self.claims.exp() {
            Some(exp) => expiry_after(exp, leeway),
            None => open_ended,
        };
        entry.with_times(expires, now, by)
    }

    /// What names this one token for revocation: its `jti`, else the hash
    /// kept for it.
    pub fn token_id<'a>(&'a self, token: &'a WholeToken<'a>) -> TokenId<'a> {
        let signed_without_jti = self.revocation_hash.is_some() && self.alg().is_some();
        TokenId::Known {
            fingerprint: self.revocation_key,
            token: signed_without_jti.then_some(token),
        }
    }
}

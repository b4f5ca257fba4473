//! Why a token is inactive: one enum for every rule.
//!
//! Callers only ever see `active:false`; the reason goes to metrics (as a
//! closed label set) and to debug logs.

use std::fmt;

macro_rules! reasons {
    ($($variant:ident => $label:literal, $doc:literal;)*) => {
        /// Every way a token can fail verification.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $(#[doc = $doc] $variant,)*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// Snake-case label used in metrics and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $label,)*
                }
            }
        }
    };
}

reasons! {
    TooLarge => "too_large", "Longer than `server.max_token_bytes`.";
    Malformed => "malformed", "Not a compact JWS (three dot-separated segments), nor an opaque token tokend can introspect.";
    BadBase64 => "bad_base64", "A segment is not strict unpadded base64url.";
    BadHeader => "bad_header", "The header is not a JSON object of well-formed members.";
    BadClaims => "bad_claims", "The payload is not a JSON object of well-formed claims.";
    DuplicateMember => "duplicate_member", "A member appears twice in the header or claims.";
    AlgNone => "alg_none", "`alg` is `none`.";
    UnsupportedAlg => "unsupported_alg", "`alg` is not one tokend implements.";
    AlgNotAllowed => "alg_not_allowed", "`alg` is not in the issuer's allowlist.";
    CritUnsupported => "crit_unsupported", "The header has a `crit` extension tokend does not understand.";
    TypNotAccepted => "typ_not_accepted", "`typ` is missing or not one of the issuer's `token_types`.";
    MissingIssuer => "missing_issuer", "No `iss` claim.";
    UnknownIssuer => "unknown_issuer", "`iss` is not a configured issuer.";
    TenantNotAllowed => "tenant_not_allowed", "`iss` names a tenant the issuer's `tenants` does not list.";
    IssuerTenantMismatch => "issuer_tenant_mismatch", "The tenant in `iss` is not the token's `tid`.";
    NoKeys => "no_keys", "The issuer has no usable key set yet.";
    UnknownKid => "unknown_kid", "No key with the token's `kid`, even after a refresh.";
    AmbiguousKid => "ambiguous_kid", "Two keys of the issuer share the token's `kid`.";
    NoMatchingKey => "no_matching_key", "No `kid`, and not exactly one key fits `alg`.";
    KeyMismatch => "key_mismatch", "The `kid` names a key of another type or `alg`.";
    BadSignature => "bad_signature", "The signature does not verify.";
    MissingExp => "missing_exp", "No `exp` claim.";
    Expired => "expired", "`exp` is in the past (beyond leeway).";
    NotYetValid => "not_yet_valid", "`nbf` is in the future (beyond leeway).";
    IssuedInFuture => "issued_in_future", "`iat` is in the future (beyond leeway).";
    LifetimeTooLong => "lifetime_too_long", "Lifetime exceeds the issuer's `max_lifetime_seconds`.";
    AudienceMismatch => "audience_mismatch", "`aud` holds none of the issuer's audiences.";
    MissingRequiredClaim => "missing_required_claim", "A claim in `required_claims` is absent.";
    AuthTimeInFuture => "auth_time_in_future", "`auth_time` is in the future (beyond leeway), for an issuer that checks it (Firebase).";
    ClaimValueMismatch => "claim_value_mismatch", "A claim in `required_claim_values` is absent or not that exact string.";
    HeaderValueMismatch => "header_value_mismatch", "A protected-header member in `header_claim_values` (ALB's `signer`, `client`) is absent or none of its values.";
    Revoked => "revoked", "The token is covered by a revocation entry.";
    StoreStale => "store_stale", "The revocation copy is stale and `on_stale = \"fail_closed\"`.";
    UpstreamInactive => "upstream_inactive", "An opaque token no issuer's introspection endpoint called active.";
    UpstreamUnavailable => "upstream_unavailable", "An opaque token no introspection endpoint could answer for (down, slow, refused).";
    UpstreamBadAnswer => "upstream_bad_answer", "An introspection endpoint answered something other than an RFC 7662 object.";
    DpopProofMissing => "dpop_proof_missing", "A DPoP-bound token came without a proof, or under the Bearer scheme.";
    DpopProofInvalid => "dpop_proof_invalid", "The DPoP proof breaks a rule of RFC 9449 §4.3.";
    DpopProofReplayed => "dpop_proof_replayed", "The DPoP proof's jti was used before.";
    DpopReplayUnknown => "dpop_replay_unknown", "The replay store could not be asked, so the proof's jti is not known to be fresh.";
    DpopRequired => "dpop_required", "The issuer requires DPoP and the token is not bound to a key.";
    DpopNotAccepted => "dpop_not_accepted", "A DPoP-bound token of an issuer with dpop = off, or an unbound token under the DPoP scheme.";
    CertMissing => "cert_missing", "A certificate-bound token came without the client's certificate.";
    CertMismatch => "cert_mismatch", "The client certificate's SHA-256 is not the token's cnf x5t#S256.";
    BadConfirmation => "bad_confirmation", "cnf is not an object of non-empty string members.";
    JweUnsupported => "jwe_unsupported", "A JWE with an alg, enc or header member tokend refuses (RSA1_5, dir, zip, crit, …).";
    JweNotNested => "jwe_not_nested", "A JWE whose content is not a signed JWT (cty JWT).";
    JweNoKey => "jwe_no_key", "A JWE no configured decryption key fits (kid, key type).";
    JweDecryptFailed => "jwe_decrypt_failed", "A JWE that does not decrypt: wrong key, bad epk, bad tag or padding — one answer for all.";
    JweIssuerMismatch => "jwe_issuer_mismatch", "The JWT inside a JWE is not from the issuer whose key decrypted it.";
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Reason {
    /// Whether the token was refused for its DPoP proof: the caller is told
    /// `DPoP error="invalid_dpop_proof"` (RFC 9449 §7.1), never which rule.
    pub fn is_dpop_proof(self) -> bool {
        matches!(
            self,
            Reason::DpopProofMissing
                | Reason::DpopProofInvalid
                | Reason::DpopProofReplayed
                | Reason::DpopReplayUnknown
        )
    }

    /// Whether the verdict is doubt rather than a finding: an introspection
    /// endpoint gave no usable answer. (Still inactive; but a revocation
    /// cannot be stored for a token nobody could say anything about.)
    pub fn is_doubt(self) -> bool {
        matches!(
            self,
            Reason::UpstreamUnavailable | Reason::UpstreamBadAnswer
        )
    }

    /// Index into per-reason tables (metrics handles).
    pub fn index(self) -> usize {
        self as usize
    }
}

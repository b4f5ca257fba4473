//! Why a token is or is not active, in words: for `/admin/explain` and
//! `tokend explain` only. The verdict is the one [`Verifier::check`] gives
//! (the same path every API takes); the detail is read from the token's
//! header and claims afterwards, for display, never to decide anything.

use serde_json::Value;

use super::{Verdict, Verifier};
use crate::keys::IssuerKeys;
use crate::request::Presented;
use crate::token::Reason;
use crate::token::parse::b64_decode;

/// The verdict and what an operator needs to see about it.
#[derive(Debug)]
pub struct Explanation {
    pub verdict: Verdict,
    pub detail: String,
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub alg: Option<String>,
}

impl Verifier {
    /// Checks the token as every API does, then says why.
    pub async fn explain(&self, presented: &Presented<'_>, now: u64) -> Explanation {
        let verdict = self.check(presented, now).await;
        let token = presented.token;
        let (header, claims) = peek(token);
        let text = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
        let issuer = match &verdict {
            Verdict::Active(verified) => Some(self.issuer(verified.issuer)),
            Verdict::Inactive(_) => claims
                .as_ref()
                .and_then(|c| c.get("iss"))
                .and_then(Value::as_str)
                .and_then(|iss| self.issuer_by_iss(iss)),
        };
        let detail = match &verdict {
            Verdict::Active(_) => "every rule holds".to_owned(),
            Verdict::Inactive(reason) => detail(
                *reason,
                token,
                header.as_ref(),
                claims.as_ref(),
                issuer.map(|i| &**i),
                self.max_token_bytes(),
                now,
            ),
        };
        Explanation {
            detail,
            issuer: issuer.map(|i| i.config.name.clone()),
            kid: header.as_ref().and_then(|h| text(h, "kid")),
            alg: header.as_ref().and_then(|h| text(h, "alg")),
            verdict,
        }
    }
}

/// The header and claims as JSON, if they decode at all (leniently: display only).
fn peek(token: &str) -> (Option<Value>, Option<Value>) {
    let mut parts = token.split('.');
    let mut next = || {
        parts
            .next()
            // For display only: ALB's padding is read too.
            .and_then(|p| b64_decode(p.trim_end_matches('=')).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(Value::is_object)
    };
    let header = next();
    (header, next())
}

fn detail(
    reason: Reason,
    token: &str,
    header: Option<&Value>,
    claims: Option<&Value>,
    issuer: Option<&IssuerKeys>,
    max_bytes: usize,
    now: u64,
) -> String {
    let claim = |name: &str| {
        claims
            .and_then(|c| c.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let number = |name: &str| claims.and_then(|c| c.get(name)).and_then(Value::as_f64);
    let header_member = |name: &str| {
        header
            .and_then(|h| h.get(name))
            .map_or_else(|| "(none)".to_owned(), Value::to_string)
    };
    let name = issuer.map_or("?", |i| i.config.name.as_str());
    let leeway = issuer.map_or(0, |i| i.config.leeway_seconds);
    let now_f = now as f64;
    match reason {
        Reason::TooLarge => format!("{} bytes, over max_token_bytes {max_bytes}", token.len()),
        Reason::Malformed if super::is_compact_jws(token) => {
            "3 dot-separated segments, but not a compact JWS".into()
        }
        Reason::Malformed => format!(
            "{} dot-separated segments: not a compact JWS (3), and not an opaque token tokend can introspect (no issuer has an introspection_endpoint, or it is not an RFC 6750 b64token)",
            token.split('.').count()
        ),
        Reason::BadBase64 => {
            "a segment is not strict unpadded base64url (padding is accepted, and then required, only for provider = \"alb\")".into()
        }
        Reason::BadHeader => "the header is not a JSON object of well-formed members".into(),
        Reason::BadClaims => {
            "the payload is not a JSON object with well-typed registered claims".into()
        }
        Reason::DuplicateMember => "a member appears twice in the header or the claims".into(),
        Reason::AlgNone => "alg is \"none\"".into(),
        Reason::UnsupportedAlg => format!("alg {} is not one tokend implements", header_member("alg")),
        Reason::AlgNotAllowed => format!(
            "alg {} is not in issuer {name}'s algorithms {:?}",
            header_member("alg"),
            issuer.map(|i| i.config.algorithms.clone()).unwrap_or_default()
        ),
        Reason::CritUnsupported => format!("crit {} names an extension tokend does not understand", header_member("crit")),
        Reason::TypNotAccepted => format!(
            "typ {} is not one of issuer {name}'s token_types {:?}",
            header_member("typ"),
            issuer.map(|i| i.config.token_types.clone()).unwrap_or_default()
        ),
        Reason::MissingIssuer => "no iss claim".into(),
        Reason::UnknownIssuer => format!("iss {} is not a configured issuer", claim("iss")),
        Reason::TenantNotAllowed => format!(
            "iss {} names a tenant that issuer {name}'s tenants {:?} do not list",
            claim("iss"),
            issuer.map(|i| i.config.tenants.clone()).unwrap_or_default()
        ),
        Reason::IssuerTenantMismatch => format!(
            "iss {} names another tenant than tid {}",
            claim("iss"),
            claim("tid")
        ),
        Reason::NoKeys => format!("issuer {name} has no key set yet (see GET /admin/issuers)"),
        Reason::UnknownKid
            if issuer.is_some_and(|i| i.config.keys_url_template.is_some())
                && !header
                    .and_then(|h| h.get("kid"))
                    .and_then(Value::as_str)
                    .is_some_and(crate::keys::pem::is_url_safe_kid) =>
        {
            format!(
                "kid {} is not 1-64 letters, digits and '-': issuer {name} never puts it in a key URL",
                header_member("kid")
            )
        }
        Reason::UnknownKid => format!(
            "no key with kid {} in issuer {name}'s set, even after a refresh (kids: {})",
            header_member("kid"),
            kids(issuer)
        ),
        Reason::AmbiguousKid => format!("two keys of issuer {name} share kid {}", header_member("kid")),
        Reason::NoMatchingKey => format!(
            "no kid, and not exactly one key of issuer {name} fits alg {} (kids: {})",
            header_member("alg"),
            kids(issuer)
        ),
        Reason::KeyMismatch => format!(
            "kid {} names a key of another type or alg than {}",
            header_member("kid"),
            header_member("alg")
        ),
        Reason::BadSignature => format!(
            "the {} signature does not verify with issuer {name}'s key {}",
            header_member("alg"),
            header_member("kid")
        ),
        Reason::MissingExp => "no exp claim".into(),
        Reason::Expired => match number("exp") {
            Some(exp) => format!("exp {exp} is {} s past (leeway {leeway})", (now_f - exp).round()),
            None => "expired".into(),
        },
        Reason::NotYetValid => match number("nbf") {
            Some(nbf) => format!("nbf {nbf} is {} s ahead (leeway {leeway})", (nbf - now_f).round()),
            None => "not yet valid".into(),
        },
        Reason::IssuedInFuture => match number("iat") {
            Some(iat) => format!("iat {iat} is {} s ahead (leeway {leeway})", (iat - now_f).round()),
            None => "issued in the future".into(),
        },
        Reason::LifetimeTooLong => format!(
            "exp − iat is {} s, over issuer {name}'s max_lifetime_seconds {}",
            (number("exp").unwrap_or(0.0) - number("iat").unwrap_or(now_f)).round(),
            issuer.map_or(0, |i| i.config.max_lifetime_seconds)
        ),
        Reason::AudienceMismatch => {
            let names = issuer.map(|i| i.config.audience_claims.clone()).unwrap_or_default();
            let values: Vec<String> = names.iter().map(|n| format!("{n} {}", claim(n))).collect();
            format!(
                "{} holds none of issuer {name}'s audiences {:?}",
                values.join(", "),
                issuer.map(|i| i.config.audiences.clone()).unwrap_or_default()
            )
        }
        Reason::AuthTimeInFuture => format!(
            "auth_time {} lies after now ({now_f}) plus issuer {name}'s leeway",
            claim("auth_time")
        ),
        Reason::ClaimValueMismatch => {
            let required = issuer
                .map(|i| i.config.required_claim_values.clone())
                .unwrap_or_default();
            let wrong: Vec<String> = required
                .iter()
                .filter(|(n, v)| claim(n).as_str() != Some(v.as_str()))
                .map(|(n, v)| format!("{n} is {} (required: {v:?})", claim(n)))
                .collect();
            wrong.join(", ")
        }
        Reason::HeaderValueMismatch => {
            let pinned = issuer
                .map(|i| i.config.header_claim_values.clone())
                .unwrap_or_default();
            let wrong: Vec<String> = pinned
                .iter()
                .filter(|(n, v)| !header.and_then(|h| h.get(n.as_str())).and_then(Value::as_str).is_some_and(|got| v.iter().any(|want| want == got)))
                .map(|(n, v)| format!("header {n} is {} (one of {v:?} required)", header_member(n)))
                .collect();
            wrong.join(", ")
        }
        Reason::MissingRequiredClaim => {
            let required = issuer.map(|i| i.config.required_claims.clone()).unwrap_or_default();
            let missing: Vec<&String> =
                required.iter().filter(|c| claim(c).is_null()).collect();
            format!("required claims {missing:?} are absent")
        }
        Reason::Revoked => {
            "covered by a revocation entry (by jti, token hash, subject or issuer: see tokend revocations list)".into()
        }
        Reason::StoreStale => {
            "the revocation copy is stale and revocation.on_stale = \"fail_closed\"".into()
        }
        Reason::UpstreamInactive => {
            "an opaque token that no issuer's introspection endpoint called active (for its own iss)".into()
        }
        Reason::UpstreamUnavailable => {
            "an opaque token, and no introspection endpoint answered (down, slower than introspection_timeout_ms, or an HTTP error): see tokend_upstream_introspection_total".into()
        }
        Reason::DpopProofMissing => {
            "the token is DPoP-bound (cnf.jkt): it needs Authorization: DPoP and a DPoP proof for this request".into()
        }
        Reason::DpopProofInvalid => {
            "the DPoP proof breaks a rule of RFC 9449 §4.3 (typ, alg, jwk, signature, htm, htu, iat, ath, or the key is not cnf.jkt); tokend's debug log names it".into()
        }
        Reason::DpopProofReplayed => "the DPoP proof's jti was used before".into(),
        Reason::DpopReplayUnknown => {
            "the revocation store, which keeps used DPoP proof ids, did not answer: DPoP-bound tokens are refused until it does".into()
        }
        Reason::DpopRequired => format!("issuer {name} has dpop = \"required\" and the token has no cnf.jkt"),
        Reason::DpopNotAccepted => format!(
            "a DPoP-bound token of issuer {name} with dpop = \"off\", or an unbound token sent under the DPoP scheme"
        ),
        Reason::CertMissing => {
            "the token is bound to a client certificate (cnf x5t#S256) and none came with the request (see authorization.client_cert_header)".into()
        }
        Reason::CertMismatch => {
            "the client certificate's SHA-256 is not the token's cnf x5t#S256".into()
        }
        Reason::BadConfirmation => "cnf is not an object of non-empty string members".into(),
        Reason::JweUnsupported => {
            "an encrypted token (JWE) with an alg, enc or header member tokend refuses (RSA1_5, dir, zip, crit, or an unknown one)".into()
        }
        Reason::JweNotNested => {
            "an encrypted token whose content is not a signed JWT (its header needs cty JWT)".into()
        }
        Reason::JweNoKey => {
            "an encrypted token that no issuer's decryption_keys_file has a key for (kid, key type)".into()
        }
        Reason::JweDecryptFailed => "an encrypted token that does not decrypt with the keys it fits".into(),
        Reason::JweIssuerMismatch => {
            "the JWT inside the JWE is not from the issuer whose key decrypted it".into()
        }
        Reason::UpstreamBadAnswer => {
            "an opaque token, and the introspection endpoint's answer was not an RFC 7662 object (JSON, a boolean active, well-typed claims)".into()
        }
    }
}

fn kids(issuer: Option<&IssuerKeys>) -> String {
    let Some(issuer) = issuer else {
        return String::new();
    };
    let keys = issuer.keys();
    let kids: Vec<&str> = keys
        .keys()
        .iter()
        .filter_map(|k| k.kid.as_deref())
        .collect();
    kids.join(", ")
}

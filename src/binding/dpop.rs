//! DPoP (RFC 9449): a token whose `cnf.jkt` names a key is active only with
//! a proof, signed by that key, for this very request. Every check of §4.3
//! runs, in the order that costs least on a bad proof; the proof's `jti` is
//! then remembered in the revocation store (memory, or Redis `SET NX` with a
//! TTL), so a proof replayed here or on another replica is refused. What
//! failed goes to metrics; the caller only hears `invalid_dpop_proof`.

use serde_json::Value;

use crate::config::IssuerConfig;
use crate::keys::jwk::{Jwk, Source};
use crate::mint::{b64, thumbprint};
use crate::request::{Presented, ProofTarget, Scheme, TokenSource};
use crate::revocation::Revocations;
use crate::token::parse::{Jws, b64_decode, parse_object, typ_accepted};
use crate::token::{Reason, sha256};

/// A proof is a small JWT: a header with one public key and a few claims.
const MAX_PROOF_BYTES: usize = 8 * 1024;

/// Checks the proof that came with a token bound to `jkt`, then its `jti`.
pub async fn check(
    jkt: &str,
    presented: &Presented<'_>,
    policy: &IssuerConfig,
    replay: &Revocations,
    now: u64,
) -> Result<(), Reason> {
    // A bound token sent as a bearer token (RFC 9449 §7.1) has no proof to trust.
    if presented.source == TokenSource::Authorization(Scheme::Bearer) {
        return Err(Reason::DpopProofMissing);
    }
    let (proof, target) = presented.proof.ok_or(Reason::DpopProofMissing)?;
    let checked = validate(proof, &target, presented.token, jkt, policy, now).map_err(|why| {
        tracing::debug!(why, "DPoP proof refused");
        Reason::DpopProofInvalid
    })?;
    let leeway = policy.leeway_seconds;
    let until = checked
        .iat
        .saturating_add(policy.dpop_max_age_seconds + 2 * leeway);
    match replay
        .first_sighting(&format!("dpop\u{0}{jkt}\u{0}{}", checked.jti), until)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(Reason::DpopProofReplayed),
        Err(e) => {
            tracing::warn!(error = %e, "DPoP replay store unavailable: the DPoP-bound token is refused");
            Err(Reason::DpopReplayUnknown)
        }
    }
}

/// What the replay check needs from a proof that passed.
struct Checked {
    jti: String,
    iat: u64,
}

/// RFC 9449 §4.3, points 2–12 (point 1, one `DPoP` header, is the front's).
fn validate(
    proof: &str,
    target: &ProofTarget<'_>,
    token: &str,
    jkt: &str,
    policy: &IssuerConfig,
    now: u64,
) -> Result<Checked, &'static str> {
    let jws = Jws::parse(proof, MAX_PROOF_BYTES).map_err(|_| "not a compact JWS")?;
    if !typ_accepted(jws.header.typ.as_deref(), &["dpop+jwt".to_owned()]) {
        return Err("typ is not dpop+jwt");
    }
    let alg = jws.header.alg;
    if alg.family() == crate::token::alg::Family::Hmac || !policy.allowed.contains(&alg) {
        return Err("alg is not an asymmetric algorithm the issuer allows");
    }
    // The header again, for its `jwk` (the token parser never reads one).
    let header_json = proof
        .split('.')
        .next()
        .and_then(|h| b64_decode(h).ok())
        .ok_or("header")?;
    let header = parse_object(&header_json).map_err(|_| "header")?;
    let jwk_value = header
        .get("jwk")
        .filter(|v| v.is_object())
        .ok_or("no jwk")?;
    // A public key only: private members and symmetric keys are refused.
    let key = Jwk::from_json(jwk_value, Source::Fetched)
        .map_err(|_| "jwk is not an acceptable public key")?;
    if !key.verify(alg, jws.signing_input, &jws.signature) {
        return Err("the signature does not verify with the jwk");
    }
    let claims = parse_object(&jws.payload).map_err(|_| "claims")?;
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let jti = text("jti").ok_or("no jti")?;
    let htm = text("htm").ok_or("no htm")?;
    let htu = text("htu").ok_or("no htu")?;
    let iat = claims.get("iat").and_then(Value::as_f64).ok_or("no iat")?;
    let ath = text("ath").ok_or("no ath")?;
    let (method, uri) = expected(target).ok_or("the request's method and URI are not known")?;
    if htm != method {
        return Err("htm is not the request's method");
    }
    if normalized(htu).as_deref() != Some(uri.as_str()) {
        return Err("htu is not the request's URI");
    }
    let (now, leeway) = (now as f64, policy.leeway_seconds as f64);
    if iat > now + leeway || now - iat > (policy.dpop_max_age_seconds as f64) + leeway {
        return Err("iat is outside the window");
    }
    if ath != b64(sha256(token.as_bytes())) {
        return Err("ath is not the hash of this token");
    }
    if thumbprint(jwk_value) != jkt {
        return Err("the jwk is not the key the token is bound to");
    }
    Ok(Checked {
        jti: jti.to_owned(),
        iat: iat.max(0.0) as u64,
    })
}

/// The method and normalized URI a proof must name.
fn expected(target: &ProofTarget<'_>) -> Option<(String, String)> {
    match target {
        ProofTarget::Forwarded(facts) => {
            if facts.method.is_empty() || facts.host.is_empty() || !facts.path.starts_with('/') {
                return None;
            }
            let scheme = if facts.scheme.is_empty() {
                "http"
            } else {
                facts.scheme
            };
            let uri = normalized(&format!("{scheme}://{}{}", facts.host, facts.path))?;
            Some((facts.method.to_owned(), uri))
        }
        ProofTarget::Stated { method, uri } => Some(((*method).to_owned(), normalized(uri)?)),
    }
}

/// An `http(s)` URI without query and fragment, scheme and host lower-cased,
/// the default port dropped, dot segments resolved (RFC 9449 §4.3 point 9,
/// RFC 3986 §6.2.2–6.2.3).
fn normalized(uri: &str) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_compare_as_rfc3986_normalizes_them() {
        let n = |u| normalized(u).unwrap();
        assert_eq!(
            n("HTTPS://API.Example.com:443/a/./b/../c?x=1#f"),
            "https://api.example.com/a/c"
        );
        assert_eq!(
            n("http://api.example.com:80/orders"),
            "http://api.example.com/orders"
        );
        assert_ne!(
            n("https://api.example.com/Orders"),
            n("https://api.example.com/orders"),
            "paths keep their case"
        );
        assert_ne!(
            n("https://api.example.com:8443/x"),
            n("https://api.example.com/x")
        );
        assert!(normalized("ftp://x/y").is_none());
        assert!(normalized("/relative").is_none());
    }
}

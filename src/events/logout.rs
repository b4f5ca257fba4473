//! OpenID Connect Back-Channel Logout 1.0: the logout token an IdP posts when
//! a user's session ends, checked by every rule of §2.6 (and §2.4's shape)
//! before anything is revoked. The token is verified like any token of its
//! issuer — its key set, its algorithm allowlist — but by the logout rules,
//! not the access-token ones: the issuer's `required_claims` and
//! `token_types` do not apply, `exp` is optional.

use serde_json::Value;
use std::sync::Arc;

use crate::keys::IssuerKeys;
use crate::token::parse::typ_accepted;
use crate::token::parse::{Jws, parse_object};
use crate::token::{Claims, Reason};
use crate::verify::{Verifier, verify_signature};

/// The event a logout token must carry (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The oldest `iat` accepted, in seconds before now.
pub const MAX_AGE_SECONDS: u64 = 300;

/// How long a logout token's `jti` is remembered after its `iat`.
pub const REPLAY_WINDOW_SECONDS: u64 = 600;

/// A logout token that passed every rule: whose session (or, without `sid`,
/// whose subject) to end.
pub struct Logout {
    pub issuer: Arc<IssuerKeys>,
    pub iss: String,
    pub ends: Ends,
    pub jti: String,
    pub iat: u64,
}

/// What a logout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ends {
    /// One session (the token's `sid`).
    Session(String),
    /// Every session of a subject (a logout token without `sid`).
    Subject(String),
}

/// Why a logout token was refused (the `error_description` of the 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the logout token is malformed ({0})")]
    Malformed(Reason),
    #[error("encrypted logout tokens are not accepted")]
    Encrypted,
    #[error("typ must be absent or logout+jwt")]
    Typ,
    #[error("no iss")]
    NoIssuer,
    #[error("iss is not an issuer that sends back-channel logouts here")]
    Issuer,
    #[error("alg is not in the issuer's algorithms")]
    Alg,
    #[error("the signature does not verify with the issuer's keys ({0})")]
    Signature(Reason),
    #[error("aud names none of the issuer's logout audiences")]
    Audience,
    #[error("no iat")]
    NoIat,
    #[error("iat lies in the future")]
    IatInFuture,
    #[error("iat is more than 300 s old")]
    TooOld,
    #[error("the logout token has expired")]
    Expired,
    #[error("no jti")]
    NoJti,
    #[error(
        "events has no member http://schemas.openid.net/event/backchannel-logout holding an object"
    )]
    Event,
    #[error("neither sub nor sid")]
    NoSubject,
    #[error("a logout token must not carry a nonce")]
    Nonce,
}

/// Checks a logout token at `now` (Unix seconds).
pub async fn check(verifier: &Verifier, token: &str, now: u64) -> Result<Logout, Refused> {
    if token.split('.').count() == 5 {
        return Err(Refused::Encrypted);
    }
    let jws = Jws::parse(token, verifier.max_token_bytes()).map_err(Refused::Malformed)?;
    if jws.header.typ.is_some()
        && !typ_accepted(jws.header.typ.as_deref(), &["logout+jwt".to_owned()])
    {
        return Err(Refused::Typ);
    }
    let claims = Claims::parse(&jws.payload).map_err(Refused::Malformed)?;
    let members = parse_object(&jws.payload)
        .map_err(|why| Refused::Malformed(why.unwrap_or(Reason::BadClaims)))?;
    let iss = claims.iss().ok_or(Refused::NoIssuer)?;
    let issuer = verifier
        .issuer_by_iss(iss)
        .filter(|i| i.config.backchannel_logout)
        .ok_or(Refused::Issuer)?;
    let policy = &issuer.config;
    if !policy.allowed.contains(&jws.header.alg) {
        return Err(Refused::Alg);
    }
    verify_signature(issuer, &jws)
        .await
        .map_err(Refused::Signature)?;
    let wanted = policy.logout_audiences();
    if !claims.audiences().any(|a| wanted.iter().any(|w| w == a)) {
        return Err(Refused::Audience);
    }
    let leeway = policy.leeway_seconds as f64;
    let now_f = now as f64;
    let iat = claims.iat().ok_or(Refused::NoIat)?;
    if iat > now_f + leeway {
        return Err(Refused::IatInFuture);
    }
    if now_f - iat > MAX_AGE_SECONDS as f64 {
        return Err(Refused::TooOld);
    }
    if claims.exp().is_some_and(|exp| now_f >= exp + leeway) {
        return Err(Refused::Expired);
    }
    let jti = claims
        .jti()
        .filter(|j| !j.is_empty())
        .ok_or(Refused::NoJti)?;
    let event = members
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(Refused::Event);
    }
    let ends = match (claims.sid(), claims.sub()) {
        (Some(sid), _) if !sid.is_empty() => Ends::Session(sid.to_owned()),
        (_, Some(sub)) if !sub.is_empty() => Ends::Subject(sub.to_owned()),
        _ => return Err(Refused::NoSubject),
    };
    if members.contains_key("nonce") {
        return Err(Refused::Nonce);
    }
    Ok(Logout {
        issuer: issuer.clone(),
        // Sessions are kept under the configured issuer, whatever alias was spelled.
        iss: issuer.config.issuer.clone(),
        ends,
        jti: jti.to_owned(),
        iat: iat.max(0.0) as u64,
    })
}

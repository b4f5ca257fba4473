//! Security Event Tokens (RFC 8417) from a Shared Signals transmitter:
//! checked before any event in them is looked at — `typ` `secevent+jwt`, the
//! transmitter's `iss`, a signature by its keys (fetched and refreshed like an
//! issuer's, with the same hygiene), our `aud`, `iat`, `jti`, and an `events`
//! object. Each failure carries its RFC 8935 §2.4 error code.

use serde_json::{Map, Value};

use super::ssf::Transmitter;
use crate::token::parse::typ_accepted;
use crate::token::parse::{Jws, parse_object};
use crate::token::{Claims, Reason};
use crate::verify::verify_signature;

/// A SET that passed every check.
#[derive(Debug)]
pub struct Set {
    pub jti: String,
    pub iat: u64,
    /// Event type URI → event payload.
    pub events: Map<String, Value>,
    /// The SET's top-level subject (`sub_id`, SSF 1.0), if any.
    pub sub_id: Option<Value>,
}

/// Why a SET was refused, with its RFC 8935 error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidKey(String),
    #[error("iss is not this transmitter's issuer")]
    InvalidIssuer,
    #[error("aud does not name this receiver")]
    InvalidAudience,
    /// The transmitter's keys are not loaded yet: not the SET's fault, try again.
    #[error("the transmitter's keys are not loaded yet")]
    NoKeysYet,
}

impl SetError {
    /// The `err` member of the error answer (RFC 8935 §2.4), also used in
    /// RFC 8936 `setErrs`.
    pub fn code(&self) -> &'static str {
        match self {
            SetError::InvalidRequest(_) => "invalid_request",
            SetError::InvalidKey(_) => "invalid_key",
            SetError::InvalidIssuer => "invalid_issuer",
            SetError::InvalidAudience => "invalid_audience",
            SetError::NoKeysYet => "temporarily_unavailable",
        }
    }
}

/// Checks one SET from `transmitter` at `now` (Unix seconds).
pub async fn check(
    transmitter: &Transmitter,
    set: &str,
    max_bytes: usize,
    now: u64,
) -> Result<Set, SetError> {
    let bad = |what: String| SetError::InvalidRequest(what);
    if set.split('.').count() == 5 {
        return Err(bad("encrypted SETs are not accepted".into()));
    }
    let jws = Jws::parse(set, max_bytes).map_err(|r| bad(format!("not a signed JWT ({r})")))?;
    if !typ_accepted(jws.header.typ.as_deref(), &["secevent+jwt".to_owned()]) {
        return Err(bad("typ must be secevent+jwt".into()));
    }
    let claims = Claims::parse(&jws.payload).map_err(|r| bad(format!("malformed claims ({r})")))?;
    let mut members = parse_object(&jws.payload).map_err(|r| {
        bad(format!(
            "malformed claims ({})",
            r.unwrap_or(Reason::BadClaims)
        ))
    })?;
    let keys = &transmitter.keys;
    if claims.iss() != Some(keys.config.issuer.as_str()) {
        return Err(SetError::InvalidIssuer);
    }
    if !keys.config.allowed.contains(&jws.header.alg) {
        return Err(SetError::InvalidKey(format!(
            "alg {} is not allowed for this transmitter",
            jws.header.alg
        )));
    }
    verify_signature(keys, &jws).await.map_err(|r| match r {
        Reason::NoKeys => SetError::NoKeysYet,
        r => SetError::InvalidKey(format!("the signature does not verify ({r})")),
    })?;
    if !claims.audiences().any(|a| a == transmitter.config.audience) {
        return Err(SetError::InvalidAudience);
    }
    let leeway = keys.config.leeway_seconds as f64;
    let iat = claims.iat().ok_or_else(|| bad("no iat".into()))?;
    if iat > now as f64 + leeway {
        return Err(bad("iat lies in the future".into()));
    }
    let jti = claims
        .jti()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| bad("no jti".into()))?;
    let events = match members.remove("events") {
        Some(Value::Object(events)) if !events.is_empty() => events,
        _ => return Err(bad("events must be a non-empty object".into())),
    };
    Ok(Set {
        jti: jti.to_owned(),
        iat: iat.max(0.0) as u64,
        events,
        sub_id: members.remove("sub_id"),
    })
}

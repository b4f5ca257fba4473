//! Stage 8 of the token path: sender-constrained tokens. A token whose `cnf`
//! binds it to a DPoP key (RFC 9449) is active only with a valid proof of
//! that key for this request ([`dpop`]); one bound to a client certificate
//! (RFC 8705) only when the presenting client's certificate has that
//! thumbprint ([`cert`]). It runs after the verified-token cache, on hits and
//! misses alike: a cached token is never served without its proof.

pub mod cert;
pub mod dpop;

use crate::config::{DpopMode, IssuerConfig};
use crate::request::Presented;
use crate::revocation::Revocations;
use crate::token::Reason;

/// A token's confirmation (`cnf`) members tokend enforces.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Confirmation<'a> {
    pub jkt: Option<&'a str>,
    pub x5t_s256: Option<&'a str>,
    /// `cnf` is there but not an object of string members: never honoured.
    pub malformed: bool,
}

/// Checks the token's binding (its `cnf`) against what came with it.
pub async fn check(
    cnf: Confirmation<'_>,
    presented: &Presented<'_>,
    policy: &IssuerConfig,
    replay: &Revocations,
    now: u64,
) -> Result<(), Reason> {
    if cnf.malformed {
        return Err(Reason::BadConfirmation);
    }
    match (cnf.jkt, policy.dpop) {
        (Some(_), DpopMode::Off) => return Err(Reason::DpopNotAccepted),
        (Some(jkt), _) => dpop::check(jkt, presented, policy, replay, now).await?,
        (None, DpopMode::Required) => return Err(Reason::DpopRequired),
        // The client says the token is bound; it is not: neither scheme's rules hold.
        (None, _) if presented.under_dpop_scheme() => return Err(Reason::DpopNotAccepted),
        (None, _) => {}
    }
    if let Some(x5t) = cnf.x5t_s256 {
        cert::check(x5t, presented.client_cert)?;
    }
    Ok(())
}

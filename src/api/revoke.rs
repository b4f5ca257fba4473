//! Revocation requests, shared by the HTTP and gRPC fronts: RFC 7009 token
//! revocation and the admin API's four kinds of entry. Every stored entry and
//! every lift writes one audit log line (who, what, when, from where).

use serde::Deserialize;

use crate::callers::Caller;
use crate::errors::ApiError;
use crate::request::{Presented, TokenSource};
use crate::revocation::{Entry, StoreError, audit, expiry_after};
use crate::runtime::Runtime;
use crate::state::Shared;
use crate::verify::{Proof, Verdict, Verified};

fn unavailable(e: StoreError) -> ApiError {
    ApiError::Unavailable(format!(
        "{e}; the revocation is not known to be stored (it may or may not have been applied): retry, it is idempotent"
    ))
}

/// An opaque token whose issuer could not be asked: whose it is, and so what
/// to store, is unknown. Not acknowledged (the caller retries); meanwhile the
/// token is inactive anyway, as every doubt is.
fn issuer_unheard(reason: crate::token::Reason) -> ApiError {
    ApiError::Unavailable(format!(
        "the token's issuer could not be asked about it ({reason}), so nothing is stored: retry"
    ))
}

/// RFC 7009: an entry is stored only for a token whose signature verifies against
/// a trusted issuer and that is still active; anything else is silently accepted
/// (`Ok(None)`), so a forged token cannot revoke someone else's `jti`.
pub async fn revoke_token(
    state: &Shared,
    presented: &Presented<'_>,
    caller: &Caller,
    from: &str,
) -> Result<Option<Entry>, ApiError> {
    let now = (state.clock)();
    let token = presented.token;
    let runtime = state.runtime();
    let verified = match runtime.verifier.check(presented, now).await {
        Verdict::Active(v) => v,
        Verdict::Inactive(reason) if reason.is_doubt() => return Err(issuer_unheard(reason)),
        Verdict::Inactive(reason) => {
            tracing::debug!(caller = %caller.id, token = %crate::token::fingerprint(token), %reason, "revoke: nothing to store");
            return Ok(None);
        }
    };
    let stored = store(state, &runtime, &verified, now, caller, from).await?;
    forward(&runtime, &verified, token).await;
    Ok(Some(stored))
}

/// Stores the entry that revokes one verified token; `runtime` is the
/// snapshot that verified it (a reload may have swapped in another since).
async fn store(
    state: &Shared,
    runtime: &Runtime,
    verified: &Verified,
    now: u64,
    caller: &Caller,
    from: &str,
) -> Result<Entry, ApiError> {
    let policy = &runtime.issuer(verified.issuer).config;
    let open_ended = state.revocations.open_ended_expiry(now);
    let entry = verified.revocation_entry(policy, open_ended, now, &caller.id);
    let (stored, _) = state.revocations.revoke(entry).await.map_err(unavailable)?;
    audit("stored", &stored, &caller.id, from);
    Ok(stored)
}

/// After an opaque token's revocation is stored here, tells its issuer too
/// (RFC 7009), when the issuer has a revocation endpoint. Best effort: the
/// token is inactive here whatever the issuer answers; a failure is logged
/// and counted in `tokend_upstream_revocations_total`.
async fn forward(runtime: &Runtime, verified: &Verified, token: &str) {
    if verified.proof != Proof::Introspection {
        return;
    }
    let Some(introspector) = runtime.verifier.opaque().and_then(|o| {
        o.introspectors()
            .iter()
            .find(|i| i.issuer.id == verified.issuer)
    }) else {
        return;
    };
    let issuer = &introspector.issuer.config.name;
    match introspector.revoke(token).await {
        Ok(true) => tracing::info!(%issuer, "revocation forwarded to the issuer"),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(%issuer, error = %e, "revocation stored here, but the issuer's revocation endpoint did not take it")
        }
    }
}

/// Body of `POST /admin/revocations`: exactly one of the four forms.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRevocation {
    pub token: Option<String>,
    pub jti: Option<String>,
    pub iss: Option<String>,
    pub exp: Option<u64>,
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub before: Option<u64>,
}

/// Stores one admin revocation; never answers success for an entry not stored.
pub async fn admin_revoke(
    state: &Shared,
    req: AdminRevocation,
    caller: &Caller,
    from: &str,
) -> Result<Entry, ApiError> {
    let now = (state.clock)();
    let runtime = state.runtime();
    let bad = |d: &str| ApiError::InvalidRequest(d.to_owned());
    let entry = match req {
        AdminRevocation {
            token: Some(token),
            jti: None,
            iss: None,
            exp: None,
            sub: None,
            sid: None,
            before: None,
        } => {
            let presented = Presented::new(&token, TokenSource::AdminBody);
            let verified = match runtime.verifier.check(&presented, now).await {
                Verdict::Active(v) => v,
                Verdict::Inactive(reason) if reason.is_doubt() => {
                    return Err(issuer_unheard(reason));
                }
                Verdict::Inactive(reason) => {
                    return Err(ApiError::InvalidRequest(format!(
                        "the token is not active ({}), so there is nothing to revoke",
                        reason.as_str()
                    )));
                }
            };
            let stored = store(state, &runtime, &verified, now, caller, from).await?;
            forward(&runtime, &verified, &token).await;
            return Ok(stored);
        }
        AdminRevocation {
            token: None,
            jti: Some(jti),
            iss: Some(iss),
            exp: Some(exp),
            sub: None,
            sid: None,
            before: None,
        } => {
            let issuer = runtime
                .verifier
                .issuer_by_iss(&iss)
                .ok_or_else(|| bad("iss is not a configured issuer"))?;
            if jti.is_empty() {
                return Err(bad("jti must not be empty"));
            }
            let expires = expiry_after(exp as f64, issuer.config.leeway_seconds);
            Entry::jti(&issuer.config.issuer, &jti).with_times(expires, now, &caller.id)
        }
        AdminRevocation {
            token: None,
            jti: None,
            iss: Some(iss),
            exp: None,
            sub,
            sid,
            before,
        } if sub.is_none() || sid.is_none() => {
            let issuer = runtime
                .verifier
                .issuer_by_iss(&iss)
                .ok_or_else(|| bad("iss is not a configured issuer"))?;
            let leeway = issuer.config.leeway_seconds;
            // A subject's or session's tokens by default up to now + leeway:
            // one minted just before this request by an IdP whose clock runs
            // ahead (up to the leeway tokend accepts) carries an `iat` past our now.
            let before = match (sub.is_some() || sid.is_some(), before) {
                (_, Some(b)) => b,
                (true, None) => now.saturating_add(leeway),
                (false, None) => return Err(bad("revoking a whole issuer needs \"before\"")),
            };
            if before > now.saturating_add(leeway) {
                return Err(bad("\"before\" lies in the future"));
            }
            let expires = state.revocations.bulk_expiry(&issuer.config, before, now);
            match (sub, sid) {
                (Some(sub), _) if sub.is_empty() => return Err(bad("sub must not be empty")),
                (_, Some(sid)) if sid.is_empty() => return Err(bad("sid must not be empty")),
                // Under the configured issuer, whichever spelling was given.
                (Some(sub), _) => Entry::subject(&issuer.config.issuer, &sub, before),
                (_, Some(sid)) => Entry::session(&issuer.config.issuer, &sid, before),
                (None, None) => Entry::issuer(&issuer.config.issuer, before),
            }
            .with_times(expires, now, &caller.id)
        }
        _ => {
            return Err(bad(
                "give exactly one of {\"token\"}, {\"jti\",\"iss\",\"exp\"}, {\"sub\",\"iss\"[,\"before\"]}, {\"sid\",\"iss\"[,\"before\"]}, {\"iss\",\"before\"}",
            ));
        }
    };
    let (stored, _) = state.revocations.revoke(entry).await.map_err(unavailable)?;
    audit("stored", &stored, &caller.id, from);
    Ok(stored)
}

/// Lifts one entry by id.
pub async fn lift(state: &Shared, id: String, caller: &Caller, from: &str) -> Result<(), ApiError> {
    match state.revocations.lift(id).await.map_err(unavailable)? {
        Some(entry) => {
            audit("lifted", &entry, &caller.id, from);
            Ok(())
        }
        None => Err(ApiError::NotFound),
    }
}

//! Revocations the identity provider asks for: a user logged out (OpenID
//! Connect Back-Channel Logout, [`logout`]), or a Shared Signals transmitter
//! sent a security event ([`set`] checks the token, [`ssf`] maps its events,
//! [`poll`] fetches them when they are not pushed). Each event is checked by its
//! spec's rules, becomes one revocation [`Entry`] stored like any other (so
//! every replica applies it within milliseconds), and is acted on once: its
//! `jti` is remembered in the revocation store, so a replay on any replica
//! is refused.

pub mod logout;
pub mod poll;
pub mod set;
pub mod ssf;

use crate::metrics::REVOCATION_EVENTS;
use crate::revocation::{Entry, Revocations, StoreError};
use logout::{Ends, Logout, REPLAY_WINDOW_SECONDS};

/// Where an event came from (label `source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    BackchannelLogout,
    SsfPush,
    SsfPoll,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::BackchannelLogout => "backchannel_logout",
            Source::SsfPush => "ssf_push",
            Source::SsfPoll => "ssf_poll",
        }
    }
}

/// Counts one event on `tokend_revocation_events_total`; `event` and
/// `result` come from closed sets.
pub fn count(source: Source, event: &'static str, result: &'static str) {
    metrics::counter!(REVOCATION_EVENTS, "source" => source.label(), "event" => event, "result" => result)
        .increment(1);
}

/// What acting on an event came to.
pub enum Applied {
    /// The entry is stored (acknowledge the event).
    Stored(Entry),
    /// This event was acted on before (its `jti` is remembered): refused.
    Replayed,
}

/// Ends the session a logout token names (or, without `sid`, every session
/// of its subject): tokens issued at or before the logout token's `iat`.
/// The entry is stored first and the `jti` remembered after, so that a
/// store failure leaves nothing half done: the IdP's retry (same `jti`)
/// stores the same entry again (same id) and is then remembered.
pub async fn end_session(
    revocations: &Revocations,
    logout: &Logout,
    now: u64,
) -> Result<Applied, StoreError> {
    let before = logout.iat;
    let entry = match &logout.ends {
        Ends::Session(sid) => Entry::session(&logout.iss, sid, before),
        Ends::Subject(sub) => Entry::subject(&logout.iss, sub, before),
    };
    let expires = revocations.bulk_expiry(&logout.issuer.config, before, now);
    let by = format!("backchannel-logout:{}", logout.issuer.config.name);
    let (stored, _) = revocations
        .revoke(entry.with_times(expires, now, &by))
        .await?;
    let id = format!("logout\u{0}{}\u{0}{}", logout.iss, logout.jti);
    let fresh = revocations
        .first_sighting(&id, logout.iat.saturating_add(REPLAY_WINDOW_SECONDS))
        .await?;
    Ok(if fresh {
        Applied::Stored(stored)
    } else {
        Applied::Replayed
    })
}

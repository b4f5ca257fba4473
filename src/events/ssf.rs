//! Shared Signals (SSF) events, mapped to revocations: CAEP
//! `session-revoked` ends one session when the subject names one (else every
//! session of the subject, as of the event); CAEP `credential-change` and RISC
//! `account-disabled`, `account-purged`, `sessions-revoked` end every session
//! of the subject. Subjects (RFC 9493) in the `iss_sub`, `opaque` and
//! `complex` formats are understood, read from the SET's `sub_id` or, for
//! older transmitters, the event's `subject`. Anything else is acknowledged
//! and counted, never guessed at.

use serde_json::{Map, Value};
use std::sync::Arc;

use super::set::Set;
use super::{Source, count};
use crate::config::TransmitterConfig;
use crate::keys::IssuerKeys;
use crate::revocation::{Entry, Revocations, StoreError, audit};

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

/// How long a SET's `jti` is remembered (a transmitter resending an event
/// whose acknowledgement it missed gets it acknowledged, not applied again).
pub const SET_MEMORY_SECONDS: u64 = 7 * 24 * 3600;

/// A transmitter with its keys and the issuers its events apply to.
pub struct Transmitter {
    pub config: TransmitterConfig,
    pub keys: Arc<IssuerKeys>,
    pub applies_to: Vec<Arc<IssuerKeys>>,
    /// Cancelled when a reload drops or changes this transmitter: its poller stops.
    pub retired: tokio_util::sync::CancellationToken,
}

/// What an event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One session if the subject names it, else the subject's every session.
    SessionRevoked,
    /// Every session of the subject.
    AllSessions,
}

/// The event's label on `tokend_revocation_events_total` and what it asks for.
fn event_kind(uri: &str) -> (&'static str, Option<Kind>) {
    if let Some(name) = uri.strip_prefix(CAEP) {
        match name {
            "session-revoked" => return ("session-revoked", Some(Kind::SessionRevoked)),
            "credential-change" => return ("credential-change", Some(Kind::AllSessions)),
            _ => {}
        }
    } else if let Some(name) = uri.strip_prefix(RISC) {
        match name {
            "account-disabled" => return ("account-disabled", Some(Kind::AllSessions)),
            "account-purged" => return ("account-purged", Some(Kind::AllSessions)),
            "sessions-revoked" => return ("sessions-revoked", Some(Kind::AllSessions)),
            _ => {}
        }
    }
    ("unknown", None)
}

/// Whose tokens an event covers, at one issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Subject(String),
    Session(String),
}

/// The subject identifier's users and session, resolved against `applies_to`.
struct Subject<'a> {
    users: Vec<(&'a Arc<IssuerKeys>, String)>,
    session: Option<String>,
}

fn text<'v>(value: &'v Value, name: &str) -> Option<&'v str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Reads a subject identifier (RFC 9493): `iss_sub`, `opaque`, or `complex`
/// with `user` and/or `session`. `None`: a format tokend cannot act on.
fn subject<'t>(id: &Value, transmitter: &'t Transmitter) -> Option<Subject<'t>> {
    let users = |id: &Value| -> Option<Vec<(&'t Arc<IssuerKeys>, String)>> {
        match text(id, "format")? {
            "iss_sub" => {
                let (iss, sub) = (text(id, "iss")?, text(id, "sub")?);
                let issuer = transmitter
                    .applies_to
                    .iter()
                    .find(|i| i.config.names_iss(iss))?;
                Some(vec![(issuer, sub.to_owned())])
            }
            "opaque" => {
                let sub = text(id, "id")?;
                Some(
                    transmitter
                        .applies_to
                        .iter()
                        .map(|i| (i, sub.to_owned()))
                        .collect(),
                )
            }
            _ => None,
        }
    };
    match text(id, "format")? {
        "complex" => {
            let session = match id.get("session") {
                None => None,
                Some(s) if text(s, "format") == Some("opaque") => Some(text(s, "id")?.to_owned()),
                Some(_) => return None,
            };
            let users = match id.get("user") {
                Some(user) => users(user)?,
                // A session alone: it is looked for at every issuer the events apply to.
                None if session.is_some() => transmitter
                    .applies_to
                    .iter()
                    .map(|i| (i, String::new()))
                    .collect(),
                None => return None,
            };
            Some(Subject { users, session })
        }
        _ => Some(Subject {
            users: users(id)?,
            session: None,
        }),
    }
}

/// One event's entries: `Err(())` when the event type or its subject is not
/// one tokend acts on.
fn entries(
    transmitter: &Transmitter,
    set: &Set,
    kind: Kind,
    payload: &Map<String, Value>,
) -> Result<Vec<(Arc<IssuerKeys>, Entry, u64)>, ()> {
    let id = set
        .sub_id
        .as_ref()
        .or_else(|| payload.get("subject"))
        .ok_or(())?;
    let subject = subject(id, transmitter).ok_or(())?;
    let at = payload
        .get("event_timestamp")
        .and_then(Value::as_f64)
        .filter(|t| *t >= 0.0)
        .map_or(set.iat, |t| t as u64);
    let mut out = Vec::new();
    for (issuer, sub) in subject.users {
        let who = match (&subject.session, kind) {
            (Some(sid), Kind::SessionRevoked) => Who::Session(sid.clone()),
            _ if sub.is_empty() => continue,
            _ => Who::Subject(sub),
        };
        let iss = &issuer.config.issuer;
        let entry = match who {
            Who::Subject(sub) => Entry::subject(iss, &sub, at),
            Who::Session(sid) => Entry::session(iss, &sid, at),
        };
        out.push((issuer.clone(), entry, at));
    }
    if out.is_empty() {
        return Err(());
    }
    Ok(out)
}

/// What applying a SET came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every event it carries is applied (or, not understood, counted).
    Applied,
    /// Its `jti` was acted on before: acknowledged again, nothing new.
    Replayed,
}

/// Applies every event of a checked SET: entries first, then its `jti`
/// remembered, so that a failure part-way leaves the SET unacknowledged and
/// the transmitter's retry stores the same entries again (same ids).
pub async fn apply(
    revocations: &Revocations,
    transmitter: &Transmitter,
    set: &Set,
    source: Source,
    now: u64,
) -> Result<Outcome, StoreError> {
    let by = format!("ssf:{}", transmitter.config.name);
    let mut applied = Vec::new();
    for (uri, payload) in &set.events {
        let (label, kind) = event_kind(uri);
        let planned = match (kind, payload.as_object()) {
            (Some(kind), Some(payload)) => entries(transmitter, set, kind, payload),
            _ => Err(()),
        };
        let Ok(planned) = planned else {
            count(source, label, "ignored");
            tracing::info!(transmitter = %transmitter.config.name, event = %uri, "security event not acted on (type or subject format not supported)");
            continue;
        };
        for (issuer, entry, at) in planned {
            let expires = revocations.bulk_expiry(&issuer.config, at, now);
            match revocations
                .revoke(entry.with_times(expires, now, &by))
                .await
            {
                Ok((stored, true)) => audit("stored", &stored, &by, source.label()),
                Ok((_, false)) => {}
                Err(e) => {
                    count(source, label, "unavailable");
                    return Err(e);
                }
            }
        }
        applied.push(label);
    }
    let id = format!("ssf\u{0}{}\u{0}{}", transmitter.config.name, set.jti);
    let fresh = revocations
        .first_sighting(&id, now.saturating_add(SET_MEMORY_SECONDS))
        .await?;
    for label in applied {
        count(source, label, if fresh { "applied" } else { "replayed" });
    }
    Ok(if fresh {
        Outcome::Applied
    } else {
        Outcome::Replayed
    })
}

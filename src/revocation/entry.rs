//! The revocation model every store shares: an [`Entry`] revokes one token
//! (by `jti`, or by the SHA-256 of its signing input when it has none), every
//! token of a subject, of a session (`sid`, as OpenID Back-Channel Logout
//! ends them) or of an issuer issued at or before a time. Each entry expires when the last token it can
//! cover has expired, and has an id derived from what it revokes, so the same
//! entry has the same id everywhere.

use serde::{Deserialize, Serialize};

/// What an entry revokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Jti,
    Subject,
    Issuer,
    Session,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Jti, Kind::Subject, Kind::Issuer, Kind::Session];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Subject => "subject",
            Kind::Issuer => "issuer",
            Kind::Session => "session",
        }
    }
}

/// One revocation, as stored, listed and shown (SPEC's admin API shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub kind: Kind,
    pub iss: String,
    /// `Jti` entries: the token's `jti`, or `jws-sha256:<hex>` (the SHA-256 of
    /// the signing input) of a token without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `Subject` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `Session` entries: the `sid` claim of the tokens they revoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `Subject`, `Session` and `Issuer` entries: tokens with `iat <= before` (or no `iat`) are revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Unix seconds after which no token the entry covers can still be valid.
    pub expires_at: u64,
    pub created_at: u64,
    pub created_by: String,
    /// Wall-clock milliseconds when the entry was made, for
    /// `tokend_revocation_propagation_seconds` on every replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<u64>,
}

/// Prefix of the `jti` stand-in for tokens without one: the SHA-256 of the
/// JWS signing input (`header.payload`). Every valid encoding of one token
/// shares it: base64url is strict, so only the signature can vary, and a
/// second valid signature over the same input (ECDSA's `n − s`, a fresh ECDSA
/// signature, a PSS salt) still names the same claims from the same key.
pub const SIGNING_INPUT_PREFIX: &str = "jws-sha256:";

/// The latest `expires_at` an entry carries: 9999-12-31T23:59:59Z. Later
/// times (a token's `exp` of 1e300) are clamped to it, so that no arithmetic
/// on them overflows and every store holds them exactly (in Redis, as
/// milliseconds, well below 2^53).
pub const MAX_EXPIRES_AT: u64 = 253_402_300_799;

/// When an entry for a token with this `exp` may go: `exp` rounded up (a token
/// with `exp` 1000.5 is active through second 1000) plus leeway, clamped.
pub fn expiry_after(exp: f64, leeway: u64) -> u64 {
    let exp = if exp.is_nan() { 0.0 } else { exp.ceil() };
    // `as` saturates (negative to 0, huge to u64::MAX); the sum cannot wrap.
    (exp as u64).saturating_add(leeway).min(MAX_EXPIRES_AT)
}

/// Prefix of the `jti` stand-in that is the SHA-256 of the whole token
/// string: how an opaque token is revoked (it has one encoding only). JWS
/// revocations used it before 0.2, which a re-encoded signature escapes; those
/// entries are still honoured until they expire, and no longer written.
pub const TOKEN_HASH_PREFIX: &str = "sha256:";

impl Entry {
    fn new(kind: Kind, iss: &str, value: Option<String>, before: Option<u64>) -> Entry {
        let (jti, sub, sid) = match kind {
            Kind::Jti => (value, None, None),
            Kind::Subject => (None, value, None),
            Kind::Session => (None, None, value),
            Kind::Issuer => (None, None, None),
        };
        let mut entry = Entry {
            id: String::new(),
            kind,
            iss: iss.to_owned(),
            jti,
            sub,
            sid,
            before,
            expires_at: 0,
            created_at: 0,
            created_by: String::new(),
            created_ms: None,
        };
        entry.id = entry.derived_id();
        entry
    }

    /// The id: a hash of what the entry revokes (ids of the first three
    /// kinds are as they were before sessions existed).
    fn derived_id(&self) -> String {
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [
            self.kind.as_str(),
            &self.iss,
            self.jti.as_deref().unwrap_or(""),
            self.sub.as_deref().unwrap_or(""),
        ] {
            digest.update(part.as_bytes());
            digest.update(&[0]);
        }
        if let Some(sid) = &self.sid {
            digest.update(sid.as_bytes());
            digest.update(&[0]);
        }
        digest.update(&self.before.unwrap_or(0).to_be_bytes());
        let prefix = match self.kind {
            Kind::Jti => "jti_",
            Kind::Subject => "sub_",
            Kind::Issuer => "iss_",
            Kind::Session => "sid_",
        };
        format!(
            "{prefix}{}",
            crate::mint::b64(&digest.finish().as_ref()[..16])
        )
    }

    /// Revokes one token by its `jti`.
    pub fn jti(iss: &str, jti: &str) -> Entry {
        Entry::new(Kind::Jti, iss, Some(jti.to_owned()), None)
    }

    /// Revokes a token without `jti` by the SHA-256 of its signing input.
    pub fn signing_input(iss: &str, signing_input_sha256: &[u8; 32]) -> Entry {
        Entry::jti(
            iss,
            &format!(
                "{SIGNING_INPUT_PREFIX}{}",
                hex::encode(signing_input_sha256)
            ),
        )
    }

    /// Revokes an opaque token by the SHA-256 of the whole token.
    pub fn token_hash(iss: &str, digest: &[u8; 32]) -> Entry {
        Entry::jti(iss, &format!("{TOKEN_HASH_PREFIX}{}", hex::encode(digest)))
    }

    /// Revokes every token of `sub` at `iss` issued at or before `before`.
    pub fn subject(iss: &str, sub: &str, before: u64) -> Entry {
        Entry::new(Kind::Subject, iss, Some(sub.to_owned()), Some(before))
    }

    /// Revokes every token of `iss` whose `sid` is `sid`, issued at or before `before`.
    pub fn session(iss: &str, sid: &str, before: u64) -> Entry {
        Entry::new(Kind::Session, iss, Some(sid.to_owned()), Some(before))
    }

    /// Revokes every token of `iss` issued at or before `before`.
    pub fn issuer(iss: &str, before: u64) -> Entry {
        Entry::new(Kind::Issuer, iss, None, Some(before))
    }

    /// Sets the times; `expires_at` is clamped to [`MAX_EXPIRES_AT`].
    /// Sets the times; `expires_at` is clamped to [`MAX_EXPIRES_AT`]. Also
    /// stamps the wall clock in milliseconds (`created_at` comes from the
    /// service's clock, in seconds: too coarse to see propagation).
    pub fn with_times(mut self, expires_at: u64, created_at: u64, created_by: &str) -> Entry {
        self.expires_at = expires_at.min(MAX_EXPIRES_AT);
        self.created_at = created_at;
        self.created_by = created_by.to_owned();
        self.created_ms = Some(wall_clock_ms());
        self
    }

    /// Seconds from its creation to now, by the wall clock (`None` for an
    /// entry written before `created_ms` existed).
    pub fn age_seconds(&self) -> Option<f64> {
        let created = self.created_ms?;
        Some(wall_clock_ms().saturating_sub(created) as f64 / 1000.0)
    }

    /// Whether the id matches the content (ids travel through stores and APIs),
    /// and the content fits the kind.
    pub fn id_is_consistent(&self) -> bool {
        let fits = match self.kind {
            Kind::Jti => self.jti.is_some() && self.sub.is_none() && self.sid.is_none(),
            Kind::Subject => self.sub.is_some() && self.jti.is_none() && self.sid.is_none(),
            Kind::Session => self.sid.is_some() && self.jti.is_none() && self.sub.is_none(),
            Kind::Issuer => self.jti.is_none() && self.sub.is_none() && self.sid.is_none(),
        };
        fits && self.derived_id() == self.id
    }
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_url_safe_and_distinct() {
        let a = Entry::jti("https://a", "t1");
        assert_eq!(a.id, Entry::jti("https://a", "t1").id);
        assert_ne!(a.id, Entry::jti("https://b", "t1").id);
        assert_ne!(a.id, Entry::subject("https://a", "t1", 0).id);
        assert_ne!(
            Entry::subject("https://a", "u", 1).id,
            Entry::subject("https://a", "u", 2).id
        );
        assert!(
            a.id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{}",
            a.id
        );
        assert!(a.id_is_consistent());
        let session = Entry::session("https://a", "t1", 0);
        assert!(session.id.starts_with("sid_") && session.id_is_consistent());
        assert_ne!(session.id, Entry::subject("https://a", "t1", 0).id);
        let mut forged = a.clone();
        forged.jti = Some("other".into());
        assert!(!forged.id_is_consistent());
    }
}

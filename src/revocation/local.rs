//! The copy of the revocation list every replica checks on the request path:
//! sharded maps keyed by 128-bit fingerprints — no network, no global lock,
//! no allocation — swapped whole on a full resync.

use arc_swap::ArcSwap;
use dashmap::DashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use super::entry::{Entry, Kind, SIGNING_INPUT_PREFIX, TOKEN_HASH_PREFIX};
use crate::token::WholeToken;

/// Who a token belongs to, as subject, session and issuer entries match it.
#[derive(Clone, Copy, Debug)]
pub struct Holder<'a> {
    pub iss: &'a str,
    pub sub: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// When it was issued (see [`crate::verify::issued_at`]); `None`: covered
    /// by every live entry.
    pub iat: Option<f64>,
}

/// The `jti` side of a token, as the local copy looks it up.
#[derive(Clone, Copy, Debug)]
pub enum TokenId<'a> {
    Jti(&'a str),
    /// A JWS without `jti`: the SHA-256 of its signing input.
    SigningInput(&'a [u8; 32]),
    /// An opaque token: the SHA-256 of the whole token.
    Whole(&'a [u8; 32]),
    /// One of the above, its [`TokenId::fingerprint`] worked out once, when
    /// the token was verified (a cached verdict does not hash it again);
    /// for a JWS without `jti`, `token` too: its SHA-256 names it in
    /// [`TOKEN_HASH_PREFIX`] entries (computed only while the copy holds any).
    Known {
        fingerprint: u128,
        token: Option<&'a WholeToken<'a>>,
    },
}

impl TokenId<'_> {
    /// The key of this token's entry in the copy, under the configured `iss`.
    pub fn fingerprint(self, iss: &str) -> u128 {
        match self {
            TokenId::Jti(jti) => fingerprint(Kind::Jti, iss, &[jti.as_bytes()]),
            TokenId::SigningInput(signing_input) => fingerprint(
                Kind::Jti,
                iss,
                &[SIGNING_INPUT_PREFIX.as_bytes(), &hex_lower(signing_input)],
            ),
            TokenId::Whole(digest) => fingerprint(
                Kind::Jti,
                iss,
                &[TOKEN_HASH_PREFIX.as_bytes(), &hex_lower(digest)],
            ),
            TokenId::Known { fingerprint, .. } => fingerprint,
        }
    }
}

/// Fixed-key SipHash so that fingerprints are the same in every process
/// (tests and replicas compare them); they are never exposed.
#[derive(Clone, Copy, Default)]
struct Fingerprinter;

impl BuildHasher for Fingerprinter {
    type Hasher = std::hash::DefaultHasher;
    fn build_hasher(&self) -> Self::Hasher {
        std::hash::DefaultHasher::new()
    }
}

/// A 128-bit fingerprint of `(kind, iss, value)` from two independent 64-bit hashes.
fn fingerprint(kind: Kind, iss: &str, value: &[&[u8]]) -> u128 {
    let half = |salt: u8| {
        let mut h = Fingerprinter.build_hasher();
        h.write(&[salt, kind as u8]);
        h.write(iss.as_bytes());
        h.write(&[0xff]); // never part of UTF-8: separates iss from value
        for part in value {
            h.write(part);
        }
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

fn hex_lower(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// The maps' keys are already fingerprints: hashing them again with SipHash
/// showed in the profile of cached `IntrospectBatch` verdicts.
type ByFingerprint = crate::prehashed::BuildPrehashed;

/// A subject- or issuer-wide entry in the local copy.
#[derive(Clone, Copy, Debug)]
struct Bulk {
    before: u64,
    expires_at: u64,
}

/// The maps behind a [`LocalCopy`]; a full resync builds a new set and swaps it in.
#[derive(Default)]
struct Maps {
    /// fingerprint(Jti, iss, jti) → expires_at
    jti: DashMap<u128, u64, ByFingerprint>,
    /// fingerprint(Subject, iss, sub) or fingerprint(Issuer, iss) → entries
    bulk: DashMap<u128, Vec<Bulk>, ByFingerprint>,
    /// Whether any entry of the legacy whole-token-hash form was applied.
    token_hashes: std::sync::atomic::AtomicBool,
}

/// Every replica's in-process copy of the revocation list: sharded maps (no
/// global lock) behind an `ArcSwap`, so a full resync replaces them whole and
/// no reader ever sees a half-loaded copy.
pub struct LocalCopy {
    maps: ArcSwap<Maps>,
}

impl Default for LocalCopy {
    fn default() -> Self {
        LocalCopy {
            maps: ArcSwap::from_pointee(Maps::default()),
        }
    }
}

fn key_of(entry: &Entry) -> u128 {
    match entry.kind {
        Kind::Jti => fingerprint(
            Kind::Jti,
            &entry.iss,
            &[entry.jti.as_deref().unwrap_or("").as_bytes()],
        ),
        Kind::Subject => fingerprint(
            Kind::Subject,
            &entry.iss,
            &[entry.sub.as_deref().unwrap_or("").as_bytes()],
        ),
        Kind::Session => fingerprint(
            Kind::Session,
            &entry.iss,
            &[entry.sid.as_deref().unwrap_or("").as_bytes()],
        ),
        Kind::Issuer => fingerprint(Kind::Issuer, &entry.iss, &[]),
    }
}

impl Maps {
    /// Adds or extends an entry; whether the copy changed (a replica sees its
    /// own writes twice: applied at once, then echoed by the feed).
    fn apply(&self, entry: &Entry) -> bool {
        let key = key_of(entry);
        match entry.kind {
            Kind::Jti => {
                if entry
                    .jti
                    .as_deref()
                    .is_some_and(|j| j.starts_with(TOKEN_HASH_PREFIX))
                {
                    self.token_hashes
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                let mut slot = self.jti.entry(key).or_insert(0);
                let changed = *slot < entry.expires_at;
                *slot = (*slot).max(entry.expires_at);
                changed
            }
            Kind::Subject | Kind::Session | Kind::Issuer => {
                let before = entry.before.unwrap_or(0);
                let mut list = self.bulk.entry(key).or_default();
                match list.iter_mut().find(|b| b.before == before) {
                    Some(b) if b.expires_at >= entry.expires_at => false,
                    Some(b) => {
                        b.expires_at = entry.expires_at;
                        true
                    }
                    None => {
                        list.push(Bulk {
                            before,
                            expires_at: entry.expires_at,
                        });
                        true
                    }
                }
            }
        }
    }
}

impl LocalCopy {
    /// Adds (or extends) an entry; when that changes the copy, records how
    /// long the entry took to get here (`tokend_revocation_propagation_seconds`).
    pub fn apply(&self, entry: &Entry) {
        if self.maps.load().apply(entry)
            && let Some(age) = entry.age_seconds()
        {
            metrics::histogram!(crate::metrics::REVOCATION_PROPAGATION).record(age);
        }
    }

    /// Replaces the whole copy with these entries, atomically for readers.
    pub fn replace_all<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) {
        let maps = Maps::default();
        for entry in entries {
            maps.apply(entry);
        }
        self.maps.store(Arc::new(maps));
    }

    /// Removes an entry (a lift).
    pub fn remove(&self, entry: &Entry) {
        let key = key_of(entry);
        let maps = self.maps.load();
        match entry.kind {
            Kind::Jti => {
                maps.jti.remove(&key);
            }
            Kind::Subject | Kind::Session | Kind::Issuer => {
                let before = entry.before.unwrap_or(0);
                maps.bulk.remove_if_mut(&key, |_, list| {
                    list.retain(|b| b.before != before);
                    list.is_empty()
                });
            }
        }
    }

    /// Whether a token is covered by an unexpired entry.
    pub fn is_revoked(&self, holder: &Holder<'_>, id: TokenId<'_>, now: u64) -> bool {
        let Holder { iss, sub, sid, iat } = *holder;
        let maps = self.maps.load();
        let revoked = |key: u128| maps.jti.get(&key).is_some_and(|exp| *exp > now);
        if revoked(id.fingerprint(iss)) {
            return true;
        }
        if let TokenId::Known {
            token: Some(token), ..
        } = id
            && maps.token_hashes.load(std::sync::atomic::Ordering::Relaxed)
        {
            let legacy = [TOKEN_HASH_PREFIX.as_bytes(), &hex_lower(&token.digest().0)];
            if revoked(fingerprint(Kind::Jti, iss, &legacy)) {
                return true;
            }
        }
        if maps.bulk.is_empty() {
            return false;
        }
        let covered = |key: u128| {
            maps.bulk.get(&key).is_some_and(|list| {
                list.iter()
                    .any(|b| b.expires_at > now && iat.is_none_or(|iat| iat <= b.before as f64))
            })
        };
        covered(fingerprint(Kind::Issuer, iss, &[]))
            || sub.is_some_and(|s| covered(fingerprint(Kind::Subject, iss, &[s.as_bytes()])))
            || sid.is_some_and(|s| covered(fingerprint(Kind::Session, iss, &[s.as_bytes()])))
    }

    /// Drops expired entries.
    pub fn sweep(&self, now: u64) {
        let maps = self.maps.load();
        maps.jti.retain(|_, exp| *exp > now);
        maps.bulk.retain(|_, list| {
            list.retain(|b| b.expires_at > now);
            !list.is_empty()
        });
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        let maps = self.maps.load();
        maps.jti.len() + maps.bulk.iter().map(|l| l.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::Entry;

    #[test]
    fn each_kind_covers_what_it_should() {
        let copy = LocalCopy::default();
        let now = 1000;
        copy.apply(&Entry::jti("i", "j1").with_times(2000, now, "t"));
        copy.apply(&Entry::subject("i", "alice", 900).with_times(2000, now, "t"));
        copy.apply(&Entry::issuer("k", 500).with_times(2000, now, "t"));
        copy.apply(&Entry::session("i", "s-1", 900).with_times(2000, now, "t"));
        let check = |iss, jti, sub, iat| {
            copy.is_revoked(
                &Holder {
                    iss,
                    sub,
                    sid: None,
                    iat,
                },
                TokenId::Jti(jti),
                now,
            )
        };
        assert!(check("i", "j1", None, Some(1.0)));
        assert!(!check("other", "j1", None, Some(1.0)), "jti is per issuer");
        assert!(
            check("i", "x", Some("alice"), Some(900.0)),
            "iat == before is covered"
        );
        assert!(!check("i", "x", Some("alice"), Some(901.0)), "issued after");
        assert!(
            check("i", "x", Some("alice"), None),
            "no iat counts as covered"
        );
        assert!(!check("i", "x", Some("bob"), Some(1.0)));
        assert!(check("k", "x", Some("anyone"), Some(500.0)));
        let session = |sid, iat| {
            let holder = Holder {
                iss: "i",
                sub: Some("carol"),
                sid: Some(sid),
                iat,
            };
            copy.is_revoked(&holder, TokenId::Jti("x"), now)
        };
        assert!(session("s-1", Some(900.0)), "the session's tokens");
        assert!(!session("s-1", Some(901.0)), "issued after the logout");
        assert!(!session("s-2", Some(1.0)), "another session of the issuer");
        assert!(
            !check("i", "x", Some("carol"), Some(1.0)),
            "the subject's other sessions"
        );
        assert!(!check("k", "x", Some("anyone"), Some(501.0)));
        // expiry
        assert!(!copy.is_revoked(
            &Holder {
                iss: "i",
                sub: None,
                sid: None,
                iat: None
            },
            TokenId::Jti("j1"),
            2000
        ));
        copy.sweep(2000);
        assert!(copy.is_empty());
    }

    #[test]
    fn tokens_without_jti_are_revoked_by_signing_input() {
        let copy = LocalCopy::default();
        let input = crate::token::sha256(b"a.b");
        copy.apply(&Entry::signing_input("i", &input).with_times(2000, 0, "t"));
        let (first, second) = (
            WholeToken::new("a.b.c"),
            WholeToken::new("a.b.other-signature"),
        );
        let id = |signing_input, _: &WholeToken| TokenId::SigningInput(signing_input);
        assert!(copy.is_revoked(
            &Holder {
                iss: "i",
                sub: None,
                sid: None,
                iat: None
            },
            id(&input, &first),
            1
        ));
        assert!(
            copy.is_revoked(
                &Holder {
                    iss: "i",
                    sub: None,
                    sid: None,
                    iat: None
                },
                id(&input, &second),
                1
            ),
            "any signature over the same input"
        );
        let other = crate::token::sha256(b"a.x");
        let third = WholeToken::new("a.x.c");
        assert!(!copy.is_revoked(
            &Holder {
                iss: "i",
                sub: None,
                sid: None,
                iat: None
            },
            id(&other, &third),
            1
        ));
    }

    #[test]
    fn legacy_whole_token_hashes_still_revoke() {
        let copy = LocalCopy::default();
        let token = "a.b.c";
        let legacy = format!(
            "{TOKEN_HASH_PREFIX}{}",
            hex::encode(crate::token::sha256(token.as_bytes()))
        );
        let input = crate::token::sha256(b"a.b");
        let whole = WholeToken::new(token);
        let id = TokenId::Known {
            fingerprint: TokenId::SigningInput(&input).fingerprint("i"),
            token: Some(&whole),
        };
        assert!(!copy.is_revoked(
            &Holder {
                iss: "i",
                sub: None,
                sid: None,
                iat: None
            },
            id,
            1
        ));
        copy.apply(&Entry::jti("i", &legacy).with_times(2000, 0, "t"));
        assert!(copy.is_revoked(
            &Holder {
                iss: "i",
                sub: None,
                sid: None,
                iat: None
            },
            id,
            1
        ));
    }

    #[test]
    fn lifting_removes_only_that_entry() {
        let copy = LocalCopy::default();
        let a = Entry::subject("i", "alice", 100).with_times(2000, 0, "t");
        let b = Entry::subject("i", "alice", 200).with_times(2000, 0, "t");
        copy.apply(&a);
        copy.apply(&b);
        copy.remove(&b);
        assert!(copy.is_revoked(
            &Holder {
                iss: "i",
                sub: Some("alice"),
                sid: None,
                iat: Some(100.0)
            },
            TokenId::Jti("x"),
            1
        ));
        assert!(!copy.is_revoked(
            &Holder {
                iss: "i",
                sub: Some("alice"),
                sid: None,
                iat: Some(150.0)
            },
            TokenId::Jti("x"),
            1
        ));
        copy.remove(&a);
        assert!(copy.is_empty());
    }
}

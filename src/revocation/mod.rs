//! Step 6 of the token path: is the token revoked?
//!
//! The model every store shares: an [`Entry`] revokes one token (by `jti`, or by
//! the SHA-256 of its signing input when it has none), every token of a subject issued at or
//! before a time, or every token of an issuer issued at or before a time. Each
//! entry expires when the last token it can cover has expired, and has an id
//! derived from what it revokes, so the same entry has the same id everywhere.
//!
//! The request path reads only the in-process [`LocalCopy`] — sharded maps
//! keyed by 128-bit fingerprints, no network, no global lock, no allocation. A
//! [`Store`] makes entries durable (memory: this process; Redis: every
//! replica) and keeps the local copy in step.

pub mod memory;
pub mod redis;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::token::{Reason, WholeToken};

/// What an entry revokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Jti,
    Subject,
    Issuer,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Subject => "subject",
            Kind::Issuer => "issuer",
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
    /// `Subject` and `Issuer` entries: tokens with `iat <= before` (or no `iat`) are revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Unix seconds after which no token the entry covers can still be valid.
    pub expires_at: u64,
    pub created_at: u64,
    pub created_by: String,
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

/// The stand-in written before 0.2: the SHA-256 of the whole token string,
/// which a re-encoded signature escapes. Entries of that form are still
/// honoured until they expire (they are no longer written).
pub const LEGACY_TOKEN_HASH_PREFIX: &str = "sha256:";

impl Entry {
    fn new(
        kind: Kind,
        iss: &str,
        jti: Option<String>,
        sub: Option<String>,
        before: Option<u64>,
    ) -> Entry {
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [
            kind.as_str(),
            iss,
            jti.as_deref().unwrap_or(""),
            sub.as_deref().unwrap_or(""),
        ] {
            digest.update(part.as_bytes());
            digest.update(&[0]);
        }
        digest.update(&before.unwrap_or(0).to_be_bytes());
        let prefix = match kind {
            Kind::Jti => "jti_",
            Kind::Subject => "sub_",
            Kind::Issuer => "iss_",
        };
        let id = format!(
            "{prefix}{}",
            crate::mint::b64(&digest.finish().as_ref()[..16])
        );
        Entry {
            id,
            kind,
            iss: iss.to_owned(),
            jti,
            sub,
            before,
            expires_at: 0,
            created_at: 0,
            created_by: String::new(),
        }
    }

    /// Revokes one token by its `jti`.
    pub fn jti(iss: &str, jti: &str) -> Entry {
        Entry::new(Kind::Jti, iss, Some(jti.to_owned()), None, None)
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

    /// Revokes every token of `sub` at `iss` issued at or before `before`.
    pub fn subject(iss: &str, sub: &str, before: u64) -> Entry {
        Entry::new(Kind::Subject, iss, None, Some(sub.to_owned()), Some(before))
    }

    /// Revokes every token of `iss` issued at or before `before`.
    pub fn issuer(iss: &str, before: u64) -> Entry {
        Entry::new(Kind::Issuer, iss, None, None, Some(before))
    }

    /// Sets the times; `expires_at` is clamped to [`MAX_EXPIRES_AT`].
    pub fn with_times(mut self, expires_at: u64, created_at: u64, created_by: &str) -> Entry {
        self.expires_at = expires_at.min(MAX_EXPIRES_AT);
        self.created_at = created_at;
        self.created_by = created_by.to_owned();
        self
    }

    /// Whether the id matches the content (ids travel through stores and APIs).
    pub fn id_is_consistent(&self) -> bool {
        Entry::new(
            self.kind,
            &self.iss,
            self.jti.clone(),
            self.sub.clone(),
            self.before,
        )
        .id == self.id
    }
}

/// The `jti` side of a token, as the local copy looks it up.
#[derive(Clone, Copy, Debug)]
pub enum TokenId<'a> {
    Jti(&'a str),
    /// A token without `jti`: the SHA-256 of its signing input, and of the
    /// whole token for [`LEGACY_TOKEN_HASH_PREFIX`] entries (computed only
    /// while the copy holds any).
    SigningInput {
        signing_input: &'a [u8; 32],
        token: &'a WholeToken<'a>,
    },
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
    jti: DashMap<u128, u64, Fingerprinter>,
    /// fingerprint(Subject, iss, sub) or fingerprint(Issuer, iss) → entries
    bulk: DashMap<u128, Vec<Bulk>, Fingerprinter>,
    /// Whether any entry of the legacy whole-token-hash form was applied.
    legacy_hashes: std::sync::atomic::AtomicBool,
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
        Kind::Issuer => fingerprint(Kind::Issuer, &entry.iss, &[]),
    }
}

impl Maps {
    fn apply(&self, entry: &Entry) {
        let key = key_of(entry);
        match entry.kind {
            Kind::Jti => {
                if entry
                    .jti
                    .as_deref()
                    .is_some_and(|j| j.starts_with(LEGACY_TOKEN_HASH_PREFIX))
                {
                    self.legacy_hashes
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                let mut slot = self.jti.entry(key).or_insert(0);
                *slot = (*slot).max(entry.expires_at);
            }
            Kind::Subject | Kind::Issuer => {
                let before = entry.before.unwrap_or(0);
                let mut list = self.bulk.entry(key).or_default();
                match list.iter_mut().find(|b| b.before == before) {
                    Some(b) => b.expires_at = b.expires_at.max(entry.expires_at),
                    None => list.push(Bulk {
                        before,
                        expires_at: entry.expires_at,
                    }),
                }
            }
        }
    }
}

impl LocalCopy {
    /// Adds (or extends) an entry.
    pub fn apply(&self, entry: &Entry) {
        self.maps.load().apply(entry);
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
            Kind::Subject | Kind::Issuer => {
                let before = entry.before.unwrap_or(0);
                maps.bulk.remove_if_mut(&key, |_, list| {
                    list.retain(|b| b.before != before);
                    list.is_empty()
                });
            }
        }
    }

    /// Whether a token is covered by an unexpired entry.
    pub fn is_revoked(
        &self,
        iss: &str,
        id: TokenId<'_>,
        sub: Option<&str>,
        iat: Option<f64>,
        now: u64,
    ) -> bool {
        let maps = self.maps.load();
        let revoked = |key: u128| maps.jti.get(&key).is_some_and(|exp| *exp > now);
        let jti_key = match id {
            TokenId::Jti(jti) => fingerprint(Kind::Jti, iss, &[jti.as_bytes()]),
            TokenId::SigningInput { signing_input, .. } => fingerprint(
                Kind::Jti,
                iss,
                &[SIGNING_INPUT_PREFIX.as_bytes(), &hex_lower(signing_input)],
            ),
        };
        if revoked(jti_key) {
            return true;
        }
        if let TokenId::SigningInput { token, .. } = id
            && maps
                .legacy_hashes
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            let legacy = [
                LEGACY_TOKEN_HASH_PREFIX.as_bytes(),
                &hex_lower(&token.digest().0),
            ];
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

/// Why a store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("revocation store unavailable: {0}")]
    Unavailable(String),
}

/// Health of a store, for readiness, metrics and the fail-closed rule.
#[derive(Debug, Clone, Serialize)]
pub struct StoreHealth {
    /// The store answers.
    pub up: bool,
    /// The local copy has been loaded at least once.
    pub loaded: bool,
    /// Seconds since the local copy was last known to be in sync (0: in sync).
    pub stale_seconds: u64,
    /// Full loads of the local copy so far (the first load counts).
    pub resyncs: u64,
    pub detail: Option<String>,
}

/// A durable home for entries that keeps a [`LocalCopy`] in step.
pub trait Store: Send + Sync {
    /// Stores an entry (idempotent by id) and returns it as stored, and whether it is new.
    /// Success means durably stored.
    fn put(&self, entry: Entry) -> BoxFuture<'_, Result<(Entry, bool), StoreError>>;
    /// Lifts an entry; `None` when there was none with that id.
    fn lift(&self, id: String) -> BoxFuture<'_, Result<Option<Entry>, StoreError>>;
    /// Entries ordered by id, starting after `after`.
    fn list(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Entry>, StoreError>>;
    fn health(&self) -> StoreHealth;
    /// Seconds since the local copy was last known to be in sync (0: in sync).
    /// Called on the request path when `on_stale = "fail_closed"`: must be cheap.
    fn stale_seconds(&self) -> u64 {
        0
    }
    /// Forgets entries that expired before `now`.
    fn sweep(&self, _now: u64) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The revocation facade the verifier and the APIs use.
pub struct Revocations {
    store: Arc<dyn Store>,
    copy: Arc<LocalCopy>,
    fail_closed_after: Option<u64>,
    bulk_ttl: u64,
    counters: [metrics::Counter; 3],
    size: metrics::Gauge,
    up: metrics::Gauge,
}

impl Revocations {
    /// `fail_closed_after`: with `on_stale = "fail_closed"`, the staleness in seconds
    /// past which every token is inactive.
    /// `bulk_ttl`: lifetime of subject and issuer entries for issuers without `max_lifetime_seconds`.
    pub fn new(
        store: Arc<dyn Store>,
        copy: Arc<LocalCopy>,
        fail_closed_after: Option<u64>,
        bulk_ttl: u64,
    ) -> Revocations {
        let counter =
            |kind: Kind| metrics::counter!(crate::metrics::REVOCATIONS, "kind" => kind.as_str());
        let revocations = Revocations {
            store,
            copy,
            fail_closed_after,
            bulk_ttl,
            counters: [
                counter(Kind::Jti),
                counter(Kind::Subject),
                counter(Kind::Issuer),
            ],
            size: metrics::gauge!(crate::metrics::REVOCATION_ENTRIES),
            up: metrics::gauge!(crate::metrics::REVOCATION_STORE_UP),
        };
        revocations.publish_health();
        revocations
    }

    /// An embedded memory store (dev, tests, single process); `bulk_ttl` is
    /// `revocation.bulk_entry_ttl_seconds`.
    pub fn memory(bulk_ttl: u64) -> Revocations {
        let copy = Arc::new(LocalCopy::default());
        Revocations::new(
            Arc::new(memory::MemoryStore::new(copy.clone())),
            copy,
            None,
            bulk_ttl,
        )
    }

    /// When a subject or issuer entry covering tokens issued at or before `before`
    /// may go: once every such token has expired (`before` + the issuer's maximum
    /// lifetime + leeway), or after `bulk_entry_ttl_seconds` when lifetimes are uncapped.
    pub fn bulk_expiry(&self, policy: &crate::config::IssuerConfig, before: u64, now: u64) -> u64 {
        let until = if policy.max_lifetime_seconds > 0 {
            before
                .saturating_add(policy.max_lifetime_seconds)
                .saturating_add(policy.leeway_seconds)
        } else {
            now.saturating_add(self.bulk_ttl)
        };
        until
            .max(now.saturating_add(policy.leeway_seconds.max(1)))
            .min(MAX_EXPIRES_AT)
    }

    /// The request-path check: `Err(Revoked)`, or `Err(StoreStale)` when the copy
    /// is too stale and the policy is fail-closed.
    pub fn check(
        &self,
        iss: &str,
        id: TokenId<'_>,
        sub: Option<&str>,
        iat: Option<f64>,
        now: u64,
    ) -> Result<(), Reason> {
        if self.copy.is_revoked(iss, id, sub, iat, now) {
            return Err(Reason::Revoked);
        }
        if let Some(limit) = self.fail_closed_after
            && self.store.stale_seconds() > limit
        {
            return Err(Reason::StoreStale);
        }
        Ok(())
    }

    /// Stores an entry; counts it when new.
    pub async fn revoke(&self, entry: Entry) -> Result<(Entry, bool), StoreError> {
        let (stored, new) = self.store.put(entry).await?;
        if new {
            self.counters[stored.kind as usize].increment(1);
        }
        self.size.set(self.copy.len() as f64);
        Ok((stored, new))
    }

    pub async fn lift(&self, id: String) -> Result<Option<Entry>, StoreError> {
        let lifted = self.store.lift(id).await?;
        self.size.set(self.copy.len() as f64);
        Ok(lifted)
    }

    pub async fn list(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.store.list(after, limit).await
    }

    pub fn health(&self) -> StoreHealth {
        self.store.health()
    }

    /// Whether `fail_closed` has tripped (readiness turns red).
    pub fn tripped(&self) -> bool {
        self.fail_closed_after
            .is_some_and(|limit| self.store.stale_seconds() > limit)
    }

    pub fn local_copy(&self) -> &Arc<LocalCopy> {
        &self.copy
    }

    /// Updates the store gauges; called after writes and by the sweeper.
    pub fn publish_health(&self) {
        let health = self.store.health();
        self.up.set(if health.up && health.stale_seconds == 0 {
            1.0
        } else {
            0.0
        });
        self.size.set(self.copy.len() as f64);
    }

    /// Forgets entries whose tokens have all expired.
    pub async fn sweep(&self, now: u64) {
        self.store.sweep(now).await;
        self.copy.sweep(now);
        self.publish_health();
    }

    /// Keeps the store gauges current (every second) and drops expired entries
    /// (every `sweep_every`) until `shutdown`.
    pub async fn run_upkeep(
        self: Arc<Self>,
        clock: crate::clock::Clock,
        sweep_every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
            if last_sweep.elapsed() >= sweep_every {
                last_sweep = tokio::time::Instant::now();
                self.sweep(clock()).await;
            } else {
                self.publish_health();
            }
        }
    }
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
        let mut forged = a.clone();
        forged.jti = Some("other".into());
        assert!(!forged.id_is_consistent());
    }

    #[test]
    fn each_kind_covers_what_it_should() {
        let copy = LocalCopy::default();
        let now = 1000;
        copy.apply(&Entry::jti("i", "j1").with_times(2000, now, "t"));
        copy.apply(&Entry::subject("i", "alice", 900).with_times(2000, now, "t"));
        copy.apply(&Entry::issuer("k", 500).with_times(2000, now, "t"));
        let check = |iss, jti, sub, iat| copy.is_revoked(iss, TokenId::Jti(jti), sub, iat, now);
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
        assert!(!check("k", "x", Some("anyone"), Some(501.0)));
        // expiry
        assert!(!copy.is_revoked("i", TokenId::Jti("j1"), None, None, 2000));
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
        let id = |signing_input, token| TokenId::SigningInput {
            signing_input,
            token,
        };
        assert!(copy.is_revoked("i", id(&input, &first), None, None, 1));
        assert!(
            copy.is_revoked("i", id(&input, &second), None, None, 1),
            "any signature over the same input"
        );
        let other = crate::token::sha256(b"a.x");
        let third = WholeToken::new("a.x.c");
        assert!(!copy.is_revoked("i", id(&other, &third), None, None, 1));
    }

    #[test]
    fn legacy_whole_token_hashes_still_revoke() {
        let copy = LocalCopy::default();
        let token = "a.b.c";
        let legacy = format!(
            "{LEGACY_TOKEN_HASH_PREFIX}{}",
            hex::encode(crate::token::sha256(token.as_bytes()))
        );
        let input = crate::token::sha256(b"a.b");
        let whole = WholeToken::new(token);
        let id = TokenId::SigningInput {
            signing_input: &input,
            token: &whole,
        };
        assert!(!copy.is_revoked("i", id, None, None, 1));
        copy.apply(&Entry::jti("i", &legacy).with_times(2000, 0, "t"));
        assert!(copy.is_revoked("i", id, None, None, 1));
    }

    #[test]
    fn lifting_removes_only_that_entry() {
        let copy = LocalCopy::default();
        let a = Entry::subject("i", "alice", 100).with_times(2000, 0, "t");
        let b = Entry::subject("i", "alice", 200).with_times(2000, 0, "t");
        copy.apply(&a);
        copy.apply(&b);
        copy.remove(&b);
        assert!(copy.is_revoked("i", TokenId::Jti("x"), Some("alice"), Some(100.0), 1));
        assert!(!copy.is_revoked("i", TokenId::Jti("x"), Some("alice"), Some(150.0), 1));
        copy.remove(&a);
        assert!(copy.is_empty());
    }
}

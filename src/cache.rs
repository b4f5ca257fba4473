//! After step 1 of the token path: the verified-token cache (a hit skips to
//! step 7, once its expiry and key are checked), a bounded map from a token
//! to what was learnt about it (a verified JWS, or the answer of an upstream
//! introspection).
//!
//! Indexed by a keyed 64-bit hash of the token (foldhash, a random key per
//! process), not a cryptographic one: an entry keeps the token itself, up to
//! [`KEPT_WHOLE`] bytes, and a lookup compares it byte for byte; a longer
//! token is kept and compared by its SHA-256, so that no entry's key costs
//! more than 1 KiB (an opaque token's negative answer is cached for any
//! string an attacker sends, up to `max_token_bytes`). Either way an index
//! collision can only ever miss, never return another token's claims.
//! Keeping short tokens whole saves a SHA-256 per lookup (the largest share
//! of a cached verdict's CPU before) for the token's length in memory.
//! Someone who learnt the key could make their tokens share a victim's
//! index and push its entry out (`insert` replaces): a re-verification,
//! never a verdict. A hit still checks expiry, that the key which verified
//! the token is still in its issuer's set, and revocation
//! (the verifier does those); anything doubtful falls back to full
//! verification. Lookups use `try_get`: a shard that a writer holds counts as
//! a miss, so a lookup never waits for a writer. The cache is bounded by
//! `max_entries`; when full, expired entries are pruned (at most once a
//! second) and new tokens are not added until room frees up.

use dashmap::DashMap;
use dashmap::try_result::TryResult;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The index is already a keyed hash of the token: the map uses it as it is.
type Index = crate::prehashed::BuildPrehashed;

/// Tokens up to this long are kept whole in their entry; longer ones by
/// their SHA-256.
pub const KEPT_WHOLE: usize = 1024;

/// What an entry keeps of its token to confirm a lookup.
#[derive(Clone)]
enum Kept {
    Whole(Box<str>),
    Digest(Box<[u8; 32]>),
}

/// A lookup's side of that comparison, worked out before any shard is locked.
enum Probe<'t> {
    Whole(&'t str),
    Digest([u8; 32]),
}

impl<'t> Probe<'t> {
    fn of(token: &'t str) -> Probe<'t> {
        if token.len() <= KEPT_WHOLE {
            Probe::Whole(token)
        } else {
            Probe::Digest(crate::token::sha256(token.as_bytes()))
        }
    }

    fn kept(&self) -> Kept {
        match self {
            Probe::Whole(token) => Kept::Whole((*token).into()),
            Probe::Digest(digest) => Kept::Digest(Box::new(*digest)),
        }
    }

    fn matches(&self, kept: &Kept) -> bool {
        match (self, kept) {
            (Probe::Whole(token), Kept::Whole(whole)) => **whole == **token,
            (Probe::Digest(digest), Kept::Digest(kept)) => **kept == *digest,
            _ => false,
        }
    }
}

/// The index's key, drawn once per process: every snapshot's cache shares
/// it, so a reload copies entries under the index they have (an entry kept
/// by its digest has no token left to hash again).
fn index_key() -> &'static foldhash::quality::RandomState {
    static KEY: std::sync::OnceLock<foldhash::quality::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(foldhash::quality::RandomState::default)
}

fn index(token: &str) -> u64 {
    index_key().hash_one(token.as_bytes())
}

struct Cached<T> {
    /// The token (or its SHA-256), compared on every lookup.
    token: Kept,
    value: T,
    /// Unix seconds after which the token is expired even with leeway.
    expires_at: f64,
}

pub struct TokenCache<T> {
    map: DashMap<u64, Cached<T>, Index>,
    max_entries: usize,
    last_prune: AtomicU64,
    /// Entries in `map`, kept beside it.
    count: AtomicUsize,
    metrics: CacheMetrics,
}

/// A cache's hit and miss counters and its size gauge.
pub struct CacheMetrics {
    pub hits: metrics::Counter,
    pub misses: metrics::Counter,
    pub size: metrics::Gauge,
}

impl CacheMetrics {
    /// The verified-token cache's.
    pub fn verified_tokens() -> CacheMetrics {
        CacheMetrics {
            hits: metrics::counter!(crate::metrics::CACHE_HITS),
            misses: metrics::counter!(crate::metrics::CACHE_MISSES),
            size: metrics::gauge!(crate::metrics::CACHE_ENTRIES),
        }
    }

    /// The introspection cache's (opaque tokens).
    pub fn introspected_tokens() -> CacheMetrics {
        CacheMetrics {
            hits: metrics::counter!(crate::metrics::UPSTREAM_CACHE_HITS),
            misses: metrics::counter!(crate::metrics::UPSTREAM_CACHE_MISSES),
            size: metrics::gauge!(crate::metrics::UPSTREAM_CACHE_ENTRIES),
        }
    }
}

impl<T: Clone> TokenCache<T> {
    pub fn new(max_entries: usize, metrics: CacheMetrics) -> TokenCache<T> {
        TokenCache {
            map: DashMap::default(),
            max_entries,
            last_prune: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            metrics,
        }
    }

    /// What is cached for this token, if not expired at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<T> {
        let probe = Probe::of(token);
        let found = match self.map.try_get(&index(token)) {
            TryResult::Present(entry)
                if probe.matches(&entry.token) && (now as f64) < entry.expires_at =>
            {
                Some(entry.value.clone())
            }
            _ => None,
        };
        match &found {
            Some(_) => self.metrics.hits.increment(1),
            None => self.metrics.misses.increment(1),
        }
        found
    }

    /// Caches `value` until `expires_at` (for a verified token: its `exp` plus leeway).
    pub fn insert(&self, token: &str, value: T, expires_at: f64, now: u64) {
        // A counter, not `DashMap::len()`, which locks every shard.
        if self.count.load(Ordering::Relaxed) >= self.max_entries {
            self.prune(now);
            if self.count.load(Ordering::Relaxed) >= self.max_entries {
                return;
            }
        }
        let replaced = self.map.insert(
            index(token),
            Cached {
                token: Probe::of(token).kept(),
                value,
                expires_at,
            },
        );
        if replaced.is_none() {
            let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
            self.metrics.size.set(n as f64);
        }
    }

    /// Forgets a token (its key left the set, or it was found expired).
    pub fn remove(&self, token: &str) {
        let probe = Probe::of(token);
        if self
            .map
            .remove_if(&index(token), |_, entry| probe.matches(&entry.token))
            .is_some()
        {
            // Saturating: a prune's recount may already have left it out.
            let n = self
                .count
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                })
                .map_or(0, |before| before.saturating_sub(1));
            self.metrics.size.set(n as f64);
        }
    }

    /// Drops expired entries, at most once a second.
    fn prune(&self, now: u64) {
        let last = self.last_prune.load(Ordering::Relaxed);
        if last == now
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.map.retain(|_, entry| (now as f64) < entry.expires_at);
        // Pruning is rare (at most once a second, only when full): recount.
        let n = self.map.len();
        self.count.store(n, Ordering::Relaxed);
        self.metrics.size.set(n as f64);
    }

    /// Copies `older`'s entries that `keep` accepts and that are live at
    /// `now`, up to this cache's bound. A reload builds its snapshot's cache
    /// this way: entries of unchanged issuers carry over; what the previous
    /// snapshot's last requests add afterwards stays behind (a later miss,
    /// never a verdict judged under the old configuration).
    pub fn carry_over(&self, older: &TokenCache<T>, now: u64, keep: impl Fn(&T) -> bool) {
        for entry in older.map.iter() {
            let cached = entry.value();
            if (now as f64) >= cached.expires_at || !keep(&cached.value) {
                continue;
            }
            if self.count.load(Ordering::Relaxed) >= self.max_entries {
                break;
            }
            let copy = Cached {
                token: cached.token.clone(),
                value: cached.value.clone(),
                expires_at: cached.expires_at,
            };
            if self.map.insert(*entry.key(), copy).is_none() {
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.metrics.size.set(self.len() as f64);
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(sub: &str) -> String {
        sub.to_owned()
    }

    fn cache(max_entries: usize) -> TokenCache<String> {
        TokenCache::new(max_entries, CacheMetrics::verified_tokens())
    }

    #[test]
    fn an_index_collision_never_returns_another_tokens_claims() {
        let cache = cache(10);
        cache.insert("token-a", value("alice"), 2000.0, 1000);
        assert_eq!(cache.get("token-a", 1000).unwrap().as_str(), "alice");
        // What a collision looks like: another token's index holding a's
        // entry (another token, a prefix of a, a longer one).
        for other in ["token-b", "token-", "token-aa"] {
            let a = cache.map.remove(&index("token-a")).unwrap().1;
            cache.map.insert(index(other), a);
            assert!(cache.get(other, 1000).is_none(), "{other} is not a");
            cache.remove(other);
            assert!(
                cache.map.contains_key(&index(other)),
                "removing {other} leaves a's entry alone"
            );
            let a = cache.map.remove(&index(other)).unwrap().1;
            cache.map.insert(index("token-a"), a);
        }
        assert_eq!(cache.get("token-a", 1000).unwrap().as_str(), "alice");
    }

    #[test]
    fn a_long_token_is_kept_by_its_digest_and_still_told_apart() {
        let cache = cache(10);
        let long = "a".repeat(KEPT_WHOLE + 500);
        let mut other = long.clone();
        other.replace_range(KEPT_WHOLE + 10..KEPT_WHOLE + 11, "b");
        let short = "a".repeat(KEPT_WHOLE);
        cache.insert(&long, value("long"), 2000.0, 1000);
        cache.insert(&short, value("short"), 2000.0, 1000);
        let entry = cache.map.get(&index(&long)).unwrap();
        assert!(
            matches!(entry.token, Kept::Digest(_)),
            "no entry keeps more than KEPT_WHOLE bytes of its token"
        );
        drop(entry);
        assert!(matches!(
            cache.map.get(&index(&short)).unwrap().token,
            Kept::Whole(_)
        ));
        assert_eq!(cache.get(&long, 1000).unwrap(), "long");
        assert_eq!(cache.get(&short, 1000).unwrap(), "short");
        // Another long token at the long one's index: its digest differs.
        let kept = cache.map.remove(&index(&long)).unwrap().1;
        cache.map.insert(index(&other), kept);
        assert!(cache.get(&other, 1000).is_none());
        cache.remove(&other);
        assert!(cache.map.contains_key(&index(&other)), "not other's entry");
    }

    #[test]
    fn entries_end_with_the_token_and_the_cache_stays_bounded() {
        let cache = cache(3);
        cache.insert("t1", value("a"), 1500.0, 1000);
        assert!(cache.get("t1", 1499).is_some());
        assert!(cache.get("t1", 1500).is_none(), "expired with its token");
        for i in 2..10u8 {
            cache.insert(&format!("t{i}"), value("x"), 3000.0, 1000);
            assert!(cache.len() <= 3);
        }
        // a second later the expired entry is pruned and a new token fits
        cache.insert("t42", value("y"), 3000.0, 1600);
        assert!(cache.len() <= 3);
        assert!(
            cache.get("t42", 1600).is_some(),
            "room was made by pruning the expired entry"
        );
    }

    #[test]
    fn a_carried_over_cache_keeps_only_live_accepted_entries_within_its_bound() {
        let older = cache(10);
        older.insert("t1", value("keep"), 3000.0, 1000);
        older.insert("t2", value("drop"), 3000.0, 1000);
        older.insert("t3", value("keep"), 1500.0, 1000);
        older.insert("t4", value("keep"), 3000.0, 1000);
        let newer = cache(1);
        newer.carry_over(&older, 2000, |v| v == "keep");
        assert_eq!(newer.len(), 1, "bounded by the new cache's max_entries");
        let wider = cache(10);
        wider.carry_over(&older, 2000, |v| v == "keep");
        assert_eq!(wider.len(), 2);
        assert!(wider.get("t1", 2000).is_some());
        assert!(wider.get("t2", 2000).is_none(), "refused by keep");
        assert!(wider.get("t3", 2000).is_none(), "expired");
        assert!(wider.get("t4", 2000).is_some());
    }
}

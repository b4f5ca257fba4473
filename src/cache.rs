//! After step 1 of the token path: the verified-token cache (a hit skips to
//! step 7, once its expiry and key are checked), a bounded map from a
//! token's SHA-256 to what was learnt about it (a verified JWS today; the
//! answer of an upstream introspection can be kept the same way).
//!
//! Keyed by the token's SHA-256: the map is indexed by its first 16 bytes and
//! every entry keeps the other 16, so a collision of the index can only ever
//! miss, never return another token's claims. A hit still checks expiry, that the
//! key which verified the token is still in its issuer's set, and revocation
//! (the verifier does those); anything doubtful falls back to full
//! verification. Lookups use `try_get`: a shard that a writer holds counts as
//! a miss, so a lookup never waits for a writer. The cache is bounded by
//! `max_entries`; when full, expired entries are pruned (at most once a
//! second) and new tokens are not added until room frees up.

use dashmap::DashMap;
use dashmap::try_result::TryResult;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::token::TokenDigest;

/// The index is already the first half of a SHA-256: hashing it again (with
/// the map's default SipHash) would spend time for no spread. An attacker
/// cannot aim tokens at one shard or bucket without SHA-256 preimages.
#[derive(Default)]
struct IndexHasher(u64);

impl std::hash::Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = (n >> 64) as u64;
    }
}

type Index = std::hash::BuildHasherDefault<IndexHasher>;

struct Cached<T> {
    /// The second half of the SHA-256 (the index is the first).
    tail: [u8; 16],
    value: T,
    /// Unix seconds after which the token is expired even with leeway.
    expires_at: f64,
}

pub struct TokenCache<T> {
    map: DashMap<u128, Cached<T>, Index>,
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

/// The SHA-256's first half, the map's index.
fn index(TokenDigest(hash): &TokenDigest) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(first)
}

/// The SHA-256's second half, kept in the entry.
fn tail(TokenDigest(hash): &TokenDigest) -> [u8; 16] {
    let mut second = [0u8; 16];
    second.copy_from_slice(&hash[16..]);
    second
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

    /// What is cached for this SHA-256, if not expired at `now`.
    pub fn get(&self, hash: &TokenDigest, now: u64) -> Option<T> {
        let found = match self.map.try_get(&index(hash)) {
            TryResult::Present(entry)
                if entry.tail == tail(hash) && (now as f64) < entry.expires_at =>
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
    pub fn insert(&self, hash: TokenDigest, value: T, expires_at: f64, now: u64) {
        // A counter, not `DashMap::len()`, which locks every shard.
        if self.count.load(Ordering::Relaxed) >= self.max_entries {
            self.prune(now);
            if self.count.load(Ordering::Relaxed) >= self.max_entries {
                return;
            }
        }
        let replaced = self.map.insert(
            index(&hash),
            Cached {
                tail: tail(&hash),
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
    pub fn remove(&self, hash: &TokenDigest) {
        if self
            .map
            .remove_if(&index(hash), |_, entry| entry.tail == tail(hash))
            .is_some()
        {
            let n = self.count.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
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
                tail: cached.tail,
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
        let a = TokenDigest([7u8; 32]);
        let mut b = a;
        b.0[31] = 8; // same first 16 bytes: same index, different token
        cache.insert(a, value("alice"), 2000.0, 1000);
        assert_eq!(cache.get(&a, 1000).unwrap().as_str(), "alice");
        assert!(cache.get(&b, 1000).is_none());
        cache.remove(&b);
        assert!(cache.get(&a, 1000).is_some(), "removing b leaves a alone");
    }

    #[test]
    fn entries_end_with_the_token_and_the_cache_stays_bounded() {
        let cache = cache(3);
        cache.insert(TokenDigest([1; 32]), value("a"), 1500.0, 1000);
        assert!(cache.get(&TokenDigest([1; 32]), 1499).is_some());
        assert!(
            cache.get(&TokenDigest([1; 32]), 1500).is_none(),
            "expired with its token"
        );
        for i in 2..10u8 {
            cache.insert(TokenDigest([i; 32]), value("x"), 3000.0, 1000);
            assert!(cache.len() <= 3);
        }
        // a second later the expired entry is pruned and a new token fits
        cache.insert(TokenDigest([42; 32]), value("y"), 3000.0, 1600);
        assert!(cache.len() <= 3);
        assert!(
            cache.get(&TokenDigest([42; 32]), 1600).is_some(),
            "room was made by pruning the expired entry"
        );
    }

    #[test]
    fn a_carried_over_cache_keeps_only_live_accepted_entries_within_its_bound() {
        let older = cache(10);
        older.insert(TokenDigest([1; 32]), value("keep"), 3000.0, 1000);
        older.insert(TokenDigest([2; 32]), value("drop"), 3000.0, 1000);
        older.insert(TokenDigest([3; 32]), value("keep"), 1500.0, 1000);
        older.insert(TokenDigest([4; 32]), value("keep"), 3000.0, 1000);
        let newer = cache(1);
        newer.carry_over(&older, 2000, |v| v == "keep");
        assert_eq!(newer.len(), 1, "bounded by the new cache's max_entries");
        let wider = cache(10);
        wider.carry_over(&older, 2000, |v| v == "keep");
        assert_eq!(wider.len(), 2);
        assert!(wider.get(&TokenDigest([1; 32]), 2000).is_some());
        assert!(
            wider.get(&TokenDigest([2; 32]), 2000).is_none(),
            "refused by keep"
        );
        assert!(wider.get(&TokenDigest([3; 32]), 2000).is_none(), "expired");
        assert!(wider.get(&TokenDigest([4; 32]), 2000).is_some());
    }
}

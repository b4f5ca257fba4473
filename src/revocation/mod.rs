//! Step 7 of the token path (README, "How a token is checked"): is the token revoked?
//!
//! The model every store shares is the [`Entry`] ([`entry`]).
//!
//! The request path reads only the in-process [`LocalCopy`] — sharded maps
//! keyed by 128-bit fingerprints, no network, no global lock, no allocation. A
//! [`Store`] makes entries durable (memory: this process; Redis: every
//! replica) and keeps the local copy in step.

mod entry;
mod local;
pub mod memory;
pub mod redis;

pub use entry::{
    Entry, Kind, MAX_EXPIRES_AT, SIGNING_INPUT_PREFIX, TOKEN_HASH_PREFIX, expiry_after,
};
pub use local::{Holder, LocalCopy, TokenId};

use futures_util::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;

use crate::token::Reason;

/// One audit log line (target `tokend::audit`) for an entry stored or
/// lifted: who (a caller id, or the IdP or transmitter an event came from),
/// what, when, from where.
pub fn audit(action: &str, entry: &Entry, caller: &str, from: &str) {
    tracing::info!(
        target: "tokend::audit",
        action,
        caller = %caller,
        from,
        id = %entry.id,
        kind = entry.kind.as_str(),
        iss = %entry.iss,
        jti = entry.jti.as_deref(),
        sub = entry.sub.as_deref(),
        sid = entry.sid.as_deref(),
        before = entry.before,
        expires_at = entry.expires_at,
        "revocation {action}"
    );
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

/// A durable home for entries. [`Revocations`] applies its own writes to
/// this replica's [`LocalCopy`]; a store shared by replicas brings the
/// others' writes (Redis: the feed follower).
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
    /// Remembers `id` until `until` (Unix seconds): `true` the first time,
    /// `false` while it is remembered — on every replica that shares the
    /// store. For the one-use ids of logout tokens and SETs.
    fn first_sighting(&self, id: String, until: u64) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// The revocation facade the verifier and the APIs use.
pub struct Revocations {
    store: Arc<dyn Store>,
    copy: Arc<LocalCopy>,
    fail_closed_after: Option<u64>,
    bulk_ttl: u64,
    counters: [metrics::Counter; 4],
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
            counters: Kind::ALL.map(counter),
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
            Arc::new(memory::MemoryStore::default()),
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

    /// Whether this is the first time `id` (a logout token's or a SET's
    /// `jti`, with its issuer) is seen; it is remembered until `until`.
    pub async fn first_sighting(&self, id: &str, until: u64) -> Result<bool, StoreError> {
        // Hashed: ids come from outside and become store keys.
        let key = hex::encode(crate::token::sha256(id.as_bytes()));
        self.store.first_sighting(key, until).await
    }

    /// When an entry for a token of unknown lifetime may go (an opaque
    /// token whose introspection answer had no `exp`): after
    /// `bulk_entry_ttl_seconds`, as for uncapped subject entries.
    pub fn open_ended_expiry(&self, now: u64) -> u64 {
        now.saturating_add(self.bulk_ttl).min(MAX_EXPIRES_AT)
    }

    /// The request-path check: `Err(Revoked)`, or `Err(StoreStale)` when the copy
    /// is too stale and the policy is fail-closed.
    pub fn check(&self, holder: &Holder<'_>, id: TokenId<'_>, now: u64) -> Result<(), Reason> {
        if self.copy.is_revoked(holder, id, now) {
            return Err(Reason::Revoked);
        }
        if let Some(limit) = self.fail_closed_after
            && self.store.stale_seconds() > limit
        {
            return Err(Reason::StoreStale);
        }
        Ok(())
    }

    /// Stores an entry, then applies it here at once (a store's feed brings
    /// it to every other replica); counts it when new.
    pub async fn revoke(&self, entry: Entry) -> Result<(Entry, bool), StoreError> {
        let (stored, new) = self.store.put(entry).await?;
        self.copy.apply(&stored);
        if new {
            self.counters[stored.kind as usize].increment(1);
        }
        self.size.set(self.copy.len() as f64);
        Ok((stored, new))
    }

    /// Lifts an entry from the store, then from the local copy.
    pub async fn lift(&self, id: String) -> Result<Option<Entry>, StoreError> {
        let lifted = self.store.lift(id).await?;
        if let Some(entry) = &lifted {
            self.copy.remove(entry);
        }
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

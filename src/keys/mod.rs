//! Step 4 of the token path (README, "How a token is checked"): an issuer's keys, kept fresh in the background.
//!
//! Each issuer has one [`IssuerKeys`]: an `ArcSwap<KeySet>` that readers load
//! without locking, and one refresher task that builds the next set and swaps
//! it in whole. The refresher sleeps for the server's `max-age` (clamped to the
//! issuer's bounds), wakes early when a token names an unknown `kid` (at most
//! once per `unknown_kid_refresh_seconds`, single flight) or when an admin asks,
//! and on failure keeps the last good set and backs off. Keys with validity
//! dates (X.509 certificates) bring the next load forward to just after the
//! first of them expires, and leave on time even when that load fails.

pub mod fetch;
pub mod jwk;
pub mod pem;
pub mod set;
pub mod source;
pub mod x509;

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::config::IssuerConfig;
use crate::metrics::Metrics;
use fetch::FetchError;
use set::{JwksError, KeySet};
use source::{KeySource, Loaded};

/// The longest a request waits for the refresh its unknown `kid` triggered.
pub const UNKNOWN_KID_WAIT: Duration = Duration::from_millis(500);

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("JWKS refused: {0}")]
    Jwks(#[from] JwksError),
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("HMAC secret: {0}")]
    Hmac(#[from] jwk::KeyRejected),
}

/// What `/readyz` and `/admin/issuers` show about an issuer.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub last_success: Option<SystemTime>,
    pub last_attempt: Option<SystemTime>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub refreshes: u64,
    /// Delay until the next scheduled refresh, as last computed.
    pub next_refresh: Option<Duration>,
    /// The last instant every key of the set is good ([`Loaded::valid_until`]).
    pub valid_until: Option<SystemTime>,
}

/// An issuer's place in the configuration: metric slots and the verifier's
/// tables are addressed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IssuerId(pub usize);

/// One trusted issuer: its configuration, its current keys, its refresher's state.
pub struct IssuerKeys {
    pub id: IssuerId,
    pub config: IssuerConfig,
    keys: ArcSwap<KeySet>,
    loaded: std::sync::atomic::AtomicBool,
    status: Mutex<Status>,
    wake: Notify,
    /// Count of finished refresh attempts; waiters watch it change.
    attempts: watch::Sender<u64>,
    /// Milliseconds since `epoch` of the last unknown-kid refresh (0: never).
    last_kid_refresh_ms: AtomicU64,
    /// The attempt count at which that refresh will have finished.
    kid_refresh_target: AtomicU64,
    /// Count of refresh attempts started (`attempts` counts those finished).
    loads_started: AtomicU64,
    epoch: Instant,
    source: Box<dyn KeySource>,
    metrics: Arc<Metrics>,
    /// Cancelled when a reload drops this issuer: its refresher stops.
    pub retired: tokio_util::sync::CancellationToken,
}

impl IssuerKeys {
    pub fn new(
        id: IssuerId,
        config: IssuerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<IssuerKeys, RefreshError> {
        let source = source::from_config(&config)?;
        Ok(IssuerKeys {
            id,
            config,
            keys: ArcSwap::from_pointee(KeySet::default()),
            loaded: false.into(),
            status: Mutex::new(Status::default()),
            wake: Notify::new(),
            attempts: watch::channel(0).0,
            last_kid_refresh_ms: AtomicU64::new(0),
            kid_refresh_target: AtomicU64::new(0),
            loads_started: AtomicU64::new(0),
            epoch: Instant::now(),
            source,
            metrics,
            retired: Default::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the keys come from config or a file (no network to wait for).
    pub fn is_local(&self) -> bool {
        !self.source.is_remote()
    }

    /// The current key set: a lock-free load.
    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Whether a usable key set has been loaded at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Fetches (or reads) the key set now and swaps it in on success.
    /// Returns how long to wait before the next scheduled refresh.
    pub async fn refresh_now(&self) -> Result<Duration, RefreshError> {
        self.loads_started.fetch_add(1, Ordering::AcqRel);
        let started = std::time::Instant::now();
        let result = self.source.load().await;
        self.metrics
            .jwks_fetch_seconds(self.id.0, started.elapsed());
        let now = SystemTime::now();
        let outcome = match result {
            Ok(Loaded {
                set,
                max_age,
                valid_until,
            }) => {
                for (kid, why) in &set.rejected {
                    tracing::warn!(issuer = %self.config.name, kid = ?kid, %why, "key left out of the key set");
                }
                for kid in set.ambiguous_kids() {
                    tracing::warn!(issuer = %self.config.name, kid, "kid names more than one key; tokens using it are inactive");
                }
                tracing::info!(issuer = %self.config.name, keys = set.keys().len(), "key set loaded");
                self.metrics.key_set_loaded(self.id.0, set.keys().len());
                self.keys.store(Arc::new(set));
                self.loaded.store(true, Ordering::Release);
                if let Ok(mut s) = self.status.lock() {
                    s.last_success = Some(now);
                    s.last_attempt = Some(now);
                    s.last_error = None;
                    s.consecutive_failures = 0;
                    s.refreshes += 1;
                    s.valid_until = valid_until;
                }
                self.metrics.jwks_refresh(self.id.0, true);
                let next = self.before_expiry(next_refresh(&self.config, max_age));
                if let Ok(mut s) = self.status.lock() {
                    s.next_refresh = Some(next);
                }
                Ok(next)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.name, error = %e, "key refresh failed; last good keys keep serving");
                if let Ok(mut s) = self.status.lock() {
                    s.last_attempt = Some(now);
                    s.last_error = Some(e.to_string());
                    s.consecutive_failures += 1;
                }
                self.metrics.jwks_refresh(self.id.0, false);
                self.drop_expired_keys();
                Err(e)
            }
        };
        self.attempts.send_modify(|n| *n += 1);
        outcome
    }

    /// Called by a request whose `kid` is unknown. Triggers one refresh unless one
    /// ran within `unknown_kid_refresh_seconds`, and waits (bounded) for it. Returns
    /// whether a refresh finished, i.e. whether looking again can help.
    pub async fn refresh_for_unknown_kid(&self, kid: Option<&str>) -> bool {
        if !self.source.want(kid) {
            return false;
        }
        let mut attempts = self.attempts.subscribe();
        // The load that sees this request's `kid` is one that starts after
        // `want`: it has finished when the finished count passes the count
        // started now (loads run one at a time).
        let after_want = self.loads_started.load(Ordering::Acquire) + 1;
        let now_ms = (self.epoch.elapsed().as_millis() as u64).max(1);
        let interval_ms = self.config.unknown_kid_refresh_seconds.saturating_mul(1000);
        let last = self.last_kid_refresh_ms.load(Ordering::Acquire);
        let triggered = (last == 0 || now_ms >= last.saturating_add(interval_ms))
            && self
                .last_kid_refresh_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        let target = if triggered {
            let target = after_want;
            self.kid_refresh_target.store(target, Ordering::Release);
            tracing::debug!(issuer = %self.config.name, "unknown kid: refreshing keys");
            self.wake.notify_one();
            target
        } else {
            // Single flight: a request that comes while the refresh another
            // one triggered is running waits for it too, and looks again.
            let target = self.kid_refresh_target.load(Ordering::Acquire);
            if *attempts.borrow() >= target {
                return false;
            }
            target
        };
        matches!(
            tokio::time::timeout(UNKNOWN_KID_WAIT, attempts.wait_for(|n| *n >= target)).await,
            Ok(Ok(_))
        )
    }

    /// Asks the refresher to run now (admin API) and waits for it, bounded by the fetch deadline.
    pub async fn request_refresh(&self) -> Result<(), String> {
        let mut attempts = self.attempts.subscribe();
        self.wake.notify_one();
        let deadline = Duration::from_secs(self.config.fetch_timeout_seconds * 3 + 1);
        match tokio::time::timeout(deadline, attempts.changed()).await {
            Ok(Ok(())) => match self.status().last_error {
                None => Ok(()),
                Some(e) => Err(e),
            },
            _ => Err("refresh did not finish in time".into()),
        }
    }

    /// The refresher task: runs until `shutdown` fires.
    pub async fn run_refresher(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let delay = match self.refresh_now().await {
                Ok(delay) => delay,
                Err(_) => self.backoff(),
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return,
                _ = self.retired.cancelled() => return,
            }
        }
    }

    /// After a failure: 1 s, 2 s, 4 s … up to `min_refresh_seconds`.
    fn backoff(&self) -> Duration {
        let failures = self.status().consecutive_failures.clamp(1, 16);
        let delay = self.before_expiry(Duration::from_secs(
            (1u64 << (failures - 1)).min(self.config.min_refresh_seconds),
        ));
        if let Ok(mut s) = self.status.lock() {
            s.next_refresh = Some(delay);
        }
        delay
    }
}

impl IssuerKeys {
    /// `delay`, cut short so the next load comes a second after the set's
    /// first key expires (dates are read to the second).
    fn before_expiry(&self, delay: Duration) -> Duration {
        let Some(until) = self.status().valid_until else {
            return delay;
        };
        let left = until.duration_since(SystemTime::now()).unwrap_or_default();
        delay.min(left + Duration::from_secs(1))
    }

    /// After a failed load past the set's `valid_until`: the source's last
    /// document judged again now, so an expired key leaves on time even
    /// while its server fails (the cache serves a verdict only while its
    /// key is in the set, so cached verdicts go with it).
    fn drop_expired_keys(&self) {
        let expired = self
            .status()
            .valid_until
            .is_some_and(|until| SystemTime::now() > until);
        let Some(Loaded {
            set, valid_until, ..
        }) = expired.then(|| self.source.reread()).flatten()
        else {
            return;
        };
        tracing::warn!(issuer = %self.config.name, keys = set.keys().len(), "keys past their validity dates left out while the key server fails");
        self.metrics.key_set_loaded(self.id.0, set.keys().len());
        self.keys.store(Arc::new(set));
        if let Ok(mut s) = self.status.lock() {
            s.valid_until = valid_until;
        }
    }
}

/// The server's `max-age` (or the configured default) clamped into the issuer's bounds.
pub fn next_refresh(config: &IssuerConfig, max_age: Option<Duration>) -> Duration {
    let secs = max_age.map_or(config.refresh_seconds, |d| d.as_secs());
    Duration::from_secs(secs.clamp(config.min_refresh_seconds, config.max_refresh_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn issuer() -> IssuerConfig {
        let text = "[[issuers]]\nname = \"a\"\nissuer = \"https://a\"\njwks_uri = \"https://a/k\"\nmin_refresh_seconds = 60\nmax_refresh_seconds = 3600\nrefresh_seconds = 300\n";
        Config::from_toml(text, Vec::new())
            .unwrap()
            .issuers
            .remove(0)
    }

    #[test]
    fn refresh_schedule_honours_max_age_within_bounds() {
        let c = issuer();
        assert_eq!(next_refresh(&c, None), Duration::from_secs(300));
        assert_eq!(
            next_refresh(&c, Some(Duration::from_secs(900))),
            Duration::from_secs(900)
        );
        assert_eq!(
            next_refresh(&c, Some(Duration::from_secs(5))),
            Duration::from_secs(60)
        );
        assert_eq!(
            next_refresh(&c, Some(Duration::ZERO)),
            Duration::from_secs(60)
        );
        assert_eq!(
            next_refresh(&c, Some(Duration::from_secs(999_999))),
            Duration::from_secs(3600)
        );
    }
}

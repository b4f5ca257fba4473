//! `[revocation]`: which store keeps the revocation list, and what a replica
//! does when its copy goes stale.

use serde::Deserialize;

/// Where revocations are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// In this process only: lost on restart, not shared between replicas.
    #[default]
    Memory,
    /// Redis: shared by every replica, each following its change feed.
    Redis,
}

/// What a replica does when its copy of the list falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStale {
    /// Keep answering from the copy; readiness says degraded.
    #[default]
    Serve,
    /// Every token is inactive until the copy is back in sync.
    FailClosed,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationConfig {
    pub backend: Backend,
    pub redis_url: String,
    pub redis_cluster_urls: Vec<String>,
    pub key_prefix: String,
    pub max_staleness_seconds: u64,
    pub on_stale: OnStale,
    pub bulk_entry_ttl_seconds: u64,
    /// Records the Redis change feed keeps; a replica away for longer resyncs fully.
    pub feed_max_len: usize,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            backend: Backend::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster_urls: Vec::new(),
            key_prefix: "tokend:".into(),
            max_staleness_seconds: 30,
            on_stale: OnStale::Serve,
            bulk_entry_ttl_seconds: 2_592_000,
            feed_max_len: 100_000,
        }
    }
}

/// Checks `[revocation]`.
pub(super) fn validate(r: &RevocationConfig, errors: &mut Vec<String>) {
    if r.backend == Backend::Redis && r.redis_cluster_urls.is_empty() {
        check_redis_url(errors, "revocation.redis_url", &r.redis_url);
    }
    for (i, url) in r.redis_cluster_urls.iter().enumerate() {
        check_redis_url(errors, &format!("revocation.redis_cluster_urls[{i}]"), url);
    }
}

fn check_redis_url(errors: &mut Vec<String>, key: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") => {}
        _ => errors.push(format!(
            "{key}: {value:?} is not a redis:// or rediss:// URL"
        )),
    }
}

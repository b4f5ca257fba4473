//! `[cache]`: the verified-token cache.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_entries: 100_000,
        }
    }
}

/// Checks `[cache]`.
pub(super) fn validate(cache: &CacheConfig, errors: &mut Vec<String>) {
    if cache.max_entries == 0 && cache.enabled {
        errors.push("cache.max_entries: must be at least 1 when the cache is enabled".into());
    }
}

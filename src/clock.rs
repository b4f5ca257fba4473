//! The service's notion of now: Unix seconds behind a function, so tests and
//! benches control time. Below every layer that asks for it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds, injectable so tests control time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

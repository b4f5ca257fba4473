//! What every handler shares: the configuration snapshot and the state that
//! outlives snapshots (revocations, metrics, the clock).

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::revocation::Revocations;
use crate::runtime::Runtime;

/// What every handler shares: the configuration snapshot (loaded once per
/// request), and the state that outlives snapshots.
pub struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub revocations: Arc<Revocations>,
    pub metrics: Arc<Metrics>,
    pub prometheus: PrometheusHandle,
    pub clock: Clock,
    /// Largest accepted request body.
    pub max_body: usize,
    pub max_token_bytes: usize,
    /// Most tokens in one gRPC batch.
    pub max_batch: usize,
    /// `IntrospectBatch` calls decoded at once.
    pub max_concurrent_batches: usize,
}

pub type AppState = Arc<Shared>;

impl Shared {
    /// The current configuration snapshot: a lock-free load.
    pub fn runtime(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.runtime.load()
    }
}

//! Reload without restart (SPEC, "Operations"): on SIGHUP, or when the
//! config file's content changes under `serve --watch-config`, the file is
//! read again (with the same `TOKEND__…` overlay) and, if it validates, the
//! next [`Runtime`] is built beside the running one and swapped in whole.
//! Requests in flight finish on the snapshot they loaded; new ones see the
//! next. Unchanged issuers keep their key sets, refreshers and cached
//! verdicts; new issuers get their first keys before the swap, so a reload
//! never opens a gap for tokens of a still-published key. A file that fails
//! validation changes nothing and every error is logged with its key path.
//! `[server]` and `[revocation]` are fixed at start: a difference is logged
//! as needing a restart and the running values stay.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigErrors};
use crate::keys::IssuerKeys;
use crate::metrics::{CONFIG_LAST_RELOAD, CONFIG_LAST_RELOAD_OK, CONFIG_RELOADS};
use crate::runtime::{BuildError, Built, Fresh, Runtime};
use crate::state::AppState;

/// How often `--watch-config` reads the file.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a reload waits for the first key sets of new issuers.
const FIRST_KEYS_WAIT: Duration = Duration::from_secs(10);

/// Why a reload kept the running configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{} configuration error(s)", .0.0.len())]
    Invalid(ConfigErrors),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// What a reload changed, by issuer name, and what it could not.
#[derive(Debug, Default)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Settings that differ from the running ones but take a restart.
    pub needs_restart: Vec<&'static str>,
}

/// Reloads one config file into a running tokend, one reload at a time.
pub struct Reloader {
    path: PathBuf,
    state: AppState,
    shutdown: CancellationToken,
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(path: PathBuf, state: AppState, shutdown: CancellationToken) -> Reloader {
        Reloader {
            path,
            state,
            shutdown,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads the file and, if it is valid, swaps in the snapshot built from it.
    /// Counted and logged either way.
    pub async fn reload(&self, reason: &str) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.busy.lock().await;
        let result = self.swap().await;
        match &result {
            Ok(done) => {
                metrics::counter!(CONFIG_RELOADS, "result" => "ok").increment(1);
                loaded_now();
                tracing::info!(
                    reason,
                    file = %self.path.display(),
                    added = ?done.added,
                    changed = ?done.changed,
                    removed = ?done.removed,
                    "configuration reloaded"
                );
                for setting in &done.needs_restart {
                    tracing::warn!(
                        setting,
                        "changed in the file; takes effect after a restart, the running value stays"
                    );
                }
            }
            Err(e) => {
                metrics::counter!(CONFIG_RELOADS, "result" => "error").increment(1);
                metrics::gauge!(CONFIG_LAST_RELOAD_OK).set(0.0);
                if let ReloadError::Invalid(errors) = e {
                    for error in &errors.0 {
                        tracing::error!(file = %self.path.display(), error = %error, "configuration error");
                    }
                }
                tracing::error!(reason, file = %self.path.display(), error = %e, "configuration reload refused; the running configuration stays");
            }
        }
        result
    }

    async fn swap(&self) -> Result<Reloaded, ReloadError> {
        let mut config = Config::load(&self.path).map_err(ReloadError::Invalid)?;
        let running = self.state.runtime.load_full();
        let needs_restart = restart_only(&running.config, &config);
        config.server = running.config.server.clone();
        config.revocation = running.config.revocation.clone();
        let Built { runtime, fresh } =
            Runtime::build(config, Some(&running), &self.state.revocations)?;
        start_background(&fresh, &self.state, &self.shutdown, FirstKeys::All).await;
        runtime
            .verifier
            .carry_over(&running.verifier, (self.state.clock)());
        let done = Reloaded {
            needs_restart,
            ..changes(&running, &runtime, &fresh)
        };
        let next = Arc::new(runtime);
        self.state.runtime.store(next.clone());
        running.retire_absent_from(&next);
        Ok(done)
    }
}

/// Which new key sets are loaded before a snapshot goes live.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FirstKeys {
    /// Keys in config or on disk (at start: remote ones come with readiness).
    Local,
    /// Every one, remote included, within [`FIRST_KEYS_WAIT`] (a reload:
    /// the issuers are already serving).
    All,
}

/// Starts what is new in a snapshot: the key refreshers of its new issuers
/// and transmitter key sets (after their first keys, as `first` says) and
/// the pollers of its new transmitters. Each stops on shutdown or when a
/// later reload retires it.
pub async fn start_background(
    fresh: &Fresh,
    state: &AppState,
    shutdown: &CancellationToken,
    first: FirstKeys,
) {
    let first_keys = fresh
        .issuers
        .iter()
        .filter(|issuer| first == FirstKeys::All || issuer.is_local())
        .map(|issuer| first_load(issuer));
    let _ = tokio::time::timeout(FIRST_KEYS_WAIT, futures_util::future::join_all(first_keys)).await;
    for issuer in &fresh.issuers {
        tokio::spawn(issuer.clone().run_refresher(shutdown.child_token()));
    }
    for transmitter in &fresh.transmitters {
        if !transmitter.config.poll_endpoint.is_empty() {
            tokio::spawn(crate::events::poll::run(
                transmitter.clone(),
                state.revocations.clone(),
                state.clock.clone(),
                state.max_token_bytes,
                shutdown.child_token(),
            ));
        }
    }
}

async fn first_load(issuer: &IssuerKeys) {
    if let Err(e) = issuer.refresh_now().await {
        tracing::warn!(issuer = %issuer.name(), error = %e, "first key set not loaded; retrying in the background");
    }
}

/// Records a configuration loaded now (at start or by a reload).
pub fn loaded_now() {
    metrics::gauge!(CONFIG_LAST_RELOAD_OK).set(1.0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    metrics::gauge!(CONFIG_LAST_RELOAD).set(now.as_secs_f64());
}

/// The restart-only settings in which `next` differs from `running`.
fn restart_only(running: &Config, next: &Config) -> Vec<&'static str> {
    let (a, b) = (&running.server, &next.server);
    let mut differ = Vec::new();
    for (name, same) in [
        ("server.http_addr", a.http_addr == b.http_addr),
        ("server.grpc_addr", a.grpc_addr == b.grpc_addr),
        ("server.metrics_addr", a.metrics_addr == b.metrics_addr),
        ("server.tls", a.tls == b.tls),
    ] {
        if !same {
            differ.push(name);
        }
    }
    let rest = |s: &crate::config::ServerConfig| crate::config::ServerConfig {
        http_addr: String::new(),
        grpc_addr: String::new(),
        metrics_addr: String::new(),
        tls: None,
        ..s.clone()
    };
    if rest(a) != rest(b) {
        differ.push("server (limits and timeouts)");
    }
    if running.revocation != next.revocation {
        differ.push("revocation");
    }
    differ
}

/// Issuers added, changed (rebuilt) and removed, by name.
fn changes(running: &Runtime, next: &Runtime, fresh: &Fresh) -> Reloaded {
    let names =
        |r: &Runtime| -> Vec<String> { r.issuers.iter().map(|i| i.name().to_owned()).collect() };
    let (before, after) = (names(running), names(next));
    let rebuilt = |name: &String| fresh.issuers.iter().any(|i| i.name() == name);
    Reloaded {
        added: after
            .iter()
            .filter(|n| !before.contains(n))
            .cloned()
            .collect(),
        changed: after
            .iter()
            .filter(|n| before.contains(n) && rebuilt(n))
            .cloned()
            .collect(),
        removed: before
            .iter()
            .filter(|n| !after.contains(n))
            .cloned()
            .collect(),
        needs_restart: Vec::new(),
    }
}

/// Reloads on SIGHUP and, with `watch_file`, when the file's content
/// changes (read every [`WATCH_INTERVAL`]: a Kubernetes ConfigMap volume
/// swaps a symlink, which a content check sees and a watch on the file may not).
pub async fn watch(reloader: Arc<Reloader>, watch_file: bool, shutdown: CancellationToken) {
    let read = || std::fs::read(&reloader.path).ok();
    let mut seen = read();
    let mut hangups = crate::signals::Hangups::new();
    loop {
        let poll = async {
            if watch_file {
                tokio::time::sleep(WATCH_INTERVAL).await
            } else {
                std::future::pending().await
            }
        };
        let reason = tokio::select! {
            _ = poll => {
                let now = read();
                if now == seen { continue; }
                // Let a writer finish before reading it whole.
                tokio::time::sleep(Duration::from_millis(200)).await;
                "config file changed"
            }
            _ = hangups.next() => "SIGHUP",
            _ = shutdown.cancelled() => return,
        };
        seen = read();
        let _ = reloader.reload(reason).await;
    }
}

//! One configuration snapshot: the validated [`Config`] and everything built
//! from it (issuers with their key sets, callers, the verifier's tables),
//! immutable, behind one `ArcSwap` in the app state. A request loads it once
//! and uses it to the end. [`Runtime::build`] takes the running snapshot, so a
//! reload can build the next one beside it and keep the issuers (key sets and
//! refreshers) whose configuration did not change.

use std::sync::Arc;

use crate::assertion::Assertions;
use crate::authz::Policy;
use crate::callers::Clients;
use crate::config::Config;
use crate::events::ssf::Transmitter;
use crate::keys::{IssuerId, IssuerKeys, RefreshError};
use crate::metrics::Metrics;
use crate::revocation::Revocations;
use crate::verify::Verifier;

pub struct Runtime {
    pub config: Config,
    /// The handles labelled by issuer (their slots follow `issuers`).
    pub metrics: Arc<Metrics>,
    pub issuers: Vec<Arc<IssuerKeys>>,
    pub clients: Clients,
    pub verifier: Arc<Verifier>,
    pub policy: Policy,
    pub assertions: Assertions,
    /// Shared Signals transmitters, with their key sets.
    pub transmitters: Vec<Arc<Transmitter>>,
}

/// A snapshot, and what is new in it.
pub struct Built {
    pub runtime: Runtime,
    pub fresh: Fresh,
}

/// What a snapshot does not share with the one before: issuers (and
/// transmitter key sets) whose refreshers must be started, transmitters
/// whose pollers must be.
#[derive(Default)]
pub struct Fresh {
    pub issuers: Vec<Arc<IssuerKeys>>,
    pub transmitters: Vec<Arc<Transmitter>>,
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("issuer {0}: {1}")]
    Issuer(String, RefreshError),
    #[error("{0}")]
    Assertion(String),
    #[error("introspection client: {0}")]
    Introspection(String),
    #[error("decryption keys: {0}")]
    Decryption(String),
}

impl Runtime {
    pub fn build(
        config: Config,
        previous: Option<&Runtime>,
        revocations: &Arc<Revocations>,
    ) -> Result<Built, BuildError> {
        // Issuers, then SSF transmitters (whose key sets refresh like issuers').
        let names = metric_names(&config);
        let metrics = match previous {
            Some(p) if metric_names(&p.config) == names => p.metrics.clone(),
            _ => Arc::new(Metrics::new(&names)),
        };
        let metrics = &metrics;
        let mut issuers = Vec::with_capacity(config.issuers.len());
        let mut new_issuers = Vec::new();
        for (index, issuer) in config.issuers.iter().enumerate() {
            let id = IssuerId(index);
            let unchanged = previous
                .and_then(|p| p.issuers.get(index))
                .filter(|keys| keys.config == *issuer);
            let keys = match unchanged {
                Some(keys) => keys.clone(),
                None => {
                    let keys = IssuerKeys::new(id, issuer.clone(), metrics.clone())
                        .map_err(|e| BuildError::Issuer(issuer.name.clone(), e))?;
                    let keys = Arc::new(keys);
                    new_issuers.push(keys.clone());
                    keys
                }
            };
            issuers.push(keys);
        }
        let mut verifier = Verifier::new(
            issuers.clone(),
            config.server.max_token_bytes,
            metrics.clone(),
            revocations.clone(),
        );
        if config.cache.enabled {
            verifier = verifier.with_cache(config.cache.max_entries);
        }
        let verifier = verifier
            .with_introspection(config.cache.max_entries)
            .map_err(|e| BuildError::Introspection(e.to_string()))?
            .with_decryption()
            .map_err(BuildError::Decryption)?;
        let mut fresh = Fresh {
            issuers: new_issuers,
            transmitters: Vec::new(),
        };
        let transmitters = build_transmitters(&config, previous, &issuers, metrics, &mut fresh)?;
        let clients = Clients::new(&config.clients);
        let policy = Policy::new(&config, |name| {
            issuers.iter().find(|i| i.config.name == name).map(|i| i.id)
        });
        let assertions = Assertions::new(&config.assertion, previous.map(|p| &p.assertions))
            .map_err(BuildError::Assertion)?;
        Ok(Built {
            runtime: Runtime {
                config,
                metrics: metrics.clone(),
                issuers,
                clients,
                verifier: Arc::new(verifier),
                policy,
                assertions,
                transmitters,
            },
            fresh,
        })
    }

    /// Stops the background work of what `next` no longer has: refreshers of
    /// dropped or changed issuers and transmitter key sets, pollers of
    /// dropped or changed transmitters.
    pub fn retire_absent_from(&self, next: &Runtime) {
        let key_sets = |r: &Runtime| -> Vec<Arc<IssuerKeys>> {
            let transmitter_keys = r.transmitters.iter().map(|t| t.keys.clone());
            r.issuers.iter().cloned().chain(transmitter_keys).collect()
        };
        let kept = key_sets(next);
        for keys in key_sets(self) {
            if !kept.iter().any(|k| Arc::ptr_eq(k, &keys)) {
                keys.retired.cancel();
            }
        }
        for t in &self.transmitters {
            if !next.transmitters.iter().any(|n| Arc::ptr_eq(n, t)) {
                t.retired.cancel();
            }
        }
    }

    /// The transmitter whose push `Authorization` header is this one
    /// (compared in constant time).
    pub fn transmitter_by_authorization(&self, header: &[u8]) -> Option<&Arc<Transmitter>> {
        self.transmitters.iter().find(|t| {
            t.config
                .push_authorization
                .as_ref()
                .is_some_and(|secret| crate::callers::same_secret(&secret.0, header))
        })
    }

    pub fn issuer(&self, id: IssuerId) -> &Arc<IssuerKeys> {
        &self.issuers[id.0]
    }

    pub fn issuer_by_name(&self, name: &str) -> Option<Arc<IssuerKeys>> {
        self.issuers.iter().find(|i| i.config.name == name).cloned()
    }
}

/// The metric label of every key set: issuers, then SSF transmitters.
fn metric_names(config: &Config) -> Vec<String> {
    let issuers = config.issuers.iter().map(|i| i.name.clone());
    issuers
        .chain(config.ssf_transmitters.iter().map(|t| t.name.clone()))
        .collect()
}

/// The transmitters, their key sets numbered after the issuers' (so their
/// refreshes have metric slots of their own). Across a rebuild an unchanged
/// key set is kept, and an unchanged transmitter (its configuration, key set
/// and issuers) is kept whole, poller and all; what is new goes in `fresh`.
fn build_transmitters(
    config: &Config,
    previous: Option<&Runtime>,
    issuers: &[Arc<IssuerKeys>],
    metrics: &Arc<Metrics>,
    fresh: &mut Fresh,
) -> Result<Vec<Arc<Transmitter>>, BuildError> {
    let mut transmitters = Vec::with_capacity(config.ssf_transmitters.len());
    for (index, t) in config.ssf_transmitters.iter().enumerate() {
        let Some(key_config) = t.keys.as_deref() else {
            continue;
        };
        let id = IssuerId(issuers.len() + index);
        let running = previous.and_then(|p| p.transmitters.get(index));
        let unchanged = running
            .filter(|running| running.keys.config == *key_config && running.keys.id == id)
            .map(|running| running.keys.clone());
        let keys = match unchanged {
            Some(keys) => keys,
            None => {
                let keys = IssuerKeys::new(id, key_config.clone(), metrics.clone())
                    .map_err(|e| BuildError::Issuer(t.name.clone(), e))?;
                let keys = Arc::new(keys);
                fresh.issuers.push(keys.clone());
                keys
            }
        };
        let applies_to: Vec<Arc<IssuerKeys>> = issuers
            .iter()
            .filter(|i| t.applies_to.contains(&i.config.name))
            .cloned()
            .collect();
        let same = |running: &&Arc<Transmitter>| {
            running.config == *t
                && Arc::ptr_eq(&running.keys, &keys)
                && running.applies_to.len() == applies_to.len()
                && running
                    .applies_to
                    .iter()
                    .zip(&applies_to)
                    .all(|(a, b)| Arc::ptr_eq(a, b))
        };
        match running.filter(same) {
            Some(running) => transmitters.push(running.clone()),
            None => {
                let transmitter = Arc::new(Transmitter {
                    config: t.clone(),
                    keys,
                    applies_to,
                    retired: Default::default(),
                });
                fresh.transmitters.push(transmitter.clone());
                transmitters.push(transmitter);
            }
        }
    }
    Ok(transmitters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(second_leeway: u64) -> Config {
        let text = format!(
            "[[issuers]]\nname = \"a\"\nissuer = \"https://a\"\njwks_uri = \"https://a/k\"\n\
             [[issuers]]\nname = \"b\"\nissuer = \"https://b\"\njwks_uri = \"https://b/k\"\nleeway_seconds = {second_leeway}\n"
        );
        Config::from_toml(&text, Vec::new()).unwrap()
    }

    /// The next snapshot keeps the issuers whose configuration is unchanged
    /// (their key sets and refreshers) and builds only the others.
    #[test]
    fn a_rebuilt_snapshot_keeps_unchanged_issuers() {
        let revocations = Arc::new(Revocations::memory(60));
        let first = Runtime::build(config(30), None, &revocations).unwrap();
        assert_eq!(first.fresh.issuers.len(), 2);
        let same = Runtime::build(config(30), Some(&first.runtime), &revocations).unwrap();
        assert!(same.fresh.issuers.is_empty());
        let next = Runtime::build(config(5), Some(&first.runtime), &revocations).unwrap();
        assert!(Arc::ptr_eq(
            &next.runtime.issuers[0],
            &first.runtime.issuers[0]
        ));
        assert!(!Arc::ptr_eq(
            &next.runtime.issuers[1],
            &first.runtime.issuers[1]
        ));
        assert_eq!(next.fresh.issuers.len(), 1);
        assert_eq!(next.runtime.issuers[1].config.leeway_seconds, 5);
        // The changed issuer's refresher is told to stop; the kept one's is not.
        first.runtime.retire_absent_from(&next.runtime);
        assert!(first.runtime.issuers[1].retired.is_cancelled());
        assert!(!first.runtime.issuers[0].retired.is_cancelled());
    }

    fn with_transmitter(audience: &str) -> Config {
        let text = format!(
            "[[issuers]]\nname = \"a\"\nissuer = \"https://a\"\njwks_uri = \"https://a/k\"\n\
             [[ssf_transmitters]]\nname = \"t\"\nissuer = \"https://t\"\njwks_uri = \"https://t/k\"\n\
             audience = \"{audience}\"\nauthorization = \"Bearer 0123456789abcdef\"\napplies_to = [\"a\"]\n"
        );
        Config::from_toml(&text, Vec::new()).unwrap()
    }

    /// An unchanged transmitter is kept whole (its poller goes on); a
    /// changed one is new, and the old one is told to stop.
    #[test]
    fn a_rebuilt_snapshot_keeps_an_unchanged_transmitter_and_retires_a_changed_one() {
        let revocations = Arc::new(Revocations::memory(60));
        let first = Runtime::build(with_transmitter("x"), None, &revocations).unwrap();
        assert_eq!(first.fresh.transmitters.len(), 1);
        let same =
            Runtime::build(with_transmitter("x"), Some(&first.runtime), &revocations).unwrap();
        assert!(same.fresh.transmitters.is_empty() && same.fresh.issuers.is_empty());
        assert!(Arc::ptr_eq(
            &same.runtime.transmitters[0],
            &first.runtime.transmitters[0]
        ));
        let next =
            Runtime::build(with_transmitter("y"), Some(&first.runtime), &revocations).unwrap();
        assert_eq!(next.fresh.transmitters.len(), 1);
        assert!(
            Arc::ptr_eq(
                &next.runtime.transmitters[0].keys,
                &first.runtime.transmitters[0].keys
            ),
            "its key set is unchanged and kept"
        );
        first.runtime.retire_absent_from(&next.runtime);
        assert!(first.runtime.transmitters[0].retired.is_cancelled());
        assert!(!first.runtime.transmitters[0].keys.retired.is_cancelled());
    }
}

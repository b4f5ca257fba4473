//! The embedded store: entries live in this process only (dev and tests).
//! Writing an entry applies it to the local copy at once, so it is "stored"
//! the moment `put` returns.

use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Entry, LocalCopy, Store, StoreError, StoreHealth};

pub struct MemoryStore {
    /// Admin operations only (never the request path): a plain mutex is enough.
    entries: Mutex<BTreeMap<String, Entry>>,
    copy: Arc<LocalCopy>,
}

impl MemoryStore {
    pub fn new(copy: Arc<LocalCopy>) -> MemoryStore {
        MemoryStore {
            entries: Mutex::new(BTreeMap::new()),
            copy,
        }
    }

    fn locked(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Entry>>, StoreError> {
        self.entries
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store poisoned".into()))
    }
}

impl Store for MemoryStore {
    fn put(&self, entry: Entry) -> BoxFuture<'_, Result<(Entry, bool), StoreError>> {
        Box::pin(async move {
            let mut entries = self.locked()?;
            let (stored, new) = match entries.get_mut(&entry.id) {
                Some(existing) => {
                    existing.expires_at = existing.expires_at.max(entry.expires_at);
                    (existing.clone(), false)
                }
                None => {
                    entries.insert(entry.id.clone(), entry.clone());
                    (entry, true)
                }
            };
            self.copy.apply(&stored);
            Ok((stored, new))
        })
    }

    fn lift(&self, id: String) -> BoxFuture<'_, Result<Option<Entry>, StoreError>> {
        Box::pin(async move {
            let removed = self.locked()?.remove(&id);
            if let Some(entry) = &removed {
                self.copy.remove(entry);
            }
            Ok(removed)
        })
    }

    fn list(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Entry>, StoreError>> {
        Box::pin(async move {
            let entries = self.locked()?;
            let range = match &after {
                Some(cursor) => entries.range::<String, _>((
                    std::ops::Bound::Excluded(cursor),
                    std::ops::Bound::Unbounded,
                )),
                None => entries.range::<String, _>(..),
            };
            Ok(range.take(limit).map(|(_, e)| e.clone()).collect())
        })
    }

    fn sweep(&self, now: u64) -> BoxFuture<'_, ()> {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, e| e.expires_at > now);
        }
        Box::pin(async {})
    }

    fn health(&self) -> StoreHealth {
        StoreHealth {
            up: true,
            loaded: true,
            stale_seconds: 0,
            resyncs: 0,
            detail: None,
        }
    }
}

//! The embedded store: entries live in this process only (dev and tests), so
//! an entry is "stored" the moment `put` returns.

use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{Entry, Store, StoreError, StoreHealth};

#[derive(Default)]
pub struct MemoryStore {
    /// Admin operations only (never the request path): a plain mutex is enough.
    entries: Mutex<BTreeMap<String, Entry>>,
    /// One-use ids seen, until when they are remembered.
    seen: Mutex<HashMap<String, u64>>,
}

impl MemoryStore {
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
            Ok((stored, new))
        })
    }

    fn lift(&self, id: String) -> BoxFuture<'_, Result<Option<Entry>, StoreError>> {
        Box::pin(async move { Ok(self.locked()?.remove(&id)) })
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
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, until| *until > now);
        }
        Box::pin(async {})
    }

    fn first_sighting(&self, id: String, until: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut seen = self
                .seen
                .lock()
                .map_err(|_| StoreError::Unavailable("memory store poisoned".into()))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            match seen.get(&id) {
                Some(remembered) if *remembered > now => Ok(false),
                _ => {
                    seen.insert(id, until);
                    Ok(true)
                }
            }
        })
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

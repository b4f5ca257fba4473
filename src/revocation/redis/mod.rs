//! The Redis store: durable entries, shared by every replica, with a change
//! feed that keeps each replica's [`LocalCopy`] in step.
//!
//! Keys (all under `key_prefix`, all with a TTL, readable with `redis-cli`):
//! - `{prefix}{rev}:entries` — a hash, entry id → entry JSON. Its TTL follows
//!   the latest `expires_at`; expired fields are removed by the sweeper.
//! - `{prefix}{rev}:feed` — a stream of changes (`op` put/lift, `entry` JSON,
//!   `ts` write time in ms), trimmed to `feed_max_len` and expiring a day after
//!   the last write.
//! - `{prefix}seen:<sha256>` — a one-use id (a logout token's or SET's `jti`)
//!   already acted on, set with `NX` and expiring when it may be forgotten.
//!
//! The `{rev}` hash tag puts both keys in one Redis Cluster slot, so an entry
//! and its feed record are written by one Lua script, atomically: no replica
//! can see one without the other. (The cost is that the revocation list lives
//! on one shard; its write rate is that of security teams revoking tokens.)
//!
//! Each replica: loads the whole hash (remembering the feed's last id first),
//! then follows the feed with blocking `XREAD` on its own connection whose
//! response timeout exceeds the block time. After a disconnect it resumes from
//! the last id it applied; if the feed no longer reaches back that far it
//! resyncs from the hash. A write is acknowledged only after Redis has run the
//! script (with `appendfsync always`, after it is on disk).

mod connect;
mod feed;

use futures_util::future::BoxFuture;
use redis::{AsyncCommands, RedisResult};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Entry, LocalCopy, Store, StoreError, StoreHealth};
use crate::config::RevocationConfig;
use connect::{Conn, Connector};

/// The feed lives this long after its last write (it is also trimmed by length).
const FEED_TTL_MS: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Stores an entry and its feed record atomically; keeps the longer expiry and the
/// original creation of an entry stored before. Returns {1 if new, stored JSON}.
///
/// Everything is checked before the first write: Redis does not undo the
/// writes of a script that fails half-way, so a late failure would leave an
/// entry in the hash with no feed record (replicas diverge) while the caller
/// hears 503. Times travel as the integer strings Rust sent: a Lua number
/// passed to a command is formatted with 14 digits (`2.5e+14`), which
/// `PEXPIREAT` refuses.
const PUT: &str = r#"
local until_ms = tonumber(ARGV[3])
if not until_ms or until_ms < 0 or until_ms > 253402300799000 or until_ms % 1 ~= 0 then
  return redis.error_reply('tokend: expiry out of range')
end
local ok, n = pcall(cjson.decode, ARGV[2])
if not ok or type(n) ~= 'table' or type(n.expires_at) ~= 'number' then
  return redis.error_reply('tokend: unreadable entry')
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local json = ARGV[2]
local new = 1
if cur then
  new = 0
  local readable, c = pcall(cjson.decode, cur)
  if readable and type(c) == 'table' and type(c.expires_at) == 'number' then
    if n.expires_at <= c.expires_at then
      return {0, cur}
    end
    -- every number in an entry has at most 12 digits: cjson's 14 keep it exact
    c.expires_at = n.expires_at
    json = cjson.encode(c)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], json)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or until_ms > tonumber(ARGV[6]) + ttl then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 'op', 'put', 'entry', json, 'ts', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {new, json}
"#;

/// Removes an entry and records the lift in the feed. Returns the lifted JSON or nil.
const LIFT: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'op', 'lift', 'entry', cur, 'ts', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return cur
"#;

/// The Redis store and its feed follower.
pub struct RedisStore {
    connector: Connector,
    /// The command connection, made on first use and dropped on error (admin
    /// path only: the request path never touches Redis).
    conn: tokio::sync::Mutex<Option<Conn>>,
    entries_key: String,
    feed_key: String,
    /// `{prefix}seen:`, before a one-use id's hash.
    seen_prefix: String,
    feed_max_len: usize,
    copy: Arc<LocalCopy>,
    put: redis::Script,
    lift: redis::Script,
    /// The feed follower is connected and caught up.
    in_sync: AtomicBool,
    /// The whole set has been loaded at least once.
    loaded: AtomicBool,
    /// When the copy was last known to be in sync (ms since the epoch).
    last_sync_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    last_sweep_ms: AtomicU64,
    resync_count: AtomicU64,
    lag: metrics::Histogram,
    resyncs: metrics::Counter,
}

impl RedisStore {
    pub fn new(config: &RevocationConfig, copy: Arc<LocalCopy>) -> Result<RedisStore, StoreError> {
        let connector = Connector::new(config)
            .map_err(|e| StoreError::Unavailable(format!("bad Redis address: {e}")))?;
        Ok(RedisStore {
            connector,
            conn: tokio::sync::Mutex::new(None),
            entries_key: format!("{}{{rev}}:entries", config.key_prefix),
            feed_key: format!("{}{{rev}}:feed", config.key_prefix),
            seen_prefix: format!("{}seen:", config.key_prefix),
            feed_max_len: config.feed_max_len,
            copy,
            put: redis::Script::new(PUT),
            lift: redis::Script::new(LIFT),
            in_sync: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            last_sync_ms: AtomicU64::new(now_ms()),
            last_error: Mutex::new(None),
            last_sweep_ms: AtomicU64::new(0),
            resync_count: AtomicU64::new(0),
            lag: metrics::histogram!(crate::metrics::REVOCATION_FEED_LAG),
            resyncs: metrics::counter!(crate::metrics::REVOCATION_RESYNCS),
        })
    }

    pub fn keys(&self) -> (&str, &str) {
        (&self.entries_key, &self.feed_key)
    }

    async fn command_conn(&self) -> Result<Conn, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self
            .connector
            .connect(false)
            .await
            .map_err(|e| self.failed(e))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    fn failed(&self, e: redis::RedisError) -> StoreError {
        let message = format!("Redis: {e}");
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message.clone());
        }
        StoreError::Unavailable(message)
    }

    async fn forget_conn(&self) {
        *self.conn.lock().await = None;
    }

    /// Runs a command on the command connection; a failure drops the connection.
    async fn run<T>(
        &self,
        f: impl AsyncFnOnce(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.command_conn().await?;
        match f(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                {
                    self.forget_conn().await;
                }
                Err(self.failed(e))
            }
        }
    }

    /// Reads every stored entry.
    async fn load_all(&self, conn: &mut Conn) -> RedisResult<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(&self.entries_key)
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await?;
            for (id, json) in batch {
                match serde_json::from_str::<Entry>(&json) {
                    Ok(entry) if entry.id == id => entries.push(entry),
                    _ => tracing::warn!(id, "unreadable revocation entry in Redis; skipped"),
                }
            }
            if next == 0 {
                return Ok(entries);
            }
            cursor = next;
        }
    }
}

impl Store for RedisStore {
    fn put(&self, entry: Entry) -> BoxFuture<'_, Result<(Entry, bool), StoreError>> {
        Box::pin(async move {
            let json = serde_json::to_string(&entry)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let (entries_key, feed_key) = (self.entries_key.clone(), self.feed_key.clone());
            let script = &self.put;
            let (new, stored): (i64, String) = self
                .run(async |conn: &mut Conn| {
                    script
                        .key(&entries_key)
                        .key(&feed_key)
                        .arg(&entry.id)
                        .arg(&json)
                        .arg(entry.expires_at.min(super::MAX_EXPIRES_AT) * 1000)
                        .arg(self.feed_max_len)
                        .arg(FEED_TTL_MS)
                        .arg(now_ms())
                        .invoke_async(conn)
                        .await
                })
                .await?;
            let stored: Entry = serde_json::from_str(&stored)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            Ok((stored, new == 1))
        })
    }

    fn lift(&self, id: String) -> BoxFuture<'_, Result<Option<Entry>, StoreError>> {
        Box::pin(async move {
            let (entries_key, feed_key) = (self.entries_key.clone(), self.feed_key.clone());
            let script = &self.lift;
            let lifted: Option<String> = self
                .run(async |conn: &mut Conn| {
                    script
                        .key(&entries_key)
                        .key(&feed_key)
                        .arg(&id)
                        .arg(self.feed_max_len)
                        .arg(FEED_TTL_MS)
                        .arg(now_ms())
                        .invoke_async(conn)
                        .await
                })
                .await?;
            Ok(lifted.and_then(|json| serde_json::from_str::<Entry>(&json).ok()))
        })
    }

    fn list(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Entry>, StoreError>> {
        Box::pin(async move {
            let now = now_ms() / 1000;
            let mut entries = self
                .run(async |conn: &mut Conn| self.load_all(conn).await)
                .await?;
            entries.retain(|e| {
                e.expires_at > now && after.as_ref().is_none_or(|a| e.id.as_str() > a.as_str())
            });
            entries.sort_by(|a, b| a.id.cmp(&b.id));
            entries.truncate(limit);
            Ok(entries)
        })
    }

    fn health(&self) -> StoreHealth {
        let up = self.in_sync.load(Ordering::Acquire);
        StoreHealth {
            up,
            loaded: self.loaded.load(Ordering::Acquire),
            stale_seconds: self.stale_seconds(),
            resyncs: self.resync_count.load(Ordering::Acquire),
            detail: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    fn stale_seconds(&self) -> u64 {
        if self.in_sync.load(Ordering::Acquire) {
            return 0;
        }
        (now_ms().saturating_sub(self.last_sync_ms.load(Ordering::Acquire)) / 1000).max(1)
    }

    fn first_sighting(&self, id: String, until: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let key = format!("{}{id}", self.seen_prefix);
            // At least a second: an id whose time is up is still refused once.
            let until_ms = (until * 1000).max(now_ms() + 1000);
            let set: Option<String> = self
                .run(async |conn: &mut Conn| {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .arg("NX")
                        .arg("PXAT")
                        .arg(until_ms)
                        .query_async(conn)
                        .await
                })
                .await?;
            Ok(set.is_some())
        })
    }

    /// Removes expired fields from the entries hash, at most every five minutes
    /// per replica (any replica may; it is idempotent).
    fn sweep(&self, _now: u64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let last = self.last_sweep_ms.load(Ordering::Acquire);
            if now_ms() < last + 300_000 {
                return;
            }
            self.last_sweep_ms.store(now_ms(), Ordering::Release);
            match self.sweep_expired().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(removed = n, "expired revocation entries removed from Redis")
                }
                Err(e) => tracing::debug!(error = %e, "sweep of expired revocation entries failed"),
            }
        })
    }
}

impl RedisStore {
    /// Deletes hash fields whose entries have expired.
    pub async fn sweep_expired(&self) -> Result<usize, StoreError> {
        let now = now_ms() / 1000;
        let entries = self
            .run(async |conn: &mut Conn| self.load_all(conn).await)
            .await?;
        let expired: Vec<String> = entries
            .into_iter()
            .filter(|e| e.expires_at <= now)
            .map(|e| e.id)
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let key = self.entries_key.clone();
        let count = expired.len();
        self.run(async |conn: &mut Conn| conn.hdel::<_, _, ()>(&key, &expired).await)
            .await?;
        Ok(count)
    }
}

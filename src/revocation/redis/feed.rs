//! The feed follower: each replica loads the whole hash, then tails the
//! change feed with blocking reads, applying each record to its local copy;
//! after a disconnect it resumes from the last record applied, or resyncs
//! when the feed no longer reaches back that far.

use redis::{AsyncCommands, RedisResult, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::connect::{BLOCK, Conn};
use super::{Entry, RedisStore, now_ms};

/// Feed records read at once.
const FEED_BATCH: usize = 1000;
/// The follower's first and longest wait before reconnecting: a Redis that
/// answers again is found within this, so a replica is back in sync well
/// inside half a second (a connect attempt four times a second costs nothing).
const RECONNECT_FIRST: Duration = Duration::from_millis(25);
const RECONNECT_MAX: Duration = Duration::from_millis(250);

impl RedisStore {
    /// The id of the feed's newest record ("0-0" when empty).
    async fn feed_last_id(&self, conn: &mut Conn) -> RedisResult<String> {
        let newest: redis::streams::StreamRangeReply =
            conn.xrevrange_count(&self.feed_key, "+", "-", 1).await?;
        Ok(newest
            .ids
            .first()
            .map_or_else(|| "0-0".to_owned(), |r| r.id.clone()))
    }

    /// Whether resuming after `last_id` can miss nothing: the feed still reaches back to it.
    async fn can_resume(&self, conn: &mut Conn, last_id: &str) -> RedisResult<bool> {
        let oldest: redis::streams::StreamRangeReply =
            conn.xrange_count(&self.feed_key, "-", "+", 1).await?;
        Ok(match oldest.ids.first() {
            None => last_id == "0-0",
            Some(first) => stream_id(&first.id) <= stream_id(last_id),
        })
    }

    /// Full resync: remember where the feed is, load everything, swap it in.
    async fn resync(&self, conn: &mut Conn) -> RedisResult<String> {
        let last_id = self.feed_last_id(conn).await?;
        let entries = self.load_all(conn).await?;
        let now = now_ms() / 1000;
        self.copy
            .replace_all(entries.iter().filter(|e| e.expires_at > now));
        self.loaded.store(true, Ordering::Release);
        self.resyncs.increment(1);
        self.resync_count.fetch_add(1, Ordering::AcqRel);
        tracing::info!(entries = entries.len(), feed = %last_id, "revocation copy loaded from Redis");
        Ok(last_id)
    }

    fn apply_record(&self, fields: &HashMap<String, Value>) {
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
        };
        let (Some(op), Some(json)) = (text("op"), text("entry")) else {
            tracing::warn!("malformed revocation feed record; skipped");
            return;
        };
        let Ok(entry) = serde_json::from_str::<Entry>(&json) else {
            tracing::warn!("unreadable entry in the revocation feed; skipped");
            return;
        };
        match op.as_str() {
            "put" => self.copy.apply(&entry),
            "lift" => self.copy.remove(&entry),
            other => tracing::warn!(op = other, "unknown revocation feed op; skipped"),
        }
        if let Some(ts) = text("ts").and_then(|t| t.parse::<u64>().ok()) {
            self.lag.record(now_ms().saturating_sub(ts) as f64 / 1000.0);
        }
    }

    /// Follows the feed until `shutdown`: load, then tail; reconnect with backoff;
    /// resume from the last applied record, or resync when the feed has moved on.
    pub async fn run_feed(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_id: Option<String> = None;
        let mut backoff = RECONNECT_FIRST;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let outcome = tokio::select! {
                r = self.follow(&mut last_id) => r,
                _ = shutdown.cancelled() => return,
            };
            if let Err(e) = outcome {
                if self.in_sync.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "revocation feed lost; serving from the local copy");
                    // It was connected and caught up: start over quickly.
                    backoff = RECONNECT_FIRST;
                }
                let _ = self.failed(e);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
    }

    /// One connected session of the follower; returns on a Redis error.
    async fn follow(&self, last_id: &mut Option<String>) -> RedisResult<()> {
        let mut conn = self.connector.connect(true).await?;
        let mut cursor = match last_id.take() {
            Some(id) if self.can_resume(&mut conn, &id).await? => {
                tracing::info!(from = %id, "revocation feed resumed");
                id
            }
            Some(_) => {
                tracing::warn!("revocation feed moved past this replica's position; full resync");
                self.resync(&mut conn).await?
            }
            None => self.resync(&mut conn).await?,
        };
        *last_id = Some(cursor.clone());
        // Catch up without waiting (what is in the feed now), then mark the
        // copy in sync, then block for news: a replica reconnecting to a
        // quiet feed is in sync at once, not after a blocking read's timeout.
        let mut catching_up = true;
        loop {
            let mut options = redis::streams::StreamReadOptions::default().count(FEED_BATCH);
            if !catching_up {
                options = options.block(BLOCK.as_millis() as usize);
            }
            let reply: Option<redis::streams::StreamReadReply> = conn
                .xread_options(&[&self.feed_key], &[&cursor], &options)
                .await?;
            let mut read = 0;
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                for record in key.ids {
                    self.apply_record(&record.map);
                    cursor = record.id;
                    *last_id = Some(cursor.clone());
                    read += 1;
                }
            }
            if catching_up && read == FEED_BATCH {
                continue;
            }
            catching_up = false;
            // The read answered and its records are applied: everything up to now is here.
            self.last_sync_ms.store(now_ms(), Ordering::Release);
            if !self.in_sync.swap(true, Ordering::AcqRel) {
                tracing::info!("revocation feed in sync");
                if let Ok(mut last) = self.last_error.lock() {
                    *last = None;
                }
            }
        }
    }
}

/// Orders stream ids ("ms-seq") numerically.
fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

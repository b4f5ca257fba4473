//! RFC 8936 poll delivery: for a transmitter with a `poll_endpoint`, each
//! replica asks for SETs every `poll_interval_seconds` (at once again while
//! the transmitter says more are available), checks and applies each, and
//! acknowledges it in its next request — only once its revocations are
//! stored. A SET that fails its checks is reported in `setErrs` (with its RFC
//! 8935 error code); one whose revocations could not be stored is neither
//! acknowledged nor reported, so the transmitter delivers it again.

use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::Source;
use super::set::{self, SetError};
use super::ssf::{self, Transmitter};
use crate::clock::Clock;
use crate::keys::fetch::Fetcher;
use crate::revocation::Revocations;

/// SETs asked for per request.
const MAX_EVENTS: usize = 100;

/// What the next request carries back.
#[derive(Default)]
struct Replies {
    ack: Vec<String>,
    errors: Map<String, Value>,
}

impl Replies {
    fn body(&mut self, max_events: usize) -> Value {
        let mut body = json!({"maxEvents": max_events, "returnImmediately": true});
        if !self.ack.is_empty() {
            body["ack"] = json!(std::mem::take(&mut self.ack));
        }
        if !self.errors.is_empty() {
            body["setErrs"] = Value::Object(std::mem::take(&mut self.errors));
        }
        body
    }
}

/// Polls one transmitter until `shutdown`; then sends the last acknowledgements.
pub async fn run(
    transmitter: Arc<Transmitter>,
    revocations: Arc<Revocations>,
    clock: Clock,
    max_bytes: usize,
    shutdown: CancellationToken,
) {
    let Some(keys_config) = transmitter.config.keys.as_deref() else {
        return;
    };
    let fetcher = match Fetcher::new(keys_config) {
        Ok(fetcher) => fetcher,
        Err(e) => {
            tracing::error!(transmitter = %transmitter.config.name, error = %e, "SSF poller cannot start");
            return;
        }
    };
    let interval = Duration::from_secs(transmitter.config.poll_interval_seconds);
    let mut replies = Replies::default();
    let mut backoff = interval;
    loop {
        // Nothing can be checked before the transmitter's keys are there.
        if !transmitter.keys.is_loaded() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                _ = shutdown.cancelled() => break,
                _ = transmitter.retired.cancelled() => break,
            }
        }
        let wait = match poll_once(
            &transmitter,
            &fetcher,
            &revocations,
            &clock,
            max_bytes,
            &mut replies,
        )
        .await
        {
            Ok(true) => Duration::ZERO,
            Ok(false) => {
                backoff = interval;
                interval
            }
            Err(e) => {
                tracing::warn!(transmitter = %transmitter.config.name, error = %e, "SSF poll failed; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(60));
                backoff
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => break,
            _ = transmitter.retired.cancelled() => break,
        }
    }
    if !replies.ack.is_empty() || !replies.errors.is_empty() {
        let _ = request(&transmitter, &fetcher, replies.body(0)).await;
    }
}

/// One request: acknowledgements out, SETs in. `Ok(true)`: more are waiting.
async fn poll_once(
    transmitter: &Transmitter,
    fetcher: &Fetcher,
    revocations: &Revocations,
    clock: &Clock,
    max_bytes: usize,
    replies: &mut Replies,
) -> Result<bool, String> {
    let sent = replies.body(MAX_EVENTS);
    let answer = match request(transmitter, fetcher, sent.clone()).await {
        Ok(answer) => answer,
        Err(e) => {
            // Not delivered: keep the acknowledgements for the next try.
            if let Some(ack) = sent.get("ack").and_then(Value::as_array) {
                replies
                    .ack
                    .extend(ack.iter().filter_map(|j| j.as_str().map(str::to_owned)));
            }
            if let Some(Value::Object(errors)) = sent.get("setErrs") {
                replies.errors.extend(errors.clone());
            }
            return Err(e);
        }
    };
    let sets = match answer.get("sets") {
        Some(Value::Object(sets)) => sets.clone(),
        None => Map::new(),
        Some(_) => return Err("the poll answer's sets is not an object".into()),
    };
    for (jti, token) in sets {
        let Some(token) = token.as_str() else {
            replies.errors.insert(
                jti,
                json!({"err": "invalid_request", "description": "not a compact JWT"}),
            );
            continue;
        };
        let now = clock();
        match set::check(transmitter, token, max_bytes, now).await {
            // Not the SET's fault: neither acknowledged nor refused; it comes again.
            Err(SetError::NoKeysYet) => {
                return Err("the transmitter's keys are not loaded yet".into());
            }
            Err(e) => {
                super::count(Source::SsfPoll, "unknown", "invalid");
                replies
                    .errors
                    .insert(jti, json!({"err": e.code(), "description": e.to_string()}));
            }
            Ok(checked) if checked.jti != jti => {
                let e = SetError::InvalidRequest(
                    "the SET's jti is not the one it was delivered under".into(),
                );
                super::count(Source::SsfPoll, "unknown", "invalid");
                replies
                    .errors
                    .insert(jti, json!({"err": e.code(), "description": e.to_string()}));
            }
            Ok(checked) => {
                match ssf::apply(revocations, transmitter, &checked, Source::SsfPoll, now).await {
                    Ok(_) => replies.ack.push(jti),
                    // Not stored: neither acknowledged nor refused; it comes again.
                    Err(e) => return Err(format!("revocation store: {e}")),
                }
            }
        }
    }
    Ok(answer.get("moreAvailable").and_then(Value::as_bool) == Some(true))
}

async fn request(
    transmitter: &Transmitter,
    fetcher: &Fetcher,
    body: Value,
) -> Result<Value, String> {
    let authorization = transmitter
        .config
        .poll_authorization_value
        .as_ref()
        .map(|s| String::from_utf8_lossy(&s.0).into_owned());
    let answer = fetcher
        .post_json(
            &transmitter.config.poll_endpoint,
            &body,
            authorization.as_deref(),
        )
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&answer).map_err(|e| format!("the poll answer is not JSON: {e}"))
}

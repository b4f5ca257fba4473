//! The issuer's RFC 7662 introspection endpoint (and RFC 7009 revocation
//! endpoint), called over HTTP with the issuer's client credentials. Every
//! call is bounded — a deadline covering the wait for a permit, discovery and
//! the answer; a body cap; at most [`MAX_CONCURRENT_CALLS`] at once per
//! issuer — and every failure is a typed error that the opaque-token stage
//! ([`crate::verify`]) turns into an inactive verdict, never a guess.

use base64::Engine;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{OnceCell, Semaphore};

use crate::config::{ClientAuth, Endpoint, Introspection};
use crate::keys::IssuerKeys;
use crate::keys::fetch::{FetchError, Fetcher};
use crate::metrics::{UPSTREAM_INTROSPECTION, UPSTREAM_REVOCATIONS};
use crate::token::parse::parse_object;

/// Calls one issuer's endpoints make at once; more wait (within the deadline).
/// A flood of made-up opaque tokens must not become a flood at the IdP.
pub const MAX_CONCURRENT_CALLS: usize = 64;

/// What an introspection endpoint said about a token.
#[derive(Debug)]
pub enum Said {
    /// `active: true`, and the answer's `iss`, if any, is this issuer: the
    /// answer's members, with `iss` filled in when it was absent.
    Active(Map<String, Value>),
    /// `active: false`.
    Inactive,
    /// `active: true` for another issuer's token (its `iss` is not ours).
    OtherIssuer,
}

/// Why an endpoint gave no answer to go by.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("no answer within the deadline")]
    Timeout,
    #[error("unreachable: {0}")]
    Unavailable(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("not an RFC 7662 answer: {0}")]
    BadAnswer(String),
}

/// The `result` label of `tokend_upstream_introspection_total`, by outcome.
const RESULTS: [&str; 7] = [
    "active",
    "inactive",
    "other_issuer",
    "timeout",
    "unavailable",
    "bad_status",
    "bad_answer",
];

fn result_index(result: &Result<Said, UpstreamError>) -> usize {
    match result {
        Ok(Said::Active(_)) => 0,
        Ok(Said::Inactive) => 1,
        Ok(Said::OtherIssuer) => 2,
        Err(UpstreamError::Timeout) => 3,
        Err(UpstreamError::Unavailable(_)) => 4,
        Err(UpstreamError::Status(_)) => 5,
        Err(UpstreamError::BadAnswer(_)) => 6,
    }
}

impl From<FetchError> for UpstreamError {
    fn from(e: FetchError) -> UpstreamError {
        match e {
            FetchError::Status { status, .. } => UpstreamError::Status(status),
            FetchError::TooLarge { .. } => UpstreamError::BadAnswer(e.to_string()),
            other => UpstreamError::Unavailable(other.to_string()),
        }
    }
}

struct Endpoints {
    introspection: String,
    revocation: Option<String>,
}

/// One issuer's introspection client.
pub struct Introspector {
    pub issuer: Arc<IssuerKeys>,
    config: Introspection,
    fetcher: Fetcher,
    /// Configured, or read from discovery on first use (retried until it works).
    endpoints: OnceCell<Endpoints>,
    /// `Authorization: Basic …` for `client_secret_basic`, built once.
    basic: Option<String>,
    permits: Semaphore,
    calls: Vec<metrics::Counter>,
    forwarded: [metrics::Counter; 2],
    /// The last call failed (and none has answered since): `/readyz` says degraded.
    failing: AtomicBool,
}

impl Introspector {
    /// The client for an issuer with `introspection_*` settings, else `None`.
    pub fn new(issuer: &Arc<IssuerKeys>) -> Result<Option<Introspector>, FetchError> {
        let Some(config) = issuer.config.introspection.clone() else {
            return Ok(None);
        };
        let name = issuer.config.name.clone();
        let basic = (config.auth == ClientAuth::ClientSecretBasic).then(|| {
            // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
            let id = form_encode(config.client_id.as_bytes());
            let secret = form_encode(&config.secret.0);
            let pair = format!("{id}:{secret}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        let endpoints = OnceCell::new();
        if let Endpoint::Configured(url) = &config.endpoint {
            let _ = endpoints.set(Endpoints {
                introspection: url.clone(),
                revocation: config.revocation_endpoint.clone(),
            });
        }
        Ok(Some(Introspector {
            fetcher: Fetcher::new(&issuer.config)?,
            issuer: issuer.clone(),
            basic,
            endpoints,
            permits: Semaphore::new(MAX_CONCURRENT_CALLS),
            calls: RESULTS
                .iter()
                .map(|r| metrics::counter!(UPSTREAM_INTROSPECTION, "issuer" => name.clone(), "result" => *r))
                .collect(),
            forwarded: [
                metrics::counter!(UPSTREAM_REVOCATIONS, "issuer" => name.clone(), "result" => "ok"),
                metrics::counter!(UPSTREAM_REVOCATIONS, "issuer" => name, "result" => "error"),
            ],
            failing: AtomicBool::new(false),
            config,
        }))
    }

    pub fn config(&self) -> &Introspection {
        &self.config
    }

    /// Whether the last call failed.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Asks the endpoint about `token`, within `introspection_timeout_ms`.
    pub async fn introspect(&self, token: &str) -> Result<Said, UpstreamError> {
        let result = tokio::time::timeout(self.config.timeout, self.call(token))
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
        self.calls[result_index(&result)].increment(1);
        self.failing.store(result.is_err(), Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::warn!(issuer = %self.issuer.config.name, error = %e, "introspection failed; the token is inactive");
        }
        result
    }

    async fn call(&self, token: &str) -> Result<Said, UpstreamError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| UpstreamError::Unavailable("closed".into()))?;
        let endpoints = self.endpoints().await?;
        let body = self
            .post(&endpoints.introspection, token)
            .await
            .map_err(UpstreamError::from)?;
        read_answer(&body, &self.issuer.config.issuer)
    }

    /// Forwards a revocation to the issuer's RFC 7009 endpoint, if it has
    /// one (`Ok(false)`: it has none). Bounded like an introspection.
    pub async fn revoke(&self, token: &str) -> Result<bool, UpstreamError> {
        let call = async {
            let endpoints = self.endpoints().await?;
            let Some(url) = &endpoints.revocation else {
                return Ok(false);
            };
            self.post(url, token).await?;
            Ok(true)
        };
        let result = tokio::time::timeout(self.config.timeout, call)
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
        match &result {
            Ok(true) => self.forwarded[0].increment(1),
            Ok(false) => {}
            Err(_) => self.forwarded[1].increment(1),
        }
        result
    }

    /// One form POST with the client's credentials.
    async fn post(&self, url: &str, token: &str) -> Result<Vec<u8>, FetchError> {
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let secret;
        if self.basic.is_none() {
            secret = String::from_utf8_lossy(&self.config.secret.0).into_owned();
            form.push(("client_id", self.config.client_id.as_str()));
            form.push(("client_secret", &secret));
        }
        self.fetcher
            .post_form(url, &form, self.basic.as_deref())
            .await
    }

    async fn endpoints(&self) -> Result<&Endpoints, UpstreamError> {
        self.endpoints
            .get_or_try_init(|| async {
                let doc = self
                    .fetcher
                    .discovery_document(&self.issuer.config.issuer)
                    .await?;
                let introspection = self
                    .fetcher
                    .endpoint(&doc, "introspection_endpoint")?
                    .ok_or_else(|| {
                        UpstreamError::Unavailable(
                            "the discovery document names no introspection_endpoint".into(),
                        )
                    })?;
                let revocation = match &self.config.revocation_endpoint {
                    Some(url) => Some(url.clone()),
                    None => self.fetcher.endpoint(&doc, "revocation_endpoint")?,
                };
                Ok(Endpoints {
                    introspection,
                    revocation,
                })
            })
            .await
    }
}

/// Reads an RFC 7662 answer: one JSON object, no member repeated, `active`
/// a boolean, `iss` (if any) the issuer's own.
fn read_answer(body: &[u8], issuer: &str) -> Result<Said, UpstreamError> {
    let mut answer = parse_object(body).map_err(|why| {
        UpstreamError::BadAnswer(match why {
            Some(reason) => reason.as_str().to_owned(),
            None => "not a JSON object".to_owned(),
        })
    })?;
    match answer.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(Said::Inactive),
        _ => return Err(UpstreamError::BadAnswer("active is not a boolean".into())),
    }
    match answer.get("iss") {
        None => {
            answer.insert("iss".into(), Value::String(issuer.to_owned()));
        }
        Some(Value::String(iss)) if iss == issuer => {}
        Some(Value::String(_)) => return Ok(Said::OtherIssuer),
        Some(_) => return Err(UpstreamError::BadAnswer("iss is not a string".into())),
    }
    Ok(Said::Active(answer))
}

fn form_encode(bytes: &[u8]) -> String {
    url::form_urlencoded::byte_serialize(bytes).collect()
}

/// Whether a token can be an opaque access token at all: RFC 6750's
/// `b64token` (letters, digits, `-._~+/`, then `=` padding). Anything else is
/// never sent to an IdP.
pub fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_strictly() {
        let iss = "https://idp";
        assert!(matches!(
            read_answer(br#"{"active":false}"#, iss),
            Ok(Said::Inactive)
        ));
        match read_answer(br#"{"active":true,"sub":"a"}"#, iss) {
            Ok(Said::Active(map)) => assert_eq!(map["iss"], iss, "iss filled in"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_answer(br#"{"active":true,"iss":"https://other"}"#, iss),
            Ok(Said::OtherIssuer)
        ));
        for bad in [
            &br#"{"active":"true"}"#[..],
            br#"{"sub":"a"}"#,
            br#"{"active":true,"active":false}"#,
            br#"[true]"#,
            b"<html>",
            br#"{"active":true,"iss":5}"#,
        ] {
            assert!(
                matches!(read_answer(bad, iss), Err(UpstreamError::BadAnswer(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_b64tokens_go_upstream() {
        for good in [
            "ory_at_abc.def",
            "a",
            "AbC-._~+/09==",
            "2YotnFZFEjr1zCsicMWpAA",
        ] {
            assert!(is_b64token(good), "{good}");
        }
        for bad in ["", "===", "a b", "a\nb", "a=b", "ä", "a,b", "a\"b"] {
            assert!(!is_b64token(bad), "{bad:?}");
        }
    }
}

//! Bounded HTTP calls to an issuer: discovery documents and JWKS, and the
//! form POSTs of introspection and revocation.
//!
//! Every fetch has a total deadline, a body cap, HTTPS only (unless the issuer
//! allows plain HTTP for loopback tests), and refuses redirects to another host
//! or scheme: an IdP's key URL is never steered somewhere else.

use reqwest::redirect;
use std::time::Duration;

use crate::config::IssuerConfig;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot build HTTP client: {0}")]
    Client(String),
    #[error("request to {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("discovery document: {0}")]
    Discovery(String),
}

/// A successful GET: the body and the `max-age` the server asked for.
pub struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

/// One issuer's HTTP client with its bounds.
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
    allow_http: bool,
}

impl Fetcher {
    pub fn new(config: &IssuerConfig) -> Result<Fetcher, FetchError> {
        let policy = redirect::Policy::custom(|attempt| {
            let Some(first) = attempt.previous().first() else {
                return attempt.follow();
            };
            let same_origin = attempt.url().host_str() == first.host_str()
                && attempt.url().port_or_known_default() == first.port_or_known_default()
                && attempt.url().scheme() == first.scheme();
            if !same_origin {
                attempt.error("redirect to another host refused")
            } else if attempt.previous().len() > 3 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.fetch_timeout_seconds))
            .connect_timeout(Duration::from_secs(config.fetch_timeout_seconds))
            .redirect(policy)
            .https_only(!config.allow_insecure_http)
            .user_agent(concat!("tokend/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| FetchError::Client(format!("{}: {e}", path.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| FetchError::Client(e.to_string()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            max_bytes: config.max_jwks_bytes,
            allow_http: config.allow_insecure_http,
        })
    }

    /// GETs `url`, reading at most `max_jwks_bytes` of body.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let failed = |e: reqwest::Error| FetchError::Request {
            url: redact_url(url),
            reason: error_chain(&e.without_url()),
        };
        let response = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: redact_url(url),
                status: response.status().as_u16(),
            });
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let body = self.read_body(url, response).await?;
        Ok(Fetched { body, max_age })
    }

    /// Discovery: reads `{issuer}/.well-known/{well_known}`
    /// (`openid-configuration`, or an SSF transmitter's `ssf-configuration`),
    /// checks that its `issuer` is exactly ours and returns its `jwks_uri`.
    pub async fn discover(&self, issuer: &str, well_known: &str) -> Result<String, FetchError> {
        let doc = self.discovery_document_at(issuer, well_known).await?;
        self.endpoint(&doc, "jwks_uri")?
            .ok_or_else(|| FetchError::Discovery("no jwks_uri member".into()))
    }

    /// The OpenID discovery document, once its `issuer` is checked to be exactly ours.
    pub async fn discovery_document(&self, issuer: &str) -> Result<serde_json::Value, FetchError> {
        self.discovery_document_at(issuer, "openid-configuration")
            .await
    }

    async fn discovery_document_at(
        &self,
        issuer: &str,
        well_known: &str,
    ) -> Result<serde_json::Value, FetchError> {
        let url = format!("{}/.well-known/{well_known}", issuer.trim_end_matches('/'));
        let fetched = self.get(&url).await?;
        let doc: serde_json::Value = serde_json::from_slice(&fetched.body)
            .map_err(|e| FetchError::Discovery(format!("not JSON: {e}")))?;
        match doc.get("issuer").and_then(|v| v.as_str()) {
            Some(found) if found == issuer => Ok(doc),
            Some(found) => Err(FetchError::Discovery(format!(
                "issuer {found:?} does not match configured {issuer:?}"
            ))),
            None => Err(FetchError::Discovery("no issuer member".into())),
        }
    }

    /// A URL member of a discovery document (`None` when absent), held to the
    /// issuer's scheme rule: https, or http where the issuer allows it.
    pub fn endpoint(
        &self,
        doc: &serde_json::Value,
        member: &str,
    ) -> Result<Option<String>, FetchError> {
        let Some(value) = doc.get(member) else {
            return Ok(None);
        };
        let url = value
            .as_str()
            .ok_or_else(|| FetchError::Discovery(format!("{member} is not a string")))?;
        match url::Url::parse(url) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && self.allow_http) => {
                Ok(Some(url.to_owned()))
            }
            _ => Err(FetchError::Discovery(format!(
                "{member} {:?} is not an https:// URL",
                redact_url(url)
            ))),
        }
    }

    /// POSTs a form to `url` (an introspection or revocation endpoint) with
    /// `authorization`, reading at most `max_jwks_bytes` of the answer. Any
    /// status but 200 is an error.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        authorization: Option<&str>,
    ) -> Result<Vec<u8>, FetchError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.post(
            url,
            "application/x-www-form-urlencoded",
            body,
            authorization,
        )
        .await
    }

    /// POSTs JSON (an RFC 8936 poll request), like [`Fetcher::post_form`].
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        authorization: Option<&str>,
    ) -> Result<Vec<u8>, FetchError> {
        self.post(url, "application/json", body.to_string(), authorization)
            .await
    }

    async fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: String,
        authorization: Option<&str>,
    ) -> Result<Vec<u8>, FetchError> {
        let failed = |e: reqwest::Error| FetchError::Request {
            url: redact_url(url),
            reason: error_chain(&e.without_url()),
        };
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(failed)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: redact_url(url),
                status: response.status().as_u16(),
            });
        }
        self.read_body(url, response).await
    }

    /// The body, refused past `max_jwks_bytes` (by its length, or as it streams).
    async fn read_body(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, FetchError> {
        let failed = |e: reqwest::Error| FetchError::Request {
            url: redact_url(url),
            reason: error_chain(&e.without_url()),
        };
        let too_large = || FetchError::TooLarge {
            url: redact_url(url),
            limit: self.max_bytes,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A URL fit for errors and logs: userinfo becomes `***@`, a query `?…`, a
/// fragment is dropped. Key URLs may carry credentials (a signed S3 link, a
/// token in the query, `user:pass@`) and error text reaches `/admin/issuers`
/// and logs.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparseable URL>".to_owned();
    };
    let userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    let query = parsed.query().is_some();
    parsed.set_query(None);
    parsed.set_fragment(None);
    let _ = parsed.set_password(None);
    let _ = parsed.set_username("");
    let mut text = parsed.to_string();
    if userinfo {
        let at = parsed.scheme().len() + "://".len();
        text.insert_str(at, "***@");
    }
    if query {
        text.push_str("?…");
    }
    text
}

/// `max-age` from a `Cache-Control` value; `no-cache`/`no-store` count as zero.
pub fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            max_age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("https://user:s3cret@idp.example/keys?sig=abc&x=1#frag"),
            "https://***@idp.example/keys?…"
        );
        assert_eq!(
            redact_url("https://idp.example/.well-known/jwks.json"),
            "https://idp.example/.well-known/jwks.json"
        );
        assert_eq!(
            redact_url("https://tok@idp.example/"),
            "https://***@idp.example/"
        );
        assert_eq!(redact_url("not a url s3cret"), "<unparseable URL>");
    }

    #[test]
    fn max_age_parsing() {
        assert_eq!(
            parse_max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_max_age("MAX-AGE=5, must-revalidate"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}

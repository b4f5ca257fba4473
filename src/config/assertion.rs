//! `[assertion]`: the signed identity tokend hands upstream services on every
//! allowed `/auth` and Envoy `Check` answer.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_header")]
    pub header: String,
    #[serde(default = "default_issuer")]
    pub issuer: String,
    #[serde(default = "default_audience")]
    pub audience: String,
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// PKCS#8 PEM, EC P-256 (ES256) or Ed25519 (EdDSA). Absent: generated at start.
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_claims")]
    pub claims: Vec<String>,
}

impl Default for AssertionConfig {
    fn default() -> Self {
        AssertionConfig {
            enabled: false,
            header: default_header(),
            issuer: default_issuer(),
            audience: default_audience(),
            ttl_seconds: default_ttl(),
            key_file: None,
            claims: default_claims(),
        }
    }
}

fn default_header() -> String {
    "x-tokend-assertion".into()
}
fn default_issuer() -> String {
    "https://tokend.internal".into()
}
fn default_audience() -> String {
    "internal".into()
}
fn default_ttl() -> u64 {
    60
}
fn default_claims() -> Vec<String> {
    vec!["sub".into(), "scope".into(), "client_id".into()]
}

/// Claims tokend sets itself: a copied claim of that name would be overwritten.
pub const OWN_CLAIMS: [&str; 6] = ["iss", "aud", "iat", "exp", "jti", "orig_iss"];

pub(super) fn validate(assertion: &mut AssertionConfig, errors: &mut Vec<String>) {
    assertion.header = assertion.header.to_ascii_lowercase();
    let header_ok = axum::http::HeaderName::from_bytes(assertion.header.as_bytes()).is_ok();
    if !header_ok {
        errors.push(format!(
            "assertion.header: {:?} is not a header name",
            assertion.header
        ));
    } else if crate::headers::IDENTITY_HEADERS.contains(&assertion.header.as_str())
        || ["authorization", "cookie", "host"].contains(&assertion.header.as_str())
    {
        errors.push(format!(
            "assertion.header: {:?} is a header tokend or the gateway already uses",
            assertion.header
        ));
    }
    if assertion.issuer.is_empty() {
        errors.push("assertion.issuer: empty".into());
    }
    if assertion.audience.is_empty() {
        errors.push("assertion.audience: empty".into());
    }
    if assertion.ttl_seconds == 0 || assertion.ttl_seconds > 3600 {
        errors.push("assertion.ttl_seconds: must be 1 to 3600".into());
    }
    for (i, claim) in assertion.claims.iter().enumerate() {
        if claim.is_empty() {
            errors.push(format!("assertion.claims[{i}]: empty"));
        } else if OWN_CLAIMS.contains(&claim.as_str()) {
            errors.push(format!(
                "assertion.claims[{i}]: {claim:?} is set by tokend itself"
            ));
        }
    }
    if assertion.enabled
        && let Some(path) = &assertion.key_file
        && let Err(e) = crate::mint::AssertionKey::load(path)
    {
        errors.push(format!("assertion.key_file: {e}"));
    }
}

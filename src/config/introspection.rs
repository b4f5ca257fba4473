//! The `introspection_*` keys of an issuer: opaque tokens are asked about at
//! the issuer's RFC 7662 endpoint. Read raw into [`IssuerConfig`], resolved
//! here into one [`Introspection`] value (or `None`: the issuer issues JWTs only).

use serde::Deserialize;
use std::time::Duration;

use super::IssuerConfig;
use super::secrets::{Secret, resolve_secret};

/// How tokend authenticates to the issuer's endpoints (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Where an endpoint comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Configured(String),
    /// The discovery document's member (RFC 8414 / OpenID Connect Discovery).
    Discovered,
}

/// One issuer's introspection settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Introspection {
    pub endpoint: Endpoint,
    /// `revocation_endpoint`, configured; with discovery, the document's is used when this is absent.
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    pub secret: Secret,
    pub auth: ClientAuth,
    /// An active answer is reused at most this long (and never past its `exp`).
    pub cache: Duration,
    /// An inactive answer is reused this long.
    pub negative_cache: Duration,
    pub timeout: Duration,
}

/// Resolves the `introspection_*` keys into `issuer.introspection`.
/// Introspection is on when `introspection_endpoint` is set, or with
/// `discovery = true` and an `introspection_client_id`.
pub(super) fn validate(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    issuer.introspection = None;
    let allow_http = issuer.allow_insecure_http;
    let check_url = |errors: &mut Vec<String>, key: &str, url: &str| {
        super::check_url(at, key, url, allow_http, errors)
    };
    let endpoint = match (&issuer.introspection_endpoint, issuer.discovery) {
        (Some(url), _) => {
            check_url(errors, "introspection_endpoint", url);
            Endpoint::Configured(url.clone())
        }
        (None, true) if issuer.introspection_client_id.is_some() => Endpoint::Discovered,
        (None, _) => {
            let stray = [
                (
                    "introspection_client_id",
                    issuer.introspection_client_id.is_some(),
                ),
                ("revocation_endpoint", issuer.revocation_endpoint.is_some()),
                (
                    "introspection_client_secret",
                    issuer.introspection_client_secret.is_some()
                        || issuer.introspection_client_secret_env.is_some()
                        || issuer.introspection_client_secret_file.is_some(),
                ),
            ];
            for (key, _) in stray.iter().filter(|(_, set)| *set) {
                errors.push(format!(
                    "{at}.{key}: needs introspection_endpoint (or discovery = true with introspection_client_id)"
                ));
            }
            return;
        }
    };
    if let Some(url) = &issuer.revocation_endpoint {
        check_url(errors, "revocation_endpoint", url);
    }
    let client_id = match issuer.introspection_client_id.as_deref() {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => {
            errors.push(format!(
                "{at}.introspection_client_id: needed to call the introspection endpoint"
            ));
            String::new()
        }
    };
    let given = [
        issuer.introspection_client_secret.is_some(),
        issuer.introspection_client_secret_env.is_some(),
        issuer.introspection_client_secret_file.is_some(),
    ];
    if given.iter().filter(|b| **b).count() != 1 {
        errors.push(format!(
            "{at}: set exactly one of introspection_client_secret, introspection_client_secret_env, introspection_client_secret_file"
        ));
    }
    let secret = resolve_secret(
        errors,
        at,
        "introspection_client_secret",
        issuer.introspection_client_secret.as_deref(),
        issuer.introspection_client_secret_env.as_deref(),
        issuer.introspection_client_secret_file.as_deref(),
    )
    .unwrap_or_default();
    if issuer.introspection_auth == ClientAuth::ClientSecretPost
        && std::str::from_utf8(&secret.0).is_err()
    {
        errors.push(format!(
            "{at}.introspection_client_secret: client_secret_post sends the secret as form text: it must be UTF-8"
        ));
    }
    if issuer.introspection_timeout_ms == 0 || issuer.introspection_timeout_ms > 60_000 {
        errors.push(format!(
            "{at}.introspection_timeout_ms: must be between 1 and 60000"
        ));
    }
    if issuer.introspection_cache_seconds > 86_400 {
        errors.push(format!("{at}.introspection_cache_seconds: at most 86400"));
    }
    if issuer.introspection_negative_cache_seconds > 3_600 {
        errors.push(format!(
            "{at}.introspection_negative_cache_seconds: at most 3600"
        ));
    }
    issuer.introspection = Some(Introspection {
        endpoint,
        revocation_endpoint: issuer.revocation_endpoint.clone(),
        client_id,
        secret,
        auth: issuer.introspection_auth,
        cache: Duration::from_secs(issuer.introspection_cache_seconds),
        negative_cache: Duration::from_secs(issuer.introspection_negative_cache_seconds),
        timeout: Duration::from_millis(issuer.introspection_timeout_ms),
    });
}

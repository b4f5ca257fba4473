//! `[[ssf_transmitters]]`: Shared Signals Framework transmitters whose
//! Security Event Tokens revoke tokens here (CAEP, RISC), by push (RFC 8935)
//! or poll (RFC 8936). A transmitter's signing keys are fetched like an
//! issuer's: its `jwks_uri`, or the one its `/.well-known/ssf-configuration`
//! names.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::secrets::{Secret, resolve_secret};
use super::{IssuerConfig, check_url};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransmitterConfig {
    /// Label in metrics and logs.
    pub name: String,
    /// The SETs' `iss`, exactly.
    pub issuer: String,
    /// Absent: discovered from `{issuer}/.well-known/ssf-configuration`.
    pub jwks_uri: Option<String>,
    /// The SETs' `aud` must contain this.
    pub audience: String,
    /// Push: the exact `Authorization` header value the transmitter sends.
    pub authorization: Option<String>,
    pub authorization_env: Option<String>,
    pub authorization_file: Option<PathBuf>,
    /// Poll: the transmitter's RFC 8936 endpoint ("" or absent: push only).
    #[serde(default)]
    pub poll_endpoint: String,
    /// Poll: the `Authorization` header value tokend sends.
    pub poll_authorization: Option<String>,
    pub poll_authorization_env: Option<String>,
    pub poll_authorization_file: Option<PathBuf>,
    #[serde(default = "poll_interval")]
    pub poll_interval_seconds: u64,
    /// Issuer names whose tokens the events revoke.
    #[serde(default)]
    pub applies_to: Vec<String>,
    /// Allowlist for the SETs' `alg` (empty: every asymmetric algorithm).
    #[serde(default)]
    pub algorithms: Vec<String>,
    #[serde(default)]
    pub allow_insecure_http: bool,
    pub ca_file: Option<PathBuf>,

    /// Resolved by `validate`.
    #[serde(skip)]
    pub push_authorization: Option<Secret>,
    #[serde(skip)]
    pub poll_authorization_value: Option<Secret>,
    /// Resolved by `validate`: the transmitter as a key source (an issuer
    /// block of its own, never used to accept tokens).
    #[serde(skip)]
    pub keys: Option<Box<IssuerConfig>>,
}

fn poll_interval() -> u64 {
    5
}

/// Checks every transmitter against the issuers it applies to.
pub(super) fn validate(
    transmitters: &mut [Option<TransmitterConfig>],
    issuers: &[Option<IssuerConfig>],
    errors: &mut Vec<String>,
) {
    let issuer_names: BTreeSet<&str> = issuers.iter().flatten().map(|i| i.name.as_str()).collect();
    let mut names = BTreeSet::new();
    for (i, transmitter) in transmitters.iter_mut().enumerate() {
        let Some(t) = transmitter else { continue };
        let at = format!("ssf_transmitters[{i}]");
        if t.name.is_empty()
            || !t
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(format!(
                "{at}.name: must be non-empty ASCII letters, digits, '-', '_' or '.'"
            ));
        } else if issuer_names.contains(t.name.as_str()) || !names.insert(t.name.clone()) {
            errors.push(format!(
                "{at}.name: {:?} is already an issuer's or another transmitter's name",
                t.name
            ));
        }
        if t.audience.is_empty() {
            errors.push(format!("{at}.audience: must not be empty"));
        }
        if t.applies_to.is_empty() {
            errors.push(format!(
                "{at}.applies_to: name the issuers whose tokens its events revoke"
            ));
        }
        for (j, name) in t.applies_to.iter().enumerate() {
            if !issuer_names.contains(name.as_str()) {
                errors.push(format!("{at}.applies_to[{j}]: no issuer named {name:?}"));
            }
        }
        t.push_authorization = resolve_secret(
            errors,
            &at,
            "authorization",
            t.authorization.as_deref(),
            t.authorization_env.as_deref(),
            t.authorization_file.as_deref(),
        );
        t.poll_authorization_value = resolve_secret(
            errors,
            &at,
            "poll_authorization",
            t.poll_authorization.as_deref(),
            t.poll_authorization_env.as_deref(),
            t.poll_authorization_file.as_deref(),
        );
        let polls = !t.poll_endpoint.is_empty();
        if t.push_authorization.is_none() && !polls {
            errors.push(format!(
                "{at}: set authorization (push: the header the transmitter sends), poll_endpoint (poll), or both"
            ));
        }
        if t.push_authorization
            .as_ref()
            .is_some_and(|s| s.0.len() < 16)
        {
            errors.push(format!(
                "{at}.authorization: at least 16 bytes (it is the only credential of a push)"
            ));
        }
        if polls && t.poll_authorization_value.is_none() {
            errors.push(format!(
                "{at}.poll_authorization: needed to call poll_endpoint"
            ));
        }
        if !(1..=3600).contains(&t.poll_interval_seconds) {
            errors.push(format!(
                "{at}.poll_interval_seconds: must be between 1 and 3600"
            ));
        }
        t.keys = key_issuer(t, &at, errors).map(Box::new);
        if polls && let Some(keys) = &t.keys {
            check_url(
                &at,
                "poll_endpoint",
                &t.poll_endpoint,
                keys.allow_insecure_http,
                errors,
            );
        }
    }
}

/// The transmitter as an issuer block, so its keys are fetched, refreshed
/// and checked exactly as an issuer's are.
fn key_issuer(t: &TransmitterConfig, at: &str, errors: &mut Vec<String>) -> Option<IssuerConfig> {
    let mut table = toml::Table::new();
    table.insert("name".into(), t.name.clone().into());
    table.insert("issuer".into(), t.issuer.clone().into());
    match &t.jwks_uri {
        Some(uri) => table.insert("jwks_uri".into(), uri.clone().into()),
        None => table.insert("discovery".into(), true.into()),
    };
    table.insert(
        "algorithms".into(),
        toml::Value::Array(t.algorithms.iter().map(|a| a.clone().into()).collect()),
    );
    table.insert("allow_insecure_http".into(), t.allow_insecure_http.into());
    if let Some(ca) = &t.ca_file {
        table.insert("ca_file".into(), ca.display().to_string().into());
    }
    let mut issuer: IssuerConfig = match toml::Value::Table(table).try_into() {
        Ok(issuer) => issuer,
        Err(e) => {
            errors.push(format!("{at}: {e}"));
            return None;
        }
    };
    issuer.ssf_discovery = t.jwks_uri.is_none();
    // Its own checks (URLs, algorithms), reported under the transmitter's path.
    let mut found = Vec::new();
    super::issuers::validate_one(&mut issuer, at, &mut found);
    errors.extend(found);
    Some(issuer)
}

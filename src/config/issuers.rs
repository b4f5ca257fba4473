//! `[[issuers]]`: whom tokend trusts, where each issuer's keys come from, and
//! the claim rules it applies to that issuer's tokens.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::defaults;
use super::introspection::{ClientAuth, Introspection};
use super::secrets::{Secret, resolve_secret};
use crate::token::alg::{Algorithm, Family};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Label used in metrics and logs.
    pub name: String,
    /// Exact match with a token's `iss`.
    pub issuer: String,
    /// A cloud's preset (see [`super::providers`]).
    pub provider: Option<super::providers::Provider>,
    /// Other exact spellings of `iss` for this issuer. Revocations and
    /// sessions are kept under `issuer`, whatever a token spells.
    #[serde(default)]
    pub issuer_aliases: Vec<String>,
    /// The claims whose values (a string or an array of strings) `audiences`
    /// is matched against (`["aud"]` unless set or preset).
    #[serde(default)]
    pub audience_claims: Vec<String>,
    /// Claims that must be these exact strings (`{ token_use = "access" }`).
    #[serde(default)]
    pub required_claim_values: std::collections::BTreeMap<String, String>,
    /// Cognito: which tokens this issuer accepts, `access` (default) or `id`.
    pub cognito_token_use: Option<String>,
    /// With `{tenantid}` in `issuer` (or an alias): the tenants whose tokens
    /// pass (`["*"]`: any), each token's `tid` equal to its `iss`'s tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// What `jwks_uri` serves: a JWKS (default) or an X.509 map (Firebase);
    /// or `pem_by_kid`: one PEM key per `kid` at `keys_url_template` (AWS ALB).
    pub keys_format: Option<KeysFormat>,
    /// With `keys_format = "pem_by_kid"`: the key URL, `{kid}` standing for
    /// the token's (validated) `kid`.
    pub keys_url_template: Option<String>,
    /// Protected-header members that must be one of these strings (ALB's
    /// `signer` and `client`), checked after the signature.
    #[serde(default)]
    pub header_claim_values: std::collections::BTreeMap<String, Vec<String>>,
    /// Set by a preset (ALB): segments may carry base64 `=` padding.
    #[serde(skip)]
    pub padded_base64: bool,
    /// Set by a preset (Firebase): `auth_time` must not lie in the future.
    #[serde(skip)]
    pub auth_time_in_past: bool,
    #[serde(default)]
    pub discovery: bool,
    pub jwks_uri: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub hmac_secret: Option<String>,
    pub hmac_secret_env: Option<String>,
    pub hmac_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Allowlist; empty means every asymmetric algorithm (or every HS* one for an HMAC issuer).
    #[serde(default)]
    pub algorithms: Vec<String>,
    #[serde(default = "defaults::leeway")]
    pub leeway_seconds: u64,
    #[serde(default = "defaults::max_lifetime")]
    pub max_lifetime_seconds: u64,
    #[serde(default = "defaults::required_claims")]
    pub required_claims: Vec<String>,
    #[serde(default)]
    pub token_types: Vec<String>,
    #[serde(default)]
    pub allow_insecure_http: bool,
    pub ca_file: Option<PathBuf>,
    /// Refresh bounds: `Cache-Control: max-age` is clamped into [min, max].
    #[serde(default = "defaults::min_refresh")]
    pub min_refresh_seconds: u64,
    #[serde(default = "defaults::max_refresh")]
    pub max_refresh_seconds: u64,
    /// Refresh interval when the JWKS response has no `max-age`.
    #[serde(default = "defaults::refresh")]
    pub refresh_seconds: u64,
    /// Minimum time between refreshes triggered by unknown `kid`s.
    #[serde(default = "defaults::unknown_kid_interval")]
    pub unknown_kid_refresh_seconds: u64,
    /// Total deadline of one fetch (connect, redirects, body).
    #[serde(default = "defaults::fetch_timeout")]
    pub fetch_timeout_seconds: u64,
    #[serde(default = "defaults::max_jwks_bytes")]
    pub max_jwks_bytes: usize,

    /// DPoP (RFC 9449): `off` (a DPoP-bound token is inactive), `allowed`
    /// (bound tokens need their proof), `required` (unbound tokens are inactive).
    #[serde(default)]
    pub dpop: DpopMode,
    /// The oldest DPoP proof `iat` accepted, in seconds.
    #[serde(default = "defaults::dpop_max_age")]
    pub dpop_max_age_seconds: u64,

    /// A JWKS of private keys that open this issuer's encrypted tokens (JWE).
    pub decryption_keys_file: Option<PathBuf>,

    /// Accept OpenID Connect Back-Channel Logout tokens from this issuer.
    #[serde(default)]
    pub backchannel_logout: bool,
    /// A logout token's `aud` must contain one of these (empty: `audiences`).
    #[serde(default)]
    pub logout_audiences: Vec<String>,

    /// RFC 7662 endpoint for opaque tokens (see [`super::introspection`]).
    pub introspection_endpoint: Option<String>,
    /// RFC 7009 endpoint a revocation of this issuer's opaque token is forwarded to.
    pub revocation_endpoint: Option<String>,
    pub introspection_client_id: Option<String>,
    pub introspection_client_secret: Option<String>,
    pub introspection_client_secret_env: Option<String>,
    pub introspection_client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub introspection_auth: ClientAuth,
    #[serde(default = "defaults::introspection_cache")]
    pub introspection_cache_seconds: u64,
    #[serde(default = "defaults::introspection_negative_cache")]
    pub introspection_negative_cache_seconds: u64,
    #[serde(default = "defaults::introspection_timeout_ms")]
    pub introspection_timeout_ms: u64,

    /// Resolved by `validate`: the allowlist as algorithms.
    #[serde(skip)]
    pub allowed: Vec<Algorithm>,
    /// Resolved by `validate`: the HMAC secret's exact bytes.
    #[serde(skip)]
    pub hmac_key: Option<Secret>,
    /// A JWKS given in code (dev mode's built-in issuer), trusted like a key file.
    #[serde(skip)]
    pub inline_jwks: Option<String>,
    /// Resolved by `validate`: how opaque tokens are introspected (`None`: JWTs only).
    #[serde(skip)]
    pub introspection: Option<Introspection>,
    /// Discovery reads `/.well-known/ssf-configuration` (an SSF transmitter's keys).
    #[serde(skip)]
    pub ssf_discovery: bool,
}

/// The placeholder for a token's `kid` in `keys_url_template`.
pub const KID: &str = "{kid}";

/// Whether an issuer's tokens may, must or must not be DPoP-bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopMode {
    Off,
    #[default]
    Allowed,
    Required,
}

/// The document at `jwks_uri`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeysFormat {
    #[default]
    Jwks,
    /// `{"kid": "-----BEGIN CERTIFICATE-----…"}` (Google's service-account keys).
    X509Map,
    /// One PEM public key per `kid`, fetched on first sight (AWS ALB).
    PemByKid,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySourceConfig {
    Discovery,
    /// Shared Signals discovery (`/.well-known/ssf-configuration`).
    SsfDiscovery,
    JwksUri(String),
    /// An X.509 certificate map at this URL.
    X509MapUri(String),
    /// PEM keys by `kid`, at this URL template.
    PemByKid(String),
    JwksFile(PathBuf),
    Inline(String),
    Hmac,
    /// No keys: the issuer's tokens are opaque and introspected.
    None,
}

impl IssuerConfig {
    pub fn key_source(&self) -> KeySourceConfig {
        if self.discovery && self.ssf_discovery {
            KeySourceConfig::SsfDiscovery
        } else if self.discovery {
            KeySourceConfig::Discovery
        } else if let Some(template) = &self.keys_url_template {
            KeySourceConfig::PemByKid(template.clone())
        } else if let Some(uri) = &self.jwks_uri {
            match self.keys_format.unwrap_or_default() {
                KeysFormat::X509Map => KeySourceConfig::X509MapUri(uri.clone()),
                _ => KeySourceConfig::JwksUri(uri.clone()),
            }
        } else if let Some(path) = &self.jwks_file {
            KeySourceConfig::JwksFile(path.clone())
        } else if let Some(jwks) = &self.inline_jwks {
            KeySourceConfig::Inline(jwks.clone())
        } else if self.hmac_key.is_some() {
            KeySourceConfig::Hmac
        } else {
            KeySourceConfig::None
        }
    }
}

/// Checks every issuer (names and `iss` unique), resolving algorithms and
/// secrets; `None` marks an entry that did not parse (its index is kept).
pub(super) fn validate(issuers: &mut [Option<IssuerConfig>], errors: &mut Vec<String>) {
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, issuer) in issuers.iter_mut().enumerate() {
        let Some(issuer) = issuer else { continue };
        let at = format!("issuers[{i}]");
        if !names.insert(issuer.name.clone()) {
            errors.push(format!(
                "{at}.name: duplicate issuer name {:?}",
                issuer.name
            ));
        }
        if issuer.name.is_empty()
            || !issuer
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(format!(
                "{at}.name: must be non-empty ASCII letters, digits, '-', '_' or '.'"
            ));
        }
        if issuer.issuer.is_empty() {
            errors.push(format!("{at}.issuer: must not be empty"));
        } else if !seen.insert(issuer.issuer.clone()) {
            errors.push(format!("{at}.issuer: duplicate issuer {:?}", issuer.issuer));
        }
        validate_one(issuer, &at, errors);
        // After the preset has added its aliases: one spelling, one issuer.
        for (k, alias) in issuer.issuer_aliases.iter().enumerate() {
            // Empty or the issuer itself: reported by the preset checks.
            let own = alias.is_empty() || *alias == issuer.issuer;
            if !own && !seen.insert(alias.clone()) {
                errors.push(format!(
                    "{at}.issuer_aliases[{k}]: {alias:?} names another issuer too"
                ));
            }
        }
    }
}

pub(super) fn validate_one(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    super::providers::apply(issuer, at, errors);
    let hmac_given = [
        issuer.hmac_secret.is_some(),
        issuer.hmac_secret_env.is_some(),
        issuer.hmac_secret_file.is_some(),
    ];
    let sources = [
        issuer.discovery,
        issuer.jwks_uri.is_some(),
        issuer.keys_url_template.is_some(),
        issuer.jwks_file.is_some() || issuer.inline_jwks.is_some(),
        hmac_given.iter().any(|b| *b),
    ];
    match sources.iter().filter(|b| **b).count() {
        1 => {}
        // Opaque tokens only: keys are not needed.
        0 if issuer.introspection_endpoint.is_some() => {}
        0 => errors.push(format!(
            "{at}: no key source; set one of discovery = true, jwks_uri, keys_url_template, jwks_file, hmac_secret(_env/_file) (or introspection_endpoint, for opaque tokens)"
        )),
        _ => errors.push(format!(
            "{at}: more than one key source; set only one of discovery, jwks_uri, keys_url_template, jwks_file, hmac_secret(_env/_file)"
        )),
    }
    if hmac_given.iter().filter(|b| **b).count() > 1 {
        errors.push(format!(
            "{at}: set only one of hmac_secret, hmac_secret_env, hmac_secret_file"
        ));
    }
    let is_hmac = sources[4];
    let allow_http = issuer.allow_insecure_http;
    let check_url = |errors: &mut Vec<String>, key: &str, url: &str| {
        super::check_url(at, key, url, allow_http, errors)
    };
    if issuer.discovery {
        check_url(errors, "issuer", &issuer.issuer);
    }
    if let Some(uri) = &issuer.jwks_uri {
        check_url(errors, "jwks_uri", uri);
    }
    if let Some(template) = &issuer.keys_url_template {
        check_url(errors, "keys_url_template", &template.replace(KID, "kid"));
    }
    super::introspection::validate(issuer, at, errors);
    if let Some(path) = &issuer.jwks_file
        && !path.is_file()
    {
        errors.push(format!(
            "{at}.jwks_file: {} is not a readable file",
            path.display()
        ));
    }
    if let Some(path) = &issuer.ca_file
        && !path.is_file()
    {
        errors.push(format!(
            "{at}.ca_file: {} is not a readable file",
            path.display()
        ));
    }

    // Fetched key sets never hold symmetric keys and an HMAC issuer holds nothing
    // else; a local jwks_file may hold either kind (never both: see KeySet).
    let is_file = sources[3] && !is_hmac;
    let fits = |alg: Algorithm| is_file || is_hmac == (alg.family() == Family::Hmac);
    issuer.allowed.clear();
    for (j, name) in issuer.algorithms.iter().enumerate() {
        match Algorithm::from_name(name) {
            Some(alg) if !fits(alg) => errors.push(format!(
                "{at}.algorithms[{j}]: {name} does not fit this issuer's {} keys",
                if is_hmac { "HMAC" } else { "public" }
            )),
            Some(alg) if !issuer.allowed.contains(&alg) => issuer.allowed.push(alg),
            Some(_) => {}
            None if name.eq_ignore_ascii_case("none") => {
                errors.push(format!("{at}.algorithms[{j}]: \"none\" is never allowed"))
            }
            None => errors.push(format!("{at}.algorithms[{j}]: unknown algorithm {name:?}")),
        }
    }
    if issuer.algorithms.is_empty() {
        issuer.allowed = Algorithm::ALL.into_iter().filter(|a| fits(*a)).collect();
    }

    if is_hmac {
        let secret = resolve_secret(
            errors,
            at,
            "hmac_secret",
            issuer.hmac_secret.as_deref(),
            issuer.hmac_secret_env.as_deref(),
            issuer.hmac_secret_file.as_deref(),
        );
        if let Some(secret) = secret {
            if issuer.algorithms.is_empty() {
                // Unlisted: allow the HS* algorithms this secret is long enough for.
                issuer
                    .allowed
                    .retain(|alg| secret.0.len() >= alg.hmac_min_key_len());
            }
            if issuer.allowed.is_empty() {
                errors.push(format!(
                    "{at}.hmac_secret: {} bytes is shorter than the 32 bytes HS256 needs",
                    secret.0.len()
                ));
            }
            for alg in &issuer.allowed {
                if secret.0.len() < alg.hmac_min_key_len() {
                    errors.push(format!(
                        "{at}.hmac_secret: {} bytes is shorter than the {} bytes {alg} needs",
                        secret.0.len(),
                        alg.hmac_min_key_len()
                    ));
                }
            }
            issuer.hmac_key = Some(secret);
        }
    }

    for (j, claim) in issuer.required_claims.iter().enumerate() {
        if claim.is_empty() {
            errors.push(format!("{at}.required_claims[{j}]: must not be empty"));
        }
    }
    if issuer.unknown_kid_refresh_seconds == 0 || issuer.unknown_kid_refresh_seconds > 86400 {
        errors.push(format!(
            "{at}.unknown_kid_refresh_seconds: must be between 1 and 86400"
        ));
    }
    if issuer.min_refresh_seconds == 0 {
        errors.push(format!("{at}.min_refresh_seconds: must be at least 1"));
    }
    if issuer.min_refresh_seconds > issuer.max_refresh_seconds {
        errors.push(format!(
            "{at}.min_refresh_seconds: must not exceed max_refresh_seconds"
        ));
    }
    if issuer.fetch_timeout_seconds == 0 || issuer.fetch_timeout_seconds > 60 {
        errors.push(format!(
            "{at}.fetch_timeout_seconds: must be between 1 and 60"
        ));
    }
    if issuer.leeway_seconds > 600 {
        errors.push(format!("{at}.leeway_seconds: at most 600"));
    }
    if let Some(path) = &issuer.decryption_keys_file {
        match std::fs::read(path) {
            Err(e) => errors.push(format!(
                "{at}.decryption_keys_file: cannot read {}: {e}",
                path.display()
            )),
            Ok(text) => {
                if let Err(e) = crate::jwe::keys::load_jwks(&text) {
                    errors.push(format!("{at}.decryption_keys_file: {e}"));
                }
            }
        }
    }
    if !(1..=3600).contains(&issuer.dpop_max_age_seconds) {
        errors.push(format!(
            "{at}.dpop_max_age_seconds: must be between 1 and 3600"
        ));
    }
    if issuer.backchannel_logout {
        if issuer.logout_audiences.is_empty() && issuer.audiences.is_empty() {
            errors.push(format!(
                "{at}.backchannel_logout: needs logout_audiences (or audiences): a logout token's aud must name this service"
            ));
        }
        if issuer.key_source() == KeySourceConfig::None {
            errors.push(format!(
                "{at}.backchannel_logout: logout tokens are signed JWTs: the issuer needs a key source"
            ));
        }
    } else if !issuer.logout_audiences.is_empty() {
        errors.push(format!(
            "{at}.logout_audiences: only used with backchannel_logout = true"
        ));
    }
}

impl IssuerConfig {
    /// Whether a token's `iss` names this issuer: `issuer` or an alias.
    pub fn names_iss(&self, iss: &str) -> bool {
        self.issuer == iss || self.issuer_aliases.iter().any(|a| a == iss)
    }

    /// Whom a logout token of this issuer must be addressed to.
    pub fn logout_audiences(&self) -> &[String] {
        if self.logout_audiences.is_empty() {
            &self.audiences
        } else {
            &self.logout_audiences
        }
    }
}

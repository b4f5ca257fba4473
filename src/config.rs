//! Configuration: TOML file, `TOKEND__SECTION__KEY` environment overlay,
//! secrets from env or file, and validation that reports every bad key with
//! its path before anything starts.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::token::alg::{Algorithm, Family};

/// Every problem found in a configuration, each prefixed with its key path.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(e)?;
        }
        Ok(())
    }
}

/// Bytes that must never be printed: HMAC keys, client secrets, passwords.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    #[serde(default)]
    pub revocation: RevocationConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// REST, forward-auth, health and metrics.
    pub http_addr: String,
    /// gRPC API, gRPC health, reflection.
    pub grpc_addr: String,
    /// Optional separate plain listener for `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: String,
    /// Larger tokens are inactive without being parsed.
    pub max_token_bytes: usize,
    /// Most tokens in one `IntrospectBatch`.
    pub max_batch: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// A request head must arrive within this long of connecting (or, on
    /// HTTP/1.1, of the previous response); a connection that sends nothing
    /// at all is closed after it too.
    pub header_read_timeout_seconds: u64,
    /// A connection with no traffic for this long is closed (0: never).
    pub idle_timeout_seconds: u64,
    /// Open connections across the HTTP and gRPC listeners; at the cap the one
    /// quiet longest is closed for a new one. 0: from the open-files limit.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection (HTTP and gRPC).
    pub max_concurrent_streams: u32,
    /// HTTP/2 PING after this long without reads (0: off), and how long the
    /// answer may take before the connection is dropped.
    pub http2_keepalive_interval_seconds: u64,
    pub http2_keepalive_timeout_seconds: u64,
    /// `IntrospectBatch` calls decoded at once; more wait (0: twice the CPUs).
    pub max_concurrent_batches: usize,
    /// TLS (and, with a client CA, mTLS) on the HTTP and gRPC listeners;
    /// `metrics_addr` stays plain for Prometheus and kubelet probes.
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM roots for client certificates; enables mTLS.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse connections without a client certificate (with `client_ca_file`).
    #[serde(default)]
    pub require_client_cert: bool,
    /// How often certificate files are checked for changes (SIGHUP reloads at once).
    #[serde(default = "defaults::tls_poll")]
    pub reload_poll_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_addr: "0.0.0.0:8080".into(),
            grpc_addr: "0.0.0.0:50051".into(),
            metrics_addr: String::new(),
            max_token_bytes: 8192,
            max_batch: 1000,
            shutdown_grace_seconds: 10,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 300,
            max_connections: 0,
            max_concurrent_streams: 128,
            http2_keepalive_interval_seconds: 60,
            http2_keepalive_timeout_seconds: 20,
            max_concurrent_batches: 0,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Label used in metrics and logs.
    pub name: String,
    /// Exact match with a token's `iss`.
    pub issuer: String,
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

    /// Resolved by `validate`: the allowlist as algorithms.
    #[serde(skip)]
    pub allowed: Vec<Algorithm>,
    /// Resolved by `validate`: the HMAC secret's exact bytes.
    #[serde(skip)]
    pub hmac_key: Option<Secret>,
    /// A JWKS given in code (dev mode's built-in issuer), trusted like a key file.
    #[serde(skip)]
    pub inline_jwks: Option<String>,
}

mod defaults {
    pub fn leeway() -> u64 {
        30
    }
    pub fn max_lifetime() -> u64 {
        86400
    }
    pub fn required_claims() -> Vec<String> {
        vec!["exp".into()]
    }
    pub fn min_refresh() -> u64 {
        60
    }
    pub fn max_refresh() -> u64 {
        86400
    }
    pub fn refresh() -> u64 {
        300
    }
    pub fn unknown_kid_interval() -> u64 {
        10
    }
    pub fn fetch_timeout() -> u64 {
        5
    }
    pub fn tls_poll() -> u64 {
        5
    }
    pub fn max_jwks_bytes() -> usize {
        1024 * 1024
    }
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Discovery,
    JwksUri(String),
    JwksFile(PathBuf),
    Inline(String),
    Hmac,
}

impl IssuerConfig {
    pub fn key_source(&self) -> KeySource {
        if self.discovery {
            KeySource::Discovery
        } else if let Some(uri) = &self.jwks_uri {
            KeySource::JwksUri(uri.clone())
        } else if let Some(path) = &self.jwks_file {
            KeySource::JwksFile(path.clone())
        } else if let Some(jwks) = &self.inline_jwks {
            KeySource::Inline(jwks.clone())
        } else {
            KeySource::Hmac
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationConfig {
    pub backend: String,
    pub redis_url: String,
    pub redis_cluster_urls: Vec<String>,
    pub key_prefix: String,
    pub max_staleness_seconds: u64,
    pub on_stale: String,
    pub bulk_entry_ttl_seconds: u64,
    /// Records the Redis change feed keeps; a replica away for longer resyncs fully.
    pub feed_max_len: usize,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            backend: "memory".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster_urls: Vec::new(),
            key_prefix: "tokend:".into(),
            max_staleness_seconds: 30,
            on_stale: "serve".into(),
            bulk_entry_ttl_seconds: 2_592_000,
            feed_max_len: 100_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_entries: 100_000,
        }
    }
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    Introspect,
    Revoke,
    Admin,
}

impl Permission {
    pub fn from_name(name: &str) -> Option<Permission> {
        match name {
            "introspect" => Some(Permission::Introspect),
            "revoke" => Some(Permission::Revoke),
            "admin" => Some(Permission::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    /// Lowercase hex SHA-256 of the secret.
    pub secret_sha256: Option<String>,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub permissions: Vec<String>,
    /// With mTLS: certificate CNs or DNS names that authenticate as this client.
    #[serde(default)]
    pub cert_names: Vec<String>,

    /// Resolved by `validate`: SHA-256 of the secret (absent for certificate-only clients).
    #[serde(skip)]
    pub secret_hash: Option<[u8; 32]>,
    /// Resolved by `validate`.
    #[serde(skip)]
    pub granted: BTreeSet<Permission>,
}

impl Config {
    /// Reads a TOML file, applies the `TOKEND__…` environment overlay and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("{}: cannot read: {e}", path.display())]))?;
        Config::from_toml(&text, std::env::vars())
    }

    /// Parses TOML text, overlays `vars` (only those starting with `TOKEND__`), validates.
    pub fn from_toml(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigErrors(vec![e.to_string()]))?;
        let mut errors = Vec::new();
        for (name, value) in vars {
            if let Some(path) = name.strip_prefix("TOKEND__")
                && let Err(e) = overlay(&mut table, path, &value)
            {
                errors.push(format!("{name}: {e}"));
            }
        }
        let mut config = match Config::deserialize(toml::Value::Table(table)) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e.to_string().trim().to_owned());
                return Err(ConfigErrors(errors));
            }
        };
        config.validate(&mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Validates a configuration built in code (dev mode), resolving secrets and algorithms.
    pub fn validated(mut self) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        self.validate(&mut errors);
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Checks every key, collecting all problems, and resolves secrets and algorithms.
    fn validate(&mut self, errors: &mut Vec<String>) {
        let s = &self.server;
        check_addr(errors, "server.http_addr", &s.http_addr);
        check_addr(errors, "server.grpc_addr", &s.grpc_addr);
        if !s.metrics_addr.is_empty() {
            check_addr(errors, "server.metrics_addr", &s.metrics_addr);
        }
        if s.max_token_bytes == 0 || s.max_token_bytes > 1 << 20 {
            errors.push("server.max_token_bytes: must be between 1 and 1048576".into());
        }
        if let Some(tls) = &s.tls {
            for (key, path) in [
                ("cert_file", Some(&tls.cert_file)),
                ("key_file", Some(&tls.key_file)),
                ("client_ca_file", tls.client_ca_file.as_ref()),
            ] {
                if let Some(path) = path
                    && !path.is_file()
                {
                    errors.push(format!(
                        "server.tls.{key}: {} is not a readable file",
                        path.display()
                    ));
                }
            }
            if tls.require_client_cert && tls.client_ca_file.is_none() {
                errors.push("server.tls.require_client_cert: needs client_ca_file".into());
            }
        }
        if s.max_batch == 0 || s.max_batch > 100_000 {
            errors.push("server.max_batch: must be between 1 and 100000".into());
        }
        if s.header_read_timeout_seconds == 0 || s.header_read_timeout_seconds > 3600 {
            errors.push("server.header_read_timeout_seconds: must be between 1 and 3600".into());
        }
        if s.max_concurrent_streams == 0 {
            errors.push("server.max_concurrent_streams: must be at least 1".into());
        }
        if s.http2_keepalive_interval_seconds > 0 && s.http2_keepalive_timeout_seconds == 0 {
            errors.push(
                "server.http2_keepalive_timeout_seconds: must be at least 1 with keepalive on"
                    .into(),
            );
        }

        let mut names = BTreeSet::new();
        let mut issuers = BTreeSet::new();
        for (i, issuer) in self.issuers.iter_mut().enumerate() {
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
            } else if !issuers.insert(issuer.issuer.clone()) {
                errors.push(format!("{at}.issuer: duplicate issuer {:?}", issuer.issuer));
            }
            validate_issuer(issuer, &at, errors);
        }

        let r = &self.revocation;
        if !matches!(r.backend.as_str(), "memory" | "redis") {
            errors.push(format!(
                "revocation.backend: must be \"memory\" or \"redis\", not {:?}",
                r.backend
            ));
        }
        if !matches!(r.on_stale.as_str(), "serve" | "fail_closed") {
            errors.push(format!(
                "revocation.on_stale: must be \"serve\" or \"fail_closed\", not {:?}",
                r.on_stale
            ));
        }
        if r.backend == "redis" && r.redis_cluster_urls.is_empty() {
            check_redis_url(errors, "revocation.redis_url", &r.redis_url);
        }
        for (i, url) in r.redis_cluster_urls.iter().enumerate() {
            check_redis_url(errors, &format!("revocation.redis_cluster_urls[{i}]"), url);
        }
        if self.cache.max_entries == 0 && self.cache.enabled {
            errors.push("cache.max_entries: must be at least 1 when the cache is enabled".into());
        }

        let mut ids = BTreeSet::new();
        for (i, client) in self.clients.iter_mut().enumerate() {
            let at = format!("clients[{i}]");
            if client.id.is_empty() || client.id.contains(':') {
                errors.push(format!("{at}.id: must be non-empty and contain no ':'"));
            } else if !ids.insert(client.id.clone()) {
                errors.push(format!("{at}.id: duplicate client id {:?}", client.id));
            }
            validate_client(client, &at, errors);
        }
    }
}

fn validate_issuer(issuer: &mut IssuerConfig, at: &str, errors: &mut Vec<String>) {
    let hmac_given = [
        issuer.hmac_secret.is_some(),
        issuer.hmac_secret_env.is_some(),
        issuer.hmac_secret_file.is_some(),
    ];
    let sources = [
        issuer.discovery,
        issuer.jwks_uri.is_some(),
        issuer.jwks_file.is_some() || issuer.inline_jwks.is_some(),
        hmac_given.iter().any(|b| *b),
    ];
    match sources.iter().filter(|b| **b).count() {
        1 => {}
        0 => errors.push(format!(
            "{at}: no key source; set one of discovery = true, jwks_uri, jwks_file, hmac_secret(_env/_file)"
        )),
        _ => errors.push(format!(
            "{at}: more than one key source; set only one of discovery, jwks_uri, jwks_file, hmac_secret(_env/_file)"
        )),
    }
    if hmac_given.iter().filter(|b| **b).count() > 1 {
        errors.push(format!(
            "{at}: set only one of hmac_secret, hmac_secret_env, hmac_secret_file"
        ));
    }
    let is_hmac = sources[3];
    let check_url = |errors: &mut Vec<String>, key: &str, url: &str| match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && issuer.allow_insecure_http => {}
        Ok(u) if u.scheme() == "http" => errors.push(format!(
            "{at}.{key}: http:// needs allow_insecure_http = true (loopback tests and dev only)"
        )),
        Ok(_) => errors.push(format!("{at}.{key}: must be an https:// URL")),
        Err(e) => errors.push(format!("{at}.{key}: not a URL: {e}")),
    };
    if issuer.discovery {
        check_url(errors, "issuer", &issuer.issuer);
    }
    if let Some(uri) = &issuer.jwks_uri {
        check_url(errors, "jwks_uri", uri);
    }
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
    let is_file = sources[2] && !is_hmac;
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
}

fn validate_client(client: &mut ClientConfig, at: &str, errors: &mut Vec<String>) {
    let given = [
        client.secret_sha256.is_some(),
        client.secret.is_some(),
        client.secret_env.is_some(),
        client.secret_file.is_some(),
    ];
    let secrets = given.iter().filter(|b| **b).count();
    if secrets > 1 || (secrets == 0 && client.cert_names.is_empty()) {
        errors.push(format!(
            "{at}: set exactly one of secret_sha256, secret, secret_env, secret_file (or only cert_names, with mTLS)"
        ));
    } else if let Some(hex_hash) = &client.secret_sha256 {
        let ok = hex_hash.len() == 64
            && hex_hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match hex::decode(hex_hash) {
            Ok(bytes) if ok => {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&bytes);
                client.secret_hash = Some(hash);
            }
            _ => errors.push(format!(
                "{at}.secret_sha256: must be 64 lowercase hex digits"
            )),
        }
    } else if let Some(secret) = resolve_secret(
        errors,
        at,
        "secret",
        client.secret.as_deref(),
        client.secret_env.as_deref(),
        client.secret_file.as_deref(),
    ) {
        if secret.0.is_empty() {
            errors.push(format!("{at}.secret: must not be empty"));
        }
        client.secret_hash = Some(crate::token::sha256(&secret.0));
    }
    if client.cert_names.iter().any(String::is_empty) {
        errors.push(format!("{at}.cert_names: names must not be empty"));
    }
    client.granted.clear();
    for (j, name) in client.permissions.iter().enumerate() {
        match Permission::from_name(name) {
            Some(p) => {
                client.granted.insert(p);
            }
            None => errors.push(format!(
                "{at}.permissions[{j}]: unknown permission {name:?} (introspect, revoke, admin)"
            )),
        }
    }
}

/// Reads a secret given inline, by environment variable name, or by file path
/// (exact bytes, no newline trimming).
fn resolve_secret(
    errors: &mut Vec<String>,
    at: &str,
    key: &str,
    inline: Option<&str>,
    env: Option<&str>,
    file: Option<&Path>,
) -> Option<Secret> {
    if let Some(value) = inline {
        return Some(Secret(value.as_bytes().to_vec()));
    }
    if let Some(var) = env {
        return match std::env::var_os(var) {
            Some(v) => Some(Secret(v.into_encoded_bytes())),
            None => {
                errors.push(format!(
                    "{at}.{key}_env: environment variable {var} is not set"
                ));
                None
            }
        };
    }
    if let Some(path) = file {
        return match std::fs::read(path) {
            Ok(bytes) => Some(Secret(bytes)),
            Err(e) => {
                errors.push(format!(
                    "{at}.{key}_file: cannot read {}: {e}",
                    path.display()
                ));
                None
            }
        };
    }
    None
}

fn check_addr(errors: &mut Vec<String>, key: &str, value: &str) {
    if value.parse::<SocketAddr>().is_err() {
        errors.push(format!(
            "{key}: {value:?} is not an address like 0.0.0.0:8080"
        ));
    }
}

fn check_redis_url(errors: &mut Vec<String>, key: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") => {}
        _ => errors.push(format!(
            "{key}: {value:?} is not a redis:// or rediss:// URL"
        )),
    }
}

/// Applies one `TOKEND__A__B__0__C=value` override to the table.
fn overlay(table: &mut toml::Table, path: &str, raw: &str) -> Result<(), String> {
    let segments: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err("empty path segment".into());
    }
    let value = parse_env_value(raw);
    let mut current = TargetMut::Table(table);
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        let next_is_index = segments
            .get(i + 1)
            .is_some_and(|s| s.parse::<usize>().is_ok());
        let fresh = || {
            if next_is_index {
                toml::Value::Array(Vec::new())
            } else {
                toml::Value::Table(toml::Table::new())
            }
        };
        let slot: &mut toml::Value = match current {
            TargetMut::Table(t) => {
                if i == last {
                    t.insert(seg.clone(), value);
                    return Ok(());
                }
                t.entry(seg.clone()).or_insert_with(fresh)
            }
            TargetMut::Array(a) => {
                let idx: usize = seg
                    .parse()
                    .map_err(|_| format!("{seg:?} is not an array index"))?;
                if idx > a.len() {
                    return Err(format!("index {idx} skips entries (array has {})", a.len()));
                }
                if i == last {
                    if idx == a.len() {
                        a.push(value)
                    } else {
                        a[idx] = value
                    }
                    return Ok(());
                }
                if idx == a.len() {
                    a.push(fresh());
                }
                &mut a[idx]
            }
        };
        current = match slot {
            toml::Value::Table(t) => TargetMut::Table(t),
            toml::Value::Array(a) => TargetMut::Array(a),
            _ => return Err(format!("{seg:?} is not a table or array")),
        };
    }
    Ok(())
}

enum TargetMut<'a> {
    Table(&'a mut toml::Table),
    Array(&'a mut Vec<toml::Value>),
}

/// An environment value is read as TOML (`30`, `true`, `["a","b"]`), else as a string.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[issuers]]
name = "main"
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/certs"
algorithms = ["RS256"]
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_fill_what_is_not_set() {
        let c = Config::from_toml(BASE, env(&[])).unwrap();
        assert_eq!(c.server.http_addr, "0.0.0.0:8080");
        assert_eq!(c.server.max_token_bytes, 8192);
        assert_eq!(c.issuers[0].leeway_seconds, 30);
        assert_eq!(c.issuers[0].allowed, vec![Algorithm::RS256]);
        assert_eq!(c.revocation.backend, "memory");
    }

    #[test]
    fn env_overrides_reach_tables_and_array_entries() {
        let c = Config::from_toml(
            BASE,
            env(&[
                ("TOKEND__SERVER__HTTP_ADDR", "127.0.0.1:9999"),
                ("TOKEND__SERVER__MAX_BATCH", "5"),
                ("TOKEND__ISSUERS__0__AUDIENCES", r#"["a","b"]"#),
                ("TOKEND__ISSUERS__0__LEEWAY_SECONDS", "5"),
                ("OTHER__SERVER__HTTP_ADDR", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.http_addr, "127.0.0.1:9999");
        assert_eq!(c.server.max_batch, 5);
        assert_eq!(c.issuers[0].audiences, vec!["a", "b"]);
        assert_eq!(c.issuers[0].leeway_seconds, 5);
    }

    #[test]
    fn every_error_is_reported_with_its_key_path() {
        let text = r#"
[server]
http_addr = "nowhere"
[[issuers]]
name = "a"
issuer = "https://a"
jwks_uri = "http://a/keys"
algorithms = ["RS256", "RS999", "none", "HS256"]
[[issuers]]
name = "a"
issuer = "https://b"
[[clients]]
id = "gw"
secret_sha256 = "ABC"
permissions = ["introspect", "root"]
"#;
        let errors = Config::from_toml(text, env(&[])).unwrap_err().0;
        let expect = [
            "server.http_addr:",
            "issuers[0].jwks_uri: http:// needs allow_insecure_http",
            "issuers[0].algorithms[1]: unknown algorithm \"RS999\"",
            "issuers[0].algorithms[2]: \"none\" is never allowed",
            "issuers[0].algorithms[3]: HS256 does not fit",
            "issuers[1].name: duplicate issuer name",
            "issuers[1]: no key source",
            "clients[0].secret_sha256:",
            "clients[0].permissions[1]: unknown permission \"root\"",
        ];
        for e in expect {
            assert!(
                errors.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::from_toml("[server]\nhttp_adr = \"x\"", env(&[])).unwrap_err();
        assert!(err.to_string().contains("http_adr"), "{err}");
    }

    #[test]
    fn secrets_from_file_keep_exact_bytes() {
        let dir = std::env::temp_dir().join(format!("tokend-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hs.key");
        let secret = b"0123456789abcdef0123456789abcdef\n";
        std::fs::write(&path, secret).unwrap();
        let text = format!(
            "[[issuers]]\nname = \"h\"\nissuer = \"h\"\nhmac_secret_file = {:?}\nalgorithms = [\"HS256\"]\n",
            path.display().to_string()
        );
        let c = Config::from_toml(&text, env(&[])).unwrap();
        assert_eq!(c.issuers[0].hmac_key.as_ref().unwrap().0, secret.to_vec());
        assert_eq!(
            format!("{:?}", c.issuers[0].hmac_key),
            "Some(Secret(<33 bytes>))"
        );
    }
}

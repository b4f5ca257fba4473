//! Configuration: a TOML file with a `TOKEND__SECTION__KEY` environment
//! overlay ([`env`]), read section by section so that every problem —
//! a missing key, a wrong type, an unknown key, a bad value — is reported
//! with its key path before anything starts. One file per section.

mod assertion;
mod cache;
mod clients;
mod effective;
mod env;
mod introspection;
mod issuers;
pub mod providers;
mod revocation;
mod routes;
mod secrets;
mod server;
mod ssf;

pub use assertion::AssertionConfig;
pub use cache::CacheConfig;
pub use clients::{ClientConfig, Permission};
pub use introspection::{ClientAuth, Endpoint, Introspection};
pub use issuers::{DpopMode, IssuerConfig, KID, KeySourceConfig, KeysFormat};
pub use providers::Provider;
pub use revocation::{Backend, OnStale, RevocationConfig};
pub use routes::{AuthorizationConfig, DefaultDecision, RouteConfig, TokenSourceSpec};
pub use secrets::Secret;
pub use server::{ServerConfig, TlsConfig};
pub use ssf::TransmitterConfig;

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::Path;

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

/// The whole configuration, validated: every secret resolved, every
/// algorithm name parsed.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub issuers: Vec<IssuerConfig>,
    pub revocation: RevocationConfig,
    pub cache: CacheConfig,
    pub clients: Vec<ClientConfig>,
    pub authorization: AuthorizationConfig,
    pub routes: Vec<RouteConfig>,
    pub assertion: AssertionConfig,
    pub ssf_transmitters: Vec<TransmitterConfig>,
}

impl Config {
    /// Reads a TOML file, applies the `TOKEND__…` environment overlay and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("{}: cannot read: {e}", path.display())]))?;
        Config::from_toml(&text, std::env::vars())
    }

    /// Parses TOML text, overlays `vars` (only those starting with `TOKEND__`),
    /// reads each section and validates, reporting every problem at once.
    pub fn from_toml(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigErrors(vec![e.to_string().trim().to_owned()]))?;
        let mut errors = Vec::new();
        for (name, value) in vars {
            if let Some(path) = name.strip_prefix("TOKEND__")
                && let Err(e) = env::overlay(&mut table, path, &value)
            {
                errors.push(format!("{name}: {e}"));
            }
        }
        let server = section(&mut table, "server", &mut errors);
        let mut issuers = list(&mut table, "issuers", &mut errors);
        let revocation = section(&mut table, "revocation", &mut errors);
        let cache = section(&mut table, "cache", &mut errors);
        let mut clients = list(&mut table, "clients", &mut errors);
        let mut authorization = section(&mut table, "authorization", &mut errors);
        let routes = list(&mut table, "routes", &mut errors);
        let mut assertion = section(&mut table, "assertion", &mut errors);
        let mut transmitters = list(&mut table, "ssf_transmitters", &mut errors);
        for key in table.keys() {
            errors.push(format!(
                "{key}: unknown section (server, issuers, revocation, cache, clients, authorization, routes, assertion, ssf_transmitters)"
            ));
        }
        server::validate(&server, &mut errors);
        issuers::validate(&mut issuers, &mut errors);
        revocation::validate(&revocation, &mut errors);
        cache::validate(&cache, &mut errors);
        clients::validate(&mut clients, &mut errors);
        validate_edge(
            &mut authorization,
            &routes,
            &mut assertion,
            &issuers,
            &mut errors,
        );
        ssf::validate(&mut transmitters, &issuers, &mut errors);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            ssf_transmitters: transmitters.into_iter().flatten().collect(),
            server,
            issuers: issuers.into_iter().flatten().collect(),
            revocation,
            cache,
            clients: clients.into_iter().flatten().collect(),
            authorization,
            routes: routes.into_iter().flatten().collect(),
            assertion,
        })
    }

    /// Validates a configuration built in code (dev mode), resolving secrets and algorithms.
    pub fn validated(mut self) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut issuers: Vec<_> = self.issuers.into_iter().map(Some).collect();
        let mut clients: Vec<_> = self.clients.into_iter().map(Some).collect();
        let routes: Vec<_> = self.routes.into_iter().map(Some).collect();
        let mut transmitters: Vec<_> = self.ssf_transmitters.into_iter().map(Some).collect();
        server::validate(&self.server, &mut errors);
        issuers::validate(&mut issuers, &mut errors);
        revocation::validate(&self.revocation, &mut errors);
        cache::validate(&self.cache, &mut errors);
        clients::validate(&mut clients, &mut errors);
        validate_edge(
            &mut self.authorization,
            &routes,
            &mut self.assertion,
            &issuers,
            &mut errors,
        );
        ssf::validate(&mut transmitters, &issuers, &mut errors);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            ssf_transmitters: transmitters.into_iter().flatten().collect(),
            issuers: issuers.into_iter().flatten().collect(),
            clients: clients.into_iter().flatten().collect(),
            routes: routes.into_iter().flatten().collect(),
            ..self
        })
    }
}

/// `[authorization]`, `[[routes]]` (whose issuer names must exist) and `[assertion]`.
fn validate_edge(
    authorization: &mut AuthorizationConfig,
    routes: &[Option<RouteConfig>],
    assertion: &mut AssertionConfig,
    issuers: &[Option<IssuerConfig>],
    errors: &mut Vec<String>,
) {
    let preset_headers: Vec<&str> = issuers
        .iter()
        .flatten()
        .filter_map(|i| i.provider?.token_header())
        .collect();
    routes::validate_authorization(authorization, &preset_headers, errors);
    let names = issuers.iter().flatten().map(|i| i.name.as_str()).collect();
    routes::validate_routes(routes, &names, errors);
    assertion::validate(assertion, errors);
}

/// One `[section]`, its defaults when absent; on error, reported and defaulted.
fn section<T: DeserializeOwned + Default>(
    table: &mut toml::Table,
    key: &str,
    errors: &mut Vec<String>,
) -> T {
    match table.remove(key) {
        None => T::default(),
        Some(value) => read(value, key, errors).unwrap_or_default(),
    }
}

/// One `[[section]]` array, entry by entry: an entry that does not parse is
/// `None`, so the others keep their indices in later messages.
fn list<T: DeserializeOwned>(
    table: &mut toml::Table,
    key: &str,
    errors: &mut Vec<String>,
) -> Vec<Option<T>> {
    match table.remove(key) {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| read(item, &format!("{key}[{i}]"), errors))
            .collect(),
        Some(_) => {
            errors.push(format!("{key}: must be an array of tables ([[{key}]])"));
            Vec::new()
        }
    }
}

/// Deserializes `value`, turning serde's message into `path: problem`.
/// serde stops at a table's first problem; to report the others too, the
/// offending key is taken out and the table read again (a bounded number of
/// times). The item is `None` if anything was wrong with it.
fn read<T: DeserializeOwned>(value: toml::Value, at: &str, errors: &mut Vec<String>) -> Option<T> {
    let mut value = value;
    let mut removed: Vec<String> = Vec::new();
    loop {
        let e = match serde_path_to_error::deserialize(value.clone()) {
            Ok(t) => return removed.is_empty().then_some(t),
            Err(e) => e,
        };
        let inner = e.inner().to_string();
        // toml appends "in `key`"; the path says it better.
        let inner = inner.split("\nin `").next().unwrap_or("").trim();
        let mut path = at.to_owned();
        let within = e.path().to_string();
        if within != "." {
            path = format!("{path}.{within}");
        }
        if let Some(field) = backticked(inner, "missing field `") {
            // A key taken out below was present, only wrong: said already.
            let key = if within == "." {
                field.to_owned()
            } else {
                format!("{within}.{field}")
            };
            if !removed.contains(&key) {
                errors.push(format!("{path}.{field}: missing"));
            }
            return None;
        }
        errors.push(if inner.starts_with("unknown field `") {
            // The path already ends at the unknown key.
            let expected = inner.split_once(", expected ").map_or("", |(_, e)| e);
            format!("{path}: unknown key (expected {expected})")
        } else {
            format!("{path}: {inner}")
        });
        if removed.len() >= 16 || !remove_at(&mut value, e.path()) {
            return None;
        }
        removed.push(within);
    }
}

/// Takes out the key a serde path ends at (for a path into an array, the
/// array's own key, so no later index shifts). False if there is none.
fn remove_at(value: &mut toml::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let keys: Vec<&str> = path
        .iter()
        .map_while(|segment| match segment {
            Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = keys.split_last() else {
        return false;
    };
    let mut table = value;
    for key in parents {
        match table.get_mut(*key) {
            Some(inner) => table = inner,
            None => return false,
        }
    }
    table
        .as_table_mut()
        .is_some_and(|t| t.remove(*last).is_some())
}

/// The name in "`prefix`name` …" messages.
fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// A URL tokend will fetch or post to: `https`, or `http` where the block
/// allows it (`allow_insecure_http`: loopback tests and dev).
pub(super) fn check_url(
    at: &str,
    key: &str,
    url: &str,
    allow_http: bool,
    errors: &mut Vec<String>,
) {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && allow_http => {}
        Ok(u) if u.scheme() == "http" => errors.push(format!(
            "{at}.{key}: http:// needs allow_insecure_http = true (loopback tests and dev only)"
        )),
        Ok(_) => errors.push(format!("{at}.{key}: must be an https:// URL")),
        Err(e) => errors.push(format!("{at}.{key}: not a URL: {e}")),
    }
}

/// Defaults shared by the section structs.
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
    pub fn dpop_max_age() -> u64 {
        60
    }
    pub fn introspection_cache() -> u64 {
        60
    }
    pub fn introspection_negative_cache() -> u64 {
        5
    }
    pub fn introspection_timeout_ms() -> u64 {
        1500
    }
    pub fn max_jwks_bytes() -> usize {
        1024 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Algorithm;

    const BASE: &str = r#"
[[issuers]]
name = "main"
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/certs"
algorithms = ["RS256"]
"#;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_fill_what_is_not_set() {
        let c = Config::from_toml(BASE, vars(&[])).unwrap();
        assert_eq!(c.server.http_addr, "0.0.0.0:8080");
        assert_eq!(c.server.max_token_bytes, 8192);
        assert_eq!(c.issuers[0].leeway_seconds, 30);
        assert_eq!(c.issuers[0].allowed, vec![Algorithm::RS256]);
        assert_eq!(c.revocation.backend, Backend::Memory);
    }

    #[test]
    fn env_overrides_reach_tables_and_array_entries() {
        let c = Config::from_toml(
            BASE,
            vars(&[
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
        let errors = Config::from_toml(text, vars(&[])).unwrap_err().0;
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
        assert_exactly(&errors, &expect);
    }

    /// Missing keys, wrong types and unknown keys from serde, every one with
    /// its index and key, beside the value checks of the same file.
    #[test]
    fn parse_errors_are_collected_with_key_paths() {
        let text = r#"
[server]
max_batch = "many"
[[issuers]]
name = "a"
issuer = "https://a"
jwks_uri = "https://a/keys"
[[issuers]]
name = "b"
jwks_uri = "https://b/keys"
leeway_seconds = "x"
unknown = 1
[[issuers]]
name = "c"
issuer = "https://c"
leeway_seconds = -1
jwks_uri = "https://c/keys"
[[issuers]]
name = "d"
issuer = "https://d"
discovery = true
jwks_uri = "https://d/keys"
[revocation]
backend = "postgres"
[[clients]]
id = "x"
secret = "s"
colour = "blue"
[extra]
"#;
        let errors = Config::from_toml(text, vars(&[("TOKEND__CACHE__ENABLED", "sometimes")]))
            .unwrap_err()
            .0;
        let expect = [
            "server.max_batch: invalid type: string \"many\"",
            "issuers[1].issuer: missing",
            "issuers[1].leeway_seconds: invalid type: string \"x\"",
            "issuers[1].unknown: unknown key",
            "issuers[2].leeway_seconds: invalid value: integer `-1`",
            "issuers[3]: more than one key source",
            "revocation.backend: unknown variant `postgres`, expected `memory` or `redis`",
            "cache.enabled: invalid type: string \"sometimes\", expected a boolean",
            "clients[0].colour: unknown key",
            "extra: unknown section",
        ];
        assert_exactly(&errors, &expect);
    }

    /// Each expected message begins one error, and there are no others.
    fn assert_exactly(errors: &[String], expect: &[&str]) {
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
        let err = Config::from_toml("[server]\nhttp_adr = \"x\"", vars(&[])).unwrap_err();
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
        let c = Config::from_toml(&text, vars(&[])).unwrap();
        assert_eq!(c.issuers[0].hmac_key.as_ref().unwrap().0, secret.to_vec());
        assert_eq!(
            format!("{:?}", c.issuers[0].hmac_key),
            "Some(Secret(<33 bytes>))"
        );
    }
}

//! `[authorization]` and `[[routes]]`: which requests need what. Checked here
//! with key paths; compiled into matchers by [`crate::authz`].

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// What a request that matches no route gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultDecision {
    /// Any active token is enough.
    #[default]
    AllowActive,
    /// 403 for every unmatched request.
    Deny,
}

/// Where `/auth` and Envoy `Check` look for the token, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSourceSpec {
    /// `header:NAME`; for `authorization`, the `Bearer` scheme's token,
    /// otherwise the whole value (ALB's `x-amzn-oidc-data`, IAP's
    /// `x-goog-iap-jwt-assertion`).
    Header(String),
    Cookie(String),
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    #[serde(default)]
    pub default: DefaultDecision,
    /// Where the token is looked for, in order. Unset: `Authorization`,
    /// then the headers of the issuers' presets (ALB's, IAP's), resolved
    /// into `sources`.
    #[serde(default)]
    pub token_sources: Option<Vec<String>>,
    /// The header a gateway puts the client's certificate in, for
    /// certificate-bound tokens (RFC 8705): Envoy's `x-forwarded-client-cert`
    /// (`Hash=`/`Cert=`), or a URL-encoded PEM as nginx's `$ssl_client_escaped_cert`.
    #[serde(default)]
    pub client_cert_header: Option<String>,
    /// Resolved by `validate`.
    #[serde(skip)]
    pub sources: Vec<TokenSourceSpec>,
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        AuthorizationConfig {
            default: DefaultDecision::AllowActive,
            token_sources: None,
            client_cert_header: None,
            sources: vec![TokenSourceSpec::Header("authorization".into())],
        }
    }
}

/// As written in `token_sources`.
impl std::fmt::Display for TokenSourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSourceSpec::Header(name) => write!(f, "header:{name}"),
            TokenSourceSpec::Cookie(name) => write!(f, "cookie:{name}"),
            TokenSourceSpec::Query(name) => write!(f, "query:{name}"),
        }
    }
}

impl TokenSourceSpec {
    /// `header:NAME`, `cookie:NAME` or `query:NAME`.
    pub fn parse(spec: &str) -> Option<TokenSourceSpec> {
        match spec.split_once(':')? {
            ("header", name) if is_token(name) => {
                Some(TokenSourceSpec::Header(name.to_ascii_lowercase()))
            }
            ("cookie", name) if is_token(name) => Some(TokenSourceSpec::Cookie(name.into())),
            ("query", name) if is_query_name(name) => Some(TokenSourceSpec::Query(name.into())),
            _ => None,
        }
    }
}

/// Unset `token_sources`: `Authorization`, then the header each preset's
/// tokens travel in (ALB's, IAP's). `Authorization` stays first so that a
/// configuration gaining a preset judges the same credential as before
/// whenever a request carries one.
fn default_token_sources(preset_headers: &[&str]) -> Vec<String> {
    let mut sources = vec!["header:authorization".to_owned()];
    for header in preset_headers {
        let spec = format!("header:{header}");
        if !sources.contains(&spec) {
            sources.push(spec);
        }
    }
    sources
}

/// One `[[routes]]` entry. A list key left out matches anything; given, it
/// must not be empty (an empty list would match nothing).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub hosts: Option<Vec<String>>,
    pub path: Option<String>,
    pub path_prefix: Option<String>,
    pub methods: Option<Vec<String>>,
    pub issuers: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    #[serde(default)]
    pub scopes_all: Vec<String>,
    #[serde(default)]
    pub scopes_any: Vec<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub anonymous: bool,
}

pub(super) fn validate_authorization(
    authz: &mut AuthorizationConfig,
    preset_headers: &[&str],
    errors: &mut Vec<String>,
) {
    if let Some(name) = &mut authz.client_cert_header {
        *name = name.to_ascii_lowercase();
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(format!(
                "authorization.client_cert_header: {name:?} is not a header name"
            ));
        }
    }
    authz.sources.clear();
    let token_sources = match &authz.token_sources {
        Some(sources) => sources.clone(),
        None => default_token_sources(preset_headers),
    };
    if token_sources.is_empty() {
        errors.push("authorization.token_sources: empty (no token would ever be found)".into());
    }
    for (i, spec) in token_sources.iter().enumerate() {
        let at = format!("authorization.token_sources[{i}]");
        let parsed = TokenSourceSpec::parse(spec);
        match parsed {
            Some(source) if authz.sources.contains(&source) => {
                errors.push(format!("{at}: {spec:?} listed twice"))
            }
            Some(source) => authz.sources.push(source),
            None => errors.push(format!(
                "{at}: {spec:?} is not header:NAME, cookie:NAME or query:NAME"
            )),
        }
    }
}

/// Checks every route against itself and the issuer names.
pub(super) fn validate_routes(
    routes: &[Option<RouteConfig>],
    issuer_names: &BTreeSet<&str>,
    errors: &mut Vec<String>,
) {
    let mut names = BTreeSet::new();
    for (i, route) in routes.iter().enumerate() {
        let Some(route) = route else { continue };
        let at = format!("routes[{i}]");
        if !route_name_ok(&route.name) {
            errors.push(format!(
                "{at}.name: {:?} must be letters, digits, '-', '_' or '.'",
                route.name
            ));
        } else if route.name == "default" {
            errors.push(format!(
                "{at}.name: \"default\" is the label of unmatched requests"
            ));
        } else if !names.insert(route.name.as_str()) {
            errors.push(format!("{at}.name: duplicate route name {:?}", route.name));
        }
        validate_route(route, &at, issuer_names, errors);
    }
}

fn validate_route(
    route: &RouteConfig,
    at: &str,
    issuer_names: &BTreeSet<&str>,
    errors: &mut Vec<String>,
) {
    let mut list =
        |key: &str, values: &Option<Vec<String>>, check: &dyn Fn(&str) -> Option<String>| {
            let Some(values) = values else { return };
            if values.is_empty() {
                errors.push(format!(
                    "{at}.{key}: empty list matches nothing (leave the key out to match any)"
                ));
            }
            for (j, v) in values.iter().enumerate() {
                if let Some(problem) = check(v) {
                    errors.push(format!("{at}.{key}[{j}]: {problem}"));
                }
            }
        };
    list("hosts", &route.hosts, &|h| {
        (!host_pattern_ok(h))
            .then(|| format!("bad host pattern {h:?} (a DNS name, or \"*.\" and one, no port)"))
    });
    list("methods", &route.methods, &|m| {
        (!is_token(m)).then(|| format!("bad method {m:?}"))
    });
    list("issuers", &route.issuers, &|name| {
        (!issuer_names.contains(name)).then(|| format!("unknown issuer {name:?}"))
    });
    list("audiences", &route.audiences, &|a| {
        a.is_empty().then(|| "empty audience".to_owned())
    });
    for (key, scopes) in [
        ("scopes_all", &route.scopes_all),
        ("scopes_any", &route.scopes_any),
    ] {
        for (j, scope) in scopes.iter().enumerate() {
            if !scope_token(scope) {
                errors.push(format!(
                    "{at}.{key}[{j}]: {scope:?} is not one scope (RFC 6749 §3.3: no spaces, quotes or backslashes)"
                ));
            }
        }
    }
    for (path, value) in &route.claims {
        if path.is_empty() || path.split('.').any(str::is_empty) {
            errors.push(format!("{at}.claims: bad claim path {path:?}"));
        }
        let scalar = matches!(
            value,
            serde_json::Value::String(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)
        );
        if !scalar {
            errors.push(format!(
                "{at}.claims.{path}: must be a string, number or boolean"
            ));
        }
    }
    match (&route.path, &route.path_prefix) {
        (Some(_), Some(_)) => errors.push(format!("{at}: set path or path_prefix, not both")),
        (Some(p), None) => check_route_path(p, &format!("{at}.path"), errors),
        (None, Some(p)) => check_route_path(p, &format!("{at}.path_prefix"), errors),
        (None, None) => {}
    }
    let requirements = route.issuers.is_some()
        || route.audiences.is_some()
        || !route.scopes_all.is_empty()
        || !route.scopes_any.is_empty()
        || !route.claims.is_empty();
    if route.anonymous && requirements {
        errors.push(format!(
            "{at}.anonymous: a public route takes no token, so it cannot require issuers, audiences, scopes or claims"
        ));
    }
}

/// A route's path must be one the normalizer can produce, or it would never match.
fn check_route_path(path: &str, at: &str, errors: &mut Vec<String>) {
    match crate::request::normalize_path(path) {
        Ok(normal) if normal == path => {}
        Ok(normal) => errors.push(format!(
            "{at}: {path:?} never matches as written; requests are compared in normal form {normal:?}"
        )),
        Err(e) => errors.push(format!("{at}: {path:?}: {e}")),
    }
}

/// RFC 6749 §3.3 `scope-token`: printable ASCII but space, `"` and `\\`.
fn scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn route_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An RFC 9110 token: header names, cookie names and methods.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_query_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// `api.example.com`, or `*.example.com` (the `*` standing for one label).
fn host_pattern_ok(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

//! One `[[routes]]` entry compiled: what request it matches, and what an
//! active token must carry to pass it.

use axum::http::HeaderValue;
use serde_json::Value;

use crate::config::RouteConfig;
use crate::keys::IssuerId;
use crate::request::{Target, under_prefix};
use crate::verify::Verified;

#[derive(Debug)]
enum PathMatch {
    Any,
    Exact(String),
    Prefix(String),
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub anonymous: bool,
    hosts: Option<Vec<String>>,
    path: PathMatch,
    methods: Option<Vec<String>>,
    issuers: Option<Vec<IssuerId>>,
    audiences: Option<Vec<String>>,
    pub scopes_all: Vec<String>,
    pub scopes_any: Vec<String>,
    claims: Vec<(String, Value)>,
    /// `Bearer error="insufficient_scope", scope="…"`, built once.
    pub challenge: HeaderValue,
}

/// The first requirement an active token failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmet<'r> {
    Issuer,
    Audience,
    ScopesAll,
    ScopesAny,
    Claim(&'r str),
}

impl Route {
    /// `issuer_id` maps the issuer names config validation already checked.
    pub fn compile(config: &RouteConfig, issuer_id: impl Fn(&str) -> Option<IssuerId>) -> Route {
        let upper = |v: &Vec<String>| v.iter().map(|m| m.to_ascii_uppercase()).collect();
        let lower = |v: &Vec<String>| v.iter().map(|m| m.to_ascii_lowercase()).collect();
        let path = match (&config.path, &config.path_prefix) {
            (Some(p), _) => PathMatch::Exact(p.clone()),
            (None, Some(p)) => PathMatch::Prefix(p.clone()),
            (None, None) => PathMatch::Any,
        };
        let scopes = if config.scopes_all.is_empty() {
            &config.scopes_any
        } else {
            &config.scopes_all
        };
        Route {
            name: config.name.clone(),
            anonymous: config.anonymous,
            hosts: config.hosts.as_ref().map(lower),
            path,
            methods: config.methods.as_ref().map(upper),
            issuers: config
                .issuers
                .as_ref()
                .map(|names| names.iter().filter_map(|n| issuer_id(n)).collect()),
            audiences: config.audiences.clone(),
            scopes_all: config.scopes_all.clone(),
            scopes_any: config.scopes_any.clone(),
            claims: config
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            challenge: insufficient_scope(Some(&scopes.join(" "))),
        }
    }

    /// Whether this route is about the request.
    pub fn matches(&self, target: &Target<'_>) -> bool {
        let host_ok = self
            .hosts
            .as_ref()
            .is_none_or(|hosts| hosts.iter().any(|h| host_matches(h, &target.host)));
        let method_ok = self
            .methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| *m == target.method));
        let path_ok = match &self.path {
            PathMatch::Any => true,
            PathMatch::Exact(p) => *p == target.path,
            PathMatch::Prefix(p) => under_prefix(&target.path, p),
        };
        host_ok && method_ok && path_ok
    }

    /// The first requirement `verified` fails, in the order the keys are documented.
    pub fn unmet(&self, verified: &Verified) -> Option<Unmet<'_>> {
        let claims = &verified.claims;
        if let Some(ids) = &self.issuers
            && !ids.contains(&verified.issuer)
        {
            return Some(Unmet::Issuer);
        }
        if let Some(wanted) = &self.audiences
            && !claims.audiences().any(|a| wanted.iter().any(|w| w == a))
        {
            return Some(Unmet::Audience);
        }
        if !self.scopes_all.iter().all(|s| granted(verified, s)) {
            return Some(Unmet::ScopesAll);
        }
        if !self.scopes_any.is_empty() && !self.scopes_any.iter().any(|s| granted(verified, s)) {
            return Some(Unmet::ScopesAny);
        }
        for (path, want) in &self.claims {
            if !claim_matches(verified.claim_tree(), path, want) {
                return Some(Unmet::Claim(path));
            }
        }
        None
    }

    /// The scopes this route wants that `verified` lacks: every missing one
    /// of `scopes_all`, or all of `scopes_any` when none was granted.
    pub fn missing_scopes(&self, verified: &Verified) -> Vec<String> {
        let mut missing: Vec<String> = self
            .scopes_all
            .iter()
            .filter(|s| !granted(verified, s))
            .cloned()
            .collect();
        if !self.scopes_any.is_empty() && !self.scopes_any.iter().any(|s| granted(verified, s)) {
            missing.extend(self.scopes_any.iter().cloned());
        }
        missing
    }
}

/// `WWW-Authenticate` for a refused active token (RFC 6750 §3.1).
pub fn insufficient_scope(scope: Option<&str>) -> HeaderValue {
    let value = match scope {
        Some(s) if !s.is_empty() => {
            format!(r#"Bearer realm="tokend", error="insufficient_scope", scope="{s}""#)
        }
        _ => r#"Bearer realm="tokend", error="insufficient_scope""#.to_owned(),
    };
    // Scopes were checked to be printable with no quotes needing escape.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(
        r#"Bearer error="insufficient_scope""#,
    ))
}

/// Exact, or `*.example.com` standing for exactly one label before `.example.com`.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => pattern == host,
    }
}

/// Whether `scope` is granted: one of the space-separated `scope` values, or
/// of `scp` (string or array). Exact: no prefixes, no case folding.
fn granted(verified: &Verified, scope: &str) -> bool {
    verified
        .claims
        .scope()
        .is_some_and(|granted| granted.split(' ').any(|g| g == scope))
}

/// Whether the claim at the dotted `path` equals `want`, or is an array
/// holding it. A member whose own name contains dots (`https://example.com/roles`)
/// is found too: each dot is tried as a separator only where the longer name is absent.
fn claim_matches(tree: &Value, path: &str, want: &Value) -> bool {
    match lookup(tree, path) {
        Some(Value::Array(items)) => items.iter().any(|v| scalar_eq(v, want)),
        Some(v) => scalar_eq(v, want),
        None => false,
    }
}

fn lookup<'t>(tree: &'t Value, path: &str) -> Option<&'t Value> {
    let object = tree.as_object()?;
    if let Some(v) = object.get(path) {
        return Some(v);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(inner) = object.get(&path[..i])
            && let Some(v) = lookup(inner, &path[i + 1..])
        {
            return Some(v);
        }
    }
    None
}

fn scalar_eq(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_patterns_stand_for_one_label() {
        assert!(host_matches("api.example.com", "api.example.com"));
        assert!(!host_matches("api.example.com", "xapi.example.com"));
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "evilexample.com"));
        assert!(!host_matches("*.example.com", ".example.com"));
    }

    #[test]
    fn claims_are_found_on_dotted_paths() {
        let tree = json!({
            "tenant": "acme",
            "level": 3,
            "admin": true,
            "realm_access": {"roles": ["user", "admin"]},
            "https://example.com/roles": ["ops"],
            "a": {"b.c": "x"}
        });
        for (path, want, expect) in [
            ("tenant", json!("acme"), true),
            ("tenant", json!("Acme"), false),
            ("level", json!(3), true),
            ("level", json!(3.0), true),
            ("level", json!("3"), false),
            ("admin", json!(true), true),
            ("admin", json!("true"), false),
            ("realm_access.roles", json!("admin"), true),
            ("realm_access.roles", json!("root"), false),
            ("https://example.com/roles", json!("ops"), true),
            ("a.b.c", json!("x"), true),
            ("missing", json!("x"), false),
            ("tenant.x", json!("acme"), false),
        ] {
            assert_eq!(claim_matches(&tree, path, &want), expect, "{path} = {want}");
        }
    }

    #[test]
    fn the_challenge_names_the_scopes() {
        assert_eq!(
            insufficient_scope(Some("orders:write orders:read")),
            r#"Bearer realm="tokend", error="insufficient_scope", scope="orders:write orders:read""#
        );
        assert_eq!(
            insufficient_scope(None),
            r#"Bearer realm="tokend", error="insufficient_scope""#
        );
    }
}

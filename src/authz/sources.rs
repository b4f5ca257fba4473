//! `token_sources`: where `/auth` and Envoy `Check` find the token, tried in
//! order. The first source present is the token; a later one is never tried
//! when it fails, and a source given twice is refused, not guessed.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::config::TokenSourceSpec;
use crate::request::{Scheme, TokenSource, authorization_token};

/// The request headers of a front, by lower-case name.
pub trait RequestHeaders {
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s str>;
}

impl RequestHeaders for axum::http::HeaderMap {
    /// Values that are not visible ASCII are skipped: no token has them.
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s str> {
        self.get_all(name).iter().filter_map(|v| v.to_str().ok())
    }
}

/// Envoy's `attributes.request.http.headers` (lower-case keys, repeated
/// headers already joined by Envoy).
impl RequestHeaders for HashMap<String, String> {
    fn values<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s str> {
        self.get(name).map(String::as_str).into_iter()
    }
}

/// What the sources found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    Token(Cow<'a, str>, TokenSource<'a>),
    Missing,
    /// A source was given more than once: which one is meant is not guessed.
    Ambiguous(TokenSource<'a>),
}

#[derive(Debug, Clone)]
pub struct TokenSources(Vec<TokenSourceSpec>);

impl TokenSources {
    pub fn new(specs: &[TokenSourceSpec]) -> TokenSources {
        TokenSources(specs.to_vec())
    }

    /// The token of the first source present. `path` is the forwarded
    /// request's path with its query (for `query:NAME`).
    pub fn find<'a>(&'a self, headers: &'a impl RequestHeaders, path: &'a str) -> Found<'a> {
        for spec in &self.0 {
            let (found, source) = match spec {
                TokenSourceSpec::Header(name) if name == "authorization" => authorization(headers),
                TokenSourceSpec::Header(name) => (header(headers, name), TokenSource::Header(name)),
                TokenSourceSpec::Cookie(name) => (cookie(headers, name), TokenSource::Cookie(name)),
                TokenSourceSpec::Query(name) => (query(path, name), TokenSource::Query(name)),
            };
            match found {
                One::None => continue,
                One::Many => return Found::Ambiguous(source),
                One::Value(token) => return Found::Token(token, source),
            }
        }
        Found::Missing
    }
}

/// `Authorization: Bearer <token>` or `DPoP <token>` (RFC 9449 §7.1); any
/// other scheme counts as absent.
fn authorization<'a>(headers: &'a impl RequestHeaders) -> (One<'a>, TokenSource<'a>) {
    let mut all = headers.values("authorization");
    let (first, second) = (all.next(), all.next());
    let bearer = TokenSource::Authorization(Scheme::Bearer);
    if second.is_some() {
        return (One::Many, bearer);
    }
    match first.and_then(authorization_token) {
        Some((scheme, token)) => (
            One::Value(Cow::Borrowed(token)),
            TokenSource::Authorization(scheme),
        ),
        None => (One::None, bearer),
    }
}

enum One<'a> {
    None,
    Value(Cow<'a, str>),
    Many,
}

/// At most one non-empty value among `values`.
fn only<'a>(mut values: impl Iterator<Item = Cow<'a, str>>) -> One<'a> {
    let mut values = values.by_ref().filter(|v| !v.is_empty());
    match (values.next(), values.next()) {
        (None, _) => One::None,
        (Some(v), None) => One::Value(v),
        (Some(_), Some(_)) => One::Many,
    }
}

/// A header other than `authorization` carries the token as its whole value.
fn header<'a>(headers: &'a impl RequestHeaders, name: &str) -> One<'a> {
    only(headers.values(name).map(str::trim).map(Cow::Borrowed))
}

/// The named cookie across every `Cookie` header (HTTP/2 sends one per
/// cookie); a value in double quotes loses them (RFC 6265 §4.1.1).
fn cookie<'a>(headers: &'a impl RequestHeaders, name: &str) -> One<'a> {
    only(
        headers
            .values("cookie")
            .flat_map(|line| line.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| {
                let v = v.trim();
                let unquoted = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Cow::Borrowed(unquoted)
            }),
    )
}

/// The named parameter of the query string, form-decoded.
fn query<'a>(path: &'a str, name: &str) -> One<'a> {
    let Some((_, query)) = path.split('#').next().unwrap_or("").split_once('?') else {
        return One::None;
    };
    only(
        url::form_urlencoded::parse(query.as_bytes())
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(specs: &[&str]) -> TokenSources {
        let specs: Vec<_> = specs
            .iter()
            .map(|s| TokenSourceSpec::parse(s).unwrap())
            .collect();
        TokenSources::new(&specs)
    }

    fn headers(pairs: &[(&str, &str)]) -> axum::http::HeaderMap {
        let mut map = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn token(found: Found<'_>) -> Option<String> {
        match found {
            Found::Token(t, _) => Some(t.into_owned()),
            _ => None,
        }
    }

    #[test]
    fn sources_are_tried_in_order_and_the_first_present_wins() {
        let s = sources(&[
            "header:authorization",
            "header:x-amzn-oidc-data",
            "cookie:at",
            "query:access_token",
        ]);
        let h = headers(&[
            ("x-amzn-oidc-data", "alb.jwt.x"),
            ("cookie", "a=1; at=\"c.o.k\""),
        ]);
        assert_eq!(
            token(s.find(&h, "/p?access_token=q.u.e")).as_deref(),
            Some("alb.jwt.x")
        );
        let h = headers(&[
            ("authorization", "Basic eDp5"),
            ("cookie", "a=1; at=\"c.o.k\""),
        ]);
        assert_eq!(
            token(s.find(&h, "/p")).as_deref(),
            Some("c.o.k"),
            "a Basic header is no bearer token"
        );
        let h = headers(&[("cookie", "a=1"), ("cookie", "at=h2.cookie.x")]);
        assert_eq!(token(s.find(&h, "/p")).as_deref(), Some("h2.cookie.x"));
        let h = headers(&[]);
        assert_eq!(
            token(s.find(&h, "/p?x=1&access_token=q%2Eu.e")).as_deref(),
            Some("q.u.e")
        );
        assert_eq!(s.find(&h, "/p?x=1"), Found::Missing);
        assert_eq!(s.find(&h, "/p#access_token=x"), Found::Missing);
    }

    #[test]
    fn a_source_given_twice_is_ambiguous() {
        let s = sources(&["cookie:at", "query:t", "header:authorization"]);
        for (h, path) in [
            (headers(&[("cookie", "at=a.b.c; at=d.e.f")]), "/"),
            (headers(&[]), "/?t=a&t=b"),
            (
                headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
                "/",
            ),
        ] {
            assert!(
                matches!(s.find(&h, path), Found::Ambiguous(_)),
                "{h:?} {path}"
            );
        }
    }

    #[test]
    fn envoy_headers_work_the_same() {
        let s = sources(&["header:authorization", "cookie:at"]);
        let mut h = HashMap::new();
        h.insert("cookie".to_string(), "x=1; at=e.n.v".to_string());
        assert_eq!(token(s.find(&h, "/")).as_deref(), Some("e.n.v"));
        h.insert("authorization".to_string(), "bearer a.b.c".to_string());
        assert_eq!(token(s.find(&h, "/")).as_deref(), Some("a.b.c"));
    }
}

//! The callers of introspection, revocation and admin APIs, and the one
//! admission check every front (HTTP, gRPC, admin) uses. Below `api/`: the
//! configuration snapshot holds the callers.
//!
//! Callers present `Authorization: Basic base64(id:secret)` (RFC 6749 §2.3.1)
//! or `Authorization: Bearer <secret>`. Only the SHA-256 of each secret is kept,
//! and comparisons run in constant time over every configured client, so
//! timing tells nothing about which ids exist.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::BTreeSet;

use crate::config::{ClientConfig, Permission};

use crate::token::sha256;

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether two secrets are equal, in time that depends on neither (both are
/// hashed first, so not even their lengths leak).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    constant_time_eq(&sha256(a), &sha256(b))
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    permissions: BTreeSet<Permission>,
}

impl Caller {
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// Why a caller was not authenticated (both answer 401 / `UNAUTHENTICATED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Invalid,
}

struct Client {
    id: String,
    secret_hash: Option<[u8; 32]>,
    cert_names: Vec<String>,
    permissions: BTreeSet<Permission>,
}

/// The configured callers.
pub struct Clients {
    clients: Vec<Client>,
}

impl Clients {
    pub fn new(config: &[ClientConfig]) -> Clients {
        Clients {
            clients: config
                .iter()
                .map(|c| Client {
                    id: c.id.clone(),
                    secret_hash: c.secret_hash,
                    cert_names: c.cert_names.clone(),
                    permissions: c.granted.clone(),
                })
                .collect(),
        }
    }

    /// Authenticates an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?.trim();
        let (scheme, credentials) = value.split_once(' ').ok_or(AuthError::Invalid)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD
                .decode(credentials)
                .map_err(|_| AuthError::Invalid)?;
            let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Invalid)?;
            let (id, secret) = decoded.split_once(':').ok_or(AuthError::Invalid)?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            let id = form_decode(id).ok_or(AuthError::Invalid)?;
            let secret = form_decode(secret).ok_or(AuthError::Invalid)?;
            self.find(Some(&id), secret.as_bytes())
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.find(None, credentials.as_bytes())
        } else {
            Err(AuthError::Invalid)
        }
    }

    /// Compares against every client in constant time; with an id, only that
    /// client's hash may match.
    fn find(&self, id: Option<&str>, secret: &[u8]) -> Result<Caller, AuthError> {
        let hash = sha256(secret);
        let mut found: Option<&Client> = None;
        for client in &self.clients {
            // Certificate-only clients compare against a hash no secret has.
            let hash_ok = constant_time_eq(&hash, &client.secret_hash.unwrap_or([0xff; 32]))
                && client.secret_hash.is_some();
            let id_ok = id.is_none_or(|id| id == client.id);
            if hash_ok && id_ok && found.is_none() {
                found = Some(client);
            }
        }
        found
            .map(|c| Caller {
                id: c.id.clone(),
                permissions: c.permissions.clone(),
            })
            .ok_or(AuthError::Invalid)
    }

    /// Authenticates a caller by `Authorization`, or, without that header, by the
    /// names of a verified client certificate (mTLS).
    pub fn authenticate_with_cert(
        &self,
        authorization: Option<&str>,
        cert_names: &[String],
    ) -> Result<Caller, AuthError> {
        if authorization.is_some() || cert_names.is_empty() {
            return self.authenticate(authorization);
        }
        self.clients
            .iter()
            .find(|c| c.cert_names.iter().any(|n| cert_names.contains(n)))
            .map(|c| Caller {
                id: c.id.clone(),
                permissions: c.permissions.clone(),
            })
            .ok_or(AuthError::Invalid)
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The one admission check of every front (HTTP, gRPC, admin): who the
    /// caller is, and whether it may do `permission` (`name` for the answer).
    pub fn admit(
        &self,
        credentials: &Credentials<'_>,
        permission: Permission,
        name: &'static str,
    ) -> Result<Caller, Refusal> {
        let caller = self
            .authenticate_with_cert(credentials.authorization, credentials.cert_names)
            .map_err(|_| Refusal::InvalidClient)?;
        if caller.may(permission) {
            Ok(caller)
        } else {
            Err(Refusal::Forbidden(name))
        }
    }
}

/// Why a caller was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No or wrong credentials.
    InvalidClient,
    /// Authenticated, without the named permission.
    Forbidden(&'static str),
}

/// What a caller presented to prove who it is: its `Authorization` value
/// (a header, or gRPC metadata) and its verified client certificate's names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub cert_names: &'a [String],
}

impl<'a> Credentials<'a> {
    /// The `Authorization` header (or gRPC metadata) and the certificate's names.
    pub fn new(headers: &'a axum::http::HeaderMap, cert_names: &'a [String]) -> Credentials<'a> {
        Credentials {
            authorization: headers
                .get(axum::http::header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or("")),
            cert_names,
        }
    }

    /// From an HTTP request's headers and extensions (its connection's
    /// [`PeerNames`](crate::tls::PeerNames)).
    pub fn from_http(
        headers: &'a axum::http::HeaderMap,
        extensions: &'a axum::http::Extensions,
    ) -> Credentials<'a> {
        let cert_names = extensions
            .get::<crate::tls::PeerNames>()
            .map(|p| p.0.as_slice())
            .unwrap_or_default();
        Credentials::new(headers, cert_names)
    }
}

fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn clients() -> Clients {
        let text = r#"
[[clients]]
id = "gateway"
secret = "s3cret"
permissions = ["introspect"]
[[clients]]
id = "ops"
secret_sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
permissions = ["admin", "revoke"]
"#;
        Clients::new(&Config::from_toml(text, Vec::new()).unwrap().clients)
    }

    #[test]
    fn basic_and_bearer() {
        let c = clients();
        let basic = format!("Basic {}", STANDARD.encode("gateway:s3cret"));
        let caller = c.authenticate(Some(&basic)).unwrap();
        assert_eq!(caller.id, "gateway");
        assert!(caller.may(Permission::Introspect) && !caller.may(Permission::Admin));
        // sha256("secret") = 2bb80d…
        let caller = c.authenticate(Some("Bearer secret")).unwrap();
        assert_eq!(caller.id, "ops");
        assert!(caller.may(Permission::Admin));
    }

    #[test]
    fn wrong_or_missing_credentials() {
        let c = clients();
        assert_eq!(c.authenticate(None).unwrap_err(), AuthError::Missing);
        let wrong_id = format!("Basic {}", STANDARD.encode("ops:s3cret"));
        assert_eq!(
            c.authenticate(Some(&wrong_id)).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            c.authenticate(Some("Bearer nope")).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            c.authenticate(Some("Basic !!!")).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            c.authenticate(Some("Digest x")).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            c.authenticate(Some("Bearer")).unwrap_err(),
            AuthError::Invalid
        );
    }

    #[test]
    fn form_encoded_basic_credentials() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
    }
}

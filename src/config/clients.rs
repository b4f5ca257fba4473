//! `[[clients]]`: the callers of introspection, revocation and admin APIs,
//! their secrets (stored as SHA-256 only) and permissions.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::secrets::resolve_secret;

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

/// Checks every client (ids unique), resolving secrets and permissions.
pub(super) fn validate(clients: &mut [Option<ClientConfig>], errors: &mut Vec<String>) {
    let mut ids = BTreeSet::new();
    for (i, client) in clients.iter_mut().enumerate() {
        let Some(client) = client else { continue };
        let at = format!("clients[{i}]");
        if client.id.is_empty() || client.id.contains(':') {
            errors.push(format!("{at}.id: must be non-empty and contain no ':'"));
        } else if !ids.insert(client.id.clone()) {
            errors.push(format!("{at}.id: duplicate client id {:?}", client.id));
        }
        validate_client(client, &at, errors);
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

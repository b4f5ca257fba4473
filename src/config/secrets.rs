//! Secrets given inline, by environment variable or by file, kept as bytes
//! that never print.

use std::fmt;
use std::path::Path;

/// Bytes that must never be printed: HMAC keys, client secrets, passwords.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// Reads a secret given inline, by environment variable name, or by file path
/// (exact bytes, no newline trimming).
pub(super) fn resolve_secret(
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

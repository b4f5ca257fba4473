//! An issuer's key set: an immutable map `kid → key`, built whole and swapped whole.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

use super::jwk::{Jwk, KeyRejected, Source};
use crate::token::alg::Algorithm;
use crate::token::parse::parse_object;
use crate::token::reason::Reason;

/// Why a whole JWKS document was refused (the last good set keeps serving).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("not a JSON object with a \"keys\" array")]
    NotAJwks,
    #[error("no usable signing key ({rejected} rejected)")]
    NoUsableKeys { rejected: usize },
    #[error("mixes symmetric and asymmetric keys")]
    MixedSymmetry,
}

enum Slot {
    One(usize),
    Ambiguous,
}

/// A ready-to-use key set.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
    by_kid: HashMap<String, Slot>,
    /// Keys left out, with why: shown in `/admin/issuers` and logged.
    pub rejected: Vec<(Option<String>, KeyRejected)>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys)
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl KeySet {
    /// Parses a JWKS document (`{"keys":[...]}`), keeping every usable key.
    pub fn from_jwks(bytes: &[u8], source: Source) -> Result<KeySet, JwksError> {
        let doc = parse_object(bytes).map_err(|_| JwksError::NotAJwks)?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::NotAJwks);
        };
        let mut keys = Vec::with_capacity(entries.len());
        let mut rejected = Vec::new();
        for entry in entries {
            match Jwk::from_json(entry, source) {
                Ok(key) => keys.push(key),
                Err(why) => {
                    let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
                    rejected.push((kid, why));
                }
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                rejected: rejected.len(),
            });
        }
        // A set holding both an HMAC secret and public keys invites key confusion.
        if keys.iter().any(Jwk::is_symmetric) && keys.iter().any(|k| !k.is_symmetric()) {
            return Err(JwksError::MixedSymmetry);
        }
        let mut set = KeySet::from_keys(keys);
        // A kid shared with a rejected entry is ambiguous too: which key the IdP
        // meant is unknowable, so neither is used.
        for kid in rejected.iter().filter_map(|(kid, _)| kid.as_ref()) {
            if let Some(slot) = set.by_kid.get_mut(kid) {
                *slot = Slot::Ambiguous;
            }
        }
        set.rejected = rejected;
        Ok(set)
    }

    /// Builds a set from parsed keys; two keys sharing a `kid` make it ambiguous.
    pub fn from_keys(keys: Vec<Jwk>) -> KeySet {
        let mut by_kid = HashMap::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = &key.kid {
                by_kid
                    .entry(kid.clone())
                    .and_modify(|slot| *slot = Slot::Ambiguous)
                    .or_insert(Slot::One(i));
            }
        }
        KeySet {
            keys,
            by_kid,
            rejected: Vec::new(),
        }
    }

    /// Whether a key with this fingerprint is (still) in the set.
    pub fn has_key(&self, fingerprint: u64) -> bool {
        self.keys.iter().any(|k| k.fingerprint == fingerprint)
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Kids that name more than one key.
    pub fn ambiguous_kids(&self) -> impl Iterator<Item = &str> {
        self.by_kid
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Ambiguous))
            .map(|(k, _)| k.as_str())
    }

    /// Finds the key for a token: by `kid` if it has one, else the single key
    /// that fits `alg`. `Err(UnknownKid)` is the only answer a refresh can change.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&Jwk, Reason> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(Slot::One(i)) => {
                    let key = &self.keys[*i];
                    if key.fits(alg) {
                        Ok(key)
                    } else {
                        Err(Reason::KeyMismatch)
                    }
                }
                Some(Slot::Ambiguous) => Err(Reason::AmbiguousKid),
                None => Err(Reason::UnknownKid),
            },
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    _ => Err(Reason::NoMatchingKey),
                }
            }
        }
    }
}

/// A shared, immutable key set.
pub type SharedKeySet = Arc<KeySet>;

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY","y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw""#;

    #[test]
    fn duplicate_kid_is_ambiguous_and_others_still_work() {
        let doc = format!(r#"{{"keys":[{EC},"kid":"a"}},{EC},"kid":"a"}},{EC},"kid":"b"}}]}}"#);
        let set = KeySet::from_jwks(doc.as_bytes(), Source::Fetched).unwrap();
        assert_eq!(
            set.select(Some("a"), Algorithm::ES256).unwrap_err(),
            Reason::AmbiguousKid
        );
        assert!(set.select(Some("b"), Algorithm::ES256).is_ok());
        assert_eq!(
            set.select(Some("c"), Algorithm::ES256).unwrap_err(),
            Reason::UnknownKid
        );
        assert_eq!(
            set.select(Some("b"), Algorithm::ES384).unwrap_err(),
            Reason::KeyMismatch
        );
        // without kid: three keys fit ES256, so none is chosen
        assert_eq!(
            set.select(None, Algorithm::ES256).unwrap_err(),
            Reason::NoMatchingKey
        );
    }

    #[test]
    fn a_kid_shared_with_a_rejected_key_is_ambiguous() {
        let doc = format!(
            r#"{{"keys":[{EC},"kid":"a"}},{EC},"kid":"a","use":"enc"}},{EC},"kid":"b"}}]}}"#
        );
        let set = KeySet::from_jwks(doc.as_bytes(), Source::Fetched).unwrap();
        assert_eq!(
            set.select(Some("a"), Algorithm::ES256).unwrap_err(),
            Reason::AmbiguousKid
        );
        assert!(set.select(Some("b"), Algorithm::ES256).is_ok());
    }

    #[test]
    fn keyless_token_uses_the_only_fitting_key() {
        let doc = format!(r#"{{"keys":[{EC}}}]}}"#);
        let set = KeySet::from_jwks(doc.as_bytes(), Source::Fetched).unwrap();
        assert!(set.select(None, Algorithm::ES256).is_ok());
        assert_eq!(
            set.select(None, Algorithm::HS256).unwrap_err(),
            Reason::NoMatchingKey
        );
    }

    #[test]
    fn documents_without_usable_keys_are_refused() {
        assert_eq!(
            KeySet::from_jwks(b"[]", Source::Fetched).unwrap_err(),
            JwksError::NotAJwks
        );
        assert_eq!(
            KeySet::from_jwks(br#"{"keys":{}}"#, Source::Fetched).unwrap_err(),
            JwksError::NotAJwks
        );
        let only_secret =
            r#"{"keys":[{"kty":"oct","k":"-ebuDNsVZ2iJtoZ-akfXTSCt4UO2cruLCsbWlBinggE"}]}"#;
        assert_eq!(
            KeySet::from_jwks(only_secret.as_bytes(), Source::Fetched).unwrap_err(),
            JwksError::NoUsableKeys { rejected: 1 }
        );
        let mixed = format!(
            r#"{{"keys":[{EC}}},{{"kty":"oct","k":"-ebuDNsVZ2iJtoZ-akfXTSCt4UO2cruLCsbWlBinggE"}}]}}"#
        );
        assert_eq!(
            KeySet::from_jwks(mixed.as_bytes(), Source::Local).unwrap_err(),
            JwksError::MixedSymmetry
        );
    }
}

//! `keys_format = "x509_map"`: a JSON object from `kid` to a PEM
//! certificate, as Google publishes Firebase's signing keys
//! (https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com,
//! described at https://firebase.google.com/docs/auth/admin/verify-id-tokens).
//! Each certificate inside its validity dates becomes the JWK of its public
//! key, and the JWKS they make goes through the same hygiene as any fetched
//! JWKS ([`KeySet::from_jwks`]): sizes, curves, duplicate `kid`s.

use serde_json::{Map, Value, json};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::jwk::Source;
use super::set::{JwksError, KeySet};
use crate::token::parse::parse_object;

/// The key set of an X.509 map at `now` (Unix seconds).
pub fn key_set(body: &[u8], now: i64) -> Result<KeySet, JwksError> {
    let map = parse_object(body).map_err(|_| JwksError::NotAJwks)?;
    let keys: Vec<Value> = map
        .iter()
        .filter_map(|(kid, pem)| jwk(kid, pem.as_str()?, now))
        .collect();
    let rejected = map.len() - keys.len();
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys { rejected });
    }
    let jwks = json!({"keys": keys}).to_string();
    KeySet::from_jwks(jwks.as_bytes(), Source::Fetched)
}

/// The public JWK of a PEM certificate valid at `now`; `None` for anything
/// else (not PEM, not a certificate, outside its dates, an unknown key type).
fn jwk(kid: &str, pem: &str, now: i64) -> Option<Value> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return None;
    }
    spki_jwk(kid, cert.public_key())
}

/// The JWK of a public key (RSA, or EC on P-256 / P-384) under `kid`;
/// `None` for any other key.
pub fn spki_jwk(kid: &str, spki: &SubjectPublicKeyInfo) -> Option<Value> {
    let mut key = Map::new();
    key.insert("kid".into(), kid.into());
    key.insert("use".into(), "sig".into());
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => {
            key.insert("kty".into(), "RSA".into());
            key.insert("n".into(), b64(unsigned(rsa.modulus)).into());
            key.insert("e".into(), b64(unsigned(rsa.exponent)).into());
        }
        PublicKey::EC(point) => {
            let crv = match spki.algorithm.parameters.as_ref()?.as_oid().ok()? {
                oid if oid == x509_parser::oid_registry::OID_EC_P256 => "P-256",
                oid if oid == x509_parser::oid_registry::OID_NIST_EC_P384 => "P-384",
                _ => return None,
            };
            let bytes = point.data();
            let half = bytes.len().checked_sub(1)? / 2;
            if bytes.first() != Some(&4) || half == 0 {
                return None;
            }
            key.insert("kty".into(), "EC".into());
            key.insert("crv".into(), crv.into());
            key.insert("x".into(), b64(&bytes[1..=half]).into());
            key.insert("y".into(), b64(&bytes[1 + half..]).into());
        }
        _ => return None,
    }
    Some(Value::Object(key))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A DER INTEGER's magnitude without its sign byte.
fn unsigned(bytes: &[u8]) -> &[u8] {
    match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => bytes,
    }
}

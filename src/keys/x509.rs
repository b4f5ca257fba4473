//! `keys_format = "x509_map"`: a JSON object from `kid` to a PEM
//! certificate, as Google publishes Firebase's signing keys
//! (https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com,
//! described at https://firebase.google.com/docs/auth/admin/verify-id-tokens).
//! Each certificate inside its validity dates becomes the JWK of its public
//! key, and the JWKS they make goes through the same hygiene as any fetched
//! JWKS ([`KeySet::from_jwks`]): sizes, curves, duplicate `kid`s. The set
//! comes with the earliest `notAfter` among the certificates kept: the
//! refresher loads again just after it, so a certificate stops being a key
//! when it expires, not at the next scheduled refresh.

use serde_json::{Map, Value, json};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::jwk::{KeyRejected, Source};
use super::set::{JwksError, KeySet};
use crate::token::parse::parse_object;

/// The keys of an X.509 map at `now` (Unix seconds).
pub struct Dated {
    pub set: KeySet,
    /// The earliest `notAfter` (Unix seconds) among the certificates kept.
    pub first_expiry: Option<i64>,
}

/// The key set of an X.509 map at `now` (Unix seconds). A map whose
/// certificates are all outside their dates gives an empty set, not an
/// error: the dates say no key is good, and the last set must not keep
/// serving for want of a new one.
pub fn key_set(body: &[u8], now: i64) -> Result<Dated, JwksError> {
    let map = parse_object(body).map_err(|_| JwksError::NotAJwks)?;
    let mut keys = Vec::new();
    let mut outside_dates = Vec::new();
    let mut first_expiry: Option<i64> = None;
    for (kid, pem) in &map {
        match pem.as_str().and_then(|pem| certificate_key(kid, pem)) {
            Some(cert) if (cert.not_before..=cert.not_after).contains(&now) => {
                first_expiry = Some(first_expiry.map_or(cert.not_after, |t| t.min(cert.not_after)));
                keys.push(cert.jwk);
            }
            Some(_) => outside_dates.push((Some(kid.clone()), KeyRejected::OutsideValidity)),
            None => {}
        }
    }
    let mut set = if keys.is_empty() && !outside_dates.is_empty() {
        KeySet::default()
    } else if keys.is_empty() {
        return Err(JwksError::NoUsableKeys {
            rejected: map.len(),
        });
    } else {
        let jwks = json!({"keys": keys}).to_string();
        KeySet::from_jwks(jwks.as_bytes(), Source::Fetched)?
    };
    set.rejected.extend(outside_dates);
    Ok(Dated { set, first_expiry })
}

/// A certificate's public key as a JWK, and its validity dates.
struct CertificateKey {
    jwk: Value,
    not_before: i64,
    not_after: i64,
}

/// `None` for anything but a PEM certificate of a known key type.
fn certificate_key(kid: &str, pem: &str) -> Option<CertificateKey> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    Some(CertificateKey {
        jwk: spki_jwk(kid, cert.public_key())?,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::alg::Algorithm;

    /// A self-signed P-256 certificate valid from `not_before` to
    /// `not_after` (Unix seconds), as PEM.
    fn certificate(not_before: i64, not_after: i64) -> String {
        let pair = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let at =
            |t: i64| rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(t as u64);
        params.not_before = at(not_before);
        params.not_after = at(not_after);
        params.self_signed(&pair).unwrap().pem()
    }

    const NOW: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;

    fn kids(set: &KeySet) -> Vec<&str> {
        let mut kids: Vec<&str> = set.keys().iter().filter_map(|k| k.kid.as_deref()).collect();
        kids.sort();
        kids
    }

    #[test]
    fn only_certificates_inside_their_dates_are_keys() {
        let map = json!({
            "current": certificate(NOW - DAY, NOW + DAY),
            "not-yet": certificate(NOW + 60, NOW + 2 * DAY),
            "expired": certificate(NOW - 2 * DAY, NOW - 1),
        });
        let dated = key_set(map.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(kids(&dated.set), ["current"]);
        assert!(dated.set.select(Some("current"), Algorithm::ES256).is_ok());
        for kid in ["not-yet", "expired"] {
            assert!(
                dated.set.select(Some(kid), Algorithm::ES256).is_err(),
                "{kid}"
            );
            assert!(
                dated
                    .set
                    .rejected
                    .contains(&(Some(kid.into()), KeyRejected::OutsideValidity)),
                "{kid}: {:?}",
                dated.set.rejected
            );
        }
        // The same map a day later: the current certificate has expired too.
        let later = key_set(map.to_string().as_bytes(), NOW + DAY + 1).unwrap();
        assert_eq!(kids(&later.set), ["not-yet"]);
    }

    #[test]
    fn the_earliest_expiry_among_the_kept_certificates_is_reported() {
        let map = json!({
            "long": certificate(NOW - DAY, NOW + 30 * DAY),
            "short": certificate(NOW - DAY, NOW + 600),
            "expired": certificate(NOW - 2 * DAY, NOW - 1),
            "not-yet": certificate(NOW + 60, NOW + 120),
        });
        let dated = key_set(map.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(kids(&dated.set), ["long", "short"]);
        assert_eq!(dated.first_expiry, Some(NOW + 600));
        // Once "short" has gone, "long" is the next to expire.
        let later = key_set(map.to_string().as_bytes(), NOW + 601).unwrap();
        assert_eq!(kids(&later.set), ["long"]);
        assert_eq!(later.first_expiry, Some(NOW + 30 * DAY));
    }

    #[test]
    fn a_map_of_expired_certificates_is_an_empty_set_and_garbage_an_error() {
        let expired = json!({"old": certificate(NOW - 2 * DAY, NOW - DAY)});
        let dated = key_set(expired.to_string().as_bytes(), NOW).unwrap();
        assert!(dated.set.is_empty());
        assert_eq!(dated.first_expiry, None);
        let garbage = json!({"k": "not a certificate"});
        assert_eq!(
            key_set(garbage.to_string().as_bytes(), NOW).err(),
            Some(JwksError::NoUsableKeys { rejected: 1 })
        );
        assert_eq!(key_set(b"[]", NOW).err(), Some(JwksError::NotAJwks));
    }
}

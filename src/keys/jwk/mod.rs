//! JWK → ready-to-verify key, with the key hygiene rules of SPEC §Keys.
//!
//! A key is parsed once, when its set is loaded: RSA moduli become aws-lc-rs
//! `ParsedPublicKey`s (one per RSA algorithm the key may serve), EC points are
//! checked to lie on their curve, HMAC secrets become `hmac::Key`s. Verifying a
//! token then costs only the signature check itself.
//!
//! What never enters a set: private keys, keys for encryption (`use: enc`, a
//! `key_ops` without `verify`, an encryption `alg`), RSA under 2048 bits or with
//! an even or unit exponent or the ROCA fingerprint, unsupported curves, short
//! HMAC secrets, and symmetric keys from anywhere but local configuration.

use aws_lc_rs::hmac;
use aws_lc_rs::signature::ParsedPublicKey;
use serde_json::{Map, Value};

use crate::token::alg::{Algorithm, Family};

mod curves;
mod rsa;
use crate::token::parse::b64_decode;

/// Why a JWK was left out of its set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejected {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("member {0:?} missing or not a string")]
    BadMember(&'static str),
    #[error("member {0:?} is not strict base64url")]
    BadBase64(&'static str),
    #[error("unsupported kty {0:?}")]
    UnsupportedKty(String),
    #[error("contains private key material ({0:?})")]
    PrivateKey(&'static str),
    #[error("use {0:?} is not \"sig\"")]
    NotForSignatures(String),
    #[error("key_ops does not allow \"verify\"")]
    KeyOpsWithoutVerify,
    #[error("alg {0:?} is not a supported signature algorithm")]
    UnsupportedAlg(String),
    #[error("alg {alg} does not fit a {kty} key")]
    AlgDoesNotFitKey { alg: Algorithm, kty: &'static str },
    #[error("RSA modulus of {0} bits (at least 2048 required)")]
    RsaTooSmall(usize),
    #[error("RSA modulus of {0} bits (at most 8192 supported)")]
    RsaTooLarge(usize),
    #[error("RSA public exponent must be odd and greater than 1")]
    RsaBadExponent,
    #[error("RSA modulus has the ROCA fingerprint (CVE-2017-15361)")]
    RsaRoca,
    #[error("unsupported curve {0:?}")]
    UnsupportedCurve(String),
    #[error("coordinates have the wrong length for the curve")]
    BadCoordinateLength,
    #[error("the public key is not valid for its curve or type")]
    InvalidPublicKey,
    #[error("Ed25519 key of small order: anyone could forge its signatures")]
    SmallOrderPoint,
    #[error("Ed25519 key outside the prime-order subgroup")]
    MixedOrderPoint,
    #[error("Ed25519 key is not the canonical encoding of its point")]
    NonCanonicalPoint,
    #[error("symmetric keys are only accepted from local configuration")]
    SymmetricFromFetch,
    #[error("HMAC secret of {len} bytes is shorter than {min} bytes")]
    HmacTooShort { len: usize, min: usize },
    /// An X.509 map's certificate before its `notBefore` or after its `notAfter`.
    #[error("certificate outside its validity dates")]
    OutsideValidity,
}

/// A verification key, parsed once.
pub struct Jwk {
    pub kid: Option<String>,
    /// `alg` pinned by the JWK itself; a token must then use exactly it.
    pub alg: Option<Algorithm>,
    /// Identifies the key material, `kid` and `alg` across refreshes: the
    /// verified-token cache serves a token only while its key is still in the set.
    pub fingerprint: u64,
    material: Material,
}

/// A 64-bit fingerprint of key parts (SHA-256, truncated).
fn fingerprint_of(parts: &[&[u8]]) -> u64 {
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        digest.update(&(part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let out = digest.finish();
    u64::from_be_bytes(out.as_ref()[..8].try_into().expect("8 bytes"))
}

enum Material {
    /// One parsed key per RSA algorithm (indexed by `rsa_slot`), only for those
    /// the key may serve.
    Rsa {
        bits: usize,
        parsed: Box<[Option<ParsedPublicKey>; 6]>,
    },
    Ec {
        family: Family,
        key: ParsedPublicKey,
    },
    Ed25519(ParsedPublicKey),
    Hmac {
        len: usize,
        keys: Box<[hmac::Key; 3]>,
    },
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("kty", &self.kty())
            .field("alg", &self.alg)
            .finish()
    }
}

/// Where a key came from: symmetric keys are only trusted from local config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Fetched,
    Local,
}

impl Jwk {
    /// Parses and checks one JWK.
    pub fn from_json(value: &Value, source: Source) -> Result<Jwk, KeyRejected> {
        let obj = value.as_object().ok_or(KeyRejected::NotAnObject)?;
        let kty = str_member(obj, "kty")?;
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(KeyRejected::BadMember("kid")),
        };
        match obj.get("use") {
            None => {}
            Some(Value::String(u)) if u == "sig" => {}
            Some(Value::String(u)) => return Err(KeyRejected::NotForSignatures(u.clone())),
            Some(_) => return Err(KeyRejected::BadMember("use")),
        }
        match obj.get("key_ops") {
            None => {}
            Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => {}
            Some(_) => return Err(KeyRejected::KeyOpsWithoutVerify),
        }
        let alg = match obj.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(
                Algorithm::from_name(a).ok_or_else(|| KeyRejected::UnsupportedAlg(a.clone()))?,
            ),
            Some(_) => return Err(KeyRejected::BadMember("alg")),
        };
        let material = match kty {
            "RSA" => rsa::material(obj, alg)?,
            "EC" => curves::ec(obj)?,
            "OKP" => curves::okp(obj)?,
            "oct" if source == Source::Local => {
                let secret = b64_member(obj, "k")?;
                return Jwk::hmac(kid, alg, &secret);
            }
            "oct" => return Err(KeyRejected::SymmetricFromFetch),
            other => return Err(KeyRejected::UnsupportedKty(other.to_owned())),
        };
        let public: Vec<&[u8]> = ["n", "e", "crv", "x", "y"]
            .iter()
            .map(|m| obj.get(*m).and_then(Value::as_str).unwrap_or("").as_bytes())
            .collect();
        let fingerprint = fingerprint_of(
            &[
                &[
                    kty.as_bytes(),
                    kid.as_deref().unwrap_or("").as_bytes(),
                    alg.map_or("", |a| a.name()).as_bytes(),
                ][..],
                &public[..],
            ]
            .concat(),
        );
        let jwk = Jwk {
            kid,
            alg,
            fingerprint,
            material,
        };
        if let Some(alg) = alg
            && !jwk.family_fits(alg)
        {
            return Err(KeyRejected::AlgDoesNotFitKey {
                alg,
                kty: jwk.kty(),
            });
        }
        Ok(jwk)
    }

    /// An HMAC key from raw secret bytes (an issuer's `hmac_secret_*` or a local `oct` JWK).
    pub fn hmac(
        kid: Option<String>,
        alg: Option<Algorithm>,
        secret: &[u8],
    ) -> Result<Jwk, KeyRejected> {
        if let Some(alg) = alg
            && alg.family() != Family::Hmac
        {
            return Err(KeyRejected::AlgDoesNotFitKey { alg, kty: "oct" });
        }
        let min = alg.map_or(32, Algorithm::hmac_min_key_len);
        if secret.len() < min {
            return Err(KeyRejected::HmacTooShort {
                len: secret.len(),
                min,
            });
        }
        let keys = Box::new([
            hmac::Key::new(hmac::HMAC_SHA256, secret),
            hmac::Key::new(hmac::HMAC_SHA384, secret),
            hmac::Key::new(hmac::HMAC_SHA512, secret),
        ]);
        let fingerprint = fingerprint_of(&[
            b"oct",
            kid.as_deref().unwrap_or("").as_bytes(),
            alg.map_or("", |a| a.name()).as_bytes(),
            secret,
        ]);
        Ok(Jwk {
            kid,
            alg,
            fingerprint,
            material: Material::Hmac {
                len: secret.len(),
                keys,
            },
        })
    }

    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Rsa { .. } => "RSA",
            Material::Ec { .. } => "EC",
            Material::Ed25519(_) => "OKP",
            Material::Hmac { .. } => "oct",
        }
    }

    pub fn is_symmetric(&self) -> bool {
        matches!(self.material, Material::Hmac { .. })
    }

    /// Size in bits (RSA modulus, curve order, HMAC secret) for `/admin/issuers`.
    pub fn bits(&self) -> usize {
        match &self.material {
            Material::Rsa { bits, .. } => *bits,
            Material::Ec {
                family: Family::EcP384,
                ..
            } => 384,
            Material::Ec { .. } | Material::Ed25519(_) => 256,
            Material::Hmac { len, .. } => len * 8,
        }
    }

    fn family_fits(&self, alg: Algorithm) -> bool {
        match (&self.material, alg.family()) {
            (Material::Rsa { .. }, Family::Rsa) => true,
            (Material::Ec { family, .. }, f) => *family == f,
            (Material::Ed25519(_), Family::Ed25519) => true,
            (Material::Hmac { len, .. }, Family::Hmac) => *len >= alg.hmac_min_key_len(),
            _ => false,
        }
    }

    /// Whether a token with this `alg` may be checked with this key: same key type
    /// and curve, the key's own `alg` (if any) equal, an HMAC secret long enough.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && self.family_fits(alg)
    }

    /// Checks `signature` over `message`. The caller has already checked `fits(alg)`;
    /// a key that does not fit never verifies anything.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match &self.material {
            Material::Rsa { parsed, .. } => parsed[rsa::rsa_slot(alg)]
                .as_ref()
                .is_some_and(|k| k.verify_sig(message, signature).is_ok()),
            Material::Ec { key, .. } | Material::Ed25519(key) => {
                key.verify_sig(message, signature).is_ok()
            }
            Material::Hmac { keys, .. } => {
                let key = match alg {
                    Algorithm::HS256 => &keys[0],
                    Algorithm::HS384 => &keys[1],
                    _ => &keys[2],
                };
                hmac::verify(key, message, signature).is_ok()
            }
        }
    }
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, KeyRejected> {
    obj.get(name)
        .and_then(Value::as_str)
        .ok_or(KeyRejected::BadMember(name))
}

fn b64_member(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyRejected> {
    b64_decode(str_member(obj, name)?).map_err(|_| KeyRejected::BadBase64(name))
}

fn refuse_private(obj: &Map<String, Value>, members: &[&'static str]) -> Result<(), KeyRejected> {
    match members.iter().find(|m| obj.contains_key(**m)) {
        Some(m) => Err(KeyRejected::PrivateKey(m)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EC_X: &str = "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY";
    const EC_Y: &str = "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw";

    fn ec_key(extra: Value) -> Value {
        let mut k = json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y});
        k.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        k
    }

    #[test]
    fn accepts_a_plain_ec_signing_key() {
        let k = Jwk::from_json(
            &ec_key(json!({"kid":"a","use":"sig","key_ops":["verify"]})),
            Source::Fetched,
        )
        .unwrap();
        assert!(k.fits(Algorithm::ES256));
        assert!(!k.fits(Algorithm::ES384));
        assert!(!k.fits(Algorithm::HS256));
    }

    /// Every case of the Wycheproof-style file: the honest keys load, each
    /// small-order, mixed-order, non-canonical or off-curve key is refused for
    /// the reason its flag names.
    #[test]
    fn ed25519_public_key_vectors() {
        let file: Value = serde_json::from_str(include_str!(
            "../../../tests/vectors/ed25519_public_keys.json"
        ))
        .unwrap();
        let tests = file["testGroups"][0]["tests"].as_array().unwrap();
        assert_eq!(tests.len() as u64, file["numberOfTests"].as_u64().unwrap());
        for case in tests {
            let id = &case["tcId"];
            let pk = hex::decode(case["pk"].as_str().unwrap()).unwrap();
            let x = case["pk"].as_str().unwrap();
            let jwk = json!({"kty":"OKP","crv":"Ed25519","x": crate::mint::b64(&pk)});
            let got = Jwk::from_json(&jwk, Source::Fetched);
            match case["flags"][0].as_str().unwrap() {
                "Valid" => assert!(got.is_ok(), "case {id} ({x}): {:?}", got.err()),
                flag => {
                    let err = got
                        .err()
                        .unwrap_or_else(|| panic!("case {id} ({x}) loaded"));
                    let expected = match flag {
                        "SmallOrderPublicKey" => matches!(err, KeyRejected::SmallOrderPoint),
                        "MixedOrderPublicKey" => matches!(err, KeyRejected::MixedOrderPoint),
                        "NonCanonicalPublicKey" => matches!(err, KeyRejected::NonCanonicalPoint),
                        "InvalidEncoding" => matches!(err, KeyRejected::InvalidPublicKey),
                        other => panic!("unknown flag {other}"),
                    };
                    assert!(expected, "case {id} ({x}): {flag} refused as {err:?}");
                }
            }
        }
    }

    #[test]
    fn hygiene_rules() {
        let reject = |v: Value| Jwk::from_json(&v, Source::Fetched).unwrap_err();
        assert_eq!(
            reject(ec_key(json!({"use":"enc"}))),
            KeyRejected::NotForSignatures("enc".into())
        );
        assert_eq!(
            reject(ec_key(json!({"key_ops":["encrypt"]}))),
            KeyRejected::KeyOpsWithoutVerify
        );
        assert_eq!(
            reject(ec_key(json!({"d":"AA"}))),
            KeyRejected::PrivateKey("d")
        );
        assert_eq!(
            reject(ec_key(json!({"crv":"P-384"}))),
            KeyRejected::BadCoordinateLength
        );
        assert_eq!(
            reject(ec_key(json!({"crv":"secp256k1"}))),
            KeyRejected::UnsupportedCurve("secp256k1".into())
        );
        assert_eq!(
            reject(ec_key(json!({"alg":"RS256"}))),
            KeyRejected::AlgDoesNotFitKey {
                alg: Algorithm::RS256,
                kty: "EC"
            }
        );
        assert_eq!(
            reject(ec_key(json!({"alg":"ES521"}))),
            KeyRejected::UnsupportedAlg("ES521".into())
        );
        // a point off the curve (last byte of y changed)
        let off = ec_key(json!({"y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgnw"}));
        assert_eq!(reject(off), KeyRejected::InvalidPublicKey);
        let secret = json!({"kty":"oct","k":"-ebuDNsVZ2iJtoZ-akfXTSCt4UO2cruLCsbWlBinggE"});
        assert_eq!(reject(secret.clone()), KeyRejected::SymmetricFromFetch);
        assert!(Jwk::from_json(&secret, Source::Local).is_ok());
        assert_eq!(
            reject(json!({"kty":"OKP","crv":"X25519","x":EC_X})),
            KeyRejected::UnsupportedCurve("X25519".into())
        );
    }

    #[test]
    fn hmac_secrets_must_be_as_long_as_the_hash() {
        assert_eq!(
            Jwk::hmac(None, Some(Algorithm::HS256), &[7; 31]).unwrap_err(),
            KeyRejected::HmacTooShort { len: 31, min: 32 }
        );
        let k = Jwk::hmac(None, None, &[7; 48]).unwrap();
        assert!(k.fits(Algorithm::HS256) && k.fits(Algorithm::HS384));
        assert!(
            !k.fits(Algorithm::HS512),
            "a 48-byte secret is too short for HS512"
        );
        assert!(!k.fits(Algorithm::RS256));
    }

    /// Regression (fuzz target `jwks`, 2026-12-06): an empty or all-zero
    /// modulus underflowed the bit count and panicked the key loader; it is
    /// a 0-bit key, refused as too small, and the set loads without it.
    #[test]
    fn an_empty_rsa_modulus_is_too_small_not_a_panic() {
        for n in ["", "AA", "AAAA"] {
            assert_eq!(
                Jwk::from_json(&json!({"kty":"RSA","n":n,"e":"ABQ"}), Source::Fetched).unwrap_err(),
                KeyRejected::RsaTooSmall(0)
            );
        }
        let crash = br#"{"keys":[{"kty":"RSA","n":"","e":"ABQ"}]}"#;
        assert!(crate::keys::set::KeySet::from_jwks(crash, Source::Fetched).is_err());
    }

    #[test]
    fn roca_check_is_not_triggered_by_ordinary_moduli() {
        // 2^2048 - 1 style odd numbers and a real modulus do not carry the fingerprint.
        assert!(!rsa::has_roca_fingerprint(&[0xff; 256]));
        let n = b64_decode("kqGboBfAWttWPCA-0cGRgsY6SaYoIARt0B_PkaEcIq9HPYNdu9n6UuWHuuTHrjF_ZoQW97r5HaAorNvrMEGTGdxCHZdEtkHvNVVmrtxTBLiQCbCozXhFoIrVcr3qUBrdGnNn_M3jJi7Wg7p_-x62nS5gNG875oyheRkutHsQXikFZwsN3q_TsPNOVlCiHy8mxzaFTUQGm-X8UYexFyAivlDSjgDJLAZSWfxd7k9Gxuwa3AUfQqQcVcegmgKGCaErQ3qQbh1x7WB6iopE3_-GZ8HMAVtR9AmrVscqYsnjhaCehfAI0iKKs8zXr8tISc0ORbaalrkk03H1ZrsEnDKEWQ").unwrap();
        assert!(!rsa::has_roca_fingerprint(&n));
    }
}

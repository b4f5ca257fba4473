//! Decryption keys: the private JWKs of an issuer's `decryption_keys_file`,
//! turned once into aws-lc-rs keys — RSA (for `RSA-OAEP`, `RSA-OAEP-256`)
//! and EC P-256 / P-384 (for `ECDH-ES` and its key-wrap variants). A key
//! whose public half does not match its private half is refused, as is any
//! key meant for signing only (`use: sig`).

use aws_lc_rs::agreement::{self, PrivateKey};
use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};
use serde_json::Value;

use crate::token::parse::b64_decode;

/// One decryption key with its `kid` (if any).
pub struct DecryptionKey {
    pub kid: Option<String>,
    pub key: KeyMaterial,
}

pub enum KeyMaterial {
    Rsa(OaepPrivateDecryptingKey),
    Ec {
        curve: &'static agreement::Algorithm,
        key: PrivateKey,
    },
}

/// Reads a JWKS of private keys; every key must be usable, or the file is refused.
pub fn load_jwks(text: &[u8]) -> Result<Vec<DecryptionKey>, String> {
    let set: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    if keys.is_empty() {
        return Err("no keys".into());
    }
    keys.iter()
        .enumerate()
        .map(|(i, jwk)| from_jwk(jwk).map_err(|e| format!("keys[{i}]: {e}")))
        .collect()
}

fn member(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no \"{name}\""))?;
    b64_decode(text).map_err(|_| format!("\"{name}\" is not base64url"))
}

fn from_jwk(jwk: &Value) -> Result<DecryptionKey, String> {
    if jwk.get("use").and_then(Value::as_str) == Some("sig") {
        return Err("use is \"sig\"".into());
    }
    let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
    let key = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let parts: Vec<Vec<u8>> = ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
                .iter()
                .map(|m| member(jwk, m))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{e} (an RSA private key needs n, e, d, p, q, dp, dq, qi)"))?;
            let der = rsa_pkcs8(&parts);
            let key = PrivateDecryptingKey::from_pkcs8(&der)
                .map_err(|e| format!("not a usable RSA key (2048 to 8192 bits): {e}"))?;
            KeyMaterial::Rsa(OaepPrivateDecryptingKey::new(key).map_err(|_| "not an RSA key")?)
        }
        Some("EC") => {
            let curve = match jwk.get("crv").and_then(Value::as_str) {
                Some("P-256") => &agreement::ECDH_P256,
                Some("P-384") => &agreement::ECDH_P384,
                other => return Err(format!("crv {other:?} is not P-256 or P-384")),
            };
            let d = member(jwk, "d")?;
            let key = PrivateKey::from_private_key(curve, &d)
                .map_err(|_| "d is not a private key of crv")?;
            let mut public = vec![4u8];
            public.extend(member(jwk, "x")?);
            public.extend(member(jwk, "y")?);
            let computed = key
                .compute_public_key()
                .map_err(|_| "d is not a private key of crv")?;
            if computed.as_ref() != public.as_slice() {
                return Err("x and y are not the public key of d".into());
            }
            KeyMaterial::Ec { curve, key }
        }
        other => return Err(format!("kty {other:?} is not RSA or EC")),
    };
    Ok(DecryptionKey { kid, key })
}

/// A PKCS#8 `PrivateKeyInfo` holding the PKCS#1 `RSAPrivateKey` of these
/// components (n, e, d, p, q, dp, dq, qi), DER-encoded.
fn rsa_pkcs8(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut rsa = der_integer(&[0]);
    for part in parts {
        rsa.extend(der_integer(part));
    }
    let rsa = der(0x30, &rsa);
    let mut info = der_integer(&[0]);
    info.extend(rsa_algorithm());
    info.extend(der(0x04, &rsa));
    der(0x30, &info)
}

/// The `AlgorithmIdentifier` of rsaEncryption (1.2.840.113549.1.1.1), NULL parameters.
fn rsa_algorithm() -> Vec<u8> {
    der(
        0x30,
        &[
            &[
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
            ][..],
            &[0x05, 0x00],
        ]
        .concat(),
    )
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// An unsigned big-endian integer as DER: leading zeros dropped, one added
/// when the high bit is set.
fn der_integer(unsigned: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = unsigned.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = if trimmed.is_empty() { vec![0] } else { trimmed };
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    der(0x02, &content)
}

/// A `SubjectPublicKeyInfo` for the RSA public key (n, e), DER-encoded.
pub(super) fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut key = der_integer(n);
    key.extend(der_integer(e));
    let key = der(0x30, &key);
    let mut bits = vec![0u8];
    bits.extend(key);
    let mut info = rsa_algorithm();
    info.extend(der(0x03, &bits));
    der(0x30, &info)
}

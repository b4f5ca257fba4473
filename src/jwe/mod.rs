//! Stage 0 for an encrypted token: a compact JWE (RFC 7516, five segments)
//! is decrypted with the issuers' `decryption_keys_file` keys and must hold
//! a nested JWS (`cty: JWT`), which then passes every rule of a plain JWT.
//!
//! Built on aws-lc-rs primitives (RSA-OAEP, ECDH, AES key wrap, AES-GCM,
//! AES-CBC, HMAC) rather than a JOSE crate: the maintained Rust JOSE crates
//! either bind OpenSSL (a second crypto library beside aws-lc) or lack
//! RSA-OAEP/ECDH-ES; the JOSE layer here is small — the Concat KDF, the
//! CBC-HMAC composition and header checks — and is checked against an
//! independent implementation (npm `jose`, `tests/interop/jwe.sh`).
//!
//! Accepted: `alg` `RSA-OAEP`, `RSA-OAEP-256`, `ECDH-ES`, `ECDH-ES+A128KW`,
//! `ECDH-ES+A256KW`; `enc` `A128GCM`, `A256GCM`, `A128CBC-HS256`,
//! `A256CBC-HS512`. Refused: `RSA1_5` (Bleichenbacher), `dir`, `zip`, `crit`,
//! content that is not a JWS. Every failure after the header checks is the
//! same reason, and an RSA key that cannot be unwrapped continues with a
//! random key into content decryption (RFC 7516 §11.5), so neither the
//! answer nor its timing class tells an attacker which step failed. An
//! `epk` not on its curve is refused by aws-lc before any agreement.

pub mod keys;
pub mod seal;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, UnparsedPublicKey};
use aws_lc_rs::cipher::{self, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256};
use aws_lc_rs::{constant_time, digest, hmac};
use serde_json::{Map, Value};

use crate::token::Reason;
use crate::token::parse::{b64_decode, parse_object};
use keys::{DecryptionKey, KeyMaterial};

/// The largest protected header accepted (an `epk` and a few members).
const MAX_HEADER_BYTES: usize = 2048;

/// Whether a token is shaped as a compact JWE (four dots).
pub fn is_compact_jwe(token: &str) -> bool {
    crate::token::dots(token) == 4
}

/// Decryption keys, each with its owner (the issuer whose tokens it opens).
pub struct Decryptor<O> {
    keys: Vec<(O, DecryptionKey)>,
}

/// Key management algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    RsaOaep,
    RsaOaep256,
    EcdhEs,
    EcdhEsA128Kw,
    EcdhEsA256Kw,
}

/// Every key management `alg` tokend opens (SPEC's list), by name.
pub const ALGS: [&str; 5] = [
    "RSA-OAEP",
    "RSA-OAEP-256",
    "ECDH-ES",
    "ECDH-ES+A128KW",
    "ECDH-ES+A256KW",
];
/// Every content encryption `enc` tokend opens, by name.
pub const ENCS: [&str; 4] = ["A128GCM", "A256GCM", "A128CBC-HS256", "A256CBC-HS512"];

/// Content encryption algorithms, with their key lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    A128Gcm,
    A256Gcm,
    A128CbcHs256,
    A256CbcHs512,
}

impl Enc {
    fn parse(name: &str) -> Option<Enc> {
        Some(match name {
            "A128GCM" => Enc::A128Gcm,
            "A256GCM" => Enc::A256Gcm,
            "A128CBC-HS256" => Enc::A128CbcHs256,
            "A256CBC-HS512" => Enc::A256CbcHs512,
            _ => return None,
        })
    }
    fn key_len(self) -> usize {
        match self {
            Enc::A128Gcm => 16,
            Enc::A256Gcm => 32,
            Enc::A128CbcHs256 => 32,
            Enc::A256CbcHs512 => 64,
        }
    }
}

impl Alg {
    fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RSA-OAEP" => Alg::RsaOaep,
            "RSA-OAEP-256" => Alg::RsaOaep256,
            "ECDH-ES" => Alg::EcdhEs,
            "ECDH-ES+A128KW" => Alg::EcdhEsA128Kw,
            "ECDH-ES+A256KW" => Alg::EcdhEsA256Kw,
            _ => return None,
        })
    }
}

/// The five segments, the header read and checked.
struct Parts<'a> {
    protected: &'a str,
    header: Map<String, Value>,
    alg: Alg,
    enc: Enc,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl<O: Copy> Decryptor<O> {
    pub fn new(keys: Vec<(O, DecryptionKey)>) -> Decryptor<O> {
        Decryptor { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The nested JWS inside a compact JWE, and the owner of the key that
    /// opened it (the JWS must then be that issuer's).
    pub fn decrypt(&self, token: &str) -> Result<(O, String), Reason> {
        let parts = parse(token)?;
        let kid = parts.header.get("kid").and_then(Value::as_str);
        let candidates = self
            .keys
            .iter()
            .filter(|(_, k)| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .filter(|(_, k)| fits(&k.key, parts.alg));
        let mut tried = false;
        for (issuer, key) in candidates {
            tried = true;
            if let Ok(plaintext) = open(&parts, &key.key) {
                let inner = String::from_utf8(plaintext).map_err(|_| Reason::JweNotNested)?;
                if inner.bytes().filter(|b| *b == b'.').count() != 2 {
                    return Err(Reason::JweNotNested);
                }
                return Ok((*issuer, inner));
            }
        }
        Err(if tried {
            Reason::JweDecryptFailed
        } else {
            Reason::JweNoKey
        })
    }
}

fn fits(key: &KeyMaterial, alg: Alg) -> bool {
    match key {
        KeyMaterial::Rsa(_) => matches!(alg, Alg::RsaOaep | Alg::RsaOaep256),
        KeyMaterial::Ec { .. } => {
            matches!(alg, Alg::EcdhEs | Alg::EcdhEsA128Kw | Alg::EcdhEsA256Kw)
        }
    }
}

/// Splits and decodes the compact form and checks the header: every member
/// tokend must understand is understood, nothing it refuses is there.
fn parse(token: &str) -> Result<Parts<'_>, Reason> {
    let mut segments = token.split('.');
    let (Some(protected), Some(key), Some(iv), Some(ciphertext), Some(tag), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(Reason::Malformed);
    };
    if protected.len() > MAX_HEADER_BYTES * 4 / 3 + 4 {
        return Err(Reason::JweUnsupported);
    }
    let header_bytes = b64_decode(protected)?;
    let header = parse_object(&header_bytes).map_err(|r| r.unwrap_or(Reason::BadHeader))?;
    let text = |name: &str| header.get(name).and_then(Value::as_str);
    // zip: decompression is refused outright (a bomb, and RFC 8725 §3.6).
    if header.contains_key("zip") || header.contains_key("crit") {
        return Err(Reason::JweUnsupported);
    }
    let alg = text("alg")
        .and_then(Alg::parse)
        .ok_or(Reason::JweUnsupported)?;
    let enc = text("enc")
        .and_then(Enc::parse)
        .ok_or(Reason::JweUnsupported)?;
    // Only a signed JWT inside: `cty` says so (RFC 7519 §5.2).
    if !text("cty").is_some_and(|c| c.eq_ignore_ascii_case("JWT")) {
        return Err(Reason::JweNotNested);
    }
    Ok(Parts {
        protected,
        alg,
        enc,
        encrypted_key: b64_decode(key)?,
        iv: b64_decode(iv)?,
        ciphertext: b64_decode(ciphertext)?,
        tag: b64_decode(tag)?,
        header,
    })
}

/// The content encryption key, then the plaintext.
fn open(parts: &Parts<'_>, key: &KeyMaterial) -> Result<Vec<u8>, ()> {
    let cek = content_key(parts, key)?;
    decrypt_content(parts, &cek)
}

fn content_key(parts: &Parts<'_>, key: &KeyMaterial) -> Result<Vec<u8>, ()> {
    let enc_len = parts.enc.key_len();
    match (key, parts.alg) {
        (KeyMaterial::Rsa(rsa), Alg::RsaOaep | Alg::RsaOaep256) => {
            let algorithm = if parts.alg == Alg::RsaOaep {
                &OAEP_SHA1_MGF1SHA1
            } else {
                &OAEP_SHA256_MGF1SHA256
            };
            let mut out = vec![0u8; rsa.min_output_size()];
            match rsa.decrypt(algorithm, &parts.encrypted_key, &mut out, None) {
                Ok(cek) if cek.len() == enc_len => Ok(cek.to_vec()),
                // RFC 7516 §11.5: go on with a random key, so that a bad
                // key and a bad tag cannot be told apart by time.
                _ => {
                    let mut random = vec![0u8; enc_len];
                    SystemRandom::new().fill(&mut random).map_err(|_| ())?;
                    Ok(random)
                }
            }
        }
        (KeyMaterial::Ec { curve, key }, Alg::EcdhEs | Alg::EcdhEsA128Kw | Alg::EcdhEsA256Kw) => {
            let epk = epk_point(&parts.header, curve)?;
            let (algorithm_id, key_len) = match parts.alg {
                Alg::EcdhEs => (enc_name(parts.enc), enc_len),
                Alg::EcdhEsA128Kw => ("ECDH-ES+A128KW", 16),
                _ => ("ECDH-ES+A256KW", 32),
            };
            let apu = party_info(&parts.header, "apu")?;
            let apv = party_info(&parts.header, "apv")?;
            // aws-lc parses the point and refuses one not on the curve.
            let derived = agreement::agree(key, UnparsedPublicKey::new(curve, &epk), (), |z| {
                Ok(concat_kdf(z, algorithm_id, &apu, &apv, key_len))
            })?;
            match parts.alg {
                Alg::EcdhEs => {
                    if !parts.encrypted_key.is_empty() {
                        return Err(());
                    }
                    Ok(derived)
                }
                _ => {
                    let kek_alg = if key_len == 16 {
                        &key_wrap::AES_128
                    } else {
                        &key_wrap::AES_256
                    };
                    let kek = AesKek::new(kek_alg, &derived).map_err(|_| ())?;
                    let mut out = vec![0u8; parts.encrypted_key.len()];
                    let cek = kek.unwrap(&parts.encrypted_key, &mut out).map_err(|_| ())?;
                    if cek.len() != enc_len {
                        return Err(());
                    }
                    Ok(cek.to_vec())
                }
            }
        }
        _ => Err(()),
    }
}

fn enc_name(enc: Enc) -> &'static str {
    match enc {
        Enc::A128Gcm => "A128GCM",
        Enc::A256Gcm => "A256GCM",
        Enc::A128CbcHs256 => "A128CBC-HS256",
        Enc::A256CbcHs512 => "A256CBC-HS512",
    }
}

/// The uncompressed point of the header's `epk`: a public EC key of the
/// decryption key's curve, nothing more (no `d`), coordinates of exact length.
fn epk_point(
    header: &Map<String, Value>,
    curve: &'static agreement::Algorithm,
) -> Result<Vec<u8>, ()> {
    let epk = header.get("epk").and_then(Value::as_object).ok_or(())?;
    let (crv, len) = if std::ptr::eq(curve, &agreement::ECDH_P256) {
        ("P-256", 32)
    } else {
        ("P-384", 48)
    };
    if epk.get("kty").and_then(Value::as_str) != Some("EC")
        || epk.get("crv").and_then(Value::as_str) != Some(crv)
        || epk.contains_key("d")
    {
        return Err(());
    }
    let coordinate = |name: &str| {
        let bytes = epk
            .get(name)
            .and_then(Value::as_str)
            .and_then(|t| b64_decode(t).ok())
            .ok_or(())?;
        if bytes.len() == len {
            Ok(bytes)
        } else {
            Err(())
        }
    };
    let mut point = vec![4u8];
    point.extend(coordinate("x")?);
    point.extend(coordinate("y")?);
    Ok(point)
}

fn party_info(header: &Map<String, Value>, name: &str) -> Result<Vec<u8>, ()> {
    match header.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(text)) if text.len() <= 512 => b64_decode(text).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// The Concat KDF of RFC 7518 §4.6.2 (NIST SP 800-56A, single-step, SHA-256).
fn concat_kdf(z: &[u8], algorithm_id: &str, apu: &[u8], apv: &[u8], key_len: usize) -> Vec<u8> {
    let field = |bytes: &[u8]| {
        let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    };
    let mut other = field(algorithm_id.as_bytes());
    other.extend(field(apu));
    other.extend(field(apv));
    other.extend(((key_len * 8) as u32).to_be_bytes());
    let mut out = Vec::with_capacity(key_len + 32);
    let mut counter: u32 = 1;
    while out.len() < key_len {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        ctx.update(&other);
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(key_len);
    out
}

/// The plaintext, authenticated over the protected header (the AAD).
fn decrypt_content(parts: &Parts<'_>, cek: &[u8]) -> Result<Vec<u8>, ()> {
    let aad = parts.protected.as_bytes();
    match parts.enc {
        Enc::A128Gcm | Enc::A256Gcm => {
            let algorithm = if parts.enc == Enc::A128Gcm {
                &aead::AES_128_GCM
            } else {
                &aead::AES_256_GCM
            };
            let key = LessSafeKey::new(UnboundKey::new(algorithm, cek).map_err(|_| ())?);
            let nonce = Nonce::try_assume_unique_for_key(&parts.iv).map_err(|_| ())?;
            if parts.tag.len() != 16 {
                return Err(());
            }
            let mut in_out = parts.ciphertext.clone();
            in_out.extend_from_slice(&parts.tag);
            let plaintext = key
                .open_in_place(nonce, Aad::from(aad), &mut in_out)
                .map_err(|_| ())?;
            Ok(plaintext.to_vec())
        }
        Enc::A128CbcHs256 | Enc::A256CbcHs512 => {
            // RFC 7518 §5.2: MAC key first, then the encryption key; the tag
            // is checked before a single byte is decrypted (no padding oracle).
            let half = cek.len() / 2;
            let (mac_key, enc_key) = cek.split_at(half);
            let (hmac_alg, cipher_alg) = if parts.enc == Enc::A128CbcHs256 {
                (hmac::HMAC_SHA256, &cipher::AES_128)
            } else {
                (hmac::HMAC_SHA512, &cipher::AES_256)
            };
            let mut mac = hmac::Context::with_key(&hmac::Key::new(hmac_alg, mac_key));
            mac.update(aad);
            mac.update(&parts.iv);
            mac.update(&parts.ciphertext);
            mac.update(&((aad.len() as u64) * 8).to_be_bytes());
            let full = mac.sign();
            constant_time::verify_slices_are_equal(&full.as_ref()[..half], &parts.tag)
                .map_err(|_| ())?;
            let iv: [u8; 16] = parts.iv.as_slice().try_into().map_err(|_| ())?;
            let key = PaddedBlockDecryptingKey::cbc_pkcs7(
                UnboundCipherKey::new(cipher_alg, enc_key).map_err(|_| ())?,
            )
            .map_err(|_| ())?;
            let mut in_out = parts.ciphertext.clone();
            let plaintext = key
                .decrypt(&mut in_out, DecryptionContext::Iv128(iv.into()))
                .map_err(|_| ())?;
            Ok(plaintext.to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 §4.6.2: SHA-256 over the counter, Z and the length-prefixed
    /// AlgorithmID, PartyUInfo, PartyVInfo, then the key length in bits.
    #[test]
    fn every_listed_name_parses() {
        assert!(ALGS.iter().all(|a| Alg::parse(a).is_some()));
        assert!(ENCS.iter().all(|e| Enc::parse(e).is_some()));
    }

    #[test]
    fn concat_kdf_follows_its_definition() {
        let z = [7u8; 32];
        let key = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 16);
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&1u32.to_be_bytes());
        ctx.update(&z);
        ctx.update(&[0, 0, 0, 7]);
        ctx.update(b"A128GCM");
        ctx.update(&[0, 0, 0, 5]);
        ctx.update(b"Alice");
        ctx.update(&[0, 0, 0, 3]);
        ctx.update(b"Bob");
        ctx.update(&128u32.to_be_bytes());
        assert_eq!(key, ctx.finish().as_ref()[..16]);
        assert_eq!(
            concat_kdf(&z, "A256CBC-HS512", b"", b"", 64).len(),
            64,
            "two blocks"
        );
    }

    /// An invalid-curve attack sends a point not on the curve as `epk`:
    /// aws-lc refuses it before any agreement, so no secret depends on it.
    #[test]
    fn a_point_off_the_curve_is_refused_before_agreement() {
        let jwk = seal::generate_ec_jwk("k");
        let key = agreement::PrivateKey::from_private_key(
            &agreement::ECDH_P256,
            &b64_decode(jwk["d"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let mut point = vec![4u8];
        point.extend(b64_decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(b64_decode(jwk["y"].as_str().unwrap()).unwrap());
        let agree = |point: &[u8]| {
            agreement::agree(
                &key,
                UnparsedPublicKey::new(&agreement::ECDH_P256, point),
                (),
                |z| Ok(z.to_vec()),
            )
        };
        assert!(agree(&point).is_ok(), "its own public key is on the curve");
        let last = point.len() - 1;
        point[last] ^= 1;
        assert!(agree(&point).is_err(), "y changed: off the curve");
        assert!(agree(&[4u8; 65]).is_err());
        assert!(agree(&[0u8; 65]).is_err());
    }

    #[test]
    fn headers_tokend_refuses() {
        let b64 = |v: &str| crate::mint::b64(v);
        let token = |header: &str| {
            format!(
                "{}.AA.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
                b64(header)
            )
        };
        for (header, reason) in [
            (
                r#"{"alg":"RSA1_5","enc":"A128GCM","cty":"JWT"}"#,
                Reason::JweUnsupported,
            ),
            (
                r#"{"alg":"dir","enc":"A128GCM","cty":"JWT"}"#,
                Reason::JweUnsupported,
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A128GCM","cty":"JWT","zip":"DEF"}"#,
                Reason::JweUnsupported,
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A128GCM","cty":"JWT","crit":["x"],"x":1}"#,
                Reason::JweUnsupported,
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A192GCM","cty":"JWT"}"#,
                Reason::JweUnsupported,
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A128GCM"}"#,
                Reason::JweNotNested,
            ),
            (
                r#"{"alg":"RSA-OAEP","enc":"A128GCM","cty":"json"}"#,
                Reason::JweNotNested,
            ),
            (
                r#"{"alg":"RSA-OAEP","alg":"RSA-OAEP","enc":"A128GCM","cty":"JWT"}"#,
                Reason::DuplicateMember,
            ),
        ] {
            assert_eq!(parse(&token(header)).err(), Some(reason), "{header}");
        }
    }
}

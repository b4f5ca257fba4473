//! Signing tokens: the identity assertion ([`crate::assertion`]), dev mode,
//! tests, benches and the load generator, so that every part of the project
//! that needs a token makes it the same way and publishes its key as a JWKS.
//! [`AssertionKey`] is tokend's own signing key (loaded from PKCS#8 or
//! generated), with its public JWK and RFC 7638 thumbprint.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::path::Path;

use crate::token::alg::{Algorithm, Family};
use crate::token::sha256;

enum Key {
    Hmac(Vec<u8>),
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key with a `kid`, able to sign for one algorithm family.
pub struct Signer {
    pub kid: String,
    key: Key,
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    /// Generates a fresh key that can sign `alg` (RSA 2048, P-256, P-384, Ed25519,
    /// or a random HMAC secret as long as the hash).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Signer {
        let key = match alg.family() {
            Family::Hmac => {
                let mut secret = vec![0u8; alg.hmac_min_key_len()];
                SystemRandom::new()
                    .fill(&mut secret)
                    .expect("system randomness");
                Key::Hmac(secret)
            }
            Family::Rsa => {
                Key::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("generate RSA key"))
            }
            Family::EcP256 => Key::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .expect("generate P-256 key"),
            ),
            Family::EcP384 => Key::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
                    .expect("generate P-384 key"),
            ),
            Family::Ed25519 => Key::Ed(Ed25519KeyPair::generate().expect("generate Ed25519 key")),
        };
        Signer {
            kid: kid.into(),
            key,
        }
    }

    /// A signer over a PKCS#8 private key: EC P-256 (ES256) or Ed25519 (EdDSA).
    pub fn from_pkcs8(der: &[u8], kid: impl Into<String>) -> Option<(Signer, Algorithm)> {
        let (key, alg) =
            match EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                Ok(pair) => (Key::Ec(pair), Algorithm::ES256),
                Err(_) => (
                    Key::Ed(
                        Ed25519KeyPair::from_pkcs8(der)
                            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
                            .ok()?,
                    ),
                    Algorithm::EdDSA,
                ),
            };
        Some((
            Signer {
                kid: kid.into(),
                key,
            },
            alg,
        ))
    }

    /// An HMAC signer over the given secret.
    pub fn hmac(secret: &[u8], kid: impl Into<String>) -> Signer {
        Signer {
            kid: kid.into(),
            key: Key::Hmac(secret.to_vec()),
        }
    }

    /// Raw secret (HMAC) or PKCS#8 DER (asymmetric): to hand the key to another library.
    pub fn private_der(&self) -> Vec<u8> {
        match &self.key {
            Key::Hmac(s) => s.clone(),
            Key::Rsa(k) => k.as_der().map(|d| d.as_ref().to_vec()).unwrap_or_default(),
            Key::Ec(k) => k
                .to_pkcs8v1()
                .map(|d| d.as_ref().to_vec())
                .unwrap_or_default(),
            Key::Ed(k) => k
                .to_pkcs8()
                .map(|d| d.as_ref().to_vec())
                .unwrap_or_default(),
        }
    }

    /// Signature bytes over `input` for `alg` (the caller picks an `alg` of the key's family).
    pub fn sign_bytes(&self, alg: Algorithm, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Hmac(secret) => {
                let h = match alg {
                    Algorithm::HS384 => aws_lc_rs::hmac::HMAC_SHA384,
                    Algorithm::HS512 => aws_lc_rs::hmac::HMAC_SHA512,
                    _ => aws_lc_rs::hmac::HMAC_SHA256,
                };
                aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(h, secret), input)
                    .as_ref()
                    .to_vec()
            }
            Key::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &rng, input, &mut sig)
                    .expect("RSA signing");
                sig
            }
            Key::Ec(pair) => pair
                .sign(&rng, input)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            Key::Ed(pair) => pair.sign(input).as_ref().to_vec(),
        }
    }

    /// A compact JWS with header `{"alg", "kid", "typ": "JWT"}` merged with `extra_header`.
    pub fn sign(&self, alg: Algorithm, claims: &Value) -> String {
        self.sign_with_header(
            alg,
            &json!({"alg": alg.name(), "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }

    /// A compact JWS with exactly this header (whatever it says) over these claims.
    pub fn sign_with_header(&self, alg: Algorithm, header: &Value, claims: &Value) -> String {
        self.sign_parts(alg, &header.to_string(), &claims.to_string())
    }

    /// A compact JWS over raw header and payload text (for hand-built attack tokens).
    pub fn sign_parts(&self, alg: Algorithm, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.sign_bytes(alg, input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// The public JWK (for HMAC: the `oct` key with its secret, for local key files).
    pub fn public_jwk(&self) -> Value {
        match &self.key {
            Key::Hmac(secret) => json!({"kty": "oct", "kid": self.kid, "k": b64(secret)}),
            Key::Rsa(pair) => {
                let public = pair.public_key();
                let n = public.modulus().big_endian_without_leading_zero().to_vec();
                let e = public.exponent().big_endian_without_leading_zero().to_vec();
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "n": b64(n), "e": b64(e)})
            }
            Key::Ec(pair) => {
                let point = pair.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "kid": self.kid, "use": "sig", "crv": crv,
                       "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
            }
            Key::Ed(pair) => json!({"kty": "OKP", "kid": self.kid, "use": "sig", "crv": "Ed25519",
                                    "x": b64(pair.public_key().as_ref())}),
        }
    }
}

/// A JWKS document for these signers.
pub fn jwks(signers: &[&Signer]) -> Value {
    json!({"keys": signers.iter().map(|s| s.public_jwk()).collect::<Vec<_>>()})
}

/// The assertion signing key, with its public JWK (kid = RFC 7638 thumbprint).
pub struct AssertionKey {
    signer: Signer,
    alg: Algorithm,
    jwk: Value,
    /// Made at start: every replica has its own, so only one replica can use it.
    pub generated: bool,
}

impl AssertionKey {
    /// Reads a PKCS#8 PEM file holding an EC P-256 or Ed25519 private key.
    pub fn load(path: &Path) -> Result<AssertionKey, String> {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let der = match rustls_pemfile::private_key(&mut pem.as_slice()) {
            Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(der))) => der,
            Ok(Some(_)) => {
                return Err(format!(
                    "{}: not PKCS#8 (want \"BEGIN PRIVATE KEY\"; convert with openssl pkcs8 -topk8 -nocrypt)",
                    path.display()
                ));
            }
            _ => return Err(format!("{}: no private key in PEM", path.display())),
        };
        let (signer, alg) = Signer::from_pkcs8(der.secret_pkcs8_der(), "")
            .ok_or_else(|| format!("{}: neither an EC P-256 nor an Ed25519 key", path.display()))?;
        Ok(AssertionKey::from_signer(signer, alg, false))
    }

    /// A fresh ES256 key.
    pub fn generate() -> AssertionKey {
        AssertionKey::from_signer(
            Signer::generate(Algorithm::ES256, ""),
            Algorithm::ES256,
            true,
        )
    }

    fn from_signer(mut signer: Signer, alg: Algorithm, generated: bool) -> AssertionKey {
        let public = signer.public_jwk();
        let kid = thumbprint(&public);
        signer.kid = kid.clone();
        let mut jwk = public;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.name());
        AssertionKey {
            signer,
            alg,
            jwk,
            generated,
        }
    }

    pub fn kid(&self) -> &str {
        &self.signer.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK, with `kid` and `alg`.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The signature over `input` (a JWS signing input).
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.signer.sign_bytes(self.alg, input)
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Value) -> String {
    let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => {
            json!({"crv": member("crv"), "kty": "EC", "x": member("x"), "y": member("y")})
        }
        Some("OKP") => json!({"crv": member("crv"), "kty": "OKP", "x": member("x")}),
        _ => json!({"e": member("e"), "kty": member("kty"), "n": member("n")}),
    };
    // serde_json's map is ordered by key: the members come out sorted.
    b64(sha256(canonical.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn thumbprint_follows_rfc7638() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}

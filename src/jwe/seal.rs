//! The issuer's side of JWE, for tests, benches and dev mode: a nested JWT
//! encrypted to a recipient's public JWK with the same algorithms tokend
//! decrypts. (Its output is checked against npm `jose` by
//! `tests/interop/jwe.sh`, so the two sides cannot share a mistake.)

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{self, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyUncompressedBin};
use aws_lc_rs::hmac;
use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey,
};
use serde_json::{Map, Value, json};

use super::keys::rsa_spki;
use super::{Alg, Enc, concat_kdf};
use crate::mint::b64;
use crate::token::parse::b64_decode;

fn random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    bytes
}

/// Encrypts `plaintext` (a compact JWS) to `recipient` (a public or private
/// JWK) with `alg` and `enc`; `extra` members are added to the protected
/// header (`cty: JWT` is set unless `extra` overrides it).
pub fn seal(
    plaintext: &str,
    recipient: &Value,
    alg: &str,
    enc: &str,
    extra: &Value,
) -> Result<String, String> {
    let alg_kind = Alg::parse(alg).ok_or_else(|| format!("alg {alg} not supported"))?;
    let enc_kind = Enc::parse(enc).ok_or_else(|| format!("enc {enc} not supported"))?;
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg));
    header.insert("enc".into(), json!(enc));
    header.insert("cty".into(), json!("JWT"));
    if let Some(kid) = recipient.get("kid") {
        header.insert("kid".into(), kid.clone());
    }
    let text = |name: &str| -> Result<Vec<u8>, String> {
        let value = recipient
            .get(name)
            .and_then(Value::as_str)
            .ok_or(format!("no {name}"))?;
        b64_decode(value).map_err(|_| format!("bad {name}"))
    };
    let enc_len = enc_kind.key_len();
    let (cek, encrypted_key) = match alg_kind {
        Alg::RsaOaep | Alg::RsaOaep256 => {
            let spki = rsa_spki(&text("n")?, &text("e")?);
            let key = OaepPublicEncryptingKey::new(
                PublicEncryptingKey::from_der(&spki).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            let cek = random(enc_len);
            let algorithm = if alg_kind == Alg::RsaOaep {
                &OAEP_SHA1_MGF1SHA1
            } else {
                &OAEP_SHA256_MGF1SHA256
            };
            let mut out = vec![0u8; key.ciphertext_size()];
            let wrapped = key
                .encrypt(algorithm, &cek, &mut out, None)
                .map_err(|e| e.to_string())?
                .to_vec();
            (cek, wrapped)
        }
        _ => {
            let (curve, crv) = match recipient.get("crv").and_then(Value::as_str) {
                Some("P-256") => (&agreement::ECDH_P256, "P-256"),
                Some("P-384") => (&agreement::ECDH_P384, "P-384"),
                other => return Err(format!("crv {other:?}")),
            };
            let mut point = vec![4u8];
            point.extend(text("x")?);
            point.extend(text("y")?);
            let ephemeral = EphemeralPrivateKey::generate(curve, &SystemRandom::new())
                .map_err(|e| e.to_string())?;
            let public = ephemeral.compute_public_key().map_err(|e| e.to_string())?;
            let public: EcPublicKeyUncompressedBin =
                public.as_be_bytes().map_err(|e| e.to_string())?;
            let coordinates = &public.as_ref()[1..];
            let half = coordinates.len() / 2;
            header.insert(
                "epk".into(),
                json!({"kty": "EC", "crv": crv, "x": b64(&coordinates[..half]), "y": b64(&coordinates[half..])}),
            );
            let (algorithm_id, key_len) = match alg_kind {
                Alg::EcdhEs => (enc, enc_len),
                Alg::EcdhEsA128Kw => (alg, 16),
                _ => (alg, 32),
            };
            let derived = agreement::agree_ephemeral(
                ephemeral,
                UnparsedPublicKey::new(curve, &point),
                (),
                |z| Ok(concat_kdf(z, algorithm_id, b"", b"", key_len)),
            )
            .map_err(|()| "agreement failed".to_string())?;
            if alg_kind == Alg::EcdhEs {
                (derived, Vec::new())
            } else {
                let cek = random(enc_len);
                let kek_alg = if key_len == 16 {
                    &key_wrap::AES_128
                } else {
                    &key_wrap::AES_256
                };
                let kek = AesKek::new(kek_alg, &derived).map_err(|e| e.to_string())?;
                let mut out = vec![0u8; cek.len() + 8];
                let wrapped = kek
                    .wrap(&cek, &mut out)
                    .map_err(|e| e.to_string())?
                    .to_vec();
                (cek, wrapped)
            }
        }
    };
    for (k, v) in extra.as_object().into_iter().flatten() {
        if v.is_null() {
            header.remove(k);
        } else {
            header.insert(k.clone(), v.clone());
        }
    }
    let protected = b64(Value::Object(header).to_string());
    let aad = protected.as_bytes();
    let (iv, ciphertext, tag) = match enc_kind {
        Enc::A128Gcm | Enc::A256Gcm => {
            let algorithm = if enc_kind == Enc::A128Gcm {
                &aead::AES_128_GCM
            } else {
                &aead::AES_256_GCM
            };
            let key =
                LessSafeKey::new(UnboundKey::new(algorithm, &cek).map_err(|e| e.to_string())?);
            let iv = random(12);
            let mut in_out = plaintext.as_bytes().to_vec();
            let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|e| e.to_string())?;
            let tag = key
                .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut in_out)
                .map_err(|e| e.to_string())?;
            (iv, in_out, tag.as_ref().to_vec())
        }
        Enc::A128CbcHs256 | Enc::A256CbcHs512 => {
            let half = cek.len() / 2;
            let (mac_key, enc_key) = cek.split_at(half);
            let (hmac_alg, cipher_alg) = if enc_kind == Enc::A128CbcHs256 {
                (hmac::HMAC_SHA256, &cipher::AES_128)
            } else {
                (hmac::HMAC_SHA512, &cipher::AES_256)
            };
            let iv: [u8; 16] = random(16).try_into().expect("16 bytes");
            let key = PaddedBlockEncryptingKey::cbc_pkcs7(
                UnboundCipherKey::new(cipher_alg, enc_key).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            let mut in_out = plaintext.as_bytes().to_vec();
            key.less_safe_encrypt(&mut in_out, EncryptionContext::Iv128(iv.into()))
                .map_err(|e| e.to_string())?;
            let mut mac = hmac::Context::with_key(&hmac::Key::new(hmac_alg, mac_key));
            mac.update(aad);
            mac.update(&iv);
            mac.update(&in_out);
            mac.update(&((aad.len() as u64) * 8).to_be_bytes());
            let tag = mac.sign().as_ref()[..half].to_vec();
            (iv.to_vec(), in_out, tag)
        }
    };
    Ok(format!(
        "{protected}.{}.{}.{}.{}",
        b64(&encrypted_key),
        b64(&iv),
        b64(&ciphertext),
        b64(&tag)
    ))
}

/// A fresh EC P-256 decryption key as a private JWK (for a
/// `decryption_keys_file`); its public half is what [`seal`] needs.
pub fn generate_ec_jwk(kid: &str) -> Value {
    let key = agreement::PrivateKey::generate(&agreement::ECDH_P256).expect("generate P-256");
    let d: aws_lc_rs::encoding::EcPrivateKeyBin = key.as_be_bytes().expect("d");
    let public = key.compute_public_key().expect("public key");
    let public: EcPublicKeyUncompressedBin = public.as_be_bytes().expect("point");
    let xy = &public.as_ref()[1..];
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "d": b64(d.as_ref()), "x": b64(&xy[..32]), "y": b64(&xy[32..])})
}

//! Encrypted tokens (RFC 7516): nested JWTs encrypted to the issuer's
//! decryption keys (an EC key made here, an RSA test key in
//! `tests/fixtures/jwe/`), every alg and enc through tokend, and every JWE
//! tokend must refuse built the way an attacker would. (Interop with an
//! independent implementation: `tests/interop/jwe.sh`, run by `.ci/run`.)

use serde_json::{Value, json};

use crate::helpers::*;
use tokend::jwe::seal::{generate_ec_jwk, seal};
use tokend::mint::{Signer, b64, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";
const OTHER: &str = "https://other.test";
use tokend::jwe::{ALGS, ENCS};

fn rsa_jwk() -> Value {
    serde_json::from_str(include_str!("../fixtures/jwe/rsa-2048.private.json")).unwrap()
}

struct Setup {
    app: TestApp,
    key: Signer,
    other: Signer,
    ec: Value,
    rsa: Value,
    other_ec: Value,
    _idps: (Idp, Idp),
}

/// `main` decrypts with an EC and an RSA key; `other` with an EC key of its own.
async fn setup() -> Setup {
    let key = signer(Algorithm::ES256, "k1");
    let other = signer(Algorithm::ES256, "o1");
    let idp = Idp::start(jwks(&[&key])).await;
    let other_idp = Idp::start(jwks(&[&other])).await;
    let ec = generate_ec_jwk("enc-ec");
    let other_ec = generate_ec_jwk("other-ec");
    let rsa = rsa_jwk();
    let dir = std::env::temp_dir().join(format!("tokend-jwe-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.json"),
        json!({"keys": [ec, rsa]}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("other.json"),
        json!({"keys": [other_ec]}).to_string(),
    )
    .unwrap();
    let decrypt = |file: &str| {
        format!(
            "decryption_keys_file = {:?}",
            dir.join(file).display().to_string()
        )
    };
    let issuers = format!(
        "{}{}",
        jwks_issuer("main", ISS, &idp, &decrypt("main.json")),
        jwks_issuer("other", OTHER, &other_idp, &decrypt("other.json"))
    );
    let app = spawn_ready(config_with(&issuers, "")).await;
    Setup {
        app,
        key,
        other,
        ec,
        rsa,
        other_ec,
        _idps: (idp, other_idp),
    }
}

fn public(jwk: &Value) -> Value {
    let mut public = jwk.clone();
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        public.as_object_mut().unwrap().remove(private);
    }
    public
}

impl Setup {
    fn recipient(&self, alg: &str) -> Value {
        public(if alg.starts_with("RSA") {
            &self.rsa
        } else {
            &self.ec
        })
    }

    fn jwe(&self, alg: &str, enc: &str, jws: &str, extra: Value) -> String {
        seal(jws, &self.recipient(alg), alg, enc, &extra).unwrap()
    }
}

#[tokio::test]
async fn every_alg_and_enc_decrypts_to_a_verified_jwt() {
    let s = setup().await;
    for alg in ALGS {
        for enc in ENCS {
            let claims = with(claims(ISS), json!({"sub": format!("{alg}/{enc}")}));
            let token = s.jwe(alg, enc, &s.key.sign(Algorithm::ES256, &claims), json!({}));
            let answer = s.app.introspect(&token).await;
            assert_eq!(answer["active"], true, "{alg} {enc}: {answer}");
            assert_eq!(answer["sub"], format!("{alg}/{enc}"));
        }
    }
    // Cached: the same JWE again is not decrypted again, and stays right.
    let token = s.jwe(
        "ECDH-ES",
        "A128GCM",
        &s.key.sign(Algorithm::ES256, &claims(ISS)),
        json!({}),
    );
    assert!(s.app.is_active(&token).await);
    assert!(s.app.is_active(&token).await);
}

/// Every JWE tokend refuses, built the way an attacker would; the reason
/// (seen only by operators) says which rule held.
#[tokio::test]
async fn encrypted_tokens_it_must_refuse_are_inactive() {
    let s = setup().await;
    let jws = s.key.sign(Algorithm::ES256, &claims(ISS));
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(ISS).to_string())
    );
    let forged = signer(Algorithm::ES256, "k1").sign(Algorithm::ES256, &claims(ISS));
    let other_issuers = s.other.sign(Algorithm::ES256, &claims(OTHER));
    let mut with_d = public(&s.ec);
    with_d["d"] = s.ec["d"].clone();
    let cases: Vec<(String, &str)> = vec![
        (s.jwe("RSA-OAEP", "A128GCM", &jws, json!({"alg": "RSA1_5"})), "jwe_unsupported"),
        (s.jwe("RSA-OAEP", "A128GCM", &jws, json!({"alg": "dir"})), "jwe_unsupported"),
        (s.jwe("RSA-OAEP", "A128GCM", &jws, json!({"zip": "DEF"})), "jwe_unsupported"),
        (s.jwe("RSA-OAEP", "A128GCM", &jws, json!({"crit": ["exp"], "exp": 1})), "jwe_unsupported"),
        (s.jwe("RSA-OAEP", "A128GCM", &jws, json!({"enc": "A192GCM"})), "jwe_unsupported"),
        (s.jwe("RSA-OAEP", "A128GCM", &jws, json!({"cty": null})), "jwe_not_nested"),
        (s.jwe("RSA-OAEP", "A128GCM", &jws, json!({"cty": "json"})), "jwe_not_nested"),
        (s.jwe("RSA-OAEP", "A128GCM", "just some text", json!({})), "jwe_not_nested"),
        (s.jwe("RSA-OAEP", "A128GCM", &unsigned, json!({})), "alg_none"),
        (s.jwe("ECDH-ES", "A256GCM", &forged, json!({})), "bad_signature"),
        (s.jwe("ECDH-ES", "A256GCM", &other_issuers, json!({})), "jwe_issuer_mismatch"),
        (s.jwe("ECDH-ES", "A256GCM", &jws, json!({"kid": "nobody"})), "jwe_no_key"),
        // A JWE for `other`'s key carrying `main`'s token: opened, but not main's key.
        (seal(&jws, &public(&s.other_ec), "ECDH-ES", "A128GCM", &json!({})).unwrap(), "jwe_issuer_mismatch"),
        // The epk names a point the sender did not use, or is not on the curve,
        // or carries a private key: one answer for all.
        (s.jwe("ECDH-ES", "A128GCM", &jws, json!({"epk": public(&generate_ec_jwk("x"))})), "jwe_decrypt_failed"),
        (s.jwe("ECDH-ES", "A128GCM", &jws, json!({"epk": {"kty": "EC", "crv": "P-256", "x": s.ec["x"], "y": b64([1u8; 32])}})), "jwe_decrypt_failed"),
        (s.jwe("ECDH-ES", "A128GCM", &jws, json!({"epk": with_d})), "jwe_decrypt_failed"),
        (s.jwe("ECDH-ES", "A128GCM", &jws, json!({"epk": {"kty": "EC", "crv": "P-384", "x": b64([1u8; 48]), "y": b64([2u8; 48])}})), "jwe_decrypt_failed"),
    ];
    for (token, reason) in cases {
        assert!(!s.app.is_active(&token).await, "{reason}");
        let explained = s.app.explain(&token).await;
        assert_eq!(explained["reason"], reason, "{explained}");
    }
    // Tampering: a flipped byte in the encrypted key, IV, ciphertext or tag
    // (for GCM and CBC-HMAC, RSA and ECDH) is the same single answer: the
    // padding of CBC is never looked at before its MAC holds.
    for (alg, enc) in [
        ("RSA-OAEP-256", "A128CBC-HS256"),
        ("ECDH-ES+A128KW", "A256GCM"),
        ("RSA-OAEP", "A256CBC-HS512"),
    ] {
        let token = s.jwe(alg, enc, &jws, json!({}));
        for segment in 1..5 {
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let mut bytes = tokend::token::parse::b64_decode(&parts[segment]).unwrap();
            let i = bytes.len() / 2;
            bytes[i] ^= 1;
            parts[segment] = b64(&bytes);
            let tampered = parts.join(".");
            assert!(
                !s.app.is_active(&tampered).await,
                "{alg} {enc} segment {segment}"
            );
            assert_eq!(
                s.app.explain(&tampered).await["reason"],
                "jwe_decrypt_failed",
                "{alg} {enc} segment {segment}"
            );
        }
    }
    // An oversized header (a huge epk) is refused before anything is decoded.
    let huge = s.jwe("ECDH-ES", "A128GCM", &jws, json!({"pad": "x".repeat(4000)}));
    assert!(!s.app.is_active(&huge).await);
}

#[tokio::test]
async fn a_jwe_is_revoked_by_its_inner_token() {
    let s = setup().await;
    let inner = s.key.sign(Algorithm::ES256, &claims(ISS));
    let token = s.jwe("RSA-OAEP-256", "A256GCM", &inner, json!({}));
    assert!(s.app.is_active(&token).await);
    let response = s
        .app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(response.status(), 200);
    assert!(!s.app.is_active(&token).await, "the JWE");
    assert!(!s.app.is_active(&inner).await, "and the JWT inside it");
}

/// A decryption key taken out of the file and the configuration reloaded:
/// a JWE sealed to it is refused at once, though its verdict was cached (the
/// file's path is unchanged, so the issuer is).
#[tokio::test]
async fn a_reload_that_removes_a_decryption_key_ends_its_cached_verdicts() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let (kept, removed) = (generate_ec_jwk("kept"), generate_ec_jwk("removed"));
    let file = crate::reload::ConfigFile::new("");
    let keys = file.0.with_file_name("keys.json");
    std::fs::write(&keys, json!({"keys": [kept, removed]}).to_string()).unwrap();
    let decrypt = format!("decryption_keys_file = {:?}", keys.display().to_string());
    file.write(&config_text_with(
        &jwks_issuer("main", ISS, &idp, &decrypt),
        "",
    ));
    let app = spawn_ready(tokend::config::Config::load(&file.0).unwrap()).await;
    let inner = key.sign(Algorithm::ES256, &claims(ISS));
    let sealed = |to: &Value| seal(&inner, &public(to), "ECDH-ES", "A256GCM", &json!({})).unwrap();
    let (to_kept, to_removed) = (sealed(&kept), sealed(&removed));
    assert!(app.is_active(&to_kept).await);
    assert!(app.is_active(&to_removed).await, "cached now");

    std::fs::write(&keys, json!({"keys": [kept]}).to_string()).unwrap();
    app.app
        .reloader(file.0.clone())
        .reload("test")
        .await
        .expect("reload");
    assert!(
        !app.is_active(&to_removed).await,
        "its key is gone: not served from the cache"
    );
    assert!(app.is_active(&to_kept).await);
}

#[test]
fn check_config_names_every_bad_decryption_key_file() {
    let dir =
        std::env::temp_dir().join(format!("tokend-jwe-config-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let ec = generate_ec_jwk("k");
    let mut mismatched = ec.clone();
    mismatched["x"] = generate_ec_jwk("o")["x"].clone();
    let files = [
        ("not-json.json", "{".to_owned()),
        ("public.json", json!({"keys": [public(&ec)]}).to_string()),
        (
            "sig.json",
            json!({"keys": [with(ec.clone(), json!({"use": "sig"}))]}).to_string(),
        ),
        ("mismatched.json", json!({"keys": [mismatched]}).to_string()),
        (
            "octet.json",
            json!({"keys": [{"kty": "oct", "k": "AAAA"}]}).to_string(),
        ),
        ("empty.json", json!({"keys": []}).to_string()),
    ];
    let mut text = String::new();
    for (i, (name, content)) in files.iter().enumerate() {
        std::fs::write(dir.join(name), content).unwrap();
        text.push_str(&format!(
            "[[issuers]]\nname = \"i{i}\"\nissuer = \"https://i{i}\"\njwks_uri = \"https://i{i}/k\"\ndecryption_keys_file = {:?}\n",
            dir.join(name).display().to_string()
        ));
    }
    text.push_str("[[issuers]]\nname = \"gone\"\nissuer = \"https://gone\"\njwks_uri = \"https://gone/k\"\ndecryption_keys_file = \"/nonexistent/keys.json\"\n");
    assert_config_errors(
        &text,
        &[
            "issuers[0].decryption_keys_file: not JSON",
            "issuers[1].decryption_keys_file: keys[0]: no \"d\"",
            "issuers[2].decryption_keys_file: keys[0]: use is \"sig\"",
            "issuers[3].decryption_keys_file: keys[0]: x and y are not the public key of d",
            "issuers[4].decryption_keys_file: keys[0]: kty Some(\"oct\") is not RSA or EC",
            "issuers[5].decryption_keys_file: no keys",
            "issuers[6].decryption_keys_file: cannot read /nonexistent/keys.json",
        ],
    );
}

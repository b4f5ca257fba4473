//! The identity assertion: a JWT tokend signs for the upstream, verified
//! here with another JWT library against `/.well-known/jwks.json`.

use base64::Engine;
use serde_json::{Value, json};

use crate::authz::{ROUTES, edge};
use crate::helpers::*;
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

/// Verifies `jwt` with the jsonwebtoken crate against tokend's published key
/// set, as an upstream service would, and returns its claims.
pub async fn verify_assertion(app: &TestApp, jwt: &str) -> Value {
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["internal"]);
    validation.set_issuer(&["https://tokend.internal"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("the assertion verifies")
        .claims
}

fn assertion_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-tokend-assertion")
        .expect("assertion header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// RFC 7638 computed here, independently of tokend's code.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str().unwrap() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ),
        _ => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap()
        ),
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[tokio::test]
async fn allowed_requests_carry_a_signed_identity_signed_once_per_token() {
    let e = edge(&format!("{ROUTES}\n[assertion]\nenabled = true\n")).await;
    let token = e.token(json!({"scope": "orders:read orders:write"}));
    let first = e
        .auth("POST", "api.example.com", "/orders", Some(&token))
        .await;
    assert_eq!(first.status(), 200);
    let jwt = assertion_of(&first);
    let claims = verify_assertion(&e.app, &jwt).await;
    let t = now();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "orders:read orders:write");
    assert_eq!(claims["client_id"], "web");
    assert_eq!(claims["orig_iss"], ISS);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!(iat.abs_diff(t) <= 2 && exp == iat + 60, "{claims}");
    assert!(claims.get("aud_orig").is_none() && claims.get("jti_orig").is_none());

    let jwks: Value = e
        .app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        key["kid"],
        thumbprint(key),
        "kid is the RFC 7638 thumbprint"
    );
    assert_eq!(key["alg"], "ES256");
    assert!(key.get("d").is_none(), "no private member is published");

    // The same token again: the same assertion (no new signature) ...
    let again = e
        .auth("GET", "api.example.com", "/orders", Some(&token))
        .await;
    assert_eq!(assertion_of(&again), jwt, "signed once, reused while fresh");
    // ... until half its lifetime has passed.
    e.app.set_now(iat + 31);
    let later = assertion_of(
        &e.auth("GET", "api.example.com", "/orders", Some(&token))
            .await,
    );
    assert_ne!(later, jwt);
    // A denied request carries none.
    let reader = e.token(json!({"scope": "orders:read"}));
    let denied = e
        .auth("POST", "api.example.com", "/orders", Some(&reader))
        .await;
    assert_eq!(denied.status(), 403);
    assert!(denied.headers().get("x-tokend-assertion").is_none());

    // Never outlives the token.
    e.app.set_now(now());
    let short = e.token(json!({"exp": now() + 20}));
    let jwt = assertion_of(
        &e.auth("GET", "api.example.com", "/elsewhere", Some(&short))
            .await,
    );
    let claims = verify_assertion(&e.app, &jwt).await;
    assert_eq!(claims["exp"], json!(now() + 20));
}

#[tokio::test]
async fn an_ed25519_key_file_signs_and_a_bad_one_is_a_config_error() {
    let dir = std::env::temp_dir().join(format!("tokend-assert-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let ed = tokend::mint::Signer::generate(Algorithm::EdDSA, "x");
    let pem = |label: &str, der: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let key_path = dir.join("assertion.pem");
    std::fs::write(&key_path, pem("PRIVATE KEY", &ed.private_der())).unwrap();
    let e = edge(&format!(
        "[assertion]\nenabled = true\nkey_file = {:?}\nclaims = [\"sub\", \"tenant\"]\n",
        key_path.display().to_string()
    ))
    .await;
    let token = e.token(json!({"tenant": {"id": 7}}));
    let response = e.auth("GET", "h", "/x", Some(&token)).await;
    let claims = verify_assertion(&e.app, &assertion_of(&response)).await;
    assert_eq!(
        claims["tenant"],
        json!({"id": 7}),
        "a claim copied as the token had it"
    );
    assert!(claims.get("scope").is_none(), "only the configured claims");
    let jwks: Value = e
        .app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    assert_eq!(jwks["keys"][0]["kid"], thumbprint(&jwks["keys"][0]));

    let rsa = tokend::mint::Signer::generate(Algorithm::RS256, "r");
    for (name, content, why) in [
        (
            "rsa.pem",
            pem("PRIVATE KEY", &rsa.private_der()),
            "neither an EC P-256 nor an Ed25519 key",
        ),
        ("garbage.pem", "not a key".to_owned(), "no private key"),
        ("missing.pem", String::new(), "No such file"),
    ] {
        let path = dir.join(name);
        if name != "missing.pem" {
            std::fs::write(&path, content).unwrap();
        }
        let text = format!(
            "[assertion]\nenabled = true\nkey_file = {:?}\n",
            path.display().to_string()
        );
        let errors = tokend::config::Config::from_toml(&text, Vec::new())
            .unwrap_err()
            .0;
        assert!(
            errors.len() == 1
                && errors[0].starts_with("assertion.key_file:")
                && errors[0].contains(why),
            "{name}: {errors:?}"
        );
    }
    let errors = tokend::config::Config::from_toml(
        "[assertion]\nheader = \"x-auth-subject\"\nttl_seconds = 0\nclaims = [\"exp\"]\n",
        Vec::new(),
    )
    .unwrap_err()
    .0;
    assert_eq!(errors.len(), 3, "{errors:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_assertion_the_jwks_is_absent_and_the_header_empty() {
    let e = edge("").await;
    assert_eq!(e.app.get("/.well-known/jwks.json").await.status(), 404);
    let token = e.token(json!({}));
    let response = e.auth("GET", "h", "/x", Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("x-tokend-assertion").unwrap(),
        "",
        "sent empty, so gateways overwrite a client's forged copy"
    );
}

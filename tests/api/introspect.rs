//! RFC 7662 introspection over real HTTP: answers, caller auth, bad requests,
//! every algorithm, and the claim rules.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test/realms/main";

/// One issuer serving keys for every asymmetric algorithm.
async fn all_algorithms() -> (Idp, TestApp, Vec<(Algorithm, Signer)>) {
    let algs = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    let signers: Vec<(Algorithm, Signer)> = algs
        .iter()
        .map(|a| (*a, signer(*a, &format!("kid-{a}"))))
        .collect();
    let idp = Idp::start(jwks(&signers.iter().map(|(_, s)| s).collect::<Vec<_>>())).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    (idp, app, signers)
}

#[tokio::test]
async fn every_asymmetric_algorithm_is_verified() {
    let (_idp, app, signers) = all_algorithms().await;
    for (alg, signer) in &signers {
        let token = signer.sign(*alg, &claims(ISS));
        assert!(app.is_active(&token).await, "{alg} token should be active");
        // the same token with one signature byte flipped
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        raw[10] ^= 1;
        let forged = format!("{head}.{}", tokend::mint::b64(raw));
        assert!(
            !app.is_active(&forged).await,
            "{alg} token with a flipped signature bit"
        );
    }
}

#[tokio::test]
async fn hmac_issuer_verifies_hs256_hs384_hs512() {
    let secret = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let issuer = format!(
        "[[issuers]]\nname = \"hs\"\nissuer = \"{ISS}\"\nhmac_secret = \"{}\"\n",
        std::str::from_utf8(secret).unwrap()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let signer = Signer::hmac(secret, "ignored");
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token =
            signer.sign_with_header(alg, &json!({"alg": alg.name(), "typ": "JWT"}), &claims(ISS));
        assert!(app.is_active(&token).await, "{alg}");
    }
    let wrong = Signer::hmac(
        b"another-secret-another-secret-another-secret-another!!!",
        "x",
    );
    let token = wrong.sign_with_header(Algorithm::HS256, &json!({"alg": "HS256"}), &claims(ISS));
    assert!(!app.is_active(&token).await);
}

#[tokio::test]
async fn tokens_from_an_independent_library_are_active() {
    // Keys made here, tokens signed by the jsonwebtoken crate, not by tokend's minting code.
    let ec = signer(Algorithm::ES256, "ec");
    let ed = signer(Algorithm::EdDSA, "ed");
    let rsa = signer(Algorithm::RS256, "rsa");
    let idp = Idp::start(jwks(&[&ec, &ed, &rsa])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let sign = |alg: jsonwebtoken::Algorithm, kid: &str, key: &jsonwebtoken::EncodingKey| {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims(ISS), key).unwrap()
    };
    let ec_key = jsonwebtoken::EncodingKey::from_ec_der(&ec.private_der());
    let ed_key = jsonwebtoken::EncodingKey::from_ed_der(&ed.private_der());
    let pem = pem_pkcs8(&rsa.private_der());
    let rsa_key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    assert!(
        app.is_active(&sign(jsonwebtoken::Algorithm::ES256, "ec", &ec_key))
            .await
    );
    assert!(
        app.is_active(&sign(jsonwebtoken::Algorithm::EdDSA, "ed", &ed_key))
            .await
    );
    assert!(
        app.is_active(&sign(jsonwebtoken::Algorithm::RS256, "rsa", &rsa_key))
            .await
    );
    assert!(
        app.is_active(&sign(jsonwebtoken::Algorithm::PS512, "rsa", &rsa_key))
            .await
    );
}

fn pem_pkcs8(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn active_answer_carries_every_claim_and_inactive_nothing() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let mut c = claims(ISS);
    c["username"] = json!("alice@example.com");
    c["custom"] = json!({"tier": "gold", "roles": ["a", "b"]});
    c["active"] = json!(false); // a token cannot make itself look inactive
    c["token_type"] = json!("weird");
    let body = app.introspect(&key.sign(Algorithm::ES256, &c)).await;
    assert_eq!(body["active"], json!(true));
    assert_eq!(body["token_type"], json!("Bearer"));
    for member in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "scope",
        "client_id",
        "username",
        "custom",
    ] {
        assert_eq!(body[member], c[member], "member {member}");
    }
    // azp and scp stand in for client_id and scope
    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("client_id");
    c.as_object_mut().unwrap().remove("scope");
    c["azp"] = json!("spa");
    c["scp"] = json!(["read", "admin"]);
    let body = app.introspect(&key.sign(Algorithm::ES256, &c)).await;
    assert_eq!(body["client_id"], json!("spa"));
    assert_eq!(body["scope"], json!("read admin"));

    let expired = {
        let mut c = claims(ISS);
        c["exp"] = json!(now() - 3600);
        c["iat"] = json!(now() - 7200);
        key.sign(Algorithm::ES256, &c)
    };
    assert_eq!(app.introspect(&expired).await, json!({"active": false}));
    assert_eq!(app.introspect("garbage").await, json!({"active": false}));
}

#[tokio::test]
async fn callers_must_authenticate_and_hold_introspect() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));

    for auth in [
        None,
        Some(("gateway", "wrong")),
        Some(("nobody", GATEWAY_SECRET)),
        Some(("ops", GATEWAY_SECRET)),
    ] {
        let response = app.introspect_as(auth, &token).await;
        assert_eq!(response.status(), 401, "{auth:?}");
        assert!(response.headers().get("www-authenticate").is_some());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    let response = app
        .introspect_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(response.status(), 403);
    // Bearer with the client secret
    let response = app
        .http
        .post(format!("{}/introspect", app.base))
        .bearer_auth(GATEWAY_SECRET)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["active"],
        json!(true)
    );
}

#[tokio::test]
async fn bad_requests_get_400_with_an_oauth_error() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let url = format!("{}/introspect", app.base);
    let post = || {
        app.http
            .post(&url)
            .basic_auth("gateway", Some(GATEWAY_SECRET))
    };
    let cases = [
        (
            "no token",
            post().form(&[("token_type_hint", "access_token")]),
        ),
        ("empty token", post().form(&[("token", "")])),
        ("json body", post().json(&json!({"token": "x"}))),
        ("no content type", post().body("token=x")),
        (
            "token twice",
            post()
                .header("content-type", "application/x-www-form-urlencoded")
                .body("token=a&token=b"),
        ),
        ("huge body", post().form(&[("token", "x".repeat(100_000))])),
    ];
    for (what, request) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}");
        assert!(body["error_description"].is_string(), "{what}");
    }
    // Larger than max_token_bytes but within the body limit: an answer, not an error.
    let big = format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c");
    assert_eq!(app.introspect(&big).await, json!({"active": false}));
}

#[tokio::test]
async fn time_rules_follow_the_injected_clock() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, "leeway_seconds = 30"),
        "",
    ))
    .await;
    let t = now();
    let token = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "iat": t, "nbf": t + 100, "exp": t + 1000}),
    );
    app.set_now(t);
    assert!(!app.is_active(&token).await, "nbf 100 s ahead");
    app.set_now(t + 70);
    assert!(app.is_active(&token).await, "nbf within leeway");
    app.set_now(t + 1029);
    assert!(app.is_active(&token).await, "exp within leeway");
    app.set_now(t + 1030);
    assert!(!app.is_active(&token).await, "expired");
    let future = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "iat": t + 100, "exp": t + 1000}),
    );
    app.set_now(t);
    assert!(!app.is_active(&future).await, "iat in the future");
}

#[tokio::test]
async fn issuer_policy_audience_typ_required_claims_lifetime() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let policy = r#"
audiences = ["orders"]
token_types = ["at+jwt"]
required_claims = ["exp", "sub", "client_id", "iat"]
max_lifetime_seconds = 3600
algorithms = ["ES256"]
"#;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, policy), "")).await;
    let at = |c: &Value| {
        key.sign_with_header(
            Algorithm::ES256,
            &json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}),
            c,
        )
    };
    assert!(app.is_active(&at(&claims(ISS))).await);
    let mut c = claims(ISS);
    c["aud"] = json!(["billing"]);
    assert!(!app.is_active(&at(&c)).await, "audience");
    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("client_id");
    assert!(!app.is_active(&at(&c)).await, "required claim");
    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("iat");
    assert!(!app.is_active(&at(&c)).await, "required iat (a kept date)");
    let mut c = claims(ISS);
    c["exp"] = json!(now() + 7200);
    assert!(!app.is_active(&at(&c)).await, "lifetime");
    // typ JWT (an ID token, say) is not an access token here
    assert!(
        !app.is_active(&key.sign(Algorithm::ES256, &claims(ISS)))
            .await,
        "typ"
    );
    let no_typ = key.sign_with_header(
        Algorithm::ES256,
        &json!({"alg": "ES256", "kid": "k1"}),
        &claims(ISS),
    );
    assert!(!app.is_active(&no_typ).await, "missing typ");
    // unknown issuer
    assert!(
        !app.is_active(&at(&claims("https://other.test"))).await,
        "unknown issuer"
    );
}

//! The attack review's findings (issue 16), each replayed the way an attacker
//! would: re-encoded signatures of a revoked token, small-order Ed25519 keys,
//! times that overflow, the edges of subject revocations, identity headers
//! that collapse, credentials in key URLs, gRPC bodies before authentication,
//! and connection storms.

use serde_json::{Value, json};
use std::time::Duration;

use crate::gateways::check_request;
use crate::helpers::*;
use crate::redis_store::{replica, single, wait_until};
use crate::redis_support::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tokend::mint::{Signer, b64, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";
const POLICY: &str = "leeway_seconds = 30\nmax_lifetime_seconds = 3600";

/// Group orders of P-256 and P-384, big-endian.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_N: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
/// The Ed25519 group order L, little-endian (as S is encoded).
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (input, tokend::token::parse::b64_decode(sig).unwrap())
}

/// `a − b` on big-endian numbers of equal length (a ≥ b).
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    out
}

/// The same ECDSA signature with `s` replaced by `n − s`: valid, and another string.
fn high_s(token: &str, n_hex: &str) -> String {
    let (input, sig) = split(token);
    let half = sig.len() / 2;
    let n = hex::decode(n_hex).unwrap();
    let mut malleated = sig[..half].to_vec();
    malleated.extend(sub_be(&n, &sig[half..]));
    format!("{input}.{}", b64(malleated))
}

fn without_jti(iss: &str) -> Value {
    let mut c = claims(iss);
    c.as_object_mut().unwrap().remove("jti");
    c
}

async fn active_on_both_fronts(app: &TestApp, token: &str) -> (bool, bool) {
    let auth = app.forward_auth(Some(&format!("Bearer {token}"))).await;
    (app.is_active(token).await, auth.status() == 200)
}

async fn ecdsa_copies_stay_revoked(app: &TestApp, key: &Signer, alg: Algorithm, n: &str) {
    let token = key.sign(alg, &without_jti(ISS));
    let malleated = high_s(&token, n);
    let (input, _) = split(&token);
    let resigned = format!("{input}.{}", b64(key.sign_bytes(alg, input.as_bytes())));
    assert_ne!(malleated, token);
    assert_ne!(resigned, token);
    for copy in [&malleated, &resigned] {
        assert_eq!(
            active_on_both_fronts(app, copy).await,
            (true, true),
            "{alg:?}: the re-encoding is a valid token before the revocation"
        );
    }
    let revoked = app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(revoked.status(), 200);
    for copy in [&token, &malleated, &resigned] {
        assert_eq!(
            active_on_both_fronts(app, copy).await,
            (false, false),
            "{alg:?}: a re-encoding of a revoked token is active again"
        );
    }
}

#[tokio::test]
async fn high_s_and_re_signed_ecdsa_copies_of_a_revoked_token_stay_revoked() {
    let k256 = signer(Algorithm::ES256, "p256");
    let k384 = signer(Algorithm::ES384, "p384");
    let idp = Idp::start(jwks(&[&k256, &k384])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, POLICY), "")).await;
    ecdsa_copies_stay_revoked(&app, &k256, Algorithm::ES256, P256_N).await;
    ecdsa_copies_stay_revoked(&app, &k384, Algorithm::ES384, P384_N).await;
}

#[tokio::test]
async fn malleated_copies_stay_revoked_with_redis_on_every_replica() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let key = signer(Algorithm::ES256, "p256");
    let idp = Idp::start(jwks(&[&key])).await;
    let a = replica(&idp, &single(&url, &prefix, "")).await;
    let b = replica(&idp, &single(&url, &prefix, "")).await;
    ecdsa_copies_stay_revoked(&a, &key, Algorithm::ES256, P256_N).await;

    let token = key.sign(
        Algorithm::ES256,
        &with(without_jti(ISS), json!({"nonce": "second"})),
    );
    let malleated = high_s(&token, P256_N);
    assert!(b.is_active(&malleated).await);
    assert_eq!(
        a.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
            .await
            .status(),
        200
    );
    until_inactive(&b, &token, Duration::from_secs(5)).await;
    assert!(!b.is_active(&malleated).await, "replica B: malleated copy");
    assert!(!b.is_active(&token).await, "replica B: original");
}

#[tokio::test]
async fn ed25519_re_encodings_are_refused() {
    let key = signer(Algorithm::EdDSA, "ed");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, POLICY), "")).await;
    let token = key.sign(Algorithm::EdDSA, &without_jti(ISS));
    assert!(app.is_active(&token).await);
    let (input, sig) = split(&token);
    // S + L: the same point equation, a non-canonical scalar.
    let mut s_plus_l = sig.clone();
    let mut carry = 0u16;
    for (i, l) in ED25519_L.iter().enumerate() {
        let v = s_plus_l[32 + i] as u16 + *l as u16 + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    let encoded = b64(&sig);
    let last = encoded.chars().last().unwrap();
    // 64 bytes end in 4 unused bits: another last character that decodes leniently.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.find(last).unwrap();
    let sibling = alphabet.as_bytes()[pos ^ 1] as char;
    let trailing_bits = format!("{input}.{}{sibling}", &encoded[..encoded.len() - 1]);
    for copy in [
        format!("{input}.{}", b64(&s_plus_l)),
        trailing_bits,
        format!("{input}.{encoded}="),
        format!("{input}.{}", encoded.replace('-', "+").replace('_', "/")),
    ] {
        if copy.ends_with(&encoded) {
            continue; // the sig had no '-'/'_' to swap
        }
        assert!(!app.is_active(&copy).await, "re-encoding accepted: {copy}");
    }
}

/// The attack of finding 2: with a small-order public key, R = identity and
/// S = 0 verify for any message, no private key needed.
#[tokio::test]
async fn small_order_ed25519_keys_never_enter_a_key_set() {
    let honest = signer(Algorithm::EdDSA, "honest");
    let mut keys = jwks(&[&honest]);
    let identity = {
        let mut p = [0u8; 32];
        p[0] = 1;
        p
    };
    keys["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty":"OKP","crv":"Ed25519","kid":"evil","x": b64(identity)}));
    let idp = Idp::start(keys).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, POLICY), "")).await;

    let header = json!({"alg":"EdDSA","kid":"evil","typ":"JWT"}).to_string();
    let input = format!("{}.{}", b64(header), b64(claims(ISS).to_string()));
    let mut sig = [0u8; 64];
    sig[0] = 1; // R = the identity point, S = 0
    let forged = format!("{input}.{}", b64(sig));
    assert!(!app.is_active(&forged).await, "a keyless forgery is active");
    assert!(
        app.is_active(&honest.sign(Algorithm::EdDSA, &claims(ISS)))
            .await
    );
    let issuers = crate::keys::admin_issuers(&app).await.to_string();
    assert!(issuers.contains("small order"), "{issuers}");
}

#[tokio::test]
async fn a_huge_exp_is_revoked_not_wrapped() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let uncapped = "leeway_seconds = 30\nmax_lifetime_seconds = 0";
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, uncapped), "")).await;
    let token = key.sign(Algorithm::ES256, &with(claims(ISS), json!({"exp": 1e20})));
    assert!(app.is_active(&token).await);
    let revoked = app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(revoked.status(), 200);
    assert!(!app.is_active(&token).await, "token form");

    let by_jti = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"jti":"far","exp": 1e19})),
    );
    let stored = app
        .admin_post(json!({"jti":"far","iss":ISS,"exp":u64::MAX}))
        .await;
    assert!(stored.status().is_success(), "{}", stored.status());
    assert!(!app.is_active(&by_jti).await, "jti form");
    let listed = app.admin_list("").await;
    for entry in listed["entries"].as_array().unwrap() {
        assert!(entry["expires_at"].as_u64().unwrap() > now() + 1_000_000);
    }
}

#[tokio::test]
async fn a_huge_exp_in_redis_is_stored_whole_and_seen_by_replicas() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let issuer = jwks_issuer("main", ISS, &idp, "max_lifetime_seconds = 0");
    let spawn = || async {
        let app = spawn_ready(config_with(&issuer, &single(&url, &prefix, ""))).await;
        wait_until("loaded", Duration::from_secs(10), || {
            app.app.state.revocations.health().loaded
        })
        .await;
        app
    };
    let a = spawn().await;
    let b = spawn().await;
    let token = key.sign(Algorithm::ES256, &with(claims(ISS), json!({"exp": 1e15})));
    for attempt in 0..2 {
        let revoked = a.revoke_as(Some(("revoker", REVOKER_SECRET)), &token).await;
        assert_eq!(revoked.status(), 200, "put {attempt}");
    }
    until_inactive(&b, &token, Duration::from_secs(5)).await;
    // A third replica loads it from the hash: the stored entry is readable.
    let c = spawn().await;
    assert!(
        !c.is_active(&token).await,
        "a fresh replica reads the entry"
    );
}

#[tokio::test]
async fn a_fractional_exp_stays_revoked_through_its_last_second() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let exact = "leeway_seconds = 0\nmax_lifetime_seconds = 3600";
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, exact), "")).await;
    let end = now() + 100;
    let token = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"exp": end as f64 + 0.5})),
    );
    // With no leeway, the app's clock must not lag the token's `iat` (a second
    // may have turned since the app started): else the revocation is of an
    // inactive token, stores nothing, and the token is active later.
    app.set_now(now());
    assert!(app.is_active(&token).await);
    app.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    app.set_now(end);
    assert!(
        !app.is_active(&token).await,
        "active in its last half second"
    );
}

/// Once a subject revocation is stored, no token of the subject issued before
/// it is ever active again, whatever the clock says later.
async fn never_active_again(app: &TestApp, token: &str, from: u64, to: u64) {
    let runtime = app.app.state.runtime();
    let verifier = &runtime.verifier;
    for t in from..to {
        assert!(
            !verifier.check(&presented(token), t).await.is_active(),
            "active again at now + {}",
            t - from
        );
    }
}

#[tokio::test]
async fn subject_revocations_cover_tokens_at_the_edges_of_iat() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, POLICY), "")).await;
    let t = now();
    app.set_now(t); // the lifetime cap is measured from tokend's now
    // An IdP clock 20 s ahead (within the 30 s leeway) minted this just now.
    let ahead = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"iat": t + 20, "exp": t + 320})),
    );
    // No iat: issued at most `max_lifetime` before its exp.
    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("iat");
    c["exp"] = json!(t + 3600);
    let no_iat = key.sign(Algorithm::ES256, &c);
    assert!(app.is_active(&ahead).await && app.is_active(&no_iat).await);

    let stored = app.admin_post(json!({"sub":"alice","iss":ISS})).await;
    assert!(stored.status().is_success());
    never_active_again(&app, &ahead, t, t + 400).await;
    never_active_again(&app, &no_iat, t, t + 3700).await;

    // Not over-broad: a token the IdP issues after the revocation is active.
    app.set_now(t + 100);
    let later = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"iat": t + 100, "exp": t + 400})),
    );
    assert!(app.is_active(&later).await);
}

#[tokio::test]
async fn claims_a_header_cannot_carry_refuse_the_request_on_every_front() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, POLICY), "")).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut envoy = AuthorizationClient::new(channel);
    let unsafe_claims = [
        json!({"sub": "alice\r\nx-auth-subject: admin"}),
        json!({"sub": "alice\n"}),
        json!({"scope": "read\u{0}admin"}),
        json!({"sub": "ålice"}),
        json!({"sub": " admin"}),
        json!({"sub": "admin "}),
        json!({"client_id": "web\t"}),
        json!({"iss": ISS, "sub": "bob", "scope": "read\u{7f}"}),
    ];
    for extra in unsafe_claims {
        let token = key.sign(Algorithm::ES256, &with(claims(ISS), extra.clone()));
        assert!(app.is_active(&token).await, "a valid token: {extra}");
        let auth = app.forward_auth(Some(&format!("Bearer {token}"))).await;
        assert_eq!(auth.status(), 401, "/auth passed {extra}");
        let bearer = format!("Bearer {token}");
        let answer = envoy
            .check(check_request(&[("authorization", &bearer)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status.unwrap().code, 16, "Check passed {extra}");
    }
    let plain = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"sub": "alice smith"})),
    );
    let auth = app.forward_auth(Some(&format!("Bearer {plain}"))).await;
    assert_eq!(auth.status(), 200);
    assert_eq!(auth.headers()["x-auth-subject"], "alice smith");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"tokend_requests_total{api="forward_auth",result="claim_not_header_safe"} 8"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tokend_requests_total{api="envoy",result="claim_not_header_safe"} 8"#)
    );
}

#[tokio::test]
async fn key_url_credentials_never_reach_readyz_admin_or_errors() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    idp.set_status(500);
    let secret_url = idp.jwks_uri().replace("http://", "http://reader:pa55word@")
        + "?X-Amz-Signature=qu3rysecret";
    let issuer = format!(
        "[[issuers]]\nname = \"main\"\nissuer = \"{ISS}\"\njwks_uri = \"{secret_url}\"\nallow_insecure_http = true\n"
    );
    let mut config = config_with(&issuer, "");
    config.server.metrics_addr = "127.0.0.1:0".into();
    let app = spawn_app(config).await;
    let issuer = app.app.state.runtime().issuer_by_name("main").unwrap();
    let error = issuer.refresh_now().await.unwrap_err().to_string();
    let metrics_base = format!("http://{}", app.app.metrics_addr.unwrap());
    let readyz = app.get("/readyz").await.text().await.unwrap();
    let metrics_readyz = reqwest::get(format!("{metrics_base}/readyz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let admin = crate::keys::admin_issuers(&app).await.to_string();
    for (what, text) in [
        ("refresh error", &error),
        ("/readyz", &readyz),
        ("metrics /readyz", &metrics_readyz),
        ("/admin/issuers", &admin),
    ] {
        for secret in ["pa55word", "reader", "qu3rysecret", "X-Amz"] {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
    }
    assert!(admin.contains("***@127.0.0.1"), "{admin}");
    assert!(admin.contains("HTTP 500"), "{admin}");
    assert!(readyz.contains("\"failing\":true"), "{readyz}");
}

fn rss_mib(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096 / (1 << 20)
}

/// Finding 3: unauthenticated calls carrying megabytes are refused from their
/// headers; tokend never decodes (or keeps) their bodies.
#[tokio::test]
async fn unauthenticated_grpc_calls_are_refused_before_their_body_is_read() {
    use std::process::{Command, Stdio};
    use tokend::api::grpc::pb;
    let (http, grpc) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["serve", "--dev"])
        .env("TOKEND__SERVER__HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("TOKEND__SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc}")).unwrap();
    let started = std::time::Instant::now();
    let channel = loop {
        match endpoint.connect().await {
            Ok(c) => break c,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("tokend --dev gRPC: {e}"),
        }
    };
    let client = pb::token_service_client::TokenServiceClient::new(channel);
    let baseline = rss_mib(child.id());
    let big = "a".repeat(7 << 20);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (mut client, token) = (client.clone(), big.clone());
        calls.spawn(async move {
            let result = if i % 2 == 0 {
                client
                    .introspect(pb::IntrospectRequest {
                        token,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
            } else {
                client
                    .introspect_batch(pb::IntrospectBatchRequest {
                        requests: vec![pb::IntrospectRequest {
                            token,
                            ..Default::default()
                        }],
                    })
                    .await
                    .map(|_| ())
            };
            result.unwrap_err().code()
        });
    }
    while let Some(code) = calls.join_next().await {
        assert_eq!(code.unwrap(), tonic::Code::Unauthenticated);
    }
    let after = rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        after < baseline + 64,
        "RSS {baseline} MiB → {after} MiB after 200 refused 7 MiB calls"
    );
}

#[tokio::test]
async fn single_token_grpc_calls_have_a_small_message_limit() {
    use tokend::api::grpc::pb;
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, POLICY), "")).await;
    let mut client = crate::grpc::grpc_client(&app).await;
    let gateway = Some(("gateway", GATEWAY_SECRET));
    let call = |token: String| {
        crate::grpc::with_auth(
            pb::IntrospectRequest {
                token,
                ..Default::default()
            },
            gateway,
        )
    };
    let over = client.introspect(call("a".repeat(64 << 10))).await;
    assert_eq!(over.unwrap_err().code(), tonic::Code::ResourceExhausted);
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert!(
        client
            .introspect(call(token))
            .await
            .unwrap()
            .into_inner()
            .active
    );
    // A batch of many tokens keeps its large limit.
    let batch = pb::IntrospectBatchRequest {
        requests: (0..500)
            .map(|_| pb::IntrospectRequest {
                token: "b".repeat(4000),
                ..Default::default()
            })
            .collect(),
    };
    let answer = client
        .introspect_batch(crate::grpc::with_auth(batch, gateway))
        .await
        .unwrap();
    assert_eq!(answer.into_inner().responses.len(), 500);
}

//! AWS Application Load Balancer: the `x-amzn-oidc-data` header as "User
//! claims encoding and signature verification" describes it
//! (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-authenticate-users.html#user-claims-encoding):
//! ES256; the header `{"typ", "kid", "alg", "iss", "client", "signer",
//! "exp"}`; the payload the IdP's userinfo claims with `exp` and `iss`;
//! every segment base64url *with* `=` padding, the signature over the padded
//! text; the key of each `kid` a PEM public key at
//! `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`.

use axum::Router;
use axum::http::{StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::helpers::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-west-1:999999999999:loadbalancer/app/orders/8649d45ac4b2b99b";
const OTHER_ARN: &str =
    "arn:aws:elasticloadbalancing:us-west-1:111111111111:loadbalancer/app/evil/50dc6c495c0c9188";
const CLIENT: &str = "a2YDVG5DY6O3L1VeQGjT";
const IDP: &str = "https://example.okta.com";
const KID_1: &str = "beec8bbc-84e0-4736-9745-a6bd96fde712";
const KID_2: &str = "40361c18-acdf-4817-a9a3-bb8980d2d398";
const HEADER: &str = "x-amzn-oidc-data";

/// The regional key endpoint: `GET /<kid>` answers the PEM public key, or
/// 404; every path asked for is recorded.
struct KeyEndpoint {
    base: String,
    keys: Arc<Mutex<HashMap<String, String>>>,
    asked: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
}

impl KeyEndpoint {
    async fn start() -> KeyEndpoint {
        let keys: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (k, a, s) = (keys.clone(), asked.clone(), status.clone());
        let router = Router::new().fallback(move |uri: Uri| {
            let (keys, asked, status) = (k.clone(), a.clone(), s.clone());
            async move {
                asked.lock().unwrap().push(uri.path().to_owned());
                let status = StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                if status != StatusCode::OK {
                    return (status, String::new());
                }
                let kid = uri.path().trim_start_matches('/');
                match keys.lock().unwrap().get(kid) {
                    Some(pem) => (StatusCode::OK, pem.clone()),
                    None => (StatusCode::NOT_FOUND, String::new()),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        KeyEndpoint {
            base,
            keys,
            asked,
            status,
        }
    }

    /// Publishes `key` under `kid`, as `-----BEGIN PUBLIC KEY-----`.
    fn publish(&self, kid: &str, key: &Signer) {
        let pair = rcgen::KeyPair::try_from(key.private_der().as_slice()).unwrap();
        self.keys
            .lock()
            .unwrap()
            .insert(kid.to_owned(), pair.public_key_pem());
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

fn padded(json: &Value) -> String {
    URL_SAFE.encode(json.to_string())
}

/// An ALB token: the header and payload as the AWS page shows them,
/// padded, signed over the padded text.
fn alb_token(key: &Signer, header: Value, payload: Value) -> String {
    let input = format!("{}.{}", padded(&header), padded(&payload));
    let sig = key.sign_bytes(Algorithm::ES256, input.as_bytes());
    format!("{input}.{}", URL_SAFE.encode(sig))
}

fn alb_header(kid: &str) -> Value {
    json!({
        "typ": "JWT", "kid": kid, "alg": "ES256", "iss": IDP, "client": CLIENT,
        "signer": ARN, "exp": now() + 120
    })
}

fn userinfo(sub: &str) -> Value {
    json!({
        "sub": sub, "email_verified": "false", "given_name": "Alice",
        "email": "alice@example.com", "username": "alice", "exp": now() + 120, "iss": IDP
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn alb_issuer(keys: &KeyEndpoint) -> String {
    format!(
        "[[issuers]]\nname = \"alb\"\nprovider = \"alb\"\nissuer = \"{IDP}\"\n\
         header_claim_values = {{ signer = [\"{ARN}\"], client = [\"{CLIENT}\"] }}\n\
         keys_url_template = \"{}/{{kid}}\"\nallow_insecure_http = true\n\
         unknown_kid_refresh_seconds = 1\n",
        keys.base
    )
}

#[tokio::test]
async fn alb_tokens_pass_from_their_header_with_each_key_fetched_once_on_first_sight() {
    let (key_1, key_2) = (
        signer(Algorithm::ES256, KID_1),
        signer(Algorithm::ES256, KID_2),
    );
    let keys = KeyEndpoint::start().await;
    keys.publish(KID_1, &key_1);
    keys.publish(KID_2, &key_2);
    let app = spawn_ready(config_with(&alb_issuer(&keys), "")).await;
    assert!(
        keys.asked().is_empty(),
        "no key is fetched before a token names it"
    );

    let token = alb_token(&key_1, alb_header(KID_1), userinfo("alice"));
    assert!(
        token.contains("=."),
        "the fixture pads as ALB does: {token}"
    );
    assert_eq!(auth_with_header(&app, HEADER, &token, "/").await, 200);
    for i in 0..5 {
        let fresh = alb_token(&key_1, alb_header(KID_1), userinfo(&format!("u{i}")));
        assert!(app.is_active(&fresh).await);
    }
    assert_eq!(keys.asked(), [format!("/{KID_1}")], "one fetch for the kid");

    // A rotation: many requests see the new kid at once; one fetch serves
    // them all, and none of them fails for it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let burst: Vec<_> = (0..16)
        .map(|i| alb_token(&key_2, alb_header(KID_2), userinfo(&format!("b{i}"))))
        .collect();
    let answers = futures_util::future::join_all(
        burst.iter().map(|t| auth_with_header(&app, HEADER, t, "/")),
    )
    .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(keys.asked(), [format!("/{KID_1}"), format!("/{KID_2}")]);

    // The claims are the token's: what the IdP said about the user.
    let body = app.introspect(&token).await;
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["iss"], IDP);
}

#[tokio::test]
async fn another_load_balancer_or_client_is_refused_though_its_signature_verifies() {
    // The regional endpoint serves every ALB's keys: a token signed by
    // another customer's ALB verifies, so `signer` decides.
    let key = signer(Algorithm::ES256, KID_1);
    let keys = KeyEndpoint::start().await;
    keys.publish(KID_1, &key);
    let app = spawn_ready(config_with(&alb_issuer(&keys), "")).await;
    let good = alb_token(&key, alb_header(KID_1), userinfo("alice"));
    assert!(app.is_active(&good).await);
    for (header, why) in [
        (
            with(alb_header(KID_1), json!({"signer": OTHER_ARN})),
            "another ALB",
        ),
        (
            with(alb_header(KID_1), json!({"client": "other-client"})),
            "another client",
        ),
        (
            with(alb_header(KID_1), json!({"signer": null})),
            "no signer",
        ),
        (
            with(alb_header(KID_1), json!({"signer": [ARN]})),
            "signer not a string",
        ),
    ] {
        let token = alb_token(&key, header, userinfo("mallory"));
        assert_eq!(reason(&app, &token).await, "header_value_mismatch", "{why}");
        assert_eq!(
            auth_with_header(&app, HEADER, &token, "/").await,
            401,
            "{why}"
        );
    }
    // The preset's ES256: a token of the same key under ES384 is refused.
    let es384 = alb_token(
        &key,
        with(alb_header(KID_1), json!({"alg": "ES384"})),
        userinfo("x"),
    );
    assert_eq!(reason(&app, &es384).await, "alg_not_allowed");
    let explained = app
        .explain(&alb_token(
            &key,
            with(alb_header(KID_1), json!({"signer": OTHER_ARN})),
            userinfo("m"),
        ))
        .await;
    assert!(
        explained["detail"]
            .as_str()
            .unwrap()
            .contains("header signer"),
        "{explained}"
    );
}

#[tokio::test]
async fn a_kid_is_never_a_path_and_a_missing_key_is_inactive_not_an_error() {
    let key = signer(Algorithm::ES256, KID_1);
    let keys = KeyEndpoint::start().await;
    keys.publish(KID_1, &key);
    let app = spawn_ready(config_with(&alb_issuer(&keys), "")).await;
    for kid in ["../x", "..%2fx", "a/b", "x?y=1", "k.pem", "%00"] {
        let token = alb_token(&key, alb_header(kid), userinfo("m"));
        assert_eq!(reason(&app, &token).await, "unknown_kid", "{kid}");
        let detail = app.explain(&token).await["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains("never puts it in a key URL"), "{detail}");
    }
    assert!(keys.asked().is_empty(), "asked: {:?}", keys.asked());

    // A well-formed kid the endpoint does not know: one fetch, 404, inactive
    // (the refused kids above did not use up the refresh allowance).
    let unknown = "0000aaaa-0000-0000-0000-000000000000";
    let token = alb_token(&key, alb_header(unknown), userinfo("m"));
    assert_eq!(reason(&app, &token).await, "unknown_kid");
    assert_eq!(keys.asked(), [format!("/{unknown}")]);

    // The endpoint failing: inactive, never a 5xx; it recovers with it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    keys.status.store(503, Ordering::SeqCst);
    let good = alb_token(&key, alb_header(KID_1), userinfo("alice"));
    assert!(!app.is_active(&good).await);
    assert_eq!(auth_with_header(&app, HEADER, &good, "/").await, 401);
    keys.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(app.is_active(&good).await);

    // A key that fails the hygiene of any fetched key (a P-256 "point" off
    // the curve) is left out, not kept to fail every later load.
    let mut der = hex_der("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.push(4);
    der.extend([1u8; 64]);
    let off_curve = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    let bad_kid = "bad0bad0-0000-0000-0000-000000000000";
    keys.keys.lock().unwrap().insert(bad_kid.into(), off_curve);
    let fresh = spawn_ready(config_with(&alb_issuer(&keys), "")).await;
    let by_bad = alb_token(&key, alb_header(bad_kid), userinfo("m"));
    assert_eq!(reason(&fresh, &by_bad).await, "unknown_kid");
    let status = fresh.app.state.runtime().issuers[0].status();
    assert_eq!(status.last_error, None, "a bad key is no failed refresh");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(fresh.is_active(&good).await);
}

/// The allowance the README states: tokens naming kids tokend has no key
/// for make at most one load per `unknown_kid_refresh_seconds`, and one
/// load fetches at most 8 kids (those named by the most requests, the
/// newest first among equals); the rest are never fetched.
#[tokio::test]
async fn unknown_kids_make_one_load_per_interval_of_at_most_eight_fetches() {
    let key = signer(Algorithm::ES256, KID_1);
    let keys = KeyEndpoint::start().await;
    keys.publish(KID_1, &key);
    let issuer = alb_issuer(&keys).replace(
        "unknown_kid_refresh_seconds = 1",
        "unknown_kid_refresh_seconds = 60",
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let kid = |i: usize| format!("{i:08}-0000-4000-8000-000000000000");
    let path = |i: usize| format!("/{}", kid(i));
    // An attacker's burst of well-formed kids the endpoint does not know.
    for i in 0..20 {
        let token = alb_token(&key, alb_header(&kid(i)), userinfo("m"));
        assert_eq!(reason(&app, &token).await, "unknown_kid", "{i}");
    }
    assert_eq!(keys.asked(), [path(0)], "one load in the interval");

    // The next load (here asked for at once; in service, the next unknown
    // kid after the interval, or the scheduled refresh) fetches the 8 kept.
    let issuer = app.app.state.runtime().issuers[0].clone();
    issuer.refresh_now().await.unwrap();
    let mut asked = keys.asked();
    assert_eq!(asked.len(), 1 + 8, "{asked:?}");
    asked.sort();
    assert_eq!(asked, [0, 12, 13, 14, 15, 16, 17, 18, 19].map(path));

    // Still inside the interval: more unknown kids fetch nothing.
    for i in 20..30 {
        let token = alb_token(&key, alb_header(&kid(i)), userinfo("m"));
        assert_eq!(reason(&app, &token).await, "unknown_kid", "{i}");
    }
    assert_eq!(keys.asked().len(), 9);
}

fn hex_der(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn padding_is_for_alb_only_and_then_one_spelling_per_token() {
    let key = signer(Algorithm::ES256, KID_1);
    let keys = KeyEndpoint::start().await;
    keys.publish(KID_1, &key);
    let plain = signer(Algorithm::ES256, "plain-1");
    let idp = Idp::start(jwks(&[&plain])).await;
    let other = jwks_issuer(
        "plain",
        "https://plain.example",
        &idp,
        "audiences = [\"api\"]",
    );
    let app = spawn_ready(config_with(&format!("{}{other}", alb_issuer(&keys)), "")).await;

    // A good token of the plain issuer, then the same claims padded and
    // signed over the padded text, the way an attacker would try it.
    let t = now();
    let claims =
        json!({"iss": "https://plain.example", "aud": "api", "sub": "s", "iat": t, "exp": t + 60});
    assert!(app.is_active(&plain.sign(Algorithm::ES256, &claims)).await);
    let header = json!({"alg": "ES256", "kid": "plain-1", "typ": "JWT"});
    let input = format!("{}.{}", padded(&header), padded(&claims));
    assert!(input.contains('='), "the test needs padding: {input}");
    let sig = plain.sign_bytes(Algorithm::ES256, input.as_bytes());
    let padded_plain = format!("{input}.{}", URL_SAFE.encode(sig));
    assert_eq!(reason(&app, &padded_plain).await, "bad_base64");

    // An ALB token has exactly one spelling: a segment without the `=`
    // that base64 requires is refused. Revoked by its hash (ALB tokens
    // have no jti), it stays revoked.
    let token = alb_token(&key, alb_header(KID_1), userinfo("alice"));
    assert!(app.is_active(&token).await);
    let unpadded_sig = token.trim_end_matches('=').to_owned();
    assert_ne!(unpadded_sig, token);
    assert_eq!(reason(&app, &unpadded_sig).await, "bad_base64");
    let parts: Vec<&str> = token.split('.').collect();
    let padded_at = (0..2).find(|i| parts[*i].ends_with('=')).unwrap();
    let mut respelled: Vec<&str> = parts.clone();
    respelled[padded_at] = parts[padded_at].trim_end_matches('=');
    let respelled = respelled.join(".");
    assert_eq!(reason(&app, &respelled).await, "bad_base64");
    assert_eq!(
        app.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
            .await
            .status(),
        200
    );
    assert!(!app.is_active(&token).await);
    assert_eq!(reason(&app, &token).await, "revoked");
}

#[tokio::test]
async fn without_an_alb_issuer_a_padded_token_is_refused() {
    let plain = signer(Algorithm::ES256, "plain-1");
    let idp = Idp::start(jwks(&[&plain])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("plain", "https://plain.example", &idp, ""),
        "",
    ))
    .await;
    let t = now();
    let claims = json!({"iss": "https://plain.example", "sub": "s", "iat": t, "exp": t + 60});
    let header = json!({"alg": "ES256", "kid": "plain-1", "typ": "JWT"});
    let input = format!("{}.{}", padded(&header), padded(&claims));
    let sig = plain.sign_bytes(Algorithm::ES256, input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE.encode(sig));
    assert!(token.contains('='));
    assert_eq!(reason(&app, &token).await, "bad_base64");
}

#[test]
fn alb_configuration_needs_its_load_balancers_and_keeps_kid_in_the_path() {
    let base =
        "[[issuers]]\nname = \"alb\"\nprovider = \"alb\"\nissuer = \"https://idp.example\"\n";
    assert_config_errors(
        base,
        &[
            "issuers[0].header_claim_values.signer: provider \"alb\" needs your load balancers' ARNs",
            "issuers[0]: no key source",
        ],
    );
    assert_config_errors(
        &format!("{base}header_claim_values = {{ signer = [\"{ARN}\"] }}\naudiences = [\"x\"]\n"),
        &["issuers[0].audiences: ALB tokens carry no aud"],
    );
    let east = ARN.replace("us-west-1", "us-east-1");
    assert_config_errors(
        &format!("{base}header_claim_values = {{ signer = [\"{ARN}\", \"{east}\"] }}\n"),
        &[
            "issuers[0].keys_url_template: set it (the signer ARNs name no single AWS region)",
            "issuers[0]: no key source",
        ],
    );
    assert_config_errors(
        &format!(
            "{base}header_claim_values = {{ signer = [\"{ARN}\"] }}\nkeys_url_template = \"https://{{kid}}.keys.example/k\"\n"
        ),
        &["issuers[0].keys_url_template: must hold {kid} once, in the path"],
    );
    assert_config_errors(
        "[[issuers]]\nname = \"a\"\nissuer = \"https://a.example\"\nkeys_url_template = \"https://a.example/{kid}\"\n",
        &["issuers[0].keys_url_template: only with keys_format = \"pem_by_kid\""],
    );
    assert_config_errors(
        "[[issuers]]\nname = \"a\"\nissuer = \"https://a.example\"\nkeys_format = \"pem_by_kid\"\n",
        &[
            "issuers[0].keys_format: \"pem_by_kid\" is read from keys_url_template: set it",
            "issuers[0]: no key source",
        ],
    );
    // The key endpoint of the load balancers' region, filled in.
    let config = tokend::config::Config::from_toml(
        &format!("{base}header_claim_values = {{ signer = [\"{ARN}\"] }}\n"),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(
        config.issuers[0].keys_url_template.as_deref(),
        Some("https://public-keys.auth.elb.us-west-1.amazonaws.com/{kid}")
    );
    assert_eq!(config.issuers[0].algorithms, ["ES256"]);
    // Unless token_sources says otherwise, Authorization is read, then ALB's header.
    assert_eq!(
        config.authorization.sources,
        [
            tokend::config::TokenSourceSpec::Header("authorization".into()),
            tokend::config::TokenSourceSpec::Header("x-amzn-oidc-data".into()),
        ]
    );
    // The key endpoint of AWS without the signer check, and logout tokens
    // that would skip the header check, are refused.
    assert_config_errors(
        "[[issuers]]\nname = \"a\"\nissuer = \"https://a.example\"\nkeys_format = \"pem_by_kid\"\n\
         keys_url_template = \"https://public-keys.auth.elb.us-west-1.amazonaws.com/{kid}\"\n",
        &["issuers[0].header_claim_values.signer: AWS's key endpoint serves every ALB's keys"],
    );
    assert_config_errors(
        &format!(
            "{base}header_claim_values = {{ signer = [\"{ARN}\"] }}\nbackchannel_logout = true\nlogout_audiences = [\"x\"]\n"
        ),
        &["issuers[0].backchannel_logout: not with header_claim_values"],
    );
}

/// `check-config` shows the key URL the preset took from the ARN's region.
#[test]
fn check_config_prints_the_alb_key_url_and_header_values() {
    let stdout = check_config_stdout(&format!(
        "[[issuers]]\nname = \"alb\"\nprovider = \"alb\"\nissuer = \"{IDP}\"\n\
         header_claim_values = {{ signer = [\"{ARN}\"] }}\n"
    ));
    for want in [
        "issuers[0] (alb): provider alb: issuer = \"https://example.okta.com\"",
        "algorithms = [\"ES256\"]",
        "keys = PemByKid(\"https://public-keys.auth.elb.us-west-1.amazonaws.com/{kid}\")",
        "header_claim_values = {\"signer\": [\"arn:aws:elasticloadbalancing:us-west-1:",
        "token sources: header:authorization, header:x-amzn-oidc-data",
        "audience_claims = [\"aud\"]",
        "padded_base64 = true",
        "token_header = \"x-amzn-oidc-data\"",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
}

//! OpenID Connect Back-Channel Logout 1.0 through `POST /backchannel-logout`:
//! logout tokens signed by a real key served from the test IdP's JWKS, every
//! §2.6 rule broken by a token built to break it, replays refused (also on
//! another replica sharing Redis), and the propagation of a logout from one
//! replica to the other.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::redis_store::{percentile, replica_with, single};
use crate::redis_support::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// What the issuer's block adds: logout tokens accepted, addressed to "orders-rp".
pub const LOGOUT_POLICY: &str = "backchannel_logout = true\nlogout_audiences = [\"orders-rp\"]\naudiences = [\"orders\"]\nalgorithms = [\"ES256\"]";

async fn setup() -> (Idp, TestApp, Signer) {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, LOGOUT_POLICY),
        "",
    ))
    .await;
    (idp, app, key)
}

/// A logout token's claims as an IdP sends them (§2.4): `sid` and `sub`.
pub fn logout_claims(sid: &str) -> Value {
    json!({
        "iss": ISS,
        "aud": "orders-rp",
        "iat": now(),
        "jti": format!("lt-{:016x}", rand::random::<u64>()),
        "sub": "alice",
        "sid": sid,
        "events": {EVENT: {}},
    })
}

pub fn logout_token(key: &Signer, claims: &Value) -> String {
    key.sign_with_header(
        Algorithm::ES256,
        &json!({"alg": "ES256", "kid": key.kid, "typ": "logout+jwt"}),
        claims,
    )
}

/// An access token of `sub` in session `sid`.
fn access_token(key: &Signer, sub: &str, sid: &str) -> String {
    let t = now();
    key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": sub, "sid": sid, "aud": "orders", "iat": t - 5, "exp": t + 300,
                "jti": format!("at-{:016x}", rand::random::<u64>())}),
    )
}

impl TestApp {
    pub async fn logout(&self, logout_token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/backchannel-logout", self.base))
            .form(&[("logout_token", logout_token)])
            .send()
            .await
            .unwrap()
    }
}

async fn refusal(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    body["error_description"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_logout_ends_that_session_and_only_that_session() {
    let (_idp, app, key) = setup().await;
    let session = access_token(&key, "alice", "s-1");
    let other_session = access_token(&key, "alice", "s-2");
    assert!(app.is_active(&session).await, "cached before the logout");
    assert!(app.is_active(&other_session).await);
    let response = app.logout(&logout_token(&key, &logout_claims("s-1"))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_map_get(response.headers(), "cache-control").as_deref(),
        Some("no-store")
    );
    assert!(
        response.bytes().await.unwrap().is_empty(),
        "200 with no body"
    );
    assert!(!app.is_active(&session).await);
    assert_eq!(
        app.forward_auth(Some(&format!("Bearer {session}")))
            .await
            .status(),
        401
    );
    assert!(
        app.is_active(&other_session).await,
        "the user's other session lives on"
    );
    let listed = app.admin_list("").await;
    let entry = &listed["entries"][0];
    assert_eq!(
        (entry["kind"].as_str(), entry["sid"].as_str()),
        (Some("session"), Some("s-1"))
    );
    assert_eq!(entry["created_by"], "backchannel-logout:main");
    assert!(
        app.metrics().await.lines().any(|l| l.starts_with(
            "tokend_revocation_events_total{source=\"backchannel_logout\",event=\"logout\",result=\"applied\"}"
        ))
    );
}

#[tokio::test]
async fn a_logout_without_sid_ends_every_session_of_its_subject() {
    let (_idp, app, key) = setup().await;
    let first = access_token(&key, "alice", "s-1");
    let second = access_token(&key, "alice", "s-2");
    let bob = access_token(&key, "bob", "s-3");
    let mut claims = logout_claims("unused");
    claims.as_object_mut().unwrap().remove("sid");
    assert_eq!(app.logout(&logout_token(&key, &claims)).await.status(), 200);
    assert!(!app.is_active(&first).await);
    assert!(!app.is_active(&second).await);
    assert!(app.is_active(&bob).await);
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused() {
    let (_idp, app, key) = setup().await;
    let token = logout_token(&key, &logout_claims("s-1"));
    assert_eq!(app.logout(&token).await.status(), 200);
    assert!(refusal(app.logout(&token).await).await.contains("jti"));
}

/// Every rule of §2.6 (and §2.4's shape), each broken by a token built to break it.
#[tokio::test]
async fn every_logout_rule_is_enforced() {
    let (_idp, app, key) = setup().await;
    let attacker = signer(Algorithm::ES256, "k1");
    let hmac = Signer::hmac(b"0123456789abcdef0123456789abcdef", "k1");
    // tokend's clock stands still at its start: set it to this test's `t`,
    // or a second boundary between the two would let `iat = t - 301` pass
    // as 300 s old.
    let t = now();
    app.set_now(t);
    let change = |changes: Value| with(logout_claims("s-1"), changes);
    let without = |name: &str| {
        let mut c = logout_claims("s-1");
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let header = |typ: Value| json!({"alg": "ES256", "kid": "k1", "typ": typ});
    let cases: Vec<(String, &str)> = vec![
        (
            attacker.sign_with_header(
                Algorithm::ES256,
                &header(json!("logout+jwt")),
                &logout_claims("s-1"),
            ),
            "signature",
        ),
        (
            hmac.sign_with_header(
                Algorithm::HS256,
                &json!({"alg": "HS256", "kid": "k1", "typ": "logout+jwt"}),
                &logout_claims("s-1"),
            ),
            "alg",
        ),
        (
            format!(
                "{}.{}.",
                tokend::mint::b64(r#"{"alg":"none","typ":"logout+jwt"}"#),
                tokend::mint::b64(logout_claims("s-1").to_string())
            ),
            "malformed",
        ),
        (
            key.sign_with_header(
                Algorithm::ES256,
                &header(json!("JWT")),
                &logout_claims("s-1"),
            ),
            "typ",
        ),
        (
            key.sign_with_header(
                Algorithm::ES256,
                &header(json!("at+jwt")),
                &logout_claims("s-1"),
            ),
            "typ",
        ),
        (
            logout_token(&key, &change(json!({"iss": "https://unknown.test"}))),
            "iss",
        ),
        (logout_token(&key, &without("iss")), "iss"),
        (logout_token(&key, &change(json!({"aud": "orders"}))), "aud"),
        (logout_token(&key, &without("aud")), "aud"),
        (logout_token(&key, &without("iat")), "iat"),
        (
            logout_token(&key, &change(json!({"iat": t + 120}))),
            "future",
        ),
        (
            logout_token(&key, &change(json!({"iat": t - 301}))),
            "300 s",
        ),
        (
            logout_token(&key, &change(json!({"exp": t - 60}))),
            "expired",
        ),
        (logout_token(&key, &without("jti")), "jti"),
        (logout_token(&key, &change(json!({"jti": ""}))), "jti"),
        (logout_token(&key, &without("events")), "events"),
        (
            logout_token(
                &key,
                &change(json!({"events": {"http://schemas.openid.net/event/other": {}}})),
            ),
            "events",
        ),
        (
            logout_token(&key, &change(json!({"events": {EVENT: "yes"}}))),
            "events",
        ),
        (
            logout_token(&key, &change(json!({"events": [EVENT]}))),
            "events",
        ),
        (
            logout_token(&key, &{
                let mut c = without("sid");
                c.as_object_mut().unwrap().remove("sub");
                c
            }),
            "neither sub nor sid",
        ),
        (
            logout_token(&key, &change(json!({"nonce": "n-1"}))),
            "nonce",
        ),
        (logout_token(&key, &change(json!({"sid": 7}))), "malformed"),
        ("a.b.c.d.e".to_owned(), "encrypted"),
        ("not-a-jwt".to_owned(), "malformed"),
    ];
    for (token, why) in cases {
        let response = app.logout(&token).await;
        assert_eq!(response.status(), 400, "{why}");
        let description = refusal(response).await;
        assert!(description.contains(why), "{why}: got {description:?}");
    }
    // Nothing was revoked by any of them.
    assert_eq!(app.admin_list("").await["entries"], json!([]));
    // The form itself: the parameter missing, repeated, or not a form.
    let post = |body: &'static str, content_type: &'static str| {
        app.http
            .post(format!("{}/backchannel-logout", app.base))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    assert!(
        refusal(post("token=x", form).await.unwrap())
            .await
            .contains("missing logout_token")
    );
    assert!(
        refusal(post("logout_token=a&logout_token=b", form).await.unwrap())
            .await
            .contains("more than once")
    );
    assert_eq!(
        post(r#"{"logout_token":"x"}"#, "application/json")
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn only_issuers_that_opt_in_are_heard() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, "audiences = [\"orders-rp\"]"),
        "",
    ))
    .await;
    let description = refusal(app.logout(&logout_token(&key, &logout_claims("s-1"))).await).await;
    assert!(
        description.contains("back-channel logouts"),
        "{description}"
    );
    let errors = tokend::config::Config::from_toml(
        "[[issuers]]\nname = \"a\"\nissuer = \"https://a\"\njwks_uri = \"https://a/k\"\nbackchannel_logout = true\n\n\
         [[issuers]]\nname = \"b\"\nissuer = \"https://b\"\njwks_uri = \"https://b/k\"\nlogout_audiences = [\"x\"]\n",
        Vec::new(),
    )
    .unwrap_err()
    .0;
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("issuers[0].backchannel_logout: needs logout_audiences"));
    assert!(
        errors[1].starts_with("issuers[1].logout_audiences: only used with backchannel_logout")
    );
}

#[tokio::test]
async fn a_store_that_cannot_take_the_write_answers_503() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let app = spawn_app(config_with(
        &jwks_issuer("main", ISS, &idp, LOGOUT_POLICY),
        &single(&dead, &unique_prefix(), ""),
    ))
    .await;
    app.wait_ready().await;
    let response = app.logout(&logout_token(&key, &logout_claims("s-1"))).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("retry")
    );
}

/// Two replicas on one Redis: a logout received by A ends the session on B
/// within milliseconds, and the same logout token replayed at B is refused.
#[tokio::test]
async fn a_logout_on_one_replica_reaches_the_other_and_cannot_be_replayed_there() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let a = replica_with(&idp, LOGOUT_POLICY, &single(&url, &prefix, "")).await;
    let b = replica_with(&idp, LOGOUT_POLICY, &single(&url, &prefix, "")).await;
    let mut delays = Vec::new();
    for i in 0..200 {
        let sid = format!("s-{i}");
        let token = access_token(&key, "alice", &sid);
        assert!(b.is_active(&token).await);
        let logout = logout_token(&key, &logout_claims(&sid));
        let received = Instant::now();
        assert_eq!(a.logout(&logout).await.status(), 200);
        while active_on(&b, &token).await {
            assert!(
                received.elapsed() < Duration::from_secs(5),
                "B never saw the logout"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(received.elapsed());
        if i == 0 {
            assert!(
                refusal(b.logout(&logout).await).await.contains("jti"),
                "replayed at B"
            );
        }
    }
    delays.sort();
    let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
    println!(
        "logout received on A -> inactive on B over {} logouts: p50 {p50:?}, p99 {p99:?}, max {:?}",
        delays.len(),
        delays.last().unwrap()
    );
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
    // Every replica measures how long entries take to reach it.
    let applied = b
        .metric("tokend_revocation_propagation_seconds_count")
        .await;
    assert!(applied >= 200.0, "{applied}");
}

/// Whether `app` (in-process, no HTTP) finds the token active right now.
async fn active_on(app: &TestApp, token: &str) -> bool {
    app.app
        .state
        .runtime()
        .verifier
        .check(&presented(token), now())
        .await
        .is_active()
}

//! Opaque tokens: tokend in front of a real introspection endpoint
//! ([`IntrospectionIdp`]) — one upstream call per token, answers cached but
//! never past `exp`, the issuer's claim rules, revocation and routes as for a
//! JWT, every upstream failure an inactive answer, RFC 9701 signed answers.

use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

use crate::grpc::{grpc_client, with_auth};
use crate::helpers::*;
use crate::introspection_idp::*;
use tokend::api::grpc::pb;

/// A name of its own for each test's issuer: metrics are process-wide, and
/// tests that count run side by side.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// An `[[issuers]]` block introspecting at `idp`, plus `extra` keys.
fn opaque_issuer(name: &str, idp: &IntrospectionIdp, extra: &str) -> String {
    format!(
        r#"
[[issuers]]
name = "{name}"
issuer = "{iss}"
introspection_endpoint = "{endpoint}"
revocation_endpoint = "{revocation}"
introspection_client_id = "{CLIENT_ID}"
introspection_client_secret = "{CLIENT_SECRET}"
allow_insecure_http = true
{extra}
"#,
        iss = idp.url(),
        endpoint = idp.introspection_endpoint(),
        revocation = idp.revocation_endpoint(),
    )
}

/// An IdP and tokend introspecting at it, as issuer `hydra-…`.
struct Setup {
    idp: IntrospectionIdp,
    app: TestApp,
    name: String,
}

async fn setup(extra_issuer: &str, extra: &str) -> Setup {
    let idp = IntrospectionIdp::start().await;
    let name = unique("hydra");
    let issuer = opaque_issuer(&name, &idp, extra_issuer);
    let app = spawn_ready(config_with(&issuer, extra)).await;
    Setup { idp, app, name }
}

/// `tokend_upstream_introspection_total` for one issuer and result.
async fn upstream_count(app: &TestApp, issuer: &str, result: &str) -> u64 {
    let wanted =
        format!("tokend_upstream_introspection_total{{issuer=\"{issuer}\",result=\"{result}\"}}");
    app.metric(&wanted).await as u64
}

#[tokio::test]
async fn an_opaque_token_is_introspected_once_and_answered_like_a_jwt() {
    let Setup { idp, app, name } = setup("", "").await;
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    let answer = app.introspect(&token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["scope"], "orders:read profile");
    assert_eq!(answer["client_id"], "web-app");
    assert_eq!(answer["iss"], idp.url());
    assert_eq!(
        answer["ext"]["tenant"], "acme",
        "the IdP's own members pass on"
    );
    assert_eq!(answer["token_type"], "Bearer");
    for _ in 0..5 {
        assert!(app.is_active(&token).await);
    }
    assert_eq!(
        idp.calls(),
        1,
        "answered from the cache after the first call"
    );
    assert_eq!(*idp.state.auth_seen.lock().unwrap(), ["basic"]);
    assert_eq!(upstream_count(&app, &name, "active").await, 1);
    // A token the IdP never issued.
    assert!(!app.is_active("ory_at_unknown.token").await);
    assert_eq!(upstream_count(&app, &name, "inactive").await, 1);
}

/// The issue's figure: 200 concurrent requests for one new token, one call upstream.
#[tokio::test]
async fn two_hundred_concurrent_requests_make_one_upstream_call() {
    let Setup { idp, app, .. } = setup("", "").await;
    idp.set_delay(300);
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    let answers = join_all((0..200).map(|_| app.introspect(&token))).await;
    assert!(answers.iter().all(|a| a["active"] == true));
    assert_eq!(
        idp.calls(),
        1,
        "single flight: one upstream call for 200 requests"
    );
}

#[tokio::test]
async fn every_upstream_failure_is_inactive_counted_and_degrades_readiness() {
    let Setup { idp, app, name } = setup("introspection_timeout_ms = 300", "").await;
    let t0 = now();
    let token = idp.issue(opaque_claims(&idp.url(), t0));
    let failures = [
        (Mode::Down, 0, "bad_status"),
        (Mode::Normal, 1_000, "timeout"),
        (Mode::Garbage, 0, "bad_answer"),
        (Mode::ActiveNotBoolean, 0, "bad_answer"),
    ];
    for (mode, delay, result) in failures {
        idp.set_mode(mode);
        idp.set_delay(delay);
        let before = upstream_count(&app, &name, result).await;
        let response = app
            .introspect_as(Some(("gateway", GATEWAY_SECRET)), &token)
            .await;
        assert_eq!(response.status(), 200, "{mode:?}: never a 5xx");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"active": false}),
            "{mode:?}"
        );
        assert_eq!(
            upstream_count(&app, &name, result).await,
            before + 1,
            "{mode:?} counted as {result}"
        );
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        assert_eq!(ready["status"], "degraded", "{mode:?}: {ready}");
        assert_eq!(ready["issuers"][&name]["introspection"], "failing");
    }
    // Doubt is never cached: the IdP back, the token is active at once.
    idp.set_mode(Mode::Normal);
    idp.set_delay(0);
    assert!(app.is_active(&token).await);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["issuers"][&name]["introspection"], "ok");
}

#[tokio::test]
async fn an_unreachable_idp_is_an_inactive_answer() {
    let idp = IntrospectionIdp::start().await;
    let name = unique("hydra");
    let dead = format!("http://127.0.0.1:{}/introspect", free_port());
    let issuer = format!(
        r#"
[[issuers]]
name = "{name}"
issuer = "{}"
introspection_endpoint = "{dead}"
introspection_client_id = "{CLIENT_ID}"
introspection_client_secret = "{CLIENT_SECRET}"
allow_insecure_http = true
"#,
        idp.url()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    assert!(!app.is_active(&token).await);
    assert_eq!(upstream_count(&app, &name, "unavailable").await, 1);
    // Revoking it cannot be acknowledged: nobody could say whose it is.
    let response = app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(response.status(), 503);
    let explained = app.explain(&token).await;
    assert_eq!(explained["reason"], "upstream_unavailable", "{explained}");
}

#[tokio::test]
async fn answers_pass_the_issuers_claim_rules() {
    let Setup { idp, app, .. } = setup("audiences = [\"orders\"]\nleeway_seconds = 0", "").await;
    let iss = idp.url();
    let t = now();
    // Leeway 0: tokend's clock and the answers' dates must agree to the second.
    app.set_now(t);
    let good = opaque_claims(&iss, t);
    let cases = [
        (with(good.clone(), json!({"exp": t - 1})), false, "expired"),
        (
            with(good.clone(), json!({"nbf": t + 60})),
            false,
            "not yet valid",
        ),
        (
            with(good.clone(), json!({"aud": ["billing"]})),
            false,
            "another audience",
        ),
        (
            with(good.clone(), json!({"iat": t, "exp": t + 200_000})),
            false,
            "lifetime over the cap",
        ),
        (
            with(good.clone(), json!({"exp": "soon"})),
            false,
            "exp not a number",
        ),
        (good.clone(), true, "every rule holds"),
    ];
    for (claims, active, what) in cases {
        let token = idp.issue(claims);
        assert_eq!(app.is_active(&token).await, active, "{what}");
    }
    // No exp: refused while required_claims lists it (the default)...
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let token = idp.issue(no_exp.clone());
    assert!(
        !app.is_active(&token).await,
        "required_claims = [\"exp\"] by default"
    );
    // ...and accepted by an issuer that leaves it out.
    let Setup { idp, app, .. } = setup("required_claims = []", "").await;
    let token = idp.issue(with(no_exp, json!({"iss": idp.url()})));
    assert!(app.is_active(&token).await);
}

#[tokio::test]
async fn active_answers_are_cached_never_past_exp_and_inactive_ones_briefly() {
    let Setup { idp, app, .. } = setup(
        "leeway_seconds = 0\nintrospection_cache_seconds = 60\nintrospection_negative_cache_seconds = 5",
        "",
    )
    .await;
    let t0 = now();
    app.set_now(t0);
    let token = idp.issue(with(opaque_claims(&idp.url(), t0), json!({"exp": t0 + 10})));
    assert!(app.is_active(&token).await);
    app.set_now(t0 + 9);
    assert!(app.is_active(&token).await);
    assert_eq!(idp.calls(), 1);
    app.set_now(t0 + 10);
    assert!(!app.is_active(&token).await, "not one second past exp");
    assert_eq!(idp.calls(), 2, "the cached answer ended with the token");

    // Active, long-lived: reused for introspection_cache_seconds, then asked again.
    let long = idp.issue(with(
        opaque_claims(&idp.url(), t0),
        json!({"exp": t0 + 3600}),
    ));
    app.set_now(t0);
    assert!(app.is_active(&long).await);
    app.set_now(t0 + 59);
    assert!(app.is_active(&long).await);
    assert_eq!(idp.calls(), 3);
    app.set_now(t0 + 60);
    assert!(app.is_active(&long).await);
    assert_eq!(idp.calls(), 4);

    // Inactive: reused for introspection_negative_cache_seconds.
    app.set_now(t0);
    let unknown = "ory_at_never-issued";
    assert!(!app.is_active(unknown).await);
    app.set_now(t0 + 4);
    assert!(!app.is_active(unknown).await);
    assert_eq!(idp.calls(), 5);
    app.set_now(t0 + 5);
    assert!(!app.is_active(unknown).await);
    assert_eq!(idp.calls(), 6);
}

#[tokio::test]
async fn issuers_are_asked_in_order_and_an_answer_counts_only_for_its_own_iss() {
    let first = IntrospectionIdp::start().await;
    let second = IntrospectionIdp::start().await;
    let issuers = format!(
        "{}{}",
        opaque_issuer("first", &first, ""),
        opaque_issuer("second", &second, "")
    );
    let app = spawn_ready(config_with(&issuers, "")).await;
    // Only the second knows it: the first says inactive, the second active.
    let token = second.issue(opaque_claims(&second.url(), now()));
    let answer = app.introspect(&token).await;
    assert_eq!(answer["iss"], second.url());
    assert_eq!((first.calls(), second.calls()), (1, 1));
    // The first calls a token active, but for another issuer's `iss`: the
    // answer is not the first's to give, and the second is asked.
    let claims = opaque_claims("https://someone-else.example", now());
    let token = first.issue(claims.clone());
    assert!(
        !app.is_active(&token).await,
        "an iss that is not the answering issuer's"
    );
    assert_eq!(upstream_count(&app, "first", "other_issuer").await, 1);
    assert_eq!(second.calls(), 2);
    // A JWT-shaped token never goes upstream.
    assert!(!app.is_active("eyJhbGciOiJFUzI1NiJ9.e30.c2ln").await);
    assert_eq!((first.calls(), second.calls()), (2, 2));
}

/// Requests that give up while the IdP is slow leave nothing behind: no call
/// entry lingers (memory), and a later request asks afresh.
#[tokio::test]
async fn abandoned_requests_leave_no_call_behind() {
    let Setup { idp, app, .. } = setup("", "").await;
    idp.set_delay(500);
    let verifier = app.app.state.runtime().verifier.clone();
    let tokens: Vec<String> = (0..20)
        .map(|_| idp.issue(opaque_claims(&idp.url(), now())))
        .collect();
    for token in &tokens {
        let presented = presented(token);
        let check = verifier.check(&presented, now());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), check)
                .await
                .is_err()
        );
    }
    assert_eq!(verifier.opaque().unwrap().calls_in_flight(), 0);
    idp.set_delay(0);
    assert!(app.is_active(&tokens[0]).await, "asked again, answered");
    assert_eq!(verifier.opaque().unwrap().calls_in_flight(), 0);
}

/// Attacks: what is not an RFC 6750 token never reaches the IdP.
#[tokio::test]
async fn tokens_that_are_not_b64tokens_never_reach_the_idp() {
    let Setup { idp, app, .. } = setup("", "").await;
    for token in ["a b", "tok\"en", "a,b", "a=b", "ä", "tok%0aen", "==="] {
        assert!(!app.is_active(token).await, "{token:?}");
    }
    assert_eq!(idp.calls(), 0);
}

#[tokio::test]
async fn revoking_an_opaque_token_stores_its_hash_and_tells_the_issuer() {
    let Setup { idp, app, name } = setup("", "").await;
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    assert!(app.is_active(&token).await);
    let response = app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        idp.state.revoked.lock().unwrap().as_slice(),
        std::slice::from_ref(&token),
        "forwarded (RFC 7009)"
    );
    // The IdP still calls it active (it ignores revocations here): tokend refuses it anyway.
    assert!(!app.is_active(&token).await);
    let listed: Value = app
        .http
        .get(format!("{}/admin/revocations", app.base))
        .basic_auth("ops", Some(OPS_SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = hex::encode(tokend::token::sha256(token.as_bytes()));
    let entries = listed["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["jti"] == format!("sha256:{digest}") && e["iss"] == idp.url()),
        "stored by the token's SHA-256: {listed}"
    );
    assert_eq!(
        app.metric(&format!(
            "tokend_upstream_revocations_total{{issuer=\"{name}\",result=\"ok\"}}"
        ))
        .await,
        1.0
    );

    // gRPC Introspect answers for opaque tokens too, and gRPC Revoke does the same.
    let other = idp.issue(opaque_claims(&idp.url(), now()));
    let mut client = grpc_client(&app).await;
    let introspect = pb::IntrospectRequest {
        token: other.clone(),
        token_type_hint: String::new(),
        include_claims: true,
        ..Default::default()
    };
    let answer = client
        .introspect(with_auth(introspect, Some(("gateway", GATEWAY_SECRET))))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
    assert_eq!(answer.sub, "alice");
    let revoke = pb::RevokeRequest {
        token: other.clone(),
        token_type_hint: "access_token".into(),
    };
    client
        .revoke(with_auth(revoke, Some(("revoker", REVOKER_SECRET))))
        .await
        .unwrap();
    assert!(!app.is_active(&other).await);
    assert_eq!(idp.state.revoked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn routes_apply_to_opaque_tokens() {
    let routes = r#"
[[routes]]
name = "orders-write"
path_prefix = "/orders"
methods = ["POST"]
scopes_all = ["orders:write"]
"#;
    let Setup { idp, app, .. } = setup("", routes).await;
    let auth = |token: &str| {
        app.http
            .get(format!("{}/auth", app.base))
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-method", "POST")
            .header("x-forwarded-uri", "/orders")
            .send()
    };
    let reader = idp.issue(opaque_claims(&idp.url(), now()));
    let response = auth(&reader).await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        header_map_get(response.headers(), "www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    let writer = idp.issue(with(
        opaque_claims(&idp.url(), now()),
        json!({"scope": "orders:write"}),
    ));
    let response = auth(&writer).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_map_get(response.headers(), "x-auth-subject").as_deref(),
        Some("alice")
    );
    assert_eq!(
        header_map_get(response.headers(), "x-auth-issuer"),
        Some(idp.url())
    );
    assert_eq!(auth("ory_at_unknown").await.unwrap().status(), 401);
}

/// RFC 9701: the answer as a JWT signed with the `[assertion]` key.
#[tokio::test]
async fn signed_introspection_answers_follow_rfc9701() {
    let assertion = "[assertion]\nenabled = true";
    let Setup { idp, app, .. } = setup("", assertion).await;
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    let signed = |token: String| {
        app.http
            .post(format!("{}/introspect", app.base))
            .basic_auth("gateway", Some(GATEWAY_SECRET))
            .header("accept", "application/token-introspection+jwt")
            .form(&[("token", token)])
            .send()
    };
    let response = signed(token.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_map_get(response.headers(), "content-type").as_deref(),
        Some("application/token-introspection+jwt")
    );
    let jwt = response.text().await.unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
    let claims = verify_introspection_jwt(&app, &jwt).await;
    assert_eq!(claims["iss"], "https://tokend.internal");
    assert_eq!(claims["aud"], "gateway", "the caller's client id");
    assert!(claims["iat"].as_u64().unwrap() >= now() - 5);
    assert_eq!(claims["token_introspection"]["active"], true);
    assert_eq!(claims["token_introspection"]["sub"], "alice");
    // An inactive token: `active: false` and nothing else.
    let jwt = signed("ory_at_unknown".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let claims = verify_introspection_jwt(&app, &jwt).await;
    assert_eq!(claims["token_introspection"], json!({"active": false}));
    // Without `[assertion]` there is no key to sign with: 406, said so.
    let Setup { idp, app, .. } = setup("", "").await;
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    let response = app
        .http
        .post(format!("{}/introspect", app.base))
        .basic_auth("gateway", Some(GATEWAY_SECRET))
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("[assertion]")
    );
}

/// Verifies an RFC 9701 answer with the jsonwebtoken crate against
/// `/.well-known/jwks.json`, as a resource server would.
async fn verify_introspection_jwt(app: &TestApp, jwt: &str) -> Value {
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["gateway"]);
    validation.set_issuer(&["https://tokend.internal"]);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("the answer verifies")
        .claims
}

#[tokio::test]
async fn discovery_names_the_endpoints_and_post_auth_sends_the_body() {
    let idp = IntrospectionIdp::start().await;
    let name = unique("hydra");
    let issuer = format!(
        r#"
[[issuers]]
name = "{name}"
issuer = "{}"
discovery = true
introspection_client_id = "{CLIENT_ID}"
introspection_client_secret = "{CLIENT_SECRET}"
introspection_auth = "client_secret_post"
allow_insecure_http = true
"#,
        idp.url()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    assert!(app.is_active(&token).await);
    assert_eq!(*idp.state.auth_seen.lock().unwrap(), ["post"]);
    assert_eq!(
        idp.state
            .unauthenticated
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // The revocation endpoint came from the discovery document too.
    let response = app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(*idp.state.revoked.lock().unwrap(), [token]);
}

#[tokio::test]
async fn wrong_client_credentials_are_an_inactive_answer_never_an_allow() {
    let idp = IntrospectionIdp::start().await;
    let name = unique("hydra");
    let issuer = opaque_issuer(&name, &idp, "").replace(CLIENT_SECRET, "wrong");
    let app = spawn_ready(config_with(&issuer, "")).await;
    let token = idp.issue(opaque_claims(&idp.url(), now()));
    assert!(!app.is_active(&token).await);
    assert_eq!(upstream_count(&app, &name, "bad_status").await, 1);
    assert_eq!(
        idp.state
            .unauthenticated
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn check_config_names_every_bad_introspection_key() {
    let text = r#"
[[issuers]]
name = "a"
issuer = "https://a"
introspection_endpoint = "http://a/introspect"
introspection_timeout_ms = 0

[[issuers]]
name = "b"
issuer = "https://b"
jwks_uri = "https://b/keys"
introspection_client_id = "x"
revocation_endpoint = "https://b/revoke"

[[issuers]]
name = "c"
issuer = "https://c"
introspection_endpoint = "https://c/introspect"
introspection_client_id = "x"
introspection_client_secret = "s"
introspection_client_secret_env = "ALSO"
introspection_auth = "private_key_jwt"
"#;
    // issuers[2] did not parse (its auth method is unknown), so its secrets are not judged.
    assert_config_errors(
        text,
        &[
            "issuers[0].introspection_endpoint: http:// needs allow_insecure_http",
            "issuers[0].introspection_client_id: needed",
            "issuers[0]: set exactly one of introspection_client_secret",
            "issuers[0].introspection_timeout_ms: must be between 1 and 60000",
            "issuers[1].introspection_client_id: needs introspection_endpoint",
            "issuers[1].revocation_endpoint: needs introspection_endpoint",
            "issuers[2].introspection_auth: unknown variant `private_key_jwt`",
        ],
    );
}

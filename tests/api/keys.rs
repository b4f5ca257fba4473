//! Key sets over real HTTP: discovery, rotation, IdP outages, slow and huge
//! answers, redirects, readiness and the issuer admin API.

use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::helpers::*;
use tokend::mint::jwks;
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

pub async fn admin_issuers(app: &TestApp) -> Value {
    let response = app
        .http
        .get(format!("{}/admin/issuers", app.base))
        .basic_auth("ops", Some(OPS_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app.get("/readyz").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let iss = idp.url();
    let issuer = format!(
        "[[issuers]]\nname = \"oidc\"\nissuer = \"{iss}\"\ndiscovery = true\nallow_insecure_http = true\n"
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    assert!(
        app.is_active(&key.sign(Algorithm::ES256, &claims(&iss)))
            .await
    );
    assert!(idp.state.discovery_hits.load(Ordering::SeqCst) >= 1);

    // A discovery document naming another issuer is refused: no keys, not ready.
    let liar = Idp::start(jwks(&[&key])).await;
    *liar.state.discovery_issuer.lock().unwrap() = Some("https://evil.test".into());
    let issuer = format!(
        "[[issuers]]\nname = \"oidc\"\nissuer = \"{}\"\ndiscovery = true\nallow_insecure_http = true\n",
        liar.url()
    );
    let app = spawn_app(config_with(&issuer, "")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["issuers"]["oidc"]["failing"], true, "{body}");
    assert!(
        admin_issuers(&app).await["issuers"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    assert_eq!(
        liar.jwks_hits(),
        0,
        "keys fetched despite the issuer mismatch"
    );
    assert!(
        !app.is_active(&key.sign(Algorithm::ES256, &claims(&liar.url())))
            .await
    );
}

#[tokio::test]
async fn rotation_an_unknown_kid_refreshes_once_and_waits_briefly() {
    let old = signer(Algorithm::ES256, "old");
    let new = signer(Algorithm::ES256, "new");
    let idp = Idp::start(jwks(&[&old])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    assert!(
        app.is_active(&old.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    let hits = idp.jwks_hits();

    idp.set_jwks(jwks(&[&old, &new]));
    let started = Instant::now();
    assert!(
        app.is_active(&new.sign(Algorithm::ES256, &claims(ISS)))
            .await,
        "new kid after rotation"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(idp.jwks_hits(), hits + 1);

    // Within unknown_kid_refresh_seconds, another unknown kid triggers nothing.
    let newer = signer(Algorithm::ES256, "newer");
    idp.set_jwks(jwks(&[&new, &newer]));
    assert!(
        !app.is_active(&newer.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    assert_eq!(idp.jwks_hits(), hits + 1, "rate limited");
    // ...but an admin refresh picks it up, and the retired key stops working.
    let response = app
        .http
        .post(format!("{}/admin/issuers/main/refresh", app.base))
        .basic_auth("ops", Some(OPS_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        app.is_active(&newer.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    assert!(
        !app.is_active(&old.sign(Algorithm::ES256, &claims(ISS)))
            .await,
        "retired key"
    );
}

#[tokio::test]
async fn idp_outage_keeps_the_last_good_keys_and_reports_it() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert_eq!(readyz(&app).await.1["status"], "ready");

    for (what, status, body) in [
        ("HTTP 500", 500, json!({"keys": []})),
        ("garbage", 200, json!("<html>maintenance</html>")),
        ("empty set", 200, json!({"keys": []})),
    ] {
        idp.set_status(status);
        idp.set_jwks(body);
        let issuer = app.app.state.runtime().issuer_by_name("main").unwrap();
        assert!(issuer.refresh_now().await.is_err(), "{what}");
        assert!(
            app.is_active(&token).await,
            "last good keys serve during {what}"
        );
        let (code, ready) = readyz(&app).await;
        assert_eq!(code, 200, "{what}");
        assert_eq!(ready["status"], "degraded", "{what}");
        assert_eq!(ready["issuers"]["main"]["failing"], true);
        let admin = admin_issuers(&app).await;
        assert!(admin["issuers"][0]["last_error"].is_string());
        assert_eq!(admin["issuers"][0]["stale"], true);
    }
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tokend_jwks_refresh_total{")
                && l.contains("issuer=\"main\"")
                && l.contains("result=\"error\"")),
        "refresh errors are counted"
    );
    // The IdP recovers.
    idp.set_status(200);
    idp.set_jwks(jwks(&[&key]));
    app.app
        .state
        .runtime()
        .issuer_by_name("main")
        .unwrap()
        .refresh_now()
        .await
        .unwrap();
    assert_eq!(readyz(&app).await.1["status"], "ready");
}

#[tokio::test]
async fn not_ready_until_the_first_key_set() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    idp.set_status(503);
    let app = spawn_app(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(readyz(&app).await.0, 503);
    assert!(
        !app.is_active(&key.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "alive though not ready"
    );
    idp.set_status(200);
    app.app
        .state
        .runtime()
        .issuer_by_name("main")
        .unwrap()
        .refresh_now()
        .await
        .unwrap();
    assert_eq!(readyz(&app).await.0, 200);
    assert!(
        app.is_active(&key.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
}

#[tokio::test]
async fn slow_idp_bounds_the_wait_of_an_unknown_kid() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, "fetch_timeout_seconds = 2"),
        "",
    ))
    .await;
    idp.state.delay_ms.store(3000, Ordering::SeqCst);
    let stranger = signer(Algorithm::ES256, "unknown");
    let started = Instant::now();
    assert!(
        !app.is_active(&stranger.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(1200),
        "waited {waited:?} for a slow IdP"
    );
    // Known keys answer at once while the refresh hangs.
    let started = Instant::now();
    assert!(
        app.is_active(&key.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    assert!(started.elapsed() < Duration::from_millis(300));
    // The fetch itself gives up at its deadline.
    let issuer = app.app.state.runtime().issuer_by_name("main").unwrap();
    let started = Instant::now();
    assert!(issuer.refresh_now().await.is_err());
    assert!(started.elapsed() < Duration::from_millis(2800));
}

#[tokio::test]
async fn huge_jwks_and_cross_host_redirects_are_refused() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let issuers = format!(
        r#"
[[issuers]]
name = "huge"
issuer = "https://huge.test"
jwks_uri = "{base}/huge"
allow_insecure_http = true
max_jwks_bytes = 65536

[[issuers]]
name = "redirect"
issuer = "https://redirect.test"
jwks_uri = "{base}/redirect-elsewhere"
allow_insecure_http = true
"#,
        base = idp.url()
    );
    let app = spawn_app(config_with(&issuers, "")).await;
    let huge = app.app.state.runtime().issuer_by_name("huge").unwrap();
    let err = huge.refresh_now().await.unwrap_err().to_string();
    assert!(err.contains("more than 65536 bytes"), "{err}");
    let redirect = app.app.state.runtime().issuer_by_name("redirect").unwrap();
    let err = redirect.refresh_now().await.unwrap_err().to_string();
    assert!(err.contains("redirect"), "{err}");
    assert_eq!(idp.jwks_hits(), 0, "the redirect target was never fetched");
}

#[tokio::test]
async fn admin_issuer_api_needs_admin() {
    let key = signer(Algorithm::RS256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, "algorithms = [\"RS256\"]"),
        "",
    ))
    .await;
    let get = |id: &str, secret: &str| {
        app.http
            .get(format!("{}/admin/issuers", app.base))
            .basic_auth(id, Some(secret))
            .send()
    };
    assert_eq!(get("gateway", GATEWAY_SECRET).await.unwrap().status(), 403);
    assert_eq!(get("ops", "wrong").await.unwrap().status(), 401);
    let body = admin_issuers(&app).await;
    let issuer = &body["issuers"][0];
    assert_eq!(issuer["name"], "main");
    assert_eq!(issuer["keys"][0]["kid"], "k1");
    assert_eq!(issuer["keys"][0]["kty"], "RSA");
    assert_eq!(issuer["keys"][0]["bits"], 2048);
    assert_eq!(issuer["algorithms"], json!(["RS256"]));
    assert!(issuer["last_refresh"].is_u64());
    let refresh = |name: &str, id: &str, secret: &str| {
        app.http
            .post(format!("{}/admin/issuers/{name}/refresh", app.base))
            .basic_auth(id, Some(secret))
            .send()
    };
    assert_eq!(
        refresh("main", "gateway", GATEWAY_SECRET)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        refresh("nope", "ops", OPS_SECRET).await.unwrap().status(),
        404
    );
    let hits = idp.jwks_hits();
    assert_eq!(
        refresh("main", "ops", OPS_SECRET).await.unwrap().status(),
        200
    );
    assert_eq!(idp.jwks_hits(), hits + 1);
    idp.set_status(500);
    assert_eq!(
        refresh("main", "ops", OPS_SECRET).await.unwrap().status(),
        503
    );
}

#[tokio::test]
async fn static_key_files_are_trusted_directly() {
    let key = signer(Algorithm::EdDSA, "file-key");
    let dir = std::env::temp_dir().join(format!("tokend-jwks-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.json");
    std::fs::write(&path, jwks(&[&key]).to_string()).unwrap();
    let issuer = format!(
        "[[issuers]]\nname = \"file\"\nissuer = \"{ISS}\"\njwks_file = {:?}\n",
        path.display().to_string()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    assert!(
        app.is_active(&key.sign(Algorithm::EdDSA, &claims(ISS)))
            .await
    );
}

#[tokio::test]
async fn refresh_schedule_follows_cache_control_within_bounds() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let policy = "min_refresh_seconds = 60\nmax_refresh_seconds = 3600\nrefresh_seconds = 300";
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, policy), "")).await;
    let issuer = app.app.state.runtime().issuer_by_name("main").unwrap();
    for (max_age, expected) in [
        (None, 300),
        (Some(900), 900),
        (Some(5), 60),
        (Some(99_999), 3600),
    ] {
        *idp.state.max_age.lock().unwrap() = max_age;
        let next = issuer.refresh_now().await.unwrap();
        assert_eq!(next, Duration::from_secs(expected), "max-age {max_age:?}");
        let admin = admin_issuers(&app).await;
        assert_eq!(admin["issuers"][0]["next_refresh_seconds"], expected);
    }
}

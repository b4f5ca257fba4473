//! Forward-auth, probes, metrics, the CLI and graceful shutdown.

use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::*;
use tokend::mint::jwks;
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

#[tokio::test]
async fn forward_auth_answers_with_identity_headers_or_401() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let mut c = claims(ISS);
    c["scope"] = json!("orders:read");
    let token = key.sign(Algorithm::ES256, &c);

    let response = app.forward_auth(Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status(), 200);
    let h = response.headers();
    assert_eq!(
        header_map_get(h, "x-auth-subject").as_deref(),
        Some("alice")
    );
    assert_eq!(header_map_get(h, "x-auth-issuer").as_deref(), Some(ISS));
    assert_eq!(
        header_map_get(h, "x-auth-scope").as_deref(),
        Some("orders:read")
    );
    assert_eq!(
        header_map_get(h, "x-auth-client-id").as_deref(),
        Some("web")
    );
    assert_eq!(
        header_map_get(h, "x-auth-expires"),
        Some(c["exp"].to_string())
    );

    // any method works (nginx auth_request sends GET, Traefik forwards the original method)
    let post = app
        .http
        .post(format!("{}/auth", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);

    for auth in [
        None,
        Some("Bearer"),
        Some("Bearer not.a.token"),
        Some("Basic Zm9vOmJhcg=="),
        Some(token.as_str()),
    ] {
        let response = app.forward_auth(auth).await;
        assert_eq!(response.status(), 401, "{auth:?}");
        let challenge = header_map_get(response.headers(), "www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
    }
    // A subject that cannot be a header value is refused, never emptied or split.
    let mut c = claims(ISS);
    c["sub"] = json!("alice\r\nX-Admin: yes");
    let response = app
        .forward_auth(Some(&format!("Bearer {}", key.sign(Algorithm::ES256, &c))))
        .await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("x-auth-subject").is_none());
    assert!(response.headers().get("x-admin").is_none());
}

#[tokio::test]
async fn metrics_are_prometheus_histograms_with_closed_labels() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("metrics-issuer", ISS, &idp, ""),
        "",
    ))
    .await;
    assert!(
        app.is_active(&key.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    let secret_sub = "user-that-must-not-appear";
    let mut c = claims("https://attacker-chosen-issuer.test");
    c["sub"] = json!(secret_sub);
    assert!(!app.is_active(&key.sign(Algorithm::ES256, &c)).await);
    assert!(!app.is_active("not-a-token").await);
    app.forward_auth(None).await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE tokend_verify_duration_seconds histogram"),
        "a histogram, not a summary"
    );
    let bucket = text.lines().find(|l| {
        l.starts_with("tokend_verify_duration_seconds_bucket")
            && l.contains("issuer=\"metrics-issuer\"")
            && l.contains("alg=\"ES256\"")
            && l.contains("result=\"active\"")
            && l.contains("le=\"0.00001\"")
    });
    assert!(
        bucket.is_some(),
        "a 10 µs bucket for the active ES256 verification"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("tokend_verify_duration_seconds_count")
                && l.contains("issuer=\"unknown\"")
                && l.contains("result=\"unknown_issuer\""))
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("tokend_verify_duration_seconds_count")
                && l.contains("alg=\"other\"")
                && l.contains("result=\"malformed\""))
    );
    assert!(text.contains("tokend_requests_total{api=\"http\",result=\"active\"}"));
    assert!(text.contains("tokend_requests_total{api=\"forward_auth\",result=\"inactive\"}"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("tokend_jwks_refresh_total{") && l.contains("metrics-issuer"))
    );
    assert!(
        !text.contains(secret_sub) && !text.contains("attacker-chosen"),
        "caller-chosen strings in labels"
    );
    // Every metric family has HELP text (promtool check metrics insists).
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP text"
        );
    }
}

#[tokio::test]
async fn a_separate_metrics_listener_serves_probes_only() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let config = config_with(&jwks_issuer("main", ISS, &idp, ""), "");
    let mut config = config;
    config.server.metrics_addr = "127.0.0.1:0".into();
    let app = spawn_ready(config).await;
    let base = format!("http://{}", app.app.metrics_addr.unwrap());
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            app.http
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path}"
        );
    }
    let introspect = app
        .http
        .post(format!("{base}/introspect"))
        .send()
        .await
        .unwrap();
    assert_eq!(introspect.status(), 404, "no API on the metrics listener");
}

#[test]
fn check_config_prints_every_error_with_its_path() {
    let dir = std::env::temp_dir().join(format!("tokend-check-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[[issuers]]
name = "a"
issuer = "https://a.test"
jwks_uri = "https://a.test/keys"
algorithms = ["RS256"]
[[issuers]]
name = "b"
issuer = "https://b.test"
jwks_uri = "https://b.test/keys"
algorithms = ["ES256", "RS999"]
[[clients]]
id = "gw"
secret_sha256 = "nothex"
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("issuers[1].algorithms[1]: unknown algorithm \"RS999\""),
        "{stderr}"
    );
    assert!(stderr.contains("clients[0].secret_sha256"), "{stderr}");

    let good = dir.join("good.toml");
    std::fs::write(&good, "[[issuers]]\nname = \"a\"\nissuer = \"https://a.test\"\njwks_uri = \"https://a.test/keys\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // serve refuses the bad file with the same errors
    let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown algorithm \"RS999\""));
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let dir = std::env::temp_dir().join(format!("tokend-sigterm-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let (http, grpc) = (free_port(), free_port());
    let config = format!(
        "[server]\nhttp_addr = \"127.0.0.1:{http}\"\ngrpc_addr = \"127.0.0.1:{grpc}\"\n{}\n[[clients]]\nid = \"gateway\"\nsecret = \"{GATEWAY_SECRET}\"\npermissions = [\"introspect\"]\n",
        jwks_issuer("main", ISS, &idp, "")
    );
    std::fs::write(dir.join("tokend.toml"), config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["serve", "--config"])
        .arg(dir.join("tokend.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let ready_url = format!("http://127.0.0.1:{http}/readyz");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(&ready_url).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "tokend binary became ready");
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    let r = client
        .post(format!("http://127.0.0.1:{http}/introspect"))
        .basic_auth("gateway", Some(GATEWAY_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["active"], true);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exit = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exit = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exit = exit.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("tokend did not exit within 5 s of SIGTERM")
    });
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let given = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header_map_get(given.headers(), "x-request-id").as_deref(),
        Some("abc-123")
    );
    let first = app.get("/healthz").await;
    let second = app.get("/healthz").await;
    let (a, b) = (
        header_map_get(first.headers(), "x-request-id"),
        header_map_get(second.headers(), "x-request-id"),
    );
    assert!(a.is_some() && b.is_some() && a != b, "{a:?} {b:?}");
    // The verdict routes skip the router, not the request id.
    for path in ["/auth", "/introspect"] {
        let answer = app.get(path).await;
        let id = header_map_get(answer.headers(), "x-request-id");
        assert!(id.is_some() && id != a && id != b, "{path}: {id:?}");
    }
}

/// A handler that panics answers 500 with the RFC 6749 body and its request
/// id, and the front door keeps answering.
#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_next_request_is_served() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let router = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                tokio::task::yield_now().await;
                "".parse::<u8>().expect("a handler bug").to_string()
            }),
        )
        .route("/fine", axum::routing::get(|| async { "fine" }));
    let entry = tokend::api::entry::Entry::new(app.app.state.clone(), router);
    let peer = tokend::serve::Peer {
        addr: "127.0.0.1:40000".parse().unwrap(),
        names: None,
    };
    let get = |path: &str| {
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let boom = entry.answer(get("/boom"), peer.clone()).await;
    assert_eq!(boom.status(), 500);
    assert!(boom.headers().contains_key("x-request-id"));
    let body = axum::body::to_bytes(boom.into_body(), 1 << 10)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "server_error");
    let fine = entry.answer(get("/fine"), peer).await;
    assert_eq!(fine.status(), 200);
}

#[tokio::test]
async fn introspection_takes_only_post() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let answer = app
            .http
            .request(method.clone(), format!("{}/introspect", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 405, "{method}");
        assert_eq!(
            header_map_get(answer.headers(), "allow").as_deref(),
            Some("POST")
        );
    }
    assert_eq!(app.get("/introspectx").await.status(), 404);
}

//! Test harness: a real JWKS/OIDC server run by the test, tokend started
//! in-process on port 0, and typed helpers to call it over real HTTP.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokend::app::App;
use tokend::config::Config;
use tokend::mint::Signer;
use tokend::token::Algorithm;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the test's IdP serves; every field can be changed while tokend runs.
pub struct IdpState {
    pub jwks: Mutex<String>,
    pub status: AtomicU16,
    pub delay_ms: AtomicU64,
    pub max_age: Mutex<Option<u64>>,
    pub jwks_hits: AtomicUsize,
    pub discovery_hits: AtomicUsize,
    /// Overrides the `issuer` member of the discovery document.
    pub discovery_issuer: Mutex<Option<String>>,
    /// Any other path fetched (e.g. a `jku` an attacker planted) is counted here.
    pub other_hits: AtomicUsize,
    pub base: Mutex<String>,
}

/// A real HTTP server playing an OpenID provider's key endpoints.
pub struct Idp {
    pub addr: SocketAddr,
    pub state: Arc<IdpState>,
}

impl Idp {
    pub async fn start(jwks: Value) -> Idp {
        let state = Arc::new(IdpState {
            jwks: Mutex::new(jwks.to_string()),
            status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            max_age: Mutex::new(None),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            discovery_issuer: Mutex::new(None),
            other_hits: AtomicUsize::new(0),
            base: Mutex::new(String::new()),
        });
        let router = Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .route("/redirect-elsewhere", get(redirect_elsewhere))
            .route("/huge", get(|| async { "x".repeat(4 * 1024 * 1024) }))
            .fallback(count_other)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *state.base.lock().unwrap() = format!("http://127.0.0.1:{}", addr.port());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Idp { addr, state }
    }

    /// The issuer URL (for discovery) and base of every endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.url())
    }

    pub fn set_jwks(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks.to_string();
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(state): State<Arc<IdpState>>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap();
    let body = state.jwks.lock().unwrap().clone();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(age) = *state.max_age.lock().unwrap() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={age}")).unwrap(),
        );
    }
    response
}

async fn serve_discovery(State(state): State<Arc<IdpState>>) -> Response {
    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let base = state.base.lock().unwrap().clone();
    let issuer = state
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| base.clone());
    axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{base}/jwks")})).into_response()
}

async fn redirect_elsewhere(State(state): State<Arc<IdpState>>) -> Response {
    // Same port, other host name: a different origin to the client.
    let base = state.base.lock().unwrap().replace("127.0.0.1", "localhost");
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{base}/jwks"))],
    )
        .into_response()
}

async fn count_other(State(state): State<Arc<IdpState>>) -> Response {
    state.other_hits.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"keys": []})).into_response()
}

/// Secrets of the test callers.
pub const GATEWAY_SECRET: &str = "gateway-secret";
pub const OPS_SECRET: &str = "ops-secret";
pub const REVOKER_SECRET: &str = "revoker-secret";

/// Config with listeners on port 0 and three callers; `issuers` is TOML.
pub fn config_with(issuers: &str, extra: &str) -> Config {
    let text = config_text_with(issuers, extra);
    Config::from_toml(&text, Vec::new()).unwrap_or_else(|e| panic!("test config: {e}\n{text}"))
}

/// The text [`config_with`] loads (for a test that writes it to a file).
pub fn config_text_with(issuers: &str, extra: &str) -> String {
    format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
grpc_addr = "127.0.0.1:0"

{issuers}

[[clients]]
id = "gateway"
secret = "{GATEWAY_SECRET}"
permissions = ["introspect"]

[[clients]]
id = "ops"
secret = "{OPS_SECRET}"
permissions = ["introspect", "revoke", "admin"]

[[clients]]
id = "revoker"
secret = "{REVOKER_SECRET}"
permissions = ["revoke"]

{extra}
"#
    )
}

/// An issuer block fetching its JWKS from `idp` (plain HTTP on loopback).
pub fn jwks_issuer(name: &str, iss: &str, idp: &Idp, extra: &str) -> String {
    format!(
        r#"
[[issuers]]
name = "{name}"
issuer = "{iss}"
jwks_uri = "{}"
allow_insecure_http = true
unknown_kid_refresh_seconds = 30
{extra}
"#,
        idp.jwks_uri()
    )
}

/// tokend running in-process, with a clock the test controls.
pub struct TestApp {
    pub app: App,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<AtomicU64>,
}

pub async fn spawn_app(config: Config) -> TestApp {
    let clock = Arc::new(AtomicU64::new(now()));
    let reader = clock.clone();
    let app = tokend::app::start(config, Arc::new(move || reader.load(Ordering::SeqCst)))
        .await
        .expect("tokend starts");
    let base = format!("http://{}", app.http_addr);
    TestApp {
        app,
        base,
        http: reqwest::Client::new(),
        clock,
    }
}

/// Starts tokend and waits until every issuer has its keys.
pub async fn spawn_ready(config: Config) -> TestApp {
    let app = spawn_app(config).await;
    app.wait_ready().await;
    app
}

impl TestApp {
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self
                .app
                .state
                .runtime()
                .issuers
                .iter()
                .all(|i| i.is_loaded())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("tokend did not become ready");
    }

    pub fn set_now(&self, t: u64) {
        self.clock.store(t, Ordering::SeqCst);
    }

    pub async fn introspect_as(
        &self,
        auth: Option<(&str, &str)>,
        token: &str,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/introspect", self.base))
            .form(&[("token", token)]);
        if let Some((id, secret)) = auth {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// Introspects as the gateway and returns the JSON answer (asserting 200).
    pub async fn introspect(&self, token: &str) -> Value {
        let response = self
            .introspect_as(Some(("gateway", GATEWAY_SECRET)), token)
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Whether tokend says the token is active (and, if inactive, that it says nothing else).
    pub async fn is_active(&self, token: &str) -> bool {
        let body = self.introspect(token).await;
        let active = body["active"].as_bool().expect("active member");
        if !active {
            assert_eq!(
                body,
                json!({"active": false}),
                "an inactive answer carries nothing else"
            );
        }
        active
    }

    pub async fn forward_auth(&self, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}/auth", self.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// The value of one series (name and labels, as scraped); 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics().await, series)
    }

    /// `/admin/explain` for `token`, as an operator.
    pub async fn explain(&self, token: &str) -> Value {
        self.http
            .post(format!("{}/admin/explain", self.base))
            .basic_auth("ops", Some(OPS_SECRET))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The value of the series that starts `series` (name and labels) in a
/// Prometheus text scrape; 0 when absent.
pub fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Standard claims for `iss`, valid for five minutes from now.
pub fn claims(iss: &str) -> Value {
    let t = now();
    json!({"iss": iss, "sub": "alice", "aud": "orders", "iat": t, "exp": t + 300, "jti": format!("jti-{}", rand::random::<u64>()), "scope": "read write", "client_id": "web"})
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `c` with the members of `changes` set (added or replaced).
pub fn with(c: Value, changes: Value) -> Value {
    let mut c = c;
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// `token` as an introspection request presents it.
pub fn presented(token: &str) -> tokend::request::Presented<'_> {
    tokend::request::Presented::new(token, tokend::request::TokenSource::FormBody)
}

/// Waits until `token` is inactive on `app` (a replica catching up).
pub async fn until_inactive(app: &TestApp, token: &str, limit: Duration) {
    let started = std::time::Instant::now();
    while app
        .app
        .state
        .runtime()
        .verifier
        .check(&presented(token), now())
        .await
        .is_active()
    {
        assert!(started.elapsed() < limit, "still active after {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Builds a signer and its JWKS in one go.
pub fn signer(alg: Algorithm, kid: &str) -> Signer {
    Signer::generate(alg, kid)
}

pub fn header_map_get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// The configuration `text` is refused with exactly these errors, each named
/// by how it starts (the key path and the problem).
pub fn assert_config_errors(text: &str, expected: &[&str]) {
    let errors = tokend::config::Config::from_toml(text, Vec::new())
        .unwrap_err()
        .0;
    for want in expected {
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

//! Shared Signals: Security Event Tokens (RFC 8417) pushed to `POST
//! /ssf/events` (RFC 8935) and polled from a real transmitter stub (RFC 8936),
//! signed by a key the stub serves through its SSF discovery document. CAEP
//! and RISC events end sessions; every RFC 8935 error code is produced by a
//! SET built to earn it; a SET is applied once.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";
const AUDIENCE: &str = "https://tokend.test";
const PUSH_AUTH: &str = "Bearer ssf-push-credential-0123456789";
const POLL_AUTH: &str = "Bearer ssf-poll-credential-0123456789";
const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

/// What the stub transmitter holds: SETs waiting to be polled, what tokend
/// acknowledged or refused.
#[derive(Default)]
struct StubState {
    base: String,
    jwks: Value,
    queue: Mutex<Vec<(String, String)>>,
    acked: Mutex<Vec<String>>,
    errors: Mutex<Vec<(String, String)>>,
    unauthorized: Mutex<usize>,
}

/// An SSF transmitter: `/.well-known/ssf-configuration` (SSF 1.0 §7.1:
/// `issuer`, `jwks_uri`, `delivery_methods_supported`), its JWKS, and an RFC
/// 8936 poll endpoint.
struct Transmitter {
    key: Signer,
    state: Arc<StubState>,
}

impl Transmitter {
    async fn start() -> Transmitter {
        let key = signer(Algorithm::ES256, "ssf-1");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(StubState {
            base: base.clone(),
            jwks: jwks(&[&key]),
            ..Default::default()
        });
        let router = Router::new()
            .route(
                "/.well-known/ssf-configuration",
                get(|State(s): State<Arc<StubState>>| async move {
                    axum::Json(json!({
                        "spec_version": "1_0",
                        "issuer": s.base,
                        "jwks_uri": format!("{}/jwks", s.base),
                        "delivery_methods_supported": ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"],
                    }))
                }),
            )
            .route(
                "/jwks",
                get(|State(s): State<Arc<StubState>>| async move { axum::Json(s.jwks.clone()) }),
            )
            .route("/poll", post(poll))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Transmitter { key, state }
    }

    fn issuer(&self) -> String {
        self.state.base.clone()
    }

    /// A SET as this transmitter signs it (`typ: secevent+jwt`).
    fn set(&self, claims: &Value) -> String {
        self.key.sign_with_header(
            Algorithm::ES256,
            &json!({"alg": "ES256", "kid": "ssf-1", "typ": "secevent+jwt"}),
            claims,
        )
    }

    /// SET claims carrying one event for `sub_id`.
    fn claims(&self, event: &str, sub_id: Value, payload: Value) -> Value {
        json!({
            "iss": self.issuer(),
            "aud": AUDIENCE,
            "iat": now(),
            "jti": format!("set-{:016x}", rand::random::<u64>()),
            "sub_id": sub_id,
            "events": {event: payload},
        })
    }
}

async fn poll(
    State(s): State<Arc<StubState>>,
    headers: axum::http::HeaderMap,
    body: axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(POLL_AUTH) {
        *s.unauthorized.lock().unwrap() += 1;
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    }
    for jti in body["ack"].as_array().into_iter().flatten() {
        s.acked
            .lock()
            .unwrap()
            .push(jti.as_str().unwrap().to_owned());
    }
    for (jti, err) in body["setErrs"].as_object().into_iter().flatten() {
        s.errors
            .lock()
            .unwrap()
            .push((jti.clone(), err["err"].as_str().unwrap().to_owned()));
    }
    let max = body["maxEvents"].as_u64().unwrap_or(0) as usize;
    let mut queue = s.queue.lock().unwrap();
    let take = max.min(queue.len());
    let batch: serde_json::Map<String, Value> = queue
        .drain(..take)
        .map(|(jti, set)| (jti, json!(set)))
        .collect();
    axum::Json(json!({"sets": batch, "moreAvailable": !queue.is_empty()})).into_response()
}

/// tokend trusting `main` (an IdP) and the transmitter, which applies to `main`.
async fn setup(transmitter: &Transmitter, extra: &str) -> (Idp, TestApp, Signer) {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let block = format!(
        r#"
[[ssf_transmitters]]
name = "stub"
issuer = "{}"
audience = "{AUDIENCE}"
authorization = "{PUSH_AUTH}"
applies_to = ["main"]
allow_insecure_http = true
{extra}
"#,
        transmitter.issuer()
    );
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), &block)).await;
    (idp, app, key)
}

fn access_token(key: &Signer, sub: &str, sid: &str) -> String {
    let t = now();
    key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": sub, "sid": sid, "iat": t - 5, "exp": t + 300, "jti": format!("at-{:016x}", rand::random::<u64>())}),
    )
}

impl TestApp {
    async fn push(
        &self,
        set: &str,
        authorization: Option<&str>,
        content_type: &str,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/ssf/events", self.base))
            .header("content-type", content_type)
            .body(set.to_owned());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.unwrap()
    }

    async fn push_set(&self, set: &str) -> reqwest::Response {
        self.push(set, Some(PUSH_AUTH), "application/secevent+jwt")
            .await
    }

    async fn events_count(&self, source: &str, event: &str, result: &str) -> u64 {
        let wanted = format!(
            "tokend_revocation_events_total{{source=\"{source}\",event=\"{event}\",result=\"{result}\"}}"
        );
        self.metric(&wanted).await as u64
    }
}

fn iss_sub(sub: &str) -> Value {
    json!({"format": "iss_sub", "iss": ISS, "sub": sub})
}

#[tokio::test]
async fn caep_and_risc_events_end_the_subjects_sessions() {
    let transmitter = Transmitter::start().await;
    let (_idp, app, key) = setup(&transmitter, "").await;
    for (event, sub) in [
        (format!("{CAEP}credential-change"), "u-credential"),
        (format!("{RISC}account-disabled"), "u-disabled"),
        (format!("{RISC}account-purged"), "u-purged"),
        (format!("{RISC}sessions-revoked"), "u-sessions"),
        (format!("{CAEP}session-revoked"), "u-no-session"),
    ] {
        let token = access_token(&key, sub, "s-1");
        let bystander = access_token(&key, "someone-else", "s-1");
        assert!(app.is_active(&token).await);
        let set = transmitter.set(&transmitter.claims(
            &event,
            iss_sub(sub),
            json!({"event_timestamp": now()}),
        ));
        let response = app.push_set(&set).await;
        assert_eq!(response.status(), 202, "{event}");
        assert!(!app.is_active(&token).await, "{event}");
        assert!(app.is_active(&bystander).await, "{event}");
    }
    let listed = app.admin_list("").await;
    assert!(
        listed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] == "subject" && e["created_by"] == "ssf:stub")
    );
}

#[tokio::test]
async fn session_revoked_with_a_session_ends_only_that_session() {
    let transmitter = Transmitter::start().await;
    let (_idp, app, key) = setup(&transmitter, "").await;
    let ended = access_token(&key, "carol", "sess-a");
    let kept = access_token(&key, "carol", "sess-b");
    // SSF 1.0: a complex subject with the user and the session.
    let subject = json!({"format": "complex", "user": iss_sub("carol"), "session": {"format": "opaque", "id": "sess-a"}});
    let set = transmitter.set(&transmitter.claims(
        &format!("{CAEP}session-revoked"),
        subject,
        json!({"event_timestamp": now()}),
    ));
    assert_eq!(app.push_set(&set).await.status(), 202);
    assert!(!app.is_active(&ended).await);
    assert!(app.is_active(&kept).await);
    // An older transmitter: no `sub_id`, the subject inside the event, in the opaque format.
    let token = access_token(&key, "dave", "s-1");
    let mut claims = transmitter.claims(
        &format!("{RISC}account-disabled"),
        Value::Null,
        json!({"subject": {"format": "opaque", "id": "dave"}}),
    );
    claims.as_object_mut().unwrap().remove("sub_id");
    assert_eq!(app.push_set(&transmitter.set(&claims)).await.status(), 202);
    assert!(!app.is_active(&token).await);
}

#[tokio::test]
async fn the_event_time_bounds_what_is_revoked() {
    let transmitter = Transmitter::start().await;
    let (_idp, app, key) = setup(&transmitter, "").await;
    let t = now();
    app.set_now(t);
    let before = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "erin", "iat": t - 100, "exp": t + 300}),
    );
    let after = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "erin", "iat": t - 10, "exp": t + 300}),
    );
    let set = transmitter.set(&transmitter.claims(
        &format!("{CAEP}credential-change"),
        iss_sub("erin"),
        json!({"event_timestamp": t - 50}),
    ));
    assert_eq!(app.push_set(&set).await.status(), 202);
    assert!(
        !app.is_active(&before).await,
        "issued before the credential changed"
    );
    assert!(
        app.is_active(&after).await,
        "issued with the new credential"
    );
}

#[tokio::test]
async fn a_set_is_applied_once_and_a_resent_one_acknowledged() {
    let transmitter = Transmitter::start().await;
    let (_idp, app, _key) = setup(&transmitter, "").await;
    let set = transmitter.set(&transmitter.claims(
        &format!("{RISC}account-disabled"),
        iss_sub("frank"),
        json!({}),
    ));
    let applied = app
        .events_count("ssf_push", "account-disabled", "applied")
        .await;
    let replayed = app
        .events_count("ssf_push", "account-disabled", "replayed")
        .await;
    assert_eq!(app.push_set(&set).await.status(), 202);
    assert_eq!(
        app.push_set(&set).await.status(),
        202,
        "the transmitter may have missed the first acknowledgement"
    );
    // (Other tests apply account-disabled events at the same time; only this one replays.)
    assert!(
        app.events_count("ssf_push", "account-disabled", "applied")
            .await
            > applied
    );
    assert_eq!(
        app.events_count("ssf_push", "account-disabled", "replayed")
            .await,
        replayed + 1
    );
    assert_eq!(
        app.admin_list("").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn events_and_subjects_it_does_not_know_are_acknowledged_and_counted() {
    let transmitter = Transmitter::start().await;
    let (_idp, app, key) = setup(&transmitter, "").await;
    let token = access_token(&key, "gina", "s-1");
    let ignored = app.events_count("ssf_push", "unknown", "ignored").await;
    let unknown = transmitter.set(&transmitter.claims(
        "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change",
        iss_sub("gina"),
        json!({}),
    ));
    assert_eq!(app.push_set(&unknown).await.status(), 202);
    assert_eq!(
        app.events_count("ssf_push", "unknown", "ignored").await,
        ignored + 1
    );
    let before = app
        .events_count("ssf_push", "account-disabled", "ignored")
        .await;
    for subject in [
        json!({"format": "email", "email": "gina@example.com"}),
        json!({"format": "iss_sub", "iss": "https://not-applied.test", "sub": "gina"}),
    ] {
        let set = transmitter.set(&transmitter.claims(
            &format!("{RISC}account-disabled"),
            subject,
            json!({}),
        ));
        assert_eq!(app.push_set(&set).await.status(), 202);
    }
    assert_eq!(
        app.events_count("ssf_push", "account-disabled", "ignored")
            .await,
        before + 2
    );
    assert!(app.is_active(&token).await, "nothing was guessed");
    assert_eq!(app.admin_list("").await["entries"], json!([]));
}

/// Every RFC 8935 §2.4 error code this receiver can give, each earned by a
/// request built to earn it.
#[tokio::test]
async fn every_rfc8935_error_code_is_given_where_it_applies() {
    let transmitter = Transmitter::start().await;
    let (_idp, app, _key) = setup(&transmitter, "").await;
    let good = transmitter.claims(
        &format!("{RISC}account-disabled"),
        iss_sub("hal"),
        json!({}),
    );
    let attacker = signer(Algorithm::ES256, "ssf-1");
    let signed_by = |key: &Signer, typ: &str, claims: &Value| {
        key.sign_with_header(
            Algorithm::ES256,
            &json!({"alg": "ES256", "kid": "ssf-1", "typ": typ}),
            claims,
        )
    };
    let without = |name: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let cases: Vec<(reqwest::Response, &str)> = vec![
        (
            app.push(&transmitter.set(&good), None, "application/secevent+jwt")
                .await,
            "authentication_failed",
        ),
        (
            app.push(
                &transmitter.set(&good),
                Some("Bearer wrong-credential-0123456789"),
                "application/secevent+jwt",
            )
            .await,
            "authentication_failed",
        ),
        (
            app.push(&transmitter.set(&good), Some(PUSH_AUTH), "application/jwt")
                .await,
            "invalid_request",
        ),
        (app.push_set("not a jwt").await, "invalid_request"),
        (
            app.push_set(&signed_by(&transmitter.key, "JWT", &good))
                .await,
            "invalid_request",
        ),
        (
            app.push_set(&transmitter.set(&without("jti"))).await,
            "invalid_request",
        ),
        (
            app.push_set(&transmitter.set(&without("iat"))).await,
            "invalid_request",
        ),
        (
            app.push_set(&transmitter.set(&with(good.clone(), json!({"iat": now() + 600}))))
                .await,
            "invalid_request",
        ),
        (
            app.push_set(&transmitter.set(&without("events"))).await,
            "invalid_request",
        ),
        (
            app.push_set(&transmitter.set(&with(good.clone(), json!({"events": {}}))))
                .await,
            "invalid_request",
        ),
        (app.push_set("a.b.c.d.e").await, "invalid_request"),
        (
            app.push_set(&signed_by(&attacker, "secevent+jwt", &good))
                .await,
            "invalid_key",
        ),
        (
            app.push_set(
                &transmitter.set(&with(good.clone(), json!({"iss": "https://other.test"}))),
            )
            .await,
            "invalid_issuer",
        ),
        (
            app.push_set(&transmitter.set(&with(
                good.clone(),
                json!({"aud": "https://elsewhere.test"}),
            )))
            .await,
            "invalid_audience",
        ),
    ];
    for (response, code) in cases {
        assert_eq!(response.status(), 400, "{code}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["err"], code, "{body}");
        assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(
        app.admin_list("").await["entries"],
        json!([]),
        "nothing applied"
    );
}

#[tokio::test]
async fn polled_sets_are_applied_then_acknowledged_and_bad_ones_reported() {
    let transmitter = Transmitter::start().await;
    let extra = format!(
        "poll_endpoint = \"{}/poll\"\npoll_authorization = \"{POLL_AUTH}\"\npoll_interval_seconds = 1",
        transmitter.issuer()
    );
    let key = signer(Algorithm::ES256, "k1");
    let tokens: Vec<(String, String)> = (0..150)
        .map(|i| {
            let sub = format!("polled-{i}");
            (sub.clone(), access_token(&key, &sub, "s-1"))
        })
        .collect();
    {
        let mut queue = transmitter.state.queue.lock().unwrap();
        for (sub, _) in &tokens {
            let claims =
                transmitter.claims(&format!("{RISC}account-disabled"), iss_sub(sub), json!({}));
            queue.push((
                claims["jti"].as_str().unwrap().to_owned(),
                transmitter.set(&claims),
            ));
        }
        let bad = with(
            transmitter.claims(&format!("{RISC}account-disabled"), iss_sub("x"), json!({})),
            json!({"aud": "https://elsewhere.test"}),
        );
        queue.push((
            bad["jti"].as_str().unwrap().to_owned(),
            transmitter.set(&bad),
        ));
    }
    let idp = Idp::start(jwks(&[&key])).await;
    let block = format!(
        "[[ssf_transmitters]]\nname = \"stub\"\nissuer = \"{}\"\naudience = \"{AUDIENCE}\"\napplies_to = [\"main\"]\nallow_insecure_http = true\n{extra}\n",
        transmitter.issuer()
    );
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), &block)).await;
    // 151 SETs, 100 per poll: two polls at once (moreAvailable), then the acknowledgements.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while transmitter.state.acked.lock().unwrap().len() < 150 {
        assert!(
            std::time::Instant::now() < deadline,
            "acked {}",
            transmitter.state.acked.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (sub, token) in &tokens {
        assert!(!app.is_active(token).await, "{sub}");
    }
    let errors = transmitter.state.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].1, "invalid_audience");
    assert_eq!(*transmitter.state.unauthorized.lock().unwrap(), 0);
    assert!(
        app.events_count("ssf_poll", "account-disabled", "applied")
            .await
            >= 150
    );
}

#[test]
fn check_config_names_every_bad_transmitter_key() {
    let text = r#"
[[issuers]]
name = "main"
issuer = "https://idp"
jwks_uri = "https://idp/keys"

[[ssf_transmitters]]
name = "a"
issuer = "https://a"
audience = ""
authorization = "short"
applies_to = ["nope"]

[[ssf_transmitters]]
name = "main"
issuer = "https://b"
audience = "x"
applies_to = ["main"]
poll_endpoint = "http://b/poll"
"#;
    assert_config_errors(
        text,
        &[
            "ssf_transmitters[0].audience: must not be empty",
            "ssf_transmitters[0].applies_to[0]: no issuer named \"nope\"",
            "ssf_transmitters[0].authorization: at least 16 bytes",
            "ssf_transmitters[1].name: \"main\" is already",
            "ssf_transmitters[1].poll_authorization: needed",
            "ssf_transmitters[1].poll_endpoint: http:// needs allow_insecure_http",
        ],
    );
}

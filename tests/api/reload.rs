//! Reload without restart: issuers added, clients removed, routes changed
//! and a broken file refused, all while requests keep coming — and SIGHUP and
//! `--watch-config` on the real binary.

use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::helpers::*;
use crate::introspection_idp::{CLIENT_ID, CLIENT_SECRET, IntrospectionIdp, opaque_claims};
use tokend::mint::{Signer, jwks};
use tokend::reload::ReloadError;
use tokend::token::Algorithm;

const ISS_A: &str = "https://a.test";
const ISS_B: &str = "https://b.test";

/// Held by each in-process reload test: the reload counters are
/// process-wide, so the test that counts its reloads must not see another's.
static RELOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A config file in a folder of its own, rewritten by the test.
pub struct ConfigFile(pub PathBuf);

impl ConfigFile {
    pub fn new(text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!("tokend-reload-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = ConfigFile(dir.join("tokend.toml"));
        file.write(text);
        file
    }

    /// Replaces the file whole (a rename, as editors and ConfigMaps do).
    pub fn write(&self, text: &str) {
        let next = self.0.with_extension("next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &self.0).unwrap();
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The test config: issuer a always, issuer b and the client "legacy" when
/// asked, and one route whose scope the test changes.
fn config_text(http_addr: &str, a: &Idp, b: Option<&Idp>, legacy: bool, scope: &str) -> String {
    let mut text = format!(
        "[server]\nhttp_addr = \"{http_addr}\"\ngrpc_addr = \"127.0.0.1:0\"\n{}",
        jwks_issuer("a", ISS_A, a, "")
    );
    if let Some(b) = b {
        text += &jwks_issuer("b", ISS_B, b, "");
    }
    text += &format!(
        "[[clients]]\nid = \"gateway\"\nsecret = \"{GATEWAY_SECRET}\"\npermissions = [\"introspect\"]\n"
    );
    text += &format!(
        "[[clients]]\nid = \"revoker\"\nsecret = \"{REVOKER_SECRET}\"\npermissions = [\"revoke\"]\n"
    );
    if legacy {
        text += "[[clients]]\nid = \"legacy\"\nsecret = \"legacy-secret\"\npermissions = [\"introspect\"]\n";
    }
    text += &format!(
        "[[routes]]\nname = \"orders\"\npath_prefix = \"/orders\"\nscopes_all = [\"{scope}\"]\n"
    );
    text += "[[routes]]\nname = \"catalog\"\npath_prefix = \"/catalog\"\nscopes_all = [\"read\"]\n";
    text
}

/// Issuers a and b: their keys and IdPs.
async fn two_idps() -> (Signer, Signer, Idp, Idp) {
    let (key_a, key_b) = (
        signer(Algorithm::ES256, "a1"),
        signer(Algorithm::ES256, "b1"),
    );
    let (idp_a, idp_b) = (
        Idp::start(jwks(&[&key_a])).await,
        Idp::start(jwks(&[&key_b])).await,
    );
    (key_a, key_b, idp_a, idp_b)
}

fn token(key: &Signer, iss: &str) -> String {
    key.sign(
        Algorithm::ES256,
        &with(claims(iss), json!({"scope": "read write"})),
    )
}

async fn auth_status(app: &TestApp, uri: &str, token: &str) -> u16 {
    app.http
        .get(format!("{}/auth", app.base))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-host", "api.test")
        .header("x-forwarded-uri", uri)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn introspect_status(app: &TestApp, client: (&str, &str), token: &str) -> u16 {
    app.introspect_as(Some(client), token)
        .await
        .status()
        .as_u16()
}

/// Four clients hammer `/introspect` and `/auth` with a token of the
/// unchanged issuer while the file is reloaded four times (an issuer added,
/// a client removed, a route changed, a broken file): not one request fails,
/// and every change is in force the moment `reload` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reloads_under_load_change_issuers_clients_and_routes_without_one_failed_request() {
    let _alone = RELOADING.lock().await;
    let (key_a, key_b, idp_a, idp_b) = two_idps().await;
    let text =
        |b: Option<&Idp>, legacy, scope| config_text("127.0.0.1:0", &idp_a, b, legacy, scope);
    let file = ConfigFile::new(&text(None, true, "read"));
    let app = spawn_ready(tokend::config::Config::load(&file.0).unwrap()).await;
    let reloader = app.app.reloader(file.0.clone());
    let (token_a, token_b) = (token(&key_a, ISS_A), token(&key_b, ISS_B));
    let legacy = ("legacy", "legacy-secret");
    let ok_before = app
        .metric("tokend_config_reloads_total{result=\"ok\"}")
        .await;
    let err_before = app
        .metric("tokend_config_reloads_total{result=\"error\"}")
        .await;

    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (app, stop, answered, failed, token) = (
            app.clone(),
            stop.clone(),
            answered.clone(),
            failed.clone(),
            token_a.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let introspected = app
                    .introspect_as(Some(("gateway", GATEWAY_SECRET)), &token)
                    .await
                    .json::<serde_json::Value>()
                    .await
                    .ok();
                let allowed = auth_status(&app, "/catalog/1", &token).await;
                if introspected.is_none_or(|answer| answer["active"] != true) || allowed != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                answered.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(introspect_status(&app, legacy, &token_a).await, 200);
    assert!(!app.is_active(&token_b).await, "b is not trusted yet");
    let fetches_of_a = idp_a.jwks_hits();
    // A revocation made before the reloads holds through all of them.
    let revoked = token(&key_a, ISS_A);
    let answer = app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &revoked)
        .await;
    assert_eq!(answer.status(), 200);
    assert!(!app.is_active(&revoked).await);

    // 1. An issuer added: trusted at once; a's key set is not fetched again
    // and its cached verdicts carry over.
    file.write(&text(Some(&idp_b), true, "read"));
    let done = reloader.reload("test").await.expect("reload");
    assert_eq!(
        (done.added, done.changed, done.removed),
        (vec!["b".to_owned()], vec![], vec![])
    );
    assert!(
        app.is_active(&token_b).await,
        "b trusted the moment the reload returns"
    );
    assert_eq!(idp_a.jwks_hits(), fetches_of_a, "a's key set kept");
    let runtime = app.app.state.runtime();
    assert!(
        runtime.verifier.cache().is_some_and(|c| !c.is_empty()),
        "cached verdicts carried over"
    );
    drop(runtime);

    // 2. A client removed: its credentials stop working.
    file.write(&text(Some(&idp_b), false, "read"));
    reloader.reload("test").await.expect("reload");
    assert_eq!(introspect_status(&app, legacy, &token_a).await, 401);

    // 3. A route changed: the scope it asks for is now one the token lacks.
    assert_eq!(auth_status(&app, "/orders/1", &token_b).await, 200);
    file.write(&text(Some(&idp_b), false, "admin"));
    reloader.reload("test").await.expect("reload");
    assert_eq!(auth_status(&app, "/orders/1", &token_b).await, 403);
    // …and back, for the load's token.
    file.write(&text(Some(&idp_b), false, "read"));
    reloader.reload("test").await.expect("reload");

    // 4. A broken file: every error with its key path, nothing changes.
    file.write(
        &(text(Some(&idp_b), false, "read")
            + "[[issuers]]\nname = \"c\"\nissuer = \"https://c\"\njwks_uri = \"https://c/k\"\nalgorithms = [\"none\"]\n"
            + "[[issuers]]\nname = \"d\"\njwks_uri = \"https://d/k\"\n"),
    );
    match reloader.reload("test").await {
        Err(ReloadError::Invalid(errors)) => {
            let all = errors.0.join("\n");
            assert!(all.contains("issuers[2].algorithms"), "{all}");
            assert!(all.contains("issuers[3].issuer: missing"), "{all}");
        }
        other => panic!("a broken file must be refused: {other:?}"),
    }
    assert!(
        app.is_active(&token_b).await,
        "the running configuration stays"
    );
    assert!(
        !app.is_active(&revoked).await,
        "a revocation outlives every reload"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let answered = answered.load(Ordering::Relaxed);
    assert!(
        answered > 100,
        "the load ran through the reloads ({answered})"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "of {answered} requests");
    assert_eq!(
        app.metric("tokend_config_reloads_total{result=\"ok\"}")
            .await
            - ok_before,
        4.0
    );
    assert_eq!(
        app.metric("tokend_config_reloads_total{result=\"error\"}")
            .await
            - err_before,
        1.0
    );
}

/// A removed issuer's refresher stops (its IdP sees no more fetches) and a
/// changed issuer's new settings apply.
#[tokio::test]
async fn a_removed_issuer_stops_refreshing_and_a_changed_one_applies_its_settings() {
    let _alone = RELOADING.lock().await;
    let (key_a, _, idp_a, idp_b) = two_idps().await;
    let fast = "refresh_seconds = 1\nmin_refresh_seconds = 1\n";
    let issuers = |b: bool, audience: &str| {
        let mut text = format!(
            "[server]\nhttp_addr = \"127.0.0.1:0\"\ngrpc_addr = \"127.0.0.1:0\"\n{}",
            jwks_issuer("a", ISS_A, &idp_a, &format!("audiences = [\"{audience}\"]"))
        );
        if b {
            text += &jwks_issuer("b", ISS_B, &idp_b, fast);
        }
        text + &format!(
            "[[clients]]\nid = \"gateway\"\nsecret = \"{GATEWAY_SECRET}\"\npermissions = [\"introspect\"]\n"
        )
    };
    let file = ConfigFile::new(&issuers(true, "orders"));
    let app = spawn_ready(tokend::config::Config::load(&file.0).unwrap()).await;
    let reloader = app.app.reloader(file.0.clone());
    let token_a = token(&key_a, ISS_A);
    assert!(app.is_active(&token_a).await);

    file.write(&issuers(false, "billing"));
    let done = reloader.reload("test").await.expect("reload");
    assert_eq!(
        (done.changed, done.removed),
        (vec!["a".to_owned()], vec!["b".to_owned()])
    );
    assert!(
        !app.is_active(&token_a).await,
        "the cached verdict for audience orders is not reused"
    );
    let fetches = idp_b.jwks_hits();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(idp_b.jwks_hits(), fetches, "b's refresher stopped");
}

/// A request in flight finishes on the snapshot it started with: an opaque
/// token waiting on its slow introspection endpoint is answered active by
/// the issuer a reload removes meanwhile; the next request finds no issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_finishes_on_the_snapshot_it_started_with() {
    let _alone = RELOADING.lock().await;
    let key = signer(Algorithm::ES256, "a1");
    let idp = Idp::start(jwks(&[&key])).await;
    let upstream = IntrospectionIdp::start().await;
    let with_opaque = format!(
        "{}[[issuers]]\nname = \"opaque\"\nissuer = \"{}\"\nintrospection_endpoint = \"{}\"\n\
         introspection_client_id = \"{CLIENT_ID}\"\nintrospection_client_secret = \"{CLIENT_SECRET}\"\n\
         allow_insecure_http = true\n",
        config_text("127.0.0.1:0", &idp, None, false, "read"),
        upstream.url(),
        upstream.introspection_endpoint(),
    );
    let file = ConfigFile::new(&with_opaque);
    let app = Arc::new(spawn_ready(tokend::config::Config::load(&file.0).unwrap()).await);
    let reloader = app.app.reloader(file.0.clone());
    let opaque = upstream.issue(opaque_claims(&upstream.url(), now()));

    upstream.set_delay(1000);
    let in_flight = tokio::spawn({
        let (app, opaque) = (app.clone(), opaque.clone());
        async move { app.introspect(&opaque).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    file.write(&config_text("127.0.0.1:0", &idp, None, false, "read"));
    let done = reloader.reload("test").await.expect("reload");
    assert_eq!(done.removed, vec!["opaque".to_owned()]);
    assert!(!in_flight.is_finished(), "the request was still waiting");
    assert_eq!(in_flight.await.unwrap()["active"], true);
    assert_eq!(upstream.calls(), 1);
    upstream.set_delay(0);
    assert!(!app.is_active(&opaque).await, "no issuer for it any more");
    assert_eq!(upstream.calls(), 1, "the removed issuer is not asked");
}

/// What needs a restart is logged and the running value stays: the
/// listener keeps its address.
#[tokio::test]
async fn a_listener_change_waits_for_a_restart() {
    let _alone = RELOADING.lock().await;
    let key = signer(Algorithm::ES256, "a1");
    let idp = Idp::start(jwks(&[&key])).await;
    let file = ConfigFile::new(&config_text("127.0.0.1:0", &idp, None, false, "read"));
    let app = spawn_ready(tokend::config::Config::load(&file.0).unwrap()).await;
    let reloader = app.app.reloader(file.0.clone());
    let elsewhere = format!("127.0.0.1:{}", free_port());
    file.write(&config_text(&elsewhere, &idp, None, false, "read"));
    let done = reloader.reload("test").await.expect("reload");
    assert_eq!(done.needs_restart, vec!["server.http_addr"]);
    assert_eq!(
        app.app.state.runtime().config.server.http_addr,
        "127.0.0.1:0"
    );
    assert!(app.is_active(&token(&key, ISS_A)).await);
}

/// The binary, serving `file` (with `--watch-config` when asked), its log
/// in a file beside the config.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
    log: PathBuf,
}

impl Served {
    pub async fn start(file: &ConfigFile, port: u16, watch: bool) -> Served {
        let log = file.0.with_extension(format!("{port}.log"));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tokend"));
        command.args(["serve", "--config"]).arg(&file.0);
        if watch {
            command.arg("--watch-config");
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            let ready = http.get(format!("{}/readyz", served.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tokend did not become ready");
    }

    async fn active(&self, token: &str) -> bool {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/introspect", self.base))
            .basic_auth("gateway", Some(GATEWAY_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["active"] == true
    }

    /// Whether `token` turns active within `limit`.
    async fn active_within(&self, token: &str, limit: Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        while std::time::Instant::now() < until {
            if self.active(token).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// One series of the binary's own `/metrics` (its process, its counters).
    async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric_value(&text, series)
    }

    fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Stops it (SIGTERM) and returns its log.
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// `--watch-config` picks up a changed file by itself and logs a broken one
/// with its key paths; without it, the change waits for SIGHUP. The binary's
/// own reload metrics follow (one process, so no other test moves them), and
/// a restart-only change is logged as such while the rest applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_on_a_file_change_with_watch_config_and_on_sighup() {
    const OK: &str = "tokend_config_reloads_total{result=\"ok\"}";
    const ERROR: &str = "tokend_config_reloads_total{result=\"error\"}";
    const LAST: &str = "tokend_config_last_reload_success_timestamp_seconds";
    const LAST_OK: &str = "tokend_config_last_reload_successful";
    let (_, key_b, idp_a, idp_b) = two_idps().await;
    let token_b = token(&key_b, ISS_B);
    for watch in [true, false] {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let file = ConfigFile::new(&config_text(&addr, &idp_a, None, false, "read"));
        let served = Served::start(&file, port, watch).await;
        assert!(!served.active(&token_b).await);
        let started_at = served.metric(LAST).await;
        assert!(started_at > 0.0, "the start counts as a load");
        assert_eq!(served.metric(LAST_OK).await, 1.0);
        // The SIGHUP round also moves the listener, which takes a restart.
        let moved = format!("127.0.0.1:{}", free_port());
        let next_addr = if watch { &addr } else { &moved };
        file.write(&config_text(next_addr, &idp_a, Some(&idp_b), false, "read"));
        if watch {
            assert!(
                served.active_within(&token_b, Duration::from_secs(5)).await,
                "watched change applied"
            );
            let reloaded_at = served.metric(LAST).await;
            assert!(reloaded_at > started_at, "{reloaded_at} after {started_at}");
            assert_eq!(served.metric(OK).await, 1.0);
            file.write("[[issuers]]\nname = \"broken\"\n");
            tokio::time::sleep(Duration::from_millis(2000)).await;
            assert!(
                served.active(&token_b).await,
                "a broken file changes nothing"
            );
            assert!(served.metric(ERROR).await >= 1.0);
            assert_eq!(served.metric(LAST_OK).await, 0.0, "the refusal shows");
            assert_eq!(served.metric(LAST).await, reloaded_at, "kept: last success");
        } else {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(
                !served.active(&token_b).await,
                "unwatched: nothing until SIGHUP"
            );
            served.signal("HUP");
            assert!(
                served.active_within(&token_b, Duration::from_secs(5)).await,
                "SIGHUP applied (served on the old address)"
            );
            assert_eq!(served.metric(OK).await, 1.0);
            assert!(served.metric(LAST).await > started_at);
        }
        let log = served.stop();
        assert!(log.contains("configuration reloaded"), "{log}");
        if watch {
            assert!(log.contains("issuers[0].issuer: missing"), "{log}");
            assert!(log.contains("configuration reload refused"), "{log}");
        } else {
            assert!(
                log.contains("reason=\"SIGHUP\"") || log.contains("reason=SIGHUP"),
                "{log}"
            );
            assert!(
                log.contains("server.http_addr") && log.contains("takes effect after a restart"),
                "{log}"
            );
        }
    }
}

//! Revocation across replicas with real Redis: propagation between two
//! tokend instances, TTLs, a Redis crash and restart with AOF, a replica cut off
//! and coming back (resume and full resync), and a three-master Redis Cluster.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::redis_support::*;
use tokend::mint::jwks;
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

fn redis_block(url_key: &str, prefix: &str, extra: &str) -> String {
    format!("[revocation]\nbackend = \"redis\"\n{url_key}\nkey_prefix = \"{prefix}\"\n{extra}\n")
}

pub fn single(url: &str, prefix: &str, extra: &str) -> String {
    redis_block(&format!("redis_url = \"{url}\""), prefix, extra)
}

pub async fn replica(idp: &Idp, revocation: &str) -> TestApp {
    replica_with(idp, "", revocation).await
}

/// A replica whose issuer block has `issuer_extra` too.
pub async fn replica_with(idp: &Idp, issuer_extra: &str, revocation: &str) -> TestApp {
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, idp, issuer_extra),
        revocation,
    ))
    .await;
    wait_until(
        "the revocation copy is loaded",
        Duration::from_secs(10),
        || app.app.state.revocations.health().loaded,
    )
    .await;
    app
}

pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether `app` (in-process, no HTTP) finds the token active right now.
async fn active_here(app: &TestApp, token: &str) -> bool {
    app.app
        .state
        .runtime()
        .verifier
        .check(&presented(token), now())
        .await
        .is_active()
}

/// The `p` quantile (0 to 1) of durations sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn a_revocation_on_one_replica_is_seen_by_the_other_within_milliseconds() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let a = replica(&idp, &single(&url, &prefix, "")).await;
    let b = replica(&idp, &single(&url, &prefix, "")).await;

    let mut delays = Vec::new();
    for _ in 0..200 {
        let token = key.sign(Algorithm::ES256, &claims(ISS));
        assert!(active_here(&b, &token).await);
        let response = a.revoke_as(Some(("revoker", REVOKER_SECRET)), &token).await;
        assert_eq!(response.status(), 200);
        let acked = Instant::now();
        assert!(
            !active_here(&a, &token).await,
            "the revoking replica sees it at once"
        );
        while active_here(&b, &token).await {
            assert!(
                acked.elapsed() < Duration::from_secs(5),
                "replica B never saw the revocation"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(acked.elapsed());
    }
    delays.sort();
    let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
    println!(
        "propagation A -> B over {} revocations: p50 {p50:?}, p99 {p99:?}, max {:?}",
        delays.len(),
        delays.last().unwrap()
    );
    assert!(p99 < Duration::from_millis(500), "p99 propagation {p99:?}");

    // the other way, for a bulk entry, and a lift
    let bob = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "bob", "iat": now() - 10, "exp": now() + 300}),
    );
    let entry: Value = b
        .admin_post(json!({"sub": "bob", "iss": ISS}))
        .await
        .json()
        .await
        .unwrap();
    wait_until(
        "A sees B's subject revocation",
        Duration::from_secs(2),
        || a.app.state.revocations.local_copy().len() == 201,
    )
    .await;
    assert!(!a.is_active(&bob).await);
    assert_eq!(a.admin_lift(entry["id"].as_str().unwrap()).await, 204);
    wait_until("B sees the lift", Duration::from_secs(2), || {
        b.app.state.revocations.local_copy().len() == 200
    })
    .await;
    assert!(b.is_active(&bob).await);
    // both list the same entries, read from Redis
    assert_eq!(
        a.admin_list("?limit=1000").await,
        b.admin_list("?limit=1000").await
    );
}

/// A scrape right after the copy is loaded says the store is up, as
/// `/readyz` does: the gauge does not wait for the periodic refresh.
#[tokio::test]
async fn the_store_gauge_agrees_with_readyz_from_the_first_load() {
    let url = require_shared_redis().await;
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = replica(&idp, &single(&url, &unique_prefix(), "")).await;
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["revocation"]["up"], true, "{ready}");
    let metrics = app.metrics().await;
    let up = metrics
        .lines()
        .find(|l| l.starts_with("tokend_revocation_store_up"))
        .expect("the gauge is exported");
    assert!(up.ends_with(" 1"), "{up}");
}

#[tokio::test]
async fn every_key_under_the_prefix_has_a_ttl() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = replica(&idp, &single(&url, &prefix, "")).await;
    app.revoke_as(
        Some(("revoker", REVOKER_SECRET)),
        &key.sign(Algorithm::ES256, &claims(ISS)),
    )
    .await;
    assert_eq!(
        app.admin_post(json!({"sub": "x", "iss": ISS}))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.admin_post(json!({"iss": ISS, "before": now() - 60}))
            .await
            .status(),
        201
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{k} has no TTL ({ttl})");
    }
    // readable with redis-cli: the entries hash holds JSON
    let entries: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{prefix}{{rev}}:entries"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .values()
            .all(|v| serde_json::from_str::<Value>(v).is_ok())
    );
}

#[tokio::test]
async fn a_redis_crash_loses_no_acknowledged_revocation() {
    let mut redis = RedisServer::start(&[]);
    let prefix = unique_prefix();
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let config = single(&redis.url(), &prefix, "max_staleness_seconds = 3600");
    let a = replica(&idp, &config).await;
    let revoked: Vec<String> = (0..50)
        .map(|_| key.sign(Algorithm::ES256, &claims(ISS)))
        .collect();
    for token in &revoked {
        assert_eq!(
            a.revoke_as(Some(("revoker", REVOKER_SECRET)), token)
                .await
                .status(),
            200
        );
    }
    let valid = key.sign(Algorithm::ES256, &claims(ISS));

    redis.kill();
    wait_until("A notices Redis is gone", Duration::from_secs(10), || {
        !a.app.state.revocations.health().up
    })
    .await;
    // no wrong verdict while Redis is down
    for token in &revoked {
        assert!(!a.is_active(token).await);
    }
    assert!(a.is_active(&valid).await);
    // a new revocation cannot be stored: 503, and nothing is acknowledged
    let response = a.revoke_as(Some(("revoker", REVOKER_SECRET)), &valid).await;
    assert_eq!(response.status(), 503);
    assert!(a.is_active(&valid).await);
    let r = a.admin_post(json!({"sub": "x", "iss": ISS})).await;
    assert_eq!(r.status(), 503);
    let (code, ready): (u16, Value) = {
        let r = a.get("/readyz").await;
        (r.status().as_u16(), r.json().await.unwrap())
    };
    assert_eq!(code, 200, "serving from the local copy");
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["revocation"]["up"], false);
    let metrics = a.metrics().await;
    assert!(
        metrics.contains("tokend_revocation_store_up 0")
            || metrics
                .lines()
                .any(|l| l.starts_with("tokend_revocation_store_up") && l.ends_with(" 0"))
    );

    redis.restart();
    wait_until("A reconnects", Duration::from_secs(15), || {
        a.app.state.revocations.health().up
    })
    .await;
    // A fresh replica reads only what Redis kept on disk.
    let b = replica(&idp, &config).await;
    for token in &revoked {
        assert!(
            !b.is_active(token).await,
            "an acknowledged revocation was lost in the crash"
        );
    }
    assert!(b.is_active(&valid).await);
    assert_eq!(
        a.revoke_as(Some(("revoker", REVOKER_SECRET)), &valid)
            .await
            .status(),
        200
    );
    wait_until("B sees the new revocation", Duration::from_secs(2), || {
        b.app.state.revocations.local_copy().len() == 51
    })
    .await;
    assert!(!b.is_active(&valid).await);
    assert_eq!(
        a.get("/readyz").await.json::<Value>().await.unwrap()["status"],
        "ready"
    );
}

#[tokio::test]
async fn stale_copy_past_the_limit_fails_closed_when_asked() {
    let mut redis = RedisServer::start(&[]);
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let config = single(
        &redis.url(),
        &unique_prefix(),
        "max_staleness_seconds = 1\non_stale = \"fail_closed\"",
    );
    let app = replica(&idp, &config).await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert!(app.is_active(&token).await);
    redis.kill();
    wait_until(
        "stale past max_staleness_seconds",
        Duration::from_secs(15),
        || app.app.state.revocations.tripped(),
    )
    .await;
    assert_eq!(
        app.introspect(&token).await,
        json!({"active": false}),
        "a verdict, not an error"
    );
    assert_eq!(app.get("/readyz").await.status(), 503);
    redis.restart();
    wait_until("back in sync", Duration::from_secs(15), || {
        !app.app.state.revocations.tripped()
    })
    .await;
    assert!(app.is_active(&token).await);
}

#[tokio::test]
async fn a_replica_cut_off_catches_up_by_resuming_or_resyncing() {
    for (feed_max_len, missed, expect_resync) in [(100_000, 20, false), (5, 40, true)] {
        let redis = RedisServer::start(&[]);
        let proxy = Proxy::start(redis.port).await;
        let prefix = unique_prefix();
        let key = signer(Algorithm::ES256, "k1");
        let idp = Idp::start(jwks(&[&key])).await;
        let extra = format!("feed_max_len = {feed_max_len}\nmax_staleness_seconds = 3600");
        let a = replica(&idp, &single(&redis.url(), &prefix, &extra)).await;
        let b = replica(&idp, &single(&proxy.url(), &prefix, &extra)).await;
        let first = key.sign(Algorithm::ES256, &claims(ISS));
        a.revoke_as(Some(("revoker", REVOKER_SECRET)), &first).await;
        wait_until("B in step", Duration::from_secs(2), || {
            b.app.state.revocations.local_copy().len() == 1
        })
        .await;

        proxy.cut();
        wait_until("B notices the cut", Duration::from_secs(10), || {
            !b.app.state.revocations.health().up
        })
        .await;
        let tokens: Vec<String> = (0..missed)
            .map(|_| key.sign(Algorithm::ES256, &claims(ISS)))
            .collect();
        for token in &tokens {
            assert_eq!(
                a.revoke_as(Some(("revoker", REVOKER_SECRET)), token)
                    .await
                    .status(),
                200
            );
        }
        // a lift B also missed
        let list = a.admin_list("?limit=1000").await;
        let lifted_id = list["entries"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(a.admin_lift(&lifted_id).await, 204);
        assert!(
            tokens
                .iter()
                .any(|t| futures_util::FutureExt::now_or_never(active_here(&b, t)).unwrap()),
            "B is behind"
        );

        proxy.restore();
        wait_until("B catches up", Duration::from_secs(15), || {
            b.app.state.revocations.local_copy().len() == missed
        })
        .await;
        let all = std::iter::once(&first).chain(tokens.iter());
        let mut active = 0;
        for token in all {
            active += usize::from(active_here(&b, token).await);
        }
        assert_eq!(active, 1, "exactly the lifted token is active again on B");
        let resyncs = b.app.state.revocations.health().resyncs;
        assert_eq!(
            resyncs,
            if expect_resync { 2 } else { 1 },
            "feed_max_len {feed_max_len}: resyncs {resyncs}"
        );
    }
}

#[tokio::test]
async fn revocation_through_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    let block = redis_block(
        &format!("redis_cluster_urls = {urls:?}"),
        &unique_prefix(),
        "",
    );
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let a = replica(&idp, &block).await;
    let b = replica(&idp, &block).await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert!(b.is_active(&token).await);
    assert_eq!(
        a.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
            .await
            .status(),
        200
    );
    wait_until(
        "B sees A's revocation through the cluster",
        Duration::from_secs(5),
        || b.app.state.revocations.local_copy().len() == 1,
    )
    .await;
    assert!(!b.is_active(&token).await);
    let entry: Value = b
        .admin_post(json!({"sub": "alice", "iss": ISS}))
        .await
        .json()
        .await
        .unwrap();
    wait_until("A sees B's", Duration::from_secs(5), || {
        a.app.state.revocations.local_copy().len() == 2
    })
    .await;
    let other = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "alice", "iat": now() - 5, "exp": now() + 60}),
    );
    assert!(!a.is_active(&other).await);
    assert_eq!(a.admin_lift(entry["id"].as_str().unwrap()).await, 204);
    wait_until("B sees the lift", Duration::from_secs(5), || {
        b.app.state.revocations.local_copy().len() == 1
    })
    .await;
    assert!(b.is_active(&other).await);
    // a replica started now loads both from the cluster
    let c = replica(&idp, &block).await;
    assert!(!c.is_active(&token).await);
    assert!(c.is_active(&other).await);
}

//! Revocation through the APIs: RFC 7009 `/revoke`, the admin API's four kinds
//! of entry, expiry, idempotence, paging, lifting and permissions.

use serde_json::{Value, json};

use crate::helpers::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

async fn setup() -> (Idp, TestApp, Signer) {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let policy = "leeway_seconds = 30\nmax_lifetime_seconds = 3600";
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, policy), "")).await;
    (idp, app, key)
}

impl TestApp {
    pub async fn revoke_as(&self, auth: Option<(&str, &str)>, token: &str) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/revoke", self.base))
            .form(&[("token", token)]);
        if let Some((id, secret)) = auth {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    pub async fn admin_post(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/admin/revocations", self.base))
            .basic_auth("ops", Some(OPS_SECRET))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Lifts a revocation entry as the admin; returns the HTTP status.
    pub async fn admin_lift(&self, id: &str) -> u16 {
        self.http
            .delete(format!("{}/admin/revocations/{id}", self.base))
            .basic_auth("ops", Some(OPS_SECRET))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn admin_list(&self, query: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/admin/revocations{query}", self.base))
            .basic_auth("ops", Some(OPS_SECRET))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

#[tokio::test]
async fn rfc7009_revoke_makes_a_token_inactive() {
    let (_idp, app, key) = setup().await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    let other = key.sign(Algorithm::ES256, &claims(ISS));
    assert!(app.is_active(&token).await);
    let response = app
        .revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert_eq!(response.status(), 200);
    assert!(!app.is_active(&token).await);
    assert!(
        app.is_active(&other).await,
        "another token of the same subject stays active"
    );
    // forward-auth agrees
    assert_eq!(
        app.forward_auth(Some(&format!("Bearer {token}")))
            .await
            .status(),
        401
    );
    // 200 also for garbage and for a token already revoked
    assert_eq!(
        app.revoke_as(Some(("revoker", REVOKER_SECRET)), "garbage")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
            .await
            .status(),
        200
    );
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tokend_revocations_total{kind=\"jti\"}")),
        "revocations are counted"
    );
}

#[tokio::test]
async fn revoke_needs_the_revoke_permission_and_a_token() {
    let (_idp, app, key) = setup().await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert_eq!(app.revoke_as(None, &token).await.status(), 401);
    assert_eq!(
        app.revoke_as(Some(("revoker", "nope")), &token)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.revoke_as(Some(("gateway", GATEWAY_SECRET)), &token)
            .await
            .status(),
        403
    );
    assert!(
        app.is_active(&token).await,
        "refused revocations store nothing"
    );
    let response = app.revoke_as(Some(("revoker", REVOKER_SECRET)), "").await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn a_forged_token_cannot_revoke_the_real_one() {
    let (_idp, app, key) = setup().await;
    let real_claims = claims(ISS);
    let real = key.sign(Algorithm::ES256, &real_claims);
    let attacker = Signer::generate(Algorithm::ES256, "k1");
    let forged = attacker.sign(Algorithm::ES256, &real_claims); // same iss, jti, kid; wrong key
    assert_eq!(
        app.revoke_as(Some(("revoker", REVOKER_SECRET)), &forged)
            .await
            .status(),
        200
    );
    assert!(
        app.is_active(&real).await,
        "the forged token revoked the real one"
    );
    assert_eq!(app.admin_list("").await["entries"], json!([]));
}

#[tokio::test]
async fn tokens_without_jti_are_revoked_by_their_signing_input() {
    let (_idp, app, key) = setup().await;
    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("jti");
    let token = key.sign(Algorithm::ES256, &c);
    c["nonce"] = json!("different");
    let sibling = key.sign(Algorithm::ES256, &c);
    app.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    assert!(!app.is_active(&token).await);
    assert!(app.is_active(&sibling).await);
    let entries = app.admin_list("").await;
    assert!(
        entries["entries"][0]["jti"]
            .as_str()
            .unwrap()
            .starts_with("jws-sha256:")
    );
}

#[tokio::test]
async fn admin_revokes_by_token_jti_subject_and_issuer() {
    let (_idp, app, key) = setup().await;
    let t = now();
    let base = claims(ISS);
    let by_token = key.sign(Algorithm::ES256, &base);
    let by_jti = key.sign(
        Algorithm::ES256,
        &with(base.clone(), json!({"jti": "jti-42"})),
    );
    let bob_old = key.sign(
        Algorithm::ES256,
        &with(
            base.clone(),
            json!({"sub": "bob", "iat": t - 100, "jti": "b1"}),
        ),
    );
    let bob_no_iat = {
        let mut c = with(base.clone(), json!({"sub": "bob", "jti": "b2"}));
        c.as_object_mut().unwrap().remove("iat");
        key.sign(Algorithm::ES256, &c)
    };
    let bob_new = key.sign(
        Algorithm::ES256,
        &with(base.clone(), json!({"sub": "bob", "iat": t, "jti": "b3"})),
    );
    let carol_old = key.sign(
        Algorithm::ES256,
        &with(
            base.clone(),
            json!({"sub": "carol", "iat": t - 500, "jti": "c1"}),
        ),
    );
    let carol_new = key.sign(
        Algorithm::ES256,
        &with(
            base.clone(),
            json!({"sub": "carol", "iat": t - 50, "jti": "c2"}),
        ),
    );
    for token in [
        &by_token,
        &by_jti,
        &bob_old,
        &bob_no_iat,
        &bob_new,
        &carol_old,
        &carol_new,
    ] {
        assert!(app.is_active(token).await);
    }

    let r = app.admin_post(json!({"token": by_token})).await;
    assert_eq!(r.status(), 201);
    let entry: Value = r.json().await.unwrap();
    assert_eq!(entry["kind"], "jti");
    assert_eq!(entry["iss"], ISS);
    assert_eq!(entry["jti"], base["jti"]);
    assert_eq!(entry["created_by"], "ops");
    assert_eq!(
        entry["expires_at"],
        json!(base["exp"].as_u64().unwrap() + 30)
    );
    assert!(!app.is_active(&by_token).await);

    let r = app
        .admin_post(json!({"jti": "jti-42", "iss": ISS, "exp": t + 300}))
        .await;
    assert_eq!(r.status(), 201);
    assert!(!app.is_active(&by_jti).await);

    let r = app
        .admin_post(json!({"sub": "bob", "iss": ISS, "before": t - 10}))
        .await;
    assert_eq!(r.status(), 201);
    let entry: Value = r.json().await.unwrap();
    assert_eq!(entry["kind"], "subject");
    assert_eq!(entry["sub"], "bob");
    assert_eq!(entry["before"], t - 10);
    assert_eq!(
        entry["expires_at"],
        json!(t - 10 + 3600 + 30),
        "before + max lifetime + leeway"
    );
    assert!(!app.is_active(&bob_old).await, "issued before");
    assert!(
        !app.is_active(&bob_no_iat).await,
        "no iat counts as covered"
    );
    assert!(app.is_active(&bob_new).await, "issued after");
    assert!(app.is_active(&carol_old).await, "another subject");

    let r = app.admin_post(json!({"iss": ISS, "before": t - 200})).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "issuer");
    assert!(!app.is_active(&carol_old).await);
    assert!(app.is_active(&carol_new).await);

    // subject without before: everything issued up to now
    let r = app.admin_post(json!({"sub": "carol", "iss": ISS})).await;
    assert_eq!(r.status(), 201);
    assert!(!app.is_active(&carol_new).await);

    let metrics = app.metrics().await;
    for kind in ["jti", "subject", "issuer"] {
        assert!(
            metrics.contains(&format!("tokend_revocations_total{{kind=\"{kind}\"}}")),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn admin_rejects_what_it_cannot_store() {
    let (_idp, app, key) = setup().await;
    let t = now();
    let expired = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"exp": t - 100, "iat": t - 200})),
    );
    let forged = Signer::generate(Algorithm::ES256, "k1").sign(Algorithm::ES256, &claims(ISS));
    for (what, body) in [
        ("future before", json!({"iss": ISS, "before": t + 3600})),
        (
            "unknown issuer",
            json!({"sub": "a", "iss": "https://nobody.test"}),
        ),
        ("issuer without before", json!({"iss": ISS})),
        ("jti without exp", json!({"jti": "x", "iss": ISS})),
        (
            "two kinds",
            json!({"jti": "x", "sub": "y", "iss": ISS, "exp": t}),
        ),
        (
            "unknown member",
            json!({"sub": "a", "iss": ISS, "reason": "x"}),
        ),
        ("empty", json!({})),
        ("expired token", json!({"token": expired})),
        ("forged token", json!({"token": forged})),
    ] {
        let r = app.admin_post(body).await;
        assert_eq!(r.status(), 400, "{what}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_request",
            "{what}"
        );
    }
    let r = app
        .http
        .post(format!("{}/admin/revocations", app.base))
        .basic_auth("ops", Some(OPS_SECRET))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        app.admin_list("").await["entries"],
        json!([]),
        "nothing was stored"
    );
}

#[tokio::test]
async fn reposting_is_idempotent_and_ids_are_deterministic() {
    let (_idp, app, _key) = setup().await;
    let t = now();
    let body = json!({"sub": "dave", "iss": ISS, "before": t - 5});
    let first: Value = app.admin_post(body.clone()).await.json().await.unwrap();
    let second = app.admin_post(body).await;
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(
        first["created_at"], second["created_at"],
        "the stored entry, unchanged"
    );
    assert_eq!(
        app.admin_list("").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The id is a function of the entry: a second tokend computes the same one.
    assert_eq!(
        first["id"],
        json!(tokend::revocation::Entry::subject(ISS, "dave", t - 5).id)
    );
    let count = app
        .metric("tokend_revocations_total{kind=\"subject\"}")
        .await;
    assert!(count >= 1.0, "{count}");
}

#[tokio::test]
async fn listing_pages_and_lifting() {
    let (_idp, app, key) = setup().await;
    let t = now();
    let token = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"sub": "erin", "iat": t - 100})),
    );
    for i in 0..5 {
        let r = app
            .admin_post(json!({"jti": format!("j{i}"), "iss": ISS, "exp": t + 60}))
            .await;
        assert_eq!(r.status(), 201);
    }
    let erin: Value = app
        .admin_post(json!({"sub": "erin", "iss": ISS}))
        .await
        .json()
        .await
        .unwrap();
    assert!(!app.is_active(&token).await);

    let mut seen = Vec::new();
    let mut query = "?limit=2".to_string();
    loop {
        let page = app.admin_list(&query).await;
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        seen.extend(entries.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ordered, no repeats");

    let delete = |id: String, who: (&'static str, &'static str)| {
        app.http
            .delete(format!("{}/admin/revocations/{id}", app.base))
            .basic_auth(who.0, Some(who.1))
            .send()
    };
    let id = erin["id"].as_str().unwrap().to_owned();
    assert_eq!(
        delete(id.clone(), ("revoker", REVOKER_SECRET))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        delete(id.clone(), ("ops", OPS_SECRET))
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(app.is_active(&token).await, "lifted");
    assert_eq!(delete(id, ("ops", OPS_SECRET)).await.unwrap().status(), 404);
    assert_eq!(
        app.admin_list("").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn admin_revocation_api_needs_admin() {
    let (_idp, app, _key) = setup().await;
    for (id, secret, status) in [
        ("revoker", REVOKER_SECRET, 403),
        ("gateway", GATEWAY_SECRET, 403),
        ("ops", "bad", 401),
    ] {
        let post = app
            .http
            .post(format!("{}/admin/revocations", app.base))
            .basic_auth(id, Some(secret))
            .json(&json!({"iss": ISS, "before": now()}))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), status, "{id}");
        let get = app
            .http
            .get(format!("{}/admin/revocations", app.base))
            .basic_auth(id, Some(secret))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), status, "{id}");
    }
}

#[tokio::test]
async fn entries_expire_with_what_they_cover() {
    let (_idp, app, key) = setup().await;
    let t = now();
    let token = key.sign(Algorithm::ES256, &with(claims(ISS), json!({"exp": t + 60})));
    app.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    let revocations = &app.app.state.revocations;
    assert_eq!(revocations.local_copy().len(), 1);
    // Past exp + leeway the token is expired anyway, and the entry may go.
    app.set_now(t + 60 + 30);
    assert!(!app.is_active(&token).await);
    revocations.sweep(t + 60 + 30).await;
    assert_eq!(revocations.local_copy().len(), 0);
    assert_eq!(app.admin_list("").await["entries"], json!([]));
}

/// The memory backend honours `bulk_entry_ttl_seconds` as the README says.
#[tokio::test]
async fn the_memory_backend_keeps_bulk_entries_for_the_configured_ttl() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let uncapped = "max_lifetime_seconds = 0";
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, uncapped),
        "[revocation]\nbulk_entry_ttl_seconds = 100",
    ))
    .await;
    let t = now();
    app.set_now(t);
    let stored = app.admin_post(json!({"sub": "alice", "iss": ISS})).await;
    assert_eq!(stored.status(), 201);
    let entry: Value = stored.json().await.unwrap();
    assert_eq!(entry["expires_at"], json!(t + 100));
    let token = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"iat": t - 10, "exp": t + 300})),
    );
    app.set_now(t + 99);
    assert!(
        !app.is_active(&token).await,
        "covered while the entry lives"
    );
    app.set_now(t + 101);
    assert!(
        app.is_active(&token).await,
        "the entry lapsed after its TTL"
    );
}

#[tokio::test]
async fn admin_requests_are_counted_by_their_answer() {
    let (_idp, app, _key) = setup().await;
    // The recorder is process-wide and tests run side by side: compare counts.
    let count = |metrics: &str, result: &str| -> u64 {
        let series = format!(r#"tokend_requests_total{{api="admin",result="{result}"}} "#);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    let before = app.metrics().await;
    app.admin_list("").await;
    let anonymous = app
        .http
        .get(format!("{}/admin/revocations", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let as_revoker = app
        .http
        .get(format!("{}/admin/issuers", app.base))
        .basic_auth("revoker", Some(REVOKER_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(as_revoker.status(), 403);
    let after = app.metrics().await;
    for result in ["ok", "invalid_client", "forbidden"] {
        assert!(
            count(&after, result) > count(&before, result),
            "admin {result} not counted:\n{after}"
        );
    }
}

/// The `session` kind: every token of one `sid` at an issuer, issued at or
/// before the entry's time — and no other session of the same subject.
#[tokio::test]
async fn a_session_entry_revokes_that_sessions_tokens_only() {
    let (_idp, app, key) = setup().await;
    let t = now();
    let in_session = |sid: &str, iat: u64| {
        key.sign(
            Algorithm::ES256,
            &json!({"iss": ISS, "sub": "carol", "sid": sid, "iat": iat, "exp": t + 300, "jti": format!("j-{}", rand::random::<u64>())}),
        )
    };
    let first = in_session("sess-1", t - 10);
    let again = in_session("sess-1", t - 5);
    let other = in_session("sess-2", t - 10);
    // Cached before the entry: a cache hit must still check the session.
    for token in [&first, &again, &other] {
        assert!(app.is_active(token).await);
    }
    let response = app.admin_post(json!({"sid": "sess-1", "iss": ISS})).await;
    assert_eq!(response.status(), 201);
    let entry: Value = response.json().await.unwrap();
    assert_eq!(entry["kind"], "session");
    assert_eq!(entry["sid"], "sess-1");
    assert!(entry["id"].as_str().unwrap().starts_with("sid_"));
    assert!(!app.is_active(&first).await);
    assert!(!app.is_active(&again).await);
    assert_eq!(
        app.forward_auth(Some(&format!("Bearer {first}")))
            .await
            .status(),
        401,
        "forward-auth agrees"
    );
    assert!(
        app.is_active(&other).await,
        "another session of the same subject"
    );
    // A token of the session issued after the entry's time (now + leeway) is not covered.
    app.set_now(t + 45);
    let later = in_session("sess-1", t + 40);
    assert!(app.is_active(&later).await);
    // A sid that is not a string is a malformed token, not a way around the entry.
    let numeric = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "carol", "sid": 1, "iat": t, "exp": t + 300}),
    );
    assert!(!app.is_active(&numeric).await);
    // Listed, counted, lifted.
    let listed = app.admin_list("").await;
    assert!(
        listed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == "sess-1")
    );
    assert!(
        app.metrics()
            .await
            .lines()
            .any(|l| l.starts_with("tokend_revocations_total{kind=\"session\"}")),
    );
    assert_eq!(app.admin_lift(entry["id"].as_str().unwrap()).await, 204);
    assert!(app.is_active(&first).await);
    // The admin API's shapes: empty sid, sid with sub, sid without iss.
    for bad in [
        json!({"sid": "", "iss": ISS}),
        json!({"sid": "s", "sub": "carol", "iss": ISS}),
        json!({"sid": "s"}),
        json!({"sid": "s", "iss": "https://unknown"}),
    ] {
        assert_eq!(app.admin_post(bad.clone()).await.status(), 400, "{bad}");
    }
}

//! The verified-token cache through the API: a hit answers like a full
//! verification, and still honours expiry, revocation and key rotation.

use serde_json::json;

use crate::helpers::*;
use tokend::mint::jwks;
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

#[tokio::test]
async fn cached_tokens_still_expire_get_revoked_and_lose_their_key() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, "leeway_seconds = 30"),
        "",
    ))
    .await;
    let runtime = app.app.state.runtime();
    let cache = runtime.verifier.cache().expect("cache on by default");
    let t = now();
    let token = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "alice", "iat": t, "exp": t + 60, "jti": "c1"}),
    );
    let first = app.introspect(&token).await;
    assert_eq!(cache.len(), 1);
    assert_eq!(
        app.introspect(&token).await,
        first,
        "a hit answers exactly like a full verification"
    );

    app.set_now(t + 89);
    assert!(app.is_active(&token).await);
    app.set_now(t + 90);
    assert!(
        !app.is_active(&token).await,
        "expired (exp + leeway) though cached"
    );
    app.set_now(t);

    let revoked = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "bob", "iat": t, "exp": t + 60, "jti": "c2"}),
    );
    assert!(app.is_active(&revoked).await);
    app.revoke_as(Some(("revoker", REVOKER_SECRET)), &revoked)
        .await;
    assert!(
        !app.is_active(&revoked).await,
        "revoked after it was cached"
    );
    let bob = key.sign(
        Algorithm::ES256,
        &json!({"iss": ISS, "sub": "bob", "iat": t - 5, "exp": t + 60, "jti": "c3"}),
    );
    assert!(app.is_active(&bob).await);
    assert_eq!(
        app.admin_post(json!({"sub": "bob", "iss": ISS}))
            .await
            .status(),
        201
    );
    assert!(
        !app.is_active(&bob).await,
        "subject revocation reaches cached tokens"
    );

    // The IdP retires the key: cached tokens signed with it stop being active.
    let next = signer(Algorithm::ES256, "k2");
    idp.set_jwks(jwks(&[&next]));
    app.app
        .state
        .runtime()
        .issuer_by_name("main")
        .unwrap()
        .refresh_now()
        .await
        .unwrap();
    assert!(!app.is_active(&token).await, "its key left the set");
}

#[tokio::test]
async fn the_cache_is_bounded_and_can_be_switched_off() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let issuer = jwks_issuer("main", ISS, &idp, "");
    let app = spawn_ready(config_with(&issuer, "[cache]\nmax_entries = 5\n")).await;
    for _ in 0..20 {
        assert!(
            app.is_active(&key.sign(Algorithm::ES256, &claims(ISS)))
                .await
        );
    }
    assert_eq!(app.app.state.runtime().verifier.cache().unwrap().len(), 5);

    let off = spawn_ready(config_with(&issuer, "[cache]\nenabled = false\n")).await;
    assert!(off.app.state.runtime().verifier.cache().is_none());
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert!(off.is_active(&token).await && off.is_active(&token).await);
}

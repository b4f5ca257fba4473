//! Google: ID tokens, Firebase Authentication, Identity-Aware Proxy.

use serde_json::{Value, json};

use super::fixtures::google_jwks;
use super::*;
use crate::helpers::*;
use tokend::mint::Signer;
use tokend::token::Algorithm;

/// Google ID tokens as "Validating an ID token" describes them
/// (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken):
/// `iss` is `https://accounts.google.com` or `accounts.google.com`.
fn google_id(iss: &str) -> Value {
    let t = now();
    json!({
        "iss": iss, "azp": "1234987819200.apps.googleusercontent.com",
        "aud": "1234987819200.apps.googleusercontent.com", "sub": "10769150350006150715113082367",
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "hd": "example.com", "email": "jsmith@example.com",
        "email_verified": true, "iat": t, "exp": t + 3600,
        "jti": format!("jti-{}", rand::random::<u64>())
    })
}

/// Both spellings pass, and a revocation given under either covers tokens
/// of both: entries are kept under the configured issuer. (Kept under the
/// token's spelling, a subject revoked as `https://accounts.google.com`
/// would stay active in tokens spelling `accounts.google.com`.)
#[tokio::test]
async fn google_accepts_both_spellings_and_a_revocation_covers_both() {
    let key = signer(Algorithm::RS256, "google-1");
    let idp = Idp::start(google_jwks(&[&key])).await;
    let issuer = format!(
        "[[issuers]]\nname = \"google\"\nissuer = \"https://accounts.google.com\"\nprovider = \"google\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\n\
         audiences = [\"1234987819200.apps.googleusercontent.com\"]\n",
        idp.jwks_uri()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let long = key.sign(Algorithm::RS256, &google_id("https://accounts.google.com"));
    let short = key.sign(Algorithm::RS256, &google_id("accounts.google.com"));
    assert!(app.is_active(&long).await);
    assert!(app.is_active(&short).await);
    let lookalike = key.sign(
        Algorithm::RS256,
        &google_id("https://accounts.google.com.evil"),
    );
    assert_eq!(reason(&app, &lookalike).await, "unknown_issuer");

    let revoked = app
        .admin_post(json!({"sub": "10769150350006150715113082367", "iss": "accounts.google.com"}))
        .await;
    assert_eq!(revoked.status(), 201);
    assert!(!app.is_active(&short).await);
    assert!(
        !app.is_active(&long).await,
        "revoked under the other spelling"
    );

    // RFC 7009 revocation of one token spelled the short way: by its jti,
    // under the configured issuer.
    let one = key.sign(
        Algorithm::RS256,
        &with(google_id("accounts.google.com"), json!({"sub": "bob"})),
    );
    assert!(app.is_active(&one).await);
    assert_eq!(
        app.revoke_as(Some(("revoker", REVOKER_SECRET)), &one)
            .await
            .status(),
        200
    );
    assert!(!app.is_active(&one).await);
}

const FIREBASE_ISS: &str = "https://securetoken.google.com/my-project";

/// A self-signed certificate of `key`, valid from `from` to `until` (years),
/// as Google's X.509 map holds them.
fn certificate(key: &Signer, from: i32, until: i32) -> String {
    certificate_with(key, |params| {
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
    })
}

/// A certificate of `key` whose validity ends at `not_after` (Unix seconds).
fn certificate_until(key: &Signer, not_after: u64) -> String {
    certificate_with(key, |params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after =
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(not_after);
    })
}

fn certificate_with(key: &Signer, dates: impl FnOnce(&mut rcgen::CertificateParams)) -> String {
    let pair = rcgen::KeyPair::try_from(key.private_der().as_slice()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    dates(&mut params);
    params.self_signed(&pair).unwrap().pem()
}

/// A Firebase ID token's claims, as "Verify ID tokens using a third-party
/// JWT library" lists them
/// (https://firebase.google.com/docs/auth/admin/verify-id-tokens#verify_id_tokens_using_a_third-party_jwt_library).
fn firebase_id(changes: Value) -> Value {
    let t = now();
    with(
        json!({
            "iss": FIREBASE_ISS, "aud": "my-project", "auth_time": t - 60, "user_id": "u1",
            "sub": "u1", "iat": t, "exp": t + 3600, "email": "alice@example.com",
            "email_verified": true,
            "firebase": {"identities": {"email": ["alice@example.com"]}, "sign_in_provider": "password"}
        }),
        changes,
    )
}

#[tokio::test]
async fn firebase_keys_come_from_the_x509_map_and_auth_time_is_checked() {
    let (current, expired) = (
        signer(Algorithm::RS256, "current"),
        signer(Algorithm::RS256, "expired"),
    );
    // The map Google serves: kid → PEM certificate; one certificate is past its dates.
    let map = json!({
        "current": certificate(&current, 2020, 2090),
        "expired": certificate(&expired, 2019, 2020),
    });
    let idp = Idp::start(map).await;
    let defaults = tokend::config::Config::from_toml(
        &format!("[[issuers]]\nname = \"firebase\"\nprovider = \"firebase\"\nissuer = \"{FIREBASE_ISS}\"\n"),
        Vec::new(),
    )
    .unwrap();
    let preset = &defaults.issuers[0];
    assert_eq!(preset.audiences, vec!["my-project".to_owned()]);
    assert_eq!(
        preset.jwks_uri.as_deref(),
        Some(
            "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
        )
    );
    assert_eq!(
        preset.keys_format,
        Some(tokend::config::KeysFormat::X509Map)
    );

    let issuer = format!(
        "[[issuers]]\nname = \"firebase\"\nprovider = \"firebase\"\nissuer = \"{FIREBASE_ISS}\"\n\
         jwks_uri = \"{}\"\nkeys_format = \"x509_map\"\nallow_insecure_http = true\n",
        idp.jwks_uri()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let sign = |key: &Signer, claims: Value| key.sign(Algorithm::RS256, &claims);
    let good = sign(&current, firebase_id(json!({})));
    assert!(app.is_active(&good).await, "{}", app.explain(&good).await);
    let later = sign(&current, firebase_id(json!({"auth_time": now() + 600})));
    assert_eq!(reason(&app, &later).await, "auth_time_in_future");
    let no_auth_time = sign(&current, firebase_id(json!({"auth_time": null})));
    assert_eq!(reason(&app, &no_auth_time).await, "missing_required_claim");
    let mut without = firebase_id(json!({}));
    without.as_object_mut().unwrap().remove("auth_time");
    assert_eq!(
        reason(&app, &sign(&current, without)).await,
        "missing_required_claim"
    );
    let other_project = sign(&current, firebase_id(json!({"aud": "their-project"})));
    assert_eq!(reason(&app, &other_project).await, "audience_mismatch");
    // A certificate past its validity is not a key, whatever it signed.
    let by_expired = sign(&expired, firebase_id(json!({})));
    assert_eq!(reason(&app, &by_expired).await, "unknown_kid");
}

/// A certificate that expires while tokend runs stops being a key then, not
/// at the next scheduled refresh (the map is served with a max-age of hours,
/// as Google serves it): the refresher loads again just after the first
/// kept certificate's notAfter, and a cached verdict goes with its key. When
/// that load fails, the expired key leaves all the same; the others stay.
#[tokio::test]
async fn firebase_certificates_stop_being_keys_when_they_expire() {
    let (first, second, lasting) = (
        signer(Algorithm::RS256, "first"),
        signer(Algorithm::RS256, "second"),
        signer(Algorithm::RS256, "lasting"),
    );
    let start = now();
    let map = json!({
        "first": certificate_until(&first, start + 2),
        "second": certificate_until(&second, start + 4),
        "lasting": certificate(&lasting, 2020, 2090),
    });
    let idp = Idp::start(map).await;
    *idp.state.max_age.lock().unwrap() = Some(19_000);
    let issuer = format!(
        "[[issuers]]\nname = \"firebase\"\nprovider = \"firebase\"\nissuer = \"{FIREBASE_ISS}\"\n\
         jwks_uri = \"{}\"\nkeys_format = \"x509_map\"\nallow_insecure_http = true\n",
        idp.jwks_uri()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let [by_first, by_second, by_lasting] =
        [&first, &second, &lasting].map(|key| key.sign(Algorithm::RS256, &firebase_id(json!({}))));
    for token in [&by_first, &by_second, &by_lasting] {
        assert!(app.is_active(token).await, "{}", app.explain(token).await);
    }
    let limit = std::time::Duration::from_secs(8);
    until_inactive(&app, &by_first, limit).await;
    assert!(now() > start + 2, "inactive before its certificate expired");
    assert_eq!(reason(&app, &by_first).await, "unknown_kid");
    assert!(app.is_active(&by_second).await);

    // The map's server fails before the second certificate expires.
    idp.set_status(503);
    until_inactive(&app, &by_second, limit).await;
    assert!(now() > start + 4, "inactive before its certificate expired");
    assert!(app.is_active(&by_lasting).await, "the other keys stay");
    let status = app.app.state.runtime().issuers[0].status();
    assert!(status.last_error.is_some(), "{status:?}");
}

/// `check-config` shows what the Firebase preset filled in.
#[test]
fn check_config_prints_the_effective_firebase_issuer() {
    let stdout = check_config_stdout(&format!(
        "[[issuers]]\nname = \"firebase\"\nprovider = \"firebase\"\nissuer = \"{FIREBASE_ISS}\"\n"
    ));
    for want in [
        "issuers[0] (firebase): provider firebase: issuer = \"https://securetoken.google.com/my-project\"",
        "audiences = [\"my-project\"]",
        "required_claims = [\"exp\", \"auth_time\"]",
        "auth_time_not_in_future = true",
        "keys = X509MapUri(\"https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com\")",
        "padded_base64 = false",
        "token_header = none",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
}

/// IAP's signed header, as "Securing your app with signed headers" shows it
/// (https://cloud.google.com/iap/docs/signed-headers-howto): ES256 with a
/// `kid`, `iss = https://cloud.google.com/iap`, `aud` the backend service.
fn iap_assertion(key: &Signer, aud: &str) -> String {
    let t = now();
    let claims = json!({
        "iss": "https://cloud.google.com/iap", "aud": aud,
        "sub": "accounts.google.com:10769150350006150715113082367",
        "email": "alice@example.com", "hd": "example.com",
        "google": {"access_levels": []}, "iat": t, "exp": t + 600
    });
    key.sign_with_header(
        Algorithm::ES256,
        &json!({"alg": "ES256", "kid": key_id(key)}),
        &claims,
    )
}

fn key_id(key: &Signer) -> String {
    key.public_jwk()["kid"].as_str().unwrap().to_owned()
}

const IAP_AUD: &str = "/projects/123456789/global/backendServices/987654321";

#[tokio::test]
async fn iap_assertions_pass_from_their_header_for_their_backend_only() {
    let key = signer(Algorithm::ES256, "iap-1");
    let rs = signer(Algorithm::RS256, "iap-rs");
    let idp = Idp::start(google_jwks(&[&key, &rs])).await;
    let issuer = format!(
        "[[issuers]]\nname = \"iap\"\nprovider = \"iap\"\nissuer = \"https://cloud.google.com/iap\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\naudiences = [\"{IAP_AUD}\"]\n",
        idp.jwks_uri()
    );
    let edge = "[authorization]\ntoken_sources = [\"header:x-goog-iap-jwt-assertion\"]\n";
    let app = spawn_ready(config_with(&issuer, edge)).await;
    let header = "x-goog-iap-jwt-assertion";
    assert_eq!(
        auth_with_header(&app, header, &iap_assertion(&key, IAP_AUD), "/").await,
        200
    );
    let other_backend = iap_assertion(&key, "/projects/123456789/global/backendServices/1");
    assert_eq!(
        auth_with_header(&app, header, &other_backend, "/").await,
        401
    );
    // The preset's ES256 allowlist: an RS256 token of a published key is refused.
    let t = now();
    let rs_token = rs.sign(
        Algorithm::RS256,
        &json!({"iss": "https://cloud.google.com/iap", "aud": IAP_AUD, "sub": "x", "iat": t, "exp": t + 600}),
    );
    assert_eq!(reason(&app, &rs_token).await, "alg_not_allowed");
}

/// With `token_sources` unset, the IAP preset reads IAP's header; as the
/// default sources document, `Authorization` is looked at first, so a
/// configuration gaining the preset judges the credential it judged before.
#[tokio::test]
async fn iap_assertions_are_read_from_their_header_when_token_sources_is_unset() {
    let key = signer(Algorithm::ES256, "iap-1");
    let idp = Idp::start(google_jwks(&[&key])).await;
    let issuer = format!(
        "[[issuers]]\nname = \"iap\"\nprovider = \"iap\"\nissuer = \"https://cloud.google.com/iap\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\naudiences = [\"{IAP_AUD}\"]\n",
        idp.jwks_uri()
    );
    let config = config_with(&issuer, "");
    assert_eq!(
        config.authorization.sources,
        [
            tokend::config::TokenSourceSpec::Header("authorization".into()),
            tokend::config::TokenSourceSpec::Header("x-goog-iap-jwt-assertion".into()),
        ]
    );
    let app = spawn_ready(config).await;
    let iap = "x-goog-iap-jwt-assertion";
    let good = iap_assertion(&key, IAP_AUD);
    let other_backend = iap_assertion(&key, "/projects/123456789/global/backendServices/1");
    assert_eq!(auth_with_headers(&app, &[(iap, &good)], "/").await, 200);
    assert_eq!(
        auth_with_headers(&app, &[(iap, &other_backend)], "/").await,
        401
    );
    assert_eq!(auth_with_headers(&app, &[], "/").await, 401);
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        auth_with_headers(&app, &[("authorization", &bearer(&good))], "/").await,
        200
    );
    // Both present: Authorization is the one judged.
    assert_eq!(
        auth_with_headers(
            &app,
            &[("authorization", &bearer(&other_backend)), (iap, &good)],
            "/"
        )
        .await,
        401
    );
    assert_eq!(
        auth_with_headers(
            &app,
            &[("authorization", &bearer(&good)), (iap, &other_backend)],
            "/"
        )
        .await,
        200
    );
}

/// The preset's keys are Google's published IAP key set, and its header
/// is shown, in `check-config`.
#[test]
fn check_config_prints_the_iap_keys_url_and_header() {
    let stdout = check_config_stdout(&format!(
        "[[issuers]]\nname = \"iap\"\nprovider = \"iap\"\nissuer = \"https://cloud.google.com/iap\"\n\
         audiences = [\"{IAP_AUD}\"]\n"
    ));
    for want in [
        "token sources: header:authorization, header:x-goog-iap-jwt-assertion",
        "issuers[0] (iap): provider iap: issuer = \"https://cloud.google.com/iap\"",
        "keys = JwksUri(\"https://www.gstatic.com/iap/verify/public_key-jwk\")",
        "algorithms = [\"ES256\"]",
        "token_header = \"x-goog-iap-jwt-assertion\"",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
}

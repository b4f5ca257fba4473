//! Cloud identity providers (issue 12, first presets): Amazon Cognito and
//! Google, with tokens shaped as their documentation shows them, and the
//! attacks each preset exists to stop.

use serde_json::{Value, json};

use crate::helpers::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

/// A user pool's issuer, as Cognito spells it
/// (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html).
const COGNITO_ISS: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example";
const APP_CLIENT: &str = "1example23456789";

/// A Cognito access token's claims, member for member as in "Understanding
/// the access token"
/// (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html):
/// no `aud`; the app client is `client_id`; `token_use` is `access`.
fn cognito_access(client_id: &str) -> Value {
    let t = now();
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-example", "cognito:groups": ["admin"],
        "iss": COGNITO_ISS, "version": 2, "client_id": client_id,
        "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "event_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "token_use": "access",
        "scope": "aws.cognito.signin.user.admin phone openid profile email",
        "auth_time": t, "exp": t + 3600, "iat": t,
        "jti": format!("jti-{}", rand::random::<u64>()), "username": "alice"
    })
}

/// The same user's ID token ("Understanding the identity (ID) token"):
/// `aud` is the app client, `token_use` is `id`.
fn cognito_id(client_id: &str) -> Value {
    let t = now();
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-example", "aud": client_id,
        "email_verified": true, "token_use": "id", "auth_time": t, "iss": COGNITO_ISS,
        "cognito:username": "alice", "exp": t + 3600, "iat": t,
        "jti": format!("jti-{}", rand::random::<u64>()), "email": "alice@example.com"
    })
}

/// Cognito signs with RS256 and a `kid`, no `typ`.
fn cognito_sign(key: &Signer, claims: &Value) -> String {
    key.sign_with_header(
        Algorithm::RS256,
        &json!({"kid": "cognito-1", "alg": "RS256"}),
        claims,
    )
}

fn cognito_issuer(idp: &Idp, extra: &str) -> String {
    format!(
        "[[issuers]]\nname = \"cognito\"\nissuer = \"{COGNITO_ISS}\"\nprovider = \"cognito\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\naudiences = [\"{APP_CLIENT}\"]\n{extra}",
        idp.jwks_uri()
    )
}

async fn reason(app: &TestApp, token: &str) -> String {
    app.explain(token).await["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn cognito_access_tokens_pass_on_client_id_and_id_tokens_are_refused() {
    let key = signer(Algorithm::RS256, "cognito-1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&cognito_issuer(&idp, ""), "")).await;

    let access = cognito_sign(&key, &cognito_access(APP_CLIENT));
    assert!(
        app.is_active(&access).await,
        "{}",
        app.explain(&access).await
    );
    // An ID token of the same pool and client, where access tokens are required.
    let id = cognito_sign(&key, &cognito_id(APP_CLIENT));
    assert!(!app.is_active(&id).await);
    assert_eq!(reason(&app, &id).await, "audience_mismatch", "no client_id");
    let mut id_with_client = cognito_id(APP_CLIENT);
    id_with_client["client_id"] = json!(APP_CLIENT);
    let id_with_client = cognito_sign(&key, &id_with_client);
    assert_eq!(reason(&app, &id_with_client).await, "claim_value_mismatch");
    // Another app client of the same pool.
    let other = cognito_sign(&key, &cognito_access("other-client"));
    assert_eq!(reason(&app, &other).await, "audience_mismatch");
    // An access token that names the client only in `aud`.
    let mut aud_only = cognito_access("x");
    aud_only["aud"] = json!(APP_CLIENT);
    let aud_only = cognito_sign(&key, &aud_only);
    assert_eq!(reason(&app, &aud_only).await, "audience_mismatch");
}

#[tokio::test]
async fn a_cognito_issuer_for_id_tokens_checks_aud() {
    let key = signer(Algorithm::RS256, "cognito-1");
    let idp = Idp::start(jwks(&[&key])).await;
    let issuer = cognito_issuer(&idp, "cognito_token_use = \"id\"\n");
    let app = spawn_ready(config_with(&issuer, "")).await;
    assert!(
        app.is_active(&cognito_sign(&key, &cognito_id(APP_CLIENT)))
            .await
    );
    let access = cognito_sign(&key, &cognito_access(APP_CLIENT));
    assert!(
        !app.is_active(&access).await,
        "an access token where ID tokens are asked for"
    );
}

/// `check-config` shows what the preset filled in.
#[tokio::test]
async fn check_config_prints_the_effective_issuer() {
    let idp = Idp::start(jwks(&[])).await;
    let dir = std::env::temp_dir().join(format!("tokend-providers-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokend.toml");
    std::fs::write(&file, cognito_issuer(&idp, "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokend"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "issuers[0] (cognito): provider cognito: issuer = \"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example\""
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("audience_claims = [\"client_id\"]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("required_claim_values = {\"token_use\": \"access\"}"),
        "{stdout}"
    );
}

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
    let idp = Idp::start(jwks(&[&key])).await;
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

#[test]
fn presets_refuse_what_would_accept_every_tenant_of_the_cloud() {
    let jwks = "jwks_uri = \"https://idp.example/k\"\n";
    assert_config_errors(
        &format!(
            "[[issuers]]\nname = \"g\"\nissuer = \"https://accounts.google.com\"\nprovider = \"google\"\n{jwks}"
        ),
        &["issuers[0].audiences: provider \"google\" needs your OAuth client ids"],
    );
    assert_config_errors(
        &format!(
            "[[issuers]]\nname = \"g\"\nissuer = \"https://google.example\"\nprovider = \"google\"\naudiences = [\"x\"]\n{jwks}"
        ),
        &["issuers[0].issuer: provider \"google\" needs issuer"],
    );
    assert_config_errors(
        &format!(
            "[[issuers]]\nname = \"c\"\nissuer = \"https://cognito-idp.eu-west-1.amazonaws.com/pool/extra\"\nprovider = \"cognito\"\n{jwks}"
        ),
        &[
            "issuers[0].issuer: provider \"cognito\" needs https://cognito-idp.",
            "issuers[0].audiences: provider \"cognito\" needs your app client ids",
        ],
    );
    assert_config_errors(
        &format!(
            "[[issuers]]\nname = \"c\"\nissuer = \"https://a.example\"\ncognito_token_use = \"id\"\n{jwks}"
        ),
        &["issuers[0].cognito_token_use: only with provider = \"cognito\""],
    );
    // One spelling names one issuer.
    assert_config_errors(
        &format!(
            "[[issuers]]\nname = \"a\"\nissuer = \"https://a.example\"\nissuer_aliases = [\"https://b.example\"]\n{jwks}\
             [[issuers]]\nname = \"b\"\nissuer = \"https://b.example\"\n{jwks}"
        ),
        &["issuers[1].issuer: duplicate issuer"],
    );
    assert_config_errors(
        &format!(
            "[[issuers]]\nname = \"b\"\nissuer = \"https://b.example\"\n{jwks}\
             [[issuers]]\nname = \"a\"\nissuer = \"https://a.example\"\nissuer_aliases = [\"https://b.example\"]\n{jwks}"
        ),
        &["issuers[1].issuer_aliases[0]: \"https://b.example\" names another issuer too"],
    );
    assert_config_errors(
        &format!(
            "[[issuers]]\nname = \"a\"\nissuer = \"https://a.example\"\nprovider = \"okta\"\n{jwks}"
        ),
        &["issuers[0].provider: unknown variant"],
    );
}

const FIREBASE_ISS: &str = "https://securetoken.google.com/my-project";

/// A self-signed certificate of `key`, valid from `from` to `until` (years),
/// as Google's X.509 map holds them.
fn certificate(key: &Signer, from: i32, until: i32) -> String {
    let pair = rcgen::KeyPair::try_from(key.private_der().as_slice()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.not_before = rcgen::date_time_ymd(from, 1, 1);
    params.not_after = rcgen::date_time_ymd(until, 1, 1);
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

/// `/auth` as a gateway behind IAP calls it: the token in IAP's header.
async fn auth_with_header(app: &TestApp, header: &str, token: &str, uri: &str) -> u16 {
    app.http
        .get(format!("{}/auth", app.base))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-host", "app.example.com")
        .header("x-forwarded-uri", uri)
        .header(header, token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn iap_assertions_pass_from_their_header_for_their_backend_only() {
    let key = signer(Algorithm::ES256, "iap-1");
    let rs = signer(Algorithm::RS256, "iap-rs");
    let idp = Idp::start(jwks(&[&key, &rs])).await;
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

/// GitHub Actions tokens, claims as "About security hardening with OpenID
/// Connect" lists them, and routes that name the repository and environment.
#[tokio::test]
async fn github_actions_tokens_pass_routes_on_repository_and_environment() {
    let key = signer(Algorithm::RS256, "gha-1");
    let idp = Idp::start(jwks(&[&key])).await;
    let issuer = format!(
        "[[issuers]]\nname = \"github\"\nprovider = \"github-actions\"\n\
         issuer = \"https://token.actions.githubusercontent.com\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\naudiences = [\"https://github.com/octo-org\"]\n",
        idp.jwks_uri()
    );
    let routes = "[[routes]]\nname = \"deploy\"\npath_prefix = \"/deploy\"\n\
                  claims = { repository = \"octo-org/octo-repo\", environment = \"prod\" }\n";
    let app = spawn_ready(config_with(&issuer, routes)).await;
    let token = |repository: &str, environment: &str| {
        let t = now();
        key.sign(Algorithm::RS256, &json!({
            "jti": format!("jti-{}", rand::random::<u64>()),
            "sub": format!("repo:{repository}:environment:{environment}"),
            "environment": environment, "aud": "https://github.com/octo-org",
            "ref": "refs/heads/main", "sha": "example-sha", "repository": repository,
            "repository_owner": "octo-org", "actor_id": "12", "repository_visibility": "private",
            "repository_id": "74", "repository_owner_id": "65", "run_id": "example-run-id",
            "run_number": "10", "run_attempt": "2", "runner_environment": "github-hosted",
            "actor": "octocat", "workflow": "example-workflow", "head_ref": "", "base_ref": "",
            "event_name": "workflow_dispatch", "ref_type": "branch",
            "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
            "iss": "https://token.actions.githubusercontent.com", "nbf": t - 5, "exp": t + 300, "iat": t
        }))
    };
    let header = "authorization";
    let bearer = |t: String| format!("Bearer {t}");
    assert_eq!(
        auth_with_header(
            &app,
            header,
            &bearer(token("octo-org/octo-repo", "prod")),
            "/deploy"
        )
        .await,
        200
    );
    assert_eq!(
        auth_with_header(
            &app,
            header,
            &bearer(token("octo-org/other", "prod")),
            "/deploy"
        )
        .await,
        403
    );
    assert_eq!(
        auth_with_header(
            &app,
            header,
            &bearer(token("octo-org/octo-repo", "staging")),
            "/deploy"
        )
        .await,
        403
    );
}

#[test]
fn iap_and_github_actions_presets_need_their_issuer_and_audiences() {
    assert_config_errors(
        "[[issuers]]\nname = \"iap\"\nprovider = \"iap\"\nissuer = \"https://iap.example\"\n",
        &[
            "issuers[0].issuer: provider \"iap\" needs issuer = \"https://cloud.google.com/iap\"",
            "issuers[0].audiences: provider \"iap\" needs the audiences",
        ],
    );
    let config = tokend::config::Config::from_toml(
        "[[issuers]]\nname = \"gh\"\nprovider = \"github-actions\"\n\
         issuer = \"https://token.actions.githubusercontent.com\"\naudiences = [\"sts.amazonaws.com\"]\n",
        Vec::new(),
    )
    .unwrap();
    assert!(
        config.issuers[0].discovery,
        "keys by discovery on GitHub's issuer"
    );
}

/// A projected service-account token, claims as the Kubernetes
/// documentation shows them ("Bound service account tokens",
/// https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/#bound-service-account-tokens).
fn service_account_token(key: &Signer, iss: &str, namespace: &str, aud: &str) -> String {
    let t = now();
    let claims = json!({
        "aud": [aud], "exp": t + 3600, "iat": t, "nbf": t, "iss": iss,
        "jti": format!("jti-{}", rand::random::<u64>()),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "127.0.0.1", "uid": "58456cb0-dd00-45ed-b797-5578fdceaced"},
            "pod": {"name": "my-pod", "uid": "a2f2e2c1-f7d1-4a93-9ffc-e7b9e7b9e7b9"},
            "serviceaccount": {"name": "api", "uid": "14ee3fa4-a7e2-420f-9f9a-dbc4507c3798"}
        },
        "sub": format!("system:serviceaccount:{namespace}:api")
    });
    key.sign_with_header(
        Algorithm::RS256,
        &json!({"alg": "RS256", "kid": "sa-1"}),
        &claims,
    )
}

#[tokio::test]
async fn kubernetes_service_account_tokens_pass_routes_on_their_namespace() {
    let key = signer(Algorithm::RS256, "sa-1");
    let idp = Idp::start(jwks(&[&key])).await;
    // Discovery on the cluster issuer, as an EKS/GKE/AKS cluster publishes it.
    let iss = idp.url();
    let issuer = format!(
        "[[issuers]]\nname = \"cluster\"\nprovider = \"kubernetes\"\nissuer = \"{iss}\"\n\
         allow_insecure_http = true\naudiences = [\"orders-api\"]\n"
    );
    let routes = "[[routes]]\nname = \"payments\"\npath_prefix = \"/payments\"\n\
                  claims = { \"kubernetes.io.namespace\" = \"payments\" }\n";
    let app = spawn_ready(config_with(&issuer, routes)).await;
    let bearer = |t: String| format!("Bearer {t}");
    let payments = service_account_token(&key, &iss, "payments", "orders-api");
    assert_eq!(
        auth_with_header(&app, "authorization", &bearer(payments), "/payments/1").await,
        200
    );
    let other = service_account_token(&key, &iss, "default", "orders-api");
    assert_eq!(
        auth_with_header(&app, "authorization", &bearer(other), "/payments/1").await,
        403
    );
    // A token of the same cluster for another audience (the API server's).
    let api_server =
        service_account_token(&key, &iss, "payments", "https://kubernetes.default.svc");
    assert_eq!(reason(&app, &api_server).await, "audience_mismatch");
    assert_config_errors(
        "[[issuers]]\nname = \"k\"\nprovider = \"kubernetes\"\nissuer = \"https://oidc.eks.example\"\n",
        &["issuers[0].audiences: provider \"kubernetes\" needs the audience"],
    );
}

const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TENANT_B: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// An Entra ID access token, claims as "Access tokens in the Microsoft
/// identity platform" lists them
/// (https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference):
/// v2 `iss` `https://login.microsoftonline.com/<tid>/v2.0`, v1
/// `https://sts.windows.net/<tid>/`, `tid` the tenant.
fn entra_token(key: &Signer, iss_tenant: &str, tid: &str, v1: bool) -> String {
    let t = now();
    let iss = if v1 {
        format!("https://sts.windows.net/{iss_tenant}/")
    } else {
        format!("https://login.microsoftonline.com/{iss_tenant}/v2.0")
    };
    let claims = json!({
        "aud": "api://orders", "iss": iss, "iat": t, "nbf": t, "exp": t + 3600,
        "aio": "Y2NgYEjJqF0ZpbjlJ8", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
        "azpacr": "0", "name": "Alice", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "preferred_username": "alice@contoso.com", "rh": "I", "scp": "orders.read",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ", "tid": tid,
        "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": if v1 { "1.0" } else { "2.0" }
    });
    key.sign_with_header(
        Algorithm::RS256,
        &json!({"typ": "JWT", "alg": "RS256", "kid": "entra-1"}),
        &claims,
    )
}

fn azure_issuer(idp: &Idp, tenants: &str) -> String {
    format!(
        "[[issuers]]\nname = \"entra\"\nprovider = \"azure\"\n\
         issuer = \"https://login.microsoftonline.com/{{tenantid}}/v2.0\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\naudiences = [\"api://orders\"]\ntenants = {tenants}\n",
        idp.jwks_uri()
    )
}

#[tokio::test]
async fn azure_multi_tenant_tokens_pass_for_listed_tenants_with_their_own_tid() {
    let key = signer(Algorithm::RS256, "entra-1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &azure_issuer(&idp, &format!("[\"{TENANT_A}\"]")),
        "",
    ))
    .await;
    let good = entra_token(&key, TENANT_A, TENANT_A, false);
    assert!(app.is_active(&good).await, "{}", app.explain(&good).await);
    assert!(
        app.is_active(&entra_token(&key, TENANT_A, TENANT_A, true))
            .await,
        "v1 issuer"
    );
    // Tenant A's issuer with tenant B's tid: the attack a shared key set invites.
    let crossed = entra_token(&key, TENANT_A, TENANT_B, false);
    assert_eq!(reason(&app, &crossed).await, "issuer_tenant_mismatch");
    let unlisted = entra_token(&key, TENANT_B, TENANT_B, false);
    assert_eq!(reason(&app, &unlisted).await, "tenant_not_allowed");
    // A "tenant" that would move the match.
    for tenant in [
        format!("{TENANT_A}/x"),
        format!("{TENANT_A}.evil"),
        String::new(),
    ] {
        let tricky = entra_token(&key, &tenant, &tenant, false);
        assert_eq!(reason(&app, &tricky).await, "unknown_issuer", "{tenant:?}");
    }
    // A subject revoked under the tenant's issuer URL.
    let revoked = app
        .admin_post(json!({"sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
                          "iss": format!("https://login.microsoftonline.com/{TENANT_A}/v2.0")}))
        .await;
    assert_eq!(revoked.status(), 201);
    assert!(!app.is_active(&good).await);
}

#[tokio::test]
async fn azure_with_any_tenant_still_ties_iss_to_tid() {
    let key = signer(Algorithm::RS256, "entra-1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&azure_issuer(&idp, "[\"*\"]"), "")).await;
    assert!(
        app.is_active(&entra_token(&key, TENANT_B, TENANT_B, false))
            .await
    );
    let crossed = entra_token(&key, TENANT_B, TENANT_A, true);
    assert_eq!(reason(&app, &crossed).await, "issuer_tenant_mismatch");
    assert_config_errors(
        "[[issuers]]\nname = \"e\"\nprovider = \"azure\"\n\
         issuer = \"https://login.microsoftonline.com/{tenantid}/v2.0\"\naudiences = [\"x\"]\n",
        &["issuers[0].tenants: list the tenant ids"],
    );
    let config = tokend::config::Config::from_toml(
        "[[issuers]]\nname = \"e\"\nprovider = \"azure\"\n\
         issuer = \"https://login.microsoftonline.com/{tenantid}/v2.0\"\naudiences = [\"x\"]\ntenants = [\"*\"]\n",
        Vec::new(),
    )
    .unwrap();
    assert_eq!(
        config.issuers[0].jwks_uri.as_deref(),
        Some("https://login.microsoftonline.com/common/discovery/v2.0/keys")
    );
    assert_eq!(
        config.issuers[0].issuer_aliases,
        vec!["https://sts.windows.net/{tenantid}/".to_owned()]
    );
}

//! Amazon Cognito user pools.

use serde_json::{Value, json};

use super::*;
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
    let stdout = check_config_stdout(&cognito_issuer(&idp, ""));
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

/// A claim a pre token generation Lambda adds to both tokens (Cognito's
/// "Pre token generation Lambda trigger", version 2, can add claims to ID
/// and access tokens alike).
fn with_tenant(mut claims: Value, tenant: &str) -> Value {
    claims["custom:tenant"] = json!(tenant);
    claims
}

/// A user's own `required_claim_values` is added to the preset's
/// `token_use`, not put in its place: an ID token that carries the app
/// client in `client_id` and the user's claim is still refused.
#[tokio::test]
async fn a_cognito_issuer_with_its_own_required_claim_values_still_checks_token_use() {
    let key = signer(Algorithm::RS256, "cognito-1");
    let idp = Idp::start(jwks(&[&key])).await;
    let extra = "required_claim_values = { \"custom:tenant\" = \"acme\" }\n";
    let app = spawn_ready(config_with(&cognito_issuer(&idp, extra), "")).await;
    let required = &app.app.state.runtime().issuers[0]
        .config
        .required_claim_values;
    assert_eq!(
        required.get("token_use").map(String::as_str),
        Some("access")
    );
    assert_eq!(
        required.get("custom:tenant").map(String::as_str),
        Some("acme")
    );

    let access = cognito_sign(&key, &with_tenant(cognito_access(APP_CLIENT), "acme"));
    assert!(
        app.is_active(&access).await,
        "{}",
        app.explain(&access).await
    );
    let other_tenant = cognito_sign(&key, &with_tenant(cognito_access(APP_CLIENT), "evil"));
    assert_eq!(reason(&app, &other_tenant).await, "claim_value_mismatch");
    // The attack: an ID token dressed to pass the audience and the user's check.
    let mut id = with_tenant(cognito_id(APP_CLIENT), "acme");
    id["client_id"] = json!(APP_CLIENT);
    let id = cognito_sign(&key, &id);
    assert!(!app.is_active(&id).await);
    assert_eq!(reason(&app, &id).await, "claim_value_mismatch");

    // Naming token_use themselves, a user decides it.
    let config = tokend::config::Config::from_toml(
        &cognito_issuer(&idp, "required_claim_values = { token_use = \"id\" }\n"),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(
        config.issuers[0]
            .required_claim_values
            .get("token_use")
            .map(String::as_str),
        Some("id")
    );
}

/// An explicit key wins over what the preset would fill in: with
/// `audience_claims = ["aud"]`, a Cognito issuer matches `aud`, not
/// `client_id`.
#[tokio::test]
async fn an_explicit_audience_claims_overrides_the_cognito_preset() {
    let key = signer(Algorithm::RS256, "cognito-1");
    let idp = Idp::start(jwks(&[&key])).await;
    let issuer = cognito_issuer(&idp, "audience_claims = [\"aud\"]\n");
    let app = spawn_ready(config_with(&issuer, "")).await;
    let by_client_id = cognito_sign(&key, &cognito_access(APP_CLIENT));
    assert_eq!(reason(&app, &by_client_id).await, "audience_mismatch");
    let mut by_aud = cognito_access("another-client");
    by_aud["aud"] = json!(APP_CLIENT);
    let by_aud = cognito_sign(&key, &by_aud);
    assert!(
        app.is_active(&by_aud).await,
        "{}",
        app.explain(&by_aud).await
    );
    // token_use is still the preset's.
    let mut id_by_aud = cognito_id(APP_CLIENT);
    id_by_aud["aud"] = json!(APP_CLIENT);
    let id_by_aud = cognito_sign(&key, &id_by_aud);
    assert_eq!(reason(&app, &id_by_aud).await, "claim_value_mismatch");
}

//! Microsoft Entra ID (Azure AD), multi-tenant.

use serde_json::json;

use super::fixtures::{ENTRA_KEYS_PATH, ProviderServer, entra_jwks};
use super::*;
use crate::helpers::*;
use tokend::mint::Signer;
use tokend::token::Algorithm;

const TENANT_A: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TENANT_B: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// An Entra ID access token, claims as "Access tokens in the Microsoft
/// identity platform" lists them
/// (https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference):
/// v2 `iss` `https://login.microsoftonline.com/<tid>/v2.0`, v1
/// `https://sts.windows.net/<tid>/`, `tid` the tenant.
fn entra_token(key: &Signer, iss_tenant: &str, tid: &str, v1: bool) -> String {
    entra_sign(key, &entra_claims(iss_tenant, tid, v1))
}

fn entra_claims(iss_tenant: &str, tid: &str, v1: bool) -> serde_json::Value {
    let t = now();
    let iss = if v1 {
        format!("https://sts.windows.net/{iss_tenant}/")
    } else {
        format!("https://login.microsoftonline.com/{iss_tenant}/v2.0")
    };
    json!({
        "aud": "api://orders", "iss": iss, "iat": t, "nbf": t, "exp": t + 3600,
        "aio": "Y2NgYEjJqF0ZpbjlJ8", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
        "azpacr": "0", "name": "Alice", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "preferred_username": "alice@contoso.com", "rh": "I", "scp": "orders.read",
        "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ", "tid": tid,
        "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": if v1 { "1.0" } else { "2.0" }
    })
}

fn entra_sign(key: &Signer, claims: &serde_json::Value) -> String {
    key.sign_with_header(
        Algorithm::RS256,
        &json!({"typ": "JWT", "alg": "RS256", "kid": "entra-1"}),
        claims,
    )
}

/// Microsoft's common key set, as it serves it (see [`entra_jwks`]).
async fn entra_keys(key: &Signer) -> ProviderServer {
    ProviderServer::start(vec![(
        ENTRA_KEYS_PATH,
        "application/json; charset=utf-8",
        entra_jwks(&[key]),
    )])
    .await
}

fn azure_issuer(keys: &ProviderServer, tenants: &str) -> String {
    format!(
        "[[issuers]]\nname = \"entra\"\nprovider = \"azure\"\n\
         issuer = \"https://login.microsoftonline.com/{{tenantid}}/v2.0\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\naudiences = [\"api://orders\"]\ntenants = {tenants}\n",
        keys.url(ENTRA_KEYS_PATH)
    )
}

#[tokio::test]
async fn azure_multi_tenant_tokens_pass_for_listed_tenants_with_their_own_tid() {
    let key = signer(Algorithm::RS256, "entra-1");
    let keys = entra_keys(&key).await;
    let app = spawn_ready(config_with(
        &azure_issuer(&keys, &format!("[\"{TENANT_A}\"]")),
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
    let keys = entra_keys(&key).await;
    let app = spawn_ready(config_with(&azure_issuer(&keys, "[\"*\"]"), "")).await;
    assert!(
        app.is_active(&entra_token(&key, TENANT_B, TENANT_B, false))
            .await
    );
    let crossed = entra_token(&key, TENANT_B, TENANT_A, true);
    assert_eq!(reason(&app, &crossed).await, "issuer_tenant_mismatch");
    // No tid at all: the tenant in iss is vouched for by nothing.
    for v1 in [false, true] {
        let mut claims = entra_claims(TENANT_B, TENANT_B, v1);
        claims.as_object_mut().unwrap().remove("tid");
        let without = entra_sign(&key, &claims);
        assert!(!app.is_active(&without).await, "v1: {v1}");
        assert_eq!(reason(&app, &without).await, "issuer_tenant_mismatch");
    }
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

/// `check-config` shows what the Azure preset filled in: the v1 spelling,
/// Microsoft's common keys, the tenants.
#[test]
fn check_config_prints_the_effective_azure_issuer() {
    let stdout = check_config_stdout(&format!(
        "[[issuers]]\nname = \"entra\"\nprovider = \"azure\"\n\
         issuer = \"https://login.microsoftonline.com/{{tenantid}}/v2.0\"\n\
         audiences = [\"api://orders\"]\ntenants = [\"{TENANT_A}\"]\n"
    ));
    for want in [
        "issuers[0] (entra): provider azure: issuer = \"https://login.microsoftonline.com/{tenantid}/v2.0\"",
        "issuer_aliases = [\"https://sts.windows.net/{tenantid}/\"]",
        &format!("tenants = [\"{TENANT_A}\"]"),
        "audiences = [\"api://orders\"]",
        "audience_claims = [\"aud\"]",
        "required_claims = [\"exp\"]",
        "keys = JwksUri(\"https://login.microsoftonline.com/common/discovery/v2.0/keys\")",
        "padded_base64 = false",
        "token_header = none",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
}

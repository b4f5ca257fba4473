//! Workload identity: GitHub Actions and Kubernetes service accounts.

use serde_json::json;

use super::*;
use crate::helpers::*;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

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

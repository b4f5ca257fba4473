//! Workload identity: GitHub Actions and Kubernetes service accounts.

use serde_json::json;

use super::fixtures::{
    ProviderServer, github_discovery, github_jwks, kubernetes_discovery, kubernetes_jwks,
};
use super::*;
use crate::helpers::*;
use tokend::mint::Signer;
use tokend::token::Algorithm;

const GITHUB_ISS: &str = "https://token.actions.githubusercontent.com";

/// A GitHub Actions OIDC token, claims and header as the example token of
/// "About security hardening with OpenID Connect" shows them
/// (https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect),
/// issued by `iss`.
fn github_token(key: &Signer, iss: &str, repository: &str, environment: &str) -> String {
    let t = now();
    let claims = json!({
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
        "iss": iss, "nbf": t - 5, "exp": t + 300, "iat": t
    });
    key.sign_with_header(
        Algorithm::RS256,
        &json!({"typ": "JWT", "alg": "RS256", "x5t": "example-thumbprint", "kid": "gha-1"}),
        &claims,
    )
}

/// GitHub's endpoints: the discovery document and the key set, as GitHub
/// serves them (see [`github_discovery`]).
async fn github_endpoints(key: &Signer) -> ProviderServer {
    ProviderServer::start(vec![github_discovery(), github_jwks(&[key])]).await
}

/// Routes that name the repository and environment. The preset's issuer is
/// GitHub's own URL, which a test cannot serve, so its keys come from the
/// fixture's `jwks_uri` (discovery on GitHub's document shape is tested
/// below, on an issuer without the preset).
#[tokio::test]
async fn github_actions_tokens_pass_routes_on_repository_and_environment() {
    let key = signer(Algorithm::RS256, "gha-1");
    let github = github_endpoints(&key).await;
    let issuer = format!(
        "[[issuers]]\nname = \"github\"\nprovider = \"github-actions\"\n\
         issuer = \"{GITHUB_ISS}\"\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\naudiences = [\"https://github.com/octo-org\"]\n",
        github.url("/.well-known/jwks")
    );
    let routes = "[[routes]]\nname = \"deploy\"\npath_prefix = \"/deploy\"\n\
                  claims = { repository = \"octo-org/octo-repo\", environment = \"prod\" }\n";
    let app = spawn_ready(config_with(&issuer, routes)).await;
    let token = |repository: &str, environment: &str| {
        github_token(&key, GITHUB_ISS, repository, environment)
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

/// Discovery reads GitHub's document as GitHub serves it (its lists of
/// claims, scopes and subject types ignored) and fetches the keys it names.
#[tokio::test]
async fn github_actions_discovery_document_is_read_as_github_serves_it() {
    let key = signer(Algorithm::RS256, "gha-1");
    let github = github_endpoints(&key).await;
    let issuer = format!(
        "[[issuers]]\nname = \"github\"\nissuer = \"{}\"\ndiscovery = true\n\
         allow_insecure_http = true\naudiences = [\"https://github.com/octo-org\"]\n",
        github.base
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let token = github_token(&key, &github.base, "octo-org/octo-repo", "prod");
    assert!(app.is_active(&token).await, "{}", app.explain(&token).await);
    assert_eq!(github.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(github.hits("/.well-known/jwks"), 1);
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
    // Discovery on the cluster issuer, as the API server serves it.
    let cluster =
        ProviderServer::start(vec![kubernetes_discovery(), kubernetes_jwks(&[&key])]).await;
    let iss = cluster.base.clone();
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
    assert_eq!(cluster.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(cluster.hits("/openid/v1/jwks"), 1);
    assert_config_errors(
        "[[issuers]]\nname = \"k\"\nprovider = \"kubernetes\"\nissuer = \"https://oidc.eks.example\"\n",
        &["issuers[0].audiences: provider \"kubernetes\" needs the audience"],
    );
}

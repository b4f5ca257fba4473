//! Cloud identity providers (issue 12): each preset with tokens shaped as
//! its cloud's documentation shows them, and the attacks it exists to stop —
//! one file per cloud.

mod alb;
mod aws;
mod entra;
mod fixtures;
mod google;
mod workloads;

use crate::helpers::*;
use serde_json::json;

async fn reason(app: &TestApp, token: &str) -> String {
    app.explain(token).await["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `/auth` as a gateway behind IAP calls it: the token in IAP's header.
async fn auth_with_header(app: &TestApp, header: &str, token: &str, uri: &str) -> u16 {
    auth_with_headers(app, &[(header, token)], uri).await
}

/// `/auth` with these request headers forwarded.
async fn auth_with_headers(app: &TestApp, headers: &[(&str, &str)], uri: &str) -> u16 {
    let mut request = app
        .http
        .get(format!("{}/auth", app.base))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-host", "app.example.com")
        .header("x-forwarded-uri", uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// What `tokend check-config` prints for this configuration (it must pass).
fn check_config_stdout(text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("tokend-providers-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokend.toml");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokend"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
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

/// The keys behind the presets, set by hand where they cannot work: each
/// refusal names its key path.
#[test]
fn the_keys_behind_presets_are_refused_where_they_cannot_work() {
    let jwks = "jwks_uri = \"https://idp.example/k\"\n";
    let issuer = |rest: &str| format!("[[issuers]]\nname = \"a\"\n{rest}");
    assert_config_errors(
        &issuer(&format!(
            "issuer = \"https://idp.example\"\ntenants = [\"t1\"]\n{jwks}"
        )),
        &["issuers[0].tenants: only for an issuer spelled with {tenantid}"],
    );
    assert_config_errors(
        &issuer(&format!(
            "issuer = \"https://idp.example/{{tenantid}}/{{tenantid}}\"\ntenants = [\"*\"]\n{jwks}"
        )),
        &["issuers[0].issuer: {tenantid} may appear once in a spelling"],
    );
    assert_config_errors(
        &issuer(&format!(
            "issuer = \"https://idp.example\"\nissuer_aliases = [\"https://{{tenantid}}.idp.example/{{tenantid}}\"]\ntenants = [\"*\"]\n{jwks}"
        )),
        &["issuers[0].issuer: {tenantid} may appear once in a spelling"],
    );
    assert_config_errors(
        &issuer(
            "issuer = \"https://idp.example/{tenantid}\"\ntenants = [\"*\"]\ndiscovery = true\n",
        ),
        &["issuers[0].discovery: not with {tenantid} in the issuer: set jwks_uri"],
    );
    assert_config_errors(
        &issuer(&format!(
            "issuer = \"https://idp.example/{{tenantid}}\"\n{jwks}"
        )),
        &["issuers[0].tenants: list the tenant ids whose tokens pass"],
    );
    assert_config_errors(
        &issuer(
            "issuer = \"https://idp.example\"\nkeys_format = \"x509_map\"\njwks_file = \"/nonexistent/keys.json\"\n",
        ),
        &[
            "issuers[0].keys_format: \"x509_map\" is read from jwks_uri: set it",
            "issuers[0].jwks_file: /nonexistent/keys.json is not a readable file",
        ],
    );
    assert_config_errors(
        &issuer("issuer = \"https://idp.example\"\nkeys_format = \"x509_map\"\n"),
        &[
            "issuers[0].keys_format: \"x509_map\" is read from jwks_uri: set it",
            "issuers[0]: no key source",
        ],
    );
    assert_config_errors(
        &issuer(&format!(
            "issuer = \"https://idp.example\"\naudience_claims = [\"\"]\nrequired_claim_values = {{ \"\" = \"x\" }}\nissuer_aliases = [\"https://idp.example\"]\n{jwks}"
        )),
        &[
            "issuers[0].audience_claims: claim names must not be empty",
            "issuers[0].required_claim_values: claim names must not be empty",
            "issuers[0].issuer_aliases[0]: must be non-empty and differ from issuer",
        ],
    );
}

/// `issuer_aliases`, `{tenantid}` with `tenants`, `audience_claims` and
/// `required_claim_values` are issuer keys of their own (SPEC, "Cloud
/// identity providers": the presets only fill them in): an issuer without a
/// provider gets the same checks.
#[tokio::test]
async fn the_keys_behind_presets_work_without_a_provider() {
    let key = signer(tokend::token::Algorithm::ES256, "k1");
    let idp = Idp::start(tokend::mint::jwks(&[&key])).await;
    let issuer = format!(
        "[[issuers]]\nname = \"tenanted\"\nissuer = \"https://login.example.com/{{tenantid}}/v2\"\n\
         issuer_aliases = [\"https://legacy.example.com/{{tenantid}}\"]\ntenants = [\"t1\", \"t2\"]\n\
         audience_claims = [\"azp\"]\naudiences = [\"client-1\"]\n\
         required_claim_values = {{ token_kind = \"api\" }}\n\
         jwks_uri = \"{}\"\nallow_insecure_http = true\n",
        idp.jwks_uri()
    );
    let app = spawn_ready(config_with(&issuer, "")).await;
    let token = |iss: &str, tid: &str, changes: serde_json::Value| {
        let t = now();
        let claims = json!({"iss": iss, "tid": tid, "azp": "client-1", "token_kind": "api",
                            "sub": "s", "iat": t, "exp": t + 300});
        let mut claims = with(claims, changes);
        claims.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        key.sign(tokend::token::Algorithm::ES256, &claims)
    };
    let none = json!({});
    let good = token("https://login.example.com/t1/v2", "t1", none.clone());
    assert!(app.is_active(&good).await, "{}", app.explain(&good).await);
    let alias = token("https://legacy.example.com/t2", "t2", none.clone());
    assert!(app.is_active(&alias).await, "{}", app.explain(&alias).await);
    for (token, want) in [
        (
            token("https://login.example.com/t3/v2", "t3", none.clone()),
            "tenant_not_allowed",
        ),
        (
            token("https://login.example.com/t1/v2", "t2", none.clone()),
            "issuer_tenant_mismatch",
        ),
        (
            token(
                "https://login.example.com/t1/v2",
                "t1",
                json!({"tid": null}),
            ),
            "issuer_tenant_mismatch",
        ),
        (
            token(
                "https://login.example.com/t1/v2",
                "t1",
                json!({"azp": "client-2", "aud": "client-1"}),
            ),
            "audience_mismatch",
        ),
        (
            token(
                "https://login.example.com/t1/v2",
                "t1",
                json!({"token_kind": "id"}),
            ),
            "claim_value_mismatch",
        ),
        (
            token("https://login.example.com/t1/extra/v2", "t1", none.clone()),
            "unknown_issuer",
        ),
    ] {
        assert_eq!(
            reason(&app, &token).await,
            want,
            "{}",
            app.explain(&token).await
        );
    }
}

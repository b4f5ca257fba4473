//! Cloud identity providers (issue 12): each preset with tokens shaped as
//! its cloud's documentation shows them, and the attacks it exists to stop —
//! one file per cloud.

mod alb;
mod aws;
mod entra;
mod google;
mod workloads;

use crate::helpers::*;

async fn reason(app: &TestApp, token: &str) -> String {
    app.explain(token).await["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

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

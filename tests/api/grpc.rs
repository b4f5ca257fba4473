//! The gRPC front through a real tonic client on a real port: the same
//! verdicts as HTTP, batches, status codes, health and reflection.

use serde_json::json;
use std::time::Duration;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::helpers::*;
use tokend::api::grpc::pb;
use tokend::api::grpc::pb::token_service_client::TokenServiceClient;
use tokend::mint::{Signer, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

type Client = TokenServiceClient<tonic::transport::Channel>;

pub async fn grpc_client(app: &TestApp) -> Client {
    TokenServiceClient::connect(format!("http://{}", app.app.grpc_addr))
        .await
        .unwrap()
}

async fn channel(app: &TestApp) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", app.app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub fn with_auth<T>(message: T, auth: Option<(&str, &str)>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some((id, secret)) = auth {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        let value: MetadataValue<_> = format!("Basic {basic}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn introspect_req(token: &str, include_claims: bool) -> pb::IntrospectRequest {
    pb::IntrospectRequest {
        token: token.into(),
        token_type_hint: String::new(),
        include_claims,
        ..Default::default()
    }
}

async fn setup() -> (Idp, TestApp, Signer) {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let mut config = config_with(&jwks_issuer("main", ISS, &idp, ""), "");
    config.server.max_batch = 50;
    let app = spawn_ready(config).await;
    (idp, app, key)
}

#[tokio::test]
async fn grpc_and_http_give_the_same_verdicts() {
    let (_idp, app, key) = setup().await;
    let mut client = grpc_client(&app).await;
    let mut expired = claims(ISS);
    expired["exp"] = json!(now() - 100);
    let forged = Signer::generate(Algorithm::ES256, "k1").sign(Algorithm::ES256, &claims(ISS));
    let tokens = [
        key.sign(Algorithm::ES256, &claims(ISS)),
        key.sign(Algorithm::ES256, &expired),
        forged,
        "garbage".to_string(),
    ];
    for token in &tokens {
        let http = app.introspect(token).await;
        let grpc = client
            .introspect(with_auth(
                introspect_req(token, false),
                Some(("gateway", GATEWAY_SECRET)),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(http["active"].as_bool().unwrap(), grpc.active, "{token}");
        if grpc.active {
            assert_eq!(http["sub"], grpc.sub.as_str());
            assert_eq!(http["iss"], grpc.iss.as_str());
            assert_eq!(http["exp"], grpc.exp);
            assert_eq!(http["jti"], grpc.jti.as_str());
            assert_eq!(http["scope"], grpc.scope.as_str());
            assert_eq!(http["client_id"], grpc.client_id.as_str());
            assert_eq!(grpc.aud, vec!["orders".to_string()]);
            assert_eq!(grpc.token_type, "Bearer");
            assert!(grpc.claims.is_none(), "claims only when asked");
        } else {
            assert_eq!(
                grpc,
                pb::IntrospectResponse::default(),
                "an inactive answer carries nothing"
            );
        }
    }
}

#[tokio::test]
async fn batches_keep_order_mark_bad_items_and_respect_the_limit() {
    let (_idp, app, key) = setup().await;
    let mut client = grpc_client(&app).await;
    let mut c = claims(ISS);
    c["custom"] = json!({"tier": "gold", "n": 3});
    let good = key.sign(Algorithm::ES256, &c);
    let requests = vec![
        introspect_req(&good, true),
        introspect_req("not.a.token", true),
        introspect_req(&good, false),
        introspect_req(&"x".repeat(20_000), false),
    ];
    let responses = client
        .introspect_batch(with_auth(
            pb::IntrospectBatchRequest { requests },
            Some(("gateway", GATEWAY_SECRET)),
        ))
        .await
        .unwrap()
        .into_inner()
        .responses;
    assert_eq!(
        responses.iter().map(|r| r.active).collect::<Vec<_>>(),
        vec![true, false, true, false]
    );
    let claims = responses[0]
        .claims
        .as_ref()
        .expect("claims when include_claims");
    let custom = &claims.fields["custom"];
    let Some(prost_types::value::Kind::StructValue(s)) = &custom.kind else {
        panic!("custom is a struct")
    };
    assert_eq!(
        s.fields["tier"].kind,
        Some(prost_types::value::Kind::StringValue("gold".into()))
    );
    assert!(responses[2].claims.is_none());

    let at_limit = vec![introspect_req(&good, false); 50];
    let ok = client
        .introspect_batch(with_auth(
            pb::IntrospectBatchRequest { requests: at_limit },
            Some(("gateway", GATEWAY_SECRET)),
        ))
        .await
        .unwrap();
    assert_eq!(ok.into_inner().responses.len(), 50);
    let over = vec![introspect_req(&good, false); 51];
    let err = client
        .introspect_batch(with_auth(
            pb::IntrospectBatchRequest { requests: over },
            Some(("gateway", GATEWAY_SECRET)),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// A batch answer is encoded straight from the verdicts, a single answer
/// from an owned message: for every shape of claims both say the same,
/// field for field.
#[tokio::test]
async fn a_batch_answers_each_token_exactly_as_a_single_call_does() {
    let (_idp, app, key) = setup().await;
    let mut client = grpc_client(&app).await;
    let now = now() as i64;
    let shapes = [
        claims(ISS),
        json!({"iss": ISS, "sub": "u-1", "aud": ["api", "", "other"], "exp": now + 600,
               "iat": now - 5, "nbf": now - 5, "jti": "j-1", "scope": "read write",
               "client_id": "cli", "username": "ana", "extra": [1, {"x": null}]}),
        json!({"iss": ISS, "exp": now + 600, "scp": ["a", "b"], "azp": "from-azp",
               "username": "n-2"}),
        json!({"iss": ISS, "sub": "", "exp": now + 600, "aud": "one", "iat": 0, "nbf": -5}),
        json!({"iss": ISS, "exp": now - 600}),
    ];
    let tokens: Vec<String> = shapes
        .iter()
        .map(|c| key.sign(Algorithm::ES256, c))
        .chain(["not.a.token".to_owned()])
        .collect();
    let auth = Some(("gateway", GATEWAY_SECRET));
    for include_claims in [false, true] {
        let requests = tokens
            .iter()
            .map(|t| introspect_req(t, include_claims))
            .collect();
        let batch = client
            .introspect_batch(with_auth(pb::IntrospectBatchRequest { requests }, auth))
            .await
            .unwrap()
            .into_inner()
            .responses;
        assert_eq!(batch.len(), tokens.len());
        for (token, from_batch) in tokens.iter().zip(&batch) {
            let single = client
                .introspect(with_auth(introspect_req(token, include_claims), auth))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(*from_batch, single, "{token}");
        }
        assert!(batch[1].active && batch[1].username == "ana" && batch[1].aud.len() == 3);
        assert_eq!(batch[2].username, "n-2");
        assert_eq!(batch[2].scope, "a b");
        assert!(!batch[4].active && !batch[5].active);
    }
}

#[tokio::test]
async fn big_batches_fit_the_message_limits() {
    let secret = "0123456789abcdef0123456789abcdef";
    let issuer =
        format!("[[issuers]]\nname = \"hs\"\nissuer = \"{ISS}\"\nhmac_secret = \"{secret}\"\n");
    let app = spawn_ready(config_with(&issuer, "")).await;
    let signer = Signer::hmac(secret.as_bytes(), "k");
    let mut c = claims(ISS);
    c["padding"] = json!("p".repeat(5700));
    let token = signer.sign_with_header(Algorithm::HS256, &json!({"alg": "HS256"}), &c);
    assert!(token.len() > 7000 && token.len() <= 8192);
    let requests = vec![introspect_req(&token, true); 1000]; // max_batch of ~8 KiB tokens: ~8 MB in, ~6 MB out
    // Clients must raise their own receive limit (4 MiB by default) for answers this large.
    let mut client = grpc_client(&app).await.max_decoding_message_size(64 << 20);
    let responses = client
        .introspect_batch(with_auth(
            pb::IntrospectBatchRequest { requests },
            Some(("gateway", GATEWAY_SECRET)),
        ))
        .await
        .unwrap()
        .into_inner()
        .responses;
    assert_eq!(responses.len(), 1000);
    assert!(responses.iter().all(|r| r.active && r.claims.is_some()));
}

#[tokio::test]
async fn status_codes_for_callers_and_bad_input() {
    let (_idp, app, key) = setup().await;
    let mut client = grpc_client(&app).await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    for auth in [None, Some(("gateway", "wrong"))] {
        let err = client
            .introspect(with_auth(introspect_req(&token, false), auth))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{auth:?}");
        let err = client
            .introspect_batch(with_auth(
                pb::IntrospectBatchRequest { requests: vec![] },
                auth,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let err = client
        .introspect(with_auth(
            introspect_req(&token, false),
            Some(("revoker", REVOKER_SECRET)),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let revoke = |token: &str| pb::RevokeRequest {
        token: token.into(),
        token_type_hint: String::new(),
    };
    let err = client
        .revoke(with_auth(revoke(&token), Some(("gateway", GATEWAY_SECRET))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .revoke(with_auth(revoke(""), Some(("revoker", REVOKER_SECRET))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // an inactive token is an answer, not an error
    let answer = client
        .introspect(with_auth(
            introspect_req("", false),
            Some(("gateway", GATEWAY_SECRET)),
        ))
        .await
        .unwrap();
    assert!(!answer.into_inner().active);
}

#[tokio::test]
async fn grpc_revoke_is_seen_by_http() {
    let (_idp, app, key) = setup().await;
    let mut client = grpc_client(&app).await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert!(app.is_active(&token).await);
    let revoke = pb::RevokeRequest {
        token: token.clone(),
        token_type_hint: "access_token".into(),
    };
    client
        .revoke(with_auth(revoke, Some(("revoker", REVOKER_SECRET))))
        .await
        .unwrap();
    assert!(!app.is_active(&token).await);
    let grpc = client
        .introspect(with_auth(
            introspect_req(&token, false),
            Some(("gateway", GATEWAY_SECRET)),
        ))
        .await
        .unwrap();
    assert!(!grpc.into_inner().active);
}

#[tokio::test]
async fn health_mirrors_readiness() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    idp.set_status(500);
    let app = spawn_app(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    let mut health = HealthClient::new(channel(&app).await);
    let status = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answer = health.check(status("")).await.unwrap().into_inner();
    assert_eq!(answer.status, ServingStatus::NotServing as i32);
    idp.set_status(200);
    app.app
        .state
        .runtime()
        .issuer_by_name("main")
        .unwrap()
        .refresh_now()
        .await
        .unwrap();
    let mut serving = false;
    for _ in 0..30 {
        let answer = health
            .check(status("tokend.v1.TokenService"))
            .await
            .unwrap()
            .into_inner();
        if answer.status == ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(serving, "gRPC health turns SERVING with /readyz");
    assert_eq!(app.get("/readyz").await.status(), 200);
}

/// Every service on the port is listed, Envoy's ext_authz included, and its
/// file comes back whole (what `grpcurl describe` needs).
#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let (_idp, app, _key) = setup().await;
    let mut client = ServerReflectionClient::new(channel(&app).await);
    let request = |message| tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    };
    let requests = vec![
        request(MessageRequest::ListServices(String::new())),
        request(MessageRequest::FileContainingSymbol(
            "envoy.service.auth.v3.Authorization".into(),
        )),
    ];
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"tokend.v1.TokenService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"envoy.service.auth.v3.Authorization".to_string()),
        "{names:?}"
    );
    let file = |response: tonic_reflection::pb::v1::ServerReflectionResponse| {
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!("expected a file: {response:?}")
        };
        <prost_types::FileDescriptorProto as prost::Message>::decode(
            files.file_descriptor_proto[0].as_slice(),
        )
        .unwrap()
    };
    let authz = file(stream.message().await.unwrap().unwrap());
    assert_eq!(authz.name(), "envoy/service/auth/v3/external_auth.proto");
    assert!(authz.service.iter().any(|s| s.name() == "Authorization"));
    // A client then asks for each import by name; every one is there.
    let imports = authz.dependency.clone();
    let requests = imports
        .iter()
        .map(|name| request(MessageRequest::FileByFilename(name.clone())))
        .collect::<Vec<_>>();
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    for name in &imports {
        assert_eq!(
            &file(stream.message().await.unwrap().unwrap())
                .name()
                .to_owned(),
            name
        );
    }
    assert!(
        imports
            .iter()
            .any(|i| i == "envoy/service/auth/v3/attribute_context.proto")
    );
}

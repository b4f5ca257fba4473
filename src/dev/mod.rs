//! `tokend serve --dev`: everything a newcomer needs in one process.
//!
//! A development issuer with fresh RS256, ES256 and EdDSA keys (trusted
//! directly, and also published as discovery document and JWKS) and opaque
//! tokens of its own behind an introspection endpoint ([`opaque`]), `POST
//! /dev/token` to mint tokens for it, a client key for DPoP-bound tokens and
//! their proofs ([`dpop`]), a stand-in AWS load balancer and its padded
//! `x-amzn-oidc-data` tokens ([`alb`]), a `dev` client with a random secret and
//! every permission, the memory revocation store, and listeners on 127.0.0.1
//! only. The printed walkthrough needs nothing but curl.

mod alb;
mod dpop;
mod opaque;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{ClientConfig, Config, ConfigErrors, IssuerConfig};
use crate::errors::ApiError;
use crate::mint::{Signer, jwks};
use crate::token::Algorithm;

/// Algorithms of the development issuer; the first is the default for `/dev/token`.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// The development issuer: its URL, one signing key per algorithm, its opaque
/// tokens, and the development client's DPoP key.
pub struct DevIssuer {
    pub issuer: String,
    signers: Vec<(Algorithm, Signer)>,
    opaque: opaque::OpaqueTokens,
    dpop: dpop::DpopClient,
    alb: alb::DevAlb,
    clock: Clock,
}

/// A dev-mode setup: the config to serve, the issuer, and the `dev` client's secret.
pub struct DevSetup {
    pub config: Config,
    pub issuer: Arc<DevIssuer>,
    pub client_secret: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("system randomness");
    hex::encode(buf)
}

fn loopback_only(key: &str, addr: &str, errors: &mut Vec<String>) {
    match addr.parse::<SocketAddr>() {
        Ok(a) if a.ip().is_loopback() => {}
        _ => errors.push(format!(
            "{key}: dev mode binds to 127.0.0.1 only, not {addr:?}"
        )),
    }
}

/// The dev mode's route policy and identity assertion (a generated key: one
/// replica), shown by the walkthrough.
const DEV_POLICY: &str = r#"
[[routes]]
name = "health"
path = "/healthz"
anonymous = true

[[routes]]
name = "orders-write"
path_prefix = "/orders"
methods = ["POST", "PUT", "DELETE"]
scopes_all = ["orders:write"]

[[routes]]
name = "orders-read"
path_prefix = "/orders"
scopes_any = ["orders:read", "orders:write"]

[assertion]
enabled = true
"#;

/// Builds the dev configuration: SPEC defaults on 127.0.0.1, overridable by the
/// usual `TOKEND__…` variables (for ports), a fresh issuer and `dev` client.
pub fn setup(
    vars: impl IntoIterator<Item = (String, String)>,
    clock: Clock,
) -> Result<DevSetup, ConfigErrors> {
    let base = format!(
        "[server]\nhttp_addr = \"127.0.0.1:8080\"\ngrpc_addr = \"127.0.0.1:50051\"\n{DEV_POLICY}"
    );
    let mut config = Config::from_toml(&base, vars)?;
    let mut errors = Vec::new();
    loopback_only("server.http_addr", &config.server.http_addr, &mut errors);
    loopback_only("server.grpc_addr", &config.server.grpc_addr, &mut errors);
    if !config.server.metrics_addr.is_empty() {
        loopback_only(
            "server.metrics_addr",
            &config.server.metrics_addr,
            &mut errors,
        );
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let issuer = format!("http://{}/dev", config.server.http_addr);
    let signers: Vec<(Algorithm, Signer)> = ALGORITHMS
        .iter()
        .map(|alg| {
            (
                *alg,
                Signer::generate(*alg, format!("dev-{}", alg.name().to_lowercase())),
            )
        })
        .collect();
    let keys = jwks(&signers.iter().map(|(_, s)| s).collect::<Vec<_>>());
    let opaque = opaque::OpaqueTokens::new();
    let issuer_config: IssuerConfig = toml::from_str(&format!(
        "name = \"dev\"\nissuer = \"{issuer}\"\nalgorithms = [\"RS256\", \"ES256\", \"EdDSA\"]\n\
         introspection_endpoint = \"{issuer}/introspect\"\nrevocation_endpoint = \"{issuer}/revoke\"\n\
         introspection_client_id = \"{}\"\nintrospection_client_secret = \"{}\"\nallow_insecure_http = true\n\
         backchannel_logout = true\nlogout_audiences = [\"{}\"]\n",
        opaque::CLIENT_ID,
        opaque.secret,
        opaque::CLIENT_ID,
    ))
    .map_err(|e| ConfigErrors(vec![e.to_string()]))?;
    let alb = alb::DevAlb::new(format!("{issuer}/alb"));
    let alb_config: IssuerConfig =
        toml::from_str(&alb.issuer_toml(&format!("http://{}", config.server.http_addr)))
            .map_err(|e| ConfigErrors(vec![e.to_string()]))?;
    config.issuers = vec![
        IssuerConfig {
            inline_jwks: Some(keys.to_string()),
            ..issuer_config
        },
        alb_config,
    ];
    let client_secret = random_hex(24);
    let client: ClientConfig = toml::from_str(&format!(
        "id = \"dev\"\nsecret = \"{client_secret}\"\npermissions = [\"introspect\", \"revoke\", \"admin\"]\n"
    ))
    .map_err(|e| ConfigErrors(vec![e.to_string()]))?;
    config.clients = vec![client];
    config.revocation.backend = crate::config::Backend::Memory;
    let config = config.validated()?;
    Ok(DevSetup {
        config,
        issuer: Arc::new(DevIssuer {
            issuer,
            signers,
            opaque,
            dpop: dpop::DpopClient::generate(),
            alb,
            clock,
        }),
        client_secret,
    })
}

impl DevIssuer {
    /// Mints a token: default claims, overridden by `overrides` (minus `alg`,
    /// which picks the key, `opaque`, which asks for an opaque token instead,
    /// and `dpop`, which binds it to the development client's DPoP key).
    pub fn mint(&self, overrides: &serde_json::Map<String, Value>) -> Result<String, ApiError> {
        let flag = |name: &str| match overrides.get(name) {
            None | Some(Value::Bool(false)) => Ok(false),
            Some(Value::Bool(true)) => Ok(true),
            Some(_) => Err(ApiError::InvalidRequest(format!(
                "{name} must be a boolean"
            ))),
        };
        let (opaque, bound) = (flag("opaque")?, flag("dpop")?);
        let alg = match overrides.get("alg") {
            None => ALGORITHMS[0],
            Some(Value::String(name)) => Algorithm::from_name(name)
                .filter(|a| ALGORITHMS.contains(a))
                .ok_or_else(|| {
                    ApiError::InvalidRequest(format!(
                        "alg must be one of RS256, ES256, EdDSA, not {name:?}"
                    ))
                })?,
            Some(_) => return Err(ApiError::InvalidRequest("alg must be a string".into())),
        };
        let now = (self.clock)();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": "dev-user",
            "aud": "dev-api",
            "iat": now,
            "exp": now + 3600,
            "jti": random_hex(12),
            "scope": "read write",
            "client_id": "dev",
        });
        let map = claims.as_object_mut().expect("object");
        for (name, value) in overrides
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "alg" | "opaque" | "dpop"))
        {
            map.insert(name.clone(), value.clone());
        }
        if bound {
            map.insert("cnf".into(), json!({"jkt": self.dpop.jkt()}));
        }
        if opaque {
            return Ok(self.opaque.issue(map.clone()));
        }
        let (_, signer) = self
            .signers
            .iter()
            .find(|(a, _)| *a == alg)
            .expect("one signer per algorithm");
        Ok(signer.sign(alg, &claims))
    }

    fn jwks(&self) -> Value {
        jwks(&self.signers.iter().map(|(_, s)| s).collect::<Vec<_>>())
    }
}

/// `POST /dev/token` and the issuer's discovery document and JWKS.
pub fn routes(issuer: Arc<DevIssuer>) -> Router {
    Router::new()
        .route("/dev/token", post(mint_token))
        .route("/dev/introspect", post(opaque::introspect))
        .route("/dev/logout-token", post(mint_logout_token))
        .route("/dev/revoke", post(opaque::revoke))
        .route("/dev/dpop-proof", post(dpop::mint_proof))
        .route("/dev/alb-token", post(alb::mint))
        .route("/dev/alb-keys/{kid}", get(alb::key))
        .route("/dev/.well-known/openid-configuration", get(discovery))
        .route(
            "/dev/jwks",
            get(|State(i): State<Arc<DevIssuer>>| async move { axum::Json(i.jwks()) }),
        )
        .with_state(issuer)
}

async fn mint_token(State(issuer): State<Arc<DevIssuer>>, body: Bytes) -> Response {
    let overrides = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            _ => {
                return ApiError::InvalidRequest(
                    "body must be a JSON object of claims (and \"alg\")".into(),
                )
                .into_response();
            }
        }
    };
    match issuer.mint(&overrides) {
        Ok(token) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            token,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /dev/logout-token`: an OpenID Back-Channel Logout token for the
/// session (`{"sid": …}`) or subject (`{"sub": …}`) in the JSON body, as the
/// dev issuer would post it when that user logs out.
async fn mint_logout_token(State(issuer): State<Arc<DevIssuer>>, body: Bytes) -> Response {
    let who = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => {
            return ApiError::InvalidRequest(
                "body must be a JSON object naming \"sid\" or \"sub\"".into(),
            )
            .into_response();
        }
    };
    let mut claims = json!({
        "iss": issuer.issuer,
        "aud": opaque::CLIENT_ID,
        "iat": (issuer.clock)(),
        "jti": random_hex(12),
        "events": {crate::events::logout::BACKCHANNEL_LOGOUT_EVENT: {}},
    });
    let mut named = false;
    for name in ["sid", "sub"] {
        if let Some(Value::String(value)) = who.get(name) {
            claims[name] = json!(value);
            named = true;
        }
    }
    if !named {
        return ApiError::InvalidRequest(
            "name the session (\"sid\") or the subject (\"sub\")".into(),
        )
        .into_response();
    }
    let (alg, signer) = &issuer.signers[0];
    let header = json!({"alg": alg.name(), "kid": signer.kid, "typ": "logout+jwt"});
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        signer.sign_with_header(*alg, &header, &claims),
    )
        .into_response()
}

async fn discovery(State(issuer): State<Arc<DevIssuer>>) -> Response {
    axum::Json(json!({
        "issuer": issuer.issuer,
        "jwks_uri": format!("{}/jwks", issuer.issuer),
        "introspection_endpoint": format!("{}/introspect", issuer.issuer),
        "revocation_endpoint": format!("{}/revoke", issuer.issuer),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "id_token_signing_alg_values_supported": ALGORITHMS.iter().map(|a| a.name()).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// The text printed to stdout at start-up: credentials and a walkthrough that
/// works when pasted into a shell.
pub fn walkthrough(
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    issuer: &str,
    secret: &str,
) -> String {
    let base = format!("http://{http_addr}");
    let auth = "-u \"$TOKEND_CLIENT_ID:$TOKEND_CLIENT_SECRET\"";
    format!(
        "\
tokend dev mode: HTTP {base}  gRPC {grpc_addr}
Development issuer {issuer} (RS256, ES256, EdDSA); revocations are kept in memory only.

export TOKEND_CLIENT_ID=dev
export TOKEND_CLIENT_SECRET={secret}

# 1. mint a token for the development issuer (JSON body: claims to set, and \"alg\")
TOKEN=$(curl -s -X POST {base}/dev/token -H 'content-type: application/json' -d '{{\"sub\":\"alice\"}}')
# 2. introspect it: \"active\": true
curl -s {auth} --data-urlencode \"token=$TOKEN\" {base}/introspect; echo
# 3. ask /auth as a gateway would: POST /orders needs scope orders:write, the token has \"read write\": 403
curl -s -o /dev/null -w '%{{http_code}} %header{{www-authenticate}}\\n' -H \"Authorization: Bearer $TOKEN\" -H 'X-Forwarded-Method: POST' -H 'X-Forwarded-Uri: /orders' {base}/auth
# 4. why: the route that matched, the decision, the missing scope
curl -s {auth} -H 'content-type: application/json' -d \"{{\\\"token\\\":\\\"$TOKEN\\\",\\\"method\\\":\\\"POST\\\",\\\"path\\\":\\\"/orders\\\"}}\" {base}/admin/explain; echo
# 5. a token with orders:write passes: 200, and the upstream gets a JWT signed by tokend (key at /.well-known/jwks.json)
WRITER=$(curl -s -X POST {base}/dev/token -H 'content-type: application/json' -d '{{\"sub\":\"alice\",\"scope\":\"orders:write\"}}')
curl -s -o /dev/null -w '%{{http_code}} %header{{x-tokend-assertion}}\\n' -H \"Authorization: Bearer $WRITER\" -H 'X-Forwarded-Method: POST' -H 'X-Forwarded-Uri: /orders' {base}/auth
# 6. revoke the first token
curl -s {auth} --data-urlencode \"token=$TOKEN\" {base}/revoke -o /dev/null -w '%{{http_code}}\\n'
# 7. introspect again: {{\"active\":false}}
curl -s {auth} --data-urlencode \"token=$TOKEN\" {base}/introspect; echo
# 8. an opaque token (not a JWT): tokend asks the dev issuer's introspection endpoint once, then answers from its cache
OPAQUE=$(curl -s -X POST {base}/dev/token -H 'content-type: application/json' -d '{{\"opaque\":true,\"sub\":\"bob\"}}')
curl -s {auth} --data-urlencode \"token=$OPAQUE\" {base}/introspect; echo
# 9. alice logs out at the IdP, which posts a logout token (OpenID Back-Channel Logout): 200, and her session's token is inactive
SESSION=$(curl -s -X POST {base}/dev/token -H 'content-type: application/json' -d '{{\"sub\":\"alice\",\"sid\":\"dev-session-1\"}}')
LOGOUT=$(curl -s -X POST {base}/dev/logout-token -H 'content-type: application/json' -d '{{\"sid\":\"dev-session-1\"}}')
curl -s -o /dev/null -w '%{{http_code}}\\n' --data-urlencode \"logout_token=$LOGOUT\" {base}/backchannel-logout
curl -s {auth} --data-urlencode \"token=$SESSION\" {base}/introspect; echo
# 10. a DPoP-bound token (RFC 9449) passes only with a fresh proof from its client's key: 200, then the same proof again (a replay): 401
BOUND=$(curl -s -X POST {base}/dev/token -H 'content-type: application/json' -d '{{\"sub\":\"carol\",\"scope\":\"orders:read\",\"dpop\":true}}')
PROOF=$(curl -s -X POST {base}/dev/dpop-proof -H 'content-type: application/json' -d \"{{\\\"htm\\\":\\\"GET\\\",\\\"htu\\\":\\\"http://api.example/orders\\\",\\\"token\\\":\\\"$BOUND\\\"}}\")
curl -s -o /dev/null -w '%{{http_code}}\\n' -H \"Authorization: DPoP $BOUND\" -H \"DPoP: $PROOF\" -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Host: api.example' -H 'X-Forwarded-Uri: /orders' {base}/auth
curl -s -o /dev/null -w '%{{http_code}} %header{{www-authenticate}}\\n' -H \"Authorization: DPoP $BOUND\" -H \"DPoP: $PROOF\" -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Host: api.example' -H 'X-Forwarded-Uri: /orders' {base}/auth
# 11. behind AWS ALB: the user's claims in X-Amzn-Oidc-Data (ES256, base64 padded as ALB pads it, the key fetched per kid on first sight, signer checked): 200
ALB=$(curl -s -X POST {base}/dev/alb-token -H 'content-type: application/json' -d '{{\"sub\":\"dave\"}}')
curl -s -o /dev/null -w '%{{http_code}}\\n' -H \"X-Amzn-Oidc-Data: $ALB\" -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /profile' {base}/auth
"
    )
}

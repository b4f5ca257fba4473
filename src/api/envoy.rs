//! Envoy's external authorization API (`envoy.service.auth.v3.Authorization/Check`)
//! on the gRPC port, so Envoy's `ext_authz` filter and Istio's `CUSTOM` action
//! call tokend directly.
//!
//! `Check` always answers gRPC OK with the verdict inside: a gRPC error would
//! let Envoy's `failure_mode_allow` turn a rejection into an allow. Allowed
//! requests go upstream with `x-auth-*` identity headers, and any copies of
//! those headers the client sent are overwritten or removed, so a client can
//! never forge them. Denied requests get 401 with an RFC 6750 challenge.

use axum::http::HeaderMap;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpStatus, HttpStatusCode, OkHttpResponse,
};
use envoy_types::ext_authz::v3::{CheckRequestExt, CheckResponseExt};
use std::time::Instant;
use tonic::{Request, Response, Status};

use super::http::{AppState, identity_headers};
use crate::metrics::{Api, Outcome};
use crate::token::Verdict;

/// The identity headers tokend sets upstream (and strips from clients).
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-auth-subject",
    "x-auth-issuer",
    "x-auth-scope",
    "x-auth-client-id",
    "x-auth-expires",
];

pub struct EnvoyAuthz {
    state: AppState,
}

impl EnvoyAuthz {
    pub fn server(state: AppState) -> AuthorizationServer<EnvoyAuthz> {
        AuthorizationServer::new(EnvoyAuthz { state })
    }
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    #[allow(deprecated)]
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        keep_empty_value: false,
    }
}

/// The bearer token of the checked request, if any.
fn bearer(request: &CheckRequest) -> Option<&str> {
    let value = request.get_client_headers()?.get("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn allow(identity: HeaderMap) -> CheckResponse {
    let mut headers = Vec::with_capacity(IDENTITY_HEADERS.len());
    let mut headers_to_remove = Vec::new();
    for name in IDENTITY_HEADERS {
        match identity.get(name).and_then(|v| v.to_str().ok()) {
            Some(value) if !value.is_empty() => headers.push(header(name, value)),
            _ => headers_to_remove.push(name.to_owned()),
        }
    }
    let mut response = CheckResponse::with_status(Status::ok("active"));
    response.set_http_response(OkHttpResponse {
        headers,
        headers_to_remove,
        ..Default::default()
    });
    response
}

fn deny() -> CheckResponse {
    let mut response = CheckResponse::with_status(Status::unauthenticated("token is not active"));
    response.set_http_response(DeniedHttpResponse {
        status: Some(HttpStatus {
            code: HttpStatusCode::Unauthorized.into(),
        }),
        headers: vec![
            header(
                "www-authenticate",
                r#"Bearer realm="tokend", error="invalid_token""#,
            ),
            header("content-type", "application/json"),
        ],
        body: r#"{"error":"invalid_token"}"#.to_owned(),
    });
    response
}

#[tonic::async_trait]
impl Authorization for EnvoyAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let started = Instant::now();
        let _in_flight = self.state.metrics.in_flight(Api::Envoy);
        let request = request.into_inner();
        let verdict = match bearer(&request) {
            Some(token) => Some(self.state.verifier.check(token, (self.state.clock)()).await),
            None => None,
        };
        let (outcome, response) = match &verdict {
            Some(Verdict::Active(verified)) => match identity_headers(verified) {
                Ok(identity) => (Outcome::Active, allow(identity)),
                Err(_) => (Outcome::UnsafeClaim, deny()),
            },
            _ => (Outcome::Inactive, deny()),
        };
        self.state
            .metrics
            .request(Api::Envoy, outcome, started.elapsed());
        Ok(Response::new(response))
    }
}

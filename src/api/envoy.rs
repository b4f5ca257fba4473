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
use tonic::{Request, Response, Status};

use super::front::{self, IDENTITY_HEADERS, Measured};
use super::state::AppState;
use crate::metrics::{Api, Outcome};
use crate::token::{Presented, RequestFacts, TokenSource, Verdict};

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
    front::bearer(request.get_client_headers()?.get("authorization")?)
}

/// The request Envoy asks about (`attributes.request.http`).
fn checked_request(request: &CheckRequest) -> RequestFacts<'_> {
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    RequestFacts {
        method: http.map_or("", |h| h.method.as_str()),
        host: http.map_or("", |h| h.host.as_str()),
        path: http.map_or("", |h| h.path.as_str()),
    }
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
            header("www-authenticate", front::INVALID_TOKEN_CHALLENGE),
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
        let measured = Measured::start(&self.state.metrics, Api::Envoy);
        let request = request.into_inner();
        let verdict = match bearer(&request) {
            Some(token) => {
                let presented = Presented::new(token, TokenSource::Header("authorization"))
                    .for_request(checked_request(&request));
                Some(
                    self.state
                        .runtime()
                        .verifier
                        .check(&presented, (self.state.clock)())
                        .await,
                )
            }
            None => None,
        };
        let (outcome, response) = match &verdict {
            Some(Verdict::Active(verified)) => match front::identity_headers(verified) {
                Ok(identity) => (Outcome::Active, allow(identity)),
                Err(_) => (Outcome::UnsafeClaim, deny()),
            },
            _ => (Outcome::Inactive, deny()),
        };
        measured.finish(outcome);
        Ok(Response::new(response))
    }
}

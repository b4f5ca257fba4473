//! Envoy's external authorization API (`envoy.service.auth.v3.Authorization/Check`)
//! on the gRPC port, so Envoy's `ext_authz` filter and Istio's `CUSTOM` action
//! call tokend directly.
//!
//! `Check` always answers gRPC OK with the verdict inside: a gRPC error would
//! let Envoy's `failure_mode_allow` turn a rejection into an allow. Allowed
//! requests go upstream with `x-auth-*` identity headers, and any copies of
//! those headers the client sent are overwritten or removed, so a client can
//! never forge them. Denied requests get 401 (no or inactive token) or 403
//! (the route refuses the token) with an RFC 6750 challenge, or 400 when the
//! request cannot be read unambiguously.

use axum::http::HeaderMap;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpStatus, HttpStatusCode, OkHttpResponse,
};
use envoy_types::ext_authz::v3::{CheckRequestExt, CheckResponseExt};
use tonic::{Request, Response, Status};

use std::collections::HashMap;

use super::edge::{self, Answer};
use super::front::{self, Measured};
use crate::metrics::Api;
use crate::request::RequestFacts;
use crate::state::AppState;

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

/// The request Envoy asks about (`attributes.request.http`).
fn checked_request(request: &CheckRequest) -> RequestFacts<'_> {
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    RequestFacts {
        method: http.map_or("", |h| h.method.as_str()),
        scheme: http.map_or("", |h| h.scheme.as_str()),
        host: http.map_or("", |h| h.host.as_str()),
        path: http.map_or("", |h| h.path.as_str()),
    }
}

/// The SHA-256 of the client certificate Envoy saw
/// (`attributes.source.certificate`: URL-encoded PEM, when Envoy is
/// configured with `include_peer_certificate`).
fn peer_cert(request: &CheckRequest) -> Option<[u8; 32]> {
    let pem = &request.attributes.as_ref()?.source.as_ref()?.certificate;
    if pem.is_empty() {
        return None;
    }
    crate::binding::cert::from_url_encoded_pem(pem)
}

/// Sets every non-empty upstream header and removes the client's copy of
/// every empty one.
fn allow(identity: HeaderMap) -> CheckResponse {
    let mut headers = Vec::with_capacity(identity.len());
    let mut headers_to_remove = Vec::new();
    for (name, value) in &identity {
        match value.to_str() {
            Ok(value) if !value.is_empty() => headers.push(header(name.as_str(), value)),
            _ => headers_to_remove.push(name.as_str().to_owned()),
        }
    }
    let mut response = CheckResponse::with_status(Status::ok("allowed"));
    response.set_http_response(OkHttpResponse {
        headers,
        headers_to_remove,
        ..Default::default()
    });
    response
}

fn deny(
    status: Status,
    code: HttpStatusCode,
    headers: Vec<HeaderValueOption>,
    body: String,
) -> CheckResponse {
    let mut response = CheckResponse::with_status(status);
    let mut all = vec![header("content-type", "application/json")];
    all.extend(headers);
    response.set_http_response(DeniedHttpResponse {
        status: Some(HttpStatus { code: code.into() }),
        headers: all,
        body,
    });
    response
}

/// The verdict in Envoy's terms.
fn check_response(answer: Answer) -> CheckResponse {
    match answer {
        Answer::Allow(identity) => allow(identity),
        Answer::Unauthenticated(challenge) => deny(
            Status::unauthenticated("token is not active"),
            HttpStatusCode::Unauthorized,
            vec![header("www-authenticate", challenge)],
            if challenge == front::INVALID_DPOP_PROOF_CHALLENGE {
                r#"{"error":"invalid_dpop_proof"}"#
            } else {
                r#"{"error":"invalid_token"}"#
            }
            .to_owned(),
        ),
        Answer::Forbidden(challenge) => deny(
            Status::permission_denied("the route refuses this token"),
            HttpStatusCode::Forbidden,
            vec![header(
                "www-authenticate",
                challenge.to_str().unwrap_or_default(),
            )],
            r#"{"error":"insufficient_scope"}"#.to_owned(),
        ),
        Answer::BadRequest(bad) => deny(
            Status::invalid_argument(bad.to_string()),
            HttpStatusCode::BadRequest,
            Vec::new(),
            serde_json::json!({"error": "invalid_request", "error_description": bad.to_string()})
                .to_string(),
        ),
    }
}

#[tonic::async_trait]
impl Authorization for EnvoyAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let measured = Measured::start(&self.state.metrics, Api::Envoy);
        let request = request.into_inner();
        let no_headers = HashMap::new();
        let headers = request.get_client_headers().unwrap_or(&no_headers);
        let (outcome, answer) = edge::authorize(
            &self.state,
            headers,
            checked_request(&request),
            peer_cert(&request),
        )
        .await;
        measured.finish(outcome);
        Ok(Response::new(check_response(answer)))
    }
}

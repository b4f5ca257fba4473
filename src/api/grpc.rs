//! The gRPC front (tonic): `tokend.v1.TokenService`, gRPC health mirroring
//! `/readyz`, and server reflection, all on `server.grpc_addr`.

use std::time::Duration;
use tonic::{Request, Response, Status};

use super::front::Measured;
use super::grpc_answer::{IntrospectBatchResponse, introspect_response};
use super::probes::readiness;
use super::revoke;
use crate::callers::Caller;
use crate::errors::ApiError;
use crate::metrics::{Api, Outcome};
use crate::request::{Presented, ProofTarget, TokenSource};
use crate::state::AppState;
use crate::verify::Verdict;

pub mod pb {
    tonic::include_proto!("tokend.v1");
    /// Encoded descriptors of tokend's protos, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tokend_descriptor");
    /// Envoy's `envoy.service.auth.v3.Authorization`, served on the same port.
    pub const ENVOY_AUTHZ_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("envoy_authz_descriptor");
}

/// Server reflection over every service on the port: tokend's, health and
/// Envoy's ext_authz.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(pb::ENVOY_AUTHZ_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

use pb::token_service_server::{TokenService, TokenServiceServer};

/// The service implementation: every call goes through the same verifier as HTTP.
pub struct TokenApi {
    state: AppState,
}

impl TokenApi {
    /// The service behind its [`Gate`](super::grpc_gate::Gate), which
    /// authenticates each call before its message is read.
    pub fn server(state: AppState) -> super::grpc_gate::Gate<TokenServiceServer<TokenApi>> {
        let tokens = state.max_batch.max(1);
        // A full batch of maximal tokens, with room for framing and claims in answers;
        // the gate holds single-token calls to far less.
        let decode = tokens * (state.max_token_bytes + 64) + 64 * 1024;
        let encode = tokens * (state.max_token_bytes * 2 + 512) + 64 * 1024;
        let batches = state.max_concurrent_batches;
        let service = TokenServiceServer::new(TokenApi {
            state: state.clone(),
        })
        .max_decoding_message_size(decode)
        .max_encoding_message_size(encode);
        super::grpc_gate::Gate::new(service, state, batches)
    }
}

/// The caller the gate admitted; a call that reached a handler without one
/// (never, unless the gate is bypassed) is refused.
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::InvalidClient.to_status())
}

fn outcome(verdict: &Verdict) -> Outcome {
    if verdict.is_active() {
        Outcome::Active
    } else {
        Outcome::Inactive
    }
}

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn introspect(
        &self,
        request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        let measured = Measured::start(&self.state.metrics, Api::Grpc);
        caller(&request)?;
        let req = request.into_inner();
        let target = ProofTarget::Stated {
            method: &req.http_method,
            uri: &req.http_uri,
        };
        let proof = (!req.dpop_proof.is_empty()).then_some(req.dpop_proof.as_str());
        let presented =
            Presented::new(&req.token, TokenSource::GrpcMessage).with_proof(proof, target);
        let verdict = self
            .state
            .runtime()
            .verifier
            .check(&presented, (self.state.clock)())
            .await;
        measured.finish(outcome(&verdict));
        Ok(Response::new(introspect_response(
            &verdict,
            req.include_claims,
        )))
    }

    async fn introspect_batch(
        &self,
        request: Request<pb::IntrospectBatchRequest>,
    ) -> Result<Response<IntrospectBatchResponse>, Status> {
        let measured = Measured::start(&self.state.metrics, Api::Grpc);
        caller(&request)?;
        let requests = request.into_inner().requests;
        if requests.len() > self.state.max_batch {
            measured.finish(Outcome::BadRequest);
            return Err(Status::invalid_argument(format!(
                "{} tokens in one batch; server.max_batch is {}",
                requests.len(),
                self.state.max_batch
            )));
        }
        let now = (self.state.clock)();
        let runtime = self.state.runtime();
        let mut answer = IntrospectBatchResponse::with_capacity(requests.len());
        for req in &requests {
            let presented = Presented::new(&req.token, TokenSource::GrpcMessage);
            let verdict = runtime.verifier.check(&presented, now).await;
            answer.push(verdict, req.include_claims);
        }
        measured.finish(Outcome::Ok);
        Ok(Response::new(answer))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let measured = Measured::start(&self.state.metrics, Api::Grpc);
        let from = request
            .extensions()
            .get::<crate::serve::GrpcPeer>()
            .map_or_else(|| "unknown".to_owned(), |peer| peer.addr.to_string());
        let result = async {
            let caller = request
                .extensions()
                .get::<Caller>()
                .cloned()
                .ok_or(ApiError::InvalidClient)?;
            let req = request.get_ref();
            if req.token.is_empty() {
                return Err(ApiError::InvalidRequest("missing token".into()));
            }
            let presented = Presented::new(&req.token, TokenSource::GrpcMessage);
            revoke::revoke_token(&self.state, &presented, &caller, &from).await
        }
        .await;
        match result {
            Ok(_) => {
                measured.finish(Outcome::Ok);
                Ok(Response::new(pb::RevokeResponse {}))
            }
            Err(e) => {
                measured.finish(e.outcome());
                Err(e.to_status())
            }
        }
    }
}

/// Keeps gRPC health in step with `/readyz`: `SERVING` when ready, else `NOT_SERVING`,
/// for the whole server ("") and for `tokend.v1.TokenService`.
pub async fn mirror_readiness(
    state: AppState,
    reporter: tonic_health::server::HealthReporter,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use tonic_health::ServingStatus;
    let mut last = None;
    loop {
        let ready = readiness(&state).ready;
        if last != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            reporter
                .set_service_status("tokend.v1.TokenService", status)
                .await;
            last = Some(ready);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.cancelled() => {
                reporter.set_service_status("", ServingStatus::NotServing).await;
                return;
            }
        }
    }
}

/// Serves gRPC on `incoming` connections (plain TCP or TLS) until `shutdown`.
pub async fn serve<I, IO, IE>(
    state: AppState,
    incoming: I,
    http2: crate::serve::Http2,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), tonic::transport::Error>
where
    I: futures_util::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(mirror_readiness(
        state.clone(),
        reporter,
        shutdown.child_token(),
    ));
    let reflection_v1 = reflection()
        .build_v1()
        .expect("descriptors compiled in by build.rs are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("descriptors compiled in by build.rs are valid");
    tonic::transport::Server::builder()
        .http2_keepalive_interval(http2.keepalive_interval)
        .http2_keepalive_timeout(Some(http2.keepalive_timeout))
        .max_concurrent_streams(Some(http2.max_concurrent_streams))
        // Flow control bounds what a peer may send before tokend reads it.
        .initial_connection_window_size(Some(1 << 20))
        .initial_stream_window_size(Some(256 << 10))
        .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(super::envoy::EnvoyAuthz::server(state.clone()))
        .add_service(TokenApi::server(state))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

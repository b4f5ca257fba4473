//! The HTTP front of revocation events from identity providers:
//! `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0 §2.5,
//! §2.8; no caller credentials: the logout token's signature is the
//! credential) and `POST /ssf/events` (RFC 8935 push of Security Event
//! Tokens; the transmitter's configured `Authorization` header, then the
//! SET's signature).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::front::Measured;
use super::http::{peer, read_form_parameter};
use crate::errors::ApiError;
use crate::events::set::{self, SetError};
use crate::events::ssf;
use crate::events::{self, Applied, Source, logout};
use crate::metrics::{Api, Outcome};
use crate::revocation::audit;
use crate::state::AppState;

/// `POST /backchannel-logout`: 200 once the session's revocation is stored;
/// 400 `invalid_request` with the rule that failed; 503 when the store
/// cannot take the write (the IdP retries). Never cached (§2.8).
pub async fn backchannel_logout(State(state): State<AppState>, request: Request) -> Response {
    let measured = Measured::start(&state.metrics, Api::Events);
    let from = peer(&request);
    let count = |result| events::count(Source::BackchannelLogout, "logout", result);
    let result = async {
        let token = read_form_parameter(request, state.max_body, "logout_token").await?;
        let now = (state.clock)();
        let verifier = state.runtime().verifier.clone();
        let logout = logout::check(&verifier, &token, now)
            .await
            .map_err(|refused| {
                count("invalid");
                tracing::info!(%from, %refused, "back-channel logout refused");
                ApiError::InvalidRequest(refused.to_string())
            })?;
        match events::end_session(&state.revocations, &logout, now).await {
            Ok(Applied::Stored(entry)) => {
                count("applied");
                audit(
                    "stored",
                    &entry,
                    &format!("backchannel-logout:{}", logout.issuer.config.name),
                    &from,
                );
                Ok(())
            }
            Ok(Applied::Replayed) => {
                count("replayed");
                Err(ApiError::InvalidRequest(
                    "this logout token's jti was already used".into(),
                ))
            }
            Err(e) => {
                count("unavailable");
                Err(ApiError::Unavailable(format!(
                    "{e}; the logout is not known to be stored: retry"
                )))
            }
        }
    }
    .await;
    let (outcome, mut response) = match result {
        Ok(()) => (Outcome::Ok, StatusCode::OK.into_response()),
        Err(e) => (e.outcome(), e.into_response()),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    measured.finish(outcome);
    response
}

/// The media type of a pushed SET (RFC 8935 §2).
const SECEVENT_JWT: &str = "application/secevent+jwt";

/// `POST /ssf/events`: 202 once every event of the SET is applied (or, not
/// understood, counted); 400 with `{"err", "description"}` and the RFC 8935
/// error code otherwise; 503 when the store cannot take a write (the
/// transmitter retries; the same SET is then applied, never twice).
pub async fn ssf_push(State(state): State<AppState>, request: Request) -> Response {
    let measured = Measured::start(&state.metrics, Api::Events);
    let refused = |e: Refusal| {
        events::count(Source::SsfPush, "unknown", "invalid");
        let body = serde_json::json!({"err": e.code, "description": e.description});
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    };
    let runtime = state.runtime();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let Some(transmitter) = runtime
        .transmitter_by_authorization(&authorization)
        .cloned()
    else {
        measured.finish(Outcome::InvalidClient);
        return refused(Refusal {
            code: "authentication_failed",
            description: "the Authorization header is not a configured transmitter's".into(),
        });
    };
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some(SECEVENT_JWT) {
        measured.finish(Outcome::BadRequest);
        return refused(Refusal::from(SetError::InvalidRequest(format!(
            "content type must be {SECEVENT_JWT}"
        ))));
    }
    let body = match axum::body::to_bytes(request.into_body(), state.max_body).await {
        Ok(body) => body,
        Err(_) => {
            measured.finish(Outcome::BadRequest);
            return refused(Refusal::from(SetError::InvalidRequest(
                "body too large".into(),
            )));
        }
    };
    let token = String::from_utf8_lossy(&body);
    let now = (state.clock)();
    let checked = match set::check(&transmitter, token.trim(), state.max_token_bytes, now).await {
        Ok(checked) => checked,
        Err(SetError::NoKeysYet) => {
            let error =
                ApiError::Unavailable("the transmitter's keys are not loaded yet: retry".into());
            measured.finish(error.outcome());
            return error.into_response();
        }
        Err(e) => {
            tracing::info!(transmitter = %transmitter.config.name, error = %e, "SET refused");
            measured.finish(Outcome::BadRequest);
            return refused(Refusal::from(e));
        }
    };
    match ssf::apply(
        &state.revocations,
        &transmitter,
        &checked,
        Source::SsfPush,
        now,
    )
    .await
    {
        Ok(_) => {
            measured.finish(Outcome::Ok);
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => {
            let error =
                ApiError::Unavailable(format!("{e}; the SET is not known to be applied: retry"));
            measured.finish(error.outcome());
            error.into_response()
        }
    }
}

/// An RFC 8935 error answer's members.
struct Refusal {
    code: &'static str,
    description: String,
}

impl From<SetError> for Refusal {
    fn from(e: SetError) -> Refusal {
        Refusal {
            code: e.code(),
            description: e.to_string(),
        }
    }
}

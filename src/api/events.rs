//! The HTTP front of revocation events from identity providers:
//! `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0 §2.5,
//! §2.8). The IdP calls it with no caller credentials: the logout token's
//! signature is the credential.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use super::front::Measured;
use super::http::{peer, read_form_parameter};
use super::revoke::audit;
use super::state::AppState;
use crate::events::{self, Applied, Source, logout};
use crate::metrics::{Api, Outcome};

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

//! `POST /admin/explain` (permission `admin`): why a token is or is not
//! active, and what the route policy makes of it for a given request. The
//! only answer that ever shows a [`crate::token::Reason`].

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::http::admit;
use crate::config::Permission;
use crate::errors::ApiError;
use crate::request::{Presented, RequestFacts, TokenSource};
use crate::state::AppState;
use crate::verify::Verdict;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainRequest {
    token: String,
    /// The request to evaluate routes for: `GET`, no host, `/` when left out.
    method: Option<String>,
    host: Option<String>,
    path: Option<String>,
}

pub async fn explain(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    admit(&state, &request, Permission::Admin, "admin")?;
    let body = axum::body::to_bytes(request.into_body(), state.max_body)
        .await
        .map_err(|_| {
            ApiError::InvalidRequest(format!("body larger than {} bytes", state.max_body))
        })?;
    let asked: ExplainRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "want {{\"token\", \"method\"?, \"host\"?, \"path\"?}}: {e}"
        ))
    })?;
    let facts = RequestFacts {
        method: asked.method.as_deref().unwrap_or("GET"),
        scheme: "",
        host: asked.host.as_deref().unwrap_or(""),
        path: asked.path.as_deref().unwrap_or("/"),
    };
    let runtime = state.runtime();
    let presented = Presented::new(&asked.token, TokenSource::AdminBody).for_request(facts);
    let explained = runtime.verifier.explain(&presented, (state.clock)()).await;
    let mut answer = json!({
        "active": explained.verdict.is_active(),
        "detail": explained.detail,
        "issuer": explained.issuer,
        "kid": explained.kid,
        "alg": explained.alg,
    });
    if let Verdict::Inactive(reason) = &explained.verdict {
        answer["reason"] = json!(reason.as_str());
    }
    match runtime.policy.route(&facts) {
        Ok(matched) => {
            let route = matched.explain(&explained.verdict);
            answer["route"] = json!(matched.name());
            answer["decision"] = json!(route.decision);
            answer["route_detail"] = json!(route.why);
            answer["missing_scopes"] = json!(route.missing_scopes);
        }
        Err(bad) => {
            answer["route"] = serde_json::Value::Null;
            answer["decision"] = json!("deny");
            answer["route_detail"] = json!(format!("400: {bad}"));
            answer["missing_scopes"] = json!([]);
        }
    }
    Ok(axum::Json(answer).into_response())
}

//! The admin API (`/admin/*`, permission `admin`): revocations by token,
//! `jti`, subject or issuer, their listing and lifting, and the issuers' key
//! sets, and `/admin/explain` ([`super::explain`]). Every request is counted
//! under `api="admin"`.

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

use super::front::Measured;
use super::http::{admit, authenticate, peer};
use super::revoke::{self, AdminRevocation};
use crate::config::Permission;
use crate::errors::ApiError;
use crate::metrics::{Api, Outcome};
use crate::state::AppState;

/// The caller of an admin request that was split into parts, with `admin`.
fn admin_caller(
    state: &AppState,
    parts: &axum::http::request::Parts,
) -> Result<crate::callers::Caller, ApiError> {
    authenticate(
        state,
        &parts.headers,
        &parts.extensions,
        Permission::Admin,
        "admin",
    )
}

/// `/admin/*`, each request counted under `api="admin"` by its answer's status.
pub fn admin_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/admin/revocations",
            post(admin_revoke).get(list_revocations),
        )
        .route(
            "/admin/revocations/{id}",
            axum::routing::delete(lift_revocation),
        )
        .route("/admin/issuers", get(list_issuers))
        .route("/admin/issuers/{name}/refresh", post(refresh_issuer))
        .route("/admin/explain", post(super::explain::explain))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            measure_admin,
        ))
}

async fn measure_admin(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let measured = Measured::start(&state.metrics, Api::Admin);
    let response = next.run(request).await;
    measured.finish(Outcome::from_status(response.status()));
    response
}

fn unix(t: Option<SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Null, |d| json!(d.as_secs()))
}

async fn list_issuers(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    admin_caller(&state, &parts)?;
    let now = SystemTime::now();
    let issuers: Vec<Value> = state
        .runtime()
        .issuers
        .iter()
        .map(|issuer| {
            let status = issuer.status();
            let keys = issuer.keys();
            let key_list: Vec<Value> = keys
                .keys()
                .iter()
                .map(|k| json!({"kid": k.kid, "kty": k.kty(), "alg": k.alg.map(|a| a.name()), "bits": k.bits()}))
                .collect();
            let rejected: Vec<Value> =
                keys.rejected.iter().map(|(kid, why)| json!({"kid": kid, "reason": why.to_string()})).collect();
            let age = status.last_success.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs());
            json!({
                "name": issuer.name(),
                "issuer": issuer.config.issuer,
                "algorithms": issuer.config.allowed.iter().map(|a| a.name()).collect::<Vec<_>>(),
                "keys": key_list,
                "rejected_keys": rejected,
                "ready": issuer.is_loaded(),
                "last_refresh": unix(status.last_success),
                "last_attempt": unix(status.last_attempt),
                "last_error": status.last_error,
                "consecutive_failures": status.consecutive_failures,
                "staleness_seconds": age,
                "next_refresh_seconds": status.next_refresh.map(|d| d.as_secs()),
                "stale": status.last_error.is_some(),
            })
        })
        .collect();
    let store = state.revocations.health();
    let body = json!({
        "issuers": issuers,
        "revocation_store": {"up": store.up, "last_error": store.detail},
    });
    Ok(axum::Json(body).into_response())
}

async fn refresh_issuer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    let caller = admin_caller(&state, &parts)?;
    let issuer = state
        .runtime()
        .issuer_by_name(&name)
        .ok_or(ApiError::NotFound)?;
    tracing::info!(caller = %caller.id, issuer = %name, "admin asked for a key refresh");
    match issuer.request_refresh().await {
        Ok(()) => Ok(axum::Json(
            json!({"issuer": name, "refreshed": true, "keys": issuer.keys().keys().len()}),
        )
        .into_response()),
        Err(e) => Err(ApiError::Unavailable(format!(
            "refresh of {name} failed: {e}"
        ))),
    }
}

async fn admin_revoke(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let from = peer(&request);
    let caller = admit(&state, &request, Permission::Admin, "admin")?;
    let body = axum::body::to_bytes(request.into_body(), state.max_body)
        .await
        .map_err(|_| {
            ApiError::InvalidRequest(format!("body larger than {} bytes", state.max_body))
        })?;
    let req: AdminRevocation = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("not a revocation request: {e}")))?;
    let entry = revoke::admin_revoke(&state, req, &caller, &from).await?;
    Ok((StatusCode::CREATED, axum::Json(entry)).into_response())
}

#[derive(serde::Deserialize)]
struct Paging {
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list_revocations(
    State(state): State<AppState>,
    paging: Result<Query<Paging>, axum::extract::rejection::QueryRejection>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    admin_caller(&state, &parts)?;
    let Query(paging) = paging.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let limit = paging.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .revocations
        .list(paging.cursor, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let next = if entries.len() == limit {
        entries.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(axum::Json(json!({"entries": entries, "next_cursor": next})).into_response())
}

async fn lift_revocation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let from = peer(&request);
    let caller = admit(&state, &request, Permission::Admin, "admin")?;
    revoke::lift(&state, id, &caller, &from).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

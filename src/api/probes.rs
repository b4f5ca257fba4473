//! Probes and metrics: `/healthz`, `/readyz` (also mirrored by gRPC health)
//! and `/metrics`, on the main listener and alone on `server.metrics_addr`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::state::{AppState, Shared};

/// Probes and metrics, also served alone on `server.metrics_addr`.
pub fn probe_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The metrics listener's routes.
pub fn probe_router(state: AppState) -> Router {
    probe_routes()
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    let report = readiness(&state);
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report.body)).into_response()
}

/// Readiness of the whole service, shared by `/readyz` and gRPC health. The
/// body holds states, never error text: `/readyz` answers anyone (and the
/// metrics port), and an error may quote a key URL. `/admin/issuers` has it.
pub struct Readiness {
    pub ready: bool,
    pub body: Value,
}

pub fn readiness(state: &Shared) -> Readiness {
    let mut ready = true;
    let mut degraded = false;
    let mut issuers = Map::new();
    let runtime = state.runtime();
    for issuer in &runtime.issuers {
        let status = issuer.status();
        let loaded = issuer.is_loaded();
        let failing = status.last_error.is_some();
        ready &= loaded;
        degraded |= loaded && failing;
        let mut report = json!({
            "ready": loaded,
            "keys": issuer.keys().keys().len(),
            "degraded": loaded && failing,
            "failing": failing,
        });
        // Opaque tokens are inactive while the issuer's endpoint fails:
        // degraded, not unready (JWTs, and cached answers, still pass).
        if let Some(introspector) = runtime
            .verifier
            .opaque()
            .and_then(|o| o.introspectors().iter().find(|i| i.issuer.id == issuer.id))
        {
            let failing = introspector.is_failing();
            degraded |= failing;
            report["degraded"] = json!(loaded && (failing || report["failing"] == true));
            report["introspection"] = json!(if failing { "failing" } else { "ok" });
        }
        issuers.insert(issuer.name().to_owned(), report);
    }
    let revocations = &state.revocations;
    let store = revocations.health();
    let tripped = revocations.tripped();
    ready &= store.loaded && !tripped;
    degraded |= !store.up || store.stale_seconds > 0;
    let label = if !ready {
        "not_ready"
    } else if degraded {
        "degraded"
    } else {
        "ready"
    };
    Readiness {
        ready,
        body: json!({
            "status": label,
            "issuers": issuers,
            "revocation": {
                "up": store.up,
                "loaded": store.loaded,
                "stale_seconds": store.stale_seconds,
                "fail_closed": tripped,
                "entries": revocations.local_copy().len(),
                "resyncs": store.resyncs,
            },
        }),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    // The store gauges as of now, so a scrape agrees with `/readyz` from the
    // first load on rather than after the next periodic refresh.
    state.revocations.publish_health();
    let text = state.prometheus.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        Body::from(Bytes::from(text)),
    )
        .into_response()
}

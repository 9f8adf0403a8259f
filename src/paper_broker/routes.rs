//! The broker's routes and the middleware in front of them: the API key on `/api` and
//! `/admin`, the stall that holds requests while a stall fault is on, and JSON errors.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use super::State;
use super::admin::{
    admin_clear_faults, admin_faults, admin_healthy, admin_set_faults, admin_unhealthy, healthz,
    metrics_text,
};
use super::orders::{cancel_order, get_order, list_orders, place_order, positions, quote};
use super::reply::json_error;
use super::ws;

/// The broker's routes: the order API and admin routes behind the API key, `/healthz`, and
/// `/metrics` outside the stall middleware.
pub(super) fn router(state: Arc<State>) -> Router {
    let api = Router::new()
        .route("/api/v1/orders", post(place_order).get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order).delete(cancel_order))
        .route("/api/v1/positions", get(positions))
        .route("/api/v1/quotes/{symbol}", get(quote))
        .route("/ws/orders", get(ws::orders))
        .route("/admin/ws/close", post(ws::admin_close))
        .route("/admin/unhealthy", post(admin_unhealthy))
        .route("/admin/healthy", post(admin_healthy))
        .route(
            "/admin/faults",
            get(admin_faults)
                .post(admin_set_faults)
                .delete(admin_clear_faults),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), stall))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such route")
}

/// Bearer-token check on /api and /admin routes when an API key is configured.
async fn auth(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), key.as_bytes()));
        if !ok {
            let mut r = json_error(StatusCode::UNAUTHORIZED, "missing or invalid API key");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    if state.faults.rejects_logins() && req.uri().path().starts_with("/api/") {
        return json_error(StatusCode::UNAUTHORIZED, "not logged in");
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hold every request (except /admin and /metrics) that arrives during a stall (scheduled or
/// set at runtime) until the stall ends, or until shutdown starts.
async fn stall(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/admin/")
        && let Some(wait) = state
            .faults
            .stall_remaining(state.since_start(), Instant::now())
    {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.shutdown.cancelled() => {}
        }
    }
    next.run(req).await
}

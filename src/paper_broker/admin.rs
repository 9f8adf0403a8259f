//! Health, metrics and the admin routes: turn health off and on, and set, show and clear the
//! runtime faults drills change.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::State;
use super::faults::FaultUpdate;
use super::reply::json_error;

pub(super) async fn healthz(AxState(state): AxState<Arc<State>>) -> Response {
    if state.healthy.load(Ordering::SeqCst) && !state.shutdown.is_cancelled() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n").into_response()
    }
}

pub(super) async fn admin_unhealthy(AxState(state): AxState<Arc<State>>) -> Response {
    state.set_healthy(false);
    (StatusCode::OK, axum::Json(json!({ "healthy": false }))).into_response()
}

pub(super) async fn admin_healthy(AxState(state): AxState<Arc<State>>) -> Response {
    state.set_healthy(true);
    (StatusCode::OK, axum::Json(json!({ "healthy": true }))).into_response()
}

pub(super) async fn admin_faults(AxState(state): AxState<Arc<State>>) -> Response {
    (StatusCode::OK, axum::Json(faults_json(&state))).into_response()
}

/// The runtime faults with health: [`Faults::effective_json`] plus `"unhealthy": bool`.
fn faults_json(state: &State) -> serde_json::Value {
    let mut v = state.faults.effective_json(Instant::now());
    v["unhealthy"] = json!(!state.healthy.load(Ordering::SeqCst));
    v
}

pub(super) async fn admin_set_faults(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    let update = match FaultUpdate::from_json(&body) {
        Ok(u) => u,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    state.faults.apply(&update, Instant::now());
    if let Some(unhealthy) = update.unhealthy {
        state.set_healthy(!unhealthy);
    }
    let v = faults_json(&state);
    eprintln!("paper broker: runtime faults set: {v}");
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub(super) async fn admin_clear_faults(AxState(state): AxState<Arc<State>>) -> Response {
    state.faults.clear_runtime();
    state.set_healthy(true);
    eprintln!("paper broker: runtime faults cleared");
    (StatusCode::OK, axum::Json(faults_json(&state))).into_response()
}

pub(super) async fn metrics_text(AxState(state): AxState<Arc<State>>) -> Response {
    let (counts, open) = {
        let b = state.book();
        (b.counts, b.open_orders())
    };
    let body = state.metrics.render(
        counts,
        open,
        state.faults.retained_bytes(),
        state.healthy.load(Ordering::SeqCst),
    );
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

//! The HTTP order API: place, look up and cancel orders, list them and the positions, and
//! quote the simulated mid price. Listings take `account` (and `status`) query parameters.

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::State;
use super::book::{Book, StatusFilter};
use super::place::{Placed, place};
use super::reply::json_error;

/// The handlers' view of the broker.
type Shared = AxState<Arc<State>>;

/// The time since start and the book, its resting orders matched at that time.
fn matched_book(state: &State) -> (Duration, MutexGuard<'_, Book>) {
    let t = state.since_start();
    let mut b = state.book();
    b.match_resting(t);
    (t, b)
}

pub(super) async fn place_order(AxState(state): Shared, body: Bytes) -> Response {
    let started = Instant::now();
    let r = place_order_inner(&state, &body).await;
    state.metrics.observe_order(started.elapsed());
    r
}

async fn place_order_inner(state: &State, body: &[u8]) -> Response {
    match place(state, serde_json::from_slice(body)).await {
        Placed::Injected => json_error(StatusCode::SERVICE_UNAVAILABLE, "injected fault"),
        Placed::Invalid(m) => json_error(StatusCode::BAD_REQUEST, &format!("invalid order: {m}")),
        Placed::Ack(ack, true) => (StatusCode::CONFLICT, axum::Json(ack)).into_response(),
        Placed::Ack(ack, false) => (StatusCode::OK, axum::Json(ack)).into_response(),
    }
}

pub(super) async fn get_order(AxState(state): Shared, Path(id): Path<String>) -> Response {
    let (_, b) = matched_book(&state);
    match b.get(&id) {
        Some(o) => (StatusCode::OK, axum::Json(o.clone())).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "no such order"),
    }
}

pub(super) async fn cancel_order(AxState(state): Shared, Path(id): Path<String>) -> Response {
    let (_, mut b) = matched_book(&state);
    match b.cancel(&id) {
        Ok(o) => (StatusCode::OK, axum::Json(o)).into_response(),
        Err(None) => json_error(StatusCode::NOT_FOUND, "no such order"),
        Err(Some(status)) => json_error(
            StatusCode::CONFLICT,
            &format!("order is {}, not open", status.as_str()),
        ),
    }
}

/// Split a query string into decoded `(name, value)` pairs (`+` is a space, `%XX` a byte).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'+', _) => out.push(b' '),
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 2;
                }
                (b, _) => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The query parameters of a listing: `account` and, where `allow_status`, `status`.
///
/// # Errors
/// A message naming an unknown parameter or a bad `status` value.
fn listing_query(
    query: Option<&str>,
    allow_status: bool,
) -> std::result::Result<(Option<String>, StatusFilter), String> {
    let mut account = None;
    let mut status = StatusFilter::All;
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "account" => account = Some(v),
            "status" if allow_status => status = StatusFilter::parse(&v)?,
            other => {
                let expected = if allow_status {
                    "account, status"
                } else {
                    "account"
                };
                return Err(format!(
                    "unknown query parameter \"{other}\" (expected: {expected})"
                ));
            }
        }
    }
    Ok((account, status))
}

/// A listing: the query's `account` (and, where `allow_status`, `status`) or a 400 naming what
/// is wrong, then `body` on the book with resting orders matched up to now.
fn listing(
    state: &State,
    uri: &Uri,
    allow_status: bool,
    body: impl FnOnce(&Book, Duration, Option<&str>, StatusFilter) -> Value,
) -> Response {
    let (account, filter) = match listing_query(uri.query(), allow_status) {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let (t, b) = matched_book(state);
    let v = body(&b, t, account.as_deref(), filter);
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub(super) async fn list_orders(AxState(state): Shared, uri: Uri) -> Response {
    listing(&state, &uri, true, orders_json)
}

pub(super) async fn positions(AxState(state): Shared, uri: Uri) -> Response {
    listing(&state, &uri, false, positions_json)
}

/// `{"orders": [...]}`: the kept orders of `account` (or all) that `filter` admits.
fn orders_json(b: &Book, _: Duration, account: Option<&str>, filter: StatusFilter) -> Value {
    json!({ "orders": b.orders(account, filter) })
}

/// `{"positions": [...]}`: the positions of `account` (or all) at the mid price at `t`.
fn positions_json(b: &Book, t: Duration, account: Option<&str>, _: StatusFilter) -> Value {
    json!({ "positions": b.positions(t, account) })
}

pub(super) async fn quote(AxState(state): Shared, Path(symbol): Path<String>) -> Response {
    let t = state.since_start();
    let mid = state.book().mid(&symbol, t);
    (
        StatusCode::OK,
        axum::Json(json!({ "symbol": symbol, "mid": mid, "t_ms": t.as_millis() as u64 })),
    )
        .into_response()
}

//! The broker's error answer, shared by every route: `{"error": "…"}` with a status. A leaf, so
//! the router and the handlers it mounts both use it without importing each other.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `{"error": message}` with `status`.
pub(super) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

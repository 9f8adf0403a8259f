//! Navigating a scanner's JSON document by key: every missing or mistyped value is reported by
//! its JSON pointer ([`ShapeError`]), and text that is not JSON by line and column
//! ([`SyntaxError`]).

use serde_json::Value;

/// A scanner report that is not JSON: where, and whether it was cut short.
#[derive(Debug, thiserror::Error)]
#[error("line {} column {}: {}: {source}", source.line(), source.column(), if *truncated { "truncated JSON" } else { "malformed JSON" })]
pub struct SyntaxError {
    /// The text ended inside a value (a truncated report).
    pub truncated: bool,
    /// serde_json's error, with line and column.
    pub source: serde_json::Error,
}

/// A scanner report that does not have its format's shape: the JSON pointer (RFC 6901) of the
/// offending value and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct ShapeError {
    /// Where in the document.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl ShapeError {
    pub(super) fn new(pointer: impl Into<String>, message: impl Into<String>) -> ShapeError {
        ShapeError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The same error found inside the value at `prefix`.
    pub(super) fn under(mut self, prefix: &str) -> ShapeError {
        self.pointer = format!("{prefix}{}", self.pointer);
        self
    }
}

/// Parse JSON text, reporting syntax errors and truncation with line and column.
///
/// # Errors
/// A [`SyntaxError`] with the place.
pub fn json(text: &str) -> Result<Value, SyntaxError> {
    serde_json::from_str(text).map_err(|source| SyntaxError {
        truncated: source.classify() == serde_json::error::Category::Eof,
        source,
    })
}

/// The value at `ptr`.
pub(super) fn at<'a>(v: &'a Value, ptr: &str) -> Result<&'a Value, ShapeError> {
    v.pointer(ptr)
        .ok_or_else(|| ShapeError::new(ptr, "missing (is this really the format?)"))
}

/// The string at `ptr`.
pub(super) fn str_at(v: &Value, ptr: &str) -> Result<String, ShapeError> {
    at(v, ptr)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ShapeError::new(ptr, "expected a string"))
}

/// The array at `ptr`.
pub(super) fn arr_at<'a>(v: &'a Value, ptr: &str) -> Result<&'a Vec<Value>, ShapeError> {
    at(v, ptr)?
        .as_array()
        .ok_or_else(|| ShapeError::new(ptr, "expected an array"))
}

/// The strings of an optional array (other elements skipped; none when it is not an array).
pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

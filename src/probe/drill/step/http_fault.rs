//! `proxy = "<proxy>"`, `fault = "http"`: HTTP requests through a `[[proxy]]` that match a
//! method and a path glob get a chosen status, a delay or a dropped connection, for a rate or
//! a count of them; the others are forwarded ([`crate::rig::fault_proxy::HttpFault`]).

use schemars::JsonSchema;
use serde::Deserialize;

use super::actions::{Action, ActionKeys};
use crate::probe::{FieldError, Validator};
use crate::rig::fault_proxy::{Fault, HttpEffect, HttpFault, Selection};

/// An HTTP fault on a `[[proxy]]` in front of an HTTP/1.1 upstream.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyHttp {
    /// The `[[proxy]]`.
    pub proxy: String,
    /// Only requests with this method. Default: any.
    pub method: Option<String>,
    /// Only requests whose path (without the query) matches this glob. Default `"*"`.
    pub path: Option<String>,
    /// Answer a selected request with this status (e.g. 401, 429, 503) instead of forwarding.
    pub status: Option<u16>,
    /// Forward a selected request after this long (humantime).
    pub delay: Option<String>,
    /// `true`: reset the connection of a selected request without an answer.
    pub drop: Option<bool>,
    /// The fraction (0–1] of matching requests selected, spread evenly. Default 1.
    pub rate: Option<f64>,
    /// Select the first this many matching requests (excludes `rate`).
    pub count: Option<u64>,
}

impl ActionKeys for ProxyHttp {
    fn validate(self, v: &mut Validator) -> Result<Action, FieldError> {
        let effect = match (self.status, &self.delay, self.drop) {
            (Some(s), None, None) if (100..=599).contains(&s) => HttpEffect::Status { status: s },
            (Some(_), None, None) => {
                return Err(FieldError::new(
                    "status",
                    "expected a status from 100 to 599",
                ));
            }
            (None, Some(d), None) => HttpEffect::Delay {
                delay: v.duration("delay", d)?,
            },
            (None, None, Some(true)) => HttpEffect::Drop,
            _ => {
                return Err(FieldError::new(
                    "",
                    "fault = \"http\" needs one of `status`, `delay` or `drop = true`",
                ));
            }
        };
        let selection = match (self.rate, self.count) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "count",
                    "count and rate exclude each other",
                ));
            }
            (None, Some(n)) => Selection::Count(n),
            (Some(r), None) if r > 0.0 && r <= 1.0 => Selection::RatePpm((r * 1e6).round() as u32),
            (Some(_), None) => {
                return Err(FieldError::new(
                    "rate",
                    "expected a fraction above 0, at most 1",
                ));
            }
            (None, None) => Selection::RatePpm(1_000_000),
        };
        let path = self.path.unwrap_or_else(|| "*".into());
        globset::Glob::new(&path)
            .map_err(|e| FieldError::new("path", format!("invalid glob: {e}")))?;
        if let Some(m) = &self.method {
            reqwest::Method::from_bytes(m.as_bytes())
                .map_err(|_| FieldError::new("method", format!("invalid method \"{m}\"")))?;
        }
        Ok(Action::Proxy {
            proxy: self.proxy,
            fault: Some(Fault::Http(HttpFault {
                method: self.method.map(|m| m.to_ascii_uppercase()),
                path,
                effect,
                selection,
            })),
        })
    }
}

//! What an HTTP response must look like: one rule set, parsed once, for the `http` probe, the
//! `latency` probe and the soak's `http` monitors, so the same keys can never mean two things;
//! a service's `ready = { http = … }` uses its 2xx rule. A leaf module (it needs only
//! [`crate::field`]), so services and the order client use it without depending on probes.
//!
//! The rules:
//! - `status`: one code or a list of accepted codes; without it, any 2xx (the *successful*
//!   class of RFC 9110 §15.3), so `201 Created` and `204 No Content` are successes;
//! - `body_contains`: a substring the body must contain; `body_not_contains`: one it must not;
//! - `json_pointer` (RFC 6901) alone: the body is JSON and the pointer exists; with
//!   `json_equals` the value there equals it; with `json_one_of` it equals one of them.
//!   `json_equals` and `json_one_of` exclude each other and need `json_pointer`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::field::FieldError;

/// One status code or a list of accepted ones.
#[derive(Debug, Clone, Deserialize, serde::Serialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "expected an HTTP status code (e.g. 200) or a list of codes (e.g. [200, 201])"
)]
pub enum StatusSpec {
    /// A single code.
    One(u16),
    /// Any of these codes.
    Any(Vec<u16>),
}

/// Which statuses count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusMatch {
    /// Any 2xx (RFC 9110 §15.3).
    Success,
    /// One of these codes.
    Any(Vec<u16>),
}

impl StatusMatch {
    /// True when `status` is accepted.
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusMatch::Success => (200..300).contains(&status),
            StatusMatch::Any(v) => v.contains(&status),
        }
    }

    /// The expectation for people: `2xx`, `200`, `200 or 201`.
    pub fn describe(&self) -> String {
        match self {
            StatusMatch::Success => "2xx".into(),
            StatusMatch::Any(v) => v
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

/// A JSON pointer check on a response body.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonExpect {
    /// RFC 6901 pointer, e.g. `/status`.
    pub pointer: String,
    /// Accepted values; empty means "present".
    pub one_of: Vec<Value>,
}

impl JsonExpect {
    /// The expectation for people: `present`, `= "ok"`, `= "accepted" or "filled"`.
    pub fn describe(&self) -> String {
        if self.one_of.is_empty() {
            "present".into()
        } else {
            let values: Vec<String> = self.one_of.iter().map(Value::to_string).collect();
            format!("= {}", values.join(" or "))
        }
    }

    /// Check `body`: the value found, or why it does not hold (not JSON, pointer absent,
    /// another value).
    ///
    /// # Errors
    /// A one-line reason, with the value seen where there is one.
    pub fn check(&self, body: &[u8]) -> Result<Value, String> {
        let doc: Value =
            serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e})"))?;
        self.check_value(&doc).cloned()
    }

    /// Check a parsed JSON document: the value found, or why it does not hold (pointer
    /// absent, another value).
    ///
    /// # Errors
    /// A one-line reason, with the value seen where there is one.
    pub fn check_value<'a>(&self, doc: &'a Value) -> Result<&'a Value, String> {
        let got = doc
            .pointer(&self.pointer)
            .ok_or_else(|| format!("{} not present", self.pointer))?;
        if self.one_of.is_empty() || self.one_of.contains(got) {
            Ok(got)
        } else {
            Err(format!("{} = {got}", self.pointer))
        }
    }
}

/// Check that `pointer`, the value of `key`, is a JSON pointer (RFC 6901) naming a member:
/// it starts with `/`.
///
/// # Errors
/// A [`FieldError`] naming `key`.
pub fn check_pointer(key: &str, pointer: &str) -> Result<(), FieldError> {
    if pointer.starts_with('/') {
        Ok(())
    } else {
        Err(FieldError::new(
            key,
            "expected a JSON pointer (RFC 6901) starting with '/', e.g. \"/status\"",
        ))
    }
}

/// The validated expectation on a response.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpExpect {
    /// Accepted statuses.
    pub status: StatusMatch,
    /// A substring the body must contain.
    pub body_contains: Option<String>,
    /// A substring the body must not contain.
    pub body_not_contains: Option<String>,
    /// A JSON pointer check.
    pub json: Option<JsonExpect>,
}

/// The expectation keys of a raw probe table, as written.
#[derive(Debug, Default)]
pub struct RawHttpExpect {
    /// `status`.
    pub status: Option<StatusSpec>,
    /// `body_contains`.
    pub body_contains: Option<String>,
    /// `body_not_contains`.
    pub body_not_contains: Option<String>,
    /// `json_pointer`.
    pub json_pointer: Option<String>,
    /// `json_equals`.
    pub json_equals: Option<Value>,
    /// `json_one_of`.
    pub json_one_of: Option<Vec<Value>>,
}

impl RawHttpExpect {
    /// Each key's name and whether it was given, in the order above (for refusing them where
    /// they do not apply).
    pub fn given(&self) -> [(&'static str, bool); 6] {
        [
            ("status", self.status.is_some()),
            ("body_contains", self.body_contains.is_some()),
            ("body_not_contains", self.body_not_contains.is_some()),
            ("json_pointer", self.json_pointer.is_some()),
            ("json_equals", self.json_equals.is_some()),
            ("json_one_of", self.json_one_of.is_some()),
        ]
    }

    /// Validate by the rules of this module.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key: a status outside 100–599 or an empty list, a pointer
    /// that does not start with `/`, `json_equals` or `json_one_of` without `json_pointer`, or
    /// both of them.
    pub fn validate(self) -> Result<HttpExpect, FieldError> {
        let status = match self.status {
            None => StatusMatch::Success,
            Some(StatusSpec::One(s)) => StatusMatch::Any(vec![s]),
            Some(StatusSpec::Any(list)) => StatusMatch::Any(list),
        };
        if let StatusMatch::Any(list) = &status
            && (list.is_empty() || list.iter().any(|s| !(100..=599).contains(s)))
        {
            return Err(FieldError::new(
                "status",
                "expected HTTP status codes from 100 to 599",
            ));
        }
        let one_of = match (self.json_equals, self.json_one_of) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "json_one_of",
                    "json_equals and json_one_of exclude each other: give one value or a list",
                ));
            }
            (Some(v), None) => Some(("json_equals", vec![v])),
            (None, Some(list)) => Some(("json_one_of", list)),
            (None, None) => None,
        };
        let json = match (self.json_pointer, one_of) {
            (None, None) => None,
            (None, Some((key, _))) => {
                return Err(FieldError::new(
                    "json_pointer",
                    format!("{key} needs json_pointer beside it"),
                ));
            }
            (Some(p), one_of) => {
                if !p.is_empty() {
                    check_pointer("json_pointer", &p)?;
                }
                Some(JsonExpect {
                    pointer: p,
                    one_of: one_of.map(|(_, l)| l).unwrap_or_default(),
                })
            }
        };
        Ok(HttpExpect {
            status,
            body_contains: self.body_contains,
            body_not_contains: self.body_not_contains,
            json,
        })
    }
}

impl HttpExpect {
    /// Check the body (substring, then JSON pointer) of a response whose status was accepted.
    ///
    /// # Errors
    /// The first expectation that does not hold, in one line.
    pub fn check_body(&self, body: &[u8]) -> Result<(), String> {
        if let Some(s) = &self.body_contains
            && !String::from_utf8_lossy(body).contains(s.as_str())
        {
            return Err(format!("body does not contain \"{s}\""));
        }
        if let Some(s) = &self.body_not_contains
            && String::from_utf8_lossy(body).contains(s.as_str())
        {
            return Err(format!("body contains \"{s}\""));
        }
        if let Some(j) = &self.json {
            j.check(body)
                .map_err(|e| format!("{e}, expected {}", j.describe()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw() -> RawHttpExpect {
        RawHttpExpect::default()
    }

    #[test]
    fn default_status_is_any_2xx() {
        let e = raw().validate().unwrap();
        assert!(e.status.accepts(200) && e.status.accepts(201) && e.status.accepts(204));
        assert!(!e.status.accepts(302) && !e.status.accepts(500));
        assert_eq!(e.status.describe(), "2xx");
    }

    #[test]
    fn pointer_alone_means_present_and_equals_means_that_value() {
        let present = RawHttpExpect {
            json_pointer: Some("/status".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(present.check_body(br#"{"status":"x"}"#), Ok(()));
        assert!(present.check_body(br#"{"s":1}"#).is_err());
        let equals = RawHttpExpect {
            json_pointer: Some("/status".into()),
            json_equals: Some(json!("ok")),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(equals.check_body(br#"{"status":"ok"}"#), Ok(()));
        assert_eq!(
            equals.check_body(br#"{"status":"down"}"#),
            Err("/status = \"down\", expected = \"ok\"".into())
        );
        assert!(equals.check_body(b"not json").is_err());
    }

    #[test]
    fn inconsistent_keys_are_errors_naming_the_key() {
        let e = RawHttpExpect {
            json_equals: Some(json!(1)),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.key, "json_pointer");
        let e = RawHttpExpect {
            json_pointer: Some("/a".into()),
            json_equals: Some(json!(1)),
            json_one_of: Some(vec![json!(1)]),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.key, "json_one_of");
        let e = RawHttpExpect {
            json_pointer: Some("status".into()),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.key, "json_pointer");
        let e = RawHttpExpect {
            status: Some(StatusSpec::Any(vec![])),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.key, "status");
    }
}

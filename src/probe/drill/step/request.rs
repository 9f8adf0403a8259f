//! Text with values saved by earlier steps, and the HTTP request the `http` action, its `undo`
//! and the `http` expectation send.
//!
//! `${saved.NAME}` stands for a value an earlier step saved: a JSON value an `http` action
//! captured with `save = { NAME = "/pointer" }`, or what an expectation observed with `save =
//! "NAME"`. Everything else is interpolated as any checklist text is (`${VAR}` from the
//! environment, when the checklist is loaded); saved values are put in when the step runs.
//! Shown text keeps `${saved.NAME}` as written, as it keeps `${VAR}`.
//!
//! `${drill.marker}` stands for the drill's marker: a text no other run and no other attempt
//! shares (`prodready-marker-` and 16 hex digits), for a line written through the system's
//! logger that an `expect = "log"` with `marker = true` then looks for. It is kept in the
//! saved values under [`MARKER_KEY`], a name no `save` can give (saved names have no dot).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::expect::{StatusMatch, StatusSpec};
use crate::probe::{FieldError, Validator};
use crate::units::Interpolated;

/// How a reference to a saved value starts.
const SAVED: &str = "${saved.";
/// The reference to the drill's marker.
const MARKER: &str = "${drill.marker}";
/// Where the drill's marker is kept among the saved values.
pub const MARKER_KEY: &str = "drill.marker";

/// One piece of a [`Template`].
#[derive(Debug, Clone)]
enum Part {
    /// Text, with `${VAR}` already interpolated.
    Text(Interpolated),
    /// `${saved.NAME}`.
    Saved(String),
    /// `${drill.marker}`.
    Marker,
}

/// Text that may refer to saved values (`${saved.NAME}`), put in when the step runs.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

impl From<Interpolated> for Template {
    /// Text without saved values.
    fn from(text: Interpolated) -> Template {
        Template {
            parts: vec![Part::Text(text)],
        }
    }
}

impl Template {
    /// Read `text`, the value of `key`: `${VAR}` interpolated now, `${saved.NAME}` kept.
    ///
    /// # Errors
    /// A [`FieldError`] at `key`: an unset variable, a malformed reference, an empty saved name.
    pub fn parse(v: &mut Validator, key: &str, text: &str) -> Result<Template, FieldError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        while let Some(pos) = next_reference(rest) {
            // `$${saved.x}` is the escape for the text `${saved.x}` (and `$${drill.marker}`).
            let escaped = pos > 0 && rest.as_bytes()[pos - 1] == b'$';
            let opener = if rest[pos..].starts_with(MARKER) {
                MARKER
            } else {
                SAVED
            };
            let after = &rest[pos + opener.len()..];
            if escaped {
                literal.push_str(&rest[..pos + opener.len()]);
                rest = after;
                continue;
            }
            if opener == MARKER {
                literal.push_str(&rest[..pos]);
                if !literal.is_empty() {
                    parts.push(Part::Text(
                        v.interpolate(key, &std::mem::take(&mut literal))?,
                    ));
                }
                parts.push(Part::Marker);
                rest = after;
                continue;
            }
            let end = after.find('}').ok_or_else(|| {
                FieldError::new(key, format!("unterminated ${{saved.NAME}} in \"{text}\""))
            })?;
            let name = &after[..end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(FieldError::new(
                    key,
                    format!(
                        "invalid saved name \"{name}\" in \"{text}\": expected letters, digits, _ and -"
                    ),
                ));
            }
            literal.push_str(&rest[..pos]);
            if !literal.is_empty() {
                parts.push(Part::Text(
                    v.interpolate(key, &std::mem::take(&mut literal))?,
                ));
            }
            parts.push(Part::Saved(name.to_string()));
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Text(v.interpolate(key, &literal)?));
        }
        Ok(Template { parts })
    }

    /// The saved names it refers to.
    pub fn saved_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Saved(n) => Some(n.as_str()),
            Part::Text(_) | Part::Marker => None,
        })
    }

    /// The text with the saved values put in (a string as is, any other JSON value as JSON).
    ///
    /// # Errors
    /// The first name nothing was saved under.
    pub fn resolve(&self, saved: &BTreeMap<String, Value>) -> Result<Interpolated, String> {
        let mut out = Interpolated::literal("");
        for p in &self.parts {
            match p {
                Part::Text(t) => {
                    out.value.push_str(&t.value);
                    out.display.push_str(&t.display);
                }
                Part::Saved(n) => {
                    let v = saved
                        .get(n)
                        .ok_or_else(|| format!("nothing was saved as \"{n}\""))?;
                    match v {
                        Value::String(s) => out.value.push_str(s),
                        other => out.value.push_str(&other.to_string()),
                    }
                    out.display.push_str(&format!("${{saved.{n}}}"));
                }
                Part::Marker => {
                    let m = saved
                        .get(MARKER_KEY)
                        .and_then(Value::as_str)
                        .ok_or("the drill has no marker")?;
                    // The marker is no secret: shown as is, to be found in the logs by eye.
                    out.value.push_str(m);
                    out.display.push_str(m);
                }
            }
        }
        Ok(out)
    }

    /// The text as written (secrets and saved values as references).
    pub fn display(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.display.clone(),
                Part::Saved(n) => format!("${{saved.{n}}}"),
                Part::Marker => MARKER.to_string(),
            })
            .collect()
    }
}

/// Where the next `${saved.` or `${drill.marker}` in `text` starts.
fn next_reference(text: &str) -> Option<usize> {
    match (text.find(SAVED), text.find(MARKER)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An HTTP request a step sends.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: reqwest::Method,
    /// The URL.
    pub url: Template,
    /// Headers.
    pub headers: Vec<(String, Template)>,
    /// The body.
    pub body: Option<Template>,
}

/// The request keys as written: `url` (under whatever key the step names it), `method`,
/// `headers`, `body`, each key named relative to the step with `prefix` (e.g. `undo.`).
pub struct RawRequest<'a> {
    /// The key naming the URL (`http`, `url`).
    pub url_key: &'a str,
    /// The URL.
    pub url: &'a str,
    /// `method`.
    pub method: Option<&'a str>,
    /// `headers`.
    pub headers: &'a BTreeMap<String, String>,
    /// `body`.
    pub body: Option<&'a str>,
}

impl RawRequest<'_> {
    /// Validate; keys in errors are prefixed with `prefix`.
    ///
    /// # Errors
    /// A [`FieldError`]: an invalid method or header name, a URL that is not http(s) once
    /// `${VAR}` is interpolated (a saved value may only follow the scheme and host), an unset
    /// variable.
    pub fn validate(self, v: &mut Validator, prefix: &str) -> Result<Request, FieldError> {
        let key = |k: &str| format!("{prefix}{k}");
        let url = Template::parse(v, &key(self.url_key), self.url)?;
        let head = match &url.parts[0] {
            Part::Text(t) => t.value.clone(),
            Part::Saved(_) | Part::Marker => String::new(),
        };
        if !(head.starts_with("http://") || head.starts_with("https://")) {
            return Err(FieldError::new(
                key(self.url_key),
                "expected an http:// or https:// URL (a ${saved.NAME} may follow its host)",
            ));
        }
        let method = match self.method {
            None => reqwest::Method::GET,
            Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| FieldError::new(key("method"), format!("invalid method \"{m}\"")))?,
        };
        let mut headers = Vec::new();
        for (k, val) in self.headers {
            let at = key(&format!("headers.{k}"));
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| FieldError::new(at.clone(), "invalid header name"))?;
            headers.push((k.clone(), Template::parse(v, &at, val)?));
        }
        let body = self
            .body
            .map(|b| Template::parse(v, &key("body"), b))
            .transpose()?;
        Ok(Request {
            method,
            url,
            headers,
            body,
        })
    }
}

impl Request {
    /// The saved names it refers to.
    pub fn saved_names(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.url.saved_names().collect();
        for (_, h) in &self.headers {
            out.extend(h.saved_names());
        }
        if let Some(b) = &self.body {
            out.extend(b.saved_names());
        }
        out
    }

    /// `POST http://…/login`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.url.display())
    }

    /// The request, with saved values put in, ready to send; and how it is shown.
    ///
    /// # Errors
    /// A name nothing was saved under.
    pub fn build(
        &self,
        client: &reqwest::Client,
        saved: &BTreeMap<String, Value>,
        timeout: Duration,
    ) -> Result<(reqwest::RequestBuilder, String), String> {
        let url = self.url.resolve(saved)?;
        let mut req = client
            .request(self.method.clone(), &url.value)
            .timeout(timeout);
        for (k, v) in &self.headers {
            req = req.header(k, v.resolve(saved)?.value);
        }
        if let Some(b) = &self.body {
            req = req.body(b.resolve(saved)?.value);
        }
        Ok((req, format!("{} {}", self.method, url.display)))
    }
}

/// The accepted statuses of `status` (default: any 2xx), validated by the `http` rules.
///
/// # Errors
/// A [`FieldError`] at `key`: a code outside 100–599 or an empty list.
pub fn status(key: &str, spec: Option<StatusSpec>) -> Result<StatusMatch, FieldError> {
    crate::expect::RawHttpExpect {
        status: spec,
        ..Default::default()
    }
    .validate()
    .map(|e| e.status)
    .map_err(|e| FieldError::new(key, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_references_are_kept_and_put_in_at_run_time() {
        let mut v = Validator::default();
        let t = Template::parse(&mut v, "k", "Bearer ${saved.token}; $${saved.x}").unwrap();
        assert_eq!(t.saved_names().collect::<Vec<_>>(), ["token"]);
        let saved = BTreeMap::from([("token".to_string(), Value::from("abc"))]);
        let r = t.resolve(&saved).unwrap();
        assert_eq!(r.value, "Bearer abc; ${saved.x}");
        assert_eq!(r.display, "Bearer ${saved.token}; $${saved.x}");
        assert!(t.resolve(&BTreeMap::new()).is_err());
        let e = Template::parse(&mut v, "k", "${saved.}").unwrap_err();
        assert_eq!(e.key, "k");
    }

    #[test]
    fn the_marker_is_put_in_and_shown_and_its_escape_is_kept() {
        let mut v = Validator::default();
        let t = Template::parse(
            &mut v,
            "k",
            "id=${drill.marker}; ${saved.t} $${drill.marker}",
        )
        .unwrap();
        assert_eq!(t.saved_names().collect::<Vec<_>>(), ["t"]);
        assert_eq!(
            t.display(),
            "id=${drill.marker}; ${saved.t} $${drill.marker}"
        );
        let saved = BTreeMap::from([
            ("t".to_string(), Value::from("x")),
            (MARKER_KEY.to_string(), Value::from("prodready-marker-00ff")),
        ]);
        let r = t.resolve(&saved).unwrap();
        assert_eq!(r.value, "id=prodready-marker-00ff; x ${drill.marker}");
        assert_eq!(
            r.display,
            "id=prodready-marker-00ff; ${saved.t} $${drill.marker}"
        );
        let no_marker = BTreeMap::from([("t".to_string(), Value::from("x"))]);
        assert!(t.resolve(&no_marker).is_err());
    }
}

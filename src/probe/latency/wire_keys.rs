//! The `latency` probe's keys of what goes over the wire, per transport, validated into a
//! [`Wire`]: the HTTP request (`http_version`, `method`, `headers`, `body`, the acknowledgement
//! expectation `status` … `json_one_of`), the WebSocket message (`body`, `match`,
//! `match_request`, the acknowledgement condition `json_pointer` …), and the FIX session and
//! order (the session keys shared with the soak, [`crate::order::keys`]; `order`, `until`).
//!
//! A key of another transport is an error: a key that does nothing must not look as if it
//! did.

use std::time::Duration;

use super::config::RawLatencyProbe;
use super::load::websocket::WsWire;
use super::load::{HttpWire, Wire};
use crate::fix::tag;
use crate::order::connect::Version;
use crate::order::fix::{FixWire, Until};
use crate::order::keys::{order_template, session_keys};
use crate::order::template::{Rng, Template};
use crate::order::transport::{Transport, split_fix_url, split_url};
use crate::order::websocket::correlation_id;
use crate::probe::expect::{HttpExpect, RawHttpExpect, check_pointer};
use crate::probe::{FieldError, Validator, refuse_keys};

impl RawLatencyProbe {
    /// The endpoint and what goes over it: the URL split by its transport's rules (TLS or
    /// not, host, port), `ca_file` only with TLS, and the transport's own keys, the other
    /// transports' keys refused.
    pub(super) fn wire(
        &self,
        v: &mut Validator,
        transport: Transport,
        url: &str,
    ) -> Result<(bool, String, u16, Wire), FieldError> {
        let (tls, host, port, path_text) = if transport == Transport::Fix {
            let (tls, host, port) = split_fix_url(url).map_err(|m| FieldError::new("url", m))?;
            (tls, host, port, String::new())
        } else {
            self.no_fix_keys()?;
            split_url(url, transport).map_err(|m| FieldError::new("url", m))?
        };
        if self.ca_file.is_some() && !tls {
            return Err(FieldError::new(
                "ca_file",
                format!(
                    "a CA file is for {1}:// URLs; this one is {0}://",
                    transport.schemes().0,
                    transport.schemes().1
                ),
            ));
        }
        let wire = match transport {
            Transport::Http => Wire::Http(self.http_wire(v, tls, &host, port, &path_text)?),
            Transport::WebSocket => Wire::WebSocket(self.ws_wire(v, url, &path_text)?),
            Transport::Fix => Wire::Fix(Box::new(self.fix_wire(v)?)),
        };
        Ok((tls, host, port, wire))
    }

    /// The HTTP wire: version, method, headers, path and body templates, the expectation.
    fn http_wire(
        &self,
        v: &mut Validator,
        tls: bool,
        host: &str,
        port: u16,
        path_text: &str,
    ) -> Result<HttpWire, FieldError> {
        refuse_keys(
            &[
                ("match", self.match_response.is_some()),
                ("match_request", self.match_request.is_some()),
            ],
            "only for transport = \"websocket\" (HTTP answers are matched by their connection)",
        )?;
        let version = self.version()?;
        let path = Template::parse(path_text).map_err(|m| FieldError::new("url", m))?;
        let body = self.body_template(v)?;
        let method = self.method(body.is_some())?;
        let headers = self.headers(v, body.is_some())?;
        let expect = self.expect()?;
        Ok(HttpWire {
            version,
            host: if port == if tls { 443 } else { 80 } {
                host.to_string()
            } else {
                format!("{host}:{port}")
            },
            method,
            path,
            body,
            headers,
            expect,
        })
    }

    /// The WebSocket wire: the handshake's URL and headers, the order message, the match
    /// pointers and the acknowledgement condition.
    fn ws_wire(&self, v: &mut Validator, url: &str, path_text: &str) -> Result<WsWire, FieldError> {
        refuse_keys(
            &[
                ("method", self.method.is_some()),
                ("http_version", self.http_version.is_some()),
                ("status", self.status.is_some()),
                ("body_contains", self.body_contains.is_some()),
            ],
            "not used with transport = \"websocket\" (acknowledgements are checked with json_pointer and json_equals or json_one_of)",
        )?;
        let path = Template::parse(path_text).map_err(|m| FieldError::new("url", m))?;
        if !path.is_constant() {
            return Err(FieldError::new(
                "url",
                "a WebSocket URL is opened once per connection: put the placeholders in body",
            ));
        }
        let message = self.body_template(v)?.ok_or_else(|| {
            FieldError::new(
                "body",
                "transport = \"websocket\" needs body, the order message template",
            )
        })?;
        let response_match = self.match_response.clone().ok_or_else(|| {
            FieldError::new(
                "match",
                "transport = \"websocket\" needs match, the JSON pointer of the correlation id in an answer (e.g. \"/client_order_id\")",
            )
        })?;
        let request_match = self
            .match_request
            .clone()
            .unwrap_or_else(|| response_match.clone());
        check_pointer("match", &response_match)?;
        check_pointer("match_request", &request_match)?;
        // The first order must render to JSON holding its id, or every order fails alike.
        let mut rendered = String::new();
        message.render(0, &mut Rng::new(1), &mut rendered);
        let doc: serde_json::Value = serde_json::from_str(&rendered).map_err(|e| {
            FieldError::new(
                "body",
                format!("the rendered order message is not JSON: {e}"),
            )
        })?;
        if correlation_id(&doc, &request_match).is_none() {
            return Err(FieldError::new(
                if self.match_request.is_some() {
                    "match_request"
                } else {
                    "match"
                },
                format!("the rendered order message has no string or number at {request_match}"),
            ));
        }
        Ok(WsWire {
            url: url.to_string(),
            headers: self.headers(v, false)?,
            message,
            request_match,
            response_match,
            ack: self.expect()?.json,
        })
    }

    /// With HTTP or WebSocket, none of the FIX keys.
    fn no_fix_keys(&self) -> Result<(), FieldError> {
        let mut fix_keys = session_keys!(self).given().to_vec();
        fix_keys.extend([
            ("order", self.order.is_some()),
            ("until", self.until.is_some()),
        ]);
        refuse_keys(&fix_keys, "applies only to transport = \"fix\"")
    }

    /// The FIX wire: the session and the order template; HTTP and WebSocket keys are errors.
    fn fix_wire(&self, v: &mut Validator) -> Result<FixWire, FieldError> {
        let other_keys = [
            ("http_version", self.http_version.is_some()),
            ("method", self.method.is_some()),
            ("headers", !self.headers.is_empty()),
            ("body", self.body.is_some()),
            ("match", self.match_response.is_some()),
            ("match_request", self.match_request.is_some()),
        ];
        refuse_keys(
            &[&other_keys[..], &self.expect_keys().given()[..]].concat(),
            "does not apply to transport = \"fix\" (the order is `order`, its answer an ExecutionReport)",
        )?;
        let session = session_keys!(self).validate(&mut v.redactor)?;
        let (order, tags) = order_template(&mut v.redactor, "order", self.order.as_deref())?;
        let until = match self.until.as_deref() {
            None | Some("ack") => Until::Ack,
            Some("fill") => Until::Fill,
            Some(other) => {
                return Err(FieldError::new(
                    "until",
                    format!("expected \"ack\" or \"fill\", found \"{other}\""),
                ));
            }
        };
        Ok(FixWire {
            session,
            order,
            transact_time: !tags.contains(&tag::TRANSACT_TIME),
            until,
            timeout: Duration::from_secs(10),
        })
    }

    /// The `body` template, `${VAR}` interpolated.
    fn body_template(&self, v: &mut Validator) -> Result<Option<Template>, FieldError> {
        self.body
            .as_deref()
            .map(|b| {
                let b = v.interpolate("body", b)?;
                Template::parse(&b.value).map_err(|m| FieldError::new("body", m))
            })
            .transpose()
    }

    /// The acknowledgement expectation keys (`status`, `body_contains`, `json_pointer`,
    /// `json_equals`, `json_one_of`), as written: the shared block of [`crate::probe::expect`].
    fn expect_keys(&self) -> RawHttpExpect {
        crate::keys::http_expect!(self)
    }

    /// The acknowledgement expectation (status, body, JSON pointer), validated by the rules of
    /// [`crate::probe::expect`].
    fn expect(&self) -> Result<HttpExpect, FieldError> {
        self.expect_keys().validate()
    }

    /// `http_version`: `"1.1"` (default) or `"2"`.
    fn version(&self) -> Result<Version, FieldError> {
        match self.http_version.as_deref() {
            None | Some("1.1") => Ok(Version::Http1),
            Some("2") => Ok(Version::Http2),
            Some(other) => Err(FieldError::new(
                "http_version",
                format!("expected \"1.1\" or \"2\", found \"{other}\""),
            )),
        }
    }

    /// `method`, by default `POST` with a body and `GET` without.
    fn method(&self, has_body: bool) -> Result<http::Method, FieldError> {
        let text = self
            .method
            .clone()
            .unwrap_or_else(|| if has_body { "POST" } else { "GET" }.into());
        http::Method::from_bytes(text.to_ascii_uppercase().as_bytes())
            .map_err(|_| FieldError::new("method", format!("invalid HTTP method \"{text}\"")))
    }

    /// Request headers (`${VAR}` interpolated, validated); `Content-Type: application/json`
    /// is added when there is a body and no header says otherwise.
    fn headers(
        &self,
        v: &mut Validator,
        has_body: bool,
    ) -> Result<Vec<(http::header::HeaderName, http::header::HeaderValue)>, FieldError> {
        let mut headers = Vec::new();
        let mut has_content_type = false;
        for (k, val) in &self.headers {
            let key = format!("headers.{k}");
            let name = http::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| FieldError::new(&key, "invalid header name"))?;
            if name == http::header::HOST {
                return Err(FieldError::new(&key, "Host is set from the URL"));
            }
            has_content_type |= name == http::header::CONTENT_TYPE;
            let value = v.interpolate(&key, val)?;
            let hv = http::header::HeaderValue::from_str(&value.value)
                .map_err(|_| FieldError::new(&key, "invalid header value"))?;
            headers.push((name, hv));
        }
        if has_body && !has_content_type {
            headers.push((
                http::header::CONTENT_TYPE,
                http::header::HeaderValue::from_static("application/json"),
            ));
        }
        Ok(headers)
    }
}

//! The `http` probe: one request to a health or API endpoint; checks the status, the body
//! (substring or JSON pointer, RFC 6901), the latency and, over HTTPS, how many days the peer
//! certificate has left.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::expect::HttpExpect;
pub use crate::expect::StatusSpec;
use crate::keys::{http_expect, shared_keys};
use crate::model::{Check, ProbeOutput, Status};
use crate::units::{Interpolated, format_duration};

shared_keys! {
    [http_expect]
/// `kind = "http"`: request a URL.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpProbe {
    /// The URL; `${VAR}` is interpolated.
    pub url: String,
    /// HTTP method. Default `GET`.
    pub method: Option<String>,
    /// Request headers; values may use `${VAR}` (shown redacted).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body; `${VAR}` is interpolated.
    pub body: Option<String>,
    /// Maximum round-trip latency (humantime).
    pub max_latency: Option<String>,
    /// Minimum days left on the peer certificate (https only).
    pub min_cert_days: Option<u32>,
    /// A PEM file of extra trusted CA certificates, relative to the checklist.
    pub ca_file: Option<String>,
    /// Request timeout (humantime). Default `"10s"`.
    pub timeout: Option<String>,
    /// Follow redirects. Default false: a redirect is reported as its own status.
    #[serde(default)]
    pub follow_redirects: bool,
}
}

/// A validated `http` probe.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    url: Interpolated,
    method: reqwest::Method,
    headers: Vec<(String, Interpolated)>,
    body: Option<Interpolated>,
    expect: HttpExpect,
    max_latency: Option<Duration>,
    min_cert_days: Option<u32>,
    ca_file: Option<PathBuf>,
    timeout: Duration,
    follow_redirects: bool,
}

impl RawHttpProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<HttpProbe, FieldError> {
        let (url, parsed) = v.http_url("url", &self.url)?;
        if self.min_cert_days.is_some() && parsed.scheme() != "https" {
            return Err(FieldError::new(
                "min_cert_days",
                "certificate days can only be checked on an https:// URL",
            ));
        }
        let method = match &self.method {
            None => reqwest::Method::GET,
            Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| FieldError::new("method", format!("invalid HTTP method \"{m}\"")))?,
        };
        let mut headers = Vec::new();
        for (k, val) in &self.headers {
            reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| FieldError::new(format!("headers.{k}"), "invalid header name"))?;
            headers.push((k.clone(), v.interpolate(&format!("headers.{k}"), val)?));
        }
        let body = self
            .body
            .as_deref()
            .map(|b| v.interpolate("body", b))
            .transpose()?;
        let expect = http_expect!(self).validate()?;
        Ok(HttpProbe {
            url,
            method,
            headers,
            body,
            expect,
            max_latency: self
                .max_latency
                .as_deref()
                .map(|t| v.duration("max_latency", t))
                .transpose()?,
            min_cert_days: self.min_cert_days,
            ca_file: self.ca_file.map(PathBuf::from),
            timeout: self
                .timeout
                .as_deref()
                .map(|t| v.duration("timeout", t))
                .transpose()?
                .unwrap_or(Duration::from_secs(10)),
            follow_redirects: self.follow_redirects,
        })
    }
}

/// One response, read whole.
struct Exchange {
    status: u16,
    /// Days left on the peer certificate (https).
    cert_days: Option<i64>,
    body: bytes::Bytes,
    latency: Duration,
}

impl HttpProbe {
    /// The same probe with another request timeout (a soak monitor's per-check timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> HttpProbe {
        self.timeout = timeout;
        self
    }

    fn client(&self, ctx: &ProbeContext) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .timeout(self.timeout)
            .tls_info(true)
            .redirect(if self.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
        if let Some(ca) = &self.ca_file {
            b = trust_ca_file(b, &ctx.resolve(ca))?;
        }
        b.build()
            .map_err(|e| format!("building the HTTP client: {e}"))
    }

    /// Make the request once.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        match self.exchange(ctx).await {
            Ok(ex) => self.judge(ctx, ex),
            Err(o) => o,
        }
    }

    /// Send the request and read the whole response; an `error` outcome when that fails.
    async fn exchange(&self, ctx: &ProbeContext) -> Result<Exchange, ProbeOutput> {
        let client = match self.client(ctx) {
            Ok(c) => c,
            Err(e) => return Err(ProbeOutput::error(e)),
        };
        let mut req = client.request(self.method.clone(), &self.url.value);
        for (k, v) in &self.headers {
            req = req.header(k, &v.value);
        }
        if let Some(b) = &self.body {
            req = req.body(b.value.clone());
        }
        let shown = format!("{} {}", self.method, self.url.display);
        let started = Instant::now();
        let resp = tokio::select! {
            r = req.send() => r,
            _ = ctx.cancel.cancelled() => return Err(ProbeOutput::error(format!("{shown}: interrupted"))),
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                let mut detail = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    detail = format!("{detail}: {s}");
                    src = s.source();
                }
                return Err(ProbeOutput::error(
                    ctx.redactor.redact(&format!("{shown}: {kind}: {detail}")),
                ));
            }
        };
        let status = resp.status().as_u16();
        let cert_days = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .and_then(cert_days_left);
        let body = tokio::select! {
            b = resp.bytes() => b,
            _ = ctx.cancel.cancelled() => return Err(ProbeOutput::error(format!("{shown}: interrupted"))),
        };
        let latency = started.elapsed();
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                return Err(ProbeOutput::error(format!(
                    "{shown}: reading the body failed: {e}"
                )));
            }
        };
        Ok(Exchange {
            status,
            cert_days,
            body,
            latency,
        })
    }

    /// The checks on a response: status, body, JSON pointer, latency, certificate days.
    fn judge(&self, ctx: &ProbeContext, ex: Exchange) -> ProbeOutput {
        let shown = format!("{} {}", self.method, self.url.display);
        let Exchange {
            status,
            cert_days,
            body,
            latency,
        } = ex;
        let text = String::from_utf8_lossy(&body);

        let mut o = ProbeOutput::default();
        o.measure("status", status);
        o.measure("latency_ms", latency.as_secs_f64() * 1e3);
        o.measure("body_bytes", body.len() as u64);
        o.checks.push(Check::new(
            "status",
            format!("= {}", self.expect.status.describe()),
            status.to_string(),
            self.expect.status.accepts(status),
        ));
        if let Some(s) = &self.expect.body_contains {
            let ok = text.contains(s.as_str());
            o.checks.push(Check::new(
                "body",
                format!("contains \"{s}\""),
                if ok { "found" } else { "not found" },
                ok,
            ));
        }
        if let Some(s) = &self.expect.body_not_contains {
            let ok = !text.contains(s.as_str());
            o.checks.push(Check::new(
                "body",
                format!("does not contain \"{s}\""),
                if ok { "not found" } else { "found" },
                ok,
            ));
        }
        if let Some(j) = &self.expect.json {
            let (shown, ok) = match j.check(&body) {
                Ok(got) => (got.to_string(), true),
                Err(e) => (e, false),
            };
            o.checks.push(Check::new(
                format!("json {}", j.pointer),
                j.describe(),
                shown,
                ok,
            ));
        }
        if let Some(max) = self.max_latency {
            o.checks.push(Check::new(
                "latency",
                format!("≤ {}", format_duration(max)),
                format_duration(latency),
                latency <= max,
            ));
        }
        self.cert_check(&mut o, cert_days);
        let snippet: String = text.chars().take(2000).collect();
        o.log_tail = Some(
            ctx.redactor
                .redact(&format!("{shown} → {status}\n{snippet}")),
        );
        o.summary = format!("{shown} → {status} in {}", format_duration(latency));
        o
    }

    /// The certificate check: days left on the peer certificate; none seen is an error.
    fn cert_check(&self, o: &mut ProbeOutput, cert_days: Option<i64>) {
        let Some(min) = self.min_cert_days else {
            return;
        };
        match cert_days {
            Some(days) => {
                o.measure("cert_days_left", days);
                o.checks.push(Check::new(
                    "certificate",
                    format!("≥ {min} days left"),
                    format!("{days} days left"),
                    days >= i64::from(min),
                ));
            }
            None => {
                o.forced = Some(Status::Error);
                o.checks.push(Check::new(
                    "certificate",
                    format!("≥ {min} days left"),
                    "no peer certificate seen",
                    false,
                ));
            }
        }
    }
}

/// Trust the certificates of a PEM bundle at `path` besides the built-in roots.
///
/// # Errors
/// `"reading CA file …"` or `"CA file …: …"` when it cannot be read or parsed.
pub fn trust_ca_file(
    mut b: reqwest::ClientBuilder,
    path: &std::path::Path,
) -> Result<reqwest::ClientBuilder, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("reading CA file {}: {e}", path.display()))?;
    for cert in reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("CA file {}: {e}", path.display()))?
    {
        b = b.add_root_certificate(cert);
    }
    Ok(b)
}

/// Whole days until the certificate's notAfter (negative when expired).
fn cert_days_left(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let now = jiff::Timestamp::now().as_second();
    Some((not_after - now).div_euclid(86_400))
}

crate::probe::probe_kind!(HttpProbe, RawHttpProbe, async);

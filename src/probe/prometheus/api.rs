//! The Prometheus HTTP API (v1) as the `prometheus` and `uptime` probes use it: one validated
//! [`Server`] (base URL, bearer token or basic auth from `${VAR}`, extra CA file, timeout) and
//! its three calls, `/api/v1/query`, `/api/v1/query_range` and `/api/v1/rules`.
//!
//! Source: <https://prometheus.io/docs/prometheus/latest/querying/api/>. Every answer is the
//! envelope `{"status": "success" | "error", "data": …, "errorType": …, "error": …}`; an error
//! envelope, a non-JSON answer (a proxy's 503 page), an unreachable server and a timeout all
//! become one message that names the call and quotes the server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::probe::{FieldError, ProbeContext, Validator};
use crate::units::{Interpolated, format_duration};

/// `basic_auth = { username = "…", password = "${PROM_PASSWORD}" }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    /// The user name; `${VAR}` is interpolated.
    pub username: String,
    /// The password; `${VAR}` is interpolated and redacted.
    pub password: String,
}

/// The connection keys every Prometheus-backed probe table has, as written.
#[derive(Debug, Default)]
pub struct RawServer {
    /// `url`: the server's base URL, e.g. `http://127.0.0.1:9090`.
    pub url: Option<String>,
    /// `bearer_token`.
    pub bearer_token: Option<String>,
    /// `basic_auth`.
    pub basic_auth: Option<RawBasicAuth>,
    /// `ca_file`.
    pub ca_file: Option<String>,
    /// `timeout` (humantime).
    pub timeout: Option<String>,
}

/// Declare a raw probe table with its own fields, then the server keys every
/// Prometheus-backed probe table takes under the same names: `url` (required), `bearer_token`,
/// `basic_auth`, `ca_file` and `timeout`. serde cannot flatten them into a table that refuses
/// unknown keys, so they are written into each table; [`raw_server!`] reads them back as a
/// [`RawServer`]. The struct's own fields need a trailing comma.
macro_rules! server_keys {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $(#[$m])* $vis struct $name {
            /// The server's base URL, e.g. `http://127.0.0.1:9090`; `${VAR}` is interpolated.
            pub url: String,
            /// A bearer token, e.g. `"${PROM_TOKEN}"` (redacted in reports).
            pub bearer_token: Option<String>,
            /// HTTP basic auth; the password from `${VAR}`.
            pub basic_auth: Option<$crate::probe::prometheus::api::RawBasicAuth>,
            /// A PEM file of extra trusted CA certificates, relative to the checklist.
            pub ca_file: Option<String>,
            /// Request timeout (humantime). Default `"10s"`.
            pub timeout: Option<String>,
            $($body)*
        }
    };
}
pub(crate) use server_keys;

/// The [`RawServer`] of a raw table declared with [`server_keys!`], its keys moved out.
macro_rules! raw_server {
    ($raw:expr) => {
        $crate::probe::prometheus::api::RawServer {
            url: Some($raw.url),
            bearer_token: $raw.bearer_token,
            basic_auth: $raw.basic_auth,
            ca_file: $raw.ca_file,
            timeout: $raw.timeout,
        }
    };
}
pub(crate) use raw_server;

/// How requests authenticate.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(Interpolated),
    Basic {
        username: Interpolated,
        password: Interpolated,
    },
}

/// A validated Prometheus server to query.
#[derive(Debug, Clone)]
pub struct Server {
    base: Interpolated,
    auth: Auth,
    ca_file: Option<PathBuf>,
    timeout: Duration,
}

impl RawServer {
    /// Validate: `url` is required and http(s); `bearer_token` and `basic_auth` exclude each
    /// other; `timeout` defaults to 10 s.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<Server, FieldError> {
        let Some(url) = self.url else {
            return Err(FieldError::new(
                "url",
                "expected the Prometheus server's base URL, e.g. \"http://127.0.0.1:9090\"",
            ));
        };
        let (mut base, _) = v.http_url("url", &url)?;
        for s in [&mut base.value, &mut base.display] {
            while s.ends_with('/') {
                s.pop();
            }
        }
        let auth = match (self.bearer_token, self.basic_auth) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "basic_auth",
                    "expected either bearer_token or basic_auth, not both",
                ));
            }
            (Some(t), None) => Auth::Bearer(v.interpolate("bearer_token", &t)?),
            (None, Some(b)) => Auth::Basic {
                username: v.interpolate("basic_auth.username", &b.username)?,
                password: v.interpolate("basic_auth.password", &b.password)?,
            },
            (None, None) => Auth::None,
        };
        let timeout = match self.timeout {
            Some(t) => v.duration("timeout", &t)?,
            None => Duration::from_secs(10),
        };
        if timeout.is_zero() {
            return Err(FieldError::new("timeout", "expected a duration above 0"));
        }
        Ok(Server {
            base,
            auth,
            ca_file: self.ca_file.map(PathBuf::from),
            timeout,
        })
    }
}

/// The `data` of a query answer, by `resultType`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum QueryData {
    /// One sample per series (instant queries).
    Vector(Vec<RawSeries>),
    /// Many samples per series (range queries, or a range selector).
    Matrix(Vec<RawSeries>),
    /// One number: `[unix seconds, "value"]`.
    Scalar((f64, String)),
    /// One string: `[unix seconds, "text"]`.
    String((f64, String)),
}

impl QueryData {
    /// The result type as Prometheus names it.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "matrix",
            QueryData::Scalar(_) => "scalar",
            QueryData::String(_) => "string",
        }
    }
}

/// A series as the API sends it: labels and one `value` (vector) or many `values` (matrix),
/// each `[unix seconds, "number"]`; native histograms come as `histogram(s)` instead.
#[derive(Debug, Clone, Deserialize)]
pub struct RawSeries {
    /// The labels, `__name__` included when the series has one.
    pub metric: BTreeMap<String, String>,
    /// The sample of a vector.
    pub value: Option<(f64, String)>,
    /// The samples of a matrix.
    #[serde(default)]
    pub values: Vec<(f64, String)>,
    /// A native histogram sample (not a number).
    pub histogram: Option<serde_json::Value>,
    /// Native histogram samples (not numbers).
    pub histograms: Option<serde_json::Value>,
}

/// A series with numeric samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels.
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)`, oldest first; every value finite.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The series as PromQL writes it: `name{a="1", b="2"}`, or `{}` without labels.
    pub fn name(&self) -> String {
        series_name(&self.labels)
    }
}

/// `name{a="1", b="2"}` from a label set.
pub fn series_name(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// Parse one sample value; Prometheus sends numbers as strings (`"1"`, `"NaN"`, `"+Inf"`).
///
/// # Errors
/// `"<series> at <time>: value \"x\" is not a finite number"` for NaN, ±Inf and text.
fn number(series: &str, (t, v): &(f64, String)) -> Result<(f64, f64), String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok((*t, x)),
        _ => Err(format!(
            "{series} at {}: value {v:?} is not a finite number",
            crate::store::summary::fmt_time((*t * 1e3) as i64)
        )),
    }
}

impl RawSeries {
    /// The numeric series.
    ///
    /// # Errors
    /// A message naming the series when a value is NaN, infinite, text or a native histogram.
    pub fn numeric(self) -> Result<Series, String> {
        let name = series_name(&self.metric);
        if self.histogram.is_some() || self.histograms.is_some() {
            return Err(format!(
                "{name}: a native histogram is not a number (use histogram_quantile() or histogram_count())"
            ));
        }
        let points = self
            .value
            .iter()
            .chain(self.values.iter())
            .map(|p| number(&name, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Series {
            labels: self.metric,
            points,
        })
    }
}

/// One alerting or recording rule from `/api/v1/rules`.
#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    /// The alert's (or recorded series') name.
    pub name: String,
    /// `alerting` or `recording`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    #[serde(default)]
    pub health: String,
    /// The last evaluation's error, when `health` is `err`.
    #[serde(rename = "lastError", default)]
    pub last_error: Option<String>,
    /// Alerting rules: `inactive`, `pending` or `firing`.
    #[serde(default)]
    pub state: Option<String>,
    /// Alerting rules: the active alerts (pending or firing).
    #[serde(default)]
    pub alerts: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Groups {
    groups: Vec<Group>,
}

/// A rule group and its file.
#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// The rule file it was loaded from.
    #[serde(default)]
    pub file: String,
    /// Its rules.
    pub rules: Vec<Rule>,
}

/// The response envelope.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<serde_json::Value>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

impl Server {
    /// The base URL as written (secrets redacted).
    pub fn shown(&self) -> &str {
        &self.base.display
    }

    fn client(&self, ctx: &ProbeContext) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder().timeout(self.timeout);
        if let Some(ca) = &self.ca_file {
            b = crate::probe::http::trust_ca_file(b, &ctx.resolve(ca))?;
        }
        b.build()
            .map_err(|e| format!("building the HTTP client: {e}"))
    }

    /// `GET <url><path>?<params>` and the envelope's `data`.
    ///
    /// # Errors
    /// `"<url><path>: <what went wrong>"`: connection failed, timed out after the timeout,
    /// HTTP status with the body's start, or the server's `errorType: error`.
    async fn get(
        &self,
        ctx: &ProbeContext,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<serde_json::Value, String> {
        let shown = format!("{}{path}", self.base.display);
        let mut req = self
            .client(ctx)?
            .get(format!("{}{path}", self.base.value))
            .query(params);
        req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(&t.value),
            Auth::Basic { username, password } => {
                req.basic_auth(&username.value, Some(&password.value))
            }
        };
        let sent = async {
            let resp = req.send().await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.bytes().await?))
        };
        let (status, body) = tokio::select! {
            r = sent => r.map_err(|e| {
                let what = if e.is_timeout() {
                    format!("timed out after {}", format_duration(self.timeout))
                } else if e.is_connect() {
                    "connection failed".into()
                } else {
                    "request failed".into()
                };
                ctx.redactor.redact(&format!("{shown}: {what}: {}", crate::units::error_chain(&e)))
            })?,
            _ = ctx.cancel.cancelled() => return Err(format!("{shown}: interrupted")),
        };
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|_| {
            let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            ctx.redactor.redact(&format!(
                "{shown}: HTTP {status}, not a Prometheus API answer: {}",
                text.trim()
            ))
        })?;
        if envelope.status != "success" {
            return Err(ctx.redactor.redact(&format!(
                "{shown}: HTTP {status}: {}: {}",
                envelope.error_type.as_deref().unwrap_or("error"),
                envelope.error.as_deref().unwrap_or("(no message)")
            )));
        }
        envelope
            .data
            .ok_or_else(|| format!("{shown}: HTTP {status}: the answer has no data"))
    }

    /// An instant query at `time` (unix seconds; `None`: the server's now).
    ///
    /// # Errors
    /// ``query `EXPR`: URL: …``: connection failed, timed out, HTTP status with the
    /// body's start, or the server's `errorType: error`.
    pub async fn query(
        &self,
        ctx: &ProbeContext,
        expr: &str,
        time: Option<f64>,
    ) -> Result<QueryData, String> {
        let mut params = vec![("query", expr.to_string())];
        if let Some(t) = time {
            params.push(("time", format!("{t:.3}")));
        }
        let data = self
            .get(ctx, "/api/v1/query", &params)
            .await
            .map_err(|e| format!("query `{expr}`: {e}"))?;
        serde_json::from_value(data).map_err(|e| format!("query `{expr}`: unexpected data: {e}"))
    }

    /// A range query over `[start, end]` (unix seconds) every `step`.
    ///
    /// # Errors
    /// ``query `EXPR`: URL: …``: connection failed, timed out, HTTP status with the
    /// body's start, or the server's `errorType: error`.
    pub async fn query_range(
        &self,
        ctx: &ProbeContext,
        expr: &str,
        (start, end): (f64, f64),
        step: Duration,
    ) -> Result<QueryData, String> {
        let params = [
            ("query", expr.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{}", step.as_secs_f64())),
        ];
        let data = self
            .get(ctx, "/api/v1/query_range", &params)
            .await
            .map_err(|e| format!("range query `{expr}`: {e}"))?;
        serde_json::from_value(data)
            .map_err(|e| format!("range query `{expr}`: unexpected data: {e}"))
    }

    /// Every alerting rule group the server has loaded.
    ///
    /// # Errors
    /// `"<url>: …"` as for [`Server::query`].
    pub async fn alert_rules(&self, ctx: &ProbeContext) -> Result<Vec<Group>, String> {
        let data = self
            .get(ctx, "/api/v1/rules", &[("type", "alert".to_string())])
            .await?;
        serde_json::from_value::<Groups>(data)
            .map(|g| g.groups)
            .map_err(|e| format!("{}/api/v1/rules: unexpected data: {e}", self.base.display))
    }
}

/// A duration as PromQL writes it: whole seconds (`2592000s`), or milliseconds.
pub fn promql_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

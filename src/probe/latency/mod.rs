//! The `latency` probe: order round-trip latency under a constant-rate open-model load
//! (docs/latency.md).
//!
//! Closed-loop load generators wait for a response before sending the next request, so a
//! stalled server also stalls the measurement and the tail disappears (coordinated omission,
//! Gil Tene). This probe sends on a fixed schedule (`start + i / rate`, [`load`]) and measures
//! each latency from the *intended* send time into an HdrHistogram ([`record`]); an uncorrected
//! twin, measured from the actual send, shows how much the correction mattered. It reports
//! count, achieved rate, errors by kind, mean, p50, p90, p99, p99.9, p99.99 and max, the
//! schedule lag, and exports `.hlog` / `.hgrm` files and an SVG percentile chart ([`chart`]).
//!
//! Fail closed: fewer than `min_samples` measured responses, a target that never answered,
//! or a rate that was not sustained are `error`, never `pass`.

pub mod chart;
pub mod fix_keys;
pub mod load;
pub mod record;
pub mod template;
pub mod verdict;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::Deserialize;

use super::http::StatusSpec;
use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Status, Table};
use crate::probe::expect::{RawHttpExpect, check_pointer};
use crate::units::format_duration;
use load::{HttpWire, Plan, Wire};
use template::Template;
use verdict::{Blame, Lateness, value_us};

/// Share of the requested rate that must be achieved for the run to count as sustained.
pub const SUSTAINED_SHARE: f64 = 0.95;

/// Absolute slack on the send span before a rate counts as not sustained: one scheduling
/// hiccup of a busy machine (a stalled process is descheduled for tens to hundreds of
/// milliseconds) must not turn a short run into a failure. A target that cannot keep up falls
/// behind in proportion to the run and exceeds it; its lateness is in the corrected latency
/// either way.
pub const SUSTAINED_SLACK_S: f64 = 0.25;

/// `kind = "latency"`: order round-trip latency under an open-model load.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLatencyProbe {
    /// How orders travel: `"http"` (default: one request per order, HTTP/1.1 or HTTP/2),
    /// `"websocket"` (one JSON message per order on a WebSocket, RFC 6455, pipelined and
    /// matched by `match`), or `"fix"` (FIX 4.2/4.4 tag=value sessions sending NewOrderSingle
    /// (35=D) from `order`, pipelined and matched by ClOrdID(11)).
    pub transport: Option<String>,
    /// Target URL: `http://` or `https://` for HTTP, `ws://` or `wss://` for WebSocket,
    /// `fix+tcp://HOST:PORT` or `fix+tls://HOST:PORT` for FIX. `${VAR}` is interpolated; an
    /// HTTP path and query may use the request placeholders (`{{seq}}`, `{{uuid}}`,
    /// `{{now_ms}}`, `{{rand_int LO HI}}`, `{{choice A B ...}}`).
    pub url: String,
    /// FIX: `"4.4"` (default) or `"4.2"`, the BeginString(8).
    pub fix_version: Option<String>,
    /// FIX: our SenderCompID(49). Required with `transport = "fix"`.
    pub sender_comp_id: Option<String>,
    /// FIX: the counterparty's CompID, our TargetCompID(56). Required with `transport = "fix"`.
    pub target_comp_id: Option<String>,
    /// FIX: HeartBtInt(108), whole seconds (humantime). Default `"30s"`.
    pub heartbeat: Option<String>,
    /// FIX: send ResetSeqNumFlag(141)=Y on Logon, so both sides start at MsgSeqNum 1.
    /// Default true.
    pub reset_seq_num: Option<bool>,
    /// FIX: Username(553) on Logon; use `${VAR}` (redacted in reports).
    pub username: Option<String>,
    /// FIX: Password(554) on Logon; use `${VAR}` (redacted in reports).
    pub password: Option<String>,
    /// FIX: the NewOrderSingle (35=D) body as `tag=value` fields separated by `|`, with the
    /// request placeholders, e.g. `"11={{seq}}|55=NIFTY|54=1|38=1|40=1|59=0"`. ClOrdID(11) is
    /// required and must hold a placeholder; the session writes the header, and
    /// TransactTime(60) when the template has none. Add `21=1` (HandlInst) for FIX 4.2.
    /// Required with `transport = "fix"`.
    pub order: Option<String>,
    /// FIX: where an order's latency ends: `"ack"` (default), its first ExecutionReport
    /// (35=8), or `"fill"`, the ExecutionReport with OrdStatus(39)=2. OrdStatus=8
    /// (`rejected`), a BusinessMessageReject (35=j, `business_reject`) or a Reject (35=3,
    /// `session_reject`) of the order count as errors by kind.
    pub until: Option<String>,
    /// `"1.1"` (default; keep-alive, one request in flight per connection) or `"2"` (HTTP/2,
    /// multiplexed: by ALPN over TLS, with prior knowledge over plain TCP).
    pub http_version: Option<String>,
    /// PEM file of certificates trusted besides the Mozilla roots for `https://` (e.g. a
    /// private CA), relative to the checklist's directory.
    pub ca_file: Option<String>,
    /// HTTP method. Default `POST` when a body is given, else `GET`.
    pub method: Option<String>,
    /// Request headers; values may use `${VAR}` (never shown in reports).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body template; placeholders are rendered per request, `${VAR}` once.
    /// `Content-Type: application/json` is sent unless a header says otherwise. With
    /// `transport = "websocket"` (required there): the order message, JSON once rendered, sent
    /// as one text message per order.
    pub body: Option<String>,
    /// WebSocket: the JSON pointer (RFC 6901) of the correlation id in an answer, e.g.
    /// `"/client_order_id"`. An inbound message answers the order whose rendered `body` holds
    /// the same value at `match_request`; messages without it (market data) are ignored, and an
    /// order with no answer within `timeout` is a `timeout` error. Required with
    /// `transport = "websocket"`.
    #[serde(rename = "match")]
    pub match_response: Option<String>,
    /// WebSocket: the JSON pointer of the correlation id in the rendered order message.
    /// Default: the same as `match`.
    pub match_request: Option<String>,
    /// Arrival rate in requests per second (open model: requests leave on schedule whatever
    /// the responses do).
    pub rate: f64,
    /// How long to send after warm-up (humantime, e.g. `"30s"`). Exactly one of `duration`
    /// and `count`.
    pub duration: Option<String>,
    /// How many requests to measure after warm-up. Exactly one of `duration` and `count`.
    pub count: Option<u64>,
    /// Warm-up sent at the same rate before measuring starts, excluded from every result
    /// (humantime). Default `"0s"`.
    pub warmup: Option<String>,
    /// Keep-alive connections in the pool; connection `k` of `N` sends requests `k, k + N, …`
    /// (wrk2's model). Default: enough for a 5 ms mean latency at the full rate (Little's law:
    /// rate × 5 ms), between 4 and 128, a multiple of `threads`. With `transport = "fix"` each
    /// connection is a session with the same CompIDs; default 1, as most venues accept one
    /// session per CompID pair.
    pub connections: Option<usize>,
    /// Generator threads, each a single-threaded runtime with its share of the connections.
    /// Default: one per 50 000 requests/s, at most the number of cores.
    pub threads: Option<usize>,
    /// An explicit bound on the generator's own lateness at p99 (humantime): the lateness the
    /// target did not cause (a late timer, a busy or starved generator). Beyond it the item is
    /// `error` ("load generator saturated") whatever the latencies. No default: without it the
    /// generator's lateness is attributed request by request ([`verdict`]), and a pass that
    /// includes it stands.
    pub max_generator_lag: Option<String>,
    /// Per-request timeout, connection set-up included (humantime). Default `"10s"`.
    pub timeout: Option<String>,
    /// Expected status code(s). Default: any 2xx (the rules, shared with the `http` probe:
    /// [`crate::probe::expect`]). HTTP only.
    pub status: Option<StatusSpec>,
    /// A substring every acknowledgement must contain; a miss is a `body` error.
    pub body_contains: Option<String>,
    /// A JSON pointer (RFC 6901) that must exist in every acknowledgement, e.g. `/status`.
    /// A body that is not JSON is then a `body` error. With `transport = "websocket"`, the
    /// acknowledgement condition on the matched answer: one that fails it is a `rejected`
    /// order.
    pub json_pointer: Option<String>,
    /// The value expected at `json_pointer`; excludes `json_one_of`.
    pub json_equals: Option<serde_json::Value>,
    /// Values accepted at `json_pointer` (any of them); absent = the pointer must only exist.
    pub json_one_of: Option<Vec<serde_json::Value>>,
    /// Largest accepted mean latency (humantime).
    pub mean: Option<String>,
    /// Largest accepted p50 (median) latency (humantime, e.g. `"20ms"`).
    pub p50: Option<String>,
    /// Largest accepted p90 latency (humantime).
    pub p90: Option<String>,
    /// Largest accepted p99 latency (humantime, e.g. `"100ms"`).
    pub p99: Option<String>,
    /// Largest accepted p99.9 latency (humantime).
    pub p999: Option<String>,
    /// Largest accepted p99.99 latency (humantime).
    pub p9999: Option<String>,
    /// Largest accepted maximum latency (humantime).
    pub max: Option<String>,
    /// Largest accepted share of failed requests, a fraction from 0 to 1 (`0.001` = 0.1 %).
    /// Default 0: any error fails.
    pub max_error_rate: Option<f64>,
    /// Fewest measured responses for a verdict; fewer is an `error`. Default: 100, or
    /// 10 / (1 − q) for the highest percentile threshold q (p99.9 → 10 000).
    pub min_samples: Option<u64>,
    /// Seed of the template's random values. Default 1.
    pub seed: Option<u64>,
}

/// One latency threshold.
#[derive(Debug, Clone)]
struct Threshold {
    key: &'static str,
    /// Quantile, or `None` for the mean.
    quantile: Option<f64>,
    max: Duration,
}

/// A validated `latency` probe.
#[derive(Debug, Clone)]
pub struct LatencyProbe {
    url_display: String,
    host: String,
    port: u16,
    plan: Plan,
    /// `connections` and `threads` were chosen by the probe, not given.
    auto_connections: bool,
    auto_threads: bool,
    thresholds: Vec<Threshold>,
    max_error_rate: f64,
    min_samples: u64,
    max_generator_lag: Option<Duration>,
}

impl RawLatencyProbe {
    /// Validate every value once.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<LatencyProbe, FieldError> {
        let transport = Transport::parse(self.transport.as_deref())?;
        let url = v.interpolate("url", &self.url)?;
        let (tls, host, port, path_text) = if transport == Transport::Fix {
            let (tls, host, port) =
                fix_keys::split_fix_url(&url.value).map_err(|m| FieldError::new("url", m))?;
            (tls, host, port, String::new())
        } else {
            self.no_fix_keys()?;
            split_url(&url.value, transport).map_err(|m| FieldError::new("url", m))?
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
            Transport::WebSocket => Wire::WebSocket(self.ws_wire(v, &url.value, &path_text)?),
            Transport::Fix => Wire::Fix(Box::new(self.fix_wire(v)?)),
        };
        let rate = self.rate()?;
        let measured_requests = self.measured_requests(v, rate)?;
        let warmup = optional_duration(v, "warmup", self.warmup.as_deref())?.unwrap_or_default();
        let warmup_requests = (warmup.as_secs_f64() * rate).round() as u64;
        let threads = self.threads(rate)?;
        let connections = match (&wire, self.connections) {
            // One FIX session per CompID pair is what venues accept.
            (Wire::Fix(_), None) => 1,
            _ => self.connections(rate, threads)?,
        };
        let timeout = optional_duration(v, "timeout", self.timeout.as_deref())?
            .unwrap_or(Duration::from_secs(10));
        if timeout.is_zero() {
            return Err(FieldError::new("timeout", "expected more than 0"));
        }
        let mut wire = wire;
        if let Wire::Fix(f) = &mut wire {
            f.timeout = timeout;
        }
        let thresholds = self.thresholds(v)?;
        let max_error_rate = self.max_error_rate.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&max_error_rate) {
            return Err(FieldError::new(
                "max_error_rate",
                "expected a fraction from 0 to 1 (0.001 = 0.1 %)",
            ));
        }
        let min_samples = self.min_samples(&thresholds, measured_requests)?;
        let max_generator_lag =
            optional_duration(v, "max_generator_lag", self.max_generator_lag.as_deref())?;
        if max_generator_lag.is_some_and(|d| d.is_zero()) {
            return Err(FieldError::new("max_generator_lag", "expected more than 0"));
        }
        Ok(LatencyProbe {
            url_display: url.display.clone(),
            host,
            port,
            plan: Plan {
                tls,
                ca_file: self.ca_file.as_deref().map(std::path::PathBuf::from),
                wire,
                rate_per_s: rate,
                warmup_requests,
                measured_requests,
                connections,
                threads: threads.min(connections),
                coalesce_ns: timer_quantum(
                    rate / threads.min(connections) as f64,
                    max_generator_lag,
                )
                .as_nanos() as u64,
                timeout,
                seed: self.seed.unwrap_or(1),
                stall: None,
            },
            auto_connections: self.connections.is_none(),
            auto_threads: self.threads.is_none(),
            thresholds,
            max_error_rate,
            min_samples,
            max_generator_lag,
        })
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
        for (key, given) in [
            ("match", self.match_response.is_some()),
            ("match_request", self.match_request.is_some()),
        ] {
            if given {
                return Err(FieldError::new(
                    key,
                    "only for transport = \"websocket\" (HTTP answers are matched by their connection)",
                ));
            }
        }
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
    fn ws_wire(
        &self,
        v: &mut Validator,
        url: &str,
        path_text: &str,
    ) -> Result<load::websocket::WsWire, FieldError> {
        for (key, given) in [
            ("method", self.method.is_some()),
            ("http_version", self.http_version.is_some()),
            ("status", self.status.is_some()),
            ("body_contains", self.body_contains.is_some()),
        ] {
            if given {
                return Err(FieldError::new(
                    key,
                    "not used with transport = \"websocket\" (acknowledgements are checked with json_pointer and json_equals or json_one_of)",
                ));
            }
        }
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
        message.render(0, &mut template::Rng::new(1), &mut rendered);
        let doc: serde_json::Value = serde_json::from_str(&rendered).map_err(|e| {
            FieldError::new(
                "body",
                format!("the rendered order message is not JSON: {e}"),
            )
        })?;
        if load::websocket::correlation_id(&doc, &request_match).is_none() {
            return Err(FieldError::new(
                if self.match_request.is_some() {
                    "match_request"
                } else {
                    "match"
                },
                format!("the rendered order message has no string or number at {request_match}"),
            ));
        }
        Ok(load::websocket::WsWire {
            url: url.to_string(),
            headers: self.headers(v, false)?,
            message,
            request_match,
            response_match,
            ack: self.expect()?.json,
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

    /// The acknowledgement expectation (status, body, JSON pointer).
    fn expect(&self) -> Result<crate::probe::expect::HttpExpect, FieldError> {
        RawHttpExpect {
            status: self.status.clone(),
            body_contains: self.body_contains.clone(),
            json_pointer: self.json_pointer.clone(),
            json_equals: self.json_equals.clone(),
            json_one_of: self.json_one_of.clone(),
        }
        .validate()
    }

    /// `http_version`: `"1.1"` (default) or `"2"`.
    fn version(&self) -> Result<load::transport::Version, FieldError> {
        match self.http_version.as_deref() {
            None | Some("1.1") => Ok(load::transport::Version::Http1),
            Some("2") => Ok(load::transport::Version::Http2),
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

    /// `rate`: requests per second, more than 0 and at most 10 000 000.
    fn rate(&self) -> Result<f64, FieldError> {
        if self.rate.is_finite() && self.rate > 0.0 && self.rate <= 10_000_000.0 {
            Ok(self.rate)
        } else {
            Err(FieldError::new(
                "rate",
                "expected requests per second, more than 0 and at most 10 000 000",
            ))
        }
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

    /// Requests measured: `count`, or `duration` × `rate` (exactly one of them).
    fn measured_requests(&self, v: &Validator, rate: f64) -> Result<u64, FieldError> {
        Ok(match (&self.duration, self.count) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "count",
                    "give either duration or count, not both",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "duration",
                    "expected duration (e.g. \"30s\") or count",
                ));
            }
            (Some(d), None) => {
                let d = v.duration("duration", d)?;
                (d.as_secs_f64() * rate).round() as u64
            }
            (None, Some(c)) => c,
        })
    }

    /// Keep-alive connections: `connections` (1 … 10 000), else rate × 5 ms within 4 … 128,
    /// rounded up to a multiple of `threads` so every thread carries the same share.
    fn connections(&self, rate: f64, threads: usize) -> Result<usize, FieldError> {
        Ok(match self.connections {
            Some(0) => return Err(FieldError::new("connections", "expected at least 1")),
            Some(c) if c > 10_000 => {
                return Err(FieldError::new("connections", "expected at most 10 000"));
            }
            Some(c) => c,
            None => ((rate * 0.005).ceil() as usize)
                .clamp(4, 128)
                .next_multiple_of(threads.max(1)),
        })
    }

    /// Generator threads: `threads` (1 … 256), else one per 50 000 requests/s (one thread
    /// with coalesced timers holds 40 000/s at ~14 µs CPU per request, see
    /// `benches/latency_engine.rs`), at most the cores this process may use.
    fn threads(&self, rate: f64) -> Result<usize, FieldError> {
        Ok(match self.threads {
            Some(0) => return Err(FieldError::new("threads", "expected at least 1")),
            Some(t) if t > 256 => return Err(FieldError::new("threads", "expected at most 256")),
            Some(t) => t,
            None => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                ((rate / 50_000.0).ceil() as usize).clamp(1, cores)
            }
        })
    }

    /// The latency thresholds given (mean, percentiles, max), in that order.
    fn thresholds(&self, v: &Validator) -> Result<Vec<Threshold>, FieldError> {
        let mut thresholds = Vec::new();
        for (key, quantile, text) in [
            ("mean", None, &self.mean),
            ("p50", Some(0.5), &self.p50),
            ("p90", Some(0.9), &self.p90),
            ("p99", Some(0.99), &self.p99),
            ("p999", Some(0.999), &self.p999),
            ("p9999", Some(0.9999), &self.p9999),
            ("max", Some(1.0), &self.max),
        ] {
            if let Some(t) = text {
                thresholds.push(Threshold {
                    key,
                    quantile,
                    max: v.duration(key, t)?,
                });
            }
        }
        Ok(thresholds)
    }

    /// `min_samples`, by default enough for the highest percentile threshold (10 samples
    /// beyond it, at least 100); the run must measure at least that many.
    fn min_samples(
        &self,
        thresholds: &[Threshold],
        measured_requests: u64,
    ) -> Result<u64, FieldError> {
        let highest_q = thresholds
            .iter()
            .filter_map(|t| t.quantile)
            .filter(|q| *q < 1.0)
            .fold(0.0f64, f64::max);
        let default_min = if highest_q > 0.0 {
            ((10.0 / (1.0 - highest_q)).round() as u64).max(100)
        } else {
            100
        };
        let min_samples = self.min_samples.unwrap_or(default_min);
        if min_samples == 0 {
            return Err(FieldError::new("min_samples", "expected at least 1"));
        }
        if measured_requests < min_samples {
            let key = if self.count.is_some() {
                "count"
            } else {
                "duration"
            };
            return Err(FieldError::new(
                key,
                format!(
                    "the run measures {measured_requests} requests, fewer than min_samples = {min_samples}{}; measure longer or lower min_samples",
                    if self.min_samples.is_none() {
                        " (the default for the highest percentile threshold)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(min_samples)
    }
}

/// An optional humantime value of `key`.
fn optional_duration(
    v: &Validator,
    key: &str,
    text: Option<&str>,
) -> Result<Option<Duration>, FieldError> {
    text.map(|t| v.duration(key, t)).transpose()
}

/// Largest timer coalescing quantum.
const MAX_QUANTUM: Duration = Duration::from_micros(250);

/// The timer coalescing quantum for a thread sending `per_thread_rate` requests/s: 250 µs (at
/// most a quarter of an explicit generator-lag bound) once sends come closer than that, so
/// that a thread wakes at most 4 000 times a second however high its rate; below that rate,
/// zero (every send gets its own, exact wake-up). A coalesced send leaves up to one quantum
/// late, never early, and the lateness stays in the corrected latency and the generator lag.
fn timer_quantum(per_thread_rate: f64, max_generator_lag: Option<Duration>) -> Duration {
    let quantum = max_generator_lag.map_or(MAX_QUANTUM, |b| MAX_QUANTUM.min(b / 4));
    if per_thread_rate * quantum.as_secs_f64() >= 1.0 {
        quantum
    } else {
        Duration::ZERO
    }
}

/// Errors and rates of one run.
#[derive(Clone, Copy)]
struct Rates {
    /// Failed requests, all kinds.
    errors: u64,
    /// errors / attempted.
    error_rate: f64,
    /// Requests sent per second over the measured span.
    achieved: f64,
    /// The measured requests all left within the planned span (with [`SUSTAINED_SHARE`] and
    /// [`SUSTAINED_SLACK_S`]).
    sustained: bool,
}

impl Rates {
    fn of(p: &Plan, r: &load::LoadResult) -> Rates {
        let errors: u64 = r.errors.values().sum();
        let attempted = r.attempted.max(1);
        let error_rate = errors as f64 / attempted as f64;
        let achieved = if r.send_span.is_zero() {
            0.0
        } else {
            // Requests sent over the time from the first intended send to the last real one:
            // (n − 1) intervals between n sends.
            (r.attempted.saturating_sub(1)) as f64 / r.send_span.as_secs_f64()
        };
        let planned_span = (p.measured_requests.saturating_sub(1)) as f64 / p.rate_per_s;
        let sustained = r.attempted >= p.measured_requests
            && (planned_span <= 0.0
                || r.send_span.as_secs_f64() <= planned_span / SUSTAINED_SHARE + SUSTAINED_SLACK_S);

        Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        }
    }
}

/// Errors by kind with the first example of each (redacted).
fn error_table(ctx: &ProbeContext, r: &load::LoadResult) -> Table {
    Table {
        title: "Errors by kind".into(),
        columns: vec!["kind".into(), "count".into(), "first example".into()],
        rows: r
            .error_kinds
            .iter()
            .filter_map(|k| {
                let n = r.errors.get(k).copied().unwrap_or(0);
                (n > 0).then(|| {
                    vec![
                        k.as_str().to_string(),
                        n.to_string(),
                        ctx.redactor
                            .redact(r.first_error.get(k).map(String::as_str).unwrap_or("")),
                    ]
                })
            })
            .collect(),
    }
}

/// How orders travel (`transport`), for the `latency` probe and the soak's `order` monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 or HTTP/2 requests.
    Http,
    /// JSON messages on a WebSocket (RFC 6455).
    WebSocket,
    /// FIX 4.2 / 4.4 tag=value sessions.
    Fix,
}

impl Transport {
    /// Parse the `transport` key: `"http"` (the default), `"websocket"` or `"fix"`.
    ///
    /// # Errors
    /// A [`FieldError`] on `transport` for anything else.
    pub fn parse(text: Option<&str>) -> Result<Transport, FieldError> {
        match text {
            None | Some("http") => Ok(Transport::Http),
            Some("websocket") => Ok(Transport::WebSocket),
            Some("fix") => Ok(Transport::Fix),
            Some(other) => Err(FieldError::new(
                "transport",
                format!("expected \"http\", \"websocket\" or \"fix\", found \"{other}\""),
            )),
        }
    }

    /// `expected an http:// or https:// URL` and the like, for a URL of another scheme.
    pub fn expected_url(self) -> String {
        let (plain, secure) = self.schemes();
        let article = if self == Transport::Http { "an" } else { "a" };
        format!("expected {article} {plain}:// or {secure}:// URL")
    }

    /// The URL schemes: plain, then TLS.
    pub fn schemes(self) -> (&'static str, &'static str) {
        match self {
            Transport::Http => ("http", "https"),
            Transport::WebSocket => ("ws", "wss"),
            Transport::Fix => ("fix+tcp", "fix+tls"),
        }
    }
}

/// Split a URL of the transport's schemes (`http://`/`https://`, `ws://`/`wss://`) into TLS or
/// not, host, port and the raw path-and-query text (placeholders intact; `url::Url` would
/// percent-encode the braces).
fn split_url(url: &str, transport: Transport) -> Result<(bool, String, u16, String), String> {
    let (plain, secure) = transport.schemes();
    let (tls, rest) = if let Some(r) = url.strip_prefix(&format!("{plain}://")) {
        (false, r)
    } else if let Some(r) = url.strip_prefix(&format!("{secure}://")) {
        (true, r)
    } else {
        let hint = match transport {
            Transport::Http if url.starts_with("ws") => {
                " (ws:// and wss:// need transport = \"websocket\")"
            }
            _ => "",
        };
        return Err(format!("{}{hint}", transport.expected_url()));
    };
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..cut];
    let mut path = rest[cut..].to_string();
    if path.is_empty() {
        path = "/".into();
    } else if path.starts_with('?') {
        path = format!("/{path}");
    }
    if path.contains('#') {
        return Err("a URL fragment (#…) is never sent; remove it".into());
    }
    let scheme = if tls { secure } else { plain };
    let parsed = reqwest::Url::parse(&format!("{scheme}://{authority}/"))
        .map_err(|e| format!("invalid URL: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| "expected a host in the URL".to_string())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL are not supported; use headers".into());
    }
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    Ok((tls, host, port, path))
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn fmt_us(us: f64) -> String {
    format_duration(Duration::from_nanos((us * 1000.0) as u64))
}

const ROWS: [(&str, &str, Option<f64>); 7] = [
    ("mean", "mean", None),
    ("p50", "p50", Some(0.5)),
    ("p90", "p90", Some(0.9)),
    ("p99", "p99", Some(0.99)),
    ("p99.9", "p999", Some(0.999)),
    ("p99.99", "p9999", Some(0.9999)),
    ("max", "max", Some(1.0)),
];

impl LatencyProbe {
    /// The target as shown: `POST http://…` or `WebSocket ws://…` (secrets redacted).
    fn shown(&self) -> String {
        match &self.plan.wire {
            Wire::Http(h) => format!("{} {}", h.method, self.url_display),
            Wire::WebSocket(_) => format!("WebSocket {}", self.url_display),
            Wire::Fix(f) => format!("{} {}", f.session.version.begin_string(), self.url_display),
        }
    }

    /// Run the load and judge it.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let shown = self.shown();
        let addr = match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => a,
                None => {
                    return ProbeOutput::error(format!("{shown}: {} has no address", self.host));
                }
            },
            Err(e) => {
                return ProbeOutput::error(format!("{shown}: cannot resolve {}: {e}", self.host));
            }
        };
        let connector = if self.plan.tls {
            let ca = match &self.plan.ca_file {
                Some(f) => {
                    let path = ctx.resolve(f);
                    match std::fs::read(&path) {
                        Ok(pem) => Some((path, pem)),
                        Err(e) => {
                            return ProbeOutput::error(format!(
                                "{shown}: reading CA file {}: {e}",
                                path.display()
                            ));
                        }
                    }
                }
                None => None,
            };
            let ca = ca.as_ref().map(|(p, pem)| (p.as_path(), pem.as_slice()));
            let alpn = self.plan.wire.alpn();
            match load::transport::Connector::tls(addr, alpn, &self.host, ca) {
                Ok(c) => c,
                Err(e) => return ProbeOutput::error(format!("{shown}: {e}")),
            }
        } else {
            load::transport::Connector::plain(addr)
        };
        let mut plan = self.plan.clone();
        plan.stall = match load::Stall::from_env() {
            Ok(stall) => stall,
            Err(m) => return ProbeOutput::error(format!("{shown}: {m}")),
        };
        let stall = plan.stall;
        let r = load::run(plan, connector, ctx.cancel.clone()).await;
        self.judge(ctx, &shown, r, stall)
    }

    fn judge(
        &self,
        ctx: &ProbeContext,
        shown: &str,
        r: load::LoadResult,
        stall: Option<load::Stall>,
    ) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let rt = Rates::of(&self.plan, &r);
        self.measure(&mut o, &r, &rt);
        // Evidence first, so even an error outcome carries what was measured.
        self.evidence(ctx, &r, &mut o);
        o.tables.push(percentile_table(&r));
        o.tables.push(self.generator_table(&r, stall));
        if rt.errors > 0 {
            o.tables.push(error_table(ctx, &r));
        }
        self.checks(&mut o, &r, &rt);
        self.summarize(&mut o, shown, &r, &rt);
        o.summary = ctx.redactor.redact(&o.summary);
        o
    }

    /// Counts, rates, percentiles (corrected and uncorrected) and schedule lag for machines.
    fn measure(&self, o: &mut ProbeOutput, r: &load::LoadResult, rt: &Rates) {
        let p = &self.plan;
        let (h, u) = (&r.recorder.corrected, &r.recorder.uncorrected);
        let Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        } = *rt;
        o.measure("requests", r.attempted);
        o.measure("responses", r.responded);
        o.measure("ok", r.ok);
        o.measure("errors", errors);
        for k in self.plan.wire.error_kinds() {
            o.measure(
                &format!("errors_{}", k.as_str()),
                r.errors.get(&k).copied().unwrap_or(0),
            );
        }
        o.measure("error_rate", error_rate);
        o.measure("rate_requested_per_s", p.rate_per_s);
        o.measure("rate_achieved_per_s", achieved);
        o.measure("connections", p.connections as u64);
        o.measure("warmup_requests", p.warmup_requests);
        o.measure("sustained", sustained);
        for (_, key, q) in ROWS {
            if !h.is_empty() {
                o.measure(&format!("{key}_ms"), value_us(h, q) / 1000.0);
                o.measure(&format!("uncorrected_{key}_ms"), value_us(u, q) / 1000.0);
                let target = &r.recorder.target;
                o.measure(&format!("target_{key}_ms"), value_us(target, q) / 1000.0);
            }
        }
        if !r.recorder.lag.is_empty() {
            let lag = &r.recorder.lag;
            o.measure("schedule_lag_p50_ms", ms(lag.value_at_quantile(0.5)));
            o.measure("schedule_lag_p99_ms", ms(lag.value_at_quantile(0.99)));
            o.measure("schedule_lag_max_ms", ms(lag.max()));
        }
        self.measure_generator(o, r);
    }

    /// The generator's own figures: threads, generator lag, connection set-up, timer wakes and
    /// CPU per request.
    fn measure_generator(&self, o: &mut ProbeOutput, r: &load::LoadResult) {
        let rec = &r.recorder;
        o.measure("threads", r.threads as u64);
        o.measure("connections_auto", self.auto_connections);
        o.measure("threads_auto", self.auto_threads);
        if !rec.generator_lag.is_empty() {
            let g = &rec.generator_lag;
            o.measure("generator_lag_p50_ms", ms(g.value_at_quantile(0.5)));
            o.measure("generator_lag_p99_ms", ms(g.value_at_quantile(0.99)));
            o.measure("generator_lag_max_ms", ms(g.max()));
        }
        if !rec.runtime_lag.is_empty() {
            let g = &rec.runtime_lag;
            o.measure("runtime_lag_p50_ms", ms(g.value_at_quantile(0.5)));
            o.measure("runtime_lag_p99_ms", ms(g.value_at_quantile(0.99)));
            o.measure("runtime_lag_max_ms", ms(g.max()));
        }
        if let Some(bound) = self.max_generator_lag {
            o.measure("max_generator_lag_ms", bound.as_secs_f64() * 1e3);
        }
        if !rec.generator_lag.is_empty() {
            let l = Lateness::of(rec);
            o.measure("lateness_generator_share", l.generator_share());
            o.measure("connection_wait_mean_ms", l.wait_mean_us / 1e3);
            o.measure("generator_lag_mean_ms", l.own_mean_us / 1e3);
        }
        o.measure("connects", r.connects);
        if !matches!(self.plan.wire, Wire::Http(_)) {
            o.measure("messages_ignored", r.ignored);
            o.measure("answers_unmatched", r.unmatched);
        }
        if !rec.connect.is_empty() {
            o.measure("connect_p50_ms", ms(rec.connect.value_at_quantile(0.5)));
            o.measure("connect_max_ms", ms(rec.connect.max()));
        }
        o.measure("timer_wakes", r.timer_wakes);
        o.measure("timer_quantum_us", self.plan.coalesce_ns as f64 / 1e3);
        let sent = r.attempted + self.plan.warmup_requests;
        if sent > 0 {
            o.measure(
                "generator_cpu_us_per_request",
                r.cpu.as_secs_f64() * 1e6 / sent as f64,
            );
        }
    }

    /// How the generator ran: its chosen sizes, its own lateness, connection set-up and cost.
    fn generator_table(&self, r: &load::LoadResult, stall: Option<load::Stall>) -> Table {
        let rec = &r.recorder;
        let chosen = |auto: bool| {
            if auto {
                "chosen from the rate and cores"
            } else {
                "set"
            }
        };
        let hist = |h: &Histogram<u64>| {
            if h.is_empty() {
                "—".to_string()
            } else {
                format!(
                    "p50 {}, p99 {}, max {}",
                    fmt_us(h.value_at_quantile(0.5) as f64),
                    fmt_us(h.value_at_quantile(0.99) as f64),
                    fmt_us(h.max() as f64)
                )
            }
        };
        let sent = r.attempted + self.plan.warmup_requests;
        let row = |a: &str, b: String| vec![a.to_string(), b];
        Table {
            title: "Load generator".into(),
            columns: vec!["".into(), "value".into()],
            rows: vec![
                row(
                    "threads",
                    format!("{} ({})", r.threads, chosen(self.auto_threads)),
                ),
                row(
                    "connections",
                    format!(
                        "{} ({})",
                        self.plan.connections,
                        chosen(self.auto_connections)
                    ),
                ),
                row(
                    "own lag, sends on a free connection",
                    hist(&rec.generator_lag),
                ),
                row("own lag, runtime (heartbeat)", hist(&rec.runtime_lag)),
                row("lateness split", {
                    let l = Lateness::of(rec);
                    if rec.generator_lag.is_empty() {
                        "—".to_string()
                    } else {
                        format!(
                            "{:.0} % the generator's own (mean {}), {:.0} % waiting for a busy connection (mean {}, the target's)",
                            l.generator_share() * 100.0,
                            fmt_us(l.own_mean_us),
                            (1.0 - l.generator_share()) * 100.0,
                            fmt_us(l.wait_mean_us)
                        )
                    }
                }),
                row(
                    "bound on own lag at p99",
                    self.max_generator_lag.map_or_else(
                        || "none: a failure is attributed request by request".to_string(),
                        format_duration,
                    ),
                ),
                row(
                    "connection set-up",
                    format!("{} connections; {}", r.connects, hist(&rec.connect)),
                ),
                row(
                    "timer coalescing",
                    if self.plan.coalesce_ns == 0 {
                        "none: every send wakes on time".to_string()
                    } else {
                        format!(
                            "{} quantum: sends due within it share one wake and leave up to that late",
                            format_duration(Duration::from_nanos(self.plan.coalesce_ns))
                        )
                    },
                ),
                row(
                    "timer wakes",
                    format!(
                        "{} ({:.2} per request)",
                        r.timer_wakes,
                        r.timer_wakes as f64 / sent.max(1) as f64
                    ),
                ),
                row(
                    "CPU per request",
                    format!("{:.1} µs", r.cpu.as_secs_f64() * 1e6 / sent.max(1) as f64),
                ),
            ]
            .into_iter()
            .chain(stall.map(|s| {
                row(
                    "stall injected",
                    format!(
                        "{} before every {}th send ({})",
                        format_duration(s.pause),
                        s.every,
                        load::Stall::ENV
                    ),
                )
            }))
            .collect(),
        }
    }

    /// The generator's own lateness at p99: the larger of the send lateness on a free connection
    /// and the runtime's lateness, µs; `None` without samples.
    fn own_lag_p99(r: &load::LoadResult) -> Option<u64> {
        let (g, rt) = (&r.recorder.generator_lag, &r.recorder.runtime_lag);
        let p99 = |h: &Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(0.99));
        match (p99(g), p99(rt)) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        }
    }

    /// The generator's own lateness at p99 exceeded the explicit `max_generator_lag`.
    fn over_bound(&self, r: &load::LoadResult) -> bool {
        self.max_generator_lag.is_some_and(|bound| {
            Self::own_lag_p99(r).is_some_and(|us| us > bound.as_micros() as u64)
        })
    }

    /// Every latency threshold judged on the run, in checklist order.
    fn judged(&self, r: &load::LoadResult) -> Vec<(&Threshold, Option<verdict::Judged>)> {
        self.thresholds
            .iter()
            .map(|t| {
                let max_us = t.max.as_micros() as f64;
                (t, verdict::threshold(&r.recorder, t.quantile, max_us))
            })
            .collect()
    }

    /// The thresholds, the error rate, the sample count and whether the rate was sustained.
    fn checks(&self, o: &mut ProbeOutput, r: &load::LoadResult, rt: &Rates) {
        let p = &self.plan;
        let Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        } = *rt;
        for (t, j) in self.judged(r) {
            let (measured, ok) = match j {
                None => ("no samples".to_string(), false),
                Some(j) if j.passed => (fmt_us(j.corrected_us), true),
                Some(j) => (
                    format!(
                        "{}; the target's part {}",
                        fmt_us(j.corrected_us),
                        fmt_us(j.target_us)
                    ),
                    false,
                ),
            };
            o.checks.push(Check::new(
                t.key,
                format!("≤ {}", format_duration(t.max)),
                measured,
                ok,
            ));
        }
        o.checks.push(Check::new(
            "error rate",
            format!("≤ {}", percent(self.max_error_rate)),
            format!(
                "{} ({errors} of {}{})",
                percent(error_rate),
                r.attempted,
                error_breakdown(r)
            ),
            r.attempted > 0 && error_rate <= self.max_error_rate,
        ));
        let samples = r.recorder.corrected.len();
        o.checks.push(Check::new(
            "samples",
            format!("≥ {}", self.min_samples),
            samples.to_string(),
            samples >= self.min_samples,
        ));
        o.checks.push(Check::new(
            "rate sustained",
            format!("≥ {:.0} % of {}/s", SUSTAINED_SHARE * 100.0, p.rate_per_s),
            format!(
                "{achieved:.1}/s; schedule lag p99 {}",
                p99_text(&r.recorder.lag)
            ),
            sustained,
        ));
        if let Some(bound) = self.max_generator_lag {
            let (g, rt) = (&r.recorder.generator_lag, &r.recorder.runtime_lag);
            let own = Self::own_lag_p99(r);
            o.checks.push(Check::new(
                "generator lag",
                format!("≤ {} at p99", format_duration(bound)),
                match own {
                    None => "no samples".to_string(),
                    Some(_) => format!(
                        "sends p99 {}, runtime p99 {} ({} threads, {} connections)",
                        p99_text(g),
                        p99_text(rt),
                        r.threads,
                        p.connections
                    ),
                },
                own.is_some() && !self.over_bound(r),
            ));
        }
    }

    /// The one-line summary and the attribution ([`verdict`]). An aborted run, no response, too
    /// few samples, an explicit `max_generator_lag` exceeded, or a failure that only the
    /// generator's own lateness explains make the item an error that says why; a failure the
    /// target's part alone has fails through its check.
    fn summarize(&self, o: &mut ProbeOutput, shown: &str, r: &load::LoadResult, rt: &Rates) {
        let p = &self.plan;
        let (h, u) = (&r.recorder.corrected, &r.recorder.uncorrected);
        let Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        } = *rt;
        let samples = h.len();
        let p99 = p99_text(h);
        o.summary = format!(
            "{shown}: p99 {p99} (uncorrected {}; the generator's own lag p99 {} is included) at {achieved:.1}/s of {}/s requested, {} requests, {errors} errors",
            p99_text(u),
            p99_text(&r.recorder.generator_lag),
            p.rate_per_s,
            r.attempted
        );
        let judged = self.judged(r);
        let blamed = |b: Blame| {
            judged
                .iter()
                .any(|(_, j)| j.is_some_and(|j| j.blame == Some(b)))
        };
        let lateness = Lateness::of(&r.recorder);
        let rate_blame = (!sustained).then(|| lateness.blame());
        let target_failed = blamed(Blame::Target)
            || rate_blame == Some(Blame::Target)
            || error_rate > self.max_error_rate;
        let generator_failed = blamed(Blame::Generator) || rate_blame == Some(Blame::Generator);

        if let Some(reason) = &r.aborted {
            o.forced = Some(Status::Error);
            o.summary = format!("{shown}: {} ({})", reason, o.summary);
        } else if r.responded == 0 {
            o.forced = Some(Status::Error);
            let first = r
                .first_error
                .values()
                .next()
                .cloned()
                .unwrap_or_else(|| "no response".into());
            o.summary = format!("{shown}: no request got a response: {first}");
        } else if samples < self.min_samples {
            o.forced = Some(Status::Error);
            o.summary = format!(
                "{shown}: only {samples} samples, fewer than min_samples = {} ({})",
                self.min_samples, o.summary
            );
        } else if self.over_bound(r) {
            o.forced = Some(Status::Error);
            o.summary = format!("{shown}: {}", self.bound_message(r, achieved));
        } else if generator_failed && !target_failed {
            o.forced = Some(Status::Error);
            o.summary = format!(
                "{shown}: {}",
                self.saturation_message(r, &judged, rate_blame, achieved)
            );
        } else if rate_blame == Some(Blame::Target) {
            let in_use = p.rate_per_s * u.mean() / 1e6;
            o.summary = format!(
                "{shown}: the target did not keep up with {}/s: {achieved:.1}/s achieved, every connection was busy ({:.0} % of the sends' lateness was spent waiting for a free connection; schedule lag p99 {}, the generator's own lag p99 {}); the wait is in the corrected latency (p99 {p99}).{}",
                p.rate_per_s,
                (1.0 - lateness.generator_share()) * 100.0,
                p99_text(&r.recorder.lag),
                p99_text(&r.recorder.generator_lag),
                if in_use > p.connections as f64 {
                    format!(
                        " At its mean service time of {} the rate needs about {in_use:.0} connections in flight (Little's law), more than the {} given; raise `connections` if real clients would use more",
                        fmt_us(u.mean()),
                        p.connections
                    )
                } else {
                    String::new()
                }
            );
        }
    }

    /// Where the generator was: threads, connections, CPU per request.
    fn generator_facts(&self, r: &load::LoadResult, achieved: f64) -> String {
        let p = &self.plan;
        let sent = (r.attempted + p.warmup_requests).max(1);
        format!(
            "at {achieved:.1}/s of {}/s on {} thread(s) with {} connections, {:.1} µs CPU per request",
            p.rate_per_s,
            r.threads,
            p.connections,
            r.cpu.as_secs_f64() * 1e6 / sent as f64,
        )
    }

    /// "load generator saturated: …" for a failure only the generator's own lateness explains:
    /// each such figure with the target's part beside it, the generator's lateness, and what to
    /// do about it.
    fn saturation_message(
        &self,
        r: &load::LoadResult,
        judged: &[(&Threshold, Option<verdict::Judged>)],
        rate_blame: Option<Blame>,
        achieved: f64,
    ) -> String {
        let g = &r.recorder.generator_lag;
        let mut misses: Vec<String> = judged
            .iter()
            .filter_map(|(t, j)| {
                let j = j.filter(|j| j.blame == Some(Blame::Generator))?;
                Some(format!(
                    "{} {} misses ≤ {}, but the target's part alone is {}{}",
                    t.key,
                    fmt_us(j.corrected_us),
                    format_duration(t.max),
                    fmt_us(j.target_us),
                    if j.runtime_us > 0.0 && j.target_us > t.max.as_micros() as f64 {
                        format!(
                            " (over by less than the generator runtime's own lateness, {})",
                            fmt_us(j.runtime_us)
                        )
                    } else {
                        String::new()
                    }
                ))
            })
            .collect();
        if rate_blame == Some(Blame::Generator) {
            let l = Lateness::of(&r.recorder);
            misses.push(format!(
                "the rate was not sustained, and {:.0} % of the sends' lateness was the generator's own with a connection free (mean {} against {} waiting for a busy connection)",
                l.generator_share() * 100.0,
                fmt_us(l.own_mean_us),
                fmt_us(l.wait_mean_us)
            ));
        }
        format!(
            "load generator saturated: {}; the difference is the generator's own lateness (sends on a free connection p99 {}, max {}; runtime p99 {}) {}. prodready cannot tell whether the target meets the gate. Run it again on a quieter machine (nothing else busy on its cores), at a lower rate, or split the rate over several generators whose .hlog files `prodready latency merge` combines",
            misses.join("; "),
            p99_text(g),
            fmt_us(g.max() as f64),
            p99_text(&r.recorder.runtime_lag),
            self.generator_facts(r, achieved),
        )
    }

    /// The message for an explicit `max_generator_lag` exceeded.
    fn bound_message(&self, r: &load::LoadResult, achieved: f64) -> String {
        let g = &r.recorder.generator_lag;
        format!(
            "load generator saturated: its own lag p99 {} exceeds max_generator_lag = {} (sends on a free connection p99 {}, max {}; runtime p99 {}; schedule lag p99 {}) {}; the latencies include the generator's lateness. Use a quieter machine, fewer connections, more cores (`threads`), a lower rate, or several generators whose .hlog files `prodready latency merge` combines",
            fmt_us(Self::own_lag_p99(r).unwrap_or(0) as f64),
            self.max_generator_lag
                .map(format_duration)
                .unwrap_or_default(),
            p99_text(g),
            fmt_us(g.max() as f64),
            p99_text(&r.recorder.runtime_lag),
            p99_text(&r.recorder.lag),
            self.generator_facts(r, achieved),
        )
    }

    fn evidence(&self, ctx: &ProbeContext, r: &load::LoadResult, o: &mut ProbeOutput) {
        let h = &r.recorder.corrected;
        if h.is_empty() {
            return;
        }
        let comments = [
            format!(
                "prodready latency probe: {} at {}/s, {} connections; values in microseconds",
                self.shown(), self.plan.rate_per_s, self.plan.connections
            ),
            "untagged intervals: latency from the intended send time (coordinated omission corrected); Tag=uncorrected: from the actual send time".to_string(),
        ];
        let comments: Vec<String> = comments.iter().map(|c| ctx.redactor.redact(c)).collect();
        let mut files: Vec<(String, Vec<u8>, &str, &str)> = Vec::new();
        match r.recorder.interval_log(r.base_wall, &comments) {
            Ok(bytes) => files.push((
                "latency.hlog".into(),
                bytes,
                "latency interval log (HdrHistogram, V2+DEFLATE)",
                "text/plain",
            )),
            Err(e) => o.log_tail = Some(e),
        }
        files.push((
            "latency.hgrm".into(),
            record::percentile_text(h).into_bytes(),
            "latency percentiles, corrected (HdrHistogram .hgrm, ms)",
            "text/plain",
        ));
        files.push((
            "latency-uncorrected.hgrm".into(),
            record::percentile_text(&r.recorder.uncorrected).into_bytes(),
            "latency percentiles, uncorrected (HdrHistogram .hgrm, ms)",
            "text/plain",
        ));
        match chart::render(
            &format!("Latency by percentile at {}/s", self.plan.rate_per_s),
            h,
            &r.recorder.uncorrected,
        ) {
            Ok(svg) => files.push((
                "latency-percentiles.svg".into(),
                svg.into_bytes(),
                "latency by percentile (corrected vs uncorrected)",
                "image/svg+xml",
            )),
            Err(e) => o.log_tail = Some(format!("chart: {e}")),
        }
        for (name, bytes, label, media) in files {
            match ctx.write_evidence(&name, &bytes, label, media) {
                Ok(ev) => o.evidence.push(ev),
                Err(e) => o.log_tail = Some(e),
            }
        }
    }
}

/// The p99 of `h` as text, "n/a" when empty.
fn p99_text(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        "n/a".into()
    } else {
        fmt_us(h.value_at_quantile(0.99) as f64)
    }
}

fn percent(fraction: f64) -> String {
    crate::units::format_percent(fraction, 3)
}

fn error_breakdown(r: &load::LoadResult) -> String {
    let parts: Vec<String> = r
        .error_kinds
        .iter()
        .filter_map(|k| {
            r.errors
                .get(k)
                .filter(|n| **n > 0)
                .map(|n| format!("{} {n}", k.as_str()))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

fn percentile_table(r: &load::LoadResult) -> Table {
    let h = &r.recorder.corrected;
    let u = &r.recorder.uncorrected;
    let lag = &r.recorder.lag;
    let target = &r.recorder.target;
    let cell = |hist: &Histogram<u64>, q: Option<f64>| {
        if hist.is_empty() {
            "—".to_string()
        } else {
            fmt_us(value_us(hist, q))
        }
    };
    Table {
        title: "Latency percentiles".into(),
        columns: vec![
            "".into(),
            "corrected (from intended send)".into(),
            "the target's part (corrected less the generator's own lag)".into(),
            "uncorrected (from actual send)".into(),
            "schedule lag".into(),
        ],
        rows: ROWS
            .iter()
            .map(|(label, _, q)| {
                vec![
                    label.to_string(),
                    cell(h, *q),
                    cell(target, *q),
                    cell(u, *q),
                    cell(lag, *q),
                ]
            })
            .chain(std::iter::once(vec![
                "count".into(),
                h.len().to_string(),
                target.len().to_string(),
                u.len().to_string(),
                lag.len().to_string(),
            ]))
            .collect(),
    }
}

crate::probe::probe_kind!(LatencyProbe, RawLatencyProbe, async);

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(extra: &str) -> RawLatencyProbe {
        toml::from_str(&format!(
            "url = \"http://127.0.0.1:9/api/v1/orders?x={{{{seq}}}}\"\nrate = 100.0\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn url_path_keeps_placeholders_and_host_port() {
        let http = Transport::Http;
        let (tls, h, port, path) =
            split_url("http://localhost:8080/a/{{seq}}?q={{uuid}}", http).unwrap();
        assert_eq!(
            (tls, h.as_str(), port, path.as_str()),
            (false, "localhost", 8080, "/a/{{seq}}?q={{uuid}}")
        );
        assert_eq!(split_url("http://h", http).unwrap().3, "/");
        let (tls, _, port, _) = split_url("https://h/", http).unwrap();
        assert_eq!((tls, port), (true, 443));
        assert!(split_url("ftp://h/", http).is_err());
        assert!(split_url("ws://h/", http).is_err());
        let (tls, _, port, _) = split_url("wss://h/ws/orders", Transport::WebSocket).unwrap();
        assert_eq!((tls, port), (true, 443));
    }

    #[test]
    fn timers_coalesce_only_when_sends_come_closer_than_the_quantum() {
        // 10 000/s on one thread: a send every 100 µs, so a 250 µs quantum saves wake-ups.
        assert_eq!(timer_quantum(10_000.0, None), Duration::from_micros(250));
        // 1 000/s: a send every 1 ms; each gets its own exact wake-up.
        assert_eq!(timer_quantum(1_000.0, None), Duration::ZERO);
        // The quantum never exceeds a quarter of an explicit generator-lag bound.
        assert_eq!(
            timer_quantum(1_000_000.0, Some(Duration::from_micros(400))),
            Duration::from_micros(100)
        );
    }

    #[test]
    fn the_generator_lag_bound_has_no_default() {
        let mut v = Validator::default();
        let probe = |v: &mut Validator, extra: &str| {
            raw(&format!("count = 100000\n{extra}"))
                .validate(v)
                .unwrap()
        };
        assert_eq!(probe(&mut v, "p99 = \"500ms\"").max_generator_lag, None);
        assert_eq!(
            probe(&mut v, "max_generator_lag = \"5ms\"").max_generator_lag,
            Some(Duration::from_millis(5))
        );
    }

    #[test]
    fn connections_and_threads_are_chosen_from_the_rate() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let probe = |extra: &str| {
            toml::from_str::<RawLatencyProbe>(&format!(
                "url = \"http://127.0.0.1:9/\"\ncount = 1000\n{extra}"
            ))
            .unwrap()
            .validate(&mut Validator::default())
            .unwrap()
        };
        let low = probe("rate = 200.0");
        assert_eq!((low.plan.threads, low.plan.connections), (1, 4));
        assert!(low.auto_connections && low.auto_threads);
        let mid = probe("rate = 20000.0");
        assert_eq!((mid.plan.threads, mid.plan.connections), (1, 100));
        assert_eq!(mid.plan.coalesce_ns, 250_000);
        let high = probe("rate = 100000.0");
        assert_eq!(high.plan.threads, 2.min(cores));
        assert_eq!(high.plan.connections % high.plan.threads, 0);
        let set = probe("rate = 20000.0\nconnections = 16\nthreads = 2");
        assert_eq!((set.plan.threads, set.plan.connections), (2, 16));
        assert!(!set.auto_connections && !set.auto_threads);
    }

    #[test]
    fn too_few_samples_for_the_threshold_is_rejected_up_front() {
        let e = raw("duration = \"5s\"\np999 = \"10ms\"")
            .validate(&mut Validator::default())
            .unwrap_err();
        assert_eq!(e.key, "duration");
        assert!(e.message.contains("min_samples = 10000"), "{}", e.message);
        let ok = raw("duration = \"5s\"\np99 = \"10ms\"\nmin_samples = 500")
            .validate(&mut Validator::default())
            .unwrap();
        assert_eq!(ok.plan.measured_requests, 500);
    }

    #[test]
    fn duration_and_count_are_exclusive_and_one_is_required() {
        assert_eq!(
            raw("count = 500\nduration = \"5s\"")
                .validate(&mut Validator::default())
                .unwrap_err()
                .key,
            "count"
        );
        assert_eq!(
            raw("").validate(&mut Validator::default()).unwrap_err().key,
            "duration"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (extra, key) in [
            ("count = 500\nrate_typo = 1", ""),
            ("count = 500\nmax_error_rate = 2.0", "max_error_rate"),
            ("count = 500\np99 = \"100\"", "p99"),
            ("count = 500\nconnections = 0", "connections"),
            ("count = 500\nbody = \"{{nope}}\"", "body"),
        ] {
            let r: Result<RawLatencyProbe, _> = toml::from_str(&format!(
                "url = \"http://127.0.0.1:9/\"\nrate = 100.0\n{extra}"
            ));
            match r {
                Err(e) => assert!(key.is_empty(), "{extra}: {e}"),
                Ok(r) => assert_eq!(r.validate(&mut Validator::default()).unwrap_err().key, key),
            }
        }
    }
}

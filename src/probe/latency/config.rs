//! The `latency` probe's keys: [`RawLatencyProbe`] as written in the checklist, and the
//! [`LatencyProbe`] it validates into, with the rules for the sizes of a run (rate, count or
//! duration, connections, threads, thresholds, `min_samples`, the timer quantum). The keys of
//! what goes over the wire are checked in [`super::wire_keys`].

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::load::{Plan, Wire};
// `max_generator_lag` links to it; its text is also the JSON Schema's, so it stays as written.
#[cfg(doc)]
use super::verdict;
use crate::keys::shared_keys;
use crate::probe::{FieldError, Validator};

shared_keys! {
    [fix_session, http_expect]
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
}

/// One latency threshold.
#[derive(Debug, Clone)]
pub(super) struct Threshold {
    pub(super) key: &'static str,
    /// Quantile, or `None` for the mean.
    pub(super) quantile: Option<f64>,
    pub(super) max: Duration,
}

/// A validated `latency` probe.
#[derive(Debug, Clone)]
pub struct LatencyProbe {
    pub(super) url_display: String,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) plan: Plan,
    /// `connections` and `threads` were chosen by the probe, not given.
    pub(super) auto_connections: bool,
    pub(super) auto_threads: bool,
    pub(super) thresholds: Vec<Threshold>,
    pub(super) max_error_rate: f64,
    pub(super) min_samples: u64,
    pub(super) max_generator_lag: Option<Duration>,
}

impl RawLatencyProbe {
    /// `rate`: requests per second, more than 0 and at most 10 000 000.
    pub(super) fn rate(&self) -> Result<f64, FieldError> {
        if self.rate.is_finite() && self.rate > 0.0 && self.rate <= 10_000_000.0 {
            Ok(self.rate)
        } else {
            Err(FieldError::new(
                "rate",
                "expected requests per second, more than 0 and at most 10 000 000",
            ))
        }
    }

    /// Requests measured: `count`, or `duration` × `rate` (exactly one of them).
    pub(super) fn measured_requests(&self, v: &Validator, rate: f64) -> Result<u64, FieldError> {
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
    pub(super) fn connections(&self, rate: f64, threads: usize) -> Result<usize, FieldError> {
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
    pub(super) fn threads(&self, rate: f64) -> Result<usize, FieldError> {
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
    pub(super) fn thresholds(&self, v: &Validator) -> Result<Vec<Threshold>, FieldError> {
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
    pub(super) fn min_samples(
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
pub(super) fn optional_duration(
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
pub(super) fn timer_quantum(per_thread_rate: f64, max_generator_lag: Option<Duration>) -> Duration {
    let quantum = max_generator_lag.map_or(MAX_QUANTUM, |b| MAX_QUANTUM.min(b / 4));
    if per_thread_rate * quantum.as_secs_f64() >= 1.0 {
        quantum
    } else {
        Duration::ZERO
    }
}

impl LatencyProbe {
    /// The target as shown: `POST http://…` or `WebSocket ws://…` (secrets redacted).
    pub(super) fn shown(&self) -> String {
        match &self.plan.wire {
            Wire::Http(h) => format!("{} {}", h.method, self.url_display),
            Wire::WebSocket(_) => format!("WebSocket {}", self.url_display),
            Wire::Fix(f) => format!("{} {}", f.session.version.begin_string(), self.url_display),
        }
    }
}

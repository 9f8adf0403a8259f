//! What the load generator is given and what it produces: the [`Plan`] (rate, counts,
//! connections, threads, the [`Wire`] that says what goes over each connection) and the
//! [`LoadResult`] (histograms and counts), with the error kinds both are reported in.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use http::header::{HeaderName, HeaderValue};

use super::websocket::WsWire;
use crate::order::connect::Version;
use crate::order::fix::FixWire;
use crate::order::pipelined::OrderTransport;
use crate::order::template::Template;
use crate::probe::expect::HttpExpect;
use crate::probe::latency::record::Recorder;

/// The kinds of request errors, as counted and reported (`errors_<kind>` in the measured
/// values, one row each in the "Errors by kind" table). Which kinds a probe reports depends on
/// its wire: [`Wire::error_kinds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No connection (refused, unreachable, reset before a response arrived, a failed TLS or
    /// protocol handshake).
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// A response with an unexpected HTTP status.
    Status,
    /// A response whose body is unreadable, not JSON, or fails the JSON pointer check.
    Body,
    /// Order transports: the connection closed (by the peer, or dropped after a protocol
    /// error) while the request was in flight; the message says why (e.g. the WebSocket close
    /// code and reason).
    Closed,
    /// Order transports: an answer that rejects the order, by the transport's name for the
    /// kind of reject (e.g. `rejected` for a WebSocket acknowledgement that fails its
    /// condition; `exec_report_rejected`, `business_reject`, `session_reject` for FIX).
    Reject(&'static str),
}

impl ErrorKind {
    /// Lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
            ErrorKind::Closed => "closed",
            ErrorKind::Reject(name) => name,
        }
    }

    /// The kinds of an HTTP probe, in report order.
    pub const HTTP: [ErrorKind; 4] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Status,
        ErrorKind::Body,
    ];
}

/// What goes over each connection and how an answer is judged.
#[derive(Debug, Clone)]
pub enum Wire {
    /// HTTP/1.1 or HTTP/2 requests ([`crate::order::http1`], [`crate::order::h2`]).
    Http(HttpWire),
    /// JSON order messages over WebSocket, pipelined ([`WsWire`]).
    WebSocket(WsWire),
    /// FIX 4.2 / 4.4 NewOrderSingles, one session per connection, pipelined ([`FixWire`]).
    Fix(Box<FixWire>),
}

impl Wire {
    /// The error kinds this wire reports, in report order: HTTP's four, or connect, timeout,
    /// closed and the transport's reject kinds.
    pub fn error_kinds(&self) -> Vec<ErrorKind> {
        match self {
            Wire::Http(_) => ErrorKind::HTTP.to_vec(),
            Wire::WebSocket(w) => order_error_kinds(w),
            Wire::Fix(f) => order_error_kinds(f.as_ref()),
        }
    }

    /// The ALPN protocol offered over TLS (RFC 7301), if any.
    pub fn alpn(&self) -> Option<&'static [u8]> {
        match self {
            Wire::Http(h) => Some(h.version.alpn()),
            // RFC 6455 §4.1: the opening handshake is an HTTP/1.1 request.
            Wire::WebSocket(_) => Some(Version::Http1.alpn()),
            // FIX over TLS names no application protocol.
            Wire::Fix(_) => None,
        }
    }
}

/// An HTTP wire: requests rendered from templates, responses judged by [`HttpExpect`].
#[derive(Debug, Clone)]
pub struct HttpWire {
    /// HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// `Host` header value.
    pub host: String,
    /// HTTP method.
    pub method: http::Method,
    /// Path and query template (origin form, starts with `/`).
    pub path: Template,
    /// Body template.
    pub body: Option<Template>,
    /// Extra headers (values may hold secrets; never shown).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What an acknowledgement must look like (status, body, JSON pointer).
    pub expect: HttpExpect,
}

/// Everything the generator needs, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `https://` or `wss://`: connect over TLS.
    pub tls: bool,
    /// PEM certificates trusted besides the Mozilla roots (`ca_file`), resolved.
    pub ca_file: Option<std::path::PathBuf>,
    /// What goes over the connections.
    pub wire: Wire,
    /// Arrival rate, requests per second.
    pub rate_per_s: f64,
    /// Requests sent before measuring starts.
    pub warmup_requests: u64,
    /// Requests measured.
    pub measured_requests: u64,
    /// Keep-alive connections.
    pub connections: usize,
    /// Generator threads, each a current-thread runtime (at most `connections`).
    pub threads: usize,
    /// Timer coalescing quantum, ns (0: wake at each intended send time).
    pub coalesce_ns: u64,
    /// Per-request timeout (connect included).
    pub timeout: Duration,
    /// Seed of the template generator.
    pub seed: u64,
    /// A pause forced on the generator on purpose ([`Stall::ENV`]), to rehearse how its own
    /// lateness is attributed; `None` in every ordinary run.
    pub stall: Option<Stall>,
}

/// A deliberate generator stall: before every `every`-th send (counting from the first, warm-up
/// included, the 0th excluded) the generator thread blocks for `pause`, as a descheduled or
/// CPU-starved process would. Sends due meanwhile leave late on a free connection, so the
/// lateness is the generator's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// Block before send `i` when `i % every == 0` and `i > 0`.
    pub every: u64,
    /// How long the thread blocks.
    pub pause: Duration,
}

impl Stall {
    /// The environment variable that asks for a stall: `"PAUSE every N"`, e.g.
    /// `PRODREADY_GENERATOR_STALL="200ms every 500"`.
    pub const ENV: &'static str = "PRODREADY_GENERATOR_STALL";

    /// The stall asked for by [`Stall::ENV`], if set.
    ///
    /// # Errors
    /// A message quoting the value when it is not `"PAUSE every N"` with a humantime pause and
    /// N ≥ 1.
    pub fn from_env() -> Result<Option<Stall>, String> {
        match std::env::var(Self::ENV) {
            Ok(v) => Self::parse(&v).map(Some),
            Err(_) => Ok(None),
        }
    }

    fn parse(text: &str) -> Result<Stall, String> {
        let bad = || {
            format!(
                "{}=\"{text}\": expected \"PAUSE every N\", e.g. \"200ms every 500\"",
                Self::ENV
            )
        };
        let mut words = text.split_whitespace();
        let (Some(pause), Some("every"), Some(n), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        let pause = humantime::parse_duration(pause).map_err(|_| bad())?;
        let every: u64 = n.parse().map_err(|_| bad())?;
        if every == 0 {
            return Err(bad());
        }
        Ok(Stall { every, pause })
    }

    /// Block the calling thread if send `i` is a stalled one.
    pub fn before_send(stall: Option<Stall>, i: u64) {
        if let Some(s) = stall
            && i > 0
            && i.is_multiple_of(s.every)
        {
            std::thread::sleep(s.pause);
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct LoadResult {
    /// The histograms.
    pub recorder: Recorder,
    /// The error kinds of the wire, in report order ([`Wire::error_kinds`]).
    pub error_kinds: Vec<ErrorKind>,
    /// Errors by kind (measured requests only).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first error message of each kind.
    pub first_error: BTreeMap<ErrorKind, String>,
    /// Responses by status code (measured requests only).
    pub statuses: BTreeMap<u16, u64>,
    /// Measured requests that succeeded.
    pub ok: u64,
    /// Measured requests whose turn came (sent or failed to connect).
    pub attempted: u64,
    /// Measured requests that got a response (any status).
    pub responded: u64,
    /// Wall-clock time of the first measured request's intended send time.
    pub base_wall: SystemTime,
    /// From the first measured intended send time to the last measured send.
    pub send_span: Duration,
    /// From the first measured intended send time to the last measured response.
    pub measure_span: Duration,
    /// Generator threads used.
    pub threads: usize,
    /// Times a generator thread armed its timer and slept until a send was due.
    pub timer_wakes: u64,
    /// CPU time (user + system) of the generator threads, connection set-up included.
    pub cpu: Duration,
    /// Connections opened (the initial pool and every reconnect).
    pub connects: u64,
    /// Order transports: inbound messages that answered no order (market data, heartbeats),
    /// warm-up included.
    pub ignored: u64,
    /// Order transports: answers naming no order in flight (one that already timed out, or
    /// another client's), warm-up included.
    pub unmatched: u64,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

/// The error kinds of a probe over transport `t`, in report order: connect, timeout, closed,
/// then the transport's rejects.
pub fn order_error_kinds<T: OrderTransport>(t: &T) -> Vec<ErrorKind> {
    let mut kinds = vec![ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Closed];
    kinds.extend(t.reject_kinds().iter().map(|k| ErrorKind::Reject(k)));
    kinds
}

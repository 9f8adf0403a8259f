//! The open-model load generator: requests leave on a fixed schedule (`start + i / rate`),
//! whatever the responses do, over a pool of connections, and the generator tells its own
//! lateness apart from the target's.
//!
//! The schedule, the histograms and the accounting are shared by every wire ([`Wire`]): HTTP/1.1
//! keep-alive ([`http1`]: one request in flight per connection), HTTP/2 (`h2`: multiplexed
//! streams), and the pipelined order transports ([`pipeline`]: every order sent at once and
//! matched to its answer by a correlation id): [`websocket`] and [`fix`].
//!
//! The design follows wrk2 (Tene's fork of wrk): connection `k` of `N` owns the intended
//! send times of requests `k, k + N, k + 2N, …`, so no request waits for a central permit or
//! crosses a thread. The connections are spread over `threads` OS threads, each running a
//! current-thread tokio runtime with one precise timer ([`clock`]): a thread sleeps until its
//! earliest due send, marks every send that has come due, and its connection tasks write them.
//! Requests are rendered into reused buffers and responses parsed without allocating
//! ([`http1`]). Each thread records into its own histograms; they are merged once, at the end.
//!
//! Every request gets three times (ns of `CLOCK_MONOTONIC`): `intended`, `sent` and `done`.
//! - corrected latency = done − intended (coordinated omission corrected, as wrk2 does);
//! - uncorrected latency = done − sent (what a closed-loop tool reports);
//! - schedule lag = sent − intended: all lateness, whoever caused it;
//! - generator lag = sent − max(intended, the moment its connection would have become free
//!   had the generator sent every earlier request on time: the target's service times laid
//!   end to end from the schedule). When the connection was still busy with an earlier
//!   response, the wait is the target's (it stays in the corrected latency, as the correction
//!   requires); whatever remains is the generator's own: a late timer, a busy runtime thread,
//!   a starved CPU;
//! - the target's part of the corrected latency = corrected − generator lag, recorded per
//!   response beside the corrected figure, so a verdict can tell whose lateness failed a gate
//!   (the probe's verdict rule is in `super::verdict`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::probe::expect::HttpExpect;
use http::header::{HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::record::Recorder;
use crate::order::template::Template;

pub mod clock;
mod engine;
mod h2;
pub mod pipeline;
pub mod websocket;

use crate::order::clock::{now_ns, since};
use crate::order::connect::{Connector, Version};
use crate::order::fix::FixWire;

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
    /// HTTP/1.1 or HTTP/2 requests ([`http1`], `h2`).
    Http(HttpWire),
    /// JSON order messages over WebSocket, pipelined ([`websocket`], [`pipeline`]).
    WebSocket(websocket::WsWire),
    /// FIX 4.2 / 4.4 NewOrderSingles, one session per connection, pipelined ([`fix`],
    /// [`pipeline`]).
    Fix(Box<FixWire>),
}

impl Wire {
    /// The error kinds this wire reports, in report order: HTTP's four, or connect, timeout,
    /// closed and the transport's reject kinds.
    pub fn error_kinds(&self) -> Vec<ErrorKind> {
        match self {
            Wire::Http(_) => ErrorKind::HTTP.to_vec(),
            Wire::WebSocket(w) => pipeline::error_kinds(w),
            Wire::Fix(f) => pipeline::error_kinds(f.as_ref()),
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

/// What every generator thread shares: the plan and the run's fate.
struct Global {
    plan: Plan,
    connector: Connector,
    total: u64,
    period_ns: f64,
    stop: CancellationToken,
    connect_failures: AtomicU64,
    any_response: AtomicBool,
    aborted: Mutex<Option<String>>,
}

impl Global {
    /// Stop the run; the first reason given is kept.
    fn halt(&self, reason: String) {
        let mut a = self.aborted.lock().unwrap_or_else(|e| e.into_inner());
        if a.is_none() {
            *a = Some(reason);
        }
        drop(a);
        self.stop.cancel();
    }
}

/// One thread's counts and histograms, merged into the [`LoadResult`] at the end.
struct Stats {
    recorder: Recorder,
    errors: BTreeMap<ErrorKind, u64>,
    first_error: BTreeMap<ErrorKind, String>,
    statuses: BTreeMap<u16, u64>,
    ok: u64,
    attempted: u64,
    responded: u64,
    last_send_ns: u64,
    last_done_ns: u64,
    connects: u64,
    ignored: u64,
    unmatched: u64,
    timer_wakes: u64,
    cpu: Duration,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            recorder: Recorder::new(Duration::from_secs(1)),
            errors: BTreeMap::new(),
            first_error: BTreeMap::new(),
            statuses: BTreeMap::new(),
            ok: 0,
            attempted: 0,
            responded: 0,
            last_send_ns: 0,
            last_done_ns: 0,
            connects: 0,
            ignored: 0,
            unmatched: 0,
            timer_wakes: 0,
            cpu: Duration::ZERO,
        }
    }

    fn error(&mut self, kind: ErrorKind, message: impl FnOnce() -> String) {
        *self.errors.entry(kind).or_default() += 1;
        self.first_error.entry(kind).or_insert_with(message);
    }

    /// Add `other`'s counts (histograms are merged separately).
    fn absorb(&mut self, other: Stats) -> Recorder {
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        for (k, m) in other.first_error {
            self.first_error.entry(k).or_insert(m);
        }
        for (k, n) in other.statuses {
            *self.statuses.entry(k).or_default() += n;
        }
        self.ok += other.ok;
        self.attempted += other.attempted;
        self.responded += other.responded;
        self.last_send_ns = self.last_send_ns.max(other.last_send_ns);
        self.last_done_ns = self.last_done_ns.max(other.last_done_ns);
        self.connects += other.connects;
        self.ignored += other.ignored;
        self.unmatched += other.unmatched;
        self.timer_wakes += other.timer_wakes;
        self.cpu += other.cpu;
        other.recorder
    }
}

/// Run the plan to the end (or until `cancel`, or until the target proves unreachable).
///
/// Dropping the returned future (the item timeout) stops every generator thread.
pub async fn run(plan: Plan, connector: Connector, cancel: CancellationToken) -> LoadResult {
    let connections = plan.connections.max(1);
    let threads = plan.threads.clamp(1, connections);
    let total = plan.warmup_requests + plan.measured_requests;
    let stop = CancellationToken::new();
    let _stop_on_drop = stop.clone().drop_guard();
    let global = Arc::new(Global {
        period_ns: 1e9 / plan.rate_per_s,
        plan,
        connector,
        total,
        stop: stop.clone(),
        connect_failures: AtomicU64::new(0),
        any_response: AtomicBool::new(false),
        aborted: Mutex::new(None),
    });
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<u64>);
    let mut results = Vec::new();
    for t in 0..threads {
        let (tx, rx) = tokio::sync::oneshot::channel();
        results.push(rx);
        let job = engine::Thread {
            index: t,
            threads,
            global: global.clone(),
            ready: ready_tx.clone(),
            start: start_rx.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("latency-gen-{t}"))
            .spawn(move || {
                let _ = tx.send(job.run());
            });
        if let Err(e) = spawned {
            global.halt(format!("starting generator thread {t}: {e}"));
        }
    }
    drop(ready_tx);
    let watcher = {
        let global = global.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => global.halt("interrupted".into()),
                _ = global.stop.cancelled() => {}
            }
        })
    };
    // Open every pool first, so connection set-up does not land on the first samples.
    let mut up = 0usize;
    let mut first_error = None;
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(n) => up += n,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let start_ns = now_ns() + 2_000_000;
    let measure_start_ns =
        start_ns + (global.plan.warmup_requests as f64 * global.period_ns) as u64;
    let base_wall = SystemTime::now() + since(measure_start_ns, now_ns());
    if up == 0 {
        global.halt(format!(
            "could not connect: {}",
            first_error.unwrap_or_else(|| "no connection".into())
        ));
    } else {
        let _ = start_tx.send(Some(start_ns));
    }
    let mut parts = Vec::new();
    for rx in results {
        if let Ok(s) = rx.await {
            parts.push(s);
        }
    }
    watcher.abort();
    finish(&global, parts, measure_start_ns, base_wall, threads)
}

/// Merge the threads' results into one.
fn finish(
    global: &Global,
    parts: Vec<Stats>,
    measure_start_ns: u64,
    base_wall: SystemTime,
    threads: usize,
) -> LoadResult {
    let mut all = Stats::new();
    let mut recorders = Vec::new();
    for p in parts {
        recorders.push(all.absorb(p));
    }
    let end = if all.last_done_ns == 0 {
        Duration::ZERO
    } else {
        since(all.last_done_ns, measure_start_ns)
    };
    let send_span = if all.last_send_ns == 0 {
        Duration::ZERO
    } else {
        since(all.last_send_ns, measure_start_ns)
    };
    let mut aborted = global
        .aborted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let recorder = match Recorder::merge(recorders, end) {
        Ok(r) => r,
        Err(e) => {
            aborted.get_or_insert(format!("merging the threads' histograms: {e}"));
            Recorder::new(Duration::from_secs(1))
        }
    };
    LoadResult {
        recorder,
        error_kinds: global.plan.wire.error_kinds(),
        errors: all.errors,
        first_error: all.first_error,
        statuses: all.statuses,
        ok: all.ok,
        attempted: all.attempted,
        responded: all.responded,
        base_wall,
        send_span,
        measure_span: end,
        threads,
        timer_wakes: all.timer_wakes,
        cpu: all.cpu,
        connects: all.connects,
        ignored: all.ignored,
        unmatched: all.unmatched,
        aborted,
    }
}

//! The open-model load generator: requests leave on a fixed schedule (`start + i / rate`),
//! whatever the responses do, over a pool of HTTP/1.1 keep-alive connections (hyper).
//!
//! A dedicated scheduler thread releases one semaphore permit per request when its intended
//! send time comes (sleeping with 1 µs timer slack, not tokio's 1 ms timer wheel). One task
//! per connection takes the next permit, sends, and records the latency from the *intended*
//! send time (coordinated omission corrected, as wrk2 does) and from the actual send time (the
//! uncorrected twin). When every connection is busy, permits queue up and the lateness shows
//! as schedule lag; the lag, the scheduler's own lateness and the achieved rate are reported,
//! so an overloaded generator or a saturated target is visible, never hidden.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::probe::expect::HttpExpect;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::record::Recorder;
use super::template::{Rng, Template};

/// The kinds of request errors, as counted and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No connection (refused, unreachable, reset before a response arrived).
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// A response with an unexpected HTTP status.
    Status,
    /// A response whose body is unreadable, not JSON, or fails the JSON pointer check.
    Body,
}

impl ErrorKind {
    /// Lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
        }
    }

    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Status,
        ErrorKind::Body,
    ];
}

/// Everything the generator needs, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Resolved target address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// HTTP method.
    pub method: hyper::Method,
    /// Path and query template (origin form, starts with `/`).
    pub path: Template,
    /// Body template.
    pub body: Option<Template>,
    /// Extra headers (values may hold secrets; never shown).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Arrival rate, requests per second.
    pub rate_per_s: f64,
    /// Requests sent before measuring starts.
    pub warmup_requests: u64,
    /// Requests measured.
    pub measured_requests: u64,
    /// Keep-alive connections.
    pub connections: usize,
    /// Per-request timeout (connect included).
    pub timeout: Duration,
    /// What an acknowledgement must look like (status, body, JSON pointer).
    pub expect: HttpExpect,
    /// Seed of the template generator.
    pub seed: u64,
}

/// What a run produced.
#[derive(Debug)]
pub struct LoadResult {
    /// The histograms.
    pub recorder: Recorder,
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
    /// Largest lateness of the scheduler thread itself (CPU starvation of the generator).
    pub scheduler_max_late: Duration,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

struct Shared {
    recorder: Recorder,
    errors: BTreeMap<ErrorKind, u64>,
    first_error: BTreeMap<ErrorKind, String>,
    statuses: BTreeMap<u16, u64>,
    ok: u64,
    attempted: u64,
    responded: u64,
    last_send: Option<Instant>,
    last_done: Option<Instant>,
    any_response: bool,
    connect_failures: u64,
    aborted: Option<String>,
}

impl Shared {
    fn error(&mut self, kind: ErrorKind, message: impl FnOnce() -> String) {
        *self.errors.entry(kind).or_default() += 1;
        self.first_error.entry(kind).or_insert_with(message);
    }
}

struct Ctl {
    plan: Plan,
    total: u64,
    start: Instant,
    period_ns: f64,
    measure_start: Instant,
    base_wall: SystemTime,
    sem: Semaphore,
    claim: AtomicU64,
    stop: AtomicBool,
    shared: Mutex<Shared>,
}

impl Ctl {
    fn intended(&self, i: u64) -> Instant {
        self.start + Duration::from_nanos((i as f64 * self.period_ns) as u64)
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn halt(&self, reason: String) {
        let mut s = self.shared();
        if s.aborted.is_none() {
            s.aborted = Some(reason);
        }
        drop(s);
        self.stop.store(true, Ordering::SeqCst);
        self.sem.add_permits(self.plan.connections + 1);
    }
}

type Conn = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("{addr}: HTTP handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{addr}: connect timed out after {}",
            crate::units::format_duration(timeout)
        )),
    }
}

/// Run the plan to the end (or until `cancel`, or until the target proves unreachable).
pub async fn run(plan: Plan, cancel: CancellationToken) -> LoadResult {
    let total = plan.warmup_requests + plan.measured_requests;
    let connections = plan.connections.max(1);
    // Open the pool first so connection set-up does not land on the first samples.
    let conns: Vec<Result<Conn, String>> =
        futures::future::join_all((0..connections).map(|_| connect(plan.addr, plan.timeout))).await;
    let period_ns = 1e9 / plan.rate_per_s;
    let start = Instant::now() + Duration::from_millis(2);
    let measure_start =
        start + Duration::from_nanos((plan.warmup_requests as f64 * period_ns) as u64);
    let base_wall = SystemTime::now() + measure_start.saturating_duration_since(Instant::now());
    let ctl = Arc::new(Ctl {
        total,
        start,
        period_ns,
        measure_start,
        base_wall,
        sem: Semaphore::new(0),
        claim: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        shared: Mutex::new(Shared {
            recorder: Recorder::new(Duration::from_secs(1)),
            errors: BTreeMap::new(),
            first_error: BTreeMap::new(),
            statuses: BTreeMap::new(),
            ok: 0,
            attempted: 0,
            responded: 0,
            last_send: None,
            last_done: None,
            any_response: false,
            connect_failures: 0,
            aborted: None,
        }),
        plan,
    });
    if conns.iter().all(|c| c.is_err()) {
        let msg = conns
            .into_iter()
            .find_map(|c| c.err())
            .unwrap_or_else(|| "no connection".into());
        return finish(
            ctl,
            Some(format!("could not connect: {msg}")),
            Duration::ZERO,
        );
    }

    // Stops the scheduler thread if this future is dropped (item timeout) before the end.
    let _stop_on_drop = StopOnDrop(ctl.clone());
    let scheduler = {
        let ctl = ctl.clone();
        std::thread::Builder::new()
            .name("latency-scheduler".into())
            .spawn(move || schedule(&ctl))
            .expect("spawning the scheduler thread")
    };
    let mut workers = tokio::task::JoinSet::new();
    for (id, conn) in conns.into_iter().enumerate() {
        let ctl = ctl.clone();
        workers.spawn(worker(id as u64, ctl, conn.ok()));
    }
    let watcher = {
        let ctl = ctl.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            ctl.halt("interrupted".into());
        })
    };
    while workers.join_next().await.is_some() {}
    watcher.abort();
    ctl.stop.store(true, Ordering::SeqCst);
    let late = tokio::task::spawn_blocking(move || scheduler.join().unwrap_or_default())
        .await
        .unwrap_or_default();
    finish(ctl, None, late)
}

struct StopOnDrop(Arc<Ctl>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

fn finish(ctl: Arc<Ctl>, abort: Option<String>, scheduler_max_late: Duration) -> LoadResult {
    let mut s = ctl.shared();
    let end = s
        .last_done
        .unwrap_or(ctl.measure_start)
        .saturating_duration_since(ctl.measure_start);
    s.recorder.finish(end);
    let send_span = s
        .last_send
        .map(|t| t.saturating_duration_since(ctl.measure_start))
        .unwrap_or_default();
    let recorder = std::mem::replace(&mut s.recorder, Recorder::new(Duration::from_secs(1)));
    LoadResult {
        recorder,
        errors: std::mem::take(&mut s.errors),
        first_error: std::mem::take(&mut s.first_error),
        statuses: std::mem::take(&mut s.statuses),
        ok: s.ok,
        attempted: s.attempted,
        responded: s.responded,
        base_wall: ctl.base_wall,
        send_span,
        measure_span: end,
        scheduler_max_late,
        aborted: abort.or_else(|| s.aborted.take()),
    }
}

/// The scheduler thread: release one permit per request at its intended time. Returns its own
/// largest lateness.
fn schedule(ctl: &Ctl) -> Duration {
    let _ = nix::sys::prctl::set_timerslack(1_000);
    let mut released = 0u64;
    let mut max_late = Duration::ZERO;
    while released < ctl.total && !ctl.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(ctl.start).as_nanos() as f64;
        let due = if now < ctl.start {
            0
        } else {
            ((elapsed / ctl.period_ns) as u64 + 1).min(ctl.total)
        };
        if due > released {
            max_late = max_late.max(now.saturating_duration_since(ctl.intended(released)));
            ctl.sem.add_permits((due - released) as usize);
            released = due;
            continue;
        }
        let next = ctl.intended(released);
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait.min(Duration::from_millis(50)));
        }
    }
    // Wake every connection task so it sees the end.
    ctl.sem.add_permits(ctl.plan.connections + 1);
    max_late
}

async fn worker(id: u64, ctl: Arc<Ctl>, mut conn: Option<Conn>) {
    let plan = &ctl.plan;
    // Independent streams: SplitMix64 states that differ by a multiple of its increment would
    // replay each other, so each connection starts from a mixed (effectively random) state.
    let mut rng = Rng::new(
        Rng::new(
            plan.seed
                .wrapping_add(id.wrapping_mul(0xd1b5_4a32_d192_ed03)),
        )
        .next_u64(),
    );
    let mut path = String::new();
    let mut body = String::new();
    loop {
        match ctl.sem.acquire().await {
            Ok(p) => p.forget(),
            Err(_) => break,
        }
        if ctl.stop.load(Ordering::Relaxed) {
            break;
        }
        let i = ctl.claim.fetch_add(1, Ordering::Relaxed);
        if i >= ctl.total {
            break;
        }
        let intended = ctl.intended(i);
        let measured = i >= plan.warmup_requests;

        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = None;
        }
        if let Some(c) = conn.as_mut()
            && c.ready().await.is_err()
        {
            conn = None;
        }
        if conn.is_none() {
            match connect(plan.addr, plan.timeout).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    let mut s = ctl.shared();
                    s.connect_failures += 1;
                    if measured {
                        s.attempted += 1;
                        s.error(ErrorKind::Connect, || e.clone());
                    }
                    let hopeless = !s.any_response && s.connect_failures >= 20;
                    drop(s);
                    if hopeless {
                        ctl.halt(format!("target unreachable: {e}"));
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };

        plan.path.render(i, &mut rng, &mut path);
        let req_body = match &plan.body {
            Some(t) => {
                t.render(i, &mut rng, &mut body);
                Bytes::copy_from_slice(body.as_bytes())
            }
            None => Bytes::new(),
        };
        let mut builder = hyper::Request::builder()
            .method(plan.method.clone())
            .uri(path.as_str())
            .header(hyper::header::HOST, plan.host.as_str());
        for (k, v) in &plan.headers {
            builder = builder.header(k, v);
        }
        let req = match builder.body(Full::new(req_body)) {
            Ok(r) => r,
            Err(e) => {
                ctl.halt(format!("building request {i}: {e}"));
                break;
            }
        };
        let sent = Instant::now();
        let exchange = async {
            let resp = c.send_request(req).await?;
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>((parts.status.as_u16(), bytes))
        };
        let result = tokio::time::timeout(plan.timeout, exchange).await;
        let done = Instant::now();
        let mut s = ctl.shared();
        if measured {
            s.attempted += 1;
            s.recorder
                .record_lag(sent.saturating_duration_since(intended));
            s.last_send = Some(sent);
        }
        match result {
            Err(_) => {
                conn = None;
                if measured {
                    let t = plan.timeout;
                    s.error(ErrorKind::Timeout, || {
                        format!(
                            "no complete response within {}",
                            crate::units::format_duration(t)
                        )
                    });
                }
            }
            Ok(Err(e)) => {
                conn = None;
                if measured {
                    let kind = if e.is_parse() || e.is_body_write_aborted() {
                        ErrorKind::Body
                    } else {
                        ErrorKind::Connect
                    };
                    s.error(kind, || format!("{}: {e}", plan.addr));
                }
            }
            Ok(Ok((status, bytes))) => {
                s.any_response = true;
                if measured {
                    s.responded += 1;
                    s.last_done = Some(done);
                    *s.statuses.entry(status).or_default() += 1;
                    let at = done.saturating_duration_since(ctl.measure_start);
                    s.recorder.record(
                        at,
                        done.saturating_duration_since(intended),
                        done.saturating_duration_since(sent),
                    );
                    if !plan.expect.status.accepts(status) {
                        s.error(ErrorKind::Status, || {
                            format!("HTTP {status}: {}", snippet(&bytes))
                        });
                    } else {
                        match plan.expect.check_body(&bytes) {
                            Ok(()) => s.ok += 1,
                            Err(m) => {
                                s.error(ErrorKind::Body, || format!("{m}: {}", snippet(&bytes)))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn snippet(bytes: &[u8]) -> String {
    let t = String::from_utf8_lossy(bytes);
    let one_line: String = t
        .chars()
        .take(160)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.trim().to_string()
}

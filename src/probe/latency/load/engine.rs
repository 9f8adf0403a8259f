//! One generator thread: a current-thread tokio runtime, its share of the connections, one
//! timer, and the driver that marks their sends due.
//!
//! Connection `k` of `N` lives on thread `k mod T` and sends requests `k, k + N, k + 2N, …`.
//! The thread's driver walks the merged schedule of its connections in order: it sleeps on the
//! thread's [`Timer`] only when the next send is still in the future, then bumps that
//! connection's due count and wakes its task (a same-thread wake-up, no syscall). A connection
//! busy with an earlier response picks the send up when it is free; that wait is the target's.
//!
//! What a connection is and how its task talks is the wire's business ([`Driver`]): HTTP/1.1,
//! HTTP/2 and the pipelined order transports each open their connections (set-up timed apart)
//! and run one task per connection; the schedule, the recording and the reconnects are here.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use super::clock::Timer;
use super::pipeline::Pipelined;
use super::{ErrorKind, Global, HttpWire, Stats, Wire, h2};
use crate::order::clock::{now_ns, since};
use crate::order::connect::{Stream, Version};
use crate::order::http1::{ExchangeError, Reader, RequestHead};
use crate::order::snippet;
use crate::order::template::Rng;

/// What a thread is given.
pub(super) struct Thread {
    pub index: usize,
    pub threads: usize,
    pub global: Arc<Global>,
    /// Sends the number of connections opened (or the first error) once the pool is up.
    pub ready: mpsc::UnboundedSender<Result<usize, String>>,
    /// The schedule's start (ns of `CLOCK_MONOTONIC`), once every thread is ready.
    pub start: watch::Receiver<Option<u64>>,
}

/// A connection's mailbox from the driver.
#[derive(Default)]
pub(super) struct Slot {
    /// Sends released to this connection so far.
    due: Cell<u64>,
    /// The driver has released its last send.
    finished: Cell<bool>,
    wake: Notify,
}

/// What the tasks of one thread share.
pub(super) struct Local {
    pub global: Arc<Global>,
    pub start_ns: u64,
    pub connections: u64,
    pub stats: RefCell<Stats>,
}

/// How one wire opens its connections and drives each of them.
pub(super) trait Driver: 'static {
    /// An open connection, ready for requests (handshakes done).
    type Conn: 'static;

    /// Open one connection within the request timeout; returns it with its set-up time (TCP,
    /// TLS and any protocol handshake), or why it failed.
    fn open(&self, global: &Global)
    -> impl Future<Output = Result<(Self::Conn, Duration), String>>;

    /// The task of connection `k`: send each request `slot` releases, record each answer.
    /// `conn` is the connection opened for it before the start, if that worked.
    fn connection(
        &self,
        k: u64,
        slot: Rc<Slot>,
        conn: Option<Self::Conn>,
        local: Rc<Local>,
    ) -> impl Future<Output = ()> + 'static;
}

/// HTTP connections: HTTP/1.1 keep-alive ([`connection`]) or HTTP/2 ([`h2::connection`]; its
/// handshake happens on the first request).
struct Http(Rc<HttpWire>);

impl Driver for Http {
    type Conn = Stream;

    async fn open(&self, global: &Global) -> Result<(Stream, Duration), String> {
        global.connector.connect(global.plan.timeout).await
    }

    fn connection(
        &self,
        k: u64,
        slot: Rc<Slot>,
        conn: Option<Stream>,
        local: Rc<Local>,
    ) -> impl Future<Output = ()> + 'static {
        let wire = self.0.clone();
        async move {
            match wire.version {
                Version::Http1 => connection(wire, k, slot, conn, local).await,
                Version::Http2 => h2::connection(wire, k, slot, conn, local).await,
            }
        }
    }
}

impl Local {
    /// The intended send time of request `i`.
    pub fn intended(&self, i: u64) -> u64 {
        self.start_ns + (i as f64 * self.global.period_ns) as u64
    }
}

impl Thread {
    /// Run this thread's share of the plan; its statistics, CPU time included.
    pub fn run(mut self) -> Stats {
        let _ = nix::sys::prctl::set_timerslack(1_000);
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = self.ready.send(Err(format!("starting a runtime: {e}")));
                return Stats::new();
            }
        };
        let local = tokio::task::LocalSet::new();
        let mut stats = local.block_on(&rt, self.drive());
        drop(local);
        drop(rt);
        if let Ok(u) = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD) {
            let us = |t: nix::sys::time::TimeVal| {
                Duration::from_micros(t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64)
            };
            stats.cpu = us(u.user_time()) + us(u.system_time());
        }
        stats
    }

    /// Drive this thread's connections over the plan's wire.
    async fn drive(&mut self) -> Stats {
        match &self.global.plan.wire {
            Wire::Http(h) => self.drive_with(Http(Rc::new(h.clone()))).await,
            Wire::WebSocket(w) => self.drive_with(Pipelined(w.clone())).await,
            Wire::Fix(f) => self.drive_with(Pipelined(f.as_ref().clone())).await,
        }
    }

    /// Open this thread's connections, report, wait for the start, then release the sends on
    /// schedule to the connections' tasks until the last one is done.
    async fn drive_with<D: Driver>(&mut self, driver: D) -> Stats {
        let g = self.global.clone();
        let n = g.plan.connections.max(1) as u64;
        let mine: Vec<u64> = (0..n)
            .filter(|k| *k as usize % self.threads == self.index)
            .collect();
        let mut stats = Stats::new();
        let opened = tokio::select! {
            o = futures::future::join_all(mine.iter().map(|_| driver.open(&g))) => o,
            _ = g.stop.cancelled() => return stats,
        };
        let mut first_error = None;
        let mut conns = Vec::new();
        for o in opened {
            match o {
                Ok((c, took)) => {
                    stats.connects += 1;
                    stats.recorder.record_connect(took);
                    conns.push(Some(c));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    conns.push(None);
                }
            }
        }
        let up = conns.iter().filter(|s| s.is_some()).count();
        let _ = self.ready.send(if up > 0 {
            Ok(up)
        } else {
            Err(first_error.unwrap_or_else(|| "no connection".into()))
        });
        // Drop our sender so the coordinator sees every thread has reported.
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.ready, closed));
        let start_ns = tokio::select! {
            s = self.start.wait_for(Option::is_some) => match s {
                Ok(v) => v.unwrap_or_default(),
                Err(_) => return stats,
            },
            _ = g.stop.cancelled() => return stats,
        };
        let local = Rc::new(Local {
            global: g.clone(),
            start_ns,
            connections: n,
            stats: RefCell::new(stats),
        });
        let slots: Vec<Rc<Slot>> = mine.iter().map(|_| Rc::new(Slot::default())).collect();
        let mut tasks = Vec::new();
        for ((k, conn), slot) in mine.iter().zip(conns).zip(&slots) {
            let task = driver.connection(*k, slot.clone(), conn, local.clone());
            tasks.push(tokio::task::spawn_local(task));
        }
        let period = heartbeat_period_ns(&local, self.threads);
        let heartbeat = tokio::task::spawn_local(heartbeat(local.clone(), period));
        let wakes = tokio::select! {
            w = release(&local, &mine, &slots) => w,
            _ = g.stop.cancelled() => 0,
        };
        for s in &slots {
            s.finished.set(true);
            s.wake.notify_one();
        }
        tokio::select! {
            _ = futures::future::join_all(tasks) => {},
            _ = g.stop.cancelled() => {},
        }
        heartbeat.abort();
        let mut stats = std::mem::replace(&mut *local.stats.borrow_mut(), Stats::new());
        stats.timer_wakes = wakes;
        stats
    }
}

/// The driver: release each of this thread's sends at its intended time. Returns the timer's
/// wake count.
async fn release(local: &Local, mine: &[u64], slots: &[Rc<Slot>]) -> u64 {
    let g = &local.global;
    let mut timer = match Timer::new() {
        Ok(t) => t,
        Err(e) => {
            g.halt(format!("generator timer: {e}"));
            return 0;
        }
    };
    let mut round = 0u64;
    'schedule: loop {
        for (k, slot) in mine.iter().zip(slots) {
            let i = round * local.connections + k;
            if i >= g.total {
                break 'schedule;
            }
            let due = local.intended(i);
            // Coalesce wake-ups: sleep to the next multiple of the quantum on the schedule's
            // grid, so every send due by then leaves on the same wake (late, never early).
            let q = g.plan.coalesce_ns;
            let wake = if q == 0 || now_ns() >= due {
                due
            } else {
                local.start_ns + (due - local.start_ns).div_ceil(q) * q
            };
            if let Err(e) = timer.sleep_until(wake).await {
                g.halt(format!("generator timer: {e}"));
                break 'schedule;
            }
            super::Stall::before_send(g.plan.stall, i);
            slot.due.set(slot.due.get() + 1);
            slot.wake.notify_one();
        }
        round += 1;
    }
    timer.wakes()
}

/// Period of the runtime-lag heartbeat: about one sample per send of the thread, between 1 ms
/// (a busy thread is sampled often) and 10 ms (an idle one does not wake more often for the
/// heartbeat than for its sends).
fn heartbeat_period_ns(local: &Local, threads: usize) -> u64 {
    let per_thread_rate = local.global.plan.rate_per_s / threads.max(1) as f64;
    ((1e9 / per_thread_rate) as u64).clamp(1_000_000, 10_000_000)
}

/// Sample the runtime's lateness through the measured run: sleep on a timer of its own until a
/// deadline, then record how long after the deadline this task ran. It runs until the thread's
/// connections are done (the thread aborts it).
async fn heartbeat(local: Rc<Local>, period_ns: u64) {
    let Ok(mut timer) = Timer::new() else { return };
    let measure_start = local.intended(local.global.plan.warmup_requests);
    let mut deadline = measure_start;
    loop {
        if timer.sleep_until(deadline).await.is_err() {
            return;
        }
        let late = since(now_ns(), deadline);
        local.stats.borrow_mut().recorder.record_runtime_lag(late);
        // The next deadline on the grid, skipping the ones already missed.
        let now = now_ns();
        deadline += period_ns * (1 + now.saturating_sub(deadline) / period_ns);
    }
}

/// When a connection would have become free had the generator been on time: it could take the
/// request intended at `intended` at `max(intended, free_since)` (its previous on-time free
/// moment), and the target then held it for `end − start` (a service time, or a connection
/// set-up). Measuring the hold from the on-time moment keeps one late send of the generator
/// from delaying every later request's "connection free" moment, which would pass the
/// generator's lateness off as the target's wait.
pub(super) fn on_time_free(intended: u64, free_since: u64, start: u64, end: u64) -> u64 {
    intended.max(free_since) + end.saturating_sub(start)
}

/// One request's three times (ns of `CLOCK_MONOTONIC`) and its index.
#[derive(Clone, Copy)]
pub(super) struct Times {
    pub i: u64,
    pub intended: u64,
    /// The later of `intended` and the moment the connection could have taken the request had
    /// the generator sent every earlier one on time ([`on_time_free`]).
    pub ready_at: u64,
    pub sent: u64,
}

/// How one request ended: no answer (the error), or an answer with its HTTP status (if the
/// wire has one) and its verdict: accepted, or an error of some kind. The verdict is only
/// worked out for measured requests.
pub(super) type Answer<F> = Result<(Option<u16>, F), Failure>;

/// Why a request failed: its error kind and a message.
pub(super) type Failure = (ErrorKind, String);

/// A verdict on an answer: accepted, or why not.
pub(super) type Verdict = Result<(), Failure>;

/// Record one finished request: its latencies when it got an answer, its error otherwise or
/// when `verdict` rejects the answer.
pub(super) fn record<F>(local: &Local, t: Times, done: u64, answer: Answer<F>)
where
    F: FnOnce() -> Verdict,
{
    let g = &local.global;
    let plan = &g.plan;
    if answer.is_ok() && !g.any_response.load(Ordering::Relaxed) {
        g.any_response.store(true, Ordering::Relaxed);
    }
    if t.i < plan.warmup_requests {
        return;
    }
    let mut st = local.stats.borrow_mut();
    st.attempted += 1;
    st.recorder.record_lag(since(t.sent, t.intended));
    let own_lag = since(t.sent, t.ready_at);
    st.recorder
        .record_lateness(since(t.ready_at, t.intended), own_lag);
    st.last_send_ns = st.last_send_ns.max(t.sent);
    match answer {
        Err((kind, m)) => st.error(kind, || m),
        Ok((status, verdict)) => {
            st.responded += 1;
            st.last_done_ns = st.last_done_ns.max(done);
            if let Some(status) = status {
                *st.statuses.entry(status).or_default() += 1;
            }
            let base = local.intended(plan.warmup_requests);
            st.recorder.record(
                since(done, base),
                since(done, t.intended),
                since(done, t.sent),
                own_lag,
            );
            match verdict() {
                Ok(()) => st.ok += 1,
                Err((kind, m)) => st.error(kind, || m),
            }
        }
    }
}

/// Record one finished HTTP exchange: `Ok((status, body))`, judged by the wire's expectation,
/// or the error's kind and message.
pub(super) fn record_http(
    local: &Local,
    wire: &HttpWire,
    t: Times,
    done: u64,
    result: Result<(u16, &[u8]), (ErrorKind, String)>,
) {
    let answer = result.map(|(status, bytes)| {
        let verdict = move || {
            if !wire.expect.status.accepts(status) {
                Err((
                    ErrorKind::Status,
                    format!("HTTP {status}: {}", snippet(bytes)),
                ))
            } else {
                wire.expect
                    .check_body(bytes)
                    .map_err(|m| (ErrorKind::Body, format!("{m}: {}", snippet(bytes))))
            }
        };
        (Some(status), verdict)
    });
    record(local, t, done, answer);
}

/// A request that could not be sent: record it as failed at `now` with `kind` and `message`.
pub(super) fn failed(local: &Local, i: u64, intended: u64, kind: ErrorKind, message: String) {
    let now = now_ns();
    let t = Times {
        i,
        intended,
        ready_at: now.max(intended),
        sent: now,
    };
    record(local, t, now, no_answer(kind, message));
}

/// An [`Answer`] without an answer: the request failed with `kind`.
pub(super) fn no_answer(kind: ErrorKind, message: String) -> Answer<fn() -> Verdict> {
    Err((kind, message))
}

/// The timeout error message.
pub(super) fn timeout_message(timeout: Duration) -> String {
    format!(
        "no complete response within {}",
        crate::units::format_duration(timeout)
    )
}

/// The next request released to a connection: waits until the driver marks it due. `None`
/// when the driver is done and nothing more is due.
pub(super) async fn next_due(
    slot: &Slot,
    j: &mut u64,
    local: &Local,
    k: u64,
) -> Option<(u64, u64)> {
    while slot.due.get() <= *j {
        if slot.finished.get() {
            return None;
        }
        slot.wake.notified().await;
    }
    let i = *j * local.connections + k;
    *j += 1;
    Some((i, local.intended(i)))
}

/// Open a connection for a request whose turn came; the failure is recorded (and may stop a
/// hopeless run).
pub(super) async fn reconnect(local: &Local, i: u64) -> Result<Stream, bool> {
    let g = &local.global;
    reopen(local, i, g.connector.connect(g.plan.timeout)).await
}

/// Await `open` (a connection and its set-up time) for request `i`: the set-up time is recorded
/// apart; a failure is counted as a `connect` error of request `i` and may stop a hopeless run
/// (`Err(true)`; `Err(false)`: only this request failed).
pub(super) async fn reopen<C>(
    local: &Local,
    i: u64,
    open: impl Future<Output = Result<(C, Duration), String>>,
) -> Result<C, bool> {
    match open.await {
        Ok((c, took)) => {
            let mut st = local.stats.borrow_mut();
            st.connects += 1;
            st.recorder.record_connect(took);
            Ok(c)
        }
        Err(e) => Err(connect_failed(
            local,
            i >= local.global.plan.warmup_requests,
            e,
        )),
    }
}

/// A connection's random stream for the templates: SplitMix64 states that differ by a multiple
/// of its increment would replay each other, so each connection starts from a mixed
/// (effectively random) state.
pub(super) fn connection_rng(seed: u64, k: u64) -> Rng {
    Rng::new(Rng::new(seed.wrapping_add(k.wrapping_mul(0xd1b5_4a32_d192_ed03))).next_u64())
}

/// One HTTP/1.1 connection's task: send each released request when the connection is free,
/// read its response, record.
async fn connection(
    wire: Rc<HttpWire>,
    k: u64,
    slot: Rc<Slot>,
    mut stream: Option<Stream>,
    local: Rc<Local>,
) {
    let plan = &local.global.plan;
    let head = RequestHead::new(&wire.method, &wire.host, &wire.headers);
    let mut rng = connection_rng(plan.seed, k);
    let mut path = String::new();
    let mut body = String::new();
    let mut request = Vec::with_capacity(512);
    let mut reader = Reader::default();
    // When the connection would have become free had the generator sent every request on
    // time: each exchange holds it for the target's service time from the moment it could
    // have been sent ([`on_time_free`]).
    let mut free_since = local.start_ns;
    let mut j = 0u64;
    while let Some((i, intended)) = next_due(&slot, &mut j, &local, k).await {
        if stream.is_none() {
            let connecting = now_ns();
            match reconnect(&local, i).await {
                Ok(s) => {
                    stream = Some(s);
                    free_since = on_time_free(intended, free_since, connecting, now_ns());
                }
                Err(true) => return,
                Err(false) => continue,
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        wire.path.render(i, &mut rng, &mut path);
        let req_body = wire.body.as_ref().map(|t| {
            t.render(i, &mut rng, &mut body);
            body.as_str()
        });
        head.render(&path, req_body, &mut request);
        let sent = now_ns();
        let exchange = async {
            crate::order::http1::write(s, &request).await?;
            reader.read(s, head.head).await
        };
        let result = tokio::time::timeout(plan.timeout, exchange).await;
        let done = now_ns();
        let times = Times {
            i,
            intended,
            ready_at: intended.max(free_since),
            sent,
        };
        free_since = on_time_free(intended, free_since, sent, done);
        let outcome = match result {
            Err(_) => Err((ErrorKind::Timeout, timeout_message(plan.timeout))),
            Ok(Err(ExchangeError::Io(m))) => Err((ErrorKind::Connect, m)),
            Ok(Err(ExchangeError::Protocol(m))) => Err((ErrorKind::Body, m)),
            Ok(Ok(resp)) => Ok(resp),
        };
        match outcome {
            Ok(resp) => {
                if resp.close {
                    stream = None;
                }
                let body = reader.body(&resp);
                record_http(&local, &wire, times, done, Ok((resp.status, body)));
            }
            Err((kind, m)) => {
                stream = None;
                let addr = local.global.connector.addr;
                let m = format!("{addr}: {m}");
                record_http(&local, &wire, times, done, Err((kind, m)));
            }
        }
    }
}

/// Count a failed (re)connect; `true` when the target is hopeless (20 failures and never an
/// answer) and the run was stopped.
fn connect_failed(local: &Local, measured: bool, e: String) -> bool {
    let g = &local.global;
    let failures = g.connect_failures.fetch_add(1, Ordering::Relaxed) + 1;
    if measured {
        let mut st = local.stats.borrow_mut();
        st.attempted += 1;
        st.error(ErrorKind::Connect, || e.clone());
    }
    if !g.any_response.load(Ordering::Relaxed) && failures >= 20 {
        g.halt(format!("target unreachable: {e}"));
        return true;
    }
    false
}

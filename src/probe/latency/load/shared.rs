//! What the engine ([`super::engine`]), its threads and every wire's connection tasks
//! ([`super::http`], [`super::h2`], [`super::pipeline`]) share: the run's [`Global`] state,
//! a thread's [`Local`] state and [`Stats`], a connection's [`Slot`] (the sends released to
//! it), the [`Driver`] each wire implements, and the recording of each finished request
//! ([`record`]) with its three times ([`Times`]).
//!
//! It sits below all of them, so the engine dispatches to the wires and the wires record
//! through this module, and nothing imports in a circle.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::plan::{ErrorKind, HttpWire, Plan};
use crate::order::clock::{now_ns, since};
use crate::order::connect::{Connector, Stream};
use crate::order::snippet;
use crate::order::template::Rng;
use crate::probe::latency::record::Recorder;

/// What every generator thread shares: the plan and the run's fate.
pub(super) struct Global {
    pub(super) plan: Plan,
    pub(super) connector: Connector,
    pub(super) total: u64,
    pub(super) period_ns: f64,
    pub(super) stop: CancellationToken,
    pub(super) connect_failures: AtomicU64,
    pub(super) any_response: AtomicBool,
    pub(super) aborted: Mutex<Option<String>>,
}

impl Global {
    /// Stop the run; the first reason given is kept.
    pub(super) fn halt(&self, reason: String) {
        let mut a = self.aborted.lock().unwrap_or_else(|e| e.into_inner());
        if a.is_none() {
            *a = Some(reason);
        }
        drop(a);
        self.stop.cancel();
    }
}

/// One thread's counts and histograms, merged into the [`LoadResult`] at the end.
pub(super) struct Stats {
    pub(super) recorder: Recorder,
    pub(super) errors: BTreeMap<ErrorKind, u64>,
    pub(super) first_error: BTreeMap<ErrorKind, String>,
    pub(super) statuses: BTreeMap<u16, u64>,
    pub(super) ok: u64,
    pub(super) attempted: u64,
    pub(super) responded: u64,
    pub(super) last_send_ns: u64,
    pub(super) last_done_ns: u64,
    pub(super) connects: u64,
    pub(super) ignored: u64,
    pub(super) unmatched: u64,
    pub(super) timer_wakes: u64,
    pub(super) cpu: Duration,
}

impl Stats {
    pub(super) fn new() -> Stats {
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

    pub(super) fn error(&mut self, kind: ErrorKind, message: impl FnOnce() -> String) {
        *self.errors.entry(kind).or_default() += 1;
        self.first_error.entry(kind).or_insert_with(message);
    }

    /// Add `other`'s counts (histograms are merged separately).
    pub(super) fn absorb(&mut self, other: Stats) -> Recorder {
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
    pub(super) global: Arc<Global>,
    pub(super) start_ns: u64,
    pub(super) connections: u64,
    pub(super) stats: RefCell<Stats>,
}

impl Slot {
    /// Release one more send to the connection.
    pub(super) fn release(&self) {
        self.due.set(self.due.get() + 1);
        self.wake.notify_one();
    }

    /// The driver is done: nothing more will be released.
    pub(super) fn finish(&self) {
        self.finished.set(true);
        self.wake.notify_one();
    }
}

impl Local {
    /// The intended send time of request `i`.
    pub(super) fn intended(&self, i: u64) -> u64 {
        self.start_ns + (i as f64 * self.global.period_ns) as u64
    }
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
    pub(super) i: u64,
    pub(super) intended: u64,
    /// The later of `intended` and the moment the connection could have taken the request had
    /// the generator sent every earlier one on time ([`on_time_free`]).
    pub(super) ready_at: u64,
    pub(super) sent: u64,
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

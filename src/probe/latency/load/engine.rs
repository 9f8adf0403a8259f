//! One generator thread: a current-thread tokio runtime, its share of the connections, one
//! timer, and the driver that marks their sends due.
//!
//! Connection `k` of `N` lives on thread `k mod T` and sends requests `k, k + N, k + 2N, …`.
//! The thread's driver walks the merged schedule of its connections in order: it sleeps on the
//! thread's [`Timer`] only when the next send is still in the future, then bumps that
//! connection's due count and wakes its task (a same-thread wake-up, no syscall). A connection
//! busy with an earlier response picks the send up when it is free; that wait is the target's.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use super::clock::{Timer, now_ns, since};
use super::http1::{ExchangeError, Reader, RequestHead};
use super::transport::{Stream, Version};
use super::{ErrorKind, Global, Stats, fix, h2, snippet};
use crate::probe::latency::template::Rng;

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
    pub head: RequestHead,
    pub stats: RefCell<Stats>,
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

    async fn drive(&mut self) -> Stats {
        let g = self.global.clone();
        let n = g.plan.connections.max(1) as u64;
        let mine: Vec<u64> = (0..n)
            .filter(|k| *k as usize % self.threads == self.index)
            .collect();
        let mut stats = Stats::new();
        let opened = tokio::select! {
            o = futures::future::join_all(mine.iter().map(|_| g.connector.connect(g.plan.timeout))) => o,
            _ = g.stop.cancelled() => return stats,
        };
        let mut first_error = None;
        let mut streams = Vec::new();
        for o in opened {
            match o {
                Ok((s, took)) => {
                    stats.connects += 1;
                    stats.recorder.record_connect(took);
                    streams.push(Some(s));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    streams.push(None);
                }
            }
        }
        // FIX sessions log on before the schedule starts, so logons never land on samples.
        let mut sessions: Vec<Option<fix::Conn>> = Vec::new();
        if let Some(plan) = &g.plan.fix {
            let timeout = g.plan.timeout;
            let logons = streams.into_iter().map(|s| async move {
                match s {
                    Some(s) => fix::establish(s, plan, timeout).await.map(Some),
                    None => Ok(None),
                }
            });
            let logons = tokio::select! {
                l = futures::future::join_all(logons) => l,
                _ = g.stop.cancelled() => return stats,
            };
            streams = Vec::new();
            for l in logons {
                streams.push(None);
                match l {
                    Ok(c) => sessions.push(c),
                    Err(e) => {
                        first_error.get_or_insert(e);
                        sessions.push(None);
                    }
                }
            }
        }
        let up = streams.iter().filter(|s| s.is_some()).count()
            + sessions.iter().filter(|s| s.is_some()).count();
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
            head: RequestHead::new(&g.plan.method, &g.plan.host, &g.plan.headers),
            global: g.clone(),
            start_ns,
            connections: n,
            stats: RefCell::new(stats),
        });
        let slots: Vec<Rc<Slot>> = mine.iter().map(|_| Rc::new(Slot::default())).collect();
        let mut tasks = Vec::new();
        let mut sessions = sessions.into_iter();
        for ((k, stream), slot) in mine.iter().zip(streams).zip(&slots) {
            let (k, slot, local) = (*k, slot.clone(), local.clone());
            tasks.push(match g.connector.version {
                Version::Http1 => tokio::task::spawn_local(connection(k, slot, stream, local)),
                Version::Http2 => tokio::task::spawn_local(h2::connection(k, slot, stream, local)),
                Version::Fix => {
                    let conn = sessions.next().flatten();
                    tokio::task::spawn_local(fix::connection(k, slot, conn, local))
                }
            });
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

/// One request's three times (ns of `CLOCK_MONOTONIC`) and its index.
#[derive(Clone, Copy)]
pub(super) struct Times {
    pub i: u64,
    pub intended: u64,
    /// The later of `intended` and the moment the connection could take the request.
    pub ready_at: u64,
    pub sent: u64,
}

/// An answer to a request: an HTTP response, judged here against the plan's expectation, or
/// an answer the transport judged itself (FIX: an ExecutionReport, or a reject of a kind).
pub(super) enum Answer<'a> {
    /// HTTP status and body.
    Http(u16, &'a [u8]),
    /// Accepted, or refused with the error's kind and message.
    Judged(Result<(), (ErrorKind, String)>),
}

/// Record one finished exchange: an [`Answer`] or the error's kind and message.
pub(super) fn record(
    local: &Local,
    t: Times,
    done: u64,
    result: Result<Answer<'_>, (ErrorKind, String)>,
) {
    let g = &local.global;
    let plan = &g.plan;
    if result.is_ok() && !g.any_response.load(Ordering::Relaxed) {
        g.any_response.store(true, Ordering::Relaxed);
    }
    if t.i < plan.warmup_requests {
        return;
    }
    let mut st = local.stats.borrow_mut();
    st.attempted += 1;
    st.recorder.record_lag(since(t.sent, t.intended));
    st.recorder.record_generator_lag(since(t.sent, t.ready_at));
    st.last_send_ns = st.last_send_ns.max(t.sent);
    match result {
        Err((kind, m)) => st.error(kind, || m),
        Ok(answer) => {
            st.responded += 1;
            st.last_done_ns = st.last_done_ns.max(done);
            let base = local.intended(plan.warmup_requests);
            st.recorder.record(
                since(done, base),
                since(done, t.intended),
                since(done, t.sent),
            );
            let (status, bytes) = match answer {
                Answer::Http(status, bytes) => (status, bytes),
                Answer::Judged(Ok(())) => {
                    st.ok += 1;
                    return;
                }
                Answer::Judged(Err((kind, m))) => {
                    st.error(kind, || m);
                    return;
                }
            };
            *st.statuses.entry(status).or_default() += 1;
            if !plan.expect.status.accepts(status) {
                st.error(ErrorKind::Status, || {
                    format!("HTTP {status}: {}", snippet(bytes))
                });
            } else {
                match plan.expect.check_body(bytes) {
                    Ok(()) => st.ok += 1,
                    Err(m) => st.error(ErrorKind::Body, || format!("{m}: {}", snippet(bytes))),
                }
            }
        }
    }
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
    match local
        .global
        .connector
        .connect(local.global.plan.timeout)
        .await
    {
        Ok((s, took)) => {
            let mut st = local.stats.borrow_mut();
            st.connects += 1;
            st.recorder.record_connect(took);
            Ok(s)
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
async fn connection(k: u64, slot: Rc<Slot>, mut stream: Option<Stream>, local: Rc<Local>) {
    let plan = &local.global.plan;
    let mut rng = connection_rng(plan.seed, k);
    let mut path = String::new();
    let mut body = String::new();
    let mut request = Vec::with_capacity(512);
    let mut reader = Reader::default();
    let mut free_since = local.start_ns;
    let mut j = 0u64;
    while let Some((i, intended)) = next_due(&slot, &mut j, &local, k).await {
        if stream.is_none() {
            match reconnect(&local, i).await {
                Ok(s) => {
                    stream = Some(s);
                    free_since = now_ns();
                }
                Err(true) => return,
                Err(false) => continue,
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        plan.path.render(i, &mut rng, &mut path);
        let req_body = plan.body.as_ref().map(|t| {
            t.render(i, &mut rng, &mut body);
            body.as_str()
        });
        local.head.render(&path, req_body, &mut request);
        let sent = now_ns();
        let exchange = async {
            super::http1::write(s, &request).await?;
            reader.read(s, local.head.head).await
        };
        let result = tokio::time::timeout(plan.timeout, exchange).await;
        let done = now_ns();
        let times = Times {
            i,
            intended,
            ready_at: intended.max(free_since),
            sent,
        };
        free_since = done;
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
                record(&local, times, done, Ok(Answer::Http(resp.status, body)));
            }
            Err((kind, m)) => {
                stream = None;
                let addr = local.global.connector.addr;
                record(&local, times, done, Err((kind, format!("{addr}: {m}"))));
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

//! The top of the load generator: [`run`] starts the generator threads, opens every pool before
//! the schedule starts, and merges the threads' results. Each generator thread is a
//! current-thread tokio runtime with its share of the connections, one timer, and the driver
//! that marks their sends due.
//!
//! Connection `k` of `N` lives on thread `k mod T` and sends requests `k, k + N, k + 2N, …`.
//! The thread's driver walks the merged schedule of its connections in order: it sleeps on the
//! thread's [`Timer`] only when the next send is still in the future, then bumps that
//! connection's due count and wakes its task (a same-thread wake-up, no syscall). A connection
//! busy with an earlier response picks the send up when it is free; that wait is the target's.
//!
//! What a connection is and how its task talks is the wire's business ([`Driver`]): HTTP/1.1,
//! HTTP/2 ([`Http`]) and the pipelined order transports ([`Pipelined`]) each open their
//! connections (set-up timed apart) and run one task per connection; the schedule is here, the
//! recording and the reconnects in [`super::shared`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::clock::Timer;
use super::http::Http;
use super::pipeline::Pipelined;
use super::plan::{LoadResult, Plan, Stall, Wire};
use super::shared::{Driver, Global, Local, Slot, Stats};
use crate::order::clock::{now_ns, since};
use crate::order::connect::Connector;
use crate::probe::latency::record::Recorder;

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
    let results = spawn_threads(&global, threads, ready_tx, start_rx);
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

/// Start the `threads` generator threads: each reports on `ready` once its pool is up, waits
/// for the start on `start`, and sends its statistics back on the returned channels.
fn spawn_threads(
    global: &Arc<Global>,
    threads: usize,
    ready: mpsc::UnboundedSender<Result<usize, String>>,
    start: watch::Receiver<Option<u64>>,
) -> Vec<tokio::sync::oneshot::Receiver<Stats>> {
    let mut results = Vec::new();
    for t in 0..threads {
        let (tx, rx) = tokio::sync::oneshot::channel();
        results.push(rx);
        let job = Thread {
            index: t,
            threads,
            global: global.clone(),
            ready: ready.clone(),
            start: start.clone(),
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
    results
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

/// What a thread is given.
struct Thread {
    index: usize,
    threads: usize,
    global: Arc<Global>,
    /// Sends the number of connections opened (or the first error) once the pool is up.
    ready: mpsc::UnboundedSender<Result<usize, String>>,
    /// The schedule's start (ns of `CLOCK_MONOTONIC`), once every thread is ready.
    start: watch::Receiver<Option<u64>>,
}

impl Thread {
    /// Run this thread's share of the plan; its statistics, CPU time included.
    fn run(mut self) -> Stats {
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
            s.finish();
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
            Stall::before_send(g.plan.stall, i);
            slot.release();
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

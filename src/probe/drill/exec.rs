//! Running a drill: steps in order, each expectation polled until it holds (and keeps holding
//! for `hold`) or its deadline passes, times measured from the last action, and the restore
//! of everything the drill broke.
//!
//! The steps run in a task registered with the run's [`crate::probe::Background`]. One token
//! stops them: the run's interruption, the item's deadline
//! ([`crate::probe::ProbeContext::deadline`]) or the runner dropping the probe. Then the
//! expectation or wait in progress ends at once, an action in progress gets up to
//! [`SETTLE`] to finish (it sees the token itself, so a service is not left half started),
//! the restore undoes what is still broken within [`RESTORE_LIMIT`] (a second interruption,
//! [`crate::probe::ProbeContext::abandon`], cuts it short), and the drill writes its record
//! as a finished one does: the steps with their times, what was in effect when they stopped,
//! and what the restore did.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::DrillProbe;
use super::effects::{Broken, Effect, ServiceState, State, Target};
use super::step::{Action, Expectation, Observe, Since, Step, StepKind};
use crate::model::{Check, ProbeOutput, Table};
use crate::probe::ProbeContext;
use crate::units::{Interpolated, format_duration};

/// How long an action in progress when the drill is stopped may take to finish (a `stop`
/// within its grace, a `start` that sees the stop and gives up waiting for readiness).
pub(super) const SETTLE: Duration = Duration::from_secs(10);

/// The longest the restore may take; what it has not done by then is reported as not done.
pub(super) const RESTORE_LIMIT: Duration = Duration::from_secs(30);

/// How long a stopped drill may take to wind down: the action in progress, the restore and
/// writing its record.
pub(super) const WIND_DOWN: Duration =
    Duration::from_secs(SETTLE.as_secs() + RESTORE_LIMIT.as_secs() + 5);

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepOutcome {
    /// An action that completed.
    Done,
    /// An expectation that held.
    Held,
    /// An expectation that did not hold, or an action that failed.
    Failed,
    /// Skipped: it needs a step that did not succeed.
    NotRun,
    /// In progress when the drill was stopped (interrupted, timed out).
    Stopped,
    /// After the step in progress when the drill was stopped.
    NotReached,
}

impl StepOutcome {
    fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Held => "held",
            StepOutcome::Failed => "FAILED",
            StepOutcome::NotRun => "not run",
            StepOutcome::Stopped => "stopped",
            StepOutcome::NotReached => "not reached",
        }
    }
}

/// Why the steps stopped before the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// The run was interrupted (ctrl-c, SIGTERM).
    Interrupted,
    /// The item's deadline passed.
    TimedOut,
    /// The runner dropped the probe.
    Abandoned,
}

impl Stopped {
    fn as_str(self) -> &'static str {
        match self {
            Stopped::Interrupted => "interrupted",
            Stopped::TimedOut => "timed out",
            Stopped::Abandoned => "abandoned",
        }
    }

    /// `was interrupted`, `timed out`, `was abandoned`.
    fn verb(self) -> &'static str {
        match self {
            Stopped::Interrupted => "was interrupted",
            Stopped::TimedOut => "timed out",
            Stopped::Abandoned => "was abandoned",
        }
    }
}

/// One step's record.
#[derive(Debug, Clone)]
struct StepRecord {
    name: String,
    kind: String,
    result: StepOutcome,
    /// When it started, from the drill's start (`None`: it did not start).
    at: Option<Duration>,
    /// Expectations: from the last action until it held; actions: how long they took; a
    /// stopped step: how long it had run.
    measured: Option<Duration>,
    within: Option<Duration>,
    hold: Option<Duration>,
    detail: String,
}

impl StepRecord {
    /// A step that did not start.
    fn unstarted(step: &Step, result: StepOutcome, detail: String) -> StepRecord {
        StepRecord {
            name: step.name.clone(),
            kind: kind_of(step),
            result,
            at: None,
            measured: None,
            within: None,
            hold: None,
            detail,
        }
    }
}

/// `action` or `expect <kind>`.
fn kind_of(step: &Step) -> String {
    match &step.kind {
        StepKind::Action(_) => "action".to_string(),
        StepKind::Expect(e) => format!("expect {}", e.observe.kind()),
    }
}

/// The point times are measured from: the start of the last action other than `wait`, with
/// the services' output offsets at that moment.
#[derive(Debug, Clone)]
struct Mark {
    at: Instant,
    offsets: BTreeMap<String, u64>,
}

/// What the restore did: `(what, Ok(what was done) | Err(why it failed or was not done))`.
type Restored = Vec<(String, Result<String, String>)>;

/// How the steps ended, for the record.
struct Ending<'a> {
    /// Why they stopped early; `None` after the last step.
    stopped: Option<Stopped>,
    /// When, from the drill's start.
    after: Duration,
    /// In effect at that moment.
    in_effect: &'a [Effect],
    /// What the restore did.
    restored: &'a Restored,
    /// How long the restore took.
    restore_took: Duration,
}

/// A drill in progress.
struct Drill {
    /// The probe's context, with `cancel` replaced by `stop`: actions see the stop too.
    ctx: ProbeContext,
    /// Stops the steps: the interruption, the deadline, or the probe dropped.
    stop: CancellationToken,
    client: reqwest::Client,
    start: Mark,
    start_pids: BTreeMap<String, Option<u32>>,
    start_counts: BTreeMap<String, u32>,
    mark: Mutex<Mark>,
    records: Mutex<Vec<StepRecord>>,
    broken: Arc<Mutex<Broken>>,
    saved: Mutex<BTreeMap<String, Value>>,
    /// The step in progress (its index) and when it started.
    current: Mutex<Option<(usize, Instant)>>,
    /// What the expectation in progress saw last.
    last_seen: Mutex<Option<String>>,
}

/// What the observation of an expectation saw.
struct Seen {
    ok: bool,
    text: String,
    value: Value,
}

impl Seen {
    fn no(text: impl Into<String>) -> Seen {
        Seen {
            ok: false,
            text: text.into(),
            value: Value::Null,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wait until `at`; never, without one.
async fn until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Run `work` to its end, cancelling `token` at `at` if it is still running then (`work`
/// watches the token and winds down).
async fn cancel_at<T>(
    work: impl Future<Output = T>,
    token: &CancellationToken,
    at: Option<Instant>,
) -> T {
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => return out,
        _ = until(at) => token.cancel(),
    }
    work.await
}

/// Run the drill (see the module docs) and build its output.
pub(super) async fn run(drill: DrillProbe, ctx: &ProbeContext) -> ProbeOutput {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = ctx.cancel.child_token();
    // The runner dropping this future stops the steps too; the task still restores.
    let _stop_on_drop = stop.clone().drop_guard();
    let c = ctx.clone();
    ctx.background.spawn(async move {
        let d = Drill::new(c.clone(), stop.clone());
        let steps = drill.steps();
        cancel_at(d.execute(steps), &stop, c.deadline).await;
        let stopped = match () {
            _ if !stop.is_cancelled() => None,
            _ if c.cancel.is_cancelled() => Some(Stopped::Interrupted),
            _ if c.deadline.is_some_and(|t| Instant::now() >= t) => Some(Stopped::TimedOut),
            _ => Some(Stopped::Abandoned),
        };
        let after = d.start.at.elapsed();
        // Pauses still running end here; the restore continues those services.
        stop.cancel();
        if let Some(why) = stopped {
            d.close(steps, why);
        }
        let in_effect = lock(&d.broken).in_effect();
        let began = Instant::now();
        let give_up = c.abandon.child_token();
        let restored = cancel_at(d.restore(&give_up), &give_up, Some(began + RESTORE_LIMIT)).await;
        let ending = Ending {
            stopped,
            after,
            in_effect: &in_effect,
            restored: &restored,
            restore_took: began.elapsed(),
        };
        let _ = tx.send(d.output(steps, &ending));
    });
    rx.await
        .unwrap_or_else(|_| ProbeOutput::error("the drill task ended without a result"))
}

impl Drill {
    fn new(ctx: ProbeContext, stop: CancellationToken) -> Drill {
        let start = mark_of(&ctx.services);
        let start_pids = ctx
            .services
            .names()
            .into_iter()
            .map(|n| {
                let pid = ctx.services.pid(&n);
                (n, pid)
            })
            .collect();
        let start_counts = ctx
            .services
            .names()
            .into_iter()
            .map(|n| {
                let c = ctx.services.starts(&n);
                (n, c)
            })
            .collect();
        Drill {
            start_counts,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            start_pids,
            mark: Mutex::new(start.clone()),
            records: Mutex::new(Vec::new()),
            broken: Arc::default(),
            saved: Mutex::new(BTreeMap::new()),
            current: Mutex::new(None),
            last_seen: Mutex::new(None),
            start,
            ctx: ProbeContext {
                cancel: stop.clone(),
                ..ctx
            },
            stop,
        }
    }

    fn record(&self, r: StepRecord) {
        lock(&self.records).push(r);
    }

    /// Run the steps until the last one or the stop: an expectation or a wait in progress
    /// then ends at once, an action gets up to [`SETTLE`] (it sees the stop itself).
    async fn execute(&self, steps: &[Step]) {
        let mut succeeded = BTreeSet::new();
        let mut saved_by = BTreeMap::new();
        for (i, step) in steps.iter().enumerate() {
            if self.stop.is_cancelled() {
                return;
            }
            let missing = step
                .needs
                .iter()
                .find(|n| !succeeded.contains(*n))
                .cloned()
                .or_else(|| {
                    let StepKind::Expect(e) = &step.kind else {
                        return None;
                    };
                    let name = e.equals_saved.as_ref()?;
                    (!lock(&self.saved).contains_key(name))
                        .then(|| saved_by.get(name).cloned().unwrap_or_else(|| name.clone()))
                });
            if let Some(m) = missing {
                self.record(StepRecord::unstarted(
                    step,
                    StepOutcome::NotRun,
                    format!("needs \"{m}\", which did not succeed"),
                ));
                continue;
            }
            if let StepKind::Expect(e) = &step.kind
                && let Some(s) = &e.save
            {
                saved_by.insert(s.clone(), step.name.clone());
            }
            *lock(&self.current) = Some((i, Instant::now()));
            *lock(&self.last_seen) = None;
            let settles =
                matches!(&step.kind, StepKind::Action(a) if !matches!(a, Action::Wait(_)));
            let run = async {
                match &step.kind {
                    StepKind::Action(a) => self.act(step, a).await,
                    StepKind::Expect(e) => self.expect(step, e).await,
                }
            };
            tokio::pin!(run);
            let ok = tokio::select! {
                ok = &mut run => ok,
                _ = self.stop.cancelled() => {
                    if !settles {
                        return;
                    }
                    let settled = tokio::select! {
                        r = tokio::time::timeout(SETTLE, &mut run) => r.ok(),
                        _ = self.ctx.abandon.cancelled() => None,
                    };
                    match settled {
                        Some(ok) => ok,
                        None => return,
                    }
                }
            };
            *lock(&self.current) = None;
            if ok {
                succeeded.insert(step.name.clone());
            }
        }
    }

    /// The steps were stopped (`why`): the step in progress is recorded as stopped, with how
    /// long it ran and what it saw last, and the steps after it as not reached.
    fn close(&self, steps: &[Step], why: Stopped) {
        if let Some((i, began)) = lock(&self.current).take()
            && let Some(step) = steps.get(i)
        {
            let (within, hold) = match &step.kind {
                StepKind::Expect(e) => (Some(e.within), e.hold),
                StepKind::Action(_) => (None, None),
            };
            let last = lock(&self.last_seen)
                .take()
                .map(|t| format!("; last seen: {t}"))
                .unwrap_or_default();
            self.record(StepRecord {
                name: step.name.clone(),
                kind: kind_of(step),
                result: StepOutcome::Stopped,
                at: Some(began - self.start.at),
                measured: Some(began.elapsed()),
                within,
                hold,
                detail: self.ctx.redactor.redact(&format!(
                    "{} after {} in this step{last}",
                    why.as_str(),
                    format_duration(began.elapsed())
                )),
            });
        }
        let done = lock(&self.records).len();
        for step in steps.iter().skip(done) {
            self.record(StepRecord::unstarted(
                step,
                StepOutcome::NotReached,
                format!("the drill {} before this step", why.verb()),
            ));
        }
    }

    async fn act(&self, step: &Step, action: &Action) -> bool {
        let began = Instant::now();
        if !matches!(action, Action::Wait(_)) {
            *lock(&self.mark) = mark_of(&self.ctx.services);
        }
        let outcome = self.perform(&step.name, action).await;
        let ok = outcome.is_ok();
        // An action cut short by the stop (a start that gave up waiting) did not fail.
        let result = match (ok, self.stop.is_cancelled()) {
            (true, _) => StepOutcome::Done,
            (false, true) => StepOutcome::Stopped,
            (false, false) => StepOutcome::Failed,
        };
        self.record(StepRecord {
            name: step.name.clone(),
            kind: kind_of(step),
            result,
            at: Some(began - self.start.at),
            measured: Some(began.elapsed()),
            within: None,
            hold: None,
            detail: self.ctx.redactor.redact(&outcome.unwrap_or_else(|e| e)),
        });
        ok
    }

    /// Do one action (of step `step`); `Ok` and `Err` both carry what happened, in one line.
    async fn perform(&self, step: &str, action: &Action) -> Result<String, String> {
        let services = &self.ctx.services;
        let service = |s: &str| Target::Service(s.to_string());
        match action {
            Action::Stop { service: s, grace } => {
                lock(&self.broken).set(service(s), State::Service(ServiceState::Stopped), step);
                let e = services.stop(s, *grace).await.map_err(|e| e.to_string())?;
                Ok(format!(
                    "stopped: {} after {}",
                    e.describe(),
                    format_duration(e.took)
                ))
            }
            Action::Start { service: s } => {
                lock(&self.broken).touch_service(s);
                let t = services
                    .start(s, &self.ctx.cancel)
                    .await
                    .map_err(|e| e.to_string())?;
                lock(&self.broken).clear(&service(s));
                Ok(format!("ready after {}", format_duration(t)))
            }
            Action::Restart { service: s, grace } => {
                let restarting = State::Service(ServiceState::Restarting);
                lock(&self.broken).set(service(s), restarting, step);
                let e = services.stop(s, *grace).await.map_err(|e| e.to_string())?;
                let t = services
                    .start(s, &self.ctx.cancel)
                    .await
                    .map_err(|e| e.to_string())?;
                lock(&self.broken).clear(&service(s));
                Ok(format!(
                    "stopped ({}), ready again after {}",
                    e.describe(),
                    format_duration(t)
                ))
            }
            Action::Signal {
                service,
                signal,
                pause,
            } => self.signal(step, service, *signal, *pause).await,
            Action::Command(run) => match run.run(&self.ctx).await {
                Ok(out) if out.exit_code == Some(0) => {
                    Ok(format!("exit 0 after {}", format_duration(out.elapsed)))
                }
                Ok(out) => Err(format!(
                    "`{}` exited with {}: {}",
                    run.display(),
                    out.exit_code
                        .map_or("a signal".to_string(), |c| c.to_string()),
                    crate::rig::process::last_lines(&out.log_tail, 5)
                )),
                Err(e) => Err(e.to_string()),
            },
            Action::Proxy { proxy, fault } => self.proxy(step, proxy, fault.clone()).await,
            Action::BrokerFault {
                broker,
                api_key,
                body,
            } => {
                if let Some(b) = body {
                    lock(&self.broken).broker_faults(broker, api_key.as_ref(), b, step);
                }
                let r = self
                    .broker_fault(broker, api_key.as_ref(), body.as_ref())
                    .await;
                if body.is_none() && r.is_ok() {
                    lock(&self.broken).clear(&Target::broker(broker));
                }
                r
            }
            Action::Wait(d) => {
                tokio::time::sleep(*d).await;
                Ok(format!("waited {}", format_duration(*d)))
            }
        }
    }

    async fn signal(
        &self,
        step: &str,
        service: &str,
        signal: nix::sys::signal::Signal,
        pause: Option<Duration>,
    ) -> Result<String, String> {
        use nix::sys::signal::Signal;
        lock(&self.broken).touch_service(service);
        self.ctx
            .services
            .signal(service, signal)
            .await
            .map_err(|e| e.to_string())?;
        {
            let mut broken = lock(&self.broken);
            let target = Target::Service(service.to_string());
            match signal {
                Signal::SIGCONT => broken.continued(service),
                Signal::SIGSTOP => {
                    broken.set(target, State::Service(ServiceState::Paused), step);
                }
                // Any other signal may end it.
                s => broken.set(target, State::Service(ServiceState::Signalled(s)), step),
            }
        }
        if let Some(p) = pause {
            let services = self.ctx.services.clone();
            let name = service.to_string();
            let broken = self.broken.clone();
            let stop = self.stop.clone();
            // Continued after `p`, or by the restore when the drill ends first.
            self.ctx.background.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(p) => {
                        if services.signal(&name, Signal::SIGCONT).await.is_ok() {
                            lock(&broken).continued(&name);
                        }
                    }
                    _ = stop.cancelled() => {}
                }
            });
            return Ok(format!(
                "sent {}; SIGCONT in {}",
                signal.as_str(),
                format_duration(p)
            ));
        }
        Ok(format!("sent {}", signal.as_str()))
    }

    async fn proxy(
        &self,
        step: &str,
        name: &str,
        fault: Option<crate::rig::fault_proxy::Fault>,
    ) -> Result<String, String> {
        let proxy = self
            .ctx
            .proxies
            .get(name)
            .ok_or_else(|| format!("proxy \"{name}\" is not running"))?;
        let target = Target::Proxy(name.to_string());
        match fault {
            Some(f) => {
                let shown = f.to_string();
                lock(&self.broken).set(target, State::Proxy(shown.clone()), step);
                proxy.apply(f).await.map_err(|e| e.to_string())?;
                Ok(format!("{name}: {shown}"))
            }
            None => {
                proxy.heal().await.map_err(|e| e.to_string())?;
                lock(&self.broken).clear(&target);
                Ok(format!("{name}: healed"))
            }
        }
    }

    async fn broker_fault(
        &self,
        broker: &Interpolated,
        api_key: Option<&Interpolated>,
        body: Option<&Value>,
    ) -> Result<String, String> {
        let url = format!("{}/admin/faults", broker.value.trim_end_matches('/'));
        let mut req = match body {
            Some(b) => self.client.post(&url).json(b),
            None => self.client.delete(&url),
        };
        if let Some(k) = api_key {
            req = req.bearer_auth(&k.value);
        }
        let shown = format!("{}/admin/faults", broker.display.trim_end_matches('/'));
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{shown}: {}", crate::units::error_chain(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(format!("{shown}: {}", text.trim()))
        } else {
            Err(format!("{shown} answered {status}: {}", text.trim()))
        }
    }

    async fn expect(&self, step: &Step, e: &Expectation) -> bool {
        let began = Instant::now();
        let mark = lock(&self.mark).clone();
        let deadline = mark.at + e.within;
        let mut held_since: Option<Instant> = None;
        let (result, measured, detail) = loop {
            let seen = self.observe(&e.observe, &mark).await;
            let saved_ok = match &e.equals_saved {
                Some(name) => lock(&self.saved).get(name) == Some(&seen.value),
                None => true,
            };
            let ok = seen.ok && saved_ok;
            let text = if seen.ok && !saved_ok {
                let was = lock(&self.saved)
                    .get(e.equals_saved.as_deref().unwrap_or(""))
                    .cloned();
                format!("{} (saved: {})", seen.text, was.unwrap_or(Value::Null))
            } else {
                seen.text.clone()
            };
            *lock(&self.last_seen) = Some(text.clone());
            let now = Instant::now();
            match (ok, held_since) {
                (true, None) => held_since = Some(now),
                (false, Some(first)) => {
                    break (
                        StepOutcome::Failed,
                        Some(first - mark.at),
                        format!("held for {}, then: {text}", format_duration(now - first)),
                    );
                }
                _ => {}
            }
            if let Some(first) = held_since
                && now - first >= e.hold.unwrap_or_default()
            {
                if let Some(name) = &e.save {
                    lock(&self.saved).insert(name.clone(), seen.value.clone());
                }
                break (StepOutcome::Held, Some(first - mark.at), text);
            }
            if held_since.is_none() && now >= deadline {
                break (
                    StepOutcome::Failed,
                    None,
                    format!(
                        "not within {}; last seen: {text}",
                        format_duration(e.within)
                    ),
                );
            }
            tokio::time::sleep(e.interval).await;
        };
        self.record(StepRecord {
            name: step.name.clone(),
            kind: kind_of(step),
            result,
            at: Some(began - self.start.at),
            measured,
            within: Some(e.within),
            hold: e.hold,
            detail: self.ctx.redactor.redact(&detail),
        });
        result == StepOutcome::Held
    }

    async fn observe(&self, o: &Observe, mark: &Mark) -> Seen {
        let from = |since: Since| match since {
            Since::Action => mark,
            Since::Drill => &self.start,
        };
        match o {
            Observe::Http {
                method,
                url,
                headers,
                expect,
            } => self.http(method, url, headers, expect).await,
            Observe::Exit { service, code } => match self.ctx.services.exit(service).await {
                Err(e) => Seen::no(e.to_string()),
                Ok(None) => Seen::no("still running"),
                Ok(Some(x)) => Seen {
                    ok: !x.killed && x.code() == Some(*code),
                    text: format!(
                        "{} ({} after SIGTERM)",
                        x.describe(),
                        format_duration(x.took)
                    ),
                    value: json!(x.code()),
                },
            },
            Observe::Sql { db, query, expect } => {
                let db = db.resolved(&self.ctx.checklist_dir);
                match crate::probe::sql::query(&db, query, Duration::from_secs(5)).await {
                    Err(e) => Seen::no(e.to_string()),
                    Ok(rows) => {
                        let checks = expect
                            .as_ref()
                            .map(|x| crate::probe::sql::check(&rows, x))
                            .unwrap_or_default();
                        Seen {
                            ok: checks.iter().all(|c| c.passed),
                            text: format!(
                                "{} row(s), value {}",
                                rows.rows.len(),
                                rows.shown_value()
                            ),
                            value: json!(rows.rows),
                        }
                    }
                }
            }
            Observe::Notifications {
                sink,
                matches,
                count,
                since,
            } => self.notifications(sink, matches.as_ref(), *count, from(*since)),
            Observe::Orders {
                broker,
                api_key,
                account,
                open,
                flat,
            } => {
                self.orders(broker, api_key.as_ref(), account, *open, *flat)
                    .await
            }
            Observe::Log {
                service,
                matches,
                count,
                since,
            } => {
                let offset = from(*since).offsets.get(service).copied().unwrap_or(0);
                let text = self.ctx.services.output_since(service, offset);
                let lines: Vec<&str> = text.lines().filter(|l| matches.is_match(l)).collect();
                let n = lines.len() as u64;
                Seen {
                    ok: count.accepts(n),
                    text: format!(
                        "{n} matching line(s){}",
                        lines
                            .last()
                            .map(|l| format!("; last: {l}"))
                            .unwrap_or_default()
                    ),
                    value: json!(n),
                }
            }
            Observe::Process {
                service,
                running,
                unchanged,
                max_restarts,
            } => {
                self.process(service, *running, *unchanged, *max_restarts)
                    .await
            }
        }
    }

    async fn http(
        &self,
        method: &reqwest::Method,
        url: &Interpolated,
        headers: &[(String, Interpolated)],
        expect: &crate::probe::expect::HttpExpect,
    ) -> Seen {
        let mut req = self.client.request(method.clone(), &url.value);
        for (k, v) in headers {
            req = req.header(k, &v.value);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Seen::no(format!(
                    "{method} {} failed: {}",
                    url.display,
                    crate::units::error_chain(&e)
                ));
            }
        };
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let value = match &expect.json {
            Some(j) => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer(&j.pointer).cloned())
                .unwrap_or(Value::Null),
            None => json!(String::from_utf8_lossy(&body).trim()),
        };
        let short = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            s.trim().chars().take(120).collect::<String>()
        };
        if !expect.status.accepts(status) {
            return Seen {
                ok: false,
                text: format!(
                    "status {status}, expected {}; body: {}",
                    expect.status.describe(),
                    short(&body)
                ),
                value,
            };
        }
        match expect.check_body(&body) {
            Ok(()) => Seen {
                ok: true,
                text: format!("status {status}; body: {}", short(&body)),
                value,
            },
            Err(m) => Seen {
                ok: false,
                text: format!("status {status}; {m}"),
                value,
            },
        }
    }

    fn notifications(
        &self,
        sink: &str,
        matches: Option<&regex::Regex>,
        count: super::step::Count,
        from: &Mark,
    ) -> Seen {
        let Some(s) = self.ctx.sinks.get(sink) else {
            return Seen::no(format!("sink \"{sink}\" is not running"));
        };
        let n = s.count_matching(matches, from.at, None) as u64;
        let last = s
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.at >= from.at && matches.is_none_or(|r| r.is_match(&m.text)))
            .map(|m| format!("; last: \"{}\"", m.text))
            .unwrap_or_default();
        Seen {
            ok: count.accepts(n),
            text: format!(
                "{n} matching message(s), expected {}{last}",
                count.describe()
            ),
            value: json!(n),
        }
    }

    async fn orders(
        &self,
        broker: &Interpolated,
        api_key: Option<&Interpolated>,
        account: &str,
        open: Option<u64>,
        flat: bool,
    ) -> Seen {
        let base = broker.value.trim_end_matches('/');
        let get = |path: &str, query: &[(&str, &str)]| {
            let mut r = self.client.get(format!("{base}{path}")).query(query);
            if let Some(k) = api_key {
                r = r.bearer_auth(&k.value);
            }
            async move {
                let resp = r.send().await.map_err(|e| crate::units::error_chain(&e))?;
                let status = resp.status();
                let v: Value = resp.json().await.map_err(|e| e.to_string())?;
                if status.is_success() {
                    Ok(v)
                } else {
                    Err(format!("{status}: {v}"))
                }
            }
        };
        let orders = get(
            "/api/v1/orders",
            &[("status", "open"), ("account", account)],
        )
        .await;
        let positions = get("/api/v1/positions", &[("account", account)]).await;
        let (orders, positions) = match (orders, positions) {
            (Ok(o), Ok(p)) => (o, p),
            (Err(e), _) | (_, Err(e)) => return Seen::no(format!("{}: {e}", broker.display)),
        };
        let n_open = orders["orders"].as_array().map_or(0, |a| a.len()) as u64;
        let not_flat: Vec<String> = positions["positions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["qty"].as_f64().is_some_and(|q| q != 0.0))
            .map(|p| format!("{} {}", p["symbol"].as_str().unwrap_or("?"), p["qty"]))
            .collect();
        let ok = open.is_none_or(|n| n == n_open) && (!flat || not_flat.is_empty());
        Seen {
            ok,
            text: format!(
                "account {account}: {n_open} open order(s), {}",
                if not_flat.is_empty() {
                    "positions flat".to_string()
                } else {
                    format!("not flat: {}", not_flat.join(", "))
                }
            ),
            value: json!({ "open": n_open, "not_flat": not_flat.len() }),
        }
    }

    async fn process(
        &self,
        service: &str,
        running: bool,
        unchanged: bool,
        max_restarts: Option<u32>,
    ) -> Seen {
        let exit = match self.ctx.services.exit(service).await {
            Ok(e) => e,
            Err(m) => return Seen::no(m.to_string()),
        };
        let pid = self.ctx.services.pid(service);
        let first = self.start_pids.get(service).copied().flatten();
        let is_running = exit.is_none() && pid.is_some();
        let text = match (is_running, pid) {
            (true, Some(p)) => format!(
                "running as PID {p}{}",
                match first {
                    Some(f) if f != p => format!(" (the drill started with PID {f})"),
                    _ => String::new(),
                }
            ),
            _ => format!(
                "not running ({})",
                exit.map_or("stopped".to_string(), |e| e.describe())
            ),
        };
        let mut ok = is_running == running && (!unchanged || (is_running && pid == first));
        let mut text = text;
        if let Some(max) = max_restarts {
            let before = self.start_counts.get(service).copied().unwrap_or(0);
            let restarts = self.ctx.services.starts(service).saturating_sub(before);
            ok &= restarts <= max;
            text = format!("{text}; {restarts} restart(s) since the drill started");
        }
        Seen {
            ok,
            text,
            value: json!(pid),
        }
    }

    /// Undo what is still broken, and only that: start the services the drill touched that
    /// are not running, continue those it left paused, heal the proxies it gave a fault that
    /// still have one, clear the broker faults no later step cleared. A service a later step
    /// already started again is not restored. When `give_up` is cancelled (a second
    /// interruption, or [`RESTORE_LIMIT`]), what is left is listed as not done.
    async fn restore(&self, give_up: &CancellationToken) -> Restored {
        let (services, paused, proxies, brokers) = {
            let b = lock(&self.broken);
            let services = b.services().to_vec();
            let paused: Vec<bool> = services.iter().map(|s| b.paused(s)).collect();
            (
                services,
                paused,
                b.proxies().to_vec(),
                b.brokers_in_effect(),
            )
        };
        let set = &self.ctx.services;
        let mut out = Vec::new();
        for (s, paused) in services.iter().zip(paused) {
            let what = format!("service {s}");
            let r = match set.exit(s).await {
                Err(e) => Err(e.to_string()),
                Ok(None) if !paused => continue,
                _ if give_up.is_cancelled() => Err(self.not_done()),
                Ok(None) => set
                    .signal(s, nix::sys::signal::Signal::SIGCONT)
                    .await
                    .map(|()| "continued (SIGCONT)".to_string())
                    .map_err(|e| e.to_string()),
                // The start sees `give_up` itself and stops waiting for readiness; the run
                // stops the process with the other services.
                Ok(Some(_)) => match set.start(s, give_up).await {
                    Ok(t) => Ok(format!(
                        "started again (ready after {})",
                        format_duration(t)
                    )),
                    Err(_) if give_up.is_cancelled() => Err(self.not_done()),
                    Err(e) => Err(e.to_string()),
                },
            };
            out.push((what, r));
        }
        for p in &proxies {
            let Some(proxy) = self.ctx.proxies.get(p) else {
                continue;
            };
            let Some(fault) = proxy.state().fault else {
                continue;
            };
            let r = if give_up.is_cancelled() {
                Err(self.not_done())
            } else {
                proxy
                    .heal()
                    .await
                    .map(|()| format!("healed (was {fault})"))
                    .map_err(|e| e.to_string())
            };
            out.push((format!("proxy {p}"), r));
        }
        for (b, key) in &brokers {
            let r = tokio::select! {
                r = self.broker_fault(b, key.as_ref(), None), if !give_up.is_cancelled() => {
                    r.map(|_| "faults cleared".to_string())
                }
                _ = give_up.cancelled() => Err(self.not_done()),
            };
            out.push((Target::broker(b).label(), r));
        }
        out
    }

    /// Why a restore action was not done.
    fn not_done(&self) -> String {
        if self.ctx.abandon.is_cancelled() {
            "not done: the restore was abandoned by a second interruption".to_string()
        } else {
            format!(
                "not done: the restore took longer than {}",
                format_duration(RESTORE_LIMIT)
            )
        }
    }

    fn output(&self, steps: &[Step], ending: &Ending<'_>) -> ProbeOutput {
        let records = lock(&self.records).clone();
        let mut out = ProbeOutput::default();
        for r in &records {
            out.checks.extend(check_of(r));
        }
        for (what, r) in ending.restored {
            if let Err(e) = r {
                out.checks.push(Check::new(
                    format!("restore {what}"),
                    "restored",
                    e.clone(),
                    false,
                ));
            }
        }
        out.tables.push(steps_table(&records));
        if !ending.in_effect.is_empty() {
            out.tables.push(Table {
                title: match ending.stopped {
                    Some(Stopped::Interrupted) => "In effect at the interruption",
                    Some(Stopped::TimedOut) => "In effect at the item timeout",
                    Some(Stopped::Abandoned) => "In effect when the drill was abandoned",
                    None => "In effect after the last step",
                }
                .into(),
                columns: vec!["what".into(), "state".into(), "since step".into()],
                rows: ending
                    .in_effect
                    .iter()
                    .map(|e| vec![e.target.label(), e.state.describe(), e.step.clone()])
                    .collect(),
            });
        }
        if !ending.restored.is_empty() {
            out.tables.push(Table {
                title: "Restored after the drill".into(),
                columns: vec!["what".into(), "result".into()],
                rows: ending
                    .restored
                    .iter()
                    .map(|(w, r)| {
                        vec![
                            w.clone(),
                            r.clone().unwrap_or_else(|e| format!("FAILED: {e}")),
                        ]
                    })
                    .collect(),
            });
        }
        let record = ending_json(&records, ending);
        if let Value::Object(m) = &record {
            out.measured
                .extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out.summary = summary(steps.len(), &records, ending);
        if ending.stopped.is_some() {
            out.forced = Some(crate::model::Status::Error);
        }
        self.write_evidence(&mut out, &record);
        out
    }

    fn write_evidence(&self, out: &mut ProbeOutput, record: &Value) {
        let text = serde_json::to_string_pretty(record).unwrap_or_default();
        match self.ctx.write_evidence(
            "drill.json",
            text.as_bytes(),
            "drill steps and measured times, what was in effect when they stopped, the restore",
            "application/json",
        ) {
            Ok(e) => out.evidence.push(e),
            Err(e) => out.log_tail = Some(e),
        }
        for (name, sink) in self.ctx.sinks.iter() {
            let lines = sink.evidence_jsonl(|t| self.ctx.redactor.redact(t));
            if lines.is_empty() {
                continue;
            }
            let file = format!("sink-{name}.jsonl");
            if let Ok(e) = self.ctx.write_evidence(
                &file,
                lines.as_bytes(),
                &format!("messages received by sink {name}"),
                "application/x-ndjson",
            ) {
                out.evidence.push(e);
            }
        }
    }
}

/// The drill's record (`drill.json`, and the item's measured values): `stopped` (`null`
/// after the last step, else `{reason, step, name, in_progress, after_ms}` with the 1-based
/// step it stopped at and the time from the drill's start), `steps` (each with `at_ms` from
/// the drill's start and `ms`), `in_effect` (`{what, state, step}` when the steps stopped),
/// `restored` (`{what, ok, detail}`: only what the restore had to do) and `restore_ms`.
fn ending_json(records: &[StepRecord], ending: &Ending<'_>) -> Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let stopped = ending.stopped.map(|why| {
        let at = stopped_at(records);
        json!({
            "reason": why.as_str(),
            "step": at.map(|(i, _, _)| i + 1),
            "name": at.map(|(_, r, _)| r.name.clone()),
            "in_progress": at.is_some_and(|(_, _, in_progress)| in_progress),
            "after_ms": ms(ending.after),
        })
    });
    json!({
        "stopped": stopped,
        "steps": records.iter().map(record_json).collect::<Vec<_>>(),
        "in_effect": ending.in_effect.iter().map(Effect::to_json).collect::<Vec<_>>(),
        "restored": ending
            .restored
            .iter()
            .map(|(w, r)| json!({"what": w, "ok": r.is_ok(), "detail": r.clone().unwrap_or_else(|e| e)}))
            .collect::<Vec<_>>(),
        "restore_ms": ms(ending.restore_took),
    })
}

/// Where a stopped drill stopped: the index of the step in progress (`true`) or of the first
/// step not reached (`false`), with its record; `None` when every step had finished.
fn stopped_at(records: &[StepRecord]) -> Option<(usize, &StepRecord, bool)> {
    records
        .iter()
        .enumerate()
        .find_map(|(i, r)| match r.result {
            StepOutcome::Stopped => Some((i, r, true)),
            StepOutcome::NotReached => Some((i, r, false)),
            _ => None,
        })
}

/// Now, with every service's output offset.
fn mark_of(services: &crate::service::ServiceSet) -> Mark {
    Mark {
        at: Instant::now(),
        offsets: services
            .names()
            .into_iter()
            .map(|n| {
                let o = services.output_offset(&n);
                (n, o)
            })
            .collect(),
    }
}

fn check_of(r: &StepRecord) -> Option<Check> {
    match (r.result, r.within) {
        (StepOutcome::NotRun | StepOutcome::Stopped | StepOutcome::NotReached, _)
        | (StepOutcome::Done, _)
        | (StepOutcome::Held, None) => None,
        (StepOutcome::Failed, None) => Some(Check::new(&r.name, "done", r.detail.clone(), false)),
        (res, Some(within)) => {
            let expected = match r.hold {
                Some(h) => format!(
                    "within {}, holding {}",
                    format_duration(within),
                    format_duration(h)
                ),
                None => format!("within {}", format_duration(within)),
            };
            let measured = match (res, r.measured) {
                // It started after its deadline (earlier steps took longer) and held at once.
                (StepOutcome::Held, Some(t)) if t > within => {
                    format!(
                        "held at its first poll, {} after the last action",
                        format_duration(t)
                    )
                }
                (StepOutcome::Held, Some(t)) => format_duration(t),
                _ => r.detail.clone(),
            };
            Some(Check::new(
                &r.name,
                expected,
                measured,
                res == StepOutcome::Held,
            ))
        }
    }
}

fn record_json(r: &StepRecord) -> Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    json!({
        "name": r.name,
        "kind": r.kind,
        "result": r.result.as_str(),
        "at_ms": r.at.map(ms),
        "ms": r.measured.map(ms),
        "within_ms": r.within.map(|d| d.as_millis() as u64),
        "detail": r.detail,
    })
}

fn steps_table(records: &[StepRecord]) -> Table {
    let shown = |d: Option<Duration>| d.map(format_duration).unwrap_or_else(|| "—".into());
    Table {
        title: "Drill steps".into(),
        columns: [
            "#", "step", "kind", "result", "at", "time", "within", "detail",
        ]
        .map(String::from)
        .to_vec(),
        rows: records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                vec![
                    (i + 1).to_string(),
                    r.name.clone(),
                    r.kind.clone(),
                    r.result.as_str().to_string(),
                    shown(r.at),
                    shown(r.measured),
                    shown(r.within),
                    r.detail.clone(),
                ]
            })
            .collect(),
    }
}

/// One line: how the steps went and, for a drill stopped early, where it stopped, what was in
/// effect and what the restore did; a failed restore is always said.
fn summary(total: usize, records: &[StepRecord], ending: &Ending<'_>) -> String {
    let failed: Vec<&StepRecord> = records
        .iter()
        .filter(|r| r.result == StepOutcome::Failed)
        .collect();
    let not_run = records
        .iter()
        .filter(|r| r.result == StepOutcome::NotRun)
        .count();
    let failures = failed.first().map(|first| {
        let mut s = format!(
            "{} of {total} steps failed; first: \"{}\": {}",
            failed.len(),
            first.name,
            first.detail
        );
        if not_run > 0 {
            s.push_str(&format!("; {not_run} not run"));
        }
        s
    });
    let restore_failed = ending.restored.iter().any(|(_, r)| r.is_err());
    let Some(why) = ending.stopped else {
        let steps = failures.unwrap_or_else(|| all_succeeded(total, records));
        return match restore_failed {
            true => format!("{steps}; {}", restore_summary(ending)),
            false => steps,
        };
    };
    let at = match stopped_at(records) {
        Some((i, r, true)) => format!("at step {} of {total} (\"{}\")", i + 1, r.name),
        Some((0, _, false)) => format!("before step 1 of {total}"),
        Some((i, _, false)) => format!("after step {i} of {total} (\"{}\")", records[i - 1].name),
        None => format!("after the last of {total} steps"),
    };
    let head = match why {
        Stopped::Interrupted => format!("interrupted {at}"),
        Stopped::TimedOut => format!(
            "timed out (item timeout) {} into the drill, {at}",
            format_duration(ending.after)
        ),
        Stopped::Abandoned => format!("abandoned by the runner {at}"),
    };
    let in_effect = match ending.in_effect {
        [] => "nothing in effect".to_string(),
        e => format!(
            "in effect: {}",
            e.iter()
                .map(Effect::describe)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut s = format!("{head}; {in_effect}; {}", restore_summary(ending));
    if let Some(f) = failures {
        s.push_str(&format!("; {f}"));
    }
    s
}

/// `restore ok: proxy gw healed (was down)`, `restore FAILED: service agent (…)`.
fn restore_summary(ending: &Ending<'_>) -> String {
    let shown = |ok: bool| {
        ending
            .restored
            .iter()
            .filter(|(_, r)| r.is_ok() == ok)
            .map(|(w, r)| match r {
                Ok(d) => format!("{w} {d}"),
                Err(e) => format!("{w} ({e})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (ending.restored.is_empty(), ending.in_effect.is_empty()) {
        (true, true) => "nothing to restore".to_string(),
        (true, false) => "the restore found nothing still broken".to_string(),
        _ if ending.restored.iter().all(|(_, r)| r.is_ok()) => {
            format!("restore ok: {}", shown(true))
        }
        _ if ending.restored.iter().all(|(_, r)| r.is_err()) => {
            format!("restore FAILED: {}", shown(false))
        }
        _ => format!("restore FAILED: {}; ok: {}", shown(false), shown(true)),
    }
}

/// `all 6 steps succeeded; time to detect 1.20 s, …`.
fn all_succeeded(total: usize, records: &[StepRecord]) -> String {
    let times: Vec<String> = records
        .iter()
        .filter(|r| r.within.is_some())
        .filter_map(|r| {
            r.measured
                .map(|t| format!("{} {}", r.name, format_duration(t)))
        })
        .collect();
    format!(
        "all {total} steps succeeded; {}",
        if times.is_empty() {
            "no expectations".to_string()
        } else {
            times.join(", ")
        }
    )
}

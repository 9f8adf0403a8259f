//! Running a drill: steps in order, then the restore of everything the drill broke.
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
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::effects::Target;
use super::output;
use super::record::{Ending, Restored, StepOutcome, StepRecord, Stopped, kind_of};
use super::state::{Drill, lock};
use super::step::{Action, Step, StepKind};
use crate::model::ProbeOutput;
use crate::probe::ProbeContext;
use crate::units::format_duration;

/// How long an action in progress when the drill is stopped may take to finish (a `stop`
/// within its grace, a `start` that sees the stop and gives up waiting for readiness).
pub(super) const SETTLE: Duration = Duration::from_secs(10);

/// The longest the restore may take; what it has not done by then is reported as not done.
pub(super) const RESTORE_LIMIT: Duration = Duration::from_secs(30);

/// How long a stopped drill may take to wind down: the action in progress, the restore and
/// writing its record.
pub(super) const WIND_DOWN: Duration =
    Duration::from_secs(SETTLE.as_secs() + RESTORE_LIMIT.as_secs() + 5);

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
pub(super) async fn run(steps: Vec<Step>, ctx: &ProbeContext) -> ProbeOutput {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = ctx.cancel.child_token();
    // The runner dropping this future stops the steps too; the task still restores.
    let _stop_on_drop = stop.clone().drop_guard();
    let c = ctx.clone();
    ctx.background.spawn(async move {
        let d = Drill::new(c.clone(), stop.clone());
        let steps = &steps[..];
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
        let records = lock(&d.records).clone();
        let _ = tx.send(output::output(&d.context(), &records, steps.len(), &ending));
    });
    rx.await
        .unwrap_or_else(|_| ProbeOutput::error("the drill task ended without a result"))
}

impl Drill {
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
                    let saved = lock(&self.saved);
                    let equals = match &step.kind {
                        StepKind::Expect(e) => e.equals_saved.as_deref(),
                        StepKind::Action(_) => None,
                    };
                    let uses = step.saved_uses().into_iter().map(|(_, n)| n);
                    let name = equals
                        .into_iter()
                        .chain(uses)
                        .find(|n| !saved.contains_key(*n))?;
                    Some(
                        saved_by
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| name.to_string()),
                    )
                });
            if let Some(m) = missing {
                self.record(StepRecord::unstarted(
                    step,
                    StepOutcome::NotRun,
                    format!("needs \"{m}\", which did not succeed"),
                ));
                continue;
            }
            for s in step.saves() {
                saved_by.insert(s.to_string(), step.name.clone());
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
                detail: self.redact(&format!(
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

    /// Run the `undo` of every action that has one, the last action's first, whether the
    /// steps passed or not: each is listed in the restore, and a failed one fails the item.
    async fn restore_undos(&self, give_up: &CancellationToken) -> Restored {
        let undos = lock(&self.broken).undos();
        let mut out = Vec::new();
        for (step, undo) in undos {
            let what = format!("undo of \"{step}\": {}", undo.describe());
            let r = tokio::select! {
                r = self.run_undo(&undo, give_up), if !give_up.is_cancelled() => r,
                _ = give_up.cancelled() => Err(self.not_done()),
            };
            out.push((
                self.redact(&what),
                r.map(|t| self.redact(&t)).map_err(|e| self.redact(&e)),
            ));
        }
        out
    }

    /// Undo what is still broken, and only that: start the services the drill touched that
    /// are not running, continue those it left paused, heal the proxies it gave a fault that
    /// still have one, clear the broker faults no later step cleared; first, the actions'
    /// `undo`s. A service a later step
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
        let mut out = self.restore_undos(give_up).await;
        for (s, paused) in services.iter().zip(paused) {
            if let Some(r) = self.restore_service(s, paused, give_up).await {
                out.push((format!("service {s}"), r));
            }
        }
        for p in &proxies {
            if let Some(r) = self.restore_proxy(p, give_up).await {
                out.push((format!("proxy {p}"), r));
            }
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

    /// Start service `s` again when it is not running, continue it when the drill left it
    /// paused; `None` when it needs neither.
    async fn restore_service(
        &self,
        s: &str,
        paused: bool,
        give_up: &CancellationToken,
    ) -> Option<Result<String, String>> {
        let set = &self.ctx.services;
        Some(match set.exit(s).await {
            Err(e) => Err(e.to_string()),
            Ok(None) if !paused => return None,
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
        })
    }

    /// Heal proxy `p` when it still has a fault; `None` when it has none (or is not running).
    async fn restore_proxy(
        &self,
        p: &str,
        give_up: &CancellationToken,
    ) -> Option<Result<String, String>> {
        let proxy = self.ctx.proxies.get(p)?;
        let fault = proxy.state().fault?;
        Some(if give_up.is_cancelled() {
            Err(self.not_done())
        } else {
            proxy
                .heal()
                .await
                .map(|()| format!("healed (was {fault})"))
                .map_err(|e| e.to_string())
        })
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
}

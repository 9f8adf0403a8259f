//! The runner: starts services, runs the selected items with bounded concurrency, per-item
//! timeouts and retries, applies waivers, decides the verdict and assembles the [`Report`].
//!
//! It emits [`RunEvent`]s instead of printing; the terminal UI is one listener.
//! Cancellation (ctrl-c / SIGTERM) cancels one token: running probes stop, services are
//! stopped, and a partial report marked `interrupted` is still produced. Probes that wind down
//! on their own (drills: stop stepping, restore, record) get a bounded moment to do so, at the
//! interruption as at their item timeout; a second ctrl-c cancels the `abandon` token, which
//! cuts that cleanup short.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::checklist::{Checklist, Item};
use crate::model::{Outcome, Severity, Status};
use crate::probe::ProbeContext;
use crate::report::{self, ItemReport, Report, RunMeta, WaiverReport, WaiverState};

/// What the runner tells its listeners.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The run starts with this many selected items.
    Started {
        /// Items that will run.
        selected: usize,
    },
    /// A service is starting.
    ServiceStarting {
        /// Its name.
        name: String,
    },
    /// A service finished starting.
    ServiceStarted {
        /// Its name.
        name: String,
        /// Whether it became ready.
        ready: bool,
        /// Message (why not, or "ready").
        message: String,
    },
    /// An item started.
    ItemStarted {
        /// Id.
        id: String,
        /// Title.
        title: String,
        /// Its timeout.
        timeout: Duration,
    },
    /// An item finished.
    ItemFinished {
        /// Id.
        id: String,
        /// Final outcome (after waivers).
        outcome: Box<Outcome>,
    },
    /// The run was interrupted.
    Interrupted,
    /// Services are being stopped.
    Stopping,
}

/// Receives [`RunEvent`]s.
pub trait EventSink: Send + Sync {
    /// Handle one event.
    fn event(&self, e: &RunEvent);
}

/// A sink that ignores everything.
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _e: &RunEvent) {}
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Items run at once.
    pub jobs: usize,
    /// Overrides every item's timeout when set.
    pub timeout: Option<Duration>,
    /// Only these item ids.
    pub only: Vec<String>,
    /// Only these sections (case-insensitive).
    pub sections: Vec<String>,
    /// Only items with one of these tags.
    pub tags: Vec<String>,
    /// Lowest severity whose failures block.
    pub fail_on: Severity,
    /// Where the report and evidence are written.
    pub report_dir: PathBuf,
    /// The checklist path as given on the command line.
    pub checklist_arg: String,
    /// Today's date for waiver expiry (UTC).
    pub today: jiff::civil::Date,
}

impl RunOptions {
    fn selects(&self, item: &Item) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == &item.id))
            && (self.sections.is_empty()
                || self
                    .sections
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&item.section)))
            && (self.tags.is_empty() || self.tags.iter().any(|t| item.tags.contains(t)))
    }

    fn filters(&self) -> Vec<String> {
        let mut f = Vec::new();
        f.extend(self.only.iter().map(|o| format!("--only {o}")));
        f.extend(self.sections.iter().map(|s| format!("--section {s}")));
        f.extend(self.tags.iter().map(|t| format!("--tag {t}")));
        f
    }
}

/// How long the runner still waits for a probe that winds down on its own after a second
/// interruption ([`ProbeContext::abandon`]) before it drops it.
const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// Run the checklist and build the report. Never fails: problems become outcomes.
///
/// `cancel` interrupts the run (the first ctrl-c / SIGTERM); `abandon` (the second) cuts short
/// the cleanup still running after that, such as a drill's restore.
pub async fn run(
    checklist: &Checklist,
    opts: &RunOptions,
    events: &dyn EventSink,
    cancel: CancellationToken,
    abandon: CancellationToken,
) -> Report {
    let started_at = jiff::Timestamp::now();
    let clock = Instant::now();
    let selected: Vec<&Item> = checklist.items.iter().filter(|i| opts.selects(i)).collect();
    events.event(&RunEvent::Started {
        selected: selected.len(),
    });
    let (proxies, sinks, resource_failed) = start_resources(checklist).await;
    let services = Arc::new(crate::service::ServiceSet::new(
        &checklist.services,
        &checklist.dir,
        &checklist.redactor,
    ));
    let service_failed = match &resource_failed {
        Some(why) => Some(why.clone()),
        None => services
            .start_all(
                &cancel,
                |name| {
                    events.event(&RunEvent::ServiceStarting {
                        name: name.to_string(),
                    })
                },
                |name, ready, message| {
                    events.event(&RunEvent::ServiceStarted {
                        name: name.to_string(),
                        ready,
                        message: message.to_string(),
                    })
                },
            )
            .await
            .map(|name| format!("service \"{name}\" did not become ready")),
    };
    let background = crate::probe::Background::default();
    let outcomes = match &service_failed {
        Some(name) => selected
            .iter()
            .map(|it| {
                let why = format!("not run: {name}");
                (it.id.clone(), Outcome::not_run(Status::Error, why))
            })
            .collect(),
        None => {
            let base = ProbeContext {
                item_id: String::new(),
                checklist_dir: checklist.dir.clone(),
                report_dir: opts.report_dir.clone(),
                redactor: Arc::new(checklist.redactor.clone()),
                cancel: cancel.clone(),
                abandon: abandon.clone(),
                deadline: None,
                services: services.clone(),
                proxies: Arc::new(proxies.clone()),
                sinks: Arc::new(sinks.clone()),
                background: background.clone(),
                today: opts.today,
            };
            run_items(&selected, &base, opts, events, &cancel).await
        }
    };
    // Cleanup a probe left running (a drill whose future was dropped still restores in its
    // task) finishes before the services are stopped, unless a second interruption abandons it.
    tokio::select! {
        _ = background.wait() => {}
        _ = abandon.cancelled() => {}
    }
    let interrupted = cancel.is_cancelled();
    if interrupted {
        events.event(&RunEvent::Interrupted);
    }
    events.event(&RunEvent::Stopping);
    let services = services.stop_all().await;
    for (_, p) in proxies {
        p.shutdown().await;
    }
    for (_, s) in sinks {
        s.shutdown().await;
    }
    let ran = Ran {
        outcomes,
        services,
        interrupted,
        started_at,
        duration: clock.elapsed(),
    };
    build_report(checklist, opts, ran)
}

type Proxies = BTreeMap<String, crate::rig::fault_proxy::FaultProxy>;
type Sinks = BTreeMap<String, crate::rig::sink::Sink>;

/// Start the checklist's `[[proxy]]`s and `[[sink]]`s on the addresses the loader chose; the
/// third value says which one could not start.
async fn start_resources(checklist: &Checklist) -> (Proxies, Sinks, Option<String>) {
    let mut proxies = BTreeMap::new();
    let mut sinks = BTreeMap::new();
    for p in &checklist.proxies {
        match crate::rig::fault_proxy::FaultProxy::start(&p.name, p.listen, p.upstream.to_string())
            .await
        {
            Ok(fp) => {
                proxies.insert(p.name.clone(), fp);
            }
            Err(e) => {
                return (
                    proxies,
                    sinks,
                    Some(format!("proxy \"{}\" could not start: {e}", p.name)),
                );
            }
        }
    }
    for s in &checklist.sinks {
        match crate::rig::sink::Sink::start_on(&s.name, s.listen).await {
            Ok(sink) => {
                sinks.insert(s.name.clone(), sink);
            }
            Err(e) => {
                return (
                    proxies,
                    sinks,
                    Some(format!("sink \"{}\" could not start: {e}", s.name)),
                );
            }
        }
    }
    (proxies, sinks, None)
}

/// Run the selected items, at most `opts.jobs` at once. An item whose probe says
/// `during = "<id>"` starts with that item and is told when it finishes (e.g. memory sampled
/// while the latency item drives load); when the other item is not selected, it runs alone.
async fn run_items(
    selected: &[&Item],
    base: &ProbeContext,
    opts: &RunOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> BTreeMap<String, Outcome> {
    let selected_ids: std::collections::HashSet<&str> =
        selected.iter().map(|i| i.id.as_str()).collect();
    let companion_of = |it: &Item| during_selected(it, &selected_ids).is_some();
    let leads: Vec<&Item> = selected
        .iter()
        .copied()
        .filter(|it| !companion_of(it))
        .collect();
    // Drills (exclusive kinds) take the write side: nothing else runs while they do.
    let alone = tokio::sync::RwLock::new(());
    let alone = &alone;
    let results: Vec<Vec<(String, Outcome)>> = futures::stream::iter(leads.iter().map(|item| {
        let companions: Vec<&Item> = selected
            .iter()
            .copied()
            .filter(|c| during_selected(c, &selected_ids) == Some(item.id.as_str()))
            .collect();
        let exclusive = item.probe.exclusive();
        let group = run_group(item, companions, base, opts, events, cancel.clone());
        async move {
            if exclusive {
                let _alone = alone.write().await;
                let r = group.await;
                // A drill dropped by the runner restores in the background: the next item
                // must not start before the system is whole again.
                tokio::select! {
                    _ = base.background.wait() => {}
                    _ = base.abandon.cancelled() => {}
                }
                r
            } else {
                let _shared = alone.read().await;
                group.await
            }
        }
    }))
    .buffered(opts.jobs.max(1))
    .collect()
    .await;
    results.into_iter().flatten().collect()
}

/// Run one item with the items that run `during` it; skipped when the run was interrupted.
async fn run_group(
    item: &Item,
    companions: Vec<&Item>,
    base: &ProbeContext,
    opts: &RunOptions,
    events: &dyn EventSink,
    cancel: CancellationToken,
) -> Vec<(String, Outcome)> {
    if cancel.is_cancelled() {
        return std::iter::once(item)
            .chain(companions)
            .map(|it| {
                let why = "not run: the run was interrupted";
                (it.id.clone(), Outcome::not_run(Status::Skipped, why))
            })
            .collect();
    }
    let done = CancellationToken::new();
    let lead = async {
        let r = run_with_events(item, base, opts, events, None).await;
        done.cancel();
        r
    };
    let others = futures::future::join_all(
        companions
            .iter()
            .map(|c| run_with_events(c, base, opts, events, Some(&done))),
    );
    let (first, rest) = futures::join!(lead, others);
    std::iter::once(first).chain(rest).collect()
}

/// What a run produced, before waivers and the verdict.
struct Ran {
    outcomes: BTreeMap<String, Outcome>,
    services: Vec<report::ServiceReport>,
    interrupted: bool,
    started_at: jiff::Timestamp,
    duration: Duration,
}

/// Apply the waivers, decide the verdict and assemble the report (paths made portable).
fn build_report(checklist: &Checklist, opts: &RunOptions, ran: Ran) -> Report {
    let Ran {
        mut outcomes,
        services,
        interrupted,
        started_at,
        duration,
    } = ran;
    let mut waivers = Vec::new();
    let mut items = Vec::new();
    for it in &checklist.items {
        let mut outcome = outcomes
            .remove(&it.id)
            .unwrap_or_else(|| Outcome::not_run(Status::Skipped, report::NOT_SELECTED));
        let probe_status = outcome.status;
        for w in checklist.waivers.iter().filter(|w| w.item == it.id) {
            waivers.push(apply_waiver(w, &mut outcome, probe_status, opts.today));
        }
        items.push(ItemReport {
            id: it.id.clone(),
            section: it.section.clone(),
            title: it.title.clone(),
            severity: it.severity,
            tags: it.tags.clone(),
            kind: it.probe.kind().to_string(),
            description: it.description.clone(),
            probe_status,
            outcome,
        });
    }
    let (verdict, reasons) = report::verdict(&items, &services, interrupted, opts.fail_on);
    // The items the filters left out: their verdict is not known, so the run's is partial.
    let not_run: Vec<String> = checklist
        .items
        .iter()
        .filter(|it| !opts.selects(it))
        .map(|it| it.id.clone())
        .collect();
    let finished_at = jiff::Timestamp::now();
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        run: RunMeta {
            checklist: report::ChecklistInfo {
                name: checklist.meta.name.clone(),
                path: match checklist.path.file_name() {
                    Some(name) => crate::facts::repo_relative_path(&checklist.dir, name)
                        .unwrap_or_else(|| name.to_string_lossy().into_owned()),
                    None => opts.checklist_arg.clone(),
                },
                sha256: checklist.sha256.clone(),
                system: checklist.meta.system.clone(),
                environment: checklist.meta.environment.clone(),
                description: checklist.meta.description.clone(),
            },
            git: crate::facts::git_info(&checklist.dir),
            host: crate::facts::host_facts(),
            prodready_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: started_at
                .round(jiff::Unit::Millisecond)
                .unwrap_or(started_at)
                .to_string(),
            finished_at: finished_at
                .round(jiff::Unit::Millisecond)
                .unwrap_or(finished_at)
                .to_string(),
            duration_ms: duration.as_millis() as u64,
            interrupted,
            fail_on: opts.fail_on,
            filters: opts.filters(),
        },
        verdict,
        partial: !not_run.is_empty(),
        not_run,
        counts: report::count(&items),
        reasons,
        items,
        services,
        waivers,
        signoff: report::Signoff {
            required_roles: checklist.meta.signoff.clone(),
            signatures: Vec::new(),
        },
    };
    let paths = report::portable::PathMap::new(
        &checklist.dir,
        &opts.report_dir,
        std::env::var_os("HOME").map(std::path::PathBuf::from),
    );
    if let Err(e) = paths.apply_to_report(&mut report) {
        report
            .reasons
            .push(format!("internal error making paths portable: {e}"));
    }
    report
}

/// The item `it` runs `during`, when that item is among the selected ones.
fn during_selected<'a>(it: &'a Item, ids: &std::collections::HashSet<&str>) -> Option<&'a str> {
    it.during.as_deref().filter(|d| ids.contains(d))
}

/// Run one item with its start and finish events; `until` is set for an item that runs
/// `during` another and is cancelled when that one finishes.
async fn run_with_events(
    item: &Item,
    base: &ProbeContext,
    opts: &RunOptions,
    events: &dyn EventSink,
    until: Option<&CancellationToken>,
) -> (String, Outcome) {
    let ctx = ProbeContext {
        item_id: item.id.clone(),
        ..base.clone()
    };
    let timeout = opts.timeout.unwrap_or(item.timeout);
    events.event(&RunEvent::ItemStarted {
        id: item.id.clone(),
        title: item.title.clone(),
        timeout,
    });
    let outcome = run_item(item, &ctx, timeout, until).await;
    events.event(&RunEvent::ItemFinished {
        id: item.id.clone(),
        outcome: Box::new(outcome.clone()),
    });
    (item.id.clone(), outcome)
}

/// Run one item: attempts up to `1 + retries`, each bounded by `timeout`.
async fn run_item(
    item: &Item,
    ctx: &ProbeContext,
    timeout: Duration,
    until: Option<&CancellationToken>,
) -> Outcome {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let started = Instant::now();
        let ctx = &ProbeContext {
            deadline: Some(started + timeout),
            ..ctx.clone()
        };
        let probe = item.probe.run(ctx, until);
        let out = match item.probe.winds_down() {
            Some(bound) => wind_down(probe, ctx, started + timeout, bound).await,
            None => tokio::select! {
                r = tokio::time::timeout(timeout, probe) => match r {
                    Ok(out) => out,
                    Err(_) => crate::model::ProbeOutput::error(format!(
                        "timed out after {} (item timeout)",
                        crate::units::format_duration(timeout)
                    )),
                },
                _ = ctx.cancel.cancelled() => crate::model::ProbeOutput::error("interrupted before the probe finished"),
            },
        };
        let outcome = Outcome::from_probe(out, attempts, started.elapsed().as_millis() as u64);
        let retry = matches!(outcome.status, Status::Fail | Status::Error)
            && attempts <= item.retries
            && !ctx.cancel.is_cancelled();
        if !retry {
            return outcome;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = ctx.cancel.cancelled() => return outcome,
        }
    }
}

/// Await a probe that winds down on its own ([`crate::probe::ProbeKind::winds_down`]): it sees
/// the interruption and its `deadline` itself and returns its own output. It is dropped only
/// when it has not returned `bound` after the deadline or after the interruption, or
/// [`ABANDON_GRACE`] after a second interruption.
async fn wind_down(
    probe: impl Future<Output = crate::model::ProbeOutput>,
    ctx: &ProbeContext,
    deadline: Instant,
    bound: Duration,
) -> crate::model::ProbeOutput {
    let shown = crate::units::format_duration;
    tokio::pin!(probe);
    let why = tokio::select! {
        out = &mut probe => return out,
        _ = tokio::time::sleep_until((deadline + bound).into()) => format!(
            "timed out (item timeout) and did not stop within {} after it",
            shown(bound)
        ),
        _ = async {
            ctx.cancel.cancelled().await;
            tokio::time::sleep(bound).await;
        } => format!(
            "interrupted, and the probe did not stop within {} after the interruption",
            shown(bound)
        ),
        _ = async {
            ctx.abandon.cancelled().await;
            tokio::time::sleep(ABANDON_GRACE).await;
        } => "interrupted twice; the probe was abandoned before it finished".to_string(),
    };
    crate::model::ProbeOutput::error(why)
}

/// Apply waiver `w` to the outcome of its item, whose probe produced `probe_status`, as of
/// `today` (UTC): an unexpired waiver turns `fail` or `error` into `waived`; `pending` (time
/// will tell) and every other status are left alone. Returns what the waiver did.
pub fn apply_waiver(
    w: &crate::checklist::Waiver,
    outcome: &mut Outcome,
    probe_status: Status,
    today: jiff::civil::Date,
) -> WaiverReport {
    let state = if !w.applies_on(today) {
        WaiverState::Expired
    } else if matches!(probe_status, Status::Fail | Status::Error) {
        outcome.status = Status::Waived;
        WaiverState::Applied
    } else if probe_status == Status::Skipped {
        WaiverState::NotRun
    } else {
        WaiverState::NotNeeded
    };
    WaiverReport {
        item: w.item.clone(),
        reason: w.reason.clone(),
        approved_by: w.approved_by.clone(),
        expires: w.expires.to_string(),
        state,
        signer: w.signature.as_ref().map(|s| s.signer.clone()),
        signature: w.signature.as_ref().map(|s| s.armored.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checklist::Waiver;
    use crate::model::Severity;
    use crate::report::{ItemReport, ServiceReport, Verdict, verdict};

    fn date(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    fn waiver(expires: &str) -> Waiver {
        Waiver {
            item: "cov".into(),
            reason: "legacy adapter".into(),
            approved_by: "Technical lead".into(),
            expires: date(expires),
            signature: None,
        }
    }

    fn item(id: &str, severity: Severity, status: Status) -> ItemReport {
        ItemReport {
            id: id.into(),
            section: "S".into(),
            title: id.into(),
            severity,
            tags: Vec::new(),
            kind: "command".into(),
            description: None,
            probe_status: status,
            outcome: Outcome::not_run(status, format!("{id} summary")),
        }
    }

    #[test]
    fn a_waiver_turns_fail_and_error_into_waived_until_it_expires() {
        for status in [Status::Fail, Status::Error] {
            let mut o = Outcome::not_run(status, "x");
            let r = apply_waiver(&waiver("2027-01-31"), &mut o, status, date("2027-01-31"));
            assert_eq!((o.status, r.state), (Status::Waived, WaiverState::Applied));
            let mut o = Outcome::not_run(status, "x");
            let r = apply_waiver(&waiver("2027-01-31"), &mut o, status, date("2027-02-01"));
            assert_eq!((o.status, r.state), (status, WaiverState::Expired));
        }
    }

    #[test]
    fn a_waiver_never_hides_pending_and_says_when_it_was_not_needed() {
        let cases = [
            (Status::Pending, WaiverState::NotNeeded),
            (Status::Pass, WaiverState::NotNeeded),
            (Status::Warn, WaiverState::NotNeeded),
            (Status::Skipped, WaiverState::NotRun),
        ];
        for (status, state) in cases {
            let mut o = Outcome::not_run(status, "x");
            let r = apply_waiver(&waiver("2027-01-31"), &mut o, status, date("2026-12-01"));
            assert_eq!((o.status, r.state), (status, state), "{status:?}");
        }
    }

    #[test]
    fn verdict_blocks_at_and_above_fail_on_and_counts_waivers() {
        let minor_fail = item("m", Severity::Minor, Status::Fail);
        let major_pass = item("p", Severity::Major, Status::Pass);
        let (v, reasons) = verdict(
            &[minor_fail.clone(), major_pass.clone()],
            &[],
            false,
            Severity::Major,
        );
        assert_eq!((v, reasons.len()), (Verdict::Ready, 0));
        let (v, reasons) = verdict(
            std::slice::from_ref(&minor_fail),
            &[],
            false,
            Severity::Minor,
        );
        assert_eq!(v, Verdict::NotReady);
        assert_eq!(
            reasons,
            vec!["minor item \"m\" is fail: m summary".to_string()]
        );
        for status in [Status::Error, Status::Pending] {
            let (v, _) = verdict(
                &[item("b", Severity::Blocker, status)],
                &[],
                false,
                Severity::Major,
            );
            assert_eq!(
                v,
                Verdict::NotReady,
                "{status:?} blocks: no data is not a pass"
            );
        }
        let waived = item("w", Severity::Blocker, Status::Waived);
        let (v, _) = verdict(
            &[waived.clone(), major_pass.clone()],
            &[],
            false,
            Severity::Major,
        );
        assert_eq!(v, Verdict::ReadyWithWaivers);
        let (v, reasons) = verdict(
            std::slice::from_ref(&major_pass),
            &[],
            true,
            Severity::Major,
        );
        assert_eq!(v, Verdict::NotReady);
        assert!(reasons[0].contains("interrupted"));
        let down = ServiceReport {
            name: "broker".into(),
            command: "prodready paper-broker".into(),
            ready: false,
            ready_ms: None,
            message: "not ready after 10 s".into(),
            exit: None,
            log_tail: String::new(),
        };
        let (v, reasons) = verdict(&[major_pass], &[down], false, Severity::Major);
        assert_eq!(v, Verdict::NotReady);
        assert!(reasons[0].contains("service \"broker\" did not become ready"));
    }
}

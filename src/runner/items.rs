//! Running the selected items: bounded concurrency, drills alone, `during` companions, per-item
//! timeouts, retries and the wind-down of probes that stop on their own.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{EventSink, RunEvent, RunOptions};
use crate::checklist::Item;
use crate::model::{Outcome, ProbeOutput, Status};
use crate::probe::ProbeContext;

/// How long the runner still waits for a probe that winds down on its own after a second
/// interruption ([`ProbeContext::abandon`]) before it drops it.
const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// Run the selected items, at most `opts.jobs` at once. An item whose probe says
/// `during = "<id>"` starts with that item and is told when it finishes (e.g. memory sampled
/// while the latency item drives load); when the other item is not selected, it runs alone.
pub(super) async fn run_items(
    selected: &[&Item],
    base: &ProbeContext,
    opts: &RunOptions,
    events: &dyn EventSink,
    cancel: &CancellationToken,
) -> BTreeMap<String, Outcome> {
    let selected_ids: HashSet<&str> = selected.iter().map(|i| i.id.as_str()).collect();
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

/// The item `it` runs `during`, when that item is among the selected ones.
fn during_selected<'a>(it: &'a Item, ids: &HashSet<&str>) -> Option<&'a str> {
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
    let mut outcome = run_item(item, &ctx, timeout, until).await;
    outcome = match &opts.baseline {
        Some(base) => super::baseline::gate(item, outcome, base, &opts.report_dir),
        None => super::baseline::without_baseline(item, outcome),
    };
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
                    Err(_) => ProbeOutput::error(format!(
                        "timed out after {} (item timeout)",
                        crate::units::format_duration(timeout)
                    )),
                },
                _ = ctx.cancel.cancelled() => ProbeOutput::error("interrupted before the probe finished"),
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
    probe: impl Future<Output = ProbeOutput>,
    ctx: &ProbeContext,
    deadline: Instant,
    bound: Duration,
) -> ProbeOutput {
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
    ProbeOutput::error(why)
}

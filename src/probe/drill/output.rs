//! What a drill reports: a check per expectation (and per failed action or restore), the
//! "Drill steps", "In effect …" and "Restored after the drill" tables, a one-line summary,
//! and the same record as `drill.json` evidence and the item's measured values, and the step
//! timeline chart (`drill-steps.svg`).

use std::time::Duration;

use serde_json::{Value, json};

use super::effects::Effect;
use super::record::{Ending, StepOutcome, StepRecord, Stopped};
use crate::model::{Check, ProbeOutput, Table};
use crate::probe::ProbeContext;
use crate::units::format_duration;

/// The drill's output: its checks, tables, summary and record, with `drill.json` and the
/// sinks' messages written as evidence. `total` is the number of steps.
pub(super) fn output(
    ctx: &ProbeContext,
    records: &[StepRecord],
    total: usize,
    ending: &Ending<'_>,
) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    for r in records {
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
    out.tables.push(steps_table(records));
    out.tables.extend(ending_tables(ending));
    let record = ending_json(records, ending);
    if let Value::Object(m) = &record {
        out.measured
            .extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out.summary = summary(total, records, ending);
    if ending.stopped.is_some() {
        out.forced = Some(crate::model::Status::Error);
    }
    write_evidence(ctx, &mut out, &record);
    write_chart(ctx, &mut out, records);
    out
}

/// The step timeline as `drill-steps.svg` when a step started; a failure to draw or write it
/// is added to the log, never dropped.
fn write_chart(ctx: &ProbeContext, out: &mut ProbeOutput, records: &[StepRecord]) {
    let title = format!("Drill steps of {}", ctx.item_id);
    let Some(svg) = super::chart::render(records, &title) else {
        return;
    };
    let written = svg.and_then(|s| {
        ctx.write_evidence(
            "drill-steps.svg",
            s.as_bytes(),
            "drill step timeline (start and measured time of each step)",
            "image/svg+xml",
        )
    });
    match written {
        Ok(e) => out.evidence.push(e),
        Err(e) => {
            let log = out.log_tail.get_or_insert_with(String::new);
            log.push_str(&e);
            log.push('\n');
        }
    }
}

/// "In effect …" (what the drill had broken and not undone when the steps ended) and
/// "Restored after the drill", each when not empty.
fn ending_tables(ending: &Ending<'_>) -> Vec<Table> {
    let mut tables = Vec::new();
    if !ending.in_effect.is_empty() {
        tables.push(Table {
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
        tables.push(Table {
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
    tables
}

/// `drill.json`, and each sink's messages as `sink-<name>.jsonl` (redacted).
fn write_evidence(ctx: &ProbeContext, out: &mut ProbeOutput, record: &Value) {
    let text = serde_json::to_string_pretty(record).unwrap_or_default();
    match ctx.write_evidence(
        "drill.json",
        text.as_bytes(),
        "drill steps and measured times, what was in effect when they stopped, the restore",
        "application/json",
    ) {
        Ok(e) => out.evidence.push(e),
        Err(e) => out.log_tail = Some(e),
    }
    for (name, sink) in ctx.sinks.iter() {
        let lines = sink.evidence_jsonl(|t| ctx.redactor.redact(t));
        if lines.is_empty() {
            continue;
        }
        let file = format!("sink-{name}.jsonl");
        if let Ok(e) = ctx.write_evidence(
            &file,
            lines.as_bytes(),
            &format!("messages received by sink {name}"),
            "application/x-ndjson",
        ) {
            out.evidence.push(e);
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

//! Gating on a baseline inside a run (`prodready run --baseline`, `[checklist] baseline`).
//!
//! The baseline report is loaded with [`crate::compare::load`] before any item runs (a
//! missing, truncated, tampered or foreign one is an input error). After an item with a
//! `regression` table ran, its result is compared with the baseline's item of the same id by
//! compare's per-kind functions, under a [`Policy`] made of the item's allowances (a figure
//! without an allowance is not judged), and one check named `baseline` is added to its
//! outcome: expected the allowances, measured baseline → now. A regression beyond an allowance
//! fails the item; a figure that cannot be compared (too few samples, a missing histogram or
//! figure) is an error, never a pass; an item the baseline lacks, or measured differently (its
//! kind or load changed), gets an advisory check "not compared" (the item warns). The verdict
//! is then decided as always, from the outcomes ([`crate::report::verdict`]).

use std::path::Path;

use crate::checklist::{Checklist, Item, Regression};
use crate::compare::{self, Loaded, Notes, Place, Policy, kinds, latency};
use crate::error::Result;
use crate::model::{Check, Outcome, Status};
use crate::report::{ChecklistInfo, ItemReport};

/// The check's name.
const CHECK: &str = "baseline";

/// Load the baseline at `path` for a run of `checklist`, as `prodready compare` loads one.
///
/// # Errors
/// [`crate::error::Error::InvalidInput`] (exit 2) naming the file: missing, truncated, not a
/// report, a signed report that does not verify, or one of another checklist digest or system
/// (unless `allow_other_checklist`).
pub fn load(
    path: &Path,
    checklist: &Checklist,
    allowed_signers: Option<&Path>,
    allow_other_checklist: bool,
) -> Result<Loaded> {
    let base = compare::load(path, allowed_signers)?;
    let info = ChecklistInfo {
        name: checklist.meta.name.clone(),
        path: String::new(),
        sha256: checklist.sha256.clone(),
        system: checklist.meta.system.clone(),
        environment: None,
        description: None,
    };
    compare::check_baseline_of(&base, &info, allow_other_checklist)?;
    Ok(base)
}

/// The policy of an item's allowances; a figure without one is never judged regressed.
fn policy(r: &Regression) -> Policy {
    let or_never = |v: Option<f64>| v.unwrap_or(f64::INFINITY);
    Policy {
        alpha: r.alpha.unwrap_or(Policy::default().alpha),
        latency_allowance_percent: or_never(r.p50_percent),
        tail_allowance_percent: or_never(r.p99_percent),
        coverage_allowance_points: or_never(r.coverage_points),
        availability_allowance_points: or_never(r.availability_points),
    }
}

/// The allowances as people read them: `p50 ≤ +10 %, p99 ≤ +10 % (alpha 0.01)`.
fn expected(r: &Regression) -> String {
    let mut parts = Vec::new();
    if let Some(p) = r.p50_percent {
        parts.push(format!("p50 shift ≤ +{p} %"));
    }
    if let Some(p) = r.p99_percent {
        parts.push(format!("p99 ≤ +{p} %"));
    }
    if let Some(p) = r.coverage_points {
        parts.push(format!("coverage ≥ −{p} points"));
    }
    if let Some(n) = r.new_advisories {
        parts.push(format!("new advisories ≤ {n}"));
    }
    if let Some(p) = r.availability_points {
        parts.push(format!("availability ≥ −{p} points"));
    }
    let mut text = format!("vs baseline: {}", parts.join(", "));
    if r.p50_percent.is_some() || r.p99_percent.is_some() {
        text.push_str(&format!(
            " (alpha {})",
            r.alpha.unwrap_or(Policy::default().alpha)
        ));
    }
    text
}

/// Add the `baseline` check to the outcome of `item` (run into `report_dir`) when the item
/// has a `regression` table; its status follows.
pub(super) fn gate(item: &Item, mut outcome: Outcome, base: &Loaded, report_dir: &Path) -> Outcome {
    let Some(r) = &item.regression else {
        return outcome;
    };
    let now = ItemReport {
        id: item.id.clone(),
        section: item.section.clone(),
        title: item.title.clone(),
        severity: item.severity,
        tags: item.tags.clone(),
        kind: item.probe.kind().to_string(),
        description: item.description.clone(),
        probe_status: outcome.status,
        outcome: outcome.clone(),
    };
    let not_compared = |why: &str| Judged {
        check: Check::new(CHECK, expected(r), format!("not compared: {why}"), false).advisory(),
        inconclusive: false,
        chart: None,
    };
    let check = match base.report.items.iter().find(|o| o.id == item.id) {
        None => not_compared("no baseline item"),
        Some(old) => match compare::changed(old, &now) {
            Some(why) => not_compared(&why),
            None => judge(base, report_dir, old, &now, r),
        },
    };
    if let Some(svg) = &check.chart {
        match crate::probe::write_evidence(
            report_dir,
            &item.id,
            "baseline-latency.svg",
            svg.as_bytes(),
            "latency percentiles, baseline and now (SVG)",
            "image/svg+xml",
        ) {
            Ok(e) => outcome.evidence.push(e),
            Err(e) => {
                let tail = outcome.log_tail.get_or_insert_default();
                tail.push_str(&format!("\nbaseline chart not written: {e}"));
            }
        }
    }
    // The check only ever worsens a measured status (pass → warn → fail, or error when a
    // figure could not be compared); an item that did not measure keeps its status.
    let c = &check.check;
    outcome.status = match outcome.status {
        Status::Pass | Status::Warn if check.inconclusive => Status::Error,
        Status::Pass | Status::Warn if !c.passed && !c.advisory => Status::Fail,
        Status::Pass if !c.passed => Status::Warn,
        s => s,
    };
    outcome.checks.push(check.check);
    outcome
}

/// Without a baseline, an item with a `regression` table gets an advisory check saying it
/// was not compared (the item warns): an allowance that was never applied is not a pass.
pub(super) fn without_baseline(item: &Item, mut outcome: Outcome) -> Outcome {
    let Some(r) = &item.regression else {
        return outcome;
    };
    if matches!(outcome.status, Status::Pass | Status::Warn) {
        outcome.status = Status::Warn;
    }
    outcome.checks.push(
        Check::new(
            CHECK,
            expected(r),
            "not compared: no baseline given (prodready run --baseline PATH, or baseline = \"…\" in [checklist])",
            false,
        )
        .advisory(),
    );
    outcome
}

/// The check, whether a figure could not be compared, and the latency chart of both runs.
struct Judged {
    check: Check,
    inconclusive: bool,
    chart: Option<String>,
}

/// Compare `now` with the baseline's `old` under the item's allowances.
fn judge(
    base: &Loaded,
    report_dir: &Path,
    old: &ItemReport,
    now: &ItemReport,
    r: &Regression,
) -> Judged {
    let policy = policy(r);
    let mut notes = Notes::default();
    let mut chart = None;
    if !matches!(
        old.outcome.status,
        Status::Pass | Status::Warn | Status::Fail | Status::Waived
    ) {
        notes.inconclusive.push(format!(
            "not compared: the baseline item did not measure (status {})",
            old.outcome.status.as_str()
        ));
        return verdict(String::new(), notes, r, None);
    }
    let figures = match now.kind.as_str() {
        "latency" => {
            let path = report_dir.join("report.json");
            let here = Place {
                path: &path,
                dir: report_dir,
            };
            let c = latency::compare_latency(base.place(), here, old, now, &policy, &mut notes);
            chart = c.as_ref().and_then(|c| c.svg.clone());
            c.map(|c| latency_figures(&c)).unwrap_or_default()
        }
        "coverage" => {
            kinds::coverage(old, now, &policy, &mut notes);
            let keys = [("line", "line_percent"), ("branch", "branch_percent")];
            let shown = pair(old, now, &keys, "%");
            if shown.is_empty() {
                notes
                    .inconclusive
                    .push("coverage not compared: a report has no line or branch coverage".into());
            }
            shown
        }
        "uptime" => {
            kinds::uptime(old, now, &policy, &mut notes);
            pair(old, now, &[("availability", "availability_percent")], "%")
        }
        "audit" => audit(old, now, r, &mut notes),
        other => format!("{other} items are not compared"),
    };
    verdict(figures, notes, r, chart)
}

/// The check from the figures shown and the notes: failed on any regressed or inconclusive
/// figure.
fn verdict(figures: String, notes: Notes, r: &Regression, chart: Option<String>) -> Judged {
    let mut measured = figures;
    for n in notes.regressed.iter().chain(&notes.inconclusive) {
        if !measured.is_empty() {
            measured.push_str("; ");
        }
        measured.push_str(n);
    }
    let passed = notes.regressed.is_empty() && notes.inconclusive.is_empty();
    Judged {
        check: Check::new(CHECK, expected(r), measured, passed),
        inconclusive: !notes.inconclusive.is_empty(),
        chart,
    }
}

/// Latency baseline → now: medians, the shift with its interval and p-value, p99.
fn latency_figures(c: &latency::LatencyChange) -> String {
    let mut s = format!(
        "p50 {:.3} → {:.3} ms, shift {:+.3} ms ({:.3} … {:.3} at {} %, p = {:.2e}, n {} → {})",
        c.baseline_median_ms,
        c.new_median_ms,
        c.shift_ms,
        c.shift_low_ms,
        c.shift_high_ms,
        c.confidence * 100.0,
        c.p_slower,
        c.n_baseline,
        c.n_new
    );
    if let Some(t) = c.tail.first()
        && let (Some(b), Some(n)) = (&t.baseline, &t.new)
    {
        s.push_str(&format!(
            "; p99 {:.3} → {:.3} ms",
            b.estimate_ms, n.estimate_ms
        ));
    }
    s
}

/// `line 62.16 → 56.52 %`, for each key both items measured.
fn pair(old: &ItemReport, now: &ItemReport, keys: &[(&str, &str)], unit: &str) -> String {
    let get = |i: &ItemReport, k: &str| i.outcome.measured.get(k).and_then(|v| v.as_f64());
    keys.iter()
        .filter_map(|(name, k)| {
            let (b, n) = (get(old, k)?, get(now, k)?);
            Some(format!("{name} {b:.2} → {n:.2} {unit}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Audit: advisories added and fixed; regressed when more were added than allowed.
fn audit(old: &ItemReport, now: &ItemReport, r: &Regression, notes: &mut Notes) -> String {
    let mut own = Notes::default();
    let Some(change) = kinds::audit(old, now, &mut own) else {
        return String::new();
    };
    let allowed = r.new_advisories.unwrap_or(u32::MAX) as usize;
    if change.added.len() > allowed {
        notes.regressed.extend(own.regressed);
    }
    format!(
        "advisories added {}, fixed {}",
        change.added.len(),
        change.fixed.len()
    )
}

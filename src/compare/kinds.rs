//! The per-kind comparisons besides latency, each from what the two reports hold:
//! - memory: the growth slopes' confidence intervals (`slope_low/high_bytes_per_hour`) and
//!   whether they overlap; regressed when the new interval lies wholly above the baseline's;
//! - coverage: Δ line and branch coverage in percentage points; regressed on a drop beyond
//!   the allowance;
//! - audit: advisories added and fixed, by ID and severity (the findings table); regressed on
//!   any added advisory;
//! - uptime: Δ availability (regressed on a drop beyond the allowance), error rate and burn
//!   rates (shown with every measured figure);
//! - drill: Δ of each step's measured time, by step name (shown, not judged).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Notes, Policy};
use crate::report::ItemReport;

fn number(item: &ItemReport, key: &str) -> Option<f64> {
    item.outcome.measured.get(key).and_then(Value::as_f64)
}

/// A memory growth slope interval, bytes per hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlopeInterval {
    /// The slope estimate.
    pub slope: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// The memory growth slopes of both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryChange {
    /// The baseline's slope interval.
    pub baseline: SlopeInterval,
    /// The new slope interval.
    pub new: SlopeInterval,
    /// True when the two intervals share a point (no evidence the growth changed).
    pub overlap: bool,
}

fn slope(item: &ItemReport) -> Option<SlopeInterval> {
    Some(SlopeInterval {
        slope: number(item, "slope_bytes_per_hour")?,
        low: number(item, "slope_low_bytes_per_hour")?,
        high: number(item, "slope_high_bytes_per_hour")?,
    })
}

/// Memory: the slope intervals, regressed when the new one lies wholly above the baseline's.
pub fn memory(old: &ItemReport, it: &ItemReport, notes: &mut Notes) -> Option<MemoryChange> {
    let (Some(b), Some(n)) = (slope(old), slope(it)) else {
        notes
            .inconclusive
            .push("memory slopes not compared: a report has no slope interval".into());
        return None;
    };
    let overlap = n.low <= b.high && b.low <= n.high;
    if n.low > b.high {
        notes.regressed.push(format!(
            "memory growth {:.0} B/h ({:.0} … {:.0}) is above the baseline's {:.0} B/h ({:.0} … {:.0}); the intervals do not overlap",
            n.slope, n.low, n.high, b.slope, b.low, b.high
        ));
    } else if n.high < b.low {
        notes.improved.push(format!(
            "memory growth {:.0} B/h is below the baseline's {:.0} B/h",
            n.slope, b.slope
        ));
    }
    Some(MemoryChange {
        baseline: b,
        new: n,
        overlap,
    })
}

/// Coverage: Δ lines and branches in points; regressed on a drop beyond the allowance.
pub fn coverage(old: &ItemReport, it: &ItemReport, policy: &Policy, notes: &mut Notes) {
    for (key, what) in [("line_percent", "line"), ("branch_percent", "branch")] {
        let (Some(b), Some(n)) = (number(old, key), number(it, key)) else {
            continue;
        };
        let delta = n - b;
        if delta < -policy.coverage_allowance_points {
            notes.regressed.push(format!(
                "{what} coverage {n:.2} % fell {:.2} points from {b:.2} % (allowance {} points)",
                -delta, policy.coverage_allowance_points
            ));
        } else if delta > policy.coverage_allowance_points {
            notes.improved.push(format!(
                "{what} coverage {n:.2} % rose {delta:.2} points from {b:.2} %"
            ));
        }
    }
}

/// An advisory by ID and severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Advisory {
    /// Advisory id (RUSTSEC-…, GHSA-…, CVE-…).
    pub id: String,
    /// The package it affects.
    pub package: String,
    /// Severity as the report lists it.
    pub severity: String,
}

/// Advisories added and fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditChange {
    /// In the new report, not in the baseline.
    pub added: Vec<Advisory>,
    /// In the baseline, not in the new report.
    pub fixed: Vec<Advisory>,
}

/// The advisories of an audit item's findings table (`id`, `package`, `severity` columns).
fn advisories(item: &ItemReport) -> Vec<Advisory> {
    let mut out = Vec::new();
    for t in item
        .outcome
        .tables
        .iter()
        .filter(|t| t.title.starts_with("Findings"))
    {
        let col = |name: &str| t.columns.iter().position(|c| c == name);
        let (Some(id), Some(pkg), Some(sev)) = (col("id"), col("package"), col("severity")) else {
            continue;
        };
        for row in &t.rows {
            let cell = |i: usize| row.get(i).cloned().unwrap_or_default();
            out.push(Advisory {
                id: cell(id),
                package: cell(pkg),
                severity: cell(sev),
            });
        }
    }
    out
}

/// Audit: advisories added and fixed; regressed on any added.
pub fn audit(old: &ItemReport, it: &ItemReport, notes: &mut Notes) -> Option<AuditChange> {
    let (b, n) = (advisories(old), advisories(it));
    let key = |a: &Advisory| (a.id.clone(), a.package.clone());
    let added: Vec<Advisory> = n
        .iter()
        .filter(|a| !b.iter().any(|x| key(x) == key(a)))
        .cloned()
        .collect();
    let fixed: Vec<Advisory> = b
        .iter()
        .filter(|a| !n.iter().any(|x| key(x) == key(a)))
        .cloned()
        .collect();
    if !added.is_empty() {
        let list: Vec<String> = added
            .iter()
            .map(|a| format!("{} ({}, {})", a.id, a.package, a.severity))
            .collect();
        notes
            .regressed
            .push(format!("new advisories: {}", list.join(", ")));
    }
    if !fixed.is_empty() {
        let list: Vec<&str> = fixed.iter().map(|a| a.id.as_str()).collect();
        notes
            .improved
            .push(format!("advisories fixed: {}", list.join(", ")));
    }
    Some(AuditChange { added, fixed })
}

/// Uptime: regressed when availability fell by more than the allowance.
pub fn uptime(old: &ItemReport, it: &ItemReport, policy: &Policy, notes: &mut Notes) {
    let key = "availability_percent";
    if let (Some(b), Some(n)) = (number(old, key), number(it, key)) {
        if b - n > policy.availability_allowance_points {
            notes.regressed.push(format!(
                "availability {n:.3} % fell {:.3} points from {b:.3} % (allowance {} points)",
                b - n,
                policy.availability_allowance_points
            ));
        }
    } else {
        notes
            .inconclusive
            .push("availability not compared: a report has none".into());
    }
}

/// One drill step's measured time in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepChange {
    /// The step's name.
    pub name: String,
    /// Baseline time, ms (absent: not measured).
    pub baseline_ms: Option<f64>,
    /// New time, ms.
    pub new_ms: Option<f64>,
    /// new − baseline, ms.
    pub delta_ms: Option<f64>,
}

fn steps(item: &ItemReport) -> Vec<(String, Option<f64>)> {
    item.outcome
        .measured
        .get("steps")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().to_string(),
                        s["ms"].as_f64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Drill: each step's time, matched by name (the n-th step of a name with the n-th).
pub fn drill(old: &ItemReport, it: &ItemReport) -> Vec<StepChange> {
    let mut base = steps(old);
    steps(it)
        .into_iter()
        .map(|(name, new_ms)| {
            let baseline_ms = base
                .iter()
                .position(|(n, _)| *n == name)
                .and_then(|i| base.remove(i).1);
            StepChange {
                delta_ms: baseline_ms.zip(new_ms).map(|(b, n)| n - b),
                name,
                baseline_ms,
                new_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, ProbeOutput, Severity};
    use serde_json::json;

    /// An item of `kind` whose outcome measured `measured` (an object).
    fn item(kind: &str, measured: Value) -> ItemReport {
        let out = ProbeOutput {
            measured: measured.as_object().cloned().unwrap(),
            summary: "measured".into(),
            ..ProbeOutput::default()
        };
        let outcome = Outcome::from_probe(out, 1, 1);
        ItemReport {
            id: "x".into(),
            section: "s".into(),
            title: "t".into(),
            severity: Severity::Major,
            tags: Vec::new(),
            kind: kind.into(),
            description: None,
            probe_status: outcome.status,
            outcome,
        }
    }

    fn slope(s: f64, lo: f64, hi: f64) -> ItemReport {
        item(
            "memory",
            json!({"slope_bytes_per_hour": s, "slope_low_bytes_per_hour": lo, "slope_high_bytes_per_hour": hi}),
        )
    }

    #[test]
    fn memory_regresses_only_when_the_new_interval_is_wholly_above() {
        let mut n = Notes::default();
        let m = memory(&slope(10.0, -5.0, 20.0), &slope(15.0, 0.0, 30.0), &mut n).unwrap();
        assert!(m.overlap && n.regressed.is_empty());
        let m = memory(
            &slope(10.0, -5.0, 20.0),
            &slope(900.0, 800.0, 1000.0),
            &mut n,
        )
        .unwrap();
        assert!(!m.overlap);
        assert_eq!(n.regressed.len(), 1, "{n:?}");
        memory(&slope(0.0, 0.0, 0.0), &item("memory", json!({})), &mut n);
        assert_eq!(n.inconclusive.len(), 1);
    }

    #[test]
    fn availability_drop_beyond_the_allowance_regresses() {
        let policy = Policy::default();
        let up = |a: f64| item("uptime", json!({ "availability_percent": a }));
        let mut n = Notes::default();
        uptime(&up(99.95), &up(99.93), &policy, &mut n);
        assert!(n.regressed.is_empty(), "0.02 points is within 0.05: {n:?}");
        uptime(&up(99.95), &up(99.8), &policy, &mut n);
        assert_eq!(n.regressed.len(), 1);
        uptime(&up(99.95), &item("uptime", json!({})), &policy, &mut n);
        assert_eq!(n.inconclusive.len(), 1);
    }

    #[test]
    fn drill_steps_match_by_name_in_order() {
        let steps = |v: Value| item("drill", json!({ "steps": v }));
        let old = steps(json!([{"name": "kill", "ms": 5.0}, {"name": "recover", "ms": 900.0}]));
        let new = steps(
            json!([{"name": "kill", "ms": 6.0}, {"name": "recover", "ms": 1500.0}, {"name": "alert", "ms": null}]),
        );
        let d = drill(&old, &new);
        assert_eq!(d.len(), 3);
        assert_eq!(d[1].delta_ms, Some(600.0));
        assert_eq!(
            (d[2].baseline_ms, d[2].new_ms, d[2].delta_ms),
            (None, None, None)
        );
    }
}

//! Latency of two runs compared from their HdrHistograms (`evidence/<item>/latency.hlog`, the
//! coordinated-omission-corrected intervals), not from their summaries.
//!
//! - Centre: the one-sided Mann–Whitney U test "new is stochastically greater than baseline"
//!   and the Hodges–Lehmann shift of new against baseline with its distribution-free interval
//!   at confidence 1 − alpha ([`crate::stats`]). The centre regressed when p < alpha and the
//!   shift exceeds the allowance (a share of the baseline median): significant *and* larger
//!   than the noise band, as criterion's noise threshold and Kayenta's effect size require.
//! - Tail: the order-statistic interval of p99 (and of p99.9 when both runs have enough
//!   samples to bound it) at confidence 1 − alpha for each run. The tail regressed when the new
//!   p99 interval lies wholly above the baseline's and the new p99 exceeds the baseline's by
//!   more than the allowance. p99.9 is shown with its intervals and not judged.
//!
//! - The target's part: the same comparison of the `Tag=target` intervals (the corrected latency
//!   less the generator's own send lateness, request by request). A centre or p99 that
//!   regressed while the target's part did not is the load generator's lateness on this
//!   machine, not the target's: *inconclusive* (counted like a regression, never as "no
//!   change"), with both figures quoted. Logs written before the tag existed are judged on the
//!   corrected figures alone.
//!
//! Values are the histograms' bucket values (highest equivalent value, 3 significant digits),
//! in milliseconds. The samples are taken as independent; the requests of an open-model load
//! generator are close to that, the intervals of one run are not exactly.

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Notes, Place, Policy};
use crate::probe::latency::record::merge_interval_logs;
use crate::report::ItemReport;
use crate::stats::{
    Alternative, QuantileInterval, Weighted, hodges_lehmann, mann_whitney_u, quantile_interval,
};

/// The evidence file read.
const HLOG: &str = "latency.hlog";

/// An interval of one quantile for one run, milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuantileCi {
    /// The sample quantile.
    pub estimate_ms: f64,
    /// Lower end (an order statistic).
    pub low_ms: f64,
    /// Upper end (an order statistic).
    pub high_ms: f64,
    /// The interval's exact binomial coverage (at least 1 − alpha).
    pub coverage: f64,
}

/// The tail at one quantile in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TailChange {
    /// The quantile, e.g. 0.99.
    pub quantile: f64,
    /// The baseline's interval (absent: too few samples to bound it).
    pub baseline: Option<QuantileCi>,
    /// The new run's interval (absent: too few samples to bound it).
    pub new: Option<QuantileCi>,
    /// True when the new interval lies wholly above the baseline's and the estimate rose by
    /// more than the allowance (judged for p99; p99.9 is shown, never judged).
    pub regressed: bool,
}

/// The comparison of the target's part (`Tag=target`): the corrected latency less the
/// generator's own send lateness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetPart {
    /// Median of the baseline's target part, ms.
    pub baseline_median_ms: f64,
    /// Median of the new run's target part, ms.
    pub new_median_ms: f64,
    /// Hodges–Lehmann shift, ms.
    pub shift_ms: f64,
    /// Lower end of its interval, ms.
    pub shift_low_ms: f64,
    /// Upper end of its interval, ms.
    pub shift_high_ms: f64,
    /// One-sided p-value (new slower).
    pub p_slower: f64,
    /// Significant and beyond the allowance.
    pub centre_regressed: bool,
    /// p99 of the target's part in both runs.
    pub p99: TailChange,
}

/// The latency comparison of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyChange {
    /// The test: `Mann–Whitney U, one-sided (new > baseline), normal approximation with tie
    /// and continuity corrections`.
    pub test: String,
    /// What the test and the intervals assume.
    pub assumptions: String,
    /// Significance level.
    pub alpha: f64,
    /// Samples in the baseline's histogram.
    pub n_baseline: u64,
    /// Samples in the new histogram.
    pub n_new: u64,
    /// Median of the baseline, ms.
    pub baseline_median_ms: f64,
    /// Median of the new run, ms.
    pub new_median_ms: f64,
    /// U of the new run against the baseline.
    pub u: f64,
    /// U / (n₁n₂): the probability that a new latency exceeds a baseline one (ties half).
    pub probability_new_slower: f64,
    /// One-sided p-value (new slower).
    pub p_slower: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
    /// Hodges–Lehmann shift of new against baseline, ms (positive: slower).
    pub shift_ms: f64,
    /// Lower end of its interval, ms.
    pub shift_low_ms: f64,
    /// Upper end of its interval, ms.
    pub shift_high_ms: f64,
    /// Confidence of the shift and quantile intervals (1 − alpha).
    pub confidence: f64,
    /// The allowed shift, ms (the policy's share of the baseline median).
    pub allowance_ms: f64,
    /// True when the shift is significant and larger than the allowance.
    pub centre_regressed: bool,
    /// p99 and p99.9.
    pub tail: Vec<TailChange>,
    /// The same comparison of the target's part, when both logs have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_part: Option<TargetPart>,
    /// Figures that regressed in the corrected latency but not in the target's part (`centre`,
    /// `p99`): the generator's lateness explains them; they are inconclusive, not regressions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explained_by_generator: Vec<String>,
    /// The chart of both percentile curves, relative to the comparison's output folder (set
    /// when the chart is written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// The chart's SVG text, until it is written.
    #[serde(skip)]
    #[schemars(skip)]
    pub svg: Option<String>,
}

/// The corrected histogram of an item's run and, when its log has them, the target's part
/// (`Tag=target`), from the `.hlog` its report lists: read once, its SHA-256 checked against
/// the report.
///
/// # Errors
/// A sentence naming the file: not listed, missing, altered, malformed or empty.
pub fn histograms(
    side: Place<'_>,
    item: &ItemReport,
) -> Result<(Histogram<u64>, Option<Histogram<u64>>), String> {
    use sha2::{Digest, Sha256};
    let Some(ev) = item
        .outcome
        .evidence
        .iter()
        .find(|e| e.path.ends_with(HLOG))
    else {
        return Err(format!(
            "{}: item \"{}\" lists no {HLOG} evidence",
            side.path.display(),
            item.id
        ));
    };
    let path = side.dir.join(&ev.path);
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if sha != ev.sha256 {
        return Err(format!(
            "{}: SHA-256 {sha} is not the {} its report lists: the file was altered",
            path.display(),
            ev.sha256
        ));
    }
    let log = [(path.display().to_string(), bytes)];
    let (corrected, _) = merge_interval_logs(&log, None).map_err(|e| e.to_string())?;
    // A log written before the tag existed has no target's part: judged on the corrected.
    let target = merge_interval_logs(&log, Some("target"))
        .ok()
        .map(|(h, _)| h);
    Ok((corrected, target))
}

/// A histogram's buckets as a weighted sample in milliseconds.
pub fn weighted_ms(h: &Histogram<u64>) -> Weighted {
    Weighted::new(
        h.iter_recorded()
            .map(|v| (v.value_iterated_to() as f64 / 1000.0, v.count_at_value()))
            .collect(),
    )
}

/// Compare the latency of `old` (baseline) and `it` (new), adding regressions and
/// inconclusive figures to `notes`. `None` when a histogram is missing (noted inconclusive).
pub fn compare_latency(
    base: Place<'_>,
    new: Place<'_>,
    old: &ItemReport,
    it: &ItemReport,
    policy: &Policy,
    notes: &mut Notes,
) -> Option<LatencyChange> {
    let hists = histograms(base, old).and_then(|b| Ok((b, histograms(new, it)?)));
    let ((hb, tb), (hn, tn)) = match hists {
        Ok(h) => h,
        Err(e) => {
            notes
                .inconclusive
                .push(format!("latency not compared: {e}"));
            return None;
        }
    };
    let mut change = analyse(&weighted_ms(&hb), &weighted_ms(&hn), policy);
    if let (Some(c), Some(tb), Some(tn)) = (change.as_mut(), tb, tn)
        && let Some(t) = analyse(&weighted_ms(&tb), &weighted_ms(&tn), policy)
    {
        c.confirm(t);
    }
    if let Some(c) = change.as_mut() {
        match chart(&format!("{}: baseline and new", it.title), &hb, &hn) {
            Ok(svg) => c.svg = Some(svg),
            Err(e) => notes.inconclusive.push(e),
        }
    }
    match &change {
        Some(c) => note(c, policy, notes),
        None => notes.inconclusive.push(format!(
            "latency not compared: too few samples ({} baseline, {} new) to bound p99 at {} % confidence",
            hb.len(),
            hn.len(),
            (1.0 - policy.alpha) * 100.0
        )),
    }
    change
}

/// The comparison of two latency samples (ms). `None` when either has too few samples to test
/// or to bound p99.
pub fn analyse(base: &Weighted, new: &Weighted, policy: &Policy) -> Option<LatencyChange> {
    let confidence = 1.0 - policy.alpha;
    let mw = mann_whitney_u(new, base)?;
    let shift = hodges_lehmann(base, new, confidence)?;
    let base_median = base.median()?;
    let allowance_ms = base_median * policy.latency_allowance_percent / 100.0;
    let p_slower = mw.p(Alternative::Greater);
    let mut tail = Vec::new();
    for q in [0.99, 0.999] {
        let (b, n) = (
            quantile_interval(base, q, confidence),
            quantile_interval(new, q, confidence),
        );
        if q == 0.99 && (b.is_none() || n.is_none()) {
            return None;
        }
        // p99.9 is shown, not judged: in a run of seconds only a few dozen requests lie above
        // it, and they follow the machine's hiccups more than the system's (docs/compare.md).
        let regressed = match (&b, &n) {
            (Some(b), Some(n)) if q == 0.99 => {
                n.low > b.high
                    && n.estimate > b.estimate * (1.0 + policy.tail_allowance_percent / 100.0)
            }
            _ => false,
        };
        tail.push(TailChange {
            quantile: q,
            baseline: b.map(ci),
            new: n.map(ci),
            regressed,
        });
    }
    Some(LatencyChange {
        test: "Mann–Whitney U, one-sided (new slower than baseline), normal approximation with tie and continuity corrections".into(),
        assumptions: "independent samples; both runs under the same load (rate and connections); values at the histograms' resolution (3 significant digits)".into(),
        alpha: policy.alpha,
        n_baseline: base.len(),
        n_new: new.len(),
        baseline_median_ms: base_median,
        new_median_ms: new.median()?,
        u: mw.u,
        probability_new_slower: mw.probability_of_superiority(),
        p_slower,
        p_two_sided: mw.p(Alternative::TwoSided),
        shift_ms: shift.estimate,
        shift_low_ms: shift.low,
        shift_high_ms: shift.high,
        confidence,
        allowance_ms,
        centre_regressed: p_slower < policy.alpha && shift.estimate > allowance_ms,
        tail,
        target_part: None,
        explained_by_generator: Vec::new(),
        chart: None,
        svg: None,
    })
}

impl LatencyChange {
    /// Keep `target`, the same comparison of the target's part, and withdraw each regression
    /// of the corrected figures that the target's part does not show.
    pub fn confirm(&mut self, target: LatencyChange) {
        if self.centre_regressed && !target.centre_regressed {
            self.centre_regressed = false;
            self.explained_by_generator.push("centre".into());
        }
        let p99 = target.tail.into_iter().find(|t| t.quantile == 0.99);
        if let Some(mine) = self.tail.iter_mut().find(|t| t.quantile == 0.99)
            && mine.regressed
            && !p99.as_ref().is_some_and(|t| t.regressed)
        {
            mine.regressed = false;
            self.explained_by_generator.push("p99".into());
        }
        if let Some(p99) = p99 {
            self.target_part = Some(TargetPart {
                baseline_median_ms: target.baseline_median_ms,
                new_median_ms: target.new_median_ms,
                shift_ms: target.shift_ms,
                shift_low_ms: target.shift_low_ms,
                shift_high_ms: target.shift_high_ms,
                p_slower: target.p_slower,
                centre_regressed: target.centre_regressed,
                p99,
            });
        }
    }
}

fn ci(q: QuantileInterval) -> QuantileCi {
    QuantileCi {
        estimate_ms: q.estimate,
        low_ms: q.low,
        high_ms: q.high,
        coverage: q.coverage,
    }
}

/// `p99.9` for 0.999.
pub fn quantile_name(q: f64) -> String {
    format!("p{}", ((q * 1000.0).round() / 10.0))
}

fn note(c: &LatencyChange, policy: &Policy, notes: &mut Notes) {
    if let Some(t) = &c.target_part {
        for what in &c.explained_by_generator {
            let (corrected, target) = if what == "centre" {
                (
                    format!(
                        "median {:.3} → {:.3} ms",
                        c.baseline_median_ms, c.new_median_ms
                    ),
                    format!("{:.3} → {:.3} ms", t.baseline_median_ms, t.new_median_ms),
                )
            } else {
                let p99 = |ci: Option<&QuantileCi>| ci.map_or(f64::NAN, |c| c.estimate_ms);
                let mine = c.tail.iter().find(|x| x.quantile == 0.99);
                (
                    format!(
                        "p99 {:.3} → {:.3} ms",
                        p99(mine.and_then(|x| x.baseline.as_ref())),
                        p99(mine.and_then(|x| x.new.as_ref()))
                    ),
                    format!(
                        "{:.3} → {:.3} ms",
                        p99(t.p99.baseline.as_ref()),
                        p99(t.p99.new.as_ref())
                    ),
                )
            };
            notes.inconclusive.push(format!(
                "latency {corrected} rose beyond the allowance, but the target's part did not ({target}): the load generator's own lateness on this machine explains the rise; compare runs made on a quieter machine"
            ));
        }
    }
    if c.centre_regressed {
        notes.regressed.push(format!(
            "latency shift +{:.3} ms ({:.3} … {:.3} ms at {} %), p = {:.2e} < alpha {}, beyond the allowance {:.3} ms ({} % of the baseline median {:.3} ms)",
            c.shift_ms,
            c.shift_low_ms,
            c.shift_high_ms,
            c.confidence * 100.0,
            c.p_slower,
            c.alpha,
            c.allowance_ms,
            policy.latency_allowance_percent,
            c.baseline_median_ms
        ));
    } else if -c.shift_ms > c.allowance_ms && c.p_two_sided < c.alpha {
        notes
            .improved
            .push(format!("latency shift {:.3} ms (faster)", c.shift_ms));
    }
    for t in c.tail.iter().filter(|t| t.regressed) {
        let (Some(b), Some(n)) = (&t.baseline, &t.new) else {
            continue;
        };
        notes.regressed.push(format!(
            "{} {:.3} ms ({:.3} … {:.3}) above the baseline's {:.3} ms ({:.3} … {:.3}) by more than {} %",
            quantile_name(t.quantile),
            n.estimate_ms,
            n.low_ms,
            n.high_ms,
            b.estimate_ms,
            b.low_ms,
            b.high_ms,
            policy.tail_allowance_percent
        ));
    }
}

/// The SVG chart of both runs' percentile curves.
///
/// # Errors
/// A message naming the chart when plotting fails.
pub fn chart(title: &str, base: &Histogram<u64>, new: &Histogram<u64>) -> Result<String, String> {
    crate::probe::latency::chart::render_pair(title, ("baseline", base), ("new", new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: f64, n: u64) -> Weighted {
        Weighted::new(
            (0..n)
                .map(|i| (offset + (i % 97) as f64 * 0.01, 1))
                .collect(),
        )
    }

    #[test]
    fn too_few_samples_to_bound_p99_give_no_verdict() {
        let p = Policy::default();
        assert!(analyse(&sample(1.0, 300), &sample(1.0, 300), &p).is_none());
        let c = analyse(&sample(1.0, 3000), &sample(1.0, 3000), &p).unwrap();
        assert!(!c.centre_regressed && c.tail[1].new.is_none(), "{c:?}");
    }

    #[test]
    fn a_shift_beyond_the_allowance_regresses_and_one_within_does_not() {
        let p = Policy::default();
        let base = sample(1.0, 6000);
        // Median ≈ 1.48 ms: 20 % is ≈ 0.3 ms.
        let c = analyse(&base, &sample(1.5, 6000), &p).unwrap();
        assert!(
            c.centre_regressed && (c.shift_ms - 0.5).abs() < 1e-9,
            "{c:?}"
        );
        let c = analyse(&base, &sample(1.1, 6000), &p).unwrap();
        assert!(c.p_slower < p.alpha && !c.centre_regressed, "{c:?}");
    }

    #[test]
    fn a_rise_the_targets_part_does_not_show_is_withdrawn_as_the_generators() {
        let p = Policy::default();
        let base = sample(1.0, 6000);
        let slower = sample(1.5, 6000);
        // The corrected latency rose; the target's part did not: the generator's lateness.
        let mut c = analyse(&base, &slower, &p).unwrap();
        assert!(c.centre_regressed, "{c:?}");
        c.confirm(analyse(&base, &sample(1.0, 6000), &p).unwrap());
        assert!(!c.centre_regressed, "{c:?}");
        assert_eq!(c.explained_by_generator, ["centre"]);
        let mut notes = Notes::default();
        note(&c, &p, &mut notes);
        assert!(notes.regressed.is_empty(), "{notes:?}");
        assert_eq!(notes.inconclusive.len(), 1, "{notes:?}");
        assert!(
            notes.inconclusive[0].contains("the target's part did not"),
            "{notes:?}"
        );
        // Both rose: the regression stands.
        let mut c = analyse(&base, &slower, &p).unwrap();
        c.confirm(analyse(&base, &slower, &p).unwrap());
        assert!(
            c.centre_regressed && c.explained_by_generator.is_empty(),
            "{c:?}"
        );
        assert!(c.target_part.as_ref().is_some_and(|t| t.centre_regressed));
    }
}

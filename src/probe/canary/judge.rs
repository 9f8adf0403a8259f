//! The judge of the `canary` probe, a pure function of two series: each metric classified
//! `High`, `Low` or `Pass` from a Mann–Whitney U test and an effect size against an allowance,
//! then the metrics scored by group and the groups weighted into one score.
//!
//! It follows the semantics of Kayenta's NetflixACAJudge (Spinnaker's automated canary
//! analysis): its MannWhitneyClassifier for one metric and its WeightedSumScorer for the score,
//! with these choices of ours, documented in docs/canary.md:
//!
//! - significance is the p-value of the Mann–Whitney U test (Mann & Whitney 1947) at `alpha`,
//!   one-sided in the metric's harmful direction (`increase`, `decrease`), two-sided for
//!   `either`; the Hodges–Lehmann shift (Hodges & Lehmann 1963) and its interval at 1 − `alpha`
//!   are reported beside it;
//! - the effect size is Kayenta's mean ratio, written `1 + (mean_c − mean_b) / |mean_b|` so a
//!   negative baseline keeps its sense; a zero baseline mean gives +∞ (or −∞) when the canary's
//!   mean is above (below) zero, and 1 when both are zero: any change from nothing is outside
//!   every relative allowance;
//! - samples that are identical (the same values in any order), or a single value repeated on
//!   both sides, are `Pass` without a test (U has no variance);
//! - a metric is harmful when it is `High` with direction `increase` or `either`, or `Low` with
//!   `decrease` or `either`; a change the other way is `Pass`, shown as "better".

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::stats::{Alternative, Shift, Weighted, hodges_lehmann, mann_whitney_u};

/// The harmful direction of a metric's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher is worse (errors, latency). The default.
    #[default]
    Increase,
    /// Lower is worse (throughput, success ratio).
    Decrease,
    /// Any change is harmful.
    Either,
}

impl Direction {
    /// The lowercase name as written.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::Either => "either",
        }
    }

    /// The test's sidedness as the report names it.
    pub fn sidedness(self) -> &'static str {
        match self {
            Direction::Either => "two-sided",
            Direction::Increase | Direction::Decrease => "one-sided",
        }
    }
}

/// How one metric is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// The harmful direction.
    pub direction: Direction,
    /// Relative effect-size allowance: a change is outside it when the mean ratio is above
    /// 1 + allowance (or below 1 − allowance). 0 means significance alone decides.
    pub allowance: f64,
    /// Significance level of the test, e.g. 0.05.
    pub alpha: f64,
    /// Fewest points either side must have.
    pub min_points: usize,
}

/// A metric's class: whether the canary moved, significantly and beyond the allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Significantly higher than the baseline, beyond the allowance.
    High,
    /// Significantly lower than the baseline, beyond the allowance.
    Low,
    /// No such change.
    Pass,
}

/// What the judge found for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The class of the change.
    pub class: Class,
    /// True when the class is the metric's harmful direction.
    pub harmful: bool,
    /// Points judged on each side.
    pub n_baseline: usize,
    /// Points judged on the canary side.
    pub n_canary: usize,
    /// Medians (`numpy.median`).
    pub baseline_median: f64,
    /// The canary's median.
    pub canary_median: f64,
    /// Means.
    pub baseline_mean: f64,
    /// The canary's mean.
    pub canary_mean: f64,
    /// The effect size, `1 + (mean_c − mean_b) / |mean_b|` (±∞ or 1 for a zero baseline).
    pub ratio: f64,
    /// U of the canary against the baseline; `None` when the samples were identical.
    pub u: Option<f64>,
    /// The p-value in the harmful direction (two-sided for `either`); 1 when identical.
    pub p: f64,
    /// The Hodges–Lehmann shift of the canary against the baseline, interval at 1 − alpha.
    pub shift: Shift,
    /// Why there was no test, when there was none.
    pub note: Option<&'static str>,
}

impl Judgement {
    /// The class as the report shows it: `high` or `low` when harmful, `better` for a change
    /// the other way, `pass`.
    pub fn label(&self) -> &'static str {
        match (self.class, self.harmful) {
            (Class::High, true) => "high",
            (Class::Low, true) => "low",
            (Class::Pass, _) => "pass",
            (_, false) => "better",
        }
    }
}

/// Too few points on a side to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFew {
    /// Baseline points.
    pub baseline: usize,
    /// Canary points.
    pub canary: usize,
    /// The minimum asked for.
    pub min_points: usize,
}

/// Judge the `canary` series against the `baseline` series (NaN already dropped).
///
/// # Errors
/// [`TooFew`] when either side has fewer than `rule.min_points` points (at least 1).
pub fn judge(baseline: &[f64], canary: &[f64], rule: &Rule) -> Result<Judgement, TooFew> {
    if baseline.len() < rule.min_points.max(1) || canary.len() < rule.min_points.max(1) {
        return Err(TooFew {
            baseline: baseline.len(),
            canary: canary.len(),
            min_points: rule.min_points,
        });
    }
    let (wb, wc) = (
        Weighted::from_values(baseline),
        Weighted::from_values(canary),
    );
    let shift = hodges_lehmann(&wb, &wc, 1.0 - rule.alpha).expect("both sides have points");
    let (baseline_mean, canary_mean) = (mean(baseline), mean(canary));
    let mut j = Judgement {
        class: Class::Pass,
        harmful: false,
        n_baseline: baseline.len(),
        n_canary: canary.len(),
        baseline_median: wb.median().unwrap_or(f64::NAN),
        canary_median: wc.median().unwrap_or(f64::NAN),
        baseline_mean,
        canary_mean,
        ratio: mean_ratio(baseline_mean, canary_mean),
        u: None,
        p: 1.0,
        shift,
        note: None,
    };
    let test = if wb == wc {
        None
    } else {
        mann_whitney_u(&wc, &wb)
    };
    let Some(mw) = test else {
        j.note = Some(if wb == wc {
            "identical samples: no test"
        } else {
            "one value on both sides: no test"
        });
        return Ok(j);
    };
    let (p_high, p_low) = match rule.direction {
        Direction::Either => (mw.p_two_sided, mw.p_two_sided),
        Direction::Increase | Direction::Decrease => {
            (mw.p(Alternative::Greater), mw.p(Alternative::Less))
        }
    };
    let centre = mw.n_x as f64 * mw.n_y as f64 / 2.0;
    let high = mw.u > centre && p_high < rule.alpha && j.ratio > 1.0 + rule.allowance;
    let low = mw.u < centre && p_low < rule.alpha && j.ratio < 1.0 - rule.allowance;
    j.class = if high {
        Class::High
    } else if low {
        Class::Low
    } else {
        Class::Pass
    };
    j.harmful = match rule.direction {
        Direction::Increase => j.class == Class::High,
        Direction::Decrease => j.class == Class::Low,
        Direction::Either => j.class != Class::Pass,
    };
    j.u = Some(mw.u);
    j.p = match rule.direction {
        Direction::Decrease => p_low,
        Direction::Increase | Direction::Either => p_high,
    };
    Ok(j)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `1 + (c − b) / |b|`; for b = 0: +∞ when c > 0, −∞ when c < 0, 1 when c = 0.
fn mean_ratio(b: f64, c: f64) -> f64 {
    if b == 0.0 {
        match c.partial_cmp(&0.0) {
            Some(std::cmp::Ordering::Greater) => f64::INFINITY,
            Some(std::cmp::Ordering::Less) => f64::NEG_INFINITY,
            _ => 1.0,
        }
    } else {
        1.0 + (c - b) / b.abs()
    }
}

/// One judged metric as the scorer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    /// The metric's name.
    pub name: &'a str,
    /// Its group.
    pub group: &'a str,
    /// Whether a harmful class fails the item alone.
    pub critical: bool,
    /// Whether it was classified harmful.
    pub harmful: bool,
}

/// One group's score.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupScore {
    /// The group's name.
    pub name: String,
    /// 100 × passing metrics / metrics.
    pub score: f64,
    /// Its weight, normalised over the groups (the weights sum to 1).
    pub weight: f64,
    /// Metrics not harmful.
    pub passing: usize,
    /// Metrics in the group.
    pub metrics: usize,
}

/// The item's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The weighted mean of the group scores, 0 to 100 (rounded to 1e-9).
    pub score: f64,
    /// Each group, by name.
    pub groups: Vec<GroupScore>,
    /// Names of the critical metrics classified harmful.
    pub critical_harmful: Vec<String>,
    /// Names of every metric classified harmful.
    pub harmful: Vec<String>,
}

/// Score judged metrics (Kayenta's WeightedSumScorer): each group 100 × passing / metrics,
/// the item the mean of the group scores weighted by `weights` (a group without one weighs 1;
/// weights are normalised to sum to 1). `weights` must be positive.
pub fn score(metrics: &[Scored<'_>], weights: &BTreeMap<String, f64>) -> Score {
    let mut by_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for m in metrics {
        let e = by_group.entry(m.group).or_default();
        e.0 += usize::from(!m.harmful);
        e.1 += 1;
    }
    let weight_of = |g: &str| weights.get(g).copied().unwrap_or(1.0);
    let total: f64 = by_group.keys().map(|g| weight_of(g)).sum();
    let groups: Vec<GroupScore> = by_group
        .into_iter()
        .map(|(name, (passing, n))| GroupScore {
            name: name.to_string(),
            score: (100 * passing) as f64 / n as f64,
            weight: weight_of(name) / total,
            passing,
            metrics: n,
        })
        .collect();
    let raw: f64 = groups.iter().map(|g| g.score * g.weight).sum();
    let names = |critical_only: bool| {
        metrics
            .iter()
            .filter(|m| m.harmful && (m.critical || !critical_only))
            .map(|m| m.name.to_string())
            .collect()
    };
    Score {
        score: (raw * 1e9).round() / 1e9,
        groups,
        critical_harmful: names(true),
        harmful: names(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(direction: Direction, allowance: f64) -> Rule {
        Rule {
            direction,
            allowance,
            alpha: 0.05,
            min_points: 10,
        }
    }

    /// 30 points around `centre`: centre + (i mod 7) × 0.1 − 0.3, a fixed, untied pattern.
    fn series(centre: f64) -> Vec<f64> {
        (0..30)
            .map(|i| centre + f64::from(i % 7) * 0.1 - 0.3 + f64::from(i) * 1e-4)
            .collect()
    }

    #[test]
    fn a_higher_canary_is_high_and_harmful_when_increase_is_harmful() {
        let j = judge(
            &series(10.0),
            &series(12.0),
            &rule(Direction::Increase, 0.1),
        )
        .unwrap();
        assert_eq!((j.class, j.harmful, j.label()), (Class::High, true, "high"));
        assert!(j.p < 1e-6, "{j:?}");
        assert!((j.ratio - 1.2).abs() < 1e-2, "{j:?}");
        assert!(j.shift.low > 1.5 && j.shift.high < 2.5, "{j:?}");
        assert_eq!((j.n_baseline, j.n_canary), (30, 30));
        // The same change with decrease harmful is better, not harmful.
        let j = judge(
            &series(10.0),
            &series(12.0),
            &rule(Direction::Decrease, 0.1),
        )
        .unwrap();
        assert_eq!(
            (j.class, j.harmful, j.label()),
            (Class::High, false, "better")
        );
        assert!(j.p > 0.99, "the p-value in the harmful direction: {j:?}");
    }

    #[test]
    fn a_lower_canary_is_low_and_harmful_when_decrease_is_harmful() {
        let j = judge(&series(10.0), &series(8.0), &rule(Direction::Decrease, 0.1)).unwrap();
        assert_eq!((j.class, j.harmful, j.label()), (Class::Low, true, "low"));
        let j = judge(&series(10.0), &series(8.0), &rule(Direction::Increase, 0.1)).unwrap();
        assert_eq!(j.label(), "better");
    }

    #[test]
    fn either_direction_is_harmed_by_both_changes_and_two_sided() {
        for (canary, class) in [(12.0, Class::High), (8.0, Class::Low)] {
            let j = judge(
                &series(10.0),
                &series(canary),
                &rule(Direction::Either, 0.1),
            )
            .unwrap();
            assert_eq!((j.class, j.harmful), (class, true), "{j:?}");
        }
        // Two-sided p is twice the one-sided one (both below 0.5).
        let b = series(10.0);
        let c: Vec<f64> = b.iter().map(|v| v + 0.05).collect();
        let one = judge(&b, &c, &rule(Direction::Increase, 0.0)).unwrap().p;
        let two = judge(&b, &c, &rule(Direction::Either, 0.0)).unwrap().p;
        assert!((two - 2.0 * one).abs() < 1e-12, "{one} {two}");
    }

    #[test]
    fn a_significant_change_inside_the_allowance_passes() {
        // +2 % on every point: the test is significant, the effect is inside 10 %.
        let b = series(10.0);
        let c: Vec<f64> = b.iter().map(|v| v * 1.02 + 0.0).collect();
        let j = judge(&b, &c, &rule(Direction::Increase, 0.1)).unwrap();
        assert!(j.p < 0.05, "{j:?}");
        assert_eq!(
            (j.class, j.harmful, j.label()),
            (Class::Pass, false, "pass")
        );
        // Without an allowance the same change is high.
        let j = judge(&b, &c, &rule(Direction::Increase, 0.0)).unwrap();
        assert_eq!(j.class, Class::High);
    }

    #[test]
    fn equal_samples_pass_without_a_test() {
        let b = series(10.0);
        let mut c = b.clone();
        c.reverse();
        let j = judge(&b, &c, &rule(Direction::Either, 0.0)).unwrap();
        assert_eq!((j.class, j.u, j.p), (Class::Pass, None, 1.0));
        assert_eq!(j.note, Some("identical samples: no test"));
        let zeros = vec![0.0; 20];
        let j = judge(&zeros, &[0.0; 25], &rule(Direction::Increase, 0.0)).unwrap();
        assert_eq!((j.class, j.ratio), (Class::Pass, 1.0));
        assert_eq!(j.note, Some("one value on both sides: no test"));
    }

    #[test]
    fn a_zero_baseline_makes_any_rise_infinite_and_high() {
        // Errors: none on the baseline, a few on most canary points.
        let b = vec![0.0; 40];
        let c: Vec<f64> = (0..40)
            .map(|i| if i % 5 == 0 { 0.0 } else { 0.05 })
            .collect();
        let j = judge(&b, &c, &rule(Direction::Increase, 0.5)).unwrap();
        assert_eq!(j.ratio, f64::INFINITY);
        assert_eq!((j.class, j.harmful), (Class::High, true));
        assert_eq!((j.baseline_median, j.canary_median), (0.0, 0.05));
        assert_eq!(mean_ratio(0.0, -1.0), f64::NEG_INFINITY);
        // A negative baseline keeps the sense of "higher".
        assert_eq!(mean_ratio(-2.0, -1.0), 1.5);
    }

    #[test]
    fn too_few_points_on_either_side_is_refused() {
        let e = judge(
            &series(1.0)[..9],
            &series(1.0),
            &rule(Direction::Increase, 0.0),
        );
        assert_eq!(
            e,
            Err(TooFew {
                baseline: 9,
                canary: 30,
                min_points: 10
            })
        );
        assert!(
            judge(
                &series(1.0),
                &[],
                &Rule {
                    min_points: 0,
                    ..rule(Direction::Increase, 0.0)
                }
            )
            .is_err()
        );
    }

    fn scored<'a>(name: &'a str, group: &'a str, critical: bool, harmful: bool) -> Scored<'a> {
        Scored {
            name,
            group,
            critical,
            harmful,
        }
    }

    #[test]
    fn groups_score_their_passing_share_and_weights_are_normalised() {
        let metrics = [
            scored("errors", "errors", false, true),
            scored("rejects", "errors", false, false),
            scored("p99", "latency", false, false),
        ];
        // Equal weights: (50 + 100) / 2.
        let s = score(&metrics, &BTreeMap::new());
        assert_eq!(s.score, 75.0);
        assert_eq!(s.harmful, ["errors"]);
        assert!(s.critical_harmful.is_empty());
        // errors weighs 3, latency 1: 50 × 0.75 + 100 × 0.25.
        let w = BTreeMap::from([("errors".to_string(), 3.0)]);
        let s = score(&metrics, &w);
        assert_eq!(s.score, 62.5);
        assert_eq!(s.groups[0].weight, 0.75);
        assert_eq!((s.groups[0].passing, s.groups[0].metrics), (1, 2));
    }

    #[test]
    fn a_critical_metric_is_named_alone_even_when_the_score_passes() {
        let mut metrics: Vec<Scored<'_>> = (0..19)
            .map(|_| scored("ok", "default", false, false))
            .collect();
        metrics.push(scored("error rate", "default", true, true));
        let s = score(&metrics, &BTreeMap::new());
        assert_eq!(s.score, 95.0);
        assert_eq!(s.critical_harmful, ["error rate"]);
    }
}

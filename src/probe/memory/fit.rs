//! Fitting one segment and the rules that judge it: the Theil–Sen slope with its 95 %
//! interval, the modified Mann–Kendall test, the tail-growth guard, and from them whether growth
//! is established, whether the segment leaks and whether the allowed growth is ruled out.

use std::ops::Range;

use super::MAX_FIT_SAMPLES;
use super::series::{Metric, Sample, Settings};
use super::stats::{self, MannKendall, TheilSen, Trend};

/// A fitted segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// The figure fitted.
    pub metric: Metric,
    /// Samples fitted (after thinning).
    pub n: usize,
    /// Every `step`-th sample was fitted (1 unless the segment was longer than
    /// [`MAX_FIT_SAMPLES`]).
    pub step: usize,
    /// Theil–Sen fit with seconds on x and bytes on y (slope in bytes/s).
    pub theil_sen: TheilSen,
    /// The modified Mann–Kendall test of the fitted values.
    pub mk: MannKendall,
    /// The tail-growth guard: how the lowest and highest values of the last third of the
    /// fitted samples compare with those of the first third.
    pub tail: TailGrowth,
    /// Growth is established ([`Fit::established`]): the slope's lower bound above zero, a
    /// significant increasing trend, and floor and peak of the tail both higher than at the
    /// start. Only then is a projection shown.
    pub established: bool,
    /// The verdict: the slope's lower bound above the allowed growth, a significant increasing
    /// trend, and a tail that keeps growing.
    pub leaking: bool,
    /// The slope's upper bound is at or below the allowed growth: growth at the allowed rate is
    /// ruled out with 95 % confidence (false when the bound is undefined).
    pub ruled_out: bool,
    /// Last fitted value minus the first, bytes: the growth actually seen.
    pub seen_bytes: f64,
    /// Time from the first fitted sample to the last, seconds.
    pub span_s: f64,
    /// The growth rests on a few steps: with the series' two (`STEPS_SET_ASIDE`) largest rises
    /// between consecutive samples set aside, growth is no longer established (or, for a
    /// leak, no longer above the allowed rate). An allocator extending its heap by an arena
    /// once or twice in a short window looks like that; so does a leak seen too briefly. Such
    /// growth is neither established nor a leak: the window cannot tell the two apart.
    pub rests_on_steps: bool,
}

impl Fit {
    /// Slope, bytes per hour.
    pub fn slope_bph(&self) -> f64 {
        self.theil_sen.slope * 3600.0
    }
    /// Lower 95 % bound of the slope, bytes per hour.
    pub fn low_bph(&self) -> f64 {
        self.theil_sen.low_slope * 3600.0
    }
    /// Upper 95 % bound of the slope, bytes per hour.
    pub fn high_bph(&self) -> f64 {
        self.theil_sen.high_slope * 3600.0
    }

    /// The growth over 24 h the slope projects, bytes; `None` unless growth is established
    /// (the one rule, in [`established`]): a slope whose interval includes zero, or a series
    /// without a significant increasing trend, projects nothing.
    pub fn projected_24h_bytes(&self) -> Option<f64> {
        self.established.then(|| self.slope_bph() * 24.0)
    }
}

/// The rule for "growth is established", the leak rule with an allowed growth of zero: the
/// lower 95 % bound of the Theil–Sen slope is above zero (the interval excludes zero), the
/// Hamed–Rao modified Mann–Kendall test finds a significant increasing trend (α = 0.05), and
/// both the floor and the peak of the last third of the fitted samples are above those of the
/// first third (a sawtooth whose phase tilts the slope returns to the same floor and peak).
pub fn established(theil_sen: &TheilSen, mk: &MannKendall, tail: &TailGrowth) -> bool {
    theil_sen.low_slope > 0.0
        && mk.trend == Trend::Increasing
        && tail.floor_rise_bytes > 0.0
        && tail.peak_rise_bytes > 0.0
}

/// "Require the tail to keep growing": a leak lifts both the floor (lowest value)
/// and the peak (highest value) of the series; an allocator or garbage-collector sawtooth
/// returns to the same floor and peak every cycle, however its phase biases a slope fitted over
/// a short window. Both must rise from the first third to the last third of the fitted samples
/// by at least the growth the allowed rate would give over a third of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailGrowth {
    /// Lowest value of the last third minus lowest value of the first third, bytes.
    pub floor_rise_bytes: f64,
    /// Highest value of the last third minus highest value of the first third, bytes.
    pub peak_rise_bytes: f64,
    /// The rise each needs: allowed growth × a third of the fitted time span, bytes.
    pub needed_bytes: f64,
}

impl TailGrowth {
    /// Both the floor and the peak rose by at least the needed amount.
    pub fn growing(&self) -> bool {
        self.floor_rise_bytes >= self.needed_bytes
            && self.peak_rise_bytes >= self.needed_bytes
            && self.floor_rise_bytes > 0.0
            && self.peak_rise_bytes > 0.0
    }

    fn of(x: &[f64], y: &[f64], max_growth_bytes_per_hour: f64) -> TailGrowth {
        let third = (y.len() / 3).max(1);
        let lo = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (head, tail) = (&y[..third], &y[y.len() - third..]);
        let span_s = x.last().copied().unwrap_or(0.0) - x.first().copied().unwrap_or(0.0);
        TailGrowth {
            floor_rise_bytes: lo(tail) - lo(head),
            peak_rise_bytes: hi(tail) - hi(head),
            needed_bytes: max_growth_bytes_per_hour / 3600.0 * span_s / 3.0,
        }
    }
}

/// How many of the largest rises between consecutive samples a growth must survive to be
/// established ([`Fit::rests_on_steps`]).
pub const STEPS_SET_ASIDE: usize = 2;

/// `y` with its `k` largest rises between consecutive samples set to zero: the series rebuilt
/// from its increments, the largest positive ones left out.
fn without_largest_rises(y: &[f64], k: usize) -> Vec<f64> {
    let rises: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    let mut order: Vec<usize> = (0..rises.len()).filter(|&i| rises[i] > 0.0).collect();
    order.sort_by(|&a, &b| rises[b].total_cmp(&rises[a]));
    let aside: std::collections::HashSet<usize> = order.into_iter().take(k).collect();
    let mut out = Vec::with_capacity(y.len());
    let mut level = y.first().copied().unwrap_or(0.0);
    out.push(level);
    for (i, d) in rises.iter().enumerate() {
        if !aside.contains(&i) {
            level += d;
        }
        out.push(level);
    }
    out
}

/// The three figures the rules read, for one series; `None` when a fit is undefined.
fn judge(x: &[f64], y: &[f64], settings: &Settings) -> Option<(TheilSen, MannKendall, TailGrowth)> {
    let theil_sen = stats::theil_sen(x, y)?;
    let mk = stats::hamed_rao(y)?;
    if !theil_sen.low_slope.is_finite() || !theil_sen.high_slope.is_finite() {
        return None;
    }
    Some((
        theil_sen,
        mk,
        TailGrowth::of(x, y, settings.max_growth_bytes_per_hour),
    ))
}

/// The leak rule: growth established, the slope's lower bound above the allowed growth, and a
/// tail that keeps growing.
fn leaks(t: &TheilSen, mk: &MannKendall, tail: &TailGrowth, settings: &Settings) -> bool {
    established(t, mk, tail)
        && t.low_slope * 3600.0 > settings.max_growth_bytes_per_hour
        && tail.growing()
}

/// Fit the samples of `used` (thinned to at most [`MAX_FIT_SAMPLES`]) and judge them; `None`
/// when there are fewer than `min_samples` or the fit is undefined.
pub(super) fn fit(
    samples: &[Sample],
    used: Range<usize>,
    metric: Metric,
    settings: &Settings,
) -> Option<Fit> {
    if used.len() < settings.min_samples.max(3) {
        return None;
    }
    let step = used.len().div_ceil(MAX_FIT_SAMPLES);
    let picked: Vec<&Sample> = samples[used].iter().step_by(step).collect();
    let x: Vec<f64> = picked.iter().map(|s| s.t_s).collect();
    let y: Vec<f64> = picked
        .iter()
        .map(|s| metric.of(s).map(|v| v as f64))
        .collect::<Option<_>>()?;
    let (theil_sen, mk, tail) = judge(&x, &y, settings)?;
    let mut grows = established(&theil_sen, &mk, &tail);
    let mut leaking = leaks(&theil_sen, &mk, &tail, settings);
    // Growth must not rest on a few steps: set the largest rises aside and judge again.
    let mut rests_on_steps = false;
    if grows {
        let flat = without_largest_rises(&y, STEPS_SET_ASIDE);
        let again = judge(&x, &flat, settings);
        let still_established = again.as_ref().is_some_and(|(t, m, g)| established(t, m, g));
        let still_leaking = again
            .as_ref()
            .is_some_and(|(t, m, g)| leaks(t, m, g, settings));
        rests_on_steps = !still_established || (leaking && !still_leaking);
        grows &= still_established;
        leaking &= still_leaking;
    }
    let ruled_out = theil_sen.high_slope * 3600.0 <= settings.max_growth_bytes_per_hour;
    let first = |v: &[f64]| v.first().copied().unwrap_or(0.0);
    let last = |v: &[f64]| v.last().copied().unwrap_or(0.0);
    Some(Fit {
        metric,
        n: picked.len(),
        step,
        theil_sen,
        mk,
        tail,
        established: grows,
        leaking,
        ruled_out,
        seen_bytes: last(&y) - first(&y),
        span_s: last(&x) - first(&x),
        rests_on_steps,
    })
}

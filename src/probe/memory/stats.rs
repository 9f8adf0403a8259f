//! The trend statistics behind the `memory` probe: the Theil–Sen slope with Sen's confidence
//! interval and the Mann–Kendall trend test with Hamed & Rao's correction for autocorrelation.
//!
//! Both are rank-based, so a few outliers (a GC pause, a burst of allocations) cannot move the
//! verdict the way they move a least-squares fit. Both follow a named reference implementation
//! number for number, and the unit tests compare against values those implementations computed
//! on the same series (`tests/fixtures/memory/`):
//!
//! - [`theil_sen`] is `scipy.stats.theilslopes(y, x, alpha=0.95, method="separate")`: the median
//!   of pairwise slopes (Theil 1950; Sen 1968, "Estimates of the regression coefficient based on
//!   Kendall's tau", JASA 63(324)), with the interval from the variance of Kendall's S (Sen's
//!   eq. 2.6, tie-corrected).
//! - [`hamed_rao`] is `pymannkendall.hamed_rao_modification_test(y, alpha=0.05)`: the
//!   Mann–Kendall S statistic whose variance is inflated by the significant autocorrelations of
//!   the ranks of the detrended series (Hamed & Rao 1998, "A modified Mann-Kendall trend test for
//!   autocorrelated data", J. Hydrology 204). Memory sampled every few seconds is strongly
//!   autocorrelated (an allocator sawtooth is the textbook case); the plain test would call
//!   nearly every such series a trend.

/// The two-sided 95 % standard normal quantile, `Φ⁻¹(0.975)`.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// A Theil–Sen fit `y ≈ intercept + slope · x` with a 95 % confidence interval for the slope.
///
/// Units are those of the inputs: with `x` in seconds and `y` in bytes, the slope is bytes/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TheilSen {
    /// Median of the pairwise slopes.
    pub slope: f64,
    /// `median(y) − slope · median(x)` (scipy's `method="separate"`).
    pub intercept: f64,
    /// Lower bound of the 95 % confidence interval of the slope (NaN when undefined).
    pub low_slope: f64,
    /// Upper bound of the 95 % confidence interval of the slope (NaN when undefined).
    pub high_slope: f64,
}

/// Median of a non-empty sorted slice (the mean of the two middle values for an even length).
fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    median_sorted(&s)
}

/// Sizes of the groups of equal values that occur more than once (scipy's `_find_repeats`).
fn repeat_counts(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let mut j = i + 1;
        while j < s.len() && s[j] == s[i] {
            j += 1;
        }
        if j - i > 1 {
            out.push((j - i) as f64);
        }
        i = j;
    }
    out
}

/// `k(k−1)(2k+5)`, the tie term of the variance of Kendall's S.
fn tie_term(k: f64) -> f64 {
    k * (k - 1.0) * (2.0 * k + 5.0)
}

/// Theil–Sen slope of `y` against `x` with the 95 % interval, as
/// `scipy.stats.theilslopes(y, x, alpha=0.95)` computes it.
///
/// Pairs with equal `x` are skipped. Cost: O(n²) time and memory in the number of points (the
/// probe thins series above [`super::MAX_FIT_SAMPLES`]).
///
/// Returns `None` when fewer than two points have distinct `x`, or the lengths differ.
pub fn theil_sen(x: &[f64], y: &[f64]) -> Option<TheilSen> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len();
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for j in 0..n {
        for i in 0..n {
            let dx = x[j] - x[i];
            if dx > 0.0 {
                slopes.push((y[j] - y[i]) / dx);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let slope = median_sorted(&slopes);
    let intercept = median(y) - slope * median(x);
    // Sen (1968), eq. 2.6: the variance of Kendall's S with tie corrections in x and y.
    let nf = n as f64;
    let sigsq = (nf * (nf - 1.0) * (2.0 * nf + 5.0)
        - repeat_counts(x).into_iter().map(tie_term).sum::<f64>()
        - repeat_counts(y).into_iter().map(tie_term).sum::<f64>())
        / 18.0;
    let sigma = sigsq.sqrt();
    let nt = slopes.len() as f64;
    let (low_slope, high_slope) = if sigma.is_finite() {
        // numpy rounds half to even; the indices must match scipy's exactly.
        let ru = ((nt + Z_975 * sigma) / 2.0).round_ties_even();
        let rl = ((nt - Z_975 * sigma) / 2.0).round_ties_even() - 1.0;
        let ru = (ru.max(0.0) as usize).min(slopes.len() - 1);
        let rl = rl.max(0.0) as usize;
        match slopes.get(rl) {
            Some(&lo) => (lo, slopes[ru]),
            None => (f64::NAN, f64::NAN),
        }
    } else {
        (f64::NAN, f64::NAN)
    };
    Some(TheilSen {
        slope,
        intercept,
        low_slope,
        high_slope,
    })
}

/// Direction of a Mann–Kendall trend at the 5 % level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// Significantly increasing.
    Increasing,
    /// Significantly decreasing.
    Decreasing,
    /// Not significant.
    None,
}

impl Trend {
    /// The words pymannkendall uses: `increasing`, `decreasing`, `no trend`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Increasing => "increasing",
            Trend::Decreasing => "decreasing",
            Trend::None => "no trend",
        }
    }
}

/// Result of the Hamed–Rao modified Mann–Kendall test at α = 0.05.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// Mann–Kendall score S = Σ sign(yⱼ − yᵢ) over i < j.
    pub s: f64,
    /// Variance of S after the tie correction and the autocorrelation correction.
    pub var_s: f64,
    /// The autocorrelation correction factor n/n* (1 for independent data).
    pub n_ns: f64,
    /// Normalised statistic with continuity correction.
    pub z: f64,
    /// Two-sided p-value (NaN when the corrected variance is not positive).
    pub p: f64,
    /// Kendall's tau, S / (n(n−1)/2).
    pub tau: f64,
    /// Significant direction at α = 0.05.
    pub trend: Trend,
}

/// Average ranks, 1-based, ties sharing the mean of their ranks (`scipy.stats.rankdata`).
fn rank_average(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && v[idx[j]] == v[idx[i]] {
            j += 1;
        }
        let r = (i + j + 1) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Standard normal upper-tail two-sided p-value `2(1 − Φ(|z|))`.
fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// The Hamed & Rao (1998) modified Mann–Kendall test of the equally spaced series `y`, as
/// `pymannkendall.hamed_rao_modification_test(y, alpha=0.05)` computes it (all lags).
///
/// Returns `None` for fewer than 3 values. Cost: O(n²).
pub fn hamed_rao(y: &[f64]) -> Option<MannKendall> {
    let n = y.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mut s = 0.0;
    for k in 0..n - 1 {
        for &b in &y[k + 1..] {
            if b > y[k] {
                s += 1.0;
            } else if b < y[k] {
                s -= 1.0;
            }
        }
    }
    let mut var_s = (nf * (nf - 1.0) * (2.0 * nf + 5.0)
        - repeat_counts(y).into_iter().map(tie_term).sum::<f64>())
        / 18.0;
    let tau = s / (0.5 * nf * (nf - 1.0));

    // Detrend with Sen's slope per step, rank, and sum the significant autocorrelations.
    let index: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let slope = theil_sen(&index, y).map(|t| t.slope).unwrap_or(0.0);
    let detrended: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, v)| v - (i as f64 + 1.0) * slope)
        .collect();
    let ranks = rank_average(&detrended);
    let mean = ranks.iter().sum::<f64>() / nf;
    let dev: Vec<f64> = ranks.iter().map(|r| r - mean).collect();
    let acov0: f64 = dev.iter().map(|d| d * d).sum();
    let bound = Z_975 / nf.sqrt();
    let mut sni = 0.0;
    if acov0 > 0.0 {
        for lag in 1..n {
            let acf = dev[..n - lag]
                .iter()
                .zip(&dev[lag..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / acov0;
            if acf > bound || acf < -bound {
                let m = (n - lag) as f64;
                sni += m * (m - 1.0) * (m - 2.0) * acf;
            }
        }
    }
    let n_ns = 1.0 + 2.0 / (nf * (nf - 1.0) * (nf - 2.0)) * sni;
    var_s *= n_ns;
    let z = if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    let p = if z.is_nan() { f64::NAN } else { two_sided_p(z) };
    let significant = z.abs() > Z_975;
    let trend = match (significant, z > 0.0) {
        (true, true) => Trend::Increasing,
        (true, false) => Trend::Decreasing,
        _ => Trend::None,
    };
    Some(MannKendall {
        s,
        var_s,
        n_ns,
        z,
        p,
        tau,
        trend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values computed once by scipy and pymannkendall; see
    /// `tests/fixtures/memory/README.md` for the script and versions.
    const REFERENCE: &str = include_str!("../../../tests/fixtures/memory/reference.json");

    fn close(name: &str, what: &str, got: f64, want: f64) {
        let tol = 1e-9 * want.abs().max(1.0);
        assert!(
            (got - want).abs() <= tol || (got.is_nan() && want.is_nan()),
            "{name}: {what}: got {got}, scipy/pymannkendall say {want}"
        );
    }

    fn num(v: &serde_json::Value) -> f64 {
        v.as_f64().unwrap_or(f64::NAN)
    }

    fn series(c: &serde_json::Value, key: &str) -> Vec<f64> {
        c[key].as_array().expect("array").iter().map(num).collect()
    }

    #[test]
    fn theil_sen_matches_scipy_theilslopes_on_every_reference_series() {
        let cases: serde_json::Value = serde_json::from_str(REFERENCE).expect("fixture parses");
        let cases = cases["cases"].as_array().expect("cases");
        assert!(cases.len() >= 5, "the fixture holds the reference series");
        for c in cases {
            let name = c["name"].as_str().unwrap_or("?");
            let (x, y) = (series(c, "x"), series(c, "y"));
            let r = &c["theilslopes"];
            let t = theil_sen(&x, &y).expect("fit");
            close(name, "slope", t.slope, num(&r["slope"]));
            close(name, "intercept", t.intercept, num(&r["intercept"]));
            close(name, "low_slope", t.low_slope, num(&r["low_slope"]));
            close(name, "high_slope", t.high_slope, num(&r["high_slope"]));
        }
    }

    #[test]
    fn hamed_rao_matches_pymannkendall_on_every_reference_series() {
        let cases: serde_json::Value = serde_json::from_str(REFERENCE).expect("fixture parses");
        for c in cases["cases"].as_array().expect("cases") {
            let name = c["name"].as_str().unwrap_or("?");
            let y = series(c, "y");
            let r = &c["hamed_rao"];
            let m = hamed_rao(&y).expect("test");
            close(name, "s", m.s, num(&r["s"]));
            close(name, "var_s", m.var_s, num(&r["var_s"]));
            close(name, "z", m.z, num(&r["z"]));
            close(name, "p", m.p, num(&r["p"]));
            close(name, "tau", m.tau, num(&r["Tau"]));
            assert_eq!(
                m.trend.as_str(),
                r["trend"].as_str().unwrap_or(""),
                "{name}"
            );
        }
    }

    #[test]
    fn exact_line_has_its_slope_and_a_zero_width_interval() {
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| 100.0 + 3.0 * v).collect();
        let t = theil_sen(&x, &y).expect("fit");
        assert_eq!((t.slope, t.low_slope, t.high_slope), (3.0, 3.0, 3.0));
        assert_eq!(t.intercept, 100.0);
    }

    #[test]
    fn too_short_inputs_give_no_answer() {
        assert!(theil_sen(&[1.0], &[1.0]).is_none());
        assert!(theil_sen(&[1.0, 1.0], &[1.0, 2.0]).is_none());
        assert!(hamed_rao(&[1.0, 2.0]).is_none());
    }
}

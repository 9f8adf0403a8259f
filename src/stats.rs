//! Nonparametric two-sample statistics on weighted samples: the Mann–Whitney U test, the
//! Hodges–Lehmann shift with its distribution-free confidence interval, and the
//! distribution-free confidence interval of a quantile from order statistics.
//!
//! Why weighted: latency samples arrive as HdrHistograms, millions of values in a few thousand
//! buckets. Every function here takes a [`Weighted`] sample, `(value, count)` pairs, and never
//! expands it: ranks come from the merged buckets (ties share their midrank), and the k-th of the
//! n·m pairwise differences is found by bisection on the difference, counting pairs with a merge
//! walk over the two bucket lists (O((kₓ + k_y) · 64) for kₓ and k_y buckets).
//!
//! A leaf: it imports nothing of the crate. The normal and binomial distributions come from
//! `statrs`.
//!
//! Sources:
//! - H. B. Mann and D. R. Whitney, "On a test of whether one of two random variables is
//!   stochastically larger than the other", Annals of Mathematical Statistics 18(1), 1947.
//!   The normal approximation with the tie correction and the continuity correction is the
//!   one `scipy.stats.mannwhitneyu(method="asymptotic")` computes.
//! - J. L. Hodges and E. L. Lehmann, "Estimates of location based on rank tests", Annals of
//!   Mathematical Statistics 34(2), 1963 (the shift estimate); E. L. Lehmann, Nonparametrics:
//!   Statistical Methods Based on Ranks (1975), §2.6, and M. Hollander and D. A. Wolfe,
//!   Nonparametric Statistical Methods (1999), §4.3 (its interval, Moses' construction from
//!   the ordered differences with the normal approximation of the critical value of U).
//! - W. J. Conover, Practical Nonparametric Statistics, 3rd ed. (1999), §3.2: the
//!   confidence interval of a quantile from two order statistics, with binomial coverage.

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal};

/// A sample as `(value, count)` pairs: `count` observations equal to `value`. Order and
/// repeated values are allowed; [`Weighted::new`] sorts and merges them. Counts of 0 are
/// dropped; values must not be NaN.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Weighted {
    /// Distinct values ascending, each with its count (> 0).
    buckets: Vec<(f64, u64)>,
    /// Total count.
    n: u64,
}

impl Weighted {
    /// Sort by value and merge equal values; drops zero counts.
    ///
    /// # Panics
    /// When a value is NaN.
    pub fn new(mut pairs: Vec<(f64, u64)>) -> Weighted {
        assert!(
            pairs.iter().all(|(v, _)| !v.is_nan()),
            "a sample value is NaN"
        );
        pairs.retain(|&(_, c)| c > 0);
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(pairs.len());
        for (v, c) in pairs {
            match buckets.last_mut() {
                Some(last) if last.0 == v => last.1 += c,
                _ => buckets.push((v, c)),
            }
        }
        let n = buckets.iter().map(|b| b.1).sum();
        Weighted { buckets, n }
    }

    /// Each value once (a plain, unweighted sample).
    pub fn from_values(values: &[f64]) -> Weighted {
        Weighted::new(values.iter().map(|&v| (v, 1)).collect())
    }

    /// The number of observations.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True when there is no observation.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The distinct values ascending with their counts.
    pub fn buckets(&self) -> &[(f64, u64)] {
        &self.buckets
    }

    /// The k-th smallest observation, 1-based (`None` when k is 0 or above n).
    pub fn order_statistic(&self, k: u64) -> Option<f64> {
        if k == 0 || k > self.n {
            return None;
        }
        let mut seen = 0;
        for &(v, c) in &self.buckets {
            seen += c;
            if seen >= k {
                return Some(v);
            }
        }
        None
    }

    /// The median as `numpy.median` computes it (mean of the two middle values for even n).
    pub fn median(&self) -> Option<f64> {
        let n = self.n;
        if n == 0 {
            return None;
        }
        let lo = self.order_statistic(n.div_ceil(2))?;
        let hi = self.order_statistic(n / 2 + 1)?;
        Some(if n % 2 == 1 { lo } else { (lo + hi) / 2.0 })
    }
}

/// Which alternative hypothesis a one-sided p-value is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// x and y differ in location (either direction).
    TwoSided,
    /// x is stochastically greater than y.
    Greater,
    /// x is stochastically less than y.
    Less,
}

/// The Mann–Whitney U test of x against y (normal approximation, tie and continuity
/// corrected; Mann & Whitney 1947).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of x: the number of pairs (xᵢ, yⱼ) with xᵢ > yⱼ plus half the ties,
    /// `R₁ − n₁(n₁+1)/2` with R₁ the rank sum of x (`statistic` of scipy).
    pub u: f64,
    /// n₁, the size of x.
    pub n_x: u64,
    /// n₂, the size of y.
    pub n_y: u64,
    /// Standard deviation of U under the null hypothesis, with the tie correction
    /// `√(n₁n₂/12 · ((n+1) − Σ(t³−t)/(n(n−1))))`.
    pub sigma: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
    /// p-value for "x is stochastically greater than y".
    pub p_greater: f64,
    /// p-value for "x is stochastically less than y".
    pub p_less: f64,
}

impl MannWhitney {
    /// The p-value for `alternative`.
    pub fn p(&self, alternative: Alternative) -> f64 {
        match alternative {
            Alternative::TwoSided => self.p_two_sided,
            Alternative::Greater => self.p_greater,
            Alternative::Less => self.p_less,
        }
    }

    /// The common-language effect size U / (n₁n₂): the probability that an x exceeds a y
    /// (ties counted half).
    pub fn probability_of_superiority(&self) -> f64 {
        self.u / (self.n_x as f64 * self.n_y as f64)
    }
}

/// Standard normal upper tail 1 − Φ(z).
fn normal_sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// The Mann–Whitney U test of `x` against `y`, as `scipy.stats.mannwhitneyu(x, y,
/// use_continuity=True, method="asymptotic")` computes it for each `alternative`.
///
/// Ranks are midranks over the merged buckets; the variance carries the tie correction. Returns
/// `None` when either sample is empty or every observation is equal (U has no variance).
pub fn mann_whitney_u(x: &Weighted, y: &Weighted) -> Option<MannWhitney> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (mut i, mut j) = (0, 0);
    let (bx, by) = (x.buckets(), y.buckets());
    let mut below = 0f64; // observations ranked below the current value
    let mut rank_sum_x = 0f64;
    let mut tie_term = 0f64;
    while i < bx.len() || j < by.len() {
        let v = match (bx.get(i), by.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => unreachable!(),
        };
        let cx = take_if_equal(bx, &mut i, v);
        let cy = take_if_equal(by, &mut j, v);
        let t = (cx + cy) as f64;
        let midrank = below + (t + 1.0) / 2.0;
        rank_sum_x += cx as f64 * midrank;
        tie_term += t * t * t - t;
        below += t;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let n = f1 + f2;
    let u1 = rank_sum_x - f1 * (f1 + 1.0) / 2.0;
    let u2 = f1 * f2 - u1;
    let sigma = (f1 * f2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    if sigma.is_nan() || sigma <= 0.0 {
        return None;
    }
    let mu = f1 * f2 / 2.0;
    let p_of = |u: f64| normal_sf((u - mu - 0.5) / sigma);
    Some(MannWhitney {
        u: u1,
        n_x: n1,
        n_y: n2,
        sigma,
        p_two_sided: (2.0 * p_of(u1.max(u2))).clamp(0.0, 1.0),
        p_greater: p_of(u1).clamp(0.0, 1.0),
        p_less: p_of(u2).clamp(0.0, 1.0),
    })
}

/// The count of bucket `*i` of `b` when its value is `v` (then step past it), else 0.
fn take_if_equal(b: &[(f64, u64)], i: &mut usize, v: f64) -> u64 {
    match b.get(*i) {
        Some(&(w, c)) if w == v => {
            *i += 1;
            c
        }
        _ => 0,
    }
}

/// The Hodges–Lehmann estimate of the shift of `y` against `x` with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// The median of the n₁n₂ differences yⱼ − xᵢ (Hodges & Lehmann 1963).
    pub estimate: f64,
    /// Lower end of the interval, the C-th smallest difference.
    pub low: f64,
    /// Upper end of the interval, the (n₁n₂ + 1 − C)-th smallest difference.
    pub high: f64,
    /// The confidence asked for, e.g. 0.99.
    pub confidence: f64,
    /// C, the rank of the lower end among the ordered differences.
    pub c: u128,
}

/// The Hodges–Lehmann shift of `y` against `x` (positive: y is larger) and its
/// distribution-free confidence interval at `confidence` (e.g. 0.99).
///
/// The estimate is the median of the differences yⱼ − xᵢ over all pairs, weighted by the
/// buckets' counts (`numpy.median` of the expanded differences). The interval is
/// [D₍C₎, D₍N+1−C₎] over the N = n₁n₂ ordered differences, with
/// C = ⌊N/2 − z₍₁₋α/₂₎ · √(N(n₁+n₂+1)/12)⌉ (Lehmann 1975 §2.6; Hollander & Wolfe §4.3, normal
/// approximation, without a tie correction). Returns `None` when a sample is empty; the
/// interval is the whole range of differences when C < 1 (samples too small for the
/// confidence).
pub fn hodges_lehmann(x: &Weighted, y: &Weighted, confidence: f64) -> Option<Shift> {
    let (n1, n2) = (x.len() as u128, y.len() as u128);
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let total = n1 * n2;
    let kth = |k: u128| kth_difference(x, y, k);
    let estimate = if total % 2 == 1 {
        kth(total.div_ceil(2))
    } else {
        (kth(total / 2) + kth(total / 2 + 1)) / 2.0
    };
    let z = Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    let (t, s) = (total as f64, (n1 + n2) as f64);
    let c = (t / 2.0 - z * (t * (s + 1.0) / 12.0).sqrt()).round();
    let c = if c < 1.0 { 1 } else { c as u128 };
    Some(Shift {
        estimate,
        low: kth(c),
        high: kth(total + 1 - c),
        confidence,
        c,
    })
}

/// The k-th smallest (1-based, 1 ≤ k ≤ n₁n₂) of the differences yⱼ − xᵢ, each pair weighted by
/// its buckets' counts: bisection over the ordered f64 bit patterns for the smallest d with
/// #{yⱼ − xᵢ ≤ d} ≥ k. That d is one of the computed differences, so the result is exact.
fn kth_difference(x: &Weighted, y: &Weighted, k: u128) -> f64 {
    let (bx, by) = (x.buckets(), y.buckets());
    let lowest = by[0].0 - bx[bx.len() - 1].0;
    let highest = by[by.len() - 1].0 - bx[0].0;
    let (mut lo, mut hi) = (order_key(lowest), order_key(highest));
    // Invariant: count(hi) ≥ k; the answer is in [lo, hi].
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pairs_at_most(bx, by, from_order_key(mid)) >= k {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    from_order_key(lo)
}

/// The number of weighted pairs with yⱼ − xᵢ ≤ d: for each y bucket ascending, the x buckets
/// with yⱼ − xᵢ ≤ d are a suffix whose start only moves right (a merge walk).
fn pairs_at_most(bx: &[(f64, u64)], by: &[(f64, u64)], d: f64) -> u128 {
    let mut suffix = vec![0u128; bx.len() + 1];
    for i in (0..bx.len()).rev() {
        suffix[i] = suffix[i + 1] + bx[i].1 as u128;
    }
    let mut start = 0;
    let mut count = 0u128;
    for &(yv, cy) in by {
        while start < bx.len() && yv - bx[start].0 > d {
            start += 1;
        }
        count += cy as u128 * suffix[start];
    }
    count
}

/// A u64 whose order is the numeric order of the (non-NaN) f64 `v`.
fn order_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The inverse of [`order_key`].
fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// A distribution-free confidence interval of a quantile from two order statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileInterval {
    /// The quantile, e.g. 0.99.
    pub quantile: f64,
    /// The sample quantile, the ⌈n·q⌉-th smallest observation.
    pub estimate: f64,
    /// Lower end, the r-th smallest observation.
    pub low: f64,
    /// Upper end, the s-th smallest observation.
    pub high: f64,
    /// r, 1-based.
    pub r: u64,
    /// s, 1-based.
    pub s: u64,
    /// The exact coverage P(X₍ᵣ₎ ≤ ξ_q < X₍ₛ₎) = F(s−1) − F(r−1), F the Binomial(n, q) CDF;
    /// at least the confidence asked for.
    pub coverage: f64,
}

/// The distribution-free confidence interval [X₍ᵣ₎, X₍ₛ₎] of the `quantile` q of the population
/// `sample` was drawn from, at `confidence` (Conover 1999, §3.2): with B ~ Binomial(n, q), r is
/// the largest rank with P(B ≤ r−1) ≤ α/2 and s the smallest with P(B ≤ s−1) ≥ 1 − α/2,
/// α = 1 − confidence. Holds for any continuous distribution.
///
/// Returns `None` when the sample is too small for such ranks to exist within 1..=n (e.g. for
/// p99.9 at 99 % confidence, below about 5 300 observations): the tail cannot be bounded.
pub fn quantile_interval(
    sample: &Weighted,
    quantile: f64,
    confidence: f64,
) -> Option<QuantileInterval> {
    let n = sample.len();
    if n == 0 || !(0.0..1.0).contains(&quantile) || quantile == 0.0 {
        return None;
    }
    let half = (1.0 - confidence) / 2.0;
    let binom = Binomial::new(quantile, n).ok()?;
    // F is nondecreasing in k: bisect for the first k with F(k) > half (then r − 1 = k − 1,
    // r = k) and the first k with F(k) ≥ 1 − half (then s − 1 = k, s = k + 1).
    let first = |pred: &dyn Fn(f64) -> bool| -> u64 {
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(binom.cdf(mid)) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };
    let r = first(&|f| f > half);
    let s = first(&|f| f >= 1.0 - half) + 1;
    if r < 1 || s > n {
        return None;
    }
    let coverage = binom.cdf(s - 1) - binom.cdf(r - 1);
    let rank = ((n as f64 * quantile).ceil() as u64).clamp(1, n);
    Some(QuantileInterval {
        quantile,
        estimate: sample.order_statistic(rank)?,
        low: sample.order_statistic(r)?,
        high: sample.order_statistic(s)?,
        r,
        s,
        coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_differences(x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut d: Vec<f64> = y
            .iter()
            .flat_map(|b| x.iter().map(move |a| b - a))
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    #[test]
    fn order_key_round_trips_and_orders() {
        let vs = [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, 1e300];
        for w in vs.windows(2) {
            assert!(order_key(w[0]) <= order_key(w[1]));
        }
        for v in vs {
            assert_eq!(from_order_key(order_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn kth_difference_equals_sorting_every_pair() {
        let x = [1.0, 2.0, 2.0, 5.0, 7.5, 7.5, 9.0];
        let y = [0.5, 2.0, 3.0, 3.0, 10.0];
        let (wx, wy) = (Weighted::from_values(&x), Weighted::from_values(&y));
        let all = brute_differences(&x, &y);
        for (k, d) in all.iter().enumerate() {
            assert_eq!(kth_difference(&wx, &wy, k as u128 + 1), *d, "k = {}", k + 1);
        }
    }

    #[test]
    fn weights_equal_repeated_values() {
        let wx = Weighted::new(vec![(3.0, 4), (1.0, 2), (3.0, 1)]);
        let ex = Weighted::from_values(&[1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0]);
        assert_eq!(wx, ex);
        let y = Weighted::from_values(&[2.0, 4.0, 4.0]);
        assert_eq!(mann_whitney_u(&wx, &y), mann_whitney_u(&ex, &y));
        assert_eq!(wx.median(), Some(3.0));
        assert_eq!(Weighted::from_values(&[1.0, 2.0]).median(), Some(1.5));
    }

    #[test]
    fn identical_constant_samples_have_no_test() {
        let x = Weighted::from_values(&[2.0, 2.0]);
        assert!(mann_whitney_u(&x, &x).is_none());
        assert!(mann_whitney_u(&x, &Weighted::default()).is_none());
    }

    #[test]
    fn hodges_lehmann_ci_brackets_the_shift_and_uses_moses_rank() {
        // n1 = n2 = 10, 95 %: C = round(50 − 1.96·√(100·21/12)) = round(24.07) = 24 (the
        // tabled exact value is 24 as well, Hollander & Wolfe Table A.6).
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let y: Vec<f64> = (0..10).map(|v| f64::from(v) + 3.0).collect();
        let s =
            hodges_lehmann(&Weighted::from_values(&x), &Weighted::from_values(&y), 0.95).unwrap();
        assert_eq!(s.c, 24);
        assert_eq!(s.estimate, 3.0);
        let all = brute_differences(&x, &y);
        assert_eq!((s.low, s.high), (all[23], all[100 - 24]));
        assert!(s.low < 3.0 && 3.0 < s.high);
    }

    #[test]
    fn quantile_interval_ranks_cover_and_small_samples_are_refused() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        let w = Weighted::from_values(&values);
        let q = quantile_interval(&w, 0.99, 0.99).unwrap();
        assert!(q.coverage >= 0.99, "{q:?}");
        assert!(q.r < 990 && 990 < q.s && q.s <= 1000, "{q:?}");
        assert_eq!(q.estimate, 990.0);
        assert_eq!((q.low, q.high), (q.r as f64, q.s as f64));
        // 1 000 values cannot bound p99.9 at 99 %: even the largest is below it too often.
        assert!(quantile_interval(&w, 0.999, 0.99).is_none());
    }
}

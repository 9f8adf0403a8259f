//! The latency probe's verdict: whose lateness failed a gate.
//!
//! The generator's own lateness (a request due on a free connection but sent late: a late
//! timer, a descheduled thread, a CPU shared with a build) is inside every corrected latency. It
//! can only make the target look slower, never faster. So:
//! 1. a pass on the corrected figures stands: the generator's lateness is already in them;
//! 2. a failure is attributed. Each response also records the target's part of its corrected
//!    latency (the corrected latency less that request's generator lag). A threshold the
//!    corrected figure misses is the target's failure when the target's part misses it too,
//!    by more than the generator runtime's own lateness at the same percentile (a response the
//!    generator read late cannot be told apart request by request); otherwise prodready cannot
//!    tell, and says "load generator saturated" (`error`) with both figures;
//! 3. a rate that was not sustained is attributed by the lateness of the sends: the share the
//!    generator caused (late with a connection free) against the share spent waiting for a
//!    busy connection (the target did not keep up, Little's law).
//!
//! No absolute bound is held against a figure the machine moves: `max_generator_lag` is an
//! explicit, opt-in bound with no default.

use hdrhistogram::Histogram;

use super::load::{LoadResult, Plan};
use super::record::Recorder;

/// Who a failed check is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The target's part alone fails the check: the target is slow.
    Target,
    /// Only the generator's lateness takes the figure over the gate: prodready cannot tell.
    Generator,
}

/// One latency threshold judged on a run.
#[derive(Debug, Clone, Copy)]
pub struct Judged {
    /// The corrected figure, µs.
    pub corrected_us: f64,
    /// The target's part of it, µs.
    pub target_us: f64,
    /// The generator runtime's lateness at the same percentile, µs (0 without samples).
    pub runtime_us: f64,
    /// The corrected figure meets the gate.
    pub passed: bool,
    /// Who a failure is held against; `None` when it passed.
    pub blame: Option<Blame>,
}

/// The value of `h` at `quantile` (`None`: the mean; 1.0: the maximum), µs.
pub fn value_us(h: &Histogram<u64>, quantile: Option<f64>) -> f64 {
    match quantile {
        None => h.mean(),
        Some(q) if q >= 1.0 => h.max() as f64,
        Some(q) => h.value_at_quantile(q) as f64,
    }
}

/// Judge the threshold `max_us` at `quantile` (see [`value_us`]) against the recorder's
/// corrected latencies, attributing a failure (rule 2 of the module doc). `None` when nothing
/// was recorded.
pub fn threshold(rec: &Recorder, quantile: Option<f64>, max_us: f64) -> Option<Judged> {
    if rec.corrected.is_empty() {
        return None;
    }
    let corrected_us = value_us(&rec.corrected, quantile);
    let target_us = value_us(&rec.target, quantile);
    let runtime_us = if rec.runtime_lag.is_empty() {
        0.0
    } else {
        value_us(&rec.runtime_lag, quantile)
    };
    let passed = corrected_us <= max_us;
    let blame = if passed {
        None
    } else if target_us - runtime_us > max_us {
        Some(Blame::Target)
    } else {
        Some(Blame::Generator)
    };
    Some(Judged {
        corrected_us,
        target_us,
        runtime_us,
        passed,
        blame,
    })
}

/// How the sends' lateness splits, over the measured requests.
#[derive(Debug, Clone, Copy)]
pub struct Lateness {
    /// Mean wait for a free connection, µs: the target's part.
    pub wait_mean_us: f64,
    /// Mean generator lag, µs: the generator's part.
    pub own_mean_us: f64,
}

impl Lateness {
    /// The split recorded in `rec`.
    pub fn of(rec: &Recorder) -> Lateness {
        let mean = |h: &Histogram<u64>| if h.is_empty() { 0.0 } else { h.mean() };
        Lateness {
            wait_mean_us: mean(&rec.connection_wait),
            own_mean_us: mean(&rec.generator_lag),
        }
    }

    /// The generator's share of all lateness, 0 to 1 (0 when nothing was late). Both histograms
    /// count every measured send once, so the ratio of means is the ratio of sums.
    pub fn generator_share(&self) -> f64 {
        let total = self.wait_mean_us + self.own_mean_us;
        if total <= 0.0 {
            0.0
        } else {
            self.own_mean_us / total
        }
    }

    /// Who a rate that was not sustained is held against (rule 3 of the module doc): the
    /// generator when most of the lateness was its own, the target otherwise.
    pub fn blame(&self) -> Blame {
        if self.generator_share() > 0.5 {
            Blame::Generator
        } else {
            Blame::Target
        }
    }
}

/// Share of the requested rate that must be achieved for the run to count as sustained.
pub const SUSTAINED_SHARE: f64 = 0.95;

/// Absolute slack on the send span before a rate counts as not sustained: one scheduling
/// hiccup of a busy machine (a stalled process is descheduled for tens to hundreds of
/// milliseconds) must not turn a short run into a failure. A target that cannot keep up falls
/// behind in proportion to the run and exceeds it; its lateness is in the corrected latency
/// either way.
pub const SUSTAINED_SLACK_S: f64 = 0.25;

/// Errors and rates of one run.
#[derive(Clone, Copy)]
pub struct Rates {
    /// Failed requests, all kinds.
    pub errors: u64,
    /// errors / attempted.
    pub error_rate: f64,
    /// Requests sent per second over the measured span.
    pub achieved: f64,
    /// The measured requests all left within the planned span (with [`SUSTAINED_SHARE`] and
    /// [`SUSTAINED_SLACK_S`]).
    pub sustained: bool,
}

impl Rates {
    /// The rates of run `r` of plan `p`.
    pub fn of(p: &Plan, r: &LoadResult) -> Rates {
        let errors: u64 = r.errors.values().sum();
        let attempted = r.attempted.max(1);
        let error_rate = errors as f64 / attempted as f64;
        let achieved = if r.send_span.is_zero() {
            0.0
        } else {
            // Requests sent over the time from the first intended send to the last real one:
            // (n − 1) intervals between n sends.
            (r.attempted.saturating_sub(1)) as f64 / r.send_span.as_secs_f64()
        };
        let planned_span = (p.measured_requests.saturating_sub(1)) as f64 / p.rate_per_s;
        let sustained = r.attempted >= p.measured_requests
            && (planned_span <= 0.0
                || r.send_span.as_secs_f64() <= planned_span / SUSTAINED_SHARE + SUSTAINED_SLACK_S);

        Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    /// 100 responses: 95 fast ones, 5 sent late by the generator.
    fn starved() -> Recorder {
        let mut r = Recorder::new(Duration::from_secs(1));
        for i in 0..100u64 {
            let own = if i >= 95 { us(50_000) } else { us(1) };
            r.record_lateness(us(1), own);
            r.record(us(i * 1000), own + us(300), us(300), own);
        }
        r
    }

    #[test]
    fn a_pass_with_the_generators_lateness_included_stands() {
        let j = threshold(&starved(), Some(0.99), 100_000.0).unwrap();
        assert!(j.passed);
        assert_eq!(j.blame, None);
        assert!(j.corrected_us >= 50_000.0, "{j:?}");
    }

    #[test]
    fn a_miss_only_the_generators_lateness_explains_is_not_the_targets() {
        let j = threshold(&starved(), Some(0.99), 10_000.0).unwrap();
        assert!(!j.passed);
        assert_eq!(j.blame, Some(Blame::Generator));
        assert!(j.target_us < 1_000.0, "{j:?}");
    }

    #[test]
    fn a_slow_target_is_blamed_even_with_a_late_generator() {
        let mut r = Recorder::new(Duration::from_secs(1));
        for i in 0..100u64 {
            r.record_lateness(us(1), us(2_000));
            r.record(us(i * 1000), us(22_000), us(20_000), us(2_000));
        }
        let j = threshold(&r, Some(0.99), 5_000.0).unwrap();
        assert_eq!(j.blame, Some(Blame::Target), "{j:?}");
        // The runtime's own lateness at the percentile is allowed for before blaming.
        for _ in 0..100 {
            r.record_runtime_lag(us(19_000));
        }
        let j = threshold(&r, Some(0.99), 5_000.0).unwrap();
        assert_eq!(j.blame, Some(Blame::Generator), "{j:?}");
    }

    #[test]
    fn an_unsustained_rate_goes_to_whoever_caused_most_of_the_lateness() {
        let mut busy = Recorder::new(Duration::from_secs(1));
        let mut late = Recorder::new(Duration::from_secs(1));
        for _ in 0..10 {
            busy.record_lateness(us(9_000), us(100));
            late.record_lateness(us(1), us(9_000));
        }
        assert_eq!(Lateness::of(&busy).blame(), Blame::Target);
        assert_eq!(Lateness::of(&late).blame(), Blame::Generator);
        assert!(Lateness::of(&late).generator_share() > 0.99);
        let idle = Recorder::new(Duration::from_secs(1));
        assert_eq!(Lateness::of(&idle).generator_share(), 0.0);
    }
}

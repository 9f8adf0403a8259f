//! The judgement of a `latency` run: a check per threshold, the error rate, the sample count
//! and the rate sustained, then the one-line summary, which makes the item an `error` when the
//! run cannot be judged or only the generator's own lateness explains a failure. The
//! attribution itself (whose lateness failed a gate) is [`super::verdict`]'s.

use hdrhistogram::Histogram;

use super::config::{LatencyProbe, Threshold};
use super::load::LoadResult;
use super::outcome::{error_breakdown, fmt_us, p99_text, percent};
use super::verdict::{self, Blame, Lateness, Rates, SUSTAINED_SHARE};
use crate::model::{Check, ProbeOutput, Status};
use crate::units::format_duration;

impl LatencyProbe {
    /// The generator's own lateness at p99: the larger of the send lateness on a free connection
    /// and the runtime's lateness, µs; `None` without samples.
    fn own_lag_p99(r: &LoadResult) -> Option<u64> {
        let (g, rt) = (&r.recorder.generator_lag, &r.recorder.runtime_lag);
        let p99 = |h: &Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(0.99));
        match (p99(g), p99(rt)) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        }
    }

    /// The generator's own lateness at p99 exceeded the explicit `max_generator_lag`.
    fn over_bound(&self, r: &LoadResult) -> bool {
        self.max_generator_lag.is_some_and(|bound| {
            Self::own_lag_p99(r).is_some_and(|us| us > bound.as_micros() as u64)
        })
    }

    /// Every latency threshold judged on the run, in checklist order.
    fn judged(&self, r: &LoadResult) -> Vec<(&Threshold, Option<verdict::Judged>)> {
        self.thresholds
            .iter()
            .map(|t| {
                let max_us = t.max.as_micros() as f64;
                (t, verdict::threshold(&r.recorder, t.quantile, max_us))
            })
            .collect()
    }

    /// The thresholds, the error rate, the sample count and whether the rate was sustained.
    pub(super) fn checks(&self, o: &mut ProbeOutput, r: &LoadResult, rt: &Rates) {
        let p = &self.plan;
        let Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        } = *rt;
        for (t, j) in self.judged(r) {
            let (measured, ok) = match j {
                None => ("no samples".to_string(), false),
                Some(j) if j.passed => (fmt_us(j.corrected_us), true),
                Some(j) => (
                    format!(
                        "{}; the target's part {}",
                        fmt_us(j.corrected_us),
                        fmt_us(j.target_us)
                    ),
                    false,
                ),
            };
            o.checks.push(Check::new(
                t.key,
                format!("≤ {}", format_duration(t.max)),
                measured,
                ok,
            ));
        }
        o.checks.push(Check::new(
            "error rate",
            format!("≤ {}", percent(self.max_error_rate)),
            format!(
                "{} ({errors} of {}{})",
                percent(error_rate),
                r.attempted,
                error_breakdown(r)
            ),
            r.attempted > 0 && error_rate <= self.max_error_rate,
        ));
        let samples = r.recorder.corrected.len();
        o.checks.push(Check::new(
            "samples",
            format!("≥ {}", self.min_samples),
            samples.to_string(),
            samples >= self.min_samples,
        ));
        o.checks.push(Check::new(
            "rate sustained",
            format!("≥ {:.0} % of {}/s", SUSTAINED_SHARE * 100.0, p.rate_per_s),
            format!(
                "{achieved:.1}/s; schedule lag p99 {}",
                p99_text(&r.recorder.lag)
            ),
            sustained,
        ));
        if let Some(bound) = self.max_generator_lag {
            let (g, rt) = (&r.recorder.generator_lag, &r.recorder.runtime_lag);
            let own = Self::own_lag_p99(r);
            o.checks.push(Check::new(
                "generator lag",
                format!("≤ {} at p99", format_duration(bound)),
                match own {
                    None => "no samples".to_string(),
                    Some(_) => format!(
                        "sends p99 {}, runtime p99 {} ({} threads, {} connections)",
                        p99_text(g),
                        p99_text(rt),
                        r.threads,
                        p.connections
                    ),
                },
                own.is_some() && !self.over_bound(r),
            ));
        }
    }

    /// The one-line summary and the attribution ([`verdict`]). An aborted run, no response, too
    /// few samples, an explicit `max_generator_lag` exceeded, or a failure that only the
    /// generator's own lateness explains make the item an error that says why; a failure the
    /// target's part alone has fails through its check.
    pub(super) fn summarize(&self, o: &mut ProbeOutput, shown: &str, r: &LoadResult, rt: &Rates) {
        let p = &self.plan;
        let (h, u) = (&r.recorder.corrected, &r.recorder.uncorrected);
        let Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        } = *rt;
        let samples = h.len();
        let p99 = p99_text(h);
        o.summary = format!(
            "{shown}: p99 {p99} (uncorrected {}; the generator's own lag p99 {} is included) at {achieved:.1}/s of {}/s requested, {} requests, {errors} errors",
            p99_text(u),
            p99_text(&r.recorder.generator_lag),
            p.rate_per_s,
            r.attempted
        );
        let judged = self.judged(r);
        let blamed = |b: Blame| {
            judged
                .iter()
                .any(|(_, j)| j.is_some_and(|j| j.blame == Some(b)))
        };
        let lateness = Lateness::of(&r.recorder);
        let rate_blame = (!sustained).then(|| lateness.blame());
        let target_failed = blamed(Blame::Target)
            || rate_blame == Some(Blame::Target)
            || error_rate > self.max_error_rate;
        let generator_failed = blamed(Blame::Generator) || rate_blame == Some(Blame::Generator);

        if let Some(reason) = &r.aborted {
            o.forced = Some(Status::Error);
            o.summary = format!("{shown}: {} ({})", reason, o.summary);
        } else if r.responded == 0 {
            o.forced = Some(Status::Error);
            let first = r
                .first_error
                .values()
                .next()
                .cloned()
                .unwrap_or_else(|| "no response".into());
            o.summary = format!("{shown}: no request got a response: {first}");
        } else if samples < self.min_samples {
            o.forced = Some(Status::Error);
            o.summary = format!(
                "{shown}: only {samples} samples, fewer than min_samples = {} ({})",
                self.min_samples, o.summary
            );
        } else if self.over_bound(r) {
            o.forced = Some(Status::Error);
            o.summary = format!("{shown}: {}", self.bound_message(r, achieved));
        } else if generator_failed && !target_failed {
            o.forced = Some(Status::Error);
            o.summary = format!(
                "{shown}: {}",
                self.saturation_message(r, &judged, rate_blame, achieved)
            );
        } else if rate_blame == Some(Blame::Target) {
            let in_use = p.rate_per_s * u.mean() / 1e6;
            o.summary = format!(
                "{shown}: the target did not keep up with {}/s: {achieved:.1}/s achieved, every connection was busy ({:.0} % of the sends' lateness was spent waiting for a free connection; schedule lag p99 {}, the generator's own lag p99 {}); the wait is in the corrected latency (p99 {p99}).{}",
                p.rate_per_s,
                (1.0 - lateness.generator_share()) * 100.0,
                p99_text(&r.recorder.lag),
                p99_text(&r.recorder.generator_lag),
                if in_use > p.connections as f64 {
                    format!(
                        " At its mean service time of {} the rate needs about {in_use:.0} connections in flight (Little's law), more than the {} given; raise `connections` if real clients would use more",
                        fmt_us(u.mean()),
                        p.connections
                    )
                } else {
                    String::new()
                }
            );
        }
    }

    /// Where the generator was: threads, connections, CPU per request.
    fn generator_facts(&self, r: &LoadResult, achieved: f64) -> String {
        let p = &self.plan;
        let sent = (r.attempted + p.warmup_requests).max(1);
        format!(
            "at {achieved:.1}/s of {}/s on {} thread(s) with {} connections, {:.1} µs CPU per request",
            p.rate_per_s,
            r.threads,
            p.connections,
            r.cpu.as_secs_f64() * 1e6 / sent as f64,
        )
    }

    /// "load generator saturated: …" for a failure only the generator's own lateness explains:
    /// each such figure with the target's part beside it, the generator's lateness, and what to
    /// do about it.
    fn saturation_message(
        &self,
        r: &LoadResult,
        judged: &[(&Threshold, Option<verdict::Judged>)],
        rate_blame: Option<Blame>,
        achieved: f64,
    ) -> String {
        let g = &r.recorder.generator_lag;
        let mut misses: Vec<String> = judged
            .iter()
            .filter_map(|(t, j)| {
                let j = j.filter(|j| j.blame == Some(Blame::Generator))?;
                Some(format!(
                    "{} {} misses ≤ {}, but the target's part alone is {}{}",
                    t.key,
                    fmt_us(j.corrected_us),
                    format_duration(t.max),
                    fmt_us(j.target_us),
                    if j.runtime_us > 0.0 && j.target_us > t.max.as_micros() as f64 {
                        format!(
                            " (over by less than the generator runtime's own lateness, {})",
                            fmt_us(j.runtime_us)
                        )
                    } else {
                        String::new()
                    }
                ))
            })
            .collect();
        if rate_blame == Some(Blame::Generator) {
            let l = Lateness::of(&r.recorder);
            misses.push(format!(
                "the rate was not sustained, and {:.0} % of the sends' lateness was the generator's own with a connection free (mean {} against {} waiting for a busy connection)",
                l.generator_share() * 100.0,
                fmt_us(l.own_mean_us),
                fmt_us(l.wait_mean_us)
            ));
        }
        format!(
            "load generator saturated: {}; the difference is the generator's own lateness (sends on a free connection p99 {}, max {}; runtime p99 {}) {}. prodready cannot tell whether the target meets the gate. Run it again on a quieter machine (nothing else busy on its cores), at a lower rate, or split the rate over several generators whose .hlog files `prodready latency merge` combines",
            misses.join("; "),
            p99_text(g),
            fmt_us(g.max() as f64),
            p99_text(&r.recorder.runtime_lag),
            self.generator_facts(r, achieved),
        )
    }

    /// The message for an explicit `max_generator_lag` exceeded.
    fn bound_message(&self, r: &LoadResult, achieved: f64) -> String {
        let g = &r.recorder.generator_lag;
        format!(
            "load generator saturated: its own lag p99 {} exceeds max_generator_lag = {} (sends on a free connection p99 {}, max {}; runtime p99 {}; schedule lag p99 {}) {}; the latencies include the generator's lateness. Use a quieter machine, fewer connections, more cores (`threads`), a lower rate, or several generators whose .hlog files `prodready latency merge` combines",
            fmt_us(Self::own_lag_p99(r).unwrap_or(0) as f64),
            self.max_generator_lag
                .map(format_duration)
                .unwrap_or_default(),
            p99_text(g),
            fmt_us(g.max() as f64),
            p99_text(&r.recorder.runtime_lag),
            p99_text(&r.recorder.lag),
            self.generator_facts(r, achieved),
        )
    }
}

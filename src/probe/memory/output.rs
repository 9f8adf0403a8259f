//! From an analysis to the item's outcome: the figures for machines, the evidence (samples as
//! CSV, the trend chart), one growth check per judged segment, the limit checks and a summary
//! that never claims more than the fit shows.

use std::time::Duration;

use super::analysis::{self, Analysis};
use super::collect::{Collected, End};
use super::{MemoryProbe, chart, format_rate};
use crate::model::{Check, ProbeOutput, Status, Table};
use crate::probe::ProbeContext;
use crate::units::{format_bytes, format_duration};

impl MemoryProbe {
    /// The outcome of a sampled window `c` analysed as `a`.
    pub(super) fn output(&self, ctx: &ProbeContext, c: &Collected, a: &Analysis) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        self.measure_window(&mut o, c, a);
        // Evidence first: even an error outcome keeps what was sampled.
        if !c.samples.is_empty()
            && let Err(e) = self.write_evidence(ctx, &mut o, c, a)
        {
            return ProbeOutput::error(e);
        }
        o.tables.push(segment_table(a));
        let what = self.target.describe();
        let end_note = self.end_note(c);
        if c.samples.is_empty() {
            let mut e = ProbeOutput::error(format!(
                "no memory samples: {what} was never found in {}{}",
                format_duration(c.window),
                c.last_problem
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            ));
            e.measured = o.measured;
            e.tables = o.tables;
            return e;
        }
        if a.metric.is_none() {
            o.forced = Some(Status::Error);
            o.summary =
                "RssAnon is not reported on this platform; use metric = \"rss\" or \"auto\""
                    .to_string();
            return o;
        }

        // Gating checks, one per judged segment.
        let fits: Vec<&analysis::Segment> = a.segments.iter().filter(|s| s.fit.is_some()).collect();
        let best = a.longest_fit();
        if let Some(seg) = best {
            measure_fit(&mut o, seg);
        }
        self.growth_checks(&mut o, &fits);
        self.limit_checks(&mut o, c, a);
        if fits.is_empty() {
            o.forced = Some(Status::Error);
            o.summary = format!("{}{end_note}", self.too_few_samples(&mut o, c, a));
            return o;
        }
        let seg = best.expect("a fitted segment");
        self.summarize(&mut o, c, a, seg, &fits, &end_note);
        o
    }

    /// The window's figures: interval, length, warm-up, samples, restarts, drops, peak RSS.
    fn measure_window(&self, o: &mut ProbeOutput, c: &Collected, a: &Analysis) {
        o.measure("interval_ms", self.interval.as_millis() as u64);
        o.measure("window_s", round3(c.window.as_secs_f64()));
        o.measure("warmup_s", round3(self.warmup_for(c.window).as_secs_f64()));
        o.measure("samples", c.samples.len() as u64);
        o.measure("min_samples", u64::from(self.min_samples));
        o.measure("missed_samples", u64::from(c.missed));
        o.measure("restarts", a.restarts().count() as u64);
        o.measure("drops", a.drops.len() as u64);
        o.measure(
            "max_growth_bytes_per_hour",
            self.max_growth_bytes_per_hour.round(),
        );
        if let Some(peak) = a.peak_rss_bytes {
            o.measure("peak_rss_bytes", peak);
        }
        if let Some(m) = a.metric {
            o.measure("metric", m.proc_name());
        }
    }

    /// The samples as CSV and the SVG trend chart.
    fn write_evidence(
        &self,
        ctx: &ProbeContext,
        o: &mut ProbeOutput,
        c: &Collected,
        a: &Analysis,
    ) -> Result<(), String> {
        let csv = analysis::samples_csv(&c.samples, a);
        match ctx.write_evidence(
            "samples.csv",
            csv.as_bytes(),
            "memory samples (t_s, pid, rss_bytes, anon_bytes, segment, fitted)",
            "text/csv",
        ) {
            Ok(ev) => o.evidence.push(ev),
            Err(e) => return Err(format!("could not write the samples: {e}")),
        }
        let title = format!("Resident memory of {}", self.target.describe());
        match chart::render(&c.samples, a, &title) {
            Ok(svg) => match ctx.write_evidence(
                "memory-trend.svg",
                svg.as_bytes(),
                "memory trend with Theil–Sen fit",
                "image/svg+xml",
            ) {
                Ok(ev) => o.evidence.push(ev),
                Err(e) => {
                    return Err(format!("could not write the chart: {e}"));
                }
            },
            Err(e) => return Err(format!("could not draw the chart: {e}")),
        }
        Ok(())
    }

    /// Why sampling ended, as a summary suffix (`; sampled while "load" ran`).
    fn end_note(&self, c: &Collected) -> String {
        let what = self.target.describe();
        match c.end {
            Some(End::TargetGone) => format!(
                "; {what} exited after {} and was not followed (use pid_file or process to follow restarts)",
                format_duration(Duration::from_secs_f64(
                    c.samples.last().map(|s| s.t_s).unwrap_or(0.0)
                ))
            ),
            Some(End::DuringDone) => format!(
                "; sampled while \"{}\" ran",
                self.during.as_deref().unwrap_or("")
            ),
            _ => String::new(),
        }
    }

    /// One growth check per judged segment, and the advisory "leak ruled out" check.
    fn growth_checks(&self, o: &mut ProbeOutput, fits: &[&analysis::Segment]) {
        for seg in fits {
            let f = seg.fit.as_ref().expect("fit");
            let name = if fits.len() == 1 {
                "memory growth".to_string()
            } else {
                format!("memory growth (segment {}, pid {})", seg.index + 1, seg.pid)
            };
            o.checks.push(Check::new(
                name,
                format!(
                    "≤ {} (lower 95 % bound of the Theil–Sen slope of {}, when Mann–Kendall finds a trend and the tail keeps growing)",
                    self.max_growth_text,
                    f.metric.proc_name()
                ),
                format!(
                    "lower bound {}; slope {} (95 % CI {} … {}); Mann–Kendall (Hamed–Rao): {}, {}; tail {}; {}",
                    format_rate(f.low_bph()),
                    format_rate(f.slope_bph()),
                    format_rate(f.low_bph()),
                    format_rate(f.high_bph()),
                    f.mk.trend.as_str(),
                    format_p(f.mk.p),
                    if f.tail.growing() {
                        "growing"
                    } else {
                        "not growing"
                    },
                    projection(seg).unwrap_or_else(|| not_established(f))
                ),
                !f.leaking,
            ));
        }
        // Nothing judged (too few samples): no check may read like a finding.
        if fits.is_empty() {
            return;
        }
        // A pass only means something when the interval rules out growth at the allowed rate;
        // a window too short or too noisy to do that is said so (advisory: it warns).
        let unresolved: Vec<String> = fits
            .iter()
            .filter_map(|seg| {
                let f = seg.fit.as_ref()?;
                (!f.leaking && !f.ruled_out).then(|| {
                    if fits.len() == 1 {
                        format_rate(f.high_bph())
                    } else {
                        format!("{} (segment {})", format_rate(f.high_bph()), seg.index + 1)
                    }
                })
            })
            .collect();
        if !fits
            .iter()
            .any(|s| s.fit.as_ref().is_some_and(|f| f.leaking))
        {
            o.checks.push(
                Check::new(
                    "leak ruled out",
                    format!("upper 95 % bound of the slope ≤ {}", self.max_growth_text),
                    if unresolved.is_empty() {
                        "yes".to_string()
                    } else {
                        format!(
                            "upper bound {}: growth at the allowed rate cannot be ruled out in this window; sample longer or at a steadier load",
                            unresolved.join(", ")
                        )
                    },
                    unresolved.is_empty(),
                )
                .advisory(),
            );
        }
    }

    /// The `max_rss` ceiling and the advisory restarts check.
    fn limit_checks(&self, o: &mut ProbeOutput, c: &Collected, a: &Analysis) {
        if let (Some(limit), Some(peak)) = (self.max_rss_bytes, a.peak_rss_bytes) {
            o.checks.push(Check::new(
                "peak RSS",
                format!("≤ {}", format_bytes(limit)),
                format_bytes(peak),
                peak <= limit,
            ));
        }
        let restarts: Vec<String> = a.restarts().map(|r| r.describe()).collect();
        if !restarts.is_empty() || c.end == Some(End::TargetGone) {
            let mut measured = restarts.join("; ");
            if c.end == Some(End::TargetGone) {
                if !measured.is_empty() {
                    measured.push_str("; ");
                }
                measured.push_str("the process exited before the window ended");
            }
            o.checks
                .push(Check::new("restarts", "none during the window", measured, false).advisory());
        }
    }

    /// The one-line summary of the longest judged segment, with restarts and drops.
    fn summarize(
        &self,
        o: &mut ProbeOutput,
        c: &Collected,
        a: &Analysis,
        seg: &analysis::Segment,
        fits: &[&analysis::Segment],
        end_note: &str,
    ) {
        let f = seg.fit.as_ref().expect("fit");
        let any =
            |p: fn(&analysis::Fit) -> bool| fits.iter().any(|s| s.fit.as_ref().is_some_and(p));
        // The headline never claims more than the interval shows: a pass whose interval does
        // not rule out the allowed growth is inconclusive, and growth below the allowed rate
        // that is established is said to be growth.
        let headline = if any(|f| f.leaking) {
            "memory keeps growing".to_string()
        } else if any(|f| !f.ruled_out) {
            format!(
                "inconclusive: growth at {} cannot be ruled out in this window",
                self.max_growth_text
            )
        } else if f.established {
            format!(
                "no leak: memory grows, but below {} with 95 % confidence",
                self.max_growth_text
            )
        } else {
            "no leak detected".to_string()
        };
        o.summary = format!(
            "{headline}: {} slope {} (95 % CI {} … {}), Mann–Kendall: {} ({}); {}; {} {} over {}{}{end_note}",
            f.metric.proc_name(),
            format_rate(f.slope_bph()),
            format_rate(f.low_bph()),
            format_rate(f.high_bph()),
            f.mk.trend.as_str(),
            format_p(f.mk.p),
            projection(seg).unwrap_or_else(|| format!("{}, no projection", not_established(f))),
            c.samples.len(),
            if c.samples.len() == 1 {
                "sample"
            } else {
                "samples"
            },
            format_duration(c.window),
            match a.restarts().count() {
                0 => String::new(),
                n => format!(", {n} restart(s)"),
            },
        );
        if let [first, ..] = a.drops.as_slice() {
            o.summary.push_str(&format!(
                "; memory fell by more than half {} time(s) within one process (first: {}), \
                 taken as its allocation cycle, not a restart",
                a.drops.len(),
                first.describe()
            ));
        }
    }
}

/// A table with one row per segment.
fn segment_table(a: &Analysis) -> Table {
    let rows = a
        .segments
        .iter()
        .map(|s| {
            let t = |i: usize| format!("{i}");
            let (slope, ci, mk, verdict) = match &s.fit {
                Some(f) => (
                    format_rate(f.slope_bph()),
                    format!(
                        "{} … {}",
                        format_rate(f.low_bph()),
                        format_rate(f.high_bph())
                    ),
                    format!("{}, {}", f.mk.trend.as_str(), format_p(f.mk.p)),
                    if f.leaking {
                        "leak"
                    } else if f.ruled_out {
                        "no leak"
                    } else {
                        "inconclusive: the allowed growth is not ruled out"
                    }
                    .to_string(),
                ),
                None => (
                    "—".into(),
                    "—".into(),
                    "—".into(),
                    "not judged: too few samples after warm-up".into(),
                ),
            };
            vec![
                t(s.index + 1),
                s.pid.to_string(),
                s.cut
                    .map(|c| c.describe())
                    .unwrap_or_else(|| "start of the window".into()),
                t(s.range.len()),
                t(s.used.len()),
                slope,
                ci,
                mk,
                verdict,
            ]
        })
        .collect();
    Table {
        title: "Segments (the series is split at restarts)".into(),
        columns: [
            "segment",
            "pid",
            "starts with",
            "samples",
            "after warm-up",
            "Theil–Sen slope",
            "95 % CI",
            "Mann–Kendall (Hamed–Rao)",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }
}

/// The headline fit's figures for machines. The projection and the growth it was projected
/// from are recorded only when growth is established ([`analysis::established`]).
fn measure_fit(o: &mut ProbeOutput, seg: &analysis::Segment) {
    let Some(f) = seg.fit.as_ref() else { return };
    o.measure("slope_bytes_per_hour", round3(f.slope_bph()));
    o.measure("slope_low_bytes_per_hour", round3(f.low_bph()));
    o.measure("slope_high_bytes_per_hour", round3(f.high_bph()));
    o.measure("growth_established", f.established);
    o.measure("growth_ruled_out", f.ruled_out);
    if let Some(p) = f.projected_24h_bytes() {
        o.measure("projected_growth_24h_bytes", round3(p));
        o.measure("projected_from_growth_bytes", round3(f.seen_bytes));
        o.measure("projected_from_span_s", round3(f.span_s));
    }
    o.measure("mann_kendall_trend", f.mk.trend.as_str());
    o.measure("mann_kendall_p", f.mk.p);
    o.measure("mann_kendall_z", round3(f.mk.z));
    o.measure("autocorrelation_factor", round3(f.mk.n_ns));
    o.measure("tail_floor_rise_bytes", f.tail.floor_rise_bytes);
    o.measure("tail_peak_rise_bytes", f.tail.peak_rise_bytes);
    o.measure("tail_growing", f.tail.growing());
    o.measure("growth_rests_on_steps", f.rests_on_steps);
    o.measure("samples_fitted", f.n as u64);
}

/// The 24 h projection of an established growth, with what it was projected from: `+56.2 MiB
/// in 24 h, projected from +16.0 KiB seen over 19.00 s (20 samples)`; `None` when growth is not
/// established in `seg`.
fn projection(seg: &analysis::Segment) -> Option<String> {
    let f = seg.fit.as_ref()?;
    let p = f.projected_24h_bytes()?;
    Some(format!(
        "{} in 24 h, projected from {} seen over {} ({} samples)",
        format_amount(p),
        format_amount(f.seen_bytes),
        format_duration(Duration::from_secs_f64(f.span_s.max(0.0))),
        seg.used.len()
    ))
}

/// Why a segment projects nothing: growth not established, or established only by a few steps.
fn not_established(f: &analysis::Fit) -> String {
    if f.rests_on_steps {
        format!(
            "growth rests on the series' {} largest steps (an allocator extending its heap once \
             or twice looks the same), not established in this window",
            super::fit::STEPS_SET_ASIDE
        )
    } else {
        "growth not established".to_string()
    }
}

/// A signed amount of memory, e.g. `+16.0 KiB`, `-2.00 MiB`.
fn format_amount(bytes: f64) -> String {
    format_rate(bytes).trim_end_matches("/h").to_string()
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A p-value for people: `p = 0.042`, `p < 0.001`.
pub fn format_p(p: f64) -> String {
    if p.is_nan() {
        "p n/a".into()
    } else if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_format_with_sign_and_unit() {
        assert_eq!(format_rate(5.0 * 1024.0 * 1024.0), "+5.00 MiB/h");
        assert_eq!(format_rate(-2048.0), "-2.00 KiB/h");
        assert_eq!(format_rate(1.76 * 1024.0 * 1024.0 * 1024.0), "+1.76 GiB/h");
        assert_eq!(format_rate(123.4 * 1024.0), "+123 KiB/h");
        assert_eq!(format_rate(12.0), "+12 B/h");
        assert_eq!(format_rate(f64::NAN), "n/a");
    }
}

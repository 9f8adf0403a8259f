//! From samples to a verdict: split the series at restarts, drop each segment's warm-up, fit
//! the rest and decide whether it leaks (the fit and its rules are in `fit`, re-exported here).
//! Pure functions of the samples, so the decision can be tested without waiting for a process.

use std::ops::Range;

use super::fit::fit;
pub use super::fit::{Fit, TailGrowth, established};
pub use super::series::{Metric, MetricChoice, Sample, Settings};
use crate::units::format_bytes;

/// Why a segment starts (every segment but the first has one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cut {
    /// Another process (a new PID, or the same PID with another start time).
    NewProcess {
        /// Seconds since sampling started, first sample of the new process.
        t_s: f64,
        /// The previous process.
        from_pid: u32,
        /// The new process.
        to_pid: u32,
    },
    /// The memory fell by more than half between two samples of the same process.
    Drop {
        /// Seconds since sampling started, first sample after the drop.
        t_s: f64,
        /// The process.
        pid: u32,
        /// Bytes before.
        from_bytes: u64,
        /// Bytes after.
        to_bytes: u64,
    },
}

impl Cut {
    /// One line for people.
    pub fn describe(&self) -> String {
        match *self {
            Cut::NewProcess {
                t_s,
                from_pid,
                to_pid,
            } => format!("pid {from_pid} replaced by pid {to_pid} at {t_s:.1} s"),
            Cut::Drop {
                t_s,
                pid,
                from_bytes,
                to_bytes,
            } => format!(
                "memory of pid {pid} fell from {} to {} at {t_s:.1} s",
                format_bytes(from_bytes),
                format_bytes(to_bytes)
            ),
        }
    }
}

/// A stretch of samples of one process without a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// 0-based position.
    pub index: usize,
    /// Process id.
    pub pid: u32,
    /// Indices into the samples.
    pub range: Range<usize>,
    /// Indices of the samples after warm-up (a tail of `range`).
    pub used: Range<usize>,
    /// Why it starts, for every segment but the first.
    pub cut: Option<Cut>,
    /// The fit, when the segment has enough samples after warm-up.
    pub fit: Option<Fit>,
}

/// The whole analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The figure fitted; `None` when `RssAnon` was required but not reported.
    pub metric: Option<Metric>,
    /// Segments in time order.
    pub segments: Vec<Segment>,
    /// Largest `VmRSS` of any sample, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Drops of more than half between two samples of one process ([`Cut::Drop`]), in time
    /// order. They are listed, never split the series: the same PID with the same start time is
    /// the same process, and a large allocator or garbage-collector cycle can free half its
    /// memory once in a short window as easily as every few seconds in a long one.
    pub drops: Vec<Cut>,
}

/// Where the series splits: the index of the first sample of each new process, with the
/// restart; and every drop of more than half within one process.
fn find_cuts(samples: &[Sample], metric: Metric) -> (Vec<(usize, Cut)>, Vec<Cut>) {
    let mut restarts = Vec::new();
    let mut drops = Vec::new();
    for (i, pair) in samples.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        if (a.pid, a.started) != (b.pid, b.started) {
            restarts.push((
                i + 1,
                Cut::NewProcess {
                    t_s: b.t_s,
                    from_pid: a.pid,
                    to_pid: b.pid,
                },
            ));
        } else if let (Some(x), Some(y)) = (metric.of(a), metric.of(b))
            && (y as f64) < 0.5 * x as f64
        {
            drops.push(Cut::Drop {
                t_s: b.t_s,
                pid: b.pid,
                from_bytes: x,
                to_bytes: y,
            });
        }
    }
    (restarts, drops)
}

impl Analysis {
    /// Every restart (a new process) seen, in time order: where the series splits.
    pub fn restarts(&self) -> impl Iterator<Item = &Cut> {
        self.segments.iter().filter_map(|s| s.cut.as_ref())
    }

    /// The fitted segment with the most samples (the one the headline figures describe).
    pub fn longest_fit(&self) -> Option<&Segment> {
        self.segments
            .iter()
            .filter(|s| s.fit.is_some())
            .max_by_key(|s| {
                (
                    s.fit.map(|f| f.n * f.step).unwrap_or(0),
                    usize::MAX - s.index,
                )
            })
    }
}

/// Split, fit and decide.
pub fn analyze(samples: &[Sample], settings: &Settings) -> Analysis {
    let has_anon = !samples.is_empty() && samples.iter().all(|s| s.anon_bytes.is_some());
    let metric = match settings.metric {
        MetricChoice::Rss => Some(Metric::Rss),
        MetricChoice::Anon if has_anon => Some(Metric::Anon),
        MetricChoice::Anon => None,
        MetricChoice::Auto if has_anon => Some(Metric::Anon),
        MetricChoice::Auto => Some(Metric::Rss),
    };
    let split_metric = metric.unwrap_or(Metric::Rss);
    let (restarts, drops) = find_cuts(samples, split_metric);
    let mut segments: Vec<Segment> = Vec::new();
    let mut start = 0;
    let mut cut = None;
    for (i, next_cut) in restarts
        .into_iter()
        .map(|(i, c)| (i, Some(c)))
        .chain(std::iter::once((samples.len(), None)))
    {
        if i > start {
            segments.push(segment(
                samples,
                segments.len(),
                start..i,
                cut,
                metric,
                settings,
            ));
        }
        start = i;
        cut = next_cut;
    }
    Analysis {
        metric,
        segments,
        drops,
        peak_rss_bytes: samples.iter().map(|s| s.rss_bytes).max(),
    }
}

fn segment(
    samples: &[Sample],
    index: usize,
    range: Range<usize>,
    cut: Option<Cut>,
    metric: Option<Metric>,
    settings: &Settings,
) -> Segment {
    // The first segment's warm-up runs from the start of sampling; later ones from the restart.
    let origin = if index == 0 {
        0.0
    } else {
        samples[range.start].t_s
    };
    let first_used = (range.start..range.end)
        .find(|&i| samples[i].t_s - origin >= settings.warmup_s)
        .unwrap_or(range.end);
    let used = first_used..range.end;
    let fit = metric.and_then(|m| fit(samples, used.clone(), m, settings));
    Segment {
        index,
        pid: samples[range.start].pid,
        range,
        used,
        cut,
        fit,
    }
}

/// The samples as CSV: `t_s,pid,rss_bytes,anon_bytes,segment,fitted` (segment 1-based; fitted
/// is 1 for samples after warm-up in a judged segment). `anon_bytes` is empty where unknown.
pub fn samples_csv(samples: &[Sample], a: &Analysis) -> String {
    let mut out = String::from("t_s,pid,rss_bytes,anon_bytes,segment,fitted\n");
    for seg in &a.segments {
        for i in seg.range.clone() {
            let s = &samples[i];
            let fitted = seg.fit.is_some() && seg.used.contains(&i);
            out.push_str(&format!(
                "{:.3},{},{},{},{},{}\n",
                s.t_s,
                s.pid,
                s.rss_bytes,
                s.anon_bytes.map(|v| v.to_string()).unwrap_or_default(),
                seg.index + 1,
                u8::from(fitted)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn settings() -> Settings {
        Settings {
            warmup_s: 5.0,
            min_samples: 20,
            metric: MetricChoice::Auto,
            max_growth_bytes_per_hour: 5.0 * MIB,
        }
    }

    fn s(t: f64, pid: u32, anon: f64) -> Sample {
        Sample {
            t_s: t,
            pid,
            started: u64::from(pid) * 10,
            rss_bytes: (anon + 10.0 * MIB) as u64,
            anon_bytes: Some(anon as u64),
        }
    }

    #[test]
    fn steady_growth_is_a_leak_and_the_slope_is_recovered() {
        // 1 MiB per minute with a deterministic ±0.5 MiB wobble.
        let samples: Vec<Sample> = (0..120)
            .map(|i| {
                let t = f64::from(i);
                let wobble = if i % 3 == 0 { 0.5 * MIB } else { -0.25 * MIB };
                s(t, 7, 100.0 * MIB + t * MIB / 60.0 + wobble)
            })
            .collect();
        let a = analyze(&samples, &settings());
        assert_eq!(a.metric, Some(Metric::Anon));
        assert_eq!(a.segments.len(), 1);
        let f = a.segments[0].fit.expect("fitted");
        assert_eq!(a.segments[0].used.len(), 115, "5 s of warm-up dropped");
        assert!(f.leaking && f.established && !f.ruled_out);
        assert!(f.tail.growing());
        assert!(f.projected_24h_bytes().is_some_and(|p| p > 1000.0 * MIB));
        assert!(
            (f.slope_bph() / (60.0 * MIB) - 1.0).abs() < 0.05,
            "{}",
            f.slope_bph()
        );
    }

    #[test]
    fn sawtooth_whose_phase_tilts_the_slope_is_not_a_leak() {
        // 9.6 teeth from 20 to 40 MiB: the window ends on a ramp, which tilts the Theil–Sen
        // slope upwards, but floor and peak stay where they were.
        let samples: Vec<Sample> = (0..48)
            .map(|i| s(f64::from(i), 7, (20.0 + 5.0 * f64::from(i % 5)) * MIB))
            .collect();
        let a = analyze(
            &samples,
            &Settings {
                warmup_s: 0.0,
                max_growth_bytes_per_hour: MIB,
                ..settings()
            },
        );
        let f = a.segments[0].fit.expect("fitted");
        assert_eq!(f.tail.floor_rise_bytes, 0.0);
        assert_eq!(f.tail.peak_rise_bytes, 0.0);
        assert!(!f.leaking);
    }

    #[test]
    fn a_restart_splits_the_series_and_a_large_drop_does_not() {
        let mut samples: Vec<Sample> = (0..40).map(|i| s(f64::from(i), 7, 100.0 * MIB)).collect();
        samples.extend((40..80).map(|i| s(f64::from(i), 9, 100.0 * MIB)));
        samples.extend((80..120).map(|i| s(f64::from(i), 9, 30.0 * MIB)));
        let a = analyze(&samples, &settings());
        let restarts: Vec<Cut> = a.restarts().copied().collect();
        assert_eq!(restarts.len(), 1);
        assert!(matches!(
            restarts[0],
            Cut::NewProcess {
                from_pid: 7,
                to_pid: 9,
                ..
            }
        ));
        assert_eq!(a.drops.len(), 1);
        assert!(matches!(a.drops[0], Cut::Drop { pid: 9, .. }));
        // Warm-up applies again after the restart: 40 − 5 = 35 (first), 80 − 5 = 75 (second).
        let used: Vec<usize> = a.segments.iter().map(|s| s.used.len()).collect();
        assert_eq!(used, vec![35, 75]);
        assert!(a.segments.iter().all(|s| s.fit.is_some_and(|f| !f.leaking)));
    }

    #[test]
    fn recurring_large_drops_are_a_cycle_not_restarts() {
        // A sawtooth from 20 to 50 MiB with a period of 10 samples: every drop is > 50 %.
        let samples: Vec<Sample> = (0..100)
            .map(|i| s(f64::from(i), 7, (20.0 + 3.0 * f64::from(i % 10)) * MIB))
            .collect();
        let a = analyze(&samples, &settings());
        assert_eq!(a.segments.len(), 1);
        assert_eq!(a.drops.len(), 9);
        assert!(a.segments[0].fit.is_some_and(|f| !f.leaking));
    }

    #[test]
    fn one_allocator_drop_in_a_short_window_is_not_a_restart() {
        // A slow sawtooth (period 60 samples) seen for 45 samples: its one drop of more than
        // half, at sample 25, must neither split the window nor leave it unjudged.
        let samples: Vec<Sample> = (0..45)
            .map(|i| s(f64::from(i), 7, (20.0 + f64::from((i + 35) % 60)) * MIB))
            .collect();
        let a = analyze(
            &samples,
            &Settings {
                min_samples: 30,
                ..settings()
            },
        );
        assert_eq!(a.drops.len(), 1, "{:?}", a.drops);
        assert_eq!(a.restarts().count(), 0);
        assert_eq!(a.segments.len(), 1);
        let f = a.segments[0].fit.expect("judged, not too few samples");
        assert!(!f.leaking);
    }

    #[test]
    fn a_flat_series_establishes_no_growth_and_projects_nothing() {
        let samples: Vec<Sample> = (0..40).map(|i| s(f64::from(i), 7, 100.0 * MIB)).collect();
        let f = analyze(&samples, &settings()).segments[0]
            .fit
            .expect("fitted");
        assert!(!f.established && !f.leaking && f.ruled_out);
        assert_eq!(f.projected_24h_bytes(), None);
        assert_eq!(f.seen_bytes, 0.0);
    }

    #[test]
    fn noise_without_a_trend_is_inconclusive_and_projects_nothing() {
        // ±1 MiB of deterministic trendless wobble (steps of the golden angle) around 100 MiB.
        let samples: Vec<Sample> = (0..40)
            .map(|i| {
                let noise = (f64::from(i) * 2.399_963).sin() * MIB;
                s(f64::from(i), 7, 100.0 * MIB + noise)
            })
            .collect();
        let f = analyze(
            &samples,
            &Settings {
                max_growth_bytes_per_hour: 1024.0,
                ..settings()
            },
        )
        .segments[0]
            .fit
            .expect("fitted");
        assert!(
            f.theil_sen.low_slope < 0.0 && f.theil_sen.high_slope > 0.0,
            "{f:?}"
        );
        assert!(!f.established && !f.leaking);
        assert!(
            !f.ruled_out,
            "1 KiB/h cannot be ruled out under 1 MiB of noise"
        );
        assert_eq!(f.projected_24h_bytes(), None);
    }

    #[test]
    fn small_steady_growth_is_established_and_projected_from_what_was_seen() {
        // 16 KiB over 19 s in 1 KiB steps: established, far below 10 MiB/h, so no leak.
        let samples: Vec<Sample> = (0..25)
            .map(|i| {
                let kib = f64::from(i.clamp(5, 21) - 5);
                s(f64::from(i), 7, 100.0 * MIB + kib * 1024.0)
            })
            .collect();
        let f = analyze(
            &samples,
            &Settings {
                max_growth_bytes_per_hour: 10.0 * MIB,
                ..settings()
            },
        )
        .segments[0]
            .fit
            .expect("fitted");
        assert!(f.established && !f.leaking && f.ruled_out, "{f:?}");
        assert_eq!((f.seen_bytes, f.span_s), (16.0 * 1024.0, 19.0));
        let p = f.projected_24h_bytes().expect("projected");
        assert_eq!(p, f.slope_bph() * 24.0);
    }

    #[test]
    fn growth_that_rests_on_two_steps_is_not_a_leak_and_many_steps_are() {
        // 25 samples, flat but for two rises of 200 KiB: an allocator extending its heap. The
        // slope's interval excludes zero, but set the two steps aside and nothing grows.
        let kib = 1024.0;
        let stepped = |steps: &[i32]| -> Vec<Sample> {
            (0..25)
                .map(|i| {
                    let up = steps.iter().filter(|&&at| i >= at).count() as f64;
                    s(f64::from(i), 7, 100.0 * MIB + up * 200.0 * kib)
                })
                .collect()
        };
        let tight = Settings {
            max_growth_bytes_per_hour: 5.0 * MIB,
            min_samples: 20,
            ..settings()
        };
        let two = analyze(&stepped(&[9, 16]), &tight).segments[0]
            .fit
            .expect("fitted");
        assert!(two.theil_sen.low_slope > 0.0, "{two:?}");
        assert!(
            two.rests_on_steps && !two.established && !two.leaking,
            "{two:?}"
        );
        assert!(!two.ruled_out, "two steps do not rule growth out either");
        assert_eq!(two.projected_24h_bytes(), None);
        // Ten such steps in the same window are growth, and a leak at 5 MiB/h.
        let ten = analyze(&stepped(&[2, 4, 6, 8, 10, 12, 14, 16, 18, 20]), &tight).segments[0]
            .fit
            .expect("fitted");
        assert!(
            !ten.rests_on_steps && ten.established && ten.leaking,
            "{ten:?}"
        );
    }

    #[test]
    fn too_few_samples_are_not_judged() {
        let samples: Vec<Sample> = (0..15)
            .map(|i| s(f64::from(i), 7, 1e8 + f64::from(i) * 1e6))
            .collect();
        let a = analyze(&samples, &settings());
        assert!(a.segments[0].fit.is_none());
        assert!(a.longest_fit().is_none());
    }

    #[test]
    fn anon_required_but_missing_gives_no_metric() {
        let mut samples: Vec<Sample> = (0..30).map(|i| s(f64::from(i), 7, 1e8)).collect();
        samples[3].anon_bytes = None;
        let a = analyze(
            &samples,
            &Settings {
                metric: MetricChoice::Anon,
                ..settings()
            },
        );
        assert_eq!(a.metric, None);
        let a = analyze(&samples, &settings());
        assert_eq!(a.metric, Some(Metric::Rss), "auto falls back to VmRSS");
    }

    #[test]
    fn csv_has_one_row_per_sample() {
        let samples: Vec<Sample> = (0..30).map(|i| s(f64::from(i), 7, 1e8)).collect();
        let a = analyze(&samples, &settings());
        let csv = samples_csv(&samples, &a);
        assert_eq!(csv.lines().count(), 31);
        assert!(csv.starts_with("t_s,pid,rss_bytes,anon_bytes,segment,fitted\n0.000,7,"));
        assert!(csv.ends_with(",1,1\n"));
    }
}

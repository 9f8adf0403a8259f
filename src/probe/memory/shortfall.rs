//! What a window too short to judge would have needed: the window (or the interval) that
//! leaves `min_samples` samples after warm-up, said in the checklist's own terms so the fix can
//! be copied into it. Nothing here reads like a finding.

use std::time::Duration;

use super::analysis::Analysis;
use super::collect::{Collected, End};
use super::{DEFAULT_WARMUP, DURING_WARMUP_FRACTION, MIN_INTERVAL, MemoryProbe};
use crate::model::ProbeOutput;
use crate::units::format_duration;

impl MemoryProbe {
    /// A sampling window that leaves `min_samples` samples after warm-up, rounded up to whole
    /// seconds: warm-up plus `min_samples + 1` intervals (one to spare: the sample due at the
    /// very end of a window may fall just outside it, and a busy machine may skip a tick).
    /// With `during` and no `warmup` key the warm-up grows with the window (a tenth of it, at
    /// most 30 s), and so does the answer.
    fn window_needed(&self) -> Duration {
        let fitted = self.interval.as_secs_f64() * f64::from(self.min_samples + 1);
        let secs = match (self.warmup, &self.during) {
            (Some(w), _) => w.as_secs_f64() + fitted,
            (None, Some(_)) => {
                let proportional = fitted / (1.0 - DURING_WARMUP_FRACTION);
                if proportional * DURING_WARMUP_FRACTION <= DEFAULT_WARMUP.as_secs_f64() {
                    proportional
                } else {
                    fitted + DEFAULT_WARMUP.as_secs_f64()
                }
            }
            (None, None) => DEFAULT_WARMUP.as_secs_f64() + fitted,
        };
        // 18 / 0.9 is 20.000000000000004 in floating point: 20 s, not 21.
        Duration::from_secs((secs - 1e-6).ceil().max(1.0) as u64)
    }

    /// The longest interval (whole 100 ms, at least [`MIN_INTERVAL`]) that gives `min_samples`
    /// samples after warm-up, one to spare, in the window sampled; `None` when only an interval
    /// below the minimum, or none shorter than now, would.
    fn interval_needed(&self, window: Duration) -> Option<Duration> {
        let fitted_s = window.saturating_sub(self.warmup_for(window)).as_secs_f64();
        let tenths = (fitted_s / f64::from(self.min_samples + 1) * 10.0 + 1e-6).floor();
        let interval = Duration::from_millis(tenths as u64 * 100);
        (interval >= MIN_INTERVAL && interval < self.interval).then_some(interval)
    }

    /// The summary of a window too short to judge, with the numbers that would be enough: what
    /// the warm-up left, and the window (or interval) that gives `min_samples`. Records the
    /// figures in `o`.
    pub(super) fn too_few_samples(
        &self,
        o: &mut ProbeOutput,
        c: &Collected,
        a: &Analysis,
    ) -> String {
        let got = a.segments.iter().map(|s| s.used.len()).max().unwrap_or(0);
        let need = self.window_needed();
        o.measure("samples_after_warmup", got as u64);
        o.measure("window_needed_s", need.as_secs());
        let restarts = a.restarts().count();
        let ran = format_duration(c.window);
        let longer = if restarts > 0 {
            format!(
                "at least {} of sampling between restarts",
                whole_seconds(need)
            )
        } else {
            match c.end {
                Some(End::DuringDone) => format!(
                    "a load of at least {} (\"{}\" ran {ran})",
                    whole_seconds(need),
                    self.during.as_deref().unwrap_or("")
                ),
                Some(End::TargetGone) => format!(
                    "a target that stays up for at least {} of sampling",
                    whole_seconds(need)
                ),
                _ => format!("`duration = \"{}\"` (sampled {ran})", toml_duration(need)),
            }
        };
        let shorter = (restarts == 0)
            .then(|| self.interval_needed(c.window))
            .flatten()
            .map(|i| format!(", or `interval = \"{}\"`,", toml_duration(i)))
            .unwrap_or_default();
        format!(
            "too few samples to judge a trend: after the {} warm-up, {got} samples at {}{} \
             (min_samples = {}); {longer}{shorter} gives the {} needed",
            format_duration(self.warmup_for(c.window)),
            format_duration(self.interval),
            if restarts > 0 {
                format!(" in the longest of {} segments", restarts + 1)
            } else {
                String::new()
            },
            self.min_samples,
            self.min_samples
        )
    }
}

/// A whole number of seconds for people: `23 s`; from 2 minutes on as humantime (`2m 30s`).
fn whole_seconds(d: Duration) -> String {
    if d.as_secs() < 120 {
        format!("{} s", d.as_secs())
    } else {
        format_duration(d)
    }
}

/// A duration as a checklist value: `"23s"`, `"1500ms"`.
fn toml_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::tests::raw;
    use super::*;

    #[test]
    fn the_window_needed_follows_warmup_interval_and_min_samples() {
        let secs = |extra: &str| {
            raw(&format!("pid = 1\n{extra}"))
                .expect("valid")
                .window_needed()
                .as_secs()
        };
        // A fixed warm-up: warm-up plus min_samples intervals, and one to spare.
        assert_eq!(
            secs("interval = \"1s\"\nwarmup = \"2s\"\nmin_samples = 20"),
            23
        );
        assert_eq!(secs("interval = \"5s\""), 30 + 155);
        // With `during` the warm-up is a tenth of the window, at most 30 s.
        assert_eq!(secs("during = \"load\"\ninterval = \"1s\""), 24);
        assert_eq!(
            secs("during = \"load\"\ninterval = \"1s\"\nmin_samples = 17"),
            20
        );
        assert_eq!(
            secs("during = \"load\"\ninterval = \"5s\"\nmin_samples = 100"),
            535
        );
    }

    #[test]
    fn a_shorter_interval_is_offered_only_down_to_the_minimum() {
        let p =
            raw("pid = 1\ninterval = \"5s\"\nwarmup = \"2s\"\nmin_samples = 20").expect("valid");
        assert_eq!(
            p.interval_needed(Duration::from_secs(44)),
            Some(Duration::from_millis(2000))
        );
        assert_eq!(
            p.interval_needed(Duration::from_secs(40)),
            Some(Duration::from_millis(1800))
        );
        assert_eq!(
            p.interval_needed(Duration::from_secs(20)),
            None,
            "0.8 s < 1 s"
        );
        assert_eq!(
            p.interval_needed(Duration::from_secs(500)),
            None,
            "not shorter"
        );
        assert_eq!(toml_duration(Duration::from_millis(1900)), "1900ms");
        assert_eq!(toml_duration(Duration::from_secs(23)), "23s");
    }
}

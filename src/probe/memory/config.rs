//! The `memory` probe's checklist table: [`RawMemoryProbe`] as written, checked into a
//! [`MemoryProbe`]. The checks that only make sense together live here too: a fixed window must
//! leave `min_samples` samples after its warm-up, and `during` may be set on the item or in its
//! probe table, not both.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::analysis::MetricChoice;
use super::{
    DEFAULT_INTERVAL, DEFAULT_MIN_SAMPLES, DEFAULT_MIN_SAMPLES_DURING, DEFAULT_WARMUP,
    MIN_INTERVAL, MIN_MIN_SAMPLES, MemoryProbe, Target, during_warmup,
};
use crate::probe::{FieldError, Validator};
use crate::units::format_duration;

/// `kind = "memory"`: sample a process's resident memory and test it for a leak.
///
/// Exactly one target: `service`, `pid`, `pid_file` or `process`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMemoryProbe {
    /// Name of a `[[service]]` of this checklist; its main process is sampled.
    pub service: Option<String>,
    /// A process id.
    pub pid: Option<u32>,
    /// A file holding the process id (relative to the checklist); re-read at every sample, so a
    /// restarted process is followed. `${VAR}` is interpolated.
    pub pid_file: Option<String>,
    /// A regular expression matched against each process's command line (argv joined by
    /// spaces), e.g. `"^python3 .*worker\\.py"`; exactly one process must match. Looked up again
    /// when the process disappears, so a restarted process is followed.
    pub process: Option<String>,
    /// Time between samples (humantime), at least `"1s"`. Default `"5s"`.
    pub interval: Option<String>,
    /// How long to sample, warm-up included (humantime). Default `"10m"`; with `during`, the
    /// longest time to sample (default: until the `during` item finishes).
    pub duration: Option<String>,
    /// Samples in the first `warmup` of the window, and of every segment after a restart, are
    /// recorded but not fitted (humantime). Default `"30s"`; with `during`, 10 % of the time
    /// actually sampled, at most `"30s"`, so a short load item still leaves a series to judge.
    pub warmup: Option<String>,
    /// Id of another item (e.g. the order-latency item) that drives load: sampling starts with
    /// it and stops when it finishes.
    pub during: Option<String>,
    /// Allowed growth as size per time, e.g. `"5MiB/h"`, `"100KiB/min"`. Compared with the lower
    /// bound of the 95 % confidence interval of the Theil–Sen slope.
    pub max_growth: String,
    /// Optional ceiling for the resident set size (`VmRSS`) at any sample, e.g. `"512MiB"`.
    pub max_rss: Option<String>,
    /// Fewest samples after warm-up a segment needs to be judged (≥ 10). Default 30; with
    /// `during`, 20. With no segment that long the item is an error: no data is not a pass.
    pub min_samples: Option<u32>,
    /// Which memory to fit: `"auto"` (default: `RssAnon` where the platform reports it, else
    /// `VmRSS`), `"anon"` (`RssAnon`, Linux only) or `"rss"` (`VmRSS`).
    pub metric: Option<String>,
}

/// Parse a growth rate such as `"5MiB/h"`, `"100 KiB/min"` or `"1GiB/1d"` into bytes per hour.
///
/// # Errors
/// A message naming the text and the expected form.
pub fn parse_growth(text: &str) -> Result<f64, String> {
    let expected = "expected a size per time, e.g. \"5MiB/h\", \"100KiB/min\", \"1GiB/d\"";
    let (size, per) = text
        .split_once('/')
        .ok_or_else(|| format!("invalid growth rate \"{text}\": {expected}"))?;
    let bytes = crate::units::parse_bytes(size)
        .map_err(|e| format!("invalid growth rate \"{text}\": {e}"))?;
    let per = per.trim();
    let per_text = if per.starts_with(|c: char| c.is_ascii_digit()) {
        per.to_string()
    } else {
        format!("1{per}")
    };
    let d = crate::units::parse_duration(&per_text).map_err(|_| {
        format!("invalid growth rate \"{text}\": unknown time unit \"{per}\"; {expected}")
    })?;
    if d.is_zero() {
        return Err(format!("invalid growth rate \"{text}\": {expected}"));
    }
    Ok(bytes as f64 * 3600.0 / d.as_secs_f64())
}

impl RawMemoryProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<MemoryProbe, FieldError> {
        let target = self.target(v)?;
        let Schedule {
            interval,
            duration,
            warmup_key,
            min_samples,
        } = self.schedule(v)?;
        let max_growth_bytes_per_hour =
            parse_growth(&self.max_growth).map_err(|m| FieldError::new("max_growth", m))?;
        let max_rss_bytes = self
            .max_rss
            .as_deref()
            .map(|s| v.bytes("max_rss", s))
            .transpose()?;
        let metric = self.metric()?;
        if let Some(d) = &self.during
            && d.trim().is_empty()
        {
            return Err(FieldError::new("during", "expected an item id"));
        }
        if self.during.is_some() && v.item_during.is_some() {
            return Err(FieldError::new(
                "during",
                "`during` is set both on the item and in its probe table; keep one",
            ));
        }
        let during = self.during.or_else(|| v.item_during.clone());
        Ok(MemoryProbe {
            target,
            interval,
            duration,
            warmup: warmup_key,
            during,
            max_growth_bytes_per_hour,
            max_growth_text: self.max_growth,
            max_rss_bytes,
            min_samples,
            metric,
        })
    }

    /// Exactly one of `service`, `pid`, `pid_file` (`${VAR}` interpolated) and `process`.
    fn target(&self, v: &mut Validator) -> Result<Target, FieldError> {
        let given = [
            self.service.is_some(),
            self.pid.is_some(),
            self.pid_file.is_some(),
            self.process.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(FieldError::new(
                "",
                "expected exactly one target: service, pid, pid_file or process",
            ));
        }
        let target = if let Some(s) = self.service.clone() {
            Target::Service(s)
        } else if let Some(p) = self.pid {
            if p == 0 {
                return Err(FieldError::new("pid", "expected a positive process id"));
            }
            Target::Pid(p)
        } else if let Some(f) = &self.pid_file {
            let i = v.interpolate("pid_file", f)?;
            Target::PidFile {
                display: i.display,
                path: PathBuf::from(i.value),
            }
        } else {
            let p = self.process.clone().unwrap_or_default();
            Target::Process(v.regex("process", &p)?)
        };
        Ok(target)
    }

    /// `interval` (≥ 1 s), `duration`, `warmup` and `min_samples`, checked against each other:
    /// a fixed window must leave at least `min_samples` after its warm-up.
    fn schedule(&self, v: &Validator) -> Result<Schedule, FieldError> {
        let interval = match &self.interval {
            Some(t) => v.duration("interval", t)?,
            None => DEFAULT_INTERVAL,
        };
        if interval < MIN_INTERVAL {
            return Err(FieldError::new(
                "interval",
                format!(
                    "interval {} is below the minimum of 1s: resident memory sampled faster only \
                     shows the allocator's own decay",
                    format_duration(interval)
                ),
            ));
        }
        let duration = self
            .duration
            .as_deref()
            .map(|t| v.duration("duration", t))
            .transpose()?;
        let warmup_key = self
            .warmup
            .as_deref()
            .map(|t| v.duration("warmup", t))
            .transpose()?;
        // Checked against `duration` as the longest possible window: the default with `during`
        // is a fraction of it.
        let warmup = match (warmup_key, &self.during, duration) {
            (Some(w), _, _) => w,
            (None, Some(_), Some(d)) => during_warmup(d),
            (None, _, _) => DEFAULT_WARMUP,
        };
        if let Some(d) = duration
            && warmup >= d
        {
            return Err(FieldError::new(
                "warmup",
                format!(
                    "warmup {} leaves nothing of duration {} to fit",
                    format_duration(warmup),
                    format_duration(d)
                ),
            ));
        }
        let min_samples = self.min_samples.unwrap_or(if self.during.is_some() {
            DEFAULT_MIN_SAMPLES_DURING
        } else {
            DEFAULT_MIN_SAMPLES
        });
        if min_samples < MIN_MIN_SAMPLES {
            return Err(FieldError::new(
                "min_samples",
                format!(
                    "expected at least {MIN_MIN_SAMPLES} (a trend needs data), got {min_samples}"
                ),
            ));
        }
        if let Some(d) = duration {
            let possible = d.saturating_sub(warmup).as_secs_f64() / interval.as_secs_f64();
            if possible + 1.0 < f64::from(min_samples) {
                return Err(FieldError::new(
                    "duration",
                    format!(
                        "duration {} minus warmup {} at interval {} gives at most {} samples, \
                         fewer than min_samples = {min_samples}",
                        format_duration(d),
                        format_duration(warmup),
                        format_duration(interval),
                        possible.floor() as u64 + 1
                    ),
                ));
            }
        }
        Ok(Schedule {
            interval,
            duration,
            warmup_key,
            min_samples,
        })
    }

    /// `metric`: auto (default), anon or rss.
    fn metric(&self) -> Result<MetricChoice, FieldError> {
        Ok(match self.metric.as_deref() {
            None | Some("auto") => MetricChoice::Auto,
            Some("anon") => MetricChoice::Anon,
            Some("rss") => MetricChoice::Rss,
            Some(other) => {
                return Err(FieldError::new(
                    "metric",
                    format!("unknown metric \"{other}\" (expected one of: auto, anon, rss)"),
                ));
            }
        })
    }
}

/// The validated sampling schedule of a memory probe.
struct Schedule {
    interval: Duration,
    duration: Option<Duration>,
    /// The `warmup` key as given.
    warmup_key: Option<Duration>,
    min_samples: u32,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn growth_rates_parse_to_bytes_per_hour() {
        assert_eq!(parse_growth("5MiB/h"), Ok(5.0 * 1024.0 * 1024.0));
        assert_eq!(parse_growth("1MiB/min"), Ok(60.0 * 1024.0 * 1024.0));
        assert_eq!(parse_growth("24MiB/1d"), Ok(1024.0 * 1024.0));
        assert_eq!(parse_growth("1KiB/s"), Ok(3600.0 * 1024.0));
        assert!(parse_growth("5MiB").unwrap_err().contains("size per time"));
        assert!(
            parse_growth("5/h")
                .unwrap_err()
                .contains("unit is required")
        );
        assert!(
            parse_growth("5MiB/fortnight")
                .unwrap_err()
                .contains("unknown time unit")
        );
    }

    /// A probe with `max_growth = "5MiB/h"` and `extra`, validated.
    pub(in crate::probe::memory) fn raw(extra: &str) -> Result<MemoryProbe, FieldError> {
        let text = format!("max_growth = \"5MiB/h\"\n{extra}");
        let r: RawMemoryProbe = toml::from_str(&text).expect("raw parses");
        r.validate(&mut Validator::default())
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(raw("").unwrap_err().key, "");
        assert_eq!(raw("pid = 1\nprocess = \"x\"").unwrap_err().key, "");
        assert_eq!(
            raw("pid = 1\ninterval = \"500ms\"").unwrap_err().key,
            "interval"
        );
        assert_eq!(
            raw("pid = 1\nmin_samples = 3").unwrap_err().key,
            "min_samples"
        );
        assert_eq!(raw("pid = 1\nmetric = \"pss\"").unwrap_err().key, "metric");
        assert_eq!(
            raw("pid = 1\nduration = \"20s\"\nwarmup = \"30s\"")
                .unwrap_err()
                .key,
            "warmup"
        );
        assert_eq!(
            raw("pid = 1\nduration = \"40s\"\nwarmup = \"30s\"\ninterval = \"1s\"")
                .unwrap_err()
                .key,
            "duration"
        );
        assert_eq!(raw("process = \"(\"").unwrap_err().key, "process");
        let ok = raw("service = \"broker\"\nduring = \"order-latency\"").expect("valid");
        assert_eq!(ok.during(), Some("order-latency"));
        assert_eq!(ok.service(), Some("broker"));
        assert_eq!(ok.interval, Duration::from_secs(5));
    }
}

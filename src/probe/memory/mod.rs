//! The `memory` probe: "memory usage stable (no leaks detected)" (docs/memory.md).
//!
//! It samples one process's resident memory at a fixed interval, optionally while another item
//! drives load (`during`), and decides whether memory keeps growing faster than allowed:
//!
//! 1. **Sample** `RssAnon` and `VmRSS` ([`sample`]) every `interval` (≥ 1 s: faster sampling only
//!    records the allocator's own decay cycles) for `duration` or while the `during` item runs.
//! 2. **Split** the series at restarts: a new process (PID or start time changed). Each part is
//!    a *segment* and gets its own `warmup`. A drop of more than half within one process (the
//!    same PID and start time) is the allocator or garbage collector returning memory: it is
//!    listed, never a split, whether it happens once in the window or every few seconds.
//! 3. **Fit** each segment with at least `min_samples` samples after warm-up ([`analysis`]): the
//!    Theil–Sen slope with its 95 % confidence interval, and the Hamed–Rao modified Mann–Kendall
//!    test ([`stats`]).
//! 4. **Decide**: a segment leaks when the *lower* bound of its slope exceeds `max_growth`, the
//!    modified Mann–Kendall test finds a significant increasing trend, and the tail keeps
//!    growing (floor and peak of the last third above those of the first,
//!    [`analysis::TailGrowth`]). The lower bound makes the verdict conservative (the growth is
//!    at least that fast with 95 % confidence). Memory sampled every few seconds is strongly
//!    autocorrelated, and a periodic sawtooth can still fool the corrected trend test (its
//!    positive and negative autocorrelations cancel) while its phase tilts a slope fitted over
//!    a short window; the tail guard is what keeps such a sawtooth from being called a leak.
//! 5. **Say when a pass means little**: when the slope's *upper* bound is above `max_growth`,
//!    growth at the allowed rate could not be ruled out in this window; an advisory check
//!    turns the item into `warn`, the summary says `inconclusive` and to sample longer.
//! 6. **Project only what is established**: the growth over 24 h is shown only when growth is
//!    established ([`analysis::established`]: the leak rule with an allowed growth of zero),
//!    and then with what it was projected from (the growth seen, over how long, from how many
//!    samples). Too few samples is an `error` whose summary gives the window or interval that
//!    would be enough; nothing in it reads like a finding.
//!
//! Evidence: the samples as CSV, an SVG trend chart with the fitted lines ([`chart`]), the
//! slope with its interval and, when growth is established, the projected growth over 24 h.

pub mod analysis;
pub mod chart;
pub mod sample;
pub mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Status};
use crate::units::{format_bytes, format_duration};
use analysis::{Analysis, MetricChoice, Sample, Settings};
use sample::{Identity, Reader};

/// Series longer than this are thinned evenly before fitting: Theil–Sen keeps every pairwise
/// slope (n²/2 of them), so 2 000 samples cost ~16 MB for a moment; beyond that the fit gains
/// nothing a thinner series does not show.
pub const MAX_FIT_SAMPLES: usize = 2000;
/// The fastest allowed sampling interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_DURATION: Duration = Duration::from_secs(600);
const DEFAULT_WARMUP: Duration = Duration::from_secs(30);
/// With `during` and no `warmup`, the warm-up is this fraction of the time actually sampled
/// (capped at [`DEFAULT_WARMUP`]): the load item's length is known only when it ends.
const DURING_WARMUP_FRACTION: f64 = 0.1;
const DEFAULT_MIN_SAMPLES: u32 = 30;
/// With `during`, the window is as long as the load item the user sized: a 30 s load item
/// sampled every second leaves 27 samples after its 3 s warm-up.
const DEFAULT_MIN_SAMPLES_DURING: u32 = 20;
const MIN_MIN_SAMPLES: u32 = 10;

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

/// Which process to sample.
#[derive(Debug, Clone)]
pub enum Target {
    /// A checklist service, by name.
    Service(String),
    /// A fixed PID.
    Pid(u32),
    /// A PID file, re-read at every sample.
    PidFile {
        /// The path as written.
        display: String,
        /// The path after interpolation.
        path: PathBuf,
    },
    /// A command-line regex.
    Process(regex::Regex),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Service(s) => format!("service \"{s}\""),
            Target::Pid(p) => format!("pid {p}"),
            Target::PidFile { display, .. } => format!("pid file {display}"),
            Target::Process(re) => format!("process /{}/", re.as_str()),
        }
    }

    /// True when the target can move to a new process (a restart is followed).
    fn follows_restarts(&self) -> bool {
        matches!(self, Target::PidFile { .. } | Target::Process(_))
    }
}

/// A validated `memory` probe.
#[derive(Debug, Clone)]
pub struct MemoryProbe {
    target: Target,
    interval: Duration,
    duration: Option<Duration>,
    /// The `warmup` key; `None` means the default ([`MemoryProbe::warmup_for`]).
    warmup: Option<Duration>,
    during: Option<String>,
    max_growth_bytes_per_hour: f64,
    max_growth_text: String,
    max_rss_bytes: Option<u64>,
    min_samples: u32,
    metric: MetricChoice,
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

pub use crate::units::format_byte_rate as format_rate;

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

/// Why sampling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The window elapsed.
    Window,
    /// The `during` item finished.
    DuringDone,
    /// A fixed target exited and cannot come back.
    TargetGone,
}

/// What the sampling loop collected.
#[derive(Debug, Default)]
struct Collected {
    samples: Vec<Sample>,
    /// Ticks at which no target process was found.
    missed: u32,
    /// Why the loop stopped, and after how long.
    end: Option<End>,
    window: Duration,
    /// The last lookup problem (ambiguous match, unreadable pid file), for the summary.
    last_problem: Option<String>,
}

/// The default warm-up of a probe sampling `during` another item for `window`.
fn during_warmup(window: Duration) -> Duration {
    window.mul_f64(DURING_WARMUP_FRACTION).min(DEFAULT_WARMUP)
}

impl MemoryProbe {
    /// The warm-up applied to a series sampled for `window`: the `warmup` key; without it
    /// [`DEFAULT_WARMUP`], or with `during` [`DURING_WARMUP_FRACTION`] of the window.
    fn warmup_for(&self, window: Duration) -> Duration {
        match (self.warmup, &self.during) {
            (Some(w), _) => w,
            (None, Some(_)) => during_warmup(window),
            (None, None) => DEFAULT_WARMUP,
        }
    }

    /// The id of the item this probe samples during, if any.
    pub fn during(&self) -> Option<&str> {
        self.during.as_deref()
    }

    /// The service this probe targets, if any.
    pub fn service(&self) -> Option<&str> {
        match &self.target {
            Target::Service(s) => Some(s),
            _ => None,
        }
    }

    /// Run on its own: sample for `duration`.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        if let (Some(d), None) = (&self.during, self.duration) {
            return ProbeOutput::error(format!(
                "the `during` item \"{d}\" is not running (not selected?) and no `duration` is set"
            ));
        }
        self.run_until(ctx, None).await
    }

    /// Sample until `until` is cancelled (the `during` item finished) or `duration` elapses,
    /// then analyse.
    pub async fn run_until(
        &self,
        ctx: &ProbeContext,
        until: Option<&CancellationToken>,
    ) -> ProbeOutput {
        let collected = match self.collect(ctx, until).await {
            Ok(c) => c,
            Err(e) => return ProbeOutput::error(e),
        };
        if ctx.cancel.is_cancelled() {
            return ProbeOutput::error("interrupted while sampling");
        }
        let settings = Settings {
            warmup_s: self.warmup_for(collected.window).as_secs_f64(),
            min_samples: self.min_samples as usize,
            metric: self.metric,
            max_growth_bytes_per_hour: self.max_growth_bytes_per_hour,
        };
        let a = analysis::analyze(&collected.samples, &settings);
        self.output(ctx, &collected, &a)
    }

    fn pid_now(
        &self,
        ctx: &ProbeContext,
        reader: &mut Reader,
        last: Option<Identity>,
    ) -> Result<Option<u32>, String> {
        match &self.target {
            Target::Service(name) => ctx
                .services
                .pid(name)
                .map(Some)
                .ok_or_else(|| format!("service \"{name}\" is not running (no PID known)")),
            Target::Pid(p) => Ok(Some(*p)),
            Target::PidFile { path, .. } => sample::read_pid_file(&ctx.resolve(path)).map(Some),
            Target::Process(re) => {
                // Keep following the current process while it lives; look up again otherwise.
                if let Some(id) = last
                    && reader.identity(id.pid) == Some(id)
                {
                    return Ok(Some(id.pid));
                }
                match reader.find(re).as_slice() {
                    [] => Ok(None),
                    [one] => Ok(Some(*one)),
                    many => Err(format!(
                        "{} processes match /{}/ (pids {}); make the pattern match exactly one",
                        many.len(),
                        re.as_str(),
                        many.iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
        }
    }

    async fn collect(
        &self,
        ctx: &ProbeContext,
        until: Option<&CancellationToken>,
    ) -> Result<Collected, String> {
        let started = Instant::now();
        let window = match (self.duration, &self.during) {
            (Some(d), _) => d,
            // With `during` and no duration the item timeout bounds the loop.
            (None, Some(_)) => Duration::MAX,
            (None, None) => DEFAULT_DURATION,
        };
        let mut reader = Reader::default();
        let mut c = Collected::default();
        let mut last: Option<Identity> = None;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let never = CancellationToken::new();
        let until = until.unwrap_or(&never);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = until.cancelled() => { c.end = Some(End::DuringDone); break; }
                _ = ctx.cancel.cancelled() => break,
            }
            let t = started.elapsed();
            if t > window {
                c.end = Some(End::Window);
                break;
            }
            let pid = match self.pid_now(ctx, &mut reader, last) {
                Ok(p) => p,
                Err(e) if !self.target.follows_restarts() => return Err(e),
                Err(e) => {
                    c.last_problem = Some(e);
                    None
                }
            };
            let sample = pid.and_then(|pid| {
                let id = reader.identity(pid)?;
                let r = reader.read(pid)?;
                Some(Sample {
                    t_s: t.as_secs_f64(),
                    pid,
                    started: id.started,
                    rss_bytes: r.rss_bytes,
                    anon_bytes: r.anon_bytes,
                })
            });
            match sample {
                Some(s) => {
                    last = Some(Identity {
                        pid: s.pid,
                        started: s.started,
                    });
                    c.samples.push(s);
                }
                None => {
                    c.missed += 1;
                    if !self.target.follows_restarts() {
                        if c.samples.is_empty() {
                            return Err(format!(
                                "{} is not running: no process with pid {}",
                                self.target.describe(),
                                pid.map(|p| p.to_string()).unwrap_or_default()
                            ));
                        }
                        c.end = Some(End::TargetGone);
                        break;
                    }
                }
            }
        }
        c.window = started.elapsed();
        Ok(c)
    }

    fn output(&self, ctx: &ProbeContext, c: &Collected, a: &Analysis) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        self.measure_window(&mut o, c, a);
        // Evidence first: even an error outcome keeps what was sampled.
        if !c.samples.is_empty()
            && let Err(e) = self.write_evidence(ctx, &mut o, c, a)
        {
            return ProbeOutput::error(e);
        }
        o.tables.push(a.segment_table());
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
    fn too_few_samples(&self, o: &mut ProbeOutput, c: &Collected, a: &Analysis) -> String {
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
                    projection(seg).unwrap_or_else(|| "growth not established".into())
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
            projection(seg).unwrap_or_else(|| "growth not established, no projection".into()),
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

/// A signed amount of memory, e.g. `+16.0 KiB`, `-2.00 MiB`.
fn format_amount(bytes: f64) -> String {
    format_rate(bytes).trim_end_matches("/h").to_string()
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

impl crate::probe::ProbeKind for MemoryProbe {
    type Raw = RawMemoryProbe;

    fn validate(
        raw: RawMemoryProbe,
        v: &mut crate::probe::Validator,
    ) -> Result<MemoryProbe, crate::probe::FieldError> {
        raw.validate(v)
    }

    async fn run(
        &self,
        ctx: &crate::probe::ProbeContext,
        until: Option<&tokio_util::sync::CancellationToken>,
    ) -> ProbeOutput {
        match until {
            Some(u) => self.run_until(ctx, Some(u)).await,
            None => MemoryProbe::run(self, ctx).await,
        }
    }

    fn during(&self) -> Option<&str> {
        MemoryProbe::during(self)
    }

    fn references(&self) -> Vec<crate::probe::Reference<'_>> {
        self.service()
            .into_iter()
            .map(|name| crate::probe::Reference {
                key: "service".into(),
                kind: crate::probe::RefKind::Service,
                name,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn rates_format_with_sign_and_unit() {
        assert_eq!(format_rate(5.0 * 1024.0 * 1024.0), "+5.00 MiB/h");
        assert_eq!(format_rate(-2048.0), "-2.00 KiB/h");
        assert_eq!(format_rate(1.76 * 1024.0 * 1024.0 * 1024.0), "+1.76 GiB/h");
        assert_eq!(format_rate(123.4 * 1024.0), "+123 KiB/h");
        assert_eq!(format_rate(12.0), "+12 B/h");
        assert_eq!(format_rate(f64::NAN), "n/a");
    }

    fn raw(extra: &str) -> Result<MemoryProbe, FieldError> {
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

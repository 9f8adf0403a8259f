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
//!    [`analysis::TailGrowth`]), and all of that still holds with the series' two largest rises
//!    set aside (`Fit::rests_on_steps`: an allocator extending its heap once or twice in a short
//!    window is not a leak, nor established growth). The lower bound makes the verdict conservative (the growth is
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
//!
//! Where each step lives: `config` checks the checklist table, `collect` runs the sampling
//! loop, [`analysis`] splits the series and `fit` judges each segment, `output` turns the
//! result into checks, evidence and the summary, and `shortfall` says what a window too short
//! to judge would have needed. This file holds the validated probe and runs the steps in order.

pub mod analysis;
pub mod chart;
mod collect;
mod config;
mod fit;
mod output;
pub mod sample;
mod series;
mod shortfall;
pub mod stats;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::ProbeContext;
use crate::model::ProbeOutput;
use analysis::{MetricChoice, Settings};
pub use config::{RawMemoryProbe, parse_growth};
pub use output::format_p;

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

pub use crate::units::format_byte_rate as format_rate;

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

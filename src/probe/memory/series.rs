//! The sampled series and what the checklist asked of it: one sample, the memory figure a fit
//! uses, and the analysis settings. A leaf of the memory probe: the fit and the analysis both
//! read it.

/// One reading of the target, as recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since sampling started (monotonic clock).
    pub t_s: f64,
    /// Process id read.
    pub pid: u32,
    /// The process's start time (platform units); with `pid`, the process identity.
    pub started: u64,
    /// `VmRSS`, bytes.
    pub rss_bytes: u64,
    /// `RssAnon`, bytes, where reported.
    pub anon_bytes: Option<u64>,
}

/// The memory figure a fit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Resident anonymous memory (`RssAnon`): heap, stacks, private mappings.
    Anon,
    /// The whole resident set (`VmRSS`).
    Rss,
}

impl Metric {
    /// The `/proc/PID/status` field name.
    pub fn proc_name(self) -> &'static str {
        match self {
            Metric::Anon => "RssAnon",
            Metric::Rss => "VmRSS",
        }
    }

    /// The value of this metric in `s`, bytes.
    pub fn of(self, s: &Sample) -> Option<u64> {
        match self {
            Metric::Anon => s.anon_bytes,
            Metric::Rss => Some(s.rss_bytes),
        }
    }
}

/// What the checklist asked for (`metric = "auto" | "anon" | "rss"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricChoice {
    /// `RssAnon` when every sample has it, else `VmRSS`.
    Auto,
    /// `RssAnon` only.
    Anon,
    /// `VmRSS` only.
    Rss,
}

/// The decision parameters.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Seconds at the start of the window and of each segment that are not fitted.
    pub warmup_s: f64,
    /// Fewest fitted samples for a segment to be judged.
    pub min_samples: usize,
    /// Which figure to fit.
    pub metric: MetricChoice,
    /// Allowed growth, bytes per hour, compared with the slope's lower 95 % bound.
    pub max_growth_bytes_per_hour: f64,
}

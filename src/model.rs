//! The outcome vocabulary shared by probes, the runner and every renderer:
//! [`Severity`], [`Status`], [`Check`], [`Evidence`], [`Table`] and [`Outcome`].
//!
//! Probes fill these in; renderers only display them. Pass/fail logic lives in
//! [`Outcome::from_probe`] and [`crate::report::verdict`], nowhere else.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much an item matters, from least to most. The verdict counts `fail`/`error` at or above
/// `--fail-on` (default `major`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Informational; never blocks.
    Info,
    /// Should be fixed; does not block by default.
    Minor,
    /// Blocks go-live by default.
    Major,
    /// Blocks go-live, always.
    Blocker,
}

impl Severity {
    /// The lowercase name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Blocker => "blocker",
        }
    }

    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Minor,
        Severity::Major,
        Severity::Blocker,
    ];

    /// Parse `info`, `minor`, `major` or `blocker`.
    ///
    /// # Errors
    /// A message listing the accepted names.
    pub fn parse(s: &str) -> Result<Severity, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("\"{s}\" is not one of: info, minor, major, blocker"))
    }
}

/// What one item's probe produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every check held.
    Pass,
    /// At least one gating check did not hold.
    Fail,
    /// Only advisory checks did not hold.
    Warn,
    /// The probe could not measure (tool missing, no data, timeout…). Never a pass.
    Error,
    /// Not enough data yet; time will fix it (e.g. 12 of 30 days observed).
    Pending,
    /// Not run (filtered out, or the run was interrupted first).
    Skipped,
    /// Failed, but an unexpired waiver accepts it.
    Waived,
}

impl Status {
    /// The lowercase name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Error => "error",
            Status::Pending => "pending",
            Status::Skipped => "skipped",
            Status::Waived => "waived",
        }
    }

    /// True for statuses that block the verdict at or above `--fail-on`.
    pub fn is_blocking(self) -> bool {
        matches!(self, Status::Fail | Status::Error | Status::Pending)
    }
}

/// One threshold comparison: what was expected beside what was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// What is compared, e.g. `p99`, `exit code`, `line coverage`.
    pub name: String,
    /// The expectation as people read it, e.g. `≤ 100.0 ms`.
    pub expected: String,
    /// The measurement as people read it, e.g. `7.3 ms`.
    pub measured: String,
    /// Whether the expectation held.
    pub passed: bool,
    /// An advisory check turns the item into `warn` instead of `fail`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub advisory: bool,
}

impl Check {
    /// A gating check.
    pub fn new(
        name: impl Into<String>,
        expected: impl Into<String>,
        measured: impl Into<String>,
        passed: bool,
    ) -> Check {
        Check {
            name: name.into(),
            expected: expected.into(),
            measured: measured.into(),
            passed,
            advisory: false,
        }
    }

    /// An advisory check: failing it warns but does not fail the item.
    pub fn advisory(mut self) -> Check {
        self.advisory = true;
        self
    }
}

/// An artifact behind an outcome, written beside the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// What it is, e.g. `latency histogram (HdrHistogram interval log)`.
    pub label: String,
    /// Path relative to the report folder, with `/` separators.
    pub path: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// IANA media type, e.g. `image/svg+xml`, `text/csv`.
    pub media_type: String,
}

/// A small table of details (percentiles, findings, least-covered files…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Table {
    /// Heading shown above it.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows; each as long as `columns`.
    pub rows: Vec<Vec<String>>,
}

/// What one item's probe run produced, as stored in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// Status after waivers.
    pub status: Status,
    /// One line for people, e.g. `p99 7.3 ms ≤ 100 ms at 200.0 orders/s`.
    pub summary: String,
    /// Thresholds with measured values, side by side.
    pub checks: Vec<Check>,
    /// Measured values for machines, keyed by name; units are in the key names.
    #[serde(default)]
    #[schemars(schema_with = "measured_schema")]
    pub measured: serde_json::Map<String, serde_json::Value>,
    /// Detail tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<Table>,
    /// Evidence files (charts are evidence with media type `image/svg+xml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// The tail of the probe's log (command output…), secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// How many times the probe ran (1 + retries used).
    pub attempts: u32,
    /// Wall time of the last attempt, in milliseconds.
    pub duration_ms: u64,
}

/// What a probe hands back to the runner. The runner turns it into an [`Outcome`].
#[derive(Debug, Clone, Default)]
pub struct ProbeOutput {
    /// Set when the probe could not measure ([`Status::Error`]) or needs more time
    /// ([`Status::Pending`]); `None` lets the checks decide.
    pub forced: Option<Status>,
    /// One line for people.
    pub summary: String,
    /// Threshold checks.
    pub checks: Vec<Check>,
    /// Measured values for machines.
    pub measured: serde_json::Map<String, serde_json::Value>,
    /// Detail tables.
    pub tables: Vec<Table>,
    /// Evidence written with [`crate::probe::ProbeContext::write_evidence`].
    pub evidence: Vec<Evidence>,
    /// Log tail, already redacted.
    pub log_tail: Option<String>,
}

impl ProbeOutput {
    /// An outcome for a probe that could not measure.
    pub fn error(summary: impl Into<String>) -> ProbeOutput {
        ProbeOutput {
            forced: Some(Status::Error),
            summary: summary.into(),
            ..ProbeOutput::default()
        }
    }

    /// Record a measured value for machines.
    pub fn measure(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.measured.insert(key.to_string(), value.into());
    }

    /// Names of the checks that did not hold, in order.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// The status the checks imply (fail closed: no checks at all is an error).
    pub fn status(&self) -> Status {
        if let Some(s) = self.forced {
            return s;
        }
        if self.checks.is_empty() {
            return Status::Error;
        }
        if self.checks.iter().any(|c| !c.passed && !c.advisory) {
            Status::Fail
        } else if self.checks.iter().any(|c| !c.passed) {
            Status::Warn
        } else {
            Status::Pass
        }
    }
}

impl Outcome {
    /// Turn a probe's output into an outcome.
    pub fn from_probe(out: ProbeOutput, attempts: u32, duration_ms: u64) -> Outcome {
        let status = out.status();
        let summary = if out.checks.is_empty() && out.forced.is_none() && out.summary.is_empty() {
            "the probe measured nothing".to_string()
        } else {
            out.summary
        };
        Outcome {
            status,
            summary,
            checks: out.checks,
            measured: out.measured,
            tables: out.tables,
            evidence: out.evidence,
            log_tail: out.log_tail,
            attempts,
            duration_ms,
        }
    }

    /// An outcome for an item that did not run.
    pub fn not_run(status: Status, summary: impl Into<String>) -> Outcome {
        Outcome {
            status,
            summary: summary.into(),
            checks: Vec::new(),
            measured: serde_json::Map::new(),
            tables: Vec::new(),
            evidence: Vec::new(),
            log_tail: None,
            attempts: 0,
            duration_ms: 0,
        }
    }

    /// All expectations joined for a one-cell view: `p99 ≤ 100 ms; errors ≤ 0.1 %`.
    pub fn expected_text(&self) -> String {
        self.checks
            .iter()
            .map(|c| format!("{} {}", c.name, c.expected))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// All measurements joined for a one-cell view.
    pub fn measured_text(&self) -> String {
        self.checks
            .iter()
            .map(|c| format!("{} {}", c.name, c.measured))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The schema of [`Outcome::measured`]: any key, with the latency probe's attributed figures
/// named (each probe's keys are listed in its documentation).
fn measured_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let ms = |d: &str| serde_json::json!({ "type": "number", "minimum": 0, "description": d });
    let mut properties = serde_json::Map::new();
    for (key, what) in [
        ("mean", "mean"),
        ("p50", "p50"),
        ("p90", "p90"),
        ("p99", "p99"),
        ("p999", "p99.9"),
        ("p9999", "p99.99"),
        ("max", "maximum"),
    ] {
        properties.insert(
            format!("{key}_ms"),
            ms(&format!(
                "latency: corrected {what} (from the intended send time), ms"
            )),
        );
        properties.insert(
            format!("target_{key}_ms"),
            ms(&format!(
                "latency: the target's part of the corrected {what}: each latency less its request's generator lag, ms"
            )),
        );
        properties.insert(
            format!("uncorrected_{key}_ms"),
            ms(&format!("latency: {what} from the actual send time, ms")),
        );
    }
    for (key, what) in [
        ("generator_lag_p50_ms", "p50"),
        ("generator_lag_p99_ms", "p99"),
        ("generator_lag_max_ms", "maximum"),
    ] {
        properties.insert(
            key.into(),
            ms(&format!(
                "latency: {what} of the generator's own lateness (a request due on a free connection, sent late), ms"
            )),
        );
    }
    properties.insert(
        "lateness_generator_share".into(),
        serde_json::json!({ "type": "number", "minimum": 0, "maximum": 1,
            "description": "latency: the generator's share of all send lateness (the rest waited for a busy connection)" }),
    );
    schemars::json_schema!({
        "type": "object",
        "default": {},
        "description": "Measured values for machines, keyed by name; units are in the key names.",
        "additionalProperties": true,
        "properties": properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_checks_is_an_error_not_a_pass() {
        let out = ProbeOutput::default();
        assert_eq!(out.status(), Status::Error);
        assert_eq!(
            Outcome::from_probe(out, 1, 0).summary,
            "the probe measured nothing"
        );
    }

    #[test]
    fn advisory_failures_warn_and_gating_failures_fail() {
        let mut out = ProbeOutput::default();
        out.checks.push(Check::new("a", "= 0", "0", true));
        out.checks
            .push(Check::new("b", "= 0", "1", false).advisory());
        assert_eq!(out.status(), Status::Warn);
        out.checks.push(Check::new("c", "= 0", "1", false));
        assert_eq!(out.status(), Status::Fail);
    }

    #[test]
    fn severity_orders_from_info_to_blocker() {
        assert!(Severity::Blocker > Severity::Major);
        assert!(Severity::Minor > Severity::Info);
    }
}

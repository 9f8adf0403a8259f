//! The format-neutral finding model every audit parser produces, and the severity scale.
//!
//! Severity words are the CVSS v3.x/v4.0 qualitative ratings (FIRST CVSS v3.1 specification
//! §5): `none` 0.0, `low` 0.1–3.9, `medium` 4.0–6.9, `high` 7.0–8.9, `critical` 9.0–10.0. A
//! finding whose source gives no CVSS vector and no severity is `unknown` — not `none` — and
//! gates as the probe's `unknown_severity` (default `high`).

use std::fmt;

/// CVSS qualitative severity rating, ordered from `none` to `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// CVSS 0.0.
    None,
    /// CVSS 0.1–3.9.
    Low,
    /// CVSS 4.0–6.9.
    Medium,
    /// CVSS 7.0–8.9.
    High,
    /// CVSS 9.0–10.0.
    Critical,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::None,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    /// The lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// Parse the lowercase word.
    pub fn from_name(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The rating of a CVSS base score (0.0–10.0), FIRST CVSS v3.1 §5. Also how GitHub code
    /// scanning rates SARIF `security-severity` scores.
    pub fn from_score(score: f64) -> Level {
        if score >= 9.0 {
            Level::Critical
        } else if score >= 7.0 {
            Level::High
        } else if score >= 4.0 {
            Level::Medium
        } else if score > 0.0 {
            Level::Low
        } else {
            Level::None
        }
    }

    fn from_cvss(s: cvss::Severity) -> Level {
        match s {
            cvss::Severity::None => Level::None,
            cvss::Severity::Low => Level::Low,
            cvss::Severity::Medium => Level::Medium,
            cvss::Severity::High => Level::High,
            cvss::Severity::Critical => Level::Critical,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Score and rate a CVSS vector string (`CVSS:3.0/…`, `CVSS:3.1/…`, `CVSS:4.0/…`) with the
/// `cvss` crate, RustSec's own.
///
/// # Errors
/// A message when the vector does not parse.
pub fn rate_vector(vector: &str) -> Result<(f64, Level), String> {
    let c: cvss::Cvss = vector
        .parse()
        .map_err(|e| format!("invalid CVSS vector \"{vector}\": {e}"))?;
    Ok((c.score(), Level::from_cvss(c.severity())))
}

/// What kind of finding: a vulnerability, or an informational warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A known vulnerability (gated by `max_severity`).
    Vulnerability,
    /// A warning: `unmaintained`, `unsound`, `yanked`, `notice` (cargo-audit) — reported, and
    /// gating only when listed in `fail_on_warnings`.
    Warning(String),
}

/// One finding from a scanner's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Advisory or rule id, e.g. `RUSTSEC-2021-0003`, `GHSA-…`, `B602`.
    pub id: String,
    /// Other ids of the same advisory (CVE, GHSA…); ignores match these too.
    pub aliases: Vec<String>,
    /// Affected package (or, for SARIF, the file location).
    pub package: String,
    /// Installed version, or the affected range when the tool does not say.
    pub version: String,
    /// Severity; `None` is `unknown`.
    pub severity: Option<Level>,
    /// CVSS base score or SARIF `security-severity`, when known.
    pub score: Option<f64>,
    /// Where the severity came from, e.g. `CVSS:3.1/AV:N/…`, `SARIF level error`.
    pub severity_source: String,
    /// One-line title.
    pub title: String,
    /// Patched versions or the fix, e.g. `>= 1.6.1`; empty when none.
    pub patched: String,
    /// Vulnerability or warning.
    pub kind: Kind,
}

impl Finding {
    /// The severity word, `unknown` when not known.
    pub fn severity_text(&self) -> &'static str {
        self.severity.map_or("unknown", Level::as_str)
    }

    /// Whether `id` names this finding (its id or an alias), case-insensitively.
    pub fn is_named(&self, id: &str) -> bool {
        self.id.eq_ignore_ascii_case(id) || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
    }
}

/// What a parser read from a report.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The tool and format, e.g. `cargo-audit`, `SARIF (Bandit)`.
    pub tool: String,
    /// Findings: vulnerabilities and warnings.
    pub findings: Vec<Finding>,
    /// How many dependencies (or SARIF runs) were scanned, when the format says.
    pub scanned: Option<u64>,
    /// What `scanned` counts: `dependencies` or `runs`.
    pub scanned_unit: &'static str,
    /// Notes for the report (e.g. dependencies a tool skipped).
    pub notes: Vec<String>,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan {
            tool: String::new(),
            findings: Vec::new(),
            scanned: None,
            scanned_unit: "dependencies",
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallvec_advisory_vector_is_critical() {
        let (score, level) = rate_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
        assert_eq!(score, 9.8);
        assert_eq!(level, Level::Critical);
    }

    #[test]
    fn score_bands_follow_first_spec() {
        assert_eq!(Level::from_score(0.0), Level::None);
        assert_eq!(Level::from_score(0.1), Level::Low);
        assert_eq!(Level::from_score(3.9), Level::Low);
        assert_eq!(Level::from_score(4.0), Level::Medium);
        assert_eq!(Level::from_score(6.9), Level::Medium);
        assert_eq!(Level::from_score(7.0), Level::High);
        assert_eq!(Level::from_score(8.9), Level::High);
        assert_eq!(Level::from_score(9.0), Level::Critical);
    }
}

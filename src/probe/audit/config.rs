//! The `audit` probe's checklist table: [`RawAuditProbe`] as written, checked into an
//! [`AuditProbe`] — a report or a scanner to run, a known format, severity words, warning kinds,
//! and ignores that each carry a reason and an expiry date.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::AuditProbe;
use super::finding::Level;
use super::formats::Format;
use crate::probe::tool::ToolRun;
use crate::probe::{FieldError, Validator};

/// `kind = "audit"`: gate on a security scanner's report.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuditProbe {
    /// The scanner's JSON report to read, relative to the checklist's folder. With `run`, the
    /// file `run` writes; without `report`, `run`'s standard output is the report.
    pub report: Option<String>,
    /// A scanner to run first (argv), e.g. `["cargo", "audit", "--json", "--no-fetch"]` (the
    /// RustSec database in `~/.cargo/advisory-db`; `--db <folder>` for another). Its exit
    /// status is not the verdict (scanners exit 1 when they find something); its report is. A
    /// run that prints no report is `error`, with the tool's message and, for cargo-audit, the
    /// command that installs it or fetches its database.
    pub run: Option<Vec<String>>,
    /// Working directory of `run`, relative to the checklist's folder. Default: the checklist's
    /// folder.
    pub cwd: Option<String>,
    /// Kill `run`'s process group after this long (humantime). Default `"10m"`.
    pub timeout: Option<String>,
    /// `cargo-audit`, `pip-audit`, `npm-audit`, `sarif` or `safety`. Default: detected from the content.
    pub format: Option<String>,
    /// Highest severity allowed: `none`, `low`, `medium`, `high` or `critical`. Anything above
    /// fails the item. Default `none` (any vulnerability rated low or above fails).
    pub max_severity: Option<String>,
    /// How a finding without CVSS or severity (`unknown`) is gated. Default `high`.
    pub unknown_severity: Option<String>,
    /// Warning kinds that fail the item instead of only being reported: `unmaintained`,
    /// `unsound`, `yanked`, `notice`, `suppressed` (SARIF results suppressed in source).
    #[serde(default)]
    pub fail_on_warnings: Vec<String>,
    /// Accepted findings: `{ id = "RUSTSEC-…", reason = "…", expires = 2027-01-31 }`. The id may
    /// also be an alias (CVE, GHSA). After `expires` the ignore no longer applies.
    #[serde(default)]
    pub ignore: Vec<RawIgnore>,
}

/// One accepted finding.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIgnore {
    /// Advisory id or alias, e.g. `RUSTSEC-2021-0003` or `CVE-2021-25900`.
    pub id: String,
    /// Why it is accepted (required, not empty).
    pub reason: String,
    /// Last day the ignore applies (a TOML date, e.g. `2027-01-31`).
    #[schemars(with = "String")]
    pub expires: toml::value::Datetime,
}

/// A validated ignore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    /// Advisory id or alias.
    pub id: String,
    /// Justification.
    pub reason: String,
    /// Last day it applies.
    pub expires: jiff::civil::Date,
}

const WARNING_KINDS: [&str; 5] = ["unmaintained", "unsound", "yanked", "notice", "suppressed"];

fn level(key: &str, text: Option<&str>, default: Level) -> Result<Level, FieldError> {
    match text {
        None => Ok(default),
        Some(t) => Level::from_name(t).ok_or_else(|| {
            FieldError::new(
                key,
                format!(
                    "unknown severity \"{t}\" (expected one of: {})",
                    Level::ALL.map(Level::as_str).join(", ")
                ),
            )
        }),
    }
}

impl RawAuditProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key: neither `report` nor `run`, unknown format or
    /// severity, an ignore without a reason or with a malformed date.
    pub fn validate(self, v: &mut Validator) -> Result<AuditProbe, FieldError> {
        if self.report.is_none() && self.run.is_none() {
            return Err(FieldError::new(
                "",
                "expected `report` (a scanner's JSON report), `run` (a scanner whose stdout is the report), or both",
            ));
        }
        let format = match self.format.as_deref() {
            None => None,
            Some(f) => Some(Format::from_name(f).ok_or_else(|| {
                FieldError::new(
                    "format",
                    format!(
                        "unknown audit format \"{f}\" (expected one of: {})",
                        Format::ALL.map(Format::as_str).join(", ")
                    ),
                )
            })?),
        };
        if self.timeout.is_some() && self.run.is_none() {
            return Err(FieldError::new(
                "timeout",
                "timeout applies to run; set run too",
            ));
        }
        let run = match &self.run {
            Some(argv) => Some(ToolRun::validate(
                v,
                "run",
                argv,
                self.cwd.clone(),
                self.timeout.as_deref(),
                Duration::from_secs(600),
            )?),
            None => {
                if self.cwd.is_some() {
                    return Err(FieldError::new("cwd", "cwd applies to run; set run too"));
                }
                None
            }
        };
        for (i, w) in self.fail_on_warnings.iter().enumerate() {
            if !WARNING_KINDS.contains(&w.as_str()) {
                return Err(FieldError::new(
                    format!("fail_on_warnings[{i}]"),
                    format!(
                        "unknown warning kind \"{w}\" (expected one of: {})",
                        WARNING_KINDS.join(", ")
                    ),
                ));
            }
        }
        let ignore = self
            .ignore
            .into_iter()
            .enumerate()
            .map(|(i, ig)| validate_ignore(i, ig))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuditProbe {
            report: self.report.map(PathBuf::from),
            run,
            format,
            max_severity: level("max_severity", self.max_severity.as_deref(), Level::None)?,
            unknown_as: level(
                "unknown_severity",
                self.unknown_severity.as_deref(),
                Level::High,
            )?,
            fail_on_warnings: self.fail_on_warnings,
            ignore,
        })
    }
}

/// Validate `ignore[i]`: an id, a reason, and an expiry date without time.
fn validate_ignore(i: usize, ig: RawIgnore) -> Result<Ignore, FieldError> {
    if ig.id.trim().is_empty() {
        return Err(FieldError::new(
            format!("ignore[{i}].id"),
            "expected an advisory id",
        ));
    }
    if ig.reason.trim().is_empty() {
        return Err(FieldError::new(
            format!("ignore[{i}].reason"),
            "expected a reason: an ignore must say why the finding is accepted",
        ));
    }
    let expires = match (&ig.expires.date, &ig.expires.time) {
        (Some(d), None) => jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8)
            .map_err(|e| {
                FieldError::new(format!("ignore[{i}].expires"), format!("invalid date: {e}"))
            })?,
        _ => {
            return Err(FieldError::new(
                format!("ignore[{i}].expires"),
                "expected a date without time, e.g. 2027-01-31",
            ));
        }
    };
    Ok(Ignore {
        id: ig.id,
        reason: ig.reason,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_warning_kind_and_severity_words_are_rejected() {
        let raw: RawAuditProbe =
            toml::from_str("report = \"x\"\nfail_on_warnings = [\"unmaintainted\"]").unwrap();
        let e = raw.validate(&mut Validator::default()).unwrap_err();
        assert_eq!(e.key, "fail_on_warnings[0]");
        let raw: RawAuditProbe =
            toml::from_str("report = \"x\"\nmax_severity = \"moderate\"").unwrap();
        let e = raw.validate(&mut Validator::default()).unwrap_err();
        assert_eq!(e.key, "max_severity");
    }
}

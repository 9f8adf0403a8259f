//! The `audit` probe: known vulnerabilities from a real scanner's report — cargo-audit JSON
//! (run or read; offline with `--db <advisory-db> --no-fetch`), pip-audit JSON, `npm audit
//! --json`, and SARIF 2.1.0 from any tool (bandit, semgrep, gitleaks, clippy-sarif…).
//!
//! Why: deployment checklists ask for "no critical or high-severity vulnerabilities" and "a security audit
//! with real tools, not fake results". Severity comes from the advisory's CVSS vector scored by
//! the `cvss` crate (RustSec's own), in FIRST's qualitative words (see [`finding::Level`]). No
//! CVSS is `unknown`, which gates as `unknown_severity` (default `high`), never as `none`.
//! Ignores need a reason and an expiry; an expired ignore stops applying and the outcome says
//! so. Warnings (unmaintained, unsound, yanked) are listed and gate only when asked.

pub mod finding;
pub mod formats;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::tool::{ToolOutput, ToolRun, read_report};
use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Status, Table};
use finding::{Finding, Kind, Level, Scan};
use formats::Format;

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
    /// `cargo-audit`, `pip-audit`, `npm-audit` or `sarif`. Default: detected from the content.
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

/// A validated `audit` probe.
#[derive(Debug, Clone)]
pub struct AuditProbe {
    report: Option<PathBuf>,
    run: Option<ToolRun>,
    format: Option<Format>,
    max_severity: Level,
    unknown_as: Level,
    fail_on_warnings: Vec<String>,
    ignore: Vec<Ignore>,
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

/// Read a scanner report: detect (unless given) and parse.
///
/// # Errors
/// A message naming `name` and the place in it (line/column, or JSON pointer).
pub fn read(name: &str, bytes: &[u8], format: Option<Format>) -> Result<Scan, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "{name}: byte offset {}: not UTF-8 text, so not a scanner's JSON report",
            e.valid_up_to()
        )
    })?;
    if text.trim().is_empty() {
        return Err(format!("{name}: the report is empty"));
    }
    let v = formats::json(text).map_err(|e| {
        let hint = if text.trim_start().starts_with(['{', '[']) {
            ""
        } else {
            " (not JSON at all: ask the scanner for JSON, e.g. `cargo audit --json`, `pip-audit -f json`, `npm audit --json`, `bandit -f sarif`)"
        };
        format!("{name}: {e}{hint}")
    })?;
    if let Some(msg) = formats::tool_error(&v) {
        return Err(format!(
            "{name}: the scanner reported an error instead of a report: {msg}"
        ));
    }
    let format = match format.or_else(|| formats::detect(&v)) {
        Some(f) => f,
        None => {
            return Err(format!(
                "{name}: cannot tell the report format; set format to one of: {}",
                Format::ALL.map(Format::as_str).join(", ")
            ));
        }
    };
    formats::parse(format, &v).map_err(|e| format!("{name} ({}): {e}", format.as_str()))
}

impl AuditProbe {
    /// Run the probe once.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let (name, bytes) = match self.obtain(ctx, &mut o).await {
            Ok(x) => x,
            Err(msg) => {
                o.forced = Some(Status::Error);
                o.summary = msg;
                return o;
            }
        };
        o.measure("report_sha256", hex::encode(Sha256::digest(&bytes)));
        let scan = match read(&name, &bytes, self.format) {
            Ok(s) => s,
            Err(m) => {
                o.forced = Some(Status::Error);
                o.summary = m;
                return o;
            }
        };
        if let Ok(ev) = ctx.write_evidence(
            "audit-report.json",
            &bytes,
            &format!("{} report", scan.tool),
            "application/json",
        ) {
            o.evidence.push(ev);
        }
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        self.evaluate(&scan, today, o)
    }

    async fn obtain(
        &self,
        ctx: &ProbeContext,
        o: &mut ProbeOutput,
    ) -> Result<(String, Vec<u8>), String> {
        let started = SystemTime::now();
        let mut stdout = None;
        if let Some(run) = &self.run {
            let out = run.run(ctx).await.map_err(|e| e.to_string())?;
            o.log_tail = Some(out.log_tail.clone());
            o.measure("run_duration_ms", out.elapsed.as_millis() as u64);
            o.measure("run_exit_code", out.exit_code);
            if self.report.is_none() {
                if out.stdout_truncated {
                    return Err(format!(
                        "`{}` printed more than 64 MiB; write the report to a file and set `report`",
                        run.display()
                    ));
                }
                if out.stdout.trim().is_empty() {
                    return Err(self.no_report(run, &out, ctx));
                }
                stdout = Some((
                    format!("output of `{}`", run.display()),
                    out.stdout.into_bytes(),
                ));
            }
        }
        if let Some(s) = stdout {
            return Ok(s);
        }
        let path = ctx.resolve(self.report.as_ref().expect("validated: report or run"));
        if self.run.is_some() {
            let fresh = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map(|m| m + Duration::from_secs(2) >= started)
                .unwrap_or(false);
            if !fresh {
                return Err(format!(
                    "`run` did not write {}; refusing to read a missing or stale report",
                    path.display()
                ));
            }
        }
        Ok((
            path.display().to_string(),
            read_report(&path).map_err(|e| e.to_string())?,
        ))
    }

    /// The error for a `run` that printed no report: the command, its exit status, the tool's
    /// own error line and, for a scanner prodready recognises (`format`, else the command), the
    /// remedy with the exact commands (see [`Format::remedy`]).
    fn no_report(&self, run: &ToolRun, out: &ToolOutput, ctx: &ProbeContext) -> String {
        let status = out
            .exit_code
            .map_or("by a signal".into(), |c| c.to_string());
        let said = out
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with("error"))
            .or_else(|| out.stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .map_or(String::new(), |l| format!(": {}", l.trim()));
        let words = run.words();
        let remedy = self
            .format
            .or_else(|| Format::of_command(&words))
            .and_then(|f| f.remedy(&words, &run.workdir(ctx), &out.stderr))
            .map_or(String::new(), |r| format!("; {r}"));
        format!(
            "`{}` exited {status} and printed no report{said}{remedy}",
            run.display()
        )
    }

    fn active_ignore(&self, f: &Finding, today: jiff::civil::Date) -> Option<&Ignore> {
        self.ignore
            .iter()
            .find(|ig| f.is_named(&ig.id) && today <= ig.expires)
    }

    /// The gate's checks: vulnerabilities above `max_severity`, warnings of the kinds that fail,
    /// and, as advisories, the other warnings and what could not be audited.
    fn checks(&self, o: &mut ProbeOutput, scan: &Scan, t: &Tally<'_>, vulns: usize) {
        o.checks.push(Check::new(
            "vulnerabilities",
            format!("none above {}", self.max_severity),
            if t.failing.is_empty() {
                format!("{vulns} found, none above {}", self.max_severity)
            } else {
                format!(
                    "{} above {}: {}",
                    t.failing.len(),
                    self.max_severity,
                    list(&t.failing)
                )
            },
            t.failing.is_empty(),
        ));
        if !self.fail_on_warnings.is_empty() {
            o.checks.push(Check::new(
                "warnings",
                format!("no {}", self.fail_on_warnings.join("/")),
                if t.warnings_failing.is_empty() {
                    "none".into()
                } else {
                    list(&t.warnings_failing)
                },
                t.warnings_failing.is_empty(),
            ));
        }
        if !t.warnings_reported.is_empty() {
            o.checks.push(
                Check::new(
                    "reported warnings",
                    "none (advisory)",
                    format!(
                        "{}: {}",
                        t.warnings_reported.len(),
                        list(&t.warnings_reported)
                    ),
                    false,
                )
                .advisory(),
            );
        }
        if !scan.notes.is_empty() {
            o.checks.push(
                Check::new(
                    "not audited",
                    "every dependency audited (advisory)",
                    scan.notes.join("; "),
                    false,
                )
                .advisory(),
            );
        }
    }

    /// Gate a parsed scan.
    fn evaluate(&self, scan: &Scan, today: jiff::civil::Date, mut o: ProbeOutput) -> ProbeOutput {
        o.measure("tool", scan.tool.clone());
        if let Some(n) = scan.scanned {
            o.measure("scanned", n);
            if n == 0 {
                o.forced = Some(Status::Error);
                o.summary = format!(
                    "{} scanned nothing (0 {}): nothing was audited",
                    scan.tool, scan.scanned_unit
                );
                return o;
            }
        }
        let mut t = self.tally(scan, today);
        let vulns = scan
            .findings
            .iter()
            .filter(|f| f.kind == Kind::Vulnerability)
            .count();
        measure_tally(&mut o, &t, vulns);
        if !t.rows.is_empty() {
            o.tables.push(Table {
                title: format!("Findings ({})", scan.tool),
                columns: [
                    "id",
                    "package",
                    "version",
                    "severity",
                    "CVSS score",
                    "title",
                    "patched",
                    "gate",
                ]
                .map(String::from)
                .to_vec(),
                rows: std::mem::take(&mut t.rows),
            });
        }
        let expired_notes = self.ignore_table(&mut o, scan, today);
        self.checks(&mut o, scan, &t, vulns);
        let mut summary = if t.failing.is_empty() {
            format!(
                "{}: {vulns} vulnerabilit{} found, none above {}",
                scan.tool,
                if vulns == 1 { "y" } else { "ies" },
                self.max_severity
            )
        } else {
            format!(
                "{}: {} vulnerabilit{} above {}: {}",
                scan.tool,
                t.failing.len(),
                if t.failing.len() == 1 { "y" } else { "ies" },
                self.max_severity,
                list(&t.failing)
            )
        };
        if t.ignored > 0 {
            summary.push_str(&format!("; {} ignored", t.ignored));
        }
        if !expired_notes.is_empty() {
            summary.push_str(&format!("; {}", expired_notes.join("; ")));
        }
        o.summary = summary;
        o
    }

    /// Sort every finding into the gate: failing, allowed, ignored, warnings failing or
    /// reported; one report row each, most severe first.
    fn tally<'s>(&self, scan: &'s Scan, today: jiff::civil::Date) -> Tally<'s> {
        let mut t = Tally::default();
        for f in &scan.findings {
            let effective = f.severity.unwrap_or(self.unknown_as);
            let ignore = self.active_ignore(f, today);
            let gate = match (&f.kind, ignore) {
                (_, Some(ig)) => {
                    t.ignored += 1;
                    format!("ignored until {} ({})", ig.expires, ig.reason)
                }
                (Kind::Vulnerability, None) => {
                    let idx = f.severity.map_or(5, |l| l as usize);
                    t.by_level[idx] += 1;
                    if effective > self.max_severity {
                        t.failing.push(f);
                        "fails".to_string()
                    } else {
                        format!("allowed (≤ {})", self.max_severity)
                    }
                }
                (Kind::Warning(k), None) => {
                    if self.fail_on_warnings.contains(k) {
                        t.warnings_failing.push(f);
                        format!("{k} warning: fails")
                    } else {
                        t.warnings_reported.push(f);
                        format!("{k} warning: reported")
                    }
                }
            };
            t.rows.push(vec![
                f.id.clone(),
                f.package.clone(),
                if f.version.is_empty() {
                    "—".into()
                } else {
                    f.version.clone()
                },
                if f.severity.is_none() {
                    format!("unknown (gated as {})", self.unknown_as)
                } else {
                    f.severity_text().to_string()
                },
                f.score.map_or("—".into(), |s| format!("{s:.1}")),
                f.title.clone(),
                if f.patched.is_empty() {
                    "—".into()
                } else {
                    f.patched.clone()
                },
                gate,
            ]);
        }
        // Most severe first; unknown ranks as what it is gated as.
        let rank = |r: &Vec<String>| -> usize {
            let w = r[3].split(' ').next().unwrap_or("");
            Level::from_name(w).map_or(self.unknown_as as usize, |l| l as usize)
        };
        t.rows
            .sort_by(|a, b| rank(b).cmp(&rank(a)).then(a[0].cmp(&b[0])));
        t
    }

    /// The ignores table (applied, expired, or matching nothing); returns the expiry notes.
    fn ignore_table(
        &self,
        o: &mut ProbeOutput,
        scan: &Scan,
        today: jiff::civil::Date,
    ) -> Vec<String> {
        let mut ig_rows = Vec::new();
        let mut expired_notes = Vec::new();
        for ig in &self.ignore {
            let matches = scan.findings.iter().filter(|f| f.is_named(&ig.id)).count();
            let state = if today > ig.expires {
                expired_notes.push(format!("ignore for {} expired on {}", ig.id, ig.expires));
                format!("expired on {}: no longer applied", ig.expires)
            } else if matches == 0 {
                "matches no finding".to_string()
            } else {
                format!("applied to {matches} finding(s)")
            };
            ig_rows.push(vec![
                ig.id.clone(),
                ig.reason.clone(),
                ig.expires.to_string(),
                state,
            ]);
        }
        if !ig_rows.is_empty() {
            o.tables.push(Table {
                title: "Ignores".into(),
                columns: ["id", "reason", "expires", "state"]
                    .map(String::from)
                    .to_vec(),
                rows: ig_rows,
            });
        }
        expired_notes
    }
}

/// Where each finding of a scan went.
#[derive(Default)]
struct Tally<'s> {
    /// One report row per finding.
    rows: Vec<Vec<String>>,
    /// Vulnerabilities above `max_severity`.
    failing: Vec<&'s Finding>,
    /// Vulnerabilities counted per level (critical … none, then unknown).
    by_level: [u64; 6],
    /// Warnings of a kind in `fail_on_warnings`.
    warnings_failing: Vec<&'s Finding>,
    /// Other warnings (advisory).
    warnings_reported: Vec<&'s Finding>,
    /// Findings an unexpired ignore covers.
    ignored: u64,
}

/// Up to five findings for a message: `RUSTSEC-… crate (high), … 3 more`.
fn list(fs: &[&Finding]) -> String {
    let mut parts: Vec<String> = fs
        .iter()
        .take(5)
        .map(|f| format!("{} {} ({})", f.id, f.package, f.severity_text()))
        .collect();
    if fs.len() > 5 {
        parts.push(format!("… {} more", fs.len() - 5));
    }
    parts.join(", ")
}

/// The counts for machines.
fn measure_tally(o: &mut ProbeOutput, t: &Tally<'_>, vulns: usize) {
    o.measure("vulnerabilities", vulns as u64);
    for (i, l) in Level::ALL.iter().enumerate() {
        o.measure(&format!("vulnerabilities_{}", l.as_str()), t.by_level[i]);
    }
    o.measure("vulnerabilities_unknown", t.by_level[5]);
    o.measure("ignored", t.ignored);
    o.measure("failing", t.failing.len() as u64);
    o.measure(
        "warnings",
        (t.warnings_failing.len() + t.warnings_reported.len()) as u64,
    );
}

crate::probe::probe_kind!(AuditProbe, RawAuditProbe, async);

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(toml_body: &str) -> AuditProbe {
        let raw: RawAuditProbe = toml::from_str(toml_body).unwrap();
        raw.validate(&mut Validator::default()).unwrap()
    }

    fn today() -> jiff::civil::Date {
        jiff::civil::date(2026, 6, 1)
    }

    /// The real cargo-audit report for smallvec 1.6.0, with the advisory's `cvss` removed: the
    /// finding becomes `unknown`, which gates as `unknown_severity`.
    fn without_cvss() -> Scan {
        let text = include_str!("../../../tests/fixtures/audit/cargo-audit-vulnerable.json");
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["vulnerabilities"]["list"][0]["advisory"]["cvss"] = serde_json::Value::Null;
        formats::parse(Format::CargoAudit, &v).unwrap()
    }

    #[test]
    fn unknown_severity_counts_as_high_by_default() {
        let scan = without_cvss();
        assert_eq!(scan.findings[0].severity, None);
        let p = probe("report = \"x\"\nmax_severity = \"medium\"");
        let o = p.evaluate(&scan, today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Fail);
        assert_eq!(o.tables[0].rows[0][3], "unknown (gated as high)");
        assert_eq!(o.measured["vulnerabilities_unknown"], 1);
    }

    #[test]
    fn unknown_severity_is_configurable() {
        let p = probe("report = \"x\"\nmax_severity = \"medium\"\nunknown_severity = \"low\"");
        let o = p.evaluate(&without_cvss(), today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Pass);
    }

    #[test]
    fn ignore_on_its_expiry_day_still_applies_and_the_day_after_not() {
        let text = include_str!("../../../tests/fixtures/audit/cargo-audit-vulnerable.json");
        let scan = read("fixture", text.as_bytes(), None).unwrap();
        let p = probe(
            "report = \"x\"\nignore = [{ id = \"RUSTSEC-2021-0003\", reason = \"r\", expires = 2026-06-01 }]",
        );
        let o = p.evaluate(&scan, today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Pass);
        let o = p.evaluate(&scan, jiff::civil::date(2026, 6, 2), ProbeOutput::default());
        assert_eq!(o.status(), Status::Fail);
        assert!(o.summary.contains("expired on 2026-06-01"), "{}", o.summary);
    }

    /// Hand-written in the shape of npm 7+'s `npm audit --json` (auditReportVersion 2): npm's
    /// bulk advisory endpoint is not reachable here, so no real report with findings could be
    /// made (the real offline output, an error document, is tests/fixtures/audit/).
    #[test]
    fn npm_audit_v2_vectors_are_scored_and_words_used_without_them() {
        let doc = r#"{"auditReportVersion":2,"vulnerabilities":{"lodash":{"name":"lodash","severity":"high","isDirect":true,"via":[{"source":1096305,"name":"lodash","dependency":"lodash","title":"Command Injection in lodash","url":"https://github.com/advisories/GHSA-35jh-r3h4-6jhm","severity":"high","cwe":["CWE-77"],"cvss":{"score":7.2,"vectorString":"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"},"range":"<4.17.21"},{"source":1096302,"name":"lodash","dependency":"lodash","title":"ReDoS in lodash","url":"https://github.com/advisories/GHSA-29mw-wpgm-hmr9","severity":"moderate","cwe":[],"cvss":{"score":0,"vectorString":null},"range":"<4.17.21"}],"effects":[],"range":"<=4.17.20","nodes":["node_modules/lodash"],"fixAvailable":true},"dep":{"name":"dep","severity":"high","isDirect":false,"via":["lodash"],"effects":[],"range":"*","nodes":[],"fixAvailable":true}},"metadata":{"dependencies":{"prod":3,"total":3}}}"#;
        let scan = read("npm.json", doc.as_bytes(), None).unwrap();
        assert_eq!(scan.tool, "npm audit");
        assert_eq!(
            scan.findings.len(),
            2,
            "string `via` entries are not findings"
        );
        let f = &scan.findings[0];
        assert_eq!(f.id, "GHSA-35jh-r3h4-6jhm");
        assert_eq!(f.severity, Some(Level::High));
        assert_eq!(f.score, Some(7.2));
        let g = &scan.findings[1];
        assert_eq!(g.severity, Some(Level::Medium));
        assert!(g.severity_source.contains("moderate"));
    }

    /// Hand-written in the shape of pip-audit 2.x `-f json`: pip-audit's vulnerability services
    /// are not reachable here (the real offline output is tests/fixtures/audit/).
    #[test]
    fn pip_audit_findings_are_unknown_severity_with_fix_versions() {
        let doc = r#"{"dependencies":[{"name":"jinja2","version":"2.10","vulns":[{"id":"PYSEC-2019-217","fix_versions":["2.10.1"],"aliases":["CVE-2019-10906","GHSA-462w-v97r-4m45"],"description":"In Pallets Jinja before 2.10.1, str.format_map allows a sandbox escape."}]},{"name":"six","version":"1.16.0","vulns":[]}],"fixes":[]}"#;
        let scan = read("pip.json", doc.as_bytes(), None).unwrap();
        assert_eq!(scan.scanned, Some(2));
        let f = &scan.findings[0];
        assert_eq!(f.severity, None);
        assert_eq!(f.patched, "2.10.1");
        assert!(f.is_named("cve-2019-10906"));
        let p = probe("report = \"x\"\nmax_severity = \"medium\"");
        let o = p.evaluate(&scan, today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Fail, "unknown gates as high");
    }

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

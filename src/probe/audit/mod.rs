//! The `audit` probe: known vulnerabilities from a real scanner's report — cargo-audit JSON
//! (run or read; offline with `--db <advisory-db> --no-fetch`), pip-audit JSON, safety JSON (`safety check --output json`), `npm audit
//! --json`, and SARIF 2.1.0 from any tool (bandit, semgrep, gitleaks, clippy-sarif…).
//!
//! Why: deployment checklists ask for "no critical or high-severity vulnerabilities" and "a security audit
//! with real tools, not fake results". Severity comes from the advisory's CVSS vector scored by
//! the `cvss` crate (RustSec's own), in FIRST's qualitative words (see [`finding::Level`]). No
//! CVSS is `unknown`, which gates as `unknown_severity` (default `high`), never as `none`.
//! Ignores need a reason and an expiry; an expired ignore stops applying and the outcome says
//! so. Warnings (unmaintained, unsound, yanked) are listed and gate only when asked.
//!
//! Where things live: `config` checks the checklist table, [`formats`] parses each scanner's
//! report into a [`finding::Scan`], `gate` judges the scan; this file obtains the report (runs
//! the scanner or reads the file) and runs the steps in order.

mod config;
pub mod finding;
pub mod formats;
mod gate;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::ProbeContext;
use super::tool::{ToolOutput, ToolRun, read_report};
use crate::model::{ProbeOutput, Status};
pub use config::{Ignore, RawAuditProbe, RawIgnore};
use finding::{Level, Scan};
use formats::Format;

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
}

crate::probe::probe_kind!(AuditProbe, RawAuditProbe, async);

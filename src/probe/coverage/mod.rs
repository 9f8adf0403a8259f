//! The `coverage` probe: line, branch and function coverage from the report a real coverage
//! tool wrote (LCOV, Cobertura XML, llvm-cov export JSON, coverage.py JSON, tarpaulin JSON),
//! optionally produced first by a `run` command such as `cargo llvm-cov --lcov --output-path …`.
//!
//! Why a probe and not a `command` with a regex: the checklists' "90 %+ coverage" is only as good as
//! the arithmetic behind it. Each parser ([`lcov`], [`cobertura`], [`llvm`], [`coveragepy`],
//! [`tarpaulin`]) counts the way the producing tool counts, so the totals here equal the tool's
//! own summary (to 0.01 percentage points; the tests check this on fixtures made by the real
//! tools). A report with nothing measurable is an `error`, never 100 %; a malformed or
//! truncated report is an `error` naming the file and the line where the parser stopped.

pub mod cobertura;
pub mod coveragepy;
pub mod data;
pub mod lcov;
pub mod llvm;
pub mod tarpaulin;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::tool::{ToolRun, read_report};
use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Status, Table};
use data::{Counts, CoverageData, FileCoverage, Format, ParseError, pct};

/// How many files the least-covered table shows.
const LEAST_COVERED: usize = 10;

/// `kind = "coverage"`: gate on a coverage report.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCoverageProbe {
    /// The coverage report to read, relative to the checklist's folder, e.g.
    /// `"../target/lcov.info"`.
    pub report: String,
    /// `lcov`, `cobertura`, `llvm-json`, `coverage-py` or `tarpaulin`. Default: detected from
    /// the content.
    pub format: Option<String>,
    /// A command (argv) that writes `report` first, e.g.
    /// `["cargo", "llvm-cov", "--lcov", "--output-path", "target/lcov.info"]`. It must exit 0
    /// and rewrite the report, else the item is `error`.
    pub run: Option<Vec<String>>,
    /// Working directory of `run`, relative to the checklist's folder; also the root that file
    /// paths are shown relative to and `exclude` globs match against. Default: the checklist's
    /// folder.
    pub cwd: Option<String>,
    /// Kill `run`'s process group after this long (humantime). Default `"30m"`.
    pub timeout: Option<String>,
    /// Minimum total line coverage, percent (0–100).
    pub lines: Option<f64>,
    /// Minimum total branch coverage, percent (0–100). An error when the report has no branch
    /// data.
    pub branches: Option<f64>,
    /// Minimum total function coverage, percent (0–100). An error when the format has no
    /// function data (Cobertura, coverage.py, tarpaulin).
    pub functions: Option<f64>,
    /// Minimum line coverage of every single file, percent (0–100).
    pub per_file_lines: Option<f64>,
    /// Glob patterns of files to leave out (`*` stays within one path segment, `**` crosses
    /// them), matched against the path relative to `cwd` and against the path as the report
    /// writes it, e.g. `["src/bin/**", "**/generated/*.rs"]`.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A validated `coverage` probe.
#[derive(Debug, Clone)]
pub struct CoverageProbe {
    report: PathBuf,
    format: Option<Format>,
    run: Option<ToolRun>,
    cwd: Option<PathBuf>,
    lines: Option<f64>,
    branches: Option<f64>,
    functions: Option<f64>,
    per_file_lines: Option<f64>,
    exclude: GlobSet,
    exclude_text: Vec<String>,
}

fn percent(key: &str, v: Option<f64>) -> Result<Option<f64>, FieldError> {
    v.map(|x| crate::units::check_percent(x).map_err(|m| FieldError::new(key, m)))
        .transpose()
}

impl RawCoverageProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key: unknown format, a percentage outside 0–100, a glob that
    /// does not compile, no threshold at all, a malformed `run`/`timeout`.
    pub fn validate(self, v: &mut Validator) -> Result<CoverageProbe, FieldError> {
        if self.report.trim().is_empty() {
            return Err(FieldError::new(
                "report",
                "expected the path of a coverage report",
            ));
        }
        let format = match self.format.as_deref() {
            None => None,
            Some(f) => Some(Format::from_name(f).ok_or_else(|| {
                FieldError::new(
                    "format",
                    format!(
                        "unknown coverage format \"{f}\" (expected one of: {})",
                        Format::ALL.map(Format::as_str).join(", ")
                    ),
                )
            })?),
        };
        let lines = percent("lines", self.lines)?;
        let branches = percent("branches", self.branches)?;
        let functions = percent("functions", self.functions)?;
        let per_file_lines = percent("per_file_lines", self.per_file_lines)?;
        if lines.is_none() && branches.is_none() && functions.is_none() && per_file_lines.is_none()
        {
            return Err(FieldError::new(
                "",
                "expected at least one threshold: lines, branches, functions or per_file_lines",
            ));
        }
        let mut gs = GlobSetBuilder::new();
        for (i, g) in self.exclude.iter().enumerate() {
            let glob = GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    FieldError::new(format!("exclude[{i}]"), format!("invalid glob: {e}"))
                })?;
            gs.add(glob);
        }
        let exclude = gs
            .build()
            .map_err(|e| FieldError::new("exclude", format!("invalid globs: {e}")))?;
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
                Duration::from_secs(30 * 60),
            )?),
            None => None,
        };
        Ok(CoverageProbe {
            report: PathBuf::from(self.report),
            format,
            run,
            cwd: self.cwd.map(PathBuf::from),
            lines,
            branches,
            functions,
            per_file_lines,
            exclude,
            exclude_text: self.exclude,
        })
    }
}

/// Guess the format of a report from its first bytes and a few marker keys.
pub fn detect(text: &str) -> Option<Format> {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<') {
        return Some(Format::Cobertura);
    }
    if t.starts_with('{') {
        // llvm-cov writes "type" last; `{"data":[{"files":` is its opening.
        if t.contains("\"llvm.coverage.json.export\"") || t.starts_with("{\"data\":[{\"files\":") {
            return Some(Format::LlvmJson);
        }
        if t.contains("\"meta\"") && t.contains("\"num_statements\"") {
            return Some(Format::CoveragePy);
        }
        if t.contains("\"coverable\"") && t.contains("\"traces\"") {
            return Some(Format::Tarpaulin);
        }
        return None;
    }
    let lcov = t.lines().take(50).any(|l| {
        let l = l.trim_start();
        l.starts_with("SF:") || l.starts_with("TN:")
    });
    lcov.then_some(Format::Lcov)
}

/// Parse `text` as `format`.
///
/// # Errors
/// The parser's [`ParseError`].
pub fn parse(format: Format, text: &str) -> Result<CoverageData, ParseError> {
    match format {
        Format::Lcov => lcov::parse(text),
        Format::Cobertura => cobertura::parse(text),
        Format::LlvmJson => llvm::parse(text),
        Format::CoveragePy => coveragepy::parse(text),
        Format::Tarpaulin => tarpaulin::parse(text),
    }
}

/// Read a report's bytes: detect (unless given) and parse.
///
/// # Errors
/// A message naming `name` and the place in it.
pub fn read(name: &str, bytes: &[u8], format: Option<Format>) -> Result<CoverageData, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "{name}: byte offset {}: not UTF-8 text, so not a coverage report",
            e.valid_up_to()
        )
    })?;
    if text.trim().is_empty() {
        return Err(format!("{name}: the report is empty"));
    }
    let format = match format.or_else(|| detect(text)) {
        Some(f) => f,
        None => {
            if text.trim_start().starts_with('{')
                && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text)
            {
                return Err(ParseError::json(&e).describe(name));
            }
            return Err(format!(
                "{name}: cannot tell the report format; set format to one of: {}",
                Format::ALL.map(Format::as_str).join(", ")
            ));
        }
    };
    parse(format, text).map_err(|e| format!("{} ({format})", e.describe(name)))
}

impl CoverageProbe {
    fn shown_path(&self, root: &Path, path: &str) -> String {
        let p = Path::new(path);
        if p.is_absolute() {
            let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
            if let Ok(rel) = p.strip_prefix(&root) {
                return rel.to_string_lossy().into_owned();
            }
        }
        path.strip_prefix("./").unwrap_or(path).to_string()
    }

    /// Run the probe once.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let report_path = ctx.resolve(&self.report);
        let root = match &self.cwd {
            Some(c) => ctx.resolve(c),
            None => ctx.checklist_dir.clone(),
        };
        let mut o = ProbeOutput::default();
        match self.obtain(ctx, &report_path, &mut o).await {
            Ok(data) => self.evaluate(&data, &root, o),
            Err(m) => {
                o.forced = Some(Status::Error);
                o.summary = m;
                o
            }
        }
    }

    /// Run `run` (when set), then read and parse the report and keep it as evidence; the
    /// message of an error outcome otherwise.
    async fn obtain(
        &self,
        ctx: &ProbeContext,
        report_path: &Path,
        o: &mut ProbeOutput,
    ) -> Result<CoverageData, String> {
        if let Some(run) = &self.run {
            run_first(ctx, run, report_path, o).await?;
        }
        let bytes = read_report(report_path).map_err(|m| m.to_string())?;
        let sha = hex::encode(Sha256::digest(&bytes));
        o.measure("report_sha256", sha.clone());
        let name = report_path.display().to_string();
        let data = read(&name, &bytes, self.format)?;
        let file_name = report_path
            .file_name()
            .map_or("report".into(), |n| n.to_string_lossy().into_owned());
        let ev = ctx
            .write_evidence(
                &file_name,
                &bytes,
                &format!("coverage report ({})", data.format),
                match data.format {
                    Format::Cobertura => "application/xml",
                    Format::Lcov => "text/plain",
                    _ => "application/json",
                },
            )
            .map_err(|m| format!("cannot keep the report as evidence: {m}"))?;
        o.evidence.push(ev);
        Ok(data)
    }

    fn is_excluded(&self, shown: &str, raw: &str) -> bool {
        !self.exclude_text.is_empty()
            && (self.exclude.is_match(shown) || self.exclude.is_match(raw))
    }

    /// Apply exclusions and thresholds to parsed data.
    fn evaluate(&self, data: &CoverageData, root: &Path, mut o: ProbeOutput) -> ProbeOutput {
        let shown: Vec<String> = data
            .files
            .iter()
            .map(|f| self.shown_path(root, &f.path))
            .collect();
        let kept: Vec<(&FileCoverage, &str)> = data
            .files
            .iter()
            .zip(shown.iter())
            .filter(|(f, s)| !self.is_excluded(s, &f.path))
            .map(|(f, s)| (f, s.as_str()))
            .collect();
        let excluded = data.files.len() - kept.len();
        let t = data::Totals::of(kept.iter().map(|(f, _)| *f));
        measure_totals(&mut o, data, &t, excluded);
        if t.lines.found == 0 {
            o.forced = Some(Status::Error);
            o.summary = format!(
                "the {} report has no measurable lines ({} files, {excluded} excluded): nothing was measured, so no coverage can be claimed",
                data.format, t.files
            );
            return o;
        }
        o.tables.push(least_covered(&kept, data));

        let unmeasurable = self.gates(&mut o, data, &t);
        if let Some(min) = self.per_file_lines {
            per_file_check(&mut o, &kept, t.files, min);
        }
        let mut parts = vec![format!("lines {}", pct(t.lines.percent()))];
        if data.has_branches && t.branches.found > 0 {
            parts.push(format!("branches {}", pct(t.branches.percent())));
        }
        if data.has_functions && t.functions.found > 0 {
            parts.push(format!("functions {}", pct(t.functions.percent())));
        }
        o.summary = format!(
            "{} over {} files ({}{})",
            parts.join(", "),
            t.files,
            data.format,
            if excluded > 0 {
                format!(", {excluded} excluded")
            } else {
                String::new()
            }
        );
        if !unmeasurable.is_empty() {
            o.forced = Some(Status::Error);
            o.summary = format!("cannot measure {}: {}", unmeasurable.join(", "), o.summary);
        }
        o
    }

    /// The line, branch and function minimums; returns the ones the report cannot measure
    /// (no data of that kind, or nothing found), which make the item an error.
    fn gates(&self, o: &mut ProbeOutput, data: &CoverageData, t: &data::Totals) -> Vec<String> {
        let mut unmeasurable = Vec::new();
        let mut gate = |o: &mut ProbeOutput,
                        name: &str,
                        unit: &str,
                        min: Option<f64>,
                        c: Counts,
                        available: bool| {
            let Some(min) = min else { return };
            match c.percent() {
                Some(p) if available => o.checks.push(Check::new(
                    name,
                    format!("≥ {min} %"),
                    format!("{} ({}/{} {unit})", pct(Some(p)), c.hit, c.found),
                    p + 1e-9 >= min,
                )),
                _ => {
                    unmeasurable.push(name.to_string());
                    o.checks.push(Check::new(
                        name,
                        format!("≥ {min} %"),
                        if available {
                            format!("no measurable {unit} in the report")
                        } else {
                            format!("the {} format has no {unit} data", data.format)
                        },
                        false,
                    ));
                }
            }
        };
        gate(o, "line coverage", "lines", self.lines, t.lines, true);
        gate(
            o,
            "branch coverage",
            "branches",
            self.branches,
            t.branches,
            data.has_branches,
        );
        gate(
            o,
            "function coverage",
            "functions",
            self.functions,
            t.functions,
            data.has_functions,
        );
        unmeasurable
    }
}

/// Totals for machines.
fn measure_totals(o: &mut ProbeOutput, data: &CoverageData, t: &data::Totals, excluded: usize) {
    o.measure("format", data.format.as_str());
    o.measure("files", t.files as u64);
    o.measure("excluded_files", excluded as u64);
    o.measure("lines_found", t.lines.found);
    o.measure("lines_hit", t.lines.hit);
    if let Some(p) = t.lines.percent() {
        o.measure("line_percent", p);
    }
    if data.has_branches {
        o.measure("branches_found", t.branches.found);
        o.measure("branches_hit", t.branches.hit);
        if let Some(p) = t.branches.percent() {
            o.measure("branch_percent", p);
        }
    }
    if data.has_functions {
        o.measure("functions_found", t.functions.found);
        o.measure("functions_hit", t.functions.hit);
        if let Some(p) = t.functions.percent() {
            o.measure("function_percent", p);
        }
    }
}

/// `per_file_lines`: every kept file at or above `min` percent of its lines.
fn per_file_check(o: &mut ProbeOutput, kept: &[(&FileCoverage, &str)], files: usize, min: f64) {
    let mut below: Vec<(f64, &str)> = kept
        .iter()
        .filter_map(|(f, s)| f.lines.percent().map(|p| (p, *s)))
        .filter(|(p, _)| p + 1e-9 < min)
        .collect();
    below.sort_by(|a, b| a.0.total_cmp(&b.0));
    o.measure("files_below_per_file_minimum", below.len() as u64);
    let measured = if below.is_empty() {
        format!("all {files} files")
    } else {
        let shown: Vec<String> = below
            .iter()
            .take(5)
            .map(|(p, s)| format!("{s} {}", pct(Some(*p))))
            .collect();
        format!(
            "{} file(s) below: {}{}",
            below.len(),
            shown.join(", "),
            if below.len() > 5 { ", …" } else { "" }
        )
    };
    o.checks.push(Check::new(
        "per-file line coverage",
        format!("≥ {min} % in every file"),
        measured,
        below.is_empty(),
    ));
}

fn least_covered(kept: &[(&FileCoverage, &str)], data: &CoverageData) -> Table {
    let mut rows: Vec<&(&FileCoverage, &str)> =
        kept.iter().filter(|(f, _)| f.lines.found > 0).collect();
    rows.sort_by(|a, b| {
        let pa = a.0.lines.percent().unwrap_or(100.0);
        let pb = b.0.lines.percent().unwrap_or(100.0);
        pa.total_cmp(&pb)
            .then((b.0.lines.found - b.0.lines.hit).cmp(&(a.0.lines.found - a.0.lines.hit)))
            .then(a.1.cmp(b.1))
    });
    let mut columns = vec![
        "file".to_string(),
        "lines".to_string(),
        "line %".to_string(),
    ];
    if data.has_branches {
        columns.push("branch %".into());
    }
    if data.has_functions {
        columns.push("function %".into());
    }
    let rows = rows
        .into_iter()
        .take(LEAST_COVERED)
        .map(|(f, s)| {
            let mut r = vec![
                s.to_string(),
                format!("{}/{}", f.lines.hit, f.lines.found),
                pct(f.lines.percent()),
            ];
            if data.has_branches {
                r.push(pct(f.branches.and_then(Counts::percent)));
            }
            if data.has_functions {
                r.push(pct(f.functions.and_then(Counts::percent)));
            }
            r
        })
        .collect();
    Table {
        title: format!("Least-covered files (up to {LEAST_COVERED})"),
        columns,
        rows,
    }
}

/// Run the command that writes the report: it must exit 0 and rewrite `report_path`. Records
/// its log tail and duration in `o`; the message of an error outcome otherwise.
async fn run_first(
    ctx: &ProbeContext,
    run: &ToolRun,
    report_path: &Path,
    o: &mut ProbeOutput,
) -> Result<(), String> {
    let started = SystemTime::now();
    let out = run.run(ctx).await.map_err(|e| e.to_string())?;
    o.log_tail = Some(out.log_tail.clone());
    o.measure("run_duration_ms", out.elapsed.as_millis() as u64);
    if out.exit_code != Some(0) {
        return Err(format!(
            "`{}` exited {}; no coverage measured",
            run.display(),
            out.exit_code
                .map_or("by a signal".to_string(), |c| c.to_string())
        ));
    }
    let fresh = std::fs::metadata(report_path)
        .and_then(|m| m.modified())
        .map(|m| m + Duration::from_secs(2) >= started);
    match fresh {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "`{}` succeeded but did not rewrite {}; refusing to read a stale report",
            run.display(),
            report_path.display()
        )),
        Err(e) => Err(format!(
            "`{}` succeeded but {} is missing: {e}",
            run.display(),
            report_path.display()
        )),
    }
}

crate::probe::probe_kind!(CoverageProbe, RawCoverageProbe, async);

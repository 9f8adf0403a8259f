//! The format-neutral coverage model every parser produces: per-file counts of measurable and
//! covered lines, branches and functions, and the totals computed from them.
//!
//! Totals are sums of counts, never averages of percentages, which is how lcov, llvm-cov,
//! coverage.py and tarpaulin compute their own summaries; so our totals equal theirs.

use std::fmt;

/// The coverage report formats prodready reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LCOV tracefile (`geninfo(1)` format; lcov 1.x `FN`/`FNDA` and 2.x `FNL`/`FNA`).
    Lcov,
    /// Cobertura XML (coverage.py `coverage xml`, `cargo llvm-cov --cobertura`, JaCoCo converters).
    Cobertura,
    /// `llvm-cov export -format=text` JSON (`cargo llvm-cov --json`), versions 2.x and 3.x.
    LlvmJson,
    /// coverage.py JSON report (`coverage json`), `meta.format` 2 or 3.
    CoveragePy,
    /// cargo-tarpaulin JSON (`cargo tarpaulin --out Json`).
    Tarpaulin,
}

impl Format {
    /// The name used in checklists.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Lcov => "lcov",
            Format::Cobertura => "cobertura",
            Format::LlvmJson => "llvm-json",
            Format::CoveragePy => "coverage-py",
            Format::Tarpaulin => "tarpaulin",
        }
    }

    /// Every format, for error messages.
    pub const ALL: [Format; 5] = [
        Format::Lcov,
        Format::Cobertura,
        Format::LlvmJson,
        Format::CoveragePy,
        Format::Tarpaulin,
    ];

    /// Parse a checklist name.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Covered out of measurable, for one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Measurable items (lines with code, branch outcomes, functions).
    pub found: u64,
    /// Items executed at least once.
    pub hit: u64,
}

impl Counts {
    /// Percentage covered (0–100), `None` when nothing is measurable.
    pub fn percent(self) -> Option<f64> {
        (self.found > 0).then(|| self.hit as f64 * 100.0 / self.found as f64)
    }

    /// Add another file's counts.
    pub fn add(&mut self, other: Counts) {
        self.found += other.found;
        self.hit += other.hit;
    }
}

/// Coverage of one source file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCoverage {
    /// The path as the report writes it.
    pub path: String,
    /// Lines (LCOV `DA`, llvm-cov `lines`, coverage.py statements, tarpaulin traces).
    pub lines: Counts,
    /// Branch outcomes; `None` when the format or the run has no branch data for the file.
    pub branches: Option<Counts>,
    /// Functions; `None` when the format has no function data.
    pub functions: Option<Counts>,
}

/// A parsed report.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageData {
    /// Which format it was read as.
    pub format: Format,
    /// Files in report order.
    pub files: Vec<FileCoverage>,
    /// Whether the format carries branch data at all (when false, a branch threshold is an error).
    pub has_branches: bool,
    /// Whether the format carries function data at all.
    pub has_functions: bool,
}

/// Totals over a set of files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Lines.
    pub lines: Counts,
    /// Branch outcomes.
    pub branches: Counts,
    /// Functions.
    pub functions: Counts,
    /// Files counted.
    pub files: usize,
}

impl CoverageData {
    /// Sum the counts of the files `keep` accepts.
    pub fn totals(&self, mut keep: impl FnMut(&FileCoverage) -> bool) -> Totals {
        Totals::of(self.files.iter().filter(|f| keep(f)))
    }
}

impl Totals {
    /// Sum the counts of `files`.
    pub fn of<'a>(files: impl IntoIterator<Item = &'a FileCoverage>) -> Totals {
        let mut t = Totals::default();
        for f in files {
            t.files += 1;
            t.lines.add(f.lines);
            if let Some(b) = f.branches {
                t.branches.add(b);
            }
            if let Some(n) = f.functions {
                t.functions.add(n);
            }
        }
        t
    }
}

/// Why a report could not be read: which file, where in it (when the parser knows) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where: `line N`, `line N column M`, or a byte offset; empty when unknown.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    /// An error at a 1-based line.
    pub fn at_line(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            at: format!("line {line}"),
            message: message.into(),
        }
    }

    /// An error whose position is unknown.
    pub fn whole(message: impl Into<String>) -> ParseError {
        ParseError {
            at: String::new(),
            message: message.into(),
        }
    }

    /// From a serde_json error (which knows line and column).
    pub fn json(e: &serde_json::Error) -> ParseError {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON: ",
            serde_json::error::Category::Syntax => "malformed JSON: ",
            _ => "",
        };
        ParseError {
            at: format!("line {} column {}", e.line(), e.column()),
            message: format!("{what}{e}"),
        }
    }

    /// The message with its place, for a file: `lcov.info:12: DA record …`.
    pub fn describe(&self, file: &str) -> String {
        if self.at.is_empty() {
            format!("{file}: {}", self.message)
        } else {
            format!("{file}: {}: {}", self.at, self.message)
        }
    }
}

/// Format a percentage for people: two decimals, `n/a` when nothing is measurable.
pub fn pct(p: Option<f64>) -> String {
    crate::units::format_percent_opt(p.map(|v| v / 100.0), 2)
}

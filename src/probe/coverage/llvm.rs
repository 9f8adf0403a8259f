//! `llvm-cov export -format=text` JSON (`cargo llvm-cov --json`), export format versions 2.x
//! (LLVM 12–17; 2.0.1 added branches) and 3.x (LLVM 18+; 3.0 added MC/DC, 3.1 adds more).
//!
//! Counting uses each file's `summary` (`lines`, `functions`, `branches`): llvm-cov's own
//! `totals` are the sum of these per-file summaries, so the sums equal `llvm-cov report`'s
//! TOTAL row. Functions are llvm-cov's "functions" (not instantiations).

use serde::Deserialize;

use super::data::{Counts, CoverageData, FileCoverage, Format, ParseError};

#[derive(Deserialize)]
struct Export {
    #[serde(rename = "type")]
    kind: String,
    version: String,
    data: Vec<Unit>,
}

#[derive(Deserialize)]
struct Unit {
    files: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    filename: String,
    summary: Summary,
}

#[derive(Deserialize)]
struct Summary {
    lines: Metric,
    functions: Option<Metric>,
    branches: Option<Metric>,
}

#[derive(Deserialize)]
struct Metric {
    count: u64,
    covered: u64,
}

impl From<&Metric> for Counts {
    fn from(m: &Metric) -> Counts {
        Counts {
            found: m.count,
            hit: m.covered,
        }
    }
}

/// Parse an llvm-cov export JSON document.
///
/// # Errors
/// A [`ParseError`] with line and column for malformed or truncated JSON or a missing field,
/// and one naming the version when it is not 2.x or 3.x.
pub fn parse(text: &str) -> Result<CoverageData, ParseError> {
    let ex: Export = serde_json::from_str(text).map_err(|e| ParseError::json(&e))?;
    if ex.kind != "llvm.coverage.json.export" {
        return Err(ParseError::whole(format!(
            "\"type\" is \"{}\", expected \"llvm.coverage.json.export\"",
            ex.kind
        )));
    }
    let major = ex.version.split('.').next().unwrap_or("");
    if major != "2" && major != "3" {
        return Err(ParseError::whole(format!(
            "llvm-cov export version {} is not supported (expected 2.x or 3.x)",
            ex.version
        )));
    }
    let mut files = Vec::new();
    let mut has_branches = false;
    for unit in &ex.data {
        for f in &unit.files {
            has_branches |= f.summary.branches.is_some();
            files.push(FileCoverage {
                path: f.filename.clone(),
                lines: (&f.summary.lines).into(),
                branches: f.summary.branches.as_ref().map(Counts::from),
                functions: f.summary.functions.as_ref().map(Counts::from),
            });
        }
    }
    if files.is_empty() {
        return Err(ParseError::whole("the export lists no files"));
    }
    Ok(CoverageData {
        format: Format::LlvmJson,
        files,
        has_branches,
        has_functions: true,
    })
}

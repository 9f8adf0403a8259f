//! coverage.py's JSON report (`coverage json`): `meta.format` 2 and 3 (coverage.py 7), and the
//! unnumbered format of coverage.py 6 (Debian 12's `python3-coverage` 6.5), whose file
//! summaries carry the same fields.
//!
//! Lines are coverage.py's statements: `summary.covered_lines` of `summary.num_statements`
//! per file. Branches (when the run measured them, `meta.branch_coverage`) are
//! `covered_branches` of `num_branches`. coverage.py's single "TOTAL" percentage combines both
//! ((covered lines + covered branches) / (statements + branches)); prodready reports and gates
//! them separately. coverage.py has no function coverage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::data::{Counts, CoverageData, FileCoverage, Format, ParseError};

#[derive(Deserialize)]
struct Report {
    meta: Meta,
    files: BTreeMap<String, File>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    format: Option<u32>,
    /// coverage.py's version, e.g. `"6.5.0"`; the only mark of a report before format numbers.
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    branch_coverage: bool,
}

#[derive(Deserialize)]
struct File {
    summary: Summary,
}

#[derive(Deserialize)]
struct Summary {
    covered_lines: u64,
    num_statements: u64,
    #[serde(default)]
    num_branches: Option<u64>,
    #[serde(default)]
    covered_branches: Option<u64>,
}

/// Parse a coverage.py JSON report.
///
/// # Errors
/// A [`ParseError`] with line and column for malformed or truncated JSON or a missing field,
/// and one naming the format when it is neither 2, 3 nor coverage.py 6's (no format number,
/// a `meta.version` of 6.x).
pub fn parse(text: &str) -> Result<CoverageData, ParseError> {
    let r: Report = serde_json::from_str(text).map_err(|e| ParseError::json(&e))?;
    let v6 = r
        .meta
        .version
        .as_deref()
        .is_some_and(|v| v.starts_with("6."));
    match r.meta.format {
        Some(2) | Some(3) => {}
        None if v6 => {}
        other => {
            return Err(ParseError::whole(format!(
                "coverage.py JSON format {} (coverage.py {}) is not supported (expected format 2 or 3, or coverage.py 6)",
                other.map_or("(missing)".to_string(), |f| f.to_string()),
                r.meta.version.as_deref().unwrap_or("unknown")
            )));
        }
    }
    // coverage.py writes files sorted by path; BTreeMap keeps that order.
    let files = r
        .files
        .into_iter()
        .map(|(path, f)| FileCoverage {
            path,
            lines: Counts {
                found: f.summary.num_statements,
                hit: f.summary.covered_lines,
            },
            branches: match (
                r.meta.branch_coverage,
                f.summary.num_branches,
                f.summary.covered_branches,
            ) {
                (true, Some(found), Some(hit)) => Some(Counts { found, hit }),
                _ => None,
            },
            functions: None,
        })
        .collect::<Vec<_>>();
    if files.is_empty() {
        return Err(ParseError::whole("the report lists no files"));
    }
    Ok(CoverageData {
        format: Format::CoveragePy,
        files,
        has_branches: r.meta.branch_coverage,
        has_functions: false,
    })
}

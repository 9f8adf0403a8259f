//! cargo-tarpaulin's JSON report (`cargo tarpaulin --out Json`, `tarpaulin-report.json`).
//!
//! Each entry of `files` has `path` (a list of path components), `traces` and the counts
//! `covered` of `coverable` lines, which tarpaulin's own "x/y lines covered" summary sums.
//! Tarpaulin reports line coverage only.

use serde::Deserialize;

use super::data::{Counts, CoverageData, FileCoverage, Format, ParseError};

#[derive(Deserialize)]
struct Report {
    files: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    path: Vec<String>,
    covered: u64,
    coverable: u64,
}

/// Join tarpaulin's path components (`["/", "home", "src", "lib.rs"]`) into a path.
fn join(parts: &[String]) -> String {
    let mut s = String::new();
    for p in parts {
        if !s.is_empty() && !s.ends_with('/') {
            s.push('/');
        }
        s.push_str(p);
    }
    s
}

/// Parse a tarpaulin JSON report.
///
/// # Errors
/// A [`ParseError`] with line and column for malformed or truncated JSON or a missing field.
pub fn parse(text: &str) -> Result<CoverageData, ParseError> {
    let r: Report = serde_json::from_str(text).map_err(|e| ParseError::json(&e))?;
    if r.files.is_empty() {
        return Err(ParseError::whole("the report lists no files"));
    }
    let files = r
        .files
        .iter()
        .map(|f| FileCoverage {
            path: join(&f.path),
            lines: Counts {
                found: f.coverable,
                hit: f.covered,
            },
            branches: None,
            functions: None,
        })
        .collect();
    Ok(CoverageData {
        format: Format::Tarpaulin,
        files,
        has_branches: false,
        has_functions: false,
    })
}

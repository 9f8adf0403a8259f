//! Cobertura XML (the `coverage-04.dtd` shape written by coverage.py `coverage xml`,
//! `cargo llvm-cov --cobertura`, gcovr and JaCoCo converters).
//!
//! Counting: each `<class filename=…>` contributes its `<lines><line number hits
//! [branch condition-coverage="50% (1/2)"]>`; classes naming the same file are merged, a line
//! number counted once (hit when any class hit it). Method-level `<line>` copies are ignored.
//! Branches come from `condition-coverage` `(covered/valid)`, which is how the root's
//! `branches-covered`/`branches-valid` are computed by the writers. Cobertura has no function
//! totals, so function coverage is not available from this format.

use std::collections::{BTreeMap, HashMap};

use super::data::{Counts, CoverageData, FileCoverage, Format, ParseError};

#[derive(Default)]
struct FileAcc {
    lines: BTreeMap<u64, u64>,
    branches: BTreeMap<u64, (u64, u64)>,
}

fn pos(doc: &roxmltree::Document<'_>, node: roxmltree::Node<'_, '_>) -> String {
    let p = doc.text_pos_at(node.range().start);
    format!("line {} column {}", p.row, p.col)
}

/// Parse `(a/b)` out of `condition-coverage="50% (1/2)"`.
fn condition(text: &str) -> Option<(u64, u64)> {
    let inner = text.split_once('(')?.1.split_once(')')?.0;
    let (a, b) = inner.split_once('/')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Add one `<line>` to its file: the hits (the highest when a line is listed twice) and, on a
/// branch line, its `condition-coverage`. Returns whether it was a branch line.
fn add_line(
    doc: &roxmltree::Document<'_>,
    line: roxmltree::Node<'_, '_>,
    acc: &mut FileAcc,
) -> Result<bool, ParseError> {
    let get = |attr: &str| -> Result<u64, ParseError> {
        let v = line.attribute(attr).ok_or_else(|| ParseError {
            at: pos(doc, line),
            message: format!("<line> without a {attr} attribute"),
        })?;
        // Some writers emit hits as a float ("1.0") or, past u64, as huge numbers.
        v.parse::<u64>()
            .or_else(|_| {
                v.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
                    .ok_or(())
            })
            .map_err(|_| ParseError {
                at: pos(doc, line),
                message: format!("<line {attr}=\"{v}\">: expected a non-negative number"),
            })
    };
    let number = get("number")?;
    let hits = get("hits")?;
    let e = acc.lines.entry(number).or_default();
    *e = (*e).max(hits);
    if line.attribute("branch") != Some("true") {
        return Ok(false);
    }
    let Some(cc) = line.attribute("condition-coverage") else {
        return Ok(false);
    };
    let Some((a, b)) = condition(cc) else {
        return Err(ParseError {
            at: pos(doc, line),
            message: format!("condition-coverage=\"{cc}\": expected \"N% (covered/valid)\""),
        });
    };
    let e = acc.branches.entry(number).or_default();
    if b > e.1 || (b == e.1 && a > e.0) {
        *e = (a, b);
    }
    Ok(true)
}

/// Parse a Cobertura XML report.
///
/// # Errors
/// A [`ParseError`] with line and column for malformed XML (truncation included), a root that
/// is not `<coverage>`, or a `<line>` without a numeric `number`/`hits`.
pub fn parse(text: &str) -> Result<CoverageData, ParseError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| {
        let p = e.pos();
        ParseError {
            at: format!("line {} column {}", p.row, p.col),
            message: format!("malformed or truncated XML: {e}"),
        }
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "coverage" {
        return Err(ParseError {
            at: pos(&doc, root),
            message: format!(
                "root element is <{}>, expected <coverage> (Cobertura)",
                root.tag_name().name()
            ),
        });
    }
    let mut order: Vec<String> = Vec::new();
    let mut files: HashMap<String, FileAcc> = HashMap::new();
    let mut any_branch = false;
    for class in root.descendants().filter(|n| n.has_tag_name("class")) {
        let Some(filename) = class.attribute("filename") else {
            return Err(ParseError {
                at: pos(&doc, class),
                message: "<class> without a filename attribute".into(),
            });
        };
        if !files.contains_key(filename) {
            order.push(filename.to_string());
        }
        let acc = files.entry(filename.to_string()).or_default();
        for lines in class.children().filter(|n| n.has_tag_name("lines")) {
            for line in lines.children().filter(|n| n.has_tag_name("line")) {
                any_branch |= add_line(&doc, line, acc)?;
            }
        }
    }
    if order.is_empty() {
        return Err(ParseError {
            at: pos(&doc, root),
            message: "no <class> elements: the report lists no files".into(),
        });
    }
    let files = order
        .into_iter()
        .map(|path| {
            let acc = files.remove(&path).unwrap_or_default();
            let lines = Counts {
                found: acc.lines.len() as u64,
                hit: acc.lines.values().filter(|h| **h > 0).count() as u64,
            };
            let mut br = Counts::default();
            for (a, b) in acc.branches.values() {
                br.found += b;
                br.hit += a.min(b);
            }
            FileCoverage {
                path,
                lines,
                branches: Some(br),
                functions: None,
            }
        })
        .collect();
    Ok(CoverageData {
        format: Format::Cobertura,
        files,
        has_branches: any_branch || root.attribute("branches-valid").is_some(),
        has_functions: false,
    })
}

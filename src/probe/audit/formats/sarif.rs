//! SARIF 2.1.0 (OASIS; bandit, semgrep, gitleaks, clippy-sarif, …): each failing result is a
//! finding, rated by `security-severity` where the tool gives one, else by its SARIF level.

use serde_json::Value;

use super::document::{ShapeError, arr_at, str_at};
use super::first_sentence;
use crate::probe::audit::finding::{Finding, Kind, Level, Scan};

/// SARIF `level` → severity (documented mapping): `error` → high, `warning` → medium,
/// `note` → low, `none` → none.
pub fn sarif_level(level: &str) -> Option<Level> {
    match level {
        "error" => Some(Level::High),
        "warning" => Some(Level::Medium),
        "note" => Some(Level::Low),
        "none" => Some(Level::None),
        _ => None,
    }
}

fn security_severity(props: Option<&Value>) -> Option<f64> {
    let s = props?.get("security-severity")?;
    match s {
        Value::String(t) => t.trim().parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Parse a SARIF 2.1.0 log.
pub(super) fn sarif(v: &Value) -> Result<Scan, ShapeError> {
    let version = str_at(v, "/version")?;
    if version != "2.1.0" {
        return Err(ShapeError::new(
            "/version",
            format!("\"{version}\": only SARIF 2.1.0 is supported"),
        ));
    }
    let runs = arr_at(v, "/runs")?;
    let mut scan = Scan::default();
    let mut tools = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        let tool = str_at(run, "/tool/driver/name").map_err(|e| e.under(&format!("/runs/{r}")))?;
        tools.push(tool.clone());
        let rules = run
            .pointer("/tool/driver/rules")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let results = match run.get("results") {
            None | Some(Value::Null) => {
                return Err(ShapeError::new(
                    format!("/runs/{r}/results"),
                    "missing, so the run did not complete (SARIF §3.14.23)",
                ));
            }
            Some(x) => x.as_array().ok_or_else(|| {
                ShapeError::new(format!("/runs/{r}/results"), "expected an array")
            })?,
        };
        for res in results {
            // Only `kind: fail` (the default) is a finding; pass/notApplicable/informational are not.
            let kind = res.get("kind").and_then(Value::as_str).unwrap_or("fail");
            if kind != "fail" || res.get("baselineState").and_then(Value::as_str) == Some("absent")
            {
                continue;
            }
            scan.findings
                .push(sarif_finding(res, sarif_rule(rules, res)));
        }
    }
    scan.scanned = Some(runs.len() as u64);
    scan.scanned_unit = "runs";
    scan.tool = format!("SARIF ({})", tools.join(", "));
    Ok(scan)
}

/// The rule a SARIF result refers to: by `ruleIndex` (or `rule.index`), else by `ruleId` (or
/// `rule.id`) among the driver's rules.
fn sarif_rule<'a>(rules: &'a [Value], res: &Value) -> Option<&'a Value> {
    if let Some(i) = res
        .get("ruleIndex")
        .or_else(|| res.pointer("/rule/index"))
        .and_then(Value::as_u64)
        && let Some(rule) = rules.get(i as usize)
    {
        return Some(rule);
    }
    let id = res
        .get("ruleId")
        .or_else(|| res.pointer("/rule/id"))
        .and_then(Value::as_str)?;
    rules
        .iter()
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
}

/// One SARIF result as a finding: its rule id, severity (`security-severity` first, else the
/// SARIF level), title, location and whether an accepted suppression covers it.
fn sarif_finding(res: &Value, rule: Option<&Value>) -> Finding {
    let id = res
        .get("ruleId")
        .or_else(|| res.pointer("/rule/id"))
        .and_then(Value::as_str)
        .or_else(|| rule.and_then(|r| r.get("id")).and_then(Value::as_str))
        .unwrap_or("(no rule id)")
        .to_string();
    let suppressed = res
        .get("suppressions")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|x| {
                !matches!(
                    x.get("status").and_then(Value::as_str),
                    Some("rejected") | Some("underReview")
                )
            })
        });
    let ss = security_severity(res.get("properties"))
        .or_else(|| security_severity(rule.and_then(|r| r.get("properties"))));
    let level = res
        .get("level")
        .and_then(Value::as_str)
        .or_else(|| {
            rule.and_then(|r| r.pointer("/defaultConfiguration/level"))
                .and_then(Value::as_str)
        })
        .unwrap_or("warning");
    let (severity, score, source) = match ss {
        Some(s) => (
            Some(Level::from_score(s)),
            Some(s),
            format!("security-severity {s}"),
        ),
        None => (sarif_level(level), None, format!("SARIF level {level}")),
    };
    let message = res
        .pointer("/message/text")
        .and_then(Value::as_str)
        .map(first_sentence)
        .unwrap_or_default();
    let title = rule
        .and_then(|r| r.pointer("/shortDescription/text"))
        .and_then(Value::as_str)
        .map(first_sentence)
        .filter(|t| !t.is_empty())
        .unwrap_or(message);
    let loc = res.pointer("/locations/0/physicalLocation");
    let uri = loc
        .and_then(|l| l.pointer("/artifactLocation/uri"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let line = loc
        .and_then(|l| l.pointer("/region/startLine"))
        .and_then(Value::as_u64);
    let package = match line {
        Some(n) if !uri.is_empty() => format!("{uri}:{n}"),
        _ => uri.to_string(),
    };
    Finding {
        id,
        aliases: Vec::new(),
        package,
        version: String::new(),
        severity,
        score,
        severity_source: source,
        title,
        patched: String::new(),
        kind: if suppressed {
            Kind::Warning("suppressed".into())
        } else {
            Kind::Vulnerability
        },
    }
}

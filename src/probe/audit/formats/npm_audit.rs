//! npm's report (`npm audit --json`, npm 7+, `auditReportVersion` 2): one entry per vulnerable
//! package, each advisory in its `via` list. Severity comes from the CVSS vector, else from
//! npm's own severity word.

use serde_json::{Map, Value};

use super::document::{ShapeError, at};
use super::from_vector;
use crate::probe::audit::finding::{Finding, Kind, Level, Scan};

fn npm_level(word: &str) -> Option<Level> {
    match word {
        "info" => Some(Level::None),
        "low" => Some(Level::Low),
        "moderate" | "medium" => Some(Level::Medium),
        "high" => Some(Level::High),
        "critical" => Some(Level::Critical),
        _ => None,
    }
}

/// Parse an npm audit report.
pub(super) fn npm_audit(v: &Value) -> Result<Scan, ShapeError> {
    let version = at(v, "/auditReportVersion")?.as_u64();
    if version != Some(2) {
        return Err(ShapeError::new(
            "/auditReportVersion",
            format!(
                "{}: only npm 7+ reports (version 2) are supported",
                v["auditReportVersion"]
            ),
        ));
    }
    let mut scan = Scan {
        tool: "npm audit".into(),
        ..Scan::default()
    };
    scan.scanned = v
        .pointer("/metadata/dependencies/total")
        .and_then(Value::as_u64);
    let vulns = at(v, "/vulnerabilities")?
        .as_object()
        .ok_or_else(|| ShapeError::new("/vulnerabilities", "expected an object"))?;
    for (name, entry) in vulns {
        let fix = fix_of(name, entry);
        for via in entry
            .get("via")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // A string `via` names another vulnerable package this one depends on; that
            // package has its own entry with the advisory.
            let Some(obj) = via.as_object() else { continue };
            scan.findings.push(finding(name, via, obj, &fix)?);
        }
    }
    Ok(scan)
}

/// What fixes package `name`'s entry: `npm audit fix`, or the package and version to move to.
fn fix_of(name: &str, entry: &Value) -> String {
    match entry.get("fixAvailable") {
        Some(Value::Bool(true)) => "fix available (npm audit fix)".to_string(),
        Some(Value::Object(o)) => format!(
            "{}@{}{}",
            o.get("name").and_then(Value::as_str).unwrap_or(name),
            o.get("version").and_then(Value::as_str).unwrap_or("?"),
            if o.get("isSemVerMajor").and_then(Value::as_bool) == Some(true) {
                " (semver-major)"
            } else {
                ""
            }
        ),
        _ => String::new(),
    }
}

/// One advisory (`via` object `obj`) of package `name`'s entry as a finding.
fn finding(
    name: &str,
    via: &Value,
    obj: &Map<String, Value>,
    fix: &str,
) -> Result<Finding, ShapeError> {
    let url = obj.get("url").and_then(Value::as_str).unwrap_or("");
    let id = url
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| obj.get("source").map(|s| s.to_string()))
        .unwrap_or_else(|| "npm-advisory".into());
    let vector = via.pointer("/cvss/vectorString").and_then(Value::as_str);
    let (mut severity, score, mut source) =
        from_vector(vector).map_err(|e| ShapeError::new(format!("/vulnerabilities/{name}"), e))?;
    if severity.is_none()
        && let Some(word) = obj.get("severity").and_then(Value::as_str)
    {
        severity = npm_level(word);
        source = format!("npm severity \"{word}\" (no CVSS vector)");
    }
    let text = |key: &str| obj.get(key).and_then(Value::as_str);
    Ok(Finding {
        id,
        aliases: obj
            .get("source")
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        package: text("name").unwrap_or(name).to_string(),
        version: text("range").unwrap_or("").to_string(),
        severity,
        score: score.or_else(|| {
            via.pointer("/cvss/score")
                .and_then(Value::as_f64)
                .filter(|s| *s > 0.0)
        }),
        severity_source: source,
        title: text("title").unwrap_or("").to_string(),
        patched: fix.to_string(),
        kind: Kind::Vulnerability,
    })
}

//! pip `safety`'s report (`safety check --output json`, 2.x): `report_meta`, then
//! `vulnerabilities`, each with its package, analyzed version, advisory, CVE and, when the
//! database has it, a CVSS v3 (or v2) block whose `vector_string` is scored like the other
//! formats' vectors. No vector is `unknown` severity; a bare base score is rated by FIRST's
//! ranges. Vulnerabilities safety itself ignored (its policy file) are noted, not gated.

use serde_json::Value;

use super::document::{ShapeError, arr_at, str_at, strings};
use super::{first_sentence, from_vector};
use crate::probe::audit::finding::{Finding, Kind, Level, Scan};

/// Parse a safety report.
pub(super) fn safety(v: &Value) -> Result<Scan, ShapeError> {
    let mut scan = Scan {
        tool: "safety".into(),
        ..Scan::default()
    };
    scan.scanned = v
        .pointer("/report_meta/packages_found")
        .and_then(Value::as_u64);
    for (i, vuln) in arr_at(v, "/vulnerabilities")?.iter().enumerate() {
        let at = format!("/vulnerabilities/{i}");
        let id = match vuln.get("vulnerability_id") {
            Some(Value::Number(n)) => n.to_string(),
            _ => str_at(vuln, "/vulnerability_id").map_err(|e| e.under(&at))?,
        };
        let (severity, score, source) = severity(vuln.get("severity"))
            .map_err(|m| ShapeError::new(format!("{at}/severity"), m))?;
        scan.findings.push(Finding {
            id,
            aliases: vuln
                .get("CVE")
                .and_then(Value::as_str)
                .map(|c| vec![c.to_string()])
                .unwrap_or_default(),
            package: str_at(vuln, "/package_name").map_err(|e| e.under(&at))?,
            version: str_at(vuln, "/analyzed_version").map_err(|e| e.under(&at))?,
            severity,
            score,
            severity_source: source,
            title: first_sentence(vuln.get("advisory").and_then(Value::as_str).unwrap_or("")),
            patched: strings(vuln.get("fixed_versions")).join(", "),
            kind: Kind::Vulnerability,
        });
    }
    let ignored = v
        .get("ignored_vulnerabilities")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if ignored > 0 {
        scan.notes.push(format!(
            "{ignored} vulnerabilities ignored by safety's own policy (not gated here; use ignore)"
        ));
    }
    Ok(scan)
}

/// `(severity, score, source)` of a safety `severity` block: the CVSS v3 vector, else the v2
/// one, else a base score alone; `null` is unknown.
fn severity(block: Option<&Value>) -> Result<(Option<Level>, Option<f64>, String), String> {
    let Some(b) = block.filter(|b| !b.is_null()) else {
        return Ok((None, None, "safety reports no CVSS".into()));
    };
    for key in ["cvssv3", "cvssv2"] {
        let Some(c) = b.get(key).filter(|c| !c.is_null()) else {
            continue;
        };
        if let Some(vec) = c.get("vector_string").and_then(Value::as_str) {
            // A v2 vector has no `CVSS:` prefix; the cvss crate reads v3 and v4 only.
            if vec.starts_with("CVSS:") {
                return from_vector(Some(vec));
            }
        }
        if let Some(score) = c.get("base_score").and_then(Value::as_f64) {
            return Ok((
                Some(Level::from_score(score)),
                Some(score),
                format!("{key} base score"),
            ));
        }
    }
    Ok((None, None, "safety reports no CVSS".into()))
}

//! pip-audit's report (`pip-audit -f json`, 2.x): dependencies with their vulnerabilities. It
//! carries no CVSS, so every finding is of unknown severity; skipped dependencies are noted.

use serde_json::Value;

use super::document::{ShapeError, arr_at, str_at, strings};
use super::first_sentence;
use crate::probe::audit::finding::{Finding, Kind, Scan};

/// Parse a pip-audit report.
pub(super) fn pip_audit(v: &Value) -> Result<Scan, ShapeError> {
    let mut scan = Scan {
        tool: "pip-audit".into(),
        ..Scan::default()
    };
    let deps = arr_at(v, "/dependencies")?;
    let mut audited = 0;
    for (i, d) in deps.iter().enumerate() {
        let name = str_at(d, "/name").map_err(|e| e.under(&format!("/dependencies/{i}")))?;
        if let Some(reason) = d.get("skip_reason").and_then(Value::as_str) {
            scan.notes.push(format!("{name} was not audited: {reason}"));
            continue;
        }
        audited += 1;
        let version = str_at(d, "/version").map_err(|e| e.under(&format!("/dependencies/{i}")))?;
        for (j, vuln) in d
            .get("vulns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let id = str_at(vuln, "/id")
                .map_err(|e| e.under(&format!("/dependencies/{i}/vulns/{j}")))?;
            let desc = vuln
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            scan.findings.push(Finding {
                id,
                aliases: strings(vuln.get("aliases")),
                package: name.clone(),
                version: version.clone(),
                severity: None,
                score: None,
                severity_source: "pip-audit reports no CVSS".into(),
                title: first_sentence(desc),
                patched: strings(vuln.get("fix_versions")).join(", "),
                kind: Kind::Vulnerability,
            });
        }
    }
    scan.scanned = Some(audited);
    Ok(scan)
}

//! cargo-audit's report (`cargo audit --json`, the serialized `rustsec::Report`): the
//! vulnerabilities and the warnings (unmaintained, unsound, yanked, notice), and what to do
//! when cargo-audit or its advisory database is missing.

use std::path::Path;

use serde_json::Value;

use super::document::{ShapeError, arr_at, at, str_at, strings};
use super::from_vector;
use crate::probe::audit::finding::{Finding, Kind, Scan};

/// cargo's error when `cargo audit` runs without cargo-audit installed (exit status 101).
pub(super) const CARGO_NO_SUCH_AUDIT: &str = "no such command: `audit`";

/// The remedy for an advisory database cargo-audit could not open or fetch: clone it where
/// `argv`'s `--db` points (a relative path resolved against `workdir`, where it ran), or to
/// cargo-audit's default `~/.cargo/advisory-db` without `--db`.
pub(super) fn fetch_advisory_db(argv: &[&str], workdir: &Path) -> String {
    let db = argv
        .iter()
        .position(|a| *a == "--db")
        .and_then(|i| argv.get(i + 1).copied())
        .or_else(|| argv.iter().find_map(|a| a.strip_prefix("--db=")));
    let how = match db {
        Some(db) if db.starts_with('~') => format!("`git clone {ADVISORY_DB_URL} {db}`"),
        Some(db) => format!(
            "`git clone {ADVISORY_DB_URL} {}`",
            workdir.join(db).display()
        ),
        None => format!(
            "`git clone {ADVISORY_DB_URL} ~/.cargo/advisory-db` (or run `cargo audit` once \
             with network access)"
        ),
    };
    format!("the RustSec advisory database could not be opened or fetched: fetch it with {how}")
}

/// Where the RustSec advisory database is published.
const ADVISORY_DB_URL: &str = "https://github.com/rustsec/advisory-db";

fn rustsec_finding(item: &Value, ptr: &str, kind: Kind) -> Result<Finding, ShapeError> {
    let pkg_name = str_at(item, "/package/name").map_err(|e| e.under(ptr))?;
    let pkg_version = str_at(item, "/package/version").map_err(|e| e.under(ptr))?;
    let adv = item.get("advisory").filter(|a| !a.is_null());
    let Some(adv) = adv else {
        // A yanked crate has no advisory.
        let k = match &kind {
            Kind::Warning(k) => k.clone(),
            Kind::Vulnerability => {
                return Err(ShapeError::new(format!("{ptr}/advisory"), "missing"));
            }
        };
        return Ok(Finding {
            id: format!("{k}:{pkg_name}@{pkg_version}"),
            aliases: vec![format!("{pkg_name}@{pkg_version}")],
            package: pkg_name.clone(),
            version: pkg_version,
            severity: None,
            score: None,
            severity_source: "no advisory".into(),
            title: format!("{pkg_name} {k}"),
            patched: String::new(),
            kind,
        });
    };
    let id = str_at(adv, "/id").map_err(|e| e.under(&format!("{ptr}/advisory")))?;
    let (severity, score, source) = from_vector(adv.get("cvss").and_then(Value::as_str))
        .map_err(|e| ShapeError::new(ptr, e))?;
    let patched = strings(item.pointer("/versions/patched")).join(", ");
    Ok(Finding {
        id,
        aliases: strings(adv.get("aliases")),
        package: pkg_name,
        version: pkg_version,
        severity,
        score,
        severity_source: source,
        title: adv
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        patched,
        kind,
    })
}

/// Parse a cargo-audit report.
pub(super) fn cargo_audit(v: &Value) -> Result<Scan, ShapeError> {
    let mut scan = Scan {
        tool: "cargo-audit".into(),
        ..Scan::default()
    };
    let advisories = at(v, "/database/advisory-count")?
        .as_u64()
        .ok_or_else(|| ShapeError::new("/database/advisory-count", "expected a number"))?;
    if advisories == 0 {
        return Err(ShapeError::new(
            "/database/advisory-count",
            "0: the advisory database is empty, nothing was checked",
        ));
    }
    scan.scanned = v
        .pointer("/lockfile/dependency-count")
        .and_then(Value::as_u64);
    for (i, item) in arr_at(v, "/vulnerabilities/list")?.iter().enumerate() {
        scan.findings.push(rustsec_finding(
            item,
            &format!("/vulnerabilities/list/{i}"),
            Kind::Vulnerability,
        )?);
    }
    if let Some(w) = v.get("warnings").and_then(Value::as_object) {
        for (kind, list) in w {
            for (i, item) in list.as_array().into_iter().flatten().enumerate() {
                scan.findings.push(rustsec_finding(
                    item,
                    &format!("/warnings/{kind}/{i}"),
                    Kind::Warning(kind.clone()),
                )?);
            }
        }
    }
    Ok(scan)
}

//! Parsers for the scanners' JSON reports: cargo-audit (`cargo audit --json`, the serialized
//! `rustsec::Report`), pip-audit (`pip-audit -f json`), safety (`safety check --output json`), npm (`npm audit --json`, npm 7+ report
//! version 2) and SARIF 2.1.0 (OASIS; bandit, semgrep, gitleaks, clippy-sarif, …).
//!
//! The documents are read as JSON values and navigated by key, so a missing key is reported by
//! its JSON pointer (e.g. `/vulnerabilities/list/0/advisory/id`), and a syntax error or
//! truncation by line and column.
//!
//! One file per format (`cargo_audit`, `pip_audit`, `npm_audit`, `sarif`) and the JSON
//! navigation they share (`document`); this file tells the formats apart and holds what they
//! have in common.

mod cargo_audit;
mod document;
mod npm_audit;
mod pip_audit;
mod safety;
mod sarif;

use std::path::Path;

use serde_json::Value;

use super::finding::{Level, Scan, rate_vector};
use cargo_audit::{CARGO_NO_SUCH_AUDIT, fetch_advisory_db};
pub use document::{ShapeError, SyntaxError, json};
pub use sarif::sarif_level;

/// The audit report formats prodready reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `cargo audit --json`.
    CargoAudit,
    /// `pip-audit -f json` (2.x: an object with `dependencies`).
    PipAudit,
    /// `npm audit --json` (npm 7+, `auditReportVersion` 2).
    NpmAudit,
    /// SARIF 2.1.0.
    Sarif,
    /// `safety check --output json` (2.x).
    Safety,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::CargoAudit,
        Format::PipAudit,
        Format::NpmAudit,
        Format::Sarif,
        Format::Safety,
    ];

    /// The name used in checklists.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::CargoAudit => "cargo-audit",
            Format::PipAudit => "pip-audit",
            Format::NpmAudit => "npm-audit",
            Format::Sarif => "sarif",
            Format::Safety => "safety",
        }
    }

    /// Parse a checklist name.
    pub fn from_name(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The scanner a `run` command line (argv as written) starts, when prodready knows it:
    /// `cargo [+toolchain] audit …` or `cargo-audit …`, `pip-audit …`, `npm audit …`. `None`
    /// otherwise (e.g. a SARIF-writing tool: its format is known only from its report).
    pub fn of_command(argv: &[&str]) -> Option<Format> {
        let program = argv.first().map(|p| p.rsplit('/').next().unwrap_or(p))?;
        let subcommand = argv[1..].iter().find(|a| !a.starts_with(['-', '+']));
        match (program, subcommand) {
            ("cargo", Some(&"audit")) | ("cargo-audit", _) => Some(Format::CargoAudit),
            ("pip-audit", _) => Some(Format::PipAudit),
            ("safety", _) => Some(Format::Safety),
            ("npm", Some(&"audit")) => Some(Format::NpmAudit),
            _ => None,
        }
    }

    /// What to do about a run of this scanner that printed no report, judged from its
    /// standard error (`stderr`) and its command line (`argv`, as written, run in `workdir`):
    /// the exact commands that install the tool or fetch its data. `None` when the failure is
    /// not recognised.
    pub fn remedy(self, argv: &[&str], workdir: &Path, stderr: &str) -> Option<String> {
        match self {
            Format::CargoAudit if stderr.contains(CARGO_NO_SUCH_AUDIT) => Some(
                "cargo-audit is not installed: install it with `cargo install cargo-audit --locked`"
                    .into(),
            ),
            Format::CargoAudit if stderr.to_lowercase().contains("advisory") => {
                Some(fetch_advisory_db(argv, workdir))
            }
            _ => None,
        }
    }
}

/// The message of an error document a scanner printed instead of a report (npm audit prints
/// `{"message": "405 Method Not Allowed - POST …/advisories/bulk", "statusCode": 405, "error": …}`
/// when its advisory endpoint fails).
pub fn tool_error(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    if o.contains_key("error") && o.contains_key("message") && !o.contains_key("auditReportVersion")
    {
        return Some(o["message"].as_str().unwrap_or("(no message)").to_string());
    }
    None
}

/// Tell the format from the document's marker keys.
pub fn detect(v: &Value) -> Option<Format> {
    let o = v.as_object()?;
    if o.contains_key("runs") && (o.contains_key("$schema") || o.contains_key("version")) {
        return Some(Format::Sarif);
    }
    if o.contains_key("auditReportVersion") {
        return Some(Format::NpmAudit);
    }
    if o.contains_key("report_meta") && o.contains_key("vulnerabilities") {
        return Some(Format::Safety);
    }
    if o.contains_key("database") && o.contains_key("vulnerabilities") {
        return Some(Format::CargoAudit);
    }
    if o.get("dependencies").is_some_and(Value::is_array) {
        return Some(Format::PipAudit);
    }
    None
}

/// Parse `v` as `format`.
///
/// # Errors
/// A [`ShapeError`] naming the JSON pointer of a missing or mistyped key.
pub fn parse(format: Format, v: &Value) -> Result<Scan, ShapeError> {
    match format {
        Format::CargoAudit => cargo_audit::cargo_audit(v),
        Format::PipAudit => pip_audit::pip_audit(v),
        Format::NpmAudit => npm_audit::npm_audit(v),
        Format::Sarif => sarif::sarif(v),
        Format::Safety => safety::safety(v),
    }
}

/// Severity from an optional CVSS vector: `(severity, score, source)`.
fn from_vector(vector: Option<&str>) -> Result<(Option<Level>, Option<f64>, String), String> {
    match vector.filter(|s| !s.is_empty()) {
        Some(vec) => {
            let (score, level) = rate_vector(vec)?;
            Ok((Some(level), Some(score), vec.to_string()))
        }
        None => Ok((None, None, "no CVSS vector".to_string())),
    }
}

/// The first non-empty line of `s`, at most 120 characters (an ellipsis marks a cut).
fn first_sentence(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut out: String = line.chars().take(120).collect();
    if line.chars().count() > 120 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_is_told_from_the_command_line() {
        let cargo = ["cargo", "+stable", "audit", "--json"];
        assert_eq!(Format::of_command(&cargo), Some(Format::CargoAudit));
        let bin = ["/usr/bin/cargo-audit", "audit"];
        assert_eq!(Format::of_command(&bin), Some(Format::CargoAudit));
        assert_eq!(
            Format::of_command(&["npm", "audit"]),
            Some(Format::NpmAudit)
        );
        assert_eq!(Format::of_command(&["cargo", "--locked", "test"]), None);
        assert_eq!(Format::of_command(&["bandit", "-f", "sarif"]), None);
    }

    #[test]
    fn cargo_audit_remedies_name_the_install_and_fetch_commands() {
        let dir = Path::new("/repo/checklists");
        let argv = ["cargo", "audit", "--json", "--no-fetch"];
        let missing = Format::CargoAudit.remedy(&argv, dir, "error: no such command: `audit`\n");
        assert!(
            missing
                .unwrap()
                .contains("`cargo install cargo-audit --locked`")
        );
        let no_db = "error: error loading advisory database: …";
        let default = Format::CargoAudit.remedy(&argv, dir, no_db).unwrap();
        assert!(
            default.contains(
                "`git clone https://github.com/rustsec/advisory-db ~/.cargo/advisory-db`"
            ),
            "{default}"
        );
        let argv = ["cargo", "audit", "--db", "db", "--no-fetch"];
        let given = Format::CargoAudit.remedy(&argv, dir, no_db).unwrap();
        assert!(
            given.contains("advisory-db /repo/checklists/db`"),
            "{given}"
        );
        assert_eq!(
            Format::CargoAudit.remedy(&argv, dir, "error: no Cargo.lock"),
            None
        );
        assert_eq!(Format::PipAudit.remedy(&argv, dir, no_db), None);
    }
}

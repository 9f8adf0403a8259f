//! Parsers for the scanners' JSON reports: cargo-audit (`cargo audit --json`, the serialized
//! `rustsec::Report`), pip-audit (`pip-audit -f json`), npm (`npm audit --json`, npm 7+ report
//! version 2) and SARIF 2.1.0 (OASIS; bandit, semgrep, gitleaks, clippy-sarif, …).
//!
//! The documents are read as JSON values and navigated by key, so a missing key is reported by
//! its JSON pointer (e.g. `/vulnerabilities/list/0/advisory/id`), and a syntax error or
//! truncation by line and column.

use std::path::Path;

use serde_json::Value;

use super::finding::{Finding, Kind, Level, Scan, rate_vector};

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
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 4] = [
        Format::CargoAudit,
        Format::PipAudit,
        Format::NpmAudit,
        Format::Sarif,
    ];

    /// The name used in checklists.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::CargoAudit => "cargo-audit",
            Format::PipAudit => "pip-audit",
            Format::NpmAudit => "npm-audit",
            Format::Sarif => "sarif",
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

/// cargo's error when `cargo audit` runs without cargo-audit installed (exit status 101).
const CARGO_NO_SUCH_AUDIT: &str = "no such command: `audit`";

/// The remedy for an advisory database cargo-audit could not open or fetch: clone it where
/// `argv`'s `--db` points (a relative path resolved against `workdir`, where it ran), or to
/// cargo-audit's default `~/.cargo/advisory-db` without `--db`.
fn fetch_advisory_db(argv: &[&str], workdir: &Path) -> String {
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

/// A scanner report that is not JSON: where, and whether it was cut short.
#[derive(Debug, thiserror::Error)]
#[error("line {} column {}: {}: {source}", source.line(), source.column(), if *truncated { "truncated JSON" } else { "malformed JSON" })]
pub struct SyntaxError {
    /// The text ended inside a value (a truncated report).
    pub truncated: bool,
    /// serde_json's error, with line and column.
    pub source: serde_json::Error,
}

/// A scanner report that does not have its format's shape: the JSON pointer (RFC 6901) of the
/// offending value and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct ShapeError {
    /// Where in the document.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl ShapeError {
    fn new(pointer: impl Into<String>, message: impl Into<String>) -> ShapeError {
        ShapeError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The same error found inside the value at `prefix`.
    fn under(mut self, prefix: &str) -> ShapeError {
        self.pointer = format!("{prefix}{}", self.pointer);
        self
    }
}

/// Parse JSON text, reporting syntax errors and truncation with line and column.
///
/// # Errors
/// A [`SyntaxError`] with the place.
pub fn json(text: &str) -> Result<Value, SyntaxError> {
    serde_json::from_str(text).map_err(|source| SyntaxError {
        truncated: source.classify() == serde_json::error::Category::Eof,
        source,
    })
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
        Format::CargoAudit => cargo_audit(v),
        Format::PipAudit => pip_audit(v),
        Format::NpmAudit => npm_audit(v),
        Format::Sarif => sarif(v),
    }
}

fn at<'a>(v: &'a Value, ptr: &str) -> Result<&'a Value, ShapeError> {
    v.pointer(ptr)
        .ok_or_else(|| ShapeError::new(ptr, "missing (is this really the format?)"))
}

fn str_at(v: &Value, ptr: &str) -> Result<String, ShapeError> {
    at(v, ptr)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ShapeError::new(ptr, "expected a string"))
}

fn arr_at<'a>(v: &'a Value, ptr: &str) -> Result<&'a Vec<Value>, ShapeError> {
    at(v, ptr)?
        .as_array()
        .ok_or_else(|| ShapeError::new(ptr, "expected an array"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
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

fn cargo_audit(v: &Value) -> Result<Scan, ShapeError> {
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

fn pip_audit(v: &Value) -> Result<Scan, ShapeError> {
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

fn npm_audit(v: &Value) -> Result<Scan, ShapeError> {
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
        let fix = match entry.get("fixAvailable") {
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
        };
        for via in entry
            .get("via")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // A string `via` names another vulnerable package this one depends on; that
            // package has its own entry with the advisory.
            let Some(obj) = via.as_object() else { continue };
            let url = obj.get("url").and_then(Value::as_str).unwrap_or("");
            let id = url
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .or_else(|| obj.get("source").map(|s| s.to_string()))
                .unwrap_or_else(|| "npm-advisory".into());
            let vector = via.pointer("/cvss/vectorString").and_then(Value::as_str);
            let (mut severity, score, mut source) = from_vector(vector)
                .map_err(|e| ShapeError::new(format!("/vulnerabilities/{name}"), e))?;
            if severity.is_none()
                && let Some(word) = obj.get("severity").and_then(Value::as_str)
            {
                severity = npm_level(word);
                source = format!("npm severity \"{word}\" (no CVSS vector)");
            }
            scan.findings.push(Finding {
                id,
                aliases: obj
                    .get("source")
                    .map(|s| vec![s.to_string()])
                    .unwrap_or_default(),
                package: obj
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_string(),
                version: obj
                    .get("range")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                severity,
                score: score.or_else(|| {
                    via.pointer("/cvss/score")
                        .and_then(Value::as_f64)
                        .filter(|s| *s > 0.0)
                }),
                severity_source: source,
                title: obj
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                patched: fix.clone(),
                kind: Kind::Vulnerability,
            });
        }
    }
    Ok(scan)
}

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

fn sarif(v: &Value) -> Result<Scan, ShapeError> {
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

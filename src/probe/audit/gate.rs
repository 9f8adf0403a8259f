//! The gate: sort every finding of a parsed scan into failing, allowed, ignored, or warning,
//! and turn that into the item's checks, tables, figures and summary. A pure function of the
//! scan, the probe and the day, so the rules can be tested without a scanner.

use super::finding::{Finding, Kind, Level, Scan};
use super::{AuditProbe, Ignore};
use crate::model::{Check, ProbeOutput, Status, Table};

impl AuditProbe {
    fn active_ignore(&self, f: &Finding, today: jiff::civil::Date) -> Option<&Ignore> {
        self.ignore
            .iter()
            .find(|ig| f.is_named(&ig.id) && today <= ig.expires)
    }

    /// The gate's checks: vulnerabilities above `max_severity`, warnings of the kinds that fail,
    /// and, as advisories, the other warnings and what could not be audited.
    fn checks(&self, o: &mut ProbeOutput, scan: &Scan, t: &Tally<'_>, vulns: usize) {
        o.checks.push(Check::new(
            "vulnerabilities",
            format!("none above {}", self.max_severity),
            if t.failing.is_empty() {
                format!("{vulns} found, none above {}", self.max_severity)
            } else {
                format!(
                    "{} above {}: {}",
                    t.failing.len(),
                    self.max_severity,
                    list(&t.failing)
                )
            },
            t.failing.is_empty(),
        ));
        if !self.fail_on_warnings.is_empty() {
            o.checks.push(Check::new(
                "warnings",
                format!("no {}", self.fail_on_warnings.join("/")),
                if t.warnings_failing.is_empty() {
                    "none".into()
                } else {
                    list(&t.warnings_failing)
                },
                t.warnings_failing.is_empty(),
            ));
        }
        if !t.warnings_reported.is_empty() {
            o.checks.push(
                Check::new(
                    "reported warnings",
                    "none (advisory)",
                    format!(
                        "{}: {}",
                        t.warnings_reported.len(),
                        list(&t.warnings_reported)
                    ),
                    false,
                )
                .advisory(),
            );
        }
        if !scan.notes.is_empty() {
            o.checks.push(
                Check::new(
                    "not audited",
                    "every dependency audited (advisory)",
                    scan.notes.join("; "),
                    false,
                )
                .advisory(),
            );
        }
    }

    /// Gate a parsed scan.
    pub(super) fn evaluate(
        &self,
        scan: &Scan,
        today: jiff::civil::Date,
        mut o: ProbeOutput,
    ) -> ProbeOutput {
        o.measure("tool", scan.tool.clone());
        if let Some(n) = scan.scanned {
            o.measure("scanned", n);
            if n == 0 {
                o.forced = Some(Status::Error);
                o.summary = format!(
                    "{} scanned nothing (0 {}): nothing was audited",
                    scan.tool, scan.scanned_unit
                );
                return o;
            }
        }
        let mut t = self.tally(scan, today);
        let vulns = scan
            .findings
            .iter()
            .filter(|f| f.kind == Kind::Vulnerability)
            .count();
        measure_tally(&mut o, &t, vulns);
        if !t.rows.is_empty() {
            o.tables.push(Table {
                title: format!("Findings ({})", scan.tool),
                columns: [
                    "id",
                    "package",
                    "version",
                    "severity",
                    "CVSS score",
                    "title",
                    "patched",
                    "gate",
                ]
                .map(String::from)
                .to_vec(),
                rows: std::mem::take(&mut t.rows),
            });
        }
        let expired_notes = self.ignore_table(&mut o, scan, today);
        self.checks(&mut o, scan, &t, vulns);
        let mut summary = if t.failing.is_empty() {
            format!(
                "{}: {vulns} vulnerabilit{} found, none above {}",
                scan.tool,
                if vulns == 1 { "y" } else { "ies" },
                self.max_severity
            )
        } else {
            format!(
                "{}: {} vulnerabilit{} above {}: {}",
                scan.tool,
                t.failing.len(),
                if t.failing.len() == 1 { "y" } else { "ies" },
                self.max_severity,
                list(&t.failing)
            )
        };
        if t.ignored > 0 {
            summary.push_str(&format!("; {} ignored", t.ignored));
        }
        if !expired_notes.is_empty() {
            summary.push_str(&format!("; {}", expired_notes.join("; ")));
        }
        o.summary = summary;
        o
    }

    /// Sort every finding into the gate: failing, allowed, ignored, warnings failing or
    /// reported; one report row each, most severe first.
    fn tally<'s>(&self, scan: &'s Scan, today: jiff::civil::Date) -> Tally<'s> {
        let mut t = Tally::default();
        for f in &scan.findings {
            let effective = f.severity.unwrap_or(self.unknown_as);
            let ignore = self.active_ignore(f, today);
            let gate = match (&f.kind, ignore) {
                (_, Some(ig)) => {
                    t.ignored += 1;
                    format!("ignored until {} ({})", ig.expires, ig.reason)
                }
                (Kind::Vulnerability, None) => {
                    let idx = f.severity.map_or(5, |l| l as usize);
                    t.by_level[idx] += 1;
                    if effective > self.max_severity {
                        t.failing.push(f);
                        "fails".to_string()
                    } else {
                        format!("allowed (≤ {})", self.max_severity)
                    }
                }
                (Kind::Warning(k), None) => {
                    if self.fail_on_warnings.contains(k) {
                        t.warnings_failing.push(f);
                        format!("{k} warning: fails")
                    } else {
                        t.warnings_reported.push(f);
                        format!("{k} warning: reported")
                    }
                }
            };
            t.rows.push(vec![
                f.id.clone(),
                f.package.clone(),
                if f.version.is_empty() {
                    "—".into()
                } else {
                    f.version.clone()
                },
                if f.severity.is_none() {
                    format!("unknown (gated as {})", self.unknown_as)
                } else {
                    f.severity_text().to_string()
                },
                f.score.map_or("—".into(), |s| format!("{s:.1}")),
                f.title.clone(),
                if f.patched.is_empty() {
                    "—".into()
                } else {
                    f.patched.clone()
                },
                gate,
            ]);
        }
        // Most severe first; unknown ranks as what it is gated as.
        let rank = |r: &Vec<String>| -> usize {
            let w = r[3].split(' ').next().unwrap_or("");
            Level::from_name(w).map_or(self.unknown_as as usize, |l| l as usize)
        };
        t.rows
            .sort_by(|a, b| rank(b).cmp(&rank(a)).then(a[0].cmp(&b[0])));
        t
    }

    /// The ignores table (applied, expired, or matching nothing); returns the expiry notes.
    fn ignore_table(
        &self,
        o: &mut ProbeOutput,
        scan: &Scan,
        today: jiff::civil::Date,
    ) -> Vec<String> {
        let mut ig_rows = Vec::new();
        let mut expired_notes = Vec::new();
        for ig in &self.ignore {
            let matches = scan.findings.iter().filter(|f| f.is_named(&ig.id)).count();
            let state = if today > ig.expires {
                expired_notes.push(format!("ignore for {} expired on {}", ig.id, ig.expires));
                format!("expired on {}: no longer applied", ig.expires)
            } else if matches == 0 {
                "matches no finding".to_string()
            } else {
                format!("applied to {matches} finding(s)")
            };
            ig_rows.push(vec![
                ig.id.clone(),
                ig.reason.clone(),
                ig.expires.to_string(),
                state,
            ]);
        }
        if !ig_rows.is_empty() {
            o.tables.push(Table {
                title: "Ignores".into(),
                columns: ["id", "reason", "expires", "state"]
                    .map(String::from)
                    .to_vec(),
                rows: ig_rows,
            });
        }
        expired_notes
    }
}

/// Where each finding of a scan went.
#[derive(Default)]
struct Tally<'s> {
    /// One report row per finding.
    rows: Vec<Vec<String>>,
    /// Vulnerabilities above `max_severity`.
    failing: Vec<&'s Finding>,
    /// Vulnerabilities counted per level (critical … none, then unknown).
    by_level: [u64; 6],
    /// Warnings of a kind in `fail_on_warnings`.
    warnings_failing: Vec<&'s Finding>,
    /// Other warnings (advisory).
    warnings_reported: Vec<&'s Finding>,
    /// Findings an unexpired ignore covers.
    ignored: u64,
}

/// Up to five findings for a message: `RUSTSEC-… crate (high), … 3 more`.
fn list(fs: &[&Finding]) -> String {
    let mut parts: Vec<String> = fs
        .iter()
        .take(5)
        .map(|f| format!("{} {} ({})", f.id, f.package, f.severity_text()))
        .collect();
    if fs.len() > 5 {
        parts.push(format!("… {} more", fs.len() - 5));
    }
    parts.join(", ")
}

/// The counts for machines.
fn measure_tally(o: &mut ProbeOutput, t: &Tally<'_>, vulns: usize) {
    o.measure("vulnerabilities", vulns as u64);
    for (i, l) in Level::ALL.iter().enumerate() {
        o.measure(&format!("vulnerabilities_{}", l.as_str()), t.by_level[i]);
    }
    o.measure("vulnerabilities_unknown", t.by_level[5]);
    o.measure("ignored", t.ignored);
    o.measure("failing", t.failing.len() as u64);
    o.measure(
        "warnings",
        (t.warnings_failing.len() + t.warnings_reported.len()) as u64,
    );
}

#[cfg(test)]
mod tests {
    use super::super::formats::{self, Format};
    use super::super::{RawAuditProbe, read};
    use super::*;
    use crate::probe::Validator;

    fn probe(toml_body: &str) -> AuditProbe {
        let raw: RawAuditProbe = toml::from_str(toml_body).unwrap();
        raw.validate(&mut Validator::default()).unwrap()
    }

    fn today() -> jiff::civil::Date {
        jiff::civil::date(2026, 6, 1)
    }

    /// The real cargo-audit report for smallvec 1.6.0, with the advisory's `cvss` removed: the
    /// finding becomes `unknown`, which gates as `unknown_severity`.
    fn without_cvss() -> Scan {
        let text = include_str!("../../../tests/fixtures/audit/cargo-audit-vulnerable.json");
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["vulnerabilities"]["list"][0]["advisory"]["cvss"] = serde_json::Value::Null;
        formats::parse(Format::CargoAudit, &v).unwrap()
    }

    #[test]
    fn unknown_severity_counts_as_high_by_default() {
        let scan = without_cvss();
        assert_eq!(scan.findings[0].severity, None);
        let p = probe("report = \"x\"\nmax_severity = \"medium\"");
        let o = p.evaluate(&scan, today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Fail);
        assert_eq!(o.tables[0].rows[0][3], "unknown (gated as high)");
        assert_eq!(o.measured["vulnerabilities_unknown"], 1);
    }

    #[test]
    fn unknown_severity_is_configurable() {
        let p = probe("report = \"x\"\nmax_severity = \"medium\"\nunknown_severity = \"low\"");
        let o = p.evaluate(&without_cvss(), today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Pass);
    }

    #[test]
    fn ignore_on_its_expiry_day_still_applies_and_the_day_after_not() {
        let text = include_str!("../../../tests/fixtures/audit/cargo-audit-vulnerable.json");
        let scan = read("fixture", text.as_bytes(), None).unwrap();
        let p = probe(
            "report = \"x\"\nignore = [{ id = \"RUSTSEC-2021-0003\", reason = \"r\", expires = 2026-06-01 }]",
        );
        let o = p.evaluate(&scan, today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Pass);
        let o = p.evaluate(&scan, jiff::civil::date(2026, 6, 2), ProbeOutput::default());
        assert_eq!(o.status(), Status::Fail);
        assert!(o.summary.contains("expired on 2026-06-01"), "{}", o.summary);
    }

    /// Hand-written in the shape of npm 7+'s `npm audit --json` (auditReportVersion 2): npm's
    /// bulk advisory endpoint is not reachable here, so no real report with findings could be
    /// made (the real offline output, an error document, is tests/fixtures/audit/).
    #[test]
    fn npm_audit_v2_vectors_are_scored_and_words_used_without_them() {
        let doc = r#"{"auditReportVersion":2,"vulnerabilities":{"lodash":{"name":"lodash","severity":"high","isDirect":true,"via":[{"source":1096305,"name":"lodash","dependency":"lodash","title":"Command Injection in lodash","url":"https://github.com/advisories/GHSA-35jh-r3h4-6jhm","severity":"high","cwe":["CWE-77"],"cvss":{"score":7.2,"vectorString":"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"},"range":"<4.17.21"},{"source":1096302,"name":"lodash","dependency":"lodash","title":"ReDoS in lodash","url":"https://github.com/advisories/GHSA-29mw-wpgm-hmr9","severity":"moderate","cwe":[],"cvss":{"score":0,"vectorString":null},"range":"<4.17.21"}],"effects":[],"range":"<=4.17.20","nodes":["node_modules/lodash"],"fixAvailable":true},"dep":{"name":"dep","severity":"high","isDirect":false,"via":["lodash"],"effects":[],"range":"*","nodes":[],"fixAvailable":true}},"metadata":{"dependencies":{"prod":3,"total":3}}}"#;
        let scan = read("npm.json", doc.as_bytes(), None).unwrap();
        assert_eq!(scan.tool, "npm audit");
        assert_eq!(
            scan.findings.len(),
            2,
            "string `via` entries are not findings"
        );
        let f = &scan.findings[0];
        assert_eq!(f.id, "GHSA-35jh-r3h4-6jhm");
        assert_eq!(f.severity, Some(Level::High));
        assert_eq!(f.score, Some(7.2));
        let g = &scan.findings[1];
        assert_eq!(g.severity, Some(Level::Medium));
        assert!(g.severity_source.contains("moderate"));
    }

    /// Hand-written in the shape of pip-audit 2.x `-f json`: pip-audit's vulnerability services
    /// are not reachable here (the real offline output is tests/fixtures/audit/).
    #[test]
    fn pip_audit_findings_are_unknown_severity_with_fix_versions() {
        let doc = r#"{"dependencies":[{"name":"jinja2","version":"2.10","vulns":[{"id":"PYSEC-2019-217","fix_versions":["2.10.1"],"aliases":["CVE-2019-10906","GHSA-462w-v97r-4m45"],"description":"In Pallets Jinja before 2.10.1, str.format_map allows a sandbox escape."}]},{"name":"six","version":"1.16.0","vulns":[]}],"fixes":[]}"#;
        let scan = read("pip.json", doc.as_bytes(), None).unwrap();
        assert_eq!(scan.scanned, Some(2));
        let f = &scan.findings[0];
        assert_eq!(f.severity, None);
        assert_eq!(f.patched, "2.10.1");
        assert!(f.is_named("cve-2019-10906"));
        let p = probe("report = \"x\"\nmax_severity = \"medium\"");
        let o = p.evaluate(&scan, today(), ProbeOutput::default());
        assert_eq!(o.status(), Status::Fail, "unknown gates as high");
    }
}

//! Credentials in log lines: a built-in set of detectors (private keys, cloud access keys,
//! bearer and JSON Web Tokens, `password=`-style assignments) plus the values of the
//! checklist's own `${VAR}`s, and masking, so that no line this probe shows or writes carries
//! a secret it knows how to recognise.
//!
//! The patterns follow the documented token formats: PEM (RFC 7468) private-key labels, AWS
//! access key ids (`AKIA`/`ASIA` + 16 upper-case characters, AWS IAM User Guide), Google API
//! keys (`AIza` + 35), Azure storage connection strings (`AccountKey=`), GitHub tokens
//! (`ghp_`…), Slack tokens (`xox?-`), RFC 6750 bearer credentials and RFC 7519 compact JWTs.

use std::sync::LazyLock;

use regex::Regex;

use crate::units::Redactor;

/// `${VAR}` values shorter than this are not searched for: a short value (`1`, `true`)
/// appears in ordinary lines and would bury real findings. They are still masked.
pub const MIN_VAR_LEN: usize = 6;

/// One detector: a name people read and a pattern whose `secret` group is the part masked
/// (the rest of the match, such as `password=` or `AKIA`, is shown).
struct Detector {
    kind: &'static str,
    regex: Regex,
}

static DETECTORS: LazyLock<Vec<Detector>> = LazyLock::new(|| {
    let d = |kind, re: &str| Detector {
        kind,
        regex: Regex::new(re).expect("built-in pattern compiles"),
    };
    vec![
        d(
            "private key",
            r"-----BEGIN (?:(?:RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY(?: BLOCK)?-----(?<secret>)",
        ),
        d(
            "AWS access key id",
            r"\b(?:AKIA|ASIA|ABIA|ACCA)(?<secret>[0-9A-Z]{16})\b",
        ),
        d("Google API key", r"\bAIza(?<secret>[0-9A-Za-z_\-]{35})"),
        d(
            "Azure storage key",
            r"(?i)AccountKey=(?<secret>[A-Za-z0-9+/]{40,}={0,2})",
        ),
        d("GitHub token", r"\bgh[pousr]_(?<secret>[A-Za-z0-9]{36,})\b"),
        d("Slack token", r"\bxox[abprs]-(?<secret>[A-Za-z0-9-]{10,})"),
        d(
            "JSON Web Token",
            r"\beyJ(?<secret>[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
        ),
        d(
            "bearer token",
            r"(?i)\bbearer\s+(?<secret>[A-Za-z0-9\-._~+/]{16,}=*)",
        ),
        d(
            "credential assignment",
            r#"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|secret[_-]?access[_-]?key)["']?\s*[:=]\s*["']?(?<secret>[^\s"',;&]{4,})"#,
        ),
    ]
});

/// Values of an assignment that are placeholders, not secrets (`password=***`, `${DB_PASS}`).
fn placeholder(value: &str) -> bool {
    value.chars().all(|c| c == '*' || c == 'x' || c == 'X')
        || value.starts_with('$')
        || value.starts_with('<')
        || value.starts_with('[')
        || ["null", "none", "redacted", "masked", "hidden", "undefined"]
            .contains(&value.to_ascii_lowercase().as_str())
}

/// A credential found in a line: its kind and the masked text that replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is, e.g. `AWS access key id`, `value of ${BROKER_TOKEN}`.
    pub kind: String,
    /// The match with its secret part replaced, e.g. `AKIA[masked 16 chars]`.
    pub masked: String,
}

/// `[masked N chars]`.
fn mask(secret: &str) -> String {
    format!("[masked {} chars]", secret.chars().count())
}

/// Scans the lines of one source in order (a private key's body follows its header).
#[derive(Debug, Default)]
pub struct Scanner {
    /// Inside a PEM private key block: every line until its `-----END` line is key material.
    in_key: bool,
}

impl Scanner {
    /// The credentials in `line` and the line with each of them masked. `${VAR}` values come
    /// from `redactor` (those of at least [`MIN_VAR_LEN`] characters are reported; all are
    /// masked).
    pub fn scan(&mut self, line: &str, redactor: &Redactor) -> (Vec<Finding>, String) {
        if self.in_key {
            if line.contains("-----END") && line.contains("PRIVATE KEY") {
                self.in_key = false;
                return (Vec::new(), line.to_string());
            }
            return (Vec::new(), "[masked private key material]".to_string());
        }
        let mut findings = Vec::new();
        let mut spans: Vec<(usize, usize, String)> = Vec::new();
        for (name, value) in redactor.secrets() {
            for (start, m) in line.match_indices(value) {
                if value.len() >= MIN_VAR_LEN {
                    findings.push(Finding {
                        kind: format!("value of ${{{name}}}"),
                        masked: format!("${{{name}}}"),
                    });
                }
                push_span(&mut spans, start, start + m.len(), format!("${{{name}}}"));
            }
        }
        for d in DETECTORS.iter() {
            for caps in d.regex.captures_iter(line) {
                let (whole, secret) = (caps.get(0).expect("match"), &caps["secret"]);
                if d.kind == "credential assignment" && placeholder(secret) {
                    continue;
                }
                let keep = &line[whole.start()..caps.name("secret").expect("group").start()];
                let masked = format!(
                    "{keep}{}",
                    if secret.is_empty() {
                        String::new()
                    } else {
                        mask(secret)
                    }
                );
                if push_span(&mut spans, whole.start(), whole.end(), masked.clone()) {
                    findings.push(Finding {
                        kind: d.kind.to_string(),
                        masked,
                    });
                }
                if d.kind == "private key" {
                    self.in_key = true;
                }
            }
        }
        spans.sort_by_key(|s| s.0);
        let mut out = String::with_capacity(line.len());
        let mut at = 0;
        for (start, end, text) in spans {
            out.push_str(&line[at..start]);
            out.push_str(&text);
            at = end;
        }
        out.push_str(&line[at..]);
        (findings, out)
    }
}

/// Record the span `start..end` unless it overlaps one already recorded; whether it was.
fn push_span(
    spans: &mut Vec<(usize, usize, String)>,
    start: usize,
    end: usize,
    text: String,
) -> bool {
    if spans.iter().any(|(s, e, _)| start < *e && *s < end) {
        return false;
    }
    spans.push((start, end, text));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_detector_finds_its_kind_and_masks_the_secret() {
        let mut r = Redactor::default();
        r.add_secret("BROKER_TOKEN", "tok-5f2a9c1e");
        let cases = [
            (
                "key id AKIAIOSFODNN7EXAMPLE used",
                "AWS access key id",
                "IOSFODNN7EXAMPLE",
            ),
            (
                "Authorization: Bearer abcdefghijklmnop1234",
                "bearer token",
                "abcdefghijklmnop1234",
            ),
            (
                "login password=hunter2hunter2 ok",
                "credential assignment",
                "hunter2hunter2",
            ),
            (
                "sent tok-5f2a9c1e upstream",
                "value of ${BROKER_TOKEN}",
                "tok-5f2a9c1e",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "JSON Web Token",
                "dozjgNryP4J3jVmNHl0w5N",
            ),
        ];
        for (line, kind, secret) in cases {
            let (found, masked) = Scanner::default().scan(line, &r);
            assert_eq!(found.len(), 1, "{line}: {found:?}");
            assert_eq!(found[0].kind, kind);
            assert!(!masked.contains(secret), "{masked}");
            assert!(!found[0].masked.contains(secret), "{:?}", found[0]);
        }
    }

    #[test]
    fn placeholders_are_not_findings_and_key_bodies_are_masked() {
        let r = Redactor::default();
        let mut s = Scanner::default();
        assert!(s.scan("password=*** api_key=${API_KEY}", &r).0.is_empty());
        let (found, _) = s.scan("-----BEGIN RSA PRIVATE KEY-----", &r);
        assert_eq!(found[0].kind, "private key");
        assert_eq!(
            s.scan("MIIEowIBAAKCAQEA", &r).1,
            "[masked private key material]"
        );
        s.scan("-----END RSA PRIVATE KEY-----", &r);
        assert_eq!(s.scan("plain line", &r).1, "plain line");
    }
}

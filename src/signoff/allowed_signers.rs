//! OpenSSH `allowed_signers` files (ssh-keygen(1), section ALLOWED SIGNERS) with prodready's
//! optional role mapping.
//!
//! Each line: `principals [options] keytype base64-key [comment]`. `principals` is a
//! comma-separated pattern list (`*` and `?` wildcards, `!` negates). Options understood:
//! `namespaces="…"` (a pattern list that must match `prodready` for the key to count),
//! `valid-after="YYYYMMDD[HHMM[SS]][Z]"`, `valid-before="…"` (checked against the signing
//! time claimed in the signed statement; times are read as UTC) and `cert-authority` (such
//! lines authorize certificates, which prodready does not accept, so they never match a plain
//! key). Any other option is an error, as in ssh-keygen.
//!
//! **Role mapping.** ssh-keygen rejects unknown options but ignores the comment, so the roles a
//! key may sign for go in the comment as `prodready-roles="Technical lead,Security review"`
//! (comma-separated, matched case-insensitively). The same file then works unchanged with
//! `ssh-keygen -Y verify`. A line without the annotation allows its principals to sign for any
//! role.

use std::path::{Path, PathBuf};

use ssh_key::PublicKey;

use crate::error::{Error, Result};

/// The namespace every prodready signature uses.
pub const NAMESPACE: &str = "prodready";

/// One parsed line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    /// Principal patterns.
    pub principals: Vec<String>,
    /// `namespaces="…"` patterns, when given.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after`, when given.
    pub valid_after: Option<jiff::Timestamp>,
    /// `valid-before`, when given.
    pub valid_before: Option<jiff::Timestamp>,
    /// `cert-authority` was given.
    pub cert_authority: bool,
    /// The public key.
    pub key: PublicKey,
    /// Roles from `prodready-roles="…"` in the comment; `None` allows every role.
    pub roles: Option<Vec<String>>,
}

/// A parsed allowed_signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    /// The file.
    pub path: PathBuf,
    /// Its entries, in file order.
    pub entries: Vec<Entry>,
}

/// What a signer is checked for.
#[derive(Debug, Clone, Copy)]
pub enum RoleNeed<'a> {
    /// Any role (attestations without `roles`).
    Any,
    /// This role (sign-off signatures).
    Role(&'a str),
    /// One of these roles (attestation probes with `roles`).
    OneOf(&'a [String]),
}

impl AllowedSigners {
    /// Read and parse `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable; [`Error::InvalidInput`] (exit 2) naming `file:line` for
    /// a malformed line.
    pub fn load(path: &Path) -> Result<AllowedSigners> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        AllowedSigners::parse(path, &text)
    }

    /// Parse allowed_signers text read from `path`.
    ///
    /// # Errors
    /// As [`AllowedSigners::load`].
    pub fn parse(path: &Path, text: &str) -> Result<AllowedSigners> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let entry = parse_line(i + 1, trimmed).map_err(|m| Error::InvalidInput {
                path: path.to_path_buf(),
                message: format!("line {}: {m}", i + 1),
            })?;
            entries.push(entry);
        }
        Ok(AllowedSigners {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Check that `principal` may sign with `key` for `need`, at `signed_at`. Returns the
    /// line that allows it.
    ///
    /// # Errors
    /// Why not, in words (key unknown, principal not listed for the key, wrong role, namespace,
    /// outside the validity interval).
    pub fn check(
        &self,
        key: &ssh_key::public::KeyData,
        principal: &str,
        need: RoleNeed<'_>,
        signed_at: jiff::Timestamp,
    ) -> std::result::Result<usize, String> {
        let fp = key.fingerprint(ssh_key::HashAlg::Sha256);
        let with_key: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !e.cert_authority && e.key.key_data() == key)
            .collect();
        if with_key.is_empty() {
            return Err(format!("key {fp} is not in {}", self.path.display()));
        }
        let mut reasons = Vec::new();
        for e in with_key {
            if !match_pattern_list(principal, &e.principals) {
                reasons.push(format!(
                    "line {}: principal \"{principal}\" does not match \"{}\"",
                    e.line,
                    e.principals.join(",")
                ));
                continue;
            }
            if let Some(ns) = &e.namespaces
                && !match_pattern_list(NAMESPACE, ns)
            {
                reasons.push(format!(
                    "line {}: namespaces=\"{}\" does not include \"{NAMESPACE}\"",
                    e.line,
                    ns.join(",")
                ));
                continue;
            }
            if let Some(t) = e.valid_after
                && signed_at < t
            {
                reasons.push(format!(
                    "line {}: signed at {signed_at}, before valid-after {t}",
                    e.line
                ));
                continue;
            }
            if let Some(t) = e.valid_before
                && signed_at > t
            {
                reasons.push(format!(
                    "line {}: signed at {signed_at}, after valid-before {t}",
                    e.line
                ));
                continue;
            }
            let role_ok = match (&e.roles, need) {
                (None, _) | (_, RoleNeed::Any) => true,
                (Some(roles), RoleNeed::Role(r)) => roles.iter().any(|x| x.eq_ignore_ascii_case(r)),
                (Some(roles), RoleNeed::OneOf(want)) => roles
                    .iter()
                    .any(|x| want.iter().any(|w| w.eq_ignore_ascii_case(x))),
            };
            if !role_ok {
                let wanted = match need {
                    RoleNeed::Role(r) => format!("\"{r}\""),
                    RoleNeed::OneOf(w) => format!("one of \"{}\"", w.join("\", \"")),
                    RoleNeed::Any => String::new(),
                };
                reasons.push(format!(
                    "line {}: \"{principal}\" may sign only for prodready-roles=\"{}\", not {wanted}",
                    e.line,
                    e.roles.as_deref().unwrap_or_default().join(",")
                ));
                continue;
            }
            return Ok(e.line);
        }
        Err(format!("key {fp}: {}", reasons.join("; ")))
    }
}

fn is_key_type(token: &str) -> bool {
    token.starts_with("ssh-")
        || token.starts_with("ecdsa-sha2-")
        || token.starts_with("sk-ssh-")
        || token.starts_with("sk-ecdsa-")
}

/// Split off the next whitespace-delimited token, keeping double-quoted runs together.
fn next_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => return Some((&s[..i], &s[i..])),
            _ => {}
        }
    }
    Some((s, ""))
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_line(line: usize, text: &str) -> std::result::Result<Entry, String> {
    let (principals, rest) = next_token(text).ok_or("empty line")?;
    let principals = split_list(unquote(principals));
    if principals.is_empty() {
        return Err("expected principals before the key".into());
    }
    let (mut tok, mut rest) = next_token(rest).ok_or("expected a key after the principals")?;
    let mut entry_opts = (None, None, None, false);
    if !is_key_type(tok) {
        entry_opts = parse_options(tok)?;
        (tok, rest) = next_token(rest).ok_or("expected a key type after the options")?;
        if !is_key_type(tok) {
            return Err(format!("unknown key type \"{tok}\""));
        }
    }
    let (b64, comment) = next_token(rest).ok_or("expected the base64 key after the key type")?;
    let key = PublicKey::from_openssh(&format!("{tok} {b64}"))
        .map_err(|e| format!("invalid {tok} public key: {e}"))?;
    let comment = comment.trim();
    let roles = match comment.find("prodready-roles=\"") {
        Some(i) => {
            let after = &comment[i + "prodready-roles=\"".len()..];
            let end = after
                .find('"')
                .ok_or("prodready-roles=\"… is missing its closing quote")?;
            let roles = split_list(&after[..end]);
            if roles.is_empty() {
                return Err("prodready-roles=\"\" lists no role".into());
            }
            Some(roles)
        }
        None => None,
    };
    let (namespaces, valid_after, valid_before, cert_authority) = entry_opts;
    Ok(Entry {
        line,
        principals,
        namespaces,
        valid_after,
        valid_before,
        cert_authority,
        key,
        roles,
    })
}

type Options = (
    Option<Vec<String>>,
    Option<jiff::Timestamp>,
    Option<jiff::Timestamp>,
    bool,
);

fn parse_options(text: &str) -> std::result::Result<Options, String> {
    let mut out: Options = (None, None, None, false);
    // Split on commas outside quotes.
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    for c in text.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            ',' if !in_quotes => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(unquote(v).to_string())),
            None => (p.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("cert-authority", None) => out.3 = true,
            ("namespaces", Some(v)) => out.0 = Some(split_list(&v)),
            ("valid-after", Some(v)) => out.1 = Some(parse_ssh_time(&v)?),
            ("valid-before", Some(v)) => out.2 = Some(parse_ssh_time(&v)?),
            _ => {
                return Err(format!(
                    "unknown option \"{p}\" (expected cert-authority, namespaces=, valid-after=, \
                     valid-before=; put prodready-roles=\"…\" in the comment after the key)"
                ));
            }
        }
    }
    Ok(out)
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optional trailing `Z`; read as UTC.
fn parse_ssh_time(v: &str) -> std::result::Result<jiff::Timestamp, String> {
    let d = v.strip_suffix('Z').unwrap_or(v);
    let bad = || format!("invalid time \"{v}\" (expected YYYYMMDD[HHMM[SS]][Z])");
    if !d.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 14].contains(&d.len()) {
        return Err(bad());
    }
    let num = |a: usize, b: usize| {
        d.get(a..b)
            .map(|x| x.parse::<i16>().unwrap_or(0))
            .unwrap_or(0)
    };
    let dt = jiff::civil::DateTime::new(
        num(0, 4),
        num(4, 6) as i8,
        num(6, 8) as i8,
        num(8, 10) as i8,
        num(10, 12) as i8,
        num(12, 14) as i8,
        0,
    )
    .map_err(|_| bad())?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

/// OpenSSH `match_pattern_list`: true when `name` matches a pattern and no negated (`!`)
/// pattern; case-sensitive.
pub fn match_pattern_list(name: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if glob(p.as_bytes(), name.as_bytes()) {
            matched = true;
        }
    }
    matched
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7KL8MkxUTzCpXw52Xi9N+jvOxoikSFA5lhhX5qzw1T";

    #[test]
    fn patterns_follow_openssh() {
        let p = |s: &str| split_list(s);
        assert!(match_pattern_list("alice@example.com", &p("*@example.com")));
        assert!(!match_pattern_list(
            "mallory@example.com",
            &p("*@example.com,!mallory@*")
        ));
        assert!(!match_pattern_list("bob", &p("alice,carol")));
        assert!(match_pattern_list("bo", &p("b?")));
    }

    #[test]
    fn options_roles_and_errors_name_the_line() {
        let text = format!(
            "# team\nalice@example.com namespaces=\"prodready,git\",valid-after=\"20260101\" {KEY} alice prodready-roles=\"Technical lead, Security review\"\n"
        );
        let a = AllowedSigners::parse(Path::new("as"), &text).unwrap();
        let e = &a.entries[0];
        assert_eq!(e.line, 2);
        assert_eq!(e.namespaces.as_ref().unwrap(), &["prodready", "git"]);
        assert_eq!(
            e.roles.as_ref().unwrap(),
            &["Technical lead", "Security review"]
        );
        let err = AllowedSigners::parse(Path::new("as"), &format!("\nx bogus=1 {KEY}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("as: line 2: unknown option \"bogus=1\""),
            "{err}"
        );
    }

    #[test]
    fn namespaces_validity_and_cert_authority_limit_a_key() {
        let text = format!(
            "a@x namespaces=\"git\" {KEY}\n\
             b@x valid-after=\"20260101\",valid-before=\"20261231235959Z\" {KEY}\n\
             c@x cert-authority {KEY}\n"
        );
        let a = AllowedSigners::parse(Path::new("as"), &text).unwrap();
        let key = a.entries[0].key.key_data().clone();
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let err = a
            .check(&key, "a@x", RoleNeed::Any, t("2026-06-01T00:00:00Z"))
            .unwrap_err();
        assert!(err.contains("does not include \"prodready\""), "{err}");
        assert_eq!(
            a.check(
                &key,
                "b@x",
                RoleNeed::Role("Any role"),
                t("2026-06-01T00:00:00Z")
            ),
            Ok(2)
        );
        let err = a
            .check(&key, "b@x", RoleNeed::Any, t("2027-01-01T00:00:00Z"))
            .unwrap_err();
        assert!(err.contains("after valid-before"), "{err}");
        // A certificate authority line never vouches for a plain key.
        let err = a
            .check(&key, "c@x", RoleNeed::Any, t("2026-06-01T00:00:00Z"))
            .unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }
}

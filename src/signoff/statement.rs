//! The statements: the exact UTF-8 bytes that are signed (sign-offs and waivers), written
//! and parsed in one place so signing and verifying cannot disagree about them.

use super::*;

// ---------------------------------------------------------------------------------------------
// Statements: the exact bytes that are signed.

/// A value in a statement line.
pub(super) enum Field<'a> {
    /// Written as a JSON string (quoted, escaped; one line whatever it contains).
    Quoted(&'a str),
    /// Written as is (digests, dates, keywords: never contain spaces or newlines).
    Plain(&'a str),
}

/// `header\n` then `key: value\n` per field.
pub(super) fn statement_text(header: &str, fields: &[(&str, Field<'_>)]) -> String {
    let mut s = format!("{header}\n");
    for (k, v) in fields {
        let v = match v {
            Field::Quoted(t) => serde_json::to_string(t).expect("strings serialize"),
            Field::Plain(t) => (*t).to_string(),
        };
        s.push_str(&format!("{k}: {v}\n"));
    }
    s
}

/// Parse a statement written by [`statement_text`]: the header, then exactly `keys` in order.
pub(super) fn parse_statement(
    header: &str,
    text: &str,
    keys: &[&str],
) -> std::result::Result<Vec<String>, String> {
    let body = text
        .strip_suffix('\n')
        .ok_or("statement does not end with a newline")?;
    let mut lines = body.split('\n');
    if lines.next() != Some(header) {
        return Err(format!("statement does not start with \"{header}\""));
    }
    let mut out = Vec::new();
    for k in keys {
        let line = lines
            .next()
            .ok_or_else(|| format!("statement lacks \"{k}:\""))?;
        let v = line
            .strip_prefix(&format!("{k}: "))
            .ok_or_else(|| format!("expected \"{k}: …\", found \"{line}\""))?;
        let v = if v.starts_with('"') {
            serde_json::from_str::<String>(v).map_err(|e| format!("{k}: bad quoted text: {e}"))?
        } else {
            v.to_string()
        };
        out.push(v);
    }
    if let Some(extra) = lines.next() {
        return Err(format!("unexpected line in statement: \"{extra}\""));
    }
    Ok(out)
}

/// The text a sign-off signature signs. Its lines, in order (strings as JSON strings):
///
/// ```text
/// prodready sign-off v1
/// checklist-sha256: <hex SHA-256 of the checklist file>
/// run-started-at: <RFC 3339 start of the run>
/// report-body-sha256: <64 lowercase hex: SHA-256 of the canonical body>
/// role: "Technical lead"
/// decision: approve
/// signer: "alice@example.com"
/// signed-at: 2026-11-22T20:30:00Z
/// comment: "free text"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignoffStatement {
    /// `run.checklist.sha256` of the signed report.
    pub checklist_sha256: String,
    /// `run.started_at` of the signed report.
    pub run_started_at: String,
    /// Lowercase hex SHA-256 of the canonical body ([`canonical::body_sha256`]).
    pub body_sha256: String,
    /// The role signed for.
    pub role: String,
    /// The decision.
    pub decision: Decision,
    /// The signer's principal, as in allowed_signers.
    pub signer: String,
    /// RFC 3339 UTC signing time.
    pub signed_at: String,
    /// Free text.
    pub comment: String,
}

pub(super) const SIGNOFF_HEADER: &str = "prodready sign-off v1";
pub(super) const SIGNOFF_KEYS: [&str; 8] = [
    "checklist-sha256",
    "run-started-at",
    "report-body-sha256",
    "role",
    "decision",
    "signer",
    "signed-at",
    "comment",
];

impl SignoffStatement {
    /// The exact UTF-8 text that is signed.
    pub fn to_text(&self) -> String {
        statement_text(
            SIGNOFF_HEADER,
            &[
                (SIGNOFF_KEYS[0], Field::Plain(&self.checklist_sha256)),
                (SIGNOFF_KEYS[1], Field::Plain(&self.run_started_at)),
                (SIGNOFF_KEYS[2], Field::Plain(&self.body_sha256)),
                (SIGNOFF_KEYS[3], Field::Quoted(&self.role)),
                (SIGNOFF_KEYS[4], Field::Plain(self.decision.as_str())),
                (SIGNOFF_KEYS[5], Field::Quoted(&self.signer)),
                (SIGNOFF_KEYS[6], Field::Plain(&self.signed_at)),
                (SIGNOFF_KEYS[7], Field::Quoted(&self.comment)),
            ],
        )
    }

    /// Parse a statement text.
    ///
    /// # Errors
    /// A message naming the first malformed line.
    pub fn parse(text: &str) -> std::result::Result<SignoffStatement, String> {
        let v = parse_statement(SIGNOFF_HEADER, text, &SIGNOFF_KEYS)?;
        let [
            checklist_sha256,
            run_started_at,
            body_sha256,
            role,
            decision,
            signer,
            signed_at,
            comment,
        ] = <[String; 8]>::try_from(v).expect("eight fields");
        if body_sha256.len() != 64 || !body_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "report-body-sha256 \"{body_sha256}\" is not 64 hex digits"
            ));
        }
        parse_time(&signed_at).map_err(|e| format!("signed-at: {e}"))?;
        Ok(SignoffStatement {
            checklist_sha256,
            run_started_at,
            body_sha256,
            role,
            decision: Decision::parse(&decision)?,
            signer,
            signed_at,
            comment,
        })
    }

    /// The statement for `report` (whole JSON value) signed now.
    pub fn for_report(
        report: &Report,
        body_sha256: &str,
        role: &str,
        decision: Decision,
        signer: &str,
        comment: &str,
    ) -> SignoffStatement {
        SignoffStatement {
            checklist_sha256: report.run.checklist.sha256.clone(),
            run_started_at: report.run.started_at.clone(),
            body_sha256: body_sha256.to_string(),
            role: role.to_string(),
            decision,
            signer: signer.to_string(),
            signed_at: now_rfc3339(),
            comment: comment.to_string(),
        }
    }
}

/// The text a waiver approver signs:
///
/// ```text
/// prodready waiver v1
/// item: "coverage"
/// reason: "Legacy adapter excluded until Q1 refactor"
/// approved-by: "Technical lead"
/// expires: 2027-01-31
/// signer: "alice@example.com"
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiverStatement {
    /// Waived item id.
    pub item: String,
    /// Justification.
    pub reason: String,
    /// `approved_by` as written.
    pub approved_by: String,
    /// Last day the waiver applies; written YYYY-MM-DD.
    pub expires: jiff::civil::Date,
    /// The signer's principal.
    pub signer: String,
}

impl WaiverStatement {
    /// The statement the approver of `waiver` signs as `signer`: the one builder that both
    /// `prodready sign-waiver` and `prodready verify` use, so the signed bytes cannot differ
    /// between them.
    pub fn of(waiver: &Waiver, signer: &str) -> WaiverStatement {
        WaiverStatement {
            item: waiver.item.clone(),
            reason: waiver.reason.clone(),
            approved_by: waiver.approved_by.clone(),
            expires: waiver.expires,
            signer: signer.to_string(),
        }
    }

    /// The exact UTF-8 text that is signed.
    pub fn to_text(&self) -> String {
        statement_text(
            "prodready waiver v1",
            &[
                ("item", Field::Quoted(&self.item)),
                ("reason", Field::Quoted(&self.reason)),
                ("approved-by", Field::Quoted(&self.approved_by)),
                ("expires", Field::Plain(&self.expires.to_string())),
                ("signer", Field::Quoted(&self.signer)),
            ],
        )
    }
}

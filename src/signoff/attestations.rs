//! Attestations: a person's signed statement that satisfies a manual item ("team trained",
//! "DR drill done") until it expires.
//!
//! They live in a file the checklist names (`[item.probe] kind = "attestation", file = …`),
//! TOML (`[[attestation]]` tables) or JSON (`{"attestation": [ … ]}`, chosen by the `.json`
//! extension), and `prodready attest` appends to it. Each record is signed like a sign-off:
//! an SSHSIG (namespace `prodready`) over the [`AttestationStatement`] text rebuilt from the
//! record's fields, so editing any field invalidates it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    AllowedSigners, CheckState, Field, RoleNeed, Verification, fingerprint, load_private_key,
    parse_time, sign_message, statement_text, today_utc, verify_message,
};
use crate::error::{Error, Result};
use crate::report::Report;

/// One signed attestation, as stored in the attestations file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationRecord {
    /// The checklist item id it satisfies.
    pub item: String,
    /// What the signer states, e.g. "Operations team trained on the platform".
    pub statement: String,
    /// Link (or path) to the evidence: training roster, drill minutes, ticket.
    pub evidence: String,
    /// The signer's principal, as in allowed_signers.
    pub signer: String,
    /// RFC 3339 UTC time of signing.
    pub attested_at: String,
    /// Last day it holds (YYYY-MM-DD, UTC).
    pub expires: String,
    /// SHA-256 fingerprint of the signing key (OpenSSH form).
    pub key_fingerprint: String,
    /// Armored SSHSIG over [`AttestationStatement`].
    pub signature: String,
}

/// The attestations file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestationFile {
    #[serde(default)]
    attestation: Vec<AttestationRecord>,
}

/// The text an attestation signs:
///
/// ```text
/// prodready attestation v1
/// item: "team-trained"
/// statement: "Operations team trained on the platform"
/// evidence: "https://wiki.example.com/training-2026-11"
/// signer: "carol@example.com"
/// attested-at: 2026-11-22T20:00:00Z
/// expires: 2027-05-22
/// ```
pub struct AttestationStatement;

impl AttestationStatement {
    /// The exact UTF-8 text signed for `rec`.
    pub fn text(rec: &AttestationRecord) -> String {
        statement_text(
            "prodready attestation v1",
            &[
                ("item", Field::Quoted(&rec.item)),
                ("statement", Field::Quoted(&rec.statement)),
                ("evidence", Field::Quoted(&rec.evidence)),
                ("signer", Field::Quoted(&rec.signer)),
                ("attested-at", Field::Plain(&rec.attested_at)),
                ("expires", Field::Plain(&rec.expires)),
            ],
        )
    }
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Read every record of an attestations file.
///
/// # Errors
/// A message naming the file (and line/column for JSON, the TOML parser's location for TOML).
pub fn load_file(path: &Path) -> std::result::Result<Vec<AttestationRecord>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let file: AttestationFile = if is_json(path) {
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: invalid attestations file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?
    } else {
        toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    format!(":{}", before.matches('\n').count() + 1)
                })
                .unwrap_or_default();
            format!(
                "{}{at}: invalid attestations file: {}",
                path.display(),
                e.message().trim()
            )
        })?
    };
    Ok(file.attestation)
}

/// Append `rec` to the file (created when missing), keeping what is there.
///
/// # Errors
/// [`Error::InvalidInput`] when the existing file is malformed; [`Error::Io`] on write errors.
pub fn append(path: &Path, rec: &AttestationRecord) -> Result<()> {
    let exists = path.exists();
    let mut records = if exists {
        load_file(path).map_err(|m| Error::InvalidInput {
            path: path.to_path_buf(),
            message: m,
        })?
    } else {
        Vec::new()
    };
    if is_json(path) {
        records.push(rec.clone());
        let mut s = serde_json::to_string_pretty(&AttestationFile {
            attestation: records,
        })
        .expect("attestations serialize");
        s.push('\n');
        crate::report::write_atomic(path, s.as_bytes())
    } else {
        let mut text = if exists {
            std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?
        } else {
            "# Signed attestations (prodready attest). Do not edit records: any change \
             invalidates their signature.\n"
                .to_string()
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        text.push_str(
            &toml::to_string(&AttestationFile {
                attestation: vec![rec.clone()],
            })
            .map_err(|e| Error::Internal(format!("serializing the attestation: {e}")))?,
        );
        crate::report::write_atomic(path, text.as_bytes())
    }
}

/// What `prodready attest` needs.
#[derive(Debug, Clone)]
pub struct AttestRequest {
    /// Item id.
    pub item: String,
    /// Private key.
    pub key: PathBuf,
    /// Evidence link.
    pub evidence: String,
    /// Last day it holds.
    pub expires: jiff::civil::Date,
    /// The attestations file.
    pub file: PathBuf,
    /// What is attested; defaults to the item's title when the checklist is known.
    pub statement: String,
    /// Principal; defaults to the key comment.
    pub signer: Option<String>,
}

/// Sign an attestation and append it to `req.file`.
///
/// # Errors
/// [`Error::Usage`] for an empty statement/evidence, a past expiry or no signer; key and file
/// errors as [`load_private_key`] and [`append`].
pub fn attest(req: &AttestRequest) -> Result<AttestationRecord> {
    if req.evidence.trim().is_empty() {
        return Err(Error::Usage("--evidence must not be empty".into()));
    }
    if req.statement.trim().is_empty() {
        return Err(Error::Usage("--statement must not be empty".into()));
    }
    if req.expires < today_utc() {
        return Err(Error::Usage(format!(
            "--expires {} is in the past",
            req.expires
        )));
    }
    let private = load_private_key(&req.key)?;
    let signer = super::signer_or_comment(req.signer.clone(), &private, &req.key)?;
    let mut rec = AttestationRecord {
        item: req.item.clone(),
        statement: req.statement.clone(),
        evidence: req.evidence.clone(),
        signer,
        attested_at: super::now_rfc3339(),
        expires: req.expires.to_string(),
        key_fingerprint: fingerprint(private.public_key()),
        signature: String::new(),
    };
    rec.signature = sign_message(&private, AttestationStatement::text(&rec).as_bytes())?;
    append(&req.file, &rec)?;
    Ok(rec)
}

/// Check one record: signature, fingerprint, allowed signer, dates. Returns the allowed_signers
/// line on success.
///
/// # Errors
/// Why it does not count, in words.
pub fn check_record(
    rec: &AttestationRecord,
    allowed: &AllowedSigners,
    need: RoleNeed<'_>,
    on: jiff::civil::Date,
) -> std::result::Result<usize, String> {
    let key = verify_message(&rec.signature, AttestationStatement::text(rec).as_bytes())?;
    let fp = fingerprint(&key);
    if fp != rec.key_fingerprint {
        return Err(format!(
            "record names key {} but the signature was made by {fp}",
            rec.key_fingerprint
        ));
    }
    let at = parse_time(&rec.attested_at)?;
    if at > jiff::Timestamp::now() + jiff::SignedDuration::from_mins(5) {
        return Err(format!("attested_at {} is in the future", rec.attested_at));
    }
    let expires = rec
        .expires
        .parse::<jiff::civil::Date>()
        .map_err(|e| format!("expires \"{}\" is not a date: {e}", rec.expires))?;
    let line = allowed
        .check(key.key_data(), &rec.signer, need, at)
        .map_err(|m| format!("signer \"{}\" is not allowed: {m}", rec.signer))?;
    if expires < on {
        return Err(format!(
            "attestation expired on {expires} (checked as of {on})"
        ));
    }
    Ok(line)
}

/// Verify the attestations recorded in a report's `attestation` items (for
/// `prodready verify`): each must still be correctly signed by an allowed signer and not
/// expired on `on`.
pub fn verify_in_report(
    r: &Report,
    allowed: Option<&AllowedSigners>,
    on: jiff::civil::Date,
    v: &mut Verification,
) {
    for it in r.items.iter().filter(|i| i.kind == "attestation") {
        let check = format!("attestation: {}", it.id);
        let Some(value) = it.outcome.measured.get("attestation") else {
            v.push(
                check,
                CheckState::Info,
                format!(
                    "no attestation recorded (item is {})",
                    it.outcome.status.as_str()
                ),
            );
            continue;
        };
        let rec: AttestationRecord = match serde_json::from_value(value.clone()) {
            Ok(r) => r,
            Err(e) => {
                v.push(
                    check,
                    CheckState::Fail,
                    format!("malformed attestation record: {e}"),
                );
                continue;
            }
        };
        let roles: Vec<String> = it
            .outcome
            .measured
            .get("attestation_roles")
            .and_then(|x| serde_json::from_value(x.clone()).ok())
            .unwrap_or_default();
        let need = if roles.is_empty() {
            RoleNeed::Any
        } else {
            RoleNeed::OneOf(&roles)
        };
        let Some(a) = allowed else {
            v.push(
                check,
                CheckState::Fail,
                format!(
                    "attested by \"{}\", but no --allowed-signers file was given",
                    rec.signer
                ),
            );
            continue;
        };
        if rec.item != it.id {
            v.push(
                check,
                CheckState::Fail,
                format!("the recorded attestation is for item \"{}\"", rec.item),
            );
            continue;
        }
        match check_record(&rec, a, need, on) {
            Ok(line) => v.push(
                check,
                CheckState::Pass,
                format!(
                    "attested by {} on {}, valid until {}, allowed by {} line {line}",
                    rec.signer,
                    rec.attested_at,
                    rec.expires,
                    a.path.display()
                ),
            ),
            Err(m) => v.push(check, CheckState::Fail, m),
        }
    }
}

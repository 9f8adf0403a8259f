//! Sign-off (design §8): SSH-signed readiness reports, attestations and waiver approvals.
//!
//! Every signature is an OpenSSH SSHSIG (PROTOCOL.sshsig) in the namespace `prodready`, made
//! with the `ssh-key` crate (ed25519, RSA with SHA-512, ECDSA P-256/P-384/P-521; encrypted keys
//! are decrypted with a passphrase from [`PASSPHRASE_ENV`] or a terminal prompt) or by
//! `ssh-keygen -Y sign -n prodready` itself.
//!
//! **What is signed.** Not the report body directly but a short UTF-8 *statement* that names
//! it: [`SignoffStatement`] carries the SHA-256 of the canonical body ([`canonical`]), the run
//! it belongs to, the role, decision, signer, time and comment. Binding the role and decision
//! into the signed bytes means a `reject` cannot be relabelled `approve` and a signature cannot
//! be moved to another role. The statement is stored verbatim in the record, so anyone can check
//! a signature with `ssh-keygen -Y verify -n prodready` on that text (see
//! docs/signoff.md). Waivers ([`WaiverStatement`]) and attestations
//! ([`attestations::AttestationStatement`]) are signed the same way.
//!
//! This module owns [`sign`], [`import_signature`] and [`verify`]; [`allowed_signers`] parses
//! OpenSSH allowed_signers files with the role mapping; [`attestations`] the attestation file.

pub mod allowed_signers;
pub mod attestations;
pub mod canonical;
mod openssh;

use std::path::{Path, PathBuf};

use serde_json::Value;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::error::{Error, Result};
use crate::report::{Report, Signature};
pub use allowed_signers::{AllowedSigners, NAMESPACE, RoleNeed};

/// Environment variable read for the passphrase of an encrypted private key.
pub const PASSPHRASE_ENV: &str = "PRODREADY_KEY_PASSPHRASE";

pub use crate::report::Decision;

// ---------------------------------------------------------------------------------------------
// Statements: the exact bytes that are signed.

/// A value in a statement line.
enum Field<'a> {
    /// Written as a JSON string (quoted, escaped; one line whatever it contains).
    Quoted(&'a str),
    /// Written as is (digests, dates, keywords: never contain spaces or newlines).
    Plain(&'a str),
}

/// `header\n` then `key: value\n` per field.
fn statement_text(header: &str, fields: &[(&str, Field<'_>)]) -> String {
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
fn parse_statement(
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

const SIGNOFF_HEADER: &str = "prodready sign-off v1";
const SIGNOFF_KEYS: [&str; 8] = [
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

// ---------------------------------------------------------------------------------------------
// Keys and raw signatures.

/// Read an OpenSSH private key, decrypting it when it is passphrase-protected (passphrase from
/// [`PASSPHRASE_ENV`], else a prompt on the terminal).
///
/// # Errors
/// [`Error::Io`] when unreadable; [`Error::InvalidInput`] (exit 2) when it is not an OpenSSH
/// private key, the passphrase is wrong, or it is encrypted and no passphrase can be had.
pub fn load_private_key(path: &Path) -> Result<PrivateKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let invalid = |message: String| Error::InvalidInput {
        path: path.to_path_buf(),
        message,
    };
    if text.contains("-----BEGIN RSA PRIVATE KEY-----")
        || text.contains("-----BEGIN EC PRIVATE KEY-----")
        || text.contains("-----BEGIN PRIVATE KEY-----")
    {
        return Err(invalid(
            "a PEM key; prodready reads OpenSSH private keys (convert a copy with \
             `ssh-keygen -p -f KEY`, which rewrites it in the OpenSSH format)"
                .into(),
        ));
    }
    let key = match PrivateKey::from_openssh(&text) {
        Ok(k) => k,
        Err(e) => {
            return openssh::read_unencrypted(&text)
                .ok_or_else(|| invalid(format!("not an OpenSSH private key: {e}")));
        }
    };
    if !key.is_encrypted() {
        return Ok(key);
    }
    let passphrase = match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => p,
        Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
                .map_err(|e| Error::io("reading the passphrase for", path, e))?
        }
        Err(_) => {
            return Err(invalid(format!(
                "the key is passphrase-protected: set {PASSPHRASE_ENV} or run on a terminal"
            )));
        }
    };
    let wrong = || invalid("cannot decrypt the key: wrong passphrase".into());
    match key.decrypt(passphrase.as_bytes()) {
        Ok(k) => Ok(k),
        Err(ssh_key::Error::Crypto) => Err(wrong()),
        Err(e) => match openssh::decrypt(&key, passphrase.as_bytes()) {
            Ok(k) => Ok(k),
            Err(openssh::DecryptError::WrongPassphrase) => Err(wrong()),
            Err(openssh::DecryptError::Unsupported(m)) => Err(invalid(format!(
                "cannot decrypt the key: {e} ({m}); sign with `ssh-keygen -Y sign` instead \
                 (prodready sign --print-statement)"
            ))),
        },
    }
}

/// Sign `message` with `key` as an armored SSHSIG in the [`NAMESPACE`] namespace (SHA-512,
/// as `ssh-keygen -Y sign` does).
///
/// # Errors
/// [`Error::Internal`] when the key type cannot sign.
pub fn sign_message(key: &PrivateKey, message: &[u8]) -> Result<String> {
    let fail = |e: String| Error::Internal(format!("signing with {} key: {e}", key.algorithm()));
    let sig = match key.key_data() {
        ssh_key::private::KeypairData::Rsa(rsa_key) => {
            sign_rsa(key, rsa_key, message).map_err(fail)?
        }
        _ => key
            .sign(NAMESPACE, HashAlg::Sha512, message)
            .map_err(|e| fail(e.to_string()))?,
    };
    sig.to_pem(LineEnding::LF)
        .map_err(|e| Error::Internal(format!("encoding the signature: {e}")))
}

/// RSA signing done here (RSASSA-PKCS1-v1_5 with SHA-512, "rsa-sha2-512", as ssh-keygen
/// does): ssh-key 0.6 builds the RSA private key from `p` twice instead of `p` and `q`, so its
/// own RSA signing always fails.
fn sign_rsa(
    key: &PrivateKey,
    kp: &ssh_key::private::RsaKeypair,
    message: &[u8],
) -> std::result::Result<SshSig, String> {
    use rsa::signature::{SignatureEncoding, Signer};
    let big = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or_else(|| "malformed RSA key component".to_string())
    };
    let private = rsa::RsaPrivateKey::from_components(
        big(&kp.public.n)?,
        big(&kp.public.e)?,
        big(&kp.private.d)?,
        vec![big(&kp.private.p)?, big(&kp.private.q)?],
    )
    .map_err(|e| format!("invalid RSA key: {e}"))?;
    let signed =
        SshSig::signed_data(NAMESPACE, HashAlg::Sha512, message).map_err(|e| e.to_string())?;
    let signing_key = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private);
    let raw = signing_key
        .try_sign(&signed)
        .map_err(|e| format!("RSA signing failed: {e}"))?;
    let signature = ssh_key::Signature::new(
        ssh_key::Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        raw.to_vec(),
    )
    .map_err(|e| e.to_string())?;
    SshSig::new(
        key.public_key().key_data().clone(),
        NAMESPACE,
        HashAlg::Sha512,
        signature,
    )
    .map_err(|e| e.to_string())
}

/// Parse an armored SSHSIG and check its namespace is [`NAMESPACE`].
///
/// # Errors
/// A message when it is not an SSH signature or has another namespace.
pub fn parse_sshsig(armored: &str) -> std::result::Result<SshSig, String> {
    let sig = SshSig::from_pem(armored.trim().as_bytes())
        .map_err(|e| format!("not an armored SSH signature: {e}"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "signature namespace is \"{}\", expected \"{NAMESPACE}\"",
            sig.namespace()
        ));
    }
    Ok(sig)
}

/// Check an armored SSHSIG over `message`; returns the signing public key.
///
/// # Errors
/// A message when malformed, in another namespace, or not a valid signature of `message`.
pub fn verify_message(armored: &str, message: &[u8]) -> std::result::Result<PublicKey, String> {
    let sig = parse_sshsig(armored)?;
    let key = PublicKey::new(sig.public_key().clone(), "");
    key.verify(NAMESPACE, message, &sig).map_err(|e| {
        format!("the signature does not match the signed text (altered signature or text): {e}")
    })?;
    Ok(key)
}

/// SHA-256 fingerprint in OpenSSH form (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

fn parse_time(s: &str) -> std::result::Result<jiff::Timestamp, String> {
    s.parse::<jiff::Timestamp>()
        .map_err(|e| format!("\"{s}\" is not an RFC 3339 time: {e}"))
}

/// Today's date in UTC.
pub fn today_utc() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

// ---------------------------------------------------------------------------------------------
// Reports.

/// A `report.json` read for signing or verifying.
#[derive(Debug, Clone)]
pub struct LoadedReport {
    /// The file.
    pub path: PathBuf,
    /// The typed report.
    pub report: Report,
    /// Lowercase hex SHA-256 of the canonical body of the file's JSON value.
    pub body_sha256: String,
}

/// Read `report.json`, insisting that it holds exactly the report model: an unknown key or a
/// value the model would not write back identically is rejected, so nothing in the file can
/// escape the typed checks. The body digest is computed from the file's JSON value.
///
/// # Errors
/// [`Error::Io`] when unreadable; [`Error::InvalidInput`] (exit 2) with line and column for
/// malformed JSON or a wrong schema, and with the JSON pointer of an unknown key.
pub fn load_report(path: &Path) -> Result<LoadedReport> {
    let report = Report::load(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::InvalidInput {
        path: path.to_path_buf(),
        message: format!("{}:{}: invalid JSON: {e}", e.line(), e.column()),
    })?;
    if let Some(at) = canonical::first_difference(&report.to_value(), &value) {
        return Err(Error::InvalidInput {
            path: path.to_path_buf(),
            message: format!(
                "{at}: not part of the report format (schema_version {}): an unknown key or a \
                 value the report model does not hold",
                crate::report::SCHEMA_VERSION
            ),
        });
    }
    Ok(LoadedReport {
        path: path.to_path_buf(),
        body_sha256: canonical::body_sha256(&value),
        report,
    })
}

/// Write `report.json` back and re-render `report.md` beside it.
fn save_report(loaded: &LoadedReport) -> Result<()> {
    crate::report::write_atomic(&loaded.path, loaded.report.to_json().as_bytes())?;
    let md_path = loaded
        .path
        .parent()
        .unwrap_or(Path::new("."))
        .join("report.md");
    let mut md = Vec::new();
    crate::report::markdown::render(&mut md, &loaded.report)
        .map_err(|e| Error::io("rendering", &md_path, e))?;
    crate::report::write_atomic(&md_path, &md)
}

/// Check that `role` may sign this report now; returns the role as the checklist spells it.
fn check_signable(loaded: &LoadedReport, role: &str) -> Result<String> {
    let r = &loaded.report;
    if role.trim().is_empty() {
        return Err(Error::Usage("--role must not be empty".into()));
    }
    let role = if r.signoff.required_roles.is_empty() {
        role.to_string()
    } else {
        r.signoff
            .required_roles
            .iter()
            .find(|x| x.eq_ignore_ascii_case(role))
            .cloned()
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--role \"{role}\" is not a sign-off role of this report (expected one of: {})",
                    r.signoff.required_roles.join(", ")
                ))
            })?
    };
    check_unchanged(loaded)?;
    Ok(role)
}

/// Refuse to add to a report whose body no longer matches the signatures already on it.
fn check_unchanged(loaded: &LoadedReport) -> Result<()> {
    for (i, s) in loaded.report.signoff.signatures.iter().enumerate() {
        if s.body_sha256 != loaded.body_sha256 {
            return Err(Error::InvalidInput {
                path: loaded.path.clone(),
                message: format!(
                    "signature {} ({}) covers body {} but the body is now {}: the report changed \
                     after it was signed; run `prodready verify` and re-sign a fresh report",
                    i + 1,
                    s.role,
                    s.body_sha256,
                    loaded.body_sha256
                ),
            });
        }
    }
    Ok(())
}

/// What `prodready sign` needs.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The report.json.
    pub report: PathBuf,
    /// The role signed for.
    pub role: String,
    /// The decision.
    pub decision: Decision,
    /// Free text.
    pub comment: String,
    /// Principal; defaults to the key's comment.
    pub signer: Option<String>,
}

/// The statement `prodready sign --print-statement` prints, for signing with
/// `ssh-keygen -Y sign -n prodready` and importing with [`import_signature`].
///
/// # Errors
/// As [`load_report`]; [`Error::Usage`] for a role the report does not require or no signer.
pub fn statement_for(req: &SignRequest) -> Result<String> {
    let loaded = load_report(&req.report)?;
    let role = check_signable(&loaded, &req.role)?;
    let signer = req
        .signer
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::Usage("--print-statement needs --signer PRINCIPAL".into()))?;
    Ok(SignoffStatement::for_report(
        &loaded.report,
        &loaded.body_sha256,
        &role,
        req.decision,
        &signer,
        &req.comment,
    )
    .to_text())
}

/// Sign the report with the private key at `key`, store the record in report.json and
/// re-render report.md beside it.
///
/// # Errors
/// As [`load_report`] and [`load_private_key`]; [`Error::Usage`] for a role the report does
/// not require or a key without comment and no `signer`.
pub fn sign(req: &SignRequest, key: &Path) -> Result<Signature> {
    let mut loaded = load_report(&req.report)?;
    let role = check_signable(&loaded, &req.role)?;
    let private = load_private_key(key)?;
    let signer = req
        .signer
        .clone()
        .unwrap_or_else(|| private.comment().to_string());
    if signer.trim().is_empty() {
        return Err(Error::Usage(format!(
            "{} has no comment to use as the signer: pass --signer PRINCIPAL (as in allowed_signers)",
            key.display()
        )));
    }
    let statement = SignoffStatement::for_report(
        &loaded.report,
        &loaded.body_sha256,
        &role,
        req.decision,
        &signer,
        &req.comment,
    );
    let text = statement.to_text();
    let armored = sign_message(&private, text.as_bytes())?;
    let public = verify_message(&armored, text.as_bytes()).map_err(Error::Internal)?;
    let record = record_from(&statement, &text, armored, &public);
    loaded.report.signoff.signatures.push(record.clone());
    save_report(&loaded)?;
    Ok(record)
}

fn record_from(
    st: &SignoffStatement,
    text: &str,
    armored: String,
    public: &PublicKey,
) -> Signature {
    Signature {
        role: st.role.clone(),
        signer: st.signer.clone(),
        decision: st.decision,
        comment: st.comment.clone(),
        signed_at: st.signed_at.clone(),
        key_fingerprint: fingerprint(public),
        body_sha256: st.body_sha256.clone(),
        signature: armored,
        statement: text.to_string(),
    }
}

/// Add a signature made elsewhere (`ssh-keygen -Y sign -n prodready` over the statement from
/// `prodready sign --print-statement`) to the report and re-render report.md.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) when the statement is malformed, names another report or
/// body, or the signature does not verify over it.
pub fn import_signature(report: &Path, statement: &Path, signature: &Path) -> Result<Signature> {
    let mut loaded = load_report(report)?;
    let text =
        std::fs::read_to_string(statement).map_err(|e| Error::io("reading", statement, e))?;
    let armored =
        std::fs::read_to_string(signature).map_err(|e| Error::io("reading", signature, e))?;
    let st = SignoffStatement::parse(&text).map_err(|m| Error::InvalidInput {
        path: statement.to_path_buf(),
        message: m,
    })?;
    if check_signable(&loaded, &st.role)? != st.role {
        return Err(Error::InvalidInput {
            path: statement.to_path_buf(),
            message: format!(
                "role \"{}\" is not spelled as in the checklist's sign-off roles ({})",
                st.role,
                loaded.report.signoff.required_roles.join(", ")
            ),
        });
    }
    let r = &loaded.report;
    if st.body_sha256 != loaded.body_sha256
        || st.checklist_sha256 != r.run.checklist.sha256
        || st.run_started_at != r.run.started_at
    {
        return Err(Error::InvalidInput {
            path: statement.to_path_buf(),
            message: format!(
                "the statement is for another report or body (body {}), not {} (body {})",
                st.body_sha256,
                report.display(),
                loaded.body_sha256
            ),
        });
    }
    let public = verify_message(&armored, text.as_bytes()).map_err(|m| Error::InvalidInput {
        path: signature.to_path_buf(),
        message: m,
    })?;
    let record = record_from(&st, &text, armored.trim().to_string() + "\n", &public);
    loaded.report.signoff.signatures.push(record.clone());
    save_report(&loaded)?;
    Ok(record)
}

/// Copy into `report` the signatures of `other`, a copy of the same report signed elsewhere
/// (same body digest), skipping those already present. Each copied signature must be valid over
/// its statement; whether its signer is allowed is for [`verify`] to say. Returns how many were
/// added; re-renders report.md.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) when `other` has another body or holds an invalid signature.
pub fn merge_signatures(report: &Path, other: &Path) -> Result<usize> {
    let mut loaded = load_report(report)?;
    check_unchanged(&loaded)?;
    let theirs = load_report(other)?;
    if theirs.body_sha256 != loaded.body_sha256 {
        return Err(Error::InvalidInput {
            path: other.to_path_buf(),
            message: format!(
                "body sha256 {} differs from {} ({}): not a copy of the same report",
                theirs.body_sha256,
                report.display(),
                loaded.body_sha256
            ),
        });
    }
    let mut added = 0;
    for (i, s) in theirs.report.signoff.signatures.iter().enumerate() {
        if loaded
            .report
            .signoff
            .signatures
            .iter()
            .any(|x| x.signature == s.signature)
        {
            continue;
        }
        let finding = check_signature(s, &theirs, None);
        let signed_body = finding.statement.as_ref().map(|st| st.body_sha256.as_str());
        if !finding.same_run || signed_body != Some(loaded.body_sha256.as_str()) {
            return Err(Error::InvalidInput {
                path: other.to_path_buf(),
                message: format!("signature {}: {}", i + 1, finding.detail),
            });
        }
        loaded.report.signoff.signatures.push(s.clone());
        added += 1;
    }
    save_report(&loaded)?;
    Ok(added)
}

// ---------------------------------------------------------------------------------------------
// Verification.

/// The result of one verify check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// The check holds.
    Pass,
    /// The check fails: verify exits 1.
    Fail,
    /// Information only (does not affect the exit code).
    Info,
}

impl CheckState {
    /// `ok`, `FAIL` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Pass => "ok",
            CheckState::Fail => "FAIL",
            CheckState::Info => "info",
        }
    }
}

/// One line of `prodready verify` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    /// What was checked.
    pub check: String,
    /// The result.
    pub state: CheckState,
    /// Why, in words.
    pub detail: String,
}

/// Everything `prodready verify` found.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Current body digest.
    pub body_sha256: String,
    /// The checks, in order.
    pub rows: Vec<CheckRow>,
}

impl Verification {
    /// True when no check failed.
    pub fn all_hold(&self) -> bool {
        self.rows.iter().all(|r| r.state != CheckState::Fail)
    }

    fn push(&mut self, check: impl Into<String>, state: CheckState, detail: impl Into<String>) {
        self.rows.push(CheckRow {
            check: check.into(),
            state,
            detail: detail.into(),
        });
    }
}

/// Options of [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The allowed_signers file; without it no principal can be accepted (fail closed).
    pub allowed_signers: Option<PathBuf>,
    /// Attestations and waivers must not have expired on this day (normally today, UTC).
    pub on: jiff::civil::Date,
}

/// What one signature's check found.
struct SigFinding {
    statement: Option<SignoffStatement>,
    /// The statement is for this report's run.
    same_run: bool,
    /// Fully valid and allowed for its role.
    valid: bool,
    detail: String,
}

fn check_signature(
    s: &Signature,
    loaded: &LoadedReport,
    allowed: Option<&AllowedSigners>,
) -> SigFinding {
    let mut f = SigFinding {
        statement: None,
        same_run: false,
        valid: false,
        detail: String::new(),
    };
    let public = match verify_message(&s.signature, s.statement.as_bytes()) {
        Ok(k) => k,
        Err(m) => {
            f.detail = format!("invalid signature: {m}");
            return f;
        }
    };
    let st = match SignoffStatement::parse(&s.statement) {
        Ok(st) => st,
        Err(m) => {
            f.detail = format!("malformed signed statement: {m}");
            return f;
        }
    };
    f.statement = Some(st.clone());
    let mismatches: Vec<String> = [
        ("role", &s.role, &st.role),
        ("signer", &s.signer, &st.signer),
        (
            "decision",
            &s.decision.as_str().to_string(),
            &st.decision.as_str().to_string(),
        ),
        ("comment", &s.comment, &st.comment),
        ("signed_at", &s.signed_at, &st.signed_at),
        ("body_sha256", &s.body_sha256, &st.body_sha256),
    ]
    .iter()
    .filter(|(_, rec, signed)| rec != signed)
    .map(|(k, rec, signed)| format!("{k} is \"{rec}\" but the signed statement says \"{signed}\""))
    .collect();
    if !mismatches.is_empty() {
        f.detail = format!("record altered after signing: {}", mismatches.join("; "));
        return f;
    }
    let fp = fingerprint(&public);
    if s.key_fingerprint != fp {
        f.detail = format!(
            "record names key {} but the signature was made by {fp}",
            s.key_fingerprint
        );
        return f;
    }
    let r = &loaded.report;
    f.same_run =
        st.checklist_sha256 == r.run.checklist.sha256 && st.run_started_at == r.run.started_at;
    if !f.same_run {
        f.detail = format!(
            "signature belongs to another report: it signs the run started {} of checklist \
             sha256 {}…, this report is the run started {} of checklist sha256 {}…",
            st.run_started_at,
            short(&st.checklist_sha256),
            r.run.started_at,
            short(&r.run.checklist.sha256)
        );
        return f;
    }
    if st.body_sha256 != loaded.body_sha256 {
        f.detail = format!(
            "report body changed after signing: signed body sha256 {}…, current body sha256 {}…",
            short(&st.body_sha256),
            short(&loaded.body_sha256)
        );
        return f;
    }
    let Some(allowed) = allowed else {
        f.detail = format!(
            "valid {} signature by key {fp}, but no --allowed-signers file was given, so the \
             signer \"{}\" cannot be accepted",
            public.algorithm(),
            st.signer
        );
        return f;
    };
    let at = parse_time(&st.signed_at).unwrap_or_else(|_| jiff::Timestamp::now());
    match allowed.check(public.key_data(), &st.signer, RoleNeed::Role(&st.role), at) {
        Ok(line) => {
            f.valid = true;
            f.detail = format!(
                "valid {} signature, key {fp}, signer allowed by {} line {line}",
                public.algorithm(),
                allowed.path.display()
            );
        }
        Err(m) => {
            f.detail = format!("signer \"{}\" is not allowed: {m}", st.signer);
        }
    }
    f
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// Verify a signed report: the body digest, every signature, each required role's approval by
/// an allowed principal, and that no attestation or waiver has expired on `opts.on`.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) for a malformed report or allowed_signers file;
/// [`Error::Io`] when unreadable. Failed checks are not errors: see
/// [`Verification::all_hold`].
pub fn verify(path: &Path, opts: &VerifyOptions) -> Result<Verification> {
    let loaded = load_report(path)?;
    let allowed = opts
        .allowed_signers
        .as_deref()
        .map(AllowedSigners::load)
        .transpose()?;
    let r = &loaded.report;
    let mut v = Verification {
        body_sha256: loaded.body_sha256.clone(),
        rows: Vec::new(),
    };
    v.push(
        "report format",
        CheckState::Pass,
        format!(
            "schema_version {}, {} items, no unknown keys; verdict {}",
            r.schema_version,
            r.items.len(),
            r.verdict.as_str()
        ),
    );
    match &allowed {
        Some(a) => v.push(
            "allowed signers",
            CheckState::Pass,
            format!("{}: {} keys", a.path.display(), a.entries.len()),
        ),
        None => v.push(
            "allowed signers",
            CheckState::Fail,
            "not given (--allowed-signers FILE): no signer can be accepted",
        ),
    }

    let findings: Vec<SigFinding> = r
        .signoff
        .signatures
        .iter()
        .map(|s| check_signature(s, &loaded, allowed.as_ref()))
        .collect();

    verify_digest(&mut v, &loaded, &findings);
    verify_signatures(&mut v, r, &findings);
    verify_roles(&mut v, r, &findings);
    attestations::verify_in_report(r, allowed.as_ref(), opts.on, &mut v);
    verify_waivers(r, allowed.as_ref(), opts.on, &mut v);
    Ok(v)
}

/// The body digest: every signature of this run signed the body as it is now.
fn verify_digest(v: &mut Verification, loaded: &LoadedReport, findings: &[SigFinding]) {
    let r = &loaded.report;
    // The body digest, as seen by every signature of this run.
    let signed_digests: Vec<&str> = findings
        .iter()
        .filter(|f| f.same_run)
        .filter_map(|f| f.statement.as_ref().map(|s| s.body_sha256.as_str()))
        .collect();
    if r.signoff.signatures.is_empty() {
        v.push(
            "body digest",
            CheckState::Info,
            format!("sha256 {} (no signatures yet)", loaded.body_sha256),
        );
    } else if let Some(d) = signed_digests.iter().find(|d| **d != loaded.body_sha256) {
        v.push(
            "body digest",
            CheckState::Fail,
            format!(
                "report body changed after signing: signed body sha256 {d}, current body sha256 {}",
                loaded.body_sha256
            ),
        );
    } else if signed_digests.is_empty() {
        v.push(
            "body digest",
            CheckState::Fail,
            format!(
                "sha256 {}: no signature is for this report's body",
                loaded.body_sha256
            ),
        );
    } else {
        v.push(
            "body digest",
            CheckState::Pass,
            format!(
                "sha256 {} matches what {} signature(s) signed",
                loaded.body_sha256,
                signed_digests.len()
            ),
        );
    }
}

/// One row per signature: valid or why not.
fn verify_signatures(v: &mut Verification, r: &Report, findings: &[SigFinding]) {
    for (i, (s, f)) in r.signoff.signatures.iter().zip(findings).enumerate() {
        v.push(
            format!(
                "signature {}: {} ({}, {})",
                i + 1,
                s.role,
                s.decision,
                s.signer
            ),
            if f.valid {
                CheckState::Pass
            } else {
                CheckState::Fail
            },
            f.detail.clone(),
        );
    }
}

/// Each required role has an approving signature by a principal allowed for it, and no reject.
fn verify_roles(v: &mut Verification, r: &Report, findings: &[SigFinding]) {
    if r.signoff.required_roles.is_empty() {
        v.push(
            "required roles",
            CheckState::Info,
            "the checklist requires no sign-off roles",
        );
    }
    for role in &r.signoff.required_roles {
        let valid: Vec<(&Signature, &SigFinding)> = r
            .signoff
            .signatures
            .iter()
            .zip(findings)
            .filter(|(s, f)| f.valid && s.role.eq_ignore_ascii_case(role))
            .collect();
        let rejects: Vec<&str> = valid
            .iter()
            .filter(|(s, _)| s.decision == Decision::Reject)
            .map(|(s, _)| s.signer.as_str())
            .collect();
        let approvers: Vec<&str> = valid
            .iter()
            .filter(|(s, _)| s.decision == Decision::Approve)
            .map(|(s, _)| s.signer.as_str())
            .collect();
        let check = format!("role: {role}");
        if !rejects.is_empty() {
            v.push(
                check,
                CheckState::Fail,
                format!("rejected by {}", rejects.join(", ")),
            );
        } else if approvers.is_empty() {
            let invalid = r
                .signoff
                .signatures
                .iter()
                .zip(findings)
                .filter(|(s, f)| !f.valid && s.role.eq_ignore_ascii_case(role))
                .count();
            v.push(
                check,
                CheckState::Fail,
                if invalid > 0 {
                    format!(
                        "missing required role: no valid approving signature ({invalid} invalid)"
                    )
                } else {
                    "missing required role: not signed".to_string()
                },
            );
        } else {
            v.push(
                check,
                CheckState::Pass,
                format!("approved by {}", approvers.join(", ")),
            );
        }
    }
}

fn verify_waivers(
    r: &Report,
    allowed: Option<&AllowedSigners>,
    on: jiff::civil::Date,
    v: &mut Verification,
) {
    for w in &r.waivers {
        let check = format!("waiver: {}", w.item);
        let waiver = match crate::checklist::Waiver::try_from(w) {
            Ok(waiver) => waiver,
            Err(m) => {
                v.push(check, CheckState::Fail, m);
                continue;
            }
        };
        let expires = waiver.expires;
        if expires < on {
            v.push(
                check,
                CheckState::Fail,
                format!("waiver expired on {expires} (checked as of {on})"),
            );
            continue;
        }
        match (&w.signer, &w.signature) {
            (Some(signer), Some(sig)) => {
                let st = waiver.statement(signer);
                let result = verify_message(sig, st.to_text().as_bytes()).and_then(|key| {
                    let Some(a) = allowed else {
                        return Err("no --allowed-signers file was given".to_string());
                    };
                    a.check(
                        key.key_data(),
                        signer,
                        RoleNeed::Role(&w.approved_by),
                        jiff::Timestamp::now(),
                    )
                    .map(|line| {
                        format!(
                            "signed by {signer} (key {}), allowed by {} line {line}",
                            fingerprint(&key),
                            a.path.display()
                        )
                    })
                });
                match result {
                    Ok(d) => v.push(
                        check,
                        CheckState::Pass,
                        format!("valid until {expires}; {d}"),
                    ),
                    Err(m) => v.push(
                        check,
                        CheckState::Fail,
                        format!("approver signature by \"{signer}\" not accepted: {m}"),
                    ),
                }
            }
            _ => v.push(
                check,
                CheckState::Pass,
                format!("valid until {expires}; not signed by its approver"),
            ),
        }
    }
}

/// Render the verification as a table (comfy-table) followed by a one-line summary.
pub fn render_verification(v: &Verification, report: &Path) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(vec!["Check", "Result", "Detail"]);
    // On a terminal, cells wrap to its width; in logs and pipes lines stay whole (greppable).
    for row in &v.rows {
        t.add_row(vec![
            row.check.as_str(),
            row.state.as_str(),
            row.detail.as_str(),
        ]);
    }
    let failed = v
        .rows
        .iter()
        .filter(|r| r.state == CheckState::Fail)
        .count();
    let checks = v
        .rows
        .iter()
        .filter(|r| r.state != CheckState::Info)
        .count();
    let summary = if failed == 0 {
        format!("{}: verified: all {checks} checks hold", report.display())
    } else {
        format!(
            "{}: NOT verified: {failed} of {checks} checks failed",
            report.display()
        )
    };
    format!("{t}\n{summary}\n")
}

/// Produce an approver signature for a `[[waiver]]`: the armored SSHSIG over its
/// [`WaiverStatement`], to be saved as the waiver's `signature_file`.
///
/// # Errors
/// [`Error::Usage`] when the checklist has no waiver for `item` or no signer is known;
/// key errors as [`load_private_key`].
pub fn sign_waiver(
    checklist: &Path,
    item: &str,
    key: &Path,
    signer: Option<String>,
) -> Result<(WaiverStatement, String)> {
    let text =
        std::fs::read_to_string(checklist).map_err(|e| Error::io("reading", checklist, e))?;
    // Only the waivers, typed as the loader types them; the rest of the checklist (and its
    // `${VAR}`s) is not needed to sign one.
    #[derive(serde::Deserialize)]
    struct Waivers {
        #[serde(default)]
        waiver: Vec<crate::checklist::raw::RawWaiver>,
    }
    let invalid = |message: String| Error::InvalidInput {
        path: checklist.to_path_buf(),
        message,
    };
    let doc: Waivers =
        toml::from_str(&text).map_err(|e| invalid(format!("invalid TOML: {}", e.message())))?;
    let raw = doc
        .waiver
        .into_iter()
        .find(|w| w.item == item)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} has no [[waiver]] with item = \"{item}\"",
                checklist.display()
            ))
        })?;
    let waiver = crate::checklist::Waiver {
        expires: crate::checklist::toml_date(&raw.expires)
            .map_err(|m| invalid(format!("the waiver for \"{item}\": expires: {m}")))?,
        item: raw.item,
        reason: raw.reason,
        approved_by: raw.approved_by,
        signature: None,
    };
    let private = load_private_key(key)?;
    let signer = signer.unwrap_or_else(|| private.comment().to_string());
    if signer.trim().is_empty() {
        return Err(Error::Usage(format!(
            "{} has no comment to use as the signer: pass --signer PRINCIPAL",
            key.display()
        )));
    }
    let st = waiver.statement(&signer);
    let armored = sign_message(&private, st.to_text().as_bytes())?;
    Ok((st, armored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signoff_statement_round_trips_and_escapes_newlines() {
        let st = SignoffStatement {
            checklist_sha256: "ab".repeat(32),
            run_started_at: "2026-11-22T20:00:00Z".into(),
            body_sha256: "cd".repeat(32),
            role: "Technical lead".into(),
            decision: Decision::Reject,
            signer: "alice@example.com".into(),
            signed_at: "2026-11-22T20:30:00Z".into(),
            comment: "line one\nrole: Business owner".into(),
        };
        let text = st.to_text();
        assert_eq!(text.lines().count(), 9, "{text}");
        assert!(
            text.contains("comment: \"line one\\nrole: Business owner\"\n"),
            "{text}"
        );
        assert_eq!(SignoffStatement::parse(&text).unwrap(), st);
        let forged = text.replace("decision: reject", "decision: approve\nextra: 1");
        assert!(SignoffStatement::parse(&forged).is_err());
    }

    #[test]
    fn verify_output_names_each_check_and_the_failures() {
        let mut v = Verification {
            body_sha256: "ab".repeat(32),
            rows: Vec::new(),
        };
        v.push(
            "report format",
            CheckState::Pass,
            "schema_version 1, 3 items, no unknown keys",
        );
        v.push(
            "body digest",
            CheckState::Fail,
            "report body changed after signing: signed body sha256 00…, current body sha256 ab…",
        );
        v.push(
            "role: Technical lead",
            CheckState::Fail,
            "missing required role: not signed",
        );
        v.push("required roles", CheckState::Info, "note | with a pipe");
        assert!(!v.all_hold());
        insta::assert_snapshot!(render_verification(&v, Path::new("r/report.json")));
    }
}

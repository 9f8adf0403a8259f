//! Signing: loading and saving `report.json`, the checks before a signature is added, making,
//! importing and merging signature records, and signing waivers.

use super::*;

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

/// Write `report.json` back and re-render `report.md` and `report.html` beside it.
pub(super) fn save_report(loaded: &LoadedReport) -> Result<()> {
    crate::report::write_atomic(&loaded.path, loaded.report.to_json().as_bytes())?;
    let dir = loaded.path.parent().unwrap_or(Path::new("."));
    let md_path = dir.join("report.md");
    let mut md = Vec::new();
    crate::report::markdown::render(&mut md, &loaded.report)
        .map_err(|e| Error::io("rendering", &md_path, e))?;
    crate::report::write_atomic(&md_path, &md)?;
    loaded.report.write_html(dir, None)
}

/// Check that `role` may sign this report now; returns the role as the checklist spells it.
pub(super) fn check_signable(loaded: &LoadedReport, role: &str) -> Result<String> {
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

/// Refuse a partial report (filters left items out, [`Report::partial_scope`]) unless
/// `allow_partial`: a signature on it approves only the items that ran.
///
/// # Errors
/// [`Error::Usage`] (exit 2) naming the filters, the items that ran and those that did not.
pub fn check_scope(loaded: &LoadedReport, allow_partial: bool) -> Result<()> {
    let r = &loaded.report;
    match r.partial_scope() {
        Some(p) if !allow_partial => Err(Error::Usage(format!(
            "{} is a partial report: the run was filtered ({}), so its verdict ({}) is for {} \
             of {} items; not run: {}. A signature on it would approve those items only, not \
             the checklist: sign the report of a run without filters, or pass --allow-partial \
             to sign this partial report knowingly",
            loaded.path.display(),
            p.filters,
            r.verdict.as_str(),
            p.ran,
            p.total,
            p.not_run_list(10)
        ))),
        _ => Ok(()),
    }
}

/// Refuse to add to a report whose body no longer matches the signatures already on it.
pub(super) fn check_unchanged(loaded: &LoadedReport) -> Result<()> {
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
    /// Sign even a partial report ([`check_scope`]).
    pub allow_partial: bool,
}

impl SignRequest {
    /// The statement this request signs for `loaded`, in `role`, by `signer`.
    fn statement(&self, loaded: &LoadedReport, role: &str, signer: &str) -> SignoffStatement {
        SignoffStatement::for_report(
            &loaded.report,
            &loaded.body_sha256,
            role,
            self.decision,
            signer,
            &self.comment,
        )
    }
}

/// The statement `prodready sign --print-statement` prints, for signing with
/// `ssh-keygen -Y sign -n prodready` and importing with [`import_signature`].
///
/// # Errors
/// As [`load_report`]; [`Error::Usage`] for a role the report does not require or no signer.
pub fn statement_for(req: &SignRequest) -> Result<String> {
    let loaded = load_report(&req.report)?;
    check_scope(&loaded, req.allow_partial)?;
    let role = check_signable(&loaded, &req.role)?;
    let signer = req
        .signer
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::Usage("--print-statement needs --signer PRINCIPAL".into()))?;
    Ok(req.statement(&loaded, &role, &signer).to_text())
}

/// Sign the report with the private key at `key`, store the record in report.json and
/// re-render report.md beside it.
///
/// # Errors
/// As [`load_report`] and [`load_private_key`]; [`Error::Usage`] for a role the report does
/// not require or a key without comment and no `signer`.
pub fn sign(req: &SignRequest, key: &Path) -> Result<Signature> {
    let mut loaded = load_report(&req.report)?;
    check_scope(&loaded, req.allow_partial)?;
    let role = check_signable(&loaded, &req.role)?;
    let private = load_private_key(key)?;
    let signer = signer_or_comment(req.signer.clone(), &private, key)?;
    let statement = req.statement(&loaded, &role, &signer);
    let text = statement.to_text();
    let armored = sign_message(&private, text.as_bytes())?;
    let public = verify_message(&armored, text.as_bytes()).map_err(Error::Internal)?;
    let record = record_from(&statement, &text, armored, &public);
    loaded.report.signoff.signatures.push(record.clone());
    save_report(&loaded)?;
    Ok(record)
}

pub(super) fn record_from(
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
/// body, or the signature does not verify over it; [`Error::Usage`] for a partial report
/// without `allow_partial` ([`check_scope`]).
pub fn import_signature(
    report: &Path,
    statement: &Path,
    signature: &Path,
    allow_partial: bool,
) -> Result<Signature> {
    let mut loaded = load_report(report)?;
    check_scope(&loaded, allow_partial)?;
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
/// [`Error::InvalidInput`] (exit 2) when `other` has another body or holds an invalid
/// signature; [`Error::Usage`] for a partial report without `allow_partial` ([`check_scope`]).
pub fn merge_signatures(report: &Path, other: &Path, allow_partial: bool) -> Result<usize> {
    let mut loaded = load_report(report)?;
    check_scope(&loaded, allow_partial)?;
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
        waiver: Vec<crate::waiver::RawWaiver>,
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
    let waiver = Waiver {
        expires: crate::waiver::toml_date(&raw.expires)
            .map_err(|m| invalid(format!("the waiver for \"{item}\": expires: {m}")))?,
        item: raw.item,
        reason: raw.reason,
        approved_by: raw.approved_by,
        signature: None,
    };
    let private = load_private_key(key)?;
    let signer = signer_or_comment(signer, &private, key)?;
    let st = WaiverStatement::of(&waiver, &signer);
    let armored = sign_message(&private, st.to_text().as_bytes())?;
    Ok((st, armored))
}

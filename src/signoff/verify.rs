//! Verification: the report digest, every signature, the roles the allowed_signers file
//! requires, and the signed waivers, as one table of checks.

use super::*;

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
    /// Set for a partial report (filters left items out): its verdict with the scope, e.g.
    /// `ready for 1 of 6 items (5 not run)`. Shown, never a failure: signers approve it
    /// knowingly with `sign --allow-partial`.
    pub partial: Option<String>,
}

impl Verification {
    /// True when no check failed.
    pub fn all_hold(&self) -> bool {
        self.rows.iter().all(|r| r.state != CheckState::Fail)
    }

    pub(crate) fn push(
        &mut self,
        check: impl Into<String>,
        state: CheckState,
        detail: impl Into<String>,
    ) {
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
pub(super) struct SigFinding {
    pub(crate) statement: Option<SignoffStatement>,
    /// The statement is for this report's run.
    pub(crate) same_run: bool,
    /// Fully valid and allowed for its role.
    pub(crate) valid: bool,
    pub(crate) detail: String,
}

pub(super) fn check_signature(
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
    let mismatches = altered_fields(s, &st);
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
    if let Some(other) = other_run(&st, &loaded.report) {
        f.detail = other;
        return f;
    }
    f.same_run = true;
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

/// The fields of the record `s` that differ from the statement it signs, each as a sentence.
fn altered_fields(s: &Signature, st: &SignoffStatement) -> Vec<String> {
    [
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
    .collect()
}

/// Why the statement `st` belongs to another run than report `r`'s, or `None` when it is this
/// run's (same checklist digest and start time).
fn other_run(st: &SignoffStatement, r: &Report) -> Option<String> {
    let same =
        st.checklist_sha256 == r.run.checklist.sha256 && st.run_started_at == r.run.started_at;
    (!same).then(|| {
        format!(
            "signature belongs to another report: it signs the run started {} of checklist \
             sha256 {}…, this report is the run started {} of checklist sha256 {}…",
            st.run_started_at,
            short(&st.checklist_sha256),
            r.run.started_at,
            short(&r.run.checklist.sha256)
        )
    })
}

pub(super) fn short(hex: &str) -> &str {
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
    let scope = r.partial_scope();
    let mut v = Verification {
        body_sha256: loaded.body_sha256.clone(),
        rows: Vec::new(),
        partial: scope.as_ref().map(|_| r.verdict_text()),
    };
    v.push(
        "report format",
        CheckState::Pass,
        format!(
            "schema_version {}, {} items, no unknown keys; verdict {}",
            r.schema_version,
            r.items.len(),
            r.verdict_text()
        ),
    );
    if let Some(p) = &scope {
        v.push(
            "partial report",
            CheckState::Info,
            format!(
                "the run was filtered ({}): its verdict covers {} of {} items, not the \
                 checklist; not run: {}",
                p.filters,
                p.ran,
                p.total,
                p.not_run_list(10)
            ),
        );
    }
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
pub(super) fn verify_digest(v: &mut Verification, loaded: &LoadedReport, findings: &[SigFinding]) {
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
pub(super) fn verify_signatures(v: &mut Verification, r: &Report, findings: &[SigFinding]) {
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
pub(super) fn verify_roles(v: &mut Verification, r: &Report, findings: &[SigFinding]) {
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

pub(super) fn verify_waivers(
    r: &Report,
    allowed: Option<&AllowedSigners>,
    on: jiff::civil::Date,
    v: &mut Verification,
) {
    for w in &r.waivers {
        let check = format!("waiver: {}", w.item);
        let waiver = match Waiver::try_from(w) {
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
                let st = WaiverStatement::of(&waiver, signer);
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

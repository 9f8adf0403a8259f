//! The `attestation` probe: a manual item ("team trained", "incident response plan reviewed")
//! passes while a valid, unexpired attestation for it exists, signed (SSHSIG, namespace
//! `prodready`) by a principal the item's allowed_signers file accepts. The report shows who
//! attested what, when, until when, and the evidence link; the chosen record is kept in the
//! outcome so `prodready verify` re-checks it later (signature and expiry).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Table};
use crate::signoff::attestations::{self, AttestationRecord, AttestationStatement};
use crate::signoff::{AllowedSigners, RoleNeed};

/// `kind = "attestation"`: a signed, unexpired human statement.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAttestationProbe {
    /// The attestations file (TOML, or JSON with a `.json` extension), relative to the
    /// checklist; `prodready attest ITEM --file …` appends to it.
    pub file: String,
    /// OpenSSH allowed_signers file (relative to the checklist) naming who may attest.
    pub allowed_signers: String,
    /// Only signers whose allowed_signers line lists one of these roles in
    /// `prodready-roles="…"` (lines without the annotation allow every role). Default: any.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A validated `attestation` probe.
#[derive(Debug, Clone)]
pub struct AttestationProbe {
    /// The attestations file as written (relative to the checklist).
    pub file: PathBuf,
    allowed_signers: PathBuf,
    roles: Vec<String>,
}

impl RawAttestationProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] for an empty path or role.
    pub fn validate(self, _v: &mut Validator) -> Result<AttestationProbe, FieldError> {
        for (k, val) in [
            ("file", &self.file),
            ("allowed_signers", &self.allowed_signers),
        ] {
            if val.trim().is_empty() {
                return Err(FieldError::new(k, "expected a file path"));
            }
        }
        for (i, r) in self.roles.iter().enumerate() {
            if r.trim().is_empty() {
                return Err(FieldError::new(
                    format!("roles[{i}]"),
                    "expected a role name",
                ));
            }
        }
        Ok(AttestationProbe {
            file: PathBuf::from(self.file),
            allowed_signers: PathBuf::from(self.allowed_signers),
            roles: self.roles,
        })
    }
}

/// What an attestation item expects, as the report shows it.
const EXPECTED: &str = "signed by an allowed signer, not expired";

impl AttestationProbe {
    /// Look for a valid attestation of `ctx.item_id`.
    pub fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let file = ctx.resolve(&self.file);
        if !file.exists() {
            return ProbeOutput::error(format!(
                "attestations file {} does not exist; record an attestation with \
                 `prodready attest {} --key KEY --evidence URL --expires DATE --file {}`",
                file.display(),
                ctx.item_id,
                file.display()
            ));
        }
        let records = match attestations::load_file(&file) {
            Ok(r) => r,
            Err(m) => return ProbeOutput::error(m),
        };
        let signers_path = ctx.resolve(&self.allowed_signers);
        let allowed = match AllowedSigners::load(&signers_path) {
            Ok(a) => a,
            Err(e) => return ProbeOutput::error(e.to_string()),
        };
        let need = if self.roles.is_empty() {
            RoleNeed::Any
        } else {
            RoleNeed::OneOf(&self.roles)
        };
        let today = ctx.today;
        let mut o = ProbeOutput::default();
        let mine: Vec<&AttestationRecord> =
            records.iter().filter(|r| r.item == ctx.item_id).collect();
        let mut table = Table {
            title: "Attestations".into(),
            columns: [
                "Signer",
                "Statement",
                "Attested at",
                "Expires",
                "Evidence",
                "State",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
        };
        let mut best: Option<&AttestationRecord> = None;
        for rec in &mine {
            let state = match attestations::check_record(rec, &allowed, need, today) {
                Ok(_) => {
                    if best.is_none_or(|b| rec.expires > b.expires) {
                        best = Some(rec);
                    }
                    "valid".to_string()
                }
                Err(m) => m,
            };
            table.rows.push(vec![
                rec.signer.clone(),
                rec.statement.clone(),
                rec.attested_at.clone(),
                rec.expires.clone(),
                rec.evidence.clone(),
                state,
            ]);
        }
        o.measure("attestations", mine.len() as u64);
        match best {
            Some(rec) => {
                if let Err(m) = self.accept(&mut o, ctx, rec) {
                    return ProbeOutput::error(m);
                }
            }
            None => self.reject(&mut o, ctx, &file, mine.len(), &table),
        }
        if !table.rows.is_empty() {
            o.tables.push(table);
        }
        o
    }

    /// The valid attestation that lasts longest: its check, its figures for machines, and the
    /// signed statement with its signature as evidence.
    fn accept(
        &self,
        o: &mut ProbeOutput,
        ctx: &ProbeContext,
        rec: &AttestationRecord,
    ) -> Result<(), String> {
        o.checks.push(Check::new(
            "attestation",
            EXPECTED,
            format!("valid, by {} until {}", rec.signer, rec.expires),
            true,
        ));
        o.measure("signer", rec.signer.clone());
        o.measure("attested_at", rec.attested_at.clone());
        o.measure("expires", rec.expires.clone());
        o.measure("evidence", rec.evidence.clone());
        o.measure(
            "attestation",
            serde_json::to_value(rec).expect("record serializes"),
        );
        if !self.roles.is_empty() {
            o.measure(
                "attestation_roles",
                serde_json::to_value(&self.roles).expect("roles serialize"),
            );
        }
        o.summary = format!(
            "attested by {} on {}: \"{}\" (until {}; evidence {})",
            rec.signer, rec.attested_at, rec.statement, rec.expires, rec.evidence
        );
        let slug = format!("attestation-{}", rec.attested_at.replace(':', ""));
        for (name, bytes, label) in [
            (
                format!("{slug}.txt"),
                AttestationStatement::text(rec),
                "signed attestation statement",
            ),
            (
                format!("{slug}.txt.sig"),
                rec.signature.clone(),
                "SSHSIG signature of the statement",
            ),
        ] {
            match ctx.write_evidence(&name, bytes.as_bytes(), label, "text/plain") {
                Ok(ev) => o.evidence.push(ev),
                Err(m) => return Err(m),
            }
        }
        Ok(())
    }

    /// No valid attestation: say how to record one, or why each recorded one is not valid
    /// (the table's state column).
    fn reject(
        &self,
        o: &mut ProbeOutput,
        ctx: &ProbeContext,
        file: &std::path::Path,
        recorded: usize,
        table: &Table,
    ) {
        let measured = if recorded == 0 {
            "none".to_string()
        } else {
            format!("{} attestation(s), none valid", recorded)
        };
        o.checks
            .push(Check::new("attestation", EXPECTED, &measured, false));
        o.summary = if recorded == 0 {
            format!(
                "no attestation for \"{}\" in {}; record one with `prodready attest {} \
                 --key KEY --evidence URL --expires DATE --file {}`",
                ctx.item_id,
                self.file.display(),
                ctx.item_id,
                file.display()
            )
        } else {
            format!(
                "no valid attestation for \"{}\": {}",
                ctx.item_id,
                table
                    .rows
                    .iter()
                    .map(|r| r[5].clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
    }
}

crate::probe::probe_kind!(AttestationProbe, RawAttestationProbe, blocking);

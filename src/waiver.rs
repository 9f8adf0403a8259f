//! Waivers: accepted, justified, expiring exceptions for failing items. The `[[waiver]]` table
//! as written ([`RawWaiver`]), the validated [`Waiver`] with its optional approver signature, and
//! the same waiver read back from a report ([`crate::report::WaiverReport`]) for `prodready
//! verify`.
//!
//! The checklist validates `[[waiver]]` tables (they name items and signature files);
//! sign-off builds the statement an approver signs from a [`Waiver`]
//! (`signoff::WaiverStatement::of`), so both `sign-waiver` and `verify` sign the same bytes.
//! This module depends on neither of them.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::report::WaiverReport;

/// `[[waiver]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWaiver {
    /// The id of the waived item.
    pub item: String,
    /// Why the failure is accepted.
    pub reason: String,
    /// Who accepted it (a role or a person).
    pub approved_by: String,
    /// Last day the waiver applies (a TOML date, e.g. `2027-01-31`).
    #[schemars(with = "String")]
    pub expires: toml::value::Datetime,
    /// Principal (as in allowed_signers) of the approver who signed this waiver. Required with
    /// `signature_file`.
    pub signer: Option<String>,
    /// Armored SSHSIG signature (namespace `prodready`) by `signer` over the waiver statement,
    /// made with `prodready sign-waiver`; path relative to the checklist. `prodready verify`
    /// checks it against allowed_signers.
    pub signature_file: Option<String>,
}

/// A `[[waiver]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    /// Waived item id.
    pub item: String,
    /// Justification.
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
    /// Last day it applies.
    pub expires: jiff::civil::Date,
    /// The approver's signature, when the waiver is signed.
    pub signature: Option<WaiverSignature>,
}

/// An approver's signature on a [`Waiver`] (`signer` + `signature_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiverSignature {
    /// Principal of the approver, as in allowed_signers.
    pub signer: String,
    /// The armored SSHSIG signature read from `signature_file`.
    pub armored: String,
}

impl Waiver {
    /// True when the waiver still applies on `today`.
    pub fn applies_on(&self, today: jiff::civil::Date) -> bool {
        today <= self.expires
    }
}

impl TryFrom<&WaiverReport> for Waiver {
    type Error = String;

    /// The waiver as a report recorded it (for `prodready verify`); the signature stays in
    /// the report.
    ///
    /// # Errors
    /// A message when its `expires` is not a YYYY-MM-DD date.
    fn try_from(w: &WaiverReport) -> std::result::Result<Waiver, String> {
        Ok(Waiver {
            item: w.item.clone(),
            reason: w.reason.clone(),
            approved_by: w.approved_by.clone(),
            expires: w
                .expires
                .parse()
                .map_err(|e| format!("bad expiry \"{}\": {e}", w.expires))?,
            signature: None,
        })
    }
}

/// A TOML date without time (`2027-01-31`) as a calendar date.
///
/// # Errors
/// A message when it has a time or offset, or is not a valid date.
pub fn toml_date(d: &toml::value::Datetime) -> std::result::Result<jiff::civil::Date, String> {
    match (&d.date, &d.time) {
        (Some(d), None) => jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8)
            .map_err(|e| format!("invalid date: {e}")),
        _ => Err("expected a date without time, e.g. 2027-01-31".into()),
    }
}

//! `prodready attest`: record a signed attestation for a manual item.

use std::path::PathBuf;

use super::parse_date_arg;
use crate::error::{Error, Exit, Result};
use crate::{checklist, cli, probe, signoff};

/// `prodready attest ITEM`: sign a statement for a manual item and add it to the attestations
/// file.
///
/// # Errors
/// Usage errors (exit 2), key and I/O errors.
pub fn cmd_attest(args: cli::AttestArgs) -> Result<Exit> {
    let expires = parse_date_arg("--expires", &args.expires)?;
    let mut file = args.file.clone();
    let mut statement = args.statement.clone();
    if let Some(path) = &args.checklist {
        let c = checklist::load(path)?;
        let item = c.items.iter().find(|i| i.id == args.item).ok_or_else(|| {
            Error::Usage(format!(
                "{}: no item with id \"{}\"",
                path.display(),
                args.item
            ))
        })?;
        if file.is_none()
            && let probe::Probe::Attestation(p) = &item.probe
        {
            file = Some(c.dir.join(&p.file));
        }
        if statement.is_none() {
            statement = Some(item.title.clone());
        }
    }
    let statement = statement
        .ok_or_else(|| Error::Usage("--statement TEXT is required without --checklist".into()))?;
    let req = signoff::attestations::AttestRequest {
        item: args.item.clone(),
        key: args.key.clone(),
        evidence: args.evidence.clone(),
        expires,
        file: file.unwrap_or_else(|| PathBuf::from("attestations.toml")),
        statement,
        signer: args.signer.clone(),
    };
    let rec = signoff::attestations::attest(&req)?;
    println!(
        "{}: attestation for \"{}\" by {} (key {}) until {} appended",
        req.file.display(),
        rec.item,
        rec.signer,
        rec.key_fingerprint,
        rec.expires
    );
    Ok(Exit::Ready)
}

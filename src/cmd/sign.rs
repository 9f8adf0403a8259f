//! `prodready sign`: a role signs a report (SSHSIG), or imports a signature made elsewhere.

use crate::error::{Error, Exit, Result};
use crate::{cli, signoff};

/// `prodready sign REPORT.json`: add a role's signature, or print the statement to sign.
///
/// # Errors
/// Usage, key and report errors.
pub fn cmd_sign(args: cli::SignArgs) -> Result<Exit> {
    if let Some(other) = &args.merge_from {
        let added = signoff::merge_signatures(&args.report, other)?;
        println!(
            "{}: {added} signature(s) merged from {}",
            args.report.display(),
            other.display()
        );
        return Ok(Exit::Ready);
    }
    let record = match (&args.statement, &args.signature) {
        (Some(statement), Some(sig)) => {
            let r = signoff::import_signature(&args.report, statement, sig)?;
            if let Some(role) = &args.role
                && !role.eq_ignore_ascii_case(&r.role)
            {
                return Err(Error::Usage(format!(
                    "--role \"{role}\" differs from the statement's role \"{}\"",
                    r.role
                )));
            }
            r
        }
        _ => {
            let req = signoff::SignRequest {
                report: args.report.clone(),
                role: args.role.clone().unwrap_or_default(),
                decision: args.decision,
                comment: args.comment.clone(),
                signer: args.signer.clone(),
            };
            if args.print_statement {
                print!("{}", signoff::statement_for(&req)?);
                return Ok(Exit::Ready);
            }
            let key = args
                .key
                .as_deref()
                .ok_or_else(|| Error::Usage("--key is required".into()))?;
            signoff::sign(&req, key)?
        }
    };
    println!(
        "{}: signed for \"{}\" ({}) by {} with key {}; body sha256 {}",
        args.report.display(),
        record.role,
        record.decision,
        record.signer,
        record.key_fingerprint,
        record.body_sha256
    );
    Ok(Exit::Ready)
}

//! `prodready sign`: a role signs a report (SSHSIG), or imports a signature made elsewhere.

use crate::error::{Error, Exit, Result};
use crate::{cli, signoff};

/// `prodready sign REPORT.json`: add a role's signature, or print the statement to sign.
///
/// A partial report (filters left items out) is refused unless `--allow-partial`.
///
/// # Errors
/// Usage, key and report errors; a partial report without `--allow-partial` (exit 2).
pub fn cmd_sign(args: cli::SignArgs) -> Result<Exit> {
    if let Some(other) = &args.merge_from {
        let added = signoff::merge_signatures(&args.report, other, args.allow_partial)?;
        println!(
            "{}: {added} signature(s) merged from {}{}",
            args.report.display(),
            other.display(),
            partial_note(&args)
        );
        return Ok(Exit::Ready);
    }
    let record = match (&args.statement, &args.signature) {
        (Some(statement), Some(sig)) => {
            let r = signoff::import_signature(&args.report, statement, sig, args.allow_partial)?;
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
                allow_partial: args.allow_partial,
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
        "{}: signed for \"{}\" ({}) by {} with key {}; body sha256 {}{}",
        args.report.display(),
        record.role,
        record.decision,
        record.signer,
        record.key_fingerprint,
        record.body_sha256,
        partial_note(&args)
    );
    Ok(Exit::Ready)
}

/// `; a partial report: ready for 1 of 6 items (5 not run)` after a report signed with
/// `--allow-partial` that is partial; empty otherwise.
fn partial_note(args: &cli::SignArgs) -> String {
    if !args.allow_partial {
        return String::new();
    }
    match crate::report::Report::load(&args.report) {
        Ok(r) if r.partial_scope().is_some() => {
            format!("; a partial report: {}", r.verdict_text())
        }
        _ => String::new(),
    }
}

//! `prodready report`: re-render a saved report.json as Markdown, HTML, JUnit XML or JSON.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::Format;
use crate::error::{Error, Exit, Result};
use crate::report::html;
use crate::{cli, report, signoff};

/// `prodready report REPORT.json`: re-render a saved report.
///
/// # Errors
/// A malformed report (exit 2) or I/O errors; `--allowed-signers` without `--format html`
/// (exit 2); a malformed allowed_signers file (exit 2).
pub fn cmd_report(args: cli::ReportArgs) -> Result<Exit> {
    let report = report::Report::load(&args.report)?;
    if args.allowed_signers.is_some() && !matches!(args.format, Format::Html) {
        return Err(Error::Usage(
            "--allowed-signers applies to --format html only".into(),
        ));
    }
    let verified = match &args.allowed_signers {
        Some(file) => Some(verify(&args.report, file)?),
        None => None,
    };
    let mut buf = Vec::new();
    let target = args.output.clone().unwrap_or_else(|| PathBuf::from("-"));
    let dir = args.report.parent().unwrap_or(Path::new("."));
    match args.format {
        Format::Md => report::markdown::render(&mut buf, &report),
        Format::Junit => report::junit::render(&mut buf, &report),
        Format::Html => {
            let cx = html::Context {
                dir: Some(dir),
                verification: verified.as_ref(),
            };
            html::render(&mut buf, &report, &cx)
        }
        Format::Json => {
            buf.extend_from_slice(report.to_json().as_bytes());
            Ok(())
        }
    }
    .map_err(|e| Error::io("rendering", &target, e))?;
    match &args.output {
        Some(p) => report::write_atomic(p, &buf)?,
        None => std::io::stdout()
            .write_all(&buf)
            .map_err(|e| Error::io("writing", "stdout", e))?,
    }
    Ok(Exit::Ready)
}

/// Verify the report's signatures as `prodready verify` does, today, for the page.
fn verify(report: &Path, allowed_signers: &Path) -> Result<html::Verified> {
    let on = signoff::today_utc();
    let v = signoff::verify(
        report,
        &signoff::VerifyOptions {
            allowed_signers: Some(allowed_signers.to_path_buf()),
            on,
        },
    )?;
    Ok(html::Verified {
        allowed_signers: allowed_signers.display().to_string(),
        on: on.to_string(),
        rows: v
            .rows
            .into_iter()
            .map(|r| html::VerifiedRow {
                holds: match r.state {
                    signoff::CheckState::Pass => Some(true),
                    signoff::CheckState::Fail => Some(false),
                    signoff::CheckState::Info => None,
                },
                check: r.check,
                detail: r.detail,
            })
            .collect(),
    })
}

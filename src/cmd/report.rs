//! `prodready report`: re-render a saved report.json as Markdown, JUnit XML or JSON.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::Format;
use crate::error::{Error, Exit, Result};
use crate::{cli, report};

/// `prodready report REPORT.json`: re-render a saved report.
///
/// # Errors
/// A malformed report (exit 2) or I/O errors.
pub fn cmd_report(args: cli::ReportArgs) -> Result<Exit> {
    let report = report::Report::load(&args.report)?;
    let mut buf = Vec::new();
    let target = args.output.clone().unwrap_or_else(|| PathBuf::from("-"));
    match args.format {
        Format::Md => report::markdown::render(&mut buf, &report),
        Format::Junit => report::junit::render(&mut buf, &report),
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

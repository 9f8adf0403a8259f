//! `prodready compare BASE NEW`: judge a report against a baseline report (see
//! [`crate::compare`]); exit 0 no regression, 1 a regression (or an inconclusive figure),
//! 2 an input error.

use std::io::Write;

use crate::cli::{CompareArgs, CompareFormat};
use crate::compare::{self, Policy, render};
use crate::error::{Error, Exit, Result};

/// Load both reports, compare, print the chosen format and write `--out`'s files.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) naming the file for a missing, truncated, tampered or
/// foreign report; I/O errors writing.
pub fn cmd_compare(args: CompareArgs) -> Result<Exit> {
    let policy = Policy {
        alpha: args.alpha,
        latency_allowance_percent: args.latency_allowance,
        tail_allowance_percent: args.tail_allowance,
        coverage_allowance_points: args.coverage_allowance,
        availability_allowance_points: args.availability_allowance,
    };
    if !(policy.alpha > 0.0 && policy.alpha < 0.5) {
        return Err(Error::Usage(format!(
            "--alpha {}: expected a significance level between 0 and 0.5, e.g. 0.01",
            policy.alpha
        )));
    }
    let allowed = args.allowed_signers.as_deref();
    let base = compare::load(&args.baseline, allowed)?;
    let new = compare::load(&args.new, allowed)?;
    let mut c = compare::compare(&base, &new, &policy, args.allow_other_checklist)?;
    if let Some(dir) = &args.out {
        render::write_all(&mut c, dir)?;
    }
    let text = match args.format {
        CompareFormat::Table => render::terminal(&c),
        CompareFormat::Md => render::markdown(&c),
        CompareFormat::Json => {
            let mut s = serde_json::to_string_pretty(&c).expect("comparison serializes");
            s.push('\n');
            s
        }
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("writing", std::path::Path::new("-"), e))?;
    Ok(if c.regressed {
        Exit::NotReady
    } else {
        Exit::Ready
    })
}

//! `prodready verify`: check a report's digest, signatures, roles and expiries.

use crate::error::{Error, Exit, Result};
use crate::{cli, signoff};

/// `prodready verify REPORT.json`: exit 0 only when every check holds.
///
/// # Errors
/// Usage, report and allowed_signers errors.
pub fn cmd_verify(args: cli::VerifyArgs) -> Result<Exit> {
    let on = match &args.on {
        Some(d) => d
            .parse::<jiff::civil::Date>()
            .map_err(|e| Error::Usage(format!("--on {d}: expected YYYY-MM-DD: {e}")))?,
        None => signoff::today_utc(),
    };
    let v = signoff::verify(
        &args.report,
        &signoff::VerifyOptions {
            allowed_signers: args.allowed_signers.clone(),
            on,
        },
    )?;
    print!("{}", signoff::render_verification(&v, &args.report));
    Ok(if v.all_hold() {
        Exit::Ready
    } else {
        Exit::NotReady
    })
}

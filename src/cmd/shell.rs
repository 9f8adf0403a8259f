//! `prodready completions SHELL` and `prodready man`: the shell completion scripts
//! (clap_complete) and the manual page (clap_mangen, roff), generated from the same clap
//! definitions the program parses with, so they never drift from the real options.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, Exit, Result};

/// Print the completion script for `args.shell` to standard output.
///
/// # Errors
/// Never in practice; the signature matches the other handlers.
pub fn cmd_completions(args: CompletionsArgs) -> Result<Exit> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "prodready", &mut std::io::stdout());
    Ok(Exit::Ready)
}

/// Print the manual page (roff, section 1: synopsis, options, subcommands, version) to
/// standard output.
///
/// # Errors
/// [`Error::Io`] when standard output cannot be written.
pub fn cmd_man() -> Result<Exit> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::io("rendering", "the manual page", e))?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)
        .map_err(|e| Error::io("writing", "stdout", e))?;
    Ok(Exit::Ready)
}

//! The `prodready` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = prodready::cli::Cli::parse();
    match prodready::run(cli) {
        Ok(code) => code.into(),
        Err(err) => err.report(),
    }
}

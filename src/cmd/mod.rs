//! The command handlers, one file per subcommand; [`run()`] dispatches the parsed command line.
//! Handlers parse nothing themselves (clap did), call into the library and map the outcome to
//! an exit code ([`crate::error::Exit`]).

pub mod attest;
pub mod compare;
pub mod latency;
pub mod report;
pub mod run;
pub mod shell;
pub mod sign;
pub mod sign_waiver;
pub mod soak;
pub mod verify;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, SchemaKind};
use crate::error::{Error, Exit, Result};
use crate::{checklist, paper_broker, signoff};

/// Run the command line; returns the exit code to use.
///
/// # Errors
/// Any [`Error`]; its [`Error::exit`] is the exit code.
pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Run(args) => run::cmd_run(args),
        Command::Report(args) => report::cmd_report(args),
        Command::Compare(args) => compare::cmd_compare(args),
        Command::Schema(args) => {
            let schema = match args.kind {
                SchemaKind::Checklist => checklist::json_schema(),
                SchemaKind::Report => crate::report::json_schema(),
                SchemaKind::Compare => crate::compare::json_schema(),
                SchemaKind::Status => crate::soak::status_page::json_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema serializes")
            );
            Ok(Exit::Ready)
        }
        Command::PaperBroker(args) => paper_broker::run(args),
        Command::Sign(args) => sign::cmd_sign(args),
        Command::Verify(args) => verify::cmd_verify(args),
        Command::Attest(args) => attest::cmd_attest(args),
        Command::SignWaiver(args) => sign_waiver::cmd_sign_waiver(args),
        Command::Check(args) => {
            let c = checklist::load(&args.checklist)?;
            println!(
                "{}: valid: {} items, {} services, {} waivers",
                args.checklist.display(),
                c.items.len(),
                c.services.len(),
                c.waivers.len()
            );
            Ok(Exit::Ready)
        }
        Command::Soak(args) => soak::cmd_soak(args),
        Command::SoakStatus(args) => soak::cmd_soak_status(args),
        Command::StatusPage(args) => soak::cmd_status_page(args),
        Command::Latency(crate::cli::LatencyCommand::Merge(args)) => {
            latency::cmd_latency_merge(args)
        }
        Command::Completions(args) => shell::cmd_completions(args),
        Command::Man => shell::cmd_man(),
    }
}

/// Cancel `token` on ctrl-c or SIGTERM, and `again`, when given, on a second one (it cuts short
/// the cleanup still running after the first, such as a drill's restore).
pub fn cancel_on_signals(token: CancellationToken, again: Option<CancellationToken>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        // Streams, not one-shot futures: a second signal that comes while the first is being
        // handled is kept until it is read.
        let mut int = signal(SignalKind::interrupt()).ok();
        let mut term = signal(SignalKind::terminate()).ok();
        interrupted(&mut int, &mut term).await;
        let Some(again) = again else {
            eprintln!(
                "prodready: interrupted; stopping probes and services, writing a partial report…"
            );
            token.cancel();
            return;
        };
        eprintln!(
            "prodready: interrupted; stopping probes, restoring what drills broke, stopping services, writing a partial report… (interrupt again to abandon the restore)"
        );
        token.cancel();
        interrupted(&mut int, &mut term).await;
        eprintln!("prodready: interrupted again; abandoning restores, stopping services…");
        again.cancel();
    });
}

/// The next SIGINT (ctrl-c) or SIGTERM, from whichever of the two streams could be set up.
async fn interrupted(
    int: &mut Option<tokio::signal::unix::Signal>,
    term: &mut Option<tokio::signal::unix::Signal>,
) {
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        let received = match s {
            Some(s) => s.recv().await.is_some(),
            None => false,
        };
        if !received {
            std::future::pending::<()>().await;
        }
    }
    match int {
        Some(_) => {
            tokio::select! {
                _ = next(int) => {}
                _ = next(term) => {}
            }
        }
        None => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = next(term) => {}
            }
        }
    }
}

/// A name safe for a folder: letters, digits, `-`, `_`, `.`; others become `-`.
pub fn slug(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "checklist".into() } else { s }
}

pub(crate) fn parse_date_arg(flag: &str, text: &str) -> Result<jiff::civil::Date> {
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return Ok(d);
    }
    let dur = crate::units::parse_duration(text).map_err(|_| {
        Error::Usage(format!(
            "{flag} {text}: expected a date (YYYY-MM-DD) or a duration from today (\"180d\")"
        ))
    })?;
    let days = i32::try_from(dur.as_secs().div_ceil(86_400))
        .map_err(|_| Error::Usage(format!("{flag} {text}: too far")))?;
    signoff::today_utc()
        .checked_add(jiff::Span::new().days(days))
        .map_err(|e| Error::Usage(format!("{flag} {text}: {e}")))
}

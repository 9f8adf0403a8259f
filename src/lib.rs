//! prodready: a production-readiness validation harness for trading systems.
//!
//! A TOML checklist ([`checklist`]) lists items, each backed by one automated probe
//! ([`probe`]). The [`runner`] executes them around the checklist's services ([`service`]),
//! and one report model ([`report`]) feeds the JSON, Markdown and JUnit renderers. The exit
//! code is the verdict ([`error::Exit`]).

pub mod checklist;
pub mod cli;
pub mod error;
pub mod facts;
pub mod model;
pub mod paper_broker;
pub mod probe;
pub mod process;
pub mod report;
pub mod runner;
pub mod service;
pub mod signoff;
pub mod soak;
pub mod ui;
pub mod units;

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, Format, SchemaKind};
use crate::error::{Error, Exit, Result};

/// Run the command line; returns the exit code to use.
///
/// # Errors
/// Any [`Error`]; its [`Error::exit`] is the exit code.
pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Report(args) => cmd_report(args),
        Command::Schema(args) => {
            let schema = match args.kind {
                SchemaKind::Checklist => checklist::json_schema(),
                SchemaKind::Report => report::json_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema serializes")
            );
            Ok(Exit::Ready)
        }
        Command::PaperBroker(args) => paper_broker::run(args),
        Command::Sign(args) => cmd_sign(args),
        Command::Verify(args) => cmd_verify(args),
        Command::Attest(args) => cmd_attest(args),
        Command::SignWaiver(args) => cmd_sign_waiver(args),
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
        Command::Soak(args) => cmd_soak(args),
        Command::SoakStatus(args) => cmd_soak_status(args),
    }
}

fn cmd_soak(args: cli::SoakArgs) -> Result<Exit> {
    let checklist = checklist::load(&args.checklist)?;
    let opts = soak::run::SoakOptions {
        keep_samples: args.keep_samples,
        state: args.state.clone(),
        listen: args.listen.clone(),
        clock: soak::clock::Clock {
            offset_file: args.clock_offset_file.clone(),
        },
        checklist_dir: checklist.dir.clone(),
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone());
        soak::run::soak(checklist.monitors, checklist.redactor, opts, cancel).await
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result.map(|()| Exit::Ready)
}

fn cmd_soak_status(args: cli::SoakStatusArgs) -> Result<Exit> {
    let summaries = soak::status(&args.state, args.window.as_millis() as i64)?;
    match args.format {
        cli::StatusFormat::Text => {
            println!("{}", soak::tracker_line(&args.state)?);
            print!("{}", soak::render_status(&summaries));
        }
        cli::StatusFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&summaries).expect("summaries serialize")
        ),
    }
    Ok(Exit::Ready)
}

/// Build the tokio runtime, in one place.
///
/// # Errors
/// [`Error::Internal`] when the runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("prodready")
        .build()
        .map_err(|e| Error::Internal(format!("starting the async runtime: {e}")))
}

/// Cancel `token` on ctrl-c or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!(
            "prodready: interrupted; stopping probes and services, writing a partial report…"
        );
        token.cancel();
    });
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

fn default_report_dir(name: &str) -> PathBuf {
    let now = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    Path::new("reports").join(slug(name)).join(now)
}

fn cmd_run(args: cli::RunArgs) -> Result<Exit> {
    let checklist = checklist::load(&args.checklist)?;
    let timeout = args.timeout;
    for id in &args.only {
        if !checklist.items.iter().any(|i| &i.id == id) {
            return Err(Error::Usage(format!(
                "--only {id}: no item with that id in {}",
                args.checklist.display()
            )));
        }
    }
    for s in &args.section {
        if !checklist
            .items
            .iter()
            .any(|i| i.section.eq_ignore_ascii_case(s))
        {
            return Err(Error::Usage(format!(
                "--section {s}: no item in that section"
            )));
        }
    }
    for t in &args.tag {
        if !checklist.items.iter().any(|i| i.tags.contains(t)) {
            return Err(Error::Usage(format!("--tag {t}: no item has that tag")));
        }
    }
    let report_dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_report_dir(&checklist.meta.name));
    std::fs::create_dir_all(&report_dir).map_err(|e| Error::io("creating", &report_dir, e))?;
    let report_dir =
        std::fs::canonicalize(&report_dir).map_err(|e| Error::io("resolving", &report_dir, e))?;
    let opts = runner::RunOptions {
        jobs: args.jobs,
        timeout,
        only: args.only.clone(),
        sections: args.section.clone(),
        tags: args.tag.clone(),
        fail_on: args.fail_on,
        report_dir: report_dir.clone(),
        checklist_arg: args.checklist.display().to_string(),
        today: jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date(),
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone());
        let progress = ui::Progress::new(ui::interactive());
        let r = runner::run(&checklist, &opts, &progress, cancel).await;
        drop(progress);
        r
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    report.write_all(&report_dir)?;
    let color = ui::interactive() && std::io::stdout().is_terminal_like();
    print!("{}", ui::summary_table(&report, color));
    eprintln!("report: {}", report_dir.join("report.md").display());
    if !args.no_step_summary
        && let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY")
    {
        append_step_summary(Path::new(&path), &report)?;
    }
    Ok(report.verdict.exit())
}

trait TerminalLike {
    fn is_terminal_like(&self) -> bool;
}

impl TerminalLike for std::io::Stdout {
    fn is_terminal_like(&self) -> bool {
        std::io::IsTerminal::is_terminal(self)
    }
}

/// Append the report's summary (everything before the details) to the GitHub Actions job
/// summary file.
fn append_step_summary(path: &Path, report: &report::Report) -> Result<()> {
    let mut md = Vec::new();
    report::markdown::render(&mut md, report).map_err(|e| Error::io("rendering", path, e))?;
    let md = String::from_utf8_lossy(&md);
    let summary = md.split("\n## Details\n").next().unwrap_or(&md);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("opening", path, e))?;
    f.write_all(summary.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| Error::io("appending to", path, e))
}

fn cmd_report(args: cli::ReportArgs) -> Result<Exit> {
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

fn cmd_sign(args: cli::SignArgs) -> Result<Exit> {
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

fn parse_date_arg(flag: &str, text: &str) -> Result<jiff::civil::Date> {
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return Ok(d);
    }
    let dur = units::parse_duration(text).map_err(|_| {
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

fn cmd_verify(args: cli::VerifyArgs) -> Result<Exit> {
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

fn cmd_attest(args: cli::AttestArgs) -> Result<Exit> {
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

fn cmd_sign_waiver(args: cli::SignWaiverArgs) -> Result<Exit> {
    let (st, armored) =
        signoff::sign_waiver(&args.checklist, &args.item, &args.key, args.signer.clone())?;
    let dir = args.checklist.parent().unwrap_or(Path::new("."));
    let out = args.output.clone().unwrap_or_else(|| {
        dir.join("waivers")
            .join(format!("{}.sig", slug(&args.item)))
    });
    if let Some(parent) = out.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    report::write_atomic(&out, armored.as_bytes())?;
    let rel = out
        .strip_prefix(dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| out.clone());
    println!(
        "{}: waiver signature written; add to the [[waiver]] for \"{}\":\n  signer = \"{}\"\n  signature_file = \"{}\"",
        out.display(),
        st.item,
        st.signer,
        rel.display()
    );
    Ok(Exit::Ready)
}

//! `prodready run`: load the checklist, run it, write the report folder, exit with the verdict.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{cancel_on_signals, slug};
use crate::error::{Error, Exit, Result};
use crate::rt::runtime;
use crate::{checklist, cli, report, runner, ui};

fn default_report_dir(name: &str) -> PathBuf {
    let now = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    Path::new("reports").join(slug(name)).join(now)
}

/// `prodready run CHECKLIST`: run every selected item, write the report folder, exit with the
/// verdict.
///
/// # Errors
/// An invalid checklist or filter (exit 2), I/O errors writing the report (exit 3).
pub fn cmd_run(args: cli::RunArgs) -> Result<Exit> {
    let checklist = checklist::load(&args.checklist)?;
    let timeout = args.timeout;
    check_filters(&args, &checklist)?;
    let baseline = load_baseline(&args, &checklist)?;
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
        baseline,
    };
    let rt = runtime()?;
    let report = rt.block_on(async {
        let cancel = CancellationToken::new();
        let abandon = CancellationToken::new();
        cancel_on_signals(cancel.clone(), Some(abandon.clone()));
        let progress = ui::Progress::new(ui::interactive());
        let r = runner::run(&checklist, &opts, &progress, cancel, abandon).await;
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

/// `--only`, `--section` and `--tag` must each select something: a typo is an error, not an
/// empty run.
fn check_filters(args: &cli::RunArgs, checklist: &checklist::Checklist) -> Result<()> {
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
    Ok(())
}

/// The baseline to judge `regression` against: `--baseline`, else `[checklist] baseline`
/// (relative to the checklist), loaded and checked before anything runs.
fn load_baseline(
    args: &cli::RunArgs,
    checklist: &checklist::Checklist,
) -> Result<Option<std::sync::Arc<crate::compare::Loaded>>> {
    args.baseline
        .clone()
        .or_else(|| {
            checklist
                .meta
                .baseline
                .as_ref()
                .map(|b| checklist.dir.join(b))
        })
        .map(|path| {
            runner::baseline::load(
                &path,
                checklist,
                args.allowed_signers.as_deref(),
                args.allow_other_checklist,
            )
        })
        .transpose()
        .map(|b| b.map(std::sync::Arc::new))
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

//! Running an external tool for a probe that reads the tool's output: the `run` command of the
//! `coverage` probe (e.g. `cargo llvm-cov --lcov --output-path …`) and of the `audit` probe
//! (e.g. `cargo audit --json --db … --no-fetch`).
//!
//! The tool runs in its own process group (see [`crate::rig::process`]); at its timeout, or when the
//! run is cancelled, the whole group is terminated so nothing it forked outlives the probe.
//! Unlike the `command` probe, the exit status is not the measurement: a tool such as
//! cargo-audit exits 1 when it finds vulnerabilities and still writes a valid report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FieldError, ProbeContext, Validator};
use crate::rig::process::{Finished, group_command, last_lines, run_captured};
use crate::units::{Interpolated, format_duration};

/// Bytes of each stream kept (the most recent ones). Tool reports read from stdout must fit.
const OUTPUT_CAP: usize = 64 * 1024 * 1024;
/// Grace between SIGTERM and SIGKILL at a timeout.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Why a tool gave no output to read, or its report could not be read. Rendered as text only in
/// the item's summary.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program could not be started (not installed, not executable, bad working folder).
    #[error("could not start `{shown}` in {}: {source}{}", cwd.display(), install_hint(source, program))]
    NotStarted {
        /// The command line as shown (secrets redacted).
        shown: String,
        /// The program (first argument).
        program: String,
        /// The folder it was started in.
        cwd: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It ran past its timeout; its process group was killed.
    #[error("`{shown}` timed out after {}; its process group was killed", format_duration(*after))]
    TimedOut {
        /// The command line as shown.
        shown: String,
        /// The timeout.
        after: Duration,
    },
    /// The run was interrupted (ctrl-c, SIGTERM, the item timeout).
    #[error("`{shown}` was interrupted")]
    Interrupted {
        /// The command line as shown.
        shown: String,
    },
    /// Waiting for the process failed.
    #[error("waiting for `{shown}` failed: {source}")]
    WaitFailed {
        /// The command line as shown.
        shown: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The report file could not be read.
    #[error("cannot read report {}: {source}", path.display())]
    Read {
        /// The report file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// " (is `program` installed and on PATH?)" when the program was not found, else nothing.
fn install_hint(source: &std::io::Error, program: &str) -> String {
    if source.kind() == std::io::ErrorKind::NotFound {
        format!(" (is `{program}` installed and on PATH?)")
    } else {
        String::new()
    }
}

/// A validated tool invocation.
#[derive(Debug, Clone)]
pub struct ToolRun {
    argv: Vec<Interpolated>,
    cwd: Option<PathBuf>,
    timeout: Duration,
}

/// What a finished tool run left behind.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Exit code; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    /// Standard output (not redacted: it may be the report itself); its last 64 MiB.
    pub stdout: String,
    /// Whether older standard output was dropped (then it cannot be a complete report).
    pub stdout_truncated: bool,
    /// Standard error, redacted.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
    /// `$ argv` plus the last lines of both streams, redacted; for the outcome's log tail.
    pub log_tail: String,
}

impl ToolRun {
    /// Validate `run` (an argv array) with an optional `cwd` and `timeout` (humantime; default
    /// `default_timeout`). `key` names the argv key in errors (`run`).
    ///
    /// # Errors
    /// A [`FieldError`] naming the key: empty argv, unset `${VAR}`, malformed timeout.
    pub fn validate(
        v: &mut Validator,
        key: &str,
        argv: &[String],
        cwd: Option<String>,
        timeout: Option<&str>,
        default_timeout: Duration,
    ) -> Result<ToolRun, FieldError> {
        if argv.is_empty() || argv[0].trim().is_empty() {
            return Err(FieldError::new(
                key,
                "expected a non-empty argv array, e.g. [\"cargo\", \"llvm-cov\", \"--lcov\"]",
            ));
        }
        let mut out = Vec::with_capacity(argv.len());
        for (i, a) in argv.iter().enumerate() {
            out.push(v.interpolate(&format!("{key}[{i}]"), a)?);
        }
        let timeout = match timeout {
            Some(t) => v.duration("timeout", t)?,
            None => default_timeout,
        };
        Ok(ToolRun {
            argv: out,
            cwd: cwd.map(PathBuf::from),
            timeout,
        })
    }

    /// The command line as written (secrets left as `${VAR}`).
    pub fn display(&self) -> String {
        self.words().join(" ")
    }

    /// The command line's words as written (secrets left as `${VAR}`), e.g. to tell which
    /// tool it runs.
    pub fn words(&self) -> Vec<&str> {
        self.argv.iter().map(|a| a.display.as_str()).collect()
    }

    /// The working directory the tool runs in: `cwd` resolved against the checklist's folder,
    /// or the checklist's folder.
    pub fn workdir(&self, ctx: &ProbeContext) -> PathBuf {
        match &self.cwd {
            Some(c) => ctx.resolve(c),
            None => ctx.checklist_dir.clone(),
        }
    }

    /// Run the tool to completion.
    ///
    /// # Errors
    /// A [`ToolError`] when the tool could not start (its message names the program, e.g. "is
    /// `cargo` installed and on PATH?"), timed out or was interrupted.
    pub async fn run(&self, ctx: &ProbeContext) -> Result<ToolOutput, ToolError> {
        self.run_with_env(ctx, &[]).await
    }

    /// [`ToolRun::run`] with `env` (name, value) added to the inherited environment.
    ///
    /// # Errors
    /// As [`ToolRun::run`].
    pub async fn run_with_env(
        &self,
        ctx: &ProbeContext,
        env: &[(&str, &str)],
    ) -> Result<ToolOutput, ToolError> {
        let argv: Vec<String> = self.argv.iter().map(|a| a.value.clone()).collect();
        let cwd = self.workdir(ctx);
        let mut cmd = group_command(&argv);
        cmd.current_dir(&cwd).envs(env.iter().copied());
        let run = run_captured(cmd, OUTPUT_CAP, self.timeout, &ctx.cancel, KILL_GRACE)
            .await
            .map_err(|source| ToolError::NotStarted {
                shown: self.display(),
                program: argv[0].clone(),
                cwd: cwd.clone(),
                source,
            })?;
        let (stdout, dropped, stderr, elapsed, end) = (
            run.stdout,
            run.stdout_dropped,
            run.stderr,
            run.elapsed,
            run.end,
        );
        let stderr = ctx.redactor.redact(&stderr);
        let mut log = format!("$ {}\n", self.display());
        let shown_out = ctx.redactor.redact(&stdout);
        if !shown_out.is_empty() {
            log.push_str(&last_lines(&shown_out, 20));
            log.push('\n');
        }
        if !stderr.is_empty() {
            log.push_str("--- stderr ---\n");
            log.push_str(&last_lines(&stderr, 30));
            log.push('\n');
        }
        let status = match end {
            Finished::Exited(s) => s,
            Finished::TimedOut => {
                return Err(ToolError::TimedOut {
                    shown: self.display(),
                    after: self.timeout,
                });
            }
            Finished::Cancelled => {
                return Err(ToolError::Interrupted {
                    shown: self.display(),
                });
            }
            Finished::WaitFailed(source) => {
                return Err(ToolError::WaitFailed {
                    shown: self.display(),
                    source,
                });
            }
        };
        Ok(ToolOutput {
            exit_code: status.code(),
            stdout_truncated: dropped > 0,
            stdout,
            stderr,
            elapsed,
            log_tail: log,
        })
    }
}

/// Read a report file, naming it in the error.
///
/// # Errors
/// [`ToolError::Read`] naming the path when it cannot be read.
pub fn read_report(path: &Path) -> Result<Vec<u8>, ToolError> {
    std::fs::read(path).map_err(|source| ToolError::Read {
        path: path.to_path_buf(),
        source,
    })
}

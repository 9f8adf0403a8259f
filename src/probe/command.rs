//! The `command` probe: run an argv (no shell unless asked), check exit status, match output
//! against regular expressions and compare an extracted number with a threshold.
//!
//! The command runs in its own process group; at its timeout the whole group gets SIGTERM,
//! then SIGKILL after a grace period, so children it forked cannot outlive it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator, compare_range};
use crate::model::{Check, ProbeOutput};
use crate::rig::process::{Finished, group_command, last_lines, run_captured};
use crate::units::{Interpolated, format_duration};

/// Bytes of each stream kept for matching and evidence (the most recent ones).
const OUTPUT_CAP: usize = 4 * 1024 * 1024;
/// Grace between SIGTERM and SIGKILL at a timeout.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// `kind = "command"`: run a program.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCommandProbe {
    /// The argv, e.g. `["cargo", "test", "--locked"]`; `${VAR}` is interpolated. With
    /// `shell = true`, a single string run by `sh -c`. A leading `prodready` runs this binary.
    pub command: Vec<String>,
    /// Run `command[0]` with `sh -c` (opt-in; argv is safer).
    #[serde(default)]
    pub shell: bool,
    /// Working directory, relative to the checklist's folder. Default: the checklist's folder.
    pub cwd: Option<String>,
    /// Extra environment variables; values may use `${VAR}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Kill the command's process group after this long (humantime). Default `"5m"`.
    pub timeout: Option<String>,
    /// Expected exit code. Default 0.
    pub exit_code: Option<i32>,
    /// A regular expression stdout must match.
    pub stdout_matches: Option<String>,
    /// A regular expression stderr must match.
    pub stderr_matches: Option<String>,
    /// A regular expression that must match neither stdout nor stderr.
    pub output_not_matches: Option<String>,
    /// Extract a number from the output and compare it with a threshold.
    pub extract: Option<RawExtract>,
}

/// `extract = { regex = "coverage: ([0-9.]+)%", min = 90 }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    /// Regular expression whose first capture group is the number.
    pub regex: String,
    /// Which stream to search: `stdout` (default), `stderr` or `both`.
    pub from: Option<String>,
    /// Name shown in the report. Default `value`.
    pub name: Option<String>,
    /// Minimum allowed value.
    pub min: Option<f64>,
    /// Maximum allowed value.
    pub max: Option<f64>,
}

/// Which output stream to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Both, stdout first.
    Both,
}

/// A validated number extraction.
#[derive(Debug, Clone)]
pub struct Extract {
    regex: regex::Regex,
    from: Stream,
    name: String,
    min: Option<f64>,
    max: Option<f64>,
}

/// A validated `command` probe.
#[derive(Debug, Clone)]
pub struct CommandProbe {
    argv: Vec<Interpolated>,
    cwd: Option<PathBuf>,
    env: Vec<(String, Interpolated)>,
    timeout: Duration,
    exit_code: i32,
    stdout_matches: Option<regex::Regex>,
    stderr_matches: Option<regex::Regex>,
    output_not_matches: Option<regex::Regex>,
    extract: Option<Extract>,
}

impl RawExtract {
    /// Validate: a regex with a capture group, a threshold, a known stream.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key under `extract`.
    fn validate(self, v: &Validator) -> Result<Extract, FieldError> {
        let regex = v.regex("extract.regex", &self.regex)?;
        if regex.captures_len() < 2 {
            return Err(FieldError::new(
                "extract.regex",
                "expected a capture group around the number, e.g. \"total: ([0-9.]+)\"",
            ));
        }
        if self.min.is_none() && self.max.is_none() {
            return Err(FieldError::new(
                "extract",
                "expected a threshold: min, max or both",
            ));
        }
        let from = match self.from.as_deref() {
            None | Some("stdout") => Stream::Stdout,
            Some("stderr") => Stream::Stderr,
            Some("both") => Stream::Both,
            Some(other) => {
                return Err(FieldError::new(
                    "extract.from",
                    format!("unknown stream \"{other}\" (expected one of: stdout, stderr, both)"),
                ));
            }
        };
        Ok(Extract {
            regex,
            from,
            name: self.name.unwrap_or_else(|| "value".into()),
            min: self.min,
            max: self.max,
        })
    }
}

impl RawCommandProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<CommandProbe, FieldError> {
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            return Err(FieldError::new(
                "command",
                "expected a non-empty argv array, e.g. [\"cargo\", \"test\"]",
            ));
        }
        if self.shell && self.command.len() != 1 {
            return Err(FieldError::new(
                "command",
                "with shell = true, expected exactly one string (the script for sh -c)",
            ));
        }
        let mut argv = Vec::new();
        for (i, a) in self.command.iter().enumerate() {
            argv.push(v.interpolate(&format!("command[{i}]"), a)?);
        }
        if self.shell {
            let script = argv.remove(0);
            argv = vec![
                Interpolated::literal("sh"),
                Interpolated::literal("-c"),
                script,
            ];
        }
        let mut env = Vec::new();
        for (k, val) in &self.env {
            env.push((k.clone(), v.interpolate(&format!("env.{k}"), val)?));
        }
        let timeout = match &self.timeout {
            Some(t) => v.duration("timeout", t)?,
            None => Duration::from_secs(300),
        };
        let re = |key: &str, p: &Option<String>| -> Result<Option<regex::Regex>, FieldError> {
            p.as_deref().map(|p| v.regex(key, p)).transpose()
        };
        let extract = self.extract.map(|x| x.validate(v)).transpose()?;
        Ok(CommandProbe {
            argv,
            cwd: self.cwd.map(PathBuf::from),
            env,
            timeout,
            exit_code: self.exit_code.unwrap_or(0),
            stdout_matches: re("stdout_matches", &self.stdout_matches)?,
            stderr_matches: re("stderr_matches", &self.stderr_matches)?,
            output_not_matches: re("output_not_matches", &self.output_not_matches)?,
            extract,
        })
    }
}

impl CommandProbe {
    /// The same probe with another timeout (a soak monitor's per-check timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> CommandProbe {
        self.timeout = timeout;
        self
    }

    /// The command line as written (secrets left as `${VAR}`).
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.display.clone())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run the command once.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let argv: Vec<String> = self.argv.iter().map(|a| a.value.clone()).collect();
        let mut cmd = group_command(&argv);
        let cwd = match &self.cwd {
            Some(c) => ctx.resolve(c),
            None => ctx.checklist_dir.clone(),
        };
        cmd.current_dir(&cwd);
        for (k, v) in &self.env {
            cmd.env(k, &v.value);
        }
        let run = match run_captured(cmd, OUTPUT_CAP, self.timeout, &ctx.cancel, KILL_GRACE).await {
            Ok(r) => r,
            Err(e) => {
                return ProbeOutput::error(format!(
                    "could not start `{}` in {}: {e}",
                    self.display(),
                    cwd.display()
                ));
            }
        };
        let elapsed = run.elapsed;
        let (stdout, stderr, end) = (run.stdout, run.stderr, run.end);
        let stdout = ctx.redactor.redact(&stdout);
        let stderr = ctx.redactor.redact(&stderr);

        let mut o = ProbeOutput::default();
        o.measure("duration_ms", elapsed.as_millis() as u64);
        self.record_output(ctx, &mut o, &stdout, &stderr);
        let Some(status) = self.exit_status(&mut o, end) else {
            return o;
        };
        let code = status.code();
        o.measure("exit_code", code);
        let measured_code = match code {
            Some(c) => c.to_string(),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("killed by signal {}", status.signal().unwrap_or(0))
            }
        };
        o.checks.push(Check::new(
            "exit code",
            format!("= {}", self.exit_code),
            measured_code.clone(),
            code == Some(self.exit_code),
        ));
        self.output_checks(&mut o, &stdout, &stderr);
        if let Some(x) = &self.extract {
            extract_check(&mut o, x, &stdout, &stderr);
        }
        let failed = o.failed_checks();
        o.summary = if failed.is_empty() {
            format!(
                "`{}` exited {measured_code} in {}",
                self.display(),
                format_duration(elapsed)
            )
        } else if o.forced.is_some() {
            format!("`{}`: could not read {}", self.display(), failed.join(", "))
        } else {
            format!(
                "`{}` exited {measured_code}; failed: {}",
                self.display(),
                failed.join(", ")
            )
        };
        o
    }

    /// The log tail for the report and the whole output as evidence (both redacted).
    fn record_output(&self, ctx: &ProbeContext, o: &mut ProbeOutput, stdout: &str, stderr: &str) {
        let mut log = format!("$ {}\n", self.display());
        if !stdout.is_empty() {
            log.push_str(&last_lines(stdout, 40));
            log.push('\n');
        }
        if !stderr.is_empty() {
            log.push_str("--- stderr ---\n");
            log.push_str(&last_lines(stderr, 40));
            log.push('\n');
        }
        o.log_tail = Some(log);
        if !stdout.is_empty() || !stderr.is_empty() {
            let mut full = format!("$ {}\n--- stdout ---\n{stdout}", self.display());
            full.push_str(&format!("\n--- stderr ---\n{stderr}"));
            if let Ok(ev) = ctx.write_evidence(
                "output.log",
                full.as_bytes(),
                "command output",
                "text/plain",
            ) {
                o.evidence.push(ev);
            }
        }
    }

    /// The exit status, or `None` with the outcome made an error (timeout, interruption,
    /// wait failure).
    fn exit_status(&self, o: &mut ProbeOutput, end: Finished) -> Option<std::process::ExitStatus> {
        match end {
            Finished::Exited(s) => Some(s),
            Finished::TimedOut => {
                o.forced = Some(crate::model::Status::Error);
                o.summary = format!(
                    "`{}` timed out after {}; its process group was killed",
                    self.display(),
                    format_duration(self.timeout)
                );
                o.measure("timed_out", true);
                None
            }
            Finished::Cancelled => {
                o.forced = Some(crate::model::Status::Error);
                o.summary = format!("`{}` was interrupted", self.display());
                None
            }
            Finished::WaitFailed(e) => {
                o.forced = Some(crate::model::Status::Error);
                o.summary = format!("waiting for `{}` failed: {e}", self.display());
                None
            }
        }
    }

    /// `stdout_matches`, `stderr_matches` and `output_not_matches`.
    fn output_checks(&self, o: &mut ProbeOutput, stdout: &str, stderr: &str) {
        if let Some(re) = &self.stdout_matches {
            o.checks.push(matches_check("stdout", re, stdout));
        }
        if let Some(re) = &self.stderr_matches {
            o.checks.push(matches_check("stderr", re, stderr));
        }
        if let Some(re) = &self.output_not_matches {
            let hit = re
                .find(stdout)
                .or_else(|| re.find(stderr))
                .map(|m| m.as_str().chars().take(80).collect::<String>());
            o.checks.push(Check::new(
                "output",
                format!("does not match /{}/", re.as_str()),
                match &hit {
                    Some(h) => format!("matched \"{h}\""),
                    None => "no match".into(),
                },
                hit.is_none(),
            ));
        }
    }
}

/// The `extract` check: the last match of the regex's first group, as a number within bounds;
/// no match is an error (nothing measured), a non-number a failure.
fn extract_check(o: &mut ProbeOutput, x: &Extract, stdout: &str, stderr: &str) {
    let hay = match x.from {
        Stream::Stdout => stdout.to_string(),
        Stream::Stderr => stderr.to_string(),
        Stream::Both => format!("{stdout}\n{stderr}"),
    };
    let value = x
        .regex
        .captures_iter(&hay)
        .last()
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim().to_string());
    let (expected, _) = compare_range(x.min, x.max, 0.0);
    match value.as_deref().map(str::parse::<f64>) {
        Some(Ok(n)) => {
            let (_, ok) = compare_range(x.min, x.max, n);
            o.measure(&x.name, n);
            o.checks
                .push(Check::new(&x.name, expected, format!("{n}"), ok));
        }
        Some(Err(_)) => {
            o.checks.push(Check::new(
                &x.name,
                expected,
                format!("\"{}\" is not a number", value.unwrap_or_default()),
                false,
            ));
        }
        None => {
            o.forced = Some(crate::model::Status::Error);
            o.checks.push(Check::new(
                &x.name,
                expected,
                format!("no match for /{}/", x.regex.as_str()),
                false,
            ));
        }
    }
}

/// The check that `stream`'s `text` matches `re`.
fn matches_check(stream: &str, re: &regex::Regex, text: &str) -> Check {
    Check::new(
        stream,
        format!("matches /{}/", re.as_str()),
        if re.is_match(text) {
            "matched"
        } else {
            "no match"
        },
        re.is_match(text),
    )
}

crate::probe::probe_kind!(CommandProbe, RawCommandProbe, async);

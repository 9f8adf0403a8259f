//! The `log` probe: reads log lines from files (glob patterns, rotated and `.gz` files
//! included), a systemd unit's journal or a command's output, keeps those inside a time
//! window, and checks them: how many match a pattern (errors per hour ≤ 10), and whether any
//! carries a credential (`secrets = true`).
//!
//! It fails closed: a pattern that matches no file, a missing `journalctl`, a command that
//! fails, or a source with no line inside the window is an `error`, never a pass. No line it
//! reports or writes shows a secret: every line passes through [`secrets::Scanner`] (built-in
//! credential patterns and the checklist's `${VAR}` values) before it is kept.

pub mod secrets;
pub mod source;

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator, compare_range, refuse_keys};
use crate::model::{Check, ProbeOutput, Table};
pub use source::Reader;
use source::{Source, TimeFormat};

/// Matching lines kept as evidence, and findings listed in the report, at most.
const KEPT: usize = 200;

/// `kind = "log"`: count pattern matches and look for credentials in log lines.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLogProbe {
    /// Log files: paths or glob patterns relative to the checklist's folder, e.g.
    /// `["logs/app.log*"]` (matches `app.log`, `app.log.1`, `app.log.2.gz`; `.gz` files are
    /// decompressed). Each pattern must match at least one file.
    pub files: Option<Vec<String>>,
    /// A systemd unit whose journal is read (`journalctl -o json -u <unit>`).
    pub unit: Option<String>,
    /// A command whose standard output and standard error are the lines, e.g.
    /// `["kubectl", "logs", "deploy/agent", "--since=1h"]`; `${VAR}` is interpolated.
    pub command: Option<Vec<String>>,
    /// Time allowed for `journalctl` or the command (humantime). Default `"60s"`.
    pub timeout: Option<String>,
    /// The window: only lines from this long ago until now, e.g. `"1h"`. A file line's time
    /// comes from `timestamp`; without it, a file counts whole when modified inside the window.
    pub since: Option<String>,
    /// A regular expression whose first capture group is a line's time, e.g. `"^(\\S+)"`.
    pub timestamp: Option<String>,
    /// How to read that time: a strftime format such as `"%Y-%m-%d %H:%M:%S"` (UTC unless it
    /// has `%z`). Default: RFC 3339.
    pub timestamp_format: Option<String>,
    /// A regular expression; the lines matching it are counted (with `min` and/or `max`).
    pub pattern: Option<String>,
    /// At least this many lines match `pattern`.
    pub min: Option<u64>,
    /// At most this many lines match `pattern`.
    pub max: Option<u64>,
    /// Fail when a line carries a credential: private keys, cloud access keys, bearer tokens,
    /// JWTs, `password=`-style assignments, or a value of the checklist's own `${VAR}`s.
    #[serde(default)]
    pub secrets: bool,
}

/// A validated `log` probe.
#[derive(Debug, Clone)]
pub struct LogProbe {
    reader: Reader,
    since: Option<Duration>,
    pattern: Option<regex::Regex>,
    min: Option<u64>,
    max: Option<u64>,
    secrets: bool,
}

impl RawLogProbe {
    /// Validate: one source, a check, and a window the source can apply.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<LogProbe, FieldError> {
        let reader = self.reader(v)?;
        let (source, time) = (&reader.source, &reader.time);
        let since = self
            .since
            .as_deref()
            .map(|s| v.duration("since", s))
            .transpose()?;
        if since.is_some() && time.is_none() && matches!(source, Source::Command(..)) {
            return Err(FieldError::new(
                "since",
                "a command's lines have no time unless timestamp finds it: add timestamp, or let the command choose its window (e.g. --since=1h)",
            ));
        }
        let pattern = self
            .pattern
            .as_deref()
            .map(|p| v.regex("pattern", p))
            .transpose()?;
        match (&pattern, self.min.is_some() || self.max.is_some()) {
            (Some(_), false) => {
                return Err(FieldError::new(
                    "pattern",
                    "expected min, max or both: how many matching lines are allowed",
                ));
            }
            (None, true) => {
                let key = if self.min.is_some() { "min" } else { "max" };
                return Err(FieldError::new(
                    key,
                    "min and max count the lines matching pattern; add pattern",
                ));
            }
            (None, false) if !self.secrets => {
                return Err(FieldError::new(
                    "",
                    "expected a check: pattern with min or max, or secrets = true",
                ));
            }
            _ => {}
        }
        Ok(LogProbe {
            reader,
            since,
            pattern,
            min: self.min,
            max: self.max,
            secrets: self.secrets,
        })
    }

    /// The source (`files`, `unit` or `command`), how its lines are timed, and `timeout`.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key: no source or several, a malformed glob, unit, argv,
    /// timestamp pattern or format, or timeout.
    pub fn reader(&self, v: &mut Validator) -> Result<Reader, FieldError> {
        let source = self.source(v)?;
        let time = self.time_format(&source, v)?;
        let timeout = match &self.timeout {
            Some(t) => v.duration("timeout", t)?,
            None => Duration::from_secs(60),
        };
        Ok(Reader {
            source,
            time,
            timeout,
        })
    }

    /// How a line's time is read (`timestamp`, `timestamp_format`), if at all.
    fn time_format(
        &self,
        source: &Source,
        v: &Validator,
    ) -> Result<Option<TimeFormat>, FieldError> {
        Ok(match (&self.timestamp, &self.timestamp_format) {
            (None, Some(_)) => {
                return Err(FieldError::new(
                    "timestamp_format",
                    "timestamp_format needs timestamp, the pattern that finds a line's time",
                ));
            }
            (None, None) => None,
            (Some(re), format) => {
                if matches!(source, Source::Journal(_)) {
                    return Err(FieldError::new(
                        "timestamp",
                        "the journal has its own time for every line; remove timestamp",
                    ));
                }
                if let Some(f) = format {
                    let sample = jiff::Timestamp::UNIX_EPOCH.to_zoned(jiff::tz::TimeZone::UTC);
                    jiff::fmt::strtime::format(f, &sample).map_err(|e| {
                        FieldError::new("timestamp_format", format!("invalid strftime format: {e}"))
                    })?;
                }
                Some(TimeFormat {
                    regex: v.regex("timestamp", re)?,
                    format: format.clone(),
                })
            }
        })
    }

    /// The one source among `files`, `unit` and `command`.
    fn source(&self, v: &mut Validator) -> Result<Source, FieldError> {
        let set = [
            self.files.is_some(),
            self.unit.is_some(),
            self.command.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            let key = if set[0] && set[1] {
                "unit"
            } else if set.iter().any(|s| *s) {
                "command"
            } else {
                ""
            };
            return Err(FieldError::new(
                key,
                "expected exactly one source: files, unit or command",
            ));
        }
        if let Some(files) = &self.files {
            if files.is_empty() {
                return Err(FieldError::new(
                    "files",
                    "expected at least one path or glob pattern",
                ));
            }
            let mut out = Vec::new();
            for (i, f) in files.iter().enumerate() {
                let key = format!("files[{i}]");
                let path = v.interpolate(&key, f)?.value;
                glob::Pattern::new(&path)
                    .map_err(|e| FieldError::new(key, format!("invalid glob pattern: {e}")))?;
                out.push(path);
            }
            return Ok(Source::Files(out));
        }
        if let Some(unit) = &self.unit {
            if unit.trim().is_empty() || unit.starts_with('-') {
                return Err(FieldError::new(
                    "unit",
                    "expected a systemd unit name, e.g. \"trading-agent.service\"",
                ));
            }
            return Ok(Source::Journal(unit.clone()));
        }
        let command = self.command.as_deref().unwrap_or_default();
        refuse_keys(
            &[("command", command.is_empty())],
            "expected a non-empty argv array",
        )?;
        let mut argv = Vec::new();
        let mut shown = Vec::new();
        for (i, a) in command.iter().enumerate() {
            let arg = v.interpolate(&format!("command[{i}]"), a)?;
            argv.push(arg.value);
            shown.push(arg.display);
        }
        Ok(Source::Command(argv, shown.join(" ")))
    }
}

/// Collects what the checks need from the lines inside the window.
struct Tally {
    redactor: std::sync::Arc<crate::units::Redactor>,
    pattern: Option<regex::Regex>,
    scanner: secrets::Scanner,
    lines: u64,
    matches: u64,
    /// Matching lines, masked, as `source:line: text`.
    kept: Vec<String>,
    /// `(source:line, kind, masked)`.
    findings: Vec<[String; 3]>,
    found: u64,
}

impl source::Sink for Tally {
    fn start(&mut self, _source: &str) {
        self.scanner = secrets::Scanner::default();
    }

    fn line(&mut self, source: &str, number: u64, text: &str) {
        self.lines += 1;
        let (found, masked) = self.scanner.scan(text, &self.redactor);
        for f in found {
            self.found += 1;
            if self.findings.len() < KEPT {
                self.findings
                    .push([format!("{source}:{number}"), f.kind, f.masked]);
            }
        }
        if self.pattern.as_ref().is_some_and(|p| p.is_match(text)) {
            self.matches += 1;
            if self.kept.len() < KEPT {
                self.kept.push(format!("{source}:{number}: {masked}"));
            }
        }
    }
}

impl LogProbe {
    /// Read the source and check its lines.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let cutoff = match self.since {
            None => None,
            Some(s) => match jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::try_from(s).unwrap_or(jiff::SignedDuration::MAX))
            {
                Ok(c) => Some(c),
                Err(e) => {
                    return ProbeOutput::error(format!(
                        "the window since {} is out of range: {e}",
                        crate::units::format_duration(s)
                    ));
                }
            },
        };
        let tally = Tally {
            redactor: ctx.redactor.clone(),
            pattern: self.pattern.clone(),
            scanner: secrets::Scanner::default(),
            lines: 0,
            matches: 0,
            kept: Vec::new(),
            findings: Vec::new(),
            found: 0,
        };
        let (read, tally) = match source::read(&self.reader, ctx, cutoff, tally).await {
            Ok(r) => r,
            Err(e) => return ProbeOutput::error(ctx.redactor.redact(&e)),
        };
        let window = self
            .since
            .map(|s| format!(" in the last {}", crate::units::format_duration(s)))
            .unwrap_or_default();
        let mut o = ProbeOutput::default();
        o.measure("lines", tally.lines);
        o.measure("sources", read.sources.len() as u64);
        o.tables.push(Table {
            title: "Sources".into(),
            columns: vec!["source".into(), format!("lines{window}")],
            rows: read
                .sources
                .iter()
                .map(|(s, n)| vec![s.clone(), n.to_string()])
                .chain(
                    read.skipped_old
                        .iter()
                        .map(|s| vec![s.clone(), "modified before the window".into()]),
                )
                .collect(),
        });
        if tally.lines == 0 {
            o.forced = Some(crate::model::Status::Error);
            o.summary = format!("no log line{window} from {}", self.shown(&read));
            return o;
        }
        self.checks(ctx, &mut o, &tally, &window);
        o
    }

    /// The source as people read it, for summaries.
    fn shown(&self, read: &source::Sources) -> String {
        match &self.reader.source {
            Source::Files(p) if read.sources.is_empty() && !read.skipped_old.is_empty() => {
                format!(
                    "{} ({} files, all modified before the window)",
                    p.join(", "),
                    read.skipped_old.len()
                )
            }
            Source::Files(p) => p.join(", "),
            Source::Journal(u) => format!("the journal of {u}"),
            Source::Command(_, shown) => format!("`{shown}`"),
        }
    }

    /// The `pattern` count and `secrets` checks, their table and evidence, and the summary.
    fn checks(&self, ctx: &ProbeContext, o: &mut ProbeOutput, t: &Tally, window: &str) {
        let mut summary = vec![format!("{} lines{window}", t.lines)];
        if let Some(p) = &self.pattern {
            let (expected, ok) = compare_range(
                self.min.map(|m| m as f64),
                self.max.map(|m| m as f64),
                t.matches as f64,
            );
            o.measure("matches", t.matches);
            o.checks.push(Check::new(
                format!("lines matching /{p}/"),
                expected,
                t.matches.to_string(),
                ok,
            ));
            summary.push(format!("{} matching /{p}/", t.matches));
            if !t.kept.is_empty() {
                let mut text = ctx.redactor.redact(&t.kept.join("\n"));
                text.push('\n');
                match ctx.write_evidence(
                    "matches.txt",
                    text.as_bytes(),
                    "matching log lines (secrets masked)",
                    "text/plain",
                ) {
                    Ok(e) => o.evidence.push(e),
                    Err(e) => summary.push(format!("evidence not written: {e}")),
                }
            }
        }
        if self.secrets {
            o.measure("secrets_found", t.found);
            let measured = if t.found == 0 {
                "none".to_string()
            } else {
                let mut kinds: Vec<&str> = t.findings.iter().map(|f| f[1].as_str()).collect();
                let mut seen = std::collections::BTreeSet::new();
                kinds.retain(|k| seen.insert(*k));
                format!("{} ({})", t.found, kinds.join(", "))
            };
            o.checks.push(Check::new(
                "secrets in lines",
                "none",
                measured,
                t.found == 0,
            ));
            if t.found > 0 {
                let first: Vec<String> = t
                    .findings
                    .iter()
                    .take(3)
                    .map(|f| format!("{} {}", f[0], f[1]))
                    .collect();
                summary.push(format!("{} secrets: {}", t.found, first.join(", ")));
                o.tables.push(Table {
                    title: "Secrets found (masked)".into(),
                    columns: vec!["where".into(), "kind".into(), "masked".into()],
                    rows: t.findings.iter().map(|f| f.to_vec()).collect(),
                });
            }
        }
        // The checks table says which failed; the summary says what was seen.
        o.summary = ctx.redactor.redact(&summary.join("; "));
    }
}

crate::probe::probe_kind!(LogProbe, RawLogProbe, async);

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(format: &str) -> RawLogProbe {
        RawLogProbe {
            files: Some(vec!["a.log".into()]),
            unit: None,
            command: None,
            timeout: None,
            since: Some("1h".into()),
            timestamp: Some(r"^(\S+)".into()),
            timestamp_format: Some(format.into()),
            pattern: None,
            min: None,
            max: None,
            secrets: true,
        }
    }

    #[test]
    fn strftime_formats_with_an_offset_are_accepted_and_bad_ones_refused() {
        let mut v = Validator::default();
        assert!(raw("%Y-%m-%dT%H:%M:%S%z").validate(&mut v).is_ok());
        assert!(raw("%d/%b/%Y:%H:%M:%S %z").validate(&mut v).is_ok());
        let e = raw("%Y-%").validate(&mut v).unwrap_err();
        assert_eq!(e.key, "timestamp_format");
    }
}

//! Where the lines come from: files matched by glob patterns (rotated and gzip-compressed
//! ones included), the systemd journal through `journalctl -o json`, or a command's output;
//! and which of them fall inside the time window.
//!
//! Time of a line: from the journal, its `__REALTIME_TIMESTAMP` (microseconds since the Unix
//! epoch, systemd.journal-fields(7)). From files and commands, the text the `timestamp`
//! pattern's first capture group finds in the line, read with `timestamp_format` (strftime,
//! through jiff) or as RFC 3339; a line without one (a stack trace's continuation) has the
//! time of the line before it. A file read without a `timestamp` pattern counts whole when it
//! was modified inside the window and not at all otherwise.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use crate::probe::ProbeContext;
use crate::rig::process::{Finished, group_command, run_captured};

/// Output kept from `journalctl` or a command; more is an error (counts would be wrong).
const OUTPUT_CAP: usize = 64 * 1024 * 1024;
/// Grace between SIGTERM and SIGKILL when a source command times out.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Where lines are read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Glob patterns as written, relative to the checklist's folder.
    Files(Vec<String>),
    /// A systemd unit's journal.
    Journal(String),
    /// A command's standard output then standard error (argv, and argv as shown).
    Command(Vec<String>, String),
}

/// A source with how its lines are timed and how long its command may take: what reading
/// needs, for the `log` probe and for a drill's `expect = "log"`.
#[derive(Debug, Clone)]
pub struct Reader {
    /// Where the lines are.
    pub source: Source,
    /// How a line's time is read, if at all.
    pub time: Option<TimeFormat>,
    /// Time allowed for `journalctl` or the command.
    pub timeout: Duration,
}

/// How the time of a line is read from its text.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    /// Its first capture group (or whole match) is the timestamp's text.
    pub regex: regex::Regex,
    /// strftime format; `None` reads RFC 3339.
    pub format: Option<String>,
}

impl TimeFormat {
    /// The time in `line`, if it has one that parses. A format without an offset is UTC.
    pub fn parse(&self, line: &str) -> Option<Timestamp> {
        let caps = self.regex.captures(line)?;
        let text = caps.get(1).or_else(|| caps.get(0))?.as_str();
        match &self.format {
            None => text.parse::<Timestamp>().ok(),
            Some(f) => {
                let tm = jiff::fmt::strtime::parse(f, text).ok()?;
                tm.to_timestamp().ok().or_else(|| {
                    tm.to_datetime()
                        .ok()?
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .ok()
                        .map(|z| z.timestamp())
                })
            }
        }
    }
}

/// Receives each line inside the window: where it is (`file:line`) and its text.
pub trait Sink {
    /// One line; `source` is the file or stream, `number` its 1-based line number there.
    fn line(&mut self, source: &str, number: u64, text: &str);
    /// A source starts (secrets scanning keeps state per source).
    fn start(&mut self, source: &str);
}

/// What reading found besides the lines: each source read and its lines in the window.
#[derive(Debug, Default)]
pub struct Sources {
    /// `(source, lines in the window)`.
    pub sources: Vec<(String, u64)>,
    /// Files matched but left out because they were modified before the window.
    pub skipped_old: Vec<String>,
}

/// Read the lines of `p`'s source inside the window starting at `cutoff` into `sink`, and
/// hand `sink` back. Files are read on the blocking pool.
///
/// # Errors
/// A message: no file matches, a file cannot be read, `journalctl` is missing or failed, the
/// command failed or printed too much.
pub async fn read<S: Sink + Send + 'static>(
    p: &Reader,
    ctx: &ProbeContext,
    cutoff: Option<Timestamp>,
    mut sink: S,
) -> Result<(Sources, S), String> {
    let sources = match &p.source {
        Source::Files(patterns) => {
            let (patterns, c, time) = (patterns.clone(), ctx.clone(), p.time.clone());
            let work = tokio::task::spawn_blocking(move || {
                read_files(&patterns, &c, time.as_ref(), cutoff, &mut sink).map(|r| (r, sink))
            });
            return work
                .await
                .unwrap_or_else(|e| Err(format!("reading the log files panicked: {e}")));
        }
        Source::Journal(unit) => journal(unit, p.timeout, ctx, cutoff, &mut sink).await?,
        Source::Command(argv, shown) => command(argv, shown, p, ctx, cutoff, &mut sink).await?,
    };
    Ok((sources, sink))
}

/// The lines of `unit`'s journal inside the window.
async fn journal(
    unit: &str,
    timeout: Duration,
    ctx: &ProbeContext,
    cutoff: Option<Timestamp>,
    sink: &mut (dyn Sink + Send),
) -> Result<Sources, String> {
    let mut argv: Vec<String> = ["journalctl", "-o", "json", "--no-pager", "-u", unit]
        .map(String::from)
        .to_vec();
    if let Some(c) = cutoff {
        argv.push(format!("--since=@{}", c.as_second()));
    }
    let out = capture(&argv, "journalctl", timeout, ctx).await?;
    let shown = format!("journal of {unit}");
    sink.start(&shown);
    let n = journal_lines(&out.0, cutoff, &shown, sink)?;
    Ok(Sources {
        sources: vec![(shown, n)],
        skipped_old: Vec::new(),
    })
}

/// The lines of a command's stdout, then its stderr, inside the window.
async fn command(
    argv: &[String],
    shown: &str,
    p: &Reader,
    ctx: &ProbeContext,
    cutoff: Option<Timestamp>,
    sink: &mut (dyn Sink + Send),
) -> Result<Sources, String> {
    let (stdout, stderr) = capture(argv, shown, p.timeout, ctx).await?;
    let mut read = Sources::default();
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        let name = format!("`{shown}` {name}");
        sink.start(&name);
        let mut lines = text.as_bytes();
        let n = timed_lines(&mut lines, &name, p.time.as_ref(), None, cutoff, sink)
            .map_err(|e| format!("reading {name}: {e}"))?;
        read.sources.push((name, n));
    }
    Ok(read)
}

/// Run `argv` to its end within `timeout`; its stdout and stderr, or why not.
async fn capture(
    argv: &[String],
    shown: &str,
    timeout: Duration,
    ctx: &ProbeContext,
) -> Result<(String, String), String> {
    let mut cmd = group_command(argv);
    cmd.current_dir(&ctx.checklist_dir);
    let run = run_captured(cmd, OUTPUT_CAP, timeout, &ctx.cancel, KILL_GRACE)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("`{}` is not installed (not on PATH)", argv[0]),
            _ => format!("could not start `{shown}`: {e}"),
        })?;
    let stderr = ctx.redactor.redact(run.stderr.trim());
    match run.end {
        Finished::Exited(s) if s.success() => {}
        Finished::Exited(s) => return Err(format!("`{shown}` exited {s}: {stderr}")),
        Finished::TimedOut => {
            return Err(format!(
                "`{shown}` did not finish within {}",
                crate::units::format_duration(timeout)
            ));
        }
        Finished::Cancelled => return Err(format!("`{shown}` was interrupted")),
        Finished::WaitFailed(e) => return Err(format!("`{shown}`: {e}")),
    }
    if run.stdout_dropped > 0 {
        return Err(format!(
            "`{shown}` printed more than {} MiB; narrow the window (since) or the command",
            OUTPUT_CAP >> 20
        ));
    }
    Ok((run.stdout, run.stderr))
}

/// The files matching `patterns`, sorted and without repeats.
///
/// # Errors
/// A message for a malformed pattern or one that matches no file.
fn matched_files(
    patterns: &[String],
    ctx: &ProbeContext,
) -> Result<Vec<(PathBuf, String)>, String> {
    let mut files = Vec::new();
    for pattern in patterns {
        let paths = glob::glob(&crate::probe::file::glob_in(ctx, pattern))
            .map_err(|e| format!("invalid pattern \"{pattern}\": {e}"))?;
        let before = files.len();
        for path in paths.flatten().filter(|p| p.is_file()) {
            let shown = path
                .strip_prefix(&ctx.checklist_dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            if !files.iter().any(|(p, _)| p == &path) {
                files.push((path, shown));
            }
        }
        if files.len() == before {
            return Err(format!("no file matches \"{pattern}\""));
        }
    }
    Ok(files)
}

fn read_files(
    patterns: &[String],
    ctx: &ProbeContext,
    time: Option<&TimeFormat>,
    cutoff: Option<Timestamp>,
    sink: &mut (dyn Sink + Send),
) -> Result<Sources, String> {
    let mut read = Sources::default();
    for (path, shown) in matched_files(patterns, ctx)? {
        let meta = std::fs::metadata(&path).map_err(|e| format!("{shown}: {e}"))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| Timestamp::try_from(m).ok());
        let modified_in_window = match (cutoff, mtime) {
            (Some(c), Some(m)) => m >= c,
            _ => true,
        };
        if !modified_in_window {
            // No line of a file last written before the window can be inside it.
            read.skipped_old.push(shown);
            continue;
        }
        let file = std::fs::File::open(&path).map_err(|e| format!("{shown}: {e}"))?;
        let mut reader: Box<dyn BufRead> = if shown.ends_with(".gz") {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        sink.start(&shown);
        let n = timed_lines(&mut reader, &shown, time, mtime, cutoff, sink)
            .map_err(|e| format!("{shown}: {e}"))?;
        read.sources.push((shown, n));
    }
    Ok(read)
}

/// Feed the lines of `reader` inside the window to `sink`; how many. A line's time is its own
/// (`time`), else the line before it's, else `fallback` (the file's modification time).
fn timed_lines(
    reader: &mut dyn BufRead,
    shown: &str,
    time: Option<&TimeFormat>,
    fallback: Option<Timestamp>,
    cutoff: Option<Timestamp>,
    sink: &mut (dyn Sink + Send),
) -> std::io::Result<u64> {
    let (mut buf, mut number, mut count) = (Vec::new(), 0u64, 0u64);
    let mut current = fallback;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(count);
        }
        number += 1;
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if let Some(t) = time {
            if let Some(at) = t.parse(text) {
                current = Some(at);
            }
            if let (Some(c), Some(at)) = (cutoff, current)
                && at < c
            {
                continue;
            }
        }
        count += 1;
        sink.line(shown, number, text);
    }
}

/// Feed `journalctl -o json` output (one JSON object per line) inside the window to `sink`.
///
/// # Errors
/// A message for a line that is not a journal entry.
fn journal_lines(
    out: &str,
    cutoff: Option<Timestamp>,
    shown: &str,
    sink: &mut (dyn Sink + Send),
) -> Result<u64, String> {
    let mut count = 0;
    for (i, line) in out
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let entry: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("journalctl output line {}: not JSON: {e}", i + 1))?;
        let micros = entry["__REALTIME_TIMESTAMP"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| format!("journalctl output line {}: no __REALTIME_TIMESTAMP", i + 1))?;
        let at = Timestamp::from_microsecond(micros).map_err(|e| e.to_string())?;
        if cutoff.is_some_and(|c| at < c) {
            continue;
        }
        // MESSAGE is a string, or an array of bytes when it is not valid UTF-8; null when
        // the entry has none (journalctl's JSON format, systemd.journal-fields(7)).
        let message = match &entry["MESSAGE"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(bytes) => {
                let b: Vec<u8> = bytes
                    .iter()
                    .filter_map(|v| v.as_u64())
                    .map(|v| v as u8)
                    .collect();
                String::from_utf8_lossy(&b).into_owned()
            }
            _ => continue,
        };
        count += 1;
        for part in message.lines() {
            sink.line(shown, (i + 1) as u64, part);
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<String>);
    impl Sink for Collect {
        fn line(&mut self, source: &str, number: u64, text: &str) {
            self.0.push(format!("{source}:{number}: {text}"));
        }
        fn start(&mut self, _: &str) {}
    }

    #[test]
    fn a_line_without_a_timestamp_takes_the_time_of_the_line_before() {
        let t = TimeFormat {
            regex: regex::Regex::new(r"^(\S+)").unwrap(),
            format: None,
        };
        let text = "2026-01-01T10:00:00Z old\n  at frame\n2026-01-01T12:00:00Z new\n  at frame\n";
        let cutoff: Timestamp = "2026-01-01T11:00:00Z".parse().unwrap();
        let mut sink = Collect(Vec::new());
        let n = timed_lines(
            &mut text.as_bytes(),
            "a.log",
            Some(&t),
            None,
            Some(cutoff),
            &mut sink,
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            sink.0,
            ["a.log:3: 2026-01-01T12:00:00Z new", "a.log:4:   at frame"]
        );
    }

    #[test]
    fn a_strftime_format_without_an_offset_is_utc() {
        let t = TimeFormat {
            regex: regex::Regex::new(r"^\[([^\]]+)\]").unwrap(),
            format: Some("%Y-%m-%d %H:%M:%S".into()),
        };
        let at = t.parse("[2026-03-01 09:30:00] INFO up").unwrap();
        assert_eq!(at, "2026-03-01T09:30:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn journal_entries_give_their_message_inside_the_window() {
        // Shape of `journalctl -o json` lines (fields as systemd.journal-fields(7) names
        // them); MESSAGE as bytes is how journalctl writes a message that is not UTF-8.
        let out = concat!(
            r#"{"__REALTIME_TIMESTAMP":"1767261600000000","MESSAGE":"old line","_SYSTEMD_UNIT":"a.service"}"#,
            "\n",
            r#"{"__REALTIME_TIMESTAMP":"1767268800000000","MESSAGE":[104,105],"_SYSTEMD_UNIT":"a.service"}"#,
            "\n"
        );
        let cutoff = Timestamp::from_second(1767265200).unwrap();
        let mut sink = Collect(Vec::new());
        assert_eq!(journal_lines(out, Some(cutoff), "j", &mut sink).unwrap(), 1);
        assert_eq!(sink.0, ["j:2: hi"]);
    }
}

//! The `expect = "log"` observation: counting the lines a service wrote since a mark, or the
//! lines of the aggregated log (files, a unit's journal, a command's output) that carry this
//! drill attempt's marker.
//!
//! The marker round trip: an action writes `${drill.marker}` through the system's own logger
//! (a request ID it logs, `logger`, an admin endpoint), and this expectation finds that line
//! where the logs end up, within its deadline. Files and journals hold lines from before the
//! drill, so there only marked lines count: the marker is unique to the attempt, and a line
//! carrying it cannot be older than the action that wrote it.

use std::time::Duration;

use serde_json::json;

use super::state::{Drill, Mark, Seen};
use super::step::{Count, LogFrom};
use crate::probe::log::source::{self, Sink, Source};

/// Files modified, and journal lines written, this long before the drill started still
/// count: a clock that a log shipper's host sets a little behind ours loses no line.
const CLOCK_SLACK: Duration = Duration::from_secs(5);

/// Which lines count: those matching `matches` and carrying `marker` (each when given).
pub(super) struct Lines<'a> {
    /// A regular expression.
    pub(super) matches: Option<&'a regex::Regex>,
    /// The drill's marker.
    pub(super) marker: Option<&'a str>,
}

impl Lines<'_> {
    fn counts(&self, line: &str) -> bool {
        self.marker.is_none_or(|m| line.contains(m))
            && self.matches.is_none_or(|r| r.is_match(line))
    }

    /// What is looked for, as people read it.
    fn shown(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.marker {
            parts.push(format!("with the marker {m}"));
        }
        if let Some(r) = self.matches {
            parts.push(format!("matching /{r}/"));
        }
        parts.join(" and ")
    }
}

/// Counts the lines that count, keeping the last as `source:line: text`.
struct Counter {
    matches: Option<regex::Regex>,
    marker: Option<String>,
    n: u64,
    last: Option<String>,
}

impl Sink for Counter {
    fn start(&mut self, _source: &str) {}

    fn line(&mut self, source: &str, number: u64, text: &str) {
        let lines = Lines {
            matches: self.matches.as_ref(),
            marker: self.marker.as_deref(),
        };
        if lines.counts(text) {
            self.n += 1;
            self.last = Some(format!("{source}:{number}: {text}"));
        }
    }
}

impl Drill {
    /// Count the lines that count in `from`: a service's output since `since`, or the whole
    /// aggregated log source.
    pub(super) async fn log(
        &self,
        from: &LogFrom,
        lines: &Lines<'_>,
        count: Count,
        since: &Mark,
    ) -> Seen {
        let (n, last) = match from {
            LogFrom::Service(service) => {
                let offset = since.offsets.get(service).copied().unwrap_or(0);
                let text = self.ctx.services.output_since(service, offset);
                let hits: Vec<&str> = text.lines().filter(|l| lines.counts(l)).collect();
                (hits.len() as u64, hits.last().map(|l| l.to_string()))
            }
            LogFrom::Read(reader) => match self.read_log(reader, lines).await {
                Ok(found) => found,
                Err(e) => return Seen::no(self.redact(&e)),
            },
        };
        Seen {
            ok: count.accepts(n),
            text: format!(
                "{n} line(s) {}{}",
                lines.shown(),
                last.map(|l| format!("; last: {}", self.redact(&l)))
                    .unwrap_or_default()
            ),
            value: json!(n),
        }
    }

    /// Read the aggregated log once: how many lines count, and the last of them.
    async fn read_log(
        &self,
        reader: &source::Reader,
        lines: &Lines<'_>,
    ) -> Result<(u64, Option<String>), String> {
        // A command has no time for its lines unless told: all of them are read.
        let cutoff = match reader.source {
            Source::Command(..) => None,
            Source::Files(_) | Source::Journal(_) => {
                let back = self.start.at.elapsed() + CLOCK_SLACK;
                jiff::Timestamp::now()
                    .checked_sub(jiff::SignedDuration::try_from(back).map_err(|e| e.to_string())?)
                    .ok()
            }
        };
        let counter = Counter {
            matches: lines.matches.cloned(),
            marker: lines.marker.map(str::to_string),
            n: 0,
            last: None,
        };
        let (_, c) = source::read(reader, &self.context(), cutoff, counter).await?;
        Ok((c.n, c.last))
    }
}

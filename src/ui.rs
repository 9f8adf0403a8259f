//! The terminal listener: progress bars while items run (indicatif; hidden when stderr is not a
//! terminal or `CI` is set) and a colored summary table at the end (comfy-table).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::Status;
use crate::report::{Report, Verdict};
use crate::runner::{EventSink, RunEvent};

/// True when progress bars should be drawn: stderr is a terminal and `CI` is unset.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Progress display for a run.
pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: Mutex<HashMap<String, ProgressBar>>,
    enabled: bool,
}

impl Progress {
    /// A progress display; draws nothing when `enabled` is false.
    pub fn new(enabled: bool) -> Progress {
        let multi = MultiProgress::with_draw_target(if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>10.bold} [{bar:30.cyan/blue}] {pos}/{len} items {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("prodready");
        Progress {
            multi,
            overall,
            bars: Mutex::new(HashMap::new()),
            enabled,
        }
    }
}

impl EventSink for Progress {
    fn event(&self, e: &RunEvent) {
        match e {
            RunEvent::Started { selected } => self.overall.set_length(*selected as u64),
            RunEvent::ServiceStarting { name } => self
                .overall
                .set_message(format!("starting service {name}…")),
            RunEvent::ServiceStarted {
                name,
                ready,
                message,
            } => {
                if !ready {
                    self.overall
                        .println(format!("service {name} did not become ready: {message}"));
                }
                self.overall.set_message("");
            }
            RunEvent::ItemStarted { id, title, timeout } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!(
                    "{id}: {title} (timeout {})",
                    humantime::format_duration(*timeout)
                ));
                if self.enabled {
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
                self.bars
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone(), bar);
            }
            RunEvent::ItemFinished { id, outcome } => {
                if let Some(bar) = self
                    .bars
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(id)
                {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                if self.enabled {
                    self.overall.println(format!(
                        "  {:<8} {id}: {}",
                        outcome.status.as_str(),
                        outcome.summary
                    ));
                }
                self.overall.inc(1);
            }
            RunEvent::Interrupted => self.overall.set_message("interrupted; stopping…"),
            RunEvent::Stopping => self.overall.set_message("stopping services…"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.overall.finish_and_clear();
    }
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Pass => Color::Green,
        Status::Fail | Status::Error => Color::Red,
        Status::Warn | Status::Pending | Status::Waived => Color::Yellow,
        Status::Skipped => Color::DarkGrey,
    }
}

/// The end-of-run table: one row per item, then the verdict line.
pub fn summary_table(r: &Report, color: bool) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["Item", "Severity", "Status", "Expected", "Measured"]);
    if let Some((w, _)) = terminal_width() {
        t.set_width(w);
    } else {
        t.set_width(140);
    }
    if !color {
        t.force_no_tty();
    } else {
        t.enforce_styling();
    }
    for it in &r.items {
        let measured = if it.outcome.checks.is_empty() {
            it.outcome.summary.clone()
        } else {
            it.outcome.measured_text()
        };
        let mut status = Cell::new(it.outcome.status.as_str());
        if color {
            status = status.fg(status_color(it.outcome.status));
        }
        t.add_row(vec![
            Cell::new(&it.id),
            Cell::new(it.severity.as_str()),
            status,
            Cell::new(it.outcome.expected_text()),
            Cell::new(measured),
        ]);
    }
    let verdict = match r.verdict {
        Verdict::Ready => "READY",
        Verdict::ReadyWithWaivers => "READY WITH WAIVERS",
        Verdict::NotReady => "NOT READY",
    };
    let mut out = match r.partial_scope() {
        None => format!("{t}\nverdict: {verdict}\n"),
        Some(p) => format!(
            "{t}\nverdict: {verdict} {}\n  partial run ({}): this verdict is for the items that \
             ran, not the checklist; not run: {}\n",
            p.verdict_suffix(),
            p.filters,
            p.not_run_list(10)
        ),
    };
    for reason in &r.reasons {
        out.push_str(&format!("  - {reason}\n"));
    }
    out
}

fn terminal_width() -> Option<(u16, u16)> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .map(|w| (w, 0))
}

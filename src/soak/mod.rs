//! The soak tracker: `[[monitor]]` checks run for weeks by
//! `prodready soak`, every observation persisted crash-safely in the SQLite store
//! ([`crate::store`], which also holds the availability math that `soak-status`, `/metrics` and
//! the `uptime` probe share).
//!
//! Three states, not two: `up`, `down` and `unknown` (the tracker was not running or could not
//! observe). Availability = up / (up + down) is always reported with coverage = observed /
//! elapsed window ([`Summary::coverage`]), so a gap never inflates uptime. Durations come
//! from the monotonic clock; wall-clock jumps and reboots are detected and reported, never
//! counted as downtime.
//!
//! - [`config`]: the `[[monitor]]` table and maintenance windows;
//! - [`check`]: what a monitor checks (http, tcp, command, order);
//! - [`tracker`]: the writer side: runs, heartbeats, the failure state machine;
//! - [`run`]: the `soak` command's tasks; [`metrics`]: `/metrics` and `/healthz`.

pub mod check;
pub mod config;
pub mod fix_order;
pub mod metrics;
pub mod order;
pub mod rules;
pub mod run;
pub mod status_page;
pub mod tracker;

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::clock;
use crate::store::summary::{self, Summary, fmt_ms, fmt_pct, fmt_time};

/// Summaries of every monitor in the store at `state` over `window_ms`, ending at the store's
/// current timeline time.
///
/// # Errors
/// [`Error::InvalidInput`] when the store is missing or unreadable.
pub fn status(state: &Path, window_ms: i64) -> Result<Vec<Summary>> {
    let store = Store::open_read(state)?;
    let dbe = |e: rusqlite::Error| Error::Internal(format!("soak store {}: {e}", state.display()));
    let now = summary::timeline_now(&store.conn, jiff::Timestamp::now().as_millisecond())
        .map_err(dbe)?
        .unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
    let mut out = Vec::new();
    for m in store.monitors().map_err(dbe)? {
        out.push(summary::summarize(&store, &m, window_ms, now).map_err(dbe)?);
    }
    Ok(out)
}

/// How [`tracker_line`] begins when the tracker runs (a fresh heartbeat).
pub const TRACKER_RUNNING: &str = "tracker: running";

/// One line about the tracker process: running (fresh heartbeat) or since when it is not.
///
/// # Errors
/// [`Error::InvalidInput`] when the store is missing or unreadable.
pub fn tracker_line(state: &Path) -> Result<String> {
    let store = Store::open_read(state)?;
    let row: Option<(i64, String, i64, i64, bool)> = store
        .conn
        .query_row(
            "SELECT pid, boot_id, heartbeat_mono_ms, heartbeat_at_ms, stopped FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .ok();
    Ok(match row {
        None => "tracker: never started".to_string(),
        Some((pid, boot, hb_mono, hb_at, stopped)) => {
            let same_boot = boot == clock::boot_id();
            let age = same_boot.then(|| clock::mono_ms() - hb_mono);
            match (stopped, age) {
                (false, Some(a)) if a < 5_000 => {
                    format!(
                        "{TRACKER_RUNNING} (pid {pid}, last heartbeat {:.1} s ago)",
                        a as f64 / 1e3
                    )
                }
                (true, _) => format!("tracker: stopped cleanly at {}", fmt_time(hb_at)),
                _ => format!(
                    "tracker: NOT running since {} (last heartbeat; killed, crashed or the host rebooted) — this time is unknown",
                    fmt_time(hb_at)
                ),
            }
        }
    })
}

/// Render summaries as the `soak-status` text: one table of monitors, then incidents,
/// maintenance and tracker events.
pub fn render_status(summaries: &[Summary]) -> String {
    let mut out = String::new();
    if let Some(s) = summaries.first() {
        out.push_str(&format!(
            "window {} → {} ({}){}\n",
            fmt_time(s.from_ms),
            fmt_time(s.to_ms),
            fmt_ms(s.window_ms as f64),
            if s.complete {
                ""
            } else {
                " — not complete yet"
            }
        ));
    }
    out.push_str(&monitors_table(summaries).to_string());
    out.push('\n');
    let incidents = incidents_table(summaries);
    let maintenance = maintenance_table(summaries);
    let events = summaries.first().and_then(events_table);
    for (title, table) in [
        ("incidents", incidents),
        ("maintenance (excluded)", maintenance),
        ("tracker events", events),
    ] {
        if let Some(t) = table {
            out.push_str(title);
            out.push('\n');
            out.push_str(&t.to_string());
            out.push('\n');
        }
    }
    out
}

/// A table with the house preset and `header`.
fn table(header: Vec<&str>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header);
    t
}

/// One row per monitor: state, availability, coverage, window progress, time by state,
/// budget, burn rates and error rate.
fn monitors_table(summaries: &[Summary]) -> Table {
    let mut t = table(vec![
        "monitor",
        "kind",
        "now",
        "availability",
        "coverage",
        "window progress",
        "up",
        "down",
        "unknown",
        "maint.",
        "budget used",
        "burn 1h/6h/3d",
        "errors/1000 ops",
    ]);
    for s in summaries {
        let burn = s
            .burn_rates
            .iter()
            .map(|(_, b)| b.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into()))
            .collect::<Vec<_>>()
            .join(" / ");
        t.add_row(vec![
            s.monitor.clone(),
            s.kind.clone(),
            s.last_state.clone().unwrap_or_else(|| "–".into()),
            fmt_pct(s.availability),
            crate::units::format_percent(s.coverage, 2),
            crate::units::format_percent(s.window_progress, 1),
            fmt_ms(s.totals.up_ms as f64),
            fmt_ms(s.totals.down_ms as f64),
            fmt_ms(s.unknown_ms as f64),
            fmt_ms(s.totals.maint_ms as f64),
            format!(
                "{} of {}",
                crate::units::format_percent(s.budget_used, 1),
                fmt_ms(s.budget_ms)
            ),
            burn,
            s.error_rate
                .map(|r| format!("{:.2} ({} ops)", r * 1000.0, s.totals.ops))
                .unwrap_or_else(|| "–".into()),
        ]);
    }
    t
}

/// Every monitor's incidents, or `None` when there were none.
fn incidents_table(summaries: &[Summary]) -> Option<Table> {
    let incidents: Vec<_> = summaries
        .iter()
        .flat_map(|s| s.incidents.iter().map(move |i| (s, i)))
        .collect();
    if incidents.is_empty() {
        return None;
    }
    let mut t = table(vec![
        "monitor",
        "start",
        "end",
        "duration",
        "failures",
        "first error",
    ]);
    for (s, i) in incidents {
        t.add_row(vec![
            s.monitor.clone(),
            fmt_time(i.start_ms),
            i.end_ms.map(fmt_time).unwrap_or_else(|| "ongoing".into()),
            fmt_ms((i.end_ms.unwrap_or(s.to_ms) - i.start_ms) as f64),
            i.failures.to_string(),
            i.first_error.chars().take(120).collect(),
        ]);
    }
    Some(t)
}

/// Every monitor's maintenance windows, or `None` when there were none.
fn maintenance_table(summaries: &[Summary]) -> Option<Table> {
    let maint: Vec<_> = summaries
        .iter()
        .flat_map(|s| s.maintenance.iter().map(move |m| (s, m)))
        .collect();
    if maint.is_empty() {
        return None;
    }
    let mut t = table(vec!["monitor", "start", "end", "reason"]);
    for (s, m) in maint {
        t.add_row(vec![
            s.monitor.clone(),
            fmt_time(m.start_ms),
            m.end_ms.map(fmt_time).unwrap_or_else(|| "ongoing".into()),
            m.reason.clone(),
        ]);
    }
    Some(t)
}

/// The tracker's events (runs, gaps, clock jumps), or `None` when there were none.
fn events_table(s: &Summary) -> Option<Table> {
    if s.events.is_empty() {
        return None;
    }
    let mut t = table(vec!["at", "event", "detail"]);
    for e in &s.events {
        t.add_row(vec![fmt_time(e.at_ms), e.kind.clone(), e.detail.clone()]);
    }
    Some(t)
}

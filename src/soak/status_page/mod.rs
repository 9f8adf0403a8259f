//! The live soak status page: what `prodready soak --listen` and `prodready status-page` serve
//! at `/` (HTML) and `/api/v1/status` (JSON), read-only over the store.
//!
//! Per monitor: the current state and how long it has held, 90 per-day bars (up, down,
//! maintenance and unknown shares of each UTC day), availability against the target, error
//! budget left and burn rates (the same [`Summary`] `soak-status` prints), response times over
//! the last 24 hours and the incidents. Every request opens its own read connection on a
//! blocking thread; the tracker writes in WAL mode, so a reader never blocks it and serving the
//! page cannot change what is recorded.
//!
//! `html` renders the page (no script: it refreshes itself with a `<meta>` refresh), `serve`
//! holds the access rules (loopback unless `--auth`) and the security headers.

pub mod html;
pub mod serve;

use std::path::Path;

use rusqlite::{OptionalExtension, params};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::summary::{self, Summary};
use crate::store::{MonitorRow, Store};

/// Per-day bars on the page: the last 90 UTC days, today included.
pub const DAYS: usize = 90;
/// Response-time points on the page: the last 24 hours in 1-minute buckets.
pub const RESPONSE_BUCKETS: usize = 1440;
const DAY_MS: i64 = 86_400_000;
/// The availability window the page summarises unless told otherwise: 30 days.
pub const WINDOW_MS: i64 = 30 * DAY_MS;

/// `GET /api/v1/status`: the tracker and every monitor (schema: `prodready schema status`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StatusDoc {
    /// The tracker process: running, stopped cleanly, or not running since when.
    pub tracker: String,
    /// When this was read (timeline time, ms since the Unix epoch).
    pub now_ms: i64,
    /// The availability window summarised, ms.
    pub window_ms: i64,
    /// One entry per monitor, in the store's order.
    pub monitors: Vec<MonitorStatus>,
}

/// One monitor on the page.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MonitorStatus {
    /// The window's summary, exactly as `soak-status --format json` gives it.
    pub summary: Summary,
    /// The current state (`up`, `down`, `maintenance`), from the last sample; `unknown` when
    /// the tracker is not running (the last sample's state is `summary.last_state`); absent
    /// before the first sample.
    pub state: Option<String>,
    /// Since when the current state has held: the first sample of the current run of samples
    /// in that state; when the tracker is not running, its last sample (timeline ms).
    pub state_since_ms: Option<i64>,
    /// The last [`DAYS`] UTC days, oldest first.
    pub days: Vec<DayBar>,
    /// Response times over the last 24 hours, in 1-minute buckets with at least one check.
    pub response_times: Vec<ResponsePoint>,
}

/// One UTC day's shares of time, summing to 1 (time not yet come is `unknown` too).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DayBar {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Share of the day up.
    pub up: f64,
    /// Share of the day down.
    pub down: f64,
    /// Share of the day in maintenance (excluded from availability).
    pub maintenance: f64,
    /// Share of the day not observed (tracker not running, or still to come).
    pub unknown: f64,
    /// Checks run that day.
    pub checks: i64,
    /// Failed checks that day.
    pub failures: i64,
    /// Up time over up and down time; absent when nothing was observed.
    pub availability: Option<f64>,
}

/// A bucket of response times.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ResponsePoint {
    /// The bucket's start (timeline ms).
    pub start_ms: i64,
    /// Mean response time of the checks in it, ms.
    pub mean_ms: f64,
    /// Slowest check in it, ms.
    pub max_ms: f64,
    /// Checks in it.
    pub checks: i64,
    /// Failed checks in it.
    pub failures: i64,
}

/// The JSON Schema of [`StatusDoc`] (draft 2020-12, by schemars).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(StatusDoc)).expect("schema serializes")
}

/// Read the store at `state` and build the page's data over a `window_ms` availability window.
///
/// # Errors
/// [`Error::InvalidInput`] for a missing store; [`Error::Internal`] when SQLite fails.
pub fn snapshot(state: &Path, window_ms: i64) -> Result<StatusDoc> {
    let tracker = super::tracker_line(state)?;
    let store = Store::open_read(state)?;
    let dbe = |e: rusqlite::Error| Error::Internal(format!("soak store {}: {e}", state.display()));
    let wall = jiff::Timestamp::now().as_millisecond();
    let now = summary::timeline_now(&store.conn, wall)
        .map_err(dbe)?
        .unwrap_or(wall);
    let mut monitors = Vec::new();
    for m in store.monitors().map_err(dbe)? {
        let summary = summary::summarize(&store, &m, window_ms, now).map_err(dbe)?;
        let (mut state, mut state_since_ms) = current_state(&store, &m).map_err(dbe)?;
        if state.is_some() && !tracker.starts_with(super::TRACKER_RUNNING) {
            state = Some("unknown".to_string());
            state_since_ms = summary.last_ms;
        }
        monitors.push(MonitorStatus {
            summary,
            state,
            state_since_ms,
            days: days(&store, &m, now).map_err(dbe)?,
            response_times: response_times(&store, &m, now).map_err(dbe)?,
        });
    }
    Ok(StatusDoc {
        tracker,
        now_ms: now,
        window_ms,
        monitors,
    })
}

/// The last sample's state and the first sample of the run of samples in that state.
fn current_state(store: &Store, m: &MonitorRow) -> rusqlite::Result<(Option<String>, Option<i64>)> {
    let conn = &store.conn;
    let last: Option<i64> = conn
        .query_row(
            "SELECT state FROM samples WHERE monitor_id = ?1 ORDER BY at_ms DESC LIMIT 1",
            params![m.id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(last) = last else {
        return Ok((None, None));
    };
    let changed: Option<i64> = conn.query_row(
        "SELECT max(at_ms) FROM samples WHERE monitor_id = ?1 AND state != ?2",
        params![m.id, last],
        |r| r.get(0),
    )?;
    let since: Option<i64> = conn.query_row(
        "SELECT min(at_ms) FROM samples WHERE monitor_id = ?1 AND at_ms > ?2",
        params![m.id, changed.unwrap_or(i64::MIN)],
        |r| r.get(0),
    )?;
    let name = match last {
        crate::store::UP => "up",
        crate::store::DOWN => "down",
        crate::store::MAINT => "maintenance",
        _ => "unknown",
    };
    Ok((Some(name.to_string()), since))
}

/// The last [`DAYS`] UTC days up to `now_ms`, oldest first.
fn days(store: &Store, m: &MonitorRow, now_ms: i64) -> rusqlite::Result<Vec<DayBar>> {
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
    let mut out = Vec::with_capacity(DAYS);
    for back in (0..DAYS as i64).rev() {
        let start = today - back * DAY_MS;
        let end = (start + DAY_MS).min(now_ms);
        let t = summary::totals(&store.conn, m, start, end)?;
        let share = |ms: i64| ms as f64 / DAY_MS as f64;
        let (up, down, maintenance) = (share(t.up_ms), share(t.down_ms), share(t.maint_ms));
        let observed = t.up_ms + t.down_ms;
        out.push(DayBar {
            date: summary::fmt_time(start)[..10].to_string(),
            up,
            down,
            maintenance,
            unknown: (1.0 - up - down - maintenance).max(0.0),
            checks: t.checks,
            failures: t.failures,
            availability: (observed > 0).then(|| t.up_ms as f64 / observed as f64),
        });
    }
    Ok(out)
}

/// Response times over the 24 hours before `now_ms`, in 1-minute buckets (empty ones left out).
fn response_times(
    store: &Store,
    m: &MonitorRow,
    now_ms: i64,
) -> rusqlite::Result<Vec<ResponsePoint>> {
    let width = DAY_MS / RESPONSE_BUCKETS as i64;
    let from = now_ms - DAY_MS;
    let mut st = store.conn.prepare(
        "SELECT (at_ms - ?2) / ?3 AS b, avg(latency_us), max(latency_us), count(*), sum(ok = 0)
         FROM samples WHERE monitor_id = ?1 AND at_ms >= ?2 AND at_ms < ?4
         GROUP BY b ORDER BY b",
    )?;
    let rows = st.query_map(params![m.id, from, width, now_ms], |r| {
        let b: i64 = r.get(0)?;
        Ok(ResponsePoint {
            start_ms: from + b * width,
            mean_ms: r.get::<_, f64>(1)? / 1e3,
            max_ms: r.get::<_, i64>(2)? as f64 / 1e3,
            checks: r.get(3)?,
            failures: r.get(4)?,
        })
    })?;
    rows.collect()
}

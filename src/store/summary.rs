//! Availability math over the soak store: totals of up, down, maintenance and
//! unknown time over a window, availability = up / (up + down), coverage = observed / window,
//! the error budget and its burn rate, incidents, maintenance and tracker events.
//!
//! Totals read the per-minute rollups for whole minutes and the samples only for the partial
//! minutes at both edges, so a 30-day window costs 43 200 rollup rows per monitor and the
//! answer is exact to the millisecond at the edges.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{DOWN, MAINT, MonitorRow, Store, UP};

/// Sums over a time range, all durations in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Totals {
    /// Time observed up.
    pub up_ms: i64,
    /// Time observed down.
    pub down_ms: i64,
    /// Time inside maintenance windows (excluded).
    pub maint_ms: i64,
    /// Checks run.
    pub checks: i64,
    /// Checks that failed (including failures below the down threshold).
    pub failures: i64,
    /// Operations (order monitors).
    pub ops: i64,
    /// Failed operations.
    pub op_errors: i64,
}

impl Totals {
    fn add(&mut self, o: Totals) {
        self.up_ms += o.up_ms;
        self.down_ms += o.down_ms;
        self.maint_ms += o.maint_ms;
        self.checks += o.checks;
        self.failures += o.failures;
        self.ops += o.ops;
        self.op_errors += o.op_errors;
    }

    /// up / (up + down); `None` when nothing was observed.
    pub fn availability(&self) -> Option<f64> {
        let seen = self.up_ms + self.down_ms;
        (seen > 0).then(|| self.up_ms as f64 / seen as f64)
    }

    /// Failed operations per operation; `None` without operations.
    pub fn error_rate(&self) -> Option<f64> {
        (self.ops > 0).then(|| self.op_errors as f64 / self.ops as f64)
    }
}

/// Exact totals of `monitor` over timeline `[from_ms, to_ms)`.
///
/// # Errors
/// When SQLite fails.
pub fn totals(
    conn: &Connection,
    m: &MonitorRow,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Totals> {
    let mut t = Totals::default();
    if to_ms <= from_ms {
        return Ok(t);
    }
    let first_full = (from_ms + 59_999).div_euclid(60_000);
    let end_full = to_ms.div_euclid(60_000);
    if first_full >= end_full {
        t.add(from_samples(conn, m, from_ms, to_ms)?);
        return Ok(t);
    }
    let mut st = conn.prepare_cached(
        "SELECT coalesce(sum(up_ms),0), coalesce(sum(down_ms),0), coalesce(sum(maint_ms),0),
                coalesce(sum(checks),0), coalesce(sum(failures),0), coalesce(sum(ops),0), coalesce(sum(op_errors),0)
         FROM minutes WHERE monitor_id = ?1 AND minute >= ?2 AND minute < ?3",
    )?;
    t.add(st.query_row(params![m.id, first_full, end_full], |r| {
        Ok(Totals {
            up_ms: r.get(0)?,
            down_ms: r.get(1)?,
            maint_ms: r.get(2)?,
            checks: r.get(3)?,
            failures: r.get(4)?,
            ops: r.get(5)?,
            op_errors: r.get(6)?,
        })
    })?);
    t.add(from_samples(conn, m, from_ms, first_full * 60_000)?);
    t.add(from_samples(conn, m, end_full * 60_000, to_ms)?);
    Ok(t)
}

/// Totals from raw samples over `[a, b)`: each sample's span clipped to the range; checks
/// counted when the check started inside it.
fn from_samples(conn: &Connection, m: &MonitorRow, a: i64, b: i64) -> rusqlite::Result<Totals> {
    let mut t = Totals::default();
    if b <= a {
        return Ok(t);
    }
    let mut st = conn.prepare_cached(
        "SELECT at_ms, coalesce(span_ms, 0), state, ok, ops, op_errors FROM samples
         WHERE monitor_id = ?1 AND at_ms >= ?2 AND at_ms < ?3",
    )?;
    let mut rows = st.query(params![m.id, a - m.max_span_ms, b])?;
    while let Some(r) = rows.next()? {
        let at: i64 = r.get(0)?;
        let span: i64 = r.get(1)?;
        let state: i64 = r.get(2)?;
        let overlap = (at + span).min(b) - at.max(a);
        if overlap > 0 {
            match state {
                UP => t.up_ms += overlap,
                DOWN => t.down_ms += overlap,
                MAINT => t.maint_ms += overlap,
                _ => {}
            }
        }
        if at >= a {
            let ok: bool = r.get(3)?;
            t.checks += 1;
            t.failures += i64::from(!ok);
            t.ops += r.get::<_, i64>(4)?;
            t.op_errors += r.get::<_, i64>(5)?;
        }
    }
    Ok(t)
}

/// An outage of one monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Incident {
    /// Start (timeline ms): the first failure of the streak.
    pub start_ms: i64,
    /// End: the first success after it; `None` while ongoing.
    pub end_ms: Option<i64>,
    /// Failed checks during it.
    pub failures: i64,
    /// The first error.
    pub first_error: String,
}

/// A maintenance period the tracker observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MaintenancePeriod {
    /// Why.
    pub reason: String,
    /// Start (timeline ms).
    pub start_ms: i64,
    /// End; `None` while ongoing.
    pub end_ms: Option<i64>,
}

/// A tracker event: `start`, `stop`, `tracker_gap`, `reboot`, `clock_jump`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Event {
    /// Timeline ms.
    pub at_ms: i64,
    /// Kind.
    pub kind: String,
    /// Gap length or clock step, ms.
    pub duration_ms: Option<i64>,
    /// Text for people.
    pub detail: String,
}

/// Everything `soak-status`, `/metrics` and the `uptime` probe show for one monitor.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// Monitor name.
    pub monitor: String,
    /// Check kind.
    pub kind: String,
    /// Window start (timeline ms).
    pub from_ms: i64,
    /// Window end (timeline ms).
    pub to_ms: i64,
    /// Window length, ms.
    pub window_ms: i64,
    /// Totals over the window.
    pub totals: Totals,
    /// Unknown time: the part of the window since the first observation that is neither up,
    /// down nor maintenance, ms. Time before the first observation is "not yet observed".
    pub unknown_ms: i64,
    /// Time of the window before the first observation, ms.
    pub unobserved_ms: i64,
    /// First sample of this monitor (timeline ms).
    pub first_ms: Option<i64>,
    /// Last sample (timeline ms).
    pub last_ms: Option<i64>,
    /// State of the last sample: `up`, `down`, `maintenance`.
    pub last_state: Option<String>,
    /// up / (up + down).
    pub availability: Option<f64>,
    /// Coverage: (up + down) / (elapsed window − maintenance), where the elapsed window runs
    /// from the window's start, or from the first observation when that is later, to now. The
    /// one definition shared by `soak-status`, `/metrics` and the `uptime` item.
    pub coverage: f64,
    /// Window progress: elapsed window / window, 0 … 1 (1 once the first observation is at
    /// least a window old). Time before the first observation lowers progress, not coverage.
    pub window_progress: f64,
    /// Target, percent.
    pub target_percent: f64,
    /// Error budget over the window: (1 − target) × (window − maintenance), ms.
    pub budget_ms: f64,
    /// Downtime as a share of the budget (may exceed 1).
    pub budget_used: f64,
    /// Burn rate (observed unavailability / allowed unavailability) over 1 h, 6 h and 3 d.
    pub burn_rates: Vec<(String, Option<f64>)>,
    /// Failed operations per operation (order monitors).
    pub error_rate: Option<f64>,
    /// Incidents overlapping the window.
    pub incidents: Vec<Incident>,
    /// Maintenance overlapping the window.
    pub maintenance: Vec<MaintenancePeriod>,
    /// Tracker events in the window.
    pub events: Vec<Event>,
    /// The whole window has been observed (first sample at or before its start).
    pub complete: bool,
    /// Projected availability at the end of the window if the rest behaves like so far.
    pub projected: Option<f64>,
}

/// The latest timeline time the store knows: the newest heartbeat, advanced by the monotonic
/// clock when the tracker runs on this boot, else by the wall clock.
///
/// # Errors
/// When SQLite fails.
pub fn timeline_now(conn: &Connection, wall_ms: i64) -> rusqlite::Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    let hb: Option<(String, i64, i64, i64)> = conn
        .query_row(
            "SELECT boot_id, heartbeat_wall_ms, heartbeat_mono_ms, heartbeat_at_ms FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    Ok(hb.map(|(boot, hb_wall, hb_mono, hb_at)| {
        if boot == super::clock::boot_id() {
            hb_at + (super::clock::mono_ms() - hb_mono).max(0)
        } else {
            hb_at + (wall_ms - hb_wall).max(0)
        }
    }))
}

/// The first observation of a monitor (timeline ms): its oldest sample, or, when old samples
/// were pruned (`--keep-samples`), the start of its oldest per-minute rollup.
///
/// # Errors
/// When SQLite fails.
pub fn first_observation(conn: &Connection, monitor_id: i64) -> rusqlite::Result<Option<i64>> {
    // Separate statements: each lone min() is answered from an index in O(log n).
    let sample: Option<i64> = conn.query_row(
        "SELECT min(at_ms) FROM samples WHERE monitor_id = ?1",
        [monitor_id],
        |r| r.get(0),
    )?;
    let minute: Option<i64> = conn.query_row(
        "SELECT min(minute) FROM minutes WHERE monitor_id = ?1",
        [monitor_id],
        |r| r.get(0),
    )?;
    Ok(match (sample, minute) {
        (Some(s), Some(m)) if s.div_euclid(60_000) > m => Some(m * 60_000),
        (Some(s), _) => Some(s),
        (None, Some(m)) => Some(m * 60_000),
        (None, None) => None,
    })
}

/// Summarise `monitor` over the `window_ms` ending at timeline time `now_ms`.
///
/// # Errors
/// When SQLite fails.
pub fn summarize(
    store: &Store,
    m: &MonitorRow,
    window_ms: i64,
    now_ms: i64,
) -> rusqlite::Result<Summary> {
    let conn = &store.conn;
    let from = now_ms - window_ms;
    let t = totals(conn, m, from, now_ms)?;
    // Two queries: SQLite answers a lone min() or max() from the index in O(log n), but not
    // both in one statement (that scans every sample of the monitor).
    let first_ms = first_observation(conn, m.id)?;
    let (last_ms, last_state) = last_sample(conn, m.id)?;
    let observed_from = first_ms.map(|f| f.max(from)).unwrap_or(now_ms);
    let unobserved_ms = (observed_from - from).clamp(0, window_ms);
    let unknown_ms = ((now_ms - observed_from) - t.up_ms - t.down_ms - t.maint_ms).max(0);
    let effective = (window_ms - t.maint_ms).max(1);
    let elapsed_ms = (now_ms - observed_from).clamp(0, window_ms);
    let coverage = (t.up_ms + t.down_ms) as f64 / (elapsed_ms - t.maint_ms).max(1) as f64;
    let window_progress = elapsed_ms as f64 / window_ms.max(1) as f64;
    let allowed = 1.0 - m.target_percent / 100.0;
    let budget_ms = allowed * effective as f64;
    let budget_used = if budget_ms > 0.0 {
        t.down_ms as f64 / budget_ms
    } else {
        f64::INFINITY
    };
    let burn_rates = burn_rates(conn, m, now_ms, allowed)?;
    let incidents = incidents_in(conn, m, from, now_ms)?;
    let maintenance = maintenance_in(conn, m, from, now_ms)?;
    let events = events_in(conn, from, now_ms)?;
    let complete = first_ms.is_some_and(|f| f <= from);
    let availability = t.availability();
    Ok(Summary {
        monitor: m.name.clone(),
        kind: m.kind.clone(),
        from_ms: from,
        to_ms: now_ms,
        window_ms,
        totals: t,
        unknown_ms,
        unobserved_ms,
        first_ms,
        last_ms,
        last_state,
        availability,
        coverage,
        window_progress,
        target_percent: m.target_percent,
        budget_ms,
        budget_used,
        burn_rates,
        error_rate: t.error_rate(),
        incidents,
        maintenance,
        events,
        complete,
        projected: availability,
    })
}

/// The time of monitor `id`'s last sample and its state (`up`, `down`, `maintenance`).
fn last_sample(conn: &Connection, id: i64) -> rusqlite::Result<(Option<i64>, Option<String>)> {
    // Two queries: SQLite answers a lone max() from the index; see `summarize`.
    let last_ms: Option<i64> = conn.query_row(
        "SELECT max(at_ms) FROM samples WHERE monitor_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let last_state: Option<i64> = conn
        .query_row(
            "SELECT state FROM samples WHERE monitor_id = ?1 ORDER BY at_ms DESC LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .ok();
    let name = last_state.map(|s| match s {
        UP => "up".to_string(),
        DOWN => "down".to_string(),
        _ => "maintenance".to_string(),
    });
    Ok((last_ms, name))
}

/// The burn rates over 1 h, 6 h and 3 d before `now_ms`: the unavailability over each as a
/// multiple of the `allowed` one.
fn burn_rates(
    conn: &Connection,
    m: &MonitorRow,
    now_ms: i64,
    allowed: f64,
) -> rusqlite::Result<Vec<(String, Option<f64>)>> {
    let mut burn_rates = Vec::new();
    for (label, w) in [
        ("1h", 3_600_000i64),
        ("6h", 21_600_000),
        ("3d", 259_200_000),
    ] {
        let bt = totals(conn, m, now_ms - w, now_ms)?;
        burn_rates.push((
            label.to_string(),
            bt.availability().map(|a| (1.0 - a) / allowed),
        ));
    }
    Ok(burn_rates)
}

/// Incidents of monitor `m` overlapping `[from, to)`, oldest first.
fn incidents_in(
    conn: &Connection,
    m: &MonitorRow,
    from: i64,
    now_ms: i64,
) -> rusqlite::Result<Vec<Incident>> {
    let mut incidents = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT start_ms, end_ms, failures, coalesce(first_error, '') FROM incidents
         WHERE monitor_id = ?1 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2) ORDER BY start_ms",
    )?;
    let rows = st.query_map(params![m.id, from, now_ms], |r| {
        Ok(Incident {
            start_ms: r.get(0)?,
            end_ms: r.get(1)?,
            failures: r.get(2)?,
            first_error: r.get(3)?,
        })
    })?;
    for r in rows {
        incidents.push(r?);
    }
    Ok(incidents)
}

/// Maintenance periods of monitor `m` overlapping `[from, to)`.
fn maintenance_in(
    conn: &Connection,
    m: &MonitorRow,
    from: i64,
    now_ms: i64,
) -> rusqlite::Result<Vec<MaintenancePeriod>> {
    let mut maintenance = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT reason, start_ms, end_ms FROM maintenance
         WHERE monitor_id = ?1 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2) ORDER BY start_ms",
    )?;
    let rows = st.query_map(params![m.id, from, now_ms], |r| {
        Ok(MaintenancePeriod {
            reason: r.get(0)?,
            start_ms: r.get(1)?,
            end_ms: r.get(2)?,
        })
    })?;
    for r in rows {
        maintenance.push(r?);
    }
    Ok(maintenance)
}

/// Tracker gaps, reboots and clock steps in `[from, to)`.
fn events_in(conn: &Connection, from: i64, now_ms: i64) -> rusqlite::Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT at_ms, kind, duration_ms, detail FROM events
         WHERE at_ms >= ?1 AND at_ms < ?2 AND kind IN ('tracker_gap', 'reboot', 'clock_jump') ORDER BY at_ms",
    )?;
    let rows = st.query_map(params![from, now_ms], |r| {
        Ok(Event {
            at_ms: r.get(0)?,
            kind: r.get(1)?,
            duration_ms: r.get(2)?,
            detail: r.get(3)?,
        })
    })?;
    for r in rows {
        events.push(r?);
    }
    Ok(events)
}

/// One column of the timeline chart: shares of a bucket of time, summing to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Bucket start (timeline ms).
    pub start_ms: i64,
    /// Share up.
    pub up: f64,
    /// Share down.
    pub down: f64,
    /// Share in maintenance.
    pub maint: f64,
    /// Share unknown (including not yet observed).
    pub unknown: f64,
}

/// Up, down, maintenance and unknown shares per bucket of the window, for the timeline chart.
/// Time before the first observation counts as unknown.
///
/// # Errors
/// When SQLite fails.
pub fn timeline(
    store: &Store,
    m: &MonitorRow,
    from_ms: i64,
    to_ms: i64,
    buckets: usize,
) -> rusqlite::Result<Vec<Bucket>> {
    let buckets = buckets.max(1) as i64;
    let width = ((to_ms - from_ms) / buckets).max(1);
    let mut out = Vec::new();
    for i in 0..buckets {
        let a = from_ms + i * width;
        let b = if i == buckets - 1 { to_ms } else { a + width };
        let t = totals(&store.conn, m, a, b)?;
        let len = (b - a).max(1) as f64;
        let up = t.up_ms as f64 / len;
        let down = t.down_ms as f64 / len;
        let maint = t.maint_ms as f64 / len;
        out.push(Bucket {
            start_ms: a,
            up,
            down,
            maint,
            unknown: (1.0 - up - down - maint).max(0.0),
        });
    }
    Ok(out)
}

/// Format a timeline time (ms since the epoch) as UTC `YYYY-MM-DD HH:MM:SSZ`.
pub fn fmt_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Format milliseconds as a short duration: `43.2 min`, `1.5 s`, `2.1 h`, `3.0 d`.
pub fn fmt_ms(ms: f64) -> String {
    let s = ms / 1e3;
    if s.abs() < 120.0 {
        format!("{s:.1} s")
    } else if s.abs() < 7_200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s.abs() < 172_800.0 {
        format!("{:.1} h", s / 3_600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// Format a ratio as a percentage with three decimals, or `n/a`
/// ([`crate::units::format_percent_opt`]).
pub fn fmt_pct(r: Option<f64>) -> String {
    crate::units::format_percent_opt(r, 3)
}

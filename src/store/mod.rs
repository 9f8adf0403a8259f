//! The soak store: one SQLite file (rusqlite, bundled) in WAL mode that `prodready soak`
//! writes and `soak-status`, `/metrics` and the `uptime` probe read, with the availability
//! arithmetic over it ([`summary`]) and the clocks its rows carry ([`clock`]). It sits below
//! both the tracker ([`crate::soak`]) and the probes ([`crate::probe`]), so neither imports
//! the other's internals.
//!
//! Crash safety: every sample is committed in its own transaction with `synchronous = FULL`,
//! so a `kill -9` (or a power cut) loses at most the check in flight, never a committed sample,
//! and WAL never leaves a half-written page behind (`PRAGMA integrity_check` stays `ok`).
//! `NORMAL` would already survive a process kill in WAL mode; `FULL` adds an fsync per commit
//! (a few per second at most) so a host crash, the other half of "unknown" time, loses no more.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated forward on open
//! ([`MIGRATIONS`]). Tables (documented for sqlite3 users in docs/soak.md):
//! `runs` (one row per tracker process, with boot id and heartbeat), `monitors`, `samples` (one
//! row per check: timeline time, wall time, monotonic time, run → boot id, state, span),
//! `minutes` (per-minute rollups so a 30-day summary reads 43 200 rows per monitor, not
//! 2.6 million samples), `incidents`, `maintenance` and `events` (tracker gaps, reboots,
//! wall-clock jumps).

pub mod clock;
pub mod summary;

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};

/// Schema migrations; entry `i` moves `user_version` from `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[r"
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    boot_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    started_wall_ms INTEGER NOT NULL,
    started_mono_ms INTEGER NOT NULL,
    anchor_at_ms INTEGER NOT NULL,
    anchor_mono_ms INTEGER NOT NULL,
    heartbeat_wall_ms INTEGER NOT NULL,
    heartbeat_mono_ms INTEGER NOT NULL,
    heartbeat_at_ms INTEGER NOT NULL,
    stopped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE monitors (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    interval_ms INTEGER NOT NULL,
    max_span_ms INTEGER NOT NULL,
    target_percent REAL NOT NULL
);
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    monitor_id INTEGER NOT NULL REFERENCES monitors(id),
    run_id INTEGER NOT NULL REFERENCES runs(id),
    at_ms INTEGER NOT NULL,
    wall_ms INTEGER NOT NULL,
    mono_ms INTEGER NOT NULL,
    span_ms INTEGER,
    ok INTEGER NOT NULL,
    state INTEGER NOT NULL,
    latency_us INTEGER NOT NULL,
    ops INTEGER NOT NULL DEFAULT 0,
    op_errors INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX samples_monitor_at ON samples(monitor_id, at_ms);
CREATE TABLE minutes (
    monitor_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    up_ms INTEGER NOT NULL DEFAULT 0,
    down_ms INTEGER NOT NULL DEFAULT 0,
    maint_ms INTEGER NOT NULL DEFAULT 0,
    checks INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    ops INTEGER NOT NULL DEFAULT 0,
    op_errors INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (monitor_id, minute)
) WITHOUT ROWID;
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    monitor_id INTEGER NOT NULL REFERENCES monitors(id),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    failures INTEGER NOT NULL DEFAULT 0,
    first_error TEXT
);
CREATE INDEX incidents_monitor ON incidents(monitor_id, start_ms);
CREATE TABLE maintenance (
    id INTEGER PRIMARY KEY,
    monitor_id INTEGER NOT NULL REFERENCES monitors(id),
    reason TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    at_ms INTEGER NOT NULL,
    wall_ms INTEGER NOT NULL,
    mono_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    duration_ms INTEGER,
    detail TEXT NOT NULL
);
CREATE VIEW samples_with_boot AS
    SELECT s.*, r.boot_id FROM samples s JOIN runs r ON r.id = s.run_id;
"];

/// Sample state: up.
pub const UP: i64 = 1;
/// Sample state: down.
pub const DOWN: i64 = 2;
/// Sample state: inside a maintenance window (excluded).
pub const MAINT: i64 = 3;

/// An open store.
#[derive(Debug)]
pub struct Store {
    /// The connection (public for the tracker's transactions and for tests).
    pub conn: Connection,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Internal(format!("soak store {}: {e}", path.display()))
}

impl Store {
    /// Open (creating if needed) for writing, in WAL mode with `synchronous = FULL`, and
    /// migrate the schema to the current version.
    ///
    /// # Errors
    /// [`Error::Internal`] when SQLite fails or the file was written by a newer version.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).map_err(sql(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql(path))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql(path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Internal(format!(
                "soak store {}: cannot switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(sql(path))?;
        let mut store = Store { conn };
        store.migrate(path)?;
        Ok(store)
    }

    /// Open an existing store for reading (`soak-status`, `/metrics`, the `uptime` probe).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the file is missing or not a soak store.
    pub fn open_read(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(Error::InvalidInput {
                path: path.to_path_buf(),
                message: "no soak store here (start `prodready soak … --state` first)".into(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .or_else(|_| {
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        })
        .map_err(sql(path))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql(path))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(path))?;
        if version == 0 || version > MIGRATIONS.len() as i64 {
            return Err(Error::InvalidInput {
                path: path.to_path_buf(),
                message: format!(
                    "not a soak store this version can read (schema version {version}, expected 1..={})",
                    MIGRATIONS.len()
                ),
            });
        }
        Ok(Store { conn })
    }

    fn migrate(&mut self, path: &Path) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(path))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(Error::Internal(format!(
                "soak store {}: schema version {version} is newer than this prodready understands ({})",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(sql(path))?;
            tx.execute_batch(m).map_err(sql(path))?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .map_err(sql(path))?;
            tx.commit().map_err(sql(path))?;
        }
        Ok(())
    }

    /// `PRAGMA integrity_check`'s first line (`ok` when the file is sound).
    ///
    /// # Errors
    /// When SQLite cannot run the check.
    pub fn integrity_check(&self) -> rusqlite::Result<String> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
    }

    /// The id of monitor `name`, if the store knows it.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn monitor(&self, name: &str) -> rusqlite::Result<Option<MonitorRow>> {
        self.conn
            .query_row(
                "SELECT id, name, kind, interval_ms, max_span_ms, target_percent FROM monitors WHERE name = ?1",
                [name],
                MonitorRow::from_row,
            )
            .optional()
    }

    /// Every monitor in the store, by name.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn monitors(&self) -> rusqlite::Result<Vec<MonitorRow>> {
        let mut st = self.conn.prepare(
            "SELECT id, name, kind, interval_ms, max_span_ms, target_percent FROM monitors ORDER BY name",
        )?;
        st.query_map([], MonitorRow::from_row)?.collect()
    }

    /// Insert or update a monitor's row; returns its id.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn upsert_monitor(
        &self,
        name: &str,
        kind: &str,
        interval_ms: i64,
        max_span_ms: i64,
        target_percent: f64,
    ) -> rusqlite::Result<i64> {
        self.conn.execute(
            "INSERT INTO monitors (name, kind, interval_ms, max_span_ms, target_percent)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(name) DO UPDATE SET kind = ?2, interval_ms = ?3,
               max_span_ms = max(max_span_ms, ?4), target_percent = ?5",
            params![name, kind, interval_ms, max_span_ms, target_percent],
        )?;
        self.conn
            .query_row("SELECT id FROM monitors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
    }
}

/// A row of `monitors`.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRow {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Check kind (`http`, `tcp`, `command`, `order`).
    pub kind: String,
    /// Check interval, ms.
    pub interval_ms: i64,
    /// Longest span one sample may stand for, ms.
    pub max_span_ms: i64,
    /// Availability target, percent.
    pub target_percent: f64,
}

impl MonitorRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MonitorRow> {
        Ok(MonitorRow {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            interval_ms: r.get(3)?,
            max_span_ms: r.get(4)?,
            target_percent: r.get(5)?,
        })
    }
}

/// Add `dur_ms` of `state` starting at timeline time `start_ms` to the per-minute rollups,
/// split at minute boundaries; a negative `sign` removes it (used when a failure streak turns
/// out to be an outage and its time moves from up to down).
///
/// # Errors
/// When SQLite fails.
pub fn add_span(
    conn: &Connection,
    monitor_id: i64,
    state: i64,
    start_ms: i64,
    dur_ms: i64,
    sign: i64,
) -> rusqlite::Result<()> {
    let column = match state {
        UP => "up_ms",
        DOWN => "down_ms",
        _ => "maint_ms",
    };
    let mut st = conn.prepare_cached(&format!(
        "INSERT INTO minutes (monitor_id, minute, {column}) VALUES (?1, ?2, ?3)
         ON CONFLICT(monitor_id, minute) DO UPDATE SET {column} = {column} + ?3"
    ))?;
    let mut t = start_ms;
    let end = start_ms + dur_ms;
    while t < end {
        let minute = t.div_euclid(60_000);
        let next = ((minute + 1) * 60_000).min(end);
        st.execute(params![monitor_id, minute, sign * (next - t)])?;
        t = next;
    }
    Ok(())
}

/// Count one check (and its operations) in the rollup of the minute holding `at_ms`.
///
/// # Errors
/// When SQLite fails.
pub fn add_check(
    conn: &Connection,
    monitor_id: i64,
    at_ms: i64,
    failed: bool,
    ops: i64,
    op_errors: i64,
) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO minutes (monitor_id, minute, checks, failures, ops, op_errors)
         VALUES (?1, ?2, 1, ?3, ?4, ?5)
         ON CONFLICT(monitor_id, minute) DO UPDATE SET checks = checks + 1,
           failures = failures + ?3, ops = ops + ?4, op_errors = op_errors + ?5",
    )?;
    st.execute(params![
        monitor_id,
        at_ms.div_euclid(60_000),
        i64::from(failed),
        ops,
        op_errors
    ])?;
    Ok(())
}

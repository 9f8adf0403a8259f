//! The writing side of the soak store: tracker runs (start, heartbeat, clean stop), the
//! timeline and its events, and (in `monitor`) the per-monitor consecutive-failure state
//! machine that turns check results into up/down/maintenance spans, incidents and maintenance
//! periods.
//!
//! **Timeline.** Samples are placed at `at_ms = anchor_at + (mono − anchor_mono)`: durations
//! come from the monotonic clock only, so a wall-clock step never creates or removes time.
//! Within one boot a new run continues the previous run's timeline from its last heartbeat
//! (again by the monotonic clock), so a wall-clock change while the tracker was down is not
//! counted either; after a reboot the wall clock re-anchors the timeline (never before the
//! previous run's last heartbeat). A wall-clock step is detected on every heartbeat and
//! recorded as a `clock_jump` event; a tracker gap (killed, crashed, host rebooted) is
//! recorded as a `tracker_gap` event and, for a new boot id, a `reboot` event.
//!
//! Every sample is stored and spanned by its monitor's state machine ([`MonitorState`]).

mod monitor;

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::clock::Clock;
pub use monitor::{MonitorState, Sample};

/// Smallest wall-clock step reported as a `clock_jump`, in ms.
pub const CLOCK_JUMP_MS: i64 = 2_000;

/// The current tracker process's row and timeline anchor.
#[derive(Debug, Clone)]
pub struct Run {
    /// Row id in `runs`.
    pub id: i64,
    /// Timeline time at `anchor_mono_ms`.
    pub anchor_at_ms: i64,
    /// Monotonic time of the anchor.
    pub anchor_mono_ms: i64,
    /// Wall minus timeline at the last heartbeat (to detect wall-clock steps).
    pub skew_ms: i64,
}

impl Run {
    /// Timeline time for a monotonic reading.
    pub fn at(&self, mono_ms: i64) -> i64 {
        self.anchor_at_ms + (mono_ms - self.anchor_mono_ms)
    }
}

/// When an event happened: timeline, wall and monotonic ms.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    at: i64,
    wall: i64,
    mono: i64,
}

fn event(
    conn: &Connection,
    run: Option<i64>,
    stamp: Stamp,
    kind: &str,
    duration_ms: Option<i64>,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO events (run_id, at_ms, wall_ms, mono_ms, kind, duration_ms, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run,
            stamp.at,
            stamp.wall,
            stamp.mono,
            kind,
            duration_ms,
            detail
        ],
    )?;
    Ok(())
}

/// Where the previous run left off: its boot id and last heartbeat, and whether it stopped
/// cleanly.
struct Previous {
    boot_id: String,
    heartbeat_wall_ms: i64,
    heartbeat_mono_ms: i64,
    heartbeat_at_ms: i64,
    stopped: bool,
}

/// The time the tracker was not running before this run.
struct Gap {
    /// Timeline ms from the previous run's last heartbeat to this run's anchor.
    ms: i64,
    /// The previous run stopped cleanly.
    stopped: bool,
    /// The host rebooted in between (a new boot id).
    reboot: bool,
    /// How far the wall clock moved over the gap, ms.
    wall_ms: i64,
}

/// The most recent run, if any.
fn previous_run(conn: &Connection) -> rusqlite::Result<Option<Previous>> {
    conn.query_row(
        "SELECT boot_id, heartbeat_wall_ms, heartbeat_mono_ms, heartbeat_at_ms, stopped
         FROM runs ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok(Previous {
                boot_id: r.get(0)?,
                heartbeat_wall_ms: r.get(1)?,
                heartbeat_mono_ms: r.get(2)?,
                heartbeat_at_ms: r.get(3)?,
                stopped: r.get(4)?,
            })
        },
    )
    .optional()
}

/// This run's timeline anchor for the readings `wall` and `mono`, and the gap since `prev`:
/// within one boot the monotonic clock continues the timeline; after a reboot only the wall
/// clock spans it (never before the previous run's last heartbeat).
fn anchor(prev: Option<&Previous>, boot_id: &str, wall: i64, mono: i64) -> (i64, Option<Gap>) {
    let Some(p) = prev else {
        return (wall, None);
    };
    let wall_ms = wall - p.heartbeat_wall_ms;
    if p.boot_id == boot_id && mono >= p.heartbeat_mono_ms {
        let ms = mono - p.heartbeat_mono_ms;
        let gap = Gap {
            ms,
            stopped: p.stopped,
            reboot: false,
            wall_ms,
        };
        (p.heartbeat_at_ms + ms, Some(gap))
    } else {
        // New boot: only the wall clock spans a reboot.
        let at = wall.max(p.heartbeat_at_ms + 1);
        let gap = Gap {
            ms: at - p.heartbeat_at_ms,
            stopped: p.stopped,
            reboot: true,
            wall_ms,
        };
        (at, Some(gap))
    }
}

/// Record the gap before run `run` (anchored at `now`): a `reboot` event for a new boot, and
/// the `tracker_gap` event at the previous run's last heartbeat.
fn record_gap(
    conn: &Connection,
    run: i64,
    boot_id: &str,
    gap: &Gap,
    now: Stamp,
) -> rusqlite::Result<()> {
    if gap.reboot {
        event(
            conn,
            Some(run),
            now,
            "reboot",
            None,
            &format!("host rebooted (boot id {boot_id}); the gap is measured by the wall clock"),
        )?;
    }
    let how = if gap.stopped {
        "stopped cleanly"
    } else {
        "killed or crashed (no clean stop recorded)"
    };
    event(
        conn,
        Some(run),
        Stamp {
            at: now.at - gap.ms,
            ..now
        },
        "tracker_gap",
        Some(gap.ms),
        &format!(
            "tracker not running for {:.1} s: previous run {how}; counted as unknown (wall clock moved {:.1} s)",
            gap.ms as f64 / 1e3,
            gap.wall_ms as f64 / 1e3
        ),
    )
}

/// Start a tracker run: find where the previous run left off, record the gap (and a reboot
/// when the boot id changed), and anchor this run's timeline.
///
/// # Errors
/// When SQLite fails.
pub fn begin_run(conn: &mut Connection, clock: &Clock, boot_id: &str) -> rusqlite::Result<Run> {
    let wall = clock.wall_ms();
    let mono = clock.mono_ms();
    let tx = conn.transaction()?;
    let prev = previous_run(&tx)?;
    let (anchor_at, gap) = anchor(prev.as_ref(), boot_id, wall, mono);
    tx.execute(
        "INSERT INTO runs (boot_id, pid, version, started_wall_ms, started_mono_ms,
           anchor_at_ms, anchor_mono_ms, heartbeat_wall_ms, heartbeat_mono_ms, heartbeat_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?4, ?5, ?6)",
        params![
            boot_id,
            std::process::id(),
            env!("CARGO_PKG_VERSION"),
            wall,
            mono,
            anchor_at
        ],
    )?;
    let id = tx.last_insert_rowid();
    let now = Stamp {
        at: anchor_at,
        wall,
        mono,
    };
    if let Some(gap) = &gap {
        record_gap(&tx, id, boot_id, gap, now)?;
    }
    event(
        &tx,
        Some(id),
        now,
        "start",
        None,
        &format!("tracker started (pid {})", std::process::id()),
    )?;
    tx.commit()?;
    Ok(Run {
        id,
        anchor_at_ms: anchor_at,
        anchor_mono_ms: mono,
        skew_ms: wall - anchor_at,
    })
}

/// Record a heartbeat: the tracker is alive at this monotonic time; detect wall-clock steps.
///
/// # Errors
/// When SQLite fails.
pub fn heartbeat(conn: &Connection, clock: &Clock, run: &mut Run) -> rusqlite::Result<()> {
    let wall = clock.wall_ms();
    let mono = clock.mono_ms();
    let at = run.at(mono);
    let skew = wall - at;
    if (skew - run.skew_ms).abs() >= CLOCK_JUMP_MS {
        let step = skew - run.skew_ms;
        event(
            conn,
            Some(run.id),
            Stamp { at, wall, mono },
            "clock_jump",
            Some(step),
            &format!(
                "wall clock stepped {}{:.1} s; durations use the monotonic clock, no time added or lost",
                if step > 0 { "+" } else { "−" },
                step.abs() as f64 / 1e3
            ),
        )?;
        run.skew_ms = skew;
    }
    conn.execute(
        "UPDATE runs SET heartbeat_wall_ms = ?2, heartbeat_mono_ms = ?3, heartbeat_at_ms = ?4 WHERE id = ?1",
        params![run.id, wall, mono, at],
    )?;
    Ok(())
}

/// Delete samples that start before timeline time `before_ms` and whose span is closed. The
/// per-minute rollups, incidents, maintenance and events stay, so availability is unchanged
/// except at the edges of windows reaching past the retention (at most a minute each).
///
/// # Errors
/// When SQLite fails.
pub fn prune_samples(conn: &Connection, before_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM samples WHERE at_ms < ?1 AND span_ms IS NOT NULL",
        [before_ms],
    )
}

/// Record a clean stop: close the last spans, open incidents and maintenance periods, final
/// heartbeat, `stop` event.
///
/// # Errors
/// When SQLite fails.
pub fn end_run(
    conn: &mut Connection,
    clock: &Clock,
    run: &mut Run,
    states: &mut [MonitorState],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mono = clock.mono_ms();
    let at = run.at(mono);
    for s in states.iter_mut() {
        s.finish(&tx, at)?;
    }
    heartbeat(&tx, clock, run)?;
    // Nothing is observed after the stop: open incidents and maintenance end here.
    for table in ["incidents", "maintenance"] {
        tx.execute(
            &format!("UPDATE {table} SET end_ms = max(start_ms, ?1) WHERE end_ms IS NULL"),
            [at],
        )?;
    }
    tx.execute("UPDATE runs SET stopped = 1 WHERE id = ?1", [run.id])?;
    event(
        &tx,
        Some(run.id),
        Stamp {
            at,
            wall: clock.wall_ms(),
            mono,
        },
        "stop",
        None,
        "tracker stopped cleanly",
    )?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_new_boot_id_is_reported_as_a_reboot_and_the_gap_as_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let clock = Clock::default();
        let mut run = begin_run(&mut store.conn, &clock, "boot-a").unwrap();
        heartbeat(&store.conn, &clock, &mut run).unwrap();
        let second = begin_run(&mut store.conn, &clock, "boot-b").unwrap();
        assert!(second.anchor_at_ms > run.anchor_at_ms);
        let kinds: Vec<String> = store
            .conn
            .prepare("SELECT kind FROM events ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(kinds, ["start", "reboot", "tracker_gap", "start"]);
        let detail: String = store
            .conn
            .query_row(
                "SELECT detail FROM events WHERE kind = 'tracker_gap'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(detail.contains("killed or crashed"), "{detail}");
    }

    #[test]
    fn the_same_boot_continues_the_timeline_by_the_monotonic_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let offset = dir.path().join("offset");
        std::fs::write(&offset, "0s").unwrap();
        let clock = Clock {
            offset_file: Some(offset.clone()),
        };
        let first = begin_run(&mut store.conn, &clock, "boot-a").unwrap();
        // The wall clock moves back an hour while the tracker is down.
        std::fs::write(&offset, "-1h").unwrap();
        let second = begin_run(&mut store.conn, &clock, "boot-a").unwrap();
        let elapsed = second.anchor_at_ms - first.anchor_at_ms;
        assert!((0..1000).contains(&elapsed), "timeline moved {elapsed} ms");
    }

    #[test]
    fn schema_is_versioned_and_reopening_does_not_migrate_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        let s = Store::open(&path).unwrap();
        let v: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, crate::store::MIGRATIONS.len() as i64);
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }
}

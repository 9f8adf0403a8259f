//! The per-monitor consecutive-failure state machine: it turns check results into
//! up/down/maintenance spans, incidents and maintenance periods, in the caller's transaction.
//!
//! **Spans.** A sample stands for the time from its check to the next check of the same
//! monitor, capped at the monitor's maximum span; time no sample stands for is `unknown`.
//! The last sample's span is written when the next one arrives (or at a clean stop), so a
//! `kill -9` loses at most that one interval.
//!
//! **Failures.** With `failures_before_down = k`, fewer than `k` consecutive failures stay
//! `up` (each failure is still stored in `samples` and counted in `minutes.failures`); at the
//! `k`-th, the whole streak's time moves from up to down and an incident opens at the streak's
//! first failure with its error.

use rusqlite::{Connection, OptionalExtension, params};

use super::Run;
use crate::soak::check::CheckResult;
use crate::store::{self, DOWN, MAINT, UP};

/// One check result, timed: timeline time, wall and monotonic readings at the check's start.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index of the monitor in the tracker's list.
    pub monitor: usize,
    /// Wall clock at the check's start, ms since the epoch.
    pub wall_ms: i64,
    /// Monotonic clock at the check's start, ms.
    pub mono_ms: i64,
    /// The result.
    pub result: CheckResult,
    /// The maintenance window's reason when the check started inside one.
    pub maintenance: Option<String>,
}

/// The state machine of one monitor.
#[derive(Debug)]
pub struct MonitorState {
    /// Row id in `monitors`.
    pub id: i64,
    /// Consecutive failures before down.
    pub failures_before_down: u32,
    /// Longest span one sample stands for, ms.
    pub max_span_ms: i64,
    last: Option<(i64, i64, i64)>, // sample row id, at_ms, state
    streak: u32,
    streak_first: Option<(i64, String)>,
    streak_spans: Vec<(i64, i64)>,
    streak_samples: Vec<i64>,
    down: bool,
    incident: Option<i64>,
    maint: Option<i64>,
}

impl MonitorState {
    /// A fresh state machine (every run starts with no previous sample: the gap is unknown).
    pub fn new(id: i64, failures_before_down: u32, max_span_ms: i64) -> MonitorState {
        MonitorState {
            id,
            failures_before_down,
            max_span_ms,
            last: None,
            streak: 0,
            streak_first: None,
            streak_spans: Vec::new(),
            streak_samples: Vec::new(),
            down: false,
            incident: None,
            maint: None,
        }
    }

    /// Close an incident or maintenance period a previous run left open at that run's last
    /// heartbeat: nothing was observed after it, so the time that follows is unknown, not part
    /// of the outage. If the target is still failing, the next checks open a new incident.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn resume(&mut self, conn: &Connection, run: &Run) -> rusqlite::Result<()> {
        let prev_heartbeat: Option<i64> = conn
            .query_row(
                "SELECT heartbeat_at_ms FROM runs WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                [run.id],
                |r| r.get(0),
            )
            .optional()?;
        let end = prev_heartbeat.unwrap_or(run.anchor_at_ms);
        conn.execute(
            "UPDATE incidents SET end_ms = max(start_ms, ?2) WHERE monitor_id = ?1 AND end_ms IS NULL",
            params![self.id, end],
        )?;
        conn.execute(
            "UPDATE maintenance SET end_ms = max(start_ms, ?2) WHERE monitor_id = ?1 AND end_ms IS NULL",
            params![self.id, end],
        )?;
        self.incident = None;
        self.down = false;
        self.maint = None;
        Ok(())
    }

    /// True while the monitor is down.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Close the previous sample's span at `at` (capped at the maximum span).
    fn close_span(&mut self, conn: &Connection, at: i64) -> rusqlite::Result<()> {
        if let Some((row, last_at, last_state)) = self.last {
            let span = (at - last_at).clamp(0, self.max_span_ms);
            conn.prepare_cached("UPDATE samples SET span_ms = ?2 WHERE id = ?1")?
                .execute(params![row, span])?;
            store::add_span(conn, self.id, last_state, last_at, span, 1)?;
            if self.streak > 0 && last_state == UP {
                self.streak_spans.push((last_at, span));
            }
        }
        Ok(())
    }

    /// Apply one sample placed at timeline time `at`, in the caller's transaction.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn apply(&mut self, conn: &Connection, run: &Run, s: &Sample) -> rusqlite::Result<()> {
        let at = run.at(s.mono_ms);
        self.close_span(conn, at)?;
        let r = &s.result;
        let state = if let Some(reason) = &s.maintenance {
            if self.maint.is_none() {
                conn.execute(
                    "INSERT INTO maintenance (monitor_id, reason, start_ms) VALUES (?1, ?2, ?3)",
                    params![self.id, reason, at],
                )?;
                self.maint = Some(conn.last_insert_rowid());
            }
            // Failures inside maintenance are stored but neither open incidents nor count
            // toward the streak.
            self.reset_streak();
            MAINT
        } else {
            if let Some(m) = self.maint.take() {
                conn.execute(
                    "UPDATE maintenance SET end_ms = ?2 WHERE id = ?1",
                    params![m, at],
                )?;
            }
            if r.ok {
                if let Some(inc) = self.incident.take() {
                    conn.execute(
                        "UPDATE incidents SET end_ms = ?2 WHERE id = ?1",
                        params![inc, at],
                    )?;
                }
                self.down = false;
                self.reset_streak();
                UP
            } else {
                self.failed_sample(conn, at, r.error.as_deref())?
            }
        };
        conn.prepare_cached(
            "INSERT INTO samples (monitor_id, run_id, at_ms, wall_ms, mono_ms, ok, state, latency_us, ops, op_errors, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            self.id,
            run.id,
            at,
            s.wall_ms,
            s.mono_ms,
            r.ok,
            state,
            r.latency.as_micros() as i64,
            r.ops,
            r.op_errors,
            r.error
        ])?;
        let row = conn.last_insert_rowid();
        if state == UP && self.streak > 0 {
            self.streak_samples.push(row);
        }
        store::add_check(
            conn,
            self.id,
            at,
            !r.ok,
            i64::from(r.ops),
            i64::from(r.op_errors),
        )?;
        self.last = Some((row, at, state));
        Ok(())
    }

    /// Count a failed sample outside maintenance: extend the streak, open an incident (moving
    /// the streak's time from up to down) once it reaches `failures_before_down`; returns the
    /// state the sample is stored with.
    fn failed_sample(
        &mut self,
        conn: &Connection,
        at: i64,
        error: Option<&str>,
    ) -> rusqlite::Result<i64> {
        self.streak += 1;
        if self.streak == 1 {
            self.streak_first = Some((at, error.unwrap_or_default().to_string()));
        }
        if self.down {
            if let Some(inc) = self.incident {
                conn.execute(
                    "UPDATE incidents SET failures = failures + 1 WHERE id = ?1",
                    [inc],
                )?;
            }
            return Ok(DOWN);
        }
        if self.streak < self.failures_before_down {
            return Ok(UP);
        }
        // The streak is an outage: move its time from up to down.
        for (start, span) in std::mem::take(&mut self.streak_spans) {
            store::add_span(conn, self.id, UP, start, span, -1)?;
            store::add_span(conn, self.id, DOWN, start, span, 1)?;
        }
        for row in std::mem::take(&mut self.streak_samples) {
            conn.execute(
                "UPDATE samples SET state = ?2 WHERE id = ?1",
                params![row, DOWN],
            )?;
        }
        let (start, first_error) = self.streak_first.clone().unwrap_or((at, String::new()));
        conn.execute(
            "INSERT INTO incidents (monitor_id, start_ms, failures, first_error) VALUES (?1, ?2, ?3, ?4)",
            params![self.id, start, self.streak, first_error],
        )?;
        self.incident = Some(conn.last_insert_rowid());
        self.down = true;
        Ok(DOWN)
    }

    fn reset_streak(&mut self) {
        self.streak = 0;
        self.streak_first = None;
        self.streak_spans.clear();
        self.streak_samples.clear();
    }

    /// At a clean stop: the last sample stands until now (capped at the maximum span).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn finish(&mut self, conn: &Connection, at: i64) -> rusqlite::Result<()> {
        self.close_span(conn, at)?;
        self.last = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{begin_run, heartbeat, prune_samples};
    use super::*;
    use crate::store::clock::Clock;
    use crate::store::summary::totals;
    use crate::store::{MonitorRow, Store};
    use std::time::Duration;

    fn sample(mono_ms: i64, ok: bool) -> Sample {
        Sample {
            monitor: 0,
            wall_ms: mono_ms,
            mono_ms,
            result: CheckResult {
                ok,
                latency: Duration::from_millis(1),
                error: (!ok).then(|| format!("refused at {mono_ms}")),
                ops: 0,
                op_errors: 0,
            },
            maintenance: None,
        }
    }

    fn setup(k: u32) -> (tempfile::TempDir, Store, Run, MonitorState, MonitorRow) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let mut run = begin_run(&mut store.conn, &Clock::default(), "boot-a").unwrap();
        run.anchor_at_ms = 0;
        run.anchor_mono_ms = 0;
        let id = store.upsert_monitor("m", "tcp", 1000, 2000, 99.9).unwrap();
        let row = store.monitor("m").unwrap().unwrap();
        (dir, store, run, MonitorState::new(id, k, 2000), row)
    }

    fn feed(store: &mut Store, run: &Run, st: &mut MonitorState, pattern: &str) {
        for (i, c) in pattern.chars().enumerate() {
            let tx = store.conn.transaction().unwrap();
            st.apply(&tx, run, &sample(i as i64 * 1000, c == '+'))
                .unwrap();
            tx.commit().unwrap();
        }
    }

    #[test]
    fn metrics_counters_count_every_check_not_only_the_last_30_days() {
        let (d, mut store, run, mut st, _row) = setup(3);
        // Observed long before the 30-day window that ends at the wall clock's "now".
        feed(&mut store, &run, &mut st, "+-++-");
        let text = crate::soak::metrics::render(&d.path().join("s.db")).unwrap();
        assert!(
            text.contains("prodready_soak_checks_total{monitor=\"m\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("prodready_soak_check_failures_total{monitor=\"m\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn short_failure_streaks_stay_up_but_are_recorded() {
        let (_d, mut store, run, mut st, row) = setup(3);
        feed(&mut store, &run, &mut st, "+--++");
        let t = totals(&store.conn, &row, 0, 10_000).unwrap();
        assert_eq!((t.up_ms, t.down_ms, t.failures, t.checks), (4000, 0, 2, 5));
        let n: i64 = store
            .conn
            .query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn an_outage_starts_at_the_first_failure_of_the_streak() {
        let (_d, mut store, run, mut st, row) = setup(3);
        // up 0–1 s, failing 1–5 s (4 checks, threshold 3), up again at 5 s.
        feed(&mut store, &run, &mut st, "+----++");
        let t = totals(&store.conn, &row, 0, 60_000).unwrap();
        assert_eq!((t.up_ms, t.down_ms), (2000, 4000));
        let (start, end, failures, first): (i64, i64, i64, String) = store
            .conn
            .query_row(
                "SELECT start_ms, end_ms, failures, first_error FROM incidents",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((start, end, failures), (1000, 5000, 4));
        assert_eq!(first, "refused at 1000");
        let downs: i64 = store
            .conn
            .query_row("SELECT count(*) FROM samples WHERE state = 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(downs, 4, "the streak's samples are marked down too");
        // Exact edges: the first 1.5 s hold 1 s up and 0.5 s down.
        let e = totals(&store.conn, &row, 0, 1500).unwrap();
        assert_eq!((e.up_ms, e.down_ms), (1000, 500));
    }

    #[test]
    fn an_incident_open_when_the_tracker_died_ends_at_its_last_heartbeat() {
        let (_d, mut store, run, mut st, _row) = setup(1);
        feed(&mut store, &run, &mut st, "+--");
        let mut clock_run = run.clone();
        heartbeat(&store.conn, &Clock::default(), &mut clock_run).unwrap();
        let hb: i64 = store
            .conn
            .query_row(
                "SELECT heartbeat_at_ms FROM runs WHERE id = ?1",
                [run.id],
                |r| r.get(0),
            )
            .unwrap();
        let next = begin_run(&mut store.conn, &Clock::default(), "boot-a").unwrap();
        let mut again = MonitorState::new(st.id, 1, 2000);
        again.resume(&store.conn, &next).unwrap();
        assert!(!again.is_down());
        let end: Option<i64> = store
            .conn
            .query_row("SELECT end_ms FROM incidents", [], |r| r.get(0))
            .unwrap();
        assert_eq!(end, Some(hb.max(1000)));
    }

    #[test]
    fn pruning_old_samples_keeps_the_rollups_and_the_first_observation() {
        let (_d, mut store, run, mut st, row) = setup(1);
        // 10 minutes of checks every second, 2 minutes of them down.
        let pattern: String = (0..600)
            .map(|i| if (120..240).contains(&i) { '-' } else { '+' })
            .collect();
        feed(&mut store, &run, &mut st, &pattern);
        let before = totals(&store.conn, &row, 0, 600_000).unwrap();
        let first = crate::store::summary::first_observation(&store.conn, row.id).unwrap();
        assert_eq!(first, Some(0));
        let deleted = prune_samples(&store.conn, 300_000).unwrap();
        assert_eq!(deleted, 300);
        let after = totals(&store.conn, &row, 0, 600_000).unwrap();
        assert_eq!((after.up_ms, after.down_ms), (before.up_ms, before.down_ms));
        assert_eq!((after.up_ms, after.down_ms), (479_000, 120_000));
        let first = crate::store::summary::first_observation(&store.conn, row.id).unwrap();
        assert_eq!(
            first,
            Some(0),
            "the first observation survives in the rollups"
        );
    }

    #[test]
    fn a_gap_longer_than_the_maximum_span_is_unknown() {
        let (_d, mut store, run, mut st, row) = setup(1);
        for at in [0, 1000, 10_000, 11_000] {
            let tx = store.conn.transaction().unwrap();
            st.apply(&tx, &run, &sample(at, true)).unwrap();
            tx.commit().unwrap();
        }
        let t = totals(&store.conn, &row, 0, 60_000).unwrap();
        // 0→1 s: 1 s; 1→10 s: capped at 2 s; 10→11 s: 1 s; the last sample is still open.
        assert_eq!(t.up_ms, 4000);
    }
}

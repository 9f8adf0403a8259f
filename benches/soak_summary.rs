//! The 30-day summary over the soak store: a synthetic history of one monitor checked every
//! second for 30 days (2 592 000 samples, with outages and one tracker gap) is written through
//! the tracker's own write path, then summarised the way `soak-status`, `/metrics` and the
//! `uptime` probe do it (rollups + exact edges), and compared with a naive scan of the raw
//! samples. Also prints the store's size per day of history.
//!
//! Run: `cargo bench --bench soak_summary` (set `SOAK_BENCH_DAYS` for a shorter history).

use std::time::{Duration, Instant};

use prodready::soak::check::CheckResult;
use prodready::soak::tracker::{MonitorState, Sample, begin_run};
use prodready::store::Store;
use prodready::store::clock::Clock;
use prodready::store::summary::{summarize, timeline, totals};

fn main() {
    let days: i64 = std::env::var("SOAK_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("soak.db");
    let mut store = Store::open(&path).expect("store");
    let mut run = begin_run(&mut store.conn, &Clock::default(), "bench-boot").expect("run");
    let start = run.anchor_at_ms;
    run.anchor_mono_ms = 0;
    let id = store
        .upsert_monitor("broker-health", "http", 1000, 2000, 99.9)
        .expect("monitor");
    let mut st = MonitorState::new(id, 3, 2000);
    let n = days * 86_400;
    let t0 = Instant::now();
    let mut tx = store.conn.transaction().expect("tx");
    for i in 0..n {
        // A 90 s outage every 3 days; a 10-minute tracker gap on day 10 (no samples).
        let in_gap = (864_000..864_600).contains(&i);
        if in_gap {
            continue;
        }
        let ok = i % 259_200 >= 90;
        let s = Sample {
            monitor: 0,
            wall_ms: start + i * 1000,
            mono_ms: i * 1000,
            result: CheckResult {
                ok,
                latency: Duration::from_micros(900),
                error: (!ok)
                    .then(|| "GET http://127.0.0.1:18080/healthz: connection failed".into()),
                ops: 0,
                op_errors: 0,
            },
            maintenance: None,
        };
        st.apply(&tx, &run, &s).expect("apply");
        if i % 50_000 == 0 {
            tx.commit().expect("commit");
            tx = store.conn.transaction().expect("tx");
        }
    }
    tx.commit().expect("commit");
    let write = t0.elapsed();
    let _ = store.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    let samples: i64 = store
        .conn
        .query_row("SELECT count(*) FROM samples", [], |r| r.get(0))
        .expect("count");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "history: {days} days, {samples} samples written in {:.1} s ({:.1} µs/sample, one transaction per 50 000 here)",
        write.as_secs_f64(),
        write.as_secs_f64() * 1e6 / samples as f64
    );
    println!(
        "store: {:.1} MiB total, {:.2} MiB per day per 1 s monitor ({:.0} bytes per sample)",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / days as f64,
        bytes as f64 / samples as f64
    );

    let row = store.monitor("broker-health").expect("q").expect("row");
    let now = start + n * 1000;
    let window = days * 86_400_000;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..10 {
        let t = Instant::now();
        let s = summarize(&store, &row, window, now).expect("summary");
        times.push(t.elapsed());
        last = Some(s);
    }
    times.sort();
    let s = last.expect("ran");
    println!(
        "summary ({days} d window incl. burn rates, incidents, events): median {:.1} ms, max {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "  availability {:.4} %, coverage {:.4} %, down {:.1} min, unknown {:.1} min, {} incidents, budget used {:.1} %",
        s.availability.unwrap_or(0.0) * 100.0,
        s.coverage * 100.0,
        s.totals.down_ms as f64 / 60_000.0,
        s.unknown_ms as f64 / 60_000.0,
        s.incidents.len(),
        s.budget_used * 100.0
    );
    let t = Instant::now();
    let buckets = timeline(&store, &row, now - window, now, 120).expect("timeline");
    println!(
        "timeline chart data (120 buckets over {days} d): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(buckets.len(), 120);
    let t = Instant::now();
    let tot = totals(&store.conn, &row, now - window, now).expect("totals");
    let rollup = t.elapsed();
    let t = Instant::now();
    let naive: (i64, i64) = store
        .conn
        .query_row(
            "SELECT sum(CASE WHEN state = 1 THEN span_ms ELSE 0 END), sum(CASE WHEN state = 2 THEN span_ms ELSE 0 END) FROM samples WHERE monitor_id = ?1",
            [row.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("naive");
    let scan = t.elapsed();
    assert_eq!(
        (tot.up_ms, tot.down_ms),
        naive,
        "rollups agree with the raw samples"
    );
    println!(
        "totals only: rollups {:.2} ms vs raw-sample scan {:.1} ms ({:.0}× faster)",
        rollup.as_secs_f64() * 1e3,
        scan.as_secs_f64() * 1e3,
        scan.as_secs_f64() / rollup.as_secs_f64()
    );
}

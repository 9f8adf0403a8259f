//! Prometheus text exposition (format 0.0.4) of the paper broker's counters: orders by status,
//! an order-handling latency histogram (server side, injected faults included), open orders,
//! retained bytes and health.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::book::Counts;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS_S: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Debug, Default)]
pub(super) struct Metrics {
    buckets: [AtomicU64; BUCKETS_S.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
    invalid: AtomicU64,
    injected_errors: AtomicU64,
    shutdown_at: Mutex<Option<Instant>>,
}

impl Metrics {
    pub(super) fn observe_order(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, le) in BUCKETS_S.iter().enumerate() {
            if s <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(super) fn count_invalid(&self) {
        self.invalid.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_injected_error(&self) {
        self.injected_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn injected_errors(&self) -> u64 {
        self.injected_errors.load(Ordering::Relaxed)
    }

    pub(super) fn mark_shutdown(&self) {
        *self.shutdown_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    pub(super) fn shutdown_started(&self) -> Option<Instant> {
        *self.shutdown_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn render(&self, c: Counts, open: usize, retained: u64, healthy: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP prodready_paper_orders_total Order acknowledgements by status (cancellations and invalid requests too).\n# TYPE prodready_paper_orders_total counter"
        );
        for (status, n) in [
            ("accepted", c.accepted),
            ("filled", c.filled),
            ("rejected", c.rejected),
            ("cancelled", c.cancelled),
            ("invalid", self.invalid.load(Ordering::Relaxed)),
            ("error", self.injected_errors()),
        ] {
            let _ = writeln!(s, "prodready_paper_orders_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP prodready_paper_order_latency_seconds Time to handle POST /api/v1/orders, injected faults included.\n# TYPE prodready_paper_order_latency_seconds histogram"
        );
        for (i, le) in BUCKETS_S.iter().enumerate() {
            let _ = writeln!(
                s,
                "prodready_paper_order_latency_seconds_bucket{{le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "prodready_paper_order_latency_seconds_bucket{{le=\"+Inf\"}} {count}\nprodready_paper_order_latency_seconds_sum {}\nprodready_paper_order_latency_seconds_count {count}",
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(
            s,
            "# HELP prodready_paper_open_orders Resting limit orders.\n# TYPE prodready_paper_open_orders gauge\nprodready_paper_open_orders {open}"
        );
        let _ = writeln!(
            s,
            "# HELP prodready_paper_retained_bytes Memory retained by the --leak-per-order fault.\n# TYPE prodready_paper_retained_bytes gauge\nprodready_paper_retained_bytes {retained}"
        );
        let _ = writeln!(
            s,
            "# HELP prodready_paper_healthy 1 when /healthz answers 200.\n# TYPE prodready_paper_healthy gauge\nprodready_paper_healthy {}",
            u8::from(healthy)
        );
        s
    }
}

//! `GET /metrics` of the soak tracker: the Prometheus text exposition format 0.0.4. Every
//! scrape reads the store (a separate read connection on a blocking thread), so the numbers are
//! the same ones `soak-status` prints. The server itself is `status_page::serve`.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::summary::{summarize, timeline_now, totals};

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Render the metrics text for the store at `state`.
///
/// # Errors
/// When the store cannot be read.
pub fn render(state: &std::path::Path) -> Result<String> {
    let store = Store::open_read(state)?;
    let dbe = |e: rusqlite::Error| Error::Internal(format!("soak store: {e}"));
    let now = timeline_now(&store.conn, jiff::Timestamp::now().as_millisecond())
        .map_err(dbe)?
        .unwrap_or(0);
    let mut f = Families::default();
    for m in store.monitors().map_err(dbe)? {
        let l = escape(&m.name);
        for (label, w) in [
            ("1h", 3_600_000i64),
            ("24h", 86_400_000),
            ("30d", 2_592_000_000),
        ] {
            let s = summarize(&store, &m, w, now).map_err(dbe)?;
            f.add(&l, label, &s);
        }
        // Counters count from the store's start: a 30-day total would go down as old checks
        // age out, and Prometheus's rate() reads every decrease as a counter reset.
        let all = totals(&store.conn, &m, 0, now).map_err(dbe)?;
        f.add_counters(&l, &all);
    }
    Ok(f.text())
}

/// The samples of every metric family, one text per family.
#[derive(Default)]
struct Families {
    up: String,
    avail: String,
    cov: String,
    budget: String,
    err: String,
    checks: String,
    fails: String,
}

impl Families {
    /// Add one monitor's (`l`, escaped) summary over the window `label`; the 30-day window also
    /// gives the state, budget, error ratio and check counts.
    fn add(&mut self, l: &str, label: &str, s: &crate::store::summary::Summary) {
        if let Some(a) = s.availability {
            let _ = writeln!(
                self.avail,
                "prodready_soak_availability_ratio{{monitor=\"{l}\",window=\"{label}\"}} {a}"
            );
        }
        let _ = writeln!(
            self.cov,
            "prodready_soak_coverage_ratio{{monitor=\"{l}\",window=\"{label}\"}} {}",
            s.coverage
        );
        if label != "30d" {
            return;
        }
        let v = match s.last_state.as_deref() {
            Some("up") | Some("maintenance") => 1,
            _ => 0,
        };
        let _ = writeln!(self.up, "prodready_soak_up{{monitor=\"{l}\"}} {v}");
        let _ = writeln!(
            self.budget,
            "prodready_soak_error_budget_remaining_ratio{{monitor=\"{l}\"}} {}",
            1.0 - s.budget_used
        );
        if let Some(r) = s.error_rate {
            let _ = writeln!(
                self.err,
                "prodready_soak_order_error_ratio{{monitor=\"{l}\",window=\"30d\"}} {r}"
            );
        }
    }

    /// Add one monitor's (`l`, escaped) all-time check counters.
    fn add_counters(&mut self, l: &str, t: &crate::store::summary::Totals) {
        let _ = writeln!(
            self.checks,
            "prodready_soak_checks_total{{monitor=\"{l}\"}} {}",
            t.checks
        );
        let _ = writeln!(
            self.fails,
            "prodready_soak_check_failures_total{{monitor=\"{l}\"}} {}",
            t.failures
        );
    }

    /// The exposition text: each family's `# HELP` and `# TYPE` lines, then its samples.
    fn text(&self) -> String {
        let mut out = String::new();
        for (name, help, kind, body) in [
            (
                "prodready_soak_up",
                "1 when the monitor's last check left it up (or in maintenance), else 0.",
                "gauge",
                &self.up,
            ),
            (
                "prodready_soak_availability_ratio",
                "up / (up + down) over the window; unknown time is excluded, see coverage.",
                "gauge",
                &self.avail,
            ),
            (
                "prodready_soak_coverage_ratio",
                "(up + down) / (elapsed window − maintenance): the observed share of the window so far (since its start or the first observation).",
                "gauge",
                &self.cov,
            ),
            (
                "prodready_soak_error_budget_remaining_ratio",
                "1 − downtime / error budget over 30 days at the monitor's target.",
                "gauge",
                &self.budget,
            ),
            (
                "prodready_soak_order_error_ratio",
                "Failed operations / operations of order monitors.",
                "gauge",
                &self.err,
            ),
            (
                "prodready_soak_checks_total",
                "Checks run since the store began.",
                "counter",
                &self.checks,
            ),
            (
                "prodready_soak_check_failures_total",
                "Failed checks since the store began (including those below the down threshold).",
                "counter",
                &self.fails,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            out.push_str(body);
        }
        out
    }
}

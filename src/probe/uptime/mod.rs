//! The `uptime` probe: availability of one soak monitor over a window (default 30 days) read
//! from the store `prodready soak` writes, against a target (default 99.9 %), with coverage,
//! error budget, burn rate, incidents, maintenance, the error rate of synthetic orders and an
//! SVG timeline of up/down/maintenance/unknown. With `source = "prometheus"` the
//! same report (without coverage, incidents and maintenance, which PromQL does not know) comes
//! from a fleet's Prometheus (`uptime/prometheus.rs`); both sources fill one
//! [`Summary`] and share the judging below.
//!
//! Fail closed: a missing store, an unknown monitor or no samples is `error`; a window not yet
//! fully observed is `pending` (with days observed and the projected availability) unless the
//! downtime already exceeds the whole window's error budget, which no future can repair.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Status, Table};
use crate::store::Store;
use crate::store::summary::{self, Summary};
use crate::store::summary::{fmt_ms, fmt_pct, fmt_time};

mod evidence;
mod prometheus;

use evidence::attach_evidence;

/// Where the `uptime` probe reads availability from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UptimeSource {
    /// The SQLite store `prodready soak` writes on one host (`monitor`, `state`).
    #[default]
    Store,
    /// A Prometheus server (`url` and `series`, or `total` with `good` or `bad`).
    Prometheus,
}

/// `kind = "uptime"`: availability from the soak store or from Prometheus.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUptimeProbe {
    /// `store` (default) or `prometheus`.
    #[schemars(with = "Option<UptimeSource>")]
    pub source: Option<String>,
    /// Store: the monitor's name (its `[[monitor]] name`).
    pub monitor: Option<String>,
    /// Store: path of the soak store (`prodready soak --state`), relative to the checklist.
    pub state: Option<String>,
    /// The window (humantime). Default `"30d"`.
    pub window: Option<String>,
    /// Availability target in percent. Default 99.9 (an error budget of 43.2 min over 30 d).
    pub target: Option<f64>,
    /// Store: highest allowed failed-operation ratio of an `order` monitor (0.001 = 1 per
    /// 1 000). Default 0.001.
    pub max_error_rate: Option<f64>,
    /// Store: lowest allowed coverage (observed share of the window) in percent. Default 99.
    pub min_coverage: Option<f64>,
    /// Prometheus: the server's base URL, e.g. `http://127.0.0.1:9090`.
    pub url: Option<String>,
    /// Prometheus: a bearer token, e.g. `"${PROM_TOKEN}"` (redacted).
    pub bearer_token: Option<String>,
    /// Prometheus: HTTP basic auth; the password from `${VAR}`.
    pub basic_auth: Option<crate::probe::prometheus::api::RawBasicAuth>,
    /// Prometheus: a PEM file of extra trusted CA certificates, relative to the checklist.
    pub ca_file: Option<String>,
    /// Prometheus: request timeout (humantime). Default `"10s"`.
    pub timeout: Option<String>,
    /// Prometheus: a selector of 1-when-up / 0-when-down series, e.g.
    /// `probe_success{job="orders"}`; availability is the share of its samples that are 1.
    pub series: Option<String>,
    /// Prometheus: a selector of a counter of good events (with `total`).
    pub good: Option<String>,
    /// Prometheus: a selector of a counter of bad events (with `total`).
    pub bad: Option<String>,
    /// Prometheus: a selector of a counter of all events (with `good` or `bad`).
    pub total: Option<String>,
}

/// Where a validated probe reads.
#[derive(Debug, Clone)]
enum Source {
    Store { monitor: String, state: PathBuf },
    Prometheus(Box<prometheus::PromAvailability>),
}

/// A validated `uptime` probe.
#[derive(Debug, Clone)]
pub struct UptimeProbe {
    source: Source,
    window: Duration,
    target_percent: f64,
    max_error_rate: f64,
    min_coverage_percent: f64,
}

impl RawUptimeProbe {
    /// Validate: the store source needs `monitor` and `state`; the Prometheus source needs
    /// `url` and either `series` or `total` with `good` or `bad`, and takes no store keys.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(mut self, v: &mut Validator) -> Result<UptimeProbe, FieldError> {
        let kind: Option<UptimeSource> =
            crate::probe::prometheus::choice("source", self.source.take())?;
        let source = match kind.unwrap_or_default() {
            UptimeSource::Store => self.store_source(v)?,
            UptimeSource::Prometheus => {
                Source::Prometheus(Box::new(prometheus::validate(&mut self, v)?))
            }
        };
        let window = v.duration("window", self.window.as_deref().unwrap_or("30d"))?;
        if window < Duration::from_secs(1) {
            return Err(FieldError::new("window", "expected at least 1s"));
        }
        let target_percent = self.target.unwrap_or(99.9);
        if !(target_percent > 0.0 && target_percent < 100.0) {
            return Err(FieldError::new(
                "target",
                "expected a percentage above 0 and below 100, e.g. 99.9",
            ));
        }
        let max_error_rate = self.max_error_rate.unwrap_or(0.001);
        if !(0.0..=1.0).contains(&max_error_rate) {
            return Err(FieldError::new(
                "max_error_rate",
                "expected a ratio from 0 to 1, e.g. 0.001 for 0.1 %",
            ));
        }
        let min_coverage_percent = self.min_coverage.unwrap_or(99.0);
        if !(0.0..=100.0).contains(&min_coverage_percent) {
            return Err(FieldError::new(
                "min_coverage",
                "expected a percentage from 0 to 100",
            ));
        }
        Ok(UptimeProbe {
            source,
            window,
            target_percent,
            max_error_rate,
            min_coverage_percent,
        })
    }

    /// The store source: `monitor` and `state`, and none of the Prometheus keys.
    fn store_source(&self, v: &mut Validator) -> Result<Source, FieldError> {
        super::refuse_keys(
            &[
                ("url", self.url.is_some()),
                ("bearer_token", self.bearer_token.is_some()),
                ("basic_auth", self.basic_auth.is_some()),
                ("ca_file", self.ca_file.is_some()),
                ("timeout", self.timeout.is_some()),
                ("series", self.series.is_some()),
                ("good", self.good.is_some()),
                ("bad", self.bad.is_some()),
                ("total", self.total.is_some()),
            ],
            "applies to `source = \"prometheus\"` (this item reads the soak store)",
        )?;
        let monitor = match &self.monitor {
            Some(m) if !m.trim().is_empty() => m.clone(),
            _ => return Err(FieldError::new("monitor", "expected a monitor name")),
        };
        let Some(state) = &self.state else {
            return Err(FieldError::new(
                "state",
                "expected the soak store's path (`prodready soak --state`)",
            ));
        };
        let state = v.interpolate("state", state)?.value;
        Ok(Source::Store {
            monitor,
            state: PathBuf::from(state),
        })
    }
}

impl UptimeProbe {
    /// Read the source and judge the window.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        match &self.source {
            Source::Store { .. } => crate::probe::blocking(self, ctx, UptimeProbe::run_store).await,
            Source::Prometheus(p) => p.run(self, ctx).await,
        }
    }

    /// Read the store and judge the window.
    fn run_store(&self, ctx: &ProbeContext) -> ProbeOutput {
        let Source::Store { monitor, state } = &self.source else {
            return ProbeOutput::error("internal: not a store source");
        };
        let path = ctx.resolve(state);
        let store = match Store::open_read(&path) {
            Ok(s) => s,
            Err(e) => return ProbeOutput::error(e.to_string()),
        };
        let dbe =
            |e: rusqlite::Error| ProbeOutput::error(format!("soak store {}: {e}", path.display()));
        let mut row = match store.monitor(monitor) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let known = store
                    .monitors()
                    .map(|ms| {
                        ms.into_iter()
                            .map(|m| m.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                return ProbeOutput::error(format!(
                    "soak store {} has no monitor \"{}\" (it has: {})",
                    path.display(),
                    monitor,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known
                    }
                ));
            }
            Err(e) => return dbe(e),
        };
        row.target_percent = self.target_percent;
        let now = match summary::timeline_now(&store.conn, jiff::Timestamp::now().as_millisecond())
        {
            Ok(Some(n)) => n,
            Ok(None) => {
                return ProbeOutput::error(format!(
                    "soak store {} has no tracker runs",
                    path.display()
                ));
            }
            Err(e) => return dbe(e),
        };
        let window_ms = self.window.as_millis() as i64;
        let s = match summary::summarize(&store, &row, window_ms, now) {
            Ok(s) => s,
            Err(e) => return dbe(e),
        };
        let Some(first) = s.first_ms else {
            return ProbeOutput::error(format!(
                "monitor \"{}\" has no samples in {}",
                monitor,
                path.display()
            ));
        };
        let mut o = self.judge(&s, first);
        let buckets = summary::timeline(&store, &row, s.from_ms, s.to_ms, 120)
            .map_err(|e| format!("timeline: {e}"));
        attach_evidence(ctx, &mut o, &s, buckets);
        o
    }

    /// Whether the source knows the window's coverage (the store does; Prometheus does not
    /// know the scrape interval a gap would be measured against).
    fn measures_coverage(&self) -> bool {
        matches!(self.source, Source::Store { .. })
    }

    fn judge(&self, s: &Summary, first_ms: i64) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let t = &s.totals;
        let budget_left = s.budget_ms - t.down_ms as f64;
        let coverage = s.coverage;
        let observed = Observed::of(s, first_ms);
        measure_summary(&mut o, s, &observed, budget_left);
        if !self.measures_coverage() {
            o.measured.remove("coverage_percent");
        }
        let Some(avail) = s.availability else {
            o.forced = Some(Status::Error);
            o.summary = format!(
                "monitor \"{}\" observed no up or down time in the window",
                s.monitor
            );
            return o;
        };
        o.checks.push(Check::new(
            "availability",
            format!("≥ {} %", self.target_percent),
            format!(
                "{} (downtime {}, budget {} used of {})",
                fmt_pct(Some(avail)),
                fmt_ms(t.down_ms as f64),
                crate::units::format_percent(s.budget_used, 1),
                fmt_ms(s.budget_ms)
            ),
            avail * 100.0 >= self.target_percent,
        ));
        if self.measures_coverage() {
            o.checks.push(Check::new(
                "coverage",
                format!("≥ {} %", self.min_coverage_percent),
                format!(
                    "{} (unknown {})",
                    crate::units::format_percent(coverage, 2),
                    fmt_ms(s.unknown_ms as f64)
                ),
                coverage * 100.0 >= self.min_coverage_percent,
            ));
        }
        self.error_rate_check(&mut o, s);
        self.summarize(&mut o, s, avail, &observed, budget_left);
        detail_tables(&mut o, s);
        o
    }

    /// For order monitors: failed operations per 1 000 against `max_error_rate`.
    fn error_rate_check(&self, o: &mut ProbeOutput, s: &Summary) {
        let t = &s.totals;
        if s.kind == "order" || t.ops > 0 {
            let (measured, ok) = match s.error_rate {
                Some(r) => (
                    format!(
                        "{:.3} per 1000 operations ({} of {})",
                        r * 1000.0,
                        t.op_errors,
                        t.ops
                    ),
                    r <= self.max_error_rate,
                ),
                None => ("no operations recorded".to_string(), false),
            };
            o.checks.push(Check::new(
                "error rate",
                format!("≤ {} per 1000 operations", self.max_error_rate * 1000.0),
                measured,
                ok,
            ));
        }
    }

    /// The one-line summary: the window's figures when it is complete, else days observed,
    /// availability so far and the projection (`pending` while the budget is not spent).
    fn summarize(
        &self,
        o: &mut ProbeOutput,
        s: &Summary,
        avail: f64,
        w: &Observed,
        budget_left: f64,
    ) {
        let coverage = s.coverage;
        let (days_observed, window_days) = (w.days, w.window_days);
        let burn = s
            .burn_rates
            .iter()
            .map(|(l, b)| {
                format!(
                    "{l} {}",
                    b.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        if s.complete {
            o.summary = format!(
                "availability {} over {} (target {} %){}, {} incident(s), budget left {}; burn rate {burn}",
                fmt_pct(Some(avail)),
                fmt_ms(s.window_ms as f64),
                self.target_percent,
                if self.measures_coverage() {
                    format!(", coverage {}", crate::units::format_percent(coverage, 2))
                } else {
                    String::new()
                },
                s.incidents.len(),
                fmt_ms(budget_left)
            );
        } else {
            let projected = avail;
            o.measure("projected_availability_percent", projected * 100.0);
            o.summary = format!(
                "{days_observed:.1} of {window_days:.1} days observed; availability so far {}, projected {} at the end of the window (target {} %); budget left {}",
                fmt_pct(Some(avail)),
                fmt_pct(Some(projected)),
                self.target_percent,
                fmt_ms(budget_left)
            );
            if budget_left >= 0.0 {
                o.forced = Some(Status::Pending);
            } else {
                o.summary
                    .push_str(" — the whole window's error budget is already spent");
            }
        }
    }
}

/// How much of the window the store has observed.
struct Observed {
    /// Days from the window's start (or the first observation) to now.
    days: f64,
    /// The window, days.
    window_days: f64,
}

impl Observed {
    fn of(s: &Summary, first_ms: i64) -> Observed {
        let span = (s.to_ms - first_ms.max(s.from_ms)).max(1);
        Observed {
            days: span as f64 / 86_400_000.0,
            window_days: s.window_ms as f64 / 86_400_000.0,
        }
    }
}

/// The summary's figures for machines.
fn measure_summary(o: &mut ProbeOutput, s: &Summary, w: &Observed, budget_left: f64) {
    let t = &s.totals;
    let coverage = s.coverage;
    let (days_observed, window_days) = (w.days, w.window_days);
    o.measure("availability_percent", s.availability.map(|a| a * 100.0));
    o.measure("coverage_percent", coverage * 100.0);
    o.measure("window_progress_percent", s.window_progress * 100.0);
    o.measure("up_ms", t.up_ms);
    o.measure("downtime_ms", t.down_ms);
    o.measure("unknown_ms", s.unknown_ms);
    o.measure("maintenance_ms", t.maint_ms);
    o.measure("error_budget_ms", s.budget_ms);
    o.measure("error_budget_used_percent", s.budget_used * 100.0);
    o.measure("error_budget_left_ms", budget_left);
    for (label, b) in &s.burn_rates {
        o.measure(&format!("burn_rate_{label}"), *b);
    }
    o.measure("operations", t.ops);
    o.measure("operation_errors", t.op_errors);
    o.measure(
        "errors_per_1000_operations",
        s.error_rate.map(|r| r * 1000.0),
    );
    o.measure("incidents", s.incidents.len());
    o.measure("days_observed", days_observed);
    o.measure("window_days", window_days);
    o.measure("window_complete", s.complete);
}

/// Incidents, maintenance and tracker events, one table each when there are any.
fn detail_tables(o: &mut ProbeOutput, s: &Summary) {
    let t = &s.totals;
    if !s.incidents.is_empty() {
        o.tables.push(Table {
            title: format!("Incidents of {}", s.monitor),
            columns: ["start", "end", "duration", "failed checks", "first error"]
                .map(String::from)
                .to_vec(),
            rows: s
                .incidents
                .iter()
                .map(|i| {
                    vec![
                        fmt_time(i.start_ms),
                        i.end_ms.map(fmt_time).unwrap_or_else(|| "ongoing".into()),
                        fmt_ms((i.end_ms.unwrap_or(s.to_ms) - i.start_ms) as f64),
                        i.failures.to_string(),
                        i.first_error.chars().take(200).collect(),
                    ]
                })
                .collect(),
        });
    }
    if !s.maintenance.is_empty() {
        o.tables.push(Table {
            title: format!(
                "Maintenance excluded for {} (total {})",
                s.monitor,
                fmt_ms(t.maint_ms as f64)
            ),
            columns: ["start", "end", "reason"].map(String::from).to_vec(),
            rows: s
                .maintenance
                .iter()
                .map(|m| {
                    vec![
                        fmt_time(m.start_ms),
                        m.end_ms.map(fmt_time).unwrap_or_else(|| "ongoing".into()),
                        m.reason.clone(),
                    ]
                })
                .collect(),
        });
    }
    if !s.events.is_empty() {
        o.tables.push(Table {
            title: "Tracker gaps, reboots and wall-clock steps".into(),
            columns: ["at", "event", "detail"].map(String::from).to_vec(),
            rows: s
                .events
                .iter()
                .map(|e| vec![fmt_time(e.at_ms), e.kind.clone(), e.detail.clone()])
                .collect(),
        });
    }
}

crate::probe::probe_kind!(UptimeProbe, RawUptimeProbe, async);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clock::Clock;
    use std::sync::Arc;

    /// A store whose monitor has `days` of history ending now, `down_min` minutes of it down.
    fn store_with(dir: &std::path::Path, days: i64, down_min: i64) {
        let mut store = Store::open(&dir.join("soak.db")).unwrap();
        // A tracker run anchored now, written as the tracker writes its first row (the probe
        // reads the store; it does not depend on the tracker that fills it).
        let now = Clock::default().wall_ms();
        store
            .conn
            .execute(
                "INSERT INTO runs (boot_id, pid, version, started_wall_ms, started_mono_ms,
                   anchor_at_ms, anchor_mono_ms, heartbeat_wall_ms, heartbeat_mono_ms, heartbeat_at_ms)
                 VALUES ('b', 1, 'test', ?1, 0, ?1, 0, ?1, 0, ?1)",
                [now],
            )
            .unwrap();
        let run_id = store.conn.last_insert_rowid();
        let id = store
            .upsert_monitor("web", "http", 1000, 2000, 99.9)
            .unwrap();
        let first_minute = (now - days * 86_400_000).div_euclid(60_000);
        let tx = store.conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO samples (monitor_id, run_id, at_ms, wall_ms, mono_ms, span_ms, ok, state, latency_us)
             VALUES (?1, ?2, ?3, ?3, 0, 0, 1, 1, 1)",
            rusqlite::params![id, run_id, first_minute * 60_000],
        )
        .unwrap();
        let last_minute = now.div_euclid(60_000);
        for minute in first_minute..last_minute {
            // The most recent minutes are the outage, so it lies inside the window.
            let down = minute >= last_minute - down_min;
            tx.execute(
                "INSERT INTO minutes (monitor_id, minute, up_ms, down_ms, checks, failures) VALUES (?1, ?2, ?3, ?4, 60, ?5)",
                rusqlite::params![id, minute, if down { 0 } else { 60_000 }, if down { 60_000 } else { 0 }, if down { 60 } else { 0 }],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    fn run_probe(dir: &std::path::Path) -> ProbeOutput {
        let probe: RawUptimeProbe =
            toml::from_str("monitor = \"web\"\nstate = \"soak.db\"").unwrap();
        let probe = probe.validate(&mut Validator::default()).unwrap();
        let ctx = ProbeContext::outside_run(
            "uptime",
            dir.to_path_buf(),
            dir.join("report"),
            Arc::default(),
            Default::default(),
        );
        probe.run_store(&ctx)
    }

    #[test]
    fn forty_minutes_down_in_thirty_days_fits_the_43_minute_budget() {
        let dir = tempfile::tempdir().unwrap();
        store_with(dir.path(), 31, 40);
        let o = run_probe(dir.path());
        assert_eq!(o.status(), Status::Pass, "{}: {:?}", o.summary, o.checks);
        let budget = o.measured["error_budget_ms"].as_f64().unwrap();
        assert!((budget - 43.2 * 60_000.0).abs() < 1.0, "{budget}");
        assert_eq!(o.measured["downtime_ms"], 40 * 60_000);
        assert!(o.evidence.iter().any(|e| e.media_type == "image/svg+xml"));
    }

    #[test]
    fn fifty_minutes_down_fails_and_a_young_store_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        store_with(dir.path(), 31, 50);
        assert_eq!(run_probe(dir.path()).status(), Status::Fail);
        let young = tempfile::tempdir().unwrap();
        store_with(young.path(), 12, 5);
        let o = run_probe(young.path());
        assert_eq!(o.status(), Status::Pending, "{}", o.summary);
        assert!(
            o.summary.contains("12.0 of 30.0 days observed"),
            "{}",
            o.summary
        );
        // Coverage is of the elapsed part (all of it observed); progress is of the window.
        let pct = |k: &str| o.measured[k].as_f64().unwrap();
        assert!(
            pct("coverage_percent") > 99.9,
            "{}",
            pct("coverage_percent")
        );
        assert!((pct("window_progress_percent") - 40.0).abs() < 0.1);
        // More downtime than the whole window allows: no future can repair it.
        let doomed = tempfile::tempdir().unwrap();
        store_with(doomed.path(), 12, 60);
        assert_eq!(run_probe(doomed.path()).status(), Status::Fail);
    }
}

//! What a `latency` run shows: the measured values for machines, the tables for people
//! (latency percentiles, the load generator, errors by kind) and the evidence files (`.hlog`,
//! `.hgrm`, the percentile chart), with the formatting of the figures they share.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::chart;
use super::config::LatencyProbe;
use super::load::{LoadResult, Stall, Wire};
use super::record::{self, Recorder};
use super::verdict::{Lateness, Rates, value_us};
use crate::model::{ProbeOutput, Table};
use crate::probe::ProbeContext;
use crate::units::format_duration;

/// The rows of the percentile table and of the measured values: label, key, quantile (`None`:
/// the mean; 1.0: the maximum).
const ROWS: [(&str, &str, Option<f64>); 7] = [
    ("mean", "mean", None),
    ("p50", "p50", Some(0.5)),
    ("p90", "p90", Some(0.9)),
    ("p99", "p99", Some(0.99)),
    ("p99.9", "p999", Some(0.999)),
    ("p99.99", "p9999", Some(0.9999)),
    ("max", "max", Some(1.0)),
];

/// µs as ms.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A duration of `us` µs, for people.
pub(super) fn fmt_us(us: f64) -> String {
    format_duration(Duration::from_nanos((us * 1000.0) as u64))
}

/// The p99 of `h` as text, "n/a" when empty.
pub(super) fn p99_text(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        "n/a".into()
    } else {
        fmt_us(h.value_at_quantile(0.99) as f64)
    }
}

/// A fraction as a percentage, for people.
pub(super) fn percent(fraction: f64) -> String {
    crate::units::format_percent(fraction, 3)
}

/// `: timeout 3, status 1`: the errors by kind, empty without errors.
pub(super) fn error_breakdown(r: &LoadResult) -> String {
    let parts: Vec<String> = r
        .error_kinds
        .iter()
        .filter_map(|k| {
            r.errors
                .get(k)
                .filter(|n| **n > 0)
                .map(|n| format!("{} {n}", k.as_str()))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

/// Errors by kind with the first example of each (redacted).
pub(super) fn error_table(ctx: &ProbeContext, r: &LoadResult) -> Table {
    Table {
        title: "Errors by kind".into(),
        columns: vec!["kind".into(), "count".into(), "first example".into()],
        rows: r
            .error_kinds
            .iter()
            .filter_map(|k| {
                let n = r.errors.get(k).copied().unwrap_or(0);
                (n > 0).then(|| {
                    vec![
                        k.as_str().to_string(),
                        n.to_string(),
                        ctx.redactor
                            .redact(r.first_error.get(k).map(String::as_str).unwrap_or("")),
                    ]
                })
            })
            .collect(),
    }
}

/// The latency percentiles: corrected, the target's part, uncorrected and schedule lag.
pub(super) fn percentile_table(r: &LoadResult) -> Table {
    let h = &r.recorder.corrected;
    let u = &r.recorder.uncorrected;
    let lag = &r.recorder.lag;
    let target = &r.recorder.target;
    let cell = |hist: &Histogram<u64>, q: Option<f64>| {
        if hist.is_empty() {
            "—".to_string()
        } else {
            fmt_us(value_us(hist, q))
        }
    };
    Table {
        title: "Latency percentiles".into(),
        columns: vec![
            "".into(),
            "corrected (from intended send)".into(),
            "the target's part (corrected less the generator's own lag)".into(),
            "uncorrected (from actual send)".into(),
            "schedule lag".into(),
        ],
        rows: ROWS
            .iter()
            .map(|(label, _, q)| {
                vec![
                    label.to_string(),
                    cell(h, *q),
                    cell(target, *q),
                    cell(u, *q),
                    cell(lag, *q),
                ]
            })
            .chain(std::iter::once(vec![
                "count".into(),
                h.len().to_string(),
                target.len().to_string(),
                u.len().to_string(),
                lag.len().to_string(),
            ]))
            .collect(),
    }
}

impl LatencyProbe {
    /// Counts, rates, percentiles (corrected and uncorrected) and schedule lag for machines.
    pub(super) fn measure(&self, o: &mut ProbeOutput, r: &LoadResult, rt: &Rates) {
        let p = &self.plan;
        let (h, u) = (&r.recorder.corrected, &r.recorder.uncorrected);
        let Rates {
            errors,
            error_rate,
            achieved,
            sustained,
        } = *rt;
        o.measure("requests", r.attempted);
        o.measure("responses", r.responded);
        o.measure("ok", r.ok);
        o.measure("errors", errors);
        for k in self.plan.wire.error_kinds() {
            o.measure(
                &format!("errors_{}", k.as_str()),
                r.errors.get(&k).copied().unwrap_or(0),
            );
        }
        o.measure("error_rate", error_rate);
        o.measure("rate_requested_per_s", p.rate_per_s);
        o.measure("rate_achieved_per_s", achieved);
        o.measure("connections", p.connections as u64);
        o.measure("warmup_requests", p.warmup_requests);
        o.measure("sustained", sustained);
        for (_, key, q) in ROWS {
            if !h.is_empty() {
                o.measure(&format!("{key}_ms"), value_us(h, q) / 1000.0);
                o.measure(&format!("uncorrected_{key}_ms"), value_us(u, q) / 1000.0);
                let target = &r.recorder.target;
                o.measure(&format!("target_{key}_ms"), value_us(target, q) / 1000.0);
            }
        }
        if !r.recorder.lag.is_empty() {
            let lag = &r.recorder.lag;
            o.measure("schedule_lag_p50_ms", ms(lag.value_at_quantile(0.5)));
            o.measure("schedule_lag_p99_ms", ms(lag.value_at_quantile(0.99)));
            o.measure("schedule_lag_max_ms", ms(lag.max()));
        }
        self.measure_generator(o, r);
    }

    /// The generator's own figures: threads, generator lag, connection set-up, timer wakes and
    /// CPU per request.
    fn measure_generator(&self, o: &mut ProbeOutput, r: &LoadResult) {
        let rec = &r.recorder;
        o.measure("threads", r.threads as u64);
        o.measure("connections_auto", self.auto_connections);
        o.measure("threads_auto", self.auto_threads);
        if !rec.generator_lag.is_empty() {
            let g = &rec.generator_lag;
            o.measure("generator_lag_p50_ms", ms(g.value_at_quantile(0.5)));
            o.measure("generator_lag_p99_ms", ms(g.value_at_quantile(0.99)));
            o.measure("generator_lag_max_ms", ms(g.max()));
        }
        if !rec.runtime_lag.is_empty() {
            let g = &rec.runtime_lag;
            o.measure("runtime_lag_p50_ms", ms(g.value_at_quantile(0.5)));
            o.measure("runtime_lag_p99_ms", ms(g.value_at_quantile(0.99)));
            o.measure("runtime_lag_max_ms", ms(g.max()));
        }
        if let Some(bound) = self.max_generator_lag {
            o.measure("max_generator_lag_ms", bound.as_secs_f64() * 1e3);
        }
        if !rec.generator_lag.is_empty() {
            let l = Lateness::of(rec);
            o.measure("lateness_generator_share", l.generator_share());
            o.measure("connection_wait_mean_ms", l.wait_mean_us / 1e3);
            o.measure("generator_lag_mean_ms", l.own_mean_us / 1e3);
        }
        o.measure("connects", r.connects);
        if !matches!(self.plan.wire, Wire::Http(_)) {
            o.measure("messages_ignored", r.ignored);
            o.measure("answers_unmatched", r.unmatched);
        }
        if !rec.connect.is_empty() {
            o.measure("connect_p50_ms", ms(rec.connect.value_at_quantile(0.5)));
            o.measure("connect_max_ms", ms(rec.connect.max()));
        }
        o.measure("timer_wakes", r.timer_wakes);
        o.measure("timer_quantum_us", self.plan.coalesce_ns as f64 / 1e3);
        let sent = r.attempted + self.plan.warmup_requests;
        if sent > 0 {
            o.measure(
                "generator_cpu_us_per_request",
                r.cpu.as_secs_f64() * 1e6 / sent as f64,
            );
        }
    }

    /// How the generator ran: its chosen sizes, its own lateness, connection set-up and cost.
    pub(super) fn generator_table(&self, r: &LoadResult, stall: Option<Stall>) -> Table {
        let rec = &r.recorder;
        let sent = r.attempted + self.plan.warmup_requests;
        let row = |a: &str, b: String| vec![a.to_string(), b];
        Table {
            title: "Load generator".into(),
            columns: vec!["".into(), "value".into()],
            rows: vec![
                row(
                    "threads",
                    format!("{} ({})", r.threads, chosen(self.auto_threads)),
                ),
                row(
                    "connections",
                    format!(
                        "{} ({})",
                        self.plan.connections,
                        chosen(self.auto_connections)
                    ),
                ),
                row(
                    "own lag, sends on a free connection",
                    hist(&rec.generator_lag),
                ),
                row("own lag, runtime (heartbeat)", hist(&rec.runtime_lag)),
                row("lateness split", lateness_split(rec)),
                row(
                    "bound on own lag at p99",
                    self.max_generator_lag.map_or_else(
                        || "none: a failure is attributed request by request".to_string(),
                        format_duration,
                    ),
                ),
                row(
                    "connection set-up",
                    format!("{} connections; {}", r.connects, hist(&rec.connect)),
                ),
                row("timer coalescing", coalescing(self.plan.coalesce_ns)),
                row(
                    "timer wakes",
                    format!(
                        "{} ({:.2} per request)",
                        r.timer_wakes,
                        r.timer_wakes as f64 / sent.max(1) as f64
                    ),
                ),
                row(
                    "CPU per request",
                    format!("{:.1} µs", r.cpu.as_secs_f64() * 1e6 / sent.max(1) as f64),
                ),
            ]
            .into_iter()
            .chain(stall.map(|s| {
                row(
                    "stall injected",
                    format!(
                        "{} before every {}th send ({})",
                        format_duration(s.pause),
                        s.every,
                        Stall::ENV
                    ),
                )
            }))
            .collect(),
        }
    }

    /// Write the evidence files: the interval log, the percentile files (corrected and
    /// uncorrected) and the percentile chart.
    pub(super) fn evidence(&self, ctx: &ProbeContext, r: &LoadResult, o: &mut ProbeOutput) {
        let h = &r.recorder.corrected;
        if h.is_empty() {
            return;
        }
        let comments = [
            format!(
                "prodready latency probe: {} at {}/s, {} connections; values in microseconds",
                self.shown(), self.plan.rate_per_s, self.plan.connections
            ),
            "untagged intervals: latency from the intended send time (coordinated omission corrected); Tag=uncorrected: from the actual send time".to_string(),
        ];
        let comments: Vec<String> = comments.iter().map(|c| ctx.redactor.redact(c)).collect();
        let mut files: Vec<(String, Vec<u8>, &str, &str)> = Vec::new();
        match r.recorder.interval_log(r.base_wall, &comments) {
            Ok(bytes) => files.push((
                "latency.hlog".into(),
                bytes,
                "latency interval log (HdrHistogram, V2+DEFLATE)",
                "text/plain",
            )),
            Err(e) => o.log_tail = Some(e),
        }
        files.push((
            "latency.hgrm".into(),
            record::percentile_text(h).into_bytes(),
            "latency percentiles, corrected (HdrHistogram .hgrm, ms)",
            "text/plain",
        ));
        files.push((
            "latency-uncorrected.hgrm".into(),
            record::percentile_text(&r.recorder.uncorrected).into_bytes(),
            "latency percentiles, uncorrected (HdrHistogram .hgrm, ms)",
            "text/plain",
        ));
        match chart::render(
            &format!("Latency by percentile at {}/s", self.plan.rate_per_s),
            h,
            &r.recorder.uncorrected,
        ) {
            Ok(svg) => files.push((
                "latency-percentiles.svg".into(),
                svg.into_bytes(),
                "latency by percentile (corrected vs uncorrected)",
                "image/svg+xml",
            )),
            Err(e) => o.log_tail = Some(format!("chart: {e}")),
        }
        for (name, bytes, label, media) in files {
            match ctx.write_evidence(&name, &bytes, label, media) {
                Ok(ev) => o.evidence.push(ev),
                Err(e) => o.log_tail = Some(e),
            }
        }
    }
}

/// `connections` and `threads`: chosen by the probe, or set.
fn chosen(auto: bool) -> &'static str {
    if auto {
        "chosen from the rate and cores"
    } else {
        "set"
    }
}

/// `p50 …, p99 …, max …` of `h`; "—" when empty.
fn hist(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        "—".to_string()
    } else {
        format!(
            "p50 {}, p99 {}, max {}",
            fmt_us(h.value_at_quantile(0.5) as f64),
            fmt_us(h.value_at_quantile(0.99) as f64),
            fmt_us(h.max() as f64)
        )
    }
}

/// How the sends' lateness split between the generator and the target; "—" without samples.
fn lateness_split(rec: &Recorder) -> String {
    let l = Lateness::of(rec);
    if rec.generator_lag.is_empty() {
        "—".to_string()
    } else {
        format!(
            "{:.0} % the generator's own (mean {}), {:.0} % waiting for a busy connection (mean {}, the target's)",
            l.generator_share() * 100.0,
            fmt_us(l.own_mean_us),
            (1.0 - l.generator_share()) * 100.0,
            fmt_us(l.wait_mean_us)
        )
    }
}

/// The timer coalescing quantum `coalesce_ns`, for people.
fn coalescing(coalesce_ns: u64) -> String {
    if coalesce_ns == 0 {
        "none: every send wakes on time".to_string()
    } else {
        format!(
            "{} quantum: sends due within it share one wake and leave up to that late",
            format_duration(Duration::from_nanos(coalesce_ns))
        )
    }
}

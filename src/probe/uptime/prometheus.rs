//! `source = "prometheus"`: the uptime item for a fleet, read from the Prometheus that already
//! scrapes it, with the same report as the soak store ([`Summary`] and the parent's judge).
//!
//! Availability over a window W is PromQL over W: with `series` (1 when up, 0 when down, e.g.
//! blackbox_exporter's `probe_success`), the share of samples that are 1,
//! `sum(sum_over_time(S[W])) / sum(count_over_time(S[W]))` (every target's samples pooled); with
//! counters, `sum(increase(good[W])) / sum(increase(total[W]))` or one minus the bad share. The
//! same expression over 1 h, 6 h and 3 d gives the burn rates; over each 1/120 of the window,
//! the timeline. The window is complete when the oldest sample, found with
//! `min(min_over_time(timestamp(S)[W:R]))` at a resolution R of W/10 000 (at least 1 s), and
//! every second over the last 2 R for younger history, is no later than the window's start
//! plus R; before that the item is `pending`, and missing history is never counted as up. Up and down time are time-equivalents: availability ×
//! observed time, and the rest.

use std::collections::BTreeMap;
use std::time::Duration;

use super::evidence::attach_evidence;
use super::{RawUptimeProbe, UptimeProbe};
use crate::model::{ProbeOutput, Table};
use crate::probe::prometheus::api::{QueryData, RawServer, Server, promql_duration};
use crate::probe::{FieldError, ProbeContext, Validator};
use crate::store::summary::{Bucket, Summary, Totals};

/// What the availability is computed from.
#[derive(Debug, Clone)]
enum Form {
    /// A 0/1 series selector.
    Samples(String),
    /// Counter selectors: good (or bad) events and all events.
    Counters {
        good: Option<String>,
        bad: Option<String>,
        total: String,
    },
}

/// A validated Prometheus availability source.
#[derive(Debug, Clone)]
pub struct PromAvailability {
    server: Server,
    form: Form,
}

/// Take the Prometheus keys out of the raw table; the store's keys are errors here.
///
/// # Errors
/// A [`FieldError`] naming the key.
pub fn validate(
    raw: &mut RawUptimeProbe,
    v: &mut Validator,
) -> Result<PromAvailability, FieldError> {
    crate::probe::refuse_keys(
        &[
            ("monitor", raw.monitor.is_some()),
            ("state", raw.state.is_some()),
            ("max_error_rate", raw.max_error_rate.is_some()),
            ("min_coverage", raw.min_coverage.is_some()),
        ],
        "applies to the soak store, not to `source = \"prometheus\"`",
    )?;
    let server = RawServer {
        url: raw.url.take(),
        bearer_token: raw.bearer_token.take(),
        basic_auth: raw.basic_auth.take(),
        ca_file: raw.ca_file.take(),
        timeout: raw.timeout.take(),
    }
    .validate(v)?;
    let mut text = |key: &str, s: Option<String>| -> Result<Option<String>, FieldError> {
        match s {
            Some(s) if s.trim().is_empty() => {
                Err(FieldError::new(key, "expected a PromQL series selector"))
            }
            Some(s) => Ok(Some(v.interpolate(key, &s)?.value)),
            None => Ok(None),
        }
    };
    let series = text("series", raw.series.take())?;
    let good = text("good", raw.good.take())?;
    let bad = text("bad", raw.bad.take())?;
    let total = text("total", raw.total.take())?;
    let form = match (series, total) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "total",
                "expected either `series` or `total` with `good` or `bad`, not both",
            ));
        }
        (Some(s), None) => {
            if good.is_some() || bad.is_some() {
                let key = if good.is_some() { "good" } else { "bad" };
                return Err(FieldError::new(key, "applies with `total`, not `series`"));
            }
            Form::Samples(s)
        }
        (None, Some(total)) => match (&good, &bad) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new("bad", "expected `good` or `bad`, not both"));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "good",
                    "expected a counter of good events (`good`) or of bad events (`bad`) with `total`",
                ));
            }
            _ => Form::Counters { good, bad, total },
        },
        (None, None) => {
            return Err(FieldError::new(
                "series",
                "expected `series` (a 0/1 selector such as probe_success{job=\"orders\"}) or `total` with `good` or `bad` (counter selectors)",
            ));
        }
    };
    Ok(PromAvailability { server, form })
}

impl Form {
    /// The availability over `w` as a PromQL expression.
    fn availability(&self, w: &str) -> String {
        match self {
            Form::Samples(s) => {
                format!("sum(sum_over_time({s}[{w}])) / sum(count_over_time({s}[{w}]))")
            }
            Form::Counters {
                good: Some(g),
                total,
                ..
            } => format!("sum(increase({g}[{w}])) / sum(increase({total}[{w}]))"),
            Form::Counters { bad, total, .. } => format!(
                "1 - sum(increase({}[{w}])) / sum(increase({total}[{w}]))",
                bad.as_deref().unwrap_or_default()
            ),
        }
    }

    /// The selector whose oldest sample dates the data.
    fn dated(&self) -> &str {
        match self {
            Form::Samples(s) => s,
            Form::Counters { total, .. } => total,
        }
    }
}

/// One number from an instant query: `None` for an empty vector.
///
/// # Errors
/// The API's message, a non-vector result, several series, or NaN / infinity (0 / 0).
async fn one_number(
    server: &Server,
    ctx: &ProbeContext,
    expr: &str,
    time: f64,
) -> Result<Option<f64>, String> {
    let series = match server.query(ctx, expr, Some(time)).await? {
        QueryData::Vector(v) => v,
        other => {
            return Err(format!(
                "query `{expr}`: expected a vector, got a {}",
                other.kind()
            ));
        }
    };
    match series.len() {
        0 => Ok(None),
        1 => {
            let s = series
                .into_iter()
                .next()
                .map(|s| s.numeric())
                .transpose()
                .map_err(|e| format!("query `{expr}`: {e}"))?;
            Ok(s.and_then(|s| s.points.first().map(|p| p.1)))
        }
        n => Err(format!(
            "query `{expr}`: expected one series, got {n} (aggregate with sum())"
        )),
    }
}

impl PromAvailability {
    /// Query availability, the oldest sample and the burn rates, then judge as the store does.
    pub async fn run(&self, probe: &UptimeProbe, ctx: &ProbeContext) -> ProbeOutput {
        match self.summary(probe, ctx).await {
            Ok((s, queries)) => {
                let first = s.first_ms.unwrap_or(s.to_ms);
                let mut o = probe.judge(&s, first);
                let mut queries = queries;
                for cell in queries.rows.iter_mut().flatten() {
                    *cell = ctx.redactor.redact(cell);
                }
                o.tables.push(queries);
                let buckets = self.timeline(ctx, &s).await;
                attach_evidence(ctx, &mut o, &s, buckets);
                o
            }
            Err(e) => ProbeOutput::error(ctx.redactor.redact(&e)),
        }
    }

    /// The window's [`Summary`] and the table of the queries behind it.
    ///
    /// # Errors
    /// A query's error; no samples in the window.
    async fn summary(
        &self,
        probe: &UptimeProbe,
        ctx: &ProbeContext,
    ) -> Result<(Summary, Table), String> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let time = now_ms as f64 / 1e3;
        let window_ms = probe.window.as_millis() as i64;
        let w = promql_duration(probe.window);
        let resolution = Duration::from_millis((window_ms as u64 / 10_000).max(1_000));
        let mut queries = Table {
            title: format!("PromQL behind the figures (on {})", self.server.shown()),
            columns: vec!["figure".into(), "PromQL".into()],
            rows: Vec::new(),
        };
        let avail_q = self.form.availability(&w);
        queries
            .rows
            .push(vec![format!("availability over {w}"), avail_q.clone()]);
        let no_data = || {
            format!(
                "no samples of `{}` on {} in the last {} (missing history is not uptime)",
                self.form.dated(),
                self.server.shown(),
                crate::units::format_duration(probe.window)
            )
        };
        let avail = one_number(&self.server, ctx, &avail_q, time)
            .await?
            .ok_or_else(no_data)?;
        let oldest_s = self
            .oldest(ctx, probe.window, resolution, time, &mut queries)
            .await?
            .ok_or_else(no_data)?;
        let allowed = 1.0 - probe.target_percent / 100.0;
        let burn_rates = self.burn_rates(ctx, time, allowed, &mut queries).await?;
        let from_ms = now_ms - window_ms;
        let first_ms = (oldest_s * 1e3).round() as i64;
        let observed_from = first_ms.max(from_ms);
        let elapsed = (now_ms - observed_from).clamp(0, window_ms);
        let up_ms = (avail.clamp(0.0, 1.0) * elapsed as f64).round() as i64;
        let totals = Totals {
            up_ms,
            down_ms: elapsed - up_ms,
            ..Totals::default()
        };
        let budget_ms = allowed * window_ms as f64;
        let s = Summary {
            monitor: ctx.redactor.redact(self.form.dated()),
            kind: "prometheus".into(),
            from_ms,
            to_ms: now_ms,
            window_ms,
            totals,
            unknown_ms: 0,
            unobserved_ms: observed_from - from_ms,
            first_ms: Some(first_ms),
            last_ms: None,
            last_state: None,
            availability: Some(avail),
            // Not known from PromQL: serialized as null.
            coverage: f64::NAN,
            window_progress: elapsed as f64 / window_ms.max(1) as f64,
            target_percent: probe.target_percent,
            budget_ms,
            budget_used: totals.down_ms as f64 / budget_ms,
            burn_rates,
            error_rate: None,
            incidents: Vec::new(),
            maintenance: Vec::new(),
            events: Vec::new(),
            complete: first_ms <= from_ms + resolution.as_millis() as i64,
            projected: Some(avail),
        };
        Ok((s, queries))
    }

    /// The burn rates over 1 h, 6 h and 3 d before `time` (unix s): the unavailability over
    /// each as a multiple of the `allowed` one; their queries added to `queries`.
    ///
    /// # Errors
    /// A query's error.
    async fn burn_rates(
        &self,
        ctx: &ProbeContext,
        time: f64,
        allowed: f64,
        queries: &mut Table,
    ) -> Result<Vec<(String, Option<f64>)>, String> {
        let mut burn_rates = Vec::new();
        for (label, d) in [("1h", 3_600), ("6h", 21_600), ("3d", 259_200)] {
            let q = self
                .form
                .availability(&promql_duration(Duration::from_secs(d)));
            let a = one_number(&self.server, ctx, &q, time).await?;
            queries
                .rows
                .push(vec![format!("availability over {label}"), q]);
            burn_rates.push((label.to_string(), a.map(|a| (1.0 - a) / allowed)));
        }
        Ok(burn_rates)
    }

    /// The oldest sample of the dated selector within `window` before `time` (unix s).
    /// The coarse subquery dates history to within `resolution` R; history younger than R
    /// falls between its aligned steps, so the last 2 R are also read every second.
    ///
    /// # Errors
    /// A query's error.
    async fn oldest(
        &self,
        ctx: &ProbeContext,
        window: Duration,
        resolution: Duration,
        time: f64,
        queries: &mut Table,
    ) -> Result<Option<f64>, String> {
        let oldest_q = |span: Duration, res: Duration| {
            format!(
                "min(min_over_time(timestamp({})[{}:{}]))",
                self.form.dated(),
                promql_duration(span),
                promql_duration(res)
            )
        };
        let coarse_q = oldest_q(window, resolution);
        let fine_q = oldest_q((2 * resolution).min(window), Duration::from_secs(1));
        queries
            .rows
            .push(vec!["oldest sample (unix s)".into(), coarse_q.clone()]);
        queries
            .rows
            .push(vec!["oldest recent sample (unix s)".into(), fine_q.clone()]);
        Ok(
            match one_number(&self.server, ctx, &coarse_q, time).await? {
                Some(c) if c < time - resolution.as_secs_f64() => Some(c),
                coarse => one_number(&self.server, ctx, &fine_q, time)
                    .await?
                    .or(coarse),
            },
        )
    }

    /// Availability per 1/120 of the window (a range query), as timeline buckets: up and down
    /// shares where Prometheus had samples, unknown where it had none.
    ///
    /// # Errors
    /// The range query's error.
    async fn timeline(&self, ctx: &ProbeContext, s: &Summary) -> Result<Vec<Bucket>, String> {
        let width_ms = (s.window_ms / 120).max(1_000);
        let n = (s.window_ms / width_ms).max(1);
        let step = Duration::from_millis(width_ms as u64);
        let expr = self.form.availability(&promql_duration(step));
        let start = (s.from_ms + width_ms) as f64 / 1e3;
        let end = (s.from_ms + n * width_ms) as f64 / 1e3;
        let data = self
            .server
            .query_range(ctx, &expr, (start, end), step)
            .await?;
        let QueryData::Matrix(series) = data else {
            return Err(format!("range query `{expr}`: expected a matrix"));
        };
        let mut at: BTreeMap<i64, f64> = BTreeMap::new();
        for raw in series {
            // NaN (0 / 0, no events in a bucket) leaves that bucket unknown.
            for (t, v) in raw.value.iter().chain(raw.values.iter()) {
                if let Ok(x) = v.parse::<f64>()
                    && x.is_finite()
                {
                    at.insert(((t * 1e3).round() as i64 - s.from_ms) / width_ms - 1, x);
                }
            }
        }
        Ok((0..n)
            .map(|i| {
                let (up, down) = at
                    .get(&i)
                    .map_or((0.0, 0.0), |a| (a.clamp(0.0, 1.0), 1.0 - a.clamp(0.0, 1.0)));
                Bucket {
                    start_ms: s.from_ms + i * width_ms,
                    up,
                    down,
                    maint: 0.0,
                    unknown: (1.0 - up - down).max(0.0),
                }
            })
            .collect())
    }
}

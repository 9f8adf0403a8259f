//! The `canary` probe: judge a canary deployment against its baseline, deployed at the same
//! time, from Prometheus range queries over the same window (Spinnaker Kayenta's
//! NetflixACAJudge, in our own code; the method and its sources are in docs/canary.md).
//!
//! Per metric, one range query per side (a `query` with `{{group}}` replaced by each side's
//! group, or a `baseline` and a `canary` query), each returning exactly one series; NaN points
//! (a 0/0 rate) are dropped and counted. The judge ([`judge`]) classifies each metric
//! High / Low / Pass from a Mann–Whitney U test and the mean ratio against an allowance, scores
//! the metrics by group and weighs the groups into one score.
//!
//! Fail closed: an unreachable server, an API error, a query that returns no series or
//! several, an infinite value, or fewer than `min_points` points on a side is `error`, naming
//! the metric. A score below `pass_score` fails even when it is marginal (Kayenta's "needs a
//! human"), and a critical metric classified harmful fails the item alone.
//!
//! Where things live: this file holds the raw tables and their validation, `fetch` the
//! queries and their points, `judge` the statistics and the score, `output` the checks, the
//! table, the measured figures and the charts.

mod fetch;
pub mod judge;
mod output;

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::prometheus::api::{Server, raw_server, server_keys};
use super::{FieldError, ProbeContext, Validator};
use crate::model::ProbeOutput;
use crate::units::Interpolated;
use judge::{Direction, Rule};

server_keys! {
/// `kind = "canary"`: a canary judged against its baseline from Prometheus range queries.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCanaryProbe {
    /// The range ending now that both sides are judged over (humantime, e.g. `"10m"`).
    pub window: String,
    /// Spacing of the points (humantime, at least `"1s"`). Default `"5s"`.
    pub step: Option<String>,
    /// Fewest points each side of every metric must have after NaN points are dropped.
    /// Default 50.
    pub min_points: Option<u64>,
    /// Lowest score (0 to 100) that passes. Default 95.
    pub pass_score: Option<f64>,
    /// Lowest score called marginal (still a fail, said in the summary). Default 75.
    pub marginal_score: Option<f64>,
    /// Significance level of each metric's Mann–Whitney U test. Default 0.05.
    pub alpha: Option<f64>,
    /// The metrics, one `[[item.probe.metric]]` each.
    pub metric: Vec<RawCanaryMetric>,
}
}

/// `[[item.probe.metric]]`: one metric of a canary judgement.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCanaryMetric {
    /// The metric's name in the report, e.g. `"error rate"`; unique in the probe.
    pub name: String,
    /// A PromQL expression with `{{group}}`, run once per side with that side's group.
    /// Excludes `baseline` and `canary`.
    pub query: Option<String>,
    /// The baseline's PromQL expression (with `canary`, instead of `query`).
    pub baseline: Option<String>,
    /// The canary's PromQL expression (with `baseline`, instead of `query`).
    pub canary: Option<String>,
    /// What `{{group}}` becomes for the baseline. Default `"baseline"`.
    pub baseline_group: Option<String>,
    /// What `{{group}}` becomes for the canary. Default `"canary"`.
    pub canary_group: Option<String>,
    /// The harmful direction: `increase` (default), `decrease` or `either`.
    #[schemars(with = "Option<Direction>")]
    pub direction: Option<String>,
    /// Relative effect-size allowance, e.g. 0.1 for 10 %: a significant change whose mean
    /// ratio stays within 1 ± allowance passes. Default 0 (significance alone decides).
    pub allowance: Option<f64>,
    /// A critical metric classified harmful fails the item whatever the score. Default false.
    pub critical: Option<bool>,
    /// The metric's group. Default `"default"`.
    pub group: Option<String>,
    /// The group's weight (> 0); metrics of one group that give it must agree. Default 1.
    pub weight: Option<f64>,
}

/// A validated metric.
#[derive(Debug, Clone)]
pub struct Metric {
    name: String,
    baseline: Interpolated,
    canary: Interpolated,
    group: String,
    critical: bool,
    direction: Direction,
    allowance: f64,
}

/// A validated `canary` probe.
#[derive(Debug, Clone)]
pub struct CanaryProbe {
    server: Server,
    window: Duration,
    step: Duration,
    min_points: usize,
    pass_score: f64,
    marginal_score: f64,
    alpha: f64,
    metrics: Vec<Metric>,
    weights: BTreeMap<String, f64>,
}

impl RawCanaryProbe {
    /// Validate: the server keys as for `kind = "prometheus"`; a window of at least the step, a
    /// step of at least 1 s and at most 11 000 points; `min_points` at least 1;
    /// 0 ≤ `marginal_score` ≤ `pass_score` ≤ 100;
    /// 0 < `alpha` < 0.5; then every metric (see [`RawCanaryMetric::validate`]).
    ///
    /// # Errors
    /// A [`FieldError`] naming the key (`metric[i].<key>` inside a metric).
    pub fn validate(self, v: &mut Validator) -> Result<CanaryProbe, FieldError> {
        let window = v.duration("window", &self.window)?;
        let step = v.duration("step", self.step.as_deref().unwrap_or("5s"))?;
        if step < Duration::from_secs(1) {
            return Err(FieldError::new("step", "expected at least 1s"));
        }
        if window < step || window.as_secs_f64() / step.as_secs_f64() > 11_000.0 {
            return Err(FieldError::new(
                "window",
                "expected a window of at least one step and at most 11000 steps (Prometheus's limit)",
            ));
        }
        let min_points = self.min_points.unwrap_or(50) as usize;
        if min_points == 0 {
            return Err(FieldError::new(
                "min_points",
                "expected at least 1 point per side (Kayenta recommends 50)",
            ));
        }
        let pass_score = self.pass_score.unwrap_or(95.0);
        let marginal_score = self.marginal_score.unwrap_or(75.0);
        if !(0.0..=100.0).contains(&pass_score) {
            return Err(FieldError::new(
                "pass_score",
                "expected a score from 0 to 100",
            ));
        }
        if !(0.0..=pass_score).contains(&marginal_score) {
            return Err(FieldError::new(
                "marginal_score",
                format!("expected a score from 0 to pass_score ({pass_score})"),
            ));
        }
        let alpha = self.alpha.unwrap_or(0.05);
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(FieldError::new(
                "alpha",
                "expected a significance level above 0 and below 0.5, e.g. 0.05",
            ));
        }
        let (metrics, weights) = validate_metrics(self.metric, v)?;
        let server = raw_server!(self).validate(v)?;
        Ok(CanaryProbe {
            server,
            window,
            step,
            min_points,
            pass_score,
            marginal_score,
            alpha,
            metrics,
            weights,
        })
    }
}

/// Every metric, with unique names, and the group weights they give (agreeing per group).
fn validate_metrics(
    raw: Vec<RawCanaryMetric>,
    v: &mut Validator,
) -> Result<(Vec<Metric>, BTreeMap<String, f64>), FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            "metric",
            "expected at least one [[item.probe.metric]] with a name and a query",
        ));
    }
    let mut metrics: Vec<Metric> = Vec::with_capacity(raw.len());
    let mut weights: BTreeMap<String, f64> = BTreeMap::new();
    for (i, m) in raw.into_iter().enumerate() {
        let at = |k: &str| format!("metric[{i}]{}{k}", if k.is_empty() { "" } else { "." });
        let weight = m.weight;
        let metric = m
            .validate(v)
            .map_err(|e| FieldError::new(at(&e.key), e.message))?;
        if metrics.iter().any(|o| o.name == metric.name) {
            return Err(FieldError::new(
                at("name"),
                format!("duplicate metric name \"{}\"", metric.name),
            ));
        }
        if let Some(w) = weight {
            if !(w.is_finite() && w > 0.0) {
                return Err(FieldError::new(at("weight"), "expected a number above 0"));
            }
            if let Some(&other) = weights.get(&metric.group)
                && other != w
            {
                return Err(FieldError::new(
                    at("weight"),
                    format!(
                        "group \"{}\" already has weight {other}: the metrics of one group must agree",
                        metric.group
                    ),
                ));
            }
            weights.insert(metric.group.clone(), w);
        }
        metrics.push(metric);
    }
    Ok((metrics, weights))
}

impl RawCanaryMetric {
    /// Validate: a name; either `query` holding `{{group}}`, or both `baseline` and `canary`;
    /// groups only with `query`; an allowance from 0 to 1 (below 1 so that a `Low` stays
    /// reachable); a known direction.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key inside the metric.
    pub fn validate(self, v: &mut Validator) -> Result<Metric, FieldError> {
        if self.name.trim().is_empty() {
            return Err(FieldError::new(
                "name",
                "expected a metric name, e.g. \"error rate\"",
            ));
        }
        let (baseline, canary) = self.queries(v)?;
        let allowance = self.allowance.unwrap_or(0.0);
        if !(0.0..1.0).contains(&allowance) {
            return Err(FieldError::new(
                "allowance",
                "expected a relative allowance from 0 to below 1, e.g. 0.1 for 10 %",
            ));
        }
        let group = self.group.unwrap_or_else(|| "default".into());
        if group.trim().is_empty() {
            return Err(FieldError::new("group", "expected a group name"));
        }
        Ok(Metric {
            name: self.name,
            baseline,
            canary,
            group,
            critical: self.critical.unwrap_or(false),
            direction: super::prometheus::choice("direction", self.direction)?.unwrap_or_default(),
            allowance,
        })
    }

    /// The baseline's and the canary's expressions.
    fn queries(&self, v: &mut Validator) -> Result<(Interpolated, Interpolated), FieldError> {
        const PLACEHOLDER: &str = "{{group}}";
        match (&self.query, &self.baseline, &self.canary) {
            (Some(q), None, None) => {
                if !q.contains(PLACEHOLDER) {
                    return Err(FieldError::new(
                        "query",
                        "expected {{group}} in the query (it becomes baseline_group, then canary_group); or give `baseline` and `canary` queries instead",
                    ));
                }
                let q = v.interpolate("query", q)?;
                let side = |group: &Option<String>, default: &str| {
                    let g = group.as_deref().unwrap_or(default);
                    Interpolated {
                        value: q.value.replace(PLACEHOLDER, g),
                        display: q.display.replace(PLACEHOLDER, g),
                    }
                };
                Ok((
                    side(&self.baseline_group, "baseline"),
                    side(&self.canary_group, "canary"),
                ))
            }
            (Some(_), _, _) => Err(FieldError::new(
                if self.baseline.is_some() {
                    "baseline"
                } else {
                    "canary"
                },
                "expected either `query` (with {{group}}) or both `baseline` and `canary`, not both",
            )),
            (None, Some(b), Some(c)) => {
                for (key, given) in [
                    ("baseline_group", self.baseline_group.is_some()),
                    ("canary_group", self.canary_group.is_some()),
                ] {
                    if given {
                        return Err(FieldError::new(
                            key,
                            "applies to `query` (its {{group}}), not to `baseline` and `canary`",
                        ));
                    }
                }
                Ok((v.interpolate("baseline", b)?, v.interpolate("canary", c)?))
            }
            (None, b, c) => Err(FieldError::new(
                match (b, c) {
                    (Some(_), _) => "canary",
                    (None, Some(_)) => "baseline",
                    (None, None) => "query",
                },
                "expected `query` (a PromQL expression with {{group}}) or both `baseline` and `canary` expressions",
            )),
        }
    }
}

impl CanaryProbe {
    /// Query both sides of every metric over the window ending now, judge and score them.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let end = jiff::Timestamp::now().as_millisecond() as f64 / 1e3;
        let range = (end - self.window.as_secs_f64(), end);
        let fetched = futures::future::join_all(
            self.metrics
                .iter()
                .map(|m| fetch::pair(&self.server, ctx, m, range, self.step)),
        )
        .await;
        let mut errors = Vec::new();
        let mut judged = Vec::new();
        for (m, f) in self.metrics.iter().zip(fetched) {
            match f.and_then(|pair| self.judge(m, pair)) {
                Ok(j) => judged.push(j),
                Err(e) => errors.push(format!("metric \"{}\": {e}", m.name)),
            }
        }
        if !errors.is_empty() {
            return ProbeOutput::error(ctx.redactor.redact(&errors.join("; ")));
        }
        output::output(self, &judged, ctx)
    }

    /// One metric's pair of series judged under its rule.
    ///
    /// # Errors
    /// Too few points on a side, with both counts and the NaN points dropped.
    fn judge(&self, m: &Metric, pair: fetch::Pair) -> Result<output::Judged, String> {
        let rule = Rule {
            direction: m.direction,
            allowance: m.allowance,
            alpha: self.alpha,
            min_points: self.min_points,
        };
        let (b, c) = (pair.baseline.values(), pair.canary.values());
        match judge::judge(&b, &c, &rule) {
            Ok(judgement) => Ok(output::Judged {
                metric: m.clone(),
                pair,
                judgement,
            }),
            Err(few) => Err(format!(
                "too few points: {} baseline and {} canary (after dropping {} and {} NaN), expected at least min_points = {} each over {} at step {}",
                few.baseline,
                few.canary,
                pair.baseline.nan,
                pair.canary.nan,
                few.min_points,
                crate::units::format_duration(self.window),
                crate::units::format_duration(self.step),
            )),
        }
    }
}

crate::probe::probe_kind!(CanaryProbe, RawCanaryProbe, async);

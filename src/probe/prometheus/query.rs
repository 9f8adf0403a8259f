//! The query half of the `prometheus` probe: an instant query (every series of the vector is a
//! row: labels and value) or a range query over a window (every point, or one aggregate per
//! series), held against [`Bounds`] for all series or any.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::api::{QueryData, Series, Server};
use super::{Bounds, default_step};
use crate::model::{Check, ProbeOutput, Status, Table};
use crate::probe::{FieldError, ProbeContext, Validator};
use crate::units::{Interpolated, format_duration};

/// One figure of a range query's points per series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// The lowest point.
    Min,
    /// The highest point.
    Max,
    /// The mean of the points.
    Avg,
    /// The newest point.
    Last,
}

impl Aggregate {
    fn name(self) -> &'static str {
        match self {
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Avg => "avg",
            Aggregate::Last => "last",
        }
    }

    fn of(self, points: &[(f64, f64)]) -> f64 {
        let vs = points.iter().map(|p| p.1);
        match self {
            Aggregate::Min => vs.fold(f64::INFINITY, f64::min),
            Aggregate::Max => vs.fold(f64::NEG_INFINITY, f64::max),
            Aggregate::Avg => vs.sum::<f64>() / points.len().max(1) as f64,
            Aggregate::Last => points.last().map_or(f64::NAN, |p| p.1),
        }
    }
}

/// Which series must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Quantifier {
    /// Every series.
    #[default]
    All,
    /// At least one series.
    Any,
}

/// What an empty result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Empty {
    /// The probe could not measure (fail closed).
    #[default]
    Error,
    /// Nothing matched, as hoped (e.g. no target down).
    Pass,
    /// Nothing matched, which fails the item.
    Fail,
}

/// The query keys as written.
pub struct RawQueryAsk {
    pub expr: String,
    pub window: Option<String>,
    pub step: Option<String>,
    pub aggregate: Option<Aggregate>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub equals: Option<f64>,
    pub series: Option<Quantifier>,
    pub empty: Option<Empty>,
}

/// A validated query: the expression, the range (window and step) if any, the bounds.
#[derive(Debug, Clone)]
pub struct QueryAsk {
    expr: Interpolated,
    range: Option<(Duration, Duration)>,
    aggregate: Option<Aggregate>,
    bounds: Bounds,
    series: Quantifier,
    empty: Empty,
}

impl RawQueryAsk {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<QueryAsk, FieldError> {
        if self.expr.trim().is_empty() {
            return Err(FieldError::new("query", "expected a PromQL expression"));
        }
        let expr = v.interpolate("query", &self.expr)?;
        let bounds = self.bounds()?;
        let range = self.range(v)?;
        Ok(QueryAsk {
            expr,
            range,
            aggregate: self.aggregate,
            bounds,
            series: self.series.unwrap_or_default(),
            empty: self.empty.unwrap_or_default(),
        })
    }

    /// `min`, `max` and `equals`: finite, at least one, `equals` alone, `min` ≤ `max`.
    fn bounds(&self) -> Result<Bounds, FieldError> {
        for (key, x) in [
            ("min", self.min),
            ("max", self.max),
            ("equals", self.equals),
        ] {
            if x.is_some_and(|x| !x.is_finite()) {
                return Err(FieldError::new(key, "expected a finite number"));
            }
        }
        if self.equals.is_some() && (self.min.is_some() || self.max.is_some()) {
            return Err(FieldError::new(
                "equals",
                "expected either equals or min/max, not both",
            ));
        }
        if self.min.is_none() && self.max.is_none() && self.equals.is_none() {
            return Err(FieldError::new(
                "",
                "expected a threshold for the query: min, max or equals",
            ));
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max)
            && lo > hi
        {
            return Err(FieldError::new("max", format!("expected max ≥ min ({lo})")));
        }
        Ok(Bounds {
            min: self.min,
            max: self.max,
            equals: self.equals,
        })
    }

    /// `window` and `step` of a range query (`None` for an instant query): a window of at least
    /// 1 s, a step above 0 and at most the window, and at most 11 000 points per series.
    fn range(&self, v: &Validator) -> Result<Option<(Duration, Duration)>, FieldError> {
        Ok(match &self.window {
            None => {
                if self.step.is_some() || self.aggregate.is_some() {
                    let key = if self.step.is_some() {
                        "step"
                    } else {
                        "aggregate"
                    };
                    return Err(FieldError::new(
                        key,
                        "applies to a range query: set `window` too",
                    ));
                }
                None
            }
            Some(w) => {
                let window = v.duration("window", w)?;
                if window < Duration::from_secs(1) {
                    return Err(FieldError::new("window", "expected at least 1s"));
                }
                let step = match &self.step {
                    Some(s) => v.duration("step", s)?,
                    None => default_step(window),
                };
                if step.is_zero() || step > window {
                    return Err(FieldError::new(
                        "step",
                        "expected a step above 0 and at most the window",
                    ));
                }
                // Prometheus refuses more than 11 000 points per series.
                if window.as_secs_f64() / step.as_secs_f64() > 11_000.0 {
                    return Err(FieldError::new(
                        "step",
                        format!(
                            "expected at most 11000 points per series (Prometheus's limit): use a step of at least {}",
                            format_duration(
                                Duration::from_secs_f64(window.as_secs_f64() / 11_000.0)
                                    .max(Duration::from_millis(1))
                            )
                        ),
                    ));
                }
                Some((window, step))
            }
        })
    }
}

impl QueryAsk {
    /// Query the server and judge the series.
    pub async fn run(&self, server: &Server, ctx: &ProbeContext) -> ProbeOutput {
        let series = match self.fetch(server, ctx).await {
            Ok(s) => s,
            Err(e) => return ProbeOutput::error(ctx.redactor.redact(&e)),
        };
        let points: usize = series.iter().map(|s| s.points.len()).sum();
        if points == 0 {
            return self.on_empty(server);
        }
        let mut o = self.judge(&series);
        o.measure("points", points);
        if let Some((window, _)) = self.range {
            match super::chart::series_svg(&self.expr.display, window, &series) {
                Ok(svg) => match ctx.write_evidence(
                    "series.svg",
                    svg.as_bytes(),
                    "PromQL range query, every series",
                    "image/svg+xml",
                ) {
                    Ok(ev) => o.evidence.push(ev),
                    Err(e) => o.log_tail = Some(e),
                },
                Err(e) => o.log_tail = Some(e),
            }
        }
        o
    }

    /// The series of the answer, numeric; a vector (or scalar) for an instant query, a matrix
    /// for a range query.
    ///
    /// # Errors
    /// The API's message, or the wrong result type, or a value that is not a finite number.
    async fn fetch(&self, server: &Server, ctx: &ProbeContext) -> Result<Vec<Series>, String> {
        let data = match self.range {
            None => server.query(ctx, &self.expr.value, None).await?,
            Some((window, step)) => {
                let end = jiff::Timestamp::now().as_millisecond() as f64 / 1e3;
                let start = end - window.as_secs_f64();
                server
                    .query_range(ctx, &self.expr.value, (start, end), step)
                    .await?
            }
        };
        let expected = if self.range.is_some() {
            "matrix"
        } else {
            "vector"
        };
        let raw = match (data, self.range.is_some()) {
            (QueryData::Vector(v), false) | (QueryData::Matrix(v), true) => v,
            (QueryData::Scalar(p), false) => vec![super::api::RawSeries {
                metric: Default::default(),
                value: Some(p),
                values: Vec::new(),
                histogram: None,
                histograms: None,
            }],
            (other, _) => {
                let hint = match other {
                    QueryData::Matrix(_) => {
                        " (a range selector such as `x[5m]` needs a function around it, e.g. rate() or avg_over_time(); or set `window` for a range query)"
                    }
                    _ => "",
                };
                return Err(format!(
                    "query `{}`: expected a {expected}, got a {}{hint}",
                    self.expr.display,
                    other.kind()
                ));
            }
        };
        raw.into_iter()
            .map(|s| {
                s.numeric()
                    .map_err(|e| format!("query `{}`: {e}", self.expr.display))
            })
            .collect()
    }

    fn on_empty(&self, server: &Server) -> ProbeOutput {
        let text = format!(
            "query `{}` on {} returned no series{}",
            self.expr.display,
            server.shown(),
            self.range
                .map(|(w, _)| format!(" over the last {}", format_duration(w)))
                .unwrap_or_default()
        );
        match self.empty {
            Empty::Error => ProbeOutput::error(format!(
                "{text} (an empty result is an error; set `empty = \"pass\"` when no series is the good case)"
            )),
            Empty::Pass | Empty::Fail => {
                let mut o = ProbeOutput {
                    summary: text,
                    ..ProbeOutput::default()
                };
                o.measure("series", 0);
                o.checks.push(Check::new(
                    "series",
                    "no series (empty = \"pass\")",
                    "no series",
                    self.empty == Empty::Pass,
                ));
                o
            }
        }
    }

    /// One series against the bounds: the value shown (the aggregate, else the last point),
    /// whether it holds, and when it does not, what breaks them (`series = value`).
    fn judge_series(&self, s: &Series) -> (f64, bool, Option<String>) {
        let (value, ok) = match (self.range, self.aggregate) {
            (Some(_), Some(a)) => {
                let v = a.of(&s.points);
                (v, self.bounds.holds(v))
            }
            _ => {
                let v = Aggregate::Last.of(&s.points);
                let ok = s.points.iter().all(|p| self.bounds.holds(p.1));
                (v, ok)
            }
        };
        let bad = (!ok).then(|| {
            let worst = s
                .points
                .iter()
                .find(|p| !self.bounds.holds(p.1))
                .map_or(value, |p| p.1);
            format!(
                "{} = {}",
                s.name(),
                fmt_value(if self.aggregate.is_some() {
                    value
                } else {
                    worst
                })
            )
        });
        (value, ok, bad)
    }

    /// Hold each series' value (instant), aggregate or every point (range) against the bounds.
    fn judge(&self, series: &[Series]) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let what = match (self.range, self.aggregate) {
            (None, _) => "value".to_string(),
            (Some((w, _)), Some(a)) => format!("{} over {}", a.name(), format_duration(w)),
            (Some((w, _)), None) => format!("every point over {}", format_duration(w)),
        };
        let mut table = Table {
            title: format!("Series of `{}`", self.expr.display),
            columns: ["series", "value", "min", "max", "points", "holds"]
                .map(String::from)
                .to_vec(),
            rows: Vec::new(),
        };
        let mut holding = 0;
        let mut first_bad: Option<String> = None;
        for s in series.iter().filter(|s| !s.points.is_empty()) {
            let (lo, hi) = (Aggregate::Min.of(&s.points), Aggregate::Max.of(&s.points));
            let (value, ok, bad) = self.judge_series(s);
            holding += usize::from(ok);
            if first_bad.is_none() {
                first_bad = bad;
            }
            if series.len() == 1 {
                o.measure("value", value);
            }
            table.rows.push(vec![
                s.name(),
                fmt_value(value),
                fmt_value(lo),
                fmt_value(hi),
                s.points.len().to_string(),
                if ok { "yes" } else { "no" }.into(),
            ]);
        }
        let total = table.rows.len();
        let ok = match self.series {
            Quantifier::All => holding == total,
            Quantifier::Any => holding > 0,
        };
        let quant = match self.series {
            Quantifier::All => "every series",
            Quantifier::Any => "any series",
        };
        let measured = match &first_bad {
            Some(bad) => format!("{holding} of {total} series hold; {bad}"),
            None => format!("{holding} of {total} series hold"),
        };
        o.measure("series", total);
        o.measure("series_holding", holding);
        let expected = format!("{} for {quant}", self.bounds.describe());
        o.summary = format!("`{}`: {measured} ({what} {expected})", self.expr.display);
        o.checks.push(Check::new(what, expected, measured, ok));
        table.rows.truncate(100);
        o.tables.push(table);
        if total == 0 {
            o.forced = Some(Status::Error);
        }
        o
    }
}

/// A value for people: up to 6 decimals without trailing zeros, or scientific notation below
/// 0.001 (an error ratio of 0.00002 stays visible).
pub fn fmt_value(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_small_ratios_visible_and_aggregates_follow_their_names() {
        assert_eq!(fmt_value(0.99912), "0.99912");
        assert_eq!(fmt_value(2.0), "2");
        assert_eq!(fmt_value(0.00002), "2.000e-5");
        let pts = [(1.0, 3.0), (2.0, 1.0), (3.0, 2.0)];
        assert_eq!(Aggregate::Min.of(&pts), 1.0);
        assert_eq!(Aggregate::Max.of(&pts), 3.0);
        assert_eq!(Aggregate::Avg.of(&pts), 2.0);
        assert_eq!(Aggregate::Last.of(&pts), 2.0);
        let b = Bounds {
            min: Some(1.0),
            max: Some(2.0),
            equals: None,
        };
        assert!(b.holds(1.5) && !b.holds(2.5) && !b.holds(f64::NAN));
        assert_eq!(b.describe(), "≥ 1 and ≤ 2");
    }
}

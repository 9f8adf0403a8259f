//! The two range queries of one metric and their points: exactly one series per query, NaN
//! points dropped and counted, anything else that is not a finite number an error.

use std::time::Duration;

use super::Metric;
use crate::probe::ProbeContext;
use crate::probe::prometheus::api::{QueryData, RawSeries, Server, series_name};

/// One side's points.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// `(unix seconds, value)`, oldest first, every value finite.
    pub points: Vec<(f64, f64)>,
    /// NaN points dropped (e.g. a rate ratio of 0/0).
    pub nan: usize,
}

impl Side {
    /// The values alone, in time order.
    pub fn values(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.1).collect()
    }
}

/// Both sides of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The baseline's points.
    pub baseline: Side,
    /// The canary's points.
    pub canary: Side,
}

/// Run the metric's baseline and canary queries over `range` (unix seconds) every `step`.
///
/// # Errors
/// The API's message (quoting the query), or a result that is not exactly one numeric series.
pub async fn pair(
    server: &Server,
    ctx: &ProbeContext,
    m: &Metric,
    range: (f64, f64),
    step: Duration,
) -> Result<Pair, String> {
    let (baseline, canary) = futures::join!(
        side(
            server,
            ctx,
            &m.baseline.value,
            &m.baseline.display,
            range,
            step
        ),
        side(server, ctx, &m.canary.value, &m.canary.display, range, step),
    );
    Ok(Pair {
        baseline: baseline?,
        canary: canary?,
    })
}

async fn side(
    server: &Server,
    ctx: &ProbeContext,
    expr: &str,
    shown: &str,
    range: (f64, f64),
    step: Duration,
) -> Result<Side, String> {
    let data = server
        .query_range(ctx, expr, range, step)
        .await
        .map_err(|e| e.replace(expr, shown))?;
    let series = match data {
        QueryData::Matrix(s) => s,
        other => {
            return Err(format!(
                "range query `{shown}`: expected a matrix, got a {}",
                other.kind()
            ));
        }
    };
    match <[RawSeries; 1]>::try_from(series) {
        Ok([one]) => points(one).map_err(|e| format!("range query `{shown}`: {e}")),
        Err(none) if none.is_empty() => Err(format!(
            "range query `{shown}` returned no series over the window (expected exactly one: check the labels, e.g. the group's job)"
        )),
        Err(many) => Err(format!(
            "range query `{shown}` returned {} series, expected exactly one (aggregate it, e.g. with sum()){}",
            many.len(),
            many.first()
                .map(|s| format!(": {}, …", series_name(&s.metric)))
                .unwrap_or_default()
        )),
    }
}

/// The finite points of a series, NaN dropped and counted.
///
/// # Errors
/// A native histogram, an infinite value or text, naming the series and the time.
fn points(s: RawSeries) -> Result<Side, String> {
    let name = series_name(&s.metric);
    if s.histogram.is_some() || s.histograms.is_some() {
        return Err(format!(
            "{name}: a native histogram is not a number (use histogram_quantile())"
        ));
    }
    let mut out = Side {
        points: Vec::with_capacity(s.values.len()),
        nan: 0,
    };
    for (t, text) in s.values.iter().chain(s.value.iter()) {
        match text.parse::<f64>() {
            Ok(x) if x.is_nan() => out.nan += 1,
            Ok(x) if x.is_finite() => out.points.push((*t, x)),
            _ => {
                return Err(format!(
                    "{name} at {}: value {text:?} is not a finite number",
                    crate::store::summary::fmt_time((*t * 1e3) as i64)
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_points_are_dropped_and_counted_and_infinities_refused() {
        let raw = |values: &[(f64, &str)]| RawSeries {
            metric: Default::default(),
            value: None,
            values: values.iter().map(|(t, v)| (*t, v.to_string())).collect(),
            histogram: None,
            histograms: None,
        };
        let s = points(raw(&[(1.0, "0.5"), (2.0, "NaN"), (3.0, "0")])).unwrap();
        assert_eq!(s.points, [(1.0, 0.5), (3.0, 0.0)]);
        assert_eq!(s.nan, 1);
        assert_eq!(s.values(), [0.5, 0.0]);
        let e = points(raw(&[(1.0, "+Inf")])).unwrap_err();
        assert!(e.contains("\"+Inf\" is not a finite number"), "{e}");
    }
}

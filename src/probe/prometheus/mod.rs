//! The `prometheus` probe: gate on the fleet's existing engine. Either a PromQL
//! query, instant or over a `window`, whose every series is held against `min`, `max` or
//! `equals` (all series, or any), or a list of alerting rules that must be loaded, healthy and
//! not firing (or firing, in a drill).
//!
//! Fail closed: an empty result is an error unless `empty` says otherwise; a string or a matrix
//! where a vector is expected, NaN or an infinite value, an API error, an unreachable server
//! and a timeout are errors that quote the query and the server's message.

pub mod api;
pub mod chart;
mod query;

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput, Status, Table};
use api::{Group, Rule, Server};
pub use query::{Aggregate, Empty, Quantifier, fmt_value};

api::server_keys! {
/// `kind = "prometheus"`: a PromQL query or alerting rules, against a Prometheus HTTP API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheusProbe {
    /// A PromQL expression. Excludes `alerts`.
    pub query: Option<String>,
    /// Run `query` as a range query over this window ending now (humantime, e.g. `"15m"`).
    pub window: Option<String>,
    /// The range query's resolution (humantime). Default: the window / 240, at least 1 s.
    pub step: Option<String>,
    /// Hold one aggregate of each series' points (`min`, `max`, `avg`, `last`) instead of every
    /// point (range queries only).
    #[schemars(with = "Option<Aggregate>")]
    pub aggregate: Option<String>,
    /// Lowest allowed value.
    pub min: Option<f64>,
    /// Highest allowed value.
    pub max: Option<f64>,
    /// The value expected exactly (excludes `min` and `max`).
    pub equals: Option<f64>,
    /// Which series must hold: `all` (default) or `any`.
    #[schemars(with = "Option<Quantifier>")]
    pub series: Option<String>,
    /// What an empty result is: `error` (default: fail closed), `pass` or `fail`.
    #[schemars(with = "Option<Empty>")]
    pub empty: Option<String>,
    /// Names of alerting rules that must be loaded and healthy. Excludes `query`.
    pub alerts: Option<Vec<String>>,
    /// With `alerts`: whether they must be firing (a drill) or not firing (default false).
    pub firing: Option<bool>,
}
}

/// The value bounds of a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    min: Option<f64>,
    max: Option<f64>,
    equals: Option<f64>,
}

impl Bounds {
    /// Whether `v` holds.
    pub fn holds(&self, v: f64) -> bool {
        v.is_finite()
            && self.equals.is_none_or(|e| v == e)
            && self.min.is_none_or(|m| v >= m)
            && self.max.is_none_or(|m| v <= m)
    }

    /// `≥ 0.99 and ≤ 1`, `= 0`.
    pub fn describe(&self) -> String {
        match self.equals {
            Some(e) => format!("= {e}"),
            None => super::compare_range(self.min, self.max, 0.0).0,
        }
    }
}

/// What a validated probe asks.
#[derive(Debug, Clone)]
enum Ask {
    Query(query::QueryAsk),
    Alerts { names: Vec<String>, firing: bool },
}

/// A validated `prometheus` probe.
#[derive(Debug, Clone)]
pub struct PrometheusProbe {
    server: Server,
    ask: Ask,
}

impl RawPrometheusProbe {
    /// Validate: exactly one of `query` and `alerts`; a query needs `min`, `max` or `equals`
    /// (`equals` alone); `step` and `aggregate` need `window`; `firing` needs `alerts`.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<PrometheusProbe, FieldError> {
        let server = api::raw_server!(self).validate(v)?;
        let query_keys = [
            ("window", self.window.is_some()),
            ("step", self.step.is_some()),
            ("aggregate", self.aggregate.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("equals", self.equals.is_some()),
            ("series", self.series.is_some()),
            ("empty", self.empty.is_some()),
        ];
        let ask = match (self.query, self.alerts) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "alerts",
                    "expected either query or alerts, not both",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "",
                    "expected `query` (a PromQL expression) or `alerts` (alerting rule names)",
                ));
            }
            (None, Some(names)) => {
                super::refuse_keys(&query_keys, "applies to `query`, not to `alerts`")?;
                if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
                    return Err(FieldError::new(
                        "alerts",
                        "expected one or more alerting rule names",
                    ));
                }
                Ask::Alerts {
                    names,
                    firing: self.firing.unwrap_or(false),
                }
            }
            (Some(expr), None) => {
                if self.firing.is_some() {
                    return Err(FieldError::new(
                        "firing",
                        "applies to `alerts`, not to `query`",
                    ));
                }
                Ask::Query(
                    query::RawQueryAsk {
                        expr,
                        window: self.window,
                        step: self.step,
                        aggregate: choice("aggregate", self.aggregate)?,
                        min: self.min,
                        max: self.max,
                        equals: self.equals,
                        series: choice("series", self.series)?,
                        empty: choice("empty", self.empty)?,
                    }
                    .validate(v)?,
                )
            }
        };
        Ok(PrometheusProbe { server, ask })
    }
}

impl PrometheusProbe {
    /// Ask the server once.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        match &self.ask {
            Ask::Query(q) => q.run(&self.server, ctx).await,
            Ask::Alerts { names, firing } => alerts(&self.server, ctx, names, *firing).await,
        }
    }
}

/// The alerts check: every named rule loaded, healthy (`health = ok`), and firing or not as
/// expected. A name may match rules in several groups; each of them must hold.
async fn alerts(
    server: &Server,
    ctx: &ProbeContext,
    names: &[String],
    firing: bool,
) -> ProbeOutput {
    let groups = match server.alert_rules(ctx).await {
        Ok(g) => g,
        Err(e) => return ProbeOutput::error(e),
    };
    let mut o = ProbeOutput::default();
    let mut table = Table {
        title: format!("Alerting rules on {}", server.shown()),
        columns: ["alert", "group", "file", "health", "state", "active alerts"]
            .map(String::from)
            .to_vec(),
        rows: Vec::new(),
    };
    let mut firing_now = 0;
    for name in names {
        let found: Vec<_> = groups
            .iter()
            .flat_map(|g| g.rules.iter().map(move |r| (g, r)))
            .filter(|(_, r)| r.kind == "alerting" && &r.name == name)
            .collect();
        if found.is_empty() {
            o.checks.push(Check::new(
                format!("{name} loaded"),
                "loaded",
                format!(
                    "not among the {} alerting rule(s) loaded",
                    groups.iter().map(|g| g.rules.len()).sum::<usize>()
                ),
                false,
            ));
            continue;
        }
        for (g, r) in found {
            firing_now += usize::from(rule_checks(&mut o, &mut table, name, g, r, firing));
        }
    }
    o.measure("alerts_firing", firing_now);
    o.summary = format!(
        "{} alerting rule name(s) on {}: {} firing (expected {})",
        names.len(),
        server.shown(),
        firing_now,
        if firing { "firing" } else { "none firing" }
    );
    o.tables.push(table);
    if o.checks.is_empty() {
        o.forced = Some(Status::Error);
    }
    o
}

/// The checks of alerting rule `r` (named `name`) in group `g`: healthy, and firing or not as
/// expected; its row in `table`. True when it is firing.
fn rule_checks(
    o: &mut ProbeOutput,
    table: &mut Table,
    name: &str,
    g: &Group,
    r: &Rule,
    firing: bool,
) -> bool {
    let state = r.state.as_deref().unwrap_or("unknown");
    let place = format!("{name} ({})", g.name);
    let health = match (&*r.health, &r.last_error) {
        ("err", Some(e)) => format!("err: {e}"),
        (h, _) => h.to_string(),
    };
    o.checks.push(Check::new(
        format!("{place} healthy"),
        "health ok (evaluated without error)",
        health.clone(),
        r.health == "ok",
    ));
    o.checks.push(Check::new(
        format!("{place} state"),
        if firing { "firing" } else { "not firing" },
        state,
        (state == "firing") == firing,
    ));
    table.rows.push(vec![
        name.to_string(),
        g.name.clone(),
        g.file.clone(),
        health,
        state.to_string(),
        r.alerts.len().to_string(),
    ]);
    state == "firing"
}

/// One of an enum's lowercase names at `key` (kept a string in the raw table so that a typo's
/// error names its key).
///
/// # Errors
/// `unknown variant "x", expected one of …` at `key`.
pub fn choice<T: serde::de::DeserializeOwned>(
    key: &str,
    text: Option<String>,
) -> Result<Option<T>, FieldError> {
    text.map(|t| {
        serde_json::from_value(serde_json::Value::String(t))
            .map_err(|e| FieldError::new(key, e.to_string().replace('`', "\"")))
    })
    .transpose()
}

/// Default range-query step: the window / 240, at least one second, in whole milliseconds.
fn default_step(window: Duration) -> Duration {
    Duration::from_millis(((window.as_millis() / 240) as u64).max(1_000))
}

crate::probe::probe_kind!(PrometheusProbe, RawPrometheusProbe, async);

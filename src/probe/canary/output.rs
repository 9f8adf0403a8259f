//! What a `canary` judgement shows: one check per metric (gating for a critical metric,
//! advisory otherwise) and one gating check on the score, a table with a row per metric, the
//! measured figures for machines and a chart per metric of both series over the window.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::judge::{self, Judgement, Score, Scored};
use super::{CanaryProbe, Metric, fetch};
use crate::model::{Check, ProbeOutput, Table};
use crate::probe::ProbeContext;
use crate::probe::prometheus::api::Series;
use crate::probe::prometheus::chart;
use crate::units::format_duration;

/// The test as the report names it.
const TEST: &str = "Mann–Whitney U (two-sided/one-sided), Hodges–Lehmann shift";
/// What the test assumes of the points.
const ASSUMPTION: &str = "points treated as independent; spacing = step";

/// One metric, its points and its judgement.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The metric as configured.
    pub metric: Metric,
    /// Its points, both sides.
    pub pair: fetch::Pair,
    /// What the judge found.
    pub judgement: Judgement,
}

/// The probe's output from every judged metric.
pub fn output(p: &CanaryProbe, judged: &[Judged], ctx: &ProbeContext) -> ProbeOutput {
    let scored: Vec<Scored<'_>> = judged
        .iter()
        .map(|j| Scored {
            name: &j.metric.name,
            group: &j.metric.group,
            critical: j.metric.critical,
            harmful: j.judgement.harmful,
        })
        .collect();
    let score = judge::score(&scored, &p.weights);
    let mut o = ProbeOutput::default();
    for j in judged {
        o.checks.push(metric_check(j, p.alpha));
    }
    o.checks.push(score_check(p, &score));
    o.summary = summary(p, judged, &score);
    o.tables.push(table(judged));
    o.tables.push(group_table(&score));
    measure(&mut o, p, judged, &score);
    for (i, j) in judged.iter().enumerate() {
        attach_chart(&mut o, ctx, p, i, j);
    }
    o
}

/// A value for people (the `prometheus` probe's format; −0 shown as 0).
fn fmt_value(v: f64) -> String {
    crate::probe::prometheus::fmt_value(v + 0.0)
}

/// A ratio for people: `∞` for a change from a zero baseline.
fn fmt_ratio(r: f64) -> String {
    if r.is_infinite() {
        (if r > 0.0 { "∞" } else { "−∞" }).to_string()
    } else {
        format!("{r:.3}")
    }
}

/// A p-value for people: three decimals, or scientific below 0.001.
fn fmt_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// A score for people: one decimal at most.
fn fmt_score(s: f64) -> String {
    fmt_value((s * 10.0).round() / 10.0)
}

fn metric_check(j: &Judged, alpha: f64) -> Check {
    let (m, r) = (&j.metric, &j.judgement);
    let expected = format!(
        "no significant {} beyond {} % (α = {alpha}, {}){}",
        m.direction.name(),
        fmt_value(m.allowance * 100.0),
        m.direction.sidedness(),
        if m.critical { "; critical" } else { "" }
    );
    let test = match (r.u, r.note) {
        (Some(u), _) => format!("U = {}, p = {}", fmt_value(u), fmt_p(r.p)),
        (None, note) => note.unwrap_or("no test").to_string(),
    };
    let measured = format!(
        "{}: median {} → {}, ratio {}, shift {} [{}, {}], {test}, n = {}/{}",
        r.label(),
        fmt_value(r.baseline_median),
        fmt_value(r.canary_median),
        fmt_ratio(r.ratio),
        fmt_value(r.shift.estimate),
        fmt_value(r.shift.low),
        fmt_value(r.shift.high),
        r.n_baseline,
        r.n_canary,
    );
    let check = Check::new(&m.name, expected, measured, !r.harmful);
    if m.critical { check } else { check.advisory() }
}

fn score_check(p: &CanaryProbe, s: &Score) -> Check {
    let mut measured = fmt_score(s.score);
    if !s.critical_harmful.is_empty() {
        measured.push_str(&format!(
            "; critical metric harmful: {}",
            s.critical_harmful.join(", ")
        ));
    }
    Check::new(
        "canary score",
        format!(
            "≥ {} and no critical metric harmful",
            fmt_value(p.pass_score)
        ),
        measured,
        passes(p, s),
    )
}

fn passes(p: &CanaryProbe, s: &Score) -> bool {
    s.score >= p.pass_score && s.critical_harmful.is_empty()
}

fn summary(p: &CanaryProbe, judged: &[Judged], s: &Score) -> String {
    let named: Vec<String> = judged
        .iter()
        .filter(|j| j.judgement.harmful)
        .map(|j| format!("{} ({})", j.metric.name, j.judgement.label()))
        .collect();
    let harmful = if named.is_empty() {
        "no metric harmful".to_string()
    } else {
        format!("harmful: {}", named.join(", "))
    };
    let over = format!(
        "{} metric(s) over {} at step {}",
        judged.len(),
        format_duration(p.window),
        format_duration(p.step)
    );
    let score = fmt_score(s.score);
    let pass = fmt_value(p.pass_score);
    if passes(p, s) {
        return format!("canary score {score} ≥ {pass}: {harmful} ({over})");
    }
    let mut why = Vec::new();
    if !s.critical_harmful.is_empty() {
        why.push(format!(
            "critical metric harmful: {}",
            s.critical_harmful.join(", ")
        ));
    }
    if s.score < p.pass_score && s.score >= p.marginal_score {
        why.push(format!(
            "marginal (≥ {}): needs a human, and a release gate fails closed",
            fmt_value(p.marginal_score)
        ));
    }
    let cmp = if s.score >= p.pass_score { "≥" } else { "<" };
    let mut text = format!("canary score {score} {cmp} {pass}: {harmful}");
    for w in why {
        text.push_str("; ");
        text.push_str(&w);
    }
    format!("{text} ({over})")
}

fn table(judged: &[Judged]) -> Table {
    Table {
        title: "Canary against baseline, per metric".into(),
        columns: [
            "metric",
            "group",
            "direction",
            "baseline median",
            "canary median",
            "ratio (means)",
            "p",
            "classification",
        ]
        .map(String::from)
        .to_vec(),
        rows: judged
            .iter()
            .map(|j| {
                let (m, r) = (&j.metric, &j.judgement);
                vec![
                    m.name.clone(),
                    m.group.clone(),
                    m.direction.name().to_string(),
                    fmt_value(r.baseline_median),
                    fmt_value(r.canary_median),
                    fmt_ratio(r.ratio),
                    if r.u.is_some() {
                        fmt_p(r.p)
                    } else {
                        "-".into()
                    },
                    format!(
                        "{}{}",
                        r.label(),
                        if m.critical { " (critical)" } else { "" }
                    ),
                ]
            })
            .collect(),
    }
}

fn group_table(s: &Score) -> Table {
    Table {
        title: "Groups".into(),
        columns: ["group", "passing", "metrics", "score", "weight"]
            .map(String::from)
            .to_vec(),
        rows: s
            .groups
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    g.passing.to_string(),
                    g.metrics.to_string(),
                    fmt_score(g.score),
                    format!("{:.3}", g.weight),
                ]
            })
            .collect(),
    }
}

/// A finite number, or null (JSON has no infinity).
fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn measure(o: &mut ProbeOutput, p: &CanaryProbe, judged: &[Judged], s: &Score) {
    o.measure("score", num(s.score));
    o.measure("pass_score", num(p.pass_score));
    o.measure("marginal_score", num(p.marginal_score));
    o.measure("alpha", num(p.alpha));
    o.measure("test", TEST);
    o.measure("assumption", ASSUMPTION);
    o.measure("window_s", num(p.window.as_secs_f64()));
    o.measure("step_s", num(p.step.as_secs_f64()));
    o.measure("min_points", p.min_points);
    o.measure("critical_harmful", s.critical_harmful.clone());
    o.measure("harmful", s.harmful.clone());
    let groups: BTreeMap<&str, Value> = s
        .groups
        .iter()
        .map(|g| {
            (
                g.name.as_str(),
                json!({ "score": num(g.score), "weight": num(g.weight) }),
            )
        })
        .collect();
    o.measure("groups", json!(groups));
    let metrics: Vec<Value> = judged.iter().map(metric_json).collect();
    o.measure("metrics", metrics);
}

fn metric_json(j: &Judged) -> Value {
    let (m, r) = (&j.metric, &j.judgement);
    json!({
        "name": m.name,
        "group": m.group,
        "direction": m.direction.name(),
        "sided": m.direction.sidedness(),
        "allowance": num(m.allowance),
        "critical": m.critical,
        "classification": r.label(),
        "harmful": r.harmful,
        "n_baseline": r.n_baseline,
        "n_canary": r.n_canary,
        "nan_baseline": j.pair.baseline.nan,
        "nan_canary": j.pair.canary.nan,
        "baseline_median": num(r.baseline_median),
        "canary_median": num(r.canary_median),
        "baseline_mean": num(r.baseline_mean),
        "canary_mean": num(r.canary_mean),
        "ratio": num(r.ratio),
        "u": r.u.map_or(Value::Null, num),
        "p": num(r.p),
        "shift": num(r.shift.estimate),
        "shift_low": num(r.shift.low),
        "shift_high": num(r.shift.high),
        "shift_confidence": num(r.shift.confidence),
        "note": r.note,
        "baseline_query": m.baseline.display,
        "canary_query": m.canary.display,
    })
}

/// `metric-<i>-<name as a file name>.svg`.
fn chart_name(i: usize, name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("metric-{i}-{}.svg", slug.trim_matches('-'))
}

fn attach_chart(o: &mut ProbeOutput, ctx: &ProbeContext, p: &CanaryProbe, i: usize, j: &Judged) {
    let side = |name: &str, points: &[(f64, f64)]| Series {
        labels: BTreeMap::from([("__name__".to_string(), name.to_string())]),
        points: points.to_vec(),
    };
    let series = [
        side("baseline", &j.pair.baseline.points),
        side("canary", &j.pair.canary.points),
    ];
    let title = format!("{} ({})", j.metric.name, j.judgement.label());
    let written = chart::series_svg(&title, p.window, &series).and_then(|svg| {
        ctx.write_evidence(
            &chart_name(i, &j.metric.name),
            svg.as_bytes(),
            &format!("canary and baseline over the window: {}", j.metric.name),
            "image/svg+xml",
        )
    });
    match written {
        Ok(ev) => o.evidence.push(ev),
        Err(e) => {
            let tail = o.log_tail.get_or_insert_with(String::new);
            tail.push_str(&e);
            tail.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well_and_chart_names_are_file_names() {
        assert_eq!(fmt_ratio(f64::INFINITY), "∞");
        assert_eq!(fmt_ratio(1.23456), "1.235");
        assert_eq!(fmt_p(0.0001234), "1.2e-4");
        assert_eq!(fmt_p(0.25), "0.250");
        assert_eq!(fmt_score(200.0 / 3.0), "66.7");
        assert_eq!(fmt_score(100.0), "100");
        assert_eq!(fmt_value(-0.0), "0");
        assert_eq!(
            chart_name(0, "p99 latency (ms)"),
            "metric-0-p99-latency--ms.svg"
        );
        assert_eq!(num(f64::INFINITY), Value::Null);
    }

    /// A probe of `n` metrics named m0…, m0 critical when `critical`.
    fn probe(n: usize, critical: bool) -> CanaryProbe {
        let mut text = String::from("url = \"http://127.0.0.1:9\"\nwindow = \"10m\"\n");
        for i in 0..n {
            text.push_str(&format!(
                "[[metric]]\nname = \"m{i}\"\nquery = 'x{{{{group}}}}'\ncritical = {}\n",
                i == 0 && critical
            ));
        }
        let raw: super::super::RawCanaryProbe = toml::from_str(&text).unwrap();
        raw.validate(&mut crate::probe::Validator::default())
            .unwrap()
    }

    /// The probe's output when the first `harmful` metrics rise by half and the rest do not.
    fn outcome(p: &CanaryProbe, harmful: usize) -> (ProbeOutput, tempfile::TempDir) {
        let side = |level: f64| fetch::Side {
            points: (0..60)
                .map(|t| (f64::from(t), level + f64::from(t % 5)))
                .collect(),
            nan: 0,
        };
        let rule = judge::Rule {
            direction: judge::Direction::Increase,
            allowance: 0.0,
            alpha: p.alpha,
            min_points: p.min_points,
        };
        let judged: Vec<Judged> = p
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let pair = fetch::Pair {
                    baseline: side(10.0),
                    canary: side(if i < harmful { 15.0 } else { 10.0 }),
                };
                let judgement =
                    judge::judge(&pair.baseline.values(), &pair.canary.values(), &rule).unwrap();
                Judged {
                    metric: m.clone(),
                    pair,
                    judgement,
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let ctx = ProbeContext::outside_run(
            "canary",
            dir.path().into(),
            dir.path().into(),
            Default::default(),
            Default::default(),
        );
        (output(p, &judged, &ctx), dir)
    }

    #[test]
    fn a_passing_score_warns_of_a_harmful_metric_and_a_marginal_one_fails_closed() {
        use crate::model::Status;
        // 1 of 20 harmful: 95 passes, the metric's advisory check warns.
        let (o, dir) = outcome(&probe(20, false), 1);
        assert_eq!(o.status(), Status::Warn, "{}", o.summary);
        assert!(
            o.summary
                .starts_with("canary score 95 ≥ 95: harmful: m0 (high)"),
            "{}",
            o.summary
        );
        assert_eq!(o.evidence.len(), 20);
        assert!(dir.path().join(&o.evidence[0].path).is_file());
        // 1 of 4: 75 is marginal, and fails.
        let (o, _dir) = outcome(&probe(4, false), 1);
        assert_eq!(o.status(), Status::Fail);
        assert!(
            o.summary.contains("canary score 75 < 95")
                && o.summary.contains("marginal (≥ 75): needs a human"),
            "{}",
            o.summary
        );
        // A critical metric harmful fails with a passing score.
        let (o, _dir) = outcome(&probe(20, true), 1);
        assert_eq!(o.status(), Status::Fail);
        assert!(
            o.summary
                .contains("canary score 95 ≥ 95: harmful: m0 (high); critical metric harmful: m0"),
            "{}",
            o.summary
        );
        assert_eq!(o.measured["score"], 95.0);
        // Nothing harmful passes.
        let (o, _dir) = outcome(&probe(3, true), 0);
        assert_eq!(o.status(), Status::Pass, "{}", o.summary);
    }
}

//! Renderers of a [`Comparison`]: Markdown (`compare.md`), the terminal table (comfy-table)
//! and the files of `--out` (`compare.json`, `compare.md`, the latency charts). They show what
//! the comparison holds and decide nothing.

use std::fmt::Write as _;
use std::path::Path;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

use super::latency::{LatencyChange, quantile_name};
use super::{Comparison, Figure, ItemChange, Judgement};
use crate::error::Result;
use crate::report::write_atomic;

fn judgement(j: Judgement) -> &'static str {
    match j {
        Judgement::Same => "same",
        Judgement::Improved => "improved",
        Judgement::Regressed => "REGRESSED",
        Judgement::Inconclusive => "INCONCLUSIVE",
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn delta(f: &Figure) -> String {
    let Some(d) = f.delta else {
        return if f.baseline == f.new {
            String::new()
        } else {
            "changed".into()
        };
    };
    let unit = if f.name.ends_with("_percent") {
        " pt"
    } else {
        ""
    };
    match f.delta_percent {
        Some(p) if unit.is_empty() => format!("{d:+.3} ({p:+.1} %)"),
        _ => format!("{d:+.3}{unit}"),
    }
}

/// One line per change of status, for the terminal table and the Markdown summary.
fn status(i: &ItemChange) -> String {
    if i.baseline_status == i.new_status {
        i.new_status.as_str().into()
    } else {
        format!("{} → {}", i.baseline_status.as_str(), i.new_status.as_str())
    }
}

/// The headline: `no regression` or `N regression(s)`.
pub fn headline(c: &Comparison) -> String {
    if c.regressed {
        format!(
            "REGRESSED: {} finding(s) against the baseline",
            c.regressions.len()
        )
    } else {
        "no regression against the baseline".into()
    }
}

fn latency_lines(l: &LatencyChange) -> Vec<String> {
    let mut out = vec![
        format!(
            "{}; alpha {}; n = {} baseline, {} new",
            l.test, l.alpha, l.n_baseline, l.n_new
        ),
        format!("assumes {}", l.assumptions),
        format!(
            "median {:.3} → {:.3} ms; Hodges–Lehmann shift {:+.3} ms ({:+.3} … {:+.3} ms at {} %), allowance {:.3} ms; P(new slower) {:.3}; p (one-sided) {:.3e}, p (two-sided) {:.3e}",
            l.baseline_median_ms,
            l.new_median_ms,
            l.shift_ms,
            l.shift_low_ms,
            l.shift_high_ms,
            l.confidence * 100.0,
            l.allowance_ms,
            l.probability_new_slower,
            l.p_slower,
            l.p_two_sided
        ),
    ];
    for t in &l.tail {
        let side = |c: &Option<super::latency::QuantileCi>| match c {
            Some(c) => format!(
                "{:.3} ms ({:.3} … {:.3})",
                c.estimate_ms, c.low_ms, c.high_ms
            ),
            None => "too few samples to bound it".into(),
        };
        out.push(format!(
            "{}: {} → {}{}",
            quantile_name(t.quantile),
            side(&t.baseline),
            side(&t.new),
            if t.regressed { " REGRESSED" } else { "" }
        ));
    }
    if let Some(t) = &l.target_part {
        let p99 = |c: &Option<super::latency::QuantileCi>| {
            c.as_ref()
                .map_or("—".to_string(), |c| format!("{:.3}", c.estimate_ms))
        };
        out.push(format!(
            "the target's part (less the generator's own lateness): median {:.3} → {:.3} ms, shift {:+.3} ms ({:+.3} … {:+.3}), p (one-sided) {:.3e}; p99 {} → {} ms{}",
            t.baseline_median_ms,
            t.new_median_ms,
            t.shift_ms,
            t.shift_low_ms,
            t.shift_high_ms,
            t.p_slower,
            p99(&t.p99.baseline),
            p99(&t.p99.new),
            if l.explained_by_generator.is_empty() {
                String::new()
            } else {
                format!(
                    "; INCONCLUSIVE: {} rose only with the generator's lateness",
                    l.explained_by_generator.join(" and ")
                )
            }
        ));
    }
    out
}

/// The terminal table: one row per item, then the regressions.
pub fn terminal(c: &Comparison) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["item", "kind", "status", "judgement", "key figures"]);
    for i in &c.items {
        let mut figures: Vec<String> = Vec::new();
        if let Some(l) = &i.latency {
            figures.push(format!(
                "shift {:+.3} ms ({:+.3} … {:+.3}), p {:.1e}",
                l.shift_ms, l.shift_low_ms, l.shift_high_ms, l.p_slower
            ));
        }
        figures.extend(
            i.figures
                .iter()
                .filter(|f| f.delta.is_some_and(|d| d != 0.0))
                .take(4)
                .map(|f| format!("{} {} → {}", f.name, value(&f.baseline), value(&f.new))),
        );
        t.add_row([
            i.id.clone(),
            i.kind.clone(),
            status(i),
            judgement(i.judgement).to_string(),
            figures.join("\n"),
        ]);
    }
    let mut s = format!("{t}\n{}\n", headline(c));
    for r in &c.regressions {
        let _ = writeln!(s, "  - {r}");
    }
    s
}

/// The Markdown report (`compare.md`).
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Compared with the baseline\n\n**{}**\n", headline(c));
    let _ = writeln!(s, "| | baseline | new |\n|---|---|---|");
    for (what, b, n) in [
        ("report", &c.baseline.report, &c.new.report),
        ("checklist", &c.baseline.checklist, &c.new.checklist),
        (
            "checklist SHA-256",
            &c.baseline.checklist_sha256,
            &c.new.checklist_sha256,
        ),
        ("started", &c.baseline.started_at, &c.new.started_at),
        ("verdict", &c.baseline.verdict, &c.new.verdict),
    ] {
        let _ = writeln!(s, "| {what} | {b} | {n} |");
    }
    let p = &c.policy;
    let _ = writeln!(
        s,
        "\nPolicy: alpha {}; latency centre allowance {} % of the baseline median, tail {} %; coverage {} points; availability {} points.\n",
        p.alpha,
        p.latency_allowance_percent,
        p.tail_allowance_percent,
        p.coverage_allowance_points,
        p.availability_allowance_points
    );
    for r in &c.regressions {
        let _ = writeln!(s, "- {r}");
    }
    let ch = &c.checklist_changes;
    for (what, list) in [
        ("Added", &ch.added),
        ("Removed", &ch.removed),
        ("Changed", &ch.changed),
    ] {
        if !list.is_empty() {
            let _ = writeln!(s, "\n{what} (not compared): {}", list.join("; "));
        }
    }
    for i in &c.items {
        item_markdown(&mut s, i);
    }
    s
}

fn item_markdown(s: &mut String, i: &ItemChange) {
    let _ = writeln!(
        s,
        "\n## {} ({}): {}\n\nStatus: {}\n",
        i.id,
        i.kind,
        judgement(i.judgement),
        status(i)
    );
    for n in &i.notes {
        let _ = writeln!(s, "- {n}");
    }
    if let Some(l) = &i.latency {
        let _ = writeln!(s);
        for line in latency_lines(l) {
            let _ = writeln!(s, "- {line}");
        }
        if let Some(chart) = &l.chart {
            let _ = writeln!(s, "\n![latency percentiles, baseline and new]({chart})");
        }
    }
    if let Some(m) = &i.memory {
        let _ = writeln!(
            s,
            "\n- slope {:.0} B/h ({:.0} … {:.0}) → {:.0} B/h ({:.0} … {:.0}); intervals {}",
            m.baseline.slope,
            m.baseline.low,
            m.baseline.high,
            m.new.slope,
            m.new.low,
            m.new.high,
            if m.overlap {
                "overlap"
            } else {
                "do not overlap"
            }
        );
    }
    if let Some(a) = &i.audit {
        for (what, list) in [("added", &a.added), ("fixed", &a.fixed)] {
            for adv in list {
                let _ = writeln!(s, "- {what}: {} {} ({})", adv.id, adv.package, adv.severity);
            }
        }
    }
    if !i.drill_steps.is_empty() {
        let _ = writeln!(
            s,
            "\n| step | baseline ms | new ms | Δ ms |\n|---|---|---|---|"
        );
        let ms = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.1}"));
        for st in &i.drill_steps {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                st.name,
                ms(st.baseline_ms),
                ms(st.new_ms),
                st.delta_ms.map_or("—".into(), |d| format!("{d:+.1}"))
            );
        }
    }
    if !i.figures.is_empty() {
        let _ = writeln!(s, "\n| figure | baseline | new | Δ |\n|---|---|---|---|");
        for f in &i.figures {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                f.name,
                value(&f.baseline),
                value(&f.new),
                delta(f)
            );
        }
    }
}

/// Write `compare.json`, `compare.md` and one `<item>-latency.svg` per latency item into
/// `dir`, setting each chart's path in the comparison first.
///
/// # Errors
/// [`crate::error::Error::Io`] when a file cannot be written.
pub fn write_all(c: &mut Comparison, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::error::Error::io("creating", dir, e))?;
    for i in &mut c.items {
        let id: String =
            i.id.chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || "-_.".contains(ch) {
                        ch
                    } else {
                        '-'
                    }
                })
                .collect();
        if let Some(l) = i.latency.as_mut()
            && let Some(svg) = l.svg.take()
        {
            let name = format!("{id}-latency.svg");
            write_atomic(&dir.join(&name), svg.as_bytes())?;
            l.chart = Some(name);
        }
    }
    let mut json = serde_json::to_string_pretty(&*c).expect("comparison serializes");
    json.push('\n');
    write_atomic(&dir.join("compare.json"), json.as_bytes())?;
    write_atomic(&dir.join("compare.md"), markdown(c).as_bytes())
}

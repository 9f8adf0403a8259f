//! The status page as one HTML document: inline CSS and SVG, no script, no external resource
//! (the page's Content-Security-Policy forbids both). Status is given by text as well as by
//! colour; light and dark schemes follow the reader's setting; it refreshes itself.

use maud::{Markup, PreEscaped, html};
use plotters::prelude::*;

use super::{DAYS, DayBar, MonitorStatus, StatusDoc};
use crate::report::chart::{CAPTION_FONT, render_svg};
use crate::report::html::{Head, document};
use crate::store::summary::{fmt_ms, fmt_pct, fmt_time};

/// Seconds between the page's own refreshes.
pub const REFRESH_S: u32 = 30;

const STYLE: &str = "
:root{color-scheme:light dark;--fg:#1a1a1a;--bg:#fff;--muted:#555;--line:#ccc;
--up:#1a7f37;--down:#c62828;--maint:#1565c0;--unknown:#9e9e9e}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--bg:#121212;--muted:#b0b0b0;
--line:#444;--up:#3fb950;--down:#ff6b6b;--maint:#64b5f6;--unknown:#8a8a8a}}
body{font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;
max-width:1000px;padding:1rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin:0}
section{border:1px solid var(--line);border-radius:6px;padding:1rem;margin:1rem 0}
.state{font-weight:700;padding:.1rem .5rem;border-radius:4px;color:#fff}
.s-up{background:var(--up)}.s-down{background:var(--down)}.s-maintenance{background:var(--maint)}
.s-unknown{background:#666}
.muted{color:var(--muted)}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid var(--line)}
svg.days rect.up{fill:var(--up)}svg.days rect.down{fill:var(--down)}
svg.days rect.maint{fill:var(--maint)}svg.days rect.unknown{fill:var(--unknown)}
.legend span{margin-right:1rem}.sw{display:inline-block;width:.8em;height:.8em;
vertical-align:middle}.sw.up{background:var(--up)}.sw.down{background:var(--down)}
.sw.maint{background:var(--maint)}.sw.unknown{background:var(--unknown)}.chart svg{max-width:100%;height:auto;background:#fff}
";

/// The whole page for `doc`.
pub fn page(doc: &StatusDoc) -> String {
    let head = Head {
        title: "Soak status",
        style: STYLE,
        generator: None,
        refresh_s: Some(REFRESH_S),
    };
    let markup = document(
        &head,
        html! {
                body {
                    header {
                        h1 { "Soak status" }
                        p { (doc.tracker) }
                        p.muted {
                            "Read " (fmt_time(doc.now_ms)) "; availability over "
                            (fmt_ms(doc.window_ms as f64)) ". This page refreshes every "
                            (REFRESH_S) " s."
                        }
                    }
                    main {
                        @if doc.monitors.is_empty() {
                            p { "No monitor in this store yet." }
                        }
                        @for m in &doc.monitors { (monitor(m, doc.now_ms)) }
                    }
                }
        },
    );
    markup.into_string()
}

/// One monitor's section.
fn monitor(m: &MonitorStatus, now_ms: i64) -> Markup {
    let s = &m.summary;
    let state = m.state.as_deref().unwrap_or("unknown");
    let held = m.state_since_ms.map(|t| fmt_ms((now_ms - t).max(0) as f64));
    let budget_left = if s.budget_ms > 0.0 {
        format!("{:.1} %", (1.0 - s.budget_used) * 100.0)
    } else {
        "n/a".into()
    };
    html! {
        section aria-labelledby={ "m-" (s.monitor) } {
            h2 id={ "m-" (s.monitor) } {
                (s.monitor) " "
                span class={ "state s-" (state) } { (state.to_uppercase()) }
            }
            p {
                @match (&held, m.state_since_ms) {
                    (Some(h), Some(t)) if state == "unknown" => {
                        "the tracker is not running; last check " (h) " ago (" (fmt_time(t)) ")"
                    },
                    (Some(h), Some(t)) => { (state) " for " (h) " (since " (fmt_time(t)) ")" },
                    _ => { "no check recorded yet" },
                }
                " · " (s.kind) " check"
            }
            table {
                tr {
                    th scope="col" { "availability" } th scope="col" { "target" }
                    th scope="col" { "error budget left" } th scope="col" { "burn rates" }
                    th scope="col" { "coverage" } th scope="col" { "error rate" }
                }
                tr {
                    td { (fmt_pct(s.availability)) }
                    td { (format!("{} %", s.target_percent)) }
                    td { (budget_left) }
                    td {
                        @for (w, r) in &s.burn_rates {
                            (w) ": " (r.map_or("n/a".to_string(), |r| format!("{r:.2}"))) " "
                        }
                    }
                    td { (fmt_pct(Some(s.coverage))) }
                    td { (fmt_pct(s.error_rate)) }
                }
            }
            h3 { "Last " (DAYS) " days" }
            (day_bars(&m.days))
            p.legend.muted {
                span { i.sw.up {} " up" } span { i.sw.down {} " down" }
                span { i.sw.maint {} " maintenance" } span { i.sw.unknown {} " not observed" }
                " · each bar: the observed part of one UTC day"
            }
            h3 { "Response time, last 24 hours" }
            div.chart { (response_chart(m, now_ms)) }
            h3 { "Incidents" }
            (incidents(m, now_ms))
        }
    }
}

/// One coloured part of a day's bar: (CSS class, y, height), in pixels.
type Part = (&'static str, f64, f64);

/// 90 stacked bars, one per day (down at the top, up at the bottom), each with a tooltip of
/// the day's figures.
fn day_bars(days: &[DayBar]) -> Markup {
    let (w, h) = (8.0, 40.0);
    let width = days.len() as f64 * (w + 2.0);
    let bars: Vec<(f64, Vec<Part>)> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            // Shares of the observed time (a day never observed is all unknown); the tooltip
            // gives the unobserved time.
            let seen = d.up + d.down + d.maintenance;
            let of = |share: f64| if seen > 0.0 { share / seen } else { 0.0 };
            let mut y = 0.0;
            let parts = [
                ("down", of(d.down)),
                ("maint", of(d.maintenance)),
                ("unknown", if seen > 0.0 { 0.0 } else { 1.0 }),
                ("up", of(d.up)),
            ]
            .into_iter()
            .filter(|(_, share)| *share > 0.0)
            .map(|(class, share)| {
                let part = (class, y, share * h);
                y += share * h;
                part
            })
            .collect();
            (i as f64 * (w + 2.0), parts)
        })
        .collect();
    html! {
        svg.days xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(h)
            viewBox={ "0 0 " (width) " " (h) }
            aria-label="one bar per day: up, down, maintenance, unknown" {
            @for ((x, parts), d) in bars.iter().zip(days) {
                g {
                    title { (day_title(d)) }
                    @for (class, y, height) in parts {
                        rect class=(class) x=(x) y=(y) width=(w) height=(height) {}
                    }
                }
            }
        }
    }
}

/// A day's tooltip: date, availability, down time and checks.
fn day_title(d: &DayBar) -> String {
    format!(
        "{}: availability {}, down {}, maintenance {}, unknown {}, {} checks, {} failed",
        d.date,
        fmt_pct(d.availability),
        fmt_ms(d.down * 86_400_000.0),
        fmt_ms(d.maintenance * 86_400_000.0),
        fmt_ms(d.unknown * 86_400_000.0),
        d.checks,
        d.failures
    )
}

/// Mean and slowest response time per minute (plotters SVG), or why there is none.
fn response_chart(m: &MonitorStatus, now_ms: i64) -> Markup {
    let pts = &m.response_times;
    if pts.is_empty() {
        return html! { p.muted { "no checks in the last 24 hours" } };
    }
    // x: minutes before now, from the first bucket (at least the last 10 minutes).
    let x = |t: i64| (t - now_ms) as f64 / 60_000.0;
    let top = pts.iter().map(|p| p.max_ms).fold(1.0, f64::max) * 1.1;
    let left = (x(pts[0].start_ms) - 1.0).min(-10.0);
    let svg = render_svg("response time", (900, 220), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "response time (ms): mean and slowest per minute",
                CAPTION_FONT,
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(left..0.0, 0.0..top)?;
        chart.configure_mesh().x_desc("minutes before now").draw()?;
        let slowest: Vec<(f64, f64)> = pts.iter().map(|p| (x(p.start_ms), p.max_ms)).collect();
        let mean: Vec<(f64, f64)> = pts.iter().map(|p| (x(p.start_ms), p.mean_ms)).collect();
        for (colour, label, line) in [(RED, "slowest", slowest), (BLUE, "mean", mean)] {
            chart
                .draw_series(LineSeries::new(line.clone(), colour))?
                .label(label)
                .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 16, ly)], colour));
            // A point per minute too: a soak of a few minutes has too few for a line.
            chart.draw_series(line.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        Ok(())
    });
    match svg {
        Ok(svg) => html! { (PreEscaped(svg)) },
        Err(e) => html! { p { (e) } },
    }
}

/// The incidents of the window, newest first.
fn incidents(m: &MonitorStatus, now_ms: i64) -> Markup {
    let list = &m.summary.incidents;
    html! {
        @if list.is_empty() {
            p.muted { "none in the window" }
        } @else {
            table {
                tr {
                    th scope="col" { "start" } th scope="col" { "end" }
                    th scope="col" { "duration" } th scope="col" { "failed checks" }
                    th scope="col" { "cause" }
                }
                @for i in list.iter().rev() {
                    tr {
                        td { (fmt_time(i.start_ms)) }
                        td { (i.end_ms.map_or("ongoing".to_string(), fmt_time)) }
                        td { (fmt_ms((i.end_ms.unwrap_or(now_ms) - i.start_ms) as f64)) }
                        td { (i.failures) }
                        td { (i.first_error) }
                    }
                }
            }
        }
    }
}

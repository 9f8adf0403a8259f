//! The `uptime` probe's evidence: the timeline chart (`timeline.svg`, one stacked column per
//! bucket) and the summary (`summary.json`). Both sources (the soak store and Prometheus)
//! attach the same files.

use plotters::prelude::*;

use crate::model::ProbeOutput;
use crate::probe::ProbeContext;
use crate::report::chart::{CAPTION_FONT, render_svg};
use crate::store::summary::{self, Summary, fmt_time};

/// The timeline chart (`timeline.svg`) and the summary (`summary.json`) as evidence; a chart
/// that cannot be drawn or written leaves its reason in the log tail.
pub(super) fn attach_evidence(
    ctx: &ProbeContext,
    o: &mut ProbeOutput,
    s: &Summary,
    buckets: Result<Vec<summary::Bucket>, String>,
) {
    let chart = buckets.and_then(|b| timeline_svg(s, &b)).and_then(|svg| {
        ctx.write_evidence(
            "timeline.svg",
            svg.as_bytes(),
            "uptime timeline (up, down, maintenance, unknown)",
            "image/svg+xml",
        )
    });
    match chart {
        Ok(ev) => o.evidence.push(ev),
        Err(e) => o.log_tail = Some(e),
    }
    if let Ok(json) = serde_json::to_vec_pretty(s)
        && let Ok(ev) =
            ctx.write_evidence("summary.json", &json, "uptime summary", "application/json")
    {
        o.evidence.push(ev);
    }
}

/// The timeline chart: one stacked column per bucket (up green, maintenance blue, down red,
/// unknown grey), x in seconds, minutes, hours or days from the window start.
///
/// # Errors
/// "drawing the uptime timeline chart: …" when plotting fails.
fn timeline_svg(s: &Summary, buckets: &[summary::Bucket]) -> Result<String, String> {
    render_svg("uptime timeline", (900, 240), |root| {
        // The x unit follows the window: seconds, minutes, hours or days from its start.
        let (unit_ms, unit) = match s.window_ms {
            w if w <= 120_000 => (1_000.0, "seconds"),
            w if w <= 7_200_000 => (60_000.0, "minutes"),
            w if w <= 259_200_000 => (3_600_000.0, "hours"),
            _ => (86_400_000.0, "days"),
        };
        let span_h = s.window_ms as f64 / unit_ms;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: up / down / maintenance / unknown, {} → {}",
                    s.monitor,
                    fmt_time(s.from_ms),
                    fmt_time(s.to_ms)
                ),
                CAPTION_FONT,
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..span_h, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "{unit} from window start (UTC); green up, red down, blue maintenance, grey unknown"
            ))
            .y_desc("share")
            .disable_mesh()
            .draw()?;
        let width_h = span_h / buckets.len().max(1) as f64;
        let grey = RGBColor(190, 190, 190);
        let green = RGBColor(46, 160, 67);
        let red = RGBColor(207, 34, 46);
        let blue = RGBColor(84, 130, 230);
        for b in buckets {
            let x0 = (b.start_ms - s.from_ms) as f64 / unit_ms;
            let x1 = x0 + width_h;
            let mut y = 0.0;
            for (share, color) in [
                (b.up, green),
                (b.maint, blue),
                (b.down, red),
                (b.unknown, grey),
            ] {
                if share > 0.0 {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x0, y), (x1, (y + share).min(1.0))],
                        color.filled(),
                    )))?;
                }
                y += share;
            }
        }
        Ok(())
    })
}

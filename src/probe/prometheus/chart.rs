//! The range query's chart: one line per series over the window (the first ten labelled).

use std::time::Duration;

use plotters::prelude::*;

use super::api::Series;
use crate::report::chart::{CAPTION_FONT, render_svg};

/// Every series of a range query over `window`, x in seconds, minutes, hours or days from the
/// window's start.
///
/// # Errors
/// "drawing the PromQL series chart: …" when plotting fails.
pub fn series_svg(expr: &str, window: Duration, series: &[Series]) -> Result<String, String> {
    let end = series
        .iter()
        .flat_map(|s| s.points.last())
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let start = end - window.as_secs_f64();
    let (unit_s, unit) = match window.as_secs() {
        w if w <= 120 => (1.0, "seconds"),
        w if w <= 7_200 => (60.0, "minutes"),
        w if w <= 259_200 => (3_600.0, "hours"),
        _ => (86_400.0, "days"),
    };
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.01).max(1e-9);
    render_svg("PromQL series", (900, 320), |root| {
        let title: String = expr.chars().take(90).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(title, CAPTION_FONT)
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..window.as_secs_f64() / unit_s, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc(format!("{unit} from window start"))
            .y_desc("value")
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let line = chart.draw_series(LineSeries::new(
                s.points.iter().map(|p| ((p.0 - start) / unit_s, p.1)),
                color.stroke_width(2),
            ))?;
            if i < 10 {
                line.label(s.name().chars().take(60).collect::<String>())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

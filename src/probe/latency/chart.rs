//! The latency-by-percentile chart (SVG): the classic HdrHistogram plot, with the percentile
//! axis on a log scale of `1 / (1 − q)` so the tail (99 %, 99.9 %, 99.99 %) gets as much room
//! as the median, and the corrected and uncorrected series side by side so the effect of
//! coordinated omission is visible at a glance.

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::report::chart::{CAPTION_FONT, render_svg};

/// Points `(x = log10(1 / (1 − q)), y = latency in ms)` of `h` (values in µs).
fn points(h: &Histogram<u64>, x_cap: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    if h.is_empty() {
        return pts;
    }
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let x = if q >= 1.0 {
            x_cap
        } else {
            (-(1.0 - q).log10()).min(x_cap)
        };
        pts.push((x, v.value_iterated_to() as f64 / 1000.0));
    }
    pts
}

/// The label of a percentile-axis position: 0 → `0%`, 1 → `90%`, 2 → `99%`, 3 → `99.9%`.
fn percentile_label(x: f64) -> String {
    let k = x.round() as i32;
    if (x - f64::from(k)).abs() > 1e-6 {
        return String::new();
    }
    match k {
        0 => "0%".into(),
        1 => "90%".into(),
        k => format!("99.{}%", "9".repeat((k - 2) as usize)).replace("99.%", "99%"),
    }
}

/// Render the chart to an SVG string.
///
/// # Errors
/// "drawing the latency chart: …" when plotting fails.
pub fn render(
    title: &str,
    corrected: &Histogram<u64>,
    uncorrected: &Histogram<u64>,
) -> Result<String, String> {
    render_pair(
        title,
        ("corrected (from intended send time)", corrected),
        ("uncorrected (from actual send time)", uncorrected),
    )
}

/// Render two labelled percentile curves on one chart (red the first, blue the second), e.g.
/// a baseline run and a new one.
///
/// # Errors
/// "drawing the latency chart: …" when plotting fails.
pub fn render_pair(
    title: &str,
    (first_label, corrected): (&str, &Histogram<u64>),
    (second_label, uncorrected): (&str, &Histogram<u64>),
) -> Result<String, String> {
    let n = corrected.len().max(uncorrected.len()).max(1) as f64;
    let (first_label, second_label) = (first_label.to_string(), second_label.to_string());
    // Enough decades to show the last sample, at least 99.99 %, at most 99.9999 %.
    let x_cap = n.log10().ceil().clamp(4.0, 6.0);
    let c = points(corrected, x_cap);
    let u = points(uncorrected, x_cap);
    let y_max = c
        .iter()
        .chain(u.iter())
        .map(|p| p.1)
        .fold(0.0f64, f64::max)
        .max(0.001)
        * 1.08;
    render_svg("latency", (860, 460), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, CAPTION_FONT)
            .margin(14)
            .margin_right(40)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_cap, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_labels(x_cap as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y:.3}"))
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .draw()?;
        let red = RGBColor(200, 30, 30);
        let blue = RGBColor(40, 90, 200);
        chart
            .draw_series(LineSeries::new(c, red.stroke_width(2)))?
            .label(first_label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(u, blue.stroke_width(2)))?
            .label(second_label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_nines() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(4.0), "99.99%");
        assert_eq!(percentile_label(2.5), "");
    }

    #[test]
    fn chart_is_svg_with_both_series() {
        let mut c = super::super::record::new_histogram();
        let mut u = super::super::record::new_histogram();
        for v in 1..5000u64 {
            c.record(v * 2).unwrap();
            u.record(v).unwrap();
        }
        let svg = render("t", &c, &u).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("corrected (from intended send time)"));
        assert!(svg.contains("99.9%"));
        assert!(svg.matches("<polyline").count() >= 2);
    }
}

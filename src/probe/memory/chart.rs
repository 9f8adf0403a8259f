//! The memory trend chart (SVG): the fitted figure (`RssAnon` or `VmRSS`) and `VmRSS` over
//! time, the Theil–Sen line of every judged segment with its 95 % slope bounds, and a marker
//! at every restart. Rendered with plotters into a string and stored as evidence; report.md
//! embeds it.

use plotters::prelude::*;

use crate::report::chart::{Area, CAPTION_FONT, DrawResult, render_svg};

use super::analysis::{Analysis, Metric, Sample};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 420;
const MIB: f64 = 1024.0 * 1024.0;

/// Draw the chart; returns the SVG text.
///
/// # Errors
/// A message when plotters fails (it should not with an in-memory backend).
pub fn render(samples: &[Sample], a: &Analysis, title: &str) -> Result<String, String> {
    render_svg("memory", (WIDTH, HEIGHT), |root| {
        draw(root, samples, a, title)
    })
}

/// The chart's coordinates: f64 time on x, MiB on y.
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The frame every series is drawn in: the time divisor (1 = seconds, 60 = minutes), the
/// y range in MiB and the figure fitted.
struct Frame {
    tdiv: f64,
    y0: f64,
    y1: f64,
    metric: Metric,
}

fn draw(root: &Area<'_>, samples: &[Sample], a: &Analysis, title: &str) -> DrawResult {
    let metric = a.metric.unwrap_or(Metric::Rss);
    let minutes = samples.last().map(|s| s.t_s).unwrap_or(0.0) > 300.0;
    let (tdiv, tunit) = if minutes { (60.0, "min") } else { (1.0, "s") };
    let t_max = samples
        .last()
        .map(|s| s.t_s / tdiv)
        .unwrap_or(1.0)
        .max(1e-3);
    let values = samples
        .iter()
        .flat_map(|s| [Some(s.rss_bytes), metric.of(s)])
        .flatten()
        .map(|v| v as f64 / MIB);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(0.5);
    let frame = Frame {
        tdiv,
        y0: (lo - pad).max(0.0),
        y1: hi + pad,
        metric,
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, CAPTION_FONT)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, frame.y0..frame.y1)?;
    chart
        .configure_mesh()
        .x_desc(format!("time since sampling started ({tunit})"))
        .y_desc("MiB")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    draw_warmups(&mut chart, &frame, samples, a)?;
    draw_restarts(&mut chart, &frame, a)?;
    let longest = a.longest_fit().map(|s| s.index).unwrap_or(0);
    for seg in &a.segments {
        draw_segment(&mut chart, &frame, samples, seg, seg.index == longest)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Warm-up stretches (recorded, not fitted), shaded.
fn draw_warmups(
    chart: &mut Chart<'_, '_>,
    f: &Frame,
    samples: &[Sample],
    a: &Analysis,
) -> DrawResult {
    let shade = RGBColor(0, 0, 0).mix(0.06);
    let mut shaded = false;
    for seg in &a.segments {
        let from = if seg.index == 0 {
            0.0
        } else {
            samples[seg.range.start].t_s
        };
        let to = samples
            .get(seg.used.start)
            .map(|s| s.t_s)
            .unwrap_or_else(|| samples[seg.range.end - 1].t_s);
        if to > from {
            let r = chart.draw_series(std::iter::once(Rectangle::new(
                [(from / f.tdiv, f.y0), (to / f.tdiv, f.y1)],
                shade.filled(),
            )))?;
            if !shaded {
                r.label("warm-up (not fitted)").legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], shade.filled())
                });
                shaded = true;
            }
        }
    }
    Ok(())
}

/// A grey vertical line at every restart or drop.
fn draw_restarts(chart: &mut Chart<'_, '_>, f: &Frame, a: &Analysis) -> DrawResult {
    let marker = RGBColor(150, 150, 150);
    for cut in a.restarts() {
        let t = match *cut {
            super::analysis::Cut::NewProcess { t_s, .. }
            | super::analysis::Cut::Drop { t_s, .. } => t_s / f.tdiv,
        };
        chart.draw_series(LineSeries::new(
            [(t, f.y0), (t, f.y1)],
            marker.stroke_width(1),
        ))?;
    }
    Ok(())
}

/// One segment: `VmRSS`, the fitted figure, and the Theil–Sen line with its 95 % bounds
/// (labelled on the `longest` fitted segment).
fn draw_segment(
    chart: &mut Chart<'_, '_>,
    f: &Frame,
    samples: &[Sample],
    seg: &super::analysis::Segment,
    longest: bool,
) -> DrawResult {
    let rss_color = RGBColor(170, 170, 170);
    let fit_color = RGBColor(31, 119, 180);
    let line_color = RGBColor(214, 39, 40);
    let pts = |v: &dyn Fn(&Sample) -> Option<u64>| -> Vec<(f64, f64)> {
        samples[seg.range.clone()]
            .iter()
            .filter_map(|s| v(s).map(|v| (s.t_s / f.tdiv, v as f64 / MIB)))
            .collect()
    };
    let rss = chart.draw_series(LineSeries::new(pts(&|s| Some(s.rss_bytes)), rss_color))?;
    if seg.index == 0 {
        rss.label("VmRSS")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], rss_color));
    }
    let metric = f.metric;
    if metric != Metric::Rss {
        let m = chart.draw_series(LineSeries::new(
            pts(&|s| metric.of(s)),
            fit_color.stroke_width(2),
        ))?;
        if seg.index == 0 {
            m.label(metric.proc_name()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 16, y)], fit_color.stroke_width(2))
            });
        }
    }
    let Some(fit) = &seg.fit else { return Ok(()) };
    let t0 = samples[seg.used.start].t_s;
    let t1 = samples[seg.used.end - 1].t_s;
    let at = |slope: f64, t: f64| {
        // Lines through the fit's centre (median t, median y), scipy's intercept.
        let tm = (t0 + t1) / 2.0;
        let ym = fit.theil_sen.intercept + fit.theil_sen.slope * tm;
        (t / f.tdiv, (ym + slope * (t - tm)) / MIB)
    };
    for bound in [fit.theil_sen.low_slope, fit.theil_sen.high_slope] {
        chart.draw_series(LineSeries::new(
            [at(bound, t0), at(bound, t1)],
            line_color.mix(0.45).stroke_width(1),
        ))?;
    }
    let l = chart.draw_series(LineSeries::new(
        [at(fit.theil_sen.slope, t0), at(fit.theil_sen.slope, t1)],
        line_color.stroke_width(2),
    ))?;
    if longest {
        l.label(format!(
            "Theil–Sen {} (95 % CI {} … {})",
            super::format_rate(fit.slope_bph()),
            super::format_rate(fit.low_bph()),
            super::format_rate(fit.high_bph())
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], line_color.stroke_width(2)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::analysis::{MetricChoice, Settings, analyze};
    use super::*;

    #[test]
    fn chart_has_the_fit_and_the_restart() {
        let samples: Vec<Sample> = (0..60)
            .map(|i| Sample {
                t_s: f64::from(i),
                pid: if i < 30 { 5 } else { 6 },
                started: if i < 30 { 1 } else { 2 },
                rss_bytes: 50_000_000 + u64::from(i as u32) * 100_000,
                anon_bytes: Some(30_000_000 + u64::from(i as u32) * 100_000),
            })
            .collect();
        let a = analyze(
            &samples,
            &Settings {
                warmup_s: 2.0,
                min_samples: 10,
                metric: MetricChoice::Auto,
                max_growth_bytes_per_hour: 1e6,
            },
        );
        let svg = render(&samples, &a, "Resident memory of pid 5").expect("svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("Resident memory of pid 5"));
        assert!(svg.contains("RssAnon"));
        assert!(svg.contains("Theil–Sen"));
    }
}

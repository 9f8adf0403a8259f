//! The drill step timeline (SVG): one bar per step that started, from its start to the end of
//! its measured time (seconds from the drill's start), coloured by its result, with a tick at
//! an expectation's deadline (`within`) and the step's name and result written beside it, so
//! the chart reads in black and white too. Rendered with plotters into a string and stored as
//! evidence (`drill-steps.svg`); report.md embeds it and report.html inlines it.

use std::time::Duration;

use plotters::prelude::*;

use super::record::{StepOutcome, StepRecord};
use crate::report::chart::{Area, CAPTION_FONT, DrawResult, render_svg};

const WIDTH: u32 = 900;
/// Height per step, plus the frame.
const ROW: u32 = 34;
const FRAME: u32 = 110;

/// Draw the timeline of `records`; `None` when no step started (nothing to draw).
///
/// # Errors
/// A message when plotters fails (it should not with an in-memory backend).
pub(super) fn render(records: &[StepRecord], title: &str) -> Option<Result<String, String>> {
    records.iter().any(|r| r.at.is_some()).then(|| {
        let height = FRAME + ROW * records.len() as u32;
        render_svg("drill steps", (WIDTH, height), |root| {
            draw(root, records, title)
        })
    })
}

/// Where a step's bar ends: its start plus its measured time (a step without one gets a
/// sliver so it still shows).
fn span(r: &StepRecord) -> Option<(f64, f64)> {
    let at = r.at?.as_secs_f64();
    let len = r.measured.unwrap_or(Duration::ZERO).as_secs_f64();
    Some((at, at + len))
}

fn colour(result: StepOutcome) -> RGBColor {
    match result {
        StepOutcome::Done | StepOutcome::Held => RGBColor(46, 125, 50),
        StepOutcome::Failed => RGBColor(198, 40, 40),
        StepOutcome::Stopped => RGBColor(239, 108, 0),
        StepOutcome::NotRun | StepOutcome::NotReached => RGBColor(158, 158, 158),
    }
}

fn draw(root: &Area<'_>, records: &[StepRecord], title: &str) -> DrawResult {
    let end = records
        .iter()
        .filter_map(|r| {
            let (_, e) = span(r)?;
            Some(e.max(r.at?.as_secs_f64() + r.within.map_or(0.0, |w| w.as_secs_f64())))
        })
        .fold(0.0_f64, f64::max)
        .max(0.1);
    let n = records.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, CAPTION_FONT)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..end * 1.45, n..0.0)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("seconds from the drill's start")
        .draw()?;
    let sliver = end / 300.0;
    for (i, r) in records.iter().enumerate() {
        let y = i as f64;
        let label = format!("{}. {} — {}", i + 1, r.name, r.result.as_str());
        let Some((a, b)) = span(r) else {
            chart.draw_series([Text::new(label, (0.0, y + 0.3), ("sans-serif", 13))])?;
            continue;
        };
        let c = colour(r.result);
        chart.draw_series([Rectangle::new(
            [(a, y + 0.2), (b.max(a + sliver), y + 0.8)],
            c.filled(),
        )])?;
        if let Some(w) = r.within {
            let x = a + w.as_secs_f64();
            chart.draw_series([PathElement::new(
                [(x, y + 0.1), (x, y + 0.9)],
                BLACK.stroke_width(2),
            )])?;
        }
        chart.draw_series([Text::new(
            label,
            (b.max(a + sliver) + sliver * 2.0, y + 0.3),
            ("sans-serif", 13),
        )])?;
    }
    Ok(())
}

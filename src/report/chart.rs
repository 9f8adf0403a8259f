//! The one scaffold every SVG chart of a report is drawn on (latency percentiles, memory
//! trend, uptime timeline): an in-memory plotters SVG backend of a given size on a white
//! ground, the drawing closure, and one error type, so a chart either renders whole or its
//! failure reaches the item's log instead of leaving a blank image.

use plotters::coord::Shift;
use plotters::prelude::*;

/// The drawing area a chart draws on.
pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// What a drawing closure returns: plotters' errors are boxed as they come.
pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The caption font of every chart.
pub const CAPTION_FONT: (&str, u32) = ("sans-serif", 16);

/// Render one chart of `size` pixels (width, height) with `draw`; returns the SVG text.
///
/// # Errors
/// `"drawing the <name> chart: <cause>"` when plotters fails (it should not with an in-memory
/// backend; a failure is reported, never swallowed).
pub fn render_svg(
    name: &str,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&root).map_err(|e| e.to_string()))
            .and_then(|()| root.present().map_err(|e| e.to_string()));
        drawn.map_err(|e| format!("drawing the {name} chart: {e}"))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_svg_of_the_size_asked_and_errors_name_the_chart() {
        let svg = render_svg("test", (300, 200), |root| {
            root.draw(&Circle::new((10, 10), 5, RED.filled()))?;
            Ok(())
        })
        .unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("width=\"300\""));
        let e = render_svg("test", (300, 200), |_| Err("no data".into())).unwrap_err();
        assert_eq!(e, "drawing the test chart: no data");
    }
}

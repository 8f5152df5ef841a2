//! The HTML report's SVG charts, drawn with plotters' SVG backend into
//! in-memory strings. Large fonts and thick lines: they are shown on a
//! projector. Long series are reduced to at most [`MAX_POINTS`] per line by
//! taking each time bucket's maximum, so peaks stay visible.

use std::error::Error;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ReportError;
use super::model::Report;
use crate::model::Milestone;

mod faults;
mod series;

pub use faults::{recovery, timeline};
pub use series::{delivery, health, latency};

/// Most points drawn per line.
pub const MAX_POINTS: usize = 600;
pub(super) const WIDTH: u32 = 1400;
pub(super) const FONT: &str = "sans-serif";

pub(super) type Draw = Result<(), Box<dyn Error>>;
/// A named, coloured line of `(x, y)` points.
pub(super) type Line = (String, RGBColor, Vec<(f64, f64)>);
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The colour of the phase ending in `milestone` (Okabe–Ito, colour-blind safe).
pub fn phase_color(milestone: &str) -> RGBColor {
    const COLORS: [RGBColor; 7] = [
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 158, 115),
        RGBColor(204, 187, 68),
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(204, 121, 167),
    ];
    // A cold start's own phases: the drain to zero grey, the hold dark grey.
    if milestone == Milestone::ZeroReached.as_str() {
        return RGBColor(150, 150, 150);
    }
    if milestone == Milestone::ScaleUpIssued.as_str() {
        return RGBColor(90, 90, 90);
    }
    let i = Milestone::ALL
        .iter()
        .position(|m| m.as_str() == milestone)
        .unwrap_or(0);
    COLORS[i]
}

/// A colour per node index.
pub(super) fn node_color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(90, 90, 90),
        RGBColor(150, 110, 30),
    ];
    COLORS[i % COLORS.len()]
}

/// Draws one chart into an SVG string.
pub(super) fn svg(
    chart: &'static str,
    height: u32,
    draw: impl FnOnce(&Area) -> Draw,
) -> Result<String, ReportError> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        let result = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        result.map_err(|e| ReportError::Chart {
            chart,
            reason: e.to_string(),
        })?;
    }
    Ok(buf)
}

/// Run length in seconds (at least one), the charts' common x range.
pub(super) fn run_secs(r: &Report) -> f64 {
    (r.run.duration_ms.max(r.journal.last_t_ms).max(1000)) as f64 / 1000.0
}

pub(super) fn s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Reduces `(x, y)` points to at most [`MAX_POINTS`], keeping each bucket's maximum.
pub fn reduce(points: &[(f64, f64)], x_end: f64) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let width = x_end.max(1e-9) / MAX_POINTS as f64;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(MAX_POINTS);
    let mut bucket = usize::MAX;
    for &(x, y) in points {
        let b = ((x / width) as usize).min(MAX_POINTS - 1);
        match out.last_mut() {
            Some(last) if b == bucket => last.1 = last.1.max(y),
            _ => {
                bucket = b;
                out.push(((b as f64 + 0.5) * width, y));
            }
        }
    }
    out
}

/// A chart with f64 axes.
pub(super) type Cart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

//! The HTML report's SVG charts, drawn with plotters' SVG backend into
//! in-memory strings. Large fonts and thick lines: they are shown on a
//! projector. Long series are reduced to at most [`MAX_POINTS`] per line by
//! taking each time bucket's maximum, so peaks stay visible.

use std::error::Error;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;
use super::model::{FaultReport, HealthPoint, Report};
use crate::journal::event::Milestone;

/// Most points drawn per line.
pub const MAX_POINTS: usize = 600;
const WIDTH: u32 = 1400;
const FONT: &str = "sans-serif";

type Draw = Result<(), Box<dyn Error>>;
/// A named, coloured line of `(x, y)` points.
type Line = (String, RGBColor, Vec<(f64, f64)>);
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

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
    let i = Milestone::ALL
        .iter()
        .position(|m| m.as_str() == milestone)
        .unwrap_or(0);
    COLORS[i]
}

/// A colour per node index.
fn node_color(i: usize) -> RGBColor {
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
fn svg(
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
fn run_secs(r: &Report) -> f64 {
    (r.run.duration_ms.max(r.journal.last_t_ms).max(1000)) as f64 / 1000.0
}

fn s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Timeline: one row per fault, its phases as stacked bars; the legend in
/// its own column on the right so it never hides a bar.
pub fn timeline(r: &Report) -> Result<String, ReportError> {
    let n = r.faults.len().max(1);
    let height = (140 + 34 * n as u32).clamp(360, 1000);
    let end = run_secs(r);
    let label_rows = n <= 40;
    svg("timeline", height, |root| {
        let (left, right) = root.split_horizontally(WIDTH - 300);
        let mut chart = ChartBuilder::on(&left)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(20)
            .build_cartesian_2d(0f64..end, n as f64..0f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("run time (s)")
            .axis_desc_style((FONT, 26))
            .label_style((FONT, 22))
            .draw()?;
        for (i, f) in r.faults.iter().enumerate() {
            fault_bar(&mut chart, i, f, label_rows, r.run.duration_ms)?;
        }
        legend(&right)
    })
}

/// Where a fault's recovery ends on the charts: its last milestone when it
/// recovered, else its `fault-ended` line (or the run's end).
fn fault_end_ms(f: &FaultReport, run_end_ms: u64) -> u64 {
    let last = f.phases.last().map_or(f.injected_ms, |p| p.end_ms);
    if f.outcome == "recovered" {
        last
    } else {
        f.ended_ms.unwrap_or(run_end_ms).max(last)
    }
}

type Cart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn fault_bar<'a, 'b: 'a>(
    chart: &mut Cart<'a, 'b>,
    i: usize,
    f: &FaultReport,
    label: bool,
    run_end_ms: u64,
) -> Draw {
    let (y0, y1) = (i as f64 + 0.15, i as f64 + 0.85);
    chart.draw_series(f.phases.iter().map(|p| {
        Rectangle::new(
            [(s(p.start_ms), y0), (s(p.end_ms), y1)],
            phase_color(&p.to).filled(),
        )
    }))?;
    let mut end_ms = f.phases.last().map_or(f.injected_ms, |p| p.end_ms);
    if f.outcome != "recovered" {
        // Recovery never observed: red from the last milestone to the fault's end.
        let open_end = fault_end_ms(f, run_end_ms);
        let corners = [(s(end_ms), y0), (s(open_end), y1)];
        chart.draw_series([Rectangle::new(corners, RED.mix(0.35).filled())])?;
        chart.draw_series([Rectangle::new(corners, RED.stroke_width(2))])?;
        end_ms = open_end;
    }
    chart.draw_series([Rectangle::new(
        [(s(f.injected_ms), y0), (s(f.injected_ms) + 0.05, y1)],
        BLACK.filled(),
    )])?;
    if label {
        let text = format!(
            " {} {} {}",
            f.fault_id,
            f.kind,
            f.total_ms
                .map_or_else(|| f.outcome.clone(), |t| format!("{:.1} s", s(t)))
        );
        let style = TextStyle::from((FONT, 20).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series([Text::new(text, (s(end_ms) + 0.5, i as f64 + 0.5), style)])?;
    }
    Ok(())
}

fn legend(area: &Area) -> Draw {
    let style = TextStyle::from((FONT, 22).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new("phase ending at", (10, 36), style.clone()))?;
    for (i, m) in Milestone::ALL.iter().enumerate() {
        let y = 76 + 36 * i as i32;
        area.draw(&Rectangle::new(
            [(10, y - 12), (36, y + 12)],
            phase_color(m.as_str()).filled(),
        ))?;
        area.draw(&Text::new(m.as_str(), (46, y), style.clone()))?;
    }
    let y = 76 + 36 * Milestone::ALL.len() as i32;
    area.draw(&Rectangle::new([(10, y - 12), (36, y + 12)], RED.filled()))?;
    area.draw(&Text::new("not recovered", (46, y), style))?;
    Ok(())
}

/// Recovery time per fault as bars stacked by phase (outlined red outside
/// the SLO, grey up to the SLO when never recovered), with the SLO as a line
/// and each fault's predicted bound as a cross.
pub fn recovery(r: &Report) -> Result<String, ReportError> {
    let n = r.faults.len().max(1) as u32;
    let slo = s(r.run.recovery_timeout_ms);
    let top = r
        .faults
        .iter()
        .filter_map(|f| f.total_ms.max(f.predicted_ms))
        .map(s)
        .fold(slo, f64::max)
        * 1.1;
    // A plain f64 axis with bars centred on integers: plotters' Histogram
    // aggregates through a HashMap, whose order would make the SVG differ
    // from run to run.
    svg("recovery", 520, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5f64..f64::from(n.max(8)) - 0.5, 0f64..top)?;
        let ids: Vec<&str> = r.faults.iter().map(|f| f.fault_id.as_str()).collect();
        let fmt = |v: &f64| {
            let i = v.round();
            let on_bar = (v - i).abs() < 1e-6 && i >= 0.0;
            on_bar
                .then(|| ids.get(i as usize))
                .flatten()
                .map_or(String::new(), |s| (*s).to_owned())
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels((n as usize).min(30))
            .x_label_formatter(&fmt)
            .y_desc("recovery (s)")
            .x_desc("fault")
            .axis_desc_style((FONT, 26))
            .label_style((FONT, 20))
            .draw()?;
        let half = if n > 60 { 0.45 } else { 0.35 };
        for (i, f) in r.faults.iter().enumerate() {
            stacked_bar(&mut chart, i as f64, half, f, slo)?;
        }
        chart
            .draw_series(r.faults.iter().enumerate().filter_map(|(i, f)| {
                Some(Cross::new(
                    (i as f64, s(f.predicted_ms?)),
                    if n > 60 { 3 } else { 8 },
                    BLACK.stroke_width(if n > 60 { 1 } else { 3 }),
                ))
            }))?
            .label("predicted bound")
            .legend(|(x, y)| Cross::new((x + 10, y), 8, BLACK.stroke_width(3)));
        chart
            .draw_series(LineSeries::new(
                [(-0.5, slo), (f64::from(n.max(8)) - 0.5, slo)],
                RED.stroke_width(3),
            ))?
            .label(format!("SLO {slo:.1} s"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(3)));
        chart
            .configure_series_labels()
            .label_font((FONT, 20))
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()?;
        Ok(())
    })
}

/// One fault's recovery as a vertical bar stacked by phase; outlined red
/// when it breached the SLO, grey up to the SLO when it never recovered.
fn stacked_bar<'a, 'b: 'a>(
    chart: &mut Cart<'a, 'b>,
    x: f64,
    half: f64,
    f: &FaultReport,
    slo: f64,
) -> Draw {
    let (x0, x1) = (x - half, x + half);
    let rel = |ms: u64| s(ms - f.injected_ms);
    chart.draw_series(f.phases.iter().map(|p| {
        Rectangle::new(
            [(x0, rel(p.start_ms)), (x1, rel(p.end_ms))],
            phase_color(&p.to).filled(),
        )
    }))?;
    let top = f.phases.last().map_or(0.0, |p| rel(p.end_ms));
    if f.total_ms.is_none() {
        chart.draw_series([Rectangle::new(
            [(x0, top), (x1, slo.max(top))],
            RGBColor(190, 190, 190).filled(),
        )])?;
    }
    if !f.slo_ok {
        chart.draw_series([Rectangle::new(
            [(x0, 0.0), (x1, slo.max(top))],
            RED.stroke_width(3),
        )])?;
    }
    Ok(())
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

/// Shades each fault's recovery span and marks its injection.
fn fault_marks<'a, 'b: 'a>(chart: &mut Cart<'a, 'b>, r: &Report, y: (f64, f64)) -> Draw {
    chart.draw_series(r.faults.iter().map(|f| {
        let end = fault_end_ms(f, r.run.duration_ms);
        Rectangle::new(
            [(s(f.injected_ms), y.0), (s(end), y.1)],
            RED.mix(0.08).filled(),
        )
    }))?;
    chart.draw_series(r.faults.iter().map(|f| {
        Rectangle::new(
            [(s(f.injected_ms), y.0), (s(f.injected_ms), y.1)],
            RED.mix(0.6).stroke_width(2),
        )
    }))?;
    Ok(())
}

/// One line chart of run-time series with faults marked.
fn series_chart(
    chart_name: &'static str,
    r: &Report,
    y_desc: &str,
    y_max: f64,
    lines: &[Line],
    flags: &[(f64, f64)],
) -> Result<String, ReportError> {
    let end = run_secs(r);
    svg(chart_name, 480, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..end, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("run time (s)")
            .y_desc(y_desc)
            .axis_desc_style((FONT, 26))
            .label_style((FONT, 22))
            .draw()?;
        fault_marks(&mut chart, r, (0.0, y_max))?;
        for (name, color, points) in lines {
            let color = *color;
            chart
                .draw_series(LineSeries::new(reduce(points, end), color.stroke_width(3)))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        if !flags.is_empty() {
            chart
                .draw_series(
                    reduce(flags, end)
                        .into_iter()
                        .map(|p| TriangleMarker::new(p, 9, RED.filled())),
                )?
                .label("throttled")
                .legend(|(x, y)| TriangleMarker::new((x + 10, y), 9, RED.filled()));
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font((FONT, 20))
                .border_style(BLACK)
                .background_style(WHITE.mix(0.85))
                .draw()?;
        }
        Ok(())
    })
}

/// Delivery rate over time with the steady-state threshold.
pub fn delivery(r: &Report) -> Result<String, ReportError> {
    let rate: Vec<(f64, f64)> = r
        .service
        .iter()
        .filter_map(|p| Some((s(p.t_ms), p.delivery_rate? * 100.0)))
        .collect();
    let end = run_secs(r);
    let threshold = vec![
        (0.0, r.run.min_delivery_rate * 100.0),
        (end, r.run.min_delivery_rate * 100.0),
    ];
    let lines = [
        ("delivery rate".to_owned(), RGBColor(0, 114, 178), rate),
        ("steady-state threshold".to_owned(), RED, threshold),
    ];
    series_chart("delivery", r, "delivery rate (%)", 105.0, &lines, &[])
}

/// Catch latency p50/p95 over time.
pub fn latency(r: &Report) -> Result<String, ReportError> {
    let pick = |f: fn(&super::model::ServicePoint) -> Option<f64>| -> Vec<(f64, f64)> {
        r.service
            .iter()
            .filter_map(|p| Some((s(p.t_ms), f(p)?)))
            .collect()
    };
    let lines = [
        ("p50".to_owned(), RGBColor(0, 114, 178), pick(|p| p.p50_ms)),
        ("p95".to_owned(), RGBColor(213, 94, 0), pick(|p| p.p95_ms)),
    ];
    let top = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    series_chart("latency", r, "catch latency (ms)", top, &lines, &[])
}

/// One health value per node over time, throttle flags marked at the top.
pub fn health(
    r: &Report,
    what: &'static str,
    y_desc: &str,
    value: fn(&HealthPoint) -> Option<f32>,
) -> Result<String, ReportError> {
    let lines: Vec<Line> = r
        .health
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let points = n
                .samples
                .iter()
                .filter_map(|h| Some((s(h.t_ms), f64::from(value(h)?))))
                .collect();
            (n.node.clone(), node_color(i), points)
        })
        .collect();
    let top = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(if what == "cpu" { 100.0 } else { 1.0 }, f64::max)
        * 1.08;
    let mut flags: Vec<(f64, f64)> = r
        .health
        .iter()
        .flat_map(|n| {
            n.samples
                .iter()
                .filter(|h| h.throttled_now)
                .map(|h| (s(h.t_ms), top / 1.04))
        })
        .collect();
    flags.sort_by(|a, b| a.0.total_cmp(&b.0));
    series_chart(what, r, y_desc, top, &lines, &flags)
}

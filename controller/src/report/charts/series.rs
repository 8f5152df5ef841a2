//! Run-time series charts: delivery rate, catch latency, node temperature
//! and CPU, each with the faults' recovery spans shaded.

use plotters::prelude::*;

use super::faults::fault_end_ms;
use super::{Cart, Draw, FONT, Line, node_color, reduce, run_secs, s, svg};
use crate::report::ReportError;
use crate::report::model::{HealthPoint, Report, ServicePoint};

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
    let pick = |f: fn(&ServicePoint) -> Option<f64>| -> Vec<(f64, f64)> {
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

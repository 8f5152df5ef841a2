//! Fault charts: the timeline of faults with their phases, and recovery
//! time per fault stacked by phase.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Area, Cart, Draw, FONT, WIDTH, phase_color, run_secs, s, svg};
use crate::model::Milestone;
use crate::report::ReportError;
use crate::report::model::{FaultReport, Report};

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
pub(super) fn fault_end_ms(f: &FaultReport, run_end_ms: u64) -> u64 {
    let last = f.phases.last().map_or(f.injected_ms, |p| p.end_ms);
    if f.outcome == "recovered" {
        last
    } else {
        f.ended_ms.unwrap_or(run_end_ms).max(last)
    }
}

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
            .x_labels((n as usize).clamp(8, 30))
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
        bounds_and_legend(&mut chart, r, n, slo)
    })
}

/// Each fault's predicted bound as a cross, the SLO as a line, the legend.
fn bounds_and_legend<'a, 'b: 'a>(chart: &mut Cart<'a, 'b>, r: &Report, n: u32, slo: f64) -> Draw {
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

//! `report.html`: one self-contained page (inline CSS and inline SVG charts;
//! no script, font, image or style is fetched from anywhere), readable on a
//! projector.

use std::fmt::Write;

use super::ReportError;
use super::charts;
use super::fmt as f;
use super::junit::esc;
use super::model::Report;

mod sections;

use sections::{faults, findings, kinds, lists};

const STYLE: &str = "body{font-family:sans-serif;font-size:20px;line-height:1.4;margin:0 auto;max-width:1500px;padding:1em;color:#111;background:#fff}\
h1{font-size:2em;margin:.3em 0}h2{font-size:1.5em;border-bottom:3px solid #333;margin-top:1.6em}h3{font-size:1.2em}\
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #888;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#e8e8e8}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.pass{background:#0a7a3a;color:#fff}.fail{background:#b00020;color:#fff}.badge{padding:.1em .5em;border-radius:.3em;font-weight:bold}\
.warn{background:#fff3c4;border-left:6px solid #e0a800;padding:.5em 1em}svg{width:100%;height:auto;display:block;margin:.5em 0}\
.bad{color:#b00020;font-weight:bold}.muted{color:#555}";

/// Renders the HTML report.
pub fn render(r: &Report) -> Result<String, ReportError> {
    let mut out = String::new();
    let word = if r.verdict.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>rackpong run {} — {word}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&r.run.run_id)
    );
    verdict(&mut out, r);
    glance(&mut out, r);
    charts_section(&mut out, r)?;
    run_table(&mut out, r);
    kinds(&mut out, r);
    faults(&mut out, r);
    super::cold::html(&mut out, r);
    findings(&mut out, r);
    lists(&mut out, r);
    out.push_str("<h2>Method</h2>\n<p>Times are journal milliseconds on the controller's monotonic clock, taken when the watch event or MQTT message arrived; ± of a total is the precision of the milestone it ends at (the injection is stamped exactly); each phase carries the worse precision of its two ends (<code>ready</code> has the readiness probe period). Phases run between consecutive observed milestones and add up to the total; a milestone not observed (or out of order) is merged into the next phase. Phase rows count every fault where both ends were observed; totals count recovered faults. Percentiles are nearest-rank (the value at rank ⌈p/100 × n⌉). Health at injection is the node's latest sample at or before the injection.</p>\n</body>\n</html>\n");
    Ok(out)
}

fn verdict(out: &mut String, r: &Report) {
    let (class, word) = if r.verdict.passed {
        ("pass", "PASSED")
    } else {
        ("fail", "FAILED")
    };
    let _ = writeln!(
        out,
        "<h1>rackpong run <code>{}</code> <span class=\"badge {class}\">{word}</span></h1>",
        esc(&r.run.run_id)
    );
    if !r.journal.complete {
        out.push_str("<p class=\"warn\"><strong>Incomplete run.</strong> The journal has no run-ended line or lines were cut off or lost; figures cover what was recorded.</p>\n");
    }
    if r.verdict.passed {
        out.push_str("<p>The steady state held and every fault recovered within the SLO.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for v in &r.verdict.failures {
            let _ = writeln!(
                out,
                "<li><strong>{}</strong>: {}</li>",
                esc(&v.kind),
                esc(&v.detail)
            );
        }
        out.push_str("</ul>\n");
    }
}

/// The headline figures per fault kind, first on the page for the projector.
fn glance(out: &mut String, r: &Report) {
    if r.stats.is_empty() {
        return;
    }
    out.push_str("<table>\n<tr><th>Fault kind</th><th>Injected</th><th>Recovered</th><th>Refused</th><th>p50</th><th>p95</th><th>Max</th><th>Predicted bound</th></tr>\n");
    for k in &r.stats {
        let t = k.total.as_ref();
        let cell = |v: Option<u64>| format!("<td class=\"n\">{}</td>", f::opt_secs(v));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}{}{}{}</tr>",
            esc(&k.kind),
            k.injected,
            k.recovered,
            k.refused,
            cell(t.map(|t| t.p50)),
            cell(t.map(|t| t.p95)),
            cell(t.map(|t| t.max)),
            cell(k.predicted_max_ms)
        );
    }
    let _ = writeln!(
        out,
        "</table>\n<p>{} SLO breaches (recovery SLO {}), {} refused faults, {} zombie windows, {} overlaps.</p>",
        r.slo_breaches.len(),
        f::secs(r.run.recovery_timeout_ms),
        r.refused.len(),
        r.zombies.len(),
        r.overlaps.len()
    );
}

fn run_table(out: &mut String, r: &Report) {
    out.push_str("<h2>Run</h2>\n<table>\n");
    for (k, v) in f::run_rows(r) {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&v));
    }
    out.push_str("</table>\n");
}

fn charts_section(out: &mut String, r: &Report) -> Result<(), ReportError> {
    let sections = [
        (
            "Timeline of faults and recovery phases",
            charts::timeline(r)?,
        ),
        (
            "Recovery time per fault, by phase (× predicted bound; red outline: SLO breached)",
            charts::recovery(r)?,
        ),
        (
            "Delivery rate (faults shaded from injection to recovery)",
            charts::delivery(r)?,
        ),
        ("Catch latency", charts::latency(r)?),
        (
            "Node temperature (▲ throttled)",
            charts::health(r, "temperature", "temperature (°C)", |h| h.temp_c)?,
        ),
        (
            "Node CPU (▲ throttled)",
            charts::health(r, "cpu", "CPU busy (%)", |h| h.cpu_pct)?,
        ),
    ];
    out.push_str("<h2>Charts</h2>\n");
    for (title, svg) in sections {
        let _ = writeln!(out, "<h3>{}</h3>\n{svg}", esc(title));
    }
    Ok(())
}

//! The report's cold-start section: for every planned scale-to-zero fault,
//! how long the workers took to go, how long the rack sat at zero, and the
//! cold start itself measured from the scale-up (the first new worker
//! created, scheduled, running, ready, serving; the service restored), with
//! the balls the rack refused meanwhile. Rendered into Markdown and HTML
//! only when the run had one.

use std::fmt::Write;

use super::fmt as f;
use super::model::{ColdStart, FaultReport, Report, ServicePoint};
use crate::model::Milestone;
use crate::plan::SCALE_TO_ZERO_ACTION;

/// The cold starts of a report's faults.
pub fn cold_starts(r: &Report) -> Vec<ColdStart> {
    r.faults
        .iter()
        .filter(|x| x.action == SCALE_TO_ZERO_ACTION)
        .map(|x| one(x, &r.service))
        .collect()
}

fn first_at(x: &FaultReport, m: Milestone) -> Option<(u64, u64)> {
    x.milestones
        .iter()
        .filter(|a| a.milestone == m.as_str())
        .map(|a| (a.t_ms, a.precision_ms))
        .min()
}

fn one(x: &FaultReport, service: &[ServicePoint]) -> ColdStart {
    let zero = first_at(x, Milestone::ZeroReached);
    let up = first_at(x, Milestone::ScaleUpIssued);
    let after_up = |m: Milestone| {
        let (t, _) = first_at(x, m)?;
        Some(t.saturating_sub(up?.0))
    };
    let created_ms = after_up(Milestone::ReplacementCreated);
    let scheduled_ms = after_up(Milestone::Scheduled);
    let running_ms = after_up(Milestone::Running);
    let ready_ms = after_up(Milestone::Ready);
    let serving_ms = after_up(Milestone::Serving);
    let service_restored_ms = after_up(Milestone::ServiceRestored);
    let restored = first_at(x, Milestone::ServiceRestored);
    let precision = [up, restored].into_iter().flatten().map(|m| m.1).max();
    ColdStart {
        fault_id: x.fault_id.clone(),
        fault: x.fault.clone(),
        replicas: x.replicas_from,
        hold_ms: x.hold_ms,
        zero_reached_ms: zero.map(|(t, _)| t.saturating_sub(x.injected_ms)),
        at_zero_ms: zero.zip(up).map(|(z, u)| u.0.saturating_sub(z.0)),
        created_ms,
        scheduled_ms,
        running_ms,
        ready_ms,
        serving_ms,
        service_restored_ms,
        cold_start_ms: service_restored_ms,
        precision_ms: precision.unwrap_or(0),
        balls_refused: refused_during(service, x.injected_ms, x.ended_ms),
        outcome: x.outcome.clone(),
    }
}

/// Refused balls between the last sample at or before `from_ms` and the
/// first at or after `to_ms` (the last sample when the fault never ended).
fn refused_during(service: &[ServicePoint], from_ms: u64, to_ms: Option<u64>) -> u64 {
    let before = service
        .iter()
        .take_while(|p| p.t_ms <= from_ms)
        .last()
        .map_or(0, |p| p.refused_total);
    let after = to_ms
        .and_then(|t| service.iter().find(|p| p.t_ms >= t))
        .or(service.last())
        .map_or(before, |p| p.refused_total);
    after.saturating_sub(before)
}

const HEAD: [&str; 13] = [
    "Fault",
    "Replicas",
    "Hold",
    "Zero reached",
    "At zero",
    "Created",
    "Scheduled",
    "Running",
    "Ready",
    "Serving",
    "Restored",
    "Cold start",
    "Balls refused",
];

fn cells(c: &ColdStart) -> Vec<String> {
    vec![
        format!("{} {}", c.fault_id, c.fault),
        f::opt_u64(c.replicas.map(u64::from), ""),
        f::opt_secs(c.hold_ms),
        f::opt_secs(c.zero_reached_ms),
        f::opt_secs(c.at_zero_ms),
        f::opt_secs(c.created_ms),
        f::opt_secs(c.scheduled_ms),
        f::opt_secs(c.running_ms),
        f::opt_secs(c.ready_ms),
        f::opt_secs(c.serving_ms),
        f::opt_secs(c.service_restored_ms),
        match c.cold_start_ms {
            Some(ms) => format!("{} ± {}", f::secs(ms), f::secs(c.precision_ms)),
            None => c.outcome.clone(),
        },
        c.balls_refused.to_string(),
    ]
}

const EXPLAIN: &str = "The workers were scaled to zero on purpose (planned unavailability, opted in with `allow-zero`). Zero reached is the last worker gone, after the injection; at zero is the hold as it happened; the replacement columns are the first new worker, after the scale-up was issued; the cold start is scale-up issued to service restored. Balls thrown while no worker existed were refused by the rack at the door: they are counted apart and are not lost balls.";

/// The Markdown section (nothing without a cold start).
pub fn markdown(out: &mut String, r: &Report) {
    if r.cold_starts.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Cold starts\n\n{EXPLAIN}\n");
    let _ = writeln!(out, "| {} |", HEAD.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(HEAD.len()));
    for c in &r.cold_starts {
        let row: Vec<String> = cells(c).iter().map(|s| super::markdown::cell(s)).collect();
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

/// The HTML section (nothing without a cold start).
pub fn html(out: &mut String, r: &Report) {
    if r.cold_starts.is_empty() {
        return;
    }
    let esc = super::junit::esc;
    let _ = writeln!(
        out,
        "<h2>Cold starts</h2>\n<p>{}</p>\n<table>\n<tr>{}</tr>",
        esc(&EXPLAIN.replace('`', "")),
        HEAD.iter()
            .map(|h| format!("<th>{}</th>", esc(h)))
            .collect::<String>()
    );
    for c in &r.cold_starts {
        let tds: String = cells(c)
            .iter()
            .enumerate()
            .map(|(i, s)| match i {
                0 => format!("<td>{}</td>", esc(s)),
                _ => format!("<td class=\"n\">{}</td>", esc(s)),
            })
            .collect();
        let _ = writeln!(out, "<tr>{tds}</tr>");
    }
    out.push_str("</table>\n");
}

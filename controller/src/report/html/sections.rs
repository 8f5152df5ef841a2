//! The HTML report's tables: per-kind statistics, every fault with its
//! phases and the node's health at injection, and the lists (breaches,
//! refusals, zombies, overlaps, steady state, rollback, notes).

use std::fmt::Write;

use crate::report::fmt as f;
use crate::report::junit::esc;
use crate::report::model::{FaultReport, KindStats, Report, Summary, Window};

fn summary_row(out: &mut String, label: &str, s: &Summary) {
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        label,
        s.count,
        f::secs(s.min),
        f::secs(s.p50),
        f::secs(s.p95),
        f::secs(s.max)
    );
}

pub(super) fn kinds(out: &mut String, r: &Report) {
    out.push_str("<h2>Recovery by fault kind</h2>\n");
    if r.stats.is_empty() {
        out.push_str("<p>No faults were injected or refused.</p>\n");
    }
    for k in &r.stats {
        kind_table(out, k);
    }
}

fn kind_table(out: &mut String, k: &KindStats) {
    let predicted = k
        .predicted_max_ms
        .map_or_else(|| "none recorded".into(), |p| format!("≤ {}", f::secs(p)));
    let _ = writeln!(
        out,
        "<h3>{}</h3>\n<p>{} injected, {} recovered, {} refused. Predicted bound: {predicted}.</p>",
        esc(&k.kind),
        k.injected,
        k.recovered,
        k.refused
    );
    if k.phases.is_empty() && k.total.is_none() {
        return;
    }
    out.push_str("<table>\n<tr><th>Phase</th><th>Count</th><th>Min</th><th>p50</th><th>p95</th><th>Max</th></tr>\n");
    for p in &k.phases {
        summary_row(out, &esc(&format!("{} → {}", p.from, p.to)), &p.summary);
    }
    if let Some(t) = &k.total {
        summary_row(out, "<strong>Total</strong> (recovered)", t);
    }
    out.push_str("</table>\n");
}

pub(super) fn faults(out: &mut String, r: &Report) {
    if r.faults.is_empty() {
        return;
    }
    out.push_str("<h2>Faults</h2>\n<p class=\"muted\">Node health is the latest sample at or before injection.</p>\n<table>\n<tr><th>Fault</th><th>Target</th><th>Injected</th><th>Phases</th><th>Total</th><th>Predicted</th><th>SLO</th><th>Temp</th><th>Throttled</th><th>Memory</th></tr>\n");
    for x in &r.faults {
        fault_row(out, x);
    }
    out.push_str("</table>\n");
}

fn fault_row(out: &mut String, x: &FaultReport) {
    let phases: Vec<String> = x
        .phases
        .iter()
        .map(|p| format!("{} {}", esc(&p.to), f::secs(p.duration_ms)))
        .collect();
    let h = x.health_at_injection.as_ref();
    let slo = if x.slo_ok {
        "ok".to_owned()
    } else {
        format!("<span class=\"bad\">FAIL ({})</span>", esc(&x.outcome))
    };
    let throttled = h.map_or_else(
        || "—".into(),
        |h| f::throttle(h.throttled_now, h.throttle_raw),
    );
    let throttled = if h.is_some_and(|h| h.throttled_now) {
        format!("<span class=\"bad\">{throttled}</span>")
    } else {
        throttled
    };
    let _ = writeln!(
        out,
        "<tr><td>{} <span class=\"muted\">{} {} {}</span></td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{} ±{} ms</td><td class=\"n\">{}</td><td>{slo}</td><td class=\"n\">{}</td><td>{throttled}</td><td class=\"n\">{}</td></tr>",
        esc(&x.fault_id),
        esc(&x.fault),
        esc(&x.kind),
        esc(&x.action),
        esc(&format!(
            "{}{}",
            x.targets.join(", "),
            x.node
                .as_ref()
                .map_or(String::new(), |n| format!(" on {n}"))
        )),
        f::at(x.injected_ms),
        phases.join("<br>"),
        f::opt_secs(x.total_ms),
        x.precision_ms,
        f::opt_secs(x.predicted_ms),
        f::opt_f32(h.and_then(|h| h.temp_c), " °C", 1),
        f::memory(
            h.and_then(|h| h.mem_used_bytes),
            h.and_then(|h| h.mem_total_bytes)
        ),
    );
}

/// A simple table section; `None` rows print "None."
fn table(out: &mut String, title: &str, head: &[&str], rows: Vec<Vec<String>>) {
    let _ = writeln!(out, "<h2>{}</h2>", esc(title));
    if rows.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<table>\n<tr>{}</tr>",
        head.iter()
            .map(|h| format!("<th>{}</th>", esc(h)))
            .collect::<String>()
    );
    for row in rows {
        let _ = writeln!(
            out,
            "<tr>{}</tr>",
            row.iter()
                .map(|c| format!("<td>{}</td>", esc(c)))
                .collect::<String>()
        );
    }
    out.push_str("</table>\n");
}

/// Findings (faults over their prediction, with the phase that overran)
/// and, for node faults, when each node-death signal fired.
pub(super) fn findings(out: &mut String, r: &Report) {
    if !r.findings.is_empty() {
        let rows = r
            .findings
            .iter()
            .map(|x| vec![x.fault_id.clone(), x.kind.clone(), x.text.clone()])
            .collect();
        table(out, "Findings", &["Fault", "Finding", "Detail"], rows);
    }
    let rows = crate::report::findings::signal_rows(r);
    if !rows.is_empty() {
        table(
            out,
            "Node death signals",
            &crate::report::findings::SIGNAL_HEAD,
            rows,
        );
    }
}

pub(super) fn lists(out: &mut String, r: &Report) {
    let breaches = r.slo_breaches.iter();
    let rows = breaches.map(|b| {
        let total = f::opt_secs(b.total_ms);
        vec![
            b.fault_id.clone(),
            b.kind.clone(),
            total,
            f::secs(b.slo_ms),
            b.reason.clone(),
        ]
    });
    table(
        out,
        "SLO breaches",
        &["Fault", "Kind", "Total", "SLO", "Reason"],
        rows.collect(),
    );
    let rows = r.refused.iter().map(|x| {
        let target = f::opt_str(x.target.as_deref());
        vec![
            f::at(x.t_ms),
            x.fault.clone(),
            x.kind.clone(),
            target,
            x.reason.clone(),
        ]
    });
    table(
        out,
        "Refused faults",
        &["At", "Fault", "Kind", "Target", "Reason"],
        rows.collect(),
    );
    let head = ["Fault", "Worker", "Node", "From", "To", "Duration"];
    table(out, "Zombie windows", &head, window_rows(&r.zombies));
    let head = [
        "Fault",
        "Old worker",
        "New worker",
        "From",
        "To",
        "Duration",
    ];
    table(out, "Overlaps", &head, window_rows(&r.overlaps));
    steady(out, r);
    let rows = r.rollbacks.iter().map(|b| {
        let result = if b.ok { "ok" } else { "FAILED" };
        vec![
            f::at(b.t_ms),
            b.action.clone(),
            result.into(),
            b.detail.clone(),
        ]
    });
    table(
        out,
        "Rollback",
        &["At", "Action", "Result", "Detail"],
        rows.collect(),
    );
    notes(out, r);
}

fn window_rows(list: &[Window]) -> Vec<Vec<String>> {
    list.iter()
        .map(|w| {
            let (from, to) = (f::at(w.from_ms), f::at(w.to_ms));
            vec![
                w.fault_id.clone(),
                w.worker.clone(),
                w.other.clone(),
                from,
                to,
                f::secs(w.duration_ms),
            ]
        })
        .collect()
}

fn steady(out: &mut String, r: &Report) {
    let failed: Vec<_> = r.steady_state.iter().filter(|c| !c.ok).collect();
    let _ = writeln!(
        out,
        "<h2>Steady state</h2>\n<p>{} checks, {} failed.</p>",
        r.steady_state.len(),
        failed.len()
    );
    if !failed.is_empty() {
        let items: String = failed
            .iter()
            .take(20)
            .map(|c| format!("<li>{}: {}</li>", f::at(c.t_ms), esc(&c.detail)))
            .collect();
        let _ = writeln!(out, "<ul>{items}</ul>");
    }
}

fn notes(out: &mut String, r: &Report) {
    let journal = r
        .journal
        .warnings
        .iter()
        .map(|w| vec!["journal".into(), w.clone()]);
    let faults = r
        .faults
        .iter()
        .flat_map(|x| x.notes.iter().map(|n| vec![x.fault_id.clone(), n.clone()]));
    table(
        out,
        "Notes",
        &["Where", "Note"],
        journal.chain(faults).take(100).collect(),
    );
}

//! `report.md`: GitHub-flavoured Markdown that passes markdownlint with
//! `.ci/report-markdownlint.json`.

use std::fmt::Write;

use super::fmt::{self as f};
use super::model::{FaultReport, KindStats, Report, Summary};

/// Renders the Markdown report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    header(&mut out, r);
    run_table(&mut out, r);
    kinds(&mut out, r);
    faults(&mut out, r);
    super::cold::markdown(&mut out, r);
    findings(&mut out, r);
    breaches(&mut out, r);
    refused(&mut out, r);
    windows(&mut out, r);
    steady(&mut out, r);
    notes(&mut out, r);
    method(&mut out);
    out
}

/// Escapes text for a table cell.
pub fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn table_head(out: &mut String, names: &[&str]) {
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(names.len()));
}

fn header(out: &mut String, r: &Report) {
    let word = if r.verdict.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "# rackpong run `{}`: {word}\n", r.run.run_id);
    if r.verdict.passed {
        out.push_str("**Verdict: passed.** The steady state held and every fault recovered within the SLO.\n\n");
    } else {
        out.push_str("**Verdict: failed.**\n\n");
        for v in &r.verdict.failures {
            let _ = writeln!(out, "- **{}**: {}", v.kind, cell(&v.detail));
        }
        out.push('\n');
    }
    if !r.journal.complete {
        out.push_str("> **Incomplete run.** The journal has no `run-ended` line or lines were cut off or lost; figures cover what was recorded.\n\n");
    }
}

fn run_table(out: &mut String, r: &Report) {
    out.push_str("## Run\n\n");
    table_head(out, &["Item", "Value"]);
    for (k, v) in f::run_rows(r) {
        row(out, &[cell(&k), cell(&v)]);
    }
    out.push('\n');
}

fn summary_cells(label: String, s: &Summary) -> Vec<String> {
    vec![
        label,
        s.count.to_string(),
        f::secs(s.min),
        f::secs(s.p50),
        f::secs(s.p95),
        f::secs(s.max),
    ]
}

fn kinds(out: &mut String, r: &Report) {
    out.push_str("## Recovery by fault kind\n\n");
    if r.stats.is_empty() {
        out.push_str("No faults were injected or refused.\n\n");
    }
    for k in &r.stats {
        kind_table(out, k);
    }
}

fn kind_table(out: &mut String, k: &KindStats) {
    let _ = writeln!(out, "### {}\n", k.kind);
    let _ = writeln!(
        out,
        "{} injected, {} recovered, {} refused. Predicted bound: {}.\n",
        k.injected,
        k.recovered,
        k.refused,
        k.predicted_max_ms
            .map_or_else(|| "none recorded".into(), |p| format!("≤ {}", f::secs(p)))
    );
    if k.phases.is_empty() && k.total.is_none() {
        return;
    }
    table_head(out, &["Phase", "Count", "Min", "p50", "p95", "Max"]);
    for p in &k.phases {
        row(
            out,
            &summary_cells(format!("{} → {}", p.from, p.to), &p.summary),
        );
    }
    if let Some(t) = &k.total {
        row(out, &summary_cells("**Total** (recovered)".into(), t));
    }
    out.push('\n');
}

fn faults(out: &mut String, r: &Report) {
    if r.faults.is_empty() {
        return;
    }
    out.push_str("## Faults\n\n");
    out.push_str("Health is the node's latest sample at or before injection.\n\n");
    table_head(
        out,
        &[
            "Fault",
            "Kind",
            "Action",
            "Targets",
            "Injected",
            "Total",
            "± ms",
            "Predicted",
            "SLO",
            "Outcome",
            "Temp",
            "Throttled",
            "Memory",
        ],
    );
    for x in &r.faults {
        row(out, &fault_cells(x));
    }
    out.push('\n');
}

fn fault_cells(x: &FaultReport) -> Vec<String> {
    let h = x.health_at_injection.as_ref();
    vec![
        cell(&format!("{} ({})", x.fault_id, x.fault)),
        x.kind.clone(),
        cell(&x.action),
        cell(&f::list(&x.targets)),
        f::at(x.injected_ms),
        f::opt_secs(x.total_ms),
        x.precision_ms.to_string(),
        f::opt_secs(x.predicted_ms),
        if x.slo_ok {
            "ok".into()
        } else {
            "**FAIL**".into()
        },
        x.outcome.clone(),
        f::opt_f32(h.and_then(|h| h.temp_c), " °C", 1),
        h.map_or_else(
            || "—".into(),
            |h| f::throttle(h.throttled_now, h.throttle_raw),
        ),
        h.map_or_else(
            || "—".into(),
            |h| f::memory(h.mem_used_bytes, h.mem_total_bytes),
        ),
    ]
}

fn findings(out: &mut String, r: &Report) {
    if !r.findings.is_empty() {
        out.push_str("## Findings\n\n");
        for x in &r.findings {
            let _ = writeln!(out, "- **{}**: {}", x.kind, x.text);
        }
        out.push('\n');
    }
    let rows = super::findings::signal_rows(r);
    if rows.is_empty() {
        return;
    }
    out.push_str("## Node death signals\n\nWhen each signal fired after the injection: rackpong's own detection beside Kubernetes'.\n\n");
    table_head(out, &super::findings::SIGNAL_HEAD);
    for cells in rows {
        row(out, &cells.iter().map(|c| cell(c)).collect::<Vec<_>>());
    }
    out.push('\n');
}

fn breaches(out: &mut String, r: &Report) {
    out.push_str("## SLO breaches\n\n");
    if r.slo_breaches.is_empty() {
        let _ = writeln!(
            out,
            "None: every fault recovered within {}.\n",
            f::secs(r.run.recovery_timeout_ms)
        );
        return;
    }
    table_head(out, &["Fault", "Kind", "Total", "SLO", "Reason"]);
    for b in &r.slo_breaches {
        row(
            out,
            &[
                cell(&b.fault_id),
                b.kind.clone(),
                f::opt_secs(b.total_ms),
                f::secs(b.slo_ms),
                cell(&b.reason),
            ],
        );
    }
    out.push('\n');
}

fn refused(out: &mut String, r: &Report) {
    out.push_str("## Refused faults\n\n");
    if r.refused.is_empty() {
        out.push_str("None.\n\n");
        return;
    }
    table_head(out, &["At", "Fault", "Kind", "Target", "Reason"]);
    for x in &r.refused {
        row(
            out,
            &[
                f::at(x.t_ms),
                cell(&x.fault),
                x.kind.clone(),
                cell(&f::opt_str(x.target.as_deref())),
                cell(&x.reason),
            ],
        );
    }
    out.push('\n');
}

fn windows(out: &mut String, r: &Report) {
    for (title, what, other, list) in [
        ("Zombie windows", "Worker", "Node", &r.zombies),
        ("Overlaps", "Old worker", "New worker", &r.overlaps),
    ] {
        let _ = writeln!(out, "## {title}\n");
        if list.is_empty() {
            out.push_str("None.\n\n");
            continue;
        }
        table_head(out, &["Fault", what, other, "From", "To", "Duration"]);
        for w in list {
            row(
                out,
                &[
                    cell(&w.fault_id),
                    cell(&w.worker),
                    cell(&w.other),
                    f::at(w.from_ms),
                    f::at(w.to_ms),
                    f::secs(w.duration_ms),
                ],
            );
        }
        out.push('\n');
    }
}

fn steady(out: &mut String, r: &Report) {
    out.push_str("## Steady state\n\n");
    let failed: Vec<_> = r.steady_state.iter().filter(|c| !c.ok).collect();
    let _ = writeln!(
        out,
        "{} checks, {} failed.\n",
        r.steady_state.len(),
        failed.len()
    );
    for c in failed.iter().take(20) {
        let _ = writeln!(out, "- {}: {}", f::at(c.t_ms), cell(&c.detail));
    }
    if failed.len() > 20 {
        let _ = writeln!(out, "- … and {} more (see report.json)", failed.len() - 20);
    }
    if !failed.is_empty() {
        out.push('\n');
    }
    if !r.rollbacks.is_empty() {
        out.push_str("### Rollback\n\n");
        for b in &r.rollbacks {
            let ok = if b.ok { "ok" } else { "FAILED" };
            let _ = writeln!(
                out,
                "- {}: {} ({ok}): {}",
                f::at(b.t_ms),
                cell(&b.action),
                cell(&b.detail)
            );
        }
        out.push('\n');
    }
}

fn notes(out: &mut String, r: &Report) {
    let fault_notes = r
        .faults
        .iter()
        .flat_map(|x| x.notes.iter().map(move |n| format!("{}: {n}", x.fault_id)));
    let all: Vec<String> = r
        .journal
        .warnings
        .iter()
        .cloned()
        .chain(fault_notes)
        .collect();
    if all.is_empty() {
        return;
    }
    out.push_str("## Notes\n\n");
    for n in all.iter().take(50) {
        let _ = writeln!(out, "- {}", cell(n));
    }
    if all.len() > 50 {
        let _ = writeln!(out, "- … and {} more (see report.json)", all.len() - 50);
    }
    out.push('\n');
}

fn method(out: &mut String) {
    out.push_str("## Method\n\n");
    out.push_str(
        "- Times are journal milliseconds on the controller's monotonic clock, taken when the watch event or MQTT message arrived; \
         `± ms` of a total is the precision of the milestone it ends at (the injection is stamped exactly); each phase carries the worse precision of its two ends (`ready` has the readiness probe period).\n\
         - Phases run between consecutive observed milestones (injected, detected, replacement-created, scheduled, running, ready, serving, \
         service-restored); they never overlap and add up to the total. A milestone not observed (or observed out of order) is merged into \
         the next phase, which then spans more than one step.\n\
         - Phase rows count every fault where both ends were observed; the total counts recovered faults.\n\
         - Percentiles are nearest-rank: the p-th percentile of n sorted values is the value at rank ceil(p/100 × n).\n",
    );
}

//! `junit.xml`: one test case per injected fault (failing where recovery
//! exceeded the plan's recovery SLO or never happened), refused faults as
//! skipped, and one case for the steady-state hypothesis, so CI pipelines can
//! gate on chaos runs. Valid against the Jenkins xunit `junit-10.xsd`.

use std::fmt::Write;

use super::fmt as f;
use super::model::{FaultReport, Report};

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not valid XML 1.0.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Seconds with milliseconds, as JUnit `time` attributes want.
fn time(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Renders the JUnit XML.
pub fn render(r: &Report) -> String {
    let failures = r.faults.iter().filter(|x| !x.slo_ok).count() + usize::from(!steady_ok(r));
    let tests = r.faults.len() + r.refused.len() + 1;
    let total_ms = r.faults.iter().filter_map(|x| x.total_ms).sum::<u64>();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"rackpong\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">",
        time(total_ms)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"rackpong.{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\" id=\"{}\">",
        esc(&r.run.plan_name),
        r.refused.len(),
        time(total_ms),
        f::wall(r.run.started_unix_ms),
        esc(&r.run.run_id)
    );
    properties(&mut out, r);
    steady_case(&mut out, r);
    for x in &r.faults {
        fault_case(&mut out, x, r.run.recovery_timeout_ms);
    }
    for x in &r.refused {
        let _ = writeln!(
            out,
            "    <testcase classname=\"rackpong.{}\" name=\"{}\" time=\"0.000\">\n      <skipped message=\"refused: {}\"/>\n    </testcase>",
            esc(&x.kind),
            esc(&format!("refused {} at {}", x.fault, f::at(x.t_ms))),
            esc(&x.reason)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn properties(out: &mut String, r: &Report) {
    let m = &r.run;
    out.push_str("    <properties>\n");
    for (k, v) in [
        ("run_id", m.run_id.clone()),
        ("plan", m.plan_name.clone()),
        ("seed", m.seed.to_string()),
        ("cluster", m.cluster_kind.clone()),
        ("nodes", m.node_count.to_string()),
        ("detection_profile", m.detection.profile.clone()),
        ("recovery_slo_ms", m.recovery_timeout_ms.to_string()),
        ("outcome", m.outcome.clone()),
        ("controller_version", m.controller_version.clone()),
    ] {
        let _ = writeln!(out, "      <property name=\"{k}\" value=\"{}\"/>", esc(&v));
    }
    out.push_str("    </properties>\n");
}

fn steady_ok(r: &Report) -> bool {
    r.steady_state.iter().all(|c| c.ok) && r.journal.complete && r.run.outcome == "completed"
}

fn steady_case(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "    <testcase classname=\"rackpong.run\" name=\"steady-state hypothesis\" time=\"{}\">",
        time(r.run.duration_ms)
    );
    if !steady_ok(r) {
        let detail: Vec<String> = r
            .verdict
            .failures
            .iter()
            .filter(|v| v.kind != "slo")
            .map(|v| format!("[{}] {}", v.kind, v.detail))
            .collect();
        let _ = writeln!(
            out,
            "      <failure type=\"steady-state\" message=\"{}\">{}</failure>",
            esc(detail.first().map_or("", String::as_str)),
            esc(&detail.join("\n"))
        );
    }
    out.push_str("    </testcase>\n");
}

fn fault_case(out: &mut String, x: &FaultReport, slo_ms: u64) {
    let name = format!(
        "{} {} ({} {})",
        x.fault_id,
        x.fault,
        x.action,
        f::list(&x.targets)
    );
    let _ = writeln!(
        out,
        "    <testcase classname=\"rackpong.{}\" name=\"{}\" time=\"{}\">",
        esc(&x.kind),
        esc(&name),
        time(x.total_ms.unwrap_or(0))
    );
    let mut phases: Vec<String> = x
        .phases
        .iter()
        .map(|p| format!("{} -> {}: {}", p.from, p.to, f::secs(p.duration_ms)))
        .collect();
    if let Some(o) = &x.overran {
        phases.push(format!(
            "finding: over its predicted {}; {} reached at {}, {} allowed",
            f::opt_secs(x.predicted_ms),
            o.phase,
            f::secs(o.at_ms),
            f::secs(o.allowed_ms)
        ));
    }
    if !x.slo_ok {
        let message = match x.total_ms {
            Some(t) => format!("recovered in {} (SLO {})", f::secs(t), f::secs(slo_ms)),
            None => format!("not recovered ({}; SLO {})", x.outcome, f::secs(slo_ms)),
        };
        let _ = writeln!(
            out,
            "      <failure type=\"{}\" message=\"{}\">{}</failure>",
            esc(&x.outcome),
            esc(&message),
            esc(&phases.join("\n"))
        );
    }
    let _ = writeln!(
        out,
        "      <system-out>{}</system-out>\n    </testcase>",
        esc(&phases.join("\n"))
    );
}

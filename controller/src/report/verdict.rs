//! The verdict: a run passes only when it finished, completed (not aborted or
//! crashed), every steady-state check held and every fault recovered within
//! the plan's recovery SLO. Also which faults breached that SLO.

use std::fmt;

use super::model::{FaultReport, Report, SloBreach, Verdict, VerdictFailure};

/// Derives the verdict of an otherwise built report.
pub fn verdict(r: &Report) -> Verdict {
    let mut failures = Vec::new();
    if !r.journal.complete {
        failures.push(VerdictFailure {
            kind: "incomplete".into(),
            subject: None,
            detail: incomplete_detail(r),
        });
    }
    let reason = r
        .run
        .end_reason
        .clone()
        .unwrap_or_else(|| "no reason recorded".into());
    match r.run.outcome.as_str() {
        "aborted" => failures.push(run_failure(
            "run-aborted",
            format!("the run was aborted: {reason}"),
        )),
        "crashed" => failures.push(run_failure(
            "run-crashed",
            format!("the controller crashed: {reason}"),
        )),
        _ => {}
    }
    let failed: Vec<_> = r.steady_state.iter().filter(|c| !c.ok).collect();
    if let Some(first) = failed.first() {
        failures.push(VerdictFailure {
            kind: "steady-state".into(),
            subject: None,
            detail: format!(
                "{} of {} steady-state checks failed; first at {} ms: {}",
                failed.len(),
                r.steady_state.len(),
                first.t_ms,
                first.detail
            ),
        });
    }
    failures.extend(r.slo_breaches.iter().map(|b| VerdictFailure {
        kind: "slo".into(),
        subject: Some(b.fault_id.clone()),
        detail: format!("{} ({}): {}", b.fault_id, b.kind, b.reason),
    }));
    Verdict {
        passed: failures.is_empty(),
        failures,
    }
}

/// Says why the journal counts as incomplete.
fn incomplete_detail(r: &Report) -> String {
    let j = &r.journal;
    let mut why = Vec::new();
    if r.run.outcome == "incomplete" {
        why.push("no run-ended line".to_owned());
    }
    if !j.truncated_lines.is_empty() {
        why.push(format!(
            "{} line(s) cut off mid-write",
            j.truncated_lines.len()
        ));
    }
    if !j.seq_gaps.is_empty() {
        why.push(format!("{} gap(s) in seq (lines lost)", j.seq_gaps.len()));
    }
    format!("the journal is incomplete: {}", why.join(", "))
}

fn run_failure(kind: &str, detail: String) -> VerdictFailure {
    VerdictFailure {
        kind: kind.into(),
        subject: None,
        detail,
    }
}

/// The SLO breach of a fault that did not recover within `slo_ms`, if any.
pub fn breach(f: &FaultReport, slo_ms: u64) -> Option<SloBreach> {
    if f.slo_ok {
        return None;
    }
    let reason = match (f.outcome.as_str(), f.total_ms) {
        ("recovered", Some(t)) => format!("recovered in {t} ms, over the SLO of {slo_ms} ms"),
        ("recovered", None) => "recovered, but no milestone was observed to time it".into(),
        ("timed-out", _) => format!("not recovered within the recovery timeout of {slo_ms} ms"),
        ("aborted", _) => "the run was aborted before it recovered".into(),
        _ => "no fault-ended line: recovery was never observed".into(),
    };
    Some(SloBreach {
        fault_id: f.fault_id.clone(),
        kind: f.kind.clone(),
        total_ms: f.total_ms,
        slo_ms,
        reason,
    })
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed {
            return write!(f, "PASSED: the steady state and every recovery SLO held");
        }
        write!(f, "FAILED:")?;
        for failure in &self.failures {
            write!(f, "\n  - [{}] {}", failure.kind, failure.detail)?;
        }
        Ok(())
    }
}

//! Findings and node signals of a report: for a fault over its predicted
//! bound, the phase that overran (the first milestone reached later than
//! the budgets up to it allow); for a node fault, when rackpong's own
//! detection (health silence, the broker's `offline`) and Kubernetes'
//! (NotReady) fired, side by side.

use super::model::{FaultReport, Finding, NodeSignals, Overrun};
use crate::journal::event::PhaseBudget;
use crate::model::Milestone;

/// The journal's node-signal lines (`cluster` events) the report follows.
pub const NODE_SIGNALS: [&str; 3] = ["node-health-stale", "node-offline", "node-not-ready"];

/// Fills in the fault's overrun and node signals.
pub fn annotate(
    f: &mut FaultReport,
    budget: &[PhaseBudget],
    node_events: &[(u64, String, String)],
) {
    if f.within_prediction == Some(false) {
        f.overran = overran(f, budget);
    }
    if f.kind == "node-kill"
        && f.action != "cordon-drain"
        && let Some(node) = f.node.clone()
    {
        let end = f.ended_ms.unwrap_or(u64::MAX);
        let first = |what: &str| {
            node_events
                .iter()
                .find(|(t, w, n)| w == what && *n == node && *t >= f.injected_ms && *t <= end)
                .map(|(t, _, _)| t - f.injected_ms)
        };
        f.node_signals = Some(NodeSignals {
            health_stale_ms: first("node-health-stale"),
            last_will_ms: first("node-offline"),
            not_ready_ms: first("node-not-ready"),
        });
    }
}

fn overran(f: &FaultReport, budget: &[PhaseBudget]) -> Option<Overrun> {
    let budget: Vec<(Milestone, u64)> = budget.iter().map(|b| (b.milestone, b.ms)).collect();
    let reached: Vec<(Milestone, u64)> = f
        .phases
        .iter()
        .filter_map(|p| {
            let m = Milestone::ALL.into_iter().find(|m| m.as_str() == p.to)?;
            Some((m, p.end_ms.saturating_sub(f.injected_ms)))
        })
        .collect();
    let (m, at_ms, allowed_ms) = crate::timing::overrun(&budget, &reached)?;
    Some(Overrun {
        phase: m.as_str().to_string(),
        at_ms,
        allowed_ms,
    })
}

/// One finding per fault over its prediction.
pub fn findings(faults: &[FaultReport]) -> Vec<Finding> {
    faults
        .iter()
        .filter(|f| f.within_prediction == Some(false))
        .map(|f| {
            let total = f.total_ms.unwrap_or(0);
            let predicted = f.predicted_ms.unwrap_or(0);
            let mut text = format!(
                "{} ({}) took {total} ms, over its predicted {predicted} ms",
                f.fault_id, f.fault
            );
            if let Some(o) = &f.overran {
                text.push_str(&format!(
                    ": {} was reached at {} ms, {} ms past the {} ms its phases allow",
                    o.phase,
                    o.at_ms,
                    o.at_ms - o.allowed_ms,
                    o.allowed_ms
                ));
            }
            Finding {
                fault_id: f.fault_id.clone(),
                kind: "over-prediction".into(),
                phase: f.overran.as_ref().map(|o| o.phase.clone()),
                text,
            }
        })
        .collect()
}

/// Rows of the node-signal table: fault, node, then each signal's time
/// after injection ("—" when it did not fire before the fault ended).
pub fn signal_rows(r: &super::Report) -> Vec<Vec<String>> {
    let ms = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| format!("{v} ms"));
    r.faults
        .iter()
        .filter_map(|f| {
            let s = f.node_signals.as_ref()?;
            Some(vec![
                format!("{} ({} {})", f.fault_id, f.fault, f.action),
                f.node.clone().unwrap_or_default(),
                ms(s.health_stale_ms),
                ms(s.last_will_ms),
                ms(s.not_ready_ms),
            ])
        })
        .collect()
}

/// Column names of [`signal_rows`].
pub const SIGNAL_HEAD: [&str; 5] = [
    "Fault",
    "Node",
    "Health stale (rackpong)",
    "Last Will (broker)",
    "NotReady (Kubernetes)",
];

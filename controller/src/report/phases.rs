//! A fault's recovery phases: consecutive kept milestones in the order of
//! [`Milestone::ALL`], starting at injection. Phases never overlap and add up
//! to the total. A milestone that was not observed, or was observed earlier
//! than the milestone kept before it, is merged into the next phase (the phase
//! lists it in `merged` and the fault gets a note saying so).

use super::model::{MilestoneAt, Phase};
use crate::model::Milestone;

/// The phases of one fault and what was noted deriving them.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub phases: Vec<Phase>,
    /// Precision of the total: that of the milestone it ends at (the
    /// injection is stamped when the cluster call returns, so it adds
    /// nothing). Intermediate milestones shape the phases, not the total.
    pub precision_ms: u64,
    pub notes: Vec<String>,
}

/// Builds the phases of a fault injected at `injected_ms` from its observed
/// milestones (journal order).
pub fn timeline(injected_ms: u64, observed: &[(Milestone, MilestoneAt)]) -> Timeline {
    let mut out = Timeline {
        phases: Vec::new(),
        precision_ms: 0,
        notes: Vec::new(),
    };
    let (mut prev_name, mut prev_t, mut prev_p) = ("injected", injected_ms, 0);
    let mut pending: Vec<String> = Vec::new();
    let cold = observed.iter().any(|(m, _)| m.is_cold_start_only());
    for &m in Milestone::sequence(cold) {
        let Some(first) = earliest(m, observed, &mut out.notes) else {
            pending.push(m.as_str().to_owned());
            continue;
        };
        if first.t_ms < prev_t {
            out.notes.push(format!(
                "{} at {} ms is earlier than {prev_name} at {prev_t} ms; merged into the next phase",
                m.as_str(),
                first.t_ms
            ));
            pending.push(m.as_str().to_owned());
            continue;
        }
        if !pending.is_empty() {
            out.notes.push(format!(
                "{} not observed (or out of order): merged into {prev_name}→{}",
                pending.join(", "),
                m.as_str()
            ));
        }
        out.phases.push(Phase {
            from: prev_name.to_owned(),
            to: m.as_str().to_owned(),
            start_ms: prev_t,
            end_ms: first.t_ms,
            duration_ms: first.t_ms - prev_t,
            precision_ms: prev_p.max(first.precision_ms),
            merged: std::mem::take(&mut pending),
        });
        out.precision_ms = first.precision_ms;
        (prev_name, prev_t, prev_p) = (m.as_str(), first.t_ms, first.precision_ms);
    }
    if !pending.is_empty() {
        out.notes.push(format!(
            "not observed after {prev_name}: {}",
            pending.join(", ")
        ));
    }
    out
}

/// The earliest observation of `m` (journal lines are not strictly in time
/// order), noting when there was more than one.
fn earliest<'a>(
    m: Milestone,
    observed: &'a [(Milestone, MilestoneAt)],
    notes: &mut Vec<String>,
) -> Option<&'a MilestoneAt> {
    let seen: Vec<&MilestoneAt> = observed
        .iter()
        .filter(|(k, _)| *k == m)
        .map(|(_, at)| at)
        .collect();
    let first = seen.iter().min_by_key(|at| at.t_ms)?;
    if seen.len() > 1 {
        notes.push(format!(
            "{} observed {} times; the first (at {} ms) is used",
            m.as_str(),
            seen.len(),
            first.t_ms
        ));
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(m: Milestone, t_ms: u64) -> (Milestone, MilestoneAt) {
        let at = MilestoneAt {
            milestone: m.as_str().into(),
            t_ms,
            source: "test".into(),
            precision_ms: 10,
            subject: None,
        };
        (m, at)
    }

    #[test]
    fn phases_are_consecutive_and_add_up() {
        use Milestone::*;
        let obs = [
            at(Detected, 150),
            at(ReplacementCreated, 160),
            at(Ready, 900),
            at(ServiceRestored, 1400),
        ];
        let t = timeline(100, &obs);
        let names: Vec<_> = t
            .phases
            .iter()
            .map(|p| format!("{}→{}", p.from, p.to))
            .collect();
        assert_eq!(
            names,
            [
                "injected→detected",
                "detected→replacement-created",
                "replacement-created→ready",
                "ready→service-restored"
            ]
        );
        assert_eq!(t.phases[2].merged, ["scheduled", "running"]);
        assert_eq!(t.phases[3].merged, ["serving"]);
        let sum: u64 = t.phases.iter().map(|p| p.duration_ms).sum();
        assert_eq!(sum, 1300);
        for pair in t.phases.windows(2) {
            assert_eq!(pair[0].end_ms, pair[1].start_ms);
        }
        assert_eq!(t.notes.len(), 2, "{:?}", t.notes);
    }

    #[test]
    fn out_of_order_and_repeated_milestones_are_noted() {
        use Milestone::*;
        let obs = [
            at(Detected, 500),
            at(Detected, 520),
            at(Ready, 700),
            at(Serving, 650),
            at(ServiceRestored, 800),
        ];
        let t = timeline(0, &obs);
        assert_eq!(t.phases.last().unwrap().from, "ready");
        assert_eq!(t.phases.last().unwrap().merged, ["serving"]);
        assert!(t.notes.iter().any(|n| n.contains("observed 2 times")));
        assert!(
            t.notes
                .iter()
                .any(|n| n.contains("serving at 650 ms is earlier"))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_milestones_give_consecutive_phases_from_injection(
            injected in 0u64..10_000,
            obs in proptest::collection::vec((0usize..7, 0u64..20_000), 0..12),
        ) {
            let obs: Vec<_> = obs.into_iter().map(|(m, t)| at(Milestone::ALL[m], t)).collect();
            let t = timeline(injected, &obs);
            let mut start = injected;
            for p in &t.phases {
                proptest::prop_assert_eq!(p.start_ms, start);
                proptest::prop_assert_eq!(p.duration_ms, p.end_ms - p.start_ms);
                start = p.end_ms;
            }
            let sum: u64 = t.phases.iter().map(|p| p.duration_ms).sum();
            proptest::prop_assert_eq!(sum, start - injected);
        }
    }
}

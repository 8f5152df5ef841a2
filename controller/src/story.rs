//! The live story of a run, told from its journal lines as they are written
//! (or replayed): each fault from injection through its milestones to its
//! total, the node signals (rackpong's detection next to Kubernetes'
//! NotReady), the service-level series, and the run's end. The terminal's
//! fault lines and the dashboard's timeline both read it; totals come from
//! the same phase rule as the report ([`crate::report::phases::timeline`]),
//! so a fault closes on screen at the total `report.json` will record.
//!
//! Milestones are kept by name, in arrival order: a milestone the timing
//! model adds later shows up without a change here.

use serde::Serialize;

use crate::journal::event::{Event, FaultInjected, FaultOutcome, JournalLine, MilestoneEvent};
use crate::model::{FaultKind, Milestone};
use crate::report::model::MilestoneAt;

/// Service samples kept for the sparklines; past this, every other one is
/// dropped and the stride doubles, so a long run stays bounded.
pub const MAX_SERIES: usize = 240;

/// One fault as far as the journal has told it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultStory {
    pub fault_id: String,
    pub fault: String,
    pub kind: &'static str,
    pub action: String,
    pub targets: Vec<String>,
    pub node: Option<String>,
    /// Scale faults: the replica count before and after.
    pub replicas: Option<(u32, u32)>,
    pub injected_ms: u64,
    pub predicted_ms: Option<u64>,
    /// Every milestone reached, in arrival order.
    pub milestones: Vec<MilestoneMark>,
    /// Node faults: when rackpong noticed (health silence or the broker's
    /// Last Will) and when Kubernetes marked the node NotReady, from injection.
    pub rackpong_detected_ms: Option<u64>,
    pub not_ready_ms: Option<u64>,
    /// Set when the fault's recovery ended.
    pub ended_ms: Option<u64>,
    /// `recovered`, `timed-out` or `aborted`; `None` while open.
    pub outcome: Option<&'static str>,
    /// Injection to the last kept milestone, as the report counts it.
    pub total_ms: Option<u64>,
    /// Precision of the total (that of the milestone it ends at).
    pub precision_ms: Option<u64>,
    /// Over the plan's recovery SLO, or not recovered at all.
    pub slo_breached: bool,
    /// Recovered later than its predicted bound.
    pub over_prediction: bool,
    /// Its zombie windows and overlaps, as measured (real cuts of an
    /// isolated local rack, or k3s).
    pub windows: Vec<WindowMark>,
}

/// A zombie window (a worker still passing balls after its node went
/// NotReady) or an overlap (an old worker alive while its replacement serves).
#[derive(Debug, Clone, Serialize)]
pub struct WindowMark {
    /// `zombie` or `overlap`.
    pub kind: &'static str,
    /// Zombie: the worker; overlap: the old worker.
    pub worker: String,
    /// Zombie: its node; overlap: the new worker.
    pub other: String,
    /// Start, from the fault's injection.
    pub after_ms: u64,
    pub duration_ms: u64,
}

/// One milestone of a fault, with its time from injection.
#[derive(Debug, Clone, Serialize)]
pub struct MilestoneMark {
    pub name: String,
    pub after_ms: u64,
    pub source: String,
    pub precision_ms: u64,
}

/// A refused fault.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub t_ms: u64,
    pub fault: String,
    pub kind: &'static str,
    pub target: Option<String>,
    pub reason: String,
}

/// One service-level sample, for the sparklines.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServicePoint {
    pub t_ms: u64,
    pub delivery_rate: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// What one journal line changed, for whoever prints events as they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Injected(String),
    Refused(usize),
    Ended(String),
    RunEnded,
    Other,
}

/// The whole story so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Story {
    pub run_id: Option<String>,
    /// Wall clock at journal time 0 (Unix ms): journal times as wall times.
    pub started_unix_ms: Option<u64>,
    pub plan: Option<String>,
    pub recovery_timeout_ms: Option<u64>,
    pub min_delivery_rate: Option<f64>,
    pub faults: Vec<FaultStory>,
    pub refused: Vec<Refused>,
    pub service: Vec<ServicePoint>,
    /// Journal time of the latest line.
    pub last_t_ms: u64,
    /// `completed`, `aborted` or `crashed` once the run ended.
    pub run_outcome: Option<String>,
    pub steady_state_failed: u32,
    #[serde(skip)]
    stride: u32,
    #[serde(skip)]
    skipped: u32,
    #[serde(skip)]
    observed: Vec<Vec<(Milestone, MilestoneAt)>>,
}

impl Story {
    /// Folds one journal line in and says what it changed.
    pub fn apply(&mut self, line: &JournalLine) -> Change {
        let t = line.t_ms;
        self.last_t_ms = self.last_t_ms.max(t);
        match &line.event {
            Event::RunStarted(s) => {
                self.run_id = Some(s.run_id.clone());
                self.started_unix_ms = Some(s.started_unix_ms);
                self.plan = Some(s.plan_name.clone());
                self.recovery_timeout_ms = Some(s.recovery_timeout_ms);
                self.min_delivery_rate = Some(s.min_delivery_rate);
                Change::Other
            }
            Event::FaultInjected(f) => self.injected(t, f),
            Event::FaultRefused {
                fault,
                kind,
                target,
                reason,
            } => {
                self.refused.push(Refused {
                    t_ms: t,
                    fault: fault.clone(),
                    kind: kind.as_str(),
                    target: target.clone(),
                    reason: reason.clone(),
                });
                Change::Refused(self.refused.len() - 1)
            }
            Event::Milestone(m) => self.milestone(t, m),
            Event::Zombie {
                fault_id,
                worker,
                node,
                from_ms,
                to_ms,
            } => self.window(fault_id, "zombie", worker, node, (*from_ms, *to_ms)),
            Event::Overlap {
                fault_id,
                old_worker,
                new_worker,
                from_ms,
                to_ms,
            } => self.window(
                fault_id,
                "overlap",
                old_worker,
                new_worker,
                (*from_ms, *to_ms),
            ),
            Event::Cluster { what, name, node } => {
                self.node_signal(t, what, node.as_deref().unwrap_or(name));
                Change::Other
            }
            Event::FaultEnded { fault_id, outcome } => self.ended(t, fault_id, *outcome),
            Event::Service(s) => {
                self.service_point(ServicePoint {
                    t_ms: t,
                    delivery_rate: s.delivery_rate,
                    p95_ms: s.p95_ms,
                });
                Change::Other
            }
            Event::SteadyState { ok, .. } => {
                self.steady_state_failed += u32::from(!ok);
                Change::Other
            }
            Event::RunEnded { outcome, .. } => {
                let word = serde_json::to_value(outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
                self.run_outcome = word;
                Change::RunEnded
            }
            _ => Change::Other,
        }
    }

    pub fn fault(&self, id: &str) -> Option<&FaultStory> {
        self.faults.iter().find(|f| f.fault_id == id)
    }

    /// Faults not closed yet.
    pub fn open(&self) -> usize {
        self.faults.iter().filter(|f| f.outcome.is_none()).count()
    }

    fn injected(&mut self, t: u64, f: &FaultInjected) -> Change {
        self.faults.push(FaultStory {
            fault_id: f.fault_id.clone(),
            fault: f.fault.clone(),
            kind: f.kind.as_str(),
            action: f.action.clone(),
            targets: f.targets.clone(),
            node: f.node.clone(),
            replicas: f.replicas_from.zip(f.replicas_to),
            injected_ms: t,
            predicted_ms: f.predicted_ms,
            milestones: Vec::new(),
            rackpong_detected_ms: None,
            not_ready_ms: None,
            ended_ms: None,
            outcome: None,
            total_ms: None,
            precision_ms: None,
            slo_breached: false,
            over_prediction: false,
            windows: Vec::new(),
        });
        self.observed.push(Vec::new());
        Change::Injected(f.fault_id.clone())
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.faults.iter().position(|f| f.fault_id == id)
    }

    fn milestone(&mut self, t: u64, m: &MilestoneEvent) -> Change {
        let Some(i) = self.index(&m.fault_id) else {
            return Change::Other;
        };
        let f = &mut self.faults[i];
        f.milestones.push(MilestoneMark {
            name: m.milestone.as_str().to_owned(),
            after_ms: t.saturating_sub(f.injected_ms),
            source: m.source.clone(),
            precision_ms: m.precision_ms,
        });
        self.observed[i].push((
            m.milestone,
            MilestoneAt {
                milestone: m.milestone.as_str().to_owned(),
                t_ms: t,
                source: m.source.clone(),
                precision_ms: m.precision_ms,
                subject: m.subject.clone(),
            },
        ));
        Change::Other
    }

    fn window(
        &mut self,
        id: &str,
        kind: &'static str,
        worker: &str,
        other: &str,
        (from_ms, to_ms): (u64, u64),
    ) -> Change {
        if let Some(i) = self.index(id) {
            let f = &mut self.faults[i];
            f.windows.push(WindowMark {
                kind,
                worker: worker.to_owned(),
                other: other.to_owned(),
                after_ms: from_ms.saturating_sub(f.injected_ms),
                duration_ms: to_ms.saturating_sub(from_ms),
            });
        }
        Change::Other
    }

    /// The first rackpong signal and the first NotReady of an open node
    /// fault's node, as the report's node signals count them.
    fn node_signal(&mut self, t: u64, what: &str, node: &str) {
        let rackpong = matches!(what, "node-health-stale" | "node-offline");
        if !rackpong && what != "node-not-ready" {
            return;
        }
        let hit = self.faults.iter_mut().filter(|f| {
            f.kind == FaultKind::NodeKill.as_str()
                && f.action != "cordon-drain"
                && f.outcome.is_none()
                && f.node.as_deref() == Some(node)
        });
        for f in hit {
            let slot = if rackpong {
                &mut f.rackpong_detected_ms
            } else {
                &mut f.not_ready_ms
            };
            slot.get_or_insert(t.saturating_sub(f.injected_ms));
        }
    }

    fn ended(&mut self, t: u64, id: &str, outcome: FaultOutcome) -> Change {
        let Some(i) = self.index(id) else {
            return Change::Other;
        };
        let slo = self.recovery_timeout_ms;
        let tl = crate::report::phases::timeline(self.faults[i].injected_ms, &self.observed[i]);
        let f = &mut self.faults[i];
        f.ended_ms = Some(t);
        f.outcome = Some(match outcome {
            FaultOutcome::Recovered => "recovered",
            FaultOutcome::TimedOut => "timed-out",
            FaultOutcome::Aborted => "aborted",
        });
        if outcome == FaultOutcome::Recovered {
            f.total_ms = tl.phases.last().map(|p| p.end_ms - f.injected_ms);
            f.precision_ms = Some(tl.precision_ms);
        }
        f.slo_breached = match (f.total_ms, slo) {
            (Some(total), Some(slo)) => total > slo,
            _ => true,
        };
        f.over_prediction = f.total_ms.zip(f.predicted_ms).is_some_and(|(t, p)| t > p);
        Change::Ended(id.to_owned())
    }

    fn service_point(&mut self, p: ServicePoint) {
        self.stride = self.stride.max(1);
        self.skipped += 1;
        if self.skipped < self.stride {
            return;
        }
        self.skipped = 0;
        self.service.push(p);
        if self.service.len() > MAX_SERIES {
            let kept: Vec<ServicePoint> = self.service.iter().copied().step_by(2).collect();
            self.service = kept;
            self.stride *= 2;
        }
    }
}

#[cfg(test)]
mod tests;

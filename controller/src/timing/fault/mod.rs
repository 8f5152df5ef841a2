//! One fault followed through its milestones: its replacement slots, its
//! detection, its service-level samples, its zombie windows and overlaps.

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

mod advance;
mod cold;

pub(super) use advance::Restore;
use cold::Cold;

use super::Injected;
use crate::journal::event::{FaultInjected, FaultOutcome};
use crate::model::{FaultKind, Milestone};

/// Slot milestones, in order, and their index in [`Slot::at`].
const SLOT_MILESTONES: [Milestone; 5] = [
    Milestone::ReplacementCreated,
    Milestone::Scheduled,
    Milestone::Running,
    Milestone::Ready,
    Milestone::Serving,
];

fn slot_index(m: Milestone) -> Option<usize> {
    SLOT_MILESTONES.iter().position(|x| *x == m)
}

/// One replacement the fault waits for.
#[derive(Debug, Default)]
struct Slot {
    /// The worker this slot replaces (pod-kill target, node's worker).
    old: Option<String>,
    /// The worker filling it.
    worker: Option<String>,
    at: [Option<(Instant, u64)>; 5],
}

impl Slot {
    /// Whether a later cluster milestone (up to ready) was seen: then `k`
    /// was skipped (a returning worker is never created). Serving is not
    /// cluster state: a ball caught early never lets ready be skipped.
    fn has_later_than(&self, k: usize) -> bool {
        k < 3 && self.at[k + 1..4].iter().any(Option::is_some)
    }
}

#[derive(Debug, Clone, Copy)]
struct Signal {
    at: Instant,
    source: &'static str,
    precision: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct OldWorker {
    terminating: Option<Instant>,
    deleted: Option<Instant>,
    overlap_done: bool,
}

#[derive(Debug)]
pub(super) struct FaultTrack {
    info: FaultInjected,
    injected: Instant,
    lost: Vec<String>,
    slots: Vec<Slot>,
    /// Scale-down: deletions still expected, and when the last one was seen.
    surplus: u32,
    surplus_done: Option<Instant>,
    detected: Option<(Signal, Option<String>)>,
    emitted: Vec<(Milestone, Instant)>,
    next: usize,
    service: Vec<(Instant, bool)>,
    /// Where the restore scan of the ball log starts (a ball sent before
    /// the last milestone).
    scan_from: u64,
    ended: Option<(Instant, FaultOutcome)>,
    timeline_taken: bool,
    zombies: BTreeMap<String, (String, Instant, Instant)>,
    old: HashMap<String, OldWorker>,
    pod_source: &'static str,
    /// A cold start (`scale-to-zero`): its zero and scale-up.
    cold: Option<Cold>,
}

impl FaultTrack {
    pub(super) fn new(inj: Injected, pod_source: &'static str) -> Self {
        let from = inj.fault.replicas_from.unwrap_or(0);
        let to = inj.fault.replicas_to.unwrap_or(0);
        let mut slots: Vec<Slot> = inj
            .lost_workers
            .iter()
            .map(|w| Slot {
                old: Some(w.clone()),
                ..Slot::default()
            })
            .collect();
        let mut surplus = 0;
        let cold = Cold::of(&inj.fault);
        if inj.fault.kind == FaultKind::Scale && cold.is_none() {
            slots.extend((from..to).map(|_| Slot::default()));
            surplus = from.saturating_sub(to);
        }
        FaultTrack {
            old: inj
                .lost_workers
                .iter()
                .map(|w| (w.clone(), OldWorker::default()))
                .collect(),
            info: inj.fault,
            injected: inj.at,
            lost: inj.lost_workers,
            slots,
            surplus,
            surplus_done: None,
            detected: None,
            emitted: Vec::new(),
            next: 0,
            service: Vec::new(),
            scan_from: 0,
            ended: None,
            timeline_taken: false,
            zombies: BTreeMap::new(),
            pod_source,
            cold,
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.info.fault_id
    }

    pub(super) fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Ended, its timeline taken, and no overlap left to measure.
    pub(super) fn is_finished(&self) -> bool {
        let Some((_, outcome)) = self.ended else {
            return false;
        };
        self.timeline_taken
            && (outcome == FaultOutcome::Aborted
                || self.slots.iter().all(|s| !self.overlap_pending(s)))
    }

    fn overlap_pending(&self, s: &Slot) -> bool {
        match (&s.old, &s.worker) {
            (Some(o), Some(n)) if o != n => self.old.get(o).is_some_and(|w| !w.overlap_done),
            _ => false,
        }
    }

    fn detect(&mut self, sig: Signal, subject: Option<&str>) {
        if self.detected.is_none() && sig.at >= self.injected && self.ended.is_none() {
            self.detected = Some((sig, subject.map(String::from)));
        }
    }

    pub(super) fn lost_and_unfilled(&self, worker: &str) -> bool {
        self.ended.is_none()
            && self
                .slots
                .iter()
                .any(|s| s.worker.is_none() && s.old.as_deref() == Some(worker))
    }

    pub(super) fn has_free_slot(&self) -> bool {
        self.ended.is_none() && self.slots.iter().any(|s| s.worker.is_none())
    }

    /// A created worker fills this fault's slot (its own lost name first).
    pub(super) fn fill(&mut self, at: Instant, worker: &str, precision: u64) {
        let idx = self
            .slots
            .iter()
            .position(|s| s.worker.is_none() && s.old.as_deref() == Some(worker))
            .or_else(|| self.slots.iter().position(|s| s.worker.is_none()));
        if let Some(i) = idx {
            self.slots[i].worker = Some(worker.to_string());
            self.slots[i].at[0] = Some((at, precision));
        }
        if self.info.kind == FaultKind::Scale {
            let source = self.pod_source;
            self.detect(
                Signal {
                    at,
                    source,
                    precision,
                },
                Some(worker),
            );
        }
    }

    pub(super) fn slot_step(&mut self, at: Instant, worker: &str, m: Milestone, precision: u64) {
        let Some(k) = slot_index(m) else { return };
        let detected = self.detected.is_some();
        let slot = match self
            .slots
            .iter_mut()
            .position(|s| s.worker.as_deref() == Some(worker))
        {
            Some(i) => &mut self.slots[i],
            // The lost worker itself coming back (a node's pods resuming).
            None if detected && m >= Milestone::Running => {
                let Some(i) = self
                    .slots
                    .iter()
                    .position(|s| s.worker.is_none() && s.old.as_deref() == Some(worker))
                else {
                    return;
                };
                self.slots[i].worker = Some(worker.to_string());
                &mut self.slots[i]
            }
            None => return,
        };
        if slot.at[k].is_none() {
            slot.at[k] = Some((at, precision));
        }
    }

    pub(super) fn worker_gone(
        &mut self,
        at: Instant,
        worker: &str,
        source: &'static str,
        precision: u64,
    ) {
        let sig = Signal {
            at,
            source,
            precision,
        };
        let lost = self.lost.iter().any(|w| w == worker);
        let scaled_down = self.info.kind == FaultKind::Scale && self.surplus > 0;
        if lost || scaled_down || self.awaits_zero() {
            self.detect(sig, Some(worker));
        }
    }

    pub(super) fn node_signal(
        &mut self,
        at: Instant,
        node: &str,
        source: &'static str,
        precision: u64,
    ) {
        if self.info.kind == FaultKind::NodeKill && self.info.node.as_deref() == Some(node) {
            self.detect(
                Signal {
                    at,
                    source,
                    precision,
                },
                Some(node),
            );
        }
    }

    pub(super) fn replicas_changed(&mut self, at: Instant, replicas: u32, precision: u64) {
        if self.info.kind == FaultKind::Scale && self.info.replicas_to == Some(replicas) {
            let sig = Signal {
                at,
                source: "watch-deployment",
                precision,
            };
            self.detect(sig, None);
        }
    }

    pub(super) fn wants_deletion(&self, worker: &str) -> bool {
        self.ended.is_none()
            && self.info.kind == FaultKind::Scale
            && self.surplus > 0
            && !self
                .slots
                .iter()
                .any(|s| s.worker.as_deref() == Some(worker))
    }

    pub(super) fn deleted_surplus(&mut self, at: Instant, precision: u64) {
        self.surplus -= 1;
        if self.surplus == 0 {
            self.surplus_done = Some(at);
        }
        let source = self.pod_source;
        self.detect(
            Signal {
                at,
                source,
                precision,
            },
            None,
        );
    }

    pub(super) fn old_terminating(&mut self, at: Instant, worker: &str) {
        if let Some(o) = self.old.get_mut(worker) {
            o.terminating.get_or_insert(at);
        }
    }

    pub(super) fn old_deleted(&mut self, at: Instant, worker: &str) {
        if let Some(o) = self.old.get_mut(worker) {
            o.deleted.get_or_insert(at);
        }
    }

    /// A ball passed through `worker` on `node` (NotReady `since`, if so).
    pub(super) fn ball_through(
        &mut self,
        at: Instant,
        worker: &str,
        node: &str,
        since: Option<Instant>,
        precision: u64,
    ) {
        for s in &mut self.slots {
            if s.worker.as_deref() == Some(worker) && s.at[4].is_none() {
                s.at[4] = Some((at, precision));
            }
        }
        let is_node =
            self.info.kind == FaultKind::NodeKill && self.info.node.as_deref() == Some(node);
        if let (true, None, Some(since)) = (is_node, self.ended, since)
            && since >= self.injected
            && at >= since
        {
            let z = self
                .zombies
                .entry(worker.to_string())
                .or_insert_with(|| (node.to_string(), since, at));
            z.2 = at;
        }
    }

    pub(super) fn service_sample(&mut self, at: Instant, ok: bool) {
        if self.ended.is_none() && at >= self.injected {
            self.service.push((at, ok));
        }
    }
}

//! One fault followed through its milestones: its replacement slots, its
//! detection, its service-level samples, its zombie windows and overlaps.

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio::time::Instant;

use super::{Injected, Output, Timeline};
use crate::journal::event::{FaultInjected, FaultKind, FaultOutcome, Milestone, MilestoneEvent};

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
    ended: Option<(Instant, FaultOutcome)>,
    timeline_taken: bool,
    zombies: BTreeMap<String, (String, Instant, Instant)>,
    old: HashMap<String, OldWorker>,
    pod_source: &'static str,
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
        if inj.fault.kind == FaultKind::Scale {
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
            ended: None,
            timeline_taken: false,
            zombies: BTreeMap::new(),
            pod_source,
        }
    }

    pub(super) fn injected(&self) -> Instant {
        self.injected
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
        if lost || scaled_down {
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

    fn last_time(&self) -> Instant {
        self.emitted.last().map_or(self.injected, |(_, t)| *t)
    }

    fn emit(
        &mut self,
        m: Milestone,
        at: Instant,
        source: &str,
        precision: u64,
        subject: Option<String>,
        out: &mut Vec<Output>,
    ) {
        let at = at.max(self.last_time());
        self.emitted.push((m, at));
        out.push(Output::Milestone {
            at,
            event: MilestoneEvent {
                fault_id: self.info.fault_id.clone(),
                milestone: m,
                source: source.to_string(),
                precision_ms: precision,
                subject,
            },
        });
    }

    /// Emits every milestone now decided, in order; ends the fault when the
    /// service is restored.
    pub(super) fn advance(&mut self, service_ms: u64, out: &mut Vec<Output>) {
        while self.ended.is_none() && self.next < Milestone::ALL.len() {
            let m = Milestone::ALL[self.next];
            match m {
                Milestone::Detected => {
                    let Some((sig, subject)) = self.detected.clone() else {
                        return;
                    };
                    self.emit(m, sig.at, sig.source, sig.precision, subject, out);
                }
                Milestone::ServiceRestored => {
                    if self.surplus > 0 {
                        return;
                    }
                    let after = self
                        .last_time()
                        .max(self.surplus_done.unwrap_or(self.injected));
                    let Some(&(at, _)) = self.service.iter().find(|(t, ok)| *ok && *t >= after)
                    else {
                        return;
                    };
                    self.emit(m, at, "factory", service_ms, None, out);
                    self.end(at, FaultOutcome::Recovered, out);
                }
                _ => {
                    if !self.slot_milestone(m, out) {
                        return;
                    }
                }
            }
            self.next += 1;
        }
    }

    /// Decides a slot milestone: emitted, absent (every slot skipped it), or
    /// not yet decided (`false`).
    fn slot_milestone(&mut self, m: Milestone, out: &mut Vec<Output>) -> bool {
        let k = slot_index(m).expect("a slot milestone");
        let mut best: Option<(Instant, u64, Option<String>)> = None;
        for s in &self.slots {
            match s.at[k] {
                Some((t, p)) => {
                    if best.as_ref().is_none_or(|b| t > b.0) {
                        best = Some((t, p, s.worker.clone()));
                    }
                }
                None if s.has_later_than(k) => {}
                None => return false,
            }
        }
        if let Some((t, p, subject)) = best {
            let source = match m {
                Milestone::Serving => "ball-caught",
                _ => self.pod_source,
            };
            self.emit(m, t, source, p, subject, out);
        }
        true
    }

    pub(super) fn end(&mut self, at: Instant, outcome: FaultOutcome, out: &mut Vec<Output>) {
        for (worker, (node, from, to)) in std::mem::take(&mut self.zombies) {
            out.push(Output::Zombie {
                fault_id: self.info.fault_id.clone(),
                worker,
                node,
                from,
                to,
            });
        }
        out.push(Output::Ended {
            at,
            fault_id: self.info.fault_id.clone(),
            outcome,
        });
        self.ended = Some((at, outcome));
    }

    /// Overlaps that can now be measured: the old worker deleted after its
    /// replacement started serving.
    pub(super) fn flush_overlaps(&mut self, out: &mut Vec<Output>) {
        let mut done = HashSet::new();
        for s in &self.slots {
            let (Some(o), Some(n), Some((serving, _))) = (&s.old, &s.worker, s.at[4]) else {
                continue;
            };
            let Some(old) = self.old.get(o) else { continue };
            let (Some(deleted), false) = (old.deleted, old.overlap_done) else {
                continue;
            };
            if o == n {
                continue;
            }
            done.insert(o.clone());
            if serving < deleted {
                out.push(Output::Overlap {
                    fault_id: self.info.fault_id.clone(),
                    old_worker: o.clone(),
                    new_worker: n.clone(),
                    from: old.terminating.unwrap_or(self.injected).max(serving),
                    to: deleted,
                });
            }
        }
        for o in done {
            if let Some(w) = self.old.get_mut(&o) {
                w.overlap_done = true;
            }
        }
    }

    pub(super) fn take_timeline(&mut self) -> Option<Timeline> {
        let (ended, outcome) = self.ended?;
        if self.timeline_taken {
            return None;
        }
        self.timeline_taken = true;
        Some(Timeline {
            fault_id: self.info.fault_id.clone(),
            fault: self.info.fault.clone(),
            kind: self.info.kind,
            injected: self.injected,
            milestones: self.emitted.clone(),
            outcome,
            ended,
        })
    }
}

//! Deciding a fault's milestones in order, ending it, and measuring its
//! overlaps once the old worker is gone.

use std::collections::HashSet;

use tokio::time::Instant;

use super::{FaultTrack, slot_index};
use crate::journal::event::{FaultOutcome, MilestoneEvent};
use crate::model::Milestone;
use crate::timing::{Output, Timeline};

impl FaultTrack {
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
    pub(in crate::timing) fn advance(&mut self, service_ms: u64, out: &mut Vec<Output>) {
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

    pub(in crate::timing) fn end(
        &mut self,
        at: Instant,
        outcome: FaultOutcome,
        out: &mut Vec<Output>,
    ) {
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
    pub(in crate::timing) fn flush_overlaps(&mut self, out: &mut Vec<Output>) {
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

    pub(in crate::timing) fn take_timeline(&mut self) -> Option<Timeline> {
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

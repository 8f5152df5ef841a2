//! Deciding a fault's milestones in order, ending it, and measuring its
//! overlaps once the old worker is gone.

use std::collections::HashSet;

use tokio::time::Instant;

use super::{FaultTrack, slot_index};
use crate::journal::event::{FaultOutcome, MilestoneEvent};
use crate::model::Milestone;
use crate::timing::BallLog;
use crate::timing::{Output, Timeline};

/// How service-restored is decided.
#[derive(Debug, Clone, Copy)]
pub(in crate::timing) enum Restore<'a> {
    /// From ball outcomes: the first ball of `run` consecutive delivered ones.
    Balls {
        run: usize,
        spacing_ms: u64,
        log: &'a BallLog,
    },
    /// From the factory's periodic service-level samples (no ball feed).
    Samples { period_ms: u64 },
}

impl FaultTrack {
    fn last_time(&self) -> Instant {
        self.emitted.last().map_or(self.injected, |(_, t)| *t)
    }

    pub(in crate::timing) fn emit(
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
    pub(in crate::timing) fn advance(&mut self, restore: Restore<'_>, out: &mut Vec<Output>) {
        let sequence = Milestone::sequence(self.is_cold());
        while self.ended.is_none() && self.next < sequence.len() {
            let m = sequence[self.next];
            match m {
                Milestone::ZeroReached | Milestone::ScaleUpIssued => {
                    if !self.cold_milestone(m, out) {
                        return;
                    }
                }
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
                    let found = match restore {
                        Restore::Balls {
                            run,
                            spacing_ms,
                            log,
                        } => self
                            .restore_run(log, after, run)
                            .map(|(at, gap)| (at, gap.unwrap_or(spacing_ms), "ball-outcomes")),
                        Restore::Samples { period_ms } => self
                            .service
                            .iter()
                            .find(|(t, ok)| *ok && *t >= after)
                            .map(|&(at, _)| (at, period_ms, "factory")),
                    };
                    let Some((at, precision, source)) = found else {
                        return;
                    };
                    self.emit(m, at, source, precision.max(1), None, out);
                    self.end(at, FaultOutcome::Recovered, out);
                }
                _ if self.is_cold() => {
                    if !self.first_slot_milestone(m, out) {
                        return;
                    }
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

    /// The send time of the first ball of `run` consecutive delivered balls
    /// sent at or after `after`, and its gap (ms) to the ball before it;
    /// `None` while undecided (a ball that could start or break the first
    /// run has no outcome yet: a hole in the log's numbers).
    fn restore_run(
        &mut self,
        log: &BallLog,
        after: Instant,
        run: usize,
    ) -> Option<(Instant, Option<u64>)> {
        let mut start: Option<(Instant, Option<u64>)> = None;
        let mut len = 0;
        let mut prev: Option<(u64, Instant)> = None;
        for (&seq, &(sent, delivered)) in log.range(self.scan_from..) {
            if sent < after {
                self.scan_from = seq;
                prev = Some((seq, sent));
                continue;
            }
            if prev.is_some_and(|(p, _)| p + 1 != seq) {
                return None;
            }
            let before = prev.map(|(_, t)| t);
            prev = Some((seq, sent));
            if !delivered {
                (start, len) = (None, 0);
                continue;
            }
            let gap = before.map(|t| sent.saturating_duration_since(t).as_millis() as u64);
            let first = *start.get_or_insert((sent, gap));
            len += 1;
            if len == run {
                return Some(first);
            }
        }
        None
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

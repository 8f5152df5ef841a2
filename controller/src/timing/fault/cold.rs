//! A cold start followed through its own milestones: zero reached (the
//! last worker gone), scale-up issued (by the engine, after the hold), and
//! then the *first* new worker's created, scheduled, running, ready and
//! serving: the moment the rack can answer again, not the last replica.

use std::time::Duration;

use tokio::time::Instant;

use super::{FaultTrack, Signal, Slot, slot_index};
use crate::journal::event::FaultInjected;
use crate::model::Milestone;
use crate::plan::SCALE_TO_ZERO_ACTION;
use crate::timing::Output;

/// The cold-start part of a fault's state.
#[derive(Debug, Clone)]
pub(in crate::timing) struct Cold {
    hold: Duration,
    /// When the last worker was gone, and which it was.
    zero: Option<(Signal, Option<String>)>,
    /// When the engine asked for the workers back.
    scale_up: Option<Instant>,
}

impl Cold {
    /// The cold-start state of a `scale-to-zero` fault, `None` for others.
    pub(in crate::timing) fn of(f: &FaultInjected) -> Option<Cold> {
        (f.action == SCALE_TO_ZERO_ACTION).then(|| Cold {
            hold: Duration::from_millis(f.hold_ms.unwrap_or(0)),
            zero: None,
            scale_up: None,
        })
    }
}

impl FaultTrack {
    pub(in crate::timing) fn is_cold(&self) -> bool {
        self.cold.is_some()
    }

    /// A cold start whose workers are not all gone yet.
    pub(in crate::timing) fn awaits_zero(&self) -> bool {
        self.ended.is_none() && self.cold.as_ref().is_some_and(|c| c.zero.is_none())
    }

    /// The rack has no worker left (`last` was the last one to go).
    pub(in crate::timing) fn zero_reached(
        &mut self,
        at: Instant,
        last: Option<&str>,
        precision: u64,
    ) {
        if !self.awaits_zero() || at < self.injected {
            return;
        }
        let source = self.pod_source;
        let sig = Signal {
            at,
            source,
            precision,
        };
        if let Some(c) = &mut self.cold {
            c.zero = Some((sig, last.map(String::from)));
        }
        // Every worker gone is detection too, if nothing earlier was.
        self.detect(sig, last);
    }

    /// The engine scaled back to `replicas`: one slot per new worker.
    pub(in crate::timing) fn scale_up_issued(&mut self, at: Instant, replicas: u32) {
        let Some(c) = &mut self.cold else { return };
        if c.scale_up.is_some() || self.ended.is_some() {
            return;
        }
        c.scale_up = Some(at);
        self.slots
            .extend((0..replicas.max(1)).map(|_| Slot::default()));
    }

    /// When the recovery SLO runs out: for a cold start, `timeout` after the
    /// scale-up (the hold is planned), or after injection plus the hold
    /// while the workers are still going.
    pub(in crate::timing) fn deadline(&self, timeout: Duration) -> Instant {
        match &self.cold {
            Some(Cold {
                scale_up: Some(t), ..
            }) => *t + timeout,
            Some(c) => self.injected + c.hold + timeout,
            None => self.injected + timeout,
        }
    }

    /// Decides zero-reached or scale-up-issued; `false` while not yet seen.
    pub(in crate::timing) fn cold_milestone(
        &mut self,
        m: Milestone,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(c) = self.cold.clone() else {
            return true;
        };
        match m {
            Milestone::ZeroReached => {
                let Some((sig, subject)) = c.zero else {
                    return false;
                };
                self.emit(m, sig.at, sig.source, sig.precision, subject, out);
            }
            _ => {
                let Some(at) = c.scale_up else { return false };
                self.emit(m, at, "controller", 1, None, out);
            }
        }
        true
    }

    /// A cold start's replacement milestone: the first new worker to reach
    /// it; absent when a worker reached a later one without it.
    pub(in crate::timing) fn first_slot_milestone(
        &mut self,
        m: Milestone,
        out: &mut Vec<Output>,
    ) -> bool {
        let k = slot_index(m).expect("a slot milestone");
        let first = self
            .slots
            .iter()
            .filter_map(|s| s.at[k].map(|(t, p)| (t, p, s.worker.clone())))
            .min_by_key(|(t, _, _)| *t);
        if let Some((t, p, subject)) = first {
            let source = match m {
                Milestone::Serving => "ball-caught",
                _ => self.pod_source,
            };
            self.emit(m, t, source, p, subject, out);
            return true;
        }
        self.slots.iter().any(|s| s.has_later_than(k))
    }
}

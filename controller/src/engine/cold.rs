//! The scale fault's cold start (`scale: {to: 0, hold}`): once the tracker
//! says the last worker is gone, wait out the hold, then scale back to the
//! count before and tell the tracker, which times the first new worker
//! from there. A cold start that ends without its scale-up (timed out,
//! workers never all gone) is scaled back at once; an aborted run's
//! rollback restores the count anyway.

use std::time::Duration;

use tokio::time::Instant;

use super::run::Run;
use super::{EngineError, ServiceProbe};
use crate::cluster::Cluster;
use crate::journal::event::Event;
use crate::model::Milestone;
use crate::timing::Output;

/// Retry delay of a failed scale-up.
const RETRY: Duration = Duration::from_secs(1);

/// One cold start the engine still has to scale back, or has.
#[derive(Debug, Clone)]
pub(super) struct ColdStart {
    pub(super) fault_id: String,
    /// The replica count before the scale to zero.
    pub(super) back_to: u32,
    pub(super) hold: Duration,
    /// When the scale-up is due (zero reached + hold).
    pub(super) due: Option<Instant>,
    pub(super) issued: bool,
    /// The fault's recovery ended.
    pub(super) ended: Option<Instant>,
}

impl<C: Cluster, S: ServiceProbe> Run<C, S> {
    /// The earliest scale-up due.
    pub(super) fn cold_due(&self) -> Option<Instant> {
        self.cold
            .iter()
            .filter(|c| !c.issued)
            .filter_map(|c| c.due)
            .min()
    }

    /// The open cold start, if any (no other fault fires meanwhile).
    pub(super) fn open_cold_start(&self) -> Option<&str> {
        self.cold
            .iter()
            .find(|c| c.ended.is_none() || !c.issued)
            .map(|c| c.fault_id.as_str())
    }

    /// Whether a planned zero ended within the last `window` (then the
    /// steady state leaves the balls it refused out of the delivery rate).
    pub(super) fn planned_zero_within(&self, window: Duration) -> bool {
        let now = Instant::now();
        self.cold
            .iter()
            .any(|c| c.ended.is_none_or(|t| now < t + window))
    }

    /// Follows the tracker's conclusions about cold starts.
    pub(super) fn cold_outputs(&mut self, out: &[Output]) {
        for o in out {
            match o {
                Output::Milestone { at, event } if event.milestone == Milestone::ZeroReached => {
                    if let Some(c) = self.cold.iter_mut().find(|c| c.fault_id == event.fault_id) {
                        c.due.get_or_insert(*at + c.hold);
                    }
                }
                Output::Ended { at, fault_id, .. } => {
                    if let Some(c) = self.cold.iter_mut().find(|c| &c.fault_id == fault_id) {
                        c.ended = Some(*at);
                        if !c.issued {
                            c.due = Some(Instant::now());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Scales back every cold start now due.
    pub(super) async fn scale_up_due(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        let due: Vec<usize> = (0..self.cold.len())
            .filter(|&i| !self.cold[i].issued && self.cold[i].due.is_some_and(|d| d <= now))
            .collect();
        for i in due {
            let (fault_id, to) = (self.cold[i].fault_id.clone(), self.cold[i].back_to);
            let at = Instant::now();
            match self.cluster.scale(to).await {
                Ok(_) => {
                    tracing::info!(%fault_id, replicas = to, "cold start: scale-up issued");
                    self.cold[i].issued = true;
                    self.progress.last = format!("{fault_id} scale-up to {to} issued");
                    let out = self.tracker.scale_up_issued(at, &fault_id, to);
                    self.emit(out)?;
                }
                Err(e) => {
                    tracing::warn!(%fault_id, error = %e, "cold start: scale-up failed, retrying");
                    self.journal.append(Event::Rollback {
                        action: "cold-start-scale-up".into(),
                        ok: false,
                        detail: format!("{fault_id}: scale to {to}: {e}"),
                    })?;
                    self.cold[i].due = Some(Instant::now() + RETRY);
                }
            }
        }
        Ok(())
    }
}

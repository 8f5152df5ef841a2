//! The listener's side of the rack's emergency stop: an admitted stop is
//! persisted first (a crash while restoring still restarts stopped), then
//! the fault in force is restored and the stop acked on the node's ack topic
//! with the estop's id; while it is in force every command but `restore` is
//! refused with reason `estop`. A clear lifts it. Admission rules are in
//! [`crate::chaos::estop`].

use super::super::estop::EstopVerdict;
use super::super::guard::Rejection;
use super::{Listener, ack};
use crate::now_ms;
use crate::proto::{ChaosAction, Estop};

impl Listener {
    /// Why `action` is refused under the stop in force (`restore` never is:
    /// undoing a fault is what the stop wants).
    pub(super) fn stopped(&self, action: ChaosAction) -> Option<Rejection> {
        let stop = self.estop.engaged()?;
        if action == ChaosAction::Restore {
            return None;
        }
        Some(Rejection::Estop(format!(
            "emergency stop {:?} (seq {}) by {} in force since {}; commands are refused until a signed clear (rackpong estop --clear)",
            stop.id, stop.seq, stop.by, stop.issued_ms
        )))
    }

    pub(super) async fn on_estop(&mut self, publish: &rumqttc::Publish) {
        let received_ms = now_ms();
        if publish.payload.is_empty() {
            // Someone deleted the retained copy on the broker: that is not a clear.
            tracing::info!(
                engaged = self.estop.engaged().is_some(),
                "chaos: retained estop removed from the broker; the last honoured state stays"
            );
            return;
        }
        match self
            .estop
            .check(&publish.payload, publish.retain, received_ms)
        {
            Ok(EstopVerdict::InForce) => {
                tracing::debug!(retained = publish.retain, "chaos: estop already in force")
            }
            Ok(EstopVerdict::Apply(estop)) => self.apply_estop(&estop, received_ms).await,
            Err(rejected) => self.reject(&rejected.id, &rejected.reason, received_ms),
        }
        self.stats.set_estop(self.estop.last());
    }

    async fn apply_estop(&mut self, estop: &Estop, received_ms: u64) {
        let state = if estop.engaged {
            "estop-engaged"
        } else {
            "estop-cleared"
        };
        self.stats.count("accepted", state);
        if let Err(e) = self.persist(self.active.as_ref().map(|(f, _)| f)) {
            tracing::error!(error = %e, "chaos: estop not persisted; a restart before the broker is back would forget it");
        }
        if !estop.engaged {
            tracing::warn!(id = %estop.id, seq = estop.seq, by = %estop.by, "chaos: emergency stop cleared; commands accepted again");
            let reason = format!("estop cleared (seq {}): commands accepted again", estop.seq);
            return self.send_ack(ack(&estop.id, &self.node, true, reason, received_ms));
        }
        let fault = self
            .active
            .as_ref()
            .map(|(f, _)| format!("{} from command {:?}", f.action.as_str(), f.id));
        tracing::warn!(id = %estop.id, seq = estop.seq, by = %estop.by, ?fault, "chaos: EMERGENCY STOP");
        let why = format!("emergency stop {:?}", estop.id);
        let (accepted, reason) = match (self.restore(&why).await, fault) {
            (Ok(()), Some(f)) => (true, format!("estop engaged: restored {f}")),
            (Ok(()), None) => (true, "estop engaged: nothing to restore".to_string()),
            (Err(e), _) => (
                false,
                format!(
                    "estop engaged, but restoring failed: {e}; retried every {:?}",
                    self.cfg.restore_retry
                ),
            ),
        };
        let mut a = ack(&estop.id, &self.node, accepted, reason, received_ms);
        a.started_ms = Some(now_ms());
        self.send_ack(a);
    }
}

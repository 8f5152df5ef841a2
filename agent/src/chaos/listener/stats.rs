//! The listener's counters and gauges, read by the node role's /metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use super::super::deadman::ActiveFault;
use super::super::estop::EstopRecord;
use crate::proto::ChaosAction;

/// Counters of the listener (exported by the node role's /metrics).
#[derive(Debug, Default)]
pub struct ChaosStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    /// Payloads that did not decode as a command (also counted in `rejected`).
    pub malformed: AtomicU64,
    /// Faults undone by the dead-man timer (not by a `restore` command).
    pub deadman_restores: AtomicU64,
    /// Steps that failed to run.
    pub step_failures: AtomicU64,
    /// Commands by (result, reason): `accepted` with the action, `rejected`
    /// with the rejection code.
    by_outcome: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// The fault in force and its dead-man deadline (Unix ms).
    active: Mutex<Option<(ChaosAction, u64)>>,
    /// The last emergency stop or clear honoured.
    estop: Mutex<Option<EstopRecord>>,
    /// Woken when a fault comes into force or ends and when the stop is
    /// engaged or cleared (the node's LED driver waits on it).
    lights_changed: tokio::sync::Notify,
}

impl ChaosStats {
    /// Commands counted by (result, reason), sorted.
    pub fn by_outcome(&self) -> Vec<((&'static str, &'static str), u64)> {
        let m = self.by_outcome.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// The fault in force and its dead-man deadline (Unix ms), if any.
    pub fn active(&self) -> Option<(ChaosAction, u64)> {
        *self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last emergency stop or clear honoured (engaged or not).
    pub fn estop(&self) -> Option<EstopRecord> {
        self.estop.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// (a fault in force, the stop engaged): what the status LEDs show.
    pub fn lights(&self) -> (bool, bool) {
        let estop = self.estop().is_some_and(|r| r.engaged);
        (self.active().is_some(), estop)
    }

    /// Resolves once [`ChaosStats::lights`] may have changed since the last call.
    pub async fn lights_changed(&self) {
        self.lights_changed.notified().await;
    }

    pub(super) fn set_estop(&self, record: Option<&EstopRecord>) {
        let mut e = self.estop.lock().unwrap_or_else(|p| p.into_inner());
        let was = e.as_ref().is_some_and(|r| r.engaged);
        *e = record.cloned();
        if was != e.as_ref().is_some_and(|r| r.engaged) {
            self.lights_changed.notify_one();
        }
    }

    pub(super) fn count(&self, result: &'static str, reason: &'static str) {
        let mut m = self.by_outcome.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((result, reason)).or_default() += 1;
    }

    pub(super) fn set_active(&self, fault: Option<&ActiveFault>) {
        let mut a = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let was = a.is_some();
        *a = fault.map(|f| (f.action, f.restore_at_ms));
        if was != a.is_some() {
            self.lights_changed.notify_one();
        }
    }
}

//! The journal's line format: one JSON object per line, `{"v":1,"seq":N,"t_ms":T,"type":...}`.
//! `t_ms` is milliseconds since the run started on the controller's monotonic
//! clock, taken when the watch event or MQTT message arrived. This is the
//! contract between the controller (which writes it) and the reports (which are
//! rendered from it alone).

use rackpong_agent::proto::HealthSample;
use serde::{Deserialize, Serialize};

use crate::model::ClusterKind;
use crate::model::{Detection, FaultKind, Milestone, ServiceLevel};

/// Version of the journal line format.
pub const JOURNAL_VERSION: u32 = 1;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalLine {
    pub v: u32,
    /// 0-based, one more per line; a gap means lines were lost.
    pub seq: u64,
    /// Monotonic milliseconds since `RunStarted`.
    pub t_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// Always the first line.
    RunStarted(RunStarted),
    /// A node's health sample as received over MQTT.
    Health { sample: HealthSample },
    /// The ball factory's service level over its sliding window.
    Service(ServiceLevel),
    /// The steady-state hypothesis was checked.
    SteadyState { ok: bool, detail: String },
    /// A fault was injected.
    FaultInjected(FaultInjected),
    /// A fault was refused by the safety rules or by the node; nothing was done.
    FaultRefused {
        fault: String,
        kind: FaultKind,
        target: Option<String>,
        reason: String,
    },
    /// A recovery milestone of an injected fault.
    Milestone(MilestoneEvent),
    /// A worker kept catching balls after its node was marked NotReady.
    Zombie {
        fault_id: String,
        worker: String,
        node: String,
        from_ms: u64,
        to_ms: u64,
    },
    /// An old worker was still terminating while its replacement already served.
    Overlap {
        fault_id: String,
        old_worker: String,
        new_worker: String,
        from_ms: u64,
        to_ms: u64,
    },
    /// A fault's recovery ended (recovered, or the recovery timeout passed).
    FaultEnded {
        fault_id: String,
        outcome: FaultOutcome,
    },
    /// Something observed in the cluster (for the record; timings use milestones).
    Cluster {
        what: String,
        name: String,
        node: Option<String>,
    },
    /// A rollback action taken on abort or on the next start after a crash.
    Rollback {
        action: String,
        ok: bool,
        detail: String,
    },
    /// Always the last line of a finished run.
    RunEnded {
        outcome: RunOutcome,
        reason: Option<String>,
    },
}

/// Run metadata, written once at the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: String,
    /// Wall clock at `t_ms = 0` (Unix ms), to place the run in time.
    pub started_unix_ms: u64,
    pub controller_version: String,
    /// `local` (the embedded stand-in rack) or `k3s`.
    pub cluster_kind: ClusterKind,
    pub nodes: Vec<String>,
    pub plan_name: String,
    pub seed: u64,
    /// The plan as parsed, for the record.
    pub plan: serde_json::Value,
    /// The recovery SLO per fault (ms): a fault recovering later fails.
    pub recovery_timeout_ms: u64,
    /// Delivery rate (0–1) the steady state must hold.
    pub min_delivery_rate: f64,
    /// What the cluster says about failure detection (see [`Detection`]).
    pub detection: Detection,
}

/// A fault as injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultInjected {
    /// Unique in the run, e.g. `f3`.
    pub fault_id: String,
    /// The plan's name for this fault.
    pub fault: String,
    pub kind: FaultKind,
    /// Pod-kill: `graceful`/`forced`; node-kill: `stop-k3s`/`reboot`/`net-drop`/`power-relay`/`cordon-drain`;
    /// scale: `scale`.
    pub action: String,
    /// Workers or node affected.
    pub targets: Vec<String>,
    /// The node the fault hit (pod-kill: the killed worker's node).
    pub node: Option<String>,
    /// Scale: replica count before and after.
    pub replicas_from: Option<u32>,
    pub replicas_to: Option<u32>,
    /// Cold start (`scale-to-zero`): how long the workers stay at zero
    /// after the last one is gone, before the scale back up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u64>,
    /// Predicted upper bound of the total recovery from the cluster's settings.
    pub predicted_ms: Option<u64>,
    /// How the prediction was made.
    pub predicted_basis: Option<String>,
    /// The prediction phase by phase: each milestone's budget from the one
    /// before it (they add up to `predicted_ms`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predicted_phases: Vec<PhaseBudget>,
}

/// One phase's share of a predicted bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseBudget {
    pub milestone: Milestone,
    pub ms: u64,
}

/// One milestone reached by one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilestoneEvent {
    pub fault_id: String,
    pub milestone: Milestone,
    /// What observed it: `controller` (scale-up-issued), `mqtt-lwt`, `mqtt-health-stale`, `watch-pod`, `watch-node`,
    /// `mqtt-birth`, `ball-caught`, `factory`, `local-rack`.
    pub source: String,
    /// The precision of this timestamp in ms (e.g. the kubelet probe period for `ready`).
    pub precision_ms: u64,
    /// The object concerned (new worker name, node name).
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultOutcome {
    Recovered,
    /// Not recovered within the plan's recovery timeout.
    TimedOut,
    /// The run was aborted before the fault recovered.
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    Completed,
    Aborted,
    /// Written on the next start for a run left unfinished by a crash.
    Crashed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_flat_and_tagged() {
        let line = JournalLine {
            v: JOURNAL_VERSION,
            seq: 4,
            t_ms: 1200,
            event: Event::Milestone(MilestoneEvent {
                fault_id: "f1".into(),
                milestone: Milestone::Ready,
                source: "watch-pod".into(),
                precision_ms: 1000,
                subject: Some("worker-7".into()),
            }),
        };
        let json = serde_json::to_string(&line).unwrap();
        assert!(
            json.starts_with(r#"{"v":1,"seq":4,"t_ms":1200,"type":"milestone","#),
            "{json}"
        );
        assert!(json.contains(r#""milestone":"ready""#));
        let back: JournalLine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, line);
    }
}

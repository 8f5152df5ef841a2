//! The controller's core vocabulary, shared by the journal, timing, the
//! engine and the reports: the fault kinds of a plan, the recovery
//! milestones, the failure-detection settings a cluster exposes and the
//! service level the ball factory measures. It depends on nothing else in the
//! crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The fault kinds of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    PodKill,
    NodeKill,
    Scale,
}

impl FaultKind {
    /// The kebab-case name, as in plans, journals and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::PodKill => "pod-kill",
            FaultKind::NodeKill => "node-kill",
            FaultKind::Scale => "scale",
        }
    }
}

/// Recovery milestones, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Milestone {
    Detected,
    ReplacementCreated,
    Scheduled,
    Running,
    Ready,
    Serving,
    ServiceRestored,
}

impl Milestone {
    pub const ALL: [Milestone; 7] = [
        Milestone::Detected,
        Milestone::ReplacementCreated,
        Milestone::Scheduled,
        Milestone::Running,
        Milestone::Ready,
        Milestone::Serving,
        Milestone::ServiceRestored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Detected => "detected",
            Milestone::ReplacementCreated => "replacement-created",
            Milestone::Scheduled => "scheduled",
            Milestone::Running => "running",
            Milestone::Ready => "ready",
            Milestone::Serving => "serving",
            Milestone::ServiceRestored => "service-restored",
        }
    }
}

/// The failure-detection settings the cluster exposes, from which the
/// predicted bounds are computed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// `default`, `demo-fast`, `local` or another profile name.
    pub profile: String,
    pub node_monitor_grace_s: Option<u64>,
    pub not_ready_toleration_s: Option<u64>,
    pub unreachable_toleration_s: Option<u64>,
    pub readiness_period_s: Option<u64>,
    pub readiness_failure_threshold: Option<u64>,
    pub mqtt_keepalive_s: Option<u64>,
    /// Anything else worth recording.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// The ball factory's service level over its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevel {
    pub window_ms: u64,
    pub sent: u64,
    pub caught: u64,
    pub dropped: u64,
    pub timed_out: u64,
    /// caught / (caught + dropped + timed out) over the window; `None` with no outcomes.
    pub delivery_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

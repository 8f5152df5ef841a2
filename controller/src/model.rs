//! The controller's core vocabulary, shared by the journal, timing, the
//! engine and the reports: the fault kinds of a plan, the recovery
//! milestones, the failure-detection settings a cluster exposes and the
//! service level the ball factory measures, and the live progress of a run
//! (which the engine sends and the dashboard and terminal show). It depends on nothing else in the
//! crate.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which rack a run drives: the embedded local stand-in or a real k3s
/// cluster (journaled in `run-started`, shown in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    Local,
    K3s,
}

impl ClusterKind {
    /// `local` or `k3s`, as in journals and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterKind::Local => "local",
            ClusterKind::K3s => "k3s",
        }
    }
}

impl std::fmt::Display for ClusterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Live progress for a terminal or dashboard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// `settling`, `faults`, `recovering`, `checking`, `rolling back`, `done`.
    pub phase: &'static str,
    /// Since the fault window started.
    pub elapsed: Duration,
    pub duration: Duration,
    pub injected: u32,
    pub refused: u32,
    pub open: usize,
    /// The last notable thing, in words.
    pub last: String,
}

/// A worker the ball factory may throw at or address (a rig keeps the
/// factory's targets up to date from its cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerEndpoint {
    pub name: String,
    /// Base URL to throw at directly (`http://ip:port`).
    pub url: Option<String>,
}

//! The report's data: what `report.json` holds (schema version
//! [`SCHEMA_VERSION`], described by `docs/report.schema.json`, which is
//! generated from these types) and what every other output is rendered from.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the `report.json` schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a run's journal says, arranged for reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "rackpong run report")]
pub struct Report {
    /// The schema version, 1 for this schema; readers should refuse other versions.
    #[schemars(extend("const" = 1))]
    pub schema_version: u32,
    pub journal: JournalInfo,
    pub run: RunMeta,
    pub verdict: Verdict,
    /// Injected faults in the order they were injected.
    pub faults: Vec<FaultReport>,
    /// Faults refused by the safety rules or the node.
    pub refused: Vec<RefusedFault>,
    /// Per fault kind statistics of the total and of every phase.
    pub stats: Vec<KindStats>,
    pub zombies: Vec<Window>,
    pub overlaps: Vec<Window>,
    /// Faults whose recovery exceeded the SLO or never happened.
    pub slo_breaches: Vec<SloBreach>,
    pub steady_state: Vec<SteadyCheck>,
    pub rollbacks: Vec<RollbackAction>,
    /// The ball factory's service level over time.
    pub service: Vec<ServicePoint>,
    /// Per node health over time, nodes sorted by name.
    pub health: Vec<NodeSeries>,
    /// What a reader should look at: faults that took longer than predicted,
    /// with the phase that overran.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Planned scale-to-zero faults: the rack's cold start, phase by phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cold_starts: Vec<ColdStart>,
}

/// A cold start (`scale: {to: 0, hold}`): the workers taken to zero, held
/// there, and scaled back. The replacement figures are those of the first
/// new worker, in ms after the scale-up was issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ColdStart {
    pub fault_id: String,
    pub fault: String,
    /// The replica count before, and restored by the scale-up.
    pub replicas: Option<u32>,
    /// The planned hold at zero.
    pub hold_ms: Option<u64>,
    /// Injection to the last worker gone.
    pub zero_reached_ms: Option<u64>,
    /// Zero reached to scale-up issued (the hold as it happened).
    pub at_zero_ms: Option<u64>,
    /// Scale-up issued to the first new worker created, scheduled, running,
    /// ready and serving, and to the service restored.
    pub created_ms: Option<u64>,
    pub scheduled_ms: Option<u64>,
    pub running_ms: Option<u64>,
    pub ready_ms: Option<u64>,
    pub serving_ms: Option<u64>,
    pub service_restored_ms: Option<u64>,
    /// The cold start: scale-up issued to service restored.
    pub cold_start_ms: Option<u64>,
    /// Precision of the cold start: the worse of the scale-up's and the
    /// service-restored milestone's.
    pub precision_ms: u64,
    /// Balls thrown while no worker existed: refused by the rack, not lost
    /// (from the factory's running count in the samples around the fault).
    pub balls_refused: u64,
    pub outcome: String,
}

/// Something the run shows that a reader should act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub fault_id: String,
    /// `over-prediction`: the recovery took longer than its predicted bound.
    pub kind: String,
    /// The phase (its end milestone) that overran, if known.
    pub phase: Option<String>,
    /// In words, with the figures.
    pub text: String,
}

/// When each node-death signal fired, in ms after the injection: rackpong's
/// own detection (health silence, the broker's `offline`) beside Kubernetes'.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSignals {
    /// No health sample for 3 intervals; stamped one interval after the last sample.
    pub health_stale_ms: Option<u64>,
    /// `offline` on the node's status topic: the broker's Last Will (or a
    /// rebooting agent's own clean `offline`).
    pub last_will_ms: Option<u64>,
    /// The node condition Ready=False (node-monitor-grace after the last heartbeat).
    pub not_ready_ms: Option<u64>,
}

/// The first phase whose end came later than the predicted budgets up to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Overrun {
    /// The milestone ending the phase.
    pub phase: String,
    /// When it was reached, ms after the injection.
    pub at_ms: u64,
    /// The sum of the budgets up to it.
    pub allowed_ms: u64,
}

/// What was read and how complete it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JournalInfo {
    /// Journal lines read (including an unreadable cut-off line).
    pub lines: u64,
    /// False when the run has no `run-ended` line or a line was cut off.
    pub complete: bool,
    /// 1-based line numbers of lines cut off mid-write (controller killed).
    pub truncated_lines: Vec<u64>,
    /// `seq` gaps: lines lost between two lines read.
    pub seq_gaps: Vec<SeqGap>,
    /// Journal time of the last line read (ms since run start).
    pub last_t_ms: u64,
    /// Anything odd found while reading, in journal order.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeqGap {
    /// 1-based line number of the line after the gap.
    pub line: u64,
    pub expected_seq: u64,
    pub found_seq: u64,
}

/// Run metadata from `run-started` and `run-ended`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunMeta {
    pub run_id: String,
    pub started_unix_ms: u64,
    pub controller_version: String,
    /// Agent versions seen in health samples, sorted.
    pub agent_versions: Vec<String>,
    pub cluster_kind: String,
    pub nodes: Vec<String>,
    pub node_count: u64,
    pub plan_name: String,
    pub seed: u64,
    /// The plan as parsed by the controller.
    pub plan: serde_json::Value,
    /// The recovery SLO per fault.
    pub recovery_timeout_ms: u64,
    pub min_delivery_rate: f64,
    pub detection: DetectionSettings,
    /// `completed`, `aborted`, `crashed`, or `incomplete` (no `run-ended` line).
    pub outcome: String,
    pub end_reason: Option<String>,
    /// Journal time of `run-ended`, or of the last line read.
    pub duration_ms: u64,
}

/// The cluster's failure-detection settings as the controller recorded them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DetectionSettings {
    pub profile: String,
    pub node_monitor_grace_s: Option<u64>,
    pub not_ready_toleration_s: Option<u64>,
    pub unreachable_toleration_s: Option<u64>,
    pub readiness_period_s: Option<u64>,
    pub readiness_failure_threshold: Option<u64>,
    pub mqtt_keepalive_s: Option<u64>,
    pub extra: BTreeMap<String, String>,
}

/// Whether the run's steady-state hypothesis and SLOs held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Verdict {
    /// True only for a complete run with no failure below.
    pub passed: bool,
    pub failures: Vec<VerdictFailure>,
}

/// One reason the run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerdictFailure {
    /// `steady-state`, `slo`, `run-aborted`, `run-crashed` or `incomplete`.
    pub kind: String,
    /// The fault id or check concerned, if any.
    pub subject: Option<String>,
    pub detail: String,
}

/// One injected fault and its recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FaultReport {
    pub fault_id: String,
    /// The plan's name for the fault.
    pub fault: String,
    /// `pod-kill`, `node-kill` or `scale`.
    pub kind: String,
    pub action: String,
    pub targets: Vec<String>,
    pub node: Option<String>,
    pub replicas_from: Option<u32>,
    pub replicas_to: Option<u32>,
    /// A cold start's planned hold at zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u64>,
    pub injected_ms: u64,
    /// Milestones as observed, in journal order (duplicates included).
    pub milestones: Vec<MilestoneAt>,
    /// Consecutive, non-overlapping phases from injection; they add up to
    /// `total_ms` when the fault recovered.
    pub phases: Vec<Phase>,
    /// `recovered`, `timed-out`, `aborted` or `unfinished` (no `fault-ended`).
    pub outcome: String,
    /// Journal time of the `fault-ended` line, if any.
    pub ended_ms: Option<u64>,
    /// Injection to the last kept milestone, for recovered faults.
    pub total_ms: Option<u64>,
    /// Precision (ms) of the total: that of the milestone it ends at
    /// (each phase carries its own).
    pub precision_ms: u64,
    pub predicted_ms: Option<u64>,
    pub predicted_basis: Option<String>,
    /// Total within the predicted bound (null when either is missing).
    pub within_prediction: Option<bool>,
    /// When over the prediction: the phase that overran.
    #[serde(default)]
    pub overran: Option<Overrun>,
    /// Node faults: when each node-death signal fired.
    #[serde(default)]
    pub node_signals: Option<NodeSignals>,
    /// Recovered within the plan's recovery SLO.
    pub slo_ok: bool,
    pub health_at_injection: Option<HealthPoint>,
    /// How the phases were derived where milestones were missing, repeated
    /// or out of order.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MilestoneAt {
    pub milestone: String,
    pub t_ms: u64,
    pub source: String,
    pub precision_ms: u64,
    pub subject: Option<String>,
}

/// The time between two consecutive kept milestones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Phase {
    /// `injected` or a milestone name.
    pub from: String,
    pub to: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub duration_ms: u64,
    /// The worse precision of its two ends (the readiness probe period
    /// for a phase that ends or starts at `ready`).
    #[serde(default)]
    pub precision_ms: u64,
    /// Milestones between `from` and `to` that were not observed (or were
    /// dropped as out of order) and so are merged into this phase.
    pub merged: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefusedFault {
    pub t_ms: u64,
    pub fault: String,
    pub kind: String,
    pub target: Option<String>,
    pub reason: String,
}

/// Statistics of one fault kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KindStats {
    pub kind: String,
    /// Faults injected of this kind.
    pub injected: u64,
    pub recovered: u64,
    pub refused: u64,
    /// Injection to recovery, over recovered faults.
    pub total: Option<Summary>,
    /// Per phase (`from`→`to`), in milestone order.
    pub phases: Vec<PhaseStats>,
    /// Largest predicted bound among these faults.
    pub predicted_max_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseStats {
    pub from: String,
    pub to: String,
    pub summary: Summary,
}

/// Count, min, nearest-rank p50/p95, max of a set of durations (ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub p5: u64,
    pub p50: u64,
    pub p95: u64,
    pub max: u64,
}

/// A zombie window (worker catching after its node went NotReady) or an
/// overlap (old worker terminating while its replacement serves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Window {
    pub fault_id: String,
    /// Zombie: the worker; overlap: the old worker.
    pub worker: String,
    /// Zombie: the node; overlap: the new worker.
    pub other: String,
    pub from_ms: u64,
    pub to_ms: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SloBreach {
    pub fault_id: String,
    pub kind: String,
    pub total_ms: Option<u64>,
    pub slo_ms: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SteadyCheck {
    pub t_ms: u64,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RollbackAction {
    pub t_ms: u64,
    pub action: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServicePoint {
    pub t_ms: u64,
    pub window_ms: u64,
    pub sent: u64,
    pub caught: u64,
    pub dropped: u64,
    pub timed_out: u64,
    /// Balls thrown while no worker existed, in the window and since the
    /// factory started (absent: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_total: u64,
    pub delivery_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One node's health samples in journal order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSeries {
    pub node: String,
    pub samples: Vec<HealthPoint>,
}

/// The parts of a health sample the report uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthPoint {
    /// Journal time the sample arrived.
    pub t_ms: u64,
    /// The node's own wall clock when it took the sample (Unix ms).
    pub sample_ts_ms: u64,
    pub temp_c: Option<f32>,
    pub cpu_pct: Option<f32>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    /// Any firmware "now" flag set (under-voltage, capped, throttled, soft limit).
    pub throttled_now: bool,
    pub under_voltage_now: Option<bool>,
    /// The raw `get_throttled` bits, when read.
    pub throttle_raw: Option<u32>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

//! The experiment plan: a YAML file (parsed with serde-saphyr) naming the
//! run, its seed and duration, the steady-state hypothesis, the safety limits,
//! the faults with their schedules, the recovery SLO and the ball traffic.
//! [`load`] validates everything before anything is touched; every error
//! names the file, the line and the reason.

mod raw;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::model::FaultKind;

/// The plan `rackpong demo` runs when no `--plan` is given.
pub const DEFAULT_DEMO_PLAN: &str = include_str!("../../../plans/demo.yaml");

/// A validated experiment plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub name: String,
    /// Seeds every random choice of the run (fault times, targets, replica counts).
    pub seed: u64,
    #[serde(with = "human")]
    pub duration: Duration,
    pub steady_state: SteadyState,
    pub safety: SafetyLimits,
    /// The recovery SLO: a fault not recovered this long after injection fails.
    #[serde(with = "human")]
    pub recovery_timeout: Duration,
    pub balls: BallSettings,
    pub faults: Vec<FaultSpec>,
}

/// What must hold before the first fault and is checked again at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SteadyState {
    pub min_ready_workers: u32,
    /// 0–1 over `window`.
    pub min_delivery_rate: f64,
    #[serde(with = "human")]
    pub window: Duration,
}

/// What the run may touch and how much.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafetyLimits {
    /// Workers that may be unavailable at once, faults included.
    pub max_unavailable: u32,
    /// Namespaces the run may act in (k3s); empty means the backend's own.
    pub namespaces: Vec<String>,
    /// The `key=value` label a pod or node needs to be a target.
    pub opt_in_label: String,
    /// Plan-level dry run: decide and journal, never touch.
    pub dry_run: bool,
    /// The plan's opt-in to planned unavailability: only with it may a
    /// `scale` fault take the workers to zero (`to: 0`).
    pub allow_zero: bool,
}

/// The ball factory's traffic during the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BallSettings {
    pub rate_per_s: f64,
    pub ttl: u32,
    #[serde(with = "human")]
    pub timeout: Duration,
}

/// One fault of the plan and when it fires.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultSpec {
    pub name: String,
    pub schedule: Schedule,
    pub action: FaultAction,
}

impl FaultSpec {
    pub fn kind(&self) -> FaultKind {
        match self.action {
            FaultAction::PodKill { .. } => FaultKind::PodKill,
            FaultAction::NodeKill { .. } => FaultKind::NodeKill,
            FaultAction::Scale { .. } | FaultAction::ScaleToZero { .. } => FaultKind::Scale,
        }
    }
}

/// When a fault fires: first at `at`, then every `every`, `times` in all, each
/// shifted by a seeded random offset in `0..=jitter`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    #[serde(with = "human")]
    pub at: Duration,
    #[serde(with = "human_opt")]
    pub every: Option<Duration>,
    pub times: u32,
    #[serde(with = "human")]
    pub jitter: Duration,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    PodKill {
        amount: Amount,
        mode: KillModeSpec,
    },
    NodeKill {
        action: NodeAction,
        #[serde(with = "human")]
        down_for: Duration,
        /// A fixed node; otherwise a seeded random eligible one.
        node: Option<String>,
    },
    /// Sets the replica count to a seeded random value in `min..=max`.
    Scale {
        min: u32,
        max: u32,
    },
    /// A cold start: scales the workers to 0, holds there for `hold` once
    /// the last worker is gone, then scales back to the count before.
    /// Planned unavailability: needs `safety.allow-zero: true`.
    ScaleToZero {
        #[serde(with = "human")]
        hold: Duration,
    },
}

/// The journal's `action` of a [`FaultAction::ScaleToZero`] fault.
pub const SCALE_TO_ZERO_ACTION: &str = "scale-to-zero";

/// How many workers a pod-kill takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Amount {
    Count(u32),
    /// Of the ready opted-in workers, rounded up, at least one.
    Percent(u32),
}

impl Amount {
    /// How many of `eligible` workers this amount means.
    pub fn of(self, eligible: usize) -> usize {
        match self {
            Amount::Count(n) => n as usize,
            Amount::Percent(p) => (eligible * p as usize).div_ceil(100).max(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KillModeSpec {
    Graceful,
    Forced,
}

impl KillModeSpec {
    pub fn as_str(self) -> &'static str {
        match self {
            KillModeSpec::Graceful => "graceful",
            KillModeSpec::Forced => "forced",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeAction {
    StopK3s,
    Reboot,
    NetDrop,
    /// Power cut through a relay: no FIN, no clean `offline` (local rack;
    /// a k3s rack refuses it unless a relay is wired).
    PowerRelay,
    CordonDrain,
    /// The node loses the control side (broker, controller) but keeps its
    /// peers: the local rack with `--isolation netns` only.
    Partition,
}

impl NodeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeAction::StopK3s => "stop-k3s",
            NodeAction::Reboot => "reboot",
            NodeAction::NetDrop => "net-drop",
            NodeAction::PowerRelay => "power-relay",
            NodeAction::CordonDrain => "cordon-drain",
            NodeAction::Partition => "partition",
        }
    }
}

/// One thing wrong with a plan, at a line (when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub reason: String,
}

/// Why a plan could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{}: cannot read plan: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Syntax, type or semantic problems, each with its line.
    #[error("{}", Invalid { file, problems })]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

struct Invalid<'a> {
    file: &'a Path,
    problems: &'a [Problem],
}

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            match (p.line, p.column) {
                (Some(l), Some(c)) => write!(f, ":{l}:{c}")?,
                (Some(l), None) => write!(f, ":{l}")?,
                _ => {}
            }
            write!(f, ": invalid plan: {}", p.reason)?;
        }
        Ok(())
    }
}

impl PlanError {
    /// The problems of an invalid plan (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            PlanError::Invalid { problems, .. } => problems,
            PlanError::Read { .. } => &[],
        }
    }
}

/// Reads and validates the plan at `path`.
pub fn load(path: &Path) -> Result<Plan, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates plan text; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Plan, PlanError> {
    raw::parse(text).map_err(|problems| PlanError::Invalid {
        file: file.to_path_buf(),
        problems,
    })
}

/// The built-in demo plan.
pub fn default_demo() -> Plan {
    parse(DEFAULT_DEMO_PLAN, Path::new("plans/demo.yaml")).expect("the built-in demo plan is valid")
}

mod human {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}

mod human_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

//! The run loop, generic over the rack's [`Cluster`]: rolls back runs a
//! crashed controller left unfinished, checks the steady state, fires the
//! plan's faults on a seeded schedule through the safety rules, feeds every
//! observation to the recovery [`Tracker`](crate::timing::Tracker), journals
//! everything, enforces the recovery SLO, and on Ctrl-C / SIGTERM (the cancel
//! token) aborts and rolls back. The ball factory plugs in through
//! [`ServiceProbe`] (service-level snapshots) and the [`Timed`] input channel
//! (ball catches, MQTT status and health), so the engine never depends on how
//! those are produced.

mod cold;
mod inject;
pub mod mqtt;
mod rollback;
mod run;
pub(crate) mod schedule;
mod summary;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::proto::HealthSample;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ClusterError};
use crate::journal::JournalError;
use crate::model::ServiceLevel;
use crate::plan::Plan;
use crate::safety::{Pdb, Refusal};
use crate::timing::Observation;

pub use crate::model::Progress;
pub use rollback::recover_unfinished;
pub use schedule::{Scheduled, dry_run_text, schedule};
pub use summary::{FaultRow, RunSummary};

/// The ball factory's side of the engine: a snapshot of the service level
/// over its sliding window. The lead plugs `FactoryHandle` in with
/// `move || handle.service_level()`.
pub trait ServiceProbe: Send + Sync + 'static {
    fn service_level(&self) -> ServiceLevel;
}

impl<F: Fn() -> ServiceLevel + Send + Sync + 'static> ServiceProbe for F {
    fn service_level(&self) -> ServiceLevel {
        self()
    }
}

/// Something the engine is told about besides cluster events.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// MQTT status / stale health / worker birth, or a caught ball (map the
    /// factory's `OutcomeKind::Caught { hops, .. }` to
    /// `Observation::BallCaught { hops: (hop.worker, hop.node)… }`).
    Observation(Observation),
    /// A node's health sample (journaled; its absence makes it stale).
    Health(Box<HealthSample>),
}

/// An input stamped with the monotonic instant it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    pub at: Instant,
    pub input: Input,
}

/// How the engine runs (everything the plan does not say).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where run directories go (`./runs`).
    pub runs_dir: PathBuf,
    /// The backend's namespace (k3s), checked against the plan's.
    pub namespace: Option<String>,
    /// The workers' PodDisruptionBudget, if the backend has one.
    pub pdb: Option<Pdb>,
    /// How often the service level is sampled and journaled.
    pub service_period: Duration,
    /// A node whose health is older than this is stale, until its own
    /// interval is known (then 3 × that interval, see `timing::stale`).
    pub stale_after: Duration,
    /// How long to wait for the steady state before the first fault.
    pub settle_timeout: Duration,
    /// Receives live progress, if set.
    pub progress: Option<watch::Sender<Progress>>,
    /// Receives every journal line as it is written, if set.
    pub journal_tap: Option<tokio::sync::broadcast::Sender<crate::journal::event::JournalLine>>,
    /// The run directory's name under `runs_dir`, reserved by the caller
    /// with [`crate::journal::reserve_run_dir`] when it must know the id
    /// before the run starts (the operator's status); `None`: the engine
    /// reserves one from the plan's name.
    pub run_id: Option<String>,
}

impl EngineConfig {
    /// Defaults: 500 ms service samples, health stale after 6 s, 30 s to settle.
    pub fn new(runs_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            runs_dir: runs_dir.into(),
            namespace: None,
            pdb: None,
            service_period: Duration::from_millis(500),
            stale_after: Duration::from_secs(6),
            settle_timeout: Duration::from_secs(30),
            progress: None,
            journal_tap: None,
            run_id: None,
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    #[error("refused before starting: {0}")]
    Refused(Refusal),
    /// The run finished but the steady state or an SLO failed.
    #[error("run {} failed: {}", run_dir.display(), failures.join("; "))]
    Failed {
        run_dir: PathBuf,
        failures: Vec<String>,
    },
}

/// One chaos run of a plan against a cluster.
pub struct Engine<C: Cluster, S: ServiceProbe> {
    cluster: Arc<C>,
    service: S,
    plan: Plan,
    cfg: EngineConfig,
}

impl<C: Cluster, S: ServiceProbe> Engine<C, S> {
    pub fn new(cluster: Arc<C>, service: S, plan: Plan, cfg: EngineConfig) -> Self {
        Engine {
            cluster,
            service,
            plan,
            cfg,
        }
    }

    /// Runs the plan to the end (or until `cancel`), leaving the rack as it
    /// found it. `Ok` carries the summary even when the steady state or an
    /// SLO failed: [`RunSummary::verdict`] turns that into an error.
    pub async fn run(
        self,
        inputs: mpsc::Receiver<Timed>,
        cancel: CancellationToken,
    ) -> Result<RunSummary, EngineError> {
        recover_unfinished(&*self.cluster, &self.cfg.runs_dir).await?;
        crate::safety::namespace(self.cfg.namespace.as_deref(), &self.plan.safety)
            .map_err(EngineError::Refused)?;
        let mut run =
            run::Run::start(self.cluster, self.service, self.plan, self.cfg, inputs).await?;
        let result = run.execute(&cancel).await;
        run.finish(result).await
    }
}

//! The one place that wires a run, for either cluster: the controller's
//! broker link, the MQTT feed into the engine, the ball factory and the
//! workers it aims at, the engine with its progress, and (locally) the
//! dashboard. [`local`] starts a stand-in rack on this machine, [`k3s`]
//! connects to a real one; the subcommands in `cmd` only pick one.

mod k3s;
mod local;
mod watching;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rackpong_agent::broker::BrokerError;
use rackpong_agent::mqtt::MqttLink;
use rackpong_agent::proto::Topics;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use k3s::{K3sRig, K3sRunArgs, WireError};
pub use local::{LocalSetup, run_local, run_local_dashboard, run_local_with};
pub use watching::watch;

use crate::cluster::Cluster;
use crate::cluster::local::LocalRackError;
use crate::dashboard::DashboardError;
use crate::engine::{
    Engine, EngineConfig, EngineError, Input, Progress, RunSummary, ServiceProbe, Timed,
};
use crate::factory::{BallOutcome, Entry, FactoryConfig, WorkerEndpoint};
use crate::journal::{new_run_id, reserve_run_dir};
use crate::plan::{Plan, PlanError};

/// Why a run could not be wired or driven.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("embedded MQTT broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("local rack: {0}")]
    Rack(#[from] LocalRackError),
    /// The executable that runs the agent roles cannot be found.
    #[error("local rack: own executable: {0}")]
    OwnExe(#[source] std::io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Dashboard(#[from] DashboardError),
}

/// The ball factory's settings for a plan: its ball rate, ttl and timeout, its
/// steady-state window, its seed; ball ids unique to this process.
pub(crate) fn factory_config(plan: &Plan, prefix: &str, entry: Entry) -> FactoryConfig {
    FactoryConfig {
        rate_per_s: plan.balls.rate_per_s,
        ttl: plan.balls.ttl,
        timeout: plan.balls.timeout,
        window: plan.steady_state.window,
        seed: plan.seed,
        id_prefix: format!("{prefix}{}", std::process::id()),
        entry,
        max_balls: None,
    }
}

/// Passes every ball outcome on to the engine (the restore rule), stamped
/// when the factory learned it.
pub(crate) async fn feed_outcomes(
    mut outcomes: broadcast::Receiver<BallOutcome>,
    tx: mpsc::Sender<Timed>,
    stop: CancellationToken,
) {
    loop {
        let o = tokio::select! {
            o = outcomes.recv() => o,
            _ = stop.cancelled() => return,
        };
        match o {
            Ok(o) => {
                let t = Timed {
                    at: o.at,
                    input: Input::Observation(o.observation()),
                };
                if tx.send(t).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "ball outcomes lost on the way to the engine");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Drives one run over a started rack: the engine with the terminal's
/// progress bar and fault lines when `show_progress`, and the run's
/// `controller.log`. The caller stops the rack afterwards (also after an
/// error or Ctrl-C).
pub async fn drive<C: Cluster, S: ServiceProbe>(
    cluster: Arc<C>,
    service: S,
    inputs: mpsc::Receiver<Timed>,
    plan: Plan,
    mut cfg: EngineConfig,
    show_progress: bool,
    cancel: CancellationToken,
) -> Result<RunSummary, RigError> {
    run_dir(&mut cfg, &plan)?;
    let rx = match &cfg.progress {
        Some(tx) => tx.subscribe(),
        None => {
            let (tx, rx) = watch::channel(Progress::default());
            cfg.progress = Some(tx);
            rx
        }
    };
    let tap = cfg
        .journal_tap
        .get_or_insert_with(|| broadcast::channel(1024).0)
        .subscribe();
    let console =
        show_progress.then(|| tokio::spawn(crate::console::follow(plan.duration, rx, tap)));
    let result = Engine::new(cluster, service, plan, cfg)
        .run(inputs, cancel)
        .await;
    if let Some(c) = console {
        // The engine dropped its senders: the console ends by itself.
        let _ = c.await;
    }
    Ok(result?)
}

/// The run directory: the one the caller reserved (`cfg.run_id`), or a new
/// one, reserved here with the run's `controller.log` attached.
pub(crate) fn run_dir(cfg: &mut EngineConfig, plan: &Plan) -> Result<PathBuf, RigError> {
    if let Some(id) = &cfg.run_id {
        return Ok(cfg.runs_dir.join(id));
    }
    let dir = reserve_run_dir(&cfg.runs_dir, &new_run_id(&plan.name)).map_err(EngineError::from)?;
    attach_log(&dir);
    cfg.run_id = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(dir)
}

/// Records the rack's MQTT traffic the dashboard shows (sampled) into
/// `dir/rack.jsonl` until `stop`, for `rackpong replay`.
pub(crate) fn record_rack(dir: &Path, topics: &Topics, link: &MqttLink, stop: &CancellationToken) {
    let rx = link.subscribe(topics.all());
    let task = crate::journal::rack::record(dir.to_path_buf(), topics.clone(), rx, stop.clone());
    tokio::spawn(task);
}

/// Sends the controller's log to `dir/controller.log` from now on.
pub(crate) fn attach_log(dir: &std::path::Path) {
    let path = dir.join(CONTROLLER_LOG);
    if let Err(e) = crate::console::logs::attach(&path) {
        tracing::warn!(error = %e, "the run's controller.log cannot be written");
    }
}

/// The controller's full log in a run directory.
pub const CONTROLLER_LOG: &str = "controller.log";

/// Keeps the factory's targets equal to the cluster's workers in `source`
/// (each made an endpoint by `endpoint`) until `stop` or the source ends.
async fn follow<T: Send + Sync + 'static>(
    mut source: watch::Receiver<Vec<T>>,
    endpoint: impl Fn(&T) -> WorkerEndpoint + Send + 'static,
    targets: watch::Sender<Vec<WorkerEndpoint>>,
    stop: CancellationToken,
) {
    loop {
        let now: Vec<WorkerEndpoint> = source.borrow_and_update().iter().map(&endpoint).collect();
        targets.send_replace(now);
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = source.changed() => if changed.is_err() { return },
        }
    }
}

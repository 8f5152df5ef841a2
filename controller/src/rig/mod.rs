//! The one place that wires a run, for either cluster: the controller's
//! broker link, the MQTT feed into the engine, the ball factory and the
//! workers it aims at, the engine with its progress, and (locally) the
//! dashboard. [`local`] starts a stand-in rack on this machine, [`k3s`]
//! connects to a real one; the subcommands in `cmd` only pick one.

mod k3s;
mod local;
mod watching;

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rackpong_agent::broker::BrokerError;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use k3s::{K3sRig, K3sRunArgs, WireError};
pub use local::{LocalSetup, run_local, run_local_with};
pub use watching::watch;

use crate::cluster::Cluster;
use crate::dashboard::DashboardError;
use crate::engine::{Engine, EngineConfig, EngineError, Progress, RunSummary, ServiceProbe, Timed};
use crate::factory::{Entry, FactoryConfig};
use crate::plan::{Plan, PlanError};

/// Why a run could not be wired or driven.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("embedded MQTT broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("local rack: {0}")]
    Rack(String),
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

/// Drives one run over a started rack: the engine with a progress bar.
/// The caller stops the rack afterwards (also after an error or Ctrl-C).
pub async fn drive<C: Cluster, S: ServiceProbe>(
    cluster: Arc<C>,
    service: S,
    inputs: mpsc::Receiver<Timed>,
    plan: Plan,
    mut cfg: EngineConfig,
    show_progress: bool,
    cancel: CancellationToken,
) -> Result<RunSummary, RigError> {
    let rx = match &cfg.progress {
        Some(tx) => tx.subscribe(),
        None => {
            let (tx, rx) = watch::channel(Progress::default());
            cfg.progress = Some(tx);
            rx
        }
    };
    let bar = show_progress.then(|| progress_bar(plan.duration));
    let render = bar.clone().map(|b| tokio::spawn(render_progress(b, rx)));
    let result = Engine::new(cluster, service, plan, cfg)
        .run(inputs, cancel)
        .await;
    if let Some(r) = render {
        // The engine dropped the sender: the render task ends by itself.
        let _ = r.await;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(result?)
}

fn progress_bar(duration: Duration) -> ProgressBar {
    let bar = ProgressBar::new(duration.as_millis() as u64);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {prefix} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn render_progress(bar: ProgressBar, mut rx: watch::Receiver<Progress>) {
    while rx.changed().await.is_ok() {
        let p = rx.borrow_and_update().clone();
        bar.set_position((p.elapsed.as_millis() as u64).min(bar.length().unwrap_or(u64::MAX)));
        bar.set_prefix(format!(
            "{} | faults {} refused {} recovering {}",
            p.phase, p.injected, p.refused, p.open
        ));
        bar.set_message(p.last);
    }
}

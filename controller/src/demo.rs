//! `rackpong demo`: everything on this machine with no setup — an embedded
//! MQTT broker, a local stand-in rack (default 4 nodes, 8 workers), the ball
//! factory and the default plan (pod kills, a node kill, a scale change),
//! with progress in the terminal; prints the run directory at the end.
//! `rackpong run PLAN --local` uses the same wiring with the given plan.
//! Ctrl-C aborts the run, rolls back, and stops every process the rack
//! started before returning, so nothing is left running and the journal ends
//! with `run-ended`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicU64;

use indicatif::{ProgressBar, ProgressStyle};
use rackpong_agent::broker::{BrokerError, EmbeddedBroker};
use rackpong_agent::mqtt::MqttLink;
use rackpong_agent::proto::Topics;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::cluster::local::{LocalRack, LocalRackConfig, WorkerAddr};
use crate::dashboard::{DashboardArgs, DashboardError, RunDashboard};
use crate::engine::{
    Engine, EngineConfig, EngineError, Input, Progress, RunSummary, ServiceProbe, Timed, mqtt,
};
use crate::factory::{
    BallFactory, BallOutcome, Entry, FactoryConfig, FactoryHandle, WorkerEndpoint,
};
use crate::plan::{self, FaultAction, Plan, PlanError};

/// Flags of `rackpong demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Length of the fault window (humantime, e.g. `90s`), overriding the plan's `duration`.
    #[arg(long, env = "RACKPONG_DEMO_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Nodes of the local rack (each a process group on its own 127.0.1.x address).
    #[arg(long, env = "RACKPONG_DEMO_NODES", default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub nodes: u8,
    /// Worker replicas at start.
    #[arg(long, env = "RACKPONG_DEMO_WORKERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// Experiment plan (YAML) instead of the built-in demo plan (plans/demo.yaml).
    #[arg(long, env = "RACKPONG_PLAN")]
    pub plan: Option<PathBuf>,
    /// Directory the run directory is written under.
    #[arg(long, env = "RACKPONG_RUNS_DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// The local rack a run gets.
#[derive(Debug)]
pub struct LocalSetup {
    pub nodes: u8,
    pub workers: u32,
    pub runs_dir: PathBuf,
    /// Show an indicatif progress bar on stderr.
    pub progress: bool,
    /// The executable that runs the agent roles; `None` is this one (tests
    /// pass `env!("CARGO_BIN_EXE_rackpong")`).
    pub exe: Option<PathBuf>,
    /// Also receives the run's progress (a dashboard, a test), if set.
    pub observe: Option<watch::Sender<Progress>>,
}

/// Why the demo (or a local run) could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
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

/// The plan the demo runs: `--plan` or the built-in one sized to
/// `--workers`, with `--duration` applied.
pub fn demo_plan(args: &DemoArgs) -> Result<Plan, PlanError> {
    let mut p = match &args.plan {
        Some(path) => plan::load(path)?,
        None => fit_to_workers(plan::default_demo(), args.workers),
    };
    if let Some(d) = args.duration {
        p.duration = d;
    }
    Ok(p)
}

/// The built-in plan is written for 8 workers: keep its proportions for
/// another count (steady state at 3/4, scale range 3/4 ..= 5/4).
fn fit_to_workers(mut p: Plan, workers: u32) -> Plan {
    let three_quarters = (workers * 3 / 4).max(1);
    p.steady_state.min_ready_workers = three_quarters;
    for f in &mut p.faults {
        if let FaultAction::Scale { min, max } = &mut f.action {
            *min = three_quarters;
            *max = (workers * 5 / 4).max(three_quarters + 1);
        }
    }
    p
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

/// `rackpong demo`.
pub async fn run(args: DemoArgs, cancel: CancellationToken) -> Result<RunSummary, DemoError> {
    let plan = demo_plan(&args)?;
    let setup = LocalSetup {
        nodes: args.nodes,
        workers: args.workers,
        runs_dir: args.runs_dir,
        progress: true,
        exe: None,
        observe: None,
    };
    run_local_with(setup, plan, cancel, &args.dashboard).await
}

/// Runs `plan` on a fresh local rack with an embedded broker and the ball
/// factory, then stops everything it started (also after Ctrl-C or an error).
pub async fn run_local(
    setup: LocalSetup,
    plan: Plan,
    cancel: CancellationToken,
) -> Result<RunSummary, DemoError> {
    run_local_with(setup, plan, cancel, &DashboardArgs::default()).await
}

/// [`run_local`], with the live dashboard when `dash.listen` is set.
pub async fn run_local_with(
    mut setup: LocalSetup,
    plan: Plan,
    cancel: CancellationToken,
    dash: &DashboardArgs,
) -> Result<RunSummary, DemoError> {
    let token = match dash.listen {
        Some(_) => Some(crate::dashboard::load_token(
            dash.dashboard_token_file.as_deref(),
        )?),
        None => None,
    };
    let broker = EmbeddedBroker::start(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    tracing::info!(broker = %broker.url(), nodes = setup.nodes, workers = setup.workers, "starting the local rack");
    let exe = match setup.exe.take() {
        Some(exe) => exe,
        None => {
            std::env::current_exe().map_err(|e| DemoError::Rack(format!("own executable: {e}")))?
        }
    };
    let mut rack_cfg = LocalRackConfig::new(exe, broker.addr(), setup.nodes, setup.workers);
    let health_interval = rack_cfg.node_interval;
    let topics = Topics::new(&rack_cfg.rack);
    // The controller's own link is in-process: no socket delay in its clock.
    let link = broker.mqtt_link(
        &format!("rackpong-controller-{}", std::process::id()),
        &format!("{}/controller/status", topics.root()),
    )?;
    rack_cfg.link = Some(link.clone());
    let dashboard = match (dash.listen, token) {
        (Some(listen), Some(token)) => {
            let progress = setup
                .observe
                .get_or_insert_with(|| watch::channel(Progress::default()).0)
                .subscribe();
            let url = broker.url();
            Some(RunDashboard::start(listen, token, &url, &topics, progress, &cancel).await?)
        }
        _ => None,
    };
    let rack = Arc::new(
        LocalRack::start(rack_cfg)
            .await
            .map_err(|e| DemoError::Rack(e.to_string()))?,
    );
    let parts = Parts::start(&rack, &link, &topics, &plan);
    let mut cfg = EngineConfig::new(&setup.runs_dir);
    cfg.stale_after = health_interval * 3;
    cfg.progress = setup.observe;
    let probe = {
        let f = parts.factory.clone();
        move || f.service_level()
    };
    let result = drive(
        rack.clone(),
        probe,
        parts.inputs,
        plan,
        cfg,
        setup.progress,
        cancel,
    )
    .await;
    parts.stop.cancel();
    parts.link.shutdown(Duration::from_secs(1)).await;
    rack.shutdown(Duration::from_secs(5)).await;
    if let Some(d) = dashboard {
        d.stop().await;
    }
    result
}

/// What runs beside the rack: the controller's MQTT link, the ball factory
/// aimed at the live workers, and the MQTT feed into the engine.
struct Parts {
    link: MqttLink,
    factory: FactoryHandle,
    inputs: mpsc::Receiver<Timed>,
    /// Stops the factory, the target updates and the feed.
    stop: CancellationToken,
}

impl Parts {
    fn start(rack: &LocalRack, link: &MqttLink, topics: &Topics, plan: &Plan) -> Parts {
        let stop = CancellationToken::new();
        let link = link.clone();
        let (tx, inputs) = mpsc::channel(4096);
        let malformed = Arc::new(AtomicU64::new(0));
        let sub = link.subscribe(topics.all());
        tokio::spawn(mqtt::feed(
            topics.clone(),
            sub,
            tx.clone(),
            malformed,
            stop.clone(),
        ));
        let (targets_tx, targets) = watch::channel(Vec::new());
        tokio::spawn(follow_workers(
            rack.live_workers(),
            targets_tx,
            stop.clone(),
        ));
        let factory = BallFactory::start(
            factory_config(plan, "demo", Entry::Direct),
            targets,
            &link,
            topics,
            stop.clone(),
        );
        tokio::spawn(feed_outcomes(factory.outcomes(), tx, stop.clone()));
        Parts {
            link,
            factory,
            inputs,
            stop,
        }
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

/// Keeps the factory's targets equal to the rack's live workers.
async fn follow_workers(
    mut live: watch::Receiver<Vec<WorkerAddr>>,
    targets: watch::Sender<Vec<WorkerEndpoint>>,
    stop: CancellationToken,
) {
    loop {
        let now: Vec<WorkerEndpoint> = live
            .borrow_and_update()
            .iter()
            .map(|w| WorkerEndpoint {
                name: w.name.clone(),
                url: Some(w.url.clone()),
            })
            .collect();
        targets.send_replace(now);
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = live.changed() => if changed.is_err() { return },
        }
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
) -> Result<RunSummary, DemoError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(workers: u32) -> DemoArgs {
        DemoArgs {
            duration: Some(Duration::from_secs(20)),
            nodes: 4,
            workers,
            plan: None,
            runs_dir: "runs".into(),
            dashboard: DashboardArgs::default(),
        }
    }

    #[test]
    fn the_default_plan_is_sized_to_the_worker_count() {
        let p = demo_plan(&args(8)).unwrap();
        assert_eq!(p.duration, Duration::from_secs(20));
        assert_eq!(p.steady_state.min_ready_workers, 6);
        let p = demo_plan(&args(2)).unwrap();
        assert_eq!(p.steady_state.min_ready_workers, 1);
        let scale = p.faults.iter().find_map(|f| match f.action {
            FaultAction::Scale { min, max } => Some((min, max)),
            _ => None,
        });
        assert_eq!(scale, Some((1, 2)));
    }

    #[test]
    fn a_bad_plan_file_fails_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "name: x\n").unwrap();
        let a = DemoArgs {
            plan: Some(path.clone()),
            ..args(8)
        };
        let e = demo_plan(&a).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
    }
}

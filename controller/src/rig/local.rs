//! A run on a local stand-in rack started on this machine (`rackpong demo`
//! and `rackpong run PLAN --local`): an embedded MQTT broker, the rack (each
//! node a process group of this executable), the ball factory aimed at the
//! live workers, the MQTT feed into the engine and, when asked, the live
//! dashboard. Ctrl-C aborts the run, rolls back, and stops every process the
//! rack started before returning, so nothing is left running and the journal
//! ends with `run-ended`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::mqtt::{BrokerUrl, LinkConfig, MqttLink};
use rackpong_agent::proto::Topics;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{RigError, drive, factory_config};
use crate::cluster::local::{LocalRack, LocalRackConfig, WorkerAddr};
use crate::dashboard::{DashboardArgs, RunDashboard};
use crate::engine::{EngineConfig, Progress, RunSummary, Timed, mqtt};
use crate::factory::{BallFactory, Entry, FactoryHandle, WorkerEndpoint};
use crate::plan::Plan;

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

/// Runs `plan` on a fresh local rack with an embedded broker and the ball
/// factory, then stops everything it started (also after Ctrl-C or an error).
pub async fn run_local(
    setup: LocalSetup,
    plan: Plan,
    cancel: CancellationToken,
) -> Result<RunSummary, RigError> {
    run_local_with(setup, plan, cancel, &DashboardArgs::default()).await
}

/// [`run_local`], with the live dashboard when `dash.listen` is set.
pub async fn run_local_with(
    mut setup: LocalSetup,
    plan: Plan,
    cancel: CancellationToken,
    dash: &DashboardArgs,
) -> Result<RunSummary, RigError> {
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
            std::env::current_exe().map_err(|e| RigError::Rack(format!("own executable: {e}")))?
        }
    };
    let rack_cfg = LocalRackConfig::new(exe, broker.addr(), setup.nodes, setup.workers);
    let health_interval = rack_cfg.node_interval;
    let topics = Topics::new(&rack_cfg.rack);
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
            .map_err(|e| RigError::Rack(e.to_string()))?,
    );
    let parts = Parts::start(&rack, &broker, &topics, &plan);
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
    fn start(rack: &LocalRack, broker: &EmbeddedBroker, topics: &Topics, plan: &Plan) -> Parts {
        let stop = CancellationToken::new();
        let link = MqttLink::start(LinkConfig {
            broker: BrokerUrl::from_str(&broker.url()).expect("the embedded broker's URL parses"),
            client_id: format!("rackpong-controller-{}", std::process::id()),
            keepalive: Duration::from_secs(5),
            username: None,
            password: None,
            ca_file: None,
            status_topic: format!("{}/controller/status", topics.root()),
            buffer_capacity: 1024,
        });
        let (tx, inputs) = mpsc::channel(4096);
        let malformed = Arc::new(AtomicU64::new(0));
        let sub = link.subscribe(topics.all());
        tokio::spawn(mqtt::feed(topics.clone(), sub, tx, malformed, stop.clone()));
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
        Parts {
            link,
            factory,
            inputs,
            stop,
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

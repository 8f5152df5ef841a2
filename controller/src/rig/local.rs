//! A run on a local stand-in rack started on this machine (`rackpong demo`
//! and `rackpong run PLAN --local`): an embedded MQTT broker, the rack (each
//! node a process group of this executable), the ball factory aimed at the
//! live workers, the MQTT feed into the engine and, when asked, the live
//! dashboard. Ctrl-C aborts the run, rolls back, and stops every process the
//! rack started before returning, so nothing is left running and the journal
//! ends with `run-ended`. The controller's own MQTT link (engine feed, ball
//! factory, node monitor) is in-process: its clock has no socket delay.
//! With `Isolation::Netns` the rack's network (a bridge and one namespace
//! per node) is created first, named after the run, the broker listens on
//! its control address, and the network is removed after the rack stops
//! (also on Ctrl-C, an error or a panic: it is removed when dropped).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::mqtt::MqttLink;
use rackpong_agent::proto::Topics;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{RigError, drive, factory_config, follow};
use crate::cluster::local::{
    Isolation, LocalRack, LocalRackConfig, LocalRackError, RackNet, WorkerAddr,
};
use crate::dashboard::{DashboardArgs, RunDashboard, RunSources};
use crate::engine::{EngineConfig, EngineError, Progress, RunSummary, Timed, mqtt};
use crate::factory::{BallFactory, Entry, FactoryHandle, WorkerEndpoint};
use crate::journal::{new_run_id, reserve_run_dir};
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
    /// How the nodes are separated: `Loopback`, or `Netns` (root); `Auto`
    /// is resolved by the caller ([`Isolation::resolve`]) and runs as loopback here.
    pub isolation: Isolation,
    /// The node agents' catch flash ([`LocalRackConfig::led_catch_flash`]).
    pub led_catch_flash: bool,
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

/// [`run_local`], with the live dashboard when `dash.listen` is set (stopped
/// when the run ends; see [`run_local_dashboard`] to keep it up).
pub async fn run_local_with(
    setup: LocalSetup,
    plan: Plan,
    cancel: CancellationToken,
    dash: &DashboardArgs,
) -> Result<RunSummary, RigError> {
    let (result, dashboard) = run_local_dashboard(setup, plan, cancel, dash).await;
    if let Some(d) = dashboard {
        d.stop().await;
    }
    result
}

/// [`run_local_with`], handing back the dashboard still serving (the rack
/// and its broker are stopped) so the caller can show the verdict on it.
pub async fn run_local_dashboard(
    mut setup: LocalSetup,
    plan: Plan,
    cancel: CancellationToken,
    dash: &DashboardArgs,
) -> (Result<RunSummary, RigError>, Option<RunDashboard>) {
    let mut dashboard = None;
    let result = start_and_run(&mut setup, plan, cancel, dash, &mut dashboard).await;
    (result, dashboard)
}

async fn start_and_run(
    setup: &mut LocalSetup,
    plan: Plan,
    cancel: CancellationToken,
    dash: &DashboardArgs,
    dashboard: &mut Option<RunDashboard>,
) -> Result<RunSummary, RigError> {
    let token = match dash.listen {
        Some(_) => Some(crate::dashboard::load_token(
            dash.dashboard_token_file.as_deref(),
        )?),
        None => None,
    };
    let run_dir =
        reserve_run_dir(&setup.runs_dir, &new_run_id(&plan.name)).map_err(EngineError::from)?;
    super::attach_log(&run_dir);
    let net = match setup.isolation {
        Isolation::Netns => {
            let label = run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let created = RackNet::create(setup.nodes, label.as_deref().unwrap_or("run"));
            Some(Arc::new(created.map_err(LocalRackError::from)?))
        }
        Isolation::Loopback | Isolation::Auto => None,
    };
    let broker_ip = net.as_ref().map_or(Ipv4Addr::LOCALHOST, |n| n.control_ip());
    let broker = EmbeddedBroker::start(IpAddr::V4(broker_ip))?;
    tracing::info!(broker = %broker.url(), nodes = setup.nodes, workers = setup.workers, isolation = setup.isolation.as_str(), "starting the local rack");
    let exe = match setup.exe.take() {
        Some(exe) => exe,
        None => std::env::current_exe().map_err(RigError::OwnExe)?,
    };
    let mut rack_cfg = LocalRackConfig::new(exe, broker.addr(), setup.nodes, setup.workers);
    rack_cfg.log_dir = rack_log_dir(&run_dir);
    rack_cfg.net = net.clone();
    rack_cfg.led_catch_flash = setup.led_catch_flash;
    let health_interval = rack_cfg.node_interval;
    let topics = Topics::new(&rack_cfg.rack);
    // The controller's own link is in-process: no socket delay in its clock.
    let link = broker.mqtt_link(
        &format!("rackpong-controller-{}", std::process::id()),
        &format!("{}/controller/status", topics.root()),
    )?;
    rack_cfg.link = Some(link.clone());
    let tap = broadcast::channel(4096).0;
    if let (Some(listen), Some(token)) = (dash.listen, token) {
        let progress = setup
            .observe
            .get_or_insert_with(|| watch::channel(Progress::default()).0)
            .subscribe();
        let run = RunSources {
            broker: broker.url(),
            topics: topics.clone(),
            progress,
            journal: tap.subscribe(),
            run_dir: run_dir.clone(),
        };
        *dashboard = Some(RunDashboard::start(listen, token, run, &cancel).await?);
    }
    let rack = Arc::new(LocalRack::start(rack_cfg).await?);
    let run = RunIn {
        topics: &topics,
        run_dir: &run_dir,
        tap,
        health_interval,
    };
    let result = run_on(&rack, &link, run, plan, setup, cancel).await;
    rack.shutdown(Duration::from_secs(5)).await;
    drop(rack);
    if let Some(net) = net {
        net.teardown();
    }
    result
}

/// The children's logs go to `<run dir>/rack/<name>.log` (not the terminal).
fn rack_log_dir(run_dir: &std::path::Path) -> Option<PathBuf> {
    let dir = run_dir.join("rack");
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "the rack's logs are discarded");
            None
        }
    }
}

/// What a run on a started rack is given besides the rack and the plan.
struct RunIn<'a> {
    topics: &'a Topics,
    run_dir: &'a std::path::Path,
    tap: broadcast::Sender<crate::journal::event::JournalLine>,
    health_interval: Duration,
}

/// One run on the started rack: the parts beside it, the engine, then the
/// parts stopped again (the caller stops the rack and the dashboard).
async fn run_on(
    rack: &Arc<LocalRack>,
    link: &MqttLink,
    run: RunIn<'_>,
    plan: Plan,
    setup: &mut LocalSetup,
    cancel: CancellationToken,
) -> Result<RunSummary, RigError> {
    let parts = Parts::start(rack, link, run.topics, &plan);
    super::record_rack(run.run_dir, run.topics, link, &parts.stop);
    let mut cfg = EngineConfig::new(&setup.runs_dir);
    cfg.stale_after = run.health_interval * 3;
    cfg.progress = setup.observe.take();
    cfg.journal_tap = Some(run.tap);
    cfg.run_id = run
        .run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
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
        // The live workers (not only the ready ones): balls go straight to
        // them, as they would to every pod a Service's endpoints list.
        let endpoint = |w: &WorkerAddr| WorkerEndpoint {
            name: w.name.clone(),
            url: Some(w.url.clone()),
        };
        tokio::spawn(follow(
            rack.live_workers(),
            endpoint,
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
        tokio::spawn(super::feed_outcomes(factory.outcomes(), tx, stop.clone()));
        Parts {
            link,
            factory,
            inputs,
            stop,
        }
    }
}

//! `rackpong run PLAN`: validate the plan (before anything is touched), then
//! print what would happen (`--dry-run`), or run it on a local stand-in rack
//! (`--local`) or on k3s (the default: `--kubeconfig` or the usual kubeconfig
//! inference, see [`crate::rig::K3sRig`]), print the summary table and the
//! run directory, and fail naming what failed.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::engine::{EngineConfig, EngineError, RunSummary, dry_run_text};
use crate::plan::{self, PlanError};
use crate::rig::{K3sRig, K3sRunArgs, LocalSetup, RigError, WireError};

/// Flags of `rackpong run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The experiment plan (YAML), e.g. plans/k3s.yaml.
    #[arg(env = "RACKPONG_PLAN")]
    pub plan: PathBuf,
    /// Run on a local stand-in rack started on this machine instead of k3s.
    #[arg(long, env = "RACKPONG_LOCAL", conflicts_with = "kubeconfig")]
    pub local: bool,
    /// Print the schedule and what each fault would do; touch nothing.
    #[arg(long, env = "RACKPONG_DRY_RUN")]
    pub dry_run: bool,
    /// Directory the run directory is written under.
    #[arg(long, env = "RACKPONG_RUNS_DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Nodes of the local rack (with --local).
    #[arg(long, env = "RACKPONG_LOCAL_NODES", default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub nodes: u8,
    /// Worker replicas of the local rack at start (with --local).
    #[arg(long, env = "RACKPONG_LOCAL_WORKERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// With --local: how the rack's nodes are separated.
    #[command(flatten)]
    pub isolation: super::IsolationArg,
    /// The k3s backend (without --local or --dry-run): API server, MQTT
    /// broker, node-command secret and the workers' ingress.
    #[command(flatten)]
    pub k3s: K3sRunArgs,
}

/// Why `rackpong run` failed.
#[derive(Debug, thiserror::Error)]
pub enum RunCommandError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Local(#[from] RigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    K3s(#[from] WireError),
}

/// What `rackpong run` did: the dry-run text, or a finished run.
#[derive(Debug)]
pub enum RunResult {
    DryRun(String),
    Ran(RunSummary),
}

/// `rackpong run`.
pub async fn run(args: RunArgs, cancel: CancellationToken) -> Result<RunResult, RunCommandError> {
    run_with(args, None, cancel).await
}

/// `rackpong run` over `client` when given instead of the kubeconfig's (the
/// offline k3s run test hands in a mock API server).
pub async fn run_with(
    args: RunArgs,
    client: Option<kube::Client>,
    cancel: CancellationToken,
) -> Result<RunResult, RunCommandError> {
    let plan = plan::load(&args.plan)?;
    if args.dry_run {
        return Ok(RunResult::DryRun(dry_run_text(&plan)));
    }
    if args.local {
        let setup = LocalSetup {
            nodes: args.nodes,
            workers: args.workers,
            runs_dir: args.runs_dir,
            progress: true,
            exe: None,
            observe: None,
            isolation: args.isolation.chosen(),
            led_catch_flash: true,
        };
        return Ok(RunResult::Ran(
            crate::rig::run_local(setup, plan, cancel).await?,
        ));
    }
    let rig = K3sRig::connect_with(&args.k3s, client, &cancel).await?;
    let cfg = EngineConfig::new(&args.runs_dir);
    let result = rig.run(plan, cfg, true, cancel).await;
    rig.shutdown().await;
    Ok(RunResult::Ran(result?))
}

//! `rackpong operator`: in-cluster, reconcile the namespace's
//! `ChaosExperiment`s with the engine, one at a time, until stopped.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::operator::OperatorRunError;
use crate::rig::K3sRunArgs;

/// Flags of `rackpong operator`.
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub k3s: K3sRunArgs,
    /// Directory the run directories are written under (a volume in the pod).
    #[arg(long, env = "RACKPONG_RUNS_DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    #[command(flatten)]
    pub health: crate::operator::health::HealthArgs,
}

/// `rackpong operator` until `cancel` fires; a running experiment is then
/// aborted and rolled back before it returns.
pub async fn run(args: OperatorArgs, cancel: CancellationToken) -> Result<(), OperatorRunError> {
    crate::operator::serve(&args.k3s, args.runs_dir, &args.health, cancel).await
}

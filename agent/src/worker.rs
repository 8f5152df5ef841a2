//! The `worker` role (placeholder until its issue lands).

use tokio_util::sync::CancellationToken;

/// Flags of the `worker` role.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {}

/// Why the `worker` role failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {}

/// Runs the `worker` role until `cancel` fires.
pub async fn run(_args: WorkerArgs, cancel: CancellationToken) -> Result<(), WorkerError> {
    cancel.cancelled().await;
    Ok(())
}

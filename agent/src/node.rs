//! The `node` role (placeholder until its issue lands).

use tokio_util::sync::CancellationToken;

/// Flags of the `node` role.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {}

/// Why the `node` role failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {}

/// Runs the `node` role until `cancel` fires.
pub async fn run(_args: NodeArgs, cancel: CancellationToken) -> Result<(), NodeError> {
    cancel.cancelled().await;
    Ok(())
}

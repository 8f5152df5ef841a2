//! The seam through which the k3s backend sends signed node-chaos commands
//! (`stop-k3s`, `reboot`, `net-drop`, `restore`) to a node's agent. The MQTT
//! implementation lives in `crate::cluster::k3s::nodecmd` (which re-exports this trait: one
//! definition); the backend only needs the trait, so tests plug in a recorder
//! and `crate::rig` plugs in the MQTT sender when `--chaos-secret-file` is given.

use std::time::Duration;

use futures::future::BoxFuture;
use rackpong_agent::proto::{ChaosAction, CommandAck};

/// Why a command could not be delivered or acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("node command to {node}: {reason}")]
pub struct CommandError {
    pub node: String,
    pub reason: String,
}

/// Sends one signed node-chaos command and waits for the agent's ack.
pub trait NodeCommander: Send + Sync + 'static {
    /// Signs and sends `action` to `node`'s agent; resolves with its ack
    /// (accepted or rejected with a reason), or an error when no ack came.
    fn send(
        &self,
        node: &str,
        action: ChaosAction,
        down_for: Duration,
    ) -> BoxFuture<'_, Result<CommandAck, CommandError>>;
}

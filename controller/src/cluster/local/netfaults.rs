//! Node faults of the isolated rack (`--isolation netns`) as real network
//! events, as on a Pi: `net-drop` takes the node's link down (its agent and
//! workers keep running, their sockets retransmit into the void) and brings
//! it back; `partition` cuts it from the control side (broker, controller,
//! ball factory) while it still reaches its peers; `power-relay` pulls the
//! cable and then kills the node's processes, so no FIN and no clean
//! `offline` reaches anyone. While a node is cut it cannot be told
//! anything: workers evicted from it stay Terminating and keep running
//! until it is reachable again, then they are told (SIGTERM) — the overlap
//! of an old worker with its replacement that a real cut produces.

use std::sync::Arc;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::time::Instant;

use super::config::LocalRackError;
use super::faults;
use super::inner::Inner;
use super::process::{signal_group, signal_pid};
use super::state::{Phase, RackState};
use crate::cluster::{ClusterError, NodeFault};
use rackpong_agent::proto::ChaosAction;

/// Whether this rack's nodes are network namespaces.
pub fn isolated(inner: &Inner) -> bool {
    inner.cfg.net.is_some()
}

/// Whether `fault` is a network event on this rack.
pub fn handles(inner: &Inner, fault: NodeFault) -> bool {
    isolated(inner)
        && matches!(
            fault,
            NodeFault::Agent(ChaosAction::NetDrop | ChaosAction::PowerRelay) | NodeFault::Partition
        )
}

/// Cuts node `index` (named `node`) for `fault`; `groups` are its process
/// groups (killed after the cut for `power-relay`).
pub fn cut(
    inner: &Arc<Inner>,
    st: &mut RackState,
    node: &str,
    index: u8,
    fault: NodeFault,
    groups: &[Pid],
) -> Result<(), ClusterError> {
    let Some(net) = &inner.cfg.net else {
        return Ok(());
    };
    let done = match fault {
        NodeFault::Partition => net.partition(index),
        _ => net.link_down(index),
    };
    done.map_err(|e| ClusterError::Local(LocalRackError::Net(e)))?;
    let Some(n) = st.node_mut(node) else {
        return Err(ClusterError::NoSuchNode(node.to_string()));
    };
    n.cut = true;
    if fault == NodeFault::Agent(ChaosAction::PowerRelay) {
        n.powered_off = true;
        // The cable is already out: whatever the dying processes send is lost.
        groups
            .iter()
            .for_each(|g| signal_group(*g, Signal::SIGKILL));
    }
    Ok(())
}

/// Plugs node `index` back in (link up, or the partition healed) after `fault`.
pub fn reconnect(inner: &Inner, index: u8, fault: Option<NodeFault>) {
    let Some(net) = &inner.cfg.net else { return };
    let done = match fault {
        Some(NodeFault::Partition) => net.heal(index),
        _ => net.link_up(index),
    };
    if let Err(e) = done {
        tracing::error!(node = index, error = %e, "cannot reconnect the node");
    }
}

/// The node is reachable again: its kubelet learns which of its pods were
/// deleted meanwhile. Evicted workers still running get SIGTERM (SIGKILL
/// after the termination grace); those that died are deleted.
pub fn reached_again(inner: &Arc<Inner>, st: &mut RackState, node: &str) {
    let evicted: Vec<(String, Pid)> = st
        .workers
        .values()
        .filter(|w| w.node.as_deref() == Some(node) && w.terminating)
        .filter(|w| w.phase == Phase::Running)
        .filter_map(|w| w.proc.map(|p| (w.name.clone(), p.pid)))
        .collect();
    for (name, pid) in evicted {
        tracing::info!(%node, worker = %name, "node reachable again: evicted worker told to stop");
        signal_pid(pid, Signal::SIGTERM);
        faults::escalate(inner, name, pid);
    }
    inner.delete_lost(st, node, Instant::now());
    inner.sync_peers(st);
}

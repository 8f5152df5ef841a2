//! Faults the local rack injects, each behaving as it does on a Pi: killing
//! a worker (SIGTERM, or SIGKILL); taking a node down — `stop-k3s` SIGKILLs
//! the node's workers and leaves its agent running (k3s-killall.sh run by
//! the agent), `reboot` SIGTERMs the whole node (clean `offline`, FIN) and
//! boots it after `down_for`, `power-relay` freezes the node (no FIN, no
//! `offline`) and kills the frozen processes only when power comes back,
//! `net-drop` freezes it and thaws it; cordon and drain — and bringing it
//! back, by itself after `down_for` or now on rollback. On an isolated rack
//! (`--isolation netns`) `net-drop`, `power-relay` and `partition` are
//! network events instead (`netfaults.rs`).

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::Instant;

use super::inner::Inner;
use super::netfaults;
use super::process::{signal_group, signal_pid};
use super::state::{Phase, RackState};
use crate::cluster::{ClusterError, ClusterEventKind, KillMode, NodeFault};
use rackpong_agent::proto::ChaosAction;

/// Marks a worker terminating and signals it; a worker without a process is
/// deleted at once. Graceful kills escalate to SIGKILL after the termination grace.
pub fn terminate(inner: &Arc<Inner>, st: &mut RackState, name: &str, mode: KillMode, at: Instant) {
    let Some(w) = st.workers.get_mut(name) else {
        return;
    };
    let node = w.node.clone();
    if !w.terminating {
        w.terminating = true;
        w.ready = false;
        let worker = name.to_string();
        inner.emit(
            at,
            ClusterEventKind::WorkerTerminating {
                worker,
                node: node.clone(),
            },
        );
    }
    let unreachable = node
        .as_deref()
        .and_then(|n| st.node(n))
        .is_some_and(|n| n.unreachable());
    let Some(w) = st.workers.get(name) else {
        return;
    };
    match (w.phase, w.proc) {
        // A pod on a node without power or network stays Terminating
        // until the node is back: nobody can tell its kubelet.
        (Phase::Running, Some(_)) if unreachable => {}
        (Phase::Lost, _) if unreachable && netfaults::isolated(inner) => {}
        (Phase::Running, Some(proc)) => {
            let forced = mode == KillMode::Forced;
            signal_pid(
                proc.pid,
                if forced {
                    Signal::SIGKILL
                } else {
                    Signal::SIGTERM
                },
            );
            if !forced {
                escalate(inner, name.to_string(), proc.pid);
            }
        }
        _ => {
            st.workers.remove(name);
            let worker = name.to_string();
            inner.emit(at, ClusterEventKind::WorkerDeleted { worker, node });
        }
    }
    inner.sync_peers(st);
}

pub fn escalate(inner: &Arc<Inner>, name: String, pid: nix::unistd::Pid) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        tokio::time::sleep(inner.cfg.termination_grace).await;
        let alive = inner
            .lock()
            .workers
            .get(&name)
            .and_then(|w| w.proc)
            .map(|p| p.pid);
        if alive == Some(pid) {
            tracing::warn!(worker = %name, "termination grace over, sending SIGKILL");
            signal_pid(pid, Signal::SIGKILL);
        }
    });
}

/// Kills one worker; the reconcile task replaces it.
pub fn kill_worker(inner: &Arc<Inner>, name: &str, mode: KillMode) -> Result<(), ClusterError> {
    let mut st = inner.lock();
    let Some(w) = st.workers.get(name) else {
        return Err(ClusterError::NoSuchWorker(name.to_string()));
    };
    if w.terminating && mode == KillMode::Graceful {
        return Ok(());
    }
    terminate(inner, &mut st, name, mode, Instant::now());
    drop(st);
    inner.wake.notify_one();
    Ok(())
}

/// Evicts every worker of `node` (node NotReady, or drain).
pub fn evict(inner: &Arc<Inner>, st: &mut RackState, node: &str, at: Instant) {
    let names: Vec<String> = st
        .workers
        .values()
        .filter(|w| w.node.as_deref() == Some(node) && !w.terminating)
        .map(|w| w.name.clone())
        .collect();
    for name in names {
        terminate(inner, st, &name, KillMode::Graceful, at);
    }
}

/// Takes `node` down and arms its restore after `down_for`.
pub fn node_down(
    inner: &Arc<Inner>,
    node: &str,
    fault: NodeFault,
    down_for: Duration,
) -> Result<(), ClusterError> {
    let refused = |reason: &str| ClusterError::Refused {
        action: format!("{fault:?} on {node}"),
        reason: reason.to_string(),
    };
    let mut st = inner.lock();
    let groups = st.groups_of(node);
    let n = st
        .node_mut(node)
        .ok_or_else(|| ClusterError::NoSuchNode(node.to_string()))?;
    if n.fault.is_some() {
        return Err(refused("the node is already down"));
    }
    if fault == NodeFault::Agent(ChaosAction::Restore) {
        return Err(refused("restore is not a fault; use node_up"));
    }
    let index = n.index;
    let on_net = netfaults::handles(inner, fault);
    if fault == NodeFault::Partition && !on_net {
        return Err(refused(
            "partition needs an isolated rack (--isolation netns): loopback nodes share one network",
        ));
    }
    if on_net {
        netfaults::cut(inner, &mut st, node, index, fault, &groups)?;
    }
    let Some(n) = st.node_mut(node) else {
        return Err(ClusterError::NoSuchNode(node.to_string()));
    };
    n.fault = Some(fault);
    n.generation += 1;
    let generation = n.generation;
    match fault {
        _ if on_net => {}
        NodeFault::Agent(ChaosAction::NetDrop) => {
            n.frozen = true;
            signal_all(&groups, Signal::SIGSTOP);
        }
        NodeFault::Agent(ChaosAction::PowerRelay) => {
            n.frozen = true;
            n.powered_off = true;
            signal_all(&groups, Signal::SIGSTOP);
        }
        NodeFault::Agent(ChaosAction::StopK3s) => {
            n.kubelet_down = true;
            let workers = workers_of(&st, node);
            workers.iter().for_each(|p| signal_pid(*p, Signal::SIGKILL));
        }
        NodeFault::Agent(_) => {
            signal_all(&groups, Signal::SIGTERM);
            shutdown_deadline(inner, node.to_string(), generation);
        }
        NodeFault::CordonDrain => {
            n.cordoned = true;
            evict(inner, &mut st, node, Instant::now());
        }
        NodeFault::Partition => {}
    }
    tracing::info!(%node, ?fault, ?down_for, "node fault injected");
    drop(st);
    arm_restore(inner, node.to_string(), generation, down_for);
    inner.wake.notify_one();
    Ok(())
}

fn signal_all(groups: &[nix::unistd::Pid], sig: Signal) {
    groups.iter().for_each(|g| signal_group(*g, sig));
}

/// The running worker processes of `node`.
fn workers_of(st: &RackState, node: &str) -> Vec<nix::unistd::Pid> {
    st.workers
        .values()
        .filter(|w| w.node.as_deref() == Some(node))
        .filter_map(|w| w.proc.map(|p| p.pid))
        .collect()
}

/// A reboot's shutdown is clean but bounded, as systemd's is: whatever is
/// left of the node after the termination grace is SIGKILLed.
fn shutdown_deadline(inner: &Arc<Inner>, node: String, generation: u64) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(inner.cfg.termination_grace) => {}
            _ = inner.cancel.cancelled() => return,
        }
        let st = inner.lock();
        if st.node(&node).is_some_and(|n| n.generation == generation) {
            let groups = st.groups_of(&node);
            drop(st);
            if !groups.is_empty() {
                tracing::warn!(%node, "reboot: shutdown grace over, SIGKILL what is left");
            }
            signal_all(&groups, Signal::SIGKILL);
        }
    });
}

fn arm_restore(inner: &Arc<Inner>, node: String, generation: u64, down_for: Duration) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(down_for) => restore(&inner, &node, Some(generation)),
            _ = inner.cancel.cancelled() => {}
        }
    });
}

/// Brings `node` back now (rollback): uncordon, SIGCONT, restart its agent.
pub fn node_up(inner: &Arc<Inner>, node: &str) -> Result<(), ClusterError> {
    if inner.lock().node(node).is_none() {
        return Err(ClusterError::NoSuchNode(node.to_string()));
    }
    restore(inner, node, None);
    Ok(())
}

/// Undoes the node's fault, if `generation` (when given) is still current.
fn restore(inner: &Arc<Inner>, node: &str, generation: Option<u64>) {
    let mut st = inner.lock();
    let groups = st.groups_of(node);
    let Some(n) = st.node_mut(node) else { return };
    if generation.is_some_and(|g| g != n.generation) {
        return;
    }
    n.generation += 1;
    let fault = n.fault.take();
    n.cordoned = false;
    let index = n.index;
    let was_cut = std::mem::take(&mut n.cut);
    if was_cut {
        netfaults::reconnect(inner, index, fault);
    }
    if std::mem::take(&mut n.powered_off) {
        // Power back: what was frozen dies now (its sockets long timed
        // out at the broker), then the node boots.
        n.frozen = false;
        n.boot_pending = n.agent.is_some();
        signal_all(&groups, Signal::SIGKILL);
    } else if std::mem::take(&mut n.frozen) {
        signal_all(&groups, Signal::SIGCONT);
    }
    let kubelet_back = std::mem::take(&mut n.kubelet_down) && n.agent.is_some();
    if matches!(fault, Some(NodeFault::Agent(ChaosAction::Reboot))) && n.agent.is_some() {
        n.boot_pending = true;
    }
    let restart = n.agent.is_none().then_some(n.generation);
    tracing::info!(%node, ?fault, "node restored");
    if kubelet_back {
        // A restarted k3s deletes the pods that died while it was down.
        inner.delete_lost(&mut st, node, Instant::now());
        inner.sync_peers(&mut st);
    }
    if was_cut {
        netfaults::reached_again(inner, &mut st, node);
    }
    drop(st);
    if let Some(generation) = restart {
        inner.restart_agent(node, generation);
    }
    inner.wake.notify_one();
}

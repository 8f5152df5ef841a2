//! The local ReplicaSet: keeps the desired number of workers, creating
//! replacements (named `worker-<n>`) and spreading them over Ready nodes,
//! starting their processes into the node's process group, and observing
//! their exits through `wait`.

use std::sync::Arc;
use std::time::Duration;

use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::Instant;

use super::config::LocalRackError;
use super::faults;
use super::inner::Inner;
use super::probe;
use super::process::{self, Group, Proc, WorkerLine};
use super::state::{Phase, RackState, WorkerState};
use crate::cluster::{ClusterEventKind, KillMode};

/// Reconciles at least this often, even when nothing wakes it.
const RESYNC: Duration = Duration::from_secs(1);

/// The reconcile task: runs until the rack is cancelled.
pub async fn run(inner: Arc<Inner>) {
    loop {
        reconcile_once(&inner);
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(RESYNC) => {}
            _ = inner.cancel.cancelled() => return,
        }
    }
}

fn reconcile_once(inner: &Arc<Inner>) {
    let mut st = inner.lock();
    if st.stopping {
        return;
    }
    let now = Instant::now();
    let (active, desired) = (st.active().count() as u32, st.desired);
    if active < desired {
        create(inner, &mut st, desired - active, now);
    } else if active > desired {
        scale_down(inner, &mut st, active - desired, now);
    }
    schedule(inner, &mut st);
    inner.sync_peers(&mut st);
}

fn create(inner: &Inner, st: &mut RackState, count: u32, at: Instant) {
    for _ in 0..count {
        st.next_serial += 1;
        let serial = st.next_serial;
        let name = format!("worker-{serial}");
        let (delay, pull) = if st.initial_left > 0 {
            st.initial_left -= 1;
            (Duration::ZERO, Duration::ZERO)
        } else {
            (st.replacement_delay, st.pull_delay)
        };
        let mut w = WorkerState::new(name.clone(), serial, delay);
        w.pull_delay = pull;
        st.workers.insert(name.clone(), w);
        inner.emit(at, ClusterEventKind::WorkerCreated { worker: name });
    }
}

/// Removes `count` workers, least useful first: pending, lost, not ready,
/// then the newest (as a ReplicaSet does).
fn scale_down(inner: &Arc<Inner>, st: &mut RackState, count: u32, at: Instant) {
    let mut victims: Vec<(u8, std::cmp::Reverse<u64>, String)> = st
        .active()
        .map(|w| {
            let rank = match (w.phase, w.ready) {
                (Phase::Pending, _) => 0,
                (Phase::Lost, _) => 1,
                (Phase::Running, false) => 2,
                (Phase::Running, true) => 3,
            };
            (rank, std::cmp::Reverse(w.serial), w.name.clone())
        })
        .collect();
    victims.sort();
    for (_, _, name) in victims.into_iter().take(count as usize) {
        faults::terminate(inner, st, &name, KillMode::Graceful, at);
    }
}

/// Places pending workers on the Ready node with the fewest workers and starts them.
fn schedule(inner: &Arc<Inner>, st: &mut RackState) {
    let mut pending: Vec<(u64, String)> = st
        .workers
        .values()
        // A worker with a node but still Pending is being "pulled".
        .filter(|w| w.phase == Phase::Pending && !w.terminating && w.node.is_none())
        .map(|w| (w.serial, w.name.clone()))
        .collect();
    pending.sort();
    for (_, name) in pending {
        let Some(node) = pick_node(st) else { return };
        let mut pull = Duration::ZERO;
        if let Some(w) = st.workers.get_mut(&name) {
            w.node = Some(node.clone());
            pull = w.pull_delay;
        }
        let at = Instant::now();
        inner.emit(
            at,
            ClusterEventKind::WorkerScheduled {
                worker: name.clone(),
                node,
            },
        );
        if pull.is_zero() {
            start_worker(inner, st, &name);
        } else {
            start_after(inner, name, at + pull);
        }
    }
}

/// Starts a scheduled worker at `at` (after its pull delay), if it is still
/// scheduled, pending and wanted then.
fn start_after(inner: &Arc<Inner>, name: String, at: Instant) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = inner.cancel.cancelled() => return,
        }
        let mut st = inner.lock();
        let waiting = st
            .workers
            .get(&name)
            .is_some_and(|w| w.phase == Phase::Pending && !w.terminating && w.node.is_some());
        if waiting && !st.stopping {
            start_worker(&inner, &mut st, &name);
            inner.sync_peers(&mut st);
        }
        drop(st);
        inner.wake.notify_one();
    });
}

fn pick_node(st: &RackState) -> Option<String> {
    st.nodes
        .iter()
        .filter(|n| n.schedulable())
        .min_by_key(|n| {
            let load = st
                .active()
                .filter(|w| w.node.as_deref() == Some(n.name.as_str()))
                .count();
            (load, n.index)
        })
        .map(|n| n.name.clone())
}

fn start_worker(inner: &Arc<Inner>, st: &mut RackState, name: &str) {
    // The container "starts" when its process is created: stamped before the
    // fork, whose cost on a busy machine is not the rack's doing.
    let at = Instant::now();
    let (child, proc, node) = match spawn_worker(inner, st, name) {
        Some(Ok(spawned)) => spawned,
        Some(Err(e)) => {
            // Back to Pending without a node: the next reconcile tries again.
            tracing::error!(worker = %name, error = %e, "cannot start worker");
            if let Some(w) = st.workers.get_mut(name) {
                w.node = None;
            }
            return;
        }
        None => return,
    };
    let Some(w) = st.workers.get_mut(name) else {
        return;
    };
    w.phase = Phase::Running;
    w.proc = Some(proc);
    let token = w.probe.clone();
    let worker = name.to_string();
    inner.emit(at, ClusterEventKind::WorkerRunning { worker, node });
    let (worker, pid) = (name.to_string(), proc.pid);
    inner.track(st, child, proc, move |inner, at| {
        on_worker_exit(inner, &worker, pid, at)
    });
    probe::spawn(Arc::clone(inner), name.to_string(), token);
}

/// Spawns the process of scheduled worker `name` into its node's group;
/// `None` when the worker or its node's agent is gone.
fn spawn_worker(
    inner: &Inner,
    st: &RackState,
    name: &str,
) -> Option<Result<(Child, Proc, String), LocalRackError>> {
    let w = st.workers.get(name)?;
    let node = st.node(w.node.as_deref()?)?;
    let agent = node.agent?;
    let (peers_file, announce) = (inner.peers_path(), inner.announce_path(name));
    let _ = std::fs::remove_file(&announce);
    let line = WorkerLine {
        name,
        node_index: node.index,
        peers_file: &peers_file,
        announce: &announce,
        start_delay: w.start_delay,
    };
    let args = process::worker_args(&inner.cfg, &line);
    let group = Group::Join(agent.pgid);
    let netns = inner.cfg.namespace(node.index);
    let spawned = process::spawn(
        &inner.cfg.exe,
        &args,
        group,
        name,
        inner.cfg.log_dir.as_ref(),
        netns.as_deref(),
    );
    Some(spawned.map(|(child, proc)| (child, proc, node.name.clone())))
}

/// A worker's process exited. On a healthy node the worker is deleted (and
/// replaced); on a node that is down it becomes Lost until the node is
/// evicted or its agent restarts.
fn on_worker_exit(inner: &Arc<Inner>, name: &str, pid: Pid, at: Instant) {
    let mut st = inner.lock();
    let Some(w) = st.workers.get(name) else {
        return;
    };
    if w.proc.map(|p| p.pid) != Some(pid) {
        return;
    }
    w.probe.cancel();
    let node_down = w
        .node
        .as_deref()
        .and_then(|n| st.node(n))
        .is_none_or(|n| n.fault.is_some() || n.agent.is_none() || n.frozen);
    if w.terminating || !node_down {
        if let Some(w) = st.workers.remove(name) {
            inner.emit(
                at,
                ClusterEventKind::WorkerDeleted {
                    worker: w.name,
                    node: w.node,
                },
            );
        }
    } else if let Some(w) = st.workers.get_mut(name) {
        w.phase = Phase::Lost;
        w.proc = None;
        w.addr = None;
        if std::mem::take(&mut w.ready) {
            let (worker, node) = (w.name.clone(), w.node.clone());
            inner.emit(at, ClusterEventKind::WorkerNotReady { worker, node });
        }
    }
    inner.sync_peers(&mut st);
    drop(st);
    inner.wake.notify_one();
}

//! The state shared by the local rack's tasks: settings, bookkeeping, the
//! event channel, and the node agents' life cycle (spawn, exit, restart).

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{LocalRackConfig, LocalRackError};
use super::peers;
use super::process::{self, Group, Proc};
use super::state::{Phase, RackState, WorkerAddr};
use crate::cluster::{ClusterEvent, ClusterEventKind};

/// How long a crashed node agent waits before it is restarted (systemd's RestartSec).
const AGENT_RESTART_DELAY: Duration = Duration::from_secs(1);

pub struct Inner {
    pub cfg: LocalRackConfig,
    /// The rack's state directory: announce files and the peers file.
    pub dir: PathBuf,
    pub state: Mutex<RackState>,
    pub events: broadcast::Sender<ClusterEvent>,
    /// Wakes the reconcile task.
    pub wake: Notify,
    pub cancel: CancellationToken,
    pub http: reqwest::Client,
    pub live: watch::Sender<Vec<WorkerAddr>>,
    /// The live workers that are also ready (what a Service would route to).
    pub ready: watch::Sender<Vec<WorkerAddr>>,
    /// Malformed MQTT payloads seen by the node monitor.
    pub malformed: AtomicU64,
    /// Notified whenever a child has been reaped.
    pub exited: Arc<Notify>,
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, RackState> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn emit(&self, at: Instant, kind: ClusterEventKind) {
        tracing::debug!(?kind, "local rack event");
        let _ = self.events.send(ClusterEvent { at, kind });
    }

    pub fn peers_path(&self) -> PathBuf {
        self.dir.join("peers")
    }

    pub fn announce_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.addr"))
    }

    /// Rewrites the peers file and the live-workers channel if the set of
    /// live workers changed, and the ready-workers channel if that changed.
    pub fn sync_peers(&self, st: &mut RackState) {
        let ready = st.ready();
        self.ready.send_if_modified(|now| {
            let changed = *now != ready;
            *now = ready;
            changed
        });
        let live = st.live();
        if live == st.peers_written {
            return;
        }
        if let Err(e) = peers::write(&self.peers_path(), &live) {
            tracing::error!(error = %e, "peers file not updated");
            return;
        }
        st.peers_written = live.clone();
        self.live.send_replace(live);
    }

    /// Records a child and watches for its exit through its `wait`, calling
    /// `on_exit` with the instant the exit was observed.
    pub fn track<F>(self: &Arc<Self>, st: &mut RackState, mut child: Child, proc: Proc, on_exit: F)
    where
        F: FnOnce(&Arc<Inner>, Instant) + Send + 'static,
    {
        st.children.insert(proc.pid.as_raw(), proc.pgid);
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let status = child.wait().await;
            let at = Instant::now();
            tracing::debug!(pid = %proc.pid, ?status, "child exited");
            inner.lock().children.remove(&proc.pid.as_raw());
            on_exit(&inner, at);
            inner.exited.notify_waiters();
        });
    }

    /// Starts the node agent of node `index` (1-based) as the leader of a new process group.
    pub fn start_agent(
        self: &Arc<Self>,
        st: &mut RackState,
        index: u8,
    ) -> Result<(), LocalRackError> {
        let name = process::node_name(index);
        let announce = self.announce_path(&name);
        let _ = std::fs::remove_file(&announce);
        let args = process::node_args(&self.cfg, index, &announce);
        let netns = self.cfg.namespace(index);
        let (child, proc) = process::spawn(
            &self.cfg.exe,
            &args,
            Group::New,
            &name,
            self.cfg.log_dir.as_ref(),
            netns.as_deref(),
        )?;
        tracing::info!(node = %name, pid = %proc.pid, "node agent started");
        if let Some(n) = st.node_mut(&name) {
            n.agent = Some(proc);
            n.frozen = false;
            n.powered_off = false;
            n.kubelet_down = false;
        }
        let pid = proc.pid;
        self.track(st, child, proc, move |inner, at| {
            inner.on_agent_exit(&name, pid, at)
        });
        Ok(())
    }

    fn on_agent_exit(self: &Arc<Self>, node: &str, pid: Pid, at: Instant) {
        let mut st = self.lock();
        let stopping = st.stopping;
        let Some(n) = st.node_mut(node) else { return };
        if n.agent.map(|p| p.pid) != Some(pid) {
            return;
        }
        n.agent = None;
        n.frozen = false;
        n.powered_off = false;
        let live = !stopping && !self.cancel.is_cancelled();
        // Restored (booted) while it was still going down: start it now.
        let boot = std::mem::take(&mut n.boot_pending) && n.fault.is_none() && live;
        let crashed = !boot && n.fault.is_none() && live;
        let generation = n.generation;
        drop(st);
        tracing::info!(%node, %pid, crashed, boot, elapsed = ?at.elapsed(), "node agent exited");
        if boot {
            self.restart_agent(node, generation);
        } else if crashed {
            let inner = Arc::clone(self);
            let node = node.to_string();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(AGENT_RESTART_DELAY) => inner.restart_agent(&node, generation),
                    _ = inner.cancel.cancelled() => {}
                }
            });
        }
    }

    /// Starts the node's agent again (a restarted kubelet), unless a newer
    /// fault or rollback changed the node since `generation`. Workers that died
    /// with the node are deleted first, as a restarted kubelet does.
    pub fn restart_agent(self: &Arc<Self>, node: &str, generation: u64) {
        let mut st = self.lock();
        let Some(n) = st.node(node) else { return };
        if st.stopping || n.agent.is_some() || n.generation != generation {
            return;
        }
        let index = n.index;
        self.delete_lost(&mut st, node, Instant::now());
        if let Err(e) = self.start_agent(&mut st, index) {
            tracing::error!(%node, error = %e, "cannot restart node agent");
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Deletes the workers of `node` whose process died with the node.
    pub fn delete_lost(&self, st: &mut RackState, node: &str, at: Instant) {
        let lost: Vec<String> = st
            .workers
            .values()
            .filter(|w| w.phase == Phase::Lost && w.node.as_deref() == Some(node))
            .map(|w| w.name.clone())
            .collect();
        for name in lost {
            let Some(w) = st.workers.remove(&name) else {
                continue;
            };
            let node = w.node.clone();
            if !w.terminating {
                self.emit(
                    at,
                    ClusterEventKind::WorkerTerminating {
                        worker: name.clone(),
                        node: node.clone(),
                    },
                );
            }
            self.emit(at, ClusterEventKind::WorkerDeleted { worker: name, node });
        }
    }
}

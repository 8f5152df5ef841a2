//! The local rack: the embedded default [`Cluster`], a **stand-in for k3s on
//! a laptop**. It is not Kubernetes; it mimics the parts of it that recovery
//! timing depends on, with real processes:
//!
//! - **Nodes**: node `i` is `node<i>` on its own loopback address `127.0.1.<i>`,
//!   a process group led by the node agent (`EXE agent node ...`).
//! - **Workers** (pods): `EXE agent worker ...` processes spawned into their
//!   node's process group, kept at the desired count by a ReplicaSet-like
//!   reconcile task (`reconcile.rs`) that spreads them over Ready nodes and
//!   names them `worker-<n>`. Their `/readyz` is probed every `probe_period`
//!   (`probe.rs`). They find each other through a peers file rewritten
//!   atomically whenever the set of live workers changes.
//! - **Node health** (`monitor.rs`): a node is Ready from its first MQTT life
//!   sign (health sample or `online` status) and NotReady once `node_grace`
//!   passes without one; its workers are then evicted and replaced elsewhere
//!   (k3s's node controller with zero toleration).
//! - **Faults** (`faults.rs`), each as on a Pi: SIGTERM/SIGKILL a worker;
//!   `stop-k3s` SIGKILLs the node's workers and keeps its agent, `reboot`
//!   SIGTERMs the whole node (clean `offline`), `power-relay` freezes it
//!   silently and kills it on power-up, `net-drop` freezes it, cordon and
//!   drain evicts; each comes back after `down_for` or at once on `node_up`.
//!
//! Every [`ClusterEvent`] carries the instant it was observed: a process
//! spawn or its exit seen through `wait`, an MQTT message's arrival, a probe
//! answer. Children die with the controller: SIGKILL on drop, SIGTERM then
//! SIGKILL on [`LocalRack::shutdown`], and through `PR_SET_PDEATHSIG` if the
//! controller itself is killed. PR_SET_PDEATHSIG follows the *thread* that spawned a
//! child, so drive the rack from tokio runtime threads that live as long as
//! it does (not from `spawn_blocking`). See `docs/local-rack.md`.

mod config;
mod faults;
mod inner;
mod monitor;
mod netfaults;
pub mod netns;
mod peers;
mod probe;
mod process;
mod reconcile;
mod state;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::{Notify, broadcast, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use config::{Isolation, LocalRackConfig, LocalRackError};
pub use netns::RackNet;
pub use state::WorkerAddr;

use super::{
    Cluster, ClusterError, ClusterEvent, ClusterEventKind, KillMode, NodeFault, NodeInfo,
    WorkerInfo,
};
use crate::model::{Detection, WorkerEndpoint};
use inner::Inner;
use state::{NodeState, RackState};

/// Capacity of the event channel; a receiver lagging further loses the oldest.
const EVENT_CAPACITY: usize = 4096;

/// A running local rack. Dropping it SIGKILLs every process it started;
/// [`LocalRack::shutdown`] stops them gracefully first.
pub struct LocalRack {
    inner: Arc<Inner>,
    initial: Mutex<Option<broadcast::Receiver<ClusterEvent>>>,
    exited: Arc<Notify>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for LocalRack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRack")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl LocalRack {
    /// Starts the node monitor and the node agents, waits until every node is
    /// Ready (at most `boot_timeout`), then starts the reconcile task and
    /// returns: the workers come up in the background (watch
    /// [`LocalRack::events_since_start`] or [`LocalRack::live_workers`]).
    pub async fn start(cfg: LocalRackConfig) -> Result<Self, LocalRackError> {
        cfg.validate()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::Builder::new()
            .prefix("rackpong-local-")
            .tempdir()
            .map_err(LocalRackError::StateDir)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(cfg.probe_timeout)
            .build()
            .map_err(|e| LocalRackError::Http(e.to_string()))?;
        peers::write(&dir.path().join("peers"), &[])?;
        let (events, initial) = broadcast::channel(EVENT_CAPACITY);
        let inner = Arc::new(Inner {
            state: Mutex::new(RackState::new(&cfg)),
            dir: dir.path().to_path_buf(),
            cfg,
            events,
            wake: Notify::new(),
            cancel: CancellationToken::new(),
            http,
            live: watch::channel(Vec::new()).0,
            ready: watch::channel(Vec::new()).0,
            malformed: AtomicU64::new(0),
            exited: Arc::new(Notify::new()),
        });
        let rack = Self {
            exited: Arc::clone(&inner.exited),
            inner,
            initial: Mutex::new(Some(initial)),
            _dir: dir,
        };
        rack.boot().await?;
        Ok(rack)
    }

    async fn boot(&self) -> Result<(), LocalRackError> {
        let (subscribed, on_subscribed) = oneshot::channel();
        monitor::spawn(Arc::clone(&self.inner), subscribed);
        if tokio::time::timeout(Duration::from_secs(10), on_subscribed)
            .await
            .is_err()
        {
            tracing::warn!(broker = %self.inner.cfg.broker, "node monitor not subscribed yet, starting anyway");
        }
        let mut events = self.inner.events.subscribe();
        {
            let mut st = self.inner.lock();
            for index in 1..=self.inner.cfg.nodes {
                self.inner.start_agent(&mut st, index)?;
            }
        }
        // Like a cluster that is up before anything is deployed on it, so the
        // first workers spread over every node.
        let all_ready = async {
            while !self.not_ready_nodes().is_empty() {
                if let Err(broadcast::error::RecvError::Closed) = events.recv().await {
                    return;
                }
            }
        };
        if tokio::time::timeout(self.inner.cfg.boot_timeout, all_ready)
            .await
            .is_err()
        {
            return Err(LocalRackError::Boot(self.not_ready_nodes().join(", ")));
        }
        tokio::spawn(measure_cold_start(
            Arc::clone(&self.inner),
            self.inner.events.subscribe(),
        ));
        tokio::spawn(reconcile::run(Arc::clone(&self.inner)));
        Ok(())
    }

    fn not_ready_nodes(&self) -> Vec<String> {
        let st = self.inner.lock();
        st.nodes
            .iter()
            .filter(|n| !n.ready)
            .map(|n| n.name.clone())
            .collect()
    }

    /// A receiver that has seen every event since the rack started; `None`
    /// after the first call. (`subscribe` only sees events from now on.)
    pub fn events_since_start(&self) -> Option<broadcast::Receiver<ClusterEvent>> {
        self.initial
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The live workers (running, announced, not terminating) and their URLs,
    /// updated whenever the peers file is rewritten.
    pub fn live_workers(&self) -> watch::Receiver<Vec<WorkerAddr>> {
        self.inner.live.subscribe()
    }

    /// The ready workers as the ball factory's targets (what a k3s Service
    /// would route to), updated as workers become ready or go.
    pub fn endpoints(&self) -> watch::Receiver<Vec<WorkerEndpoint>> {
        let to_endpoints = |ready: &[WorkerAddr]| -> Vec<WorkerEndpoint> {
            let endpoint = |w: &WorkerAddr| WorkerEndpoint {
                name: w.name.clone(),
                url: Some(w.url.clone()),
            };
            ready.iter().map(endpoint).collect()
        };
        let mut ready = self.inner.ready.subscribe();
        let (tx, rx) = watch::channel(to_endpoints(&ready.borrow_and_update()));
        let cancel = self.inner.cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = ready.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                    _ = cancel.cancelled() => return,
                }
                tx.send_replace(to_endpoints(&ready.borrow_and_update()));
            }
        });
        rx
    }

    /// Start delay given from now on to replacement workers (`--start-delay`).
    pub fn set_replacement_start_delay(&self, delay: Duration) {
        self.inner.lock().replacement_delay = delay;
    }

    /// Time from now on between a replacement's scheduling and its process
    /// start (an image pull): a known delay for the timing-fidelity test.
    pub fn set_replacement_pull_delay(&self, delay: Duration) {
        self.inner.lock().pull_delay = delay;
    }

    /// Every child process not yet reaped, as `(pid, process group)`.
    pub fn processes(&self) -> Vec<(i32, i32)> {
        let st = self.inner.lock();
        st.children
            .iter()
            .map(|(pid, pgid)| (*pid, pgid.as_raw()))
            .collect()
    }

    /// The directory holding the peers file and the announce files.
    pub fn state_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Malformed MQTT payloads the node monitor ignored.
    pub fn malformed_payloads(&self) -> u64 {
        self.inner.malformed.load(Ordering::Relaxed)
    }

    /// Stops the rack: SIGTERM every process group, wait up to `timeout` for
    /// them to exit, SIGKILL what is left and wait for it to be reaped.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.lock().stopping = true;
        self.inner.cancel.cancel();
        self.signal_all(Signal::SIGCONT);
        self.signal_all(Signal::SIGTERM);
        if !self.wait_exited(timeout).await {
            tracing::warn!("local rack children still running after {timeout:?}, killing");
            self.signal_all(Signal::SIGKILL);
            self.wait_exited(Duration::from_secs(5)).await;
        }
    }

    async fn wait_exited(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let exited = self.exited.notified();
            if self.inner.lock().children.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, exited).await.is_err() {
                return false;
            }
        }
    }

    fn signal_all(&self, sig: Signal) {
        let groups: Vec<Pid> = self.inner.lock().children.values().copied().collect();
        for pgid in groups {
            process::signal_group(pgid, sig);
        }
    }
}

impl Drop for LocalRack {
    fn drop(&mut self) {
        self.inner.lock().stopping = true;
        self.inner.cancel.cancel();
        self.signal_all(Signal::SIGKILL);
    }
}

impl Cluster for LocalRack {
    fn kind(&self) -> crate::model::ClusterKind {
        crate::model::ClusterKind::Local
    }

    async fn detection(&self) -> Result<Detection, ClusterError> {
        let (delay, cold) = {
            let st = self.inner.lock();
            (st.replacement_delay + st.pull_delay, st.cold_start)
        };
        let mut det = self.inner.cfg.detection(delay);
        if let Some(cold) = cold {
            let ms = cold.as_millis().to_string();
            det.extra.insert("cold_start_ms".into(), ms);
        }
        Ok(det)
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        Ok(self
            .inner
            .lock()
            .nodes
            .iter()
            .map(NodeState::info)
            .collect())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, ClusterError> {
        Ok(self
            .inner
            .lock()
            .workers
            .values()
            .map(|w| w.info())
            .collect())
    }

    async fn replicas(&self) -> Result<u32, ClusterError> {
        Ok(self.inner.lock().desired)
    }

    async fn kill_worker(&self, worker: &str, mode: KillMode) -> Result<(), ClusterError> {
        faults::kill_worker(&self.inner, worker, mode)
    }

    async fn node_down(
        &self,
        node: &str,
        fault: NodeFault,
        down_for: Duration,
    ) -> Result<(), ClusterError> {
        faults::node_down(&self.inner, node, fault, down_for)
    }

    async fn node_up(&self, node: &str) -> Result<(), ClusterError> {
        faults::node_up(&self.inner, node)
    }

    async fn scale(&self, replicas: u32) -> Result<u32, ClusterError> {
        let previous = std::mem::replace(&mut self.inner.lock().desired, replicas);
        let at = tokio::time::Instant::now();
        self.inner
            .emit(at, ClusterEventKind::ReplicasChanged { replicas });
        self.inner.wake.notify_one();
        Ok(previous)
    }

    fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.inner.events.subscribe()
    }
}

/// Records the rack's cold-start baseline once every initial worker was
/// Ready: the slowest of their created → ready times.
async fn measure_cold_start(inner: Arc<Inner>, mut events: broadcast::Receiver<ClusterEvent>) {
    let n = inner.cfg.workers as usize;
    let mut created = std::collections::HashMap::new();
    let mut slowest = Duration::ZERO;
    let mut ready = std::collections::HashSet::new();
    while ready.len() < n {
        let ev = tokio::select! {
            ev = events.recv() => ev,
            _ = inner.cancel.cancelled() => return,
        };
        let Ok(ev) = ev else { return };
        match ev.kind {
            ClusterEventKind::WorkerCreated { worker } if created.len() < n => {
                created.insert(worker, ev.at);
            }
            ClusterEventKind::WorkerReady { worker, .. } => {
                if let Some(t) = created.get(&worker)
                    && ready.insert(worker)
                {
                    slowest = slowest.max(ev.at.saturating_duration_since(*t));
                }
            }
            _ => {}
        }
    }
    tracing::info!(?slowest, workers = n, "cold-start baseline measured");
    inner.lock().cold_start = Some(slowest);
}

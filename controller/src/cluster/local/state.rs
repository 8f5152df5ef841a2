//! The local rack's bookkeeping: its nodes and workers as the rack last saw
//! them. One `Mutex<RackState>` guards it; nothing awaits while holding it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use nix::unistd::Pid;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::LocalRackConfig;
use super::process::{self, Proc};
use crate::cluster::{NodeFault, NodeInfo, WorkerInfo};

/// One node: a node agent process group on its own loopback address.
#[derive(Debug)]
pub struct NodeState {
    pub index: u8,
    pub name: String,
    /// The running node agent (its pid leads the node's process group).
    pub agent: Option<Proc>,
    /// Ready as the node monitor last decided.
    pub ready: bool,
    /// When the last life sign (MQTT health or "online") arrived.
    pub last_sign: Option<Instant>,
    pub cordoned: bool,
    /// The node fault in progress, if any.
    pub fault: Option<NodeFault>,
    /// The process group is stopped (net-drop, power-relay).
    pub frozen: bool,
    /// Power is cut (power-relay): the frozen group is killed when power
    /// comes back, and its evicted workers cannot be signalled until then.
    pub powered_off: bool,
    /// "k3s" is stopped (stop-k3s): the agent runs on but its life signs
    /// are not kubelet heartbeats, so the node goes NotReady after the grace.
    pub kubelet_down: bool,
    /// Its network is cut from the control side (isolated rack: link down
    /// or partitioned): like a node without power, it cannot be told
    /// anything, so its evicted workers stay Terminating, alive and
    /// unsignalled, until it is reachable again.
    pub cut: bool,
    /// The node was restored while its agent was still going down: start
    /// the agent as soon as the old one has exited.
    pub boot_pending: bool,
    /// Bumped by every node_down/node_up so a stale restore timer does nothing.
    pub generation: u64,
}

impl NodeState {
    /// Whether new workers may be placed here.
    pub fn schedulable(&self) -> bool {
        self.ready && self.agent.is_some() && !self.cordoned && self.fault.is_none()
    }

    /// Nothing the control side sends reaches it (no power or no network).
    pub fn unreachable(&self) -> bool {
        self.powered_off || self.cut
    }

    /// The node as the `Cluster` trait shows it.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            name: self.name.clone(),
            ready: self.ready,
            chaos_opt_in: true,
            protected: None,
            cordoned: self.cordoned,
        }
    }
}

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created, no node or no process yet (k8s: Pending).
    Pending,
    /// Its process runs.
    Running,
    /// Its process died with its node; it still counts as a replica until the
    /// node is NotReady (evicted) or its agent restarts, as a pod on a dead
    /// kubelet does.
    Lost,
}

/// One worker (the local stand-in for a pod).
#[derive(Debug)]
pub struct WorkerState {
    pub name: String,
    /// Creation order, for choosing which workers a scale-down removes.
    pub serial: u64,
    pub node: Option<String>,
    pub phase: Phase,
    pub proc: Option<Proc>,
    pub addr: Option<SocketAddr>,
    pub ready: bool,
    pub terminating: bool,
    /// `--start-delay` it is started with.
    pub start_delay: Duration,
    /// How long after scheduling its process starts.
    pub pull_delay: Duration,
    /// Stops its readiness probe.
    pub probe: CancellationToken,
}

impl WorkerState {
    pub fn new(name: String, serial: u64, start_delay: Duration) -> Self {
        Self {
            name,
            serial,
            node: None,
            phase: Phase::Pending,
            proc: None,
            addr: None,
            ready: false,
            terminating: false,
            start_delay,
            pull_delay: Duration::ZERO,
            probe: CancellationToken::new(),
        }
    }

    pub fn info(&self) -> WorkerInfo {
        WorkerInfo {
            name: self.name.clone(),
            node: self.node.clone(),
            ready: self.ready,
            terminating: self.terminating,
            chaos_opt_in: true,
        }
    }

    /// Serves balls: running, announced, not on its way out.
    pub fn live(&self) -> bool {
        self.phase == Phase::Running && self.addr.is_some() && !self.terminating
    }
}

/// A live worker's address, for the ball factory and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerAddr {
    pub name: String,
    pub node: String,
    /// Base URL, e.g. `http://127.0.1.2:40123`.
    pub url: String,
}

/// Everything the rack knows.
#[derive(Debug)]
pub struct RackState {
    pub nodes: Vec<NodeState>,
    pub workers: BTreeMap<String, WorkerState>,
    pub desired: u32,
    pub next_serial: u64,
    /// Start delay for replacements (workers created after the initial set).
    pub replacement_delay: Duration,
    /// Workers created so far that belong to the initial set.
    pub initial_left: u32,
    /// Time between a replacement's scheduling and its process start (an
    /// image pull and container creation): the fidelity test's known delay.
    pub pull_delay: Duration,
    /// The rack's cold-start baseline: the slowest created → ready of the
    /// initial workers (all started at once, so a pessimistic figure).
    pub cold_start: Option<Duration>,
    /// What the peers file last said.
    pub peers_written: Vec<WorkerAddr>,
    /// Every child not yet reaped, pid → pgid (for shutdown and Drop).
    pub children: BTreeMap<i32, Pid>,
    /// Shutting down: no new processes.
    pub stopping: bool,
}

impl RackState {
    /// The state of a rack that has not started anything yet.
    pub fn new(cfg: &LocalRackConfig) -> Self {
        let nodes = (1..=cfg.nodes)
            .map(|index| NodeState {
                index,
                name: process::node_name(index),
                agent: None,
                ready: false,
                last_sign: None,
                cordoned: false,
                fault: None,
                frozen: false,
                powered_off: false,
                kubelet_down: false,
                cut: false,
                boot_pending: false,
                generation: 0,
            })
            .collect();
        RackState {
            nodes,
            workers: BTreeMap::new(),
            desired: cfg.workers,
            next_serial: 0,
            replacement_delay: cfg.replacement_start_delay,
            initial_left: cfg.workers,
            pull_delay: Duration::ZERO,
            cold_start: None,
            peers_written: Vec::new(),
            children: BTreeMap::new(),
            stopping: false,
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// Workers that count as replicas (not terminating).
    pub fn active(&self) -> impl Iterator<Item = &WorkerState> {
        self.workers.values().filter(|w| !w.terminating)
    }

    /// The live workers, sorted by name.
    pub fn live(&self) -> Vec<WorkerAddr> {
        self.workers
            .values()
            .filter(|w| w.live())
            .filter_map(|w| {
                Some(WorkerAddr {
                    name: w.name.clone(),
                    node: w.node.clone()?,
                    url: format!("http://{}", w.addr?),
                })
            })
            .collect()
    }

    /// The live workers that answered their readiness probe, sorted by name.
    pub fn ready(&self) -> Vec<WorkerAddr> {
        let ready = |a: &WorkerAddr| self.workers.get(&a.name).is_some_and(|w| w.ready);
        self.live().into_iter().filter(ready).collect()
    }

    /// Every process group with a member still alive on `node`.
    pub fn groups_of(&self, node: &str) -> Vec<Pid> {
        let mut groups: Vec<Pid> = self
            .workers
            .values()
            .filter(|w| w.node.as_deref() == Some(node))
            .filter_map(|w| w.proc.map(|p| p.pgid))
            .chain(self.node(node).and_then(|n| n.agent.map(|p| p.pgid)))
            .collect();
        groups.sort_by_key(|p| p.as_raw());
        groups.dedup();
        groups
    }
}

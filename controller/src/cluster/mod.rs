//! The `Cluster` trait: one interface over the rack, whether the local
//! stand-in rack or k3s. The engine injects faults and reads observations only
//! through it. Events carry the monotonic instant at which the backend
//! observed them (watch event or process exit), never a polling loop's time.

pub mod k3s;
pub mod local;

use std::future::Future;
use std::time::Duration;

use rackpong_agent::proto::ChaosAction;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::model::ClusterKind;
use crate::model::Detection;

/// A node of the rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub ready: bool,
    /// Opted in to node faults (label `rackpong.dev/chaos=true` on k3s).
    pub chaos_opt_in: bool,
    /// Runs the k3s server, the broker or this controller: never faulted.
    pub protected: Option<String>,
    pub cordoned: bool,
}

/// A worker pod (or local worker process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub name: String,
    pub node: Option<String>,
    pub ready: bool,
    pub terminating: bool,
    /// Opted in to pod faults (label `rackpong.dev/chaos=true` on k3s).
    pub chaos_opt_in: bool,
}

/// How a worker is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillMode {
    /// SIGTERM / delete with the pod's grace period.
    Graceful,
    /// SIGKILL / delete with grace period 0.
    Forced,
}

/// How a node is taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFault {
    /// Through the signed agent command (`stop-k3s`, `reboot`, `net-drop`).
    Agent(ChaosAction),
    /// Cordon and drain through the API.
    CordonDrain,
    /// Cut the node from the control side (broker, controller) while it
    /// still reaches its peers: the isolated local rack only
    /// (`--isolation netns`); other backends refuse it.
    Partition,
}

/// Something the backend observed, stamped when it was observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterEvent {
    pub at: Instant,
    pub kind: ClusterEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEventKind {
    WorkerCreated {
        worker: String,
    },
    WorkerScheduled {
        worker: String,
        node: String,
    },
    WorkerRunning {
        worker: String,
        node: String,
    },
    WorkerReady {
        worker: String,
        node: String,
    },
    WorkerNotReady {
        worker: String,
        node: Option<String>,
    },
    WorkerTerminating {
        worker: String,
        node: Option<String>,
    },
    WorkerDeleted {
        worker: String,
        node: Option<String>,
    },
    NodeReady {
        node: String,
    },
    NodeNotReady {
        node: String,
    },
    /// The desired replica count changed (scale subresource or local reconcile).
    ReplicasChanged {
        replicas: u32,
    },
}

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no such worker: {0}")]
    NoSuchWorker(String),
    #[error("no such node: {0}")]
    NoSuchNode(String),
    #[error("{action} refused: {reason}")]
    Refused { action: String, reason: String },
    /// An API request failed (other than the 404/429 the caller maps).
    #[error("kubernetes API: {action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// Something the backend needs is not in the cluster.
    #[error("kubernetes API: {0} not found")]
    Missing(String),
    /// No API client could be built from the kubeconfig or the pod's account.
    #[error("kubernetes client{}: {source}", .path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Config {
        path: Option<std::path::PathBuf>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("local rack: {0}")]
    Local(#[from] local::LocalRackError),
    #[error("node command: {0}")]
    Command(#[from] k3s::CommandError),
    /// Node faults through the agent need the agents' HMAC secret.
    #[error(
        "node command: no chaos secret: node faults through the agent need the agents' HMAC secret (--chaos-secret-file; in the cluster the Secret rackpong-chaos, see docs/k3s.md)"
    )]
    NoChaosSecret,
}

/// One interface over the rack. Implemented by the local rack and by k3s.
pub trait Cluster: Send + Sync + 'static {
    /// Which rack this is, recorded in the journal.
    fn kind(&self) -> ClusterKind;
    /// What the cluster exposes about failure detection.
    fn detection(&self) -> impl Future<Output = Result<Detection, ClusterError>> + Send;
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeInfo>, ClusterError>> + Send;
    fn workers(&self) -> impl Future<Output = Result<Vec<WorkerInfo>, ClusterError>> + Send;
    /// Current desired replica count of the worker Deployment.
    fn replicas(&self) -> impl Future<Output = Result<u32, ClusterError>> + Send;
    fn kill_worker(
        &self,
        worker: &str,
        mode: KillMode,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// Takes `node` down; reversible faults come back by themselves after `down_for`.
    fn node_down(
        &self,
        node: &str,
        fault: NodeFault,
        down_for: Duration,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// Brings `node` back now (rollback): uncordon, tell the agent to restore.
    fn node_up(&self, node: &str) -> impl Future<Output = Result<(), ClusterError>> + Send;
    /// Sets the desired replica count, returning the previous one.
    fn scale(&self, replicas: u32) -> impl Future<Output = Result<u32, ClusterError>> + Send;
    /// A stream of observations from now on.
    fn subscribe(&self) -> broadcast::Receiver<ClusterEvent>;
}

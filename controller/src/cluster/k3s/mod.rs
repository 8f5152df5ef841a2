//! The k3s backend of [`Cluster`]: kube-rs watchers on the worker Pods and
//! the Nodes turned into [`ClusterEvent`]s, and faults injected through the
//! API (pod deletion, the Deployment's scale subresource, cordon + eviction)
//! or through the signed agent command ([`NodeCommander`]). Every fault is
//! recorded as a Kubernetes Event. Only pods and nodes labelled
//! `rackpong.dev/chaos=true` are ever faulted, and protected nodes never.

mod api;
mod args;
mod commander;
mod detection;
mod faults;
pub mod nodecmd;
pub(crate) mod track;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use args::K3sArgs;
pub use commander::{CommandError, NodeCommander};

use super::{Cluster, ClusterError, ClusterEvent, KillMode, NodeFault, NodeInfo, WorkerInfo};
use crate::model::Detection;

/// The label every worker pod carries (the watchers' selector).
pub const WORKER_SELECTOR: &str = "app.kubernetes.io/name=rackpong-worker";
/// Opt-in label for pod and node faults.
pub const CHAOS_LABEL: &str = "rackpong.dev/chaos";
/// A node labelled `rackpong.dev/protected=true` is never faulted.
pub const PROTECTED_LABEL: &str = "rackpong.dev/protected";
/// Failure-detection profile the rack was provisioned with (namespace or
/// Deployment annotation, written by the Ansible role; the Deployment wins).
pub const PROFILE_ANNOTATION: &str = "rackpong.dev/detection-profile";
/// The k3s server's `--node-monitor-grace-period`, e.g. `20s` (same places).
pub const GRACE_ANNOTATION: &str = "rackpong.dev/node-monitor-grace-period";
/// Marks a cordon made by rackpong, so rollback never uncordons a node an
/// operator cordoned.
pub const CORDONED_BY_ANNOTATION: &str = "rackpong.dev/cordoned-by";
/// `reportingController` of the Events rackpong writes.
pub const REPORTING_CONTROLLER: &str = "rackpong.dev/controller";

/// Where the workers live and what the controller must never touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K3sConfig {
    /// Namespace of the worker Deployment, its pods and the Events.
    pub namespace: String,
    /// Name of the worker Deployment (scale subresource, probe settings).
    pub deployment: String,
    /// Label selector of the worker pods.
    pub worker_selector: String,
    /// The controller's own node (`NODE_NAME`): never faulted.
    pub own_node: Option<String>,
    /// More nodes never faulted (the MQTT broker's node), with their reason.
    pub protected_nodes: Vec<String>,
    /// `reportingInstance` of the Events (the controller's pod name or host).
    pub instance: String,
}

impl Default for K3sConfig {
    fn default() -> Self {
        K3sConfig {
            namespace: "rackpong".into(),
            deployment: "rackpong-worker".into(),
            worker_selector: WORKER_SELECTOR.into(),
            own_node: None,
            protected_nodes: Vec::new(),
            instance: "rackpong".into(),
        }
    }
}

/// The k3s [`Cluster`].
pub struct K3sCluster {
    inner: Arc<Inner>,
    _timers: DropGuard,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) config: K3sConfig,
    pub(crate) commander: RwLock<Option<Arc<dyn NodeCommander>>>,
    pub(crate) events: broadcast::Sender<ClusterEvent>,
    pub(crate) synced: watch::Synced,
    /// Ready, non-terminating workers, as the pod watcher sees them.
    pub(crate) ready: tokio::sync::watch::Sender<Vec<String>>,
    /// Node faults in progress (rollback knows what to undo).
    pub(crate) active: Mutex<HashMap<String, NodeFault>>,
    /// Cancels the restore timers of reversible API faults when dropped.
    pub(crate) timers: CancellationToken,
}

impl Inner {
    pub(crate) fn commander(&self) -> Option<Arc<dyn NodeCommander>> {
        self.commander
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl K3sCluster {
    /// A backend over `client`. Nothing runs until [`K3sCluster::spawn_watchers`].
    pub fn new(client: Client, config: K3sConfig) -> K3sCluster {
        let timers = CancellationToken::new();
        let (events, _) = broadcast::channel(4096);
        let inner = Inner {
            client,
            config,
            commander: RwLock::new(None),
            events,
            synced: watch::Synced::default(),
            ready: tokio::sync::watch::Sender::new(Vec::new()),
            active: Mutex::new(HashMap::new()),
            timers: timers.clone(),
        };
        K3sCluster {
            inner: Arc::new(inner),
            _timers: timers.drop_guard(),
        }
    }

    /// Plugs in the agent command sender used by [`NodeFault::Agent`] faults.
    pub fn with_commander(self, commander: Arc<dyn NodeCommander>) -> K3sCluster {
        self.set_commander(commander);
        self
    }

    /// Same as [`K3sCluster::with_commander`], on a shared backend.
    pub fn set_commander(&self, commander: Arc<dyn NodeCommander>) {
        *self
            .inner
            .commander
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(commander);
    }

    pub fn config(&self) -> &K3sConfig {
        &self.inner.config
    }

    /// Starts the Pod and Node watchers; they feed [`Cluster::subscribe`]
    /// until `cancel` fires.
    pub fn spawn_watchers(&self, cancel: CancellationToken) -> JoinHandle<()> {
        watch::spawn(self.inner.clone(), cancel)
    }

    /// The PodDisruptionBudget guarding the workers, if there is one (the
    /// engine's safety rules count its allowed disruptions).
    pub async fn worker_pdb(&self) -> Result<Option<PodDisruptionBudget>, ClusterError> {
        api::worker_pdb(&self.inner).await
    }

    /// The names of the ready, non-terminating workers, kept current by the
    /// pod watcher (after its first list): the ball factory's targets.
    pub fn ready_workers(&self) -> tokio::sync::watch::Receiver<Vec<String>> {
        self.inner.ready.subscribe()
    }

    /// Resolves once both watchers have their initial list, so that every
    /// later change is reported. Call it before injecting the first fault.
    pub async fn synced(&self) {
        self.inner.synced.wait().await;
    }
}

impl Cluster for K3sCluster {
    fn kind(&self) -> crate::model::ClusterKind {
        crate::model::ClusterKind::K3s
    }

    async fn detection(&self) -> Result<Detection, ClusterError> {
        detection::read(&self.inner).await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        api::nodes(&self.inner).await
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, ClusterError> {
        api::workers(&self.inner).await
    }

    async fn replicas(&self) -> Result<u32, ClusterError> {
        api::replicas(&self.inner).await
    }

    async fn kill_worker(&self, worker: &str, mode: KillMode) -> Result<(), ClusterError> {
        faults::kill_worker(&self.inner, worker, mode).await
    }

    async fn node_down(
        &self,
        node: &str,
        fault: NodeFault,
        down_for: Duration,
    ) -> Result<(), ClusterError> {
        faults::node_down(&self.inner, node, fault, down_for).await
    }

    async fn node_up(&self, node: &str) -> Result<(), ClusterError> {
        faults::node_up(&self.inner, node).await
    }

    async fn scale(&self, replicas: u32) -> Result<u32, ClusterError> {
        faults::scale(&self.inner, replicas).await
    }

    fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.inner.events.subscribe()
    }
}

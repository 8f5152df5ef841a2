//! Command-line flags that select and configure the k3s backend, and the
//! connection to the API server (kubeconfig file, or in-cluster config).

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::{K3sCluster, K3sConfig};
use crate::cluster::ClusterError;

/// Flags of the k3s backend, `#[command(flatten)]`ed into `run` and `operator`.
#[derive(Debug, Clone, clap::Args)]
pub struct K3sArgs {
    /// Kubeconfig file; without it the usual inference applies (KUBECONFIG,
    /// ~/.kube/config, then the in-cluster service account).
    #[arg(long, env = "RACKPONG_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the file's current context).
    #[arg(long, env = "RACKPONG_KUBE_CONTEXT")]
    pub kube_context: Option<String>,

    /// Namespace of the worker Deployment, its pods and the Events written.
    #[arg(long, env = "RACKPONG_NAMESPACE", default_value = "rackpong")]
    pub namespace: String,

    /// Name of the worker Deployment.
    #[arg(long, env = "RACKPONG_DEPLOYMENT", default_value = "rackpong-worker")]
    pub deployment: String,

    /// Label selector of the worker pods.
    #[arg(long, env = "RACKPONG_WORKER_SELECTOR", default_value = super::WORKER_SELECTOR)]
    pub worker_selector: String,

    /// The node this controller runs on (never faulted); the Downward API
    /// sets NODE_NAME in the controller's pod.
    #[arg(long = "controller-node", env = "NODE_NAME")]
    pub own_node: Option<String>,

    /// Further nodes never faulted, comma separated (e.g. the MQTT broker's node).
    #[arg(long, env = "RACKPONG_PROTECTED_NODES", value_delimiter = ',')]
    pub protected_nodes: Vec<String>,

    /// reportingInstance of the Events written (the controller's pod name).
    #[arg(long, env = "POD_NAME", default_value = "rackpong")]
    pub instance: String,
}

impl K3sArgs {
    pub fn config(&self) -> K3sConfig {
        K3sConfig {
            namespace: self.namespace.clone(),
            deployment: self.deployment.clone(),
            worker_selector: self.worker_selector.clone(),
            own_node: self.own_node.clone(),
            protected_nodes: self.protected_nodes.clone(),
            instance: self.instance.clone(),
        }
    }

    /// An API client from the flags.
    pub async fn client(&self) -> Result<Client, ClusterError> {
        // kube's TLS uses the process-wide rustls provider; ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = KubeConfigOptions {
            context: self.kube_context.clone(),
            ..KubeConfigOptions::default()
        };
        let path = self.kubeconfig.clone();
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| ClusterError::Config {
            path: path.clone(),
            source: e,
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| failed(e.into()))?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| failed(e.into()))?
            }
            None if self.kube_context.is_some() => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| failed(e.into()))?,
            None => Config::infer().await.map_err(|e| failed(e.into()))?,
        };
        Client::try_from(config).map_err(|e| failed(e.into()))
    }

    /// Connects and builds the backend (watchers not started yet).
    pub async fn connect(&self) -> Result<K3sCluster, ClusterError> {
        Ok(K3sCluster::new(self.client().await?, self.config()))
    }
}

//! A run on k3s (`rackpong run --kubeconfig` and `rackpong operator`): the API watchers ([`K3sCluster`]), the signed node
//! commander (with `--chaos-secret-file`), and per run the ball factory
//! throwing at the workers' ingress (`--ingress`, a NodePort or Service URL)
//! plus the MQTT feed into the engine.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rackpong_agent::chaos::SecretError;
use rackpong_agent::mqtt::{MqttArgs, MqttError, MqttLink};
use rackpong_agent::proto::Topics;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{RigError, drive, factory_config, follow};
use crate::cluster::ClusterError;
use crate::cluster::k3s::nodecmd::{MqttNodeCommander, NodeCmdArgs};
use crate::cluster::k3s::{K3sArgs, K3sCluster};
use crate::engine::{EngineConfig, RunSummary, mqtt};
use crate::estop::client_options;
use crate::factory::{BallFactory, Entry, WorkerEndpoint};
use crate::plan::Plan;
use crate::safety::{Pdb, PdbValue};

/// How long the pod and node watchers may take to list before giving up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags of the k3s backend shared by `run` and `operator`.
#[derive(Debug, Clone, clap::Args)]
pub struct K3sRunArgs {
    #[command(flatten)]
    pub k3s: K3sArgs,
    /// MQTT broker of the rack: health, births and ball outcomes come from it.
    #[command(flatten)]
    pub mqtt: MqttArgs,
    #[command(flatten)]
    pub node_cmd: NodeCmdArgs,
    /// Base URL the ball factory throws at on k3s: the workers' NodePort or
    /// Service, e.g. http://rack.local:30080 (required on k3s).
    #[arg(long, env = "RACKPONG_INGRESS", value_name = "URL")]
    pub ingress: Option<String>,
}

/// Why the k3s backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(
        "--ingress (RACKPONG_INGRESS) is required on k3s: the base URL of the workers' NodePort or Service, e.g. http://rack.local:30080"
    )]
    NoIngress,
    #[error("--ingress {0:?}: not an http:// or https:// URL")]
    BadIngress(String),
    // No #[from]: the message already carries the cause, and anyhow would
    // print it a second time as "Caused by".
    #[error("--chaos-secret-file: {0}")]
    Secret(SecretError),
    #[error("MQTT: {0}")]
    Mqtt(MqttError),
    #[error("k3s: {0}")]
    Cluster(ClusterError),
    #[error(
        "k3s: the pod and node watchers did not list within {0:?}: is the API server reachable and may this account watch pods and nodes?"
    )]
    NotSynced(Duration),
}

/// A connected k3s rack and the controller's MQTT link, shared by every run.
pub struct K3sRig {
    pub cluster: Arc<K3sCluster>,
    link: MqttLink,
    topics: Topics,
    ingress: String,
    /// Stops the watchers and the node commander.
    stop: CancellationToken,
}

impl K3sRig {
    /// Checks the flags (nothing is touched on a bad one), connects to the
    /// API server, starts the watchers and waits until they have listed.
    pub async fn connect(
        args: &K3sRunArgs,
        cancel: &CancellationToken,
    ) -> Result<K3sRig, WireError> {
        K3sRig::connect_with(args, None, cancel).await
    }

    /// [`K3sRig::connect`] over `client` when given instead of the one the
    /// flags describe (the offline tests hand in a mock API server).
    pub async fn connect_with(
        args: &K3sRunArgs,
        client: Option<kube::Client>,
        cancel: &CancellationToken,
    ) -> Result<K3sRig, WireError> {
        let ingress = ingress(args.ingress.as_deref())?;
        let secret = args.node_cmd.secret().map_err(WireError::Secret)?;
        let topics = args.mqtt.topics();
        let client_id = format!("rackpong-controller-{}", std::process::id());
        let link_cfg = args
            .mqtt
            .link_config(&client_id, format!("{}/controller/status", topics.root()))
            .map_err(WireError::Mqtt)?;
        let cmd_opts = secret
            .as_ref()
            .map(|_| client_options(&args.mqtt, &format!("{client_id}-cmd")))
            .transpose()
            .map_err(WireError::Mqtt)?;
        let mut cluster = match client {
            Some(client) => K3sCluster::new(client, args.k3s.config()),
            None => args.k3s.connect().await.map_err(WireError::Cluster)?,
        };
        // Not a child of `cancel`: after Ctrl-C the engine still rolls back
        // through the watchers and the node commander; `shutdown` stops them.
        let stop = CancellationToken::new();
        match (secret, cmd_opts) {
            (Some(secret), Some(opts)) => {
                let timeout = args.node_cmd.node_cmd_timeout;
                let commander =
                    MqttNodeCommander::start(opts, topics.clone(), secret, timeout, stop.clone());
                cluster = cluster.with_commander(Arc::new(commander));
            }
            _ => tracing::warn!(
                "no --chaos-secret-file: node faults through the agent will be refused"
            ),
        }
        cluster.spawn_watchers(stop.clone());
        tokio::select! {
            synced = tokio::time::timeout(SYNC_TIMEOUT, cluster.synced()) => if synced.is_err() {
                stop.cancel();
                return Err(WireError::NotSynced(SYNC_TIMEOUT));
            },
            _ = cancel.cancelled() => {}
        }
        tracing::info!(namespace = %cluster.config().namespace, %ingress, "k3s watchers synced");
        Ok(K3sRig {
            cluster: Arc::new(cluster),
            link: MqttLink::start(link_cfg),
            topics,
            ingress,
            stop,
        })
    }

    /// Runs `plan` with the ball factory on the ingress and the MQTT feed;
    /// both stop when the run ends.
    pub async fn run(
        &self,
        plan: Plan,
        mut cfg: EngineConfig,
        show_progress: bool,
        cancel: CancellationToken,
    ) -> Result<RunSummary, RigError> {
        cfg.namespace = Some(self.cluster.config().namespace.clone());
        cfg.pdb = self
            .cluster
            .worker_pdb()
            .await
            .map_err(crate::engine::EngineError::from)?
            .as_ref()
            .map(pdb);
        let stop = CancellationToken::new();
        let dir = super::run_dir(&mut cfg, &plan)?;
        super::record_rack(&dir, &self.topics, &self.link, &stop);
        let (tx, inputs) = mpsc::channel(4096);
        let sub = self.link.subscribe(self.topics.all());
        let malformed = Arc::new(AtomicU64::new(0));
        tokio::spawn(mqtt::feed(
            self.topics.clone(),
            sub,
            tx.clone(),
            malformed,
            stop.clone(),
        ));
        let (targets_tx, targets) = watch::channel(Vec::new());
        // On k3s every ball enters through the ingress: targets carry names only.
        let endpoint = |name: &String| WorkerEndpoint {
            name: name.clone(),
            url: None,
        };
        let ready = self.cluster.ready_workers();
        tokio::spawn(follow(ready, endpoint, targets_tx, stop.clone()));
        let factory = BallFactory::start(
            factory_config(&plan, "k3s", Entry::Url(self.ingress.clone())),
            targets,
            &self.link,
            &self.topics,
            stop.clone(),
        );
        tokio::spawn(super::feed_outcomes(factory.outcomes(), tx, stop.clone()));
        let probe = move || factory.service_level();
        let cluster = self.cluster.clone();
        let result = drive(cluster, probe, inputs, plan, cfg, show_progress, cancel).await;
        stop.cancel();
        result
    }

    /// Stops the watchers and the node commander and flushes the MQTT link.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.link.shutdown(Duration::from_secs(1)).await;
    }
}

/// The ingress URL, checked before anything is touched.
fn ingress(raw: Option<&str>) -> Result<String, WireError> {
    let raw = raw.ok_or(WireError::NoIngress)?.trim();
    let ok = ["http://", "https://"]
        .iter()
        .any(|s| raw.strip_prefix(s).is_some_and(|rest| !rest.is_empty()));
    if !ok {
        return Err(WireError::BadIngress(raw.to_string()));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// The workers' PodDisruptionBudget as the safety rules count it.
fn pdb(p: &PodDisruptionBudget) -> Pdb {
    let spec = p.spec.as_ref();
    Pdb {
        min_available: spec
            .and_then(|s| s.min_available.as_ref())
            .and_then(pdb_value),
        max_unavailable: spec
            .and_then(|s| s.max_unavailable.as_ref())
            .and_then(pdb_value),
    }
}

fn pdb_value(v: &IntOrString) -> Option<PdbValue> {
    match v {
        IntOrString::Int(n) => u32::try_from(*n).ok().map(PdbValue::Count),
        IntOrString::String(s) => match s.strip_suffix('%') {
            Some(p) => p.trim().parse().ok().map(PdbValue::Percent),
            None => s.trim().parse().ok().map(PdbValue::Count),
        },
    }
}

#[cfg(test)]
mod tests;

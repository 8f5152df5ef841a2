//! The controller's side of node-chaos commands: signs a [`NodeCommand`] with
//! the shared secret, publishes it on `nodes/<node>/cmd` (QoS 1) and awaits
//! the agent's ack on `nodes/<node>/cmd/ack`, matched by command id, within a
//! timeout. The k3s backend only sees the [`NodeCommander`] trait (defined
//! beside it in `cluster::k3s`, re-exported here).
//!
//! An ack says `accepted: true/false` with the agent's reason; both are `Ok`
//! here (a rejection is an answer, not a transport failure). An agent that
//! accepted a command and then failed to run a step sends a second ack with
//! the same id and `accepted: false`: [`MqttNodeCommander::acks`] carries
//! every ack, including those, for the journal.
//!
//! Commands are never retained by rackpong; a retained message on a node's
//! command topic (planted by someone with write access, or left by an old
//! tool) would reach every agent on each reconnect. Agents ignore it; the
//! commander, whose login may write the command topics, also clears it with
//! an empty retained publish as soon as it sees one ([`MqttNodeCommander::retained_cleared`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use rackpong_agent::chaos::{Secret, SecretError};
use rackpong_agent::now_ms;
use rackpong_agent::proto::topics::TopicKind;
use rackpong_agent::proto::{ChaosAction, CommandAck, NodeCommand, PROTO_VERSION, Topics};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Packet, Publish, QoS};
use tokio::sync::{broadcast, oneshot, watch};
use tokio_util::sync::CancellationToken;

// One seam for every backend: the trait the k3s backend holds
// (`K3sCluster::with_commander(Arc<dyn NodeCommander>)`), implemented below.
pub use crate::cluster::k3s::{CommandError, NodeCommander};

/// The detailed error of [`MqttNodeCommander::send_command`].
#[derive(Debug, thiserror::Error)]
pub enum NodeCmdError {
    #[error("not subscribed to acks on the broker within {0:?}")]
    NotConnected(Duration),
    #[error("publishing the command: {0}")]
    Publish(#[from] rumqttc::ClientError),
    #[error("no ack for command {id} within {waited:?}")]
    NoAck { id: String, waited: Duration },
    #[error("down_for {0:?} is not a whole number of seconds ≥ 0")]
    BadDuration(Duration),
}

/// Controller flags for node commands (flattened by `run`/`demo`/`operator`).
#[derive(Debug, Clone, clap::Args)]
pub struct NodeCmdArgs {
    /// File holding the shared HMAC secret of node-chaos commands (mode 0600,
    /// the same secret as the agents'). Without it, node faults through the
    /// agent are unavailable.
    #[arg(long, env = "RACKPONG_CHAOS_SECRET_FILE", value_name = "PATH")]
    pub chaos_secret_file: Option<PathBuf>,

    /// A missing secret file disables agent node faults (they are refused,
    /// naming the secret) instead of failing. The cluster manifests set it:
    /// there the Secret `rackpong-chaos` is optional.
    #[arg(long, env = "RACKPONG_CHAOS_SECRET_OPTIONAL")]
    pub chaos_secret_optional: bool,

    /// How long to wait for a node's ack to a command.
    #[arg(long, env = "RACKPONG_NODE_CMD_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub node_cmd_timeout: Duration,
}

impl NodeCmdArgs {
    /// The secret, if a file was given (refused when open to others or a
    /// foreign group); `None` for a missing file when it is optional.
    pub fn secret(&self) -> Result<Option<Secret>, SecretError> {
        let loaded = self
            .chaos_secret_file
            .as_deref()
            .map(Secret::load)
            .transpose();
        match loaded {
            Err(SecretError::Read { path, source })
                if self.chaos_secret_optional && source.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::warn!(
                    path = %path.display(),
                    "no chaos secret (in the cluster: create Secret rackpong-chaos, see docs/k3s.md): node faults through the agent will be refused"
                );
                Ok(None)
            }
            other => other,
        }
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<CommandAck>>>>;

/// [`NodeCommander`] over its own MQTT connection (reconnects by itself).
#[derive(Debug, Clone)]
pub struct MqttNodeCommander {
    client: AsyncClient,
    topics: Topics,
    secret: Secret,
    timeout: Duration,
    pending: Pending,
    ready: watch::Receiver<bool>,
    acks: broadcast::Sender<CommandAck>,
    cleared: Arc<AtomicU64>,
}

impl MqttNodeCommander {
    /// Connects with `opts` (TLS and credentials as the caller set them) and
    /// subscribes to every node's acks; `timeout` bounds both the wait for the
    /// connection and the wait for an ack. Stops on `cancel`.
    pub fn start(
        opts: MqttOptions,
        topics: Topics,
        secret: Secret,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> Self {
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        // Nagle + delayed ACK would add ~40 ms to every command and ack.
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (ready_tx, ready) = watch::channel(false);
        let pending = Pending::default();
        let (acks, _) = broadcast::channel(256);
        let cleared = Arc::new(AtomicU64::new(0));
        let io = AckLoop {
            client: client.clone(),
            topics: topics.clone(),
            pending: pending.clone(),
            ready: ready_tx,
            acks: acks.clone(),
            cleared: cleared.clone(),
        };
        tokio::spawn(io.run(eventloop, cancel));
        Self {
            client,
            topics,
            secret,
            timeout,
            pending,
            ready,
            acks,
            cleared,
        }
    }

    /// Retained commands found on the broker and cleared so far.
    pub fn retained_cleared(&self) -> u64 {
        self.cleared.load(Ordering::Relaxed)
    }

    /// Every ack seen, including follow-up failure acks.
    pub fn acks(&self) -> broadcast::Receiver<CommandAck> {
        self.acks.subscribe()
    }

    /// Signs, publishes and awaits the ack of one command.
    pub async fn send_command(
        &self,
        node: &str,
        action: ChaosAction,
        down_for: Duration,
    ) -> Result<CommandAck, NodeCmdError> {
        if down_for.subsec_nanos() != 0 {
            return Err(NodeCmdError::BadDuration(down_for));
        }
        let mut ready = self.ready.clone();
        tokio::time::timeout(self.timeout, ready.wait_for(|r| *r))
            .await
            .ok()
            .and_then(|r| r.ok())
            .ok_or(NodeCmdError::NotConnected(self.timeout))?;
        let cmd = new_command(node, action, down_for.as_secs());
        let id = cmd.id.clone();
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(id.clone(), tx);
        let _forget = Forget {
            pending: &self.pending,
            id: &id,
        };
        let payload = serde_json::to_vec(&cmd.sign(self.secret.as_bytes()))
            .expect("a signed command always serialises");
        tracing::info!(%node, %id, action = action.as_str(), ?down_for, "sending node command");
        self.client
            .publish(self.topics.node_cmd(node), QoS::AtLeastOnce, false, payload)
            .await?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(ack)) => Ok(ack),
            _ => Err(NodeCmdError::NoAck {
                id: id.clone(),
                waited: self.timeout,
            }),
        }
    }
}

impl NodeCommander for MqttNodeCommander {
    fn send(
        &self,
        node: &str,
        action: ChaosAction,
        down_for: Duration,
    ) -> BoxFuture<'_, Result<CommandAck, CommandError>> {
        let node = node.to_string();
        Box::pin(async move {
            self.send_command(&node, action, down_for)
                .await
                .map_err(|e| CommandError {
                    node,
                    reason: e.to_string(),
                })
        })
    }
}

fn new_command(node: &str, action: ChaosAction, down_for_s: u64) -> NodeCommand {
    NodeCommand {
        v: PROTO_VERSION,
        id: format!("cmd-{:016x}", rand::random::<u64>()),
        node: node.to_string(),
        action,
        down_for_s,
        issued_ms: now_ms(),
        nonce: format!("{:032x}", rand::random::<u128>()),
    }
}

/// Drops a pending entry when its sender gives up (timeout or cancellation).
struct Forget<'a> {
    pending: &'a Pending,
    id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.pending.lock().expect("pending lock").remove(self.id);
    }
}

/// The connection task: (re)subscribes on every connect, routes acks.
struct AckLoop {
    client: AsyncClient,
    topics: Topics,
    pending: Pending,
    ready: watch::Sender<bool>,
    acks: broadcast::Sender<CommandAck>,
    cleared: Arc<AtomicU64>,
}

impl AckLoop {
    async fn run(self, mut eventloop: EventLoop, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => break,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(100);
                    let filter = self.topics.node_cmd_ack("+");
                    if let Err(e) = self.client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::error!(error = %e, "node commands: cannot subscribe to acks");
                    }
                    // To find (and clear) retained commands; our own live ones are ignored.
                    let filter = self.topics.node_cmd("+");
                    if let Err(e) = self.client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::warn!(error = %e, "node commands: cannot watch for retained commands");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    self.ready.send_replace(true);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => self.route(&p),
                Ok(_) => {}
                Err(e) => {
                    self.ready.send_replace(false);
                    tracing::warn!(error = %e, retry_in = ?backoff, "node commands: broker connection lost");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.ready.send_replace(false);
        let _ = self.client.try_disconnect();
    }

    fn route(&self, p: &Publish) {
        let (topic, payload) = (p.topic.as_str(), &p.payload[..]);
        let node = match self.topics.parse(topic) {
            Some(TopicKind::NodeCmdAck(node)) => node,
            Some(TopicKind::NodeCmd(node)) if p.retain && !payload.is_empty() => {
                return self.clear_retained(node, topic);
            }
            _ => return,
        };
        let ack: CommandAck = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%node, error = %e, "node commands: malformed ack ignored");
                return;
            }
        };
        let waiter = self.pending.lock().expect("pending lock").remove(&ack.id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(ack.clone());
            }
            None if !ack.accepted => {
                tracing::warn!(%node, id = %ack.id, reason = %ack.reason, "node command failed after its ack")
            }
            None => tracing::debug!(%node, id = %ack.id, "ack for a command nobody awaits"),
        }
        let _ = self.acks.send(ack);
    }

    /// Deletes a retained command from the broker (an empty retained publish).
    fn clear_retained(&self, node: &str, topic: &str) {
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, true, Vec::new())
        {
            Ok(()) => {
                let n = self.cleared.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(%node, %topic, cleared = n, "node commands: a retained command was on the broker (rackpong never retains commands); cleared it");
            }
            Err(e) => {
                tracing::warn!(%node, %topic, error = %e, "node commands: cannot clear a retained command")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        node_cmd: NodeCmdArgs,
    }

    fn parse(args: &[&str]) -> NodeCmdArgs {
        Flags::try_parse_from(std::iter::once("rackpong").chain(args.iter().copied()))
            .unwrap()
            .node_cmd
    }

    #[test]
    fn a_missing_secret_fails_unless_it_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("chaos.key");
        let missing = missing.to_str().unwrap();
        let err = parse(&["--chaos-secret-file", missing])
            .secret()
            .unwrap_err();
        assert!(err.to_string().contains("chaos.key"), "{err}");
        let optional = parse(&["--chaos-secret-file", missing, "--chaos-secret-optional"]);
        assert!(optional.secret().unwrap().is_none());
    }

    #[test]
    fn an_optional_secret_that_exists_is_still_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chaos.key");
        std::fs::write(&path, "k\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let args = parse(&[
            "--chaos-secret-file",
            path.to_str().unwrap(),
            "--chaos-secret-optional",
        ]);
        assert!(matches!(args.secret(), Err(SecretError::TooOpen { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(args.secret().unwrap().unwrap().as_bytes(), b"k");
    }
}

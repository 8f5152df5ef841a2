//! Publishing the rack's emergency stop, as its own short-lived MQTT client
//! (so it works with no controller running): connect, read the retained
//! estop and the nodes' retained status, pick a `seq` above the retained one
//! (and at least the wall clock in ms), publish the signed stop or clear
//! retained at QoS 1, wait for the broker's PUBACK, then collect the agents'
//! acks (same id, on `nodes/<node>/cmd/ack`) for a while. `rackpong estop`
//! and the dashboard's stop button both go through [`EstopSender::send`].

use std::collections::BTreeSet;
use std::time::Duration;

use rackpong_agent::chaos::Secret;
use rackpong_agent::mqtt::{MqttArgs, MqttError};
use rackpong_agent::now_ms;
use rackpong_agent::proto::topics::TopicKind;
use rackpong_agent::proto::{CommandAck, Estop, PROTO_VERSION, STATUS_ONLINE, SignedEstop, Topics};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport,
};
use tokio::time::Instant;

/// How long the retained messages may take to arrive after the SUBACKs
/// (brokers send them right after the SUBACK; this only bounds a slow link).
const RETAINED_GRACE: Duration = Duration::from_millis(300);

/// Why an estop could not be published.
#[derive(Debug, thiserror::Error)]
pub enum EstopError {
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    #[error("broker {broker}: {reason}")]
    Broker { broker: String, reason: String },
    #[error("broker {broker} did not answer within {waited:?} ({stage})")]
    Timeout {
        broker: String,
        waited: Duration,
        stage: &'static str,
    },
}

/// What happened to one estop.
#[derive(Debug, Clone)]
pub struct EstopOutcome {
    /// The message published (acked by the broker, now retained).
    pub estop: Estop,
    /// The retained stop it replaced, if a valid one was there.
    pub previous: Option<Estop>,
    /// The agents' acks, in arrival order.
    pub acks: Vec<CommandAck>,
    /// Nodes whose retained status was `online` and that did not ack in time
    /// (e.g. chaos not enabled on them, or not reachable).
    pub silent: Vec<String>,
}

/// Everything needed to publish an estop for one rack.
#[derive(Debug, Clone)]
pub struct EstopSender {
    pub options: MqttOptions,
    pub broker: String,
    pub topics: Topics,
    pub secret: Secret,
    /// Bounds the connection, subscription and PUBACK waits.
    pub timeout: Duration,
}

impl EstopSender {
    /// A sender over `mqtt`'s broker, credentials and TLS roots.
    pub fn new(mqtt: &MqttArgs, secret: Secret, timeout: Duration) -> Result<Self, EstopError> {
        let id = format!("rackpong-estop-{:08x}", rand::random::<u32>());
        Ok(Self {
            options: client_options(mqtt, &id)?,
            broker: mqtt.broker.to_string(),
            topics: mqtt.topics(),
            secret,
            timeout,
        })
    }

    /// Publishes a stop (`engaged`) or a clear signed by `by`, then collects
    /// acks for up to `wait` (less if every online node answered).
    pub async fn send(
        &self,
        engaged: bool,
        by: &str,
        wait: Duration,
    ) -> Result<EstopOutcome, EstopError> {
        let (client, eventloop) = AsyncClient::new(self.options.clone(), 16);
        let mut s = Session {
            sender: self,
            client,
            eventloop,
            previous: None,
            online: BTreeSet::new(),
        };
        let result = s.run(engaged, by, wait).await;
        let _ = s.client.try_disconnect();
        // Lets the DISCONNECT out; the broker drops the session either way.
        let _ = tokio::time::timeout(Duration::from_millis(200), s.eventloop.poll()).await;
        result
    }
}

struct Session<'a> {
    sender: &'a EstopSender,
    client: AsyncClient,
    eventloop: EventLoop,
    previous: Option<Estop>,
    online: BTreeSet<String>,
}

impl Session<'_> {
    async fn run(
        &mut self,
        engaged: bool,
        by: &str,
        wait: Duration,
    ) -> Result<EstopOutcome, EstopError> {
        let topics = &self.sender.topics;
        let filters = [
            topics.estop(),
            topics.node_status("+"),
            topics.node_cmd_ack("+"),
        ];
        for f in &filters {
            self.client
                .try_subscribe(f, QoS::AtLeastOnce)
                .map_err(|e| self.broker_err(e.to_string()))?;
        }
        let mut subacks = 0;
        self.poll_until("subscribing", self.sender.timeout, |p| {
            subacks += usize::from(matches!(p, Step::SubAck));
            subacks == filters.len()
        })
        .await?;
        let _ = self.poll_until("retained", RETAINED_GRACE, |_| false).await;
        let estop = self.next_estop(engaged, by);
        let payload = serde_json::to_vec(&estop.clone().sign(self.sender.secret.as_bytes()))
            .expect("an estop always serialises");
        self.client
            .try_publish(topics.estop(), QoS::AtLeastOnce, true, payload)
            .map_err(|e| self.broker_err(e.to_string()))?;
        self.poll_until("publishing", self.sender.timeout, |p| {
            matches!(p, Step::PubAck)
        })
        .await?;
        tracing::warn!(id = %estop.id, seq = estop.seq, engaged, by, "emergency stop published (retained)");
        let acks = self.collect_acks(&estop.id, wait).await;
        let acked: BTreeSet<&str> = acks.iter().map(|a| a.node.as_str()).collect();
        let silent = self
            .online
            .iter()
            .filter(|n| !acked.contains(n.as_str()))
            .cloned()
            .collect();
        Ok(EstopOutcome {
            estop,
            previous: self.previous.clone(),
            acks,
            silent,
        })
    }

    fn next_estop(&self, engaged: bool, by: &str) -> Estop {
        let floor = self
            .previous
            .as_ref()
            .map_or(0, |p| p.seq.saturating_add(1));
        let issued_ms = now_ms();
        Estop {
            v: PROTO_VERSION,
            id: format!("estop-{:016x}", rand::random::<u64>()),
            rack: self.sender.topics.rack().to_string(),
            engaged,
            seq: issued_ms.max(floor),
            issued_ms,
            by: by.to_string(),
        }
    }

    async fn collect_acks(&mut self, id: &str, wait: Duration) -> Vec<CommandAck> {
        let mut acks: Vec<CommandAck> = Vec::new();
        let online = self.online.clone();
        let _ = self
            .poll_until("acks", wait, |p| {
                if let Step::Ack(a) = p
                    && a.id == id
                {
                    acks.push(a.clone());
                }
                !online.is_empty() && online.iter().all(|n| acks.iter().any(|a| &a.node == n))
            })
            .await;
        acks
    }

    /// Polls the connection until `done` says so, or `limit` passes.
    async fn poll_until(
        &mut self,
        stage: &'static str,
        limit: Duration,
        mut done: impl FnMut(&Step) -> bool,
    ) -> Result<(), EstopError> {
        let deadline = Instant::now() + limit;
        loop {
            let event = tokio::time::timeout_at(deadline, self.eventloop.poll())
                .await
                .map_err(|_| EstopError::Timeout {
                    broker: self.sender.broker.clone(),
                    waited: limit,
                    stage,
                })?;
            let step = match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => Step::SubAck,
                Ok(Event::Incoming(Packet::PubAck(_))) => Step::PubAck,
                Ok(Event::Incoming(Packet::Publish(p))) => self.observe(&p),
                Ok(_) => Step::Other,
                Err(e) => return Err(self.broker_err(e.to_string())),
            };
            if done(&step) {
                return Ok(());
            }
        }
    }

    /// Remembers retained state; returns acks for the caller.
    fn observe(&mut self, p: &Publish) -> Step {
        match self.sender.topics.parse(&p.topic) {
            Some(TopicKind::Estop) if !p.payload.is_empty() => {
                match serde_json::from_slice::<SignedEstop>(&p.payload) {
                    Ok(s) if s.verify(self.sender.secret.as_bytes()).is_ok() => {
                        self.previous = Some(s.estop)
                    }
                    _ => tracing::warn!(
                        "the retained estop on the broker is not signed with this chaos secret; ignored"
                    ),
                }
                Step::Other
            }
            Some(TopicKind::NodeStatus(node)) => {
                if &p.payload[..] == STATUS_ONLINE.as_bytes() {
                    self.online.insert(node.to_string());
                } else {
                    self.online.remove(node);
                }
                Step::Other
            }
            Some(TopicKind::NodeCmdAck(_)) => match serde_json::from_slice(&p.payload) {
                Ok(a) => Step::Ack(a),
                Err(_) => Step::Other,
            },
            _ => Step::Other,
        }
    }

    fn broker_err(&self, reason: String) -> EstopError {
        EstopError::Broker {
            broker: self.sender.broker.clone(),
            reason,
        }
    }
}

enum Step {
    SubAck,
    PubAck,
    Ack(CommandAck),
    Other,
}

/// rumqttc options with `mqtt`'s broker, credentials and TLS roots (also
/// the k3s rig's node commander connection).
pub fn client_options(mqtt: &MqttArgs, client_id: &str) -> Result<MqttOptions, MqttError> {
    let link = mqtt.link_config(client_id, String::new())?;
    let mut o = MqttOptions::new(client_id, &link.broker.host, link.broker.port);
    o.set_keep_alive(link.keepalive);
    if let Some(user) = &link.username {
        o.set_credentials(user, link.password.clone().unwrap_or_default());
    }
    if link.broker.tls {
        let tls = rackpong_agent::mqtt::tls_client_config(link.ca_file.as_deref())?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    Ok(o)
}

//! The local node controller: listens to the node agents' MQTT status and
//! health topics, counts each live message as a life sign, marks a node
//! Ready on its first life sign and NotReady once `node_grace` passes
//! without one, and then evicts its workers (k3s's node lifecycle controller
//! with zero `not-ready`/`unreachable` toleration). Messages are stamped when
//! they arrive; the grace deadline is a timer, not a polling loop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rackpong_agent::proto::topics::TopicKind;
use rackpong_agent::proto::{HealthSample, STATUS_ONLINE, Topics};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::faults;
use super::inner::Inner;
use crate::cluster::ClusterEventKind;

/// Connects to the broker and runs the monitor; `subscribed` fires once the
/// broker acknowledged the subscription (so no agent's birth is missed).
pub fn spawn(inner: Arc<Inner>, subscribed: oneshot::Sender<()>) {
    let topics = Topics::new(&inner.cfg.rack);
    let filters = vec![
        format!("{}/nodes/+/status", topics.root()),
        format!("{}/nodes/+/health", topics.root()),
    ];
    if let Some(link) = inner.cfg.link.clone() {
        let (tx, rx) = mpsc::channel(1024);
        for f in filters {
            tokio::spawn(stamp(link.subscribe(f), tx.clone()));
        }
        // In-process: the subscription is at the router before any agent runs.
        let _ = subscribed.send(());
        tokio::spawn(watch_nodes(inner, None, topics, rx));
        return;
    }
    let id = format!(
        "rackpong-local-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let mut opts = MqttOptions::new(
        id,
        inner.cfg.broker.ip().to_string(),
        inner.cfg.broker.port(),
    );
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, el) = AsyncClient::new(opts, 16);
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(pump(
        Arc::clone(&inner),
        client.clone(),
        el,
        filters,
        tx,
        subscribed,
    ));
    tokio::spawn(watch_nodes(inner, Some(client), topics, rx));
}

/// Passes a link subscription's messages on, stamped when they arrived.
async fn stamp(mut sub: mpsc::Receiver<Publish>, tx: mpsc::Sender<(Publish, Instant)>) {
    while let Some(p) = sub.recv().await {
        if tx.send((p, Instant::now())).await.is_err() {
            return;
        }
    }
}

/// Drives the MQTT event loop, subscribing on every connection, and passes
/// each message on with the instant it arrived.
async fn pump(
    inner: Arc<Inner>,
    client: AsyncClient,
    mut el: EventLoop,
    filters: Vec<String>,
    tx: mpsc::Sender<(Publish, Instant)>,
    subscribed: oneshot::Sender<()>,
) {
    let mut subscribed = Some(subscribed);
    loop {
        let event = tokio::select! {
            ev = el.poll() => ev,
            _ = inner.cancel.cancelled() => return,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send((p, Instant::now())).await.is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for f in &filters {
                    if let Err(e) = client.try_subscribe(f.as_str(), QoS::AtLeastOnce) {
                        tracing::error!(filter = %f, error = %e, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(s) = subscribed.take() {
                    let _ = s.send(());
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "node monitor lost the broker, reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn watch_nodes(
    inner: Arc<Inner>,
    client: Option<AsyncClient>,
    topics: Topics,
    mut rx: mpsc::Receiver<(Publish, Instant)>,
) {
    loop {
        let deadline = next_deadline(&inner);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some((p, at)) => on_message(&inner, &topics, &p, at),
                None => break,
            },
            _ = sleep => expire(&inner, Instant::now()),
            _ = inner.cancel.cancelled() => break,
        }
    }
    if let Some(c) = client {
        let _ = c.try_disconnect();
    }
}

fn on_message(inner: &Arc<Inner>, topics: &Topics, p: &Publish, at: Instant) {
    // A retained message replays the past (possibly a dead agent's): not a life sign.
    if p.retain {
        return;
    }
    match topics.parse(&p.topic) {
        Some(TopicKind::NodeStatus(node)) => {
            let text = String::from_utf8_lossy(&p.payload);
            if text.trim().trim_matches('"') == STATUS_ONLINE {
                life_sign(inner, node, at);
            } else {
                tracing::debug!(%node, status = %text, "node status");
            }
        }
        Some(TopicKind::NodeHealth(node)) => {
            match serde_json::from_slice::<HealthSample>(&p.payload) {
                Ok(_) => life_sign(inner, node, at),
                Err(e) => {
                    inner.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%node, error = %e, "malformed health payload ignored");
                }
            }
        }
        _ => {}
    }
}

fn life_sign(inner: &Arc<Inner>, node: &str, at: Instant) {
    let mut st = inner.lock();
    let Some(n) = st.node_mut(node) else { return };
    // In-flight messages of a killed or frozen agent are not life, and an
    // agent whose k3s is stopped is alive but is no kubelet heartbeat.
    if n.agent.is_none() || n.frozen || n.kubelet_down {
        return;
    }
    n.last_sign = Some(at);
    if !n.ready {
        n.ready = true;
        inner.emit(
            at,
            ClusterEventKind::NodeReady {
                node: node.to_string(),
            },
        );
        drop(st);
        inner.wake.notify_one();
    }
}

fn next_deadline(inner: &Inner) -> Option<Instant> {
    let grace = inner.cfg.node_grace;
    let st = inner.lock();
    st.nodes
        .iter()
        .filter(|n| n.ready)
        .filter_map(|n| n.last_sign.map(|t| t + grace))
        .min()
}

/// Marks NotReady every Ready node silent for the grace period, and evicts its workers.
fn expire(inner: &Arc<Inner>, now: Instant) {
    let grace = inner.cfg.node_grace;
    let mut st = inner.lock();
    let silent: Vec<String> = st
        .nodes
        .iter()
        .filter(|n| n.ready && n.last_sign.is_none_or(|t| t + grace <= now))
        .map(|n| n.name.clone())
        .collect();
    for node in silent {
        if let Some(n) = st.node_mut(&node) {
            n.ready = false;
        }
        tracing::info!(%node, "node NotReady: no life sign within the grace period");
        inner.emit(now, ClusterEventKind::NodeNotReady { node: node.clone() });
        faults::evict(inner, &mut st, &node, now);
        // A node nobody can reach keeps its dead pods until it is back.
        if !st.node(&node).is_some_and(|n| n.unreachable()) {
            inner.delete_lost(&mut st, &node, now);
        }
    }
    drop(st);
    inner.wake.notify_one();
}

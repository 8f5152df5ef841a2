//! Node faults on the local rack, with the real binary and broker, each as
//! on a Pi: `stop-k3s` kills the workers and keeps the agent, `reboot` says
//! `offline` and boots after `down_for`, `power-relay` freezes the node
//! without a word; the node goes NotReady after the grace period, its
//! workers are rescheduled on Ready nodes, and it comes back after
//! `down_for` or at once on `node_up`; cordon-drain evicts gracefully.

mod local_common;

use std::time::Duration;

use local_common::*;
use rackpong_agent::proto::ChaosAction;
use rackpong_controller::cluster::{Cluster, ClusterError, NodeFault};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The workers of `node`, by name.
async fn workers_on(rack: &impl Cluster, node: &str) -> Vec<String> {
    let all = rack.workers().await.unwrap();
    all.into_iter()
        .filter(|w| w.node.as_deref() == Some(node))
        .map(|w| w.name)
        .collect()
}

/// Waits for `new` to be ready and checks it did not land on `not_on`.
async fn replacement_ready(rec: &mut Recorder, new: &str, not_on: &str) -> Instant {
    let ready = rec.worker("ready", new).await;
    assert_lifecycle(rec, new, &UP);
    let node = node_in(rec.seen("scheduled", new).unwrap());
    assert_ne!(node, Some(not_on), "{new} scheduled on the faulted node");
    rec.seen("created", new).unwrap().at.min(ready.at)
}

/// The payloads on `node`'s status topic, from a subscription that is
/// active (the retained birth arrived) when this returns.
async fn status_feed(broker: std::net::SocketAddr, node: &str) -> mpsc::UnboundedReceiver<String> {
    let id = format!("status-feed-{}", rand::random::<u32>());
    let mut opts = MqttOptions::new(id, broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(opts, 16);
    let topic = format!("rackpong/rack/nodes/{node}/status");
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                let text = String::from_utf8_lossy(&p.payload)
                    .trim_matches('"')
                    .to_string();
                if tx.send(text).is_err() {
                    return;
                }
            }
        }
    });
    let birth = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("retained birth");
    assert_eq!(birth.as_deref(), Some("online"));
    rx
}

/// Like `config`, with a keepalive so long that no Last Will can arrive
/// during the test: every `offline` seen is the agent's own, clean one.
fn config_without_will(
    nodes: u8,
    workers: u32,
) -> rackpong_controller::cluster::local::LocalRackConfig {
    let mut cfg = config(nodes, workers);
    cfg.mqtt_keepalive = Duration::from_secs(300);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_k3s_kills_the_workers_keeps_the_agent_and_the_node_goes_not_ready() {
    let cfg = config(3, 3);
    let (grace, interval) = (cfg.node_grace, cfg.node_interval);
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(3).await;
    let [victim] = <[String; 1]>::try_from(workers_on(&rack, "node2").await).expect("one per node");
    let group = node_group(&rack, "node2").unwrap();

    let (injected, down_for) = (Instant::now(), Duration::from_secs(3));
    let fault = NodeFault::Agent(ChaosAction::StopK3s);
    rack.node_down("node2", fault, down_for).await.unwrap();
    // k3s-killall.sh: the pods die, the agent that ran it does not.
    tokio::time::timeout(WAIT, async {
        while members_of(&[group].into()).len() > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("node2's worker killed");
    assert_eq!(
        members_of(&[group].into()),
        vec![group],
        "the agent runs on"
    );

    let not_ready = rec.next_node("node-not-ready", "node2").await;
    assert!(
        not_ready.at - injected >= grace - interval,
        "NotReady before the grace period"
    );
    let created = replacement_ready(&mut rec, "worker-4", "node2").await;
    assert!(
        created >= not_ready.at,
        "replaced before the node was NotReady"
    );
    let mut expected = UP.to_vec();
    expected.extend(["not-ready", "terminating", "deleted"]);
    assert_lifecycle(&rec, &victim, &expected);

    let back = rec.next_node("node-ready", "node2").await;
    assert!(back.at - injected >= down_for);
    assert!(rack.nodes().await.unwrap().iter().all(|n| n.ready));
    assert_eq!(node_group(&rack, "node2"), Some(group), "the same agent");
    let groups = groups(&rack);
    drop(rack);
    assert_all_gone(&groups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_shuts_the_node_down_cleanly_and_boots_it_after_down_for() {
    let cfg = config_without_will(2, 2);
    let broker = cfg.broker;
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(2).await;
    let group = node_group(&rack, "node2").unwrap();
    let mut status = status_feed(broker, "node2").await;

    let (injected, down_for) = (Instant::now(), Duration::from_secs(2));
    let fault = NodeFault::Agent(ChaosAction::Reboot);
    rack.node_down("node2", fault, down_for).await.unwrap();
    // No Will can fire within 1.5 x 300 s: this `offline` is the agent's own.
    let offline = tokio::time::timeout(WAIT, status.recv())
        .await
        .expect("offline");
    assert_eq!(offline.as_deref(), Some("offline"));
    assert_all_gone(&[group].into()).await;
    rec.next_node("node-not-ready", "node2").await;

    let online = tokio::time::timeout(WAIT, status.recv())
        .await
        .expect("birth");
    assert_eq!(online.as_deref(), Some("online"));
    let back = rec.next_node("node-ready", "node2").await;
    assert!(back.at - injected >= down_for, "booted before down_for");
    assert!(node_group(&rack, "node2").is_some_and(|g| g != group));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_relay_freezes_the_node_silently_and_kills_it_when_power_returns() {
    let cfg = config_without_will(2, 2);
    let broker = cfg.broker;
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(2).await;
    let victim = workers_on(&rack, "node1").await.pop().unwrap();
    let group = node_group(&rack, "node1").unwrap();
    let mut status = status_feed(broker, "node1").await;

    let fault = NodeFault::Agent(ChaosAction::PowerRelay);
    rack.node_down("node1", fault, Duration::from_secs(3))
        .await
        .unwrap();
    wait_group_state(group, "stopped", |s| s == 'T').await;
    rec.next_node("node-not-ready", "node1").await;
    rec.worker("terminating", &victim).await;
    replacement_ready(&mut rec, "worker-3", "node1").await;
    // Silence: no clean `offline`, and the frozen processes are still there.
    assert!(
        status.try_recv().is_err(),
        "a powered-off node said goodbye"
    );
    assert!(!members_of(&[group].into()).is_empty());

    // Power back: the frozen processes die, the node boots a new agent.
    rec.next_node("node-ready", "node1").await;
    rec.worker("deleted", &victim).await;
    assert_all_gone(&[group].into()).await;
    assert!(node_group(&rack, "node1").is_some_and(|g| g != group));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_evicted_and_thawed_after_down_for() {
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let victim = workers_on(&rack, "node1").await.pop().unwrap();
    let group = node_group(&rack, "node1").unwrap();

    let fault = NodeFault::Agent(ChaosAction::NetDrop);
    rack.node_down("node1", fault, Duration::from_secs(2))
        .await
        .unwrap();
    wait_group_state(group, "stopped", |s| s == 'T').await;
    rec.next_node("node-not-ready", "node1").await;
    rec.worker("terminating", &victim).await;
    replacement_ready(&mut rec, "worker-3", "node1").await;

    // Thawed: the node is back, and the evicted worker finally terminates.
    rec.next_node("node-ready", "node1").await;
    rec.worker("deleted", &victim).await;
    wait_group_state(group, "running again", |s| s != 'T').await;
    assert_eq!(
        node_group(&rack, "node1"),
        Some(group),
        "same agent, thawed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_drain_evicts_gracefully_and_node_up_uncordons() {
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let victim = workers_on(&rack, "node1").await.pop().unwrap();

    let long = Duration::from_secs(600);
    rack.node_down("node1", NodeFault::CordonDrain, long)
        .await
        .unwrap();
    rec.worker("deleted", &victim).await;
    replacement_ready(&mut rec, "worker-3", "node1").await;
    let nodes = rack.nodes().await.unwrap();
    assert!(
        nodes[0].name == "node1" && nodes[0].cordoned && nodes[0].ready,
        "{nodes:?}"
    );
    assert!(rec.find(|k| label(k) == "node-not-ready").is_none());

    let again = rack.node_down("node1", NodeFault::CordonDrain, long).await;
    assert!(
        matches!(again, Err(ClusterError::Refused { .. })),
        "{again:?}"
    );
    let unknown = rack.node_down("node9", NodeFault::CordonDrain, long).await;
    assert!(
        matches!(unknown, Err(ClusterError::NoSuchNode(_))),
        "{unknown:?}"
    );

    rack.node_up("node1").await.unwrap();
    assert!(rack.nodes().await.unwrap().iter().all(|n| !n.cordoned));
    rack.scale(3).await.unwrap();
    rec.worker("ready", "worker-4").await;
    let node = node_in(rec.seen("scheduled", "worker-4").unwrap());
    assert_eq!(node, Some("node1"), "the uncordoned node takes work again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_up_brings_a_rebooted_node_back_at_once() {
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let group = node_group(&rack, "node2").unwrap();
    let fault = NodeFault::Agent(ChaosAction::Reboot);
    rack.node_down("node2", fault, Duration::from_secs(600))
        .await
        .unwrap();
    assert_all_gone(&[group].into()).await;
    rec.next_node("node-not-ready", "node2").await;

    rack.node_up("node2").await.unwrap();
    rec.next_node("node-ready", "node2").await;
    assert!(node_group(&rack, "node2").is_some_and(|g| g != group));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_agent_is_restarted() {
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    // The agent leads its group: its pid is the group id.
    let agent = node_group(&rack, "node1").unwrap();
    let pid = nix::unistd::Pid::from_raw(agent);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();

    let restarted = tokio::time::timeout(WAIT, async {
        loop {
            match node_group(&rack, "node1") {
                Some(g) if g != agent => return g,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("node1's agent restarted");
    assert_eq!(proc_pgid(restarted), Some(restarted));
}

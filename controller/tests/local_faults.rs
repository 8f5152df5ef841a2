//! Node faults on the local rack, with the real binary and broker: a node
//! killed or frozen goes NotReady after the grace period, its workers are
//! rescheduled on Ready nodes, and it comes back after `down_for` or at once
//! on `node_up`; cordon-drain evicts gracefully.

mod local_common;

use std::time::Duration;

use local_common::*;
use rackpong_agent::proto::ChaosAction;
use rackpong_controller::cluster::{Cluster, ClusterError, ClusterEventKind as K, NodeFault};
use tokio::time::Instant;

/// The workers of `node`, by name.
async fn workers_on(rack: &impl Cluster, node: &str) -> Vec<String> {
    let all = rack.workers().await.unwrap();
    all.into_iter()
        .filter(|w| w.node.as_deref() == Some(node))
        .map(|w| w.name)
        .collect()
}

fn scheduled_on(rec: &Recorder, worker: &str) -> Option<String> {
    rec.find(|k| matches!(k, K::WorkerScheduled { worker: w, .. } if w == worker))
        .map(|e| match &e.kind {
            K::WorkerScheduled { node, .. } => node.clone(),
            _ => unreachable!(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_goes_not_ready_its_workers_move_and_it_comes_back() {
    let cfg = config(3, 3);
    let (grace, interval) = (cfg.node_grace, cfg.node_interval);
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(3).await;
    let victim = workers_on(&rack, "node2").await;
    assert_eq!(victim.len(), 1, "one worker per node");
    let victim = victim[0].clone();
    let group = node_group(&rack, "node2").unwrap();

    let injected = Instant::now();
    let down_for = Duration::from_secs(3);
    rack.node_down("node2", NodeFault::Agent(ChaosAction::StopK3s), down_for)
        .await
        .unwrap();
    assert_all_gone(&[group].into()).await;

    let not_ready = rec
        .until(
            "node2 NotReady",
            |k| matches!(k, K::NodeNotReady { node } if node == "node2"),
        )
        .await;
    assert!(
        not_ready.at - injected >= grace - interval,
        "NotReady before the grace period"
    );
    rec.wait_for(
        "replacement ready",
        |k| matches!(k, K::WorkerReady { worker, .. } if worker == "worker-4"),
    )
    .await;
    let created = rec
        .find(|k| matches!(k, K::WorkerCreated { worker } if worker == "worker-4"))
        .unwrap();
    assert!(
        created.at >= not_ready.at,
        "replaced before the node was NotReady"
    );
    assert_ne!(scheduled_on(&rec, "worker-4").as_deref(), Some("node2"));
    assert_lifecycle(
        &rec,
        &victim,
        &[
            "created",
            "scheduled",
            "running",
            "ready",
            "not-ready",
            "terminating",
            "deleted",
        ],
    );

    let back = rec
        .until(
            "node2 Ready again",
            |k| matches!(k, K::NodeReady { node } if node == "node2"),
        )
        .await;
    assert!(back.at - injected >= down_for);
    assert!(rack.nodes().await.unwrap().iter().all(|n| n.ready));
    assert_ne!(
        node_group(&rack, "node2"),
        Some(group),
        "a new agent leads a new group"
    );
    let groups = groups(&rack);
    drop(rack);
    assert_all_gone(&groups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_evicted_and_thawed_after_down_for() {
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let victim = workers_on(&rack, "node1").await.pop().unwrap();
    let group = node_group(&rack, "node1").unwrap();

    rack.node_down(
        "node1",
        NodeFault::Agent(ChaosAction::NetDrop),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    wait_group_state(group, "stopped", |s| s == 'T').await;
    rec.until(
        "node1 NotReady",
        |k| matches!(k, K::NodeNotReady { node } if node == "node1"),
    )
    .await;
    rec.wait_for(
        "victim terminating",
        |k| matches!(k, K::WorkerTerminating { worker, .. } if *worker == victim),
    )
    .await;
    rec.wait_for(
        "replacement ready",
        |k| matches!(k, K::WorkerReady { worker, .. } if worker == "worker-3"),
    )
    .await;
    assert_eq!(scheduled_on(&rec, "worker-3").as_deref(), Some("node2"));

    // Thawed: the node is back, and the evicted worker finally terminates.
    rec.until(
        "node1 Ready again",
        |k| matches!(k, K::NodeReady { node } if node == "node1"),
    )
    .await;
    rec.wait_for(
        "victim deleted",
        |k| matches!(k, K::WorkerDeleted { worker, .. } if *worker == victim),
    )
    .await;
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

    rack.node_down("node1", NodeFault::CordonDrain, Duration::from_secs(600))
        .await
        .unwrap();
    rec.wait_for(
        "victim deleted",
        |k| matches!(k, K::WorkerDeleted { worker, .. } if *worker == victim),
    )
    .await;
    rec.wait_for(
        "replacement ready",
        |k| matches!(k, K::WorkerReady { worker, .. } if worker == "worker-3"),
    )
    .await;
    assert_eq!(scheduled_on(&rec, "worker-3").as_deref(), Some("node2"));
    let node1 = rack
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.name == "node1")
        .unwrap();
    assert!(node1.cordoned && node1.ready, "{node1:?}");
    assert!(rec.find(|k| matches!(k, K::NodeNotReady { .. })).is_none());

    let again = rack
        .node_down("node1", NodeFault::CordonDrain, Duration::from_secs(1))
        .await;
    assert!(
        matches!(again, Err(ClusterError::Refused { .. })),
        "{again:?}"
    );
    let unknown = rack
        .node_down("node9", NodeFault::CordonDrain, Duration::from_secs(1))
        .await;
    assert!(
        matches!(unknown, Err(ClusterError::NoSuchNode(_))),
        "{unknown:?}"
    );

    rack.node_up("node1").await.unwrap();
    assert!(rack.nodes().await.unwrap().iter().all(|n| !n.cordoned));
    rack.scale(3).await.unwrap();
    rec.wait_for(
        "worker-4 ready",
        |k| matches!(k, K::WorkerReady { worker, .. } if worker == "worker-4"),
    )
    .await;
    assert_eq!(
        scheduled_on(&rec, "worker-4").as_deref(),
        Some("node1"),
        "the uncordoned node takes work again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_up_brings_a_rebooted_node_back_at_once() {
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let group = node_group(&rack, "node2").unwrap();
    rack.node_down(
        "node2",
        NodeFault::Agent(ChaosAction::Reboot),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    assert_all_gone(&[group].into()).await;
    rec.until(
        "node2 NotReady",
        |k| matches!(k, K::NodeNotReady { node } if node == "node2"),
    )
    .await;

    rack.node_up("node2").await.unwrap();
    rec.until(
        "node2 Ready",
        |k| matches!(k, K::NodeReady { node } if node == "node2"),
    )
    .await;
    assert!(node_group(&rack, "node2").is_some_and(|g| g != group));
}

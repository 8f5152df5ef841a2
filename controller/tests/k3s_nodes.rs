//! Node faults of the k3s backend against a mock API server: cordon + drain
//! with evictions (exact requests and bodies), a PodDisruptionBudget refusal
//! (429), the restore timer, protected and un-opted nodes refused, agent
//! commands through the NodeCommander seam, and rollback.

mod k3s_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::Method;
use k3s_support::{assert_event, fault_cluster as cluster, fixture};
use rackpong_agent::proto::{ChaosAction, CommandAck};
use rackpong_controller::cluster::k3s::{CommandError, NodeCommander};
use rackpong_controller::cluster::{Cluster, ClusterError, NodeFault};
use serde_json::json;

const POD: &str = "rackpong-worker-7d9c6b5f4d-x2x9k";

const CORDON: &str = "/api/v1/nodes/pi2?";
const PODS_ON_PI2: &str = "/api/v1/namespaces/rackpong/pods?&fieldSelector=spec.nodeName%3Dpi2&labelSelector=app.kubernetes.io%2Fname%3Drackpong-worker";

fn eviction_uri(pod: &str) -> String {
    format!("/api/v1/namespaces/rackpong/pods/{pod}/eviction?")
}

#[tokio::test]
async fn cordon_drain_marks_the_cordon_and_evicts_the_workers_on_the_node() {
    let (cluster, mut api) = cluster();
    let op = tokio::spawn(async move {
        let res = cluster
            .node_down("pi2", NodeFault::CordonDrain, Duration::from_secs(3600))
            .await;
        (res, cluster)
    });
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2.json")
        .await;
    let cordon = api.expect(Method::PATCH, CORDON).await;
    assert_eq!(
        cordon.body,
        json!({
            "metadata": { "annotations": { "rackpong.dev/cordoned-by": "rackpong" } },
            "spec": { "unschedulable": true }
        })
    );
    cordon.answer(200, fixture("node-pi2-cordoned.json"));
    api.serve(Method::GET, PODS_ON_PI2, "pods-on-pi2.json")
        .await;
    for pod in [POD, "rackpong-worker-7d9c6b5f4d-r8l4p"] {
        let evict = api.expect(Method::POST, &eviction_uri(pod)).await;
        assert_eq!(evict.body["metadata"]["name"], pod);
        evict.answer(201, fixture("status-201-eviction.json"));
    }
    let ev = api.event().await;
    assert_event(&ev, "ChaosNodeDown", "CordonDrain", "Node", "pi2");
    assert_eq!(
        ev["regarding"]["uid"], "pi2",
        "kubelet-style node reference"
    );
    let (res, cluster) = op.await.unwrap();
    res.unwrap();

    // Rollback uncordons (the node carries our mark) and removes the mark.
    let op = tokio::spawn(async move { cluster.node_up("pi2").await });
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2-cordoned.json")
        .await;
    let uncordon = api.expect(Method::PATCH, CORDON).await;
    assert_eq!(
        uncordon.body,
        json!({
            "metadata": { "annotations": { "rackpong.dev/cordoned-by": null } },
            "spec": { "unschedulable": false }
        })
    );
    uncordon.answer(200, fixture("node-pi2.json"));
    let ev = api.event().await;
    assert_event(&ev, "ChaosNodeRestored", "Restore", "Node", "pi2");
    assert_eq!(ev["type"], "Normal");
    op.await.unwrap().unwrap();
    api.assert_no_request();
}

#[tokio::test]
async fn a_drained_node_is_uncordoned_by_itself_after_down_for() {
    let (cluster, mut api) = cluster();
    let op = tokio::spawn(async move {
        let res = cluster
            .node_down("pi2", NodeFault::CordonDrain, Duration::from_millis(50))
            .await;
        (res, cluster)
    });
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2.json")
        .await;
    api.serve(Method::PATCH, CORDON, "node-pi2-cordoned.json")
        .await;
    api.serve(Method::GET, PODS_ON_PI2, "pods-on-pi2.json")
        .await;
    for pod in [POD, "rackpong-worker-7d9c6b5f4d-r8l4p"] {
        api.expect(Method::POST, &eviction_uri(pod))
            .await
            .answer(201, fixture("status-201-eviction.json"));
    }
    api.event().await;
    let (res, _cluster) = op.await.unwrap();
    res.unwrap();
    // The restore timer fires without anyone asking.
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2-cordoned.json")
        .await;
    let uncordon = api.expect(Method::PATCH, CORDON).await;
    assert_eq!(uncordon.body["spec"]["unschedulable"], false);
    uncordon.answer(200, fixture("node-pi2.json"));
    assert_event(
        &api.event().await,
        "ChaosNodeRestored",
        "Restore",
        "Node",
        "pi2",
    );
}

#[tokio::test]
async fn a_disruption_budget_refusal_stops_the_drain_and_uncordons() {
    let (cluster, mut api) = cluster();
    let op = tokio::spawn(async move {
        cluster
            .node_down("pi2", NodeFault::CordonDrain, Duration::from_secs(3600))
            .await
    });
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2.json")
        .await;
    api.serve(Method::PATCH, CORDON, "node-pi2-cordoned.json")
        .await;
    api.serve(Method::GET, PODS_ON_PI2, "pods-on-pi2.json")
        .await;
    api.expect(Method::POST, &eviction_uri(POD))
        .await
        .answer(201, fixture("status-201-eviction.json"));
    api.expect(
        Method::POST,
        &eviction_uri("rackpong-worker-7d9c6b5f4d-r8l4p"),
    )
    .await
    .answer(429, fixture("status-429-pdb.json"));
    let uncordon = api.expect(Method::PATCH, CORDON).await;
    assert_eq!(uncordon.body["spec"]["unschedulable"], false);
    uncordon.answer(200, fixture("node-pi2.json"));
    let err = op.await.unwrap().unwrap_err();
    match &err {
        ClusterError::Refused { action, reason } => {
            assert_eq!(action, "cordon-drain node pi2");
            assert!(reason.contains("refused after 1 of 2"), "{reason}");
            assert!(reason.contains("disruption budget"), "{reason}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    api.assert_no_request();
}

#[tokio::test]
async fn protected_and_unopted_nodes_are_refused_before_anything_happens() {
    let cases = [
        ("pi1", "node-pi1-server.json", "k3s server"),
        ("pi4", "node-pi4-no-opt-in.json", "rackpong.dev/chaos=true"),
    ];
    for (node, file, why) in cases {
        let (cluster, mut api) = cluster();
        let op = tokio::spawn(async move {
            cluster
                .node_down(
                    node,
                    NodeFault::Agent(ChaosAction::StopK3s),
                    Duration::from_secs(20),
                )
                .await
        });
        api.serve(Method::GET, &format!("/api/v1/nodes/{node}"), file)
            .await;
        let err = op.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, ClusterError::Refused { reason, .. } if reason.contains(why)),
            "{node}: {err}"
        );
        api.assert_no_request();
    }
}

/// Records the commands it is asked to send and answers with a set ack.
struct Recorder {
    sent: Mutex<Vec<(String, ChaosAction, Duration)>>,
    accept: bool,
}

impl NodeCommander for Recorder {
    fn send(
        &self,
        node: &str,
        action: ChaosAction,
        down_for: Duration,
    ) -> BoxFuture<'_, Result<CommandAck, CommandError>> {
        self.sent
            .lock()
            .unwrap()
            .push((node.to_string(), action, down_for));
        let ack = CommandAck {
            v: 1,
            id: "c1".into(),
            node: node.to_string(),
            accepted: self.accept,
            reason: if self.accept {
                "stopping k3s"
            } else {
                "chaos is not enabled"
            }
            .into(),
            received_ms: 1_763_757_000_000,
            started_ms: None,
            restore_by_ms: None,
        };
        async move { Ok(ack) }.boxed()
    }
}

#[tokio::test]
async fn agent_faults_go_through_the_commander_and_rollback_restores() {
    let recorder = Arc::new(Recorder {
        sent: Mutex::default(),
        accept: true,
    });
    let (cluster, mut api) = cluster();
    let cluster = cluster.with_commander(recorder.clone());
    let op = tokio::spawn(async move {
        let res = cluster
            .node_down(
                "pi2",
                NodeFault::Agent(ChaosAction::StopK3s),
                Duration::from_secs(20),
            )
            .await;
        (res, cluster)
    });
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2.json")
        .await;
    let ev = api.event().await;
    assert_event(&ev, "ChaosNodeDown", "stop-k3s", "Node", "pi2");
    let (res, cluster) = op.await.unwrap();
    res.unwrap();

    let op = tokio::spawn(async move { cluster.node_up("pi2").await });
    // Not cordoned by us: no PATCH, only the agent's restore.
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2.json")
        .await;
    assert_event(
        &api.event().await,
        "ChaosNodeRestored",
        "Restore",
        "Node",
        "pi2",
    );
    op.await.unwrap().unwrap();
    assert_eq!(
        *recorder.sent.lock().unwrap(),
        vec![
            (
                "pi2".to_string(),
                ChaosAction::StopK3s,
                Duration::from_secs(20)
            ),
            ("pi2".to_string(), ChaosAction::Restore, Duration::ZERO),
        ]
    );
}

#[tokio::test]
async fn a_rejected_agent_command_is_a_refusal_and_no_commander_is_an_error() {
    let recorder = Arc::new(Recorder {
        sent: Mutex::default(),
        accept: false,
    });
    let (cluster, mut api) = cluster();
    let cluster = cluster.with_commander(recorder);
    let op = tokio::spawn(async move {
        cluster
            .node_down(
                "pi2",
                NodeFault::Agent(ChaosAction::NetDrop),
                Duration::from_secs(20),
            )
            .await
    });
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2.json")
        .await;
    let err = op.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, ClusterError::Refused { reason, .. } if reason.contains("chaos is not enabled")),
        "{err}"
    );
    api.assert_no_request();

    let (cluster, mut api) = k3s_support::fault_cluster();
    let op = tokio::spawn(async move {
        cluster
            .node_down(
                "pi2",
                NodeFault::Agent(ChaosAction::Reboot),
                Duration::from_secs(20),
            )
            .await
    });
    api.serve(Method::GET, "/api/v1/nodes/pi2", "node-pi2.json")
        .await;
    let err = op.await.unwrap().unwrap_err();
    assert!(matches!(err, ClusterError::NoChaosSecret), "{err}");
    assert!(err.to_string().contains("--chaos-secret-file"), "{err}");
}

#[tokio::test]
async fn power_relay_is_refused_on_k3s_before_any_request_or_command() {
    let recorder = Arc::new(Recorder {
        sent: Mutex::default(),
        accept: true,
    });
    let (cluster, mut api) = cluster();
    let cluster = cluster.with_commander(recorder.clone());
    let err = cluster
        .node_down(
            "pi2",
            NodeFault::Agent(ChaosAction::PowerRelay),
            Duration::from_secs(20),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClusterError::Refused { reason, .. } if reason.contains("relay")),
        "{err}"
    );
    api.assert_no_request();
    assert!(recorder.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_partition_is_refused_on_k3s_before_any_request() {
    let (cluster, mut api) = cluster();
    let err = cluster
        .node_down("pi2", NodeFault::Partition, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("--isolation netns"), "{err}");
    // No node read, no cordon, no eviction, no Event: nothing was touched.
    api.assert_no_request();
}

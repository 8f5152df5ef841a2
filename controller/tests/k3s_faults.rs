//! Fault injection by the k3s backend against a mock API server: the exact
//! requests (method, path, query, body) for pod kills, scaling, cordon +
//! drain with evictions, the Event written for each fault, refusals
//! (opt-in, protected nodes, PodDisruptionBudget 429) and rollback.

mod k3s_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use http::Method;
use k3s_support::{fixture, mock_client};
use rackpong_agent::proto::{ChaosAction, CommandAck};
use rackpong_controller::cluster::k3s::{CommandError, K3sCluster, K3sConfig, NodeCommander};
use rackpong_controller::cluster::{Cluster, ClusterError, ClusterEventKind, KillMode, NodeFault};
use serde_json::json;

const POD: &str = "rackpong-worker-7d9c6b5f4d-x2x9k";
const POD_URI: &str = "/api/v1/namespaces/rackpong/pods/rackpong-worker-7d9c6b5f4d-x2x9k";
const SCALE_URI: &str = "/apis/apps/v1/namespaces/rackpong/deployments/rackpong-worker/scale";

fn cluster() -> (K3sCluster, k3s_support::ApiServer) {
    let (client, api) = mock_client();
    let config = K3sConfig {
        own_node: Some("pi5".into()),
        protected_nodes: vec!["pi6".into()],
        instance: "rackpong-controller-5c8d7f9b6-k2m4x".into(),
        ..K3sConfig::default()
    };
    (K3sCluster::new(client, config), api)
}

/// Checks the parts of an Event that do not depend on the clock.
fn assert_event(ev: &serde_json::Value, reason: &str, action: &str, kind: &str, name: &str) {
    assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
    assert_eq!(ev["kind"], "Event");
    assert_eq!(ev["metadata"]["generateName"], "rackpong-chaos-");
    assert_eq!(ev["metadata"]["namespace"], "rackpong");
    assert_eq!(ev["reason"], reason);
    assert_eq!(ev["action"], action);
    assert_eq!(ev["reportingController"], "rackpong.dev/controller");
    assert_eq!(
        ev["reportingInstance"],
        "rackpong-controller-5c8d7f9b6-k2m4x"
    );
    assert_eq!(ev["regarding"]["kind"], kind);
    assert_eq!(ev["regarding"]["name"], name);
    assert!(
        ev["eventTime"].as_str().is_some_and(|t| t.contains('T')),
        "{ev}"
    );
}

#[tokio::test]
async fn a_forced_kill_deletes_with_grace_period_zero_and_records_an_event() {
    let (cluster, mut api) = cluster();
    let op = tokio::spawn(async move { cluster.kill_worker(POD, KillMode::Forced).await });
    api.serve(Method::GET, POD_URI, "pod-worker.json").await;
    let delete = api.expect(Method::DELETE, &format!("{POD_URI}?")).await;
    assert_eq!(delete.body, json!({ "gracePeriodSeconds": 0 }));
    delete.answer(200, fixture("pod-worker.json"));
    let ev = api.event().await;
    assert_event(&ev, "ChaosPodKill", "ForceDelete", "Pod", POD);
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["regarding"]["namespace"], "rackpong");
    assert_eq!(
        ev["regarding"]["uid"],
        "5f1b7c2e-8a43-4d1e-9c55-2f6a1d0b7e11"
    );
    op.await.unwrap().unwrap();
    api.assert_no_request();
}

#[tokio::test]
async fn a_graceful_kill_leaves_the_grace_period_to_the_pod() {
    let (cluster, mut api) = cluster();
    let op = tokio::spawn(async move { cluster.kill_worker(POD, KillMode::Graceful).await });
    api.serve(Method::GET, POD_URI, "pod-worker.json").await;
    let delete = api.expect(Method::DELETE, &format!("{POD_URI}?")).await;
    assert_eq!(delete.body, json!({}));
    delete.answer(200, fixture("pod-worker.json"));
    assert_event(&api.event().await, "ChaosPodKill", "Delete", "Pod", POD);
    op.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_pod_without_the_opt_in_label_is_refused_and_untouched() {
    let (cluster, mut api) = cluster();
    let name = "rackpong-worker-7d9c6b5f4d-nochs";
    let op = tokio::spawn(async move { cluster.kill_worker(name, KillMode::Forced).await });
    api.serve(
        Method::GET,
        &format!("/api/v1/namespaces/rackpong/pods/{name}"),
        "pod-not-opted-in.json",
    )
    .await;
    let err = op.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, ClusterError::Refused { reason, .. } if reason.contains("rackpong.dev/chaos=true")),
        "{err}"
    );
    api.assert_no_request();
}

#[tokio::test]
async fn killing_a_missing_pod_says_so() {
    let (cluster, mut api) = cluster();
    let name = "rackpong-worker-7d9c6b5f4d-gone0";
    let op = tokio::spawn(async move { cluster.kill_worker(name, KillMode::Graceful).await });
    api.expect(
        Method::GET,
        &format!("/api/v1/namespaces/rackpong/pods/{name}"),
    )
    .await
    .answer(404, fixture("status-404-pod.json"));
    let err = op.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, ClusterError::NoSuchWorker(w) if w == name),
        "{err}"
    );
    api.assert_no_request();
}

#[tokio::test]
async fn scaling_patches_the_scale_subresource_and_reports_the_change() {
    let (cluster, mut api) = cluster();
    let mut rx = cluster.subscribe();
    let op = tokio::spawn(async move { cluster.scale(5).await });
    api.serve(Method::GET, SCALE_URI, "scale.json").await;
    let patch = api.expect(Method::PATCH, &format!("{SCALE_URI}?")).await;
    assert_eq!(patch.body, json!({ "spec": { "replicas": 5 } }));
    patch.answer(200, fixture("scale-5.json"));
    let ev = api.event().await;
    assert_event(&ev, "ChaosScale", "Scale", "Deployment", "rackpong-worker");
    assert_eq!(ev["note"], "rackpong scaled the workers from 8 to 5");
    assert_eq!(op.await.unwrap().unwrap(), 8, "returns the previous count");
    let changed = rx.try_recv().unwrap();
    assert_eq!(
        changed.kind,
        ClusterEventKind::ReplicasChanged { replicas: 5 }
    );
}

#[tokio::test]
async fn replicas_reads_the_scale_subresource() {
    let (cluster, mut api) = cluster();
    let op = tokio::spawn(async move { cluster.replicas().await });
    api.serve(Method::GET, SCALE_URI, "scale-5.json").await;
    assert_eq!(op.await.unwrap().unwrap(), 5);
}

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

    let (cluster, mut api) = self::cluster();
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
    assert!(matches!(err, ClusterError::Command(_)), "{err}");
}

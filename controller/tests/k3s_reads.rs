//! Reads of the k3s backend against a mock API server: nodes with their
//! readiness, opt-in and protection, workers, and the failure-detection
//! settings the cluster exposes (tolerations, probe, profile annotations).

mod k3s_support;

use http::Method;
use k3s_support::{ApiServer, fixture_json, mock_client};
use rackpong_controller::cluster::k3s::{K3sCluster, K3sConfig};
use rackpong_controller::cluster::{Cluster, NodeInfo, WorkerInfo};

fn cluster(own_node: &str) -> (K3sCluster, ApiServer) {
    let (client, api) = mock_client();
    let config = K3sConfig {
        own_node: Some(own_node.into()),
        protected_nodes: vec!["pi4".into()],
        ..K3sConfig::default()
    };
    (K3sCluster::new(client, config), api)
}

#[tokio::test]
async fn nodes_carry_readiness_opt_in_and_why_they_are_protected() {
    let (cluster, mut api) = cluster("pi3");
    let op = tokio::spawn(async move { cluster.nodes().await });
    api.serve(Method::GET, "/api/v1/nodes?", "nodes-list.json")
        .await;
    let nodes = op.await.unwrap().unwrap();
    let node = |name: &str, ready, chaos_opt_in, protected: Option<&str>| NodeInfo {
        name: name.into(),
        ready,
        chaos_opt_in,
        protected: protected.map(String::from),
        cordoned: false,
    };
    assert_eq!(
        nodes,
        vec![
            node(
                "pi1",
                true,
                true,
                Some("k3s server (node-role.kubernetes.io/control-plane)")
            ),
            node("pi2", true, true, None),
            node("pi3", false, true, Some("runs this controller")),
            node(
                "pi4",
                true,
                false,
                Some("configured as protected (runs the MQTT broker)")
            ),
        ]
    );
}

#[tokio::test]
async fn workers_are_the_labelled_pods_with_node_and_readiness() {
    let (cluster, mut api) = cluster("pi1");
    let op = tokio::spawn(async move { cluster.workers().await });
    api.serve(
        Method::GET,
        "/api/v1/namespaces/rackpong/pods?&labelSelector=app.kubernetes.io%2Fname%3Drackpong-worker",
        "pods-list.json",
    )
    .await;
    let workers = op.await.unwrap().unwrap();
    assert_eq!(
        workers,
        vec![
            WorkerInfo {
                name: "rackpong-worker-7d9c6b5f4d-x2x9k".into(),
                node: Some("pi2".into()),
                ready: true,
                terminating: false,
                chaos_opt_in: true,
            },
            WorkerInfo {
                name: "rackpong-worker-7d9c6b5f4d-nochs".into(),
                node: Some("pi3".into()),
                ready: true,
                terminating: false,
                chaos_opt_in: false,
            },
        ]
    );
}

const NAMESPACE: &str = "/api/v1/namespaces/rackpong";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/rackpong/deployments/rackpong-worker";
const ONE_POD: &str = "/api/v1/namespaces/rackpong/pods?&labelSelector=app.kubernetes.io%2Fname%3Drackpong-worker&limit=1";

#[tokio::test]
async fn detection_reads_tolerations_probe_and_the_namespace_profile() {
    let (cluster, mut api) = cluster("pi1");
    let op = tokio::spawn(async move { cluster.detection().await });
    api.serve(Method::GET, NAMESPACE, "namespace.json").await;
    api.serve(Method::GET, DEPLOYMENT, "deployment-worker.json")
        .await;
    // The admitted pod says 20 s (demo-fast); the answer must come from it.
    let mut pods = fixture_json("pods-list.json");
    pods["items"][0]["spec"]["tolerations"][0]["tolerationSeconds"] = 25.into();
    api.expect(Method::GET, ONE_POD)
        .await
        .answer(200, pods.to_string());
    let d = op.await.unwrap().unwrap();
    assert_eq!(d.profile, "demo-fast");
    assert_eq!(d.node_monitor_grace_s, Some(20));
    assert_eq!(d.not_ready_toleration_s, Some(25));
    assert_eq!(d.unreachable_toleration_s, Some(20));
    assert_eq!(d.readiness_period_s, Some(2));
    assert_eq!(d.readiness_failure_threshold, Some(2));
    assert_eq!(d.extra["profile_source"], "namespace");
    assert_eq!(d.extra["toleration_source"], "pod");
}

#[tokio::test]
async fn detection_prefers_the_deployment_annotation_and_kubernetes_probe_defaults() {
    let (cluster, mut api) = cluster("pi1");
    let op = tokio::spawn(async move { cluster.detection().await });
    api.serve(Method::GET, NAMESPACE, "namespace.json").await;
    api.serve(Method::GET, DEPLOYMENT, "deployment-worker-defaults.json")
        .await;
    // No worker pod yet: the template's tolerations are what we have.
    let empty = serde_json::json!({
        "kind": "PodList", "apiVersion": "v1",
        "metadata": { "resourceVersion": "1700" }, "items": []
    });
    api.expect(Method::GET, ONE_POD)
        .await
        .answer(200, empty.to_string());
    let d = op.await.unwrap().unwrap();
    assert_eq!(d.profile, "safe");
    assert_eq!(d.extra["profile_source"], "deployment");
    assert_eq!(d.readiness_period_s, Some(10));
    assert_eq!(d.readiness_failure_threshold, Some(3));
    assert_eq!(d.not_ready_toleration_s, Some(20));
    assert_eq!(d.extra["toleration_source"], "template");
}

#[tokio::test]
async fn the_worker_pdb_is_the_one_selecting_the_workers() {
    let (cluster, mut api) = cluster("pi1");
    let op = tokio::spawn(async move { cluster.worker_pdb().await });
    api.serve(
        Method::GET,
        "/apis/policy/v1/namespaces/rackpong/poddisruptionbudgets?",
        "pdbs-list.json",
    )
    .await;
    let pdb = op.await.unwrap().unwrap().expect("the workers' PDB");
    assert_eq!(pdb.metadata.name.as_deref(), Some("rackpong-worker"));
    let spec = pdb.spec.unwrap();
    assert_eq!(
        spec.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2))
    );
    assert_eq!(spec.min_available, None);
}

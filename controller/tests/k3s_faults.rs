//! Pod and replica faults of the k3s backend against a mock API server: the
//! exact requests (method, path, query, body) for pod kills and scaling, the
//! Event written for each, and refusals (opt-in, missing pod).

mod k3s_support;

use http::Method;
use k3s_support::{assert_event, fault_cluster as cluster, fixture};
use rackpong_controller::cluster::{Cluster, ClusterError, ClusterEventKind, KillMode};
use serde_json::json;

const POD: &str = "rackpong-worker-7d9c6b5f4d-x2x9k";
const POD_URI: &str = "/api/v1/namespaces/rackpong/pods/rackpong-worker-7d9c6b5f4d-x2x9k";
const SCALE_URI: &str = "/apis/apps/v1/namespaces/rackpong/deployments/rackpong-worker/scale";

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

/// A cold start on k3s: the Deployment's scale subresource to 0 and back to
/// the count before, each an exact merge patch of `spec.replicas` (0 is sent,
/// not omitted) with its Event and its replicas-changed observation.
#[tokio::test]
async fn a_cold_start_scales_the_deployment_to_zero_and_back() {
    let (cluster, mut api) = cluster();
    let cluster = std::sync::Arc::new(cluster);
    let mut rx = cluster.subscribe();
    let c = cluster.clone();
    let op = tokio::spawn(async move { c.scale(0).await });
    api.serve(Method::GET, SCALE_URI, "scale.json").await;
    let patch = api.expect(Method::PATCH, &format!("{SCALE_URI}?")).await;
    assert_eq!(patch.body, json!({ "spec": { "replicas": 0 } }));
    patch.answer(200, fixture("scale-0.json"));
    let ev = api.event().await;
    assert_event(&ev, "ChaosScale", "Scale", "Deployment", "rackpong-worker");
    assert_eq!(ev["note"], "rackpong scaled the workers from 8 to 0");
    assert_eq!(op.await.unwrap().unwrap(), 8);
    assert_eq!(
        rx.try_recv().unwrap().kind,
        ClusterEventKind::ReplicasChanged { replicas: 0 }
    );

    let c = cluster.clone();
    let op = tokio::spawn(async move { c.scale(8).await });
    api.serve(Method::GET, SCALE_URI, "scale-0-settled.json")
        .await;
    let patch = api.expect(Method::PATCH, &format!("{SCALE_URI}?")).await;
    assert_eq!(patch.body, json!({ "spec": { "replicas": 8 } }));
    patch.answer(200, fixture("scale-8-from-0.json"));
    let ev = api.event().await;
    assert_eq!(ev["note"], "rackpong scaled the workers from 0 to 8");
    assert_eq!(
        op.await.unwrap().unwrap(),
        0,
        "returns the zero it came from"
    );
    assert_eq!(
        rx.try_recv().unwrap().kind,
        ClusterEventKind::ReplicasChanged { replicas: 8 }
    );
    api.assert_no_request();
}

//! End-to-end against a real k3s cluster with the manifests applied
//! (`kubectl apply -k k3s/overlays/demo-fast`): reads, detection, a forced
//! pod kill observed through the watchers until the replacement is ready,
//! and a scale up and back, each with its Kubernetes Event. Ignored by
//! default; run with
//!   RACKPONG_E2E_KUBECONFIG=~/.kube/config \
//!     cargo test -p rackpong-controller --test k3s_e2e -- --ignored --test-threads=1
//! (RACKPONG_E2E_NAMESPACE overrides the namespace, default `rackpong`).

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::Api;
use kube::api::ListParams;
use rackpong_controller::cluster::k3s::{K3sArgs, K3sCluster, REPORTING_CONTROLLER};
use rackpong_controller::cluster::{Cluster, ClusterEvent, ClusterEventKind, KillMode};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Replacement pods on a Pi can take a while to pull and start.
const RECOVERY: Duration = Duration::from_secs(180);

fn args() -> K3sArgs {
    let kubeconfig = std::env::var_os("RACKPONG_E2E_KUBECONFIG")
        .map(PathBuf::from)
        .expect("set RACKPONG_E2E_KUBECONFIG to a kubeconfig of the test cluster");
    K3sArgs {
        kubeconfig: Some(kubeconfig),
        kube_context: None,
        namespace: std::env::var("RACKPONG_E2E_NAMESPACE").unwrap_or_else(|_| "rackpong".into()),
        deployment: "rackpong-worker".into(),
        worker_selector: rackpong_controller::cluster::k3s::WORKER_SELECTOR.into(),
        own_node: None,
        protected_nodes: Vec::new(),
        instance: "rackpong-e2e".into(),
    }
}

async fn connect() -> (K3sCluster, kube::Client) {
    let args = args();
    let client = args.client().await.expect("connect to the e2e cluster");
    (K3sCluster::new(client.clone(), args.config()), client)
}

/// Waits for the first event `pred` accepts.
async fn wait_for(
    rx: &mut broadcast::Receiver<ClusterEvent>,
    what: &str,
    mut pred: impl FnMut(&ClusterEventKind) -> bool,
) -> ClusterEvent {
    tokio::time::timeout(RECOVERY, async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev.kind) => return ev,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event stream closed"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn has_event(client: &kube::Client, ns: &str, reason: &str, name: &str) -> bool {
    let events: Api<K8sEvent> = Api::namespaced(client.clone(), ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items.iter().any(|e| {
        e.reason.as_deref() == Some(reason)
            && e.reporting_controller.as_deref() == Some(REPORTING_CONTROLLER)
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
    })
}

#[tokio::test]
#[ignore = "needs RACKPONG_E2E_KUBECONFIG (a k3s cluster with k3s/overlays applied)"]
async fn reads_and_detection_describe_the_rack() {
    let (cluster, _) = connect().await;
    let nodes = cluster.nodes().await.unwrap();
    assert!(!nodes.is_empty());
    assert!(
        nodes.iter().any(|n| n
            .protected
            .as_deref()
            .is_some_and(|p| p.starts_with("k3s server"))),
        "the k3s server is protected: {nodes:?}"
    );
    let workers = cluster.workers().await.unwrap();
    assert!(
        workers.iter().filter(|w| w.ready).count() >= 2,
        "{workers:?}"
    );
    assert!(cluster.replicas().await.unwrap() >= 2);
    let d = cluster.detection().await.unwrap();
    assert!(d.readiness_period_s.is_some(), "{d:?}");
    assert!(d.not_ready_toleration_s.is_some(), "{d:?}");
}

#[tokio::test]
#[ignore = "needs RACKPONG_E2E_KUBECONFIG (a k3s cluster with k3s/overlays applied)"]
async fn a_killed_worker_is_observed_until_its_replacement_is_ready() {
    let (cluster, client) = connect().await;
    let cancel = CancellationToken::new();
    let _watchers = cluster.spawn_watchers(cancel.clone());
    let mut rx = cluster.subscribe();
    tokio::time::timeout(RECOVERY, cluster.synced())
        .await
        .expect("watchers synced");
    let victim = cluster
        .workers()
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.ready && w.chaos_opt_in && !w.terminating)
        .expect("an opted-in ready worker");

    cluster
        .kill_worker(&victim.name, KillMode::Forced)
        .await
        .unwrap();
    // The victim's deletion and its replacement's creation race: take both
    // in either order, then the replacement's readiness.
    let (mut deleted, mut created) = (false, None);
    while !deleted || created.is_none() {
        let ev = wait_for(&mut rx, "the deletion and a replacement", |k| {
            matches!(k, ClusterEventKind::WorkerDeleted { worker, .. } if *worker == victim.name)
                || matches!(k, ClusterEventKind::WorkerCreated { .. })
        })
        .await;
        match ev.kind {
            ClusterEventKind::WorkerCreated { worker } => created = Some((worker, ev.at)),
            _ => deleted = true,
        }
    }
    let (new, created_at) = created.unwrap_or_else(|| panic!("no replacement"));
    let ready = wait_for(
        &mut rx,
        "the replacement ready",
        |k| matches!(k, ClusterEventKind::WorkerReady { worker, .. } if *worker == new),
    )
    .await;
    assert!(ready.at >= created_at);
    let ns = cluster.config().namespace.clone();
    assert!(has_event(&client, &ns, "ChaosPodKill", &victim.name).await);
    cancel.cancel();
}

#[tokio::test]
#[ignore = "needs RACKPONG_E2E_KUBECONFIG (a k3s cluster with k3s/overlays applied)"]
async fn scaling_up_creates_a_worker_and_scaling_back_restores_the_count() {
    let (cluster, client) = connect().await;
    let cancel = CancellationToken::new();
    let _watchers = cluster.spawn_watchers(cancel.clone());
    let mut rx = cluster.subscribe();
    tokio::time::timeout(RECOVERY, cluster.synced())
        .await
        .expect("watchers synced");
    let before = cluster.replicas().await.unwrap();
    assert_eq!(cluster.scale(before + 1).await.unwrap(), before);
    wait_for(&mut rx, "the new count", |k| {
        *k == ClusterEventKind::ReplicasChanged {
            replicas: before + 1,
        }
    })
    .await;
    wait_for(&mut rx, "a new worker", |k| {
        matches!(k, ClusterEventKind::WorkerCreated { .. })
    })
    .await;
    assert_eq!(cluster.scale(before).await.unwrap(), before + 1);
    wait_for(&mut rx, "a worker going away", |k| {
        matches!(k, ClusterEventKind::WorkerTerminating { .. })
    })
    .await;
    assert_eq!(cluster.replicas().await.unwrap(), before);
    let ns = cluster.config().namespace.clone();
    assert!(has_event(&client, &ns, "ChaosScale", "rackpong-worker").await);
    cancel.cancel();
}

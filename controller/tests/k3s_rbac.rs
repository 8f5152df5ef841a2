//! Least privilege, from the code: every operation the k3s backend and the
//! operator can do is driven against the fake k3s API server, which records
//! each call as the RBAC rule it needs (verb, apiGroup, resource[/sub],
//! namespaced or cluster-wide, name). The recorded set must be exactly what
//! `k3s/base/controller-rbac.yaml` grants: a call not granted fails, and so
//! does a grant no call uses.

mod k3s_fake;
mod k3s_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k3s_fake::rack::pod_name;
use k3s_fake::rbac::{Grant, allows, grants};
use k3s_fake::{ApiCall, FakeK3s, Rack};
use rackpong_agent::proto::{ChaosAction, CommandAck};
use rackpong_controller::cluster::k3s::{CommandError, K3sCluster, K3sConfig, NodeCommander};
use rackpong_controller::cluster::{Cluster, KillMode, NodeFault};
use rackpong_controller::operator::ChaosExperiment;
use rackpong_controller::operator::ChaosExperimentSpec;
use rackpong_controller::operator::reconcile::{
    self, Context, ExperimentRunner, RunHandle, RunSummary, record_failure,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// Accepts every command, as an agent with chaos enabled does.
struct Accepting;

impl NodeCommander for Accepting {
    fn send(
        &self,
        node: &str,
        _: ChaosAction,
        _: Duration,
    ) -> BoxFuture<'_, Result<CommandAck, CommandError>> {
        let ack = CommandAck {
            v: 1,
            id: "c1".into(),
            node: node.to_string(),
            accepted: true,
            reason: "done".into(),
            received_ms: 1_763_757_000_000,
            started_ms: None,
            restore_by_ms: None,
        };
        async move { Ok(ack) }.boxed()
    }
}

/// Every operation of the backend: the watchers, the reads the engine and
/// the detection make, each fault kind and its rollback, the Events.
async fn drive_backend(fake: &FakeK3s, client: kube::Client) {
    let config = K3sConfig {
        own_node: Some("pi1".into()),
        ..K3sConfig::default()
    };
    let cluster = K3sCluster::new(client, config).with_commander(Arc::new(Accepting));
    let stop = CancellationToken::new();
    cluster.spawn_watchers(stop.clone());
    tokio::time::timeout(WAIT, cluster.synced())
        .await
        .expect("watchers synced");
    cluster.detection().await.unwrap();
    assert_eq!(cluster.nodes().await.unwrap().len(), 4);
    assert_eq!(cluster.workers().await.unwrap().len(), 4);
    assert_eq!(cluster.replicas().await.unwrap(), 4);
    assert!(cluster.worker_pdb().await.unwrap().is_some());
    let victim = pod_name("x2x9k");
    cluster
        .kill_worker(&victim, KillMode::Graceful)
        .await
        .unwrap();
    cluster
        .kill_worker(&pod_name("k7s2d"), KillMode::Forced)
        .await
        .unwrap();
    assert_eq!(cluster.scale(5).await.unwrap(), 4);
    assert_eq!(cluster.scale(4).await.unwrap(), 5);
    // The budget allows the drain once the replacements are Ready.
    fake.until("four ready workers", |r| r.healthy() == 4).await;
    let long = Duration::from_secs(600);
    cluster
        .node_down("pi2", NodeFault::CordonDrain, long)
        .await
        .unwrap();
    cluster.node_up("pi2").await.unwrap();
    for action in [
        ChaosAction::StopK3s,
        ChaosAction::Reboot,
        ChaosAction::NetDrop,
    ] {
        cluster
            .node_down("pi3", NodeFault::Agent(action), long)
            .await
            .unwrap();
        cluster.node_up("pi3").await.unwrap();
    }
    stop.cancel();
    let reasons: BTreeSet<String> = fake
        .rack()
        .events
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        reasons,
        [
            "ChaosNodeDown",
            "ChaosNodeRestored",
            "ChaosPodKill",
            "ChaosScale"
        ]
        .map(String::from)
        .into()
    );
}

/// Ends every run at once, successfully.
struct Instant;

impl ExperimentRunner for Instant {
    fn start(
        &self,
        _: &str,
        _: &ChaosExperimentSpec,
        _: CancellationToken,
    ) -> Result<RunHandle, String> {
        let summary = RunSummary {
            phase: rackpong_controller::operator::Phase::Succeeded,
            faults_injected: 1,
            faults_refused: 0,
            message: None,
        };
        Ok(RunHandle {
            run_id: "20261121-2048-pod-kill".into(),
            done: async move { summary }.boxed(),
        })
    }
}

/// The operator's reconcile loop: an experiment applied, run (finalizer,
/// status), then deleted (cleanup, finalizer released).
async fn drive_operator(fake: &FakeK3s, client: kube::Client) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../k3s/examples/pod-kill.yaml");
    let mut exp: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    exp["metadata"]["namespace"] = "rackpong".into();
    exp["metadata"]["uid"] = "7e1f3a9c-2b4d-4c6e-8f10-a2b3c4d5e6f7".into();
    exp["metadata"]["generation"] = 1.into();
    exp["metadata"]["creationTimestamp"] = "2026-11-21T20:48:00Z".into();
    let name = exp["metadata"]["name"].as_str().unwrap().to_string();
    fake.rack().add_experiment(exp.clone());
    let ctx = Arc::new(Context::new(
        client,
        "rackpong",
        "rackpong-operator-0",
        Arc::new(Instant),
    ));
    // A reconcile that keeps failing: a Warning Event, then its series.
    let failing: ChaosExperiment = serde_json::from_value(exp.clone()).unwrap();
    for _ in 0..2 {
        record_failure(&failing, "etcdserver: request timed out".into(), &ctx).await;
    }
    let failed = fake
        .rack()
        .events
        .iter()
        .filter(|e| e["reason"] == "ReconcileFailed")
        .count();
    assert_eq!(failed, 1, "the repeat is a series on the same Event");
    let stop = CancellationToken::new();
    let op = tokio::spawn(reconcile::run(ctx, stop.clone()));
    fake.until("the experiment to succeed", |r| {
        r.experiments[&name]["status"]["phase"] == "Succeeded"
    })
    .await;
    fake.rack().delete_experiment(&name);
    fake.until("the finalizer to be released", |r| {
        !r.experiments.contains_key(&name)
    })
    .await;
    stop.cancel();
    tokio::time::timeout(WAIT, op)
        .await
        .expect("operator stopped")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_is_granted_exactly_the_calls_it_makes() {
    let workers = [
        ("x2x9k", "pi2"),
        ("n4p8r", "pi2"),
        ("k7s2d", "pi3"),
        ("m3j6w", "pi3"),
    ];
    let (client, fake) = FakeK3s::start(Rack::new(&workers));
    drive_backend(&fake, client.clone()).await;
    drive_operator(&fake, client).await;
    let calls = fake.calls();
    fake.stop();
    let grants = grants();
    let denied: BTreeSet<&ApiCall> = calls
        .iter()
        .filter(|c| !grants.iter().any(|g| allows(g, c)))
        .collect();
    assert!(
        denied.is_empty(),
        "calls the Role does not grant: {denied:#?}"
    );
    let unused: Vec<&Grant> = grants
        .iter()
        .filter(|g| !calls.iter().any(|c| allows(g, c)))
        .collect();
    assert!(unused.is_empty(), "grants no call uses: {unused:#?}");
    for r in fake.requests() {
        let path = r.uri.split('?').next().unwrap();
        if path.contains("/namespaces/") && path.matches('/').count() > 4 {
            assert!(
                path.contains("/namespaces/rackpong/"),
                "outside the namespace: {}",
                r.uri
            );
        }
    }
}

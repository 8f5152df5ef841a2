//! Watch overhead of the k3s backend: a watch stream of 1,000 realistic pod
//! events (250 pods, each created, scheduled, running, ready) goes through
//! kube-runtime's watcher, the pod tracker and the broadcast channel; the
//! time from the response being handed to the client until the 1,000th
//! ClusterEvent is received is measured (the setup and initial lists are
//! not). Run: `cargo bench -p rackpong-controller --bench k3s_watch`.

#[path = "../tests/k3s_support/mod.rs"]
mod k3s_support;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::Method;
use rackpong_controller::cluster::Cluster;
use rackpong_controller::cluster::k3s::{K3sCluster, K3sConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const PODS: usize = 250;
const EVENTS: usize = PODS * 4;

/// A watch event type and the change it makes to the pod.
type Stage = (&'static str, fn(&mut Value));

/// One watch body: every pod goes Pending → scheduled → Running → Ready.
fn stream() -> String {
    let base = k3s_support::fixture_json("pod-worker.json");
    let mut out = String::new();
    let mut rv = 2000;
    for i in 0..PODS {
        let mut pod = base.clone();
        pod["metadata"]["name"] = format!("rackpong-worker-7d9c6b5f4d-{i:05}").into();
        let stages: [Stage; 4] = [
            ("ADDED", |p| {
                p["spec"].as_object_mut().unwrap().remove("nodeName");
                p["status"] = json!({ "phase": "Pending", "conditions": [] });
            }),
            ("MODIFIED", |p| p["spec"]["nodeName"] = "pi2".into()),
            ("MODIFIED", |p| {
                let b = k3s_support::fixture_json("pod-worker.json");
                p["status"] = b["status"].clone();
                p["status"]["conditions"][2]["status"] = "False".into();
            }),
            ("MODIFIED", |p| {
                p["status"]["conditions"][2]["status"] = "True".into()
            }),
        ];
        for (kind, stage) in stages {
            stage(&mut pod);
            rv += 1;
            pod["metadata"]["resourceVersion"] = rv.to_string().into();
            out.push_str(&json!({ "type": kind, "object": pod }).to_string());
            out.push('\n');
        }
    }
    out
}

const EMPTY_PODS: &str =
    r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1999"},"items":[]}"#;
const EMPTY_NODES: &str =
    r#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"1999"},"items":[]}"#;

/// One measured run: the time from handing over the stream to the last event.
async fn once(body: String) -> Duration {
    let (client, mut api) = k3s_support::mock_client();
    let cluster = K3sCluster::new(client, K3sConfig::default());
    let mut rx = cluster.subscribe();
    let cancel = CancellationToken::new();
    let task = cluster.spawn_watchers(cancel.clone());
    let mut open = Vec::new();
    let mut pod_watch = None;
    while pod_watch.is_none() || open.is_empty() {
        let call = api.next().await;
        assert_eq!(call.method, Method::GET);
        match (
            call.uri.starts_with("/api/v1/nodes"),
            call.uri.contains("watch=true"),
        ) {
            (true, false) => call.answer(200, EMPTY_NODES),
            (false, false) => call.answer(200, EMPTY_PODS),
            (true, true) => open.push(call),
            (false, true) => pod_watch = Some(call),
        }
    }
    let start = Instant::now();
    pod_watch.unwrap().answer(200, body);
    for _ in 0..EVENTS {
        rx.recv().await.unwrap();
    }
    let took = start.elapsed();
    cancel.cancel();
    task.await.unwrap();
    took
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = stream();
    let mut group = c.benchmark_group("k3s_watch");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);
    group.bench_function("1000_pod_events_to_cluster_events", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(once(body.clone()))).sum())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The Pod and Node watchers against a mock API server fed with a realistic
//! k3s 1.33 watch stream: a replacement pod's lifecycle and the old pod's
//! deletion come out as ClusterEvents in order, once each, stamped when the
//! watch event arrived; a node going Unknown and back gives NotReady/Ready.

mod k3s_support;

use std::time::Duration;

use http::Method;
use k3s_support::{ApiServer, Call, fixture, mock_client};
use rackpong_controller::cluster::k3s::{K3sCluster, K3sConfig};
use rackpong_controller::cluster::{Cluster, ClusterEvent, ClusterEventKind};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const OLD: &str = "rackpong-worker-7d9c6b5f4d-x2x9k";
const NEW: &str = "rackpong-worker-7d9c6b5f4d-qm7tz";
const POD_LIST: &str = "/api/v1/namespaces/rackpong/pods?&labelSelector=app.kubernetes.io%2Fname%3Drackpong-worker&limit=500";
const NODE_LIST: &str = "/api/v1/nodes?&limit=500";

fn pod_watch(rv: u32) -> String {
    format!(
        "/api/v1/namespaces/rackpong/pods?&watch=true&timeoutSeconds=290&labelSelector=app.kubernetes.io%2Fname%3Drackpong-worker&allowWatchBookmarks=true&resourceVersion={rv}"
    )
}

fn node_watch(rv: u32) -> String {
    format!(
        "/api/v1/nodes?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={rv}"
    )
}

/// Answers the pod and node watchers, which ask concurrently in any order.
/// Each side's requests come in the scripted order; the last request of each
/// script is returned unanswered (a watch still open).
struct Router {
    pods: Vec<(String, Option<String>)>,
    nodes: Vec<(String, Option<String>)>,
    open: Vec<Call>,
}

impl Router {
    /// Serves requests until both scripts are spent.
    async fn run(&mut self, api: &mut ApiServer) {
        while !(self.pods.is_empty() && self.nodes.is_empty()) {
            let call = api.next().await;
            assert_eq!(call.method, Method::GET);
            let script = if call.uri.starts_with("/api/v1/nodes") {
                &mut self.nodes
            } else {
                &mut self.pods
            };
            assert!(!script.is_empty(), "unscripted request {}", call.uri);
            let (uri, answer) = script.remove(0);
            assert_eq!(call.uri, uri);
            match answer {
                Some(body) => call.answer(200, body),
                None => self.open.push(call),
            }
        }
    }
}

async fn next_event(rx: &mut broadcast::Receiver<ClusterEvent>) -> ClusterEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no cluster event in time")
        .expect("event channel closed")
}

fn worker(name: &str) -> String {
    name.to_string()
}

#[tokio::test]
async fn a_pod_lifecycle_becomes_ordered_cluster_events() {
    let (client, mut api) = mock_client();
    let cluster = K3sCluster::new(client, K3sConfig::default());
    let mut rx = cluster.subscribe();
    let mut ready = cluster.ready_workers();
    let cancel = CancellationToken::new();
    let task = cluster.spawn_watchers(cancel.clone());

    // Initial lists and the first watch streams.
    let mut router = Router {
        pods: vec![
            (POD_LIST.into(), Some(fixture("watch/pods-initial.json"))),
            (pod_watch(1400), Some(fixture("watch/pods-1.jsonl"))),
            (pod_watch(1406), None),
        ],
        nodes: vec![
            (NODE_LIST.into(), Some(fixture("watch/nodes-initial.json"))),
            (node_watch(1500), Some(fixture("watch/nodes-1.jsonl"))),
            (node_watch(1504), None),
        ],
        open: Vec::new(),
    };
    router.run(&mut api).await;
    tokio::time::timeout(Duration::from_secs(10), cluster.synced())
        .await
        .expect("watchers synced");

    // Pod events keep their order; node events interleave in any order.
    let mut pod_events = Vec::new();
    let mut node_events = Vec::new();
    while pod_events.len() < 3 || node_events.len() < 2 {
        let ev = next_event(&mut rx).await;
        match ev.kind {
            ClusterEventKind::NodeReady { .. } | ClusterEventKind::NodeNotReady { .. } => {
                node_events.push(ev.kind)
            }
            other => pod_events.push((ev.at, other)),
        }
    }
    let pi3 = || "pi3".to_string();
    assert_eq!(
        pod_events
            .iter()
            .map(|(_, k)| k.clone())
            .collect::<Vec<_>>(),
        vec![
            ClusterEventKind::WorkerCreated {
                worker: worker(NEW)
            },
            ClusterEventKind::WorkerScheduled {
                worker: worker(NEW),
                node: pi3()
            },
            ClusterEventKind::WorkerRunning {
                worker: worker(NEW),
                node: pi3()
            },
        ]
    );
    // The heartbeat-only MODIFIED of pi3 emits nothing; Unknown is not ready.
    assert_eq!(
        node_events,
        vec![
            ClusterEventKind::NodeNotReady { node: pi3() },
            ClusterEventKind::NodeReady { node: pi3() },
        ]
    );

    // Only the initial, ready pod takes balls so far.
    assert_eq!(*ready.borrow_and_update(), [worker(OLD)]);

    // The watch is resumed from the last resourceVersion; its events are
    // stamped when they arrive, after this instant.
    let before_second_stream = Instant::now();
    assert!(pod_events.iter().all(|(at, _)| *at <= before_second_stream));
    let open_pod_watch = router.open.remove(0);
    let open_pod_watch = if open_pod_watch.uri.starts_with("/api/v1/nodes") {
        router.open.push(open_pod_watch);
        router.open.remove(0)
    } else {
        open_pod_watch
    };
    open_pod_watch.answer(200, fixture("watch/pods-2.jsonl"));
    let mut rest = Vec::new();
    while rest.len() < 4 {
        let ev = next_event(&mut rx).await;
        assert!(ev.at >= before_second_stream, "stamped on arrival");
        rest.push(ev.kind);
    }
    let pi2 = Some("pi2".to_string());
    assert_eq!(
        rest,
        vec![
            ClusterEventKind::WorkerReady {
                worker: worker(NEW),
                node: pi3()
            },
            ClusterEventKind::WorkerTerminating {
                worker: worker(OLD),
                node: pi2.clone()
            },
            ClusterEventKind::WorkerNotReady {
                worker: worker(OLD),
                node: pi2.clone()
            },
            ClusterEventKind::WorkerDeleted {
                worker: worker(OLD),
                node: pi2
            },
        ]
    );
    // The replacement took over as the only ready worker.
    tokio::time::timeout(
        Duration::from_secs(10),
        ready.wait_for(|r| *r == [worker(NEW)]),
    )
    .await
    .expect("the replacement is the only ready worker")
    .unwrap();
    // The stream ended after its BOOKMARK: the watcher resumes from 1411.
    let resumed = api.next().await;
    assert_eq!(resumed.uri, pod_watch(1411));
    assert!(rx.try_recv().is_err(), "each transition is emitted once");

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("watchers stop on cancel")
        .unwrap();
}

#[tokio::test]
async fn an_expired_watch_relists_and_reports_what_changed_meanwhile() {
    let (client, mut api) = mock_client();
    let cluster = K3sCluster::new(client, K3sConfig::default());
    let mut rx = cluster.subscribe();
    let cancel = CancellationToken::new();
    let task = cluster.spawn_watchers(cancel.clone());
    // The watch answers 410 Expired: the watcher lists again, and the diff
    // against what we knew is reported (the old pod went, a new one is ready).
    let mut router = Router {
        pods: vec![
            (POD_LIST.into(), Some(fixture("watch/pods-initial.json"))),
            (pod_watch(1400), Some(fixture("watch/pods-expired.jsonl"))),
            (POD_LIST.into(), Some(fixture("watch/pods-relist.json"))),
            (pod_watch(1650), None),
        ],
        nodes: vec![
            (NODE_LIST.into(), Some(fixture("watch/nodes-initial.json"))),
            (node_watch(1500), None),
        ],
        open: Vec::new(),
    };
    router.run(&mut api).await;
    let mut got = Vec::new();
    while got.len() < 5 {
        got.push(next_event(&mut rx).await.kind);
    }
    let pi3 = || "pi3".to_string();
    assert_eq!(
        got,
        vec![
            ClusterEventKind::WorkerCreated {
                worker: worker(NEW)
            },
            ClusterEventKind::WorkerScheduled {
                worker: worker(NEW),
                node: pi3()
            },
            ClusterEventKind::WorkerRunning {
                worker: worker(NEW),
                node: pi3()
            },
            ClusterEventKind::WorkerReady {
                worker: worker(NEW),
                node: pi3()
            },
            ClusterEventKind::WorkerDeleted {
                worker: worker(OLD),
                node: Some("pi2".into())
            },
        ]
    );
    assert!(rx.try_recv().is_err());
    cancel.cancel();
    task.await.unwrap();
}

//! A whole `rackpong run --kubeconfig` offline: the CLI's own run function
//! (plan file, k3s rig, engine, rollback) against the fake k3s 1.33 API
//! server of `k3s_fake`, with the embedded MQTT broker and real in-process
//! workers, one per fake pod and named after it (a worker is stopped when its
//! pod is deleted; the peers file lists the pods that exist, as the headless
//! Service's DNS would). The ingress is one more worker standing in for the
//! NodePort. The journal's recovery milestones must come from the fake's
//! watch events, the report must show them, and the rollback must PATCH the
//! replicas and the cordon back.

mod k3s_fake;
mod k3s_support;
#[path = "../../agent/tests/worker_support/mod.rs"]
mod worker_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use http::Method;
use k3s_fake::rack::{NEW_NAMES, pod_name};
use k3s_fake::{FakeK3s, Rack};
use rackpong_controller::cmd::run::{RunArgs, RunResult, run_with};
use rackpong_controller::engine::RunSummary;
use rackpong_controller::journal::event::Event;
use rackpong_controller::journal::{JOURNAL_FILE, read_journal};
use rackpong_controller::model::Milestone;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use worker_support::{TestWorker, args, broker, spawn_worker, wait_ready, write_peers};

const RACK: &str = "k3soff";
const INITIAL: [(&str, &str); 4] = [
    ("x2x9k", "pi2"),
    ("n4p8r", "pi2"),
    ("k7s2d", "pi3"),
    ("m3j6w", "pi3"),
];

// Generous timeouts: this asserts what was observed and undone, not speed,
// and the machine may be stalled by other work (2 shared cores).
const PLAN: &str = "\
name: k3s-offline
seed: 7
duration: 8s
steady-state: {min-ready-workers: 2, min-delivery-rate: 0.5, window: 2s}
safety: {max-unavailable: 2, namespaces: [rackpong], opt-in-label: rackpong.dev/chaos=true}
recovery-timeout: 30s
balls: {rate-per-s: 20, ttl: 32, timeout: 10s}
faults:
  - {name: pod-kill, at: 1s, pod-kill: {count: 1, mode: graceful}}
  - {name: drain, at: 3s, node-kill: {action: cordon-drain, down-for: 60s}}
  - {name: rescale, at: 5s, scale: {min: 6, max: 6}}
";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

/// Keeps the peers file equal to the live pods and stops the workers of
/// deleted pods, until `stop`.
async fn follow_pods(
    fake: FakeK3s,
    mut workers: BTreeMap<String, TestWorker>,
    peers: std::path::PathBuf,
    stop: CancellationToken,
) {
    let mut live = fake.live_pods();
    loop {
        let now: BTreeSet<String> = live.borrow_and_update().clone();
        let urls: Vec<&str> = workers
            .iter()
            .filter(|(n, _)| now.contains(*n))
            .map(|(_, w)| w.url.as_str())
            .collect();
        write_peers(&peers, &urls);
        let gone: Vec<String> = workers
            .keys()
            .filter(|n| !now.contains(*n) && fake.rack().ever_created(n))
            .cloned()
            .collect();
        for n in gone {
            if let Some(w) = workers.remove(&n) {
                w.cancel.cancel();
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            r = live.changed() => if r.is_err() { break },
        }
    }
    for w in workers.values() {
        w.cancel.cancel();
    }
}

fn journal_of(dir: &Path) -> Vec<rackpong_controller::journal::event::JournalLine> {
    read_journal(&dir.join(JOURNAL_FILE)).unwrap().lines
}

/// Runs `plan_text` through the CLI's run function against a fresh fake
/// k3s with real workers for every pod it may create.
async fn run_offline(plan_text: &str) -> (RunSummary, FakeK3s, tempfile::TempDir) {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let peers = dir.path().join("peers");
    write_peers(&peers, &[]);
    let mut workers = BTreeMap::new();
    let names = INITIAL
        .iter()
        .map(|(s, _)| pod_name(s))
        .chain(NEW_NAMES.iter().take(7).map(|s| pod_name(s)));
    for name in names {
        let w = spawn_worker(args(&name, &broker, RACK, &peers)).await;
        workers.insert(name, w);
    }
    let ingress = spawn_worker(args("rackpong-nodeport", &broker, RACK, &peers)).await;
    let (client, fake) = FakeK3s::start(Rack::new(&INITIAL));
    let stop = CancellationToken::new();
    let follow = tokio::spawn(follow_pods(fake.clone(), workers, peers, stop.clone()));
    wait_ready(&ingress.url).await;

    let plan = dir.path().join("k3s-offline.yaml");
    std::fs::write(&plan, plan_text).unwrap();
    let runs = dir.path().join("runs");
    let cli = Cli::try_parse_from([
        "rackpong",
        plan.to_str().unwrap(),
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--broker",
        &broker.url(),
        "--rack",
        RACK,
        "--ingress",
        &ingress.url,
        "--runs-dir",
        runs.to_str().unwrap(),
    ])
    .unwrap();
    let ran = tokio::time::timeout(
        Duration::from_secs(120),
        run_with(cli.run, Some(client), CancellationToken::new()),
    )
    .await
    .expect("the run ended in time")
    .unwrap_or_else(|e| panic!("{e}"));
    stop.cancel();
    ingress.cancel.cancel();
    follow.await.unwrap();
    let RunResult::Ran(summary) = ran else {
        panic!("not a run")
    };
    (summary, fake, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_k3s_run_is_observed_through_watch_events_and_rolled_back() {
    let (summary, fake, _dir) = run_offline(PLAN).await;
    println!("{}", summary.table());
    assert_eq!(summary.failures(), Vec::<String>::new());

    assert_milestones(&summary.run_dir, &fake);
    assert_rollback(&fake);
    assert_events(&fake);
    let grants = k3s_fake::rbac::grants();
    for call in fake.calls() {
        assert!(
            grants.iter().any(|g| k3s_fake::rbac::allows(g, &call)),
            "the controller's Role does not allow {call:?}"
        );
    }
    let verdict = rackpong_controller::report::render_run(&summary.run_dir).unwrap();
    assert!(verdict.passed, "{verdict:?}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(summary.run_dir.join("report.json")).unwrap())
            .unwrap();
    let kill = &report["faults"][0];
    assert_eq!(kill["kind"], "pod-kill", "{report:#}");
    let seen: Vec<&str> = kill["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["milestone"].as_str().unwrap())
        .collect();
    for m in ["replacement-created", "scheduled", "running", "ready"] {
        assert!(seen.contains(&m), "{m} missing from the report: {kill:#}");
    }
    assert_eq!(kill["outcome"], "recovered");
    fake.stop();
}

/// The pod kill's milestones, in order, are the fake's replacement pod as
/// the watch events showed it.
fn assert_milestones(run_dir: &Path, fake: &FakeK3s) {
    let lines = journal_of(run_dir);
    let first_new = pod_name(NEW_NAMES[0]);
    let kill_id = lines
        .iter()
        .find_map(|l| match &l.event {
            Event::FaultInjected(f) if f.fault == "pod-kill" => Some(f.fault_id.clone()),
            _ => None,
        })
        .expect("the pod kill was injected");
    let got: Vec<(Milestone, u64, String, Option<String>)> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::Milestone(m) if m.fault_id == kill_id => {
                Some((m.milestone, l.t_ms, m.source.clone(), m.subject.clone()))
            }
            _ => None,
        })
        .collect();
    let wanted = [
        Milestone::ReplacementCreated,
        Milestone::Scheduled,
        Milestone::Running,
        Milestone::Ready,
    ];
    let mut last = 0;
    for w in wanted {
        let (_, t, source, subject) = got
            .iter()
            .find(|(m, ..)| *m == w)
            .unwrap_or_else(|| panic!("{w:?} missing: {got:?}"));
        assert_eq!(source, "watch-pod", "{got:?}");
        assert_eq!(subject.as_deref(), Some(first_new.as_str()), "{got:?}");
        assert!(*t >= last, "milestones out of order: {got:?}");
        last = *t;
    }
    assert!(fake.rack().ever_created(&first_new));
    assert!(
        lines
            .iter()
            .any(|l| matches!(&l.event, Event::RunEnded { .. })),
        "the journal is finished"
    );
}

/// Scale to 6 and back to 4; cordon one node, evict its two workers, and
/// uncordon it on rollback: the exact PATCH bodies, and the rack as found.
fn assert_rollback(fake: &FakeK3s) {
    let reqs = fake.requests();
    let scale = "/apis/apps/v1/namespaces/rackpong/deployments/rackpong-worker/scale?";
    let scales: Vec<&Value> = reqs
        .iter()
        .filter(|r| r.method == Method::PATCH && r.uri == scale)
        .map(|r| &r.body)
        .collect();
    assert_eq!(
        scales,
        [
            &json!({"spec": {"replicas": 6}}),
            &json!({"spec": {"replicas": 4}})
        ]
    );
    let cordons: Vec<(&str, &Value)> = reqs
        .iter()
        .filter(|r| r.method == Method::PATCH && r.uri.starts_with("/api/v1/nodes/"))
        .map(|r| (r.uri.as_str(), &r.body))
        .collect();
    assert_eq!(cordons.len(), 2, "{cordons:?}");
    let node = cordons[0]
        .0
        .trim_start_matches("/api/v1/nodes/")
        .trim_end_matches('?');
    assert!(node == "pi2" || node == "pi3", "{cordons:?}");
    assert_eq!(cordons[1].0, cordons[0].0);
    let mark = |on: bool| json!({"metadata": {"annotations": {"rackpong.dev/cordoned-by": if on { json!("rackpong") } else { Value::Null }}}, "spec": {"unschedulable": on}});
    assert_eq!((cordons[0].1, cordons[1].1), (&mark(true), &mark(false)));
    // Evicted: exactly the workers still on that node (the pod kill's
    // victim was deleted before, its replacement went to the emptiest node).
    let deleted: Vec<String> = reqs
        .iter()
        .filter(|r| r.method == Method::DELETE)
        .map(|r| {
            r.uri
                .rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches('?')
                .to_string()
        })
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    let mut evicted: Vec<String> = reqs
        .iter()
        .filter(|r| r.method == Method::POST && r.uri.ends_with("/eviction?"))
        .map(|r| {
            r.uri
                .trim_end_matches("/eviction?")
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    evicted.sort();
    let mut on_node: Vec<String> = INITIAL
        .iter()
        .filter(|(_, n)| *n == node)
        .map(|(s, _)| pod_name(s))
        .filter(|p| !deleted.contains(p))
        .collect();
    on_node.sort();
    assert!(!evicted.is_empty());
    assert_eq!(evicted, on_node);
    let rack = fake.rack();
    assert_eq!(rack.replicas, 4);
    let n = &rack.nodes[node];
    assert_eq!(n["spec"]["unschedulable"], false, "{n}");
    assert!(
        n["metadata"]["annotations"]
            .get("rackpong.dev/cordoned-by")
            .is_none(),
        "{n}"
    );
}

/// One events.k8s.io Event per fault and one for the node's restore.
fn assert_events(fake: &FakeK3s) {
    let reasons: Vec<String> = fake
        .rack()
        .events
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    for r in [
        "ChaosPodKill",
        "ChaosNodeDown",
        "ChaosScale",
        "ChaosNodeRestored",
    ] {
        assert!(reasons.iter().any(|x| x == r), "{r} not in {reasons:?}");
    }
}

const COLD_PLAN: &str = "\
name: k3s-cold
seed: 7
duration: 6s
steady-state: {min-ready-workers: 2, min-delivery-rate: 0.5, window: 2s}
safety: {max-unavailable: 1, namespaces: [rackpong], allow-zero: true}
recovery-timeout: 30s
balls: {rate-per-s: 20, ttl: 32, timeout: 10s}
faults:
  - {name: cold, at: 1s, scale: {to: 0, hold: 1s}}
";

/// A cold start on k3s: the Deployment's scale subresource to 0 and back
/// to 4, zero reached from the pods' watch deletions, the first new pod's
/// milestones from its watch events, balls refused at zero, all in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k3s_cold_start_goes_to_zero_and_back_through_the_scale_subresource() {
    let (summary, fake, _dir) = run_offline(COLD_PLAN).await;
    println!("{}", summary.table());
    assert_eq!(summary.failures(), Vec::<String>::new());
    let scale = "/apis/apps/v1/namespaces/rackpong/deployments/rackpong-worker/scale?";
    let patches: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r.method == Method::PATCH && r.uri == scale)
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(
        patches[..2],
        [
            json!({"spec": {"replicas": 0}}),
            json!({"spec": {"replicas": 4}})
        ]
    );
    assert_eq!(fake.rack().replicas, 4);
    let lines = journal_of(&summary.run_dir);
    let got: Vec<(Milestone, String)> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::Milestone(m) => Some((m.milestone, m.source.clone())),
            _ => None,
        })
        .collect();
    let order: Vec<Milestone> = got.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        order,
        Milestone::COLD_START,
        "every cold-start milestone, in order: {got:?}"
    );
    assert_eq!(got[1].1, "watch-pod", "zero reached from the watch");
    assert_eq!(got[2].1, "controller");
    assert_eq!(got[3].1, "watch-pod");
    rackpong_controller::report::render_run(&summary.run_dir).unwrap();
    let report: Value =
        serde_json::from_slice(&std::fs::read(summary.run_dir.join("report.json")).unwrap())
            .unwrap();
    let c = &report["cold_starts"][0];
    assert_eq!(c["replicas"], 4, "{c:#}");
    assert_eq!(c["hold_ms"], 1000);
    assert!(c["cold_start_ms"].as_u64().is_some(), "{c:#}");
    assert!(c["at_zero_ms"].as_u64().unwrap() >= 1000, "{c:#}");
    assert!(
        c["balls_refused"].as_u64().unwrap() > 0,
        "20 balls/s over a 1 s hold: {c:#}"
    );
    fake.stop();
}

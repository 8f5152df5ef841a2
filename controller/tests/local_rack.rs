//! The local rack with the real `rackpong` binary and a real embedded broker:
//! workers come up in order on their nodes' process groups, killed workers
//! are replaced, scaling works, and nothing outlives the rack.

mod local_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use local_common::*;
use rackpong_controller::cluster::local::LocalRack;
use rackpong_controller::cluster::{Cluster, ClusterError, ClusterEventKind as K, KillMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_four_workers_come_up_spread_and_in_order() {
    let (rack, mut rec) = start(config(3, 4)).await;
    let ready = rec.ready_workers(4).await;
    assert_eq!(ready, (1..=4).map(|i| format!("worker-{i}")).collect());
    for w in &ready {
        assert_lifecycle(&rec, w, &UP);
    }
    let nodes = rack.nodes().await.unwrap();
    assert!(nodes.iter().all(|n| n.ready), "{nodes:?}");
    assert_eq!(
        rack.malformed_payloads(),
        0,
        "the node agents' health parses"
    );

    // Spread: 4 workers over 3 nodes is 2/1/1.
    let workers = rack.workers().await.unwrap();
    let mut per_node = BTreeMap::<String, usize>::new();
    for w in &workers {
        *per_node.entry(w.node.clone().unwrap()).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_node.values().copied().collect();
    counts.sort();
    assert_eq!(counts, [1, 1, 2], "{per_node:?}");

    // 3 node agents lead 3 groups; each worker runs in its node's group.
    let procs = rack.processes();
    assert_eq!(procs.len(), 7, "{procs:?}");
    let groups = groups(&rack);
    assert_eq!(groups.len(), 3);
    for (pid, pgid) in &procs {
        assert_eq!(
            proc_pgid(*pid),
            Some(*pgid),
            "pid {pid} not in its node's group"
        );
    }

    // The peers file lists the live workers, one URL per line.
    let live = rack.live_workers().borrow().clone();
    assert_eq!(live.len(), 4);
    let peers = std::fs::read_to_string(rack.state_dir().join("peers")).unwrap();
    let lines: BTreeSet<&str> = peers.lines().collect();
    assert_eq!(lines, live.iter().map(|w| w.url.as_str()).collect());
    // All ready, so the factory's targets are the same workers.
    let targets = rack.endpoints().borrow().clone();
    let urls: BTreeSet<&str> = targets.iter().filter_map(|t| t.url.as_deref()).collect();
    assert_eq!(urls, lines);

    // Dropping the rack leaves nothing running.
    drop(rack);
    assert_all_gone(&groups).await;
}

/// Kills `old` and checks its replacement `new` comes up, created when `old`
/// started terminating (as a ReplicaSet does).
async fn kill_and_replace(
    rack: &LocalRack,
    rec: &mut Recorder,
    old: &str,
    new: &str,
    mode: KillMode,
) {
    let old_url = url_of(rack, old);
    rack.kill_worker(old, mode).await.unwrap();
    rec.worker("deleted", old).await;
    rec.worker("ready", new).await;
    let peers = peers_file(rack);
    assert!(!peers.contains(&old_url), "{old} still in the peers file");
    assert!(
        peers.contains(&url_of(rack, new)),
        "{new} not in the peers file"
    );
    assert_lifecycle(rec, old, &UP_AND_GONE);
    assert_lifecycle(rec, new, &UP);
    let terminating = rec.seen("terminating", old).unwrap().at;
    assert!(rec.seen("created", new).unwrap().at >= terminating);
}

fn url_of(rack: &LocalRack, worker: &str) -> String {
    let live = rack.live_workers().borrow().clone();
    live.into_iter()
        .find(|w| w.name == worker)
        .expect("live worker")
        .url
}

fn peers_file(rack: &LocalRack) -> BTreeSet<String> {
    let text = std::fs::read_to_string(rack.state_dir().join("peers")).unwrap();
    text.lines().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_on_a_healthy_node_is_replaced() {
    let (rack, mut rec) = start(config(2, 3)).await;
    rec.ready_workers(3).await;
    let pid = rack.processes().into_iter().map(|(p, _)| p);
    let victim = pid
        .into_iter()
        .find(|p| arg_of(*p, "--name").as_deref() == Some("worker-2"))
        .unwrap();
    let victim = nix::unistd::Pid::from_raw(victim);
    nix::sys::signal::kill(victim, nix::sys::signal::Signal::SIGKILL).unwrap();

    rec.worker("deleted", "worker-2").await;
    rec.worker("ready", "worker-4").await;
    assert!(
        rec.seen("terminating", "worker-2").is_none(),
        "nobody asked it to stop"
    );
    assert_lifecycle(&rec, "worker-4", &UP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_replaced() {
    let (rack, mut rec) = start(config(2, 3)).await;
    // Three, so the survivors always have a live peer and stay ready.
    rec.ready_workers(3).await;
    let old_pids: Vec<i32> = rack.processes().iter().map(|p| p.0).collect();

    kill_and_replace(&rack, &mut rec, "worker-1", "worker-4", KillMode::Forced).await;
    kill_and_replace(&rack, &mut rec, "worker-2", "worker-5", KillMode::Graceful).await;

    let names: Vec<String> = rack
        .workers()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["worker-3", "worker-4", "worker-5"]);
    let again = rack.kill_worker("worker-1", KillMode::Forced).await;
    assert!(
        matches!(again, Err(ClusterError::NoSuchWorker(_))),
        "{again:?}"
    );
    let now: BTreeSet<i32> = rack.processes().iter().map(|p| p.0).collect();
    assert_eq!(now.len(), 5);
    let survivors = old_pids.iter().filter(|p| now.contains(p)).count();
    assert_eq!(survivors, 3, "only the node agents and worker-3 survive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_and_down_creates_and_removes_newest_first() {
    // Two at least: a worker is ready only once it has a live peer.
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;

    assert_eq!(rack.scale(4).await.unwrap(), 2);
    rec.ready_workers(4).await;
    assert!(
        rec.find(|k| matches!(k, K::ReplicasChanged { replicas: 4 }))
            .is_some()
    );
    assert_eq!(rack.replicas().await.unwrap(), 4);

    assert_eq!(rack.scale(2).await.unwrap(), 4);
    let first = rec
        .until("a worker terminating", |k| label(k) == "terminating")
        .await;
    let ready_then = ready_before(&rec, &first);
    let mut gone = BTreeSet::new();
    while gone.len() < 2 {
        let ev = rec
            .until("scaled-down worker deleted", |k| label(k) == "deleted")
            .await;
        gone.insert(worker_of(&ev.kind).unwrap().to_string());
    }
    // A ReplicaSet removes not-ready workers first, then the newest.
    let mut ranked: Vec<(bool, std::cmp::Reverse<u32>)> = (1..=4)
        .map(|i| {
            (
                ready_then.contains(&format!("worker-{i}")),
                std::cmp::Reverse(i),
            )
        })
        .collect();
    ranked.sort();
    let expected: BTreeSet<String> = ranked[..2]
        .iter()
        .map(|(_, i)| format!("worker-{}", i.0))
        .collect();
    assert_eq!(gone, expected, "ready at scale-down: {ready_then:?}");
    assert!(gone.iter().all(|w| rec.seen("terminating", w).is_some()));
    let left: BTreeSet<String> = rack
        .workers()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.is_disjoint(&gone));
    assert_eq!(rack.live_workers().borrow().len(), 2);
}

/// The workers that were ready just before `event`.
fn ready_before(
    rec: &Recorder,
    event: &rackpong_controller::cluster::ClusterEvent,
) -> BTreeSet<String> {
    let mut ready = BTreeSet::new();
    for ev in rec.seen.iter().take_while(|e| *e != event) {
        match &ev.kind {
            K::WorkerReady { worker, .. } => ready.insert(worker.clone()),
            K::WorkerNotReady { worker, .. } => ready.remove(worker),
            _ => false,
        };
    }
    ready
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_process_gracefully() {
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let groups = groups(&rack);
    assert_eq!(groups.len(), 2);
    assert!(!members_of(&groups).is_empty());

    tokio::time::timeout(WAIT, rack.shutdown(Duration::from_secs(5)))
        .await
        .expect("shutdown returns");
    assert!(rack.processes().is_empty(), "{:?}", rack.processes());
    assert_all_gone(&groups).await;
}

#[tokio::test]
async fn detection_reports_the_local_settings() {
    let mut cfg = config(1, 0);
    cfg.probe_period = Duration::from_millis(250);
    cfg.node_grace = Duration::from_millis(1500);
    let (rack, _rec) = start(cfg).await;
    let d = rack.detection().await.unwrap();
    assert_eq!(d.profile, "local");
    assert_eq!(d.node_monitor_grace_s, Some(2));
    assert_eq!(d.readiness_period_s, Some(1));
    assert_eq!(d.extra["readiness_period_ms"], "250");
    assert_eq!(d.extra["node_monitor_grace_ms"], "1500");
    assert_eq!(rack.kind(), rackpong_controller::model::ClusterKind::Local);
}

#[tokio::test]
async fn bad_settings_are_refused_before_anything_starts() {
    let mut cfg = config(2, 1);
    cfg.node_grace = cfg.node_interval;
    let err = rackpong_controller::cluster::local::LocalRack::start(cfg)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("node_grace"), "{err}");
}

#[tokio::test]
async fn a_missing_executable_is_a_clear_error() {
    let mut cfg = config(1, 1);
    cfg.exe = "/nonexistent/rackpong".into();
    let err = rackpong_controller::cluster::local::LocalRack::start(cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("node1") && err.contains("/nonexistent/rackpong"),
        "{err}"
    );
}

/// Set in the helper process of the test below.
const HELPER_ENV: &str = "RACKPONG_LOCAL_RACK_HELPER";

/// Runs a rack in its own process (this test binary, re-run on one test),
/// SIGKILLs that process, and checks the kernel killed the whole rack with it
/// (PR_SET_PDEATHSIG): no Drop, no shutdown ran.
#[tokio::test]
async fn a_killed_controller_takes_its_rack_with_it() {
    use tokio::io::AsyncBufReadExt;
    let mut helper = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rack_in_a_helper_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(helper.stdout.take().unwrap()).lines();
    let groups: BTreeSet<i32> = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // The harness prints "test <name> ... " before the test's own output.
            if let Some((_, list)) = line.split_once("GROUPS ") {
                return list.trim().split(',').map(|g| g.parse().unwrap()).collect();
            }
        }
        panic!("helper exited without reporting its groups");
    })
    .await
    .expect("helper reports its rack");
    assert_eq!(groups.len(), 2);
    assert!(!members_of(&groups).is_empty());

    helper.start_kill().unwrap();
    helper.wait().await.unwrap();
    assert_all_gone(&groups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: runs only inside a_killed_controller_takes_its_rack_with_it"]
async fn rack_in_a_helper_process() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let list: Vec<String> = groups(&rack).iter().map(|g| g.to_string()).collect();
    println!("GROUPS {}", list.join(","));
    // Wait to be killed.
    std::future::pending::<()>().await;
}

//! The isolated local rack (`--isolation netns`) with real namespaces,
//! veths and a bridge, the real binary and a real broker on the bridge:
//! every node in its own namespace, `net-drop` a real link cut (processes
//! keep running, evicted workers overlap their replacements until the link
//! is back), `partition` a cut from the control side only (peers still
//! reachable), `power-relay` a cut then a kill; nothing of a run left in
//! `ip netns list` / `ip link` afterwards, and leftovers of a crashed run
//! removed by the next start; Ctrl-C of a demo with `--isolation netns`
//! removes its network itself.
//!
//! Needs root and iproute2 (CI has both). Elsewhere each test prints
//! `SKIP <test>: ...` and returns: the documented skip of docs/local-rack.md.
//! With `RACKPONG_REQUIRE_NETNS=1` (set by `.ci/run`) a missing netns fails
//! the test instead, so CI never passes silently.

mod local_common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use local_common::*;
use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::proto::ChaosAction;
use rackpong_controller::cluster::local::{LocalRack, LocalRackConfig, RackNet, netns};
use rackpong_controller::cluster::{Cluster, ClusterError, NodeFault};

/// `true` when namespaces can be used; otherwise prints the skip (or fails
/// under `RACKPONG_REQUIRE_NETNS=1`).
fn netns_or_skip(test: &str) -> bool {
    match netns::available() {
        Ok(()) => true,
        Err(e) if std::env::var_os("RACKPONG_REQUIRE_NETNS").is_some() => {
            panic!("{test}: RACKPONG_REQUIRE_NETNS is set but {e}")
        }
        Err(e) => {
            println!("SKIP {test}: {e} (see docs/local-rack.md, \"Isolation\")");
            false
        }
    }
}

/// An isolated rack's settings (the fast test timings of `local_common`),
/// with its broker on the bridge's control address.
fn isolated(nodes: u8, workers: u32) -> (LocalRackConfig, Arc<RackNet>) {
    let net = Arc::new(RackNet::create(nodes, "local-netns-test").expect("rack network"));
    let broker = EmbeddedBroker::start(net.control_ip().into()).expect("broker on the bridge");
    let mut cfg = config(nodes, workers);
    cfg.broker = broker.addr();
    cfg.net = Some(Arc::clone(&net));
    (cfg, net)
}

/// Names in `ip netns list` and `ip link` starting with `prefix`.
fn leftovers(prefix: &str) -> Vec<String> {
    let out = |args: &[&str]| {
        let o = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let text = out(&["netns", "list"]) + &out(&["-o", "link", "show"]);
    text.split_whitespace()
        .map(|w| {
            w.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|w| w.starts_with(prefix))
        .collect()
}

/// Whether a TCP connection to `addr` from inside namespace `ns` succeeds
/// within 2 s (bash's /dev/tcp: no client tool needed).
fn connects_from(ns: &str, addr: SocketAddr) -> bool {
    let probe = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
    std::process::Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "2", "bash", "-c", &probe])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The workers on `node`.
async fn workers_on(rack: &LocalRack, node: &str) -> Vec<String> {
    let all = rack.workers().await.unwrap();
    all.into_iter()
        .filter(|w| w.node.as_deref() == Some(node))
        .map(|w| w.name)
        .collect()
}

/// The URL of a live worker.
fn url_of(rack: &LocalRack, worker: &str) -> SocketAddr {
    let live = rack.live_workers().borrow().clone();
    let w = live.iter().find(|w| w.name == worker).expect("live worker");
    w.url.trim_start_matches("http://").parse().unwrap()
}

/// Waits for `node` to be Ready again after `since` (counting events seen).
async fn back_after(rec: &mut Recorder, node: &str, since: tokio::time::Instant) {
    let is_back = |e: &rackpong_controller::cluster::ClusterEvent| {
        e.at > since && label(&e.kind) == "node-ready" && node_of(&e.kind) == Some(node)
    };
    if rec.seen.iter().any(is_back) {
        return;
    }
    rec.next_node("node-ready", node).await;
}

/// Stops the rack, removes its network and checks nothing is left.
async fn finish(rack: LocalRack, net: Arc<RackNet>) {
    let groups = groups(&rack);
    let prefix = net.name_prefix();
    rack.shutdown(Duration::from_secs(5)).await;
    drop(rack);
    assert_all_gone(&groups).await;
    net.teardown();
    assert_eq!(leftovers(&prefix), Vec::<String>::new(), "left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_is_a_namespace_on_the_rack_subnet() {
    if !netns_or_skip("every_node_is_a_namespace_on_the_rack_subnet") {
        return;
    }
    let (cfg, net) = isolated(2, 2);
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(2).await;
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    for (pid, _) in rack.processes() {
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        assert_ne!(ns, own, "pid {pid} runs in the host's namespace");
    }
    for w in rack.live_workers().borrow().iter() {
        let addr = url_of(&rack, &w.name);
        let std::net::IpAddr::V4(ip) = addr.ip() else {
            panic!("{addr}")
        };
        assert!(
            net.subnet().contains(&ip),
            "{addr} outside {}",
            net.subnet()
        );
    }
    let det = rack.detection().await.unwrap();
    assert_eq!(
        det.extra.get("isolation").map(String::as_str),
        Some("netns")
    );
    finish(rack, net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_drop_cuts_the_link_and_the_old_worker_overlaps_its_replacement() {
    if !netns_or_skip("net_drop_cuts_the_link_and_the_old_worker_overlaps_its_replacement") {
        return;
    }
    let (cfg, net) = isolated(3, 3);
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(3).await;
    let [victim] = <[String; 1]>::try_from(workers_on(&rack, "node2").await).expect("one per node");
    let group = node_group(&rack, "node2").unwrap();
    let peer = url_of(&rack, &workers_on(&rack, "node1").await[0]);
    let down_for = Duration::from_secs(5);
    let fault = NodeFault::Agent(ChaosAction::NetDrop);
    rack.node_down("node2", fault, down_for).await.unwrap();
    assert!(!connects_from(&net.namespace(2), peer), "the link is down");

    let not_ready = rec.next_node("node-not-ready", "node2").await;
    rec.worker("terminating", &victim).await;
    let ready = rec.worker("ready", "worker-4").await;
    assert!(ready.at >= not_ready.at);
    // The cut node's processes run on (not frozen): the old worker is
    // alive while its replacement serves.
    let members = members_of(&BTreeSet::from([group]));
    assert_eq!(members.len(), 2, "agent and worker still running");
    assert!(members.iter().all(|p| proc_state(*p) != Some('T')));
    assert!(rec.seen("deleted", &victim).is_none(), "deleted while cut");

    let deleted = rec.worker("deleted", &victim).await;
    assert!(deleted.at > ready.at, "no overlap");
    assert!(
        deleted.at - not_ready.at >= down_for / 2,
        "deleted before the link was back"
    );
    back_after(&mut rec, "node2", not_ready.at).await;
    finish(rack, net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_cuts_the_control_side_but_not_the_peers() {
    if !netns_or_skip("partition_cuts_the_control_side_but_not_the_peers") {
        return;
    }
    let (cfg, net) = isolated(3, 3);
    let broker = cfg.broker;
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(3).await;
    let [victim] = <[String; 1]>::try_from(workers_on(&rack, "node2").await).expect("one per node");
    let peer = url_of(&rack, &workers_on(&rack, "node1").await[0]);
    let ns = net.namespace(2);
    assert!(connects_from(&ns, broker) && connects_from(&ns, peer));

    rack.node_down("node2", NodeFault::Partition, Duration::from_secs(4))
        .await
        .unwrap();
    assert!(!connects_from(&ns, broker), "the broker is still reachable");
    assert!(connects_from(&ns, peer), "the peer is cut too");
    let not_ready = rec.next_node("node-not-ready", "node2").await;
    rec.worker("terminating", &victim).await;
    let ready = rec.worker("ready", "worker-4").await;
    let deleted = rec.worker("deleted", &victim).await;
    assert!(
        deleted.at > ready.at,
        "the partitioned worker did not overlap"
    );
    back_after(&mut rec, "node2", not_ready.at).await;
    assert!(connects_from(&ns, broker), "healed");
    finish(rack, net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_relay_cuts_the_link_then_kills_the_node() {
    if !netns_or_skip("power_relay_cuts_the_link_then_kills_the_node") {
        return;
    }
    let (cfg, net) = isolated(2, 2);
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(2).await;
    let group = node_group(&rack, "node2").unwrap();
    let fault = NodeFault::Agent(ChaosAction::PowerRelay);
    rack.node_down("node2", fault, Duration::from_secs(2))
        .await
        .unwrap();
    assert_all_gone(&BTreeSet::from([group])).await;
    rec.next_node("node-not-ready", "node2").await;
    rec.next_node("node-ready", "node2").await;
    assert_ne!(node_group(&rack, "node2"), Some(group), "a new boot");
    finish(rack, net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_start_removes_what_a_crashed_run_left() {
    if !netns_or_skip("the_next_start_removes_what_a_crashed_run_left") {
        return;
    }
    // A "crashed run" with tag beef: its controller (a finished child) is gone.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::create_dir_all(netns::MARKER_DIR).unwrap();
    let marker = std::path::Path::new(netns::MARKER_DIR).join("beef");
    std::fs::write(&marker, format!("{dead} 1 crashed-run\n")).unwrap();
    let ip = |args: &[&str]| {
        assert!(
            std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
                .success()
        )
    };
    ip(&["netns", "add", "rpbeef-node1"]);
    ip(&["link", "add", "rpbeefb", "type", "bridge"]);

    let net = RackNet::create(1, "after-a-crash").expect("rack network");
    assert_eq!(leftovers("rpbeef"), Vec::<String>::new());
    assert!(!marker.exists());
    let prefix = net.name_prefix();
    drop(net);
    assert_eq!(leftovers(&prefix), Vec::<String>::new(), "dropped: removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_is_refused_on_the_loopback_rack() {
    // No namespaces needed: the loopback rack refuses before touching anything.
    let (rack, mut rec) = start(config(2, 2)).await;
    rec.ready_workers(2).await;
    let err = rack
        .node_down("node1", NodeFault::Partition, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("--isolation netns"), "{err}");
    rack.shutdown(Duration::from_secs(5)).await;
}

/// The tag of the isolated rack the controller `pid` started (from its
/// marker), once its network exists.
async fn tag_of(pid: u32) -> String {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let markers = std::fs::read_dir(netns::MARKER_DIR).into_iter().flatten();
            for m in markers.flatten() {
                let text = std::fs::read_to_string(m.path()).unwrap_or_default();
                let tag = m.file_name().to_string_lossy().into_owned();
                let bridge_up = !leftovers(&format!("rp{tag}b")).is_empty();
                if text.split_whitespace().next() == Some(&pid.to_string()) && bridge_up {
                    return tag;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    found.expect("the demo created its network")
}

/// `rackpong demo --isolation netns` on a short plan, as a child process.
fn demo_child(runs: &std::path::Path) -> std::process::Child {
    let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/../plans/netns.yaml");
    std::process::Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args([
            "--log",
            "warn",
            "demo",
            "--isolation",
            "netns",
            "--nodes",
            "2",
        ])
        .args(["--workers", "2", "--plan", plan, "--runs-dir"])
        .arg(runs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_removes_the_demos_network_and_a_killed_demos_is_removed_by_the_next_start() {
    if !netns_or_skip(
        "ctrl_c_removes_the_demos_network_and_a_killed_demos_is_removed_by_the_next_start",
    ) {
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    // Ctrl-C: the run aborts, rolls back and removes its network itself.
    let mut demo = demo_child(runs.path());
    let tag = tag_of(demo.id()).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let exited = tokio::task::spawn_blocking(move || demo.wait().unwrap());
    tokio::time::timeout(WAIT, exited)
        .await
        .expect("demo exits on Ctrl-C")
        .unwrap();
    assert_eq!(
        leftovers(&format!("rp{tag}")),
        Vec::<String>::new(),
        "after Ctrl-C"
    );
    assert!(!std::path::Path::new(netns::MARKER_DIR).join(&tag).exists());

    // SIGKILL: nothing can clean up, so the next start does.
    let mut demo = demo_child(runs.path());
    let tag = tag_of(demo.id()).await;
    demo.kill().unwrap();
    demo.wait().unwrap();
    assert!(
        !leftovers(&format!("rp{tag}")).is_empty(),
        "a killed run leaves its network"
    );
    let next = RackNet::create(1, "after-a-kill").expect("rack network");
    assert_eq!(
        leftovers(&format!("rp{tag}")),
        Vec::<String>::new(),
        "after the next start"
    );
    drop(next);
}

//! Helpers shared by the local rack tests: a rack on a real embedded broker
//! running the real `rackpong` binary, an event recorder, and /proc checks.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_controller::cluster::local::{LocalRack, LocalRackConfig};
use rackpong_controller::cluster::{ClusterEvent, ClusterEventKind};
use tokio::sync::broadcast;

/// How long any single expectation may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Fast settings for tests: 200 ms health interval, 1 s grace, 20 ms probes.
pub fn config(nodes: u8, workers: u32) -> LocalRackConfig {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).expect("broker");
    let mut cfg = LocalRackConfig::new(
        env!("CARGO_BIN_EXE_rackpong"),
        broker.addr(),
        nodes,
        workers,
    );
    cfg.node_interval = Duration::from_millis(200);
    cfg.node_grace = Duration::from_secs(1);
    cfg.mqtt_keepalive = Duration::from_secs(1);
    cfg.probe_period = Duration::from_millis(20);
    cfg.peer_refresh = Duration::from_millis(100);
    cfg.termination_grace = Duration::from_secs(3);
    // RACKPONG_TEST_LOG_DIR=/some/dir keeps the children's logs for debugging.
    cfg.log_dir = std::env::var_os("RACKPONG_TEST_LOG_DIR").map(Into::into);
    cfg.child_log = "info".into();
    cfg
}

/// Starts a rack and records its events from the start.
pub async fn start(cfg: LocalRackConfig) -> (LocalRack, Recorder) {
    let rack = LocalRack::start(cfg).await.expect("rack starts");
    let rx = rack.events_since_start().expect("first subscriber");
    (
        rack,
        Recorder {
            rx,
            seen: Vec::new(),
        },
    )
}

/// Every event received so far, and a way to wait for the next ones.
pub struct Recorder {
    rx: broadcast::Receiver<ClusterEvent>,
    pub seen: Vec<ClusterEvent>,
}

impl Recorder {
    /// Waits (at most [`WAIT`]) for the first event from now on matching `pred`.
    pub async fn until(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&ClusterEventKind) -> bool,
    ) -> ClusterEvent {
        let got = tokio::time::timeout(WAIT, async {
            loop {
                let ev = self.rx.recv().await.expect("event channel open");
                self.seen.push(ev.clone());
                if pred(&ev.kind) {
                    return ev;
                }
            }
        })
        .await;
        match got {
            Ok(ev) => ev,
            Err(_) => panic!(
                "timed out waiting for {what}; events so far:\n{:#?}",
                self.seen
            ),
        }
    }

    /// Like [`Recorder::until`], but an event already seen counts too.
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&ClusterEventKind) -> bool,
    ) -> ClusterEvent {
        if let Some(ev) = self.find(&pred) {
            return ev.clone();
        }
        self.until(what, pred).await
    }

    /// Waits for the event labelled `label` (see [`label`]) about `worker`,
    /// counting events already seen.
    pub async fn worker(&mut self, label_: &str, worker: &str) -> ClusterEvent {
        let what = format!("{worker} {label_}");
        self.wait_for(&what, |k| {
            label(k) == label_ && worker_of(k) == Some(worker)
        })
        .await
    }

    /// The event labelled `label` about `worker`, if seen.
    pub fn seen(&self, label_: &str, worker: &str) -> Option<&ClusterEvent> {
        self.find(|k| label(k) == label_ && worker_of(k) == Some(worker))
    }

    /// Waits for the next (not a past) node event labelled `label` about `node`.
    pub async fn next_node(&mut self, label_: &str, node: &str) -> ClusterEvent {
        let what = format!("{node} {label_}");
        self.until(&what, |k| label(k) == label_ && node_of(k) == Some(node))
            .await
    }

    /// Waits until `n` distinct workers have become ready (counting the past).
    pub async fn ready_workers(&mut self, n: usize) -> BTreeSet<String> {
        loop {
            let ready = self.ready_set();
            if ready.len() >= n {
                return ready;
            }
            self.until("a worker ready", |k| {
                matches!(k, ClusterEventKind::WorkerReady { .. })
            })
            .await;
        }
    }

    fn ready_set(&self) -> BTreeSet<String> {
        self.seen
            .iter()
            .filter_map(|e| match &e.kind {
                ClusterEventKind::WorkerReady { worker, .. } => Some(worker.clone()),
                _ => None,
            })
            .collect()
    }

    /// The events seen about `worker`, in order.
    pub fn of(&self, worker: &str) -> Vec<&ClusterEvent> {
        self.seen
            .iter()
            .filter(|e| worker_of(&e.kind) == Some(worker))
            .collect()
    }

    /// The first seen event matching `pred`.
    pub fn find(&self, pred: impl Fn(&ClusterEventKind) -> bool) -> Option<&ClusterEvent> {
        self.seen.iter().find(|e| pred(&e.kind))
    }
}

pub fn worker_of(kind: &ClusterEventKind) -> Option<&str> {
    use ClusterEventKind::*;
    match kind {
        WorkerCreated { worker }
        | WorkerScheduled { worker, .. }
        | WorkerRunning { worker, .. }
        | WorkerReady { worker, .. }
        | WorkerNotReady { worker, .. }
        | WorkerTerminating { worker, .. }
        | WorkerDeleted { worker, .. } => Some(worker),
        _ => None,
    }
}

pub fn node_of(kind: &ClusterEventKind) -> Option<&str> {
    match kind {
        ClusterEventKind::NodeReady { node } | ClusterEventKind::NodeNotReady { node } => {
            Some(node)
        }
        _ => None,
    }
}

/// The node a worker was scheduled on.
pub fn node_in(ev: &ClusterEvent) -> Option<&str> {
    match &ev.kind {
        ClusterEventKind::WorkerScheduled { node, .. } => Some(node),
        _ => None,
    }
}

/// A worker's life from creation to readiness.
pub const UP: [&str; 4] = ["created", "scheduled", "running", "ready"];
/// ... and to its end.
pub const UP_AND_GONE: [&str; 6] = [
    "created",
    "scheduled",
    "running",
    "ready",
    "terminating",
    "deleted",
];

/// A short label of an event kind, for order checks.
pub fn label(kind: &ClusterEventKind) -> &'static str {
    use ClusterEventKind::*;
    match kind {
        WorkerCreated { .. } => "created",
        WorkerScheduled { .. } => "scheduled",
        WorkerRunning { .. } => "running",
        WorkerReady { .. } => "ready",
        WorkerNotReady { .. } => "not-ready",
        WorkerTerminating { .. } => "terminating",
        WorkerDeleted { .. } => "deleted",
        NodeReady { .. } => "node-ready",
        NodeNotReady { .. } => "node-not-ready",
        ReplicasChanged { .. } => "replicas",
    }
}

/// Asserts the events of `worker` contain `expected` (by label) in that
/// order, and are stamped in non-decreasing order. Readiness may flap in
/// between (a worker is not ready while it has no live peer, which a busy
/// machine can cause for a moment), so other events may be interleaved.
pub fn assert_lifecycle(rec: &Recorder, worker: &str, expected: &[&str]) {
    let evs = rec.of(worker);
    let labels: Vec<&str> = evs.iter().map(|e| label(&e.kind)).collect();
    let mut rest = labels.iter();
    let in_order = expected.iter().all(|want| rest.any(|got| got == want));
    assert!(
        in_order,
        "{worker}: {labels:?}, expected {expected:?} in order"
    );
    assert_eq!(labels.first(), expected.first(), "{worker}: {labels:?}");
    assert!(
        evs.windows(2).all(|w| w[0].at <= w[1].at),
        "{worker}: timestamps out of order"
    );
}

/// The process state letter of `pid` (`R`, `S`, `T`, `Z`, ...), `None` if gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the ")" closing the command name.
    stat.rsplit_once(") ")?.1.chars().next()
}

/// The process group of `pid`, `None` if gone.
pub fn proc_pgid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(2)?.parse().ok()
}

/// Pids of every process (zombies excluded) whose group is in `groups`.
pub fn members_of(groups: &BTreeSet<i32>) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| proc_pgid(*pid).is_some_and(|g| groups.contains(&g)))
        .filter(|pid| proc_state(*pid).is_some_and(|s| s != 'Z'))
        .collect()
}

/// Waits until no live process is left in `groups`.
pub async fn assert_all_gone(groups: &BTreeSet<i32>) {
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            if members_of(groups).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "processes left behind: {:?}",
        members_of(groups)
    );
}

/// The process groups of the rack's children.
pub fn groups(rack: &LocalRack) -> BTreeSet<i32> {
    rack.processes().into_iter().map(|(_, g)| g).collect()
}

/// The value following `flag` on the command line of `pid`.
pub fn arg_of(pid: i32, flag: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).cloned()
}

/// The process group of the agent of `node`.
pub fn node_group(rack: &LocalRack, node: &str) -> Option<i32> {
    rack.processes()
        .into_iter()
        .find(|(pid, _)| arg_of(*pid, "--node-name").as_deref() == Some(node))
        .map(|(_, pgid)| pgid)
}

/// Waits until every live member of `group` satisfies `pred` on its state letter.
pub async fn wait_group_state(group: i32, what: &str, pred: impl Fn(char) -> bool) {
    let groups = BTreeSet::from([group]);
    let ok = tokio::time::timeout(WAIT, async {
        loop {
            let members = members_of(&groups);
            if !members.is_empty() && members.iter().all(|p| proc_state(*p).is_some_and(&pred)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "group {group} never {what}");
}

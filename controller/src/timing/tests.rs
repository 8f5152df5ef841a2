//! Scripted event sequences through the tracker: ordering, clamping,
//! multi-replacement faults, node faults with returning workers, scale up
//! and down, timeouts, aborts, zombies and overlaps.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::cluster::ClusterEventKind as K;
use crate::journal::event::{Detection, FaultInjected, FaultKind, FaultOutcome, Milestone as M};

const PRECISION: Precision = Precision {
    event_ms: 1,
    lwt_ms: 7500,
    stale_ms: 6000,
    ready_ms: 1000,
    service_ms: 500,
};

struct Script {
    t0: Instant,
    tr: Tracker,
    out: Vec<Output>,
}

fn w(name: &str) -> String {
    name.to_string()
}

fn workers(names: &[&str]) -> Vec<WorkerInfo> {
    names
        .iter()
        .map(|n| WorkerInfo {
            name: n.to_string(),
            node: Some("n1".into()),
            ready: true,
            terminating: false,
            chaos_opt_in: true,
        })
        .collect()
}

fn fault(
    id: &str,
    kind: FaultKind,
    node: Option<&str>,
    replicas: Option<(u32, u32)>,
) -> FaultInjected {
    FaultInjected {
        fault_id: id.into(),
        fault: format!("{id}-plan"),
        kind,
        action: "graceful".into(),
        targets: vec![],
        node: node.map(String::from),
        replicas_from: replicas.map(|r| r.0),
        replicas_to: replicas.map(|r| r.1),
        predicted_ms: None,
        predicted_basis: None,
    }
}

impl Script {
    fn new(existing: &[&str]) -> Self {
        Script {
            t0: Instant::now(),
            tr: Tracker::new(PRECISION, 0.9, &workers(existing)),
            out: Vec::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn ms(&self, i: Instant) -> u64 {
        i.duration_since(self.t0).as_millis() as u64
    }

    fn inject(&mut self, ms: u64, f: FaultInjected, lost: &[&str]) {
        let at = self.at(ms);
        self.tr.injected(Injected {
            at,
            fault: f,
            lost_workers: lost.iter().map(|s| s.to_string()).collect(),
        });
    }

    fn obs(&mut self, ms: u64, o: Observation) {
        let at = self.at(ms);
        let out = self.tr.observe(at, &o);
        self.out.extend(out);
    }

    fn cl(&mut self, ms: u64, k: K) {
        self.obs(ms, Observation::Cluster(k));
    }

    fn ball(&mut self, ms: u64, hops: &[(&str, &str)]) {
        let hops = hops.iter().map(|(a, b)| (w(a), w(b))).collect();
        self.obs(ms, Observation::BallCaught { hops });
    }

    fn service(&mut self, ms: u64, rate: f64) {
        self.obs(
            ms,
            Observation::Service {
                delivery_rate: Some(rate),
            },
        );
    }

    /// A new worker created, scheduled, running and ready on `node` at the given offsets.
    fn bring_up(&mut self, name: &str, node: &str, [c, s, r, rd]: [u64; 4]) {
        self.cl(c, K::WorkerCreated { worker: w(name) });
        self.cl(
            s,
            K::WorkerScheduled {
                worker: w(name),
                node: w(node),
            },
        );
        self.cl(
            r,
            K::WorkerRunning {
                worker: w(name),
                node: w(node),
            },
        );
        self.cl(
            rd,
            K::WorkerReady {
                worker: w(name),
                node: w(node),
            },
        );
    }

    fn milestones(&self, id: &str) -> Vec<(M, u64)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Milestone { at, event } if event.fault_id == id => {
                    Some((event.milestone, self.ms(*at)))
                }
                _ => None,
            })
            .collect()
    }

    fn ended(&self, id: &str) -> Option<(FaultOutcome, u64)> {
        self.out.iter().find_map(|o| match o {
            Output::Ended {
                at,
                fault_id,
                outcome,
            } if fault_id == id => Some((*outcome, self.ms(*at))),
            _ => None,
        })
    }
}

/// Phases of every finished timeline add up to its total and never go back.
fn assert_phases_add_up(tr: &Tracker) {
    for t in tr.timelines() {
        let sum: Duration = t.phases().iter().map(|(_, d)| *d).sum();
        assert_eq!(sum, t.total(), "{}", t.fault_id);
        let times: Vec<Instant> = t.milestones.iter().map(|(_, at)| *at).collect();
        assert!(times.windows(2).all(|p| p[0] <= p[1]), "{}", t.fault_id);
        let order: Vec<M> = t.milestones.iter().map(|(m, _)| *m).collect();
        assert!(
            order.windows(2).all(|p| p[0] < p[1]),
            "{}: {order:?}",
            t.fault_id
        );
    }
}

#[test]
fn pod_kill_goes_through_every_milestone_in_order() {
    let mut s = Script::new(&["w1", "w2", "w3"]);
    s.inject(
        1000,
        fault("f1", FaultKind::PodKill, Some("n1"), None),
        &["w1"],
    );
    s.cl(
        1010,
        K::WorkerTerminating {
            worker: w("w1"),
            node: Some(w("n1")),
        },
    );
    s.bring_up("w9", "n2", [1020, 1030, 1500, 2000]);
    s.ball(2100, &[("w2", "n1"), ("w9", "n2"), ("w3", "n1")]);
    s.service(2300, 0.5);
    assert_eq!(s.ended("f1"), None);
    s.service(2500, 0.95);
    assert_eq!(
        s.milestones("f1"),
        vec![
            (M::Detected, 1010),
            (M::ReplacementCreated, 1020),
            (M::Scheduled, 1030),
            (M::Running, 1500),
            (M::Ready, 2000),
            (M::Serving, 2100),
            (M::ServiceRestored, 2500),
        ]
    );
    assert_eq!(s.ended("f1"), Some((FaultOutcome::Recovered, 2500)));
    let t = &s.tr.timelines()[0];
    assert_eq!(t.total(), Duration::from_millis(1500));
    assert_phases_add_up(&s.tr);
    assert_eq!(s.tr.open(), 0);
}

#[test]
fn milestone_sources_and_precision_follow_the_signal() {
    let mut s = Script::new(&["w1"]);
    s.inject(0, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.obs(
        5,
        Observation::WorkerStatus {
            worker: w("w1"),
            online: false,
        },
    );
    s.bring_up("w2", "n1", [6, 7, 8, 9]);
    s.ball(10, &[("w2", "n1")]);
    s.service(11, 1.0);
    let events: Vec<(M, String, u64)> = s
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Milestone { event, .. } => {
                Some((event.milestone, event.source.clone(), event.precision_ms))
            }
            _ => None,
        })
        .collect();
    assert_eq!(events[0], (M::Detected, "mqtt-worker-status".into(), 1));
    assert_eq!(events[1], (M::ReplacementCreated, "watch-pod".into(), 1));
    assert_eq!(events[4], (M::Ready, "watch-pod".into(), 1000));
    assert_eq!(events[5], (M::Serving, "ball-caught".into(), 1));
    assert_eq!(events[6], (M::ServiceRestored, "factory".into(), 500));
}

#[test]
fn signals_seen_before_their_predecessor_are_clamped_not_reordered() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(1000, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    // The ReplicaSet reacted before the controller saw the deletion.
    s.cl(1005, K::WorkerCreated { worker: w("w9") });
    s.cl(
        1007,
        K::WorkerScheduled {
            worker: w("w9"),
            node: w("n2"),
        },
    );
    s.cl(
        1020,
        K::WorkerTerminating {
            worker: w("w1"),
            node: None,
        },
    );
    s.cl(
        1400,
        K::WorkerRunning {
            worker: w("w9"),
            node: w("n2"),
        },
    );
    // A ball reached it before the Ready condition (probe quantisation).
    s.ball(1600, &[("w9", "n2")]);
    s.cl(
        2000,
        K::WorkerReady {
            worker: w("w9"),
            node: w("n2"),
        },
    );
    s.service(2100, 0.99);
    assert_eq!(
        s.milestones("f1"),
        vec![
            (M::Detected, 1020),
            (M::ReplacementCreated, 1020),
            (M::Scheduled, 1020),
            (M::Running, 1400),
            (M::Ready, 2000),
            (M::Serving, 2000),
            (M::ServiceRestored, 2100),
        ]
    );
    assert_phases_add_up(&s.tr);
}

#[test]
fn a_multi_worker_kill_reaches_a_milestone_when_its_last_replacement_does() {
    let mut s = Script::new(&["w1", "w2", "w3", "w4"]);
    s.inject(
        0,
        fault("f1", FaultKind::PodKill, None, None),
        &["w1", "w2"],
    );
    s.cl(
        10,
        K::WorkerDeleted {
            worker: w("w2"),
            node: None,
        },
    );
    s.cl(
        11,
        K::WorkerDeleted {
            worker: w("w1"),
            node: None,
        },
    );
    s.bring_up("w5", "n1", [20, 30, 40, 50]);
    s.cl(25, K::WorkerCreated { worker: w("w6") });
    s.cl(
        35,
        K::WorkerScheduled {
            worker: w("w6"),
            node: w("n2"),
        },
    );
    s.cl(
        45,
        K::WorkerRunning {
            worker: w("w6"),
            node: w("n2"),
        },
    );
    s.ball(60, &[("w5", "n1")]);
    s.service(70, 1.0);
    // w6 is not ready yet: no ready, no restored.
    assert_eq!(s.milestones("f1").last(), Some(&(M::Running, 45)));
    s.cl(
        900,
        K::WorkerReady {
            worker: w("w6"),
            node: w("n2"),
        },
    );
    s.ball(950, &[("w6", "n2")]);
    s.service(1000, 1.0);
    assert_eq!(
        s.milestones("f1"),
        vec![
            (M::Detected, 10),
            (M::ReplacementCreated, 25),
            (M::Scheduled, 35),
            (M::Running, 45),
            (M::Ready, 900),
            (M::Serving, 950),
            (M::ServiceRestored, 1000),
        ]
    );
}

#[test]
fn new_workers_go_to_open_faults_in_injection_order() {
    let mut s = Script::new(&["w1", "w2", "w3"]);
    s.inject(0, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.inject(5, fault("f2", FaultKind::PodKill, None, None), &["w2"]);
    s.cl(
        10,
        K::WorkerTerminating {
            worker: w("w2"),
            node: None,
        },
    );
    s.cl(
        11,
        K::WorkerTerminating {
            worker: w("w1"),
            node: None,
        },
    );
    s.cl(20, K::WorkerCreated { worker: w("a") });
    s.cl(21, K::WorkerCreated { worker: w("b") });
    // A worker that existed before is not a replacement.
    s.cl(22, K::WorkerCreated { worker: w("w3") });
    assert_eq!(s.milestones("f1")[1], (M::ReplacementCreated, 20));
    assert_eq!(s.milestones("f2")[1], (M::ReplacementCreated, 21));
    s.cl(
        30,
        K::WorkerScheduled {
            worker: w("b"),
            node: w("n"),
        },
    );
    assert_eq!(s.milestones("f2").len(), 3);
    assert_eq!(s.milestones("f1").len(), 2);
}

#[test]
fn a_worker_restarted_under_its_own_name_fills_its_slot() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(0, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.cl(
        10,
        K::WorkerDeleted {
            worker: w("w1"),
            node: None,
        },
    );
    s.bring_up("w1", "n1", [20, 21, 30, 40]);
    s.ball(45, &[("w1", "n1")]);
    s.service(50, 1.0);
    assert_eq!(s.ended("f1"), Some((FaultOutcome::Recovered, 50)));
    assert_eq!(s.milestones("f1")[1], (M::ReplacementCreated, 20));
    // Same name: no overlap is measured against itself.
    assert!(!s.out.iter().any(|o| matches!(o, Output::Overlap { .. })));
}

#[test]
fn events_before_the_injection_do_not_count() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(100, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.cl(
        50,
        K::WorkerNotReady {
            worker: w("w1"),
            node: None,
        },
    );
    assert!(s.milestones("f1").is_empty());
    s.cl(
        120,
        K::WorkerNotReady {
            worker: w("w1"),
            node: None,
        },
    );
    assert_eq!(s.milestones("f1"), vec![(M::Detected, 120)]);
}

#[test]
fn node_kill_detection_prefers_the_first_signal_and_measures_zombies() {
    let mut s = Script::new(&["w1", "w2", "w3"]);
    s.inject(
        0,
        fault("f1", FaultKind::NodeKill, Some("n2"), None),
        &["w1", "w2"],
    );
    // Another node's Last Will is not this fault's detection.
    s.obs(
        500,
        Observation::NodeStatus {
            node: w("n3"),
            online: false,
        },
    );
    s.obs(
        800,
        Observation::NodeStatus {
            node: w("n2"),
            online: false,
        },
    );
    s.cl(3000, K::NodeNotReady { node: w("n2") });
    // w1 still catches balls after its node went NotReady.
    s.ball(3100, &[("w3", "n1"), ("w1", "n2")]);
    s.ball(3400, &[("w1", "n2")]);
    s.bring_up("w10", "n1", [4000, 4001, 4500, 5000]);
    s.bring_up("w11", "n3", [4000, 4002, 4600, 5100]);
    s.ball(5200, &[("w10", "n1"), ("w11", "n3")]);
    s.service(5300, 1.0);
    let ms = s.milestones("f1");
    assert_eq!(ms[0], (M::Detected, 800));
    assert_eq!(ms.last(), Some(&(M::ServiceRestored, 5300)));
    let z: Vec<_> = s
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Zombie {
                worker,
                node,
                from,
                to,
                ..
            } => Some((worker.clone(), node.clone(), s.ms(*from), s.ms(*to))),
            _ => None,
        })
        .collect();
    assert_eq!(z, vec![(w("w1"), w("n2"), 3000, 3400)]);
    // Zombies are journaled before the fault's end.
    let zi = s
        .out
        .iter()
        .position(|o| matches!(o, Output::Zombie { .. }))
        .unwrap();
    let ei = s
        .out
        .iter()
        .position(|o| matches!(o, Output::Ended { .. }))
        .unwrap();
    assert!(zi < ei);
    assert_phases_add_up(&s.tr);
}

#[test]
fn node_kill_with_returning_workers_has_no_created_or_scheduled_phase() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(
        0,
        fault("f1", FaultKind::NodeKill, Some("n2"), None),
        &["w1", "w2"],
    );
    s.cl(40_000, K::NodeNotReady { node: w("n2") });
    s.cl(41_000, K::NodeReady { node: w("n2") });
    s.cl(
        41_500,
        K::WorkerRunning {
            worker: w("w1"),
            node: w("n2"),
        },
    );
    s.cl(
        41_600,
        K::WorkerRunning {
            worker: w("w2"),
            node: w("n2"),
        },
    );
    s.cl(
        42_000,
        K::WorkerReady {
            worker: w("w2"),
            node: w("n2"),
        },
    );
    s.cl(
        42_500,
        K::WorkerReady {
            worker: w("w1"),
            node: w("n2"),
        },
    );
    s.ball(43_000, &[("w1", "n2"), ("w2", "n2")]);
    s.service(44_000, 0.93);
    assert_eq!(
        s.milestones("f1"),
        vec![
            (M::Detected, 40_000),
            (M::Running, 41_600),
            (M::Ready, 42_500),
            (M::Serving, 43_000),
            (M::ServiceRestored, 44_000),
        ]
    );
    assert_phases_add_up(&s.tr);
    // Balls after NodeReady are not zombies.
    assert!(!s.out.iter().any(|o| matches!(o, Output::Zombie { .. })));
}

#[test]
fn node_kill_mixing_a_returning_worker_and_a_new_one() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(
        0,
        fault("f1", FaultKind::NodeKill, Some("n2"), None),
        &["w1", "w2"],
    );
    s.cl(100, K::NodeNotReady { node: w("n2") });
    s.bring_up("w7", "n1", [200, 210, 300, 400]);
    s.cl(
        350,
        K::WorkerRunning {
            worker: w("w2"),
            node: w("n2"),
        },
    );
    s.cl(
        450,
        K::WorkerReady {
            worker: w("w2"),
            node: w("n2"),
        },
    );
    let ms = s.milestones("f1");
    // Created and scheduled come from w7 alone; running and ready from the later of both.
    assert_eq!(
        ms,
        vec![
            (M::Detected, 100),
            (M::ReplacementCreated, 200),
            (M::Scheduled, 210),
            (M::Running, 350),
            (M::Ready, 450),
        ]
    );
}

#[test]
fn node_kill_of_an_empty_node_recovers_on_the_first_good_sample() {
    let mut s = Script::new(&["w1"]);
    s.inject(0, fault("f1", FaultKind::NodeKill, Some("n4"), None), &[]);
    s.service(100, 1.0);
    assert_eq!(s.ended("f1"), None, "not detected yet");
    s.obs(200, Observation::HealthStale { node: w("n4") });
    s.service(300, 1.0);
    assert_eq!(
        s.milestones("f1"),
        vec![(M::Detected, 200), (M::ServiceRestored, 300)]
    );
    let ev = s.out.iter().find_map(|o| match o {
        Output::Milestone { event, .. } if event.milestone == M::Detected => Some(event.clone()),
        _ => None,
    });
    assert_eq!(ev.unwrap().precision_ms, 6000);
}

#[test]
fn scale_up_waits_for_every_new_worker() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(0, fault("f1", FaultKind::Scale, None, Some((2, 4))), &[]);
    s.cl(3, K::ReplicasChanged { replicas: 3 });
    assert!(s.milestones("f1").is_empty(), "another scale's count");
    s.cl(5, K::ReplicasChanged { replicas: 4 });
    s.bring_up("w3", "n1", [10, 11, 20, 30]);
    s.bring_up("w4", "n2", [12, 13, 25, 35]);
    s.ball(40, &[("w3", "n1"), ("w4", "n2")]);
    s.service(50, 1.0);
    assert_eq!(
        s.milestones("f1"),
        vec![
            (M::Detected, 5),
            (M::ReplacementCreated, 12),
            (M::Scheduled, 13),
            (M::Running, 25),
            (M::Ready, 35),
            (M::Serving, 40),
            (M::ServiceRestored, 50),
        ]
    );
}

#[test]
fn scale_down_recovers_after_the_surplus_is_gone() {
    let mut s = Script::new(&["w1", "w2", "w3", "w4"]);
    s.inject(0, fault("f1", FaultKind::Scale, None, Some((4, 2))), &[]);
    s.cl(
        5,
        K::WorkerTerminating {
            worker: w("w4"),
            node: None,
        },
    );
    s.service(10, 1.0);
    s.cl(
        20,
        K::WorkerDeleted {
            worker: w("w4"),
            node: None,
        },
    );
    s.service(30, 1.0);
    assert_eq!(s.ended("f1"), None);
    s.cl(
        40,
        K::WorkerDeleted {
            worker: w("w3"),
            node: None,
        },
    );
    s.service(50, 1.0);
    assert_eq!(
        s.milestones("f1"),
        vec![(M::Detected, 5), (M::ServiceRestored, 50)]
    );
    assert_eq!(s.ended("f1"), Some((FaultOutcome::Recovered, 50)));
}

#[test]
fn service_must_be_good_after_the_replacement_serves() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(0, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.cl(
        10,
        K::WorkerDeleted {
            worker: w("w1"),
            node: None,
        },
    );
    s.service(15, 1.0);
    s.bring_up("w3", "n1", [20, 21, 22, 23]);
    s.ball(30, &[("w3", "n1")]);
    s.service(40, 0.89);
    s.obs(
        45,
        Observation::Service {
            delivery_rate: None,
        },
    );
    assert_eq!(s.ended("f1"), None);
    s.service(50, 0.9);
    assert_eq!(s.ended("f1"), Some((FaultOutcome::Recovered, 50)));
}

#[test]
fn a_fault_that_does_not_recover_times_out_at_its_deadline() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(1000, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.cl(
        1010,
        K::WorkerDeleted {
            worker: w("w1"),
            node: None,
        },
    );
    let timeout = Duration::from_secs(5);
    assert!(s.tr.tick(s.at(5999), timeout).is_empty());
    let out = s.tr.tick(s.at(7000), timeout);
    assert_eq!(
        out,
        vec![Output::Ended {
            at: s.at(6000),
            fault_id: w("f1"),
            outcome: FaultOutcome::TimedOut
        }]
    );
    // Late signals no longer produce milestones.
    s.bring_up("w3", "n1", [7100, 7101, 7102, 7103]);
    assert_eq!(s.milestones("f1"), vec![(M::Detected, 1010)]);
    let t = &s.tr.timelines()[0];
    assert_eq!(t.outcome, FaultOutcome::TimedOut);
    assert_eq!(s.tr.open(), 0);
}

#[test]
fn abort_ends_every_open_fault() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(0, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.inject(1, fault("f2", FaultKind::PodKill, None, None), &["w2"]);
    let out = s.tr.abort(s.at(10));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| matches!(
        o,
        Output::Ended {
            outcome: FaultOutcome::Aborted,
            ..
        }
    )));
    assert_eq!(s.tr.open(), 0);
    assert_eq!(s.tr.timelines().len(), 2);
}

#[test]
fn overlap_is_measured_when_the_old_worker_outlives_its_replacements_start() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(0, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.cl(
        10,
        K::WorkerTerminating {
            worker: w("w1"),
            node: None,
        },
    );
    s.bring_up("w3", "n1", [20, 21, 22, 23]);
    s.ball(30, &[("w3", "n1")]);
    s.service(40, 1.0);
    assert_eq!(s.ended("f1"), Some((FaultOutcome::Recovered, 40)));
    // The old worker is deleted after the fault ended (grace period).
    s.cl(
        2000,
        K::WorkerDeleted {
            worker: w("w1"),
            node: None,
        },
    );
    let overlaps: Vec<_> = s
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Overlap {
                old_worker,
                new_worker,
                from,
                to,
                ..
            } => Some((
                old_worker.clone(),
                new_worker.clone(),
                s.ms(*from),
                s.ms(*to),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(overlaps, vec![(w("w1"), w("w3"), 30, 2000)]);
    // Reported once.
    s.cl(
        2001,
        K::WorkerDeleted {
            worker: w("w1"),
            node: None,
        },
    );
    assert_eq!(
        s.out
            .iter()
            .filter(|o| matches!(o, Output::Overlap { .. }))
            .count(),
        1
    );
}

#[test]
fn no_overlap_when_the_old_worker_is_gone_before_the_new_one_serves() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(0, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
    s.cl(
        10,
        K::WorkerTerminating {
            worker: w("w1"),
            node: None,
        },
    );
    s.cl(
        15,
        K::WorkerDeleted {
            worker: w("w1"),
            node: None,
        },
    );
    s.bring_up("w3", "n1", [20, 21, 22, 23]);
    s.ball(30, &[("w3", "n1")]);
    s.service(40, 1.0);
    assert!(!s.out.iter().any(|o| matches!(o, Output::Overlap { .. })));
    assert_eq!(s.tr.open(), 0);
}

#[test]
fn local_rack_sources_are_named_as_such() {
    let mut tr = Tracker::new(PRECISION, 0.9, &workers(&["w1"])).for_cluster("local");
    let t0 = Instant::now();
    tr.injected(Injected {
        at: t0,
        fault: fault("f1", FaultKind::NodeKill, Some("n1"), None),
        lost_workers: vec![],
    });
    let out = tr.observe(t0, &Observation::Cluster(K::NodeNotReady { node: w("n1") }));
    match &out[0] {
        Output::Milestone { event, .. } => assert_eq!(event.source, "local-rack"),
        o => panic!("{o:?}"),
    }
}

#[test]
fn predictions_come_from_the_detection_settings() {
    let det = Detection {
        profile: "default".into(),
        node_monitor_grace_s: Some(40),
        unreachable_toleration_s: Some(300),
        readiness_period_s: Some(10),
        ..Detection::default()
    };
    let (ms, why) = predict(FaultKind::NodeKill, "stop-k3s", &det).unwrap();
    assert_eq!(ms, 350_000);
    assert_eq!(
        why,
        "node-monitor-grace 40s + toleration 300s + readiness period 10s"
    );
    assert_eq!(
        predict(FaultKind::PodKill, "forced", &det).unwrap().0,
        10_000
    );
    assert_eq!(
        predict(FaultKind::NodeKill, "cordon-drain", &det)
            .unwrap()
            .0,
        10_000
    );
    assert_eq!(
        predict(FaultKind::PodKill, "forced", &Detection::default()),
        None
    );
    let p = Precision::from_detection(
        &Detection {
            mqtt_keepalive_s: Some(5),
            ..det
        },
        1000,
        6000,
    );
    assert_eq!((p.lwt_ms, p.ready_ms, p.service_ms), (7500, 10_000, 1000));
}

//! Node-kill sequences: detection signals, zombies, returning workers.

use super::*;

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
    s.obs(
        200,
        Observation::HealthStale {
            node: w("n4"),
            interval_ms: 500,
        },
    );
    s.service(300, 1.0);
    assert_eq!(
        s.milestones("f1"),
        vec![(M::Detected, 200), (M::ServiceRestored, 300)]
    );
    let ev = s.out.iter().find_map(|o| match o {
        Output::Milestone { event, .. } if event.milestone == M::Detected => Some(event.clone()),
        _ => None,
    });
    assert_eq!(ev.unwrap().precision_ms, 500, "the node's interval");
}

#[test]
fn local_rack_sources_are_named_as_such() {
    let mut tr = Tracker::new(PRECISION, 0.9, &workers(&["w1"]))
        .for_cluster(crate::model::ClusterKind::Local);
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

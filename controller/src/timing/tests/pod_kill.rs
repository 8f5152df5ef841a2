//! Pod-kill sequences: full timelines, sources and precision, clamping,
//! multi-replacement faults, slot assignment, overlaps.

use super::*;

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

//! Scale faults, timeouts, aborts and predicted bounds.

use super::*;

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

#[test]
fn exact_millisecond_settings_win_over_rounded_seconds() {
    let det = Detection {
        profile: "local".into(),
        node_monitor_grace_s: Some(4),
        unreachable_toleration_s: Some(0),
        readiness_period_s: Some(1),
        mqtt_keepalive_s: Some(2),
        extra: [
            ("readiness_period_ms", "200"),
            ("node_monitor_grace_ms", "3500"),
            ("mqtt_keepalive_ms", "2000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Detection::default()
    };
    let (ms, why) = predict(FaultKind::NodeKill, "net-drop", &det).unwrap();
    assert_eq!(ms, 3700);
    assert_eq!(
        why,
        "node-monitor-grace 3s 500ms + toleration 0s + readiness period 200ms"
    );
    let p = Precision::from_detection(&det, 500, 3000);
    assert_eq!((p.lwt_ms, p.ready_ms), (3000, 200));
}

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

const BUDGET: Budget = Budget {
    ball_ms: 10,
    workers: 8,
};

#[test]
fn predictions_cover_the_whole_recovery() {
    let det = Detection {
        profile: "default".into(),
        node_monitor_grace_s: Some(40),
        unreachable_toleration_s: Some(300),
        readiness_period_s: Some(10),
        readiness_failure_threshold: Some(3),
        ..Detection::default()
    };
    let p = predict(FaultKind::NodeKill, "stop-k3s", &det, &BUDGET).unwrap();
    // grace + event, toleration + event, 10 s x 3, 3 x 8 balls, 10 balls.
    assert_eq!(p.total_ms, 40_100 + 300_100 + 30_000 + 240 + 100);
    assert_eq!(
        p.basis,
        "detection: node-monitor-grace 40s + eviction: toleration 300s + start: not measured \
         + readiness: period 10s x 3 + serving: 240ms + restore: 100ms"
    );
    let sum: u64 = p.phases.iter().map(|(_, d)| d).sum();
    assert_eq!(sum, p.total_ms);
    let pod = predict(FaultKind::PodKill, "forced", &det, &BUDGET).unwrap();
    assert_eq!(pod.total_ms, 100 + 100 + 30_000 + 240 + 100);
    let drain = predict(FaultKind::NodeKill, "cordon-drain", &det, &BUDGET).unwrap();
    assert_eq!(drain.total_ms, pod.total_ms);
    assert_eq!(
        predict(FaultKind::PodKill, "forced", &Detection::default(), &BUDGET),
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
    assert_eq!(p.with_ball_rate(100.0).ball_ms, 10);
    assert_eq!(p.with_ball_rate(30.0).ball_ms, 34);
}

#[test]
fn the_measured_cold_start_and_start_delay_go_into_the_start_budget() {
    let det = Detection {
        profile: "local".into(),
        readiness_period_s: Some(1),
        extra: [
            ("readiness_period_ms", "200"),
            ("cold_start_ms", "450"),
            ("replacement_start_delay_ms", "300"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Detection::default()
    };
    let p = predict(FaultKind::PodKill, "graceful", &det, &BUDGET).unwrap();
    let ready = p.phases.iter().find(|(m, _)| *m == M::Ready).unwrap().1;
    assert_eq!(ready, 200 + 450 + 300);
    assert!(
        p.basis
            .contains("start: cold start 450ms + start delay 300ms"),
        "{}",
        p.basis
    );
}

#[test]
fn the_overrunning_phase_is_the_first_past_its_cumulative_budget() {
    let budget = [
        (M::Detected, 100),
        (M::ReplacementCreated, 100),
        (M::Ready, 500),
        (M::Serving, 50),
        (M::ServiceRestored, 50),
    ];
    let on_time = [
        (M::Detected, 90),
        (M::ReplacementCreated, 150),
        (M::Ready, 690),
        (M::ServiceRestored, 790),
    ];
    assert_eq!(overrun(&budget, &on_time), None);
    let late = [(M::Detected, 5), (M::Ready, 720), (M::ServiceRestored, 800)];
    assert_eq!(overrun(&budget, &late), Some((M::Ready, 720, 700)));
    let slow_restore = [
        (M::Detected, 5),
        (M::Serving, 700),
        (M::ServiceRestored, 801),
    ];
    assert_eq!(
        overrun(&budget, &slow_restore),
        Some((M::ServiceRestored, 801, 800))
    );
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
    let p = predict(FaultKind::NodeKill, "net-drop", &det, &BUDGET).unwrap();
    assert_eq!(p.phases[0], (M::Detected, 3600));
    assert!(
        p.basis
            .starts_with("detection: node-monitor-grace 3s 500ms + eviction: toleration 0s"),
        "{}",
        p.basis
    );
    let p = Precision::from_detection(&det, 500, 3000);
    assert_eq!((p.lwt_ms, p.ready_ms), (3000, 200));
}

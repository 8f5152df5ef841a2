//! Cold starts: a scale to zero held and scaled back, timed from the last
//! worker gone and from the scale-up to the *first* new worker.

use super::*;

fn cold(id: &str, from: u32, hold_ms: u64) -> FaultInjected {
    FaultInjected {
        action: crate::plan::SCALE_TO_ZERO_ACTION.into(),
        hold_ms: Some(hold_ms),
        ..fault(id, FaultKind::Scale, None, Some((from, 0)))
    }
}

fn deleted(s: &mut Script, ms: u64, name: &str) {
    s.cl(
        ms,
        K::WorkerDeleted {
            worker: w(name),
            node: None,
        },
    );
}

#[test]
fn a_cold_start_is_timed_from_zero_and_from_the_scale_up() {
    let mut s = Script::new(&["w1", "w2"]);
    s.inject(0, cold("f1", 2, 1000), &[]);
    s.cl(2, K::ReplicasChanged { replicas: 0 });
    deleted(&mut s, 30, "w1");
    assert!(
        !s.milestones("f1").contains(&(M::ZeroReached, 30)),
        "one worker is still there"
    );
    deleted(&mut s, 40, "w2");
    // Balls refused at zero are not delivered; nothing is restored yet.
    s.service(500, 0.0);
    let out = s.tr.scale_up_issued(s.at(1040), "f1", 2);
    s.out.extend(out);
    s.bring_up("w3", "n1", [1050, 1051, 1300, 1600]);
    s.bring_up("w4", "n2", [1052, 1053, 1400, 1900]);
    s.ball(1700, &[("w3", "n1")]);
    s.service(2000, 1.0);
    assert_eq!(
        s.milestones("f1"),
        vec![
            (M::Detected, 2),
            (M::ZeroReached, 40),
            (M::ScaleUpIssued, 1040),
            (M::ReplacementCreated, 1050),
            (M::Scheduled, 1051),
            (M::Running, 1300),
            (M::Ready, 1600),
            (M::Serving, 1700),
            (M::ServiceRestored, 2000),
        ],
        "the first new worker's milestones"
    );
    assert_eq!(s.ended("f1"), Some((FaultOutcome::Recovered, 2000)));
}

#[test]
fn nothing_after_zero_is_decided_before_the_scale_up() {
    let mut s = Script::new(&["w1"]);
    s.inject(0, cold("f1", 1, 500), &[]);
    deleted(&mut s, 10, "w1");
    s.service(100, 1.0);
    assert_eq!(
        s.milestones("f1"),
        vec![(M::Detected, 10), (M::ZeroReached, 10)],
        "the last worker gone is detection too"
    );
    assert_eq!(s.ended("f1"), None);
}

#[test]
fn a_cold_start_times_out_from_the_scale_up_not_from_injection() {
    let mut s = Script::new(&["w1"]);
    s.inject(0, cold("f1", 1, 10_000), &[]);
    deleted(&mut s, 10, "w1");
    let timeout = Duration::from_secs(5);
    assert!(
        s.tr.tick(s.at(14_000), timeout).is_empty(),
        "the hold is planned: 10 s + 5 s"
    );
    let out = s.tr.scale_up_issued(s.at(10_010), "f1", 1);
    s.out.extend(out);
    assert!(s.tr.tick(s.at(15_000), timeout).is_empty());
    let out = s.tr.tick(s.at(15_010), timeout);
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Ended {
                outcome: FaultOutcome::TimedOut,
                ..
            }
        )),
        "{out:?}"
    );
}

#[test]
fn a_rack_already_empty_is_at_zero_on_injection() {
    let mut s = Script::new(&[]);
    s.inject(5, cold("f1", 2, 100), &[]);
    s.service(6, 0.0);
    assert_eq!(
        s.milestones("f1"),
        vec![(M::Detected, 5), (M::ZeroReached, 5)]
    );
}

use super::*;
use crate::journal::event::{Event, FaultInjected, JournalLine, MilestoneEvent};

fn line(seq: u64, t_ms: u64, event: Event) -> JournalLine {
    JournalLine {
        v: 1,
        seq,
        t_ms,
        event,
    }
}

pub(crate) fn injected(id: &str, kind: FaultKind, node: &str) -> Event {
    Event::FaultInjected(FaultInjected {
        fault_id: id.into(),
        fault: "kill".into(),
        kind,
        action: "graceful".into(),
        targets: vec!["w1".into()],
        node: Some(node.into()),
        replicas_from: None,
        replicas_to: None,
        hold_ms: None,
        predicted_ms: Some(3000),
        predicted_basis: None,
        predicted_phases: Vec::new(),
    })
}

fn milestone(id: &str, m: Milestone, precision_ms: u64) -> Event {
    Event::Milestone(MilestoneEvent {
        fault_id: id.into(),
        milestone: m,
        source: "test".into(),
        precision_ms,
        subject: None,
    })
}

fn ended(id: &str, outcome: FaultOutcome) -> Event {
    Event::FaultEnded {
        fault_id: id.into(),
        outcome,
    }
}

#[test]
fn a_fault_closes_at_the_reports_total_and_breaches_its_prediction() {
    let mut s = Story::default();
    assert_eq!(
        s.apply(&line(0, 1000, injected("f1", FaultKind::PodKill, "n1"))),
        Change::Injected("f1".into())
    );
    s.apply(&line(1, 1100, milestone("f1", Milestone::Detected, 5)));
    s.apply(&line(2, 2600, milestone("f1", Milestone::Ready, 200)));
    s.apply(&line(
        3,
        4500,
        milestone("f1", Milestone::ServiceRestored, 500),
    ));
    assert_eq!(s.open(), 1);
    assert_eq!(s.fault("f1").unwrap().total_ms, None);
    let names: Vec<_> = s.faults[0]
        .milestones
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["detected", "ready", "service-restored"]);
    assert_eq!(s.faults[0].milestones[1].after_ms, 1600);
    s.apply(&line(4, 4600, ended("f1", FaultOutcome::Recovered)));
    let f = s.fault("f1").unwrap();
    assert_eq!((f.total_ms, f.precision_ms), (Some(3500), Some(500)));
    assert!(f.over_prediction, "3.5 s is over the 3 s prediction");
    assert!(f.slo_breached, "no SLO known counts as a breach");
    assert_eq!(s.open(), 0);
}

#[test]
fn node_signals_are_the_first_of_each_after_injection() {
    let mut s = Story::default();
    let cluster = |what: &str| Event::Cluster {
        what: what.into(),
        name: "n2".into(),
        node: None,
    };
    s.apply(&line(0, 100, cluster("node-offline")));
    s.apply(&line(1, 1000, injected("f2", FaultKind::NodeKill, "n2")));
    s.apply(&line(2, 1800, cluster("node-health-stale")));
    s.apply(&line(3, 2100, cluster("node-offline")));
    s.apply(&line(4, 5000, cluster("node-not-ready")));
    let f = s.fault("f2").unwrap();
    assert_eq!(
        (f.rackpong_detected_ms, f.not_ready_ms),
        (Some(800), Some(4000))
    );
}

#[test]
fn the_service_series_stays_bounded() {
    let mut s = Story::default();
    for i in 0..10 * MAX_SERIES as u64 {
        let level = crate::model::ServiceLevel {
            window_ms: 1000,
            sent: 1,
            caught: 1,
            dropped: 0,
            timed_out: 0,
            delivery_rate: Some(1.0),
            p50_ms: None,
            p95_ms: Some(3.0),
            p99_ms: None,
            refused: 0,
            refused_total: 0,
        };
        s.apply(&line(i, i * 500, Event::Service(level)));
    }
    assert!(s.service.len() <= MAX_SERIES && s.service.len() > MAX_SERIES / 4);
    let t: Vec<u64> = s.service.iter().map(|p| p.t_ms).collect();
    assert!(t.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn zombie_windows_and_overlaps_land_on_their_fault() {
    let mut s = Story::default();
    s.apply(&line(0, 1000, injected("f1", FaultKind::NodeKill, "node2")));
    let zombie = Event::Zombie {
        fault_id: "f1".into(),
        worker: "worker-2".into(),
        node: "node2".into(),
        from_ms: 5000,
        to_ms: 5013,
    };
    let overlap = Event::Overlap {
        fault_id: "f1".into(),
        old_worker: "worker-2".into(),
        new_worker: "worker-5".into(),
        from_ms: 6000,
        to_ms: 14097,
    };
    let stray = Event::Overlap {
        fault_id: "f9".into(),
        old_worker: "a".into(),
        new_worker: "b".into(),
        from_ms: 1,
        to_ms: 2,
    };
    assert_eq!(s.apply(&line(1, 5100, zombie)), Change::Other);
    s.apply(&line(2, 14100, overlap));
    s.apply(&line(3, 14200, stray));
    let w = &s.fault("f1").unwrap().windows;
    assert_eq!(w.len(), 2);
    assert_eq!(
        (w[0].kind, w[0].after_ms, w[0].duration_ms),
        ("zombie", 4000, 13)
    );
    assert_eq!((w[1].kind, w[1].other.as_str()), ("overlap", "worker-5"));
    assert_eq!((w[1].after_ms, w[1].duration_ms), (5000, 8097));
}

use super::*;
use crate::journal::event::{Event, FaultInjected, FaultOutcome, JournalLine, MilestoneEvent};
use crate::model::{FaultKind, Milestone};

fn feed(story: &mut Story, t_ms: u64, event: Event) -> Option<String> {
    let change = story.apply(&JournalLine {
        v: 1,
        seq: 0,
        t_ms,
        event,
    });
    event_line(story, &change)
}

#[test]
fn one_line_per_fault_event_and_nothing_for_the_rest() {
    let mut s = Story::default();
    let inj = Event::FaultInjected(FaultInjected {
        fault_id: "f1".into(),
        fault: "kill-a-pod".into(),
        kind: FaultKind::PodKill,
        action: "graceful".into(),
        targets: vec!["worker-3".into()],
        node: Some("node-2".into()),
        replicas_from: None,
        replicas_to: None,
        hold_ms: None,
        predicted_ms: Some(4000),
        predicted_basis: None,
        predicted_phases: Vec::new(),
    });
    let line = feed(&mut s, 12_300, inj).unwrap();
    assert_eq!(
        line,
        " 0:12.3 f1   INJECTED   pod-kill graceful → worker-3 on node-2  (predicted ≤ 4.000 s)"
    );
    let m = Event::Milestone(MilestoneEvent {
        fault_id: "f1".into(),
        milestone: Milestone::ServiceRestored,
        source: "factory".into(),
        precision_ms: 250,
        subject: None,
    });
    assert_eq!(feed(&mut s, 14_000, m), None);
    let end = Event::FaultEnded {
        fault_id: "f1".into(),
        outcome: FaultOutcome::Recovered,
    };
    let line = feed(&mut s, 14_100, end).unwrap();
    assert!(
        line.contains("f1   RECOVERED  in 1.700 s ± 0.250 s"),
        "{line}"
    );
    let refused = Event::FaultRefused {
        fault: "stop-a-node".into(),
        kind: FaultKind::NodeKill,
        target: Some("node-1".into()),
        reason: "would leave 3 of 4 nodes NotReady".into(),
    };
    let line = feed(&mut s, 61_000, refused).unwrap();
    assert!(
        line.starts_with(" 1:01.0 --   REFUSED    stop-a-node (node-kill node-1): would"),
        "{line}"
    );
}

#[test]
fn rumqttds_normal_disconnect_is_noise() {
    assert!(logs::is_noise_message(
        "no-connection id 12 is already gone"
    ));
    assert!(!logs::is_noise_message("connection 12 failed: broken pipe"));
}

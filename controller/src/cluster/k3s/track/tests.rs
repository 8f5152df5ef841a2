//! Tracker transitions, object by object.

use serde_json::json;

use super::*;

fn pod(phase: &str, node: Option<&str>, running: bool, ready: bool, deleting: bool) -> Pod {
    let mut p = json!({
        "metadata": { "name": "w1", "namespace": "rackpong" },
        "spec": { "containers": [{ "name": "worker" }] },
        "status": {
            "phase": phase,
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
            "containerStatuses": [{
                "name": "worker", "ready": ready, "restartCount": 0, "image": "a", "imageID": "",
                "state": if running { json!({ "running": {} }) } else { json!({ "waiting": { "reason": "CrashLoopBackOff" } }) }
            }]
        }
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = n.into();
    }
    if deleting {
        p["metadata"]["deletionTimestamp"] = "2026-11-21T20:42:40Z".into();
    }
    serde_json::from_value(p).unwrap()
}

fn names(kinds: &[ClusterEventKind]) -> Vec<&'static str> {
    kinds
        .iter()
        .map(|k| match k {
            ClusterEventKind::WorkerCreated { .. } => "created",
            ClusterEventKind::WorkerScheduled { .. } => "scheduled",
            ClusterEventKind::WorkerRunning { .. } => "running",
            ClusterEventKind::WorkerReady { .. } => "ready",
            ClusterEventKind::WorkerNotReady { .. } => "not-ready",
            ClusterEventKind::WorkerTerminating { .. } => "terminating",
            ClusterEventKind::WorkerDeleted { .. } => "deleted",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_pod_seen_late_reports_every_step_it_already_took_in_order() {
    let mut t = PodTracker::default();
    let kinds = t.apply(&pod("Running", Some("pi2"), true, true, false));
    assert_eq!(names(&kinds), ["created", "scheduled", "running", "ready"]);
    assert!(
        t.apply(&pod("Running", Some("pi2"), true, true, false))
            .is_empty()
    );
}

#[test]
fn readiness_flaps_are_each_reported_once() {
    let mut t = PodTracker::default();
    t.seed(&pod("Running", Some("pi2"), true, true, false));
    assert_eq!(
        names(&t.apply(&pod("Running", Some("pi2"), true, false, false))),
        ["not-ready"]
    );
    assert!(
        t.apply(&pod("Running", Some("pi2"), true, false, false))
            .is_empty()
    );
    assert_eq!(
        names(&t.apply(&pod("Running", Some("pi2"), true, true, false))),
        ["ready"]
    );
}

#[test]
fn phase_running_without_a_running_container_is_not_running() {
    let p = pod("Running", Some("pi2"), false, false, false);
    assert!(!pod_running(&p));
    let mut t = PodTracker::default();
    assert_eq!(names(&t.apply(&p)), ["created", "scheduled"]);
}

#[test]
fn deletion_is_reported_once_and_only_for_known_pods() {
    let mut t = PodTracker::default();
    let p = pod("Running", Some("pi2"), true, true, true);
    assert!(t.delete(&p).is_empty(), "never seen: nothing to report");
    t.seed(&p);
    assert_eq!(
        t.delete(&p),
        [ClusterEventKind::WorkerDeleted {
            worker: "w1".into(),
            node: Some("pi2".into())
        }]
    );
    assert!(t.delete(&p).is_empty());
}

#[test]
fn node_readiness_unknown_is_not_ready_and_changes_are_reported_once() {
    let node = |status: &str| -> Node {
        serde_json::from_value(json!({
            "metadata": { "name": "pi3" },
            "status": { "conditions": [{ "type": "Ready", "status": status }] }
        }))
        .unwrap()
    };
    let mut t = NodeTracker::default();
    t.seed(&node("True"));
    assert_eq!(t.apply(&node("True")), None);
    assert_eq!(
        t.apply(&node("Unknown")),
        Some(ClusterEventKind::NodeNotReady { node: "pi3".into() })
    );
    assert_eq!(t.apply(&node("False")), None, "still not ready");
    assert_eq!(
        t.apply(&node("True")),
        Some(ClusterEventKind::NodeReady { node: "pi3".into() })
    );
    assert_eq!(
        t.delete(&node("True")),
        Some(ClusterEventKind::NodeNotReady { node: "pi3".into() })
    );
}

#[test]
fn the_ready_set_changes_only_when_a_worker_starts_or_stops_taking_balls() {
    let mut t = PodTracker::default();
    t.seed(&pod("Running", Some("pi2"), true, true, false));
    assert_eq!(t.take_ready_change(), Some(vec!["w1".to_string()]));
    t.apply(&pod("Running", Some("pi2"), true, true, false));
    assert_eq!(t.take_ready_change(), None, "nothing changed");
    t.apply(&pod("Running", Some("pi2"), true, true, true));
    assert_eq!(
        t.take_ready_change(),
        Some(vec![]),
        "terminating takes no balls"
    );
    t.delete(&pod("Running", Some("pi2"), true, true, true));
    assert_eq!(t.take_ready_change(), None);
}

//! One test per rule, each showing the refusal and the allowed neighbour.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn limits(max_unavailable: u32) -> SafetyLimits {
    SafetyLimits {
        max_unavailable,
        namespaces: vec!["rackpong".into()],
        opt_in_label: "rackpong.dev/chaos=true".into(),
        dry_run: false,
        allow_zero: false,
    }
}

fn node(name: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        ready: true,
        chaos_opt_in: true,
        protected: None,
        cordoned: false,
    }
}

fn worker(name: &str, node: &str) -> WorkerInfo {
    WorkerInfo {
        name: name.into(),
        node: Some(node.into()),
        ready: true,
        terminating: false,
        chaos_opt_in: true,
    }
}

/// 4 nodes, 2 workers on each of n2..n4 (n1 runs none).
fn rack() -> (Vec<NodeInfo>, Vec<WorkerInfo>) {
    let nodes = ["n1", "n2", "n3", "n4"].map(node).to_vec();
    let mut workers = Vec::new();
    for (i, n) in ["n2", "n2", "n3", "n3", "n4", "n4"].iter().enumerate() {
        workers.push(worker(&format!("w{i}"), n));
    }
    (nodes, workers)
}

fn view<'a>(nodes: &'a [NodeInfo], workers: &'a [WorkerInfo]) -> View<'a> {
    View {
        nodes,
        workers,
        replicas: workers.len() as u32,
        pdb: None,
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

#[test]
fn pod_kill_chooses_only_opted_in_ready_workers_deterministically() {
    let (nodes, mut workers) = rack();
    for w in &mut workers[..4] {
        w.chaos_opt_in = false;
    }
    workers[4].ready = false;
    let v = View {
        replicas: 6,
        ..view(&nodes, &workers)
    };
    let chosen = pod_kill(v, &limits(2), Amount::Count(1), &mut rng()).unwrap();
    assert_eq!(chosen, vec!["w5".to_string()]);
    let again = pod_kill(v, &limits(6), Amount::Percent(50), &mut rng()).unwrap();
    assert_eq!(
        again,
        pod_kill(v, &limits(6), Amount::Percent(50), &mut rng()).unwrap()
    );
}

#[test]
fn pod_kill_with_nothing_opted_in_is_refused() {
    let (nodes, mut workers) = rack();
    workers.iter_mut().for_each(|w| w.chaos_opt_in = false);
    let r = pod_kill(
        view(&nodes, &workers),
        &limits(3),
        Amount::Count(1),
        &mut rng(),
    )
    .unwrap_err();
    assert_eq!(r.rule, Rule::NoTarget);
    assert!(r.reason.contains("rackpong.dev/chaos=true"), "{r}");
}

#[test]
fn pod_kill_never_exceeds_max_unavailable() {
    let (nodes, mut workers) = rack();
    workers[0].ready = false; // one already unavailable
    let v = view(&nodes, &workers);
    assert!(pod_kill(v, &limits(2), Amount::Count(1), &mut rng()).is_ok());
    let r = pod_kill(v, &limits(2), Amount::Count(2), &mut rng()).unwrap_err();
    assert_eq!(r.rule, Rule::MaxUnavailable);
    assert!(r.reason.contains("3 workers unavailable"), "{r}");
}

#[test]
fn pod_kill_never_takes_the_last_ready_replica() {
    let nodes = vec![node("n1")];
    let workers = vec![worker("w0", "n1")];
    let r = pod_kill(
        view(&nodes, &workers),
        &limits(5),
        Amount::Percent(100),
        &mut rng(),
    )
    .unwrap_err();
    assert_eq!(r.rule, Rule::LastReplica);
}

#[test]
fn pod_kill_respects_the_pdb() {
    let (nodes, workers) = rack();
    let v = View {
        pdb: Some(Pdb {
            min_available: Some(PdbValue::Count(5)),
            max_unavailable: None,
        }),
        ..view(&nodes, &workers)
    };
    assert!(pod_kill(v, &limits(3), Amount::Count(1), &mut rng()).is_ok());
    let r = pod_kill(v, &limits(3), Amount::Count(2), &mut rng()).unwrap_err();
    assert_eq!(r.rule, Rule::Pdb);
    assert!(r.reason.contains("allows 1"), "{r}");
}

#[test]
fn pdb_percentages_round_like_kubernetes() {
    let min = Pdb {
        min_available: Some(PdbValue::Percent(50)),
        max_unavailable: None,
    };
    // 50 % of 5 rounds up to 3 desired healthy.
    assert_eq!(min.disruptions_allowed(5, 5), 2);
    let max = Pdb {
        min_available: None,
        max_unavailable: Some(PdbValue::Percent(25)),
    };
    // 25 % of 6 rounds up to 2 unavailable: 4 must stay healthy.
    assert_eq!(max.disruptions_allowed(6, 6), 2);
    assert_eq!(max.disruptions_allowed(6, 4), 0);
    assert_eq!(Pdb::default().disruptions_allowed(3, 3), 3);
}

#[test]
fn node_kill_never_touches_a_protected_node() {
    let (mut nodes, workers) = rack();
    nodes[1].protected = Some("k3s server".into());
    let v = view(&nodes, &workers);
    let r = node_kill(v, &limits(3), Some("n2"), &mut rng()).unwrap_err();
    assert_eq!(r.rule, Rule::ProtectedNode);
    assert!(r.reason.contains("k3s server"), "{r}");
    for seed in 0..20 {
        let c = node_kill(v, &limits(3), None, &mut StdRng::seed_from_u64(seed)).unwrap();
        assert_ne!(c.node, "n2");
    }
}

#[test]
fn node_kill_never_leaves_more_than_half_the_nodes_not_ready() {
    let (mut nodes, workers) = rack();
    nodes[0].ready = false;
    let v = view(&nodes, &workers);
    // 2 of 4 NotReady is half: allowed.
    assert!(node_kill(v, &limits(3), Some("n2"), &mut rng()).is_ok());
    nodes[2].ready = false;
    let v = view(&nodes, &workers);
    let r = node_kill(v, &limits(3), Some("n2"), &mut rng()).unwrap_err();
    assert_eq!(r.rule, Rule::HalfNodes);
    let r = node_kill(v, &limits(3), None, &mut rng()).unwrap_err();
    assert!(r.reason.starts_with("no node may be faulted"), "{r}");
}

#[test]
fn node_kill_counts_the_nodes_workers_as_unavailable() {
    let (nodes, workers) = rack();
    let v = view(&nodes, &workers);
    let c = node_kill(v, &limits(2), Some("n3"), &mut rng()).unwrap();
    assert_eq!(c.workers, vec!["w2".to_string(), "w3".to_string()]);
    let r = node_kill(v, &limits(1), Some("n3"), &mut rng()).unwrap_err();
    assert_eq!(r.rule, Rule::MaxUnavailable);
    assert!(r.reason.starts_with("node n3:"), "{r}");
    // With max 1, only the empty node n1 may go.
    assert_eq!(
        node_kill(v, &limits(1), None, &mut rng()).unwrap().node,
        "n1"
    );
}

#[test]
fn node_kill_needs_an_opted_in_ready_node() {
    let (mut nodes, workers) = rack();
    nodes[3].chaos_opt_in = false;
    nodes[2].cordoned = true;
    let v = view(&nodes, &workers);
    assert_eq!(
        node_kill(v, &limits(3), Some("n4"), &mut rng())
            .unwrap_err()
            .rule,
        Rule::NoTarget
    );
    assert_eq!(
        node_kill(v, &limits(3), Some("n3"), &mut rng())
            .unwrap_err()
            .rule,
        Rule::NoTarget
    );
    assert_eq!(
        node_kill(v, &limits(3), Some("nx"), &mut rng())
            .unwrap_err()
            .rule,
        Rule::NoTarget
    );
}

#[test]
fn node_kill_never_takes_the_last_ready_replica() {
    let nodes = ["n1", "n2", "n3"].map(node).to_vec();
    let workers = vec![worker("w0", "n2"), worker("w1", "n2")];
    let r = node_kill(view(&nodes, &workers), &limits(5), Some("n2"), &mut rng()).unwrap_err();
    assert_eq!(r.rule, Rule::LastReplica);
}

#[test]
fn scale_goes_to_zero_only_when_the_plan_opted_in() {
    assert_eq!(scale(0, &limits(1)).unwrap_err().rule, Rule::LastReplica);
    assert!(scale(1, &limits(1)).is_ok());
    let planned = SafetyLimits {
        allow_zero: true,
        ..limits(1)
    };
    assert!(scale(0, &planned).is_ok());
}

#[test]
fn a_planned_cold_start_is_exempt_from_the_last_replica_rule_only() {
    let (nodes, workers) = rack();
    let planned = SafetyLimits {
        allow_zero: true,
        ..limits(1)
    };
    // max-unavailable 1 and the last-replica rule do not stop a planned zero.
    assert!(scale_to_zero(view(&nodes, &workers), &planned, &[]).is_ok());
    let r = scale_to_zero(view(&nodes, &workers), &limits(1), &[]).unwrap_err();
    assert_eq!(r.rule, Rule::LastReplica, "not opted in");
    let r = scale_to_zero(view(&nodes, &workers), &planned, &["f1".into()]).unwrap_err();
    assert_eq!(r.rule, Rule::Recovering);
    assert!(r.reason.contains("f1"), "{}", r.reason);
    let r = scale_to_zero(view(&nodes, &[]), &planned, &[]).unwrap_err();
    assert_eq!(r.rule, Rule::NoTarget, "already at zero");
    // A pod-kill still never takes the last ready worker, opted in or not.
    let one = vec![worker("w0", "n2")];
    let r = pod_kill(view(&nodes, &one), &planned, Amount::Count(1), &mut rng()).unwrap_err();
    assert_eq!(r.rule, Rule::LastReplica);
}

#[test]
fn nothing_fires_during_a_planned_zero() {
    assert!(planned_zero(None).is_ok());
    let r = planned_zero(Some("f2")).unwrap_err();
    assert_eq!(r.rule, Rule::PlannedZero);
    assert!(r.reason.contains("f2"), "{}", r.reason);
}

#[test]
fn namespace_must_be_allowed() {
    let l = limits(1);
    assert!(namespace(Some("rackpong"), &l).is_ok());
    assert!(namespace(None, &l).is_ok());
    assert_eq!(
        namespace(Some("kube-system"), &l).unwrap_err().rule,
        Rule::Namespace
    );
    let open = SafetyLimits {
        namespaces: vec![],
        ..l
    };
    assert!(namespace(Some("anything"), &open).is_ok());
}

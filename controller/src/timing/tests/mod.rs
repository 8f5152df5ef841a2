//! Scripted event sequences through the tracker: ordering, clamping,
//! multi-replacement faults, node faults with returning workers, scale up
//! and down, timeouts, aborts, zombies and overlaps.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::cluster::ClusterEventKind as K;
use crate::journal::event::{FaultInjected, FaultOutcome};
use crate::model::{Detection, FaultKind, Milestone as M};

const PRECISION: Precision = Precision {
    event_ms: 1,
    lwt_ms: 7500,
    stale_ms: 6000,
    ready_ms: 1000,
    service_ms: 500,
    ball_ms: 10,
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
        hold_ms: None,
        predicted_ms: None,
        predicted_basis: None,
        predicted_phases: Vec::new(),
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

mod cold_start;
mod node_kill;
mod pod_kill;
mod restore;
mod scale_and_ends;

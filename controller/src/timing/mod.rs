//! Recovery timing: turns what the controller observes (cluster watch
//! events, MQTT status / health / birth messages, ball outcomes and
//! service-level samples, each stamped with the monotonic instant it
//! arrived) into per-fault milestones: detected, replacement-created,
//! scheduled, running, ready, serving, service-restored. Pure logic, no I/O
//! and no clock of its own: the engine feeds it and journals its outputs.
//!
//! Milestones are emitted in order and never go back in time: a signal seen
//! before its predecessor (a ball caught by a new worker before the Ready
//! condition arrived) is recorded at the predecessor's instant, so phases
//! never overlap and add up to the total. A milestone no signal was seen for
//! (a node's old worker coming back is never "created") is absent, and the
//! phase before it spans it. A fault with several replacements reaches a
//! milestone when the last of them does.

mod fault;
pub(crate) mod predict;
pub(crate) mod stale;

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::{ClusterEventKind, WorkerInfo};
use crate::journal::event::{FaultInjected, FaultOutcome, MilestoneEvent};
use crate::model::ClusterKind;
use crate::model::{FaultKind, Milestone};
use fault::FaultTrack;
pub use predict::{Budget, Precision, Prediction, overrun, predict};

/// Something observed, besides cluster events, that timing needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Cluster(ClusterEventKind),
    /// `nodes/<node>/status`: retained birth or Last Will.
    NodeStatus {
        node: String,
        online: bool,
    },
    /// No health sample from `node` for [`stale::STALE_AFTER_INTERVALS`] ×
    /// its interval; observed at the last sample plus one interval.
    HealthStale {
        node: String,
        /// The node's interval: the precision of the observation.
        interval_ms: u64,
    },
    /// `workers/<worker>/status`: birth or Last Will.
    WorkerStatus {
        worker: String,
        online: bool,
    },
    /// A ball was caught; `hops` is its trail as (worker, node), the catching
    /// worker last.
    BallCaught {
        hops: Vec<(String, String)>,
    },
    /// A service-level sample from the ball factory.
    Service {
        delivery_rate: Option<f64>,
    },
    /// One ball's outcome as the factory saw it: its number in send order,
    /// when it was sent, and whether it was delivered (caught). Once these
    /// arrive, service-restored is decided from them (see [`RESTORE_RUN`]).
    Ball {
        seq: u64,
        sent: Instant,
        delivered: bool,
    },
}

/// The restore rule: a fault's service is restored at the send time of the
/// first ball of a run of this many consecutive (in send order) delivered
/// balls, all sent at or after the fault's last recovery milestone. Its
/// precision is the gap to the ball sent before it (the ball spacing): the
/// service came back somewhere in that gap.
pub const RESTORE_RUN: usize = 10;

/// How long ball outcomes are kept (by send time) for the restore rule.
const BALL_LOG_SPAN: Duration = Duration::from_secs(300);

/// Ball outcomes by number: seq -> (sent, delivered).
pub(crate) type BallLog = std::collections::BTreeMap<u64, (Instant, bool)>;

/// What the tracker concluded, to be journaled.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Milestone {
        at: Instant,
        event: MilestoneEvent,
    },
    /// A worker kept catching balls after its node went NotReady.
    Zombie {
        fault_id: String,
        worker: String,
        node: String,
        from: Instant,
        to: Instant,
    },
    /// An old worker was still terminating while its replacement served.
    Overlap {
        fault_id: String,
        old_worker: String,
        new_worker: String,
        from: Instant,
        to: Instant,
    },
    Ended {
        at: Instant,
        fault_id: String,
        outcome: FaultOutcome,
    },
}

/// A finished fault's timeline, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub fault_id: String,
    pub fault: String,
    pub kind: FaultKind,
    pub injected: Instant,
    pub milestones: Vec<(Milestone, Instant)>,
    pub outcome: FaultOutcome,
    pub ended: Instant,
}

impl Timeline {
    /// Consecutive phases from injection through every reached milestone:
    /// (phase end milestone, duration). They add up to [`Timeline::total`].
    pub fn phases(&self) -> Vec<(Milestone, Duration)> {
        let mut prev = self.injected;
        self.milestones
            .iter()
            .map(|(m, at)| {
                let d = at.saturating_duration_since(prev);
                prev = *at;
                (*m, d)
            })
            .collect()
    }

    /// Injection to the last milestone reached.
    pub fn total(&self) -> Duration {
        self.milestones.last().map_or(Duration::ZERO, |(_, at)| {
            at.saturating_duration_since(self.injected)
        })
    }
}

/// What the engine tells the tracker about an injected fault.
#[derive(Debug, Clone)]
pub struct Injected {
    pub at: Instant,
    pub fault: FaultInjected,
    /// Workers the fault takes away (pod-kill targets, the node's workers).
    pub lost_workers: Vec<String>,
}

/// Follows every open fault through its milestones.
#[derive(Debug)]
pub struct Tracker {
    precision: Precision,
    min_delivery_rate: f64,
    /// Every worker name seen so far; a created worker not in it is new.
    known: std::collections::HashSet<String>,
    /// Workers that exist now (created and not yet deleted): a cold start
    /// reaches zero when the last one is deleted.
    live: std::collections::HashSet<String>,
    /// Nodes currently NotReady, since when.
    not_ready: HashMap<String, Instant>,
    faults: Vec<FaultTrack>,
    done: Vec<Timeline>,
    /// Source names of cluster observations: `watch-pod`/`watch-node` on
    /// k3s, `local-rack` on the local rack.
    pod_source: &'static str,
    node_source: &'static str,
    /// Ball outcomes arrive: restore is decided from them, not from samples.
    balls: bool,
    ball_log: BallLog,
}

impl Tracker {
    /// `workers` are the workers existing before the first fault.
    pub fn new(precision: Precision, min_delivery_rate: f64, workers: &[WorkerInfo]) -> Self {
        Tracker {
            precision,
            min_delivery_rate,
            known: workers.iter().map(|w| w.name.clone()).collect(),
            live: workers.iter().map(|w| w.name.clone()).collect(),
            not_ready: HashMap::new(),
            faults: Vec::new(),
            done: Vec::new(),
            pod_source: "watch-pod",
            node_source: "watch-node",
            balls: false,
            ball_log: BallLog::new(),
        }
    }

    /// Names the sources after the cluster kind.
    pub fn for_cluster(mut self, kind: ClusterKind) -> Self {
        if kind == ClusterKind::Local {
            self.pod_source = "local-rack";
            self.node_source = "local-rack";
        }
        self
    }

    /// Starts following a fault.
    pub fn injected(&mut self, inj: Injected) {
        let at = inj.at;
        let mut track = FaultTrack::new(inj, self.pod_source);
        if self.live.is_empty() {
            track.zero_reached(at, None, self.precision.event_ms);
        }
        self.faults.push(track);
    }

    /// The engine scaled a cold start's workers back up to `replicas` at `at`.
    pub fn scale_up_issued(&mut self, at: Instant, fault_id: &str, replicas: u32) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(f) = self.faults.iter_mut().find(|f| f.id() == fault_id) {
            f.scale_up_issued(at, replicas);
        }
        self.advance(&mut out);
        out
    }

    /// Faults not yet ended.
    pub fn open(&self) -> usize {
        self.faults.iter().filter(|f| !f.is_ended()).count()
    }

    /// The ids of the faults not yet ended.
    pub fn open_fault_ids(&self) -> Vec<String> {
        let open = self.faults.iter().filter(|f| !f.is_ended());
        open.map(|f| f.id().to_string()).collect()
    }

    /// Timelines of the faults that ended, in the order they ended.
    pub fn timelines(&self) -> &[Timeline] {
        &self.done
    }

    /// Feeds one observation; returns what it concluded, in order.
    pub fn observe(&mut self, at: Instant, obs: &Observation) -> Vec<Output> {
        let mut out = Vec::new();
        match obs {
            Observation::Cluster(ev) => self.cluster(at, ev),
            Observation::NodeStatus {
                node,
                online: false,
            } => self.node_signal(at, node, "mqtt-lwt", self.precision.lwt_ms),
            Observation::HealthStale { node, interval_ms } => {
                self.node_signal(at, node, "mqtt-health-stale", (*interval_ms).max(1))
            }
            Observation::WorkerStatus {
                worker,
                online: false,
            } => self.worker_gone(at, worker, "mqtt-worker-status"),
            Observation::NodeStatus { online: true, .. }
            | Observation::WorkerStatus { online: true, .. } => {}
            Observation::BallCaught { hops } => self.ball(at, hops),
            Observation::Service { delivery_rate } => {
                let ok = delivery_rate.is_some_and(|r| r >= self.min_delivery_rate);
                for f in &mut self.faults {
                    f.service_sample(at, ok);
                }
            }
            Observation::Ball {
                seq,
                sent,
                delivered,
            } => {
                self.balls = true;
                self.ball_log.insert(*seq, (*sent, *delivered));
                while self
                    .ball_log
                    .first_key_value()
                    .is_some_and(|(_, (t, _))| *t + BALL_LOG_SPAN < *sent)
                {
                    self.ball_log.pop_first();
                }
            }
        }
        self.advance(&mut out);
        out
    }

    /// Ends faults whose recovery took longer than `timeout` by `now`.
    pub fn tick(&mut self, now: Instant, timeout: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        for f in &mut self.faults {
            let deadline = f.deadline(timeout);
            if !f.is_ended() && now >= deadline {
                f.end(deadline, FaultOutcome::TimedOut, &mut out);
            }
        }
        self.collect_done();
        out
    }

    /// Ends every open fault as aborted.
    pub fn abort(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        for f in &mut self.faults {
            if !f.is_ended() {
                f.end(now, FaultOutcome::Aborted, &mut out);
            }
        }
        self.collect_done();
        out
    }

    fn cluster(&mut self, at: Instant, ev: &ClusterEventKind) {
        use ClusterEventKind::*;
        let p = self.precision;
        match ev {
            WorkerCreated { worker } => self.created(at, worker),
            WorkerScheduled { worker, .. } => self.slot_step(at, worker, Milestone::Scheduled),
            WorkerRunning { worker, .. } => self.slot_step(at, worker, Milestone::Running),
            WorkerReady { worker, .. } => self.slot_step(at, worker, Milestone::Ready),
            WorkerNotReady { worker, .. } | WorkerTerminating { worker, .. } => {
                self.worker_gone(at, worker, self.pod_source);
                if matches!(ev, WorkerTerminating { .. }) {
                    self.faults
                        .iter_mut()
                        .for_each(|f| f.old_terminating(at, worker));
                }
            }
            WorkerDeleted { worker, .. } => {
                self.worker_gone(at, worker, self.pod_source);
                if self.live.remove(worker) && self.live.is_empty() {
                    self.faults
                        .iter_mut()
                        .for_each(|f| f.zero_reached(at, Some(worker), p.event_ms));
                }
                self.faults
                    .iter_mut()
                    .for_each(|f| f.old_deleted(at, worker));
                if let Some(f) = self.faults.iter_mut().find(|f| f.wants_deletion(worker)) {
                    f.deleted_surplus(at, p.event_ms);
                }
            }
            NodeNotReady { node } => {
                self.not_ready.entry(node.clone()).or_insert(at);
                self.node_signal(at, node, self.node_source, p.event_ms);
            }
            NodeReady { node } => {
                self.not_ready.remove(node);
            }
            ReplicasChanged { replicas } => {
                for f in &mut self.faults {
                    f.replicas_changed(at, *replicas, p.event_ms);
                }
            }
        }
    }

    fn created(&mut self, at: Instant, worker: &str) {
        self.live.insert(worker.to_string());
        let is_new = self.known.insert(worker.to_string());
        // The same name coming back for a fault that lost it (local rack
        // restarting a worker in place) fills that fault's slot first.
        if let Some(f) = self.faults.iter_mut().find(|f| f.lost_and_unfilled(worker)) {
            f.fill(at, worker, self.precision.event_ms);
            return;
        }
        if is_new && let Some(f) = self.faults.iter_mut().find(|f| f.has_free_slot()) {
            f.fill(at, worker, self.precision.event_ms);
        }
    }

    fn slot_step(&mut self, at: Instant, worker: &str, m: Milestone) {
        let precision = if m == Milestone::Ready {
            self.precision.ready_ms
        } else {
            self.precision.event_ms
        };
        for f in &mut self.faults {
            f.slot_step(at, worker, m, precision);
        }
    }

    fn worker_gone(&mut self, at: Instant, worker: &str, source: &'static str) {
        let precision = self.precision.event_ms;
        for f in &mut self.faults {
            f.worker_gone(at, worker, source, precision);
        }
    }

    fn node_signal(&mut self, at: Instant, node: &str, source: &'static str, precision: u64) {
        for f in &mut self.faults {
            f.node_signal(at, node, source, precision);
        }
    }

    fn ball(&mut self, at: Instant, hops: &[(String, String)]) {
        for (worker, node) in hops {
            let since = self.not_ready.get(node).copied();
            for f in &mut self.faults {
                f.ball_through(at, worker, node, since, self.precision.event_ms);
            }
        }
    }

    fn advance(&mut self, out: &mut Vec<Output>) {
        let restore = if self.balls {
            fault::Restore::Balls {
                run: RESTORE_RUN,
                spacing_ms: self.precision.ball_ms,
                log: &self.ball_log,
            }
        } else {
            fault::Restore::Samples {
                period_ms: self.precision.service_ms,
            }
        };
        for f in &mut self.faults {
            f.advance(restore, out);
        }
        for f in &mut self.faults {
            f.flush_overlaps(out);
        }
        self.collect_done();
    }

    fn collect_done(&mut self) {
        let mut i = 0;
        while i < self.faults.len() {
            if let Some(t) = self.faults[i].take_timeline() {
                self.done.push(t);
            }
            if self.faults[i].is_finished() {
                self.faults.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
